"""cflib: the C API of libcuframes (reference/include/cuframes/cuframes.h) through ctypes, the
part the NVDEC pipeline uses: a publisher (create, acquire, commit, wait for subscribers) and a
subscriber (connect, next_frame, release).

The structs mirror cuframes.h field for field with natural alignment, as a C compiler lays them
out; video/nvdec/tests/test_nvdec_cpu.py compiles the header and compares every offset and
size, so a change of the header that this file misses fails a test instead of corrupting
memory. Every call that fails raises CfError with the status's spec name and the call.
"""
from __future__ import annotations

import ctypes
import os
from ctypes import (POINTER, Structure, c_char_p, c_int, c_int32, c_int64, c_uint32, c_uint64,
                    c_void_p)
from pathlib import Path
from typing import Any, Optional

KIND_HOST = 1
KIND_CUDA_IPC = 2
PIXEL_NV12 = 1
FRAME_END_OF_STREAM = 1
OK, AGAIN, TIMEOUT, NOT_FOUND, PEER_CLOSED = 0, 1, 2, 7, 8


def kind_bit(kind: int) -> int:
    return 1 << (kind - 1)


class PubOptions(Structure):
    _fields_ = [("struct_size", c_uint32), ("memory_kind", c_uint32), ("key", c_char_p),
                ("width", c_uint32), ("height", c_uint32), ("pixel_format", c_uint32),
                ("pitch", c_uint32), ("slot_bytes", c_uint64), ("slot_count", c_uint32),
                ("max_subscribers", c_uint32), ("ack_timeout_ms", c_uint32),
                ("max_proto_version", c_uint32), ("packet_capacity", c_uint64),
                ("max_packet_bytes", c_uint32), ("codec", c_uint32), ("file_mode", c_uint32),
                ("allow_other_uids", c_uint32), ("cuda_device", c_int32),
                ("reserved0", c_uint32), ("on_event", c_void_p), ("on_event_user", c_void_p)]


class SubOptions(Structure):
    _fields_ = [("struct_size", c_uint32), ("kinds_mask", c_uint32), ("key", c_char_p),
                ("max_proto_version", c_uint32), ("want_packets", c_uint32),
                ("cuda_device", c_int32), ("connect_timeout_ms", c_uint32)]


class Slot(Structure):
    _fields_ = [("seq", c_uint64), ("data", c_void_p), ("capacity", c_uint64),
                ("cuda_stream", c_void_p), ("slot_index", c_uint32), ("memory_kind", c_uint32)]


class FrameInfo(Structure):
    _fields_ = [("timestamp_ns", c_int64), ("width", c_uint32), ("height", c_uint32),
                ("pixel_format", c_uint32), ("pitch", c_uint32), ("payload_bytes", c_uint64),
                ("flags", c_uint32), ("reserved0", c_uint32), ("user_data", c_uint64)]


class Frame(Structure):
    _fields_ = [("seq", c_uint64), ("timestamp_ns", c_int64), ("width", c_uint32),
                ("height", c_uint32), ("pixel_format", c_uint32), ("pitch", c_uint32),
                ("payload_bytes", c_uint64), ("flags", c_uint32), ("memory_kind", c_uint32),
                ("user_data", c_uint64), ("data", c_void_p), ("cuda_stream", c_void_p)]


class SubInfo(Structure):
    _fields_ = [("proto_version", c_uint32), ("memory_kind", c_uint32),
                ("subscriber_index", c_uint32), ("generation", c_uint32),
                ("start_seq", c_uint64), ("publisher_lib_version", c_uint32),
                ("packet_ring", c_uint32), ("width", c_uint32), ("height", c_uint32),
                ("pixel_format", c_uint32), ("pitch", c_uint32), ("slot_bytes", c_uint64),
                ("slot_count", c_uint32), ("reserved0", c_uint32)]


STRUCTS = {"cuframes_pub_options": PubOptions, "cuframes_sub_options": SubOptions,
           "cuframes_slot": Slot, "cuframes_frame_info": FrameInfo, "cuframes_frame": Frame,
           "cuframes_sub_info": SubInfo}


class CfError(RuntimeError):
    """A libcuframes call failed: `status` is its cuframes_status, `name` the spec name."""

    def __init__(self, status: int, name: str, call: str) -> None:
        super().__init__(f"{call}: {name} ({status})")
        self.status, self.name, self.call = status, name, call


def find_library(build_dir: Path) -> Path:
    """libcuframes.so under `build_dir`/reference (the shared library the build makes);
    FileNotFoundError naming what is missing."""
    for name in ("libcuframes.so",):
        p = Path(build_dir) / "reference" / name
        if p.exists():
            return p
    raise FileNotFoundError(f"{Path(build_dir) / 'reference' / 'libcuframes.so'} is not built")


