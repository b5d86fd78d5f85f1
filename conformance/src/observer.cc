// observer.cc: the pure sample checker (ShmChecker) and the live sampling thread (Observer).
#include "observer.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <functional>

#include "bytes.h"

namespace cuframes::conform {

int64_t MonoNs() {
  return std::chrono::steady_clock::now().time_since_epoch().count();
}

namespace {

std::string N(uint64_t v) {
  return std::to_string(v);
}

std::string Mode(int m) {
  if (m < 0) return "absent";
  char b[16];
  std::snprintf(b, sizeof b, "0%o", static_cast<unsigned>(m) & 0777u);
  return b;
}

bool ZeroRange(const std::vector<uint8_t>& b, size_t off, size_t len) {
  if (off + len > b.size()) return true;
  for (size_t i = 0; i < len; ++i) {
    if (b[off + i]) return false;
  }
  return true;
}

uint64_t Le(const std::vector<uint8_t>& b, size_t off, size_t w) {
  return LoadLe(b, off, w);
}

}  // namespace

// ------------------------------------------------------------------------------------ checker

ShmChecker::ShmChecker(const Spec& spec, IutRole role) : spec_(spec), role_(role) {}

uint64_t ShmChecker::H(const std::vector<uint8_t>& b, const char* f) const {
  const FieldDef& d = spec_.Field("SegmentHeader", f);
  return Le(b, d.offset, d.size);
}

uint64_t ShmChecker::F(const char* st, const std::vector<uint8_t>& b, size_t base,
                       const char* f) const {
  const FieldDef& d = spec_.Field(st, f);
  return Le(b, base + d.offset, d.size);
}

void ShmChecker::Add(std::vector<ObsViolation>* out, const char* req, std::string expected,
                     std::string actual, const std::vector<uint8_t>& bytes, size_t base, int64_t t,
                     size_t from, size_t len) {
  ObsViolation v;
  v.req = req;
  v.expected = std::move(expected);
  v.actual = std::move(actual);
  from = std::min(from, bytes.size());
  len = std::min(len, bytes.size() - from);
  v.bytes.assign(bytes.begin() + static_cast<ptrdiff_t>(from),
                 bytes.begin() + static_cast<ptrdiff_t>(from + len));
  v.base = base + from;
  v.t_ns = t;
  out->push_back(std::move(v));
}

std::vector<uint8_t> ShmChecker::ConstPart(const std::vector<uint8_t>& hdr) const {
  // Offsets 0-127 but state and the reserved bytes (judged on their own, VER-RSV-01).
  std::vector<uint8_t> b(hdr.begin(), hdr.begin() + 128);
  for (const char* f : {"state", "reserved0", "reserved1"}) {
    const FieldDef& d = spec_.Field("SegmentHeader", f);
    std::fill_n(b.begin() + static_cast<ptrdiff_t>(d.offset), d.size, 0);
  }
  return b;
}

void ShmChecker::Feed(const SegSample& s, uint32_t en, std::vector<ObsViolation>* out) {
  const Spec& sp = spec_;
  const size_t hsz = sp.Size("SegmentHeader");
  if (s.hdr.size() < hsz) return;
  const uint32_t kInit = sp.Enum("segment_state", "INIT");
  const uint32_t kReady = sp.Enum("segment_state", "READY");
  const uint32_t kClosed = sp.Enum("segment_state", "CLOSED");
  const uint32_t kFree = sp.Enum("subscriber_slot_state", "FREE");
  const uint32_t kAttaching = sp.Enum("subscriber_slot_state", "ATTACHING");
  const uint32_t kActive = sp.Enum("subscriber_slot_state", "ACTIVE");
  const uint32_t kEvicted = sp.Enum("subscriber_slot_state", "EVICTED");
  const uint32_t state = static_cast<uint32_t>(H(s.hdr, "state"));
  const bool pub = role_ == IutRole::kPublisher;
  if (!ready_) {
    if (state != kReady) return;  // still being written (or a stale file): nothing to judge
    ready_ = true;
    slots_ = static_cast<uint32_t>(H(s.hdr, "slot_count"));
    subs_ = static_cast<uint32_t>(H(s.hdr, "max_subscribers"));
    segment_size_ = H(s.hdr, "segment_size");
    host_ = H(s.hdr, "memory_kind") == sp.Enum("memory_kind", "HOST");
    const_hdr_ = ConstPart(s.hdr);
    const_handles_.clear();
    for (size_t i = 0; i + 192 <= s.descs.size(); i += 192) {
      const_handles_.insert(const_handles_.end(), s.descs.begin() + static_cast<ptrdiff_t>(i + 64),
                            s.descs.begin() + static_cast<ptrdiff_t>(i + 192));
    }
    meta_seq_.assign(slots_, 0);
    slot_fp_.assign(slots_, {});
    sub_prev_.assign(subs_, {});
  }
  const size_t desc_sz = sp.Size("SlotDescriptor"), sub_sz = sp.Size("SubscriberSlot");
  const size_t sdo = hsz, sso = hsz + desc_sz * slots_;
  if (s.descs.size() < desc_sz * slots_ || s.subs.size() < sub_sz * subs_) return;
  const int64_t t = s.t_ns;

  // ---- header: constant fields, state order, reserved bytes
  if (pub && (en & kObsHeader)) {
    if (state != kInit && state != kReady && state != kClosed) {
      Add(out, "SHM-HDR-02", "SegmentHeader.state INIT, READY or CLOSED", "state " + N(state),
          s.hdr, 0, t);
    } else if (closed_ && state != kClosed) {
      Add(out, "RES-CLOSE-01", "state stays CLOSED once stored (a shut-down is final)",
          "state " + N(state) + " after CLOSED", s.hdr, 0, t);
    } else if (state == kInit) {
      Add(out, "RES-CREATE-04", "state stays READY once stored", "state INIT after READY", s.hdr, 0,
          t);
    }
    const std::vector<uint8_t> now = ConstPart(s.hdr);
    if (now != const_hdr_) {
      size_t off = 0;
      while (now[off] == const_hdr_[off])
        ++off;
      std::string field = "byte " + N(off);
      for (const FieldDef& f : sp.Struct("SegmentHeader").fields) {
        if (off >= f.offset && off < f.offset + f.size) field = f.name;
      }
      Add(out, "RES-CREATE-04",
          "every header field of offsets 0-127 written before READY and constant after it",
          "SegmentHeader." + field + " changed after READY (was " +
              N(Le(const_hdr_, off & ~size_t{7}, 8)) + " in the 8 bytes at " + N(off & ~size_t{7}) +
              ")",
          s.hdr, 0, t, 0, 128);
      const_hdr_ = now;  // report each change once
    }
    std::vector<uint8_t> handles;
    for (size_t i = 0; i + 192 <= s.descs.size(); i += 192) {
      handles.insert(handles.end(), s.descs.begin() + static_cast<ptrdiff_t>(i + 64),
                     s.descs.begin() + static_cast<ptrdiff_t>(i + 192));
    }
    if (handles != const_handles_) {
      Add(out, host_ ? "SHM-SLOT-02" : "SHM-SLOT-01",
          "slot descriptor handles written before READY and never changed",
          "mem_handle/ready_event changed after READY", s.descs, sdo, t);
      const_handles_ = handles;
    }
  }
  // "Seen" must come from an earlier sample than the one that finds the file gone: within one
  // sample the stat before the header copy can precede the file's creation and the stat after
  // it follow, which is a ring created before READY (PKT-RING-01), not one unlinked early.
  if (state == kReady && unlinked_early_.empty()) {
    if (ring_seen_ && s.ring_mode_before < 0 && (H(s.hdr, "flags") & 1)) {
      unlinked_early_ = "the packet ring";
    } else if (seg_seen_ && s.seg_mode_before < 0) {
      unlinked_early_ = "the segment";
    }
  }
  if (s.ring_mode >= 0) ring_seen_ = true;
  if (s.seg_mode >= 0) seg_seen_ = true;
  if (state == kClosed) {
    if (!closed_ && pub && (en & kObsClose) && !unlinked_early_.empty()) {
      Add(out, "RES-CLOSE-01", "the packet ring and the segment unlinked after CLOSED is stored",
          unlinked_early_ + " file was gone while the segment still said READY", s.hdr, 0, t);
    }
    if (!closed_ && have_prev_ && pub && (en & kObsClose)) {
      if (s.sock_mode >= 0) {
        Add(out, "RES-CLOSE-01", "the socket file unlinked first, before state = CLOSED is stored",
            "the socket file still exists after CLOSED was observed", s.hdr, 0, t);
      }
      for (const ConnSample& c : s.conns) {
        if (c.judged && !c.readable) {
          Add(out, "RES-CLOSE-01",
              "DETACH sent and every connection closed before state = CLOSED is stored",
              "CLOSED observed while connection " + c.name +
                  " showed neither DETACH nor end-of-file",
              s.hdr, 0, t);
        }
      }
    }
    closed_ = true;
  }
  if (en & kObsReserved) {
    for (const char* r : {"reserved0", "reserved1", "reserved2", "reserved3"}) {
      if (!pub && std::string(r) != "reserved3") continue;  // the harness wrote the others
      const FieldDef& f = sp.Field("SegmentHeader", r);
      if (!ZeroRange(s.hdr, f.offset, f.size)) {
        Add(out, pub ? "VER-RSV-01" : "SHM-SUB-01",
            std::string("SegmentHeader.") + r + " zero at every sample",
            "nonzero bytes at offset " + N(f.offset), s.hdr, 0, t);
      }
    }
  }

  // ---- frames: write_seq, meta.seq, reuse before ACK
  const uint64_t w = H(s.hdr, "write_seq");
  const uint64_t w_after = s.hdr_after.size() >= hsz ? H(s.hdr_after, "write_seq") : w;
  const uint64_t slot_bytes = H(s.hdr, "slot_bytes");
  if (pub) {
    if ((en & kObsFrames) && w < write_seq_) {
      Add(out, "ACK-COMMIT-01", "write_seq never decreases (was " + N(write_seq_) + ")",
          "write_seq " + N(w), s.hdr, 0, t);
    }
    if ((en & kObsFrames) && w >= 1 && slots_ > 0) {
      const uint32_t i = static_cast<uint32_t>((w - 1) % slots_);
      const uint64_t seq = F("FrameMeta", s.descs, desc_sz * i, "seq");
      if (seq < w) {
        Add(out, "ACK-COMMIT-01",
            "meta.seq = " + N(w) + " stored before write_seq = " + N(w) + " (slot " + N(i) + ")",
            "write_seq " + N(w) + " observed before slot " + N(i) + "'s meta.seq (" + N(seq) + ")",
            s.descs, sdo, t, desc_sz * i, 64);
      }
    }
    for (uint32_t i = 0; i < slots_; ++i) {
      const size_t b = desc_sz * i;
      const uint64_t seq = F("FrameMeta", s.descs, b, "seq");
      if ((en & kObsFrames) && seq != 0) {
        if ((seq - 1) % slots_ != i) {
          Add(out, "SHM-SLOT-03", "frame seq n in slot (n - 1) mod slot_count",
              "slot " + N(i) + " holds seq " + N(seq), s.descs, sdo, t, b, 64);
        } else if (seq > w_after + 1) {
          Add(out, "ACK-COMMIT-01", "meta.seq at most write_seq + 1 (the frame being committed)",
              "slot " + N(i) + " meta.seq " + N(seq) + " with write_seq " + N(w_after), s.descs,
              sdo, t, b, 64);
        } else if (seq < meta_seq_[i]) {
          Add(out, "ACK-COMMIT-01", "a slot's meta.seq never decreases",
              "slot " + N(i) + " meta.seq " + N(seq) + " after " + N(meta_seq_[i]), s.descs, sdo, t,
              b, 64);
        }
        if (F("FrameMeta", s.descs, b, "payload_bytes") > slot_bytes) {
          Add(out, "SHM-FMETA-02", "payload_bytes <= slot_bytes " + N(slot_bytes),
              "slot " + N(i) + " payload_bytes " + N(F("FrameMeta", s.descs, b, "payload_bytes")),
              s.descs, sdo, t, b, 64);
        }
        if ((F("FrameMeta", s.descs, b, "flags") & ~uint64_t{1}) != 0) {
          Add(out, "SHM-FMETA-03", "FrameMeta.flags only END_OF_STREAM",
              "slot " + N(i) + " flags " + N(F("FrameMeta", s.descs, b, "flags")), s.descs, sdo, t,
              b, 64);
        }
      }
      if (en & kObsReserved) {
        for (const char* r : {"reserved0", "reserved1"}) {
          const FieldDef& f = sp.Field("FrameMeta", r);
          if (!ZeroRange(s.descs, b + f.offset, f.size)) {
            Add(out, "VER-RSV-01", std::string("FrameMeta.") + r + " zero at every sample",
                "slot " + N(i) + " nonzero", s.descs, sdo, t, b, 64);
          }
        }
      }
      // The slot's fingerprint: its meta and the head of its buffer. A change is a write.
      std::vector<uint8_t> fp(s.descs.begin() + static_cast<ptrdiff_t>(b),
                              s.descs.begin() + static_cast<ptrdiff_t>(b + 64));
      if (s.bufheads.size() >= kBufHead * (i + 1)) {
        fp.insert(fp.end(), s.bufheads.begin() + static_cast<ptrdiff_t>(kBufHead * i),
                  s.bufheads.begin() + static_cast<ptrdiff_t>(kBufHead * (i + 1)));
      }
      const uint64_t m = meta_seq_[i];
      if ((en & kObsReuse) && have_prev_ && m >= 1 && fp != slot_fp_[i]) {
        // The slot held frame m and something in it changed: the subscriber slots were copied
        // after the slot, and ack_seq only grows, so an ACTIVE subscriber that received m
        // (start_seq <= m) with ack_seq < m now had not released it when the write began.
        for (uint32_t j = 0; j < subs_; ++j) {
          const size_t sb = sub_sz * j;
          if (j < s.sub_word0_after.size() && s.sub_word0_after[j] != Le(s.subs, sb, 8)) continue;
          const uint64_t st = F("SubscriberSlot", s.subs, sb, "state");
          const uint64_t start = F("SubscriberSlot", s.subs, sb, "start_seq");
          const uint64_t ack = F("SubscriberSlot", s.subs, sb, "ack_seq");
          if (st == kActive && start >= 1 && start <= m && ack < m) {
            std::vector<uint8_t> ev(fp);
            ev.insert(ev.end(), s.subs.begin() + static_cast<ptrdiff_t>(sb),
                      s.subs.begin() + static_cast<ptrdiff_t>(sb + 32));
            Add(out, "ACK-REUSE-01",
                "slot " + N(i) + " (frame " + N(m) +
                    ") untouched until every ACTIVE subscriber "
                    "with start_seq <= " +
                    N(m) + " has ack_seq >= " + N(m),
                "slot " + N(i) + " rewritten (meta.seq now " + N(seq) + ") while subscriber " +
                    N(j) + " (start_seq " + N(start) + ") had ack_seq " + N(ack) +
                    "; evidence: FrameMeta, buffer head, subscriber slot head",
                ev, 0, t);
          }
        }
      }
      slot_fp_[i] = std::move(fp);
      meta_seq_[i] = std::max(meta_seq_[i], seq);
    }
    write_seq_ = std::max(write_seq_, w);
  }
  // Futex words count events: one frame_futex increment per commit (ACK-COMMIT-01), one
  // ack_futex increment per release (ACK-REL-01). Each counter may lag its value by the one event
  // in flight (the word is read after the value it announces).
  // Sound bounds despite the reads not being simultaneous: frame_futex - C lies in
  // [write_seq - 1, write_seq] at every instant for some constant C (CLOSED only raises C).
  // A futex word read before a write_seq gives a lower bound of C; a futex word read after a
  // write_seq that falls short of it by more than one (against that bound) is a missed increment.
  const bool two = s.hdr_after.size() >= hsz;
  const int64_t f_first = static_cast<uint32_t>(H(s.hdr, "frame_futex"));
  const int64_t f_last = static_cast<uint32_t>(H(two ? s.hdr_after : s.hdr, "frame_futex"));
  const int64_t w_last = static_cast<int64_t>(w_after);
  const int64_t a_first = static_cast<uint32_t>(H(s.hdr, "ack_futex"));
  const int64_t a_last = static_cast<uint32_t>(H(two ? s.hdr_after : s.hdr, "ack_futex"));
  if (pub && (en & kObsFrames) && counted_ && f_last - fc_lo_ < static_cast<int64_t>(w) - 1) {
    Add(out, "ACK-COMMIT-01", "frame_futex incremented once per commit (SHM-ORDER-02)",
        "write_seq " + N(w) + " but frame_futex " + N(static_cast<uint64_t>(f_last)) +
            " (at most " + N(static_cast<uint64_t>(f_last - fc_lo_)) + " increments)",
        s.hdr, 0, t, 128, 64);
    fc_lo_ = f_last - static_cast<int64_t>(w);  // report once
  }
  if (!counted_) {
    counted_ = true;
    fc_lo_ = f_first - w_last;
  }
  fc_lo_ = std::max(fc_lo_, f_first - w_last);
  // ---- subscriber slots
  for (uint32_t j = 0; j < subs_; ++j) {
    const size_t sb = sub_sz * j;
    SubPrev now;
    now.state = static_cast<uint32_t>(F("SubscriberSlot", s.subs, sb, "state"));
    now.generation = static_cast<uint32_t>(F("SubscriberSlot", s.subs, sb, "generation"));
    now.start_seq = F("SubscriberSlot", s.subs, sb, "start_seq");
    now.ack_seq = F("SubscriberSlot", s.subs, sb, "ack_seq");
    now.pid = F("SubscriberSlot", s.subs, sb, "pid");
    if (j < s.sub_word0_after.size() && s.sub_word0_after[j] != Le(s.subs, sb, 8)) continue;
    const SubPrev& was = sub_prev_[j];
    now.used = was.used;
    now.used_gen = was.used_gen;
    now.freed = was.freed;
    if (now.state == kFree) now.freed = true;

    auto slot_fail = [&](const char* req, const std::string& exp, const std::string& act) {
      Add(out, req, exp, "subscriber slot " + N(j) + ": " + act, s.subs, sso, t, sb, sub_sz);
    };
    if (pub && (en & kObsSubSlots)) {
      const bool reserved_now = now.state == kAttaching || now.state == kActive;
      if (now.state > kEvicted) {
        slot_fail("SHM-SUB-02", "state FREE, ATTACHING, ACTIVE or EVICTED",
                  "state " + N(now.state));
      } else if (reserved_now && was.used && was.freed && was.used_gen == now.generation) {
        slot_fail("ACK-EVICT-04",
                  "generation changes each time a freed slot is reserved again (was " +
                      N(was.used_gen) + ")",
                  "state " + N(now.state) + " with the same generation " + N(now.generation));
      } else if (have_prev_ && was.state == kActive && now.state == kAttaching &&
                 was.generation == now.generation) {
        slot_fail("SHM-SUB-02", "ACTIVE never goes back to ATTACHING without a new reservation",
                  "ACTIVE -> ATTACHING, generation " + N(now.generation));
      } else if (have_prev_ && was.state == kEvicted && now.state == kActive &&
                 was.generation == now.generation) {
        slot_fail("ACK-EVICT-04", "an evicted slot is freed, never ACTIVE again as it was",
                  "EVICTED -> ACTIVE, generation " + N(now.generation));
      }
      if (have_prev_ && now.state == kActive && was.state == kActive &&
          was.generation == now.generation && was.start_seq != now.start_seq) {
        slot_fail("MSG-ARESP-01", "start_seq constant while the subscriber is ACTIVE",
                  "start_seq " + N(was.start_seq) + " -> " + N(now.start_seq));
      }
      if (have_prev_ && now.state != kFree && was.state != kFree &&
          was.generation == now.generation && was.pid != now.pid) {
        slot_fail("SHM-SUB-02", "pid recorded at reservation and unchanged",
                  "pid " + N(was.pid) + " -> " + N(now.pid));
      }
      // For CUDA kinds the subscriber sets flags (ACK_EVENT_PRESENT) while its slot is ATTACHING
      // (MSG-ATTACH-01), so a first sample of a new reservation may legitimately show it: only
      // a HOST slot's flags, which no subscriber writes, are judged here.
      const uint64_t flags = F("SubscriberSlot", s.subs, sb, "flags");
      if (now.state == kAttaching &&
          (!have_prev_ || was.generation != now.generation || was.state != kAttaching) &&
          (now.ack_seq != 0 || (host_ && flags != 0))) {
        slot_fail("SHM-SUB-02", "ack_seq and flags zeroed when the slot is reserved",
                  "ATTACHING with ack_seq " + N(now.ack_seq) + ", flags " + N(flags));
      }
    }
    if (pub && (en & kObsReserved)) {
      const FieldDef& f = sp.Field("SubscriberSlot", "reserved0");
      if (!ZeroRange(s.subs, sb + f.offset, f.size)) {
        slot_fail("VER-RSV-01", "SubscriberSlot.reserved0 zero at every sample", "nonzero");
      }
    }
    if (!pub && (en & kObsIutSub)) {
      // The scripted publisher reserves slot 0 only; every other slot it leaves zero.
      if (now.generation == 0 && now.state == kFree && !ZeroRange(s.subs, sb, sub_sz)) {
        slot_fail("SHM-SUB-01",
                  "the subscriber writes only its own slot (" + N(j) + " was never assigned)",
                  "nonzero bytes");
      }
      const FieldDef& f = sp.Field("SubscriberSlot", "reserved0");
      if (!ZeroRange(s.subs, sb + f.offset, f.size)) {
        slot_fail("SHM-SUB-01", "the subscriber leaves SubscriberSlot.reserved0 alone", "nonzero");
      }
      if (now.state == kActive && have_prev_ && was.state == kActive &&
          was.generation == now.generation && now.ack_seq < was.ack_seq) {
        slot_fail("ACK-REL-01", "ack_seq released in seq order (never decreases)",
                  "ack_seq " + N(was.ack_seq) + " -> " + N(now.ack_seq));
      }
      if (now.state == kActive && have_prev_ && was.state == kActive &&
          was.generation == now.generation && now.ack_seq > was.ack_seq) {
        releases_ += now.ack_seq - std::max(was.ack_seq, now.start_seq - 1);
      }
      if (now.state == kActive && now.ack_seq > w_after) {
        slot_fail("ACK-REL-03",
                  "ack_seq <= the highest seq delivered (write_seq " + N(w_after) + ")",
                  "ack_seq " + N(now.ack_seq));
      }
    }
    if (now.state == kAttaching || now.state == kActive || now.state == kEvicted) {
      now.used = true;
      now.used_gen = now.generation;
      now.freed = false;
    }
    sub_prev_[j] = now;
  }

  if (!pub && (en & kObsIutSub)) {
    const int64_t r = static_cast<int64_t>(releases_);
    if (ack_counted_ && a_last - ac_lo_ < r - 1) {
      Add(out, "ACK-REL-01", "ack_futex incremented once per release (SHM-ORDER-02)",
          N(releases_) + " releases seen but at most " + N(static_cast<uint64_t>(a_last - ac_lo_)) +
              " ack_futex increments",
          s.hdr, 0, t, 192, 64);
      ac_lo_ = a_last - r;
    }
    if (!ack_counted_) {
      ack_counted_ = true;
      ac_lo_ = a_first - r;
    }
    ac_lo_ = std::max(ac_lo_, a_first - r);
  }

  // ---- file modes
  if (pub && (en & kObsModes)) {
    for (const auto& [m, what] : {std::pair{s.seg_mode, "segment"},
                                  {s.ring_mode, "packet ring"},
                                  {s.sock_checked ? s.sock_mode : -1, "socket"}}) {
      if (m >= 0 && m != 0600 && m != 0660) {
        Add(out, "RES-PERM-01", std::string("the ") + what + " file's mode 0600 (or 0660)", Mode(m),
            s.hdr, 0, t, 0, 0);
      }
    }
  }
  have_prev_ = true;
}

void ShmChecker::FeedRing(const RingSample& r, uint32_t en, std::vector<ObsViolation>* out) {
  const Spec& sp = spec_;
  if (role_ != IutRole::kPublisher || r.hdr.size() < sp.Size("PacketRingHeader")) return;
  const uint32_t kReady = sp.Enum("segment_state", "READY");
  const uint32_t kClosed = sp.Enum("segment_state", "CLOSED");
  auto R = [&](const std::vector<uint8_t>& b, const char* f) {
    return F("PacketRingHeader", b, 0, f);
  };
  const int64_t t = r.t_ns;
  const uint32_t state = static_cast<uint32_t>(R(r.hdr, "state"));
  const size_t state_off = sp.Off("PacketRingHeader", "state");
  if (!ring_ready_) {
    if (state != kReady) return;
    ring_ready_ = true;
    ring_const_.assign(r.hdr.begin(), r.hdr.begin() + 64);
    std::fill_n(ring_const_.begin() + static_cast<ptrdiff_t>(state_off), 4, 0);
  }
  const uint64_t cap = R(r.hdr, "capacity");
  const uint64_t base = R(r.hdr, "data_offset");
  if (cap == 0 || r.data.size() < cap) return;
  if (en & kObsHeader) {
    std::vector<uint8_t> now(r.hdr.begin(), r.hdr.begin() + 64);
    std::fill_n(now.begin() + static_cast<ptrdiff_t>(state_off), 4, 0);
    if (now != ring_const_) {
      Add(out, "RES-CREATE-04", "ring header fields of offsets 0-63 constant after READY",
          "changed", r.hdr, 0, t, 0, 64);
      ring_const_ = now;
    }
    if (state != kReady && state != kClosed) {
      Add(out, "PKT-WRITE-07", "ring state READY, then CLOSED", "state " + N(state), r.hdr, 0, t, 0,
          64);
    }
  }
  if (en & kObsReserved) {
    for (const char* f : {"reserved0", "reserved1"}) {
      const FieldDef& d = sp.Field("PacketRingHeader", f);
      if (!ZeroRange(r.hdr, d.offset, d.size)) {
        Add(out, "VER-RSV-01", std::string("PacketRingHeader.") + f + " zero at every sample",
            "nonzero", r.hdr, 0, t);
      }
    }
  }
  if (!(en & kObsRing)) return;
  const uint64_t hs = R(r.hdr, "head_seq"), hp = R(r.hdr, "head_pos"), tp = R(r.hdr, "tail_pos");
  const uint64_t lk = R(r.hdr, "last_key_seq"), lkp = R(r.hdr, "last_key_pos");
  const uint64_t tail_after = R(r.hdr_after, "tail_pos");
  const uint64_t maxp = R(r.hdr, "max_packet_bytes");
  auto hdr_fail = [&](const char* req, const std::string& exp, const std::string& act) {
    Add(out, req, exp, act, r.hdr, 0, t, 64, 48);
  };
  if (hs < head_seq_)
    hdr_fail("PKT-WRITE-04", "head_seq never decreases", N(head_seq_) + " -> " + N(hs));
  if (hp < head_pos_)
    hdr_fail("PKT-WRITE-04", "head_pos never decreases", N(head_pos_) + " -> " + N(hp));
  if (tp < tail_pos_)
    hdr_fail("PKT-WRITE-02", "tail_pos never decreases", N(tail_pos_) + " -> " + N(tp));
  if (lk < last_key_seq_) {
    hdr_fail("PKT-WRITE-04", "last_key_seq never decreases", N(last_key_seq_) + " -> " + N(lk));
  }
  if (tp > hp || hp - tp > cap) {
    hdr_fail("PKT-WRITE-02", "tail_pos <= head_pos <= tail_pos + capacity",
             "tail_pos " + N(tp) + ", head_pos " + N(hp));
  }
  if (hp % 32 != 0) hdr_fail("PKT-REC-01", "head_pos a multiple of 32", N(hp));
  // packet_futex counts packets as frame_futex counts frames (see Feed).
  const int64_t pf_first = static_cast<uint32_t>(R(r.hdr, "packet_futex"));
  const int64_t pf_last = static_cast<uint32_t>(R(r.hdr_after, "packet_futex"));
  const int64_t hs_last = static_cast<int64_t>(R(r.hdr_after, "head_seq"));
  if (ring_counted_ && pf_last - pc_lo_ < static_cast<int64_t>(hs) - 1) {
    hdr_fail("PKT-WRITE-04", "packet_futex incremented once per packet (SHM-ORDER-02)",
             "head_seq " + N(hs) + " but at most " + N(static_cast<uint64_t>(pf_last - pc_lo_)) +
                 " packet_futex increments");
    pc_lo_ = pf_last - static_cast<int64_t>(hs);
  }
  if (!ring_counted_) {
    ring_counted_ = true;
    pc_lo_ = pf_first - hs_last;
  }
  pc_lo_ = std::max(pc_lo_, pf_first - hs_last);
  head_seq_ = std::max(head_seq_, hs);
  head_pos_ = std::max(head_pos_, hp);
  tail_pos_ = std::max(tail_pos_, tp);
  last_key_seq_ = std::max(last_key_seq_, lk);

  // Records between tail_pos (read after the data) and head_pos (read before it) are complete
  // and stable: the writer advances tail_pos before overwriting any of them (PKT-WRITE-02) and
  // head only after completing one (PKT-WRITE-04).
  const uint32_t kKey = sp.Enum("packet_flags", "KEYFRAME"), kPad = sp.Enum("packet_flags", "PAD");
  auto rec_fail = [&](const char* req, const std::string& exp, const std::string& act,
                      uint64_t off) {
    Add(out, req, exp, act, r.data, base, t, off, 64);
  };
  if (hp % 32 == 0 && tail_after % 32 == 0 && tail_after <= hp && hp - tail_after <= cap) {
    uint64_t p = tail_after, expect = 0;
    bool seen_even = false;
    for (int guard = 0; p < hp && guard < 1 << 16; ++guard) {
      const uint64_t off = p % cap;
      if (off + 32 > cap) break;
      const uint64_t lock = Le(r.data, off, 8);
      const uint64_t size = Le(r.data, off + 8, 4), flags = Le(r.data, off + 12, 4);
      const uint64_t span = flags == kPad ? cap - off : (32 + size + 31) / 32 * 32;
      const bool last = p + span >= hp;
      if (lock & 1) {
        if (lock == 2 * (hs + 1) - 1) break;  // head_pos read after a newer head_seq: legit
        if (last && hs >= 1 && lock == 2 * hs - 1) {
          rec_fail("PKT-WRITE-04",
                   "head_seq = " + N(hs) + " stored only after its record is complete",
                   "the last record before head_pos (position " + N(p) +
                       ") still has the odd lock " + N(lock),
                   off);
          break;
        }
        if (seen_even) {
          rec_fail("PKT-WRITE-02",
                   "every record between tail_pos and head_pos complete (even lock)",
                   "record at position " + N(p) + " lock " + N(lock) + " (tail_pos " +
                       N(tail_after) + ", head_pos " + N(hp) + ")",
                   off);
          break;
        }
        // An invalidated record at the tail whose tail_pos store we have not seen yet.
      } else {
        const uint64_t m = lock / 2;
        if (seen_even && m != expect && m != expect + 1) {
          rec_fail("PKT-WRITE-02", "records between tail_pos and head_pos hold consecutive packets",
                   "record at position " + N(p) + " lock " + N(lock) + " after packet " + N(expect),
                   off);
          break;
        }
        seen_even = true;
        expect = m;
      }
      if (flags & ~uint64_t{kKey | kPad}) {
        rec_fail("PKT-REC-04", "record flags only KEYFRAME and PAD",
                 "position " + N(p) + " flags " + N(flags), off);
        break;
      }
      if (!(lock & 1) && !ZeroRange(r.data, off + 28, 4)) {
        rec_fail("VER-RSV-01", "PacketRecordHeader.reserved0 zero", "position " + N(p) + " nonzero",
                 off);
      }
      if (flags == kPad) {
        if (off == 0 || size != cap - off - 32 || Le(r.data, off + 16, 8) != 0 ||
            Le(r.data, off + 24, 4) != 0) {
          rec_fail("PKT-REC-02",
                   "a PAD record fills the data area to its end, pts and "
                   "params_generation zero, never at offset 0",
                   "PAD at position " + N(p) + " size " + N(size), off);
          break;
        }
        p += cap - off;
        continue;
      }
      if (flags & kPad) {
        rec_fail("PKT-REC-02", "PAD flags exactly PAD", "flags " + N(flags), off);
        break;
      }
      if (size > maxp || off + span > cap) {
        rec_fail("PKT-REC-01", "records within max_packet_bytes, never straddling the end",
                 "position " + N(p) + " size " + N(size), off);
        break;
      }
      p += span;
    }
    if (lk != 0 && lk <= hs && lkp >= tail_after && lkp < hp && lkp % 32 == 0) {
      const uint64_t off = lkp % cap;
      const uint64_t lock = Le(r.data, off, 8);
      if (!(lock & 1) && (lock != 2 * lk || !(Le(r.data, off + 12, 4) & kKey))) {
        rec_fail("PKT-WRITE-04",
                 "last_key_pos holds keyframe last_key_seq = " + N(lk) + " (lock " + N(2 * lk) +
                     ", KEYFRAME)",
                 "lock " + N(lock) + ", flags " + N(Le(r.data, off + 12, 4)), off);
      }
    }
  }
  // The record at head_pos is the next one written: its lock goes odd (2n - 1) before any other
  // byte of it changes (PKT-WRITE-03). head_lock_after was re-read after the data copy.
  if (hp % 32 == 0) {
    const uint64_t off = hp % cap;
    std::vector<uint8_t> cur(r.data.begin() + static_cast<ptrdiff_t>(off),
                             r.data.begin() + static_cast<ptrdiff_t>(std::min(off + 32, cap)));
    const uint64_t n = hs + 1;
    if (head_rec_pos_ == hp && cur.size() == 32 && head_rec_prev_.size() == 32 &&
        !std::equal(cur.begin() + 8, cur.end(), head_rec_prev_.begin() + 8) &&
        r.head_lock_after != 2 * n - 1 && r.head_lock_after != 2 * n) {
      rec_fail("PKT-WRITE-03",
               "lock = " + N(2 * n - 1) + " (odd) stored before the other fields of packet " +
                   N(n) + " at head_pos " + N(hp),
               "record header bytes changed while its lock reads " + N(r.head_lock_after), off);
    }
    head_rec_prev_ = std::move(cur);
    head_rec_pos_ = hp;
  }
  // Codec parameters: a seqlock; judge only a copy whose lock was even and unchanged.
  if (r.params.size() >= 64) {
    const uint64_t lock = Le(r.params, 0, 8);
    const uint64_t lock_after = Le(r.params, r.params.size() - 8, 8);
    const std::vector<uint8_t> body(r.params.begin() + 8, r.params.end() - 8);
    if (lock == lock_after && !(lock & 1)) {
      const uint64_t gen = Le(r.params, 8, 4), size = Le(r.params, 12, 4),
                     codec = Le(r.params, 16, 4);
      if (!params_prev_.empty() && lock == params_lock_ && body != params_prev_) {
        rec_fail("PKT-PARAMS-01",
                 "codec parameters change only inside an odd lock (lock + 1 ... lock + 2)",
                 "the fields changed while lock stayed " + N(lock), 0);
      }
      if (!params_prev_.empty() && lock > params_lock_ && body != params_prev_) {
        const uint64_t pgen = Le(params_prev_, 0, 4);
        if (gen == pgen) {
          rec_fail("PKT-PARAMS-04", "a new publication of the parameters has a new generation",
                   "data changed, generation stayed " + N(gen), 0);
        } else if (lock == params_lock_ + 2 && gen != (pgen + 1 == 0x100000000ull ? 1 : pgen + 1) &&
                   !(pgen == 0xffffffffu && gen == 1)) {
          rec_fail("PKT-PARAMS-01", "generation = previous + 1 per publication",
                   N(pgen) + " -> " + N(gen), 0);
        }
      }
      if (gen != 0 && (codec != R(r.hdr, "codec") || size > 4096)) {
        rec_fail("PKT-PARAMS-01", "CodecParams.codec = the ring's codec and size <= 4096",
                 "codec " + N(codec) + ", size " + N(size), 0);
      }
      if ((en & kObsReserved) && gen != 0 && !ZeroRange(r.params, 20, 44)) {
        rec_fail("VER-RSV-01", "CodecParams.reserved0 zero", "nonzero", 0);
      }
      params_lock_ = lock;
      params_prev_ = body;
    }
  }
}

// ------------------------------------------------------------------------------------ live

namespace {

// Copies `n` bytes (a multiple of 8, 8-aligned) from memory another process writes, one
// acquire load per word: no data race, no torn word. Acquire loads are never reordered with the
// loads after them, so the parts of a sample are read in the order they are copied without any
// standalone fence (which ThreadSanitizer would not model, and GCC 13 rejects under
// -fsanitize=thread).
void CopyWords(uint8_t* dst, const uint8_t* src, size_t n) {
  for (size_t i = 0; i + 8 <= n; i += 8) {
    auto* w = const_cast<uint64_t*>(reinterpret_cast<const uint64_t*>(src + i));
    const uint64_t v = std::atomic_ref<uint64_t>(*w).load(std::memory_order_acquire);
    std::memcpy(dst + i, &v, 8);
  }
}

uint64_t LoadWord(const uint8_t* p) {
  auto* w = const_cast<uint64_t*>(reinterpret_cast<const uint64_t*>(p));
  return std::atomic_ref<uint64_t>(*w).load(std::memory_order_acquire);
}

struct Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ino_t ino = 0;
  void Reset() {
    if (data) munmap(const_cast<uint8_t*>(data), size);
    data = nullptr;
    size = 0;
    ino = 0;
  }
};

int StatMode(const std::string& path, ino_t* ino = nullptr) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  if (ino) *ino = st.st_ino;
  return static_cast<int>(st.st_mode & 0777);
}

