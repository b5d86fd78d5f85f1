#include "peers.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "bytes.h"
#include "payload.h"
#include "shm_fence.h"

namespace cuframes::conform {

namespace {

uint64_t RoundUp(uint64_t v, uint64_t a) {
  return (v + a - 1) / a * a;
}

std::string RxName(Conn::Rx r) {
  switch (r) {
    case Conn::Rx::kMsg:
      return "a message";
    case Conn::Rx::kEof:
      return "end of file (connection closed)";
    case Conn::Rx::kTimeout:
      return "nothing (timeout)";
    case Conn::Rx::kTooLarge:
      return "a header announcing more than 4096 payload bytes";
  }
  return "?";
}

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 when unreadable.
uint64_t ProcStartTime(const std::string& pid = "self") {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string tok;
  for (int field = 3; rest >> tok; ++field) {
    if (field == 22) return std::stoull(tok);
  }
  return 0;
}

std::string Num(uint64_t v) {
  return std::to_string(v);
}

// How long a scripted peer blocks in one FUTEX_WAIT: far beyond any wake-up latency, so that a
// wait ending by timeout while its event is there is a missing FUTEX_WAKE; yet shorter than the
// default ACK timeout and linger, whose evictions and shut-down wakes would mask one.
constexpr int kWakeWaitMs = 1000;

}  // namespace

// ---- shared helpers ----

TlvMsg RecvOrFail(CaseContext& ctx, Conn& c, const std::string& req, const std::string& what,
                  int timeout_ms) {
  TlvMsg m;
  const Conn::Rx r = c.Recv(&m, In(timeout_ms));
  if (r != Conn::Rx::kMsg) {
    ctx.Fail(req, what + " within " + Num(static_cast<uint64_t>(timeout_ms)) + " ms", RxName(r),
             c.received());
  }
  const std::string bad = CheckWellFormed(ctx.spec(), m);
  if (!bad.empty()) {
    ctx.Fail("TLV-FRAME-01", "a well-formed message (" + what + ")", bad, m.raw);
  }
  ctx.Note("received " + Describe(ctx.spec(), m));
  return m;
}

uint64_t PayloadField(const Spec& spec, const std::string& st, const TlvMsg& m,
                      const std::string& field) {
  const FieldDef& f = spec.Field(st, field);
  return LoadLe(m.payload, f.offset, f.size);
}

bool AllZero(std::span<const uint8_t> b) {
  for (uint8_t x : b) {
    if (x) return false;
  }
  return true;
}

void ExpectErrorClose(CaseContext& ctx, Conn& c, const std::string& code, const std::string& req,
                      int timeout_ms) {
  const Spec& s = ctx.spec();
  TlvMsg m;
  const Conn::Rx r = c.Recv(&m, In(timeout_ms));
  if (r != Conn::Rx::kMsg) {
    ctx.Fail(req, "ERROR(" + code + ") then close", RxName(r), c.received());
  }
  ctx.Note("received " + Describe(s, m));
  if (s.MsgName(m.type) != "ERROR") {
    ctx.Fail(req, "ERROR(" + code + ") then close", Describe(s, m), m.raw);
  }
  const std::string bad = CheckWellFormed(s, m);
  if (!bad.empty()) ctx.Fail("TLV-ERR-03", "a well-formed ERROR", bad, m.raw);
  const uint64_t got = PayloadField(s, "ErrorMsg", m, "code");
  ctx.Expect(s.ErrKnown(got) && got != 0, "MSG-ERROR-01",
             "ERROR.code a nonzero value of the error table", Num(got), m.raw);
  ctx.Expect(got == s.Err(code), req, "ERROR(" + code + ")", Describe(s, m), m.raw);
  std::vector<TlvMsg> extra;
  const bool closed = c.WaitClosed(In(timeout_ms), &extra);
  ctx.Expect(closed, "MSG-ERROR-02", "the sender closes the connection after ERROR",
             closed
                 ? ""
                 : "connection still open after " + Num(static_cast<uint64_t>(timeout_ms)) + " ms");
  ctx.Expect(extra.empty(), "MSG-ERROR-02", "nothing after ERROR",
             extra.empty() ? "" : Describe(s, extra[0]),
             extra.empty() ? std::span<const uint8_t>() : extra[0].raw);
}

void ExpectCloseOnly(CaseContext& ctx, Conn& c, const std::string& req, int timeout_ms,
                     const std::string& allowed) {
  std::vector<TlvMsg> extra;
  const bool closed = c.WaitClosed(In(timeout_ms), &extra);
  for (const TlvMsg& m : extra) {
    ctx.Note("received " + Describe(ctx.spec(), m));
    ctx.Expect(ctx.spec().MsgName(m.type) == allowed, req,
               allowed.empty() ? "the connection closed with no message"
                               : "at most " + allowed + " before close",
               Describe(ctx.spec(), m), m.raw);
  }
  ctx.Expect(closed, req, "the connection is closed",
             "still open after " + Num(static_cast<uint64_t>(timeout_ms)) + " ms");
}

void WaitExitOrFail(CaseContext& ctx, Process& p, const std::string& req, int timeout_ms) {
  if (!p.WaitExit(In(timeout_ms))) {
    ctx.Fail(req, "the adapter finishes within " + Num(static_cast<uint64_t>(timeout_ms)) + " ms",
             "still running; last output:\n" + p.StdoutTail(4));
  }
  ctx.CheckUnsupported(p);
}

const nlohmann::json* FindError(Process& p) {
  for (const auto& e : p.events()) {
    if (e.value("event", "") == "error" && e.value("fatal", true)) return &e;
  }
  return nullptr;
}

void ExpectErrorName(CaseContext& ctx, const nlohmann::json* e) {
  if (e == nullptr || !e->contains("code") || !(*e)["code"].is_number_unsigned()) return;
  const uint64_t code = (*e)["code"].get<uint64_t>();
  if (!ctx.spec().ErrKnown(code)) return;  // the code check reports an unknown code
  const std::string want = ctx.spec().ErrName(code);
  ctx.Expect(
      e->contains("name") && (*e)["name"].is_string() && (*e)["name"].get<std::string>() == want,
      "ADP-FMT-01", "the error event's name \"" + want + "\" for code " + Num(code), e->dump());
}

void ExpectAdapterError(CaseContext& ctx, Process& p, const std::string& code,
                        const std::string& req, int timeout_ms, bool allow_deliveries) {
  const uint32_t want = ctx.spec().Err(code);
  WaitExitOrFail(ctx, p, req, timeout_ms);
  const nlohmann::json* e = FindError(p);
  ExpectErrorName(ctx, e);
  std::string got = "no error event; adapter " + p.StatusText();
  if (e) got = e->dump() + "; adapter " + p.StatusText();
  const bool code_ok = e && e->contains("code") && (*e)["code"].is_number_unsigned() &&
                       (*e)["code"].get<uint64_t>() == want;
  ctx.Expect(code_ok, req, "an error event with code " + Num(want) + " (" + code + ")", got);
  ctx.Expect(p.exit_code() != 0, req, "a nonzero exit status after the error", p.StatusText());
  for (const auto& ev : p.events()) {
    if (allow_deliveries) break;
    ctx.Expect(ev.value("event", "") != "frame" && ev.value("event", "") != "packet", req,
               "no frame or packet delivered before the " + code + " error", ev.dump());
  }
}

void ExpectExitCode(CaseContext& ctx, Process& p, int code, const std::string& why) {
  ctx.Expect(!p.running() && p.exit_code() == code, "ADP-EXIT-01",
             "exit status " + std::to_string(code) + " (" + why + ")", p.StatusText());
}

// ---- ScriptedSub ----

ScriptedSub::ScriptedSub(CaseContext& ctx, std::string key) : ctx_(ctx), key_(std::move(key)) {}

void ScriptedSub::Connect() {
  std::string error;
  const std::string dir = ctx_.SocketPath().substr(0, ctx_.SocketPath().rfind('/'));
  conn_ = Conn::Connect(dir + "/cuframes-" + key_ + ".sock", In(3000), &error);
  if (!conn_) {
    ctx_.Fail("RES-NAME-02",
              "a listening Unix SOCK_STREAM socket at " + dir + "/cuframes-" + key_ + ".sock",
              error);
  }
  ctx_.observer().AddConn(key_, conn_->probe(), "fd " + std::to_string(conn_->fd()));
}

void ScriptedSub::Send(std::span<const uint8_t> bytes) {
  // A publisher may legitimately close while we write a hostile message; the reply (or EOF) is
  // what the case judges, so a failed send is not itself an error.
  conn_->Send(bytes);
}

std::vector<uint8_t> ScriptedSub::HelloBytes(const HelloParams& p) const {
  const Spec& s = ctx_.spec();
  MessageBuilder b(s, "HELLO_REQ", p.length);
  b.Set("magic", p.magic ? p.magic : s.Const("HELLO_MAGIC"))
      .Set("min_proto", p.min_proto)
      .Set("max_proto", p.max_proto)
      .Set("kinds_mask", p.kinds_mask)
      .Set("lib_version", 0x000200)
      .Set("caps", p.caps);
  for (size_t i = s.Size("HelloReq"); i < b.payload().size(); ++i)
    b.payload()[i] = 0xee;
  return b.Encode();
}

HelloInfo ScriptedSub::Hello(const HelloParams& p, bool allow_error) {
  if (!conn_) Connect();
  conn_->SendWithFds(HelloBytes(p), p.pass_fds);  // a plain send when there are none
  const Spec& s = ctx_.spec();
  TlvMsg m = RecvOrFail(ctx_, *conn_, "SM-PUB-01", "HELLO_RESP", 3000);
  ctx_.Expect(s.MsgName(m.type) == "HELLO_RESP", "SM-PUB-01", "HELLO_RESP", Describe(s, m), m.raw);
  HelloInfo h;
  h.status = PayloadField(s, "HelloResp", m, "status");
  h.proto_version = PayloadField(s, "HelloResp", m, "proto_version");
  h.memory_kind = PayloadField(s, "HelloResp", m, "memory_kind");
  h.index = PayloadField(s, "HelloResp", m, "subscriber_index");
  h.generation = PayloadField(s, "HelloResp", m, "generation");
  h.caps = PayloadField(s, "HelloResp", m, "caps");
  h.initial_packet_seq = PayloadField(s, "HelloResp", m, "initial_packet_seq");
  h.initial_packet_pos = PayloadField(s, "HelloResp", m, "initial_packet_pos");
  h.msg = m;
  const FieldDef& rsv = s.Field("HelloResp", "reserved0");
  ctx_.Expect(AllZero(std::span<const uint8_t>(m.payload).subspan(rsv.offset, rsv.size)),
              "VER-RSV-01", "HELLO_RESP reserved0 zero", "nonzero", m.raw);
  if (h.status != 0) {
    ctx_.Expect(allow_error, "MSG-HRESP-01", "HELLO_RESP status OK", Describe(s, m), m.raw);
    // MSG-HRESP-02: every other field zero.
    ctx_.Expect(AllZero(std::span<const uint8_t>(m.payload).subspan(4)), "MSG-HRESP-02",
                "every field but status zero in a refusing HELLO_RESP", "nonzero bytes", m.raw);
  } else {
    ctx_.Expect(h.proto_version >= p.min_proto && h.proto_version <= p.max_proto, "VER-NEG-01",
                "proto_version within [" + Num(p.min_proto) + ", " + Num(p.max_proto) + "]",
                Num(h.proto_version), m.raw);
    ctx_.Expect(h.proto_version >= 2 ||
                    (h.caps == 0 && h.initial_packet_seq == 0 && h.initial_packet_pos == 0),
                "MSG-HRESP-03", "caps and initial_packet_* zero when version 1 is negotiated",
                "caps=" + Num(h.caps) + " seq=" + Num(h.initial_packet_seq), m.raw);
    ctx_.Expect(h.memory_kind >= 1 && ((p.kinds_mask >> (h.memory_kind - 1)) & 1), "KIND-01",
                "memory_kind one of the offered kinds (mask " + Num(p.kinds_mask) + ")",
                Num(h.memory_kind), m.raw);
    ctx_.Expect((p.caps & 1) || !(h.caps & 1), "PKT-HELLO-01",
                "caps bit 0 clear when WANT_PACKETS was not asked", Num(h.caps), m.raw);
  }
  hello_ = h;
  return h;
}

StructView ScriptedSub::Header() {
  return StructView(ctx_.spec(), "SegmentHeader", seg_->span());
}

StructView ScriptedSub::SubSlot(uint32_t i) {
  return StructView(ctx_.spec(), "SubscriberSlot", seg_->span(),
                    Header().Get("sub_slot_offset") + size_t{128} * i);
}

StructView ScriptedSub::SlotDesc(uint32_t i) {
  return StructView(ctx_.spec(), "SlotDescriptor", seg_->span(),
                    Header().Get("slot_desc_offset") + ctx_.spec().Size("SlotDescriptor") * i);
}

uint32_t ScriptedSub::slot_count() {
  return static_cast<uint32_t>(Header().Get("slot_count"));
}

std::span<const uint8_t> ScriptedSub::Buffer(uint32_t slot, uint64_t bytes) {
  StructView h = Header();
  const uint64_t off = h.Get("data_offset") + h.Get("data_stride") * slot;
  if (off > seg_->size() || seg_->size() - off < bytes) {
    ctx_.Fail("SHM-LAYOUT-01", "buffer " + Num(slot) + " inside the segment",
              "offset " + Num(off) + " + " + Num(bytes) + " > " + Num(seg_->size()));
  }
  return {seg_->data() + off, bytes};
}

void ScriptedSub::MapAndValidate() {
  const Spec& s = ctx_.spec();
  const std::string path = "/dev/shm/cuframes-" + key_;
  std::string error;
  seg_ = ShmFile::Open(path, true, &error);
  if (!seg_) ctx_.Fail("RES-NAME-01", "the segment " + path + " exists after HELLO_RESP", error);
  const auto bytes = seg_->span();
  if (bytes.size() < s.Size("SegmentHeader")) {
    ctx_.Fail("SHM-LAYOUT-02", "a segment of at least the header size",
              Num(bytes.size()) + " bytes", bytes);
  }
  const int mode = ShmFile::FileMode(path);
  ctx_.Expect(mode == 0600 || mode == 0660, "RES-PERM-01", "segment mode 0600 (or 0660)",
              "0" + std::to_string((mode >> 6) & 7) + std::to_string((mode >> 3) & 7) +
                  std::to_string(mode & 7));
  ctx_.Expect(ShmFile::LockedByOther(path), "RES-LIVE-01",
              "the publisher holds an exclusive flock on the segment", "no lock held");
  StructView h = Header();
  const auto hdr = h.All();
  auto expect_field = [&](const char* field, uint64_t want, const char* req) {
    const uint64_t got = h.Get(field);
    ctx_.Expect(got == want, req, std::string("SegmentHeader.") + field + " = " + Num(want),
                Num(got), hdr);
  };
  expect_field("layout_version", s.Const("SEGMENT_LAYOUT_VERSION"), "SHM-HDR-01");
  expect_field("magic", s.Const("SEGMENT_MAGIC"), "SHM-HDR-01");
  expect_field("header_size", s.Const("SEGMENT_HEADER_SIZE"), "SHM-HDR-01");
  expect_field("state", s.Enum("segment_state", "READY"), "RES-CREATE-04");
  expect_field("memory_kind", hello_.memory_kind, "KIND-01");
  const uint64_t slots = h.Get("slot_count"), subs = h.Get("max_subscribers");
  ctx_.Expect(slots >= s.Const("MIN_SLOT_COUNT") && slots <= s.Const("MAX_SLOT_COUNT"),
              "SHM-HDR-02", "slot_count in 2..256", Num(slots), hdr);
  ctx_.Expect(subs >= 1 && subs <= s.Const("MAX_SUBSCRIBERS"), "SHM-HDR-02",
              "max_subscribers in 1..64", Num(subs), hdr);
  ctx_.Expect((h.Get("flags") & ~uint64_t{s.Enum("segment_flags", "PACKET_RING")}) == 0,
              "VER-RSV-01", "SegmentHeader.flags only known bits", Num(h.Get("flags")), hdr);
  const uint64_t newest = static_cast<uint64_t>(ctx_.spec().MaxProto());
  ctx_.Expect(h.Get("proto_version") >= 1 && h.Get("proto_version") <= newest, "SHM-HDR-02",
              "proto_version 1.." + Num(newest), Num(h.Get("proto_version")), hdr);
  ctx_.Expect(h.Get("proto_version") >= hello_.proto_version, "SHM-HDR-05",
              "proto_version (highest spoken) >= the negotiated " + Num(hello_.proto_version),
              Num(h.Get("proto_version")), hdr);
  const uint64_t pixel = h.Get("pixel_format");
  ctx_.Expect(pixel <= 4, "SHM-HDR-02", "pixel_format a value of the enum", Num(pixel), hdr);
  ctx_.Expect(h.Get("publisher_pid") != 0, "SHM-HDR-02", "publisher_pid set", "0", hdr);
  // publisher_start_time is field 22 of the publisher process's /proc/<pid>/stat (the header's
  // table): a reader uses the pair to tell a reused pid from the publisher (RES-LIVE-03). The
  // publisher is alive while we hold its connection, so its stat file is there to compare.
  if (const uint64_t pid = h.Get("publisher_pid"); pid != 0) {
    const uint64_t want = ProcStartTime(std::to_string(pid));
    ctx_.Expect(want == 0 || h.Get("publisher_start_time") == want, "SHM-HDR-02",
                "publisher_start_time " + Num(want) + " (field 22 of /proc/" + Num(pid) + "/stat)",
                Num(h.Get("publisher_start_time")), hdr);
  }
  ctx_.Expect(h.Get("slot_bytes") >= 1, "SHM-HDR-02", "slot_bytes >= 1", "0", hdr);
  const uint64_t sdo = s.Size("SegmentHeader");
  const uint64_t sso = sdo + s.Size("SlotDescriptor") * slots;
  expect_field("slot_desc_offset", sdo, "SHM-LAYOUT-01");
  expect_field("sub_slot_offset", sso, "SHM-LAYOUT-01");
  const uint64_t align = s.Const("HOST_DATA_ALIGN");
  uint64_t size = sso + s.Size("SubscriberSlot") * subs;
  if (hello_.memory_kind == s.Enum("memory_kind", "HOST")) {
    const uint64_t data = RoundUp(size, align), stride = RoundUp(h.Get("slot_bytes"), align);
    expect_field("data_offset", data, "SHM-LAYOUT-01");
    expect_field("data_stride", stride, "SHM-LAYOUT-01");
    size = data + slots * stride;
  } else {
    expect_field("data_offset", 0, "SHM-LAYOUT-01");
    expect_field("data_stride", 0, "SHM-LAYOUT-01");
  }
  expect_field("segment_size", size, "SHM-LAYOUT-01");
  ctx_.Expect(static_cast<uint64_t>(ShmFile::FileSize(path)) == size, "SHM-LAYOUT-02",
              "file size = segment_size " + Num(size),
              Num(static_cast<uint64_t>(ShmFile::FileSize(path))));
  ctx_.Expect(sso % 64 == 0, "SHM-ALIGN-01", "subscriber slots 64-byte aligned", Num(sso));
  for (const char* r : {"reserved0", "reserved1", "reserved2"}) {
    ctx_.Expect(AllZero(h.Bytes(r)), "VER-RSV-01", std::string("SegmentHeader.") + r + " zero",
                "nonzero", hdr);
  }
  for (uint32_t i = 0; i < slots; ++i) {
    StructView d = SlotDesc(i);
    if (hello_.memory_kind == s.Enum("memory_kind", "HOST")) {
      ctx_.Expect(AllZero(d.Bytes("mem_handle")) && AllZero(d.Bytes("ready_event")), "SHM-SLOT-02",
                  "HOST slot " + Num(i) + " handles all zero", "nonzero", d.All(), d.base());
    }
  }
  ctx_.Expect(hello_.index < subs, "MSG-HRESP-01",
              "subscriber_index < max_subscribers " + Num(subs), Num(hello_.index));
  StructView me = SubSlot(static_cast<uint32_t>(hello_.index));
  const auto mine = me.All();
  ctx_.Expect(me.Get("state") == s.Enum("subscriber_slot_state", "ATTACHING"), "SHM-SUB-02",
              "our subscriber slot ATTACHING after HELLO_RESP", "state " + Num(me.Get("state")),
              mine, me.base());
  ctx_.Expect(me.Get("generation") == hello_.generation, "MSG-HRESP-01",
              "slot generation = HELLO_RESP generation " + Num(hello_.generation),
              Num(me.Get("generation")), mine, me.base());
  ctx_.Expect(me.Get("ack_seq") == 0 && me.Get("start_seq") == 0 && me.Get("flags") == 0 &&
                  AllZero(me.Bytes("ack_event")),
              "SHM-SUB-02", "ack_seq, flags, start_seq and ack_event zeroed on reservation",
              "nonzero", mine, me.base());
  ctx_.Expect(me.Get("pid") == static_cast<uint64_t>(getpid()), "SHM-SUB-02",
              "slot pid = our pid " + Num(static_cast<uint64_t>(getpid())) + " (SO_PEERCRED)",
              Num(me.Get("pid")), mine, me.base());
}

uint64_t ScriptedSub::Attach(std::optional<uint32_t> index, std::optional<uint32_t> gen) {
  const Spec& s = ctx_.spec();
  MessageBuilder b(s, "ATTACH_REQ");
  b.Set("subscriber_index", index.value_or(static_cast<uint32_t>(hello_.index)))
      .Set("generation", gen.value_or(static_cast<uint32_t>(hello_.generation)));
  Send(b.Encode());
  TlvMsg m = RecvOrFail(ctx_, *conn_, "SM-PUB-01", "ATTACH_RESP", 3000);
  ctx_.Expect(s.MsgName(m.type) == "ATTACH_RESP", "SM-PUB-01", "ATTACH_RESP(OK)", Describe(s, m),
              m.raw);
  const uint64_t status = PayloadField(s, "AttachResp", m, "status");
  const uint64_t start = PayloadField(s, "AttachResp", m, "start_seq");
  ctx_.Expect(status == 0, "SM-PUB-01", "ATTACH_RESP status OK", Describe(s, m), m.raw);
  ctx_.Expect(
      AllZero(std::span<const uint8_t>(m.payload).subspan(s.Off("AttachResp", "reserved0"), 4)),
      "VER-RSV-01", "ATTACH_RESP reserved0 zero", "nonzero", m.raw);
  StructView me = SubSlot(static_cast<uint32_t>(hello_.index));
  const uint64_t ws = Header().Get("write_seq");
  ctx_.Expect(me.Get("state") == s.Enum("subscriber_slot_state", "ACTIVE"), "MSG-ARESP-01",
              "slot state ACTIVE before ATTACH_RESP(OK)", Num(me.Get("state")), me.All(),
              me.base());
  ctx_.Expect(me.Get("start_seq") == start, "MSG-ARESP-01",
              "slot start_seq = ATTACH_RESP start_seq " + Num(start), Num(me.Get("start_seq")),
              me.All(), me.base());
  ctx_.Expect(start >= 1 && start <= ws + 1, "MSG-ARESP-01",
              "start_seq = write_seq + 1 at attach (write_seq now " + Num(ws) + ")", Num(start),
              m.raw);
  return start;
}

uint64_t ScriptedSub::Handshake(const HelloParams& p) {
  Hello(p);
  MapAndValidate();
  return Attach();
}

uint64_t ScriptedSub::ReadFrame(uint64_t n, int timeout_ms) {
  const Spec& s = ctx_.spec();
  StructView h = Header();
  const Deadline d = In(timeout_ms);
  uint8_t* futex = h.Bytes("frame_futex").data();
  // The waiter protocol of SHM-ORDER-04: load the word, announce ourselves in frame_waiters,
  // re-check, then FUTEX_WAIT. The wait is long on purpose (up to the whole deadline): a
  // conforming publisher wakes every announced waiter (SHM-ORDER-02), so a wait that ends by
  // timeout while the frame is there is a missing FUTEX_WAKE, not a slow publisher. A word that
  // changed before the wait (EAGAIN) is the legit race and is simply re-checked.
  uint8_t* waiters = h.Bytes("frame_waiters").data();
  std::atomic_ref<uint32_t> count(*reinterpret_cast<uint32_t*>(waiters));
  for (;;) {
    const uint32_t f = std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(futex)).load();
    if (h.Get("write_seq") >= n) break;
    if (Clock::now() >= d) {
      ctx_.Fail("ACK-COMMIT-01",
                "write_seq reaches " + Num(n) + " within " +
                    Num(static_cast<uint64_t>(timeout_ms)) + " ms",
                "write_seq " + Num(h.Get("write_seq")), h.All());
    }
    count.fetch_add(1);
    WaitEnd end = WaitEnd::kChanged;
    if (h.Get("write_seq") < n) end = FutexWait(futex, f, MsLeft(d, kWakeWaitMs));
    count.fetch_sub(1);
    if (end == WaitEnd::kTimeout && h.Get("write_seq") >= n) {
      ctx_.Fail("SHM-ORDER-02",
                "the publisher increments frame_futex and FUTEX_WAKEs the announced waiter "
                "(frame_waiters was nonzero) when it commits frame " +
                    Num(n) + " (ACK-COMMIT-01)",
                "frame " + Num(n) + " committed (write_seq " + Num(h.Get("write_seq")) +
                    ") but our FUTEX_WAIT on frame_futex (value " + Num(f) +
                    ") ended by timeout, not by a wake-up",
                h.All());
    }
  }
  const uint32_t slot = static_cast<uint32_t>((n - 1) % slot_count());
  StructView d2 = SlotDesc(slot);
  StructView meta(s, "FrameMeta", seg_->span(), d2.base());
  const uint64_t seq = meta.Get("seq");
  ctx_.Expect(seq >= n, "SHM-SLOT-03",
              "frame " + Num(n) + " in slot " + Num(slot) + " once write_seq >= " + Num(n),
              "meta.seq " + Num(seq), meta.All(), meta.base());
  ctx_.Expect(seq == n, "ACK-REUSE-01",
              "slot " + Num(slot) + " keeps frame " + Num(n) + " until we release it",
              "overwritten by frame " + Num(seq) + " before our ACK", meta.All(), meta.base());
  const uint64_t bytes = meta.Get("payload_bytes");
  ctx_.Expect(bytes <= h.Get("slot_bytes"), "SHM-FMETA-02", "payload_bytes <= slot_bytes",
              Num(bytes), meta.All(), meta.base());
  ctx_.Expect((meta.Get("flags") & ~uint64_t{1}) == 0, "SHM-FMETA-03",
              "FrameMeta.flags only END_OF_STREAM", Num(meta.Get("flags")), meta.All(),
              meta.base());
  ctx_.Expect(AllZero(meta.Bytes("reserved0")) && AllZero(meta.Bytes("reserved1")), "VER-RSV-01",
              "FrameMeta reserved bytes zero", "nonzero", meta.All(), meta.base());
  const auto buf = Buffer(slot, bytes);
  const uint64_t sum = Fnv1a64(buf);
  if (sum != FrameChecksum(n, bytes)) {
    std::vector<uint8_t> want(bytes);
    FillFrame(n, want);
    size_t diff = 0;
    while (diff < bytes && buf[diff] == want[diff])
      ++diff;
    const size_t from = diff > 16 ? diff - 16 : 0;
    ctx_.Fail("SHM-FMETA-01",
              "frame " + Num(n) + " payload per the contract formula, checksum " +
                  Hex64(FrameChecksum(n, bytes)),
              "checksum " + Hex64(sum) + ", first difference at byte " + Num(diff),
              buf.subspan(from, std::min<size_t>(64, bytes - from)), from);
  }
  return sum;
}

