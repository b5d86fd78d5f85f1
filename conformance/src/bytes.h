// bytes.h: little-endian field access over byte spans, hex dumps and FNV-1a checksums.
//
// The harness never casts received bytes to structs (spec TLV-FRAME-04 applies to us too): every
// read goes through these bounds-checked helpers with offsets taken from the twin.
#ifndef CUFRAMES_CONFORMANCE_SRC_BYTES_H_
#define CUFRAMES_CONFORMANCE_SRC_BYTES_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace cuframes::conform {

static_assert(
    std::endian::native == std::endian::little,
    "the harness maps shared memory and reads atomics natively: little-endian hosts only");

// Returns the `width`-byte (1, 2, 4 or 8) little-endian unsigned value at `off`, or 0 when the
// field does not fit inside `bytes` (callers check bounds first when 0 is ambiguous).
uint64_t LoadLe(std::span<const uint8_t> bytes, size_t off, size_t width);

// Stores the low `width` bytes of `value` little-endian at `off`. Returns false (nothing written)
// when the field does not fit inside `bytes`.
bool StoreLe(std::span<uint8_t> bytes, size_t off, uint64_t value, size_t width);

// Returns a classic 16-bytes-per-line hex dump of `bytes` with offsets starting at `base`;
// at most `max_bytes` are shown, followed by a line saying how many were left out.
std::string HexDump(std::span<const uint8_t> bytes, size_t base = 0, size_t max_bytes = 512);

// Returns the bytes as lowercase hex without separators ("0a0b...").
std::string HexString(std::span<const uint8_t> bytes);

// Returns the 64-bit FNV-1a hash of `bytes` (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
uint64_t Fnv1a64(std::span<const uint8_t> bytes);

// Returns `v` as 16 lowercase hex digits, the checksum format of the adapter contract.
std::string Hex64(uint64_t v);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_BYTES_H_
