"""Real H.264/HEVC through the packet ring (issue 16 items 1-3, PROTOCOL.md section 10).

Streams are encoded at test time from FFmpeg's testsrc2 (libx264, libx265; GOP 30, B-frames),
published by `cuframes-video publish` and recorded by `cuframes-video record` in other
processes. The recordings are decoded with PyAV and every decoded frame's md5 is compared with a
direct decode of the source file's own packets from the keyframe where the recording starts
(segment by segment when a reader was lapped). Processes synchronise on the JSON lines they
print (ready, gate, paused, eos) with bounded waits; nothing sleeps to synchronise.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import random
import shutil
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("CUFRAMES_BUILD_DIR", ROOT / "build" / "default"))
TOOL = BUILD / "video" / "cuframes-video"
GOP = 30
WAIT_S = 30.0  # bound on any single wait for an event (a loaded 2-core runner is slow)

try:
    import av  # PyAV: decodes the recordings and the sources
except ImportError:  # pragma: no cover - reported as a skip below
    av = None


def _skip_reason() -> str | None:
    if shutil.which("ffmpeg") is None:
        return "ffmpeg is not on PATH (ci/setup.sh installs Debian's ffmpeg)"
    if not TOOL.exists():
        return (f"{TOOL} is not built: CMake found no FFmpeg development libraries "
                "(libavformat-dev libavcodec-dev libavutil-dev pkg-config)")
    if av is None:
        return "PyAV (`av`, ci/requirements.txt) is not importable"
    encoders = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True,
                              text=True, check=False).stdout
    for enc in ("libx264", "libx265"):
        if enc not in encoders:
            return f"this ffmpeg has no {enc} encoder"
    return None


_REASON = _skip_reason()
if _REASON is not None:
    print(f"video tests skipped: {_REASON}")
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


# ------------------------------------------------------------------------------ media


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   timeout=120)


def _x264(size: str, frames: int, out: Path, extra_vf: str | None = None,
          fmt: list[str] | None = None) -> None:
    vf = ["-vf", extra_vf] if extra_vf else []
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-frames:v", str(frames), *vf,
            "-c:v", "libx264", "-preset", "veryfast", "-g", str(GOP), "-keyint_min", str(GOP),
            "-sc_threshold", "0", "-bf", "2", "-pix_fmt", "yuv420p", *(fmt or []), str(out))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    m = {"h264": d / "h264.mp4", "hevc": d / "hevc.mkv", "switch": d / "switch.h264",
         "oversized": d / "oversized.mp4", "hevc_open": d / "open_gop.hevc"}
    # H.264 in mp4 (avcC, converted by h264_mp4toannexb), closed GOP 30, 2 B-frames.
    _x264("320x240", 150, m["h264"])
    # HEVC in mkv (hvcC, converted by hevc_mp4toannexb), closed GOP 30, 2 B-frames.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "150",
            "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
            f"keyint={GOP}:min-keyint={GOP}:scenecut=0:open-gop=0:bframes=2:log-level=error",
            "-pix_fmt", "yuv420p", str(m["hevc"]))
    # HEVC as an Annex B elementary stream with open GOPs (x265's default): CRA keyframes whose
    # leading RASL pictures reference the previous GOP, so a reader that starts at a CRA drops
    # them, exactly as a direct decode from that CRA does.
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-frames:v", "150",
            "-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
            f"keyint={GOP}:min-keyint={GOP}:scenecut=0:open-gop=1:bframes=2:log-level=error",
            "-pix_fmt", "yuv420p", str(m["hevc_open"]))
    # Two resolution switches: three Annex B streams (in-band SPS/PPS at each IDR) back to back.
    parts = [(d / "a.h264", "320x240", 60), (d / "b.h264", "176x144", 60),
             (d / "c.h264", "256x192", 30)]
    for path, size, frames in parts:
        _x264(size, frames, path)
    m["switch"].write_bytes(b"".join(path.read_bytes() for path, _, _ in parts))
    # One huge non-key access unit: frame 45 is pure noise (keyframes are 0, 30, 60).
    _x264("320x240", 90, m["oversized"], extra_vf="noise=alls=100:allf=t:enable='eq(n\\,45)'")
    return m


def _source_packets(path: Path):
    """The video packets of `path` in demux order (PyAV), without the flush packets."""
    container = av.open(str(path))
    stream = container.streams.video[0]
    packets = [p for p in container.demux(stream) if p.size > 0]
    return container, stream, packets


def _frame_md5(frame) -> str:
    """md5 of a decoded 8-bit frame's visible bytes (plane by plane, row by row), tagged with
    its size so that a resolution switch shows."""
    h = hashlib.md5()
    h.update(f"{frame.width}x{frame.height}:{frame.format.name}".encode())
    for plane in frame.planes:
        data = bytes(plane)
        for y in range(plane.height):
            start = y * plane.line_size
            h.update(data[start:start + plane.width])
    return h.hexdigest()


def _direct_decode(path: Path, segments: list[tuple[int, int]]) -> list[str]:
    """Frame md5s of decoding `path`'s own packets, each (first, last) index range (0-based,
    inclusive) by a fresh decoder that is flushed at its end."""
    container, stream, packets = _source_packets(path)
    out: list[str] = []
    try:
        for first, last in segments:
            ctx = av.CodecContext.create(stream.codec_context.name, "r")
            if stream.codec_context.extradata:
                ctx.extradata = stream.codec_context.extradata
            for p in packets[first:last + 1]:
                out.extend(_frame_md5(f) for f in ctx.decode(p))
            out.extend(_frame_md5(f) for f in ctx.decode(None))
    finally:
        container.close()
    return out


def _decode_recording(path: Path, codec: str) -> list[str]:
    container = av.open(str(path), format=codec)
    try:
        return [_frame_md5(f) for f in container.decode(video=0)]
    finally:
        container.close()


def _pts_90k(packet) -> int:
    v = Fraction(packet.pts) * packet.time_base * 90000
    return int(v) if v.denominator == 1 else int(v + Fraction(1, 2))  # av_rescale_q rounding


# ------------------------------------------------------------------------------ processes


class Proc:
    """A cuframes-video process whose stdout JSON lines are read by a thread; `expect` waits
    (bounded) for an event."""

    def __init__(self, *args: str) -> None:
        self.argv = [str(TOOL), *args]
        self.p = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)
        self.events: list[dict] = []
        self._q: queue.Queue = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self._stderr.extend(self.p.stderr), daemon=True).start()
        self._seen = 0

    def _read(self) -> None:
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                ev = {"event": "unparsed", "line": line}
            self.events.append(ev)
            self._q.put(ev)
        self._q.put(None)

    def describe(self) -> str:
        return (f"{' '.join(self.argv)}\n  rc={self.p.poll()}\n  events={self.events[-12:]}\n"
                f"  stderr={''.join(self._stderr)[-2000:]}")

    def expect(self, event: str, pred=lambda e: True, timeout: float = WAIT_S,
               errors_ok: bool = False) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            # Events already read (another expect may have consumed them from the queue).
            while self._seen < len(self.events):
                ev = self.events[self._seen]
                self._seen += 1
                if ev.get("event") == event and pred(ev):
                    return ev
                if ev.get("event") == "error" and event != "error" and not errors_ok:
                    raise AssertionError(f"error event while waiting for {event}:\n"
                                         + self.describe())
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event} event within {timeout} s:\n" + self.describe())
            try:
                item = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if item is None:  # end of output: every event is in self.events by now
                self._q.put(None)  # for the next expect
                if self._seen >= len(self.events):
                    raise AssertionError(f"exited before {event}:\n" + self.describe())

    def send_line(self) -> None:
        self.p.stdin.write("\n")
        self.p.stdin.flush()

    def close_stdin(self) -> None:
        self.p.stdin.close()

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise AssertionError(f"did not exit within {timeout} s:\n" + self.describe())
        return rc

    def all(self, event: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == event]

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(timeout=10)


@pytest.fixture
def procs():
    started: list[Proc] = []

    def start(*args: str) -> Proc:
        p = Proc(*args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()


def _key(name: str) -> str:
    return f"video-{os.getpid()}-{name}"


def _finish(proc: Proc) -> dict:
    rc = proc.wait()
    # The reader thread has seen EOF once the process exited and stdout closed.
    done = proc.expect("done") if proc.argv[1] == "record" else None
    assert rc == 0, proc.describe()
    return done


def _segments(rec: Proc) -> list[tuple[int, int]]:
    """The recorder's segments as 0-based source packet ranges (seq n is access unit n - 1:
    the publisher publishes every access unit in demux order, and none here is refused)."""
    return [(s["first_seq"] - 1, s["last_seq"] - 1) for s in rec.all("segment")]


def _check_recording(out: Path, codec: str, source: Path, rec: Proc) -> list[tuple[int, int]]:
    segs = _segments(rec)
    assert segs, rec.describe()
    _, _, packets = _source_packets(source)
    for first, _ in segs:
        assert packets[first].is_keyframe, f"segment starts at non-keyframe {first}"
    got = _decode_recording(out, codec)
    want = _direct_decode(source, segs)
    assert len(got) == len(want), (len(got), len(want), segs)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, f"frame {i} of {out.name} differs from the direct decode ({segs})"
    return segs


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("name,codec", [("h264", "h264"), ("hevc", "hevc"),
                                        ("hevc_open", "hevc")])
def test_late_joiners_decode_from_their_first_keyframe(media, procs, tmp_path, name, codec):
    """PKT-JOIN-01/02, PKT-READ-06: subscribers that join at seeded random points start at a
    keyframe, and their frames equal a direct decode of the file from that keyframe on."""
    src = media[name]
    _, _, packets = _source_packets(src)
    total = len(packets)
    keys = [i for i, p in enumerate(packets) if p.is_keyframe]
    assert len(keys) == total // GOP, keys
    key = _key(f"join-{name}")
    pub = procs("publish", "--key", key, str(src), "--realtime", "--speed", "3",
                "--wait-subscribers", "1", "--hold", "--progress")
    pub.expect("ready")
    outs = [tmp_path / f"rec0.{codec}"]
    recs = [procs("record", "--key", key, str(outs[0]), "--until-eos")]
    recs[0].expect("ready")
    rng = random.Random(20261201 + len(name))
    targets = sorted(rng.sample(range(3, total - 15), 3))
    for i, target in enumerate(targets, start=1):
        pub.expect("packet", lambda e, t=target: e["seq"] >= t)
        outs.append(tmp_path / f"rec{i}.{codec}")
        recs.append(procs("record", "--key", key, str(outs[i]), "--until-eos"))
        recs[i].expect("ready")
    eos = pub.expect("eos")
    assert eos["packets"] == total and eos["oversized"] == 0 and eos["generations"] == 1
    pub.close_stdin()
    assert pub.wait() == 0, pub.describe()
    for i, (rec, out) in enumerate(zip(recs, outs)):
        done = _finish(rec)
        assert done["overruns"] == 0 and done["segments"] == 1, rec.describe()
        segs = _check_recording(out, codec, src, rec)
        first, last = segs[0]
        assert last == total - 1, "a joiner lost the tail of the stream"
        if i == 0:
            assert first == 0
        else:
            # It attached after packet `target` was published: it starts no earlier than the
            # keyframe before that packet (the latest keyframe at its join).
            floor = max(k for k in keys if k <= targets[i - 1] - 1)
            assert first >= floor, (first, targets[i - 1])


def test_lapped_reader_resyncs_at_a_keyframe(media, procs, tmp_path):
    """PKT-READ-04/05, PKT-API-01: a reader that stalls while a small ring laps it gets
    PACKET_OVERRUN once, resumes at a keyframe and decodes cleanly from there."""
    src = media["h264"]
    _, _, packets = _source_packets(src)
    ring = 32768
    key = _key("lap")
    pub = procs("publish", "--key", key, str(src), "--ring-bytes", str(ring),
                "--max-packet-bytes", "16000", "--realtime", "--speed", "2",
                "--wait-subscribers", "1", "--gate-at", "76", "--hold", "--progress")
    pub.expect("ready")
    out = tmp_path / "lapped.h264"
    rec = procs("record", "--key", key, str(out), "--until-eos", "--pause-after", "10")
    rec.expect("paused", lambda e: e["seq"] == 10)
    gate = pub.expect("gate")
    assert gate["published"] == 75
    # The lap is certain: far more than the ring's capacity went in after the reader's packet.
    after = sum(e["size"] + 64 for e in pub.all("packet") if e["seq"] > 10)
    assert after > 2 * ring, after
    rec.send_line()  # the reader goes on: PACKET_OVERRUN at once, the publisher still held
    assert rec.expect("overrun")["after_seq"] == 10
    pub.send_line()  # the publisher goes on (its remaining packets, paced)
    pub.expect("eos")
    pub.close_stdin()
    assert pub.wait() == 0, pub.describe()
    done = _finish(rec)
    # One lap is certain; on a loaded machine the paced publisher may lap the reader again, and
    # every segment is then checked the same way.
    assert done["overruns"] >= 1 and done["segments"] >= 2, rec.describe()
    segs = _check_recording(out, "h264", src, rec)
    assert segs[0] == (0, 9)
    # The resume point is the latest keyframe the ring still held, or the next one.
    assert 60 <= segs[1][0] <= 90, segs
    assert segs[-1][1] == len(packets) - 1


def test_resolution_switches_bump_the_generation(media, procs, tmp_path):
    """PKT-WRITE-05, PKT-READ-08/09: new parameters (another resolution) are a new generation
    (AU 61: 176x144, AU 121: 256x192). Readers decode every frame exactly whether they joined
    before the switches (rec1), between them (rec2), attached early but read first after a
    switch (rec4: PKT-READ-08 starts it at the keyframe of the current generation), or fell two
    generations behind (rec3: the ring holds one generation, so the keyframe of generation 2 is
    started from its own in-band parameter sets)."""
    src = media["switch"]
    _, _, packets = _source_packets(src)
    assert len(packets) == 150
    key = _key("switch")
    pub = procs("publish", "--key", key, str(src), "--wait-subscribers", "3", "--gate-at",
                "50,76,110,130", "--hold", "--progress")
    pub.expect("ready")
    out = {n: tmp_path / f"rec{n}.h264" for n in (1, 2, 3, 4)}
    rec1 = procs("record", "--key", key, str(out[1]), "--until-eos", "--progress")
    rec1.expect("ready")
    rec3 = procs("record", "--key", key, str(out[3]), "--until-eos", "--pause-after", "10")
    rec3.expect("ready")
    rec4 = procs("record", "--key", key, str(out[4]), "--until-eos", "--start-gate",
                 "--progress")
    rec4.expect("gate")
    pub.expect("gate", lambda e: e["au"] == 50)
    # rec1 has read up to the gate before the first switch is published.
    rec1.expect("packet", lambda e: e["seq"] == 49)
    pub.send_line()
    pub.expect("gate", lambda e: e["au"] == 76)
    rec2 = procs("record", "--key", key, str(out[2]), "--until-eos", "--progress")
    rec2.expect("ready")
    rec4.send_line()  # its first read comes after generation 2 was published
    pub.send_line()
    pub.expect("gate", lambda e: e["au"] == 110)
    # Every reader but rec3 has met generation 2 while the ring still held it.
    for rec in (rec1, rec2, rec4):
        rec.expect("packet", lambda e: e["seq"] == 109)
    pub.send_line()
    pub.expect("gate", lambda e: e["au"] == 130)
    rec3.expect("paused")
    rec3.send_line()  # generation 3 is published: rec3 is two generations behind
    pub.send_line()
    pub.expect("eos")
    pub.close_stdin()
    assert pub.wait() == 0, pub.describe()
    params = pub.all("params")
    assert [(p["generation"], p["before_au"]) for p in params] == [(1, 1), (2, 61), (3, 121)]
    done = {1: _finish(rec1), 2: _finish(rec2), 3: _finish(rec3), 4: _finish(rec4)}
    assert all(d["params_lost"] == 0 for d in done.values()), done
    gens = lambda rec: [(e["generation"], e["seq"], e["source"]) for e in rec.all("params")]
    assert gens(rec1) == [(1, 1, "ring"), (2, 61, "ring"), (3, 121, "ring")]
    assert gens(rec2) == gens(rec4) == [(2, 61, "ring"), (3, 121, "ring")]
    assert gens(rec3) == [(1, 1, "ring"), (2, 61, "in-band"), (3, 121, "ring")]
    segs = {n: _check_recording(out[n], "h264", src, rec)
            for n, rec in ((1, rec1), (2, rec2), (3, rec3), (4, rec4))}
    assert segs[1] == segs[3] == [(0, 149)] and segs[2] == segs[4] == [(60, 149)], segs
    sizes = [(f.width, f.height) for f in av.open(str(out[1]), format="h264").decode(video=0)]
    assert sizes == [(320, 240)] * 60 + [(176, 144)] * 60 + [(256, 192)] * 30


def test_oversized_access_unit_is_refused_and_nothing_else_is_lost(media, procs, tmp_path):
    """PKT-WRITE-01: an access unit over max_packet_bytes is OVERSIZED, reported, and every
    other packet arrives, in order, with its pts and size."""
    src = media["oversized"]
    _, _, packets = _source_packets(src)
    sizes = [p.size for p in packets]
    big = max(range(len(sizes)), key=sizes.__getitem__)
    second = max(s for i, s in enumerate(sizes) if i != big)
    assert not packets[big].is_keyframe and sizes[big] > second + 2000, (big, sizes[big], second)
    limit = second + (sizes[big] - second) // 2
    ring = 1 << 20  # the whole stream fits: the reader is never lapped
    key = _key("oversized")
    pub = procs("publish", "--key", key, str(src), "--max-packet-bytes", str(limit),
                "--ring-bytes", str(ring), "--wait-subscribers", "1", "--hold", "--progress")
    pub.expect("ready")
    out = tmp_path / "oversized.h264"
    rec = procs("record", "--key", key, str(out), "--until-eos", "--progress")
    rec.expect("ready")
    eos = pub.expect("eos", errors_ok=True)
    pub.close_stdin()
    assert pub.wait() == 0, pub.describe()
    errors = pub.all("error")
    assert len(errors) == 1 and errors[0]["name"] == "OVERSIZED", errors
    assert errors[0]["au"] == big + 1 and errors[0]["size"] >= sizes[big], errors
    assert eos["packets"] == len(packets) - 1 and eos["oversized"] == 1
    done = _finish(rec)
    assert done["overruns"] == 0, rec.describe()
    got = rec.all("packet")
    kept = [p for i, p in enumerate(packets) if i != big]
    assert [e["seq"] for e in got] == list(range(1, len(kept) + 1))
    assert [e["pts"] for e in got] == [_pts_90k(p) for p in kept]
    assert [e["keyframe"] for e in got] == [p.is_keyframe for p in kept]
    # Non-key access units are the same size in mp4 (4-byte lengths) and Annex B (4-byte start
    # codes): their payloads arrived whole.
    assert [e["size"] for e, p in zip(got, kept) if not p.is_keyframe] == \
        [p.size for p in kept if not p.is_keyframe]
    # Decoding from the first keyframe after the refused unit is clean again.
    rec_frames = _decode_recording(out, "h264")
    want_tail = _direct_decode(src, [(60, len(packets) - 1)])
    assert rec_frames[-len(want_tail):] == want_tail
