"""TLV framing of the Unix socket (PROTOCOL.md section 3): encoders and a stream decoder.

Decoders check the length before every field they read and never reinterpret received bytes
as a structure (TLV-FRAME-04); the stream decoder checks a header before it buffers the payload
(TLV-FRAME-03) and reassembles messages split at any byte (TLV-FRAME-02)."""
from __future__ import annotations

import struct
from typing import Iterator, Optional

from .errors import Err

HEADER_SIZE = 8
MAX_PAYLOAD = 4096

HELLO_REQ, HELLO_RESP, ATTACH_REQ, ATTACH_RESP, DETACH, ERROR, PING, PONG = range(1, 9)
NAMES = {1: "HELLO_REQ", 2: "HELLO_RESP", 3: "ATTACH_REQ", 4: "ATTACH_RESP", 5: "DETACH",
         6: "ERROR", 7: "PING", 8: "PONG"}
# (min_length, max_length) per type (3.1)
LENGTHS = {HELLO_REQ: (64, 4096), HELLO_RESP: (64, 4096), ATTACH_REQ: (16, 16),
           ATTACH_RESP: (16, 16), DETACH: (8, 8), ERROR: (8, 4096), PING: (8, 8), PONG: (8, 8)}


class FramingError(Exception):
    """A framing error of 3.2: `code` is what to send (and report); `send` is False when the
    offending message is itself an ERROR (TLV-ERR-06: nothing is sent, PROTOCOL reported)."""

    def __init__(self, code: Err, send: bool, why: str) -> None:
        super().__init__(why)
        self.code = code
        self.send = send


def encode(mtype: int, payload: bytes) -> bytes:
    """Header (reserved bytes zero, TLV-FRAME-01) followed by the payload."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload above TLV_MAX_PAYLOAD")
    return struct.pack("<HHI", mtype, 0, len(payload)) + payload


def check_header(hdr: bytes) -> tuple[int, int]:
    """Validates an 8-byte header in the order of TLV-ERR-07; returns (type, length) or raises
    FramingError."""
    if len(hdr) < HEADER_SIZE:
        raise ValueError("short header")
    mtype, rsv, length = struct.unpack_from("<HHI", hdr, 0)
    is_error = mtype == ERROR
    if length > MAX_PAYLOAD:
        # TLV-ERR-01/07: checked before the type is. An ERROR this large is never answered
        # (TLV-ERR-06, decision Z of v0.4) and is reported as PROTOCOL (TLV-ERR-08).
        if is_error:
            raise FramingError(Err.PROTOCOL, False, f"ERROR length {length} > {MAX_PAYLOAD}")
        raise FramingError(Err.MESSAGE_TOO_LARGE, True, f"length {length} > {MAX_PAYLOAD}")
    if mtype not in LENGTHS:
        raise FramingError(Err.UNKNOWN_MESSAGE, True, f"unknown type {mtype}")
    if rsv != 0:
        raise FramingError(Err.PROTOCOL, not is_error, "nonzero reserved header bytes")
    lo, hi = LENGTHS[mtype]
    if not lo <= length <= hi:
        raise FramingError(Err.PROTOCOL, not is_error,
                           f"{NAMES[mtype]} length {length} outside {lo}..{hi}")
    return mtype, length


class Decoder:
    """Feed bytes, take whole messages. A FramingError leaves the decoder unusable."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._hdr: Optional[tuple[int, int]] = None

    @property
    def partial(self) -> bool:
        """True while part of a message is buffered (a peer stopped mid-message)."""
        return bool(self._buf) or self._hdr is not None

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buf += data
        while True:
            if self._hdr is None:
                if len(self._buf) < HEADER_SIZE:
                    return
                self._hdr = check_header(bytes(self._buf[:HEADER_SIZE]))
                del self._buf[:HEADER_SIZE]
            mtype, length = self._hdr
            if len(self._buf) < length:
                return
            payload = bytes(self._buf[:length])
            del self._buf[:length]
            self._hdr = None
            if mtype == ERROR:
                decode_error(payload)  # raises FramingError(PROTOCOL, send=False) if malformed
            yield mtype, payload


# ---- payloads ------------------------------------------------------------------------------

