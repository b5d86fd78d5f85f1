// segment.h: creating, validating and mapping the frame segment /dev/shm/cuframes-<key>
// (spec section 2).
//
// The publisher creates and initializes it (state INIT), fills its header and finally marks it
// READY; a subscriber maps it read-write (it writes only its own subscriber slot's
// subscriber-written fields and header.ack_futex), validates every header field against the
// file's real size once, and from then on uses only the validated snapshot, never re-reading
// geometry from memory a hostile peer could change.
#ifndef CUFRAMES_REFERENCE_SRC_SEGMENT_H_
#define CUFRAMES_REFERENCE_SRC_SEGMENT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "layout.h"
#include "status.h"

namespace cuframes {

// A validated copy of the immutable part of a SegmentHeader.
struct SegmentInfo {
  uint16_t proto_version;
  uint16_t memory_kind;
  uint32_t slot_count;
  uint32_t max_subscribers;
  uint32_t flags;
  uint64_t publisher_pid;
  uint64_t publisher_start_time;
  uint32_t lib_version;
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t slot_bytes;
  layout::Geometry geometry;
};

// An owned shared mapping (munmap on destruction). Move-only.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* addr, size_t size) : addr_(static_cast<uint8_t*>(addr)), size_(size) {}
  Mapping(Mapping&& o) noexcept : addr_(o.addr_), size_(o.size_) { o.addr_ = nullptr; }
  Mapping& operator=(Mapping&& o) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { Reset(); }

  void Reset();
  uint8_t* data() const { return addr_; }
  size_t size() const { return size_; }
  bool valid() const { return addr_ != nullptr; }

  layout::SegmentHeader* header() const { return reinterpret_cast<layout::SegmentHeader*>(addr_); }
  // Slot descriptor / subscriber slot i; callers pass an index < the validated count.
  layout::SlotDescriptor* desc(uint32_t i) const {
    return reinterpret_cast<layout::SlotDescriptor*>(addr_ + layout::kSegmentHeaderSize +
                                                     size_t{layout::kSlotDescriptorSize} * i);
  }
  layout::SubscriberSlot* sub(const SegmentInfo& info, uint32_t i) const {
    return reinterpret_cast<layout::SubscriberSlot*>(addr_ + info.geometry.sub_slot_offset +
                                                     size_t{layout::kSubscriberSlotSize} * i);
  }

 private:
  uint8_t* addr_ = nullptr;
  size_t size_ = 0;
};

// Parameters of a new segment (already range-checked by the publisher).
struct SegmentParams {
  uint16_t proto_version;  // the highest version the publisher speaks
  uint16_t memory_kind;
  uint32_t slot_count;
  uint32_t max_subscribers;
  uint32_t flags;
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t slot_bytes;
};

// Sizes the locked, empty segment file `fd` for `params`, maps it and initializes the header
// (state INIT, publisher identity, geometry), every slot descriptor and subscriber slot to zero.
// The caller stores state READY (release) once everything else is in place.
// Returns kOk (*out holds the mapping, *info the header snapshot), kInvalidArgument (sizes
// overflow), kNoMemory (ftruncate ENOSPC/mmap ENOMEM), kSystem.
Status CreateSegment(int fd, const SegmentParams& params, Mapping* out, SegmentInfo* info);

// Checks a copy of a segment header against the spec (SHM-HDR-01, SHM-VALID-01) and against
// `file_size` (fstat; segment_size must equal it), with the state already known not to be INIT.
// Returns kOk (*info filled), kUnsupportedLayout (layout_version, magic or header_size unknown),
// kPeerClosed (state CLOSED), kCorrupt (any other field out of range or inconsistent).
Status ValidateHeader(const layout::SegmentHeader& h, uint64_t file_size, SegmentInfo* info);

// Opens /dev/shm/cuframes-<key> read-write, maps it, waits up to `timeout_ms` while its state is
// INIT and validates it.
// Returns kOk, kNotFound (no segment), kPermission (open denied), kTimeout (still INIT),
// and every error of ValidateHeader(); kCorrupt also for a file smaller than a header.
Status AttachSegment(std::string_view key, uint32_t timeout_ms, Mapping* out, SegmentInfo* info);

}  // namespace cuframes

#endif  // CUFRAMES_REFERENCE_SRC_SEGMENT_H_
