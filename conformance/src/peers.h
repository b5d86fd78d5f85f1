// peers.h: the scripted peers the harness plays against an IUT.
//
// ScriptedSub is a byte-level subscriber (raw TLV client, raw mmap of /dev/shm/cuframes-K) for
// cases that test an IUT publisher; ScriptedPub is a byte-level publisher (it writes the segment
// and the packet ring itself, per the twin, and serves the socket) for cases that test an IUT
// subscriber. Both expose every byte so hostile cases can break exactly one rule at a time.
#ifndef CUFRAMES_CONFORMANCE_SRC_PEERS_H_
#define CUFRAMES_CONFORMANCE_SRC_PEERS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "registry.h"
#include "wire.h"

namespace cuframes::conform {

// ---- shared helpers ----

// Receives one message within `timeout_ms`; ends the case with a failure of `req` on EOF,
// timeout or a malformed message (TLV-FRAME-01 for broken framing by the IUT).
TlvMsg RecvOrFail(CaseContext& ctx, Conn& c, const std::string& req, const std::string& what,
                  int timeout_ms);
// Expects the peer to send ERROR(code) and close the connection within `timeout_ms`
// (MSG-ERROR-02 for the close). `req` names the requirement that demands this error.
void ExpectErrorClose(CaseContext& ctx, Conn& c, const std::string& code, const std::string& req,
                      int timeout_ms = 3000);
// Expects the peer to close the connection, sending nothing or only `allowed` message (by name,
// "" for none) first.
void ExpectCloseOnly(CaseContext& ctx, Conn& c, const std::string& req, int timeout_ms,
                     const std::string& allowed = "");
// Returns the uint field `field` of a payload struct.
uint64_t PayloadField(const Spec& spec, const std::string& st, const TlvMsg& m,
                      const std::string& field);
// Returns true if every byte in `b` is zero.
bool AllZero(std::span<const uint8_t> b);
// Waits for the adapter to exit within `timeout_ms`; ends the case with a failure of `req` if it
// keeps running.
void WaitExitOrFail(CaseContext& ctx, Process& p, const std::string& req, int timeout_ms);
// Returns the adapter's first "error" event at index >= 0, or nullptr.
const nlohmann::json* FindError(Process& p);
// Expects the adapter (subscriber) to report error `code` (name or number) within `timeout_ms`,
// as an "error" event and a nonzero exit status.
// Unless `allow_deliveries`, no frame or packet event may precede the error.
// ADP-FMT-01: the `name` of an error event is the section 8 name of its `code` (nothing to
// judge when `e` is null or its code is missing or unknown: the callers report those).
void ExpectErrorName(CaseContext& ctx, const nlohmann::json* e);
void ExpectAdapterError(CaseContext& ctx, Process& p, const std::string& code,
                        const std::string& req, int timeout_ms, bool allow_deliveries = false);
// Expects the adapter's exit status `code` (ADAPTER.md section 5) once it has exited.
void ExpectExitCode(CaseContext& ctx, Process& p, int code, const std::string& why);

// ---- the scripted subscriber ----

struct HelloParams {
  uint32_t magic = 0;  // 0: HELLO_MAGIC
  uint16_t min_proto = 1;
  uint16_t max_proto = 1;
  uint32_t kinds_mask = 1;  // HOST
  uint32_t caps = 0;
  uint32_t length = 64;       // payload length; extra bytes are 0xee
  std::vector<int> pass_fds;  // sent with HELLO_REQ as SCM_RIGHTS (none belong there, KIND-07)
};

struct HelloInfo {
  uint64_t status = 0, proto_version = 0, memory_kind = 0, index = 0, generation = 0, caps = 0;
  uint64_t initial_packet_seq = 0, initial_packet_pos = 0;
  TlvMsg msg;
};

class ScriptedSub {
 public:
  ScriptedSub(CaseContext& ctx, std::string key);
  explicit ScriptedSub(CaseContext& ctx) : ScriptedSub(ctx, ctx.key()) {}

