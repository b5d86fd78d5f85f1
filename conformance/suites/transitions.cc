// transitions.cc: one case per row of the twin's state tables (spec section 4), generated at run
// time from spec/cuframes.json: "4.1/<FROM>/<EVENT>" against an IUT subscriber (the harness plays
// the publisher), "4.2/<FROM>/<EVENT>" against an IUT publisher (the harness plays the
// subscriber).
//
// Each case drives the IUT to FROM along the OK rows the twin lists (derive.h PathTo), checking
// each of those rows on the way, raises EVENT with the stimulus of conformance/src/stimulus.cc,
// checks the outcome parsed from the row's action and error columns (the message and code sent,
// the connection closed or kept, the subscriber slot in shared memory, the adapter's error event
// and exit), and, when the row keeps the connection, proves the IUT is in the row's TO state by
// applying the next OK row from there. Nothing about a row is written by hand here: a row the
// spec adds gets a case, and an action this file cannot check fails the case loudly.
#include <poll.h>
#include <sys/socket.h>

#include <map>

#include "common.h"
#include "derive.h"
#include "stimulus.h"

namespace cuframes::conform {
namespace {

constexpr int kQuietMs = 250;  // how long "nothing happens" is watched for
// How much earlier than `accepted_` + HANDSHAKE_TIMEOUT_MS the IUT's own handshake deadline may
// fall: the IUT starts its clock at its accept or connect, the harness when that call returned.
constexpr int kDeadlineSlackMs = 250;
constexpr int kReplyMs = 3000;

std::string Num(uint64_t v) {
  return std::to_string(v);
}

int HandshakeMs(const Spec& s) {
  return static_cast<int>(s.Const("HANDSHAKE_TIMEOUT_MS"));
}

std::string RowText(const TransitionDef& r) {
  return r.from + " --" + r.event + "--> " + r.to + " [" + r.action + "; error " + r.error + "]";
}

// Watches `c` until `until`, noting when the IUT closed it (buffered messages are kept).
void WatchUntil(Conn& c, Deadline until, std::optional<Deadline>* closed_at) {
  while (Clock::now() < until) {
    if (!*closed_at && c.PeerClosed()) *closed_at = Clock::now();
    pollfd p{c.fd(), static_cast<short>(closed_at->has_value() ? 0 : POLLIN | POLLRDHUP), 0};
    poll(&p, 1, std::min(MsLeft(until), 20));
  }
}

// The row of machine `m` that ends a connection in `from` at its handshake deadline (SM-SUB-02,
// SM-PUB-02), or null where the deadline is not armed (ACTIVE, CLOSED).
const TransitionDef* HandshakeTimeoutRow(const StateMachineDef& m, const std::string& from) {
  for (const TransitionDef& t : m.transitions) {
    if (t.from == from && t.event == "HANDSHAKE_TIMEOUT" && t.to != from) return &t;
  }
  return nullptr;
}

// Expects nothing from the IUT for kQuietMs; a closed connection is allowed only from CLOSED.
// Returns false when the connection's handshake deadline (armed in row.from, counted from
// `accepted`) ended it instead: a slow machine (a sanitizer build under load) can take most of
// HANDSHAKE_TIMEOUT_MS to play a row's stimulus (4.2/AWAIT_HELLO/ACK_TIMEOUT attaches a helper
// and a keeper and waits for the helper's eviction), and then what the HANDSHAKE_TIMEOUT row does
// (a close, the publisher's ERROR with its code) is that row's outcome, not a reaction to this
// one. Anything else, and anything at all before the deadline, still fails the row.
bool ExpectQuiet(CaseContext& ctx, const StateMachineDef& machine, Conn& c,
                 const TransitionDef& row, const std::string& req, Deadline accepted) {
  const Spec& s = ctx.spec();
  const Deadline quiet_end = In(kQuietMs);
  const TransitionDef* timeout_row = HandshakeTimeoutRow(machine, row.from);
  const Deadline expiry = accepted + std::chrono::milliseconds(HandshakeMs(s) - kDeadlineSlackMs);
  TlvMsg m;
  Conn::Rx r = Conn::Rx::kTimeout;
  if (timeout_row == nullptr || quiet_end <= expiry) {
    r = c.Recv(&m, quiet_end);
  } else {
    if (Clock::now() < expiry) r = c.Recv(&m, expiry);
    if (r == Conn::Rx::kTimeout) {
      r = c.Recv(&m, quiet_end);
      const bool timeout_error =
          r == Conn::Rx::kMsg && s.MsgName(m.type) == "ERROR" && CheckWellFormed(s, m).empty() &&
          timeout_row->error != "OK" &&
          PayloadField(s, "ErrorMsg", m, "code") == s.Err(timeout_row->error);
      if (r == Conn::Rx::kEof || timeout_error) {
        ctx.Note("the handshake deadline (" + Num(HandshakeMs(s)) + " ms after accept) passed " +
                 "while this row was played and ended the connection (" +
                 (timeout_error ? Describe(s, m) : std::string("closed")) + "): row " +
                 RowText(*timeout_row) + ", not a reaction to " + row.event +
                 "; the row's TO state cannot be probed on this run");
        return false;
      }
    }
  }
  if (r == Conn::Rx::kMsg) {
    ctx.Fail(req, "no message (row " + RowText(row) + ")", Describe(ctx.spec(), m), m.raw);
  }
  if (r == Conn::Rx::kEof && row.from != "CLOSED") {
    ctx.Fail(req, "the connection kept open (row " + RowText(row) + ")", "the IUT closed it");
  }
  return true;
}

// Receives the message a row makes the IUT send and checks its type and code.
TlvMsg ExpectSent(CaseContext& ctx, Conn& c, const TransitionDef& row, const RowOutcome& o,
                  const std::string& req, int timeout_ms, const StimParams& p) {
  const Spec& s = ctx.spec();
  const std::string want =
      o.send + (o.send_code.empty() ? "" : "(" + o.send_code + ")") + " (row " + RowText(row) + ")";
  TlvMsg m = RecvOrFail(ctx, c, req, want, timeout_ms);
  ctx.Expect(s.MsgName(m.type) == o.send, req, want, Describe(s, m), m.raw);
  static const std::map<std::string, std::pair<std::string, std::string>> code_field = {
      {"ERROR", {"ErrorMsg", "code"}},
      {"DETACH", {"Detach", "reason"}},
      {"HELLO_RESP", {"HelloResp", "status"}},
      {"ATTACH_RESP", {"AttachResp", "status"}}};
  auto cf = code_field.find(o.send);
  if (cf != code_field.end()) {
    const uint64_t got = PayloadField(s, cf->second.first, m, cf->second.second);
    const std::string code = o.send_code.empty() ? "OK" : o.send_code;
    ctx.Expect(got == s.Err(code), req, want, Describe(s, m), m.raw);
    if (got != 0 && (o.send == "HELLO_RESP" || o.send == "ATTACH_RESP")) {
      ctx.Expect(AllZero(std::span<const uint8_t>(m.payload).subspan(4)),
                 o.send == "HELLO_RESP" ? "MSG-HRESP-02" : "MSG-ARESP-02",
                 "every field but status zero in a refusing " + o.send, "nonzero bytes", m.raw);
    }
  }
  if (o.send == "PONG") {
    ctx.Expect(PayloadField(s, "Pong", m, "nonce") == p.nonce, "MSG-PING-01",
               "PONG with the PING's nonce " + Hex64(p.nonce), Describe(s, m), m.raw);
  }
  return m;
}

void ExpectClosed(CaseContext& ctx, Conn& c, const TransitionDef& row, const std::string& req,
                  std::optional<Deadline> closed_at, Deadline earliest) {
  ExpectCloseOnly(ctx, c, req, kReplyMs);
  if (closed_at && *closed_at < earliest) {
    const auto early =
        std::chrono::duration_cast<std::chrono::milliseconds>(earliest - *closed_at).count();
    ctx.Fail(req, "no close before the deadline (row " + RowText(row) + ")",
             "closed " + std::to_string(early) + " ms early");
  }
}

// ================================================================ IUT subscriber

class SubRowDriver {
 public:
  SubRowDriver(CaseContext& ctx, const StateMachineDef& m) : ctx_(ctx), s_(ctx.spec()), m_(m) {}

