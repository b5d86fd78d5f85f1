// fuzz_segment_attach.cpp: libFuzzer target for frame-segment validation at attach (spec 2.1,
// 2.2, 2.8; reference/src/segment.h) over fuzzer-controlled segment bytes.
//
// Input: [mode byte][segment file contents]. Every input goes through ValidateHeader on a copy
// of its first 256 bytes, with the file size = the contents' size; when mode bit 0 is set the
// contents are also written to /dev/shm/cuframes-fuzzseg-<pid> and attached with AttachSegment
// (timeout 0), the subscriber's real path.
// Checked:
//  - the result is OK, UNSUPPORTED_LAYOUT or CORRUPT (PEER_CLOSED for state CLOSED, TIMEOUT for a
//    segment still INIT) and agrees with the rules of SHM-HDR-01 / SHM-VALID-01 derived here
//    from the twin (where the spec leaves a case open, either OK or CORRUPT is accepted);
//  - an accepted segment's descriptors, subscriber slots and (HOST) buffers all lie inside the
//    file: every byte of them is read from an exact-size heap copy (ASan) and from the mapping
//    (SIGBUS past the file), and the returned SegmentInfo matches the header bytes.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cuframes_spec_generated.h"
#include "fuzz_common.h"
#include "layout.h"
#include "segment.h"
#include "status.h"

