// packet_ring_stress_test.cpp: one writer and three readers on a small ring, so that readers are
// lapped constantly. Every delivered payload carries its seq and a checksum; a reader must never
// see a torn or misplaced packet, only PACKET_OVERRUN (after which it resumes at a keyframe).
//
// Two variants: reader threads in this process, and reader processes (this binary re-executed
// with --ring-reader-child, mapping a memfd read-only). Both are bounded by packet count, not
// time; every wait has a timeout, and no sleep is used for synchronization. Both use a waiter
// count (packet_waiters, SHM-ORDER-02/04) in a separate writable page, as the frame segment
// header holds it, so publishes skip FUTEX_WAKE while no reader sleeps.
//
// A third test runs writer and reader in lockstep (publish one packet, wait until it was read),
// so that every publish races with the reader going to sleep: a lost wake-up there shows up as a
// next() call that took a whole bounded wait (PEER_DEATH_DETECT_MS) instead of microseconds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "mem_order.h"
#include "packet_ring.h"
#include "reader_processes.h"
#include "status.h"

namespace cuframes::ring {
namespace {

constexpr uint64_t kPackets = CUFRAMES_TSAN ? 20000 : 200000;  // TSan is ~10x slower
constexpr uint64_t kCapacity = 8192;
constexpr uint32_t kMaxPacket = 1500;
constexpr uint64_t kKeyInterval = 7;
constexpr int kReaders = 3;
constexpr int kHangGuardMs = 20000;  // a next() that waits this long means a lost wake-up

// Payload: [seq u64][filler][fnv1a64 of everything before it, u64]; at least 16 bytes.
uint32_t SizeOf(uint64_t seq) {
  uint64_t x = seq * 0x9E3779B97F4A7C15ull;
  x ^= x >> 31;
  return 16 + static_cast<uint32_t>(x % (kMaxPacket - 15));
}

bool IsKey(uint64_t seq) {
  return seq % kKeyInterval == 1 || seq == kPackets;
}

uint64_t Fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void Fill(uint64_t seq, std::vector<uint8_t>& buf) {
  const uint32_t size = SizeOf(seq);
  buf.resize(size);
  std::memcpy(buf.data(), &seq, 8);
  for (uint32_t i = 8; i < size - 8; ++i)
    buf[i] = static_cast<uint8_t>(seq * 31 + i);
  const uint64_t sum = Fnv1a(buf.data(), size - 8);
  std::memcpy(buf.data() + size - 8, &sum, 8);
}

void Publish(RingWriter& w) {
  std::vector<uint8_t> buf;
  for (uint64_t seq = 1; seq <= kPackets; ++seq) {
    Fill(seq, buf);
    const Status s = w.publish(buf.data(), static_cast<uint32_t>(buf.size()),
                               IsKey(seq) ? kPacketKeyframe : 0, static_cast<int64_t>(seq));
    if (s != Status::kOk) {
      ADD_FAILURE() << "publish " << seq << ": " << StatusName(s);
      break;
    }
  }
  w.close();
}

struct ReaderResult {
  uint64_t delivered = 0;
  uint64_t overruns = 0;
  uint64_t last_seq = 0;
  std::string error;  // empty: every invariant held
};

// Reads until PEER_CLOSED, checking every packet. poll == true: non-blocking next() calls with
// yields; otherwise blocking next() with a hang guard.
ReaderResult ReadAll(RingReader& r, bool poll) {
  ReaderResult res;
  bool need_key = true;  // after attach and after every overrun
  uint64_t prev = 0;
  char msg[256];
  for (;;) {
    Packet p;
    const Status s = r.next(p, poll ? 0 : kHangGuardMs);
    if (s == Status::kAgain && poll) {
      std::this_thread::yield();
      continue;
    }
    if (s == Status::kPeerClosed) break;
    if (s == Status::kPacketOverrun) {
      ++res.overruns;
      need_key = true;
      continue;
    }
    if (s != Status::kOk) {
      std::snprintf(msg, sizeof(msg), "next after seq %" PRIu64 ": %s", prev, StatusName(s));
      res.error = msg;
      return res;
    }
    const size_t n = p.data.size();
    uint64_t seq_in = 0;
    uint64_t sum_in = 0;
    if (n >= 16) {
      std::memcpy(&seq_in, p.data.data(), 8);
      std::memcpy(&sum_in, p.data.data() + n - 8, 8);
    }
    const char* bad = nullptr;
    if (n != SizeOf(p.seq)) {
      bad = "size";
    } else if (seq_in != p.seq || p.pts != static_cast<int64_t>(p.seq)) {
      bad = "seq";
    } else if (sum_in != Fnv1a(p.data.data(), n - 8)) {
      bad = "checksum (torn payload)";
    } else if (p.flags != (IsKey(p.seq) ? kPacketKeyframe : 0u)) {
      bad = "flags";
    } else if (need_key && !(p.flags & kPacketKeyframe)) {
      bad = "non-keyframe before the first keyframe after a (re)sync";
    } else if (p.seq <= prev || (!need_key && p.seq != prev + 1)) {
      bad = "sequence gap without an overrun";
    }
    if (bad != nullptr) {
      std::snprintf(msg, sizeof(msg), "packet %" PRIu64 " (prev %" PRIu64 ", size %zu): bad %s",
                    p.seq, prev, n, bad);
      res.error = msg;
      return res;
    }
    need_key = false;
    prev = p.seq;
    ++res.delivered;
  }
  res.last_seq = prev;
  if (res.overruns != r.overruns()) res.error = "overrun count mismatch";
  return res;
}

void CheckResult(const ReaderResult& r, int i) {
  EXPECT_EQ(r.error, "") << "reader " << i;
  EXPECT_GT(r.delivered, 0u) << "reader " << i;
  EXPECT_EQ(r.last_seq, kPackets) << "reader " << i << " missed the final keyframe";
  std::printf("reader %d: delivered %" PRIu64 ", overruns %" PRIu64 "\n", i, r.delivered,
              r.overruns);
}

TEST(PacketRingStress, ThreadsNeverSeeTornPackets) {
  const size_t size = RingSegmentSize(kCapacity);
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  alignas(64) uint32_t waiters = 0;  // packet_waiters
  RingWriter w;
  ASSERT_EQ(w.init(mem, size, kCapacity, kMaxPacket, 1), Status::kOk);
  w.set_waiter_count(&waiters);
  std::vector<ReaderResult> results(kReaders);
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&, i] {
      RingReader r;
      const Status s = r.attach(mem, size);
      if (s != Status::kOk) {
        results[i].error = std::string("attach: ") + StatusName(s);
        return;
      }
      r.set_waiter_count(&waiters);
      results[i] = ReadAll(r, /*poll=*/i == 0);
    });
  }
  Publish(w);
  uint64_t overruns = 0;
  for (int i = 0; i < kReaders; ++i) {
    readers[i].join();
    CheckResult(results[i], i);
    overruns += results[i].overruns;
  }
  EXPECT_GT(overruns, 0u) << "the ring is meant to be small enough for readers to be lapped";
  EXPECT_EQ(mem::load_seq_cst(&waiters), 0u) << "every increment has its decrement";
  munmap(mem, size);
}

