// wake.cc: wake forwarding (spec 2.7, SHM-WAKE-01/02). A subscriber that announces
// WAKE_FORWARD passes each frame wake-up on to two more waiters; a publisher wakes every waiter
// unless every subscriber holding a slot forwards. The harness queues its own sleepers on
// frame_futex, in frame n's bitset and counted in frame_waiters like any subscriber, and counts
// who was woken: a forwarder that forgets to forward, uses another bitset or forwards only when
// its application is done with the frame leaves them to their timeout, and so does a publisher
// that wakes two while a subscriber that never forwards is attached.
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kPub = Role::kPublisher;
constexpr Role kSub = Role::kSubscriber;
// Version 3 (wake forwarding), HOST, no optional feature.
const Needs kV3{3, "host", ""};

std::string N(uint64_t v) {
  return std::to_string(v);
}

uint32_t FrameBits(uint64_t n) {
  return 1u << (n & 31);
}

// `count` harness threads asleep on frame_futex for frame n: each loads the word, counts itself
// in frame_waiters, re-checks write_seq < n and waits in frame n's bitset (SHM-ORDER-04,
// SHM-WAKE-01), at most `timeout_ms`. With `closed` (the segment state CLOSED) they wait instead
// for that state, in every bitset, and wait again after any wake-up that came before it: what
// counts is whether CLOSED itself woke them. They start one at a time, each seen asleep before
// the next, so that the kernel queues them in that order behind whoever slept before them.
// Waiters not woken by the end are woken by the destructor.
class FrameSleepers {
 public:
  FrameSleepers(StructView h, uint64_t n, int count, int timeout_ms,
                std::optional<uint32_t> closed = {})
      : h_(h) {
    ends_ = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(count));
    for (int i = 0; i < count; ++i) {
      ends_[i].store(kRunning);
      std::atomic<pid_t> tid{0};
      threads_.emplace_back([this, i, n, timeout_ms, closed, &tid] {
        tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
        std::atomic_ref<uint32_t> waiters(
            *reinterpret_cast<uint32_t*>(h_.Bytes("frame_waiters").data()));
        const Deadline until = In(timeout_ms);
        const uint32_t bits = closed ? ~0u : FrameBits(n);
        const auto waiting = [&] {
          return closed ? h_.Get("state") != *closed : h_.Get("write_seq") < n;
        };
        WaitEnd end = WaitEnd::kChanged;
        do {
          const auto word = static_cast<uint32_t>(h_.Get("frame_futex"));
          waiters.fetch_add(1);
          end = waiting() ? FutexWaitBitset(h_.Bytes("frame_futex").data(), word,
                                            MsLeft(until, timeout_ms), bits)
                          : WaitEnd::kChanged;
          waiters.fetch_sub(1);
        } while (closed && end != WaitEnd::kTimeout && waiting());
        ends_[i].store(end == WaitEnd::kWoken     ? kWoken
                       : end == WaitEnd::kTimeout ? kTimedOut
                                                  : kChanged);
        std::atomic_ref<uint32_t>(ended_).fetch_add(1);
        FutexWakeAll(&ended_);
      });
      while (tid.load() == 0)
        std::this_thread::yield();
      parked_ = parked_ && ThreadParkedOnFutex(tid.load(), 2000);
    }
  }
  ~FrameSleepers() {
    for (size_t i = 0; i < threads_.size(); ++i) {
      while (ends_[i].load() == kRunning)
        FutexWakeBitset(h_.Bytes("frame_futex").data(), 1 << 30, ~0u);
      threads_[i].join();
    }
  }
  FrameSleepers(const FrameSleepers&) = delete;
  FrameSleepers& operator=(const FrameSleepers&) = delete;

  // Every thread was seen asleep in its wait before the next one started.
  bool parked() const { return parked_; }
  // Waits until `want` of them were woken or `ms` passed (a timed-out one still counts as
  // ended); returns how many were woken.
  int WaitWoken(int want, int ms) {
    const Deadline until = In(ms);
    for (;;) {
      const uint32_t seen = std::atomic_ref<uint32_t>(ended_).load();
      int woken = 0;
      int ended = 0;
      for (size_t i = 0; i < threads_.size(); ++i) {
        const int e = ends_[i].load();
        woken += e == kWoken ? 1 : 0;
        ended += e != kRunning ? 1 : 0;
      }
      if (woken >= want || ended == static_cast<int>(threads_.size()) || Clock::now() >= until) {
        return woken;
      }
      FutexWait(&ended_, seen, MsLeft(until, ms));  // until one more of them ends
    }
  }
  // How many saw frame n committed before they could sleep (EAGAIN or write_seq >= n).
  int changed() const {
    int c = 0;
    for (size_t i = 0; i < threads_.size(); ++i)
      c += ends_[i].load() == kChanged ? 1 : 0;
    return c;
  }

 private:
  static constexpr int kRunning = 0, kWoken = 1, kTimedOut = 2, kChanged = 3;
  StructView h_;
  std::unique_ptr<std::atomic<int>[]> ends_;
  std::vector<std::thread> threads_;
  alignas(4) uint32_t ended_ = 0;  // how many waits ended: a futex word WaitWoken sleeps on
  bool parked_ = true;
};

