// inject_log_test.cc: unit tests of the CUPTI injection log's parser and judges (inject_log.h),
// on logs written by hand in the library's line format, so that every verdict the GPU cases of
// suites/cuda_inject.cc rely on is shown to pass and to fail here, without a GPU.
#include "inject_log.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cuframes::conform::inject {
namespace {

constexpr uint64_t kPid = 100;
const std::string kH1(128, 'a');
const std::string kH2(128, 'b');

// Builds a log line by line in the library's format.
class Log {
 public:
  Log& Add(const std::string& ev, const std::string& members, uint64_t pid = kPid) {
    text_ += "{\"t\":" + std::to_string(++t_) + ",\"pid\":" + std::to_string(pid) +
             ",\"tid\":7,\"ev\":\"" + ev + "\"" + (members.empty() ? "" : "," + members) + "}\n";
    return *this;
  }
  Log& Open(const std::string& h, uint64_t ptr) {
    return Add("ipc_open", "\"handle\":\"" + h + "\",\"ptr\":" + std::to_string(ptr) +
                               ",\"flags\":1,\"api\":\"cudaIpcOpenMemHandle\",\"rc\":0");
  }
  Log& Close(uint64_t ptr, int rc = 0) {
    return Add("ipc_close", "\"ptr\":" + std::to_string(ptr) + ",\"rc\":" + std::to_string(rc));
  }
  Log& CopyFrom(uint64_t src, uint64_t stream) {
    return Add("copy", "\"dst\":5000,\"src\":" + std::to_string(src) +
                           ",\"bytes\":64,\"stream\":" + std::to_string(stream) + ",\"rc\":0");
  }
  Log& Sync(uint64_t stream) {
    return Add("stream_sync", "\"stream\":" + std::to_string(stream) + ",\"rc\":0");
  }
  Log& Record(uint64_t event, uint64_t stream) {
    return Add("event_record", "\"event\":" + std::to_string(event) +
                                   ",\"stream\":" + std::to_string(stream) + ",\"rc\":0");
  }
  ProcessLog Parse() const { return ParseLog(text_, "cuda-100.jsonl", kPid); }
  std::string text() const { return text_; }

 private:
  std::string text_;
  uint64_t t_ = 0;
};

constexpr uint64_t kA = 0x10000, kB = 0x20000, kS = 0x900, kS2 = 0x901;

// What the reference subscriber does: open both slots, per frame copy out and synchronize, record
// its ack event; at detach synchronize and close each mapping once.
Log ReferenceSubscriber() {
  Log l;
  l.Add("init", "\"ppid\":1,\"cupti\":0,\"param_info\":1").Open(kH1, kA).Open(kH2, kB);
  l.Add("event_create", "\"event\":77,\"flags\":6,\"rc\":0");
  l.Add("ipc_get_event", "\"event\":77,\"handle\":\"" + std::string(128, 'c') + "\",\"rc\":0");
  for (int i = 0; i < 3; ++i) {
    l.CopyFrom(i % 2 ? kB : kA, kS).Sync(kS).Record(77, kS);
  }
  l.Sync(kS).Close(kA).Close(kB);
  return l;
}

TEST(InjectLog, ParsesLinesDropsACutTailAndCountsGarbage) {
  const std::string text = ReferenceSubscriber().text() + "not json\n{\"ev\":\"ipc_cl";
  const ProcessLog log = ParseLog(text, "x", kPid);
  EXPECT_TRUE(log.cut_tail);
  EXPECT_EQ(log.bad_lines, 1u);
  EXPECT_EQ(log.Cupti(), 0);
  ASSERT_FALSE(log.records.empty());
  EXPECT_EQ(log.records.back().ev, "ipc_close");
  EXPECT_EQ(log.records[1].U("ptr"), kA);
  EXPECT_EQ(log.records[1].line, 2u);
  EXPECT_EQ(ParseLog("", "x", 1).Cupti(), -1);
}

TEST(InjectLog, ReferenceSubscriberPassesEveryJudge) {
  const ProcessLog log = ReferenceSubscriber().Parse();
  EXPECT_TRUE(JudgeImports(log, 8192, true).empty());
  EXPECT_TRUE(JudgeForks(log).empty());
  size_t exported = 0;
  EXPECT_TRUE(JudgeExportedEvents(log, "ACK-CUDA-01", true, &exported).empty());
  EXPECT_EQ(exported, 1u);
}

TEST(InjectLog, CloseTwiceIsFound) {
  Log l = ReferenceSubscriber();
  l.Close(kA, 1);
  const auto f = JudgeImports(l.Parse(), 8192, true);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].req, "RES-CUDA-02");
  EXPECT_NE(f[0].what.find("closed twice"), std::string::npos) << f[0].what;
}

TEST(InjectLog, NeverClosedIsFoundOnlyForACompleteLog) {
  Log l;
  l.Open(kH1, kA).CopyFrom(kA, kS).Sync(kS);
  const ProcessLog log = l.Parse();
  const auto f = JudgeImports(log, 8192, true);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].what.find("never closed"), std::string::npos) << f[0].what;
  // A process killed with SIGKILL cannot close: its partial log is judged for what it holds.
  EXPECT_TRUE(JudgeImports(log, 8192, false).empty());
}

