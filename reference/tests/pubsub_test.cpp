// pubsub_test: publisher and subscribers in one process (threads), host kind: the frame ring end
// to end, back-pressure and ACK order, eviction, death detection, packets, and hostile input on
// the socket (each malformed message gets its own code; the publisher keeps serving others).
// Every test checks that no fd leaked and no /dev/shm or socket file is left behind.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "layout.h"
#include "lifecycle.h"
#include "mem_order.h"
#include "publisher.h"
#include "subscriber.h"
#include "tlv.h"

namespace cuframes {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

uint8_t Pattern(uint64_t seq, uint64_t i) {
  return static_cast<uint8_t>(seq * 31 + i * 7);
}

class PubSub : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cuframes-ps-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::setenv("CUFRAMES_SOCKET_DIR", dir_.c_str(), 1);
    static int counter = 0;
    key_ = "ps" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    fds_before_ = CountOpenFds();
  }
  void TearDown() override {
    pub_.reset();
    EXPECT_EQ(CountOpenFds(), fds_before_) << "file descriptors leaked";
    struct stat st {};
    EXPECT_NE(::stat(SegmentPath(key_).c_str(), &st), 0) << "segment left behind";
    EXPECT_NE(::stat(RingPath(key_).c_str(), &st), 0) << "packet ring left behind";
    DIR* d = ::opendir(dir_.c_str());
    int entries = 0;
    while (const dirent* e = ::readdir(d))
      entries += e->d_name[0] != '.';
    ::closedir(d);
    EXPECT_EQ(entries, 0) << "socket file left behind";
    ::rmdir(dir_.c_str());
    ::unsetenv("CUFRAMES_SOCKET_DIR");
  }

  PublisherConfig Config() {
    PublisherConfig c;
    c.key = key_;
    c.slot_bytes = 256;
    c.slot_count = 4;
    c.max_subscribers = 4;
    return c;
  }
  void StartPublisher(PublisherConfig c) {
    ASSERT_EQ(Publisher::Create(c, nullptr, &pub_), Status::kOk);
  }
  void StartPublisher() { StartPublisher(Config()); }
  Status Connect(std::unique_ptr<Subscriber>* out, uint16_t max_proto = 2, bool packets = false) {
    SubscriberConfig c;
    c.key = key_;
    c.max_proto_version = max_proto;
    c.want_packets = packets;
    return Subscriber::Connect(c, out);
  }
  void Publish(uint64_t n) {
    for (uint64_t i = 0; i < n; ++i) {
      AcquiredSlot s{};
      ASSERT_EQ(pub_->Acquire(5000, &s), Status::kOk);
      auto* p = static_cast<uint8_t*>(s.data);
      for (uint64_t b = 0; b < 256; ++b)
        p[b] = Pattern(s.seq, b);
      FrameInfo fi;
      fi.payload_bytes = 256;
      fi.user_data = s.seq;
      ASSERT_EQ(pub_->Commit(fi), Status::kOk);
    }
  }

  std::string dir_;
  std::string key_;
  int fds_before_ = 0;
  std::unique_ptr<Publisher> pub_;
};

TEST_F(PubSub, FramesInOrderToEverySubscriber) {
  StartPublisher();
  constexpr uint64_t kFrames = 500;
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  std::vector<std::unique_ptr<Subscriber>> subs(3);
  for (auto& s : subs)
    ASSERT_EQ(Connect(&s), Status::kOk);
  for (auto& s : subs) {
    readers.emplace_back([&bad, sub = s.get()] {
      for (uint64_t n = 1; n <= kFrames; ++n) {
        FrameView f{};
        if (sub->NextFrame(5000, &f) != Status::kOk || f.seq != n || f.user_data != n ||
            f.payload_bytes != 256) {
          ++bad;
          return;
        }
        const auto* p = static_cast<const uint8_t*>(f.data);
        for (uint64_t b = 0; b < 256; ++b)
          bad += p[b] != Pattern(n, b);
        if (sub->Release(n) != Status::kOk) ++bad;
      }
    });
  }
  Publish(kFrames);
  for (auto& t : readers)
    t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(pub_->ActiveSubscribers(), 3u);
  subs.clear();
  EXPECT_EQ(pub_->WaitSubscribers(0, 1000), Status::kOk);
}

