// record.h: `cuframes-video record`: subscribe to a cuframes packet ring and write what arrives
// (codec parameters first) to an Annex B elementary stream that FFmpeg plays.
#ifndef CUFRAMES_VIDEO_RECORD_H_
#define CUFRAMES_VIDEO_RECORD_H_

namespace cuframes::video {

// Runs the subcommand on argv[first..argc). Returns the process exit code (cli.h).
int RecordMain(int argc, char** argv, int first);

}  // namespace cuframes::video

#endif  // CUFRAMES_VIDEO_RECORD_H_
