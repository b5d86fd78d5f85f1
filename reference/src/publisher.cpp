// publisher.cpp: segment ownership, the service thread and the producer side of the frame ring.
#include "publisher.h"

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
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "fault.h"
#include "fd_passing.h"
#include "handshake.h"
#include "layout.h"
#include "lifecycle.h"
#include "mem_order.h"
#include "memory_kind.h"
#include "packet_ring.h"
#include "segment.h"
#include "spin.h"
#include "tlv.h"

namespace cuframes {
namespace {

using Clock = std::chrono::steady_clock;
using handshake::Action;
using handshake::Event;
using handshake::PubState;

constexpr auto kHandshakeTimeout = std::chrono::milliseconds(layout::kHandshakeTimeoutMs);
constexpr int64_t kWaitSliceNs = 20'000'000;  // bounded futex waits
// A running ack event (CUDA kinds) is polled from the host: spinning (yielding the CPU) for up
// to kDeviceSpinNs in all per Acquire, which covers a GPU handoff between two processes (about
// 300 us without MPS, BRIEF section 4), then once every kDevicePollNs, so a device read that runs
// long costs the publisher little CPU. Each spin or sleep is followed by a scan of every
// subscriber, which re-checks the ACK deadline.
constexpr int64_t kDeviceSpinNs = 5'000'000;
constexpr int64_t kDevicePollNs = 100'000;
constexpr int64_t kDeviceSpinSliceNs = 1'000'000;

// Publisher-private view of a subscriber slot. The shared copy is written for subscribers, but
// never read back for decisions: a hostile subscriber can scribble on it.
struct SubMirror {
  uint32_t state = layout::kSubFree;
  uint32_t generation = 0;
  uint64_t start_seq = 0;
  uint32_t pid = 0;
  bool wake_forward = false;  // HELLO_REQ set WAKE_FORWARD and version >= 3 was negotiated
};

struct Conn {
  int fd = -1;
  PubState state = PubState::kAwaitHello;
  tlv::Reassembler rx;
  Clock::time_point accepted_at;
  int slot = -1;
  uint32_t generation = 0;
  pid_t pid = 0;
  uid_t uid = 0;
  uint16_t proto = 0;
  bool want_packets = false;
  bool closed = false;
};

struct EvictRequest {
  uint32_t index;
  uint32_t generation;
  Status reason;
};

Status RingOpen(const std::string& path, uint32_t mode, uint64_t size, int* fd_out) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return errno == EACCES || errno == EPERM ? Status::kPermission : Status::kSystem;
  if (::fchmod(fd, mode) != 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    ::close(fd);
    return Status::kSystem;
  }
  *fd_out = fd;
  return Status::kOk;
}

}  // namespace

uint64_t DeriveSlotBytes(uint32_t width, uint32_t height, uint32_t pixel_format, uint32_t pitch) {
  uint32_t bpp = 0;
  switch (pixel_format) {
    case 1:
      bpp = 1;
      break;  // NV12
    case 2:
      bpp = 4;
      break;  // RGBA8
    case 3:
      bpp = 1;
      break;  // GRAY8
    case 4:
      bpp = 2;
      break;  // P010
    default:
      return 0;
  }
  if (width == 0 || height == 0) return 0;
  const uint64_t p = pitch != 0 ? pitch : uint64_t{width} * bpp;
  const uint64_t plane = p * height;
  return pixel_format == 1 || pixel_format == 4 ? plane + plane / 2 : plane;
}

struct Publisher::Impl {
  PublisherConfig cfg;
  PubEventFn on_event;
  int lock_fd = -1;
  Mapping seg;
  SegmentInfo info{};
  std::unique_ptr<PublisherMemory> memory;
  // packet ring
  Mapping ring_map;
  ring::RingWriter ring;
  bool has_ring = false;
  bool ring_created = false;
  bool ring_ready = false;
  // socket
  std::string socket_path;
  int listen_fd = -1;
  int wake_fd = -1;
  bool socket_bound = false;
  std::thread service;
  std::atomic<bool> stop{false};
  uid_t uid = ::geteuid();

  // mu guards mirrors, write_seq, evictions, active; it is "the lock that serializes commits".
  mutable std::mutex mu;
  std::condition_variable active_cv;
  std::vector<SubMirror> mirrors;
  std::vector<EvictRequest> evictions;
  uint64_t write_seq = 0;
  uint32_t active = 0;
  // SHM-WAKE-02: held slots whose subscriber does not forward wake-ups, and whether one such
  // slot was freed since the last commit (its subscriber may still sleep on frame_futex).
  uint32_t non_forwarders = 0;
  bool wake_all_once = false;
  // Bumped (under mu) whenever a subscriber becomes ACTIVE or stops being ACTIVE: acquire rebuilds
  // its list of members only then, instead of taking mu and walking every mirror per frame.
  std::atomic<uint64_t> members_epoch{1};

