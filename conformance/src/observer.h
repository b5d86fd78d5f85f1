// observer.h: the shared-memory observer that watches an IUT's segment and packet ring for the
// whole of every case (BRIEF principle 10: judge what happened, when it happened).
//
// Two halves. ShmChecker is pure: it judges a sequence of samples (byte copies of the segment,
// the ring, file modes and the harness's connections, each stamped on the monotonic clock) and
// reports every invariant a sample breaks, naming the requirement with the sample as evidence;
// the unit tests feed it synthetic samples. Observer is the live half: one thread per case maps
// each watched key's segment and ring read-only once they are READY and samples them in a tight
// loop (acquire loads, parts copied in a fixed order, so that "A read before B" orderings can be
// judged), handing every sample to a ShmChecker.
#ifndef CUFRAMES_CONFORMANCE_SRC_OBSERVER_H_
#define CUFRAMES_CONFORMANCE_SRC_OBSERVER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "spec_model.h"
#include "wire.h"

namespace cuframes::conform {

// Checks a case can switch off while it deliberately writes what they would flag (a hostile
// scripted peer). Bits, combined with |.
enum ObsCheck : uint32_t {
  kObsReserved = 1u << 0,  // VER-RSV-01: reserved bytes of every structure stay zero
  kObsHeader = 1u << 1,    // RES-CREATE-04: header fields constant after READY; state order
  kObsFrames = 1u << 2,    // ACK-COMMIT-01, SHM-SLOT-03: write_seq monotone, meta.seq before it
  kObsReuse = 1u << 3,     // ACK-REUSE-01: no slot rewritten before every ACTIVE ACK
  kObsSubSlots = 1u << 4,  // SHM-SUB-02, ACK-EVICT-04: subscriber slot states and generations
  kObsRing = 1u << 5,      // section 10: ring header, records, head/tail, codec parameters
  kObsClose = 1u << 6,     // RES-CLOSE-01: shut-down order
  kObsModes = 1u << 7,     // RES-PERM-01: file modes
  kObsIutSub = 1u << 8,    // an IUT subscriber's writes (SHM-SUB-01, ACK-REL-03, PKT-READ-07)
  kObsAll = 0xffffffffu,
};

struct ObsViolation {
  std::string req;
  std::string expected;
  std::string actual;
  std::vector<uint8_t> bytes;  // the sampled bytes (evidence)
  size_t base = 0;             // offset of bytes[0] in its mapping
  int64_t t_ns = 0;            // monotonic time of the sample
};

// What the harness knows of one of its connections to the watched publisher, captured after the
// segment was copied.
struct ConnSample {
  bool judged = false;    // the publisher answered on it (it was accepted), and it is ours
  bool readable = false;  // DETACH or end-of-file was readable (or we had closed it)
  std::string name;
};

// One sample of a frame segment. The parts were copied in the order hdr, descs, bufheads, subs,
// hdr_after (acquire loads, so in that order); then the files were stat()ed and the
// connections polled.
struct SegSample {
  int64_t t_ns = 0;
  std::vector<uint8_t> hdr;       // SegmentHeader
  std::vector<uint8_t> descs;     // slot_count SlotDescriptors
  std::vector<uint8_t> bufheads;  // first kBufHead bytes of each HOST buffer (empty otherwise)
  std::vector<uint8_t> subs;      // max_subscribers SubscriberSlots
  // Each slot's first word (state, generation) read again after the copy; a slot whose word
  // changed meanwhile is skipped in this sample (its copy may mix two reservations).
  std::vector<uint64_t> sub_word0_after;
  std::vector<uint8_t> hdr_after;
  int seg_mode = -1, ring_mode = -1, sock_mode = -1;  // -1: file absent
  // The same files stat()ed before the parts were copied: a file already gone while the copy
  // still shows READY was unlinked before CLOSED was stored.
  int seg_mode_before = -1, ring_mode_before = -1;
  bool sock_checked = false;  // the socket has answered: its mode is final
  std::vector<ConnSample> conns;
};

// One sample of a packet ring: hdr, params, data copied in that order, then the record lock at
// hdr's head_pos re-read, then hdr_after.
struct RingSample {
  int64_t t_ns = 0;
  std::vector<uint8_t> hdr;
  std::vector<uint8_t> params;  // CodecParams (64 bytes + data)
  std::vector<uint8_t> data;    // the data area
  uint64_t head_lock_after = 0;
  std::vector<uint8_t> hdr_after;
};

constexpr size_t kBufHead = 64;

enum class IutRole { kPublisher, kSubscriber };

class ShmChecker {
 public:
  // `role` says who wrote the segment: an IUT publisher (every publisher rule is judged) or the
  // harness's scripted publisher (only the IUT subscriber's writes are judged).
  ShmChecker(const Spec& spec, IutRole role);
  // Judges `s` (after the previous samples) with the checks in `enabled`; appends violations.
  void Feed(const SegSample& s, uint32_t enabled, std::vector<ObsViolation>* out);
  void FeedRing(const RingSample& r, uint32_t enabled, std::vector<ObsViolation>* out);
  // Returns true once a READY header has been seen (the geometry is known).
  bool ready() const { return ready_; }
  uint32_t slot_count() const { return slots_; }
  uint32_t max_subscribers() const { return subs_; }
  uint64_t segment_size() const { return segment_size_; }
  bool host() const { return host_; }