class Lib:
    """The loaded library with typed functions."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        d = ctypes.CDLL(os.fspath(path))
        self._d = d
        sig = {
            "cuframes_pub_options_init": (None, [POINTER(PubOptions)]),
            "cuframes_sub_options_init": (None, [POINTER(SubOptions)]),
            "cuframes_status_name": (c_char_p, [c_int]),
            "cuframes_cuda_kind_built": (c_int, []),
            "cuframes_pub_create": (c_int, [POINTER(PubOptions), POINTER(c_void_p)]),
            "cuframes_pub_destroy": (None, [c_void_p]),
            "cuframes_pub_acquire": (c_int, [c_void_p, c_int32, POINTER(Slot)]),
            "cuframes_pub_commit": (c_int, [c_void_p, POINTER(FrameInfo)]),
            "cuframes_pub_subscriber_count": (c_uint32, [c_void_p]),
            "cuframes_pub_wait_subscribers": (c_int, [c_void_p, c_uint32, c_int32]),
            "cuframes_sub_connect": (c_int, [POINTER(SubOptions), POINTER(c_void_p)]),
            "cuframes_sub_close": (None, [c_void_p]),
            "cuframes_sub_get_info": (c_int, [c_void_p, POINTER(SubInfo)]),
            "cuframes_sub_next_frame": (c_int, [c_void_p, c_int32, POINTER(Frame)]),
            "cuframes_sub_release": (c_int, [c_void_p, POINTER(Frame)]),
        }
        for name, (res, args) in sig.items():
            fn = getattr(d, name)
            fn.restype, fn.argtypes = res, args
            setattr(self, name[len("cuframes_"):], fn)

    def __getattr__(self, name: str) -> Any:
        # only reached for a function not in the table above (those are instance attributes)
        raise AttributeError(f"libcuframes binding has no {name}")

    def name_of(self, status: int) -> str:
        """The spec name of a status ("PEER_CLOSED", ...)."""
        return self._d.cuframes_status_name(status).decode()

    def check(self, status: int, call: str) -> None:
        if status != OK:
            raise CfError(status, self.name_of(status), call)

    def cuda_built(self) -> bool:
        return bool(self._d.cuframes_cuda_kind_built())


class Publisher:
    """A libcuframes publisher of NV12 frames of one geometry."""

    def __init__(self, lib: Lib, key: str, *, kind: int, width: int, height: int,
                 slots: int, max_subscribers: int = 8, ack_timeout_ms: int = 10000) -> None:
        self.lib = lib
        o = PubOptions()
        lib.pub_options_init(ctypes.byref(o))
        self._key = key.encode()
        o.key = self._key
        o.memory_kind = kind
        o.width, o.height, o.pixel_format, o.pitch = width, height, PIXEL_NV12, width
        o.slot_bytes = width * height * 3 // 2
        o.slot_count = slots
        o.max_subscribers = max_subscribers
        o.ack_timeout_ms = ack_timeout_ms
        h = c_void_p()
        lib.check(lib.pub_create(ctypes.byref(o), ctypes.byref(h)), "cuframes_pub_create")
        self.h: Optional[c_void_p] = h
        self.width, self.height, self.bytes = width, height, int(o.slot_bytes)

    def wait_subscribers(self, count: int, timeout_ms: int) -> None:
        self.lib.check(self.lib.pub_wait_subscribers(self.h, count, timeout_ms),
                       "cuframes_pub_wait_subscribers")

    def subscriber_count(self) -> int:
        return int(self.lib.pub_subscriber_count(self.h))

    def acquire(self, timeout_ms: int) -> Slot:
        s = Slot()
        self.lib.check(self.lib.pub_acquire(self.h, timeout_ms, ctypes.byref(s)),
                       "cuframes_pub_acquire")
        return s

    def commit(self, payload_bytes: int, timestamp_ns: int, user_data: int,
               flags: int = 0) -> None:
        i = FrameInfo()
        i.timestamp_ns = timestamp_ns
        i.width, i.height, i.pixel_format, i.pitch = self.width, self.height, PIXEL_NV12, \
            self.width
        i.payload_bytes, i.flags, i.user_data = payload_bytes, flags, user_data
        self.lib.check(self.lib.pub_commit(self.h, ctypes.byref(i)), "cuframes_pub_commit")

    def destroy(self) -> None:
        if self.h is not None:
            self.lib.pub_destroy(self.h)
            self.h = None


class Subscriber:
    """A libcuframes subscriber."""

    def __init__(self, lib: Lib, key: str, *, kinds_mask: int, connect_timeout_ms: int) -> None:
        self.lib = lib
        o = SubOptions()
        lib.sub_options_init(ctypes.byref(o))
        self._key = key.encode()
        o.key = self._key
        o.kinds_mask = kinds_mask
        o.connect_timeout_ms = connect_timeout_ms
        h = c_void_p()
        lib.check(lib.sub_connect(ctypes.byref(o), ctypes.byref(h)), "cuframes_sub_connect")
        self.h: Optional[c_void_p] = h
        self.info = SubInfo()
        lib.check(lib.sub_get_info(h, ctypes.byref(self.info)), "cuframes_sub_get_info")

    def next_frame(self, timeout_ms: int) -> Frame:
        f = Frame()
        self.lib.check(self.lib.sub_next_frame(self.h, timeout_ms, ctypes.byref(f)),
                       "cuframes_sub_next_frame")
        return f

    def release(self, f: Frame) -> None:
        self.lib.check(self.lib.sub_release(self.h, ctypes.byref(f)), "cuframes_sub_release")

    def close(self) -> None:
        if self.h is not None:
            self.lib.sub_close(self.h)
            self.h = None