  // Connects to the publisher's socket (RES-NAME-01/02 if impossible).
  void Connect();
  Conn& conn() { return *conn_; }
  void Send(std::span<const uint8_t> bytes);
  std::vector<uint8_t> HelloBytes(const HelloParams& p) const;
  // Sends HELLO_REQ and receives HELLO_RESP (status OK required unless `allow_error`).
  HelloInfo Hello(const HelloParams& p = {}, bool allow_error = false);
  // Maps the segment and checks everything a publisher must have written there
  // (SHM-LAYOUT-01/02, SHM-HDR-01/02/04/05, SHM-SLOT-02, SHM-ALIGN-01, VER-RSV-01, RES-PERM-01,
  // RES-LIVE-01, SHM-SUB-02 of our slot).
  void MapAndValidate();
  // Sends ATTACH_REQ and expects ATTACH_RESP(OK); returns start_seq (MSG-ARESP-01 checked).
  uint64_t Attach(std::optional<uint32_t> index = {}, std::optional<uint32_t> gen = {});
  // Hello + MapAndValidate + Attach.
  uint64_t Handshake(const HelloParams& p = {});

  // Waits for frame `n` (write_seq >= n), checks slot (n-1) mod slot_count holds it
  // (SHM-SLOT-03, SHM-FMETA-01/02/03, ACK-COMMIT-01) and returns the buffer checksum.
  uint64_t ReadFrame(uint64_t n, int timeout_ms = 5000);
  // Releases frame n: ack_seq = n (release), ack_futex + 1, wake if ack_waiting.
  void Ack(uint64_t n);
  // Raw store into our slot's ack_seq (hostile cases), with the futex bump.
  void StoreAckSeq(uint64_t v);

  StructView Header();
  StructView SubSlot(uint32_t i);
  StructView SlotDesc(uint32_t i);
  std::span<const uint8_t> Buffer(uint32_t slot, uint64_t bytes);
  ShmFile* segment() { return seg_.get(); }
  const HelloInfo& hello() const { return hello_; }
  uint32_t slot_count();

 private:
  CaseContext& ctx_;
  std::string key_;
  std::unique_ptr<Conn> conn_;
  std::unique_ptr<ShmFile> seg_;
  HelloInfo hello_;
};

// ---- the scripted publisher ----

struct PubParams {
  uint16_t proto = 1;
  uint32_t slot_count = 4;
  uint32_t max_subscribers = 4;
  uint64_t slot_bytes = 4096;
  bool ring = false;
  uint64_t ring_capacity = 8192;
  uint32_t max_packet_bytes = 1000;
  // The memory kind (a name of the twin's memory_kind enum). For CUDA kinds the segment has no
  // buffers (SHM-LAYOUT-01) and `before_ready` writes the slot descriptors' handles, which
  // SHM-SLOT-01 wants in place before READY.
  std::string kind = "HOST";
  // The subscriber slot HELLO_RESP assigns (below max_subscribers); 0 unless a case needs the
  // IUT to use another (an index written at the wrong offset reads the same while it is 0).
  uint32_t sub_index = 0;
  // HOST: bytes of the segment (file and segment_size) after the last buffer. SHM-LAYOUT-01 has
  // none, but SHM-VALID-01 asks a subscriber only that the last buffer lie inside segment_size.
  uint64_t tail_bytes = 0;
  // HOST: pages added to data_offset and to data_stride beyond SHM-LAYOUT-01's minimum (the
  // buffers move with them): a subscriber uses such a segment too (SHM-VALID-01, decision W4).
  uint64_t offset_pad_pages = 0;
  uint64_t stride_pad_pages = 0;
  std::function<void(class ScriptedPub&)> before_ready;
};

class ScriptedPub {
 public:
  ScriptedPub(CaseContext& ctx, PubParams p);
  // Creates the segment (state READY), the ring if asked, and the listening socket.
  void Create();
  // Starts the IUT subscriber with `args` (after --key K) and accepts its connection.
  Process& StartSub(const std::vector<std::string>& args);
  // The same for a case that judges a refusal itself: returns the subscriber, with conn() usable
  // only when *connected; an adapter that exits (77 included) or never connects within
  // `timeout_ms` leaves *connected false and ends nothing.
  Process& StartSubMaybe(const std::vector<std::string>& args, int timeout_ms, bool* connected);
  Conn& conn() { return *conn_; }
  // Receives HELLO_REQ and checks it (MSG-HELLO-01, TLV-FRAME-01, VER-RSV-01).
  TlvMsg ReadHello();
  // Reserves slot 0 (SHM-SUB-02) and returns a HELLO_RESP builder filled for OK.
  MessageBuilder HelloResp();
  // Receives ATTACH_REQ and checks index/generation (MSG-ATTACH-01).
  TlvMsg ReadAttach();
  // Marks slot 0 ACTIVE with start_seq = write_seq + 1 and sends ATTACH_RESP(OK), with `fds` as
  // SCM_RIGHTS when given (none belong there, KIND-07).
  uint64_t SendAttachOk(std::span<const int> fds = {});
  // Full happy handshake with the IUT subscriber. Returns start_seq.
  uint64_t Handshake();
  // After Handshake(): the subscriber adapter's attached event reports the session it made
  // (ADP-EVENT-03: proto, start_seq, packet_ring, kind). ExpectFrames calls it.
  void ExpectAttachedEvent(Process& sub);
  // The common start of a subscriber case: Create(), StartSub(args), Handshake(); returns the
  // IUT subscriber, attached and waiting for frame start_seq.
  Process& StartAttached(const std::vector<std::string>& args);
  // Publishes frame n = write_seq + 1 with the contract payload of `payload_bytes` (default:
  // slot_bytes), waiting (bounded) for the subscriber's ACK before reusing a slot. Returns n.
  uint64_t Publish(std::optional<uint64_t> payload_bytes = {});
  // Writes frame n's meta and buffer without committing (for hostile cases).
  void WriteFrame(uint64_t n, uint64_t payload_bytes);
  // Stores meta.seq, write_seq and bumps frame_futex; wakes waiters if frame_waiters != 0 and
  // `wake` (false: never wake, as if a hostile peer had zeroed the waiter count).
  void Commit(uint64_t n, uint64_t meta_seq, bool wake = true);
  // Checks the subscriber adapter printed frames first..first+count-1 in order with the contract
  // payload (ACK-READ-03, TLV/handshake happy path).
  void ExpectFrames(Process& sub, uint64_t first, uint64_t count, uint64_t size);