  // producer state (producer thread only)
  struct LastAck {
    uint32_t generation = 0;
    uint64_t ack = 0;
    uint64_t device_done = 0;  // CUDA kinds: the m for which its ack event was seen complete
  };
  std::vector<LastAck> last_ack;  // per subscriber slot: the highest ack_seq seen
  // The ACTIVE subscribers as of members_epoch == members_seen (rebuilt under mu when the epoch
  // moved), and acquire's snapshot of those that must ACK the slot's previous frame, with the
  // ack_seq each scan loaded for them. Members with room for max_subscribers so that acquire never
  // allocates (with 64 subscribers, growing a fresh vector cost 7 allocations per frame).
  struct Member {
    uint32_t index;
    uint32_t generation;
    uint64_t start_seq;
  };
  std::vector<Member> members;
  uint64_t members_seen = 0;
  struct Blocker {
    uint32_t index;
    uint32_t generation;
    bool evicted;
    uint64_t ack;  // this scan's load of its ack_seq
  };
  std::vector<Blocker> must_ack;
  bool acquired = false;
  uint64_t acquired_seq = 0;
  spin::Adaptive ack_spin;   // Acquire's spin before it parks on ack_futex
  uint64_t waiting_for = 0;  // m whose ACKs the eviction clock runs for
  Clock::time_point waiting_since;

  // service thread only
  std::vector<std::unique_ptr<Conn>> conns;

  ~Impl() { Shutdown(); }

  // Waking many sleepers is the kernel's work per sleeper (~1 us each), inside the FUTEX_WAKE
  // call. With more than kInlineWakeMax frame waiters, Commit hands that call to the waker
  // thread and pays at most one wake-up of that thread: the publishing thread's cost no longer
  // grows with the number of sleeping subscribers. The waker is still the writer waking every
  // waiter (SHM-ORDER-02), a few microseconds later; one that finds several commits pending
  // wakes once for all of them. When every subscriber forwards wake-ups (SHM-WAKE-02), Commit
  // wakes two waiters itself and each woken subscriber wakes two more: the kernel's work per
  // sleeper is spread over the subscribers, and the publisher's cost no longer grows with them.
  static constexpr uint32_t kInlineWakeMax = 1;
  std::thread waker;
  std::atomic<uint32_t> waker_requests{0};
  std::atomic<bool> waker_stop{false};
  void WakeFrameWaiters(uint32_t waiters, bool all) {
    auto* h = seg.header();
    if (!all) {
      mem::futex_wake_bitset(&h->frame_futex, tlv::kWakeForwardCount, FUTEX_BITSET_MATCH_ANY);
      return;
    }
    if (waiters <= kInlineWakeMax) {
      mem::futex_wake_all(&h->frame_futex);
      return;
    }
    waker_requests.fetch_add(1, std::memory_order_release);
    waker_requests.notify_one();
  }
  void WakerLoop() {
    uint32_t seen = 0;
    while (!waker_stop.load(std::memory_order_acquire)) {
      waker_requests.wait(seen, std::memory_order_acquire);
      const uint32_t now = waker_requests.load(std::memory_order_acquire);
      if (now == seen) continue;
      seen = now;
      mem::futex_wake_all(&seg.header()->frame_futex);
    }
  }
  void StopWaker() {
    if (!waker.joinable()) return;
    waker_stop.store(true, std::memory_order_release);
    waker_requests.fetch_add(1, std::memory_order_release);
    waker_requests.notify_one();
    waker.join();
  }

  Status Init();
  void Shutdown();
  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof(one));
  }
  void WakeAckWaiter() {
    mem::fetch_add<uint32_t>(&seg.header()->ack_futex, 1);
    mem::futex_wake_all(&seg.header()->ack_futex);
  }
  void Emit(const PubEventInfo& e) {
    if (on_event) on_event(e);
  }

  // service thread
  void ServiceLoop();
  void Accept();
  void ReapHungUp();
  void ReadConn(Conn& c);
  void HandleMessage(Conn& c, const tlv::Message& m);
  void ApplyStep(Conn& c, const handshake::PubStep& step, const tlv::Message* m);
  bool Send(Conn& c, const tlv::Message& m, std::span<const int> fds = {});
  void CloseConn(Conn& c, Status reason);
  Status ProcessHello(Conn& c, const tlv::HelloReq& req);
  Status ProcessAttach(Conn& c, const tlv::AttachReq& req);
  void ProcessEvictions();
  void CheckTimeouts(Clock::time_point now);

  // producer
  Status Evict(uint32_t index, uint32_t generation, Status reason);
};

