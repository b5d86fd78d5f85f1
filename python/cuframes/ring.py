"""The encoded packet ring of PROTOCOL.md section 10: the publisher's writer (10.4, 10.5) and a
subscriber's reader (10.6, 10.7). The reader never writes to the ring (PKT-READ-07): it maps it
read-only. Payload bytes are written and read with relaxed atomic copies (_atomics.copy_relaxed)
so that the seqlock's re-check, not luck, decides what is delivered."""
from __future__ import annotations

import ctypes
import time
from typing import Callable, Optional

from . import _atomics as A
from .errors import CuframesError, Err
from .layout import (CODEC_PARAMS_MAX, CODEC_PARAMS_OFFSET, PARAMS, PARAMS_DATA, PKT_KEYFRAME,
                     PKT_PAD, REC, RING, RING_DATA_OFFSET, RING_HEADER_SIZE, RING_LAYOUT_VERSION,
                     RING_MAGIC, SEQLOCK_SPIN_LIMIT_MS, ST_CLOSED, ST_READY, Region, align_up)

R = {k: v[0] for k, v in RING.items()}
P = {k: CODEC_PARAMS_OFFSET + v[0] for k, v in PARAMS.items()}


def ring_size(capacity: int) -> int:
    return RING_DATA_OFFSET + capacity


