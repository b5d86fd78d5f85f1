// cuda_inject.cc: the CUDA rules that leave nothing at the wire, judged from inside the IUT's
// processes without its source (issue 12): the harness starts the IUT's adapters with its CUPTI
// injection library (conformance/inject/, CUDA_INJECTION64_PATH; LD_PRELOAD too where socket
// calls matter), which logs every CUDA IPC open/close, free, event creation, record, stream use
// and synchronisation, and every fork, one line per call; the cases read those logs
// (src/inject_log.h) and judge RES-CUDA-01..04, ACK-CUDA-01/02 and the ready events' flags.
//
// The library's path is compiled in when it was built (CUFRAMES_CONFORM_INJECT_LIB);
// $CUFRAMES_CONFORM_INJECT names another one, or "off" to leave the IUT alone. Every case is
// UNSUPPORTED, with the reason, when the manifest does not claim cuda_ipc, when the harness has no
// usable device, or when there is no library. A library that is there but never starts in the
// IUT's process (no log, CUPTI refused) is a harness failure, never a pass.
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>

#include "../src/cuda_peer.h"
#include "../src/inject_log.h"
#include "../src/shm_fence.h"
#include "common.h"

namespace cuframes::conform {
namespace {

constexpr Role kPub = Role::kPublisher;
constexpr Role kSub = Role::kSubscriber;
const Needs kCuda{1, "cuda_ipc", ""};
constexpr uint64_t kBytes = 8192;  // slot_bytes of every segment here; a mapping's span
using cudapeer::IpcHandle;
using inject::Finding;
using inject::ProcessLog;

std::string Num(uint64_t v) {
  return std::to_string(v);
}

// Returns the injection library's path, or "" with *why.
std::string InjectLibrary(std::string* why) {
  std::string path;
  const char* env = std::getenv("CUFRAMES_CONFORM_INJECT");
  if (env != nullptr && *env != '\0') {
    if (std::strcmp(env, "off") == 0 || std::strcmp(env, "0") == 0) {
      *why =
          "CUFRAMES_CONFORM_INJECT=" + std::string(env) + ": the CUPTI injection is switched off";
      return "";
    }
    path = env;
  } else {
#ifdef CUFRAMES_CONFORM_INJECT_LIB
    path = CUFRAMES_CONFORM_INJECT_LIB;
#else
    *why =
        "the harness was built without the CUPTI injection library (no CUDA toolkit or no "
        "CUPTI at configure time, see conformance/inject/CMakeLists.txt); set "
        "CUFRAMES_CONFORM_INJECT to a built libcuframes_inject.so";
    return "";
#endif
  }
  // A build directory carried to another machine: the library beside the harness binary.
  std::error_code ec;
  const auto beside = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "inject" /
                      "libcuframes_inject.so";
  if (!std::filesystem::exists(path) && (env == nullptr || *env == '\0') && !ec &&
      std::filesystem::exists(beside)) {
    path = beside.string();
  }
  if (!std::filesystem::exists(path)) {
    *why = "the CUPTI injection library " + path + " does not exist (build target cuframes_inject)";
    return "";
  }
  return path;
}

// Makes the adapters this case starts from now on run with the injection library, logging into
// a fresh <case dir>/inject-<role>/; with `preload`, LD_PRELOADed as well (accept/close seen).
// Returns the log directory. Ends the case as UNSUPPORTED when the harness has no device or
// library.
std::string Inject(CaseContext& ctx, const std::string& role, bool preload) {
  const std::string no_device = cudapeer::Unavailable();
  if (!no_device.empty()) ctx.Unsupported(no_device);
  std::string why;
  const std::string lib = InjectLibrary(&why);
  if (lib.empty()) ctx.Unsupported(why);
  const std::string dir = std::filesystem::absolute(ctx.CaseDir() + "/inject-" + role).string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ctx.SetAdapterEnv("CUDA_INJECTION64_PATH", lib);
  ctx.SetAdapterEnv("CUFRAMES_INJECT_LOG_DIR", dir);
  std::string pre;
  if (preload) {
    const char* old = std::getenv("LD_PRELOAD");
    pre = (old != nullptr && *old != '\0' ? std::string(old) + ":" : "") + lib;
  }
  ctx.SetAdapterEnv("LD_PRELOAD", pre);
  ctx.Note("injecting " + lib + (preload ? " (also preloaded)" : "") + " into the IUT's " + role +
           "; logs in " + dir);
  return dir;
}

// Reads the logs of `dir` and returns them with the one of `p` first. Fails (HARNESS) when `p`
// left no log or CUPTI refused the subscription in it: then nothing inside it was seen.
std::vector<ProcessLog> Logs(CaseContext& ctx, const std::string& dir, Process& p) {
  std::vector<ProcessLog> logs = inject::ReadLogs(dir);
  const auto pid = static_cast<uint64_t>(p.pid());
  auto it =
      std::find_if(logs.begin(), logs.end(), [&](const ProcessLog& l) { return l.pid == pid; });
  // An adapter that is a wrapper (a script starting the implementation as its child): the
  // child's log, by the parent pid its init line records.
  if (it == logs.end()) {
    it = std::find_if(logs.begin(), logs.end(), [&](const ProcessLog& l) {
      return std::any_of(l.records.begin(), l.records.end(), [&](const inject::Record& r) {
        return r.ev == "init" && r.pid == l.pid && r.U("ppid") == pid;
      });
    });
  }
  if (it == logs.end()) {
    std::string files;
    for (const auto& l : logs)
      files += " " + l.path;
    ctx.Fail("HARNESS",
             "the CUPTI injection library starts in the IUT's process " + Num(p.pid()) +
                 " (CUDA_INJECTION64_PATH) and writes " + dir + "/cuda-" + Num(p.pid()) + ".jsonl",
             "no such log (files:" + (files.empty() ? std::string(" none") : files) +
                 "); adapter " + p.StatusText() + "; stderr: " + p.StderrTail(600));
  }
  std::rotate(logs.begin(), it, it + 1);
  const ProcessLog& l = logs.front();
  if (l.Cupti() != 0) {
    ctx.Fail("HARNESS", "CUPTI accepts the injection library's subscription in the IUT's process",
             l.Cupti() < 0 ? "the log has no init line: " + l.path
                           : "CUptiResult " + std::to_string(l.Cupti()) +
                                 " (another CUPTI client, such as a profiler, in the process?)");
  }
  for (const auto& r : l.records) {
    if (r.ev != "init") continue;
    ctx.Note("injection in pid " + Num(l.pid) + ": CUPTI subscribe " + Num(r.U("cupti")) +
             ", runtime domain " + Num(r.U("runtime")) + ", driver callbacks " +
             Num(r.U("driver")) + " (" + Num(r.U("driver_ids_refused")) +
             " ids refused), kernel parameter scan " + Num(r.U("param_info")));
    ctx.Expect(r.U("runtime") == 0 || r.U("driver") == 0, "HARNESS",
               "CUPTI enables the runtime or the driver API callbacks in the IUT's process",
               "both refused: " + r.j.dump());
    break;
  }
  for (const auto& x : logs) {
    ctx.Note(x.path + ": " + Num(x.records.size()) + " calls logged" +
             (x.cut_tail ? ", last line cut" : "") +
             (x.bad_lines ? ", " + Num(x.bad_lines) + " bad lines" : ""));
  }
  return logs;
}

// Fails the case with the first finding's requirement and all findings as evidence.
void Judge(CaseContext& ctx, const std::vector<Finding>& f, const std::string& expected) {
  if (f.empty()) return;
  std::string all;
  for (size_t i = 0; i < f.size() && i < 6; ++i)
    all += (i ? "\n" : "") + f[i].req + ": " + f[i].what;
  if (f.size() > 6) all += "\n(" + Num(f.size() - 6) + " more)";
  ctx.Fail(f[0].req, expected, all);
}

// RES-CUDA-04 over every process of the role (the adapter and whatever it started).
void JudgeNoFork(CaseContext& ctx, const std::vector<ProcessLog>& logs) {
  std::vector<Finding> f;
  for (const auto& l : logs) {
    auto g = inject::JudgeForks(l);
    f.insert(f.end(), g.begin(), g.end());
  }
  Judge(ctx, f,
        "no fork() after CUDA initialisation in any of the IUT's processes (peers are "
        "started as fresh processes)");
}

// Waits until `pred` holds for the logs of `dir`, woken by every write into the directory
// (inotify) instead of sleeping; returns false at `deadline`.
bool WaitLogs(const std::string& dir,
              const std::function<bool(const std::vector<ProcessLog>&)>& pred, Deadline deadline) {
  const int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd >= 0) inotify_add_watch(fd, dir.c_str(), IN_MODIFY | IN_CREATE);
  bool held = false;
  for (;;) {
    if (pred(inject::ReadLogs(dir))) {
      held = true;
      break;
    }
    if (Clock::now() >= deadline) break;
    // Without inotify the wait is capped, and the loop polls.
    pollfd p{fd, POLLIN, 0};
    poll(&p, fd >= 0 ? 1 : 0, MsLeft(deadline, fd >= 0 ? 200 : 10));
    char buf[4096];
    while (fd >= 0 && read(fd, buf, sizeof buf) > 0) {}
  }
  if (fd >= 0) close(fd);
  return held;
}

uint32_t CudaBit(CaseContext& ctx) {
  return 1u << (ctx.spec().Enum("memory_kind", "CUDA_IPC") - 1);
}

IpcHandle ToHandle(std::span<const uint8_t> b) {
  IpcHandle h{};
  std::memcpy(h.data(), b.data(), std::min(b.size(), h.size()));
  return h;
}

std::vector<std::string> CudaPubArgs(CaseContext& ctx, uint64_t frames, uint64_t linger_ms) {
  return {"--key",   ctx.key(),   "--frames",           Num(frames),
          "--slots", "2",         "--wait-subscribers", "1",
          "--bytes", Num(kBytes), "--linger-ms",        Num(linger_ms),
          "--kind",  "cuda"};
}

// ---- the harness as a CUDA subscriber of an IUT publisher ----

struct HarnessSub {
  explicit HarnessSub(CaseContext& c) : ctx(c), sub(c) {}
  CaseContext& ctx;
  ScriptedSub sub;
  std::unique_ptr<cudapeer::Importer> imp;
  IpcHandle ack{};
};

// HELLO offering CUDA_IPC, the segment checks, every slot opened, our ack event written, then
// ATTACH_REQ(ACK_EVENT_WRITTEN) answered OK. Returns start_seq.
uint64_t AttachCuda(HarnessSub& s) {
  CaseContext& ctx = s.ctx;
  const Spec& sp = ctx.spec();
  HelloParams hp;
  hp.kinds_mask = CudaBit(ctx);
  s.sub.Hello(hp);
  s.sub.MapAndValidate();
  std::string err;
  s.imp = cudapeer::MakeImporter(&err);
  if (!s.imp) ctx.Fail("HARNESS", "the harness's CUDA subscriber side starts", err);
  for (uint32_t i = 0; i < s.sub.slot_count(); ++i) {
    StructView d = s.sub.SlotDesc(i);
    err = s.imp->OpenSlot(ToHandle(d.Bytes("mem_handle")), ToHandle(d.Bytes("ready_event")));
    if (!err.empty()) {
      ctx.Fail("SHM-SLOT-01", "slot " + Num(i) + "'s handles open in another process", err, d.All(),
               d.base());
    }
  }
  err = s.imp->CreateAckEvent(&s.ack);
  if (!err.empty()) ctx.Fail("HARNESS", "the harness creates its interprocess ack event", err);
  StructView me = s.sub.SubSlot(static_cast<uint32_t>(s.sub.hello().index));
  std::memcpy(me.Bytes("ack_event").data(), s.ack.data(), s.ack.size());
  ShmReleaseFence();  // the handle bytes before the flag (no instrumented fence: shm_fence.h)
  me.Set("flags", sp.Enum("subscriber_flags", "ACK_EVENT_PRESENT"));
  MessageBuilder b(sp, "ATTACH_REQ");
  b.Set("subscriber_index", s.sub.hello().index)
      .Set("generation", s.sub.hello().generation)
      .Set("flags", sp.Enum("attach_req_flags", "ACK_EVENT_WRITTEN"));
  s.sub.Send(b.Encode());
  const TlvMsg m = RecvOrFail(ctx, s.sub.conn(), "SM-PUB-01", "ATTACH_RESP", 3000);
  ctx.Expect(
      sp.MsgName(m.type) == "ATTACH_RESP" && PayloadField(sp, "AttachResp", m, "status") == 0,
      "MSG-ATTACH-03", "ATTACH_RESP(OK) for a CUDA subscriber with its ack event written",
      Describe(sp, m), m.raw);
  return PayloadField(sp, "AttachResp", m, "start_seq");
}

// Reads frames start..start+count-1 as a CUDA subscriber does (wait on the ready event, read on
// the device, record the ack event, release). The bytes are suites/cuda.cc's business: a wrong
// frame is noted here.
void ReadFrames(HarnessSub& s, uint64_t start, uint64_t count) {
  CaseContext& ctx = s.ctx;
  StructView h = s.sub.Header();
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t n = start + i;
    const Deadline d = In(5000);
    for (;;) {
      const auto f = static_cast<uint32_t>(h.Get("frame_futex"));
      if (h.Get("write_seq") >= n) break;
      if (Clock::now() >= d) {
        ctx.Fail("ACK-COMMIT-01", "write_seq reaches " + Num(n) + " within 5000 ms",
                 "write_seq " + Num(h.Get("write_seq")), h.All());
      }
      FutexWait(h.Bytes("frame_futex").data(), f, MsLeft(d, 5));
    }
    const auto slot = static_cast<uint32_t>((n - 1) % s.sub.slot_count());
    StructView meta(ctx.spec(), "FrameMeta", s.sub.segment()->span(), s.sub.SlotDesc(slot).base());
    const std::string err = s.imp->EnqueueVerify(
        slot, n, std::min(meta.Get("payload_bytes"), kBytes), 0, true, true, i);
    if (!err.empty()) ctx.Fail("HARNESS", "the harness enqueues its device-side read", err);
    s.sub.Ack(n);
  }
  std::vector<cudapeer::FrameCheck> out;
  const std::string err = s.imp->Collect(count, &out);
  if (!err.empty()) ctx.Fail("HARNESS", "the harness's device-side reads complete", err);
  size_t bad = 0;
  for (const auto& c : out)
    bad += c.mismatches != 0;
  ctx.Note("read " + Num(count) + " frames on the device, " + Num(bad) + " with unexpected bytes");
}

