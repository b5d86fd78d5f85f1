// packet_ring.cpp: the encoded-packet ring's writer and reader (spec section 10).
#include "packet_ring.h"

#include <chrono>
#include <cstring>
#include <new>
#include <thread>

#include "fault.h"
#include "mem_order.h"

namespace cuframes::ring {
namespace {

using Clock = std::chrono::steady_clock;

// Resync: attempts at reading a consistent (last_key_seq, last_key_pos) pair before falling back
// to the head.
constexpr int kResyncTries = 16;
// Consecutive resyncs from an inconsistent (head_seq, head_pos) pair before next() gives up.
constexpr uint32_t kMaxHeadResyncs = 1024;
// Non-keyframes skipped between two deadline checks in next().
constexpr uint32_t kSkipsPerDeadlineCheck = 256;
// Sequence numbers above this would overflow 2 * n in a lock.
constexpr uint64_t kMaxSeq = UINT64_MAX / 2 - 1;

// Stores zero to [p, p + n) with relaxed atomic stores (p 8-aligned, n a multiple of 8).
void ZeroShared(unsigned char* p, size_t n) {
  auto* w = reinterpret_cast<uint64_t*>(p);
  for (size_t i = 0; i < n / 8; ++i)
    mem::store_relaxed(w + i, uint64_t{0});
}

int64_t RemainingNs(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
}

}  // namespace

// ------------------------------------------------------------------------------------ writer

Status RingWriter::init(void* base, size_t size, uint64_t capacity, uint32_t max_packet_bytes,
                        uint32_t codec) {
  if (base_ != nullptr) return Status::kState;
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % 64 != 0) {
    return Status::kInvalidArgument;
  }
  if (!ValidGeometry(capacity, max_packet_bytes) || size < RingSegmentSize(capacity)) {
    return Status::kInvalidArgument;
  }
  base_ = static_cast<unsigned char*>(base);
  header_ = reinterpret_cast<PacketRingHeader*>(base_);
  params_ = reinterpret_cast<CodecParams*>(base_ + kCodecParamsOffset);
  data_ = base_ + kRingDataOffset;
  capacity_ = capacity;
  max_packet_bytes_ = max_packet_bytes;
  codec_ = codec;

  // INIT first, so that a reader racing with us sees "not ready" rather than a half-built ring.
  mem::store_release(&header_->state, kStateInit);
  mem::store_relaxed(&header_->layout_version, uint32_t{0});
  mem::store_relaxed(&header_->magic, uint32_t{0});
  mem::store_relaxed(&header_->header_size, uint32_t{0});
  ZeroShared(base_ + 16, kRingDataOffset - 16);  // rest of the header, codec params
  ZeroShared(data_, capacity_);
  mem::store_relaxed(&header_->layout_version, kRingLayoutVersion);
  mem::store_relaxed(&header_->magic, kRingMagic);
  mem::store_relaxed(&header_->header_size, kRingHeaderSize);
  mem::store_relaxed(&header_->capacity, capacity_);
  mem::store_relaxed(&header_->data_offset, kRingDataOffset);
  mem::store_relaxed(&header_->max_packet_bytes, max_packet_bytes_);
  mem::store_relaxed(&header_->codec, codec_);
  mem::store_relaxed(&header_->segment_size, static_cast<uint64_t>(size));
  // head_seq, head_pos, tail_pos, last_key_*, packet_futex and the codec params are all zero:
  // an empty ring whose next packet is seq 1 at pos 0, no keyframe, no codec params.
  mem::store_release(&header_->state, kStateReady);
  return Status::kOk;
}

