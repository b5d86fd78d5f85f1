"""Report writers of the interop matrix: Markdown, JSON and a self-contained HTML page.

Layout follows the QUIC interop runner's matrix: one table per (memory kind, version mode), one
row per publisher implementation, one column per subscriber implementation, one letter per
scenario in each cell (pass / fail / N/A). The HTML page has inline CSS only (no scripts, no
external resources); hovering a letter shows the failure's evidence, a pass's notes or why a
cell is N/A.
"""
from __future__ import annotations

import html
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from matrix.expect import MODES, SCENARIOS


@dataclass
class CellRecord:
    pub: str
    sub: str
    mode: str
    kind: str
    scenario: str
    status: str                  # "pass" | "fail" | "na"
    reason: str = ""             # N/A: why
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evidence: str = ""
    seconds: float = 0.0
    expect: dict = field(default_factory=dict)
    rerun: str = ""              # the command that runs this cell alone


@dataclass
class Matrix:
    impls: dict[str, str]        # name -> title (manifest "name")
    kinds: list[str]
    modes: list[str]
    scenarios: list[str]
    records: list[CellRecord] = field(default_factory=list)
    seconds: float = 0.0
    twin_release: str = ""

    def find(self, pub: str, sub: str, mode: str, kind: str, sc: str) -> CellRecord | None:
        for r in self.records:
            if (r.pub, r.sub, r.mode, r.kind, r.scenario) == (pub, sub, mode, kind, sc):
                return r
        return None

    def counts(self) -> dict[str, int]:
        c = {"pass": 0, "fail": 0, "na": 0}
        for r in self.records:
            c[r.status] += 1
        return c

    def tables(self) -> list[tuple[str, str]]:
        """(kind, mode) pairs that have at least one record, in a stable order."""
        return [(k, m) for k in self.kinds for m in self.modes
                if any(r.kind == k and r.mode == m for r in self.records)]


def _md_letter(r: CellRecord | None, sc: str) -> str:
    if r is None:
        return ""
    return {"pass": sc, "fail": f"**{sc}✗**", "na": "·"}[r.status]


def markdown(m: Matrix) -> str:
    c = m.counts()
    lines = ["# cuframes interop matrix", "",
             f"{c['pass']} pass, {c['fail']} fail, {c['na']} N/A; {m.seconds:.1f} s; twin release "
             f"{m.twin_release or '?'}.", "",
             "Rows: publisher implementation; columns: subscriber implementation. One letter per "
             "scenario: plain = pass, **X✗** = fail, · = N/A.", ""]
    lines += [f"- `{s}` {SCENARIOS[s]}" for s in m.scenarios]
    lines.append("")
    names = list(m.impls)
    for kind, mode in m.tables():
        lines += [f"## {kind}, {mode} ({MODES[mode]})", "",
                  "| publisher \\ subscriber | " + " | ".join(names) + " |",
                  "| --- |" + " --- |" * len(names)]
        for p in names:
            cells = []
            for s in names:
                letters = [_md_letter(m.find(p, s, mode, kind, sc), sc) for sc in m.scenarios]
                cells.append(" ".join(x for x in letters if x) or "-")
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
        lines.append("")
    fails = [r for r in m.records if r.status == "fail"]
    if fails:
        lines += ["## Failures", ""]
        for r in fails:
            lines.append(f"- {r.pub} → {r.sub}, {r.kind}, {r.mode}, `{r.scenario}`: "
                         + "; ".join(r.failures[:3])
                         + (f"  \n  rerun: `{r.rerun}`" if r.rerun else ""))
        lines.append("")
    na = sorted({(r.reason) for r in m.records if r.status == "na"})
    if na:
        lines += ["## N/A reasons", ""] + [f"- {x}" for x in na] + [""]
    return "\n".join(lines)