// ---- the harness as a CUDA publisher of an IUT subscriber ----

struct HarnessPub {
  std::unique_ptr<cudapeer::Exporter> exp;
  std::unique_ptr<ScriptedPub> pub;
  Process* sub = nullptr;
};

// Creates a CUDA_IPC segment with our handles, starts the IUT subscriber (--kind cuda, `frames`),
// answers HELLO and ATTACH (opening its ack event, ACK-CUDA-01's interprocess flag).
void StartCudaSub(CaseContext& ctx, HarnessPub& run, uint64_t frames) {
  PubParams p;
  p.kind = "CUDA_IPC";
  p.slot_count = 2;
  p.max_subscribers = 2;
  p.slot_bytes = kBytes;
  std::string err;
  run.exp = cudapeer::MakeExporter(p.slot_count, p.slot_bytes, &err);
  if (!run.exp) ctx.Fail("HARNESS", "the harness's CUDA publisher side starts", err);
  cudapeer::Exporter* exp = run.exp.get();
  p.before_ready = [exp](ScriptedPub& sp) {
    for (uint32_t i = 0; i < sp.params().slot_count; ++i) {
      StructView d = sp.SlotDesc(i);
      const IpcHandle m = exp->MemHandle(i), r = exp->ReadyHandle(i);
      std::memcpy(d.Bytes("mem_handle").data(), m.data(), m.size());
      std::memcpy(d.Bytes("ready_event").data(), r.data(), r.size());
    }
  };
  run.pub = std::make_unique<ScriptedPub>(ctx, p);
  run.pub->Create();
  run.sub = &run.pub->StartSub({"--kind", "cuda", "--frames", Num(frames), "--timeout-ms", "5000"});
  run.pub->ReadHello();
  run.pub->conn().Send(run.pub->HelloResp().Encode());
  run.pub->ReadAttach();
  StructView slot = run.pub->SubSlot(0);
  err = run.exp->OpenAckEvent(ToHandle(slot.Bytes("ack_event")));
  if (!err.empty()) {
    ctx.Fail("ACK-CUDA-01", "the subscriber's ack_event opens in another process", err, slot.All(),
             slot.base());
  }
  run.pub->SendAttachOk();
}