// Maps `path` read-only when its header (first 256 bytes) satisfies `ok`.
bool MapIf(const std::string& path, Mapping* m,
           const std::function<bool(const uint8_t*, size_t)>& ok) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  uint8_t hdr[256];
  bool done = false;
  if (fstat(fd, &st) == 0 && st.st_size >= 256 && pread(fd, hdr, 256, 0) == 256 &&
      ok(hdr, static_cast<size_t>(st.st_size))) {
    void* p = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      m->data = static_cast<const uint8_t*>(p);
      m->size = static_cast<size_t>(st.st_size);
      m->ino = st.st_ino;
      done = true;
    }
  }
  close(fd);
  return done;
}

}  // namespace

struct Observer::Target {
  std::string key;
  IutRole role;
  std::string seg_path, ring_path, sock_path;
  std::unique_ptr<ShmChecker> checker;
  Mapping seg, ring;
  std::mutex conns_mu;
  std::vector<std::pair<std::shared_ptr<ConnProbe>, std::string>> conns;
  bool closed_seen = false;
  uint64_t sig = 0;
};

UnlinkLog::UnlinkLog(const std::vector<std::string>& dirs) {
  fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  for (const std::string& d : dirs) {
    if (fd_ >= 0 && inotify_add_watch(fd_, d.c_str(), IN_DELETE) < 0) {
      close(fd_);
      fd_ = -1;
    }
  }
}

