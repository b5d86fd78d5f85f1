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
//   fault_point       one unset fault point (CUFRAMES_FAULT_POINT) per iteration
//   empty             the loop alone (the floor of fault_point)
#include <sys/mman.h>

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

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: instr_count WORKLOAD ITERATIONS\n");
    return 64;
  }
  const std::string w = argv[1];
  const long iterations = std::atol(argv[2]);
  if (w == "fault_point" || w == "empty") {
    CUFRAMES_FAULT_POINT("pub.packet.after_record");  // reads CUFRAMES_FAULT once, outside
    return w == "empty" ? cf_work_empty(iterations) : cf_work_fault_point(iterations);
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
  if (w == "ring_publish") return cf_work_ring_publish(&g, iterations);
  if (w == "ring_roundtrip") return cf_work_ring_roundtrip(&g, iterations);
  std::fprintf(stderr, "instr_count: unknown workload %s\n", w.c_str());
  return 64;
}