// Nanoseconds the thread that opened it has spent runnable but waiting for a CPU: the second
// field of /proc/thread-self/schedstat, read through one descriptor (a pread per call, cheap
// enough for every round). Read() returns -1 when the kernel does not say.
class RunQueueWait {
 public:
  RunQueueWait() : fd_(open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC)) {}
  ~RunQueueWait() {
    if (fd_ >= 0) close(fd_);
  }
  RunQueueWait(const RunQueueWait&) = delete;
  RunQueueWait& operator=(const RunQueueWait&) = delete;
  int64_t Read() const {
    char buf[128];
    const ssize_t n = fd_ < 0 ? -1 : pread(fd_, buf, sizeof buf - 1, 0);
    if (n <= 0) return -1;
    buf[n] = '\0';
    unsigned long long on_cpu = 0, waiting = 0;
    return std::sscanf(buf, "%llu %llu", &on_cpu, &waiting) == 2 ? static_cast<int64_t>(waiting)
                                                                 : -1;
  }

 private:
  int fd_;
};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A lost wake-up leaves the reader asleep in FUTEX_WAIT for its whole bounded wait after the
// packet was published. A slow next() is only counted as one when the reader was neither running
// nor waiting for a CPU for most of a bounded wait after the publish: on a loaded machine (or in
// a sanitizer build) a woken reader, or the writer itself, can wait that long for a CPU, which
// wall time alone cannot tell from a missed wake-up.
TEST(PacketRingStress, LockstepPublishesNeverLoseAWakeUp) {
  constexpr uint64_t kRounds = CUFRAMES_TSAN ? 3000 : 30000;
  const size_t size = RingSegmentSize(kCapacity);
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  alignas(64) uint32_t waiters = 0;
  RingWriter w;
  ASSERT_EQ(w.init(mem, size, kCapacity, kMaxPacket, 1), Status::kOk);
  w.set_waiter_count(&waiters);
  RingReader r;
  ASSERT_EQ(r.attach(mem, size), Status::kOk);
  r.set_waiter_count(&waiters);
  std::atomic<uint64_t> consumed{0};
  std::atomic<bool> stop{false};
  // When publish(n) had returned: published_ns, then published_seq = n (release).
  std::atomic<int64_t> published_ns{0};
  std::atomic<uint64_t> published_seq{0};
  std::thread writer([&] {
    const uint8_t payload[16] = {};
    for (uint64_t n = 1; n <= kRounds && !stop.load(); ++n) {
      if (w.publish(payload, sizeof(payload), n == 1 ? kPacketKeyframe : 0, 0) != Status::kOk) {
        ADD_FAILURE() << "publish " << n;
        break;
      }
      published_ns.store(NowNs(), std::memory_order_relaxed);
      published_seq.store(n, std::memory_order_release);
      // Wait until the reader has it, so the next publish meets a reader on its way to sleep.
      while (consumed.load(std::memory_order_acquire) < n && !stop.load())
        std::this_thread::yield();
    }
    w.close();
  });
  const int64_t slow_ns = int64_t{kPeerDeathDetectMs} * 4 / 5 * 1000000;
  const RunQueueWait run_queue;  // this (the reader's) thread's
  int64_t queued_before = run_queue.Read();
  const bool have_schedstat = queued_before >= 0;
  uint64_t slow_calls = 0, busy_machine_calls = 0;
  uint64_t got = 0;
  for (;;) {
    Packet p;
    const int64_t called_ns = NowNs();
    const Status s = r.next(p, kHangGuardMs);
    const int64_t returned_ns = NowNs();
    // CPU waits since the previous return (the call, and the few steps before it): counting the
    // latter as well only makes the verdict more lenient.
    int64_t queued_ns = 0;
    if (have_schedstat) {
      const int64_t queued_now = run_queue.Read();
      queued_ns = queued_now - queued_before;
      queued_before = queued_now;
    }
    if (s == Status::kPeerClosed) break;
    if (s != Status::kOk) {
      ADD_FAILURE() << "next after " << got << ": " << StatusName(s);
      break;
    }
    if (p.seq != got + 1) {
      ADD_FAILURE() << "packet " << p.seq << " after " << got;
      break;
    }
    if (returned_ns - called_ns >= slow_ns) {
      // A slow call: how long after the publish did it return, less its CPU waits? The writer
      // records publish(n)'s return right after it; in lockstep it cannot publish n + 1 before
      // we store consumed = n, so this is packet n's time (a bounded wait: the writer only has
      // its two stores to make).
      while (published_seq.load(std::memory_order_acquire) < p.seq)
        std::this_thread::yield();
      const int64_t since_publish_ns = returned_ns - published_ns.load(std::memory_order_relaxed);
      if (since_publish_ns >= slow_ns) ++busy_machine_calls;
      if (since_publish_ns - queued_ns >= slow_ns && ++slow_calls >= 3) break;  // stop early
    }
    consumed.store(++got, std::memory_order_release);
  }
  stop = true;
  writer.join();
  if (slow_calls < 3) {
    EXPECT_EQ(got, kRounds);
  }
  // A reader that slept most of a bounded wait after its packet was published, without waiting
  // for a CPU, missed its wake-up.
  EXPECT_EQ(slow_calls, 0u) << "next() calls that slept >= " << slow_ns / 1000000
                            << " ms after their packet was published";
  EXPECT_EQ(mem::load_seq_cst(&waiters), 0u);
  std::printf("lockstep: %" PRIu64 " packets, %" PRIu64 " missed wake-ups, %" PRIu64
              " returns >= %" PRId64 " ms after the publish explained by CPU waits%s\n",
              got, slow_calls, busy_machine_calls - std::min(busy_machine_calls, slow_calls),
              slow_ns / 1000000,
              have_schedstat ? "" : " (no /proc/thread-self/schedstat: wall time only)");
  munmap(mem, size);
}

