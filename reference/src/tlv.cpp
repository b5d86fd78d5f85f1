// tlv.cpp: encoders and decoders of the socket messages (spec section 3).
#include "tlv.h"

#include <algorithm>
#include <cstring>

namespace cuframes::tlv {
namespace {

// Little-endian field access at explicit offsets; callers check bounds first.
void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t Get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t Get32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

constexpr LengthRange kRanges[9] = {
    {0, 0},             // unused
    {64, kMaxPayload},  // HELLO_REQ
    {64, kMaxPayload},  // HELLO_RESP
    {16, 16},           // ATTACH_REQ
    {16, 16},           // ATTACH_RESP
    {8, 8},             // DETACH
    {8, kMaxPayload},   // ERROR
    {8, 8},             // PING
    {8, 8},             // PONG
};

size_t PayloadSize(const Message& m) {
  switch (TypeOf(m)) {
    case MsgType::kHelloReq:
    case MsgType::kHelloResp:
      return 64;
    case MsgType::kAttachReq:
    case MsgType::kAttachResp:
      return 16;
    case MsgType::kError:
      return 8 + std::min(std::get<ErrorMsg>(m).text.size(), kMaxErrorText);
    default:
      return 8;
  }
}

// Writes the payload of `m` to `p` (PayloadSize(m) bytes, already zeroed).
void WritePayload(const Message& m, uint8_t* p) {
  switch (TypeOf(m)) {
    case MsgType::kHelloReq: {
      const auto& v = std::get<HelloReq>(m);
      Put32(p + 0, v.magic);
      Put16(p + 4, v.min_proto);
      Put16(p + 6, v.max_proto);
      Put32(p + 8, v.kinds_mask);
      Put32(p + 12, v.lib_version);
      Put32(p + 16, v.caps);
      return;
    }
    case MsgType::kHelloResp: {
      const auto& v = std::get<HelloResp>(m);
      Put32(p + 0, v.status);
      Put16(p + 4, v.proto_version);
      Put16(p + 6, v.memory_kind);
      Put32(p + 8, v.subscriber_index);
      Put32(p + 12, v.generation);
      Put32(p + 16, v.lib_version);
      Put32(p + 20, v.caps);
      Put64(p + 24, v.initial_packet_seq);
      Put64(p + 32, v.initial_packet_pos);
      return;
    }
    case MsgType::kAttachReq: {
      const auto& v = std::get<AttachReq>(m);
      Put32(p + 0, v.subscriber_index);
      Put32(p + 4, v.generation);
      Put32(p + 8, v.flags);
      return;
    }
    case MsgType::kAttachResp: {
      const auto& v = std::get<AttachResp>(m);
      Put32(p + 0, v.status);
      Put64(p + 8, v.start_seq);
      return;
    }
    case MsgType::kDetach:
      Put32(p + 0, std::get<Detach>(m).reason);
      return;
    case MsgType::kError: {
      const auto& v = std::get<ErrorMsg>(m);
      const size_t n = std::min(v.text.size(), kMaxErrorText);
      Put32(p + 0, v.code);
      Put32(p + 4, static_cast<uint32_t>(n));
      if (n > 0) std::memcpy(p + 8, v.text.data(), n);
      return;
    }
    case MsgType::kPing:
      Put64(p + 0, std::get<Ping>(m).nonce);
      return;
    case MsgType::kPong:
      Put64(p + 0, std::get<Pong>(m).nonce);
      return;
  }
}

}  // namespace

MsgType TypeOf(const Message& m) {
  return static_cast<MsgType>(m.index() + 1);
}

const char* TypeName(uint16_t type) {
  static constexpr const char* kNames[9] = {"UNKNOWN",    "HELLO_REQ",   "HELLO_RESP",
                                            "ATTACH_REQ", "ATTACH_RESP", "DETACH",
                                            "ERROR",      "PING",        "PONG"};
  return type >= 1 && type <= 8 ? kNames[type] : kNames[0];
}

bool LengthRangeOf(uint16_t type, LengthRange* out) {
  if (type < 1 || type > 8) return false;
  *out = kRanges[type];
  return true;
}

size_t EncodedSize(const Message& m) {
  return kHeaderSize + PayloadSize(m);
}

size_t Encode(const Message& m, std::span<uint8_t> out) {
  const size_t payload = PayloadSize(m);
  if (out.size() < kHeaderSize + payload) return 0;
  std::memset(out.data(), 0, kHeaderSize + payload);
  Put16(out.data(), static_cast<uint16_t>(TypeOf(m)));
  Put16(out.data() + 2, 0);
  Put32(out.data() + 4, static_cast<uint32_t>(payload));
  WritePayload(m, out.data() + kHeaderSize);
  return kHeaderSize + payload;
}

std::vector<uint8_t> Encode(const Message& m) {
  std::vector<uint8_t> v(EncodedSize(m));
  Encode(m, std::span<uint8_t>(v));
  return v;
}

Status DecodeHeader(std::span<const uint8_t> in, Header* out) {
  if (in.size() < kHeaderSize) return Status::kAgain;
  Header h{Get16(in.data()), Get16(in.data() + 2), Get32(in.data() + 4)};
  if (h.length > kMaxPayload) return Status::kMessageTooLarge;
  LengthRange r{};
  if (!LengthRangeOf(h.type, &r)) return Status::kUnknownMessage;
  if (h.reserved != 0) return Status::kProtocol;
  if (h.length < r.min || h.length > r.max) return Status::kProtocol;
  *out = h;
  return Status::kOk;
}

Status DecodePayload(uint16_t type, std::span<const uint8_t> payload, Message* out) {
  LengthRange r{};
  if (!LengthRangeOf(type, &r)) return Status::kUnknownMessage;
  if (payload.size() < r.min || payload.size() > r.max) return Status::kProtocol;
  const uint8_t* p = payload.data();
  switch (static_cast<MsgType>(type)) {
    case MsgType::kHelloReq:  // a longer payload (a future version) has its tail ignored
      *out = HelloReq{Get32(p),     Get16(p + 4),  Get16(p + 6),
                      Get32(p + 8), Get32(p + 12), Get32(p + 16)};
      return Status::kOk;
    case MsgType::kHelloResp:
      *out = HelloResp{Get32(p),      Get16(p + 4),  Get16(p + 6),  Get32(p + 8), Get32(p + 12),
                       Get32(p + 16), Get32(p + 20), Get64(p + 24), Get64(p + 32)};
      return Status::kOk;
    case MsgType::kAttachReq:
      *out = AttachReq{Get32(p), Get32(p + 4), Get32(p + 8)};
      return Status::kOk;
    case MsgType::kAttachResp:
      *out = AttachResp{Get32(p), Get64(p + 8)};
      return Status::kOk;
    case MsgType::kDetach:
      *out = Detach{Get32(p)};
      return Status::kOk;
    case MsgType::kError: {
      const uint32_t text_len = Get32(p + 4);
      if (uint64_t{text_len} + 8 != payload.size()) return Status::kProtocol;
      *out = ErrorMsg{Get32(p), std::string(reinterpret_cast<const char*>(p + 8), text_len)};
      return Status::kOk;
    }
    case MsgType::kPing:
      *out = Ping{Get64(p)};
      return Status::kOk;
    case MsgType::kPong:
      *out = Pong{Get64(p)};
      return Status::kOk;
  }
  return Status::kUnknownMessage;
}

Status DecodeMessage(std::span<const uint8_t> in, Message* out, size_t* consumed) {
  Header h{};
  const Status hs = DecodeHeader(in, &h);
  if (hs != Status::kOk) return hs;
  if (in.size() - kHeaderSize < h.length) return Status::kAgain;
  const Status ps = DecodePayload(h.type, in.subspan(kHeaderSize, h.length), out);
  if (ps != Status::kOk) return ps;
  *consumed = kHeaderSize + h.length;
  return Status::kOk;
}

void Reassembler::Feed(std::span<const uint8_t> bytes) {
  if (error_ != Status::kOk) return;
  if (start_ > 0 && start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  } else if (start_ > kMaxPayload) {
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
}

Status Reassembler::Next(Message* out) {
  if (error_ != Status::kOk) return error_;
  size_t consumed = 0;
  const auto pending = std::span<const uint8_t>(buf_).subspan(start_);
  const Status s = DecodeMessage(pending, out, &consumed);
  if (s == Status::kAgain) return s;
  if (s != Status::kOk) {
    error_ = s;
    return s;
  }
  start_ += consumed;
  return Status::kOk;
}

bool Reassembler::FailedOnError() const {
  // Next() leaves start_ at the message it failed on; its type is the header's first 2 bytes.
  return error_ != Status::kOk && buf_.size() - start_ >= 2 &&
         Get16(buf_.data() + start_) == static_cast<uint16_t>(MsgType::kError);
}

}  // namespace cuframes::tlv