void RingWriter::write_record(uint64_t pos, uint64_t lock, uint32_t size, uint32_t flags,
                              int64_t pts, const void* payload, uint32_t payload_size) {
  auto* rec = reinterpret_cast<PacketRecordHeader*>(data_ + (pos & (capacity_ - 1)));
  mem::seq_store(&rec->lock, lock - 1);
  mem::fence_release();
  mem::seq_store(&rec->size, size);
  mem::seq_store(&rec->flags, flags);
  mem::seq_store(&rec->pts, pts);
  mem::seq_store(&rec->params_generation, (flags & kPacketPad) ? 0u : params_generation_);
  mem::seq_store(&rec->reserved0, uint32_t{0});
  if (payload_size > 0) {
    // In two parts, so that a fault point can stop the writer in the middle of the payload. The
    // cut (half, rounded down to 8 bytes) keeps the second copy word-aligned: a cut at an odd
    // byte made both copies store their edges byte by byte.
    const uint32_t half = (payload_size / 2) & ~uint32_t{7};
    mem::copy_to_shared(rec + 1, payload, half);
    CUFRAMES_FAULT_POINT("pub.packet.mid_payload");
    mem::copy_to_shared(reinterpret_cast<uint8_t*>(rec + 1) + half,
                        static_cast<const uint8_t*>(payload) + half, payload_size - half);
  }
  mem::store_release(&rec->lock, lock);
}

Status RingWriter::publish(const void* data, uint32_t size, uint32_t flags, int64_t pts) {
  if (base_ == nullptr || closed_) return Status::kState;
  if (size > max_packet_bytes_) return Status::kOversized;
  if ((flags & ~kPacketKeyframe) != 0 || (data == nullptr && size > 0)) {
    return Status::kInvalidArgument;
  }
  const uint64_t mask = capacity_ - 1;
  const uint64_t n = head_seq_ + 1;
  const uint64_t p = head_pos_;
  const uint64_t left = capacity_ - (p & mask);
  const uint64_t span = RecordSpan(size);
  const bool pad = span > left;
  const uint64_t packet_pos = pad ? p + left : p;
  const uint64_t end = packet_pos + span;

  // Free space: invalidate (lock |= 1) and drop the oldest records until [p, end) is free.
  // span <= capacity / 2 and left < span, so end - p < capacity and this terminates.
  while (end - tail_pos_ > capacity_) {
    const uint64_t off = tail_pos_ & mask;
    auto* rec = reinterpret_cast<PacketRecordHeader*>(data_ + off);
    mem::store_relaxed(&rec->lock, mem::load_relaxed(&rec->lock) | 1u);
    // Our own record, but shared memory: check it before stepping over it.
    const uint32_t rec_size = mem::load_relaxed(&rec->size);
    const uint32_t rec_flags = mem::load_relaxed(&rec->flags);
    const uint64_t rec_span = RecordSpan(rec_size);
    const bool ok = (rec_flags & kPacketPad)
                        ? rec_span == capacity_ - off
                        : rec_size <= max_packet_bytes_ && off + rec_span <= capacity_;
    if (!ok) {
      closed_ = true;  // the ring's bookkeeping can no longer be trusted
      return Status::kCorrupt;
    }
    tail_pos_ += rec_span;
  }
  mem::store_relaxed(&header_->tail_pos, tail_pos_);
  mem::fence_release();

  if (pad) {
    write_record(p, 2 * n, static_cast<uint32_t>(left - kRecordHeaderSize), kPacketPad, 0, nullptr,
                 0);
  }
  write_record(packet_pos, 2 * n, size, flags, pts, data, size);
  if (flags & kPacketKeyframe) {
    mem::store_release(&header_->last_key_pos, packet_pos);
    mem::store_release(&header_->last_key_seq, n);
  }
  head_seq_ = n;
  head_pos_ = end;
  CUFRAMES_FAULT_POINT("pub.packet.after_record");
  mem::store_release(&header_->head_pos, end);
  mem::store_release(&header_->head_seq, n);

  if (flags & kPacketKeyframe) {
    set_start(n, packet_pos);
  } else if (!have_keyframe_) {
    set_start(n + 1, end);
  }
  if (flags & kPacketKeyframe) have_keyframe_ = true;

  // SHM-ORDER-02: the seq_cst increment, then the seq_cst load of the count (mem_order.h's
  // waiter-count recipe). Skipping the syscall when nobody waits is what makes small packets cheap.
  mem::fetch_add_seq_cst(&header_->packet_futex, 1u);
  if (waiter_count_ == nullptr || mem::load_seq_cst(waiter_count_) != 0) {
    mem::futex_wake_all(&header_->packet_futex);
  }
  return Status::kOk;
}

