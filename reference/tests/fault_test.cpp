// fault_test: the fault-point list of fault.h, CUFRAMES_FAULT parsing, and what an armed point
// does (SIGKILL at the nth hit with a marker line on stderr; SIGSTOP and resume).
#include "fault.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

namespace cuframes::fault {
namespace {

// The macro resolves names at compile time; an unlisted name would not compile.
static_assert(IndexOf("pub.init.after_lock") == 0);
static_assert(kFaultPoints[IndexOf("sub.ack.after_store")].name == "sub.ack.after_store");

bool WellFormed(std::string_view name) {
  // <role>.<phase>.<step>, role pub or sub, lower case and '_' only.
  if (name.substr(0, 4) != "pub." && name.substr(0, 4) != "sub.") return false;
  int dots = 0;
  for (char c : name) {
    if (c == '.') {
      ++dots;
    } else if (!((c >= 'a' && c <= 'z') || c == '_')) {
      return false;
    }
  }
  return dots == 2 && name.back() != '.' && name.find("..") == std::string_view::npos;
}

TEST(FaultPoints, NamesAreUniqueWellFormedAndDocumented) {
  std::set<std::string_view> seen;
  for (const FaultPoint& p : kFaultPoints) {
    EXPECT_TRUE(WellFormed(p.name)) << p.name;
    EXPECT_TRUE(seen.insert(p.name).second) << "duplicate " << p.name;
    EXPECT_FALSE(p.leaves.empty()) << p.name;
  }
  EXPECT_GE(kFaultPointCount, 30u);
}

TEST(FaultParse, AcceptsPointNthAndAction) {
  Spec s;
  ASSERT_TRUE(Parse("pub.frame.after_meta", &s));
  EXPECT_EQ(kFaultPoints[s.index].name, "pub.frame.after_meta");
  EXPECT_EQ(s.nth, 1u);
  EXPECT_EQ(s.action, Action::kKill);
  ASSERT_TRUE(Parse("sub.ack.before_store:17", &s));
  EXPECT_EQ(kFaultPoints[s.index].name, "sub.ack.before_store");
  EXPECT_EQ(s.nth, 17u);
  ASSERT_TRUE(Parse("pub.reclaim.before_segment_unlink:1:stop", &s));
  EXPECT_EQ(s.action, Action::kStop);
  ASSERT_TRUE(Parse("pub.hs.after_hello_req:2:kill", &s));
  EXPECT_EQ(s.action, Action::kKill);
  EXPECT_EQ(s.nth, 2u);
}

TEST(FaultParse, RejectsEverythingElse) {
  Spec s;
  for (const char* bad :
       {"", "pub", "pub.frame", "pub.frame.after_meta:", "pub.frame.after_meta:0",
        "pub.frame.after_meta:-1", "pub.frame.after_meta:1x",
        "pub.frame.after_meta:1:", "pub.frame.after_meta:1:explode", "PUB.FRAME.AFTER_META",
        "pub.frame.after_meta ", "pub.frame.after_meta:1234567890123456789", "nope:1"}) {
    EXPECT_FALSE(Parse(bad, &s)) << '"' << bad << '"';
  }
}

class FaultEnv : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("CUFRAMES_FAULT"); }
  void TearDown() override {
    ::unsetenv("CUFRAMES_FAULT");
    ResetForTest();
  }
};

TEST_F(FaultEnv, UnsetIsTheFastPath) {
  ResetForTest();
  EXPECT_EQ(g_mode.load(), 0);
  for (size_t i = 0; i < kFaultPointCount; ++i)
    Hit(i);
  EXPECT_EQ(g_mode.load(), 1);  // environment read once; every later Hit is one relaxed load
  EXPECT_EQ(ArmedHits(), 0u);
  CUFRAMES_FAULT_POINT("pub.frame.after_meta");  // and the macro compiles and returns
}

TEST_F(FaultEnv, OtherPointsAndEarlierHitsDoNotFire) {
  ::setenv("CUFRAMES_FAULT", "pub.frame.after_seq:3", 1);
  ResetForTest();
  CUFRAMES_FAULT_POINT("pub.frame.after_meta");
  CUFRAMES_FAULT_POINT("pub.frame.after_seq");
  CUFRAMES_FAULT_POINT("pub.frame.after_seq");
  EXPECT_EQ(g_mode.load(), 2);
  EXPECT_EQ(ArmedHits(), 2u);
}

using FaultDeathTest = FaultEnv;

TEST_F(FaultDeathTest, NthHitKillsWithAMarkerLine) {
  EXPECT_EXIT(
      {
        ::setenv("CUFRAMES_FAULT", "pub.frame.after_meta:2", 1);
        ResetForTest();
        CUFRAMES_FAULT_POINT("pub.frame.after_meta");
        CUFRAMES_FAULT_POINT("pub.frame.after_meta");
        std::exit(0);  // not reached
      },
      ::testing::KilledBySignal(SIGKILL),
      "\"event\":\"fault\",\"point\":\"pub\\.frame\\.after_meta\",\"nth\":2,\"action\":\"kill\"");
}

TEST_F(FaultDeathTest, UnknownPointArmsNothingAndSaysSo) {
  EXPECT_EXIT(
      {
        ::setenv("CUFRAMES_FAULT", "pub.frame.no_such_point", 1);
        ResetForTest();
        for (size_t i = 0; i < kFaultPointCount; ++i)
          Hit(i);
        std::exit(g_mode.load() == 1 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "names no fault point");
}

TEST_F(FaultEnv, StopActionStopsAndResumes) {
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("CUFRAMES_FAULT", "sub.ack.before_store:1:stop", 1);
    ResetForTest();
    CUFRAMES_FAULT_POINT("sub.ack.before_store");  // stops here until SIGCONT
    ::_exit(ArmedHits() == 1 ? 42 : 1);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, WUNTRACED), pid);
  ASSERT_TRUE(WIFSTOPPED(st));
  EXPECT_EQ(WSTOPSIG(st), SIGSTOP);
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 42);
}

}  // namespace
}  // namespace cuframes::fault