// Publishes frames first..last, waiting for the subscriber's release (host) and its ack event
// (device) before reusing a slot.
void Publish(CaseContext& ctx, HarnessPub& run, uint64_t first, uint64_t last) {
  const Spec& sp = ctx.spec();
  ScriptedPub& pub = *run.pub;
  const uint32_t slots = pub.params().slot_count;
  for (uint64_t n = first; n <= last; ++n) {
    if (n > slots) {
      StructView me = pub.SubSlot(0);
      StructView h = pub.Header();
      const Deadline d = In(5000);
      while (me.Get("state") == sp.Enum("subscriber_slot_state", "ACTIVE") &&
             me.Get("ack_seq") < n - slots) {
        const auto f = static_cast<uint32_t>(h.Get("ack_futex"));
        if (Clock::now() >= d) {
          ctx.Fail("ACK-REL-01", "the subscriber releases frame " + Num(n - slots),
                   "ack_seq " + Num(me.Get("ack_seq")) + " after 5000 ms", me.All(), me.base());
        }
        FutexWait(h.Bytes("ack_futex").data(), f, MsLeft(d, 5));
      }
      const std::string err = run.exp->WaitAck();
      if (!err.empty()) ctx.Fail("HARNESS", "the subscriber's ack event completes", err);
    }
    const auto slot = static_cast<uint32_t>((n - 1) % slots);
    StructView meta(sp, "FrameMeta", pub.segment()->span(), pub.SlotDesc(slot).base());
    meta.Set("timestamp_ns", n * 1000);
    meta.Set("payload_bytes", kBytes);
    meta.Set("flags", 0);
    meta.Set("user_data", n);
    const std::string err = run.exp->WriteFrame(slot, n, kBytes, 0, false);
    if (!err.empty()) ctx.Fail("HARNESS", "the harness writes frame " + Num(n), err);
    pub.Commit(n, n);
  }
}

