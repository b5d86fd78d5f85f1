// fuzz_common.cpp: the fast clock and the known-bug switch of fuzz_common.h.
//
// The fast clock interposes clock_gettime: the executable's definition takes precedence over
// libc's for every caller in the process, including libstdc++'s steady_clock::now(). It changes
// nothing unless the calling thread enabled it with SetFastClock(true).
#include "fuzz_common.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "known_bugs.h"
#include "ring_model.h"

namespace cuframes::fuzz {
namespace {

thread_local bool g_fast = false;
thread_local int64_t g_offset_ns = 0;
thread_local uint64_t g_readings = 0;
constexpr int64_t kStepNs = 10'000'000;  // 10 ms per reading

std::mutex g_hits_mu;
std::set<std::string>& Hits() {
  static std::set<std::string> hits;
  return hits;
}

}  // namespace

bool SameBytes(const uint8_t* a, const uint8_t* b, size_t n) {
  return n == 0 || std::memcmp(a, b, n) == 0;
}

void FillPayload(uint64_t seq, uint8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i)
    out[i] = PayloadByte(seq, i);
}

bool PayloadMatches(uint64_t seq, const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != PayloadByte(seq, i)) return false;
  }
  return true;
}

void SetFastClock(bool on) {
  g_fast = on;
}
uint64_t FastClockReadings() {
  return g_readings;
}

bool IsKnownBug(const char* id) {
  return IsKnownBug(std::string_view(id));
}

bool SkipKnownBug(const char* id) {
  if (!IsKnownBug(id)) return false;
  std::lock_guard<std::mutex> lock(g_hits_mu);
  Hits().insert(id);
  return true;
}

bool KnownBugHit(const char* id) {
  std::lock_guard<std::mutex> lock(g_hits_mu);
  return Hits().count(id) != 0;
}

void ResetKnownBugHits() {
  std::lock_guard<std::mutex> lock(g_hits_mu);
  Hits().clear();
}

}  // namespace cuframes::fuzz

extern "C" int clock_gettime(clockid_t clock, struct timespec* ts) {
  const long rc = syscall(SYS_clock_gettime, clock, ts);
  if (rc != 0) return -1;
  if (cuframes::fuzz::g_fast && (clock == CLOCK_MONOTONIC || clock == CLOCK_MONOTONIC_RAW)) {
    cuframes::fuzz::g_offset_ns += cuframes::fuzz::kStepNs;
    ++cuframes::fuzz::g_readings;
    const int64_t ns = static_cast<int64_t>(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec +
                       cuframes::fuzz::g_offset_ns;
    ts->tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts->tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  return 0;
}
