// multiparty.cc: scenarios with several parties at once against an IUT publisher: a slow and a
// fast subscriber, a subscriber slot reused by a newcomer while frames flow, a version 1
// subscriber beside a packet ring, a subscriber of another uid, frames of a nominal format, and
// wake-ups that must arrive (a waiter that times out while the event is there saw a missing
// FUTEX_WAKE).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kPub = Role::kPublisher;
const Needs kV2{2, "host", "packets"};

std::string N(uint64_t v) {
  return std::to_string(v);
}

CF_CASE(SlowAndFast, "5.1/slow-and-fast-subscribers",
        "with two subscribers the slot of frame n is reused only after the slower one releases "
        "n, although the faster one released it long before",
        (std::vector<std::string>{"ACK-REUSE-01", "ACK-HOST-01", "ACK-EVICT-03", "ACK-READ-03"}),
        kPub, {}) {
  const uint64_t frames = 8;
  Process& pub = StartPub(ctx, PubArgs(ctx, frames, 2, 2));
  ScriptedSub fast(ctx), slow(ctx);
  fast.Handshake();
  slow.Handshake();
  fast.ReadFrame(1);
  fast.Ack(1);
  for (uint64_t n = 1; n <= frames; ++n) {
    const uint64_t sum = slow.ReadFrame(n);
    if (n + 1 <= frames) {
      fast.ReadFrame(n + 1);
      fast.Ack(n + 1);
    }
    if (n + 2 <= frames) {
      // Frame n + 2 goes into frame n's slot; the fast subscriber released n, the slow one holds
      // it: the publisher must wait.
      const uint64_t ws = WaitBlockedOrPast(slow, n + 1, 2000);
      ctx.Expect(ws == n + 1, "ACK-REUSE-01",
                 "write_seq stays " + N(n + 1) + " while the slow subscriber holds frame " + N(n),
                 "write_seq " + N(ws), slow.Header().All());
      const uint32_t slot = static_cast<uint32_t>((n - 1) % 2);
      ctx.Expect(
          Fnv1a64(slow.Buffer(slot, 8192)) == sum, "ACK-REUSE-01",
          "slot " + N(slot) + " still holds frame " + N(n) + " (checksum " + Hex64(sum) + ")",
          "its bytes changed before the slow subscriber's ACK");
    }
    slow.Ack(n);
  }
  (void)pub;
}

