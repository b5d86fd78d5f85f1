// bench_packet_ring.cpp: throughput of the encoded-packet ring (spec section 10), each benchmark
// next to its physical floor measured in the same binary.
//
// What a delivered packet costs, physically: publish copies the payload into the ring once and
// next() copies it out once. So the floor for the ring is TWO memcpys of the payload, through a
// buffer of the ring's capacity at the ring's own record positions (same cache footprint):
// BM_Floor_RingCopy (same thread) and BM_Floor_RingCopyTwoThreads (copy in on a writer thread,
// copy out on the reader thread, as the ring's two-thread benchmark does). bytes_per_second
// everywhere counts payload bytes delivered, once; the ratio ring / floor is therefore "fraction
// of the two-memcpy bandwidth achieved".
//
// Targets (checked by bench/report.py from each benchmark's label):
//   1 MiB packets: >= 70% of BM_Floor_RingCopy bytes_per_second
//   200 B packets: >= 5 M packets/s (items_per_second) and >= 50% of the floor's packets/s; a
//                  missed 5 M/s is "explained" when BM_Floor_RingProtocolTwoThreads (the spec's
//                  own accesses, nothing else) misses it too and the ring reaches 70% of that.
// BM_Floor_RingProtocolTwoThreads is the second floor of the small-packet ring: the loads, stores
// and fences spec section 10 requires per packet, on the spec's layout, with nothing around them;
// its `without` variants price one requirement each. Every two-thread benchmark pins its writer
// and reader to the same two CPUs (distinct cores sharing the last-level cache; counters
// writer_cpu, reader_cpu), so floors and ring are measured on one topology, and keeps what each
// thread writes per packet on cache lines of its own (OwnLine).
// BM_Floor_FutexWake is informational: it is what every publish cost while spec 10.4 required a
// FUTEX_WAKE per publish. Since the waiter counts (SHM-ORDER-02, PKT-WRITE-04) a publish wakes
// only while packet_waiters is nonzero; the ring benchmarks give the writer such a count (in
// private memory here, as the frame segment header holds it), and nobody sleeps on it, so no
// publish makes a system call. BM_PacketRing_PublishAlwaysWake keeps the old behaviour (no
// count: wake on every publish) for comparison.
//
// Run:  bench_packet_ring --benchmark_out=ring.json --benchmark_out_format=json
//       python3 bench/report.py ring.json
#include <benchmark/benchmark.h>
#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fault.h"
#include "mem_order.h"
#include "packet_ring.h"
#include "status.h"

