// observer_test.cc: unit tests of the shared-memory observer's checker (ShmChecker): a clean
// sequence of synthetic samples passes, and each kind of violation is caught with the right
// requirement ID.
#include "observer.h"

#include <gtest/gtest.h>

#include "bytes.h"

namespace cuframes::conform {
namespace {

constexpr uint32_t kSlots = 2, kSubs = 2;
constexpr uint64_t kCap = 4096;

class ObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(spec_.Load(CUFRAMES_CONFORM_SPEC_JSON, &err)) << err;
    s_.hdr.assign(256, 0);
    s_.descs.assign(192 * kSlots, 0);
    s_.bufheads.assign(kBufHead * kSlots, 0);
    s_.subs.assign(128 * kSubs, 0);
    Hdr("layout_version", 1);
    Hdr("magic", spec_.Const("SEGMENT_MAGIC"));
    Hdr("header_size", 256);
    Hdr("state", spec_.Enum("segment_state", "READY"));
    Hdr("proto_version", 2);
    Hdr("memory_kind", spec_.Enum("memory_kind", "HOST"));
    Hdr("slot_count", kSlots);
    Hdr("max_subscribers", kSubs);
    Hdr("slot_bytes", 4096);
    Hdr("slot_desc_offset", 256);
    Hdr("sub_slot_offset", 256 + 192 * kSlots);
    s_.seg_mode = s_.seg_mode_before = 0600;
    // An ACTIVE subscriber in slot 0 from seq 1.
    Sub(0, "state", spec_.Enum("subscriber_slot_state", "ACTIVE"));
    Sub(0, "generation", 1);
    Sub(0, "start_seq", 1);
    Sub(0, "pid", 42);
    // A ring with nothing written.
    r_.hdr.assign(256, 0);
    r_.params.assign(64 + 4096 + 8, 0);
    r_.data.assign(kCap, 0);
    Ring("layout_version", 1);
    Ring("magic", spec_.Const("RING_MAGIC"));
    Ring("header_size", 256);
    Ring("state", spec_.Enum("segment_state", "READY"));
    Ring("capacity", kCap);
    Ring("data_offset", spec_.Const("RING_DATA_OFFSET"));
    Ring("max_packet_bytes", 1000);
    Ring("segment_size", spec_.Const("RING_DATA_OFFSET") + kCap);
  }
  void Set(std::vector<uint8_t>& b, size_t base, const char* st, const char* f, uint64_t v) {
    const FieldDef& d = spec_.Field(st, f);
    StoreLe(b, base + d.offset, v, d.size);
  }
  void Hdr(const char* f, uint64_t v) {
    Set(s_.hdr, 0, "SegmentHeader", f, v);
    s_.hdr_after = s_.hdr;
  }
  void Meta(uint32_t slot, const char* f, uint64_t v) {
    Set(s_.descs, 192 * slot, "FrameMeta", f, v);
  }
  void Sub(uint32_t j, const char* f, uint64_t v) { Set(s_.subs, 128 * j, "SubscriberSlot", f, v); }
  void Ring(const char* f, uint64_t v) {
    Set(r_.hdr, 0, "PacketRingHeader", f, v);
    r_.hdr_after = r_.hdr;
  }
  // Commits frame n the way a conforming publisher does (meta first, then write_seq).
  void Commit(uint64_t n) {
    const uint32_t slot = static_cast<uint32_t>((n - 1) % kSlots);
    Meta(slot, "payload_bytes", 100);
    Meta(slot, "timestamp_ns", n * 10);
    s_.bufheads[kBufHead * slot] = static_cast<uint8_t>(n);
    Meta(slot, "seq", n);
    Hdr("write_seq", n);
    if (bump_) Hdr("frame_futex", LoadLe(s_.hdr, 136, 4) + 1);
  }
  bool bump_ = true;
  // Appends packet n (size bytes) at head_pos the way a conforming writer does.
  void Packet(uint64_t n, uint32_t size, bool key) {
    const uint64_t p = LoadLe(r_.hdr, 72, 8);
    const uint64_t off = p % kCap;
    StoreLe(r_.data, off, 2 * n, 8);
    StoreLe(r_.data, off + 8, size, 4);
    StoreLe(r_.data, off + 12, key ? spec_.Enum("packet_flags", "KEYFRAME") : 0, 4);
    if (key) {
      Ring("last_key_pos", p);
      Ring("last_key_seq", n);
    }
    Ring("head_pos", p + (32 + size + 31) / 32 * 32);
    Ring("head_seq", n);
    Ring("packet_futex", LoadLe(r_.hdr, 104, 4) + 1);
  }
  std::vector<ObsViolation> Feed(uint32_t en = kObsAll) {
    std::vector<ObsViolation> v;
    s_.t_ns += 1000;
    checker_.Feed(s_, en, &v);
    return v;
  }
  std::vector<ObsViolation> FeedRing(uint32_t en = kObsAll) {
    std::vector<ObsViolation> v;
    r_.t_ns += 1000;
    r_.head_lock_after = LoadLe(r_.data, LoadLe(r_.hdr, 72, 8) % kCap, 8);
    checker_.FeedRing(r_, en, &v);
    return v;
  }
  static std::string Reqs(const std::vector<ObsViolation>& v) {
    std::string s;
    for (const auto& x : v)
      s += x.req + " (" + x.actual + ") ";
    return s;
  }

