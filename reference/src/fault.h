// fault.h: named fault points of the reference, for crash-recovery tests (spec 1.7, informative).
//
// A fault point marks a step where the death of the process leaves shared state half-done: a
// frame half-written, a seqlock odd, a subscriber slot reserved but not attached, a shut-down
// half-way. The tests choose one point per process through the environment:
//
//   CUFRAMES_FAULT=<point>[:<nth>[:<action>]]
//     point   a name of kFaultPoints below
//     nth     fire on the nth hit of that point in this process (default 1)
//     action  "kill" (default): raise(SIGKILL) on itself, so the death happens exactly there;
//             "stop": raise(SIGSTOP) on itself and go on after SIGCONT (lets a test interleave
//             another process at that step, without sleeps)
//
// Before it acts, the point writes one line to stderr (one write(2), so it is never interleaved):
//   {"event":"fault","point":"<name>","nth":N,"action":"kill","pid":P,"t_ns":T}
// T is CLOCK_MONOTONIC in nanoseconds (system-wide, comparable with the adapters' --diag t_ns).
//
// Every build has the points; unset, each costs one relaxed load of a global (after the first
// use, which reads the environment once). CUFRAMES_FAULT_POINT("name") checks at compile time that
// the name is listed in kFaultPoints, so the list is complete and tests can enumerate it.
#ifndef CUFRAMES_REFERENCE_SRC_FAULT_H_
#define CUFRAMES_REFERENCE_SRC_FAULT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cuframes::fault {

struct FaultPoint {
  std::string_view name;    // "<role>.<phase>.<step>"; role is "pub" or "sub"
  std::string_view leaves;  // what the death at this point leaves half-done (spec 1.7)
};

// The documented list (spec 1.7). interop/fault_points.py parses the `{"name", "leaves"}` entries
// from this header, and interop/test_crash_recovery.py kills a process at each one.
inline constexpr FaultPoint kFaultPoints[] = {
    // publisher start-up (spec 1.3)
    {"pub.init.after_lock", "segment file created and flocked, still empty; no ring, no socket"},
    {"pub.init.before_ready", "segment and ring written, state INIT; no socket"},
    {"pub.init.after_bind", "segment READY; socket file bound but not listening"},
    {"pub.reclaim.before_segment_unlink",
     "reclaiming a dead publisher's files: stale ring and socket gone, stale segment still there"},
    // publisher handshake, per connection (spec 4.2)
    {"pub.hs.after_hello_req", "HELLO_REQ received, no slot reserved, no reply"},
    {"pub.hs.after_hello_resp", "subscriber slot ATTACHING, HELLO_RESP sent"},
    {"pub.hs.after_attach_req", "ATTACH_REQ received, slot still ATTACHING, no ATTACH_RESP"},
    {"pub.hs.after_attach_resp", "slot ACTIVE with its start_seq, ATTACH_RESP sent"},
    // publisher frame path (spec 5.2)
    {"pub.frame.after_acquire", "ACK wait for slot done, nothing of frame n written"},
    {"pub.frame.mid_write",
     "slot buffer half overwritten by frame n; meta.seq still n - slot_count"},
    {"pub.frame.after_meta", "FrameMeta fields of frame n written, meta.seq not yet n"},
    {"pub.frame.after_seq", "meta.seq = n stored, write_seq still n - 1"},
    {"pub.frame.after_write_seq", "write_seq = n stored, frame_futex not incremented, no wake"},
    // publisher packet ring (spec 10.4, 10.5)
    {"pub.packet.mid_payload", "record lock 2n - 1 (odd), header and half the payload written"},
    {"pub.packet.after_record", "record complete (lock 2n), head_seq still n - 1"},
    {"pub.params.lock_odd", "codec parameters lock odd, new data written, generation unpublished"},
    // publisher shut-down (spec 1.4)
    {"pub.close.after_socket_unlink", "socket file gone, connections still open, segment READY"},
    {"pub.close.after_detach", "every connection sent DETACH and closed, segment READY"},
    {"pub.close.after_state_closed", "segment state CLOSED and waiters woken, files still there"},
    {"pub.close.after_ring_unlink", "packet ring unlinked, segment (CLOSED) still there"},
    {"pub.close.after_segment_unlink", "every file unlinked, lock descriptor still open"},
    // subscriber handshake (spec 4.1)
    {"sub.hs.after_hello_req", "HELLO_REQ sent, no reply read"},
    {"sub.hs.after_hello_resp", "HELLO_RESP(OK) read: slot reserved for it, nothing mapped"},
    {"sub.hs.after_map", "segment (and ring) mapped and validated, ATTACH_REQ not sent"},
    {"sub.hs.after_attach_req", "ATTACH_REQ sent, no ATTACH_RESP read"},
    // subscriber frame and packet path (spec 5.3, 5.4, 10.6)
    {"sub.frame.waiter_counted", "frame_waiters incremented, about to wait on frame_futex"},
    {"sub.frame.holding", "frame n handed to the application, not released (slot held)"},
    {"sub.ack.before_store", "frame n released (CUDA: ack event recorded), ack_seq not stored"},
    {"sub.ack.after_store", "ack_seq = n stored, ack_futex not incremented, no wake"},
    {"sub.packet.waiter_counted", "packet_waiters incremented, about to wait on packet_futex"},
    // subscriber close
    {"sub.close.before_detach", "closing: service thread stopped, DETACH not sent, still mapped"},
    {"sub.close.after_detach", "closing: DETACH sent, socket and mappings not yet closed"},
};