// The subscriber-side judges: its imports (RES-CUDA-01/02), its ack event (ACK-CUDA-01), no fork.
void JudgeSubscriber(CaseContext& ctx, const std::vector<ProcessLog>& logs, Process& sub,
                     const std::string& when) {
  const ProcessLog& l = logs.front();
  const bool complete = !sub.running() && sub.term_signal() == 0;
  size_t opens = 0, closes = 0;
  for (const auto& r : l.records) {
    if (r.pid != l.pid) continue;
    opens += r.ev == "ipc_open" && r.ok();
    closes += r.ev == "ipc_close";
  }
  ctx.Note("subscriber " + Num(sub.pid()) + ": " + Num(opens) + " IPC opens, " + Num(closes) +
           " closes");
  ctx.Expect(opens > 0, "HARNESS",
             "the injection log shows the CUDA subscriber's cudaIpcOpenMemHandle calls",
             "no successful open in " + l.path + " (the library sees none of its CUDA calls?)");
  JudgeNoFork(ctx, logs);
  Judge(ctx, inject::JudgeImports(l, kBytes, complete),
        "each allocation opened once (RES-CUDA-01) and closed exactly once, after its last stream "
        "use completed, " +
            when + " (RES-CUDA-02)");
  size_t exported = 0;
  Judge(ctx, inject::JudgeExportedEvents(l, "ACK-CUDA-01", true, &exported),
        "the ack event created with cudaEventInterprocess | cudaEventDisableTiming and recorded "
        "on one stream only");
  ctx.Expect(exported == 1, "ACK-CUDA-01",
             "one ack event exported (cudaIpcGetEventHandle) by the CUDA subscriber",
             Num(exported) + " exported events in " + l.path);
}

