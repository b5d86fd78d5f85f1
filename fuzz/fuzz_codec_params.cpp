// fuzz_codec_params.cpp: libFuzzer target for the codec-parameter block of the packet ring (spec
// 10.5, reference/src/packet_ring.h RingWriter::set_codec_params / RingReader::codec_params).
//
// Input byte 0 picks the mode:
//  - even: hostile block. A valid ring is laid out, then the 4160-byte CodecParams block at ring
//    offset 256 is overwritten with the input (zero-padded); codec_params() must answer exactly
//    as PKT-PARAMS-02/03 say: odd lock -> CORRUPT after a bounded spin; generation 0 ->
//    NO_CODEC_PARAMS; size > 4096 -> CORRUPT; otherwise OK with the block's generation, codec and
//    first `size` data bytes. The reader never writes (PKT-READ-07).
//  - odd: writer sequence. Publications of fuzzer-sized parameters (some above 4096: OVERSIZED,
//    nothing written) interleaved with reads: a read returns exactly the latest publication with
//    generation = the number of successful publications (PKT-PARAMS-01, -04; a codec other than
//    the ring's is refused with INVALID_ARGUMENT, nothing written), and the block's
//    bytes are what 10.5 lays out (even lock, reserved bytes zero).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "cuframes_spec_generated.h"
#include "fuzz_common.h"
#include "packet_ring.h"
#include "status.h"

namespace cuframes::fuzz {
namespace {

namespace sp = cuframes::spec;
namespace CP = cuframes::spec::CodecParams;

constexpr uint64_t kCapacity = 4096;
constexpr uint32_t kMaxPacket = 64;
constexpr uint32_t kRingCodec = 1;  // H264

struct AlignedFree {
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t{64}); }
};

Status Read(ring::RingReader& r, ring::CodecParamsSnapshot& out, const uint8_t* seg, size_t size) {
  Snapshot snap;
  snap.Take(seg, size);
  const uint64_t readings = FastClockReadings();
  Status s;
  {
    FastClockScope fast;
    s = r.codec_params(out);
  }
  // SEQLOCK_SPIN_LIMIT_MS at 10 ms per fast reading: a bounded spin needs ~10 readings.
  FUZZ_CHECK(FastClockReadings() - readings <= 1000, "codec_params() read the clock %llu times",
             static_cast<unsigned long long>(FastClockReadings() - readings));
  FUZZ_CHECK(snap.Unchanged(), "codec_params() wrote to the segment (PKT-READ-07)");
  FUZZ_CHECK(s == Status::kOk || s == Status::kNoCodecParams || s == Status::kCorrupt,
             "codec_params() returned %s", StatusName(s));
  return s;
}