// ---- the IUT subscriber forwards (SHM-WAKE-01) ----

// The subscriber holds each frame 600 ms, so a forwarder that passes the wake-up on only when
// its application is done with the frame (or at its next wait) is late for our waiters, which
// give up after 450 ms. The harness wakes one waiter itself, in frame n's bitset: the
// subscriber, asleep before our waiters queued. When that wake-up found one of ours first (the
// subscriber's bounded wait ran out and it queued again, behind ours, in that instant), exactly
// one of ours is woken and the round is repeated, at most twice.
CF_CASE(SubForwards, "2.7/subscriber-forwards-the-wake-up",
        "a subscriber that announces WAKE_FORWARD, woken alone by FUTEX_WAKE_BITSET (count 1, "
        "frame n's bitset), wakes at least two of three harness waiters queued behind it in "
        "frame n's bitset while it still holds frame n (600 ms), for two frames",
        (std::vector<std::string>{"SHM-WAKE-01"}), kSub, kV3) {
  PubParams p;
  p.proto = 3;
  ScriptedPub pub(ctx, p);
  Process& sub = pub.StartAttached(
      {"--frames", "100", "--hold-ms", "600", "--timeout-ms", "10000", "--kind", "host"});
  const uint32_t forward = ctx.spec().Enum("hello_req_caps", "WAKE_FORWARD");
  if ((pub.hello_caps() & forward) == 0) {
    ctx.Unsupported("the subscriber's HELLO_REQ caps (" + N(pub.hello_caps()) +
                    ") do not announce WAKE_FORWARD: SHM-WAKE-01 binds only one that does");
  }
  StructView h = pub.Header();
  int good = 0;
  int repeated = 0;
  for (uint64_t n = 1; good < 2; ++n) {
    // Frame n - 1 is held 600 ms, then released; then the subscriber waits for frame n.
    const bool counted = WaitParked(pub, "frame_waiters", sub, 5000);
    if (!counted || !ProcessParkedOnFutex(sub.pid(), 2000)) {
      ctx.Unsupported(
          "waiting for frame " + N(n) + " the subscriber was not seen asleep in " +
          "a futex wait, counted in frame_waiters (counted: " + (counted ? "yes" : "no") +
          "): it polls (SHM-ORDER-03), so no wake-up reaches it to pass on");
    }
    FrameSleepers ours(h, n, 3, 450);
    if (!ours.parked()) ctx.Fail("HARNESS", "our 3 waiters asleep on frame_futex", "not seen");
    pub.WriteFrame(n, pub.params().slot_bytes);
    pub.Commit(n, n, false);
    const int direct = FutexWakeBitset(h.Bytes("frame_futex").data(), 1, FrameBits(n));
    const int woken = ours.WaitWoken(2, 450);
    if (woken == 1 && repeated < 2) {
      ++repeated;
      ctx.Note("frame " + N(n) + ": one of our waiters woken, which our own wake-up may have " +
               "found first; round repeated");
      continue;
    }
    ctx.Expect(woken >= 2, "SHM-WAKE-01",
               "frame " + N(n) + ": woken by FUTEX_WAKE_BITSET(count 1, bitset " + N(FrameBits(n)) +
                   ") while queued before our 3 waiters in that bitset, the " +
                   "subscriber wakes at least 2 of them within 450 ms, holding the frame 600 ms",
               N(woken) + " of ours woken (" + N(ours.changed()) +
                   " saw the frame before sleeping; our wake-up woke " + N(direct) + "); " +
                   sub.StatusText(),
               h.All().subspan(0, 128));
    ++good;
  }
  ::kill(sub.pid(), SIGTERM);
  WaitExitOrFail(ctx, sub, "ADP-SIG-01", 5000);
}

// ---- the IUT publisher wakes every waiter unless all forward (SHM-WAKE-02) ----

