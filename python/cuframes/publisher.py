"""The publisher role (PROTOCOL.md sections 1, 2, 4.2, 5, 10): owns the key's resources, serves
subscriber connections from a service thread (SM-PUB-06) and publishes frames and packets from
the caller's thread. One lock (`_lock`) serialises slot-table changes with frame commits, so a
subscriber's start_seq and ACTIVE store are atomic with respect to commits (MSG-ARESP-01)."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
import socket
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Union

if TYPE_CHECKING:
    import numpy as np

from . import _atomics as A
from . import tlv
from ._util import (DEVICE_SPIN_MS, LIB_VERSION, WAIT_SLICE_MS, check_key, close_socket,
                    proc_start_time, ring_path, segment_path, socket_path, unlink_checked)
from .errors import CuframesError, Err, known_or_protocol, os_error_code
from .layout import (DEFAULT_ACK_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS, HEADER_SIZE, HELLO_MAGIC,
                     CUDA_IPC, HOST, LAYOUT_VERSION, SUB_FLAG_ACK_EVENT_PRESENT,
                     ATTACH_FLAG_ACK_EVENT_WRITTEN, MAX_SLOTS, MAX_SUBSCRIBERS, META, MIN_SLOTS, PIX_NV12,
                     PIX_OPAQUE, SEG, SEG_FLAG_PACKET_RING, SEGMENT_MAGIC, SLOT_DESC_SIZE, SUB,
                     SUB_ACK_EVENT, SUB_ACTIVE, SUB_ATTACHING, SUB_EVICTED, SUB_FREE,
                     SUB_SLOT_SIZE, ST_CLOSED, ST_READY, CAP_WANT_PACKETS, Region, host_layout,
                     sub_slot_offset)
from .ring import RingWriter, ring_size, valid_capacity

PROTO_MAX = 3
S = {k: v[0] for k, v in SEG.items()}

AWAIT_HELLO, AWAIT_ATTACH, ACTIVE, CLOSED = "AWAIT_HELLO", "AWAIT_ATTACH", "ACTIVE", "CLOSED"
EventFn = Callable[[str, "dict[str, Any]"], None]


class _Conn:
    def __init__(self, sock: socket.socket, now: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.state = AWAIT_HELLO
        self.dec = tlv.Decoder()
        self.accepted = now
        self.slot: Optional[int] = None
        self.generation = 0
        self.pid = 0
        self.uid = -1
        self.last_ack = 0
        self.start_seq = 0
        try:
            pid, uid, _gid = struct.unpack("3i", sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
            self.pid, self.uid = pid, uid
        except OSError:
            pass


def _next_pow2(v: int) -> int:
    p = 4096
    while p < v:
        p *= 2
    return p


class Publisher:
    """Creates key K's segment (and packet ring), listens on its socket and publishes.

    `on_event(name, fields)` is called (from either thread) with `subscriber`, `detached` and
    `evicted` events; the adapters print them."""

    def __init__(self, key: str, *, slot_count: int = 4, max_subscribers: int = 8,
                 slot_bytes: int = 4096, width: int = 0, height: int = 0,
                 memory_kind: int = HOST, max_proto: int = PROTO_MAX,
                 ack_timeout_ms: int = DEFAULT_ACK_TIMEOUT_MS, packet_ring: bool = False,
                 ring_bytes: Optional[int] = None, max_packet_bytes: int = 1024, codec: int = 1,
                 gop_hint: int = 30, mode: int = 0o600, allow_other_uids: bool = False,
                 on_event: Optional[EventFn] = None) -> None:
        check_key(key)
        if not MIN_SLOTS <= slot_count <= MAX_SLOTS or not 1 <= max_subscribers <= MAX_SUBSCRIBERS:
            raise CuframesError(Err.INVALID_ARGUMENT, "slot_count or max_subscribers out of range")
        if slot_bytes < 1 or max_proto < 1 or mode not in (0o600, 0o660):
            raise CuframesError(Err.INVALID_ARGUMENT, "slot_bytes, max_proto or mode")
        if memory_kind not in (HOST, CUDA_IPC):
            raise CuframesError(Err.UNSUPPORTED, f"memory kind {memory_kind}")
        self._cuda: Any = None
        self.key = key
        self.proto = min(max_proto, PROTO_MAX)
        self.kind = memory_kind
        self.slot_count = slot_count
        self.max_subs = max_subscribers
        self.slot_bytes = slot_bytes
        self.width, self.height = width, height
        self.ack_timeout_ms = ack_timeout_ms
        self.mode = mode
        self.allow_other_uids = allow_other_uids
        self.on_event = on_event
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._conns: dict[int, _Conn] = {}
        self._slot_conn: dict[int, _Conn] = {}
        self.write_seq = 0
        self._closed = False
        self._stop = False
        self._uid = os.getuid()
        self._seg_path = segment_path(key)
        self._ring_path = ring_path(key)
        self._sock_path = socket_path(key)
        self.ring: Optional[RingWriter] = None
        self._ring_region: Optional[Region] = None
        want_ring = packet_ring and self.proto >= 2
        if want_ring:
            cap = ring_bytes if ring_bytes is not None else _next_pow2(
                max(1 << 16, 2 * (gop_hint + 1) * (max_packet_bytes + 64)))
            if not valid_capacity(cap, max_packet_bytes):
                raise CuframesError(Err.INVALID_ARGUMENT, f"ring capacity {cap}")
        self._fd = self._create_locked()
        try:
            self._build(want_ring, cap if want_ring else 0, max_packet_bytes, codec)
            self._listen()
        except BaseException:
            self._abort()
            raise
        self._thread = threading.Thread(target=self._serve, name="cuframes-pub", daemon=True)
        self._thread.start()

    # ---- creation (1.3) -----------------------------------------------------------------
    def _create_locked(self) -> int:
        excl = False
        for _attempt in range(8):
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if excl else 0)
            try:
                fd = os.open(self._seg_path, flags, self.mode)
            except FileExistsError:
                excl = False  # RES-CREATE-06: a rival created it; start over without O_EXCL
                continue
            except OSError as e:
                raise CuframesError(os_error_code(e), f"open {self._seg_path}: {e.strerror}")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise CuframesError(Err.KEY_IN_USE, f"key {self.key} has a live publisher")
            st = os.fstat(fd)
            try:
                now_at_path = os.stat(self._seg_path)
            except FileNotFoundError:
                os.close(fd)
                continue
            if (st.st_ino, st.st_dev) != (now_at_path.st_ino, now_at_path.st_dev):
                os.close(fd)  # RES-CREATE-02: replaced meanwhile
                continue
            if st.st_size != 0:
                # RES-CREATE-03: a dead publisher's segment; we hold its lock, so we alone
                # reclaim: ring, socket, then the segment last.
                try:
                    unlink_checked(self._ring_path)
                    unlink_checked(self._sock_path)
                    unlink_checked(self._seg_path)
                finally:
                    os.close(fd)
                excl = True
                continue
            os.fchmod(fd, self.mode)
            return fd
        raise CuframesError(Err.KEY_IN_USE, "could not take the key in 8 attempts")

    def _build(self, want_ring: bool, cap: int, mpb: int, codec: int) -> None:
        S_ = self.slot_count
        self.sub_off = sub_slot_offset(S_)
        if self.kind == HOST:
            self.data_offset, self.data_stride, size = host_layout(S_, self.max_subs,
                                                                   self.slot_bytes)
        else:  # SHM-LAYOUT-01: CUDA kinds keep no buffers in the segment
            self.data_offset = self.data_stride = 0
            size = self.sub_off + SUB_SLOT_SIZE * self.max_subs
        self.segment_size = size
        os.ftruncate(self._fd, size)
        seg = self.seg = Region(self._fd, size)
        nv12 = self.width and self.height
        for name, val in (("layout_version", LAYOUT_VERSION), ("magic", SEGMENT_MAGIC),
                          ("header_size", HEADER_SIZE), ("proto_version", self.proto),
                          ("memory_kind", self.kind), ("slot_count", S_),
                          ("max_subscribers", self.max_subs),
                          ("flags", SEG_FLAG_PACKET_RING if want_ring else 0),
                          ("publisher_pid", os.getpid()),
                          ("publisher_start_time", proc_start_time(os.getpid())),
                          ("segment_size", size), ("lib_version", LIB_VERSION),
                          ("width", self.width if nv12 else 0),
                          ("height", self.height if nv12 else 0),
                          ("pixel_format", PIX_NV12 if nv12 else PIX_OPAQUE),
                          ("pitch", self.width if nv12 else 0), ("slot_bytes", self.slot_bytes),
                          ("slot_desc_offset", HEADER_SIZE), ("sub_slot_offset", self.sub_off),
                          ("data_offset", self.data_offset), ("data_stride", self.data_stride)):
            seg.put(SEG[name][0], SEG[name][1], val)
        if self.kind == CUDA_IPC:
            from .cuda import PublisherCuda

            self._cuda = PublisherCuda(seg, S_, self.slot_bytes)
        if want_ring:
            unlink_checked(self._ring_path)
            try:
                rfd = os.open(self._ring_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                              self.mode)
            except OSError as e:
                raise CuframesError(os_error_code(e), f"create {self._ring_path}: {e.strerror}")
            try:
                os.fchmod(rfd, self.mode)
                os.ftruncate(rfd, ring_size(cap))
                self._ring_region = Region(rfd, ring_size(cap))
            finally:
                os.close(rfd)
            self.ring = RingWriter(self._ring_region, cap, mpb, codec)
            self.ring.set_ready()
        # RES-CREATE-04: READY with release order after every other byte
        seg.store32(S["state"], ST_READY)

    def _listen(self) -> None:
        unlink_checked(self._sock_path)
        ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            ls.bind(self._sock_path)
            os.chmod(self._sock_path, self.mode)  # RES-PERM-04: between bind and listen
            ls.listen(64)
        except OSError as e:
            ls.close()
            raise CuframesError(os_error_code(e), f"socket {self._sock_path}: {e.strerror}")
        ls.setblocking(False)
        self._listener: Optional[socket.socket] = ls

    def _abort(self) -> None:
        for p in (self._sock_path, self._ring_path, self._seg_path):
            try:
                os.unlink(p)
            except OSError:
                pass
        for r in (getattr(self, "seg", None), self._ring_region):
            if r is not None:
                r.close()
        os.close(self._fd)

    # ---- helpers --------------------------------------------------------------------------
    def _emit(self, name: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(name, fields)

    def _slot_off(self, idx: int, field: str) -> int:
        return self.sub_off + idx * SUB_SLOT_SIZE + SUB[field][0]

    def _send(self, c: _Conn, data: bytes) -> None:
        try:
            sent = c.sock.send(data, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
            if sent != len(data):
                raise BlockingIOError
        except OSError:
            pass  # a peer that does not read its socket is closed below by its caller or EOF

    def active_count(self) -> int:
        with self._lock:
            return sum(1 for c in self._conns.values() if c.state == ACTIVE)

    def wait_active(self, count: int, timeout_ms: float, stop: Callable[[], bool] = lambda: False,
                    zero: bool = False) -> bool:
        """Waits until `count` subscribers are ACTIVE together (or, with zero=True, until none
        is); returns False at the deadline."""
        deadline = time.monotonic() + timeout_ms / 1000.0
        with self._changed:
            while True:
                n = sum(1 for c in self._conns.values() if c.state == ACTIVE)
                if (n == 0) if zero else (n >= count):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or stop():
                    return False
                self._changed.wait(min(left, 0.05))

    def wait_idle(self, timeout_ms: float) -> bool:
        """Waits until no subscriber is ACTIVE; False at the deadline."""
        return self.wait_active(0, timeout_ms, zero=True)

    # ---- slot table (2.5, 5.7) --------------------------------------------------------------
    def _reserve(self, c: _Conn) -> Optional[int]:
        seg = self.seg
        for i in range(self.max_subs):
            if i in self._slot_conn or seg.load32(self._slot_off(i, "state")) != SUB_FREE:
                continue
            base = self.sub_off + i * SUB_SLOT_SIZE
            seg.store64r(base + 8, 0)
            seg.store32r(base + 28, 0)
            seg.put(base + 16, "Q", 0)
            seg.write(base + SUB_ACK_EVENT, bytes(64))
            gen = (seg.get(base + 4, "I") + 1) & 0xFFFFFFFF
            seg.put(base + 4, "I", gen)
            seg.put(base + 24, "I", c.pid & 0xFFFFFFFF)
            seg.store32(base, SUB_ATTACHING)  # release, last (SHM-SUB-02)
            c.slot, c.generation = i, gen
            self._slot_conn[i] = c
            return i
        return None

    def _free_slot(self, c: _Conn) -> None:
        if c.slot is not None:
            if self._cuda is not None:
                self._cuda.close_ack(c.slot)  # ACK-CUDA-02 / ACK-EVICT-04
            self.seg.store32(self._slot_off(c.slot, "state"), SUB_FREE)
            del self._slot_conn[c.slot]
            c.slot = None
            # SHM-HDR-06: wake our own ACK waiter, it no longer waits for this subscriber
            self.seg.add32(S["ack_futex"], 1)
            A.futex_wake(self.seg.base + S["ack_futex"], 0x7FFFFFFF)

    def _close_conn(self, c: _Conn, send: Optional[bytes], reason: Optional[Err],
                    evicted: bool = False) -> None:
        """Closes a connection (with `send` first), frees its slot, and reports the departure
        of an ACTIVE subscriber with `reason`. Caller holds _lock."""
        if c.state == CLOSED:
            return
        was_active = c.state == ACTIVE
        if evicted and c.slot is not None:
            self.seg.store32(self._slot_off(c.slot, "state"), SUB_EVICTED)
        if send:
            self._send(c, send)
        close_socket(c.sock)
        c.state = CLOSED
        idx = c.slot
        self._free_slot(c)
        self._conns.pop(c.fd, None)
        self._changed.notify_all()
        if was_active and reason is not None and not self._closed:
            self._emit("evicted" if evicted else "detached", index=idx, reason=reason.name)

    # ---- service thread (SM-PUB-06) ---------------------------------------------------------
    def _serve(self) -> None:
        poller = select.poll
        while not self._stop:
            with self._lock:
                ls = self._listener
                conns = list(self._conns.values())
            if ls is None:
                return
            p = poller()
            p.register(ls.fileno(), select.POLLIN)
            for c in conns:
                p.register(c.fd, select.POLLIN)
            try:
                events = p.poll(WAIT_SLICE_MS)
            except InterruptedError:
                continue
            with self._lock:
                if self._stop:
                    return
                for fd, _ev in events:
                    if fd == ls.fileno():
                        self._accept()
                        continue
                    conn = self._conns.get(fd)
                    if conn is not None and conn.state != CLOSED:
                        self._readable(conn)
                self._check_timeouts()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                s, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            s.setblocking(False)
            c = _Conn(s, time.monotonic())
            pending = sum(1 for x in self._conns.values() if x.state != ACTIVE)
            if pending >= self.max_subs:
                # SM-PUB-04/05: too many handshakes, refused at accept
                self._send(c, tlv.encode_error(Err.FULL, "too many connections in handshake"))
                s.close()
                continue
            self._conns[c.fd] = c

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for c in list(self._conns.values()):
            if c.state in (AWAIT_HELLO, AWAIT_ATTACH) and \
                    (now - c.accepted) * 1000 >= HANDSHAKE_TIMEOUT_MS:
                self._close_conn(c, tlv.encode_error(Err.TIMEOUT, "handshake timeout"),
                                 Err.TIMEOUT)

    def _readable(self, c: _Conn) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close_conn(c, None, Err.OK)  # row EOF: error OK
            return
        try:
            for mtype, payload in c.dec.feed(data):
                self._dispatch(c, mtype, payload)
                if c.state == CLOSED:
                    return
        except tlv.FramingError as e:
            self._close_conn(c, tlv.encode_error(e.code, str(e)) if e.send else None,
                             e.code if e.send else Err.PROTOCOL)

    def _dispatch(self, c: _Conn, mtype: int, payload: bytes) -> None:
        if mtype == tlv.PING:
            self._send(c, tlv.encode_ping(tlv.PONG, tlv.decode_nonce(payload)))
            return
        if mtype == tlv.PONG:
            return
        if mtype == tlv.DETACH:
            tlv.decode_detach(payload)
            self._close_conn(c, None, Err.OK)  # rows DETACH: error OK, whatever the reason
            return
        if mtype == tlv.ERROR:
            tlv.decode_error(payload)
            self._close_conn(c, None, Err.OK)  # rows ERROR: close, error OK
            return
        if mtype in (tlv.HELLO_RESP, tlv.ATTACH_RESP):
            self._close_conn(c, tlv.encode_error(Err.STATE, "wrong direction"), Err.STATE)
            return
        if c.state == AWAIT_HELLO and mtype == tlv.HELLO_REQ:
            self._hello(c, tlv.HelloReq.decode(payload))
        elif c.state == AWAIT_ATTACH and mtype == tlv.ATTACH_REQ:
            self._attach(c, tlv.AttachReq.decode(payload))
        else:
            self._close_conn(c, tlv.encode_error(Err.STATE, f"{tlv.NAMES[mtype]} in {c.state}"),
                             Err.STATE)

    def _reject(self, c: _Conn, status: Err) -> None:
        self._close_conn(c, tlv.encode(tlv.HELLO_RESP, tlv.HelloResp(status).encode()), status)

    def _hello(self, c: _Conn, req: tlv.HelloReq) -> None:
        # MSG-HELLO-05: magic, version, kind, uid, free slot; the first failure only
        if req.magic != HELLO_MAGIC:
            self._close_conn(c, tlv.encode_error(Err.PROTOCOL, "bad HELLO magic"), Err.PROTOCOL)
            return
        v = min(req.max_proto, self.proto)
        if req.min_proto == 0 or req.min_proto > req.max_proto or v < req.min_proto:
            self._reject(c, Err.VERSION_MISMATCH)
            return
        if not (req.kinds_mask >> (self.kind - 1)) & 1:
            self._reject(c, Err.UNSUPPORTED_KIND)
            return
        if c.uid != self._uid and not self.allow_other_uids:
            self._reject(c, Err.PERMISSION)
            return
        idx = self._reserve(c)
        if idx is None:
            self._reject(c, Err.FULL)
            return
        resp = tlv.HelloResp(Err.OK, v, self.kind, idx, c.generation, LIB_VERSION)
        if v >= 2 and self.ring is not None and req.caps & CAP_WANT_PACKETS:
            resp.caps = 1
            w = self.ring
            ks = self._ring_region.load64r(88) if self._ring_region else 0  # last_key_seq
            if ks:
                resp.initial_packet_seq = ks
                resp.initial_packet_pos = self._ring_region.load64r(96)  # type: ignore
            else:
                resp.initial_packet_seq, resp.initial_packet_pos = w.head_seq + 1, w.head_pos
        c.state = AWAIT_ATTACH
        self._send(c, tlv.encode(tlv.HELLO_RESP, resp.encode()))

    def _attach(self, c: _Conn, req: tlv.AttachReq) -> None:
        if req.subscriber_index != c.slot or req.generation != c.generation:
            self._close_conn(c, tlv.encode_error(Err.PROTOCOL, "ATTACH_REQ index/generation"),
                             Err.PROTOCOL)
            return
        base = self.sub_off + c.slot * SUB_SLOT_SIZE
        if self._cuda is not None:
            # MSG-ATTACH-03, then ACK-CUDA-02: open the subscriber's ack event once
            if not req.flags & ATTACH_FLAG_ACK_EVENT_WRITTEN or \
                    not self.seg.load32(base + 28) & SUB_FLAG_ACK_EVENT_PRESENT:
                self._close_conn(c, tlv.encode(tlv.ATTACH_RESP,
                                               tlv.AttachResp(Err.PROTOCOL).encode()), Err.PROTOCOL)
                return
            try:
                self._cuda.open_ack(c.slot, self.seg.read(base + SUB_ACK_EVENT, 64))
            except CuframesError as e:
                self._close_conn(c, tlv.encode(tlv.ATTACH_RESP, tlv.AttachResp(e.code).encode()),
                                 e.code)
                return
        # MSG-ARESP-01: under _lock, so no commit happens between start_seq and ACTIVE
        start = self.write_seq + 1
        self.seg.put(base + 16, "Q", start)
        self.seg.store32(base, SUB_ACTIVE)
        c.state = ACTIVE
        c.start_seq = start
        c.last_ack = 0
        self._send(c, tlv.encode(tlv.ATTACH_RESP, tlv.AttachResp(Err.OK, start).encode()))
        self._changed.notify_all()
        self._emit("subscriber", index=c.slot, pid=c.pid, start_seq=start)

    # ---- frames (5.2) ---------------------------------------------------------------------
    def _wait_acks(self, m: int) -> None:
        """ACK-REUSE-01: until every ACTIVE subscriber with start_seq <= m has ack_seq >= m and,
        for the CUDA kind, its ack event (recorded before that ack_seq) has completed, or is
        evicted (ACK-EVICT-01/02/05, ACK-CUDA-03: the one deadline covers both sides)."""
        seg = self.seg
        began = time.monotonic()
        device_done: set[tuple[int, int]] = set()  # (slot, id of the connection) seen complete
        try:
            while True:
                word = seg.load32(S["ack_futex"])
                seg.store32(S["ack_waiting"], 1)
                A.fence_seq_cst()
                on_device = False  # a host ACK is in, its device work still runs
                with self._lock:
                    pending = False
                    for c in list(self._conns.values()):
                        if c.state != ACTIVE or c.slot is None or c.start_seq > m:
                            continue
                        ack = seg.load64(self._slot_off(c.slot, "ack_seq"))
                        if ack > self.write_seq or ack < c.last_ack:
                            self._close_conn(c, tlv.encode_error(Err.PROTOCOL, f"ack_seq {ack}"),
                                             Err.PROTOCOL, evicted=True)
                            continue
                        c.last_ack = ack
                        waiting_on_device = False
                        if ack >= m:
                            who = (c.slot, id(c))
                            if self._cuda is None or who in device_done:
                                continue
                            if self._cuda.ack_done(c.slot):
                                device_done.add(who)
                                continue
                            waiting_on_device = True
                        if (time.monotonic() - began) * 1000 >= self.ack_timeout_ms:
                            text = ("ack event not complete" if waiting_on_device
                                    else "ACK timeout")
                            self._close_conn(c, tlv.encode_error(Err.EVICTED, text),
                                             Err.EVICTED, evicted=True)
                            continue
                        pending = True
                        on_device = on_device or waiting_on_device
                if not pending:
                    return
                left = self.ack_timeout_ms - (time.monotonic() - began) * 1000
                if on_device:
                    # Nothing wakes the futex when a device finishes: rescan at once (yielding
                    # the CPU) for the first DEVICE_SPIN_MS, which covers a GPU handoff between
                    # two processes, then every millisecond.
                    if (time.monotonic() - began) * 1000 < DEVICE_SPIN_MS:
                        time.sleep(0)
                        continue
                    slice_ms = 1
                else:
                    slice_ms = WAIT_SLICE_MS
                A.futex_wait(seg.base + S["ack_futex"], word,
                             max(1, int(min(slice_ms, left + 1))))
        finally:
            seg.store32(S["ack_waiting"], 0)

    def wait_released(self, seq: int) -> None:
        """Blocks until every subscriber counted for frame `seq` has released it, or was evicted
        at the ACK timeout (ACK-EVICT-01): what publish() waits for before it reuses seq's slot.
        For the CUDA kind a release is the host-side ACK and the completion of the ack event
        recorded before it, i.e. of the subscriber's device reads (ACK-CUDA-03)."""
        if not 1 <= seq <= self.write_seq:
            raise CuframesError(Err.INVALID_ARGUMENT, f"seq {seq} not published yet")
        self._wait_acks(seq)

    def publish(self, data: Union[bytes, bytearray, memoryview, "np.ndarray"], *,
                timestamp_ns: int = 0, user_data: int = 0, flags: int = 0) -> int:
        """Publishes one frame (a copy of `data`, at most slot_bytes) and returns its seq. Blocks
        while a slot's previous frame is unreleased (back-pressure), at most the ACK timeout."""
        device = self._cuda is not None and hasattr(data, "__cuda_array_interface__")
        if device:
            nbytes = int(getattr(data, "nbytes"))  # a device array: no host copy
            buf = memoryview(b"")
        else:
            buf = memoryview(data)  # type: ignore[arg-type]
            if not buf.c_contiguous:
                import numpy as np  # imported lazily: the adapters start faster without it

                buf = memoryview(np.ascontiguousarray(data))  # type: ignore[arg-type]
            buf = buf.cast("B")
            nbytes = len(buf)
        n, s = self._begin(nbytes)
        if self._cuda is not None:
            # the copy, then the ready event (ACK-COMMIT-01)
            self._cuda.write(s, data if device else buf)
        else:
            doff = self.data_offset + s * self.data_stride
            self.seg.write(doff, bytes(buf))  # ACK-HOST-01: after the ACK wait, before meta.seq
        self._commit(n, s, nbytes, timestamp_ns, user_data, flags)
        return n

    @contextlib.contextmanager
    def frame(self, nbytes: Optional[int] = None, *, timestamp_ns: int = 0, user_data: int = 0,
              flags: int = 0) -> Iterator[Any]:
        """Writes the next frame in place, without a copy, and publishes it when the block ends:

            with pub.frame() as buf:
                decode_into(buf)          # HOST: a NumPy array; CUDA_IPC: a CuPy array

        Yields a uint8 array of `nbytes` (default slot_bytes) over the slot's buffer, after the
        same back-pressure wait as publish(). HOST: a view of the segment. CUDA_IPC: a view of
        the slot's device buffer, to be written on CuPy's current stream (every counted
        subscriber's ack event has completed by then, ACK-REUSE-02, ACK-CUDA-03); the slot's
        ready event is recorded on that stream when the block ends (ACK-COMMIT-01). The array
        must not be used after the block. An exception inside the block publishes nothing (the
        next frame writes the same slot again)."""
        size = self.slot_bytes if nbytes is None else nbytes
        n, s = self._begin(size)
        if self._cuda is not None:
            stream = self._cuda.begin_in_place()
            yield self._cuda.slot_array(s, size)
            self._cuda.end_in_place(s, stream)
        else:
            import numpy as np

            assert self.seg.mm is not None
            view = np.frombuffer(self.seg.mm, dtype=np.uint8, count=size,
                                 offset=self.data_offset + s * self.data_stride)
            try:
                yield view
            finally:
                del view  # the mapping must not stay exported past the block
        self._commit(n, s, size, timestamp_ns, user_data, flags)

    def _begin(self, nbytes: int) -> tuple[int, int]:
        """The frame about to be written: its seq n and slot s. Waits (bounded) for the ACKs of
        the frame now in slot s (ACK-REUSE-01), device side included (ACK-CUDA-03)."""
        if nbytes > self.slot_bytes or nbytes < 0:
            raise CuframesError(Err.INVALID_ARGUMENT, "frame larger than slot_bytes")
        if self._closed:
            raise CuframesError(Err.STATE, "publisher closed")
        n = self.write_seq + 1
        s = (n - 1) % self.slot_count
        if n > self.slot_count:
            self._wait_acks(n - self.slot_count)
        return n, s

    def _commit(self, n: int, s: int, nbytes: int, timestamp_ns: int, user_data: int,
                flags: int) -> None:
        """FrameMeta, then meta.seq and write_seq (release), then the wake (ACK-COMMIT-01)."""
        seg = self.seg
        mbase = HEADER_SIZE + s * SLOT_DESC_SIZE
        nv12 = bool(self.width and self.height)
        for name, val in (("timestamp_ns", timestamp_ns), ("width", self.width if nv12 else 0),
                          ("height", self.height if nv12 else 0),
                          ("pixel_format", PIX_NV12 if nv12 else PIX_OPAQUE),
                          ("pitch", self.width if nv12 else 0), ("payload_bytes", nbytes),
                          ("flags", flags), ("user_data", user_data)):
            seg.put(mbase + META[name][0], META[name][1], val)
        with self._lock:
            seg.store64(mbase, n)  # meta.seq, release, last (SHM-FMETA-01)
            seg.store64(S["write_seq"], n)
            self.write_seq = n
        seg.add32(S["frame_futex"], 1)
        if seg.load32(S["frame_waiters"]) != 0:
            A.futex_wake(seg.base + S["frame_futex"], 0x7FFFFFFF)

    # ---- packets (10.4, 10.5) ---------------------------------------------------------------
    def _notify_packets(self) -> None:
        assert self._ring_region is not None
        self._ring_region.add32(104, 1)
        if self.seg.load32(S["packet_waiters"]) != 0:
            A.futex_wake(self._ring_region.base + 104, 0x7FFFFFFF)

    def set_codec_params(self, codec: int, data: bytes) -> int:
        """Publishes codec parameters; returns their generation (OVERSIZED, NO_PACKET_RING,
        INVALID_ARGUMENT for another codec)."""
        if self.ring is None:
            raise CuframesError(Err.NO_PACKET_RING)
        with self._lock:
            return self.ring.set_params(codec, bytes(data))

    def publish_packet(self, data: bytes, *, keyframe: bool = False, pts: int = 0) -> int:
        """Appends one packet; returns its seq (OVERSIZED, NO_PACKET_RING)."""
        if self.ring is None:
            raise CuframesError(Err.NO_PACKET_RING)
        with self._lock:
            return self.ring.publish(bytes(data), keyframe, pts, self._notify_packets)

    # ---- shut-down (1.4) ------------------------------------------------------------------
    def close(self) -> None:
        """RES-CLOSE-01: socket file, DETACH everyone, CLOSED + wake, ring CLOSED, unlink ring
        and segment, release the lock last."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop = True
            try:
                os.unlink(self._sock_path)
            except OSError:
                pass
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            for c in list(self._conns.values()):
                self._close_conn(c, tlv.encode_detach(Err.OK), None)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        seg = self.seg
        seg.store32(S["state"], ST_CLOSED)
        seg.add32(S["frame_futex"], 1)
        A.futex_wake(seg.base + S["frame_futex"], 0x7FFFFFFF)
        if self.ring is not None:
            self.ring.close()
        if self._cuda is not None:
            self._cuda.free()  # RES-CUDA-03: every connection is closed by now
        errors: list[CuframesError] = []
        for p in (self._ring_path, self._seg_path):
            if p == self._ring_path and self.ring is None:
                continue
            try:
                unlink_checked(p)
            except CuframesError as e:
                errors.append(e)
        if self._ring_region is not None:
            self._ring_region.close()
        seg.close()
        os.close(self._fd)  # releases the liveness lock last
        if errors:
            raise errors[0]

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
