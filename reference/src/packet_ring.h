// packet_ring.h: the encoded-packet ring of proto v2 (spec section 10), byte by byte, and its
// single writer (the publisher) and readers (subscribers).
//
// The ring lives in its own segment /dev/shm/cuframes-<key>-packets:
//
//   offset 0     PacketRingHeader (256 B)
//   offset 256   CodecParams (4160 B), its own seqlock
//   offset 4416  data area, `capacity` bytes (a power of two), records of
//                PacketRecordHeader (32 B) + payload, each starting at a multiple of 32
//
// Positions are monotonic u64 byte counts; physical offset = data_offset + (pos mod capacity).
// A record's `lock` is 2*n once packet n is complete; any odd value means "not readable". Readers
// never write to the segment (it may be mapped read-only) and never trust it: every value read
// from it is validated before use, and every wait on it is bounded.
//
// Waiting (spec 2.7): readers that block count themselves in `packet_waiters`, a u32 in the FRAME
// segment header (offset 200, subscriber-written), and the writer issues FUTEX_WAKE only while
// that count is nonzero. The ring does not know the frame segment: both sides are handed a
// pointer to the count (RingWriter::set_waiter_count, RingReader::set_waiter_count).
//
// This file does not map, create or unlink anything: callers hand in memory they mapped.
//
// The structs below are held against spec/cuframes.json by the static_asserts in this file.
// If one fails, a layout changed: that is a breaking change and needs a new layout_version.
// Fields marked "atomic" are plain integers only ever accessed through mem_order.h.
#ifndef CUFRAMES_REFERENCE_SRC_PACKET_RING_H_
#define CUFRAMES_REFERENCE_SRC_PACKET_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "status.h"

