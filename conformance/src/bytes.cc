#include "bytes.h"

#include <cstdio>

namespace cuframes::conform {

uint64_t LoadLe(std::span<const uint8_t> bytes, size_t off, size_t width) {
  if (width == 0 || width > 8 || off > bytes.size() || bytes.size() - off < width) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < width; ++i)
    v |= uint64_t{bytes[off + i]} << (8 * i);
  return v;
}

bool StoreLe(std::span<uint8_t> bytes, size_t off, uint64_t value, size_t width) {
  if (width == 0 || width > 8 || off > bytes.size() || bytes.size() - off < width) return false;
  for (size_t i = 0; i < width; ++i)
    bytes[off + i] = static_cast<uint8_t>(value >> (8 * i));
  return true;
}

std::string HexDump(std::span<const uint8_t> bytes, size_t base, size_t max_bytes) {
  std::string out;
  const size_t shown = bytes.size() < max_bytes ? bytes.size() : max_bytes;
  char buf[16];
  for (size_t line = 0; line < shown; line += 16) {
    std::snprintf(buf, sizeof buf, "%08zx ", base + line);
    out += buf;
    std::string ascii;
    for (size_t i = 0; i < 16; ++i) {
      if (line + i < shown) {
        const uint8_t b = bytes[line + i];
        std::snprintf(buf, sizeof buf, " %02x", b);
        out += buf;
        ascii += (b >= 0x20 && b < 0x7f) ? static_cast<char>(b) : '.';
      } else {
        out += "   ";
      }
      if (i == 7) out += ' ';
    }
    out += "  |" + ascii + "|\n";
  }
  if (shown < bytes.size()) {
    out += "... " + std::to_string(bytes.size() - shown) + " more bytes\n";
  }
  return out;
}

std::string HexString(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 15];
  }
  return out;
}

uint64_t Fnv1a64(std::span<const uint8_t> bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string Hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace cuframes::conform
