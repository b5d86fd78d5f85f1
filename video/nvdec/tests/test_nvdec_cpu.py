"""The NVDEC pipeline's parts that run without a GPU (video/nvdec/, issue 16 item 4):

- nv12sum: the vectorised checksum equals its one-byte-at-a-time definition, with weights
  pinned to literal values, and it sees a single changed byte and swapped U/V;
- the CPU reference's NV12: our interleaving of a PyAV yuv420p frame equals FFmpeg's own
  yuv420p -> nv12 conversion (swscale), byte for byte;
- cflib: every offset and size of the ctypes structs equals what a C compiler makes of
  reference/include/cuframes/cuframes.h;
- the whole pipeline in --mode cpu (PyAV decode, HOST ring, libcuframes and cuframes-for-Python
  subscribers, NumPy checksums): every frame verified; and a corrupted reference checksum makes
  it fail, naming the frame.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
NVDEC = HERE.parent
ROOT = NVDEC.parents[1]
sys.path.insert(0, str(NVDEC))

import cflib  # noqa: E402
import nv12sum  # noqa: E402

BUILD = Path(os.environ.get("CUFRAMES_BUILD_DIR", ROOT / "build" / "default"))

try:
    import av
except ImportError:  # reported as skips below
    av = None
try:
    import numpy as np
except ImportError:
    np = None

needs_numpy = pytest.mark.skipif(np is None, reason="NumPy is not importable")
needs_av = pytest.mark.skipif(av is None, reason="PyAV (`av`, ci/requirements.txt) is not "
                              "importable")


# ------------------------------------------------------------------------------ nv12sum


def test_weights_are_the_documented_ones():
    # literal values of (((i * 2654435761) mod 2^32) >> 8) + 1, computed by hand
    assert nv12sum.weight(0) == 1
    assert nv12sum.weight(1) == 10368890
    assert nv12sum.weight(2) == 3960564  # 5308871522 mod 2^32 = 1013904226, >> 8 = 3960563
    assert nv12sum.weight(1 << 32) == 1          # i * MULT is a multiple of 2^32
    assert all(1 <= nv12sum.weight(i) <= 1 << 24 for i in range(0, 10**6, 9973))


def test_hex64():
    assert nv12sum.hex64(0) == "0000000000000000"
    assert nv12sum.hex64(0xABC) == "0000000000000abc"
    assert nv12sum.reference_sum(b"\x02\x03") == 2 * 1 + 3 * 10368890


@needs_numpy
@pytest.mark.parametrize("n", [1, 2, 7, 6 * 4, 176 * 144 * 3 // 2, 320 * 240 * 3 // 2])
def test_numpy_sum_matches_the_definition(n):
    rng = random.Random(n)
    data = bytes(rng.randrange(256) for _ in range(n))
    assert nv12sum.NumpySum()(data) == nv12sum.reference_sum(data)


@needs_numpy
def test_numpy_sum_of_the_largest_values_does_not_wrap():
    # 4K NV12 of 0xff: exact (a Python int) and below 2^63
    n = nv12sum.nv12_bytes(3840, 2160)
    s = nv12sum.NumpySum()
    got = s(np.full(n, 255, dtype=np.uint8))
    want = 255 * int(s.weights(n).astype(object).sum())
    assert got == want < 1 << 63


@needs_numpy
def test_sum_sees_one_changed_byte_and_swapped_chroma():
    w, h = 64, 32
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, nv12sum.nv12_bytes(w, h), dtype=np.uint8)
    s = nv12sum.NumpySum()
    base = s(img)
    for i in (0, w * h - 1, w * h, img.size - 1):
        other = img.copy()
        other[i] ^= 1
        assert s(other) != base, i
    swapped = img.copy()
    uv = swapped[w * h:].reshape(-1, 2)
    swapped[w * h:] = uv[:, ::-1].reshape(-1)
    assert s(swapped) != base


def test_nv12_sizes():
    assert nv12sum.nv12_bytes(1920, 1080) == 3110400
    for w, h in ((0, 2), (3, 2), (2, 5), (-2, 2)):
        with pytest.raises(ValueError):
            nv12sum.nv12_bytes(w, h)


# ------------------------------------------------------------------------------ CPU reference


def _testsrc_frames(width, height, n):
    graph = av.filter.Graph()
    src = graph.add("testsrc2", f"size={width}x{height}:rate=25")
    fmt = graph.add("format", "pix_fmts=yuv420p")
    sink = graph.add("buffersink")
    src.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    return [sink.pull() for _ in range(n)]


@needs_av
@needs_numpy
@pytest.mark.parametrize("size", [(352, 288), (320, 240), (66, 34)])
def test_nv12_from_av_equals_swscale(size):
    w, h = size
    for frame in _testsrc_frames(w, h, 3):
        ours = nv12sum.nv12_from_av(frame)
        theirs = frame.reformat(format="nv12")
        assert nv12sum.nv12_from_av(theirs) == ours  # nv12 input: rows copied, no interleave
        y = np.frombuffer(theirs.planes[0], np.uint8).reshape(-1, theirs.planes[0].line_size)
        uv = np.frombuffer(theirs.planes[1], np.uint8).reshape(-1, theirs.planes[1].line_size)
        assert len(ours) == nv12sum.nv12_bytes(w, h)
        assert ours[:w * h] == y[:h, :w].tobytes()
        assert ours[w * h:] == uv[:h // 2, :w].tobytes()


@needs_av
def test_nv12_from_av_rejects_other_formats():
    frame = _testsrc_frames(64, 32, 1)[0].reformat(format="rgb24")
    with pytest.raises(ValueError, match="rgb24"):
        nv12sum.nv12_from_av(frame)


# ------------------------------------------------------------------------------ cflib ABI


def test_ctypes_structs_match_the_header(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to lay out cuframes.h")
    lines = ['#include <stddef.h>', '#include <stdio.h>', '#include "cuframes/cuframes.h"',
             "int main(void) {"]
    for cname, cls in cflib.STRUCTS.items():
        lines.append(f'  printf("{cname} sizeof %zu\\n", sizeof({cname}));')
        for field, _ in cls._fields_:
            lines.append(f'  printf("{cname} {field} %zu\\n", offsetof({cname}, {field}));')
    lines += ["  return 0;", "}"]
    src = tmp_path / "probe.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "probe"
    subprocess.run([cc, "-std=c99", "-Wall", "-Werror", "-I", str(ROOT / "reference" / "include"),
                    str(src), "-o", str(exe)], check=True, timeout=120)
    got = {}
    for line in subprocess.run([str(exe)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        name, field, value = line.split()
        got[(name, field)] = int(value)
    for cname, cls in cflib.STRUCTS.items():
        assert got[(cname, "sizeof")] == __import__("ctypes").sizeof(cls), cname
        for field, _ in cls._fields_:
            assert got[(cname, field)] == getattr(cls, field).offset, f"{cname}.{field}"
    # every field of the header is mirrored: the sizes agree, so nothing is missing at the end,
    # and the offsets agree, so nothing is missing in between


# ------------------------------------------------------------------------------ the pipeline


def _pipeline_skip_reason():
    if av is None or np is None:
        return "PyAV or NumPy is not importable"
    try:
        cflib.find_library(BUILD)
    except FileNotFoundError as e:
        return str(e)
    return None


def _run_pipeline(tmp, *args):
    """pipeline.py --mode cpu; each CODEC:WxH:N argument becomes a --case, others pass as is."""
    argv = [sys.executable, str(NVDEC / "pipeline.py"), "--mode", "cpu", "--build-dir",
            str(BUILD), "--media-dir", str(tmp / "media"), "--reports", str(tmp / "reports"),
            "--timeout-s", "60"]
    for c in args:
        argv += ["--case", c] if c.count(":") == 2 else [c]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    print(r.stdout[-4000:], r.stderr[-4000:])
    report = tmp / "reports" / "nvdec-pipeline-cpu.json"
    return r, json.loads(report.read_text()) if report.exists() else None


def test_pipeline_cpu_mode_verifies_every_frame_and_catches_a_wrong_one(tmp_path):
    reason = _pipeline_skip_reason()
    if reason:
        pytest.skip(reason)
    r, report = _run_pipeline(tmp_path, "h264:320x240:36", "hevc:192x128:12")
    assert r.returncode == 0
    rows = report["cases"]
    assert [row["case"] for row in rows] == ["h264 320x240", "hevc 192x128"]
    for row, n in zip(rows, (36, 12)):
        assert row["ok"] and row["frames_cpu"] == n and row["frames_published"] == n
        assert row["verified"] == {"pub": n, "ref-numpy": n, "py-numpy": n}
        assert row["decoder_fps"] > 0 and row["e2e_fps"] > 0
    table = [[c.strip() for c in line.strip("| ").split("|")]
             for line in r.stdout.strip().splitlines()[-2:]]
    assert [(t[0], t[1], t[-1]) for t in table] == [("h264 320x240", "36", "ok"),
                                                    ("hevc 192x128", "12", "ok")]

    # A reference that disagrees with frame 7 (cached next to the media): every side fails
    # there, and the run fails.
    (ref_file,) = (tmp_path / "media").glob("h264-320x240-36*.ref.json")
    ref = json.loads(ref_file.read_text())
    good = ref["checksums"][7]
    ref["checksums"][7] = nv12sum.hex64(int(good, 16) + 1)
    ref_file.write_text(json.dumps(ref))
    r, report = _run_pipeline(tmp_path, "h264:320x240:36")
    assert r.returncode == 1
    row = report["cases"][0]
    assert not row["ok"]
    assert row["verified"] == {"pub": 35, "ref-numpy": 35, "py-numpy": 35}
    for side in ("pub", "ref-numpy", "py-numpy"):
        assert row["mismatch"][side]["first_bad_frame"] == 7
        assert row["mismatch"][side]["got"] == good
    last = [c.strip() for c in r.stdout.strip().splitlines()[-1].strip("| ").split("|")]
    assert last[0] == "h264 320x240" and last[-3:] == ["35/36", "35/36", "FAIL"]


@needs_av
@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_encoded_inputs_have_gops_and_b_frames(tmp_path, codec):
    # The inputs must be what a real stream is: keyframes every 30 frames, reordered B-frames
    # (testsrc2 marks its frames I, which the encoders would otherwise obey: all-intra).
    import pipeline

    out = tmp_path / f"{codec}.mp4"
    pipeline.encode(pipeline.Case(f"{codec}:128x96:64"), out)
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        packets = [p for p in c.demux(s) if p.size]
    assert len(packets) == 64
    assert [i for i, p in enumerate(packets) if p.is_keyframe] == [0, 30, 60]
    assert any(b.pts < a.pts for a, b in zip(packets, packets[1:])), "no B-frame reordering"


def test_pipeline_reports_the_other_subscriber_when_one_crashes(tmp_path):
    # One subscriber dying mid-stream (no DETACH) must not hide what the other verified: the
    # publisher goes on without it and the run fails naming it.
    reason = _pipeline_skip_reason()
    if reason:
        pytest.skip(reason)
    r, report = _run_pipeline(tmp_path, "h264:128x96:40", "--crash", "py-numpy:5")
    assert r.returncode == 1
    row = report["cases"][0]
    assert not row["ok"]
    assert "py-numpy" in row["error"] and "exited (3)" in row["error"]
    assert row["verified"] == {"pub": 40, "ref-numpy": 40}
    assert row["frames_published"] == 40 and row["e2e_fps"] > 0