CF_CASE(InjectSubImports, "1.6/cuda-inject-subscriber-open-close-once",
        "inside the IUT subscriber (CUPTI injection): each of the 2 slot allocations opened once, "
        "closed exactly once after its last stream use completed when it detaches after 4 frames; "
        "its ack event interprocess, timing disabled, recorded on one stream; no fork",
        (std::vector<std::string>{"RES-CUDA-01", "RES-CUDA-02", "ACK-CUDA-01", "RES-CUDA-04"}),
        kSub, kCuda) {
  const std::string dir = Inject(ctx, "sub", false);
  HarnessPub run;
  StartCudaSub(ctx, run, 4);
  Publish(ctx, run, 1, 4);
  WaitExitOrFail(ctx, *run.sub, "ADP-EXIT-01", 10000);
  ctx.Expect(run.sub->exit_code() == 0, "ADP-EXIT-01", "exit 0 after 4 good frames",
             run.sub->StatusText());
  JudgeSubscriber(ctx, Logs(ctx, dir, *run.sub), *run.sub, "at detach");
  ctx.Expect(run.exp->Sync().empty(), "HARNESS", "the harness's writing stream completes", "error");
}

CF_CASE(InjectSubPublisherDeath, "1.6/cuda-inject-subscriber-closes-at-publisher-death",
        "the harness's CUDA publisher dies (socket closed) after 2 of 4 frames: inside the IUT "
        "subscriber every mapping is closed exactly once, after its last stream use, before it "
        "exits with PEER_CLOSED",
        (std::vector<std::string>{"RES-CUDA-02", "RES-CRASH-03", "RES-CUDA-04"}), kSub, kCuda) {
  const std::string dir = Inject(ctx, "sub", false);
  HarnessPub run;
  StartCudaSub(ctx, run, 4);
  Publish(ctx, run, 1, 2);
  // Both slots read and released: the mappings have been used.
  StructView me = run.pub->SubSlot(0);
  StructView h = run.pub->Header();
  const Deadline d = In(5000);
  while (me.Get("ack_seq") < 2 && Clock::now() < d) {
    const auto f = static_cast<uint32_t>(h.Get("ack_futex"));
    FutexWait(h.Bytes("ack_futex").data(), f, MsLeft(d, 5));
  }
  ctx.Expect(me.Get("ack_seq") >= 2, "ACK-REL-01", "the subscriber releases frames 1 and 2",
             "ack_seq " + Num(me.Get("ack_seq")), me.All(), me.base());
  run.pub->Crash();
  ExpectAdapterError(ctx, *run.sub, "PEER_CLOSED", "RES-CRASH-01", 5000, true);
  JudgeSubscriber(ctx, Logs(ctx, dir, *run.sub), *run.sub, "when it sees the publisher's death");
}

