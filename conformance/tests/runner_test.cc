// runner_test.cc: unit tests of case selection (--only).
#include "runner.h"

#include <gtest/gtest.h>

namespace cuframes::conform {
namespace {

CaseDef Case(const std::string& id, std::vector<std::string> reqs) {
  CaseDef d{};
  d.id = id;
  d.reqs = std::move(reqs);
  return d;
}

TEST(Selected, EmptySelectsEverything) {
  EXPECT_TRUE(Selected(Case("5.1/frames-in-order", {}), ""));
}

TEST(Selected, GlobRequirementAndSectionPrefix) {
  const CaseDef c = Case("3.2/oversized-length", {"TLV-LEN-01", "ERR-01"});
  EXPECT_TRUE(Selected(c, "3.2/oversized-length"));
  EXPECT_TRUE(Selected(c, "3.2/over*"));
  EXPECT_TRUE(Selected(c, "3.2/"));
  EXPECT_TRUE(Selected(c, "TLV-LEN-01"));
  EXPECT_FALSE(Selected(c, "3.2/oversized"));  // no glob, no trailing '/': not a prefix match
  EXPECT_FALSE(Selected(c, "3.3/"));
  EXPECT_FALSE(Selected(c, "TLV-LEN-02"));
}

TEST(Selected, CommaSeparatedListSelectsAnyElement) {
  const CaseDef c = Case("5.2/no-reuse-before-ack", {"ACK-REUSE-01"});
  EXPECT_TRUE(Selected(c, "3.2/,5.2/no-reuse-before-ack"));
  EXPECT_TRUE(Selected(c, "5.2/no-reuse-before-ack,3.2/"));
  EXPECT_TRUE(Selected(c, "X-1,,ACK-REUSE-01"));  // empty elements are ignored
  EXPECT_FALSE(Selected(c, "3.2/,6.2/*"));
  EXPECT_FALSE(Selected(c, ","));
}

}  // namespace
}  // namespace cuframes::conform
