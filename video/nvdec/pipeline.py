#!/usr/bin/env python3
"""The GPU pipeline the protocol was made for (issue 16 item 4): NVDEC decodes H.264/HEVC into
device memory, a publisher puts each decoded NV12 surface into the cuframes CUDA frame ring, and
two subscribers in other processes checksum every frame on the GPU:

  (a) "ref-cupy": the reference's subscriber (libcuframes through its C API, cflib.py) with a
      CuPy reduction kernel ("ref-torch", PyTorch's reduction, where CuPy cannot compile
      kernels: --engine-a);
  (b) "torch":    a PyTorch consumer, through cuframes for Python (python/, CUDA_IPC via CuPy)
      by default, or through libcuframes with --torch-via ref.

(a) is the reference library's subscriber API rather than its adapter `cuframes-sub`: the
adapter verifies ADAPTER.md's synthetic payloads and checksums on the host (FNV-1a after a copy
to the host), so a device checksum there would need CUDA code in the adapter and an extension of
the adapter contract; through the C API the same library reads the same ring with no copy.

Both must report, frame by frame, the nv12sum (nv12sum.py) of a CPU decode of the same file by
FFmpeg's software decoder (PyAV); H.264 and HEVC decoding is bit-exact, so any difference is a
bug. The publisher also checksums each slot after writing it ("pub"), which tells a decode
mismatch from a transport one. Frames per second: the decoder alone (demux + NVDEC, nothing
else) and end to end (first packet decoded to the last frame checksummed by both subscribers).

    python3 video/nvdec/pipeline.py [--mode gpu|cpu] [--build-dir DIR] [--case CODEC:WxH:N ...]
                                    [--torch-via py|ref] [--slots S] [--reports DIR]

--mode cpu runs the same processes, ring and comparisons without a GPU (PyAV decodes, the HOST
kind carries the frames, NumPy checksums): ci/test.sh runs it small. The input is encoded on the
machine that runs the pipeline, from FFmpeg's testsrc2 through PyAV (libx264/libx265 are in its
wheels), and cached under build/nvdec-media/ with its CPU reference checksums.

Packages the GPU runner lacks (no internet there): PyAV and NVIDIA's PyNvVideoCodec, installed
from wheels in .gpu/wheels/ when present (`pip install --no-index --find-links .gpu/wheels`),
else from PyPI (video/nvdec/wheels.sh downloads them); when neither works, or there is no GPU,
no CuPy, no PyTorch, no CUDA build of libcuframes or no usable NVDEC (GetDecoderCaps), it prints
"SKIP: <reason>" and exits 77; a case beyond NVDEC's capabilities is skipped on its own. Before
any case, NumPy, CuPy and PyTorch checksum one random 4K image: if they disagree, the run fails
there (the engines are wrong, not the frames).

Prints a table (one row per case: decoder-alone fps, end-to-end fps, their ratio, frames
verified by each subscriber) last and writes reports/nvdec-pipeline.json. Exit status: 0 when
every frame of every case matched for every subscriber, 1 otherwise, 77 skipped.

The processes: this orchestrator (no CUDA here: it only spawns), one publisher and two
subscribers started fresh (never forked after CUDA initialisation). They talk to the
orchestrator in JSON lines on stdout; every wait is bounded; the publisher shuts down when its
stdin closes, after both subscribers have finished.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import cflib  # noqa: E402
import nv12sum  # noqa: E402

SKIP = 77
GOP = 30
WARMUP = 60  # frames of the untimed first decoding pass
DEFAULT_GPU_CASES = ["h264:1920x1080:600", "h264:3840x2160:300", "hevc:1920x1080:300",
                     "hevc:3840x2160:150"]
DEFAULT_CPU_CASES = ["h264:320x240:40", "hevc:320x240:20"]


def _prod(values: list[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def emit(**event: Any) -> None:
    """One JSON event line on stdout, flushed."""
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Skip(Exception):
    """A prerequisite is missing: the run is skipped with this reason."""


# ------------------------------------------------------------------------------ packages


def _pip(args: list[str]) -> bool:
    """pip install ARGS for this interpreter, retried with --break-system-packages (a PEP 668
    system python); True when it succeeded."""
    base = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for extra in ([], ["--break-system-packages"]):
        r = subprocess.run(base + extra + args, capture_output=True, text=True, check=False,
                           timeout=600)
        if r.returncode == 0:
            return True
        last = (r.stderr or r.stdout).strip().splitlines()
    print(f"    pip install {' '.join(args)}: {last[-1] if last else 'failed'}", flush=True)
    return False


def ensure_module(module: str, package: str, wheels: Path) -> str:
    """Imports `module`, installing `package` first when it is missing: from the wheels in
    `wheels` (no index), else from PyPI. Returns how it was found; raises Skip with the reason
    when it cannot be imported."""
    def importable() -> Optional[str]:
        importlib.invalidate_caches()
        # a subprocess: importing PyNvVideoCodec loads the driver's video libraries, which
        # this process (the one that forks the others) must not do
        r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                           text=True, check=False, timeout=120)
        return None if r.returncode == 0 else (r.stderr.strip().splitlines() or ["?"])[-1]

    err = importable()
    if err is None:
        return "installed"
    have_wheel = wheels.is_dir() and any(
        p.name.lower().startswith(package.lower()) for p in wheels.glob("*.whl"))
    if have_wheel:
        print(f"  installing {package} from {wheels}", flush=True)
        if _pip(["--no-index", "--find-links", str(wheels), package]) and importable() is None:
            return f"installed from {wheels}"
    print(f"  installing {package} from PyPI", flush=True)
    if _pip(["--retries", "0", "--timeout", "15", package]) and importable() is None:
        return "installed from PyPI"
    where = f"no wheel in {wheels}" if not have_wheel else f"the wheel in {wheels} did not work"
    raise Skip(f"{package} is not importable ({err}); {where} and PyPI did not work (put a "
               f"wheel for this python in {wheels}: see the NVDEC pipeline section of README.md)")


def nvdec_probe() -> dict[str, Any]:
    """role_probe_nvdec's answer, from a subprocess."""
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "probe-nvdec"],
                       capture_output=True, text=True, check=False, timeout=300)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"probe failed: {r.stderr.strip()[-300:]}"}


