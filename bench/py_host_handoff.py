#!/usr/bin/env python3
"""bench/py_host_handoff.py: a host-memory frame handed between two Python processes, through
cuframes for Python (python/, HOST kind) and through iceoryx2's Python binding, in the same run.

    python3 bench/py_host_handoff.py [--frames N] [--rounds R] [--sizes B,B,...] [--label TEXT]
                                     [--json OUT]

iceoryx2 (PyPI `iceoryx2`, Eclipse) is the maintained zero-copy IPC library users pick to move
frames between processes on one host: publish-subscribe over shared memory with loaned samples,
and an event service for blocking waits. Both sides here are driven from Python, so the ratio
compares the protocols as a Python user meets them (cuframes' is Python over a small C
extension for atomics and futexes; iceoryx2's is Rust behind a Python binding).

One frame in flight at a time, the same steps on both sides:
  producer: loans the next buffer (cuframes: `with pub.frame() as buf`, the slot itself;
            iceoryx2: `publisher.loan_slice_uninit(size)`), writes the frame into it in place
            (a copy of a prepared source frame whose last byte is the frame index mod 251), then
            takes t0 = CLOCK_MONOTONIC and writes t0 into payload bytes 0..7. Timed from there:
            publish (cuframes: frame meta, seq release, futex wake; iceoryx2: `send()`, then
            `notify()` on an event service), and the wait until the consumer released the buffer
            (cuframes: `wait_released(seq)`, futex on the ACK word; iceoryx2: the consumer
            drops the sample and notifies a second event service, the producer blocks in
            `listener.timed_wait`): round trip = now - t0.
  consumer: blocks for the frame (cuframes: `next_frame()`, futex; iceoryx2: `receive()`, and
            `listener.timed_wait` when nothing is there yet), takes a zero-copy view of the
            payload (cuframes: `frame.buffer`; iceoryx2: `sample.payload().as_memory_view()`),
            reads t0 from bytes 0..7 and the last byte, takes t1: one-way = t1 - t0 (the clock is
            system-wide); then releases (cuframes: ACK; iceoryx2: drop, notify) and checks the
            last byte (a mismatch is counted in "wrong").
No busy polling on either side: every wait is a blocking kernel wait (futex; iceoryx2's event
service). The loan and the in-place write are outside the timed span; `cycle_us` (wall time per
frame of the producer's whole loop, loan and write included) is reported beside it.

Consumers are separate processes (subprocess, fresh interpreters), ready when they print a JSON
line. Rounds alternate the order (cuframes first, then iceoryx2 first, ...) and each round has
its own warm-up; samples are pooled. Prints a table (p50/p99 of one-way and round trip,
cuframes / iceoryx2 ratios) and writes JSON. Exit 77 with the reason when iceoryx2, NumPy or
cuframes for Python is not importable.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import queue
import statistics
import struct
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
PY_SRC = os.path.join(HERE, "..", "python")
# This checkout's cuframes when its C extensions are built in place (pip install -e python, as
# ci/setup.sh does), else the installed one: the rule of python/tests/conftest.py.
if glob.glob(os.path.join(PY_SRC, "cuframes", "_atomics*.so")):
    sys.path.insert(0, PY_SRC)
WARMUP = 20
WAIT_MS = 30000  # any single wait longer than this is a failure, not a latency
SLICE_MS = 50    # iceoryx2 waits in slices of this, to check the deadline between them
NV12_1080P = 1920 * 1080 * 3 // 2


def pct(xs: list[int], q: float) -> float:
    """The q-quantile in microseconds (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] / 1000.0


def stats(xs: list[int]) -> dict:
    return {"p50": pct(xs, 0.5), "p99": pct(xs, 0.99), "mean": statistics.fmean(xs) / 1000.0}


