#include "wire.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace cuframes::conform {

namespace {

// The largest payload the harness buffers from an IUT: the spec maximum plus slack, so that a
// too-long message is reported as such instead of being buffered without bound.
constexpr uint32_t kRecvCap = 4096 + 64;

bool FillAddr(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof addr->sun_path) return false;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace

Conn::Conn(int fd) : fd_(fd) {
  probe_->fd = fd;
}
Conn::~Conn() {
  Close();
}

void Conn::Close() {
  for (const int fd : fds_)
    close(fd);
  fds_.clear();
  std::lock_guard<std::mutex> lock(probe_->mu);
  if (fd_ >= 0) {
    probe_->closed_ns.store(Clock::now().time_since_epoch().count());
    close(fd_);
  }
  fd_ = -1;
  probe_->fd = -1;
}

void Conn::ShutdownWrite() {
  if (fd_ >= 0) shutdown(fd_, SHUT_WR);
}

std::unique_ptr<Conn> Conn::Connect(const std::string& path, Deadline deadline,
                                    std::string* error) {
  sockaddr_un addr;
  if (!FillAddr(path, &addr)) {
    *error = "socket path too long: " + path;
    return nullptr;
  }
  for (;;) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = std::string("socket: ") + std::strerror(errno);
      return nullptr;
    }
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return std::make_unique<Conn>(fd);
    }
    const int e = errno;
    close(fd);
    if ((e != ECONNREFUSED && e != ENOENT && e != EAGAIN) || Clock::now() >= deadline) {
      *error = "connect " + path + ": " + std::strerror(e);
      return nullptr;
    }
    // The publisher's socket file is its readiness signal (RES-CREATE-05); callers normally wait
    // for the "ready" event first, so this retry only bridges a listen backlog hiccup.
    poll(nullptr, 0, 5);
  }
}

bool Conn::Send(std::span<const uint8_t> bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd_, POLLOUT, 0};
        if (poll(&p, 1, 2000) <= 0) return false;
        continue;
      }
      return false;
    }
    sent_.insert(sent_.end(), bytes.begin() + static_cast<ptrdiff_t>(done),
                 bytes.begin() + static_cast<ptrdiff_t>(done) + n);
    done += static_cast<size_t>(n);
  }
  return true;
}

bool Conn::SendWithFds(std::span<const uint8_t> bytes, std::span<const int> fds) {
  constexpr size_t kMaxFds = 253;  // SCM_MAX_FD
  if (fds.size() > kMaxFds || bytes.empty()) return false;
  if (fds.empty()) return Send(bytes);
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  iovec iov{const_cast<uint8_t*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  ssize_t n;
  do {
    n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;
  sent_.insert(sent_.end(), bytes.begin(), bytes.begin() + n);
  // The descriptors went with the first byte; the rest (if the socket took part) goes plain.
  return static_cast<size_t>(n) == bytes.size() || Send(bytes.subspan(static_cast<size_t>(n)));
}

std::vector<int> Conn::TakeFds(bool* truncated) {
  if (truncated != nullptr) *truncated = fds_truncated_;
  fds_truncated_ = false;
  std::vector<int> out;
  out.swap(fds_);
  return out;
}

ssize_t Conn::RecvBytes(uint8_t* buf, size_t size, int flags) {
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 253)];
  iovec iov{buf, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd_, &msg, flags | MSG_CMSG_CLOEXEC);
  if (n < 0) return n;
  if ((msg.msg_flags & MSG_CTRUNC) != 0) fds_truncated_ = true;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds_.push_back(fd);
    }
  }
  return n;
}

bool Conn::SendPaced(std::span<const uint8_t> bytes, size_t chunk, int gap_ms) {
  for (size_t off = 0; off < bytes.size(); off += chunk) {
    const size_t n = bytes.size() - off < chunk ? bytes.size() - off : chunk;
    if (!Send(bytes.subspan(off, n))) return false;
    if (off + n < bytes.size()) {
      timespec ts{0, gap_ms * 1000000L};
      nanosleep(&ts, nullptr);
    }
  }
  return true;
}

