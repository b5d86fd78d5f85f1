// packet_ring_test.cpp: unit tests of the encoded-packet ring (spec section 10): round trips,
// wrap-around with PAD records, overrun and resync, late-join keyframe alignment, codec params,
// and readers facing hostile shared memory (every such case must end in an error, never a hang,
// a crash or a torn packet).
#include "packet_ring.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "mem_order.h"
#include "status.h"

namespace cuframes {

// Lets EXPECT_EQ print status names (found by ADL, so it lives in Status's namespace).
static void PrintTo(Status s, std::ostream* os) {
  *os << StatusName(s);
}

namespace ring {

// Reaches into RingWriter for the one state no test can reach through the API in reasonable time:
// a codec params generation about to wrap around (4 billion publications).
struct RingWriterTestPeer {
  static void SetParamsGeneration(RingWriter& w, uint32_t generation) {
    w.params_generation_ = generation;
  }
};

namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Deterministic payload byte i of packet `seq`.
uint8_t PatternByte(uint64_t seq, size_t i) {
  uint64_t x = seq * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  x *= 0x94D049BB133111EBull;
  return static_cast<uint8_t>(x >> 40);
}

std::vector<uint8_t> Pattern(uint64_t seq, size_t size) {
  std::vector<uint8_t> v(size);
  for (size_t i = 0; i < size; ++i)
    v[i] = PatternByte(seq, i);
  return v;
}

// Checks every byte of a delivered packet against the pattern of its seq.
::testing::AssertionResult MatchesPattern(const Packet& p, size_t expected_size) {
  if (p.data.size() != expected_size) {
    return ::testing::AssertionFailure()
           << "packet " << p.seq << ": size " << p.data.size() << ", expected " << expected_size;
  }
  for (size_t i = 0; i < p.data.size(); ++i) {
    if (p.data[i] != PatternByte(p.seq, i)) {
      return ::testing::AssertionFailure()
             << "packet " << p.seq << ": byte " << i << " is " << int{p.data[i]} << ", expected "
             << int{PatternByte(p.seq, i)};
    }
  }
  return ::testing::AssertionSuccess();
}

// A shared anonymous mapping, page-aligned, unmapped on destruction.
class Mapping {
 public:
  explicit Mapping(size_t size) : size_(size) {
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? nullptr : static_cast<unsigned char*>(p);
  }
  ~Mapping() {
    if (base_ != nullptr) munmap(base_, size_);
  }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  unsigned char* base() const { return base_; }
  size_t size() const { return size_; }

 private:
  size_t size_;
  unsigned char* base_;
};

// A writer and a reader on one mapping.
class RingTest : public ::testing::Test {
 protected:
  void Init(uint64_t capacity, uint32_t max_packet_bytes, uint32_t codec = 1) {
    map_ = std::make_unique<Mapping>(RingSegmentSize(capacity));
    ASSERT_NE(map_->base(), nullptr);
    ASSERT_EQ(writer_.init(map_->base(), map_->size(), capacity, max_packet_bytes, codec),
              Status::kOk);
  }
  void Attach(RingReader& r) { ASSERT_EQ(r.attach(map_->base(), map_->size()), Status::kOk); }
  Status Publish(uint64_t seq, size_t size, bool key, int64_t pts = 0) {
    const auto v = Pattern(seq, size);
    return writer_.publish(v.data(), static_cast<uint32_t>(size), key ? kPacketKeyframe : 0, pts);
  }
  PacketRingHeader* header() { return reinterpret_cast<PacketRingHeader*>(map_->base()); }
  PacketRecordHeader* record(uint64_t pos) {
    const uint64_t cap = mem::load_relaxed(&header()->capacity);
    return reinterpret_cast<PacketRecordHeader*>(map_->base() + kRingDataOffset +
                                                 (pos & (cap - 1)));
  }
  CodecParams* params() {
    return reinterpret_cast<CodecParams*>(map_->base() + kCodecParamsOffset);
  }

  std::unique_ptr<Mapping> map_;
  RingWriter writer_;
};

size_t SizeFor(uint64_t seq, size_t max) {
  return static_cast<size_t>((seq * 7919) % (max + 1));
}

TEST_F(RingTest, RoundTripEveryByte) {
  constexpr uint32_t kMax = 1000;
  Init(1 << 16, kMax);
  RingReader r;
  Attach(r);
  EXPECT_EQ(r.cursor().seq, 1u);
  EXPECT_EQ(r.cursor().pos, 0u);
  for (uint64_t seq = 1; seq <= 500; ++seq) {
    const size_t size = seq == 1 ? kMax : SizeFor(seq, kMax);
    ASSERT_EQ(Publish(seq, size, seq % 50 == 1, static_cast<int64_t>(seq) * -3), Status::kOk);
    Packet p;
    ASSERT_EQ(r.next(p, 0), Status::kOk) << "seq " << seq;
    EXPECT_EQ(p.seq, seq);
    EXPECT_EQ(p.pts, static_cast<int64_t>(seq) * -3);
    EXPECT_EQ(p.flags, seq % 50 == 1 ? kPacketKeyframe : 0u);
    EXPECT_EQ(p.params_generation, 0u);
    EXPECT_TRUE(MatchesPattern(p, size));
  }
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kAgain);
  EXPECT_EQ(r.overruns(), 0u);
}

TEST_F(RingTest, BatchedReadsAfterManyPublishes) {
  Init(1 << 16, 2000);
  RingReader r;
  Attach(r);
  uint64_t total = 0;
  for (uint64_t seq = 1; seq <= 30; ++seq) {
    ASSERT_EQ(Publish(seq, SizeFor(seq, 2000), seq == 1), Status::kOk);
    total += RecordSpan(SizeFor(seq, 2000));
  }
  ASSERT_LE(total, uint64_t{1} << 16);
  for (uint64_t seq = 1; seq <= 30; ++seq) {
    Packet p;
    ASSERT_EQ(r.next(p, 0), Status::kOk);
    ASSERT_EQ(p.seq, seq);
    EXPECT_TRUE(MatchesPattern(p, SizeFor(seq, 2000)));
  }
}

TEST_F(RingTest, RecordLayoutInSharedMemory) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 5, true, 77), Status::kOk);
  auto* h = header();
  EXPECT_EQ(h->layout_version, 1u);
  EXPECT_EQ(h->magic, 0x50465543u);
  EXPECT_EQ(std::memcmp(map_->base() + 4, "CUFP", 4), 0);
  EXPECT_EQ(h->state, kStateReady);
  EXPECT_EQ(h->header_size, 256u);
  EXPECT_EQ(h->capacity, 4096u);
  EXPECT_EQ(h->data_offset, 4416u);
  EXPECT_EQ(h->max_packet_bytes, 100u);
  EXPECT_EQ(h->codec, 1u);
  EXPECT_EQ(h->segment_size, 4416u + 4096u);
  EXPECT_EQ(h->head_seq, 1u);
  EXPECT_EQ(h->head_pos, 64u);  // align32(32 + 5)
  EXPECT_EQ(h->tail_pos, 0u);
  EXPECT_EQ(h->last_key_seq, 1u);
  EXPECT_EQ(h->last_key_pos, 0u);
  EXPECT_EQ(h->packet_futex, 1u);
  const PacketRecordHeader* rec = record(0);
  EXPECT_EQ(rec->lock, 2u);
  EXPECT_EQ(rec->size, 5u);
  EXPECT_EQ(rec->flags, kPacketKeyframe);
  EXPECT_EQ(rec->pts, 77);
  EXPECT_EQ(rec->params_generation, 0u);
  EXPECT_EQ(rec->reserved0, 0u);
  const auto v = Pattern(1, 5);
  EXPECT_EQ(std::memcmp(map_->base() + kRingDataOffset + 32, v.data(), 5), 0);
}

