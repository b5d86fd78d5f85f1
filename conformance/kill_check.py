#!/usr/bin/env python3
"""kill_check.py: prove the conformance harness catches deliberately broken references.

For each conformance/variants/*.patch (a unified diff against reference/, applied with
`patch -p1` inside a copy of reference/):
  1. copy reference/ to <work-dir>/<name>/reference and apply the patch (a patch that does not
     apply fails the check);
  2. build the adapters of every copy and of the unpatched reference (the baseline) in ONE CMake
     project (conformance/variants/CMakeLists.txt: no CUDA, no tests, -O0; a variant that patches
     only .cpp files reuses the baseline's objects for the others), so one ninja run builds all;
  3. run cuframes-conform against a manifest naming each copy's adapters;
  4. the variant is KILLED when at least one case fails that passes against the baseline;
     otherwise it SURVIVED.

The first line of each patch file that starts with '#' (before the diff) says what it breaks;
`patch` ignores such leading text.

Prints a table variant -> cases that caught it and writes <reports>/killcheck.json. Exit status 0
only when every variant is killed and every patch applied; 1 otherwise; 2 for a setup error.
Options: --only NAME[,NAME] runs a subset; --check-patches only checks that every patch applies;
--sample K runs K variants drawn with --seed S (default: derived from the source tree's git
commit, so successive commits rotate through the variants while any one run is reproducible);
a sampled run still dry-runs every patch, so a patch that no longer applies fails it at once;
--hints FILE (default conformance/variants/killed_by.json, written by a full run with
--write-hints) names, per variant, up to 3 cases that killed it last time: a sampled run runs
those first and the whole harness only when they do not kill it, so hints save time and never
change a verdict.
--retries N (default 2) reruns the harness on a variant that survived, since some kills depend
on timing (an observer sample inside a window) and one run on a loaded machine can miss them.
Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = "baseline"
HINTS = HERE / "variants" / "killed_by.json"
MAX_HINTS = 3


def run(cmd: list[str], cwd: Path | None = None, log: Path | None = None) -> int:
    """Runs cmd; returns its exit status. Output goes to `log` when given."""
    if log is None:
        return subprocess.call(cmd, cwd=cwd)
    with open(log, "w") as out:
        return subprocess.call(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def changed_files(patch: Path) -> list[str]:
    """Returns the files a -p1 patch touches, relative to reference/."""
    files = []
    for line in patch.read_text().splitlines():
        if line.startswith("+++ "):
            path = line[4:].split("\t")[0].strip()
            if path != "/dev/null":
                files.append(path.split("/", 1)[1] if "/" in path else path)
    return files


def describe(patch: Path) -> str:
    """Returns the patch's leading '#' comment (what it breaks), or ''."""
    for line in patch.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.startswith("---"):
            break
    return ""


def apply(patch: Path, src: Path, log: Path, dry_run: bool = False) -> bool:
    cmd = ["patch", "-p1", "--forward", "--batch", "-i", str(patch)]
    if dry_run:
        cmd.append("--dry-run")
    return run(cmd, cwd=src, log=log) == 0


def cmake_quote(value: object) -> str:
    """`value` as a quoted CMake argument."""
    return '"' + str(value).replace("\\", "/").replace('"', '\\"') + '"'


def write_listing(work: Path, lines: list[str]) -> Path:
    """Writes the variant list (CMake `set` lines) a variants project includes as KC_LIST."""
    path = work / "variants.cmake"
    text = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != text:  # keep the mtime: no needless reconfigure
        path.write_text(text)
    return path


def cmake_list(work: Path, variants: dict[str, tuple[Path, list[str]]]) -> Path:
    """Writes the variant list conformance/variants/CMakeLists.txt includes."""
    q = cmake_quote
    lines = [f"set(KC_BASELINE {q(work / BASELINE / 'reference')})",
             "set(KC_VARIANTS " + " ".join(q(n) for n in variants) + ")"]
    for name, (src, changed) in variants.items():
        lines.append(f"set(KC_SOURCE_{name} {q(src)})")
        lines.append(f"set(KC_CHANGED_{name} " + " ".join(q(c) for c in changed) + ")")
    return write_listing(work, lines)


