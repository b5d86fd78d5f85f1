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
//   seq_load / seq_store                                           seqlock data words
//   fence_acquire / fence_release / fence_seq_cst                  std::atomic_thread_fence
//   copy_from_shared / copy_to_shared                              bulk payload copies for
//                                                                  seqlocks (seq_load/seq_store)
//   futex_wait / futex_wake_all                                    shared (not private) futexes
//   futex_wait_bitset / futex_wake_bitset                          the same, for SHM-WAKE-01
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
// Seqlock recipe (spec 10, "seqlock"): the writer stores the count odd (seq_store),
// fence_release, writes the data with seq_store/copy_to_shared, then store_release(count even).
// The reader does load_acquire(count), copies with seq_load/copy_from_shared, fence_acquire, then
// load_relaxed(count) again and discards the copy if it changed.
//
// ThreadSanitizer builds (CUFRAMES_TSAN). TSan does not model standalone fences: it would see
// the fence-based seqlock as relaxed accesses with no ordering between them, and GCC 13 refuses
// to compile std::atomic_thread_fence under -fsanitize=thread at all (-Werror=tsan). So in those
// builds, and only there, the seqlock is written the way the C++ memory model allows without
// fences (Boehm, "Can seqlocks get along with programming language memory models?", 2012):
// seq_store is a release store and seq_load an acquire load, which subsumes what the fences give
// (a release fence followed by relaxed stores orders less than release stores do; relaxed loads
// followed by an acquire fence order less than acquire loads do), and fence_acquire/fence_release
// become no-ops. TSan models acquire/release exactly, so the happens-before edges it sees are the
// ones the algorithm relies on: a reader that uses a copy without the second count check uses
// values from an unfinished write section, which fuzz/properties/seqlock_tsan_probe.cpp shows
// TSan reports. Production builds keep the cheaper fence-based code (on x86-64 both fences are
// free and the loads/stores are plain moves either way; on AArch64 the fences save an ldar/stlr
// per word). Plain load_relaxed/store_relaxed stay relaxed in every build: upgrading them would
// add happens-before edges the production code does not have and hide real races from TSan.
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

// CUFRAMES_TSAN: 1 when this translation unit is built with ThreadSanitizer (GCC defines
// __SANITIZE_THREAD__; clang only answers __has_feature(thread_sanitizer)).
#if !defined(CUFRAMES_TSAN)
#if defined(__SANITIZE_THREAD__)
#define CUFRAMES_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CUFRAMES_TSAN 1
#endif
#endif
#endif
#if !defined(CUFRAMES_TSAN)
#define CUFRAMES_TSAN 0
#endif

