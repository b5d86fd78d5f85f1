// ring_model.h: an executable model of the encoded-packet ring (spec section 10), written from
// the spec's text (10.4 writing, 10.6 reading, 10.7 late join), not from the reference. Used by
// fuzz_packet_ring (structured mode) and prop_packet_ring_test to predict, for every call of the
// reference's RingWriter and RingReader, the shared positions, which records are still intact,
// and what RingReader::next() must return.
//
// The model holds no payload bytes: packet n of size s carries PayloadByte(n, i) at byte i.
#ifndef CUFRAMES_FUZZ_RING_MODEL_H_
#define CUFRAMES_FUZZ_RING_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace cuframes::fuzz {

// The payload byte i of packet `seq` in every test that uses this model.
inline uint8_t PayloadByte(uint64_t seq, uint64_t i) {
  return static_cast<uint8_t>(seq * 131 + i * 7 + (i >> 8));
}

class RingModel {
 public:
  static constexpr uint64_t kHeader = 32;  // PACKET_RECORD_HEADER_SIZE
  static constexpr uint64_t kAlign = 32;   // PACKET_RECORD_ALIGN

  struct Record {
    uint64_t seq;   // the packet, or the packet that follows a PAD
    uint64_t pos;   // monotonic position
    uint64_t span;  // bytes it occupies
    bool pad;
    uint32_t size;  // payload bytes (PAD: span - 32)
    bool key;
    int64_t pts;
    uint32_t params_generation;
  };

  struct Position {
    uint64_t seq = 0;
    uint64_t pos = 0;
    bool operator==(const Position&) const = default;
  };

  RingModel(uint64_t capacity, uint32_t max_packet_bytes)
      : capacity_(capacity), max_packet_bytes_(max_packet_bytes) {}

  static uint64_t Span(uint64_t size) { return (kHeader + size + kAlign - 1) / kAlign * kAlign; }

  // 10.4: appends packet head_seq + 1. Returns false (nothing changes) for size >
  // max_packet_bytes, as PKT-WRITE-01 says.
  bool Publish(uint32_t size, bool key, int64_t pts) {
    if (size > max_packet_bytes_ || closed_) return false;
    const uint64_t n = head_seq_ + 1;
    const uint64_t p = head_pos_;
    const uint64_t left = capacity_ - p % capacity_;
    const uint64_t span = Span(size);
    const bool pad = span > left;
    const uint64_t packet_pos = pad ? p + left : p;
    const uint64_t end = packet_pos + span;
    while (end - tail_pos_ > capacity_) {  // PKT-WRITE-02
      tail_pos_ += records_.front().span;
      records_.pop_front();
    }
    if (pad) {
      records_.push_back({n, p, left, true, static_cast<uint32_t>(left - kHeader), false, 0, 0});
    }
    records_.push_back({n, packet_pos, span, false, size, key, pts, params_generation_});
    if (key) last_key_ = {n, packet_pos};
    head_seq_ = n;
    head_pos_ = end;
    return true;
  }

  // 10.5: a new codec-parameter publication.
  void SetCodecParams() {
    if (!closed_) ++params_generation_;
  }
  void Close() { closed_ = true; }

  // Returns the intact packet record `seq` (not a PAD), if it is still in the ring.
  const Record* Packet(uint64_t seq) const {
    if (records_.empty() || seq < records_.front().seq || seq > head_seq_) return nullptr;
    for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
      if (it->seq == seq && !it->pad) return &*it;
      if (it->seq < seq) break;
    }
    return nullptr;
  }
  // Returns true if a record (packet or PAD) starting at `pos` and carrying lock 2 * seq is
  // intact.
  bool IntactAt(uint64_t seq, uint64_t pos) const {
    for (const Record& r : records_) {
      if (r.pos == pos) return r.seq == seq;
    }
    return false;
  }

  // 10.7 PKT-JOIN-01: where a late joiner starts.
  Position JoinPosition() const {
    if (last_key_.seq != 0) return last_key_;
    return {head_seq_ + 1, head_pos_};
  }

  // 10.6 PKT-READ-05: where a reader resumes after PACKET_OVERRUN (and where attach puts it):
  // the latest keyframe if its record is still there, else the head.
  Position Resync() const {
    if (last_key_.seq != 0 && IntactAt(last_key_.seq, last_key_.pos)) return last_key_;
    return {head_seq_ + 1, head_pos_};
  }

  enum class Outcome { kDelivered, kAgain, kOverrun, kPeerClosed };
  struct Prediction {
    Outcome outcome;
    uint64_t seq = 0;      // kDelivered: the packet
    Position cursor;       // the reader's cursor afterwards
    uint64_t skipped = 0;  // non-keyframes skipped on the way
    Position lapped_at;    // kOverrun: the position whose record was gone
  };

  // Predicts RingReader::next(timeout 0) from cursor `c`. need_key: no packet was delivered
  // since attach, seek or the last overrun (PKT-READ-06, PKT-READ-08). A non-blocking read may stop
  // after `skip_budget` skipped non-keyframes and report AGAIN with the progress kept (the
  // reference checks the caller's deadline every 256 skips).
  Prediction Next(Position c, bool need_key, uint64_t skip_budget = 256) const {
    Prediction pr;
    for (;;) {
      if (pr.skipped == skip_budget) {
        pr.outcome = Outcome::kAgain;
        pr.cursor = c;
        return pr;
      }
      if (c.seq > head_seq_) {
        pr.outcome = closed_ ? Outcome::kPeerClosed : Outcome::kAgain;
        pr.cursor = c;
        return pr;
      }
      // The cursor points at packet c.seq's record or at the PAD before it.
      const Record* r = Packet(c.seq);
      const bool at_packet = r != nullptr && r->pos == c.pos;
      const bool at_pad = r != nullptr && !at_packet && IntactAt(c.seq, c.pos);
      if (!at_packet && !at_pad) {
        pr.outcome = Outcome::kOverrun;
        pr.lapped_at = c;
        pr.cursor = Resync();
        return pr;
      }
      // PKT-READ-06/08: after joining or resuming, start at a keyframe of the current codec
      // parameters (any keyframe while none were published).
      if (need_key &&
          (!r->key || (params_generation_ != 0 && r->params_generation != params_generation_))) {
        ++pr.skipped;
        c = {c.seq + 1, r->pos + r->span};
        continue;
      }
      pr.outcome = Outcome::kDelivered;
      pr.seq = c.seq;
      pr.cursor = {c.seq + 1, r->pos + r->span};
      return pr;
    }
  }

  uint64_t capacity() const { return capacity_; }
  uint32_t max_packet_bytes() const { return max_packet_bytes_; }
  uint64_t head_seq() const { return head_seq_; }
  uint64_t head_pos() const { return head_pos_; }
  uint64_t tail_pos() const { return tail_pos_; }
  Position last_key() const { return last_key_; }
  uint32_t params_generation() const { return params_generation_; }
  bool closed() const { return closed_; }
  const std::deque<Record>& records() const { return records_; }

 private:
  uint64_t capacity_;
  uint32_t max_packet_bytes_;
  uint64_t head_seq_ = 0;
  uint64_t head_pos_ = 0;
  uint64_t tail_pos_ = 0;
  Position last_key_;
  uint32_t params_generation_ = 0;
  bool closed_ = false;
  std::deque<Record> records_;
};

}  // namespace cuframes::fuzz

#endif  // CUFRAMES_FUZZ_RING_MODEL_H_
