#!/usr/bin/env python3
"""check_spec.py: validate the machine-readable twin (spec/cuframes.json) and its
agreement with the normative text (spec/PROTOCOL.md).

What it checks, one function per check (each returns a list of Problem):
  check_shape             the JSON types every other check relies on
  check_struct_layouts    fields cover every byte exactly once, sizes match types and the
                          declared struct size, nested structs, writer/since present
  check_atomics           atomics are 4 or 8 bytes, naturally aligned, in a struct whose
                          alignment keeps them aligned in shared memory
  check_value_refs        "enum:x" / "flags:x" name an enum, strings in value lists name a
                          constant, literal values fit their field
  check_enums             no duplicate values inside an enum, flag enums are single bits
  check_design_facts      sizes the original design fixed (FrameMeta 64, SlotDescriptor 192,
                          SubscriberSlot 128, SegmentHeader 256), 8 message types, the v2
                          error codes, and every *_SIZE constant agrees with its struct
  check_messages          unique type numbers and names, payload struct exists and fits
  check_errors            unique error values and names
  check_state_machines    every (state, event) pair has exactly one transition, targets are
                          declared states, errors name the errors table
  check_requirements      twin requirement list: syntax, level, no duplicates
  check_text              PROTOCOL.md: no TODO/TBD, tags well formed, no duplicate IDs
  check_sync              every tagged ID is in both text and twin, same level, same section,
                          same statement (whitespace-normalised, markdown stripped); IDs of
                          ADAPTER.md (twin key "document") are held against that document
  check_release           "release" and "clarifications" (the spec-change gate's input): shape,
                          every clarified ID or state-table row exists, every reason non-empty

Usage:
  check_spec.py [--spec PATH] [--text PATH] [--adapter PATH] [--json]
Exit status: 0 when no problem is found, 1 otherwise (2 for a usage error).

Python 3.11+ standard library only; extract_requirements.py imports parse_text() from here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, asdict
from pathlib import Path

SPEC_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = SPEC_DIR / "cuframes.json"
DEFAULT_TEXT = SPEC_DIR / "PROTOCOL.md"

LEVELS = ("MUST", "SHOULD", "MAY")
ID_RE = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*-[0-9]{2}$")

# Fixed-width types and their sizes; None means "any size".
TYPE_SIZES: dict[str, int | None] = {
    "u8": 1, "u16": 2, "u32": 4, "u64": 8,
    "i8": 1, "i16": 2, "i32": 4, "i64": 8,
    "bytes": None, "reserved": None,
}
INTEGER_TYPES = {"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"}
SHARED_REGIONS = ("shm", "ring")
# The twin carries each requirement's whole statement; check_sync compares it with the text.
# Twins of schema "cuframes-spec/1" (release 0.2 and before) carried the statement cut at
# LEGACY_TEXT_LEN characters; the checker still accepts that form for them, so that a released
# twin keeps passing. Schema "cuframes-spec/2" and later carry the whole statement.
LEGACY_SCHEMA = "cuframes-spec/1"
LEGACY_TEXT_LEN = 240
DEFAULT_ADAPTER = SPEC_DIR / "ADAPTER.md"
# Documents a requirement of the twin may come from (its "document" key; PROTOCOL.md if absent).
DOCUMENTS = ("PROTOCOL.md", "ADAPTER.md")
RELEASE_RE = re.compile(r"^[0-9]+\.[0-9]+$")
# A clarification names a requirement ID or a state-table row "sm:<machine>/<FROM>/<EVENT>".
SM_ROW_RE = re.compile(r"^sm:([a-z_]+)/([A-Z_]+)/([A-Z_]+)$")

# Facts the original design fixed; a change here is a protocol break, not a typo fix.
REQUIRED_STRUCT_SIZES = {"FrameMeta": 64, "SlotDescriptor": 192, "SubscriberSlot": 128,
                         "SegmentHeader": 256}
REQUIRED_MESSAGE_COUNT = 8
REQUIRED_ERRORS = ("OVERSIZED", "NO_PACKET_RING", "NO_CODEC_PARAMS", "PACKET_OVERRUN")
REQUIRED_STATE_MACHINES = ("subscriber", "publisher")
# *_SIZE constants whose struct name is not the CamelCase of the constant's stem.
SIZE_CONSTANT_ALIASES = {"RING_HEADER_SIZE": "PacketRingHeader"}


@dataclass(frozen=True)
class Problem:
    """One finding: `code` is a stable short name tests match on, `where` names the
    struct/field/ID/file position, `message` says what is wrong."""
    code: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message} [{self.code}]"


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def load_spec(path: Path) -> tuple[dict | None, list[Problem]]:
    """Returns (twin, problems); twin is None when the file is missing or not valid JSON."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        return None, [Problem("spec-missing", str(path), f"cannot read the twin: {e.strerror}")]
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as e:
        return None, [Problem("spec-json", f"{path}:{e.lineno}:{e.colno}",
                              f"not valid JSON: {e.msg}")]
    if not isinstance(spec, dict):
        return None, [Problem("spec-json", str(path), "top level is not a JSON object")]
    return spec, []