CF_CASE(SlotReusedWhileFlowing, "4.2/slot-reused-while-frames-flow",
        "a subscriber slot freed by DETACH mid-stream is reserved again by a newcomer with a new "
        "generation, zeroed fields and start_seq = write_seq + 1, while the other subscriber "
        "keeps receiving every frame",
        (std::vector<std::string>{"ACK-EVICT-04", "SHM-SUB-02", "MSG-ARESP-01", "ACK-REL-04",
                                  "ACK-EVICT-03", "ACK-REUSE-01"}),
        kPub, {}) {
  const uint64_t frames = 12;
  std::vector<std::string> args = PubArgs(ctx, frames, 2, 2);
  args.insert(args.end(), {"--max-subscribers", "2"});
  Process& pub = StartPub(ctx, args);
  auto leaving = std::make_unique<ScriptedSub>(ctx);
  ScriptedSub steady(ctx);
  leaving->Handshake();
  steady.Handshake();
  const uint32_t idx = static_cast<uint32_t>(leaving->hello().index);
  const uint64_t gen = leaving->hello().generation;
  for (uint64_t n = 1; n <= 3; ++n) {
    leaving->ReadFrame(n);
    leaving->Ack(n);
    steady.ReadFrame(n);
    steady.Ack(n);
  }
  MessageBuilder d(ctx.spec(), "DETACH");
  leaving->Send(d.Encode());
  leaving->conn().Close();
  // Wait (bounded) until the publisher has freed the slot, then take it.
  StructView old = steady.SubSlot(idx);
  const Deadline dl = In(2000);
  while (old.Get("state") != ctx.spec().Enum("subscriber_slot_state", "FREE") &&
         Clock::now() < dl) {
    FutexWait(steady.Header().Bytes("ack_futex").data(),
              static_cast<uint32_t>(steady.Header().Get("ack_futex")), 5);
  }
  ctx.Expect(old.Get("state") == ctx.spec().Enum("subscriber_slot_state", "FREE"), "ACK-EVICT-04",
             "the detached subscriber's slot FREE", "state " + N(old.Get("state")), old.All(),
             old.base());
  ScriptedSub newcomer(ctx);
  newcomer.Hello();
  ctx.Expect(newcomer.hello().index == idx, "SM-PUB-04",
             "the only free slot (" + N(idx) + ") is given to the newcomer",
             "index " + N(newcomer.hello().index), newcomer.hello().msg.raw);
  ctx.Expect(newcomer.hello().generation != gen, "ACK-EVICT-04",
             "a new generation for the reserved-again slot (was " + N(gen) + ")",
             "generation " + N(newcomer.hello().generation), newcomer.hello().msg.raw);
  newcomer.MapAndValidate();  // SHM-SUB-02: ack_seq, start_seq, flags zeroed
  const uint64_t start = newcomer.Attach();
  for (uint64_t n = 4; n <= frames; ++n) {
    steady.ReadFrame(n);
    steady.Ack(n);
    if (n >= start) {
      newcomer.ReadFrame(n);
      if (n == start) {
        // The newcomer has ACKed nothing yet (ack_seq 0). A publisher that counts it for frames
        // before its start_seq cannot reuse the slot of frame start - 2 without its ACK, so it
        // publishes `start` only after evicting it at the ACK timeout: still ACTIVE here means
        // it was never waited for.
        StructView mine = newcomer.SubSlot(idx);
        ctx.Expect(mine.Get("state") == ctx.spec().Enum("subscriber_slot_state", "ACTIVE") &&
                       mine.Get("generation") == newcomer.hello().generation,
                   "ACK-REUSE-01",
                   "the newcomer still ACTIVE when frame " + N(start) +
                       " (its start_seq) arrives: no ACK of an earlier frame was awaited from it",
                   "state " + N(mine.Get("state")) + ", generation " + N(mine.Get("generation")),
                   mine.All(), mine.base());
      }
      newcomer.Ack(n);
    }
  }
  ctx.Expect(start <= frames, "MSG-ARESP-01",
             "the newcomer joins before the last frame (start_seq <= " + N(frames) + ")",
             "start_seq " + N(start));
  (void)pub;
}

CF_CASE(V1BesideRing, "6.2/v1-subscriber-beside-ring",
        "a version 1 subscriber of a publisher with a packet ring gets version 1, caps 0 and no "
        "initial packet position, and receives every frame while packets flow beside it",
        (std::vector<std::string>{"VER-NEG-01", "PKT-RING-02", "MSG-HRESP-03", "PKT-HELLO-01",
                                  "ACK-READ-03"}),
        kPub, kV2) {
  const uint64_t frames = 6, packets = 20;
  Process& pub = StartPub(ctx, {"--key", ctx.key(), "--frames", N(frames), "--packets", N(packets),
                                "--packet-bytes", "500", "--slots", "2", "--wait-subscribers", "2",
                                "--bytes", "8192", "--linger-ms", "3000"});
  ScriptedSub v1(ctx), v2(ctx);
  HelloParams h1;
  h1.max_proto = 1;
  h1.caps = 0;
  const HelloInfo i1 = v1.Hello(h1);  // checks caps/initial_* zero for version 1
  ctx.Expect(i1.proto_version == 1, "VER-NEG-01", "version 1 for a version 1 subscriber",
             N(i1.proto_version), i1.msg.raw);
  v1.MapAndValidate();
  v1.Attach();
  HelloParams h2;
  h2.max_proto = 2;
  h2.caps = 1;
  const HelloInfo i2 = v2.Hello(h2);
  ctx.Expect(i2.proto_version == 2 && (i2.caps & 1), "PKT-HELLO-01",
             "version 2 with PACKET_RING_PRESENT for the version 2 subscriber",
             Describe(ctx.spec(), i2.msg), i2.msg.raw);
  v2.MapAndValidate();
  v2.Attach();
  for (uint64_t n = 1; n <= frames; ++n) {
    v1.ReadFrame(n);
    v1.Ack(n);
    v2.ReadFrame(n);
    v2.Ack(n);
  }
  auto ring = OpenIutRing(ctx, "PKT-RING-01");
  StructView r(ctx.spec(), "PacketRingHeader", ring->span());
  WaitHeadSeq(r, packets, 5000);
  ctx.Expect(r.Get("head_seq") == packets, "CONF-V2-01",
             "all " + N(packets) + " packets published with a version 1 subscriber attached",
             "head_seq " + N(r.Get("head_seq")));
  (void)pub;
}