def role_probe_nvdec() -> int:
    """Prints NVDEC's capabilities for 8-bit 4:2:0 H.264 and HEVC on GPU 0 (GetDecoderCaps:
    supported, width_max, height_max, num_decoder_engines, ...) as one JSON line; a codec whose
    query failed (no libnvcuvid in a container without the video capability, ...) gets
    `<codec>_error` instead."""
    import PyNvVideoCodec as nvc

    out: dict[str, Any] = {"version": getattr(nvc, "__version__", "?")}
    for name, codec in (("h264", nvc.cudaVideoCodec.H264), ("hevc", nvc.cudaVideoCodec.HEVC)):
        try:
            caps = nvc.GetDecoderCaps(gpuid=0, codec=codec)
            out[name] = {str(k): int(v) for k, v in dict(caps).items()}
        except Exception as e:
            out[f"{name}_error"] = repr(e)
    print(json.dumps(out))
    return 0


def _caps_text(caps: Optional[dict[str, int]], error: Optional[str]) -> str:
    if not isinstance(caps, dict):
        return f"unavailable ({error})"
    if not caps.get("supported"):
        return "not supported"
    return (f"up to {caps.get('width_max')}x{caps.get('height_max')}, "
            f"{caps.get('num_decoder_engines')} engines")


def unsupported(caps: Optional[dict[str, int]], case: "Case") -> Optional[str]:
    """Why NVDEC cannot decode `case` per its capabilities, or None."""
    if not isinstance(caps, dict):
        return f"NVDEC cannot decode {case.codec} here (its capability query failed)"
    if not caps.get("supported"):
        return f"NVDEC does not support 8-bit 4:2:0 {case.codec} on this GPU"
    if case.width > caps.get("width_max", 1 << 30) or case.height > caps.get("height_max",
                                                                             1 << 30):
        return (f"{case.width}x{case.height} is beyond NVDEC's {caps.get('width_max')}x"
                f"{caps.get('height_max')} for {case.codec}")
    return None


def import_here(module: str) -> Any:
    """Imports `module` in this process after ensure_module installed it: a site-packages
    folder that pip has just created is not on sys.path yet, so add them all and retry."""
    try:
        return importlib.import_module(module)
    except ImportError:
        import site

        for d in [*site.getsitepackages(), site.getusersitepackages()]:
            site.addsitedir(d)
        importlib.invalidate_caches()
        return importlib.import_module(module)


def gpu_probe() -> dict[str, Any]:
    """role_probe's answer, from a subprocess (this process stays CUDA-free)."""
    r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "probe"],
                       capture_output=True, text=True, check=False, timeout=600)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"cupy_error": f"probe failed: {r.stderr.strip()[-300:]}"}


def role_probe() -> int:
    """Prints what this machine offers as one JSON line: CuPy and its device, PyTorch with
    CUDA, and `engines`: nv12sum of the same random 4K NV12 image by NumPy, CuPy and PyTorch
    (they must agree before any frame is judged by them)."""
    out: dict[str, Any] = {}
    try:
        import cupy

        out["gpus"] = cupy.cuda.runtime.getDeviceCount()
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        out["gpu"] = name.decode() if isinstance(name, bytes) else name
        out["cupy"] = cupy.__version__
    except Exception as e:
        out["cupy_error"] = repr(e)
    try:
        import torch

        out["torch"] = torch.__version__
        out["torch_cuda"] = bool(torch.cuda.is_available())
    except Exception as e:
        out["torch_error"] = repr(e)
    if out.get("gpus") and out.get("torch_cuda"):
        try:
            import numpy as np

            data = np.random.default_rng(7).integers(0, 256, nv12sum.nv12_bytes(3840, 2160),
                                                     dtype=np.uint8)
            out["engines"] = {"numpy": nv12sum.NumpySum()(data)}
        except Exception as e:
            out["engine_errors"] = {"numpy": repr(e)}
        else:
            out["engine_errors"] = {}
            runs = {"cupy": lambda: int(nv12sum.CupySum().device(cupy.asarray(data))),
                    "torch": lambda: int(nv12sum.TorchSum().device(torch.from_numpy(data).cuda()))}
            for name, run in runs.items():
                try:  # CuPy compiles its kernels at run time (NVRTC), which can be missing
                    out["engines"][name] = run()
                except Exception as e:
                    out["engine_errors"][name] = repr(e)
    print(json.dumps(out))
    return 0


# ------------------------------------------------------------------------------ media


class Case:
    """One input: codec (h264 | hevc), size and frame count, e.g. "h264:1920x1080:600"."""

    def __init__(self, spec: str) -> None:
        try:
            codec, size, frames = spec.split(":")
            w, h = (int(v) for v in size.lower().split("x"))
            n = int(frames)
        except ValueError:
            raise SystemExit(f"pipeline.py: --case wants CODEC:WxH:FRAMES, not {spec!r}")
        if codec not in ("h264", "hevc"):
            raise SystemExit(f"pipeline.py: codec {codec!r}: h264 or hevc")
        try:
            nv12sum.nv12_bytes(w, h)
        except ValueError as e:
            raise SystemExit(f"pipeline.py: --case {spec}: {e}")
        if n < 1:
            raise SystemExit("pipeline.py: at least one frame per case")
        self.codec, self.width, self.height, self.frames = codec, w, h, n

    @property
    def name(self) -> str:
        label = {1080: "1080p", 2160: "4K"}.get(self.height, f"{self.width}x{self.height}")
        return f"{self.codec} {label}"

    @property
    def stem(self) -> str:
        # the GOP structure is part of the name, so a cache made differently is not reused
        return f"{self.codec}-{self.width}x{self.height}-{self.frames}-g{GOP}b2"


