#!/usr/bin/env python3
"""make_seeds.py: regenerate the committed seed corpora fuzz/corpus/<target>/ and the
dictionaries fuzz/fuzz_<target>.dict from the machine-readable twin spec/cuframes.json.

  fuzz/make_seeds.py [--spec spec/cuframes.json] [--out fuzz] [--check]

Every byte is laid out from the twin's struct tables (field offsets and sizes) and constants, not
from the reference's headers; the packet-ring images come from a small writer that follows spec
10.4 step by step. One seed per message type / layout case; the file name says which case. The
input formats are the ones documented at the top of each fuzz_<target>.cpp. Seeds named
known-<ID>-*.bin reproduce an open bug listed in fuzz/known_bugs.txt, regress-<ID>-*.bin a fixed
one (see fuzz/README.md). Files with "found" in their name are inputs a fuzzer found; this script
never writes or deletes them.

--check regenerates into a temporary directory and exits 1 if anything differs from what is
committed (a twin change that the corpora have not followed). Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import struct
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Twin:
    def __init__(self, path: Path):
        self.doc = json.loads(path.read_text())
        self.c = {k: v["value"] for k, v in self.doc["constants"].items()}
        self.enums = self.doc["enums"]
        self.structs = self.doc["structs"]
        self.msgs = {m["name"]: m for m in self.doc["messages"]}
        self.errors = {e["name"]: e["value"] for e in self.doc["errors"]}

    def pack(self, struct_name: str, total: int | None = None, /, **fields) -> bytearray:
        """Lays out `struct_name` (zero-filled, `total` bytes, default its size) with the given
        fields, little-endian."""
        st = self.structs[struct_name]
        buf = bytearray(total if total is not None else st["size"])
        known = {f["name"]: f for f in st["fields"]}
        for name, value in fields.items():
            f = known[name]
            if isinstance(value, (bytes, bytearray)):
                buf[f["offset"]:f["offset"] + len(value)] = value
            else:
                mask = (1 << (8 * f["size"])) - 1
                at, n = f["offset"], f["size"]
                buf[at:at + n] = (value & mask).to_bytes(n, "little")
        return buf

    def off(self, struct_name: str, field: str) -> int:
        return next(f["offset"] for f in self.structs[struct_name]["fields"] if f["name"] == field)


def tlv(t: Twin, msg: str, payload: bytes, reserved: int = 0, length: int | None = None) -> bytes:
    hdr = t.pack("TlvHeader", type=t.msgs[msg]["type"], reserved0=reserved.to_bytes(2, "little"),
                 length=len(payload) if length is None else length)
    return bytes(hdr) + bytes(payload)


def valid_messages(t: Twin) -> dict[str, bytes]:
    m = t.c["HELLO_MAGIC"]
    e = t.errors
    return {
        "HELLO_REQ": tlv(t, "HELLO_REQ", t.pack("HelloReq", magic=m, min_proto=1, max_proto=2,
                                                  kinds_mask=1, lib_version=0x000200, caps=1)),
        "HELLO_RESP": tlv(t, "HELLO_RESP", t.pack("HelloResp", status=0, proto_version=2,
                                                    memory_kind=1, subscriber_index=3,
                                                    generation=7, lib_version=0x000200, caps=1,
                                                    initial_packet_seq=5, initial_packet_pos=640)),
        "ATTACH_REQ": tlv(t, "ATTACH_REQ", t.pack("AttachReq", subscriber_index=3, generation=7,
                                                    flags=1)),
        "ATTACH_RESP": tlv(t, "ATTACH_RESP", t.pack("AttachResp", status=0, start_seq=42)),
        "DETACH": tlv(t, "DETACH", t.pack("Detach", reason=0)),
        "ERROR": tlv(t, "ERROR", bytes(t.pack("ErrorMsg", code=e["EVICTED"], text_len=24)) +
                     b"no ACK within ack_timeout"[:24]),
        "PING": tlv(t, "PING", t.pack("Ping", nonce=0x1122334455667788)),
        "PONG": tlv(t, "PONG", t.pack("Pong", nonce=0x1122334455667788)),
    }


def seeds_tlv(t: Twin) -> dict[str, bytes]:
    out = {}
    msgs = valid_messages(t)
    for i, (name, b) in enumerate(msgs.items()):
        out[f"msg-{i + 1}-{name.lower()}.bin"] = bytes([i]) + b
    out["stream-all-types.bin"] = bytes([7]) + b"".join(msgs.values())
    long_req = t.pack("HelloReq", 100, magic=t.c["HELLO_MAGIC"], min_proto=1, max_proto=9,
                      kinds_mask=7)
    out["hello-req-longer-than-64.bin"] = bytes([3]) + tlv(t, "HELLO_REQ", long_req)
    out["error-empty-text.bin"] = bytes([1]) + tlv(t, "ERROR",
                                                   t.pack("ErrorMsg", code=9, text_len=0))
    max_text = t.c["TLV_MAX_PAYLOAD"] - 8
    out["error-max-text.bin"] = bytes([2]) + tlv(
        t, "ERROR", bytes(t.pack("ErrorMsg", code=20, text_len=max_text)) + b"x" * max_text)
    # Framing errors (3.2), each after a valid PING so the stream has a good prefix.
    ping = msgs["PING"]
    out["err-length-too-large.bin"] = bytes([5]) + ping + tlv(t, "PING", b"", length=4097)
    out["err-unknown-type.bin"] = (bytes([5]) + ping +
                                   bytes(t.pack("TlvHeader", type=9, length=8)) + bytes(8))
    out["err-reserved-header.bin"] = bytes([5]) + ping + tlv(t, "PONG", bytes(8), reserved=1)
    out["err-length-out-of-range.bin"] = bytes([5]) + ping + tlv(t, "DETACH", bytes(16))
    out["err-error-text-len.bin"] = bytes([5]) + ping + tlv(
        t, "ERROR", bytes(t.pack("ErrorMsg", code=9, text_len=5)) + b"abc")
    out["truncated.bin"] = bytes([0]) + msgs["HELLO_RESP"][:40]
    return out


def seeds_hello(t: Twin) -> dict[str, bytes]:
    """[P-1][kind-1][uid_denied][full][has_ring][tail][HELLO_REQ 64+tail][sub_max-1]
    [sub_mask u32][HELLO_RESP 64]"""
    magic = t.c["HELLO_MAGIC"]
    host, ipc = t.enums["memory_kind"]["HOST"], t.enums["memory_kind"]["CUDA_IPC"]

    def case(req: bytes, pub_max=2, kind=host, uid_denied=0, full=0, ring=1, resp: bytes = b"",
             sub_max=2, sub_mask=1, tail=0):
        req = bytes(req) + bytes(tail)
        resp = bytes(resp) or bytes(t.pack("HelloResp", status=0, proto_version=2, memory_kind=1))
        return (bytes([pub_max - 1, kind - 1, uid_denied, full, ring, tail]) + req +
                bytes([sub_max - 1]) + struct.pack("<I", sub_mask) + resp)

    def req(min_p=1, max_p=2, mask=1, caps=1, m=magic):
        return t.pack("HelloReq", magic=m, min_proto=min_p, max_proto=max_p, kinds_mask=mask,
                      lib_version=0x000200, caps=caps)

    def resp(status=0, proto=2, kind=host, caps=0):
        return t.pack("HelloResp", status=status, proto_version=proto, memory_kind=kind,
                      subscriber_index=0, generation=1, caps=caps)

    e = t.errors
    return {
        "v2-sub-v2-pub-packets.bin": case(req(), resp=resp(caps=1)),
        "v1-sub-v2-pub.bin": case(req(max_p=1, caps=0), resp=resp(proto=1), sub_max=1),
        "v2-sub-v1-pub.bin": case(req(), pub_max=1, resp=resp(proto=1)),
        "future-sub-v9.bin": case(req(max_p=9), pub_max=3, resp=resp(proto=3), sub_max=3),
        "version-mismatch-min-above-pub.bin": case(req(min_p=3, max_p=4)),
        "version-min-above-max.bin": case(req(min_p=2, max_p=1)),
        "regress-B5-version-min-zero.bin": case(req(min_p=0, max_p=2)),
        "bad-magic.bin": case(req(m=0x12345678)),
        "unsupported-kind.bin": case(req(mask=1), kind=ipc),
        "cuda-kind-accepted.bin": case(req(mask=3), kind=ipc, resp=resp(kind=ipc), sub_mask=3),
        "permission.bin": case(req(), uid_denied=1),
        "full.bin": case(req(), full=1),
        "hello-req-tail-64.bin": case(req(), tail=64),
        "resp-status-full.bin": case(req(), resp=resp(status=e["FULL"], proto=0, kind=0)),
        "resp-version-above-sub.bin": case(req(), resp=resp(proto=2), sub_max=1),
        "resp-kind-not-offered.bin": case(req(), resp=resp(kind=ipc), sub_mask=1),
        "regress-B1-resp-status-200.bin": case(req(), resp=resp(status=200)),
        "regress-B2-resp-version-zero.bin": case(req(), resp=resp(proto=0)),
    }


def segment(t: Twin, kind: int = 1, slots: int = 2, subs: int = 1, slot_bytes: int = 64,
            state: int = 1, **over) -> bytearray:
    """A frame segment laid out as SHM-LAYOUT-01 says; keyword arguments named like header fields
    override those fields after the layout is computed (file_size: the file's length)."""
    slot_count, max_subs = slots, subs
    c = t.c
    sub_off = c["SEGMENT_HEADER_SIZE"] + c["SLOT_DESCRIPTOR_SIZE"] * slot_count
    sub_end = sub_off + c["SUBSCRIBER_SLOT_SIZE"] * max_subs
    align = c["HOST_DATA_ALIGN"]
    if kind == t.enums["memory_kind"]["HOST"]:
        data_offset = (sub_end + align - 1) // align * align
        stride = (slot_bytes + align - 1) // align * align
        size = data_offset + slot_count * stride
    else:
        data_offset = stride = 0
        size = sub_end
    f = dict(layout_version=c["SEGMENT_LAYOUT_VERSION"], magic=c["SEGMENT_MAGIC"], state=state,
             header_size=c["SEGMENT_HEADER_SIZE"], proto_version=2, memory_kind=kind,
             slot_count=slot_count, max_subscribers=max_subs, flags=0, publisher_pid=1234,
             publisher_start_time=5678, segment_size=size, lib_version=0x000200, width=8,
             height=8, pixel_format=3, pitch=8, slot_bytes=slot_bytes,
             slot_desc_offset=c["SEGMENT_HEADER_SIZE"], sub_slot_offset=sub_off,
             data_offset=data_offset, data_stride=stride)
    file_size = over.pop("file_size", size)
    f.update(over)
    buf = bytearray(file_size)
    hdr = t.pack("SegmentHeader", **f)
    buf[:min(len(hdr), file_size)] = hdr[:file_size]
    return buf


def seeds_segment_attach(t: Twin) -> dict[str, bytes]:
    """[mode: bit 0 = also attach through /dev/shm][segment file contents]"""
    host, ipc = t.enums["memory_kind"]["HOST"], t.enums["memory_kind"]["CUDA_IPC"]
    st = t.enums["segment_state"]
    cases = {
        "ok-host.bin": segment(t),
        "ok-host-3-slots-2-subs.bin": segment(t, slots=3, subs=2, slot_bytes=5000),
        "ok-cuda-ipc.bin": segment(t, kind=ipc),
        "ok-cuda-ipc-max-geometry.bin": segment(t, kind=ipc, slots=256, subs=64),
        "layout-version-2.bin": segment(t, layout_version=2),
        "bad-magic.bin": segment(t, magic=0x50465543),
        "bad-header-size.bin": segment(t, header_size=512),
        "state-closed.bin": segment(t, state=st["CLOSED"]),
        "state-init.bin": segment(t, state=st["INIT"]),
        "state-init-blank.bin": bytearray(768),
        "state-init-bad-layout.bin": segment(t, state=st["INIT"], magic=0x12345678),
        "state-unknown.bin": segment(t, state=7),
        "slot-count-1.bin": segment(t, kind=ipc, slot_count=1),
        "slot-count-257.bin": segment(t, kind=ipc, slot_count=257),
        "max-subscribers-0.bin": segment(t, kind=ipc, max_subscribers=0),
        "max-subscribers-65.bin": segment(t, kind=ipc, max_subscribers=65),
        "memory-kind-0.bin": segment(t, kind=ipc, memory_kind=0),
        "memory-kind-4.bin": segment(t, kind=ipc, memory_kind=4),
        "slot-desc-offset.bin": segment(t, slot_desc_offset=320),
        "sub-slot-offset.bin": segment(t, sub_slot_offset=1024),
        "segment-size-above-file.bin": segment(t, kind=ipc, file_size=700, segment_size=768),
        "data-offset-unaligned.bin": segment(t, data_offset=4096 + 64),
        "data-offset-in-sub-slots.bin": segment(t, slots=20, data_offset=4096),
        "data-stride-below-slot-bytes.bin": segment(t, slot_bytes=5000, data_stride=4096,
                                                    segment_size=4096 * 3),
        "buffers-past-end.bin": segment(t, data_stride=8192),
        "cuda-data-offset-nonzero.bin": segment(t, kind=ipc, data_offset=4096),
        "file-shorter-than-header.bin": segment(t)[:100],
        "regress-B3-segment-size-below-file.bin": segment(t, kind=ipc, file_size=1024),
        "regress-B4-data-stride-unaligned.bin": segment(t, slot_bytes=64, data_stride=64 * 3,
                                                      segment_size=4096 + 64 * 6,
                                                      file_size=4096 + 64 * 6),
    }
    return {name: bytes([1]) + bytes(buf) for name, buf in cases.items()}


class RingImage:
    """A packet ring laid out and written as spec 10.2-10.5 say (one writer, no readers)."""

    def __init__(self, t: Twin, capacity: int = 4096, max_packet: int = 1000, codec: int = 1):
        self.t, self.cap, self.maxp = t, capacity, max_packet
        c = t.c
        self.data_off = c["RING_DATA_OFFSET"]
        self.buf = bytearray(self.data_off + capacity)
        hdr = t.pack("PacketRingHeader", layout_version=c["RING_LAYOUT_VERSION"],
                     magic=c["RING_MAGIC"], state=t.enums["segment_state"]["READY"],
                     header_size=c["RING_HEADER_SIZE"], capacity=capacity,
                     data_offset=self.data_off, max_packet_bytes=max_packet, codec=codec,
                     segment_size=len(self.buf))
        self.buf[:len(hdr)] = hdr
        self.head_seq = self.head_pos = self.tail_pos = 0
        self.params_gen = 0
        self.params_lock = 0
        self.spans = []  # (pos, span) of the records still in the ring

    def set_header(self, **fields):
        for name, value in fields.items():
            off = self.t.off("PacketRingHeader", name)
            fields_ = self.t.structs["PacketRingHeader"]["fields"]
            size = next(f["size"] for f in fields_ if f["name"] == name)
            self.buf[off:off + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

    def _record(self, pos: int, lock: int, size: int, flags: int, pts: int, payload: bytes):
        rec = self.t.pack("PacketRecordHeader", lock=lock, size=size, flags=flags, pts=pts,
                          params_generation=0 if flags & 2 else self.params_gen)
        at = self.data_off + pos % self.cap
        self.buf[at:at + 32] = rec
        self.buf[at + 32:at + 32 + len(payload)] = payload

    def publish(self, payload: bytes, key: bool, pts: int = 0):
        n, p = self.head_seq + 1, self.head_pos
        left = self.cap - p % self.cap
        span = (32 + len(payload) + 31) // 32 * 32
        pad = span > left
        ppos = p + left if pad else p
        end = ppos + span
        while end - self.tail_pos > self.cap:
            pos, sp = self.spans.pop(0)
            at = self.data_off + pos % self.cap
            lock = int.from_bytes(self.buf[at:at + 8], "little") | 1
            self.buf[at:at + 8] = lock.to_bytes(8, "little")
            self.tail_pos += sp
        if pad:
            self._record(p, 2 * n, left - 32, 2, 0, b"")
            self.spans.append((p, left))
        self._record(ppos, 2 * n, len(payload), 1 if key else 0, pts, payload)
        self.spans.append((ppos, span))
        if key:
            self.set_header(last_key_pos=ppos, last_key_seq=n)
        self.head_seq, self.head_pos = n, end
        self.set_header(head_pos=end, head_seq=n, tail_pos=self.tail_pos,
                        packet_futex=n)

    def set_codec_params(self, codec: int, data: bytes):
        self.params_lock += 2
        self.params_gen += 1
        blk = self.t.pack("CodecParams", lock=self.params_lock, generation=self.params_gen,
                          size=len(data), codec=codec, data=data)
        off = self.t.c["CODEC_PARAMS_OFFSET"]
        self.buf[off:off + len(blk)] = blk


def payload(seq: int, size: int) -> bytes:
    """PayloadByte() of fuzz/ring_model.h."""
    return bytes(((seq * 131 + i * 7 + (i >> 8)) & 0xFF) for i in range(size))


def seeds_packet_ring(t: Twin) -> dict[str, bytes]:
    out = {}
    sps = bytes.fromhex("0000000167640028acd940780227e5c0440000030004000003008c3c60c658")

    def raw(name, img: RingImage, mode=0x40):
        out[f"raw-{name}.bin"] = bytes([mode & ~1]) + bytes(img.buf)

    raw("empty", RingImage(t))
    img = RingImage(t)
    img.set_codec_params(1, sps)
    for n in range(1, 9):
        img.publish(payload(n, 40 + 13 * n), key=(n % 4 == 1), pts=n * 1000)
    raw("8-packets-keys-every-4", img)
    img = RingImage(t, max_packet=1500)
    for n in range(1, 7):
        img.publish(payload(n, 1000), key=(n % 2 == 1), pts=n)
    raw("wrapped-with-pad-and-lapped", img)
    odd = RingImage(t)
    odd.publish(payload(1, 100), key=True)
    at = odd.data_off
    odd.buf[at:at + 8] = (3).to_bytes(8, "little")  # packet 2 being written over packet 1
    raw("lock-odd-mid-write", odd)
    bad = RingImage(t)
    bad.publish(payload(1, 100), key=True)
    bad.buf[bad.data_off + 12:bad.data_off + 16] = (4).to_bytes(4, "little")
    raw("record-unknown-flags", bad)
    big = RingImage(t)
    big.publish(payload(1, 100), key=True)
    big.buf[big.data_off + 8:big.data_off + 12] = (5000).to_bytes(4, "little")
    raw("record-size-above-max", big)
    for name, fields in {
        "bad-magic": dict(magic=t.c["SEGMENT_MAGIC"]),
        "layout-version-2": dict(layout_version=2),
        "header-size-512": dict(header_size=512),
        "capacity-not-power-of-two": dict(capacity=6000),
        "capacity-below-4096": dict(capacity=2048),
        "data-offset-4480": dict(data_offset=4480),
        "max-packet-too-big": dict(max_packet_bytes=2048),
        "max-packet-zero": dict(max_packet_bytes=0),
        "segment-size-too-small": dict(segment_size=4416 + 2048),
        "state-init": dict(state=0),
        "state-closed": dict(state=2),
        "state-unknown": dict(state=9),
        "head-seq-huge": dict(head_seq=(1 << 63) + 5),
        "last-key-bogus": dict(last_key_seq=77, last_key_pos=96),
    }.items():
        im = RingImage(t)
        im.publish(payload(1, 64), key=True)
        im.publish(payload(2, 64), key=False)
        im.set_header(**fields)
        raw(name, im)

    # Structured mode: [odd][cap pick][max_packet u16][ops...] (see fuzz_packet_ring.cpp).
    def pub(size, key=False, big=False):
        return bytes([0x00 | (0x10 if key else 0) | (0x20 if big else 0)]) + struct.pack("<H", size)

    READ, JOIN, REATTACH = b"\x05", b"\x18", b"\x08"
    CLOSE = b"\x09\x00"

    def structured(name, cap_pick, max_packet, ops):
        out[f"ops-{name}.bin"] = (b"\x01" + bytes([cap_pick]) + struct.pack("<H", max_packet - 1) +
                                  ops)

    structured("publish-read", 0, 1000, pub(10, key=True) + READ + pub(20) + pub(30) + READ * 3)
    structured("wrap-with-pad", 0, 2000,
               pub(1500, key=True, big=True) + READ + pub(1500, big=True) + READ +
               pub(1500, key=True, big=True) + READ * 2)
    structured("lapped-reader-resyncs", 0, 1000,
               b"".join(pub(900, key=(i % 3 == 0), big=True) for i in range(12)) + READ * 6)
    structured("late-join", 1, 3000,
               pub(100, key=True) + pub(100) + pub(100) + JOIN + READ * 3)
    structured("codec-params-then-packets", 0, 500,
               b"\x04" + struct.pack("<H", 40) + pub(50, key=True) + b"\x04" +
               struct.pack("<H", 5000) + pub(60) + READ * 3)
    structured("close-then-drain", 0, 500, pub(50, key=True) + pub(50) + CLOSE + READ * 4)
    structured("oversized-refused", 0, 100, b"\x03\x07" + pub(10, key=True) + READ)
    structured("reattach-after-wrap", 2, 4000,
               b"".join(pub(3000, key=(i % 4 == 0), big=True) for i in range(9)) + REATTACH +
               READ * 4)
    structured("hostile-lock-overwrite", 0, 1000,
               pub(100, key=True) + pub(100) + b"\x09\x02" + struct.pack("<I", 4416) + b"\x08" +
               b"\x07\x00\x00\x00\x00\x00\x00\x00" + READ * 3)
    structured("seek-anywhere", 0, 1000,
               pub(100, key=True) + b"\x09\x01" + struct.pack("<QQ", 3, 64) + READ * 2)
    return out


def seeds_codec_params(t: Twin) -> dict[str, bytes]:
    out = {}
    sps = bytes.fromhex("0000000167640028acd940780227e5c0440000030004000003008c3c60c658")

    def block(**f):
        return bytes([0]) + bytes(t.pack("CodecParams", **f))

    out["block-h264-sps.bin"] = block(lock=2, generation=1, size=len(sps), codec=1, data=sps)
    out["block-none-yet.bin"] = block(lock=0, generation=0, size=0, codec=0)
    out["block-lock-odd.bin"] = block(lock=5, generation=2, size=4, codec=1, data=b"abcd")
    out["block-size-4096.bin"] = block(lock=4, generation=2, size=4096, codec=2,
                                       data=b"\x42" * 4096)
    out["block-size-4097.bin"] = block(lock=4, generation=2, size=4097, codec=2)
    out["block-generation-zero-size-big.bin"] = block(lock=2, generation=0, size=9999)
    # Writer sequences: [odd] then ops: even = publish (u16 size, u8 codec), odd = read.
    out["seq-publish-read.bin"] = b"\x01" + b"\x01" + b"\x00" + struct.pack("<HB", 31, 1) + b"\x01"
    out["seq-oversized-then-ok.bin"] = (b"\x01" + b"\x00" + struct.pack("<HB", 4100, 1) + b"\x01" +
                                        b"\x02" + struct.pack("<HB", 4096, 2) + b"\x01")
    out["seq-many-generations.bin"] = b"\x01" + b"".join(
        b"\x00" + struct.pack("<HB", 10 * i, i % 4) + b"\x01" for i in range(8))
    return out


def dictionaries(t: Twin) -> dict[str, list[str]]:
    def le(v: int, n: int) -> str:
        return "".join(f"\\x{b:02X}" for b in v.to_bytes(n, "little"))

    c = t.c
    common_ints = [le(v, 4) for v in (0, 1, 2, 3, 0xFFFFFFFF)]
    tlv_tokens = [le(m["type"], 2) + "\\x00\\x00" + le(m["min_length"], 4)
                  for m in t.doc["messages"]]
    tlv_tokens += [le(c["TLV_MAX_PAYLOAD"], 4), le(c["TLV_MAX_PAYLOAD"] + 1, 4),
                   le(c["HELLO_MAGIC"], 4)]
    hello = [le(c["HELLO_MAGIC"], 4), le(1, 2), le(2, 2), le(3, 2), le(0xFFFF, 2)] + [
        le(e["value"], 4) for e in t.doc["errors"] if e["value"] >= 9]
    seg = [le(c["SEGMENT_MAGIC"], 4), le(c["SEGMENT_LAYOUT_VERSION"], 4),
           le(c["SEGMENT_HEADER_SIZE"], 4),
           le(c["HOST_DATA_ALIGN"], 8), le(c["SEGMENT_HEADER_SIZE"], 8), le(256 + 192 * 2, 8),
           le(c["MAX_SLOT_COUNT"], 4), le(c["MAX_SUBSCRIBERS"], 4)]
    ring = [le(c["RING_MAGIC"], 4), le(c["RING_LAYOUT_VERSION"], 4), le(c["RING_HEADER_SIZE"], 4),
            le(c["RING_DATA_OFFSET"], 8), le(4096, 8), le(8192, 8),
            le(c["RING_DATA_OFFSET"] + 4096, 8),
            le(2, 8), le(3, 8), le(4, 8), le(1, 4), le(2, 4), le(3, 4)]
    params = [le(2, 8), le(3, 8), le(1, 4), le(c["CODEC_PARAMS_MAX_BYTES"], 4),
              le(c["CODEC_PARAMS_MAX_BYTES"] + 1, 4)]
    return {"tlv": tlv_tokens + common_ints, "hello": hello + common_ints,
            "segment_attach": seg + common_ints, "packet_ring": ring + common_ints,
            "codec_params": params + common_ints}


def generate(twin_path: Path, out_dir: Path) -> None:
    t = Twin(twin_path)
    corpora = {"tlv": seeds_tlv(t), "hello": seeds_hello(t),
               "segment_attach": seeds_segment_attach(t), "packet_ring": seeds_packet_ring(t),
               "codec_params": seeds_codec_params(t)}
    for target, seeds in corpora.items():
        d = out_dir / "corpus" / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.iterdir():  # inputs the fuzzers found ("found" in the name) are kept
            if "found" not in old.name:
                old.unlink()
        for name, data in seeds.items():
            (d / name).write_bytes(data)
    for target, tokens in dictionaries(t).items():
        lines = [f"# fuzz_{target}.dict: libFuzzer dictionary, generated by fuzz/make_seeds.py "
                 "from spec/cuframes.json."]
        lines += [f'kw{i}="{tok}"' for i, tok in enumerate(dict.fromkeys(tokens))]
        (out_dir / f"fuzz_{target}.dict").write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", type=Path, default=HERE.parent / "spec" / "cuframes.json")
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--check", action="store_true", help="compare with the committed files")
    args = ap.parse_args()
    if not args.check:
        generate(args.spec, args.out)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(args.spec, Path(tmp))
        cmp = filecmp.dircmp(Path(tmp) / "corpus", args.out / "corpus")
        bad = []

        def walk(c, prefix=""):
            bad.extend(prefix + n for n in c.left_only + c.right_only + c.diff_files)
            for name, sub in c.subdirs.items():
                walk(sub, prefix + name + "/")

        walk(cmp)
        bad = [b for b in bad if "found" not in b]
        for dict_file in Path(tmp).glob("fuzz_*.dict"):
            if not filecmp.cmp(dict_file, args.out / dict_file.name, shallow=False):
                bad.append(dict_file.name)
        if bad:
            print("make_seeds.py --check: differs from the twin: " + ", ".join(sorted(bad)))
            return 1
    print("make_seeds.py --check: corpora and dictionaries match the twin")
    return 0


if __name__ == "__main__":
    sys.exit(main())