namespace cuframes::ring {
namespace {

constexpr int64_t kSmall = 200;
constexpr int64_t kLarge = 1 << 20;

// Ring capacity used for a payload size: the smallest power of two >= 64 KiB that holds a
// packet of that size (max_packet_bytes + 32 <= capacity / 2).
uint64_t CapacityFor(uint64_t size) {
  uint64_t cap = 64 * 1024;
  while (size + kRecordHeaderSize > cap / 2)
    cap *= 2;
  return cap;
}

// The 50%-of-floor target for small packets is the two-thread one (issue's one writer, one
// reader); on one thread the floor is two back-to-back memcpys, which no ring can approach.
std::string Label(int64_t size, const char* floor, bool two_threads) {
  std::string l = std::string("floor=") + floor + "/" + std::to_string(size);
  if (size >= kLarge) return l + " target=ratio>=0.70";
  l += " metric=items_per_second target=items_per_second>=5e6";
  if (!two_threads) return l;
  return l + " target=ratio>=0.5 bound=BM_Floor_RingProtocolTwoThreads/" + std::to_string(size) +
         "/without:0@0.7";
}

// ---------------------------------------------------------------------------------- CPUs

// The CPUs of a sysfs list such as "0-3,8,10-11"; empty when the file is missing.
std::set<int> CpuList(const std::string& path) {
  std::set<int> cpus;
  std::ifstream in(path);
  std::string list;
  if (!std::getline(in, list)) return cpus;
  std::stringstream ss(list);
  std::string part;
  while (std::getline(ss, part, ',')) {
    const size_t dash = part.find('-');
    const int lo = std::atoi(part.c_str());
    const int hi = dash == std::string::npos ? lo : std::atoi(part.c_str() + dash + 1);
    for (int c = lo; c <= hi; ++c)
      cpus.insert(c);
  }
  return cpus;
}

// Where the two-thread benchmarks run their writer and their reader: two CPUs of this process's
// affinity set on distinct physical cores (never SMT siblings, which share an L1), sharing the
// last-level cache where sysfs says which do (a CCX on EPYC), else any two. Pinned, the floor and
// the ring meet the same topology in every run; unpinned, the scheduler's placement moved the
// two-thread floor by 4x from one run to the next.
struct CpuPair {
  int writer = -1;
  int reader = -1;
};

CpuPair PickCpuPair() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  if (sched_getaffinity(0, sizeof mask, &mask) != 0) return {};
  std::vector<int> allowed;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &mask)) allowed.push_back(c);
  }
  if (allowed.size() < 2) return {};
  const std::string sys = "/sys/devices/system/cpu/cpu";
  auto siblings = [&](int c) {
    return CpuList(sys + std::to_string(c) + "/topology/thread_siblings_list");
  };
  auto llc = [&](int c) {
    return CpuList(sys + std::to_string(c) + "/cache/index3/shared_cpu_list");
  };
  // Distinct cores sharing the last-level cache, else distinct cores, else the first two.
  for (const bool same_llc : {true, false}) {
    for (const int a : allowed) {
      const std::set<int> sib = siblings(a);
      const std::set<int> cache = llc(a);
      for (const int b : allowed) {
        if (b != a && sib.count(b) == 0 && (!same_llc || cache.count(b) != 0)) return {a, b};
      }
    }
  }
  return {allowed[0], allowed[1]};
}

// Pins the calling thread to `cpu`; returns false when that is impossible.
bool PinThisThread(int cpu) {
  if (cpu < 0) return false;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  return sched_setaffinity(0, sizeof one, &one) == 0;
}

// Pins the benchmark thread (the reader) for its scope and restores its affinity afterwards, so
// that the one-thread benchmarks after it run where the scheduler puts them.
class ReaderPin {
 public:
  explicit ReaderPin(benchmark::State& state) : pair_(PickCpuPair()) {
    CPU_ZERO(&saved_);
    have_saved_ = sched_getaffinity(0, sizeof saved_, &saved_) == 0;
    pinned_ = PinThisThread(pair_.reader);
    state.counters["writer_cpu"] = pair_.writer;
    state.counters["reader_cpu"] = pair_.reader;
  }
  ~ReaderPin() {
    if (have_saved_) sched_setaffinity(0, sizeof saved_, &saved_);
  }
  ReaderPin(const ReaderPin&) = delete;
  ReaderPin& operator=(const ReaderPin&) = delete;
  // Called on the writer thread.
  void PinWriter() const {
    if (pinned_) PinThisThread(pair_.writer);
  }

 private:
  CpuPair pair_;
  cpu_set_t saved_;
  bool have_saved_ = false;
  bool pinned_ = false;
};

// What one thread of a two-thread benchmark writes on every packet, on a cache line of its own.
// Side by side on the benchmark thread's stack, the reader's `consumed` and the writer's state
// (RingWriter's members) shared lines that both threads wrote on every packet: false sharing
// that cost the ring a quarter to a half of its 200 B rate on the 2-core machine, a cost no
// deployment pays (the writer and its readers live in different processes). The writer threads
// also capture their parameters by value, so that they read nothing on the reader's stack.
template <class T>
struct alignas(64) OwnLine {
  T value{};
};

// A shared anonymous mapping holding one ring.
struct Shm {
  explicit Shm(size_t n) : size(n) {
    void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    base = p == MAP_FAILED ? nullptr : p;
  }
  ~Shm() {
    if (base != nullptr) munmap(base, size);
  }
  size_t size;
  void* base;
};

