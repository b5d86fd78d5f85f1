"""test_cuda_variants.py: the CUDA kill check's inputs stay valid on a machine without a GPU.

conformance/kill_check_cuda.py runs only on GPU machines (ci/gpu.sh), so a change of reference/
that stops one of its patches from applying would go unnoticed until then. These tests dry-run
every conformance/variants/cuda/*.patch against the current reference/ and check that each says
what it breaks and names the requirement it breaks, and that the CUDA manifest claims the kind.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PATCHES = sorted((HERE / "variants" / "cuda").glob("*.patch"))


def test_at_least_eight_cuda_variants():
    assert len(PATCHES) >= 8, [p.name for p in PATCHES]


@pytest.mark.parametrize("patch", PATCHES, ids=lambda p: p.stem)
def test_patch_applies_and_says_what_it_breaks(patch: Path, tmp_path: Path):
    if shutil.which("patch") is None:
        pytest.skip("the patch program is not installed")
    first = patch.read_text().splitlines()[0]
    assert first.startswith("# "), f"{patch.name}: first line must say what it breaks"
    assert re.search(r"\b[A-Z]+(-[A-Z0-9]+)+\b", first), f"{patch.name}: name the rule it breaks"
    src = tmp_path / "reference"
    shutil.copytree(ROOT / "reference", src)
    r = subprocess.run(["patch", "-p1", "--forward", "--batch", "--dry-run", "-i", str(patch)],
                       cwd=src, capture_output=True, text=True)
    assert r.returncode == 0, f"{patch.name} no longer applies to reference/:\n{r.stdout}{r.stderr}"
    assert "fuzz" not in r.stdout, f"{patch.name} applies only with fuzz: regenerate it"


def test_cuda_manifest_claims_cuda_ipc():
    m = json.loads((HERE / "manifests" / "reference-cuda.json").read_text())
    assert "cuda_ipc" in m["kinds"] and "host" in m["kinds"]