TEST_F(PubSub, NonBlockingCallsAndBackPressure) {
  PublisherConfig c = Config();
  c.slot_count = 2;
  StartPublisher(c);
  std::unique_ptr<Subscriber> sub;
  ASSERT_EQ(Connect(&sub), Status::kOk);
  FrameView f{};
  EXPECT_EQ(sub->NextFrame(0, &f), Status::kAgain);
  EXPECT_EQ(sub->NextFrame(30, &f), Status::kTimeout);
  Publish(2);
  FrameView f1{}, f2{};
  ASSERT_EQ(sub->NextFrame(0, &f1), Status::kOk);
  ASSERT_EQ(sub->NextFrame(0, &f2), Status::kOk);
  AcquiredSlot s{};
  EXPECT_EQ(pub_->Acquire(0, &s), Status::kAgain) << "slot of frame 1 is still held";
  EXPECT_EQ(sub->Release(2), Status::kOk);  // out of order: ACK stays at 0
  EXPECT_EQ(pub_->Acquire(0, &s), Status::kAgain);
  EXPECT_EQ(sub->Release(2), Status::kInvalidArgument) << "double release";
  EXPECT_EQ(sub->Release(7), Status::kInvalidArgument) << "never received";
  EXPECT_EQ(sub->Release(1), Status::kOk);  // prefix 1..2 released: ACK 2
  ASSERT_EQ(pub_->Acquire(0, &s), Status::kOk);
  EXPECT_EQ(s.seq, 3u);
  EXPECT_EQ(pub_->Acquire(0, &s), Status::kState) << "already acquired";
  FrameInfo fi;
  fi.payload_bytes = 257;
  EXPECT_EQ(pub_->Commit(fi), Status::kInvalidArgument);
  fi.payload_bytes = 1;
  EXPECT_EQ(pub_->Commit(fi), Status::kOk);
  EXPECT_EQ(pub_->Commit(fi), Status::kState) << "nothing acquired";
}

TEST_F(PubSub, LateJoinerStartsAfterTheLatestFrame) {
  StartPublisher();
  Publish(3);
  std::unique_ptr<Subscriber> sub;
  ASSERT_EQ(Connect(&sub), Status::kOk);
  EXPECT_EQ(sub->info().start_seq, 4u);
  Publish(1);
  FrameView f{};
  ASSERT_EQ(sub->NextFrame(1000, &f), Status::kOk);
  EXPECT_EQ(f.seq, 4u);
}

TEST_F(PubSub, StalledSubscriberIsEvictedOthersContinue) {
  // The good subscriber must read and release each frame within the ACK timeout, or it is
  // (rightly) evicted too: in sanitizer builds, several times slower, the timeout is scaled by
  // the build's documented factor (CUFRAMES_TIMEOUT_SCALE, CMakeLists.txt).
  constexpr uint32_t kAckTimeoutMs = 150 * CUFRAMES_TIMEOUT_SCALE;
  PublisherConfig c = Config();
  c.slot_count = 2;
  c.ack_timeout_ms = kAckTimeoutMs;
  StartPublisher(c);
  std::unique_ptr<Subscriber> stalled, good;
  ASSERT_EQ(Connect(&stalled), Status::kOk);
  ASSERT_EQ(Connect(&good), Status::kOk);
  std::thread reader([&] {
    for (uint64_t n = 1; n <= 6; ++n) {
      FrameView f{};
      ASSERT_EQ(good->NextFrame(5000, &f), Status::kOk);
      ASSERT_EQ(good->Release(n), Status::kOk);
    }
  });
  FrameView f{};
  Publish(1);
  ASSERT_EQ(stalled->NextFrame(1000, &f), Status::kOk);  // holds frame 1 forever
  const auto t0 = Clock::now();
  Publish(5);
  EXPECT_GE(Clock::now() - t0, milliseconds(kAckTimeoutMs - 10));
  reader.join();
  const auto deadline = Clock::now() + milliseconds(2000);
  Status s = Status::kOk;
  while (Clock::now() < deadline) {
    s = stalled->NextFrame(50, &f);
    if (s != Status::kOk && s != Status::kTimeout) break;
    if (s == Status::kOk) stalled->Release(f.seq);
  }
  EXPECT_EQ(s, Status::kEvicted);
  EXPECT_EQ(pub_->ActiveSubscribers(), 1u);
}

