#!/usr/bin/env python3
"""reach.py: which lines of reference/src the conformance harness executes, and what the mutation
score is among the mutants on those lines.

The harness drives the reference only through its adapters (cuframes-pub, cuframes-sub) and the
wire. A mutant on a line that no case makes the reference execute (an argument check of the C API
that the adapters never trip, say) cannot be killed by any harness case, only by a white-box
test. This tool measures that reach instead of arguing it:

  1. Builds the tree with gcov instrumentation (`--coverage`, Debug, no CUDA) in <work>/build.
  2. Runs `cuframes-conform` against that build (the reference manifest) once.
  3. Reads the counters with `gcov --json-format` (GCC's gcov; no other tool needed) and writes,
     per file of reference/src, the lines that carry code and how often each ran:
     <out> (JSON: {"files": {"reference/src/x.cpp": {"LINE": COUNT, ...}}}).
  4. Given mutation tables (mutation.json of a run, or the committed Markdown tables under
     conformance/mutation/runs/), marks each judged mutant REACHED (its first line carries code
     that ran), UNREACHED (the line carries code that never ran) or NO-CODE (a line without
     code of its own: a declaration, a default member value, a brace), and prints per run the
     score (killed by the harness / killed by anything) twice: over every judged mutant, and
     over the REACHED and NO-CODE ones alone.

The second figure is a diagnostic beside the score, not a replacement: it says how many misses
are out of the adapter contract's reach. A mutant is located by its original text: the line
number of an older draw is only a hint (the sources moved since), so the line whose text matches
and lies nearest the recorded number is taken; a mutant whose text is no longer in its file is
reported as GONE and left out of both figures.

    python3 conformance/mutation/reach.py [--source-dir ROOT] [--work-dir DIR] [--out FILE]
                                          [--coverage FILE] [TABLE ...]

--coverage reuses a JSON written earlier (no build, no harness run). Exit status 0, or 2 when
the build or the harness run fails.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REACHED, UNREACHED, NO_CODE, GONE = "REACHED", "UNREACHED", "NO-CODE", "GONE"
JUDGED = ("KILLED", "HARNESS-MISS", "SURVIVED")


# ----------------------------------------------------------------------------------------------
# Coverage


def coverage_build(root: Path, build: Path, jobs: int) -> None:
    """Configures (once) and builds the adapters and the harness with gcov instrumentation."""
    if not (build / "build.ninja").exists() and not (build / "Makefile").exists():
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.run(["cmake", "-S", str(root), "-B", str(build), *gen,
                        "-DCMAKE_BUILD_TYPE=Debug", "-DCUFRAMES_CUDA=OFF", "-DCUFRAMES_BENCH=OFF",
                        "-DCUFRAMES_FUZZ=OFF", "-DCMAKE_CXX_FLAGS=--coverage",
                        "-DCMAKE_C_FLAGS=--coverage", "-DCMAKE_EXE_LINKER_FLAGS=--coverage",
                        "-DCMAKE_SHARED_LINKER_FLAGS=--coverage",
                        f"-DPython3_EXECUTABLE={sys.executable}"],
                       check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "-j", str(jobs), "--target", "cuframes-pub",
                    "cuframes-sub", "cuframes-conform"], check=True, stdout=subprocess.DEVNULL)


def run_harness(root: Path, build: Path, reports: Path) -> int:
    """Runs every case against the instrumented build; returns the harness's exit status."""
    for gcda in build.rglob("*.gcda"):  # counters of this run only
        gcda.unlink()
    manifest = json.loads((root / "conformance" / "manifests" / "reference.json").read_text())
    manifest["build_dir"] = str(build)
    mpath = build / "reach-manifest.json"
    mpath.write_text(json.dumps(manifest, indent=2) + "\n")
    cmd = [str(build / "conformance" / "cuframes-conform"), "--manifest", str(mpath),
           "--reports", str(reports)]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode


def read_counts(root: Path, build: Path) -> dict[str, dict[int, int]]:
    """Line -> execution count for every instrumented line of reference/src, summed over every
    object that compiled it (the library's and the adapters' copies of an inline function)."""
    src = (root / "reference" / "src").resolve()
    out: dict[str, dict[int, int]] = {}
    gcdas = sorted(str(p) for p in (build / "reference").rglob("*.gcda"))
    with tempfile.TemporaryDirectory() as tmp:
        for gcda in gcdas:
            subprocess.run(["gcov", "--json-format", "--object-directory",
                            os.path.dirname(gcda), gcda], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for gz in Path(tmp).glob("*.gcov.json.gz"):
            data = json.loads(gzip.decompress(gz.read_bytes()))
            cwd = Path(data.get("current_working_directory", tmp))
            for f in data.get("files", []):
                path = (cwd / f["file"]).resolve()
                if src not in path.parents:
                    continue
                rel = str(path.relative_to(root.resolve()))
                lines = out.setdefault(rel, {})
                for ln in f.get("lines", []):
                    n = int(ln["line_number"])
                    lines[n] = lines.get(n, 0) + int(ln["count"])
    return out


# ----------------------------------------------------------------------------------------------
# Mutants


def locate(text: str, orig_first: str, hint: int) -> int | None:
    """The 1-based line of `text` equal (stripped) to `orig_first` nearest to `hint`."""
    want = orig_first.strip()
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if line.strip() == want]
    return min(hits, key=lambda n: abs(n - hint)) if hits else None


