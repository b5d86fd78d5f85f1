"""Self-test of conformance/mutation/mutation.py (the mutation score tool), fast enough for
ci/test.sh: the seeded sample is deterministic, the verdicts follow from fake results, a mutant
applied to the build copy is restored byte for byte. The real mutation pass is a scheduled job
(ci/mutation.sh), never run here."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mutation as mu  # noqa: E402

SRC = """// banner
#include <cstdint>

int Clamp(int v, int hi) {
  if (v > hi) return hi;  // the edge
  return v;
}
"""


def make_mutant(old: str, new: str, rel: str = "reference/src/a.cpp") -> mu.Mutant:
    m = mu.mutant_from_texts(rel, SRC, SRC.replace(old, new, 1))
    assert m is not None
    return m


# --- mutants -------------------------------------------------------------------------------


def test_mutant_is_one_region_and_applies_back():
    m = make_mutant("v > hi", "v >= hi")
    assert (m.line, m.orig, m.new) == (5, "  if (v > hi) return hi;  // the edge\n",
                                       "  if (v >= hi) return hi;  // the edge\n")
    assert m.apply_to(SRC) == SRC.replace("v > hi", "v >= hi")


def test_inserted_line_is_anchored_on_the_line_before():
    m = make_mutant("  return v;\n", "  return v;\n  break;\n")
    assert m.line == 6 and m.orig == "  return v;\n" and m.new.endswith("break;\n")
    assert m.apply_to(SRC) == SRC.replace("  return v;\n", "  return v;\n  break;\n")


def test_comment_and_whitespace_changes_are_not_mutants():
    assert mu.mutant_from_texts("a.cpp", SRC, SRC.replace("// banner", "/*// banner*/")) is None
    assert mu.mutant_from_texts("a.cpp", SRC, SRC.replace("the edge", "")) is None
    assert mu.mutant_from_texts("a.cpp", SRC, SRC) is None
    # a change inside a string literal is a real change
    s = 'const char* k = "a // b";\n'
    assert mu.mutant_from_texts("a.cpp", s, 'const char* k = "";\n') is not None


def test_ids_depend_on_content_not_on_line_numbers():
    a = make_mutant("v > hi", "v < hi")
    shifted = "// one more line\n" + SRC
    b = mu.mutant_from_texts("reference/src/a.cpp", shifted,
                             shifted.replace("v > hi", "v < hi", 1))
    assert a.id == b.id and b.line == a.line + 1


def test_stale_mutant_refuses_to_apply():
    m = make_mutant("v > hi", "v < hi")
    with pytest.raises(ValueError):
        m.apply_to(SRC.replace("v > hi", "v != hi"))


# --- sampling ------------------------------------------------------------------------------


def fake_pool(n: int = 200) -> list[mu.Mutant]:
    return [mu.Mutant(f"f.cpp:{i:010x}", "reference/src/f.cpp", i + 1, f"x{i}\n", f"y{i}\n")
            for i in range(n)]


def test_sample_is_deterministic_for_a_seed():
    pool = fake_pool()
    a = [m.id for m in mu.sample_order(pool, 7)]
    b = [m.id for m in mu.sample_order(list(reversed(pool)), 7)]  # input order is irrelevant
    assert a == b
    assert sorted(a) == sorted(m.id for m in pool)
    assert a != [m.id for m in mu.sample_order(pool, 8)]
    assert a[:40] != sorted(a)[:40]  # actually shuffled


# --- classification ------------------------------------------------------------------------

BASE = {"1.1/a": "PASS", "1.2/b": "PASS", "2.1/c": "FAIL", "3.1/d": "UNSUPPORTED"}


def test_harness_kills_only_on_cases_that_pass_on_the_baseline():
    assert mu.harness_kills(BASE, dict(BASE), "fail") == []
    assert mu.harness_kills(BASE, {**BASE, "2.1/c": "FAIL", "3.1/d": "FAIL"}, "fail") == []
    assert mu.harness_kills(BASE, {**BASE, "1.2/b": "FAIL"}, "fail") == ["1.2/b"]
    assert mu.harness_kills(BASE, {**BASE, "1.1/a": "XFAIL"}, "fail") == ["1.1/a"]
    missing = {k: v for k, v in BASE.items() if k != "1.1/a"}
    assert mu.harness_kills(BASE, missing, "fail") == ["1.1/a"]
    assert mu.harness_kills(BASE, None, "timeout") == ["<harness timeout>"]
    assert mu.harness_kills(BASE, None, "crash") == ["<harness crash>"]


def test_whitebox_kills_ignore_baseline_failures_and_unrun_tests():
    base = {"t1": "passed", "t2": "failed", "t3": "passed", "t4": "skipped"}
    assert mu.whitebox_kills(base, {"t1": "passed", "t2": "failed"}, "fail", "ctest") == []
    assert mu.whitebox_kills(base, {"t1": "failed", "t4": "failed"}, "fail", "ctest") == ["t1"]
    assert mu.whitebox_kills(base, None, "timeout", "pytest") == ["<pytest timeout>"]


def test_verdicts():
    assert mu.verdict(["1.1/a"], None) == mu.KILLED
    assert mu.verdict([], ["t1"]) == mu.MISS
    assert mu.verdict([], []) == mu.SURVIVED
    with pytest.raises(ValueError):
        mu.verdict([], None)


def rows(*verdicts: str) -> list[dict]:
    return [{"id": f"m{i}", "verdict": v} for i, v in enumerate(verdicts)]


def test_score_counts_harness_kills_over_all_kills():
    r = rows(mu.KILLED, mu.KILLED, mu.KILLED, mu.MISS, mu.SURVIVED, mu.NOT_COMPILED, mu.ERROR)
    s = mu.summarize(r, {})
    assert s["score"] == 75.0 and s["survived"] == 1 and s["not_compiled"] == 1
    assert s["misses"] == ["m3"] and s["unresolved"] == ["m3"]
    assert s["score_net"] == 75.0
    s = mu.summarize(r, {"m3": "only a log line", "gone": "x"})
    assert s["exempt"] == ["m3"] and s["unresolved"] == [] and s["unused_exemptions"] == ["gone"]
    assert s["score"] == 75.0 and s["score_net"] == 100.0  # an exempt miss is set aside
    assert mu.summarize(rows(mu.SURVIVED), {})["score"] is None


def test_a_glob_exempts_every_mutant_of_a_file():
    ex = {"fault.cpp:*": "test hook", "tlv.cpp:0123456789": "unreachable"}
    assert mu.exemption_for("fault.cpp:abcdef0123.2", ex) == "test hook"
    assert mu.exemption_for("tlv.cpp:0123456789", ex) == "unreachable"
    assert mu.exemption_for("tlv.cpp:9999999999", ex) is None
    r = [{"id": "fault.cpp:aa", "verdict": mu.MISS}, {"id": "tlv.cpp:bb", "verdict": mu.MISS}]
    s = mu.summarize(r, ex)
    assert s["exempt"] == ["fault.cpp:aa"] and s["unresolved"] == ["tlv.cpp:bb"]
    assert s["unused_exemptions"] == ["tlv.cpp:0123456789"]


def test_exit_status():
    nine = mu.summarize(rows(*[mu.KILLED] * 9, mu.MISS), {})
    rc, msgs = mu.exit_status(nine, 90, False)  # 90% but the miss is unresolved
    assert rc == 1 and "m9" in msgs[0]
    eight = mu.summarize(rows(*[mu.KILLED] * 8, mu.MISS, mu.MISS, mu.SURVIVED), {"m9": "why"})
    assert eight["score"] == 80.0 and round(eight["score_net"], 1) == 88.9
    rc, msgs = mu.exit_status(eight, 85, False)
    assert rc == 1 and len(msgs) == 1 and "m8" in msgs[0]  # score ok, m8 unresolved
    both = mu.summarize(rows(*[mu.KILLED] * 8, mu.MISS, mu.MISS), {"m8": "a", "m9": "b"})
    assert mu.exit_status(both, 90, False) == (0, [])
    rc, msgs = mu.exit_status(both, 100.5, False)
    assert rc == 1 and "score below target" in msgs[0]
    rc, msgs = mu.exit_status(both, 100.5, True)
    assert rc == 0 and "score below target" in msgs[0]


def test_exemptions_need_a_reason(tmp_path):
    p = tmp_path / "ex.txt"
    p.write_text("# comment\n\nfoo.cpp:0123456789  only the text of a log line changes\n")
    assert mu.load_exemptions(p) == {"foo.cpp:0123456789": "only the text of a log line changes"}
    p.write_text("foo.cpp:0123456789\n")
    with pytest.raises(ValueError):
        mu.load_exemptions(p)


def test_shipped_exemptions_parse():
    mu.load_exemptions(Path(mu.__file__).with_name("exemptions.txt"))


def test_junit_parsing(tmp_path):
    ctest = tmp_path / "c.xml"
    ctest.write_text('<testsuite><testcase name="tlv.Ok" classname="tlv.Ok" status="run"/>'
                     '<testcase name="tlv.Bad" classname="tlv.Bad" status="fail">'
                     '<failure message="x"/></testcase>'
                     '<testcase name="skip" classname="skip" status="notrun"><skipped/></testcase>'
                     '</testsuite>')
    assert mu.junit_results(ctest) == {"tlv.Ok": "passed", "tlv.Bad": "failed",
                                       "skip": "skipped"}
    py = tmp_path / "p.xml"
    py.write_text('<testsuites><testsuite><testcase classname="interop.test_x" name="test_a[1]"/>'
                  '<testcase classname="interop.test_x.TestK" name="test_b">'
                  '<error message="e"/></testcase></testsuite></testsuites>')
    r = {mu._node_id(k): v for k, v in mu.junit_results(py).items()}
    assert r == {"interop/test_x.py::test_a[1]": "passed",
                 "interop/test_x.py::TestK::test_b": "failed"}
    assert mu.junit_results(tmp_path / "absent.xml") is None


# --- the build copy: apply and restore leave it clean -------------------------------------


def git_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "reference" / "src").mkdir(parents=True)
    (root / "reference" / "src" / "a.cpp").write_text(SRC)
    (root / "reference" / "src" / "k.cu").write_text("__global__ void k() {}\n")
    (root / "README.md").write_text("x\n")
    (root / ".gitignore").write_text("/build/\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_apply_and_restore_leave_the_copy_clean(tmp_path):
    root = git_checkout(tmp_path)
    (root / "build").mkdir()
    (root / "build" / "junk").write_text("ignored\n")
    tree = mu.Tree(root, tmp_path / "work", 1)
    tree.src.mkdir(parents=True)
    assert mu.sync_copy(root, tree.src) == 4
    assert not (tree.src / "build").exists()  # ignored files are not copied
    assert mu.sync_copy(root, tree.src) == 0  # nothing rewritten the second time

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(tree.src)): p.read_bytes()
                for p in sorted(tree.src.rglob("*")) if p.is_file()}

    before = snapshot()
    m = make_mutant("v > hi", "v <= hi")
    tree.apply(m)
    changed = snapshot()
    assert changed["reference/src/a.cpp"] == SRC.replace("v > hi", "v <= hi").encode()
    assert {k for k in before if before[k] != changed[k]} == {"reference/src/a.cpp"}
    with pytest.raises(AssertionError):
        tree.apply(m)  # one mutant at a time
    tree.restore()
    assert snapshot() == before
    tree.restore()  # idempotent
    assert snapshot() == before
    assert (root / "reference" / "src" / "a.cpp").read_text() == SRC  # the checkout untouched


def test_test_machinery_is_never_drawn():
    pool = [mu.Mutant("fault.cpp:1", "reference/src/fault.cpp", 1, "a", "b"),
            mu.Mutant("fault.h:2", "reference/src/fault.h", 2, "a", "b"),
            mu.Mutant("tlv.cpp:3", "reference/src/tlv.cpp", 3, "a", "b")]
    assert [m.id for m in mu.drawable(pool)] == ["tlv.cpp:3"]
    assert all(m.file.endswith("tlv.cpp") for m in mu.sample_order(mu.drawable(pool), 7))


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_source_files_leave_cuda_out(tmp_path):
    root = git_checkout(tmp_path)
    assert mu.source_files(root) == ["reference/src/a.cpp"]


def test_pool_from_universalmutator_is_reproducible(tmp_path):
    if not mu.tool_version():
        pytest.skip("universalmutator is not installed (ci/setup.sh installs it)")
    root = tmp_path / "repo"
    (root / "reference" / "src").mkdir(parents=True)
    (root / "reference" / "src" / "a.cpp").write_text(SRC)
    w1, w2 = tmp_path / "w1", tmp_path / "w2"
    w1.mkdir()
    w2.mkdir()
    p1, s1 = mu.generate_pool(root, w1, log=lambda *a: None)
    p2, _ = mu.generate_pool(root, w2, log=lambda *a: None)
    assert p1 and [m.id for m in p1] == [m.id for m in p2]
    assert s1["pool"] == len(p1) and s1["tool"].startswith("universalmutator")
    for m in p1:  # every mutant applies to the pristine file and changes code, not comments
        assert mu.normalize(m.apply_to(SRC)) != mu.normalize(SRC)
    assert any("v >= hi" in m.new or "v < hi" in m.new for m in p1)
    cached, _ = mu.generate_pool(root, w1, log=lambda *a: None)
    assert [m.id for m in cached] == [m.id for m in p1]
    assert len(list(w1.glob("pool-*.json"))) == 1
    json.loads(next(w1.glob("pool-*.json")).read_text())


def test_a_hung_white_box_run_names_the_test_it_was_in(tmp_path):
    c = tmp_path / "ctest.log"
    c.write_text("    Start  1: Tlv.Ok\n    Start  2: Ring.Wraps\n"
                 " 1/147 Test  #1: Tlv.Ok ..........   Passed    0.01 sec\n")
    running = mu._ctest_running(c)
    assert running == {"Ring.Wraps": "hung"}
    assert mu.whitebox_kills({"Ring.Wraps": "passed"}, running, "timeout", "ctest") == [
        "Ring.Wraps <ctest timeout>"]
    p = tmp_path / "pytest.log"
    p.write_text("interop/test_a.py::test_x PASSED [ 1%]\ninterop/test_a.py::test_y[k] ")
    assert mu._pytest_running(p) == {"interop/test_a.py::test_y[k]": "hung"}
    p.write_text("interop/test_a.py::test_x PASSED [ 1%]\n")
    assert mu._pytest_running(p) is None
    assert mu.whitebox_kills({}, None, "timeout", "pytest") == ["<pytest timeout>"]


def test_a_new_run_archives_the_previous_reports(tmp_path):
    (tmp_path / "mutation.json").write_text(json.dumps({"rows": [{"id": "a.cpp:1"}]}))
    (tmp_path / "mutation.md").write_text("# old\n")
    kept = mu.archive_previous_run(tmp_path)
    assert kept is not None and json.loads(kept.read_text())["rows"][0]["id"] == "a.cpp:1"
    assert kept.with_suffix(".md").read_text() == "# old\n"
    assert not (tmp_path / "mutation.json").exists()


def test_an_empty_previous_run_is_not_archived(tmp_path):
    (tmp_path / "mutation.json").write_text(json.dumps({"rows": []}))
    assert mu.archive_previous_run(tmp_path) is None
    assert mu.archive_previous_run(tmp_path / "missing") is None