Status RingWriter::set_codec_params(uint32_t codec, const void* data, uint32_t size) {
  if (base_ == nullptr || closed_) return Status::kState;
  if (size > kCodecParamsMaxBytes) return Status::kOversized;
  if ((data == nullptr && size > 0) || codec != codec_) return Status::kInvalidArgument;
  const uint32_t generation = NextParamsGeneration(params_generation_);
  mem::seq_store(&params_->lock, ++params_lock_);  // odd: write in progress
  mem::fence_release();
  mem::seq_store(&params_->generation, generation);
  mem::seq_store(&params_->size, size);
  mem::seq_store(&params_->codec, codec);
  if (size > 0) mem::copy_to_shared(params_->data, data, size);
  CUFRAMES_FAULT_POINT("pub.params.lock_odd");
  mem::store_release(&params_->lock, ++params_lock_);  // even: consistent
  params_generation_ = generation;
  return Status::kOk;
}

void RingWriter::set_start(uint64_t seq, uint64_t pos) {
  const uint64_t v = start_version_.load(std::memory_order_relaxed);
  start_version_.store(v + 1, mem::kSeqStoreOrder);
  mem::fence_release();
  start_seq_.store(seq, mem::kSeqStoreOrder);
  start_pos_.store(pos, mem::kSeqStoreOrder);
  start_version_.store(v + 2, std::memory_order_release);
}

Position RingWriter::position() const {
  for (;;) {
    const uint64_t v1 = start_version_.load(std::memory_order_acquire);
    if (v1 & 1) {
      std::this_thread::yield();
      continue;
    }
    const Position result{start_seq_.load(mem::kSeqLoadOrder), start_pos_.load(mem::kSeqLoadOrder)};
    mem::fence_acquire();
    if (start_version_.load(std::memory_order_relaxed) == v1) return result;
  }
}

void RingWriter::close() {
  if (base_ == nullptr || closed_state_) return;
  closed_ = true;
  closed_state_ = true;
  mem::store_release(&header_->state, kStateClosed);
  mem::fetch_add_seq_cst(&header_->packet_futex, 1u);
  mem::futex_wake_all(&header_->packet_futex);  // PKT-WRITE-07: whatever the waiter count says
}

// ------------------------------------------------------------------------------------ reader

Status RingReader::attach(const void* base, size_t mapped_size) {
  if (base == nullptr || reinterpret_cast<uintptr_t>(base) % 64 != 0) {
    return Status::kInvalidArgument;
  }
  if (mapped_size < kRingHeaderSize) return Status::kUnsupportedLayout;
  const auto* h = static_cast<const PacketRingHeader*>(base);
  // state first (acquire): once it reads READY, every other header field is initialized.
  const uint32_t state = mem::load_acquire(&h->state);
  const uint32_t layout_version = mem::load_relaxed(&h->layout_version);
  const uint32_t magic = mem::load_relaxed(&h->magic);
  const uint32_t header_size = mem::load_relaxed(&h->header_size);
  if (layout_version != kRingLayoutVersion || magic != kRingMagic ||
      header_size != kRingHeaderSize) {
    // An all-zero prefix during INIT is a ring being built, not an unknown layout.
    if (state == kStateInit && layout_version == 0 && magic == 0) return Status::kAgain;
    return Status::kUnsupportedLayout;
  }
  if (state == kStateInit) return Status::kAgain;
  if (state == kStateClosed) return Status::kPeerClosed;
  if (state != kStateReady) return Status::kCorrupt;
  const uint64_t capacity = mem::load_relaxed(&h->capacity);
  const uint64_t data_offset = mem::load_relaxed(&h->data_offset);
  const uint32_t max_packet_bytes = mem::load_relaxed(&h->max_packet_bytes);
  const uint64_t segment_size = mem::load_relaxed(&h->segment_size);
  if (data_offset != kRingDataOffset || !ValidGeometry(capacity, max_packet_bytes)) {
    return Status::kCorrupt;
  }
  // capacity <= 2^63 (a power of two in a u64), so data_offset + capacity cannot overflow.
  // PKT-HDR-01: equal to both, not merely inside the mapping (a ring that fits its file but
  // disagrees with its own capacity is a writer that cannot be trusted).
  if (segment_size != RingSegmentSize(capacity) || segment_size != mapped_size) {
    return Status::kCorrupt;
  }
  buffer_.reset(new (std::nothrow) uint8_t[max_packet_bytes]);
  params_buffer_.reset(new (std::nothrow) uint8_t[kCodecParamsMaxBytes]);
  if (!buffer_ || !params_buffer_) {
    buffer_.reset();
    params_buffer_.reset();
    return Status::kNoMemory;
  }
  base_ = static_cast<const unsigned char*>(base);
  header_ = h;
  params_ = reinterpret_cast<const CodecParams*>(base_ + kCodecParamsOffset);
  data_ = base_ + kRingDataOffset;
  capacity_ = capacity;
  max_packet_bytes_ = max_packet_bytes;
  codec_ = mem::load_relaxed(&h->codec);
  overruns_ = 0;
  head_resyncs_ = 0;
  known_head_ = 0;
  resync();
  return Status::kOk;
}

