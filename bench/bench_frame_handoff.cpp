// bench_frame_handoff.cpp: host-kind frame handoff between two processes through the public C API
// (cuframes.h), next to its physical floor measured in the same binary; and the publisher's cost
// per frame as the number of subscribers grows.
//
// ---- BM_FrameHandoff/<slot_bytes>: one round trip per iteration ----
// Parent = publisher (slot_count 2, HOST kind), child process = one subscriber. The subscriber
// holds the newest frame and releases the previous one when the next arrives (as a display or
// an encoder holding its current input does). With 2 slots, acquire(n) reuses the slot of frame
// n-2, whose ACK the subscriber sends when it receives frame n-1. So each iteration is exactly
//     [parent] acquire(n) returns ... write an 8-byte stamp, commit(n)
//       -> [child] next_frame(n) wakes, reads and checks the stamp, release(n-1)
//       -> [parent] acquire(n+1) sees the ACK of n-1 and returns
// i.e. two cross-process wake-ups (frame_futex, then ack_futex), each side asleep in FUTEX_WAIT
// while it waits. The frame's bytes are never copied (the size argument shows the latency does
// not depend on it: 4 KiB and a 4K NV12 frame, 12,441,600 bytes).
// Floor, BM_Floor_FrameHandoff: the same two wake-ups with nothing else, a futex ping-pong
// between two processes on a shared page (parent posts n and sleeps until the child posts n
// back). Target: handoff <= 1.5x the floor (label target=x<=1.5).
//
// ---- BM_PublisherCost/subs:N/poll:P: the publisher's cost per frame with N subscribers ----
// Parent = publisher (slot_count 4, max_subscribers 64), one helper process holding N subscriber
// threads (N = 1, 8, 64), each releasing every frame at once. Measured: only the acquire() call
// that succeeds plus commit(); the publisher polls acquire(timeout 0) with a yield until the slot
// is free, and those failed polls are not counted. So the number is what publishing costs the
// publisher when no subscriber holds it back: the ACK scan over the subscriber slots and the
// wake-up in commit. Two clocks:
//   time (manual time)  wall-clock time in those calls. On a machine with fewer cores than
//                       runnable subscribers it includes the publisher being preempted by the
//                       threads it just woke.
//   cpu_ns (counter)    the publisher thread's CPU time in those calls (CLOCK_THREAD_CPUTIME_ID,
//                       user + kernel, so FUTEX_WAKE's work is in it), minus the clock's own
//                       cost measured in the same run: the cost proper, which the target uses.
//   poll:0  subscribers block in next_frame (counted in frame_waiters), so commit issues one
//           FUTEX_WAKE that wakes N sleepers: the kernel's work grows with N.
//   poll:1  subscribers poll next_frame(timeout 0) with a yield: nobody waits on frame_futex, so
//           commit skips FUTEX_WAKE (SHM-ORDER-02) and only user-space work remains.
// Target: the 64-subscriber cpu_ns <= 2x the 1-subscriber cpu_ns of the same mode (label
// floor=BM_PublisherCost/subs:1/poll:P metric=cpu_ns target=x<=2; the "floor" there is the
// 1-subscriber run of the same binary and run).
//
// Children are this binary re-executed with --handoff-child (posix_spawn, never fork). Every wait
// is bounded; a child that fails makes the benchmark report an error.
//
// Run:  bench_frame_handoff --benchmark_repetitions=5 --benchmark_out=handoff.json
//                           --benchmark_out_format=json
//       python3 bench/report.py handoff.json
#include <benchmark/benchmark.h>
#include <cuframes/cuframes.h>
#include <sched.h>
#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace cuframes::bench {
namespace {

constexpr char kChildFlag[] = "--handoff-child";
constexpr uint32_t kStop = UINT32_MAX;
constexpr int kWaitMs = 10000;  // any single wait longer than this is a failure
constexpr int kWarmup = 200;

// The control page shared with a child; each word on its own cache line.
struct Control {
  alignas(64) uint32_t ping;   // parent -> child
  alignas(64) uint32_t pong;   // child -> parent
  alignas(64) uint32_t ready;  // child -> parent: set up
};

void SetLatencyCounters(benchmark::State& state, std::vector<double>& lat_ns) {
  state.counters["p50_us"] = Quantile(lat_ns, 0.50) / 1e3;
  state.counters["p99_us"] = Quantile(lat_ns, 0.99) / 1e3;
}

// ------------------------------------------------------------------------------- floor

int FloorChild(int fd) {
  SharedPage page(fd);
  if (!page.ok()) return 2;
  auto* c = page.as<Control>();
  Post(&c->ready, 1);
  for (uint32_t n = 1;; ++n) {
    const uint32_t v = WaitAtLeast(&c->ping, n, kWaitMs);
    if (v == kStop) return 0;
    if (v != n) return 3;  // timeout (0) or out of step
    Post(&c->pong, n);
  }
}

void BM_Floor_FrameHandoff(benchmark::State& state) {
  SharedPage page;
  if (!page.ok()) return state.SkipWithError("shared page");
  auto* c = page.as<Control>();
  const pid_t pid = SpawnSelf({kChildFlag, "floor", std::to_string(page.fd())});
  if (pid < 0) return state.SkipWithError("posix_spawn");
  bool ok = WaitAtLeast(&c->ready, 1, kWaitMs) == 1;
  uint32_t n = 0;
  for (int i = 0; ok && i < kWarmup; ++i) {
    Post(&c->ping, ++n);
    ok = WaitAtLeast(&c->pong, n, kWaitMs) == n;
  }
  std::vector<double> lat;
  lat.reserve(
      static_cast<size_t>(std::min<benchmark::IterationCount>(state.max_iterations, 1 << 20)));
  for (auto _ : state) {
    if (!ok) break;
    const auto t0 = Clock::now();
    Post(&c->ping, ++n);
    ok = WaitAtLeast(&c->pong, n, kWaitMs) == n;
    lat.push_back(static_cast<double>((Clock::now() - t0).count()));
  }
  Post(&c->ping, kStop);
  const int status = WaitChild(pid, kWaitMs);
  if (!ok || !ExitedOk(status)) return state.SkipWithError("ping-pong child failed or timed out");
  SetLatencyCounters(state, lat);
  state.SetLabel("futex ping-pong between two processes (two wake-ups)");
}

// ------------------------------------------------------------------------------- handoff

cuframes_pub_options PubOptions(const std::string& key, uint64_t slot_bytes, uint32_t slots,
                                uint32_t max_subs) {
  cuframes_pub_options o;
  cuframes_pub_options_init(&o);
  o.key = key.c_str();
  o.memory_kind = CUFRAMES_KIND_HOST;
  o.pixel_format = CUFRAMES_PIXEL_OPAQUE;
  o.slot_bytes = slot_bytes;
  o.slot_count = slots;
  o.max_subscribers = max_subs;
  return o;
}

// Acquires, stamps and commits one frame (flags: 0 or CUFRAMES_FRAME_END_OF_STREAM). Returns a
// cuframes status.
int PublishStamped(cuframes_publisher* pub, int timeout_ms, uint64_t payload_bytes,
                   uint32_t flags = 0) {
  cuframes_slot slot;
  int s = cuframes_pub_acquire(pub, timeout_ms, &slot);
  if (s != CUFRAMES_OK) return s;
  std::memcpy(slot.data, &slot.seq, sizeof(slot.seq));
  cuframes_frame_info fi{};
  fi.payload_bytes = payload_bytes;
  fi.timestamp_ns = static_cast<int64_t>(slot.seq);
  fi.flags = flags;
  return cuframes_pub_commit(pub, &fi);
}

// Ends a benchmark: an END_OF_STREAM frame makes every subscriber release what it holds, detach
// and exit; then the child is reaped and the publisher destroyed. (Destroying the publisher under
// a subscriber that is polling can make that subscriber report EVICTED instead of PEER_CLOSED;
// see the report of this change. Ending the stream first is what an application does anyway.)
// Returns an error text, empty on success.
std::string EndStream(cuframes_publisher* pub, pid_t pid, int timeout_ms) {
  std::string error;
  const int s = PublishStamped(pub, kWaitMs, 8, CUFRAMES_FRAME_END_OF_STREAM);
  if (s != CUFRAMES_OK) error = std::string("end-of-stream publish: ") + cuframes_status_name(s);
  const int status = WaitChild(pid, timeout_ms);  // killed after timeout_ms
  cuframes_pub_destroy(pub);
  if (error.empty() && !ExitedOk(status)) error = "subscriber process failed (see stderr)";
  return error;
}

// Connects a HOST-kind subscriber to `key`. Returns a cuframes status.
int Connect(const char* key, cuframes_subscriber** sub) {
  cuframes_sub_options o;
  cuframes_sub_options_init(&o);
  o.key = key;
  o.kinds_mask = CUFRAMES_KIND_BIT(CUFRAMES_KIND_HOST);
  o.connect_timeout_ms = kWaitMs;
  return cuframes_sub_connect(&o, sub);
}

// Returns true if the frame carries the stamp its publisher wrote (its seq).
bool StampOk(const cuframes_frame& f) {
  uint64_t stamp = 0;
  if (f.payload_bytes < sizeof(stamp)) return false;
  std::memcpy(&stamp, f.data, sizeof(stamp));
  return stamp == f.seq;
}

// The subscriber of BM_FrameHandoff: holds the newest frame, releases the previous one.
int HandoffChild(const char* key) {
  cuframes_subscriber* sub = nullptr;
  int s = Connect(key, &sub);
  if (s != CUFRAMES_OK) {
    std::fprintf(stderr, "handoff child: connect: %s\n", cuframes_status_name(s));
    return 2;
  }
  int rc = 0;
  cuframes_frame held{};
  bool have = false;
  for (;;) {
    cuframes_frame f;
    s = cuframes_sub_next_frame(sub, kWaitMs, &f);
    if (s != CUFRAMES_OK) {
      std::fprintf(stderr, "handoff child: next_frame: %s\n", cuframes_status_name(s));
      rc = 2;
      break;
    }
    if (!StampOk(f)) {
      std::fprintf(stderr, "handoff child: frame %" PRIu64 " has a wrong stamp\n", f.seq);
      rc = 1;
    }
    if (f.flags & CUFRAMES_FRAME_END_OF_STREAM) {
      if (have) cuframes_sub_release(sub, &held);
      cuframes_sub_release(sub, &f);
      break;
    }
    if (have && (s = cuframes_sub_release(sub, &held)) != CUFRAMES_OK) {
      std::fprintf(stderr, "handoff child: release: %s\n", cuframes_status_name(s));
      rc = 2;
      break;
    }
    held = f;
    have = true;
  }
  cuframes_sub_close(sub);
  return rc;
}

void BM_FrameHandoff(benchmark::State& state) {
  const auto slot_bytes = static_cast<uint64_t>(state.range(0));
  const std::string key = UniqueKey("bench-handoff");
  const cuframes_pub_options o = PubOptions(key, slot_bytes, 2, 1);
  cuframes_publisher* pub = nullptr;
  int s = cuframes_pub_create(&o, &pub);
  if (s != CUFRAMES_OK) {
    return state.SkipWithError((std::string("pub_create: ") + cuframes_status_name(s)).c_str());
  }
  const pid_t pid = SpawnSelf({kChildFlag, "sub", key});
  if (pid < 0) {
    cuframes_pub_destroy(pub);
    return state.SkipWithError("posix_spawn");
  }
  std::string error;
  s = cuframes_pub_wait_subscribers(pub, 1, kWaitMs);
  if (s != CUFRAMES_OK) error = std::string("wait_subscribers: ") + cuframes_status_name(s);
  // Frames 1 and 2 take the free slots; from then on every acquire waits for one round trip.
  for (int i = 0; error.empty() && i < kWarmup; ++i) {
    if ((s = PublishStamped(pub, kWaitMs, slot_bytes)) != CUFRAMES_OK) {
      error = std::string("warm-up publish: ") + cuframes_status_name(s);
    }
  }
  std::vector<double> lat;
  lat.reserve(
      static_cast<size_t>(std::min<benchmark::IterationCount>(state.max_iterations, 1 << 20)));
  for (auto _ : state) {
    if (!error.empty()) break;
    const auto t0 = Clock::now();
    if ((s = PublishStamped(pub, kWaitMs, slot_bytes)) != CUFRAMES_OK) {
      error = std::string("publish: ") + cuframes_status_name(s);
    }
    lat.push_back(static_cast<double>((Clock::now() - t0).count()));
  }
  const std::string end_error = EndStream(pub, pid, kWaitMs);
  if (error.empty()) error = end_error;
  if (!error.empty()) return state.SkipWithError(error.c_str());
  SetLatencyCounters(state, lat);
  state.SetLabel("floor=BM_Floor_FrameHandoff metric=real_time target=x<=1.5");
}

// ------------------------------------------------------------------------- publisher cost

// This thread's CPU time (user + system) in ns.
int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// The median CPU time one ThreadCpuNs() bracket adds to a measurement (it is a system call).
double ThreadCpuClockCost() {
  std::vector<double> d(2001);
  for (double& x : d) {
    const int64_t a = ThreadCpuNs();
    x = static_cast<double>(ThreadCpuNs() - a);
  }
  return Quantile(d, 0.5);
}

// The helper of BM_PublisherCost: `n` subscriber threads, each releasing every frame at once.
int FanoutChild(const char* key, int n, bool poll) {
  std::vector<int> rc(static_cast<size_t>(n), 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      cuframes_subscriber* sub = nullptr;
      int s = Connect(key, &sub);
      if (s != CUFRAMES_OK) {
        std::fprintf(stderr, "fan-out child %d: connect: %s\n", i, cuframes_status_name(s));
        rc[static_cast<size_t>(i)] = 2;
        return;
      }
      for (;;) {
        cuframes_frame f;
        s = cuframes_sub_next_frame(sub, poll ? 0 : kWaitMs, &f);
        if (s == CUFRAMES_AGAIN && poll) {
          sched_yield();
          continue;
        }
        if (s != CUFRAMES_OK) {
          std::fprintf(stderr, "fan-out child %d: next_frame: %s\n", i, cuframes_status_name(s));
          rc[static_cast<size_t>(i)] = 2;
          break;
        }
        if (!StampOk(f)) rc[static_cast<size_t>(i)] = 1;
        if ((s = cuframes_sub_release(sub, &f)) != CUFRAMES_OK) {
          std::fprintf(stderr, "fan-out child %d: release: %s\n", i, cuframes_status_name(s));
          rc[static_cast<size_t>(i)] = 2;
          break;
        }
        if (f.flags & CUFRAMES_FRAME_END_OF_STREAM) break;
      }
      cuframes_sub_close(sub);
    });
  }
  int result = 0;
  for (size_t i = 0; i < threads.size(); ++i) {
    threads[i].join();
    result = std::max(result, rc[i]);
  }
  return result;
}