  void Start(uint64_t frames) {
    pub_ = std::make_unique<ScriptedPub>(ctx_, PubParams{});
    pub_->Create();
    sub_ = &pub_->StartSub({"--frames", Num(frames), "--timeout-ms", "6000", "--kind", "host"});
    accepted_ = Clock::now();
    pub_->ReadHello();  // HELLO_SENT
  }

  void Apply(const TransitionDef& row, const Stimulus& st) {
    ctx_.Note("apply " + row.event + " in " + row.from + ": " + st.what);
    StructView slot = pub_->SubSlot(0);
    switch (st.kind) {
      case StimKind::kBadSegment:
        pub_->Header().Set("layout_version", s_.Const("SEGMENT_LAYOUT_VERSION") + 1);
        [[fallthrough]];
      case StimKind::kMessage: {
        // The scripted publisher does what the row's sender does before it sends: it reserves
        // slot 0 before HELLO_RESP(OK) (SHM-SUB-02) and stores start_seq and ACTIVE before
        // ATTACH_RESP(OK) (MSG-ARESP-01), each only where the slot's state allows it.
        const bool ok_resp = st.code.empty() || st.kind == StimKind::kBadSegment;
        if (st.message == "HELLO_RESP" && ok_resp &&
            slot.Get("state") == s_.Enum("subscriber_slot_state", "FREE")) {
          pub_->HelloResp();
        }
        if (st.message == "ATTACH_RESP" && st.code.empty() &&
            slot.Get("state") == s_.Enum("subscriber_slot_state", "ATTACHING")) {
          start_seq_ = pub_->Header().Get("write_seq") + 1;
          slot.Set("start_seq", start_seq_);
          slot.Set("state", s_.Enum("subscriber_slot_state", "ACTIVE"));
        }
        params_.generation = static_cast<uint32_t>(slot.Get("generation"));
        params_.start_seq = start_seq_ ? start_seq_ : 1;
        pub_->conn().Send(st.bytes(s_, params_));
        break;
      }
      case StimKind::kEof:
        pub_->conn().ShutdownWrite();
        break;
      case StimKind::kHandshakeWait:
        WatchUntil(pub_->conn(), accepted_ + std::chrono::milliseconds(HandshakeMs(s_) + 300),
                   &closed_at_);
        break;
      case StimKind::kLocalClose:
        pub_->Publish();  // the adapter was started with --frames 1: it closes after this one
        break;
      default:
        ctx_.Fail("HARNESS", "a stimulus an IUT subscriber can receive",
                  StimKindName(st.kind) + std::string(" for ") + row.event);
    }
  }

