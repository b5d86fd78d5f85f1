// cuda.cc: the CUDA_IPC kind at the wire (issue 12): the harness plays a CUDA subscriber against
// an IUT publisher (`--kind cuda`) and a CUDA publisher against an IUT subscriber, opening the
// peer's IPC handles from the slot descriptors and checking every frame's bytes on the device.
//
// Device-side ordering (ACK-REUSE-02, ACK-READ-02) is made observable with deliberately slow
// kernels: a slow reader whose ack event a publisher must wait on, a slow writer whose ready event
// a subscriber must wait on. An overwrite or an early read shows as bytes that differ from the
// adapter contract's payload. Each such case has a negative control that removes the one
// synchronisation it relies on and must then see corruption; a control that sees none proves the
// detector blind on this machine, and fails, so a green ordering case always means something.
//
// Every case needs the manifest to claim `cuda_ipc` and a usable device here; otherwise it is
// UNSUPPORTED with the reason (KIND-05; a harness built without CUDA says so).
//
// The CUDA_VMM_FD cases (section 7.1, `7.1/vmm-*`, manifest kind `cuda_vmm_fd`, adapters'
// `--kind cuda_vmm_fd`) reuse the same device side: the slot buffers are cuMemCreate allocations
// whose descriptors travel with HELLO_RESP (SCM_RIGHTS), the events are those of CUDA_IPC. The
// harness counts the descriptors, imports and maps them, verifies frames on the device and
// checks that a killed publisher's buffers stay readable (KIND-08); as a publisher it sends too
// few, no, too many, too small and non-VMM descriptors (KIND-07).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

#include "../src/cuda_peer.h"
#include "../src/shm_fence.h"
#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kPub = Role::kPublisher;
constexpr Role kSub = Role::kSubscriber;
const Needs kCuda{1, "cuda_ipc", ""};
const Needs kVmm{1, "cuda_vmm_fd", ""};

using cudapeer::IpcHandle;

// The slow kernels hold their stream this long: far beyond a context switch between two
// processes on one GPU (about 130 us, BRIEF section 4), so an unsynchronised peer's copy lands
// inside the window; short enough that a case stays well under a second.
constexpr uint32_t kSlowUs = 20000;
constexpr uint64_t kBytes = 8192;

std::string Num(uint64_t v) {
  return std::to_string(v);
}

void RequireDevice(CaseContext& ctx) {
  const std::string why = cudapeer::Unavailable();
  if (!why.empty()) ctx.Unsupported(why);
}

uint32_t CudaBit(CaseContext& ctx) {
  return 1u << (ctx.spec().Enum("memory_kind", "CUDA_IPC") - 1);
}

IpcHandle ToHandle(std::span<const uint8_t> b) {
  IpcHandle h{};
  std::memcpy(h.data(), b.data(), std::min(b.size(), h.size()));
  return h;
}

std::vector<std::string> CudaPubArgs(CaseContext& ctx, uint64_t frames, uint64_t wait) {
  std::vector<std::string> a = PubArgs(ctx, frames, 2, wait);
  a.insert(a.end(), {"--kind", "cuda"});
  return a;
}

// ---- the harness as a CUDA subscriber ----

struct CudaSub {
  explicit CudaSub(CaseContext& c) : ctx(c), sub(c) {}
  CaseContext& ctx;
  ScriptedSub sub;
  std::unique_ptr<cudapeer::Importer> imp;
  std::vector<IpcHandle> mem, ready;
};

// HELLO offering CUDA_IPC only, then the segment checks of ScriptedSub (CUDA layout included).
void HelloAndMap(CudaSub& s) {
  HelloParams hp;
  hp.kinds_mask = CudaBit(s.ctx);
  const HelloInfo h = s.sub.Hello(hp);
  s.ctx.Expect(h.memory_kind == s.ctx.spec().Enum("memory_kind", "CUDA_IPC"), "KIND-03",
               "a publisher started with --kind cuda answers memory_kind CUDA_IPC",
               Num(h.memory_kind), h.msg.raw);
  s.sub.MapAndValidate();
}

// SHM-SLOT-01: every slot's mem_handle (descriptor offset 64) and ready_event (offset 128) are
// IPC handles that open here, one allocation per slot of at least slot_bytes.
void OpenSlots(CudaSub& s) {
  CaseContext& ctx = s.ctx;
  std::string err;
  s.imp = cudapeer::MakeImporter(&err);
  if (!s.imp) ctx.Fail("HARNESS", "the harness's CUDA subscriber side starts", err);
  const uint32_t slots = s.sub.slot_count();
  const uint64_t slot_bytes = s.sub.Header().Get("slot_bytes");
  for (uint32_t i = 0; i < slots; ++i) {
    StructView d = s.sub.SlotDesc(i);
    const IpcHandle m = ToHandle(d.Bytes("mem_handle"));
    const IpcHandle r = ToHandle(d.Bytes("ready_event"));
    ctx.Expect(!AllZero(m), "SHM-SLOT-01",
               "slot " + Num(i) + " mem_handle (descriptor offset 64) a cudaIpcMemHandle_t",
               "all zero", d.All(), d.base());
    ctx.Expect(!AllZero(r), "SHM-SLOT-01",
               "slot " + Num(i) + " ready_event (descriptor offset 128) a cudaIpcEventHandle_t",
               "all zero", d.All(), d.base());
    for (uint32_t j = 0; j < i; ++j) {
      ctx.Expect(
          s.mem[j] != m, "SHM-SLOT-01",
          "slot " + Num(i) + " has its own buffer (a mem_handle unlike slot " + Num(j) + "'s)",
          "the same handle bytes", d.All(), d.base());
    }
    err = s.imp->OpenSlot(m, r);
    if (!err.empty()) {
      ctx.Fail("SHM-SLOT-01",
               "slot " + Num(i) +
                   "'s mem_handle (offset 64) and ready_event (offset 128) open in another "
                   "process (cudaIpcOpenMemHandle, cudaIpcOpenEventHandle)",
               err, d.All(), d.base());
    }
    const uint64_t got = s.imp->AllocationBytes(i);
    ctx.Expect(got == 0 || got >= slot_bytes, "SHM-SLOT-01",
               "slot " + Num(i) + "'s allocation at least slot_bytes = " + Num(slot_bytes),
               Num(got) + " bytes mapped from the handle's address");
    s.mem.push_back(m);
    s.ready.push_back(r);
  }
  ctx.Note("opened " + Num(s.imp->opened()) + " allocations and " + Num(slots) + " ready events");
}

// MSG-ATTACH-01: our ack event's handle into our slot's ack_event, then ACK_EVENT_PRESENT.
// `flag` false leaves the flag clear; `garbage` writes bytes that are no event handle.
void WriteAckEvent(CudaSub& s, bool flag, bool garbage) {
  IpcHandle h{};
  const std::string err = s.imp->CreateAckEvent(&h);
  if (!err.empty()) s.ctx.Fail("HARNESS", "the harness creates its interprocess ack event", err);
  if (garbage) h.fill(0x5a);
  StructView me = s.sub.SubSlot(static_cast<uint32_t>(s.sub.hello().index));
  std::memcpy(me.Bytes("ack_event").data(), h.data(), h.size());
  ShmReleaseFence();  // the handle bytes before the flag (no instrumented fence: shm_fence.h)
  if (flag) me.Set("flags", s.ctx.spec().Enum("subscriber_flags", "ACK_EVENT_PRESENT"));
}

