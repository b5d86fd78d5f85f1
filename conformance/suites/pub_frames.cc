// pub_frames.cc: an IUT publisher's frame ring and ACK rules (spec 5): no reuse before ACK,
// eviction of stalled and lying subscribers, subscriber death and detach.
#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kPub = Role::kPublisher;

CF_CASE(NoReuseBeforeAck, "5.2/no-reuse-before-ack",
        "with 2 slots and frames 1-2 unreleased, the publisher blocks (ack_waiting = 1) and "
        "leaves slot 0 untouched until frame 1 is released",
        (std::vector<std::string>{"ACK-REUSE-01", "SHM-SLOT-03", "ACK-HOST-01", "SHM-ORDER-04"}),
        kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 4));
  ScriptedSub sub(ctx);
  sub.Handshake();
  const uint64_t s1 = sub.ReadFrame(1);
  sub.ReadFrame(2);
  StructView h = sub.Header();
  const Deadline d = In(3000);
  while (h.Get("ack_waiting") != 1 && h.Get("write_seq") < 3 && Clock::now() < d) {
    FutexWait(h.Bytes("frame_futex").data(), static_cast<uint32_t>(h.Get("frame_futex")), 20);
  }
  ctx.Expect(h.Get("write_seq") == 2, "ACK-REUSE-01",
             "write_seq stays 2 while frame 1 (slot 0) is unreleased",
             "write_seq " + std::to_string(h.Get("write_seq")), h.All());
  ctx.Expect(h.Get("ack_waiting") == 1, "ACK-REUSE-01",
             "ack_waiting = 1 while the publisher waits for our ACK", "0", h.All());
  ctx.Expect(Fnv1a64(sub.Buffer(0, 8192)) == s1, "ACK-REUSE-01",
             "slot 0 still holds frame 1 (checksum " + Hex64(s1) + ")", "changed");
  sub.Ack(1);
  sub.ReadFrame(3);
  sub.Ack(2);
  sub.Ack(3);
  sub.ReadFrame(4);
  // Frame 4 went into slot 1 after the publisher waited for frame 2's ACK; it set ack_waiting = 0
  // when that wait was done (section 5, step 1; SHM-ORDER-04's decrement), before writing frame 4.
  // One that leaves it at 1 makes every subscriber's ACK pay a FUTEX_WAKE from then on.
  ctx.Expect(h.Get("ack_waiting") == 0, "SHM-ORDER-04",
             "ack_waiting back to 0 once the publisher's wait for ACKs is done (frame 4 written)",
             std::to_string(h.Get("ack_waiting")), h.All());
  sub.Ack(4);
  (void)pub;
}

