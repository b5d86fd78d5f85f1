"""The subscriber role (PROTOCOL.md sections 2.8, 3, 4.1, 5.3-5.4, 10.6-10.7): the handshake in
the caller's thread, then a service thread that answers PING and notices DETACH, ERROR and
end-of-file while the application makes no call (SM-SUB-03). Frames come out as `Frame`
objects whose `array` is a zero-copy NumPy view of the slot's buffer."""
from __future__ import annotations

import mmap
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    import numpy as np

from . import _atomics as A
from . import tlv
from ._util import (LIB_VERSION, WAIT_SLICE_MS, bounded_wait, check_key, close_socket, ring_path,
                    segment_path, socket_path)
from .errors import CuframesError, Err, known_or_protocol
from .layout import (CAP_PACKET_RING_PRESENT, CAP_WAKE_FORWARD, CAP_WANT_PACKETS, CUDA_IPC,
                     HANDSHAKE_TIMEOUT_MS, HEADER_SIZE, HELLO_MAGIC, HOST, HOST_ALIGN,
                     LAYOUT_VERSION, MAX_SLOTS, MAX_SUBSCRIBERS, META, MIN_SLOTS,
                     PEER_DEATH_DETECT_MS, RING_HEADER_SIZE, RING_LAYOUT_VERSION, RING_MAGIC, SEG,
                     SEGMENT_MAGIC, SLOT_DESC_SIZE, SUB, SUB_ACTIVE, SUB_ATTACHING, SUB_SLOT_SIZE,
                     ST_CLOSED, ST_INIT, ST_READY, WAKE_FORWARD_COUNT, Region, sub_slot_offset)
from .ring import CodecParams, Packet, RingReader, validate_ring

PROTO_MAX = 3
S = {k: v[0] for k, v in SEG.items()}
KIND_NAMES = {"host": HOST, "cuda": CUDA_IPC}


class Frame:
    """One delivered frame. `array` is a read-only uint8 NumPy view of its payload (HOST kind),
    valid until `release()` (or the end of the `with` block). After release, `array` raises
    CuframesError(STATE); a view obtained before and kept alive does not follow the slot into
    the next frame: release() swaps a private copy of the pages in under it before the ACK,
    so it keeps showing this frame's bytes (a copy the application pays for only by keeping
    the view)."""

    def __init__(self, sub: "Subscriber", seq: int, meta: dict[str, int], mm: Optional[mmap.mmap],
                 length: int, cuda: Any = None) -> None:
        self._sub = sub
        self.seq = seq
        self.timestamp_ns: int = meta["timestamp_ns"]
        self.width: int = meta["width"]
        self.height: int = meta["height"]
        self.pixel_format: int = meta["pixel_format"]
        self.pitch: int = meta["pitch"]
        self.payload_bytes: int = meta["payload_bytes"]
        self.flags: int = meta["flags"]
        self.user_data: int = meta["user_data"]
        self._mm = mm
        self._len = length
        self._cuda = cuda
        self.released = False

    @property
    def array(self) -> "np.ndarray":
        """HOST: a read-only uint8 NumPy view of the payload (zero-copy). CUDA_IPC: a CuPy
        array on the device (see cuframes.cuda)."""
        if self.released:
            raise CuframesError(Err.STATE, f"frame {self.seq} was released")
        if self._cuda is not None:
            arr: "np.ndarray" = self._cuda.array(self)
            return arr
        import numpy as np  # lazily: the adapters use `buffer` and start faster without it

        if self._mm is None:
            return np.empty(0, dtype=np.uint8)
        return np.frombuffer(self._mm, dtype=np.uint8, count=self.payload_bytes)

    @property
    def buffer(self) -> memoryview:
        """HOST: a read-only memoryview of the payload (zero-copy), with the same lifetime
        rules as `array`."""
        if self.released:
            raise CuframesError(Err.STATE, f"frame {self.seq} was released")
        if self._cuda is not None:
            raise CuframesError(Err.UNSUPPORTED, "a CUDA frame has no host buffer; use array")
        if self._mm is None:
            return memoryview(b"")
        return memoryview(self._mm)[:self.payload_bytes]

    def tobytes(self) -> bytes:
        """A host copy of the payload (CUDA kinds: copied on the reading stream)."""
        if self.released:
            raise CuframesError(Err.STATE, f"frame {self.seq} was released")
        if self._cuda is not None:
            return bytes(self._cuda.to_host(self))
        return bytes(self.buffer)

    def release(self) -> None:
        """Releases (ACKs) the frame; frames are ACKed in seq order (ACK-REL-01)."""
        if self.released:
            return
        self.released = True
        if self._mm is not None:
            mm, self._mm = self._mm, None
            try:
                mm.close()
            except BufferError:
                # the application still holds a view: give it private pages (see class doc)
                A.detach_pages(A.buffer_address(mm), self._len)
        if self._cuda is not None:
            self._cuda.release(self)
        self._sub._ack(self.seq)

    @property
    def stream(self) -> Any:
        """CUDA kinds: the CuPy stream that waited for this frame's ready event and on which
        release() records the ack event. Run the kernels that read `array` on it (`with
        f.stream:`), or order your stream after it, so that the ACK covers them (ACK-REL-01).
        None for HOST frames."""
        return None if self._cuda is None else self._cuda.stream

    def __enter__(self) -> "Frame":
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        # a frame dropped without release() is released when it is collected, so that a
        # forgotten frame costs latency, not an eviction
        try:
            if not self.released:
                self.release()
        except Exception:
            pass


