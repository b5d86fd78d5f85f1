// fd_passing.cpp: sendmsg/recvmsg with SCM_RIGHTS control messages (see fd_passing.h).
#include "fd_passing.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cuframes::fdpass {

bool SendWithFds(int sock, std::span<const uint8_t> bytes, std::span<const int> fds, int flags) {
  if (fds.size() > kMaxFds) {
    errno = EINVAL;
    return false;
  }
  size_t off = 0;
  bool fds_sent = fds.empty();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  while (off < bytes.size()) {
    iovec iov{const_cast<uint8_t*>(bytes.data() + off), bytes.size() - off};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (!fds_sent) {
      std::memset(control, 0, sizeof(control));
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    const ssize_t n = ::sendmsg(sock, &msg, flags);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    fds_sent = true;  // the control message went with the first byte that was sent
    off += static_cast<size_t>(n);
  }
  return true;
}

Received RecvWithFds(int sock, std::span<uint8_t> buf, std::vector<int>* fds, int flags) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  Received r;
  r.n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
  if (r.n < 0) return r;
  r.truncated = (msg.msg_flags & MSG_CTRUNC) != 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds->push_back(fd);
    }
  }
  return r;
}

void CloseAll(std::vector<int>* fds) {
  for (const int fd : *fds)
    ::close(fd);
  fds->clear();
}

}  // namespace cuframes::fdpass
