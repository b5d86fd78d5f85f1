#!/usr/bin/env python3
"""spec_gate.py: the spec-change gate. Does this change of the spec break existing peers?

  spec_gate.py [--against REF] [--no-behaviour] [--reports DIR] [--build-dir DIR] ...
  spec_gate.py --rules                       the rule table (ID, class, meaning)
  spec_gate.py release VERSION [--commit C]  snapshot the spec as released VERSION

REF is a released version ("0.2": spec/releases/0.2/, its commit from spec/releases/index.json)
or any git ref (the spec files are read with `git show REF:spec/...`); the default is the newest
release. The gate
  1. diffs the twin (spec_diff.py): every change named by a rule and classified BREAKING,
     COMPATIBLE or EDITORIAL; a BREAKING change is excused by the matching version bump
     (proto_version, or SEGMENT_LAYOUT_VERSION / RING_LAYOUT_VERSION for shared memory) and
     then reported as breaking-with-bump, or, for requirement and state-row rules only, by a
     clarification the new twin lists ("clarifications": [{"id": ..., "reason": ...}]);
  2. reports the requirement delta and fails a new or changed MUST that no conformance case
     names (`cuframes-conform --list --json`) and no exemption lists;
  3. unless --no-behaviour, builds REF in a git worktree and runs the harnesses and adapters of
     both trees against each other (spec_behaviour.py), reporting every requirement whose
     verdict flips.
Outputs: the console, and reports/spec-gate.{txt,md,json} plus reports/spec-gate.annotations
(GitHub workflow command lines, also printed when GITHUB_ACTIONS=true).
Exit status: 0 compatible (or breaking with a bump, or no changes), 1 breaking without a bump,
an untested MUST or a behaviour flip nothing excuses, 2 the gate could not run (a check it
needed could not be determined).

Python 3.11+ standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field as dc_field
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))

import spec_diff as sd  # noqa: E402

SPEC_DIR = TOOLS.parent
ROOT = SPEC_DIR.parent
RELEASES = SPEC_DIR / "releases"
INDEX = RELEASES / "index.json"
SPEC_FILES = ("cuframes.json", "PROTOCOL.md", "ADAPTER.md")
VERSION_RE = re.compile(r"^\d+\.\d+(?:\.\d+)?$")

EXIT_OK, EXIT_FAIL, EXIT_CANNOT = 0, 1, 2

# Checks the gate makes beyond the twin diff; listed with the rules in --rules and the README.
GATE_CHECKS = {
    "PROTOCOL_TEXT_CHANGED": ("EDITORIAL", "PROTOCOL.md changed outside the tagged requirement "
                                           "sentences (shown as a line count; a human confirms)"),
    "ADAPTER_TEXT_CHANGED": ("EDITORIAL", "ADAPTER.md (the adapter contract) changed; the "
                                          "behaviour step judges its effect"),
    "CLARIFICATION_STALE": ("WARNING", "a listed clarification matches no breaking requirement "
                                       "or state-row change"),
    "BUMP_WITHOUT_BREAK": ("NOTICE", "a version was bumped although no change is breaking"),
    "UNTESTED_MUST": ("FAIL", "a new or changed MUST that no conformance case names and no "
                              "exemption lists"),
    "COVERAGE_UNKNOWN": ("CANNOT RUN", "new or changed MUSTs exist but the harness's case list "
                                       "could not be read (exit 2)"),
    "VERDICT_FLIPPED": ("FAIL", "a requirement's verdict differs between REF x new and the "
                                "same-tree baselines (excused by a version bump or a "
                                "clarification of that ID)"),
}


# ---------------------------------------------------------------------------------------------
# Loading both sides
# ---------------------------------------------------------------------------------------------

class GateError(Exception):
    """The gate cannot run (exit 2)."""


@dataclass
class Side:
    label: str                      # "release 0.2 (f8ca7e7)", "working tree", "origin/main"
    twin: dict
    twin_raw: str
    twin_path: str                  # for annotations and messages
    texts: dict = dc_field(default_factory=dict)   # file name -> text (PROTOCOL.md, ADAPTER.md)
    commit: str | None = None       # git commit holding these files, when known


def git(*args: str, cwd: Path = ROOT, check: bool = True) -> str:
    r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise GateError(f"git {' '.join(args)}: {r.stderr.strip() or 'failed'}")
    return r.stdout


def load_index() -> list[dict]:
    """The releases, oldest first ([] when there is no index)."""
    if not INDEX.exists():
        return []
    try:
        data = json.loads(INDEX.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise GateError(f"{INDEX}: {e}") from e
    rel = data.get("releases") if isinstance(data, dict) else None
    if not isinstance(rel, list):
        raise GateError(f"{INDEX}: no 'releases' list")
    return [r for r in rel if isinstance(r, dict) and isinstance(r.get("version"), str)]


def version_key(v: str) -> tuple:
    return tuple(int(x) for x in v.split("."))


def parse_twin(raw: str, where: str) -> dict:
    try:
        twin = json.loads(raw)
    except json.JSONDecodeError as e:
        raise GateError(f"{where}:{e.lineno}: not valid JSON: {e.msg}") from e
    if not isinstance(twin, dict):
        raise GateError(f"{where}: top level is not a JSON object")
    return twin


def load_release(version: str) -> Side:
    entry = next((r for r in load_index() if r["version"] == version), None)
    d = RELEASES / version
    if entry is None or not (d / "cuframes.json").exists():
        known = ", ".join(r["version"] for r in load_index()) or "none"
        raise GateError(f"no release {version} (spec/releases/index.json lists: {known})")
    raw = (d / "cuframes.json").read_text(encoding="utf-8")
    texts = {n: (d / n).read_text(encoding="utf-8") for n in SPEC_FILES[1:] if (d / n).exists()}
    commit = entry.get("commit")
    short = f" ({commit[:7]})" if isinstance(commit, str) else ""
    return Side(f"release {version}{short}", parse_twin(raw, str(d / "cuframes.json")), raw,
                f"spec/releases/{version}/cuframes.json", texts,
                commit if isinstance(commit, str) else None)


def load_git_ref(ref: str) -> Side:
    r = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise GateError(f"{ref!r} is neither a released version nor a git ref this repository "
                        "knows (a shallow clone lacks history: fetch with fetch-depth 0)")
    commit = r.stdout.strip()
    show = subprocess.run(["git", "show", f"{commit}:spec/cuframes.json"], cwd=ROOT,
                          capture_output=True, text=True)
    if show.returncode != 0:
        raise GateError(f"{ref} ({commit[:7]}) has no spec/cuframes.json")
    texts = {}
    for name in SPEC_FILES[1:]:
        t = subprocess.run(["git", "show", f"{commit}:spec/{name}"], cwd=ROOT,
                           capture_output=True, text=True)
        if t.returncode == 0:
            texts[name] = t.stdout
    return Side(f"{ref} ({commit[:7]})", parse_twin(show.stdout, f"{ref}:spec/cuframes.json"),
                show.stdout, "spec/cuframes.json", texts, commit)


def load_ref(ref: str | None) -> Side:
    if ref is None:
        rel = load_index()
        if not rel:
            raise GateError("no release to compare against (spec/releases/index.json is empty); "
                            "give --against REF")
        ref = max((r["version"] for r in rel), key=version_key)
    if VERSION_RE.match(ref) and (RELEASES / ref).is_dir():
        return load_release(ref)
    if ref.startswith("v") and VERSION_RE.match(ref[1:]) and (RELEASES / ref[1:]).is_dir():
        return load_release(ref[1:])
    return load_git_ref(ref)


def load_files(spec: Path, text: Path | None, adapter: Path | None, label: str) -> Side:
    try:
        raw = spec.read_text(encoding="utf-8")
    except OSError as e:
        raise GateError(f"cannot read {spec}: {e.strerror}") from e
    texts = {}
    for name, p in (("PROTOCOL.md", text), ("ADAPTER.md", adapter)):
        if p is not None and p.exists():
            texts[name] = p.read_text(encoding="utf-8")
    try:
        shown = str(spec.resolve().relative_to(ROOT))
    except ValueError:
        shown = str(spec)
    return Side(label, parse_twin(raw, str(spec)), raw, shown, texts)


# ---------------------------------------------------------------------------------------------
# Requirement sentences from PROTOCOL.md, uncut
# ---------------------------------------------------------------------------------------------

def full_requirement_text(markdown: str | None) -> dict[str, str]:
    """ID -> the whole statement its tag labels (the twin keeps only the first 240 characters).
    Uses check_spec's parser; returns {} when the text is absent or cannot be parsed."""
    if not markdown:
        return {}
    try:
        import check_spec as cs
        out: dict[str, str] = {}
        for kind, _line, text, _section in cs._blocks(markdown):
            if kind == "heading":
                continue
            scan = cs.INLINE_CODE_RE.sub(lambda m: " " * len(m.group(0)), text)
            for m in cs.TAG_RE.finditer(scan):
                body, s, e = text, m.start(), m.end()
                if kind == "row":
                    cs_ = text.rfind("|", 0, m.start()) + 1
                    ce = text.find("|", m.end())
                    ce = len(text) if ce < 0 else ce
                    body, s, e = text[cs_:ce], m.start() - cs_, m.end() - cs_
                try:
                    sentence = cs.tag_sentence(body, s, e, max_len=1 << 20)
                except TypeError:   # a check_spec whose sentences are never cut
                    sentence = cs.tag_sentence(body, s, e)
                out.setdefault(m.group(1), sentence)
        return out
    except Exception:  # noqa: BLE001 - a parser change must not stop the gate; twin text remains
        return {}


