// prop_tlv_test.cpp: RapidCheck properties of the socket codec (spec section 3,
// reference/src/tlv.h), for every message type with arbitrary field values:
//  - Encode then DecodeMessage gives back the same message, every reserved byte named by the twin
//    is zero on the wire, and the header carries the twin's type and length (TLV-FRAME-01,
//    VER-RSV-01);
//  - every strict prefix of an encoded message decodes to AGAIN (TLV-FRAME-02);
//  - any split of a stream of valid messages fed through the Reassembler yields the same messages
//    in order, then AGAIN with nothing partial (TLV-FRAME-02);
//  - a stream with a malformed message delivers the messages before it, then a sticky error.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "cuframes_spec_generated.h"
#include "fuzz_common.h"
#include "prop_common.h"
#include "status.h"
#include "tlv.h"

namespace cuframes::fuzz {
namespace {

namespace sp = cuframes::spec;

// A message with a printer, so that RapidCheck shows shrunk counterexamples readably.
struct Msg {
  tlv::Message m;
};

void showValue(const Msg& v, std::ostream& os) {
  os << tlv::TypeName(static_cast<uint16_t>(tlv::TypeOf(v.m))) << "{";
  std::visit(
      [&os](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, tlv::HelloReq>) {
          os << "magic=" << x.magic << " min=" << x.min_proto << " max=" << x.max_proto
             << " kinds=" << x.kinds_mask << " lib=" << x.lib_version << " caps=" << x.caps;
        } else if constexpr (std::is_same_v<T, tlv::HelloResp>) {
          os << "status=" << x.status << " v=" << x.proto_version << " kind=" << x.memory_kind
             << " index=" << x.subscriber_index << " gen=" << x.generation
             << " lib=" << x.lib_version << " caps=" << x.caps << " seq=" << x.initial_packet_seq
             << " pos=" << x.initial_packet_pos;
        } else if constexpr (std::is_same_v<T, tlv::AttachReq>) {
          os << "index=" << x.subscriber_index << " gen=" << x.generation << " flags=" << x.flags;
        } else if constexpr (std::is_same_v<T, tlv::AttachResp>) {
          os << "status=" << x.status << " start_seq=" << x.start_seq;
        } else if constexpr (std::is_same_v<T, tlv::Detach>) {
          os << "reason=" << x.reason;
        } else if constexpr (std::is_same_v<T, tlv::ErrorMsg>) {
          os << "code=" << x.code << " text[" << x.text.size() << "]";
        } else {
          os << "nonce=" << x.nonce;
        }
      },
      v.m);
  os << "}";
}

bool Same(const tlv::Message& a, const tlv::Message& b) {
  return tlv::Encode(a) == tlv::Encode(b);  // the encoding covers every field
}

rc::Gen<Msg> GenMsg() {
  using rc::gen::arbitrary;
  auto wrap = [](auto g) {
    return rc::gen::map(g, [](auto v) { return Msg{tlv::Message{std::move(v)}}; });
  };
  return rc::gen::oneOf(
      wrap(rc::gen::build<tlv::HelloReq>(
          rc::gen::set(&tlv::HelloReq::magic,
                       rc::gen::oneOf(rc::gen::just(sp::HELLO_MAGIC), arbitrary<uint32_t>())),
          rc::gen::set(&tlv::HelloReq::min_proto), rc::gen::set(&tlv::HelloReq::max_proto),
          rc::gen::set(&tlv::HelloReq::kinds_mask), rc::gen::set(&tlv::HelloReq::lib_version),
          rc::gen::set(&tlv::HelloReq::caps))),
      wrap(rc::gen::build<tlv::HelloResp>(
          rc::gen::set(&tlv::HelloResp::status), rc::gen::set(&tlv::HelloResp::proto_version),
          rc::gen::set(&tlv::HelloResp::memory_kind),
          rc::gen::set(&tlv::HelloResp::subscriber_index),
          rc::gen::set(&tlv::HelloResp::generation), rc::gen::set(&tlv::HelloResp::lib_version),
          rc::gen::set(&tlv::HelloResp::caps), rc::gen::set(&tlv::HelloResp::initial_packet_seq),
          rc::gen::set(&tlv::HelloResp::initial_packet_pos))),
      wrap(rc::gen::build<tlv::AttachReq>(rc::gen::set(&tlv::AttachReq::subscriber_index),
                                          rc::gen::set(&tlv::AttachReq::generation),
                                          rc::gen::set(&tlv::AttachReq::flags))),
      wrap(rc::gen::build<tlv::AttachResp>(rc::gen::set(&tlv::AttachResp::status),
                                           rc::gen::set(&tlv::AttachResp::start_seq))),
      wrap(rc::gen::build<tlv::Detach>(rc::gen::set(&tlv::Detach::reason))),
      wrap(rc::gen::build<tlv::ErrorMsg>(
          rc::gen::set(&tlv::ErrorMsg::code),
          rc::gen::set(&tlv::ErrorMsg::text,
                       rc::gen::mapcat(rc::gen::inRange<size_t>(0, tlv::kMaxErrorText + 1),
                                       [](size_t n) {
                                         return rc::gen::container<std::string>(n,
                                                                                arbitrary<char>());
                                       })))),
      wrap(rc::gen::build<tlv::Ping>(rc::gen::set(&tlv::Ping::nonce))),
      wrap(rc::gen::build<tlv::Pong>(rc::gen::set(&tlv::Pong::nonce))));
}

}  // namespace
}  // namespace cuframes::fuzz

