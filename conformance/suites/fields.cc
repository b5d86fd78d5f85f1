// fields.cc: boundary cases for every constrained field, generated at run time from the twin.
//
// For each field whose "values" the twin constrains (derive.h Boundaries: each edge and both
// sides of it), and for the offset, size and consistency rules of sections 2.8, 3 and 10.2 that
// the twin states only in prose, one case per value: "<section>/<Struct>.<field>=<value>". The
// harness writes the value where the role under test must validate it (a segment or ring header,
// HELLO_RESP, ATTACH_RESP, ERROR or DETACH for an IUT subscriber; HELLO_REQ, a TLV header or an
// ERROR for an IUT publisher) and expects the outcome the spec names: accepted, or the code.
// The table below says only who validates a field, how the value is injected and which code a
// refusal carries; the values themselves come from the twin. A constrained field with no rule
// here needs an entry in conformance/field_exemptions.txt, or the coverage gate fails.
#include <unistd.h>

#include <functional>

#include "common.h"
#include "coverage.h"
#include "derive.h"

namespace cuframes::conform {
namespace {

using Check = std::function<void(CaseContext&, const Boundary&, const std::string& code)>;

struct FieldRule {
  std::string st, field;
  Role role;
  Needs needs;
  std::vector<std::string> reqs;
  // Boundary values beyond the twin's "values" (or all of them for a rule the twin states only
  // in prose), e.g. the consistency edges of SHM-VALID-01.
  std::function<std::vector<Boundary>(const Spec&)> extra;
  // The expected outcome for a value: "" accepted, else the code (how it is carried is the
  // runner's business).
  std::function<std::string(const Spec&, const Boundary&)> code;
  Check run;
};

std::string Num(uint64_t v) {
  return std::to_string(v);
}

std::vector<std::string> SubArgs() {
  return {"--frames", "2", "--timeout-ms", "3000", "--kind", "host"};
}

// ---- IUT subscriber: values it validates when HELLO_RESP(OK) arrives (segment, ring) ----

// Accepted: ATTACH_REQ follows. Refused: DETACH(code), close, and the adapter reports code.
void ExpectAcceptOrDetach(CaseContext& ctx, ScriptedPub& pub, Process& sub, const std::string& code,
                          const std::string& req, const Boundary& b) {
  const Spec& s = ctx.spec();
  const std::string what = b.label + " = " + Num(b.value);
  if (code.empty()) {
    TlvMsg m = RecvOrFail(ctx, pub.conn(), req, "ATTACH_REQ: " + what + " is accepted", 4000);
    ctx.Expect(s.MsgName(m.type) == "ATTACH_REQ", req, "ATTACH_REQ: " + what + " is accepted",
               Describe(s, m), m.raw);
    return;
  }
  TlvMsg m = RecvOrFail(ctx, pub.conn(), req, "DETACH(" + code + ") for " + what, 4000);
  ctx.Expect(s.MsgName(m.type) == "DETACH" && PayloadField(s, "Detach", m, "reason") == s.Err(code),
             req, "DETACH(reason " + code + ") for " + what, Describe(s, m), m.raw);
  ExpectCloseOnly(ctx, pub.conn(), "MSG-DETACH-01", 3000);
  ExpectAdapterError(ctx, sub, code, req, 4000);
}

void AtHello(CaseContext& ctx, PubParams p, const std::function<void(ScriptedPub&)>& damage,
             const std::string& code, const std::string& req, const Boundary& b) {
  ScriptedPub pub(ctx, p);
  pub.Create();
  if (p.ring) pub.SetCodecParams(CodecParamsPayload(0), 0);
  damage(pub);
  Process& sub = pub.StartSub(p.ring ? SubPacketArgs(3) : SubArgs());
  pub.ReadHello();
  MessageBuilder resp = pub.HelloResp();
  if (p.ring) resp.Set("proto_version", 2).Set("caps", 1).Set("initial_packet_seq", 1);
  pub.conn().Send(resp.Encode());
  ExpectAcceptOrDetach(ctx, pub, sub, code, req, b);
}

// A segment-header field set to the value after a consistent segment was laid out.
Check SegField(const std::string& field, const std::string& req) {
  return [field, req](CaseContext& ctx, const Boundary& b, const std::string& code) {
    AtHello(
        ctx, PubParams{}, [&](ScriptedPub& p) { p.Header().Set(field, b.value); }, code, req, b);
  };
}

// A ring-header field set to the value after a consistent ring was laid out.
Check RingField(const std::string& field, const std::string& req) {
  return [field, req](CaseContext& ctx, const Boundary& b, const std::string& code) {
    AtHello(
        ctx, RingPubParams(), [&](ScriptedPub& p) { p.Ring().Set(field, b.value); }, code, req, b);
  };
}

// ---- IUT subscriber: codes carried by a message ----

// ExpectAdapterError, except for code UNSUPPORTED: an adapter exits 77 after an error event with
// code UNSUPPORTED (ADAPTER.md 2), which the harness otherwise reads as "case unsupported"; a
// refusal with that code from the peer is judged by the event alone.
void ExpectCode(CaseContext& ctx, Process& sub, const std::string& code, const std::string& req) {
  if (code != "UNSUPPORTED") {
    ExpectAdapterError(ctx, sub, code, req, 4000);
    return;
  }
  ctx.Expect(sub.WaitExit(In(4000)), req, "the adapter finishes", sub.StatusText());
  const nlohmann::json* e = FindError(sub);
  ctx.Expect(e && e->value("code", uint64_t{0}) == ctx.spec().Err(code), req,
             "an error event with code UNSUPPORTED",
             e ? e->dump() : "no error event; adapter " + sub.StatusText());
}

std::string StatusCode(const Spec& s, uint64_t v) {
  if (v == 0) return "";
  return s.ErrKnown(v) ? s.ErrName(v) : "PROTOCOL";  // ERR-02: an unknown code is PROTOCOL
}

void HelloRespStatus(CaseContext& ctx, const Boundary& b, const std::string& code) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs());
  pub.ReadHello();
  if (code.empty()) {
    pub.conn().Send(pub.HelloResp().Encode());
    ExpectAcceptOrDetach(ctx, pub, sub, code, "SM-SUB-01", b);
    return;
  }
  MessageBuilder m(ctx.spec(), "HELLO_RESP");  // MSG-HRESP-02: the rest zero
  m.Set("status", b.value);
  pub.conn().Send(m.Encode());
  pub.conn().ShutdownWrite();  // MSG-HRESP-02: the publisher closes after a refusal
  ExpectCloseOnly(ctx, pub.conn(), "SM-SUB-01", 3000);
  ExpectCode(ctx, sub, code, code == "PROTOCOL" ? "ERR-02" : "SM-SUB-01");
}