def load_text(path: Path) -> tuple[str | None, list[Problem]]:
    """Returns (markdown, problems); markdown is None when the file cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8"), []
    except OSError as e:
        return None, [Problem("text-missing", str(path),
                              f"cannot read the normative text: {e.strerror}")]


def _structs(spec: dict) -> dict:
    s = spec.get("structs", {})
    return s if isinstance(s, dict) else {}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# ---------------------------------------------------------------------------------------------
# Shape: the JSON types the other checks rely on
# ---------------------------------------------------------------------------------------------

# key -> (container type, element type); "requirements" may be empty but must be a list.
TOP_LEVEL_SHAPE = {
    "constants": (dict, dict), "enums": (dict, dict), "structs": (dict, dict),
    "messages": (list, dict), "errors": (list, dict), "state_machines": (dict, dict),
    "requirements": (list, dict),
}
# Scalar keys that, when present, must have these types.
FIELD_KEY_TYPES = {"name": str, "offset": int, "size": int, "type": str, "writer": str,
                   "since": int, "atomic": bool}
STRUCT_KEY_TYPES = {"size": int, "align": int, "since": int, "region": str, "section": str}
ITEM_KEY_TYPES = {"name": str, "type": int, "value": int, "payload": str, "min_length": int,
                  "max_length": int, "id": str, "level": str, "section": str, "text": str}


def check_shape(spec: dict) -> list[Problem]:
    """Top-level keys have the right JSON types, and so do the scalar keys of fields, messages,
    errors, requirements and state machines, so that every later check can rely on them."""
    problems: list[Problem] = []
    for key, (ctype, etype) in TOP_LEVEL_SHAPE.items():
        if key not in spec:
            problems.append(Problem("spec-shape", key, "missing top-level key"))
            continue
        val = spec[key]
        if not isinstance(val, ctype):
            problems.append(Problem("spec-shape", key, f"must be a JSON "
                                    f"{'object' if ctype is dict else 'array'}"))
            continue
        items = val.items() if isinstance(val, dict) else enumerate(val)
        for k, item in items:
            where = f"{key}.{k}" if isinstance(val, dict) else f"{key}[{k}]"
            if not isinstance(item, etype):
                problems.append(Problem("spec-shape", where, "must be a JSON object"))
                continue
            if key in ("messages", "errors", "requirements"):
                for ik, it in ITEM_KEY_TYPES.items():
                    if ik in item and not (isinstance(item[ik], it) and not
                                           (it is int and isinstance(item[ik], bool))):
                        problems.append(Problem("spec-shape", f"{where}.{ik}",
                                                f"must be a {it.__name__}"))
            if key == "structs":
                for sk, st_type in STRUCT_KEY_TYPES.items():
                    v = item.get(sk)
                    if v is not None and not (isinstance(v, st_type) and
                                              not (st_type is int and isinstance(v, bool))):
                        problems.append(Problem("spec-shape", f"{k}.{sk}",
                                                f"must be a {st_type.__name__}"))
                fields = item.get("fields")
                if not isinstance(fields, list):
                    problems.append(Problem("spec-shape", f"{k}.fields", "must be an array"))
                    continue
                for i, f in enumerate(fields):
                    if not isinstance(f, dict):
                        problems.append(Problem("spec-shape", f"{k}.fields[{i}]",
                                                "must be a JSON object"))
                        continue
                    for fk, ft in FIELD_KEY_TYPES.items():
                        v = f.get(fk)
                        if v is not None and not (isinstance(v, ft) and
                                                  not (ft is int and isinstance(v, bool))):
                            problems.append(Problem("spec-shape",
                                                    f"{k}.{f.get('name', i)}.{fk}",
                                                    f"must be a {ft.__name__}"))
            if key == "state_machines":
                for mk in ("states", "events", "transitions"):
                    lst = item.get(mk)
                    if not isinstance(lst, list):
                        problems.append(Problem("spec-shape", f"state machine {k}.{mk}",
                                                "must be an array"))
                    elif mk != "transitions" and not all(isinstance(x, str) for x in lst):
                        problems.append(Problem("spec-shape", f"state machine {k}.{mk}",
                                                "must hold strings"))
                    elif mk == "transitions":
                        for i, t in enumerate(lst):
                            bad = not isinstance(t, dict) or any(
                                t.get(tk) is not None and not isinstance(t.get(tk), str)
                                for tk in ("from", "event", "to", "action", "error"))
                            if bad:
                                problems.append(Problem(
                                    "spec-shape", f"state machine {k}.transitions[{i}]",
                                    "must be an object of strings"))
    return problems


# ---------------------------------------------------------------------------------------------
# Structs and fields
# ---------------------------------------------------------------------------------------------

def field_type_size(ftype: str, structs: dict) -> tuple[bool, int | None]:
    """Returns (known, size): known is False for an unrecognised type; size None = any."""
    if ftype in TYPE_SIZES:
        return True, TYPE_SIZES[ftype]
    if isinstance(ftype, str) and ftype.startswith("struct:"):
        target = structs.get(ftype[len("struct:"):])
        if isinstance(target, dict) and _is_int(target.get("size")):
            return True, target["size"]
        return False, None
    return False, None


def check_struct_layouts(spec: dict) -> list[Problem]:
    """Every byte of every struct covered by exactly one field; sizes agree with types and with
    the declared struct size; every field has a writer and a since; nested structs exist."""
    problems: list[Problem] = []
    structs = _structs(spec)
    if not structs:
        return [Problem("struct-missing", "structs", "the twin declares no structs")]
    versions = spec.get("proto_versions")
    versions = [v for v in versions if _is_int(v)] if isinstance(versions, list) else []
    for sname, st in structs.items():
        if not isinstance(st, dict):
            problems.append(Problem("struct-malformed", sname, "struct entry is not an object"))
            continue
        size = st.get("size")
        if not _is_int(size) or size <= 0:
            problems.append(Problem("struct-malformed", sname, f"declared size {size!r} is not a "
                                    "positive integer"))
            size = None
        for key in ("align", "region", "section", "since"):
            if key not in st:
                problems.append(Problem("struct-malformed", sname, f"lacks '{key}'"))
        fields = st.get("fields")
        if not isinstance(fields, list) or not fields:
            problems.append(Problem("struct-malformed", sname, "has no fields"))
            continue
        seen_names: set[str] = set()
        spans = []
        for i, f in enumerate(fields):
            fname = f.get("name") if isinstance(f, dict) else None
            where = f"{sname}.{fname}" if fname else f"{sname}.fields[{i}]"
            if not isinstance(f, dict) or not fname:
                problems.append(Problem("field-malformed", where, "field has no name"))
                continue
            if fname in seen_names:
                problems.append(Problem("field-duplicate", where, "field name declared twice"))
            seen_names.add(fname)
            for key in ("writer", "since"):
                if f.get(key) in (None, ""):
                    problems.append(Problem("field-missing-key", where, f"lacks '{key}'"))
            fsince = f.get("since")
            if fsince is not None:
                if versions and fsince not in versions:
                    problems.append(Problem("field-since", where, f"since {fsince!r} is not one of "
                                            f"proto_versions {versions}"))
                elif _is_int(fsince) and _is_int(st.get("since")) and fsince < st["since"]:
                    problems.append(Problem("field-since", where, f"since {fsince} predates its "
                                            f"struct (since {st['since']})"))
            off, fsize, ftype = f.get("offset"), f.get("size"), f.get("type")
            if not _is_int(off) or off < 0 or not _is_int(fsize) or fsize <= 0:
                problems.append(Problem("field-malformed", where, f"offset {off!r} / size {fsize!r}"
                                        " must be a non-negative / positive integer"))
                continue
            known, tsize = field_type_size(ftype, structs)
            if not known:
                if isinstance(ftype, str) and ftype.startswith("struct:"):
                    problems.append(Problem("field-type", where,
                                            f"type {ftype} names no struct"))
                else:
                    problems.append(Problem("field-type", where, f"unknown type {ftype!r}"))
            elif tsize is not None and tsize != fsize:
                problems.append(Problem("field-size", where, f"size {fsize} disagrees with type "
                                        f"{ftype} ({tsize} bytes)"))
            if isinstance(ftype, str) and ftype.startswith("struct:") and known:
                inner = structs[ftype[len("struct:"):]]
                if inner is st:
                    problems.append(Problem("field-type", where, "struct contains itself"))
                inner_align = inner.get("align")
                if st.get("region") in SHARED_REGIONS and _is_int(inner_align) and inner_align > 0 \
                        and off % inner_align != 0:
                    problems.append(Problem("struct-align", where, f"nested {ftype} at offset {off}"
                                            f" is not aligned to its align {inner_align}"))
            spans.append((off, off + fsize, fname))
        # Coverage: sort by offset, walk, report overlaps and gaps.
        spans.sort()
        cursor, last_name = 0, None
        for start, end, fname in spans:
            if start < cursor:
                problems.append(Problem("layout-overlap", f"{sname}.{fname}",
                                        f"bytes {start}..{min(end, cursor) - 1} overlap field "
                                        f"{last_name} (ends at {cursor})"))
            elif start > cursor:
                problems.append(Problem("layout-gap", f"{sname}.{fname}",
                                        f"bytes {cursor}..{start - 1} before it are covered by no "
                                        f"field (declare them as type 'reserved')"))
            if end > cursor:
                cursor, last_name = end, fname
        if size is not None and spans:
            total = sum(e - s for s, e, _ in spans)
            if cursor < size:
                problems.append(Problem("layout-gap", sname,
                                        f"bytes {cursor}..{size - 1} at the end are covered by no "
                                        f"field (declared size {size})"))
            elif cursor > size:
                problems.append(Problem("layout-size", sname, f"fields end at byte {cursor} but "
                                        f"the declared size is {size}"))
            elif total != size:
                problems.append(Problem("layout-size", sname, f"field sizes sum to {total} but the"
                                        f" declared size is {size}"))
    return problems


def check_atomics(spec: dict) -> list[Problem]:
    """Atomic fields are integers of 4 or 8 bytes at an offset that is a multiple of their
    size, in a struct whose declared alignment keeps them aligned; shared-memory structs
    ("shm"/"ring") have an alignment that is a multiple of 8 and a size that is a multiple of
    their alignment (so arrays of them stay aligned)."""
    problems: list[Problem] = []
    for sname, st in _structs(spec).items():
        if not isinstance(st, dict):
            continue
        align, region, size = st.get("align"), st.get("region"), st.get("size")
        if not _is_int(align) or align <= 0 or align & (align - 1):
            problems.append(Problem("struct-align", sname, f"align {align!r} is not a power of "
                                    "two"))
            align = None
        if align and region in SHARED_REGIONS:
            if align % 8:
                problems.append(Problem("struct-align", sname, f"region '{region}' struct has "
                                        f"align {align}, not a multiple of 8: its atomics could "
                                        "be misaligned in shared memory"))
            if _is_int(size) and size % align:
                problems.append(Problem("struct-align", sname, f"size {size} is not a multiple of "
                                        f"align {align}: array elements would be misaligned"))
        for f in st.get("fields") or []:
            if not isinstance(f, dict) or not f.get("atomic"):
                continue
            where = f"{sname}.{f.get('name')}"
            off, fsize, ftype = f.get("offset"), f.get("size"), f.get("type")
            if fsize not in (4, 8):
                problems.append(Problem("atomic-size", where, f"atomic field is {fsize} bytes; "
                                        "atomics must be 4 or 8 bytes"))
            if ftype not in INTEGER_TYPES:
                problems.append(Problem("atomic-size", where, f"atomic field has non-integer "
                                        f"type {ftype!r}"))
            if _is_int(off) and _is_int(fsize) and fsize > 0 and off % fsize:
                problems.append(Problem("atomic-misaligned", where, f"atomic field at offset "
                                        f"{off} is not aligned to its size {fsize}"))
            if align and _is_int(fsize) and fsize > 0 and align % fsize:
                problems.append(Problem("struct-align", where, f"struct align {align} does not "
                                        f"keep this {fsize}-byte atomic aligned"))
    return problems


# ---------------------------------------------------------------------------------------------
# Value references and enums
# ---------------------------------------------------------------------------------------------

def enum_names(spec: dict) -> set[str]:
    """Names usable after "enum:"/"flags:": the enums plus the errors and messages tables."""
    names = set((spec.get("enums") or {}).keys())
    names.update({"error", "message_type"})
    return names


def _fits(value: int, ftype: str) -> bool:
    bits = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "i8": 8, "i16": 16, "i32": 32, "i64": 64}
    if ftype not in bits:
        return True
    n = bits[ftype]
    if ftype.startswith("u"):
        return 0 <= value < (1 << n)
    return -(1 << (n - 1)) <= value < (1 << (n - 1))


def check_value_refs(spec: dict) -> list[Problem]:
    """`values` of each field: "enum:x"/"flags:x" name an enum (or "error"/"message_type"),
    strings in a list name a constant, numbers fit the field's type, ranges have min <= max."""
    problems: list[Problem] = []
    enums = enum_names(spec)
    constants = spec.get("constants") or {}
    for sname, st in _structs(spec).items():
        if not isinstance(st, dict):
            continue
        for f in st.get("fields") or []:
            if not isinstance(f, dict) or "values" not in f:
                continue
            where = f"{sname}.{f.get('name')}"
            values, ftype = f["values"], f.get("type", "")
            if isinstance(values, str):
                kind, _, name = values.partition(":")
                if kind not in ("enum", "flags") or not name:
                    problems.append(Problem("value-ref", where, f"values {values!r} is neither "
                                            "'enum:NAME' nor 'flags:NAME'"))
                elif name not in enums:
                    problems.append(Problem("enum-ref", where, f"{values} names no enum"))
            elif isinstance(values, list):
                for v in values:
                    if isinstance(v, str):
                        if v not in constants:
                            problems.append(Problem("const-ref", where, f"value {v!r} names no "
                                                    "constant"))
                    elif _is_int(v):
                        if not _fits(v, ftype):
                            problems.append(Problem("value-range", where, f"value {v} does not "
                                                    f"fit type {ftype}"))
                    else:
                        problems.append(Problem("value-ref", where, f"value {v!r} is neither a "
                                                "number nor a constant name"))
            elif isinstance(values, dict):
                unknown = set(values) - {"min", "max", "power_of_two"}
                if unknown:
                    problems.append(Problem("value-ref", where, f"unknown range keys "
                                            f"{sorted(unknown)}"))
                lo, hi = values.get("min"), values.get("max")
                for v in (lo, hi):
                    if v is not None and (not _is_int(v) or not _fits(v, ftype)):
                        problems.append(Problem("value-range", where, f"bound {v!r} does not fit "
                                                f"type {ftype}"))
                if _is_int(lo) and _is_int(hi) and lo > hi:
                    problems.append(Problem("value-range", where, f"min {lo} > max {hi}"))
            else:
                problems.append(Problem("value-ref", where, f"values {values!r} has an unknown "
                                        "form"))
    return problems