def source_frame(size: int) -> Any:
    """The frame the producer copies into each loan: a fixed pattern (its last byte is
    overwritten with the frame index)."""
    import numpy as np

    return (np.arange(size, dtype=np.uint32) * 2654435761 >> 24).astype(np.uint8)


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# ------------------------------------------------------------------------------- consumers
def cuframes_consumer(key: str, frames: int) -> None:
    from cuframes import Subscriber

    lat: list[int] = []
    wrong = 0
    with Subscriber(key, kinds=("host",)) as sub:
        emit(event="attached")
        for i in range(frames):
            with sub.next_frame(WAIT_MS) as f:
                mv = f.buffer
                (t0,) = struct.unpack_from("<Q", mv, 0)
                last = mv[len(mv) - 1]
                t1 = time.monotonic_ns()
                mv.release()  # before the ACK, so that release() need not detach the pages
            lat.append(t1 - t0)
            wrong += last != i % 251
    emit(event="done", one_way_ns=lat[WARMUP:], wrong=wrong)


def ice_services(node: Any, name: str, size: int) -> tuple[Any, Any, Any]:
    """The three iceoryx2 services of one run: the frames (a byte slice of at most `size`), the
    producer's "frame sent" event and the consumer's "frame released" event."""
    import ctypes

    import iceoryx2 as iox2

    frames = (node.service_builder(iox2.ServiceName.new(f"{name}/frames"))
              .publish_subscribe(iox2.Slice[ctypes.c_uint8])
              .max_publishers(1).max_subscribers(1).history_size(0)
              .subscriber_max_buffer_size(2).open_or_create())
    sent = node.service_builder(iox2.ServiceName.new(f"{name}/sent")).event().open_or_create()
    released = (node.service_builder(iox2.ServiceName.new(f"{name}/released")).event()
                .open_or_create())
    return frames, sent, released


