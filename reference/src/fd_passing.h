// fd_passing.h: file descriptors on the Unix socket (SCM_RIGHTS), for CUDA_VMM_FD (spec 7.1):
// the publisher sends the slot buffers' descriptors with the bytes of HELLO_RESP(OK) (KIND-04),
// the subscriber receives its socket's bytes together with whatever descriptors came with them
// (KIND-06) and closes those it does not use (KIND-07).
#ifndef CUFRAMES_REFERENCE_SRC_FD_PASSING_H_
#define CUFRAMES_REFERENCE_SRC_FD_PASSING_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace cuframes::fdpass {

// The most descriptors one message carries (Linux SCM_MAX_FD); a CUDA_VMM_FD publisher has at
// most this many slots (KIND-04).
inline constexpr size_t kMaxFds = 253;

// Sends `bytes` with `fds` as one SCM_RIGHTS control message of the sendmsg call that carries the
// first byte; the rest, if the socket takes only part, goes with plain sends. `flags` are the
// send flags (MSG_NOSIGNAL, MSG_DONTWAIT, ...). With no descriptors it is an ordinary send.
// Returns true when every byte was sent; false on an error (errno set; EAGAIN when a
// non-blocking socket is full) or when fds.size() > kMaxFds (EINVAL).
bool SendWithFds(int sock, std::span<const uint8_t> bytes, std::span<const int> fds, int flags);

// What one RecvWithFds() got.
struct Received {
  ssize_t n = -1;          // bytes read (0: end-of-file; < 0: error, errno set)
  bool truncated = false;  // MSG_CTRUNC: descriptors were lost (the kernel closed them)
};

// recvmsg into `buf` with room for kMaxFds descriptors, received close-on-exec; every descriptor
// that arrives is appended to *fds (the caller owns them). `flags` as for recv.
Received RecvWithFds(int sock, std::span<uint8_t> buf, std::vector<int>* fds, int flags);

// Closes every descriptor of *fds and clears it.
void CloseAll(std::vector<int>* fds);

}  // namespace cuframes::fdpass

#endif  // CUFRAMES_REFERENCE_SRC_FD_PASSING_H_
