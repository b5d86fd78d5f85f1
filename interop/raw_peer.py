"""A raw, scriptable peer for hostile-peer scenarios: TLV messages and shared-memory layouts are
learned from the machine-readable twin (spec/cuframes.json), never from the reference's headers.

RawConn speaks TLV on a Unix socket; RawSubscriber performs a HOST-kind handshake (HELLO_REQ,
map the segment, ATTACH_REQ) and then lets a test write whatever it likes into shared memory.
"""
from __future__ import annotations

import json
import mmap
import os
import select
import socket
import struct
import time
from pathlib import Path

TWIN_PATH = Path(__file__).resolve().parent.parent / "spec" / "cuframes.json"
TWIN = json.loads(TWIN_PATH.read_text())

CONST = {k: v["value"] for k, v in TWIN["constants"].items()}
MSG_TYPE = {m["name"]: m["type"] for m in TWIN["messages"]}
MSG_NAME = {m["type"]: m["name"] for m in TWIN["messages"]}
MSG_PAYLOAD = {m["name"]: m["payload"] for m in TWIN["messages"]}
ERROR_CODE = {e["name"]: e["value"] for e in TWIN["errors"]}
ERROR_NAME = {e["value"]: e["name"] for e in TWIN["errors"]}
ENUM = TWIN["enums"]

_FMT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i64": "q"}


def fields(struct_name: str) -> dict[str, dict]:
    return {f["name"]: f for f in TWIN["structs"][struct_name]["fields"]}


def size_of(struct_name: str) -> int:
    return TWIN["structs"][struct_name]["size"]


def offset_of(struct_name: str, field: str) -> int:
    return fields(struct_name)[field]["offset"]


def pack(struct_name: str, **values: int) -> bytes:
    """Encodes a struct of the twin: named integer fields, everything else zero."""
    out = bytearray(size_of(struct_name))
    fs = fields(struct_name)
    for name, value in values.items():
        f = fs[name]
        struct.pack_into("<" + _FMT[f["type"]], out, f["offset"], value)
    return bytes(out)


def unpack(struct_name: str, data: bytes) -> dict[str, int]:
    out = {}
    for name, f in fields(struct_name).items():
        if f["type"] in _FMT and f["offset"] + f["size"] <= len(data):
            out[name] = struct.unpack_from("<" + _FMT[f["type"]], data, f["offset"])[0]
    return out


def tlv(msg: str, payload: bytes) -> bytes:
    return pack("TlvHeader", type=MSG_TYPE[msg], length=len(payload)) + payload


def hello_req(max_proto: int = 1, kinds_mask: int = 1) -> bytes:
    return tlv("HELLO_REQ", pack("HelloReq", magic=CONST["HELLO_MAGIC"], min_proto=1,
                                 max_proto=max_proto, kinds_mask=kinds_mask))


