// status.h: the protocol's error codes (spec/cuframes.json "errors") as a C++ enum.
//
// The numeric values are wire values (HELLO_RESP.status, ATTACH_RESP.status, ERROR.code,
// DETACH.reason) and C ABI values (cuframes_status); they never change meaning.
#ifndef CUFRAMES_REFERENCE_SRC_STATUS_H_
#define CUFRAMES_REFERENCE_SRC_STATUS_H_

#include <cstdint>

namespace cuframes {

enum class Status : uint32_t {
  kOk = 0,
  kAgain = 1,
  kTimeout = 2,
  kInvalidArgument = 3,
  kNoMemory = 4,
  kSystem = 5,
  kKeyInUse = 6,
  kNotFound = 7,
  kPeerClosed = 8,
  kProtocol = 9,
  kVersionMismatch = 10,
  kUnsupportedKind = 11,
  kUnsupportedLayout = 12,
  kCorrupt = 13,
  kFull = 14,
  kEvicted = 15,
  kPermission = 16,
  kCuda = 17,
  kMessageTooLarge = 18,
  kUnknownMessage = 19,
  kState = 20,
  kOversized = 21,
  kNoPacketRing = 22,
  kNoCodecParams = 23,
  kPacketOverrun = 24,
  kUnsupported = 25,
};

// Highest defined code; values above it are unknown (a newer peer) and are reported as such.
inline constexpr uint32_t kMaxStatusValue = 25;

// Returns the spec name of `s` ("OK", "PEER_CLOSED", ...) or "UNKNOWN" for an undefined value.
// Never returns null.
const char* StatusName(Status s) noexcept;

// Returns the spec's one-line description of `s`, or "unknown error code" for an undefined
// value. Never returns null.
const char* StatusText(Status s) noexcept;

inline constexpr uint32_t ToWire(Status s) noexcept {
  return static_cast<uint32_t>(s);
}

// Returns the Status for an error code received on the wire (HELLO_RESP/ATTACH_RESP status, ERROR
// code, DETACH reason) where a failure is expected: a code this version does not define, or OK
// where an error must be, is PROTOCOL (spec ERR-02).
inline constexpr Status StatusFromWire(uint32_t code) noexcept {
  return code == 0 || code > kMaxStatusValue ? Status::kProtocol : static_cast<Status>(code);
}

}  // namespace cuframes

#endif  // CUFRAMES_REFERENCE_SRC_STATUS_H_