inline constexpr size_t kFaultPointCount = sizeof(kFaultPoints) / sizeof(kFaultPoints[0]);

// Returns the index of `name` in kFaultPoints; as a constant expression, a name that is not listed
// does not compile (used by CUFRAMES_FAULT_POINT).
consteval size_t IndexOf(std::string_view name) {
  for (size_t i = 0; i < kFaultPointCount; ++i) {
    if (kFaultPoints[i].name == name) return i;
  }
  throw "CUFRAMES_FAULT_POINT: name not listed in kFaultPoints (fault.h)";
}

enum class Action : uint8_t { kKill = 0, kStop = 1 };

struct Spec {
  size_t index = 0;  // into kFaultPoints
  uint64_t nth = 1;  // >= 1
  Action action = Action::kKill;
};

// Parses a CUFRAMES_FAULT value. Returns true and fills *out for "<point>[:<nth>[:kill|stop]]"
// with a listed point and nth >= 1; returns false for anything else (an unknown point, a bad nth
// or action), in which case no point is armed and the process says so once on stderr.
bool Parse(std::string_view value, Spec* out);

// 0: the environment has not been read yet; 1: no point armed (the fast path); 2: armed.
extern std::atomic<uint8_t> g_mode;

// Slow path of Hit(): reads the environment on first use, counts hits of the armed point and
// acts on the nth.
void HitSlow(size_t index) noexcept;

inline void Hit(size_t index) noexcept {
  if (g_mode.load(std::memory_order_relaxed) == 1) return;
  HitSlow(index);
}

// Number of hits of the armed point so far in this process (0 when none is armed); for tests.
uint64_t ArmedHits() noexcept;

// Re-reads CUFRAMES_FAULT and resets the hit count; for unit tests only (not thread-safe against
// concurrent Hit()).
void ResetForTest() noexcept;

}  // namespace cuframes::fault

// Marks fault point `name` (a string literal listed in kFaultPoints).
#ifndef CUFRAMES_FAULT_POINTS_COMPILED_OUT
#define CUFRAMES_FAULT_POINT(name)                                             \
  do {                                                                         \
    constexpr size_t cuframes_fault_index_ = ::cuframes::fault::IndexOf(name); \
    ::cuframes::fault::Hit(cuframes_fault_index_);                             \
  } while (0)
#else
// Only the measuring build of bench/ (instr_count_nofault, its own copy of the sources) defines
// CUFRAMES_FAULT_POINTS_COMPILED_OUT, to weigh what unset points cost the publish path against
// the same code without them. The library, its tests and its adapters always have the points.
#define CUFRAMES_FAULT_POINT(name)                                             \
  do {                                                                         \
    constexpr size_t cuframes_fault_index_ = ::cuframes::fault::IndexOf(name); \
    (void)cuframes_fault_index_;                                               \
  } while (0)
#endif

#endif  // CUFRAMES_REFERENCE_SRC_FAULT_H_
