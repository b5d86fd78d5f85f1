#include "tlv.h"

#include "bytes.h"

namespace cuframes::conform {

std::vector<uint8_t> EncodeTlv(uint16_t type, std::span<const uint8_t> payload, uint16_t reserved,
                               std::optional<uint32_t> length) {
  std::vector<uint8_t> out(8 + payload.size());
  StoreLe(out, 0, type, 2);
  StoreLe(out, 2, reserved, 2);
  StoreLe(out, 4, length.value_or(static_cast<uint32_t>(payload.size())), 4);
  std::copy(payload.begin(), payload.end(), out.begin() + 8);
  return out;
}

MessageBuilder::MessageBuilder(const Spec& spec, std::string_view message, size_t payload_size)
    : spec_(spec) {
  const MessageDef& m = spec.Msg(message);
  payload_struct_ = m.payload;
  type_ = m.type;
  payload_.assign(payload_size ? payload_size : spec.Size(m.payload), 0);
}

MessageBuilder& MessageBuilder::Set(std::string_view field, uint64_t value) {
  StructView(spec_, payload_struct_, payload_).Set(field, value);
  return *this;
}

std::vector<uint8_t> EncodeError(const Spec& spec, uint32_t code, std::string_view text) {
  MessageBuilder b(spec, "ERROR", spec.Size("ErrorMsg") + text.size());
  b.Set("code", code).Set("text_len", text.size());
  std::copy(text.begin(), text.end(), b.payload().begin() + 8);
  return b.Encode();
}

ParseResult ParseTlv(std::span<const uint8_t> in, uint32_t max_payload, TlvMsg* out,
                     size_t* consumed) {
  if (in.size() < 8) return ParseResult::kIncomplete;
  out->type = static_cast<uint16_t>(LoadLe(in, 0, 2));
  out->reserved = static_cast<uint16_t>(LoadLe(in, 2, 2));
  out->length = static_cast<uint32_t>(LoadLe(in, 4, 4));
  if (out->length > max_payload) {
    out->raw.assign(in.begin(), in.begin() + 8);
    out->payload.clear();
    return ParseResult::kTooLarge;
  }
  if (in.size() - 8 < out->length) return ParseResult::kIncomplete;
  out->payload.assign(in.begin() + 8, in.begin() + 8 + out->length);
  out->raw.assign(in.begin(), in.begin() + 8 + out->length);
  *consumed = 8 + size_t{out->length};
  return ParseResult::kOk;
}

std::string CheckWellFormed(const Spec& spec, const TlvMsg& m) {
  const MessageDef* def = spec.MsgByType(m.type);
  if (!def) return "type " + std::to_string(m.type) + " is not a message of the twin";
  if (m.reserved != 0) return "reserved header bytes are nonzero";
  if (m.length < def->min_length || m.length > def->max_length) {
    return def->name + " length " + std::to_string(m.length) + " outside [" +
           std::to_string(def->min_length) + ", " + std::to_string(def->max_length) + "]";
  }
  if (def->name == "ERROR") {
    const uint64_t text_len = LoadLe(m.payload, 4, 4);
    if (m.length != 8 + text_len) {
      return "ERROR length " + std::to_string(m.length) + " != 8 + text_len " +
             std::to_string(text_len);
    }
  }
  return "";
}

std::string Describe(const Spec& spec, const TlvMsg& m) {
  std::string name = spec.MsgName(m.type);
  std::string s = name + "(len=" + std::to_string(m.length);
  if (name == "ERROR" && m.payload.size() >= 8) {
    const uint64_t code = LoadLe(m.payload, 0, 4);
    s += ", code=" + std::to_string(code) + " " + spec.ErrName(code);
    std::string text(m.payload.begin() + 8, m.payload.end());
    if (text.size() > 80) text = text.substr(0, 80) + "...";
    s += ", text=\"" + text + "\"";
  } else if ((name == "HELLO_RESP" || name == "ATTACH_RESP" || name == "DETACH") &&
             m.payload.size() >= 4) {
    const uint64_t code = LoadLe(m.payload, 0, 4);
    s += std::string(name == "DETACH" ? ", reason=" : ", status=") + std::to_string(code) + " " +
         spec.ErrName(code);
  }
  return s + ")";
}

}  // namespace cuframes::conform
