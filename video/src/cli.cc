// cli.cc: argument parsing, JSON-lines output and stop handling for cuframes-video (see cli.h).
#include "cli.h"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "cuframes/cuframes.h"

namespace cuframes::video {

namespace {
std::mutex g_out;
std::atomic<bool> g_stop{false};
void OnStop(int) {
  g_stop.store(true);
}
}  // namespace

int ExitCodeFor(int status) {
  switch (status) {
    case CUFRAMES_OK:
      return kExitOk;
    case CUFRAMES_TIMEOUT:
    case CUFRAMES_AGAIN:
      return kExitTimeout;
    case CUFRAMES_INVALID_ARGUMENT:
      return kExitUsage;
    case CUFRAMES_UNSUPPORTED:
    case CUFRAMES_UNSUPPORTED_KIND:
      return kExitUnsupported;
    default:
      return kExitPeer;
  }
}

std::string Args::Str(const std::string& name, const std::string& def) const {
  const auto it = values.find(name);
  return it == values.end() ? def : it->second;
}

bool Args::U64(const std::string& name, uint64_t def, uint64_t lo, uint64_t hi,
               uint64_t* out) const {
  const auto it = values.find(name);
  if (it == values.end()) {
    *out = def;
    return true;
  }
  const std::string& v = it->second;
  if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  const unsigned long long x = std::strtoull(v.c_str(), nullptr, 10);
  if (errno != 0 || x < lo || x > hi) return false;
  *out = x;
  return true;
}

bool Args::Double(const std::string& name, double def, double* out) const {
  const auto it = values.find(name);
  if (it == values.end()) {
    *out = def;
    return true;
  }
  char* end = nullptr;
  const double x = std::strtod(it->second.c_str(), &end);
  if (end == it->second.c_str() || *end != '\0' || !std::isfinite(x) || x <= 0) return false;
  *out = x;
  return true;
}

bool ParseArgs(int argc, char** argv, int first, const std::vector<std::string>& options,
               const std::vector<std::string>& flags, Args* out) {
  auto listed = [](const std::vector<std::string>& v, const std::string& s) {
    for (const auto& x : v)
      if (x == s) return true;
    return false;
  };
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      out->positional.push_back(a);
      continue;
    }
    const std::string name = a.substr(2);
    if (listed(flags, name)) {
      out->values[name] = "1";
    } else if (listed(options, name)) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "cuframes-video: %s needs a value\n", a.c_str());
        return false;
      }
      out->values[name] = argv[++i];
    } else {
      std::fprintf(stderr, "cuframes-video: unknown option %s\n", a.c_str());
      return false;
    }
  }
  return true;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

void EmitJson(const std::string& body) {
  std::lock_guard<std::mutex> lock(g_out);
  std::fputs(("{" + body + "}\n").c_str(), stdout);
  std::fflush(stdout);
}

void EmitError(int status, const std::string& where, const std::string& extra) {
  EmitJson("\"event\":\"error\",\"code\":" + std::to_string(status) +
           ",\"name\":" + Quote(cuframes_status_name(status)) + ",\"where\":" + Quote(where) +
           (extra.empty() ? "" : "," + extra));
  std::fprintf(stderr, "cuframes-video: %s: %s (%s)\n", where.c_str(), cuframes_status_name(status),
               cuframes_strerror(status));
}

void InstallStopHandler() {
  struct sigaction sa = {};
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

bool StopRequested() {
  return g_stop.load();
}

void WaitStdinLine() {
  int ch = 0;
  while ((ch = std::getchar()) != EOF && ch != '\n') {}
}

}  // namespace cuframes::video
