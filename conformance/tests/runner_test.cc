// runner_test.cc: unit tests of case selection (--only) and of the scheduling of exclusive cases.
#include "runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

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

TEST(RunScheduled, ExclusiveCasesRunAloneAndResultsKeepTheirOrder) {
  std::vector<CaseDef> defs;
  for (int i = 0; i < 12; ++i) {
    defs.push_back(Case("c/" + std::to_string(i), {}));
    defs.back().exclusive = i == 3 || i == 7;
  }
  std::vector<const CaseDef*> cases;
  for (const CaseDef& d : defs)
    cases.push_back(&d);
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
  int most_beside_exclusive = 0;
  int most = 0;
  auto run = [&](const CaseDef& def) {
    std::unique_lock<std::mutex> lock(mu);
    ++running;
    most = std::max(most, running);
    cv.notify_all();
    // Every case waits (bounded) for a second one to be running: the shared cases then overlap
    // for certain, and an exclusive case scheduled beside them would meet one.
    cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return running >= 2; });
    if (def.exclusive) most_beside_exclusive = std::max(most_beside_exclusive, running);
    --running;
    CaseResult r;
    r.id = def.id;
    return r;
  };
  std::vector<size_t> order;
  const std::vector<CaseResult> out =
      RunScheduled(cases, 4, run, [&](size_t i, const CaseResult&) { order.push_back(i); });
  ASSERT_EQ(out.size(), defs.size());
  for (size_t i = 0; i < defs.size(); ++i)
    EXPECT_EQ(out[i].id, defs[i].id);
  EXPECT_EQ(most_beside_exclusive, 1) << "an exclusive case ran beside another";
  EXPECT_GT(most, 1) << "the shared cases did not run in parallel";
  const std::vector<size_t> want{0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 3, 7};
  EXPECT_EQ(order, want);
}

}  // namespace
}  // namespace cuframes::conform