namespace cuframes::ring {

inline constexpr uint32_t kRingMagic = 0x50465543;  // bytes "CUFP"
inline constexpr uint32_t kRingLayoutVersion = 1;
inline constexpr uint32_t kRingHeaderSize = 256;
inline constexpr uint64_t kCodecParamsOffset = 256;
inline constexpr uint32_t kCodecParamsSize = 4160;
inline constexpr uint32_t kCodecParamsMaxBytes = 4096;
inline constexpr uint64_t kRingDataOffset = 4416;
inline constexpr uint32_t kRecordHeaderSize = 32;
inline constexpr uint32_t kRecordAlign = 32;
inline constexpr uint64_t kMinCapacity = 4096;
inline constexpr uint32_t kSeqlockSpinLimitMs = 100;
// PEER_DEATH_DETECT_MS: the longest single FUTEX_WAIT (SHM-ORDER-04).
inline constexpr uint32_t kPeerDeathDetectMs = 250;

// enum segment_state (shared with the frame segment)
inline constexpr uint32_t kStateInit = 0;
inline constexpr uint32_t kStateReady = 1;
inline constexpr uint32_t kStateClosed = 2;

// flags:packet_flags
inline constexpr uint32_t kPacketKeyframe = 1;
inline constexpr uint32_t kPacketPad = 2;
inline constexpr uint32_t kPacketKnownFlags = kPacketKeyframe | kPacketPad;

// Offset 0 of the ring segment (spec 10.2). Every field is publisher-written; readers only read,
// so there is no consumer-written cache line here.
struct alignas(64) PacketRingHeader {
  // cache line 0: immutable once state is READY (state itself is atomic)
  uint32_t layout_version;
  uint32_t magic;
  uint32_t state;  // atomic
  uint32_t header_size;
  uint64_t capacity;
  uint64_t data_offset;
  uint32_t max_packet_bytes;
  uint32_t codec;
  uint64_t segment_size;
  uint8_t reserved0[16];
  // cache line 1: publisher-written positions
  uint64_t head_seq;      // atomic
  uint64_t head_pos;      // atomic
  uint64_t tail_pos;      // atomic
  uint64_t last_key_seq;  // atomic
  uint64_t last_key_pos;  // atomic
  uint32_t packet_futex;  // atomic
  uint8_t reserved1[148];
};

// At ring offset 256 (spec 10.5).
struct alignas(64) CodecParams {
  uint64_t lock;  // atomic, seqlock count
  uint32_t generation;
  uint32_t size;
  uint32_t codec;
  uint8_t reserved0[44];
  uint8_t data[kCodecParamsMaxBytes];
};

// Starts every record of the data area (spec 10.3).
struct alignas(32) PacketRecordHeader {
  uint64_t lock;  // atomic
  uint32_t size;
  uint32_t flags;
  int64_t pts;
  uint32_t params_generation;
  uint32_t reserved0;
};

// --- PacketRingHeader (spec 10.2) ---
static_assert(sizeof(PacketRingHeader) == kRingHeaderSize);
static_assert(alignof(PacketRingHeader) == 64);
static_assert(offsetof(PacketRingHeader, layout_version) == 0);
static_assert(offsetof(PacketRingHeader, magic) == 4);
static_assert(offsetof(PacketRingHeader, state) == 8);
static_assert(offsetof(PacketRingHeader, header_size) == 12);
static_assert(offsetof(PacketRingHeader, capacity) == 16);
static_assert(offsetof(PacketRingHeader, data_offset) == 24);
static_assert(offsetof(PacketRingHeader, max_packet_bytes) == 32);
static_assert(offsetof(PacketRingHeader, codec) == 36);
static_assert(offsetof(PacketRingHeader, segment_size) == 40);
static_assert(offsetof(PacketRingHeader, reserved0) == 48);
static_assert(sizeof(PacketRingHeader::reserved0) == 16);
static_assert(offsetof(PacketRingHeader, head_seq) == 64);
static_assert(offsetof(PacketRingHeader, head_pos) == 72);
static_assert(offsetof(PacketRingHeader, tail_pos) == 80);
static_assert(offsetof(PacketRingHeader, last_key_seq) == 88);
static_assert(offsetof(PacketRingHeader, last_key_pos) == 96);
static_assert(offsetof(PacketRingHeader, packet_futex) == 104);
static_assert(offsetof(PacketRingHeader, reserved1) == 108);
static_assert(sizeof(PacketRingHeader::reserved1) == 148);

// --- CodecParams (spec 10.5) ---
static_assert(sizeof(CodecParams) == kCodecParamsSize);
static_assert(alignof(CodecParams) == 64);
static_assert(offsetof(CodecParams, lock) == 0);
static_assert(offsetof(CodecParams, generation) == 8);
static_assert(offsetof(CodecParams, size) == 12);
static_assert(offsetof(CodecParams, codec) == 16);
static_assert(offsetof(CodecParams, reserved0) == 20);
static_assert(sizeof(CodecParams::reserved0) == 44);
static_assert(offsetof(CodecParams, data) == 64);
static_assert(sizeof(CodecParams::data) == kCodecParamsMaxBytes);

// --- PacketRecordHeader (spec 10.3) ---
static_assert(sizeof(PacketRecordHeader) == kRecordHeaderSize);
static_assert(alignof(PacketRecordHeader) == kRecordAlign);
static_assert(offsetof(PacketRecordHeader, lock) == 0);
static_assert(offsetof(PacketRecordHeader, size) == 8);
static_assert(offsetof(PacketRecordHeader, flags) == 12);
static_assert(offsetof(PacketRecordHeader, pts) == 16);
static_assert(offsetof(PacketRecordHeader, params_generation) == 24);
static_assert(offsetof(PacketRecordHeader, reserved0) == 28);

// --- segment geometry (spec 10.1) ---
static_assert(kCodecParamsOffset == kRingHeaderSize);
static_assert(kRingDataOffset == kCodecParamsOffset + kCodecParamsSize);
static_assert(kRingDataOffset % 64 == 0);

// Returns the bytes a record holding a `size`-byte payload occupies: align_up(32 + size, 32).
constexpr uint64_t RecordSpan(uint64_t size) {
  return (kRecordHeaderSize + size + kRecordAlign - 1) & ~uint64_t{kRecordAlign - 1};
}

// Returns the segment size a ring of `capacity` data bytes needs (data_offset + capacity).
constexpr uint64_t RingSegmentSize(uint64_t capacity) {
  return kRingDataOffset + capacity;
}

// Returns true if (capacity, max_packet_bytes) is a geometry the spec allows: capacity a power of
// two >= 4096, max_packet_bytes >= 1 and max_packet_bytes + 32 <= capacity / 2.
constexpr bool ValidGeometry(uint64_t capacity, uint64_t max_packet_bytes) {
  return capacity >= kMinCapacity && (capacity & (capacity - 1)) == 0 && max_packet_bytes >= 1 &&
         max_packet_bytes + kRecordHeaderSize <= capacity / 2;
}

// Returns the codec params generation that follows `previous` (PKT-PARAMS-01): previous + 1,
// skipping 0 ("none published") when it wraps.
constexpr uint32_t NextParamsGeneration(uint32_t previous) {
  return previous == UINT32_MAX ? 1u : previous + 1u;
}

// A reader cursor, or where a late joiner starts (HELLO_RESP initial_packet_seq/_pos).
struct Position {
  uint64_t seq = 0;
  uint64_t pos = 0;
};

// One delivered packet. `data` views the reader's internal buffer and stays valid until the next
// call of RingReader::next on the same reader.
struct Packet {
  uint64_t seq = 0;
  uint64_t pos = 0;  // position of its record
  int64_t pts = 0;
  uint32_t flags = 0;  // kPacketKeyframe or 0
  uint32_t params_generation = 0;
  std::span<const uint8_t> data;
};

// A consistent snapshot of the codec parameters block. `data` views the reader's internal buffer
// and stays valid until the next call of RingReader::codec_params on the same reader.
struct CodecParamsSnapshot {
  uint32_t generation = 0;
  uint32_t codec = 0;
  std::span<const uint8_t> data;
};

// The publisher's side of a ring. publish, set_codec_params and close must be called from one
// thread at a time; position() may be called from any thread concurrently with them.
class RingWriter {
 public:
  RingWriter() = default;
  RingWriter(const RingWriter&) = delete;
  RingWriter& operator=(const RingWriter&) = delete;