Conn::Rx Conn::Recv(TlvMsg* out, Deadline deadline) {
  for (;;) {
    size_t consumed = 0;
    const ParseResult r = ParseTlv(rx_, kRecvCap, out, &consumed);
    if (r == ParseResult::kOk) {
      rx_.erase(rx_.begin(), rx_.begin() + static_cast<ptrdiff_t>(consumed));
      if (probe_->detach_type != 0 && out->type == probe_->detach_type &&
          probe_->detach_ns.load() == 0) {
        probe_->detach_ns.store(Clock::now().time_since_epoch().count());
      }
      return Rx::kMsg;
    }
    if (r == ParseResult::kTooLarge) return Rx::kTooLarge;
    if (eof_ || fd_ < 0) return Rx::kEof;
    pollfd p{fd_, POLLIN, 0};
    const int left = MsLeft(deadline);
    if (poll(&p, 1, left) <= 0) {
      if (Clock::now() >= deadline) return Rx::kTimeout;
      continue;
    }
    uint8_t buf[8192];
    const ssize_t n = RecvBytes(buf, sizeof buf, 0);
    if (n > 0) {
      if (probe_->first_rx_ns.load() == 0) {
        probe_->first_rx_ns.store(Clock::now().time_since_epoch().count());
      }
      rx_.insert(rx_.end(), buf, buf + n);
      received_.insert(received_.end(), buf, buf + n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      eof_ = true;
      if (probe_->eof_ns.load() == 0) probe_->eof_ns.store(Clock::now().time_since_epoch().count());
    }
  }
}

bool Conn::WaitClosed(Deadline deadline, std::vector<TlvMsg>* extra) {
  for (;;) {
    TlvMsg m;
    const Rx r = Recv(&m, deadline);
    if (r == Rx::kEof) return true;
    if (r == Rx::kTimeout) return false;
    if (r == Rx::kTooLarge) {
      rx_.clear();
      continue;
    }
    if (extra) extra->push_back(std::move(m));
  }
}

bool Conn::PeerClosed() {
  if (eof_) return true;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  uint8_t buf[8192];
  const ssize_t n = RecvBytes(buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0) {
    rx_.insert(rx_.end(), buf, buf + n);
    received_.insert(received_.end(), buf, buf + n);
    return false;
  }
  if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof_ = true;
  return eof_;
}

Listener::~Listener() {
  Close();
}

void Listener::Close() {
  if (fd_ >= 0) {
    close(fd_);
    unlink(path_.c_str());
  }
  fd_ = -1;
}

void Listener::Abandon() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

std::unique_ptr<Listener> Listener::Bind(const std::string& path, std::string* error) {
  sockaddr_un addr;
  if (!FillAddr(path, &addr)) {
    *error = "socket path too long: " + path;
    return nullptr;
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(fd, 16) != 0) {
    *error = "bind/listen " + path + ": " + std::strerror(errno);
    if (fd >= 0) close(fd);
    return nullptr;
  }
  chmod(path.c_str(), 0600);
  auto l = std::unique_ptr<Listener>(new Listener());
  l->fd_ = fd;
  l->path_ = path;
  return l;
}

std::unique_ptr<Conn> Listener::Accept(Deadline deadline, Process* watch) {
  while (Clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, MsLeft(deadline, 20)) > 0) {
      const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) return std::make_unique<Conn>(c);
    }
    if (watch) {
      watch->Pump(0);
      if (!watch->running()) return nullptr;
    }
  }
  return nullptr;
}

ShmFile::~ShmFile() {
  if (data_) munmap(data_, size_);
  if (fd_ >= 0) close(fd_);
}

std::unique_ptr<ShmFile> ShmFile::Open(const std::string& path, bool writable, std::string* error) {
  const int fd = open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    *error = "open " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    *error = path + " is empty or cannot be stat'ed";
    close(fd);
    return nullptr;
  }
  void* p = mmap(nullptr, static_cast<size_t>(st.st_size),
                 writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = "mmap " + path + ": " + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  auto f = std::unique_ptr<ShmFile>(new ShmFile());
  f->fd_ = fd;
  f->data_ = static_cast<uint8_t*>(p);
  f->size_ = static_cast<size_t>(st.st_size);
  return f;
}

std::unique_ptr<ShmFile> ShmFile::Create(const std::string& path, size_t size, std::string* error) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = "create " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
    *error = "flock/ftruncate " + path + ": " + std::strerror(errno);
    close(fd);
    unlink(path.c_str());
    return nullptr;
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = "mmap " + path + ": " + std::strerror(errno);
    close(fd);
    unlink(path.c_str());
    return nullptr;
  }
  auto f = std::unique_ptr<ShmFile>(new ShmFile());
  f->fd_ = fd;
  f->data_ = static_cast<uint8_t*>(p);
  f->size_ = size;
  return f;
}

long long ShmFile::FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

int ShmFile::FileMode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 0777) : -1;
}

bool ShmFile::LockedByOther(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);  // releases the lock if we took it
  return locked;
}

void FutexWakeAll(void* word) {
  syscall(SYS_futex, word, FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

WaitEnd FutexWait(void* word, uint32_t expected, int timeout_ms) {
  timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000L};
  if (syscall(SYS_futex, word, FUTEX_WAIT, expected, &ts, nullptr, 0) == 0) return WaitEnd::kWoken;
  if (errno == EAGAIN) return WaitEnd::kChanged;
  if (errno == ETIMEDOUT) return WaitEnd::kTimeout;
  return WaitEnd::kWoken;  // EINTR: the harness sends itself no signals
}

WaitEnd FutexWaitBitset(void* word, uint32_t expected, int timeout_ms, uint32_t bits) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // FUTEX_WAIT_BITSET takes an absolute deadline
  const long ns = ts.tv_nsec + (timeout_ms % 1000) * 1000000L;
  ts.tv_sec += timeout_ms / 1000 + ns / 1000000000L;
  ts.tv_nsec = ns % 1000000000L;
  if (syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, &ts, nullptr, bits) == 0) {
    return WaitEnd::kWoken;
  }
  if (errno == EAGAIN) return WaitEnd::kChanged;
  if (errno == ETIMEDOUT) return WaitEnd::kTimeout;
  return WaitEnd::kWoken;  // EINTR: the harness sends itself no signals
}

int FutexWakeBitset(void* word, int count, uint32_t bits) {
  const long n = syscall(SYS_futex, word, FUTEX_WAKE_BITSET, count, nullptr, nullptr, bits);
  return n < 0 ? 0 : static_cast<int>(n);
}

uint32_t AtomicIncrement32(void* word) {
  return std::atomic_ref<uint32_t>(*static_cast<uint32_t*>(word))
             .fetch_add(1, std::memory_order_release) +
         1;
}

}  // namespace cuframes::conform
