#!/usr/bin/env python3
"""bench/py_cuda_handoff.py: a CUDA frame handed between two Python processes, through cuframes
for Python (python/, CUDA_IPC) and through torch.multiprocessing, in the same run.

    python3 bench/py_cuda_handoff.py [--frames N] [--sizes B,B,...] [--label TEXT] [--json OUT]

What users run today to share a GPU tensor between Python processes is torch.multiprocessing: the
tensor travels through a queue as a CUDA IPC handle plus an IPC event, and the producer keeps it
alive until the consumer says it is done. cuframes does the same job through a slot ring in
shared memory. Both sides here do the same work per frame, one frame in flight at a time:
  producer: fills a device buffer (synchronised, not timed), takes t0 = CLOCK_MONOTONIC, hands the
            buffer over (cuframes: publish(), one device-to-device copy into the slot; torch:
            queue.put of the tensor), then waits until the consumer released it (cuframes: every
            ACK in, wait_released(); torch: a reply on a second queue): round trip = now - t0.
  consumer: receives, reads the buffer's last byte on the device (which waits for the producer's
            write: the ready event, torch's IPC event) and takes t1: one-way = t1 - t0 (the
            clock is system-wide), then releases.
Both consumers are separate processes started with spawn, never fork (RES-CUDA-04). Prints a
table (p50/p99 of one-way and round trip, cuframes / torch ratios) and writes JSON. Exit 77 with
the reason when CuPy, PyTorch or a GPU is missing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
WARMUP = 20


def pct(xs: list[int], q: float) -> float:
    """The q-quantile in microseconds (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))] / 1000.0


def summary(one_way: list[int], round_trip: list[int]) -> dict:
    return {"frames": len(one_way),
            "one_way_us": {"p50": pct(one_way, 0.5), "p99": pct(one_way, 0.99),
                           "mean": statistics.fmean(one_way) / 1000.0},
            "round_trip_us": {"p50": pct(round_trip, 0.5), "p99": pct(round_trip, 0.99),
                              "mean": statistics.fmean(round_trip) / 1000.0}}


# ------------------------------------------------------------------------------- cuframes
def cuframes_consumer(key: str, frames: int) -> None:
    from cuframes import Subscriber

    lat: list[int] = []
    with Subscriber(key, kinds=("cuda",)) as sub:
        print(json.dumps({"event": "attached"}), flush=True)
        for _ in range(frames):
            with sub.next_frame(30000) as f:
                arr = f.array
                int(arr[arr.size - 1])  # on the device, after the ready event
                lat.append(time.monotonic_ns() - f.timestamp_ns)
    print(json.dumps({"event": "done", "one_way_ns": lat[WARMUP:]}), flush=True)


def run_cuframes(size: int, frames: int) -> dict:
    key = f"pybench-{os.getpid()}-{size}"
    from cuframes import CUDA_IPC, Publisher
    import cupy

    rt: list[int] = []
    child = None
    try:
        # The publisher listens before the consumer starts (a subscriber that finds no socket
        # fails at once with NOT_FOUND). subprocess starts the child with fork + exec at once,
        # never running Python in a forked copy of this CUDA process (RES-CUDA-04).
        with Publisher(key, memory_kind=CUDA_IPC, slot_count=2, slot_bytes=size,
                       ack_timeout_ms=30000) as pub:
            child = subprocess.Popen([sys.executable, __file__, "--role", "cuframes-consumer",
                                      "--key", key, "--frames", str(frames + WARMUP)],
                                     stdout=subprocess.PIPE, text=True)
            if not pub.wait_active(1, 60000):
                raise SystemExit("py_cuda_handoff: the cuframes consumer did not attach")
            src = cupy.zeros(size, dtype=cupy.uint8)
            for i in range(frames + WARMUP):
                src.fill(i % 251)
                cupy.cuda.get_current_stream().synchronize()
                t0 = time.monotonic_ns()
                pub.wait_released(pub.publish(src, timestamp_ns=t0))
                if i >= WARMUP:
                    rt.append(time.monotonic_ns() - t0)
            out, _ = child.communicate(timeout=120)
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
    done = [json.loads(x) for x in out.splitlines() if '"done"' in x]
    if child.returncode != 0 or not done:
        raise SystemExit(f"py_cuda_handoff: the cuframes consumer failed (exit {child.returncode})")
    return summary(done[0]["one_way_ns"], rt)