UnlinkLog::~UnlinkLog() {
  if (fd_ >= 0) close(fd_);
}

const std::vector<std::string>& UnlinkLog::Names() {
  alignas(inotify_event) char buf[8192];
  for (ssize_t n; fd_ >= 0 && (n = read(fd_, buf, sizeof buf)) > 0;) {
    for (ssize_t off = 0; off < n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
      if (e->len > 0) names_.emplace_back(e->name);
      off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  return names_;
}

Observer::Observer(const Spec& spec, std::string socket_dir)
    : spec_(spec), socket_dir_(std::move(socket_dir)) {
  // A publisher's shut-down starts by unlinking files; an event wakes the loop at once, so the
  // sample that judges the shut-down's order is taken while it happens, not up to one back-off
  // later. Without inotify the loop just polls.
  inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ >= 0) {
    inotify_add_watch(inotify_fd_, socket_dir_.c_str(), IN_DELETE);
    inotify_add_watch(inotify_fd_, "/dev/shm", IN_DELETE);
  }
}

Observer::~Observer() {
  Stop();
  if (inotify_fd_ >= 0) close(inotify_fd_);
  for (auto& t : targets_) {
    t->seg.Reset();
    t->ring.Reset();
  }
}

void Observer::Watch(const std::string& key, IutRole role) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& t : targets_) {
    if (t->key == key) return;
  }
  auto t = std::make_unique<Target>();
  t->key = key;
  t->role = role;
  t->seg_path = "/dev/shm/cuframes-" + key;
  t->ring_path = "/dev/shm/cuframes-" + key + "-packets";
  t->sock_path = socket_dir_ + "/cuframes-" + key + ".sock";
  t->checker = std::make_unique<ShmChecker>(spec_, role);
  targets_.push_back(std::move(t));
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void Observer::AddConn(const std::string& key, std::shared_ptr<ConnProbe> probe, std::string name) {
  probe->detach_type = spec_.Msg("DETACH").type;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& t : targets_) {
    if (t->key != key) continue;
    std::lock_guard<std::mutex> l2(t->conns_mu);
    t->conns.emplace_back(std::move(probe), std::move(name));
  }
}

