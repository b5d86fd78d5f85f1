#include "payload.h"

#include <string>

#include "bytes.h"

namespace cuframes::conform {

uint8_t FrameByte(uint64_t seq, uint64_t i) {
  return static_cast<uint8_t>(seq * 31 + i * 7);
}

void FillFrame(uint64_t seq, std::span<uint8_t> out) {
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = FrameByte(seq, i);
}

uint64_t FrameChecksum(uint64_t seq, uint64_t size) {
  std::vector<uint8_t> buf(size);
  FillFrame(seq, buf);
  return Fnv1a64(buf);
}

uint32_t PacketSize(uint64_t seq, uint32_t max_bytes) {
  if (max_bytes == 0) return 0;
  return static_cast<uint32_t>(1 + (seq * 7919) % max_bytes);
}

uint8_t PacketByte(uint64_t seq, uint64_t i) {
  return static_cast<uint8_t>(seq * 13 + i * 5 + 1);
}

std::vector<uint8_t> PacketPayload(uint64_t seq, uint32_t max_bytes) {
  std::vector<uint8_t> out(PacketSize(seq, max_bytes));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = PacketByte(seq, i);
  return out;
}

bool PacketIsKey(uint64_t seq, uint32_t gop) {
  return gop != 0 && (seq - 1) % gop == 0;
}

std::vector<uint8_t> CodecParamsPayload(uint32_t codec) {
  const std::string s = "cuframes-params-" + std::to_string(codec);
  return std::vector<uint8_t>(s.begin(), s.end());
}

}  // namespace cuframes::conform
