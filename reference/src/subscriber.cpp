// subscriber.cpp: the subscriber's handshake, its service thread and the consumer side of the
// frame ring and the packet ring.
#include "subscriber.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "fault.h"
#include "fd_passing.h"
#include "handshake.h"
#include "layout.h"
#include "lifecycle.h"
#include "mem_order.h"
#include "memory_kind.h"
#include "packet_ring.h"
#include "publisher.h"
#include "segment.h"
#include "spin.h"
#include "tlv.h"

namespace cuframes {
namespace {

using Clock = std::chrono::steady_clock;
using handshake::Action;
using handshake::Event;
using handshake::SubState;

// Blocked waits re-check the connection at least this often (< PEER_DEATH_DETECT_MS).
constexpr int64_t kWaitSliceNs = 20'000'000;
constexpr int kPacketSliceMs = 20;

int64_t RemainingNs(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
}

}  // namespace

struct Subscriber::Impl {
  SubscriberConfig cfg;
  int fd = -1;
  int wake_fd = -1;
  std::mutex send_mu;
  std::thread service;
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> closed{0};  // sticky Status once the connection ended
  tlv::Reassembler rx;
  SubState state = SubState::kAwaitHelloResp;
  // Descriptors that arrived during the handshake (CUDA_VMM_FD buffers come with HELLO_RESP,
  // KIND-06); every one is closed once the handshake has used it or not (KIND-07).
  std::vector<int> rx_fds;
  bool rx_fds_truncated = false;

  Mapping seg;
  SegmentInfo info{};
  std::unique_ptr<SubscriberMemory> memory;
  layout::SubscriberSlot* own = nullptr;
  ConnectInfo ci{};
  uint64_t cursor = 0;          // next frame to read
  uint64_t acked = 0;           // every frame <= acked has been released
  std::deque<bool> released;    // frames acked+1 .. cursor-1: released yet?
  spin::Adaptive spin;          // NextFrame's spin before it parks on frame_futex
  bool forwards_wakes = false;  // SHM-WAKE-01 applies: WAKE_FORWARD sent, version >= 3 agreed

  Mapping ring_map;
  ring::RingReader ring;
  bool has_ring = false;
  bool packet_pending = false;
  PacketView pending{};
  std::vector<uint8_t> pending_data;