Status Publisher::Impl::Init() {
  const Status ks = AcquireKey(cfg.key, cfg.file_mode, &lock_fd);
  if (ks != Status::kOk) return ks;
  CUFRAMES_FAULT_POINT("pub.init.after_lock");
  SegmentParams p{};
  p.proto_version = cfg.max_proto_version;
  p.memory_kind = cfg.memory_kind;
  p.slot_count = cfg.slot_count;
  p.max_subscribers = cfg.max_subscribers;
  p.flags = has_ring ? layout::kSegmentFlagPacketRing : 0;
  p.width = cfg.width;
  p.height = cfg.height;
  p.pixel_format = cfg.pixel_format;
  p.pitch = cfg.pitch;
  p.slot_bytes = cfg.slot_bytes;
  Status s = CreateSegment(lock_fd, p, &seg, &info);
  if (s != Status::kOk) return s;
  mirrors.assign(cfg.max_subscribers, SubMirror{});
  last_ack.assign(cfg.max_subscribers, LastAck{});
  must_ack.reserve(cfg.max_subscribers);
  members.reserve(cfg.max_subscribers);
  memory = cfg.memory_kind == layout::kKindHost
               ? MakeHostPublisherMemory()
               : MakeCudaPublisherMemory(cfg.cuda_device, cfg.memory_kind);
  if (!memory) return Status::kUnsupported;
  s = memory->Init(seg, info);
  if (s != Status::kOk) return s;
  if (has_ring) {
    const uint64_t size = ring::RingSegmentSize(cfg.packet_capacity);
    int rfd = -1;
    s = RingOpen(RingPath(cfg.key), cfg.file_mode, size, &rfd);
    if (s != Status::kOk) return s;
    ring_created = true;
    void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, rfd, 0);
    ::close(rfd);
    if (addr == MAP_FAILED) return Status::kNoMemory;
    ring_map = Mapping(addr, size);
    s = ring.init(addr, size, cfg.packet_capacity, cfg.max_packet_bytes, cfg.codec);
    if (s != Status::kOk) return s;
    ring_ready = true;
    ring.set_waiter_count(&seg.header()->packet_waiters);  // wake only when readers wait
  }
  CUFRAMES_FAULT_POINT("pub.init.before_ready");
  // READY is the last store to shared memory (release): everything above is visible with it.
  mem::store_release<uint32_t>(&seg.header()->state, layout::kSegReady);

  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd < 0) return Status::kSystem;
  socket_path = SocketPath(cfg.key);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  s = UnlinkIfExists(socket_path);  // a stale socket of a dead publisher of this key
  if (s != Status::kOk) return s;
  listen_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) return Status::kSystem;
  if (::bind(listen_fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return errno == EACCES || errno == EPERM ? Status::kPermission : Status::kSystem;
  }
  socket_bound = true;
  CUFRAMES_FAULT_POINT("pub.init.after_bind");
  // Nobody can connect before listen(), so the mode is exact before the first connection.
  if (::chmod(socket_path.c_str(), cfg.file_mode) != 0) return Status::kSystem;
  if (::listen(listen_fd, 64) != 0) return Status::kSystem;
  service = std::thread([this] { ServiceLoop(); });
  // Started here, not at the first commit that needs it: creating a thread inside Commit cost
  // that frame tens of microseconds, and its stack and arena appeared at an unpredictable
  // moment of the publisher's life (a leak check that compares mappings saw them as growth).
  waker = std::thread([this] { WakerLoop(); });
  return Status::kOk;
}

void Publisher::Impl::Shutdown() {
  StopWaker();  // before the segment goes: it wakes on frame_futex
  if (service.joinable()) {
    stop.store(true);
    Wake();
    service.join();  // the service thread unlinks the socket and closes every connection
  }
  if (socket_bound) {
    UnlinkIfExists(socket_path);
    socket_bound = false;
  }
  if (listen_fd >= 0) ::close(listen_fd);
  listen_fd = -1;
  for (auto& c : conns) {
    if (!c->closed) CloseConn(*c, Status::kOk);
  }
  conns.clear();
  if (wake_fd >= 0) ::close(wake_fd);
  wake_fd = -1;
  if (seg.valid()) {
    auto* h = seg.header();
    mem::store_release<uint32_t>(&h->state, layout::kSegClosed);
    mem::fetch_add<uint32_t>(&h->frame_futex, 1);
    mem::futex_wake_all(&h->frame_futex);
    CUFRAMES_FAULT_POINT("pub.close.after_state_closed");
  }
  if (ring_ready) ring.close();
  ring_ready = false;
  ring_map.Reset();
  if (ring_created) UnlinkIfExists(RingPath(cfg.key));
  ring_created = false;
  memory.reset();
  if (lock_fd >= 0) {
    CUFRAMES_FAULT_POINT("pub.close.after_ring_unlink");
    UnlinkIfExists(SegmentPath(cfg.key));
    CUFRAMES_FAULT_POINT("pub.close.after_segment_unlink");
    seg.Reset();
    ::close(lock_fd);  // the lock goes last
    lock_fd = -1;
  }
}

// ---------------------------------------------------------------- service thread

void Publisher::Impl::ServiceLoop() {
  std::vector<pollfd> fds;
  while (!stop.load()) {
    fds.clear();
    fds.push_back({wake_fd, POLLIN, 0});
    fds.push_back({listen_fd, POLLIN, 0});
    for (auto& c : conns)
      fds.push_back({c->fd, POLLIN, 0});
    const int n = ::poll(fds.data(), fds.size(), 50);
    if (n < 0 && errno != EINTR) break;
    if (fds[0].revents != 0) {
      uint64_t v = 0;
      [[maybe_unused]] const ssize_t r = ::read(wake_fd, &v, sizeof(v));
    }
    if (stop.load()) break;
    ProcessEvictions();
    for (size_t i = 0; i < conns.size(); ++i) {
      const short re = fds[i + 2].revents;
      if (re != 0 && !conns[i]->closed) ReadConn(*conns[i]);
    }
    if (fds[1].revents & POLLIN) Accept();
    CheckTimeouts(Clock::now());
    std::erase_if(conns, [](const std::unique_ptr<Conn>& c) { return c->closed; });
  }
  // Shutdown: stop accepting, then DETACH active subscribers and close everyone.
  UnlinkIfExists(socket_path);
  CUFRAMES_FAULT_POINT("pub.close.after_socket_unlink");
  socket_bound = false;
  ::close(listen_fd);
  listen_fd = -1;
  // Evictions the producer decided since the last pass go out first, as ERROR(EVICTED/PROTOCOL)
  // (ACK-EVICT-01): a publisher that finishes right after evicting its last subscriber must not
  // turn that eviction into a DETACH(OK).
  ProcessEvictions();
  for (auto& c : conns) {
    if (!c->closed) ApplyStep(*c, handshake::PublisherStep(c->state, Event::kShutdown), nullptr);
  }
  conns.clear();
  CUFRAMES_FAULT_POINT("pub.close.after_detach");
}