CF_CASE(FrameFormat, "2.3/frame-format",
        "with --width/--height the header names NV12 W x H and every frame's FrameMeta carries "
        "the same width, height, pixel_format and pitch",
        (std::vector<std::string>{"SHM-HDR-02", "SHM-FMETA-01", "CONF-PUB-01"}), kPub, {}) {
  const uint64_t w = 64, hgt = 48, frames = 3;
  Process& pub =
      StartPub(ctx, {"--key", ctx.key(), "--frames", N(frames), "--width", N(w), "--height", N(hgt),
                     "--slots", "2", "--wait-subscribers", "1", "--linger-ms", "3000"});
  ScriptedSub sub(ctx);
  sub.Handshake();
  StructView h = sub.Header();
  const Spec& s = ctx.spec();
  const uint64_t pitch = h.Get("pitch");
  ctx.Expect(h.Get("width") == w && h.Get("height") == hgt &&
                 h.Get("pixel_format") == s.Enum("pixel_format", "NV12") && pitch >= w &&
                 h.Get("slot_bytes") >= pitch * hgt * 3 / 2,
             "SHM-HDR-02",
             "header width " + N(w) + ", height " + N(hgt) +
                 ", pixel_format NV12, pitch >= width, slot_bytes >= pitch * height * 3 / 2",
             "width " + N(h.Get("width")) + ", height " + N(h.Get("height")) + ", pixel_format " +
                 N(h.Get("pixel_format")) + ", pitch " + N(pitch) + ", slot_bytes " +
                 N(h.Get("slot_bytes")),
             h.All());
  for (uint64_t n = 1; n <= frames; ++n) {
    sub.ReadFrame(n);
    StructView meta(s, "FrameMeta", sub.segment()->span(),
                    sub.SlotDesc(static_cast<uint32_t>((n - 1) % 2)).base());
    for (const char* f : {"width", "height", "pixel_format", "pitch"}) {
      ctx.Expect(
          meta.Get(f) == h.Get(f), "SHM-FMETA-01",
          std::string("frame ") + N(n) + " FrameMeta." + f + " = the header's " + N(h.Get(f)),
          N(meta.Get(f)), meta.All(), meta.base());
    }
    sub.Ack(n);
  }
  (void)pub;
}

// Releases frames for `sub_slot` from a helper thread, each only once a subscriber is blocked
// waiting for a frame (frame_waiters != 0), so that the next commit happens while the reader
// sleeps in FUTEX_WAIT: a publisher that skips FUTEX_WAKE then leaves it to time out.
class Releaser {
 public:
  // `read_upto`: the last frame the reader has read (it sets it after each read).
  Releaser(StructView hdr, StructView slot, uint64_t first, uint64_t last,
           const std::atomic<uint64_t>& read_upto)
      : hdr_(hdr), slot_(slot), first_(first), last_(last), read_upto_(read_upto), t_([this] {
          Run();
        }) {}
  ~Releaser() {
    stop_.store(true);
    t_.join();
  }

