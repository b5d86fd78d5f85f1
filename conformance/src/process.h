// process.h: adapter processes started with posix_spawn and watched through their JSON-lines
// stdout (spec/ADAPTER.md).
//
// The harness has threads, so it never forks: posix_spawn starts each adapter as a fresh process
// in its own process group. Every wait is a poll() on the stdout pipe and a pidfd with a
// deadline; nothing sleeps to synchronize.
#ifndef CUFRAMES_CONFORMANCE_SRC_PROCESS_H_
#define CUFRAMES_CONFORMANCE_SRC_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cuframes::conform {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// Returns now + `ms` milliseconds.
inline Deadline In(int64_t ms) {
  return Clock::now() + std::chrono::milliseconds(ms);
}
// Returns the milliseconds left until `d` (0 when passed), capped at `cap`.
int MsLeft(Deadline d, int cap = 1 << 30);

class Process {
 public:
  // Starts argv[0] (searched in PATH when it has no '/') with the current environment plus `env`
  // (an entry without a value removes that variable); stdout is a pipe the harness reads, stderr
  // goes to `stderr_path`, stdin is /dev/null. Returns nullptr and sets *error when posix_spawn
  // fails.
  static std::unique_ptr<Process> Spawn(
      const std::vector<std::string>& argv,
      const std::map<std::string, std::optional<std::string>>& env, const std::string& stderr_path,
      std::string* error);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Reads whatever stdout holds and reaps the process if it exited, waiting at most `timeout_ms`
  // for something to happen. Returns true if anything new was seen.
  bool Pump(int timeout_ms);

  // Waits until an event whose "event" member equals `name` appears at index >= *from, the
  // process exits (and its stdout is drained) or `deadline` passes. Returns the event or nullptr;
  // on success *from is set past it.
  const nlohmann::json* WaitEvent(std::string_view name, Deadline deadline, size_t* from);
  // Same, for any event satisfying `pred`.
  const nlohmann::json* WaitFor(const std::function<bool(const nlohmann::json&)>& pred,
                                Deadline deadline, size_t* from);

  // Waits for the process to exit and its stdout to reach EOF. Returns true if it exited.
  bool WaitExit(Deadline deadline);
  // SIGTERM, wait up to `grace_ms`, then SIGKILL the process group. Returns true if the process
  // exited within the grace period (a clean shutdown), false if it had to be killed.
  bool Terminate(int grace_ms);
  void Kill();

  bool running() const { return running_; }
  // Exit status (0..255) once exited normally; -1 while running or when killed by a signal.
  int exit_code() const { return exit_code_; }
  int term_signal() const { return term_signal_; }
  pid_t pid() const { return pid_; }
  const std::vector<nlohmann::json>& events() const { return events_; }
  // Lines of stdout that are not JSON objects (a contract violation worth showing).
  const std::vector<std::string>& bad_lines() const { return bad_lines_; }
  // Returns the command line, shell-quoted.
  const std::string& command_line() const { return command_line_; }
  // Returns the last `max` bytes of the stderr file.
  std::string StderrTail(size_t max = 2000) const;
  // Returns "exit 3", "signal 9" or "running".
  std::string StatusText() const;
  // Returns the last `n` stdout lines (for evidence).
  std::string StdoutTail(size_t n = 12) const;

 private:
  Process() = default;
  void Reap(bool block);
  void ReadLines();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int pid_fd_ = -1;
  bool running_ = false;
  bool out_eof_ = false;
  int exit_code_ = -1;
  int term_signal_ = 0;
  std::string partial_;
  std::vector<std::string> lines_;
  std::vector<nlohmann::json> events_;
  std::vector<std::string> bad_lines_;
  std::string stderr_path_;
  std::string command_line_;
};

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_PROCESS_H_
