// annexb.cc: Annex B splitting and parameter-set extraction (see annexb.h).
#include "annexb.h"

namespace cuframes::video {

namespace {

// Index of the first byte after the next 00 00 01 at or after `from`, or stream.size() if none.
size_t NextStartCodeEnd(std::span<const uint8_t> s, size_t from) {
  for (size_t i = from; i + 3 <= s.size(); ++i) {
    if (s[i] == 0 && s[i + 1] == 0 && s[i + 2] == 1) return i + 3;
  }
  return s.size();
}

unsigned NalType(uint8_t first, Codec codec) {
  return codec == Codec::kH264 ? (first & 0x1fu) : ((first >> 1) & 0x3fu);
}

}  // namespace

std::vector<Nal> SplitAnnexB(std::span<const uint8_t> stream, Codec codec) {
  std::vector<Nal> out;
  size_t begin = NextStartCodeEnd(stream, 0);
  while (begin < stream.size()) {
    const size_t next = NextStartCodeEnd(stream, begin);
    // The NAL ends where the next start code's 00 00 01 begins (or at the end of the stream).
    size_t end = next == stream.size() ? stream.size() : next - 3;
    // Zero bytes before a start code are the leading zero of a 4-byte start code or
    // trailing_zero_8bits; a NAL unit itself never ends with 0x00 (rbsp_trailing_bits).
    while (end > begin && stream[end - 1] == 0)
      --end;
    if (end > begin) {
      out.push_back({stream.subspan(begin, end - begin), NalType(stream[begin], codec)});
    }
    begin = next;
  }
  return out;
}

bool IsParameterSet(unsigned type, Codec codec) {
  if (codec == Codec::kH264) return type == 7 || type == 8 || type == 13 || type == 15;
  return type == 32 || type == 33 || type == 34;
}

std::vector<uint8_t> ParameterSets(std::span<const uint8_t> stream, Codec codec, bool* complete) {
  std::vector<uint8_t> out;
  bool vps = false, sps = false, pps = false;
  for (const Nal& n : SplitAnnexB(stream, codec)) {
    if (!IsParameterSet(n.type, codec)) continue;
    if (codec == Codec::kH264) {
      sps = sps || n.type == 7;
      pps = pps || n.type == 8;
    } else {
      vps = vps || n.type == 32;
      sps = sps || n.type == 33;
      pps = pps || n.type == 34;
    }
    out.insert(out.end(), {0, 0, 0, 1});
    out.insert(out.end(), n.bytes.begin(), n.bytes.end());
  }
  if (complete != nullptr) *complete = sps && pps && (codec == Codec::kH264 || vps);
  return out;
}

}  // namespace cuframes::video