 private:
  void Run() {
    for (uint64_t n = first_; n <= last_ && !stop_.load(); ++n) {
      // Once the reader has read n + 1 and counts itself in frame_waiters again, it waits for
      // n + 2, which needs our ACK of n. (Its count from the previous wait is gone by then.)
      const Deadline d = In(5000);
      while ((read_upto_.load() != n + 1 || hdr_.Get("frame_waiters") == 0) && !stop_.load() &&
             Clock::now() < d) {
        std::this_thread::yield();
      }
      slot_.Set("ack_seq", n);
      AtomicIncrement32(hdr_.Bytes("ack_futex").data());
      FutexWakeAll(hdr_.Bytes("ack_futex").data());
    }
  }
  StructView hdr_, slot_;
  uint64_t first_, last_;
  const std::atomic<uint64_t>& read_upto_;
  std::atomic<bool> stop_{false};
  std::thread t_;
};

CF_CASE(WakeUps, "2.7/wake-ups-observed",
        "a subscriber blocked in FUTEX_WAIT on frame_futex (counted in frame_waiters) is woken "
        "by every commit and by the shut-down, never left to its timeout",
        (std::vector<std::string>{"SHM-ORDER-02", "ACK-COMMIT-01", "RES-CLOSE-01"}), kPub, {}) {
  const uint64_t frames = 10;
  std::vector<std::string> args = PubArgs(ctx, frames, 2, 1);
  args[args.size() - 1] = "300";  // --linger-ms: shut down soon after the last frame
  Process& pub = StartPub(ctx, args);
  ScriptedSub sub(ctx);
  sub.Handshake();
  sub.ReadFrame(1);
  sub.ReadFrame(2);
  {
    // Frames 3..10 are committed only after a release the helper makes while we wait.
    std::atomic<uint64_t> read_upto{2};
    Releaser rel(sub.Header(), sub.SubSlot(static_cast<uint32_t>(sub.hello().index)), 1, frames - 2,
                 read_upto);
    for (uint64_t n = 3; n <= frames; ++n) {
      sub.ReadFrame(n, 5000);
      read_upto.store(n);
    }
  }
  sub.Ack(frames);
  // Now wait for a frame that never comes: the shut-down (CLOSED, frame_futex + 1, wake) must
  // end the wait, well before our long timeout.
  StructView h = sub.Header();
  std::atomic_ref<uint32_t> waiters(*reinterpret_cast<uint32_t*>(h.Bytes("frame_waiters").data()));
  const uint32_t closed = ctx.spec().Enum("segment_state", "CLOSED");
  const Deadline d = In(8000);
  WaitEnd end = WaitEnd::kChanged;
  for (;;) {
    const uint32_t f = static_cast<uint32_t>(h.Get("frame_futex"));
    if (h.Get("state") == closed || Clock::now() >= d) break;
    waiters.fetch_add(1);
    if (h.Get("state") != closed) end = FutexWait(h.Bytes("frame_futex").data(), f, MsLeft(d));
    waiters.fetch_sub(1);
    if (end == WaitEnd::kTimeout) break;
  }
  ctx.Expect(h.Get("state") == closed, "RES-CLOSE-01",
             "the publisher stores state = CLOSED when it shuts down after --linger-ms",
             "state " + N(h.Get("state")), h.All());
  ctx.Expect(end != WaitEnd::kTimeout, "RES-CLOSE-01",
             "CLOSED announced by incrementing frame_futex and waking its waiters",
             "our FUTEX_WAIT on frame_futex ended by timeout", h.All());
  ExpectCleanExit(ctx, pub);
}

