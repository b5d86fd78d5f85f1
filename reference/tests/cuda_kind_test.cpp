// cuda_kind_test (ctest label "cuda"): the CUDA memory kinds (CUDA_IPC, and CUDA_VMM_FD where the
// device exports POSIX file descriptors) across processes: these tests spawn the adapter programs
// (fresh processes: never fork after CUDA initialisation) and check every frame, and attach twice
// from this process (RES-CUDA-01/02: one shared mapping per handle; CUDA_VMM_FD: one import per
// attachment, KIND-06). Skip, saying why, when there is no CUDA device.
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

#include "../tools/adapter_common.h"
#include "cuframes/cuframes.h"
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

// Starts `args` with stdout to `out` (posix_spawn: this process may have initialised CUDA).
pid_t Spawn(const std::vector<std::string>& args, const std::string& out) {
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
}

// The publisher's readiness signal is its socket file (RES-CREATE-05); bounded wait.
bool WaitForSocket(const std::string& sock) {
  struct stat st {};
  for (int i = 0; i < 2000 && ::stat(sock.c_str(), &st) != 0; ++i)
    ::usleep(5000);
  return ::stat(sock.c_str(), &st) == 0;
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
  // The publisher waits for both subscribers.
  const std::string dir = tmpl;
  const pid_t pub = Spawn({pub_bin, "--key", key, "--kind", kind, "--frames", "200", "--bytes",
                           "1048576", "--slots", "3", "--wait-subscribers", "2"},
                          dir + "/pub.out");
  const std::string sock = dir + "/cuframes-" + key + ".sock";
  ASSERT_TRUE(WaitForSocket(sock)) << "publisher never became ready";
  struct stat st {};
  std::vector<pid_t> subs;
  for (int i = 0; i < 2; ++i) {
    subs.push_back(Spawn({sub_bin, "--key", key, "--kind", kind, "--frames", "200", "--verify-hold",
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

// Reads the next frame of `sub` to the host on the frame's own stream and checks every byte.
void ReadAndCheck(cuframes_subscriber* sub, uint64_t want_seq, uint64_t bytes, const char* who) {
  cuframes_frame f{};
  ASSERT_EQ(cuframes_sub_next_frame(sub, 10000, &f), CUFRAMES_OK) << who << " seq " << want_seq;
  ASSERT_EQ(f.seq, want_seq) << who;
  ASSERT_EQ(f.payload_bytes, bytes) << who;
  std::vector<uint8_t> host(bytes);
  auto* stream = static_cast<cudaStream_t>(f.cuda_stream);
  ASSERT_EQ(cudaMemcpyAsync(host.data(), f.data, bytes, cudaMemcpyDeviceToHost, stream),
            cudaSuccess)
      << who;
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess) << who;
  uint64_t wrong = 0;
  for (uint64_t i = 0; i < bytes; ++i)
    wrong += host[i] != cuframes::adapter::FrameByte(f.seq, i);
  EXPECT_EQ(wrong, 0u) << who << ": wrong bytes in frame " << f.seq;
  ASSERT_EQ(cuframes_sub_release(sub, &f), CUFRAMES_OK) << who;
}

// RES-CUDA-01/02: two attachments of this process to one publisher share one mapping per
// handle; the first to detach must not close it under the other, which keeps reading every
// byte right. (An attachment that closed the shared mapping would leave the other reading
// unmapped memory: a sticky CUDA error or wrong bytes.)
void TwoAttachmentsInOneProcess(const std::string& kind, uint32_t kind_bit) {
  const char* tools = std::getenv("CUFRAMES_TOOLS_DIR");
  if (tools == nullptr) GTEST_SKIP() << "CUFRAMES_TOOLS_DIR not set (ctest sets it)";
  char tmpl[] = "/tmp/cuframes-cuda2-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  ::setenv("CUFRAMES_SOCKET_DIR", tmpl, 1);
  const std::string dir = tmpl;
  const std::string key = "cuda2x" + std::to_string(::getpid()) + kind;
  constexpr uint64_t kBytes = 65536;
  const pid_t pub =
      Spawn({std::string(tools) + "/cuframes-pub", "--key", key, "--kind", kind, "--frames", "40",
             "--bytes", std::to_string(kBytes), "--slots", "2", "--wait-subscribers", "2"},
            dir + "/pub.out");
  ASSERT_TRUE(WaitForSocket(dir + "/cuframes-" + key + ".sock")) << "publisher never ready";
  cuframes_sub_options o;
  cuframes_sub_options_init(&o);
  o.key = key.c_str();
  o.kinds_mask = kind_bit;
  cuframes_subscriber* a = nullptr;
  cuframes_subscriber* b = nullptr;
  ASSERT_EQ(cuframes_sub_connect(&o, &a), CUFRAMES_OK);
  ASSERT_EQ(cuframes_sub_connect(&o, &b), CUFRAMES_OK);
  for (uint64_t n = 1; n <= 20; ++n) {
    ReadAndCheck(a, n, kBytes, "first attachment");
    ReadAndCheck(b, n, kBytes, "second attachment");
  }
  cuframes_sub_close(a);  // the mapping stays: the second attachment still uses it
  for (uint64_t n = 21; n <= 40; ++n)
    ReadAndCheck(b, n, kBytes, "second attachment, after the first closed");
  cuframes_sub_close(b);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  int status = 0;
  ASSERT_EQ(::waitpid(pub, &status, 0), pub);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "publisher status " << status;
  ::unlink((dir + "/pub.out").c_str());
  ::rmdir(tmpl);
}

TEST(CudaKind, TwoAttachmentsInOneProcessShareEachMapping) {
  std::string why;
  if (!HaveDevice(&why)) GTEST_SKIP() << why;
  TwoAttachmentsInOneProcess("cuda", CUFRAMES_KIND_BIT(CUFRAMES_KIND_CUDA_IPC));
}

// CUDA_VMM_FD: each attachment imports and maps its own descriptors (KIND-06) and releases them
// at its close (KIND-08) without disturbing the other.
TEST(CudaKind, VmmTwoAttachmentsInOneProcess) {
  std::string why;
  if (!HaveDevice(&why)) GTEST_SKIP() << why;
  if (!cuframes::CudaVmmUsable(0)) {
    GTEST_SKIP() << "device 0 cannot export POSIX file descriptor allocations (CUDA_VMM_FD)";
  }
  TwoAttachmentsInOneProcess("cuda_vmm_fd", CUFRAMES_KIND_BIT(CUFRAMES_KIND_CUDA_VMM_FD));
}

}  // namespace