void ScriptedSub::StoreAckSeq(uint64_t v) {
  SubSlot(static_cast<uint32_t>(hello_.index)).Set("ack_seq", v);
  StructView h = Header();
  AtomicIncrement32(h.Bytes("ack_futex").data());
  FutexWakeAll(h.Bytes("ack_futex").data());
}

void ScriptedSub::Ack(uint64_t n) {
  StoreAckSeq(n);
}

// ---- ScriptedPub ----

ScriptedPub::ScriptedPub(CaseContext& ctx, PubParams p) : ctx_(ctx), p_(p) {}

StructView ScriptedPub::Header() {
  return StructView(ctx_.spec(), "SegmentHeader", seg_->span());
}
StructView ScriptedPub::SubSlot(uint32_t i) {
  return StructView(ctx_.spec(), "SubscriberSlot", seg_->span(), sub_slot_offset_ + 128 * i);
}
StructView ScriptedPub::SlotDesc(uint32_t i) {
  return StructView(ctx_.spec(), "SlotDescriptor", seg_->span(),
                    ctx_.spec().Size("SegmentHeader") + ctx_.spec().Size("SlotDescriptor") * i);
}
StructView ScriptedPub::Ring() {
  return StructView(ctx_.spec(), "PacketRingHeader", ring_->span());
}

