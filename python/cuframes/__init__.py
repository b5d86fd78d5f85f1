"""cuframes for Python: a publisher and a subscriber of the cuframes protocol (spec/PROTOCOL.md,
proto_version 1 and 2), written from the spec. HOST frames are NumPy views of shared memory;
CUDA_IPC frames go through CuPy (imported only when used). Memory ordering: see _atomics.c.

The public names are imported on first use (PEP 562), so that a process that needs only part
of the package (an adapter) starts faster."""
from typing import Any

from .errors import CuframesError, Err
from .layout import CUDA_IPC, HOST

__all__ = ["CuframesError", "Err", "Publisher", "Subscriber", "Frame", "Packet", "CodecParams",
           "HOST", "CUDA_IPC"]
__version__ = "0.3.0"

_LAZY = {"Publisher": "publisher", "Subscriber": "subscriber", "Frame": "subscriber",
         "Packet": "ring", "CodecParams": "ring"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'cuframes' has no attribute {name!r}")