namespace rc {
template <>
struct Arbitrary<cuframes::fuzz::Msg> {
  static Gen<cuframes::fuzz::Msg> arbitrary() { return cuframes::fuzz::GenMsg(); }
};
}  // namespace rc

namespace cuframes::fuzz {
namespace {

// Splits `bytes` into chunks of the given sizes (cycled; 0 read as 1).
std::vector<std::vector<uint8_t>> Split(const std::vector<uint8_t>& bytes,
                                        const std::vector<uint16_t>& sizes) {
  std::vector<std::vector<uint8_t>> out;
  size_t off = 0, i = 0;
  while (off < bytes.size()) {
    size_t n = sizes.empty() ? bytes.size() : std::max<size_t>(1, sizes[i++ % sizes.size()]);
    n = std::min(n, bytes.size() - off);
    out.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(off),
                     bytes.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
  }
  return out;
}

RC_GTEST_PROP(TlvProperty, EncodeDecodeRoundTripsWithReservedBytesZero, (const Msg& msg)) {
  const std::vector<uint8_t> wire = tlv::Encode(msg.m);
  RC_ASSERT(wire.size() == tlv::EncodedSize(msg.m));
  const uint16_t type = static_cast<uint16_t>(tlv::TypeOf(msg.m));
  const sp::MessageInfo* info = sp::find_message(type);
  RC_ASSERT(info != nullptr);
  // Header: the twin's type, reserved zero, length within the twin's range.
  RC_ASSERT(LoadLe(wire.data() + sp::TlvHeader::type::offset, 2) == type);
  RC_ASSERT(LoadLe(wire.data() + sp::TlvHeader::reserved0::offset, 2) == 0u);
  const uint64_t length = LoadLe(wire.data() + sp::TlvHeader::length::offset, 4);
  RC_ASSERT(length + tlv::kHeaderSize == wire.size());
  RC_ASSERT(length >= info->min_length && length <= info->max_length);
  // Every reserved payload byte the twin names is zero.
  for (const sp::FieldInfo& f : sp::kFields) {
    if (f.struct_name != info->payload || f.type != "reserved") continue;
    for (size_t i = 0; i < f.size; ++i)
      RC_ASSERT(wire[tlv::kHeaderSize + f.offset + i] == 0);
  }
  tlv::Message back;
  size_t consumed = 0;
  RC_ASSERT(tlv::DecodeMessage(wire, &back, &consumed) == Status::kOk);
  RC_ASSERT(consumed == wire.size());
  RC_ASSERT(Same(back, msg.m));
  if (const auto* e = std::get_if<tlv::ErrorMsg>(&msg.m)) {
    RC_ASSERT(std::get<tlv::ErrorMsg>(back).text == e->text);
  }
}

RC_GTEST_PROP(TlvProperty, EveryStrictPrefixDecodesToAgain, (const Msg& msg)) {
  const std::vector<uint8_t> wire = tlv::Encode(msg.m);
  const size_t k = *rc::gen::inRange<size_t>(0, wire.size());
  tlv::Message out;
  size_t consumed = 0;
  const Status s = tlv::DecodeMessage(std::span<const uint8_t>(wire.data(), k), &out, &consumed);
  RC_ASSERT(s == Status::kAgain);
}

RC_GTEST_PROP(TlvProperty, AnySplitThroughReassemblerYieldsTheSameMessages,
              (const std::vector<Msg>& msgs, const std::vector<uint16_t>& sizes)) {
  std::vector<uint8_t> stream;
  for (const Msg& m : msgs) {
    const auto w = tlv::Encode(m.m);
    stream.insert(stream.end(), w.begin(), w.end());
  }
  tlv::Reassembler r;
  std::vector<tlv::Message> got;
  for (const auto& chunk : Split(stream, sizes)) {
    r.Feed(chunk);
    tlv::Message m;
    Status s;
    while ((s = r.Next(&m)) == Status::kOk)
      got.push_back(m);
    RC_ASSERT(s == Status::kAgain);
  }
  RC_ASSERT(got.size() == msgs.size());
  for (size_t i = 0; i < got.size(); ++i)
    RC_ASSERT(Same(got[i], msgs[i].m));
  RC_ASSERT(!r.HasPartial());
}

RC_GTEST_PROP(TlvProperty, MalformedMessageEndsTheStreamWithAStickyError,
              (const std::vector<Msg>& msgs, const std::vector<uint16_t>& sizes)) {
  std::vector<uint8_t> stream;
  for (const Msg& m : msgs) {
    const auto w = tlv::Encode(m.m);
    stream.insert(stream.end(), w.begin(), w.end());
  }
  // One framing error of 3.2, then more valid bytes that must never be delivered.
  const int kind = *rc::gen::inRange(0, 4);
  uint8_t bad[8] = {7, 0, 0, 0, 8, 0, 0, 0};  // a PING header
  Status want = Status::kProtocol;
  if (kind == 0) {
    StoreLe(bad + 4, sp::TLV_MAX_PAYLOAD + 1 + *rc::gen::inRange<uint32_t>(0, 1000000), 4);
    want = Status::kMessageTooLarge;
  } else if (kind == 1) {
    StoreLe(bad, *rc::gen::inRange<uint32_t>(9, 65536), 2);
    want = Status::kUnknownMessage;
  } else if (kind == 2) {
    StoreLe(bad + 2, *rc::gen::inRange<uint32_t>(1, 65536), 2);  // reserved bits
  } else {
    StoreLe(bad + 4, *rc::gen::inRange<uint32_t>(9, 4097), 4);  // PING is exactly 8 bytes
  }
  stream.insert(stream.end(), bad, bad + 8);
  const auto tail = tlv::Encode(tlv::Message{tlv::Ping{42}});
  stream.insert(stream.end(), tail.begin(), tail.end());

  tlv::Reassembler r;
  size_t delivered = 0;
  Status last = Status::kAgain;
  for (const auto& chunk : Split(stream, sizes)) {
    r.Feed(chunk);
    tlv::Message m;
    while ((last = r.Next(&m)) == Status::kOk) {
      RC_ASSERT(delivered < msgs.size());
      RC_ASSERT(Same(m, msgs[delivered].m));
      ++delivered;
    }
  }
  RC_ASSERT(delivered == msgs.size());
  RC_ASSERT(last == want);
  tlv::Message m;
  RC_ASSERT(r.Next(&m) == want);  // sticky
}

}  // namespace
}  // namespace cuframes::fuzz