void ScriptedPub::Create() {
  const Spec& s = ctx_.spec();
  sub_slot_offset_ = s.Size("SegmentHeader") + s.Size("SlotDescriptor") * p_.slot_count;
  const uint64_t align = s.Const("HOST_DATA_ALIGN");
  const bool host = p_.kind == "HOST";
  data_offset_ =
      host ? RoundUp(sub_slot_offset_ + s.Size("SubscriberSlot") * p_.max_subscribers, align) +
                 p_.offset_pad_pages * align
           : 0;
  data_stride_ = host ? RoundUp(p_.slot_bytes, align) + p_.stride_pad_pages * align : 0;
  const uint64_t size = host ? data_offset_ + p_.slot_count * data_stride_ + p_.tail_bytes
                             : sub_slot_offset_ + s.Size("SubscriberSlot") * p_.max_subscribers;
  std::string error;
  seg_ = ShmFile::Create(ctx_.SegmentPath(), size, &error);
  if (!seg_) ctx_.Fail("HARNESS", "the scripted publisher creates its segment", error);
  StructView h = Header();
  h.Set("layout_version", s.Const("SEGMENT_LAYOUT_VERSION"));
  h.Set("magic", s.Const("SEGMENT_MAGIC"));
  h.Set("state", s.Enum("segment_state", "INIT"));
  h.Set("header_size", s.Const("SEGMENT_HEADER_SIZE"));
  h.Set("proto_version", p_.proto);
  h.Set("memory_kind", s.Enum("memory_kind", p_.kind));
  h.Set("slot_count", p_.slot_count);
  h.Set("max_subscribers", p_.max_subscribers);
  h.Set("flags", p_.ring ? s.Enum("segment_flags", "PACKET_RING") : 0);
  h.Set("publisher_pid", static_cast<uint64_t>(getpid()));
  h.Set("publisher_start_time", ProcStartTime());
  h.Set("segment_size", size);
  h.Set("lib_version", 0x000200);
  h.Set("slot_bytes", p_.slot_bytes);
  h.Set("slot_desc_offset", s.Size("SegmentHeader"));
  h.Set("sub_slot_offset", sub_slot_offset_);
  h.Set("data_offset", data_offset_);
  h.Set("data_stride", data_stride_);
  if (p_.ring) {
    const uint64_t ring_size = s.Const("RING_DATA_OFFSET") + p_.ring_capacity;
    ring_ = ShmFile::Create(ctx_.RingPath(), ring_size, &error);
    if (!ring_) ctx_.Fail("HARNESS", "the scripted publisher creates its packet ring", error);
    StructView r = Ring();
    r.Set("layout_version", s.Const("RING_LAYOUT_VERSION"));
    r.Set("magic", s.Const("RING_MAGIC"));
    r.Set("header_size", s.Const("RING_HEADER_SIZE"));
    r.Set("capacity", p_.ring_capacity);
    r.Set("data_offset", s.Const("RING_DATA_OFFSET"));
    r.Set("max_packet_bytes", p_.max_packet_bytes);
    r.Set("codec", 0);
    r.Set("segment_size", ring_size);
    r.Set("state", s.Enum("segment_state", "READY"));
    ring_shadow_.assign(ring_->data(), ring_->data() + ring_->size());
  }
  if (p_.before_ready) p_.before_ready(*this);
  h.Set("state", s.Enum("segment_state", "READY"));
  listener_ = Listener::Bind(ctx_.SocketPath(), &error);
  if (!listener_) ctx_.Fail("HARNESS", "the scripted publisher listens", error);
  // The IUT subscriber's writes into our segment are judged for the whole case.
  ctx_.observer().Watch(ctx_.key(), IutRole::kSubscriber);
}

