// inject_selftest.cc: the injection library's CPU-side parts, run for real without a GPU
// (ctest conformance_inject_selftest, which starts this program with the library LD_PRELOADed
// and CUFRAMES_INJECT_LOG_DIR set).
//
// It accepts and closes a Unix-socket connection (the preloaded accept/close wrappers), calls
// InitializeInjection as the driver would (CUPTI refuses without a driver; the init line says
// so), forks a child that exits at once (the fork handlers), then reads its own log back with the
// harness's parser (conformance/src/inject_log.h) and checks every line and verdict. Exit 0 when
// all hold, 1 with the reason otherwise.
#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "inject_log.h"

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  failures += ok ? 0 : 1;
}

}  // namespace

int main() {
  namespace inject = cuframes::conform::inject;
  const char* dir = std::getenv("CUFRAMES_INJECT_LOG_DIR");
  auto init = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "InitializeInjection"));
  if (dir == nullptr || init == nullptr) {
    std::fprintf(stderr,
                 "inject_selftest: run with LD_PRELOAD=libcuframes_inject.so and "
                 "CUFRAMES_INJECT_LOG_DIR set\n");
    return 1;
  }
  // Before the first logged call: a fresh directory.
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);

  // A Unix-socket connection accepted and closed; a plain descriptor closed (not logged).
  // In /tmp: the log directory may be longer than a socket path can be.
  const std::string path = "/tmp/cuframes-inject-selftest-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof addr.sun_path - 1);
  const int listener = socket(AF_UNIX, SOCK_STREAM, 0);
  const int client = socket(AF_UNIX, SOCK_STREAM, 0);
  const bool connected = bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                         listen(listener, 1) == 0 &&
                         connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  const int conn = connected ? accept4(listener, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  Check(conn >= 0, "a Unix-socket connection accepted");
  close(conn);
  close(client);
  close(listener);
  unlink(path.c_str());

  Check(init() == 1, "InitializeInjection returns 1 (success) even when CUPTI refuses");
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);

  const auto logs = inject::ReadLogs(dir);
  Check(logs.size() == 1,
        "one log file (the child writes into its parent's): " + std::to_string(logs.size()));
  if (logs.empty()) return 1;
  const inject::ProcessLog& log = logs.front();
  Check(log.pid == static_cast<uint64_t>(getpid()), "the file is named after our pid");
  Check(log.bad_lines == 0 && !log.cut_tail, "every line is a whole JSON object with \"ev\"");
  Check(log.Cupti() >= 0, "an init line with CUPTI's answer (" + std::to_string(log.Cupti()) +
                              "; non-zero here without a driver)");
  std::string evs;
  for (const auto& r : log.records)
    evs += (evs.empty() ? "" : " ") + r.ev;
  Check(evs == "accept conn_close init fork fork_child",
        "the lines in order: accept conn_close init fork fork_child (got: " + evs + ")");
  size_t accepts = 0;
  Check(inject::JudgeFreesAfterCloses(log, &accepts).empty() && accepts == 1,
        "one accepted connection, closed, no free judged");
  const auto forks = inject::JudgeForks(log);
  Check(forks.size() == 2 && forks[0].req == "RES-CUDA-04", "the fork found under RES-CUDA-04");
  for (const auto& r : log.records) {
    if (r.ev == "fork_child") {
      Check(r.pid == static_cast<uint64_t>(child) && r.U("ppid") == static_cast<uint64_t>(getpid()),
            "the child's line carries its own pid and ours as ppid");
    }
  }
  return failures == 0 ? 0 : 1;
}
