#!/usr/bin/env python3
"""mutation.py: the harness's score on mechanical mutants of reference/src that nobody chose.

The kill check (conformance/kill_check.py) measures the harness against bugs its own authors
wrote. This tool measures it against mutants a maintained mechanical mutation tool generates
(universalmutator's `mutate` command with its C++ rules), so the figure does not depend on
anyone's idea of a bug.

  1. Pool: `mutate FILE cpp --noCheck` for every C++ file of reference/src (CUDA-only files,
     *.cu, are left out: CPU CI cannot run them). Each mutant is reduced to (file, line, original
     text, replacement); mutants that only touch comments or whitespace are dropped as trivially
     equivalent (counted). The pool is cached under the work dir, keyed by the sources' hash.
     Mutants of the test machinery (TEST_MACHINERY: the fault-injection hook, inert unless
     CUFRAMES_FAULT is set) are left out of the draw: the score measures the protocol's code.
  2. Sample: the pool sorted by mutant id, shuffled with random.Random(SEED); mutants are taken
     in that order, and one that does not compile (with the project's -Werror flags) is counted
     and replaced by the next, until N have compiled. The same seed and sources give the same
     sample.
  3. Build tree: <work>/src is a copy of the checkout (tracked and untracked-not-ignored files),
     configured once into <work>/build (Ninja, no CUDA, no benchmarks). A mutant is written over
     one file of the copy and restored afterwards, so only the translation units that include it
     recompile (ccache makes the restore cheap).
  4. Per mutant: rebuild the adapters and run `cuframes-conform` against them (timeout: a few
     times the baseline's). KILLED when a case that passes on the unmutated baseline does not
     pass (confirmed by re-running those cases once), or when the run hangs or crashes.
     Only when the harness missed it: the white-box tests (ctest of reference/ and fuzz/, then
     `pytest interop/`) against the same build. One of them fails that passes on the baseline:
     HARNESS-MISS; none does: SURVIVED (possibly equivalent).
  5. Score = killed by the harness / killed by anything (survivors are not in it). A harness
     miss listed in conformance/mutation/exemptions.txt (mutant id, reason) is exempt; one that
     is neither exempt nor killed by the current harness is reported as UNRESOLVED.

Results are written after every mutant to <reports>/mutation.json and mutation.md, so an
interrupted run keeps them; --resume continues it. Exit status: 0 when the score reaches
--threshold and no harness miss is unresolved (always 0 with --report-only, which prints
"score below target" instead); 1 otherwise; 2 for a setup error.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_SEED = 20261201
DEFAULT_N = 40
POOL_FORMAT = 1

# Verdicts.
KILLED = "KILLED"  # by the harness
MISS = "HARNESS-MISS"  # killed by a white-box test only
SURVIVED = "SURVIVED"  # killed by nothing (possibly equivalent)
NOT_COMPILED = "NOT-COMPILED"  # not part of the sample; counted
ERROR = "ERROR"  # the tool itself could not judge it (not part of the score)
NOT_BY_HARNESS = "NOT-KILLED-BY-HARNESS"  # --harness-only: white-box tests not run (no score)


# ----------------------------------------------------------------------------------------------
# Mutants


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One mutant: lines [line, line + n_orig) of `file` (relative to the repository root,
    1-based) replaced by `new`. `orig` and `new` are the exact texts, newline-terminated."""

    id: str
    file: str
    line: int
    orig: str
    new: str

    def apply_to(self, text: str) -> str:
        """Returns `text` (the pristine file) with this mutant applied. Raises ValueError when
        the file no longer has `orig` at `line` (the sources changed since the pool was made)."""
        lines = text.splitlines(keepends=True)
        n = len(self.orig.splitlines(keepends=True))
        if "".join(lines[self.line - 1:self.line - 1 + n]) != self.orig:
            raise ValueError(f"{self.file}:{self.line}: source does not match mutant {self.id}")
        return "".join(lines[:self.line - 1]) + self.new + "".join(lines[self.line - 1 + n:])

    def short(self) -> str:
        return f"{self.orig.strip()}  ->  {self.new.strip()}".replace("\n", " \\n ")


_COMMENT_OR_STRING = re.compile(
    r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)


def normalize(code: str) -> str:
    """Returns `code` without comments and with whitespace runs collapsed (string and character
    literals are kept verbatim), for telling a real change from a comment or layout change."""
    def keep(m: re.Match) -> str:
        s = m.group(0)
        return " " if s.startswith("/") else s
    return re.sub(r"\s+", " ", _COMMENT_OR_STRING.sub(keep, code)).strip()


def diff_region(orig: list[str], mut: list[str]) -> tuple[int, int, int] | None:
    """Returns (start, orig_end, mut_end) of the one changed region between two line lists
    (0-based, end exclusive), or None when they are equal."""
    if orig == mut:
        return None
    start = 0
    while start < min(len(orig), len(mut)) and orig[start] == mut[start]:
        start += 1
    eo, em = len(orig), len(mut)
    while eo > start and em > start and orig[eo - 1] == mut[em - 1]:
        eo -= 1
        em -= 1
    return start, eo, em


def mutant_from_texts(rel: str, orig_text: str, mut_text: str) -> Mutant | None:
    """Reduces a whole mutated file to a Mutant; None when it changes nothing that compiles
    differently (only comments or whitespace). Ids are content-based (file and the two texts),
    so they survive edits elsewhere in the file; the caller makes duplicates unique."""
    o = orig_text.splitlines(keepends=True)
    m = mut_text.splitlines(keepends=True)
    region = diff_region(o, m)
    if region is None:
        return None
    start, eo, em = region
    if start == eo:  # a pure insertion: anchor it on the line before, so `orig` is never empty
        start -= 1
    old, new = "".join(o[start:eo]), "".join(m[start:em])
    if normalize(old) == normalize(new):
        return None
    h = hashlib.sha1(f"{rel}\0{old}\0{new}".encode()).hexdigest()[:10]
    return Mutant(f"{Path(rel).name}:{h}", rel, start + 1, old, new)


