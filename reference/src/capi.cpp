// capi.cpp: the C ABI (include/cuframes/cuframes.h) over Publisher/Subscriber. No exception
// crosses it: every entry point catches and maps to a status.
#include <cstddef>
#include <cstring>
#include <new>

#include "cuframes/cuframes.h"
#include "lifecycle.h"
#include "memory_kind.h"
#include "publisher.h"
#include "status.h"
#include "subscriber.h"

struct cuframes_publisher {
  std::unique_ptr<cuframes::Publisher> impl;
  uint32_t memory_kind = CUFRAMES_KIND_HOST;
};
struct cuframes_subscriber {
  std::unique_ptr<cuframes::Subscriber> impl;
};

namespace {

using cuframes::Status;

int Code(Status s) {
  return static_cast<int>(s);
}

template <class Fn>
int Guard(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return CUFRAMES_NO_MEMORY;
  } catch (...) {
    return CUFRAMES_SYSTEM;
  }
}

// Copies the caller's options over the defaults, honouring a smaller (older) struct_size.
// Returns false if struct_size does not even cover the fields every version has.
template <class T>
bool MergeOptions(const T* in, T* out, size_t required) {
  if (in->struct_size < required) return false;
  const size_t n = in->struct_size < sizeof(T) ? in->struct_size : sizeof(T);
  std::memcpy(static_cast<void*>(out), in, n);
  out->struct_size = sizeof(T);
  return true;
}

}  // namespace