  void Check(const TransitionDef& row, const Stimulus& st, const RowOutcome& o) {
    const std::string req = st.kind == StimKind::kHandshakeWait ? "SM-SUB-02" : "SM-SUB-01";
    const bool terminal = row.to == m_.states.back();
    Conn& c = pub_->conn();
    if (o.ignore) handshake_expired_ = !ExpectQuiet(ctx_, m_, c, row, req, accepted_);
    if (!o.send.empty()) {
      const TlvMsg m = ExpectSent(ctx_, c, row, o, req, kReplyMs, params_);
      if (o.send == "ATTACH_REQ") {
        ctx_.Expect(PayloadField(s_, "AttachReq", m, "subscriber_index") == 0 &&
                        PayloadField(s_, "AttachReq", m, "generation") == params_.generation,
                    "MSG-ATTACH-01",
                    "ATTACH_REQ echoing index 0 and generation " + Num(params_.generation),
                    Describe(s_, m), m.raw);
      }
    }
    if (o.close) {
      ExpectClosed(ctx_, c, row, req, closed_at_,
                   accepted_ + std::chrono::milliseconds(st.kind == StimKind::kHandshakeWait
                                                             ? HandshakeMs(s_) - 250
                                                             : 0));
    }
    if (row.event == "ATTACH_RESP_OK" && row.to != row.from && !terminal) {
      size_t from = 0;
      const nlohmann::json* e = sub_->WaitEvent("attached", In(kReplyMs), &from);
      ctx_.Expect(e != nullptr && e->value("start_seq", uint64_t{0}) == start_seq_, req,
                  "the adapter reports attached with start_seq " + Num(start_seq_),
                  e ? e->dump() : "no attached event; adapter " + sub_->StatusText());
    }
    if (terminal && row.from != row.to) {
      if (!o.report.empty()) {
        ExpectAdapterError(ctx_, *sub_, o.report, req,
                           st.kind == StimKind::kHandshakeWait ? HandshakeMs(s_) + 2500 : 4000,
                           true);
      } else {
        WaitExitOrFail(ctx_, *sub_, req, 4000);
        const nlohmann::json* e = FindError(*sub_);
        ctx_.Expect(sub_->exit_code() == 0 && !e, req,
                    "the adapter ends its session without error (row " + RowText(row) + ")",
                    sub_->StatusText() + (e ? "; " + e->dump() : ""));
      }
    } else if (terminal) {
      // CLOSED stays CLOSED: the session the adapter finished is not reopened or failed late.
      WaitExitOrFail(ctx_, *sub_, req, 4000);
      const nlohmann::json* e = FindError(*sub_);
      ctx_.Expect(
          sub_->exit_code() == 0 && !e, req,
          "the closed session stays closed: exit 0, no error event (row " + RowText(row) + ")",
          sub_->StatusText() + (e ? "; " + e->dump() : ""));
    } else {
      sub_->Pump(0);
      const nlohmann::json* e = FindError(*sub_);
      ctx_.Expect(sub_->running() && !e, req,
                  "the subscriber keeps its session (row " + RowText(row) + ")",
                  "adapter " + sub_->StatusText() + (e ? "; " + e->dump() : ""));
    }
  }

