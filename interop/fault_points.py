"""The fault points of the reference, read from reference/src/fault.h (kFaultPoints), and the
informative table of spec/PROTOCOL.md section 1.7 that documents them."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAULT_H = ROOT / "reference" / "src" / "fault.h"
PROTOCOL_MD = ROOT / "spec" / "PROTOCOL.md"

_ENTRY = re.compile(r'\{\s*"((?:pub|sub)\.[a-z_]+\.[a-z_]+)",\s*"((?:[^"\\]|\\.)*)"\s*\}', re.S)


def fault_points() -> list[tuple[str, str]]:
    """[(name, what it leaves)] in the order of kFaultPoints."""
    text = FAULT_H.read_text()
    start = text.index("kFaultPoints[] = {")
    end = text.index("};", start)
    return [(m.group(1), m.group(2)) for m in _ENTRY.finditer(text[start:end])]


def spec_points() -> list[str]:
    """Point names in the first column of the table of PROTOCOL.md section 1.7."""
    text = PROTOCOL_MD.read_text()
    start = text.index("### 1.7 ")
    end = text.index("\n## ", start)
    return re.findall(r"^\| `((?:pub|sub)\.[a-z_]+\.[a-z_]+)` \|", text[start:end], re.M)
