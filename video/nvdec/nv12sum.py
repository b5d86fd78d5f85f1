"""nv12sum: the per-frame checksum of the NVDEC pipeline, defined once and computed three ways
(NumPy on the host, CuPy and PyTorch on the device) with bit-identical results.

Why not FNV-1a or md5: those are sequential, so a GPU would have to copy every frame back to
the host to compute them. This checksum is a weighted sum, which a device reduces in parallel
and exactly (integer arithmetic, so the order of the additions does not matter):

    bytes  b[0..N)  the NV12 image without pitch padding: the Y plane, `height` rows of `width`
                    bytes, then the interleaved UV plane, `height / 2` rows of `width` bytes
                    (N = width * height * 3 / 2)
    weight w(i)  =  (((i * 2654435761) mod 2^32) >> 8) + 1        (Knuth's multiplicative hash,
                    24 bits, never 0: so any single changed byte changes the sum)
    nv12sum      =  sum over i of b[i] * w(i), an exact integer < 255 * 2^24 * N, which fits a
                    signed 64-bit integer for N < 2^31 (a 16K NV12 frame is 4 * 10^8 bytes)

It is written as 16 lowercase hex digits. It proves that two sides hold the same bytes in the
same places (a shifted row, swapped U/V or a pitch mistake changes it); it is not a
cryptographic hash.

Also here: `nv12_from_av` turns a PyAV (FFmpeg) yuv420p/nv12 frame into those NV12 bytes, the
CPU reference of the pipeline.
"""
from __future__ import annotations

from typing import Any

MULT = 2654435761
MAX_BYTES = 1 << 31


def nv12_bytes(width: int, height: int) -> int:
    """Bytes of a packed NV12 image; ValueError for odd or non-positive sizes."""
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"NV12 needs an even, positive size, not {width}x{height}")
    return width * height * 3 // 2


def weight(i: int) -> int:
    """w(i) of the definition, for one index (the reference the vector versions are tested
    against)."""
    return (((i * MULT) & 0xFFFFFFFF) >> 8) + 1


def reference_sum(data: bytes) -> int:
    """nv12sum of `data`, one byte at a time: slow, the definition itself, for tests."""
    return sum(b * weight(i) for i, b in enumerate(data))


def hex64(value: int) -> str:
    """The checksum as 16 lowercase hex digits."""
    return f"{value & 0xFFFFFFFFFFFFFFFF:016x}"


def _check_size(n: int) -> None:
    if n <= 0 or n >= MAX_BYTES:
        raise ValueError(f"nv12sum is defined for 0 < N < 2^31 bytes, not {n}")


class NumpySum:
    """nv12sum on the host with NumPy; the weights of one size are computed once."""

    def __init__(self) -> None:
        import numpy as np

        self.np = np
        self._w: dict[int, Any] = {}

    def weights(self, n: int) -> Any:
        _check_size(n)
        if n not in self._w:
            np = self.np
            i = np.arange(n, dtype=np.int64)
            self._w[n] = ((i * MULT) & 0xFFFFFFFF) >> 8
            self._w[n] += 1
        return self._w[n]

    def __call__(self, data: Any) -> int:
        """nv12sum of a uint8 array or bytes-like object (its first N bytes: all of it)."""
        np = self.np
        a = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
        a = a.reshape(-1)
        w = self.weights(a.size)
        # int64 products, exact: each < 2^32, the total < 2^63 (see the module doc)
        return int(np.dot(a.astype(np.int64), w))


class CupySum:
    """nv12sum on the device with CuPy: one fused reduction kernel (uint8 * int64 weights),
    enqueued on CuPy's current stream; the result stays on the device."""

    def __init__(self) -> None:
        import cupy as cp

        self.cp = cp
        self._w: dict[int, Any] = {}
        self._kernel = cp.ReductionKernel("uint8 x, int64 w", "int64 y", "(long long)x * w",
                                          "a + b", "y = a", "0", "cuframes_nv12sum")

    def weights(self, n: int) -> Any:
        _check_size(n)
        if n not in self._w:
            cp = self.cp
            i = cp.arange(n, dtype=cp.int64)
            self._w[n] = (((i * MULT) & 0xFFFFFFFF) >> 8) + 1
        return self._w[n]

    def device(self, arr: Any) -> Any:
        """A 0-d int64 device array holding nv12sum(arr), computed asynchronously."""
        return self._kernel(arr, self.weights(arr.size))

    def wrap(self, ptr: int, n: int, owner: Any = None) -> Any:
        """A uint8 CuPy array over `n` bytes of device memory at `ptr` (not owned)."""
        cp = self.cp
        mem = cp.cuda.UnownedMemory(ptr, n, owner, device_id=cp.cuda.Device().id)
        return cp.ndarray((n,), dtype=cp.uint8, memptr=cp.cuda.MemoryPointer(mem, 0))


class _CudaArray:
    """A minimal __cuda_array_interface__ (version 2: no stream member, so the consumer does
    not synchronise; the caller orders the work by running it on the frame's stream)."""

    def __init__(self, ptr: int, n: int) -> None:
        self.__cuda_array_interface__ = {"shape": (n,), "typestr": "|u1", "data": (ptr, False),
                                         "strides": None, "version": 2}


class TorchSum:
    """nv12sum on the device with PyTorch: int64 widen, multiply, sum; on torch's current
    stream; the result stays on the device."""

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self._w: dict[int, Any] = {}

    def weights(self, n: int) -> Any:
        _check_size(n)
        if n not in self._w:
            torch = self.torch
            i = torch.arange(n, dtype=torch.int64, device="cuda")
            self._w[n] = (((i * MULT) & 0xFFFFFFFF) >> 8) + 1
        return self._w[n]

    def device(self, t: Any) -> Any:
        """A 0-d int64 tensor holding nv12sum(t) (t: a flat uint8 CUDA tensor)."""
        return (t.to(self.torch.int64) * self.weights(t.numel())).sum()

    def wrap(self, ptr: int, n: int) -> Any:
        """A uint8 CUDA tensor over `n` bytes of device memory at `ptr` (zero-copy)."""
        return self.torch.as_tensor(_CudaArray(ptr, n), device="cuda")


def nv12_from_av(frame: Any) -> bytes:
    """The packed NV12 bytes (see the module doc) of a decoded PyAV frame in yuv420p (what
    FFmpeg's software H.264/HEVC decoders produce for 8-bit 4:2:0) or nv12. Interleaving U and
    V is done here, not by swscale, so the reference involves no conversion code that could
    differ from the GPU's layout. ValueError for any other pixel format."""
    import numpy as np

    w, h = frame.width, frame.height
    nv12_bytes(w, h)
    fmt = frame.format.name

    def plane(p: Any, rows: int, row_bytes: int) -> Any:
        a = np.frombuffer(p, dtype=np.uint8)
        return a.reshape(-1, p.line_size)[:rows, :row_bytes]

    if fmt in ("yuv420p", "yuvj420p"):
        y = plane(frame.planes[0], h, w)
        u = plane(frame.planes[1], h // 2, w // 2)
        v = plane(frame.planes[2], h // 2, w // 2)
        uv = np.empty((h // 2, w), dtype=np.uint8)
        uv[:, 0::2] = u
        uv[:, 1::2] = v
    elif fmt == "nv12":
        y = plane(frame.planes[0], h, w)
        uv = plane(frame.planes[1], h // 2, w)
    else:
        raise ValueError(f"no NV12 reference for pixel format {fmt}")
    return np.ascontiguousarray(y).tobytes() + np.ascontiguousarray(uv).tobytes()