TEST_F(RingTest, WrapWritesPadAndReaderCrossesIt) {
  constexpr uint64_t kCap = 4096;
  constexpr uint32_t kMax = 2000;  // 2000 + 32 <= 4096 / 2
  Init(kCap, kMax);
  RingReader r;
  Attach(r);
  // 3 records of span 1024 end at 3072; the 4th (span 1536) does not fit in the 1024 left.
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_EQ(Publish(seq, 1024 - 32, seq == 1), Status::kOk);
    Packet p;
    ASSERT_EQ(r.next(p, 0), Status::kOk);
    EXPECT_TRUE(MatchesPattern(p, 1024 - 32));
  }
  ASSERT_EQ(Publish(4, 1500, false), Status::kOk);
  const PacketRecordHeader* pad = record(3072);
  EXPECT_EQ(pad->lock, 8u);  // 2 * 4: the PAD carries the seq of the packet after it
  EXPECT_EQ(pad->flags, kPacketPad);
  EXPECT_EQ(pad->size, 1024u - 32u);
  EXPECT_EQ(record(4096)->lock, 8u);
  EXPECT_EQ(header()->head_pos, 4096u + RecordSpan(1500));
  // Record 1 (pos 0) and 2 (pos 1024) were invalidated to make room for 1536 bytes.
  EXPECT_EQ(header()->tail_pos, 2048u);
  EXPECT_EQ(record(0)->lock, 8u);     // overwritten by packet 4
  EXPECT_EQ(record(2048)->lock, 6u);  // packet 3, still readable
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 4u);
  EXPECT_EQ(p.pos, 4096u);
  EXPECT_TRUE(MatchesPattern(p, 1500));
  EXPECT_EQ(r.cursor().pos, 4096u + RecordSpan(1500));
  // Many more laps, every size, reader keeping up.
  for (uint64_t seq = 5; seq < 2000; ++seq) {
    ASSERT_EQ(Publish(seq, SizeFor(seq, kMax), false), Status::kOk);
    ASSERT_EQ(r.next(p, 0), Status::kOk);
    ASSERT_EQ(p.seq, seq);
    ASSERT_TRUE(MatchesPattern(p, SizeFor(seq, kMax)));
  }
  EXPECT_EQ(r.overruns(), 0u);
}

TEST_F(RingTest, OverrunResyncsToLatestKeyframe) {
  Init(4096, 200);
  RingReader r;
  Attach(r);
  // Keyframe every 5th packet; each record spans 128 bytes, so the ring holds 32.
  auto key = [](uint64_t seq) {
    return seq % 5 == 1;
  };
  for (uint64_t seq = 1; seq <= 100; ++seq)
    ASSERT_EQ(Publish(seq, 96, key(seq)), Status::kOk);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kPacketOverrun);
  EXPECT_EQ(r.overruns(), 1u);
  EXPECT_EQ(r.cursor().seq, 96u);  // the latest keyframe
  for (uint64_t seq = 96; seq <= 100; ++seq) {
    ASSERT_EQ(r.next(p, 0), Status::kOk);
    EXPECT_EQ(p.seq, seq);
    EXPECT_EQ(p.flags, key(seq) ? kPacketKeyframe : 0u);
    EXPECT_TRUE(MatchesPattern(p, 96));
  }
  EXPECT_EQ(r.next(p, 0), Status::kAgain);
}

// PKT-READ-10: a lock of 2n + 1 on packet n's record while tail_pos has not passed it (a hostile
// writer; an honest one advances tail_pos right after that invalidation store) is not a lap:
// CORRUPT after the bounded spin, never PACKET_OVERRUN. An even lock above 2n is CORRUPT at once.
TEST_F(RingTest, LockAboveWantWithoutLapIsCorrupt) {
  Init(4096, 200);
  ASSERT_EQ(Publish(1, 96, true), Status::kOk);
  ASSERT_EQ(Publish(2, 96, false), Status::kOk);
  RingReader r;
  Attach(r);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 1u);
  mem::store_release<uint64_t>(&record(128)->lock, 5);  // packet 2: 2n + 1
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  EXPECT_EQ(r.overruns(), 0u);
  mem::store_release<uint64_t>(&record(128)->lock, 6);  // even, above 2n
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  EXPECT_EQ(r.overruns(), 0u);
}