void AttachRespStatus(CaseContext& ctx, const Boundary& b, const std::string& code) {
  const Spec& s = ctx.spec();
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs());
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Encode());
  pub.ReadAttach();
  if (code.empty()) {
    const uint64_t start = pub.SendAttachOk();
    size_t from = 0;
    const nlohmann::json* e = sub.WaitEvent("attached", In(3000), &from);
    ctx.Expect(e && e->value("start_seq", uint64_t{0}) == start, "SM-SUB-01",
               "the adapter reports attached with start_seq " + Num(start),
               e ? e->dump() : "no attached event; adapter " + sub.StatusText());
    return;
  }
  MessageBuilder m(s, "ATTACH_RESP");  // MSG-ARESP-02: start_seq zero
  m.Set("status", b.value);
  pub.conn().Send(m.Encode());
  pub.conn().ShutdownWrite();
  ExpectCloseOnly(ctx, pub.conn(), "SM-SUB-01", 3000);
  ExpectCode(ctx, sub, code, code == "PROTOCOL" ? "ERR-02" : "SM-SUB-01");
}

// An ERROR(code) or DETACH(reason) while the subscriber waits for HELLO_RESP.
Check Closing(const std::string& message) {
  return [message](CaseContext& ctx, const Boundary& b, const std::string& code) {
    ScriptedPub pub(ctx, PubParams{});
    pub.Create();
    Process& sub = pub.StartSub(SubArgs());
    pub.ReadHello();
    if (message == "ERROR") {
      pub.conn().Send(
          EncodeError(ctx.spec(), static_cast<uint32_t>(b.value), "conformance boundary"));
    } else {
      MessageBuilder m(ctx.spec(), message);
      m.Set("reason", b.value);
      pub.conn().Send(m.Encode());
    }
    pub.conn().ShutdownWrite();  // MSG-ERROR-02, MSG-DETACH-01: the sender closes
    ExpectCloseOnly(ctx, pub.conn(), "TLV-ERR-06", 3000);
    ExpectCode(ctx, sub, code, "SM-SUB-01");
  };
}

void HelloRespVersion(CaseContext& ctx, const Boundary& b, const std::string& code) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  std::vector<std::string> args = SubArgs();
  args.insert(args.end(), {"--max-proto", "1"});
  Process& sub = pub.StartSub(args);
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Set("proto_version", b.value).Encode());
  ExpectAcceptOrDetach(ctx, pub, sub, code, "MSG-HRESP-05", b);
}

void HelloRespKind(CaseContext& ctx, const Boundary& b, const std::string& code) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs());  // --kind host: kinds_mask offers HOST only
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Set("memory_kind", b.value).Encode());
  ExpectAcceptOrDetach(ctx, pub, sub, code, "MSG-HRESP-05", b);
}

// ---- IUT subscriber: values it validates on each read ----

void FrameFlags(CaseContext& ctx, const Boundary& b, const std::string&) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached({"--frames", "1", "--timeout-ms", "3000", "--kind", "host"});
  pub.WriteFrame(1, pub.params().slot_bytes);
  StructView(ctx.spec(), "FrameMeta", pub.segment()->span(), pub.SlotDesc(0).base())
      .Set("flags", b.value);
  pub.Commit(1, 1);
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
}

void SlotState(CaseContext& ctx, const Boundary& b, const std::string& code) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs());
  pub.SubSlot(0).Set("state", b.value);
  pub.Publish();
  if (code.empty()) {
    pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
    return;
  }
  ExpectAdapterError(ctx, sub, code, "SHM-SUB-04", 4000);
}

// ---- IUT subscriber: packet ring values read after ATTACH ----