TlvMsg SendAttach(CudaSub& s, bool written_flag) {
  const Spec& sp = s.ctx.spec();
  MessageBuilder b(sp, "ATTACH_REQ");
  b.Set("subscriber_index", s.sub.hello().index)
      .Set("generation", s.sub.hello().generation)
      .Set("flags", written_flag ? sp.Enum("attach_req_flags", "ACK_EVENT_WRITTEN") : 0);
  s.sub.Send(b.Encode());
  TlvMsg m = RecvOrFail(s.ctx, s.sub.conn(), "SM-PUB-01", "ATTACH_RESP", 3000);
  s.ctx.Expect(sp.MsgName(m.type) == "ATTACH_RESP", "SM-PUB-01", "ATTACH_RESP", Describe(sp, m),
               m.raw);
  return m;
}

// The whole CUDA handshake; returns start_seq.
uint64_t CudaHandshake(CudaSub& s) {
  HelloAndMap(s);
  OpenSlots(s);
  WriteAckEvent(s, true, false);
  const TlvMsg m = SendAttach(s, true);
  const Spec& sp = s.ctx.spec();
  s.ctx.Expect(PayloadField(sp, "AttachResp", m, "status") == 0, "MSG-ATTACH-03",
               "ATTACH_RESP(OK) for a subscriber with ACK_EVENT_WRITTEN, ACK_EVENT_PRESENT and an "
               "interprocess ack event",
               Describe(sp, m), m.raw);
  const uint64_t start = PayloadField(sp, "AttachResp", m, "start_seq");
  StructView me = s.sub.SubSlot(static_cast<uint32_t>(s.sub.hello().index));
  s.ctx.Expect(
      me.Get("state") == sp.Enum("subscriber_slot_state", "ACTIVE") && me.Get("start_seq") == start,
      "MSG-ARESP-01", "slot ACTIVE with start_seq " + Num(start) + " before ATTACH_RESP",
      "state " + Num(me.Get("state")) + " start_seq " + Num(me.Get("start_seq")), me.All(),
      me.base());
  return start;
}

// Waits (polling, SHM-ORDER-03) until frame n is committed, checks its slot's meta and that the
// slot's handles are the ones opened at attach (they never change: SHM-SLOT-01, which is what lets
// a subscriber open once, RES-CUDA-01). Returns the slot and payload_bytes.
std::pair<uint32_t, uint64_t> WaitCommitted(CudaSub& s, uint64_t n, int timeout_ms = 5000) {
  CaseContext& ctx = s.ctx;
  StructView h = s.sub.Header();
  const Deadline d = In(timeout_ms);
  for (;;) {
    const auto f = static_cast<uint32_t>(h.Get("frame_futex"));
    if (h.Get("write_seq") >= n) break;
    if (Clock::now() >= d) {
      ctx.Fail("ACK-COMMIT-01",
               "write_seq reaches " + Num(n) + " within " + Num(static_cast<uint64_t>(timeout_ms)) +
                   " ms",
               "write_seq " + Num(h.Get("write_seq")), h.All());
    }
    FutexWait(h.Bytes("frame_futex").data(), f, MsLeft(d, 5));
  }
  const uint32_t slot = static_cast<uint32_t>((n - 1) % s.sub.slot_count());
  StructView desc = s.sub.SlotDesc(slot);
  StructView meta(ctx.spec(), "FrameMeta", s.sub.segment()->span(), desc.base());
  const uint64_t seq = meta.Get("seq");
  ctx.Expect(seq == n, "ACK-REUSE-01",
             "slot " + Num(slot) + " holds frame " + Num(n) + " until we release it",
             "meta.seq " + Num(seq), meta.All(), meta.base());
  const uint64_t bytes = meta.Get("payload_bytes");
  ctx.Expect(bytes <= s.sub.Header().Get("slot_bytes"), "SHM-FMETA-02",
             "payload_bytes <= slot_bytes", Num(bytes), meta.All(), meta.base());
  ctx.Expect(ToHandle(desc.Bytes("mem_handle")) == s.mem[slot] &&
                 ToHandle(desc.Bytes("ready_event")) == s.ready[slot],
             "SHM-SLOT-01",
             "slot " + Num(slot) + "'s handles unchanged since READY (opened once at attach)",
             "changed by frame " + Num(n), desc.All(), desc.base());
  return {slot, bytes};
}

// Reads `frames` frames from start: per frame, on the device, wait on the ready event, (spin),
// verify, record the ack event (when `record_ack`), and release on the CPU at once. Returns the
// device's findings per frame.
std::vector<cudapeer::FrameCheck> ReadOnDevice(CudaSub& s, uint64_t start, uint64_t frames,
                                               uint32_t spin_us, bool record_ack) {
  for (uint64_t i = 0; i < frames; ++i) {
    const uint64_t n = start + i;
    const auto [slot, bytes] = WaitCommitted(s, n);
    const std::string err = s.imp->EnqueueVerify(slot, n, bytes, spin_us, true, record_ack, i);
    if (!err.empty()) s.ctx.Fail("HARNESS", "the harness enqueues its device-side check", err);
    s.sub.Ack(n);
  }
  std::vector<cudapeer::FrameCheck> out;
  const std::string err = s.imp->Collect(frames, &out);
  if (!err.empty()) s.ctx.Fail("HARNESS", "the harness's device-side checks complete", err);
  return out;
}

// "frame 3: 8192 bytes differ from byte 0; ..." for the frames that failed.
std::string Corrupt(const std::vector<cudapeer::FrameCheck>& r, uint64_t start, size_t* count) {
  std::string out;
  *count = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    if (r[i].mismatches == 0) continue;
    ++*count;
    if (*count <= 6) {
      out += (out.empty() ? "" : "; ") + std::string("frame ") + Num(start + i) + ": " +
             Num(r[i].mismatches) + " bytes differ from byte " + Num(r[i].first_bad);
    }
  }
  return out;
}

CF_CASE(CudaFramesOnDevice, "5.3/cuda-frames-verified-on-device",
        "a CUDA subscriber opens every slot's mem_handle and ready_event once at attach and, "
        "waiting on the ready event, finds each of 8 frames (2 slots) byte-exact on the device",
        (std::vector<std::string>{"SHM-SLOT-01", "KIND-03", "RES-CUDA-01", "ACK-COMMIT-01",
                                  "ACK-REUSE-01"}),
        kPub, kCuda) {
  RequireDevice(ctx);
  Process& pub = StartPub(ctx, CudaPubArgs(ctx, 8, 1));
  CudaSub s(ctx);
  const uint64_t start = CudaHandshake(s);
  const auto r = ReadOnDevice(s, start, 8, 0, true);
  size_t bad = 0;
  const std::string what = Corrupt(r, start, &bad);
  ctx.Expect(bad == 0, "ACK-COMMIT-01",
             "every frame's bytes, read on the device after waiting on its slot's ready event, "
             "are the contract payload (the ready event is recorded after the write)",
             Num(bad) + " of 8 frames wrong: " + what);
  ctx.Expect(s.imp->opened() == s.sub.slot_count(), "RES-CUDA-01",
             "one open per slot allocation serves every frame",
             Num(s.imp->opened()) + " allocations opened");
  (void)pub;
}

CF_CASE(CudaAckEventOrdersReuse, "5.2/cuda-ack-event-orders-reuse",
        "a slow device reader (20 ms per frame) records its ack event and releases on the CPU "
        "at once; the publisher's next write to the slot waits on the ack event, so all 8 "
        "frames (2 slots) stay intact until the reader's kernel has checked them",
        (std::vector<std::string>{"ACK-REUSE-02", "ACK-REL-01", "ACK-CUDA-02"}), kPub, kCuda) {
  RequireDevice(ctx);
  Process& pub = StartPub(ctx, CudaPubArgs(ctx, 8, 1));
  CudaSub s(ctx);
  const uint64_t start = CudaHandshake(s);
  const auto r = ReadOnDevice(s, start, 8, kSlowUs, true);
  size_t bad = 0;
  const std::string what = Corrupt(r, start, &bad);
  ctx.Expect(bad == 0, "ACK-REUSE-02",
             "no frame overwritten while our slow kernel still reads it (the publisher waits "
             "for our ack event to complete before reusing the slot)",
             Num(bad) + " of 8 frames overwritten under the reader: " + what);
  (void)pub;
}