// ----------------------------------------------------------------------------- processes

// Child: map the ring memfd read-only and the waiter-count page writable, attach, say "ready"
// on the pipe, read everything.
int ReaderChild(int mem_fd, int count_fd, int ready_fd, int poll) {
  const size_t size = RingSegmentSize(kCapacity);
  void* mem = mmap(nullptr, size, PROT_READ, MAP_SHARED, mem_fd, 0);
  void* count = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, count_fd, 0);
  if (mem == MAP_FAILED || count == MAP_FAILED) {
    std::perror("child mmap");
    return 2;
  }
  RingReader r;
  const Status s = r.attach(mem, size);
  if (s != Status::kOk) {
    std::fprintf(stderr, "child attach: %s\n", StatusName(s));
    return 2;
  }
  r.set_waiter_count(static_cast<uint32_t*>(count));
  if (!cuframes::testing::SignalReady(ready_fd)) return 2;
  const ReaderResult res = ReadAll(r, poll != 0);
  std::printf("child %d: delivered %" PRIu64 ", overruns %" PRIu64 ", last %" PRIu64 "\n",
              static_cast<int>(getpid()), res.delivered, res.overruns, res.last_seq);
  if (!res.error.empty()) {
    std::fprintf(stderr, "child: %s\n", res.error.c_str());
    return 1;
  }
  return res.last_seq == kPackets && res.delivered > 0 ? 0 : 3;
}

