"""CUDA_IPC kind through CuPy (placeholder until written): reports UNSUPPORTED."""
from __future__ import annotations

from .errors import CuframesError, Err


def require_device() -> None:
    raise CuframesError(Err.UNSUPPORTED, "CUDA kind not available")