def source_files(root: Path) -> list[str]:
    """The files mutated: C++ sources and headers of reference/src, CUDA-only files left out."""
    src = root / "reference" / "src"
    return sorted(str(p.relative_to(root)) for p in src.iterdir()
                  if p.suffix in (".cpp", ".h", ".hpp", ".cc"))


def tool_version() -> str:
    try:
        from importlib.metadata import version
        return version("universalmutator")
    except Exception:  # noqa: BLE001 - any failure means "not installed"
        return ""


def generate_pool(root: Path, work: Path, log=print) -> tuple[list[Mutant], dict]:
    """Runs universalmutator over every source file; returns (mutants, stats). Cached in
    <work>/pool-<hash>.json, keyed by the sources' content and the tool's version."""
    files = source_files(root)
    version = tool_version()
    h = hashlib.sha1(f"{POOL_FORMAT}\0{version}".encode())
    for rel in files:
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    cache = work / f"pool-{h.hexdigest()[:12]}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
        return [Mutant(**m) for m in data["mutants"]], data["stats"]
    # The `mutate` command, or the same entry point through this interpreter when pip put the
    # command in a bin directory that is not on PATH.
    exe = shutil.which("mutate")
    mutate = [exe] if exe else [sys.executable, "-m", "universalmutator.genmutants"]
    if not version:
        raise RuntimeError("universalmutator is not installed (ci/setup.sh installs it from "
                           "ci/requirements.txt; or: python3 -m pip install universalmutator)")
    mutants: list[Mutant] = []
    stats = {"tool": f"universalmutator {version}", "files": {}, "generated": 0,
             "trivially_equivalent": 0, "duplicates": 0}
    for rel in files:
        text = (root / rel).read_text()
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            # mutate writes a scratch copy into its cwd and the mutants into --mutantDir.
            subprocess.run([*mutate, str(root / rel), "cpp", "--noCheck", "--mutantDir", tmp + "/"],
                           cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=True)
            produced = sorted(Path(tmp).glob("*.mutant.*"),
                              key=lambda p: int(p.name.split(".mutant.")[1].split(".")[0]))
            seen: dict[str, int] = {}
            kept = 0
            for p in produced:
                stats["generated"] += 1
                m = mutant_from_texts(rel, text, p.read_text(errors="replace"))
                if m is None:
                    stats["trivially_equivalent"] += 1
                    continue
                key = (m.line, m.new)
                if key in seen:
                    stats["duplicates"] += 1
                    continue
                seen[key] = 1
                mutants.append(m)
                kept += 1
        stats["files"][rel] = kept
        log(f"  pool: {rel}: {kept} mutants")
    # Same texts at two places of a file give the same content id: number them in line order.
    by_id: dict[str, list[Mutant]] = {}
    for m in mutants:
        by_id.setdefault(m.id, []).append(m)
    unique = []
    for mid, ms in by_id.items():
        for i, m in enumerate(sorted(ms, key=lambda x: x.line)):
            unique.append(dataclasses.replace(m, id=mid if i == 0 else f"{mid}.{i + 1}"))
    unique.sort(key=lambda m: m.id)
    stats["pool"] = len(unique)
    cache.write_text(json.dumps({"stats": stats,
                                 "mutants": [dataclasses.asdict(m) for m in unique]}))
    return unique, stats


# Files of reference/src that are test machinery, not protocol: the crash-recovery suite's
# fault-injection hook (fault.h, fault.cpp), inert unless CUFRAMES_FAULT is set. Their mutants
# stay in the cached pool (its key does not change) but are never drawn.
TEST_MACHINERY = ("fault.cpp", "fault.h")


def drawable(pool: list[Mutant]) -> list[Mutant]:
    """The pool less the mutants of TEST_MACHINERY files."""
    return [m for m in pool if Path(m.file).name not in TEST_MACHINERY]


def sample_order(pool: list[Mutant], seed: int) -> list[Mutant]:
    """The order in which mutants are drawn for `seed`: deterministic for the same pool."""
    ordered = sorted(pool, key=lambda m: m.id)
    random.Random(seed).shuffle(ordered)
    return ordered


# ----------------------------------------------------------------------------------------------
# Classification (pure: the self-test feeds it fake results)


def harness_kills(baseline: dict[str, str], outcomes: dict[str, str] | None,
                  status: str) -> list[str]:
    """Returns what kills the mutant in one harness run: the cases that PASS on the baseline
    and do not PASS now (a missing case counts), or ["<status>"] when the run hung or crashed
    (status 'timeout' or 'crash'); [] when the harness saw nothing."""
    if status in ("timeout", "crash") or outcomes is None:
        return [f"<harness {status}>"]
    return sorted(c for c, o in baseline.items() if o == "PASS" and outcomes.get(c) != "PASS")


def whitebox_kills(baseline: dict[str, str], results: dict[str, str] | None,
                   status: str, label: str) -> list[str]:
    """Same for a white-box run (ctest or pytest): tests that pass on the baseline and fail
    now, or ["<label status>"] when the run hung or produced no results (prefixed by the tests
    that were running then, which `results` marks "hung")."""
    if status in ("timeout", "crash") or results is None:
        hung = sorted(t for t, o in (results or {}).items() if o == "hung")
        return [f"{t} <{label} {status}>" for t in hung] or [f"<{label} {status}>"]
    return sorted(t for t, o in baseline.items()
                  if o == "passed" and results.get(t, "passed") not in ("passed", "skipped"))


class _NotCompiled(Exception):
    """Raised inside the per-mutant step when a later build shows the mutant does not compile."""