  // Proves the IUT is in `state` by applying the next OK row from it (or, in ACTIVE, by having a
  // frame delivered).
  bool handshake_expired() const { return handshake_expired_; }

  void Probe(const std::string& state) {
    if (const auto r = ProbeRow(m_, Role::kSubscriber, state)) {
      ctx_.Note("probe " + state + " with " + r->event);
      const Stimulus& st = *FindStimulus(Role::kSubscriber, r->event);
      RowOutcome o;
      std::string err;
      if (!ParseOutcome(*r, st, &o, &err)) ctx_.Fail("HARNESS", "a readable probe row", err);
      Apply(*r, st);
      Check(*r, st, o);
      Probe(r->to);
      return;
    }
    if (state == "ACTIVE") {
      ctx_.Note("probe ACTIVE: one frame is delivered");
      const uint64_t n = pub_->Publish();
      size_t from = 0;
      const nlohmann::json* e = sub_->WaitFor(
          [n](const nlohmann::json& j) {
            return j.value("event", "") == "frame" && j.value("seq", uint64_t{0}) == n;
          },
          In(kReplyMs), &from);
      ctx_.Expect(e != nullptr, "SM-SUB-01", "frame " + Num(n) + " delivered in ACTIVE",
                  "none; adapter " + sub_->StatusText());
    }
  }

 private:
  CaseContext& ctx_;
  const Spec& s_;
  const StateMachineDef& m_;
  std::unique_ptr<ScriptedPub> pub_;
  Process* sub_ = nullptr;
  Deadline accepted_;
  std::optional<Deadline> closed_at_;
  bool handshake_expired_ = false;  // ExpectQuiet saw the handshake deadline end the connection
  uint64_t start_seq_ = 0;
  StimParams params_;
};

// ================================================================ IUT publisher

class PubRowDriver {
 public:
  PubRowDriver(CaseContext& ctx, const StateMachineDef& m) : ctx_(ctx), s_(ctx.spec()), m_(m) {}

  // Starts the publisher for `row` and connects (AWAIT_HELLO). The ACK rows need frames to be
  // committed, and a keeper: a well-behaved subscriber that stays ACTIVE so the publisher keeps
  // serving (it shuts down once no subscriber is ACTIVE, ADAPTER.md --linger-ms) while the row's
  // outcome is watched.
  void Start(const TransitionDef& row) {
    const bool ack = row.event == "ACK_TIMEOUT" || row.event == "ACK_GARBAGE";
    frames_ = ack ? 4 : 0;
    const bool two =
        row.event == "ACK_TIMEOUT" || (row.event == "ACK_GARBAGE" && row.from == "ACTIVE");
    std::vector<std::string> args = {
        "--key",         ctx_.key(),    "--frames",
        Num(frames_),    "--slots",     "2",
        "--bytes",       "4096",        "--wait-subscribers",
        two ? "2" : "1", "--linger-ms", row.event == "LOCAL_SHUTDOWN" ? "300" : "8000"};
    if (row.event == "ACK_TIMEOUT") args.insert(args.end(), {"--ack-timeout-ms", "300"});
    pub_ = &StartPub(ctx_, args);
    std::string error;
    seg_ = ShmFile::Open(ctx_.SegmentPath(), true, &error);
    if (!seg_) ctx_.Fail("RES-NAME-01", "the segment exists once the publisher is ready", error);
    a_ = std::make_unique<ScriptedSub>(ctx_);
    a_->Connect();
    accepted_ = Clock::now();
  }

  // Attaches the keeper and has it read and release frames first..last.
  void Keep(uint64_t count) {
    keeper_ = std::make_unique<ScriptedSub>(ctx_);
    const uint64_t start = keeper_->Handshake();
    for (uint64_t n = start; n < start + count; ++n) {
      keeper_->ReadFrame(n);
      keeper_->Ack(n);
    }
  }

  StructView Header() { return StructView(s_, "SegmentHeader", seg_->span()); }
  StructView Slot(uint32_t i) {
    return StructView(s_, "SubscriberSlot", seg_->span(),
                      Header().Get("sub_slot_offset") + s_.Size("SubscriberSlot") * i);
  }
  uint32_t slots() { return static_cast<uint32_t>(Header().Get("max_subscribers")); }