// Waits (bounded) until the IUT publisher (2 slots) blocks for an ACK with frame `seq` committed
// and frame seq + 1 not.
void WaitBlockedAt(CaseContext& ctx, ScriptedSub& s, uint64_t seq) {
  WaitBlockedOrPast(s, seq, 5000);
  StructView h = s.Header();
  ctx.Expect(h.Get("write_seq") == seq && h.Get("ack_waiting") == 1, "ACK-REUSE-01",
             "the publisher (2 slots) commits frames 1.." + N(seq) + " and then waits for an ACK",
             "write_seq " + N(h.Get("write_seq")) + ", ack_waiting " + N(h.Get("ack_waiting")),
             h.All().subspan(0, 128));
}

HelloParams V3Hello(uint32_t caps) {
  HelloParams hp;
  hp.max_proto = 3;
  hp.caps = caps;
  return hp;
}

// The IUT publisher (2 slots) with scripted subscribers `forwarding` (announcing WAKE_FORWARD)
// and `plain` (not); frames 1 and 2 committed, the publisher blocked for frame 1's ACKs. Four
// harness waiters then sleep for frame 3; `act` makes the publisher commit it (or shut down);
// Woken returns how many of the four it woke within 1500 ms (their own timeout is 4000 ms).
// `max_proto` caps the publisher (--max-proto) when nonzero.
struct WakeScene {
  WakeScene(CaseContext& c, int forwarding, int plain, int max_proto = 0) : ctx_(c) {
    const uint32_t forward = c.spec().Enum("hello_req_caps", "WAKE_FORWARD");
    const auto subs = static_cast<uint64_t>(forwarding + plain);
    std::vector<std::string> args = PubArgs(c, 3, 2, subs);
    if (max_proto != 0) {
      args.push_back("--max-proto");
      args.push_back(N(static_cast<uint64_t>(max_proto)));
    }
    pub_ = &StartPub(c, args);
    for (int i = 0; i < forwarding + plain; ++i) {
      subs_.push_back(std::make_unique<ScriptedSub>(c));
      subs_.back()->Handshake(V3Hello(i < forwarding ? forward : 0));
    }
    for (auto& s : subs_) {
      s->ReadFrame(1);
      s->ReadFrame(2);
    }
    WaitBlockedAt(c, *subs_[0], 2);
  }
  ScriptedSub& sub(size_t i) { return *subs_[i]; }
  Process& pub() { return *pub_; }
  template <class Act>
  int Woken(Act&& act, std::optional<uint32_t> closed = {}) {
    StructView h = subs_[0]->Header();
    FrameSleepers ours(h, 3, 4, 4000, closed);
    if (!ours.parked()) ctx_.Fail("HARNESS", "our 4 waiters asleep on frame_futex", "not seen");
    act();
    const int woken = ours.WaitWoken(4, 1500);
    if (ours.changed() != 0) {
      ctx_.Unsupported(N(ours.changed()) + " of our waiters saw frame 3 before they slept");
    }
    return woken;
  }
  CaseContext& ctx_;
  Process* pub_ = nullptr;
  std::vector<std::unique_ptr<ScriptedSub>> subs_;
};

CF_CASE(PubWakesAllBesidePlain, "2.7/publisher-wakes-all-beside-a-non-forwarder",
        "with a version 3 subscriber attached that does not announce WAKE_FORWARD, the commit "
        "of a frame wakes all 4 of the harness's waiters counted in frame_waiters",
        (std::vector<std::string>{"SHM-WAKE-02", "SHM-ORDER-02"}), kPub, kV3) {
  WakeScene scene(ctx, 0, 1);
  const int woken = scene.Woken([&] { scene.sub(0).Ack(1); });
  ctx.Expect(woken == 4, "SHM-WAKE-02",
             "the commit of frame 3 wakes every waiter (4 of ours, in frame 3's bitset, counted "
             "in frame_waiters) while a subscriber without WAKE_FORWARD holds a slot",
             N(woken) + " of 4 woken within 1500 ms");
}

// SHM-WAKE-02 counts a subscriber as a forwarder only in a session of version 3 or higher: one
// that announces WAKE_FORWARD to a publisher capped at version 2 waits with a plain FUTEX_WAIT
// and passes nothing on, so that publisher wakes every waiter.
CF_CASE(PubWakesAllForV2Session, "2.7/publisher-wakes-all-in-a-version-2-session",
        "a publisher capped by --max-proto 2, whose only subscriber announced WAKE_FORWARD "
        "(max_proto 3) and so negotiated version 2, wakes all 4 of the harness's waiters at a "
        "commit",
        (std::vector<std::string>{"SHM-WAKE-02"}), kPub, (Needs{3, "host", "max-proto"})) {
  WakeScene scene(ctx, 1, 0, 2);
  const uint64_t proto = scene.sub(0).hello().proto_version;
  ctx.Expect(proto == 2, "VER-NEG-05", "HELLO_RESP proto_version 2 under --max-proto 2",
             "proto_version " + N(proto));
  const int woken = scene.Woken([&] { scene.sub(0).Ack(1); });
  ctx.Expect(woken == 4, "SHM-WAKE-02",
             "the commit of frame 3 wakes every waiter (4 of ours) while the only subscriber "
             "negotiated version 2: its WAKE_FORWARD bit means nothing there",
             N(woken) + " of 4 woken within 1500 ms");
}