def verdict(harness_killers: list[str], whitebox_killers: list[str] | None) -> str:
    """KILLED when the harness killed it; otherwise HARNESS-MISS when a white-box test did,
    SURVIVED when nothing did. whitebox_killers is None when the white-box tests were not run
    (only allowed when the harness killed it)."""
    if harness_killers:
        return KILLED
    if whitebox_killers is None:
        raise ValueError("a mutant the harness missed needs its white-box results")
    return MISS if whitebox_killers else SURVIVED


def load_exemptions(path: Path) -> dict[str, str]:
    """Reads `<mutant id> <reason>` lines ('#' comments). A line without a reason is an error:
    an exemption must say why the harness cannot or need not see the mutant."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            raise ValueError(f"{path}:{n}: exemption '{parts[0]}' has no reason")
        out[parts[0]] = parts[1].strip()
    return out


def exemption_for(mid: str, exemptions: dict[str, str]) -> str | None:
    """The reason that exempts mutant `mid`: an exact id, else the first glob (fnmatch) that
    matches it (e.g. `fault.cpp:*` for every mutant of a file); None when none does."""
    if mid in exemptions:
        return exemptions[mid]
    for pattern, reason in exemptions.items():
        if any(ch in pattern for ch in "*?[") and fnmatch.fnmatchcase(mid, pattern):
            return reason
    return None


def summarize(rows: list[dict], exemptions: dict[str, str]) -> dict:
    """Score and lists over the judged rows. `score` is the issue's definition (killed by the
    harness / killed by anything); `score_net` sets the exempt misses aside (a mutant no harness
    case should kill, with the reason on record) and is the one the threshold gates."""
    judged = [r for r in rows if r["verdict"] in (KILLED, MISS, SURVIVED)]
    killed = [r for r in judged if r["verdict"] == KILLED]
    misses = [r for r in judged if r["verdict"] == MISS]
    survived = [r for r in judged if r["verdict"] == SURVIVED]
    denom = len(killed) + len(misses)
    net = len(killed) + sum(1 for r in misses if not exemption_for(r["id"], exemptions))
    return {
        "judged": len(judged),
        "killed_by_harness": len(killed),
        "harness_misses": len(misses),
        "survived": len(survived),
        "not_compiled": sum(1 for r in rows if r["verdict"] == NOT_COMPILED),
        "errors": sum(1 for r in rows if r["verdict"] == ERROR),
        "score": (100.0 * len(killed) / denom) if denom else None,
        "score_net": (100.0 * len(killed) / net) if net else None,
        "misses": [r["id"] for r in misses],
        "exempt": [r["id"] for r in misses if exemption_for(r["id"], exemptions)],
        "unresolved": [r["id"] for r in misses if not exemption_for(r["id"], exemptions)],
        "unused_exemptions": sorted(e for e in exemptions
                                    if not any(exemption_for(r["id"], {e: "x"}) for r in misses)),
    }


def exit_status(summary: dict, threshold: float, report_only: bool) -> tuple[int, list[str]]:
    """Returns (exit status, messages) for a finished run."""
    msgs = []
    bad = False
    score = summary["score_net"]
    if score is None:
        msgs.append("no mutant was killed by anything: no score")
        bad = True
    elif score < threshold:
        msgs.append(f"score below target: {score:.1f}% (exempt misses set aside) < "
                    f"{threshold:g}%")
        bad = True
    if summary["unresolved"]:
        msgs.append(f"{len(summary['unresolved'])} harness miss(es) neither killed by the harness "
                    f"nor exempt in conformance/mutation/exemptions.txt: "
                    + ", ".join(summary["unresolved"]))
        bad = True
    if report_only:
        return 0, msgs
    return (1 if bad else 0), msgs


# ----------------------------------------------------------------------------------------------
# Running things


def run_bounded(cmd: list[str], timeout: float, log: Path, cwd: Path | None = None,
                env: dict | None = None) -> tuple[str, int, float]:
    """Runs cmd in its own process group with output to `log`; returns (status, exit code,
    seconds): status 'ok' (exit 0), 'fail' (non-zero exit), 'crash' (killed by a signal) or
    'timeout' (the whole group is killed)."""
    t0 = time.monotonic()
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
            return "timeout", -9, time.monotonic() - t0
        finally:
            try:  # adapters left behind by a killed or crashed harness
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    dt = time.monotonic() - t0
    if rc < 0:
        return "crash", rc, dt
    return ("ok" if rc == 0 else "fail"), rc, dt


def checkout_files(root: Path) -> list[str]:
    """Tracked files and untracked files git does not ignore, relative to root."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, check=True, capture_output=True).stdout
    return sorted({f for f in out.decode().split("\0") if f and (root / f).is_file()})


def sync_copy(root: Path, dest: Path) -> int:
    """Makes `dest` a copy of the checkout, rewriting only files whose content differs (so
    unchanged files keep their mtimes and nothing needless recompiles) and removing files the
    checkout no longer has. Returns the number of files written."""
    files = checkout_files(root)
    written = 0
    for rel in files:
        s, d = root / rel, dest / rel
        data = s.read_bytes()
        if d.is_file() and d.read_bytes() == data:
            continue
        d.parent.mkdir(parents=True, exist_ok=True)
        d.write_bytes(data)
        shutil.copymode(s, d)
        written += 1
    keep = set(files)
    for p in list(dest.rglob("*")):
        if p.is_file() and str(p.relative_to(dest)) not in keep and "__pycache__" not in p.parts:
            p.unlink()
    return written