namespace cuframes::mem {

// The orders of seqlock data accesses (see "ThreadSanitizer builds" above).
inline constexpr std::memory_order kSeqLoadOrder =
    CUFRAMES_TSAN ? std::memory_order_acquire : std::memory_order_relaxed;
inline constexpr std::memory_order kSeqStoreOrder =
    CUFRAMES_TSAN ? std::memory_order_release : std::memory_order_relaxed;

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

// Returns *p inside a seqlock read section: relaxed (acquire in TSan builds). Never torn; the
// caller validates it with fence_acquire and the second count check.
template <SharedWord T>
inline T seq_load(const T* p) noexcept {
  return detail::ref(p).load(kSeqLoadOrder);
}

// Stores v to *p inside a seqlock write section (count odd, after fence_release): relaxed
// (release in TSan builds).
template <SharedWord T>
inline void seq_store(T* p, T v) noexcept {
  detail::ref(p).store(v, kSeqStoreOrder);
}

// If *p == *expected, stores desired and returns true; otherwise stores the current value to
// *expected and returns false (acq_rel on success, acquire on failure).
template <SharedWord T>
inline bool compare_exchange(T* p, T* expected, T desired) noexcept {
  return detail::ref(p).compare_exchange_strong(*expected, desired, std::memory_order_acq_rel,
                                                std::memory_order_acquire);
}

#if CUFRAMES_TSAN
namespace detail {
// The one fence a TSan build still issues (fence_seq_cst), from a function TSan does not
// instrument: GCC 13 rejects an instrumented fence (-Werror=tsan), and TSan would not model it
// anyway. noinline keeps it out of instrumented callers (GCC and clang also refuse to inline
// across a sanitizer-attribute mismatch).
__attribute__((noinline, no_sanitize("thread"))) inline void hardware_fence_seq_cst() noexcept {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}
}  // namespace detail
#endif

// Loads before the fence are ordered before loads/stores after it (seqlock reader, after the
// copy). TSan builds: nothing to do, every seq_load is an acquire load.
inline void fence_acquire() noexcept {
#if !CUFRAMES_TSAN
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}
// Loads/stores before the fence are ordered before stores after it (seqlock writer, after the
// count goes odd). TSan builds: nothing to do, every seq_store is a release store.
inline void fence_release() noexcept {
#if !CUFRAMES_TSAN
  std::atomic_thread_fence(std::memory_order_release);
#endif
}
// Full barrier, for store-then-load handshakes (e.g. "set waiting flag, then re-check"). Those
// handshakes only decide whether a FUTEX_WAKE is issued (a lost one costs a bounded wait, never a
// wrong value: the data itself is published by release/acquire pairs TSan sees), which is
// liveness, not a data race, so TSan has nothing to check here. TSan builds still need the real
// barrier at run time, so it comes from an uninstrumented helper.
inline void fence_seq_cst() noexcept {
#if CUFRAMES_TSAN
  detail::hardware_fence_seq_cst();
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// Copies n bytes from shared memory `src` to private memory `dst` with seq_load atomic loads:
// 8-byte words where `src` is 8-aligned, single bytes at the unaligned head and the tail. The
// copy may observe concurrent writes (it is then torn); the caller detects that with a seqlock.
// `dst` may have any alignment; the ranges must not overlap.
inline void copy_from_shared(void* dst, const void* src, size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  while (n > 0 && (reinterpret_cast<uintptr_t>(s) & 7u) != 0) {
    *d++ = detail::ref(s++).load(kSeqLoadOrder);
    --n;
  }
  const auto* w = reinterpret_cast<const uint64_t*>(s);
  // 32 bytes per iteration, unrolled by hand: independent loads, each stored straight to dst
  // (staging them in an array makes the compiler spill and reload through the stack).
  for (; n >= 32; n -= 32, w += 4, d += 32) {
    const uint64_t v0 = seq_load(w);
    const uint64_t v1 = seq_load(w + 1);
    const uint64_t v2 = seq_load(w + 2);
    const uint64_t v3 = seq_load(w + 3);
    std::memcpy(d, &v0, 8);
    std::memcpy(d + 8, &v1, 8);
    std::memcpy(d + 16, &v2, 8);
    std::memcpy(d + 24, &v3, 8);
  }
  for (; n >= 8; n -= 8, ++w, d += 8) {
    const uint64_t v = seq_load(w);
    std::memcpy(d, &v, 8);
  }
  s = reinterpret_cast<const unsigned char*>(w);
  while (n > 0) {
    *d++ = detail::ref(s++).load(kSeqLoadOrder);
    --n;
  }
}

// Copies n bytes from private memory `src` to shared memory `dst` with seq_store atomic stores
// (8-byte words where `dst` is 8-aligned, single bytes elsewhere). `src` may have any alignment;
// the ranges must not overlap. Readers of `dst` must be ordered by the caller (seqlock).
inline void copy_to_shared(void* dst, const void* src, size_t n) noexcept {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  while (n > 0 && (reinterpret_cast<uintptr_t>(d) & 7u) != 0) {
    detail::ref(d++).store(*s++, kSeqStoreOrder);
    --n;
  }
  auto* w = reinterpret_cast<uint64_t*>(d);
  for (; n >= 32; n -= 32, w += 4, s += 32) {
    uint64_t v0, v1, v2, v3;
    std::memcpy(&v0, s, 8);
    std::memcpy(&v1, s + 8, 8);
    std::memcpy(&v2, s + 16, 8);
    std::memcpy(&v3, s + 24, 8);
    seq_store(w, v0);
    seq_store(w + 1, v1);
    seq_store(w + 2, v2);
    seq_store(w + 3, v3);
  }
  for (; n >= 8; n -= 8, ++w, s += 8) {
    uint64_t v;
    std::memcpy(&v, s, 8);
    seq_store(w, v);
  }
  d = reinterpret_cast<unsigned char*>(w);
  while (n > 0) {
    detail::ref(d++).store(*s++, kSeqStoreOrder);
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

// futex_wait with a wake-up bitset (FUTEX_WAIT_BITSET): only a FUTEX_WAKE_BITSET whose bitset
// shares a bit with `bits`, or a plain FUTEX_WAKE (which matches every bit), wakes it. Same
// return values as futex_wait. The kernel takes an absolute CLOCK_MONOTONIC deadline here.
inline int futex_wait_bitset(uint32_t* addr, uint32_t expected, int64_t timeout_ns,
                             uint32_t bits) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (timeout_ns >= 0) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const int64_t ns = ts.tv_nsec + timeout_ns % 1000000000;
    ts.tv_sec += static_cast<time_t>(timeout_ns / 1000000000 + ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    tsp = &ts;
  }
  const long rc = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, tsp, nullptr, bits);
  return rc == 0 ? 0 : errno;
}

// Wakes up to `count` waiters on the shared futex at addr whose wait bitset shares a bit with
// `bits` (plain FUTEX_WAIT waiters match any). Returns the number woken, or -errno.
inline int futex_wake_bitset(uint32_t* addr, int count, uint32_t bits) noexcept {
  const long rc = syscall(SYS_futex, addr, FUTEX_WAKE_BITSET, count, nullptr, nullptr, bits);
  return rc >= 0 ? static_cast<int>(rc) : -errno;
}

// Wakes every waiter on the shared futex at addr. Returns the number woken, or -errno.
inline int futex_wake_all(uint32_t* addr) noexcept {
  const long rc = syscall(SYS_futex, addr, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
  return rc >= 0 ? static_cast<int>(rc) : -errno;
}

}  // namespace cuframes::mem

#endif  // CUFRAMES_REFERENCE_SRC_MEM_ORDER_H_