  void Apply(const TransitionDef& row, const Stimulus& st) {
    ctx_.Note("apply " + row.event + " in " + row.from + ": " + st.what);
    switch (st.kind) {
      case StimKind::kMessage:
        if (row.event == "HELLO_REQ_OK") {
          gens_before_.clear();
          for (uint32_t i = 0; i < slots(); ++i)
            gens_before_.push_back(Slot(i).Get("generation"));
        }
        write_seq_before_ = Header().Get("write_seq");
        a_->Send(st.bytes(s_, params_));
        break;
      case StimKind::kEof:
        a_->conn().ShutdownWrite();
        break;
      case StimKind::kHandshakeWait:
        WatchUntil(a_->conn(), accepted_ + std::chrono::milliseconds(HandshakeMs(s_) + 300),
                   &closed_at_);
        break;
      case StimKind::kAckTimeout:
        if (row.from != "ACTIVE") {
          // The ACK timer of an ACTIVE subscriber fires for real (it is evicted) while the
          // connection under test, not ACTIVE, must not be touched.
          helper_ = std::make_unique<ScriptedSub>(ctx_);
          helper_->Handshake();
          Keep(2);
          ExpectErrorClose(ctx_, helper_->conn(), "EVICTED", "ACK-EVICT-01", kReplyMs);
        } else {
          Keep(2);  // frames 1 and 2 stay unreleased by the connection under test
        }
        break;
      case StimKind::kAckGarbage:
        AckGarbage(row);
        break;
      case StimKind::kLocalShutdown:
        if (row.from != "ACTIVE") {
          // --wait-subscribers 1: an ACTIVE helper lets the publisher finish its 0 frames and
          // shut down after --linger-ms 300, with the connection under test in FROM.
          helper_ = std::make_unique<ScriptedSub>(ctx_);
          helper_->Handshake();
        }
        break;
      default:
        ctx_.Fail("HARNESS", "a stimulus an IUT publisher can receive",
                  StimKindName(st.kind) + std::string(" for ") + row.event);
    }
  }

  void AckGarbage(const TransitionDef& row) {
    StructView h = Header();
    if (row.from == "ACTIVE") {
      // Both slots full and the publisher waiting for our ACK: then ack_seq = write_seq + 1, the
      // first value beyond what was delivered (ACK-EVICT-02 at its edge).
      Keep(2);
      const Deadline d = In(kReplyMs);
      while (h.Get("ack_waiting") != 1 && Clock::now() < d) {
        FutexWait(h.Bytes("frame_futex").data(), static_cast<uint32_t>(h.Get("frame_futex")), 20);
      }
      StoreAck(index_, h.Get("write_seq") + 1);
      return;
    }
    // Not ACTIVE: the value goes into our reserved slot, if any, and every FREE slot; an ACTIVE
    // helper then reads and releases every frame, so the publisher checks ACKs meanwhile.
    const uint64_t v = h.Get("write_seq") + 1;
    for (uint32_t i = 0; i < slots(); ++i) {
      if ((has_slot_ && i == index_) ||
          Slot(i).Get("state") == s_.Enum("subscriber_slot_state", "FREE")) {
        StoreAck(i, v);
      }
    }
    Keep(frames_);
    if (has_slot_) Slot(index_).Set("ack_seq", 0);
  }

  void StoreAck(uint32_t i, uint64_t v) {
    Slot(i).Set("ack_seq", v);
    StructView h = Header();
    AtomicIncrement32(h.Bytes("ack_futex").data());
    FutexWakeAll(h.Bytes("ack_futex").data());
  }