  // Lays out a fresh ring in [base, base + size): zeroes the header, the codec params block and
  // the data area, fills in the header, then sets state READY (release). `base` must be 64-byte
  // aligned and stay mapped for this object's lifetime.
  // Returns kOk; kInvalidArgument if base is null or misaligned, (capacity, max_packet_bytes) is
  // not a valid geometry (see ValidGeometry), or size < RingSegmentSize(capacity); kState if
  // already initialized.
  Status init(void* base, size_t size, uint64_t capacity, uint32_t max_packet_bytes,
              uint32_t codec);

  // Makes publish() issue FUTEX_WAKE only while *count (the frame segment header's
  // packet_waiters, SHM-ORDER-02) is nonzero; count == nullptr (the default) wakes on every
  // publish. The count is read only, never trusted beyond "zero or not", and must stay mapped
  // for this object's lifetime. Readers must then count themselves in the same word
  // (RingReader::set_waiter_count), or each of their wake-ups may come up to
  // PEER_DEATH_DETECT_MS late. Call before the first publish, from the publishing thread.
  void set_waiter_count(const uint32_t* count) { waiter_count_ = count; }

  // Appends packet head_seq + 1 (spec 10.4): frees space by invalidating the oldest records,
  // writes a PAD record first if the packet would straddle the end of the data area, writes the
  // record under its lock, publishes head_pos/head_seq (and last_key_* for a keyframe), increments
  // packet_futex (seq_cst) and, unless a waiter count was set and reads zero, wakes every reader
  // waiting on it (PKT-WRITE-04, SHM-ORDER-02). `flags` may hold only kPacketKeyframe.
  // Returns kOk; kOversized if size > max_packet_bytes (nothing written); kInvalidArgument for
  // other flag bits or data == nullptr with size > 0; kState if not initialized or closed;
  // kCorrupt if a record the writer must skip over holds an impossible size (someone else wrote
  // to the segment; the ring is then unusable).
  Status publish(const void* data, uint32_t size, uint32_t flags, int64_t pts);

  // Publishes new codec parameters (e.g. SPS/PPS) under the CodecParams seqlock and advances
  // the generation with NextParamsGeneration (the first publication is generation 1; 0 is
  // skipped on wrap-around). Packets published afterwards carry the new generation in
  // params_generation. `codec` must be the ring's codec (the one given to init): the block's
  // codec always equals the ring header's (PKT-PARAMS-01).
  // Returns kOk; kOversized if size > 4096 (nothing written); kInvalidArgument if data == nullptr
  // with size > 0, or codec differs from the ring's (nothing written); kState if not initialized
  // or closed.
  Status set_codec_params(uint32_t codec, const void* data, uint32_t size);