// PKT-PARAMS-05: the ring's codec is fixed; parameters for another codec are refused.
TEST_F(RingTest, CodecParamsForAnotherCodecRefused) {
  Init(4096, 200);
  const uint8_t g[1] = {7};
  const uint64_t lock = params()->lock;
  EXPECT_EQ(writer_.set_codec_params(2, g, 1), Status::kInvalidArgument);
  EXPECT_EQ(params()->lock, lock);
  EXPECT_EQ(params()->generation, 0u);
}

TEST_F(RingTest, OverrunAfterExactlyOneLap) {
  Init(4096, 200);
  RingReader r;
  Attach(r);
  ASSERT_EQ(Publish(1, 96, true), Status::kOk);
  // The reader's cursor is (1, 0); lap it exactly once so that the record at 0 is packet 33.
  for (uint64_t seq = 2; seq <= 33; ++seq)
    ASSERT_EQ(Publish(seq, 96, seq == 33), Status::kOk);
  EXPECT_EQ(record(0)->lock, 66u);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kPacketOverrun);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 33u);
}

TEST_F(RingTest, OverrunWithKeyframeGoneSkipsToNextKeyframe) {
  Init(4096, 200);
  RingReader r;
  Attach(r);
  ASSERT_EQ(Publish(1, 96, true), Status::kOk);
  for (uint64_t seq = 2; seq <= 80; ++seq)
    ASSERT_EQ(Publish(seq, 96, false), Status::kOk);
  Packet p;
  // last_key (1) is long overwritten: the reader falls back to the head.
  ASSERT_EQ(r.next(p, 0), Status::kPacketOverrun);
  EXPECT_EQ(r.cursor().seq, 81u);
  EXPECT_EQ(r.next(p, 0), Status::kAgain);
  ASSERT_EQ(Publish(81, 50, false), Status::kOk);
  ASSERT_EQ(Publish(82, 60, false), Status::kOk);
  EXPECT_EQ(r.next(p, 0), Status::kAgain);  // non-keyframes before the first keyframe: skipped
  ASSERT_EQ(Publish(83, 70, true), Status::kOk);
  ASSERT_EQ(Publish(84, 80, false), Status::kOk);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 83u);
  EXPECT_TRUE(MatchesPattern(p, 70));
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 84u);
  EXPECT_TRUE(MatchesPattern(p, 80));
}

TEST_F(RingTest, LateJoinerStartsAtKeyframe) {
  Init(1 << 16, 500);
  EXPECT_EQ(writer_.position().seq, 1u);
  EXPECT_EQ(writer_.position().pos, 0u);
  ASSERT_EQ(Publish(1, 100, false), Status::kOk);
  ASSERT_EQ(Publish(2, 100, false), Status::kOk);
  // No keyframe yet: (head_seq + 1, head_pos).
  EXPECT_EQ(writer_.position().seq, 3u);
  EXPECT_EQ(writer_.position().pos, 2 * RecordSpan(100));
  ASSERT_EQ(Publish(3, 100, true), Status::kOk);
  const uint64_t key_pos = 2 * RecordSpan(100);
  ASSERT_EQ(Publish(4, 100, false), Status::kOk);
  ASSERT_EQ(Publish(5, 100, false), Status::kOk);
  const Position start = writer_.position();
  EXPECT_EQ(start.seq, 3u);
  EXPECT_EQ(start.pos, key_pos);

  RingReader r;
  Attach(r);  // attach alone also lands on the latest keyframe
  EXPECT_EQ(r.cursor().seq, 3u);
  ASSERT_EQ(r.seek(start.seq, start.pos), Status::kOk);
  for (uint64_t seq = 3; seq <= 5; ++seq) {
    Packet p;
    ASSERT_EQ(r.next(p, 0), Status::kOk);
    EXPECT_EQ(p.seq, seq);
    EXPECT_TRUE(MatchesPattern(p, 100));
  }
}

TEST_F(RingTest, JoinBeforeAnyKeyframeSkipsNonKeyframes) {
  Init(1 << 16, 500);
  ASSERT_EQ(Publish(1, 10, false), Status::kOk);
  const Position start = writer_.position();
  RingReader r;
  Attach(r);
  ASSERT_EQ(r.seek(start.seq, start.pos), Status::kOk);
  ASSERT_EQ(Publish(2, 20, false), Status::kOk);
  ASSERT_EQ(Publish(3, 30, false), Status::kOk);
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kAgain);
  ASSERT_EQ(Publish(4, 40, true), Status::kOk);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 4u);
  EXPECT_TRUE(MatchesPattern(p, 40));
}

TEST_F(RingTest, SeekToNonKeyframeSkipsUntilKeyframe) {
  Init(1 << 16, 500);
  for (uint64_t seq = 1; seq <= 6; ++seq)
    ASSERT_EQ(Publish(seq, 64, seq == 4), Status::kOk);
  RingReader r;
  Attach(r);
  ASSERT_EQ(r.seek(2, RecordSpan(64)), Status::kOk);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 4u);
  EXPECT_EQ(r.seek(0, 0), Status::kInvalidArgument);
  EXPECT_EQ(r.seek(1, 16), Status::kInvalidArgument);
}

TEST_F(RingTest, OversizedWritesNothing) {
  Init(4096, 100);
  std::vector<uint8_t> big(101, 1);
  EXPECT_EQ(writer_.publish(big.data(), 101, 0, 0), Status::kOversized);
  EXPECT_EQ(header()->head_seq, 0u);
  EXPECT_EQ(header()->head_pos, 0u);
  EXPECT_EQ(header()->packet_futex, 0u);
  EXPECT_EQ(writer_.publish(big.data(), 100, kPacketKeyframe, 0), Status::kOk);
  EXPECT_EQ(writer_.publish(big.data(), 1, kPacketPad, 0), Status::kInvalidArgument);
  EXPECT_EQ(writer_.publish(big.data(), 1, 4, 0), Status::kInvalidArgument);
  EXPECT_EQ(writer_.publish(nullptr, 1, 0, 0), Status::kInvalidArgument);
  EXPECT_EQ(writer_.publish(nullptr, 0, 0, 0), Status::kOk);  // empty packets are allowed
  EXPECT_EQ(header()->head_seq, 2u);
}