class RawConn:
    """One Unix-socket connection; messages are (name, fields dict, raw payload)."""

    def __init__(self, path: str | Path, timeout: float = 5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(str(path))
        self.buf = b""
        self.eof = False

    def send(self, data: bytes) -> bool:
        try:
            self.s.sendall(data)
            return True
        except OSError:
            return False

    def recv_msg(self, timeout: float = 5.0):
        """Returns the next message as (name, fields, payload), or None at end-of-file;
        raises TimeoutError after `timeout` s."""
        deadline = time.monotonic() + timeout
        hs = size_of("TlvHeader")
        while True:
            if len(self.buf) >= hs:
                h = unpack("TlvHeader", self.buf[:hs])
                if len(self.buf) >= hs + h["length"]:
                    payload = self.buf[hs:hs + h["length"]]
                    self.buf = self.buf[hs + h["length"]:]
                    name = MSG_NAME.get(h["type"], f"type{h['type']}")
                    st = MSG_PAYLOAD.get(name)
                    return name, (unpack(st, payload) if st else {}), payload
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no message")
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                continue
            try:
                chunk = self.s.recv(65536)
            except (ConnectionResetError, OSError):
                chunk = b""
            if not chunk:
                self.eof = True
            self.buf += chunk

    def drain(self, timeout: float = 5.0) -> list:
        """Reads messages until end-of-file; returns them. Raises TimeoutError after `timeout`."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv_msg(max(deadline - time.monotonic(), 0.001))
            if m is None:
                return out
            out.append(m)

    def close(self) -> None:
        try:
            self.s.close()
        except OSError:
            pass


class RawSubscriber:
    """A HOST-kind subscriber written from the twin alone. After attach(), `slot` is the byte
    offset of its SubscriberSlot in `seg` (a writable mmap of the frame segment)."""

    def __init__(self, socket_path: str | Path, key: str):
        self.key = key
        self.conn = RawConn(socket_path)
        self.seg: mmap.mmap | None = None
        self.index = -1
        self.generation = 0
        self.start_seq = 0
        self.slot = 0

    def attach(self) -> None:
        assert self.conn.send(hello_req())
        name, resp, _ = self.conn.recv_msg()
        assert name == "HELLO_RESP" and resp["status"] == 0, (name, resp)
        self.index, self.generation = resp["subscriber_index"], resp["generation"]
        fd = os.open(f"/dev/shm/cuframes-{self.key}", os.O_RDWR)
        try:
            self.seg = mmap.mmap(fd, 0)
        finally:
            os.close(fd)
        hdr = unpack("SegmentHeader", self.seg[:size_of("SegmentHeader")])
        self.header = hdr
        self.slot = hdr["sub_slot_offset"] + size_of("SubscriberSlot") * self.index
        assert self.conn.send(tlv("ATTACH_REQ", pack("AttachReq", subscriber_index=self.index,
                                                     generation=self.generation)))
        name, aresp, _ = self.conn.recv_msg()
        assert name == "ATTACH_RESP" and aresp["status"] == 0, (name, aresp)
        self.start_seq = aresp["start_seq"]

    def write_slot(self, field: str, value: int) -> None:
        f = fields("SubscriberSlot")[field]
        struct.pack_into("<" + _FMT[f["type"]], self.seg, self.slot + f["offset"], value)

    def write_header(self, field: str, value: int) -> None:
        f = fields("SegmentHeader")[field]
        struct.pack_into("<" + _FMT[f["type"]], self.seg, f["offset"], value)

    def close(self) -> None:
        if self.seg is not None:
            self.seg.close()
            self.seg = None
        self.conn.close()


def read_header(key: str) -> dict[str, int]:
    """The frame segment header of `key`, decoded with the twin."""
    with open(f"/dev/shm/cuframes-{key}", "rb") as f:
        return unpack("SegmentHeader", f.read(size_of("SegmentHeader")))


def write_header_field(key: str, field: str, value: int) -> None:
    f = fields("SegmentHeader")[field]
    with open(f"/dev/shm/cuframes-{key}", "r+b") as fh:
        fh.seek(f["offset"])
        fh.write(struct.pack("<" + _FMT[f["type"]], value))


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[19])


def _main(argv: list[str]) -> int:
    """`python3 raw_peer.py hello SOCKET`: connects, sends one HELLO_REQ and prints the reply as a
    JSON line ({"connected": bool, "errno": N, "reply": name, "status": code}). Used to show,
    from another uid, which check rejected it (socket permissions or SO_PEERCRED)."""
    if len(argv) != 3 or argv[1] != "hello":
        print("usage: raw_peer.py hello SOCKET", flush=True)
        return 1
    try:
        c = RawConn(argv[2])
    except OSError as e:
        print(json.dumps({"connected": False, "errno": e.errno}), flush=True)
        return 0
    c.send(hello_req())
    m = c.recv_msg()
    out = {"connected": True, "reply": m[0] if m else None}
    if m:
        out["status"] = m[1].get("status", m[1].get("code"))
    print(json.dumps(out), flush=True)
    c.close()
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main(sys.argv))