extern "C" {

void cuframes_pub_options_init(cuframes_pub_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->memory_kind = CUFRAMES_KIND_HOST;
  o->slot_count = 4;
  o->max_subscribers = 8;
  o->ack_timeout_ms = 2000;
  o->max_proto_version = 0;
  o->file_mode = 0600;
}

void cuframes_sub_options_init(cuframes_sub_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->kinds_mask = CUFRAMES_KIND_BIT(CUFRAMES_KIND_HOST);
  o->connect_timeout_ms = 2000;
}

const char* cuframes_status_name(int status) {
  return cuframes::StatusName(static_cast<Status>(status));
}

const char* cuframes_strerror(int status) {
  return cuframes::StatusText(static_cast<Status>(status));
}

uint32_t cuframes_version(void) {
  return cuframes::LibVersion();
}

int cuframes_cuda_kind_built(void) {
  return cuframes::CudaKindBuilt() ? 1 : 0;
}

int cuframes_cuda_vmm_usable(int device) {
  return cuframes::CudaVmmUsable(device) ? 1 : 0;
}

int cuframes_pub_create(const cuframes_pub_options* options, cuframes_publisher** out) {
  return Guard([&]() -> int {
    if (options == nullptr || out == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    cuframes_pub_options o;
    cuframes_pub_options_init(&o);
    if (!MergeOptions(options, &o, offsetof(cuframes_pub_options, key) + sizeof(o.key))) {
      return CUFRAMES_INVALID_ARGUMENT;
    }
    if (o.key == nullptr || o.max_proto_version > 0xffff || o.memory_kind > 0xffff) {
      return CUFRAMES_INVALID_ARGUMENT;
    }
    cuframes::PublisherConfig cfg;
    cfg.key = o.key;
    cfg.memory_kind = static_cast<uint16_t>(o.memory_kind);
    cfg.width = o.width;
    cfg.height = o.height;
    cfg.pixel_format = o.pixel_format;
    cfg.pitch = o.pitch;
    cfg.slot_bytes = o.slot_bytes;
    cfg.slot_count = o.slot_count;
    cfg.max_subscribers = o.max_subscribers;
    cfg.ack_timeout_ms = o.ack_timeout_ms;
    cfg.max_proto_version = o.max_proto_version == 0 ? cuframes::kMaxProtoVersion
                                                     : static_cast<uint16_t>(o.max_proto_version);
    cfg.packet_capacity = o.packet_capacity;
    cfg.max_packet_bytes = o.max_packet_bytes;
    cfg.codec = o.codec;
    cfg.file_mode = o.file_mode;
    cfg.allow_other_uids = o.allow_other_uids != 0;
    cfg.cuda_device = o.cuda_device;
    cuframes::PubEventFn fn;
    if (o.on_event != nullptr) {
      fn = [cb = o.on_event, user = o.on_event_user](const cuframes::PubEventInfo& e) {
        cuframes_pub_event ev{};
        ev.kind = static_cast<uint32_t>(e.kind);
        ev.subscriber_index = e.index;
        ev.pid = e.pid;
        ev.reason = static_cast<uint32_t>(e.reason);
        ev.start_seq = e.start_seq;
        cb(user, &ev);
      };
    }
    auto holder = std::make_unique<cuframes_publisher>();
    holder->memory_kind = o.memory_kind;
    const Status s = cuframes::Publisher::Create(cfg, std::move(fn), &holder->impl);
    if (s != Status::kOk) return Code(s);
    *out = holder.release();
    return CUFRAMES_OK;
  });
}

void cuframes_pub_destroy(cuframes_publisher* pub) {
  Guard([&]() -> int {
    delete pub;
    return 0;
  });
}

int cuframes_pub_acquire(cuframes_publisher* pub, int32_t timeout_ms, cuframes_slot* out) {
  return Guard([&]() -> int {
    if (pub == nullptr || out == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    cuframes::AcquiredSlot s{};
    const Status st = pub->impl->Acquire(timeout_ms, &s);
    if (st != Status::kOk) return Code(st);
    out->seq = s.seq;
    out->data = s.data;
    out->capacity = s.capacity;
    out->cuda_stream = s.stream;
    out->slot_index = s.slot;
    out->memory_kind = pub->memory_kind;
    return CUFRAMES_OK;
  });
}

int cuframes_pub_commit(cuframes_publisher* pub, const cuframes_frame_info* info) {
  return Guard([&]() -> int {
    if (pub == nullptr || info == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    cuframes::FrameInfo f;
    f.timestamp_ns = info->timestamp_ns;
    f.width = info->width;
    f.height = info->height;
    f.pixel_format = info->pixel_format;
    f.pitch = info->pitch;
    f.payload_bytes = info->payload_bytes;
    f.flags = info->flags;
    f.user_data = info->user_data;
    return Code(pub->impl->Commit(f));
  });
}

uint32_t cuframes_pub_subscriber_count(const cuframes_publisher* pub) {
  if (pub == nullptr) return 0;
  try {
    return pub->impl->ActiveSubscribers();
  } catch (...) {
    return 0;
  }
}

int cuframes_pub_wait_subscribers(cuframes_publisher* pub, uint32_t count, int32_t timeout_ms) {
  return Guard([&]() -> int {
    if (pub == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    return Code(pub->impl->WaitSubscribers(count, timeout_ms));
  });
}

int cuframes_pub_publish_packet(cuframes_publisher* pub, const void* data, uint32_t size,
                                int64_t pts, uint32_t flags) {
  return Guard([&]() -> int {
    if (pub == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    return Code(pub->impl->PublishPacket(data, size, flags, pts));
  });
}

int cuframes_pub_set_codec_params(cuframes_publisher* pub, uint32_t codec, const void* data,
                                  uint32_t size) {
  return Guard([&]() -> int {
    if (pub == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    return Code(pub->impl->SetCodecParams(codec, data, size));
  });
}

int cuframes_sub_connect(const cuframes_sub_options* options, cuframes_subscriber** out) {
  return Guard([&]() -> int {
    if (options == nullptr || out == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    cuframes_sub_options o;
    cuframes_sub_options_init(&o);
    if (!MergeOptions(options, &o, offsetof(cuframes_sub_options, key) + sizeof(o.key))) {
      return CUFRAMES_INVALID_ARGUMENT;
    }
    if (o.key == nullptr || o.max_proto_version > 0xffff) return CUFRAMES_INVALID_ARGUMENT;
    cuframes::SubscriberConfig cfg;
    cfg.key = o.key;
    cfg.kinds_mask = o.kinds_mask;
    cfg.max_proto_version = o.max_proto_version == 0 ? cuframes::kMaxProtoVersion
                                                     : static_cast<uint16_t>(o.max_proto_version);
    cfg.want_packets = o.want_packets != 0;
    cfg.cuda_device = o.cuda_device;
    cfg.connect_timeout_ms = o.connect_timeout_ms == 0 ? 2000 : o.connect_timeout_ms;
    auto holder = std::make_unique<cuframes_subscriber>();
    const Status s = cuframes::Subscriber::Connect(cfg, &holder->impl);
    if (s != Status::kOk) return Code(s);
    *out = holder.release();
    return CUFRAMES_OK;
  });
}

void cuframes_sub_close(cuframes_subscriber* sub) {
  Guard([&]() -> int {
    delete sub;
    return 0;
  });
}

int cuframes_sub_get_info(const cuframes_subscriber* sub, cuframes_sub_info* out) {
  if (sub == nullptr || out == nullptr) return CUFRAMES_INVALID_ARGUMENT;
  const cuframes::ConnectInfo& i = sub->impl->info();
  std::memset(out, 0, sizeof(*out));
  out->proto_version = i.proto_version;
  out->memory_kind = i.memory_kind;
  out->subscriber_index = i.subscriber_index;
  out->generation = i.generation;
  out->start_seq = i.start_seq;
  out->publisher_lib_version = i.publisher_lib_version;
  out->packet_ring = i.packet_ring ? 1 : 0;
  out->width = i.width;
  out->height = i.height;
  out->pixel_format = i.pixel_format;
  out->pitch = i.pitch;
  out->slot_bytes = i.slot_bytes;
  out->slot_count = i.slot_count;
  return CUFRAMES_OK;
}

int cuframes_sub_next_frame(cuframes_subscriber* sub, int32_t timeout_ms, cuframes_frame* out) {
  return Guard([&]() -> int {
    if (sub == nullptr || out == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    cuframes::FrameView f{};
    const Status s = sub->impl->NextFrame(timeout_ms, &f);
    if (s != Status::kOk) return Code(s);
    out->seq = f.seq;
    out->timestamp_ns = f.timestamp_ns;
    out->width = f.width;
    out->height = f.height;
    out->pixel_format = f.pixel_format;
    out->pitch = f.pitch;
    out->payload_bytes = f.payload_bytes;
    out->flags = f.flags;
    out->memory_kind = sub->impl->info().memory_kind;
    out->user_data = f.user_data;
    out->data = f.data;
    out->cuda_stream = f.stream;
    return CUFRAMES_OK;
  });
}

int cuframes_sub_release(cuframes_subscriber* sub, const cuframes_frame* frame) {
  return Guard([&]() -> int {
    if (sub == nullptr || frame == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    return Code(sub->impl->Release(frame->seq));
  });
}

int cuframes_sub_next_packet(cuframes_subscriber* sub, int32_t timeout_ms, void* buf,
                             uint32_t buf_size, cuframes_packet* out) {
  return Guard([&]() -> int {
    if (sub == nullptr || out == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    cuframes::PacketView p{};
    const Status s = sub->impl->NextPacket(timeout_ms, buf, buf_size, &p);
    if (s == Status::kOk || s == Status::kInvalidArgument) {
      std::memset(out, 0, sizeof(*out));
      out->seq = p.seq;
      out->pts = p.pts;
      out->size = p.size;
      out->flags = p.flags;
      out->params_generation = p.params_generation;
    }
    return Code(s);
  });
}

int cuframes_sub_get_codec_params(cuframes_subscriber* sub, void* buf, uint32_t buf_size,
                                  uint32_t* size, uint32_t* codec, uint32_t* generation) {
  return Guard([&]() -> int {
    if (sub == nullptr || size == nullptr) return CUFRAMES_INVALID_ARGUMENT;
    uint32_t c = 0;
    uint32_t g = 0;
    const Status s = sub->impl->GetCodecParams(buf, buf_size, &c, size, &g);
    if (codec != nullptr) *codec = c;
    if (generation != nullptr) *generation = g;
    return Code(s);
  });
}

}  // extern "C"