TEST(RingWriterInit, RejectsBadArguments) {
  Mapping m(RingSegmentSize(8192));
  RingWriter w;
  EXPECT_EQ(w.init(nullptr, m.size(), 8192, 100, 1), Status::kInvalidArgument);
  EXPECT_EQ(w.init(m.base() + 8, m.size() - 8, 4096, 100, 1), Status::kInvalidArgument);
  EXPECT_EQ(w.init(m.base(), m.size(), 6000, 100, 1), Status::kInvalidArgument);  // not 2^k
  EXPECT_EQ(w.init(m.base(), m.size(), 2048, 100, 1), Status::kInvalidArgument);  // < 4096
  EXPECT_EQ(w.init(m.base(), m.size(), 8192, 0, 1), Status::kInvalidArgument);
  EXPECT_EQ(w.init(m.base(), m.size(), 8192, 4096 - 31, 1), Status::kInvalidArgument);
  EXPECT_EQ(w.init(m.base(), m.size() - 1, 8192, 100, 1), Status::kInvalidArgument);
  EXPECT_EQ(w.publish("x", 1, 0, 0), Status::kState);
  EXPECT_EQ(w.init(m.base(), m.size(), 8192, 4096 - 32, 1), Status::kOk);  // largest allowed
  EXPECT_EQ(w.init(m.base(), m.size(), 8192, 100, 1), Status::kState);
}

TEST_F(RingTest, CodecParamsGenerations) {
  Init(4096, 100, /*codec=*/2);
  RingReader r;
  Attach(r);
  CodecParamsSnapshot cp;
  EXPECT_EQ(r.codec_params(cp), Status::kNoCodecParams);
  const auto sps = Pattern(1000, 37);
  ASSERT_EQ(writer_.set_codec_params(2, sps.data(), 37), Status::kOk);
  ASSERT_EQ(r.codec_params(cp), Status::kOk);
  EXPECT_EQ(cp.generation, 1u);
  EXPECT_EQ(cp.codec, 2u);
  ASSERT_EQ(cp.data.size(), 37u);
  EXPECT_EQ(std::memcmp(cp.data.data(), sps.data(), 37), 0);
  EXPECT_EQ(params()->lock, 2u);
  ASSERT_EQ(Publish(1, 10, true), Status::kOk);

  const auto big = Pattern(2000, kCodecParamsMaxBytes + 1);
  EXPECT_EQ(writer_.set_codec_params(2, big.data(), kCodecParamsMaxBytes + 1), Status::kOversized);
  EXPECT_EQ(params()->lock, 2u);
  ASSERT_EQ(writer_.set_codec_params(2, big.data(), kCodecParamsMaxBytes), Status::kOk);
  ASSERT_EQ(Publish(2, 10, true), Status::kOk);
  ASSERT_EQ(r.codec_params(cp), Status::kOk);
  EXPECT_EQ(cp.generation, 2u);
  ASSERT_EQ(cp.data.size(), kCodecParamsMaxBytes);
  EXPECT_EQ(std::memcmp(cp.data.data(), big.data(), kCodecParamsMaxBytes), 0);

  Packet p;
  EXPECT_EQ(record(0)->params_generation, 1u);
  ASSERT_EQ(r.seek(1, 0), Status::kOk);
  // Packet 1 is a keyframe of generation 1 while the current generation is 2: skipped
  // (PKT-READ-08).
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 2u);
  EXPECT_EQ(p.params_generation, 2u);
  ASSERT_EQ(writer_.set_codec_params(2, nullptr, 0), Status::kOk);
  ASSERT_EQ(r.codec_params(cp), Status::kOk);
  EXPECT_EQ(cp.generation, 3u);
  EXPECT_TRUE(cp.data.empty());
}

TEST_F(RingTest, BlockingNextWakesOnPublishAndTimesOut) {
  Init(4096, 100);
  RingReader r;
  Attach(r);
  Packet p;
  auto t0 = steady_clock::now();
  EXPECT_EQ(r.next(p, 30), Status::kTimeout);
  EXPECT_GE(steady_clock::now() - t0, milliseconds(30));
  std::thread publisher([&] {
    // No sleep: the reader may or may not be blocked yet; both paths must deliver.
    EXPECT_EQ(Publish(1, 33, true), Status::kOk);
  });
  ASSERT_EQ(r.next(p, 10000), Status::kOk);
  EXPECT_TRUE(MatchesPattern(p, 33));
  publisher.join();
}

TEST_F(RingTest, CloseEndsTheStream) {
  Init(4096, 100);
  RingReader r;
  Attach(r);
  ASSERT_EQ(Publish(1, 10, true), Status::kOk);
  writer_.close();
  writer_.close();  // idempotent
  EXPECT_EQ(Publish(2, 10, true), Status::kState);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);  // what was published stays readable
  EXPECT_EQ(r.next(p, 0), Status::kPeerClosed);
  EXPECT_EQ(r.next(p, -1), Status::kPeerClosed);
  RingReader late;
  EXPECT_EQ(late.attach(map_->base(), map_->size()), Status::kPeerClosed);
}

TEST_F(RingTest, CloseWakesBlockedReader) {
  Init(4096, 100);
  RingReader r;
  Attach(r);
  std::thread closer([&] { writer_.close(); });
  Packet p;
  EXPECT_EQ(r.next(p, -1), Status::kPeerClosed);
  closer.join();
}

// ---------------------------------------------------------------------------- hostile memory

TEST_F(RingTest, HostileSizeOutOfRange) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  RingReader r;
  Attach(r);
  Packet p;
  record(0)->size = 101;  // > max_packet_bytes
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  record(0)->size = 0xFFFFFFFF;
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  record(0)->size = 50;
  ASSERT_EQ(r.next(p, 0), Status::kOk);  // cursor unchanged by the errors
  EXPECT_TRUE(MatchesPattern(p, 50));
}