void Publisher::Impl::Accept() {
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    auto c = std::make_unique<Conn>();
    c->fd = fd;
    c->accepted_at = Clock::now();
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      c->pid = cred.pid;
      c->uid = cred.uid;
    } else {
      c->uid = static_cast<uid_t>(-1);
    }
    // SM-PUB-04: at most max_subscribers connections may be in the handshake at once.
    auto in_handshake = [](const std::unique_ptr<Conn>& x) {
      return !x->closed && x->state != PubState::kActive;
    };
    auto pending = std::count_if(conns.begin(), conns.end(), in_handshake);
    if (pending >= static_cast<std::ptrdiff_t>(cfg.max_subscribers)) {
      ReapHungUp();  // a peer that died right after connecting holds no place
      pending = std::count_if(conns.begin(), conns.end(), in_handshake);
    }
    if (pending >= static_cast<std::ptrdiff_t>(cfg.max_subscribers)) {
      Send(*c, tlv::ErrorMsg{ToWire(Status::kFull), "FULL: too many connections in handshake"});
      ::close(fd);
      continue;
    }
    conns.push_back(std::move(c));
  }
}

// Handles, now, the connections in the handshake whose peer has hung up (it died, or closed its
// side, possibly after sending HELLO_REQ): reading what is left ends them, so that they do not
// count against SM-PUB-04's limit until the next poll() would have noticed.
void Publisher::Impl::ReapHungUp() {
  for (auto& c : conns) {
    for (int i = 0; i < 16 && !c->closed && c->state != PubState::kActive; ++i) {
      pollfd p{c->fd, POLLRDHUP, 0};
      if (::poll(&p, 1, 0) != 1 || (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0) break;
      ReadConn(*c);
    }
  }
}

void Publisher::Impl::ReadConn(Conn& c) {
  uint8_t buf[tlv::kHeaderSize + tlv::kMaxPayload];
  const ssize_t n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {  // EOF or error: the subscriber is gone
    ApplyStep(c, handshake::PublisherStep(c.state, Event::kEof), nullptr);
    return;
  }
  c.rx.Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
  for (;;) {
    tlv::Message m;
    const Status s = c.rx.Next(&m);
    if (s == Status::kAgain) break;
    if (s != Status::kOk) {
      auto step = handshake::PublisherStep(c.state, Event::kMalformed);
      step.error = s;
      if (c.rx.FailedOnError()) {
        // A framing error in an ERROR is never answered (TLV-ERR-06): close, report PROTOCOL
        // (TLV-ERR-08).
        step.action = Action::kClose;
        step.error = Status::kProtocol;
      }
      ApplyStep(c, step, nullptr);
      return;
    }
    HandleMessage(c, m);
    if (c.closed) return;
  }
}

void Publisher::Impl::HandleMessage(Conn& c, const tlv::Message& m) {
  ApplyStep(c, handshake::PublisherStep(c.state, handshake::EventOf(m)), &m);
}

void Publisher::Impl::ApplyStep(Conn& c, const handshake::PubStep& step, const tlv::Message* m) {
  switch (step.action) {
    case Action::kNone:
      c.state = step.next;
      return;
    case Action::kSendPong:
      if (!Send(c, tlv::Pong{std::get<tlv::Ping>(*m).nonce})) CloseConn(c, Status::kPeerClosed);
      return;
    case Action::kProcessHello: {
      const Status v = ProcessHello(c, std::get<tlv::HelloReq>(*m));
      if (c.closed) return;
      auto after = handshake::AfterHello(v);
      if (after.action == Action::kSendErrorClose) {
        Send(c, tlv::ErrorMsg{ToWire(v), "HELLO_REQ magic is not 0x52465543"});
      }
      if (after.next == PubState::kClosed) {
        CloseConn(c, v);
        return;
      }
      c.state = after.next;
      return;
    }
    case Action::kProcessAttach: {
      const Status v = ProcessAttach(c, std::get<tlv::AttachReq>(*m));
      if (c.closed) return;
      auto after = handshake::AfterAttach(v);
      if (after.next == PubState::kClosed) {
        Send(c, tlv::ErrorMsg{ToWire(v), std::string("ATTACH_REQ rejected: ") + StatusName(v)});
        CloseConn(c, v);
        return;
      }
      c.state = after.next;
      return;
    }
    case Action::kSendErrorClose: {
      std::string text = StatusName(step.error);
      if (m != nullptr) {
        text += std::string(": ") + tlv::TypeName(static_cast<uint16_t>(tlv::TypeOf(*m))) +
                " not allowed in this state";
      }
      Send(c, tlv::ErrorMsg{ToWire(step.error), text});
      CloseConn(c, step.error);
      return;
    }
    case Action::kSendDetachClose:
      Send(c, tlv::Detach{0});
      CloseConn(c, step.error);
      return;
    case Action::kClose:
    default:
      CloseConn(c, step.error);
      return;
  }
}

bool Publisher::Impl::Send(Conn& c, const tlv::Message& m, std::span<const int> fds) {
  const std::vector<uint8_t> bytes = tlv::Encode(m);
  // A peer that does not read its socket is treated as gone. `fds` (CUDA_VMM_FD buffers,
  // KIND-04) ride with the message's first byte.
  return fdpass::SendWithFds(c.fd, bytes, fds, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Publisher::Impl::CloseConn(Conn& c, Status reason) {
  if (c.closed) return;
  c.closed = true;
  c.state = PubState::kClosed;
  ::close(c.fd);
  c.fd = -1;
  if (c.slot < 0) return;
  const auto index = static_cast<uint32_t>(c.slot);
  c.slot = -1;
  bool was_active = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    SubMirror& mir = mirrors[index];
    was_active = mir.state == layout::kSubActive;
    if (was_active) {
      --active;
      members_epoch.fetch_add(1, std::memory_order_release);
    }
    if (!mir.wake_forward) {
      --non_forwarders;
      wake_all_once = true;
    }
    mir.state = layout::kSubFree;
    mem::store_release<uint32_t>(&seg.sub(info, index)->state, layout::kSubFree);
  }
  memory->CloseAckEvent(index);
  WakeAckWaiter();  // a producer blocked on this subscriber's ACK re-evaluates
  if (was_active) {
    Emit({PubEventKind::kDetached, index, static_cast<uint32_t>(c.pid), 0, reason});
  }
}

Status Publisher::Impl::ProcessHello(Conn& c, const tlv::HelloReq& req) {
  CUFRAMES_FAULT_POINT("pub.hs.after_hello_req");
  int free_slot = -1;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (uint32_t i = 0; i < mirrors.size(); ++i) {
      if (mirrors[i].state == layout::kSubFree) {
        free_slot = static_cast<int>(i);
        break;
      }
    }
  }
  handshake::HelloPolicy policy{cfg.max_proto_version, cfg.memory_kind,
                                cfg.allow_other_uids || c.uid == uid, free_slot >= 0};
  const handshake::HelloVerdict v = handshake::EvaluateHello(req, policy);
  tlv::HelloResp resp{};
  resp.status = ToWire(v.status);
  if (v.status == Status::kProtocol) return v.status;  // bad magic: ERROR, not HELLO_RESP
  if (v.status != Status::kOk) {
    Send(c, resp);  // MSG-HRESP-02: every field but status is zero
    return v.status;
  }
  resp.proto_version = v.negotiated;
  resp.memory_kind = cfg.memory_kind;
  resp.lib_version = LibVersion();
  const auto index = static_cast<uint32_t>(free_slot);
  layout::SubscriberSlot* ss = seg.sub(info, index);
  uint32_t generation = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    SubMirror& mir = mirrors[index];
    generation = ++mir.generation;
    mir.state = layout::kSubAttaching;
    mir.start_seq = 0;
    mir.pid = static_cast<uint32_t>(c.pid);
    mir.wake_forward = v.negotiated >= 3 && (req.caps & tlv::kHelloReqCapWakeForward) != 0;
    if (!mir.wake_forward) ++non_forwarders;
    mem::store_relaxed<uint32_t>(&ss->generation, generation);
    mem::store_relaxed<uint64_t>(&ss->ack_seq, 0);
    mem::store_relaxed<uint64_t>(&ss->start_seq, 0);
    mem::store_relaxed<uint32_t>(&ss->pid, static_cast<uint32_t>(c.pid));
    mem::store_relaxed<uint32_t>(&ss->flags, 0);
    static constexpr uint8_t kZero[layout::kIpcHandleSize] = {};
    mem::copy_to_shared(ss->reserved0, kZero, sizeof(ss->reserved0));
    mem::copy_to_shared(ss->ack_event, kZero, sizeof(ss->ack_event));
    mem::store_release<uint32_t>(&ss->state, layout::kSubAttaching);
  }
  c.slot = free_slot;
  c.generation = generation;
  c.proto = v.negotiated;
  c.want_packets = (req.caps & tlv::kHelloReqCapWantPackets) != 0;
  resp.subscriber_index = index;
  resp.generation = generation;
  if (v.negotiated >= 2 && has_ring && c.want_packets) {
    const ring::Position pos = ring.position();
    resp.caps = tlv::kHelloRespCapPacketRing;
    resp.initial_packet_seq = pos.seq;
    resp.initial_packet_pos = pos.pos;
  }
  // CUDA_VMM_FD: the slot buffers' descriptors travel with HELLO_RESP(OK) (KIND-04).
  if (!Send(c, resp, memory->ExportedFds())) {
    CloseConn(c, Status::kPeerClosed);
    return Status::kPeerClosed;
  }
  CUFRAMES_FAULT_POINT("pub.hs.after_hello_resp");
  return Status::kOk;
}