TEST(InjectLog, CloseBeforeTheLastUseCompletesIsFound) {
  Log l;
  l.Open(kH1, kA).CopyFrom(kA + 100, kS).Close(kA).Sync(kS);
  const auto f = JudgeImports(l.Parse(), 8192, true);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].req, "RES-CUDA-02");
  EXPECT_NE(f[0].what.find("before its use"), std::string::npos) << f[0].what;
}

TEST(InjectLog, CompletionThroughEventsAndOtherStreams) {
  // A use on s, an event recorded after it, synchronized: complete.
  Log a;
  a.Open(kH1, kA).CopyFrom(kA, kS).Record(9, kS);
  a.Add("event_sync", "\"event\":9,\"rc\":0").Close(kA);
  EXPECT_TRUE(JudgeImports(a.Parse(), 8192, true).empty());
  // The event recorded BEFORE the use does not cover it.
  Log b;
  b.Open(kH1, kA).Record(9, kS).CopyFrom(kA, kS);
  b.Add("event_sync", "\"event\":9,\"rc\":0").Close(kA);
  EXPECT_EQ(JudgeImports(b.Parse(), 8192, true).size(), 1u);
  // s2 waited on the event: synchronizing s2 completes s's use.
  Log c;
  c.Open(kH1, kA).CopyFrom(kA, kS).Record(9, kS);
  c.Add("stream_wait", "\"stream\":" + std::to_string(kS2) + ",\"event\":9,\"rc\":0");
  c.Sync(kS2).Close(kA);
  EXPECT_TRUE(JudgeImports(c.Parse(), 8192, true).empty());
  // Synchronizing another stream does not; a failed synchronize does not; the device does.
  Log d;
  d.Open(kH1, kA).CopyFrom(kA, kS).Sync(kS2);
  d.Add("stream_sync", "\"stream\":" + std::to_string(kS) + ",\"rc\":700").Close(kA);
  EXPECT_EQ(JudgeImports(d.Parse(), 8192, true).size(), 1u);
  Log e;
  e.Open(kH1, kA).CopyFrom(kA, kS).Add("ctx_sync", "\"rc\":0").Close(kA);
  EXPECT_TRUE(JudgeImports(e.Parse(), 8192, true).empty());
}

TEST(InjectLog, LaunchesTouchWhatTheirParametersPointInto) {
  // A scanned launch pointing into A, unsynchronized at A's close: found; one pointing elsewhere:
  // not a use of A.
  Log a;
  a.Open(kH1, kA).Open(kH2, kB);
  a.Add("launch", "\"stream\":" + std::to_string(kS) + ",\"scan\":1,\"ptrs\":[3," +
                      std::to_string(kB + 8) + "],\"rc\":0");
  a.Close(kA);
  EXPECT_TRUE(JudgeImports(a.Parse(), 8192, false).empty());
  a.Close(kB);
  EXPECT_EQ(JudgeImports(a.Parse(), 8192, true).size(), 1u);
  // An unscanned launch may touch anything open.
  Log b;
  b.Open(kH1, kA).Add("launch", "\"stream\":5,\"scan\":0,\"rc\":0").Close(kA);
  EXPECT_EQ(JudgeImports(b.Parse(), 8192, true).size(), 1u);
  // A use past the mapping's size is not a use of it.
  Log c;
  c.Open(kH1, kA).CopyFrom(kA + 8192, kS).Close(kA);
  EXPECT_TRUE(JudgeImports(c.Parse(), 8192, true).empty());
}

TEST(InjectLog, ReopenWhileOpenBreaksOpenOnceButReopenAfterCloseDoesNot) {
  Log l;
  l.Open(kH1, kA).Open(kH1, kB);
  auto f = JudgeImports(l.Parse(), 8192, false);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].req, "RES-CUDA-01");
  Log m;
  m.Open(kH1, kA).Close(kA).Open(kH1, kA).Close(kA);
  EXPECT_TRUE(JudgeImports(m.Parse(), 8192, true).empty());
}

TEST(InjectLog, ForkAfterInitIsFound) {
  Log l = ReferenceSubscriber();
  EXPECT_TRUE(JudgeForks(l.Parse()).empty());
  l.Add("fork", "").Add("fork_child", "\"ppid\":100", 101);
  const auto f = JudgeForks(l.Parse());
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].req, "RES-CUDA-04");
  // The child's lines do not count as the parent's calls.
  l.Close(kA);
  EXPECT_EQ(JudgeImports(l.Parse(), 8192, true).size(), 1u);  // the parent's second close
}

