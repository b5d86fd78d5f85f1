// fuzz_common.h: helpers shared by the libFuzzer targets of fuzz/ (and by their gcc replay
// builds): a bounds-checked reader over the fuzzer's bytes, little-endian field access, the
// FUZZ_CHECK / FUZZ_KNOWN_BUG assertions, and the fast clock that keeps the reference's bounded
// seqlock spins (SEQLOCK_SPIN_LIMIT_MS = 100 ms of steady_clock) from costing real time.
//
// A failed check prints what was expected and why, then abort()s: libFuzzer records the input as
// a crash, and the replay runner (replay_main.cpp) exits non-zero.
#ifndef CUFRAMES_FUZZ_FUZZ_COMMON_H_
#define CUFRAMES_FUZZ_FUZZ_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "status.h"

// Aborts with a message when `cond` is false. The format arguments describe the evidence.
#define FUZZ_CHECK(cond, ...)                                                                   \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s\n  at %s:%d\n  ", #cond, __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                                                        \
      std::fputc('\n', stderr);                                                                 \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)

// Like FUZZ_CHECK, for a spec violation of the reference that has been reported but not fixed
// yet: `id` is listed in fuzz/known_bugs.txt (see fuzz/README.md, "Known bugs"). A listed bug is
// counted (KnownBugHit) instead of aborting, so that fuzzing and CI look past it; a bug that is
// not listed, or any bug when CUFRAMES_FUZZ_SKIP_KNOWN="" (strict), aborts like FUZZ_CHECK. The
// environment variable CUFRAMES_FUZZ_SKIP_KNOWN ("all" or a comma-separated list of ids)
// replaces the list compiled in from known_bugs.txt.
#define FUZZ_KNOWN_BUG(id, cond, ...)                                                    \
  do {                                                                                   \
    if (!(cond) && !::cuframes::fuzz::SkipKnownBug(id)) {                                \
      std::fprintf(stderr, "FUZZ_KNOWN_BUG %s: %s\n  at %s:%d\n  ", id, #cond, __FILE__, \
                   __LINE__);                                                            \
      std::fprintf(stderr, __VA_ARGS__);                                                 \
      std::fputc('\n', stderr);                                                          \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

namespace cuframes::fuzz {

// Returns true (and records a hit) if the known-bug list names `id`: CUFRAMES_FUZZ_SKIP_KNOWN
// when set ("all" or a comma-separated list), else the ids of fuzz/known_bugs.txt compiled in.
bool SkipKnownBug(const char* id);
// Returns true if `id` is on the known-bug list in force.
bool IsKnownBug(const char* id);
// Returns true if FUZZ_KNOWN_BUG(id, ...) fired (and was skipped) since the last reset.
bool KnownBugHit(const char* id);
void ResetKnownBugHits();

// While enabled on the calling thread, every clock_gettime(CLOCK_MONOTONIC) call made by this
// thread returns 10 ms more than the previous one (on top of the real clock), so a bounded spin
// of the reference ends after a few iterations instead of 100 ms of real time. Returns the
// number of fast clock readings made by this thread so far.
void SetFastClock(bool on);
uint64_t FastClockReadings();

// RAII for SetFastClock.
class FastClockScope {
 public:
  FastClockScope() { SetFastClock(true); }
  ~FastClockScope() { SetFastClock(false); }
  FastClockScope(const FastClockScope&) = delete;
  FastClockScope& operator=(const FastClockScope&) = delete;
};

// Helpers compiled without coverage instrumentation (fuzz_common.cpp), for the byte loops that
// would otherwise dominate a target's run time: equality of n bytes (true for n == 0, any
// pointers); PayloadByte() of ring_model.h for packet `seq` over n bytes (fill, or compare).
bool SameBytes(const uint8_t* a, const uint8_t* b, size_t n);
void FillPayload(uint64_t seq, uint8_t* out, size_t n);
bool PayloadMatches(uint64_t seq, const uint8_t* p, size_t n);

// Little-endian loads and stores at explicit offsets; callers check bounds.
inline uint64_t LoadLe(const uint8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;)
    v = (v << 8) | p[i];
  return v;
}
inline void StoreLe(uint8_t* p, uint64_t v, size_t n) {
  for (size_t i = 0; i < n; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Consumes the fuzzer's bytes from the front; every read past the end yields zeros, so a target
// never reads outside its input.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  size_t remaining() const { return size_ - pos_; }
  bool empty() const { return pos_ >= size_; }

  // Returns the next n bytes (n <= 8) as a little-endian integer; missing bytes read as zero.
  uint64_t Int(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t b = pos_ < size_ ? data_[pos_++] : 0;
      v |= b << (8 * i);
    }
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(Int(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Int(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Int(4)); }
  uint64_t U64() { return Int(8); }
  bool Bool() { return (U8() & 1) != 0; }

  // Returns up to n bytes (fewer at the end of the input).
  std::span<const uint8_t> Take(size_t n) {
    const size_t k = n < remaining() ? n : remaining();
    std::span<const uint8_t> s(data_ + pos_, k);
    pos_ += k;
    return s;
  }
  // Returns everything not consumed yet.
  std::span<const uint8_t> Rest() { return Take(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A small deterministic PRNG (splitmix64) for choices derived from one seed byte.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Returns a value in [lo, hi].
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Next() % (hi - lo + 1); }

 private:
  uint64_t s_;
};

// Detects writes to a memory range: Take() copies it, Unchanged() compares (memcpy/memcmp).
class Snapshot {
 public:
  void Take(const uint8_t* p, size_t n) {
    p_ = p;
    copy_.assign(p, p + n);
  }
  bool Unchanged() const { return SameBytes(p_, copy_.data(), copy_.size()); }

 private:
  const uint8_t* p_ = nullptr;
  std::vector<uint8_t> copy_;
};

// Returns true if `s` is a code of the spec's error table (0..25).
inline bool IsDefinedStatus(Status s) {
  return static_cast<uint32_t>(s) <= kMaxStatusValue;
}

}  // namespace cuframes::fuzz

#endif  // CUFRAMES_FUZZ_FUZZ_COMMON_H_
