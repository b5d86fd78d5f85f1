// bytes_test.cc: unit tests of the little-endian helpers, hex dump, checksums and the contract's
// deterministic payloads.
#include "bytes.h"

#include <gtest/gtest.h>

#include <vector>

#include "payload.h"

namespace cuframes::conform {
namespace {

TEST(Bytes, LoadStoreLittleEndian) {
  std::vector<uint8_t> b(8, 0);
  ASSERT_TRUE(StoreLe(b, 2, 0x11223344, 4));
  EXPECT_EQ(b[2], 0x44);
  EXPECT_EQ(b[5], 0x11);
  EXPECT_EQ(LoadLe(b, 2, 4), 0x11223344u);
  EXPECT_FALSE(StoreLe(b, 6, 1, 4));  // does not fit
  EXPECT_EQ(LoadLe(b, 6, 4), 0u);
}

TEST(Bytes, HexDumpFormat) {
  std::vector<uint8_t> b = {'C', 'U', 'F', 'R', 0x01, 0x00};
  EXPECT_EQ(HexDump(b, 0x40),
            "00000040  43 55 46 52 01 00                                 |CUFR..|\n");
  std::vector<uint8_t> big(40, 0xab);
  const std::string d = HexDump(big, 0, 16);
  EXPECT_NE(d.find("... 24 more bytes"), std::string::npos);
}

TEST(Bytes, Fnv1a64KnownValues) {
  EXPECT_EQ(Fnv1a64({}), 0xcbf29ce484222325ULL);
  const std::vector<uint8_t> a = {'a'};
  EXPECT_EQ(Fnv1a64(a), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Hex64(0xab), "00000000000000ab");
}

TEST(Payload, MatchesTheContract) {
  EXPECT_EQ(FrameByte(1, 0), 31);
  EXPECT_EQ(FrameByte(2, 3), (2 * 31 + 3 * 7) & 0xff);
  EXPECT_EQ(PacketByte(3, 4), (3 * 13 + 4 * 5 + 1) & 0xff);
  EXPECT_EQ(PacketSize(1, 1000), 1 + 7919 % 1000);
  EXPECT_TRUE(PacketIsKey(1, 8));
  EXPECT_TRUE(PacketIsKey(9, 8));
  EXPECT_FALSE(PacketIsKey(8, 8));
  const std::vector<uint8_t> p = CodecParamsPayload(1);
  EXPECT_EQ(std::string(p.begin(), p.end()), "cuframes-params-1");
}

}  // namespace
}  // namespace cuframes::conform