  Spec spec_;
  SegSample s_;
  RingSample r_;
  ShmChecker checker_{spec_, IutRole::kPublisher};
};

bool HasReq(const std::vector<ObsViolation>& v, const std::string& req) {
  for (const auto& x : v) {
    if (x.req == req) return true;
  }
  return false;
}

TEST_F(ObserverTest, CleanSequencePasses) {
  EXPECT_TRUE(Feed().empty());
  for (uint64_t n = 1; n <= 6; ++n) {
    if (n > kSlots) Sub(0, "ack_seq", n - kSlots);  // released before the slot is reused
    EXPECT_TRUE(Feed().empty()) << n;
    Commit(n);
    auto v = Feed();
    EXPECT_TRUE(v.empty()) << "frame " << n << ": " << Reqs(v);
  }
  // Clean shut-down: connection saw EOF, socket gone, then CLOSED.
  s_.conns.push_back({true, true, "c"});
  Hdr("state", spec_.Enum("segment_state", "CLOSED"));
  auto v = Feed();
  EXPECT_TRUE(v.empty()) << Reqs(v);
}

TEST_F(ObserverTest, StateIgnoredUntilReady) {
  Hdr("state", spec_.Enum("segment_state", "INIT"));
  Hdr("reserved2", 7);  // garbage while INIT is not judged
  EXPECT_TRUE(Feed().empty());
  EXPECT_FALSE(checker_.ready());
}

TEST_F(ObserverTest, ReservedBytesWrittenLater) {
  Feed();
  Hdr("reserved1", 1);
  EXPECT_TRUE(HasReq(Feed(), "VER-RSV-01"));
}

TEST_F(ObserverTest, FrameMetaReservedNonzero) {
  Feed();
  Commit(1);
  Set(s_.descs, 0, "FrameMeta", "reserved1", 5);
  EXPECT_TRUE(HasReq(Feed(), "VER-RSV-01"));
}

TEST_F(ObserverTest, HeaderFieldChangesAfterReady) {
  Feed();
  Hdr("pixel_format", 3);
  auto v = Feed();
  ASSERT_TRUE(HasReq(v, "RES-CREATE-04")) << Reqs(v);
  EXPECT_NE(v[0].actual.find("pixel_format"), std::string::npos) << v[0].actual;
  EXPECT_FALSE(v[0].bytes.empty());  // the sample is the evidence
}

