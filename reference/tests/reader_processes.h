// reader_processes.h: the spawn-a-reader scaffolding of the stress tests that run shared-memory
// readers as separate processes (reference/tests/packet_ring_stress_test.cpp,
// fuzz/properties/seqlock_stress_test.cpp); header-only test support, linked through the
// cuframes_test_support target.
//
// The parent re-executes its own binary (/proc/self/exe) with posix_spawn, never fork (the test
// process may have threads), passing each reader the write end of a readiness pipe. Each reader
// maps what it reads, attaches, then writes one byte on that pipe (SignalReady). The parent
// waits for one byte per reader with a bounded poll (no sleeps), runs the writer, then reaps
// every reader and expects exit status 0. Descriptors the readers need (memfds) are inherited
// across exec, so they must not be O_CLOEXEC; their numbers travel in argv.
#ifndef CUFRAMES_REFERENCE_TESTS_READER_PROCESSES_H_
#define CUFRAMES_REFERENCE_TESTS_READER_PROCESSES_H_

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

extern char** environ;

namespace cuframes::testing {

// Reader side: reports "attached" on the readiness pipe and closes it. Returns false when the
// byte could not be written (the parent is gone).
inline bool SignalReady(int ready_fd) {
  const char one = 1;
  const bool ok = write(ready_fd, &one, 1) == 1;
  close(ready_fd);
  return ok;
}

// Parent side: spawns `readers` copies of this executable with the arguments args(i, ready_fd)
// (argv[0] included; ready_fd is the readiness pipe's write end, for the reader to pass to
// SignalReady), waits up to ready_timeout_ms for each reader's readiness byte, runs write(), then
// waits for every reader and expects each to exit with status 0. A reader that never gets ready
// fails the test; the readers still running are then killed and reaped, never left behind.
inline void RunReaderProcesses(int readers,
                               const std::function<std::vector<std::string>(int, int)>& args,
                               int ready_timeout_ms, const std::function<void()>& write) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  std::vector<pid_t> kids;
  auto reap_all = [&kids](bool kill_first) {
    for (pid_t pid : kids) {
      if (kill_first) kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
    }
    kids.clear();
  };
  bool spawned = true;
  for (int i = 0; i < readers && spawned; ++i) {
    std::vector<std::string> a = args(i, ready[1]);
    std::vector<char*> argv;
    for (std::string& s : a)
      argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    spawned = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) == 0;
    if (spawned) kids.push_back(pid);
  }
  close(ready[1]);
  bool all_ready = spawned;
  if (!spawned) ADD_FAILURE() << "posix_spawn of a reader process failed";
  for (int got = 0; all_ready && got < readers; ++got) {
    pollfd pfd{ready[0], POLLIN, 0};
    char b;
    if (poll(&pfd, 1, ready_timeout_ms) != 1) {
      ADD_FAILURE() << "reader processes did not attach within " << ready_timeout_ms << " ms";
      all_ready = false;
    } else if (read(ready[0], &b, 1) != 1) {
      ADD_FAILURE() << "a reader process exited before attaching";
      all_ready = false;
    }
  }
  close(ready[0]);
  if (!all_ready) {
    reap_all(/*kill_first=*/true);
    return;
  }
  write();
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "reader process " << pid << " status " << status;
  }
}

}  // namespace cuframes::testing

#endif  // CUFRAMES_REFERENCE_TESTS_READER_PROCESSES_H_