def untagged_text_delta(old_md: str | None, new_md: str | None) -> int:
    """Lines of PROTOCOL.md that changed outside sentences carrying a requirement tag."""
    if old_md is None or new_md is None or old_md == new_md:
        return 0
    import difflib
    tag = re.compile(r"\[[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-[0-9]{2} (?:MUST|SHOULD|MAY)\]")
    n = 0
    for line in difflib.unified_diff(old_md.splitlines(), new_md.splitlines(), n=0,
                                     lineterm=""):
        if line.startswith(("---", "+++", "@@")):
            continue
        if line[:1] in "+-" and line[1:].strip() and not tag.search(line):
            n += 1
    return n


# ---------------------------------------------------------------------------------------------
# Line numbers in the twin (for annotations)
# ---------------------------------------------------------------------------------------------

class TwinLocator:
    """Finds the line (1-based) of a struct, field, constant, enum, message, error, state row or
    requirement in the twin's text. The twin keeps one item per line, so a scoped search of
    lines suffices; anything not found falls back to its container, then to line 1."""

    def __init__(self, raw: str):
        self.lines = raw.splitlines()
        first = next((ln for ln in self.lines if ln.lstrip().startswith('"')), "")
        self.top = " " * (len(first) - len(first.lstrip()))

    def _find(self, pattern: str, start: int = 0, stop: int | None = None) -> int | None:
        rx = re.compile(pattern)
        for i in range(start, len(self.lines) if stop is None else stop):
            if rx.search(self.lines[i]):
                return i
        return None

    def _block(self, key: str) -> tuple[int, int] | None:
        i = self._find("^" + self.top + '"' + re.escape(key) + r'"\s*:')
        if i is None:
            return None
        j = self._find("^" + self.top + r'"[^"]+"\s*:', i + 1)
        return i, (len(self.lines) if j is None else j)

    def _item_block(self, top: str, name: str) -> tuple[int, int] | None:
        b = self._block(top)
        if b is None:
            return None
        i = self._find(r'^\s*"' + re.escape(name) + r'"\s*:', b[0] + 1, b[1])
        if i is None:
            return None
        indent = len(self.lines[i]) - len(self.lines[i].lstrip())
        end = b[1]
        for k in range(i + 1, b[1]):
            s = self.lines[k]
            if s.strip() and len(s) - len(s.lstrip()) <= indent and s.strip() not in ("}", "},"):
                end = k
                break
            if s.strip() in ("}", "},") and len(s) - len(s.lstrip()) == indent:
                end = k
                break
        return i, end

    def line(self, loc: tuple) -> int:
        kind = loc[0] if loc else "top"
        hit = None
        if kind == "top":
            b = self._block(loc[1])
            hit = b[0] if b else None
        elif kind == "struct":
            b = self._item_block("structs", loc[1])
            hit = b[0] if b else self.line(("top", "structs")) - 1
        elif kind == "field":
            b = self._item_block("structs", loc[1])
            if b:
                hit = self._find(r'"name"\s*:\s*"' + re.escape(loc[2]) + '"', b[0], b[1] + 1)
                hit = b[0] if hit is None else hit
        elif kind in ("constant", "enum"):
            b = self._item_block("constants" if kind == "constant" else "enums", loc[1])
            hit = b[0] if b else self.line(("top", kind + "s")) - 1
        elif kind in ("message", "error"):
            b = self._block(kind + "s")
            if b:
                hit = self._find(r'"name"\s*:\s*"' + re.escape(loc[1]) + '"', b[0], b[1])
                hit = b[0] if hit is None else hit
        elif kind == "machine":
            b = self._item_block("state_machines", loc[1])
            hit = b[0] if b else self.line(("top", "state_machines")) - 1
        elif kind == "row":
            b = self._item_block("state_machines", loc[1])
            if b:
                hit = self._find(r'"from"\s*:\s*"' + re.escape(loc[2]) + r'"\s*,\s*"event"\s*:\s*"'
                                 + re.escape(loc[3]) + '"', b[0], b[1] + 1)
                hit = b[0] if hit is None else hit
        elif kind == "requirement":
            b = self._block("requirements")
            if b:
                hit = self._find(r'"id"\s*:\s*"' + re.escape(loc[1]) + '"', b[0], b[1])
                hit = b[0] if hit is None else hit
        return (hit if hit is not None else 0) + 1