Status RingReader::seek(uint64_t seq, uint64_t pos) {
  if (header_ == nullptr) return Status::kState;
  if (seq == 0 || seq > kMaxSeq || pos % kRecordAlign != 0) return Status::kInvalidArgument;
  seq_ = seq;
  pos_ = pos;
  need_keyframe_ = true;
  from_head_ = false;
  head_resyncs_ = 0;
  return Status::kOk;
}

void RingReader::resync(uint64_t floor_seq) {
  need_keyframe_ = true;
  const uint64_t mask = capacity_ - 1;
  for (int i = 0; i < kResyncTries; ++i) {
    const uint64_t s1 = mem::load_acquire(&header_->last_key_seq);
    // No keyframe yet, or (after an overrun) one behind the lapped cursor: resuming there would
    // deliver packets again, which only a hostile writer can cause, since an honest lap drops
    // every record up to the cursor.
    if (s1 == 0 || s1 < floor_seq) break;
    const uint64_t kp = mem::load_acquire(&header_->last_key_pos);
    const uint64_t s2 = mem::load_acquire(&header_->last_key_seq);
    if (s1 != s2 || s1 > kMaxSeq || kp % kRecordAlign != 0) continue;
    // The pair is consistent iff the record there carries 2 * seq (locks never repeat).
    const auto* rec = reinterpret_cast<const PacketRecordHeader*>(data_ + (kp & mask));
    // ...and the keyframe has not been dropped since: after a lap, kp may lie inside a newer
    // record whose payload bytes happen to read as 2 * s1 (see lapped()).
    if (mem::load_acquire(&rec->lock) == 2 * s1 && !lapped(rec, 2 * s1, kp)) {
      seq_ = s1;
      pos_ = kp;
      from_head_ = false;
      return;
    }
  }
  // No (usable) keyframe: start at the head and skip until a keyframe arrives.
  const uint64_t hs = mem::load_acquire(&header_->head_seq);
  const uint64_t hp = mem::load_acquire(&header_->head_pos);
  seq_ = hs + 1;
  pos_ = hp;
  from_head_ = true;
}

Status RingReader::overrun() {
  ++overruns_;
  resync(seq_);
  return Status::kPacketOverrun;
}

// PKT-READ-04: called after the relaxed reads of a record that started at `p`. The writer
// advances tail_pos past a record (release fence) before it overwrites any byte of it, so once
// the acquire fence has ordered our reads, a record some of whose bytes we read from a newer lap
// shows up as tail_pos > p. The lock alone cannot tell: after a lap, p may lie inside a newer
// record's payload, whose bytes can hold any value, 2n included.
bool RingReader::lapped(const PacketRecordHeader* rec, uint64_t want, uint64_t p) const {
  mem::fence_acquire();
  return mem::load_relaxed(&rec->lock) != want || mem::load_relaxed(&header_->tail_pos) > p;
}

