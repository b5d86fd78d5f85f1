// bench_util.h: what the multi-process benchmarks share: a shared control page passed to a child
// by descriptor number, spawning this binary again as that child (posix_spawn, never fork: the
// parent may have threads and a CUDA context), futex signalling on the page, bounded waits for a
// child's exit, and latency percentiles.
//
// Every wait here is bounded; a benchmark that hits a bound reports an error (SkipWithError)
// instead of hanging. Nothing here sleeps to synchronize.
#ifndef CUFRAMES_BENCH_BENCH_UTIL_H_
#define CUFRAMES_BENCH_BENCH_UTIL_H_

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "mem_order.h"

extern char** environ;

namespace cuframes::bench {

using Clock = std::chrono::steady_clock;

// A page of shared memory backed by a memfd that a spawned child inherits (no O_CLOEXEC) and maps
// by descriptor number. Unmapped and closed on destruction.
class SharedPage {
 public:
  static constexpr size_t kSize = 4096;

  // Creates a fresh zeroed page (parent side). ok() tells whether it worked.
  SharedPage() {
    fd_ = static_cast<int>(syscall(SYS_memfd_create, "cuframes-bench", 0u));
    if (fd_ >= 0 && ftruncate(fd_, kSize) == 0) Map();
  }
  // Maps the page the parent passed as descriptor `fd` (child side).
  explicit SharedPage(int fd) : fd_(fd) { Map(); }
  ~SharedPage() {
    if (base_ != nullptr) munmap(base_, kSize);
    if (fd_ >= 0) close(fd_);
  }
  SharedPage(const SharedPage&) = delete;
  SharedPage& operator=(const SharedPage&) = delete;

  bool ok() const { return base_ != nullptr; }
  int fd() const { return fd_; }
  template <class T>
  T* as() const {
    static_assert(sizeof(T) <= kSize);
    return static_cast<T*>(base_);
  }

 private:
  void Map() {
    void* p = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    base_ = p == MAP_FAILED ? nullptr : p;
  }
  int fd_ = -1;
  void* base_ = nullptr;
};

// Starts this executable again with `args` (argv[1..]); returns its pid, or -1.
inline pid_t SpawnSelf(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  static char self[] = "cuframes-bench-child";
  argv.push_back(self);
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

// Waits at most timeout_ms for child `pid` to exit. Returns its wait status; on timeout (or an
// error) kills it with SIGKILL, reaps it and returns -1.
inline int WaitChild(pid_t pid, int timeout_ms) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    const int r = poll(&p, 1, timeout_ms);
    close(pidfd);
    if (r != 1) kill(pid, SIGKILL);
  } else {
    kill(pid, SIGKILL);  // no pidfd_open (Linux < 5.3): no bounded wait possible
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

// Returns true if a wait status means "exited with code 0".
inline bool ExitedOk(int status) {
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Stores v to *word (release) and wakes every waiter on it (a shared futex).
inline void Post(uint32_t* word, uint32_t v) {
  mem::store_release(word, v);
  mem::futex_wake_all(word);
}

// Waits until *word >= want (acquire), sleeping on the futex; at most timeout_ms. Returns the
// value seen, or 0 on timeout (callers post values >= 1).
inline uint32_t WaitAtLeast(uint32_t* word, uint32_t want, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    const uint32_t v = mem::load_acquire(word);
    if (v >= want) return v;
    const int64_t left =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
    if (left <= 0) return 0;
    mem::futex_wait(word, v, left);
  }
}

// Returns the q-quantile (0..1) of `v` (sorted in place), or 0 for an empty vector.
inline double Quantile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[i];
}

// Returns a cuframes key unique to this process and call.
inline std::string UniqueKey(const char* prefix) {
  static std::atomic<unsigned> counter{0};
  return std::string(prefix) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

inline double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace cuframes::bench

#endif  // CUFRAMES_BENCH_BENCH_UTIL_H_