class Subscriber:
    """Connects to key K's publisher and attaches (HELLO, map, ATTACH) within
    HANDSHAKE_TIMEOUT_MS; raises CuframesError with the code of section 4.1 on failure."""

    def __init__(self, key: str, *, kinds: tuple[str, ...] = ("host",),
                 max_proto: int = PROTO_MAX, want_packets: bool = False) -> None:
        check_key(key)
        if max_proto < 1:
            raise CuframesError(Err.INVALID_ARGUMENT, "max_proto")
        mask = 0
        for k in kinds:
            if k not in KIND_NAMES:
                raise CuframesError(Err.INVALID_ARGUMENT, f"kind {k}")
            mask |= 1 << (KIND_NAMES[k] - 1)
        self.key = key
        self.min_proto, self.max_proto = 1, min(max_proto, PROTO_MAX)
        self.kinds_mask = mask
        self._send_lock = threading.Lock()
        self._fail: Optional[Err] = None
        self._fail_event = threading.Event()
        self._closed = False
        self.seg: Optional[Region] = None
        self._seg_fd = -1
        self._ring_region: Optional[Region] = None
        self.reader: Optional[RingReader] = None
        self._cuda: Any = None
        self._sock: Optional[socket.socket] = None
        self._dec = tlv.Decoder()
        self._released: set[int] = set()
        self._acked = 0
        self._highest = 0
        try:
            self._handshake(want_packets)
        except CuframesError:
            self._teardown()
            raise
        except BaseException:
            # interrupted (KeyboardInterrupt, a signal handler's exception): LOCAL_CLOSE in
            # HELLO_SENT or ATTACH_SENT, which says goodbye with DETACH(OK) (table 4.1)
            self._send(tlv.encode_detach(Err.OK))
            self._teardown()
            raise
        self.cursor = self.start_seq
        self._acked = self.start_seq - 1
        self._thread = threading.Thread(target=self._serve, name="cuframes-sub", daemon=True)
        self._thread.start()

    # ---- socket helpers -------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        with self._send_lock:
            if self._sock is not None:
                try:
                    self._sock.sendall(data, socket.MSG_NOSIGNAL)
                except OSError:
                    pass

    def _close_sock(self) -> None:
        with self._send_lock:
            if self._sock is not None:
                close_socket(self._sock)
                self._sock = None

    def _teardown(self) -> None:
        self._close_sock()
        if self._cuda is not None:
            self._cuda.close()
            self._cuda = None
        for r in (self.seg, self._ring_region):
            if r is not None:
                r.close()
        self.seg = self._ring_region = None
        if self._seg_fd >= 0:
            os.close(self._seg_fd)
            self._seg_fd = -1

    def _fail_hs(self, code: Err, send: Optional[bytes], why: str) -> CuframesError:
        if send:
            self._send(send)
        self._close_sock()
        return CuframesError(code, why)

    # ---- handshake (4.1) --------------------------------------------------------------------
    def _handshake(self, want_packets: bool) -> None:
        path = socket_path(self.key)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            raise CuframesError(Err.NOT_FOUND, f"no publisher on {path}")
        except PermissionError:
            s.close()
            raise CuframesError(Err.PERMISSION, f"connect {path}")
        except OSError as e:
            s.close()
            raise CuframesError(Err.SYSTEM, f"connect {path}: {e.strerror}")
        self._sock = s
        self._deadline = time.monotonic() + HANDSHAKE_TIMEOUT_MS / 1000.0
        caps = CAP_WANT_PACKETS if want_packets and self.max_proto >= 2 else 0
        if self.max_proto >= 3:
            caps |= CAP_WAKE_FORWARD  # this subscriber forwards wake-ups (SHM-WAKE-01)
        req = tlv.HelloReq(HELLO_MAGIC, self.min_proto, self.max_proto, self.kinds_mask,
                           LIB_VERSION, caps)
        self._send(tlv.encode(tlv.HELLO_REQ, req.encode()))
        state = "HELLO_SENT"
        while True:
            mtype, payload = self._hs_recv()
            if mtype == tlv.PING:
                self._send(tlv.encode_ping(tlv.PONG, tlv.decode_nonce(payload)))
            elif mtype == tlv.PONG:
                continue
            elif mtype == tlv.DETACH:
                raise self._fail_hs(Err.PEER_CLOSED, None, "DETACH during the handshake")
            elif mtype == tlv.ERROR:
                code = known_or_protocol(tlv.decode_error(payload)[0])
                raise self._fail_hs(Err.PROTOCOL if code == Err.OK else code, None,
                                    "ERROR during the handshake")
            elif mtype == tlv.HELLO_RESP and state == "HELLO_SENT":
                self._on_hello_resp(tlv.HelloResp.decode(payload))
                state = "ATTACH_SENT"
            elif mtype == tlv.ATTACH_RESP and state == "ATTACH_SENT":
                resp = tlv.AttachResp.decode(payload)
                if resp.status != Err.OK:
                    code = known_or_protocol(resp.status)
                    raise self._fail_hs(Err.PROTOCOL if code == Err.OK else code, None,
                                        "ATTACH_RESP refused")
                self.start_seq = resp.start_seq
                return
            else:
                raise self._fail_hs(Err.STATE, tlv.encode_error(Err.STATE, "unexpected message"),
                                    f"{tlv.NAMES.get(mtype)} in {state}")

    def _hs_recv(self) -> tuple[int, bytes]:
        """The next message before the handshake deadline; TIMEOUT closes without sending."""
        while True:
            for m in self._pending():
                return m
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise self._fail_hs(Err.TIMEOUT, None, "handshake timeout")
            assert self._sock is not None
            r, _, _ = select.select([self._sock], [], [], left)
            if not r:
                continue
            try:
                data = self._sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                raise self._fail_hs(Err.PEER_CLOSED, None, "end-of-file during the handshake")
            self._inbox = getattr(self, "_inbox", b"") + data

    def _pending(self) -> list[tuple[int, bytes]]:
        data = getattr(self, "_inbox", b"")
        self._inbox = b""
        out: list[tuple[int, bytes]] = []
        if not data and not getattr(self, "_queued", None):
            return out
        queued: list[tuple[int, bytes]] = getattr(self, "_queued", [])
        try:
            queued.extend(self._dec.feed(data))
        except tlv.FramingError as e:
            raise self._fail_hs(e.code if e.send else Err.PROTOCOL,
                                tlv.encode_error(e.code, str(e)) if e.send else None, str(e))
        if queued:
            out.append(queued.pop(0))
        self._queued = queued
        return out

    def _on_hello_resp(self, r: tlv.HelloResp) -> None:
        if r.status != Err.OK:
            code = known_or_protocol(r.status)
            raise self._fail_hs(Err.PROTOCOL if code == Err.OK else code, None,
                                f"HELLO_RESP status {r.status}")
        if not self.min_proto <= r.proto_version <= self.max_proto:
            raise self._fail_hs(Err.VERSION_MISMATCH, tlv.encode_detach(Err.VERSION_MISMATCH),
                                f"proto_version {r.proto_version}")
        if r.memory_kind == 0 or r.memory_kind > 32 or \
                not (self.kinds_mask >> (r.memory_kind - 1)) & 1:
            raise self._fail_hs(Err.UNSUPPORTED_KIND, tlv.encode_detach(Err.UNSUPPORTED_KIND),
                                f"memory_kind {r.memory_kind}")
        self.proto = r.proto_version
        self.kind = r.memory_kind
        self.index = r.subscriber_index
        self.generation = r.generation
        ring = self.proto >= 2 and bool(r.caps & CAP_PACKET_RING_PRESENT)
        try:
            self._map_segment()
            if ring:
                self._map_ring(r.initial_packet_seq, r.initial_packet_pos)
            if self.kind == CUDA_IPC:
                from .cuda import SubscriberCuda

                self._cuda = SubscriberCuda(self)
        except CuframesError as e:
            if e.code == Err.TIMEOUT:
                raise self._fail_hs(Err.TIMEOUT, None, str(e))
            raise self._fail_hs(e.code, tlv.encode_detach(e.code), str(e))
        flags = 1 if self._cuda is not None else 0
        self._send(tlv.encode(tlv.ATTACH_REQ,
                              tlv.AttachReq(self.index, self.generation, flags).encode()))

    def _wait_ready(self, region: Region, what: str, identity: tuple[int, int, int]) -> None:
        """SHM-VALID-01/03: INIT waits within the handshake deadline; CLOSED is PEER_CLOSED.
        SHM-HDR-01 / PKT-HDR-01 first: a header that is written (not all zero) and whose
        (layout_version, magic, header_size) is not `identity` is UNSUPPORTED_LAYOUT at once,
        whatever its state: nothing else of an unknown layout is read, not even the state."""
        while True:
            seen = (region.load32(0), region.load32(4), region.load32(12))
            if seen != (0, 0, 0) and seen != identity:
                raise CuframesError(Err.UNSUPPORTED_LAYOUT, f"{what} header")
            st = region.load32(8)
            if st != ST_INIT:
                if st == ST_CLOSED:
                    raise CuframesError(Err.PEER_CLOSED, f"{what} CLOSED")
                return
            if time.monotonic() >= self._deadline:
                raise CuframesError(Err.TIMEOUT, f"{what} still INIT")
            time.sleep(0.005)  # polling a state word, not synchronising processes

    def _map_segment(self) -> None:
        try:
            fd = os.open(segment_path(self.key), os.O_RDWR | os.O_CLOEXEC)
        except OSError as e:
            raise CuframesError(Err.CORRUPT, f"segment: {e.strerror}")
        self._seg_fd = fd
        size = os.fstat(fd).st_size
        if size < HEADER_SIZE:
            raise CuframesError(Err.CORRUPT, f"segment of {size} bytes")
        hdr = Region(fd, HEADER_SIZE)
        try:
            self._wait_ready(hdr, "segment", (LAYOUT_VERSION, SEGMENT_MAGIC, HEADER_SIZE))

            def g(name: str) -> int:
                return hdr.get(S[name], SEG[name][1])

            if (g("layout_version") != LAYOUT_VERSION or g("magic") != SEGMENT_MAGIC
                    or g("header_size") != HEADER_SIZE):
                raise CuframesError(Err.UNSUPPORTED_LAYOUT, "segment header")
            if hdr.load32(S["state"]) != ST_READY:
                raise CuframesError(Err.CORRUPT, "segment state")
            vals = {k: g(k) for k in SEG}
        finally:
            hdr.close()
        size = os.fstat(fd).st_size
        sc, ms = vals["slot_count"], vals["max_subscribers"]
        bad = None
        if vals["memory_kind"] != self.kind:
            bad = "memory_kind differs from HELLO_RESP"
        elif not MIN_SLOTS <= sc <= MAX_SLOTS:
            bad = f"slot_count {sc}"
        elif not 1 <= ms <= MAX_SUBSCRIBERS:
            bad = f"max_subscribers {ms}"
        elif vals["slot_bytes"] < 1:
            bad = "slot_bytes 0"
        elif vals["slot_desc_offset"] != HEADER_SIZE or vals["sub_slot_offset"] != sub_slot_offset(sc):
            bad = "descriptor offsets"
        elif vals["segment_size"] != size:
            bad = f"segment_size {vals['segment_size']} != file size {size}"
        elif self.kind == HOST:
            do, ds, sb = vals["data_offset"], vals["data_stride"], vals["slot_bytes"]
            if (do % HOST_ALIGN or do < sub_slot_offset(sc) + SUB_SLOT_SIZE * ms
                    or ds < sb or ds % HOST_ALIGN or do + sc * ds > size):
                bad = "HOST data area"
        elif sub_slot_offset(sc) + SUB_SLOT_SIZE * ms > size:
            bad = "subscriber slots beyond the segment"
        if bad:
            raise CuframesError(Err.CORRUPT, bad)
        self.slot_count, self.max_subscribers = sc, ms
        self.slot_bytes = vals["slot_bytes"]
        self.data_offset, self.data_stride = vals["data_offset"], vals["data_stride"]
        self.sub_off = vals["sub_slot_offset"]
        self.seg = Region(fd, size)
        # SHM-VALID-04: our own slot
        if self.index >= ms:
            raise CuframesError(Err.CORRUPT, f"subscriber_index {self.index} >= {ms}")
        base = self.sub_off + self.index * SUB_SLOT_SIZE
        if self.seg.load32(base) != SUB_ATTACHING or self.seg.load32(base + 4) != self.generation:
            raise CuframesError(Err.CORRUPT, "own subscriber slot not ATTACHING/generation")
        self._slot_base = base

    def _slot_base_for_attach(self) -> int:
        return self._slot_base

    def _map_ring(self, seq: int, pos: int) -> None:
        try:
            fd = os.open(ring_path(self.key), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CuframesError(Err.CORRUPT, f"packet ring: {e.strerror}")
        try:
            size = os.fstat(fd).st_size
            if size < RING_HEADER_SIZE:
                raise CuframesError(Err.CORRUPT, f"packet ring of {size} bytes")
            hdr = Region(fd, RING_HEADER_SIZE, writable=False)
            try:
                self._wait_ready(hdr, "packet ring",
                                 (RING_LAYOUT_VERSION, RING_MAGIC, RING_HEADER_SIZE))
                cap, mpb = validate_ring(hdr, os.fstat(fd).st_size)
            finally:
                hdr.close()
            self._ring_region = Region(fd, os.fstat(fd).st_size, writable=False)
        finally:
            os.close(fd)
        self.reader = RingReader(self._ring_region, cap, mpb, seq, pos, self._dead,
                                 self._packet_wait)

    def wait_codec_params(self, timeout_ms: float) -> CodecParams:
        """codec_params(), waiting up to timeout_ms while none are published yet (a publisher
        may publish them after the subscriber attached). Raises TIMEOUT, PEER_CLOSED, and
        what codec_params() raises."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            try:
                return self.codec_params()
            except CuframesError as e:
                if e.code != Err.NO_CODEC_PARAMS:
                    raise
            if self._fail is not None:
                raise CuframesError(self._fail, "connection ended")
            left = (deadline - time.monotonic()) * 1000
            if left <= 0:
                raise CuframesError(Err.TIMEOUT, "no codec parameters")
            # parameters do not bump packet_futex: this wait is a bounded poll (SHM-ORDER-03)
            time.sleep(min(left, 10) / 1000.0)

    # ---- service thread (SM-SUB-03) -------------------------------------------------------
    def _set_fail(self, code: Err) -> None:
        if self._fail is None:
            self._fail = code
        self._fail_event.set()

    def _serve(self) -> None:
        # messages that arrived with ATTACH_RESP are handled first
        backlog: list[tuple[int, bytes]] = getattr(self, "_queued", [])
        self._queued = []
        for m in backlog:
            if not self._handle(*m):
                return
        while not self._closed:
            sock = self._sock
            if sock is None:
                return
            try:
                r, _, _ = select.select([sock], [], [], WAIT_SLICE_MS / 1000.0)
            except (OSError, ValueError):
                return
            if not r:
                continue
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if self._closed:
                return
            if not data:
                self._set_fail(Err.PEER_CLOSED)
                self._close_sock()
                return
            try:
                for m in self._dec.feed(data):
                    if not self._handle(*m):
                        return
            except tlv.FramingError as e:
                if e.send:
                    self._send(tlv.encode_error(e.code, str(e)))
                self._set_fail(e.code if e.send else Err.PROTOCOL)
                self._close_sock()
                return

    def _handle(self, mtype: int, payload: bytes) -> bool:
        """One message in ACTIVE; False once the connection is closed."""
        if mtype == tlv.PING:
            self._send(tlv.encode_ping(tlv.PONG, tlv.decode_nonce(payload)))
            return True
        if mtype == tlv.PONG:
            return True
        if mtype == tlv.DETACH:
            self._set_fail(Err.PEER_CLOSED)
        elif mtype == tlv.ERROR:
            code = known_or_protocol(tlv.decode_error(payload)[0])
            self._set_fail(Err.PROTOCOL if code == Err.OK else code)
        else:
            self._send(tlv.encode_error(Err.STATE, f"{tlv.NAMES[mtype]} in ACTIVE"))
            self._set_fail(Err.STATE)
        self._close_sock()
        return False

    def _dead(self) -> Optional[Err]:
        return self._fail

    # ---- frames (5.3, 5.4) ------------------------------------------------------------------
    def _lost_slot(self) -> CuframesError:
        """SHM-SUB-04: our slot is no longer ours; the code of the publisher's ERROR, waited
        for at most PEER_DEATH_DETECT_MS; EVICTED if none arrives."""
        assert self.seg is not None
        if self.seg.load32(S["state"]) == ST_CLOSED and self._fail is None:
            return CuframesError(Err.PEER_CLOSED, "publisher closed")
        self._fail_event.wait(PEER_DEATH_DETECT_MS / 1000.0)
        code = self._fail
        if code is None:
            code = Err.PEER_CLOSED if self.seg.load32(S["state"]) == ST_CLOSED else Err.EVICTED
        self._set_fail(code)
        return CuframesError(code, "subscriber slot lost")

    def _slot_ok(self) -> bool:
        assert self.seg is not None
        return (self.seg.load32(self._slot_base) == SUB_ACTIVE
                and self.seg.load32(self._slot_base + 4) == self.generation)

    def _check_alive(self) -> None:
        if self._closed or self.seg is None:
            raise CuframesError(Err.STATE, "subscriber closed")
        if self._fail is not None:
            raise CuframesError(self._fail, "connection ended")
        if self.seg.load32(S["state"]) == ST_CLOSED:
            self._set_fail(Err.PEER_CLOSED)
            raise CuframesError(Err.PEER_CLOSED, "publisher closed")
        if not self._slot_ok():
            raise self._lost_slot()

    def next_frame(self, timeout_ms: Optional[float] = None) -> Frame:
        """The frame at the cursor (ACK-READ-01..03). timeout_ms=0 is non-blocking (AGAIN);
        raises TIMEOUT, PEER_CLOSED, EVICTED, PROTOCOL, CORRUPT as section 5 says."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000.0
        n = self.cursor
        while True:
            self._check_alive()
            seg = self.seg
            assert seg is not None
            if seg.load64(S["write_seq"]) >= n:
                break
            if timeout_ms == 0:
                raise CuframesError(Err.AGAIN)
            left = None if deadline is None else (deadline - time.monotonic()) * 1000
            if left is not None and left <= 0:
                raise CuframesError(Err.TIMEOUT, f"no frame {n}")
            # SHM-WAKE-01: in a version 3 session (WAKE_FORWARD was announced) wait in frame n's
            # bitset and, woken with frame n committed, wake two more of its waiters.
            bitset = 1 << (n % 32) if self.proto >= 3 else 0
            woken = bounded_wait(seg.base + S["frame_futex"], seg.base + S["frame_waiters"],
                                 lambda: seg.load64(S["write_seq"]) >= n,
                                 WAIT_SLICE_MS if left is None else min(left, WAIT_SLICE_MS),
                                 bitset)
            if woken and bitset and seg.load64(S["write_seq"]) >= n:
                A.futex_wake_bitset(seg.base + S["frame_futex"], WAKE_FORWARD_COUNT, bitset)
        s = (n - 1) % self.slot_count
        mbase = HEADER_SIZE + s * SLOT_DESC_SIZE
        mseq = seg.load64(mbase)
        if mseq > n:
            raise self._lost_slot()
        if mseq < n:
            raise self._corrupt(f"meta.seq {mseq} < {n}")
        if not self._slot_ok():
            raise self._lost_slot()
        meta = {k: seg.get(mbase + off, fmt) for k, (off, fmt) in META.items()}
        if meta["payload_bytes"] > self.slot_bytes:
            raise self._corrupt(f"payload_bytes {meta['payload_bytes']} > {self.slot_bytes}")
        self.cursor = n + 1
        self._highest = n
        if self.kind == HOST:
            if self.data_stride == 0:  # slot_bytes 0: nothing to map
                return Frame(self, n, meta, None, 0)
            mm = mmap.mmap(self._seg_fd, self.data_stride, access=mmap.ACCESS_READ,
                           offset=self.data_offset + s * self.data_stride)
            return Frame(self, n, meta, mm, self.data_stride)
        assert self._cuda is not None
        frame: Frame = self._cuda.frame(self, n, s, meta)
        return frame

    def _corrupt(self, why: str) -> CuframesError:
        self._send(tlv.encode_detach(Err.CORRUPT))
        self._set_fail(Err.CORRUPT)
        self._close_sock()
        return CuframesError(Err.CORRUPT, why)

    def _ack(self, seq: int) -> None:
        """ACK-REL-01: ack_seq = the highest seq released in order (release), ack_futex + 1,
        wake the publisher if it waits. Nothing after close (ACK-REL-04)."""
        if self._closed or self.seg is None or self._fail is not None:
            return
        self._released.add(seq)
        n = self._acked
        while n + 1 in self._released:
            n += 1
            self._released.discard(n)
        if n == self._acked:
            return
        self._acked = n
        seg = self.seg
        seg.store64(self._slot_base + SUB["ack_seq"][0], n)
        seg.add32(S["ack_futex"], 1)
        if seg.load32(S["ack_waiting"]) == 1:
            A.futex_wake(seg.base + S["ack_futex"], 0x7FFFFFFF)

    # ---- packets (10.6-10.8) ----------------------------------------------------------------
    @property
    def has_packet_ring(self) -> bool:
        return self.reader is not None

    def _packet_wait(self, ready: Any, left_ms: float) -> None:
        assert self.seg is not None and self._ring_region is not None
        bounded_wait(self._ring_region.base + 104, self.seg.base + S["packet_waiters"], ready,
                     left_ms)

    def next_packet(self, timeout_ms: Optional[float] = None) -> Packet:
        """The next packet (PKT-READ-*): AGAIN, TIMEOUT, PACKET_OVERRUN (then resumes at the
        latest keyframe), NO_PACKET_RING, CORRUPT, PEER_CLOSED."""
        if self.reader is None:
            raise CuframesError(Err.NO_PACKET_RING)
        if self._closed:
            raise CuframesError(Err.STATE, "subscriber closed")
        return self.reader.next(timeout_ms)

    def codec_params(self) -> CodecParams:
        """(generation, codec, data): NO_CODEC_PARAMS, NO_PACKET_RING, CORRUPT."""
        if self.reader is None:
            raise CuframesError(Err.NO_PACKET_RING)
        return self.reader.params()

    # ---- close ------------------------------------------------------------------------------
    def close(self) -> None:
        """LOCAL_CLOSE: DETACH(OK), close, unmap; held frames are not released (ACK-REL-04)."""
        if self._closed:
            return
        self._closed = True
        if self._fail is None:
            self._send(tlv.encode_detach(Err.OK))
        self._close_sock()
        if getattr(self, "_thread", None) is not None and \
                self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        self._teardown()

    def __enter__(self) -> "Subscriber":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
