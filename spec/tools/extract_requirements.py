#!/usr/bin/env python3
"""extract_requirements.py: list the requirements tagged in spec/PROTOCOL.md as
{id, level, section, text}, and optionally write them into the twin.

  extract_requirements.py [--text PATH] [--adapter PATH] [--spec PATH] [--write]

Without --write it prints the list as JSON, one requirement per line. With --write it replaces
the `requirements` array of the twin in place: only that array's text changes (one requirement
per line); every other key keeps its formatting. The result is re-parsed and compared with the
original before it is written, so a failed replace never damages the file.

The section is the numeric prefix of the nearest #, ## or ### heading above the tag; the text is
the whole statement the tag opens (see check_spec.tag_sentence), markdown stripped. The
requirements of the adapter contract (--adapter, default spec/ADAPTER.md) follow those of
PROTOCOL.md, each with "document": "ADAPTER.md".
Exit status: 0 on success, 1 on a malformed text or twin (problems are printed).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_spec  # noqa: E402  (same directory)


def extract(markdown: str, document: str = "PROTOCOL.md") -> tuple[list[dict], list]:
    """Returns (requirements in text order, problems). Problems are the text's own problems
    (malformed tags, duplicate IDs, TODO/TBD) as check_spec reports them."""
    parsed = check_spec.parse_text(markdown)
    problems = check_spec.check_text(parsed, document)
    reqs, seen = [], set()
    for t in parsed.tags:
        if t.id in seen:
            continue
        seen.add(t.id)
        r = {"id": t.id, "level": t.level, "section": t.section, "text": t.text}
        if document != "PROTOCOL.md":
            r["document"] = document
        reqs.append(r)
    return reqs, problems


def format_requirements(reqs: list[dict], indent: str = "  ") -> str:
    """The JSON text of the array, one requirement per line, indented for a top-level key."""
    if not reqs:
        return "[]"
    lines = [indent * 2 + json.dumps(r, ensure_ascii=False) for r in reqs]
    return "[\n" + ",\n".join(lines) + "\n" + indent + "]"


def _array_end(raw: str, start: int) -> int:
    """Index just past the JSON array that opens at raw[start] == '[' (strings respected)."""
    depth, i, in_str = 0, start, False
    while i < len(raw):
        ch = raw[i]
        if in_str:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unterminated array")


def replace_requirements(raw: str, reqs: list[dict]) -> str:
    """The twin's text with its top-level `requirements` array replaced by `reqs`.

    Targeted replace when the key exists at the top level (indentation of two spaces); otherwise
    the whole file is rewritten with json.dumps(indent=2). Either way the result parses to the
    original object with only `requirements` changed, or ValueError is raised."""
    original = json.loads(raw)
    expected = dict(original)
    expected["requirements"] = reqs
    m = re.search(r'^(\s*)"requirements"\s*:\s*\[', raw, flags=re.MULTILINE)
    out = None
    if m:
        start = m.end() - 1
        end = _array_end(raw, start)
        candidate = raw[:start] + format_requirements(reqs, m.group(1) or "  ") + raw[end:]
        try:
            if json.loads(candidate) == expected:
                out = candidate
        except json.JSONDecodeError:
            out = None
    if out is None:
        out = json.dumps(expected, indent=2, ensure_ascii=False) + "\n"
    if json.loads(out) != expected:
        raise ValueError("rewriting the twin would change more than its requirements")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Extract tagged requirements from PROTOCOL.md.")
    ap.add_argument("--text", type=Path, default=check_spec.DEFAULT_TEXT,
                    help="normative text (default: %(default)s)")
    ap.add_argument("--spec", type=Path, default=check_spec.DEFAULT_SPEC,
                    help="twin to update with --write (default: %(default)s)")
    ap.add_argument("--write", action="store_true",
                    help="replace the twin's requirements array instead of printing")
    ap.add_argument("--adapter", type=Path, default=check_spec.DEFAULT_ADAPTER,
                    help="adapter contract, tagged IDs appended (default: %(default)s; "
                    "a missing file adds none)")
    args = ap.parse_args(argv)

    markdown, problems = check_spec.load_text(args.text)
    if markdown is None:
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    reqs, problems = extract(markdown)
    adapter = args.adapter.read_text(encoding="utf-8") if args.adapter.is_file() else None
    if adapter is not None:
        more, more_problems = extract(adapter, "ADAPTER.md")
        reqs += more
        problems += more_problems
    blocking = [p for p in problems if p.code != "text-todo"]
    for p in problems:
        print(f"{'error' if p in blocking else 'warning'}: {p}", file=sys.stderr)
    if blocking:
        return 1

    if not args.write:
        print(format_requirements(reqs, indent=""))
        return 0
    try:
        raw = args.spec.read_text(encoding="utf-8")
        out = replace_requirements(raw, reqs)
    except (OSError, ValueError) as e:   # json.JSONDecodeError is a ValueError
        print(f"error: {args.spec}: {e}", file=sys.stderr)
        return 1
    if out != raw:
        args.spec.write_text(out, encoding="utf-8")
    counts = {lvl: sum(1 for r in reqs if r["level"] == lvl) for lvl in check_spec.LEVELS}
    print(f"{args.spec}: {len(reqs)} requirements ({counts['MUST']} MUST, {counts['SHOULD']} "
          f"SHOULD, {counts['MAY']} MAY){'' if out != raw else ', unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