CF_CASE(CudaAckReuseControl, "5.2/cuda-ack-event-orders-reuse-control",
        "negative control of 5.2/cuda-ack-event-orders-reuse: the same slow reader never "
        "records its ack event, so nothing orders the publisher's reuse after the read and the "
        "reader must see overwritten frames; if it sees none, the check above is blind here",
        (std::vector<std::string>{"ACK-REUSE-02"}), kPub, kCuda) {
  RequireDevice(ctx);
  Process& pub = StartPub(ctx, CudaPubArgs(ctx, 8, 1));
  CudaSub s(ctx);
  const uint64_t start = CudaHandshake(s);
  const auto r = ReadOnDevice(s, start, 8, kSlowUs, false);
  size_t bad = 0;
  const std::string what = Corrupt(r, start, &bad);
  ctx.Note("without the ack event: " + Num(bad) + " of 8 frames overwritten: " + what);
  // The control's strength is worth seeing in a green run too (a GPU CI log).
  std::fprintf(stderr, "cuframes-conform: %s: %zu of 8 frames overwritten without the ack event\n",
               ctx.def().id.c_str(), bad);
  // Frames 7 and 8 are never overwritten (no frame 9, 10), so at most 6 can be.
  ctx.Expect(bad >= 1, "HARNESS",
             "the slow reader sees overwritten frames when no ack event orders the reuse "
             "(otherwise 5.2/cuda-ack-event-orders-reuse cannot fail on this machine)",
             "all 8 frames intact");
  (void)pub;
}

// ACK-CUDA-03: one subscriber's device reads overrun the ACK timeout while its host-side ACKs
// come at once. Its kernel holds its stream far longer than the ACK timeout, so a publisher that
// makes its writing stream wait on the ack event (instead of querying it from the host with the
// ACK deadline) delays the other subscriber's next frames by the whole kernel.
constexpr int kStallAckTimeoutMs = 300;
constexpr uint32_t kStallUs = 4'000'000;
constexpr int64_t kStallBoundMs = kStallAckTimeoutMs + 1700;

// Exclusive: while the 4 s kernel runs, any CUDA call of another case in this process that
// synchronises the device (cudaFree, say) would wait for it too.
CF_CASE_EXCLUSIVE(
    CudaDeviceStallEvicted, "5.7/cuda-device-stall-evicted",
    "a subscriber releases frame 1 on the CPU at once but records its ack event behind a 4 s "
    "kernel; the publisher (ACK timeout 300 ms) evicts it with ERROR(EVICTED), and another "
    "subscriber has frames 3-6 verified on the device within the ACK timeout (+1700 ms), "
    "not after the kernel",
    (std::vector<std::string>{"ACK-CUDA-03", "ACK-REUSE-02", "ACK-EVICT-01", "ACK-EVICT-03"}), kPub,
    (Needs{1, "cuda_ipc", "ack-timeout"})) {
  RequireDevice(ctx);
  std::vector<std::string> args = CudaPubArgs(ctx, 6, 2);
  args.insert(args.end(), {"--ack-timeout-ms", std::to_string(kStallAckTimeoutMs)});
  Process& pub = StartPub(ctx, args);
  CudaSub stalled(ctx);
  const uint64_t stalled_start = CudaHandshake(stalled);
  CudaSub good(ctx);
  const uint64_t start = CudaHandshake(good);
  ctx.Expect(stalled_start == 1 && start == 1, "ADP-PUB-01",
             "with --wait-subscribers 2 both subscribers start at frame 1",
             "start_seq " + Num(stalled_start) + " and " + Num(start));
  // The stalled subscriber: frame 1 read behind the long kernel, the ack event recorded after
  // it, the host-side release at once.
  const auto [slot1, bytes1] = WaitCommitted(stalled, 1);
  std::string err = stalled.imp->EnqueueVerify(slot1, 1, bytes1, kStallUs, true, true, 0);
  if (!err.empty()) ctx.Fail("HARNESS", "the harness enqueues its stalled device read", err);
  stalled.sub.Ack(1);
  const auto released = Clock::now();
  // The good subscriber: each frame verified on the device (synchronised) before its release.
  std::vector<cudapeer::FrameCheck> r;
  int64_t last_ms = 0;
  for (uint64_t n = 1; n <= 6; ++n) {
    const auto [slot, bytes] = WaitCommitted(good, n, 10000);
    err = good.imp->EnqueueVerify(slot, n, bytes, 0, true, true, n - 1);
    if (err.empty()) err = good.imp->Collect(n, &r);
    if (!err.empty()) ctx.Fail("HARNESS", "the harness verifies frame " + Num(n), err);
    last_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - released).count();
    good.sub.Ack(n);
  }
  ctx.Note("frame 6 verified on the device " + Num(static_cast<uint64_t>(last_ms)) +
           " ms after the stalled subscriber's release");
  ctx.Expect(last_ms <= kStallBoundMs, "ACK-CUDA-03",
             "the other subscriber's frames 3-6 complete on the device within the ACK timeout "
             "(+1700 ms) of the stalled subscriber's release: the publisher never waits on a "
             "stream for an ack event, and evicts a subscriber whose ack event overruns",
             Num(static_cast<uint64_t>(last_ms)) + " ms (the stalled kernel runs " +
                 Num(kStallUs / 1000) + " ms)");
  size_t bad = 0;
  const std::string what = Corrupt(r, 1, &bad);
  ctx.Expect(bad == 0, "ACK-REUSE-02", "every frame of the other subscriber intact on the device",
             Num(bad) + " of 6 frames wrong: " + what);
  ExpectErrorClose(ctx, stalled.sub.conn(), "EVICTED", "ACK-CUDA-03", 3000);
  (void)pub;
}

// ATTACH_REQ refused for CUDA kinds: the publisher answers a non-OK ATTACH_RESP with start_seq 0,
// closes, frees the slot and keeps serving (a good CUDA subscriber then reads both frames).
enum class BadAttach { kNoWrittenFlag, kNoPresentFlag, kGarbageEvent };