CF_CASE(PubWakesTwoForwarders, "2.7/publisher-wakes-at-least-two",
        "with only subscribers that announce WAKE_FORWARD attached, the commit of a frame wakes "
        "at least 2 of the harness's 4 waiters (all of them is conforming too)",
        (std::vector<std::string>{"SHM-WAKE-02"}), kPub, kV3) {
  WakeScene scene(ctx, 1, 0);
  const int woken = scene.Woken([&] { scene.sub(0).Ack(1); });
  ctx.Expect(woken >= 2, "SHM-WAKE-02",
             "the commit of frame 3 wakes at least two waiters (FUTEX_WAKE count >= 2) when "
             "every subscriber forwards",
             N(woken) + " of 4 woken within 1500 ms");
}

// The subscriber without WAKE_FORWARD leaves (closes its connection) while our waiters sleep;
// the forwarding one's ACK lets the publisher commit frame 3: its first commit after freeing
// that slot, which must wake every waiter (the one who left might still sleep among them).
CF_CASE(PubWakesAllAfterPlainLeft, "2.7/publisher-wakes-all-after-a-non-forwarder-left",
        "when a subscriber without WAKE_FORWARD leaves and only forwarding ones remain, the "
        "publisher's next commit still wakes all 4 of the harness's waiters",
        (std::vector<std::string>{"SHM-WAKE-02"}), kPub, kV3) {
  WakeScene scene(ctx, 1, 1);
  scene.sub(0).Ack(1);  // the forwarding subscriber releases; the plain one still blocks
  StructView plain_slot = scene.sub(1).SubSlot(static_cast<uint32_t>(scene.sub(1).hello().index));
  const uint32_t kFree = ctx.spec().Enum("subscriber_slot_state", "FREE");
  const int woken = scene.Woken([&] {
    scene.sub(1).conn().Close();
    // Freeing a slot bumps ack_futex (a blocked producer re-evaluates); 5 ms slices otherwise.
    StructView h = scene.sub(0).Header();
    const Deadline d = In(3000);
    while (plain_slot.Get("state") != kFree && Clock::now() < d) {
      FutexWait(h.Bytes("ack_futex").data(), static_cast<uint32_t>(h.Get("ack_futex")), 5);
    }
  });
  ctx.Expect(plain_slot.Get("state") == kFree, "RES-CRASH-02",
             "the slot of the subscriber that closed its connection is freed",
             "state " + N(plain_slot.Get("state")));
  ctx.Expect(woken == 4, "SHM-WAKE-02",
             "the first commit after the slot of a subscriber without WAKE_FORWARD was freed "
             "wakes every waiter (4 of ours)",
             N(woken) + " of 4 woken within 1500 ms");
}

// CLOSED is not a commit: a publisher that wakes two at commits (every subscriber forwards) must
// still wake every waiter when it shuts down, since nothing is committed for them to forward.
// Our waiters wait again after any wake-up before CLOSED (a last commit on the way down wakes
// two of them), so each is counted only if CLOSED woke it.
CF_CASE(PubWakesAllAtClosed, "2.7/publisher-wakes-all-at-closed",
        "with only subscribers that announce WAKE_FORWARD attached, the publisher's shut-down "
        "(SIGTERM: state CLOSED) wakes all 4 of the harness's waiters",
        (std::vector<std::string>{"SHM-WAKE-02", "RES-CLOSE-01"}), kPub, kV3) {
  WakeScene scene(ctx, 1, 0);
  const int woken = scene.Woken([&] { ::kill(scene.pub().pid(), SIGTERM); },
                                ctx.spec().Enum("segment_state", "CLOSED"));
  ctx.Expect(woken == 4, "SHM-WAKE-02",
             "the shut-down (CLOSED) wakes every frame_futex waiter (4 of ours), although every "
             "subscriber forwards",
             N(woken) + " of 4 woken within 1500 ms", scene.sub(0).Header().All().subspan(0, 128));
}

}  // namespace
}  // namespace cuframes::conform
