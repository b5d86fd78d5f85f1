// mem_order.h: every memory-ordering primitive the reference uses on shared memory, in one place
// (the role liburing's barrier.h plays there).
//
// Shared memory is mapped by processes we do not trust, so every access to it is formally
// race-free: a field that another process may write concurrently is only ever read or written
// through these helpers, which wrap std::atomic_ref. Plain loads/stores of shared fields, casts to
// std::atomic<T>*, and `volatile` are not used anywhere else.
//
//   load_acquire / load_relaxed / store_release / store_relaxed   u32, u64, i64 fields
//   fetch_add / compare_exchange                                   read-modify-write (acq_rel)
//   fetch_add_seq_cst / load_seq_cst                               waiter counts (SHM-ORDER-02/04)
//   fence_acquire / fence_release / fence_seq_cst                  std::atomic_thread_fence
//   copy_from_shared / copy_to_shared                              bulk payload copies for
//                                                                  seqlocks (relaxed atomics)
//   futex_wait / futex_wake_all                                    shared (not private) futexes
//
// Waiter-count recipe (spec 2.7, SHM-ORDER-02 and SHM-ORDER-04), a Dekker handshake in which
// both sides use sequentially consistent operations:
//   writer: store the data (release); fetch_add_seq_cst(futex word, 1);
//           if (load_seq_cst(waiter count) != 0) futex_wake_all(futex word)
//   waiter: w = load_acquire(futex word); fetch_add_seq_cst(count, 1); re-check the condition;
//           futex_wait(futex word, w, <= PEER_DEATH_DETECT_MS); fetch_add_seq_cst(count, -1)
// Either the writer's load sees the waiter's increment (and wakes it), or the waiter's increment
// comes later in the single seq_cst order, after the writer's futex increment: then the futex word
// no longer equals w and FUTEX_WAIT returns at once. The count is written by untrusted peers, so
// waits stay bounded anyway.
//
// Every pointer passed to the scalar helpers must be naturally aligned (the layouts guarantee it:
// structs in shared memory start at 64-byte aligned offsets of a page-aligned mapping).
//
// Seqlock recipe (spec 10, "seqlock"): the writer stores the count odd (relaxed), fence_release,
// writes the data with store_relaxed/copy_to_shared, then store_release(count even). The reader
// does load_acquire(count), copies with load_relaxed/copy_from_shared, fence_acquire, then
// load_relaxed(count) again and discards the copy if it changed.
#ifndef CUFRAMES_REFERENCE_SRC_MEM_ORDER_H_
#define CUFRAMES_REFERENCE_SRC_MEM_ORDER_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <type_traits>

