// sub_handshake.cc: cases for an IUT subscriber's handshake and state machine (spec 3, 4.1, 6,
// 8), played by the scripted publisher.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kSub = Role::kSubscriber;

std::vector<std::string> SubArgs(uint64_t frames) {
  return {"--frames", std::to_string(frames), "--timeout-ms", "3000", "--kind", "host"};
}

// Expects DETACH(reason = code) followed by close from the subscriber.
void ExpectDetach(CaseContext& ctx, Conn& c, const std::string& code, const std::string& req) {
  TlvMsg m = RecvOrFail(ctx, c, req, "DETACH(" + code + ")", 4000);
  ctx.Expect(ctx.spec().MsgName(m.type) == "DETACH" &&
                 PayloadField(ctx.spec(), "Detach", m, "reason") == ctx.spec().Err(code),
             req, "DETACH(reason " + code + ")", Describe(ctx.spec(), m), m.raw);
  ExpectCloseOnly(ctx, c, "MSG-DETACH-01", 3000);
}

// Expects ERROR(code) + close from the subscriber and an error event with that same code from its
// adapter: a peer reports the code it sent for a framing error (TLV-ERR-08, the error column of
// section 4).
void ExpectSubError(CaseContext& ctx, ScriptedPub& pub, Process& sub, const std::string& code,
                    const std::string& req) {
  ExpectErrorClose(ctx, pub.conn(), code, req);
  WaitExitOrFail(ctx, sub, req, 4000);
  const nlohmann::json* e = FindError(sub);
  ExpectErrorName(ctx, e);
  const uint64_t got = e ? e->value("code", uint64_t{999}) : 999;
  // The code a STATE refusal reports is the state table's (SM-SUB-01); a framing error's is the
  // code sent (TLV-ERR-08).
  ctx.Expect(got == ctx.spec().Err(code), code == "STATE" ? req : "TLV-ERR-08",
             "an error event with code " + std::to_string(ctx.spec().Err(code)) + " (" + code +
                 ", the code it sent)",
             e ? e->dump() : "no error event; adapter " + sub.StatusText());
  ctx.Expect(sub.exit_code() != 0, req, "a nonzero exit status", sub.StatusText());
}

