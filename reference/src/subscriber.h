// subscriber.h: one subscriber connection to a key: handshake, segment mapping, and the
// consumer side of the frame ring and packet ring (spec sections 3-5, 10).
//
// Threads: NextFrame/Release/NextPacket/GetCodecParams must be called from one thread at a time.
// A small service thread reads the socket (PING -> PONG, ERROR, DETACH, EOF) so that a dead or
// closing publisher is noticed within PEER_DEATH_DETECT_MS even while no call is in progress.
#ifndef CUFRAMES_REFERENCE_SRC_SUBSCRIBER_H_
#define CUFRAMES_REFERENCE_SRC_SUBSCRIBER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "status.h"

namespace cuframes {

struct SubscriberConfig {
  std::string key;
  uint32_t kinds_mask = 1;         // bit (kind-1) per accepted memory kind; HOST only by default
  uint16_t max_proto_version = 3;  // the highest this library speaks (kMaxProtoVersion)
  bool want_packets = false;
  int cuda_device = 0;
  uint32_t connect_timeout_ms = 2000;
};

struct FrameView {
  uint64_t seq;
  int64_t timestamp_ns;
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t payload_bytes;
  uint32_t flags;
  uint64_t user_data;
  const void* data;  // host pointer into the mapping (HOST) or device pointer (CUDA_IPC)
  void* stream;      // cudaStream_t ordered after the frame's ready event (CUDA_IPC), else null
};

struct PacketView {
  uint64_t seq;
  int64_t pts;
  uint32_t flags;
  uint32_t params_generation;
  uint32_t size;
};

struct ConnectInfo {
  uint16_t proto_version;
  uint16_t memory_kind;
  uint32_t subscriber_index;
  uint32_t generation;
  uint64_t start_seq;
  uint32_t publisher_lib_version;
  bool packet_ring;
  uint32_t width;
  uint32_t height;
  uint32_t pixel_format;
  uint32_t pitch;
  uint64_t slot_bytes;
  uint32_t slot_count;
};

class Subscriber {
 public:
  // Connects to the publisher of config.key and attaches (HELLO, segment mapping, ATTACH).
  // Returns kOk (*out set), kInvalidArgument, kNotFound (no socket / nobody listening),
  // kPermission, kTimeout, kPeerClosed, kProtocol, kState, any HELLO_RESP/ATTACH_RESP/ERROR status
  // (kVersionMismatch, kUnsupportedKind, kFull, ...), kUnsupportedLayout, kCorrupt, kCuda,
  // kUnsupported (CUDA kind accepted but not built), kSystem.
  static Status Connect(const SubscriberConfig& config, std::unique_ptr<Subscriber>* out);
  // Sends DETACH and closes. Unlinks nothing.
  ~Subscriber();

  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  const ConnectInfo& info() const;

  // Returns the next frame in order (spec 5.4). timeout_ms: 0 = do not wait, < 0 = no limit.
  // Returns kOk (*out filled), kAgain, kTimeout, kPeerClosed (publisher closed or died),
  // kEvicted, kCorrupt (payload_bytes > slot_bytes or impossible seq), kCuda, or the code of an
  // ERROR the publisher sent.
  Status NextFrame(int32_t timeout_ms, FrameView* out);

  // Releases (ACKs) a frame returned by NextFrame. Frames may be released in any order; the ACK
  // published is the highest seq below which every frame has been released.
  // Returns kOk, kInvalidArgument (seq not currently held), kCuda, or the sticky connection error.
  Status Release(uint64_t seq);

  // Copies the next packet into buf. Returns kOk (*out filled), kAgain, kTimeout,
  // kNoPacketRing, kInvalidArgument (buf too small: out->size tells the needed size; the packet
  // is then lost... see capi), kPacketOverrun, kPeerClosed, kCorrupt.
  Status NextPacket(int32_t timeout_ms, void* buf, uint32_t buf_size, PacketView* out);

  // Copies the current codec parameters. Returns kOk, kNoPacketRing, kNoCodecParams,
  // kInvalidArgument (buf too small; *size says how big), kCorrupt.
  Status GetCodecParams(void* buf, uint32_t buf_size, uint32_t* codec, uint32_t* size,
                        uint32_t* generation);

  struct Impl;

 private:
  explicit Subscriber(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cuframes

#endif  // CUFRAMES_REFERENCE_SRC_SUBSCRIBER_H_
