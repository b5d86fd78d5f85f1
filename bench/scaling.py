#!/usr/bin/env python3
"""bench/scaling.py: how cuframes' cost grows with the work on one host: N publishers, each with M
subscribers, every publisher paced at F frames per second (1080p NV12 slots by default).

    python3 bench/scaling.py [--kind host|cuda] [--n 1,2,4,8,16,32] [--m 1,2,4,8]
                             [--fps 30,240] [--seconds 3] [--width 1920 --height 1080]
                             [--worker PATH] [--label TEXT] [--max-processes P]
                             [--json OUT] [--png OUT]

Each point starts N publishers and N*M subscribers of cuframes-scaling-worker (bench/
scaling_worker.cpp), lets every publisher commit F frames per second for --seconds from one
shared start time, and reports:
  - CPU per delivered frame: CPU time of every process of the point (getrusage, user + system) /
    frames delivered to subscribers; and the publishers' CPU per published frame;
  - delivery latency p50 / p99 / max: subscriber's receive time - the publisher's commit time (one
    CLOCK_MONOTONIC for all processes);
  - missed deadlines: frames committed more than one period late, and frames delivered more than
    one period after their commit;
  - the load average and the number of cores, so a reader can tell where the host saturated.
A flat CPU per delivered frame across the grid means the design scales; where it rises, the
table says which resource ran out (cores: processes > cores and deadlines missed).
--label names the conditions the caller set up (ci/gpu.sh: "mps=off", "mps=on"); it goes into the
JSON, the table's heading and the plot's titles. --max-processes skips the points that would start
more processes than P, each with a table row that says so (MPS serves at most 48 client processes
per GPU: a larger point would fail for that reason alone).
Writes JSON (and a PNG plot when matplotlib is importable; otherwise says why not).
"""
from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_worker(given: str) -> str:
    if given:
        return given
    for d in ("build/gpu", "build/default", "build/release"):
        p = os.path.join(ROOT, d, "bench", "cuframes-scaling-worker")
        if os.access(p, os.X_OK):
            return p
    sys.exit("scaling.py: no cuframes-scaling-worker (build: cmake --build --preset default "
             "--target cuframes-scaling-worker) and no --worker")