  // Returns where a late joiner starts: (last_key_seq, last_key_pos) of the latest keyframe, or
  // (head_seq + 1, head_pos) if no keyframe was published yet. A consistent pair; thread-safe.
  Position position() const;

  // Sets state CLOSED (release), increments packet_futex and wakes every waiting reader
  // unconditionally, whatever the waiter count says (PKT-WRITE-07). Idempotent. publish and
  // set_codec_params then return kState.
  void close();

  // Returns the current codec params generation (0 before the first set_codec_params).
  uint32_t params_generation() const { return params_generation_; }
  uint64_t capacity() const { return capacity_; }
  uint32_t max_packet_bytes() const { return max_packet_bytes_; }
  uint32_t codec() const { return codec_; }

 private:
  friend struct RingWriterTestPeer;  // packet_ring_test: generation wrap-around

  void write_record(uint64_t pos, uint64_t lock, uint32_t size, uint32_t flags, int64_t pts,
                    const void* payload, uint32_t payload_size);
  void set_start(uint64_t seq, uint64_t pos);

  unsigned char* base_ = nullptr;
  PacketRingHeader* header_ = nullptr;
  CodecParams* params_ = nullptr;
  unsigned char* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint32_t max_packet_bytes_ = 0;
  uint32_t codec_ = 0;
  const uint32_t* waiter_count_ = nullptr;  // packet_waiters, or nullptr: always wake
  bool closed_ = false;        // publish/set_codec_params refuse (close() or a corrupt ring)
  bool closed_state_ = false;  // state CLOSED was stored
  bool have_keyframe_ = false;
  // Private mirrors of the shared positions: the writer never reads its state back from shared
  // memory, where another process could have changed it.
  uint64_t head_seq_ = 0;
  uint64_t head_pos_ = 0;
  uint64_t tail_pos_ = 0;
  uint64_t params_lock_ = 0;
  uint32_t params_generation_ = 0;
  // position()'s answer, behind a private seqlock so that any thread reads a consistent pair
  // while publish runs.
  std::atomic<uint64_t> start_version_{0};
  std::atomic<uint64_t> start_seq_{1};
  std::atomic<uint64_t> start_pos_{0};
};

// A subscriber's side of a ring: a cursor (next seq, its record position) plus private buffers.
// Not thread-safe; use one reader per thread. Multiple readers may share one mapping.
class RingReader {
 public:
  RingReader() = default;
  RingReader(const RingReader&) = delete;
  RingReader& operator=(const RingReader&) = delete;

  // Validates the header of the ring mapped at [base, base + mapped_size) (spec 10.2) and caches
  // its geometry (later changes to those fields are ignored), then positions the cursor like a
  // resync: at the latest keyframe, or at the head when there is none (see next()).
  // Returns kOk; kInvalidArgument if base is null or not 64-byte aligned; kUnsupportedLayout if
  // layout_version != 1, magic != RING_MAGIC or header_size != 256 (or mapped_size < 256);
  // kAgain if state is INIT (not ready yet: retry); kPeerClosed if state is CLOSED; kCorrupt for
  // any other violation (data_offset, capacity, max_packet_bytes, a segment_size other than
  // data_offset + capacity or other than mapped_size, which must be the file's size, unknown
  // state); kNoMemory if the payload buffer cannot be allocated.
  Status attach(const void* base, size_t mapped_size);

  // Moves the cursor to packet `seq` at record position `pos` (e.g. HELLO_RESP's
  // initial_packet_seq/_pos). Until the next keyframe, non-keyframe packets are skipped.
  // Returns kOk; kInvalidArgument if seq == 0 or pos is not a multiple of 32; kState if not
  // attached.
  Status seek(uint64_t seq, uint64_t pos);