CF_CASE(PacketWake, "10.4/packet-wake",
        "a subscriber blocked in FUTEX_WAIT on packet_futex (counted in packet_waiters) is woken "
        "by every packet, never left to its timeout",
        (std::vector<std::string>{"SHM-ORDER-02", "PKT-WRITE-04", "PKT-READ-01"}), kPub, kV2) {
  // The adapter publishes frame i, then packet i; frame i > 2 waits for our ACK of i - 2, so a
  // helper releasing frames only while we wait makes every later packet arrive during our wait.
  const uint64_t count = 6;
  Process& pub = StartPub(
      ctx, {"--key", ctx.key(), "--frames", N(count), "--slots", "2", "--packets", N(count),
            "--bytes", "8192", "--wait-subscribers", "1", "--linger-ms", "2000"});
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = 2;
  hp.caps = 1;
  sub.Hello(hp);
  sub.MapAndValidate();
  sub.Attach();
  auto ring = OpenIutRing(ctx, "PKT-RING-01");
  StructView r(ctx.spec(), "PacketRingHeader", ring->span());
  StructView h = sub.Header();
  StructView me = sub.SubSlot(static_cast<uint32_t>(sub.hello().index));
  std::atomic_ref<uint32_t> waiters(*reinterpret_cast<uint32_t*>(h.Bytes("packet_waiters").data()));
  std::atomic<bool> stop{false};
  std::thread helper([&] {
    for (uint64_t m = 1; m + 2 <= count && !stop.load(); ++m) {
      const Deadline d = In(5000);
      while ((h.Get("packet_waiters") == 0 || r.Get("head_seq") != m + 1) && !stop.load() &&
             Clock::now() < d) {
        std::this_thread::yield();
      }
      me.Set("ack_seq", m);
      AtomicIncrement32(h.Bytes("ack_futex").data());
      FutexWakeAll(h.Bytes("ack_futex").data());
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop.store(true);
      t.join();
    }
  } join{stop, helper};
  const Deadline d = In(8000);
  for (uint64_t k = 1; k <= count; ++k) {
    for (;;) {
      const uint32_t f = static_cast<uint32_t>(r.Get("packet_futex"));
      if (r.Get("head_seq") >= k) break;
      if (Clock::now() >= d) {
        ctx.Fail("PKT-WRITE-04", "packet " + N(k) + " published",
                 "head_seq " + N(r.Get("head_seq")) + " after 8000 ms", r.All().subspan(0, 128));
      }
      waiters.fetch_add(1);
      WaitEnd end = WaitEnd::kChanged;
      // 1000 ms: far beyond any wake-up latency, yet short of the ACK timeout and the linger,
      // whose eviction or shut-down (ring CLOSED wakes everyone) would otherwise mask a missing
      // wake.
      if (r.Get("head_seq") < k) {
        end = FutexWait(r.Bytes("packet_futex").data(), f, MsLeft(d, 1000));
      }
      waiters.fetch_sub(1);
      ctx.Expect(end != WaitEnd::kTimeout || r.Get("head_seq") < k, "SHM-ORDER-02",
                 "packet " + N(k) +
                     " announced by incrementing packet_futex and a FUTEX_WAKE "
                     "(packet_waiters was nonzero)",
                 "head_seq " + N(r.Get("head_seq")) + " but our FUTEX_WAIT ended by timeout",
                 r.All().subspan(0, 128));
    }
  }
  (void)pub;
}

// Starts the IUT publisher with --file-mode 0660 (plus `extra`) and, as uid 65534 in the
// harness's group (gid 0), a subscriber asking for one frame; returns it once it exited. With
// 0660 the socket lets the other uid connect, so what it gets is the publisher's decision
// (RES-PERM-02), not the file mode's. The run's socket directory is opened to other users for the
// subscriber's connect and closed again: the cases that do this run alone (CF_CASE_EXCLUSIVE), or
// one would close the directory under the other's subscriber.
Process& RunOtherUidSubscriber(CaseContext& ctx, const std::vector<std::string>& extra,
                               Process** pub_out) {
  if (geteuid() != 0) {
    ctx.Unsupported(
        "needs root to start a subscriber as a second uid (setresuid); running as uid " +
        N(geteuid()));
  }
  if (access("/usr/bin/setpriv", X_OK) != 0) {
    ctx.Unsupported("setpriv (util-linux) not installed: no way to start a setresuid child");
  }
  const std::vector<std::string>& tmpl = ctx.manifest().subscriber;
  if (tmpl.empty()) ctx.Unsupported("the manifest offers no subscriber adapter");
  std::vector<std::string> args = PubArgs(ctx, 1);
  args.insert(args.end(), {"--file-mode", "0660"});
  args.insert(args.end(), extra.begin(), extra.end());
  Process& pub = ctx.StartPublisher(args);
  size_t from = 0;
  if (!pub.WaitEvent("ready", In(5000), &from)) {
    ctx.CheckUnsupported(pub);
    std::string given = "--file-mode 0660";
    for (const std::string& a : extra)
      given += " " + a;
    ctx.Unsupported("the publisher adapter does not take " + given +
                    " (needed so another uid can reach the socket): " + pub.StatusText());
  }
  const std::string dir = ctx.SocketPath().substr(0, ctx.SocketPath().rfind('/'));
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || chmod(dir.c_str(), (st.st_mode & 0777) | 0011) != 0) {
    ctx.Unsupported("cannot open the socket directory " + dir + " to other users");
  }
  const uid_t other = 65534;
  Process& sub = ctx.StartSubscriberAs(
      other, 0, {"--key", ctx.key(), "--frames", "1", "--timeout-ms", "3000"});
  const bool exited = sub.WaitExit(In(6000));
  chmod(dir.c_str(), st.st_mode & 0777);
  if (!exited) ctx.Fail("RES-PERM-02", "the other uid's subscriber finishes", "still running");
  if (sub.exit_code() == 126 || sub.exit_code() == 127) {
    ctx.Unsupported("the subscriber adapter is not executable by uid " + N(other) + ": " +
                    sub.StderrTail(300));
  }
  *pub_out = &pub;
  return sub;
}