void RefusedAttach(CaseContext& ctx, BadAttach how) {
  RequireDevice(ctx);
  const Spec& sp = ctx.spec();
  Process& pub = StartPub(ctx, CudaPubArgs(ctx, 2, 1));
  CudaSub bad(ctx);
  HelloAndMap(bad);
  OpenSlots(bad);
  WriteAckEvent(bad, how != BadAttach::kNoPresentFlag, how == BadAttach::kGarbageEvent);
  const TlvMsg m = SendAttach(bad, how != BadAttach::kNoWrittenFlag);
  const uint64_t status = PayloadField(sp, "AttachResp", m, "status");
  if (how == BadAttach::kGarbageEvent) {
    ctx.Expect(status == sp.Err("CUDA"), "MSG-ATTACH-03",
               "ATTACH_RESP status CUDA for an ack_event that does not open", Describe(sp, m),
               m.raw);
  } else {
    ctx.Expect(status == sp.Err("PROTOCOL"), "MSG-ATTACH-03",
               how == BadAttach::kNoWrittenFlag
                   ? "ATTACH_RESP status PROTOCOL for an ATTACH_REQ without ACK_EVENT_WRITTEN"
                   : "ATTACH_RESP status PROTOCOL when our slot lacks ACK_EVENT_PRESENT",
               Describe(sp, m), m.raw);
  }
  ctx.Expect(PayloadField(sp, "AttachResp", m, "start_seq") == 0, "MSG-ARESP-02",
             "start_seq 0 in a refusing ATTACH_RESP", Describe(sp, m), m.raw);
  ExpectCloseOnly(ctx, bad.sub.conn(), "MSG-ARESP-02", 3000);
  StructView slot = bad.sub.SubSlot(static_cast<uint32_t>(bad.sub.hello().index));
  const Deadline freed_by = In(2000);
  while (slot.Get("state") != sp.Enum("subscriber_slot_state", "FREE") && Clock::now() < freed_by) {
    FutexWait(slot.Bytes("state").data(), static_cast<uint32_t>(slot.Get("state")), 5);
  }
  ctx.Expect(slot.Get("state") == sp.Enum("subscriber_slot_state", "FREE"), "MSG-ARESP-02",
             "the refused subscriber's slot freed", "state " + Num(slot.Get("state")), slot.All(),
             slot.base());
  CudaSub good(ctx);
  const uint64_t start = CudaHandshake(good);
  const auto r = ReadOnDevice(good, start, 2, 0, true);
  size_t n_bad = 0;
  const std::string what = Corrupt(r, start, &n_bad);
  ctx.Expect(n_bad == 0, "SM-PUB-03",
             "after the refusal the publisher serves the next subscriber both frames intact", what);
  (void)pub;
}

CF_CASE(CudaAttachNoWritten, "3.5/cuda-attach-without-ack-event-written",
        "a CUDA subscriber's ATTACH_REQ without ACK_EVENT_WRITTEN gets ATTACH_RESP(PROTOCOL, "
        "start_seq 0) and a closed connection; the next subscriber is served",
        (std::vector<std::string>{"MSG-ATTACH-03", "MSG-ARESP-02", "SM-PUB-03"}), kPub, kCuda) {
  RefusedAttach(ctx, BadAttach::kNoWrittenFlag);
}

CF_CASE(CudaAttachNoPresent, "3.5/cuda-attach-slot-lacks-ack-event-present",
        "ATTACH_REQ with ACK_EVENT_WRITTEN while the subscriber slot lacks ACK_EVENT_PRESENT gets "
        "ATTACH_RESP(PROTOCOL, start_seq 0) and a closed connection",
        (std::vector<std::string>{"MSG-ATTACH-03", "MSG-ARESP-02"}), kPub, kCuda) {
  RefusedAttach(ctx, BadAttach::kNoPresentFlag);
}

CF_CASE(CudaAttachGarbageEvent, "3.6/cuda-attach-garbage-ack-event",
        "an ack_event of garbage bytes (flags set) is refused with ATTACH_RESP(CUDA, "
        "start_seq 0), the connection closed and the slot freed; the publisher keeps serving",
        (std::vector<std::string>{"MSG-ATTACH-03", "MSG-ARESP-02", "ACK-CUDA-02", "SM-PUB-03"}),
        kPub, kCuda) {
  RefusedAttach(ctx, BadAttach::kGarbageEvent);
}

// ---- the harness as a CUDA publisher ----

enum class PubMode { kGood, kReadyBeforeWrite, kGarbageMemHandle };

struct CudaPubRun {
  std::unique_ptr<cudapeer::Exporter> exp;
  std::unique_ptr<ScriptedPub> pub;
  Process* sub = nullptr;
};

// Creates a CUDA_IPC segment whose slot descriptors carry our handles (or garbage), starts the IUT
// subscriber with --kind cuda and runs the handshake up to HELLO_RESP(OK).
void StartCudaPub(CaseContext& ctx, CudaPubRun& run, PubMode mode, uint64_t frames) {
  RequireDevice(ctx);
  PubParams p;
  p.kind = "CUDA_IPC";
  p.slot_count = 2;
  p.max_subscribers = 2;
  p.slot_bytes = kBytes;
  std::string err;
  run.exp = cudapeer::MakeExporter(p.slot_count, p.slot_bytes, &err);
  if (!run.exp) ctx.Fail("HARNESS", "the harness's CUDA publisher side starts", err);
  cudapeer::Exporter* exp = run.exp.get();
  p.before_ready = [exp, mode](ScriptedPub& sp) {
    for (uint32_t i = 0; i < sp.params().slot_count; ++i) {
      StructView d = sp.SlotDesc(i);
      IpcHandle m = exp->MemHandle(i);
      if (mode == PubMode::kGarbageMemHandle) m.fill(0xa5);
      const IpcHandle r = exp->ReadyHandle(i);
      std::memcpy(d.Bytes("mem_handle").data(), m.data(), m.size());
      std::memcpy(d.Bytes("ready_event").data(), r.data(), r.size());
    }
  };
  run.pub = std::make_unique<ScriptedPub>(ctx, p);
  run.pub->Create();
  run.sub = &run.pub->StartSub({"--kind", "cuda", "--frames", Num(frames), "--timeout-ms", "5000"});
  const TlvMsg hello = run.pub->ReadHello();
  const uint64_t kinds = PayloadField(ctx.spec(), "HelloReq", hello, "kinds_mask");
  ctx.Expect((kinds & CudaBit(ctx)) != 0, "KIND-03",
             "a subscriber started with --kind cuda offers CUDA_IPC in kinds_mask", Num(kinds),
             hello.raw);
  MessageBuilder b = run.pub->HelloResp();
  run.pub->conn().Send(b.Encode());
}

// Reads ATTACH_REQ and checks the CUDA parts (MSG-ATTACH-01: ACK_EVENT_WRITTEN, ACK_EVENT_PRESENT
// and an ack event that opens here, i.e. an interprocess event, ACK-CUDA-01), then ATTACH_RESP(OK).
void CudaAttachIut(CaseContext& ctx, CudaPubRun& run) {
  const Spec& sp = ctx.spec();
  const TlvMsg m = run.pub->ReadAttach();
  ctx.Expect((PayloadField(sp, "AttachReq", m, "flags") &
              sp.Enum("attach_req_flags", "ACK_EVENT_WRITTEN")) != 0,
             "MSG-ATTACH-01", "ATTACH_REQ flags with ACK_EVENT_WRITTEN from a CUDA subscriber",
             Describe(sp, m), m.raw);
  StructView slot = run.pub->SubSlot(0);
  ctx.Expect((slot.Get("flags") & sp.Enum("subscriber_flags", "ACK_EVENT_PRESENT")) != 0,
             "MSG-ATTACH-01", "ACK_EVENT_PRESENT set in the subscriber slot before ATTACH_REQ",
             "flags " + Num(slot.Get("flags")), slot.All(), slot.base());
  const std::string err = run.exp->OpenAckEvent(ToHandle(slot.Bytes("ack_event")));
  if (!err.empty()) {
    ctx.Fail("ACK-CUDA-01",
             "the subscriber slot's ack_event opens in another process (an event created with "
             "cudaEventInterprocess | cudaEventDisableTiming)",
             err, slot.All(), slot.base());
  }
  run.pub->SendAttachOk();
}

