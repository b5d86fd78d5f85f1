"""bench/scaling.py's worker and aggregation on one small point: every frame delivered with the
right contents, the figures present and sane. Runs in ci/test.sh (pytest bench/); the full grid
is a measurement, run by hand or by ci/gpu.sh."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(os.environ.get("CUFRAMES_BUILD_DIR", os.path.join(ROOT, "build", "default")),
                      "bench", "cuframes-scaling-worker")


@pytest.mark.skipif(not os.access(WORKER, os.X_OK),
                    reason=f"{WORKER} not built (CUFRAMES_BENCH=OFF?)")
def test_one_point_delivers_every_frame(tmp_path):
    out = tmp_path / "scaling.json"
    env = {**os.environ, "CUFRAMES_SOCKET_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "scaling.py"), "--n", "2",
                        "--m", "2", "--fps", "120", "--seconds", "0.25", "--width", "64",
                        "--height", "32", "--worker", WORKER, "--json", str(out)],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    (p,) = json.loads(out.read_text())["points"]
    assert (p["n"], p["m"], p["processes"]) == (2, 2, 6)
    assert p["frames_per_publisher"] == 30
    assert p["delivered"] == 2 * 2 * 30 and p["wrong"] == 0
    assert 0 < p["latency_us"]["p50"] <= p["latency_us"]["p99"] <= p["latency_us"]["max"]
    assert p["cpu_per_delivered_us"] > 0 and p["pub_cpu_per_frame_us"] > 0
