"""spec/TRACES.md is generated from the reference (spec/tools/gen_traces.py): regenerate it and
compare, so the annotated traces cannot drift from what the reference puts on the wire and in
shared memory. Needs the built reference adapters ($CUFRAMES_BUILD_DIR or build/default)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TOOL = ROOT / "spec" / "tools" / "gen_traces.py"


def build_dir() -> Path:
    return Path(os.environ.get("CUFRAMES_BUILD_DIR", ROOT / "build" / "default"))


def test_traces_match_the_reference():
    pub = build_dir() / "reference" / "cuframes-pub"
    if not pub.exists():
        pytest.skip(f"reference adapters not built ({pub} missing): build first or set "
                    "CUFRAMES_BUILD_DIR")
    r = subprocess.run([sys.executable, str(TOOL), "--check", "--build-dir", str(build_dir())],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, ("spec/TRACES.md differs from what the reference produces now; "
                               "rerun spec/tools/gen_traces.py and review the diff:\n"
                               + r.stdout[-4000:] + r.stderr[-2000:])