def encode(case: Case, out: Path) -> None:
    """Encodes `case` from testsrc2 with libx264/libx265 (GOP 30, 2 B-frames, closed GOPs) into
    the MP4 `out` through PyAV."""
    import av

    graph = av.filter.Graph()
    src = graph.add("testsrc2", f"size={case.width}x{case.height}:rate=30")
    fmt = graph.add("format", "pix_fmts=yuv420p")
    sink = graph.add("buffersink")
    src.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    tmp = out.with_suffix(".part.mp4")
    container = av.open(str(tmp), "w")
    if case.codec == "h264":
        stream = container.add_stream("libx264", rate=30)
        stream.options = {"preset": "veryfast", "g": str(GOP), "keyint_min": str(GOP),
                          "sc_threshold": "0", "bf": "2"}
    else:
        stream = container.add_stream("libx265", rate=30)
        stream.options = {"preset": "ultrafast", "x265-params":
                          f"keyint={GOP}:min-keyint={GOP}:scenecut=0:open-gop=0:bframes=2:"
                          "log-level=error"}
    stream.width, stream.height, stream.pix_fmt = case.width, case.height, "yuv420p"
    for _ in range(case.frames):
        frame = sink.pull()
        frame.pts = None  # the encoder numbers them
        # testsrc2 marks every frame I, which the x264/x265 wrappers take as a forced intra
        # frame: without this the stream is all-intra, with neither GOP nor B-frames
        frame.pict_type = 0  # AV_PICTURE_TYPE_NONE: the encoder decides
        for packet in stream.encode(frame):  # type: ignore[arg-type]
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    tmp.rename(out)


def cpu_reference(path: Path) -> list[str]:
    """nv12sum of every frame of `path` decoded on the CPU by FFmpeg (PyAV), in display order."""
    import av

    sums = nv12sum.NumpySum()
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads: the output is the same, bit for bit
        for frame in container.decode(stream):
            out.append(nv12sum.hex64(sums(nv12sum.nv12_from_av(frame))))
    return out


def prepare(case: Case, media_dir: Path) -> tuple[Path, list[str]]:
    """The case's file and its CPU reference checksums, made once and cached in media_dir."""
    media_dir.mkdir(parents=True, exist_ok=True)
    path = media_dir / f"{case.stem}.mp4"
    ref_path = media_dir / f"{case.stem}.ref.json"
    if not path.exists():
        t = time.monotonic()
        encode(case, path)
        print(f"  encoded {path.name} ({path.stat().st_size / 1e6:.1f} MB) in "
              f"{time.monotonic() - t:.1f} s", flush=True)
        ref_path.unlink(missing_ok=True)
    if ref_path.exists():
        ref = json.loads(ref_path.read_text())
        if ref.get("bytes") == path.stat().st_size:
            return path, ref["checksums"]
    t = time.monotonic()
    sums = cpu_reference(path)
    ref_path.write_text(json.dumps({"bytes": path.stat().st_size, "checksums": sums}))
    print(f"  CPU reference of {path.name}: {len(sums)} frames in {time.monotonic() - t:.1f} s",
          flush=True)
    return path, sums


# ------------------------------------------------------------------------------ decoders


