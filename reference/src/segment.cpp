// segment.cpp: create, validate and map the frame segment (spec section 2).
#include "segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "lifecycle.h"
#include "mem_order.h"

namespace cuframes {

Mapping& Mapping::operator=(Mapping&& o) noexcept {
  if (this != &o) {
    Reset();
    addr_ = o.addr_;
    size_ = o.size_;
    o.addr_ = nullptr;
  }
  return *this;
}

void Mapping::Reset() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

Status CreateSegment(int fd, const SegmentParams& p, Mapping* out, SegmentInfo* info) {
  const layout::Geometry g =
      layout::ComputeGeometry(p.memory_kind, p.slot_count, p.max_subscribers, p.slot_bytes);
  if (p.slot_bytes == 0 || p.slot_bytes > (uint64_t{1} << 40) ||
      g.segment_size > (uint64_t{1} << 44)) {
    return Status::kInvalidArgument;
  }
  if (::ftruncate(fd, static_cast<off_t>(g.segment_size)) != 0) {
    return errno == ENOSPC || errno == EFBIG ? Status::kNoMemory : Status::kSystem;
  }
  void* addr = ::mmap(nullptr, g.segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) return errno == ENOMEM ? Status::kNoMemory : Status::kSystem;
  Mapping m(addr, g.segment_size);
  // A fresh ftruncate'd file reads as zeros: every reserved byte, descriptor and subscriber slot
  // is already zero and state is INIT (0). Write the immutable header fields.
  auto* h = m.header();
  h->layout_version = layout::kSegmentLayoutVersion;
  h->magic = layout::kSegmentMagic;
  h->header_size = layout::kSegmentHeaderSize;
  h->proto_version = p.proto_version;
  h->memory_kind = p.memory_kind;
  h->slot_count = p.slot_count;
  h->max_subscribers = p.max_subscribers;
  h->flags = p.flags;
  h->publisher_pid = static_cast<uint64_t>(::getpid());
  h->publisher_start_time = ProcStartTime(::getpid());
  h->segment_size = g.segment_size;
  h->lib_version = LibVersion();
  h->width = p.width;
  h->height = p.height;
  h->pixel_format = p.pixel_format;
  h->pitch = p.pitch;
  h->slot_bytes = p.slot_bytes;
  h->slot_desc_offset = g.slot_desc_offset;
  h->sub_slot_offset = g.sub_slot_offset;
  h->data_offset = g.data_offset;
  h->data_stride = g.data_stride;
  Status s = ValidateHeader(*h, g.segment_size, info);
  if (s != Status::kOk) return Status::kInvalidArgument;
  *out = std::move(m);
  return Status::kOk;
}

Status ValidateHeader(const layout::SegmentHeader& h, uint64_t file_size, SegmentInfo* info) {
  if (h.layout_version != layout::kSegmentLayoutVersion || h.magic != layout::kSegmentMagic ||
      h.header_size != layout::kSegmentHeaderSize) {
    return Status::kUnsupportedLayout;
  }
  const uint32_t state = h.state;
  if (state == layout::kSegClosed) return Status::kPeerClosed;
  if (state > layout::kSegClosed) return Status::kCorrupt;
  if (h.proto_version < 1) return Status::kCorrupt;
  if (h.slot_count < layout::kMinSlotCount || h.slot_count > layout::kMaxSlotCount) {
    return Status::kCorrupt;
  }
  if (h.max_subscribers < 1 || h.max_subscribers > layout::kMaxSubscribers) {
    return Status::kCorrupt;
  }
  if (h.memory_kind < layout::kKindHost || h.memory_kind > layout::kKindCudaVmmFd) {
    return Status::kCorrupt;
  }
  if (h.slot_bytes == 0) return Status::kCorrupt;
  if (h.slot_desc_offset != layout::kSegmentHeaderSize) return Status::kCorrupt;
  const uint64_t sub_slot_offset =
      layout::kSegmentHeaderSize + uint64_t{layout::kSlotDescriptorSize} * h.slot_count;
  if (h.sub_slot_offset != sub_slot_offset) return Status::kCorrupt;
  const uint64_t sub_end =
      sub_slot_offset + uint64_t{layout::kSubscriberSlotSize} * h.max_subscribers;
  if (h.segment_size != file_size || h.segment_size < sub_end) return Status::kCorrupt;
  if (h.memory_kind == layout::kKindHost) {
    // Overflow-safe: data_offset and data_stride are bounded by segment_size before multiplying.
    if (h.data_offset % layout::kHostDataAlign != 0 || h.data_offset < sub_end ||
        h.data_offset > h.segment_size) {
      return Status::kCorrupt;
    }
    if (h.data_stride < h.slot_bytes || h.data_stride % layout::kHostDataAlign != 0 ||
        h.data_stride > h.segment_size) {
      return Status::kCorrupt;
    }
    if ((h.segment_size - h.data_offset) / h.slot_count < h.data_stride) return Status::kCorrupt;
  } else if (h.data_offset != 0 || h.data_stride != 0) {
    return Status::kCorrupt;
  }
  SegmentInfo i{};
  i.proto_version = h.proto_version;
  i.memory_kind = h.memory_kind;
  i.slot_count = h.slot_count;
  i.max_subscribers = h.max_subscribers;
  i.flags = h.flags;
  i.publisher_pid = h.publisher_pid;
  i.publisher_start_time = h.publisher_start_time;
  i.lib_version = h.lib_version;
  i.width = h.width;
  i.height = h.height;
  i.pixel_format = h.pixel_format;
  i.pitch = h.pitch;
  i.slot_bytes = h.slot_bytes;
  i.geometry = {h.slot_desc_offset, h.sub_slot_offset, h.data_offset, h.data_stride,
                h.segment_size};
  *info = i;
  return Status::kOk;
}

Status AttachSegment(std::string_view key, uint32_t timeout_ms, Mapping* out, SegmentInfo* info) {
  const std::string path = SegmentPath(key);
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::kNotFound;
    return errno == EACCES || errno == EPERM ? Status::kPermission : Status::kSystem;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::kSystem;
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < layout::kSegmentHeaderSize) {
    ::close(fd);
    return Status::kCorrupt;
  }
  void* addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (addr == MAP_FAILED) return errno == ENOMEM ? Status::kNoMemory : Status::kSystem;
  Mapping m(addr, file_size);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  layout::SegmentHeader copy{};
  for (;;) {
    // Snapshot with atomic loads: a hostile peer may be writing the header.
    mem::copy_from_shared(&copy, m.header(), sizeof(copy));
    // The version comes first: a layout we do not understand is rejected before anything else
    // (all-zero means the publisher has not written the header yet).
    const bool blank = copy.layout_version == 0 && copy.magic == 0 && copy.header_size == 0;
    if (!blank &&
        (copy.layout_version != layout::kSegmentLayoutVersion ||
         copy.magic != layout::kSegmentMagic || copy.header_size != layout::kSegmentHeaderSize)) {
      return Status::kUnsupportedLayout;
    }
    copy.state = mem::load_acquire(&m.header()->state);
    if (copy.state != layout::kSegInit) break;
    // Wait (bounded) while the publisher initializes; READY is stored last with release.
    if (std::chrono::steady_clock::now() >= deadline) return Status::kTimeout;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  mem::copy_from_shared(&copy, m.header(), sizeof(copy));  // after the acquire of READY
  copy.state = mem::load_acquire(&m.header()->state);
  const Status s = ValidateHeader(copy, file_size, info);
  if (s != Status::kOk) return s;
  *out = std::move(m);
  return Status::kOk;
}

}  // namespace cuframes