CF_CASE(SubHappy, "5.3/subscriber-reads-in-order",
        "the subscriber reads and releases 6 frames through 2 slots, writes only its own fields "
        "and unlinks nothing",
        (std::vector<std::string>{"MSG-HELLO-01", "MSG-ATTACH-01", "SHM-SUB-01", "ACK-READ-01",
                                  "ACK-READ-03", "ACK-REL-01", "ACK-REL-02", "ACK-REL-03",
                                  "ACK-HOST-01", "RES-CLOSE-02", "CONF-SUB-01", "KIND-02",
                                  "SM-SUB-01", "SHM-VALID-01", "RES-NAME-01", "RES-NAME-02",
                                  "TLV-FRAME-01", "VER-RSV-01", "ADP-EVENT-03"}),
        kSub, {}) {
  PubParams p;
  p.slot_count = 2;
  ScriptedPub pub(ctx, p);
  Process& sub = pub.StartAttached(SubArgs(6));
  // Snapshot every byte the subscriber must not write (SHM-SUB-01).
  std::vector<uint8_t> before(pub.segment()->data(), pub.segment()->data() + pub.segment()->size());
  for (uint64_t n = 1; n <= 6; ++n)
    pub.Publish();
  pub.ExpectFrames(sub, 1, 6, p.slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
  ctx.Expect(sub.exit_code() == 0, "CONF-SUB-01", "subscriber adapter exit 0", sub.StatusText());
  // The subscriber may write only ack_seq, flags, ack_event of slot 0 and the header's ack_futex;
  // the scripted publisher itself changed write_seq, frame_futex, ack_waiting, the metas and the
  // buffers, so compare everything else.
  const Spec& s = ctx.spec();
  std::vector<uint8_t> after(pub.segment()->data(), pub.segment()->data() + pub.segment()->size());
  auto allowed = [&](size_t off) {
    const size_t h = s.Off("SegmentHeader", "write_seq");
    if (off >= h && off < s.Off("SegmentHeader", "reserved2")) return true;  // our hot fields
    // Header fields the twin marks subscriber-written (ack_futex, the waiter counts), reserved
    // bytes excluded.
    for (const FieldDef& fd : s.Struct("SegmentHeader").fields) {
      if (fd.writer == "subscriber" && fd.type != "reserved" && off >= fd.offset &&
          off < fd.offset + fd.size) {
        return true;
      }
    }
    const size_t descs = s.Size("SegmentHeader");
    if (off >= descs && off < descs + s.Size("SlotDescriptor") * p.slot_count) return true;
    if (off >= pub.data_offset()) return true;
    const size_t slot0 = s.Size("SegmentHeader") + s.Size("SlotDescriptor") * p.slot_count;
    for (const char* f : {"ack_seq", "flags", "ack_event"}) {
      const FieldDef& fd = s.Field("SubscriberSlot", f);
      if (off >= slot0 + fd.offset && off < slot0 + fd.offset + fd.size) return true;
    }
    return false;
  };
  for (size_t i = 0; i < before.size(); ++i) {
    if (before[i] != after[i] && !allowed(i)) {
      const size_t from = i & ~size_t{15};
      ctx.Fail("SHM-SUB-01",
               "the subscriber writes only its slot's ack_seq/flags/ack_event and "
               "ack_futex",
               "byte " + std::to_string(i) + " changed from " + std::to_string(before[i]) + " to " +
                   std::to_string(after[i]),
               std::span<const uint8_t>(after).subspan(from, 32), from);
    }
  }
  ctx.Expect(pub.SubSlot(0).Get("ack_seq") == 6, "ACK-REL-01",
             "ack_seq 6 after releasing every frame",
             std::to_string(pub.SubSlot(0).Get("ack_seq")));
  TlvMsg m = RecvOrFail(ctx, pub.conn(), "SM-SUB-01", "DETACH(OK) at local close", 3000);
  ctx.Expect(s.MsgName(m.type) == "DETACH" && PayloadField(s, "Detach", m, "reason") == 0,
             "SM-SUB-01", "DETACH(reason 0) on LOCAL_CLOSE", Describe(s, m), m.raw);
  ctx.Expect(access(ctx.SegmentPath().c_str(), F_OK) == 0, "RES-CLOSE-02",
             "the segment still exists after the subscriber exits", "unlinked");
  ctx.Expect(access(ctx.SocketPath().c_str(), F_OK) == 0, "RES-CLOSE-02",
             "the socket file still exists after the subscriber exits", "unlinked");
}

// RES-NAME-01 with the table's default directory, the subscriber's side of the two
// 1.1/publisher-*-socket-dir cases: the scripted publisher listens at /tmp/cuframes-K.sock.
void SubscriberDefaultSocketDir(CaseContext& ctx, bool set_empty) {
  ctx.UseDefaultSocketDir(set_empty);
  PubParams p;
  ScriptedPub pub(ctx, p);
  Process& sub = pub.StartAttached(SubArgs(2));
  for (uint64_t n = 1; n <= 2; ++n)
    pub.Publish();
  pub.ExpectFrames(sub, 1, 2, p.slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
  ctx.Expect(sub.exit_code() == 0, "CONF-SUB-01", "subscriber adapter exit 0", sub.StatusText());
}

CF_CASE(SubDefaultDirUnset, "1.1/subscriber-default-socket-dir",
        "with CUFRAMES_SOCKET_DIR unset the subscriber connects to /tmp/cuframes-K.sock",
        (std::vector<std::string>{"RES-NAME-01", "RES-NAME-02"}), kSub, {}) {
  SubscriberDefaultSocketDir(ctx, false);
}

CF_CASE(SubDefaultDirEmpty, "1.1/subscriber-empty-socket-dir",
        "with CUFRAMES_SOCKET_DIR set but empty the subscriber connects to /tmp/cuframes-K.sock",
        (std::vector<std::string>{"RES-NAME-01", "RES-NAME-02"}), kSub, {}) {
  SubscriberDefaultSocketDir(ctx, true);
}

// KIND-07's last sentence on a HOST connection: descriptors arrive with HELLO_RESP(OK) and with
// ATTACH_RESP, where none belong. A subscriber that received them with recvmsg and kept them
// leaks one descriptor per message per connection; one that never asks for control data lets the
// kernel drop them. Either way the attachment must go on as if nothing had been sent.
CF_CASE(SubStrayFds, "7/subscriber-closes-stray-descriptors",
        "descriptors passed with HELLO_RESP(OK, HOST) and ATTACH_RESP are closed unused, and "
        "frames still flow",
        (std::vector<std::string>{"KIND-07"}), kSub, {}) {
  PubParams p;
  ScriptedPub pub(ctx, p);
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(2));
  StrayFds with_hello(ctx, 3), with_attach(ctx, 2);
  pub.ReadHello();
  pub.conn().SendWithFds(pub.HelloResp().Encode(), with_hello.fds);
  pub.ReadAttach();
  pub.SendAttachOk(with_attach.fds);
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, p.slot_bytes);  // both messages are behind it: judged now
  ExpectNoStrayFds(ctx, sub.pid(), "KIND-07", "HELLO_RESP(OK, HOST) and ATTACH_RESP");
  pub.Publish();
  pub.ExpectFrames(sub, 1, 2, p.slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
  ctx.Expect(sub.exit_code() == 0, "CONF-SUB-01", "subscriber adapter exit 0", sub.StatusText());
}

void BadSegment(CaseContext& ctx, const std::function<void(ScriptedPub&)>& damage,
                const std::string& code, const std::string& req, PubParams params = {}) {
  ScriptedPub pub(ctx, params);
  pub.Create();
  damage(pub);
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Encode());
  ExpectDetach(ctx, pub.conn(), code, req);
  ExpectAdapterError(ctx, sub, code, req, 4000);
}

