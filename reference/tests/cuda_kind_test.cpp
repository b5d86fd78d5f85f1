// cuda_kind_test (ctest label "cuda"): the CUDA memory kinds (CUDA_IPC, and CUDA_VMM_FD where the
// device exports POSIX file descriptors) across processes: this test spawns the adapter programs
// (fresh processes: never fork after CUDA initialisation) and checks every frame. Skips, saying
// why, when there is no CUDA device.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "memory_kind.h"

extern char** environ;

namespace {

bool HaveDevice(std::string* why) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    *why = std::string("no CUDA device: ") + cudaGetErrorString(err);
    return false;
  }
  if (n == 0) {
    *why = "no CUDA device";
    return false;
  }
  return true;
}

TEST(CudaKind, Built) {
  EXPECT_TRUE(cuframes::CudaKindBuilt());
}

// One publisher of `kind` (the adapters' --kind value), two subscribers, 200 frames of 1 MiB.
void PublisherToTwoSubscribers(const std::string& kind) {
  const char* tools = std::getenv("CUFRAMES_TOOLS_DIR");
  if (tools == nullptr) GTEST_SKIP() << "CUFRAMES_TOOLS_DIR not set (ctest sets it)";
  char tmpl[] = "/tmp/cuframes-cuda-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  ::setenv("CUFRAMES_SOCKET_DIR", tmpl, 1);
  const std::string key = "cuda" + std::to_string(::getpid()) + kind;
  const std::string pub_bin = std::string(tools) + "/cuframes-pub";
  const std::string sub_bin = std::string(tools) + "/cuframes-sub";
  // The publisher waits for both subscribers; subscribers retry until its socket exists.
  auto spawn = [](const std::vector<std::string>& args, const std::string& out) {
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    EXPECT_EQ(posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
  };
  const std::string dir = tmpl;
  const pid_t pub = spawn({pub_bin, "--key", key, "--kind", kind, "--frames", "200", "--bytes",
                           "1048576", "--slots", "3", "--wait-subscribers", "2"},
                          dir + "/pub.out");
  const std::string sock = dir + "/cuframes-" + key + ".sock";
  struct stat st {};
  for (int i = 0; i < 2000 && ::stat(sock.c_str(), &st) != 0; ++i)
    ::usleep(5000);
  ASSERT_EQ(::stat(sock.c_str(), &st), 0) << "publisher never became ready";
  std::vector<pid_t> subs;
  for (int i = 0; i < 2; ++i) {
    subs.push_back(spawn({sub_bin, "--key", key, "--kind", kind, "--frames", "200", "--verify-hold",
                          "--hold-max-us", "300"},
                         dir + "/sub" + std::to_string(i) + ".out"));
  }
  for (pid_t p : subs) {
    int status = 0;
    ASSERT_EQ(::waitpid(p, &status, 0), p);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "subscriber status " << status;
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pub, &status, 0), pub);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "publisher status " << status;
  for (const char* f : {"pub.out", "sub0.out", "sub1.out"})
    ::unlink((dir + "/" + f).c_str());
  EXPECT_NE(::stat(sock.c_str(), &st), 0) << "socket left behind";
  EXPECT_NE(::stat(("/dev/shm/cuframes-" + key).c_str(), &st), 0) << "segment left behind";
  ::rmdir(tmpl);
}

TEST(CudaKind, PublisherToTwoSubscribersAcrossProcesses) {
  std::string why;
  if (!HaveDevice(&why)) GTEST_SKIP() << why;
  PublisherToTwoSubscribers("cuda");
}

TEST(CudaKind, VmmPublisherToTwoSubscribersAcrossProcesses) {
  std::string why;
  if (!HaveDevice(&why)) GTEST_SKIP() << why;
  if (!cuframes::CudaVmmUsable(0)) {
    GTEST_SKIP() << "device 0 cannot export POSIX file descriptor allocations (CUDA_VMM_FD)";
  }
  PublisherToTwoSubscribers("cuda_vmm_fd");
}

}  // namespace