def build_all(work: Path, names: list[str], listing: Path, jobs: int,
              project: Path = HERE / "variants", cmake_args: tuple[str, ...] = ()) -> Path | None:
    """Builds every copy's adapters in `project` (a variants CMake project reading `listing`);
    returns the build dir (None: configure failed). kill_check_cuda.py builds its CUDA variants
    with it too.

    A variant that does not compile simply has no adapters afterwards (ninja -k 0 keeps going)."""
    bdir = work / "build"
    ninja = shutil.which("ninja") is not None
    gen = ["-G", "Ninja"] if ninja and not (bdir / "CMakeCache.txt").exists() else []
    if run(["cmake", "-S", str(project), "-B", str(bdir), *gen,
            f"-DKC_LIST={listing}", *cmake_args], log=work / "configure.log") != 0:
        return None
    for name in names:  # no stale adapters from an earlier run stand in for a failed build
        for tool in ("cuframes-pub", "cuframes-sub"):
            (bdir / "bin" / name / tool).unlink(missing_ok=True)
    keep_going = ["--", "-k", "0"] if (bdir / "build.ninja").exists() else ["--", "-k"]
    run(["cmake", "--build", str(bdir), "-j", str(jobs), *keep_going], log=work / "build.log")
    return bdir


def adapters(bdir: Path, name: str) -> Path | None:
    """The folder of a variant's built cuframes-pub and cuframes-sub, or None if either is
    missing (the variant did not compile)."""
    d = bdir / "bin" / name
    ok = all((d / t).is_file() for t in ("cuframes-pub", "cuframes-sub"))
    return d if ok else None