  ~Impl();
  Status closed_status() const { return static_cast<Status>(closed.load()); }
  // The connection's end as the socket shows it now, without waiting for the service thread:
  // the sticky status, or PEER_CLOSED once the peer has hung up; kOk while it is alive.
  Status PeerGone() const {
    if (const Status c = closed_status(); c != Status::kOk) return c;
    pollfd p{fd, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      return Status::kPeerClosed;
    }
    return Status::kOk;
  }
  void MarkClosed(Status s) {
    uint32_t expected = 0;
    closed.compare_exchange_strong(expected, ToWire(s == Status::kOk ? Status::kPeerClosed : s));
  }
  bool Send(const tlv::Message& m);
  Status Handshake();
  Status Expect(Clock::time_point deadline, tlv::Message* out);
  Status Fail(Status s, const std::string& text);
  Status ProcessHelloResp(const tlv::HelloResp& resp, Clock::time_point deadline);
  Status Finish(const handshake::SubStep& step);
  Status OpenRing(const tlv::HelloResp& resp, Clock::time_point deadline);
  Status Evicted();
  bool Drain();
  void ServiceLoop();
};

// Shared memory says we were evicted (slot state, or the slot was overwritten). The publisher
// sends ERROR{EVICTED or PROTOCOL} and closes right after: wait (bounded) for it, so the caller
// learns the publisher's reason.
Status Subscriber::Impl::Evicted() {
  const auto deadline = Clock::now() + std::chrono::milliseconds(layout::kPeerDeathDetectMs);
  while (closed.load() == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // A publisher shutting down frees every slot before it stores CLOSED, so a freed slot with a
  // DETACH or end-of-file on the socket (and no ERROR) is the publisher leaving, not an eviction.
  const Status c = closed_status();
  if (c == Status::kPeerClosed || mem::load_acquire(&seg.header()->state) == layout::kSegClosed) {
    return Status::kPeerClosed;
  }
  return c == Status::kOk ? Status::kEvicted : c;
}

Subscriber::Impl::~Impl() {
  if (service.joinable()) {
    stop.store(true);
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof(one));
    service.join();
  }
  if (fd >= 0) {
    CUFRAMES_FAULT_POINT("sub.close.before_detach");
    if (state == SubState::kActive && closed.load() == 0) Send(tlv::Detach{0});
    CUFRAMES_FAULT_POINT("sub.close.after_detach");
    ::close(fd);
  }
  if (wake_fd >= 0) ::close(wake_fd);
  fdpass::CloseAll(&rx_fds);  // a handshake that ended early may have left some
  memory.reset();             // CUDA: synchronizes, then closes each import once
  ring_map.Reset();
  seg.Reset();
}

bool Subscriber::Impl::Send(const tlv::Message& m) {
  const std::vector<uint8_t> bytes = tlv::Encode(m);
  std::lock_guard<std::mutex> lock(send_mu);
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// The peer violated the protocol: ERROR{s}, close (the caller's Impl destructor closes).
Status Subscriber::Impl::Fail(Status s, const std::string& text) {
  Send(tlv::ErrorMsg{ToWire(s), text});
  state = SubState::kClosed;
  return s;
}

// Receives messages until one whose transition is "process it" (HELLO_RESP/ATTACH_RESP in the
// right state); answers PINGs on the way.
Status Subscriber::Impl::Expect(Clock::time_point deadline, tlv::Message* out) {
  for (;;) {
    tlv::Message m;
    Status s = rx.Next(&m);
    if (s == Status::kOk) {
      const handshake::SubStep step = handshake::SubscriberStep(state, handshake::EventOf(m));
      switch (step.action) {
        case Action::kProcessHelloResp:
        case Action::kProcessAttachResp:
          *out = std::move(m);
          state = step.next;
          return Status::kOk;
        case Action::kSendPong:
          Send(tlv::Pong{std::get<tlv::Ping>(m).nonce});
          continue;
        case Action::kNone:
          continue;
        case Action::kSendErrorClose:
          return Fail(step.error,
                      std::string(tlv::TypeName(static_cast<uint16_t>(tlv::TypeOf(m)))) +
                          " not allowed in this state");
        default:
          state = SubState::kClosed;
          if (const auto* e = std::get_if<tlv::ErrorMsg>(&m)) return StatusFromWire(e->code);
          return step.error;
      }
    }
    if (s != Status::kAgain) {
      // A framing error in an ERROR is never answered (TLV-ERR-06): close, report PROTOCOL
      // (TLV-ERR-08).
      if (rx.FailedOnError()) {
        state = SubState::kClosed;
        return Status::kProtocol;
      }
      return Fail(s, std::string("malformed message: ") + StatusName(s));
    }
    const int64_t left_ms = RemainingNs(deadline) / 1000000;
    if (left_ms <= 0) {  // SM-SUB-02: close and report TIMEOUT (nothing is sent)
      state = SubState::kClosed;
      return Status::kTimeout;
    }
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    if (r < 0 && errno != EINTR) return Status::kSystem;
    if (r <= 0) continue;
    uint8_t buf[tlv::kHeaderSize + tlv::kMaxPayload];
    const fdpass::Received got = fdpass::RecvWithFds(fd, buf, &rx_fds, 0);
    rx_fds_truncated = rx_fds_truncated || got.truncated;
    const ssize_t n = got.n;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      state = SubState::kClosed;
      return Status::kPeerClosed;
    }
    rx.Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
  }
}

Status Subscriber::Impl::OpenRing(const tlv::HelloResp& resp, Clock::time_point deadline) {
  const std::string path = RingPath(cfg.key);
  const int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return errno == ENOENT ? Status::kCorrupt : Status::kSystem;
  struct stat st {};
  if (::fstat(rfd, &st) != 0 || st.st_size < static_cast<off_t>(ring::kRingHeaderSize)) {
    ::close(rfd);
    return Status::kCorrupt;
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, rfd, 0);
  ::close(rfd);
  if (addr == MAP_FAILED) return Status::kSystem;
  ring_map = Mapping(addr, size);
  // PKT-HDR-03: a ring still INIT (all-zero prefix) is waited for, as the segment is
  // (SHM-VALID-03), until the handshake deadline; still INIT then is TIMEOUT, nothing sent.
  Status s;
  while ((s = ring.attach(addr, size)) == Status::kAgain) {
    if (Clock::now() >= deadline) return Status::kTimeout;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (s != Status::kOk) return s;
  // The writer wakes readers only while packet_waiters (frame segment header) is nonzero.
  ring.set_waiter_count(&seg.header()->packet_waiters);
  if (resp.initial_packet_seq != 0) {
    s = ring.seek(resp.initial_packet_seq, resp.initial_packet_pos);
    if (s != Status::kOk) return Status::kProtocol;
  }
  has_ring = true;
  return Status::kOk;
}

// Checks a HELLO_RESP(OK) and prepares everything ATTACH_REQ announces: maps and validates the
// segment (and ring), opens the memory kind's handles. Returns the verdict for AfterHelloResp().
Status Subscriber::Impl::ProcessHelloResp(const tlv::HelloResp& resp, Clock::time_point deadline) {
  Status s = handshake::CheckHelloResp(resp, cfg.max_proto_version, cfg.kinds_mask);
  if (s != Status::kOk) return s;  // a version or kind we did not offer
  const int64_t left_ms = std::max<int64_t>(RemainingNs(deadline) / 1000000, 1);
  s = AttachSegment(cfg.key, static_cast<uint32_t>(left_ms), &seg, &info);
  if (s != Status::kOk) return s;  // UNSUPPORTED_LAYOUT, CORRUPT, PEER_CLOSED, TIMEOUT
  if (info.memory_kind != resp.memory_kind) return Status::kCorrupt;
  // SHM-VALID-04: the slot HELLO_RESP assigned us must be the one the publisher reserved
  // (ATTACHING, same generation); shared memory that disagrees is CORRUPT, like any validation.
  if (resp.subscriber_index >= info.max_subscribers) return Status::kCorrupt;
  own = seg.sub(info, resp.subscriber_index);
  if (mem::load_acquire(&own->state) != layout::kSubAttaching ||
      mem::load_acquire(&own->generation) != resp.generation) {
    return Status::kCorrupt;
  }
  memory = info.memory_kind == layout::kKindHost
               ? MakeHostSubscriberMemory()
               : MakeCudaSubscriberMemory(cfg.cuda_device, info.memory_kind);
  if (!memory) return Status::kUnsupportedKind;
  // KIND-07: exactly one descriptor per slot, none lost, or PROTOCOL before any import.
  if (info.memory_kind == layout::kKindCudaVmmFd &&
      (rx_fds_truncated || rx_fds.size() != info.slot_count)) {
    return Status::kProtocol;
  }
  s = memory->Init(seg, info, own, rx_fds);
  fdpass::CloseAll(&rx_fds);  // imported (or not needed): KIND-06 closes each one
  if (s != Status::kOk) return s;
  if (resp.proto_version >= 2 && (resp.caps & tlv::kHelloRespCapPacketRing) != 0) {
    s = OpenRing(resp, deadline);
    if (s != Status::kOk) return s;
  }
  return Status::kOk;
}

// Performs a handshake step's closing action and returns the status to report.
Status Subscriber::Impl::Finish(const handshake::SubStep& step) {
  if (step.action == Action::kSendErrorClose) {
    Send(tlv::ErrorMsg{ToWire(step.error), std::string("handshake: ") + StatusName(step.error)});
  } else if (step.action == Action::kSendDetachClose) {
    Send(tlv::Detach{ToWire(step.error)});
  }
  state = step.next;
  return step.error;
}

Status Subscriber::Impl::Handshake() {
  const auto deadline = Clock::now() + std::chrono::milliseconds(cfg.connect_timeout_ms);
  tlv::HelloReq req{};
  req.magic = layout::kHelloMagic;
  req.min_proto = 1;
  req.max_proto = cfg.max_proto_version;
  req.kinds_mask = cfg.kinds_mask;
  req.lib_version = LibVersion();
  if (cfg.max_proto_version >= 2) {  // VER-RSV-01: caps stays zero for a version 1 subscriber
    if (cfg.want_packets) req.caps |= tlv::kHelloReqCapWantPackets;
    // SHM-WAKE-01: a version 3 subscriber always passes frame wake-ups on.
    if (cfg.max_proto_version >= 3) req.caps |= tlv::kHelloReqCapWakeForward;
  }
  if (!Send(req)) return Status::kPeerClosed;
  CUFRAMES_FAULT_POINT("sub.hs.after_hello_req");
  tlv::Message m;
  Status s = Expect(deadline, &m);
  if (s != Status::kOk) return s;
  const auto resp = std::get<tlv::HelloResp>(m);
  CUFRAMES_FAULT_POINT("sub.hs.after_hello_resp");
  const bool hello_refused = resp.status != 0;
  s = hello_refused ? StatusFromWire(resp.status) : ProcessHelloResp(resp, deadline);
  fdpass::CloseAll(&rx_fds);  // whatever the outcome, no descriptor outlives HELLO_RESP
  if (!hello_refused && s != Status::kOk && PeerGone() != Status::kOk) {
    // The publisher died after HELLO_RESP: what failed (e.g. opening its CUDA IPC handles) failed
    // because of the death, and the death is what we report (RES-CRASH-01).
    state = SubState::kClosed;
    return Status::kPeerClosed;
  }
  handshake::SubStep step = handshake::AfterHelloResp(s, hello_refused);
  if (step.error != Status::kOk) return Finish(step);
  state = step.next;
  CUFRAMES_FAULT_POINT("sub.hs.after_map");
  tlv::AttachReq areq{resp.subscriber_index, resp.generation,
                      memory->AckEventWritten() ? tlv::kAttachReqFlagAckEventWritten : 0u};
  if (!Send(areq)) return Status::kPeerClosed;
  CUFRAMES_FAULT_POINT("sub.hs.after_attach_req");
  s = Expect(deadline, &m);
  if (s != Status::kOk) return s;
  fdpass::CloseAll(&rx_fds);  // descriptors with any other message are closed unused (KIND-07)
  const auto aresp = std::get<tlv::AttachResp>(m);
  const bool attach_refused = aresp.status != 0;
  s = attach_refused ? StatusFromWire(aresp.status)
                     : (aresp.start_seq == 0 ? Status::kProtocol : Status::kOk);
  step = handshake::AfterAttachResp(s, attach_refused);
  if (step.error != Status::kOk) return Finish(step);
  state = step.next;
  cursor = aresp.start_seq;
  acked = aresp.start_seq - 1;
  forwards_wakes = (req.caps & tlv::kHelloReqCapWakeForward) != 0 && resp.proto_version >= 3;
  ci.proto_version = resp.proto_version;
  ci.memory_kind = resp.memory_kind;
  ci.subscriber_index = resp.subscriber_index;
  ci.generation = resp.generation;
  ci.start_seq = aresp.start_seq;
  ci.publisher_lib_version = resp.lib_version;
  ci.packet_ring = has_ring;
  ci.width = info.width;
  ci.height = info.height;
  ci.pixel_format = info.pixel_format;
  ci.pitch = info.pitch;
  ci.slot_bytes = info.slot_bytes;
  ci.slot_count = info.slot_count;
  return Status::kOk;
}

// Handles every complete message buffered in rx (spec 4.1, state ACTIVE). Returns false once the
// connection has ended (closed is then set and the socket shut down).
bool Subscriber::Impl::Drain() {
  for (;;) {
    tlv::Message m;
    const Status s = rx.Next(&m);
    if (s == Status::kAgain) return true;
    if (s != Status::kOk) {
      // A framing error in an ERROR is never answered (TLV-ERR-06) and reported as PROTOCOL
      // (TLV-ERR-08); any other is answered with the code it is reported as.
      const bool in_error = rx.FailedOnError();
      if (!in_error)
        Send(tlv::ErrorMsg{ToWire(s), std::string("malformed message: ") + StatusName(s)});
      ::shutdown(fd, SHUT_RDWR);
      MarkClosed(in_error ? Status::kProtocol : s);
      return false;
    }
    const handshake::SubStep step =
        handshake::SubscriberStep(SubState::kActive, handshake::EventOf(m));
    switch (step.action) {
      case Action::kSendPong:
        Send(tlv::Pong{std::get<tlv::Ping>(m).nonce});
        continue;
      case Action::kNone:
        continue;
      case Action::kSendErrorClose:
        Send(tlv::ErrorMsg{ToWire(step.error),
                           std::string(tlv::TypeName(static_cast<uint16_t>(tlv::TypeOf(m)))) +
                               " not allowed in this state"});
        ::shutdown(fd, SHUT_RDWR);
        MarkClosed(step.error);
        return false;
      default: {  // DETACH or ERROR: never answer an ERROR (TLV-ERR-06); just close
        const auto* e = std::get_if<tlv::ErrorMsg>(&m);
        ::shutdown(fd, SHUT_RDWR);
        MarkClosed(e != nullptr ? StatusFromWire(e->code) : step.error);
        return false;
      }
    }
  }
}

void Subscriber::Impl::ServiceLoop() {
  uint8_t buf[tlv::kHeaderSize + tlv::kMaxPayload];
  // Messages that arrived with the handshake's last read are already buffered.
  if (!Drain()) return;
  while (!stop.load() && closed.load() == 0) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    const int r = ::poll(p, 2, 100);
    if (r < 0 && errno != EINTR) {
      MarkClosed(Status::kSystem);
      return;
    }
    if (stop.load()) return;
    if (r <= 0 || (p[0].revents == 0)) continue;
    const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) {
      MarkClosed(Status::kPeerClosed);  // EOF: the publisher closed or died
      return;
    }
    rx.Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    if (!Drain()) return;
  }
}