class _Fields:
    """A small record (plain class rather than dataclasses: its import costs start-up time)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, *args: int) -> None:
        for name, v in zip(self.__slots__, args):
            setattr(self, name, v)
        for name in self.__slots__[len(args):]:
            setattr(self, name, 0)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"


def _need(p: bytes, n: int) -> None:
    if len(p) < n:
        raise FramingError(Err.PROTOCOL, True, f"payload of {len(p)} bytes, {n} needed")


class HelloReq(_Fields):
    __slots__ = ('magic', 'min_proto', 'max_proto', 'kinds_mask', 'lib_version', 'caps',)
    magic: int
    min_proto: int
    max_proto: int
    kinds_mask: int
    lib_version: int
    caps: int

    def encode(self) -> bytes:
        return struct.pack("<IHHIII44x", self.magic, self.min_proto, self.max_proto,
                           self.kinds_mask, self.lib_version, self.caps)

    @staticmethod
    def decode(p: bytes) -> "HelloReq":
        _need(p, 64)  # bytes after offset 64 are ignored (MSG-HELLO-03)
        return HelloReq(*struct.unpack_from("<IHHIII", p, 0))


class HelloResp(_Fields):
    __slots__ = ('status', 'proto_version', 'memory_kind', 'subscriber_index', 'generation', 'lib_version', 'caps', 'initial_packet_seq', 'initial_packet_pos',)
    status: int
    proto_version: int
    memory_kind: int
    subscriber_index: int
    generation: int
    lib_version: int
    caps: int
    initial_packet_seq: int
    initial_packet_pos: int

    def encode(self) -> bytes:
        return struct.pack("<IHHIIIIQQ24x", self.status, self.proto_version, self.memory_kind,
                           self.subscriber_index, self.generation, self.lib_version, self.caps,
                           self.initial_packet_seq, self.initial_packet_pos)

    @staticmethod
    def decode(p: bytes) -> "HelloResp":
        _need(p, 64)  # MSG-HRESP-04
        return HelloResp(*struct.unpack_from("<IHHIIIIQQ", p, 0))


class AttachReq(_Fields):
    __slots__ = ('subscriber_index', 'generation', 'flags',)
    subscriber_index: int
    generation: int
    flags: int

    def encode(self) -> bytes:
        return struct.pack("<III4x", self.subscriber_index, self.generation, self.flags)

    @staticmethod
    def decode(p: bytes) -> "AttachReq":
        _need(p, 16)
        return AttachReq(*struct.unpack_from("<III", p, 0))


class AttachResp(_Fields):
    __slots__ = ('status', 'start_seq',)
    status: int
    start_seq: int

    def encode(self) -> bytes:
        return struct.pack("<I4xQ", self.status, self.start_seq)

    @staticmethod
    def decode(p: bytes) -> "AttachResp":
        _need(p, 16)
        status, start = struct.unpack_from("<I4xQ", p, 0)
        return AttachResp(status, start)


def encode_detach(reason: int) -> bytes:
    return encode(DETACH, struct.pack("<I4x", reason))


def decode_detach(p: bytes) -> int:
    _need(p, 8)
    return int(struct.unpack_from("<I", p, 0)[0])


def encode_error(code: int, text: str = "") -> bytes:
    t = text.encode("utf-8")[:MAX_PAYLOAD - 8]
    return encode(ERROR, struct.pack("<II", code, len(t)) + t)


def decode_error(p: bytes) -> tuple[int, bytes]:
    """(code, text); an ERROR whose length differs from 8 + text_len is a framing error for
    which nothing is sent (TLV-ERR-03, TLV-ERR-06)."""
    if len(p) < 8:
        raise FramingError(Err.PROTOCOL, False, "short ERROR")
    code, tlen = struct.unpack_from("<II", p, 0)
    if len(p) != 8 + tlen:
        raise FramingError(Err.PROTOCOL, False, f"ERROR length {len(p)} != 8 + {tlen}")
    return code, p[8:]


def encode_ping(mtype: int, nonce: int) -> bytes:
    return encode(mtype, struct.pack("<Q", nonce))


def decode_nonce(p: bytes) -> int:
    _need(p, 8)
    return int(struct.unpack_from("<Q", p, 0)[0])