def classify(root: Path, counts: dict[str, dict[int, int]], rel: str, line: int,
             orig: str) -> tuple[str, int | None]:
    path = root / rel
    if not path.exists() or not orig.strip():
        return GONE, None
    first = next((ln for ln in orig.splitlines() if ln.strip()), "")
    at = locate(path.read_text(), first, line)
    if at is None:
        return GONE, None
    c = counts.get(rel, {})
    if at not in c:
        return NO_CODE, at
    return (REACHED if c[at] > 0 else UNREACHED), at


_MD_ROW = re.compile(r"^\| \d+ \| `(?P<id>[^`]+)` \| (?P<file>[^:|]+):(?P<line>\d+) \| "
                     r"`(?P<change>.*)` \| (?P<verdict>[A-Z-]+)(?: \(exempt\))? \|")


def rows_of(table: Path) -> list[dict]:
    """Judged rows (id, file, line, orig, verdict) of a mutation.json or a Markdown table."""
    if table.suffix == ".json":
        rows = json.loads(table.read_text())["rows"]
        return [{"id": r["id"], "file": r["file"], "line": r["line"], "orig": r["orig"],
                 "verdict": r["verdict"]} for r in rows if r["verdict"] in JUDGED]
    out = []
    for line in table.read_text().splitlines():
        m = _MD_ROW.match(line)
        if not m or m["verdict"] not in JUDGED:
            continue
        orig = m["change"].split("  ->  ")[0].split(" ⏎ ")[0].replace("\\|", "|")
        out.append({"id": m["id"], "file": "reference/src/" + m["file"], "line": int(m["line"]),
                    "orig": orig, "verdict": m["verdict"]})
    return out


def score(rows: list[dict]) -> str:
    k = sum(1 for r in rows if r["verdict"] == "KILLED")
    d = k + sum(1 for r in rows if r["verdict"] == "HARNESS-MISS")
    return f"{100.0 * k / d:.1f}% ({k}/{d})" if d else "n/a"


def report(root: Path, counts: dict[str, dict[int, int]], tables: list[Path]) -> list[dict]:
    """Prints, per table, both scores and the misses out of reach; returns the per-table sums."""
    sums = []
    every: list[dict] = []
    for table in tables:
        rows = rows_of(table)
        for r in rows:
            r["reach"], r["now_at"] = classify(root, counts, r["file"], r["line"], r["orig"])
        every += rows
        known = [r for r in rows if r["reach"] != GONE]
        inside = [r for r in known if r["reach"] != UNREACHED]
        out_misses = [r for r in known if r["reach"] == UNREACHED and r["verdict"] == "HARNESS-MISS"]
        gone = len(rows) - len(known)
        print(f"{table.name}: score {score(known)}; over mutants on lines the harness executes "
              f"(or without code) {score(inside)}"
              + (f"; {gone} no longer in the sources" if gone else ""))
        for r in out_misses:
            print(f"    miss out of reach: {r['id']} ({r['file']}:{r['now_at']} now)")
        sums.append({"table": table.name, "score": score(known), "score_reached": score(inside),
                     "unreached_misses": [r["id"] for r in out_misses], "gone": gone})
    if len(tables) > 1:
        known = [r for r in every if r["reach"] != GONE]
        inside = [r for r in known if r["reach"] != UNREACHED]
        print(f"all {len(tables)} tables: score {score(known)}; over mutants the harness reaches "
              f"{score(inside)}")
    return sums


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tables", nargs="*", help="mutation.json files or Markdown run tables")
    ap.add_argument("--source-dir", default=str(HERE.parent.parent))
    ap.add_argument("--work-dir", help="instrumented build and scratch (<root>/build/reach)")
    ap.add_argument("--out", help="coverage JSON to write (<root>/reports/reach.json)")
    ap.add_argument("--coverage", help="coverage JSON written earlier: skip the build and run")
    args = ap.parse_args(argv)
    root = Path(args.source_dir).resolve()
    if args.coverage:
        data = json.loads(Path(args.coverage).read_text())
    else:
        work = Path(args.work_dir or root / "build" / "reach").resolve()
        build = work / "build"
        jobs = int(os.environ.get("CUFRAMES_JOBS", "2"))
        try:
            print(f"==> instrumented build in {build}")
            coverage_build(root, build, jobs)
        except subprocess.CalledProcessError as e:
            print(f"reach: the instrumented build failed: {e}", file=sys.stderr)
            return 2
        print("==> cuframes-conform against the instrumented reference")
        rc = run_harness(root, build, work / "harness-reports")
        if rc != 0:
            print(f"reach: the harness did not pass against the instrumented reference (exit "
                  f"{rc}); see {work / 'harness-reports'}", file=sys.stderr)
            return 2
        counts = read_counts(root, build)
        data = {"files": {f: {str(n): c for n, c in sorted(v.items())}
                          for f, v in sorted(counts.items())}}
        out = Path(args.out or root / "reports" / "reach.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1) + "\n")
        code = sum(len(v) for v in counts.values())
        ran = sum(1 for v in counts.values() for c in v.values() if c > 0)
        print(f"==> {ran} of {code} lines with code in reference/src ran ({100.0 * ran / code:.1f}%)"
              f"; per file:")
        for f, v in sorted(counts.items()):
            r = sum(1 for c in v.values() if c > 0)
            print(f"    {f}: {r}/{len(v)}")
        print(f"    coverage in {out}")
    counts = {f: {int(n): c for n, c in v.items()} for f, v in data["files"].items()}
    if args.tables:
        report(root, counts, [Path(t) for t in args.tables])
    return 0


if __name__ == "__main__":
    sys.exit(main())
