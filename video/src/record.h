// record.h: `cuframes-video record`: subscribe to a cuframes packet ring and write what arrives
// (codec parameters first) to an Annex B elementary stream that FFmpeg plays.
#ifndef CUFRAMES_VIDEO_RECORD_H_
#define CUFRAMES_VIDEO_RECORD_H_

#include <cstdint>
#include <string>

#include "adapter_cli.h"

namespace cuframes::video {

// The subcommand's options (record.cc lists them), with their defaults.
struct RecordOptions {
  std::string key;
  std::string out_path;  // OUT
  uint64_t packets = 0;  // 0: until the publisher closes
  bool until_eos = false;
  uint64_t timeout_ms = 10000;
  uint64_t connect_timeout_ms = 2000;
  bool start_gate = false;
  uint64_t pause_after = 0;  // 0: never
  bool progress = false;
};

// Declares the options of `cuframes-video record` on `cmd`, to be parsed into `*o`.
void AddRecordOptions(adapter::Cli& cmd, RecordOptions* o);

// Runs the subcommand with the parsed options. Returns the process exit code (cli.h).
int RecordMain(const RecordOptions& o);

}  // namespace cuframes::video

#endif  // CUFRAMES_VIDEO_RECORD_H_
