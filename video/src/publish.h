// publish.h: `cuframes-video publish`: demux a file and publish its access units, with their
// codec parameters, through a cuframes packet ring.
#ifndef CUFRAMES_VIDEO_PUBLISH_H_
#define CUFRAMES_VIDEO_PUBLISH_H_

namespace cuframes::video {

// Runs the subcommand on argv[first..argc). Returns the process exit code (cli.h).
int PublishMain(int argc, char** argv, int first);

}  // namespace cuframes::video

#endif  // CUFRAMES_VIDEO_PUBLISH_H_