CF_CASE(LayoutVersion, "2.2/unknown-layout-version",
        "a segment with layout_version 2 is refused with UNSUPPORTED_LAYOUT (DETACH + error)",
        (std::vector<std::string>{"SHM-HDR-01", "VER-RSV-03", "SM-SUB-01", "ERR-03"}), kSub, {}) {
  BadSegment(
      ctx, [](ScriptedPub& p) { p.Header().Set("layout_version", 2); }, "UNSUPPORTED_LAYOUT",
      "SHM-HDR-01");
}

CF_CASE(BadSegMagic, "2.2/wrong-segment-magic",
        "a segment with a wrong magic is refused with UNSUPPORTED_LAYOUT",
        (std::vector<std::string>{"SHM-HDR-01"}), kSub, {}) {
  BadSegment(
      ctx, [](ScriptedPub& p) { p.Header().Set("magic", 0x46554352); }, "UNSUPPORTED_LAYOUT",
      "SHM-HDR-01");
}

CF_CASE(BadHeaderSize, "2.2/wrong-header-size",
        "a segment with header_size 512 is refused with UNSUPPORTED_LAYOUT",
        (std::vector<std::string>{"SHM-HDR-01"}), kSub, {}) {
  BadSegment(
      ctx, [](ScriptedPub& p) { p.Header().Set("header_size", 512); }, "UNSUPPORTED_LAYOUT",
      "SHM-HDR-01");
}

CF_CASE(BadSlotCount, "2.8/slot-count-out-of-range",
        "a segment with slot_count 1 is refused with CORRUPT",
        (std::vector<std::string>{"SHM-VALID-01"}), kSub, {}) {
  BadSegment(
      ctx, [](ScriptedPub& p) { p.Header().Set("slot_count", 1); }, "CORRUPT", "SHM-VALID-01");
}

CF_CASE(BadSegSize, "2.8/segment-size-mismatch",
        "a segment whose segment_size differs from the file size is refused with CORRUPT",
        (std::vector<std::string>{"SHM-VALID-01", "SHM-LAYOUT-02"}), kSub, {}) {
  BadSegment(
      ctx,
      [](ScriptedPub& p) { p.Header().Set("segment_size", p.Header().Get("segment_size") + 4096); },
      "CORRUPT", "SHM-VALID-01");
}