TEST_F(ObserverTest, StateBackToInit) {
  Feed();
  Hdr("state", spec_.Enum("segment_state", "INIT"));
  EXPECT_TRUE(HasReq(Feed(), "RES-CREATE-04"));
}

TEST_F(ObserverTest, WriteSeqDecreases) {
  Feed();
  Commit(1);
  Commit(2);
  Feed();
  Hdr("write_seq", 1);
  EXPECT_TRUE(HasReq(Feed(), "ACK-COMMIT-01"));
}

TEST_F(ObserverTest, WriteSeqBeforeMetaSeq) {
  Feed();
  Hdr("write_seq", 1);  // meta.seq of slot 0 still 0
  EXPECT_TRUE(HasReq(Feed(), "ACK-COMMIT-01"));
}

TEST_F(ObserverTest, FrameInWrongSlot) {
  Feed();
  Meta(1, "seq", 1);
  EXPECT_TRUE(HasReq(Feed(), "SHM-SLOT-03"));
}

TEST_F(ObserverTest, SlotReusedBeforeAck) {
  Feed();
  Commit(1);
  Feed();
  Commit(2);
  Feed();
  // ack_seq still 0: rewriting slot 0 (frame 1) is a reuse before the ACK.
  s_.bufheads[0] = 0x99;
  auto v = Feed();
  ASSERT_TRUE(HasReq(v, "ACK-REUSE-01")) << Reqs(v);
}

TEST_F(ObserverTest, ReuseIgnoresSubscriberThatJoinedLater) {
  Sub(0, "start_seq", 3);  // received nothing in slot 0
  Feed();
  Commit(1);
  Commit(2);
  Feed();
  Commit(3);
  EXPECT_TRUE(Feed().empty());
}

TEST_F(ObserverTest, ReuseIgnoresEvictedSubscriber) {
  Feed();
  Commit(1);
  Commit(2);
  Feed();
  Sub(0, "state", spec_.Enum("subscriber_slot_state", "EVICTED"));
  Feed();
  Commit(3);
  EXPECT_TRUE(Feed().empty());
}

TEST_F(ObserverTest, ReservedAgainWithSameGeneration) {
  Feed();
  Sub(0, "state", spec_.Enum("subscriber_slot_state", "FREE"));
  Feed();
  Sub(0, "state", spec_.Enum("subscriber_slot_state", "ATTACHING"));
  Sub(0, "start_seq", 0);
  auto v = Feed();
  EXPECT_TRUE(HasReq(v, "ACK-EVICT-04")) << Reqs(v);
}

TEST_F(ObserverTest, ReservationWithoutZeroing) {
  Feed();
  Sub(0, "state", spec_.Enum("subscriber_slot_state", "FREE"));
  Sub(0, "ack_seq", 9);
  Feed();
  Sub(0, "state", spec_.Enum("subscriber_slot_state", "ATTACHING"));
  Sub(0, "generation", 2);
  auto v = Feed();
  EXPECT_TRUE(HasReq(v, "SHM-SUB-02")) << Reqs(v);
}

TEST_F(ObserverTest, StartSeqChangesWhileActive) {
  Feed();
  Sub(0, "start_seq", 5);
  EXPECT_TRUE(HasReq(Feed(), "MSG-ARESP-01"));
}

TEST_F(ObserverTest, FileModes) {
  Feed();
  s_.seg_mode = 0644;
  EXPECT_TRUE(HasReq(Feed(), "RES-PERM-01"));
  s_.seg_mode = 0600;
  s_.sock_mode = 0777;
  EXPECT_TRUE(Feed().empty());  // the socket's mode is judged only once it has answered
  s_.sock_checked = true;
  EXPECT_TRUE(HasReq(Feed(), "RES-PERM-01"));
}

