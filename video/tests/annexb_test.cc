// annexb_test: the Annex B splitter and the parameter-set extraction that decides what
// cuframes-video publishes as codec parameters (and when a new generation starts).
#include "annexb.h"

#include <gtest/gtest.h>

#include <vector>

namespace cuframes::video {
namespace {

using Bytes = std::vector<uint8_t>;

TEST(AnnexB, SplitsOnThreeAndFourByteStartCodes) {
  // 4-byte start code, SPS; 3-byte, PPS; 4-byte, IDR slice with a trailing zero byte.
  const Bytes s = {0,    0,    0,    1, 0x67, 0x42, 0x00, 0x1e, 0,    0,    1,   0x68,
                   0xce, 0x38, 0x80, 0, 0,    0,    1,    0x65, 0x88, 0x84, 0x00};
  const auto nals = SplitAnnexB(s, Codec::kH264);
  ASSERT_EQ(nals.size(), 3u);
  EXPECT_EQ(nals[0].type, 7u);
  EXPECT_EQ(Bytes(nals[0].bytes.begin(), nals[0].bytes.end()), (Bytes{0x67, 0x42, 0x00, 0x1e}));
  EXPECT_EQ(nals[1].type, 8u);
  EXPECT_EQ(Bytes(nals[1].bytes.begin(), nals[1].bytes.end()), (Bytes{0x68, 0xce, 0x38, 0x80}));
  EXPECT_EQ(nals[2].type, 5u);
  EXPECT_EQ(nals[2].bytes.size(), 3u);  // the trailing zero is not part of the NAL unit
}

TEST(AnnexB, IgnoresBytesBeforeTheFirstStartCodeAndEmptyUnits) {
  const Bytes s = {0xff, 0xee, 0, 0, 1, 0, 0, 1, 0x09, 0xf0};
  const auto nals = SplitAnnexB(s, Codec::kH264);
  ASSERT_EQ(nals.size(), 1u);
  EXPECT_EQ(nals[0].type, 9u);  // access unit delimiter
  EXPECT_TRUE(SplitAnnexB(Bytes{0x67, 0x42}, Codec::kH264).empty());
}

TEST(AnnexB, H264ParameterSetsKeepOnlySpsPpsWithFourByteStartCodes) {
  // AUD, SPS, SEI, PPS, IDR.
  const Bytes au = {0,    0,    1,    0x09, 0x10, 0, 0,    1,    0x67, 0x64, 0, 0,    1,
                    0x06, 0x05, 0x80, 0,    0,    1, 0x68, 0xeb, 0,    0,    1, 0x65, 0x11};
  bool complete = false;
  EXPECT_EQ(ParameterSets(au, Codec::kH264, &complete),
            (Bytes{0, 0, 0, 1, 0x67, 0x64, 0, 0, 0, 1, 0x68, 0xeb}));
  EXPECT_TRUE(complete);
  // An SPS without a PPS cannot start a decoder.
  ParameterSets(Bytes{0, 0, 1, 0x67, 0x64}, Codec::kH264, &complete);
  EXPECT_FALSE(complete);
  EXPECT_TRUE(ParameterSets(Bytes{0, 0, 1, 0x41, 0x9a}, Codec::kH264, nullptr).empty());
}

TEST(AnnexB, HevcNeedsVpsSpsAndPps) {
  // HEVC NAL header: type in bits 1..6 of the first byte. VPS 32 (0x40), SPS 33 (0x42),
  // PPS 34 (0x44), prefix SEI 39 (0x4e), IDR_W_RADL 19 (0x26).
  const Bytes au = {0,    0,    0,    1,    0x40, 0x01, 0x0c, 0,    0,    0,    1,
                    0x42, 0x01, 0x01, 0,    0,    0,    1,    0x44, 0x01, 0xc1, 0,
                    0,    1,    0x4e, 0x01, 0x05, 0,    0,    1,    0x26, 0x01, 0xaf};
  bool complete = false;
  const Bytes ps = ParameterSets(au, Codec::kHevc, &complete);
  EXPECT_TRUE(complete);
  EXPECT_EQ(ps, (Bytes{0,    0,    0,    1, 0x40, 0x01, 0x0c, 0,    0,    0,   1,
                       0x42, 0x01, 0x01, 0, 0,    0,    1,    0x44, 0x01, 0xc1}));
  const Bytes no_vps = {0, 0, 1, 0x42, 0x01, 0x01, 0, 0, 1, 0x44, 0x01, 0xc1};
  ParameterSets(no_vps, Codec::kHevc, &complete);
  EXPECT_FALSE(complete);
  // The same first byte means another type in H.264: 0x40 is nal_unit_type 0 there.
  EXPECT_FALSE(IsParameterSet(0x40 & 0x1f, Codec::kH264));
}

TEST(AnnexB, DifferentSpsMakesDifferentParameters) {
  // What a resolution switch looks like to the publisher: same PPS, another SPS.
  const Bytes a = {0, 0, 1, 0x67, 0x64, 0x00, 0x0d, 0, 0, 1, 0x68, 0xeb};
  const Bytes b = {0, 0, 1, 0x67, 0x64, 0x00, 0x0c, 0, 0, 1, 0x68, 0xeb};
  EXPECT_NE(ParameterSets(a, Codec::kH264, nullptr), ParameterSets(b, Codec::kH264, nullptr));
  // The start code's length does not matter.
  const Bytes a4 = {0, 0, 0, 1, 0x67, 0x64, 0x00, 0x0d, 0, 0, 0, 1, 0x68, 0xeb};
  EXPECT_EQ(ParameterSets(a, Codec::kH264, nullptr), ParameterSets(a4, Codec::kH264, nullptr));
}

}  // namespace
}  // namespace cuframes::video
