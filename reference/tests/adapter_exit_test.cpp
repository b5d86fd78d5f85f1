// adapter_exit_test: the exit codes the reference's tools (cuframes-pub, cuframes-sub and
// cuframes-video, which share adapter_cli's ExitCodeFor) end with, per spec/ADAPTER.md section 5.
#include <gtest/gtest.h>

#include "adapter_cli.h"
#include "adapter_common.h"
#include "cuframes/cuframes.h"

namespace cuframes::adapter {
namespace {

TEST(AdapterExit, EachStatusEndsWithTheCodeOfTheTable) {
  EXPECT_EQ(ExitCodeFor(CUFRAMES_OK), kExitOk);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_INVALID_ARGUMENT), kExitUsage);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_TIMEOUT), kExitTimeout);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_AGAIN), kExitTimeout);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_UNSUPPORTED), kExitUnsupported);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_PROTOCOL), kExitPeer);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_VERSION_MISMATCH), kExitPeer);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_FULL), kExitPeer);
  EXPECT_EQ(ExitCodeFor(CUFRAMES_NO_PACKET_RING), kExitPeer);
}

// A publisher that offers no memory kind the subscriber takes answers UNSUPPORTED_KIND: a peer's
// refusal (exit 2, the error event names it, MSG-HRESP-05), not "unsupported here" (77), which
// the harness (CaseContext::CheckUnsupported) and the ci scripts report as skipped, not failed.
TEST(AdapterExit, UnsupportedKindFromThePeerIsAPeerError) {
  EXPECT_EQ(ExitCodeFor(CUFRAMES_UNSUPPORTED_KIND), kExitPeer);
}

}  // namespace
}  // namespace cuframes::adapter