def harness(harness_bin: str, adir: Path, name: str, work: Path,
            only: list[str] | None = None, manifest_name: str = "reference.json",
            extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Runs the suite (or the cases in `only`) against the adapters in adir, with the claims of
    conformance/manifests/<manifest_name> and `extra` harness options; returns case id ->
    outcome. kill_check_cuda.py uses it with the CUDA manifest."""
    (work / name).mkdir(parents=True, exist_ok=True)
    manifest = work / name / "manifest.json"
    ref = json.loads((HERE / "manifests" / manifest_name).read_text())
    ref["name"] = f"variant {name} ({manifest_name})"
    ref["publisher"] = [str(adir / "cuframes-pub"), "{args}"]
    ref["subscriber"] = [str(adir / "cuframes-sub"), "{args}"]
    manifest.write_text(json.dumps(ref, indent=2))
    reports = work / name / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    cmd = [harness_bin, "--manifest", str(manifest), "--reports", str(reports)]
    if only:
        cmd += ["--only", ",".join(only)]
    run([*cmd, *extra], log=work / name / "harness.log")
    try:
        data = json.loads((reports / "conformance.json").read_text())
    except (OSError, ValueError):
        return {}
    return {c["id"]: c["outcome"] for c in data["cases"]}


def select_patches(folder: Path, only: str, prog: str) -> list[Path]:
    """The *.patch files of `folder`, only those named in `only` (comma-separated stems) when it
    is not empty; prints why and returns [] when a name is unknown or there is no patch."""
    patches = sorted(folder.glob("*.patch"))
    if only:
        wanted = set(only.split(","))
        unknown = wanted - {p.stem for p in patches}
        if unknown:
            print(f"{prog}: no such variant: {', '.join(sorted(unknown))}", file=sys.stderr)
            return []
        patches = [p for p in patches if p.stem in wanted]
    if not patches:
        print(f"{prog}: no variants found", file=sys.stderr)
    return patches


def copy_and_patch(root: Path, work: Path, patches: list[Path]) -> dict[str, bool]:
    """Copies reference/ to <work>/<name>/reference for the baseline and each patch, and applies
    each patch to its copy; returns variant name -> whether its patch applied. Only the copies are
    replaced: the rest of <work>/<name> (logs, reports) stays. copytree keeps mtimes, so a kept
    build dir recompiles only what a patch (or a change of reference/) touched."""
    for name in [BASELINE] + [p.stem for p in patches]:
        shutil.rmtree(work / name / "reference", ignore_errors=True)
        (work / name).mkdir(parents=True, exist_ok=True)
        shutil.copytree(root / "reference", work / name / "reference")
    return {p.stem: apply(p, work / p.stem / "reference", work / p.stem / "patch.log")
            for p in patches}


def default_seed(root: Path) -> int:
    """The sample's seed when none is given: the commit of the source tree (0 outside git)."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 0
    return int(hashlib.sha256(head.encode()).hexdigest()[:8], 16)


def check_patches(root: Path, patches: list[Path], work: Path) -> int:
    """Dry-runs every patch against the current reference/; returns the number that fail."""
    bad = 0
    for patch in patches:
        src = work / "dry" / "reference"
        shutil.rmtree(work / "dry", ignore_errors=True)
        shutil.copytree(root / "reference", src)
        ok = apply(patch, src, work / "dry.log", dry_run=True)
        fuzz = ok and "fuzz" in (work / "dry.log").read_text()
        print(f"{'ok (FUZZ: regenerate it)' if fuzz else 'ok' if ok else 'DOES NOT APPLY':<24}  "
              f"{patch.name}")
        if not ok:
            print((work / "dry.log").read_text(), end="")
            bad += 1
    shutil.rmtree(work / "dry", ignore_errors=True)
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source-dir", required=True, help="repository root")
    ap.add_argument("--harness", help="path to cuframes-conform")
    ap.add_argument("--work-dir", required=True, help="where variants are copied and built")
    ap.add_argument("--reports", help="where killcheck.json goes")
    ap.add_argument("--only", default="", help="comma-separated variant names to run")
    ap.add_argument("--retries", type=int, default=2,
                    help="extra harness runs for a variant that survived one (default 2)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--sample", type=int, default=0,
                    help="run only K variants drawn with --seed (0: all)")
    ap.add_argument("--seed", type=int, help="seed of --sample (default: from the git commit)")
    ap.add_argument("--hints", default=str(HINTS),
                    help="cases to try first per variant (JSON); '' to run the whole harness")
    ap.add_argument("--write-hints", action="store_true",
                    help="after a run of every variant, rewrite --hints from what killed each")
    ap.add_argument("--check-patches", action="store_true",
                    help="only check that every patch applies to the current reference/")
    args = ap.parse_args()

    t0 = time.monotonic()
    root = Path(args.source_dir).resolve()
    work = Path(args.work_dir).resolve()
    patches = select_patches(HERE / "variants", args.only, "kill_check")
    if not patches:
        return 2
    if any(p.stem == BASELINE for p in patches):
        print(f"kill_check: '{BASELINE}' is reserved, rename that patch", file=sys.stderr)
        return 2
    work.mkdir(parents=True, exist_ok=True)
    if args.check_patches:
        return 1 if check_patches(root, patches, work) else 0
    if args.sample and args.sample < len(patches):
        # Every patch must still apply, sampled or not: a stale patch is caught on every run.
        if check_patches(root, patches, work):
            print("kill_check: a patch no longer applies (see above)", file=sys.stderr)
            return 1
        seed = default_seed(root) if args.seed is None else args.seed
        patches = sorted(random.Random(seed).sample(patches, args.sample))
        print(f"kill_check: sample of {len(patches)} variants, seed {seed} (rerun: --sample "
              f"{args.sample} --seed {seed}; all variants: ci/kill-check.sh)")
    if not args.harness or not args.reports:
        print("kill_check: --harness and --reports are required", file=sys.stderr)
        return 2

    # Copies: the baseline and one patched copy per variant.
    rows: dict[str, dict] = {}
    built: dict[str, tuple[Path, list[str]]] = {}
    applied = copy_and_patch(root, work, patches)
    for patch in patches:
        name = patch.stem
        rows[name] = {"variant": name, "breaks": describe(patch), "status": "", "caught_by": []}
        if applied[name]:
            built[name] = (work / name / "reference", changed_files(patch))
        else:
            rows[name]["status"] = "PATCH-FAILED"
    bdir = build_all(work, [BASELINE] + list(built), cmake_list(work, built), args.jobs)
    if bdir is None:
        print(f"kill_check: configuring the variant build failed, see {work / 'configure.log'}",
              file=sys.stderr)
        return 2
    t_build = time.monotonic() - t0
    base_dir = adapters(bdir, BASELINE)
    if base_dir is None:
        print(f"kill_check: the unpatched reference does not build, see {work / 'build.log'}",
              file=sys.stderr)
        return 2
    baseline = harness(args.harness, base_dir, BASELINE, work)
    if not baseline:
        print("kill_check: the harness produced no results for the baseline", file=sys.stderr)
        return 2
    not_passing = sorted(c for c, o in baseline.items() if o != "PASS")
    if not_passing:
        print(f"kill_check: note: against the baseline these cases do not PASS (they cannot "
              f"kill a variant): {', '.join(not_passing)}", file=sys.stderr)

    hints: dict[str, list[str]] = {}
    if args.hints and not args.write_hints and Path(args.hints).is_file():
        hints = json.loads(Path(args.hints).read_text())
    for name in built:
        adir = adapters(bdir, name)
        if adir is None:
            rows[name]["status"] = "BUILD-FAILED"
            continue
        # The cases that killed this variant last time, tried first: a kill found there is
        # judged exactly like one found in a whole run (fails here, passes on the baseline).
        tried = [c for c in hints.get(name, []) if baseline.get(c) == "PASS"]
        if tried:
            outcomes = harness(args.harness, adir, name, work, only=tried)
            caught = sorted(c for c, o in outcomes.items() if o == "FAIL" and c in tried)
            if caught:
                rows[name].update(caught_by=caught, status="KILLED", runs=1, hinted=True)
                continue
        # Some kills are timing-dependent (the observer must sample inside a window, a late
        # joiner must arrive while frames flow); on a loaded machine one run can miss them. A
        # survivor gets up to --retries more runs; the table says which run killed it.
        for attempt in range(1 + args.retries):
            outcomes = harness(args.harness, adir, name, work)
            caught = sorted(c for c, o in outcomes.items()
                            if o == "FAIL" and baseline.get(c) == "PASS")
            if caught:
                break
        rows[name]["caught_by"] = caught
        rows[name]["status"] = "KILLED" if caught else "SURVIVED"
        rows[name]["runs"] = attempt + 1
        if caught and attempt:
            rows[name]["caught_by"] = [f"(run {attempt + 1})"] + caught

    table = list(rows.values())
    if args.write_hints and not args.only and not args.sample:
        Path(args.hints).write_text(json.dumps(
            {r["variant"]: [c for c in r["caught_by"] if not c.startswith("(")][:MAX_HINTS]
             for r in table if r["status"] == "KILLED"}, indent=1, sort_keys=True) + "\n")
        print(f"kill_check: wrote {args.hints}")
    width = max(len(r["variant"]) for r in table)
    print(f"{'variant':<{width}}  status        caught by")
    for r in table:
        how = " (hinted cases)" if r.get("hinted") else ""
        print(f"{r['variant']:<{width}}  {r['status']:<12}  "
              f"{', '.join(r['caught_by']) or '-'}{how}")
    bad = [r for r in table if r["status"] != "KILLED"]
    Path(args.reports).mkdir(parents=True, exist_ok=True)
    (Path(args.reports) / "killcheck.json").write_text(json.dumps(table, indent=2) + "\n")
    total = time.monotonic() - t0
    print(f"\n{len(table) - len(bad)}/{len(table)} variants killed "
          f"(build {t_build:.0f} s, total {total:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