void ParamsSize(CaseContext& ctx, const Boundary& b, const std::string& code) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  const size_t n = std::min<uint64_t>(b.value, ctx.spec().Const("CODEC_PARAMS_MAX_BYTES"));
  pub.SetCodecParams(std::vector<uint8_t>(n, 0x42), 0);
  StructView cp(ctx.spec(), "CodecParams", pub.ring()->span(),
                ctx.spec().Const("CODEC_PARAMS_OFFSET"));
  cp.Set("lock", cp.Get("lock") + 1);
  cp.Set("size", b.value);
  cp.Set("lock", cp.Get("lock") + 1);
  Process& sub = pub.StartSub(SubPacketArgs(1));
  pub.Handshake();
  if (code.empty()) {
    size_t from = 0;
    const nlohmann::json* e = sub.WaitEvent("codec_params", In(3000), &from);
    ctx.Expect(
        e != nullptr, "PKT-PARAMS-03",
        "codec parameters of size " + Num(b.value) + " are read (codec_params event)",
        "none; adapter " + sub.StatusText() + (FindError(sub) ? FindError(sub)->dump() : ""));
    return;
  }
  ExpectAdapterError(ctx, sub, code, "PKT-PARAMS-03", 4000);
}

void RecordFlags(CaseContext& ctx, const Boundary& b, const std::string& code) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  pub.WritePacket(1, true);
  const uint64_t pos = pub.WritePacket(2, false);
  StructView(ctx.spec(), "PacketRecordHeader", pub.ring()->span(),
             ctx.spec().Const("RING_DATA_OFFSET") + pos % pub.params().ring_capacity)
      .Set("flags", b.value);
  Process& sub = pub.StartSub(SubPacketArgs(2));
  pub.Handshake();
  size_t from = 0;
  const nlohmann::json* e1 = sub.WaitEvent("packet", In(3000), &from);
  ctx.Expect(e1 && e1->value("seq", 0) == 1, "PKT-READ-01", "packet 1 delivered",
             e1 ? e1->dump() : "none; adapter " + sub.StatusText());
  if (code.empty()) {
    const nlohmann::json* e2 = sub.WaitEvent("packet", In(3000), &from);
    ctx.Expect(e2 && e2->value("seq", 0) == 2, "PKT-REC-04",
               "packet 2 with flags " + Num(b.value) + " delivered",
               e2 ? e2->dump() : "none; adapter " + sub.StatusText());
    return;
  }
  ExpectAdapterError(ctx, sub, code, "PKT-REC-04", 4000, true);
}

// ---- IUT publisher: values it validates in what a subscriber sends ----

std::vector<std::string> PubWaitArgs(CaseContext& ctx) {
  return {"--key", ctx.key(), "--frames", "0",           "--wait-subscribers",
          "1",     "--bytes", "4096",     "--linger-ms", "3000"};
}

// Codes of an IUT publisher's reply: "HELLO_RESP:<status>", "ERROR:<code>", "CLOSE" (close
// without a reply), or "" (HELLO_RESP(OK)).
void ExpectPubReply(CaseContext& ctx, ScriptedSub& sub, const std::string& code,
                    const std::string& req, const Boundary& b) {
  const Spec& s = ctx.spec();
  const std::string what = b.label + " = " + Num(b.value);
  if (code == "CLOSE") {
    ExpectCloseOnly(ctx, sub.conn(), req, 3000);
    return;
  }
  const std::string want = code.empty() ? "HELLO_RESP:OK" : code;
  const std::string msg = want.substr(0, want.find(':'));
  const std::string c = want.substr(want.find(':') + 1);
  TlvMsg m = RecvOrFail(ctx, sub.conn(), req, msg + "(" + c + ") for " + what, 3000);
  const std::string got = s.MsgName(m.type);
  const uint64_t v = got == "ERROR"        ? PayloadField(s, "ErrorMsg", m, "code")
                     : got == "HELLO_RESP" ? PayloadField(s, "HelloResp", m, "status")
                                           : ~uint64_t{0};
  ctx.Expect(got == msg && v == s.Err(c), req, msg + "(" + c + ") for " + what, Describe(s, m),
             m.raw);
  if (!code.empty()) ExpectCloseOnly(ctx, sub.conn(), req, 3000);
}

// A HELLO_REQ with one field set to the value.
Check HelloReqField(const std::string& field, const std::string& req, uint16_t max_proto) {
  return [field, req, max_proto](CaseContext& ctx, const Boundary& b, const std::string& code) {
    StartPub(ctx, PubWaitArgs(ctx));
    ScriptedSub sub(ctx);
    sub.Connect();
    HelloParams hp;
    hp.max_proto = max_proto;
    std::vector<uint8_t> bytes = sub.HelloBytes(hp);
    const FieldDef& f = ctx.spec().Field("HelloReq", field);
    StoreLe(bytes, ctx.spec().Const("TLV_HEADER_SIZE") + f.offset, b.value, f.size);
    sub.Send(bytes);
    ExpectPubReply(ctx, sub, code, req, b);
  };
}

// HelloReq.min_proto with max_proto 2: a value the row finds legal (1 or 2) is answered OK only
// by a publisher that speaks it. One whose manifest claims nothing above version 1 (a v1-only
// implementation, or the spec gate's v1-capped runs) rightly answers min_proto 2 with
// VERSION_MISMATCH: versions 1..1 and 2..2 have none in common (VER-NEG-01).
Check HelloReqMinProto() {
  Check inner = HelloReqField("min_proto", "MSG-HELLO-04", 2);
  return [inner](CaseContext& ctx, const Boundary& b, const std::string& code) {
    const auto highest = static_cast<uint64_t>(ctx.manifest().MaxProto());
    inner(ctx, b, code.empty() && b.value > highest ? "HELLO_RESP:VERSION_MISMATCH" : code);
  };
}