CF_CASE(InjectPubFreesAfterClose, "1.6/cuda-inject-publisher-frees-after-closing",
        "inside the IUT publisher (CUPTI injection, preloaded for its socket calls): no slot "
        "allocation freed and no ready event destroyed while the harness's CUDA subscriber is "
        "still connected; ready events interprocess with timing disabled; no fork",
        (std::vector<std::string>{"RES-CUDA-03", "SHM-SLOT-01", "RES-CUDA-04"}), kPub, kCuda) {
  const std::string dir = Inject(ctx, "pub", true);
  Process& pub = StartPub(ctx, CudaPubArgs(ctx, 3, 300));
  HarnessSub s(ctx);
  const uint64_t start = AttachCuda(s);
  ReadFrames(s, start, 3 - start + 1);
  // We stay attached: the publisher, done, lingers 300 ms for us, then shuts down, closing our
  // connection first and freeing its buffers after (RES-CUDA-03).
  ctx.Expect(s.sub.conn().WaitClosed(In(5000), nullptr), "ADP-PUB-02",
             "the publisher closes our connection after its 300 ms linger", "still open");
  WaitExitOrFail(ctx, pub, "ADP-PUB-02", 5000);
  std::vector<ProcessLog> logs = Logs(ctx, dir, pub);
  JudgeNoFork(ctx, logs);
  size_t exported = 0;
  Judge(ctx, inject::JudgeExportedEvents(logs.front(), "SHM-SLOT-01", false, &exported),
        "every ready event created with cudaEventInterprocess | cudaEventDisableTiming");
  ctx.Expect(exported >= 2, "SHM-SLOT-01", "a ready event exported per slot (2 slots)",
             Num(exported) + " exported events in " + logs.front().path);
  size_t accepts = 0;
  const auto f = inject::JudgeFreesAfterCloses(logs.front(), &accepts);
  if (accepts == 0) {
    ctx.Unsupported(
        "the IUT publisher's accept() calls are not visible to the preloaded library "
        "(a static binary, or sockets without libc), so the order of its frees "
        "against its connection closes cannot be judged");
  }
  Judge(ctx, f,
        "slot allocations freed and ready events destroyed only after every subscriber "
        "connection is closed");
}

