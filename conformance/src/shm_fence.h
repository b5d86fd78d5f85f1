// shm_fence.h: the release fence of the harness's scripted writers (peers.cc, suites/cuda.cc),
// which write records into shared memory that only another process (the IUT) reads.
//
// The harness never includes the reference's headers (mem_order.h), so it has its own. In a
// ThreadSanitizer build the fence is issued from a function TSan does not instrument: GCC 13
// rejects an instrumented std::atomic_thread_fence under -fsanitize=thread (-Werror=tsan), and
// TSan would not model it anyway. Nothing is lost: the memory these fences order is read by
// another process, which TSan cannot observe at all, while the fence still orders the stores
// on the hardware, which is what the IUT relies on.
#ifndef CUFRAMES_CONFORMANCE_SRC_SHM_FENCE_H_
#define CUFRAMES_CONFORMANCE_SRC_SHM_FENCE_H_

#include <atomic>

#if defined(__SANITIZE_THREAD__)
#define CUFRAMES_CONFORM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CUFRAMES_CONFORM_TSAN 1
#endif
#endif

namespace cuframes::conform {

#if defined(CUFRAMES_CONFORM_TSAN)
// noinline: GCC and clang never inline across a sanitizer-attribute mismatch, and this makes it
// explicit.
__attribute__((noinline, no_sanitize("thread"))) inline void ShmReleaseFence() noexcept {
  __atomic_thread_fence(__ATOMIC_RELEASE);
}
#else
// Stores before the fence become visible to another process before stores after it (a
// seqlock writer: the odd lock before the record's fields).
inline void ShmReleaseFence() noexcept {
  std::atomic_thread_fence(std::memory_order_release);
}
#endif

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_SHM_FENCE_H_
