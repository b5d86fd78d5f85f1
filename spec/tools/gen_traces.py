#!/usr/bin/env python3
"""gen_traces.py: write spec/TRACES.md, annotated hex traces of the reference (informative).

  gen_traces.py [--build-dir DIR] [--out PATH] [--check]

Drives the built reference publisher adapter (cuframes-pub) and plays the subscriber itself with
raw socket and shared-memory reads (interop/raw_peer.py: layouts and messages come from the twin,
never from the reference's headers). Four traces:
  1. a full handshake and attach (HELLO_REQ, HELLO_RESP, the segment header, ATTACH_REQ,
     ATTACH_RESP, the subscriber's slot);
  2. one frame commit and its ACK (the header's hot lines, the slot descriptor, the buffer);
  3. a packet-ring wrap with a PAD record;
  4. a lapped reader (the loads of PKT-READ-02 and PKT-READ-05, on the ring of trace 3).
Everything that varies between runs is masked deterministically: pids, the publisher's start
time, lib_version (build-dependent) and the key (shown as K). --check regenerates into memory and
exits 1 when the file differs (spec/tests/test_traces.py runs it).
Exit status: 0 ok, 1 differs (--check), 2 the adapters are missing or a run failed.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "interop"))
import raw_peer as rp  # noqa: E402  (twin-driven raw peer)

DEFAULT_OUT = ROOT / "spec" / "TRACES.md"
MASKED = {  # (struct, field) -> what the mask hides
    ("SegmentHeader", "publisher_pid"): "pid",
    ("SegmentHeader", "publisher_start_time"): "start time",
    ("SegmentHeader", "lib_version"): "build",
    ("SubscriberSlot", "pid"): "pid",
    ("HelloResp", "lib_version"): "build",
}


class TraceError(Exception):
    pass


def find_adapter(build_dir: Path, name: str) -> Path:
    for c in (build_dir / "reference" / name, build_dir / name):
        if c.exists():
            return c
    raise TraceError(f"{name} not found under {build_dir}")


def field_value(f: dict, raw: bytes) -> str:
    fmt = {"u16": "<H", "u32": "<I", "u64": "<Q", "i64": "<q"}.get(f["type"])
    if fmt is None:
        return "all zero" if not any(raw) else "(bytes)"
    v = struct.unpack(fmt, raw)[0]
    return f"{v} (0x{v:x})" if v > 9 else str(v)


def annotate(struct_name: str, data: bytes, base: int = 0, only: tuple[int, int] | None = None,
             title: str = "") -> list[str]:
    """A table of every field of `struct_name` in `data` (optionally only offsets [a, b)):
    absolute offset, bytes in hex, field name, value. Masked fields show xx."""
    out = [f"{title}" if title else "", "", "| offset | bytes | field | value |",
           "| ---: | --- | --- | --- |"]
    for f in rp.TWIN["structs"][struct_name]["fields"]:
        off, size = f["offset"], f["size"]
        if only and not (only[0] <= off < only[1]):
            continue
        raw = data[off:off + size]
        mask = MASKED.get((struct_name, f["name"]))
        if mask:
            hexs, val = " ".join(["xx"] * size), f"(masked: {mask})"
        elif size > 8:
            hexs = "00 × " + str(size) if not any(raw) else " ".join(f"{b:02x}" for b in raw[:16]) + (
                " …" if size > 16 else "")
            val = field_value(f, raw) if f["type"] in ("reserved", "bytes") else "(struct)"
        else:
            hexs, val = " ".join(f"{b:02x}" for b in raw), field_value(f, raw)
        out.append(f"| 0x{base + off:04x} | `{hexs}` | {f['name']} | {val} |")
    return out


def hexdump(data: bytes, base: int = 0, masked: set[int] | None = None) -> list[str]:
    """16 bytes a line; offsets in `masked` (relative to data) print as xx."""
    masked = masked or set()
    lines = ["```"]
    for i in range(0, len(data), 16):
        cells = [("xx" if i + j in masked else f"{b:02x}") for j, b in enumerate(data[i:i + 16])]
        lines.append(f"{base + i:08x}  " + " ".join(cells))
    lines.append("```")
    return lines


def message(direction: str, msg: bytes) -> list[str]:
    """A TLV message as sent or received: header and payload annotated."""
    h = rp.unpack("TlvHeader", msg[:8])
    name = rp.MSG_NAME[h["type"]]
    payload = msg[8:8 + h["length"]]
    out = [f"**{direction} {name}** ({len(msg)} bytes on the socket)", ""]
    masked = set()
    for f in rp.TWIN["structs"][rp.MSG_PAYLOAD[name]]["fields"]:
        if (rp.MSG_PAYLOAD[name], f["name"]) in MASKED:
            masked |= set(range(8 + f["offset"], 8 + f["offset"] + f["size"]))
    out += hexdump(msg, 0, masked)
    out += annotate("TlvHeader", msg[:8], title="")
    out += annotate(rp.MSG_PAYLOAD[name], payload)
    return out + [""]


class Publisher:
    def __init__(self, exe: Path, key: str, env: dict, args: list[str]):
        self.p = subprocess.Popen([str(exe), "--key", key, *args], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env, text=True)

    def wait_event(self, name: str, **match) -> dict:
        for line in self.p.stdout:
            ev = json.loads(line)
            if ev.get("event") == "error":
                raise TraceError(f"publisher error: {line.strip()}")
            if ev.get("event") == name and all(ev.get(k) == v for k, v in match.items()):
                return ev
        raise TraceError(f"publisher exited before {name}")

    def finish(self) -> int:
        try:
            return self.p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise TraceError("publisher did not exit")


def map_file(path: str) -> mmap.mmap:
    fd = os.open(path, os.O_RDWR)
    try:
        return mmap.mmap(fd, 0)
    finally:
        os.close(fd)


def recv(conn: rp.RawConn, want: str) -> bytes:
    m = conn.recv_msg(5.0)
    if m is None or m[0] != want:
        raise TraceError(f"expected {want}, got {m and m[0]}")
    return rp.pack("TlvHeader", type=rp.MSG_TYPE[want], length=len(m[2])) + m[2]


def store(seg: mmap.mmap, off: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, seg, off, value)


def trace_frames(exe: Path, key: str, env: dict, sock_dir: str) -> list[str]:
    out = ["## 1 Handshake and attach", "",
           "A publisher started with `cuframes-pub --key K --frames 1 --slots 2 --bytes 64 "
           "--max-subscribers 2 --wait-subscribers 1`; the subscriber offers versions 1..2 and "
           "the HOST kind (kinds_mask bit 0) and does not ask for packets. Sections 3.3-3.6, 2.2, "
           "2.5.", ""]
    pub = Publisher(exe, key, env, ["--frames", "1", "--slots", "2", "--bytes", "64",
                                    "--max-subscribers", "2", "--wait-subscribers", "1",
                                    "--linger-ms", "5000"])
    pub.wait_event("ready")
    conn = rp.RawConn(f"{sock_dir}/cuframes-{key}.sock")
    hello = rp.tlv("HELLO_REQ", rp.pack("HelloReq", magic=rp.CONST["HELLO_MAGIC"], min_proto=1,
                                        max_proto=2, kinds_mask=1))
    conn.send(hello)
    out += message("subscriber → publisher", hello)
    resp = recv(conn, "HELLO_RESP")
    out += message("publisher → subscriber", resp)
    r = rp.unpack("HelloResp", resp[8:])
    seg = map_file(f"/dev/shm/cuframes-{key}")
    hs = rp.size_of("SegmentHeader")
    out += ["The subscriber maps `/dev/shm/cuframes-K` and validates the header (SHM-VALID-01) "
            "before ATTACH_REQ; the publisher waits for a subscriber, so nothing has been "
            "published yet:", ""]
    out += annotate("SegmentHeader", bytes(seg[:hs]), title="**SegmentHeader** (256 bytes at 0)")
    h = rp.unpack("SegmentHeader", bytes(seg[:hs]))
    slot_off = h["sub_slot_offset"] + rp.size_of("SubscriberSlot") * r["subscriber_index"]
    ss = rp.size_of("SubscriberSlot")
    out += [""] + annotate("SubscriberSlot", bytes(seg[slot_off:slot_off + ss]), base=slot_off,
                           title=f"**SubscriberSlot {r['subscriber_index']}** reserved for it "
                           "(SHM-SUB-02, SHM-VALID-04)")
    attach = rp.tlv("ATTACH_REQ", rp.pack("AttachReq", subscriber_index=r["subscriber_index"],
                                          generation=r["generation"]))
    conn.send(attach)
    out += [""] + message("subscriber → publisher", attach)
    out += message("publisher → subscriber", recv(conn, "ATTACH_RESP"))
    pub.wait_event("frame", seq=1)  # printed after the commit of frame 1 (ADP-EVENT-02)
    out += ["## 2 Frame commit and ACK", "",
            "The publisher commits frame 1 into slot 0 (section 5.2): FrameMeta first, then "
            "`meta.seq` = 1 and `write_seq` = 1 (release), `frame_futex` + 1. Its adapter prints "
            "the `frame` event after the commit; these are the bytes the subscriber then reads "
            "(section 5.3).", ""]
    out += annotate("SegmentHeader", bytes(seg[:hs]), only=(128, 256),
                    title="**SegmentHeader** hot lines (offsets 128-255) after the commit")
    d0 = h["slot_desc_offset"]
    out += [""] + annotate("FrameMeta", bytes(seg[d0:d0 + 64]), base=d0,
                           title="**SlotDescriptor 0, FrameMeta** (frame 1)")
    out += ["", f"**Buffer of slot 0** at `data_offset` = {h['data_offset']} (HOST kind), the 64 "
            "payload bytes (n × 31 + i × 7) mod 256 of ADAPTER.md section 4:", ""]
    out += hexdump(bytes(seg[h["data_offset"]:h["data_offset"] + 64]), h["data_offset"])
    # The ACK (section 5.4): ack_seq = 1 (release), ack_futex + 1 (no waiter to wake: the
    # publisher is not waiting, ack_waiting = 0).
    store(seg, slot_off + rp.offset_of("SubscriberSlot", "ack_seq"), "<Q", 1)
    af = rp.offset_of("SegmentHeader", "ack_futex")
    store(seg, af, "<I", struct.unpack_from("<I", seg, af)[0] + 1)
    out += ["", "The subscriber releases frame 1 (section 5.4): `ack_seq` = 1 with release order, "
            "then `ack_futex` + 1; `ack_waiting` is 0, so no FUTEX_WAKE.", ""]
    out += annotate("SubscriberSlot", bytes(seg[slot_off:slot_off + ss]), base=slot_off,
                    only=(0, 32), title=f"**SubscriberSlot {r['subscriber_index']}** after the ACK")
    out += [""] + annotate("SegmentHeader", bytes(seg[:hs]), only=(192, 256),
                           title="**SegmentHeader** subscriber line after the ACK")
    conn.send(rp.tlv("DETACH", rp.pack("Detach", reason=0)))
    conn.close()
    seg.close()
    if pub.finish() != 0:
        raise TraceError("publisher of trace 1 failed")
    return out + [""]


def trace_ring(exe: Path, key: str, env: dict, sock_dir: str) -> list[str]:
    out = ["## 3 Packet-ring wrap with a PAD record", "",
           "A publisher started with `cuframes-pub --key K --frames 0 --packets 6 "
           "--packet-bytes 1000 --gop 4 --ring-bytes 4096 --wait-subscribers 1`; a v2 "
           "subscriber asks WANT_PACKETS and joins before any packet, at (1, 0). Packet k has "
           "1 + (k × 7919) mod 1000 bytes, so records 1-5 span 960 + 896 + 800 + 736 + 640 = 4032 "
           "bytes; packet 6 (576 bytes of record) does not fit in the 64 left, so a PAD record "
           "fills them and packet 6 starts the next lap at offset 0, after the writer invalidated "
           "and dropped packet 1 (PKT-WRITE-02). Sections 10.2-10.5.", ""]
    pub = Publisher(exe, key, env, ["--frames", "0", "--packets", "6", "--packet-bytes", "1000",
                                    "--gop", "4", "--ring-bytes", "4096", "--wait-subscribers",
                                    "1", "--linger-ms", "5000"])
    pub.wait_event("ready")
    conn = rp.RawConn(f"{sock_dir}/cuframes-{key}.sock")
    conn.send(rp.tlv("HELLO_REQ", rp.pack("HelloReq", magic=rp.CONST["HELLO_MAGIC"], min_proto=1,
                                          max_proto=2, kinds_mask=1, caps=1)))
    resp = recv(conn, "HELLO_RESP")
    out += message("publisher → subscriber", resp)
    r = rp.unpack("HelloResp", resp[8:])
    conn.send(rp.tlv("ATTACH_REQ", rp.pack("AttachReq", subscriber_index=r["subscriber_index"],
                                           generation=r["generation"])))
    recv(conn, "ATTACH_RESP")
    pub.wait_event("done")
    ring = map_file(f"/dev/shm/cuframes-{key}-packets")
    out += annotate("PacketRingHeader", bytes(ring[:256]),
                    title="**PacketRingHeader** after packet 6")
    out += [""] + annotate("CodecParams", bytes(ring[256:256 + 64]), base=256, only=(0, 64),
                           title="**CodecParams** (first 64 bytes; `data` follows at 320)")
    out += ["", "`data`: the 17 bytes `cuframes-params-1`:", ""]
    out += hexdump(bytes(ring[320:320 + 32]), 320)
    data = 4416
    pad = data + 4032
    out += [""] + annotate("PacketRecordHeader", bytes(ring[pad:pad + 32]), base=pad,
                           title="**PAD record** at position 4032 (ring offset 4416 + 4032): "
                           "`lock` 2 × 6 (the packet that follows it), `size` 64 − 32, flags PAD "
                           "(PKT-REC-02)")
    out += ["", "**Packet 6** at position 4096 = offset 0 of the data area, over what was packet "
            "1:", ""]
    out += annotate("PacketRecordHeader", bytes(ring[data:data + 32]), base=data)
    h = rp.unpack("PacketRingHeader", bytes(ring[:256]))
    kp = data + h["last_key_pos"] % h["capacity"]
    out += ["", "## 4 A lapped reader", "",
            "The subscriber's cursor is still (1, 0), from HELLO_RESP. Reading packet 1 "
            "(PKT-READ-02): `head_seq` = 6 ≥ 1, so it loads the `lock` at position 0 with acquire "
            f"and finds {struct.unpack_from('<Q', ring, data)[0]}, not 2 × 1 = 2; then "
            f"`tail_pos` = {h['tail_pos']} > 0: the reader was lapped, PACKET_OVERRUN "
            "(PKT-READ-10: the lap is proven by `tail_pos`, not by the lock). It resumes "
            f"(PKT-READ-05) at (`last_key_seq`, `last_key_pos`) = ({h['last_key_seq']}, "
            f"{h['last_key_pos']}): the record there carries 2 × {h['last_key_seq']} and "
            f"`tail_pos` ≤ {h['last_key_pos']}, so packet {h['last_key_seq']} (a keyframe, "
            "gop 4) is the next it delivers, then packet 6.", ""]
    out += annotate("PacketRingHeader", bytes(ring[:256]), only=(64, 108),
                    title="**The loads of the lapped reader** (PacketRingHeader offsets 64-107)")
    out += [""] + annotate("PacketRecordHeader", bytes(ring[kp:kp + 32]), base=kp,
                           title=f"**The record at `last_key_pos`** (ring offset {kp})")
    ring.close()
    conn.send(rp.tlv("DETACH", rp.pack("Detach", reason=0)))
    conn.close()
    if pub.finish() != 0:
        raise TraceError("publisher of trace 3 failed")
    return out + [""]


def generate(build_dir: Path) -> str:
    exe = find_adapter(build_dir, "cuframes-pub")
    with tempfile.TemporaryDirectory(prefix="cuframes-traces-") as sock_dir:
        env = dict(os.environ, CUFRAMES_SOCKET_DIR=sock_dir)
        env.pop("CUFRAMES_MAX_PROTO", None)
        env.pop("CUFRAMES_FAULT", None)
        key = f"trace{os.getpid()}"
        lines = ["# cuframes annotated traces (informative)", "",
                 "Generated by `spec/tools/gen_traces.py` from the reference publisher adapter, "
                 "with the subscriber played by raw socket and shared-memory reads that learn "
                 "every layout from the twin. `spec/tests/test_traces.py` regenerates this file "
                 "and fails when it differs, so it cannot drift from the reference. Values that "
                 "vary between runs (pids, start time, lib_version) are masked `xx`; the key is "
                 "K. Byte order is little-endian throughout; offsets are from the start of the "
                 "segment, the ring or the message. This document adds no requirement.", ""]
        lines += trace_frames(exe, key, env, sock_dir)
        lines += trace_ring(exe, key + "r", env, sock_dir)
    text = "\n".join(lines).replace(key, "K")
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write the annotated hex traces of the reference.")
    ap.add_argument("--build-dir", type=Path,
                    default=Path(os.environ.get("CUFRAMES_BUILD_DIR", ROOT / "build/default")))
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true",
                    help="compare with --out instead of writing it; exit 1 when it differs")
    args = ap.parse_args(argv)
    try:
        text = generate(args.build_dir)
    except (TraceError, OSError, TimeoutError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        old = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if old != text:
            import difflib
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                                       str(args.out), "regenerated"))
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
