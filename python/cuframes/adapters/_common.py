"""What both adapters share: JSON event lines (ADP-EVENT-01), usage errors that exit 1
(ADP-ARGS-01), the deterministic payloads and checksum of ADAPTER.md section 4, exit codes."""
from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any, NoReturn

from .._checksum import fnv1a64
from ..errors import Err

_out_lock = threading.Lock()


def emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, **fields}, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def exit_code_for(code: Err) -> int:
    """ADP-EXIT-01: 3 after TIMEOUT, 77 after UNSUPPORTED, 2 for other errors."""
    if code == Err.TIMEOUT:
        return 3
    if code == Err.UNSUPPORTED:
        return 77
    if code == Err.INVALID_ARGUMENT:
        return 1
    return 2


def fail(code: Err, where: str) -> NoReturn:
    emit("error", code=int(code), name=code.name, where=where)
    sys.exit(exit_code_for(code))


class Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit 1 (ADP-ARGS-01), not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: {message}\n")
        emit("error", code=int(Err.INVALID_ARGUMENT), name="INVALID_ARGUMENT", where=message)
        sys.exit(1)


def uint(lo: int = 0, hi: int = (1 << 63) - 1):  # type: ignore[no-untyped-def]
    def conv(s: str) -> int:
        if not s.isdigit():
            raise argparse.ArgumentTypeError(f"not a non-negative integer: {s!r}")
        v = int(s)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} outside {lo}..{hi}")
        return v

    return conv


def checksum(buf: Any) -> str:
    return f"{fnv1a64(buf):016x}"


def _periodic(first: int, step: int, size: int) -> bytes:
    # byte i = (first + i * step) mod 256 repeats every 256 bytes
    period = bytes((first + i * step) % 256 for i in range(256))
    return (period * (size // 256 + 1))[:size]


def frame_payload(seq: int, size: int) -> bytes:
    return _periodic(seq * 31, 7, size)


def packet_size(seq: int, max_bytes: int) -> int:
    return 1 + (seq * 7919) % max_bytes


def packet_payload(seq: int, max_bytes: int) -> bytes:
    return _periodic(seq * 13 + 1, 5, packet_size(seq, max_bytes))


def is_keyframe(seq: int, gop: int) -> bool:
    """ADAPTER.md section 4: packet k is a keyframe when (k - 1) mod G == 0; G = 0: none is."""
    return gop != 0 and (seq - 1) % gop == 0


def params_payload(codec: int) -> bytes:
    return f"cuframes-params-{codec}".encode()
