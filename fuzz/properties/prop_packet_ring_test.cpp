// prop_packet_ring_test.cpp: the packet ring (spec section 10, reference/src/packet_ring.h)
// against the spec model of fuzz/ring_model.h, with rc::state: arbitrary capacities, maximum
// packet sizes, packet sizes and keyframe patterns, interleaved with reads, late joins
// (seek to RingWriter::position()), re-attaches, codec-parameter publications and close.
//
// After every writer step the shared header and every record still in the ring hold exactly
// what spec 10.3/10.4 say (lock 2n, size, flags, pts, params_generation, payload). Every read
// returns exactly the model's prediction: the next packet in order with its bytes, AGAIN, or
// PACKET_OVERRUN with the cursor moved to the spec's resync position, after which only a
// keyframe is delivered first (PKT-READ-02..06, PKT-API-01); never torn or misplaced bytes.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <ostream>
#include <string>
#include <vector>

#include "known_bugs.h"
#include "packet_ring.h"
#include "prop_common.h"
#include "ring_model.h"
#include "status.h"

namespace cuframes::fuzz {
namespace {

using ring::Packet;
using ring::RingReader;
using ring::RingWriter;

// How often each outcome was exercised, printed at exit (evidence that the property is not
// vacuous: deliveries, overruns, skips and AGAIN all occur).
struct Stats {
  uint64_t delivered = 0, again = 0, overrun = 0, closed = 0, skipped = 0, pads = 0;
  ~Stats() {
    std::printf(
        "packet ring model: %llu delivered, %llu AGAIN, %llu PACKET_OVERRUN, %llu "
        "PEER_CLOSED, %llu skipped before a keyframe, %llu PAD records checked\n",
        static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(again),
        static_cast<unsigned long long>(overrun), static_cast<unsigned long long>(closed),
        static_cast<unsigned long long>(skipped), static_cast<unsigned long long>(pads));
  }
} g_stats;

struct Model {
  RingModel ring;
  RingModel::Position cursor;
  bool need_key = true;
  bool attached = true;
};

struct AlignedFree {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

struct Sut {
  std::unique_ptr<uint8_t[], AlignedFree> mem;
  size_t size = 0;
  RingWriter writer;
  RingReader reader;
  std::vector<uint8_t> last_params;
};

std::string Pos(RingModel::Position p) {
  return "(" + std::to_string(p.seq) + ", " + std::to_string(p.pos) + ")";
}

// True if the 8 bytes at `at`'s position read as its lock 2n although its record is gone: the
// signature of B13 (fuzz/known_bugs.txt).
bool StaleLock(const Sut& sut, const RingModel& m, RingModel::Position at) {
  uint64_t v = 0;
  std::memcpy(&v, sut.mem.get() + ring::kRingDataOffset + at.pos % m.capacity(), 8);
  return at.seq != 0 && v == 2 * at.seq;
}

// Every record still in the ring, and the header, against the model.
void CheckRing(const Sut& sut, const RingModel& m) {
  const auto* h = reinterpret_cast<const ring::PacketRingHeader*>(sut.mem.get());
  RC_ASSERT(h->head_seq == m.head_seq());
  RC_ASSERT(h->head_pos == m.head_pos());
  RC_ASSERT(h->tail_pos == m.tail_pos());
  RC_ASSERT(h->last_key_seq == m.last_key().seq);
  RC_ASSERT(h->last_key_pos == m.last_key().pos);
  for (const RingModel::Record& r : m.records()) {
    const uint8_t* p = sut.mem.get() + ring::kRingDataOffset + r.pos % m.capacity();
    const auto* rec = reinterpret_cast<const ring::PacketRecordHeader*>(p);
    RC_ASSERT(rec->lock == 2 * r.seq);
    RC_ASSERT(rec->size == r.size);
    RC_ASSERT(rec->flags ==
              ((r.pad ? ring::kPacketPad : 0u) | (r.key ? ring::kPacketKeyframe : 0u)));
    RC_ASSERT(rec->reserved0 == 0u);
    if (r.pad) {
      ++g_stats.pads;
      RC_ASSERT(rec->pts == 0 && rec->params_generation == 0u);  // PKT-REC-02
      continue;
    }
    RC_ASSERT(rec->pts == r.pts);
    RC_ASSERT(rec->params_generation == r.params_generation);
    for (uint32_t i = 0; i < r.size; ++i)
      RC_ASSERT(p[32 + i] == PayloadByte(r.seq, i));
  }
}

struct Publish : rc::state::Command<Model, Sut> {
  uint32_t size;
  bool key;
  explicit Publish(const Model& m)
      : size(*rc::gen::oneOf(
            rc::gen::inRange<uint32_t>(0, std::min<uint32_t>(65, m.ring.max_packet_bytes() + 1)),
            rc::gen::inRange<uint32_t>(0, m.ring.max_packet_bytes() + 1))),
        key(*rc::gen::weightedOneOf<bool>({{1, rc::gen::just(true)}, {3, rc::gen::just(false)}})) {}
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.ring.closed()); }
  void apply(Model& m) const override {
    m.ring.Publish(size, key, static_cast<int64_t>(m.ring.head_seq() + 1) * 40);
  }
  void run(const Model& m, Sut& sut) const override {
    const uint64_t n = m.ring.head_seq() + 1;
    std::vector<uint8_t> data(size);
    for (uint32_t i = 0; i < size; ++i)
      data[i] = PayloadByte(n, i);
    RC_ASSERT(sut.writer.publish(data.data(), size, key ? ring::kPacketKeyframe : 0,
                                 static_cast<int64_t>(n) * 40) == Status::kOk);
    Model after = m;
    apply(after);
    CheckRing(sut, after.ring);
  }
  void show(std::ostream& os) const override { os << "Publish(" << size << (key ? ", KEY)" : ")"); }
};

// Many packets without a read in between: laps the reader (PACKET_OVERRUN and resync).
struct Burst : rc::state::Command<Model, Sut> {
  std::vector<std::pair<uint32_t, bool>> packets;
  explicit Burst(const Model& m) {
    const size_t n = *rc::gen::inRange<size_t>(1, 48);
    for (size_t i = 0; i < n; ++i) {
      packets.emplace_back(
          *rc::gen::inRange<uint32_t>(0, m.ring.max_packet_bytes() + 1),
          *rc::gen::weightedOneOf<bool>({{1, rc::gen::just(true)}, {4, rc::gen::just(false)}}));
    }
  }
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.ring.closed()); }
  void apply(Model& m) const override {
    for (const auto& [size, key] : packets) {
      m.ring.Publish(size, key, static_cast<int64_t>(m.ring.head_seq() + 1) * 40);
    }
  }
  void run(const Model& m, Sut& sut) const override {
    RingModel ring = m.ring;
    std::vector<uint8_t> data;
    for (const auto& [size, key] : packets) {
      const uint64_t n = ring.head_seq() + 1;
      data.resize(size);
      for (uint32_t i = 0; i < size; ++i)
        data[i] = PayloadByte(n, i);
      RC_ASSERT(sut.writer.publish(data.data(), size, key ? ring::kPacketKeyframe : 0,
                                   static_cast<int64_t>(n) * 40) == Status::kOk);
      ring.Publish(size, key, static_cast<int64_t>(n) * 40);
    }
    CheckRing(sut, ring);
  }
  void show(std::ostream& os) const override {
    os << "Burst(";
    for (size_t i = 0; i < packets.size(); ++i) {
      os << (i ? " " : "") << packets[i].first << (packets[i].second ? "K" : "");
    }
    os << ")";
  }
};