Process& ScriptedPub::StartSub(const std::vector<std::string>& args) {
  std::vector<std::string> a = {"--key", ctx_.key()};
  a.insert(a.end(), args.begin(), args.end());
  Process& p = ctx_.StartSubscriber(a);
  conn_ = listener_->Accept(In(5000), &p);
  if (!conn_) {
    ctx_.CheckUnsupported(p);
    ctx_.Fail("RES-NAME-01", "the subscriber connects to " + ctx_.SocketPath(),
              "no connection; adapter " + p.StatusText());
  }
  return p;
}

Process& ScriptedPub::StartSubMaybe(const std::vector<std::string>& args, int timeout_ms,
                                    bool* connected) {
  std::vector<std::string> a = {"--key", ctx_.key()};
  a.insert(a.end(), args.begin(), args.end());
  Process& p = ctx_.StartSubscriber(a);
  conn_ = listener_->Accept(In(timeout_ms), &p);
  *connected = conn_ != nullptr;
  return p;
}

TlvMsg ScriptedPub::ReadHello() {
  const Spec& s = ctx_.spec();
  TlvMsg m = RecvOrFail(ctx_, *conn_, "MSG-HELLO-01", "HELLO_REQ as the first message", 3000);
  ctx_.Expect(s.MsgName(m.type) == "HELLO_REQ", "MSG-HELLO-01", "HELLO_REQ first", Describe(s, m),
              m.raw);
  const uint64_t magic = PayloadField(s, "HelloReq", m, "magic");
  const uint64_t lo = PayloadField(s, "HelloReq", m, "min_proto");
  const uint64_t hi = PayloadField(s, "HelloReq", m, "max_proto");
  const uint64_t kinds = PayloadField(s, "HelloReq", m, "kinds_mask");
  ctx_.Expect(magic == s.Const("HELLO_MAGIC"), "MSG-HELLO-01", "HELLO_REQ magic 0x52465543",
              Hex64(magic), m.raw);
  ctx_.Expect(lo >= 1 && hi >= lo, "MSG-HELLO-01", "1 <= min_proto <= max_proto",
              Num(lo) + ".." + Num(hi), m.raw);
  // A subscriber started for a CUDA kind (--kind cuda) offers that kind alone; the CUDA cases
  // check that themselves.
  ctx_.Expect(p_.kind != "HOST" || (kinds & (1u << (s.Enum("memory_kind", "HOST") - 1))), "KIND-02",
              "kinds_mask offers HOST", Num(kinds), m.raw);
  const FieldDef& rsv = s.Field("HelloReq", "reserved0");
  ctx_.Expect(AllZero(std::span<const uint8_t>(m.payload).subspan(rsv.offset, rsv.size)),
              "VER-RSV-01", "HELLO_REQ reserved0 zero", "nonzero", m.raw);
  // MSG-HELLO-06: only the caps bits max_proto defines (a max_proto beyond the twin's versions
  // may define bits this harness does not know: not judged).
  if (hi <= static_cast<uint64_t>(s.MaxProto())) {
    const uint64_t caps = PayloadField(s, "HelloReq", m, "caps");
    uint64_t defined = 0;
    if (hi >= 2) defined |= s.Enum("hello_req_caps", "WANT_PACKETS");
    if (hi >= 3) defined |= s.Enum("hello_req_caps", "WAKE_FORWARD");
    ctx_.Expect(
        (caps & ~defined) == 0, hi < 2 ? "VER-RSV-01" : "MSG-HELLO-06",
        "HELLO_REQ caps holds only bits max_proto " + Num(hi) + " defines (" + Hex64(defined) + ")",
        Hex64(caps), m.raw);
  }
  return m;
}