TEST_F(ObserverTest, ClosedBeforeConnectionsClosed) {
  Feed();
  s_.conns.push_back({true, false, "fd 7"});
  Hdr("state", spec_.Enum("segment_state", "CLOSED"));
  auto v = Feed();
  ASSERT_TRUE(HasReq(v, "RES-CLOSE-01")) << Reqs(v);
  EXPECT_NE(v[0].actual.find("fd 7"), std::string::npos);
}

TEST_F(ObserverTest, ClosedWhileSocketFileExists) {
  Feed();
  s_.sock_mode = 0600;
  Hdr("state", spec_.Enum("segment_state", "CLOSED"));
  EXPECT_TRUE(HasReq(Feed(), "RES-CLOSE-01"));
}

TEST_F(ObserverTest, RingUnlinkedBeforeClosed) {
  Hdr("flags", 1);
  s_.ring_mode = s_.ring_mode_before = 0600;
  Feed();
  s_.ring_mode = s_.ring_mode_before = -1;  // gone while READY
  EXPECT_TRUE(Feed().empty());
  Hdr("state", spec_.Enum("segment_state", "CLOSED"));
  EXPECT_TRUE(HasReq(Feed(), "RES-CLOSE-01"));
}

// The first sample's stat of the ring can come before the publisher creates it and the header
// copy after READY: that ring was never gone, and a later CLOSED must not report it.
TEST_F(ObserverTest, RingCreatedWithinTheFirstSample) {
  Hdr("flags", 1);
  s_.ring_mode_before = -1;
  s_.ring_mode = 0600;
  EXPECT_TRUE(Feed().empty());
  s_.ring_mode_before = 0600;
  EXPECT_TRUE(Feed().empty());
  s_.ring_mode = s_.ring_mode_before = -1;
  Hdr("state", spec_.Enum("segment_state", "CLOSED"));
  auto v = Feed();
  EXPECT_FALSE(HasReq(v, "RES-CLOSE-01")) << Reqs(v);
}

TEST_F(ObserverTest, CommitWithoutFutexIncrement) {
  bump_ = false;
  Feed();
  Commit(1);
  EXPECT_TRUE(Feed().empty());  // one commit may be in flight
  Commit(2);
  auto v = Feed();
  EXPECT_TRUE(HasReq(v, "ACK-COMMIT-01")) << Reqs(v);
}

TEST_F(ObserverTest, ClosedIsFinal) {
  Feed();
  Hdr("state", spec_.Enum("segment_state", "CLOSED"));
  Feed();
  Hdr("state", spec_.Enum("segment_state", "READY"));
  EXPECT_TRUE(HasReq(Feed(), "RES-CLOSE-01"));
}

TEST_F(ObserverTest, DisabledChecksStaySilent) {
  Feed();
  Hdr("reserved1", 1);
  EXPECT_TRUE(Feed(kObsAll & ~kObsReserved).empty());
}

TEST_F(ObserverTest, IutSubscriberWritesAnotherSlot) {
  ShmChecker sub_checker(spec_, IutRole::kSubscriber);
  std::vector<ObsViolation> v;
  sub_checker.Feed(s_, kObsAll, &v);
  EXPECT_TRUE(v.empty()) << Reqs(v);
  Set(s_.subs, 128, "SubscriberSlot", "ack_seq", 3);  // slot 1 was never assigned
  sub_checker.Feed(s_, kObsAll, &v);
  EXPECT_TRUE(HasReq(v, "SHM-SUB-01")) << Reqs(v);
}

TEST_F(ObserverTest, IutSubscriberAcksAhead) {
  ShmChecker sub_checker(spec_, IutRole::kSubscriber);
  std::vector<ObsViolation> v;
  Commit(1);
  sub_checker.Feed(s_, kObsAll, &v);
  Sub(0, "ack_seq", 2);
  sub_checker.Feed(s_, kObsAll, &v);
  EXPECT_TRUE(HasReq(v, "ACK-REL-03")) << Reqs(v);
}

