// annexb.h: H.264/HEVC Annex B byte-stream helpers for cuframes-video: splitting an access unit
// into NAL units, picking out the parameter sets (SPS/PPS, and VPS for HEVC) and serialising them
// in the form the packet ring's codec parameters carry (PROTOCOL.md 10.5).
//
// The codec parameters cuframes-video publishes are the parameter-set NAL units only, each
// prefixed with the 4-byte start code 00 00 00 01, in the order they appear in the stream (VPS,
// SPS, PPS for HEVC; SPS, [SPS extension, subset SPS,] PPS for H.264). SEI and every other NAL
// type stay in the packets.
#ifndef CUFRAMES_VIDEO_ANNEXB_H_
#define CUFRAMES_VIDEO_ANNEXB_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cuframes::video {

enum class Codec { kH264, kHevc };

// One NAL unit inside a byte stream: its bytes without the start code and without trailing
// zero bytes (which belong to the next start code or are trailing_zero_8bits).
struct Nal {
  std::span<const uint8_t> bytes;
  unsigned type = 0;  // nal_unit_type
};

// Splits an Annex B byte stream into NAL units. Bytes before the first start code are ignored
// (a stream that does not begin with a start code yields the NAL units after the first one).
// Returns the NAL units in order; empty NAL units (two adjacent start codes) are left out.
std::vector<Nal> SplitAnnexB(std::span<const uint8_t> stream, Codec codec);

// Returns true for the NAL types that are parameter sets: H.264 SPS (7), PPS (8), SPS extension
// (13), subset SPS (15); HEVC VPS (32), SPS (33), PPS (34).
bool IsParameterSet(unsigned type, Codec codec);

// The parameter-set NAL units of an Annex B byte stream (extradata already in Annex B form, or a
// keyframe access unit), serialised with 4-byte start codes in stream order. Returns an empty
// vector when there are none. *complete (may be null) is set to whether the set is enough to
// start decoding: H.264 at least one SPS and one PPS, HEVC at least one VPS, SPS and PPS.
std::vector<uint8_t> ParameterSets(std::span<const uint8_t> stream, Codec codec, bool* complete);

}  // namespace cuframes::video

#endif  // CUFRAMES_VIDEO_ANNEXB_H_
