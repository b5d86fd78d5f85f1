// fuzz_hello.cpp: libFuzzer target for HELLO negotiation (spec 3.3, 3.4, 6.2, 7, 10.9) through
// reference/src/handshake.h: the publisher's judgement of a HELLO_REQ (EvaluateHello and the
// per-connection table around it) and the subscriber's check of a HELLO_RESP (CheckHelloResp).
//
// Input: [publisher policy: max_proto, memory_kind, uid_allowed, slot_available, has_ring]
//        [HELLO_REQ payload: tail length byte, 64 bytes + tail]
//        [subscriber: max_proto u16, kinds_mask u32] [HELLO_RESP payload: 64 bytes]
// (missing bytes read as zero). Checked:
//  - the verdict is OK exactly when magic, versions (VER-NEG-01/02, MSG-HELLO-04), memory kind
//    (KIND-01), uid (RES-PERM-02) and a free slot all allow it; otherwise it names one of the
//    failing reasons, and a wrong magic is always PROTOCOL (an ERROR, MSG-HELLO-02);
//  - an OK verdict's version lies within both peers' ranges; the transition after it matches
//    section 4.2; a HELLO_RESP built from the verdict as 3.4 and 10.9 say round-trips through
//    the codec and is accepted by a subscriber with the HELLO_REQ's ranges;
//  - a fuzzed HELLO_RESP is judged as MSG-HRESP-05 and ERR-02 say.
#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "cuframes_spec_generated.h"
#include "fuzz_common.h"
#include "handshake.h"
#include "status.h"
#include "tlv.h"