def valid_capacity(capacity: int, max_packet_bytes: int) -> bool:
    """PKT-HDR-01: a power of two >= 4096 and max_packet_bytes + 32 <= capacity / 2."""
    return (capacity >= 4096 and capacity & (capacity - 1) == 0 and max_packet_bytes >= 1
            and max_packet_bytes + 32 <= capacity // 2)


class Packet:
    """One delivered packet: its seq, flags (KEYFRAME), pts, params_generation and bytes."""

    __slots__ = ("seq", "flags", "pts", "params_generation", "data")

    def __init__(self, seq: int, flags: int, pts: int, params_generation: int,
                 data: bytes) -> None:
        self.seq, self.flags, self.pts = seq, flags, pts
        self.params_generation, self.data = params_generation, data

    @property
    def keyframe(self) -> bool:
        return bool(self.flags & PKT_KEYFRAME)

    def __repr__(self) -> str:
        return (f"Packet(seq={self.seq}, flags={self.flags}, pts={self.pts}, "
                f"params_generation={self.params_generation}, {len(self.data)} bytes)")


class CodecParams:
    """Codec parameters (extradata) with their generation and codec."""

    __slots__ = ("generation", "codec", "data")

    def __init__(self, generation: int, codec: int, data: bytes) -> None:
        self.generation, self.codec, self.data = generation, codec, data

    def __repr__(self) -> str:
        return f"CodecParams(generation={self.generation}, codec={self.codec}, {self.data!r})"


def _copy_in(region: Region, off: int, data: bytes) -> None:
    if data:
        src = ctypes.create_string_buffer(data, len(data))
        A.copy_relaxed(region.base + off, ctypes.addressof(src), len(data))


def _copy_out(region: Region, off: int, n: int) -> bytes:
    if n == 0:
        return b""
    dst = ctypes.create_string_buffer(n)
    A.copy_relaxed(ctypes.addressof(dst), region.base + off, n)
    return dst.raw


class RingWriter:
    """Writes the ring header at creation and appends packets (publisher side)."""

    def __init__(self, region: Region, capacity: int, max_packet_bytes: int, codec: int) -> None:
        self.r = region
        self.cap = capacity
        self.max = max_packet_bytes
        self.codec = codec
        self.head_seq = 0
        self.head_pos = 0
        self.tail_pos = 0
        self.generation = 0
        r = region
        r.put(R["layout_version"], "I", RING_LAYOUT_VERSION)
        r.put(R["magic"], "I", RING_MAGIC)
        r.put(R["header_size"], "I", RING_HEADER_SIZE)
        r.put(R["capacity"], "Q", capacity)
        r.put(R["data_offset"], "Q", RING_DATA_OFFSET)
        r.put(R["max_packet_bytes"], "I", max_packet_bytes)
        r.put(R["codec"], "I", codec)
        r.put(R["segment_size"], "Q", ring_size(capacity))

    def set_ready(self) -> None:
        self.r.store32(R["state"], ST_READY)

    def close(self) -> None:
        """PKT-WRITE-07: CLOSED (release), bump packet_futex, wake every waiter."""
        self.r.store32(R["state"], ST_CLOSED)
        self.r.add32(R["packet_futex"], 1)
        A.futex_wake(self.r.base + R["packet_futex"], 0x7FFFFFFF)

    def set_params(self, codec: int, data: bytes) -> int:
        """PKT-PARAMS-01/05: one seqlock write of generation, size, codec and data."""
        if codec != self.codec:
            raise CuframesError(Err.INVALID_ARGUMENT, f"ring codec is {self.codec}, not {codec}")
        if len(data) > CODEC_PARAMS_MAX:
            raise CuframesError(Err.OVERSIZED, "codec parameters above 4096 bytes")
        r = self.r
        lock = r.load64r(P["lock"])
        r.store64r(P["lock"], lock + 1)
        A.fence_release()
        gen = (self.generation + 1) & 0xFFFFFFFF or 1
        r.store32r(P["generation"], gen)
        r.store32r(P["size"], len(data))
        r.store32r(P["codec"], codec)
        _copy_in(r, CODEC_PARAMS_OFFSET + PARAMS_DATA, data)
        r.store64(P["lock"], lock + 2)
        self.generation = gen
        return gen

    def _rec_span(self, pos: int) -> int:
        off = pos % self.cap
        base = RING_DATA_OFFSET + off
        size = self.r.load32r(base + REC["size"][0])
        return align_up(RECORD_HDR + size, 32)

    def _write_record(self, pos: int, n: int, size: int, flags: int, pts: int, gen: int,
                      payload: bytes) -> None:
        r = self.r
        base = RING_DATA_OFFSET + pos % self.cap
        r.store64r(base, 2 * n - 1)
        A.fence_release()
        r.store32r(base + 8, size)
        r.store32r(base + 12, flags)
        r.store64r(base + 16, pts & 0xFFFFFFFFFFFFFFFF)
        r.store32r(base + 24, gen)
        r.store32r(base + 28, 0)
        _copy_in(r, base + 32, payload)
        r.store64(base, 2 * n)

    def publish(self, data: bytes, keyframe: bool, pts: int,
                notify: Callable[[], None]) -> int:
        """Appends packet head_seq + 1 (10.4); returns its seq. notify() bumps packet_futex and
        wakes waiters when the frame segment's packet_waiters is nonzero."""
        size = len(data)
        if size > self.max:
            raise CuframesError(Err.OVERSIZED, f"packet of {size} bytes > {self.max}")
        n = self.head_seq + 1
        p = self.head_pos
        off = p % self.cap
        left = self.cap - off
        span = align_up(RECORD_HDR + size, 32)
        pad = span > left
        ppos = p + left if pad else p
        end = ppos + span
        # PKT-WRITE-02: invalidate and drop the oldest records until the new ones fit
        moved = False
        while end - self.tail_pos > self.cap:
            tb = RING_DATA_OFFSET + self.tail_pos % self.cap
            lock = self.r.load64r(tb)
            self.r.store64r(tb, lock | 1)
            self.tail_pos += self._rec_span(self.tail_pos)
            moved = True
        if moved:
            self.r.store64(R["tail_pos"], self.tail_pos)
        A.fence_release()
        if pad:
            self._write_record(p, n, left - RECORD_HDR, PKT_PAD, 0, 0, b"")
        self._write_record(ppos, n, size, PKT_KEYFRAME if keyframe else 0, pts, self.generation,
                           data)
        if keyframe:
            self.r.store64(R["last_key_pos"], ppos)
            self.r.store64(R["last_key_seq"], n)
        self.head_pos = end
        self.head_seq = n
        self.r.store64(R["head_pos"], end)
        self.r.store64(R["head_seq"], n)
        notify()
        return n


RECORD_HDR = 32


def validate_ring(region: Region, file_size: int) -> tuple[int, int]:
    """PKT-HDR-01 on a READY ring: (capacity, max_packet_bytes) or CuframesError."""
    r = region
    if (r.get(R["layout_version"], "I") != RING_LAYOUT_VERSION
            or r.get(R["magic"], "I") != RING_MAGIC
            or r.get(R["header_size"], "I") != RING_HEADER_SIZE):
        raise CuframesError(Err.UNSUPPORTED_LAYOUT, "packet ring header")
    cap = r.get(R["capacity"], "Q")
    mpb = r.get(R["max_packet_bytes"], "I")
    if (not valid_capacity(cap, mpb) or r.get(R["data_offset"], "Q") != RING_DATA_OFFSET
            or r.get(R["segment_size"], "Q") != RING_DATA_OFFSET + cap
            or file_size != RING_DATA_OFFSET + cap):
        raise CuframesError(Err.CORRUPT, "packet ring geometry")
    return cap, mpb


class RingReader:
    """A subscriber's cursor over the ring (10.6). `dead()` tells whether the socket shows the
    publisher gone; `wait(slice_ms)` blocks on packet_futex for one bounded slice."""

    def __init__(self, region: Region, capacity: int, max_packet_bytes: int, seq: int, pos: int,
                 dead: Callable[[], Optional[Err]],
                 wait: Callable[[Callable[[], bool], float], None]) -> None:
        self.r = region
        self.cap = capacity
        self.max = max_packet_bytes
        self.n = seq
        self.p = pos
        self.from_head = False
        self.stale_resumes = 0
        self.need_key = True  # PKT-READ-06: nothing before the first keyframe
        self.pad_seen_for = 0
        self.dead = dead
        self.wait = wait

    # ---- codec parameters (10.5) ----
    def params(self) -> CodecParams:
        r = self.r
        deadline = time.monotonic() + SEQLOCK_SPIN_LIMIT_MS / 1000.0
        while True:
            l1 = r.load64(P["lock"])
            if l1 % 2 == 0:
                gen = r.load32r(P["generation"])
                size = r.load32r(P["size"])
                codec = r.load32r(P["codec"])
                data = _copy_out(r, CODEC_PARAMS_OFFSET + PARAMS_DATA, min(size, CODEC_PARAMS_MAX))
                A.fence_acquire()
                if r.load64r(P["lock"]) == l1:
                    if gen == 0:
                        raise CuframesError(Err.NO_CODEC_PARAMS)
                    if size > CODEC_PARAMS_MAX:
                        raise CuframesError(Err.CORRUPT, f"codec params size {size}")
                    return CodecParams(gen, codec, data)
            if time.monotonic() >= deadline:
                code = self.dead()
                raise CuframesError(code or Err.CORRUPT, "codec parameters seqlock never settled")

    def _params_generation(self) -> int:
        try:
            return self.params().generation
        except CuframesError as e:
            if e.code == Err.NO_CODEC_PARAMS:
                return 0
            raise

    # ---- resume (PKT-READ-05) ----
    def _resume(self) -> None:
        r = self.r
        self.need_key = True
        self.pad_seen_for = 0
        for _ in range(16):
            ks = r.load64(R["last_key_seq"])
            kp = r.load64(R["last_key_pos"])
            if ks == 0:
                break
            lock = r.load64(RING_DATA_OFFSET + kp % self.cap) if kp % 32 == 0 else 1
            A.fence_acquire()
            tail = r.load64r(R["tail_pos"])
            if lock == 2 * ks and tail <= kp:
                if ks < self.n:
                    break  # never resume below the cursor: go to the head
                self.n, self.p, self.from_head = ks, kp, False
                return
        hs = r.load64(R["head_seq"])
        hp = r.load64(R["head_pos"])
        self.n, self.p, self.from_head = hs + 1, hp, True

    def _stale(self) -> None:
        self.stale_resumes += 1
        if self.stale_resumes > 1024:
            raise CuframesError(Err.CORRUPT, "head view never became consistent")
        self._resume()

    def next(self, timeout_ms: Optional[float]) -> Packet:
        """PKT-READ-01..10: the next packet at the cursor; raises CuframesError with AGAIN
        (timeout 0), TIMEOUT, PACKET_OVERRUN (then resumes), CORRUPT or PEER_CLOSED."""
        r = self.r
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        while True:
            n, p = self.n, self.p
            hs = r.load64(R["head_seq"])
            if hs < n:
                if r.load32(R["state"]) == ST_CLOSED:
                    raise CuframesError(Err.PEER_CLOSED, "packet ring closed")
                code = self.dead()
                if code is not None:
                    raise CuframesError(code, "publisher gone")
                if timeout_ms == 0:
                    raise CuframesError(Err.AGAIN)
                left = None if deadline is None else (deadline - time.monotonic()) * 1000
                if left is not None and left <= 0:
                    raise CuframesError(Err.TIMEOUT, f"no packet {n}")
                self.wait(lambda: r.load64(R["head_seq"]) >= n, 50 if left is None else left)
                continue
            if p % 32 != 0:
                raise CuframesError(Err.CORRUPT, f"position {p} not 32-aligned")
            off = p % self.cap
            base = RING_DATA_OFFSET + off
            lock = r.load64(base)
            if lock != 2 * n:
                tail = r.load64(R["tail_pos"])
                if tail > p:
                    return self._overrun()
                if self.from_head:
                    self._stale()
                    continue
                if lock % 2 == 1:
                    spin_end = time.monotonic() + SEQLOCK_SPIN_LIMIT_MS / 1000.0
                    while True:
                        lock = r.load64(base)
                        tail = r.load64(R["tail_pos"])
                        if tail > p:
                            return self._overrun()
                        if lock == 2 * n or lock % 2 == 0 or time.monotonic() >= spin_end:
                            break
                    if lock != 2 * n:
                        if lock % 2 == 1:
                            code = self.dead()
                            raise CuframesError(code or Err.CORRUPT, f"record {n} stays odd")
                        raise CuframesError(Err.CORRUPT, f"record lock {lock} at {p}, {2 * n} due")
                else:
                    raise CuframesError(Err.CORRUPT, f"record lock {lock} at {p}, {2 * n} due")
            size = r.load32r(base + 8)
            flags = r.load32r(base + 12)
            pts = r.load64r(base + 16)
            gen = r.load32r(base + 24)
            bad = None
            if flags & ~(PKT_KEYFRAME | PKT_PAD):
                bad = f"unknown record flags {flags:#x}"
            elif flags & PKT_PAD:
                if flags != PKT_PAD:
                    bad = "PAD with another flag"
                elif off == 0:
                    bad = "PAD at offset 0"
                elif size != self.cap - off - RECORD_HDR:
                    bad = "PAD size does not reach the end"
                elif self.pad_seen_for == n:
                    bad = "two PADs before one packet"
            elif size > self.max:
                bad = f"size {size} > max_packet_bytes {self.max}"
            elif off + RECORD_HDR + size > self.cap:
                bad = "record straddles the end"
            if bad is not None:
                if r.load64(base) != lock or r.load64(R["tail_pos"]) > p:
                    return self._overrun()
                raise CuframesError(Err.CORRUPT, bad)
            if flags & PKT_PAD:
                A.fence_acquire()
                if r.load64r(base) != lock or r.load64r(R["tail_pos"]) > p:
                    return self._overrun()
                self.pad_seen_for = n
                self.p = p + (self.cap - off)
                continue
            data = _copy_out(r, base + RECORD_HDR, size)
            A.fence_acquire()
            if r.load64r(base) != 2 * n or r.load64r(R["tail_pos"]) > p:
                return self._overrun()
            self.n = n + 1
            self.p = p + align_up(RECORD_HDR + size, 32)
            self.from_head = False
            self.stale_resumes = 0
            self.pad_seen_for = 0
            if pts >= 1 << 63:
                pts -= 1 << 64
            pkt = Packet(n, flags, pts, gen, data)
            if self.need_key:
                # PKT-READ-06/08: after joining or resuming, start at a keyframe whose
                # parameters are the ones in force now
                if not pkt.keyframe or gen != self._params_generation():
                    continue
                self.need_key = False
            return pkt

    def _overrun(self) -> Packet:
        self._resume()
        raise CuframesError(Err.PACKET_OVERRUN, "lapped by the writer")
