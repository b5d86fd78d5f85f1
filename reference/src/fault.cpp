// fault.cpp: see fault.h.
#include "fault.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace cuframes::fault {

std::atomic<uint8_t> g_mode{0};

namespace {

Spec g_spec;
std::atomic<uint64_t> g_hits{0};
std::mutex g_init_mu;

void WriteAll(const char* s, size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

// Reads CUFRAMES_FAULT once; sets g_mode to 1 (off) or 2 (armed).
void Init() noexcept {
  std::lock_guard<std::mutex> lock(g_init_mu);
  if (g_mode.load(std::memory_order_acquire) != 0) return;
  const char* env = std::getenv("CUFRAMES_FAULT");
  Spec spec;
  uint8_t mode = 1;
  if (env != nullptr && env[0] != '\0') {
    if (Parse(env, &spec)) {
      g_spec = spec;
      mode = 2;
    } else {
      char line[256];
      const int n = std::snprintf(line, sizeof(line),
                                  "cuframes: CUFRAMES_FAULT=\"%.160s\" names no fault point of "
                                  "fault.h (<point>[:<nth>[:kill|stop]]); none armed\n",
                                  env);
      if (n > 0) WriteAll(line, std::min(static_cast<size_t>(n), sizeof(line) - 1));
    }
  }
  g_mode.store(mode, std::memory_order_release);
}

}  // namespace

bool Parse(std::string_view value, Spec* out) {
  Spec s;
  const size_t c1 = value.find(':');
  const std::string_view name = value.substr(0, c1);
  bool found = false;
  for (size_t i = 0; i < kFaultPointCount; ++i) {
    if (kFaultPoints[i].name == name) {
      s.index = i;
      found = true;
      break;
    }
  }
  if (!found) return false;
  if (c1 != std::string_view::npos) {
    std::string_view rest = value.substr(c1 + 1);
    const size_t c2 = rest.find(':');
    const std::string_view nth = rest.substr(0, c2);
    if (nth.empty() || nth.size() > 18) return false;
    uint64_t v = 0;
    for (char ch : nth) {
      if (ch < '0' || ch > '9') return false;
      v = v * 10 + static_cast<uint64_t>(ch - '0');
    }
    if (v == 0) return false;
    s.nth = v;
    if (c2 != std::string_view::npos) {
      const std::string_view action = rest.substr(c2 + 1);
      if (action == "kill") {
        s.action = Action::kKill;
      } else if (action == "stop") {
        s.action = Action::kStop;
      } else {
        return false;
      }
    }
  }
  *out = s;
  return true;
}

void HitSlow(size_t index) noexcept {
  if (g_mode.load(std::memory_order_acquire) == 0) Init();
  if (g_mode.load(std::memory_order_acquire) != 2 || index != g_spec.index) return;
  const uint64_t hit = g_hits.fetch_add(1, std::memory_order_relaxed) + 1;
  if (hit != g_spec.nth) return;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto t_ns = static_cast<unsigned long long>(ts.tv_sec) * 1000000000ull +
                    static_cast<unsigned long long>(ts.tv_nsec);
  const std::string_view name = kFaultPoints[index].name;
  const char* action = g_spec.action == Action::kStop ? "stop" : "kill";
  char line[256];
  const int n = std::snprintf(
      line, sizeof(line),
      "{\"event\":\"fault\",\"point\":\"%.*s\",\"nth\":%llu,\"action\":\"%s\",\"pid\":%d,"
      "\"t_ns\":%llu}\n",
      static_cast<int>(name.size()), name.data(), static_cast<unsigned long long>(hit), action,
      static_cast<int>(::getpid()), t_ns);
  if (n > 0) WriteAll(line, std::min(static_cast<size_t>(n), sizeof(line) - 1));
  if (g_spec.action == Action::kStop) {
    ::raise(SIGSTOP);  // resumes here after SIGCONT
    return;
  }
  ::raise(SIGKILL);
  ::_exit(137);  // not reached: SIGKILL cannot be caught
}

uint64_t ArmedHits() noexcept {
  if (g_mode.load(std::memory_order_acquire) == 0) Init();
  return g_mode.load(std::memory_order_acquire) == 2 ? g_hits.load(std::memory_order_relaxed) : 0;
}

void ResetForTest() noexcept {
  std::lock_guard<std::mutex> lock(g_init_mu);
  g_mode.store(0, std::memory_order_release);
  g_hits.store(0, std::memory_order_relaxed);
  g_spec = Spec{};
}

}  // namespace cuframes::fault