namespace cuframes::fuzz {
namespace {

namespace sp = cuframes::spec;
using handshake::Action;
using handshake::Event;
using handshake::PubState;
using handshake::SubState;

uint32_t KindBit(uint32_t kind) {
  return kind >= 1 && kind <= 32 ? 1u << (kind - 1) : 0u;
}

std::vector<uint8_t> Payload(Bytes& in, size_t n) {
  std::vector<uint8_t> p(n, 0);
  const auto got = in.Take(n);
  std::copy(got.begin(), got.end(), p.begin());
  return p;
}

void CheckPublisher(const tlv::HelloReq& req, const handshake::HelloPolicy& policy, bool has_ring) {
  const handshake::HelloVerdict v = handshake::EvaluateHello(req, policy);
  FUZZ_CHECK(IsDefinedStatus(v.status), "verdict %u", static_cast<unsigned>(v.status));

  // The spec's reasons, derived independently.
  const bool bad_magic = req.magic != sp::HELLO_MAGIC;
  const uint16_t v_neg = std::min(req.max_proto, policy.max_proto);
  const bool bad_version =
      req.min_proto == 0 || req.min_proto > req.max_proto || v_neg < req.min_proto || v_neg < 1;
  const bool bad_kind = (req.kinds_mask & KindBit(policy.memory_kind)) == 0;
  const bool bad_uid = !policy.uid_allowed;
  const bool full = !policy.slot_available;

  if (bad_magic) {
    FUZZ_CHECK(v.status == Status::kProtocol, "wrong magic %08x judged %s", req.magic,
               StatusName(v.status));
  } else if (!bad_version && !bad_kind && !bad_uid && !full) {
    FUZZ_CHECK(v.status == Status::kOk, "acceptable HELLO_REQ [%u,%u] mask %x judged %s",
               req.min_proto, req.max_proto, req.kinds_mask, StatusName(v.status));
  } else if (req.min_proto == 0 && v.status == Status::kOk) {
    FUZZ_KNOWN_BUG("B5", false,
                   "HELLO_REQ [0,%u] accepted; MSG-HELLO-04: min_proto = 0 is VERSION_MISMATCH",
                   req.max_proto);
  } else {
    const bool named = (v.status == Status::kVersionMismatch && bad_version) ||
                       (v.status == Status::kUnsupportedKind && bad_kind) ||
                       (v.status == Status::kPermission && bad_uid) ||
                       (v.status == Status::kFull && full);
    FUZZ_CHECK(named,
               "HELLO_REQ [%u,%u] mask %x vs publisher max %u kind %u uid %d slot %d judged %s",
               req.min_proto, req.max_proto, req.kinds_mask, policy.max_proto, policy.memory_kind,
               policy.uid_allowed ? 1 : 0, policy.slot_available ? 1 : 0, StatusName(v.status));
  }
  if (v.status == Status::kOk) {
    FUZZ_CHECK(v.negotiated == v_neg, "negotiated %u, spec says min(%u, %u)", v.negotiated,
               req.max_proto, policy.max_proto);
    FUZZ_CHECK(v.negotiated >= req.min_proto && v.negotiated <= req.max_proto &&
                   v.negotiated >= 1 && v.negotiated <= policy.max_proto,
               "negotiated %u outside [%u,%u] or [1,%u]", v.negotiated, req.min_proto,
               req.max_proto, policy.max_proto);
  }

  // The table around it (4.2): HELLO_REQ in AWAIT_HELLO is processed, then the verdict decides.
  const handshake::PubStep step =
      handshake::PublisherStep(PubState::kAwaitHello, Event::kRecvHelloReq);
  FUZZ_CHECK(step.action == Action::kProcessHello, "HELLO_REQ in AWAIT_HELLO not processed");
  const handshake::PubStep after = handshake::AfterHello(v.status);
  if (v.status == Status::kOk) {
    FUZZ_CHECK(after.next == PubState::kAwaitAttach, "HELLO_REQ_OK does not lead to AWAIT_ATTACH");
  } else {
    FUZZ_CHECK(after.next == PubState::kClosed, "a refused HELLO_REQ leaves the connection open");
    FUZZ_CHECK(after.error == v.status, "refusal reported as %s, verdict %s",
               StatusName(after.error), StatusName(v.status));
    FUZZ_CHECK((after.action == Action::kSendErrorClose) == (v.status == Status::kProtocol),
               "bad magic must be answered with ERROR, other refusals with HELLO_RESP");
  }

  // The HELLO_RESP a publisher sends for this verdict (3.4, 10.9), through the codec, judged by
  // a subscriber with the HELLO_REQ's own ranges.
  tlv::HelloResp resp{};
  resp.status = ToWire(v.status);
  if (v.status == Status::kOk) {
    resp.proto_version = v.negotiated;
    resp.memory_kind = policy.memory_kind;
    resp.subscriber_index = 0;
    resp.generation = 1;
    resp.lib_version = 0x000200;
    const bool want = (req.caps & static_cast<uint32_t>(sp::HelloReqCaps::WANT_PACKETS)) != 0;
    if (v.negotiated >= 2 && has_ring && want) {
      resp.caps = static_cast<uint32_t>(sp::HelloRespCaps::PACKET_RING_PRESENT);
      resp.initial_packet_seq = 1;
    }
  }
  if (v.status == Status::kProtocol) return;  // an ERROR is sent, not a HELLO_RESP
  const std::vector<uint8_t> wire = tlv::Encode(tlv::Message{resp});
  tlv::Message back;
  size_t consumed = 0;
  FUZZ_CHECK(tlv::DecodeMessage(wire, &back, &consumed) == Status::kOk, "HELLO_RESP round trip");
  const auto& r2 = std::get<tlv::HelloResp>(back);
  const Status judged = handshake::CheckHelloResp(r2, req.max_proto, req.kinds_mask);
  FUZZ_CHECK(judged == v.status, "subscriber judges the publisher's HELLO_RESP(%s) as %s",
             StatusName(v.status), StatusName(judged));
}

void CheckSubscriber(const tlv::HelloResp& resp, uint16_t max_proto, uint32_t kinds_mask) {
  const handshake::SubStep step =
      handshake::SubscriberStep(SubState::kAwaitHelloResp, Event::kRecvHelloResp);
  FUZZ_CHECK(step.action == Action::kProcessHelloResp, "HELLO_RESP in HELLO_SENT not processed");
  const Status s = handshake::CheckHelloResp(resp, max_proto, kinds_mask);
  if (resp.status != 0) {
    const bool known = resp.status <= sp::kErrors.back().value;
    const Status want = known ? static_cast<Status>(resp.status) : Status::kProtocol;
    FUZZ_KNOWN_BUG("B1", s == want,
                   "HELLO_RESP status %u judged %u; ERR-02: an unknown code is PROTOCOL",
                   resp.status, static_cast<unsigned>(s));
    FUZZ_CHECK(s != Status::kOk, "HELLO_RESP status %u accepted", resp.status);
    return;
  }
  const bool version_ok = resp.proto_version >= 1 && resp.proto_version <= max_proto;
  const bool kind_ok = (kinds_mask & KindBit(resp.memory_kind)) != 0;
  if (version_ok && kind_ok) {
    FUZZ_CHECK(s == Status::kOk, "HELLO_RESP v%u kind %u (asked <=%u mask %x) judged %s",
               resp.proto_version, resp.memory_kind, max_proto, kinds_mask, StatusName(s));
    return;
  }
  FUZZ_CHECK(s != Status::kOk, "HELLO_RESP v%u kind %u (asked <=%u mask %x) accepted",
             resp.proto_version, resp.memory_kind, max_proto, kinds_mask);
  // MSG-HRESP-05: a version outside the range is VERSION_MISMATCH, a kind not offered is
  // UNSUPPORTED_KIND.
  const bool named =
      (!version_ok && s == Status::kVersionMismatch) || (!kind_ok && s == Status::kUnsupportedKind);
  FUZZ_KNOWN_BUG("B2", named,
                 "HELLO_RESP v%u kind %u (asked <=%u mask %x) refused with %s; MSG-HRESP-05 "
                 "names VERSION_MISMATCH / UNSUPPORTED_KIND",
                 resp.proto_version, resp.memory_kind, max_proto, kinds_mask, StatusName(s));
}

void Run(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  handshake::HelloPolicy policy{};
  policy.max_proto = static_cast<uint16_t>(1 + in.U8() % 3);  // 1, 2, or a future 3
  policy.memory_kind = static_cast<uint16_t>(1 + in.U8() % 3);
  policy.uid_allowed = !in.Bool();  // the common case at zero bytes
  policy.slot_available = !in.Bool();
  const bool has_ring = in.Bool();

  const size_t tail = in.U8() % 65;  // MSG-HELLO-03: longer HELLO_REQs are accepted
  const std::vector<uint8_t> req_payload = Payload(in, 64 + tail);
  tlv::Message m;
  const Status ds = tlv::DecodePayload(1, req_payload, &m);
  FUZZ_CHECK(ds == Status::kOk, "a %zu-byte HELLO_REQ payload decodes to %s", req_payload.size(),
             StatusName(ds));
  CheckPublisher(std::get<tlv::HelloReq>(m), policy, has_ring);

  const uint16_t sub_max = static_cast<uint16_t>(1 + in.U8() % 3);
  const uint32_t sub_mask = in.U32();
  const std::vector<uint8_t> resp_payload = Payload(in, 64);
  tlv::Message rm;
  FUZZ_CHECK(tlv::DecodePayload(2, resp_payload, &rm) == Status::kOk, "HELLO_RESP payload");
  CheckSubscriber(std::get<tlv::HelloResp>(rm), sub_max, sub_mask);
}

}  // namespace
}  // namespace cuframes::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cuframes::fuzz::Run(data, size);
  return 0;
}
