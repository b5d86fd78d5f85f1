// tlv_test.cc: unit tests of the harness's TLV builder and parser against the twin.
#include "tlv.h"

#include <gtest/gtest.h>

#include "bytes.h"

namespace cuframes::conform {
namespace {

class TlvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    ASSERT_TRUE(spec_.Load(CUFRAMES_CONFORM_SPEC_JSON, &err)) << err;
  }
  Spec spec_;
};

TEST_F(TlvTest, BuildsHelloReqFromTheTwin) {
  MessageBuilder b(spec_, "HELLO_REQ");
  b.Set("magic", spec_.Const("HELLO_MAGIC")).Set("min_proto", 1).Set("max_proto", 2);
  const std::vector<uint8_t> m = b.Encode();
  ASSERT_EQ(m.size(), 8u + 64u);
  EXPECT_EQ(LoadLe(m, 0, 2), 1u);
  EXPECT_EQ(LoadLe(m, 4, 4), 64u);
  EXPECT_EQ(m[8], 0x43);  // 'C' of "CUFR"
  EXPECT_EQ(LoadLe(m, 8 + 6, 2), 2u);
}

TEST_F(TlvTest, ParsesSplitAndCoalescedStreams) {
  MessageBuilder ping(spec_, "PING");
  ping.Set("nonce", 0x0102030405060708ULL);
  std::vector<uint8_t> two = ping.Encode();
  const std::vector<uint8_t> again = ping.Encode();
  two.insert(two.end(), again.begin(), again.end());
  TlvMsg m;
  size_t used = 0;
  EXPECT_EQ(ParseTlv(std::span<const uint8_t>(two).subspan(0, 7), 4096, &m, &used),
            ParseResult::kIncomplete);
  EXPECT_EQ(ParseTlv(std::span<const uint8_t>(two).subspan(0, 15), 4096, &m, &used),
            ParseResult::kIncomplete);
  ASSERT_EQ(ParseTlv(two, 4096, &m, &used), ParseResult::kOk);
  EXPECT_EQ(used, 16u);
  EXPECT_EQ(m.type, 7);
  EXPECT_EQ(LoadLe(m.payload, 0, 8), 0x0102030405060708ULL);
  EXPECT_EQ(CheckWellFormed(spec_, m), "");
}

TEST_F(TlvTest, RejectsOversizedWithoutBuffering) {
  const std::vector<uint8_t> h = EncodeTlv(1, {}, 0, 4097);
  TlvMsg m;
  size_t used = 0;
  EXPECT_EQ(ParseTlv(h, 4096, &m, &used), ParseResult::kTooLarge);
  EXPECT_TRUE(m.payload.empty());
}

TEST_F(TlvTest, WellFormedChecks) {
  TlvMsg m;
  size_t used = 0;
  std::vector<uint8_t> payload(12, 0);
  ASSERT_EQ(ParseTlv(EncodeTlv(3, payload), 4096, &m, &used), ParseResult::kOk);
  EXPECT_NE(CheckWellFormed(spec_, m).find("outside"), std::string::npos);
  std::vector<uint8_t> p8(8, 0);
  ASSERT_EQ(ParseTlv(EncodeTlv(7, p8, 1), 4096, &m, &used), ParseResult::kOk);
  EXPECT_NE(CheckWellFormed(spec_, m).find("reserved"), std::string::npos);
  const std::vector<uint8_t> err = EncodeError(spec_, 9, "bad");
  ASSERT_EQ(ParseTlv(err, 4096, &m, &used), ParseResult::kOk);
  EXPECT_EQ(CheckWellFormed(spec_, m), "");
  EXPECT_EQ(Describe(spec_, m), "ERROR(len=11, code=9 PROTOCOL, text=\"bad\")");
  std::vector<uint8_t> lying = err;
  lying[8 + 4] = 5;  // text_len 5 != 3
  ASSERT_EQ(ParseTlv(lying, 4096, &m, &used), ParseResult::kOk);
  EXPECT_NE(CheckWellFormed(spec_, m).find("text_len"), std::string::npos);
}

TEST_F(TlvTest, StructViewUsesTwinOffsets) {
  std::vector<uint8_t> seg(256, 0);
  StructView h(spec_, "SegmentHeader", seg);
  h.Set("write_seq", 7);
  EXPECT_EQ(LoadLe(seg, 128, 8), 7u);
  h.Set("ack_futex", 3);
  EXPECT_EQ(LoadLe(seg, 192, 4), 3u);
  EXPECT_THROW(h.Get("no_such_field"), std::out_of_range);
  std::vector<uint8_t> tiny(8, 0);
  StructView t(spec_, "SegmentHeader", tiny);
  EXPECT_THROW(t.Get("write_seq"), std::out_of_range);
}

}  // namespace
}  // namespace cuframes::conform