def check_enums(spec: dict) -> list[Problem]:
    """Enum values are integers, unique inside their enum; enums used as flags are single bits."""
    problems: list[Problem] = []
    enums = spec.get("enums") or {}
    used_as_flags = set()
    for st in _structs(spec).values():
        for f in (st.get("fields") or []) if isinstance(st, dict) else []:
            v = f.get("values") if isinstance(f, dict) else None
            if isinstance(v, str) and v.startswith("flags:"):
                used_as_flags.add(v[len("flags:"):])
    for ename, members in enums.items():
        if not isinstance(members, dict) or not members:
            problems.append(Problem("enum-malformed", f"enum {ename}", "has no members"))
            continue
        seen: dict[int, str] = {}
        for mname, value in members.items():
            where = f"enum {ename}.{mname}"
            if not _is_int(value):
                problems.append(Problem("enum-malformed", where, f"value {value!r} is not an "
                                        "integer"))
                continue
            if value in seen:
                problems.append(Problem("enum-duplicate", where, f"value {value} already used by "
                                        f"{seen[value]}"))
            seen[value] = mname
            if ename in used_as_flags and (value <= 0 or value & (value - 1)):
                problems.append(Problem("enum-flag", where, f"flag value {value} is not a single "
                                        "bit"))
    return problems