// RES-PERM-01 with the user's 0660 under a umask that strips the group bits: a publisher that
// relies on open()/bind() to apply the mode (and skips fchmod/chmod) ends up with 0600, which
// every other case, run under the harness's umask, could not tell from a deliberate 0660.
void ModeDespiteUmask(CaseContext& ctx, bool ring) {
  std::vector<std::string> args = PubArgs(ctx, 1);
  args.insert(args.end(), {"--file-mode", "0660"});
  if (ring) args.insert(args.end(), {"--packets", "1"});
  Process& pub = ctx.StartPublisherUnderUmask(077, args);
  size_t from = 0;
  if (!pub.WaitEvent("ready", In(5000), &from)) {
    ctx.CheckUnsupported(pub);
    ctx.Unsupported(
        "the publisher adapter does not take --file-mode 0660 (optional, ADAPTER.md "
        "2): " +
        pub.StatusText());
  }
  std::vector<std::pair<std::string, std::string>> files = {{"segment", ctx.SegmentPath()},
                                                            {"socket", ctx.SocketPath()}};
  if (ring) files = {{"packet ring", ctx.RingPath()}};
  for (const auto& [what, path] : files) {
    struct stat st;
    const bool ok = stat(path.c_str(), &st) == 0;
    char mode[16];
    std::snprintf(mode, sizeof mode, "mode 0%03o", ok ? st.st_mode & 0777 : 0);
    ctx.Expect(ok && (st.st_mode & 0777) == 0660, "RES-PERM-01",
               "the " + what + " file's mode 0660 as configured, under umask 077",
               ok ? std::string(mode) : path + ": " + std::strerror(errno));
  }
  GoodSubscriber(ctx, pub, 1);
}

CF_CASE(ModeUmask, "1.1/file-mode-0660-despite-umask",
        "--file-mode 0660 under umask 077: the segment and the socket file are 0660 (the mode is "
        "set, not left to the umask)",
        (std::vector<std::string>{"RES-PERM-01"}), kPub, {}) {
  ModeDespiteUmask(ctx, false);
}

CF_CASE(RingModeUmask, "10.2/ring-file-mode-0660-despite-umask",
        "--file-mode 0660 under umask 077: the packet ring file is 0660 too",
        (std::vector<std::string>{"RES-PERM-01", "PKT-RING-01"}), kPub, kV2) {
  ModeDespiteUmask(ctx, true);
}