def to_json(m: Matrix) -> str:
    doc = {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "twin_release": m.twin_release, "seconds": round(m.seconds, 2),
           "implementations": m.impls, "kinds": m.kinds, "modes": {k: MODES[k] for k in m.modes},
           "scenarios": {k: SCENARIOS[k] for k in m.scenarios}, "counts": m.counts(),
           "results": [asdict(r) for r in m.records]}
    return json.dumps(doc, indent=2)


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0 0 2em}
th,td{border:1px solid #bbb;padding:6px 10px;text-align:center}
th{background:#f0f0f0}
td.cell{white-space:nowrap}
td.allpass{background:#d8f5d8} td.anyfail{background:#f8d0d0} td.allna{background:#eee}
span.l{display:inline-block;min-width:1.4em;margin:1px;padding:1px 3px;border-radius:3px;
 font-family:monospace;font-weight:bold;cursor:help}
span.pass{background:#2e9d3a;color:#fff} span.fail{background:#c62828;color:#fff}
span.na{background:#bbb;color:#555}
pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;overflow-x:auto;font-size:12px}
"""


def expectation_line(r: CellRecord) -> str:
    """What the twin made of this cell, e.g. 'expected: publisher v2; reference v1 frames ...'."""
    subs = r.expect.get("subs") or []
    if not subs:
        return ""
    parts = [f"{s['impl']}{' (capped)' if s.get('capped') else ''} "
             f"v{s['proto'] if s['proto'] is not None else '-'}"
             f"{' +ring' if s.get('ring') else ''}"
             f"{'' if s.get('outcome') == 'ok' else ' -> ' + str(s.get('outcome'))}"
             for s in subs]
    return f"expected: publisher v{r.expect.get('pub_proto')}; " + ", ".join(parts)


def _title(r: CellRecord) -> str:
    head = f"{r.scenario} {SCENARIOS[r.scenario]} - {r.status.upper()} ({r.seconds:.1f} s)"
    if r.status == "na":
        return f"{head}\nN/A: {r.reason}"
    body = [x for x in [expectation_line(r)] if x] + r.failures + r.notes
    if r.evidence:
        body.append(r.evidence)
    if r.rerun and r.status == "fail":
        body.append(f"rerun: {r.rerun}")
    return "\n".join([head, *body])


def to_html(m: Matrix) -> str:
    c = m.counts()
    e = html.escape
    out = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>cuframes interop matrix"
           "</title><style>", _CSS, "</style></head><body>",
           "<h1>cuframes interop matrix</h1>",
           f"<p>{c['pass']} pass, {c['fail']} fail, {c['na']} N/A; {m.seconds:.1f} s; twin "
           f"release {e(m.twin_release or '?')}. Rows: publisher; columns: subscriber. Hover a "
           f"letter for its evidence.</p><ul>"]
    out += [f"<li><b>{s}</b> {e(SCENARIOS[s])}</li>" for s in m.scenarios]
    out.append("</ul><ul>")
    out += [f"<li><b>{e(n)}</b>: {e(t)}</li>" for n, t in m.impls.items()]
    out.append("</ul>")
    names = list(m.impls)
    for kind, mode in m.tables():
        out.append(f"<h2>{e(kind)}, {e(mode)} <small>({e(MODES[mode])})</small></h2><table>"
                   "<tr><th>publisher \\ subscriber</th>"
                   + "".join(f"<th>{e(s)}</th>" for s in names) + "</tr>")
        for p in names:
            out.append(f"<tr><th>{e(p)}</th>")
            for s in names:
                recs = [m.find(p, s, mode, kind, sc) for sc in m.scenarios]
                recs = [r for r in recs if r is not None]
                st = {r.status for r in recs}
                cls = ("anyfail" if "fail" in st else "allna" if st <= {"na"} else "allpass")
                spans = "".join(f"<span class='l {r.status}' title='{e(_title(r), quote=True)}'>"
                                f"{r.scenario}</span>" for r in recs)
                out.append(f"<td class='cell {cls}'>{spans or '-'}</td>")
            out.append("</tr>")
        out.append("</table>")
    fails = [r for r in m.records if r.status == "fail"]
    if fails:
        out.append("<h2>Failures</h2>")
        for r in fails:
            out.append(f"<h3>{e(r.pub)} &rarr; {e(r.sub)}, {e(r.kind)}, {e(r.mode)}, "
                       f"{r.scenario}</h3><pre>{e(_title(r))}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_all(m: Matrix, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "interop-matrix.md", directory / "interop-matrix.json",
             directory / "interop-matrix.html"]
    for p, text in zip(paths, (markdown(m), to_json(m), to_html(m))):
        p.write_text(text + "\n")
    return paths
