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

import kill_check  # the sibling script: its run, describe and harness serve both checks
from kill_check import describe, run

HERE = Path(__file__).resolve().parent
BASELINE = "baseline"


def find_nvcc() -> str | None:
    nvcc = shutil.which("nvcc")
    if nvcc is None and Path("/usr/local/cuda/bin/nvcc").is_file():
        nvcc = "/usr/local/cuda/bin/nvcc"
    return nvcc


def build_all(work: Path, names: list[str], nvcc: str, arch: str, jobs: int) -> Path | None:
    """Builds every copy's adapters in one project; returns the build dir (None: configure failed).

    A variant that does not compile has no adapters afterwards (ninja -k 0 keeps going)."""
    q = lambda s: '"' + str(s).replace("\\", "/").replace('"', '\\"') + '"'
    lines = ["set(KC_VARIANTS " + " ".join(q(n) for n in names) + ")"]
    lines += [f"set(KC_SOURCE_{n} {q(work / n / 'reference')})" for n in names]
    listing = work / "variants.cmake"
    listing.write_text("\n".join(lines) + "\n")
    bdir = work / "build"
    gen = ["-G", "Ninja"] if shutil.which("ninja") and not (bdir / "CMakeCache.txt").exists() else []
    if run(["cmake", "-S", str(HERE / "variants" / "cuda"), "-B", str(bdir), *gen,
            f"-DKC_LIST={listing}", f"-DCMAKE_CUDA_COMPILER={nvcc}",
            f"-DKC_CUDA_ARCHITECTURES={arch}"], log=work / "configure.log") != 0:
        return None
    for name in names:  # no stale adapters from an earlier run stand in for a failed build
        for tool in ("cuframes-pub", "cuframes-sub"):
            (bdir / "bin" / name / tool).unlink(missing_ok=True)
    keep_going = ["--", "-k", "0"] if (bdir / "build.ninja").exists() else ["--", "-k"]
    run(["cmake", "--build", str(bdir), "-j", str(jobs), *keep_going], log=work / "build.log")
    return bdir


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
    patches = sorted((HERE / "variants" / "cuda").glob("*.patch"))
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {p.stem for p in patches}
        if unknown:
            print(f"kill_check_cuda: no such variant: {', '.join(sorted(unknown))}",
                  file=sys.stderr)
            return 2
        patches = [p for p in patches if p.stem in wanted]
    if not patches:
        print("kill_check_cuda: no variants found", file=sys.stderr)
        return 2
    nvcc = find_nvcc()
    if nvcc is None:
        print("SKIP: kill_check_cuda: no nvcc (on PATH or in /usr/local/cuda/bin): the CUDA "
              "variants cannot be built here")
        return 77

    work.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    names = [BASELINE]
    for name in [BASELINE] + [p.stem for p in patches]:
        shutil.rmtree(work / name, ignore_errors=True)
        (work / name).mkdir(parents=True)
        shutil.copytree(root / "reference", work / name / "reference")
    for patch in patches:
        name = patch.stem
        rows[name] = {"variant": name, "breaks": describe(patch), "killed_by": [],
                      "result": "SURVIVED"}
        if run(["patch", "-p1", "--forward", "--batch", "-i", str(patch)],
               cwd=work / name / "reference", log=work / name / "patch.log") != 0:
            rows[name]["result"] = "PATCH DOES NOT APPLY"
            continue
        names.append(name)

    bdir = build_all(work, names, nvcc, args.cuda_architectures, args.jobs)
    if bdir is None:
        print((work / "configure.log").read_text()[-3000:], file=sys.stderr)
        print("kill_check_cuda: configuring the variants' build failed", file=sys.stderr)
        return 2
    adapters = lambda n: bdir / "bin" / n
    built = lambda n: all((adapters(n) / t).is_file() for t in ("cuframes-pub", "cuframes-sub"))
    if not built(BASELINE):
        print((work / "build.log").read_text()[-3000:], file=sys.stderr)
        print("kill_check_cuda: the baseline did not build", file=sys.stderr)
        return 2

    base = harness(args.harness, adapters(BASELINE), BASELINE, work, args.cases)
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
        if not built(name):
            row["result"] = "BUILD FAILED"
            continue
        for attempt in range(1 + max(0, args.retries)):
            got = harness(args.harness, adapters(name), name, work, args.cases)
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