CF_CASE_EXCLUSIVE(
    OtherUid, "1.1/subscriber-of-another-uid",
    "a subscriber running as another uid (root harness: a setresuid child via setpriv) is "
    "answered HELLO_RESP PERMISSION; the publisher keeps serving its own uid",
    (std::vector<std::string>{"RES-PERM-02", "RES-PERM-05"}), kPub, {}) {
  Process* pub = nullptr;
  Process& sub = RunOtherUidSubscriber(ctx, {}, &pub);
  const nlohmann::json* e = FindError(sub);
  ctx.Expect(
      e != nullptr && e->contains("code") && (*e)["code"].is_number_unsigned() &&
          (*e)["code"].get<uint64_t>() == ctx.spec().Err("PERMISSION"),
      "RES-PERM-02",
      "the other uid's subscriber refused with PERMISSION (code " +
          N(ctx.spec().Err("PERMISSION")) + ")",
      e ? e->dump() : "no error event; adapter " + sub.StatusText() + "; " + sub.StdoutTail(4));
  GoodSubscriber(ctx, *pub, 1);
}

// RES-PERM-02's other branch: "unless its user explicitly allowed other uids". Without this case
// a publisher that ignored the allowance (refusing every other uid) passed the run.
CF_CASE_EXCLUSIVE(
    OtherUidAllowed, "1.1/subscriber-of-another-uid-allowed",
    "with --allow-other-uids a subscriber running as another uid is served: HELLO_RESP OK, "
    "frame 1, exit 0",
    (std::vector<std::string>{"RES-PERM-02", "RES-PERM-05"}), kPub, {}) {
  Process* pub = nullptr;
  Process& sub = RunOtherUidSubscriber(ctx, {"--allow-other-uids"}, &pub);
  const nlohmann::json* e = FindError(sub);
  size_t from = 0;
  const nlohmann::json* f = sub.WaitEvent("frame", In(0), &from);
  ctx.Expect(
      e == nullptr && sub.exit_code() == 0 && f != nullptr && f->value("seq", uint64_t{0}) == 1,
      "RES-PERM-02", "the other uid's subscriber, explicitly allowed, reads frame 1 and exits 0",
      (e ? e->dump() : std::string("no error event")) + "; adapter " + sub.StatusText() + "; " +
          sub.StdoutTail(4));
  ExpectCleanExit(ctx, *pub);
}

