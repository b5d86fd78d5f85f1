// tlv_test: every message round-trips; every malformed header/payload gets its exact code;
// streams reassemble from one-byte pieces.
#include "tlv.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace cuframes::tlv {
namespace {

std::vector<Message> AllMessages() {
  return {
      HelloReq{0x52465543, 1, 2, 0x3, 0x000200, 1},
      HelloResp{0, 2, 1, 7, 42, 0x000200, 1, 1234, 5678},
      AttachReq{7, 42, 1},
      AttachResp{0, 99},
      Detach{15},
      ErrorMsg{9, "bad things"},
      ErrorMsg{2, ""},
      Ping{0x0102030405060708ull},
      Pong{0xfffffffffffffffeull},
  };
}

std::vector<uint8_t> Raw(uint16_t type, uint16_t reserved, uint32_t length,
                         std::vector<uint8_t> payload = {}) {
  // Header bytes written into a vector sized up front: GCC 12 at -O2 misreports inserting into
  // an initializer-list vector as an out-of-bounds memcpy (-Warray-bounds).
  std::vector<uint8_t> v(8 + payload.size());
  const uint8_t header[8] = {
      static_cast<uint8_t>(type),         static_cast<uint8_t>(type >> 8),
      static_cast<uint8_t>(reserved),     static_cast<uint8_t>(reserved >> 8),
      static_cast<uint8_t>(length),       static_cast<uint8_t>(length >> 8),
      static_cast<uint8_t>(length >> 16), static_cast<uint8_t>(length >> 24)};
  std::copy(std::begin(header), std::end(header), v.begin());
  std::copy(payload.begin(), payload.end(), v.begin() + 8);
  return v;
}

bool Same(const Message& a, const Message& b) {
  return Encode(a) == Encode(b);
}

TEST(Tlv, EveryMessageRoundTrips) {
  for (const Message& m : AllMessages()) {
    const std::vector<uint8_t> bytes = Encode(m);
    ASSERT_EQ(bytes.size(), EncodedSize(m));
    Message out;
    size_t consumed = 0;
    ASSERT_EQ(DecodeMessage(bytes, &out, &consumed), Status::kOk) << TypeName(bytes[0]);
    EXPECT_EQ(consumed, bytes.size());
    EXPECT_EQ(out.index(), m.index());
    EXPECT_TRUE(Same(out, m)) << TypeName(bytes[0]);
  }
}

TEST(Tlv, EncodingIsLittleEndianAtSpecOffsets) {
  const std::vector<uint8_t> b = Encode(Message(AttachResp{0x11223344, 0x0102030405060708ull}));
  ASSERT_EQ(b.size(), 8u + 16u);
  EXPECT_EQ(b[0], 4);  // type ATTACH_RESP
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(b[4], 16);  // length
  EXPECT_EQ(b[8], 0x44);
  EXPECT_EQ(b[11], 0x11);
  for (int i = 12; i < 16; ++i)
    EXPECT_EQ(b[i], 0) << "reserved";
  EXPECT_EQ(b[16], 0x08);
  EXPECT_EQ(b[23], 0x01);
}

TEST(Tlv, EncodeIntoTooSmallBufferWritesNothing) {
  uint8_t buf[16] = {};
  EXPECT_EQ(Encode(Message(Ping{1}), std::span<uint8_t>(buf, 15)), 0u);
  for (uint8_t b : buf)
    EXPECT_EQ(b, 0);
  EXPECT_EQ(Encode(Message(Ping{1}), std::span<uint8_t>(buf, 16)), 16u);
}

TEST(Tlv, ErrorTextIsTruncatedToTheMaximum) {
  const std::vector<uint8_t> b = Encode(Message(ErrorMsg{9, std::string(10000, 'x')}));
  EXPECT_EQ(b.size(), kHeaderSize + kMaxPayload);
  Message out;
  size_t consumed = 0;
  ASSERT_EQ(DecodeMessage(b, &out, &consumed), Status::kOk);
  EXPECT_EQ(std::get<ErrorMsg>(out).text.size(), kMaxErrorText);
}

TEST(Tlv, HeaderErrors) {
  Header h{};
  EXPECT_EQ(DecodeHeader(Raw(7, 0, 8), &h), Status::kOk);
  EXPECT_EQ(DecodeHeader(std::vector<uint8_t>{7, 0, 0}, &h), Status::kAgain);
  EXPECT_EQ(DecodeHeader(Raw(1, 0, 4097), &h), Status::kMessageTooLarge);
  EXPECT_EQ(DecodeHeader(Raw(99, 0, 0xffffffff), &h), Status::kMessageTooLarge);
  EXPECT_EQ(DecodeHeader(Raw(0, 0, 8), &h), Status::kUnknownMessage);
  EXPECT_EQ(DecodeHeader(Raw(9, 0, 8), &h), Status::kUnknownMessage);
  EXPECT_EQ(DecodeHeader(Raw(0xffff, 0, 8), &h), Status::kUnknownMessage);
  EXPECT_EQ(DecodeHeader(Raw(7, 1, 8), &h), Status::kProtocol);  // reserved bits
  EXPECT_EQ(DecodeHeader(Raw(7, 0x8000, 8), &h), Status::kProtocol);
  EXPECT_EQ(DecodeHeader(Raw(1, 0, 63), &h), Status::kProtocol);  // HELLO_REQ < 64
  EXPECT_EQ(DecodeHeader(Raw(1, 0, 4096), &h), Status::kOk);      // longer HELLO_REQ: ok
  EXPECT_EQ(DecodeHeader(Raw(2, 0, 0), &h), Status::kProtocol);
  EXPECT_EQ(DecodeHeader(Raw(3, 0, 15), &h), Status::kProtocol);
  EXPECT_EQ(DecodeHeader(Raw(3, 0, 17), &h), Status::kProtocol);  // ATTACH_REQ is exactly 16
  EXPECT_EQ(DecodeHeader(Raw(4, 0, 32), &h), Status::kProtocol);
  EXPECT_EQ(DecodeHeader(Raw(5, 0, 4), &h), Status::kProtocol);
  EXPECT_EQ(DecodeHeader(Raw(6, 0, 7), &h), Status::kProtocol);
  EXPECT_EQ(DecodeHeader(Raw(7, 0, 9), &h), Status::kProtocol);
  EXPECT_EQ(DecodeHeader(Raw(8, 0, 0), &h), Status::kProtocol);
}

TEST(Tlv, PayloadErrors) {
  Message m;
  // ERROR: length must equal 8 + text_len.
  std::vector<uint8_t> err = {9, 0, 0, 0, 5, 0, 0, 0, 'a', 'b', 'c'};
  EXPECT_EQ(DecodePayload(6, err, &m), Status::kProtocol);
  err[4] = 3;
  EXPECT_EQ(DecodePayload(6, err, &m), Status::kOk);
  EXPECT_EQ(std::get<ErrorMsg>(m).text, "abc");
  err[4] = 0xff;
  err[7] = 0xff;  // text_len near 2^32: no overflow
  EXPECT_EQ(DecodePayload(6, err, &m), Status::kProtocol);
  EXPECT_EQ(DecodePayload(3, std::vector<uint8_t>(15), &m), Status::kProtocol);
  EXPECT_EQ(DecodePayload(10, std::vector<uint8_t>(8), &m), Status::kUnknownMessage);
}

TEST(Tlv, LongerHelloReqHasItsTailIgnored) {
  std::vector<uint8_t> b = Encode(Message(HelloReq{0x52465543, 1, 3, 1, 5, 1}));
  b.resize(8 + 200, 0xee);  // a future version's extra fields
  b[4] = 200;
  Message out;
  size_t consumed = 0;
  ASSERT_EQ(DecodeMessage(b, &out, &consumed), Status::kOk);
  EXPECT_EQ(consumed, b.size());
  const auto& h = std::get<HelloReq>(out);
  EXPECT_EQ(h.max_proto, 3);
  EXPECT_EQ(h.caps, 1u);
}

TEST(Tlv, ReservedPayloadBytesAreIgnored) {
  std::vector<uint8_t> b = Encode(Message(AttachReq{1, 2, 1}));
  b[8 + 12] = 0xff;  // AttachReq.reserved0
  Message out;
  size_t consumed = 0;
  ASSERT_EQ(DecodeMessage(b, &out, &consumed), Status::kOk);
  EXPECT_EQ(std::get<AttachReq>(out).flags, 1u);
}

TEST(Tlv, IncompleteMessageIsAgain) {
  const std::vector<uint8_t> b = Encode(Message(Ping{5}));
  Message out;
  size_t consumed = 0;
  for (size_t n = 0; n < b.size(); ++n) {
    EXPECT_EQ(DecodeMessage(std::span<const uint8_t>(b.data(), n), &out, &consumed), Status::kAgain)
        << n;
  }
}

TEST(Reassembler, OneByteAtATime) {
  std::vector<uint8_t> stream;
  const std::vector<Message> msgs = AllMessages();
  for (const Message& m : msgs) {
    const auto b = Encode(m);
    stream.insert(stream.end(), b.begin(), b.end());
  }
  Reassembler r;
  std::vector<Message> got;
  for (uint8_t byte : stream) {
    r.Feed(std::span<const uint8_t>(&byte, 1));
    Message m;
    Status s;
    while ((s = r.Next(&m)) == Status::kOk)
      got.push_back(m);
    ASSERT_EQ(s, Status::kAgain);
  }
  EXPECT_FALSE(r.HasPartial());
  ASSERT_EQ(got.size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i)
    EXPECT_TRUE(Same(got[i], msgs[i])) << i;
}

TEST(Reassembler, FailedOnErrorNamesAFramingErrorInsideAnError) {
  // An ERROR whose text_len disagrees with its length, and one above 4096 bytes: both framing
  // errors of an ERROR, which is never answered (TLV-ERR-06).
  std::vector<uint8_t> bad_len = Encode(Message(ErrorMsg{7, "abc"}));
  bad_len[12] = 4;  // text_len 4, but the payload holds 8 + 3 bytes
  for (const std::vector<uint8_t>& bytes : {bad_len, Raw(6, 0, 4097)}) {
    Reassembler r;
    r.Feed(bytes);
    Message m;
    EXPECT_NE(r.Next(&m), Status::kOk);
    EXPECT_TRUE(r.FailedOnError());
  }
  // A framing error in any other message, or no error at all, is not one.
  Reassembler other;
  other.Feed(Raw(1, 0, 4097));
  Message m;
  EXPECT_EQ(other.Next(&m), Status::kMessageTooLarge);
  EXPECT_FALSE(other.FailedOnError());
  Reassembler fine;
  fine.Feed(Encode(Message(ErrorMsg{7, "abc"})));
  EXPECT_EQ(fine.Next(&m), Status::kOk);
  EXPECT_FALSE(fine.FailedOnError());
}

TEST(Reassembler, ManyMessagesInOneRead) {
  std::vector<uint8_t> stream;
  for (int i = 0; i < 1000; ++i) {
    const auto b = Encode(Message(Ping{static_cast<uint64_t>(i)}));
    stream.insert(stream.end(), b.begin(), b.end());
  }
  Reassembler r;
  r.Feed(stream);
  Message m;
  for (uint64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(r.Next(&m), Status::kOk);
    EXPECT_EQ(std::get<Ping>(m).nonce, i);
  }
  EXPECT_EQ(r.Next(&m), Status::kAgain);
}

TEST(Reassembler, PartialIsReported) {
  const auto b = Encode(Message(Ping{1}));
  Reassembler r;
  r.Feed(std::span<const uint8_t>(b.data(), 3));
  Message m;
  EXPECT_EQ(r.Next(&m), Status::kAgain);
  EXPECT_TRUE(r.HasPartial());
  r.Feed(std::span<const uint8_t>(b.data() + 3, b.size() - 3));
  EXPECT_EQ(r.Next(&m), Status::kOk);
  EXPECT_FALSE(r.HasPartial());
}

TEST(Reassembler, HeaderErrorIsDetectedBeforeThePayloadArrivesAndIsSticky) {
  Reassembler r;
  const auto bad = Raw(1, 0, 100000);
  r.Feed(bad);
  Message m;
  EXPECT_EQ(r.Next(&m), Status::kMessageTooLarge);
  r.Feed(Encode(Message(Ping{1})));
  EXPECT_EQ(r.Next(&m), Status::kMessageTooLarge);
}

TEST(Reassembler, EachMalformedCaseGivesItsCode) {
  struct Case {
    std::vector<uint8_t> bytes;
    Status want;
  };
  const std::vector<Case> cases = {
      {Raw(1, 0, 4097), Status::kMessageTooLarge},
      {Raw(12, 0, 8, std::vector<uint8_t>(8)), Status::kUnknownMessage},
      {Raw(7, 2, 8, std::vector<uint8_t>(8)), Status::kProtocol},
      {Raw(3, 0, 8, std::vector<uint8_t>(8)), Status::kProtocol},
      {Raw(6, 0, 8, {0, 0, 0, 0, 1, 0, 0, 0}), Status::kProtocol},
  };
  for (const Case& c : cases) {
    Reassembler r;
    for (uint8_t byte : c.bytes)
      r.Feed(std::span<const uint8_t>(&byte, 1));
    Message m;
    EXPECT_EQ(r.Next(&m), c.want);
  }
}

}  // namespace
}  // namespace cuframes::tlv