Subscriber::Subscriber(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Subscriber::~Subscriber() = default;

Status Subscriber::Connect(const SubscriberConfig& config, std::unique_ptr<Subscriber>* out) {
  SubscriberConfig cfg = config;
  if (!ValidKey(cfg.key) || cfg.max_proto_version < 1) return Status::kInvalidArgument;
  cfg.max_proto_version = std::min<uint16_t>(cfg.max_proto_version, kMaxProtoVersion);
  // Offer only kinds this build has: HOST always, CUDA_IPC when built, CUDA_VMM_FD when built and
  // the device can import descriptors (KIND-05). The device is asked only when VMM is wanted.
  uint32_t offered = layout::KindBit(layout::kKindHost);
  if (CudaKindBuilt()) offered |= layout::KindBit(layout::kKindCudaIpc);
  if ((cfg.kinds_mask & layout::KindBit(layout::kKindCudaVmmFd)) != 0 && CudaKindBuilt() &&
      CudaVmmUsable(cfg.cuda_device)) {
    offered |= layout::KindBit(layout::kKindCudaVmmFd);
  }
  if ((cfg.kinds_mask & offered) == 0) return Status::kUnsupported;
  cfg.kinds_mask &= offered;
  // A subscriber that takes only CUDA kinds will need its context: create it before the
  // handshake's deadline starts (one that may also take HOST creates it only if it gets CUDA).
  if ((cfg.kinds_mask & layout::KindBit(layout::kKindHost)) == 0) CudaWarmUp(cfg.cuda_device);
  const std::string path = SocketPath(cfg.key);
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return Status::kInvalidArgument;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (impl->fd < 0) return Status::kSystem;
  if (::connect(impl->fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) return Status::kNotFound;
    return errno == EACCES || errno == EPERM ? Status::kPermission : Status::kSystem;
  }
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->wake_fd < 0) return Status::kSystem;
  const Status s = impl->Handshake();
  if (s != Status::kOk) return s;
  Impl* raw = impl.get();
  impl->service = std::thread([raw] { raw->ServiceLoop(); });
  out->reset(new Subscriber(std::move(impl)));
  return Status::kOk;
}