TEST(InjectLog, ExportedEventFlagsAndStreams) {
  Log l;
  l.Add("event_create", "\"event\":5,\"flags\":2,\"rc\":0");
  l.Add("ipc_get_event", "\"event\":5,\"handle\":\"00\",\"rc\":0");
  l.Add("event_create", "\"event\":6,\"flags\":6,\"rc\":0");  // not exported: not judged
  l.Record(5, kS).Record(5, kS2);
  size_t n = 0;
  auto f = JudgeExportedEvents(l.Parse(), "ACK-CUDA-01", true, &n);
  EXPECT_EQ(n, 1u);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_NE(f[0].what.find("0x2"), std::string::npos) << f[0].what;
  EXPECT_NE(f[1].what.find("2 streams"), std::string::npos) << f[1].what;
  // The publisher's ready events are recorded on one stream too, but only flags are its rule.
  EXPECT_EQ(JudgeExportedEvents(l.Parse(), "SHM-SLOT-01", false, nullptr).size(), 1u);
  // The legacy stream's two spellings are one stream.
  Log m;
  m.Add("event_create", "\"event\":5,\"flags\":6,\"rc\":0");
  m.Add("ipc_get_event", "\"event\":5,\"handle\":\"00\",\"rc\":0").Record(5, 0).Record(5, 1);
  EXPECT_TRUE(JudgeExportedEvents(m.Parse(), "ACK-CUDA-01", true, nullptr).empty());
}

// A publisher's shut-down: exports, accepts a subscriber, closes it, then frees.
Log Publisher(bool free_first) {
  Log l;
  l.Add("alloc", "\"ptr\":4096,\"bytes\":8192,\"rc\":0");
  l.Add("ipc_get_mem", "\"ptr\":4096,\"handle\":\"" + kH1 + "\",\"rc\":0");
  l.Add("event_create", "\"event\":50,\"flags\":6,\"rc\":0");
  l.Add("ipc_get_event", "\"event\":50,\"handle\":\"" + kH2 + "\",\"rc\":0");
  l.Add("alloc", "\"ptr\":65536,\"bytes\":16,\"rc\":0");  // not exported: free any time
  l.Add("free", "\"ptr\":65536");
  l.Add("accept", "\"fd\":9");
  if (free_first) l.Add("free", "\"ptr\":4096");
  l.Add("conn_close", "\"fd\":9,\"rc\":0");
  l.Add("event_destroy", "\"event\":50");
  if (!free_first) l.Add("free", "\"ptr\":4096");
  return l;
}

TEST(InjectLog, FreesAfterClosesOrNot) {
  size_t accepts = 0;
  EXPECT_TRUE(JudgeFreesAfterCloses(Publisher(false).Parse(), &accepts).empty());
  EXPECT_EQ(accepts, 1u);
  const auto f = JudgeFreesAfterCloses(Publisher(true).Parse(), &accepts);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].req, "RES-CUDA-03");
  EXPECT_NE(f[0].what.find("fd 9"), std::string::npos) << f[0].what;
  // A ready event destroyed with a connection open is found too.
  Log l;
  l.Add("event_create", "\"event\":50,\"flags\":6,\"rc\":0");
  l.Add("ipc_get_event", "\"event\":50,\"handle\":\"" + kH2 + "\",\"rc\":0");
  l.Add("accept", "\"fd\":3").Add("event_destroy", "\"event\":50");
  EXPECT_EQ(JudgeFreesAfterCloses(l.Parse(), nullptr).size(), 1u);
}

TEST(InjectLog, AckEventOpenedOnceAndDestroyed) {
  const std::string h(128, 'e');
  Log l;
  l.Add("ipc_open_event", "\"handle\":\"" + h + "\",\"event\":31,\"rc\":0");
  l.Add("ipc_open_event", "\"handle\":\"" + std::string(128, 'f') + "\",\"event\":32,\"rc\":0");
  l.Add("event_destroy", "\"event\":32");
  AckEventUse u = TraceAckEvent(l.Parse(), h);
  EXPECT_EQ(u.opens, 1u);
  EXPECT_EQ(u.destroys, 0u);
  l.Add("event_destroy", "\"event\":31");
  u = TraceAckEvent(l.Parse(), h);
  EXPECT_EQ(u.destroys, 1u);
  EXPECT_EQ(u.first_destroy, 4u);
  l.Add("ipc_open_event", "\"handle\":\"" + h + "\",\"event\":33,\"rc\":0");
  EXPECT_EQ(TraceAckEvent(l.Parse(), h).opens, 2u);
}

TEST(InjectLog, ReadLogsFindsEveryProcessFile) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("inject_log_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "cuda-100.jsonl") << ReferenceSubscriber().text();
  std::ofstream(dir / "cuda-101.jsonl") << "{\"t\":1,\"pid\":101,\"ev\":\"init\",\"cupti\":0}\n";
  std::ofstream(dir / "other.txt") << "x";
  const auto logs = ReadLogs(dir.string());
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].pid, 100u);
  EXPECT_EQ(logs[1].pid, 101u);
  EXPECT_EQ(logs[1].Cupti(), 0);
  EXPECT_TRUE(ReadLogs((dir / "missing").string()).empty());
  std::filesystem::remove_all(dir);
}

TEST(InjectLog, HexOfMatchesTheLibrarysFormat) {
  const uint8_t b[] = {0x00, 0xab, 0x10};
  EXPECT_EQ(HexOf(b, 3), "00ab10");
}

}  // namespace
}  // namespace cuframes::conform::inject
