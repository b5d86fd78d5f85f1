// cuframes-video: publishes real H.264/HEVC streams through a cuframes packet ring and records
// them back into files FFmpeg plays. It uses libcuframes through its public C API only.
//
//   cuframes-video publish --key K FILE [options]   (see publish.cc)
//   cuframes-video record --key K OUT [options]     (see record.cc)
#include <cstdio>
#include <cstring>

#include "cli.h"
#include "publish.h"
#include "record.h"

int main(int argc, char** argv) {
  using namespace cuframes::video;
  if (argc >= 2 && std::strcmp(argv[1], "publish") == 0) return PublishMain(argc, argv, 2);
  if (argc >= 2 && std::strcmp(argv[1], "record") == 0) return RecordMain(argc, argv, 2);
  std::fprintf(
      stderr,
      "usage: cuframes-video publish --key K FILE [--realtime] [--speed F]\n"
      "                      [--ring-bytes R] [--max-packet-bytes B] [--wait-subscribers N]\n"
      "                      [--wait-timeout-ms T] [--gate-at I[,I...]] [--hold]\n"
      "                      [--linger-ms T] [--max-subscribers M] [--progress]\n"
      "       cuframes-video record --key K OUT.h264|OUT.hevc [--packets N | --until-eos]\n"
      "                      [--timeout-ms T] [--connect-timeout-ms T] [--pause-after N]\n"
      "                      [--start-gate] [--progress]\n");
  return kExitUsage;
}
