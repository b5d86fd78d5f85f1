// publisher.h: the publisher of one key: owns the segment (and packet ring), serves subscriber
// connections on a service thread and runs the frame ring's producer side (spec sections 1-5, 10).
//
// Threads: Acquire/Commit/PublishPacket/SetCodecParams must be called from one thread at a time
// (the producer). A service thread poll()s the listener and every connection: handshakes, PING,
// DETACH, EOF, timeouts, evictions. Event callbacks run on the service thread.
#ifndef CUFRAMES_REFERENCE_SRC_PUBLISHER_H_
#define CUFRAMES_REFERENCE_SRC_PUBLISHER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "status.h"

namespace cuframes {

inline constexpr uint16_t kMaxProtoVersion = 3;

struct PublisherConfig {
  std::string key;
  uint16_t memory_kind = 1;  // HOST
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t pixel_format = 0;
  uint32_t pitch = 0;
  uint64_t slot_bytes = 0;  // 0: derived from width/height/pitch/pixel_format
  uint32_t slot_count = 4;
  uint32_t max_subscribers = 8;
  uint32_t ack_timeout_ms = 2000;
  uint16_t max_proto_version = kMaxProtoVersion;  // runtime cap (1 = act as a v1 publisher)
  uint64_t packet_capacity = 0;                   // 0: no packet ring
  uint32_t max_packet_bytes = 0;
  uint32_t codec = 0;
  uint32_t file_mode = 0600;
  bool allow_other_uids = false;
  int cuda_device = 0;
};

enum class PubEventKind : uint32_t { kAttached = 1, kDetached = 2, kEvicted = 3 };

struct PubEventInfo {
  PubEventKind kind;
  uint32_t index;      // subscriber slot
  uint32_t pid;        // peer pid (SO_PEERCRED)
  uint64_t start_seq;  // kAttached: the subscriber's first frame
  Status reason;       // kDetached: why; kEvicted: kEvicted or kProtocol
};

using PubEventFn = std::function<void(const PubEventInfo&)>;

struct AcquiredSlot {
  uint64_t seq;       // the frame this buffer will carry once committed
  uint32_t slot;      // (seq - 1) mod slot_count
  void* data;         // host pointer (HOST) or device pointer (CUDA_IPC)
  uint64_t capacity;  // slot_bytes
  void* stream;       // cudaStream_t to enqueue the frame's writes on (CUDA_IPC), else null
};

struct FrameInfo {
  int64_t timestamp_ns = 0;
  uint32_t width = 0;
  uint32_t height = 0;
  uint32_t pixel_format = 0;
  uint32_t pitch = 0;
  uint64_t payload_bytes = 0;
  uint32_t flags = 0;
  uint64_t user_data = 0;
};

class Publisher {
 public:
  // Creates the segment (and packet ring), then starts listening: the socket file appearing is
  // the readiness signal.
  // Returns kOk (*out set), kInvalidArgument (bad key or option), kUnsupported (memory kind not
  // built/offered), kKeyInUse, kPermission, kNoMemory, kCuda, kSystem.
  static Status Create(const PublisherConfig& config, PubEventFn on_event,
                       std::unique_ptr<Publisher>* out);
  // Detaches every subscriber (DETACH reason 0), marks the segment CLOSED and removes every file.
  ~Publisher();

  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Hands out the buffer for frame write_seq + 1, after every active subscriber that must see
  // the slot's previous frame has acknowledged it (spec 5.2). A subscriber that has not ACKed
  // within ack_timeout_ms is evicted. timeout_ms: 0 = do not wait, < 0 = no limit.
  // Returns kOk (*out filled), kAgain (timeout_ms == 0 and the slot is still held), kTimeout,
  // kState (a frame is already acquired and not committed), kCuda.
  Status Acquire(int32_t timeout_ms, AcquiredSlot* out);

  // Publishes the acquired frame with `info` (spec 5.3).
  // Returns kOk, kState (nothing acquired), kInvalidArgument (payload_bytes > slot_bytes), kCuda.
  Status Commit(const FrameInfo& info);

  // Appends one encoded packet to the packet ring. flags: bit0 KEYFRAME.
  // Returns kOk, kNoPacketRing (no ring configured), kOversized, kInvalidArgument, kState.
  Status PublishPacket(const void* data, uint32_t size, uint32_t flags, int64_t pts);

  // Publishes codec parameters (SPS/PPS...) in the ring's header.
  // Returns kOk, kNoPacketRing, kOversized (> 4096 bytes), kInvalidArgument, kState.
  Status SetCodecParams(uint32_t codec, const void* data, uint32_t size);

  // Returns the number of ACTIVE subscribers.
  uint32_t ActiveSubscribers() const;

  // Waits until at least `count` subscribers are ACTIVE. timeout_ms < 0: no limit.
  // Returns kOk, kTimeout.
  Status WaitSubscribers(uint32_t count, int32_t timeout_ms);

  uint64_t write_seq() const;

  struct Impl;

 private:
  explicit Publisher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Returns slot_bytes for a frame geometry (NV12/P010: pitch*height*3/2, others pitch*height;
// pitch 0 means width * bytes per pixel), or 0 if it cannot be derived.
uint64_t DeriveSlotBytes(uint32_t width, uint32_t height, uint32_t pixel_format, uint32_t pitch);

}  // namespace cuframes

#endif  // CUFRAMES_REFERENCE_SRC_PUBLISHER_H_
