"""Tests of bench/report.py: floors, targets, and a miss explained by a physics floor (beyond=)."""
import json
import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parent / "report.py"


def run(name, counter, label=""):
    return {"name": name, "run_name": name, "run_type": "iteration", "iterations": 10,
            "real_time": 1.0, "cpu_time": 1.0, "time_unit": "ns", "label": label,
            "publisher_cpu_ns": counter}


def fanout(tmp_path, cost64, physics64, physics1=100.0, with_base=True):
    label = "metric=publisher_cpu_ns floor=BM_Cost/subs:1 target=x<=2 beyond=BM_Floor_P/subs:64"
    if with_base:
        label += " beyond_base=BM_Floor_P/subs:1"
    runs = [run("BM_Cost/subs:1", 1000.0, "metric=publisher_cpu_ns"),
            run("BM_Cost/subs:64", cost64, label)]
    if physics64 is not None:
        runs += [run("BM_Floor_P/subs:64", physics64, "metric=publisher_cpu_ns"),
                 run("BM_Floor_P/subs:1", physics1, "metric=publisher_cpu_ns")]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"context": {}, "benchmarks": runs}))
    return subprocess.run([sys.executable, str(REPORT), "--strict", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_met_target_passes(tmp_path):
    r = fanout(tmp_path, 1900.0, 5000.0)
    assert r.returncode == 0, r.stdout
    assert "pass" in r.stdout and "MISS" not in r.stdout


def test_miss_within_the_physics_floor_is_explained(tmp_path):
    # 9000 - (7100 - 100) = 2000 = 2.0x the 1-subscriber cost: explained, not a miss.
    r = fanout(tmp_path, 9000.0, 7100.0)
    assert r.returncode == 0, r.stdout
    assert "MISS, explained" in r.stdout
    assert "2.00x" in r.stdout and "target(s) missed" not in r.stdout


def test_miss_beyond_the_physics_floor_stays_a_miss(tmp_path):
    # 9000 - (6000 - 100) = 3100 = 3.1x: still missed.
    r = fanout(tmp_path, 9000.0, 6000.0)
    assert r.returncode == 1, r.stdout
    assert "3.10x" in r.stdout and "1 target(s) missed" in r.stdout


def test_beyond_base_is_subtracted_from_the_floor(tmp_path):
    # Without beyond_base the whole 7100 is subtracted (1900 = 1.9x); with the base of 100,
    # 2000 is left: the base matters to the verdict's figure.
    r = fanout(tmp_path, 9000.0, 7100.0, with_base=False)
    assert r.returncode == 0 and "1.90x" in r.stdout, r.stdout


def test_missing_physics_floor_is_a_miss(tmp_path):
    r = fanout(tmp_path, 9000.0, None)
    assert r.returncode == 1, r.stdout
    assert "missing" in r.stdout


def test_scaled_term_uses_the_runs_counter(tmp_path):
    # beyond=<floor>*<counter>: 1000 per sleeper x 6 sleepers = 6000 beyond; 9000 - 6000 = 3000
    # = 3.0x, a miss; with 7 sleepers 2000 = 2.0x, explained.
    for sleepers, code, figure in ((6.0, 1, "3.00x"), (7.0, 0, "2.00x")):
        label = ("metric=publisher_cpu_ns floor=BM_Cost/subs:1 target=x<=2 "
                 "beyond=BM_Floor_W/subs:64*extra_sleepers")
        cost64 = dict(run("BM_Cost/subs:64", 9000.0, label), extra_sleepers=sleepers)
        runs = [run("BM_Cost/subs:1", 1000.0, "metric=publisher_cpu_ns"), cost64,
                run("BM_Floor_W/subs:64", 1000.0, "metric=publisher_cpu_ns")]
        path = tmp_path / "scaled.json"
        path.write_text(json.dumps({"context": {}, "benchmarks": runs}))
        r = subprocess.run([sys.executable, str(REPORT), "--strict", str(path)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == code and figure in r.stdout, r.stdout


def test_base_term_uses_the_floor_runs_counter(tmp_path):
    # beyond=W*wakes (this run: 2 wakes) and beyond_base=W*wakes (the 1-subscriber run's: 0 or
    # 1): 9000 - (2000 - 0) = 7000 = 7.0x against 9000 - (2000 - 1000) = 8000 = 8.0x. The base's
    # own counter, not the 64-subscriber run's (which would give 9000 - 0 = 9.0x).
    for base_wakes, figure in ((0.0, "7.00x"), (1.0, "8.00x")):
        label = ("metric=publisher_cpu_ns floor=BM_Cost/subs:1 target=x<=2 "
                 "beyond=BM_Floor_W/subs:64*wakes beyond_base=BM_Floor_W/subs:64*wakes")
        runs = [dict(run("BM_Cost/subs:1", 1000.0, "metric=publisher_cpu_ns"), wakes=base_wakes),
                dict(run("BM_Cost/subs:64", 9000.0, label), wakes=2.0),
                run("BM_Floor_W/subs:64", 1000.0, "metric=publisher_cpu_ns")]
        path = tmp_path / "base.json"
        path.write_text(json.dumps({"context": {}, "benchmarks": runs}))
        r = subprocess.run([sys.executable, str(REPORT), "--strict", str(path)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and figure in r.stdout, r.stdout


def ring(tmp_path, rate, protocol_rate, copy_rate=9e6, bound="BM_Floor_Proto/200"):
    """A 200 B ring run with its copy floor and (unless protocol_rate is None) its protocol floor."""
    def rated(name, ips, label=""):
        r = run(name, 0.0, label)
        r["items_per_second"] = ips
        return r
    label = ("floor=BM_Floor_Copy/200 metric=items_per_second target=items_per_second>=5e6 "
             f"target=ratio>=0.5 bound={bound}")
    runs = [rated("BM_Floor_Copy/200", copy_rate), rated("BM_Ring/200", rate, label)]
    if protocol_rate is not None:
        runs.append(rated("BM_Floor_Proto/200", protocol_rate, "metric=items_per_second"))
    path = tmp_path / "ring.json"
    path.write_text(json.dumps({"context": {}, "benchmarks": runs}))
    return subprocess.run([sys.executable, str(REPORT), "--strict", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_rate_miss_under_a_protocol_floor_that_misses_too_is_explained(tmp_path):
    # 3.6 M/s against a protocol floor of 4.5 M/s (0.80 of it, >= 0.7): the spec's own
    # accesses cannot reach 5 M/s on this host.
    r = ring(tmp_path, 3.6e6, 4.5e6, copy_rate=6e6)
    assert r.returncode == 0, r.stdout
    assert "MISS, explained" in r.stdout and "0.80 of it" in r.stdout


def test_rate_miss_under_a_protocol_floor_that_meets_the_target_stays_a_miss(tmp_path):
    # The protocol floor reaches 6 M/s: the implementation, not the protocol, misses 5 M/s.
    r = ring(tmp_path, 4.8e6, 6e6)
    assert r.returncode == 1 and "1 target(s) missed" in r.stdout, r.stdout


def test_rate_miss_far_below_the_protocol_floor_stays_a_miss(tmp_path):
    # 2 M/s is 0.44 of a 4.5 M/s protocol floor: under the default 0.7, and under an explicit 0.5.
    assert ring(tmp_path, 2e6, 4.5e6).returncode == 1
    r = ring(tmp_path, 2e6, 4.5e6, bound="BM_Floor_Proto/200@0.5")
    assert r.returncode == 1 and "reaches 0.5" in r.stdout, r.stdout


def test_rate_miss_without_its_protocol_floor_is_a_miss(tmp_path):
    r = ring(tmp_path, 3.6e6, None)
    assert r.returncode == 1 and "BM_Floor_Proto/200 missing" in r.stdout, r.stdout