# ---------------------------------------------------------------------------------------------
# Facts the original design fixed; constants
# ---------------------------------------------------------------------------------------------

def size_constant_struct(const_name: str, structs: dict) -> str | None:
    """Struct a *_SIZE constant measures: alias table, CamelCase of the stem, or the unique
    struct whose name ends with that CamelCase. None when it measures no struct."""
    if not const_name.endswith("_SIZE"):
        return None
    if const_name in SIZE_CONSTANT_ALIASES:
        return SIZE_CONSTANT_ALIASES[const_name]
    camel = "".join(w.capitalize() for w in const_name[:-len("_SIZE")].split("_"))
    if camel in structs:
        return camel
    ends = [s for s in structs if s.endswith(camel)]
    return ends[0] if len(ends) == 1 else None


def check_design_facts(spec: dict) -> list[Problem]:
    """Sizes fixed by the original design (FrameMeta 64, SlotDescriptor 192, SubscriberSlot 128,
    SegmentHeader 256), 8 message types, the v2 error codes, and every *_SIZE constant equal to
    the size of the struct it measures."""
    problems: list[Problem] = []
    structs = _structs(spec)
    for sname, want in REQUIRED_STRUCT_SIZES.items():
        st = structs.get(sname)
        if not isinstance(st, dict):
            problems.append(Problem("required-size", sname, f"struct missing (the design fixes it"
                                    f" at {want} bytes)"))
        elif st.get("size") != want:
            problems.append(Problem("required-size", sname, f"size is {st.get('size')}, the "
                                    f"design fixes it at {want} bytes"))
    for cname, c in (spec.get("constants") or {}).items():
        if not isinstance(c, dict) or not _is_int(c.get("value")):
            problems.append(Problem("const-malformed", f"constant {cname}", "has no integer "
                                    "'value'"))
            continue
        target = size_constant_struct(cname, structs)
        if target is None:
            continue
        st = structs.get(target)
        if not isinstance(st, dict):
            problems.append(Problem("const-size", f"constant {cname}", f"measures struct {target}"
                                    ", which does not exist"))
        elif st.get("size") != c["value"]:
            problems.append(Problem("const-size", f"constant {cname}", f"is {c['value']} but "
                                    f"struct {target} is {st.get('size')} bytes"))
    messages = spec.get("messages") or []
    if len(messages) != REQUIRED_MESSAGE_COUNT:
        problems.append(Problem("required-messages", "messages", f"{len(messages)} message types;"
                                f" the design fixes {REQUIRED_MESSAGE_COUNT}"))
    errors = {e.get("name") for e in spec.get("errors") or [] if isinstance(e, dict)}
    for name in REQUIRED_ERRORS:
        if name not in errors:
            problems.append(Problem("required-error", f"error {name}", "missing (the v2 packet "
                                    "ring design requires it)"))
    return problems


# ---------------------------------------------------------------------------------------------
# Messages and errors
# ---------------------------------------------------------------------------------------------

