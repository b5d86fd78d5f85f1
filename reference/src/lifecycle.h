// lifecycle.h: names of a key's resources, publisher liveness by flock, stale-resource reclaim
// and process identity (spec section 1).
//
// A publisher owns key K while it holds an exclusive flock on /dev/shm/cuframes-K; the lock dies
// with the process, so liveness survives pid reuse. Exactly one process -- the one that takes the
// lock of a dead publisher's non-empty segment -- unlinks the stale files. Subscribers never
// unlink anything.
#ifndef CUFRAMES_REFERENCE_SRC_LIFECYCLE_H_
#define CUFRAMES_REFERENCE_SRC_LIFECYCLE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "status.h"

namespace cuframes {

inline constexpr uint32_t kLibVersionMajor = 0;
inline constexpr uint32_t kLibVersionMinor = 2;
inline constexpr uint32_t kLibVersionPatch = 0;

// Returns lib_version as (major << 16) | (minor << 8) | patch.
constexpr uint32_t LibVersion() {
  return (kLibVersionMajor << 16) | (kLibVersionMinor << 8) | kLibVersionPatch;
}

// Returns true if `key` is 1..64 characters of [A-Za-z0-9_.-] and does not start with '.'.
bool ValidKey(std::string_view key);

// Returns the socket directory: $CUFRAMES_SOCKET_DIR if set and non-empty, else "/tmp".
std::string SocketDir();

// Returns "<SocketDir()>/cuframes-<key>.sock".
std::string SocketPath(std::string_view key);

// Returns "/dev/shm/cuframes-<key>" (the POSIX shm name "/cuframes-<key>").
std::string SegmentPath(std::string_view key);

// Returns "/dev/shm/cuframes-<key>-packets".
std::string RingPath(std::string_view key);

// Returns field 22 (starttime, clock ticks since boot) of /proc/<pid>/stat, or 0 if unreadable.
uint64_t ProcStartTime(pid_t pid);

// Unlinks `path` (spec RES-PERM-03). Returns kOk (unlinked or did not exist), kPermission
// (EPERM/EACCES/EROFS, e.g. a file of another user in the sticky /dev/shm), kSystem (any other
// errno).
Status UnlinkIfExists(const std::string& path);

// Takes ownership of `key` for a new publisher (spec 1.3): opens/creates the segment file with
// `mode`, takes LOCK_EX|LOCK_NB, verifies the locked file is still the one at the path, and
// reclaims a dead publisher's stale segment, packet ring and socket file if the locked file is
// non-empty. On kOk, *fd is the locked, empty segment file (O_CLOEXEC).
// Returns kOk, kInvalidArgument (bad key), kKeyInUse (a live publisher holds the lock; none of
// its files were touched), kPermission (a stale file could not be unlinked, or open denied),
// kSystem (a stale file could not be unlinked for another reason),
// kSystem (another OS error); kKeyInUse also when 8 attempts found the file replaced under us.
Status AcquireKey(std::string_view key, uint32_t mode, int* fd);

// Returns the number of open file descriptors of this process (entries of /proc/self/fd), or -1.
int CountOpenFds();

}  // namespace cuframes

#endif  // CUFRAMES_REFERENCE_SRC_LIFECYCLE_H_
