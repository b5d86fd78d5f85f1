"""Error codes of PROTOCOL.md section 8 and the exception that carries them."""
from __future__ import annotations

import enum


class Err(enum.IntEnum):
    OK = 0
    AGAIN = 1
    TIMEOUT = 2
    INVALID_ARGUMENT = 3
    NO_MEMORY = 4
    SYSTEM = 5
    KEY_IN_USE = 6
    NOT_FOUND = 7
    PEER_CLOSED = 8
    PROTOCOL = 9
    VERSION_MISMATCH = 10
    UNSUPPORTED_KIND = 11
    UNSUPPORTED_LAYOUT = 12
    CORRUPT = 13
    FULL = 14
    EVICTED = 15
    PERMISSION = 16
    CUDA = 17
    MESSAGE_TOO_LARGE = 18
    UNKNOWN_MESSAGE = 19
    STATE = 20
    OVERSIZED = 21
    NO_PACKET_RING = 22
    NO_CODEC_PARAMS = 23
    PACKET_OVERRUN = 24
    UNSUPPORTED = 25


def known_or_protocol(code: int) -> Err:
    """A received code: itself if section 8 defines it, else PROTOCOL (ERR-02, ERR-04)."""
    try:
        return Err(code)
    except ValueError:
        return Err.PROTOCOL


class CuframesError(Exception):
    """A failure with its section 8 code (`code`) and a human-readable message."""

    def __init__(self, code: Err | int, message: str = "") -> None:
        self.code = Err(code)
        super().__init__(f"{self.code.name}: {message}" if message else self.code.name)


def os_error_code(e: OSError) -> Err:
    """PERMISSION for EACCES/EPERM, SYSTEM otherwise (RES-PERM-03)."""
    import errno

    return Err.PERMISSION if e.errno in (errno.EACCES, errno.EPERM) else Err.SYSTEM
