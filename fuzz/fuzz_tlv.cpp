// fuzz_tlv.cpp: libFuzzer target for the socket codec (spec section 3, reference/src/tlv.h).
//
// Input: byte 0 seeds the chunk sizes, the rest is a byte stream as a peer would send it.
// Checked on every input:
//  - DecodeMessage over the stream never crashes and returns only OK, AGAIN, MESSAGE_TOO_LARGE,
//    UNKNOWN_MESSAGE or PROTOCOL; DecodeHeader agrees with the framing rules derived here from
//    the twin (cuframes_spec_generated.h), never from the reference (TLV-FRAME-03, TLV-ERR-01..03).
//  - every decoded field equals the little-endian value at the twin's offset (TLV-FRAME-04);
//  - a decoded message re-encodes to exactly the received bytes when they are canonical
//    (reserved bytes zero, HELLO_* exactly 64 bytes), and always to bytes that decode to the same
//    message; Encode into a buffer one byte short writes nothing (TLV-FRAME-01);
//  - every strict prefix of a decoded message decodes to AGAIN (sampled);
//  - the Reassembler fed the stream in fuzzer-chosen chunks yields the same messages and the same
//    final status as DecodeMessage, with a sticky error (TLV-FRAME-02).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "cuframes_spec_generated.h"
#include "fuzz_common.h"
#include "status.h"
#include "tlv.h"