std::vector<uint8_t> Payload(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<uint8_t>(i * 131 + 7);
  return v;
}

void SetCounters(benchmark::State& state, int64_t size) {
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * size);
}

// ---------------------------------------------------------------------------------- floors

// One memcpy of the payload (for reference).
void BM_Floor_Memcpy(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const auto src = Payload(size);
  std::vector<uint8_t> dst(size);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), size);
    benchmark::ClobberMemory();
  }
  SetCounters(state, state.range(0));
}

// The ring's floor: copy in at the ring's next record position, copy out, advance like the ring
// (records aligned to 32 with a 32-byte header, a jump to the next lap where one would not fit).
void BM_Floor_RingCopy(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const uint64_t cap = CapacityFor(size);
  Shm shm(cap);
  if (shm.base == nullptr) return state.SkipWithError("mmap failed");
  auto* ring = static_cast<uint8_t*>(shm.base);
  std::memset(ring, 0, cap);
  const auto src = Payload(size);
  std::vector<uint8_t> dst(size);
  const uint64_t span = RecordSpan(size);
  uint64_t pos = 0;
  for (auto _ : state) {
    uint64_t off = pos & (cap - 1);
    if (off + span > cap) {
      pos += cap - off;
      off = 0;
    }
    std::memcpy(ring + off + kRecordHeaderSize, src.data(), size);
    std::memcpy(dst.data(), ring + off + kRecordHeaderSize, size);
    benchmark::ClobberMemory();
    pos += span;
  }
  SetCounters(state, state.range(0));
}

// The two-thread floor: a writer thread copies each payload in at the ring's record positions, the
// benchmark thread copies it out, with the same private flow control as
// BM_PacketRing_TwoThreads (the copy-out reads lines another core just wrote).
void BM_Floor_RingCopyTwoThreads(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const uint64_t cap = CapacityFor(size);
  Shm shm(cap);
  if (shm.base == nullptr) return state.SkipWithError("mmap failed");
  auto* ring = static_cast<uint8_t*>(shm.base);
  std::memset(ring, 0, cap);
  const uint64_t span = RecordSpan(size);
  const uint64_t fit = cap / span;
  const uint64_t window = fit > 2 ? fit - 2 : 1;
  const uint64_t total = static_cast<uint64_t>(state.max_iterations);
  // offsets[n % kSlots] is where packet n went; published/consumed hand it over.
  constexpr uint64_t kSlots = 1024;
  std::vector<uint64_t> offsets(kSlots);
  uint64_t* const slots = offsets.data();
  OwnLine<std::atomic<uint64_t>> published;
  OwnLine<std::atomic<uint64_t>> consumed;
  const ReaderPin pin(state);
  std::thread writer([&pin, &published, &consumed, ring, slots, size, cap, span, window, total] {
    pin.PinWriter();
    const auto src = Payload(size);
    uint64_t pos = 0;
    for (uint64_t n = 1; n <= total; ++n) {
      while (n > consumed.value.load(std::memory_order_acquire) + window)
        std::this_thread::yield();
      uint64_t off = pos & (cap - 1);
      if (off + span > cap) {
        pos += cap - off;
        off = 0;
      }
      std::memcpy(ring + off + kRecordHeaderSize, src.data(), size);
      slots[n % kSlots] = off;
      published.value.store(n, std::memory_order_release);
      pos += span;
    }
  });
  std::vector<uint8_t> dst(size);
  uint64_t got = 0;
  for (auto _ : state) {
    ++got;
    while (published.value.load(std::memory_order_acquire) < got)
      std::this_thread::yield();
    std::memcpy(dst.data(), ring + slots[got % kSlots] + kRecordHeaderSize, size);
    benchmark::ClobberMemory();
    consumed.value.store(got, std::memory_order_release);
  }
  writer.join();
  SetCounters(state, state.range(0));
}