def read_line(p: subprocess.Popen, want: str, deadline: float) -> dict:
    """The next JSON line of `p` naming event `want` (bounded by `deadline`)."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no '{want}' line in time")
        r, _, _ = select.select([p.stdout], [], [], left)
        if not r:
            continue
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited (status {p.wait()}) before '{want}'")
        ev = json.loads(line)
        if ev.get("event") == "error":
            raise RuntimeError(f"worker error: {ev}")
        if ev.get("event") == want:
            return ev


def pct(xs: list[int], q: float) -> float:
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))] / 1000.0 if xs else float("nan")


def run_point(worker: str, kind: str, n: int, m: int, fps: float, seconds: float, width: int,
              height: int) -> dict:
    frames = max(1, int(round(fps * seconds)))
    env = dict(os.environ)
    tag = f"sc{os.getpid()}-{n}x{m}-{int(fps)}"
    pubs, subs = [], []
    common = ["--kind", kind, "--frames", str(frames)]
    try:
        for i in range(n):
            pubs.append(subprocess.Popen(
                [worker, "pub", "--key", f"{tag}-{i}", "--width", str(width), "--height",
                 str(height), "--fps", str(fps), "--subs", str(m), *common],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env))
        deadline = time.monotonic() + 60 + 2 * n
        for p in pubs:
            read_line(p, "ready", deadline)
        for i in range(n):
            for _ in range(m):
                subs.append(subprocess.Popen([worker, "sub", "--key", f"{tag}-{i}", *common],
                                             stdout=subprocess.PIPE, text=True, env=env))
        deadline = time.monotonic() + 60 + 2 * n * m
        for p in pubs:
            read_line(p, "active", deadline)
        load0 = os.getloadavg()[0]
        t0 = time.monotonic_ns() + 100_000_000  # every publisher starts at the same instant
        for p in pubs:
            p.stdin.write(f"go {t0}\n")
            p.stdin.flush()
        deadline = time.monotonic() + seconds * 4 + 60
        sub_res = [read_line(p, "result", deadline) for p in subs]
        for p in pubs:
            p.stdin.close()
        pub_res = [read_line(p, "result", deadline) for p in pubs]
        load1 = os.getloadavg()[0]
    finally:
        for p in pubs + subs:
            if p.poll() is None:
                p.kill()
            p.wait()
    lat = sorted(x for r in sub_res for x in r["latency_ns"])
    delivered = sum(r["frames"] for r in sub_res)
    period_ns = 1e9 / fps
    cpu_all = sum(r["cpu_ns"] for r in sub_res + pub_res)
    return {
        "kind": kind, "n": n, "m": m, "fps": fps, "frames_per_publisher": frames,
        "processes": n * (m + 1), "cores": os.cpu_count(), "load_before": load0,
        "load_after": load1,
        "delivered": delivered, "wrong": sum(r["wrong"] for r in sub_res),
        "cpu_per_delivered_us": cpu_all / max(1, delivered) / 1000.0,
        "pub_cpu_per_frame_us": sum(r["cpu_ns"] for r in pub_res) / max(1, n * frames) / 1000.0,
        "latency_us": {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99),
                       "max": lat[-1] / 1000.0 if lat else float("nan")},
        "late_commits": sum(r["late"] for r in pub_res),
        "late_deliveries": sum(1 for x in lat if x > period_ns),
    }


def plot(points: list[dict], png: str, label: str = "") -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        print(f"scaling.py: no plot ({e}); the JSON has every figure", file=sys.stderr)
        return
    fpss = sorted({p["fps"] for p in points})
    fig, axes = plt.subplots(2, len(fpss), figsize=(6 * len(fpss), 8), squeeze=False)
    for col, fps in enumerate(fpss):
        for m in sorted({p["m"] for p in points}):
            pts = sorted((p for p in points if p["fps"] == fps and p["m"] == m),
                         key=lambda p: p["n"])
            ns = [p["n"] for p in pts]
            axes[0][col].plot(ns, [p["cpu_per_delivered_us"] for p in pts], marker="o",
                              label=f"M={m}")
            axes[1][col].plot(ns, [p["latency_us"]["p99"] for p in pts], marker="o",
                              label=f"M={m}")
        for row, what in enumerate(("CPU per delivered frame (us)", "delivery latency p99 (us)")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("publishers N")
            ax.set_ylabel(what)
            ax.set_title(f"{points[0]['kind']}, {fps:g} fps, {os.cpu_count()} cores"
                         f"{', ' + label if label else ''}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"scaling.py: plot in {png}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", default="host", choices=("host", "cuda"))
    ap.add_argument("--n", default="1,2,4,8,16,32")
    ap.add_argument("--m", default="1,2,4,8")
    ap.add_argument("--fps", default="30,240")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--width", type=int, default=1920)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--worker", default="")
    ap.add_argument("--label", default="")
    ap.add_argument("--max-processes", type=int, default=0)
    ap.add_argument("--json", default=os.path.join(ROOT, "reports", "scaling.json"))
    ap.add_argument("--png", default="")
    a = ap.parse_args()
    worker = find_worker(a.worker)
    points = []
    print(f"N publishers x M subscribers, {a.kind}, {a.width}x{a.height} NV12, {a.seconds:g} s "
          f"per point, {os.cpu_count()} cores{', ' + a.label if a.label else ''}")
    print("| fps | N | M | processes | CPU/delivered frame (us) | publisher CPU/frame (us) "
          "| latency p50 / p99 / max (us) | late commits | late deliveries | load |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    failed = 0
    for fps in [float(x) for x in a.fps.split(",")]:
        for m in [int(x) for x in a.m.split(",")]:
            for n in [int(x) for x in a.n.split(",")]:
                if a.max_processes and n * (m + 1) > a.max_processes:
                    print(f"| {fps:g} | {n} | {m} | {n * (m + 1)} | skipped: more than "
                          f"--max-processes {a.max_processes} |||||")
                    continue
                try:
                    p = run_point(worker, a.kind, n, m, fps, a.seconds, a.width, a.height)
                except (RuntimeError, TimeoutError) as e:
                    print(f"| {fps:g} | {n} | {m} | - | FAILED: {e} |||||")
                    failed += 1
                    continue
                points.append(p)
                lat = p["latency_us"]
                print(f"| {fps:g} | {n} | {m} | {p['processes']} "
                      f"| {p['cpu_per_delivered_us']:.1f} | {p['pub_cpu_per_frame_us']:.1f} "
                      f"| {lat['p50']:.0f} / {lat['p99']:.0f} / {lat['max']:.0f} "
                      f"| {p['late_commits']} | {p['late_deliveries']} "
                      f"| {p['load_after']:.1f} |", flush=True)
                if p["wrong"]:
                    print(f"scaling.py: {p['wrong']} frames with wrong contents", file=sys.stderr)
                    failed += 1
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump({"width": a.width, "height": a.height, "seconds": a.seconds,
                   "label": a.label, "points": points}, fh, indent=1)
    print(f"scaling.py: {len(points)} points in {a.json}")
    if a.png and points:
        plot(points, a.png, a.label)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
