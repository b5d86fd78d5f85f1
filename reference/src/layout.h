// layout.h: the shared-memory layout of /dev/shm/cuframes-<key> (spec section 2), byte by byte.
//
// Every offset and size below is a protocol constant held against spec/cuframes.json twice: by
// the static_asserts in this file and by tests/check_layout_against_twin.py, which compares the
// table printed by tools/layout_dump.cpp with the twin. If one of them fails, a layout changed:
// that is a breaking change and needs a new layout_version.
//
// Fields marked "atomic" are plain integers here; they are only ever accessed through
// mem_order.h (std::atomic_ref), never directly. Publisher-written and subscriber-written fields
// of the header live on separate 64-byte cache lines. Shared memory holds offsets, never pointers.
// The socket messages are NOT described by structs: they are encoded field by field in tlv.cpp.
#ifndef CUFRAMES_REFERENCE_SRC_LAYOUT_H_
#define CUFRAMES_REFERENCE_SRC_LAYOUT_H_

#include <cstddef>
#include <cstdint>

namespace cuframes::layout {

inline constexpr uint32_t kSegmentMagic = 0x52465543;  // "CUFR"
inline constexpr uint32_t kHelloMagic = 0x52465543;
inline constexpr uint32_t kSegmentLayoutVersion = 1;
inline constexpr uint32_t kSegmentHeaderSize = 256;
inline constexpr uint32_t kFrameMetaSize = 64;
inline constexpr uint32_t kSlotDescriptorSize = 192;
inline constexpr uint32_t kSubscriberSlotSize = 128;
inline constexpr uint64_t kHostDataAlign = 4096;
inline constexpr uint32_t kMinSlotCount = 2;
inline constexpr uint32_t kMaxSlotCount = 256;
inline constexpr uint32_t kMaxSubscribers = 64;
inline constexpr size_t kMaxKeyLength = 64;
inline constexpr size_t kIpcHandleSize = 64;
inline constexpr uint32_t kHandshakeTimeoutMs = 2000;
inline constexpr uint32_t kDefaultAckTimeoutMs = 2000;
inline constexpr uint32_t kPeerDeathDetectMs = 250;
inline constexpr uint32_t kPongDeadlineMs = 1000;

// enums (spec/cuframes.json "enums")
enum MemoryKind : uint16_t { kKindHost = 1, kKindCudaIpc = 2, kKindCudaVmmFd = 3 };
enum SegmentState : uint32_t { kSegInit = 0, kSegReady = 1, kSegClosed = 2 };
enum SubscriberState : uint32_t {
  kSubFree = 0,
  kSubAttaching = 1,
  kSubActive = 2,
  kSubEvicted = 3
};
inline constexpr uint32_t kSegmentFlagPacketRing = 1;
inline constexpr uint32_t kFrameFlagEndOfStream = 1;
inline constexpr uint32_t kSubscriberFlagAckEventPresent = 1;

// Returns the bit of HELLO_REQ.kinds_mask that stands for `kind` (bit kind-1).
constexpr uint32_t KindBit(uint16_t kind) {
  return kind >= 1 && kind <= 32 ? 1u << (kind - 1) : 0;
}

struct alignas(64) SegmentHeader {
  // cache line 0: immutable after READY
  uint32_t layout_version;
  uint32_t magic;
  uint32_t state;  // atomic
  uint32_t header_size;
  uint16_t proto_version;
  uint16_t memory_kind;
  uint32_t slot_count;
  uint32_t max_subscribers;
  uint32_t flags;
  uint64_t publisher_pid;
  uint64_t publisher_start_time;
  uint64_t segment_size;
  uint32_t lib_version;
  uint32_t reserved0;
  // cache line 1: immutable frame geometry and layout offsets
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t slot_bytes;
  uint64_t slot_desc_offset;
  uint64_t sub_slot_offset;
  uint64_t data_offset;
  uint64_t data_stride;
  uint64_t reserved1;
  // cache line 2: publisher-written counters
  uint64_t write_seq;    // atomic
  uint32_t frame_futex;  // atomic
  uint32_t ack_waiting;  // atomic
  uint8_t reserved2[48];
  // cache line 3: subscriber-written counters
  uint32_t ack_futex;       // atomic
  uint32_t frame_waiters;   // atomic: subscribers blocked on frame_futex
  uint32_t packet_waiters;  // atomic: subscribers blocked on the ring's packet_futex (v2)
  uint8_t reserved3[52];
};

struct alignas(64) FrameMeta {
  uint64_t seq;  // atomic
  int64_t timestamp_ns;
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t payload_bytes;
  uint32_t flags;
  uint32_t reserved0;
  uint64_t user_data;
  uint64_t reserved1;
};

struct alignas(64) SlotDescriptor {
  FrameMeta meta;
  uint8_t mem_handle[kIpcHandleSize];
  uint8_t ready_event[kIpcHandleSize];
};

struct alignas(64) SubscriberSlot {
  uint32_t state;  // atomic, publisher-written
  uint32_t generation;
  uint64_t ack_seq;  // atomic, subscriber-written
  uint64_t start_seq;
  uint32_t pid;
  uint32_t flags;  // subscriber-written
  uint8_t reserved0[32];
  uint8_t ack_event[kIpcHandleSize];  // subscriber-written
};

// --- SegmentHeader (spec 2.2) ---
static_assert(sizeof(SegmentHeader) == 256);
static_assert(alignof(SegmentHeader) == 64);
static_assert(offsetof(SegmentHeader, layout_version) == 0);
static_assert(offsetof(SegmentHeader, magic) == 4);
static_assert(offsetof(SegmentHeader, state) == 8);
static_assert(offsetof(SegmentHeader, header_size) == 12);
static_assert(offsetof(SegmentHeader, proto_version) == 16);
static_assert(offsetof(SegmentHeader, memory_kind) == 18);
static_assert(offsetof(SegmentHeader, slot_count) == 20);
static_assert(offsetof(SegmentHeader, max_subscribers) == 24);
static_assert(offsetof(SegmentHeader, flags) == 28);
static_assert(offsetof(SegmentHeader, publisher_pid) == 32);
static_assert(offsetof(SegmentHeader, publisher_start_time) == 40);
static_assert(offsetof(SegmentHeader, segment_size) == 48);
static_assert(offsetof(SegmentHeader, lib_version) == 56);
static_assert(offsetof(SegmentHeader, reserved0) == 60);
static_assert(offsetof(SegmentHeader, width) == 64);
static_assert(offsetof(SegmentHeader, height) == 68);
static_assert(offsetof(SegmentHeader, pixel_format) == 72);
static_assert(offsetof(SegmentHeader, pitch) == 76);
static_assert(offsetof(SegmentHeader, slot_bytes) == 80);
static_assert(offsetof(SegmentHeader, slot_desc_offset) == 88);
static_assert(offsetof(SegmentHeader, sub_slot_offset) == 96);
static_assert(offsetof(SegmentHeader, data_offset) == 104);
static_assert(offsetof(SegmentHeader, data_stride) == 112);
static_assert(offsetof(SegmentHeader, reserved1) == 120);
static_assert(offsetof(SegmentHeader, write_seq) == 128);
static_assert(offsetof(SegmentHeader, frame_futex) == 136);
static_assert(offsetof(SegmentHeader, ack_waiting) == 140);
static_assert(offsetof(SegmentHeader, reserved2) == 144 && sizeof(SegmentHeader::reserved2) == 48);
static_assert(offsetof(SegmentHeader, ack_futex) == 192);
static_assert(offsetof(SegmentHeader, frame_waiters) == 196);
static_assert(offsetof(SegmentHeader, packet_waiters) == 200);
static_assert(offsetof(SegmentHeader, reserved3) == 204 && sizeof(SegmentHeader::reserved3) == 52);

// --- FrameMeta (spec 2.3) ---
static_assert(sizeof(FrameMeta) == kFrameMetaSize);
static_assert(offsetof(FrameMeta, seq) == 0);
static_assert(offsetof(FrameMeta, timestamp_ns) == 8);
static_assert(offsetof(FrameMeta, width) == 16);
static_assert(offsetof(FrameMeta, height) == 20);
static_assert(offsetof(FrameMeta, pixel_format) == 24);
static_assert(offsetof(FrameMeta, pitch) == 28);
static_assert(offsetof(FrameMeta, payload_bytes) == 32);
static_assert(offsetof(FrameMeta, flags) == 40);
static_assert(offsetof(FrameMeta, reserved0) == 44);
static_assert(offsetof(FrameMeta, user_data) == 48);
static_assert(offsetof(FrameMeta, reserved1) == 56);

// --- SlotDescriptor (spec 2.4) ---
static_assert(sizeof(SlotDescriptor) == kSlotDescriptorSize);
static_assert(offsetof(SlotDescriptor, meta) == 0);
static_assert(offsetof(SlotDescriptor, mem_handle) == 64);
static_assert(sizeof(SlotDescriptor::mem_handle) == 64);
static_assert(offsetof(SlotDescriptor, ready_event) == 128);
static_assert(sizeof(SlotDescriptor::ready_event) == 64);

// --- SubscriberSlot (spec 2.5) ---
static_assert(sizeof(SubscriberSlot) == kSubscriberSlotSize);
static_assert(offsetof(SubscriberSlot, state) == 0);
static_assert(offsetof(SubscriberSlot, generation) == 4);
static_assert(offsetof(SubscriberSlot, ack_seq) == 8);
static_assert(offsetof(SubscriberSlot, start_seq) == 16);
static_assert(offsetof(SubscriberSlot, pid) == 24);
static_assert(offsetof(SubscriberSlot, flags) == 28);
static_assert(offsetof(SubscriberSlot, reserved0) == 32);
static_assert(sizeof(SubscriberSlot::reserved0) == 32);
static_assert(offsetof(SubscriberSlot, ack_event) == 64);
static_assert(sizeof(SubscriberSlot::ack_event) == 64);

// Rounds `v` up to a multiple of `a` (a power of two).
constexpr uint64_t AlignUp(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

// Geometry of a segment, derived from (memory kind, slot_count, max_subscribers, slot_bytes)
// exactly as spec section 2.1 prescribes.
struct Geometry {
  uint64_t slot_desc_offset;
  uint64_t sub_slot_offset;
  uint64_t data_offset;
  uint64_t data_stride;
  uint64_t segment_size;
};

constexpr Geometry ComputeGeometry(uint16_t kind, uint32_t slot_count, uint32_t max_subscribers,
                                   uint64_t slot_bytes) {
  Geometry g{};
  g.slot_desc_offset = kSegmentHeaderSize;
  g.sub_slot_offset = kSegmentHeaderSize + uint64_t{kSlotDescriptorSize} * slot_count;
  const uint64_t sub_end = g.sub_slot_offset + uint64_t{kSubscriberSlotSize} * max_subscribers;
  if (kind == kKindHost) {
    g.data_offset = AlignUp(sub_end, kHostDataAlign);
    g.data_stride = AlignUp(slot_bytes, kHostDataAlign);
    g.segment_size = g.data_offset + uint64_t{slot_count} * g.data_stride;
  } else {
    g.data_offset = 0;
    g.data_stride = 0;
    g.segment_size = sub_end;
  }
  return g;
}

}  // namespace cuframes::layout

#endif  // CUFRAMES_REFERENCE_SRC_LAYOUT_H_
