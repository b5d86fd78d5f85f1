// fuzz_packet_ring.cpp: libFuzzer target for the packet-ring reader (spec section 10,
// reference/src/packet_ring.h) over hostile memory, and for the writer against the spec model.
//
// Input byte 0 picks the mode:
//  - even: raw. The rest of the input is the whole ring segment (an exact-size, 64-aligned heap
//    buffer); the reader attaches and calls next() up to 64 times.
//  - odd: structured. A ring of capacity 4096 << (b1 % 3) and max_packet_bytes from b2..b3 is
//    laid out by RingWriter; then opcodes drive the writer (publish, oversized publish, codec
//    params, close), the reader (next, seek to the late-join position, re-attach, seek anywhere)
//    and a hostile peer (overwrite bytes anywhere in the segment). Until the first hostile write
//    or arbitrary seek, every writer step is checked against ring_model.h (shared positions and
//    record bytes) and every reader result must be exactly the model's prediction.
// Always checked: attach and next() return only documented codes; a delivered packet's bytes are
// the ones in its record, which lies inside the data area, its size <= max_packet_bytes, and the
// first packet after attach, seek or PACKET_OVERRUN is a keyframe (PKT-READ-06); the reader
// never writes to the segment (PKT-READ-07); every call returns (the seqlock spin is bounded:
// the fast clock of fuzz_common.h turns SEQLOCK_SPIN_LIMIT_MS into a few iterations).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "fuzz_common.h"
#include "packet_ring.h"
#include "ring_model.h"
#include "status.h"

namespace cuframes::fuzz {
namespace {

using ring::Packet;
using ring::RingReader;
using ring::RingWriter;

struct AlignedFree {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
};
using Segment = std::unique_ptr<uint8_t[], AlignedFree>;

Segment NewSegment(size_t size) {
  auto* p = static_cast<uint8_t*>(::operator new[](size == 0 ? 1 : size, std::align_val_t{64}));
  return Segment(p);
}

// Reader-side bookkeeping shared by both modes.
struct ReaderCheck {
  ReaderCheck(const uint8_t* segment, size_t segment_size) : seg(segment), size(segment_size) {}

  const uint8_t* seg;
  size_t size;
  bool need_key = true;
  uint64_t last_seq = 0;

  // Checks the result of one next() call against the safety rules; returns it.
  Snapshot snap;