# ---------------------------------------------------------------------------------- torch
def torch_consumer(q, done, frames: int) -> None:  # runs in a spawned process
    import torch

    lat = []
    for _ in range(frames):
        t, t0 = q.get()
        int(t[-1].item())  # on the device, after torch's IPC event
        lat.append(time.monotonic_ns() - t0)
        del t
        done.put(None)
    torch.cuda.synchronize()
    done.put(lat[WARMUP:])


def run_torch(size: int, frames: int) -> dict:
    import torch
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q, done = ctx.Queue(), ctx.Queue()
    proc = ctx.Process(target=torch_consumer, args=(q, done, frames + WARMUP))
    proc.start()
    bufs = [torch.zeros(size, dtype=torch.uint8, device="cuda") for _ in range(2)]
    rt = []
    try:
        for i in range(frames + WARMUP):
            b = bufs[i % 2]
            b.fill_(i % 251)
            torch.cuda.synchronize()
            t0 = time.monotonic_ns()
            q.put((b, t0))
            done.get(timeout=60)
            if i >= WARMUP:
                rt.append(time.monotonic_ns() - t0)
        lat = done.get(timeout=60)
        proc.join(timeout=60)
    finally:
        if proc.is_alive():
            proc.kill()
    return summary(lat, rt)


# ----------------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--sizes", default="4096,12441600",
                    help="payload bytes (default: 4 KiB and one 3840x2160 NV12 frame)")
    ap.add_argument("--label", default="", help="e.g. mps=off, stored in the JSON")
    ap.add_argument("--json", default="", help="write the results here")
    ap.add_argument("--role", default="", help=argparse.SUPPRESS)
    ap.add_argument("--key", default="", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "cuframes-consumer":
        cuframes_consumer(a.key, a.frames)
        return 0
    # Probe in a child: this process must not initialise CUDA before it starts the consumers.
    probe = subprocess.run([sys.executable, "-c", "import cupy, torch\n"
                            "assert torch.cuda.is_available(), 'torch sees no GPU'\n"
                            "cupy.cuda.runtime.getDeviceCount()"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["?"])[-1]
        print(f"py_cuda_handoff: SKIP: needs CuPy, PyTorch and a GPU: {why}", file=sys.stderr)
        return 77
    rows = []
    for size in [int(x) for x in a.sizes.split(",")]:
        cf = run_cuframes(size, a.frames)
        th = run_torch(size, a.frames)
        rows.append({"bytes": size, "cuframes": cf, "torch": th})
    print(f"\nCUDA handoff between two Python processes ({a.label or 'no label'}, "
          f"{a.frames} frames after {WARMUP} warm-up, p50 / p99 in us)")
    print("| bytes | cuframes one-way | torch.mp one-way | ratio p50 | cuframes round trip "
          "| torch.mp round trip | ratio p50 |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        c, t = r["cuframes"], r["torch"]
        print(f"| {r['bytes']} | {c['one_way_us']['p50']:.1f} / {c['one_way_us']['p99']:.1f} "
              f"| {t['one_way_us']['p50']:.1f} / {t['one_way_us']['p99']:.1f} "
              f"| {c['one_way_us']['p50'] / t['one_way_us']['p50']:.2f}x "
              f"| {c['round_trip_us']['p50']:.1f} / {c['round_trip_us']['p99']:.1f} "
              f"| {t['round_trip_us']['p50']:.1f} / {t['round_trip_us']['p99']:.1f} "
              f"| {c['round_trip_us']['p50'] / t['round_trip_us']['p50']:.2f}x |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"label": a.label, "frames": a.frames, "rows": rows}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