TEST_F(PubSub, HostileAckBeyondWriteSeqIsEvictedWithProtocol) {
  PublisherConfig c = Config();
  c.slot_count = 2;
  StartPublisher(c);
  std::unique_ptr<Subscriber> hostile;
  ASSERT_EQ(Connect(&hostile), Status::kOk);
  // Scribble ack_seq = 1000 into our own subscriber slot through a private mapping.
  const int fd = ::open(SegmentPath(key_).c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  void* m = ::mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(m, MAP_FAILED);
  auto* h = static_cast<layout::SegmentHeader*>(m);
  auto* slot = reinterpret_cast<layout::SubscriberSlot*>(
      static_cast<uint8_t*>(m) + h->sub_slot_offset + 128 * hostile->info().subscriber_index);
  mem::store_release<uint64_t>(&slot->ack_seq, 1000);
  Publish(3);  // frame 3 reuses slot 0: the publisher inspects the ACK and evicts
  ::munmap(m, st.st_size);
  FrameView f{};
  Status s = Status::kOk;
  for (int i = 0; i < 10 && (s == Status::kOk || s == Status::kTimeout); ++i) {
    s = hostile->NextFrame(200, &f);
  }
  EXPECT_EQ(s, Status::kProtocol);
}

TEST_F(PubSub, PublisherDestroyIsNoticedWithinPeerDeathBound) {
  StartPublisher();
  std::unique_ptr<Subscriber> sub;
  ASSERT_EQ(Connect(&sub), Status::kOk);
  std::atomic<bool> done{false};
  Status got = Status::kOk;
  Clock::time_point when;
  std::thread t([&] {
    FrameView f{};
    got = sub->NextFrame(-1, &f);
    when = Clock::now();
    done = true;
  });
  std::this_thread::sleep_for(milliseconds(50));  // let it block (not a synchronization)
  const auto t0 = Clock::now();
  pub_.reset();
  t.join();
  EXPECT_EQ(got, Status::kPeerClosed);
  EXPECT_LT(when - t0, milliseconds(layout::kPeerDeathDetectMs));
  FrameView f{};
  EXPECT_EQ(sub->NextFrame(0, &f), Status::kPeerClosed) << "sticky";
}

TEST_F(PubSub, KeyInUseAndFull) {
  PublisherConfig c = Config();
  c.max_subscribers = 1;
  StartPublisher(c);
  std::unique_ptr<Publisher> second;
  EXPECT_EQ(Publisher::Create(c, nullptr, &second), Status::kKeyInUse);
  std::unique_ptr<Subscriber> a, b;
  ASSERT_EQ(Connect(&a), Status::kOk);
  EXPECT_EQ(Connect(&b), Status::kFull);
  a.reset();
  ASSERT_EQ(pub_->WaitSubscribers(0, 1000), Status::kOk);
  // The slot is freed once the connection is closed; retry until the publisher saw the DETACH.
  Status s = Status::kFull;
  for (int i = 0; i < 100 && s == Status::kFull; ++i) {
    s = Connect(&b);
    if (s == Status::kFull) std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(s, Status::kOk);
}

TEST_F(PubSub, NoSubscriberWithoutPublisher) {
  std::unique_ptr<Subscriber> sub;
  EXPECT_EQ(Connect(&sub), Status::kNotFound);
}

TEST_F(PubSub, BadConfigs) {
  PublisherConfig c = Config();
  c.slot_count = 1;
  EXPECT_EQ(Publisher::Create(c, nullptr, &pub_), Status::kInvalidArgument);
  c = Config();
  c.key = ".x";
  EXPECT_EQ(Publisher::Create(c, nullptr, &pub_), Status::kInvalidArgument);
  c = Config();
  c.memory_kind = layout::kKindCudaVmmFd;
  EXPECT_EQ(Publisher::Create(c, nullptr, &pub_), Status::kUnsupported);
  c = Config();
  c.packet_capacity = 1000;  // not a power of two
  c.max_packet_bytes = 10;
  EXPECT_EQ(Publisher::Create(c, nullptr, &pub_), Status::kInvalidArgument);
  c = Config();
  c.packet_capacity = 65536;
  c.max_packet_bytes = 100;
  c.max_proto_version = 1;  // a v1 publisher has no packet ring
  EXPECT_EQ(Publisher::Create(c, nullptr, &pub_), Status::kInvalidArgument);
}

TEST_F(PubSub, PacketsAndVersionCaps) {
  PublisherConfig c = Config();
  c.packet_capacity = 65536;
  c.max_packet_bytes = 1000;
  c.codec = 1;
  StartPublisher(c);
  std::unique_ptr<Subscriber> v2, v2_no_packets, v1;
  ASSERT_EQ(Connect(&v2, 2, true), Status::kOk);
  ASSERT_EQ(Connect(&v2_no_packets, 2, false), Status::kOk);
  ASSERT_EQ(Connect(&v1, 1, true), Status::kOk);
  EXPECT_EQ(v2->info().proto_version, 2);
  EXPECT_TRUE(v2->info().packet_ring);
  EXPECT_EQ(v1->info().proto_version, 1);
  EXPECT_FALSE(v1->info().packet_ring);
  uint8_t buf[2000];
  PacketView p{};
  uint32_t codec = 0, size = 0, gen = 0;
  EXPECT_EQ(v1->NextPacket(0, buf, sizeof(buf), &p), Status::kNoPacketRing);
  EXPECT_EQ(v2_no_packets->NextPacket(0, buf, sizeof(buf), &p), Status::kNoPacketRing);
  EXPECT_EQ(v1->GetCodecParams(buf, sizeof(buf), &codec, &size, &gen), Status::kNoPacketRing);
  EXPECT_EQ(v2->GetCodecParams(buf, sizeof(buf), &codec, &size, &gen), Status::kNoCodecParams);
  ASSERT_EQ(pub_->SetCodecParams(1, "spspps", 6), Status::kOk);
  ASSERT_EQ(v2->GetCodecParams(buf, sizeof(buf), &codec, &size, &gen), Status::kOk);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), size), "spspps");
  EXPECT_EQ(gen, 1u);
  EXPECT_EQ(pub_->PublishPacket(buf, 1001, 1, 0), Status::kOversized);
  EXPECT_EQ(v2->NextPacket(0, buf, sizeof(buf), &p), Status::kAgain);
  std::vector<uint8_t> pkt(500, 0x5a);
  ASSERT_EQ(pub_->PublishPacket(pkt.data(), 500, 1, 42), Status::kOk);
  EXPECT_EQ(v2->NextPacket(1000, buf, 10, &p), Status::kInvalidArgument) << "buffer too small";
  EXPECT_EQ(p.size, 500u);
  ASSERT_EQ(v2->NextPacket(1000, buf, sizeof(buf), &p), Status::kOk) << "kept for the retry";
  EXPECT_EQ(p.seq, 1u);
  EXPECT_EQ(p.pts, 42);
  EXPECT_EQ(p.flags, 1u);
  EXPECT_EQ(std::memcmp(buf, pkt.data(), 500), 0);
  PublisherConfig no_ring = Config();
  (void)no_ring;
  EXPECT_EQ(v2->NextPacket(0, buf, sizeof(buf), &p), Status::kAgain);
}