class Tree:
    """The mutation build tree: <work>/src (copy of the checkout) and <work>/build."""

    def __init__(self, root: Path, work: Path, jobs: int):
        self.root, self.work, self.jobs = root, work, jobs
        self.src, self.build = work / "src", work / "build"
        self.applied: tuple[Path, bytes] | None = None

    def prepare(self) -> None:
        self.src.mkdir(parents=True, exist_ok=True)
        n = sync_copy(self.root, self.src)
        print(f"==> mutation tree: {n} file(s) refreshed in {self.src}")
        if not (self.build / "build.ninja").exists():
            gen = ["-G", "Ninja"] if shutil.which("ninja") else []
            cmd = ["cmake", "-S", str(self.src), "-B", str(self.build), *gen,
                   "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DCUFRAMES_CUDA=OFF",
                   "-DCUFRAMES_BENCH=OFF", "-DCUFRAMES_FUZZ=OFF",
                   f"-DPython3_EXECUTABLE={sys.executable}"]
            st, _, _ = run_bounded(cmd, 600, self.work / "configure.log")
            if st != "ok":
                raise RuntimeError(f"configuring the mutation tree failed, see "
                                   f"{self.work / 'configure.log'}")

    def build_targets(self, targets: list[str], log: Path, timeout: float = 900) -> bool:
        cmd = ["cmake", "--build", str(self.build), "-j", str(self.jobs)]
        if targets:
            cmd += ["--target", *targets]
        st, _, _ = run_bounded(cmd, timeout, log)
        return st == "ok"

    def apply(self, m: Mutant) -> None:
        """Writes the mutant over its file in the copy (restore() puts the original back)."""
        assert self.applied is None, "a mutant is already applied"
        path = self.src / m.file
        pristine = path.read_bytes()
        mutated = m.apply_to(pristine.decode())
        self.applied = (path, pristine)
        path.write_text(mutated)

    def restore(self) -> None:
        if self.applied is not None:
            path, pristine = self.applied
            path.write_bytes(pristine)
            self.applied = None


def harness_cmd(tree: Tree, manifest: Path, reports: Path) -> list[str]:
    exe = tree.build / "conformance" / "cuframes-conform"
    cmd = [str(exe), "--manifest", str(manifest), "--reports", str(reports)]
    help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True).stdout
    help_text += subprocess.run([str(exe), "--help"], capture_output=True, text=True).stderr
    if "--jobs" in help_text:  # the harness runs cases in parallel where it can
        cmd += ["--jobs", "2"]
    return cmd


def write_manifest(tree: Tree) -> Path:
    ref = json.loads((tree.src / "conformance" / "manifests" / "reference.json").read_text())
    ref["name"] = "cuframes reference under mutation"
    ref["build_dir"] = str(tree.build)
    path = tree.work / "manifest.json"
    path.write_text(json.dumps(ref, indent=2) + "\n")
    return path


def run_harness(tree: Tree, manifest: Path, out: Path, timeout: float,
                only: str | None = None) -> tuple[str, dict[str, str] | None, float]:
    """Runs cuframes-conform; returns (status, case -> outcome or None, seconds)."""
    reports = out / "harness-reports"
    shutil.rmtree(reports, ignore_errors=True)
    cmd = harness_cmd(tree, manifest, reports)
    if only:
        cmd += ["--only", only]
    st, rc, dt = run_bounded(cmd, timeout, out / ("harness-only.log" if only else "harness.log"))
    try:
        data = json.loads((reports / "conformance.json").read_text())
        outcomes = {c["id"]: c["outcome"] for c in data["cases"]}
    except (OSError, ValueError, KeyError):
        outcomes = None
    if st in ("ok", "fail") and outcomes is None:
        st = "crash"
    return st, outcomes, dt


def junit_results(path: Path) -> dict[str, str] | None:
    """testcase name -> passed / failed / skipped from a JUnit XML file (ctest or pytest)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    res = {}
    for tc in root.iter("testcase"):
        name = tc.get("name", "")
        cls = tc.get("classname", "")
        key = f"{cls}::{name}" if cls and "." in cls and not cls.endswith(name) else name
        status = tc.get("status", "")
        if tc.find("failure") is not None or tc.find("error") is not None or status == "fail":
            res[key] = "failed"
        elif tc.find("skipped") is not None or status in ("notrun", "disabled"):
            res[key] = "skipped"
        else:
            res[key] = "passed"
    return res


def _exact(names: list[str]) -> str:
    return "|".join("^" + re.escape(t) + "$" for t in names)


def run_ctest(tree: Tree, dirs: list[str], out: Path, timeout: float, exclude: list[str],
              select: list[str] | None = None) -> tuple[str, dict[str, str] | None, float]:
    """Runs the ctest tests of the build subdirectories `dirs` (all but `exclude`, or only
    `select`); returns (status, test -> passed/failed/skipped or None, seconds)."""
    results: dict[str, str] = {}
    total = 0.0
    worst = "ok"
    for d in dirs:
        junit = out / f"ctest-{d}{'-again' if select else ''}.xml"
        junit.unlink(missing_ok=True)
        cmd = ["ctest", "--test-dir", str(tree.build / d), "--timeout", "60", "--stop-on-failure",
               "--output-junit", str(junit)]
        if select:
            cmd += ["-R", _exact(select)]
        else:
            cmd += ["-j", str(tree.jobs)]
        if exclude:
            cmd += ["-E", _exact(exclude)]
        st, _, dt = run_bounded(cmd, timeout, junit.with_suffix(".log"))
        total += dt
        r = junit_results(junit)
        if st == "timeout" or r is None:
            return (st if st == "timeout" else "crash"), _ctest_running(junit.with_suffix(".log")), total
        if st != "ok":
            worst = "fail"
        results.update(r)
    return worst, results, total


def run_pytest(tree: Tree, out: Path, timeout: float, deselect: list[str],
               nodes: list[str] | None = None) -> tuple[str, dict[str, str] | None, float]:
    """Runs pytest interop/ (stopping at the first failure), or only the node ids `nodes`;
    returns (status, node id -> passed/failed/skipped or None, seconds)."""
    junit = out / ("pytest-again.xml" if nodes else "pytest.xml")
    junit.unlink(missing_ok=True)
    env = dict(os.environ, CUFRAMES_BUILD_DIR=str(tree.build))
    cmd = [sys.executable, "-m", "pytest", "-v", "-x", "-p", "no:cacheprovider",
           f"--junitxml={junit}", *(nodes or ["interop"])]
    for t in deselect:
        cmd += ["--deselect", t]
    st, _, dt = run_bounded(cmd, timeout, junit.with_suffix(".log"), cwd=tree.src, env=env)
    r = junit_results(junit)
    if r is not None:  # junit names -> pytest node ids (interop/test_x.py::test_y)
        r = {_node_id(k): v for k, v in r.items()}
    if st == "timeout" or r is None:
        return (st if st == "timeout" else "crash"), _pytest_running(junit.with_suffix(".log")), dt
    return st, r, dt


def _ctest_running(log: Path) -> dict[str, str] | None:
    """The tests a killed ctest run had started and not finished, marked "hung"."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    started = re.findall(r"^\s*Start\s+\d+: (\S+)", text, re.M)
    finished = set(re.findall(r"Test\s+#\d+: (\S+) \.", text))
    return {t: "hung" for t in started if t not in finished} or None