  // Packet ring writers (section 10.4), for v2 cases.
  void SetCodecParams(std::span<const uint8_t> data, uint32_t codec = 0);
  // Appends packet `seq` (contract payload unless `payload` given). Returns its position.
  // `announce` false: no packet_futex increment and no FUTEX_WAKE (a hostile or crashed writer;
  // a reader's bounded wait must still find the packet, SHM-ORDER-04).
  uint64_t WritePacket(uint64_t seq, bool key, const std::vector<uint8_t>* payload = nullptr,
                       uint32_t params_generation = 1, bool announce = true);
  uint64_t head_seq();
  uint64_t head_pos();
  // Returns the offset of the first ring byte that differs from what this scripted publisher
  // wrote there (its shadow copy), or -1 when none does: a reader never writes the ring
  // (PKT-READ-07). Only meaningful when the case writes the ring through Create, SetCodecParams
  // and WritePacket alone.
  long long RingDiff() const;

  StructView Header();
  StructView SubSlot(uint32_t i);
  StructView SlotDesc(uint32_t i);
  StructView Ring();
  ShmFile* segment() { return seg_.get(); }
  ShmFile* ring() { return ring_.get(); }
  const PubParams& params() const { return p_; }
  // After Handshake(): the caps the IUT subscriber's HELLO_REQ announced.
  uint64_t hello_caps() const { return hello_caps_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t data_stride() const { return data_stride_; }
  // Closes the socket like a crashed publisher (no DETACH).
  void Crash();

 private:
  CaseContext& ctx_;
  PubParams p_;
  std::unique_ptr<ShmFile> seg_;
  std::unique_ptr<ShmFile> ring_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Conn> conn_;
  void Shadow(size_t off, size_t len);

  uint64_t sub_slot_offset_ = 0, data_offset_ = 0, data_stride_ = 0;
  std::vector<uint8_t> ring_shadow_;
  uint32_t generation_ = 0;
  uint64_t negotiated_ = 0;  // the proto_version Handshake() negotiated (0: none yet)
  uint64_t hello_caps_ = 0;  // the caps of the IUT's HELLO_REQ that Handshake() read
  bool ring_offered_ = false;
  uint64_t start_seq_ = 0;
};

}  // namespace cuframes::conform

#endif  // CUFRAMES_CONFORMANCE_SRC_PEERS_H_
