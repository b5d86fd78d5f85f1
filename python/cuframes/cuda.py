"""CUDA_IPC memory kind through CuPy's runtime bindings (PROTOCOL.md 1.6, 2.4, 5.2-5.5, 7).

CuPy is imported only here and only when the CUDA kind is asked for, so HOST users need
neither CuPy nor a GPU. Without CuPy, without a driver or without a device, `require_device()`
raises CuframesError(UNSUPPORTED) (the adapters turn that into exit 77, ADP-KIND-01).

Subscriber side (SubscriberCuda): at attach, before ATTACH_REQ, every slot's `mem_handle` is
opened once (cudaIpcOpenMemHandle, cached by its 64 handle bytes, RES-CUDA-01) and every
`ready_event` once (cudaIpcOpenEventHandle); one ack event is created with
cudaEventInterprocess | cudaEventDisableTiming, its handle written into the subscriber slot's
`ack_event` and ACK_EVENT_PRESENT set (MSG-ATTACH-01). A frame makes the subscriber's one
stream wait for the slot's ready event (ACK-READ-02) and is handed out as a CuPy array over the
imported buffer (so `__cuda_array_interface__` and DLPack, hence `torch.from_dlpack`, work).
Releasing records the ack event on that same stream, in release order (ACK-CUDA-01), before
`ack_seq` is stored (ACK-REL-01). Closing synchronises the stream, then closes each mapping and
event exactly once (RES-CUDA-02).

Publisher side (PublisherCuda): one cudaMalloc per slot exported with cudaIpcGetMemHandle and
one interprocess ready event per slot, written before READY (SHM-SLOT-01); each subscriber's
ack event is opened at ATTACH_REQ and destroyed when its slot is freed (ACK-CUDA-02); before a
slot is rewritten the publisher waits, from the host and within the ACK timeout, until every
counted subscriber's ack event has completed (`ack_done`, ACK-REUSE-02, ACK-CUDA-03: a stream
wait could not be bounded, so one slow GPU consumer would stall every other); after the write the slot's ready event is recorded before `meta.seq` is stored
(ACK-COMMIT-01). Allocations are freed only at shut-down, after every connection is closed
(RES-CUDA-03).
"""
from __future__ import annotations

import threading
from typing import Any, Optional

from .errors import CuframesError, Err

EVENT_DISABLE_TIMING = 0x2
EVENT_INTERPROCESS = 0x4
IPC_LAZY_PEER_ACCESS = 0x1
_MEMCPY_H2D = 1
_MEMCPY_D2H = 2


def _cupy() -> Any:
    try:
        import cupy  # noqa: F401
        from cupy.cuda import runtime  # noqa: F401
    except ImportError as e:
        import sys

        if "site" in sys.modules:
            raise CuframesError(Err.UNSUPPORTED, f"CuPy is not importable: {e}") from None
        # The adapters start with `python3 -S` (python/tools/adapter.py) to keep start-up short;
        # CuPy lives in site-packages, so the CUDA kind loads `site` when it is first needed.
        import site

        site.main()
        return _cupy()
    except Exception as e:  # a CuPy built for another CUDA
        raise CuframesError(Err.UNSUPPORTED, f"CuPy is not importable: {e}") from None
    return cupy


def require_device() -> Any:
    """CuPy with at least one usable device, else CuframesError(UNSUPPORTED)."""
    cupy = _cupy()
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            raise RuntimeError("no CUDA device")
        cupy.cuda.Device(0).use()
        cupy.cuda.runtime.free(cupy.cuda.runtime.malloc(1))  # the device initialises
    except CuframesError:
        raise
    except Exception as e:
        raise CuframesError(Err.UNSUPPORTED, f"no usable CUDA device: {e}") from None
    return cupy


