// layout_test: segment geometry (spec 2.1). Every offsetof/sizeof is a static_assert in layout.h,
// and tests/check_layout_against_twin.py holds them against spec/cuframes.json; if one of those
// fails, a layout changed: bump layout_version.
#include "layout.h"

#include <gtest/gtest.h>

namespace cuframes::layout {
namespace {

TEST(Layout, SizesAreTheSpecsGolden) {
  // Golden values: changing any of them is a breaking change and needs a new layout_version.
  EXPECT_EQ(sizeof(SegmentHeader), 256u);
  EXPECT_EQ(sizeof(FrameMeta), 64u);
  EXPECT_EQ(sizeof(SlotDescriptor), 192u);
  EXPECT_EQ(sizeof(SubscriberSlot), 128u);
  EXPECT_EQ(offsetof(SegmentHeader, ack_futex) / 64, 3u) << "subscriber-written line";
  EXPECT_EQ(offsetof(SegmentHeader, write_seq) / 64, 2u) << "publisher-written line";
}

TEST(Layout, HostGeometry) {
  const Geometry g = ComputeGeometry(kKindHost, 4, 8, 10000);
  EXPECT_EQ(g.slot_desc_offset, 256u);
  EXPECT_EQ(g.sub_slot_offset, 256u + 4 * 192);
  EXPECT_EQ(g.data_offset, 4096u);  // 256 + 768 + 1024 = 2048 -> 4096
  EXPECT_EQ(g.data_stride, 12288u);
  EXPECT_EQ(g.segment_size, 4096u + 4 * 12288);
}

TEST(Layout, HostGeometryLargest) {
  const Geometry g = ComputeGeometry(kKindHost, 256, 64, 4096);
  EXPECT_EQ(g.sub_slot_offset, 256u + 256 * 192);
  EXPECT_EQ(g.data_offset, AlignUp(256u + 256 * 192 + 64 * 128, 4096));
  EXPECT_EQ(g.data_offset % 4096, 0u);
  EXPECT_EQ(g.data_stride, 4096u);
}

TEST(Layout, CudaGeometryHasNoDataArea) {
  const Geometry g = ComputeGeometry(kKindCudaIpc, 3, 2, 1 << 20);
  EXPECT_EQ(g.data_offset, 0u);
  EXPECT_EQ(g.data_stride, 0u);
  EXPECT_EQ(g.segment_size, 256u + 3 * 192 + 2 * 128);
}

TEST(Layout, KindBits) {
  EXPECT_EQ(KindBit(kKindHost), 1u);
  EXPECT_EQ(KindBit(kKindCudaIpc), 2u);
  EXPECT_EQ(KindBit(kKindCudaVmmFd), 4u);
  EXPECT_EQ(KindBit(0), 0u);
}

}  // namespace
}  // namespace cuframes::layout
