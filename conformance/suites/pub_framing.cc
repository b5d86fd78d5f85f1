// pub_framing.cc: hostile framing against an IUT publisher (spec 3.1, 3.2, 4.2 timeouts):
// oversized, unknown, badly sized and reserved-bit TLVs, and stalled handshakes.
#include <poll.h>

#include <algorithm>

#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kPub = Role::kPublisher;

// Sends `bytes` on a fresh connection (after HELLO when `hello_first`), expects ERROR(code) and
// close, then proves the publisher still serves a good subscriber (TLV-ERR-05).
void Hostile(CaseContext& ctx, const std::vector<uint8_t>& bytes, const std::string& code,
             const std::string& req, bool hello_first = false) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  {
    ScriptedSub bad(ctx);
    if (hello_first) {
      bad.Hello();
    } else {
      bad.Connect();
    }
    bad.Send(bytes);
    ExpectErrorClose(ctx, bad.conn(), code, req);
  }
  GoodSubscriber(ctx, pub, 2);
}

// A subscriber that sends something the publisher must answer and closes its socket at once,
// without reading: the answer meets a closed peer (EPIPE on a Unix socket). The publisher treats
// that as the subscriber's death (RES-CRASH-02) and goes on serving; one that retried the send,
// or waited on it, would stall its connection handling for everybody. Each stimulus is sent
// twice: whether the close or the answer comes first is a race the publisher mostly loses. Six
// connections in all stay below the adapter's default max_subscribers (8): a publisher that has
// not yet read their end-of-file may count them against SM-PUB-04's handshake limit, and the
// good subscriber must not meet that limit.
CF_CASE(PeerGoneBeforeAnswer, "3.2/peer-gone-before-the-answer",
        "subscribers that send HELLO_REQ, PING or an unknown type and close at once, unread: the "
        "publisher keeps serving (a good subscriber then gets every frame)",
        (std::vector<std::string>{"RES-CRASH-02", "TLV-ERR-05", "SM-PUB-03"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 2));
  MessageBuilder ping(ctx.spec(), "PING");
  ping.Set("nonce", 0x5eed);
  for (int round = 0; round < 2; ++round) {
    {
      ScriptedSub bad(ctx);
      bad.Connect();
      bad.Send(bad.HelloBytes({}));  // answered with HELLO_RESP
    }
    {
      ScriptedSub bad(ctx);
      bad.Connect();
      bad.Send(ping.Encode());  // answered with PONG
    }
    {
      ScriptedSub bad(ctx);
      bad.Connect();
      bad.Send(EncodeTlv(9, std::vector<uint8_t>(8, 0)));  // answered with ERROR
    }
  }
  GoodSubscriber(ctx, pub, 2);
}

CF_CASE(Oversized, "3.2/oversized-length",
        "a header announcing 4097 payload bytes (none sent) gets ERROR(MESSAGE_TOO_LARGE) at once",
        (std::vector<std::string>{"TLV-ERR-01", "TLV-FRAME-03", "TLV-ERR-05", "SM-PUB-01"}), kPub,
        {}) {
  // No payload follows: a publisher that waits to read 4097 bytes never answers.
  Hostile(ctx, EncodeTlv(1, {}, 0, 4097), "MESSAGE_TOO_LARGE", "TLV-ERR-01");
}

CF_CASE(OversizedHuge, "3.2/oversized-length-4g",
        "a header announcing 0xffffffff bytes gets ERROR(MESSAGE_TOO_LARGE)",
        (std::vector<std::string>{"TLV-ERR-01", "TLV-FRAME-03"}), kPub, {}) {
  // A HELLO_REQ header: an oversized ERROR is never answered (TLV-ERR-06 over TLV-ERR-01, v0.4
  // decision Z; the field case 3.8/ErrorMsg.text_len=4089 checks that one).
  Hostile(ctx, EncodeTlv(1, {}, 0, 0xffffffffu), "MESSAGE_TOO_LARGE", "TLV-ERR-01");
}

CF_CASE(UnknownType, "3.2/unknown-type",
        "type 9 (outside 1..8) gets ERROR(UNKNOWN_MESSAGE), before and after HELLO",
        (std::vector<std::string>{"TLV-ERR-02", "TLV-ERR-05"}), kPub, {}) {
  std::vector<uint8_t> payload(8, 0);
  Hostile(ctx, EncodeTlv(9, payload), "UNKNOWN_MESSAGE", "TLV-ERR-02");
}

