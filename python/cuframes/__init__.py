"""cuframes for Python: a publisher and a subscriber of the cuframes protocol (spec/PROTOCOL.md,
proto_version 1 and 2), written from the spec. HOST frames are NumPy views of shared memory;
CUDA_IPC frames go through CuPy (imported only when used). Memory ordering: see _atomics.c."""
from .errors import CuframesError, Err
from .layout import CUDA_IPC, HOST
from .publisher import Publisher
from .ring import CodecParams, Packet
from .subscriber import Frame, Subscriber

__all__ = ["CuframesError", "Err", "Publisher", "Subscriber", "Frame", "Packet", "CodecParams",
           "HOST", "CUDA_IPC"]
__version__ = "0.3.0"