const ConnectInfo& Subscriber::info() const {
  return impl_->ci;
}

Status Subscriber::NextFrame(int32_t timeout_ms, FrameView* out) {
  Impl& d = *impl_;
  if (Status c = d.closed_status(); c != Status::kOk) return c;
  const uint64_t n = d.cursor;
  auto* h = d.seg.header();
  Clock::time_point deadline{};
  bool have_deadline = false;
  bool spun = false;
  for (;;) {
    if (Status c = d.closed_status(); c != Status::kOk) return c;
    const uint32_t futex_value = mem::load_acquire(&h->frame_futex);
    if (mem::load_acquire(&h->write_seq) >= n) break;
    if (mem::load_acquire(&h->state) == layout::kSegClosed) {
      d.MarkClosed(Status::kPeerClosed);
      return Status::kPeerClosed;
    }
    if (mem::load_acquire(&d.own->state) != layout::kSubActive ||
        mem::load_relaxed(&d.own->generation) != d.ci.generation) {
      return d.Evicted();
    }
    if (timeout_ms == 0) return Status::kAgain;
    if (!have_deadline) {
      deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
      have_deadline = true;
    }
    int64_t slice = kWaitSliceNs;
    if (timeout_ms > 0) {
      const int64_t left = RemainingNs(deadline);
      if (left <= 0) return Status::kTimeout;
      slice = std::min(slice, left);
    }
    if (!spun) {
      // Poll before parking (SHM-ORDER-03: uncounted), once per call and at most `slice`: a
      // frame that arrives meanwhile costs the publisher no FUTEX_WAKE. The checks above run
      // again afterwards whatever the outcome.
      spun = true;
      const int64_t budget = std::min(d.spin.budget(), slice);
      if (budget > 0) {
        d.spin.record(spin::Until([&] { return mem::load_acquire(&h->write_seq) >= n; }, budget));
        continue;
      }
    }
    // SHM-ORDER-04: count ourselves as a waiter (seq_cst), re-check, bounded wait, uncount.
    mem::fetch_add_seq_cst<uint32_t>(&h->frame_waiters, 1);
    CUFRAMES_FAULT_POINT("sub.frame.waiter_counted");
    if (mem::load_seq_cst(&h->write_seq) < n) {
      if (d.forwards_wakes) {
        // SHM-WAKE-01: wait in frame n's bitset; woken with frame n there, pass the wake-up on
        // to two more of its waiters before anything else (the publisher may have woken only
        // two of us). Waiters for frame n + 1 have another bit and are not woken early.
        const uint32_t bits = 1u << (n & 31);
        if (mem::futex_wait_bitset(&h->frame_futex, futex_value, slice, bits) == 0 &&
            mem::load_acquire(&h->write_seq) >= n) {
          mem::futex_wake_bitset(&h->frame_futex, tlv::kWakeForwardCount, bits);
        }
      } else {
        mem::futex_wait(&h->frame_futex, futex_value, slice);
      }
    }
    mem::fetch_add_seq_cst<uint32_t>(&h->frame_waiters, static_cast<uint32_t>(-1));
  }
  // SHM-SUB-04: a frame committed after our eviction is not ours: the publisher no longer waits for
  // our ACK, so it may be overwriting that slot while we read it. The publisher stores EVICTED
  // before any later commit, so the acquire load of write_seq above makes it visible here.
  if (mem::load_acquire(&d.own->state) != layout::kSubActive ||
      mem::load_relaxed(&d.own->generation) != d.ci.generation) {
    return d.Evicted();
  }
  const auto slot = static_cast<uint32_t>((n - 1) % d.info.slot_count);
  layout::FrameMeta* meta = &d.seg.desc(slot)->meta;
  const uint64_t seq = mem::load_acquire(&meta->seq);
  if (seq != n) return seq > n ? d.Evicted() : Status::kCorrupt;  // overtaken: evicted
  FrameView f{};
  f.seq = n;
  f.timestamp_ns = mem::seq_load(&meta->timestamp_ns);
  f.width = mem::seq_load(&meta->width);
  f.height = mem::seq_load(&meta->height);
  f.pixel_format = mem::seq_load(&meta->pixel_format);
  f.pitch = mem::seq_load(&meta->pitch);
  f.payload_bytes = mem::seq_load(&meta->payload_bytes);
  f.flags = mem::seq_load(&meta->flags);
  f.user_data = mem::seq_load(&meta->user_data);
  mem::fence_acquire();
  if (mem::load_relaxed(&meta->seq) != n) return d.Evicted();
  if (f.payload_bytes > d.info.slot_bytes) return Status::kCorrupt;
  if (d.memory->WaitReady(slot) != Status::kOk) return Status::kCuda;
  f.data = d.memory->SlotBuffer(slot);
  f.stream = d.memory->Stream();
  d.cursor = n + 1;
  d.released.push_back(false);
  CUFRAMES_FAULT_POINT("sub.frame.holding");
  *out = f;
  return Status::kOk;
}