# ---------------------------------------------------------------------------------------------
# Classification: bumps and clarifications
# ---------------------------------------------------------------------------------------------

BUMP_CONSTANT = {sd.SEG: "SEGMENT_LAYOUT_VERSION", sd.RING: "RING_LAYOUT_VERSION",
                 sd.PROTO: "proto_versions"}


def clarifications(twin: dict) -> dict[str, str]:
    """ID -> reason from the twin's top-level "clarifications" (absent: none)."""
    out: dict[str, str] = {}
    for c in twin.get("clarifications") or []:
        if isinstance(c, dict) and isinstance(c.get("id"), str):
            out[c["id"]] = str(c.get("reason", "")).strip()
    return out


@dataclass
class Verdict:
    changes: list
    bumps: set
    clar_used: dict            # id -> reason
    clar_live: dict            # every clarification of the new twin not inherited from REF
    clar_inherited: list       # ids listed identically in REF (from its release)
    findings: list             # {"check", "severity", "message", "loc"}


def classify(changes: list, old: dict, new: dict) -> Verdict:
    bumps: set = set()
    for c in changes:
        if c.rule == "PROTO_VERSION_BUMPED":
            bumps.add(sd.PROTO)
        elif c.rule == "LAYOUT_VERSION_BUMPED":
            bumps.add(sd.SEG if c.where == "SEGMENT_LAYOUT_VERSION" else sd.RING)
    new_clar, old_clar = clarifications(new), clarifications(old)
    inherited = sorted(k for k, v in new_clar.items() if old_clar.get(k) == v)
    live = {k: v for k, v in new_clar.items() if k not in inherited}
    used: dict[str, str] = {}
    for c in changes:
        if c.cls != sd.BREAKING:
            c.outcome = c.cls
            continue
        if c.rule in sd.CLARIFIABLE and c.clar_id in live:
            c.outcome = "CLARIFICATION"
            c.note = f"acknowledged as a clarification: {live[c.clar_id] or '(no reason given)'}"
            used[c.clar_id] = live[c.clar_id]
        elif c.excused_by & bumps:
            c.outcome = "BREAKING_WITH_BUMP"
            c.note = "excused by the " + " and ".join(sorted(c.excused_by & bumps)) + " bump"
        else:
            c.outcome = sd.BREAKING
            need = " or ".join(f"{b} ({BUMP_CONSTANT[b]})" for b in sorted(c.excused_by))
            c.note = f"needs a {need} bump" if need else "nothing excuses it"
            if c.rule in sd.CLARIFIABLE:
                c.note += f", or a clarification of {c.clar_id} in the twin"
    findings = []
    for cid in sorted(live):
        if cid in used:
            continue
        matching = [c for c in changes if c.clar_id == cid]
        why = ("matches no change" if not matching else
               f"its change is {matching[0].outcome}, not breaking: the entry is not needed")
        findings.append({"check": "CLARIFICATION_STALE", "severity": "warning",
                         "message": f"clarification {cid} {why}",
                         "loc": _clar_loc(cid)})
    if bumps and not any(c.cls == sd.BREAKING for c in changes):
        findings.append({"check": "BUMP_WITHOUT_BREAK", "severity": "notice",
                         "message": "version bump (" + ", ".join(sorted(bumps)) + ") with no "
                                    "breaking change", "loc": ("top", "proto_versions")})
    return Verdict(changes, bumps, used, live, inherited, findings)