  void Check(const TransitionDef& row, const Stimulus& st, const RowOutcome& o) {
    const std::string req = st.kind == StimKind::kHandshakeWait ? "SM-PUB-02" : "SM-PUB-01";
    Conn& c = a_->conn();
    if (o.ignore) handshake_expired_ = !ExpectQuiet(ctx_, m_, c, row, req, accepted_);
    bool seen_evicted = false;
    if (o.slot_evicted) {
      // EVICTED lasts from the eviction to the free: sample the slot until the ERROR arrives.
      StructView me = Slot(index_);
      const Deadline d = In(kReplyMs);
      const size_t seen = c.received().size();
      const uint64_t evicted = s_.Enum("subscriber_slot_state", "EVICTED");
      // The window is short (the reference frees the slot right after sending ERROR), so the
      // slot is sampled without a system call between samples; the socket only now and then.
      std::string states;
      uint64_t last = 99;
      for (uint32_t i = 1; !seen_evicted; ++i) {
        const uint64_t now_state = me.Get("state");
        if (now_state != last) states += " " + Num(now_state);
        last = now_state;
        if (now_state == evicted) seen_evicted = true;
        if (i % 4096 == 0 && (c.PeerClosed() || c.received().size() > seen || Clock::now() >= d))
          break;
      }
      ctx_.Note("slot " + Num(index_) + " states sampled:" + states);
      if (me.Get("state") == s_.Enum("subscriber_slot_state", "EVICTED")) seen_evicted = true;
    }
    if (!o.send.empty()) {
      const int wait = st.kind == StimKind::kHandshakeWait ? HandshakeMs(s_) + 2500 : kReplyMs;
      const TlvMsg m = ExpectSent(ctx_, c, row, o, req, wait, params_);
      if (o.send == "HELLO_RESP" && o.send_code == "OK") CheckReserved(m);
      if (o.send == "ATTACH_RESP" && o.send_code == "OK") CheckActive(m);
    }
    if (o.close) {
      ExpectClosed(ctx_, c, row, req, closed_at_,
                   accepted_ + std::chrono::milliseconds(st.kind == StimKind::kHandshakeWait
                                                             ? HandshakeMs(s_) - 250
                                                             : 0));
    }
    if (o.slot_evicted) {
      // The reference frees the slot microseconds after the ERROR, so the EVICTED state is
      // recorded when seen but cannot be required (see the sampled sequence in the log); what is
      // required is that the slot never serves this connection again: FREE below, not ACTIVE.
      ctx_.Note(std::string("EVICTED ") + (seen_evicted ? "observed" : "not observed") +
                " between the eviction and the free");
      StructView me = Slot(index_);
      ctx_.Expect(me.Get("state") != s_.Enum("subscriber_slot_state", "ACTIVE"), "ACK-EVICT-04",
                  "slot " + Num(index_) + " no longer ACTIVE once ERROR was sent (row " +
                      RowText(row) + ")",
                  "ACTIVE", me.All(), me.base());
    }
    if (row.from == "ACTIVE" && row.to == m_.states.back() && st.kind != StimKind::kLocalShutdown) {
      // The publisher's local report (the error column) for a subscriber that was ACTIVE: the
      // adapter's "evicted" or "detached" event for its index, whose reason is the code's name
      // (ADAPTER.md ADP-FMT-01).
      const std::string want = o.report.empty() ? "OK" : o.report;
      size_t from = 0;
      const uint32_t idx = index_;
      const nlohmann::json* e = pub_->WaitFor(
          [idx](const nlohmann::json& j) {
            const std::string ev = j.value("event", "");
            return (ev == "evicted" || ev == "detached") && j.value("index", ~0u) == idx;
          },
          In(kReplyMs), &from);
      const std::string expected = "the adapter reports subscriber " + Num(idx) +
                                   " left with reason \"" + want + "\" (row " + RowText(row) + ")";
      const std::string actual =
          e ? e->dump() : "no evicted/detached event; adapter " + pub_->StatusText();
      ctx_.Expect(e && e->contains("reason") && (*e)["reason"].is_string(), "ADP-FMT-01", expected,
                  actual);
      ctx_.Expect((*e)["reason"].get<std::string>() == want, req, expected, actual);
    }
    if (o.free_slot && has_slot_) {
      StructView me = Slot(index_);
      const Deadline d = In(2000);
      while (me.Get("state") != s_.Enum("subscriber_slot_state", "FREE") && Clock::now() < d) {
        FutexWait(Header().Bytes("ack_futex").data(),
                  static_cast<uint32_t>(Header().Get("ack_futex")), 10);
      }
      ctx_.Expect(
          me.Get("state") == s_.Enum("subscriber_slot_state", "FREE"), "ACK-EVICT-04",
          "slot " + Num(index_) + " FREE after the connection closed (row " + RowText(row) + ")",
          "state " + Num(me.Get("state")), me.All(), me.base());
      has_slot_ = false;
    }
  }