def _cuda_call(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:
        raise CuframesError(Err.CUDA, f"{getattr(fn, '__name__', fn)}: {e!r}") from None


class SubscriberCuda:
    """The CUDA side of one subscriber attachment."""

    def __init__(self, sub: Any) -> None:
        from .layout import (HEADER_SIZE, SLOT_DESC_SIZE, SLOT_MEM_HANDLE, SLOT_READY_EVENT,
                             SUB_ACK_EVENT, SUB_FLAG_ACK_EVENT_PRESENT)

        self.cupy = require_device()
        rt = self.cupy.cuda.runtime
        self.rt = rt
        seg = sub.seg
        self.slot_bytes = sub.slot_bytes
        self.stream = self.cupy.cuda.Stream(non_blocking=True)
        self._mem: dict[bytes, int] = {}       # handle bytes -> device pointer (RES-CUDA-01)
        self.slot_ptr: list[int] = []
        self.ready: list[int] = []
        self.ack_event: Optional[int] = None
        try:
            for s in range(sub.slot_count):
                base = HEADER_SIZE + s * SLOT_DESC_SIZE
                h = seg.read(base + SLOT_MEM_HANDLE, 64)
                if h not in self._mem:
                    self._mem[h] = _cuda_call(rt.ipcOpenMemHandle, h, IPC_LAZY_PEER_ACCESS)
                self.slot_ptr.append(self._mem[h])
                self.ready.append(_cuda_call(rt.ipcOpenEventHandle,
                                             seg.read(base + SLOT_READY_EVENT, 64)))
            self.ack_event = _cuda_call(rt.eventCreateWithFlags,
                                        EVENT_INTERPROCESS | EVENT_DISABLE_TIMING)
            handle = bytes(_cuda_call(rt.ipcGetEventHandle, self.ack_event))
            seg.write(sub._slot_base_for_attach() + SUB_ACK_EVENT, handle)
            # flags is a subscriber-written field; ATTACH_REQ follows on the socket
            seg.store32(sub._slot_base_for_attach() + 28, SUB_FLAG_ACK_EVENT_PRESENT)
        except BaseException:
            self.close()
            raise

    def frame(self, sub: Any, n: int, s: int, meta: dict[str, int]) -> Any:
        from .subscriber import Frame

        # ACK-READ-02: the reading stream waits for the publisher's write of this frame
        _cuda_call(self.rt.streamWaitEvent, self.stream.ptr, self.ready[s], 0)
        f = Frame(sub, n, meta, None, 0, cuda=self)
        f._slot = s  # type: ignore[attr-defined]
        f._user_streams = []  # type: ignore[attr-defined]
        return f

    def array(self, f: Any) -> Any:
        cp = self.cupy
        # The array is read on CuPy's current stream (and, through DLPack, on the consumer's
        # stream ordered after it), not on this attachment's stream: that stream must wait for
        # the frame's ready event too (ACK-READ-02), and the release must wait for it (below).
        # Waiting now is safe: the publisher cannot record this slot's ready event again before
        # this frame's ACK.
        user = cp.cuda.get_current_stream()
        if user.ptr != self.stream.ptr:
            _cuda_call(self.rt.streamWaitEvent, user.ptr, self.ready[f._slot], 0)
            f._user_streams.append(user)
        mem = cp.cuda.UnownedMemory(self.slot_ptr[f._slot], self.slot_bytes, self)
        return cp.ndarray((f.payload_bytes,), dtype=cp.uint8,
                          memptr=cp.cuda.MemoryPointer(mem, 0))

    def to_host(self, f: Any) -> bytes:
        """Copies a frame's payload to the host on the reading stream (for checks)."""
        import numpy as np

        out = np.empty(f.payload_bytes, dtype=np.uint8)
        if f.payload_bytes:
            _cuda_call(self.rt.memcpyAsync, out.ctypes.data, self.slot_ptr[f._slot],
                       f.payload_bytes, _MEMCPY_D2H, self.stream.ptr)
            self.stream.synchronize()
        return out.tobytes()

    def release(self, f: Any) -> None:
        # ACK-REL-01 / ACK-CUDA-01: record on the one reading stream, before ack_seq; reads the
        # application queued on its current stream through `array` are ordered before it.
        assert self.ack_event is not None
        for user in getattr(f, "_user_streams", ()):
            done = self.cupy.cuda.Event(disable_timing=True)
            done.record(user)
            self.stream.wait_event(done)
        _cuda_call(self.rt.eventRecord, self.ack_event, self.stream.ptr)

    def close(self) -> None:
        """RES-CUDA-02: after the stream's last use, close each mapping and event once."""
        rt = self.rt
        try:
            self.stream.synchronize()
        except Exception:
            pass
        for ptr in self._mem.values():
            try:
                rt.ipcCloseMemHandle(ptr)
            except Exception:
                pass
        self._mem.clear()
        for ev in self.ready:
            try:
                rt.eventDestroy(ev)
            except Exception:
                pass
        self.ready = []
        if self.ack_event is not None:
            try:
                rt.eventDestroy(self.ack_event)
            except Exception:
                pass
            self.ack_event = None


class PublisherCuda:
    """The CUDA side of a CUDA_IPC publisher."""

    def __init__(self, seg: Any, slot_count: int, slot_bytes: int) -> None:
        from .layout import HEADER_SIZE, SLOT_DESC_SIZE, SLOT_MEM_HANDLE, SLOT_READY_EVENT

        self.cupy = require_device()
        rt = self.rt = self.cupy.cuda.runtime
        self.stream = self.cupy.cuda.Stream(non_blocking=True)
        self.slot_bytes = slot_bytes
        self.ptrs: list[int] = []
        self.ready: list[int] = []
        self.acks: dict[int, int] = {}  # subscriber index -> opened ack event
        # The connection threads open and destroy ack events while the publishing thread makes
        # its stream wait on them: an event destroyed between the two would be a dangling handle.
        self._acks_lock = threading.Lock()
        try:
            for s in range(slot_count):
                ptr = _cuda_call(rt.malloc, max(1, slot_bytes))
                self.ptrs.append(ptr)
                ev = _cuda_call(rt.eventCreateWithFlags, EVENT_INTERPROCESS | EVENT_DISABLE_TIMING)
                self.ready.append(ev)
                base = HEADER_SIZE + s * SLOT_DESC_SIZE
                seg.write(base + SLOT_MEM_HANDLE, bytes(_cuda_call(rt.ipcGetMemHandle, ptr)))
                seg.write(base + SLOT_READY_EVENT, bytes(_cuda_call(rt.ipcGetEventHandle, ev)))
        except BaseException:
            self.free()
            raise

    def open_ack(self, index: int, handle: bytes) -> None:
        ev = _cuda_call(self.rt.ipcOpenEventHandle, handle)
        self.close_ack(index)  # a previous occupant's event, should one be left
        with self._acks_lock:
            self.acks[index] = ev

    def close_ack(self, index: int) -> None:
        with self._acks_lock:
            ev = self.acks.pop(index, None)
        if ev is not None:
            try:
                self.rt.eventDestroy(ev)
            except Exception:
                pass

    def ack_done(self, index: int) -> bool:
        """ACK-CUDA-03: whether subscriber `index`'s latest ack event recording has completed
        (cudaEventQuery; True when no event is open). A query that fails (the subscriber died
        mid-recording, say) counts as not complete: that subscriber is freed when its connection
        ends or evicted at the ACK deadline, and publishing goes on for the others."""
        with self._acks_lock:  # not destroyed by a connection thread while queried
            ev = self.acks.get(index)
            if ev is None:
                return True
            try:
                status = self.rt.eventQuery(ev)
            except self.cupy.cuda.runtime.CUDARuntimeError:
                return False
        return status == 0

    def begin_in_place(self) -> Any:
        """An in-place write (Publisher.frame) on CuPy's current stream, which needs no wait:
        every counted ack event has completed (Publisher._wait_acks). Returns the stream."""
        return self.cupy.cuda.get_current_stream()

    def slot_array(self, s: int, nbytes: int) -> Any:
        cp = self.cupy
        mem = cp.cuda.UnownedMemory(self.ptrs[s], self.slot_bytes, self)
        return cp.ndarray((nbytes,), dtype=cp.uint8, memptr=cp.cuda.MemoryPointer(mem, 0))

    def end_in_place(self, s: int, stream: Any) -> None:
        """ACK-COMMIT-01: the ready event after the caller's writes on `stream`."""
        _cuda_call(self.rt.eventRecord, self.ready[s], stream.ptr)

    def write(self, s: int, data: Any) -> None:
        """The copy (after Publisher._wait_acks saw every counted ack event complete,
        ACK-REUSE-02), then ACK-COMMIT-01's ready-event record."""
        rt = self.rt
        cp = self.cupy
        if hasattr(data, "__cuda_array_interface__"):
            src = cp.ascontiguousarray(cp.asarray(data)).view(cp.uint8).ravel()
            n = src.nbytes
            # The caller produced `data` on CuPy's current stream (an upload, a kernel), and the
            # writing stream is non-blocking, so nothing orders the two: without this wait the
            # copy below can read the source before its producer has finished writing it.
            produced = cp.cuda.Event(disable_timing=True)
            produced.record(cp.cuda.get_current_stream())
            self.stream.wait_event(produced)
            _cuda_call(rt.memcpyAsync, self.ptrs[s], src.data.ptr, n, 3, self.stream.ptr)
            # And the other way: CuPy's pool may hand the source's memory to the caller's next
            # allocation on its stream once `data` is dropped, so that stream waits for the copy.
            copied = cp.cuda.Event(disable_timing=True)
            copied.record(self.stream)
            cp.cuda.get_current_stream().wait_event(copied)
        else:
            import numpy as np

            host = np.frombuffer(data, dtype=np.uint8)
            _cuda_call(rt.memcpyAsync, self.ptrs[s], host.ctypes.data, host.nbytes, _MEMCPY_H2D,
                       self.stream.ptr)
            self.stream.synchronize()  # the host buffer may be reused by the caller
        _cuda_call(rt.eventRecord, self.ready[s], self.stream.ptr)

    def free(self) -> None:
        """RES-CUDA-03: called only after every subscriber connection is closed."""
        rt = self.rt
        try:
            self.stream.synchronize()
        except Exception:
            pass
        for idx in list(self.acks):
            self.close_ack(idx)
        for ev in self.ready:
            try:
                rt.eventDestroy(ev)
            except Exception:
                pass
        for ptr in self.ptrs:
            try:
                rt.free(ptr)
            except Exception:
                pass
        self.ready, self.ptrs = [], []