void TlvType(CaseContext& ctx, const Boundary& b, const std::string& code) {
  StartPub(ctx, PubWaitArgs(ctx));
  ScriptedSub sub(ctx);
  sub.Connect();
  const MessageDef* m = ctx.spec().MsgByType(static_cast<uint16_t>(b.value));
  sub.Send(EncodeTlv(static_cast<uint16_t>(b.value), std::vector<uint8_t>(m ? m->min_length : 8)));
  if (!code.empty()) {
    ExpectErrorClose(ctx, sub.conn(), code, "TLV-ERR-02");
    return;
  }
  // A defined type is not UNKNOWN_MESSAGE, whatever its zero payload earns otherwise.
  TlvMsg r;
  const Conn::Rx rx = sub.conn().Recv(&r, In(1000));
  const bool unknown =
      rx == Conn::Rx::kMsg && ctx.spec().MsgName(r.type) == "ERROR" &&
      PayloadField(ctx.spec(), "ErrorMsg", r, "code") == ctx.spec().Err("UNKNOWN_MESSAGE");
  ctx.Expect(!unknown, "TLV-ERR-02", "type " + Num(b.value) + " is not answered UNKNOWN_MESSAGE",
             rx == Conn::Rx::kMsg ? Describe(ctx.spec(), r) : "", r.raw);
}

void TlvLength(CaseContext& ctx, const Boundary& b, const std::string& code) {
  StartPub(ctx, PubWaitArgs(ctx));
  ScriptedSub sub(ctx);
  sub.Connect();
  const uint64_t max = ctx.spec().Const("TLV_MAX_PAYLOAD");
  HelloParams hp;
  hp.length = static_cast<uint32_t>(std::max<uint64_t>(64, std::min(b.value, max)));
  std::vector<uint8_t> bytes = sub.HelloBytes(hp);
  // The header announces the value; the payload is cut to it (or left out beyond the maximum:
  // a receiver must refuse before reading it, TLV-FRAME-03).
  StoreLe(bytes, 4, b.value, 4);
  bytes.resize(8 + (b.value > max ? 0 : b.value));
  sub.Send(bytes);
  ExpectPubReply(ctx, sub, code, b.value > max ? "TLV-ERR-01" : "TLV-ERR-03", b);
}

void ErrorTextLen(CaseContext& ctx, const Boundary& b, const std::string& code) {
  StartPub(ctx, PubWaitArgs(ctx));
  ScriptedSub sub(ctx);
  sub.Connect();
  sub.Send(EncodeError(ctx.spec(), ctx.spec().Err("PROTOCOL"), std::string(b.value, 't')));
  ExpectPubReply(ctx, sub, code, "TLV-ERR-06", b);
}

// ---- the rules ----

// An exact value: both neighbours illegal; a lower bound: the value above is legal too.
std::vector<Boundary> Around(uint64_t v, const std::string& what, bool also_legal_above = false) {
  return {{v - 1, false, what + "-1"}, {v, true, what}, {v + 1, also_legal_above, what + "+1"}};
}

// An upper bound: the value below is legal, the value above is not.
std::vector<Boundary> Below(uint64_t v, const std::string& what) {
  return {{v - 1, true, what + "-1"}, {v, true, what}, {v + 1, false, what + "+1"}};
}