namespace cuframes::fuzz {
namespace {

namespace sp = cuframes::spec;
namespace H = cuframes::spec::SegmentHeader;

enum class Want { kOk, kCorrupt, kEither, kUnsupportedLayout, kPeerClosed, kInit, kInitOrLayout };

const char* WantName(Want w) {
  switch (w) {
    case Want::kOk:
      return "OK";
    case Want::kCorrupt:
      return "CORRUPT";
    case Want::kEither:
      return "OK or CORRUPT";
    case Want::kUnsupportedLayout:
      return "UNSUPPORTED_LAYOUT";
    case Want::kPeerClosed:
      return "PEER_CLOSED";
    case Want::kInit:
      return "TIMEOUT (state INIT)";
    case Want::kInitOrLayout:
      return "TIMEOUT or UNSUPPORTED_LAYOUT";
  }
  return "?";
}

#define FIELD(name) LoadLe(h + H::name::offset, H::name::size)

// The spec's verdict on a header `h` (256 bytes) of a file of `file_size` bytes.
Want SpecVerdict(const uint8_t* h, uint64_t file_size) {
  if (FIELD(layout_version) != sp::SEGMENT_LAYOUT_VERSION || FIELD(magic) != sp::SEGMENT_MAGIC ||
      FIELD(header_size) != sp::SEGMENT_HEADER_SIZE) {
    return Want::kUnsupportedLayout;
  }
  const uint64_t state = FIELD(state);
  if (state == static_cast<uint32_t>(sp::SegmentState::CLOSED)) return Want::kPeerClosed;
  if (state > static_cast<uint32_t>(sp::SegmentState::CLOSED)) return Want::kCorrupt;
  const uint64_t kind = FIELD(memory_kind);
  const uint64_t sc = FIELD(slot_count);
  const uint64_t ms = FIELD(max_subscribers);
  const uint64_t seg = FIELD(segment_size);
  const uint64_t slot_bytes = FIELD(slot_bytes);
  const uint64_t data_offset = FIELD(data_offset);
  const uint64_t data_stride = FIELD(data_stride);
  if (kind < 1 || kind > 3) return Want::kCorrupt;
  if (sc < sp::MIN_SLOT_COUNT || sc > sp::MAX_SLOT_COUNT) return Want::kCorrupt;
  if (ms < 1 || ms > sp::MAX_SUBSCRIBERS) return Want::kCorrupt;
  if (FIELD(slot_desc_offset) != sp::SEGMENT_HEADER_SIZE) return Want::kCorrupt;
  const uint64_t sub_off = sp::SEGMENT_HEADER_SIZE + uint64_t{sp::SLOT_DESCRIPTOR_SIZE} * sc;
  if (FIELD(sub_slot_offset) != sub_off) return Want::kCorrupt;
  const uint64_t sub_end = sub_off + uint64_t{sp::SUBSCRIBER_SLOT_SIZE} * ms;
  // SHM-VALID-01: segment_size equal to the file size (found accepting smaller: fixed).
  if (seg != file_size || seg < sub_end) return Want::kCorrupt;
  Want result = Want::kOk;
  if (kind == static_cast<uint32_t>(sp::MemoryKind::HOST)) {
    if (data_offset % sp::HOST_DATA_ALIGN != 0 || data_offset < sub_end || data_offset > seg) {
      return Want::kCorrupt;
    }
    if (data_stride < slot_bytes) return Want::kCorrupt;
    // data_offset + slot_count * data_stride <= segment_size, without overflow.
    if (data_stride != 0 && (seg - data_offset) / data_stride < sc) return Want::kCorrupt;
    // SHM-VALID-01: a multiple of 4096 (found accepting others: fixed).
    if (data_stride % sp::HOST_DATA_ALIGN != 0) return Want::kCorrupt;
  } else if (data_offset != 0 || data_stride != 0) {
    result = Want::kEither;  // SHM-LAYOUT-01 says 0; 2.8 does not list the check
  }
  if (FIELD(proto_version) == 0 || slot_bytes == 0) result = Want::kEither;  // twin: min 1
  return result;
}

bool Matches(Want w, Status s) {
  switch (w) {
    case Want::kOk:
      return s == Status::kOk;
    case Want::kCorrupt:
      return s == Status::kCorrupt;
    case Want::kEither:
      return s == Status::kOk || s == Status::kCorrupt;
    case Want::kUnsupportedLayout:
      return s == Status::kUnsupportedLayout;
    case Want::kPeerClosed:
      return s == Status::kPeerClosed;
    case Want::kInit:
      return s == Status::kTimeout;
    case Want::kInitOrLayout:
      return s == Status::kTimeout || s == Status::kUnsupportedLayout;
  }
  return false;
}

void CheckVerdict(Want want, Status s, const char* path) {
  FUZZ_CHECK(Matches(want, s), "%s returned %s, the spec says %s", path, StatusName(s),
             WantName(want));
}

// Checks an accepted segment's info against the header and reads every byte it implies.
uint64_t CheckAccepted(const SegmentInfo& info, const uint8_t* h, const uint8_t* seg,
                       uint64_t file_size, const char* path) {
  FUZZ_CHECK(info.slot_count == FIELD(slot_count) &&
                 info.max_subscribers == FIELD(max_subscribers) &&
                 info.memory_kind == FIELD(memory_kind) && info.slot_bytes == FIELD(slot_bytes) &&
                 info.geometry.sub_slot_offset == FIELD(sub_slot_offset) &&
                 info.geometry.data_offset == FIELD(data_offset) &&
                 info.geometry.data_stride == FIELD(data_stride) &&
                 info.geometry.segment_size == FIELD(segment_size),
             "%s: SegmentInfo differs from the header bytes", path);
  const uint64_t sub_end =
      info.geometry.sub_slot_offset + uint64_t{layout::kSubscriberSlotSize} * info.max_subscribers;
  FUZZ_CHECK(sub_end <= file_size, "%s: subscriber slots end at %llu, file has %llu", path,
             static_cast<unsigned long long>(sub_end), static_cast<unsigned long long>(file_size));
  uint64_t sum = 0;
  for (uint64_t i = 0; i < sub_end; ++i)
    sum += seg[i];
  if (info.memory_kind == layout::kKindHost) {
    FUZZ_CHECK(info.geometry.data_stride >= info.slot_bytes, "%s: stride below slot_bytes", path);
    for (uint32_t s = 0; s < info.slot_count; ++s) {
      const uint64_t start = info.geometry.data_offset + s * info.geometry.data_stride;
      FUZZ_CHECK(start <= file_size && info.slot_bytes <= file_size - start,
                 "%s: buffer %u ends past the file", path, s);
      // First and last byte of each buffer (reading all of them would be slow for big slots).
      sum += seg[start] + seg[start + info.slot_bytes - 1];
    }
  }
  return sum;
}

void AttachThroughFile(std::span<const uint8_t> bytes, Want want, const uint8_t* h) {
  static const std::string key = "fuzzseg-" + std::to_string(::getpid());
  const std::string path = "/dev/shm/cuframes-" + key;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;  // no /dev/shm here: the ValidateHeader path still ran
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  if (off != bytes.size()) {
    ::unlink(path.c_str());
    return;
  }
  Mapping m;
  SegmentInfo info{};
  const Status s = AttachSegment(key, 0, &m, &info);
  if (bytes.size() < layout::kSegmentHeaderSize) {
    FUZZ_CHECK(s == Status::kCorrupt, "AttachSegment of a %zu-byte file returned %s", bytes.size(),
               StatusName(s));
  } else {
    // SHM-VALID-01: state first; INIT (an all-zero header included) waits, here 0 ms. An INIT
    // header with an unknown layout may be refused at once or waited for.
    const bool blank = FIELD(layout_version) == 0 && FIELD(magic) == 0 && FIELD(header_size) == 0;
    Want w = want;
    if (FIELD(state) == 0) {
      w = blank || want != Want::kUnsupportedLayout ? Want::kInit : Want::kInitOrLayout;
    }
    CheckVerdict(w, s, "AttachSegment");
  }
  if (s == Status::kOk) {
    FUZZ_CHECK(m.valid() && m.size() == bytes.size(), "mapping of %zu bytes for a %zu-byte file",
               m.size(), bytes.size());
    CheckAccepted(info, h, m.data(), bytes.size(), "AttachSegment");
  }
  m.Reset();
  ::unlink(path.c_str());
}

void Run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const uint8_t mode = data[0];
  // An exact-size heap copy: ASan reports any read past the end of the "file".
  std::vector<uint8_t> file(data + 1, data + size);
  const uint64_t file_size = file.size();
  uint8_t hdr[layout::kSegmentHeaderSize] = {};
  if (!file.empty()) std::memcpy(hdr, file.data(), std::min<size_t>(file.size(), sizeof(hdr)));
  const uint8_t* h = hdr;

  Want want = Want::kCorrupt;
  if (file_size >= layout::kSegmentHeaderSize) {
    want = SpecVerdict(h, file_size);
    layout::SegmentHeader copy;
    std::memcpy(&copy, hdr, sizeof(copy));
    SegmentInfo info{};
    const Status s = ValidateHeader(copy, file_size, &info);
    CheckVerdict(want, s, "ValidateHeader");
    if (s == Status::kOk) CheckAccepted(info, h, file.data(), file_size, "ValidateHeader");
  }
  if (mode & 1) AttachThroughFile(file, want, h);
}

#undef FIELD

}  // namespace
}  // namespace cuframes::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cuframes::fuzz::Run(data, size);
  return 0;
}