CF_CASE(InjectPubAckEvent, "5.5/cuda-inject-publisher-ack-event-lifetime",
        "inside the IUT publisher (CUPTI injection): a harness subscriber's ack event is opened "
        "once, before ATTACH_RESP, kept while it is attached, and destroyed once its DETACH frees "
        "the slot, while the publisher still serves a second subscriber (not at shut-down)",
        (std::vector<std::string>{"ACK-CUDA-02", "RES-CUDA-04"}), kPub,
        (Needs{1, "cuda_ipc", "ack-timeout"})) {
  const std::string dir = Inject(ctx, "pub", false);
  // Two subscribers; `staying` never releases frame 1, so from frame 3 on the publisher waits
  // for it (10 s ACK timeout) and is still running when `leaving` detaches.
  std::vector<std::string> args = CudaPubArgs(ctx, 6, 300);
  args[std::find(args.begin(), args.end(), "--wait-subscribers") - args.begin() + 1] = "2";
  args.insert(args.end(), {"--ack-timeout-ms", "10000"});
  Process& pub = StartPub(ctx, args);
  HarnessSub leaving(ctx), staying(ctx);
  const uint64_t start = AttachCuda(leaving);
  const std::string ack = inject::HexOf(leaving.ack.data(), leaving.ack.size());
  auto trace = [&] {
    return inject::TraceAckEvent(Logs(ctx, dir, pub).front(), ack);
  };
  inject::AckEventUse u = trace();
  ctx.Expect(u.opens == 1, "ACK-CUDA-02",
             "our ack event opened once (cudaIpcOpenEventHandle) before ATTACH_RESP(OK)",
             Num(u.opens) + " opens: " + u.evidence);
  AttachCuda(staying);
  ReadFrames(leaving, start, 2);
  u = trace();
  ctx.Expect(u.opens == 1 && u.destroys == 0, "ACK-CUDA-02",
             "our ack event opened once and not destroyed while we are attached",
             Num(u.opens) + " opens, " + Num(u.destroys) + " destroys: " + u.evidence);
  MessageBuilder det(ctx.spec(), "DETACH");
  leaving.sub.Send(det.Encode());
  leaving.sub.conn().Close();
  const bool destroyed = WaitLogs(
      dir,
      [&](const std::vector<ProcessLog>& logs) {
        for (const auto& l : logs) {
          if (l.pid == static_cast<uint64_t>(pub.pid()) &&
              inject::TraceAckEvent(l, ack).destroys > 0) {
            return true;
          }
        }
        return false;
      },
      In(3000));
  pub.Pump(0);
  const bool serving = pub.running();
  u = trace();
  ctx.Expect(
      destroyed && serving && u.opens == 1 && u.destroys == 1, "ACK-CUDA-02",
      "our ack event destroyed once within 3000 ms of our DETACH (the slot freed), while the "
      "publisher still runs for the other subscriber; never reopened",
      Num(u.opens) + " opens, " + Num(u.destroys) + " destroys" +
          (serving ? "" : ", publisher " + pub.StatusText()) + ": " + u.evidence);
  JudgeNoFork(ctx, Logs(ctx, dir, pub));
}