def check_messages(spec: dict) -> list[Problem]:
    """Message type numbers and names unique; payload names a struct; min_length >= payload
    size; min_length <= max_length <= TLV_MAX_PAYLOAD (when that constant exists)."""
    problems: list[Problem] = []
    structs = _structs(spec)
    tlv_max = ((spec.get("constants") or {}).get("TLV_MAX_PAYLOAD") or {}).get("value")
    by_type: dict[int, str] = {}
    names: set[str] = set()
    for i, m in enumerate(spec.get("messages") or []):
        if not isinstance(m, dict):
            problems.append(Problem("message-malformed", f"messages[{i}]", "not an object"))
            continue
        name = m.get("name") or f"messages[{i}]"
        where = f"message {name}"
        if name in names:
            problems.append(Problem("message-dup-name", where, "name declared twice"))
        names.add(name)
        mtype = m.get("type")
        if not _is_int(mtype):
            problems.append(Problem("message-malformed", where, f"type {mtype!r} is not an "
                                    "integer"))
        elif mtype in by_type:
            problems.append(Problem("message-dup-type", where, f"type {mtype} already used by "
                                    f"{by_type[mtype]}"))
        else:
            by_type[mtype] = name
        payload = m.get("payload")
        st = structs.get(payload) if isinstance(payload, str) else None
        if not isinstance(st, dict):
            problems.append(Problem("message-payload", where, f"payload struct {payload!r} does "
                                    "not exist"))
            continue
        lo, hi = m.get("min_length"), m.get("max_length")
        if not _is_int(lo) or not _is_int(hi):
            problems.append(Problem("message-length", where, "min_length/max_length missing"))
            continue
        if _is_int(st.get("size")) and lo < st["size"]:
            problems.append(Problem("message-length", where, f"min_length {lo} is smaller than "
                                    f"its payload {payload} ({st.get('size')} bytes)"))
        if hi < lo:
            problems.append(Problem("message-length", where, f"max_length {hi} < min_length {lo}"))
        if _is_int(tlv_max) and hi > tlv_max:
            problems.append(Problem("message-length", where, f"max_length {hi} exceeds "
                                    f"TLV_MAX_PAYLOAD {tlv_max}"))
        if "since" not in m:
            problems.append(Problem("message-malformed", where, "lacks 'since'"))
    return problems


def check_errors(spec: dict) -> list[Problem]:
    """Error values and names unique; every error has an integer value."""
    problems: list[Problem] = []
    by_value: dict[int, str] = {}
    names: set[str] = set()
    for i, e in enumerate(spec.get("errors") or []):
        if not isinstance(e, dict) or not e.get("name"):
            problems.append(Problem("error-malformed", f"errors[{i}]", "has no name"))
            continue
        where = f"error {e['name']}"
        if e["name"] in names:
            problems.append(Problem("error-dup-name", where, "name declared twice"))
        names.add(e["name"])
        v = e.get("value")
        if not _is_int(v):
            problems.append(Problem("error-malformed", where, f"value {v!r} is not an integer"))
        elif v in by_value:
            problems.append(Problem("error-dup-value", where, f"value {v} already used by "
                                    f"{by_value[v]}"))
        else:
            by_value[v] = e["name"]
    return problems


# ---------------------------------------------------------------------------------------------
# State machines
# ---------------------------------------------------------------------------------------------

def transition_error_problem(spec: dict, err, errors: set) -> str | None:
    """None when a transition's `error` is valid, else why not. Valid forms: an error name
    ("PROTOCOL"), alternatives ("UNSUPPORTED_LAYOUT|CORRUPT"), or MESSAGE.field naming a field
    of that message's payload whose values are "enum:error" ("HELLO_RESP.status": the error the
    peer sent)."""
    if not isinstance(err, str):
        return f"error {err!r} is not a string"
    bad = []
    for alt in err.split("|"):
        if alt in errors:
            continue
        msg_name, dot, fname = alt.partition(".")
        if dot:
            msg = next((m for m in spec.get("messages") or []
                        if isinstance(m, dict) and m.get("name") == msg_name), None)
            st = _structs(spec).get(msg.get("payload")) if msg else None
            fld = next((f for f in (st or {}).get("fields") or []
                        if isinstance(f, dict) and f.get("name") == fname), None)
            if fld is not None and fld.get("values") == "enum:error":
                continue
            bad.append(f"{alt!r} is not a field carrying an error code (message.field with "
                       "values enum:error)")
        else:
            bad.append(f"{alt!r} is not in the errors table")
    return f"error {err!r}: " + "; ".join(bad) if bad else None


def check_state_machines(spec: dict) -> list[Problem]:
    """For each machine (subscriber and publisher must exist): states and events declared and
    unique; every (state, event) pair has exactly one transition; every from/to is a declared
    state, every event a declared event, every non-empty error names the errors table (see
    transition_error_problem for the accepted forms)."""
    problems: list[Problem] = []
    machines = spec.get("state_machines")
    if not isinstance(machines, dict):
        return [Problem("sm-missing", "state_machines", "missing or not an object")]
    for name in REQUIRED_STATE_MACHINES:
        if name not in machines:
            problems.append(Problem("sm-missing", f"state machine {name}", "not declared"))
    errors = {e.get("name") for e in spec.get("errors") or [] if isinstance(e, dict)}
    for mname, m in machines.items():
        where = f"state machine {mname}"
        if not isinstance(m, dict):
            problems.append(Problem("sm-malformed", where, "not an object"))
            continue
        states, events = m.get("states") or [], m.get("events") or []
        if not states or not events:
            problems.append(Problem("sm-malformed", where, "needs non-empty 'states' and "
                                    "'events'"))
        for kind, items in (("state", states), ("event", events)):
            dups = sorted({x for x in items if items.count(x) > 1})
            for d in dups:
                problems.append(Problem("sm-malformed", f"{where}: {kind} {d}", "declared twice"))
        count: dict[tuple[str, str], int] = {}
        for i, t in enumerate(m.get("transitions") or []):
            if not isinstance(t, dict):
                problems.append(Problem("sm-malformed", f"{where}: transitions[{i}]",
                                        "not an object"))
                continue
            frm, ev, to, err = t.get("from"), t.get("event"), t.get("to"), t.get("error")
            twhere = f"{where}: {frm} --{ev}-->"
            if frm not in states:
                problems.append(Problem("sm-unknown-state", twhere, f"from-state {frm!r} is not "
                                        "declared"))
            if ev not in events:
                problems.append(Problem("sm-unknown-event", twhere, f"event {ev!r} is not "
                                        "declared"))
            if to not in states:
                problems.append(Problem("sm-unknown-state", twhere, f"to-state {to!r} is not "
                                        "declared"))
            if err not in (None, ""):
                bad = transition_error_problem(spec, err, errors)
                if bad:
                    problems.append(Problem("sm-unknown-error", twhere, bad))
            count[(frm, ev)] = count.get((frm, ev), 0) + 1
        for s in states:
            for ev in events:
                n = count.get((s, ev), 0)
                if n == 0:
                    problems.append(Problem("sm-gap", f"{where}: ({s}, {ev})",
                                            "no transition for this state and event"))
                elif n > 1:
                    problems.append(Problem("sm-duplicate", f"{where}: ({s}, {ev})",
                                            f"{n} transitions for this state and event"))
    return problems


