// tlv.h: the harness's own TLV codec (spec section 3.1), driven by the twin.
//
// The builder writes well-formed messages field by field, and lets hostile cases break any byte
// afterwards (length, reserved header bytes, type). The parser splits a received byte stream
// into messages without trusting it: it never allocates more than the cap it is given.
#ifndef CUFRAMES_CONFORMANCE_SRC_TLV_H_
#define CUFRAMES_CONFORMANCE_SRC_TLV_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "spec_model.h"

namespace cuframes::conform {

struct TlvMsg {
  uint16_t type = 0;
  uint16_t reserved = 0;  // header bytes 2..3
  uint32_t length = 0;
  std::vector<uint8_t> payload;
  std::vector<uint8_t> raw;  // header + payload as received, for evidence
};

// Returns an 8-byte header (type, reserved, length) followed by `payload`. `length` defaults to
// payload.size(); pass another value to lie about it.
std::vector<uint8_t> EncodeTlv(uint16_t type, std::span<const uint8_t> payload,
                               uint16_t reserved = 0, std::optional<uint32_t> length = {});

// Builds one message of the twin by name, payload sized by its struct (or `payload_size`).
class MessageBuilder {
 public:
  MessageBuilder(const Spec& spec, std::string_view message, size_t payload_size = 0);
  // Sets a payload field by twin name. Returns *this.
  MessageBuilder& Set(std::string_view field, uint64_t value);
  std::vector<uint8_t>& payload() { return payload_; }
  uint16_t type() const { return type_; }
  // Returns header + payload.
  std::vector<uint8_t> Encode() const { return EncodeTlv(type_, payload_); }

 private:
  const Spec& spec_;
  std::string payload_struct_;
  uint16_t type_;
  std::vector<uint8_t> payload_;
};

// Returns a complete ERROR message with `code` and `text` (length = 8 + text size).
std::vector<uint8_t> EncodeError(const Spec& spec, uint32_t code, std::string_view text);

enum class ParseResult { kOk, kIncomplete, kTooLarge };

// Splits the first message off `in`. Returns kOk (*out filled, *consumed = 8 + length),
// kIncomplete (more bytes needed), or kTooLarge (header length > max_payload; *out holds the
// header only, nothing else is buffered).
ParseResult ParseTlv(std::span<const uint8_t> in, uint32_t max_payload, TlvMsg* out,
                     size_t* consumed);

// Returns "" when `m` is a well-formed message of the twin as a peer must send it
// (TLV-FRAME-01, the length range of 3.1, ERROR length = 8 + text_len), else what is wrong.
std::string CheckWellFormed(const Spec& spec, const TlvMsg& m);

// Returns a one-line description, e.g. "ERROR(code=9 PROTOCOL, text=\"...\")".
std::string Describe(const Spec& spec, const TlvMsg& m);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_TLV_H_