Status Publisher::Impl::ProcessAttach(Conn& c, const tlv::AttachReq& req) {
  CUFRAMES_FAULT_POINT("pub.hs.after_attach_req");
  if (c.slot < 0 || req.subscriber_index != static_cast<uint32_t>(c.slot) ||
      req.generation != c.generation) {
    return Status::kProtocol;
  }
  const auto index = static_cast<uint32_t>(c.slot);
  layout::SubscriberSlot* ss = seg.sub(info, index);
  if (cfg.memory_kind != layout::kKindHost) {
    // MSG-ATTACH-03: without an ack event there is no safe reuse: ATTACH_RESP{PROTOCOL}.
    Status s = Status::kOk;
    if ((req.flags & tlv::kAttachReqFlagAckEventWritten) == 0 ||
        (mem::load_acquire(&ss->flags) & layout::kSubscriberFlagAckEventPresent) == 0) {
      s = Status::kProtocol;
    } else {
      uint8_t handle[layout::kIpcHandleSize];
      mem::copy_from_shared(handle, ss->ack_event, sizeof(handle));
      s = memory->OpenAckEvent(index, handle);
    }
    if (s != Status::kOk) {
      Send(c, tlv::AttachResp{ToWire(s), 0});  // MSG-ARESP-02: start_seq 0, free, close
      CloseConn(c, s);
      return s;
    }
  }
  uint64_t start_seq = 0;
  {
    std::lock_guard<std::mutex> lock(mu);  // serialized with Commit()
    start_seq = write_seq + 1;
    SubMirror& mir = mirrors[index];
    mir.start_seq = start_seq;
    mir.state = layout::kSubActive;
    ++active;
    members_epoch.fetch_add(1, std::memory_order_release);
    mem::store_relaxed<uint64_t>(&ss->start_seq, start_seq);
    mem::store_release<uint32_t>(&ss->state, layout::kSubActive);
  }
  active_cv.notify_all();
  if (!Send(c, tlv::AttachResp{0, start_seq})) {
    CloseConn(c, Status::kPeerClosed);
    return Status::kPeerClosed;
  }
  CUFRAMES_FAULT_POINT("pub.hs.after_attach_resp");
  Emit({PubEventKind::kAttached, index, static_cast<uint32_t>(c.pid), start_seq, Status::kOk});
  return Status::kOk;
}