  void CheckReserved(const TlvMsg& m) {
    index_ = static_cast<uint32_t>(PayloadField(s_, "HelloResp", m, "subscriber_index"));
    params_.subscriber_index = index_;
    params_.generation = static_cast<uint32_t>(PayloadField(s_, "HelloResp", m, "generation"));
    ctx_.Expect(index_ < slots(), "MSG-HRESP-01", "subscriber_index < max_subscribers", Num(index_),
                m.raw);
    has_slot_ = true;
    StructView me = Slot(index_);
    ctx_.Expect(me.Get("state") == s_.Enum("subscriber_slot_state", "ATTACHING"), "SHM-SUB-02",
                "slot " + Num(index_) + " ATTACHING once HELLO_RESP(OK) is sent",
                "state " + Num(me.Get("state")), me.All(), me.base());
    const uint64_t before = index_ < gens_before_.size() ? gens_before_[index_] : 0;
    ctx_.Expect(
        me.Get("generation") == ((before + 1) & 0xffffffffu) &&
            me.Get("generation") == params_.generation,
        "SHM-SUB-02",
        "generation " + Num(before) + " + 1, as HELLO_RESP says (" + Num(params_.generation) + ")",
        Num(me.Get("generation")), me.All(), me.base());
    ctx_.Expect(me.Get("ack_seq") == 0, "SHM-SUB-02", "ack_seq zeroed on reservation",
                Num(me.Get("ack_seq")), me.All(), me.base());
    // Reserved means taken: a second subscriber's HELLO_REQ, before this one attaches, gets
    // another slot (a publisher that marked the slot ATTACHING only in shared memory, not in
    // its own bookkeeping, hands out the same slot twice).
    ScriptedSub other(ctx_);
    other.Connect();
    other.Send(FindStimulus(Role::kPublisher, "HELLO_REQ_OK")->bytes(s_, params_));
    TlvMsg o = RecvOrFail(ctx_, other.conn(), "SHM-SUB-02", "HELLO_RESP for a second subscriber",
                          kReplyMs);
    const uint64_t other_index = PayloadField(s_, "HelloResp", o, "subscriber_index");
    ctx_.Expect(
        s_.MsgName(o.type) != "HELLO_RESP" || PayloadField(s_, "HelloResp", o, "status") != 0 ||
            other_index != index_,
        "SHM-SUB-02",
        "a second subscriber's HELLO_RESP names a slot other than the reserved " + Num(index_),
        Describe(s_, o), o.raw);
    ctx_.Expect(me.Get("state") == s_.Enum("subscriber_slot_state", "ATTACHING") &&
                    me.Get("generation") == params_.generation,
                "SHM-SUB-02",
                "slot " + Num(index_) + " still ours (ATTACHING, generation " +
                    Num(params_.generation) + ") after a second HELLO_REQ",
                "state " + Num(me.Get("state")) + " generation " + Num(me.Get("generation")),
                me.All(), me.base());
  }

  void CheckActive(const TlvMsg& m) {
    const uint64_t start = PayloadField(s_, "AttachResp", m, "start_seq");
    StructView me = Slot(index_);
    const uint64_t ws = Header().Get("write_seq");
    ctx_.Expect(me.Get("state") == s_.Enum("subscriber_slot_state", "ACTIVE") &&
                    me.Get("start_seq") == start,
                "MSG-ARESP-01", "slot ACTIVE with start_seq " + Num(start) + " at ATTACH_RESP(OK)",
                "state " + Num(me.Get("state")) + " start_seq " + Num(me.Get("start_seq")),
                me.All(), me.base());
    ctx_.Expect(
        start >= write_seq_before_ + 1 && start <= ws + 1, "MSG-ARESP-01",
        "start_seq = write_seq + 1 (write_seq " + Num(write_seq_before_) + ".." + Num(ws) + ")",
        Num(start), m.raw);
  }

  bool handshake_expired() const { return handshake_expired_; }

  void Probe(const std::string& state) {
    if (const auto r = ProbeRow(m_, Role::kPublisher, state)) {
      ctx_.Note("probe " + state + " with " + r->event);
      const Stimulus& st = *FindStimulus(Role::kPublisher, r->event);
      RowOutcome o;
      std::string err;
      if (!ParseOutcome(*r, st, &o, &err)) ctx_.Fail("HARNESS", "a readable probe row", err);
      Apply(*r, st);
      Check(*r, st, o);
      Probe(r->to);
      return;
    }
    if (state == "ACTIVE") {
      ctx_.Note("probe ACTIVE: the slot is ACTIVE and PING is answered");
      StructView me = Slot(index_);
      ctx_.Expect(me.Get("state") == s_.Enum("subscriber_slot_state", "ACTIVE"), "SM-PUB-01",
                  "slot " + Num(index_) + " still ACTIVE", "state " + Num(me.Get("state")),
                  me.All(), me.base());
      StimParams p = params_;
      p.nonce = 0x5a5a5a5a00000000ULL | index_;
      a_->Send(FindStimulus(Role::kPublisher, "PING")->bytes(s_, p));
      TlvMsg m = RecvOrFail(ctx_, a_->conn(), "MSG-PING-01", "PONG in ACTIVE", kReplyMs);
      ctx_.Expect(s_.MsgName(m.type) == "PONG" && PayloadField(s_, "Pong", m, "nonce") == p.nonce,
                  "MSG-PING-01", "PONG with nonce " + Hex64(p.nonce), Describe(s_, m), m.raw);
    }
  }