CF_CASE(InjectIutPair, "1.6/cuda-inject-iut-pair",
        "the IUT's CUDA publisher and subscriber together, both under CUPTI injection, 4 frames: "
        "no fork in either; the subscriber opens and closes each allocation once; each side's "
        "exported events have the interprocess flags; the publisher opens the subscriber's ack "
        "event once",
        (std::vector<std::string>{"RES-CUDA-04", "RES-CUDA-01", "RES-CUDA-02", "ACK-CUDA-01",
                                  "ACK-CUDA-02", "SHM-SLOT-01"}),
        kPub, kCuda) {
  const std::string pub_dir = Inject(ctx, "pub", false);
  Process& pub = StartPub(ctx, CudaPubArgs(ctx, 4, 3000));
  const std::string sub_dir = Inject(ctx, "sub", false);
  Process& sub = ctx.StartSubscriber(
      {"--key", ctx.key(), "--kind", "cuda", "--frames", "4", "--timeout-ms", "5000"});
  WaitExitOrFail(ctx, sub, "ADP-EXIT-01", 10000);
  ctx.Expect(sub.exit_code() == 0, "ADP-EXIT-01", "the IUT subscriber exits 0 after 4 frames",
             sub.StatusText());
  WaitExitOrFail(ctx, pub, "ADP-PUB-02", 5000);
  const std::vector<ProcessLog> sub_logs = Logs(ctx, sub_dir, sub);
  const std::vector<ProcessLog> pub_logs = Logs(ctx, pub_dir, pub);
  JudgeNoFork(ctx, pub_logs);
  JudgeSubscriber(ctx, sub_logs, sub, "at detach");
  Judge(ctx, inject::JudgeExportedEvents(pub_logs.front(), "SHM-SLOT-01", false, nullptr),
        "every ready event created with cudaEventInterprocess | cudaEventDisableTiming");
  // The subscriber's exported ack event, as the publisher saw it.
  std::string ack;
  for (const auto& r : sub_logs.front().records) {
    if (r.ev == "ipc_get_event" && r.ok()) ack = r.S("handle");
  }
  const inject::AckEventUse u = inject::TraceAckEvent(pub_logs.front(), ack);
  ctx.Expect(u.opens == 1, "ACK-CUDA-02",
             "the publisher opens the subscriber's ack event once (cudaIpcOpenEventHandle)",
             Num(u.opens) + " opens: " + u.evidence);
}

}  // namespace
}  // namespace cuframes::conform
