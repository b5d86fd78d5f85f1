// regression_test.cpp: one deterministic test per reference bug that fuzz/ found (ids of
// fuzz/known_bugs.txt; fuzz/README.md has the details and proposed fixes). While a bug's id is
// listed as known, its test checks that the bug still reproduces (and fails, asking for the id to
// be removed, once it is fixed); otherwise it checks the behaviour the spec requires. The
// handshake table deviations B6-B12 are covered by prop_handshake_test's
// HandshakeModel.KnownDeviationsStillDiffer.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "handshake.h"
#include "known_bugs.h"
#include "layout.h"
#include "packet_ring.h"
#include "segment.h"
#include "status.h"
#include "tlv.h"

namespace cuframes::fuzz {
namespace {

// Checks `spec_holds` normally, or that it still fails while `id` is a known bug.
void SpecOrKnownBug(const char* id, bool spec_holds, const std::string& what) {
  if (IsKnownBug(id)) {
    EXPECT_FALSE(spec_holds) << id << " no longer reproduces (" << what
                             << "): it looks fixed; remove it from fuzz/known_bugs.txt";
  } else {
    EXPECT_TRUE(spec_holds) << id << ": " << what;
  }
}

tlv::HelloResp Resp(uint32_t status, uint16_t version, uint16_t kind) {
  tlv::HelloResp r{};
  r.status = status;
  r.proto_version = version;
  r.memory_kind = kind;
  return r;
}

// ERR-02: a HELLO_RESP.status the subscriber does not know is treated as PROTOCOL.
TEST(Regression, B1_UnknownHelloRespStatusIsProtocol) {
  const Status s = handshake::CheckHelloResp(Resp(200, 2, 1), 2, 1);
  SpecOrKnownBug("B1", s == Status::kProtocol,
                 std::string("CheckHelloResp(status 200) = ") + StatusName(s));
}

// MSG-HRESP-05: a proto_version outside [min, max] is VERSION_MISMATCH; a kind not offered is
// UNSUPPORTED_KIND.
TEST(Regression, B2_HelloRespRefusalCodes) {
  const Status v0 = handshake::CheckHelloResp(Resp(0, 0, 1), 2, 1);
  const Status v3 = handshake::CheckHelloResp(Resp(0, 3, 1), 2, 1);
  const Status kind = handshake::CheckHelloResp(Resp(0, 2, 2), 2, 1);
  SpecOrKnownBug("B2",
                 v0 == Status::kVersionMismatch && v3 == Status::kVersionMismatch &&
                     kind == Status::kUnsupportedKind,
                 std::string("version 0: ") + StatusName(v0) + ", version 3: " + StatusName(v3) +
                     ", kind 2 not offered: " + StatusName(kind));
}

layout::SegmentHeader HostHeader(uint64_t* file_size) {
  const layout::Geometry g = layout::ComputeGeometry(layout::kKindHost, 2, 1, 64);
  layout::SegmentHeader h{};
  h.layout_version = 1;
  h.magic = layout::kSegmentMagic;
  h.state = layout::kSegReady;
  h.header_size = 256;
  h.proto_version = 2;
  h.memory_kind = layout::kKindHost;
  h.slot_count = 2;
  h.max_subscribers = 1;
  h.slot_bytes = 64;
  h.slot_desc_offset = g.slot_desc_offset;
  h.sub_slot_offset = g.sub_slot_offset;
  h.data_offset = g.data_offset;
  h.data_stride = g.data_stride;
  h.segment_size = g.segment_size;
  *file_size = g.segment_size;
  return h;
}

// SHM-VALID-01: segment_size equal to the file size (found accepting a smaller one; fixed).
TEST(Regression, B3_SegmentSizeBelowFileSizeIsCorrupt) {
  uint64_t file_size = 0;
  const layout::SegmentHeader h = HostHeader(&file_size);
  SegmentInfo info{};
  EXPECT_EQ(ValidateHeader(h, file_size, &info), Status::kOk);
  EXPECT_EQ(ValidateHeader(h, file_size + 4096, &info), Status::kCorrupt);
}

// SHM-VALID-01: a HOST data_stride is a multiple of 4096 (found accepting others; fixed).
TEST(Regression, B4_DataStrideNotMultipleOf4096IsCorrupt) {
  uint64_t file_size = 0;
  layout::SegmentHeader h = HostHeader(&file_size);
  h.data_stride = 64 * 3;
  h.segment_size = h.data_offset + 2 * h.data_stride;
  SegmentInfo info{};
  EXPECT_EQ(ValidateHeader(h, h.segment_size, &info), Status::kCorrupt);
}

// MSG-HELLO-04: min_proto = 0 is answered with VERSION_MISMATCH.
TEST(Regression, B5_MinProtoZeroIsVersionMismatch) {
  tlv::HelloReq req{};
  req.magic = layout::kHelloMagic;
  req.min_proto = 0;
  req.max_proto = 2;
  req.kinds_mask = 1;
  const handshake::HelloPolicy policy{2, layout::kKindHost, true, true};
  const handshake::HelloVerdict v = handshake::EvaluateHello(req, policy);
  SpecOrKnownBug("B5", v.status == Status::kVersionMismatch,
                 std::string("EvaluateHello(min_proto 0) = ") + StatusName(v.status));
}

// PKT-READ-02/04/05: a lapped reader whose position now lies inside a newer record's payload
// must report PACKET_OVERRUN. An honest writer and ordinary payload bytes suffice: the last
// payload byte of the lap's first record lands on the old lock of packet 2 and equals 2 * 2,
// the next 7 bytes are still the old lock's (zero) high bytes, so the reader sees lock == 2n,
// trusts the old header behind it and copies bytes that the next record has overwritten.
TEST(Regression, B13_LappedReaderNeverTrustsALockInsideAnotherRecord) {
  constexpr uint64_t kCap = 4096;
  const size_t size = ring::RingSegmentSize(kCap);
  struct AlignedFree {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<uint8_t[], AlignedFree> holder(
      static_cast<uint8_t*>(::operator new[](size, std::align_val_t{64})));
  uint8_t* mem = holder.get();
  ring::RingWriter w;
  ASSERT_EQ(w.init(mem, size, kCap, 1000, 0), Status::kOk);
  ring::RingReader r;
  ASSERT_EQ(r.attach(mem, size), Status::kOk);
  std::vector<uint8_t> payload(100, 0x11);
  ASSERT_EQ(w.publish(payload.data(), 100, ring::kPacketKeyframe, 1), Status::kOk);  // #1 at 0
  ring::Packet p;
  ASSERT_EQ(r.next(p, 0), Status::kOk);
  ASSERT_EQ(p.seq, 1u);
  ASSERT_EQ(r.cursor().pos, 160u);
  const std::vector<uint8_t> second(100, 0x22);
  ASSERT_EQ(w.publish(second.data(), 100, 0, 2), Status::kOk);  // #2 at 160, not read yet
  for (int n = 3; n <= 25; ++n) {                               // #3..#25 fill the lap up to 4000
    ASSERT_EQ(w.publish(payload.data(), 100, 0, n), Status::kOk);
  }
  // #26 goes to the next lap at data offset 0 (after a PAD): 129 payload bytes end at offset
  // 160, where packet 2's lock was; its last byte is 4 = 2 * 2.
  std::vector<uint8_t> crafted(129, 0x33);
  crafted.back() = 4;
  ASSERT_EQ(w.publish(crafted.data(), 129, 0, 26), Status::kOk);
  // #27 at offset 192 overwrites what was packet 2's payload.
  std::vector<uint8_t> third(100, 0x44);
  ASSERT_EQ(w.publish(third.data(), 100, 0, 27), Status::kOk);
  const auto* h = reinterpret_cast<const ring::PacketRingHeader*>(mem);
  ASSERT_GT(h->tail_pos, 160u) << "packet 2's record must have been dropped";

  const Status s = r.next(p, 0);
  const bool torn = s == Status::kOk && p.seq == 2 &&
                    std::memcmp(p.data.data(), second.data(), p.data.size()) != 0;
  SpecOrKnownBug("B13", s == Status::kPacketOverrun,
                 std::string("next() at a dropped record returned ") + StatusName(s) +
                     (torn ? ": packet 2 delivered with another record's bytes" : ""));
  if (IsKnownBug("B13")) {
    EXPECT_TRUE(torn) << "B13 should reproduce as a torn packet 2";
  }
}

}  // namespace
}  // namespace cuframes::fuzz