MessageBuilder ScriptedPub::HelloResp() {
  const Spec& s = ctx_.spec();
  StructView slot = SubSlot(p_.sub_index);
  slot.Set("ack_seq", 0);
  slot.Set("start_seq", 0);
  slot.Set("flags", 0);
  std::fill(slot.Bytes("ack_event").begin(), slot.Bytes("ack_event").end(), 0);
  slot.Set("generation", ++generation_);
  slot.Set("state", s.Enum("subscriber_slot_state", "ATTACHING"));
  MessageBuilder b(s, "HELLO_RESP");
  b.Set("status", 0)
      .Set("proto_version", 1)
      .Set("memory_kind", s.Enum("memory_kind", p_.kind))
      .Set("subscriber_index", p_.sub_index)
      .Set("generation", generation_)
      .Set("lib_version", 0x000200);
  return b;
}

TlvMsg ScriptedPub::ReadAttach() {
  const Spec& s = ctx_.spec();
  TlvMsg m = RecvOrFail(ctx_, *conn_, "MSG-ATTACH-01", "ATTACH_REQ after HELLO_RESP(OK)", 3000);
  ctx_.Expect(s.MsgName(m.type) == "ATTACH_REQ", "MSG-ATTACH-01", "ATTACH_REQ", Describe(s, m),
              m.raw);
  ctx_.Expect(
      PayloadField(s, "AttachReq", m, "subscriber_index") == p_.sub_index &&
          PayloadField(s, "AttachReq", m, "generation") == generation_,
      "MSG-ATTACH-01",
      "ATTACH_REQ echoes index " + Num(p_.sub_index) + " and generation " + Num(generation_),
      Describe(s, m), m.raw);
  ctx_.Expect(AllZero(std::span<const uint8_t>(m.payload).subspan(12, 4)), "VER-RSV-01",
              "ATTACH_REQ reserved0 zero", "nonzero", m.raw);
  return m;
}

