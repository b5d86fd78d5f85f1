"""Names of resources (PROTOCOL.md 1.1), key validation (RES-KEY-01), clocks and the bounded
futex wait of SHM-ORDER-04, shared by the publisher and the subscriber."""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import socket

from . import _atomics as A
from .errors import CuframesError, Err

LIB_VERSION = (0 << 16) | (3 << 8) | 0
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def check_key(key: str) -> None:
    """RES-KEY-01: INVALID_ARGUMENT before anything touches the file system."""
    if (not isinstance(key, str) or not 1 <= len(key) <= 64 or not set(key) <= _KEY_CHARS
            or key.startswith(".")):
        raise CuframesError(Err.INVALID_ARGUMENT, f"invalid key {key!r}")


def socket_path(key: str) -> str:
    return os.path.join(os.environ.get("CUFRAMES_SOCKET_DIR") or "/tmp", f"cuframes-{key}.sock")


def segment_path(key: str) -> str:
    return f"/dev/shm/cuframes-{key}"


def ring_path(key: str) -> str:
    return f"/dev/shm/cuframes-{key}-packets"


def now_ms() -> float:
    return time.monotonic() * 1000.0


def proc_start_time(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            s = f.read()
        return int(s[s.rindex(b")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


# Each futex wait lasts at most this long, so liveness and hostile counts are re-checked well
# within PEER_DEATH_DETECT_MS (SHM-ORDER-04, RES-CRASH-01).
WAIT_SLICE_MS = 50

# A publisher waiting for a subscriber's ack event (CUDA kinds, ACK-CUDA-03) polls it without
# sleeping for this long: a GPU handoff between two processes takes about 0.3 ms without MPS.
DEVICE_SPIN_MS = 5


def bounded_wait(word_addr: int, waiters_addr: int, ready: Callable[[], bool],
                 slice_ms: float, bitset: int = 0) -> bool:
    """One step of SHM-ORDER-04: load the futex word, count ourselves as a waiter (seq_cst),
    re-check the condition, FUTEX_WAIT with the loaded value for at most slice_ms, uncount.
    With a nonzero `bitset`, FUTEX_WAIT_BITSET with it (a forwarding subscriber, SHM-WAKE-01).
    Returns True when the wait returned 0 (a wake-up). The caller re-checks its condition (and
    liveness) after every return."""
    val = A.load32_acquire(word_addr)
    A.fetch_add32(waiters_addr, 1)
    try:
        if ready():
            return False
        ms = max(1, int(min(slice_ms, WAIT_SLICE_MS)))
        if bitset:
            return A.futex_wait_bitset(word_addr, val, ms, bitset) == 0
        return A.futex_wait(word_addr, val, ms) == 0
    finally:
        A.fetch_add32(waiters_addr, -1)


def unlink_checked(path: str) -> None:
    """Unlink; ENOENT is fine, any other failure is PERMISSION or SYSTEM (RES-PERM-03)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        from .errors import os_error_code

        raise CuframesError(os_error_code(e), f"unlink {path}: {e.strerror}") from None


def close_socket(sock: "socket.socket") -> None:
    """Closes a connection so that what we sent last (an ERROR, a DETACH) reaches the peer:
    shut down our side, then drop the bytes the peer sent that we did not read (a Unix socket
    closed with unread data resets the peer, which can then lose our last message). At most
    1 MiB is dropped, without blocking."""
    import socket as _s

    try:
        sock.shutdown(_s.SHUT_WR)
    except OSError:
        pass
    try:
        for _ in range(16):
            if not sock.recv(65536, _s.MSG_DONTWAIT):
                break
    except OSError:
        pass
    sock.close()