Status RingReader::read_at(uint64_t n, uint64_t p, Packet& out, Read& what) {
  what = Read::kRetry;
  if (n == 0 || n > kMaxSeq || p % kRecordAlign != 0) return Status::kCorrupt;
  const uint64_t mask = capacity_ - 1;
  const uint64_t want = 2 * n;
  bool hopped = false;  // crossed a PAD already (at most one per packet)
  for (;;) {
    const uint64_t off = p & mask;
    const auto* rec = reinterpret_cast<const PacketRecordHeader*>(data_ + off);
    uint64_t lock = mem::load_acquire(&rec->lock);
    if (lock != want) {
      // PKT-READ-02/10: only tail_pos > p proves a lap. A lock above 2n with tail_pos <= p is the
      // writer's invalidation store (2n + 1, seen before its tail_pos store: spin below) or a
      // hostile writer, never a lap by itself.
      if (mem::load_acquire(&header_->tail_pos) > p) return overrun();
      if (from_head_) {
        // (head_seq + 1, head_pos) was read as two words and may not match: try again.
        if (++head_resyncs_ > kMaxHeadResyncs) return Status::kCorrupt;
        resync();
        return Status::kOk;  // what == kRetry
      }
      if ((lock & 1) == 0) return Status::kCorrupt;  // even and older than packet n
      // Odd: being written. Spin a bounded time; the caller decides liveness afterwards.
      const auto deadline = Clock::now() + std::chrono::milliseconds(kSeqlockSpinLimitMs);
      while (lock != want) {
        if (Clock::now() > deadline) return Status::kCorrupt;
        std::this_thread::yield();
        lock = mem::load_acquire(&rec->lock);
        if (lock == want) break;
        if (mem::load_acquire(&header_->tail_pos) > p) return overrun();
        if ((lock & 1) == 0) return Status::kCorrupt;
      }
    }
    const uint32_t size = mem::seq_load(&rec->size);
    const uint32_t flags = mem::seq_load(&rec->flags);
    const int64_t pts = mem::seq_load(&rec->pts);
    const uint32_t generation = mem::seq_load(&rec->params_generation);
    const bool is_pad = (flags & kPacketPad) != 0;
    bool valid = (flags & ~kPacketKnownFlags) == 0;
    if (is_pad) {
      // A PAD fills the rest of the lap exactly; it never starts a lap (it would point at
      // itself) and never follows another PAD.
      valid = valid && flags == kPacketPad && off != 0 && !hopped &&
              size == capacity_ - off - kRecordHeaderSize;
    } else {
      valid = valid && size <= max_packet_bytes_ && off + RecordSpan(size) <= capacity_;
    }
    if (!valid || is_pad) {
      // Were the fields read while the writer overwrote them? Then it is an overrun.
      if (lapped(rec, want, p)) return overrun();
      if (!valid) return Status::kCorrupt;
      p += capacity_ - off;  // the packet itself starts the next lap, with the same lock
      hopped = true;
      continue;
    }
    const uint64_t span = RecordSpan(size);
    bool skip = false;
    if (need_keyframe_) {
      // PKT-READ-06/08: start at a keyframe, and only at one whose codec params are the current
      // ones (any keyframe while none were published).
      skip = (flags & kPacketKeyframe) == 0;
      if (!skip) {
        uint32_t current = 0;
        const Status ps = params_generation(current);
        if (ps != Status::kOk) return ps;  // cursor unchanged
        skip = current != 0 && generation != current;
      }
    }
    if (skip) {
      if (lapped(rec, want, p)) return overrun();
      seq_ = n + 1;
      pos_ = p + span;
      from_head_ = false;
      head_resyncs_ = 0;
      what = Read::kSkipped;
      return Status::kOk;
    }
    mem::copy_from_shared(buffer_.get(), rec + 1, size);
    if (lapped(rec, want, p)) return overrun();  // discard the copy
    out.seq = n;
    out.pos = p;
    out.pts = pts;
    out.flags = flags;
    out.params_generation = generation;
    out.data = std::span<const uint8_t>(buffer_.get(), size);
    seq_ = n + 1;
    pos_ = p + span;
    need_keyframe_ = false;
    from_head_ = false;
    head_resyncs_ = 0;
    what = Read::kDelivered;
    return Status::kOk;
  }
}