// Publishes frames 1..frames as a conforming publisher (host ACK wait, then a host-side wait for
// the ack event, ACK-REUSE-02), each written by a slow kernel. Returns the frames published:
// fewer when `stop_on_exit` and the subscriber exited while we waited for its ACK.
uint64_t PublishSlow(CaseContext& ctx, CudaPubRun& run, uint64_t frames, bool ready_before_write,
                     bool stop_on_exit = false) {
  const Spec& sp = ctx.spec();
  ScriptedPub& pub = *run.pub;
  const uint32_t slots = pub.params().slot_count;
  for (uint64_t n = 1; n <= frames; ++n) {
    if (n > slots) {
      StructView me = pub.SubSlot(0);
      StructView h = pub.Header();
      const Deadline d = In(5000);
      for (;;) {
        const auto f = static_cast<uint32_t>(h.Get("ack_futex"));
        if (me.Get("state") != sp.Enum("subscriber_slot_state", "ACTIVE") ||
            me.Get("ack_seq") >= n - slots) {
          break;
        }
        run.sub->Pump(0);
        if (stop_on_exit && !run.sub->running()) return n - 1;
        if (Clock::now() >= d) {
          ctx.Fail("ACK-REL-01", "the subscriber releases frame " + Num(n - slots),
                   "ack_seq " + Num(me.Get("ack_seq")) + " after 5000 ms", me.All(), me.base());
        }
        FutexWait(h.Bytes("ack_futex").data(), f, MsLeft(d, 5));
      }
      const std::string err = run.exp->WaitAck();
      if (!err.empty()) ctx.Fail("HARNESS", "the subscriber's ack event completes", err);
    }
    const uint32_t slot = static_cast<uint32_t>((n - 1) % slots);
    StructView meta(sp, "FrameMeta", pub.segment()->span(), pub.SlotDesc(slot).base());
    meta.Set("timestamp_ns", n * 1000);
    meta.Set("payload_bytes", kBytes);
    meta.Set("flags", 0);
    meta.Set("user_data", n);
    const std::string err = run.exp->WriteFrame(slot, n, kBytes, kSlowUs, ready_before_write);
    if (!err.empty()) ctx.Fail("HARNESS", "the harness writes frame " + Num(n), err);
    pub.Commit(n, n);
  }
  return frames;
}

// The frames the IUT subscriber printed, and how many do not match the contract payload.
size_t WrongFrames(Process& sub, std::string* what) {
  size_t bad = 0;
  for (const auto& e : sub.events()) {
    if (e.value("event", "") != "frame") continue;
    const uint64_t n = e.value("seq", uint64_t{0});
    const bool ok = e.value("valid", false) &&
                    e.value("checksum", std::string()) == Hex64(FrameChecksum(n, kBytes));
    if (!ok) {
      ++bad;
      if (bad <= 4) *what += (what->empty() ? "" : "; ") + e.dump();
    }
  }
  return bad;
}

CF_CASE(CudaSubWaitsReady, "5.3/cuda-subscriber-waits-ready-event",
        "a slow device writer (20 ms per frame) records the ready event after the write and "
        "commits at once; the CUDA subscriber waits on the ready event before reading, so all 6 "
        "frames it reports carry the contract payload; its ack event opens here",
        (std::vector<std::string>{"ACK-READ-02", "MSG-ATTACH-01", "ACK-CUDA-01", "KIND-03"}), kSub,
        kCuda) {
  CudaPubRun run;
  StartCudaPub(ctx, run, PubMode::kGood, 6);
  CudaAttachIut(ctx, run);
  PublishSlow(ctx, run, 6, false);
  WaitExitOrFail(ctx, *run.sub, "ADP-EXIT-01", 10000);
  std::string what;
  const size_t bad = WrongFrames(*run.sub, &what);
  ctx.Expect(bad == 0, "ACK-READ-02",
             "every frame read after the subscriber's stream waited on the slot's ready event "
             "(the contract payload, valid: true)",
             Num(bad) + " wrong: " + what);
  run.pub->ExpectFrames(*run.sub, 1, 6, kBytes);
  ctx.Expect(run.sub->exit_code() == 0, "ADP-EXIT-01", "exit 0 after 6 good frames",
             run.sub->StatusText());
  ctx.Expect(run.exp->Sync().empty(), "HARNESS", "the harness's writing stream completes", "error");
}

CF_CASE(CudaSubReadyControl, "5.3/cuda-subscriber-waits-ready-event-control",
        "negative control of 5.3/cuda-subscriber-waits-ready-event: the ready event is recorded "
        "before the slow write, so a subscriber that waits on it reads too early and must report "
        "a wrong frame; if it reports none, the check above is blind here",
        (std::vector<std::string>{"ACK-READ-02"}), kSub, kCuda) {
  CudaPubRun run;
  StartCudaPub(ctx, run, PubMode::kReadyBeforeWrite, 6);
  CudaAttachIut(ctx, run);
  // The subscriber stops at the first wrong frame (exit 4), so later frames may find no reader.
  const uint64_t sent = PublishSlow(ctx, run, 6, true, true);
  ctx.Note("published " + Num(sent) + " of 6 frames");
  run.sub->WaitExit(In(10000));
  std::string what;
  const size_t bad = WrongFrames(*run.sub, &what);
  ctx.Note("ready event before the write: " + Num(bad) + " wrong frame(s): " + what);
  std::fprintf(stderr,
               "cuframes-conform: %s: %zu wrong frame(s) with the ready event before the write\n",
               ctx.def().id.c_str(), bad);
  ctx.Expect(bad >= 1, "HARNESS",
             "the subscriber reads stale bytes when the ready event does not cover the write "
             "(otherwise 5.3/cuda-subscriber-waits-ready-event cannot fail on this machine)",
             "every frame it printed was valid; adapter " + run.sub->StatusText());
  run.exp->Sync();
}

CF_CASE(CudaSubGarbageMemHandle, "2.4/cuda-garbage-mem-handle",
        "slot descriptors whose mem_handle is garbage: the CUDA subscriber sends no ATTACH_REQ, "
        "closes (DETACH allowed) and reports CUDA; the publisher side is unharmed",
        (std::vector<std::string>{"MSG-ATTACH-01", "ERR-03"}), kSub, kCuda) {
  CudaPubRun run;
  StartCudaPub(ctx, run, PubMode::kGarbageMemHandle, 2);
  ExpectCloseOnly(ctx, run.pub->conn(), "MSG-ATTACH-01", 5000, "DETACH");
  ExpectAdapterError(ctx, *run.sub, "CUDA", "ERR-03", 5000);
  // Our own CUDA side still works after the peer's failed open.
  ctx.Expect(run.exp->WriteFrame(0, 1, kBytes, 0, false).empty() && run.exp->Sync().empty(),
             "HARNESS", "the harness's device side unharmed", "a CUDA error");
}

// ---- CUDA_VMM_FD (section 7.1) ----

void RequireVmm(CaseContext& ctx) {
  const std::string why = cudapeer::VmmUnavailable();
  if (!why.empty()) ctx.Unsupported(why);
}

uint32_t VmmBit(CaseContext& ctx) {
  return 1u << (ctx.spec().Enum("memory_kind", "CUDA_VMM_FD") - 1);
}

void CloseFds(const std::vector<int>& fds) {
  for (const int fd : fds)
    close(fd);
}