// ---------------------------------------------------------------- hostile socket peers

class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool ok() const { return ok_; }
  void Send(const std::vector<uint8_t>& b) {
    ASSERT_EQ(::send(fd_, b.data(), b.size(), MSG_NOSIGNAL), static_cast<ssize_t>(b.size()));
  }
  void Send(const tlv::Message& m) { Send(tlv::Encode(m)); }
  // Receives the next message within timeout_ms. Returns kOk, kTimeout, kPeerClosed (EOF).
  Status Recv(tlv::Message* out, int timeout_ms = 3000) {
    const auto deadline = Clock::now() + milliseconds(timeout_ms);
    for (;;) {
      const Status s = rx_.Next(out);
      if (s != Status::kAgain) return s;
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Status::kTimeout;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      uint8_t buf[8192];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return Status::kPeerClosed;
      rx_.Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    }
  }
  // Expects ERROR{code} followed by EOF.
  void ExpectErrorAndClose(Status code, const char* what) {
    tlv::Message m;
    ASSERT_EQ(Recv(&m), Status::kOk) << what;
    ASSERT_TRUE(std::holds_alternative<tlv::ErrorMsg>(m)) << what;
    EXPECT_EQ(std::get<tlv::ErrorMsg>(m).code, ToWire(code)) << what;
    EXPECT_EQ(Recv(&m), Status::kPeerClosed) << what;
  }
  tlv::HelloResp Hello(uint16_t min = 1, uint16_t max = 2, uint32_t kinds = 1) {
    Send(tlv::HelloReq{layout::kHelloMagic, min, max, kinds, 0, 0});
    tlv::Message m;
    EXPECT_EQ(Recv(&m), Status::kOk);
    EXPECT_TRUE(std::holds_alternative<tlv::HelloResp>(m));
    return std::holds_alternative<tlv::HelloResp>(m) ? std::get<tlv::HelloResp>(m)
                                                     : tlv::HelloResp{};
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
  tlv::Reassembler rx_;
};

