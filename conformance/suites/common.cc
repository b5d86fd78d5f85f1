#include "common.h"

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

namespace cuframes::conform {

Process& StartPub(CaseContext& ctx, const std::vector<std::string>& args) {
  Process& p = ctx.StartPublisher(args);
  ctx.WaitReady(p, "RES-CREATE-05");
  return p;
}

std::vector<std::string> PubArgs(CaseContext& ctx, uint64_t frames, uint64_t slots, uint64_t wait) {
  return {"--key",
          ctx.key(),
          "--frames",
          std::to_string(frames),
          "--slots",
          std::to_string(slots),
          "--wait-subscribers",
          std::to_string(wait),
          "--bytes",
          "8192",
          "--linger-ms",
          "3000"};
}

std::unique_ptr<ScriptedSub> GoodSubscriber(CaseContext& ctx, Process& pub, uint64_t frames,
                                            uint64_t max_proto) {
  auto sub = std::make_unique<ScriptedSub>(ctx);
  HelloParams hp;
  hp.max_proto = static_cast<uint16_t>(max_proto);
  const uint64_t start = sub->Handshake(hp);
  size_t from = 0;
  // ADP-EVENT-03: the publisher reports this subscriber as the handshake made it: our slot index,
  // our pid (SO_PEERCRED) and the start_seq of our ATTACH_RESP. An earlier subscriber of the
  // case may have had the same index, so the event sought is the one with our start_seq too.
  const uint64_t index = sub->hello().index;
  const nlohmann::json* att = pub.WaitFor(
      [index, start](const nlohmann::json& j) {
        return j.value("event", "") == "subscriber" && j.value("index", ~uint64_t{0}) == index &&
               j.value("start_seq", uint64_t{0}) == start;
      },
      In(3000), &from);
  std::string seen;
  for (const auto& j : pub.events()) {
    if (j.value("event", "") == "subscriber") seen += (seen.empty() ? "" : ", ") + j.dump();
  }
  ctx.Expect(att != nullptr && att->value("pid", int64_t{0}) == getpid(), "ADP-EVENT-03",
             "a subscriber event with index " + std::to_string(index) + ", pid " +
                 std::to_string(getpid()) + " and start_seq " + std::to_string(start),
             seen.empty() ? "no subscriber event; " + pub.StdoutTail() : seen);
  from = 0;
  for (uint64_t n = start; n < start + frames; ++n) {
    const uint64_t sum = sub->ReadFrame(n);
    const nlohmann::json* e = pub.WaitFor(
        [n](const nlohmann::json& j) {
          return j.value("event", "") == "frame" && j.value("seq", uint64_t{0}) == n;
        },
        In(3000), &from);
    // The bytes were read from shared memory above; a missing or late event breaks only the
    // adapter contract's timeline, never a protocol rule.
    ctx.Expect(e != nullptr, "ADP-EVENT-02",
               "the publisher adapter prints frame " + std::to_string(n) +
                   " after committing it (ADAPTER.md section 3)",
               "no frame event; adapter stdout: " + pub.StdoutTail());
    ctx.Expect(e->value("checksum", std::string()) == Hex64(sum), "SHM-FMETA-01",
               "the bytes in the slot are the bytes the publisher committed (" +
                   e->value("checksum", std::string()) + ")",
               Hex64(sum));
    sub->Ack(n);
  }
  return sub;
}

void ExpectNoLeftovers(CaseContext& ctx, const std::string& key) {
  const std::string dir = ctx.SocketPath().substr(0, ctx.SocketPath().rfind('/'));
  for (const std::string& f : {dir + "/cuframes-" + key + ".sock", "/dev/shm/cuframes-" + key,
                               "/dev/shm/cuframes-" + key + "-packets"}) {
    ctx.Expect(access(f.c_str(), F_OK) != 0, "RES-CLOSE-03",
               f + " removed once the publisher has exited", "still exists");
  }
}

void ExpectPublisherTimeline(CaseContext& ctx, Process& pub, uint64_t frames) {
  ctx.Expect(pub.bad_lines().empty(), "ADP-EVENT-01", "every stdout line a JSON object",
             pub.bad_lines().empty() ? std::string() : pub.bad_lines().front());
  const auto& ev = pub.events();
  auto line = [&](size_t i) {
    return i < ev.size() ? ev[i].dump() : std::string("(none)");
  };
  ctx.Expect(!ev.empty() && ev[0].value("event", "") == "ready", "ADP-EVENT-02",
             "ready as the first event", line(0));
  uint64_t next = 1;
  bool done = false;
  for (size_t i = 0; i < ev.size(); ++i) {
    const std::string name = ev[i].value("event", "");
    if (name == "frame") {
      ctx.Expect(!done && ev[i].value("seq", uint64_t{0}) == next, "ADP-EVENT-02",
                 "frame " + std::to_string(next) + " in order, before done", line(i));
      ++next;
    }
    if (name == "done") done = true;
  }
  ctx.Expect(done && next == frames + 1, "ADP-EVENT-02",
             "frames 1.." + std::to_string(frames) + " then done", pub.StdoutTail());
}

void ExpectCleanExit(CaseContext& ctx, Process& pub, int timeout_ms) {
  WaitExitOrFail(ctx, pub, "RES-CLOSE-01", timeout_ms);
  ctx.Expect(pub.exit_code() == 0, "ADP-EXIT-01", "the publisher adapter exits 0",
             pub.StatusText());
}

PubParams RingPubParams() {
  PubParams p;
  p.proto = 2;
  p.ring = true;
  p.ring_capacity = 8192;
  p.max_packet_bytes = 1000;
  return p;
}

std::vector<std::string> SubPacketArgs(uint64_t packets) {
  return {"--packets", std::to_string(packets), "--timeout-ms", "3000", "--kind", "host"};
}

int FdsLinkedTo(pid_t pid, std::string_view prefix) {
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (const dirent* e = readdir(d)) {
    char target[256] = {};
    const std::string link = dir + "/" + e->d_name;
    const ssize_t len = readlink(link.c_str(), target, sizeof(target) - 1);
    if (len > 0 && std::string_view(target, static_cast<size_t>(len)).starts_with(prefix)) ++n;
  }
  closedir(d);
  return n;
}

StrayFds::StrayFds(CaseContext& ctx, int n) {
  const std::string name(kLink.substr(std::string_view("/memfd:").size()));
  for (int i = 0; i < n; ++i) {
    const int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
    if (fd < 0) {
      const std::string why = std::strerror(errno);
      for (const int made : fds)  // Fail throws out of the constructor: no destructor runs
        close(made);
      ctx.Fail("HARNESS", "memfd_create for a stray descriptor", why);
    }
    fds.push_back(fd);
  }
}

StrayFds::~StrayFds() {
  for (const int fd : fds)
    close(fd);
}

void ExpectNoStrayFds(CaseContext& ctx, pid_t pid, const std::string& req,
                      const std::string& what) {
  const int kept = FdsLinkedTo(pid, StrayFds::kLink);
  if (kept < 0) {
    ctx.Unsupported("/proc/" + std::to_string(pid) + "/fd is not readable here: the descriptors " +
                    "the IUT holds cannot be seen");
  }
  ctx.Expect(kept == 0, req, "every descriptor passed with " + what + " closed unused",
             std::to_string(kept) + " of them still open in /proc/" + std::to_string(pid) + "/fd");
}

bool WaitParked(ScriptedPub& pub, const char* field, Process& sub, int ms) {
  StructView h = pub.Header();
  const Deadline until = In(ms);
  while (h.Get(field) == 0) {
    if (!sub.running() || Clock::now() >= until) return false;
    FutexWait(h.Bytes(field).data(), 0, 5);  // the count is no futex: a 5 ms poll
    sub.Pump(0);
  }
  return true;
}

// Waits (bounded) until the publisher blocks for ACKs (ack_waiting = 1) or write_seq passes
// `seq`; returns write_seq.
uint64_t WaitBlockedOrPast(ScriptedSub& s, uint64_t seq, int timeout_ms) {
  StructView h = s.Header();
  const Deadline d = In(timeout_ms);
  while (h.Get("ack_waiting") != 1 && h.Get("write_seq") <= seq && Clock::now() < d) {
    FutexWait(h.Bytes("ack_futex").data(), static_cast<uint32_t>(h.Get("ack_futex")), 5);
  }
  return h.Get("write_seq");
}

namespace {
// The state letter of /proc/<pid or self>/task/<tid>/stat (R running, S asleep, ...).
char TaskState(const std::string& task) {
  std::ifstream stat(task + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : '?';
}

// One look at a task: asleep in a futex wait (see ThreadParkedOnFutex).
bool TaskAsleepOnFutex(const std::string& task) {
  std::ifstream wchan(task + "/wchan");
  std::string w;
  wchan >> w;
  if (w.rfind("futex", 0) == 0) return true;
  if (!w.empty() && w != "0") return false;  // asleep somewhere else, or running
  return TaskState(task) == 'S';
}

std::string ProcDir(pid_t pid) {
  return pid == 0 ? std::string("/proc/self") : "/proc/" + std::to_string(pid);
}
}  // namespace

bool ThreadParkedOnFutex(pid_t tid, int ms, pid_t pid) {
  const std::string task = ProcDir(pid) + "/task/" + std::to_string(tid);
  const Deadline until = In(ms);
  while (Clock::now() < until) {
    if (TaskAsleepOnFutex(task)) return true;
    std::this_thread::yield();
  }
  return false;
}

bool ProcessParkedOnFutex(pid_t pid, int ms) {
  const std::string dir = ProcDir(pid) + "/task";
  const Deadline until = In(ms);
  while (Clock::now() < until) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return false;
    bool all_asleep = true;
    bool one_on_futex = false;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      const std::string task = dir + "/" + e->d_name;
      all_asleep = all_asleep && TaskState(task) == 'S';
      one_on_futex = one_on_futex || TaskAsleepOnFutex(task);
    }
    closedir(d);
    if (all_asleep && one_on_futex) return true;
    std::this_thread::yield();
  }
  return false;
}