TEST_F(RingTest, HostileRecordStraddlesEnd) {
  Init(4096, 2000);
  // Records of span 992 at 0, 992, 1984, 2976.
  for (uint64_t seq = 1; seq <= 4; ++seq)
    ASSERT_EQ(Publish(seq, 960, seq == 1), Status::kOk);
  // Packet 4 sits at 2976 (span 992): claim a size that would run past the end.
  RingReader r;
  Attach(r);
  ASSERT_EQ(r.seek(4, 3 * 992), Status::kOk);
  record(3 * 992)->flags = kPacketKeyframe;
  record(3 * 992)->size = 1500;  // <= max, but 2976 + 1536 > 4096
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
}

TEST_F(RingTest, HostileLockHeldOddReturnsCorruptAfterBoundedSpin) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  RingReader r;
  Attach(r);
  record(0)->lock = 1;  // "being written" forever, while head_seq says it is published
  Packet p;
  const auto t0 = steady_clock::now();
  EXPECT_EQ(r.next(p, -1), Status::kCorrupt);
  const auto spent = steady_clock::now() - t0;
  EXPECT_GE(spent, milliseconds(kSeqlockSpinLimitMs));
  EXPECT_LT(spent, milliseconds(5000));
  // A lock that goes back to even but older than the cursor is corrupt at once.
  record(0)->lock = 0;
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
}

TEST_F(RingTest, OddLockThatCompletesIsRead) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  RingReader r;
  Attach(r);
  uint64_t* lock = &record(0)->lock;
  mem::store_release(lock, uint64_t{1});
  // The "writer" finishes the record while the reader spins (or before it looks: both must
  // deliver).
  std::thread fixer([&] { mem::store_release(lock, uint64_t{2}); });
  Packet p;
  const Status s = r.next(p, 0);
  fixer.join();
  ASSERT_EQ(s, Status::kOk);
  EXPECT_TRUE(MatchesPattern(p, 50));
}

TEST_F(RingTest, HostileUnknownFlags) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  RingReader r;
  Attach(r);
  Packet p;
  record(0)->flags = kPacketKeyframe | 0x80;
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  record(0)->flags = kPacketKeyframe | kPacketPad;  // PAD with another bit
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  record(0)->flags = kPacketKeyframe;
  EXPECT_EQ(r.next(p, 0), Status::kOk);
}

TEST_F(RingTest, HostilePadCannotLoopForever) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  RingReader r;
  Attach(r);
  // A PAD at data offset 0 would send the reader to the same record on every lap.
  record(0)->flags = kPacketPad;
  record(0)->size = 4096 - 32;
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  // A PAD whose size does not reach the end of the lap.
  ASSERT_EQ(Publish(2, 50, true), Status::kOk);  // at RecordSpan(50) = 96
  ASSERT_EQ(r.seek(2, 96), Status::kOk);
  record(96)->flags = kPacketPad;
  record(96)->size = 100;
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
}

TEST_F(RingTest, HostileHeadAndKeyPositions) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  // Misaligned / garbage key and head positions: attach must not crash; next() reports corrupt
  // or waits, never hands out data.
  header()->last_key_pos = 13;
  header()->head_pos = 17;
  header()->head_seq = UINT64_MAX;
  RingReader r;
  Attach(r);
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kCorrupt);
  header()->last_key_seq = UINT64_MAX;
  header()->last_key_pos = 0;
  RingReader r2;
  Attach(r2);
  EXPECT_EQ(r2.next(p, 0), Status::kCorrupt);
}

TEST_F(RingTest, HostileHeaderRejectedAtAttach) {
  Init(4096, 100);
  auto attach = [&](size_t size) {
    RingReader r;
    return r.attach(map_->base(), size);
  };
  auto* h = header();
  const PacketRingHeader good = *h;
  auto reset = [&] {
    std::memcpy(static_cast<void*>(h), &good, sizeof(good));
  };
  EXPECT_EQ(attach(map_->size()), Status::kOk);

  h->magic = 0x52465543;  // the frame segment's magic
  EXPECT_EQ(attach(map_->size()), Status::kUnsupportedLayout);
  reset();
  h->layout_version = 2;
  EXPECT_EQ(attach(map_->size()), Status::kUnsupportedLayout);
  reset();
  h->header_size = 512;
  EXPECT_EQ(attach(map_->size()), Status::kUnsupportedLayout);
  reset();
  EXPECT_EQ(attach(100), Status::kUnsupportedLayout);

  h->capacity = 6144;  // not a power of two
  EXPECT_EQ(attach(map_->size()), Status::kCorrupt);
  h->capacity = 2048;  // < 4096
  EXPECT_EQ(attach(map_->size()), Status::kCorrupt);
  reset();
  h->data_offset = 4096;
  EXPECT_EQ(attach(map_->size()), Status::kCorrupt);
  reset();
  h->max_packet_bytes = 0;
  EXPECT_EQ(attach(map_->size()), Status::kCorrupt);
  h->max_packet_bytes = 2048 - 31;  // + 32 > capacity / 2
  EXPECT_EQ(attach(map_->size()), Status::kCorrupt);
  reset();
  h->segment_size = 4416 + 4095;  // < data_offset + capacity
  EXPECT_EQ(attach(map_->size()), Status::kCorrupt);
  reset();
  EXPECT_EQ(attach(map_->size() - 1), Status::kCorrupt);  // segment_size > mapped size
  // Larger is wrong too (PKT-HDR-01: equal to data_offset + capacity and to the file size); the
  // claimed sizes are never read past the header and the data area here.
  EXPECT_EQ(attach(map_->size() + 4096), Status::kCorrupt);  // file larger than segment_size
  h->segment_size = map_->size() + 4096;                     // both, beyond the capacity
  EXPECT_EQ(attach(map_->size() + 4096), Status::kCorrupt);
  reset();
  h->state = kStateInit;
  EXPECT_EQ(attach(map_->size()), Status::kAgain);
  h->state = kStateClosed;
  EXPECT_EQ(attach(map_->size()), Status::kPeerClosed);
  h->state = 7;
  EXPECT_EQ(attach(map_->size()), Status::kCorrupt);
  reset();
  std::memset(static_cast<void*>(h), 0, sizeof(*h));  // a ring still being created
  EXPECT_EQ(attach(map_->size()), Status::kAgain);
  reset();
  RingReader r;
  EXPECT_EQ(r.attach(map_->base() + 32, map_->size() - 32), Status::kInvalidArgument);
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kState);
}