std::vector<FieldRule> Rules() {
  const Role kSub = Role::kSubscriber, kPub = Role::kPublisher;
  const Needs v1{1, "host", ""};
  const Needs v2{2, "host", "packets"};
  using V = std::vector<std::string>;
  auto layout = [](const Spec&, const Boundary& b) {
    return b.legal ? "" : "UNSUPPORTED_LAYOUT";
  };
  auto corrupt = [](const Spec&, const Boundary& b) {
    return b.legal ? "" : "CORRUPT";
  };
  std::vector<FieldRule> r;
  // 2.2 / 2.8: the segment header, validated by the subscriber before it uses the segment.
  for (const char* f : {"layout_version", "magic", "header_size"}) {
    r.push_back({"SegmentHeader", f, kSub, v1, V{"SHM-HDR-01", "SHM-VALID-01"}, nullptr, layout,
                 SegField(f, "SHM-HDR-01")});
  }
  r.push_back({"SegmentHeader", "state", kSub, v1, V{"SHM-VALID-01"}, nullptr,
               [](const Spec& s, const Boundary& b) -> std::string {
                 if (b.value == s.Enum("segment_state", "CLOSED")) return "PEER_CLOSED";
                 return b.legal ? "" : "CORRUPT";
               },
               [](CaseContext& ctx, const Boundary& b, const std::string& code) {
                 const Spec& s = ctx.spec();
                 if (b.value != s.Enum("segment_state", "INIT")) {
                   SegField("state", "SHM-VALID-01")(ctx, b, code);
                   return;
                 }
                 // INIT: a segment still being written; the subscriber waits, and goes on once
                 // READY is stored within HANDSHAKE_TIMEOUT_MS.
                 ScriptedPub pub(ctx, PubParams{});
                 pub.Create();
                 pub.Header().Set("state", b.value);
                 Process& sub = pub.StartSub(SubArgs());
                 pub.ReadHello();
                 pub.conn().Send(pub.HelloResp().Encode());
                 TlvMsg m;
                 const Conn::Rx rx = pub.conn().Recv(&m, In(300));
                 ctx.Expect(rx == Conn::Rx::kTimeout, "SHM-VALID-01",
                            "nothing while the segment is INIT (the subscriber waits)",
                            rx == Conn::Rx::kMsg ? Describe(s, m) : "the connection closed");
                 pub.Header().Set("state", s.Enum("segment_state", "READY"));
                 ExpectAcceptOrDetach(ctx, pub, sub, "", "SHM-VALID-01", b);
               }});
  r.push_back({"SegmentHeader", "memory_kind", kSub, v1, V{"SHM-VALID-01"}, nullptr,
               [](const Spec& s, const Boundary& b) -> std::string {
                 return b.value == s.Enum("memory_kind", "HOST") ? "" : "CORRUPT";
               },
               SegField("memory_kind", "SHM-VALID-01")});
  for (const char* f : {"slot_count", "max_subscribers"}) {
    const std::string field = f;
    r.push_back({"SegmentHeader", f, kSub, v1, V{"SHM-VALID-01"}, nullptr, corrupt,
                 [field](CaseContext& ctx, const Boundary& b, const std::string& code) {
                   // A segment laid out consistently for the value: only the range is broken.
                   PubParams p;
                   (field == "slot_count" ? p.slot_count : p.max_subscribers) =
                       static_cast<uint32_t>(b.value);
                   AtHello(
                       ctx, p, [](ScriptedPub&) {}, code, "SHM-VALID-01", b);
                 }});
  }
  r.push_back({"SegmentHeader", "flags", kSub, v1, V{"VER-RSV-02", "PKT-RING-02"}, nullptr,
               // Bit 0 without a negotiated version 2 is ignored (PKT-RING-02); undefined bits
               // are reserved and ignored by readers (VER-RSV-02).
               [](const Spec&, const Boundary&) { return ""; }, SegField("flags", "VER-RSV-02")});
  r.push_back({"SegmentHeader", "slot_bytes", kSub, v1, V{"SHM-VALID-01"},
               [](const Spec& s) { return Below(s.Const("HOST_DATA_ALIGN"), "data_stride"); },
               // >= 1 (the twin) and <= data_stride (4096 here, SHM-VALID-01).
               [](const Spec& s, const Boundary& b) -> std::string {
                 return b.value >= 1 && b.value <= s.Const("HOST_DATA_ALIGN") ? "" : "CORRUPT";
               },
               SegField("slot_bytes", "SHM-VALID-01")});
  r.push_back({"SegmentHeader", "slot_desc_offset", kSub, v1, V{"SHM-VALID-01", "SHM-LAYOUT-01"},
               nullptr, corrupt, SegField("slot_desc_offset", "SHM-VALID-01")});
  // Consistency rules of SHM-VALID-01 for the default scripted segment (4 slots of 4096 bytes,
  // 4 subscribers): sub_slot_offset 1024, data_offset 4096, data_stride 4096, size 20480.
  r.push_back({"SegmentHeader", "sub_slot_offset", kSub, v1, V{"SHM-VALID-01"},
               [](const Spec& s) {
                 return Around(s.Size("SegmentHeader") + 4 * s.Size("SlotDescriptor"),
                               "256+192*slot_count");
               },
               corrupt, SegField("sub_slot_offset", "SHM-VALID-01")});
  r.push_back(
      {"SegmentHeader", "segment_size", kSub, v1, V{"SHM-VALID-01", "SHM-LAYOUT-02"},
       [](const Spec& s) { return Around(s.Const("HOST_DATA_ALIGN") * 5, "the file size"); },
       corrupt, SegField("segment_size", "SHM-VALID-01")});
  r.push_back({"SegmentHeader", "data_offset", kSub, v1, V{"SHM-VALID-01"},
               [](const Spec& s) {
                 const uint64_t a = s.Const("HOST_DATA_ALIGN");
                 std::vector<Boundary> v = Around(a, "multiple of 4096");
                 v.push_back({0, false, "below the end of the subscriber slots"});
                 v.push_back({2 * a, false, "last buffer past segment_size"});
                 return v;
               },
               corrupt, SegField("data_offset", "SHM-VALID-01")});
  r.push_back({"SegmentHeader", "data_stride", kSub, v1, V{"SHM-VALID-01"},
               [](const Spec& s) {
                 const uint64_t a = s.Const("HOST_DATA_ALIGN");
                 std::vector<Boundary> v = Around(a, ">= slot_bytes, multiple of 4096");
                 v.push_back({2 * a, false, "last buffer past segment_size"});
                 return v;
               },
               corrupt, SegField("data_stride", "SHM-VALID-01")});
  // 2.3 / 2.5: values the subscriber checks on each read.
  r.push_back({"FrameMeta", "flags", kSub, v1, V{"SHM-FMETA-03"}, nullptr,
               // Readers ignore unknown bits (SHM-FMETA-03): every value is delivered.
               [](const Spec&, const Boundary&) { return ""; }, FrameFlags});
  r.push_back({"SubscriberSlot", "state", kSub, v1, V{"SHM-SUB-04"}, nullptr,
               [](const Spec& s, const Boundary& b) -> std::string {
                 return b.value == s.Enum("subscriber_slot_state", "ACTIVE") ? "" : "EVICTED";
               },
               SlotState});
  // 3.4 / 3.6 / 3.7 / 3.8: codes in what the publisher sends.
  r.push_back({"HelloResp", "status", kSub, v1, V{"SM-SUB-01", "ERR-02", "ERR-03", "ERR-04"},
               nullptr, [](const Spec& s, const Boundary& b) { return StatusCode(s, b.value); },
               HelloRespStatus});
  r.push_back({"HelloResp", "memory_kind", kSub, v1, V{"MSG-HRESP-05"}, nullptr,
               [](const Spec& s, const Boundary& b) -> std::string {
                 return b.value == s.Enum("memory_kind", "HOST") ? "" : "UNSUPPORTED_KIND";
               },
               HelloRespKind});
  r.push_back({"HelloResp", "proto_version", kSub, v1, V{"MSG-HRESP-05"},
               [](const Spec&) { return Around(1, "the subscriber's [1, 1]"); },
               [](const Spec&, const Boundary& b) { return b.legal ? "" : "VERSION_MISMATCH"; },
               HelloRespVersion});
  // SHM-VALID-04: the slot HELLO_RESP names must be the one reserved: index below
  // max_subscribers (4 here), state ATTACHING (only slot 0 is), generation equal.
  r.push_back({"HelloResp", "subscriber_index", kSub, v1, V{"SHM-VALID-04"},
               [](const Spec&) {
                 return std::vector<Boundary>{{0, true, "the reserved slot"},
                                              {1, false, "a FREE slot"},
                                              {3, false, "max_subscribers-1, FREE"},
                                              {4, false, "max_subscribers"},
                                              {5, false, "max_subscribers+1"}};
               },
               corrupt,
               [](CaseContext& ctx, const Boundary& b, const std::string& code) {
                 ScriptedPub pub(ctx, PubParams{});
                 pub.Create();
                 Process& sub = pub.StartSub(SubArgs());
                 pub.ReadHello();
                 pub.conn().Send(pub.HelloResp().Set("subscriber_index", b.value).Encode());
                 ExpectAcceptOrDetach(ctx, pub, sub, code, "SHM-VALID-04", b);
               }});
  r.push_back({"HelloResp", "generation", kSub, v1, V{"SHM-VALID-04"},
               [](const Spec&) { return Around(1, "the slot's generation"); }, corrupt,
               [](CaseContext& ctx, const Boundary& b, const std::string& code) {
                 ScriptedPub pub(ctx, PubParams{});
                 pub.Create();
                 Process& sub = pub.StartSub(SubArgs());
                 pub.ReadHello();
                 // The first reservation makes the slot's generation 1.
                 pub.conn().Send(pub.HelloResp().Set("generation", b.value).Encode());
                 ExpectAcceptOrDetach(ctx, pub, sub, code, "SHM-VALID-04", b);
               }});
  r.push_back({"AttachResp", "status", kSub, v1, V{"SM-SUB-01", "ERR-02", "ERR-04"}, nullptr,
               [](const Spec& s, const Boundary& b) { return StatusCode(s, b.value); },
               AttachRespStatus});
  r.push_back({"ErrorMsg", "code", kSub, v1, V{"SM-SUB-01", "ERR-02", "ERR-04", "MSG-ERROR-01"},
               nullptr,
               // ERROR(OK) breaks MSG-ERROR-01 and is no code a receiver can report: PROTOCOL.
               [](const Spec& s, const Boundary& b) -> std::string {
                 const std::string c = StatusCode(s, b.value);
                 return c.empty() ? "PROTOCOL" : c;
               },
               Closing("ERROR")});
  r.push_back({"Detach", "reason", kSub, v1, V{"SM-SUB-01", "MSG-DETACH-01", "ERR-04"}, nullptr,
               // Whatever the reason, DETACH is the peer's goodbye (4.1 DETACH row).
               [](const Spec&, const Boundary&) { return "PEER_CLOSED"; }, Closing("DETACH")});
  // 3.1 / 3.3 / 3.8: what the publisher validates in what a subscriber sends.
  r.push_back({"TlvHeader", "type", kPub, v1, V{"TLV-ERR-02"}, nullptr,
               [](const Spec&, const Boundary& b) { return b.legal ? "" : "UNKNOWN_MESSAGE"; },
               TlvType});
  r.push_back({"TlvHeader", "length", kPub, v1, V{"TLV-ERR-01", "TLV-ERR-03", "MSG-HELLO-03"},
               [](const Spec& s) {
                 // The twin's 0..4096 edges plus HELLO_REQ's own range 64..4096 (3.1 table).
                 std::vector<Boundary> v;
                 std::string err;
                 Boundaries(s, s.Field("TlvHeader", "length"), &v, &err);
                 for (const Boundary& b :
                      Around(s.Msg("HELLO_REQ").min_length, "HELLO_REQ min", true)) {
                   bool dup = false;
                   for (const Boundary& x : v)
                     dup = dup || x.value == b.value;
                   if (!dup) v.push_back(b);
                 }
                 return v;
               },
               [](const Spec& s, const Boundary& b) -> std::string {
                 if (b.value > s.Const("TLV_MAX_PAYLOAD")) return "ERROR:MESSAGE_TOO_LARGE";
                 return b.value < s.Msg("HELLO_REQ").min_length ? "ERROR:PROTOCOL" : "";
               },
               TlvLength});
  r.push_back({"HelloReq", "magic", kPub, v1, V{"MSG-HELLO-02"}, nullptr,
               [](const Spec&, const Boundary& b) { return b.legal ? "" : "ERROR:PROTOCOL"; },
               HelloReqField("magic", "MSG-HELLO-02", 1)});
  r.push_back({"HelloReq", "min_proto", kPub, v1, V{"MSG-HELLO-04", "VER-NEG-01"}, nullptr,
               // With max_proto 2: 0 and anything above 2 leave no common version (and 2 with
               // a publisher of version 1 only: HelloReqMinProto).
               [](const Spec&, const Boundary& b) {
                 return b.value >= 1 && b.value <= 2 ? "" : "HELLO_RESP:VERSION_MISMATCH";
               },
               HelloReqMinProto()});
  r.push_back({"HelloReq", "max_proto", kPub, v1, V{"MSG-HELLO-04", "VER-NEG-02"}, nullptr,
               [](const Spec&, const Boundary& b) {
                 return b.value >= 1 ? "" : "HELLO_RESP:VERSION_MISMATCH";
               },
               HelloReqField("max_proto", "MSG-HELLO-04", 1)});
  r.push_back({"HelloReq", "caps", kPub, v1, V{"VER-RSV-02", "PKT-HELLO-01", "MSG-HELLO-06"},
               nullptr, [](const Spec&, const Boundary&) { return ""; },
               HelloReqField("caps", "VER-RSV-02", 2)});
  r.push_back({"ErrorMsg", "text_len", kPub, v1, V{"TLV-ERR-06", "MSG-ERROR-01"}, nullptr,
               // An ERROR is never answered with ERROR (TLV-ERR-06), whatever its length.
               [](const Spec&, const Boundary&) { return "CLOSE"; }, ErrorTextLen});
  // 10.2 / 10.3 / 10.5: the packet ring, validated by a version 2 subscriber.
  for (const char* f : {"layout_version", "magic", "header_size"}) {
    r.push_back({"PacketRingHeader", f, kSub, v2, V{"PKT-HDR-01"}, nullptr, layout,
                 RingField(f, "PKT-HDR-01")});
  }
  r.push_back({"PacketRingHeader", "capacity", kSub, v2, V{"PKT-HDR-01"}, nullptr, corrupt,
               [](CaseContext& ctx, const Boundary& b, const std::string& code) {
                 // A ring laid out consistently for the capacity when it fits in memory.
                 PubParams p = RingPubParams();
                 const bool fits = b.value <= (uint64_t{1} << 20);
                 if (fits) p.ring_capacity = b.value;
                 AtHello(
                     ctx, p,
                     [&](ScriptedPub& pub) {
                       if (!fits) pub.Ring().Set("capacity", b.value);
                     },
                     code, "PKT-HDR-01", b);
               }});
  r.push_back({"PacketRingHeader", "data_offset", kSub, v2, V{"PKT-HDR-01"}, nullptr, corrupt,
               RingField("data_offset", "PKT-HDR-01")});
  r.push_back({"PacketRingHeader", "max_packet_bytes", kSub, v2, V{"PKT-HDR-01"},
               [](const Spec&) {
                 // max_packet_bytes + 32 <= capacity / 2 (8192 here): 4064 is the edge.
                 return Below(8192 / 2 - 32, "capacity/2-32");
               },
               [](const Spec&, const Boundary& b) -> std::string {
                 return b.value >= 1 && b.value <= 8192 / 2 - 32 ? "" : "CORRUPT";
               },
               RingField("max_packet_bytes", "PKT-HDR-01")});
  r.push_back(
      {"PacketRingHeader", "segment_size", kSub, v2, V{"PKT-HDR-01"},
       [](const Spec& s) { return Around(s.Const("RING_DATA_OFFSET") + 8192, "4416+8192"); },
       corrupt, RingField("segment_size", "PKT-HDR-01")});
  r.push_back({"CodecParams", "size", kSub, v2, V{"PKT-PARAMS-03"}, nullptr, corrupt, ParamsSize});
  r.push_back({"PacketRecordHeader", "flags", kSub, v2, V{"PKT-REC-04", "PKT-REC-02"}, nullptr,
               // PAD alone mid-ring breaks PKT-REC-02 (a PAD fills to the end of the data area).
               [](const Spec& s, const Boundary& b) -> std::string {
                 if (b.value == s.Enum("packet_flags", "PAD")) return "CORRUPT";
                 return b.legal ? "" : "CORRUPT";
               },
               RecordFlags});
  return r;
}