// The protocol's floor: what spec section 10 makes every implementation of the ring do per
// packet, on the spec's own layout (PacketRingHeader, 32-byte record headers in the data area),
// and nothing else: no argument checks, no PAD, no keyframe bookkeeping, no validation beyond
// the lock compare. Writer: invalidate the record it overwrites (lock | 1) and store tail_pos
// with a release fence (PKT-WRITE-02), the record under its lock (PKT-WRITE-03), head_pos and
// head_seq, then the sequentially consistent packet_futex increment and waiter-count load
// (PKT-WRITE-04, SHM-ORDER-02). Reader: head_seq (PKT-READ-01), the record's lock and fields,
// the payload copy, then the lock and tail_pos again (PKT-READ-04's lap check). Flow control
// and pinning as BM_Floor_RingCopyTwoThreads, so the two floors differ by the protocol alone;
// BM_PacketRing_TwoThreads over this floor is what the reference's code adds. The payload moves
// with memcpy, as in the copy floor: the spec says nothing of how bytes are copied (the
// reference's word-by-word atomic copies are its own choice, priced by BM_CopyToShared and
// BM_CopyFromShared), and the flow control keeps the writer two records behind the reader, so
// no byte is read while it is written.
//
// `without` drops one requirement, to price it (measurements, not designs the spec allows):
//   0  nothing: the protocol as specified (the floor the ring is judged against)
//   1  PKT-READ-04's reload of tail_pos after the copy (a line the writer stores every packet)
//   2  SHM-ORDER-02's StoreLoad barrier (a plain increment and load instead of seq_cst)
//   3  nothing dropped, but tail_pos kept on a cache line of its own (a copy at header offset 192
//      that the reader's lap check reads), apart from head_seq, head_pos and packet_futex
enum class Without { kNothing = 0, kTailReload = 1, kWaiterFence = 2, kSharedTailLine = 3 };