struct PublishOversized : rc::state::Command<Model, Sut> {
  uint32_t extra = *rc::gen::inRange<uint32_t>(1, 5000);
  void run(const Model& m, Sut& sut) const override {
    const uint32_t size = m.ring.max_packet_bytes() + extra;
    std::vector<uint8_t> data(size, 0x77);
    const std::vector<uint8_t> before(sut.mem.get(), sut.mem.get() + sut.size);
    const Status s = sut.writer.publish(data.data(), size, 0, 0);
    RC_ASSERT(s == (m.ring.closed() ? Status::kState : Status::kOversized));
    RC_ASSERT(std::memcmp(before.data(), sut.mem.get(), sut.size) == 0);  // PKT-WRITE-01
  }
  void show(std::ostream& os) const override { os << "PublishOversized(+" << extra << ")"; }
};

struct SetParams : rc::state::Command<Model, Sut> {
  uint32_t size = *rc::gen::inRange<uint32_t>(0, ring::kCodecParamsMaxBytes + 1);
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.ring.closed()); }
  void apply(Model& m) const override { m.ring.SetCodecParams(); }
  void run(const Model& m, Sut& sut) const override {
    std::vector<uint8_t> data(size);
    for (uint32_t i = 0; i < size; ++i)
      data[i] = PayloadByte(m.ring.params_generation() + 7, i);
    RC_ASSERT(sut.writer.set_codec_params(1, data.data(), size) == Status::kOk);
    if (!m.attached) return;
    ring::CodecParamsSnapshot snap;
    RC_ASSERT(sut.reader.codec_params(snap) == Status::kOk);
    RC_ASSERT(snap.generation == m.ring.params_generation() + 1);
    RC_ASSERT(snap.codec == 1u);
    RC_ASSERT(std::vector<uint8_t>(snap.data.begin(), snap.data.end()) == data);
  }
  void show(std::ostream& os) const override { os << "SetParams(" << size << ")"; }
};