std::string ValueText(uint64_t v) {
  return v > 0xffffff ? "0x" + Hex64(v).substr(Hex64(v).find_first_not_of('0')) : Num(v);
}

void Generate(const Spec& spec, std::vector<CaseDef>* out) {
  static const std::vector<FieldRule> rules = Rules();
  for (const FieldRule& rule : rules) {
    std::vector<Boundary> bs;
    std::string err;
    const FieldDef& f = spec.Field(rule.st, rule.field);
    if (rule.extra) {
      bs = rule.extra(spec);
      if (!f.values.empty()) {
        std::vector<Boundary> twin;
        if (Boundaries(spec, f, &twin, &err)) {
          for (const Boundary& b : twin) {
            bool dup = false;
            for (const Boundary& x : bs)
              dup = dup || x.value == b.value;
            if (!dup) bs.push_back(b);
          }
        }
      }
    } else if (!Boundaries(spec, f, &bs, &err)) {
      // A constraint the harness cannot read: one failing case says so.
      CaseDef d{FieldCasePrefix(spec, rule.st, rule.field) + "unreadable",
                err,
                rule.reqs,
                rule.role,
                rule.needs,
                nullptr};
      d.fn = [err](CaseContext& ctx) {
        ctx.Fail("HARNESS", "a readable \"values\"", err);
      };
      out->push_back(std::move(d));
      continue;
    }
    for (const Boundary& b : bs) {
      const std::string code = rule.code(spec, b);
      CaseDef d;
      d.id = FieldCasePrefix(spec, rule.st, rule.field) + ValueText(b.value);
      d.title = rule.st + "." + rule.field + " = " + ValueText(b.value) + " (" + b.label + "): " +
                (code.empty()      ? "accepted"
                 : code == "CLOSE" ? "closed without a reply"
                                   : "refused: " + code) +
                " by the IUT " + RoleName(rule.role);
      d.reqs = rule.reqs;
      d.role = rule.role;
      d.needs = rule.needs;
      const FieldRule* rp = &rule;
      d.fn = [rp, b, code](CaseContext& ctx) {
        ctx.Note(rp->st + "." + rp->field + " = " + ValueText(b.value) + " (" + b.label + ")");
        rp->run(ctx, b, code);
      };
      out->push_back(std::move(d));
    }
  }
}