def ice_wait(listener: Any, what: str, peer: Any = None) -> None:
    """Blocks until `listener` has at least one event; SystemExit after WAIT_MS or, when
    `peer` (a Popen) is given, as soon as that process has exited."""
    import iceoryx2 as iox2

    deadline = time.monotonic() + WAIT_MS / 1000.0
    while not listener.timed_wait(iox2.Duration.from_millis(SLICE_MS)):
        if peer is not None and peer.poll() is not None:
            raise SystemExit(f"py_host_handoff: iceoryx2: the consumer exited "
                             f"(status {peer.returncode}) while the producer waited for {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"py_host_handoff: iceoryx2: no {what} event in {WAIT_MS} ms")


def iceoryx2_consumer(name: str, size: int, frames: int) -> None:
    import iceoryx2 as iox2

    iox2.set_log_level(iox2.LogLevel.Error)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    svc, sent, released = ice_services(node, name, size)
    sub = svc.subscriber_builder().create()
    listener = sent.listener_builder().create()
    notifier = released.notifier_builder().create()
    emit(event="attached")
    lat: list[int] = []
    wrong = 0
    for i in range(frames):
        while (sample := sub.receive()) is None:
            ice_wait(listener, "frame")
        mv = sample.payload().as_memory_view().cast("B")  # ctypes' "<B" does not index
        (t0,) = struct.unpack_from("<Q", mv, 0)
        last = mv[len(mv) - 1]
        t1 = time.monotonic_ns()
        mv.release()
        sample.delete()  # back to the publisher's pool
        notifier.notify()
        lat.append(t1 - t0)
        wrong += last != i % 251
    emit(event="done", one_way_ns=lat[WARMUP:], wrong=wrong)
    for port in (notifier, listener, sub):
        port.delete()


# ------------------------------------------------------------------------------- producers
class Child:
    """A consumer process whose stdout JSON lines are read by a thread, so that every wait for
    one has a deadline."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *args],
                                     stdout=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def event(self, name: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"py_host_handoff: consumer: no '{name}' in {timeout_s} s")
            if line is None:
                raise SystemExit(f"py_host_handoff: consumer exited (status {self.proc.wait()}) "
                                 f"before '{name}'")
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("event") == name:
                return ev

    def finish(self) -> None:
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            rc = None
        if rc != 0:
            self.kill()
            raise SystemExit(f"py_host_handoff: consumer failed (exit {rc})")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_cuframes(size: int, frames: int, tag: str) -> dict:
    import numpy as np
    from cuframes import HOST, Publisher

    key = f"pyhost-{os.getpid()}-{tag}"
    src = source_frame(size)
    rt: list[int] = []
    cyc: list[int] = []
    child = None
    try:
        with Publisher(key, memory_kind=HOST, slot_count=2, max_subscribers=1, slot_bytes=size,
                       ack_timeout_ms=WAIT_MS) as pub:
            child = Child(["--role", "cuframes-consumer", "--key", key,
                           "--frames", str(frames + WARMUP)], dict(os.environ))
            child.event("attached", 60)
            if not pub.wait_active(1, 60000):
                raise SystemExit("py_host_handoff: the cuframes consumer did not attach")
            for i in range(frames + WARMUP):
                c0 = time.monotonic_ns()
                with pub.frame(size) as buf:
                    src[size - 1] = i % 251
                    np.copyto(buf, src)
                    t0 = time.monotonic_ns()
                    struct.pack_into("<Q", buf, 0, t0)
                del buf  # the segment must not stay exported past the block
                pub.wait_released(pub.write_seq)
                t2 = time.monotonic_ns()
                if i >= WARMUP:
                    rt.append(t2 - t0)
                    cyc.append(t2 - c0)
            done = child.event("done", 120)
            child.finish()
    finally:
        if child is not None:
            child.kill()
    return {"one_way_ns": done["one_way_ns"], "round_trip_ns": rt, "cycle_ns": cyc,
            "wrong": done["wrong"]}


def run_iceoryx2(size: int, frames: int, tag: str) -> dict:
    import iceoryx2 as iox2
    import numpy as np

    iox2.set_log_level(iox2.LogLevel.Error)
    name = f"cuframes-bench/pyhost-{os.getpid()}-{tag}"
    src = source_frame(size)
    node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
    svc, sent, released = ice_services(node, name, size)
    pub = svc.publisher_builder().initial_max_slice_len(size).max_loaned_samples(1).create()
    notifier = sent.notifier_builder().create()
    listener = released.listener_builder().create()
    rt: list[int] = []
    cyc: list[int] = []
    child = None
    try:
        child = Child(["--role", "iceoryx2-consumer", "--key", name, "--size", str(size),
                       "--frames", str(frames + WARMUP)], dict(os.environ))
        child.event("attached", 60)
        for i in range(frames + WARMUP):
            c0 = time.monotonic_ns()
            sample = pub.loan_slice_uninit(size)
            mv = sample.payload().as_memory_view().cast("B")
            src[size - 1] = i % 251
            np.copyto(np.frombuffer(mv, dtype=np.uint8), src)
            t0 = time.monotonic_ns()
            struct.pack_into("<Q", mv, 0, t0)
            mv.release()
            sample.assume_init().send()
            notifier.notify()
            ice_wait(listener, "released", child.proc)
            t2 = time.monotonic_ns()
            if i >= WARMUP:
                rt.append(t2 - t0)
                cyc.append(t2 - c0)
        done = child.event("done", 120)
        child.finish()
    finally:
        if child is not None:
            child.kill()
        for port in (listener, notifier, pub):
            port.delete()
    return {"one_way_ns": done["one_way_ns"], "round_trip_ns": rt, "cycle_ns": cyc,
            "wrong": done["wrong"]}


def summary(runs: list[dict]) -> dict:
    ow = [x for r in runs for x in r["one_way_ns"]]
    rt = [x for r in runs for x in r["round_trip_ns"]]
    cy = [x for r in runs for x in r["cycle_ns"]]
    return {"frames": len(ow), "wrong": sum(r["wrong"] for r in runs),
            "one_way_us": stats(ow), "round_trip_us": stats(rt), "cycle_us": stats(cy)}


# ------------------------------------------------------------------------------------ main
def missing() -> str:
    """Why the comparison cannot run here, or "" when it can."""
    for mod, hint in (("numpy", "numpy"),
                      ("iceoryx2", "pip install iceoryx2 (ci/requirements.txt)"),
                      ("cuframes._atomics", "pip install -e python (ci/setup.sh)")):
        try:
            __import__(mod)
        except Exception as e:  # noqa: BLE001 - any import failure is a reason to skip
            return f"{mod} is not importable ({type(e).__name__}: {e}); {hint}"
    return ""


def machine() -> dict:
    import importlib.metadata as md

    import cuframes

    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh
                        if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"host": platform.node(), "cpu": cpu, "cpus": os.cpu_count(),
            "python": platform.python_version(), "iceoryx2": md.version("iceoryx2"),
            "cuframes": cuframes.__version__, "nice": os.nice(0),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=2000,
                    help="measured frames per library and size, over all rounds")
    ap.add_argument("--rounds", type=int, default=2,
                    help="runs per library and size, alternating which goes first")
    ap.add_argument("--sizes", default=f"4096,{NV12_1080P}",
                    help="payload bytes (default: 4 KiB and one 1920x1080 NV12 frame)")
    ap.add_argument("--label", default="", help="a note stored in the JSON (e.g. the machine)")
    ap.add_argument("--json", default="", help="write the results here")
    ap.add_argument("--role", default="", help=argparse.SUPPRESS)
    ap.add_argument("--key", default="", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "cuframes-consumer":
        cuframes_consumer(a.key, a.frames)
        return 0
    if a.role == "iceoryx2-consumer":
        iceoryx2_consumer(a.key, a.size, a.frames)
        return 0
    why = missing()
    if why:
        print(f"py_host_handoff: SKIP: {why}", file=sys.stderr)
        return 77
    sizes = [int(x) for x in a.sizes.split(",")]
    if a.frames < 1 or a.rounds < 1 or any(s < 9 for s in sizes):
        ap.error("--frames and --rounds must be >= 1 and every size >= 9 bytes")
    per_round = [a.frames // a.rounds + (r < a.frames % a.rounds) for r in range(a.rounds)]
    rows = []
    for size in sizes:
        runs: dict[str, list[dict]] = {"cuframes": [], "iceoryx2": []}
        for r, n in enumerate(per_round):
            if n == 0:
                continue
            order = ["cuframes", "iceoryx2"] if r % 2 == 0 else ["iceoryx2", "cuframes"]
            for lib in order:
                fn = run_cuframes if lib == "cuframes" else run_iceoryx2
                runs[lib].append(fn(size, n, f"{size}-{r}"))
        cf, ix = summary(runs["cuframes"]), summary(runs["iceoryx2"])
        ratio = {f"{m}_{q}": cf[f"{m}_us"][q] / ix[f"{m}_us"][q]
                 for m in ("one_way", "round_trip") for q in ("p50", "p99")}
        rows.append({"bytes": size, "cuframes": cf, "iceoryx2": ix, "ratio": ratio})
    print(f"\nHost frame handoff between two Python processes ({a.label or 'no label'}; "
          f"{a.frames} frames per cell after {WARMUP} warm-up per round, {a.rounds} rounds; "
          "p50 / p99 in us; ratio = cuframes / iceoryx2)")
    print("| bytes | cuframes one-way | iceoryx2 one-way | ratio p50 / p99 | cuframes round trip "
          "| iceoryx2 round trip | ratio p50 / p99 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        c, x, q = row["cuframes"], row["iceoryx2"], row["ratio"]
        print(f"| {row['bytes']} | {c['one_way_us']['p50']:.1f} / {c['one_way_us']['p99']:.1f} "
              f"| {x['one_way_us']['p50']:.1f} / {x['one_way_us']['p99']:.1f} "
              f"| {q['one_way_p50']:.2f}x / {q['one_way_p99']:.2f}x "
              f"| {c['round_trip_us']['p50']:.1f} / {c['round_trip_us']['p99']:.1f} "
              f"| {x['round_trip_us']['p50']:.1f} / {x['round_trip_us']['p99']:.1f} "
              f"| {q['round_trip_p50']:.2f}x / {q['round_trip_p99']:.2f}x |")
    print("producer cycle per frame (loan + in-place write + round trip), mean us: "
          + ", ".join(f"{r['bytes']} B: cuframes {r['cuframes']['cycle_us']['mean']:.1f}, "
                      f"iceoryx2 {r['iceoryx2']['cycle_us']['mean']:.1f}" for r in rows))
    bad = [f"{r['bytes']} B {lib}" for r in rows for lib in ("cuframes", "iceoryx2")
           if r[lib]["wrong"]]
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as fh:
            json.dump({"label": a.label, "frames": a.frames, "rounds": a.rounds,
                       "warmup": WARMUP, "machine": machine(), "rows": rows}, fh, indent=1)
    if bad:
        print(f"py_host_handoff: FAIL: consumers saw wrong bytes: {', '.join(bad)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