void Publisher::Impl::ProcessEvictions() {
  std::vector<EvictRequest> todo;
  {
    std::lock_guard<std::mutex> lock(mu);
    todo.swap(evictions);
  }
  for (const EvictRequest& r : todo) {
    for (auto& c : conns) {
      if (c->closed || c->slot != static_cast<int>(r.index) || c->generation != r.generation) {
        continue;
      }
      const std::string text = r.reason == Status::kEvicted
                                   ? "EVICTED: no ACK within ack_timeout_ms"
                                   : "PROTOCOL: ack_seq beyond write_seq";
      Send(*c, tlv::ErrorMsg{ToWire(r.reason), text});
      Emit({PubEventKind::kEvicted, r.index, static_cast<uint32_t>(c->pid), 0, r.reason});
      CloseConn(*c, r.reason);
    }
  }
}

void Publisher::Impl::CheckTimeouts(Clock::time_point now) {
  for (auto& c : conns) {
    if (c->closed) continue;
    // SM-PUB-02: not ACTIVE within HANDSHAKE_TIMEOUT_MS of accept, including a peer stalled in
    // the middle of a message (TLV-ERR-04); the deadline is disarmed in ACTIVE.
    if (c->state != PubState::kActive && now - c->accepted_at >= kHandshakeTimeout) {
      ApplyStep(*c, handshake::PublisherStep(c->state, Event::kTimeout), nullptr);
    }
  }
}

// ---------------------------------------------------------------- producer

Status Publisher::Impl::Evict(uint32_t index, uint32_t generation, Status reason) {
  {
    std::lock_guard<std::mutex> lock(mu);
    SubMirror& mir = mirrors[index];
    if (mir.state != layout::kSubActive || mir.generation != generation) return Status::kOk;
    mir.state = layout::kSubEvicted;
    --active;
    members_epoch.fetch_add(1, std::memory_order_release);
    mem::store_release<uint32_t>(&seg.sub(info, index)->state, layout::kSubEvicted);
    evictions.push_back({index, generation, reason});
  }
  Wake();
  return Status::kOk;
}

Publisher::Publisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Publisher::~Publisher() = default;

Status Publisher::Create(const PublisherConfig& config, PubEventFn on_event,
                         std::unique_ptr<Publisher>* out) {
  PublisherConfig cfg = config;
  if (!ValidKey(cfg.key)) return Status::kInvalidArgument;
  if (cfg.slot_count < layout::kMinSlotCount || cfg.slot_count > layout::kMaxSlotCount ||
      cfg.max_subscribers < 1 || cfg.max_subscribers > layout::kMaxSubscribers ||
      cfg.max_proto_version < 1 || (cfg.file_mode & ~0777u) != 0 || cfg.ack_timeout_ms == 0) {
    return Status::kInvalidArgument;
  }
  cfg.max_proto_version = std::min<uint16_t>(cfg.max_proto_version, kMaxProtoVersion);
  if (cfg.memory_kind == layout::kKindCudaIpc) {
    if (!CudaKindBuilt()) return Status::kUnsupported;
  } else if (cfg.memory_kind == layout::kKindCudaVmmFd) {
    if (!CudaKindBuilt() || !CudaVmmUsable(cfg.cuda_device)) return Status::kUnsupported;
    // KIND-04: every descriptor goes in one SCM_RIGHTS message.
    if (cfg.slot_count > fdpass::kMaxFds) return Status::kInvalidArgument;
  } else if (cfg.memory_kind != layout::kKindHost) {
    return Status::kInvalidArgument;
  }
  if (cfg.slot_bytes == 0) {
    cfg.slot_bytes = DeriveSlotBytes(cfg.width, cfg.height, cfg.pixel_format, cfg.pitch);
    if (cfg.slot_bytes == 0) return Status::kInvalidArgument;
  }
  const bool has_ring = cfg.packet_capacity != 0;
  if (has_ring && (cfg.max_proto_version < 2 ||
                   !ring::ValidGeometry(cfg.packet_capacity, cfg.max_packet_bytes))) {
    return Status::kInvalidArgument;
  }
  if (SocketPath(cfg.key).size() >= sizeof(sockaddr_un::sun_path)) {
    return Status::kInvalidArgument;
  }
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->on_event = std::move(on_event);
  impl->has_ring = has_ring;
  const Status s = impl->Init();
  if (s != Status::kOk) return s;  // ~Impl removes whatever was created
  out->reset(new Publisher(std::move(impl)));
  return Status::kOk;
}

