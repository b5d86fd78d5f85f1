// segment_test: creating a segment, and the subscriber's validation of every header field.
#include "segment.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "lifecycle.h"
#include "mem_order.h"

namespace cuframes {
namespace {

SegmentParams HostParams() {
  SegmentParams p{};
  p.proto_version = 2;
  p.memory_kind = layout::kKindHost;
  p.slot_count = 4;
  p.max_subscribers = 8;
  p.width = 64;
  p.height = 32;
  p.pixel_format = 3;
  p.pitch = 64;
  p.slot_bytes = 64 * 32;
  return p;
}

layout::SegmentHeader GoodHeader(uint16_t kind = layout::kKindHost) {
  const layout::Geometry g = layout::ComputeGeometry(kind, 4, 8, 2048);
  layout::SegmentHeader h{};
  h.layout_version = 1;
  h.magic = layout::kSegmentMagic;
  h.state = layout::kSegReady;
  h.header_size = 256;
  h.proto_version = 2;
  h.memory_kind = kind;
  h.slot_count = 4;
  h.max_subscribers = 8;
  h.slot_bytes = 2048;
  h.slot_desc_offset = g.slot_desc_offset;
  h.sub_slot_offset = g.sub_slot_offset;
  h.data_offset = g.data_offset;
  h.data_stride = g.data_stride;
  h.segment_size = g.segment_size;
  return h;
}

TEST(ValidateHeader, GoodHostAndCuda) {
  SegmentInfo info{};
  layout::SegmentHeader h = GoodHeader();
  EXPECT_EQ(ValidateHeader(h, h.segment_size, &info), Status::kOk);
  EXPECT_EQ(info.slot_count, 4u);
  EXPECT_EQ(info.geometry.data_offset, 4096u);
  EXPECT_EQ(ValidateHeader(h, h.segment_size + 4096, &info), Status::kCorrupt) << "size != file";
  h = GoodHeader(layout::kKindCudaIpc);
  EXPECT_EQ(ValidateHeader(h, h.segment_size, &info), Status::kOk);
}

// The stream description the header carries reaches the subscriber's info field by field (no
// wire message carries it, so only the C API shows a field that was dropped).
TEST(ValidateHeader, CopiesTheStreamDescription) {
  SegmentInfo info{};
  layout::SegmentHeader h = GoodHeader();
  h.width = 640;
  h.height = 360;
  h.pixel_format = 4;
  h.pitch = 1280;
  h.lib_version = 0x000602;
  h.publisher_pid = 4242;
  ASSERT_EQ(ValidateHeader(h, h.segment_size, &info), Status::kOk);
  EXPECT_EQ(info.width, 640u);
  EXPECT_EQ(info.height, 360u);
  EXPECT_EQ(info.pixel_format, 4u);
  EXPECT_EQ(info.pitch, 1280u);
  EXPECT_EQ(info.slot_bytes, 2048u);
  EXPECT_EQ(info.lib_version, 0x000602u);
  EXPECT_EQ(info.publisher_pid, 4242u);
  EXPECT_EQ(info.max_subscribers, 8u);
}

TEST(ValidateHeader, EachViolationHasItsCode) {
  struct Case {
    const char* what;
    std::function<void(layout::SegmentHeader&)> mutate;
    Status want;
  };
  const Case cases[] = {
      {"layout_version", [](auto& h) { h.layout_version = 2; }, Status::kUnsupportedLayout},
      {"magic", [](auto& h) { h.magic = 0x52465544; }, Status::kUnsupportedLayout},
      {"header_size", [](auto& h) { h.header_size = 512; }, Status::kUnsupportedLayout},
      {"closed", [](auto& h) { h.state = layout::kSegClosed; }, Status::kPeerClosed},
      {"state 7", [](auto& h) { h.state = 7; }, Status::kCorrupt},
      {"slot_count 1", [](auto& h) { h.slot_count = 1; }, Status::kCorrupt},
      {"slot_count 257", [](auto& h) { h.slot_count = 257; }, Status::kCorrupt},
      {"max_subscribers 0", [](auto& h) { h.max_subscribers = 0; }, Status::kCorrupt},
      {"max_subscribers 65", [](auto& h) { h.max_subscribers = 65; }, Status::kCorrupt},
      {"memory_kind 0", [](auto& h) { h.memory_kind = 0; }, Status::kCorrupt},
      {"memory_kind 4", [](auto& h) { h.memory_kind = 4; }, Status::kCorrupt},
      {"proto_version 0", [](auto& h) { h.proto_version = 0; }, Status::kCorrupt},
      {"slot_bytes 0", [](auto& h) { h.slot_bytes = 0; }, Status::kCorrupt},
      {"slot_desc_offset", [](auto& h) { h.slot_desc_offset = 320; }, Status::kCorrupt},
      {"sub_slot_offset", [](auto& h) { h.sub_slot_offset += 64; }, Status::kCorrupt},
      {"segment_size > file", [](auto& h) { h.segment_size += 4096; }, Status::kCorrupt},
      {"data_offset misaligned", [](auto& h) { h.data_offset += 64; }, Status::kCorrupt},
      {"data_offset in sub slots", [](auto& h) { h.data_offset = 0; }, Status::kCorrupt},
      {"data_stride < slot_bytes", [](auto& h) { h.slot_bytes = h.data_stride + 1; },
       Status::kCorrupt},
      {"data past end", [](auto& h) { h.data_stride = 8192; }, Status::kCorrupt},
      {"huge stride", [](auto& h) { h.data_stride = ~uint64_t{0}; }, Status::kCorrupt},
      {"stride not 4096-aligned", [](auto& h) { h.data_stride = 2048 + 64; }, Status::kCorrupt},
  };
  for (const Case& c : cases) {
    layout::SegmentHeader h = GoodHeader();
    const uint64_t file_size = h.segment_size;
    c.mutate(h);
    SegmentInfo info{};
    EXPECT_EQ(ValidateHeader(h, file_size, &info), c.want) << c.what;
  }
  layout::SegmentHeader h = GoodHeader(layout::kKindCudaIpc);
  h.data_offset = 4096;
  SegmentInfo info{};
  EXPECT_EQ(ValidateHeader(h, h.segment_size, &info), Status::kCorrupt) << "CUDA data_offset";
}

class SegmentFile : public ::testing::Test {
 protected:
  void SetUp() override { key_ = "seg" + std::to_string(::getpid()); }
  void TearDown() override { ::unlink(SegmentPath(key_).c_str()); }
  std::string key_;
};

TEST_F(SegmentFile, CreateThenAttach) {
  int fd = -1;
  ASSERT_EQ(AcquireKey(key_, 0600, &fd), Status::kOk);
  Mapping m;
  SegmentInfo info{};
  ASSERT_EQ(CreateSegment(fd, HostParams(), &m, &info), Status::kOk);
  EXPECT_EQ(m.header()->state, layout::kSegInit);
  EXPECT_EQ(m.header()->publisher_pid, static_cast<uint64_t>(::getpid()));
  EXPECT_EQ(m.header()->publisher_start_time, ProcStartTime(::getpid()));
  EXPECT_EQ(m.header()->lib_version, LibVersion());
  Mapping sub;
  SegmentInfo sinfo{};
  EXPECT_EQ(AttachSegment(key_, 20, &sub, &sinfo), Status::kTimeout) << "still INIT";
  mem::store_release<uint32_t>(&m.header()->state, layout::kSegReady);
  ASSERT_EQ(AttachSegment(key_, 20, &sub, &sinfo), Status::kOk);
  EXPECT_EQ(sinfo.slot_bytes, 2048u);
  EXPECT_EQ(sinfo.geometry.segment_size, info.geometry.segment_size);
  mem::store_release<uint32_t>(&m.header()->state, layout::kSegClosed);
  EXPECT_EQ(AttachSegment(key_, 20, &sub, &sinfo), Status::kPeerClosed);
  ::close(fd);
}

TEST_F(SegmentFile, AttachErrors) {
  Mapping m;
  SegmentInfo info{};
  EXPECT_EQ(AttachSegment(key_, 10, &m, &info), Status::kNotFound);
  const int fd = ::open(SegmentPath(key_).c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 100), 0);
  EXPECT_EQ(AttachSegment(key_, 10, &m, &info), Status::kCorrupt) << "smaller than a header";
  ASSERT_EQ(::ftruncate(fd, 4096), 0);
  const uint32_t v2 = 2;
  ASSERT_EQ(::pwrite(fd, &v2, 4, 0), 4);
  EXPECT_EQ(AttachSegment(key_, 10, &m, &info), Status::kUnsupportedLayout);
  ::close(fd);
}

}  // namespace
}  // namespace cuframes
