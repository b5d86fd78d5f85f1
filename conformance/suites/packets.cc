// packets.cc: the version 2 packet ring (spec 10): an IUT publisher's ring read byte by byte by
// the scripted subscriber, and an IUT subscriber against a hostile scripted ring writer.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "common.h"
#include "shm_fence.h"

namespace cuframes::conform {
namespace {

const Needs kV2{2, "host", "packets"};

uint64_t Align32(uint64_t v) {
  return (v + 31) / 32 * 32;
}

// Walks the IUT's ring from tail_pos to head_pos, checking every record (PAD or packet).
// Returns the number of packets checked.
uint64_t WalkRing(CaseContext& ctx, ShmFile& ring, uint32_t pbytes, uint32_t gop) {
  const Spec& s = ctx.spec();
  StructView r(s, "PacketRingHeader", ring.span());
  const uint64_t cap = r.Get("capacity"), base = r.Get("data_offset");
  const uint64_t head = r.Get("head_pos"), head_seq = r.Get("head_seq");
  uint64_t pos = r.Get("tail_pos");
  uint64_t checked = 0;
  while (pos < head) {
    ctx.Expect(pos % 32 == 0, "PKT-REC-01", "record position a multiple of 32",
               std::to_string(pos));
    StructView rec(s, "PacketRecordHeader", ring.span(), base + pos % cap);
    const uint64_t lock = rec.Get("lock"), size = rec.Get("size"), flags = rec.Get("flags");
    const uint64_t left = cap - pos % cap;
    ctx.Expect(lock % 2 == 0 && lock > 0, "PKT-REC-03", "complete record: lock = 2n",
               "lock " + std::to_string(lock), rec.All(), rec.base());
    const uint64_t n = lock / 2;
    ctx.Expect((flags & ~uint64_t{3}) == 0, "PKT-REC-04", "record flags only KEYFRAME|PAD",
               std::to_string(flags), rec.All(), rec.base());
    ctx.Expect(AllZero(rec.Bytes("reserved0")), "VER-RSV-01", "record reserved0 zero", "nonzero",
               rec.All(), rec.base());
    if (flags & 2) {
      ctx.Expect(size + 32 == left, "PKT-REC-02",
                 "PAD size = bytes left to the end - 32 (" + std::to_string(left - 32) + ")",
                 std::to_string(size), rec.All(), rec.base());
      pos += left;
      continue;
    }
    const uint64_t span = Align32(32 + size);
    ctx.Expect(span <= left, "PKT-REC-01", "record ends inside the data area",
               "span " + std::to_string(span) + " > " + std::to_string(left), rec.All(),
               rec.base());
    ctx.Expect(size == PacketSize(n, pbytes), "PKT-WRITE-03",
               "packet " + std::to_string(n) + " size " + std::to_string(PacketSize(n, pbytes)),
               std::to_string(size), rec.All(), rec.base());
    ctx.Expect(((flags & 1) != 0) == PacketIsKey(n, gop), "PKT-WRITE-04",
               "KEYFRAME flag as the contract says for packet " + std::to_string(n),
               std::to_string(flags), rec.All(), rec.base());
    ctx.Expect(rec.Get("params_generation") == 1, "PKT-WRITE-05",
               "params_generation 1 (published before packet 1)",
               std::to_string(rec.Get("params_generation")), rec.All(), rec.base());
    const std::vector<uint8_t> want = PacketPayload(n, pbytes);
    const std::span<const uint8_t> got(ring.data() + base + pos % cap + 32, size);
    ctx.Expect(std::equal(want.begin(), want.end(), got.begin()), "PKT-WRITE-03",
               "packet " + std::to_string(n) + " payload per the contract", "different bytes",
               got.subspan(0, std::min<size_t>(64, got.size())));
    ctx.Expect(n <= head_seq, "PKT-WRITE-04", "record seq <= head_seq", std::to_string(n));
    pos += span;
    ++checked;
  }
  return checked;
}

CF_CASE(PubRing, "10.2/publisher-ring-layout",
        "a v2 publisher's ring: header per the twin, codec params, 40 packets with PAD wrap, "
        "initial position at join",
        (std::vector<std::string>{"PKT-RING-01", "PKT-HDR-01", "PKT-REC-01", "PKT-REC-02",
                                  "PKT-REC-03", "PKT-REC-04", "PKT-WRITE-02", "PKT-WRITE-03",
                                  "PKT-WRITE-04", "PKT-WRITE-05", "PKT-PARAMS-01", "PKT-PARAMS-04",
                                  "PKT-JOIN-01", "PKT-HELLO-01", "CONF-V2-01", "PKT-JOIN-03",
                                  "PKT-WRITE-07", "RES-CLOSE-03", "PKT-RING-03"}),
        Role::kPublisher, kV2) {
  const uint32_t pbytes = 3000, gop = 8;
  // The capacity is never assumed (PKT-RING-03): whether 60 packets lap the ring is computed
  // below from the capacity the header shows (A2/ring-bytes asks for a small one).
  Process& pub =
      StartPub(ctx, {"--key", ctx.key(), "--frames", "0", "--packets", "60", "--packet-bytes",
                     std::to_string(pbytes), "--gop", std::to_string(gop), "--wait-subscribers",
                     "1", "--linger-ms", "3000"});
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = 2;
  hp.caps = 1;
  const HelloInfo h = sub.Hello(hp);
  ctx.Expect(h.proto_version == 2 && (h.caps & 1), "PKT-HELLO-01",
             "version 2 with caps PACKET_RING_PRESENT", Describe(ctx.spec(), h.msg), h.msg.raw);
  ctx.Expect(h.initial_packet_seq == 1 && h.initial_packet_pos == 0, "PKT-JOIN-01",
             "initial (1, 0) before any packet",
             std::to_string(h.initial_packet_seq) + ", " + std::to_string(h.initial_packet_pos));
  sub.MapAndValidate();
  ctx.Expect(sub.Header().Get("flags") & 1, "PKT-RING-01", "SegmentHeader.flags PACKET_RING",
             std::to_string(sub.Header().Get("flags")));
  auto ring = OpenIutRing(ctx, "PKT-RING-01");
  const Spec& s = ctx.spec();
  StructView r(s, "PacketRingHeader", ring->span());
  ctx.Expect(r.Get("layout_version") == s.Const("RING_LAYOUT_VERSION") &&
                 r.Get("magic") == s.Const("RING_MAGIC") &&
                 r.Get("header_size") == s.Const("RING_HEADER_SIZE") &&
                 r.Get("state") == s.Enum("segment_state", "READY"),
             "PKT-HDR-01", "ring layout_version 1, magic CUFP, header_size 256, READY", "different",
             r.All());
  const uint64_t cap = r.Get("capacity");
  ctx.Expect(
      cap >= 4096 && (cap & (cap - 1)) == 0 &&
          r.Get("data_offset") == s.Const("RING_DATA_OFFSET") &&
          r.Get("segment_size") == r.Get("data_offset") + cap &&
          static_cast<uint64_t>(ShmFile::FileSize(ctx.RingPath())) == r.Get("segment_size") &&
          r.Get("max_packet_bytes") >= 1 && r.Get("max_packet_bytes") + 32 <= cap / 2,
      "PKT-HDR-01", "capacity a power of two >= 4096, data_offset 4416, sizes consistent",
      "violated", r.All());
  ctx.Expect(AllZero(r.Bytes("reserved0")) && AllZero(r.Bytes("reserved1")), "VER-RSV-01",
             "ring header reserved bytes zero", "nonzero", r.All());

  sub.Attach();
  // Judged from the ring itself: wait (bounded) until head_seq shows all 60 packets, whatever
  // and whenever the adapter prints.
  WaitHeadSeq(r, 60, 5000);
  ctx.Expect(r.Get("head_seq") == 60, "CONF-V2-01", "the publisher publishes 60 packets",
             "head_seq " + std::to_string(r.Get("head_seq")), r.All());
  StructView cp(s, "CodecParams", ring->span(), s.Const("CODEC_PARAMS_OFFSET"));
  const uint64_t codec = cp.Get("codec");
  const std::vector<uint8_t> want = CodecParamsPayload(static_cast<uint32_t>(codec));
  ctx.Expect(cp.Get("lock") % 2 == 0 && cp.Get("lock") != 0 && cp.Get("generation") == 1 &&
                 cp.Get("size") == want.size() &&
                 std::equal(want.begin(), want.end(), cp.Bytes("data").begin()),
             "PKT-PARAMS-01", "codec params generation 1, even lock, contract bytes", "different",
             cp.Bytes("lock").data() ? cp.All().subspan(0, 96) : std::span<uint8_t>(), cp.base());
  const uint64_t n = WalkRing(ctx, *ring, pbytes, gop);
  ctx.Expect(r.Get("head_seq") == 60, "PKT-WRITE-04", "head_seq 60",
             std::to_string(r.Get("head_seq")));
  uint64_t traffic = 0;  // bytes the 60 records (without PADs) span
  for (uint64_t k = 1; k <= 60; ++k)
    traffic += (32 + PacketSize(k, pbytes) + 31) / 32 * 32;
  if (traffic > cap) {
    ctx.Expect(r.Get("tail_pos") > 0 && n < 60, "PKT-WRITE-02",
               std::to_string(traffic) + " bytes of records lap a ring of " + std::to_string(cap) +
                   " (tail_pos advanced)",
               "tail_pos " + std::to_string(r.Get("tail_pos")) + ", " + std::to_string(n) +
                   " records readable");
  } else {
    ctx.Note("the ring (" + std::to_string(cap) + " bytes) holds all " + std::to_string(traffic) +
             " bytes of records: no lap to check");
  }
  const uint64_t key = r.Get("last_key_seq");
  ctx.Expect(key == 57, "PKT-WRITE-04", "last_key_seq 57 (gop 8)", std::to_string(key));
  StructView kr(s, "PacketRecordHeader", ring->span(),
                r.Get("data_offset") + r.Get("last_key_pos") % cap);
  ctx.Expect(kr.Get("lock") == 2 * key && (kr.Get("flags") & 1), "PKT-WRITE-04",
             "the record at last_key_pos holds keyframe " + std::to_string(key),
             "lock " + std::to_string(kr.Get("lock")), kr.All(), kr.base());
  // A late joiner starts at the latest keyframe (the first subscriber keeps the publisher up).
  ScriptedSub late(ctx);
  const HelloInfo lh = late.Hello(hp);
  ctx.Expect(lh.initial_packet_seq == key && lh.initial_packet_pos == r.Get("last_key_pos"),
             "PKT-JOIN-01",
             "initial (last_key_seq, last_key_pos) = (" + std::to_string(key) + ", " +
                 std::to_string(r.Get("last_key_pos")) + ")",
             std::to_string(lh.initial_packet_seq) + ", " + std::to_string(lh.initial_packet_pos),
             lh.msg.raw);
  // PKT-WRITE-07: at shutdown the ring is CLOSED and packet_futex bumped. Our mappings outlive the
  // unlink, so they show the last state the publisher stored.
  const uint64_t futex_before = r.Get("packet_futex");
  late.conn().Close();
  sub.conn().Close();
  WaitExitOrFail(ctx, pub, "PKT-WRITE-07", 5000);
  ctx.Expect(r.Get("state") == s.Enum("segment_state", "CLOSED"), "PKT-WRITE-07",
             "ring state CLOSED after the publisher shut down",
             "state " + std::to_string(r.Get("state")), r.All());
  ctx.Expect(r.Get("packet_futex") != futex_before, "PKT-WRITE-07",
             "packet_futex incremented at close", "unchanged");
  // PKT-RING-01 / RES-CLOSE-03: the ring goes with the segment and the socket.
  ExpectNoLeftovers(ctx, ctx.key());
}

// PKT-WRITE-01's edge: only a packet LARGER than max_packet_bytes is OVERSIZED. With the
// contract's sizes 1 + (k * 7919) mod B, B = 8 makes packet 1 exactly 8 bytes (7919 mod 8 = 7),
// and packets 1..16 cover every size from 1 to 8; the 3000-byte cases never reach their maximum.
CF_CASE(PubMaxPacket, "10.4/packet-of-max-packet-bytes",
        "with --packet-bytes 8 the publisher writes packets of exactly max_packet_bytes (packet 1 "
        "is 8 bytes): all 16 packets are in the ring with their contract sizes, and it exits 0",
        (std::vector<std::string>{"PKT-WRITE-01", "PKT-WRITE-03", "ADP-PUB-03"}), Role::kPublisher,
        kV2) {
  const uint32_t pbytes = 8, gop = 4;
  Process& pub =
      StartPub(ctx, {"--key", ctx.key(), "--frames", "0", "--packets", "16", "--packet-bytes",
                     std::to_string(pbytes), "--gop", std::to_string(gop), "--wait-subscribers",
                     "1", "--linger-ms", "3000"});
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = 2;
  hp.caps = 1;
  sub.Handshake(hp);
  auto ring = OpenIutRing(ctx, "PKT-RING-01");
  StructView r(ctx.spec(), "PacketRingHeader", ring->span());
  ctx.Expect(r.Get("max_packet_bytes") == pbytes, "ADP-PUB-03",
             "max_packet_bytes = --packet-bytes (" + std::to_string(pbytes) + ")",
             std::to_string(r.Get("max_packet_bytes")), r.All());
  WaitHeadSeq(r, 16, 5000, &pub);
  ctx.Expect(r.Get("head_seq") == 16, "PKT-WRITE-01",
             "all 16 packets published, packet 1 of exactly max_packet_bytes among them",
             "head_seq " + std::to_string(r.Get("head_seq")) + "; adapter " + pub.StatusText() +
                 "; " + pub.StdoutTail(3),
             r.All());
  ctx.Expect(WalkRing(ctx, *ring, pbytes, gop) == 16, "PKT-WRITE-03",
             "16 packet records between tail_pos and head_pos", "fewer");
  sub.conn().Send(MessageBuilder(ctx.spec(), "DETACH").Encode());
  sub.conn().ShutdownWrite();
  ExpectCleanExit(ctx, pub);
}

CF_CASE(PubNoWant, "10.9/no-want-packets",
        "a v2 subscriber that does not ask WANT_PACKETS gets caps 0",
        (std::vector<std::string>{"PKT-HELLO-01", "MSG-HRESP-03"}), Role::kPublisher, kV2) {
  StartPub(ctx, {"--key", ctx.key(), "--frames", "0", "--packets", "4", "--wait-subscribers", "1",
                 "--linger-ms", "2000"});
  ScriptedSub sub(ctx);
  HelloParams hp;
  hp.max_proto = 2;
  const HelloInfo h = sub.Hello(hp);
  ctx.Expect(h.proto_version == 2 && h.caps == 0, "PKT-HELLO-01",
             "version 2, caps 0 without WANT_PACKETS", Describe(ctx.spec(), h.msg), h.msg.raw);
}

// ---- IUT subscriber against the scripted ring ----

std::vector<std::string> PacketSubArgs(uint64_t packets) {
  return {"--packets", std::to_string(packets), "--timeout-ms", "3000", "--kind", "host"};
}

void ExpectPackets(CaseContext& ctx, Process& sub, uint64_t first, uint64_t last, uint32_t pbytes,
                   const std::string& req) {
  size_t from = 0;
  for (uint64_t n = first; n <= last; ++n) {
    const nlohmann::json* e = sub.WaitEvent("packet", In(4000), &from);
    if (!e) {
      const nlohmann::json* err = FindError(sub);
      ctx.Fail(req, "packet event for seq " + std::to_string(n),
               "none; adapter " + sub.StatusText() + (err ? "; " + err->dump() : ""));
    }
    const std::vector<uint8_t> want = PacketPayload(n, pbytes);
    ctx.Expect(e->value("seq", uint64_t{0}) == n && e->value("size", uint64_t{0}) == want.size() &&
                   e->value("checksum", std::string()) == Hex64(Fnv1a64(want)),
               req,
               "packet " + std::to_string(n) + " size " + std::to_string(want.size()) +
                   " checksum " + Hex64(Fnv1a64(want)),
               e->dump());
  }
}

CF_CASE(SubRing, "10.6/subscriber-reads-packets",
        "the subscriber reads 30 packets through a wrapping 8 KiB ring, skipping PAD records, "
        "and never writes the ring",
        (std::vector<std::string>{"PKT-RING-02", "PKT-READ-01", "PKT-READ-06", "PKT-READ-07",
                                  "PKT-REC-02", "PKT-JOIN-02", "PKT-PARAMS-02", "PKT-HDR-02",
                                  "CONF-V2-01", "PKT-RING-03", "ADP-EVENT-03"}),
        Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub(PacketSubArgs(30));
  pub.Handshake();
  std::vector<std::vector<uint8_t>> snapshots;
  for (uint64_t n = 1; n <= 30; ++n) {
    pub.WritePacket(n, PacketIsKey(n, 5));
    // Keep the writer within one lap of the reader: wait for its packet event before lapping.
    if (n % 4 == 0) {
      size_t from = 0;
      sub.WaitFor(
          [n](const nlohmann::json& j) {
            return j.value("event", "") == "packet" && j.value("seq", uint64_t{0}) + 2 >= n;
          },
          In(3000), &from);
    }
  }
  ExpectPackets(ctx, sub, 1, 30, pub.params().max_packet_bytes, "PKT-READ-01");
  pub.ExpectAttachedEvent(sub);  // proto 2 with a packet ring
  WaitExitOrFail(ctx, sub, "CONF-V2-01", 4000);
  size_t from = 0;
  const nlohmann::json* cp = sub.WaitEvent("codec_params", In(100), &from);
  ctx.Expect(cp && cp->value("valid", false) && cp->value("generation", 0) == 1, "PKT-PARAMS-02",
             "codec_params event generation 1, valid", cp ? cp->dump() : "none");
  for (const auto& e : sub.events()) {
    ctx.Expect(e.value("event", "") != "overrun", "PKT-READ-01",
               "no overrun when the writer stays within a lap", e.dump());
  }
  // PKT-READ-07: every byte of the ring (header, parameters, records) is what we wrote.
  const long long diff = pub.RingDiff();
  if (diff >= 0) {
    const size_t at = static_cast<size_t>(diff) & ~size_t{15};
    ctx.Fail("PKT-READ-07", "every ring byte as the publisher wrote it (the reader writes nothing)",
             "byte " + std::to_string(diff) + " of the ring differs",
             pub.ring()->span().subspan(at, std::min<size_t>(64, pub.ring()->size() - at)), at);
  }
}

// When the damage is applied: after ATTACH, before HELLO with the refusal expected at HELLO_RESP
// (ring header, validated with the segment), or before HELLO but found later (codec parameters,
// read on demand; a damaged record, which must be in place before the subscriber can see
// head_seq, or a fast reader takes the intact packet first and then waits for the next).
// HELLO_RESP(OK) for a version 2 session with the ring, its late-join position (1, 0).
void SendRingHelloResp(ScriptedPub& pub) {
  pub.conn().Send(pub.HelloResp()
                      .Set("proto_version", 2)
                      .Set("caps", 1)
                      .Set("initial_packet_seq", 1)
                      .Set("initial_packet_pos", 0)
                      .Encode());
}

enum class When { kAfterAttach, kAtHello, kLazy };

void HostileRing(CaseContext& ctx, const std::function<void(ScriptedPub&)>& damage,
                 const std::string& code, const std::string& req, When when = When::kAfterAttach) {
  const bool before_handshake = when != When::kAfterAttach;
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  if (before_handshake) damage(pub);
  Process& sub = pub.StartSub(PacketSubArgs(3));
  if (when == When::kAtHello) {
    // The ring is mapped and validated with the segment, before ATTACH_REQ: the refusal is a
    // HELLO_RESP_OK_BAD_SEGMENT, answered DETACH(reason) (state table 4.1).
    pub.ReadHello();
    pub.conn().Send(pub.HelloResp()
                        .Set("proto_version", 2)
                        .Set("caps", 1)
                        .Set("initial_packet_seq", 1)
                        .Encode());
    TlvMsg m = RecvOrFail(ctx, pub.conn(), req, "DETACH(" + code + ")", 4000);
    ctx.Expect(ctx.spec().MsgName(m.type) == "DETACH" &&
                   PayloadField(ctx.spec(), "Detach", m, "reason") == ctx.spec().Err(code),
               req, "DETACH(reason " + code + ") for a bad ring", Describe(ctx.spec(), m), m.raw);
  } else {
    pub.Handshake();
    if (!before_handshake) damage(pub);
  }
  ExpectAdapterError(ctx, sub, code, req, 4000);
}

CF_CASE(LockOdd, "10.6/record-lock-held-odd",
        "head_seq = 1 but packet 1's lock stays odd (writer died mid-write): CORRUPT after the "
        "bounded spin",
        (std::vector<std::string>{"PKT-READ-02", "PKT-REC-03"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [](ScriptedPub& p) {
        p.WritePacket(1, true);
        // Packet 1 is "being written" forever: lock 2n - 1 = 1, as a writer that died leaves it.
        uint8_t* lock = p.ring()->data() + p.Ring().Get("data_offset");
        std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(lock)).store(1);
      },
      "CORRUPT", "PKT-READ-02", When::kLazy);
}

CF_CASE(SizeOutOfRange, "10.6/record-size-out-of-range",
        "a complete record whose size exceeds max_packet_bytes is reported CORRUPT",
        (std::vector<std::string>{"PKT-READ-03"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [&ctx](ScriptedPub& p) {
        p.WritePacket(1, true);
        StructView(ctx.spec(), "PacketRecordHeader", p.ring()->span(), p.Ring().Get("data_offset"))
            .Set("size", 5000);
      },
      "CORRUPT", "PKT-READ-03", When::kLazy);
}

CF_CASE(UnknownPacketFlags, "10.3/record-unknown-flags",
        "a complete record with flag bit 2 set is reported CORRUPT",
        (std::vector<std::string>{"PKT-REC-04"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [&ctx](ScriptedPub& p) {
        p.WritePacket(1, true);
        StructView(ctx.spec(), "PacketRecordHeader", p.ring()->span(), p.Ring().Get("data_offset"))
            .Set("flags", 5);
      },
      "CORRUPT", "PKT-REC-04", When::kLazy);
}

// RES-CRASH-01's "or packet": the frame case (1.5/publisher-dies) has a twin for a subscriber
// that sleeps waiting for packet 2. Crashed once it counts itself in packet_waiters.
CF_CASE(PublisherDiesPacketWait, "1.5/publisher-dies-during-packet-wait",
        "a subscriber blocked waiting for a packet reports PEER_CLOSED within "
        "PEER_DEATH_DETECT_MS of the publisher's socket closing",
        (std::vector<std::string>{"RES-CRASH-01", "RES-CRASH-03"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  pub.WritePacket(1, true);
  Process& sub = pub.StartSub(PacketSubArgs(3));
  pub.Handshake();
  size_t from = 0;
  const nlohmann::json* first = sub.WaitEvent("packet", In(4000), &from);
  ctx.Expect(first != nullptr && first->value("seq", uint64_t{0}) == 1, "PKT-READ-01",
             "packet 1 delivered", first ? first->dump() : "none; " + sub.StdoutTail(4));
  CrashWhileParked(ctx, pub, sub, "packet_waiters");
}

// PKT-HDR-03: "a missing ring ... is a HELLO_RESP_OK_BAD_SEGMENT" answered DETACH(CORRUPT). ENOENT
// reads naturally as NOT_FOUND; the spec says CORRUPT (the publisher announced a ring it lacks).
CF_CASE(
    RingMissing, "10.2/ring-announced-but-missing",
    "HELLO_RESP announces a packet ring whose file does not exist: DETACH(CORRUPT) and CORRUPT, "
    "not NOT_FOUND",
    (std::vector<std::string>{"PKT-HDR-03"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [&ctx](ScriptedPub&) {
        if (unlink(ctx.RingPath().c_str()) != 0) {
          ctx.Fail("HARNESS", "the scripted ring file is removed", std::strerror(errno));
        }
      },
      "CORRUPT", "PKT-HDR-03", When::kAtHello);
}

// PKT-RING-02: the ring is used only when the negotiated version is 2 AND caps bit 0 is set. A
// publisher answering version 1 with caps bit 0 set (reserved in version 1, VER-RSV-02) and a
// ring present: the subscriber must ignore the bit, and its packet calls report NO_PACKET_RING.
CF_CASE(RingCapsUnderV1, "10.9/ring-caps-ignored-under-v1",
        "HELLO_RESP proto_version 1 with caps bit 0 set and a ring on /dev/shm: a subscriber "
        "asked for packets attaches without the ring and reports NO_PACKET_RING (exit 2)",
        (std::vector<std::string>{"PKT-RING-02", "VER-RSV-02", "ADP-SUB-03"}), Role::kSubscriber,
        kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  pub.WritePacket(1, true);
  Process& sub = pub.StartSub(PacketSubArgs(2));
  pub.ReadHello();
  pub.conn().Send(pub.HelloResp().Set("proto_version", 1).Set("caps", 1).Encode());
  pub.ReadAttach();
  pub.SendAttachOk();
  ExpectAdapterError(ctx, sub, "NO_PACKET_RING", "PKT-RING-02", 4000);
  size_t from = 0;
  const nlohmann::json* a = sub.WaitEvent("attached", In(10), &from);
  ctx.Expect(a != nullptr && a->value("proto", uint64_t{0}) == 1 && !a->value("packet_ring", true),
             "ADP-EVENT-03", "an attached event with proto 1 and packet_ring false",
             a ? a->dump() : "none; " + sub.StdoutTail(4));
}

// PKT-READ-01: PEER_CLOSED "once the ring's state is CLOSED and it has read every packet". The
// ring holds packets 1..5 and is stored CLOSED after the subscriber validated it and before its
// ATTACH_RESP, so the subscriber meets CLOSED before its first read: all 5 must still come.
CF_CASE(RingClosedUnread, "10.6/closed-ring-drained-first",
        "a ring stored CLOSED with packets 1..5 unread: the subscriber (--packets 5) delivers all "
        "five and exits 0 instead of reporting PEER_CLOSED at once",
        (std::vector<std::string>{"PKT-READ-01"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  for (uint64_t k = 1; k <= 5; ++k)
    pub.WritePacket(k, k == 1);
  Process& sub = pub.StartSub(PacketSubArgs(5));
  pub.ReadHello();
  SendRingHelloResp(pub);
  pub.ReadAttach();  // the ring was mapped and validated (READY) before ATTACH_REQ (PKT-HDR-03)
  pub.Ring().Set("state", ctx.spec().Enum("segment_state", "CLOSED"));
  AtomicIncrement32(pub.Ring().Bytes("packet_futex").data());
  FutexWakeAll(pub.Ring().Bytes("packet_futex").data());
  pub.SendAttachOk();
  ExpectPackets(ctx, sub, 1, 5, RingPubParams().max_packet_bytes, "PKT-READ-01");
  WaitExitOrFail(ctx, sub, "PKT-READ-01", 4000);
  ctx.Expect(sub.exit_code() == 0, "ADP-EXIT-01", "exit status 0 after five packets",
             sub.StatusText());
}

// PKT-JOIN-01's other branch: before any keyframe was written a late joiner starts at
// (head_seq + 1, head_pos), after everything published so far, not at the newest packet (a
// non-keyframe that no decoder can start at). --gop 0 publishes no keyframe (ADAPTER.md 4).
CF_CASE(LateJoinNoKeyframe, "10.7/late-join-before-any-keyframe",
        "5 packets published, none a keyframe (--gop 0): a late joiner's HELLO_RESP carries "
        "(head_seq + 1, head_pos) = (6, head_pos)",
        (std::vector<std::string>{"PKT-JOIN-01"}), Role::kPublisher, kV2) {
  Process& pub = StartPub(ctx, {"--key", ctx.key(), "--frames", "0", "--packets", "5", "--gop", "0",
                                "--wait-subscribers", "1", "--linger-ms", "5000"});
  ScriptedSub first(ctx);
  HelloParams hp;
  hp.max_proto = 2;
  hp.caps = 1;
  first.Hello(hp);
  first.MapAndValidate();
  auto ring = OpenIutRing(ctx, "PKT-JOIN-01");
  StructView r(ctx.spec(), "PacketRingHeader", ring->span());
  first.Attach();
  WaitHeadSeq(r, 5, 5000);
  ctx.Expect(r.Get("head_seq") == 5 && r.Get("last_key_seq") == 0, "PKT-WRITE-04",
             "head_seq 5 and last_key_seq 0 (no keyframe written)",
             "head_seq " + std::to_string(r.Get("head_seq")) + ", last_key_seq " +
                 std::to_string(r.Get("last_key_seq")),
             r.All());
  ScriptedSub late(ctx);
  const HelloInfo lh = late.Hello(hp);
  const uint64_t head_pos = r.Get("head_pos");
  ctx.Expect(lh.initial_packet_seq == 6 && lh.initial_packet_pos == head_pos, "PKT-JOIN-01",
             "initial (head_seq + 1, head_pos) = (6, " + std::to_string(head_pos) + ")",
             std::to_string(lh.initial_packet_seq) + ", " + std::to_string(lh.initial_packet_pos),
             lh.msg.raw);
  late.conn().Close();
  first.conn().Close();
  WaitExitOrFail(ctx, pub, "ADP-PUB-02", 5000);
}

// PKT-HDR-03 (as SHM-VALID-03): a ring still INIT is waited for within the handshake deadline,
// and a ring still INIT at the deadline is TIMEOUT with nothing sent. An all-zero header is what
// a publisher that has created the file and not yet written it leaves; the
// 10.2/ring-unknown-layout-* cases check that a nonzero prefix is not waited for. Writes packets
// 1..3, blanks the ring header, starts the subscriber (--packets 3) and answers its HELLO_REQ
// with a ring; returns the header as it was written (state READY).
std::vector<uint8_t> BlankRingAtHello(CaseContext& ctx, ScriptedPub& pub, Process** sub) {
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  for (uint64_t k = 1; k <= 3; ++k)
    pub.WritePacket(k, k == 1);
  uint8_t* header = pub.ring()->data();
  const size_t header_size = ctx.spec().Size("PacketRingHeader");
  std::vector<uint8_t> written(header, header + header_size);
  std::memset(header, 0, header_size);
  *sub = &pub.StartSub(PacketSubArgs(3));
  pub.ReadHello();
  SendRingHelloResp(pub);
  return written;
}

CF_CASE(RingInitWaited, "10.2/ring-init-waited-for",
        "a ring whose header is still all zero (INIT) when HELLO_RESP arrives: the subscriber "
        "sends nothing while it stays so; written and stored READY 300 ms later, the ring is "
        "validated and the subscriber attaches and delivers packets 1..3",
        (std::vector<std::string>{"PKT-HDR-03"}), Role::kSubscriber, kV2) {
  const Spec& s = ctx.spec();
  ScriptedPub pub(ctx, RingPubParams());
  Process* sub = nullptr;
  const std::vector<uint8_t> written = BlankRingAtHello(ctx, pub, &sub);
  TlvMsg m;
  const Conn::Rx rx = pub.conn().Recv(&m, In(300));
  ctx.Expect(rx == Conn::Rx::kTimeout, "PKT-HDR-03",
             "nothing while the ring is INIT with an all-zero header (the subscriber waits)",
             rx == Conn::Rx::kMsg ? Describe(s, m) : "the connection closed",
             rx == Conn::Rx::kMsg ? m.raw : std::vector<uint8_t>{});
  // Every field first with state still INIT, then state READY (a publisher's release store).
  std::vector<uint8_t> staged = written;
  StructView(s, "PacketRingHeader", std::span<uint8_t>(staged))
      .Set("state", s.Enum("segment_state", "INIT"));
  std::memcpy(pub.ring()->data(), staged.data(), staged.size());
  pub.Ring().Set("state", s.Enum("segment_state", "READY"));
  pub.ReadAttach();
  pub.SendAttachOk();
  ExpectPackets(ctx, *sub, 1, 3, RingPubParams().max_packet_bytes, "PKT-HDR-03");
  WaitExitOrFail(ctx, *sub, "PKT-HDR-03", 4000);
}

CF_CASE(RingStillInit, "10.2/ring-still-init",
        "a ring whose header stays all zero (INIT) past the handshake deadline: the subscriber "
        "sends nothing, closes and reports TIMEOUT (exit 3)",
        (std::vector<std::string>{"PKT-HDR-03"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  Process* sub = nullptr;
  BlankRingAtHello(ctx, pub, &sub);
  const int deadline = static_cast<int>(ctx.spec().Const("HANDSHAKE_TIMEOUT_MS"));
  ExpectCloseOnly(ctx, pub.conn(), "PKT-HDR-03", deadline + 2000);
  ExpectAdapterError(ctx, *sub, "TIMEOUT", "PKT-HDR-03", 3000);
  ExpectExitCode(ctx, *sub, 3, "timeout");
}

CF_CASE(RingBadMagic, "10.2/ring-wrong-magic",
        "a ring with a wrong magic is refused at attach: DETACH(UNSUPPORTED_LAYOUT)",
        (std::vector<std::string>{"PKT-HDR-01", "PKT-HDR-03"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx, [](ScriptedPub& p) { p.Ring().Set("magic", 0x11223344); }, "UNSUPPORTED_LAYOUT",
      "PKT-HDR-01", When::kAtHello);
}

CF_CASE(RingInitBadMagic, "10.2/ring-unknown-layout-refused-while-init",
        "a ring still INIT with a wrong magic: the layout is read first and nothing else "
        "(PKT-HDR-01), so the subscriber refuses it with DETACH(UNSUPPORTED_LAYOUT), not a "
        "TIMEOUT after waiting for READY",
        (std::vector<std::string>{"PKT-HDR-01"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [&ctx](ScriptedPub& p) {
        p.Ring().Set("state", ctx.spec().Enum("segment_state", "INIT"));
        p.Ring().Set("magic", 0x11223344);
      },
      "UNSUPPORTED_LAYOUT", "PKT-HDR-01", When::kAtHello);
}

CF_CASE(RingInitLayoutOnly, "10.2/ring-unknown-layout-refused-while-init-magic-zero",
        "a ring still INIT whose layout_version is 2 and whose magic and header_size are still "
        "zero: not an all-zero prefix, so DETACH(UNSUPPORTED_LAYOUT) at once, not a wait",
        (std::vector<std::string>{"PKT-HDR-01"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [&ctx](ScriptedPub& p) {
        p.Ring().Set("state", ctx.spec().Enum("segment_state", "INIT"));
        p.Ring().Set("layout_version", 2);
        p.Ring().Set("magic", 0);
        p.Ring().Set("header_size", 0);
      },
      "UNSUPPORTED_LAYOUT", "PKT-HDR-01", When::kAtHello);
}

CF_CASE(RingBadCapacity, "10.2/ring-capacity-not-power-of-two",
        "a ring whose capacity is not a power of two is refused at attach: DETACH(CORRUPT)",
        (std::vector<std::string>{"PKT-HDR-01", "PKT-HDR-03"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx, [](ScriptedPub& p) { p.Ring().Set("capacity", 6000); }, "CORRUPT", "PKT-HDR-01",
      When::kAtHello);
}

// PKT-HDR-01 wants segment_size equal to data_offset + capacity AND to the file size. The field's
// boundary cases (10.2/PacketRingHeader.segment_size=*) move segment_size alone; these two grow
// the file by a page, with segment_size following it or not: a reader that checks only that the
// ring fits in its file (memory-safe, and wrong) accepts both.
void RingFileGrown(CaseContext& ctx, bool size_follows) {
  HostileRing(
      ctx,
      [&ctx, size_follows](ScriptedPub& p) {
        const uint64_t grown = p.Ring().Get("segment_size") + 4096;
        if (truncate(ctx.RingPath().c_str(), static_cast<off_t>(grown)) != 0) {
          ctx.Fail("HARNESS", "the ring file grows by 4096 bytes", std::strerror(errno));
        }
        if (size_follows) p.Ring().Set("segment_size", grown);
      },
      "CORRUPT", "PKT-HDR-01", When::kAtHello);
}

CF_CASE(RingLargerThanCapacity, "10.2/ring-larger-than-its-capacity",
        "a ring file one page larger than data_offset + capacity whose segment_size says so is "
        "refused at attach: DETACH(CORRUPT)",
        (std::vector<std::string>{"PKT-HDR-01", "PKT-HDR-03"}), Role::kSubscriber, kV2) {
  RingFileGrown(ctx, true);
}

CF_CASE(RingFileLargerThanSize, "10.2/ring-file-larger-than-segment-size",
        "a ring file one page larger than its segment_size (which still equals data_offset + "
        "capacity) is refused at attach: DETACH(CORRUPT)",
        (std::vector<std::string>{"PKT-HDR-01", "PKT-HDR-03"}), Role::kSubscriber, kV2) {
  RingFileGrown(ctx, false);
}

CF_CASE(ParamsTooBig, "10.5/codec-params-size-too-big",
        "codec parameters with size 5000 (> 4096) are reported CORRUPT",
        (std::vector<std::string>{"PKT-PARAMS-03"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [&ctx](ScriptedPub& p) {
        StructView(ctx.spec(), "CodecParams", p.ring()->span(), 256).Set("size", 5000);
      },
      "CORRUPT", "PKT-PARAMS-03", When::kLazy);
}

CF_CASE(ParamsLockOdd, "10.5/codec-params-lock-held-odd",
        "codec parameters whose seqlock stays odd are reported CORRUPT after the bounded spin",
        (std::vector<std::string>{"PKT-PARAMS-02"}), Role::kSubscriber, kV2) {
  HostileRing(
      ctx,
      [&ctx](ScriptedPub& p) {
        StructView(ctx.spec(), "CodecParams", p.ring()->span(), 256).Set("lock", 3);
      },
      "CORRUPT", "PKT-PARAMS-02", When::kLazy);
}

// PKT-PARAMS-02's "(or PEER_CLOSED if its socket shows the publisher dead)": the parameters'
// lock stays odd because the publisher died inside its update, and its socket shows it. The
// reader that spins SEQLOCK_SPIN_LIMIT_MS and then reports CORRUPT without looking at the socket
// blames the data for a crash.
CF_CASE(ParamsLockOddPublisherDead, "10.5/codec-params-lock-odd-publisher-dead",
        "codec parameters whose seqlock stays odd and a publisher whose socket closes (it died "
        "inside the update): the subscriber reports PEER_CLOSED, not CORRUPT",
        (std::vector<std::string>{"PKT-PARAMS-02", "RES-CRASH-01"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  StructView(ctx.spec(), "CodecParams", pub.ring()->span(), 256).Set("lock", 3);
  Process& sub = pub.StartSub(PacketSubArgs(3));
  pub.Handshake();
  pub.Crash();
  ExpectAdapterError(ctx, sub, "PEER_CLOSED", "PKT-PARAMS-02", 4000);
}

// The lapped-reader setup: the handshake by hand, HELLO_RESP promising (1, 0), then packets
// 1-20 (a keyframe every 6th when `keyframes`, none otherwise) lap packet 1 before ATTACH_RESP.
void LapBeforeAttach(ScriptedPub& pub, bool keyframes) {
  pub.ReadHello();
  MessageBuilder b = pub.HelloResp();
  b.Set("proto_version", 2)
      .Set("caps", 1)
      .Set("initial_packet_seq", 1)
      .Set("initial_packet_pos", 0);
  pub.conn().Send(b.Encode());
  pub.ReadAttach();
  for (uint64_t n = 1; n <= 20; ++n)
    pub.WritePacket(n, keyframes && PacketIsKey(n, 6));
}

int CountOverruns(Process& sub) {
  int overruns = 0;
  for (const auto& e : sub.events())
    overruns += e.value("event", "") == "overrun";
  return overruns;
}

// PKT-PARAMS-02 where a reader needs the current generation: joining, it compares the first
// keyframe's params_generation with the current parameters' (PKT-READ-08), and that read is a
// seqlock read like any other. The subscriber has read the parameters (its codec_params event);
// then the lock goes odd for good (a writer that died inside its next update) and keyframe 1
// arrives. A conforming reader spins SEQLOCK_SPIN_LIMIT_MS and reports CORRUPT; one that takes the
// generation under an odd lock delivers the packets.
CF_CASE(ParamsLockOddAtKeyframe, "10.5/codec-params-lock-odd-at-first-keyframe",
        "codec parameters read, then their seqlock held odd before keyframe 1: the joining "
        "reader, which must compare the keyframe's params_generation with the current one, "
        "reports CORRUPT after the bounded spin and delivers no packet",
        (std::vector<std::string>{"PKT-PARAMS-02", "PKT-READ-08"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub(PacketSubArgs(3));
  pub.Handshake();  // initial (1, 0): nothing written yet
  size_t from = 0;
  const nlohmann::json* params = sub.WaitEvent("codec_params", In(4000), &from);
  if (params == nullptr) {
    ctx.Fail("ADP-EVENT-02", "a codec_params event once the parameters are read",
             "none; " + sub.StdoutTail(4));
  }
  StructView lock(ctx.spec(), "CodecParams", pub.ring()->span(), 256);
  ctx.Expect(lock.Get("lock") == 2, "HARNESS", "one completed parameters write (lock 2)",
             std::to_string(lock.Get("lock")));
  lock.Set("lock", 3);
  for (uint64_t n = 1; n <= 3; ++n)
    pub.WritePacket(n, n == 1);
  const nlohmann::json* e = sub.WaitFor(
      [](const nlohmann::json& j) {
        return j.value("event", "") == "packet" || j.value("event", "") == "error";
      },
      In(4000), &from);
  ctx.Expect(e != nullptr && e->value("event", "") == "error" &&
                 e->value("name", std::string()) == "CORRUPT",
             "PKT-PARAMS-02",
             "an error event CORRUPT (parameters' lock odd for SEQLOCK_SPIN_LIMIT_MS) before any "
             "packet",
             e ? e->dump() : "none; " + sub.StdoutTail(4));
}

// The other half of PKT-PARAMS-02: an odd lock is a writer inside its update, and the reader
// waits it out for up to SEQLOCK_SPIN_LIMIT_MS before it may call it CORRUPT. Here the writer
// finishes 30 ms into the reader's spin (generation 2), so keyframes 1-3, written under
// generation 1, are no longer a place to start (PKT-READ-08) and keyframe 4 is. A reader that
// gives up at the first odd lock reports CORRUPT instead.
CF_CASE(ParamsLockOddBriefly, "10.5/codec-params-lock-odd-briefly-at-first-keyframe",
        "codec parameters read, then their seqlock odd for 30 ms while keyframe 1 arrives and "
        "then even at generation 2: the joining reader waits the update out, skips keyframes "
        "1-3 of generation 1 and delivers keyframe 4 of generation 2, with no error",
        (std::vector<std::string>{"PKT-PARAMS-02", "PKT-READ-08"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub(PacketSubArgs(4));
  pub.Handshake();
  size_t from = 0;
  if (sub.WaitEvent("codec_params", In(4000), &from) == nullptr) {
    ctx.Fail("ADP-EVENT-02", "a codec_params event once the parameters are read",
             "none; " + sub.StdoutTail(4));
  }
  StructView cp(ctx.spec(), "CodecParams", pub.ring()->span(), 256);
  cp.Set("lock", 3);  // the writer enters its second update
  for (uint64_t n = 1; n <= 3; ++n)
    pub.WritePacket(n, true);
  // The delay is the stimulus (a writer preempted inside its update), well inside the spin.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  cp.Set("generation", 2);
  ShmReleaseFence();
  cp.Set("lock", 4);
  pub.WritePacket(4, true, nullptr, 2);
  const nlohmann::json* e = sub.WaitFor(
      [](const nlohmann::json& j) {
        return j.value("event", "") == "packet" || j.value("event", "") == "error";
      },
      In(4000), &from);
  ctx.Expect(e != nullptr && e->value("event", "") == "packet" && e->value("seq", 0) == 4,
             "PKT-PARAMS-02",
             "packet 4 first (the odd lock waited out, keyframes 1-3 of generation 1 skipped), "
             "no CORRUPT",
             e ? e->dump() : "none; " + sub.StdoutTail(4));
}

CF_CASE(Lapped, "10.6/lapped-reader-resumes-at-keyframe",
        "a reader whose start packet was overwritten gets one PACKET_OVERRUN and resumes at "
        "the latest keyframe",
        (std::vector<std::string>{"PKT-READ-02", "PKT-READ-05", "PKT-READ-06", "PKT-API-01",
                                  "PKT-JOIN-02", "PKT-READ-04"}),
        Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub(PacketSubArgs(24));
  LapBeforeAttach(pub, true);
  const uint64_t key = pub.Ring().Get("last_key_seq");
  ctx.Expect(pub.Ring().Get("tail_pos") > 0, "HARNESS", "the script laps packet 1", "tail_pos 0");
  pub.SendAttachOk();
  size_t from = 0;
  const nlohmann::json* ov = sub.WaitFor(
      [](const nlohmann::json& j) {
        return j.value("event", "") == "overrun" ||
               (j.value("event", "") == "error" && j.value("code", 0) == 24);
      },
      In(4000), &from);
  ctx.Expect(ov != nullptr, "PKT-READ-02", "PACKET_OVERRUN for a lapped start position",
             "none; " + sub.StdoutTail(4));
  for (uint64_t n = 21; n <= 24; ++n)
    pub.WritePacket(n, PacketIsKey(n, 6));
  ExpectPackets(ctx, sub, key, 24, pub.params().max_packet_bytes, "PKT-READ-05");
  const int overruns = CountOverruns(sub);
  ctx.Expect(overruns == 1, "PKT-API-01", "exactly one PACKET_OVERRUN for one lap",
             std::to_string(overruns));
}

// The start of PKT-READ-02's odd-lock cases: packets 1 (a keyframe) and 2 written, packet 2's
// lock then stored as `odd`, the IUT subscriber started for `last` packets and packet 1 seen
// (*from is past its event). Returns packet 2's position; *lock is its lock word.
uint64_t StartWithOddLock(CaseContext& ctx, ScriptedPub& pub, uint64_t odd, uint64_t last,
                          uint64_t** lock, Process** sub, size_t* from) {
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  pub.WritePacket(1, true);
  const uint64_t p2 = pub.WritePacket(2, false);
  *lock = reinterpret_cast<uint64_t*>(pub.ring()->data() + pub.Ring().Get("data_offset") +
                                      p2 % pub.Ring().Get("capacity") +
                                      ctx.spec().Off("PacketRecordHeader", "lock"));
  std::atomic_ref<uint64_t>(**lock).store(odd);
  *sub = &pub.StartSub(PacketSubArgs(last));
  pub.Handshake();
  const nlohmann::json* first = (*sub)->WaitEvent("packet", In(4000), from);
  ctx.Expect(first != nullptr && first->value("seq", uint64_t{0}) == 1, "PKT-READ-01",
             "packet 1 delivered", first ? first->dump() : "none; " + (*sub)->StdoutTail(4));
  return p2;
}

// PKT-READ-02's odd-lock spin against a conforming writer: packet 2's lock reads 2n + 1, the
// invalidation store of a writer about to lap it, but tail_pos has not passed it yet (the writer
// was preempted between the two stores). 10 ms later the writer completes the lap. The reader,
// still inside its SEQLOCK_SPIN_LIMIT_MS spin, must report PACKET_OVERRUN and resume at the latest
// keyframe; a reader that gives up on the odd lock at once reports CORRUPT and ends the stream.
CF_CASE(OddLockThenLap, "10.6/odd-lock-then-lap",
        "packet 2's lock reads 2n + 1 with tail_pos still below it, and the writer completes the "
        "lap 10 ms later: the reader, still spinning, reports PACKET_OVERRUN (never CORRUPT) and "
        "resumes at the latest keyframe",
        (std::vector<std::string>{"PKT-READ-02", "PKT-READ-10"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  // The adapter reads until seq kLast; the lap takes as many packets as fill the 8 KiB ring.
  constexpr uint64_t kLast = 40;
  uint64_t* lock = nullptr;
  Process* subp = nullptr;
  size_t from = 0;
  const uint64_t p2 = StartWithOddLock(ctx, pub, 5, kLast, &lock, &subp, &from);  // 2n + 1
  Process& sub = *subp;
  const int64_t seen = MonoNs();
  // No sleep synchronises anything here: the delay is the stimulus (a writer preempted between
  // its invalidation store and its tail_pos store), 90 ms inside the reader's spin.
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  uint64_t written = 2;
  while (pub.Ring().Get("tail_pos") <= p2 && written < kLast) {
    ++written;
    pub.WritePacket(written, PacketIsKey(written, 6));
  }
  const double lap_ms = static_cast<double>(MonoNs() - seen) / 1e6;
  ctx.Expect(pub.Ring().Get("tail_pos") > p2, "HARNESS", "the script laps packet 2",
             "tail_pos " + std::to_string(pub.Ring().Get("tail_pos")));
  const uint64_t key = pub.Ring().Get("last_key_seq");
  const nlohmann::json* ov = sub.WaitFor(
      [](const nlohmann::json& j) {
        return j.value("event", "") == "overrun" || j.value("event", "") == "error" ||
               j.value("event", "") == "packet";
      },
      In(4000), &from);
  if (ov != nullptr && ov->value("event", "") == "error" && lap_ms > 60) {
    ctx.Unsupported("the harness completed the lap " + std::to_string(lap_ms) +
                    " ms after seeing packet 1 (descheduled): a reader that spun the full " +
                    "SEQLOCK_SPIN_LIMIT_MS may rightly have given up; not judged");
  }
  ctx.Expect(ov != nullptr && ov->value("event", "") == "overrun", "PKT-READ-02",
             "PACKET_OVERRUN once the lap shows (tail_pos passed packet 2 " +
                 std::to_string(lap_ms) + " ms after packet 1 was seen, inside the " +
                 "SEQLOCK_SPIN_LIMIT_MS spin on its odd lock)",
             ov ? ov->dump() : "nothing; " + sub.StdoutTail(4));
  // Resumed at the keyframe: the rest flows one packet at a time, so nothing laps it again.
  for (uint64_t n = key; n <= kLast; ++n) {
    if (n > written) {
      written = n;
      pub.WritePacket(n, PacketIsKey(n, 6));
    }
    const nlohmann::json* e = sub.WaitEvent("packet", In(4000), &from);
    const std::vector<uint8_t> want = PacketPayload(n, pub.params().max_packet_bytes);
    ctx.Expect(e != nullptr && e->value("seq", uint64_t{0}) == n &&
                   e->value("checksum", std::string()) == Hex64(Fnv1a64(want)),
               "PKT-READ-05",
               "packet " + std::to_string(n) + " after resuming at keyframe " + std::to_string(key),
               e ? e->dump() : "none; " + sub.StdoutTail(4));
  }
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
}

// The other way out of PKT-READ-02's odd-lock spin: packet 2's lock reads 2n - 1 (still being
// written) although head_seq already counts it, and 10 ms later the writer completes the record.
// A reader still spinning must deliver packet 2; one that stopped re-loading the lock, or gave up
// at once, reports CORRUPT (a conforming writer stores head_seq last, so this is the hostile order
// the spin must survive, as PKT-READ-02 spells out).
CF_CASE(OddLockThenPacket, "10.6/odd-lock-then-packet",
        "packet 2's lock reads 2n - 1 although head_seq shows packet 2, and the writer completes "
        "the record 10 ms later: the reader, still spinning, delivers packet 2 (never CORRUPT), "
        "then packet 3",
        (std::vector<std::string>{"PKT-READ-02"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  uint64_t* lock = nullptr;
  Process* subp = nullptr;
  size_t from = 0;
  StartWithOddLock(ctx, pub, 3, 3, &lock, &subp, &from);  // 2n - 1
  Process& sub = *subp;
  const int64_t seen = MonoNs();
  // The delay is the stimulus (a record completed after its head_seq), 90 ms inside the spin.
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::atomic_ref<uint64_t>(*lock).store(4, std::memory_order_release);
  const double done_ms = static_cast<double>(MonoNs() - seen) / 1e6;
  pub.WritePacket(3, false);
  for (uint64_t n = 2; n <= 3; ++n) {
    const nlohmann::json* e = sub.WaitEvent("packet", In(4000), &from);
    if (e == nullptr && done_ms > 60) {
      ctx.Unsupported("the harness completed the record " + std::to_string(done_ms) +
                      " ms after seeing packet 1 (descheduled): a reader that spun the full " +
                      "SEQLOCK_SPIN_LIMIT_MS may rightly have given up; not judged");
    }
    const std::vector<uint8_t> want = PacketPayload(n, pub.params().max_packet_bytes);
    ctx.Expect(e != nullptr && e->value("seq", uint64_t{0}) == n &&
                   e->value("checksum", std::string()) == Hex64(Fnv1a64(want)),
               "PKT-READ-02",
               "packet " + std::to_string(n) + " once its record completes (" +
                   std::to_string(done_ms) + " ms after packet 1 was seen)",
               e ? e->dump() : "none; " + sub.StdoutTail(4));
  }
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
}

// SHM-ORDER-04's decrement for packets: the reader parks in packet_waiters before each packet;
// after its clean exit both counts are back to 0.
CF_CASE(WaiterCountPackets, "10.6/subscriber-gives-back-packet-waiters",
        "the reader parks in packet_waiters before each of 4 packets, is woken, and leaves the "
        "count at 0 when it exits",
        (std::vector<std::string>{"SHM-ORDER-04", "PKT-READ-01"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub(PacketSubArgs(4));
  pub.Handshake();
  int parks = 0;
  for (uint64_t n = 1; n <= 4; ++n) {
    parks += WaitParked(pub, "packet_waiters", sub, 500) ? 1 : 0;
    pub.WritePacket(n, PacketIsKey(n, 6));
  }
  ExpectPackets(ctx, sub, 1, 4, pub.params().max_packet_bytes, "PKT-READ-01");
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
  ctx.Expect(sub.exit_code() == 0, "CONF-SUB-01", "subscriber adapter exit 0", sub.StatusText());
  if (parks == 0) ctx.Note("the reader never parked in packet_waiters (it polls, SHM-ORDER-03)");
  ExpectWaiterCountsReturned(ctx, pub, parks);
}

// PKT-READ-05's other branch: the reader is lapped while the ring holds no keyframe at all
// (last_key_seq 0), so there is none to resume at; it restarts at the head, (head_seq + 1,
// head_pos), and skips to the next keyframe. A reader that restarts one packet early (at
// head_seq) finds no record 2n there and overruns again, or delivers a packet out of place.
CF_CASE(LappedNoKeyframe, "10.6/lapped-without-keyframe-restarts-at-head",
        "a reader lapped while the ring holds no keyframe gets one PACKET_OVERRUN, restarts at "
        "(head_seq + 1, head_pos) and delivers from the next keyframe on",
        (std::vector<std::string>{"PKT-READ-05", "PKT-READ-06", "PKT-API-01"}), Role::kSubscriber,
        kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub(PacketSubArgs(24));
  LapBeforeAttach(pub, false);
  StructView r = pub.Ring();
  ctx.Expect(r.Get("tail_pos") > 0 && r.Get("last_key_seq") == 0, "HARNESS",
             "the script laps packet 1 and the ring holds no keyframe",
             "tail_pos " + std::to_string(r.Get("tail_pos")) + ", last_key_seq " +
                 std::to_string(r.Get("last_key_seq")));
  pub.SendAttachOk();
  size_t from = 0;
  const nlohmann::json* ov = sub.WaitFor(
      [](const nlohmann::json& j) {
        return j.value("event", "") == "overrun" || j.value("event", "") == "error";
      },
      In(4000), &from);
  ctx.Expect(ov != nullptr && ov->value("event", "") == "overrun", "PKT-READ-02",
             "PACKET_OVERRUN for a lapped start position",
             (ov ? ov->dump() : std::string("none")) + "; " + sub.StdoutTail(4));
  // Let the restarted reader look at the ring before packet 21 exists: a conforming one waits
  // for head_seq >= 21 (blocked: packet_waiters counts it); one that restarted at head_seq reads
  // the stale bytes at head_pos at once. A reader that only polls is given 500 ms.
  StructView h = pub.Header();
  const Deadline parked = In(500);
  while (h.Get("packet_waiters") == 0 && sub.running() && Clock::now() < parked) {
    FutexWait(h.Bytes("packet_waiters").data(), 0, 5);
  }
  // Packet 21 is no keyframe (skipped), 22 is: delivery starts there.
  for (uint64_t n = 21; n <= 24; ++n)
    pub.WritePacket(n, n == 22);
  ExpectPackets(ctx, sub, 22, 24, pub.params().max_packet_bytes, "PKT-READ-05");
  const int overruns = CountOverruns(sub);
  ctx.Expect(overruns == 1, "PKT-READ-05",
             "exactly one PACKET_OVERRUN: the restart at the head finds packet head_seq + 1 "
             "where head_pos says",
             std::to_string(overruns) + " overrun events; " + sub.StdoutTail(4));
}

// PKT-READ-04's own example, made deterministic: the reader's start position p (a keyframe the
// publisher named in HELLO_RESP) has been lapped before it reads, and p now lies inside the
// payload of a newer packet whose (opaque) bytes at p read exactly like a complete keyframe
// record 2n of the current parameters. The lock alone cannot tell; only the reload of tail_pos
// after the copy (tail_pos > p) shows that the bytes came from a newer lap. A reader without the
// re-check delivers a torn "packet n". The whole lap is written before ATTACH_RESP, so the reader
// sees the final state whatever the scheduling (as a reader descheduled for a lap would).
CF_CASE(LappedInsidePayload, "10.6/lapped-position-inside-newer-payload",
        "the start position was lapped and now lies inside a newer packet's payload that reads "
        "as a complete keyframe record: the copy is discarded (PACKET_OVERRUN), the reader "
        "resumes at the latest keyframe and never delivers the torn packet",
        (std::vector<std::string>{"PKT-READ-04", "PKT-READ-05", "PKT-JOIN-02", "PKT-API-01"}),
        Role::kSubscriber, kV2) {
  const Spec& s = ctx.spec();
  const PubParams pp = RingPubParams();
  const uint64_t cap = pp.ring_capacity;
  const uint32_t pbytes = pp.max_packet_bytes;
  ScriptedPub pub(ctx, pp);
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  // Lap 1: keyframes 1 and 2, then contract packets (not keyframes) up to the end of the lap.
  pub.WritePacket(1, true);
  const uint64_t p2 = pub.WritePacket(2, true);
  uint64_t n = 3;
  while (pub.head_pos() + Align32(32 + PacketSize(n, pbytes)) <= cap)
    pub.WritePacket(n++, false);
  // The scenario ends with packet n + 2: the adapter reads up to it.
  Process& sub = pub.StartSub(PacketSubArgs(n + 2));
  pub.ReadHello();
  // HELLO_RESP names the latest keyframe, packet 2 at p2 (PKT-JOIN-01).
  MessageBuilder b = pub.HelloResp();
  b.Set("proto_version", 2)
      .Set("caps", 1)
      .Set("initial_packet_seq", 2)
      .Set("initial_packet_pos", p2);
  pub.conn().Send(b.Encode());
  pub.ReadAttach();
  // The first record of lap 2 starts at data offset 0 and its payload covers offset p2 % cap.
  // Its bytes there: a record header saying "complete keyframe 2, 40 bytes, current params".
  std::vector<uint8_t> payload(pbytes);
  for (size_t i = 0; i < payload.size(); ++i)
    payload[i] = static_cast<uint8_t>(0x5a ^ i);
  const uint64_t at = p2 % cap - 32;  // payload offset of data offset p2 % cap
  ctx.Expect(p2 % cap >= 32 && at + 32 + 40 <= payload.size(), "HARNESS",
             "packet 2's position lies inside the payload of lap 2's first record",
             "p2 " + std::to_string(p2));
  StructView fake(s, "PacketRecordHeader", payload, at);
  fake.Set("lock", 2 * 2);
  fake.Set("size", 40);
  fake.Set("flags", s.Enum("packet_flags", "KEYFRAME"));
  fake.Set("pts", 2000);
  fake.Set("params_generation", 1);
  std::fill(fake.Bytes("reserved0").begin(), fake.Bytes("reserved0").end(), 0);
  const uint64_t lapper = n;
  const uint64_t lp = pub.WritePacket(n++, false, &payload);
  // The latest keyframe, with contract bytes: where a conforming reader resumes.
  const uint64_t key = n;
  pub.WritePacket(n++, true);
  pub.WritePacket(n++, false);
  const uint64_t end = n - 1;
  StructView r = pub.Ring();
  ctx.Expect(lp == cap && r.Get("tail_pos") > p2, "HARNESS",
             "packet " + std::to_string(lapper) + " starts lap 2 at position " +
                 std::to_string(cap) + " and tail_pos has passed packet 2",
             "position " + std::to_string(lp) + ", tail_pos " + std::to_string(r.Get("tail_pos")));
  StructView seen(s, "PacketRecordHeader", pub.ring()->span(), r.Get("data_offset") + p2 % cap);
  ctx.Expect(seen.Get("lock") == 4, "HARNESS", "the bytes at packet 2's position read lock 4",
             std::to_string(seen.Get("lock")), seen.All(), seen.base());
  pub.SendAttachOk();
  size_t from = 0;
  sub.WaitFor(
      [end](const nlohmann::json& j) {
        return (j.value("event", "") == "packet" && j.value("seq", uint64_t{0}) >= end) ||
               j.value("event", "") == "error";
      },
      In(4000), &from);
  int overruns = 0;
  for (const auto& e : sub.events()) {
    overruns += e.value("event", "") == "overrun";
    if (e.value("event", "") != "packet") continue;
    const uint64_t seq = e.value("seq", uint64_t{0});
    const std::vector<uint8_t> want = PacketPayload(seq, pbytes);
    ctx.Expect(seq >= key && e.value("checksum", std::string()) == Hex64(Fnv1a64(want)),
               "PKT-READ-04",
               "no packet read from packet 2's lapped position (its bytes belong to packet " +
                   std::to_string(lapper) + "); the first delivery is keyframe " +
                   std::to_string(key) + " with contract bytes",
               e.dump());
  }
  ctx.Expect(overruns == 1, "PKT-READ-04",
             "one PACKET_OVERRUN for the lapped start position (tail_pos > p after the copy)",
             std::to_string(overruns) + " overrun events; " + sub.StdoutTail(4));
  ExpectPackets(ctx, sub, key, end, pbytes, "PKT-READ-05");
}

// PKT-JOIN-01 lets a subscriber join before any keyframe exists: it starts at (head_seq + 1,
// head_pos) and must skip the packets before the first keyframe.
CF_CASE(JoinBeforeKeyframe, "10.6/join-before-first-keyframe",
        "a subscriber that joined before any keyframe (initial (1, 0)) skips packets 1-3 (not "
        "keyframes) and delivers from keyframe 4 on",
        (std::vector<std::string>{"PKT-READ-06", "PKT-JOIN-02"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub(PacketSubArgs(7));
  pub.Handshake();  // no keyframe yet: initial (head_seq + 1, head_pos) = (1, 0)
  for (uint64_t n = 1; n <= 7; ++n)
    pub.WritePacket(n, n == 4);
  ExpectPackets(ctx, sub, 4, 7, pub.params().max_packet_bytes, "PKT-READ-06");
}

// PKT-JOIN-02 for a late joiner while the ring moves on: packets 1-5 are in the ring (keyframes
// 1 and 4) when the publisher builds HELLO_RESP with initial (4, position of 4); packets 6-8
// (keyframe 7) follow before the reader maps the ring, as they may while the message is on its
// way. The reader must start exactly at (4, position of 4): one that keeps the sequence number but
// takes its position from the ring as it finds it (keyframe 7's, or the head) reads packet 4
// where it is not and reports CORRUPT, and one that starts at keyframe 7 skips 4-6.
CF_CASE(LateJoinAtKeyframe, "10.6/late-join-at-keyframe",
        "HELLO_RESP says initial (4, position of 4) while the ring moves on to keyframe 7 before "
        "the reader maps it: the reader starts at packet 4 and delivers 4-9",
        (std::vector<std::string>{"PKT-JOIN-02", "PKT-READ-01"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  for (uint64_t n = 1; n <= 5; ++n)
    pub.WritePacket(n, n == 1 || n == 4);
  const uint64_t key_seq = pub.Ring().Get("last_key_seq");
  const uint64_t key_pos = pub.Ring().Get("last_key_pos");
  ctx.Expect(key_seq == 4 && key_pos != 0, "HARNESS", "keyframe 4 at a nonzero position",
             "last_key " + std::to_string(key_seq) + " at " + std::to_string(key_pos));
  Process& sub = pub.StartSub(PacketSubArgs(9));
  pub.ReadHello();
  MessageBuilder b = pub.HelloResp();
  b.Set("proto_version", 2)
      .Set("caps", 1)
      .Set("initial_packet_seq", key_seq)
      .Set("initial_packet_pos", key_pos);
  for (uint64_t n = 6; n <= 8; ++n)  // the ring moves on before the message arrives
    pub.WritePacket(n, n == 7);
  ctx.Expect(pub.Ring().Get("tail_pos") <= key_pos, "HARNESS", "packet 4 still in the ring",
             "tail_pos " + std::to_string(pub.Ring().Get("tail_pos")));
  pub.conn().Send(b.Encode());
  pub.ReadAttach();
  pub.SendAttachOk();
  pub.WritePacket(9, false);
  ExpectPackets(ctx, sub, 4, 9, pub.params().max_packet_bytes, "PKT-JOIN-02");
  WaitExitOrFail(ctx, sub, "CONF-SUB-01", 5000);
}

CF_CASE(StaleParamsKeyframe, "10.6/skip-keyframe-of-old-params",
        "after joining, a keyframe whose params_generation is not the current parameters' is "
        "skipped; delivery starts at the first keyframe of the current generation",
        (std::vector<std::string>{"PKT-READ-08", "PKT-READ-06"}), Role::kSubscriber, kV2) {
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  pub.SetCodecParams(CodecParamsPayload(0), 0);  // generation 2 is current
  Process& sub = pub.StartSub(PacketSubArgs(6));
  pub.Handshake();                        // initial (1, 0): nothing written yet
  pub.WritePacket(1, true, nullptr, 1);   // keyframe of generation 1: must be skipped
  pub.WritePacket(2, false, nullptr, 1);  // follows it: skipped too
  for (uint64_t n = 3; n <= 6; ++n)
    pub.WritePacket(n, n == 3 || n == 5, nullptr, 2);
  ExpectPackets(ctx, sub, 3, 6, pub.params().max_packet_bytes, "PKT-READ-08");
}

CF_CASE(PacketNoWakeup, "10.6/bounded-packet-wait-without-wakeup",
        "packets appended without a packet_futex increment or FUTEX_WAKE (a writer that died or "
        "lies) still reach a subscriber blocked with a long timeout within PEER_DEATH_DETECT_MS",
        (std::vector<std::string>{"SHM-ORDER-04", "PKT-READ-01"}), Role::kSubscriber, kV2) {
  const int bound = static_cast<int>(ctx.spec().Const("PEER_DEATH_DETECT_MS"));
  ScriptedPub pub(ctx, RingPubParams());
  pub.Create();
  pub.SetCodecParams(CodecParamsPayload(0), 0);
  Process& sub = pub.StartSub({"--packets", "3", "--timeout-ms", "10000", "--kind", "host"});
  pub.Handshake();
  StructView h = pub.Header();
  for (uint64_t n = 1; n <= 3; ++n) {
    // Let the subscriber block first (a polling subscriber never counts itself: then just go).
    const Deadline ready = In(500);
    while (h.Get("packet_waiters") == 0 && Clock::now() < ready) {
      FutexWait(h.Bytes("packet_waiters").data(), 0, 5);
    }
    const auto t0 = Clock::now();
    pub.WritePacket(n, n == 1, nullptr, 1, false);
    size_t from = 0;
    const nlohmann::json* e = sub.WaitFor(
        [n](const nlohmann::json& j) {
          return j.value("event", "") == "packet" && j.value("seq", uint64_t{0}) == n;
        },
        In(bound + 3000), &from);
    const auto took =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    ctx.Expect(e != nullptr, "SHM-ORDER-04",
               "packet " + std::to_string(n) + " delivered without a wake-up",
               "not delivered; " + sub.StatusText());
    // Adapter output and scheduling on a loaded 2-core machine: 250 ms of slack.
    ctx.Expect(took <= bound + 250, "SHM-ORDER-04",
               "delivered within PEER_DEATH_DETECT_MS (" + std::to_string(bound) + " ms, +250)",
               std::to_string(took) + " ms");
  }
}

}  // namespace
}  // namespace cuframes::conform