Status Publisher::Acquire(int32_t timeout_ms, AcquiredSlot* out) {
  Impl& d = *impl_;
  if (d.acquired) return Status::kState;
  const auto start = Clock::now();
  const uint64_t n = d.write_seq + 1;  // only the producer thread changes write_seq
  const uint32_t slot = static_cast<uint32_t>((n - 1) % d.info.slot_count);
  std::vector<Impl::Blocker>& must_ack = d.must_ack;  // only the producer thread acquires
  const bool device_acks = d.cfg.memory_kind != layout::kKindHost;
  if (n > d.info.slot_count) {
    const uint64_t m = n - d.info.slot_count;  // the slot's previous frame
    if (d.waiting_for != m) {
      d.waiting_for = m;
      d.waiting_since = start;
    }
    auto* h = d.seg.header();
    bool parked = false;  // ack_waiting was set
    bool spun = false;
    bool device_wait = false;  // the first blocker has ACKed m on the host; its ack event runs
    int64_t device_spin_left = kDeviceSpinNs;
    for (;;) {
      // Snapshot the subscribers that must have ACKed m: ACTIVE with start_seq <= m. The list
      // of ACTIVE ones is rebuilt only when the epoch moved; a change made after this load is
      // one made after the snapshot, as it would be after an unlock.
      if (d.members_epoch.load(std::memory_order_acquire) != d.members_seen) {
        std::lock_guard<std::mutex> lock(d.mu);
        d.members.clear();
        for (uint32_t i = 0; i < d.mirrors.size(); ++i) {
          const SubMirror& mir = d.mirrors[i];
          if (mir.state == layout::kSubActive) {
            d.members.push_back({i, mir.generation, mir.start_seq});
          }
        }
        d.members_seen = d.members_epoch.load(std::memory_order_relaxed);
      }
      must_ack.clear();
      for (const Impl::Member& member : d.members) {
        if (member.start_seq <= m) must_ack.push_back({member.index, member.generation, false, 0});
      }
      const auto now = Clock::now();
      const bool ack_timed_out =
          now - d.waiting_since >= std::chrono::milliseconds(d.cfg.ack_timeout_ms);
      // Returns the first subscriber (slot index) still to ACK m, or -1 when none is. Every
      // scan reads every subscriber's ack_seq, also one already seen at or past m: ACK-EVICT-05
      // (decision G) wants the ACK-EVICT-02 check at each evaluation of the wait, i.e. at its
      // start and after each spin, wake-up or bounded timeout. When nobody blocks, that is one
      // scan per acquire.
      // For CUDA kinds a host-side ACK of m is not enough: the ack event's recording that covers
      // m (made before the ack_seq store we loaded) must have completed too, queried from the
      // host (ACK-CUDA-03); the same deadline evicts a subscriber whose device work overruns it.
      // An event that cannot be queried (its process died mid-recording, say) counts as not
      // complete: that one subscriber is freed when its connection ends or evicted at the
      // deadline, and the publisher and the others go on. Sets device_wait when the first
      // blocker waits for its device only.
      // The loads come first, in a loop of nothing else, so that the reads of lines other cores
      // wrote overlap one another (with the checks in between, fewer of them were in flight).
      auto scan = [&]() -> int64_t {
        int64_t first_blocked = -1;
        device_wait = false;
        for (Impl::Blocker& b : must_ack)
          b.ack = mem::load_acquire(&d.seg.sub(d.info, b.index)->ack_seq);
        for (Impl::Blocker& b : must_ack) {
          if (b.evicted) continue;
          const uint64_t ack = b.ack;
          Impl::LastAck& last = d.last_ack[b.index];
          if (last.generation != b.generation) last = {b.generation, 0};
          if (ack > d.write_seq || ack < last.ack) {  // garbage from a hostile subscriber
            d.Evict(b.index, b.generation, Status::kProtocol);
            b.evicted = true;
            continue;
          }
          last.ack = ack;
          bool on_device = false;
          if (ack >= m) {
            // Once seen complete for m, an event is not queried again: a later recording (for a
            // later frame) is not ours to wait for.
            if (!device_acks || last.device_done == m) continue;
            if (d.memory->AckDone(b.index) == Status::kOk) {
              last.device_done = m;
              continue;
            }
            on_device = true;
          }
          if (ack_timed_out) {
            d.Evict(b.index, b.generation, Status::kEvicted);
            b.evicted = true;
          } else if (first_blocked < 0) {
            first_blocked = b.index;
            device_wait = on_device;
          }
        }
        return first_blocked;
      };
      int64_t blocker = scan();
      if (blocker < 0) break;
      const auto elapsed = now - start;
      if (timeout_ms == 0 || (timeout_ms > 0 && elapsed >= std::chrono::milliseconds(timeout_ms))) {
        if (parked) mem::store_relaxed<uint32_t>(&h->ack_waiting, 0);
        return timeout_ms == 0 ? Status::kAgain : Status::kTimeout;
      }
      int64_t slice = kWaitSliceNs;
      if (timeout_ms > 0) {
        const auto left = std::chrono::milliseconds(timeout_ms) - elapsed;
        slice = std::min<int64_t>(
            slice, std::chrono::duration_cast<std::chrono::nanoseconds>(left).count() + 1);
      }
      if (device_wait) {
        // Nothing wakes a futex when a device finishes: poll the ack event (spin first, then
        // sleep between queries: kDeviceSpinNs above), then scan again.
        if (parked) {
          mem::store_relaxed<uint32_t>(&h->ack_waiting, 0);
          parked = false;
        }
        const auto index = static_cast<uint32_t>(blocker);
        if (device_spin_left > 0) {
          const int64_t budget = std::min({device_spin_left, kDeviceSpinSliceNs, slice});
          spin::Until([&] { return d.memory->AckDone(index) == Status::kOk; }, budget);
          device_spin_left -= budget;
        } else {
          std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(kDevicePollNs, slice)));
        }
        continue;
      }
      if (!spun) {
        // Poll the ACK we wait for before parking (bounded, uncounted: SHM-ORDER-03), then scan
        // again from the top whatever the outcome.
        spun = true;
        const int64_t budget = std::min(d.ack_spin.budget(), slice);
        if (budget > 0) {
          const uint64_t* ack = &d.seg.sub(d.info, static_cast<uint32_t>(blocker))->ack_seq;
          d.ack_spin.record(spin::Until([&] { return mem::load_acquire(ack) >= m; }, budget));
          continue;
        }
      }
      // Park (SHM-ORDER-04 from the publisher's side): flag ourselves, full barrier, load the
      // futex word, re-check, wait bounded. A subscriber that ACKs after our re-check sees the
      // flag and wakes us; one that ACKed before it is seen by the re-check.
      if (!parked) {
        mem::store_relaxed<uint32_t>(&h->ack_waiting, 1);
        parked = true;
      }
      mem::fence_seq_cst();
      const uint32_t futex_value = mem::load_acquire(&h->ack_futex);
      if ((blocker = scan()) < 0) break;
      if (device_wait) continue;  // the host ACK came in: poll its ack event above
      mem::futex_wait(&h->ack_futex, futex_value, slice);
    }
    if (parked) mem::store_relaxed<uint32_t>(&h->ack_waiting, 0);
    // Device-side ordering needs no stream wait: every counted subscriber's ack event was seen
    // complete above, so whatever the caller enqueues after this returns runs after their reads.
  }
  d.acquired = true;
  d.acquired_seq = n;
  out->seq = n;
  out->slot = slot;
  out->data = d.memory->SlotBuffer(slot);
  out->capacity = d.info.slot_bytes;
  out->stream = d.memory->Stream();
  CUFRAMES_FAULT_POINT("pub.frame.after_acquire");
  return Status::kOk;
}