// The harness as a CUDA_VMM_FD subscriber of the IUT publisher: HELLO offering CUDA_VMM_FD alone,
// the descriptors that came with HELLO_RESP counted (KIND-04), the segment checked, each
// descriptor imported and mapped for M bytes (an allocation of at least M, KIND-04), the
// ready events opened, our ack event written, ATTACH_REQ. Returns start_seq.
uint64_t VmmHandshake(CudaSub& s) {
  CaseContext& ctx = s.ctx;
  const Spec& sp = ctx.spec();
  HelloParams hp;
  hp.kinds_mask = VmmBit(ctx);
  const HelloInfo h = s.sub.Hello(hp);
  bool truncated = false;
  const std::vector<int> fds = s.sub.conn().TakeFds(&truncated);
  ctx.Expect(h.memory_kind == sp.Enum("memory_kind", "CUDA_VMM_FD"), "KIND-01",
             "a publisher started with --kind cuda_vmm_fd answers memory_kind CUDA_VMM_FD",
             Num(h.memory_kind), h.msg.raw);
  s.sub.MapAndValidate();
  const uint32_t slots = s.sub.slot_count();
  if (fds.size() != slots || truncated) {
    CloseFds(fds);
    ctx.Fail(
        "KIND-04",
        "slot_count = " + Num(slots) +
            " buffer descriptors as one SCM_RIGHTS message with HELLO_RESP(OK)",
        Num(fds.size()) + " descriptors" + (truncated ? ", control data cut (MSG_CTRUNC)" : ""),
        h.msg.raw);
  }
  std::string err;
  s.imp = cudapeer::MakeImporter(&err);
  if (!s.imp) {
    CloseFds(fds);
    ctx.Fail("HARNESS", "the harness's CUDA subscriber side starts", err);
  }
  const uint64_t slot_bytes = s.sub.Header().Get("slot_bytes");
  const uint64_t m = cudapeer::VmmMappedSize(slot_bytes);
  for (uint32_t i = 0; i < slots; ++i) {
    StructView d = s.sub.SlotDesc(i);
    const IpcHandle mh = ToHandle(d.Bytes("mem_handle"));
    const IpcHandle r = ToHandle(d.Bytes("ready_event"));
    ctx.Expect(AllZero(mh), "SHM-SLOT-02",
               "slot " + Num(i) + " mem_handle all zero for CUDA_VMM_FD", "nonzero bytes", d.All(),
               d.base());
    ctx.Expect(!AllZero(r), "SHM-SLOT-02",
               "slot " + Num(i) + " ready_event a cudaIpcEventHandle_t, as for CUDA_IPC",
               "all zero", d.All(), d.base());
    err = s.imp->ImportSlot(fds[i], slot_bytes, r);
    close(fds[i]);
    if (!err.empty()) {
      for (uint32_t j = i + 1; j < slots; ++j)
        close(fds[j]);
      ctx.Fail(
          "KIND-04",
          "descriptor " + Num(i) + " (slot " + Num(i) +
              ") imports (cuMemImportFromShareableHandle, POSIX_FILE_DESCRIPTOR) and maps M = " +
              Num(m) + " bytes at offset 0 (an allocation of at least slot_bytes = " +
              Num(slot_bytes) + " rounded up to the granularity), with its ready_event",
          err, d.All(), d.base());
    }
    s.mem.push_back(mh);
    s.ready.push_back(r);
  }
  ctx.Note("imported " + Num(slots) + " descriptors, " + Num(m) + " bytes mapped each");
  WriteAckEvent(s, true, false);
  const TlvMsg a = SendAttach(s, true);
  ctx.Expect(PayloadField(sp, "AttachResp", a, "status") == 0, "MSG-ATTACH-03",
             "ATTACH_RESP(OK) for a CUDA_VMM_FD subscriber with its ack event", Describe(sp, a),
             a.raw);
  const std::vector<int> late = s.sub.conn().TakeFds();
  CloseFds(late);
  ctx.Expect(late.empty(), "KIND-04", "no descriptor with any message but HELLO_RESP(OK)",
             Num(late.size()) + " descriptors with ATTACH_RESP", a.raw);
  return PayloadField(sp, "AttachResp", a, "start_seq");
}

std::vector<std::string> VmmPubArgs(CaseContext& ctx, uint64_t frames, uint64_t wait) {
  std::vector<std::string> a = PubArgs(ctx, frames, 2, wait);
  a.insert(a.end(), {"--kind", "cuda_vmm_fd"});
  return a;
}

CF_CASE(VmmFramesOnDevice, "7.1/vmm-frames-verified-on-device",
        "a CUDA_VMM_FD subscriber gets one descriptor per slot with HELLO_RESP(OK) and none "
        "later, imports and maps each (allocations of at least M bytes), and finds each of 8 "
        "frames (2 slots) byte-exact on the device after waiting on the ready event",
        (std::vector<std::string>{"KIND-04", "KIND-01", "SHM-SLOT-02", "ACK-COMMIT-01",
                                  "ACK-REUSE-01"}),
        kPub, kVmm) {
  RequireVmm(ctx);
  Process& pub = StartPub(ctx, VmmPubArgs(ctx, 8, 1));
  CudaSub s(ctx);
  const uint64_t start = VmmHandshake(s);
  const auto r = ReadOnDevice(s, start, 8, 0, true);
  size_t bad = 0;
  const std::string what = Corrupt(r, start, &bad);
  ctx.Expect(bad == 0, "KIND-04",
             "every frame's bytes, read through the mapping of the slot's descriptor after its "
             "ready event, are the contract payload",
             Num(bad) + " of 8 frames wrong: " + what);
  (void)pub;
}

CF_CASE(VmmAckEventOrdersReuse, "7.1/vmm-ack-event-orders-reuse",
        "CUDA_VMM_FD: a slow device reader (20 ms per frame) records its ack event and releases "
        "at once; the publisher's next write to the slot waits on the ack event, so all 8 frames "
        "stay intact under the reader",
        (std::vector<std::string>{"ACK-REUSE-02", "ACK-REL-01", "KIND-04"}), kPub, kVmm) {
  RequireVmm(ctx);
  Process& pub = StartPub(ctx, VmmPubArgs(ctx, 8, 1));
  CudaSub s(ctx);
  const uint64_t start = VmmHandshake(s);
  const auto r = ReadOnDevice(s, start, 8, kSlowUs, true);
  size_t bad = 0;
  const std::string what = Corrupt(r, start, &bad);
  ctx.Expect(bad == 0, "ACK-REUSE-02",
             "no frame overwritten while our slow kernel still reads it (CUDA_VMM_FD buffers)",
             Num(bad) + " of 8 frames overwritten under the reader: " + what);
  (void)pub;
}

CF_CASE(VmmAckReuseControl, "7.1/vmm-ack-event-orders-reuse-control",
        "negative control of 7.1/vmm-ack-event-orders-reuse: the slow reader never records its "
        "ack event and must see overwritten frames; if it sees none, the check is blind here",
        (std::vector<std::string>{"ACK-REUSE-02"}), kPub, kVmm) {
  RequireVmm(ctx);
  Process& pub = StartPub(ctx, VmmPubArgs(ctx, 8, 1));
  CudaSub s(ctx);
  const uint64_t start = VmmHandshake(s);
  const auto r = ReadOnDevice(s, start, 8, kSlowUs, false);
  size_t bad = 0;
  const std::string what = Corrupt(r, start, &bad);
  ctx.Note("without the ack event: " + Num(bad) + " of 8 frames overwritten: " + what);
  std::fprintf(stderr, "cuframes-conform: %s: %zu of 8 frames overwritten without the ack event\n",
               ctx.def().id.c_str(), bad);
  ctx.Expect(bad >= 1, "HARNESS",
             "the slow reader sees overwritten frames when no ack event orders the reuse "
             "(otherwise 7.1/vmm-ack-event-orders-reuse cannot fail on this machine)",
             "all 8 frames intact");
  (void)pub;
}

