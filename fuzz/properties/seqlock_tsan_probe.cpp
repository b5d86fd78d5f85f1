// seqlock_tsan_probe.cpp: proves that a ThreadSanitizer build sees the synchronisation the
// seqlock relies on (reference/src/mem_order.h, "ThreadSanitizer builds"), by showing that TSan
// reports a reader that skips the second count check. Built in the TSan build only.
//
//   seqlock_tsan_probe correct   readers follow the reference's recipe (load_acquire(count),
//                                seq_load the data, fence_acquire, re-check the count); must
//                                finish with no TSan report, after discarding torn copies
//   seqlock_tsan_probe broken    readers use the copy without the re-check; TSan must report a
//                                data race (ctest runs this mode through expect_tsan_race.py)
//
// The model. One writer, two readers, threads of this process. The seqlock protects one word,
// `index`, with the recipe of mem_order.h. Each write section k ends with a plain store to
// slab[k] before the count goes even: like the rest of a record's payload, slab[k] is only valid
// once section k is complete, and only a reader whose copy of `index` is validated (count even
// and unchanged across the copy) is entitled to read it. A reader that skips the re-check and
// gets `index` from an unfinished section reads slab[k] with no happens-before edge to its plain
// store: a data race TSan reports, whichever of the two runs first. A reader that re-checks only
// reads slab[k] after acquiring count 2k, which the writer stored after slab[k]: no race.
//
// Every reader yields between its first count load and its copy (a reader descheduled mid-copy),
// so copies overlap write sections often. A missing fence (re-check present) is a bug of weakly
// ordered hardware that no run on x86-64 shows, so TSan, which checks executions, cannot catch it
// there; in TSan builds seq_load is an acquire load anyway, which makes the fence unnecessary.
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include "mem_order.h"

namespace {

namespace mem = cuframes::mem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kSlab = uint64_t{1} << 20;  // the writer stops after this many sections
constexpr uint64_t kWantTorn = 50;             // torn copies each reader waits for
constexpr int kReaders = 2;
constexpr auto kBound = std::chrono::seconds(60);

struct alignas(64) Seqlock {
  uint64_t count = 0;  // odd while a section is being written
  uint64_t index = 0;  // protected: the last complete section, k
};

Seqlock g_lock;
std::vector<uint64_t> g_slab;        // plain memory; slab[k] is written at the end of section k
std::atomic<int> g_readers_done{0};  // relaxed only: no happens-before edge to hide a race
std::atomic<bool> g_writer_done{false};

uint64_t ValueOf(uint64_t k) {
  return k * 0x9E3779B97F4A7C15ull + 1;
}

void Writer() {
  uint64_t k = 0;
  while (k + 1 < kSlab && g_readers_done.load(std::memory_order_relaxed) < kReaders) {
    ++k;
    mem::seq_store(&g_lock.count, 2 * k - 1);  // odd: section k in progress
    mem::fence_release();
    mem::seq_store(&g_lock.index, k);
    g_slab[k] = ValueOf(k);                    // the rest of section k's payload (plain memory)
    mem::store_release(&g_lock.count, 2 * k);  // even: section k complete
  }
  g_writer_done.store(true, std::memory_order_relaxed);
  std::printf("writer: %" PRIu64 " sections\n", k);
}

struct ReaderResult {
  uint64_t validated = 0, torn = 0;
  bool bad = false;
};

// The reference's recipe (packet_ring.cpp codec_params(), subscriber.cpp NextFrame()).
ReaderResult CorrectReader() {
  ReaderResult r;
  const auto deadline = Clock::now() + kBound;
  while (r.torn < kWantTorn && !g_writer_done.load(std::memory_order_relaxed) &&
         Clock::now() < deadline) {
    const uint64_t c1 = mem::load_acquire(&g_lock.count);
    if (c1 & 1) continue;
    std::this_thread::yield();  // descheduled mid-copy
    const uint64_t idx = mem::seq_load(&g_lock.index);
    mem::fence_acquire();
    if (mem::load_relaxed(&g_lock.count) != c1) {
      if (idx != c1 / 2) ++r.torn;  // the copy came from an unfinished section: discarded
      continue;
    }
    ++r.validated;
    if (idx != c1 / 2 || g_slab[idx] != ValueOf(idx)) r.bad = true;
  }
  return r;
}

// Deliberately broken: no second count check, so a copy from an unfinished section is used.
// noinline, so that TSan's report names it.
__attribute__((noinline)) ReaderResult BrokenReader() {
  ReaderResult r;
  const auto deadline = Clock::now() + kBound;
  while (r.torn < kWantTorn && !g_writer_done.load(std::memory_order_relaxed) &&
         Clock::now() < deadline) {
    const uint64_t c1 = mem::load_acquire(&g_lock.count);
    if (c1 & 1) continue;
    std::this_thread::yield();  // descheduled mid-copy
    const uint64_t idx = mem::seq_load(&g_lock.index);
    // (missing: fence_acquire and the re-check of the count)
    const uint64_t v = g_slab[idx];
    ++r.validated;
    if (idx != c1 / 2) ++r.torn;
    if (v != ValueOf(idx) && idx == c1 / 2) r.bad = true;
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const bool broken = argc == 2 && std::strcmp(argv[1], "broken") == 0;
  if (argc != 2 || (!broken && std::strcmp(argv[1], "correct") != 0)) {
    std::fprintf(stderr, "usage: seqlock_tsan_probe correct|broken\n");
    return 2;
  }
  if (!CUFRAMES_TSAN) {
    std::printf("SKIP: this probe only means something in a ThreadSanitizer build\n");
    return 77;
  }
  g_slab.assign(kSlab, 0);
  g_slab[0] = ValueOf(0);
  std::printf("%s readers: started\n", broken ? "broken" : "correct");
  std::fflush(stdout);
  std::vector<ReaderResult> results(kReaders);
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&results, i, broken] {
      results[i] = broken ? BrokenReader() : CorrectReader();
      g_readers_done.fetch_add(1, std::memory_order_relaxed);
    });
  }
  std::thread writer(Writer);
  for (auto& t : readers)
    t.join();
  writer.join();
  uint64_t torn = 0;
  bool bad = false;
  for (int i = 0; i < kReaders; ++i) {
    std::printf("reader %d: %" PRIu64 " copies used, %" PRIu64 " torn (%s)\n", i,
                results[i].validated, results[i].torn, broken ? "used anyway" : "discarded");
    torn += results[i].torn;
    bad = bad || results[i].bad;
  }
  if (bad) {
    std::printf("FAIL: a validated copy did not match its section\n");
    return 1;
  }
  if (torn == 0) {
    // Without overlapping copies the run proves nothing either way.
    std::printf("FAIL: no copy overlapped a write section; the probe exercised nothing\n");
    return 3;
  }
  if (broken) {
    std::printf("broken readers used %" PRIu64 " torn copies and TSan said nothing\n", torn);
    return 4;
  }
  std::printf("OK: %" PRIu64 " torn copies discarded, no race reported\n", torn);
  return 0;
}
