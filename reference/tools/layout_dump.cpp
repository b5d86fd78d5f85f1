// layout_dump: prints the layout the reference implements, one "struct,field,offset,size" line
// per field plus "struct,,0,size" per struct, for tests/check_layout_against_twin.py to hold
// against spec/cuframes.json (two derivations of the spec, compared).
//
// Shared-memory structs come from the reference's own struct definitions (offsetof/sizeof).
// Socket messages have no structs (they are encoded field by field), so their layout is derived
// from the encoder itself: each field in turn is set to a pattern with no zero byte, the message
// is encoded, and the field's offset and size are where the pattern landed in the payload.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "layout.h"
#include "packet_ring.h"
#include "status.h"
#include "tlv.h"

namespace {

using namespace cuframes;

void Row(const char* s, const char* f, size_t off, size_t size) {
  std::printf("%s,%s,%zu,%zu\n", s, f, off, size);
}

#define STRUCT(S)   Row(#S, "", 0, sizeof(S))
#define FIELD(S, F) Row(#S, #F, offsetof(S, F), sizeof(S::F))

void DumpShm() {
  using namespace cuframes::layout;
  STRUCT(SegmentHeader);
  FIELD(SegmentHeader, layout_version);
  FIELD(SegmentHeader, magic);
  FIELD(SegmentHeader, state);
  FIELD(SegmentHeader, header_size);
  FIELD(SegmentHeader, proto_version);
  FIELD(SegmentHeader, memory_kind);
  FIELD(SegmentHeader, slot_count);
  FIELD(SegmentHeader, max_subscribers);
  FIELD(SegmentHeader, flags);
  FIELD(SegmentHeader, publisher_pid);
  FIELD(SegmentHeader, publisher_start_time);
  FIELD(SegmentHeader, segment_size);
  FIELD(SegmentHeader, lib_version);
  FIELD(SegmentHeader, reserved0);
  FIELD(SegmentHeader, width);
  FIELD(SegmentHeader, height);
  FIELD(SegmentHeader, pixel_format);
  FIELD(SegmentHeader, pitch);
  FIELD(SegmentHeader, slot_bytes);
  FIELD(SegmentHeader, slot_desc_offset);
  FIELD(SegmentHeader, sub_slot_offset);
  FIELD(SegmentHeader, data_offset);
  FIELD(SegmentHeader, data_stride);
  FIELD(SegmentHeader, reserved1);
  FIELD(SegmentHeader, write_seq);
  FIELD(SegmentHeader, frame_futex);
  FIELD(SegmentHeader, ack_waiting);
  FIELD(SegmentHeader, reserved2);
  FIELD(SegmentHeader, ack_futex);
  FIELD(SegmentHeader, frame_waiters);
  FIELD(SegmentHeader, packet_waiters);
  FIELD(SegmentHeader, reserved3);

  STRUCT(FrameMeta);
  FIELD(FrameMeta, seq);
  FIELD(FrameMeta, timestamp_ns);
  FIELD(FrameMeta, width);
  FIELD(FrameMeta, height);
  FIELD(FrameMeta, pixel_format);
  FIELD(FrameMeta, pitch);
  FIELD(FrameMeta, payload_bytes);
  FIELD(FrameMeta, flags);
  FIELD(FrameMeta, reserved0);
  FIELD(FrameMeta, user_data);
  FIELD(FrameMeta, reserved1);

  STRUCT(SlotDescriptor);
  FIELD(SlotDescriptor, meta);
  FIELD(SlotDescriptor, mem_handle);
  FIELD(SlotDescriptor, ready_event);

  STRUCT(SubscriberSlot);
  FIELD(SubscriberSlot, state);
  FIELD(SubscriberSlot, generation);
  FIELD(SubscriberSlot, ack_seq);
  FIELD(SubscriberSlot, start_seq);
  FIELD(SubscriberSlot, pid);
  FIELD(SubscriberSlot, flags);
  FIELD(SubscriberSlot, reserved0);
  FIELD(SubscriberSlot, ack_event);
}

void DumpRing() {
  using namespace cuframes::ring;
  STRUCT(PacketRingHeader);
  FIELD(PacketRingHeader, layout_version);
  FIELD(PacketRingHeader, magic);
  FIELD(PacketRingHeader, state);
  FIELD(PacketRingHeader, header_size);
  FIELD(PacketRingHeader, capacity);
  FIELD(PacketRingHeader, data_offset);
  FIELD(PacketRingHeader, max_packet_bytes);
  FIELD(PacketRingHeader, codec);
  FIELD(PacketRingHeader, segment_size);
  FIELD(PacketRingHeader, reserved0);
  FIELD(PacketRingHeader, head_seq);
  FIELD(PacketRingHeader, head_pos);
  FIELD(PacketRingHeader, tail_pos);
  FIELD(PacketRingHeader, last_key_seq);
  FIELD(PacketRingHeader, last_key_pos);
  FIELD(PacketRingHeader, packet_futex);
  FIELD(PacketRingHeader, reserved1);

  STRUCT(CodecParams);
  FIELD(CodecParams, lock);
  FIELD(CodecParams, generation);
  FIELD(CodecParams, size);
  FIELD(CodecParams, codec);
  FIELD(CodecParams, reserved0);
  FIELD(CodecParams, data);

  STRUCT(PacketRecordHeader);
  FIELD(PacketRecordHeader, lock);
  FIELD(PacketRecordHeader, size);
  FIELD(PacketRecordHeader, flags);
  FIELD(PacketRecordHeader, pts);
  FIELD(PacketRecordHeader, params_generation);
  FIELD(PacketRecordHeader, reserved0);
}

// Encodes `m` after `set` put a no-zero-byte pattern into one field; prints where it landed.
template <class M, class T>
void Probe(const char* s, const char* f, bool header, T M::*field) {
  M m{};
  T pattern{};
  for (size_t i = 0; i < sizeof(T); ++i) {
    pattern = static_cast<T>((pattern << 8) | static_cast<T>(0x11 * (i + 1)));
  }
  m.*field = pattern;
  const std::vector<uint8_t> bytes = tlv::Encode(tlv::Message(m));
  const size_t base = header ? 0 : tlv::kHeaderSize;
  size_t first = SIZE_MAX;
  size_t last = 0;
  for (size_t i = tlv::kHeaderSize; i < bytes.size(); ++i) {
    if (bytes[i] != 0) {
      first = std::min(first, i);
      last = i;
    }
  }
  Row(s, f, first - base, last - first + 1);
}

template <class M>
void MsgSize(const char* s, const M& m) {
  Row(s, "", 0, tlv::Encode(tlv::Message(m)).size() - tlv::kHeaderSize);
}

void DumpSocket() {
  using namespace cuframes::tlv;
  // TlvHeader: type and length located in an encoded PING (type 7, length 8).
  {
    const std::vector<uint8_t> b = Encode(Message(Ping{0}));
    Row("TlvHeader", "", 0, kHeaderSize);
    for (size_t i = 0; i < kHeaderSize; ++i) {
      if (b[i] == 7) Row("TlvHeader", "type", i, 2);
      if (b[i] == 8) Row("TlvHeader", "length", i, 4);
    }
  }
  MsgSize("HelloReq", HelloReq{});
  Probe("HelloReq", "magic", false, &HelloReq::magic);
  Probe("HelloReq", "min_proto", false, &HelloReq::min_proto);
  Probe("HelloReq", "max_proto", false, &HelloReq::max_proto);
  Probe("HelloReq", "kinds_mask", false, &HelloReq::kinds_mask);
  Probe("HelloReq", "lib_version", false, &HelloReq::lib_version);
  Probe("HelloReq", "caps", false, &HelloReq::caps);
  MsgSize("HelloResp", HelloResp{});
  Probe("HelloResp", "status", false, &HelloResp::status);
  Probe("HelloResp", "proto_version", false, &HelloResp::proto_version);
  Probe("HelloResp", "memory_kind", false, &HelloResp::memory_kind);
  Probe("HelloResp", "subscriber_index", false, &HelloResp::subscriber_index);
  Probe("HelloResp", "generation", false, &HelloResp::generation);
  Probe("HelloResp", "lib_version", false, &HelloResp::lib_version);
  Probe("HelloResp", "caps", false, &HelloResp::caps);
  Probe("HelloResp", "initial_packet_seq", false, &HelloResp::initial_packet_seq);
  Probe("HelloResp", "initial_packet_pos", false, &HelloResp::initial_packet_pos);
  MsgSize("AttachReq", AttachReq{});
  Probe("AttachReq", "subscriber_index", false, &AttachReq::subscriber_index);
  Probe("AttachReq", "generation", false, &AttachReq::generation);
  Probe("AttachReq", "flags", false, &AttachReq::flags);
  MsgSize("AttachResp", AttachResp{});
  Probe("AttachResp", "status", false, &AttachResp::status);
  Probe("AttachResp", "start_seq", false, &AttachResp::start_seq);
  MsgSize("Detach", Detach{});
  Probe("Detach", "reason", false, &Detach::reason);
  MsgSize("ErrorMsg", ErrorMsg{});
  Probe("ErrorMsg", "code", false, &ErrorMsg::code);
  {
    // text_len: the only nonzero bytes of an ERROR with code 0 and a 1-byte NUL text.
    const std::vector<uint8_t> b = Encode(Message(ErrorMsg{0, std::string(1, '\0')}));
    for (size_t i = kHeaderSize; i < b.size(); ++i) {
      if (b[i] == 1) Row("ErrorMsg", "text_len", i - kHeaderSize, 4);
    }
  }
  MsgSize("Ping", Ping{});
  Probe("Ping", "nonce", false, &Ping::nonce);
  MsgSize("Pong", Pong{});
  Probe("Pong", "nonce", false, &Pong::nonce);
}

// Error codes and message types, as the reference names and bounds them.
void DumpCodes() {
  for (uint32_t v = 0; v <= kMaxStatusValue; ++v) {
    std::printf("@error,%s,%u,0\n", StatusName(static_cast<Status>(v)), v);
  }
  for (uint16_t t = 1; t <= 8; ++t) {
    tlv::LengthRange r{};
    tlv::LengthRangeOf(t, &r);
    std::printf("@message,%s,%u,%u,%u\n", tlv::TypeName(t), t, r.min, r.max);
  }
}

}  // namespace

int main() {
  DumpShm();
  DumpRing();
  DumpSocket();
  DumpCodes();
  return 0;
}