 private:
  CaseContext& ctx_;
  const Spec& s_;
  const StateMachineDef& m_;
  Process* pub_ = nullptr;
  std::unique_ptr<ShmFile> seg_;
  std::unique_ptr<ScriptedSub> a_;
  std::unique_ptr<ScriptedSub> helper_;
  std::unique_ptr<ScriptedSub> keeper_;
  Deadline accepted_;
  std::optional<Deadline> closed_at_;
  bool handshake_expired_ = false;  // ExpectQuiet saw the handshake deadline end the connection
  uint64_t frames_ = 0;
  uint32_t index_ = 0;
  bool has_slot_ = false;
  std::vector<uint64_t> gens_before_;
  uint64_t write_seq_before_ = 0;
  StimParams params_;
};

// ================================================================ the generated cases

template <class Driver>
void RunRow(CaseContext& ctx, Driver& drv, Role iut, const StateMachineDef& m,
            const TransitionDef& row, const Stimulus& st, const std::vector<TransitionDef>& path) {
  for (const TransitionDef& step : path) {
    const Stimulus& s = *FindStimulus(iut, step.event);
    RowOutcome o;
    std::string err;
    if (!ParseOutcome(step, s, &o, &err)) ctx.Fail("HARNESS", "a readable path row", err);
    drv.Apply(step, s);
    drv.Check(step, s, o);
  }
  RowOutcome o;
  std::string err;
  if (!ParseOutcome(row, st, &o, &err)) {
    ctx.Fail("HARNESS", "an action and error column the harness can check", err);
  }
  for (const std::string& c : o.internal)
    ctx.Note("not observable at the wire, checked through what follows it: " + c);
  drv.Apply(row, st);
  drv.Check(row, st, o);
  if (row.to != m.states.back() && !drv.handshake_expired()) drv.Probe(row.to);
}

void RowCase(CaseContext& ctx, Role iut, const TransitionDef& row) {
  const Spec& s = ctx.spec();
  const StateMachineDef& m = s.Machine(MachineName(iut));
  const Stimulus* st = FindStimulus(iut, row.event);
  if (!st) {
    ctx.Fail("HARNESS", "a stimulus for twin event " + row.event + " (conformance/src/stimulus.cc)",
             "none: add one, or exempt the row in conformance/transition_exemptions.txt");
  }
  if (!st->CausableIn(row.from)) {
    ctx.Fail("HARNESS", "a way to cause " + row.event + " in " + row.from,
             "the stimulus works only in its only_in states; exempt the row with a reason");
  }
  std::vector<TransitionDef> path;
  std::string err;
  if (!PathTo(m, iut, row.from, &path, &err)) ctx.Fail("HARNESS", "a path to " + row.from, err);
  ctx.Note("row " + RowText(row));
  if (iut == Role::kSubscriber) {
    bool local_close = row.event == "LOCAL_CLOSE";
    for (const TransitionDef& p : path)
      local_close = local_close || p.event == "LOCAL_CLOSE";
    SubRowDriver drv(ctx, m);
    drv.Start(local_close ? 1 : 3);
    RunRow(ctx, drv, iut, m, row, *st, path);
  } else {
    PubRowDriver drv(ctx, m);
    drv.Start(row);
    RunRow(ctx, drv, iut, m, row, *st, path);
  }
}

void Generate(const Spec& spec, std::vector<CaseDef>* out) {
  for (Role iut : {Role::kSubscriber, Role::kPublisher}) {
    const StateMachineDef& m = spec.Machine(MachineName(iut));
    const std::string sm = iut == Role::kSubscriber ? "SM-SUB-01" : "SM-PUB-01";
    for (const TransitionDef& row : m.transitions) {
      CaseDef d;
      d.id = RowCaseId(iut, row);
      const Stimulus* st = FindStimulus(iut, row.event);
      d.title = row.event + " in " + row.from + " -> " + row.to + ": " + row.action + " (error " +
                row.error + "); stimulus: " + (st ? st->what : "NONE");
      d.reqs = {sm};
      if (st) {
        for (const std::string& r : st->reqs) {
          if (std::find(d.reqs.begin(), d.reqs.end(), r) == d.reqs.end()) d.reqs.push_back(r);
        }
      }
      d.role = iut;
      d.needs = Needs{1, "host", row.event == "ACK_TIMEOUT" ? "ack-timeout" : ""};
      d.fn = [iut, row](CaseContext& ctx) {
        RowCase(ctx, iut, row);
      };
      out->push_back(std::move(d));
    }
  }
}

const GeneratorRegistrar kRows(&Generate);

}  // namespace
}  // namespace cuframes::conform