void ExpectWaiterCountsReturned(CaseContext& ctx, ScriptedPub& pub, int parks) {
  StructView h = pub.Header();
  for (const char* field : {"frame_waiters", "packet_waiters"}) {
    ctx.Expect(h.Get(field) == 0, "SHM-ORDER-04",
               std::string(field) + " back to 0 once the subscriber exited (it decrements " +
                   "after every wait; seen parked " + std::to_string(parks) + " times)",
               std::to_string(h.Get(field)), h.All().subspan(0, 256));
  }
}

void CrashWhileParked(CaseContext& ctx, ScriptedPub& pub, Process& sub, const char* waiters_field) {
  const int detect = static_cast<int>(ctx.spec().Const("PEER_DEATH_DETECT_MS"));
  const bool parked = WaitParked(pub, waiters_field, sub, 2000);
  ctx.Note(parked ? std::string("crash while the subscriber is counted in ") + waiters_field
                  : std::string("the subscriber never counted itself in ") + waiters_field +
                        " within 2 s");
  const auto t0 = Clock::now();
  pub.Crash();
  size_t from = 0;
  const nlohmann::json* e = sub.WaitEvent("error", In(detect + 1000), &from);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ctx.Expect(e && e->value("code", uint64_t{0}) == ctx.spec().Err("PEER_CLOSED"), "RES-CRASH-01",
             "an error event PEER_CLOSED", e ? e->dump() : "none");
  // Process start-up jitter on a loaded 2-core machine: allow 250 ms over the spec's bound.
  ctx.Expect(took.count() <= detect + 250, "RES-CRASH-01",
             "PEER_CLOSED within PEER_DEATH_DETECT_MS (" + std::to_string(detect) + " ms, +250)",
             std::to_string(took.count()) + " ms");
  WaitExitOrFail(ctx, sub, "RES-CRASH-03", 3000);
}

