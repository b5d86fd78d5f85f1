"""Byte layouts of PROTOCOL.md section 2 and 10 (shared memory) as offsets, plus typed access
to a mapped region. Offsets are written out here from the spec's text; tests/test_layout.py holds
them against the twin spec/cuframes.json. Atomic fields go through cuframes._atomics only."""
from __future__ import annotations

import mmap
import struct
from typing import Optional

from . import _atomics as A

SEGMENT_MAGIC = 0x52465543
RING_MAGIC = 0x50465543
HELLO_MAGIC = 0x52465543
LAYOUT_VERSION = 1
RING_LAYOUT_VERSION = 1
HEADER_SIZE = 256
FRAME_META_SIZE = 64
SLOT_DESC_SIZE = 192
SUB_SLOT_SIZE = 128
RING_HEADER_SIZE = 256
CODEC_PARAMS_OFFSET = 256
CODEC_PARAMS_MAX = 4096
RING_DATA_OFFSET = 4416
RECORD_HEADER_SIZE = 32
HOST_ALIGN = 4096
MIN_SLOTS, MAX_SLOTS = 2, 256
MAX_SUBSCRIBERS = 64
HANDSHAKE_TIMEOUT_MS = 2000
DEFAULT_ACK_TIMEOUT_MS = 2000
SEQLOCK_SPIN_LIMIT_MS = 100
PEER_DEATH_DETECT_MS = 250
PONG_DEADLINE_MS = 1000

# memory kinds, states, flags
HOST, CUDA_IPC, CUDA_VMM_FD = 1, 2, 3
ST_INIT, ST_READY, ST_CLOSED = 0, 1, 2
SUB_FREE, SUB_ATTACHING, SUB_ACTIVE, SUB_EVICTED = 0, 1, 2, 3
SEG_FLAG_PACKET_RING = 1
FRAME_FLAG_EOS = 1
SUB_FLAG_ACK_EVENT_PRESENT = 1
CAP_WANT_PACKETS = 1
CAP_WAKE_FORWARD = 2  # HELLO_REQ caps bit 1, version 3 (SHM-WAKE-01)
WAKE_FORWARD_COUNT = 2  # a forwarder wakes at least two more (SHM-WAKE-01)
CAP_PACKET_RING_PRESENT = 1
ATTACH_FLAG_ACK_EVENT_WRITTEN = 1
PKT_KEYFRAME, PKT_PAD = 1, 2
PIX_OPAQUE, PIX_NV12 = 0, 1

# SegmentHeader (2.2): name -> (offset, struct format)
SEG = {
    "layout_version": (0, "I"), "magic": (4, "I"), "state": (8, "I"), "header_size": (12, "I"),
    "proto_version": (16, "H"), "memory_kind": (18, "H"), "slot_count": (20, "I"),
    "max_subscribers": (24, "I"), "flags": (28, "I"), "publisher_pid": (32, "Q"),
    "publisher_start_time": (40, "Q"), "segment_size": (48, "Q"), "lib_version": (56, "I"),
    "width": (64, "I"), "height": (68, "I"), "pixel_format": (72, "I"), "pitch": (76, "I"),
    "slot_bytes": (80, "Q"), "slot_desc_offset": (88, "Q"), "sub_slot_offset": (96, "Q"),
    "data_offset": (104, "Q"), "data_stride": (112, "Q"), "write_seq": (128, "Q"),
    "frame_futex": (136, "I"), "ack_waiting": (140, "I"), "ack_futex": (192, "I"),
    "frame_waiters": (196, "I"), "packet_waiters": (200, "I"),
}
# FrameMeta (2.3), at offset 0 of each SlotDescriptor (2.4)
META = {
    "seq": (0, "Q"), "timestamp_ns": (8, "q"), "width": (16, "I"), "height": (20, "I"),
    "pixel_format": (24, "I"), "pitch": (28, "I"), "payload_bytes": (32, "Q"), "flags": (40, "I"),
    "user_data": (48, "Q"),
}
SLOT_MEM_HANDLE = 64
SLOT_READY_EVENT = 128
# SubscriberSlot (2.5)
SUB = {
    "state": (0, "I"), "generation": (4, "I"), "ack_seq": (8, "Q"), "start_seq": (16, "Q"),
    "pid": (24, "I"), "flags": (28, "I"),
}
SUB_ACK_EVENT = 64
# PacketRingHeader (10.2)
RING = {
    "layout_version": (0, "I"), "magic": (4, "I"), "state": (8, "I"), "header_size": (12, "I"),
    "capacity": (16, "Q"), "data_offset": (24, "Q"), "max_packet_bytes": (32, "I"),
    "codec": (36, "I"), "segment_size": (40, "Q"), "head_seq": (64, "Q"), "head_pos": (72, "Q"),
    "tail_pos": (80, "Q"), "last_key_seq": (88, "Q"), "last_key_pos": (96, "Q"),
    "packet_futex": (104, "I"),
}
# CodecParams (10.5), at ring offset 256
PARAMS = {"lock": (0, "Q"), "generation": (8, "I"), "size": (12, "I"), "codec": (16, "I")}
PARAMS_DATA = 64
# PacketRecordHeader (10.3)
REC = {"lock": (0, "Q"), "size": (8, "I"), "flags": (12, "I"), "pts": (16, "q"),
       "params_generation": (24, "I")}