void BM_PublisherCost(benchmark::State& state) {
  const auto subs = static_cast<int>(state.range(0));
  const bool poll = state.range(1) != 0;
  const std::string key = UniqueKey("bench-fanout");
  const cuframes_pub_options o = PubOptions(key, 4096, 4, 64);
  cuframes_publisher* pub = nullptr;
  int s = cuframes_pub_create(&o, &pub);
  if (s != CUFRAMES_OK) {
    return state.SkipWithError((std::string("pub_create: ") + cuframes_status_name(s)).c_str());
  }
  const pid_t pid = SpawnSelf({kChildFlag, "fanout", key, std::to_string(subs), poll ? "1" : "0"});
  if (pid < 0) {
    cuframes_pub_destroy(pub);
    return state.SkipWithError("posix_spawn");
  }
  std::string error;
  s = cuframes_pub_wait_subscribers(pub, static_cast<uint32_t>(subs), 3 * kWaitMs);
  if (s != CUFRAMES_OK) error = std::string("wait_subscribers: ") + cuframes_status_name(s);
  for (int i = 0; error.empty() && i < 50; ++i) {
    if ((s = PublishStamped(pub, kWaitMs, 4096)) != CUFRAMES_OK) {
      error = std::string("warm-up publish: ") + cuframes_status_name(s);
    }
  }
  const double clock_cost = ThreadCpuClockCost();
  double cpu_ns = 0;
  for (auto _ : state) {
    if (!error.empty()) break;
    Clock::duration spent{};
    cuframes_slot slot;
    const auto give_up = Clock::now() + std::chrono::milliseconds(kWaitMs);
    for (;;) {
      const int64_t c0 = ThreadCpuNs();
      const auto t0 = Clock::now();
      s = cuframes_pub_acquire(pub, 0, &slot);
      const auto t1 = Clock::now();
      const int64_t c1 = ThreadCpuNs();
      if (s == CUFRAMES_OK) {
        spent += t1 - t0;
        cpu_ns += static_cast<double>(c1 - c0) - clock_cost;
        break;
      }
      if (s != CUFRAMES_AGAIN || t1 > give_up) break;
      sched_yield();  // not counted: the subscribers still hold the slot
    }
    if (s != CUFRAMES_OK) {
      error = std::string("acquire: ") + cuframes_status_name(s);
      break;
    }
    std::memcpy(slot.data, &slot.seq, sizeof(slot.seq));
    cuframes_frame_info fi{};
    fi.payload_bytes = 4096;
    const int64_t c2 = ThreadCpuNs();
    const auto t2 = Clock::now();
    s = cuframes_pub_commit(pub, &fi);
    spent += Clock::now() - t2;
    cpu_ns += static_cast<double>(ThreadCpuNs() - c2) - clock_cost;
    if (s != CUFRAMES_OK) {
      error = std::string("commit: ") + cuframes_status_name(s);
      break;
    }
    state.SetIterationTime(Seconds(spent));
  }
  const std::string end_error = EndStream(pub, pid, 3 * kWaitMs);
  if (error.empty()) error = end_error;
  if (!error.empty()) return state.SkipWithError(error.c_str());
  state.SetItemsProcessed(state.iterations());
  state.counters["cpu_ns"] = cpu_ns / static_cast<double>(state.iterations());
  state.counters["clock_cost_ns"] = clock_cost;
  std::string label = "metric=cpu_ns";
  if (subs > 1) {
    label += " floor=BM_PublisherCost/subs:1/poll:" + std::to_string(poll ? 1 : 0);
    if (subs == 64) label += " target=x<=2";
  }
  state.SetLabel(label);
}

BENCHMARK(BM_Floor_FrameHandoff)->UseRealTime();
BENCHMARK(BM_FrameHandoff)->Arg(4096)->Arg(12441600)->UseRealTime();
BENCHMARK(BM_PublisherCost)
    ->ArgNames({"subs", "poll"})
    ->ArgsProduct({{1, 8, 64}, {0, 1}})
    ->Iterations(2000)
    ->UseManualTime();

int ChildMain(int argc, char** argv) {
  const std::string role = argc > 2 ? argv[2] : "";
  if (role == "floor" && argc == 4) return FloorChild(std::atoi(argv[3]));
  if (role == "sub" && argc == 4) return HandoffChild(argv[3]);
  if (role == "fanout" && argc == 6) {
    return FanoutChild(argv[3], std::atoi(argv[4]), std::atoi(argv[5]) != 0);
  }
  std::fprintf(stderr, "bench_frame_handoff: bad child arguments\n");
  return 64;
}

}  // namespace
}  // namespace cuframes::bench

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], cuframes::bench::kChildFlag) == 0) {
    return cuframes::bench::ChildMain(argc, argv);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
