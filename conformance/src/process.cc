#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace cuframes::conform {

int MsLeft(Deadline d, int cap) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(d - Clock::now());
  if (left.count() <= 0) return 0;
  return left.count() > cap ? cap : static_cast<int>(left.count());
}

namespace {

std::string Quote(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\"'\\$*?&;|<>(){}") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::unique_ptr<Process> Process::Spawn(
    const std::vector<std::string>& argv,
    const std::map<std::string, std::optional<std::string>>& env, const std::string& stderr_path,
    std::string* error) {
  if (argv.empty()) {
    *error = "empty command";
    return nullptr;
  }
  std::unique_ptr<Process> p(new Process());
  p->stderr_path_ = stderr_path;
  for (const std::string& a : argv) {
    p->command_line_ += (p->command_line_.empty() ? "" : " ") + Quote(a);
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe2: ") + std::strerror(errno);
    return nullptr;
  }
  // The environment: ours, with `env` overriding (or removing).
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) merged[std::string(*e, static_cast<size_t>(eq - *e))] = eq + 1;
  }
  for (const auto& [k, v] : env) {
    if (v) {
      merged[k] = *v;
    } else {
      merged.erase(k);
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged)
    env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& s : env_strings)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argvp;
  for (std::string& s : args)
    argvp.push_back(s.data());
  argvp.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group, so Terminate() reaches helpers the adapter may start; default signal
  // dispositions and an empty mask, whatever the harness's threads have set.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int rc = argv[0].find('/') == std::string::npos
                     ? posix_spawnp(&pid, argvp[0], &fa, &attr, argvp.data(), envp.data())
                     : posix_spawn(&pid, argvp[0], &fa, &attr, argvp.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    *error = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return nullptr;
  }
  p->pid_ = pid;
  p->running_ = true;
  p->out_fd_ = fds[0];
  fcntl(p->out_fd_, F_SETFL, fcntl(p->out_fd_, F_GETFL) | O_NONBLOCK);
  p->pid_fd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  return p;
}

Process::~Process() {
  if (running_) Kill();
  if (out_fd_ >= 0) close(out_fd_);
  if (pid_fd_ >= 0) close(pid_fd_);
}

void Process::ReadLines() {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(out_fd_, buf, sizeof buf);
    if (n > 0) {
      partial_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) out_eof_ = true;
    break;
  }
  size_t nl;
  while ((nl = partial_.find('\n')) != std::string::npos) {
    std::string line = partial_.substr(0, nl);
    partial_.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    lines_.push_back(line);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      bad_lines_.push_back(line);
    } else {
      events_.push_back(std::move(j));
    }
  }
  if (out_eof_ && !partial_.empty()) {
    partial_ += '\n';
    ReadLines();
  }
}

void Process::Reap(bool block) {
  if (!running_) return;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, block ? 0 : WNOHANG);
  if (r != pid_) return;
  running_ = false;
  if (WIFEXITED(status)) exit_code_ = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) term_signal_ = WTERMSIG(status);
}

bool Process::Pump(int timeout_ms) {
  const size_t before = lines_.size();
  const bool was_running = running_;
  pollfd pfd[2];
  nfds_t n = 0;
  if (!out_eof_) pfd[n++] = {out_fd_, POLLIN, 0};
  if (running_ && pid_fd_ >= 0) pfd[n++] = {pid_fd_, POLLIN, 0};
  // Without a pidfd (old kernels) the wait below is capped so that exits are still noticed.
  const int cap = (running_ && pid_fd_ < 0) ? 5 : timeout_ms;
  if (n > 0) poll(pfd, n, timeout_ms < cap ? timeout_ms : cap);
  if (!out_eof_) ReadLines();
  Reap(false);
  // Once the process is gone its stdout can only drain; read what is left.
  if (!running_ && !out_eof_) {
    pollfd p{out_fd_, POLLIN, 0};
    while (!out_eof_ && poll(&p, 1, 200) > 0)
      ReadLines();
  }
  return lines_.size() != before || was_running != running_;
}

const nlohmann::json* Process::WaitFor(const std::function<bool(const nlohmann::json&)>& pred,
                                       Deadline deadline, size_t* from) {
  for (;;) {
    for (size_t i = *from; i < events_.size(); ++i) {
      if (pred(events_[i])) {
        *from = i + 1;
        return &events_[i];
      }
    }
    if (!running_ && out_eof_) return nullptr;
    if (Clock::now() >= deadline) return nullptr;
    Pump(MsLeft(deadline, 50));
  }
}

const nlohmann::json* Process::WaitEvent(std::string_view name, Deadline deadline, size_t* from) {
  return WaitFor(
      [name](const nlohmann::json& j) {
        return j.contains("event") && j["event"].is_string() && j["event"] == name;
      },
      deadline, from);
}

bool Process::WaitExit(Deadline deadline) {
  while (running_ || !out_eof_) {
    if (Clock::now() >= deadline) return false;
    Pump(MsLeft(deadline, 50));
  }
  return true;
}

bool Process::Terminate(int grace_ms) {
  if (!running_) {
    WaitExit(In(200));
    return true;
  }
  kill(pid_, SIGTERM);
  if (WaitExit(In(grace_ms))) return true;
  Kill();
  return false;
}

void Process::Kill() {
  if (running_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    Reap(true);
  }
  if (!out_eof_) ReadLines();
}

std::string Process::StderrTail(size_t max) const {
  std::ifstream in(stderr_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max ? "..." + s.substr(s.size() - max) : s;
}

std::string Process::StatusText() const {
  if (running_) return "running";
  if (term_signal_) return "signal " + std::to_string(term_signal_);
  return "exit " + std::to_string(exit_code_);
}

std::string Process::StdoutTail(size_t n) const {
  std::string out;
  const size_t start = lines_.size() > n ? lines_.size() - n : 0;
  for (size_t i = start; i < lines_.size(); ++i)
    out += lines_[i] + "\n";
  return out;
}

}  // namespace cuframes::conform
