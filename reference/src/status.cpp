// status.cpp: names and texts of the protocol's error codes (spec/cuframes.json "errors").
#include "status.h"

#include <array>

namespace cuframes {
namespace {

struct StatusInfo {
  const char* name;
  const char* text;
};

constexpr std::array<StatusInfo, kMaxStatusValue + 1> kInfo = {{
    {"OK", "success"},
    {"AGAIN", "nothing available yet (non-blocking call)"},
    {"TIMEOUT", "a deadline passed"},
    {"INVALID_ARGUMENT", "an argument is out of range or malformed"},
    {"NO_MEMORY", "an allocation failed"},
    {"SYSTEM", "an operating-system call failed"},
    {"KEY_IN_USE", "a live publisher already owns the key"},
    {"NOT_FOUND", "no publisher is listening on the key"},
    {"PEER_CLOSED", "the peer closed the connection or died"},
    {"PROTOCOL", "a message violated the protocol"},
    {"VERSION_MISMATCH", "no common proto_version"},
    {"UNSUPPORTED_KIND", "no common memory kind"},
    {"UNSUPPORTED_LAYOUT", "a shared header has an unknown layout_version, magic or header_size"},
    {"CORRUPT", "shared memory holds values the spec forbids"},
    {"FULL", "every subscriber slot is taken"},
    {"EVICTED", "the publisher evicted this subscriber"},
    {"PERMISSION", "permission denied (peer credentials, file mode or unlink)"},
    {"CUDA", "a CUDA call failed"},
    {"MESSAGE_TOO_LARGE", "a TLV length above TLV_MAX_PAYLOAD (4096)"},
    {"UNKNOWN_MESSAGE", "a TLV type this version does not define"},
    {"STATE", "the call or message is not allowed in the current state"},
    {"OVERSIZED", "a packet exceeds max_packet_bytes, or codec parameters exceed 4096 bytes"},
    {"NO_PACKET_RING", "the publisher has no packet ring, or proto_version 1 was negotiated"},
    {"NO_CODEC_PARAMS", "no codec parameters have been published"},
    {"PACKET_OVERRUN", "the reader was lapped; it resumes at the latest keyframe"},
    {"UNSUPPORTED", "an optional feature this build or peer does not offer"},
}};

}  // namespace

const char* StatusName(Status s) noexcept {
  const auto v = static_cast<uint32_t>(s);
  return v <= kMaxStatusValue ? kInfo[v].name : "UNKNOWN";
}

const char* StatusText(Status s) noexcept {
  const auto v = static_cast<uint32_t>(s);
  return v <= kMaxStatusValue ? kInfo[v].text : "unknown error code";
}

}  // namespace cuframes
