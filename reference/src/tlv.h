// tlv.h: the socket message codec (spec section 3): TLV framing, the eight messages, and a
// stream reassembler.
//
// Every decoder works on a std::span of received bytes, checks the length before every read and
// returns a Status; received bytes are never cast to structs. Reserved payload bytes are written
// as zero and ignored on read; the reserved bits of the TLV header must be zero.
#ifndef CUFRAMES_REFERENCE_SRC_TLV_H_
#define CUFRAMES_REFERENCE_SRC_TLV_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "status.h"

namespace cuframes::tlv {

inline constexpr size_t kHeaderSize = 8;
inline constexpr uint32_t kMaxPayload = 4096;
inline constexpr size_t kMaxErrorText = kMaxPayload - 8;

enum class MsgType : uint16_t {
  kHelloReq = 1,
  kHelloResp = 2,
  kAttachReq = 3,
  kAttachResp = 4,
  kDetach = 5,
  kError = 6,
  kPing = 7,
  kPong = 8,
};

inline constexpr uint32_t kHelloReqCapWantPackets = 1;
// SHM-WAKE-01 (version 3): this subscriber passes each frame wake-up on, so the publisher may
// wake only two.
inline constexpr uint32_t kHelloReqCapWakeForward = 2;
// SHM-WAKE-01/02: how many waiters a forwarding subscriber, and a publisher whose subscribers all
// forward, wake: two, so that one woken subscriber that dies before it passes the wake-up on
// cannot stop the wave.
inline constexpr int kWakeForwardCount = 2;
inline constexpr uint32_t kHelloRespCapPacketRing = 1;
inline constexpr uint32_t kAttachReqFlagAckEventWritten = 1;

struct Header {
  uint16_t type;
  uint16_t reserved;
  uint32_t length;
};

struct HelloReq {
  uint32_t magic;
  uint16_t min_proto;
  uint16_t max_proto;
  uint32_t kinds_mask;
  uint32_t lib_version;
  uint32_t caps;  // v2
};

struct HelloResp {
  uint32_t status;
  uint16_t proto_version;
  uint16_t memory_kind;
  uint32_t subscriber_index;
  uint32_t generation;
  uint32_t lib_version;
  uint32_t caps;                // v2
  uint64_t initial_packet_seq;  // v2
  uint64_t initial_packet_pos;  // v2
};

struct AttachReq {
  uint32_t subscriber_index;
  uint32_t generation;
  uint32_t flags;
};

struct AttachResp {
  uint32_t status;
  uint64_t start_seq;
};

struct Detach {
  uint32_t reason;
};

struct ErrorMsg {
  uint32_t code;
  std::string text;  // at most kMaxErrorText bytes are sent
};

struct Ping {
  uint64_t nonce;
};

struct Pong {
  uint64_t nonce;
};

using Message =
    std::variant<HelloReq, HelloResp, AttachReq, AttachResp, Detach, ErrorMsg, Ping, Pong>;

struct LengthRange {
  uint32_t min;
  uint32_t max;
};

// Returns the message type of `m`.
MsgType TypeOf(const Message& m);

// Returns the spec name of a message type ("HELLO_REQ", ...) or "UNKNOWN".
const char* TypeName(uint16_t type);

// Returns true and sets *out to the twin's [min_length, max_length] for `type` (1..8); returns
// false for any other type.
bool LengthRangeOf(uint16_t type, LengthRange* out);

// Returns the number of bytes Encode() writes for `m`: 8 + payload length.
size_t EncodedSize(const Message& m);

// Writes the TLV header and payload of `m` to the start of `out`.
// Returns the number of bytes written, or 0 if out.size() < EncodedSize(m) (nothing written).
size_t Encode(const Message& m, std::span<uint8_t> out);

// Returns the encoding of `m` as a new vector (convenience over Encode()).
std::vector<uint8_t> Encode(const Message& m);

// Decodes the 8-byte TLV header at the start of `in`. Checks, in this order:
// Returns kOk (*out filled), kAgain (in.size() < 8), kMessageTooLarge (length > 4096),
// kUnknownMessage (type not 1..8), kProtocol (reserved bits set, or length outside the message's
// [min_length, max_length]).
Status DecodeHeader(std::span<const uint8_t> in, Header* out);

// Decodes the payload of a message of `type`; `payload` is exactly the TLV's length bytes.
// Returns kOk (*out filled), kUnknownMessage (type not 1..8), kProtocol (payload size outside the
// message's length range, or ERROR with length != 8 + text_len).
Status DecodePayload(uint16_t type, std::span<const uint8_t> payload, Message* out);

// Decodes one whole message at the start of `in`.
// Returns kOk (*out filled, *consumed = 8 + length), kAgain (incomplete: more bytes needed), or
// any error of DecodeHeader()/DecodePayload().
Status DecodeMessage(std::span<const uint8_t> in, Message* out, size_t* consumed);

// Reassembles messages from a byte stream that may arrive in arbitrary pieces (one byte at a
// time included). Errors are sticky: after one, Next() keeps returning it.
class Reassembler {
 public:
  // Appends received bytes.
  void Feed(std::span<const uint8_t> bytes);

  // Extracts the next complete message.
  // Returns kOk (*out filled), kAgain (no complete message buffered), or the first decode error
  // (kMessageTooLarge, kUnknownMessage, kProtocol), detected as soon as the header is complete.
  Status Next(Message* out);

  // Returns true if bytes of an incomplete message are buffered (a sender stalled mid-message).
  bool HasPartial() const { return buf_.size() > start_; }

  // True when the message Next() stopped at (after a decode error) says it is an ERROR: a
  // framing error in an ERROR is never answered with ERROR (TLV-ERR-01/03 with TLV-ERR-06).
  bool FailedOnError() const;

 private:
  std::vector<uint8_t> buf_;
  size_t start_ = 0;
  Status error_ = Status::kOk;
};

}  // namespace cuframes::tlv

#endif  // CUFRAMES_REFERENCE_SRC_TLV_H_
