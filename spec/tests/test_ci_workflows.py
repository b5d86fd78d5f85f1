"""Tests of the CI workflow files (.github/workflows/*.yml).

Each file is validated against the published GitHub workflow schema with check-jsonschema's
builtin copy (`check-jsonschema --builtin-schema vendor.github-workflows`, offline), a broken
workflow is shown to fail that validation, and each file is checked for the jobs the project
promises: CPU tests and conformance on every push, the spec gate on pull requests touching
spec/ with the full history, ci/gpu.sh on a self-hosted GPU runner, a scheduled long fuzz run,
every job calling ci/ scripts that exist.
Run: python3 -m pytest -q spec/tests
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


def _validator() -> list[str]:
    if importlib.util.find_spec("check_jsonschema") is None:
        pytest.skip("check-jsonschema is not installed for this python (ci/requirements.txt; "
                    "run ci/setup.sh)")
    return [sys.executable, "-m", "check_jsonschema", "--builtin-schema",
            "vendor.github-workflows"]


def _files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml")) + sorted(WORKFLOWS.glob("*.yaml"))


def _text(name: str) -> str:
    return (WORKFLOWS / name).read_text(encoding="utf-8")


def test_workflows_match_the_github_schema():
    files = _files()
    assert len(files) >= 4
    r = subprocess.run([*_validator(), *map(str, files)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_schema_validation_can_fail(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\non: push\njobs:\n  x:\n    steps:\n      - run: true\n")
    r = subprocess.run([*_validator(), str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "runs-on" in (r.stdout + r.stderr)


def test_every_ci_script_named_exists():
    for f in _files():
        scripts = re.findall(r"\bci/[\w-]+\.sh\b", f.read_text(encoding="utf-8"))
        assert scripts, f"{f.name} calls no ci/ script"
        for s in scripts:
            assert (ROOT / s).exists(), f"{f.name} calls {s}, which does not exist"


def test_the_promised_jobs_exist():
    ci = _text("ci.yml")
    assert re.search(r"^on:\s*\n\s+push:", ci, re.M) and "ci/test.sh" in ci \
        and "ci/conform.sh" in ci
    gate = _text("spec-gate.yml")
    assert "pull_request:" in gate and '"spec/**"' in gate and "fetch-depth: 0" in gate \
        and "ci/spec-gate.sh" in gate
    gpu = _text("gpu.yml")
    assert re.search(r"runs-on:\s*\[self-hosted,\s*gpu\]", gpu) and "ci/gpu.sh" in gpu
    fuzz = _text("fuzz.yml")
    assert "schedule:" in fuzz and "cron:" in fuzz and "ci/fuzz.sh" in fuzz