// Waits until `sub` receives ERROR(code) and the connection closes; returns how long it took.
int64_t WaitEvicted(CaseContext& ctx, ScriptedSub& sub, const std::string& code,
                    const std::string& req, int timeout_ms) {
  const auto t0 = Clock::now();
  ExpectErrorClose(ctx, sub.conn(), code, req, timeout_ms);
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

CF_CASE(EvictStalled, "5.7/evict-stalled-subscriber",
        "a subscriber that never releases is evicted with ERROR(EVICTED) within the ACK timeout "
        "while another subscriber receives every frame",
        (std::vector<std::string>{"ACK-EVICT-01", "ACK-EVICT-03", "ACK-EVICT-04", "SM-PUB-01",
                                  "SM-PUB-03", "ACK-REL-04", "ADP-FMT-01"}),
        kPub, (Needs{1, "host", "ack-timeout"})) {
  std::vector<std::string> args = PubArgs(ctx, 6, 2, 2);
  args.insert(args.end(), {"--ack-timeout-ms", "300"});
  Process& pub = StartPub(ctx, args);
  ScriptedSub stalled(ctx);
  stalled.Handshake();
  const uint32_t idx = static_cast<uint32_t>(stalled.hello().index);
  ScriptedSub good(ctx);
  good.Handshake();
  // The good subscriber reads 1 and 2; the publisher then waits for the stalled one.
  good.ReadFrame(1);
  good.Ack(1);
  good.ReadFrame(2);
  good.Ack(2);
  const int64_t took = WaitEvicted(ctx, stalled, "EVICTED", "ACK-EVICT-01", 3000);
  ctx.Note("evicted after " + std::to_string(took) + " ms");
  ctx.Expect(took <= 300 + 1500, "ACK-EVICT-01", "eviction within ack timeout 300 ms (+1500)",
             std::to_string(took) + " ms");
  for (uint64_t n = 3; n <= 6; ++n) {
    good.ReadFrame(n, 3000);
    good.Ack(n);
  }
  // ACK-EVICT-01/04: EVICTED is stored before the ERROR is sent, and the slot is freed after the
  // connection is closed. The end state must be FREE (EVICTED forever is a slot never freed).
  StructView slot = stalled.SubSlot(idx);
  const Deadline freed_by = In(2000);
  while (slot.Get("state") != ctx.spec().Enum("subscriber_slot_state", "FREE") &&
         Clock::now() < freed_by) {
    FutexWait(slot.Bytes("state").data(), static_cast<uint32_t>(slot.Get("state")), 5);
  }
  const uint64_t st = slot.Get("state");
  ctx.Expect(st == ctx.spec().Enum("subscriber_slot_state", "FREE"), "ACK-EVICT-04",
             "the evicted slot freed (state FREE) once its connection is closed",
             "state " + std::to_string(st) + " 2000 ms after the eviction", slot.All(),
             slot.base());
  // ACK-EVICT-03 is proven by the frames read above. The adapter's report of the eviction is
  // checked once it has exited, so its timing decides nothing (ADAPTER.md ADP-FMT-01).
  good.conn().Close();
  WaitExitOrFail(ctx, pub, "ADP-EXIT-01", 5000);
  const nlohmann::json* ev = nullptr;
  for (const auto& e : pub.events()) {
    if (e.value("event", "") == "evicted" && e.value("index", uint64_t{999}) == idx) ev = &e;
  }
  ctx.Expect(ev != nullptr && ev->value("reason", std::string()) == "EVICTED", "ADP-FMT-01",
             "an evicted event for index " + std::to_string(idx) + " with reason \"EVICTED\"",
             ev ? ev->dump() : "none; adapter stdout: " + pub.StdoutTail());
}

CF_CASE(GarbageAck, "5.7/garbage-ack-seq",
        "a subscriber storing ack_seq = 2^60 (> write_seq) is evicted with ERROR(PROTOCOL); the "
        "other subscriber is unaffected",
        (std::vector<std::string>{"ACK-EVICT-02", "ACK-EVICT-05", "SHM-SUB-03", "ACK-EVICT-03"}),
        kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 6, 2, 2));
  ScriptedSub liar(ctx);
  liar.Handshake();
  ScriptedSub good(ctx);
  good.Handshake();
  // The garbage goes in once frame 1 is out, so the publication has started whatever
  // --wait-subscribers counts; the publisher must see it when it waits for the liar's ACK of
  // frame 1 to reuse slot 0 for frame 3 (ACK-EVICT-05).
  good.ReadFrame(1);
  liar.StoreAckSeq(uint64_t{1} << 60);
  good.Ack(1);
  good.ReadFrame(2);
  good.Ack(2);
  WaitEvicted(ctx, liar, "PROTOCOL", "ACK-EVICT-02", 5000);
  // The publisher survives and goes on: frames 3-6 reach the other subscriber.
  for (uint64_t n = 3; n <= 6; ++n) {
    good.ReadFrame(n, 3000);
    good.Ack(n);
  }
  (void)pub;
}

CF_CASE(GarbageAfterAckSeen, "5.7/garbage-ack-seq-after-ack-seen",
        "a subscriber already seen at ack_seq 4 that then stores 2^60 is evicted with "
        "ERROR(PROTOCOL) before the publisher reuses the slot of frame 3, though an ack_seq once "
        "seen at 4 covers frames 1-4",
        (std::vector<std::string>{"ACK-EVICT-05", "ACK-EVICT-02", "SHM-SUB-03"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 10, 4, 2));
  ScriptedSub liar(ctx);
  liar.Handshake();
  const uint32_t idx = static_cast<uint32_t>(liar.hello().index);
  ScriptedSub good(ctx);
  good.Handshake();
  // The liar releases frames 1-4 at once; the good subscriber holds them, so the publisher waits
  // for it to reuse slot 0, then (after good releases 1 and frame 5 is out) for frame 2.
  for (uint64_t n = 1; n <= 4; ++n) {
    liar.ReadFrame(n);
    liar.Ack(n);
  }
  for (uint64_t n = 1; n <= 4; ++n)
    good.ReadFrame(n);
  good.Ack(1);
  good.ReadFrame(5);
  // Parked in the wait for frame 2, the publisher has read the liar's ack_seq = 4 (stored before
  // good's ACK of 1, which it read). Bounded: an IUT that never parks makes this case weaker only.
  StructView h = good.Header();
  const Deadline parked_by = In(3000);
  while (h.Get("ack_waiting") != 1 && Clock::now() < parked_by) {
    FutexWait(h.Bytes("ack_futex").data(), static_cast<uint32_t>(h.Get("ack_futex")), 20);
  }
  liar.StoreAckSeq(uint64_t{1} << 60);
  good.Ack(2);
  good.ReadFrame(6);
  good.Ack(3);
  // The garbage was stored before good's ACK of 2, which the publisher read before committing
  // frame 6: each read of the liar's ack_seq in the wait for frame 3 sees it, and ACK-EVICT-05
  // makes that wait read it. So frame 7 (slot 2, frame 3's) comes only after the eviction.
  good.ReadFrame(7, 3000);
  StructView slot = liar.SubSlot(idx);
  const uint64_t st = slot.Get("state");
  ctx.Expect(st == ctx.spec().Enum("subscriber_slot_state", "EVICTED") ||
                 st == ctx.spec().Enum("subscriber_slot_state", "FREE"),
             "ACK-EVICT-05",
             "the liar's slot EVICTED (or already FREE) once frame 7 is committed: the wait for "
             "frame 3's ACKs checks its ack_seq = 2^60",
             "state " + std::to_string(st) + " (an ack_seq seen at 4 earlier was not read again)",
             slot.All(), slot.base());
  WaitEvicted(ctx, liar, "PROTOCOL", "ACK-EVICT-02", 5000);
  for (uint64_t n = 4; n <= 7; ++n)
    good.Ack(n);
  for (uint64_t n = 8; n <= 10; ++n) {
    good.ReadFrame(n, 3000);
    good.Ack(n);
  }
  (void)pub;
}

