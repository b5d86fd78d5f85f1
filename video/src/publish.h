// publish.h: `cuframes-video publish`: demux a file and publish its access units, with their
// codec parameters, through a cuframes packet ring.
#ifndef CUFRAMES_VIDEO_PUBLISH_H_
#define CUFRAMES_VIDEO_PUBLISH_H_

#include <cstdint>
#include <string>

#include "adapter_cli.h"

namespace cuframes::video {

// The subcommand's options (publish.cc lists them), with their defaults.
struct PublishOptions {
  std::string key;
  std::string path;  // FILE
  uint64_t ring_bytes = 8u << 20;
  uint64_t max_packet_bytes = 1u << 20;
  bool realtime = false;
  double speed = 1;
  uint64_t wait_subscribers = 0;
  uint64_t wait_timeout_ms = 10000;
  std::string gate_at;  // "I[,I...]"
  bool hold = false;
  uint64_t linger_ms = 0;
  uint64_t max_subscribers = 8;
  bool progress = false;
};

// Declares the options of `cuframes-video publish` on `cmd`, to be parsed into `*o`.
void AddPublishOptions(adapter::Cli& cmd, PublishOptions* o);

// Runs the subcommand with the options `cmd` parsed into `opt` (usage errors between options are
// reported through `cmd`). Returns the process exit code (cli.h).
int PublishMain(const adapter::Cli& cmd, const PublishOptions& opt);

}  // namespace cuframes::video

#endif  // CUFRAMES_VIDEO_PUBLISH_H_