class CpuSource:
    """--mode cpu: FFmpeg's software decoder through PyAV; frames as packed NV12 bytes."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path, self.width, self.height = path, width, height

    def open(self) -> Any:
        """A fresh decoding session: the container (the clock starts after this)."""
        import av

        container = av.open(str(self.path))
        container.streams.video[0].thread_type = "AUTO"
        return container

    def frames(self, container: Any) -> Iterator[tuple[Any, int]]:
        """Yields (NV12 bytes, pts) per frame of the session in display order."""
        with container:
            for frame in container.decode(container.streams.video[0]):
                yield nv12sum.nv12_from_av(frame), int(frame.pts or 0)


class NvdecSource:
    """NVDEC through PyNvVideoCodec: the demuxer and a decoder in the process's primary CUDA
    context (the one CuPy and the ring use) on a stream of ours."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        import cupy as cp
        import PyNvVideoCodec as nvc

        self.cp, self.nvc = cp, nvc
        self.path, self.width, self.height = path, width, height
        self.nbytes = nv12sum.nv12_bytes(width, height)
        cp.cuda.Device(0).use()
        cp.cuda.runtime.free(cp.cuda.runtime.malloc(1))  # the primary context exists now
        self.context = cp.cuda.driver.ctxGetCurrent()
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.decoded = cp.cuda.Event(disable_timing=True)

    def planes(self, f: Any) -> list[tuple[int, int]]:
        """[(device pointer, row pitch) of the Y plane, of the UV plane] of a decoded frame.
        From its plane views (f.cuda(): objects with shape, stride and data; PyNvVideoCodec
        2.x gives Y as (H, W, 1) and UV as (H/2, W/2, 2), rows contiguous), else the packed
        layout of NVIDIA's samples (GetPtrToPlane(0), pitch W, UV right after Y).
        RuntimeError, with what the frame says, when it is not a W x H NV12 image."""
        w, h = self.width, self.height
        views = None
        try:
            views = list(f.cuda())
        except Exception:  # a binding without plane views
            pass
        if views is None or len(views) < 2:
            base = int(f.GetPtrToPlane(0))
            return [(base, w), (base + w * h, w)]
        out = []
        for v, rows in zip(views[:2], (h, h // 2)):
            shape, stride = [int(x) for x in v.shape], [int(x) for x in v.stride]
            row_bytes = _prod(shape[1:])
            dense = all(stride[d] == _prod(shape[d + 1:]) for d in range(1, len(shape)))
            if shape[0] != rows or row_bytes != w or not dense or stride[0] < w:
                raise RuntimeError(f"decoded frame is not {w}x{h} NV12: plane views "
                                   f"{[(list(x.shape), list(x.stride)) for x in views]}")
            out.append((int(v.data), stride[0]))
        return out

    def open(self) -> tuple[Any, Any]:
        """A fresh decoding session, (demuxer, decoder): creating the decoder costs time that
        is not decoding, so the clock starts after this."""
        nvc = self.nvc
        demuxer = nvc.CreateDemuxer(filename=str(self.path))
        decoder = nvc.CreateDecoder(gpuid=0, codec=demuxer.GetNvCodecId(),
                                    cudacontext=self.context, cudastream=self.stream.ptr,
                                    usedevicememory=True)
        return demuxer, decoder

    def frames(self, session: tuple[Any, Any]) -> Iterator[tuple[list[tuple[int, int]], int,
                                                                   int]]:
        """Yields (planes, pts, decoder event) per decoded frame of the session in display
        order (planes: see planes()). The surfaces are valid until the generator resumes;
        before reading them, wait for `self.decoded` (recorded on the decoder's stream after
        each Decode call) and for the frame's decoder event when it is not 0."""
        demuxer, decoder = session

        def batch(frames: Any) -> Iterator[tuple[list[tuple[int, int]], int, int]]:
            # Decode may return before the decoder's post-processing and copy into the frame
            # buffers are done: both are on our stream, and each frame also carries the event
            # the decoder recorded after them
            self.decoded.record(self.stream)
            for f in frames:
                try:
                    pts = int(f.getPTS())
                except Exception:
                    pts = 0
                event = int(getattr(f, "decoder_stream_event", 0) or 0)
                yield self.planes(f), pts, event

        # the demuxer's iteration ends with an empty packet, which flushes the decoder
        for packet in demuxer:
            yield from batch(decoder.Decode(packet))


# ------------------------------------------------------------------------------ publisher


def role_publish(a: argparse.Namespace) -> int:
    """Decoder-alone pass, then the publisher: decode, copy each surface into a slot, checksum
    the slot, commit; an END_OF_STREAM frame last; exits when stdin closes."""
    gpu = a.mode == "gpu"
    path = Path(a.media)
    nbytes = nv12sum.nv12_bytes(a.width, a.height)
    src: Any = NvdecSource(path, a.width, a.height) if gpu else CpuSource(path, a.width,
                                                                            a.height)
    # 1. the decoder alone: demux + decode, each surface left where it is. A first, untimed
    # pass of up to WARMUP frames loads what a first use loads (libraries, kernels), which
    # would otherwise be charged to the decoder alone but not to the end-to-end pass.
    for i, _ in enumerate(src.frames(src.open())):
        if i + 1 >= WARMUP:
            break
    session = src.open()
    n, t0 = 0, time.monotonic()
    for _ in src.frames(session):
        n += 1
    if gpu:
        src.stream.synchronize()
    emit(event="decode_alone", frames=n, seconds=time.monotonic() - t0)
    del session

    lib = cflib.Lib(Path(a.lib))
    kind = cflib.KIND_CUDA_IPC if gpu else cflib.KIND_HOST
    # the publisher's own check of each slot it wrote, with the engine subscriber (a) uses
    engine = Engine(a.engine, a.max_frames, nbytes)
    pub = cflib.Publisher(lib, a.key, kind=kind, width=a.width, height=a.height, slots=a.slots,
                          max_subscribers=max(2, a.subscribers))
    try:
        emit(event="ready", key=a.key)
        pub.wait_subscribers(a.subscribers, a.timeout_ms)
        if gpu:
            cp = src.cp
            copied = cp.cuda.Event(disable_timing=True)
        # 2. end to end: the clock starts before the first packet is decoded
        session = src.open()
        k, t0 = 0, time.monotonic()
        for item in src.frames(session):
            if k >= a.max_frames:
                raise RuntimeError(f"more than --max-frames {a.max_frames} frames decoded")
            slot = pub.acquire(a.timeout_ms)
            if gpu:
                planes, pts, event = item
                stream = cp.cuda.ExternalStream(slot.cuda_stream)
                stream.wait_event(src.decoded)  # the decoder's writes of this surface
                if event:
                    cp.cuda.runtime.streamWaitEvent(slot.cuda_stream, event, 0)
                # Y then UV, pitch padding dropped: the slot holds packed NV12 (pitch = width)
                for (ptr, pitch), dst, rows in zip(planes, (slot.data, slot.data + a.width *
                                                            a.height), (a.height, a.height // 2)):
                    cp.cuda.runtime.memcpy2DAsync(dst, a.width, ptr, pitch, a.width, rows,
                                                  4,  # cudaMemcpyDefault
                                                  slot.cuda_stream)
                engine.frame(k, slot.data, nbytes, slot.cuda_stream)
                copied.record(stream)
            else:
                data, pts = item
                import ctypes

                ctypes.memmove(slot.data, data, nbytes)
                engine.frame(k, data, nbytes, 0)
            # timestamp: the frame's pts in the stream's time base (not converted: nothing here
            # reads it); user_data: its index + 1
            pub.commit(nbytes, timestamp_ns=pts, user_data=k + 1)
            if gpu:
                # the surface may be reused by the next Decode call: the copy must be done
                copied.synchronize()
            k += 1
        pub.acquire(a.timeout_ms)
        pub.commit(0, timestamp_ns=0, user_data=0, flags=cflib.FRAME_END_OF_STREAM)
        sums = engine.finish(k)
        emit(event="published", frames=k, t0=t0, t_end=time.monotonic(), checksums=sums)
        sys.stdin.read()  # the orchestrator closes our stdin once the subscribers are done
    finally:
        pub.destroy()
    emit(event="done")
    return 0


# ------------------------------------------------------------------------------ subscribers


class Engine:
    """Checksums frames into slot k of a result array, on the frame's stream."""

    def __init__(self, name: str, max_frames: int, frame_bytes: int) -> None:
        self.name = name
        if name == "cupy":
            import cupy as cp

            cp.cuda.Device(0).use()
            self.cp = cp
            self.sum: Any = nv12sum.CupySum()
            self.results: Any = cp.zeros(max_frames, dtype=cp.int64)
            self._streams: dict[int, Any] = {}
        elif name == "torch":
            import torch

            torch.cuda.init()
            self.torch = torch
            self.sum = nv12sum.TorchSum()
            self.results = torch.zeros(max_frames, dtype=torch.int64, device="cuda")
            self._streams = {}
        else:
            self.sum = nv12sum.NumpySum()
            self.results = [0] * max_frames
        self.warm_up(frame_bytes)

    def warm_up(self, n: int) -> None:
        """One checksum of n zero bytes, waited for: compiles the kernel (CuPy), loads the
        modules (PyTorch) and makes the weights before the first frame, not on its clock."""
        if self.name == "cupy":
            zeros = self.cp.zeros(n, dtype=self.cp.uint8)
            assert int(self.sum.device(zeros)) == 0
        elif self.name == "torch":
            zeros = self.torch.zeros(n, dtype=self.torch.uint8, device="cuda")
            assert int(self.sum.device(zeros)) == 0
        else:
            self.sum.weights(n)

    def frame(self, k: int, data: Any, nbytes: int, stream_ptr: int) -> None:
        """Enqueues nv12sum of frame k (a device pointer, or a host array for numpy)."""
        if self.name == "cupy":
            cp = self.cp
            s = self._streams.get(stream_ptr)
            if s is None:
                s = self._streams[stream_ptr] = cp.cuda.ExternalStream(stream_ptr)
            with s:
                self.results[k] = self.sum.device(self.sum.wrap(data, nbytes))
        elif self.name == "torch":
            torch = self.torch
            s = self._streams.get(stream_ptr)
            if s is None:
                s = self._streams[stream_ptr] = torch.cuda.ExternalStream(stream_ptr)
            with torch.cuda.stream(s):
                self.results[k] = self.sum.device(self.sum.wrap(data, nbytes))
        else:
            self.results[k] = self.sum(data)

    def finish(self, count: int) -> list[str]:
        """Waits for every enqueued checksum; returns the first `count` as hex."""
        if self.name == "cupy":
            self.cp.cuda.Device().synchronize()
            values = [int(v) for v in self.results[:count].get()]
        elif self.name == "torch":
            self.torch.cuda.synchronize()
            values = [int(v) for v in self.results[:count].cpu().tolist()]
        else:
            values = self.results[:count]
        return [nv12sum.hex64(v) for v in values]


def _connect_retrying(connect: Any, timeout_s: float) -> Any:
    """connect() until it stops failing with NOT_FOUND (publisher not listening yet)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return connect()
        except Exception as e:
            status = getattr(e, "status", None)
            code = getattr(e, "code", None)
            not_found = status == cflib.NOT_FOUND or getattr(code, "name", "") == "NOT_FOUND"
            if not not_found or time.monotonic() >= deadline:
                raise
        time.sleep(0.005)  # connect retry pacing (the publisher announced "ready" already)


def role_subscribe(a: argparse.Namespace) -> int:
    """Reads frames until END_OF_STREAM, checksums each on the device, prints a result."""
    engine = Engine(a.engine, a.max_frames, a.frame_bytes)
    gpu = a.kind == "cuda"
    if a.via == "ref":
        lib = cflib.Lib(Path(a.lib))
        mask = cflib.kind_bit(cflib.KIND_CUDA_IPC if gpu else cflib.KIND_HOST)
        sub: Any = _connect_retrying(
            lambda: cflib.Subscriber(lib, a.key, kinds_mask=mask, connect_timeout_ms=5000),
            a.timeout_ms / 1000)
        emit(event="attached", via="ref", start_seq=int(sub.info.start_seq),
             kind=int(sub.info.memory_kind))

        def next_frame() -> tuple[Any, int, int, Any, int]:
            f = sub.next_frame(a.timeout_ms)
            if gpu:
                data: Any = f.data
            else:
                import ctypes

                import numpy as np

                data = np.ctypeslib.as_array(
                    (ctypes.c_uint8 * f.payload_bytes).from_address(f.data)) \
                    if f.payload_bytes else b""
            return data, int(f.payload_bytes), int(f.cuda_stream or 0), f, int(f.flags)

        def release(f: Any) -> None:
            sub.release(f)
    else:
        # this checkout's package when its extensions are built in place (pip install -e, as
        # ci/setup.sh does), else whichever is installed
        if list((ROOT / "python" / "cuframes").glob("_atomics*.so")):
            sys.path.insert(0, str(ROOT / "python"))
        import cuframes

        sub = _connect_retrying(
            lambda: cuframes.Subscriber(a.key, kinds=("cuda",) if gpu else ("host",)),
            a.timeout_ms / 1000)
        emit(event="attached", via="py", start_seq=int(sub.start_seq))

        def next_frame() -> tuple[Any, int, int, Any, int]:
            f = sub.next_frame(a.timeout_ms)
            if f.payload_bytes == 0:
                return b"", 0, 0, f, int(f.flags)
            if gpu:
                # taken on the frame's own stream, where the checksum runs: the package then
                # has no other stream to order against the frame's ready event and its ACK
                with f.stream:
                    arr = f.array
                return int(arr.data.ptr), int(f.payload_bytes), int(f.stream.ptr), f, \
                    int(f.flags)
            return f.array, int(f.payload_bytes), 0, f, int(f.flags)

        def release(f: Any) -> None:
            f.release()
    k = 0
    t_first = None
    eos = False
    try:
        while k < a.max_frames:
            data, nbytes, stream_ptr, handle, flags = next_frame()
            if t_first is None:
                t_first = time.monotonic()
            if flags & cflib.FRAME_END_OF_STREAM:
                release(handle)
                eos = True
                break
            engine.frame(k, data, nbytes, stream_ptr)
            release(handle)
            k += 1
            if k == a.crash_after:
                os._exit(3)  # a crash, for the tests: no DETACH, no result
        sums = engine.finish(k)
        t_last = time.monotonic()
    finally:
        sub.close()
    emit(event="result", frames=k, eos=eos, t_first=t_first, t_last=t_last, checksums=sums)
    return 0


# ------------------------------------------------------------------------------ orchestrator


class Proc:
    """A child process whose stdout JSON lines are read into a queue by a thread."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path,
                 stdin: bool = False) -> None:
        self.name, self.log = name, log
        self.err = open(log, "w")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  env=env, text=True)
        self.q: queue.Queue = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)  # end of output

    def wait_event(self, name: str, timeout_s: float) -> dict[str, Any]:
        """The next event `name`; RuntimeError on exit, an error, or after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no '{name}' event within {timeout_s:.0f} s")
            try:
                ev = self.q.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                self.p.wait(timeout=30)
                raise RuntimeError(f"{self.name} exited ({self.p.returncode}) before '{name}': "
                                   f"{self.stderr_tail()}")
            if isinstance(ev, dict) and ev.get("event") == name:
                return ev

    def stderr_tail(self, lines: int = 15) -> str:
        self.err.flush()
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:]) or "(no stderr)"

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=30)
        self.err.close()


def run_case(a: argparse.Namespace, case: Case, path: Path, ref: list[str], lib: Path,
             work: Path) -> dict[str, Any]:
    """One case end to end; returns its row for the report (with "error" when it failed)."""
    gpu = a.mode == "gpu"
    key = f"nvdec-{os.getpid()}-{case.stem}"
    env = dict(os.environ, CUFRAMES_SOCKET_DIR=str(work), PYTHONUNBUFFERED="1")
    timeout_ms = int(a.timeout_s * 1000)
    max_frames = len(ref) + 64  # room for a decoder that outputs more than the CPU did
    common = ["--mode", a.mode, "--lib", str(lib), "--key", key, "--timeout-ms", str(timeout_ms),
              "--max-frames", str(max_frames)]
    me = [sys.executable, str(Path(__file__).resolve())]
    kind = "cuda" if gpu else "host"
    engine_a = a.engine_a if gpu else "numpy"
    subs_spec = [(f"ref-{engine_a}", "ref", engine_a),
                 ("torch" if gpu else "py-numpy", a.torch_via if gpu else "py",
                  "torch" if gpu else "numpy")]
    row: dict[str, Any] = {"case": case.name, "codec": case.codec, "width": case.width,
                           "height": case.height, "frames_cpu": len(ref), "file": str(path)}
    procs: list[Proc] = []
    try:
        pub = Proc("publisher", me + ["publish", *common, "--media", str(path),
                                      "--width", str(case.width), "--height", str(case.height),
                                      "--slots", str(a.slots), "--subscribers",
                                      str(len(subs_spec)), "--engine", engine_a],
                   env, work / f"{case.stem}.publisher.log", stdin=True)
        procs.append(pub)
        alone = pub.wait_event("decode_alone", a.timeout_s * 4)
        row["frames_decoder"] = alone["frames"]
        row["decoder_fps"] = alone["frames"] / max(alone["seconds"], 1e-9)
        pub.wait_event("ready", a.timeout_s)
        subs = []
        for name, via, engine in subs_spec:
            crash = [str(n) for who, n in a.crash if who == name][-1:]
            s = Proc(name, me + ["subscribe", *common, "--kind", kind, "--via", via,
                                 "--engine", engine, "--frame-bytes",
                                 str(nv12sum.nv12_bytes(case.width, case.height)),
                                 *(["--crash-after", *crash] if crash else [])],
                     env, work / f"{case.stem}.{name}.log")
            procs.append(s)
            subs.append(s)
        row["subscribers"] = [s.name for s in subs]
        # One subscriber failing does not stop the other: the publisher sees its socket close
        # (or evicts it after the ACK timeout) and goes on, so the run still shows what works.
        results: dict[str, dict[str, Any]] = {}
        errors: dict[str, str] = {}
        for s in subs:
            try:
                s.wait_event("attached", a.timeout_s)
            except RuntimeError as e:
                errors[s.name] = str(e)
        for s in subs:
            if s.name in errors:
                continue
            try:
                results[s.name] = s.wait_event("result", a.timeout_s * 4)
            except RuntimeError as e:
                errors[s.name] = str(e)
                s.stop()  # a hung one must not hold the publisher's slots any longer
        published = pub.wait_event("published", a.timeout_s * 4)
        assert pub.p.stdin is not None
        pub.p.stdin.close()
        pub.wait_event("done", a.timeout_s)
        for p in procs:
            p.p.wait(timeout=a.timeout_s)
            if p.p.returncode != 0 and p.name not in errors:
                errors[p.name] = f"exited {p.p.returncode}: {p.stderr_tail()}"
        row["frames_published"] = published["frames"]
        if results:
            t_end = max(r["t_last"] for r in results.values())
            row["e2e_seconds"] = t_end - published["t0"]
            row["e2e_fps"] = published["frames"] / max(row["e2e_seconds"], 1e-9)
            row["ratio"] = row["e2e_fps"] / row["decoder_fps"] if row["decoder_fps"] else 0.0
        checks = {"pub": published["checksums"]}
        checks.update({name: r["checksums"] for name, r in results.items()})
        row["verified"] = {}
        row["mismatch"] = {}
        for name, sums in checks.items():
            good = sum(1 for x, y in zip(sums, ref) if x == y)
            row["verified"][name] = good
            if good != len(ref) or len(sums) != len(ref):
                first = next((i for i, (x, y) in enumerate(zip(sums, ref)) if x != y), None)
                row["mismatch"][name] = {"frames": len(sums), "first_bad_frame": first,
                                         "got": sums[first] if first is not None else None,
                                         "want": ref[first] if first is not None else None}
        if errors:
            row["error"] = "; ".join(f"{k}: {v}" for k, v in errors.items())
        row["ok"] = not row["mismatch"] and not errors
    except Exception as e:
        row["ok"] = False
        row["error"] = str(e)
    finally:
        for p in procs:
            p.stop()
    return row


def print_table(rows: list[dict[str, Any]], names: list[str]) -> None:
    head = ["case", "frames", "decoder fps", "end-to-end fps", "ratio",
            *[f"verified {n}" for n in names], "result"]
    body = []
    for r in rows:
        ver = r.get("verified", {})
        body.append([r["case"], str(r["frames_cpu"]),
                     f"{r['decoder_fps']:.1f}" if "decoder_fps" in r else "-",
                     f"{r['e2e_fps']:.1f}" if "e2e_fps" in r else "-",
                     f"{r['ratio']:.2f}" if "ratio" in r else "-",
                     *[f"{ver[n]}/{r['frames_cpu']}" if n in ver else "-" for n in names],
                     "SKIP" if r.get("skipped") else "ok" if r["ok"] else "FAIL"])
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for b in body:
        print(line(b))


def orchestrate(a: argparse.Namespace) -> int:
    gpu = a.mode == "gpu"
    wheels = Path(a.wheels)
    build = Path(a.build_dir or os.environ.get("CUFRAMES_BUILD_DIR") or
                 ROOT / "build" / ("gpu" if gpu else "default"))
    cases = [Case(s) for s in (a.case or (DEFAULT_GPU_CASES if gpu else DEFAULT_CPU_CASES))]
    print(f"NVDEC pipeline ({a.mode} mode)", flush=True)
    caps: dict[str, Any] = {}
    probe: dict[str, Any] = {}
    try:
        try:
            lib = cflib.find_library(build)
        except FileNotFoundError as e:
            raise Skip(str(e))
        if gpu and not cflib.Lib(lib).cuda_built():
            raise Skip(f"{lib} was built without the CUDA kind (build the gpu preset)")
        print(f"  libcuframes: {lib}", flush=True)
        # PyAV encodes the inputs and decodes them on the CPU for the reference checksums; a GPU
        # run whose inputs and references are all cached (carried to a runner without PyAV)
        # does not need it.
        cached = gpu and all(
            (Path(a.media_dir) / f"{Case(c).stem}{ext}").exists()
            for c in (a.case or DEFAULT_GPU_CASES) for ext in (".mp4", ".ref.json"))
        if cached and importlib.util.find_spec("av") is None:
            print(f"  PyAV: not needed (inputs and CPU references cached in {a.media_dir})",
                  flush=True)
        else:
            print(f"  PyAV: {ensure_module('av', 'av', wheels)}", flush=True)
            import_here("av")  # this process encodes and decodes on the CPU with it
        if gpu:
            probe = gpu_probe()
            if "cupy_error" in probe or not probe.get("gpus"):
                raise Skip(f"no usable GPU through CuPy: {probe.get('cupy_error', 'no device')}")
            if "torch_error" in probe or not probe.get("torch_cuda"):
                raise Skip(f"PyTorch with CUDA is not available: "
                           f"{probe.get('torch_error', 'torch.cuda.is_available() is False')}")
            print(f"  GPU: {probe['gpu']} (CuPy {probe['cupy']}, PyTorch {probe['torch']})",
                  flush=True)
            engines = probe.get("engines", {})
            errors = probe.get("engine_errors", {})
            if "numpy" not in engines or "torch" not in engines or \
                    len(set(engines.values())) != 1:
                print(f"FAIL: the nv12sum engines cannot checksum or disagree on the same data: "
                      f"{engines} {errors}", flush=True)
                return 1
            if a.engine_a == "auto":
                a.engine_a = "cupy" if "cupy" in engines else "torch"
            if a.engine_a not in engines:
                print(f"FAIL: --engine-a {a.engine_a} does not work here: {errors}", flush=True)
                return 1
            if "cupy" in errors:
                print(f"  note: CuPy cannot run its kernels here ({errors['cupy']}); subscriber "
                      "(a) and the publisher checksum with PyTorch", flush=True)
            print(f"  nv12sum: {', '.join(engines)} agree on a random 4K image "
                  f"({nv12sum.hex64(engines['numpy'])})", flush=True)
            print(f"  PyNvVideoCodec: {ensure_module('PyNvVideoCodec', 'PyNvVideoCodec', wheels)}",
                  flush=True)
            caps = nvdec_probe()
            if not any(isinstance(caps.get(c), dict) for c in ("h264", "hevc")):
                raise Skip(f"NVDEC is not usable here: {caps}")
            print(f"  NVDEC: PyNvVideoCodec {caps.get('version')}, "
                  + ", ".join(f"{c} {_caps_text(caps.get(c), caps.get(c + '_error'))}"
                              for c in ("h264", "hevc")), flush=True)
    except Skip as e:
        print(f"SKIP: NVDEC pipeline: {e}", flush=True)
        return SKIP
    media = Path(a.media_dir)
    rows = []
    names: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="cuframes-nvdec-"))
    try:
        for case in cases:
            print(f"- {case.name}, {case.frames} frames", flush=True)
            why = unsupported(caps.get(case.codec), case) if gpu else None
            if why:
                print(f"  SKIP: {why}", flush=True)
                rows.append({"case": case.name, "frames_cpu": case.frames, "ok": True,
                             "skipped": why})
                continue
            try:
                path, ref = prepare(case, media)
            except Exception as e:  # an encoder missing from this PyAV build, a full disk
                print(f"  FAIL: preparing the input: {e!r}", flush=True)
                rows.append({"case": case.name, "frames_cpu": case.frames, "ok": False,
                             "error": f"preparing the input: {e!r}"})
                continue
            row = run_case(a, case, path, ref, lib, work)
            rows.append(row)
            names = row.get("subscribers", names)
            if not row["ok"]:
                if row.get("error"):
                    print(f"  FAIL: {row['error']}", flush=True)
                if row.get("mismatch"):
                    print(f"  FAIL: checksums differ from the CPU decode: "
                          f"{json.dumps(row['mismatch'])}", flush=True)
                if gpu and a.torch_via == "py" and "torch" in row.get("error", ""):
                    print("  (the torch consumer reads through cuframes for Python; "
                          "--torch-via ref reads through libcuframes instead)", flush=True)
            else:
                print(f"  ok: {row['frames_cpu']} frames verified by the publisher and "
                      f"{', '.join(row['subscribers'])}", flush=True)
    finally:
        if all(r["ok"] for r in rows) and not a.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"  logs kept in {work}", flush=True)
    reports = Path(a.reports)
    reports.mkdir(parents=True, exist_ok=True)
    out = reports / f"nvdec-pipeline{'' if gpu else '-cpu'}.json"
    try:
        import av

        pyav = av.__version__
    except ImportError:
        pyav = "not installed (cached inputs)"
    out.write_text(json.dumps({"mode": a.mode, "slots": a.slots, "torch_via": a.torch_via,
                               "engine_a": a.engine_a if gpu else "numpy",
                               "python": sys.version.split()[0], "pyav": pyav,
                               "gpu": probe, "nvdec": caps, "cases": rows},
                              indent=2) + "\n")
    print(f"report: {out}")
    print()
    print_table(rows, names or [f"ref-{a.engine_a}", "torch"])
    if rows and all(r.get("skipped") for r in rows):
        print("SKIP: NVDEC pipeline: NVDEC can decode none of the cases here", flush=True)
        return SKIP
    return 0 if rows and all(r["ok"] for r in rows) else 1


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "probe":
        return role_probe()
    if argv and argv[0] == "probe-nvdec":
        return role_probe_nvdec()
    if argv and argv[0] in ("publish", "subscribe"):
        role = argv.pop(0)
        p = argparse.ArgumentParser(prog=f"pipeline.py {role}")
        p.add_argument("--mode", choices=["gpu", "cpu"], required=True)
        p.add_argument("--lib", required=True)
        p.add_argument("--key", required=True)
        p.add_argument("--timeout-ms", type=int, default=60000)
        p.add_argument("--max-frames", type=int, required=True)
        if role == "publish":
            p.add_argument("--media", required=True)
            p.add_argument("--width", type=int, required=True)
            p.add_argument("--height", type=int, required=True)
            p.add_argument("--slots", type=int, default=8)
            p.add_argument("--subscribers", type=int, default=2)
            p.add_argument("--engine", choices=["cupy", "torch", "numpy"], required=True)
            return role_publish(p.parse_args(argv))
        p.add_argument("--kind", choices=["cuda", "host"], required=True)
        p.add_argument("--via", choices=["ref", "py"], required=True)
        p.add_argument("--engine", choices=["cupy", "torch", "numpy"], required=True)
        p.add_argument("--frame-bytes", type=int, required=True)
        p.add_argument("--crash-after", type=int, default=-1, help=argparse.SUPPRESS)
        return role_subscribe(p.parse_args(argv))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["gpu", "cpu"], default="gpu",
                   help="gpu: NVDEC, CUDA_IPC, GPU checksums; cpu: the same plumbing on the "
                        "host (default gpu)")
    p.add_argument("--build-dir", help="where libcuframes was built (default "
                   "$CUFRAMES_BUILD_DIR, else build/gpu or build/default)")
    p.add_argument("--case", action="append",
                   help="CODEC:WxH:FRAMES (h264|hevc), repeatable (default: "
                        f"{' '.join(DEFAULT_GPU_CASES)}; cpu: {' '.join(DEFAULT_CPU_CASES)})")
    p.add_argument("--torch-via", choices=["py", "ref"], default="py",
                   help="the PyTorch consumer's subscriber: cuframes for Python (py) or "
                        "libcuframes (ref); default py")
    p.add_argument("--slots", type=int, default=8, help="slot_count of the ring (default 8)")
    p.add_argument("--engine-a", choices=["auto", "cupy", "torch"], default="auto",
                   help="device checksum of subscriber (a) and of the publisher's check: CuPy, "
                        "or PyTorch where CuPy cannot compile kernels (auto, the default)")
    p.add_argument("--timeout-s", type=float, default=60.0,
                   help="bound of each wait (decoding passes get 4x; default 60)")
    p.add_argument("--media-dir", default=str(ROOT / "build" / "nvdec-media"),
                   help="cache of encoded inputs and their CPU reference checksums")
    p.add_argument("--wheels", default=str(ROOT / ".gpu" / "wheels"),
                   help="wheels to install PyAV and PyNvVideoCodec from (default .gpu/wheels)")
    p.add_argument("--reports", default=str(ROOT / "reports"))
    p.add_argument("--keep", action="store_true", help="keep the processes' logs")
    # tests: NAME:N makes subscriber NAME crash after N frames
    p.add_argument("--crash", action="append", default=[], help=argparse.SUPPRESS,
                   type=lambda v: (v.split(":")[0], int(v.split(":")[1])))
    return orchestrate(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
