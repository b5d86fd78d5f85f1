// cuframes-video: publishes real H.264/HEVC streams through a cuframes packet ring and records
// them back into files FFmpeg plays. It uses libcuframes through its public C API only.
//
//   cuframes-video publish --key K FILE [options]   (see publish.cc)
//   cuframes-video record --key K OUT [options]     (see record.cc)
//   cuframes-video [publish|record] --help
#include "adapter_cli.h"
#include "cli.h"
#include "publish.h"
#include "record.h"

int main(int argc, char** argv) {
  using namespace cuframes::video;
  cuframes::adapter::Cli cli("cuframes-video",
                             "Publishes real H.264/HEVC streams through a cuframes packet ring "
                             "and records\nthem back into Annex B files FFmpeg plays.");
  cuframes::adapter::Cli& publish =
      cli.Subcommand("publish", "demux FILE and publish its access units under --key");
  PublishOptions publish_options;
  AddPublishOptions(publish, &publish_options);
  cuframes::adapter::Cli& record =
      cli.Subcommand("record", "subscribe to --key and write its packets to OUT");
  RecordOptions record_options;
  AddRecordOptions(record, &record_options);
  if (const int rc = cli.Parse(argc, argv); rc >= 0) return rc;
  if (publish.Chosen()) return PublishMain(publish, publish_options);
  return RecordMain(record_options);
}
