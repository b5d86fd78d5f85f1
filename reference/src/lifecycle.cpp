// lifecycle.cpp: key names, flock liveness and stale-resource reclaim (spec section 1).
#include "lifecycle.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fault.h"

namespace cuframes {
namespace {

constexpr int kMaxAcquireAttempts = 8;  // spec RES-CREATE-02

}  // namespace

bool ValidKey(std::string_view key) {
  if (key.empty() || key.size() > 64 || key[0] == '.') return false;
  for (char c : key) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string SocketDir() {
  const char* dir = std::getenv("CUFRAMES_SOCKET_DIR");
  return dir != nullptr && dir[0] != '\0' ? std::string(dir) : std::string("/tmp");
}

std::string SocketPath(std::string_view key) {
  return SocketDir() + "/cuframes-" + std::string(key) + ".sock";
}

std::string SegmentPath(std::string_view key) {
  return "/dev/shm/cuframes-" + std::string(key);
}

std::string RingPath(std::string_view key) {
  return "/dev/shm/cuframes-" + std::string(key) + "-packets";
}

uint64_t ProcStartTime(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return 0;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  // comm (field 2) may contain spaces and ')': fields after it start past the LAST ')'.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return 0;
  ++p;
  // p now points before field 3; field 22 is 19 fields further.
  for (int field = 3; field < 22; ++field) {
    while (*p == ' ')
      ++p;
    while (*p != ' ' && *p != '\0')
      ++p;
  }
  while (*p == ' ')
    ++p;
  return std::strtoull(p, nullptr, 10);
}

Status UnlinkIfExists(const std::string& path) {
  if (::unlink(path.c_str()) == 0 || errno == ENOENT) return Status::kOk;
  return errno == EPERM || errno == EACCES || errno == EROFS ? Status::kPermission
                                                             : Status::kSystem;
}

Status AcquireKey(std::string_view key, uint32_t mode, int* fd_out) {
  if (!ValidKey(key)) return Status::kInvalidArgument;
  const std::string path = SegmentPath(key);
  bool exclusive = false;  // after reclaiming a stale segment, recreate with O_EXCL
  for (int attempt = 0; attempt < kMaxAcquireAttempts; ++attempt) {
    const int flags = O_RDWR | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : 0);
    const int fd = ::open(path.c_str(), flags, static_cast<mode_t>(mode));
    if (fd < 0) {
      if (errno == EEXIST) {  // someone recreated it between our unlink and open: start over
        exclusive = false;
        continue;
      }
      return errno == EACCES || errno == EPERM ? Status::kPermission : Status::kSystem;
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) return Status::kKeyInUse;
      return Status::kSystem;
    }
    struct stat by_fd {};
    struct stat by_path {};
    if (::fstat(fd, &by_fd) != 0) {
      ::close(fd);
      return Status::kSystem;
    }
    if (::stat(path.c_str(), &by_path) != 0 || by_path.st_ino != by_fd.st_ino ||
        by_path.st_dev != by_fd.st_dev) {
      ::close(fd);  // we locked a file that was unlinked meanwhile: retry
      exclusive = false;
      continue;
    }
    if (by_fd.st_size > 0) {
      // A dead publisher's segment (its lock is free). We hold the lock, so we alone reclaim.
      // The segment path goes last: while it names the file we hold locked, no other publisher
      // can take the key, so we never unlink a ring or socket that a new owner just created.
      Status s = UnlinkIfExists(RingPath(key));
      if (s == Status::kOk) s = UnlinkIfExists(SocketPath(key));
      CUFRAMES_FAULT_POINT("pub.reclaim.before_segment_unlink");
      if (s == Status::kOk) s = UnlinkIfExists(path);
      ::close(fd);
      if (s != Status::kOk) return s;
      exclusive = true;
      continue;
    }
    // Exact mode regardless of umask.
    if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
      const int err = errno;
      ::close(fd);
      return err == EPERM ? Status::kPermission : Status::kSystem;
    }
    *fd_out = fd;
    return Status::kOk;
  }
  return Status::kKeyInUse;  // the file kept being replaced under us: someone else owns it
}

int CountOpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  int n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory stream's own fd
}

}  // namespace cuframes