CF_CASE(UnknownTypeAfterHello, "3.2/unknown-type-after-hello",
        "type 0 after HELLO_RESP(OK) gets ERROR(UNKNOWN_MESSAGE) and frees the slot",
        (std::vector<std::string>{"TLV-ERR-02", "TLV-ERR-05"}), kPub, {}) {
  Hostile(ctx, EncodeTlv(0, {}), "UNKNOWN_MESSAGE", "TLV-ERR-02", true);
}

CF_CASE(ShortHello, "3.2/hello-too-short", "HELLO_REQ with length 10 (< 64) gets ERROR(PROTOCOL)",
        (std::vector<std::string>{"TLV-ERR-03", "TLV-FRAME-04"}), kPub, {}) {
  std::vector<uint8_t> payload(10, 0);
  StoreLe(payload, 0, ctx.spec().Const("HELLO_MAGIC"), 4);
  Hostile(ctx, EncodeTlv(1, payload), "PROTOCOL", "TLV-ERR-03");
}

CF_CASE(AttachWrongLength, "3.2/attach-wrong-length",
        "ATTACH_REQ with length 12 (not 16) gets ERROR(PROTOCOL)",
        (std::vector<std::string>{"TLV-ERR-03", "TLV-FRAME-04"}), kPub, {}) {
  std::vector<uint8_t> payload(12, 0);
  Hostile(ctx, EncodeTlv(3, payload), "PROTOCOL", "TLV-ERR-03", true);
}

CF_CASE(PingLong, "3.2/ping-wrong-length", "PING with length 9 gets ERROR(PROTOCOL)",
        (std::vector<std::string>{"TLV-ERR-03"}), kPub, {}) {
  std::vector<uint8_t> payload(9, 0);
  Hostile(ctx, EncodeTlv(7, payload), "PROTOCOL", "TLV-ERR-03");
}

CF_CASE(ReservedHeader, "3.2/reserved-header-nonzero",
        "a HELLO_REQ whose reserved TLV header bytes are nonzero gets ERROR(PROTOCOL)",
        (std::vector<std::string>{"TLV-ERR-03"}), kPub, {}) {
  ScriptedSub tmp(ctx);
  std::vector<uint8_t> b = tmp.HelloBytes({});
  b[2] = 0x01;
  Hostile(ctx, b, "PROTOCOL", "TLV-ERR-03");
}

// Both a silent connection and one stalled mid-HELLO must be timed out, while a good subscriber
// attaches and reads meanwhile (the publisher never blocks on one connection).
CF_CASE(Stall, "3.2/stall-mid-message",
        "a peer silent after connect and one stalled after 5 bytes of HELLO_REQ both get "
        "ERROR(TIMEOUT) after HANDSHAKE_TIMEOUT_MS; a third subscriber is served meanwhile",
        (std::vector<std::string>{"TLV-ERR-04", "SM-PUB-02", "SM-PUB-03", "TLV-ERR-05"}), kPub,
        {}) {
  const int64_t timeout = static_cast<int64_t>(ctx.spec().Const("HANDSHAKE_TIMEOUT_MS"));
  Process& pub = StartPub(ctx, PubArgs(ctx, 3));
  ScriptedSub silent(ctx);
  silent.Connect();
  ScriptedSub stalled(ctx);
  stalled.Connect();
  const std::vector<uint8_t> hello = stalled.HelloBytes({});
  stalled.Send(std::span<const uint8_t>(hello).subspan(0, 5));
  const auto t0 = Clock::now();
  // Kept attached: the publisher lingers while it has a subscriber, so it is still running when
  // the two handshakes time out.
  auto good = GoodSubscriber(ctx, pub, 3);
  const auto served = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ctx.Expect(served.count() < timeout, "SM-PUB-03",
             "the good subscriber is served while two handshakes stall (< " +
                 std::to_string(timeout) + " ms)",
             std::to_string(served.count()) + " ms");
  for (ScriptedSub* s : {&silent, &stalled}) {
    ExpectErrorClose(ctx, s->conn(), "TIMEOUT", s == &silent ? "SM-PUB-02" : "TLV-ERR-04",
                     static_cast<int>(timeout) + 2000);
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
    ctx.Expect(took.count() >= timeout - 250, "SM-PUB-02",
               "no timeout before HANDSHAKE_TIMEOUT_MS (" + std::to_string(timeout) + " ms)",
               "ERROR(TIMEOUT) after " + std::to_string(took.count()) + " ms");
  }
}

