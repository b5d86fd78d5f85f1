"""Tests of the spec-change gate: spec/tools/spec_gate.py, spec_diff.py, spec_behaviour.py.

These tests verify VER-BREAK-01 ("any change that would make a conforming peer of an earlier
version misread a byte ... bumps the version"): conformance/coverage_exemptions.txt names this
file for it (a "verified-by" entry, checked by test_verified_by_entries_exist).

- test_fixture_corpus: spec/tests/fixtures/spec_gate_cases.json, edits applied to the v0.2
  release twin with the rules, outcomes and exit status the gate must give.
- test_spec_gate_property.py holds the property test (random edits that move or resize bytes).
- the rest: word-diff meaning test, line location, MUST coverage against a stand-in harness,
  verdict comparison of the behaviour step, the command line, releases and git refs.
Run: python3 -m pytest -q spec/tests
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parent.parent
ROOT = SPEC.parent
TOOLS = SPEC / "tools"
sys.path.insert(0, str(TOOLS))

import spec_behaviour as sb  # noqa: E402
import spec_diff as sd  # noqa: E402
import spec_gate as sg  # noqa: E402

RELEASE_TWIN = SPEC / "releases" / "0.2" / "cuframes.json"
FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "spec_gate_cases.json")
                      .read_text(encoding="utf-8"))["cases"]


def release() -> dict:
    return json.loads(RELEASE_TWIN.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# The fixture edit language
# ---------------------------------------------------------------------------------------------

STEP_RE = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def _steps(path: str) -> list:
    steps = []
    for name, sel in STEP_RE.findall(path):
        if name:
            steps.append(name)
        elif sel.isdigit():
            steps.append(int(sel))
        else:
            steps.append(dict(kv.split("=", 1) for kv in sel.split(",")))
    return steps


def _get(node, step):
    if isinstance(step, dict):
        hits = [i for i, x in enumerate(node)
                if isinstance(x, dict) and all(str(x.get(k)) == v for k, v in step.items())]
        assert len(hits) == 1, f"selector {step} matches {len(hits)} items"
        return hits[0]
    if isinstance(step, int):
        return step
    return step


def apply_edits(twin: dict, edits: list[dict]) -> dict:
    t = copy.deepcopy(twin)
    for e in edits:
        op = next(k for k in ("set", "del", "add", "replace") if k in e)
        steps = _steps(e[op])
        node = t
        for s in steps[:-1]:
            node = node[_get(node, s)]
        last = _get(node, steps[-1])
        if op == "set":
            assert last in node if isinstance(node, dict) else True, e
            node[last] = e["value"]
        elif op == "del":
            del node[last]
        elif op == "add":
            if isinstance(node, dict) and isinstance(node.get(last), list):
                node[last].append(e["value"])
            else:
                assert last not in node, f"add: {e[op]} exists"
                node[last] = e["value"]
        else:
            assert e["old"] in node[last], f"replace: {e['old']!r} not in {e[op]}"
            node[last] = node[last].replace(e["old"], e["new"])
    return t


NOTHING_TO_CHECK = {"targets": [], "tested": {}, "exempt": {}, "untested": [],
                    "status": "nothing to check", "reason": ""}


def judge(old: dict, new: dict):
    changes = sd.diff_twins(old, new)
    verdict = sg.classify(changes, old, new)
    code, reasons = sg.decide(verdict, NOTHING_TO_CHECK, None)
    return verdict, code, reasons


def test_corpus_is_large_enough():
    assert len(FIXTURES) >= 25
    assert len({c["id"] for c in FIXTURES}) == len(FIXTURES)


@pytest.mark.parametrize("case", FIXTURES, ids=[c["id"] for c in FIXTURES])
def test_fixture_corpus(case):
    old = release()
    new = apply_edits(old, case["edits"])
    verdict, code, reasons = judge(old, new)
    got = sorted(c.rule for c in verdict.changes)
    assert got == sorted(case["rules"]), [c.message for c in verdict.changes]
    for rule, outcome in case.get("outcomes", {}).items():
        outs = {c.outcome for c in verdict.changes if c.rule == rule}
        assert outs == {outcome}, (rule, outs, [c.note for c in verdict.changes])
    assert sorted(f["check"] for f in verdict.findings) == sorted(case.get("findings", [])), \
        verdict.findings
    assert code == case["exit"], reasons
    for c in verdict.changes:
        assert c.rule in sd.RULES
        if c.outcome == "BREAKING":
            assert c.note.startswith("needs") or "nothing" in c.note


def test_breaking_layout_message_names_rule_struct_field_offsets():
    old = release()
    new = apply_edits(old, FIXTURES[1]["edits"])
    (c,) = sd.diff_twins(old, new)
    assert (c.rule, c.struct, c.field, c.old_offset, c.new_offset) == \
        ("FIELD_MOVED", "FrameMeta", "flags", 40, 44)
    assert "FrameMeta.flags moved from offset 40 to 44" in c.message


def test_rules_are_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [r for r in list(sd.RULES) + list(sg.GATE_CHECKS) if f"`{r}`" not in readme]
    assert not missing, f"README's spec-gate rule table lacks {missing}"


def test_clarifiable_rules_are_requirement_and_state_rules_only():
    for r in sd.CLARIFIABLE:
        assert r.startswith(("REQUIREMENT_", "STATE_ROW_"))
    for r in ("FIELD_MOVED", "ENUM_VALUE_REUSED", "MESSAGE_TYPE_RENUMBERED", "ERROR_CODE_REMOVED",
              "RESERVED_GIVEN_MEANING", "CONSTANT_CHANGED"):
        assert r not in sd.CLARIFIABLE


def test_inherited_clarification_is_not_stale():
    old = apply_edits(release(), [{"add": "clarifications",
                                   "value": [{"id": "VER-NEG-05", "reason": "from 0.3"}]}])
    verdict, code, _ = judge(old, copy.deepcopy(old))
    assert verdict.findings == [] and verdict.clar_inherited == ["VER-NEG-05"] and code == 0


# ---------------------------------------------------------------------------------------------
# The meaning test for text
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("old,new,meaning", [
    ("A peer sends PING to probe a peer that looks stalled.",
     "A peer sends PING to probe a peer that seems stalled.", False),
    ("The sender closes the connection.", "The sender closes the connection!", False),
    ("The sender closes the connection.", "the sender closes the connection.", False),
    ("A reader must ignore it.", "A reader should ignore it.", True),
    ("at most 4088 bytes", "at most 4096 bytes", True),
    ("reports CORRUPT", "reports PROTOCOL", True),
    ("stores ack_seq", "stores start_seq", True),
    ("is not NUL-terminated", "is NUL-terminated", True),
    ("before it sends", "after it sends", True),
    ("the publisher frees it", "the subscriber frees it", True),
    ("a value ≥ 4096", "a value > 4096", True),
    ("see section 5.7", "see section 5.8", True),
])
def test_meaning_test(old, new, meaning):
    got, diff, toks = sd.text_change(old, new, sd.twin_names(release()))
    assert got is meaning, (diff, toks)
    assert ("[-" in diff) or ("{+" in diff)


def test_word_diff_format():
    diff, changed = sd.word_diff("a peer that looks stalled", "a peer that seems stalled")
    assert diff == "a peer that [-looks-] {+seems+} stalled" and changed == ["looks", "seems"]


# ---------------------------------------------------------------------------------------------
# Line numbers and annotations
# ---------------------------------------------------------------------------------------------

def test_locator_finds_lines_in_the_release_twin():
    raw = RELEASE_TWIN.read_text(encoding="utf-8")
    lines = raw.splitlines()
    loc = sg.TwinLocator(raw)

    def text(l):
        return lines[loc.line(l) - 1]
    fm = loc.line(("struct", "FrameMeta"))
    assert '"FrameMeta"' in lines[fm - 1]
    assert '"name": "flags"' in text(("field", "FrameMeta", "flags"))
    assert loc.line(("field", "FrameMeta", "flags")) > fm
    # the first "flags" field of the twin is SegmentHeader's; FrameMeta's comes after FrameMeta
    assert loc.line(("field", "SegmentHeader", "flags")) < fm
    assert '"SEGMENT_LAYOUT_VERSION"' in text(("constant", "SEGMENT_LAYOUT_VERSION"))
    assert '"pixel_format"' in text(("enum", "pixel_format"))
    assert '"PING"' in text(("message", "PING"))
    assert '"OVERSIZED"' in text(("error", "OVERSIZED"))
    row = text(("row", "publisher", "ACTIVE", "ACK_TIMEOUT"))
    assert '"from": "ACTIVE", "event": "ACK_TIMEOUT"' in row
    assert loc.line(("row", "publisher", "ACTIVE", "ACK_TIMEOUT")) > \
        loc.line(("row", "subscriber", "ACTIVE", "EOF"))
    assert '"VER-BREAK-01"' in text(("requirement", "VER-BREAK-01"))
    assert '"proto_versions"' in text(("top", "proto_versions"))


def _gate(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, str(TOOLS / "spec_gate.py"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env)


def _write_twin_like_release(path: Path, edits: list[dict]) -> None:
    """Applies edits as text substitutions to the release twin, keeping its formatting and so
    its line numbers."""
    raw = RELEASE_TWIN.read_text(encoding="utf-8")
    for old, new in edits:
        assert raw.count(old) == 1, old
        raw = raw.replace(old, new)
    path.write_text(raw, encoding="utf-8")


MOVE_FLAGS = [
    ('{"name": "flags", "offset": 40, "size": 4, "type": "u32", "writer": "publisher", '
     '"since": 1, "values": "flags:frame_flags"}',
     '{"name": "flags", "offset": 44, "size": 4, "type": "u32", "writer": "publisher", '
     '"since": 1, "values": "flags:frame_flags"}'),
    ('{"name": "reserved0", "offset": 44, "size": 4, "type": "reserved", "writer": "publisher", '
     '"since": 1},\n        {"name": "user_data"',
     '{"name": "reserved0", "offset": 40, "size": 4, "type": "reserved", "writer": "publisher", '
     '"since": 1},\n        {"name": "user_data"'),
]


def test_cli_unchanged_says_no_changes(tmp_path):
    r = _gate("--old-spec", str(RELEASE_TWIN), "--spec", str(RELEASE_TWIN), "--no-behaviour",
              "--reports", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no changes" in r.stdout
    j = json.loads((tmp_path / "spec-gate.json").read_text())
    assert j["exit_code"] == 0 and j["changes"] == []
    assert (tmp_path / "spec-gate.annotations").read_text() == ""
    assert "No changes" in (tmp_path / "spec-gate.md").read_text()


def test_cli_moved_field_fails_with_annotation(tmp_path):
    twin = tmp_path / "cuframes.json"
    _write_twin_like_release(twin, MOVE_FLAGS)
    r = _gate("--old-spec", str(RELEASE_TWIN), "--spec", str(twin), "--no-behaviour",
              "--reports", str(tmp_path / "r"), env=dict(os.environ, GITHUB_ACTIONS="true"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FIELD_MOVED" in r.stdout and "FrameMeta.flags moved from offset 40 to 44" in r.stdout
    ann = (tmp_path / "r" / "spec-gate.annotations").read_text().splitlines()
    (line,) = [a for a in ann if "FIELD_MOVED" in a]
    m = re.match(r"::error file=([^,]+),line=(\d+),title=FIELD_MOVED::(.*)$", line)
    assert m, line
    n = int(m.group(2))
    assert '"name": "flags", "offset": 44' in twin.read_text().splitlines()[n - 1]
    assert line in r.stdout   # printed for the workflow too
    md = (tmp_path / "r" / "spec-gate.md").read_text()
    assert "FAIL" in md and "`FIELD_MOVED`" in md
    j = json.loads((tmp_path / "r" / "spec-gate.json").read_text())
    (c,) = j["changes"]
    assert (c["struct"], c["field"], c["old_offset"], c["new_offset"], c["outcome"]) == \
        ("FrameMeta", "flags", 40, 44, "BREAKING")


def test_cli_moved_field_with_layout_bump_passes(tmp_path):
    twin = tmp_path / "cuframes.json"
    _write_twin_like_release(twin, MOVE_FLAGS + [
        ('"SEGMENT_LAYOUT_VERSION": {"value": 1}', '"SEGMENT_LAYOUT_VERSION": {"value": 2}')])
    r = _gate("--old-spec", str(RELEASE_TWIN), "--spec", str(twin), "--no-behaviour",
              "--reports", str(tmp_path / "r"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "breaking-with-bump" in r.stdout and "FIELD_MOVED" in r.stdout


def test_cli_rules_and_help():
    r = _gate("--rules")
    assert r.returncode == 0
    for rule in sd.RULES:
        assert rule in r.stdout
    assert _gate("--help").returncode == 0


def test_cli_broken_twin_cannot_run(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    r = _gate("--old-spec", str(RELEASE_TWIN), "--spec", str(bad), "--no-behaviour",
              "--reports", str(tmp_path))
    assert r.returncode == 2 and "not valid JSON" in r.stderr


def test_cli_unknown_ref_cannot_run(tmp_path):
    r = _gate("--against", "no-such-ref-xyz", "--no-behaviour", "--reports", str(tmp_path))
    assert r.returncode == 2 and "neither a released version nor a git ref" in r.stderr


# ---------------------------------------------------------------------------------------------
# MUST coverage
# ---------------------------------------------------------------------------------------------

def _fake_harness(tmp_path: Path, cases: list[dict], json_ok: bool = True) -> Path:
    """A stand-in for cuframes-conform --list [--json]."""
    h = tmp_path / "cuframes-conform"
    text = "".join(f"{c['id']}  [publisher, proto 1]  {','.join(c['requirements'])}\n    t\n"
                   for c in cases)
    h.write_text("#!/usr/bin/env python3\nimport sys, json\n"
                 f"cases = {json.dumps(cases)!r}\n"
                 f"if '--json' in sys.argv:\n"
                 f"    sys.exit(2) if not {json_ok} else print(cases)\n"
                 f"else:\n    sys.stdout.write({text!r})\n")
    h.chmod(0o755)
    return h


def test_must_coverage(tmp_path):
    ex = tmp_path / "ex.txt"
    ex.write_text("# comment\nMSG-PING-09   verified by somewhere\n")
    old = release()
    new = apply_edits(old, [
        {"add": "requirements", "value": {"id": "MSG-PING-03", "level": "MUST", "section": "3.9",
                                          "text": "x"}},
        {"add": "requirements", "value": {"id": "MSG-PING-09", "level": "MUST", "section": "3.9",
                                          "text": "y"}},
        {"add": "requirements", "value": {"id": "MSG-PING-04", "level": "MUST", "section": "3.9",
                                          "text": "z"}},
        {"add": "requirements", "value": {"id": "MSG-PING-05", "level": "SHOULD",
                                          "section": "3.9", "text": "w"}},
        {"set": "requirements[id=VER-NEG-05].level", "value": "MUST"}])
    changes = sd.diff_twins(old, new)
    targets = sg.must_targets(changes, new)
    assert sorted(targets) == ["MSG-PING-03", "MSG-PING-04", "MSG-PING-09", "VER-NEG-05"]
    for json_ok in (True, False):   # --list --json, and the text --list of an older harness
        h = _fake_harness(tmp_path, [{"id": "3.9/ping-rate", "requirements": ["MSG-PING-03"]},
                                     {"id": "6.2/cap", "requirements": ["VER-NEG-05", "X-01"]}],
                          json_ok)
        res = sg.check_musts(targets, h, RELEASE_TWIN, ex)
        assert res["status"] == "fail" and res["untested"] == ["MSG-PING-04"], res
        assert res["exempt"] == {"MSG-PING-09": "verified by somewhere"}
        assert res["tested"]["VER-NEG-05"] == ["6.2/cap"]
    verdict = sg.classify(changes, old, new)
    code, reasons = sg.decide(verdict, res, None)
    assert code == 1 and any("MSG-PING-04" in r for r in reasons)
    missing = sg.check_musts(targets, tmp_path / "nope", RELEASE_TWIN, ex)
    assert missing["status"] == "unknown" and "not built" in missing["reason"]
    # unknown coverage alone is exit 2; with a breaking change it is still 1
    clean = sg.classify([], old, old)
    assert sg.decide(clean, missing, None)[0] == 2
    assert sg.decide(verdict, missing, None)[0] == 1
    assert sg.check_musts([], tmp_path / "nope", RELEASE_TWIN, ex)["status"] == \
        "nothing to check"


def test_real_harness_lists_json():
    build = Path(os.environ.get("CUFRAMES_BUILD_DIR", ROOT / "build" / "default"))
    h = build / "conformance" / "cuframes-conform"
    if not h.exists():
        pytest.skip(f"the harness is not built at {h}")
    r = subprocess.run([str(h), "--list", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cases = json.loads(r.stdout)
    assert cases and all(c["id"] and isinstance(c["requirements"], list) for c in cases)
    by_req, why = sg.harness_cases(h, SPEC / "cuframes.json")
    assert by_req and not why
    assert any(rid.startswith("TLV-") for rid in by_req)


# ---------------------------------------------------------------------------------------------
# VER-BREAK-01 is verified here: the exemption file says so, and this checks it stays true
# ---------------------------------------------------------------------------------------------

VERIFIED_BY_RE = re.compile(r"verified-by\s+(\S+?)::(\w+)")


def test_verified_by_entries_exist():
    """Every "verified-by PATH::TEST" exemption names a test that exists, and VER-BREAK-01 is
    one of them, naming this file."""
    ex = (ROOT / "conformance" / "coverage_exemptions.txt").read_text(encoding="utf-8")
    entries = {}
    for line in ex.splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        m = VERIFIED_BY_RE.search(line)
        if m:
            entries[line.split()[0]] = (m.group(1), m.group(2))
    assert "VER-BREAK-01" in entries
    assert entries["VER-BREAK-01"][0] == "spec/tests/test_spec_gate.py"
    for rid, (path, test) in entries.items():
        src = ROOT / path
        assert src.exists(), f"{rid}: {path} does not exist"
        assert re.search(rf"^def {test}\(", src.read_text(encoding="utf-8"), re.M), \
            f"{rid}: {path} defines no {test}"


# ---------------------------------------------------------------------------------------------
# Behaviour step: verdicts and their comparison
# ---------------------------------------------------------------------------------------------

def test_verdicts_and_flips():
    base = [{"id": "a", "requirements": ["R-01", "R-02"], "outcome": "PASS"},
            {"id": "b", "requirements": ["R-03"], "outcome": "UNSUPPORTED"},
            {"id": "c", "requirements": ["R-04"], "outcome": "PASS"}]
    cross = [{"id": "a", "requirements": ["R-01", "R-02"], "outcome": "FAIL",
              "failure": {"requirement": "R-02"}},
             {"id": "b", "requirements": ["R-03"], "outcome": "PASS"},
             {"id": "c", "requirements": ["R-04"], "outcome": "FAIL",
              "failure": {"requirement": "HARNESS"}}]
    vb, vx = sb.verdicts(base), sb.verdicts(cross)
    assert vx["R-02"]["verdict"] == "fail" and "R-01" not in vx   # only the named one failed
    assert vx["R-04"]["verdict"] == "fail"                        # failure names none: all
    flips = {d["requirement"]: (d["baseline"], d["cross"]) for d in sb.compare(vb, vx)}
    assert flips == {"R-02": ("pass", "fail"), "R-03": ("unsupported", "pass"),
                     "R-04": ("pass", "fail")}


def test_flips_decide_the_exit_code():
    old = release()
    clean = sg.classify([], old, old)
    beh = {"status": "ok", "flips": [{"requirement": "R-01", "excused": False,
                                      "message": "m"}]}
    assert sg.decide(clean, NOTHING_TO_CHECK, beh)[0] == 1
    beh["flips"][0]["excused"] = True
    assert sg.decide(clean, NOTHING_TO_CHECK, beh)[0] == 0
    assert sg.decide(clean, NOTHING_TO_CHECK, {"status": "error", "reason": "x",
                                                "flips": []})[0] == 2


def test_pair_signature():
    ok = {"pub_rc": 0, "sub_rc": 0, "done": True, "invalid": 0, "errors": [], "note": ""}
    assert sb.signature(ok) == "ok"
    bad = dict(ok, sub_rc=2, done=False, errors=["NO_PACKET_RING"])
    assert sb.signature(bad) == "publisher exit 0, subscriber exit 2, errors NO_PACKET_RING"
    # the publisher timing out waiting for a subscriber that already left is the same outcome
    raced = dict(bad, pub_rc=3, errors=["NO_PACKET_RING", "pub:TIMEOUT"])
    assert sb.signature(raced) == sb.signature(bad)
    assert sb.signature(dict(ok, pub_rc=3)) != "ok"


# ---------------------------------------------------------------------------------------------
# Releases and git refs, in a scratch repository
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def scratch_repo(tmp_path):
    """A git repository holding this tree's spec/ (tools, releases, and the current spec files
    without a "release" key, so that check_spec passes on them)."""
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "spec").mkdir(parents=True)
    shutil.copytree(TOOLS, repo / "spec" / "tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(SPEC / "releases", repo / "spec" / "releases")
    for name in sg.SPEC_FILES:
        shutil.copy(SPEC / name, repo / "spec" / name)
    twin = json.loads((SPEC / "cuframes.json").read_text(encoding="utf-8"))
    twin.pop("release", None)
    (repo / "spec" / "cuframes.json").write_text(json.dumps(twin, indent=1), encoding="utf-8")

    def git(*a):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *a], cwd=repo,
                       check=True, capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    return repo, git


def _scratch_gate(repo, *args):
    return subprocess.run([sys.executable, str(repo / "spec" / "tools" / "spec_gate.py"), *args],
                          cwd=repo, capture_output=True, text=True)


def test_release_cut_and_git_ref(scratch_repo):
    repo, git = scratch_repo
    twin_path = repo / "spec" / "cuframes.json"
    r = _scratch_gate(repo, "release", "9.1")
    assert r.returncode == 1 and 'no top-level "release"' in r.stderr
    twin = json.loads(twin_path.read_text())
    twin["release"] = "9.2"
    twin_path.write_text(json.dumps(twin, indent=1))
    r = _scratch_gate(repo, "release", "9.1")
    assert r.returncode == 1 and "uncommitted" in r.stderr
    git("commit", "-qam", "9.2 key")
    r = _scratch_gate(repo, "--release", "9.1")
    assert r.returncode == 1 and "not '9.1'" in r.stderr
    twin["release"] = "9.1"
    twin_path.write_text(json.dumps(twin, indent=1))
    git("commit", "-qam", "9.1 key")
    r = _scratch_gate(repo, "release", "9.1")
    assert r.returncode == 0, r.stderr
    index = json.loads((repo / "spec" / "releases" / "index.json").read_text())
    assert [x["version"] for x in index["releases"]][-1] == "9.1"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    assert index["releases"][-1]["commit"] == head
    assert json.loads((repo / "spec" / "releases" / "9.1" / "cuframes.json").read_text()) == twin
    assert _scratch_gate(repo, "release", "9.1").returncode == 1          # exists
    assert _scratch_gate(repo, "release", "0.1").returncode == 1          # not newer
    # The default REF is now 9.1: no changes.
    r = _scratch_gate(repo, "--no-behaviour", "--reports", str(repo / "reports"))
    assert r.returncode == 0 and "no changes" in r.stdout and "release 9.1" in r.stdout, r.stdout
    # A git ref: the commit before "9.1 key" (release 9.2, the same spec otherwise) against a
    # tree that moves a field. The "release" key itself is metadata, not a change.
    fm = next(f for f in twin["structs"]["FrameMeta"]["fields"] if f["name"] == "flags")
    fm["offset"] += 4
    twin_path.write_text(json.dumps(twin, indent=1))
    r = _scratch_gate(repo, "--against", "HEAD~1", "--no-behaviour", "--reports",
                      str(repo / "reports"))
    assert r.returncode == 1 and "HEAD~1" in r.stdout, r.stdout
    assert "FIELD_MOVED" in r.stdout and "changes: 1 BREAKING" in r.stdout, r.stdout


def test_pair_driver_against_the_built_adapters():
    build = Path(os.environ.get("CUFRAMES_BUILD_DIR", ROOT / "build" / "default"))
    pub, sub = build / "reference" / "cuframes-pub", build / "reference" / "cuframes-sub"
    if not (pub.exists() and sub.exists()):
        pytest.skip(f"the reference adapters are not built under {build}")
    scen = {name: (pa, sa) for name, pa, sa, _ in sb.SCENARIOS}
    key = f"gatetest{os.getpid()}"
    ok = sb.run_pair(pub, sub, *scen["frames, subscriber capped at v1"], key + "a")
    assert sb.signature(ok) == "ok", ok
    refused = sb.run_pair(pub, sub, *scen["packets, subscriber capped at v1"], key + "b")
    assert refused["sub_rc"] == 2 and "NO_PACKET_RING" in refused["errors"], refused
    assert not list(Path("/dev/shm").glob(f"cuframes-{key}*"))


def test_full_requirement_text_beats_the_cut_twin_text():
    md = (SPEC / "releases" / "0.2" / "PROTOCOL.md").read_text(encoding="utf-8")
    full = sg.full_requirement_text(md)
    twin = {r["id"]: r["text"] for r in release()["requirements"]}
    assert set(full) == set(twin)
    cut = [rid for rid, t in twin.items() if len(t) >= 239]
    assert cut, "the v0.2 twin cuts long requirement texts"
    for rid in cut:
        assert len(full[rid]) > len(twin[rid]) and full[rid].startswith(twin[rid][:200]), rid
    # A change past the twin's 240 characters is still seen, through the text.
    rid = cut[0]
    changed = dict(full, **{rid: full[rid] + " Unless the peer is closed."})
    changes = sd.diff_twins(release(), release(), full, changed)
    assert [(c.rule, c.clar_id) for c in changes] == [("REQUIREMENT_TEXT_CHANGED", rid)]
    assert sg.full_requirement_text(None) == {} and sg.full_requirement_text("") == {}


def test_protocol_text_outside_tags_is_reported(tmp_path):
    md = (SPEC / "releases" / "0.2" / "PROTOCOL.md").read_text(encoding="utf-8")
    new_md = tmp_path / "PROTOCOL.md"
    new_md.write_text(md.replace("\n## ", "\nAn added explanatory line.\n\n## ", 1),
                      encoding="utf-8")
    assert sg.untagged_text_delta(md, new_md.read_text(encoding="utf-8")) == 1
    r = _gate("--old-spec", str(RELEASE_TWIN), "--old-text", str(SPEC / "releases" / "0.2" /
              "PROTOCOL.md"), "--spec", str(RELEASE_TWIN), "--text", str(new_md),
              "--no-behaviour", "--reports", str(tmp_path / "r"))
    assert r.returncode == 0 and "PROTOCOL_TEXT_CHANGED" in r.stdout, r.stdout


def test_cli_clarified_new_must_needs_a_case(tmp_path):
    """A new MUST acknowledged as a clarification passes the diff, and then needs a case: with
    no harness the gate cannot tell (exit 2), with one naming it it passes, and an exemption
    would do too."""
    twin = apply_edits(release(), [
        {"add": "requirements", "value": {"id": "MSG-PING-03", "level": "MUST", "section": "3.9",
                                          "text": "A peer answers at most one PING per ms."}},
        {"add": "release", "value": "0.3"},
        {"add": "clarifications", "value": [{"id": "MSG-PING-03", "reason": "was open"},
                                            {"id": "SM-SUB-02", "reason": "nothing changed"}]}])
    path = tmp_path / "cuframes.json"
    path.write_text(json.dumps(twin, indent=1))
    ex = tmp_path / "ex.txt"
    ex.write_text("")
    base = ["--old-spec", str(RELEASE_TWIN), "--spec", str(path), "--no-behaviour",
            "--exemptions", str(ex), "--reports", str(tmp_path / "r")]
    r = _gate(*base, "--harness", str(tmp_path / "missing"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "clarification" in r.stdout and "MUST coverage: could not be determined" in r.stdout
    assert "CLARIFICATION_STALE" in r.stdout and "SM-SUB-02" in r.stdout
    assert "clarifications: 1 of 2 listed" in r.stdout
    assert "title=COVERAGE_UNKNOWN" in (tmp_path / "r" / "spec-gate.annotations").read_text()
    h = _fake_harness(tmp_path, [{"id": "3.9/ping-rate", "requirements": ["MSG-PING-03"]}])
    r = _gate(*base, "--harness", str(h))
    assert r.returncode == 0, r.stdout + r.stderr
    h = _fake_harness(tmp_path, [{"id": "3.9/other", "requirements": ["MSG-PING-01"]}])
    r = _gate(*base, "--harness", str(h))
    assert r.returncode == 1 and "UNTESTED_MUST" in (tmp_path / "r" /
                                                     "spec-gate.annotations").read_text()
    ex.write_text("MSG-PING-03   verified by a reference unit test\n")
    assert _gate(*base, "--harness", str(h)).returncode == 0


def test_ref_worktree_is_made_once_and_reused(scratch_repo, tmp_path):
    repo, git = scratch_repo
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    log = tmp_path / "log"
    wt = sb.ensure_worktree(repo, head, log)
    assert wt == repo / "build" / "spec-gate" / f"ref-{head[:12]}"
    assert (wt / "spec" / "cuframes.json").exists()
    marker = wt / "build-marker"
    marker.write_text("kept")          # a build dir inside it survives the next run
    assert sb.ensure_worktree(repo, head, log) == wt and marker.exists()
    with pytest.raises(sb.BehaviourError, match="not in this clone"):
        sb.ensure_worktree(repo, "0" * 40, log)


def test_a_twin_that_stops_cutting_text_is_not_a_change():
    old = release()
    full = sg.full_requirement_text((SPEC / "releases" / "0.2" / "PROTOCOL.md")
                                    .read_text(encoding="utf-8"))
    new = copy.deepcopy(old)
    for r in new["requirements"]:
        r["text"] = full[r["id"]]
    assert sd.diff_twins(old, new) == []
    new["requirements"][0]["text"] = "Unless closed, " + new["requirements"][0]["text"]
    assert [c.rule for c in sd.diff_twins(old, new)] == ["REQUIREMENT_TEXT_CHANGED"]


def test_contract_cause_names_refused_arguments():
    failed = {"failure": {"detail": "$ pub --ring-bytes 65536\n  status: exit 1\nunknown option: "
                                    "--ring-bytes\nusage: ..."}}
    other = {"failure": {"detail": "unknown option: --gop", "actual": "no connection"}}
    cause = sb.contract_cause([failed, other, {"failure": {"detail": "fine"}}, {}])
    assert "--ring-bytes, --gop" in cause and "adapter contract" in cause
    assert sb.contract_cause([{"failure": {"actual": "DETACH(reason=2)"}}]) == ""