namespace cuframes::fuzz {
namespace {

namespace sp = cuframes::spec;
using tlv::Message;

// (field name, value) pairs of a decoded message, named as in the twin.
using FieldList = std::vector<std::pair<std::string_view, uint64_t>>;

FieldList RefFields(const Message& m) {
  return std::visit(
      [](const auto& v) -> FieldList {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, tlv::HelloReq>) {
          return {{"magic", v.magic},
                  {"min_proto", v.min_proto},
                  {"max_proto", v.max_proto},
                  {"kinds_mask", v.kinds_mask},
                  {"lib_version", v.lib_version},
                  {"caps", v.caps}};
        } else if constexpr (std::is_same_v<T, tlv::HelloResp>) {
          return {{"status", v.status},
                  {"proto_version", v.proto_version},
                  {"memory_kind", v.memory_kind},
                  {"subscriber_index", v.subscriber_index},
                  {"generation", v.generation},
                  {"lib_version", v.lib_version},
                  {"caps", v.caps},
                  {"initial_packet_seq", v.initial_packet_seq},
                  {"initial_packet_pos", v.initial_packet_pos}};
        } else if constexpr (std::is_same_v<T, tlv::AttachReq>) {
          return {{"subscriber_index", v.subscriber_index},
                  {"generation", v.generation},
                  {"flags", v.flags}};
        } else if constexpr (std::is_same_v<T, tlv::AttachResp>) {
          return {{"status", v.status}, {"start_seq", v.start_seq}};
        } else if constexpr (std::is_same_v<T, tlv::Detach>) {
          return {{"reason", v.reason}};
        } else if constexpr (std::is_same_v<T, tlv::ErrorMsg>) {
          return {{"code", v.code}, {"text_len", v.text.size()}};
        } else {  // Ping, Pong
          return {{"nonce", v.nonce}};
        }
      },
      m);
}

// The twin's verdict on an 8-byte TLV header: the set of codes the spec allows for it.
struct HeaderVerdict {
  bool ok = true;
  bool too_large = false;  // MESSAGE_TOO_LARGE allowed
  bool unknown = false;    // UNKNOWN_MESSAGE allowed
  bool protocol = false;   // PROTOCOL allowed
};

HeaderVerdict TwinHeaderVerdict(const uint8_t* h) {
  HeaderVerdict v;
  const auto type = static_cast<uint16_t>(LoadLe(h + sp::TlvHeader::type::offset, 2));
  const auto reserved = LoadLe(h + sp::TlvHeader::reserved0::offset, 2);
  const auto length = static_cast<uint32_t>(LoadLe(h + sp::TlvHeader::length::offset, 4));
  const sp::MessageInfo* msg = sp::find_message(type);
  if (length > sp::TLV_MAX_PAYLOAD) v.too_large = true;
  if (msg == nullptr) v.unknown = true;
  if (reserved != 0) v.protocol = true;
  if (msg != nullptr && (length < msg->min_length || length > msg->max_length)) {
    v.protocol = true;
  }
  v.ok = !(v.too_large || v.unknown || v.protocol);
  return v;
}

bool Allowed(const HeaderVerdict& v, Status s) {
  if (v.ok) return s == Status::kOk;
  return (s == Status::kMessageTooLarge && v.too_large) ||
         (s == Status::kUnknownMessage && v.unknown) || (s == Status::kProtocol && v.protocol);
}

// Checks one decoded message against the bytes it came from (header at `wire`, `consumed`
// bytes in all).
void CheckDecoded(const Message& m, const uint8_t* wire, size_t consumed) {
  const uint16_t type = static_cast<uint16_t>(LoadLe(wire, 2));
  const uint32_t length = static_cast<uint32_t>(LoadLe(wire + 4, 4));
  FUZZ_CHECK(consumed == tlv::kHeaderSize + length, "consumed %zu, length %u", consumed, length);
  FUZZ_CHECK(static_cast<uint16_t>(tlv::TypeOf(m)) == type, "decoded type %u from type %u",
             static_cast<unsigned>(tlv::TypeOf(m)), type);
  const sp::MessageInfo* info = sp::find_message(type);
  FUZZ_CHECK(info != nullptr, "decoded a type the twin does not define: %u", type);
  tlv::LengthRange r{};
  FUZZ_CHECK(tlv::LengthRangeOf(type, &r) && r.min == info->min_length && r.max == info->max_length,
             "reference length range of %.*s differs from the twin",
             static_cast<int>(info->name.size()), info->name.data());

  // Every field of the payload struct, read from the wire at the twin's offset.
  const uint8_t* payload = wire + tlv::kHeaderSize;
  const FieldList ref = RefFields(m);
  bool canonical = true;
  for (const sp::FieldInfo& f : sp::kFields) {
    if (f.struct_name != info->payload) continue;
    if (f.type == "reserved") {
      for (size_t i = 0; i < f.size; ++i)
        canonical = canonical && payload[f.offset + i] == 0;
      continue;
    }
    if (f.type != "u16" && f.type != "u32" && f.type != "u64" && f.type != "i64") continue;
    const uint64_t want = LoadLe(payload + f.offset, f.size);
    bool found = false;
    for (const auto& [name, value] : ref) {
      if (name != f.name) continue;
      found = true;
      FUZZ_CHECK(value == want, "%.*s.%.*s decoded as %llu, twin offset %zu holds %llu",
                 static_cast<int>(info->payload.size()), info->payload.data(),
                 static_cast<int>(f.name.size()), f.name.data(),
                 static_cast<unsigned long long>(value), f.offset,
                 static_cast<unsigned long long>(want));
    }
    FUZZ_CHECK(found, "the reference does not decode twin field %.*s.%.*s",
               static_cast<int>(info->payload.size()), info->payload.data(),
               static_cast<int>(f.name.size()), f.name.data());
  }
  if (const auto* e = std::get_if<tlv::ErrorMsg>(&m)) {
    FUZZ_CHECK(e->text.size() + 8 == length, "ERROR text of %zu bytes in a %u-byte payload",
               e->text.size(), length);
    FUZZ_CHECK(std::string_view(e->text) ==
                   std::string_view(reinterpret_cast<const char*>(payload + 8), e->text.size()),
               "ERROR text differs from the wire");
  }
  // Bytes after the struct (HELLO_* longer than 64) are ignored, so only exactly-sized
  // messages can re-encode to the same bytes.
  const sp::StructInfo* st = sp::find_struct(info->payload);
  const bool has_tail = type != static_cast<uint16_t>(sp::MessageType::ERROR) && length != st->size;
  canonical = canonical && !has_tail;

  const std::vector<uint8_t> again = tlv::Encode(m);
  FUZZ_CHECK(again.size() == tlv::EncodedSize(m), "Encode wrote %zu bytes, EncodedSize says %zu",
             again.size(), tlv::EncodedSize(m));
  if (canonical) {
    FUZZ_CHECK(again.size() == consumed && std::equal(again.begin(), again.end(), wire),
               "canonical %.*s does not re-encode to its own bytes",
               static_cast<int>(info->name.size()), info->name.data());
  }
  Message m2;
  size_t c2 = 0;
  const Status s2 = tlv::DecodeMessage(again, &m2, &c2);
  FUZZ_CHECK(s2 == Status::kOk && c2 == again.size(), "re-encoded message decodes to %s",
             StatusName(s2));
  FUZZ_CHECK(tlv::Encode(m2) == again, "decode(encode(m)) differs from m");

  // Encode into a buffer one byte short: returns 0 and writes nothing.
  std::vector<uint8_t> small(again.size() - 1, 0xA5);
  FUZZ_CHECK(tlv::Encode(m, std::span<uint8_t>(small)) == 0, "Encode into a short buffer");
  for (uint8_t b : small)
    FUZZ_CHECK(b == 0xA5, "Encode wrote into a short buffer");
}

struct Outcome {
  std::vector<std::vector<uint8_t>> messages;  // re-encodings, to compare by value
  Status final = Status::kAgain;
};

void Run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  SplitMix rng(data[0]);
  const std::span<const uint8_t> stream(data + 1, size - 1);

