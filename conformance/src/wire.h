// wire.h: the raw transports the harness meets an IUT on: Unix-socket connections carrying TLV
// messages, POSIX shared-memory files in /dev/shm, and shared futex words.
//
// Every receive takes a deadline and records the bytes seen, so a failing case can show exactly
// what the IUT sent (and what the harness sent it) as a hex dump.
#ifndef CUFRAMES_CONFORMANCE_SRC_WIRE_H_
#define CUFRAMES_CONFORMANCE_SRC_WIRE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "process.h"
#include "tlv.h"

namespace cuframes::conform {

// What the harness's reads on one connection saw, shared with the observer thread so that it can
// tell when DETACH or end-of-file became readable (RES-CLOSE-01 is judged against segment samples
// on the same monotonic clock). Times are steady_clock nanoseconds, 0 = not yet.
struct ConnProbe {
  std::mutex mu;  // guards fd against Conn::Close() while the observer polls it
  int fd = -1;
  uint16_t detach_type = 0;  // the DETACH message type (set by whoever registers the probe)
  std::atomic<int64_t> first_rx_ns{0}, detach_ns{0}, eof_ns{0}, closed_ns{0};
};

class Conn {
 public:
  enum class Rx { kMsg, kEof, kTimeout, kTooLarge };

  explicit Conn(int fd);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Connects to the Unix socket at `path`, retrying ECONNREFUSED/ENOENT until `deadline`.
  // Returns nullptr and sets *error on failure.
  static std::unique_ptr<Conn> Connect(const std::string& path, Deadline deadline,
                                       std::string* error);

  // Writes all of `bytes`. Returns false if the peer has closed (EPIPE/ECONNRESET) or on error.
  bool Send(std::span<const uint8_t> bytes);
  // Writes all of `bytes` with `fds` as one SCM_RIGHTS control message of the first sendmsg (the
  // CUDA_VMM_FD HELLO_RESP, KIND-04). The descriptors stay ours. Returns false as Send does, or
  // when there are more than 253 (SCM_MAX_FD).
  bool SendWithFds(std::span<const uint8_t> bytes, std::span<const int> fds);
  // Writes `bytes` in pieces of `chunk` bytes, pausing `gap_ms` between pieces so that the peer's
  // reads see them separately (pacing to split the stream, not synchronization).
  bool SendPaced(std::span<const uint8_t> bytes, size_t chunk, int gap_ms);

  // Receives the next message. Returns kMsg (*out filled), kEof (peer closed or reset), kTimeout,
  // or kTooLarge (the header announced more than 4096 + 64 bytes; *out holds the header).
  Rx Recv(TlvMsg* out, Deadline deadline);
  // Receives messages until EOF. Returns true if the peer closed before `deadline`; messages
  // received meanwhile are appended to *extra (may be null).
  bool WaitClosed(Deadline deadline, std::vector<TlvMsg>* extra);
  // Returns true if the peer has closed already (non-blocking check; buffered data is kept).
  bool PeerClosed();
  void Close();
  // Half-closes: the peer sees EOF, and the harness can still read what the peer sends back.
  void ShutdownWrite();
  int fd() const { return fd_; }
  const std::shared_ptr<ConnProbe>& probe() const { return probe_; }
  const std::vector<uint8_t>& sent() const { return sent_; }
  const std::vector<uint8_t>& received() const { return received_; }
  // The descriptors that arrived (SCM_RIGHTS) since the last call, in order; the caller owns
  // them. *truncated (may be null) is set when the kernel cut the control data (MSG_CTRUNC).
  // Every read takes them (close-on-exec), so none is ever dropped unseen.
  std::vector<int> TakeFds(bool* truncated = nullptr);

 private:
  int fd_;
  std::shared_ptr<ConnProbe> probe_ = std::make_shared<ConnProbe>();
  bool eof_ = false;
  std::vector<uint8_t> rx_;
  std::vector<uint8_t> sent_;
  std::vector<uint8_t> received_;
  std::vector<int> fds_;  // received, not yet taken; closed by Close()
  bool fds_truncated_ = false;
  // recv() that also collects SCM_RIGHTS descriptors into fds_.
  ssize_t RecvBytes(uint8_t* buf, size_t size, int flags);
};

class Listener {
 public:
  ~Listener();
  // Binds and listens on `path` (unlinking nothing: the path must be free). Returns nullptr and
  // sets *error on failure.
  static std::unique_ptr<Listener> Bind(const std::string& path, std::string* error);
  // Accepts one connection before `deadline`; gives up early when `watch` (may be null) exits.
  std::unique_ptr<Conn> Accept(Deadline deadline, Process* watch);
  void Close();
  // Closes the socket but leaves its file behind, as the death of the process would (a stale
  // socket file for the reclaim cases); Close() and the destructor then do nothing.
  void Abandon();
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// A mapped /dev/shm file.
class ShmFile {
 public:
  ~ShmFile();
  // Maps the existing file at `path` (read-write when `writable`). Returns nullptr and sets
  // *error on failure (including an empty file).
  static std::unique_ptr<ShmFile> Open(const std::string& path, bool writable, std::string* error);
  // Creates `path` with O_EXCL and mode 0600, takes an exclusive flock (the publisher liveness
  // lock of RES-LIVE-01), sizes it to `size` and maps it read-write.
  static std::unique_ptr<ShmFile> Create(const std::string& path, size_t size, std::string* error);
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<uint8_t> span() const { return {data_, size_}; }
  int fd() const { return fd_; }
  // Returns the size of the file now at the path (may differ from the mapping), or -1.
  static long long FileSize(const std::string& path);
  // Returns the file's mode bits (st_mode & 0777) or -1.
  static int FileMode(const std::string& path);
  // Returns true when some other process holds a flock on the file at `path`.
  static bool LockedByOther(const std::string& path);

 private:
  int fd_ = -1;
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// FUTEX_WAKE (shared) on the 32-bit word at `word`, waking all waiters.
void FutexWakeAll(void* word);
// How a FUTEX_WAIT ended.
enum class WaitEnd {
  kWoken,    // a FUTEX_WAKE woke us (or a signal: EINTR, which the harness does not send)
  kChanged,  // EAGAIN: the word already differed from `expected` (the legit race)
  kTimeout,  // ETIMEDOUT: nobody woke us
};
// FUTEX_WAIT (shared) while *word == expected, at most `timeout_ms`. Returns how it ended.
WaitEnd FutexWait(void* word, uint32_t expected, int timeout_ms);
// The same with FUTEX_WAIT_BITSET: only a wake-up whose bitset shares a bit with `bits` (or a
// plain FUTEX_WAKE) ends it (SHM-WAKE-01).
WaitEnd FutexWaitBitset(void* word, uint32_t expected, int timeout_ms, uint32_t bits);
// FUTEX_WAKE_BITSET (shared): wakes up to `count` waiters whose bitset shares a bit with
// `bits`; returns how many it woke.
int FutexWakeBitset(void* word, int count, uint32_t bits);
// Atomically adds 1 to the 32-bit word at `word` (release order) and returns the new value.
uint32_t AtomicIncrement32(void* word);

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_WIRE_H_