  // Makes next() count itself in *count (the frame segment header's packet_waiters, which the
  // subscriber maps writable) around each FUTEX_WAIT, as SHM-ORDER-04 says: load packet_futex,
  // increment the count (seq_cst), re-check, wait, decrement. count == nullptr (the default)
  // counts nothing: fine with a writer that always wakes. Must stay mapped for this object's
  // lifetime.
  void set_waiter_count(uint32_t* count) { waiter_count_ = count; }

  // Copies the packet at the cursor into the internal buffer and advances (spec 10.6). While the
  // packet is not published yet: timeout_ms == 0 returns kAgain at once, > 0 waits on
  // packet_futex up to timeout_ms, < 0 waits without limit; either way in FUTEX_WAITs of at most
  // PEER_DEATH_DETECT_MS each, re-checking in between, so a wake-up that never comes (a hostile
  // waiter count) delays a packet but never loses it.
  // After attach, seek or a resync, packets are skipped until a keyframe whose params_generation
  // equals the codec params block's current generation, or any keyframe while that generation is
  // 0 (PKT-READ-06, PKT-READ-08).
  // Returns kOk with `out` filled; kAgain / kTimeout when nothing arrived (cursor unchanged);
  // kPeerClosed if state is CLOSED and every published packet was read; kPacketOverrun if the
  // writer overwrote the packet before or while it was read: the cursor has moved to the latest
  // keyframe (resync) and the next call continues there; kCorrupt if the ring holds values the
  // spec forbids, or a record or the codec params block stayed locked (odd) for
  // SEQLOCK_SPIN_LIMIT_MS (the writer may have died: the caller consults publisher liveness); the
  // cursor is then unchanged. kState if not
  // attached. Never returns a torn payload, and never a non-keyframe (or a keyframe of other codec
  // params) before the first matching keyframe after attach, seek or a resync.
  Status next(Packet& out, int timeout_ms);

  // Reads a consistent snapshot of the codec params block (spec 10.5).
  // Returns kOk; kNoCodecParams if generation is 0; kCorrupt if size > 4096, or if no stable even
  // lock was seen within SEQLOCK_SPIN_LIMIT_MS; kState if not attached.
  Status codec_params(CodecParamsSnapshot& out);

  Position cursor() const { return {seq_, pos_}; }
  uint64_t capacity() const { return capacity_; }
  uint32_t max_packet_bytes() const { return max_packet_bytes_; }
  uint32_t codec() const { return codec_; }
  // Number of resyncs (kPacketOverrun returns) so far.
  uint64_t overruns() const { return overruns_; }

 private:
  enum class Read { kDelivered, kSkipped, kRetry };
  Status read_at(uint64_t n, uint64_t p, Packet& out, Read& what);
  bool lapped(const PacketRecordHeader* rec, uint64_t want, uint64_t p) const;
  Status overrun();
  // Moves the cursor to the latest readable keyframe not below floor_seq, else to the head.
  void resync(uint64_t floor_seq = 0);
  Status params_generation(uint32_t& generation) const;

  const unsigned char* base_ = nullptr;
  const PacketRingHeader* header_ = nullptr;
  const CodecParams* params_ = nullptr;
  const unsigned char* data_ = nullptr;
  uint64_t capacity_ = 0;
  uint32_t max_packet_bytes_ = 0;
  uint32_t codec_ = 0;
  uint32_t* waiter_count_ = nullptr;  // packet_waiters in the frame segment, or nullptr
  uint64_t seq_ = 0;
  uint64_t pos_ = 0;
  // The highest head_seq this reader has loaded (acquire). Packets up to it are published, so
  // next() loads head_seq only when the cursor passes it: in a burst the header's cache line,
  // which the writer stores to on every publish, is read once per burst instead of per packet.
  uint64_t known_head_ = 0;
  bool need_keyframe_ = true;
  // Cursor came from (head_seq + 1, head_pos), two words the writer stores separately, so it may
  // be inconsistent; a stale lock there triggers another resync instead of kCorrupt.
  bool from_head_ = false;
  uint32_t head_resyncs_ = 0;
  uint64_t overruns_ = 0;
  std::unique_ptr<uint8_t[]> buffer_;
  std::unique_ptr<uint8_t[]> params_buffer_;
};

}  // namespace cuframes::ring

#endif  // CUFRAMES_REFERENCE_SRC_PACKET_RING_H_