std::unique_ptr<ShmFile> OpenIutRing(CaseContext& ctx, const std::string& req) {
  std::string err;
  auto ring = ShmFile::Open(ctx.RingPath(), false, &err);
  if (!ring) ctx.Fail(req, "the ring " + ctx.RingPath() + " exists", err);
  return ring;
}

uint64_t WaitHeadSeq(StructView& r, uint64_t n, int ms, Process* pub) {
  const Deadline until = In(ms);
  while (r.Get("head_seq") < n && Clock::now() < until && !(pub && pub->WaitExit(In(0)))) {
    FutexWait(r.Bytes("packet_futex").data(), static_cast<uint32_t>(r.Get("packet_futex")), 20);
  }
  return r.Get("head_seq");
}

StalledPing::StalledPing(CaseContext& ctx, Conn& c, uint64_t nonce)
    : ctx_(ctx), c_(c), nonce_(nonce) {
  MessageBuilder ping(ctx.spec(), "PING");
  ping.Set("nonce", nonce);
  bytes_ = ping.Encode();
  c_.Send(std::span<const uint8_t>(bytes_).subspan(0, 5));
  started_ = Clock::now();
}

void StalledPing::Finish() {
  const int64_t stall = static_cast<int64_t>(ctx_.spec().Const("HANDSHAKE_TIMEOUT_MS")) + 500;
  TlvMsg m;
  const Conn::Rx rx = c_.Recv(&m, started_ + std::chrono::milliseconds(stall));
  ctx_.Expect(rx == Conn::Rx::kTimeout, "TLV-ERR-09",
              "nothing sent and the connection kept while the PING stays stalled for " +
                  std::to_string(stall) + " ms",
              rx == Conn::Rx::kMsg ? Describe(ctx_.spec(), m) : "end-of-file", m.raw);
  if (rx != Conn::Rx::kTimeout) return;
  c_.Send(std::span<const uint8_t>(bytes_).subspan(5));
  const int pong_ms = static_cast<int>(ctx_.spec().Const("PONG_DEADLINE_MS"));
  TlvMsg pong = RecvOrFail(ctx_, c_, "TLV-ERR-09", "PONG once the PING completes", pong_ms);
  ctx_.Expect(ctx_.spec().MsgName(pong.type) == "PONG" &&
                  PayloadField(ctx_.spec(), "Pong", pong, "nonce") == nonce_,
              "MSG-PING-01",
              "PONG with the same nonce within PONG_DEADLINE_MS of the PING's last byte",
              Describe(ctx_.spec(), pong), pong.raw);
}

}  // namespace cuframes::conform