TEST_F(RingTest, HostileCodecParams) {
  Init(4096, 100);
  RingReader r;
  Attach(r);
  const uint8_t sps[4] = {1, 2, 3, 4};
  ASSERT_EQ(writer_.set_codec_params(1, sps, 4), Status::kOk);
  CodecParams* cp = params();
  CodecParamsSnapshot out;
  cp->size = kCodecParamsMaxBytes + 1;
  EXPECT_EQ(r.codec_params(out), Status::kCorrupt);
  cp->size = 4;
  cp->lock = 3;  // held odd forever
  const auto t0 = steady_clock::now();
  EXPECT_EQ(r.codec_params(out), Status::kCorrupt);
  EXPECT_GE(steady_clock::now() - t0, milliseconds(kSeqlockSpinLimitMs));
  cp->lock = 4;
  ASSERT_EQ(r.codec_params(out), Status::kOk);
  EXPECT_EQ(out.data.size(), 4u);
}

// ------------------------------------------------------ codec params generations (10.5)

TEST(NextParamsGeneration, SkipsZeroOnWrap) {
  // PKT-PARAMS-01: previous + 1, skipping 0 when it wraps.
  static_assert(NextParamsGeneration(0) == 1);
  static_assert(NextParamsGeneration(1) == 2);
  static_assert(NextParamsGeneration(UINT32_MAX - 1) == UINT32_MAX);
  static_assert(NextParamsGeneration(UINT32_MAX) == 1);
}

TEST_F(RingTest, CodecParamsGenerationWrapsToOneNotZero) {
  Init(4096, 100, /*codec=*/1);
  RingReader r;
  Attach(r);
  RingWriterTestPeer::SetParamsGeneration(writer_, UINT32_MAX - 1);
  const uint8_t a[3] = {1, 2, 3};
  ASSERT_EQ(writer_.set_codec_params(1, a, 3), Status::kOk);
  EXPECT_EQ(writer_.params_generation(), UINT32_MAX);
  EXPECT_EQ(params()->generation, UINT32_MAX);
  ASSERT_EQ(Publish(1, 10, true), Status::kOk);
  EXPECT_EQ(record(0)->params_generation, UINT32_MAX);
  ASSERT_EQ(writer_.set_codec_params(1, a, 2), Status::kOk);  // wraps: 0 is skipped
  EXPECT_EQ(writer_.params_generation(), 1u);
  EXPECT_EQ(params()->generation, 1u);
  EXPECT_EQ(params()->lock, 4u);
  CodecParamsSnapshot cp;
  ASSERT_EQ(r.codec_params(cp), Status::kOk);  // not NO_CODEC_PARAMS
  EXPECT_EQ(cp.generation, 1u);
  EXPECT_EQ(cp.data.size(), 2u);
  ASSERT_EQ(Publish(2, 10, true), Status::kOk);
  EXPECT_EQ(record(RecordSpan(10))->params_generation, 1u);
  // The reader's cursor (1, 0) holds a keyframe of generation UINT32_MAX: skipped (PKT-READ-08).
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 2u);
  EXPECT_EQ(p.params_generation, 1u);
}

TEST_F(RingTest, CodecParamsCodecMustBeTheRingsCodec) {
  Init(4096, 100, /*codec=*/2);
  const uint8_t sps[4] = {0, 0, 1, 0x40};
  // PKT-PARAMS-01: the block's codec equals the ring header's; another codec writes nothing.
  EXPECT_EQ(writer_.set_codec_params(1, sps, 4), Status::kInvalidArgument);
  EXPECT_EQ(writer_.set_codec_params(0, sps, 4), Status::kInvalidArgument);
  EXPECT_EQ(params()->lock, 0u);
  EXPECT_EQ(params()->generation, 0u);
  EXPECT_EQ(writer_.params_generation(), 0u);
  EXPECT_EQ(writer_.codec(), 2u);
  ASSERT_EQ(writer_.set_codec_params(2, sps, 4), Status::kOk);
  EXPECT_EQ(params()->codec, header()->codec);
  EXPECT_EQ(params()->generation, 1u);
}

// ---------------------------------------- start at a keyframe of the current params (PKT-READ-08)

TEST_F(RingTest, JoinSkipsKeyframesOfAnotherParamsGeneration) {
  Init(1 << 16, 500);
  const uint8_t g1[2] = {1, 1}, g2[2] = {2, 2};
  ASSERT_EQ(writer_.set_codec_params(1, g1, 2), Status::kOk);
  ASSERT_EQ(Publish(1, 100, true), Status::kOk);
  ASSERT_EQ(Publish(2, 100, false), Status::kOk);
  const Position start = writer_.position();  // (1, 0): the generation-1 keyframe
  EXPECT_EQ(start.seq, 1u);
  ASSERT_EQ(writer_.set_codec_params(1, g2, 2), Status::kOk);  // before the keyframe needing it
  ASSERT_EQ(Publish(3, 100, false), Status::kOk);
  ASSERT_EQ(Publish(4, 100, true), Status::kOk);
  ASSERT_EQ(Publish(5, 100, false), Status::kOk);

  RingReader r;
  Attach(r);
  ASSERT_EQ(r.seek(start.seq, start.pos), Status::kOk);  // a late joiner given the old position
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 4u);  // 1 (keyframe of generation 1), 2 and 3 skipped
  EXPECT_EQ(p.flags, kPacketKeyframe);
  EXPECT_EQ(p.params_generation, 2u);
  EXPECT_TRUE(MatchesPattern(p, 100));
  CodecParamsSnapshot cp;
  ASSERT_EQ(r.codec_params(cp), Status::kOk);
  EXPECT_EQ(cp.generation, p.params_generation);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 5u);
}

