#include "stimulus.h"

#include "tlv.h"

namespace cuframes::conform {

namespace {

constexpr Role kSub = Role::kSubscriber;
constexpr Role kPub = Role::kPublisher;

// ---- messages a scripted publisher sends to an IUT subscriber ----

std::vector<uint8_t> HelloRespOk(const Spec& s, const StimParams& p) {
  MessageBuilder b(s, "HELLO_RESP");
  b.Set("status", s.Err("OK"))
      .Set("proto_version", 1)
      .Set("memory_kind", s.Enum("memory_kind", "HOST"))
      .Set("subscriber_index", p.subscriber_index)
      .Set("generation", p.generation)
      .Set("lib_version", 0x000200);
  return b.Encode();
}

// MSG-HRESP-02: a refusal carries the status and zeros elsewhere.
std::vector<uint8_t> HelloRespFull(const Spec& s, const StimParams&) {
  MessageBuilder b(s, "HELLO_RESP");
  b.Set("status", s.Err("FULL"));
  return b.Encode();
}

std::vector<uint8_t> AttachRespOk(const Spec& s, const StimParams& p) {
  MessageBuilder b(s, "ATTACH_RESP");
  b.Set("status", s.Err("OK")).Set("start_seq", p.start_seq);
  return b.Encode();
}

// MSG-ARESP-02: with a status other than OK, start_seq is zero.
std::vector<uint8_t> AttachRespFull(const Spec& s, const StimParams&) {
  MessageBuilder b(s, "ATTACH_RESP");
  b.Set("status", s.Err("FULL")).Set("start_seq", 0);
  return b.Encode();
}

// ---- messages a scripted subscriber sends to an IUT publisher ----

std::vector<uint8_t> HelloReq(const Spec& s, uint32_t magic, uint16_t min_proto,
                              uint16_t max_proto) {
  MessageBuilder b(s, "HELLO_REQ");
  b.Set("magic", magic)
      .Set("min_proto", min_proto)
      .Set("max_proto", max_proto)
      .Set("kinds_mask", 1u << (s.Enum("memory_kind", "HOST") - 1))
      .Set("lib_version", 0x000200);
  return b.Encode();
}

std::vector<uint8_t> HelloReqOk(const Spec& s, const StimParams&) {
  return HelloReq(s, static_cast<uint32_t>(s.Const("HELLO_MAGIC")), 1, 1);
}

// MSG-HELLO-04: min_proto > max_proto is answered VERSION_MISMATCH.
std::vector<uint8_t> HelloReqReject(const Spec& s, const StimParams&) {
  return HelloReq(s, static_cast<uint32_t>(s.Const("HELLO_MAGIC")), 2, 1);
}

// MSG-HELLO-02: the magic one bit off.
std::vector<uint8_t> HelloReqBadMagic(const Spec& s, const StimParams&) {
  return HelloReq(s, static_cast<uint32_t>(s.Const("HELLO_MAGIC")) ^ 1u, 1, 1);
}

std::vector<uint8_t> AttachReqOk(const Spec& s, const StimParams& p) {
  MessageBuilder b(s, "ATTACH_REQ");
  b.Set("subscriber_index", p.subscriber_index).Set("generation", p.generation);
  return b.Encode();
}

// MSG-ATTACH-02: the generation one past the one HELLO_RESP gave.
std::vector<uint8_t> AttachReqMismatch(const Spec& s, const StimParams& p) {
  MessageBuilder b(s, "ATTACH_REQ");
  b.Set("subscriber_index", p.subscriber_index).Set("generation", p.generation + 1);
  return b.Encode();
}

// ---- either direction ----

std::vector<uint8_t> DetachOk(const Spec& s, const StimParams&) {
  MessageBuilder b(s, "DETACH");
  b.Set("reason", s.Err("OK"));
  return b.Encode();
}

std::vector<uint8_t> ErrorEvicted(const Spec& s, const StimParams&) {
  return EncodeError(s, s.Err("EVICTED"), "conformance harness: evicted");
}

std::vector<uint8_t> ErrorProtocol(const Spec& s, const StimParams&) {
  return EncodeError(s, s.Err("PROTOCOL"), "conformance harness: protocol");
}

std::vector<uint8_t> Ping(const Spec& s, const StimParams& p) {
  MessageBuilder b(s, "PING");
  b.Set("nonce", p.nonce);
  return b.Encode();
}

std::vector<uint8_t> Pong(const Spec& s, const StimParams& p) {
  MessageBuilder b(s, "PONG");
  b.Set("nonce", p.nonce);
  return b.Encode();
}

// TLV-ERR-03: a PING whose reserved header bytes are nonzero earns ERROR(PROTOCOL). A receiver
// that ignored the reserved bytes would answer PONG, so the row's check tells the two apart.
std::vector<uint8_t> MalformedPing(const Spec& s, const StimParams& p) {
  MessageBuilder b(s, "PING");
  b.Set("nonce", p.nonce);
  return EncodeTlv(b.type(), b.payload(), 0x0101);
}

// WRONG_DIRECTION towards a subscriber: HELLO_REQ, which only subscribers send.
std::vector<uint8_t> WrongDirToSub(const Spec& s, const StimParams& p) {
  return HelloReqOk(s, p);
}

// WRONG_DIRECTION towards a publisher: HELLO_RESP, which only publishers send.
std::vector<uint8_t> WrongDirToPub(const Spec& s, const StimParams& p) {
  return HelloRespOk(s, p);
}

std::vector<Stimulus> Build() {
  using V = std::vector<std::string>;
  std::vector<Stimulus> t;
  auto add = [&](Role iut, const char* event, StimKind kind, const char* message, const char* code,
                 const char* what, V only_in, V reqs,
                 std::vector<uint8_t> (*bytes)(const Spec&, const StimParams&)) {
    t.push_back(
        {iut, event, kind, message, code, what, std::move(only_in), std::move(reqs), bytes});
  };
  // IUT subscriber; the harness plays the publisher.
  add(kSub, "HELLO_RESP_OK", StimKind::kMessage, "HELLO_RESP", "",
      "HELLO_RESP(OK, version 1, HOST, slot 0) over a valid segment", {}, {"MSG-HRESP-01"},
      HelloRespOk);
  add(kSub, "HELLO_RESP_OK_BAD_SEGMENT", StimKind::kBadSegment, "HELLO_RESP", "UNSUPPORTED_LAYOUT",
      "HELLO_RESP(OK) over a segment whose layout_version is 2", {}, {"SHM-HDR-01", "SHM-VALID-01"},
      HelloRespOk);
  add(kSub, "HELLO_RESP_ERR", StimKind::kMessage, "HELLO_RESP", "FULL",
      "HELLO_RESP(status FULL, all else zero)", {}, {"ERR-03"}, HelloRespFull);
  add(kSub, "ATTACH_RESP_OK", StimKind::kMessage, "ATTACH_RESP", "",
      "ATTACH_RESP(OK, start_seq = write_seq + 1)", {}, {"MSG-ARESP-01"}, AttachRespOk);
  add(kSub, "ATTACH_RESP_ERR", StimKind::kMessage, "ATTACH_RESP", "FULL",
      "ATTACH_RESP(status FULL, start_seq 0)", {}, {"ERR-03"}, AttachRespFull);
  add(kSub, "DETACH", StimKind::kMessage, "DETACH", "", "DETACH(reason OK)", {}, {"MSG-DETACH-01"},
      DetachOk);
  add(kSub, "ERROR", StimKind::kMessage, "ERROR", "EVICTED", "ERROR(EVICTED)", {},
      {"TLV-ERR-06", "ERR-03"}, ErrorEvicted);
  add(kSub, "PING", StimKind::kMessage, "PING", "", "PING(nonce 0x0123456789abcdef)", {},
      {"MSG-PING-01"}, Ping);
  add(kSub, "PONG", StimKind::kMessage, "PONG", "", "an unsolicited PONG", {}, {}, Pong);
  add(kSub, "WRONG_DIRECTION", StimKind::kMessage, "HELLO_REQ", "",
      "HELLO_REQ, a message only subscribers send", {}, {}, WrongDirToSub);
  add(kSub, "MALFORMED", StimKind::kMessage, "PING", "PROTOCOL",
      "a PING with nonzero reserved header bytes (TLV-ERR-03)", {}, {"TLV-ERR-03", "TLV-ERR-08"},
      MalformedPing);
  add(kSub, "EOF", StimKind::kEof, "", "", "end-of-file on the socket", {}, {}, nullptr);
  add(kSub, "HANDSHAKE_TIMEOUT", StimKind::kHandshakeWait, "", "",
      "HANDSHAKE_TIMEOUT_MS pass since connect", {}, {"SM-SUB-02"}, nullptr);
  add(kSub, "LOCAL_CLOSE", StimKind::kLocalClose, "", "",
      "the adapter closes after reading its --frames", {"ACTIVE"}, {"RES-CLOSE-02"}, nullptr);
  // IUT publisher; the harness plays the subscriber.
  add(kPub, "HELLO_REQ_OK", StimKind::kMessage, "HELLO_REQ", "",
      "HELLO_REQ(magic, versions 1..1, HOST)", {}, {"MSG-HRESP-01", "SHM-SUB-02"}, HelloReqOk);
  add(kPub, "HELLO_REQ_REJECT", StimKind::kMessage, "HELLO_REQ", "VERSION_MISMATCH",
      "HELLO_REQ with min_proto 2 > max_proto 1", {}, {"MSG-HELLO-04", "MSG-HRESP-02"},
      HelloReqReject);
  add(kPub, "HELLO_REQ_BAD_MAGIC", StimKind::kMessage, "HELLO_REQ", "PROTOCOL",
      "HELLO_REQ whose magic is one bit off", {}, {"MSG-HELLO-02"}, HelloReqBadMagic);
  add(kPub, "ATTACH_REQ_OK", StimKind::kMessage, "ATTACH_REQ", "",
      "ATTACH_REQ echoing HELLO_RESP's index and generation", {}, {"MSG-ARESP-01"}, AttachReqOk);
  add(kPub, "ATTACH_REQ_MISMATCH", StimKind::kMessage, "ATTACH_REQ", "PROTOCOL",
      "ATTACH_REQ with generation + 1", {}, {"MSG-ATTACH-02"}, AttachReqMismatch);
  add(kPub, "WRONG_DIRECTION", StimKind::kMessage, "HELLO_RESP", "",
      "HELLO_RESP, a message only publishers send", {}, {}, WrongDirToPub);
  add(kPub, "DETACH", StimKind::kMessage, "DETACH", "", "DETACH(reason OK)", {}, {"MSG-DETACH-01"},
      DetachOk);
  add(kPub, "ERROR", StimKind::kMessage, "ERROR", "PROTOCOL", "ERROR(PROTOCOL)", {}, {"TLV-ERR-06"},
      ErrorProtocol);
  add(kPub, "PING", StimKind::kMessage, "PING", "", "PING(nonce 0x0123456789abcdef)", {},
      {"MSG-PING-01"}, Ping);
  add(kPub, "PONG", StimKind::kMessage, "PONG", "", "an unsolicited PONG", {}, {}, Pong);
  add(kPub, "MALFORMED", StimKind::kMessage, "PING", "PROTOCOL",
      "a PING with nonzero reserved header bytes (TLV-ERR-03)", {}, {"TLV-ERR-03", "TLV-ERR-05"},
      MalformedPing);
  add(kPub, "EOF", StimKind::kEof, "", "", "end-of-file on the socket", {}, {}, nullptr);
  add(kPub, "HANDSHAKE_TIMEOUT", StimKind::kHandshakeWait, "", "",
      "HANDSHAKE_TIMEOUT_MS pass since accept", {}, {"SM-PUB-02"}, nullptr);
  add(kPub, "ACK_TIMEOUT", StimKind::kAckTimeout, "", "",
      "a committed frame stays unreleased past --ack-timeout-ms 300", {}, {"ACK-EVICT-01"},
      nullptr);
  add(kPub, "ACK_GARBAGE", StimKind::kAckGarbage, "", "",
      "ack_seq = write_seq + 1 stored in the subscriber slot", {}, {"ACK-EVICT-02"}, nullptr);
  add(kPub, "LOCAL_SHUTDOWN", StimKind::kLocalShutdown, "", "",
      "the adapter shuts down after its frames and --linger-ms", {}, {"RES-CLOSE-01"}, nullptr);
  return t;
}

}  // namespace

const char* StimKindName(StimKind k) {
  switch (k) {
    case StimKind::kMessage:
      return "message";
    case StimKind::kBadSegment:
      return "bad-segment";
    case StimKind::kEof:
      return "eof";
    case StimKind::kHandshakeWait:
      return "handshake-wait";
    case StimKind::kAckTimeout:
      return "ack-timeout";
    case StimKind::kAckGarbage:
      return "ack-garbage";
    case StimKind::kLocalClose:
      return "local-close";
    case StimKind::kLocalShutdown:
      return "local-shutdown";
  }
  return "?";
}

bool Stimulus::CausableIn(std::string_view state) const {
  if (only_in.empty()) return true;
  for (const std::string& s : only_in) {
    if (s == state) return true;
  }
  return false;
}

const std::vector<Stimulus>& StimulusTable() {
  static const std::vector<Stimulus> table = Build();
  return table;
}

const Stimulus* FindStimulus(Role iut, std::string_view event) {
  for (const Stimulus& s : StimulusTable()) {
    if (s.iut == iut && s.event == event) return &s;
  }
  return nullptr;
}

const char* MachineName(Role iut) {
  return iut == Role::kSubscriber ? "subscriber" : "publisher";
}

}  // namespace cuframes::conform