Status RingReader::next(Packet& out, int timeout_ms) {
  if (header_ == nullptr) return Status::kState;
  Clock::time_point deadline{};
  bool have_deadline = false;
  auto get_deadline = [&] {
    if (!have_deadline) {
      deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
      have_deadline = true;
    }
    return deadline;
  };
  uint32_t skips = 0;
  for (;;) {
    const uint64_t n = seq_;
    // PKT-READ-01: packet n is readable once head_seq >= n was loaded with acquire; an earlier
    // load that already showed it is as good as a new one (read_at still checks the lock).
    if (known_head_ < n) known_head_ = mem::load_acquire(&header_->head_seq);
    if (known_head_ < n) {
      if (mem::load_acquire(&header_->state) == kStateClosed) return Status::kPeerClosed;
      if (timeout_ms == 0) return Status::kAgain;
      // Read the futex word before re-checking head_seq: a publish after this load changes
      // the word, so FUTEX_WAIT returns at once instead of missing the wake-up.
      uint32_t* futex = const_cast<uint32_t*>(&header_->packet_futex);
      const uint32_t word = mem::load_acquire(futex);
      if (mem::load_acquire(&header_->head_seq) >= n) continue;  // reloaded at the top
      if (mem::load_acquire(&header_->state) == kStateClosed) return Status::kPeerClosed;
      // SHM-ORDER-04: every single wait is bounded, whatever the caller's timeout.
      int64_t wait_ns = int64_t{kPeerDeathDetectMs} * 1000000;
      if (timeout_ms > 0) {
        const int64_t left = RemainingNs(get_deadline());
        if (left <= 0) return Status::kTimeout;
        if (left < wait_ns) wait_ns = left;
      }
      if (waiter_count_ != nullptr) {
        // Count ourselves, then re-check (seq_cst): a publish that read the count as zero
        // incremented the futex word before our increment, so FUTEX_WAIT returns at once.
        mem::fetch_add_seq_cst(waiter_count_, 1u);
        CUFRAMES_FAULT_POINT("sub.packet.waiter_counted");
        if (mem::load_seq_cst(&header_->head_seq) < n &&
            mem::load_seq_cst(&header_->state) != kStateClosed) {
          mem::futex_wait(futex, word, wait_ns);
        }
        mem::fetch_add_seq_cst(waiter_count_, UINT32_MAX);  // -1
      } else {
        mem::futex_wait(futex, word, wait_ns);
      }
      continue;
    }
    Read what;
    const Status st = read_at(n, pos_, out, what);
    if (st != Status::kOk || what == Read::kDelivered) return st;
    if (what == Read::kSkipped && ++skips % kSkipsPerDeadlineCheck == 0) {
      // A long run of non-keyframes: honour the caller's deadline; progress is kept.
      if (timeout_ms == 0) return Status::kAgain;
      if (timeout_ms > 0 && RemainingNs(get_deadline()) <= 0) return Status::kTimeout;
    }
  }
}

Status RingReader::params_generation(uint32_t& generation) const {
  Clock::time_point deadline{};
  bool have_deadline = false;
  for (;;) {
    const uint64_t s1 = mem::load_acquire(&params_->lock);
    if ((s1 & 1) == 0) {
      const uint32_t g = mem::seq_load(&params_->generation);
      mem::fence_acquire();
      if (mem::load_relaxed(&params_->lock) == s1) {
        generation = g;
        return Status::kOk;
      }
    }
    if (!have_deadline) {
      deadline = Clock::now() + std::chrono::milliseconds(kSeqlockSpinLimitMs);
      have_deadline = true;
    } else if (Clock::now() > deadline) {
      return Status::kCorrupt;
    }
    std::this_thread::yield();
  }
}

Status RingReader::codec_params(CodecParamsSnapshot& out) {
  if (header_ == nullptr) return Status::kState;
  const auto deadline = Clock::now() + std::chrono::milliseconds(kSeqlockSpinLimitMs);
  for (;;) {
    const uint64_t s1 = mem::load_acquire(&params_->lock);
    if ((s1 & 1) == 0) {
      const uint32_t generation = mem::seq_load(&params_->generation);
      const uint32_t size = mem::seq_load(&params_->size);
      const uint32_t codec = mem::seq_load(&params_->codec);
      if (size <= kCodecParamsMaxBytes) {
        mem::copy_from_shared(params_buffer_.get(), params_->data, size);
      }
      mem::fence_acquire();
      if (mem::load_relaxed(&params_->lock) == s1) {
        if (generation == 0) return Status::kNoCodecParams;
        if (size > kCodecParamsMaxBytes) return Status::kCorrupt;
        out.generation = generation;
        out.codec = codec;
        out.data = std::span<const uint8_t>(params_buffer_.get(), size);
        return Status::kOk;
      }
    }
    if (Clock::now() > deadline) return Status::kCorrupt;
    std::this_thread::yield();
  }
}

}  // namespace cuframes::ring
