// pub_handshake.cc: cases for an IUT publisher's handshake, version negotiation, key handling
// and lifecycle (spec sections 0, 1, 3.3-3.9, 4.2, 6, 7), played by the scripted subscriber.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string_view>

#include "common.h"
#include "observer.h"

namespace cuframes::conform {
namespace {

constexpr Role kPub = Role::kPublisher;

// The baseline: a full session with every publisher-written byte checked against the twin.
CF_CASE(FramesHappy, "5.1/frames-in-order",
        "attach, read and release 6 frames through 2 slots, then a clean publisher shutdown",
        (std::vector<std::string>{
            "RES-NAME-01",   "RES-NAME-02",  "RES-PERM-01",  "RES-LIVE-01",   "RES-CREATE-04",
            "RES-CREATE-05", "RES-CLOSE-01", "RES-CLOSE-03", "SHM-LAYOUT-01", "SHM-LAYOUT-02",
            "SHM-HDR-01",    "SHM-HDR-02",   "SHM-HDR-04",   "SHM-HDR-05",    "SHM-SLOT-02",
            "SHM-SLOT-03",   "SHM-ALIGN-01", "SHM-ALIGN-02", "SHM-SUB-02",    "SHM-FMETA-01",
            "SHM-FMETA-02",  "SHM-FMETA-03", "MSG-HRESP-01", "MSG-ARESP-01",  "MSG-DETACH-01",
            "ACK-COMMIT-01", "ACK-HOST-01",  "VER-RSV-01",   "KIND-01",       "KIND-02",
            "CONF-PUB-01",   "TLV-FRAME-01", "SM-PUB-01",    "ERR-01",        "ADP-EVENT-01",
            "ADP-EVENT-02",  "ADP-EXIT-01",  "ADP-EVENT-03"}),
        kPub, {}) {
  std::vector<std::string> args = PubArgs(ctx, 6);
  args.back() = "300";  // linger: shut down while we are still attached, to see RES-CLOSE-01
  Process& pub = StartPub(ctx, args);
  auto sub = GoodSubscriber(ctx, pub, 6);
  // RES-CLOSE-01: DETACH(OK) to every connected subscriber, then state CLOSED and a futex bump.
  // Judged from the wire and shared memory alone: the futex is sampled once frame 6 is read
  // (still READY: the publisher lingers while we are attached), whatever the adapter prints.
  const uint32_t futex_before = static_cast<uint32_t>(sub->Header().Get("frame_futex"));
  TlvMsg m = RecvOrFail(ctx, sub->conn(), "RES-CLOSE-01", "DETACH(OK) at publisher shutdown", 5000);
  ctx.Expect(ctx.spec().MsgName(m.type) == "DETACH" &&
                 PayloadField(ctx.spec(), "Detach", m, "reason") == 0,
             "RES-CLOSE-01", "DETACH(reason OK)", Describe(ctx.spec(), m), m.raw);
  ExpectCloseOnly(ctx, sub->conn(), "MSG-DETACH-01", 3000);
  ExpectCleanExit(ctx, pub);
  ExpectPublisherTimeline(ctx, pub, 6);
  StructView h = sub->Header();
  ctx.Expect(h.Get("state") == ctx.spec().Enum("segment_state", "CLOSED"), "RES-CLOSE-01",
             "segment state CLOSED at shutdown", std::to_string(h.Get("state")), h.All());
  ctx.Expect(static_cast<uint32_t>(h.Get("frame_futex")) != futex_before, "RES-CLOSE-01",
             "frame_futex incremented at CLOSED", "unchanged");
  ExpectNoLeftovers(ctx, ctx.key());
}

// RES-NAME-02 with the table's default directory. Every other case gives the adapters a private
// CUFRAMES_SOCKET_DIR, so without these two a publisher that ignored the default (or read an empty
// variable as the root directory) would pass the whole run.
void PublisherDefaultSocketDir(CaseContext& ctx, bool set_empty) {
  ctx.UseDefaultSocketDir(set_empty);
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  struct stat st {};
  const bool is_socket = lstat(ctx.SocketPath().c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  ctx.Expect(is_socket, "RES-NAME-02",
             std::string("the socket at ") + ctx.SocketPath() + " (CUFRAMES_SOCKET_DIR " +
                 (set_empty ? "empty" : "unset") + ": default directory /tmp)",
             "no socket there once the publisher is ready");
  GoodSubscriber(ctx, pub, 2);
}

CF_CASE(PubDefaultDirUnset, "1.1/publisher-default-socket-dir",
        "with CUFRAMES_SOCKET_DIR unset the publisher binds /tmp/cuframes-K.sock and serves there",
        (std::vector<std::string>{"RES-NAME-01", "RES-NAME-02"}), kPub, {}) {
  PublisherDefaultSocketDir(ctx, false);
}

CF_CASE(PubDefaultDirEmpty, "1.1/publisher-empty-socket-dir",
        "with CUFRAMES_SOCKET_DIR set but empty the publisher binds /tmp/cuframes-K.sock",
        (std::vector<std::string>{"RES-NAME-01", "RES-NAME-02"}), kPub, {}) {
  PublisherDefaultSocketDir(ctx, true);
}

CF_CASE(FutureVersion, "6.2/future-max-proto",
        "HELLO_REQ min 1 max 9 is served at the publisher's highest version",
        (std::vector<std::string>{"VER-NEG-01", "VER-NEG-02", "SHM-HDR-05"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = 9;
  const HelloInfo h = sub.Hello(hp);
  const uint64_t want = static_cast<uint64_t>(ctx.manifest().MaxProto());
  ctx.Expect(h.proto_version == want, "VER-NEG-02",
             "negotiated version min(9, P) = " + std::to_string(want),
             std::to_string(h.proto_version), h.msg.raw);
  sub.MapAndValidate();
  ctx.Expect(sub.Header().Get("proto_version") == want, "SHM-HDR-05",
             "SegmentHeader.proto_version = highest version spoken " + std::to_string(want),
             std::to_string(sub.Header().Get("proto_version")));
  sub.Attach();
  sub.ReadFrame(1);
  sub.Ack(1);
  (void)pub;
}

// MSG-HELLO-06's publisher side: caps bits no version defines (2..31) are ignored, whatever the
// negotiated version; with WANT_PACKETS and WAKE_FORWARD clear, HELLO_RESP promises no ring.
CF_CASE(UndefinedCapsIgnored, "3.3/hello-undefined-caps-ignored",
        "a HELLO_REQ whose caps has every bit that no version defines set (0xfffffffc) is served "
        "as if they were clear: HELLO_RESP(OK) without PACKET_RING_PRESENT, and frame 1 arrives",
        (std::vector<std::string>{"MSG-HELLO-06"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = static_cast<uint16_t>(ctx.spec().MaxProto());
  hp.caps = 0xfffffffcu;
  const HelloInfo h = sub.Hello(hp, true);
  ctx.Expect(
      h.status == 0 && (h.caps & ctx.spec().Enum("hello_resp_caps", "PACKET_RING_PRESENT")) == 0,
      "MSG-HELLO-06", "HELLO_RESP(OK), PACKET_RING_PRESENT clear (WANT_PACKETS was)",
      Describe(ctx.spec(), h.msg), h.msg.raw);
  sub.MapAndValidate();
  sub.Attach();
  sub.ReadFrame(1);
  sub.Ack(1);
  (void)pub;
}

void ExpectHelloRefused(CaseContext& ctx, const HelloParams& hp, const std::string& status,
                        const std::string& req) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  {
    ScriptedSub bad(ctx);
    const HelloInfo h = bad.Hello(hp, true);
    ctx.Expect(h.status == ctx.spec().Err(status), req, "HELLO_RESP status " + status,
               Describe(ctx.spec(), h.msg), h.msg.raw);
    ExpectCloseOnly(ctx, bad.conn(), "MSG-HRESP-02", 3000);
  }
  // The refusal reserved nothing: a good subscriber still gets every frame.
  GoodSubscriber(ctx, pub, 2);
}

CF_CASE(MinAboveAll, "6.2/min-proto-too-high",
        "HELLO_REQ min 5 max 9: no common version, HELLO_RESP VERSION_MISMATCH and close",
        (std::vector<std::string>{"VER-NEG-01", "MSG-HRESP-02", "ERR-03"}), kPub, {}) {
  HelloParams hp;
  hp.min_proto = 5;
  hp.max_proto = 9;
  ExpectHelloRefused(ctx, hp, "VERSION_MISMATCH", "VER-NEG-01");
}

CF_CASE(MinGtMax, "3.3/min-greater-than-max",
        "HELLO_REQ min 2 > max 1 is answered VERSION_MISMATCH",
        (std::vector<std::string>{"MSG-HELLO-04", "MSG-HRESP-02"}), kPub, {}) {
  HelloParams hp;
  hp.min_proto = 2;
  hp.max_proto = 1;
  ExpectHelloRefused(ctx, hp, "VERSION_MISMATCH", "MSG-HELLO-04");
}

CF_CASE(MinZero, "3.3/min-proto-zero", "HELLO_REQ min_proto 0 is answered VERSION_MISMATCH",
        (std::vector<std::string>{"MSG-HELLO-04"}), kPub, {}) {
  HelloParams hp;
  hp.min_proto = 0;
  hp.max_proto = 1;
  ExpectHelloRefused(ctx, hp, "VERSION_MISMATCH", "MSG-HELLO-04");
}

CF_CASE(KindRefused, "7/kind-not-offered",
        "a HOST publisher answers kinds_mask = CUDA_IPC only with UNSUPPORTED_KIND",
        (std::vector<std::string>{"KIND-01", "KIND-05", "CONF-CLAIM-01"}), kPub, {}) {
  HelloParams hp;
  hp.kinds_mask = 1u << (ctx.spec().Enum("memory_kind", "CUDA_IPC") - 1);
  ExpectHelloRefused(ctx, hp, "UNSUPPORTED_KIND", "KIND-01");
}

CF_CASE(BadMagic, "3.3/hello-bad-magic",
        "HELLO_REQ with a wrong magic gets ERROR(PROTOCOL); other connections are unaffected",
        (std::vector<std::string>{"MSG-HELLO-02", "TLV-ERR-05", "MSG-ERROR-01", "MSG-ERROR-02"}),
        kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  {
    ScriptedSub bad(ctx);
    bad.Connect();
    HelloParams hp;
    hp.magic = 0x12345678;
    bad.Send(bad.HelloBytes(hp));
    ExpectErrorClose(ctx, bad.conn(), "PROTOCOL", "MSG-HELLO-02");
  }
  GoodSubscriber(ctx, pub, 2);
}

// KIND-07's last sentence for the publisher: descriptors passed with HELLO_REQ on a HOST
// connection are closed unused, and the subscriber is served as if none had come.
CF_CASE(PubStrayFds, "7/publisher-closes-stray-descriptors",
        "descriptors passed with HELLO_REQ are closed unused; the subscriber attaches and reads "
        "every frame",
        (std::vector<std::string>{"KIND-07"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  StrayFds stray(ctx, 3);
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.pass_fds = stray.fds;
  sub.Hello(hp);
  sub.MapAndValidate();
  const uint64_t start = sub.Attach();
  ExpectNoStrayFds(ctx, pub.pid(), "KIND-07", "HELLO_REQ");
  for (uint64_t n = start; n <= 2; ++n) {
    sub.ReadFrame(n);
    sub.Ack(n);
  }
}

CF_CASE(RefusedLeaveNoTrace, "3.3/refused-connections-leave-no-trace",
        "with max_subscribers 2, six connections the publisher closes for an error (bad magic, "
        "unknown type, ATTACH_REQ before HELLO, twice each) hold no place in the handshake "
        "limit and no socket: two subscribers then attach side by side and get every frame",
        (std::vector<std::string>{"TLV-ERR-05", "MSG-ERROR-02", "SM-PUB-04"}), kPub, {}) {
  std::vector<std::string> args = PubArgs(ctx, 3, 2, 2);
  args.insert(args.end(), {"--max-subscribers", "2"});
  Process& pub = StartPub(ctx, args);
  const int sockets_before = FdsLinkedTo(pub.pid(), "socket:");
  const Spec& sp = ctx.spec();
  HelloParams bad_magic;
  bad_magic.magic = 0x12345678;
  MessageBuilder attach(sp, "ATTACH_REQ");
  const std::vector<std::pair<std::vector<uint8_t>, std::string>> refused = {
      {ScriptedSub(ctx).HelloBytes(bad_magic), "PROTOCOL"},
      {EncodeTlv(9, std::vector<uint8_t>(8, 0)), "UNKNOWN_MESSAGE"},
      {attach.Encode(), "STATE"}};
  for (int round = 0; round < 2; ++round) {
    for (const auto& [bytes, code] : refused) {
      ScriptedSub bad(ctx);
      bad.Connect();
      bad.Send(bytes);
      ExpectErrorClose(ctx, bad.conn(), code, "TLV-ERR-05");
    }
  }
  // Every refused connection closed on our side too: what the publisher still holds is its own.
  // EOF reaches us at the publisher's shutdown(), which may come a moment before its close():
  // the count may take up to 1 s to come down (a publisher that never frees one stays above).
  int sockets_after = FdsLinkedTo(pub.pid(), "socket:");
  for (const Deadline until = In(1000);
       sockets_before >= 0 && sockets_after > sockets_before && Clock::now() < until;) {
    pub.Pump(10);  // a bounded wait on the adapter's output, not a sleep
    sockets_after = FdsLinkedTo(pub.pid(), "socket:");
  }
  if (sockets_before >= 0 && sockets_after >= 0) {
    ctx.Expect(sockets_after <= sockets_before, "TLV-ERR-05",
               "the publisher frees each refused connection: no more sockets open than before "
               "them (" +
                   std::to_string(sockets_before) + ")",
               std::to_string(sockets_after) + " sockets open in /proc/" +
                   std::to_string(pub.pid()) + "/fd");
  } else {
    ctx.Note("/proc/<pid>/fd of the publisher is not readable here: socket count not checked");
  }
  // Two handshakes in flight at once: a publisher that still counted the refused connections
  // against max_subscribers would answer ERROR(FULL) (SM-PUB-04) here.
  ScriptedSub a(ctx), b(ctx);
  a.Hello();
  b.Hello();
  a.MapAndValidate();
  b.MapAndValidate();
  const uint64_t sa = a.Attach();
  const uint64_t sb = b.Attach();
  for (uint64_t n = std::max(sa, sb); n <= 3; ++n) {
    a.ReadFrame(n);
    b.ReadFrame(n);
    a.Ack(n);
    b.Ack(n);
  }
  (void)pub;
}

CF_CASE(HelloLong, "3.3/hello-longer-than-64",
        "HELLO_REQ of 100 bytes: the publisher ignores bytes after offset 64",
        (std::vector<std::string>{"MSG-HELLO-03"}), kPub, {}) {
  StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.length = 100;
  sub.Hello(hp);
  sub.MapAndValidate();
  sub.Attach();
  sub.ReadFrame(1);
}

CF_CASE(HelloReservedJunk, "6.3/hello-reserved-nonzero",
        "nonzero reserved bytes and lib_version 0xffffffff in HELLO_REQ change nothing",
        (std::vector<std::string>{"VER-RSV-02", "VER-NUM-01"}), kPub, {}) {
  StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  sub.Connect();
  std::vector<uint8_t> b = sub.HelloBytes({});
  const FieldDef& rsv = ctx.spec().Field("HelloReq", "reserved0");
  for (size_t i = 0; i < rsv.size; ++i)
    b[8 + rsv.offset + i] = 0x5a;
  StoreLe(b, 8 + ctx.spec().Off("HelloReq", "lib_version"), 0xffffffff, 4);
  sub.Send(b);
  TlvMsg m = RecvOrFail(ctx, sub.conn(), "VER-RSV-02", "HELLO_RESP(OK)", 3000);
  ctx.Expect(ctx.spec().MsgName(m.type) == "HELLO_RESP" &&
                 PayloadField(ctx.spec(), "HelloResp", m, "status") == 0,
             "VER-RSV-02", "HELLO_RESP(OK) despite nonzero reserved bytes", Describe(ctx.spec(), m),
             m.raw);
}

CF_CASE(V1ToV2, "6.2/v1-subscriber-to-v2-publisher",
        "a version 1 subscriber (max 1, asking WANT_PACKETS) is served as version 1",
        (std::vector<std::string>{"VER-NEG-03", "VER-NEG-04", "CONF-V2-01", "MSG-HRESP-03",
                                  "PKT-HELLO-01"}),
        kPub, (Needs{2, "host", ""})) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = 1;
  const HelloInfo h = sub.Hello(hp);
  ctx.Expect(h.proto_version == 1 && h.caps == 0, "VER-NEG-04",
             "version 1, caps 0 for a version 1 subscriber", Describe(ctx.spec(), h.msg),
             h.msg.raw);
  sub.MapAndValidate();
  sub.Attach();
  for (uint64_t n = 1; n <= 2; ++n) {
    sub.ReadFrame(n);
    sub.Ack(n);
  }
  (void)pub;
}

CF_CASE(MaxProtoCap, "6.2/max-proto-option",
        "--max-proto 1 makes the publisher a version 1 peer (SegmentHeader and HELLO_RESP)",
        (std::vector<std::string>{"VER-NEG-05", "SHM-HDR-05"}), kPub,
        (Needs{1, "host", "max-proto"})) {
  std::vector<std::string> args = PubArgs(ctx, 1);
  args.insert(args.end(), {"--max-proto", "1"});
  StartPub(ctx, args);
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = 2;
  const HelloInfo h = sub.Hello(hp);
  ctx.Expect(h.proto_version == 1, "VER-NEG-05", "negotiated version 1 under --max-proto 1",
             std::to_string(h.proto_version), h.msg.raw);
  sub.MapAndValidate();
  ctx.Expect(sub.Header().Get("proto_version") == 1, "SHM-HDR-05",
             "SegmentHeader.proto_version 1 under --max-proto 1",
             std::to_string(sub.Header().Get("proto_version")));
}

CF_CASE(AttachMismatch, "3.5/attach-wrong-generation",
        "ATTACH_REQ with a generation other than HELLO_RESP's: ERROR(PROTOCOL), slot freed",
        (std::vector<std::string>{"MSG-ATTACH-02", "ACK-EVICT-04", "SM-PUB-01"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  uint32_t index = 0;
  uint64_t gen = 0;
  {
    ScriptedSub bad(ctx);
    bad.Hello();
    bad.MapAndValidate();
    index = static_cast<uint32_t>(bad.hello().index);
    gen = bad.hello().generation;
    MessageBuilder b(ctx.spec(), "ATTACH_REQ");
    b.Set("subscriber_index", index).Set("generation", gen + 7);
    bad.Send(b.Encode());
    ExpectErrorClose(ctx, bad.conn(), "PROTOCOL", "MSG-ATTACH-02");
    // The slot is freed once the publisher has closed the connection.
    StructView slot = bad.SubSlot(index);
    const Deadline d = In(2000);
    while (slot.Get("state") != 0 && Clock::now() < d)
      bad.conn().PeerClosed();
    ctx.Expect(slot.Get("state") == ctx.spec().Enum("subscriber_slot_state", "FREE"),
               "ACK-EVICT-04", "slot " + std::to_string(index) + " FREE after the refusal",
               "state " + std::to_string(slot.Get("state")), slot.All(), slot.base());
  }
  auto good = GoodSubscriber(ctx, pub, 2);
  if (good->hello().index == index) {
    ctx.Expect(good->hello().generation != gen, "ACK-EVICT-04",
               "a re-reserved slot gets a new generation", std::to_string(gen));
  }
}

void ExpectStateError(CaseContext& ctx, const std::vector<uint8_t>& first, bool hello_first,
                      const std::string& req) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  {
    ScriptedSub bad(ctx);
    if (hello_first) {
      bad.Hello();
    } else {
      bad.Connect();
    }
    bad.Send(first);
    ExpectErrorClose(ctx, bad.conn(), "STATE", req);
  }
  GoodSubscriber(ctx, pub, 2);
}

CF_CASE(AttachBeforeHello, "4.2/attach-before-hello",
        "ATTACH_REQ as the first message is answered ERROR(STATE)",
        (std::vector<std::string>{"SM-PUB-01", "ERR-03"}), kPub, {}) {
  MessageBuilder b(ctx.spec(), "ATTACH_REQ");
  ExpectStateError(ctx, b.Encode(), false, "SM-PUB-01");
}

CF_CASE(SecondHello, "4.2/second-hello",
        "a second HELLO_REQ after HELLO_RESP(OK) is answered ERROR(STATE)",
        (std::vector<std::string>{"SM-PUB-01", "MSG-HELLO-01"}), kPub, {}) {
  ScriptedSub tmp(ctx);
  ExpectStateError(ctx, tmp.HelloBytes({}), true, "SM-PUB-01");
}

CF_CASE(WrongDirection, "4.2/wrong-direction",
        "HELLO_RESP sent to a publisher (a message only publishers send) gets ERROR(STATE)",
        (std::vector<std::string>{"SM-PUB-01"}), kPub, {}) {
  MessageBuilder b(ctx.spec(), "HELLO_RESP");
  ExpectStateError(ctx, b.Encode(), false, "SM-PUB-01");
}

CF_CASE(ErrorNoReply, "3.2/no-error-for-error",
        "an ERROR from the subscriber is never answered with ERROR; the publisher just closes",
        (std::vector<std::string>{"TLV-ERR-06", "SM-PUB-01"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  {
    ScriptedSub bad(ctx);
    bad.Hello();
    bad.Send(EncodeError(ctx.spec(), ctx.spec().Err("PROTOCOL"), "harness says no"));
    ExpectCloseOnly(ctx, bad.conn(), "TLV-ERR-06", 3000);
  }
  GoodSubscriber(ctx, pub, 2);
}

// An ERROR whose text_len disagrees with its TLV length (TLV-ERR-03): text_len is the payload's
// second u32, at byte 12 of the message.
std::vector<uint8_t> ErrorWithWrongTextLen(const Spec& spec) {
  std::vector<uint8_t> m = EncodeError(spec, spec.Err("PROTOCOL"), "harness says no");
  m[12] = static_cast<uint8_t>(m[12] + 1);
  return m;
}

CF_CASE(MalformedErrorNoReply, "3.2/malformed-error-not-answered",
        "an ERROR with a framing error (text_len not length - 8) is not answered either; the "
        "publisher closes that connection and serves the others",
        (std::vector<std::string>{"TLV-ERR-03", "TLV-ERR-06", "TLV-ERR-05"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  {
    ScriptedSub bad(ctx);
    bad.Hello();
    bad.Send(ErrorWithWrongTextLen(ctx.spec()));
    ExpectCloseOnly(ctx, bad.conn(), "TLV-ERR-03", 3000);
  }
  GoodSubscriber(ctx, pub, 2);
}

void ExpectPong(CaseContext& ctx, ScriptedSub& sub, uint64_t nonce) {
  MessageBuilder b(ctx.spec(), "PING");
  b.Set("nonce", nonce);
  sub.Send(b.Encode());
  TlvMsg m = RecvOrFail(ctx, sub.conn(), "MSG-PING-01", "PONG", 1000);
  ctx.Expect(
      ctx.spec().MsgName(m.type) == "PONG" && PayloadField(ctx.spec(), "Pong", m, "nonce") == nonce,
      "MSG-PING-01", "PONG with nonce " + Hex64(nonce), Describe(ctx.spec(), m), m.raw);
}

CF_CASE(PingEveryState, "3.9/ping-in-every-state",
        "PING before HELLO, between HELLO and ATTACH, and when ACTIVE is answered with PONG",
        (std::vector<std::string>{"MSG-PING-01", "SM-PUB-01", "SM-PUB-06"}), kPub, {}) {
  // The first two PINGs arrive while the adapter waits for --wait-subscribers, outside any
  // frame call (SM-PUB-06).
  StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  sub.Connect();
  ExpectPong(ctx, sub, 0x0102030405060708ULL);
  sub.Hello();
  ExpectPong(ctx, sub, 0xfedcba9876543210ULL);
  sub.MapAndValidate();
  sub.Attach();
  ExpectPong(ctx, sub, 42);
  // PONG is ignored: nothing comes back, and the session still works.
  MessageBuilder pong(ctx.spec(), "PONG");
  sub.Send(pong.Encode());
  sub.ReadFrame(1);
  sub.Ack(1);
}

// TLV-FRAME-02 over a long stream: 514 PINGs (16 bytes each) in three writes whose boundaries
// fall inside a message, so a receiver that reads about 4 KiB at a time has consumed more than
// 4 KiB of its buffer while a message is still incomplete, and must keep that message when it
// compacts the buffer. Each write is sent only once every PONG for the messages completed so
// far has come back, so the partial message is pending when the next bytes arrive.
CF_CASE(LongStreamSplit, "3.1/long-stream-split-inside-messages",
        "514 PINGs as 4100 + 4112 + 12 bytes (each write ending inside a PING): 514 PONGs with "
        "the nonces in order",
        (std::vector<std::string>{"TLV-FRAME-02", "MSG-PING-01"}), kPub, {}) {
  StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  sub.Handshake();
  constexpr uint64_t kPings = 514;
  std::vector<uint8_t> stream;
  for (uint64_t k = 1; k <= kPings; ++k) {
    MessageBuilder b(ctx.spec(), "PING");
    b.Set("nonce", 0x5100000000000000ULL + k);
    const std::vector<uint8_t> m = b.Encode();
    stream.insert(stream.end(), m.begin(), m.end());
  }
  const size_t msg = stream.size() / kPings;
  uint64_t answered = 0;
  size_t sent = 0;
  // 4100: 256 PINGs and 4 bytes of the 257th. 8212: a receiver reading 4104 bytes (a header and
  // the largest payload) gets the 257th's last 12 bytes, 255 PINGs and 12 bytes of the 513th,
  // having consumed 8192 bytes of its buffer; the last 8 bytes of the write then come on their
  // own while 12 are pending. The rest completes PING 514.
  for (const size_t cut : {size_t{4100}, size_t{8212}, stream.size()}) {
    sub.Send(std::span<const uint8_t>(stream).subspan(sent, cut - sent));
    sent = cut;
    for (; answered < sent / msg; ++answered) {
      TlvMsg m = RecvOrFail(
          ctx, sub.conn(), "TLV-FRAME-02",
          "PONG " + std::to_string(answered + 1) + " of " + std::to_string(kPings), 3000);
      const uint64_t want = 0x5100000000000000ULL + answered + 1;
      ctx.Expect(ctx.spec().MsgName(m.type) == "PONG" &&
                     PayloadField(ctx.spec(), "Pong", m, "nonce") == want,
                 "TLV-FRAME-02",
                 "PONG " + std::to_string(answered + 1) + " with nonce " + Hex64(want) +
                     " (bytes " + std::to_string(sent) + " of the stream sent)",
                 Describe(ctx.spec(), m), m.raw);
    }
  }
  sub.ReadFrame(1);
  sub.Ack(1);
}

CF_CASE(OneByteAtATime, "3.1/one-byte-at-a-time",
        "HELLO_REQ and ATTACH_REQ sent one byte per write are reassembled",
        (std::vector<std::string>{"TLV-FRAME-02"}), kPub, {}) {
  StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  sub.Connect();
  sub.conn().SendPaced(sub.HelloBytes({}), 1, 1);
  TlvMsg m = RecvOrFail(ctx, sub.conn(), "TLV-FRAME-02", "HELLO_RESP", 3000);
  ctx.Expect(ctx.spec().MsgName(m.type) == "HELLO_RESP", "TLV-FRAME-02", "HELLO_RESP",
             Describe(ctx.spec(), m), m.raw);
}

CF_CASE(Coalesced, "3.1/several-messages-one-write",
        "HELLO_REQ and PING in one write are both answered, in order",
        (std::vector<std::string>{"TLV-FRAME-02"}), kPub, {}) {
  StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub sub(ctx);
  sub.Connect();
  std::vector<uint8_t> both = sub.HelloBytes({});
  MessageBuilder ping(ctx.spec(), "PING");
  ping.Set("nonce", 77);
  const std::vector<uint8_t> p = ping.Encode();
  both.insert(both.end(), p.begin(), p.end());
  sub.Send(both);
  TlvMsg a = RecvOrFail(ctx, sub.conn(), "TLV-FRAME-02", "HELLO_RESP", 3000);
  TlvMsg b = RecvOrFail(ctx, sub.conn(), "TLV-FRAME-02", "PONG", 3000);
  ctx.Expect(ctx.spec().MsgName(a.type) == "HELLO_RESP" && ctx.spec().MsgName(b.type) == "PONG",
             "TLV-FRAME-02", "HELLO_RESP then PONG",
             Describe(ctx.spec(), a) + ", " + Describe(ctx.spec(), b), sub.conn().received());
}

CF_CASE(KeyInUse, "1.3/key-in-use",
        "a second publisher on a live key fails with KEY_IN_USE and touches nothing",
        (std::vector<std::string>{"RES-CREATE-01", "RES-LIVE-01"}), kPub, {}) {
  Process& first = StartPub(ctx, PubArgs(ctx, 1));
  const long long size = ShmFile::FileSize(ctx.SegmentPath());
  Process& second = ctx.StartPublisher(PubArgs(ctx, 1));
  ExpectAdapterError(ctx, second, "KEY_IN_USE", "RES-CREATE-01", 5000);
  ctx.Expect(
      ShmFile::FileSize(ctx.SegmentPath()) == size && access(ctx.SocketPath().c_str(), F_OK) == 0,
      "RES-CREATE-01", "the live publisher's segment and socket untouched", "changed or removed");
  GoodSubscriber(ctx, first, 1);
}

CF_CASE(StaleReclaim, "1.3/stale-reclaim",
        "a dead publisher's unlocked segment (naming a live pid) and socket are reclaimed",
        (std::vector<std::string>{"RES-CREATE-02", "RES-CREATE-03", "RES-LIVE-02"}), kPub, {}) {
  // The stale segment names the harness's own (live) pid: a publisher that trusted pids would
  // refuse the key. No process holds the flock, so the key is free.
  {
    std::ofstream seg(ctx.SegmentPath(), std::ios::binary);
    std::vector<char> bytes(8192, 0);
    StoreLe(std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size()),
            ctx.spec().Off("SegmentHeader", "publisher_pid"), static_cast<uint64_t>(getpid()), 8);
    seg.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    std::ofstream ring(ctx.RingPath(), std::ios::binary);
    ring << "stale ring";
  }
  std::string err;
  auto stale_sock = Listener::Bind(ctx.SocketPath(), &err);
  if (!stale_sock) ctx.Fail("HARNESS", "a stale socket file", err);
  // Leave the socket file behind with nobody listening on it, as a crashed publisher would.
  if (stale_sock) stale_sock->Abandon();
  // RES-CREATE-03 is an order: the stale ring and socket go before the stale segment path, which
  // goes last. Judge the order the kernel saw the unlinks in, not the end state.
  const std::string dir = ctx.SocketPath().substr(0, ctx.SocketPath().rfind('/'));
  UnlinkLog unlinks({"/dev/shm", dir});
  Process& pub = StartPub(ctx, PubArgs(ctx, 1));
  if (unlinks.ok()) {
    const std::string seg = "cuframes-" + ctx.key(), ring = seg + "-packets", sock = seg + ".sock";
    std::string seen;
    int seg_at = -1, ring_at = -1, sock_at = -1, i = 0;
    for (const std::string& n : unlinks.Names()) {
      if (n != seg && n != ring && n != sock) continue;
      seen += (seen.empty() ? "" : ", ") + n;
      if (n == seg && seg_at < 0) seg_at = i;
      if (n == ring && ring_at < 0) ring_at = i;
      if (n == sock && sock_at < 0) sock_at = i;
      ++i;
    }
    ctx.Note("unlinks in order: " + seen);
    ctx.Expect(
        seg_at >= 0 && ring_at >= 0 && ring_at < seg_at && (sock_at < 0 || sock_at < seg_at),
        "RES-CREATE-03",
        "the stale packet ring and socket file unlinked before the stale segment, which goes "
        "last",
        "unlinks in order: " + (seen.empty() ? std::string("none") : seen));
  }
  ctx.Expect(access(ctx.RingPath().c_str(), F_OK) != 0, "RES-CREATE-03",
             "the stale packet ring unlinked by the reclaiming publisher", "still there");
  GoodSubscriber(ctx, pub, 1);
}

CF_CASE(InvalidKey, "0/invalid-key",
        "keys starting with '.', longer than 64 or with other characters are INVALID_ARGUMENT",
        (std::vector<std::string>{"RES-KEY-01"}), kPub, {}) {
  for (const std::string& key : {std::string(".hidden"), std::string(65, 'k'),
                                 std::string("bad/key"), std::string("bad key")}) {
    Process& p = ctx.StartPublisher({"--key", key, "--frames", "1"});
    ExpectAdapterError(ctx, p, "INVALID_ARGUMENT", "RES-KEY-01", 5000);
    ctx.Expect(access(("/dev/shm/cuframes-" + key).c_str(), F_OK) != 0, "RES-KEY-01",
               "nothing created for the rejected key \"" + key + "\"", "a segment file exists");
  }
}

CF_CASE(Full, "4.2/full",
        "with max_subscribers 1 and one connection in its handshake, the next is refused with "
        "FULL: ERROR(FULL) at accept (SM-PUB-04) or, without that limit, HELLO_RESP(FULL)",
        (std::vector<std::string>{"SM-PUB-04", "SM-PUB-05"}), kPub, {}) {
  std::vector<std::string> args = PubArgs(ctx, 1);
  args.insert(args.end(), {"--max-subscribers", "1"});
  Process& pub = StartPub(ctx, args);
  ScriptedSub a(ctx);
  a.Hello();
  ScriptedSub b(ctx);
  b.Connect();
  b.Send(b.HelloBytes({}));
  TlvMsg m = RecvOrFail(ctx, b.conn(), "SM-PUB-04", "HELLO_RESP(FULL) or ERROR(FULL)", 3000);
  const std::string name = ctx.spec().MsgName(m.type);
  const uint64_t code = PayloadField(ctx.spec(), name == "ERROR" ? "ErrorMsg" : "HelloResp", m,
                                     name == "ERROR" ? "code" : "status");
  ctx.Expect((name == "ERROR" || name == "HELLO_RESP") && code == ctx.spec().Err("FULL"),
             "SM-PUB-05", "ERROR(FULL) or HELLO_RESP(FULL)", Describe(ctx.spec(), m), m.raw);
  (void)pub;
}

// The HELLO_REQ_REJECT row of 4.2 for a full publisher: every subscriber slot is taken by an
// ACTIVE subscriber (so SM-PUB-04's limit on pending connections does not apply).
CF_CASE(FullSlots, "4.2/every-slot-taken",
        "with max_subscribers 1 and that slot ACTIVE, the next HELLO_REQ is answered "
        "HELLO_RESP(FULL) (all other fields zero), never ERROR(FULL), and closed; the attached "
        "subscriber is served",
        (std::vector<std::string>{"SM-PUB-01", "SM-PUB-05", "ERR-03", "MSG-HRESP-02"}), kPub, {}) {
  std::vector<std::string> args = PubArgs(ctx, 2);
  args.insert(args.end(), {"--max-subscribers", "1"});
  Process& pub = StartPub(ctx, args);
  ScriptedSub first(ctx);
  const uint64_t start = first.Handshake();
  {
    // HELLO_RESP(FULL) per the table (SM-PUB-05: ERROR(FULL) belongs to accept, when too many
    // connections are in their handshake; here none is).
    const Spec& s = ctx.spec();
    ScriptedSub late(ctx);
    late.Connect();
    late.Send(late.HelloBytes({}));
    TlvMsg m = RecvOrFail(ctx, late.conn(), "SM-PUB-01", "HELLO_RESP(FULL) or ERROR(FULL)", 3000);
    const std::string name = s.MsgName(m.type);
    ctx.Expect(name == "HELLO_RESP", "SM-PUB-05", "HELLO_RESP(FULL), not ERROR(FULL)",
               Describe(s, m), m.raw);
    const bool resp = name == "HELLO_RESP";
    const uint64_t code =
        PayloadField(s, resp ? "HelloResp" : "ErrorMsg", m, resp ? "status" : "code");
    ctx.Expect(code == s.Err("FULL"), "ERR-03", "status FULL (every subscriber slot is taken)",
               Describe(s, m), m.raw);
    if (resp) {
      ctx.Expect(AllZero(std::span<const uint8_t>(m.payload).subspan(4)), "MSG-HRESP-02",
                 "every field but status zero in a refusing HELLO_RESP", "nonzero bytes", m.raw);
    }
    ExpectCloseOnly(ctx, late.conn(), resp ? "MSG-HRESP-02" : "MSG-ERROR-02", 3000);
  }
  for (uint64_t n = start; n < start + 2; ++n) {
    first.ReadFrame(n);
    first.Ack(n);
  }
  (void)pub;
}

}  // namespace
}  // namespace cuframes::conform
