// fd_passing_test: descriptors on a Unix stream socket (fd_passing.h), the transport of the
// CUDA_VMM_FD buffers (spec 7.1, KIND-04/06/07), checked without a GPU: every descriptor arrives
// with the bytes it was sent with, in order, usable and close-on-exec; a receiver that reads in
// small pieces still gets them with the first byte; too many descriptors are refused.
#include "fd_passing.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <vector>

namespace cuframes::fdpass {
namespace {

class FdPassing : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv_), 0); }
  void TearDown() override {
    ::close(sv_[0]);
    ::close(sv_[1]);
  }
  int sv_[2] = {-1, -1};
};

// The same open file (device and inode) behind two descriptors.
bool SameFile(int a, int b) {
  struct stat sa {
  }, sb{};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

TEST_F(FdPassing, DescriptorsArriveInOrderWithTheBytes) {
  std::vector<int> sent;
  for (int i = 0; i < 3; ++i)
    sent.push_back(::eventfd(static_cast<unsigned>(i + 1), EFD_CLOEXEC));
  const std::vector<uint8_t> msg = {1, 2, 3, 4, 5, 6, 7, 8};
  ASSERT_TRUE(SendWithFds(sv_[0], msg, sent, MSG_NOSIGNAL));
  std::vector<int> got;
  uint8_t buf[64];
  const Received r = RecvWithFds(sv_[1], buf, &got, 0);
  ASSERT_EQ(r.n, 8);
  EXPECT_FALSE(r.truncated);
  ASSERT_EQ(got.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    uint64_t v = 0;  // each eventfd still holds the counter it was created with: same object
    ASSERT_EQ(::read(got[i], &v, sizeof(v)), static_cast<ssize_t>(sizeof(v)));
    EXPECT_EQ(v, i + 1) << "descriptor " << i << " out of order";
    EXPECT_NE(::fcntl(got[i], F_GETFD) & FD_CLOEXEC, 0) << "not close-on-exec";
  }
  CloseAll(&got);
  EXPECT_TRUE(got.empty());
  for (int fd : sent)
    ::close(fd);
}

TEST_F(FdPassing, ReaderOfSmallPiecesGetsThemWithTheFirstByte) {
  const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const std::vector<uint8_t> msg(72, 0xab);  // a HELLO_RESP's size
  ASSERT_TRUE(SendWithFds(sv_[0], msg, std::vector<int>{fd}, MSG_NOSIGNAL));
  std::vector<int> got;
  uint8_t one[1];
  ASSERT_EQ(RecvWithFds(sv_[1], one, &got, 0).n, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(SameFile(got[0], fd));
  size_t total = 1;
  while (total < msg.size()) {
    const Received r = RecvWithFds(sv_[1], one, &got, 0);
    ASSERT_EQ(r.n, 1);
    ++total;
  }
  EXPECT_EQ(got.size(), 1u) << "descriptors arrive once, with the first byte";
  CloseAll(&got);
  ::close(fd);
}

TEST_F(FdPassing, NoDescriptorsIsAPlainSend) {
  const std::vector<uint8_t> msg = {9, 9};
  ASSERT_TRUE(SendWithFds(sv_[0], msg, {}, MSG_NOSIGNAL));
  std::vector<int> got;
  uint8_t buf[8];
  EXPECT_EQ(RecvWithFds(sv_[1], buf, &got, 0).n, 2);
  EXPECT_TRUE(got.empty());
}

TEST_F(FdPassing, MoreThanOneMessageCanCarryIsRefused) {
  std::vector<int> many(kMaxFds + 1, 0);  // stdin, 254 times: refused before any send
  const std::vector<uint8_t> msg = {1};
  errno = 0;
  EXPECT_FALSE(SendWithFds(sv_[0], msg, many, MSG_NOSIGNAL | MSG_DONTWAIT));
  EXPECT_EQ(errno, EINVAL);
}

// A read that fails (here EAGAIN: nothing there) takes no descriptors. The control buffer is
// left as the kernel left it, which for a second call from the same place is the first call's
// SCM_RIGHTS message: a reader that parses it anyway hands out descriptors it already gave.
TEST_F(FdPassing, AFailedReadTakesNoDescriptors) {
  const int sent[2] = {::eventfd(1, EFD_CLOEXEC), ::eventfd(2, EFD_CLOEXEC)};
  const std::vector<uint8_t> msg = {1, 2, 3, 4};
  ASSERT_TRUE(SendWithFds(sv_[0], msg, sent, MSG_NOSIGNAL));
  std::vector<int> got;
  uint8_t buf[64];
  ASSERT_EQ(RecvWithFds(sv_[1], buf, &got, MSG_DONTWAIT).n, 4);
  ASSERT_EQ(got.size(), 2u);
  const Received r = RecvWithFds(sv_[1], buf, &got, MSG_DONTWAIT);
  EXPECT_LT(r.n, 0);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_EQ(got.size(), 2u) << "descriptors taken from a read that failed";
  CloseAll(&got);
  for (int fd : sent)
    ::close(fd);
}

TEST_F(FdPassing, EndOfFileIsZero) {
  ::shutdown(sv_[0], SHUT_WR);
  std::vector<int> got;
  uint8_t buf[8];
  EXPECT_EQ(RecvWithFds(sv_[1], buf, &got, 0).n, 0);
}

}  // namespace
}  // namespace cuframes::fdpass