  // 1. DecodeMessage from the front, message by message.
  Outcome direct;
  size_t off = 0;
  for (;;) {
    const std::span<const uint8_t> rest = stream.subspan(off);
    if (rest.size() >= tlv::kHeaderSize) {
      tlv::Header h{};
      const Status hs = tlv::DecodeHeader(rest, &h);
      const HeaderVerdict v = TwinHeaderVerdict(rest.data());
      FUZZ_CHECK(
          Allowed(v, hs), "DecodeHeader returned %s for header %02x%02x %02x%02x %02x%02x%02x%02x",
          StatusName(hs), rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6], rest[7]);
    } else {
      tlv::Header h{};
      FUZZ_CHECK(tlv::DecodeHeader(rest, &h) == Status::kAgain, "short header not AGAIN");
    }
    Message m;
    size_t consumed = 0;
    const Status s = tlv::DecodeMessage(rest, &m, &consumed);
    if (s != Status::kOk) {
      FUZZ_CHECK(s == Status::kAgain || s == Status::kMessageTooLarge ||
                     s == Status::kUnknownMessage || s == Status::kProtocol,
                 "DecodeMessage returned %s", StatusName(s));
      if (s == Status::kAgain && rest.size() >= tlv::kHeaderSize) {
        const uint32_t length = static_cast<uint32_t>(LoadLe(rest.data() + 4, 4));
        FUZZ_CHECK(rest.size() < tlv::kHeaderSize + length, "AGAIN with a whole message buffered");
      }
      direct.final = s;
      break;
    }
    FUZZ_CHECK(consumed >= tlv::kHeaderSize && consumed <= rest.size(), "consumed %zu of %zu",
               consumed, rest.size());
    CheckDecoded(m, rest.data(), consumed);
    // Strict prefixes are incomplete, never errors (sampled: three lengths).
    for (int i = 0; i < 3; ++i) {
      const size_t k = static_cast<size_t>(rng.Range(0, consumed - 1));
      Message pm;
      size_t pc = 0;
      const Status ps = tlv::DecodeMessage(rest.first(k), &pm, &pc);
      FUZZ_CHECK(ps == Status::kAgain, "a %zu-byte prefix of a %zu-byte message decodes to %s", k,
                 consumed, StatusName(ps));
    }
    direct.messages.push_back(tlv::Encode(m));
    off += consumed;
  }

  // 2. The Reassembler, fed in chunks chosen by the seed byte.
  Outcome reasm;
  tlv::Reassembler r;
  size_t fed = 0;
  bool done = false;
  while (!done) {
    if (fed < stream.size()) {
      const uint64_t pick = rng.Next() % 8;
      const size_t chunk = pick < 4 ? 1 + pick : pick < 7 ? rng.Range(1, 64) : rng.Range(1, 5000);
      const size_t n = std::min(chunk, stream.size() - fed);
      r.Feed(stream.subspan(fed, n));
      fed += n;
    }
    for (;;) {
      Message m;
      const Status s = r.Next(&m);
      if (s == Status::kOk) {
        reasm.messages.push_back(tlv::Encode(m));
        continue;
      }
      if (s == Status::kAgain) {
        if (fed == stream.size()) {
          reasm.final = s;
          done = true;
        }
        break;
      }
      reasm.final = s;
      Message again;
      FUZZ_CHECK(r.Next(&again) == s, "Reassembler error %s is not sticky", StatusName(s));
      done = true;
      break;
    }
  }
  FUZZ_CHECK(reasm.messages == direct.messages,
             "Reassembler yielded %zu messages, DecodeMessage %zu (or different ones)",
             reasm.messages.size(), direct.messages.size());
  FUZZ_CHECK(reasm.final == direct.final, "Reassembler ended with %s, DecodeMessage with %s",
             StatusName(reasm.final), StatusName(direct.final));
  if (direct.final == Status::kAgain) {
    FUZZ_CHECK(r.HasPartial() == (off < stream.size()), "HasPartial() is %d with %zu bytes left",
               r.HasPartial() ? 1 : 0, stream.size() - off);
  }
}

}  // namespace
}  // namespace cuframes::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cuframes::fuzz::Run(data, size);
  return 0;
}
