// status_test: names and texts of every code; unknown values are reported, not crashed on.
#include "status.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

namespace cuframes {
namespace {

TEST(Status, EveryCodeHasADistinctNameAndText) {
  std::set<std::string> names;
  for (uint32_t v = 0; v <= kMaxStatusValue; ++v) {
    const char* n = StatusName(static_cast<Status>(v));
    ASSERT_NE(n, nullptr);
    EXPECT_STRNE(n, "UNKNOWN");
    EXPECT_GT(std::strlen(StatusText(static_cast<Status>(v))), 0u);
    names.insert(n);
  }
  EXPECT_EQ(names.size(), kMaxStatusValue + 1);
  EXPECT_STREQ(StatusName(Status::kPeerClosed), "PEER_CLOSED");
  EXPECT_EQ(ToWire(Status::kUnsupported), 25u);
}

TEST(Status, UnknownValues) {
  EXPECT_STREQ(StatusName(static_cast<Status>(26)), "UNKNOWN");
  EXPECT_STREQ(StatusName(static_cast<Status>(0xffffffffu)), "UNKNOWN");
  EXPECT_STREQ(StatusText(static_cast<Status>(1000)), "unknown error code");
}

}  // namespace
}  // namespace cuframes