uint64_t ScriptedPub::SendAttachOk(std::span<const int> fds) {
  const Spec& s = ctx_.spec();
  const uint64_t start = Header().Get("write_seq") + 1;
  SubSlot(p_.sub_index).Set("start_seq", start);
  SubSlot(p_.sub_index).Set("state", s.Enum("subscriber_slot_state", "ACTIVE"));
  MessageBuilder b(s, "ATTACH_RESP");
  b.Set("status", 0).Set("start_seq", start);
  conn_->SendWithFds(b.Encode(), fds);
  return start;
}

Process& ScriptedPub::StartAttached(const std::vector<std::string>& args) {
  Create();
  Process& sub = StartSub(args);
  Handshake();
  return sub;
}

uint64_t ScriptedPub::Handshake() {
  const TlvMsg hello = ReadHello();
  const uint64_t max = PayloadField(ctx_.spec(), "HelloReq", hello, "max_proto");
  const uint64_t want = PayloadField(ctx_.spec(), "HelloReq", hello, "caps");
  hello_caps_ = want;
  MessageBuilder b = HelloResp();
  const uint64_t v = std::min<uint64_t>(max, p_.proto);
  b.Set("proto_version", v);
  if (v >= 2 && p_.ring && (want & 1)) {
    b.Set("caps", 1);
    b.Set("initial_packet_seq", head_seq() + 1).Set("initial_packet_pos", head_pos());
    StructView r = Ring();
    if (r.Get("last_key_seq") != 0) {
      b.Set("initial_packet_seq", r.Get("last_key_seq"))
          .Set("initial_packet_pos", r.Get("last_key_pos"));
    }
  }
  conn_->Send(b.Encode());
  ReadAttach();
  negotiated_ = v;
  ring_offered_ = v >= 2 && p_.ring && (want & 1);
  start_seq_ = SendAttachOk();
  return start_seq_;
}

