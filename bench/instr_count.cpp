// instr_count.cpp: the hot paths' instruction counts per operation, for measuring under
// `valgrind --tool=callgrind` (bench/instr.sh). Instruction counts do not depend on machine
// load, so they show a change's effect on a shared, noisy machine where wall-clock timings
// cannot; they miss cache-line transfers between cores, which the two-thread benchmarks show.
//
//   instr_count WORKLOAD ITERATIONS
//
// Each workload runs ITERATIONS times inside an extern "C" function named cf_work_<WORKLOAD>,
// after a warm-up outside it (two laps of the ring); bench/instr.sh collects only inside that
// function
// (--toggle-collect) and divides by ITERATIONS.
//   ring_publish      RingWriter::publish of a 200-byte packet, waiter count set (nobody waits)
//   ring_roundtrip    publish + RingReader::next of a 200-byte packet on one thread
//   frame_publish     acquire + commit of a 4 KiB HOST frame (C API), no subscriber attached
//   fault_point       one unset fault point (CUFRAMES_FAULT_POINT) per iteration
//   empty             the loop alone (the floor of fault_point)
// A second build of this program, instr_count_nofault, links its own copy of the reference
// compiled with the fault points compiled out: bench/instr.sh runs both on the publish paths,
// so the difference is what the unset points cost there (issue 13 item 6). With a third
// argument `time`, it prints the best of 5 timed runs in ns per iteration instead (no callgrind).
#include <cuframes/cuframes.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fault.h"
#include "packet_ring.h"
#include "status.h"

namespace {

using cuframes::Status;
namespace ring = cuframes::ring;

constexpr uint32_t kSize = 200;
constexpr uint64_t kCapacity = 64 * 1024;

struct Ring {
  Ring() {
    size = ring::RingSegmentSize(kCapacity);
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    base = p == MAP_FAILED ? nullptr : p;
    ok = base != nullptr && w.init(base, size, kCapacity, kSize, 1) == Status::kOk &&
         r.attach(base, size) == Status::kOk;
    w.set_waiter_count(&waiters);
    r.set_waiter_count(&waiters);
    payload.resize(kSize, 0x5a);
  }
  size_t size = 0;
  void* base = nullptr;
  bool ok = false;
  alignas(64) uint32_t waiters = 0;
  ring::RingWriter w;
  ring::RingReader r;
  std::vector<uint8_t> payload;
  uint64_t n = 0;
};

// A HOST publisher with nobody attached: acquire never waits for an ACK.
struct Frames {
  Frames() {
    key = "instr-count-" + std::to_string(getpid());
    cuframes_pub_options o;
    cuframes_pub_options_init(&o);
    o.key = key.c_str();
    o.memory_kind = CUFRAMES_KIND_HOST;
    o.pixel_format = CUFRAMES_PIXEL_OPAQUE;
    o.slot_bytes = 4096;
    o.slot_count = 4;
    o.max_subscribers = 1;
    ok = cuframes_pub_create(&o, &pub) == CUFRAMES_OK;
  }
  ~Frames() {
    if (pub != nullptr) cuframes_pub_destroy(pub);
  }
  std::string key;
  cuframes_publisher* pub = nullptr;
  bool ok = false;
};

bool PublishFrame(Frames& f) {
  cuframes_slot slot;
  if (cuframes_pub_acquire(f.pub, 0, &slot) != CUFRAMES_OK) return false;
  std::memcpy(slot.data, &slot.seq, sizeof(slot.seq));
  cuframes_frame_info fi{};
  fi.payload_bytes = 4096;
  return cuframes_pub_commit(f.pub, &fi) == CUFRAMES_OK;
}

bool Publish(Ring& g) {
  return g.w.publish(g.payload.data(), kSize, (g.n++ % 30 == 0) ? ring::kPacketKeyframe : 0, 0) ==
         Status::kOk;
}

}  // namespace

extern "C" {
__attribute__((noinline)) int cf_work_ring_publish(Ring* g, long iterations) {
  for (long i = 0; i < iterations; ++i)
    if (!Publish(*g)) return 1;
  return 0;
}

__attribute__((noinline)) int cf_work_ring_roundtrip(Ring* g, long iterations) {
  ring::Packet p;
  for (long i = 0; i < iterations; ++i)
    if (!Publish(*g) || g->r.next(p, 0) != Status::kOk) return 1;
  return 0;
}

__attribute__((noinline)) int cf_work_frame_publish(Frames* f, long iterations) {
  for (long i = 0; i < iterations; ++i)
    if (!PublishFrame(*f)) return 1;
  return 0;
}

__attribute__((noinline)) int cf_work_fault_point(long iterations) {
  for (long i = 0; i < iterations; ++i) {
    CUFRAMES_FAULT_POINT("pub.packet.after_record");
    asm volatile("" ::: "memory");  // keep the loop: one point per iteration
  }
  return 0;
}

__attribute__((noinline)) int cf_work_empty(long iterations) {
  for (long i = 0; i < iterations; ++i)
    asm volatile("" ::: "memory");
  return 0;
}
}

// Runs work() (which returns 0 on success) `runs` times when timing, else once. Returns its
// status; when timing, prints the fastest run in ns per iteration.
template <class Work>
int Run(Work work, long iterations, bool timed) {
  if (!timed) return work();
  double best = 1e300;
  for (int run = 0; run < 5; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    if (const int rc = work(); rc != 0) return rc;
    const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
    best = std::min(best, d.count() / static_cast<double>(iterations));
  }
  std::printf("%.2f\n", best);
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 4 && std::strcmp(argv[3], "time") == 0)) {
    std::fprintf(stderr, "usage: instr_count WORKLOAD ITERATIONS [time]\n");
    return 64;
  }
  const std::string w = argv[1];
  const long iterations = std::atol(argv[2]);
  const bool timed = argc == 4;
  if (w == "fault_point" || w == "empty") {
    CUFRAMES_FAULT_POINT("pub.packet.after_record");  // reads CUFRAMES_FAULT once, outside
    return Run(
        [&] { return w == "empty" ? cf_work_empty(iterations) : cf_work_fault_point(iterations); },
        iterations, timed);
  }
  if (w == "frame_publish") {
    Frames f;
    if (!f.ok) {
      std::fprintf(stderr, "instr_count: publisher setup failed\n");
      return 2;
    }
    for (int i = 0; i < 100; ++i)  // warm-up: every slot used once
      if (!PublishFrame(f)) return 2;
    return Run([&] { return cf_work_frame_publish(&f, iterations); }, iterations, timed);
  }
  Ring g;
  if (!g.ok) {
    std::fprintf(stderr, "instr_count: ring setup failed\n");
    return 2;
  }
  // Warm-up: one full lap, so that the measured packets free space like a steady state.
  const long warm = static_cast<long>(2 * kCapacity / ring::RecordSpan(kSize));
  ring::Packet p;
  for (long i = 0; i < warm; ++i)
    if (!Publish(g) || g.r.next(p, 0) != Status::kOk) return 2;
  if (w == "ring_publish") {
    return Run([&] { return cf_work_ring_publish(&g, iterations); }, iterations, timed);
  }
  if (w == "ring_roundtrip") {
    return Run([&] { return cf_work_ring_roundtrip(&g, iterations); }, iterations, timed);
  }
  std::fprintf(stderr, "instr_count: unknown workload %s\n", w.c_str());
  return 64;
}
