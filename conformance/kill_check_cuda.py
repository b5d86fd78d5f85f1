#!/usr/bin/env python3
"""kill_check_cuda.py: prove the CUDA_IPC cases catch deliberately broken CUDA paths.

The CUDA sibling of kill_check.py, for a GPU machine. For each conformance/variants/cuda/*.patch
(a unified diff against reference/, applied with `patch -p1` inside a copy of reference/):
  1. copy reference/ to <work-dir>/<name>/reference and apply the patch (a patch that does not
     apply fails the check);
  2. build the adapters of every copy and of the unpatched reference (the baseline) WITH the CUDA
     kind, in one CMake project (conformance/variants/cuda/CMakeLists.txt);
  3. run cuframes-conform's CUDA cases (--cases, default '*cuda*,7.1/vmm-*') against a manifest
     with the claims of conformance/manifests/reference-cuda.json (host, cuda_ipc, cuda_vmm_fd)
     that names each copy's adapters;
  4. the variant is KILLED when at least one case fails that passes against the baseline;
     otherwise it SURVIVED.

The first '#' line of each patch says what it breaks. Prints a table variant -> cases that caught
it and writes <reports>/killcheck-cuda.json. Exit status: 0 when every variant is killed; 1 when
one survived or a patch does not apply; 2 for a setup error; 77 when there is nothing to judge
here (no nvcc, or the baseline's CUDA cases are UNSUPPORTED: no usable device), with the reason.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import kill_check  # the sibling script: its patching, building and harness serve both checks
from kill_check import BASELINE, adapters, cmake_quote, describe, write_listing

HERE = Path(__file__).resolve().parent


def find_nvcc() -> str | None:
    nvcc = shutil.which("nvcc")
    if nvcc is None and Path("/usr/local/cuda/bin/nvcc").is_file():
        nvcc = "/usr/local/cuda/bin/nvcc"
    return nvcc


def build_all(work: Path, names: list[str], nvcc: str, arch: str, jobs: int) -> Path | None:
    """Builds every copy's adapters with the CUDA kind (conformance/variants/cuda/CMakeLists.txt,
    which reads KC_VARIANTS, the baseline included, and KC_SOURCE_<name>) through kill_check's
    build_all; returns the build dir (None: configure failed)."""
    q = cmake_quote
    lines = ["set(KC_VARIANTS " + " ".join(q(n) for n in names) + ")"]
    lines += [f"set(KC_SOURCE_{n} {q(work / n / 'reference')})" for n in names]
    return kill_check.build_all(work, names, write_listing(work, lines), jobs,
                                project=HERE / "variants" / "cuda",
                                cmake_args=(f"-DCMAKE_CUDA_COMPILER={nvcc}",
                                            f"-DKC_CUDA_ARCHITECTURES={arch}"))


def harness(harness_bin: str, adir: Path, name: str, work: Path, cases: str) -> dict[str, str]:
    """Runs the CUDA cases against the adapters in adir; returns case id -> outcome. One case at
    a time: the ordering cases time slow kernels, and parallel cases only add noise."""
    return kill_check.harness(harness_bin, adir, name, work, only=[cases],
                              manifest_name="reference-cuda.json", extra=("--jobs", "1"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source-dir", required=True, help="repository root")
    ap.add_argument("--harness", required=True, help="path to cuframes-conform (built with CUDA)")
    ap.add_argument("--work-dir", required=True, help="where variants are copied and built")
    ap.add_argument("--reports", required=True, help="where killcheck-cuda.json goes")
    ap.add_argument("--only", default="", help="comma-separated variant names to run")
    ap.add_argument("--cases", default="*cuda*,7.1/vmm-*",
                    help="the harness's --only (default '*cuda*,7.1/vmm-*': the CUDA_IPC and "
                    "CUDA_VMM_FD cases)")
    ap.add_argument("--retries", type=int, default=1,
                    help="extra harness runs for a variant that survived one (default 1)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--cuda-architectures", default="90",
                    help="CUDA architectures of the variant builds (default 90: H100/H200)")
    args = ap.parse_args()

    t0 = time.monotonic()
    root = Path(args.source_dir).resolve()
    work = Path(args.work_dir).resolve()
    patches = kill_check.select_patches(HERE / "variants" / "cuda", args.only, "kill_check_cuda")
    if not patches:
        return 2
    nvcc = find_nvcc()
    if nvcc is None:
        print("SKIP: kill_check_cuda: no nvcc (on PATH or in /usr/local/cuda/bin): the CUDA "
              "variants cannot be built here")
        return 77

    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    names = [BASELINE]
    applied = kill_check.copy_and_patch(root, work, patches)
    for patch in patches:
        name = patch.stem
        rows[name] = {"variant": name, "breaks": describe(patch), "killed_by": [],
                      "result": "SURVIVED"}
        if not applied[name]:
            rows[name]["result"] = "PATCH DOES NOT APPLY"
            continue
        names.append(name)

    bdir = build_all(work, names, nvcc, args.cuda_architectures, args.jobs)
    if bdir is None:
        print((work / "configure.log").read_text()[-3000:], file=sys.stderr)
        print("kill_check_cuda: configuring the variants' build failed", file=sys.stderr)
        return 2
    base_dir = adapters(bdir, BASELINE)
    if base_dir is None:
        print((work / "build.log").read_text()[-3000:], file=sys.stderr)
        print("kill_check_cuda: the baseline did not build", file=sys.stderr)
        return 2

    base = harness(args.harness, base_dir, BASELINE, work, args.cases)
    passing = {c for c, o in base.items() if o == "PASS"}
    if not base or all(o == "UNSUPPORTED" for o in base.values()):
        print(f"SKIP: kill_check_cuda: the baseline's CUDA cases are UNSUPPORTED here "
              f"(no usable CUDA device?); see {work / BASELINE / 'harness.log'}")
        return 77
    not_passing = sorted(c for c, o in base.items() if o not in ("PASS", "UNSUPPORTED"))
    if not_passing:
        print(f"note: against the baseline these cases do not pass, so they cannot kill: "
              f"{', '.join(not_passing)}")

    for name in names[1:]:
        row = rows[name]
        adir = adapters(bdir, name)
        if adir is None:
            row["result"] = "BUILD FAILED"
            continue
        for attempt in range(1 + max(0, args.retries)):
            got = harness(args.harness, adir, name, work, args.cases)
            row["killed_by"] = sorted(c for c in passing if got.get(c) == "FAIL")
            if row["killed_by"]:
                row["result"] = "KILLED"
                break

    width = max(len(n) for n in rows)
    print(f"\nCUDA kill check: {len(rows)} variants against {len(passing)} passing CUDA cases\n")
    print(f"{'variant':<{width}}  {'result':<20}  killed by")
    for name, row in rows.items():
        by = ", ".join(row["killed_by"][:3]) + (" ..." if len(row["killed_by"]) > 3 else "")
        print(f"{name:<{width}}  {row['result']:<20}  {by}")
    killed = sum(r["result"] == "KILLED" for r in rows.values())
    print(f"\nkilled {killed} of {len(rows)} in {time.monotonic() - t0:.0f} s")
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "killcheck-cuda.json").write_text(json.dumps(
        {"baseline": base, "variants": list(rows.values())}, indent=2) + "\n")
    return 0 if killed == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
