"""Self-test of conformance/mutation/reach.py on fake coverage (no build, no harness run): a
mutant is located by its text, classified by the counts of its line, and both scores follow."""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reach  # noqa: E402

SRC = """// banner
int Clamp(int v, int hi) {
  if (v > hi) return hi;
  return v;
}
int Unused(int v) {
  return v + 1;
}
struct S {
  int x = 0;
};
"""


def tree(tmp_path: Path) -> Path:
    (tmp_path / "reference" / "src").mkdir(parents=True)
    (tmp_path / "reference" / "src" / "a.cpp").write_text(SRC)
    return tmp_path


COUNTS = {"reference/src/a.cpp": {2: 5, 3: 5, 4: 3, 6: 0, 7: 0}}


def test_locate_takes_the_matching_line_nearest_the_hint():
    text = "a\nx;\nb\nx;\n"
    assert reach.locate(text, "  x;", 4) == 4
    assert reach.locate(text, "x;", 1) == 2
    assert reach.locate(text, "y;", 1) is None


def test_classify(tmp_path):
    root = tree(tmp_path)
    rel = "reference/src/a.cpp"
    # Line numbers of an older draw are hints only: the text decides.
    assert reach.classify(root, COUNTS, rel, 9, "  if (v > hi) return hi;\n") == (reach.REACHED, 3)
    assert reach.classify(root, COUNTS, rel, 7, "  return v + 1;\n") == (reach.UNREACHED, 7)
    assert reach.classify(root, COUNTS, rel, 10, "  int x = 0;\n") == (reach.NO_CODE, 10)
    assert reach.classify(root, COUNTS, rel, 3, "  if (v >= hi) return hi;\n") == (reach.GONE,
                                                                                   None)
    assert reach.classify(root, COUNTS, "reference/src/b.cpp", 1, "x\n") == (reach.GONE, None)


def test_markdown_rows_and_scores(tmp_path, capsys):
    root = tree(tmp_path)
    md = tmp_path / "run.md"
    md.write_text(
        "| # | mutant | file:line | original -> mutated | verdict | killed by | time (s) |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
        "| 1 | `a.cpp:1` | a.cpp:3 | `if (v > hi) return hi;  ->  if (v >= hi) return hi;` "
        "| KILLED | 1.1/x | 10 |\n"
        "| 2 | `a.cpp:2` | a.cpp:7 | `return v + 1;  ->  return v - 1;` | HARNESS-MISS | t | 9 |\n"
        "| 3 | `a.cpp:3` | a.cpp:4 | `return v;  ->  return 0;` | HARNESS-MISS (exempt) | t | 9 |\n"
        "| 4 | `a.cpp:4` | a.cpp:4 | `return v;  ->  return 1;` | SURVIVED | - | 9 |\n"
        "| 5 | `a.cpp:5` | a.cpp:4 | `return v;  ->  return v\\|1;` | NOT-COMPILED | - | 1 |\n")
    rows = reach.rows_of(md)
    assert [r["verdict"] for r in rows] == ["KILLED", "HARNESS-MISS", "HARNESS-MISS", "SURVIVED"]
    assert rows[1]["orig"] == "return v + 1;"
    sums = reach.report(root, COUNTS, [md])
    assert sums == [{"table": "run.md", "score": "33.3% (1/3)", "score_reached": "50.0% (1/2)",
                     "unreached_misses": ["a.cpp:2"], "gone": 0}]
    assert "miss out of reach: a.cpp:2" in capsys.readouterr().out


def test_json_rows(tmp_path):
    j = tmp_path / "mutation.json"
    j.write_text(json.dumps({"rows": [
        {"id": "m1", "file": "reference/src/a.cpp", "line": 3, "orig": "x\n", "new": "y\n",
         "verdict": "KILLED"},
        {"id": "m2", "file": "reference/src/a.cpp", "line": 3, "orig": "x\n", "new": "z\n",
         "verdict": "NOT-COMPILED"}]}))
    assert [r["id"] for r in reach.rows_of(j)] == ["m1"]