def _pytest_running(log: Path) -> dict[str, str] | None:
    """The test a killed `pytest -v` run was in (its node id printed without an outcome)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("interop/") and "::" in line:
            done = re.search(r" (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b", line)
            return None if done else {line.split()[0]: "hung"}
    return None


def _node_id(key: str) -> str:
    if "::" not in key:
        return key
    cls, name = key.split("::", 1)
    parts = cls.split(".")
    # interop.test_multiprocess[.Class] -> interop/test_multiprocess.py[::Class]
    for i in range(len(parts), 0, -1):
        if parts[i - 1].startswith("test_"):
            mod = "/".join(parts[:i]) + ".py"
            rest = parts[i:]
            return "::".join([mod, *rest, name])
    return key


# ----------------------------------------------------------------------------------------------
# Reports


def render_md(state: dict, summary: dict, exemptions: dict[str, str]) -> str:
    cfg = state["config"]
    lines = ["# Mutation score of the conformance harness", "",
             f"- tool: {state['pool_stats'].get('tool', '?')}; pool: "
             f"{state['pool_stats'].get('pool', '?')} mutants of reference/src "
             f"({state['pool_stats'].get('trivially_equivalent', 0)} comment/whitespace-only "
             f"dropped); CUDA-only files left out; "
             f"{state['pool_stats'].get('test_machinery', 0)} mutants of test machinery "
             f"({', '.join(TEST_MACHINERY)}) never drawn",
             f"- sample: N={cfg['n']}, seed={cfg['seed']}; started {state['started']}",
             f"- not compiling (replaced by the next draw): {summary['not_compiled']}",
             f"- judged: {summary['judged']}: killed by the harness {summary['killed_by_harness']}"
             f", harness misses {summary['harness_misses']}, survived {summary['survived']}"
             + (f", errors {summary['errors']}" if summary["errors"] else ""),
             "- **score** (killed by the harness / killed by anything): "
             + (f"**{summary['score']:.1f}%**" if summary["score"] is not None else "n/a")
             + f"; with the {len(summary['exempt'])} exempt miss(es) set aside: "
             + (f"**{summary['score_net']:.1f}%**" if summary["score_net"] is not None
                else "n/a") + f" (gated at {cfg.get('threshold', 90):g}%)",
             ]
    base = state.get("baseline", {})
    if base:
        lines.append(f"- baseline: harness {base.get('harness_s', 0):.0f} s, ctest "
                     f"{base.get('ctest_s', 0):.0f} s, pytest interop {base.get('pytest_s', 0):.0f} s")
    t = timing(state["rows"])
    if t:
        lines.append(f"- time per compiling mutant (median): build {t['build_s']:.0f} s, harness "
                     f"{t['harness_s']:.0f} s; killed by the harness {t['killed_s']:.0f} s, "
                     f"judged by the white-box tests too {t['whitebox_s']:.0f} s; whole run "
                     f"{t['total_s'] / 60:.0f} min (incl. {t['not_compiled_s']:.0f} s on "
                     f"mutants that do not compile)")
    if summary["unresolved"]:
        lines.append(f"- UNRESOLVED harness misses (neither a case nor an exemption): "
                     + ", ".join(summary["unresolved"]))
    lines += ["", "| # | mutant | file:line | original -> mutated | verdict | killed by | time (s) |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, r in enumerate(state["rows"], 1):
        change = (r["orig"].strip() + "  ->  " + r["new"].strip()).replace("\n", " ⏎ ")
        change = change.replace("|", "\\|")
        v = r["verdict"]
        if v == MISS and exemption_for(r["id"], exemptions):
            v += " (exempt)"
        killers = ", ".join(r.get("killed_by", [])[:4])
        if len(r.get("killed_by", [])) > 4:
            killers += f", +{len(r['killed_by']) - 4}"
        lines.append(f"| {i} | `{r['id']}` | {r['file'].split('/')[-1]}:{r['line']} | "
                     f"`{change}` | {v} | {killers.replace('|', '/') or '-'} | "
                     f"{r.get('seconds', 0):.0f} |")
    return "\n".join(lines) + "\n"


def timing(rows: list[dict]) -> dict | None:
    """Medians per mutant and the run's total, from the judged rows."""
    judged = [r for r in rows if r["verdict"] in (KILLED, MISS, SURVIVED)]
    if not judged:
        return None

    def med(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[len(xs) // 2] if xs else 0.0
    return {
        "build_s": med([r.get("build_s", 0) for r in judged]),
        "harness_s": med([r.get("harness_s", 0) for r in judged]),
        "killed_s": med([r["seconds"] for r in judged if r["verdict"] == KILLED]),
        "whitebox_s": med([r["seconds"] for r in judged if r["verdict"] != KILLED]),
        "not_compiled_s": sum(r["seconds"] for r in rows if r["verdict"] == NOT_COMPILED),
        "total_s": sum(r["seconds"] for r in rows),
    }


def sources_hash(root: Path) -> str:
    """What the verdicts depend on: the reference, the harness and the white-box tests (the
    mutation tool's own folder left out, so editing exemptions does not void a run)."""
    h = hashlib.sha1()
    for rel in checkout_files(root):
        if (rel.split("/")[0] in ("reference", "conformance", "interop", "fuzz") or
                rel == "spec/cuframes.json") and not rel.startswith("conformance/mutation/"):
            h.update(rel.encode() + b"\0" + (root / rel).read_bytes())
    return h.hexdigest()[:16]


def write_reports(reports: Path, state: dict, exemptions: dict[str, str]) -> dict:
    summary = summarize(state["rows"], exemptions)
    state["summary"] = summary
    reports.mkdir(parents=True, exist_ok=True)
    for name, text in (("mutation.json", json.dumps(state, indent=2) + "\n"),
                       ("mutation.md", render_md(state, summary, exemptions))):
        tmp = reports / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(reports / name)
    return summary


def archive_previous_run(reports: Path) -> Path | None:
    """Moves an earlier run's reports aside before a new run writes its own, so that starting a
    run (by mistake, say with --report-only and without --resume) never destroys judged rows.
    Returns the archived JSON's path, or None when there was nothing worth keeping."""
    old = reports / "mutation.json"
    try:
        rows = json.loads(old.read_text()).get("rows", [])
    except (OSError, ValueError):
        return None
    if not rows:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(old.stat().st_mtime))
    for name in ("mutation.json", "mutation.md"):
        src = reports / name
        if src.exists():
            src.replace(reports / name.replace("mutation.", f"mutation-{stamp}."))
    return reports / f"mutation-{stamp}.json"


def append_miss(path: Path, row: dict) -> None:
    """Appends one harness miss to a shared Markdown list (once per mutant id)."""
    text = path.read_text() if path.exists() else ""
    if f"`{row['id']}`" in text:
        return
    diff = "".join("-" + l for l in row["orig"].splitlines(keepends=True))
    diff += "".join("+" + l for l in row["new"].splitlines(keepends=True))
    entry = (f"\n### `{row['id']}` ({row['file']}:{row['line']})\n\n```diff\n{diff}```\n\n"
             f"- killed by (white-box): {', '.join(row['killed_by'])}\n"
             f"- requirement it likely breaks: (to be filled in)\n")
    with open(path, "a") as f:
        f.write(entry)


# ----------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", nargs="?", type=int, default=DEFAULT_N, help="sample size (40)")
    ap.add_argument("seed", nargs="?", type=int, default=DEFAULT_SEED,
                    help=f"sampling seed ({DEFAULT_SEED})")
    ap.add_argument("--source-dir", default=str(HERE.parent.parent), help="repository root")
    ap.add_argument("--work-dir", help="build tree and scratch (default <root>/build/mutation)")
    ap.add_argument("--reports", help="where mutation.json/.md go (default <root>/reports)")
    ap.add_argument("--threshold", type=float, default=90.0, help="minimum score in %% (90)")
    ap.add_argument("--report-only", action="store_true",
                    help="report the score but exit 0 even below the threshold")
    ap.add_argument("--resume", action="store_true",
                    help="continue the run recorded in <reports>/mutation.json")
    ap.add_argument("--timeout-factor", type=float, default=3.0,
                    help="per-mutant timeout = this x the baseline's time (3)")
    ap.add_argument("--ctest-dirs", default="reference,fuzz",
                    help="build subdirectories whose ctest tests are white-box tests")
    ap.add_argument("--misses-md", help="also append each new harness miss to this Markdown file")
    ap.add_argument("--exemptions", default=str(HERE / "exemptions.txt"))
    ap.add_argument("--ids", default="",
                    help="judge only these mutant ids (comma-separated, e.g. the harness misses "
                         "of an earlier run, against a harness that gained cases) instead of a "
                         "seeded sample; N becomes their number")
    ap.add_argument("--harness-only", action="store_true",
                    help="skip the white-box tests (with --ids: does the harness kill them now?)")
    ap.add_argument("--pool-only", action="store_true",
                    help="generate the pool and print the first N draws, then stop")
    args = ap.parse_args(argv)

    root = Path(args.source_dir).resolve()
    work = Path(args.work_dir or root / "build" / "mutation").resolve()
    reports = Path(args.reports or root / "reports").resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        exemptions = load_exemptions(Path(args.exemptions))
    except ValueError as e:
        print(f"mutation: {e}", file=sys.stderr)
        return 2
    t_start = time.monotonic()

    print(f"==> mutant pool (universalmutator, C++ rules) of {root / 'reference' / 'src'}")
    try:
        pool, pool_stats = generate_pool(root, work)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"mutation: {e}", file=sys.stderr)
        return 2
    print(f"    {pool_stats['pool']} mutants ({pool_stats['generated']} generated, "
          f"{pool_stats['trivially_equivalent']} comment/whitespace-only, "
          f"{pool_stats['duplicates']} duplicates)")
    pool_all = pool
    pool = drawable(pool)
    pool_stats = dict(pool_stats, test_machinery=len(pool_all) - len(pool))
    print(f"    {pool_stats['test_machinery']} of them in test machinery "
          f"({', '.join(TEST_MACHINERY)}): never drawn")
    order = sample_order(pool, args.seed)
    if args.ids:
        wanted = [i for i in args.ids.split(",") if i]
        byid = {m.id: m for m in pool}
        unknown = [i for i in wanted if i not in byid]
        if unknown:
            print(f"mutation: no such mutant in the pool of these sources: {', '.join(unknown)}",
                  file=sys.stderr)
            return 2
        order = [byid[i] for i in wanted]
        args.n = len(order)
    if args.pool_only:
        for m in order[:args.n]:
            print(f"{m.id:<28} {m.file}:{m.line}  {m.short()}")
        return 0

    state_path = reports / "mutation.json"
    state = None
    if args.resume and state_path.exists():
        state = json.loads(state_path.read_text())
        # A larger N extends the run: the draw order of a seed does not depend on N.
        if state["config"]["seed"] != args.seed or state["config"]["n"] > args.n:
            print(f"mutation: --resume: {state_path} is for N={state['config']['n']} seed="
                  f"{state['config']['seed']}, not N={args.n} seed={args.seed}", file=sys.stderr)
            return 2
        state["config"]["n"] = args.n
        if state["config"].setdefault("sources", sources_hash(root)) != sources_hash(root):
            print(f"mutation: --resume: the reference, harness or tests changed since "
                  f"{state_path} was started; start a new run (without --resume)",
                  file=sys.stderr)
            return 2
        print(f"==> resuming: {len(state['rows'])} mutant(s) already judged")
    if state is None:
        kept = archive_previous_run(reports)
        if kept:
            print(f"==> the previous run's reports were moved to {kept} (and its .md)")
        state = {"config": {"n": args.n, "seed": args.seed, "threshold": args.threshold,
                            "sources": sources_hash(root)},
                 "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 "pool_stats": pool_stats, "rows": []}
    done = {r["id"] for r in state["rows"]}
    in_sample = sum(1 for r in state["rows"] if r["verdict"] != NOT_COMPILED)
    write_reports(reports, state, exemptions)

    tree = Tree(root, work, int(os.environ.get("CUFRAMES_JOBS", "2")))

    def stop(signum, _frame):  # SIGTERM too restores the mutated file (via the finally below)
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    try:
        if in_sample < args.n:
            rc = run_mutants(args, tree, order, state, done, in_sample, reports, exemptions)
            if rc:
                return rc
    finally:
        tree.restore()

    summary = write_reports(reports, state, exemptions)
    total = time.monotonic() - t_start
    if args.harness_only:  # a recheck: no white-box verdicts, so no score
        rows = [r for r in state["rows"] if r["verdict"] != NOT_COMPILED]
        alive = [r["id"] for r in rows if r["verdict"] != KILLED]
        print(f"\n==> recheck (harness only): {len(rows) - len(alive)} of {len(rows)} killed by "
              f"the harness; not killed: {', '.join(alive) or 'none'}")
        return 1 if alive and not args.report_only else 0

    def pct(x):
        return f"{x:.1f}%" if x is not None else "n/a"
    print(f"\n==> mutation score: {pct(summary['score'])} (killed by the harness "
          f"{summary['killed_by_harness']} / killed by anything "
          f"{summary['killed_by_harness'] + summary['harness_misses']}); "
          f"{pct(summary['score_net'])} with the {len(summary['exempt'])} exempt miss(es) set "
          f"aside (threshold {args.threshold:g}%); survived {summary['survived']}, not compiling "
          f"{summary['not_compiled']}; {total:.0f} s")
    byid = {r["id"]: r for r in state["rows"]}
    if summary["misses"]:
        print("    harness misses:")
        for mid in summary["misses"]:
            r = byid[mid]
            reason = exemption_for(mid, exemptions)
            tag = "exempt: " + reason if reason else "UNRESOLVED"
            print(f"      {mid}  {r['file']}:{r['line']}  [{tag}]  killed by "
                  f"{', '.join(r['killed_by'])}")
    if summary["unused_exemptions"]:
        print(f"    note: exemptions for mutants not among this run's misses: "
              f"{', '.join(summary['unused_exemptions'])}")
    print(f"    reports: {reports / 'mutation.md'}, {reports / 'mutation.json'}")
    rc, msgs = exit_status(summary, args.threshold, args.report_only)
    for m in msgs:
        print(f"mutation: {m}")
    return rc


def run_mutants(args, tree: Tree, order: list[Mutant], state: dict, done: set[str],
                in_sample: int, reports: Path, exemptions: dict[str, str]) -> int:
    tree.prepare()
    blog = tree.work / "logs"
    blog.mkdir(exist_ok=True)
    # The baseline: the unmutated tree, every target, every test; remembered per tree content.
    print("==> baseline: build, harness, white-box tests on the unmutated reference")
    targets = ["cuframes-conform", "cuframes-pub", "cuframes-sub"] if args.harness_only else []
    # The whole tree from scratch: on a loaded 2-core machine that is more than 15 minutes.
    if not tree.build_targets(targets, blog / "baseline-build.log", timeout=3600):
        print(f"mutation: the unmutated tree does not build (or not within an hour), see "
              f"{blog / 'baseline-build.log'}",
              file=sys.stderr)
        return 2
    manifest = write_manifest(tree)
    bdir = blog / "baseline"
    bdir.mkdir(exist_ok=True)
    st, base_cases, h_s = run_harness(tree, manifest, bdir, 1800)
    if base_cases is None:
        print(f"mutation: the harness produced no results on the baseline ({st}), see "
              f"{bdir / 'harness.log'}", file=sys.stderr)
        return 2
    dirs = [d for d in args.ctest_dirs.split(",") if d and (tree.build / d).is_dir()]
    if args.harness_only:  # no white-box baseline needed
        st_c, base_ctest, c_s, st_p, base_py, p_s = "ok", {}, 0.0, "ok", {}, 0.0
    else:
        st_c, base_ctest, c_s = run_ctest(tree, dirs, bdir, 3600, [])
        st_p, base_py, p_s = run_pytest_all(tree, bdir, 3600)
    if base_ctest is None or base_py is None:
        print(f"mutation: the white-box tests produced no results on the baseline, see "
              f"{bdir}", file=sys.stderr)
        return 2
    not_passing = sorted(c for c, o in base_cases.items() if o != "PASS")
    ctest_bad = sorted(t for t, o in base_ctest.items() if o == "failed")
    py_bad = sorted(t for t, o in base_py.items() if o == "failed")
    state["baseline"] = {"harness_s": h_s, "ctest_s": c_s, "pytest_s": p_s,
                         "cases": len(base_cases), "cases_not_passing": not_passing,
                         "ctest": len(base_ctest), "ctest_failing": ctest_bad,
                         "pytest": len(base_py), "pytest_failing": py_bad}
    print(f"    harness {len(base_cases)} cases in {h_s:.0f} s ({len(not_passing)} not PASS: "
          f"they cannot kill); ctest {len(base_ctest)} tests in {c_s:.0f} s "
          f"({len(ctest_bad)} failing); pytest interop {len(base_py)} in {p_s:.0f} s "
          f"({len(py_bad)} failing)")
    h_timeout = max(60.0, args.timeout_factor * h_s)
    c_timeout = max(180.0, args.timeout_factor * c_s)
    p_timeout = max(120.0, args.timeout_factor * p_s)

    for m in order:
        if in_sample >= args.n:
            break
        if m.id in done:
            continue
        t0 = time.monotonic()
        row = {"id": m.id, "file": m.file, "line": m.line, "orig": m.orig, "new": m.new,
               "verdict": ERROR, "killed_by": [], "phase": ""}
        mdir = blog / m.id.replace(":", "_")
        shutil.rmtree(mdir, ignore_errors=True)
        mdir.mkdir(parents=True)
        print(f"--> [{in_sample + 1}/{args.n}] {m.id} {m.file}:{m.line}  {m.short()[:100]}",
              flush=True)
        try:
            tree.apply(m)
            tb = time.monotonic()
            if not tree.build_targets(["cuframes-pub", "cuframes-sub"], mdir / "build.log"):
                row["verdict"] = NOT_COMPILED
                row["build_s"] = time.monotonic() - tb
            else:
                row["build_s"] = time.monotonic() - tb
                st, cases, dt = run_harness(tree, manifest, mdir, h_timeout)
                row["harness_s"] = dt
                killers = harness_kills(base_cases, cases, st)
                if killers and st not in ("timeout", "crash"):
                    # Confirm against flakes on a loaded machine: re-run killing cases one at a
                    # time (--only takes one id) until one fails again.
                    confirmed = False
                    for case in killers[:3]:
                        st2, cases2, dt2 = run_harness(tree, manifest, mdir, h_timeout,
                                                       only=case)
                        row["harness_s"] += dt2
                        if harness_kills({case: "PASS"}, cases2, st2):
                            confirmed = True
                            break
                    if not confirmed:
                        row["flaky_cases"] = killers
                        killers = []
                row["killed_by"] = killers
                if killers:
                    row["verdict"] = verdict(killers, None)
                elif args.harness_only:
                    row["verdict"] = NOT_BY_HARNESS
                else:
                    tw = time.monotonic()
                    if not tree.build_targets([f"{d}/all" for d in dirs], mdir / "build-all.log"):
                        # The library and adapters built but the tests do not: the mutant
                        # changed an API the tests call (a declaration commented out, ...).
                        # That is a compile error, not a behaviour a test observed, so the
                        # mutant is replaced by the next draw like any other that does not
                        # compile.
                        row["verdict"] = NOT_COMPILED
                        row["note"] = "white-box tests do not build"
                        raise _NotCompiled
                    else:
                        st_c, res_c, _ = run_ctest(tree, dirs, mdir, c_timeout, ctest_bad)
                        wb = whitebox_kills(base_ctest, res_c, st_c, "ctest")
                        if wb and "<" not in wb[0]:
                            # Confirm against flakes: the failing tests again, alone.
                            st_c, res_c, _ = run_ctest(tree, dirs, mdir, c_timeout, [],
                                                       select=wb[:3])
                            again = whitebox_kills({t: "passed" for t in wb[:3]}, res_c, st_c,
                                                   "ctest")
                            if not again:
                                row["flaky_tests"] = wb
                            wb = again if len(wb) <= 3 or not again else wb
                        if not wb:
                            st_p, res_p, _ = run_pytest(tree, mdir, p_timeout, py_bad)
                            wb = whitebox_kills(base_py, res_p, st_p, "pytest")
                            if wb and "<" not in wb[0]:
                                st_p, res_p, _ = run_pytest(tree, mdir, p_timeout, [],
                                                            nodes=wb[:3])
                                again = whitebox_kills({t: "passed" for t in wb[:3]}, res_p,
                                                       st_p, "pytest")
                                if not again:
                                    row.setdefault("flaky_tests", []).extend(wb)
                                wb = again if len(wb) <= 3 or not again else wb
                    row["whitebox_s"] = time.monotonic() - tw
                    row["killed_by"] = wb
                    row["verdict"] = verdict([], wb)
        except _NotCompiled:
            pass
        except Exception as e:  # noqa: BLE001 - recorded, the run goes on
            row["verdict"] = ERROR
            row["error"] = f"{type(e).__name__}: {e}"
        finally:
            tree.restore()
        row["seconds"] = time.monotonic() - t0
        state["rows"].append(row)
        done.add(m.id)
        if row["verdict"] != NOT_COMPILED:
            in_sample += 1
        print(f"    {row['verdict']} in {row['seconds']:.0f} s"
              + (f": {', '.join(row['killed_by'][:4])}" if row["killed_by"] else ""), flush=True)
        if row["verdict"] == MISS and args.misses_md:
            append_miss(Path(args.misses_md), row)
        write_reports(reports, state, exemptions)
    return 0


def run_pytest_all(tree: Tree, out: Path, timeout: float):
    """The baseline pytest run: without -x, so every failing test is known."""
    junit = out / "pytest.xml"
    env = dict(os.environ, CUFRAMES_BUILD_DIR=str(tree.build))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           f"--junitxml={junit}", "interop"]
    st, _, dt = run_bounded(cmd, timeout, out / "pytest.log", cwd=tree.src, env=env)
    r = junit_results(junit)
    if r is not None:
        r = {_node_id(k): v for k, v in r.items()}
    return st, r, dt


if __name__ == "__main__":
    sys.exit(main())
