"""Tests of the interop matrix's report writers (synthetic results) and of the runner's verdicts
(a manifest that lies about its versions must turn its cells red, with evidence)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cuframes_procs import build_dir
from matrix.report import CellRecord, Matrix, markdown, to_html, to_json, write_all

HERE = Path(__file__).resolve().parent


def synthetic() -> Matrix:
    m = Matrix({"reference": "cuframes reference adapters", "py": "cuframes for Python"},
               ["host", "cuda"], ["v2", "v1-sub"], ["F", "P"], twin_release="0.3", seconds=1.5)
    for p in ("reference", "py"):
        for s in ("reference", "py"):
            for sc in ("F", "P"):
                m.records.append(CellRecord(p, s, "v2", "host", sc, "pass", notes=["ok"]))
                m.records.append(CellRecord(p, s, "v1-sub", "host", sc, "pass"))
                m.records.append(CellRecord(p, s, "v2", "cuda", sc, "na",
                                            reason="no NVIDIA GPU on this machine"))
    bad = m.find("py", "reference", "v2", "host", "P")
    bad.status, bad.failures = "fail", ["late: first packet 1, expected 91 <PKT-JOIN-01>"]
    bad.evidence = "$ cuframes-sub --key k & 'x'"
    bad.expect = {"pub_proto": 2, "subs": [
        {"impl": "reference", "capped": True, "proto": 1, "ring": False,
         "outcome": "NO_PACKET_RING"},
        {"impl": "reference", "capped": False, "proto": 2, "ring": True, "outcome": "ok"}]}
    return m


def test_markdown_has_one_row_per_publisher_and_marks_failures():
    md = markdown(synthetic())
    assert "15 pass, 1 fail, 8 N/A; 1.5 s; twin release 0.3" in md
    table = md.split("## host, v2")[1].split("##")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| publisher \\ subscriber | reference | py |"
    assert rows[1] == "| reference | F P | F P |"
    assert rows[2] == "| py | F **P✗** | F P |"
    assert "## cuda, v2" in md and "| reference | · · | · · |" in md
    assert "## cuda, v1-sub" not in md  # no records: no table
    assert "- py → reference, host, v2, `P`: late: first packet 1" in md
    assert "- no NVIDIA GPU on this machine" in md


def test_counts():
    assert synthetic().counts() == {"pass": 15, "fail": 1, "na": 8}


def test_json_round_trips_every_record():
    doc = json.loads(to_json(synthetic()))
    assert doc["counts"] == {"pass": 15, "fail": 1, "na": 8}
    assert len(doc["results"]) == 24
    fail = [r for r in doc["results"] if r["status"] == "fail"]
    assert fail[0]["failures"][0].startswith("late: first packet 1")
    assert doc["implementations"]["py"] == "cuframes for Python"
    assert set(doc["scenarios"]) == {"F", "P"}


def test_html_is_self_contained_and_carries_evidence():
    page = to_html(synthetic())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http" not in page and "src=" not in page
    assert "td class='cell anyfail'" in page and "td class='cell allpass'" in page
    assert "td class='cell allna'" in page
    # the failure's evidence is in the hover title, escaped
    assert "title='P packets with a late joiner - FAIL" in page
    assert "&lt;PKT-JOIN-01&gt;" in page and "&#x27;x&#x27;" in page
    assert "N/A: no NVIDIA GPU on this machine" in page
    assert ("expected: publisher v2; reference (capped) v1 -&gt; NO_PACKET_RING, reference v2 "
            "+ring") in page


def test_write_all(tmp_path):
    paths = write_all(synthetic(), tmp_path / "r")
    assert [p.name for p in paths] == ["interop-matrix.md", "interop-matrix.json",
                                       "interop-matrix.html"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_a_lying_implementation_turns_its_cells_red(tmp_path):
    """End to end through pytest: an implementation whose subscriber claims version 2 but always
    caps itself to 1 fails exactly the cells where it subscribes, with the negotiated version
    as evidence; the exit status is non-zero; the others stay green."""
    liar = tmp_path / "liar.json"
    liar.write_text(json.dumps({
        "name": "lies about proto_versions",
        "publisher": ["{build_dir}/reference/cuframes-pub", "{args}", "--max-proto", "2"],
        "subscriber": ["{build_dir}/reference/cuframes-sub", "{args}", "--max-proto", "1"],
        "proto_versions": [1, 2], "kinds": ["host"], "features": ["packets", "max-proto"]}))
    reports = tmp_path / "reports"
    env = dict(os.environ, CUFRAMES_BUILD_DIR=str(build_dir()),
               CUFRAMES_MATRIX_IMPLS=f"reference,{liar}", CUFRAMES_MATRIX_KINDS="host",
               CUFRAMES_MATRIX_MODES="v2", CUFRAMES_MATRIX_SCENARIOS="F",
               CUFRAMES_MATRIX_REPORTS=str(reports))
    env.pop("CUFRAMES_MATRIX_QUICK", None)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(HERE / "test_matrix.py")], env=env, capture_output=True, text=True,
                       timeout=240, cwd=HERE.parents[1])
    assert r.returncode == 1, r.stdout[-2000:]
    doc = json.loads((reports / "interop-matrix.json").read_text())
    verdict = {(x["pub"], x["sub"]): x["status"] for x in doc["results"]}
    assert verdict == {("reference", "reference"): "pass", ("liar", "reference"): "pass",
                       ("reference", "liar"): "fail", ("liar", "liar"): "fail"}, verdict
    red = [x for x in doc["results"] if x["status"] == "fail"]
    assert all(any("attached proto 1, expected 2" in f for f in x["failures"]) for x in red)
    assert "cuframes-sub" in red[0]["evidence"]
    md = (reports / "interop-matrix.md").read_text()
    assert "**F✗**" in md
    assert f"rerun: `ci/interop.sh --impl reference {liar} --kinds host --modes v2 --scenarios F`" \
        in md