TEST_F(ObserverTest, RingCleanSequencePasses) {
  EXPECT_TRUE(FeedRing().empty());
  for (uint64_t n = 1; n <= 5; ++n) {
    Packet(n, 100, n == 1);
    auto v = FeedRing();
    EXPECT_TRUE(v.empty()) << n << ": " << Reqs(v);
  }
}

TEST_F(ObserverTest, RingHeadBeforeRecordComplete) {
  FeedRing();
  Packet(1, 100, true);
  StoreLe(r_.data, 0, 1, 8);  // lock still 2n - 1 while head_seq says complete
  auto v = FeedRing();
  EXPECT_TRUE(HasReq(v, "PKT-WRITE-04")) << Reqs(v);
}

TEST_F(ObserverTest, RingTailMovesBack) {
  Ring("tail_pos", 64);
  Ring("head_pos", 64);
  FeedRing();
  Ring("tail_pos", 32);
  EXPECT_TRUE(HasReq(FeedRing(), "PKT-WRITE-02"));
}

TEST_F(ObserverTest, RingRecordOverwrittenInsideTail) {
  FeedRing();
  Packet(1, 100, true);
  Packet(2, 100, false);
  Packet(3, 100, false);
  FeedRing();
  StoreLe(r_.data, 160, 2 * 9 - 1, 8);  // packet 2's record written over, tail_pos still 0
  auto v = FeedRing();
  EXPECT_TRUE(HasReq(v, "PKT-WRITE-02")) << Reqs(v);
}

TEST_F(ObserverTest, RingRecordFieldsBeforeOddLock) {
  Packet(1, 100, true);
  FeedRing();
  // The next record's size written while its lock word is still old bytes.
  StoreLe(r_.data, 160 + 8, 50, 4);
  auto v = FeedRing();
  EXPECT_TRUE(HasReq(v, "PKT-WRITE-03")) << Reqs(v);
}

TEST_F(ObserverTest, RingRecordUnknownFlagsAndReserved) {
  Packet(1, 100, true);
  StoreLe(r_.data, 12, 0x10, 4);
  EXPECT_TRUE(HasReq(FeedRing(), "PKT-REC-04"));
}

TEST_F(ObserverTest, RingRecordReservedNonzero) {
  Packet(1, 100, true);
  StoreLe(r_.data, 28, 1, 4);
  EXPECT_TRUE(HasReq(FeedRing(), "VER-RSV-01"));
}

TEST_F(ObserverTest, CodecParamsWrittenOutsideLock) {
  StoreLe(r_.params, 0, 2, 8);
  StoreLe(r_.params, 8, 1, 4);
  StoreLe(r_.params, 12, 4, 4);
  StoreLe(r_.params, 64 + 4096, 2, 8);
  EXPECT_TRUE(FeedRing().empty());
  StoreLe(r_.params, 64, 0xab, 1);  // data changed, lock still 2
  EXPECT_TRUE(HasReq(FeedRing(), "PKT-PARAMS-01"));
}

TEST_F(ObserverTest, CodecParamsNewDataSameGeneration) {
  StoreLe(r_.params, 0, 2, 8);
  StoreLe(r_.params, 8, 1, 4);
  StoreLe(r_.params, 64 + 4096, 2, 8);
  FeedRing();
  StoreLe(r_.params, 0, 4, 8);
  StoreLe(r_.params, 64 + 4096, 4, 8);
  StoreLe(r_.params, 64, 0xab, 1);
  EXPECT_TRUE(HasReq(FeedRing(), "PKT-PARAMS-04"));
}

TEST_F(ObserverTest, RingHeaderConstantAfterReady) {
  FeedRing();
  Ring("max_packet_bytes", 2000);
  EXPECT_TRUE(HasReq(FeedRing(), "RES-CREATE-04"));
}

}  // namespace
}  // namespace cuframes::conform
