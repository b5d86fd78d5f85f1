// cli.cc: JSON-lines output and stop handling for cuframes-video (see cli.h).
#include "cli.h"

#include <signal.h>

#include <atomic>
#include <cstdio>
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