CF_CASE(VmmOutlivesPublisher, "7.1/vmm-buffers-outlive-killed-publisher",
        "the CUDA_VMM_FD publisher is SIGKILLed after 2 frames: the subscriber sees end-of-file "
        "within PEER_DEATH_DETECT_MS and its imported buffers still hold both frames, read on "
        "the device (the driver frees an allocation only when no process holds it)",
        (std::vector<std::string>{"KIND-08", "RES-CRASH-01"}), kPub, kVmm) {
  RequireVmm(ctx);
  Process& pub = StartPub(ctx, VmmPubArgs(ctx, 2, 1));
  CudaSub s(ctx);
  const uint64_t start = VmmHandshake(s);
  const auto r = ReadOnDevice(s, start, 2, 0, true);
  size_t bad = 0;
  const std::string before = Corrupt(r, start, &bad);
  ctx.Expect(bad == 0, "KIND-04", "both frames intact before the kill", before);
  size_t from = 0;
  // Killed after it published both (not mid-commit): what is checked is the buffers' lifetime.
  ctx.Expect(pub.WaitEvent("done", In(5000), &from) != nullptr, "ADP-EVENT-02",
             "the publisher prints done after its 2 frames", pub.StatusText());
  pub.Kill();
  const Deadline d = In(static_cast<int>(ctx.spec().Const("PEER_DEATH_DETECT_MS")) + 2000);
  ctx.Expect(s.sub.conn().WaitClosed(d, nullptr), "RES-CRASH-01",
             "end-of-file on the socket after the publisher's SIGKILL", "the socket stays open");
  // Re-check both slots through our mappings after the death (no ready wait: its process is
  // gone; the frames were complete before we read them above).
  for (uint64_t i = 0; i < 2; ++i) {
    const uint64_t n = start + i;
    const auto slot = static_cast<uint32_t>((n - 1) % s.sub.slot_count());
    const std::string err = s.imp->EnqueueVerify(slot, n, kBytes, 0, false, false, i);
    if (!err.empty()) {
      ctx.Fail("KIND-08",
               "the imported buffer of slot " + Num(slot) +
                   " stays usable after the publisher's "
                   "death",
               err);
    }
  }
  std::vector<cudapeer::FrameCheck> after;
  const std::string err = s.imp->Collect(2, &after);
  if (!err.empty()) {
    ctx.Fail("KIND-08", "device reads of the imported buffers after the publisher's death complete",
             err);
  }
  const std::string what = Corrupt(after, start, &bad);
  ctx.Expect(bad == 0, "KIND-08",
             "a killed publisher's buffers stay readable by its subscriber until it releases them",
             Num(bad) + " of 2 frames changed: " + what);
}

// ---- the harness as a CUDA_VMM_FD publisher ----

enum class VmmSend { kGood, kTooFew, kNone, kTooMany, kNonVmm, kTooSmall };

struct VmmPubRun {
  CudaPubRun run;
  std::vector<int> extra;  // descriptors we opened for a hostile HELLO_RESP
  ~VmmPubRun() { CloseFds(extra); }
};

// Creates a CUDA_VMM_FD segment (`slots` slots, ready events in the descriptors, mem_handle
// zero), starts the IUT subscriber with --kind cuda_vmm_fd and sends HELLO_RESP(OK) with the
// descriptors `how` says.
void StartVmmPub(CaseContext& ctx, VmmPubRun& v, VmmSend how, uint64_t frames, uint32_t slots = 2) {
  RequireVmm(ctx);
  PubParams p;
  p.kind = "CUDA_VMM_FD";
  p.slot_count = slots;
  p.max_subscribers = 2;
  p.slot_bytes = kBytes;
  uint64_t alloc = 0;
  if (how == VmmSend::kTooSmall) {
    // slot_bytes just above one granule: M is two granules, the allocation one.
    const uint64_t g = cudapeer::VmmMappedSize(1);
    if (g == 0) ctx.Fail("HARNESS", "the allocation granularity can be queried", "0");
    p.slot_bytes = g + kBytes;
    alloc = g;
  }
  std::string err;
  v.run.exp = cudapeer::MakeVmmExporter(p.slot_count, p.slot_bytes, alloc, &err);
  if (!v.run.exp) ctx.Fail("HARNESS", "the harness's CUDA_VMM_FD publisher side starts", err);
  cudapeer::Exporter* exp = v.run.exp.get();
  p.before_ready = [exp](ScriptedPub& sp) {
    for (uint32_t i = 0; i < sp.params().slot_count; ++i) {
      const IpcHandle r = exp->ReadyHandle(i);
      std::memcpy(sp.SlotDesc(i).Bytes("ready_event").data(), r.data(), r.size());
    }
  };
  v.run.pub = std::make_unique<ScriptedPub>(ctx, p);
  v.run.pub->Create();
  v.run.sub = &v.run.pub->StartSub(
      {"--kind", "cuda_vmm_fd", "--frames", Num(frames), "--timeout-ms", "5000"});
  const TlvMsg hello = v.run.pub->ReadHello();
  const uint64_t kinds = PayloadField(ctx.spec(), "HelloReq", hello, "kinds_mask");
  ctx.Expect((kinds & VmmBit(ctx)) != 0, "KIND-01",
             "a subscriber started with --kind cuda_vmm_fd offers CUDA_VMM_FD in kinds_mask",
             Num(kinds), hello.raw);
  std::vector<int> fds = exp->Fds();
  switch (how) {
    case VmmSend::kTooFew:
      fds.pop_back();
      break;
    case VmmSend::kNone:
      fds.clear();
      break;
    case VmmSend::kTooMany:
      fds.push_back(fds.front());
      break;
    case VmmSend::kNonVmm: {
      const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (null_fd < 0) ctx.Fail("HARNESS", "open(/dev/null)", std::strerror(errno));
      v.extra.push_back(null_fd);
      fds.back() = null_fd;
      break;
    }
    default:
      break;
  }
  MessageBuilder b = v.run.pub->HelloResp();
  if (!v.run.pub->conn().SendWithFds(b.Encode(), fds)) {
    ctx.Fail("HARNESS", "sendmsg of HELLO_RESP with " + Num(fds.size()) + " descriptors",
             std::strerror(errno));
  }
  ctx.Note("HELLO_RESP(OK) sent with " + Num(fds.size()) + " descriptors for " + Num(slots) +
           " slots");
}

CF_CASE(VmmSubImports, "7.1/vmm-subscriber-imports-descriptors",
        "a CUDA_VMM_FD subscriber given one descriptor per slot with HELLO_RESP imports and maps "
        "them, writes its ack event, and reports all 6 frames of a slow device writer with the "
        "contract payload (it waits on each ready event)",
        (std::vector<std::string>{"KIND-06", "ACK-READ-02", "MSG-ATTACH-01", "ACK-CUDA-01",
                                  "KIND-01"}),
        kSub, kVmm) {
  VmmPubRun v;
  StartVmmPub(ctx, v, VmmSend::kGood, 6);
  CudaAttachIut(ctx, v.run);
  PublishSlow(ctx, v.run, 6, false);
  WaitExitOrFail(ctx, *v.run.sub, "ADP-EXIT-01", 10000);
  std::string what;
  const size_t bad = WrongFrames(*v.run.sub, &what);
  ctx.Expect(bad == 0, "KIND-06",
             "every frame read through the mapped descriptors after the ready event is the "
             "contract payload",
             Num(bad) + " wrong: " + what);
  v.run.pub->ExpectFrames(*v.run.sub, 1, 6, kBytes);
  ctx.Expect(v.run.sub->exit_code() == 0, "ADP-EXIT-01", "exit 0 after 6 good frames",
             v.run.sub->StatusText());
  ctx.Expect(v.run.exp->Sync().empty(), "HARNESS", "the harness's writing stream completes",
             "error");
}

// SCM_MAX_FD: the most descriptors one message carries, so the most CUDA_VMM_FD slots (KIND-04).
constexpr uint32_t kVmmMaxSlots = 253;

