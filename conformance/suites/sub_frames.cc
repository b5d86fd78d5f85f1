// sub_frames.cc: an IUT subscriber against a hostile scripted publisher's frame ring (spec 1.5,
// 2.3, 2.5, 2.8, 5.3): oversized payloads, reused or stale slots, eviction, publisher death.
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kSub = Role::kSubscriber;

std::vector<std::string> SubArgs(uint64_t frames) {
  return {"--frames", std::to_string(frames), "--timeout-ms", "3000", "--kind", "host"};
}

// Every other scripted-publisher case assigns slot 0, where an index written at the wrong offset
// of ATTACH_REQ, or a subscriber that uses slot 0 whatever it was given, reads the same.
CF_CASE(SlotThree, "3.5/subscriber-assigned-slot-3",
        "a subscriber assigned slot 3 echoes index 3 in ATTACH_REQ, checks that slot, releases "
        "its frames in it and leaves slots 0-2 untouched",
        (std::vector<std::string>{"MSG-ATTACH-01", "SHM-VALID-04", "SHM-SUB-01"}), kSub, {}) {
  PubParams p;
  p.sub_index = 3;  // of max_subscribers 4
  ScriptedPub pub(ctx, p);
  Process& sub = pub.StartAttached(SubArgs(6));
  for (int i = 0; i < 6; ++i)
    pub.Publish();  // slots reused twice: each needs the ACK in slot 3
  pub.ExpectFrames(sub, 1, 6, pub.params().slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
  for (uint32_t i = 0; i < 3; ++i) {
    StructView other = pub.SubSlot(i);
    ctx.Expect(AllZero(other.All()), "SHM-SUB-01",
               "slot " + std::to_string(i) + " (never assigned) left all zero", "nonzero",
               other.All());
  }
}

// SHM-VALID-01 lists what a subscriber checks of the segment's geometry, and no more: the last
// buffer inside segment_size, not segment_size equal to the end of the last buffer. A subscriber
// that demands SHM-LAYOUT-01's exact size refuses a segment it must use.
CF_CASE(SegmentTail, "2.8/segment-with-room-after-last-buffer",
        "a segment whose file and segment_size run one page past its last buffer is used: the "
        "subscriber attaches and delivers frames 1..3 (SHM-VALID-01 checks only that the last "
        "buffer lies inside segment_size)",
        (std::vector<std::string>{"SHM-VALID-01"}), kSub, {}) {
  PubParams p;
  p.tail_bytes = 4096;
  ScriptedPub pub(ctx, p);
  Process& sub = pub.StartAttached(SubArgs(3));
  for (int i = 0; i < 3; ++i)
    pub.Publish();
  pub.ExpectFrames(sub, 1, 3, pub.params().slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
}

// The other two departures from SHM-LAYOUT-01 that W4 names: data_offset and data_stride a page
// larger than the minimum, the buffers where those fields say. A subscriber that recomputes the
// layout instead of reading it reads the wrong bytes; one that demands the minimum refuses.
CF_CASE(SegmentPadded, "2.8/segment-with-larger-offset-and-stride",
        "a segment whose data_offset and data_stride are each one page above SHM-LAYOUT-01's "
        "minimum (buffers placed accordingly) is used: frames 1..5 arrive with their payloads",
        (std::vector<std::string>{"SHM-VALID-01"}), kSub, {}) {
  PubParams p;
  p.offset_pad_pages = 1;
  p.stride_pad_pages = 1;
  ScriptedPub pub(ctx, p);
  Process& sub = pub.StartAttached(SubArgs(5));
  for (int i = 0; i < 5; ++i)
    pub.Publish();
  pub.ExpectFrames(sub, 1, 5, pub.params().slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
}

CF_CASE(PayloadTooLarge, "2.3/payload-exceeds-slot",
        "frame 2 with payload_bytes = slot_bytes + 1 is reported CORRUPT, not delivered",
        (std::vector<std::string>{"SHM-FMETA-02", "SHM-VALID-02"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(3));
  pub.Publish();
  pub.Publish(pub.params().slot_bytes + 1);
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
  ExpectAdapterError(ctx, sub, "CORRUPT", "SHM-FMETA-02", 4000, true);
  size_t frames = 0;
  for (const auto& e : sub.events())
    frames += e.value("event", "") == "frame";
  ctx.Expect(frames == 1, "SHM-FMETA-02", "frame 2 not delivered",
             std::to_string(frames) + " frames delivered");
}

CF_CASE(SeqAhead, "5.3/slot-reused-ahead",
        "a slot holding a later seq than the cursor (the publisher reused it) is reported "
        "EVICTED",
        (std::vector<std::string>{"ACK-READ-01", "ACK-READ-03"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(2));
  pub.WriteFrame(1, pub.params().slot_bytes);
  pub.Commit(1, 1 + pub.params().slot_count);  // slot 0 says seq 5 while the cursor is 1
  ExpectAdapterError(ctx, sub, "EVICTED", "ACK-READ-01", 4000);
}

CF_CASE(SeqBehind, "5.3/slot-seq-behind",
        "write_seq = 1 while slot 0's meta.seq is still 0 is reported CORRUPT",
        (std::vector<std::string>{"ACK-READ-01", "SHM-VALID-02"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(2));
  pub.WriteFrame(1, pub.params().slot_bytes);
  pub.Commit(1, 0);
  ExpectAdapterError(ctx, sub, "CORRUPT", "ACK-READ-01", 4000);
}

// An attached subscriber reads frame 1; then its slot turns EVICTED and frame 2 is published,
// so that the subscriber looks at its slot again.
Process& EvictAfterFirstFrame(CaseContext& ctx, ScriptedPub& pub) {
  Process& sub = pub.StartAttached(SubArgs(3));
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
  pub.SubSlot(0).Set("state", ctx.spec().Enum("subscriber_slot_state", "EVICTED"));
  pub.Publish();
  return sub;
}

CF_CASE(SlotEvicted, "2.5/slot-state-evicted",
        "a subscriber whose slot state becomes EVICTED stops and reports EVICTED",
        (std::vector<std::string>{"SHM-SUB-04"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = EvictAfterFirstFrame(ctx, pub);
  ExpectAdapterError(ctx, sub, "EVICTED", "SHM-SUB-04", 4000, true);
}

// SHM-SUB-04's wait: the publisher's ERROR may follow the slot's state by a little. It comes
// 60 ms after the subscriber can see EVICTED (well within PEER_DEATH_DETECT_MS), with the code
// PROTOCOL: a subscriber that waits as the rule says reports PROTOCOL; one that concludes at once
// reports EVICTED.
CF_CASE(EvictionCodeAwaited, "2.5/eviction-code-follows-state",
        "the slot turns EVICTED and the publisher's ERROR(PROTOCOL) follows 60 ms later: the "
        "subscriber waits for it (up to PEER_DEATH_DETECT_MS) and reports PROTOCOL",
        (std::vector<std::string>{"SHM-SUB-04"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = EvictAfterFirstFrame(ctx, pub);
  // No sleep synchronises anything here: the delay is the stimulus, and a subscriber that sees
  // the state later than the ERROR reports PROTOCOL as well.
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  pub.conn().Send(EncodeError(ctx.spec(), static_cast<uint32_t>(ctx.spec().Err("PROTOCOL")),
                              "ack_seq garbage"));
  pub.conn().Close();
  ExpectAdapterError(ctx, sub, "PROTOCOL", "SHM-SUB-04", 4000, true);
}

CF_CASE(GenerationChanged, "2.5/slot-generation-changed",
        "a subscriber whose slot generation changes stops and reports EVICTED",
        (std::vector<std::string>{"SHM-SUB-04"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(3));
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
  pub.SubSlot(0).Set("generation", pub.SubSlot(0).Get("generation") + 1);
  pub.Publish();
  ExpectAdapterError(ctx, sub, "EVICTED", "SHM-SUB-04", 4000, true);
}

CF_CASE(PublisherCrash, "1.5/publisher-dies",
        "a subscriber blocked waiting for a frame reports PEER_CLOSED within "
        "PEER_DEATH_DETECT_MS of the publisher's socket closing",
        (std::vector<std::string>{"RES-CRASH-01", "RES-CRASH-03", "RES-CLOSE-02"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(3));
  pub.Publish();
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
  // Crashed once it sleeps waiting for frame 2: a subscriber that sleeps for its caller's whole
  // timeout passed one run in three when crashed between calls.
  CrashWhileParked(ctx, pub, sub, "frame_waiters");
  ctx.Expect(access(ctx.SegmentPath().c_str(), F_OK) == 0, "RES-CLOSE-02",
             "the (dead) publisher's segment is not unlinked by the subscriber", "unlinked");
}

CF_CASE(SegmentClosed, "2.8/segment-state-closed",
        "a segment already CLOSED at attach is reported PEER_CLOSED",
        (std::vector<std::string>{"SHM-VALID-01"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  pub.Create();
  pub.Header().Set("state", ctx.spec().Enum("segment_state", "CLOSED"));
  Process& sub = pub.StartSub(SubArgs(1));
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Encode());
  ExpectAdapterError(ctx, sub, "PEER_CLOSED", "SHM-VALID-01", 4000);
}

CF_CASE(UnknownFrameFlags, "2.3/unknown-frame-flags",
        "a frame with unknown FrameMeta.flags bits is delivered (unknown bits ignored)",
        (std::vector<std::string>{"SHM-FMETA-03"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(1));
  pub.WriteFrame(1, pub.params().slot_bytes);
  StructView(ctx.spec(), "FrameMeta", pub.segment()->span(), pub.SlotDesc(0).base())
      .Set("flags", 0xf0);
  pub.Commit(1, 1);
  pub.ExpectFrames(sub, 1, 1, pub.params().slot_bytes);
}

CF_CASE(NoWakeup, "2.7/bounded-wait-without-wakeup",
        "a frame committed without any FUTEX_WAKE (waiter count ignored, as a hostile peer may "
        "corrupt it) is still delivered within PEER_DEATH_DETECT_MS",
        (std::vector<std::string>{"SHM-ORDER-04"}), kSub, {}) {
  const int bound = static_cast<int>(ctx.spec().Const("PEER_DEATH_DETECT_MS"));
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(3));
  for (uint64_t n = 1; n <= 3; ++n) {
    pub.WriteFrame(n, pub.params().slot_bytes);
    const auto t0 = Clock::now();
    pub.Commit(n, n, false);
    size_t from = 0;
    const nlohmann::json* e = sub.WaitFor(
        [n](const nlohmann::json& j) {
          return j.value("event", "") == "frame" && j.value("seq", uint64_t{0}) == n;
        },
        In(bound + 2000), &from);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    ctx.Expect(e != nullptr, "SHM-ORDER-04",
               "frame " + std::to_string(n) +
                   " delivered without a "
                   "wake-up",
               "not delivered; " + sub.StatusText());
    // Adapter output and scheduling on a loaded 2-core machine: 250 ms of slack.
    ctx.Expect(took <= bound + 250, "SHM-ORDER-04",
               "delivered within PEER_DEATH_DETECT_MS (" + std::to_string(bound) + " ms, +250)",
               std::to_string(took) + " ms");
  }
}

// SHM-ORDER-04's decrement: before each commit the subscriber is left to park (counted in
// frame_waiters, waiting in FUTEX_WAIT); after its clean exit the count must be back to 0. A
// subscriber that forgets the decrement (or takes it twice) makes every later commit of every
// publisher pay a FUTEX_WAKE (or none), and no other case would notice.
CF_CASE(WaiterCountFrames, "2.7/subscriber-gives-back-frame-waiters",
        "the subscriber parks in frame_waiters before each of 4 frames, is woken, and leaves the "
        "count at 0 when it exits",
        (std::vector<std::string>{"SHM-ORDER-04"}), kSub, {}) {
  ScriptedPub pub(ctx, PubParams{});
  Process& sub = pub.StartAttached(SubArgs(4));
  int parks = 0;
  for (uint64_t n = 1; n <= 4; ++n) {
    parks += WaitParked(pub, "frame_waiters", sub, 500) ? 1 : 0;
    pub.Publish();
  }
  pub.ExpectFrames(sub, 1, 4, pub.params().slot_bytes);
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
  ctx.Expect(sub.exit_code() == 0, "CONF-SUB-01", "subscriber adapter exit 0", sub.StatusText());
  if (parks == 0) ctx.Note("the subscriber never parked in frame_waiters (it polls, SHM-ORDER-03)");
  ExpectWaiterCountsReturned(ctx, pub, parks);
}

}  // namespace
}  // namespace cuframes::conform