void ScriptedPub::ExpectAttachedEvent(Process& sub) {
  if (negotiated_ == 0) ctx_.Fail("HARNESS", "ExpectAttachedEvent after Handshake()", "none");
  size_t from = 0;
  const nlohmann::json* e = sub.WaitEvent("attached", In(3000), &from);
  const std::string kind = p_.kind == "HOST" ? "host" : p_.kind == "CUDA_IPC" ? "cuda" : "";
  const bool ok = e != nullptr && e->value("proto", uint64_t{0}) == negotiated_ &&
                  e->value("start_seq", uint64_t{0}) == start_seq_ &&
                  e->value("packet_ring", !ring_offered_) == ring_offered_ &&
                  (kind.empty() || e->value("kind", std::string()) == kind);
  ctx_.Expect(ok, "ADP-EVENT-03",
              "attached with proto " + std::to_string(negotiated_) + ", start_seq " +
                  std::to_string(start_seq_) + ", packet_ring " +
                  (ring_offered_ ? "true" : "false") + (kind.empty() ? "" : ", kind " + kind) +
                  " (the session the handshake made)",
              e ? e->dump() : "no attached event; adapter " + sub.StatusText());
}

void ScriptedPub::WriteFrame(uint64_t n, uint64_t payload_bytes) {
  const uint32_t slot = static_cast<uint32_t>((n - 1) % p_.slot_count);
  uint8_t* buf = seg_->data() + data_offset_ + data_stride_ * slot;
  FillFrame(n, {buf, std::min<uint64_t>(payload_bytes, data_stride_)});
  StructView meta(ctx_.spec(), "FrameMeta", seg_->span(), SlotDesc(slot).base());
  meta.Set("timestamp_ns", n * 1000);
  meta.Set("payload_bytes", payload_bytes);
  meta.Set("flags", 0);
  meta.Set("user_data", n);
}

void ScriptedPub::Commit(uint64_t n, uint64_t meta_seq, bool wake) {
  const uint32_t slot = static_cast<uint32_t>((n - 1) % p_.slot_count);
  StructView(ctx_.spec(), "FrameMeta", seg_->span(), SlotDesc(slot).base()).Set("seq", meta_seq);
  StructView h = Header();
  h.Set("write_seq", n);
  std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(h.Bytes("frame_futex").data()))
      .fetch_add(1);
  // SHM-ORDER-02: wake only when a subscriber announced itself in frame_waiters, as an optimized
  // publisher does; a subscriber that waits without announcing must still see the frame within
  // its bounded wait (SHM-ORDER-04).
  if (wake && h.Get("frame_waiters") != 0) FutexWakeAll(h.Bytes("frame_futex").data());
}

uint64_t ScriptedPub::Publish(std::optional<uint64_t> payload_bytes) {
  StructView h = Header();
  const uint64_t n = h.Get("write_seq") + 1;
  StructView me = SubSlot(p_.sub_index);
  const auto ack_ok = [&](uint64_t m) {
    const uint64_t ack = me.Get("ack_seq");
    ctx_.Expect(ack <= h.Get("write_seq"), "ACK-REL-03",
                "ack_seq <= the highest seq delivered (" + Num(h.Get("write_seq")) + ")", Num(ack),
                me.All(), me.base());
    return me.Get("state") != ctx_.spec().Enum("subscriber_slot_state", "ACTIVE") ||
           me.Get("start_seq") > m || ack >= m;
  };
  if (n > p_.slot_count) {
    const uint64_t m = n - p_.slot_count;
    const Deadline d = In(5000);
    uint8_t* futex = h.Bytes("ack_futex").data();
    // Announce the wait (sequentially consistent, the other half of the subscriber's
    // "increment ack_futex, then wake if ack_waiting") and wait long: a subscriber that stores
    // its ACK must wake us (ACK-REL-01, SHM-ORDER-02), so a timeout with the ACK there is a
    // missing wake-up.
    std::atomic_ref<uint32_t> waiting(*reinterpret_cast<uint32_t*>(h.Bytes("ack_waiting").data()));
    waiting.store(1);
    for (;;) {
      const uint32_t f = std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(futex)).load();
      if (ack_ok(m)) break;
      if (Clock::now() >= d) {
        ctx_.Fail("ACK-REL-01",
                  "the subscriber releases frame " + Num(m) + " (ack_seq >= " + Num(m) +
                      ") so the publisher can reuse its slot",
                  "ack_seq " + Num(me.Get("ack_seq")) + " after 5000 ms", me.All(), me.base());
      }
      const WaitEnd end = FutexWait(futex, f, MsLeft(d, kWakeWaitMs));
      if (end == WaitEnd::kTimeout && ack_ok(m)) {
        ctx_.Fail("ACK-REL-01",
                  "the subscriber increments ack_futex and FUTEX_WAKEs the publisher "
                  "(ack_waiting = 1) when it stores ack_seq = " +
                      Num(m) + " (SHM-ORDER-02)",
                  "ack_seq " + Num(me.Get("ack_seq")) + " stored, ack_futex " +
                      Num(h.Get("ack_futex")) + " (was " + Num(f) +
                      "), but our FUTEX_WAIT ended by timeout, not by a wake-up",
                  me.All(), me.base());
      }
    }
    waiting.store(0);
  }
  WriteFrame(n, payload_bytes.value_or(p_.slot_bytes));
  Commit(n, n);
  return n;
}