  Status Next(RingReader& r, Packet& p) {
    snap.Take(seg, size);
    Status s;
    {
      FastClockScope fast;
      s = r.next(p, 0);
    }
    FUZZ_CHECK(snap.Unchanged(), "RingReader::next wrote to the segment (PKT-READ-07)");
    FUZZ_CHECK(s == Status::kOk || s == Status::kAgain || s == Status::kPacketOverrun ||
                   s == Status::kCorrupt || s == Status::kPeerClosed,
               "next() returned %s", StatusName(s));
    if (s == Status::kPacketOverrun) need_key = true;
    if (s != Status::kOk) return s;
    const uint64_t cap = r.capacity();
    const uint64_t off = p.pos % cap;
    FUZZ_CHECK(p.data.size() <= r.max_packet_bytes(), "delivered %zu bytes, max_packet_bytes %u",
               p.data.size(), r.max_packet_bytes());
    FUZZ_CHECK(p.pos % 32 == 0 && off + 32 + p.data.size() <= cap,
               "delivered record at pos %llu (+%zu bytes) outside the data area",
               static_cast<unsigned long long>(p.pos), p.data.size());
    FUZZ_CHECK(p.flags == 0 || p.flags == ring::kPacketKeyframe, "delivered flags %u", p.flags);
    FUZZ_CHECK(!need_key || (p.flags & ring::kPacketKeyframe) != 0,
               "packet %llu delivered before a keyframe after attach/seek/overrun",
               static_cast<unsigned long long>(p.seq));
    // PKT-READ-08: ... and before a keyframe of the current codec parameters (the block is
    // static during the call, so its generation is the one the reader saw, if its lock is even).
    const uint8_t* params = seg + ring::kCodecParamsOffset;
    const uint32_t current = static_cast<uint32_t>(LoadLe(params + 8, 4));
    FUZZ_CHECK(
        !need_key || (LoadLe(params, 8) & 1) != 0 || current == 0 || p.params_generation == current,
        "packet %llu of params generation %u delivered first after a (re)sync while the "
        "current generation is %u (PKT-READ-08)",
        static_cast<unsigned long long>(p.seq), p.params_generation, current);
    const uint8_t* rec = seg + ring::kRingDataOffset + off;
    FUZZ_CHECK(SameBytes(p.data.data(), rec + 32, p.data.size()),
               "delivered bytes of packet %llu differ from its record (torn or misplaced)",
               static_cast<unsigned long long>(p.seq));
    FUZZ_CHECK(LoadLe(rec, 8) == 2 * p.seq, "delivered packet %llu from a record locked %llu",
               static_cast<unsigned long long>(p.seq),
               static_cast<unsigned long long>(LoadLe(rec, 8)));
    need_key = false;
    last_seq = p.seq;
    return s;
  }
};

Status Attach(RingReader& r, const uint8_t* seg, size_t size) {
  FastClockScope fast;
  const Status s = r.attach(seg, size);
  FUZZ_CHECK(s == Status::kOk || s == Status::kUnsupportedLayout || s == Status::kCorrupt ||
                 s == Status::kAgain || s == Status::kPeerClosed,
             "attach() returned %s", StatusName(s));
  return s;
}

void RunRaw(const uint8_t* data, size_t size, uint8_t mode) {
  Segment seg = NewSegment(size);
  if (size > 0) std::memcpy(seg.get(), data, size);
  RingReader r;
  if (Attach(r, seg.get(), size) != Status::kOk) return;
  FUZZ_CHECK(ring::ValidGeometry(r.capacity(), r.max_packet_bytes()) &&
                 ring::RingSegmentSize(r.capacity()) <= size,
             "attach accepted capacity %llu, max_packet_bytes %u in a %zu-byte segment",
             static_cast<unsigned long long>(r.capacity()), r.max_packet_bytes(), size);
  ReaderCheck rc{seg.get(), size};
  const int calls = 8 + (mode >> 1) % 57;
  for (int i = 0; i < calls; ++i) {
    Packet p;
    const Status s = rc.Next(r, p);
    if (s == Status::kPeerClosed) break;
  }
}

// Compares the writer's shared state and the newest records with the model.
void CheckWriter(const uint8_t* seg, const RingModel& m) {
  const auto* h = reinterpret_cast<const ring::PacketRingHeader*>(seg);
  FUZZ_CHECK(
      h->head_seq == m.head_seq() && h->head_pos == m.head_pos() && h->tail_pos == m.tail_pos() &&
          h->last_key_seq == m.last_key().seq && h->last_key_pos == m.last_key().pos,
      "ring header (head %llu@%llu tail %llu key %llu@%llu) differs from the spec model "
      "(head %llu@%llu tail %llu key %llu@%llu)",
      static_cast<unsigned long long>(h->head_seq), static_cast<unsigned long long>(h->head_pos),
      static_cast<unsigned long long>(h->tail_pos),
      static_cast<unsigned long long>(h->last_key_seq),
      static_cast<unsigned long long>(h->last_key_pos),
      static_cast<unsigned long long>(m.head_seq()), static_cast<unsigned long long>(m.head_pos()),
      static_cast<unsigned long long>(m.tail_pos()),
      static_cast<unsigned long long>(m.last_key().seq),
      static_cast<unsigned long long>(m.last_key().pos));
  // The newest two records (the packet and a PAD before it), byte by byte.
  const auto& recs = m.records();
  const size_t from = recs.size() > 2 ? recs.size() - 2 : 0;
  for (size_t i = from; i < recs.size(); ++i) {
    const RingModel::Record& r = recs[i];
    const uint8_t* rec = seg + ring::kRingDataOffset + r.pos % m.capacity();
    const uint32_t flags = (r.pad ? ring::kPacketPad : 0u) | (r.key ? ring::kPacketKeyframe : 0u);
    FUZZ_CHECK(
        LoadLe(rec, 8) == 2 * r.seq && LoadLe(rec + 8, 4) == r.size &&
            LoadLe(rec + 12, 4) == flags && (r.pad || LoadLe(rec + 24, 4) == r.params_generation) &&
            LoadLe(rec + 28, 4) == 0,
        "record of %s %llu at pos %llu differs from the spec (10.3)", r.pad ? "PAD" : "packet",
        static_cast<unsigned long long>(r.seq), static_cast<unsigned long long>(r.pos));
    if (!r.pad) {
      FUZZ_CHECK(static_cast<int64_t>(LoadLe(rec + 16, 8)) == r.pts, "record pts");
      FUZZ_CHECK(PayloadMatches(r.seq, rec + 32, r.size), "payload of packet %llu",
                 static_cast<unsigned long long>(r.seq));
    }
  }
}

// True if the reader can be fooled by B13 here: the record the model says was dropped (an
// overrun at pr.lapped_at), or the dropped last keyframe a resync would use, sits at a position
// whose 8 bytes read as its lock 2n.
bool B13Signature(const uint8_t* seg, const RingModel& m, const RingModel::Prediction& pr) {
  auto stale = [&](RingModel::Position at) {
    return at.seq != 0 && !m.IntactAt(at.seq, at.pos) &&
           LoadLe(seg + ring::kRingDataOffset + at.pos % m.capacity(), 8) == 2 * at.seq;
  };
  return (pr.outcome == RingModel::Outcome::kOverrun && stale(pr.lapped_at)) || stale(m.last_key());
}

// CUFRAMES_FUZZ_TRACE=1 prints every structured operation (to debug a finding).
bool Trace() {
  static const bool on = std::getenv("CUFRAMES_FUZZ_TRACE") != nullptr;
  return on;
}

void RunStructured(Bytes& in) {
  const uint64_t capacity = uint64_t{4096} << (in.U8() % 3);
  const uint32_t max_limit = static_cast<uint32_t>(capacity / 2 - 32);
  const uint32_t max_packet = 1 + in.U16() % max_limit;
  const size_t size = ring::RingSegmentSize(capacity);
  Segment seg = NewSegment(size);
  std::memset(seg.get(), 0xEE, size);  // init must not rely on zeroed memory
  RingWriter w;
  FUZZ_CHECK(w.init(seg.get(), size, capacity, max_packet, 1) == Status::kOk, "init");
  RingModel model(capacity, max_packet);
  bool trusted = true;  // no hostile write or arbitrary seek yet: the model predicts exactly
  RingReader r;
  ReaderCheck rc{seg.get(), size};
  bool attached = Attach(r, seg.get(), size) == Status::kOk;
  FUZZ_CHECK(attached, "attach to a fresh ring failed");
  std::vector<uint8_t> payload;
  std::vector<uint8_t> params;
  int ops = 0;
  while (!in.empty() && ++ops <= 512) {
    const uint8_t op = in.U8();
    if (Trace()) {
      std::fprintf(stderr,
                   "op %d (%u) head %llu@%llu tail %llu key %llu@%llu cursor (%llu, %llu)%s\n",
                   op % 10, op, static_cast<unsigned long long>(model.head_seq()),
                   static_cast<unsigned long long>(model.head_pos()),
                   static_cast<unsigned long long>(model.tail_pos()),
                   static_cast<unsigned long long>(model.last_key().seq),
                   static_cast<unsigned long long>(model.last_key().pos),
                   static_cast<unsigned long long>(r.cursor().seq),
                   static_cast<unsigned long long>(r.cursor().pos), trusted ? "" : " untrusted");
    }
    switch (op % 10) {
      case 0:
      case 1:
      case 2: {  // publish (mostly small packets, some up to the maximum)
        const bool key = (op & 0x10) != 0;
        const uint32_t size_pick = in.U16();
        const uint32_t psize = (op & 0x20) ? size_pick % (max_packet + 1)
                                           : size_pick % std::min<uint32_t>(max_packet + 1, 200);
        const uint64_t n = model.head_seq() + 1;
        payload.resize(psize);
        FillPayload(n, payload.data(), psize);
        const Status s = w.publish(payload.data(), psize, key ? ring::kPacketKeyframe : 0,
                                   static_cast<int64_t>(n * 1000));
        if (model.closed()) {
          FUZZ_CHECK(s == Status::kState, "publish after close returned %s", StatusName(s));
          break;
        }
        if (!trusted) {  // a hostile write may make the writer give up (CORRUPT, then STATE)
          FUZZ_CHECK(s == Status::kOk || s == Status::kCorrupt || s == Status::kState,
                     "publish returned %s", StatusName(s));
          if (s == Status::kOk) model.Publish(psize, key, static_cast<int64_t>(n * 1000));
          break;
        }
        FUZZ_CHECK(s == Status::kOk, "publish of %u bytes returned %s", psize, StatusName(s));
        model.Publish(psize, key, static_cast<int64_t>(n * 1000));
        if (Trace()) {
          for (const auto& rec : model.records()) {
            if (rec.seq == n) {
              std::fprintf(stderr, "  %s %llu at %llu span %llu\n", rec.pad ? "PAD" : "packet",
                           static_cast<unsigned long long>(rec.seq),
                           static_cast<unsigned long long>(rec.pos),
                           static_cast<unsigned long long>(rec.span));
            }
          }
        }
        CheckWriter(seg.get(), model);
        break;
      }
      case 3: {  // oversized: refused, nothing written (PKT-WRITE-01)
        const uint32_t psize = max_packet + 1 + in.U8();
        payload.assign(psize, 0x5A);
        Snapshot snap;
        snap.Take(seg.get(), size);
        const Status s = w.publish(payload.data(), psize, 0, 0);
        FUZZ_CHECK(s == (model.closed() ? Status::kState : Status::kOversized) ||
                       (!trusted && s == Status::kState),
                   "oversized publish returned %s", StatusName(s));
        FUZZ_CHECK(snap.Unchanged(), "an oversized publish wrote to the ring");
        break;
      }
      case 4: {  // codec parameters
        const uint32_t psize = in.U16() % 4200;
        params.assign(psize, static_cast<uint8_t>(op));
        const Status s = w.set_codec_params(1, params.data(), psize);  // the ring's codec
        if (model.closed() || (!trusted && s == Status::kState)) {
          FUZZ_CHECK(s == Status::kState, "set_codec_params after close: %s", StatusName(s));
        } else if (psize > ring::kCodecParamsMaxBytes) {
          FUZZ_CHECK(s == Status::kOversized, "set_codec_params(%u) returned %s", psize,
                     StatusName(s));
        } else {
          FUZZ_CHECK(s == Status::kOk, "set_codec_params(%u) returned %s", psize, StatusName(s));
          model.SetCodecParams();
        }
        break;
      }
      case 5:
      case 6:
      case 7: {  // read
        if (!attached) break;
        const ring::Position before = r.cursor();
        const bool need_key = rc.need_key;
        Packet p;
        const Status s = rc.Next(r, p);
        if (!trusted) break;
        const RingModel::Prediction pr = model.Next({before.seq, before.pos}, need_key);
        const Status want = pr.outcome == RingModel::Outcome::kDelivered ? Status::kOk
                            : pr.outcome == RingModel::Outcome::kAgain   ? Status::kAgain
                            : pr.outcome == RingModel::Outcome::kOverrun ? Status::kPacketOverrun
                                                                         : Status::kPeerClosed;
        const bool cursor_ok = r.cursor().seq == pr.cursor.seq && r.cursor().pos == pr.cursor.pos;
        bool packet_ok = true;
        if (s == Status::kOk && s == want) {
          const RingModel::Record* rec = model.Packet(pr.seq);
          packet_ok = p.seq == pr.seq && rec != nullptr && p.data.size() == rec->size &&
                      p.pts == rec->pts && p.params_generation == rec->params_generation &&
                      p.flags == (rec->key ? ring::kPacketKeyframe : 0u) &&
                      PayloadMatches(p.seq, p.data.data(), p.data.size());
        }
        if ((s != want || !cursor_ok || !packet_ok) && B13Signature(seg.get(), model, pr)) {
          // A dropped record's (or the dropped last keyframe's) position holds, inside a newer
          // record, the bytes 2n: the reader trusts them (B13) and leaves the model behind.
          FUZZ_KNOWN_BUG("B13", false,
                         "next() from (%llu, %llu) returned %s, cursor (%llu, %llu): the model "
                         "says %s, cursor (%llu, %llu); a dropped record's position reads as "
                         "its lock",
                         static_cast<unsigned long long>(before.seq),
                         static_cast<unsigned long long>(before.pos), StatusName(s),
                         static_cast<unsigned long long>(r.cursor().seq),
                         static_cast<unsigned long long>(r.cursor().pos), StatusName(want),
                         static_cast<unsigned long long>(pr.cursor.seq),
                         static_cast<unsigned long long>(pr.cursor.pos));
          trusted = false;
          break;
        }
        FUZZ_CHECK(s == want,
                   "next() from (%llu, %llu) returned %s (packet %llu at %llu), the model says %s "
                   "(lock there %llu, tail %llu)",
                   static_cast<unsigned long long>(before.seq),
                   static_cast<unsigned long long>(before.pos), StatusName(s),
                   static_cast<unsigned long long>(s == Status::kOk ? p.seq : 0),
                   static_cast<unsigned long long>(s == Status::kOk ? p.pos : 0), StatusName(want),
                   static_cast<unsigned long long>(
                       LoadLe(seg.get() + ring::kRingDataOffset + before.pos % capacity, 8)),
                   static_cast<unsigned long long>(model.tail_pos()));
        FUZZ_CHECK(cursor_ok, "cursor after next() is (%llu, %llu), the model says (%llu, %llu)",
                   static_cast<unsigned long long>(r.cursor().seq),
                   static_cast<unsigned long long>(r.cursor().pos),
                   static_cast<unsigned long long>(pr.cursor.seq),
                   static_cast<unsigned long long>(pr.cursor.pos));
        FUZZ_CHECK(packet_ok, "delivered packet %llu differs from the model's packet %llu",
                   static_cast<unsigned long long>(p.seq), static_cast<unsigned long long>(pr.seq));
        break;
      }
      case 8: {  // late join (seek to the writer's join position), or re-attach
        if ((op & 0x10) != 0) {
          const ring::Position jp = w.position();
          if (trusted) {
            FUZZ_CHECK(jp.seq == model.JoinPosition().seq && jp.pos == model.JoinPosition().pos,
                       "writer join position (%llu, %llu), spec says (%llu, %llu) (PKT-JOIN-01)",
                       static_cast<unsigned long long>(jp.seq),
                       static_cast<unsigned long long>(jp.pos),
                       static_cast<unsigned long long>(model.JoinPosition().seq),
                       static_cast<unsigned long long>(model.JoinPosition().pos));
          }
          if (attached) {
            FUZZ_CHECK(r.seek(jp.seq, jp.pos) == Status::kOk, "seek to the join position");
            rc.need_key = true;
          }
        } else {
          const Status s = Attach(r, seg.get(), size);
          attached = s == Status::kOk;
          rc.need_key = true;
          if (trusted) {
            FUZZ_CHECK(s == (model.closed() ? Status::kPeerClosed : Status::kOk),
                       "re-attach returned %s", StatusName(s));
            RingModel::Prediction none;
            none.outcome = RingModel::Outcome::kAgain;
            if (attached &&
                !(r.cursor().seq == model.Resync().seq && r.cursor().pos == model.Resync().pos) &&
                B13Signature(seg.get(), model, none)) {
              FUZZ_KNOWN_BUG("B13", false,
                             "attach resumed at (%llu, %llu), not at the spec's (%llu, %llu): the "
                             "dropped last keyframe's position reads as its lock",
                             static_cast<unsigned long long>(r.cursor().seq),
                             static_cast<unsigned long long>(r.cursor().pos),
                             static_cast<unsigned long long>(model.Resync().seq),
                             static_cast<unsigned long long>(model.Resync().pos));
              trusted = false;
              break;
            }
            if (attached) {
              FUZZ_CHECK(
                  r.cursor().seq == model.Resync().seq && r.cursor().pos == model.Resync().pos,
                  "attach cursor differs from the spec's resync position (PKT-READ-05)");
            }
          }
        }
        break;
      }
      case 9: {
        const uint8_t sub = in.U8();
        if (sub % 4 == 0) {  // the writer closes
          w.close();
          model.Close();
        } else if (sub % 4 == 1 && attached) {  // seek anywhere
          const uint64_t seq = in.U64();
          const uint64_t pos = in.U64();
          const Status s = r.seek(seq, pos);
          FUZZ_CHECK(s == Status::kOk || s == Status::kInvalidArgument, "seek returned %s",
                     StatusName(s));
          if (s == Status::kOk) {
            rc.need_key = true;
            trusted = false;
          }
        } else {  // a hostile peer overwrites bytes anywhere in the segment
          const size_t at = static_cast<size_t>(in.U32() % size);
          const auto bytes = in.Take(1 + in.U8() % 16);
          const size_t n = std::min(bytes.size(), size - at);
          std::memcpy(seg.get() + at, bytes.data(), n);
          trusted = false;
        }
        break;
      }
    }
  }
}

}  // namespace
}  // namespace cuframes::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if ((data[0] & 1) == 0) {
    cuframes::fuzz::RunRaw(data + 1, size - 1, data[0]);
  } else {
    cuframes::fuzz::Bytes in(data + 1, size - 1);
    cuframes::fuzz::RunStructured(in);
  }
  return 0;
}