// SM-PUB-02 counts from accept, whatever arrives: a peer that sends HELLO_REQ one byte at a time,
// never the last one, is timed out HANDSHAKE_TIMEOUT_MS after it connected. A publisher that
// restarts the deadline whenever bytes arrive would wait for the whole dribble (paced to outlast
// the deadline by 1.5 s) and longer. 3.2/stall-mid-message stops sending, where both look alike.
CF_CASE(Dribble, "3.2/handshake-deadline-not-restarted-by-bytes",
        "a peer that dribbles HELLO_REQ one byte at a time, never completing it, gets "
        "ERROR(TIMEOUT) HANDSHAKE_TIMEOUT_MS after connecting; a good subscriber is served after",
        (std::vector<std::string>{"SM-PUB-02", "TLV-ERR-04"}), kPub, {}) {
  const int64_t timeout = static_cast<int64_t>(ctx.spec().Const("HANDSHAKE_TIMEOUT_MS"));
  Process& pub = StartPub(ctx, PubArgs(ctx, 1));
  ScriptedSub slow(ctx);
  slow.Connect();
  const auto t0 = Clock::now();
  const std::vector<uint8_t> hello = slow.HelloBytes({});
  const int64_t gap = std::max<int64_t>(20, (timeout + 1500) / static_cast<int64_t>(hello.size()));
  for (size_t i = 0; i + 1 < hello.size(); ++i) {
    slow.Send(std::span<const uint8_t>(hello).subspan(i, 1));
    // The pace is the stimulus; an answer (or a close) ends the dribble at once.
    pollfd p{slow.conn().fd(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(gap)) != 0) break;
  }
  const auto by = t0 + std::chrono::milliseconds(timeout + 1000);
  ExpectErrorClose(ctx, slow.conn(), "TIMEOUT", "SM-PUB-02", std::max(1, MsLeft(by)));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ctx.Expect(took.count() >= timeout - 250, "SM-PUB-02",
             "no timeout before HANDSHAKE_TIMEOUT_MS (" + std::to_string(timeout) + " ms)",
             "ERROR(TIMEOUT) after " + std::to_string(took.count()) + " ms");
  GoodSubscriber(ctx, pub, 1);
}

// TLV-ERR-09: after the handshake no deadline applies to the rest of a message. A PING stopped
// after 5 bytes (inside its header) stays stalled past HANDSHAKE_TIMEOUT_MS, which a publisher
// that applied TLV-ERR-04's timeout in every state would enforce; meanwhile a second subscriber
// attaches and reads every frame, which a publisher that waited on the rest of the message would
// not let happen. Two frames in two slots: the stalled subscriber, which reads nothing, never
// holds a slot the publisher needs, so nothing else can end it (ACK-EVICT-01).
CF_CASE(StalledAfterHandshake, "3.2/message-stalled-after-handshake",
        "an ACTIVE subscriber's PING stopped after 5 bytes for HANDSHAKE_TIMEOUT_MS + 500 ms is "
        "no error: a second subscriber attaches and reads every frame meanwhile, nothing is sent "
        "to the first, and its PING gets PONG once the last byte arrives",
        (std::vector<std::string>{"TLV-ERR-09", "MSG-PING-01", "SM-PUB-03"}), kPub, {}) {
  Process& pub =
      StartPub(ctx, {"--key", ctx.key(), "--frames", "2", "--slots", "2", "--wait-subscribers", "2",
                     "--bytes", "8192", "--linger-ms", "10000"});
  ScriptedSub stalled(ctx);
  stalled.Handshake();
  StalledPing ping(ctx, stalled.conn(), 0x0123456789abcdefULL);
  auto good = GoodSubscriber(ctx, pub, 2);
  ping.Finish();
}

}  // namespace
}  // namespace cuframes::conform
