"""A short seeded chaos soak (interop/soak/soak.py) inside ci/test.sh: 16 subscribers and a
publisher, about 40 s of kills, stops, restarts and fault points, every invariant checked.
ci/soak.sh runs the long one."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import soak  # noqa: E402

SEED = 20261201
MINUTES = 0.6


def test_short_seeded_soak(tmp_path):
    report = tmp_path / "soak.json"
    rc = soak.main([str(MINUTES), "--seed", str(SEED), "--subscribers", "16", "--report",
                    str(report)])
    r = json.loads(report.read_text())
    assert rc == 0 and r["verdict"] == "PASS", r["violation"]
    assert r["events_executed"] == r["events_survived"]
    assert sum(r["events_executed"].values()) == r["events_scheduled"] >= 10
    assert r["frames_verified"] > 1000 and r["packets_verified"] > 1000
    assert r["fault_points_reached"], "no fault point was reached"
    assert r["publishers"] > 1, "the publisher was never replaced"
    # the same seed gives the same schedule
    points = [p for p, _ in soak.fault_points()]
    assert r["schedule"] == soak.make_schedule(SEED, MINUTES * 60, 16, 2, 2.5, points)