CF_CASE(VmmSubMaxSlots, "7.1/vmm-subscriber-takes-253-descriptors",
        "a CUDA_VMM_FD segment of 253 slots, the most one SCM_RIGHTS message can carry: the "
        "subscriber's recvmsg has room for all 253 descriptors (no MSG_CTRUNC), it imports and "
        "maps each and reports 4 frames with the contract payload",
        (std::vector<std::string>{"KIND-06", "KIND-04"}), kSub, kVmm) {
  VmmPubRun v;
  StartVmmPub(ctx, v, VmmSend::kGood, 4, kVmmMaxSlots);
  CudaAttachIut(ctx, v.run);
  PublishSlow(ctx, v.run, 4, false);
  WaitExitOrFail(ctx, *v.run.sub, "KIND-06", 10000);
  std::string what;
  const size_t bad = WrongFrames(*v.run.sub, &what);
  ctx.Expect(bad == 0, "KIND-06", "every frame of a 253-slot segment is the contract payload",
             Num(bad) + " wrong: " + what);
  v.run.pub->ExpectFrames(*v.run.sub, 1, 4, kBytes);
  ctx.Expect(v.run.sub->exit_code() == 0, "KIND-06",
             "exit 0 after 4 frames: 253 descriptors are within what a subscriber must take",
             v.run.sub->StatusText());
}

CF_CASE(VmmPubMaxSlots, "7.1/vmm-publisher-253-slots",
        "a CUDA_VMM_FD publisher of 253 slots sends all 253 descriptors with HELLO_RESP(OK) in one "
        "control message; each imports and maps, and 4 frames are byte-exact on the device",
        (std::vector<std::string>{"KIND-04"}), kPub, kVmm) {
  RequireVmm(ctx);
  std::vector<std::string> args = PubArgs(ctx, 4, kVmmMaxSlots, 1);
  args.insert(args.end(), {"--kind", "cuda_vmm_fd"});
  Process& pub = StartPub(ctx, args);
  CudaSub s(ctx);
  const uint64_t start = VmmHandshake(s);
  ctx.Expect(s.sub.slot_count() == kVmmMaxSlots, "KIND-04",
             "slot_count 253 for a publisher started with --slots 253", Num(s.sub.slot_count()));
  const auto r = ReadOnDevice(s, start, 4, 0, true);
  size_t bad = 0;
  const std::string what = Corrupt(r, start, &bad);
  ctx.Expect(bad == 0, "KIND-04", "every frame of a 253-slot segment is the contract payload",
             Num(bad) + " of 4 frames wrong: " + what);
  (void)pub;
}

CF_CASE(VmmPubTooManySlots, "7.1/vmm-publisher-254-slots-refused",
        "a publisher asked for 254 CUDA_VMM_FD slots, one more than an SCM_RIGHTS message "
        "carries, refuses: INVALID_ARGUMENT, exit 1, no segment and no socket created",
        (std::vector<std::string>{"KIND-04", "ADP-ARGS-01"}), kPub, kVmm) {
  RequireVmm(ctx);
  std::vector<std::string> args = PubArgs(ctx, 1, kVmmMaxSlots + 1, 1);
  args.insert(args.end(), {"--kind", "cuda_vmm_fd"});
  Process& pub = ctx.StartPublisher(args);
  WaitExitOrFail(ctx, pub, "KIND-04", 10000);
  ctx.Expect(pub.exit_code() == 1, "ADP-ARGS-01",
             "exit status 1: 254 is out of --slots' range for --kind cuda_vmm_fd",
             pub.StatusText());
  for (const auto& ev : pub.events()) {
    ctx.Expect(ev.value("event", "") != "ready", "KIND-04",
               "no ready event from a publisher with 254 CUDA_VMM_FD slots", ev.dump());
    if (ev.value("event", "") == "error") {
      ctx.Expect(ev.value("code", 0u) == ctx.spec().Err("INVALID_ARGUMENT"), "KIND-04",
                 "an error event, if any, with code INVALID_ARGUMENT", ev.dump());
    }
  }
  ctx.Expect(access(("/dev/shm/cuframes-" + ctx.key()).c_str(), F_OK) != 0, "KIND-04",
             "no segment created", "/dev/shm/cuframes-" + ctx.key() + " exists");
  ctx.Expect(access(ctx.SocketPath().c_str(), F_OK) != 0, "KIND-04", "no socket created",
             ctx.SocketPath() + " exists");
}

void VmmWrongCount(CaseContext& ctx, VmmSend how) {
  VmmPubRun v;
  StartVmmPub(ctx, v, how, 2);
  ExpectErrorClose(ctx, v.run.pub->conn(), "PROTOCOL", "KIND-07", 5000);
  ExpectAdapterError(ctx, *v.run.sub, "PROTOCOL", "KIND-07", 5000);
}

CF_CASE(VmmTooFewFds, "7.1/vmm-too-few-descriptors",
        "HELLO_RESP(OK) for 2 CUDA_VMM_FD slots with 1 descriptor: the subscriber imports none, "
        "sends ERROR(PROTOCOL), closes and reports PROTOCOL",
        (std::vector<std::string>{"KIND-07"}), kSub, kVmm) {
  VmmWrongCount(ctx, VmmSend::kTooFew);
}

CF_CASE(VmmNoFds, "7.1/vmm-no-descriptors",
        "HELLO_RESP(OK) for CUDA_VMM_FD sent without SCM_RIGHTS: ERROR(PROTOCOL), close, PROTOCOL",
        (std::vector<std::string>{"KIND-07"}), kSub, kVmm) {
  VmmWrongCount(ctx, VmmSend::kNone);
}

CF_CASE(VmmTooManyFds, "7.1/vmm-too-many-descriptors",
        "HELLO_RESP(OK) for 2 CUDA_VMM_FD slots with 3 descriptors: ERROR(PROTOCOL), close, "
        "PROTOCOL",
        (std::vector<std::string>{"KIND-07"}), kSub, kVmm) {
  VmmWrongCount(ctx, VmmSend::kTooMany);
}

void VmmBadFd(CaseContext& ctx, VmmSend how) {
  VmmPubRun v;
  StartVmmPub(ctx, v, how, 2);
  const Spec& sp = ctx.spec();
  TlvMsg m = RecvOrFail(ctx, v.run.pub->conn(), "KIND-07", "DETACH(CUDA)", 5000);
  ctx.Expect(
      sp.MsgName(m.type) == "DETACH" && PayloadField(sp, "Detach", m, "reason") == sp.Err("CUDA"),
      "KIND-07", "DETACH(reason CUDA), and no ATTACH_REQ", Describe(sp, m), m.raw);
  ExpectCloseOnly(ctx, v.run.pub->conn(), "MSG-DETACH-01", 3000);
  ExpectAdapterError(ctx, *v.run.sub, "CUDA", "KIND-07", 5000);
  // Our own device side is unharmed by the peer's failed import.
  ctx.Expect(v.run.exp->WriteFrame(0, 1, kBytes, 0, false).empty() && v.run.exp->Sync().empty(),
             "HARNESS", "the harness's device side unharmed", "a CUDA error");
}

CF_CASE(VmmTooSmall, "7.1/vmm-allocation-too-small",
        "slot 0's descriptor is an allocation of one granule while M is two: the mapping fails, "
        "the subscriber sends DETACH(CUDA), closes and reports CUDA",
        (std::vector<std::string>{"KIND-07"}), kSub, kVmm) {
  VmmBadFd(ctx, VmmSend::kTooSmall);
}

CF_CASE(VmmNotVmm, "7.1/vmm-descriptor-not-an-allocation",
        "slot 1's descriptor is /dev/null, no CUDA allocation: the import fails, the subscriber "
        "sends DETACH(CUDA), closes and reports CUDA",
        (std::vector<std::string>{"KIND-07"}), kSub, kVmm) {
  VmmBadFd(ctx, VmmSend::kNonVmm);
}

}  // namespace
}  // namespace cuframes::conform