def align_up(v: int, a: int) -> int:
    return (v + a - 1) // a * a


def sub_slot_offset(slot_count: int) -> int:
    return HEADER_SIZE + SLOT_DESC_SIZE * slot_count


def host_layout(slot_count: int, max_subs: int, slot_bytes: int) -> tuple[int, int, int]:
    """(data_offset, data_stride, segment_size) for the HOST kind (SHM-LAYOUT-01)."""
    data_offset = align_up(sub_slot_offset(slot_count) + SUB_SLOT_SIZE * max_subs, HOST_ALIGN)
    stride = align_up(slot_bytes, HOST_ALIGN)
    return data_offset, stride, data_offset + slot_count * stride


class Region:
    """A shared mapping of a /dev/shm file: plain (non-atomic) field access through struct for
    fields no other process writes concurrently, atomic access through cuframes._atomics."""

    def __init__(self, fd: int, size: int, writable: bool = True) -> None:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        self.mm: Optional[mmap.mmap] = mmap.mmap(fd, size, mmap.MAP_SHARED, prot)
        self.size = size
        # The address is taken once; the mmap object is closed only by close() below, and
        # every user of `base` checks `closed` first (the owners serialise close with use).
        self.base = A.buffer_address(self.mm)
        self.closed = False

    def get(self, off: int, fmt: str) -> int:
        assert self.mm is not None
        return int(struct.unpack_from("<" + fmt, self.mm, off)[0])

    def put(self, off: int, fmt: str, value: int) -> None:
        assert self.mm is not None
        struct.pack_into("<" + fmt, self.mm, off, value)

    def read(self, off: int, n: int) -> bytes:
        assert self.mm is not None
        return bytes(self.mm[off:off + n])

    def write(self, off: int, data: bytes) -> None:
        assert self.mm is not None
        self.mm[off:off + len(data)] = data

    # atomics: off is the byte offset of a naturally aligned field
    def load32(self, off: int) -> int:
        return A.load32_acquire(self.base + off)

    def load64(self, off: int) -> int:
        return A.load64_acquire(self.base + off)

    def load32r(self, off: int) -> int:
        return A.load32_relaxed(self.base + off)

    def load64r(self, off: int) -> int:
        return A.load64_relaxed(self.base + off)

    def store32(self, off: int, v: int) -> None:
        A.store32_release(self.base + off, v)

    def store64(self, off: int, v: int) -> None:
        A.store64_release(self.base + off, v)

    def store32r(self, off: int, v: int) -> None:
        A.store32_relaxed(self.base + off, v)

    def store64r(self, off: int, v: int) -> None:
        A.store64_relaxed(self.base + off, v)

    def add32(self, off: int, d: int) -> int:
        return A.fetch_add32(self.base + off, d)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.mm is not None:
            try:
                self.mm.close()
            except BufferError:
                # A NumPy view the application kept still exports the buffer: the mapping is
                # unmapped when the last view goes (the mmap object's own finaliser).
                pass
            self.mm = None