// The other side of SHM-LAYOUT-02: a segment file one page larger than a segment_size that is
// otherwise consistent. A subscriber that checks only that the segment fits its file (memory-safe,
// and wrong) accepts it.
CF_CASE(SegFileLarger, "2.8/segment-file-larger-than-segment-size",
        "a segment file one page larger than its segment_size is refused with CORRUPT",
        (std::vector<std::string>{"SHM-VALID-01", "SHM-LAYOUT-02"}), kSub, {}) {
  BadSegment(
      ctx,
      [&ctx](ScriptedPub& p) {
        const uint64_t grown = p.Header().Get("segment_size") + 4096;
        if (truncate(ctx.SegmentPath().c_str(), static_cast<off_t>(grown)) != 0) {
          ctx.Fail("HARNESS", "the segment file grows by 4096 bytes", std::strerror(errno));
        }
      },
      "CORRUPT", "SHM-VALID-01");
}

CF_CASE(BadStride, "2.8/data-stride-too-small",
        "a HOST segment with data_stride < slot_bytes is refused with CORRUPT",
        (std::vector<std::string>{"SHM-VALID-01"}), kSub, {}) {
  BadSegment(
      ctx, [](ScriptedPub& p) { p.Header().Set("slot_bytes", 8192); }, "CORRUPT", "SHM-VALID-01");
}

// The alignment rule of SHM-VALID-01 on its own. In the default segment a data_stride of 4097
// also puts the last buffer past segment_size, which a reader refuses whether or not it checks
// the alignment: here the segment has a page after its last buffer (legal, W4), so 4097 breaks
// nothing but the "multiple of 4096".
CF_CASE(StrideUnaligned, "2.8/data-stride-not-page-aligned",
        "a HOST segment whose data_stride is 4097 (>= slot_bytes, the last buffer inside "
        "segment_size, not a multiple of 4096) is refused with CORRUPT",
        (std::vector<std::string>{"SHM-VALID-01"}), kSub, {}) {
  PubParams p;
  p.tail_bytes = 4096;
  BadSegment(
      ctx, [](ScriptedPub& pub) { pub.Header().Set("data_stride", 4097); }, "CORRUPT",
      "SHM-VALID-01", p);
}

// MSG-HRESP-06: HELLO_RESP caps bits the negotiated version does not define are ignored. Bit 0
// (PACKET_RING_PRESENT) is clear, every other bit set: a subscriber that reads any of them as a
// ring, or refuses them, breaks a later version that gives one a meaning.
CF_CASE(RespUndefinedCaps, "3.4/hello-resp-undefined-caps-ignored",
        "a version 2 HELLO_RESP whose caps has every bit but PACKET_RING_PRESENT set (0xfffffffe) "
        "is taken as no ring: the subscriber attaches and delivers frames 1..3",
        (std::vector<std::string>{"MSG-HRESP-06"}), kSub, (Needs{2, "host", ""})) {
  PubParams p;
  p.proto = 2;
  ScriptedPub pub(ctx, p);
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(3));
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Set("proto_version", 2).Set("caps", 0xfffffffeu).Encode());
  pub.ReadAttach();
  pub.SendAttachOk();
  for (int i = 0; i < 3; ++i)
    pub.Publish();
  pub.ExpectFrames(sub, 1, 3, pub.params().slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
}

// MSG-HELLO-06's subscriber side: capped at version 2, a subscriber sets only version 2's bits
// (WANT_PACKETS), not WAKE_FORWARD, which only version 3 defines. ReadHello judges the bits.
CF_CASE(CappedSubCaps, "3.3/hello-caps-of-a-capped-subscriber",
        "a subscriber run with --max-proto 2 sets no HELLO_REQ caps bit version 2 does not "
        "define (WAKE_FORWARD is version 3's)",
        (std::vector<std::string>{"MSG-HELLO-06"}), kSub, (Needs{3, "host", "max-proto"})) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub =
      pub.StartSub({"--frames", "1", "--max-proto", "2", "--timeout-ms", "3000", "--kind", "host"});
  const TlvMsg m = pub.ReadHello();
  ctx.Expect(PayloadField(ctx.spec(), "HelloReq", m, "max_proto") == 2, "VER-NEG-05",
             "HELLO_REQ max_proto 2 under --max-proto 2",
             std::to_string(PayloadField(ctx.spec(), "HelloReq", m, "max_proto")), m.raw);
  pub.conn().Send(pub.HelloResp().Encode());
  pub.ReadAttach();
  pub.SendAttachOk();
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
}