TEST_F(RingTest, JoinWaitsForAKeyframeOfTheNewParams) {
  Init(1 << 16, 500);
  const uint8_t g[1] = {7};
  ASSERT_EQ(writer_.set_codec_params(1, g, 1), Status::kOk);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  ASSERT_EQ(writer_.set_codec_params(1, g, 1), Status::kOk);  // generation 2, no keyframe yet
  RingReader r;
  Attach(r);  // lands on the latest keyframe, packet 1, of generation 1
  EXPECT_EQ(r.cursor().seq, 1u);
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kAgain);  // packet 1 skipped, nothing else yet
  EXPECT_EQ(r.cursor().seq, 2u);
  ASSERT_EQ(Publish(2, 50, false), Status::kOk);
  EXPECT_EQ(r.next(p, 0), Status::kAgain);
  ASSERT_EQ(Publish(3, 50, true), Status::kOk);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 3u);
  EXPECT_EQ(p.params_generation, 2u);
}

TEST_F(RingTest, DecodingReaderKeepsReadingAcrossAParamsChange) {
  // PKT-READ-08 applies after joining or resuming only: a reader already decoding gets every
  // packet, and sees the new generation on the packets that carry it.
  Init(1 << 16, 500);
  const uint8_t g[1] = {7};
  ASSERT_EQ(writer_.set_codec_params(1, g, 1), Status::kOk);
  RingReader r;
  Attach(r);
  ASSERT_EQ(Publish(1, 50, true), Status::kOk);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.params_generation, 1u);
  ASSERT_EQ(Publish(2, 50, false), Status::kOk);
  ASSERT_EQ(writer_.set_codec_params(1, g, 1), Status::kOk);
  ASSERT_EQ(Publish(3, 50, true), Status::kOk);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 2u);
  EXPECT_EQ(p.params_generation, 1u);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 3u);
  EXPECT_EQ(p.params_generation, 2u);
}

TEST_F(RingTest, ResyncSkipsKeyframeOfOldParams) {
  Init(4096, 200);  // records of span 128: 32 per lap
  const uint8_t g[1] = {7};
  ASSERT_EQ(writer_.set_codec_params(1, g, 1), Status::kOk);
  RingReader r;
  Attach(r);
  for (uint64_t seq = 1; seq <= 60; ++seq)
    ASSERT_EQ(Publish(seq, 96, seq % 10 == 1), Status::kOk);
  ASSERT_EQ(writer_.set_codec_params(1, g, 1), Status::kOk);  // generation 2
  ASSERT_EQ(Publish(61, 96, false), Status::kOk);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kPacketOverrun);
  EXPECT_EQ(r.cursor().seq, 51u);           // the latest keyframe, still of generation 1
  EXPECT_EQ(r.next(p, 0), Status::kAgain);  // 51..61 skipped
  ASSERT_EQ(Publish(62, 96, true), Status::kOk);
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 62u);
  EXPECT_EQ(p.params_generation, 2u);
}

TEST_F(RingTest, WithoutCodecParamsAnyKeyframeStarts) {
  Init(4096, 100);
  ASSERT_EQ(Publish(1, 10, false), Status::kOk);
  ASSERT_EQ(Publish(2, 10, true), Status::kOk);
  record(RecordSpan(10))->params_generation = 9;  // no params published: not compared
  RingReader r;
  Attach(r);
  ASSERT_EQ(r.seek(1, 0), Status::kOk);
  Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 2u);
}

TEST_F(RingTest, HostileCodecParamsLockStallsJoinBoundedly) {
  Init(4096, 100);
  const uint8_t g[1] = {7};
  ASSERT_EQ(writer_.set_codec_params(1, g, 1), Status::kOk);
  ASSERT_EQ(Publish(1, 10, true), Status::kOk);
  RingReader r;
  Attach(r);
  params()->lock = 5;  // held odd: the reader cannot learn the current generation
  Packet p;
  const auto t0 = steady_clock::now();
  EXPECT_EQ(r.next(p, -1), Status::kCorrupt);
  EXPECT_GE(steady_clock::now() - t0, milliseconds(kSeqlockSpinLimitMs));
  EXPECT_EQ(r.cursor().seq, 1u);  // unchanged
  params()->lock = 6;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  EXPECT_EQ(p.seq, 1u);
}

// ------------------------------------------------ waiter counts (SHM-ORDER-02/04, PKT-WRITE-04/07)

// Returns true once thread `tid` of this process is blocked in the futex system call (read from
// /proc/self/task/<tid>/syscall, which names the syscall a sleeping thread is in). This is the
// readiness signal the wake-up tests wait for: "the other thread is asleep in FUTEX_WAIT".
bool BlockedInFutex(pid_t tid) {
  std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
  long nr = -1;
  return static_cast<bool>(f >> nr) && nr == SYS_futex;
}

