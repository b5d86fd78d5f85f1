"""bench/py_host_handoff.py on a few frames: both libraries deliver every frame with the right
bytes, and the JSON has every figure, each sane. Runs in ci/test.sh (pytest bench/); the
measurement itself (2000 frames) is run by hand or by ci/gpu.sh."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "bench", "py_host_handoff.py")
FRAMES = 40


@pytest.mark.skipif(importlib.util.find_spec("iceoryx2") is None,
                    reason="iceoryx2 is not importable (ci/requirements.txt; ci/setup.sh "
                           "installs it where PyPI is reachable)")
def test_few_frames_both_libraries(tmp_path):
    out = tmp_path / "host.json"
    env = {**os.environ, "CUFRAMES_SOCKET_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, SCRIPT, "--frames", str(FRAMES), "--rounds", "2",
                        "--sizes", "4096,3110400", "--label", "pytest", "--json", str(out)],
                       capture_output=True, text=True, timeout=300, env=env)
    if r.returncode == 77:
        pytest.skip(r.stderr.strip() or "py_host_handoff.py exited 77")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "| 3110400 |" in r.stdout, r.stdout
    doc = json.loads(out.read_text())
    assert (doc["label"], doc["frames"], doc["rounds"]) == ("pytest", FRAMES, 2)
    assert doc["machine"]["iceoryx2"] and doc["machine"]["cpus"] >= 1
    assert [row["bytes"] for row in doc["rows"]] == [4096, 3110400]
    for row in doc["rows"]:
        for lib in ("cuframes", "iceoryx2"):
            s = row[lib]
            assert s["frames"] == FRAMES and s["wrong"] == 0, (row["bytes"], lib, s)
            for m in ("one_way_us", "round_trip_us", "cycle_us"):
                assert 0 < s[m]["p50"] <= s[m]["p99"], (row["bytes"], lib, m, s[m])
            # per frame, the release reaches the producer after the consumer took t1
            assert s["round_trip_us"]["mean"] > s["one_way_us"]["mean"], (row["bytes"], lib, s)
            assert s["cycle_us"]["mean"] >= s["round_trip_us"]["mean"], (row["bytes"], lib, s)
        for m in ("one_way", "round_trip"):
            for q in ("p50", "p99"):
                want = row["cuframes"][f"{m}_us"][q] / row["iceoryx2"][f"{m}_us"][q]
                assert row["ratio"][f"{m}_{q}"] == pytest.approx(want)
