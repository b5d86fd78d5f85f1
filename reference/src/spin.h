// spin.h: the bounded, adaptive spin a waiter runs before it parks on a futex.
//
// A waiter that polls its condition leaves the waiter counts alone (SHM-ORDER-03), so a writer
// that publishes while every waiter is still spinning makes no FUTEX_WAKE at all, and the waiter
// sees the data one cache-line transfer after the store instead of one wake-up later. That is
// what keeps a publish with 64 subscribers close to the cost of one, and a handoff close to a
// spin ping-pong. The spin is bounded (then the waiter parks as SHM-ORDER-04 says) and adaptive:
// a waiter whose spins keep ending empty (frames slower than the spin) mostly stops spinning, so
// an idle or slow stream burns almost no CPU.
//
// CUFRAMES_SPIN_US in the environment sets the budget in microseconds (0: never spin); read once
// per process. Nothing here touches shared memory: it is the waiter's private policy.
#ifndef CUFRAMES_REFERENCE_SRC_SPIN_H_
#define CUFRAMES_REFERENCE_SRC_SPIN_H_

#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>

namespace cuframes::spin {

// Default budget: longer than a cross-core handoff and than the gap between back-to-back frames
// with dozens of subscribers, short enough that a spin per frame at 240 fps costs ~1% of a core.
inline constexpr int64_t kDefaultBudgetNs = 50'000;

namespace detail {
inline std::atomic<int64_t>& Budget() {
  static std::atomic<int64_t> budget{[] {
    const char* v = std::getenv("CUFRAMES_SPIN_US");
    if (v == nullptr || *v == '\0') return kDefaultBudgetNs;
    char* end = nullptr;
    const long long us = std::strtoll(v, &end, 10);
    if (*end != '\0' || us < 0) return kDefaultBudgetNs;
    return static_cast<int64_t>(us > 1'000'000 ? 1'000'000 : us) * 1000;
  }()};
  return budget;
}
}  // namespace detail

// Returns the spin budget in ns (CUFRAMES_SPIN_US, else kDefaultBudgetNs, unless set below).
inline int64_t BudgetNs() {
  return detail::Budget().load(std::memory_order_relaxed);
}

// Sets this process's budget (0: never spin); for benchmarks that compare with and without.
inline void SetBudgetNs(int64_t ns) {
  detail::Budget().store(ns < 0 ? 0 : ns, std::memory_order_relaxed);
}

// Tells the core this is a spin-wait loop (lets the sibling hyper-thread run, saves power).
inline void Relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Polls ready() until it returns true or budget_ns passed (the clock is read every 64 polls).
// After the first 256 polls (a few microseconds) it also yields the CPU every 64 polls: with
// more spinning waiters than cores, a spinner must not keep the thread that would make its
// condition true (or another waiter about to be woken) off the CPU. Returns the last result
// of ready().
template <class Ready>
bool Until(Ready&& ready, int64_t budget_ns) {
  if (ready()) return true;
  if (budget_ns <= 0) return false;
  const auto end = std::chrono::steady_clock::now() + std::chrono::nanoseconds(budget_ns);
  for (uint32_t i = 1;; ++i) {
    Relax();
    if (ready()) return true;
    if ((i & 63) == 0) {
      if (std::chrono::steady_clock::now() >= end) return false;
      if (i >= 256) sched_yield();
    }
  }
}

// One waiter's adaptive policy: spin while spins pay off; after kMaxMisses spins in a row that
// ended without the data, spin only on every kProbeEvery-th wait (to notice the stream speeding
// up again). Not thread-safe: one per waiting object.
class Adaptive {
 public:
  // Returns the budget for this wait: BudgetNs(), or 0 (park at once).
  int64_t budget() {
    if (misses_ < kMaxMisses) return BudgetNs();
    return (++skipped_ % kProbeEvery == 0) ? BudgetNs() : 0;
  }
  // Records whether the spin of this wait (if any) caught the data.
  void record(bool caught) {
    if (caught) {
      misses_ = 0;
      skipped_ = 0;
    } else if (misses_ < kMaxMisses) {
      ++misses_;
    }
  }

 private:
  static constexpr uint32_t kMaxMisses = 4;
  static constexpr uint32_t kProbeEvery = 16;
  uint32_t misses_ = 0;
  uint32_t skipped_ = 0;
};

}  // namespace cuframes::spin

#endif  // CUFRAMES_REFERENCE_SRC_SPIN_H_
