// payload.h: the deterministic frame, packet and codec-parameter contents of the adapter
// contract (spec/ADAPTER.md, "Deterministic payloads").
//
// Both sides of every scenario compute the same bytes from (seq, index) alone, so the harness can
// verify any frame or packet an IUT delivers, or writes, without a side channel.
#ifndef CUFRAMES_CONFORMANCE_SRC_PAYLOAD_H_
#define CUFRAMES_CONFORMANCE_SRC_PAYLOAD_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cuframes::conform {

// Byte `i` of frame `seq`: (seq * 31 + i * 7) mod 256.
uint8_t FrameByte(uint64_t seq, uint64_t i);

// Fills `out` with frame `seq`'s first out.size() bytes.
void FillFrame(uint64_t seq, std::span<uint8_t> out);

// Returns the FNV-1a-64 checksum of frame `seq` of `size` bytes.
uint64_t FrameChecksum(uint64_t seq, uint64_t size);

// Payload size of packet `seq` for --packet-bytes `max_bytes`: 1 + (seq * 7919) mod max_bytes.
uint32_t PacketSize(uint64_t seq, uint32_t max_bytes);

// Byte `i` of packet `seq`: (seq * 13 + i * 5 + 1) mod 256.
uint8_t PacketByte(uint64_t seq, uint64_t i);

// Returns packet `seq`'s payload for --packet-bytes `max_bytes`.
std::vector<uint8_t> PacketPayload(uint64_t seq, uint32_t max_bytes);

// Returns true when packet `seq` is a keyframe for --gop `gop`: (seq - 1) mod gop == 0.
bool PacketIsKey(uint64_t seq, uint32_t gop);

// The codec parameters published once before packet 1 with codec value `codec`: the ASCII bytes
// "cuframes-params-" followed by the decimal codec value.
std::vector<uint8_t> CodecParamsPayload(uint32_t codec);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_PAYLOAD_H_