# ---------------------------------------------------------------------------------------------
# Normative text
# ---------------------------------------------------------------------------------------------

@dataclass
class Tag:
    """One requirement tag found in the text."""
    id: str
    level: str
    section: str
    line: int
    text: str = ""


@dataclass
class ParsedText:
    tags: list[Tag]
    problems: list[Problem]


# A well-formed tag, and two loose shapes that catch malformed ones: any token before a level
# ("[shm-hdr-3 MUST]") and a well-formed ID before something that is not a level
# ("[SHM-HDR-03 SHALL]", "[SHM-HDR-03 must]").
TAG_RE = re.compile(r"\[([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*-[0-9]{2}) (MUST|SHOULD|MAY)\]")
LOOSE_LEVEL_RE = re.compile(r"\[\s*([^\[\]\s]+)\s+(MUST|SHOULD|MAY)\s*\]")
LOOSE_ID_RE = re.compile(r"\[\s*([A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-[0-9]+)\s+"
                         r"([A-Za-z][A-Za-z ]*?)\s*\]")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SECTION_RE = re.compile(r"^((?:\d+|[A-Z])(?:\.\d+)*)\.?(?:\s|$)")
FENCE_RE = re.compile(r"^\s*(```|~~~)")
TODO_RE = re.compile(r"\b(TODO|TBD)\b")
LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
INLINE_CODE_RE = re.compile(r"(`+)(.+?)\1")


def heading_section(title: str) -> str:
    """The numeric prefix of a heading title: "2.3" for "2.3 Frame meta", "" if none."""
    m = SECTION_RE.match(title.strip())
    return m.group(1) if m else ""


def strip_markdown(s: str) -> str:
    """Plain text: links to their text, emphasis and code marks dropped, whitespace collapsed."""
    s = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", s)          # [text](url)
    s = INLINE_CODE_RE.sub(lambda m: m.group(2), s)             # `code`
    s = re.sub(r"(\*\*|__)(.+?)\1", r"\2", s)                   # **bold**
    s = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", s)  # *em*
    s = re.sub(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)", r"\1", s)  # _em_
    s = re.sub(r"</?(?:br|b|i|em|strong|code|sup|sub|span)\b[^>]*>", "", s)  # inline html
    return re.sub(r"\s+", " ", s).strip()


SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z`*_\[(\"])")


def _split_sentences(s: str) -> list[str]:
    return [p for p in (x.strip() for x in SENTENCE_END_RE.split(s)) if p]


def tag_sentence(block: str, start: int, end: int) -> str:
    """The whole statement a tag at block[start:end] labels, as plain text without tags.

    Convention of PROTOCOL.md: a tag opens its statement, which runs to the next tag or the end
    of the paragraph, list item or table cell ("[ID MUST] The publisher ... . [ID2 MUST] ...").
    A tag with nothing after it closes its statement instead: the sentence before it
    ("... the slot. [ID MUST]").
    """
    def clean(s: str) -> str:
        return strip_markdown(LOOSE_LEVEL_RE.sub("", TAG_RE.sub("", s)))

    nxt = TAG_RE.search(block, end)
    after = clean(block[end:nxt.start() if nxt else len(block)])
    if after.strip(" .;:"):
        sentence = after
    else:
        sents = _split_sentences(clean(block[:start]))
        sentence = sents[-1] if sents else ""
        if after and sentence and sentence[-1] not in ".!?":
            sentence += after.strip()[:1]
    return sentence.rstrip()


def normalize_text(s: str) -> str:
    """A requirement statement in the form check_sync compares: markdown emphasis, code marks
    and links stripped (strip_markdown), whitespace collapsed. Applied to both sides, so a twin
    text written with or without backticks compares equal to the tagged sentence."""
    return strip_markdown(s)


def _blocks(markdown: str):
    """Yields (kind, first_line_number, text, section) for each block outside code fences:
    kind is "heading", "para" (paragraph or list item) or "row" (a table row); section is the
    numeric prefix of the nearest #/##/### heading above the block."""
    section = ""
    in_fence = False
    buf: list[str] = []
    buf_line = 0

    def flush():
        nonlocal buf
        if buf:
            text = " ".join(buf)
            buf = []
            return ("para", buf_line, text, section)
        return None

    for n, line in enumerate(markdown.splitlines(), start=1):
        if FENCE_RE.match(line):
            b = flush()
            if b:
                yield b
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        h = HEADING_RE.match(line)
        if h:
            b = flush()
            if b:
                yield b
            if len(h.group(1)) <= 3:
                section = heading_section(h.group(2))
            yield ("heading", n, h.group(2), section)
            continue
        if not line.strip():
            b = flush()
            if b:
                yield b
            continue
        if line.lstrip().startswith("|"):
            b = flush()
            if b:
                yield b
            yield ("row", n, line, section)
            continue
        if LIST_ITEM_RE.match(line):
            b = flush()
            if b:
                yield b
            line = LIST_ITEM_RE.sub("", line, count=1)
        elif line.lstrip().startswith(">"):
            line = line.lstrip()[1:]
        if not buf:
            buf_line = n
        buf.append(line.strip())
    b = flush()
    if b:
        yield b


def parse_text(markdown: str, where: str = "PROTOCOL.md") -> ParsedText:
    """Finds every requirement tag (outside code fences and inline code) with its level, the
    section it sits under and its sentence; reports TODO/TBD and malformed tags."""
    tags: list[Tag] = []
    problems: list[Problem] = []
    in_fence = False
    for n, line in enumerate(markdown.splitlines(), start=1):
        if FENCE_RE.match(line):
            in_fence = not in_fence
        for m in TODO_RE.finditer(line):
            problems.append(Problem("text-todo", f"{where}:{n}", f"contains '{m.group(1)}'"))
    for kind, line, text, section in _blocks(markdown):
        if kind == "heading":
            continue
        # Blank out inline code so examples like `[ID MUST]` are neither tags nor malformed.
        scan = INLINE_CODE_RE.sub(lambda m: " " * len(m.group(0)), text)
        good_spans = []
        for m in TAG_RE.finditer(scan):
            good_spans.append(m.span())
            seg_start, seg_end, body = m.start(), m.end(), text
            if kind == "row":   # the cell holding the tag is the block
                cell_start = text.rfind("|", 0, m.start()) + 1
                cell_end = text.find("|", m.end())
                cell_end = len(text) if cell_end < 0 else cell_end
                body = text[cell_start:cell_end]
                seg_start, seg_end = m.start() - cell_start, m.end() - cell_start
            tags.append(Tag(m.group(1), m.group(2), section, line,
                            tag_sentence(body, seg_start, seg_end)))
        for rx in (LOOSE_LEVEL_RE, LOOSE_ID_RE):
            for m in rx.finditer(scan):
                if any(s <= m.start() < e for s, e in good_spans):
                    continue
                problems.append(Problem("req-syntax", f"{where}:{line}",
                                        f"malformed requirement tag {m.group(0)!r} (want "
                                        "[ID LEVEL], ID like SHM-HDR-03, LEVEL one of "
                                        "MUST, SHOULD, MAY)"))
                good_spans.append(m.span())
    return ParsedText(tags, problems)


def check_text(parsed: ParsedText, where: str = "PROTOCOL.md") -> list[Problem]:
    """TODO/TBD and malformed tags (found while parsing) plus IDs tagged more than once."""
    problems = list(parsed.problems)
    first: dict[str, int] = {}
    for t in parsed.tags:
        if t.id in first:
            problems.append(Problem("req-dup-text", f"{t.id}", f"tagged again at {where}:{t.line}"
                                    f" (first at line {first[t.id]})"))
        else:
            first[t.id] = t.line
    return problems


# ---------------------------------------------------------------------------------------------
# Requirements: twin list, and sync with the text
# ---------------------------------------------------------------------------------------------

def check_requirements(spec: dict) -> list[Problem]:
    """The twin's requirement list: objects with id/level/section/text, well-formed IDs, a
    valid level, no ID twice."""
    problems: list[Problem] = []
    reqs = spec.get("requirements")
    if not isinstance(reqs, list):
        return [Problem("req-malformed", "requirements", "missing or not a list")]
    seen: set[str] = set()
    for i, r in enumerate(reqs):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str):
            problems.append(Problem("req-malformed", f"requirements[{i}]", "has no string 'id'"))
            continue
        rid = r["id"]
        if not ID_RE.match(rid):
            problems.append(Problem("req-syntax", rid, "malformed requirement ID in the twin"))
        if r.get("level") not in LEVELS:
            problems.append(Problem("req-level", rid, f"level {r.get('level')!r} is not one of "
                                    f"{', '.join(LEVELS)}"))
        for key in ("section", "text"):
            if not isinstance(r.get(key), str):
                problems.append(Problem("req-malformed", rid, f"lacks string '{key}'"))
        if rid in seen:
            problems.append(Problem("req-dup-twin", rid, "listed twice in the twin"))
        seen.add(rid)
    return problems


def requirement_document(r: dict) -> str:
    """The document a twin requirement is tagged in: its "document" key, PROTOCOL.md if absent."""
    doc = r.get("document", "PROTOCOL.md")
    return doc if isinstance(doc, str) else ""


def check_sync(spec: dict, parsed: ParsedText, document: str = "PROTOCOL.md") -> list[Problem]:
    """Each ID tagged in `document` is in the twin (with that document) and vice versa, with the
    same level, the twin's section equal to the numbered heading the tag sits under, and the
    twin's text equal to the tagged statement (both normalised by normalize_text)."""
    problems: list[Problem] = []
    text_by_id: dict[str, Tag] = {}
    for t in parsed.tags:
        text_by_id.setdefault(t.id, t)
    twin_by_id: dict[str, dict] = {}
    reqs = spec.get("requirements")
    for r in reqs if isinstance(reqs, list) else []:
        if isinstance(r, dict) and isinstance(r.get("id"), str):
            twin_by_id.setdefault(r["id"], r)
    for rid, t in text_by_id.items():
        r = twin_by_id.get(rid)
        if r is None:
            problems.append(Problem("req-text-only", rid, f"tagged in {document} (line {t.line}, "
                                    f"section {t.section or '-'}) but not in the twin"))
            continue
        if requirement_document(r) != document:
            problems.append(Problem("req-document", rid, f"tagged in {document} (line {t.line}) "
                                    f"but the twin says document {requirement_document(r)!r}"))
            continue
        if r.get("level") != t.level:
            problems.append(Problem("req-level", rid, f"level {t.level} in the text, "
                                    f"{r.get('level')} in the twin"))
        if r.get("section") != t.section:
            problems.append(Problem("req-section", rid, f"sits under section {t.section or '-'} "
                                    f"in the text (line {t.line}) but the twin says "
                                    f"{r.get('section')!r}"))
        twin_text = r.get("text")
        legacy_cut = normalize_text(t.text[:LEGACY_TEXT_LEN].rstrip())
        if (isinstance(twin_text, str) and normalize_text(twin_text) != normalize_text(t.text)
                and not (spec.get("schema") == LEGACY_SCHEMA and
                         normalize_text(twin_text) == legacy_cut)):
            a, b = normalize_text(t.text), normalize_text(twin_text)
            i = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b)))
            problems.append(Problem("req-text", rid, f"statement differs from {document} line "
                                    f"{t.line} at character {i}: text ...{a[max(0, i - 20):i + 40]!r}"
                                    f", twin ...{b[max(0, i - 20):i + 40]!r}"))
    for rid, r in twin_by_id.items():
        if rid not in text_by_id and requirement_document(r) == document:
            problems.append(Problem("req-twin-only", rid, f"in the twin but tagged nowhere in "
                                    f"{document}"))
    return problems


def check_documents(spec: dict) -> list[Problem]:
    """Every twin requirement names a known document (DOCUMENTS) when it names one."""
    problems: list[Problem] = []
    for r in spec.get("requirements") or []:
        if isinstance(r, dict) and requirement_document(r) not in DOCUMENTS:
            problems.append(Problem("req-document", str(r.get("id")), f"document "
                                    f"{r.get('document')!r} is not one of {', '.join(DOCUMENTS)}"))
    return problems


def sm_row_exists(spec: dict, ref: str) -> bool:
    """True when `ref` ("sm:<machine>/<FROM>/<EVENT>") names a row of the twin's state tables."""
    m = SM_ROW_RE.match(ref)
    machine = (spec.get("state_machines") or {}).get(m.group(1)) if m else None
    if not isinstance(machine, dict):
        return False
    return any(isinstance(t, dict) and t.get("from") == m.group(2) and t.get("event") == m.group(3)
               for t in machine.get("transitions") or [])


def check_release(spec: dict) -> list[Problem]:
    """The optional release keys the spec-change gate reads: "release" is "MAJOR.MINOR";
    "clarifications" is a list of {"id", "reason"} where id is a requirement ID of the twin or a
    state-table row "sm:<machine>/<FROM>/<EVENT>", reason a non-empty string, no id twice."""
    problems: list[Problem] = []
    if "release" in spec:
        rel = spec["release"]
        if not isinstance(rel, str) or not RELEASE_RE.match(rel):
            problems.append(Problem("release-shape", "release", f"{rel!r} is not a string "
                                    "\"MAJOR.MINOR\""))
    if "clarifications" not in spec:
        return problems
    cl = spec["clarifications"]
    if not isinstance(cl, list):
        return problems + [Problem("release-shape", "clarifications", "must be a JSON array")]
    ids = {r.get("id") for r in spec.get("requirements") or [] if isinstance(r, dict)}
    seen: set[str] = set()
    for i, c in enumerate(cl):
        where = f"clarifications[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("id"), str):
            problems.append(Problem("release-shape", where, "must be an object with a string "
                                    "'id'"))
            continue
        cid = c["id"]
        where = f"clarifications {cid}"
        extra = sorted(set(c) - {"id", "reason"})
        if extra:
            problems.append(Problem("release-shape", where, f"unknown keys {extra}"))
        if not isinstance(c.get("reason"), str) or not c["reason"].strip():
            problems.append(Problem("release-reason", where, "needs a non-empty 'reason'"))
        if cid.startswith("sm:"):
            if not sm_row_exists(spec, cid):
                problems.append(Problem("release-unknown", where, "names no state-table row "
                                        "(want sm:<machine>/<FROM>/<EVENT> of the twin)"))
        elif cid not in ids:
            problems.append(Problem("release-unknown", where, "names no requirement of the twin"))
        if cid in seen:
            problems.append(Problem("release-shape", where, "listed twice"))
        seen.add(cid)
    return problems


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

SPEC_CHECKS = (check_shape, check_struct_layouts, check_atomics, check_value_refs, check_enums,
               check_design_facts, check_messages, check_errors, check_state_machines,
               check_requirements, check_documents, check_release)


def check_all(spec: dict | None, markdown: str | None,
              text_where: str = "PROTOCOL.md", adapter_markdown: str | None = None,
              adapter_where: str = "ADAPTER.md") -> list[Problem]:
    """Runs every check; spec None or markdown None skip the checks that need them. The
    requirements of ADAPTER.md are synced only when adapter_markdown is given."""
    problems: list[Problem] = []
    if spec is not None:
        shape = check_shape(spec)
        problems.extend(shape)
        for check in SPEC_CHECKS[1:]:
            try:
                problems.extend(check(spec))
            except (AttributeError, KeyError, TypeError, ValueError) as e:
                if not shape:
                    raise
                problems.append(Problem("spec-shape", check.__name__, f"skipped: the twin's "
                                        f"shape is broken ({type(e).__name__}: {e})"))
    if markdown is not None:
        parsed = parse_text(markdown, text_where)
        problems.extend(check_text(parsed, text_where))
        if spec is not None:
            problems.extend(check_sync(spec, parsed, "PROTOCOL.md"))
    if adapter_markdown is not None:
        parsed = parse_text(adapter_markdown, adapter_where)
        problems.extend(check_text(parsed, adapter_where))
        if spec is not None:
            problems.extend(check_sync(spec, parsed, "ADAPTER.md"))
    return problems


def summary(spec: dict | None) -> dict:
    spec = spec or {}
    reqs = [r for r in spec.get("requirements") or [] if isinstance(r, dict)]
    return {
        "structs": len(_structs(spec)),
        "messages": len(spec.get("messages") or []),
        "errors": len(spec.get("errors") or []),
        "requirements": len(reqs),
        "levels": {lvl: sum(1 for r in reqs if r.get("level") == lvl) for lvl in LEVELS},
    }


def summary_line(spec: dict | None, problems: list[Problem]) -> str:
    s = summary(spec)
    lv = s["levels"]
    verdict = "OK" if not problems else f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return (f"spec check: {s['structs']} structs, {s['messages']} messages, {s['errors']} errors, "
            f"{s['requirements']} requirements ({lv['MUST']} MUST, {lv['SHOULD']} SHOULD, "
            f"{lv['MAY']} MAY): {verdict}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Validate spec/cuframes.json and its agreement with "
                                 "spec/PROTOCOL.md.")
    ap.add_argument("--spec", type=Path, default=DEFAULT_SPEC, help="the twin (default: %(default)s)")
    ap.add_argument("--text", type=Path, default=DEFAULT_TEXT,
                    help="the normative text (default: %(default)s)")
    ap.add_argument("--adapter", type=Path, default=DEFAULT_ADAPTER,
                    help="the adapter contract, whose tagged IDs the twin also carries "
                    "(default: %(default)s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    args = ap.parse_args(argv)

    spec, problems = load_spec(args.spec)
    markdown, text_problems = load_text(args.text)
    problems += text_problems
    adapter, adapter_problems = load_text(args.adapter)
    problems += adapter_problems
    problems += check_all(spec, markdown, args.text.name, adapter, args.adapter.name)

    if args.json:
        print(json.dumps({"ok": not problems, "summary": summary(spec),
                          "problems": [asdict(p) for p in problems]}, indent=2))
    else:
        for p in problems:
            print(f"error: {p}")
        print(summary_line(spec, problems))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