Status Subscriber::Release(uint64_t seq) {
  Impl& d = *impl_;
  if (seq <= d.acked || seq >= d.cursor) return Status::kInvalidArgument;
  const size_t idx = seq - d.acked - 1;
  if (d.released[idx]) return Status::kInvalidArgument;
  d.released[idx] = true;
  if (Status c = d.closed_status(); c != Status::kOk) return c;
  // The ACK event first, so that the publisher's stream waits for our last use of the buffer.
  if (d.memory->RecordAck() != Status::kOk) return Status::kCuda;
  const uint64_t before = d.acked;
  while (!d.released.empty() && d.released.front()) {
    d.released.pop_front();
    ++d.acked;
  }
  if (d.acked == before) return Status::kOk;
  auto* h = d.seg.header();
  CUFRAMES_FAULT_POINT("sub.ack.before_store");
  // SHM-SUB-01/-04: the slot is ours only while it is ACTIVE with our generation. A subscriber
  // evicted while it was stopped (or starved) must not store its ACK into the slot the publisher
  // has since given to another subscriber, which would then be evicted for our value
  // (ACK-EVICT-02). The check narrows that to the instant between it and the store; closing it
  // needs the publisher to tell whose ACK it reads.
  if (mem::load_acquire(&d.own->state) != layout::kSubActive ||
      mem::load_relaxed(&d.own->generation) != d.ci.generation) {
    return d.Evicted();
  }
  mem::store_release<uint64_t>(&d.own->ack_seq, d.acked);
  CUFRAMES_FAULT_POINT("sub.ack.after_store");
  // SHM-ORDER-02: the seq_cst increment, then the seq_cst load of the count (one full barrier,
  // the locked increment itself, where a separate fence added a second).
  mem::fetch_add_seq_cst<uint32_t>(&h->ack_futex, 1);
  if (mem::load_seq_cst(&h->ack_waiting) != 0) mem::futex_wake_all(&h->ack_futex);
  return Status::kOk;
}