void Observer::Disable(uint32_t mask) {
  const uint64_t p0 = passes_.load();
  enabled_.fetch_and(~mask);
  // A pass that began before the change may judge bytes written after it: wait for a full pass
  // that began after it (bounded; the loop never sleeps long).
  if (!thread_.joinable()) return;
  const int64_t until = MonoNs() + 200'000'000;
  while (passes_.load() < p0 + 2 && MonoNs() < until && !stop_.load()) {
    std::this_thread::yield();
  }
}

void Observer::Enable(uint32_t mask) {
  enabled_.fetch_or(mask);
}

std::optional<ObsViolation> Observer::First() {
  std::lock_guard<std::mutex> lock(mu_);
  return first_;
}

void Observer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void Observer::Record(std::vector<ObsViolation>& v) {
  if (v.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!first_) first_ = std::move(v.front());
  v.clear();
}

bool Observer::SampleTarget(Target& t) {
  const Spec& sp = spec_;
  const uint32_t en = enabled_.load();
  ino_t ino = 0;
  const int seg_mode_before = StatMode(t.seg_path, &ino);
  const int ring_mode_before = StatMode(t.ring_path);
  if (t.seg.data && seg_mode_before >= 0 && ino != t.seg.ino) {
    // Another segment now lives at the path (a reclaim, or the next publisher): start afresh.
    t.seg.Reset();
    t.ring.Reset();
    t.checker = std::make_unique<ShmChecker>(sp, t.role);
    t.closed_seen = false;
  }
  const uint32_t kReady = sp.Enum("segment_state", "READY");
  const uint32_t kClosed = sp.Enum("segment_state", "CLOSED");
  if (!t.seg.data) {
    if (seg_mode_before < 0) return false;
    MapIf(t.seg_path, &t.seg, [&](const uint8_t* h, size_t size) {
      std::vector<uint8_t> b(h, h + 256);
      auto g = [&](const char* f) {
        return LoadLe(b, sp.Off("SegmentHeader", f), sp.Field("SegmentHeader", f).size);
      };
      const uint64_t slots = g("slot_count"), subs = g("max_subscribers");
      return g("layout_version") == sp.Const("SEGMENT_LAYOUT_VERSION") &&
             g("magic") == sp.Const("SEGMENT_MAGIC") && g("state") == kReady && slots >= 2 &&
             slots <= 256 && subs >= 1 && subs <= 64 && 256 + 192 * slots + 128 * subs <= size &&
             (g("memory_kind") != sp.Enum("memory_kind", "HOST") ||
              (g("data_offset") % 8 == 0 && g("data_stride") % 8 == 0 &&
               g("data_offset") + g("data_stride") * (slots - 1) + kBufHead <= size));
    });
    if (!t.seg.data) return false;
  }
  const uint8_t* seg = t.seg.data;
  SegSample s;
  s.t_ns = MonoNs();
  s.seg_mode_before = seg_mode_before;
  s.ring_mode_before = ring_mode_before;
  s.hdr.resize(256);
  CopyWords(s.hdr.data(), seg, 256);
  auto g = [&](const std::vector<uint8_t>& b, const char* f) {
    return LoadLe(b, sp.Off("SegmentHeader", f), sp.Field("SegmentHeader", f).size);
  };
  // The geometry comes from the header as mapped (ShmChecker flags any later change).
  const ShmChecker& c = *t.checker;
  const uint64_t slots = c.ready() ? c.slot_count() : g(s.hdr, "slot_count");
  const uint64_t subs = c.ready() ? c.max_subscribers() : g(s.hdr, "max_subscribers");
  const uint64_t data_off = g(s.hdr, "data_offset"), stride = g(s.hdr, "data_stride");
  const bool host = g(s.hdr, "memory_kind") == sp.Enum("memory_kind", "HOST");
  if (slots < 2 || slots > 256 || subs < 1 || subs > 64 ||
      256 + 192 * slots + 128 * subs > t.seg.size) {
    return false;
  }
  s.descs.resize(192 * slots);
  CopyWords(s.descs.data(), seg + 256, s.descs.size());
  if (host && data_off % 8 == 0 && stride % 8 == 0 &&
      data_off + stride * (slots - 1) + kBufHead <= t.seg.size) {
    s.bufheads.resize(kBufHead * slots);
    for (uint64_t i = 0; i < slots; ++i) {
      CopyWords(s.bufheads.data() + kBufHead * i, seg + data_off + stride * i, kBufHead);
    }
  }
  s.subs.resize(128 * subs);
  CopyWords(s.subs.data(), seg + 256 + 192 * slots, s.subs.size());
  for (uint64_t j = 0; j < subs; ++j) {
    s.sub_word0_after.push_back(LoadWord(seg + 256 + 192 * slots + 128 * j));
  }
  s.hdr_after.resize(256);
  CopyWords(s.hdr_after.data(), seg, 256);
  s.seg_mode = StatMode(t.seg_path);
  s.ring_mode = StatMode(t.ring_path);
  s.sock_mode = StatMode(t.sock_path);
  const uint32_t state = static_cast<uint32_t>(g(s.hdr, "state"));
  {
    std::lock_guard<std::mutex> lock(t.conns_mu);
    for (auto& [probe, name] : t.conns) {
      if (probe->first_rx_ns.load() != 0) s.sock_checked = true;
    }
    if (state == kClosed && !t.closed_seen) {
      for (auto& [probe, name] : t.conns) {
        ConnSample cs;
        cs.name = name;
        std::lock_guard<std::mutex> l2(probe->mu);
        cs.judged = probe->first_rx_ns.load() != 0;
        cs.readable = probe->detach_ns.load() != 0 || probe->eof_ns.load() != 0 || probe->fd < 0;
        if (!cs.readable) {
          pollfd p{probe->fd, POLLIN | POLLRDHUP, 0};
          if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) {
            cs.readable = true;
          }
        }
        s.conns.push_back(std::move(cs));
      }
    }
  }
  std::vector<ObsViolation> v;
  t.checker->Feed(s, en, &v);
  if (state == kClosed) t.closed_seen = true;
  uint64_t sig = g(s.hdr, "write_seq") * 31 + g(s.hdr, "frame_futex") * 7 + state +
                 g(s.hdr, "ack_futex") * 131;
  for (uint64_t j = 0; j < subs; ++j)
    sig = sig * 3 + LoadLe(s.subs, 128 * j, 8);

  // The packet ring, once its header says READY.
  const bool has_ring = (g(s.hdr, "flags") & sp.Enum("segment_flags", "PACKET_RING")) != 0;
  if (has_ring && t.role == IutRole::kPublisher) {
    if (!t.ring.data && s.ring_mode >= 0) {
      MapIf(t.ring_path, &t.ring, [&](const uint8_t* h, size_t size) {
        std::vector<uint8_t> b(h, h + 256);
        auto r = [&](const char* f) {
          return LoadLe(b, sp.Off("PacketRingHeader", f), sp.Field("PacketRingHeader", f).size);
        };
        const uint64_t cap = r("capacity");
        return r("magic") == sp.Const("RING_MAGIC") && r("state") == kReady && cap >= 4096 &&
               std::has_single_bit(cap) && r("data_offset") == sp.Const("RING_DATA_OFFSET") &&
               r("data_offset") + cap <= size;
      });
    }
    if (t.ring.data) {
      const uint8_t* rb = t.ring.data;
      RingSample rs;
      rs.t_ns = MonoNs();
      rs.hdr.resize(256);
      CopyWords(rs.hdr.data(), rb, 256);
      const uint64_t cap = LoadLe(rs.hdr, sp.Off("PacketRingHeader", "capacity"), 8);
      const uint64_t doff = sp.Const("RING_DATA_OFFSET");
      const uint64_t poff = sp.Const("CODEC_PARAMS_OFFSET");
      if (cap >= 4096 && std::has_single_bit(cap) && doff + cap <= t.ring.size) {
        rs.params.resize(64 + 4096 + 8);
        CopyWords(rs.params.data(), rb + poff, 64 + 4096);
        rs.data.resize(cap);
        CopyWords(rs.data.data(), rb + doff, cap);
        const uint64_t hp = LoadLe(rs.hdr, sp.Off("PacketRingHeader", "head_pos"), 8);
        rs.head_lock_after = LoadWord(rb + doff + ((hp % cap) & ~uint64_t{7}));
        const uint64_t pl = LoadWord(rb + poff);
        std::memcpy(rs.params.data() + 64 + 4096, &pl, 8);
        rs.hdr_after.resize(256);
        CopyWords(rs.hdr_after.data(), rb, 256);
        t.checker->FeedRing(rs, en, &v);
        sig = sig * 7 + LoadLe(rs.hdr, 64, 8) + LoadLe(rs.hdr, 80, 8) * 5 + pl * 11;
      }
    }
  }
  Record(v);
  const bool changed = sig != t.sig;
  t.sig = sig;
  return changed;
}

void Observer::Loop() {
  int idle = 0;
  while (!stop_.load()) {
    bool changed = false;
    {
      std::vector<Target*> ts;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& t : targets_)
          ts.push_back(t.get());
      }
      for (Target* t : ts)
        changed |= SampleTarget(*t);
      samples_.fetch_add(1);
    }
    passes_.fetch_add(1);
    // Tight while things move; back off (to at most 200 us) while the segment is quiet, so that
    // the observer never starves the IUT on a loaded machine.
    idle = changed ? 0 : idle + 1;
    if (idle < 32) {
      sched_yield();
      continue;
    }
    const timespec ts{0, std::min<long>(100'000, 5'000L * (idle - 31))};
    if (inotify_fd_ < 0) {
      nanosleep(&ts, nullptr);
      continue;
    }
    pollfd p{inotify_fd_, POLLIN, 0};
    if (ppoll(&p, 1, &ts, nullptr) > 0) {
      alignas(inotify_event) char buf[4096];
      while (read(inotify_fd_, buf, sizeof buf) > 0) {}
      idle = 0;
    }
  }
}

}  // namespace cuframes::conform