void BM_Floor_RingProtocolTwoThreads(benchmark::State& state) {
  const auto size = static_cast<uint32_t>(state.range(0));
  const auto without = static_cast<Without>(state.range(1));
  const uint64_t cap = CapacityFor(size);
  Shm shm(RingSegmentSize(cap));
  if (shm.base == nullptr) return state.SkipWithError("mmap failed");
  auto* base = static_cast<uint8_t*>(shm.base);
  auto* header = static_cast<PacketRingHeader*>(shm.base);
  uint8_t* data = base + kRingDataOffset;
  // Where the lap check reads tail_pos: the spec's field, or (without:3) a line of its own.
  uint64_t* tail_line = without == Without::kSharedTailLine
                            ? reinterpret_cast<uint64_t*>(base + 192)
                            : &header->tail_pos;
  const uint64_t span = RecordSpan(size);
  const uint64_t fit = cap / span;  // records per lap; every lap starts at offset 0 (no PAD)
  if (cap % span != 0) return state.SkipWithError("the floor needs records that tile the ring");
  const uint64_t window = fit > 2 ? fit - 2 : 1;
  const uint64_t total = static_cast<uint64_t>(state.max_iterations);
  alignas(64) uint32_t waiters = 0;  // packet_waiters, as the ring benchmarks keep it
  OwnLine<std::atomic<uint64_t>> consumed;
  OwnLine<std::atomic<bool>> failed;
  // Packet n's record: every lap starts at offset 0 and holds `fit` records.
  auto record = [data, fit, span](uint64_t n) {
    return reinterpret_cast<PacketRecordHeader*>(data + ((n - 1) % fit) * span);
  };
  const ReaderPin pin(state);
  std::thread writer([&pin, &consumed, &failed, &waiters, record, header, tail_line, size, fit,
                      span, window, total, without] {
    pin.PinWriter();
    const auto src = Payload(size);
    uint64_t tail = 0;
    for (uint64_t n = 1; n <= total; ++n) {
      while (n > consumed.value.load(std::memory_order_acquire) + window)
        std::this_thread::yield();
      PacketRecordHeader* rec = record(n);
      if (n > fit) {  // the ring is full: drop the oldest record, the one at this offset
        mem::store_relaxed(&rec->lock, mem::load_relaxed(&rec->lock) | 1u);
        tail += span;
        if (tail_line != &header->tail_pos) mem::store_relaxed(tail_line, tail);
        mem::store_relaxed(&header->tail_pos, tail);
        mem::fence_release();
      }
      mem::seq_store(&rec->lock, 2 * n - 1);
      mem::fence_release();
      mem::seq_store(&rec->size, size);
      mem::seq_store(&rec->flags, uint32_t{0});
      mem::seq_store(&rec->pts, int64_t{0});
      mem::seq_store(&rec->params_generation, uint32_t{0});
      std::memcpy(rec + 1, src.data(), size);
      mem::store_release(&rec->lock, 2 * n);
      mem::store_release(&header->head_pos, (n - 1) * span + span);
      mem::store_release(&header->head_seq, n);
      if (without == Without::kWaiterFence) {
        mem::store_relaxed(&header->packet_futex, mem::load_relaxed(&header->packet_futex) + 1);
        if (mem::load_relaxed(&waiters) != 0)
          failed.value = true;  // nobody waits in this benchmark
      } else {
        mem::fetch_add_seq_cst(&header->packet_futex, 1u);
        if (mem::load_seq_cst(&waiters) != 0) failed.value = true;
      }
    }
  });
  std::vector<uint8_t> dst(size);
  uint64_t known_head = 0;
  uint64_t n = 0;
  for (auto _ : state) {
    ++n;
    while (known_head < n) {
      known_head = mem::load_acquire(&header->head_seq);
      if (known_head < n) std::this_thread::yield();
    }
    const PacketRecordHeader* rec = record(n);
    const uint64_t p = (n - 1) * span;
    if (mem::load_acquire(&rec->lock) != 2 * n) failed.value = true;
    const uint32_t got = mem::seq_load(&rec->size);
    benchmark::DoNotOptimize(mem::seq_load(&rec->flags));
    benchmark::DoNotOptimize(mem::seq_load(&rec->pts));
    benchmark::DoNotOptimize(mem::seq_load(&rec->params_generation));
    std::memcpy(dst.data(), rec + 1, got <= size ? got : size);
    mem::fence_acquire();
    if (mem::load_relaxed(&rec->lock) != 2 * n) failed.value = true;
    if (without != Without::kTailReload && mem::load_relaxed(tail_line) > p) failed.value = true;
    benchmark::ClobberMemory();
    consumed.value.store(n, std::memory_order_release);
  }
  writer.join();
  if (failed.value) return state.SkipWithError("a lap or a waiter where none can be");
  SetCounters(state, state.range(0));
  static constexpr const char* kDropped[] = {
      "as specified", "without PKT-READ-04's tail_pos reload", "without SHM-ORDER-02's barrier",
      "tail_pos on a line of its own"};
  state.SetLabel(std::string("metric=items_per_second (") + kDropped[static_cast<int>(without)] +
                 ")");
}

// The syscall every publish makes (FUTEX_WAKE on a shared futex nobody waits on).
void BM_Floor_FutexWake(benchmark::State& state) {
  uint32_t word = 0;
  for (auto _ : state) {
    mem::fetch_add(&word, 1u);
    benchmark::DoNotOptimize(mem::futex_wake_all(&word));
  }
  state.SetItemsProcessed(state.iterations());
}

// The formally race-free copies the ring uses, against memcpy (BM_Floor_Memcpy).
void BM_CopyFromShared(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const auto src = Payload(size);
  std::vector<uint8_t> dst(size);
  for (auto _ : state) {
    mem::copy_from_shared(dst.data(), src.data(), size);
    benchmark::ClobberMemory();
  }
  SetCounters(state, state.range(0));
  state.SetLabel("floor=BM_Floor_Memcpy/" + std::to_string(size));
}