Status Subscriber::NextPacket(int32_t timeout_ms, void* buf, uint32_t buf_size, PacketView* out) {
  Impl& d = *impl_;
  if (!d.has_ring) return Status::kNoPacketRing;
  if (!d.packet_pending) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    ring::Packet p;
    for (;;) {
      if (Status c = d.closed_status(); c != Status::kOk) {
        // PKT-READ-01: PEER_CLOSED only once every packet is read. A publisher that closed (or
        // died) left its complete packets in the ring, which stays mapped: deliver them first,
        // so that a recorder gets the end of a stream. An overrun still resumes (PKT-API-01).
        if (c != Status::kPeerClosed) return c;
        const Status s = d.ring.next(p, 0);
        if (s == Status::kOk) break;
        return s == Status::kPacketOverrun ? s : c;
      }
      int slice = kPacketSliceMs;
      if (timeout_ms == 0) {
        slice = 0;
      } else if (timeout_ms > 0) {
        const int64_t left_ms = RemainingNs(deadline) / 1000000;
        if (left_ms <= 0) return Status::kTimeout;
        slice = static_cast<int>(std::min<int64_t>(slice, left_ms));
      }
      const Status s = d.ring.next(p, slice);
      if (s == Status::kOk) break;
      if (s == Status::kTimeout || (s == Status::kAgain && timeout_ms != 0)) continue;
      // PKT-READ-02: a seqlock that stays odd is CORRUPT, or PEER_CLOSED if the writer is dead.
      if (s == Status::kCorrupt && d.PeerGone() != Status::kOk) return d.PeerGone();
      return s;
    }
    d.pending = {p.seq, p.pts, p.flags, p.params_generation, static_cast<uint32_t>(p.data.size())};
    d.pending_data.assign(p.data.begin(), p.data.end());
    d.packet_pending = true;
  }
  *out = d.pending;
  if (buf_size < d.pending.size || (buf == nullptr && d.pending.size > 0)) {
    return Status::kInvalidArgument;  // kept: the next call with a larger buffer gets it
  }
  if (d.pending.size > 0) std::memcpy(buf, d.pending_data.data(), d.pending.size);
  d.packet_pending = false;
  return Status::kOk;
}