CF_CASE(AckDecreases, "5.7/ack-seq-decreases",
        "a subscriber whose ack_seq goes from 2 back to 1 is evicted with ERROR(PROTOCOL)",
        (std::vector<std::string>{"ACK-EVICT-02", "SHM-SUB-03"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 6, 2, 2));
  ScriptedSub liar(ctx);
  liar.Handshake();
  ScriptedSub good(ctx);
  good.Handshake();
  // The liar releases 1 and 2 before the good subscriber releases 1, so when the publisher
  // finishes waiting for frame 3 it has necessarily loaded the liar's ack_seq = 2.
  for (uint64_t n = 1; n <= 2; ++n) {
    liar.ReadFrame(n);
    liar.Ack(n);
  }
  good.ReadFrame(1);
  good.ReadFrame(2);
  good.Ack(1);
  good.ReadFrame(3);
  liar.StoreAckSeq(1);  // steps back from 2 to 1
  good.Ack(2);
  good.Ack(3);
  WaitEvicted(ctx, liar, "PROTOCOL", "ACK-EVICT-02", 5000);
  for (uint64_t n = 4; n <= 6; ++n) {
    good.ReadFrame(n, 3000);
    good.Ack(n);
  }
  (void)pub;
}

CF_CASE(SubscriberDies, "1.5/subscriber-dies-holding-frames",
        "a subscriber that closes its socket while holding unreleased frames stops counting: "
        "the other subscriber receives every frame",
        (std::vector<std::string>{"RES-CRASH-02", "ACK-REL-04", "ACK-EVICT-04"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 6, 2, 2));
  auto dying = std::make_unique<ScriptedSub>(ctx);
  dying->Handshake();
  ScriptedSub good(ctx);
  good.Handshake();
  dying->ReadFrame(1);
  good.ReadFrame(1);
  good.Ack(1);
  dying->conn().Close();  // dies without releasing frame 1
  // The frames reaching the other subscriber are the evidence (RES-CRASH-02), not the adapter's
  // report of them.
  for (uint64_t n = 2; n <= 6; ++n) {
    good.ReadFrame(n, 4000);
    good.Ack(n);
  }
  (void)pub;
}

CF_CASE(DetachFrees, "3.7/detach-frees-slot",
        "DETACH from an ACTIVE subscriber frees its slot and stops it counting for ACKs",
        (std::vector<std::string>{"MSG-DETACH-01", "ACK-REL-04", "ACK-EVICT-04"}), kPub, {}) {
  Process& pub = StartPub(ctx, PubArgs(ctx, 4, 2, 2));
  ScriptedSub leaving(ctx);
  leaving.Handshake();
  const uint32_t idx = static_cast<uint32_t>(leaving.hello().index);
  ScriptedSub good(ctx);
  good.Handshake();
  leaving.ReadFrame(1);
  MessageBuilder d(ctx.spec(), "DETACH");
  leaving.Send(d.Encode());
  leaving.conn().Close();
  for (uint64_t n = 1; n <= 4; ++n) {
    good.ReadFrame(n, 4000);
    good.Ack(n);
  }
  StructView slot = leaving.SubSlot(idx);
  ctx.Expect(slot.Get("state") == ctx.spec().Enum("subscriber_slot_state", "FREE"), "ACK-EVICT-04",
             "the detached subscriber's slot FREE", "state " + std::to_string(slot.Get("state")),
             slot.All(), slot.base());
  (void)pub;
}

}  // namespace
}  // namespace cuframes::conform