// Polls `cond` (with yields) for at most 10 s; returns whether it became true.
template <class F>
bool Eventually(F cond) {
  const auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (!cond()) {
    if (steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

pid_t ThisTid() {
  return static_cast<pid_t>(syscall(SYS_gettid));
}

// A thread that sleeps in one FUTEX_WAIT on packet_futex (like a reader that counted itself),
// with a timeout, and records how the wait ended.
class RawWaiter {
 public:
  RawWaiter(uint32_t* futex, int64_t timeout_ns) {
    thread_ = std::thread([this, futex, timeout_ns] {
      const uint32_t word = mem::load_acquire(futex);
      tid_.store(ThisTid());
      const auto t0 = steady_clock::now();
      rc_ = mem::futex_wait(futex, word, timeout_ns);
      elapsed_ = steady_clock::now() - t0;
    });
  }
  ~RawWaiter() {
    if (thread_.joinable()) thread_.join();
  }
  // Returns once the thread sleeps in FUTEX_WAIT (false after 10 s).
  bool Asleep() {
    return Eventually([&] {
      const pid_t t = tid_.load();
      return t != 0 && BlockedInFutex(t);
    });
  }
  // Joins; returns futex_wait's result (0 woken, ETIMEDOUT, EAGAIN ...).
  int Join() {
    thread_.join();
    return rc_;
  }
  steady_clock::duration elapsed() const { return elapsed_; }

 private:
  std::thread thread_;
  std::atomic<pid_t> tid_{0};
  int rc_ = -1;
  steady_clock::duration elapsed_{};
};

TEST_F(RingTest, PublishWakesOnlyWhileWaitersAreCounted) {
  Init(4096, 100);
  alignas(64) uint32_t waiters = 0;  // stands for packet_waiters in the frame segment header
  writer_.set_waiter_count(&waiters);
  {
    // Nobody counted: the publish increments packet_futex but makes no FUTEX_WAKE, so a sleeper
    // that did not count itself sleeps on until its timeout.
    RawWaiter w(&header()->packet_futex, 300'000'000);
    ASSERT_TRUE(w.Asleep());
    ASSERT_EQ(Publish(1, 10, true), Status::kOk);
    EXPECT_EQ(header()->packet_futex, 1u);
    EXPECT_EQ(w.Join(), ETIMEDOUT);
  }
  {
    // One counted waiter: the publish wakes it.
    mem::store_relaxed(&waiters, 1u);
    RawWaiter w(&header()->packet_futex, 10'000'000'000);
    ASSERT_TRUE(w.Asleep());
    ASSERT_EQ(Publish(2, 10, false), Status::kOk);
    EXPECT_EQ(header()->packet_futex, 2u);
    EXPECT_EQ(w.Join(), 0);
    EXPECT_LT(w.elapsed(), std::chrono::seconds(5));
  }
  {
    // A corrupted (huge) count only costs a wake-up.
    mem::store_relaxed(&waiters, 0xFFFFFFFFu);
    RawWaiter w(&header()->packet_futex, 10'000'000'000);
    ASSERT_TRUE(w.Asleep());
    ASSERT_EQ(Publish(3, 10, false), Status::kOk);
    EXPECT_EQ(w.Join(), 0);
  }
}

TEST_F(RingTest, PublishWithoutWaiterCountAlwaysWakes) {
  Init(4096, 100);  // no set_waiter_count: the pre-count behaviour
  RawWaiter w(&header()->packet_futex, 10'000'000'000);
  ASSERT_TRUE(w.Asleep());
  ASSERT_EQ(Publish(1, 10, true), Status::kOk);
  EXPECT_EQ(w.Join(), 0);
}

TEST_F(RingTest, CloseWakesUnconditionally) {
  Init(4096, 100);
  alignas(64) uint32_t waiters = 0;
  writer_.set_waiter_count(&waiters);
  RawWaiter w(&header()->packet_futex, 10'000'000'000);
  ASSERT_TRUE(w.Asleep());
  writer_.close();  // PKT-WRITE-07: the count reads 0, the wake happens anyway
  EXPECT_EQ(w.Join(), 0);
  EXPECT_LT(w.elapsed(), std::chrono::seconds(5));
  EXPECT_EQ(header()->packet_futex, 1u);
  EXPECT_EQ(header()->state, kStateClosed);
}

TEST_F(RingTest, ReaderCountsItselfAroundFutexWait) {
  Init(4096, 100);
  alignas(64) uint32_t waiters = 0;
  writer_.set_waiter_count(&waiters);
  RingReader r;
  Attach(r);
  r.set_waiter_count(&waiters);
  Packet p;
  EXPECT_EQ(r.next(p, 0), Status::kAgain);  // a non-blocking read never counts itself
  EXPECT_EQ(mem::load_relaxed(&waiters), 0u);
  std::atomic<pid_t> tid{0};
  Status got = Status::kState;
  std::thread reader([&] {
    tid.store(ThisTid());
    got = r.next(p, 10000);
  });
  // The reader is asleep, counted: SHM-ORDER-04's increment happened before FUTEX_WAIT.
  ASSERT_TRUE(Eventually([&] { return tid.load() != 0 && BlockedInFutex(tid.load()); }));
  EXPECT_EQ(mem::load_seq_cst(&waiters), 1u);
  const auto t0 = steady_clock::now();
  ASSERT_EQ(Publish(1, 33, true), Status::kOk);
  reader.join();
  EXPECT_LT(steady_clock::now() - t0, milliseconds(kPeerDeathDetectMs))
      << "woken by the publish, not by the end of the bounded wait";
  ASSERT_EQ(got, Status::kOk);
  EXPECT_TRUE(MatchesPattern(p, 33));
  EXPECT_EQ(mem::load_relaxed(&waiters), 0u);  // decremented after the wait
  // Timeout and close paths decrement too.
  EXPECT_EQ(r.next(p, 20), Status::kTimeout);
  EXPECT_EQ(mem::load_relaxed(&waiters), 0u);
  std::thread closer([&] {
    EXPECT_TRUE(Eventually([&] { return mem::load_seq_cst(&waiters) == 1u; }));
    writer_.close();
  });
  EXPECT_EQ(r.next(p, 10000), Status::kPeerClosed);
  closer.join();
  EXPECT_EQ(mem::load_relaxed(&waiters), 0u);
}

TEST_F(RingTest, BoundedWaitSurvivesAWakeUpThatNeverComes) {
  // SHM-ORDER-04: "no wait relies on a wake-up alone". A hostile subscriber zeroes
  // packet_waiters while a reader sleeps: the writer skips FUTEX_WAIT's wake-up, and the reader
  // still gets the packet when its bounded wait (<= PEER_DEATH_DETECT_MS) ends.
  Init(4096, 100);
  alignas(64) uint32_t writer_view = 0;  // what the writer reads: always 0
  alignas(64) uint32_t reader_count = 0;
  writer_.set_waiter_count(&writer_view);
  RingReader r;
  Attach(r);
  r.set_waiter_count(&reader_count);
  std::atomic<pid_t> tid{0};
  Status got = Status::kState;
  Packet p;
  std::thread reader([&] {
    tid.store(ThisTid());
    got = r.next(p, 10000);
  });
  ASSERT_TRUE(Eventually([&] { return tid.load() != 0 && BlockedInFutex(tid.load()); }));
  const auto t0 = steady_clock::now();
  ASSERT_EQ(Publish(1, 10, true), Status::kOk);
  reader.join();
  ASSERT_EQ(got, Status::kOk);
  EXPECT_EQ(p.seq, 1u);
  EXPECT_LT(steady_clock::now() - t0, milliseconds(5000))
      << "the caller allowed 10 s; each wait must end within PEER_DEATH_DETECT_MS";
}

}  // namespace
}  // namespace ring
}  // namespace cuframes
