// lifecycle_test: key names, flock liveness and stale-resource reclaim, including pid reuse.
#include "lifecycle.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "layout.h"

namespace cuframes {
namespace {

class Lifecycle : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cuframes-lc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("CUFRAMES_SOCKET_DIR", dir_.c_str(), 1);
    key_ = "lc" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  void TearDown() override {
    ::unlink(SegmentPath(key_).c_str());
    ::unlink(RingPath(key_).c_str());
    ::unlink(SocketPath(key_).c_str());
    ::rmdir(dir_.c_str());
    ::unsetenv("CUFRAMES_SOCKET_DIR");
  }
  static bool Exists(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0;
  }
  static void WriteFile(const std::string& p, size_t size) {
    const int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(size)), 0);
    ::close(fd);
  }
  std::string dir_;
  std::string key_;
};

TEST(Keys, Validity) {
  EXPECT_TRUE(ValidKey("a"));
  EXPECT_TRUE(ValidKey("cam-0_front.main"));
  EXPECT_TRUE(ValidKey(std::string(64, 'k')));
  EXPECT_FALSE(ValidKey(std::string(65, 'k')));
  EXPECT_FALSE(ValidKey(""));
  EXPECT_FALSE(ValidKey(".hidden"));
  EXPECT_FALSE(ValidKey("a/b"));
  EXPECT_FALSE(ValidKey("a b"));
  EXPECT_FALSE(ValidKey("ключ"));
  EXPECT_FALSE(ValidKey(std::string("a\0b", 3)));
}

TEST_F(Lifecycle, Names) {
  EXPECT_EQ(SocketPath("k"), dir_ + "/cuframes-k.sock");
  EXPECT_EQ(SegmentPath("k"), "/dev/shm/cuframes-k");
  EXPECT_EQ(RingPath("k"), "/dev/shm/cuframes-k-packets");
  ::unsetenv("CUFRAMES_SOCKET_DIR");
  EXPECT_EQ(SocketPath("k"), "/tmp/cuframes-k.sock");
}

TEST(Process, StartTimeIsStableAndNonZero) {
  const uint64_t a = ProcStartTime(::getpid());
  EXPECT_GT(a, 0u);
  EXPECT_EQ(a, ProcStartTime(::getpid()));
  EXPECT_EQ(ProcStartTime(999999999), 0u);
  EXPECT_EQ(LibVersion(), (0u << 16) | (2u << 8) | 0u);
}

TEST_F(Lifecycle, FreshKey) {
  int fd = -1;
  ASSERT_EQ(AcquireKey(key_, 0600, &fd), Status::kOk);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ::close(fd);
}

TEST_F(Lifecycle, ModeIsExactDespiteUmask) {
  const mode_t old = ::umask(0077);
  int fd = -1;
  ASSERT_EQ(AcquireKey(key_, 0660, &fd), Status::kOk);
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ::close(fd);
}

TEST_F(Lifecycle, SecondAcquireInSameProcessIsKeyInUse) {
  int fd = -1;
  ASSERT_EQ(AcquireKey(key_, 0600, &fd), Status::kOk);
  int fd2 = -1;
  EXPECT_EQ(AcquireKey(key_, 0600, &fd2), Status::kKeyInUse);  // flock is per open file
  ::close(fd);
}

TEST_F(Lifecycle, StaleSegmentIsReclaimedWithItsRingAndSocket) {
  // A dead publisher's files: non-empty segment (lock free), packet ring, socket file. Its
  // header even names *this* live pid (pid reuse): liveness is the lock, not the pid.
  WriteFile(SegmentPath(key_), 8192);
  {
    const int fd = ::open(SegmentPath(key_).c_str(), O_RDWR);
    layout::SegmentHeader h{};
    h.publisher_pid = static_cast<uint64_t>(::getpid());
    ASSERT_EQ(::pwrite(fd, &h, sizeof(h), 0), static_cast<ssize_t>(sizeof(h)));
    ::close(fd);
  }
  WriteFile(RingPath(key_), 4096);
  WriteFile(SocketPath(key_), 0);
  struct stat before {};
  ASSERT_EQ(::stat(SegmentPath(key_).c_str(), &before), 0);
  int fd = -1;
  ASSERT_EQ(AcquireKey(key_, 0600, &fd), Status::kOk);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 0) << "a fresh segment, not the stale one";
  EXPECT_FALSE(Exists(RingPath(key_)));
  EXPECT_FALSE(Exists(SocketPath(key_)));
  ::close(fd);
}

TEST_F(Lifecycle, LivePublisherInAnotherProcessIsKeyInUseAndUntouched) {
  int ready[2];
  int release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();  // no CUDA in this test binary before fork
  ASSERT_GE(child, 0);
  if (child == 0) {
    int fd = -1;
    if (AcquireKey(key_, 0600, &fd) != Status::kOk) ::_exit(1);
    if (::ftruncate(fd, 4096) != 0) ::_exit(2);  // a live, initialized segment
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1) ::_exit(3);
    if (::read(release[0], &c, 1) != 1) ::_exit(4);
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  WriteFile(SocketPath(key_), 0);  // the live publisher's socket
  int fd = -1;
  EXPECT_EQ(AcquireKey(key_, 0600, &fd), Status::kKeyInUse);
  struct stat st {};
  ASSERT_EQ(::stat(SegmentPath(key_).c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4096) << "the live publisher's segment was touched";
  EXPECT_TRUE(Exists(SocketPath(key_)));
  ASSERT_EQ(::write(release[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // The child died holding nothing: now it is stale and reclaimable.
  ASSERT_EQ(AcquireKey(key_, 0600, &fd), Status::kOk);
  EXPECT_FALSE(Exists(SocketPath(key_)));
  ::close(fd);
  for (int p : {ready[0], ready[1], release[0], release[1]})
    ::close(p);
}

TEST_F(Lifecycle, InvalidKey) {
  int fd = -1;
  EXPECT_EQ(AcquireKey(".bad", 0600, &fd), Status::kInvalidArgument);
  EXPECT_EQ(AcquireKey("a/b", 0600, &fd), Status::kInvalidArgument);
}

TEST_F(Lifecycle, UnlinkIfExists) {
  EXPECT_EQ(UnlinkIfExists(dir_ + "/nothing"), Status::kOk);
  WriteFile(dir_ + "/f", 1);
  EXPECT_EQ(UnlinkIfExists(dir_ + "/f"), Status::kOk);
  EXPECT_FALSE(Exists(dir_ + "/f"));
  EXPECT_EQ(UnlinkIfExists(dir_), Status::kSystem);  // EISDIR: reported, not crashed on
  if (::geteuid() != 0) {  // root ignores directory permissions: only checkable as a user
    WriteFile(dir_ + "/g", 1);
    ASSERT_EQ(::chmod(dir_.c_str(), 0500), 0);
    EXPECT_EQ(UnlinkIfExists(dir_ + "/g"), Status::kPermission);
    ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
    EXPECT_EQ(UnlinkIfExists(dir_ + "/g"), Status::kOk);
  }
}

TEST(Fds, CountIsSane) {
  const int before = CountOpenFds();
  ASSERT_GT(before, 0);
  const int fd = ::open("/dev/null", O_RDONLY);
  EXPECT_EQ(CountOpenFds(), before + 1);
  ::close(fd);
  EXPECT_EQ(CountOpenFds(), before);
}

}  // namespace
}  // namespace cuframes