void BM_CopyToShared(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const auto src = Payload(size);
  std::vector<uint8_t> dst(size);
  for (auto _ : state) {
    mem::copy_to_shared(dst.data(), src.data(), size);
    benchmark::ClobberMemory();
  }
  SetCounters(state, state.range(0));
  state.SetLabel("floor=BM_Floor_Memcpy/" + std::to_string(size));
}

// An unset fault point (fault.h: one relaxed load and a branch) against the same loop without
// it. publish() passes two of them per packet (pub.packet.mid_payload, pub.packet.after_record):
// compare twice the difference with BM_PacketRing_Publish/200 (bench/instr.sh counts the
// instructions: 3 per point).
void BM_Floor_FaultPoint(benchmark::State& state) {
  for (auto _ : state)
    benchmark::ClobberMemory();
  state.SetItemsProcessed(state.iterations());
}

void BM_FaultPoint(benchmark::State& state) {
  for (auto _ : state) {
    CUFRAMES_FAULT_POINT("pub.packet.after_record");
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("floor=BM_Floor_FaultPoint metric=real_time (informational: ns per point)");
}

// ---------------------------------------------------------------------------------- ring

// Publish only (the publisher's cost per packet; nobody reads). With a waiter count (zero:
// nobody sleeps) unless always_wake.
void PublishOnly(benchmark::State& state, bool always_wake) {
  const auto size = static_cast<uint32_t>(state.range(0));
  const uint64_t cap = CapacityFor(size);
  Shm shm(RingSegmentSize(cap));
  RingWriter w;
  if (shm.base == nullptr || w.init(shm.base, shm.size, cap, size, 1) != Status::kOk) {
    return state.SkipWithError("ring init failed");
  }
  alignas(64) uint32_t waiters = 0;  // packet_waiters
  if (!always_wake) w.set_waiter_count(&waiters);
  const auto src = Payload(size);
  uint64_t n = 0;
  for (auto _ : state) {
    if (w.publish(src.data(), size, (n++ % 30 == 0) ? kPacketKeyframe : 0, 0) != Status::kOk) {
      return state.SkipWithError("publish failed");
    }
  }
  SetCounters(state, state.range(0));
  state.SetLabel("floor=BM_Floor_Memcpy/" + std::to_string(size));
}

void BM_PacketRing_Publish(benchmark::State& state) {
  PublishOnly(state, false);
}

void BM_PacketRing_PublishAlwaysWake(benchmark::State& state) {
  PublishOnly(state, true);
}

// Publish then read, alternating on one thread.
void BM_PacketRing_SameThread(benchmark::State& state) {
  const auto size = static_cast<uint32_t>(state.range(0));
  const uint64_t cap = CapacityFor(size);
  Shm shm(RingSegmentSize(cap));
  RingWriter w;
  RingReader r;
  if (shm.base == nullptr || w.init(shm.base, shm.size, cap, size, 1) != Status::kOk ||
      r.attach(shm.base, shm.size) != Status::kOk) {
    return state.SkipWithError("ring init failed");
  }
  alignas(64) uint32_t waiters = 0;  // packet_waiters: the reader never blocks here
  w.set_waiter_count(&waiters);
  r.set_waiter_count(&waiters);
  const auto src = Payload(size);
  uint64_t n = 0;
  Packet p;
  for (auto _ : state) {
    if (w.publish(src.data(), size, (n++ % 30 == 0) ? kPacketKeyframe : 0, 0) != Status::kOk ||
        r.next(p, 0) != Status::kOk) {
      return state.SkipWithError("publish/next failed");
    }
    benchmark::DoNotOptimize(p.data.data());
  }
  if (p.data.size() != size || std::memcmp(p.data.data(), src.data(), size) != 0) {
    return state.SkipWithError("payload mismatch");
  }
  SetCounters(state, state.range(0));
  state.SetLabel(Label(state.range(0), "BM_Floor_RingCopy", false));
}

// Writer thread and reader thread (the benchmark thread reads; it polls with next(p, 0) and
// yields, like the floor, so that the two compare the same hand-over). The ring has no
// back-pressure (readers never write to it), so the writer stays at most `window` packets ahead of
// the reader through a private counter; that keeps the measurement lossless (overruns must stay 0).
void BM_PacketRing_TwoThreads(benchmark::State& state) {
  const auto size = static_cast<uint32_t>(state.range(0));
  const uint64_t cap = CapacityFor(size);
  Shm shm(RingSegmentSize(cap));
  // The writer's and the reader's private state on lines of their own (OwnLine says why).
  auto writer_state = std::make_unique<OwnLine<RingWriter>>();
  auto reader_state = std::make_unique<OwnLine<RingReader>>();
  RingWriter& w = writer_state->value;
  RingReader& r = reader_state->value;
  if (shm.base == nullptr || w.init(shm.base, shm.size, cap, size, 1) != Status::kOk ||
      r.attach(shm.base, shm.size) != Status::kOk) {
    return state.SkipWithError("ring init failed");
  }
  alignas(64) uint32_t waiters = 0;  // packet_waiters: the reader never blocks here
  w.set_waiter_count(&waiters);
  r.set_waiter_count(&waiters);
  // Records that always fit: one lap minus one record lost to a PAD, minus one being written.
  const uint64_t fit = cap / RecordSpan(size);
  const uint64_t window = fit > 2 ? fit - 2 : 1;
  const uint64_t total = static_cast<uint64_t>(state.max_iterations);
  OwnLine<std::atomic<uint64_t>> consumed;
  OwnLine<std::atomic<bool>> failed;
  const ReaderPin pin(state);
  std::thread writer([&pin, &w, &consumed, &failed, size, window, total] {
    pin.PinWriter();
    const auto src = Payload(size);
    for (uint64_t n = 1; n <= total; ++n) {
      while (n > consumed.value.load(std::memory_order_acquire) + window) {
        if (failed.value.load(std::memory_order_relaxed)) return;
        std::this_thread::yield();
      }
      if (w.publish(src.data(), size, n % 30 == 1 ? kPacketKeyframe : 0, 0) != Status::kOk) {
        failed.value = true;
        return;
      }
    }
  });
  Packet p;
  uint64_t got = 0;
  for (auto _ : state) {
    Status s;
    while ((s = r.next(p, 0)) == Status::kAgain)
      std::this_thread::yield();
    if (s != Status::kOk) {
      failed.value = true;
      break;
    }
    consumed.value.store(++got, std::memory_order_release);
  }
  writer.join();
  if (failed.value) return state.SkipWithError("publish/next failed");
  state.counters["overruns"] = static_cast<double>(r.overruns());
  SetCounters(state, state.range(0));
  state.SetLabel(Label(state.range(0), "BM_Floor_RingCopyTwoThreads", true));
}

BENCHMARK(BM_Floor_Memcpy)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_Floor_RingCopy)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_Floor_RingCopyTwoThreads)->Arg(kSmall)->Arg(kLarge)->UseRealTime();
BENCHMARK(BM_Floor_RingProtocolTwoThreads)
    ->ArgNames({"", "without"})
    ->Args({kSmall, 0})
    ->Args({kSmall, 1})
    ->Args({kSmall, 2})
    ->Args({kSmall, 3})
    ->UseRealTime();
BENCHMARK(BM_Floor_FutexWake);
BENCHMARK(BM_Floor_FaultPoint);
BENCHMARK(BM_FaultPoint);
BENCHMARK(BM_CopyFromShared)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_CopyToShared)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_PacketRing_Publish)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_PacketRing_PublishAlwaysWake)->Arg(kSmall);
BENCHMARK(BM_PacketRing_SameThread)->Arg(kSmall)->Arg(kLarge);
BENCHMARK(BM_PacketRing_TwoThreads)->Arg(kSmall)->Arg(kLarge)->UseRealTime();

}  // namespace
}  // namespace cuframes::ring

BENCHMARK_MAIN();