TEST(PacketRingStress, ProcessesNeverSeeTornPackets) {
  const size_t size = RingSegmentSize(kCapacity);
  const int fd = memfd_create("cuframes-ring-stress", 0);  // inherited across exec
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(mem, MAP_FAILED);
  // The waiter count lives in its own writable page, as packet_waiters lives in the frame segment.
  const int count_fd = memfd_create("cuframes-ring-stress-waiters", 0);
  ASSERT_GE(count_fd, 0);
  ASSERT_EQ(ftruncate(count_fd, 4096), 0);
  void* count = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, count_fd, 0);
  ASSERT_NE(count, MAP_FAILED);
  auto* waiters = static_cast<uint32_t*>(count);
  RingWriter w;
  ASSERT_EQ(w.init(mem, size, kCapacity, kMaxPacket, 1), Status::kOk);
  w.set_waiter_count(waiters);
  // Reader processes (reader_processes.h): each says "ready" after a successful attach.
  cuframes::testing::RunReaderProcesses(
      kReaders,
      [&](int i, int ready_fd) {
        return std::vector<std::string>{"packet_ring_stress_test", "--ring-reader-child",
                                        std::to_string(fd),        std::to_string(count_fd),
                                        std::to_string(ready_fd),  std::to_string(i == 0 ? 1 : 0)};
      },
      10000, [&] { Publish(w); });
  EXPECT_EQ(mem::load_seq_cst(waiters), 0u) << "every increment has its decrement";
  munmap(count, 4096);
  close(count_fd);
  munmap(mem, size);
  close(fd);
}

}  // namespace
}  // namespace cuframes::ring

int main(int argc, char** argv) {
  if (argc == 6 && std::strcmp(argv[1], "--ring-reader-child") == 0) {
    return cuframes::ring::ReaderChild(std::atoi(argv[2]), std::atoi(argv[3]), std::atoi(argv[4]),
                                       std::atoi(argv[5]));
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
