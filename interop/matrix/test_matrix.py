"""The implementation x implementation interop matrix (ci/interop.sh runs it; see README).

One test per cell: publisher implementation x subscriber implementation x version mode x memory
kind x scenario, implementations being the conformance manifests (conformance/manifests/*.json).
What a cell must show is derived from the twin (expect.derive); a cell whose claims rule it out
is skipped with the reason (N/A in the reports). Selection, from the environment:

  CUFRAMES_MATRIX_IMPLS      comma list of manifest names or paths (default: every manifest)
  CUFRAMES_MATRIX_KINDS      host,cuda (default both; cuda cells need an NVIDIA GPU)
  CUFRAMES_MATRIX_MODES      v2,v1-pub,v1-sub (default all)
  CUFRAMES_MATRIX_SCENARIOS  letters, e.g. F,P (default all of expect.SCENARIOS)
  CUFRAMES_MATRIX_REPORTS    write interop-matrix.{md,json,html} into this folder at the end
  CUFRAMES_MATRIX_QUICK      1: the reduced matrix ci/test.sh runs (see quick_selection)
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from matrix.expect import MODES, SCENARIOS, Twin, derive
from matrix.manifests import MANIFEST_DIR, Impl, discover
from matrix.report import CellRecord, Matrix, write_all
from matrix.scenarios import run_cell


def _env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "").strip()
    return [x.strip() for x in raw.split(",") if x.strip()] if raw else default


def gpu_present() -> bool:
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl"))


IMPLS = discover(_env_list("CUFRAMES_MATRIX_IMPLS", []) or None)
BY_NAME = {i.name: i for i in IMPLS}
KINDS = _env_list("CUFRAMES_MATRIX_KINDS", ["host", "cuda"])
MODE_LIST = _env_list("CUFRAMES_MATRIX_MODES", list(MODES))
SCENARIO_LIST = _env_list("CUFRAMES_MATRIX_SCENARIOS", list(SCENARIOS))
QUICK = os.environ.get("CUFRAMES_MATRIX_QUICK") == "1"
for _k in KINDS:
    assert _k in ("host", "cuda"), f"CUFRAMES_MATRIX_KINDS: unknown kind {_k!r}"
for _m in MODE_LIST:
    assert _m in MODES, f"CUFRAMES_MATRIX_MODES: unknown mode {_m!r}"
for _s in SCENARIO_LIST:
    assert _s in SCENARIOS, f"CUFRAMES_MATRIX_SCENARIOS: unknown scenario {_s!r}"


def _quick_keep(pub: str, sub: str, scenario: str) -> bool:
    """ci/test.sh's reduced matrix: reference x reference in full (the runner end to end); other
    implementations only paired with the reference, in scenario F (ci/interop.sh runs the rest)."""
    if pub == sub == "reference":
        return True
    return "reference" in (pub, sub) and scenario == "F"


CELLS = [(k, m, p.name, s.name, sc) for k in KINDS for m in MODE_LIST for p in IMPLS
         for s in IMPLS for sc in SCENARIO_LIST
         if not QUICK or _quick_keep(p.name, s.name, sc)]


@pytest.fixture(scope="module")
def matrix():
    twin = Twin.load()
    twin.check_rules()
    titles = {i.name: i.title + (f" (with {', '.join(x + '.json' for x in i.merged)})"
                                 if i.merged else "") for i in IMPLS}
    m = Matrix(titles, KINDS, MODE_LIST, SCENARIO_LIST,
               twin_release=str(twin.data.get("release", "")))
    t0 = time.monotonic()
    yield twin, m
    m.seconds = time.monotonic() - t0
    out = os.environ.get("CUFRAMES_MATRIX_REPORTS")
    if out:
        for p in write_all(m, Path(out)):
            print(f"\nwrote {p}")


def _arg(impl: Impl) -> str:
    """How ci/interop.sh --impl names `impl`: its name when it is a manifest of the default
    folder, else its path."""
    return impl.name if impl.path.parent.resolve() == MANIFEST_DIR.resolve() else str(impl.path)


def _missing_program(impl: Impl, role: str) -> str | None:
    argv = impl.argv(role, [])
    exe = Path(argv[0])
    if exe.is_absolute() and not exe.exists():
        return f"{impl.name}: {role} adapter {exe} does not exist (build first)"
    return None


@pytest.mark.parametrize("kind,mode,pub,sub,scenario", CELLS,
                         ids=[f"{k}-{m}-{p}-{s}-{sc}" for k, m, p, s, sc in CELLS])
def test_cell(matrix, tmp_path, kind, mode, pub, sub, scenario):
    twin, m = matrix
    p_impl, s_impl = BY_NAME[pub], BY_NAME[sub]
    others = [i for i in IMPLS if i.name != sub]
    cell = derive(twin, p_impl.side(), s_impl.side(), [o.side() for o in others], mode, kind,
                  scenario)
    rec = CellRecord(pub, sub, mode, kind, scenario, "na",
                     expect={"pub_proto": cell.pub_proto,
                             "subs": [vars(se) for se in cell.subs]})
    names = list(dict.fromkeys([pub, sub, *(se.impl for se in cell.subs)]))
    rec.rerun = (f"ci/interop.sh --impl {' '.join(_arg(BY_NAME[n]) for n in names)} "
                 f"--kinds {kind} --modes {mode} --scenarios {scenario}")
    m.records.append(rec)
    if cell.applicable and kind == "cuda" and not gpu_present():
        cell.applicable, cell.reason = False, "no NVIDIA GPU on this machine"
    if not cell.applicable:
        rec.reason = cell.reason
        pytest.skip(f"N/A: {cell.reason}")
    # The roster the scenario starts, matching expect.sub_roster (column impl first).
    subs = [BY_NAME[se.impl] for se in cell.subs]
    for impl, role in ((p_impl, "publisher"), *((i, "subscriber") for i in subs)):
        missing = _missing_program(impl, role)
        if missing:
            rec.status, rec.failures = "fail", [missing]
            pytest.fail(missing)
    sock = tmp_path / "sock"
    sock.mkdir()
    res = run_cell(twin, sock, kind, scenario, p_impl, subs, cell)
    rec.status, rec.failures, rec.notes = res.status, res.failures, res.notes
    rec.evidence, rec.seconds, rec.reason = res.evidence, res.seconds, res.reason
    if res.status == "na":
        pytest.skip(f"N/A: {res.reason}")
    if res.status == "fail":
        pytest.fail("\n".join(res.failures) + "\n--- evidence ---\n" + res.evidence,
                    pytrace=False)
