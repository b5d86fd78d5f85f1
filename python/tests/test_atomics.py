"""cuframes._atomics on shared mappings: values, wrap-around, futex results, and a cross-process
wake-up through a shared file (the waiter is released by the wake, not by its timeout)."""
import mmap
import os
import subprocess
import sys
import tempfile
import time

import pytest

from cuframes import _atomics as A


@pytest.fixture
def shared():
    f = tempfile.NamedTemporaryFile(dir="/dev/shm", prefix="cuframes-pytest-")
    f.truncate(8192)
    mm = mmap.mmap(f.fileno(), 8192)
    yield f.name, mm, A.buffer_address(mm)
    mm.close()
    f.close()


def test_loads_stores_and_fetch_add(shared):
    _, mm, base = shared
    A.store64_release(base + 8, 0x1122334455667788)
    assert A.load64_acquire(base + 8) == 0x1122334455667788
    assert mm[8:16] == (0x1122334455667788).to_bytes(8, "little")
    A.store32_relaxed(base, 0xFFFFFFFF)
    assert A.fetch_add32(base, 1) == 0xFFFFFFFF and A.load32_relaxed(base) == 0  # wraps
    assert A.fetch_add32(base, -1) == 0 and A.load32_acquire(base) == 0xFFFFFFFF
    with pytest.raises(ValueError):
        A.load64_acquire(base + 4)  # misaligned
    with pytest.raises(OverflowError):
        A.store32_release(base, 1 << 32)
    A.fence_acquire(), A.fence_release(), A.fence_seq_cst()


def test_copy_relaxed(shared):
    _, mm, base = shared
    mm[100:110] = b"0123456789"
    A.copy_relaxed(base + 1000, base + 100, 10)
    assert mm[1000:1010] == b"0123456789"
    A.copy_relaxed(base + 2048, base + 96, 24)
    assert mm[2048 + 4:2048 + 14] == b"0123456789"


def test_futex_results(shared):
    _, _, base = shared
    A.store32_release(base + 64, 5)
    t = time.monotonic()
    assert A.futex_wait(base + 64, 5, 20) == 1  # timed out
    assert time.monotonic() - t >= 0.015
    assert A.futex_wait(base + 64, 6, 1000) == 2  # the word changed: EAGAIN at once
    assert A.futex_wake(base + 64, 1) == 0


# futex(2)'s number in /proc/<tid>/syscall, per architecture.
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(os.uname().machine)


def _in_futex_on(tid: int, addr: int) -> bool:
    """Thread `tid` of this process is inside futex(2) on `addr` (not, say, on the GIL)."""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
    except OSError:
        return False
    return len(fields) > 1 and fields[0] == str(_SYS_FUTEX) and int(fields[1], 16) == addr


@pytest.mark.skipif(_SYS_FUTEX is None, reason="futex(2)'s syscall number unknown on this CPU")
def test_futex_bitset(shared):
    """FUTEX_WAIT_BITSET takes an absolute deadline (the wrapper converts the timeout: a relative
    one passed through would be in the past and time out at once), and only a wake whose bitset
    shares a bit with the waiter's releases it (SHM-WAKE-01's forwarding relies on both)."""
    import threading

    _, _, base = shared
    word = base + 192
    A.store32_release(word, 7)
    t = time.monotonic()
    assert A.futex_wait_bitset(word, 7, 30, 1 << 3) == 1  # timed out, after the timeout
    assert time.monotonic() - t >= 0.025
    assert A.futex_wait_bitset(word, 8, 1000, 1 << 3) == 2  # the word changed: EAGAIN at once
    with pytest.raises(ValueError):
        A.futex_wake_bitset(word, 1, 0)
    result = []
    tid = []
    def waiter() -> None:
        tid.append(threading.get_native_id())
        result.append(A.futex_wait_bitset(word, 7, 5000, 1 << 3))
    th = threading.Thread(target=waiter)
    th.start()
    deadline = time.monotonic() + 5
    while not tid or not _in_futex_on(tid[0], word):  # queued on this word (bounded)
        assert time.monotonic() < deadline, "the waiter never slept"
        time.sleep(0.001)
    assert A.futex_wake_bitset(word, 2, 1 << 4) == 0  # another frame's bitset: nobody
    assert A.futex_wake_bitset(word, 2, (1 << 3) | (1 << 9)) == 1  # a shared bit: the waiter
    th.join(timeout=5)
    assert result == [0]  # woken, not timed out


def test_cross_process_wake(shared):
    path, _, base = shared
    child = subprocess.Popen([sys.executable, "-c", f"""
import mmap, os, sys, time
sys.path[:0] = {sys.path!r}
from cuframes import _atomics as A
fd = os.open({path!r}, os.O_RDWR)
mm = mmap.mmap(fd, 8192)
b = A.buffer_address(mm)
A.store32_release(b + 128, 1)                 # readiness: I am about to wait
A.futex_wake(b + 128, 1)
t = time.monotonic()
while A.load32_acquire(b + 256) == 0:
    A.futex_wait(b + 256, 0, 5000)
print(A.load64_acquire(b + 512), round(time.monotonic() - t, 3))
"""], stdout=subprocess.PIPE, text=True)
    while A.load32_acquire(base + 128) == 0:
        A.futex_wait(base + 128, 0, 100)
    A.store64_release(base + 512, 4242)  # published before the flag, read after it
    A.store32_release(base + 256, 1)
    A.futex_wake(base + 256, 1)
    out, _ = child.communicate(timeout=10)
    value, waited = out.split()
    assert value == "4242"
    assert float(waited) < 4.0  # woken, not timed out


def test_detach_pages_keeps_old_bytes(shared):
    path, mm, base = shared
    fd = os.open(path, os.O_RDONLY)
    view_map = mmap.mmap(fd, 4096, access=mmap.ACCESS_READ)
    os.close(fd)
    mm[0:4] = b"old!"
    mv = memoryview(view_map)
    A.detach_pages(A.buffer_address(view_map), 4096)
    mm[0:4] = b"new!"
    assert bytes(mv[0:4]) == b"old!"
    mv.release()
    view_map.close()