// RES-PERM-03 at reclaim: a stale segment (nobody holds its lock) that the publisher may open and
// lock (mode 0666) but not unlink, because the sticky /dev/shm lets only its owner (root here)
// remove it. The publisher, running as another uid, must report PERMISSION, not crash, and leave
// the file alone. The socket directory is /tmp (sticky and open to all) so that the segment is
// the only thing the publisher may not remove.
CF_CASE(ReclaimDenied, "1.3/stale-segment-unlink-denied",
        "a stale segment of root's that a publisher of another uid may lock but not unlink "
        "(sticky /dev/shm): the publisher reports PERMISSION, exits without crashing and leaves "
        "the file",
        (std::vector<std::string>{"RES-PERM-03", "RES-CREATE-02"}), kPub, {}) {
  if (geteuid() != 0) {
    ctx.Unsupported(
        "needs root to own the stale segment and start the publisher as a second uid; "
        "running as uid " +
        N(geteuid()));
  }
  if (access("/usr/bin/setpriv", X_OK) != 0) {
    ctx.Unsupported("setpriv (util-linux) not installed: no way to start a setresuid child");
  }
  struct stat shm;
  if (stat("/dev/shm", &shm) != 0 || (shm.st_mode & S_ISVTX) == 0) {
    ctx.Unsupported("/dev/shm is not sticky here: another uid could unlink root's files");
  }
  ctx.UseDefaultSocketDir(false);
  {
    std::ofstream seg(ctx.SegmentPath(), std::ios::binary);
    const std::vector<char> bytes(8192, 0);
    seg.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  if (chmod(ctx.SegmentPath().c_str(), 0666) != 0) ctx.Fail("HARNESS", "chmod 0666", "failed");
  struct stat before;
  stat(ctx.SegmentPath().c_str(), &before);
  ctx.observer().Disable(kObsAll);  // our stale file is no publisher's segment
  Process& pub = ctx.StartPublisherAs(65534, 65534, PubArgs(ctx, 1));
  if (!pub.WaitExit(In(5000))) {
    ctx.Fail("RES-PERM-03", "the publisher gives up on the key it cannot reclaim",
             "still running after 5 s; " + pub.StdoutTail(4));
  }
  if (pub.exit_code() == 126 || pub.exit_code() == 127) {
    ctx.Unsupported("the publisher adapter is not executable by uid 65534: " + pub.StderrTail(300));
  }
  const nlohmann::json* e = FindError(pub);
  ctx.Expect(
      pub.term_signal() == 0 && e != nullptr && e->value("name", "") == "PERMISSION", "RES-PERM-03",
      "an error event PERMISSION (unlinking root's stale segment fails with EPERM), no crash",
      (e ? e->dump() : std::string("no error event")) + "; adapter " + pub.StatusText() + "; " +
          pub.StdoutTail(4));
  struct stat after;
  ctx.Expect(stat(ctx.SegmentPath().c_str(), &after) == 0 && after.st_ino == before.st_ino,
             "RES-PERM-03", "the stale segment left in place", "it is gone or replaced");
}

// RES-PERM-03 with EACCES rather than EPERM: the stale socket file lies in a directory the
// publisher's uid may search but not write (root's, mode 0755, not sticky), so unlinking it fails
// with EACCES, which is a permission failure like EPERM: PERMISSION, not SYSTEM.
CF_CASE(ReclaimSocketDenied, "1.3/stale-socket-unlink-denied",
        "a stale socket file in a socket directory the publisher's uid cannot write (EACCES on "
        "unlink): the publisher reports PERMISSION, exits without crashing and leaves the file",
        (std::vector<std::string>{"RES-PERM-03"}), kPub, {}) {
  if (geteuid() != 0) {
    ctx.Unsupported(
        "needs root to own the socket directory and start the publisher as a "
        "second uid; running as uid " +
        N(geteuid()));
  }
  if (access("/usr/bin/setpriv", X_OK) != 0) {
    ctx.Unsupported("setpriv (util-linux) not installed: no way to start a setresuid child");
  }
  char dir[] = "/tmp/cuframes-conform-ro-XXXXXX";
  if (mkdtemp(dir) == nullptr || chmod(dir, 0755) != 0) {
    ctx.Fail("HARNESS", "a root-owned directory of mode 0755 under /tmp", strerror(errno));
  }
  const std::string sock = std::string(dir) + "/cuframes-" + ctx.key() + ".sock";
  { std::ofstream stale(sock); }
  chmod(sock.c_str(), 0666);
  ctx.observer().Disable(kObsAll);  // the IUT's socket is not where the observer looks
  ctx.SetAdapterEnv("CUFRAMES_SOCKET_DIR", dir);
  Process& pub = ctx.StartPublisherAs(65534, 65534, PubArgs(ctx, 1));
  const bool exited = pub.WaitExit(In(5000));
  const bool left = access(sock.c_str(), F_OK) == 0;
  unlink(sock.c_str());
  rmdir(dir);
  if (!exited) {
    ctx.Fail("RES-PERM-03", "the publisher gives up on the socket it cannot reclaim",
             "still running after 5 s; " + pub.StdoutTail(4));
  }
  if (pub.exit_code() == 126 || pub.exit_code() == 127) {
    ctx.Unsupported("the publisher adapter is not executable by uid 65534: " + pub.StderrTail(300));
  }
  const nlohmann::json* e = FindError(pub);
  ctx.Expect(pub.term_signal() == 0 && e != nullptr && e->value("name", "") == "PERMISSION",
             "RES-PERM-03",
             "an error event PERMISSION (unlinking the stale socket fails with EACCES), no crash",
             (e ? e->dump() : std::string("no error event")) + "; adapter " + pub.StatusText());
  ctx.Expect(left, "RES-PERM-03", "the stale socket file left in place", "it is gone");
}

}  // namespace
}  // namespace cuframes::conform
