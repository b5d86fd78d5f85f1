"""test_kill_check.py: the pieces kill_check.py and kill_check_cuda.py share.

Both checks pick their patches, copy reference/ and apply each patch through kill_check's
select_patches and copy_and_patch, and write the variant list through write_listing; a
regression there would show only in a full kill check (minutes here, or only on a GPU machine for
the CUDA one). These tests run them on a tiny tree instead.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kill_check  # noqa: E402

GOOD = """# breaks nothing useful: changes a word
--- a/src/a.txt
+++ b/src/a.txt
@@ -1 +1 @@
-hello
+world
"""
BAD = """# does not apply: the line it changes is not there
--- a/src/a.txt
+++ b/src/a.txt
@@ -1 +1 @@
-goodbye
+world
"""


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "repo"
    (root / "reference" / "src").mkdir(parents=True)
    (root / "reference" / "src" / "a.txt").write_text("hello\n")
    patches = tmp_path / "variants"
    patches.mkdir()
    (patches / "good.patch").write_text(GOOD)
    (patches / "bad.patch").write_text(BAD)
    return root, patches


def test_select_patches_all_some_and_unknown(tree, capsys):
    _, folder = tree
    assert [p.stem for p in kill_check.select_patches(folder, "", "kc")] == ["bad", "good"]
    assert [p.stem for p in kill_check.select_patches(folder, "good", "kc")] == ["good"]
    assert kill_check.select_patches(folder, "good,nope", "kc") == []
    assert "kc: no such variant: nope" in capsys.readouterr().err
    empty = folder.parent / "empty"
    empty.mkdir()
    assert kill_check.select_patches(empty, "", "kc") == []
    assert "kc: no variants found" in capsys.readouterr().err


def test_copy_and_patch_applies_each_patch_to_its_own_copy(tree, tmp_path):
    if shutil.which("patch") is None:
        pytest.skip("the patch program is not installed")
    root, folder = tree
    work = tmp_path / "work"
    (work / "good" / "reference").mkdir(parents=True)
    (work / "good" / "reference" / "stale").write_text("from an earlier run")
    (work / "good" / "harness.log").write_text("kept")
    applied = kill_check.copy_and_patch(root, work, kill_check.select_patches(folder, "", "kc"))
    assert applied == {"bad": False, "good": True}
    assert (work / kill_check.BASELINE / "reference" / "src" / "a.txt").read_text() == "hello\n"
    assert (work / "good" / "reference" / "src" / "a.txt").read_text() == "world\n"
    assert not (work / "good" / "reference" / "stale").exists()  # a fresh copy every run
    assert (work / "good" / "harness.log").read_text() == "kept"
    assert (root / "reference" / "src" / "a.txt").read_text() == "hello\n"  # source untouched


def test_write_listing_keeps_the_mtime_of_an_unchanged_list(tmp_path):
    q = kill_check.cmake_quote
    assert q('a "b"\\c') == '"a \\"b\\"/c"'
    path = kill_check.write_listing(tmp_path, [f"set(KC_VARIANTS {q('x')})"])
    assert path.read_text() == 'set(KC_VARIANTS "x")\n'
    before = path.stat().st_mtime_ns
    assert kill_check.write_listing(tmp_path, [f"set(KC_VARIANTS {q('x')})"]) == path
    assert path.stat().st_mtime_ns == before  # no needless reconfigure of the variants project
    kill_check.write_listing(tmp_path, [f"set(KC_VARIANTS {q('y')})"])
    assert path.read_text() == 'set(KC_VARIANTS "y")\n'