def _clar_loc(cid: str) -> tuple:
    return ("top", "clarifications")


# ---------------------------------------------------------------------------------------------
# MUST coverage: new or changed MUSTs need a case or an exemption
# ---------------------------------------------------------------------------------------------

def must_targets(changes: list, new: dict) -> list[str]:
    levels = {r.get("id"): r.get("level") for r in new.get("requirements") or []
              if isinstance(r, dict)}
    out: list[str] = []
    for c in changes:
        if c.rule in ("REQUIREMENT_ADDED_MUST", "REQUIREMENT_RAISED", "REQUIREMENT_TEXT_CHANGED",
                      "REQUIREMENT_REWORDED", "REQUIREMENT_LOWERED") \
                and levels.get(c.clar_id) == "MUST" and c.clar_id not in out:
            out.append(c.clar_id)
    return out


def parse_exemptions(path: Path) -> dict[str, str]:
    """ID -> reason, the format of conformance/coverage_exemptions.txt."""
    out: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return out
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(None, 1)
        out[parts[0]] = parts[1] if len(parts) > 1 else ""
    return out


LIST_LINE_RE = re.compile(r"^(\S+)\s+\[[^\]]*\]\s+(\S+)\s*$")


def harness_cases(harness: Path, spec: Path) -> tuple[dict[str, list[str]] | None, str]:
    """requirement ID -> case IDs naming it, from `harness --list --json` (or the text --list
    of a harness without --json). Returns (None, why) when it cannot be read."""
    if not harness.exists():
        return None, (f"the harness is not built ({harness}); build it with `cmake --build "
                      "--preset default --target cuframes-conform`")
    for args in (["--list", "--json"], ["--list"]):
        try:
            r = subprocess.run([str(harness), *args, "--spec", str(spec)], capture_output=True,
                               text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"{harness} --list failed: {e}"
        if r.returncode != 0:
            continue
        by_req: dict[str, list[str]] = {}
        if "--json" in args:
            try:
                cases = json.loads(r.stdout)
            except json.JSONDecodeError:
                continue
            for c in cases if isinstance(cases, list) else []:
                for rid in c.get("requirements", []) if isinstance(c, dict) else []:
                    by_req.setdefault(rid, []).append(c.get("id", "?"))
        else:
            for line in r.stdout.splitlines():
                m = LIST_LINE_RE.match(line)
                if m:
                    for rid in m.group(2).split(","):
                        by_req.setdefault(rid, []).append(m.group(1))
        return by_req, ""
    return None, f"{harness} --list exited {r.returncode}: {r.stderr.strip()[:200]}"


def check_musts(targets: list[str], harness: Path, spec: Path, exemptions: Path) -> dict:
    res = {"targets": targets, "tested": {}, "exempt": {}, "untested": [], "status": "ok",
           "reason": ""}
    if not targets:
        res["status"] = "nothing to check"
        return res
    cases, why = harness_cases(harness, spec)
    if cases is None:
        res["status"] = "unknown"
        res["reason"] = why
        return res
    ex = parse_exemptions(exemptions)
    for rid in targets:
        if rid in cases:
            res["tested"][rid] = cases[rid]
        elif rid in ex:
            res["exempt"][rid] = ex[rid]
        else:
            res["untested"].append(rid)
    res["status"] = "fail" if res["untested"] else "ok"
    return res


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------

OUTCOME_ORDER = ["BREAKING", "BREAKING_WITH_BUMP", "CLARIFICATION", "COMPATIBLE", "EDITORIAL"]
OUTCOME_LABEL = {"BREAKING": "BREAKING", "BREAKING_WITH_BUMP": "breaking-with-bump",
                 "CLARIFICATION": "clarification", "COMPATIBLE": "compatible",
                 "EDITORIAL": "editorial"}


def requirement_delta(changes: list) -> dict:
    d = {"added": [], "removed": [], "relevelled": [], "reworded": [], "moved": []}
    for c in changes:
        key = {"REQUIREMENT_ADDED_MUST": "added", "REQUIREMENT_ADDED_SHOULD_MAY": "added",
               "REQUIREMENT_REMOVED": "removed", "REQUIREMENT_RAISED": "relevelled",
               "REQUIREMENT_LOWERED": "relevelled", "REQUIREMENT_LOWERED_OPTIONAL": "relevelled",
               "REQUIREMENT_TEXT_CHANGED": "reworded", "REQUIREMENT_REWORDED": "reworded",
               "REQUIREMENT_MOVED": "moved"}.get(c.rule)
        if key and c.clar_id not in d[key]:
            d[key].append(c.clar_id)
    return d


def decide(verdict: Verdict, musts: dict, behaviour: dict | None) -> tuple[int, list[str]]:
    fail, cannot = [], []
    n_break = sum(1 for c in verdict.changes if c.outcome == "BREAKING")
    if n_break:
        fail.append(f"{n_break} breaking change{'s' if n_break != 1 else ''} without a version "
                    "bump")
    if musts["untested"]:
        fail.append(f"{len(musts['untested'])} new or changed MUST{'s' if len(musts['untested']) != 1 else ''} "
                    f"without a conformance case or exemption: {', '.join(musts['untested'])}")
    if musts["status"] == "unknown":
        cannot.append(f"MUST coverage could not be determined: {musts['reason']}")
    if behaviour is not None:
        if behaviour.get("status") == "error":
            cannot.append(f"behaviour step could not run: {behaviour.get('reason')}")
        unexcused = [f for f in behaviour.get("flips", []) if not f.get("excused")]
        if unexcused:
            ids = sorted({f["requirement"] for f in unexcused})
            fail.append(f"{len(ids)} requirement verdict{'s' if len(ids) != 1 else ''} flipped "
                        f"between REF and the new tree: {', '.join(ids)}")
    if fail:
        return EXIT_FAIL, fail + cannot
    if cannot:
        return EXIT_CANNOT, cannot
    return EXIT_OK, []


def console_report(g: dict) -> str:
    o: list[str] = []
    o.append(f"spec gate: {g['new']['label']} against {g['ref']['label']}")
    changes = g["changes"]
    if not changes:
        o.append("no changes: the twin is identical to the reference")
    else:
        counts = {k: sum(1 for c in changes if c["outcome"] == k) for k in OUTCOME_ORDER}
        o.append("changes: " + ", ".join(f"{v} {OUTCOME_LABEL[k]}" for k, v in counts.items()
                                         if v))
        for k in OUTCOME_ORDER:
            for c in (c for c in changes if c["outcome"] == k):
                o.append(f"  {OUTCOME_LABEL[k]:<18} {c['rule']:<34} {c['message']}"
                         f"  [{g['new']['twin_path']}:{c['line']}]")
                if c.get("note"):
                    o.append(f"  {'':<18} {'':<34} -> {c['note']}")
                if c.get("word_diff"):
                    o.append(f"  {'':<18} {'':<34}    word diff: {c['word_diff']}")
    for f in g["findings"]:
        o.append(f"  {f['severity']:<18} {f['check']:<34} {f['message']}")
    if g["bumps"]:
        o.append("version bumps: " + ", ".join(g["bumps"]))
    cl = g["clarifications"]
    if cl["listed"] or cl["inherited"]:
        o.append(f"clarifications: {len(cl['used'])} of {len(cl['listed'])} listed acknowledge a "
                 f"breaking change" + (f"; {len(cl['inherited'])} inherited from REF, ignored"
                                       if cl["inherited"] else ""))
    rd = g["requirement_delta"]
    if any(rd.values()):
        o.append("requirement delta: " + "; ".join(
            f"{k} {len(v)} ({', '.join(v[:12])}{', ...' if len(v) > 12 else ''})"
            for k, v in rd.items() if v))
    m = g["musts"]
    if m["status"] == "nothing to check":
        o.append("MUST coverage: no new or changed MUST")
    elif m["status"] == "unknown":
        o.append(f"MUST coverage: could not be determined ({m['reason']})")
    else:
        o.append(f"MUST coverage: {len(m['tested'])} tested, {len(m['exempt'])} exempt, "
                 f"{len(m['untested'])} untested of {len(m['targets'])} new or changed MUSTs"
                 + (f": untested {', '.join(m['untested'])}" if m["untested"] else ""))
    b = g.get("behaviour")
    if b is None:
        o.append(f"behaviour: skipped ({g.get('behaviour_skip_reason')})")
    else:
        o.extend(b.get("console", [f"behaviour: {b.get('status')}"]))
    o.append(f"result: {'PASS' if g['exit_code'] == 0 else 'FAIL' if g['exit_code'] == 1 else 'CANNOT RUN'}"
             f" (exit {g['exit_code']})" + (": " + "; ".join(g["reasons"]) if g["reasons"] else
                                            ""))
    return "\n".join(o) + "\n"


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown_report(g: dict) -> str:
    verdict = {0: "PASS", 1: "FAIL", 2: "CANNOT RUN"}[g["exit_code"]]
    o = [f"### cuframes spec gate: {verdict}", "",
         f"`{g['new']['twin_path']}` ({g['new']['label']}) against {g['ref']['label']}.", ""]
    if g["reasons"]:
        o += [f"- **{_md_escape(r)}**" for r in g["reasons"]] + [""]
    changes = g["changes"]
    if not changes:
        o += ["No changes: the twin is identical to the reference.", ""]
    else:
        o += ["| outcome | rule | where | change | line |", "|---|---|---|---|---:|"]
        for k in OUTCOME_ORDER:
            for c in (c for c in changes if c["outcome"] == k):
                msg = c["message"] + (f" ({c['note']})" if c.get("note") else "")
                o.append(f"| {OUTCOME_LABEL[k]} | `{c['rule']}` | `{_md_escape(c['where'])}` | "
                         f"{_md_escape(msg)} | {c['line']} |")
        o.append("")
        diffs = [c for c in changes if c.get("word_diff")]
        if diffs:
            o += ["<details><summary>Text changes (word diff)</summary>", ""]
            for c in diffs:
                o += [f"- `{c['where']}` ({OUTCOME_LABEL[c['outcome']]})"
                      + (f", meaning words: {', '.join(c['meaning_tokens'])}"
                         if c.get("meaning_tokens") else ", wording only: please confirm"),
                      f"  > {_md_escape(c['word_diff'])}"]
            o += ["", "</details>", ""]
    for f in g["findings"]:
        o.append(f"- {f['severity']}: `{f['check']}` {_md_escape(f['message'])}")
    if g["findings"]:
        o.append("")
    rd = g["requirement_delta"]
    if any(rd.values()):
        o += ["| requirements | IDs |", "|---|---|"]
        o += [f"| {k} | {', '.join(v)} |" for k, v in rd.items() if v]
        o.append("")
    m = g["musts"]
    if m["status"] == "unknown":
        o += [f"MUST coverage could not be determined: {_md_escape(m['reason'])}", ""]
    elif m["targets"]:
        o += [f"MUST coverage: {len(m['tested'])} tested, {len(m['exempt'])} exempt, "
              f"{len(m['untested'])} untested" + (f" (**{', '.join(m['untested'])}**)"
                                                  if m["untested"] else "") + ".", ""]
    b = g.get("behaviour")
    if b is None:
        o += [f"Behaviour step skipped: {_md_escape(str(g.get('behaviour_skip_reason')))}", ""]
    else:
        o += b.get("markdown", [f"Behaviour: {b.get('status')}"]) + [""]
    return "\n".join(o)


def _annot_escape(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotations(g: dict) -> list[str]:
    path = g["new"]["twin_path"]
    out = []
    level = {"BREAKING": "error", "BREAKING_WITH_BUMP": "warning", "CLARIFICATION": "notice",
             "COMPATIBLE": "notice", "EDITORIAL": "notice"}
    for c in g["changes"]:
        msg = c["message"] + (f" ({c['note']})" if c.get("note") else "")
        out.append(f"::{level[c['outcome']]} file={path},line={c['line']},"
                   f"title={c['rule']}::{_annot_escape(msg)}")
    for f in g["findings"]:
        lvl = {"warning": "warning", "notice": "notice"}.get(f["severity"], "error")
        out.append(f"::{lvl} file={path},line={f['line']},title={f['check']}::"
                   f"{_annot_escape(f['message'])}")
    for rid in g["musts"]["untested"]:
        out.append(f"::error file={path},line={g['musts_lines'].get(rid, 1)},title=UNTESTED_MUST::"
                   f"{rid} is a new or changed MUST with no conformance case and no exemption")
    if g["musts"]["status"] == "unknown":
        first = g["musts"]["targets"][0]
        out.append(f"::error file={path},line={g['musts_lines'].get(first, 1)},"
                   f"title=COVERAGE_UNKNOWN::{_annot_escape(g['musts']['reason'])} (new or "
                   f"changed MUSTs: {', '.join(g['musts']['targets'])})")
    b = g.get("behaviour") or {}
    for f in b.get("flips", []):
        lvl = "warning" if f.get("excused") else "error"
        out.append(f"::{lvl} file={path},line={g['musts_lines'].get(f['requirement'], 1)},"
                   f"title=VERDICT_FLIPPED::{_annot_escape(f['message'])}")
    return out


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def rules_table() -> str:
    rows = [f"{'rule':<36} {'class':<11} meaning"]
    for rule, (cls, text) in sd.RULES.items():
        extra = ""
        if cls == sd.BREAKING:
            extra = " [clarifiable]" if rule in sd.CLARIFIABLE else ""
        rows.append(f"{rule:<36} {cls:<11} {text}{extra}")
    rows.append("")
    rows.append(f"{'gate check':<36} {'effect':<11} meaning")
    for rule, (cls, text) in GATE_CHECKS.items():
        rows.append(f"{rule:<36} {cls:<11} {text}")
    return "\n".join(rows) + "\n"


def run_gate(args) -> int:
    t0 = time.monotonic()
    reports = Path(args.reports)
    try:
        if args.old_spec:
            ref = load_files(Path(args.old_spec), Path(args.old_text) if args.old_text else None,
                             None, f"file {args.old_spec}")
        else:
            ref = load_ref(args.against)
        new = load_files(Path(args.spec), Path(args.text) if args.text else None,
                         Path(args.adapter) if args.adapter else None, "working tree"
                         if Path(args.spec).resolve() == (SPEC_DIR / "cuframes.json").resolve()
                         else f"file {args.spec}")
    except GateError as e:
        print(f"spec gate: cannot run: {e}", file=sys.stderr)
        return EXIT_CANNOT
    try:
        changes = sd.diff_twins(ref.twin, new.twin,
                                full_requirement_text(ref.texts.get("PROTOCOL.md")),
                                full_requirement_text(new.texts.get("PROTOCOL.md")))
    except Exception as e:  # noqa: BLE001 - a twin too broken to diff cannot be judged
        print(f"spec gate: cannot run: the twins could not be compared ({type(e).__name__}: "
              f"{e}); run spec/tools/check_spec.py", file=sys.stderr)
        return EXIT_CANNOT
    verdict = classify(changes, ref.twin, new.twin)
    untagged = untagged_text_delta(ref.texts.get("PROTOCOL.md"), new.texts.get("PROTOCOL.md"))
    if untagged:
        verdict.findings.append({"check": "PROTOCOL_TEXT_CHANGED", "severity": "notice",
                                 "message": f"PROTOCOL.md: {untagged} changed line"
                                            f"{'s' if untagged != 1 else ''} outside tagged "
                                            "requirement sentences (a human confirms)",
                                 "loc": ("top", "document")})
    if ("ADAPTER.md" in ref.texts and "ADAPTER.md" in new.texts
            and ref.texts["ADAPTER.md"] != new.texts["ADAPTER.md"]):
        verdict.findings.append({"check": "ADAPTER_TEXT_CHANGED", "severity": "notice",
                                 "message": "ADAPTER.md (the adapter contract) changed",
                                 "loc": ("top", "document")})
    loc = TwinLocator(new.twin_raw)

    behaviour = None
    skip_reason = args.no_behaviour_reason
    build_dir = Path(args.build_dir) if args.build_dir else ROOT / "build" / "default"
    if not args.no_behaviour:
        if ref.commit is None:
            skip_reason = "REF is a file, not a git commit: nothing to build"
        else:
            import spec_behaviour as sb
            behaviour = sb.run(ROOT, ref.commit, build_dir, reports / "spec-gate",
                               jobs=int(os.environ.get("CUFRAMES_JOBS", "2")),
                               excused_ids=set(verdict.clar_live),
                               bumped=bool(verdict.bumps))
            if behaviour.get("new_build_dir"):
                build_dir = Path(behaviour["new_build_dir"])

    harness = Path(args.harness) if args.harness else build_dir / "conformance" / \
        "cuframes-conform"
    musts = check_musts(must_targets(changes, new.twin), harness, Path(args.spec).resolve(),
                        Path(args.exemptions))
    code, reasons = decide(verdict, musts, behaviour)

    cdicts = []
    for c in changes:
        d = c.as_dict()
        d["line"] = loc.line(c.loc)
        cdicts.append(d)
    for f in verdict.findings:
        f["line"] = loc.line(f.pop("loc", ("top", "proto_versions")))
    req_lines = {r.get("id"): loc.line(("requirement", r.get("id")))
                 for r in new.twin.get("requirements") or [] if isinstance(r, dict)}
    g = {
        "ref": {"label": ref.label, "twin_path": ref.twin_path, "commit": ref.commit},
        "new": {"label": new.label, "twin_path": new.twin_path},
        "changes": cdicts,
        "findings": verdict.findings,
        "bumps": sorted(verdict.bumps),
        "clarifications": {"used": verdict.clar_used, "listed": verdict.clar_live,
                           "inherited": verdict.clar_inherited},
        "requirement_delta": requirement_delta(changes),
        "musts": musts,
        "musts_lines": req_lines,
        "behaviour": behaviour,
        "behaviour_skip_reason": skip_reason,
        "exit_code": code,
        "reasons": reasons,
    }
    g["seconds"] = round(time.monotonic() - t0, 1)
    text = console_report(g)
    md = markdown_report(g)
    ann = annotations(g)
    sys.stdout.write(text)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for a in ann:
            print(a)
    try:
        reports.mkdir(parents=True, exist_ok=True)
        (reports / "spec-gate.txt").write_text(text, encoding="utf-8")
        (reports / "spec-gate.md").write_text(md, encoding="utf-8")
        j = {k: v for k, v in g.items() if k != "musts_lines"}
        if behaviour:
            j["behaviour"] = {k: v for k, v in behaviour.items()
                              if k not in ("console", "markdown")}
        (reports / "spec-gate.json").write_text(json.dumps(j, indent=2, default=sorted) + "\n",
                                                encoding="utf-8")
        (reports / "spec-gate.annotations").write_text("".join(a + "\n" for a in ann),
                                                       encoding="utf-8")
        print(f"reports: {reports}/spec-gate.{{txt,md,json,annotations}}")
    except OSError as e:
        print(f"spec gate: could not write reports under {reports}: {e}", file=sys.stderr)
    return code


# ---------------------------------------------------------------------------------------------
# Cutting a release
# ---------------------------------------------------------------------------------------------

def cut_release(version: str, commit_ref: str | None, accept_missing_key: bool) -> int:
    if not VERSION_RE.match(version):
        print(f"release: {version!r} is not a version like 0.3", file=sys.stderr)
        return EXIT_CANNOT
    try:
        index = load_index()
        if any(r["version"] == version for r in index) or (RELEASES / version).exists():
            print(f"release: {version} already exists", file=sys.stderr)
            return EXIT_FAIL
        newest = max((r["version"] for r in index), key=version_key, default=None)
        if newest and version_key(version) <= version_key(newest):
            print(f"release: {version} is not newer than the newest release {newest}",
                  file=sys.stderr)
            return EXIT_FAIL
        files: dict[str, str] = {}
        if commit_ref:
            commit = git("rev-parse", "--verify", f"{commit_ref}^{{commit}}").strip()
            for name in SPEC_FILES:
                files[name] = git("show", f"{commit}:spec/{name}")
        else:
            dirty = git("status", "--porcelain", "--", *(f"spec/{n}" for n in SPEC_FILES))
            if dirty.strip():
                print("release: spec files have uncommitted changes; commit them first so the "
                      f"release maps to a commit:\n{dirty}", file=sys.stderr)
                return EXIT_FAIL
            commit = git("rev-parse", "HEAD").strip()
            for name in SPEC_FILES:
                files[name] = (SPEC_DIR / name).read_text(encoding="utf-8")
        twin = parse_twin(files["cuframes.json"], "spec/cuframes.json")
    except GateError as e:
        print(f"release: {e}", file=sys.stderr)
        return EXIT_CANNOT
    key = twin.get("release")
    if key is None and not accept_missing_key:
        print(f'release: the twin has no top-level "release" key; add "release": "{version}" '
              "(or pass --accept-missing-release-key for a twin that predates the key)",
              file=sys.stderr)
        return EXIT_FAIL
    if key is not None and str(key) != version:
        print(f'release: the twin says "release": {key!r}, not {version!r}; refusing',
              file=sys.stderr)
        return EXIT_FAIL
    import inspect
    import check_spec as cs
    kw = {}
    if "adapter_markdown" in inspect.signature(cs.check_all).parameters:
        kw["adapter_markdown"] = files["ADAPTER.md"]   # a checker that also syncs ADAPTER.md
    problems = cs.check_all(twin, files["PROTOCOL.md"], **kw)
    if problems:
        print(f"release: check_spec finds {len(problems)} problem(s); a release must pass it:",
              file=sys.stderr)
        for p in problems[:20]:
            print(f"  {p}", file=sys.stderr)
        return EXIT_FAIL
    d = RELEASES / version
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text, encoding="utf-8")
    consts = twin.get("constants") or {}
    index.append({"version": version, "commit": commit,
                  "proto_versions": twin.get("proto_versions"),
                  "segment_layout_version": (consts.get("SEGMENT_LAYOUT_VERSION") or {}).get(
                      "value"),
                  "ring_layout_version": (consts.get("RING_LAYOUT_VERSION") or {}).get("value")})
    INDEX.write_text(json.dumps({"releases": index}, indent=2) + "\n", encoding="utf-8")
    print(f"release {version}: spec/releases/{version}/ written from commit {commit[:12]}; "
          f"commit spec/releases/ to publish it")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "release":
        rp = argparse.ArgumentParser(prog="spec_gate.py release",
                                     description="Snapshot spec/{cuframes.json,PROTOCOL.md,"
                                     "ADAPTER.md} as released VERSION under spec/releases/.")
        rp.add_argument("version")
        rp.add_argument("--commit", help="take the files from this git commit instead of the "
                        "(committed, clean) working tree")
        rp.add_argument("--accept-missing-release-key", action="store_true",
                        help="allow a twin without a top-level \"release\" key (one that "
                        "predates it, like 0.2)")
        a = rp.parse_args(argv[1:])
        return cut_release(a.version, a.commit, a.accept_missing_release_key)

    ap = argparse.ArgumentParser(
        description="The spec-change gate: classify the change of spec/cuframes.json against a "
                    "release or git ref (BREAKING / COMPATIBLE / EDITORIAL), check MUST coverage "
                    "and, unless --no-behaviour, run REF's and the new tree's harnesses and "
                    "adapters against each other. Exit 0 compatible, 1 breaking without a bump, "
                    "an untested MUST or a verdict flip, 2 could not run. "
                    "Run with --rules for the rule table.")
    ap.add_argument("--against", metavar="REF", help="a released version (0.2) or a git ref "
                    "(default: the newest release)")
    ap.add_argument("--release", metavar="VERSION", help="cut a release instead (same as the "
                    "`release VERSION` subcommand)")
    ap.add_argument("--commit", help="with --release: take the files from this commit")
    ap.add_argument("--accept-missing-release-key", action="store_true",
                    help="with --release: allow a twin without \"release\"")
    ap.add_argument("--spec", default=str(SPEC_DIR / "cuframes.json"), help="the new twin")
    ap.add_argument("--text", default=str(SPEC_DIR / "PROTOCOL.md"), help="the new text")
    ap.add_argument("--adapter", default=str(SPEC_DIR / "ADAPTER.md"),
                    help="the new adapter contract")
    ap.add_argument("--old-spec", help="compare against this twin file instead of REF (no "
                    "behaviour step)")
    ap.add_argument("--old-text", help="with --old-spec: its PROTOCOL.md")
    ap.add_argument("--no-behaviour", action="store_true",
                    help="skip building REF and running the harnesses against each other")
    ap.add_argument("--build-dir", help="the new tree's build dir (default build/default)")
    ap.add_argument("--harness", help="cuframes-conform for the case list (default: in the "
                    "build dir)")
    ap.add_argument("--exemptions", default=str(ROOT / "conformance" /
                                                "coverage_exemptions.txt"))
    ap.add_argument("--reports", default=str(ROOT / "reports"), help="where spec-gate.* go")
    ap.add_argument("--rules", action="store_true", help="print the rule table and exit")
    args = ap.parse_args(argv)
    if args.rules:
        sys.stdout.write(rules_table())
        return EXIT_OK
    if args.release:
        return cut_release(args.release, args.commit, args.accept_missing_release_key)
    args.no_behaviour_reason = "--no-behaviour given" if args.no_behaviour else None
    if args.old_spec and not args.no_behaviour:
        args.no_behaviour = True
        args.no_behaviour_reason = "--old-spec compares files: there is no REF commit to build"
    return run_gate(args)


if __name__ == "__main__":
    sys.exit(main())