const GeneratorRegistrar kFields(&Generate);

// RES-KEY-01 at its edges, for both adapters: key lengths around 1 and MAX_KEY_LENGTH, a leading
// '.', a character outside [A-Za-z0-9_.-]. A refused key is INVALID_ARGUMENT with nothing created;
// an accepted one gets past the check (a publisher becomes ready; a subscriber with no publisher
// on the key reports NOT_FOUND, not INVALID_ARGUMENT).
void GenerateKeys(const Spec& spec, std::vector<CaseDef>* out) {
  const uint64_t max = spec.Const("MAX_KEY_LENGTH");
  struct KeyCase {
    std::string label;
    size_t length;  // length cases: the case's own key cut or padded with 'k' to this length
    std::string prefix, middle;  // character cases: the case's key with these around it
    bool legal;
  };
  const std::vector<KeyCase> keys = {{"length=0", 0, "", "", false},
                                     {"length=1", 1, "", "", true},
                                     {"length=" + Num(max - 1), max - 1, "", "", true},
                                     {"length=" + Num(max), max, "", "", true},
                                     {"length=" + Num(max + 1), max + 1, "", "", false},
                                     {"leading-dot", 12, ".", "", false},
                                     {"inner-dot", 12, "", ".", true},
                                     {"slash", 12, "", "/", false},
                                     {"space", 12, "", " ", false}};
  for (Role role : {Role::kPublisher, Role::kSubscriber}) {
    for (const KeyCase& k : keys) {
      CaseDef d;
      d.id = std::string("0/key-") + (role == Role::kPublisher ? "pub-" : "sub-") + k.label;
      d.title = std::string("the ") + RoleName(role) + " adapter given a key (" + k.label +
                "): " + (k.legal ? "accepted" : "INVALID_ARGUMENT, nothing created");
      d.reqs = {"RES-KEY-01"};
      d.role = role;
      d.needs = Needs{1, "host", ""};
      d.fn = [role, k](CaseContext& ctx) {
        // A key of its own per case: the case's key, cut or padded to the length.
        std::string key = ctx.key();
        if (k.prefix.empty() && k.middle.empty()) {
          key.resize(k.length, 'k');
        } else {
          key = k.prefix + key + k.middle + "k";  // the character under test always kept
        }
        ctx.Note("key \"" + key + "\"");
        const std::string seg = "/dev/shm/cuframes-" + key;
        if (role == Role::kPublisher) {
          Process& p = ctx.StartPublisher({"--key", key, "--frames", "0", "--linger-ms", "0"});
          if (k.legal) {
            // A one-character key may be live in another run on this host: KEY_IN_USE also
            // shows the key got past RES-KEY-01's check.
            size_t from = 0;
            const nlohmann::json* e = p.WaitFor(
                [](const nlohmann::json& j) {
                  const std::string ev = j.value("event", "");
                  return ev == "ready" || ev == "error";
                },
                In(5000), &from);
            const bool ok = e && ((*e)["event"] == "ready" ||
                                  e->value("code", uint64_t{0}) == ctx.spec().Err("KEY_IN_USE"));
            ctx.Expect(ok, "RES-KEY-01", "the publisher accepts the key (ready)",
                       e ? e->dump() : "nothing; adapter " + p.StatusText());
            p.Terminate(3000);
            return;
          }
          ExpectAdapterError(ctx, p, "INVALID_ARGUMENT", "RES-KEY-01", 5000);
        } else {
          Process& p = ctx.StartSubscriber(
              {"--key", key, "--frames", "1", "--timeout-ms", "500", "--kind", "host"});
          ExpectAdapterError(ctx, p, k.legal ? "NOT_FOUND" : "INVALID_ARGUMENT", "RES-KEY-01",
                             5000);
        }
        if (!k.legal && !key.empty() && key.find('/') == std::string::npos) {
          ctx.Expect(access(seg.c_str(), F_OK) != 0, "RES-KEY-01",
                     "nothing created for the refused key", seg + " exists");
        }
      };
      out->push_back(std::move(d));
    }
  }
}

const GeneratorRegistrar kKeys(&GenerateKeys);

}  // namespace
}  // namespace cuframes::conform