struct Read : rc::state::Command<Model, Sut> {
  void checkPreconditions(const Model& m) const override { RC_PRE(m.attached); }
  void apply(Model& m) const override {
    const RingModel::Prediction pr = m.ring.Next(m.cursor, m.need_key);
    m.cursor = pr.cursor;
    if (pr.outcome == RingModel::Outcome::kDelivered) m.need_key = false;
    if (pr.outcome == RingModel::Outcome::kOverrun) m.need_key = true;
  }
  void run(const Model& m, Sut& sut) const override {
    const RingModel::Prediction pr = m.ring.Next(m.cursor, m.need_key);
    const ring::Position before = sut.reader.cursor();
    RC_ASSERT(before.seq == m.cursor.seq && before.pos == m.cursor.pos);
    const std::vector<uint8_t> mem(sut.mem.get(), sut.mem.get() + sut.size);
    Packet p;
    const Status s = sut.reader.next(p, 0);
    RC_ASSERT(std::memcmp(mem.data(), sut.mem.get(), sut.size) == 0);  // PKT-READ-07
    const Status want = pr.outcome == RingModel::Outcome::kDelivered ? Status::kOk
                        : pr.outcome == RingModel::Outcome::kAgain   ? Status::kAgain
                        : pr.outcome == RingModel::Outcome::kOverrun ? Status::kPacketOverrun
                                                                     : Status::kPeerClosed;
    if (s != want && want == Status::kPacketOverrun && IsKnownBug("B13") &&
        StaleLock(sut, m.ring, pr.lapped_at)) {
      RC_DISCARD("known bug B13: a dropped record's position reads as its lock");
    }
    if (s != want) {
      RC_FAIL(std::string("next() from ") + Pos(m.cursor) + " returned " + StatusName(s) +
              ", the spec model says " + StatusName(want));
    }
    g_stats.skipped += pr.skipped;
    (s == Status::kOk              ? g_stats.delivered
     : s == Status::kAgain         ? g_stats.again
     : s == Status::kPacketOverrun ? g_stats.overrun
                                   : g_stats.closed)++;
    const ring::Position after = sut.reader.cursor();
    const RingModel::Position key = m.ring.last_key();
    if ((after.seq != pr.cursor.seq || after.pos != pr.cursor.pos) && IsKnownBug("B13") &&
        after.seq == key.seq && after.pos == key.pos && !m.ring.IntactAt(key.seq, key.pos) &&
        StaleLock(sut, m.ring, key)) {
      RC_DISCARD("known bug B13: resumed at a dropped keyframe whose position reads as its lock");
    }
    if (after.seq != pr.cursor.seq || after.pos != pr.cursor.pos) {
      RC_FAIL("cursor after next() is " + Pos({after.seq, after.pos}) + ", the model says " +
              Pos(pr.cursor));
    }
    if (s != Status::kOk) return;
    const RingModel::Record* rec = m.ring.Packet(pr.seq);
    RC_ASSERT(rec != nullptr);
    RC_ASSERT(p.seq == pr.seq);
    RC_ASSERT(p.pos == rec->pos);
    RC_ASSERT(p.flags == (rec->key ? ring::kPacketKeyframe : 0u));
    RC_ASSERT(!m.need_key || rec->key);  // PKT-READ-06
    RC_ASSERT(p.pts == rec->pts);
    RC_ASSERT(p.params_generation == rec->params_generation);
    RC_ASSERT(p.data.size() == rec->size);
    for (size_t i = 0; i < p.data.size(); ++i)
      RC_ASSERT(p.data[i] == PayloadByte(p.seq, i));
  }
  void show(std::ostream& os) const override { os << "Read"; }
};

struct Join : rc::state::Command<Model, Sut> {
  void checkPreconditions(const Model& m) const override { RC_PRE(m.attached); }
  void apply(Model& m) const override {
    m.cursor = m.ring.JoinPosition();
    m.need_key = true;
  }
  void run(const Model& m, Sut& sut) const override {
    const ring::Position jp = sut.writer.position();
    const RingModel::Position want = m.ring.JoinPosition();  // PKT-JOIN-01
    if (jp.seq != want.seq || jp.pos != want.pos) {
      RC_FAIL("writer join position " + Pos({jp.seq, jp.pos}) + ", the spec says " + Pos(want));
    }
    RC_ASSERT(sut.reader.seek(jp.seq, jp.pos) == Status::kOk);
  }
  void show(std::ostream& os) const override { os << "Join"; }
};