 private:
  uint64_t H(const std::vector<uint8_t>& b, const char* f) const;
  std::vector<uint8_t> ConstPart(const std::vector<uint8_t>& hdr) const;
  uint64_t F(const char* st, const std::vector<uint8_t>& b, size_t base, const char* f) const;
  void Add(std::vector<ObsViolation>* out, const char* req, std::string expected,
           std::string actual, const std::vector<uint8_t>& bytes, size_t base, int64_t t,
           size_t from = 0, size_t len = SIZE_MAX);

  const Spec& spec_;
  IutRole role_;
  bool ready_ = false, closed_ = false, host_ = true;
  uint32_t slots_ = 0, subs_ = 0;
  uint64_t segment_size_ = 0;
  std::vector<uint8_t> const_hdr_;  // bytes 0..127 at READY (state masked)
  std::vector<uint8_t> const_handles_;
  uint64_t write_seq_ = 0;
  bool counted_ = false, ack_counted_ = false;  // the lower bounds below are set
  int64_t fc_lo_ = 0, ac_lo_ = 0;               // lower bounds of (futex word - events counted)
  uint64_t releases_ = 0;
  bool ring_seen_ = false, seg_seen_ = false;
  std::string unlinked_early_;  // what was unlinked while READY (judged at CLOSED)
  int64_t pc_lo_ = 0;
  bool ring_counted_ = false;
  std::vector<uint64_t> meta_seq_;
  std::vector<std::vector<uint8_t>> slot_fp_;
  struct SubPrev {
    uint32_t state = 0, generation = 0;
    uint64_t start_seq = 0, ack_seq = 0, pid = 0;
    // The generation of the slot's last reservation seen in use, and whether it was freed since
    // (the publisher stores the new generation before the new state, so a sample can show the
    // new generation still FREE: compare reservations, not neighbouring samples).
    bool used = false, freed = false;
    uint32_t used_gen = 0;
  };
  std::vector<SubPrev> sub_prev_;
  bool have_prev_ = false;
  // Ring.
  bool ring_ready_ = false;
  std::vector<uint8_t> ring_const_;
  uint64_t head_seq_ = 0, head_pos_ = 0, tail_pos_ = 0, last_key_seq_ = 0;
  uint64_t params_lock_ = 0;
  std::vector<uint8_t> params_prev_;
  std::vector<uint8_t> head_rec_prev_;  // the 32 bytes at head_pos in the previous sample
  uint64_t head_rec_pos_ = UINT64_MAX;
  std::vector<uint8_t> ring_prev_;  // IUT subscriber: the ring as the harness last saw it
};

// Thread-safe record of what the harness's socket reads saw (wire.h ConnProbe) is kept by Conn;
// the observer polls it.
class Observer {
 public:
  Observer(const Spec& spec, std::string socket_dir);
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  // Watches key K's segment, ring and socket, written by an IUT publisher (kPublisher) or by the
  // harness's scripted publisher (kSubscriber: only the IUT subscriber's writes are judged).
  void Watch(const std::string& key, IutRole role);
  // Registers one of the harness's connections to key's publisher (RES-CLOSE-01 ordering).
  void AddConn(const std::string& key, std::shared_ptr<ConnProbe> probe, std::string name);
  // Switches checks off (a hostile script is about to break them) or back on.
  void Disable(uint32_t mask);
  void Enable(uint32_t mask);
  uint32_t enabled() const { return enabled_.load(); }
  // Returns the first violation seen so far, if any.
  std::optional<ObsViolation> First();
  // Stops the sampling thread (idempotent).
  void Stop();
  uint64_t samples() const { return samples_.load(); }

 private:
  struct Target;
  void Loop();
  bool SampleTarget(Target& t);
  void Record(std::vector<ObsViolation>& v);

  const Spec& spec_;
  std::string socket_dir_;
  std::mutex mu_;  // guards targets_ (the list) and first_
  std::vector<std::unique_ptr<Target>> targets_;
  std::optional<ObsViolation> first_;
  std::atomic<uint32_t> enabled_{kObsAll};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> samples_{0};
  std::atomic<uint64_t> passes_{0};
  int inotify_fd_ = -1;  // wakes the loop at once when a socket or /dev/shm file is unlinked
  std::thread thread_;
};

// Records, in order, the names of files unlinked from some directories (inotify IN_DELETE: one
// queue for all of them, so the order across directories is the order the kernel saw).
class UnlinkLog {
 public:
  explicit UnlinkLog(const std::vector<std::string>& dirs);
  ~UnlinkLog();
  UnlinkLog(const UnlinkLog&) = delete;
  UnlinkLog& operator=(const UnlinkLog&) = delete;
  bool ok() const { return fd_ >= 0; }
  // Returns every name unlinked so far (reading what is queued), oldest first.
  const std::vector<std::string>& Names();

 private:
  int fd_ = -1;
  std::vector<std::string> names_;
};

// Monotonic nanoseconds (the clock of observer samples and of the harness's socket reads).
int64_t MonoNs();

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_OBSERVER_H_
