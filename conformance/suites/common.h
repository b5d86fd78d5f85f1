// common.h: scenario helpers shared by the suites (starting the IUT publisher, a well-behaved
// scripted subscriber run, cleanup checks).
#ifndef CUFRAMES_CONFORMANCE_SUITES_COMMON_H_
#define CUFRAMES_CONFORMANCE_SUITES_COMMON_H_

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "bytes.h"
#include "payload.h"
#include "peers.h"
#include "registry.h"

namespace cuframes::conform {

// Starts the IUT publisher for ctx.key() with `args` and waits for its ready event.
Process& StartPub(CaseContext& ctx, const std::vector<std::string>& args);

// A well-behaved scripted subscriber that attaches, reads and releases frames start..last and
// checks them against the publisher's frame events. Returns the subscriber.
std::unique_ptr<ScriptedSub> GoodSubscriber(CaseContext& ctx, Process& pub, uint64_t frames,
                                            uint64_t max_proto = 1);

// Expects the publisher's resources to be gone once it exited (RES-CLOSE-03): socket file,
// segment, packet ring.
void ExpectNoLeftovers(CaseContext& ctx, const std::string& key);

// After the publisher adapter exited: its stdout followed ADAPTER.md's timeline (ready first,
// frames 1..frames in order, then done), reported under ADP-EVENT-01/02.
void ExpectPublisherTimeline(CaseContext& ctx, Process& pub, uint64_t frames);

// Expects the publisher adapter to exit 0 within `timeout_ms` (after a clean run).
void ExpectCleanExit(CaseContext& ctx, Process& pub, int timeout_ms = 5000);

// Standard publisher arguments: --key, --frames N, --slots S, --wait-subscribers W, short linger.
std::vector<std::string> PubArgs(CaseContext& ctx, uint64_t frames, uint64_t slots = 2,
                                 uint64_t wait = 1);

// The scripted publisher's standard proto_version 2 setup with a packet ring: an 8 KiB ring and
// 1000-byte packets, small enough that a few packets wrap it.
PubParams RingPubParams();

// IUT subscriber arguments asking for N packets, host kind, 3 s per call.
std::vector<std::string> SubPacketArgs(uint64_t packets);

// The open descriptors of process `pid` whose /proc/<pid>/fd link starts with `prefix`
// ("socket:", a path), or -1 when /proc does not show them (another uid without ptrace rights).
int FdsLinkedTo(pid_t pid, std::string_view prefix);

// Descriptors a hostile peer passes with SCM_RIGHTS where none belongs (KIND-07: a peer closes,
// unused, every descriptor that arrives with any other message or on a connection of another
// kind): memfds whose /proc link starts with kLink, so FdsLinkedTo finds any the IUT kept.
struct StrayFds {
  static constexpr std::string_view kLink = "/memfd:cuframes-stray";
  StrayFds(CaseContext& ctx, int n);
  ~StrayFds();
  StrayFds(const StrayFds&) = delete;
  StrayFds& operator=(const StrayFds&) = delete;
  std::vector<int> fds;
};

// SHM-ORDER-04 for an IUT subscriber against a scripted publisher: waits at most `ms` until the
// subscriber counts itself in `field` ("frame_waiters", "packet_waiters") of the scripted
// header, i.e. it is parked in FUTEX_WAIT. Returns false when it never does (a reader that
// polls, SHM-ORDER-03 MAY) or exits first.
bool WaitParked(ScriptedPub& pub, const char* field, Process& sub, int ms);

// Waits (bounded) until the IUT publisher blocks for ACKs (ack_waiting = 1) or write_seq passes
// `seq`, as seen by scripted subscriber `s`; returns write_seq.
uint64_t WaitBlockedOrPast(ScriptedSub& s, uint64_t seq, int timeout_ms);

// True once thread `tid` of process `pid` (0: this process) sleeps in the kernel's futex wait,
// bounded by `ms`. wchan names the wait where the kernel shows symbols; where it shows "0"
// (symbols hidden), a thread asleep (state S in its stat) is taken as parked.
bool ThreadParkedOnFutex(pid_t tid, int ms, pid_t pid = 0);
// True once every thread of process `pid` is asleep (state S) and one of them in a futex wait,
// at the same scan, bounded by `ms`: a subscriber that counted itself in a waiter count and has
// no thread left running is inside its FUTEX_WAIT.
bool ProcessParkedOnFutex(pid_t pid, int ms);

// After the IUT subscriber exited cleanly: every waiter count it took in the scripted header is
// given back (SHM-ORDER-04: it decrements after each wait). `parks` is how many times it was
// seen parked (evidence).
void ExpectWaiterCountsReturned(CaseContext& ctx, ScriptedPub& pub, int parks);
// RES-CRASH-01 for a subscriber blocked in a wait: once it counts itself in `waiters_field`
// (frame_waiters or packet_waiters; a poller that never does is crashed after 2 s anyway), the
// scripted publisher dies (socket closed), and the adapter must report PEER_CLOSED within
// PEER_DEATH_DETECT_MS (+250 ms of scheduling slack) and exit (RES-CRASH-03). A death noticed
// between two calls proves nothing about a blocked wait, hence the wait for the count.
void CrashWhileParked(CaseContext& ctx, ScriptedPub& pub, Process& sub, const char* waiters_field);

// Maps the IUT publisher's packet ring read-only (the harness only reads an IUT's ring);
// fails `req` when the file does not exist.
std::unique_ptr<ShmFile> OpenIutRing(CaseContext& ctx, const std::string& req);
// Waits on packet_futex, bounded by `ms`, until the ring header `r` shows head_seq >= n, or until
// `pub` exited when given (it will publish nothing more). Returns the head_seq last seen.
uint64_t WaitHeadSeq(StructView& r, uint64_t n, int ms, Process* pub = nullptr);

// Fails `req` when process `pid` still holds any StrayFds descriptor `what` passed to it.
void ExpectNoStrayFds(CaseContext& ctx, pid_t pid, const std::string& req, const std::string& what);

// TLV-ERR-09, a PING stalled after the handshake: Start sends its first 5 bytes (inside the
// header) on `c`; Finish expects nothing and the connection kept until HANDSHAKE_TIMEOUT_MS +
// 500 ms after Start, then sends the rest and expects PONG with the nonce within
// PONG_DEADLINE_MS (MSG-PING-01).
class StalledPing {
 public:
  StalledPing(CaseContext& ctx, Conn& c, uint64_t nonce);
  void Finish();

 private:
  CaseContext& ctx_;
  Conn& c_;
  const uint64_t nonce_;
  std::vector<uint8_t> bytes_;
  Clock::time_point started_;
};

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SUITES_COMMON_H_