void Run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  Bytes in(data + 1, size - 1);
  const size_t seg_size = ring::RingSegmentSize(kCapacity);
  std::unique_ptr<uint8_t[], AlignedFree> mem(
      static_cast<uint8_t*>(::operator new[](seg_size, std::align_val_t{64})));
  uint8_t* seg = mem.get();
  std::memset(seg, 0, seg_size);
  ring::RingWriter w;
  FUZZ_CHECK(w.init(seg, seg_size, kCapacity, kMaxPacket, kRingCodec) == Status::kOk, "init");
  uint8_t* block = seg + sp::CODEC_PARAMS_OFFSET;
  ring::RingReader r;
  FUZZ_CHECK(r.attach(seg, seg_size) == Status::kOk, "attach");
  ring::CodecParamsSnapshot out;

  if ((data[0] & 1) == 0) {
    const auto bytes = in.Take(sp::CODEC_PARAMS_SIZE);
    std::memcpy(block, bytes.data(), bytes.size());
    const uint64_t lock = LoadLe(block + CP::lock::offset, CP::lock::size);
    const uint32_t generation = static_cast<uint32_t>(LoadLe(block + CP::generation::offset, 4));
    const uint32_t psize = static_cast<uint32_t>(LoadLe(block + CP::size_::offset, 4));
    const uint32_t codec = static_cast<uint32_t>(LoadLe(block + CP::codec::offset, 4));
    const Status s = Read(r, out, seg, seg_size);
    Status want = Status::kOk;
    if (lock & 1) {
      want = Status::kCorrupt;  // a writer that never finishes: bounded spin, then CORRUPT
    } else if (generation == 0) {
      want = Status::kNoCodecParams;
    } else if (psize > sp::CODEC_PARAMS_MAX_BYTES) {
      want = Status::kCorrupt;
    }
    FUZZ_CHECK(s == want, "lock %llu generation %u size %u: codec_params() returned %s, spec %s",
               static_cast<unsigned long long>(lock), generation, psize, StatusName(s),
               StatusName(want));
    if (s == Status::kOk) {
      FUZZ_CHECK(out.generation == generation && out.codec == codec && out.data.size() == psize &&
                     SameBytes(out.data.data(), block + CP::data::offset, psize),
                 "codec_params() returned other values than the block holds");
    }
    return;
  }

  uint32_t published = 0;
  std::vector<uint8_t> last;
  uint32_t last_codec = 0;
  int ops = 0;
  while (!in.empty() && ++ops <= 64) {
    const uint8_t op = in.U8();
    if (op & 1) {
      const Status s = Read(r, out, seg, seg_size);
      if (published == 0) {
        FUZZ_CHECK(s == Status::kNoCodecParams, "before any publication: %s", StatusName(s));
      } else {
        FUZZ_CHECK(s == Status::kOk && out.generation == published && out.codec == last_codec &&
                       out.data.size() == last.size() &&
                       SameBytes(out.data.data(), last.data(), last.size()),
                   "read after %u publications: %s, generation %u, %zu bytes", published,
                   StatusName(s), out.generation, out.data.size());
      }
      continue;
    }
    const uint32_t psize = in.U16() % 4200;
    const uint32_t codec = in.U8() % 4;
    std::vector<uint8_t> bytes(psize);
    FillPayload(op, bytes.data(), psize);
    Snapshot snap;
    snap.Take(seg, seg_size);
    const Status s = w.set_codec_params(codec, bytes.data(), psize);
    if (psize > sp::CODEC_PARAMS_MAX_BYTES) {
      FUZZ_CHECK(s == Status::kOversized, "set_codec_params(%u bytes) returned %s", psize,
                 StatusName(s));
      FUZZ_CHECK(snap.Unchanged(), "an oversized publication wrote to the ring");
      continue;
    }
    if (codec != kRingCodec) {  // PKT-PARAMS-01: codec equal to the ring header's codec
      FUZZ_CHECK(s == Status::kInvalidArgument,
                 "set_codec_params(codec %u) on a codec-%u ring "
                 "returned %s",
                 codec, kRingCodec, StatusName(s));
      FUZZ_CHECK(snap.Unchanged(), "a refused publication wrote to the ring");
      continue;
    }
    FUZZ_CHECK(s == Status::kOk, "set_codec_params(%u bytes) returned %s", psize, StatusName(s));
    ++published;
    last = bytes;
    last_codec = codec;
    // 10.5 layout of the block after a publication.
    FUZZ_CHECK(LoadLe(block + CP::lock::offset, 8) == 2ull * published,
               "lock after %u writes: %llu", published,
               static_cast<unsigned long long>(LoadLe(block + CP::lock::offset, 8)));
    FUZZ_CHECK(LoadLe(block + CP::generation::offset, 4) == published &&
                   LoadLe(block + CP::size_::offset, 4) == psize &&
                   LoadLe(block + CP::codec::offset, 4) == codec &&
                   SameBytes(block + CP::data::offset, bytes.data(), psize),
               "CodecParams block differs from the publication");
    for (size_t i = 0; i < CP::reserved0::size; ++i) {
      FUZZ_CHECK(block[CP::reserved0::offset + i] == 0, "reserved byte %zu nonzero", i);
    }
  }
}

}  // namespace
}  // namespace cuframes::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cuframes::fuzz::Run(data, size);
  return 0;
}