namespace cuframes::mem {

// The scalar types the helpers accept: 4- and 8-byte integers (lock-free on every target we build).
template <class T>
concept SharedWord = std::is_integral_v<T> &&(sizeof(T) == 4 || sizeof(T) == 8);

namespace detail {
// std::atomic_ref<const T> is C++26; a load through atomic_ref<T> never writes (on x86-64 and
// AArch64 a 4/8-byte atomic load is a plain load), so read-only mappings are fine.
template <class T>
inline std::atomic_ref<T> ref(const T* p) noexcept {
  static_assert(std::atomic_ref<T>::is_always_lock_free);
  return std::atomic_ref<T>(*const_cast<T*>(p));
}
}  // namespace detail

// Returns *p, with acquire order: memory operations after it are not moved before it.
template <SharedWord T>
inline T load_acquire(const T* p) noexcept {
  return detail::ref(p).load(std::memory_order_acquire);
}

// Returns *p with no ordering (an atomic read that is never torn).
template <SharedWord T>
inline T load_relaxed(const T* p) noexcept {
  return detail::ref(p).load(std::memory_order_relaxed);
}

// Stores v to *p, with release order: memory operations before it are visible to whoever
// acquires the value.
template <SharedWord T>
inline void store_release(T* p, T v) noexcept {
  detail::ref(p).store(v, std::memory_order_release);
}

// Stores v to *p with no ordering.
template <SharedWord T>
inline void store_relaxed(T* p, T v) noexcept {
  detail::ref(p).store(v, std::memory_order_relaxed);
}

// Adds v to *p (acq_rel); returns the previous value.
template <SharedWord T>
inline T fetch_add(T* p, T v) noexcept {
  return detail::ref(p).fetch_add(v, std::memory_order_acq_rel);
}

// Adds v to *p, sequentially consistent (a full barrier on every target); returns the previous
// value. Unsigned wrap-around is well defined: pass uint32_t(-1) to decrement.
template <SharedWord T>
inline T fetch_add_seq_cst(T* p, T v) noexcept {
  return detail::ref(p).fetch_add(v, std::memory_order_seq_cst);
}

// Returns *p, sequentially consistent: ordered after every earlier seq_cst operation of this
// thread, including stores to other words (the "then re-check" half of a store-then-load
// handshake).
template <SharedWord T>
inline T load_seq_cst(const T* p) noexcept {
  return detail::ref(p).load(std::memory_order_seq_cst);
}

// If *p == *expected, stores desired and returns true; otherwise stores the current value to
// *expected and returns false (acq_rel on success, acquire on failure).
template <SharedWord T>
inline bool compare_exchange(T* p, T* expected, T desired) noexcept {
  return detail::ref(p).compare_exchange_strong(*expected, desired, std::memory_order_acq_rel,
                                                std::memory_order_acquire);
}

// GCC's -Wtsan warns that TSan does not model fences. Every shared access here is atomic, so TSan
// still sees no data race; it merely cannot check the fence-based orderings.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#define CUFRAMES_FENCE(order)                     \
  do {                                            \
    _Pragma("GCC diagnostic push");               \
    _Pragma("GCC diagnostic ignored \"-Wtsan\""); \
    std::atomic_thread_fence(order);              \
    _Pragma("GCC diagnostic pop");                \
  } while (0)
#else
#define CUFRAMES_FENCE(order) std::atomic_thread_fence(order)
#endif

// Loads before the fence are ordered before loads/stores after it (seqlock reader, after the copy).
inline void fence_acquire() noexcept {
  CUFRAMES_FENCE(std::memory_order_acquire);
}
// Loads/stores before the fence are ordered before stores after it (seqlock writer, after the
// count goes odd).
inline void fence_release() noexcept {
  CUFRAMES_FENCE(std::memory_order_release);
}
// Full barrier, for store-then-load handshakes (e.g. "set waiting flag, then re-check").
inline void fence_seq_cst() noexcept {
  CUFRAMES_FENCE(std::memory_order_seq_cst);
}

#undef CUFRAMES_FENCE

// Copies n bytes from shared memory `src` to private memory `dst` with relaxed atomic loads:
// 8-byte words where `src` is 8-aligned, single bytes at the unaligned head and the tail. The
// copy may observe concurrent writes (it is then torn); the caller detects that with a seqlock.
// `dst` may have any alignment; the ranges must not overlap.
inline void copy_from_shared(void* dst, const void* src, size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  while (n > 0 && (reinterpret_cast<uintptr_t>(s) & 7u) != 0) {
    *d++ = detail::ref(s++).load(std::memory_order_relaxed);
    --n;
  }
  const auto* w = reinterpret_cast<const uint64_t*>(s);
  // 32 bytes per iteration, unrolled by hand: independent loads, each stored straight to dst
  // (staging them in an array makes the compiler spill and reload through the stack).
  for (; n >= 32; n -= 32, w += 4, d += 32) {
    const uint64_t v0 = load_relaxed(w);
    const uint64_t v1 = load_relaxed(w + 1);
    const uint64_t v2 = load_relaxed(w + 2);
    const uint64_t v3 = load_relaxed(w + 3);
    std::memcpy(d, &v0, 8);
    std::memcpy(d + 8, &v1, 8);
    std::memcpy(d + 16, &v2, 8);
    std::memcpy(d + 24, &v3, 8);
  }
  for (; n >= 8; n -= 8, ++w, d += 8) {
    const uint64_t v = load_relaxed(w);
    std::memcpy(d, &v, 8);
  }
  s = reinterpret_cast<const unsigned char*>(w);
  while (n > 0) {
    *d++ = detail::ref(s++).load(std::memory_order_relaxed);
    --n;
  }
}

// Copies n bytes from private memory `src` to shared memory `dst` with relaxed atomic stores
// (8-byte words where `dst` is 8-aligned, single bytes elsewhere). `src` may have any alignment;
// the ranges must not overlap. Readers of `dst` must be ordered by the caller (seqlock).
inline void copy_to_shared(void* dst, const void* src, size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  while (n > 0 && (reinterpret_cast<uintptr_t>(d) & 7u) != 0) {
    detail::ref(d++).store(*s++, std::memory_order_relaxed);
    --n;
  }
  auto* w = reinterpret_cast<uint64_t*>(d);
  for (; n >= 32; n -= 32, w += 4, s += 32) {
    uint64_t v0, v1, v2, v3;
    std::memcpy(&v0, s, 8);
    std::memcpy(&v1, s + 8, 8);
    std::memcpy(&v2, s + 16, 8);
    std::memcpy(&v3, s + 24, 8);
    store_relaxed(w, v0);
    store_relaxed(w + 1, v1);
    store_relaxed(w + 2, v2);
    store_relaxed(w + 3, v3);
  }
  for (; n >= 8; n -= 8, ++w, s += 8) {
    uint64_t v;
    std::memcpy(&v, s, 8);
    store_relaxed(w, v);
  }
  d = reinterpret_cast<unsigned char*>(w);
  while (n > 0) {
    detail::ref(d++).store(*s++, std::memory_order_relaxed);
    --n;
  }
}

// Sleeps while *addr == expected, at most timeout_ns nanoseconds (negative: no limit), on a
// shared futex (works across processes mapping the same memory, including read-only mappings).
// Returns 0 when woken (possibly spuriously), EAGAIN when *addr != expected on entry, ETIMEDOUT
// when the timeout passed, EINTR when a signal interrupted the wait, or another errno on failure.
// Callers re-check their condition in a loop in every case.
inline int futex_wait(uint32_t* addr, uint32_t expected, int64_t timeout_ns) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    ts.tv_sec = static_cast<time_t>(timeout_ns / 1000000000);
    ts.tv_nsec = static_cast<long>(timeout_ns % 1000000000);
    tsp = &ts;
  }
  const long rc = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, nullptr, 0);
  return rc == 0 ? 0 : errno;
}

// Wakes every waiter on the shared futex at addr. Returns the number woken, or -errno.
inline int futex_wake_all(uint32_t* addr) noexcept {
  const long rc = syscall(SYS_futex, addr, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  return rc >= 0 ? static_cast<int>(rc) : -errno;
}

}  // namespace cuframes::mem

#endif  // CUFRAMES_REFERENCE_SRC_MEM_ORDER_H_