struct Reattach : rc::state::Command<Model, Sut> {
  void apply(Model& m) const override {
    m.attached = !m.ring.closed();
    m.cursor = m.ring.Resync();
    m.need_key = true;
  }
  void run(const Model& m, Sut& sut) const override {
    const Status s = sut.reader.attach(sut.mem.get(), sut.size);
    RC_ASSERT(s == (m.ring.closed() ? Status::kPeerClosed : Status::kOk));
    if (s != Status::kOk) return;
    const ring::Position c = sut.reader.cursor();
    const RingModel::Position want = m.ring.Resync();  // PKT-READ-05
    if ((c.seq != want.seq || c.pos != want.pos) && IsKnownBug("B13") &&
        !m.ring.IntactAt(m.ring.last_key().seq, m.ring.last_key().pos) &&
        StaleLock(sut, m.ring, m.ring.last_key())) {
      RC_DISCARD("known bug B13: the dropped keyframe's position reads as its lock");
    }
    if (c.seq != want.seq || c.pos != want.pos) {
      RC_FAIL("cursor after attach " + Pos({c.seq, c.pos}) + ", the spec says " + Pos(want));
    }
  }
  void show(std::ostream& os) const override { os << "Reattach"; }
};

struct Close : rc::state::Command<Model, Sut> {
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.ring.closed()); }
  void apply(Model& m) const override { m.ring.Close(); }
  void run(const Model&, Sut& sut) const override { sut.writer.close(); }
  void show(std::ostream& os) const override { os << "Close"; }
};

RC_GTEST_PROP(PacketRingModel, ReaderGetsWhatWasWrittenOrOverrunThenKeyframe, ()) {
  const uint64_t capacity = *rc::gen::element<uint64_t>(4096, 8192, 16384);
  const uint32_t max_packet =
      *rc::gen::oneOf(rc::gen::inRange<uint32_t>(1, 300),
                      rc::gen::inRange<uint32_t>(1, static_cast<uint32_t>(capacity / 2 - 32) + 1));
  Sut sut;
  sut.size = ring::RingSegmentSize(capacity);
  sut.mem.reset(static_cast<uint8_t*>(::operator new[](sut.size, std::align_val_t{64})));
  std::memset(sut.mem.get(), 0xCD, sut.size);
  RC_ASSERT(sut.writer.init(sut.mem.get(), sut.size, capacity, max_packet, 1) == Status::kOk);
  RC_ASSERT(sut.reader.attach(sut.mem.get(), sut.size) == Status::kOk);
  Model model{RingModel(capacity, max_packet), {}, true, true};
  model.cursor = model.ring.Resync();
  rc::state::check(model, sut,
                   rc::state::gen::execOneOfWithArgs<Publish, Publish, Publish, Publish, Burst,
                                                     Burst, PublishOversized, SetParams, Read, Read,
                                                     Read, Read, Read, Join, Reattach, Close>());
}

// The writer alone, with long runs and big packets: the header and every intact record follow
// the spec after every publish (PAD placement, tail invalidation, last_key).
RC_GTEST_PROP(PacketRingModel, WriterLaysOutRecordsAsTheSpecSays,
              (const std::vector<std::pair<uint16_t, bool>>& packets)) {
  const uint64_t capacity = *rc::gen::element<uint64_t>(4096, 8192);
  const uint32_t max_packet = static_cast<uint32_t>(capacity / 2 - 32);
  Sut sut;
  sut.size = ring::RingSegmentSize(capacity);
  sut.mem.reset(static_cast<uint8_t*>(::operator new[](sut.size, std::align_val_t{64})));
  RC_ASSERT(sut.writer.init(sut.mem.get(), sut.size, capacity, max_packet, 0) == Status::kOk);
  RingModel m(capacity, max_packet);
  for (const auto& [raw_size, key] : packets) {
    const uint32_t size = raw_size % (max_packet + 1);
    const uint64_t n = m.head_seq() + 1;
    std::vector<uint8_t> data(size);
    for (uint32_t i = 0; i < size; ++i)
      data[i] = PayloadByte(n, i);
    RC_ASSERT(sut.writer.publish(data.data(), size, key ? ring::kPacketKeyframe : 0,
                                 static_cast<int64_t>(n) * 40) == Status::kOk);
    m.Publish(size, key, static_cast<int64_t>(n) * 40);
    CheckRing(sut, m);
  }
}

}  // namespace
}  // namespace cuframes::fuzz