void ScriptedPub::ExpectFrames(Process& sub, uint64_t first, uint64_t count, uint64_t size) {
  size_t from = 0;
  for (uint64_t n = first; n < first + count; ++n) {
    const nlohmann::json* e = sub.WaitEvent("frame", In(5000), &from);
    if (!e) {
      ctx_.CheckUnsupported(sub);
      const nlohmann::json* err = FindError(sub);
      ctx_.Fail("ACK-READ-03", "frame event for seq " + Num(n),
                "none; adapter " + sub.StatusText() + (err ? "; " + err->dump() : ""));
    }
    const uint64_t seq = e->value("seq", uint64_t{0});
    ctx_.Expect(seq == n, "ACK-READ-03", "frame seq " + Num(n) + " (in order, no skip/repeat)",
                e->dump());
    ctx_.Expect(e->value("size", uint64_t{0}) == size, "SHM-FMETA-01", "frame size " + Num(size),
                e->dump());
    ctx_.Expect(e->value("checksum", std::string()) == Hex64(FrameChecksum(n, size)), "ACK-HOST-01",
                "frame " + Num(n) + " checksum " + Hex64(FrameChecksum(n, size)), e->dump());
  }
  if (negotiated_ != 0) ExpectAttachedEvent(sub);
}

uint64_t ScriptedPub::head_seq() {
  return Ring().Get("head_seq");
}
uint64_t ScriptedPub::head_pos() {
  return Ring().Get("head_pos");
}

void ScriptedPub::SetCodecParams(std::span<const uint8_t> data, uint32_t codec) {
  const Spec& s = ctx_.spec();
  StructView cp(s, "CodecParams", ring_->span(), s.Const("CODEC_PARAMS_OFFSET"));
  const uint64_t lock = cp.Get("lock");
  cp.Set("lock", lock + 1);
  ShmReleaseFence();
  cp.Set("generation", cp.Get("generation") + 1);
  cp.Set("size", data.size());
  cp.Set("codec", codec);
  std::copy(data.begin(), data.end(), cp.Bytes("data").begin());
  cp.Set("lock", lock + 2);
  Shadow(cp.base(), 64 + data.size());
}

void ScriptedPub::Shadow(size_t off, size_t len) {
  if (!ring_ || off + len > ring_shadow_.size()) return;
  std::copy(ring_->data() + off, ring_->data() + off + len, ring_shadow_.begin() + off);
}

long long ScriptedPub::RingDiff() const {
  if (!ring_) return -1;
  for (size_t i = 0; i < ring_shadow_.size(); ++i) {
    if (ring_->data()[i] != ring_shadow_[i]) return static_cast<long long>(i);
  }
  return -1;
}

uint64_t ScriptedPub::WritePacket(uint64_t seq, bool key, const std::vector<uint8_t>* payload,
                                  uint32_t params_generation, bool announce) {
  const Spec& s = ctx_.spec();
  StructView r = Ring();
  const std::vector<uint8_t> own = PacketPayload(seq, p_.max_packet_bytes);
  const std::vector<uint8_t>& data = payload ? *payload : own;
  const uint64_t cap = p_.ring_capacity;
  const uint64_t base = s.Const("RING_DATA_OFFSET");
  uint64_t p = r.Get("head_pos");
  const uint64_t span = RoundUp(32 + data.size(), 32);
  const uint64_t left = cap - p % cap;
  const uint64_t total = (span > left ? left : 0) + span;
  auto rec = [&](uint64_t pos) {
    return StructView(s, "PacketRecordHeader", ring_->span(), base + pos % cap);
  };
  uint64_t tail = r.Get("tail_pos");
  while (p + total - tail > cap) {
    StructView t = rec(tail);
    t.Set("lock", t.Get("lock") | 1);
    Shadow(t.base(), 8);
    tail += RoundUp(32 + t.Get("size"), 32);
  }
  r.Set("tail_pos", tail);
  ShmReleaseFence();
  if (span > left) {
    StructView pad = rec(p);
    pad.Set("lock", 2 * seq - 1);
    pad.Set("size", left - 32);
    pad.Set("flags", s.Enum("packet_flags", "PAD"));
    pad.Set("pts", 0);
    pad.Set("params_generation", 0);
    pad.Set("lock", 2 * seq);
    Shadow(pad.base(), 32);
    p += left;
  }
  StructView h = rec(p);
  h.Set("lock", 2 * seq - 1);
  ShmReleaseFence();
  h.Set("size", data.size());
  h.Set("flags", key ? s.Enum("packet_flags", "KEYFRAME") : 0);
  h.Set("pts", seq * 1000);
  h.Set("params_generation", params_generation);
  std::copy(data.begin(), data.end(), ring_->data() + base + p % cap + 32);
  h.Set("lock", 2 * seq);
  if (key) {
    r.Set("last_key_pos", p);
    r.Set("last_key_seq", seq);
  }
  r.Set("head_pos", p + span);
  r.Set("head_seq", seq);
  if (announce) AtomicIncrement32(r.Bytes("packet_futex").data());
  Shadow(h.base(), span);
  Shadow(64, 48);  // head_seq .. packet_futex
  if (announce) FutexWakeAll(r.Bytes("packet_futex").data());
  return p;
}

void ScriptedPub::Crash() {
  if (conn_) conn_->Close();
  if (listener_) listener_->Close();
}

}  // namespace cuframes::conform
