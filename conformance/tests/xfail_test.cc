// xfail_test.cc: unit tests of expected-failure list parsing and application.
#include "xfail.h"

#include <gtest/gtest.h>

namespace cuframes::conform {
namespace {

TEST(Xfail, ParsesIdsAndMessages) {
  std::vector<XfailEntry> e;
  std::string err;
  ASSERT_TRUE(ParseXfail("# comment\n\n3.2/oversized-length\n5.7/evict  # EVICTED\n", &e, &err));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].case_id, "3.2/oversized-length");
  EXPECT_EQ(e[0].message, "");
  EXPECT_EQ(e[1].case_id, "5.7/evict");
  EXPECT_EQ(e[1].message, "EVICTED");
  EXPECT_EQ(e[1].line, 4);
  EXPECT_FALSE(ParseXfail("two ids here\n", &e, &err));
  EXPECT_NE(err.find("line 1"), std::string::npos);
}

TEST(Xfail, PassBecomesXpassFailBecomesXfail) {
  XfailEntry any{"a", "", 1};
  CaseResult r;
  r.outcome = Outcome::kPass;
  ApplyXfail(&any, &r);
  EXPECT_EQ(r.outcome, Outcome::kXpass);
  r.outcome = Outcome::kFail;
  r.failure.req = "TLV-ERR-01";
  ApplyXfail(&any, &r);
  EXPECT_EQ(r.outcome, Outcome::kXfail);
  XfailEntry specific{"a", "EVICTED", 2};
  r.outcome = Outcome::kFail;
  r.failure.actual = "ERROR(PROTOCOL)";
  ApplyXfail(&specific, &r);
  EXPECT_EQ(r.outcome, Outcome::kFail);  // failed, but not the way the list expects
  r.failure.actual = "ERROR(EVICTED) late";
  ApplyXfail(&specific, &r);
  EXPECT_EQ(r.outcome, Outcome::kXfail);
  r.outcome = Outcome::kUnsupported;
  ApplyXfail(&any, &r);
  EXPECT_EQ(r.outcome, Outcome::kUnsupported);
  const std::vector<XfailEntry> list = {any, specific};
  EXPECT_EQ(FindXfail(list, "a"), &list[0]);
  EXPECT_EQ(FindXfail(list, "b"), nullptr);
}

}  // namespace
}  // namespace cuframes::conform
