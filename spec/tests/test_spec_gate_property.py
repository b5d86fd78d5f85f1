"""Property test of the spec-change gate (hypothesis): random edits that move or resize any
byte of any struct of the v0.2 release twin are never classified COMPATIBLE or EDITORIAL: the
diff reports a BREAKING change for that struct, and the gate fails unless the matching layout
bump excuses it. Part of the verification of VER-BREAK-01 (see test_spec_gate.py).
Run: python3 -m pytest -q spec/tests
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

SPEC = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SPEC / "tools"))

import spec_diff as sd  # noqa: E402
import spec_gate as sg  # noqa: E402

NOTHING_TO_CHECK = {"targets": [], "tested": {}, "exempt": {}, "untested": [],
                    "status": "nothing to check", "reason": ""}

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis is not installed (ci/requirements.txt; run ci/setup.sh)")
from hypothesis import given, settings, strategies as st  # noqa: E402

_TWIN = json.loads((SPEC / "releases" / "0.2" / "cuframes.json").read_text(encoding="utf-8"))
_LAYOUT = [(s, f["name"]) for s, d in _TWIN["structs"].items() for f in d["fields"]]


@st.composite
def layout_edit(draw):
    sname, fname = draw(st.sampled_from(_LAYOUT))
    fields = _TWIN["structs"][sname]["fields"]
    f = next(x for x in fields if x["name"] == fname)
    op = draw(st.sampled_from(["move", "resize", "swap", "struct-size", "overlap"]))
    if op == "move":
        delta = draw(st.integers(-24, 24).filter(lambda d: d != 0 and f["offset"] + d >= 0))
        return sname, fname, op, delta
    if op == "resize":
        size = draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64]).filter(lambda s: s != f["size"]))
        return sname, fname, op, size
    if op == "swap":
        others = [x["name"] for x in fields if x["name"] != fname]
        if not others:
            return sname, fname, "resize", f["size"] * 2
        return sname, fname, op, draw(st.sampled_from(others))
    if op == "struct-size":
        delta = draw(st.sampled_from([-64, -8, -4, 4, 8, 64]).filter(
            lambda d: _TWIN["structs"][sname]["size"] + d > 0))
        return sname, fname, op, delta
    # overlap: a reserved field of the struct slides over this field's bytes
    res = [x["name"] for x in fields if x["type"] == "reserved" and x["name"] != fname]
    if f["type"] == "reserved" or not res:
        return sname, fname, "move", 1
    return sname, fname, op, draw(st.sampled_from(res))


def _apply_layout(twin, edit):
    sname, fname, op, arg = edit
    t = copy.deepcopy(twin)
    fields = t["structs"][sname]["fields"]
    f = next(x for x in fields if x["name"] == fname)
    if op == "move":
        f["offset"] += arg
    elif op == "resize":
        f["size"] = arg
    elif op == "swap":
        g = next(x for x in fields if x["name"] == arg)
        f["offset"], g["offset"] = g["offset"], f["offset"]
    elif op == "struct-size":
        t["structs"][sname]["size"] += arg
    else:
        g = next(x for x in fields if x["name"] == arg)
        g["offset"], g["size"] = f["offset"], max(f["size"], 1)
    return t


def _bytes_moved(old, new, sname) -> bool:
    """True when the edit changed the struct size or the owner of some byte that meant
    something (an edit can move only reserved bytes, e.g. swapping two reserved fields: no
    reader sees that)."""
    o, n = old["structs"][sname], new["structs"][sname]
    if o["size"] != n["size"]:
        return True
    before, after = sd._byte_owners(o, o["size"]), sd._byte_owners(n, n["size"])
    return any(b is not None and b[1] != "reserved" and b != a for b, a in zip(before, after))


@settings(max_examples=300, deadline=None, database=None)
@given(layout_edit(), st.booleans())
def test_layout_edits_never_compatible(edit, with_segment_bump):
    old = _TWIN
    new = _apply_layout(old, edit)
    if not _bytes_moved(old, new, edit[0]):
        return
    if with_segment_bump:
        new["constants"]["SEGMENT_LAYOUT_VERSION"]["value"] = 2
    changes = sd.diff_twins(old, new)
    verdict = sg.classify(changes, old, new)
    breaking = [c for c in changes if c.cls == sd.BREAKING and c.struct == edit[0]]
    assert breaking, (edit, [c.message for c in changes])
    code, _ = sg.decide(verdict, NOTHING_TO_CHECK, None)
    region = old["structs"][edit[0]]["region"]
    if not with_segment_bump or region != "shm":
        assert code == 1, (edit, [(c.rule, c.outcome) for c in changes])
    else:
        assert code == 0 and all(c.outcome == "BREAKING_WITH_BUMP" for c in breaking)