std::vector<uint8_t> Raw(uint16_t type, uint16_t reserved, uint32_t length, size_t payload) {
  std::vector<uint8_t> v(8 + payload, 0);
  v[0] = static_cast<uint8_t>(type);
  v[1] = static_cast<uint8_t>(type >> 8);
  v[2] = static_cast<uint8_t>(reserved);
  v[3] = static_cast<uint8_t>(reserved >> 8);
  for (int i = 0; i < 4; ++i)
    v[4 + i] = static_cast<uint8_t>(length >> (8 * i));
  return v;
}

TEST_F(PubSub, MalformedMessagesGetTheirCodeAndTheOthersAreStillServed) {
  StartPublisher();
  std::unique_ptr<Subscriber> good;
  ASSERT_EQ(Connect(&good), Status::kOk);
  const std::string path = SocketPath(key_);
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    Status code;
  };
  std::vector<uint8_t> bad_magic = tlv::Encode(tlv::HelloReq{0x11223344, 1, 2, 1, 0, 0});
  std::vector<uint8_t> bad_error = tlv::Encode(tlv::ErrorMsg{9, "abc"});
  bad_error[8 + 4] = 9;  // text_len 9 but only 3 bytes follow
  const std::vector<Case> cases = {
      {"length > 4096", Raw(1, 0, 4097, 0), Status::kMessageTooLarge},
      {"unknown type 9", Raw(9, 0, 8, 8), Status::kUnknownMessage},
      {"unknown type 0", Raw(0, 0, 8, 8), Status::kUnknownMessage},
      {"reserved header bits", Raw(7, 1, 8, 8), Status::kProtocol},
      {"ATTACH_REQ length 17", Raw(3, 0, 17, 17), Status::kProtocol},
      {"HELLO_REQ length 63", Raw(1, 0, 63, 63), Status::kProtocol},
      {"HELLO_REQ bad magic", bad_magic, Status::kProtocol},
      {"ATTACH_REQ before HELLO", tlv::Encode(tlv::AttachReq{0, 1, 0}), Status::kState},
      {"HELLO_RESP sent to the publisher", tlv::Encode(tlv::HelloResp{}), Status::kState},
      {"ATTACH_RESP sent to the publisher", tlv::Encode(tlv::AttachResp{}), Status::kState},
  };
  for (const Case& c : cases) {
    RawClient rc(path);
    ASSERT_TRUE(rc.ok());
    rc.Send(c.bytes);
    rc.ExpectErrorAndClose(c.code, c.what);
  }
  // An ERROR with a framing error is never answered with ERROR (TLV-ERR-06, over TLV-ERR-03 and
  // TLV-ERR-01): the connection just closes.
  for (const std::vector<uint8_t>& bytes : {bad_error, Raw(6, 0, 4097, 0)}) {
    RawClient rc(path);
    ASSERT_TRUE(rc.ok());
    rc.Send(bytes);
    tlv::Message m;
    EXPECT_EQ(rc.Recv(&m), Status::kPeerClosed) << "a malformed ERROR was answered";
  }
  {  // a second HELLO_REQ
    RawClient rc(path);
    EXPECT_EQ(rc.Hello().status, 0u);
    rc.Send(tlv::HelloReq{layout::kHelloMagic, 1, 2, 1, 0, 0});
    rc.ExpectErrorAndClose(Status::kState, "second HELLO_REQ");
  }
  {  // ATTACH_REQ with the wrong generation
    RawClient rc(path);
    const tlv::HelloResp r = rc.Hello();
    rc.Send(tlv::AttachReq{r.subscriber_index, r.generation + 1, 0});
    rc.ExpectErrorAndClose(Status::kProtocol, "wrong generation");
  }
  {  // refusals come as HELLO_RESP{status}, then close
    RawClient a(path);
    EXPECT_EQ(a.Hello(kMaxProtoVersion + 1, kMaxProtoVersion + 2).status,
              ToWire(Status::kVersionMismatch));
    tlv::Message m;
    EXPECT_EQ(a.Recv(&m), Status::kPeerClosed);
    RawClient b(path);
    EXPECT_EQ(b.Hello(1, 2, 2).status, ToWire(Status::kUnsupportedKind));
    EXPECT_EQ(b.Recv(&m), Status::kPeerClosed);
  }
  {  // PING before HELLO gets PONG, and the connection stays usable
    RawClient rc(path);
    rc.Send(tlv::Ping{0xabcdef});
    tlv::Message m;
    ASSERT_EQ(rc.Recv(&m, 1000), Status::kOk);
    ASSERT_TRUE(std::holds_alternative<tlv::Pong>(m));
    EXPECT_EQ(std::get<tlv::Pong>(m).nonce, 0xabcdefu);
    EXPECT_EQ(rc.Hello().status, 0u);
  }
  {  // one byte at a time: a whole handshake reassembled by the publisher
    RawClient rc(path);
    const auto hello = tlv::Encode(tlv::HelloReq{layout::kHelloMagic, 1, 2, 1, 0, 0});
    for (uint8_t byte : hello)
      rc.Send(std::vector<uint8_t>{byte});
    tlv::Message m;
    ASSERT_EQ(rc.Recv(&m), Status::kOk);
    EXPECT_EQ(std::get<tlv::HelloResp>(m).status, 0u);
  }
  Publish(3);  // the well-behaved subscriber was served throughout
  for (uint64_t n = 1; n <= 3; ++n) {
    FrameView f{};
    ASSERT_EQ(good->NextFrame(1000, &f), Status::kOk);
    EXPECT_EQ(f.seq, n);
    ASSERT_EQ(good->Release(n), Status::kOk);
  }
}