Status Publisher::Commit(const FrameInfo& fi) {
  Impl& d = *impl_;
  if (!d.acquired) return Status::kState;
  if (fi.payload_bytes > d.info.slot_bytes) return Status::kInvalidArgument;
  const uint64_t n = d.acquired_seq;
  const auto slot = static_cast<uint32_t>((n - 1) % d.info.slot_count);
  layout::FrameMeta* meta = &d.seg.desc(slot)->meta;
  auto* h = d.seg.header();
  bool wake_all = true;
  {
    std::lock_guard<std::mutex> lock(d.mu);
    wake_all = d.non_forwarders != 0 || std::exchange(d.wake_all_once, false);
    mem::store_relaxed<int64_t>(&meta->timestamp_ns, fi.timestamp_ns);
    mem::store_relaxed<uint32_t>(&meta->width, fi.width);
    mem::store_relaxed<uint32_t>(&meta->height, fi.height);
    mem::store_relaxed<uint32_t>(&meta->pixel_format, fi.pixel_format);
    mem::store_relaxed<uint32_t>(&meta->pitch, fi.pitch);
    mem::store_relaxed<uint64_t>(&meta->payload_bytes, fi.payload_bytes);
    mem::store_relaxed<uint32_t>(&meta->flags, fi.flags);
    mem::store_relaxed<uint64_t>(&meta->user_data, fi.user_data);
    if (d.memory->RecordReady(slot) != Status::kOk) return Status::kCuda;
    CUFRAMES_FAULT_POINT("pub.frame.after_meta");
    mem::store_release<uint64_t>(&meta->seq, n);
    CUFRAMES_FAULT_POINT("pub.frame.after_seq");
    mem::store_release<uint64_t>(&h->write_seq, n);
    d.write_seq = n;
  }
  d.acquired = false;
  CUFRAMES_FAULT_POINT("pub.frame.after_write_seq");
  // SHM-ORDER-02: increment (seq_cst), then wake only if a subscriber counts itself as waiting.
  // (The locked increment is the one full barrier; a separate fence after it added a second.)
  mem::fetch_add_seq_cst<uint32_t>(&h->frame_futex, 1);
  const uint32_t waiters = mem::load_seq_cst(&h->frame_waiters);
  if (waiters != 0) d.WakeFrameWaiters(waiters, wake_all);
  return Status::kOk;
}

Status Publisher::PublishPacket(const void* data, uint32_t size, uint32_t flags, int64_t pts) {
  if (!impl_->has_ring) return Status::kNoPacketRing;
  return impl_->ring.publish(data, size, flags, pts);
}

Status Publisher::SetCodecParams(uint32_t codec, const void* data, uint32_t size) {
  if (!impl_->has_ring) return Status::kNoPacketRing;
  return impl_->ring.set_codec_params(codec, data, size);
}

uint32_t Publisher::ActiveSubscribers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->active;
}

Status Publisher::WaitSubscribers(uint32_t count, int32_t timeout_ms) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto ready = [&] {
    return impl_->active >= count;
  };
  if (timeout_ms < 0) {
    impl_->active_cv.wait(lock, ready);
    return Status::kOk;
  }
  return impl_->active_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), ready)
             ? Status::kOk
             : Status::kTimeout;
}

uint64_t Publisher::write_seq() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->write_seq;
}

}  // namespace cuframes