Status Subscriber::GetCodecParams(void* buf, uint32_t buf_size, uint32_t* codec, uint32_t* size,
                                  uint32_t* generation) {
  Impl& d = *impl_;
  if (!d.has_ring) return Status::kNoPacketRing;
  ring::CodecParamsSnapshot snap;
  const Status s = d.ring.codec_params(snap);
  // PKT-PARAMS-02: after the bounded spin, PEER_CLOSED if the socket shows the publisher dead.
  if (s == Status::kCorrupt && d.PeerGone() != Status::kOk) return d.PeerGone();
  // No parameters, and none will come once the session is over (the publisher died or left,
  // or evicted us): say so, as every blocking call does (RES-CRASH-01), or a decoder polling
  // for its SPS/PPS waits for a dead publisher forever.
  if (s == Status::kNoCodecParams) {
    if (const Status c = d.closed_status(); c != Status::kOk) return c;
  }
  if (s != Status::kOk) return s;
  *codec = snap.codec;
  *size = static_cast<uint32_t>(snap.data.size());
  *generation = snap.generation;
  if (buf_size < snap.data.size() || (buf == nullptr && !snap.data.empty())) {
    return Status::kInvalidArgument;
  }
  if (!snap.data.empty()) std::memcpy(buf, snap.data.data(), snap.data.size());
  return Status::kOk;
}

}  // namespace cuframes