TEST_F(PubSub, HandshakeTimeoutAndMidMessageStall) {
  StartPublisher();
  const std::string path = SocketPath(key_);
  RawClient silent(path);
  RawClient staller(path);
  const tlv::HelloResp r = staller.Hello();
  ASSERT_EQ(r.status, 0u);
  // An ACTIVE-to-be subscriber that stalls mid-message, and one that never says HELLO.
  staller.Send(std::vector<uint8_t>{3, 0, 0});
  const auto t0 = Clock::now();
  silent.ExpectErrorAndClose(Status::kTimeout, "no HELLO_REQ");
  staller.ExpectErrorAndClose(Status::kTimeout, "stalled mid-message");
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, milliseconds(layout::kHandshakeTimeoutMs - 100));
  EXPECT_LT(elapsed, milliseconds(layout::kHandshakeTimeoutMs + 1000));
  // The reserved slot was freed: a full set of subscribers can still attach.
  std::vector<std::unique_ptr<Subscriber>> subs(4);
  for (auto& s : subs)
    EXPECT_EQ(Connect(&s), Status::kOk);
}

TEST_F(PubSub, SubscriberAnswersPingAndReportsPublisherErrors) {
  // A scripted publisher: the subscriber must answer PING while idle and surface ERROR codes.
  const std::string path = SocketPath(key_);
  const int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  std::unique_ptr<Subscriber> sub;
  Status connect_status = Status::kOk;
  std::thread t([&] { connect_status = Connect(&sub); });
  const int cfd = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(cfd, 0);
  tlv::Reassembler rx;
  auto recv_msg = [&](tlv::Message* m) {
    for (;;) {
      if (rx.Next(m) == Status::kOk) return true;
      uint8_t buf[4096];
      const ssize_t n = ::recv(cfd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      rx.Feed(std::span<const uint8_t>(buf, static_cast<size_t>(n)));
    }
  };
  tlv::Message m;
  ASSERT_TRUE(recv_msg(&m));
  ASSERT_TRUE(std::holds_alternative<tlv::HelloReq>(m));
  const auto hello = std::get<tlv::HelloReq>(m);
  EXPECT_EQ(hello.magic, layout::kHelloMagic);
  EXPECT_EQ(hello.min_proto, 1);
  EXPECT_EQ(hello.max_proto, 2);
  EXPECT_EQ(hello.kinds_mask & 1u, 1u);
  // Answer a PING during the handshake, then refuse with FULL.
  const auto ping = tlv::Encode(tlv::Ping{77});
  ASSERT_EQ(::send(cfd, ping.data(), ping.size(), MSG_NOSIGNAL), 16);
  ASSERT_TRUE(recv_msg(&m));
  ASSERT_TRUE(std::holds_alternative<tlv::Pong>(m));
  EXPECT_EQ(std::get<tlv::Pong>(m).nonce, 77u);
  tlv::HelloResp resp{};
  resp.status = ToWire(Status::kFull);
  const auto rb = tlv::Encode(resp);
  ASSERT_EQ(::send(cfd, rb.data(), rb.size(), MSG_NOSIGNAL), static_cast<ssize_t>(rb.size()));
  t.join();
  EXPECT_EQ(connect_status, Status::kFull);
  ::close(cfd);
  ::close(lfd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace cuframes
