// prop_frame_ack_test.cpp: "no slot is reused before all its ACKs" (spec 5.1-5.4, ACK-REUSE-01,
// ACK-READ-03, ACK-REL-01, ACK-REL-04), through the public C API of
// reference/include/cuframes/cuframes.h with the HOST memory kind: one publisher and N
// subscribers in this process (the library's service threads run underneath).
//
// The reuse rule is not a pure function of the reference, so it is tested against a model:
//  - ModelBasedAckSchedule (rc::state): the publisher tries to publish (acquire with timeout 0),
//    subscribers read, release held frames in any order, or detach, in an arbitrary order. The
//    model says when acquire must succeed (every live subscriber has released frame n - S, by the
//    longest-released-prefix rule) and when it must report AGAIN; every read must return the next
//    frame in order with its own bytes; and after every step every frame still held by a live
//    subscriber must still hold its own bytes (its slot was not reused).
//  - ConcurrentAcksNeverSeeAReusedSlot: publisher and subscribers on their own threads, each
//    subscriber holding up to S - 1 frames and releasing them in a generated order after
//    generated delays; every frame's bytes are re-checked just before its release.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cuframes/cuframes.h"
#include "prop_common.h"

namespace cuframes::fuzz {
namespace {

constexpr uint64_t kSlotBytes = 64;
constexpr uint32_t kAckTimeoutMs = 600000;  // no eviction during a test case

// Frame n's bytes: n in the first 8 bytes, then a pattern of n.
void Fill(uint64_t n, uint8_t* p) {
  std::memcpy(p, &n, 8);
  for (uint64_t i = 8; i < kSlotBytes; ++i)
    p[i] = static_cast<uint8_t>(n * 29 + i);
}
bool Holds(uint64_t n, const void* data) {
  uint8_t want[kSlotBytes];
  Fill(n, want);
  return std::memcmp(want, data, kSlotBytes) == 0;
}

// Counts of what the model-based property exercised, printed at exit.
struct Stats {
  uint64_t published = 0, refused = 0, reads = 0, empty_reads = 0, releases = 0, detaches = 0;
  std::string dir;
  ~Stats() {
    std::printf(
        "frame ack model: %llu published, %llu AGAIN (slot still held), %llu frames "
        "read, %llu AGAIN reads, %llu releases, %llu detaches\n",
        static_cast<unsigned long long>(published), static_cast<unsigned long long>(refused),
        static_cast<unsigned long long>(reads), static_cast<unsigned long long>(empty_reads),
        static_cast<unsigned long long>(releases), static_cast<unsigned long long>(detaches));
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
} g_stats;

std::string NewKey() {
  static int counter = 0;
  static const bool dir_ready = [] {
    char tmpl[] = "/tmp/cuframes-propack-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return false;
    ::setenv("CUFRAMES_SOCKET_DIR", tmpl, 1);
    g_stats.dir = tmpl;
    return true;
  }();
  RC_ASSERT(dir_ready);
  return "propack" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

struct PubDeleter {
  void operator()(cuframes_publisher* p) const { cuframes_pub_destroy(p); }
};
struct SubDeleter {
  void operator()(cuframes_subscriber* s) const { cuframes_sub_close(s); }
};
using PubPtr = std::unique_ptr<cuframes_publisher, PubDeleter>;
using SubPtr = std::unique_ptr<cuframes_subscriber, SubDeleter>;

PubPtr CreatePublisher(const std::string& key, uint32_t slot_count, uint32_t max_subscribers) {
  cuframes_pub_options o;
  cuframes_pub_options_init(&o);
  o.key = key.c_str();
  o.memory_kind = CUFRAMES_KIND_HOST;
  o.slot_bytes = kSlotBytes;
  o.slot_count = slot_count;
  o.max_subscribers = max_subscribers;
  o.ack_timeout_ms = kAckTimeoutMs;
  cuframes_publisher* p = nullptr;
  const int s = cuframes_pub_create(&o, &p);
  RC_ASSERT(s == CUFRAMES_OK);
  return PubPtr(p);
}

SubPtr Connect(const std::string& key) {
  cuframes_sub_options o;
  cuframes_sub_options_init(&o);
  o.key = key.c_str();
  o.kinds_mask = CUFRAMES_KIND_BIT(CUFRAMES_KIND_HOST);
  cuframes_subscriber* s = nullptr;
  const int rc = cuframes_sub_connect(&o, &s);
  RC_ASSERT(rc == CUFRAMES_OK);
  return SubPtr(s);
}

// --- model-based: one thread drives everything -----------------------------------------------

struct SubModel {
  bool alive = true;
  uint64_t cursor = 1;      // next frame to read
  std::set<uint64_t> held;  // read, not released
  uint64_t ack() const { return held.empty() ? cursor - 1 : *held.begin() - 1; }
};

struct Model {
  uint32_t slot_count = 2;
  uint64_t write_seq = 0;
  std::vector<SubModel> subs;
  std::vector<uint64_t> closed_blockers;  // write_seq values whose reuse a close unblocked

  // ACK-REUSE-01: frame n may go into its slot once every live subscriber released n - S.
  bool CanPublish() const {
    const uint64_t n = write_seq + 1;
    if (n <= slot_count) return true;
    const uint64_t m = n - slot_count;
    for (const SubModel& s : subs) {
      if (s.alive && s.ack() < m) return false;
    }
    return true;
  }
  // True if a detached subscriber would still block the next publication (the publisher learns
  // of the DETACH on its service thread, so the test waits for it instead of expecting AGAIN).
  bool UnblockedByDetach() const {
    const uint64_t n = write_seq + 1;
    if (n <= slot_count) return false;
    const uint64_t m = n - slot_count;
    for (const SubModel& s : subs) {
      if (!s.alive && s.ack() < m) return true;
    }
    return false;
  }
};

struct Frame {
  uint64_t seq;
  const void* data;
};

struct Sut {
  std::string key;
  PubPtr pub;
  std::vector<SubPtr> subs;
  std::vector<std::map<uint64_t, Frame>> held;  // per subscriber
};

// Every frame still held by a live subscriber still holds its own bytes.
void CheckHeldFrames(const Model& m, const Sut& sut) {
  for (size_t i = 0; i < sut.subs.size(); ++i) {
    if (!m.subs[i].alive) continue;
    for (const auto& [seq, f] : sut.held[i]) {
      if (!Holds(seq, f.data)) {
        RC_FAIL("subscriber " + std::to_string(i) + " holds frame " + std::to_string(seq) +
                " but its slot was overwritten (reused before the ACK)");
      }
    }
  }
}

struct Publish : rc::state::Command<Model, Sut> {
  void apply(Model& m) const override {
    if (m.CanPublish()) ++m.write_seq;
  }
  void run(const Model& m, Sut& sut) const override {
    const bool can = m.CanPublish();
    // Waiting only where a DETACH must first reach the publisher's service thread.
    const int32_t timeout = can && m.UnblockedByDetach() ? 10000 : 0;
    cuframes_slot slot{};
    const int s = cuframes_pub_acquire(sut.pub.get(), timeout, &slot);
    if (!can) {
      if (s != CUFRAMES_AGAIN) {
        RC_FAIL(std::string("acquire of frame ") + std::to_string(m.write_seq + 1) + " returned " +
                cuframes_status_name(s) + " while a live subscriber still holds frame " +
                std::to_string(m.write_seq + 1 - m.slot_count) + " (must be AGAIN)");
      }
      ++g_stats.refused;
      CheckHeldFrames(m, sut);
      return;
    }
    if (s != CUFRAMES_OK) {
      RC_FAIL(std::string("acquire of frame ") + std::to_string(m.write_seq + 1) + " returned " +
              cuframes_status_name(s) + " though every live subscriber released its slot");
    }
    RC_ASSERT(slot.seq == m.write_seq + 1);
    RC_ASSERT(slot.slot_index == (slot.seq - 1) % m.slot_count);
    RC_ASSERT(slot.capacity >= kSlotBytes);
    Fill(slot.seq, static_cast<uint8_t*>(slot.data));
    cuframes_frame_info info{};
    info.payload_bytes = kSlotBytes;
    info.user_data = slot.seq;
    info.timestamp_ns = static_cast<int64_t>(slot.seq) * 1000;
    RC_ASSERT(cuframes_pub_commit(sut.pub.get(), &info) == CUFRAMES_OK);
    ++g_stats.published;
    CheckHeldFrames(m, sut);
  }
  void show(std::ostream& os) const override { os << "Publish"; }
};

struct Read : rc::state::Command<Model, Sut> {
  size_t sub;
  explicit Read(const Model& m) : sub(*rc::gen::inRange<size_t>(0, m.subs.size())) {}
  void checkPreconditions(const Model& m) const override { RC_PRE(m.subs[sub].alive); }
  void apply(Model& m) const override {
    SubModel& s = m.subs[sub];
    if (s.cursor <= m.write_seq) s.held.insert(s.cursor++);
  }
  void run(const Model& m, Sut& sut) const override {
    const SubModel& s = m.subs[sub];
    cuframes_frame f{};
    const int rc = cuframes_sub_next_frame(sut.subs[sub].get(), 0, &f);
    if (s.cursor > m.write_seq) {
      RC_ASSERT(rc == CUFRAMES_AGAIN);
      ++g_stats.empty_reads;
      return;
    }
    ++g_stats.reads;
    if (rc != CUFRAMES_OK) {
      RC_FAIL(std::string("next_frame returned ") + cuframes_status_name(rc));
    }
    RC_ASSERT(f.seq == s.cursor);  // ACK-READ-03: in order, no skip, no repeat
    RC_ASSERT(f.user_data == s.cursor);
    RC_ASSERT(f.payload_bytes == kSlotBytes);
    RC_ASSERT(Holds(f.seq, f.data));
    sut.held[sub][f.seq] = Frame{f.seq, f.data};
    CheckHeldFrames(m, sut);
  }
  void show(std::ostream& os) const override { os << "Read(sub " << sub << ")"; }
};

struct Release : rc::state::Command<Model, Sut> {
  size_t sub;
  size_t pick;  // index into the subscriber's held frames, in seq order
  explicit Release(const Model& m)
      : sub(*rc::gen::inRange<size_t>(0, m.subs.size())), pick(*rc::gen::inRange<size_t>(0, 8)) {}
  void checkPreconditions(const Model& m) const override {
    RC_PRE(m.subs[sub].alive && !m.subs[sub].held.empty());
  }
  uint64_t Seq(const Model& m) const {
    const auto& held = m.subs[sub].held;
    return *std::next(held.begin(), static_cast<std::ptrdiff_t>(pick % held.size()));
  }
  void apply(Model& m) const override { m.subs[sub].held.erase(Seq(m)); }
  void run(const Model& m, Sut& sut) const override {
    const uint64_t seq = Seq(m);
    auto& held = sut.held[sub];
    RC_ASSERT(held.count(seq) == 1u);
    RC_ASSERT(Holds(seq, held[seq].data));  // intact up to its release
    cuframes_frame f{};
    f.seq = seq;
    RC_ASSERT(cuframes_sub_release(sut.subs[sub].get(), &f) == CUFRAMES_OK);
    held.erase(seq);
    ++g_stats.releases;
    CheckHeldFrames(m, sut);
  }
  void show(std::ostream& os) const override {
    os << "Release(sub " << sub << ", held #" << pick << ")";
  }
};

struct Detach : rc::state::Command<Model, Sut> {
  size_t sub;
  explicit Detach(const Model& m) : sub(*rc::gen::inRange<size_t>(0, m.subs.size())) {}
  void checkPreconditions(const Model& m) const override {
    RC_PRE(m.subs[sub].alive);
    RC_PRE(std::count_if(m.subs.begin(), m.subs.end(), [](const SubModel& s) { return s.alive; }) >
           1);
  }
  void apply(Model& m) const override { m.subs[sub].alive = false; }
  void run(const Model&, Sut& sut) const override {
    sut.subs[sub].reset();  // DETACH while holding frames: releases none (ACK-REL-04)
    sut.held[sub].clear();
    ++g_stats.detaches;
  }
  void show(std::ostream& os) const override { os << "Detach(sub " << sub << ")"; }
};

RC_GTEST_PROP(FrameAck, ModelBasedAckSchedule, ()) {
  const uint32_t slot_count = *rc::gen::inRange<uint32_t>(2, 5);
  const size_t nsubs = *rc::gen::inRange<size_t>(1, 4);
  Sut sut;
  sut.key = NewKey();
  sut.pub = CreatePublisher(sut.key, slot_count, static_cast<uint32_t>(nsubs));
  Model model;
  model.slot_count = slot_count;
  for (size_t i = 0; i < nsubs; ++i) {
    sut.subs.push_back(Connect(sut.key));
    model.subs.emplace_back();
  }
  sut.held.resize(nsubs);
  RC_ASSERT(cuframes_pub_wait_subscribers(sut.pub.get(), static_cast<uint32_t>(nsubs), 10000) ==
            CUFRAMES_OK);
  rc::state::check(
      model, sut,
      rc::state::gen::execOneOfWithArgs<Publish, Publish, Publish, Read, Read, Read, Read, Release,
                                        Release, Release, Release, Detach>());
  sut.subs.clear();
  sut.pub.reset();
}

// --- threads -----------------------------------------------------------------------------------

struct SubSchedule {
  uint32_t hold;                    // frames held before releasing (1 .. S - 1)
  std::vector<uint16_t> delays_us;  // cycled: pause after each read/release
  bool release_newest_first;
};

RC_GTEST_PROP(FrameAck, ConcurrentAcksNeverSeeAReusedSlot, ()) {
  const uint32_t slot_count = *rc::gen::inRange<uint32_t>(2, 5);
  const size_t nsubs = *rc::gen::inRange<size_t>(1, 4);
  const uint64_t frames = *rc::gen::inRange<uint64_t>(1, 120);
  std::vector<SubSchedule> schedules;
  for (size_t i = 0; i < nsubs; ++i) {
    schedules.push_back(
        {*rc::gen::inRange<uint32_t>(1, slot_count),
         *rc::gen::nonEmpty(
             rc::gen::container<std::vector<uint16_t>>(rc::gen::weightedOneOf<uint16_t>(
                 {{3, rc::gen::just<uint16_t>(0)}, {1, rc::gen::inRange<uint16_t>(1, 300)}}))),
         *rc::gen::arbitrary<bool>()});
  }
  const std::string key = NewKey();
  PubPtr pub = CreatePublisher(key, slot_count, static_cast<uint32_t>(nsubs));
  std::vector<SubPtr> subs;
  for (size_t i = 0; i < nsubs; ++i)
    subs.push_back(Connect(key));
  RC_ASSERT(cuframes_pub_wait_subscribers(pub.get(), static_cast<uint32_t>(nsubs), 10000) ==
            CUFRAMES_OK);

  std::vector<std::string> errors(nsubs);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < nsubs; ++i) {
    threads.emplace_back([&, i] {
      const SubSchedule& sch = schedules[i];
      std::vector<Frame> held;
      size_t step = 0;
      uint64_t expect = 1;
      auto pause = [&] {
        const uint16_t us = sch.delays_us[step++ % sch.delays_us.size()];
        // The generated ACK schedule's delay; correctness never depends on it.
        if (us != 0) std::this_thread::sleep_for(std::chrono::microseconds(us));  // ok-sleep
      };
      auto release_one = [&]() -> bool {
        auto it = sch.release_newest_first ? std::prev(held.end()) : held.begin();
        if (!Holds(it->seq, it->data)) {
          errors[i] = "frame " + std::to_string(it->seq) + " overwritten before its release";
          return false;
        }
        cuframes_frame f{};
        f.seq = it->seq;
        if (cuframes_sub_release(subs[i].get(), &f) != CUFRAMES_OK) {
          errors[i] = "release failed";
          return false;
        }
        held.erase(it);
        pause();
        return true;
      };
      while (expect <= frames) {
        cuframes_frame f{};
        const int rc = cuframes_sub_next_frame(subs[i].get(), 20, &f);
        if (rc == CUFRAMES_TIMEOUT || rc == CUFRAMES_AGAIN) {
          while (!held.empty()) {  // let the publisher go on
            if (!release_one()) return;
          }
          continue;
        }
        if (rc != CUFRAMES_OK) {
          errors[i] = std::string("next_frame: ") + cuframes_status_name(rc);
          return;
        }
        if (f.seq != expect || !Holds(f.seq, f.data)) {
          errors[i] = "got frame " + std::to_string(f.seq) + ", expected " +
                      std::to_string(expect) + (Holds(f.seq, f.data) ? "" : " (bad bytes)");
          return;
        }
        ++expect;
        held.push_back(Frame{f.seq, f.data});
        pause();
        while (held.size() >= sch.hold) {
          if (!release_one()) return;
        }
      }
      while (!held.empty()) {
        if (!release_one()) return;
      }
    });
  }
  std::string pub_error;
  for (uint64_t n = 1; n <= frames; ++n) {
    cuframes_slot slot{};
    const int s = cuframes_pub_acquire(pub.get(), 30000, &slot);
    if (s != CUFRAMES_OK || slot.seq != n) {
      pub_error = std::string("acquire: ") + cuframes_status_name(s);
      break;
    }
    Fill(n, static_cast<uint8_t*>(slot.data));
    cuframes_frame_info info{};
    info.payload_bytes = kSlotBytes;
    info.user_data = n;
    if (cuframes_pub_commit(pub.get(), &info) != CUFRAMES_OK) {
      pub_error = "commit failed";
      break;
    }
  }
  for (auto& t : threads)
    t.join();
  subs.clear();
  pub.reset();
  RC_ASSERT(pub_error == "");
  for (size_t i = 0; i < nsubs; ++i) {
    if (!errors[i].empty()) RC_FAIL("subscriber " + std::to_string(i) + ": " + errors[i]);
  }
}

}  // namespace
}  // namespace cuframes::fuzz