CF_CASE(SegReservedJunk, "6.3/segment-reserved-nonzero",
        "nonzero reserved bytes in the segment header and HELLO_RESP are ignored; a 100-byte "
        "HELLO_RESP is accepted",
        (std::vector<std::string>{"VER-RSV-02", "MSG-HRESP-04"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  // We write the junk ourselves: the observer must not blame the IUT subscriber for it.
  ctx.observer().Disable(kObsReserved);
  for (const char* r : {"reserved0", "reserved1", "reserved2", "reserved3"}) {
    auto b = pub.Header().Bytes(r);
    std::fill(b.begin(), b.end(), 0xa5);
  }
  Process& sub = pub.StartSub(SubArgs(2));
  pub.ReadHello();
  MessageBuilder resp = pub.HelloResp();
  resp.payload().resize(100, 0xee);
  auto rsv = StructView(ctx.spec(), "HelloResp", resp.payload()).Bytes("reserved0");
  std::fill(rsv.begin(), rsv.end(), 0x77);
  pub.conn().Send(resp.Encode());
  pub.ReadAttach();
  pub.SendAttachOk();
  pub.Publish();
  pub.Publish();
  pub.ExpectFrames(sub, 1, 2, pub.params().slot_bytes);
}

CF_CASE(VersionOutside, "3.4/hello-resp-version-outside",
        "a HELLO_RESP with proto_version 7 (outside the subscriber's range) is refused with "
        "DETACH(VERSION_MISMATCH)",
        (std::vector<std::string>{"MSG-HRESP-05"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Set("proto_version", 7).Encode());
  ExpectDetach(ctx, pub.conn(), "VERSION_MISMATCH", "MSG-HRESP-05");
  ExpectAdapterError(ctx, sub, "VERSION_MISMATCH", "MSG-HRESP-05", 4000);
}

CF_CASE(KindNotOffered, "3.4/hello-resp-kind-not-offered",
        "a HELLO_RESP naming memory kind CUDA_VMM_FD (not offered) is refused with "
        "UNSUPPORTED_KIND",
        (std::vector<std::string>{"MSG-HRESP-05", "KIND-05"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(
      pub.HelloResp().Set("memory_kind", ctx.spec().Enum("memory_kind", "CUDA_VMM_FD")).Encode());
  ExpectDetach(ctx, pub.conn(), "UNSUPPORTED_KIND", "MSG-HRESP-05");
  ExpectAdapterError(ctx, sub, "UNSUPPORTED_KIND", "MSG-HRESP-05", 4000);
}

CF_CASE(SubOversized, "3.2/subscriber-oversized-length",
        "a publisher message announcing 5000 bytes gets ERROR(MESSAGE_TOO_LARGE) from the "
        "subscriber, which reports MESSAGE_TOO_LARGE",
        (std::vector<std::string>{"TLV-ERR-01", "TLV-FRAME-03", "SM-SUB-01", "TLV-ERR-08"}), kSub,
        {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(EncodeTlv(2, {}, 0, 5000));
  ExpectSubError(ctx, pub, sub, "MESSAGE_TOO_LARGE", "TLV-ERR-01");
}

CF_CASE(SubUnknownType, "3.2/subscriber-unknown-type",
        "a publisher message of type 42 gets ERROR(UNKNOWN_MESSAGE) from the subscriber, which "
        "reports UNKNOWN_MESSAGE",
        (std::vector<std::string>{"TLV-ERR-02", "SM-SUB-01", "TLV-ERR-08"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  std::vector<uint8_t> payload(8, 0);
  pub.conn().Send(EncodeTlv(42, payload));
  ExpectSubError(ctx, pub, sub, "UNKNOWN_MESSAGE", "TLV-ERR-02");
}

CF_CASE(SubBadLength, "3.2/subscriber-bad-length",
        "an ATTACH_RESP of length 20 gets ERROR(PROTOCOL) from the subscriber",
        (std::vector<std::string>{"TLV-ERR-03", "TLV-FRAME-04"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Encode());
  pub.ReadAttach();
  std::vector<uint8_t> payload(20, 0);
  pub.conn().Send(EncodeTlv(4, payload));
  ExpectSubError(ctx, pub, sub, "PROTOCOL", "TLV-ERR-03");
}

CF_CASE(SubAttachRespEarly, "4.1/attach-resp-before-hello-resp",
        "ATTACH_RESP while the subscriber waits for HELLO_RESP gets ERROR(STATE)",
        (std::vector<std::string>{"SM-SUB-01"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  MessageBuilder b(ctx.spec(), "ATTACH_RESP");
  b.Set("start_seq", 1);
  pub.conn().Send(b.Encode());
  ExpectSubError(ctx, pub, sub, "STATE", "SM-SUB-01");
}

CF_CASE(SubWrongDirection, "4.1/wrong-direction",
        "a HELLO_REQ sent to a subscriber gets ERROR(STATE)",
        (std::vector<std::string>{"SM-SUB-01"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  ScriptedSub tmp(ctx);
  pub.conn().Send(tmp.HelloBytes({}));
  ExpectSubError(ctx, pub, sub, "STATE", "SM-SUB-01");
}

CF_CASE(SubPing, "3.9/subscriber-answers-ping",
        "PING while the subscriber waits for HELLO_RESP and when ACTIVE is answered with PONG",
        (std::vector<std::string>{"MSG-PING-01", "SM-SUB-01"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  for (uint64_t nonce : {0x1122334455667788ULL}) {
    MessageBuilder b(ctx.spec(), "PING");
    b.Set("nonce", nonce);
    pub.conn().Send(b.Encode());
    TlvMsg m = RecvOrFail(ctx, pub.conn(), "MSG-PING-01", "PONG", 1000);
    ctx.Expect(ctx.spec().MsgName(m.type) == "PONG" &&
                   PayloadField(ctx.spec(), "Pong", m, "nonce") == nonce,
               "MSG-PING-01", "PONG with the same nonce", Describe(ctx.spec(), m), m.raw);
  }
  pub.conn().Send(pub.HelloResp().Encode());
  pub.ReadAttach();
  pub.SendAttachOk();
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
}

// TLV-ERR-09 from the subscriber's side: a publisher's PING stopped after 5 bytes, past
// HANDSHAKE_TIMEOUT_MS, is no error; the frame published meanwhile is read, and the PING is
// answered once it completes.
CF_CASE(SubStalledAfterHandshake, "3.2/subscriber-message-stalled-after-handshake",
        "after the handshake, a PING stopped after 5 bytes for HANDSHAKE_TIMEOUT_MS + 500 ms is no "
        "error: the subscriber reads the frame published meanwhile, sends nothing, and answers "
        "the PING with PONG once its last byte arrives",
        (std::vector<std::string>{"TLV-ERR-09", "MSG-PING-01", "SM-SUB-03"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(2));
  StalledPing ping(ctx, pub.conn(), 0xfedcba9876543210ULL);
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
  ping.Finish();
  pub.Publish();
  pub.ExpectFrames(sub, 1, 2, pub.params().slot_bytes);  // frame 1 again, then frame 2
}

CF_CASE(SubHandshakeTimeout, "4.1/handshake-timeout",
        "a publisher that never answers HELLO_REQ makes the subscriber report TIMEOUT after "
        "HANDSHAKE_TIMEOUT_MS",
        (std::vector<std::string>{"SM-SUB-02"}), kSub, {}) {
  const int timeout = static_cast<int>(ctx.spec().Const("HANDSHAKE_TIMEOUT_MS"));
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  const auto t0 = Clock::now();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  // The subscriber connected just before its HELLO_REQ arrived: its deadline is about
  // HANDSHAKE_TIMEOUT_MS from here, so the error event must come about then, not a poll period
  // later (500 ms of slack for scheduling and the adapter's output).
  const auto hello_at = Clock::now();
  size_t from = 0;
  const nlohmann::json* e = sub.WaitEvent("error", In(timeout + 2500), &from);
  const auto after_hello =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - hello_at).count();
  ctx.Expect(
      e != nullptr && after_hello <= timeout + 500, "SM-SUB-02",
      "an error event within HANDSHAKE_TIMEOUT_MS (+500) of the HELLO_REQ",
      (e ? e->dump() : std::string("none")) + " after " + std::to_string(after_hello) + " ms");
  ExpectAdapterError(ctx, sub, "TIMEOUT", "SM-SUB-02", 2500);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ctx.Expect(took.count() >= timeout - 250, "SM-SUB-02", "no TIMEOUT before HANDSHAKE_TIMEOUT_MS",
             std::to_string(took.count()) + " ms");
}

CF_CASE(SubOneByte, "3.1/subscriber-one-byte-at-a-time",
        "HELLO_RESP and ATTACH_RESP sent one byte per write are reassembled",
        (std::vector<std::string>{"TLV-FRAME-02"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().SendPaced(pub.HelloResp().Encode(), 1, 1);
  pub.ReadAttach();
  const uint64_t start = pub.Header().Get("write_seq") + 1;
  pub.SubSlot(0).Set("start_seq", start);
  pub.SubSlot(0).Set("state", ctx.spec().Enum("subscriber_slot_state", "ACTIVE"));
  MessageBuilder b(ctx.spec(), "ATTACH_RESP");
  b.Set("start_seq", start);
  pub.conn().SendPaced(b.Encode(), 1, 1);
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
}

CF_CASE(SubErrorEvicted, "3.8/subscriber-gets-error",
        "ERROR(EVICTED) makes the subscriber report EVICTED and close without answering ERROR",
        (std::vector<std::string>{"TLV-ERR-06", "SM-SUB-01", "ERR-03"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(3));
  pub.Publish();
  pub.conn().Send(EncodeError(ctx.spec(), ctx.spec().Err("EVICTED"), "harness evicts you"));
  pub.conn().ShutdownWrite();  // MSG-ERROR-02: the sender closes after ERROR
  ExpectCloseOnly(ctx, pub.conn(), "TLV-ERR-06", 3000);
  ExpectAdapterError(ctx, sub, "EVICTED", "SM-SUB-01", 4000, true);
}

CF_CASE(SubMalformedError, "3.8/subscriber-gets-malformed-error",
        "an ERROR with a framing error (text_len not length - 8) is not answered; the subscriber "
        "closes and reports PROTOCOL",
        (std::vector<std::string>{"TLV-ERR-03", "TLV-ERR-06", "TLV-ERR-08"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(3));
  pub.Publish();
  std::vector<uint8_t> m = EncodeError(ctx.spec(), ctx.spec().Err("EVICTED"), "harness evicts you");
  m[12] = static_cast<uint8_t>(m[12] + 1);  // text_len (byte 12) one above length - 8
  pub.conn().Send(m);
  pub.conn().ShutdownWrite();
  ExpectCloseOnly(ctx, pub.conn(), "TLV-ERR-03", 3000);
  ExpectAdapterError(ctx, sub, "PROTOCOL", "TLV-ERR-08", 4000, true);
}

CF_CASE(SubUnknownCode, "8/unknown-error-code",
        "ERROR with code 999 (not in the table) is reported as PROTOCOL",
        (std::vector<std::string>{"ERR-02"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(EncodeError(ctx.spec(), 999, "what is this"));
  pub.conn().ShutdownWrite();
  ExpectCloseOnly(ctx, pub.conn(), "TLV-ERR-06", 3000);
  ExpectAdapterError(ctx, sub, "PROTOCOL", "ERR-02", 4000);
}

CF_CASE(SubPublisherDetach, "3.7/publisher-detach",
        "DETACH from the publisher makes a waiting subscriber report PEER_CLOSED",
        (std::vector<std::string>{"MSG-DETACH-01", "SM-SUB-01"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(2));
  pub.Publish();
  MessageBuilder d(ctx.spec(), "DETACH");
  pub.conn().Send(d.Encode());
  pub.conn().ShutdownWrite();  // MSG-DETACH-01: the sender of DETACH closes the connection
  ExpectAdapterError(ctx, sub, "PEER_CLOSED", "MSG-DETACH-01", 4000, true);
}

CF_CASE(SubAttachRespError, "4.1/attach-resp-error",
        "ATTACH_RESP with status FULL ends the handshake: the subscriber reports FULL",
        (std::vector<std::string>{"SM-SUB-01", "ERR-03"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Encode());
  pub.ReadAttach();
  MessageBuilder b(ctx.spec(), "ATTACH_RESP");
  b.Set("status", ctx.spec().Err("FULL"));
  pub.conn().Send(b.Encode());
  pub.conn().Close();
  ExpectAdapterError(ctx, sub, "FULL", "SM-SUB-01", 4000);
}

}  // namespace
}  // namespace cuframes::conform
