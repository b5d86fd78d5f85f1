#!/usr/bin/env python3
"""spec_diff.py: the semantic diff of two machine-readable twins (spec/cuframes.json), for the
spec-change gate (spec_gate.py).

diff_twins(old, new) compares an earlier twin with a later one and returns one Change per
difference, each named by a rule of RULES and classified BREAKING, COMPATIBLE or EDITORIAL. The
diff knows the wire: it compares structs byte by byte (a field that keeps its name but not its
bytes has moved; two same-size fields that exchange offsets are swapped; reserved bytes that
gain a field are "given meaning", compatibly only under a newly negotiated proto_version), and
it compares message types, error codes and enum values by number as well as by name, so a
number that changes owner is a reuse, not a rename.

Every BREAKING change also says which version bump excuses it (Change.excused_by):
  - a shared-memory struct (region "shm") only a SEGMENT_LAYOUT_VERSION bump, a packet-ring
    struct (region "ring") only a RING_LAYOUT_VERSION bump: subscribers of every proto_version
    read the same segment, so a proto_version bump does not re-version bytes in shared memory
    (VER-RSV-03);
  - socket structs, messages, error codes, state rows and requirements a proto_version bump;
  - constants, enums and the byte order any bump.
A requirement-level or state-row change may instead be acknowledged as a clarification (the
twin's top-level "clarifications"); byte-layout, numbering and enum rules never can.

Requirement text (the twin's, or the full sentence from PROTOCOL.md when the caller passes it)
is compared word by word; a change is "in meaning" when a changed word is a normative keyword, a
negation, quantifier, condition or ordering word, a number, an identifier (ALL_CAPS,
snake_case, a name the twin defines, a requirement ID), a comparison symbol, or a role / memory
ordering word (see meaning_tokens); any other change is wording only (EDITORIAL: a human
confirms it).

Python 3.11+ standard library only.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field as dc_field

BREAKING, COMPATIBLE, EDITORIAL = "BREAKING", "COMPATIBLE", "EDITORIAL"

# Which bump excuses a breaking change.
PROTO, SEG, RING = "proto_version", "segment layout_version", "ring layout_version"
ANY_BUMP = frozenset({PROTO, SEG, RING})
BUMP_FOR_REGION = {"shm": frozenset({SEG}), "ring": frozenset({RING}),
                   "socket": frozenset({PROTO})}
LAYOUT_CONSTANTS = {"SEGMENT_LAYOUT_VERSION": SEG, "RING_LAYOUT_VERSION": RING}

# Enums whose new values an old reader already tolerates, and the requirement (in the old twin)
# that makes it so. A new value of any other enum is compatible only under a new proto_version.
TOLERANT_ENUMS = {
    "memory_kind": ("KIND-01", "a publisher uses only a kind the subscriber announced in "
                               "kinds_mask"),
    "frame_flags": ("SHM-FMETA-03", "a subscriber ignores unknown FrameMeta flag bits"),
}

# rule -> (class, what it means). The class is the rule's own; the gate then decides whether a
# BREAKING change is excused by a bump or acknowledged as a clarification.
RULES: dict[str, tuple[str, str]] = {
    # versions
    "PROTO_VERSION_BUMPED": (COMPATIBLE, "the highest proto_version grew: a proto_version bump"),
    "LAYOUT_VERSION_BUMPED": (COMPATIBLE, "SEGMENT_LAYOUT_VERSION or RING_LAYOUT_VERSION grew: a "
                                          "layout_version bump"),
    "PROTO_VERSION_DROPPED": (BREAKING, "a proto_version left proto_versions: its peers lose "
                                        "service"),
    "BYTE_ORDER_CHANGED": (BREAKING, "byte_order changed: every multi-byte field is misread"),
    "META_CHANGED": (EDITORIAL, "schema or document name changed (tooling, not the wire)"),
    "UNMODELLED_CHANGED": (EDITORIAL, "a top-level key the gate does not model changed: review "
                                      "it by hand"),
    # structs and fields
    "STRUCT_REMOVED": (BREAKING, "a struct disappeared"),
    "STRUCT_ADDED": (COMPATIBLE, "a new struct (how it is reached is judged by the message, "
                                 "field and constant rules)"),
    "STRUCT_RENAMED": (COMPATIBLE, "a struct has a new name and identical bytes (wire-identical; "
                                   "generated code changes)"),
    "STRUCT_SIZE_CHANGED": (BREAKING, "a struct's size changed: every later offset and stride "
                                      "moves"),
    "STRUCT_ALIGN_CHANGED": (BREAKING, "a struct's alignment changed"),
    "STRUCT_REGION_CHANGED": (BREAKING, "a struct moved between shared memory, ring and socket"),
    "STRUCT_SINCE_CHANGED": (BREAKING, "the proto_version that introduced a struct changed"),
    "STRUCT_TEXT_CHANGED": (EDITORIAL, "a struct's description or section changed"),
    "FIELD_MOVED": (BREAKING, "a field kept its name but not its offset"),
    "FIELD_SWAPPED": (BREAKING, "two fields of the same size exchanged offsets (each byte now "
                                "means the other field)"),
    "FIELD_RESIZED": (BREAKING, "a field's size changed"),
    "FIELD_RETYPED": (BREAKING, "a field's type changed (signedness, integer vs bytes, nested "
                                "struct)"),
    "FIELD_REMOVED": (BREAKING, "a field disappeared or was retired into reserved bytes"),
    "FIELD_ADDED": (BREAKING, "a new field on bytes that were not reserved (beyond the old size "
                              "or taken from another field)"),
    "FIELD_RENAMED": (COMPATIBLE, "a field has a new name and the same offset, size and type "
                                  "(wire-identical; generated code changes)"),
    "FIELD_SINCE_CHANGED": (BREAKING, "the proto_version that gives a field its meaning changed: "
                                      "peers of one version now write zero where the other reads "
                                      "a value"),
    "FIELD_ATOMIC_CHANGED": (BREAKING, "a field became atomic or stopped being atomic"),
    "FIELD_WRITER_CHANGED": (BREAKING, "a field's writer changed (publisher / subscriber / "
                                       "sender)"),
    "FIELD_VALUES_CHANGED": (BREAKING, "a field's allowed values changed: a writer may now send "
                                       "what an old reader refuses, or the reverse"),
    "FIELD_VALUES_FOLLOW_BUMP": (COMPATIBLE, "a version field's allowed values grew to the "
                                             "bumped version (part of the bump)"),
    "FIELD_TEXT_CHANGED": (EDITORIAL, "a field's free-text attributes changed"),
    "RESERVED_GIVEN_MEANING": (BREAKING, "reserved bytes became a field without a newly "
                                         "negotiated proto_version: an old reader misreads them "
                                         "when nonzero, an old writer leaves them zero"),
    "RESERVED_GIVEN_MEANING_NEGOTIATED": (COMPATIBLE, "reserved bytes became a field whose "
                                                      "'since' is a proto_version the old twin "
                                                      "did not have (how v2 extended HELLO)"),
    "LAYOUT_BYTES_CHANGED": (BREAKING, "bytes of a struct changed owner in a way no other rule "
                                       "names (safety net over the byte map)"),
    # constants
    "CONSTANT_CHANGED": (BREAKING, "a constant's value changed"),
    "CONSTANT_REMOVED": (BREAKING, "a constant disappeared"),
    "CONSTANT_ADDED": (COMPATIBLE, "a new constant"),
    "CONSTANT_TEXT_CHANGED": (EDITORIAL, "a constant's hex or text note changed, not its value"),
    # enums
    "ENUM_REMOVED": (BREAKING, "an enum disappeared"),
    "ENUM_ADDED": (COMPATIBLE, "a new enum"),
    "ENUM_VALUE_RENUMBERED": (BREAKING, "an enum name kept, its number changed"),
    "ENUM_VALUE_REMOVED": (BREAKING, "an enum value disappeared"),
    "ENUM_VALUE_REUSED": (BREAKING, "an enum number now carries another name (a new meaning for "
                                    "an old number; a pure rename looks the same: keep the old "
                                    "name or bump)"),
    "ENUM_VALUE_ADDED": (COMPATIBLE, "a new enum value in an enum whose old readers tolerate "
                                     "unknown values, or one only socket messages carry, under "
                                     "a new proto_version"),
    "ENUM_VALUE_ADDED_UNNEGOTIATED": (BREAKING, "a new enum value an old reader may receive and "
                                                "refuse (any enum a shared-memory field uses "
                                                "reaches readers of every proto_version)"),
    # messages
    "MESSAGE_TYPE_RENUMBERED": (BREAKING, "a message kept its name, its TLV type changed"),
    "MESSAGE_TYPE_REUSED": (BREAKING, "a TLV type now names another message"),
    "MESSAGE_REMOVED": (BREAKING, "a message disappeared"),
    "MESSAGE_RENAMED": (COMPATIBLE, "a message has a new name, the same type, payload and "
                                    "lengths"),
    "MESSAGE_ADDED_NEGOTIATED": (COMPATIBLE, "a new message whose 'since' is a newly negotiated "
                                             "proto_version"),
    "MESSAGE_ADDED_UNNEGOTIATED": (BREAKING, "a new message an old peer may receive: it answers "
                                             "ERROR(UNKNOWN_MESSAGE) and closes (TLV-ERR-02)"),
    "MESSAGE_PAYLOAD_CHANGED": (BREAKING, "a message's payload struct changed"),
    "MESSAGE_LENGTH_CHANGED": (BREAKING, "a message's allowed length range changed (TLV-ERR-03)"),
    "MESSAGE_DIRECTION_CHANGED": (BREAKING, "a message's direction changed"),
    "MESSAGE_SINCE_CHANGED": (BREAKING, "the proto_version that introduced a message changed"),
    # errors
    "ERROR_CODE_RENUMBERED": (BREAKING, "an error name kept, its code changed"),
    "ERROR_CODE_REUSED": (BREAKING, "an error code now names another error"),
    "ERROR_CODE_REMOVED": (BREAKING, "an error code disappeared"),
    "ERROR_CODE_ADDED": (COMPATIBLE, "a new error code: an old receiver treats it as PROTOCOL "
                                     "(ERR-02)"),
    "ERROR_TEXT_CHANGED": (EDITORIAL, "an error's description changed"),
    # state machines
    "STATE_ROW_CHANGED": (BREAKING, "a transition row's target, error, or action in meaning "
                                    "changed"),
    "STATE_ROW_REWORDED": (EDITORIAL, "a transition row's action changed in wording only"),
    "STATE_ROW_REMOVED": (BREAKING, "a transition row disappeared"),
    "STATE_ROW_ADDED": (COMPATIBLE, "a transition row for a new state or event"),
    # requirements
    "REQUIREMENT_REMOVED": (BREAKING, "a requirement ID disappeared: a guarantee peers relied on "
                                      "is gone"),
    "REQUIREMENT_RAISED": (BREAKING, "a requirement's level rose (MAY -> SHOULD -> MUST)"),
    "REQUIREMENT_LOWERED": (BREAKING, "a MUST became SHOULD or MAY: a guarantee peers relied on "
                                      "is gone"),
    "REQUIREMENT_LOWERED_OPTIONAL": (COMPATIBLE, "a SHOULD became MAY"),
    "REQUIREMENT_TEXT_CHANGED": (BREAKING, "a requirement's text changed in meaning (see the "
                                           "meaning test)"),
    "REQUIREMENT_REWORDED": (EDITORIAL, "a requirement's text changed in wording only (a human "
                                        "confirms)"),
    "REQUIREMENT_ADDED_MUST": (BREAKING, "a new MUST: existing peers were not built to it"),
    "REQUIREMENT_ADDED_SHOULD_MAY": (COMPATIBLE, "a new SHOULD or MAY"),
    "REQUIREMENT_MOVED": (EDITORIAL, "a requirement moved to another section"),
}

# Rules a clarification may acknowledge (requirement-level and state-row); never layout,
# numbering or enum rules, which only a version bump excuses.
CLARIFIABLE = {r for r in RULES if r.startswith("REQUIREMENT_") or r.startswith("STATE_ROW_")}


@dataclass
class Change:
    """One difference between the twins. `where` names the thing ("FrameMeta.width",
    "requirement SHM-HDR-01", "subscriber HELLO_SENT/PING"); `loc` says how to find its line in
    the new twin (see spec_gate.TwinLocator); `clar_id` is the ID a clarification names."""
    rule: str
    where: str
    message: str
    excused_by: frozenset = frozenset()
    loc: tuple = ()
    struct: str | None = None
    field: str | None = None
    old_offset: int | None = None
    new_offset: int | None = None
    old_size: int | None = None
    new_size: int | None = None
    clar_id: str | None = None
    word_diff: str | None = None
    meaning_tokens: list = dc_field(default_factory=list)
    # Set by the gate: BREAKING, BREAKING_WITH_BUMP, CLARIFICATION, COMPATIBLE, EDITORIAL.
    outcome: str = ""
    note: str = ""

    @property
    def cls(self) -> str:
        return RULES[self.rule][0]

    def as_dict(self) -> dict:
        d = {"rule": self.rule, "class": self.cls, "outcome": self.outcome or self.cls,
             "where": self.where, "message": self.message,
             "excused_by": sorted(self.excused_by)}
        for k in ("struct", "field", "old_offset", "new_offset", "old_size", "new_size",
                  "clar_id", "word_diff", "note"):
            v = getattr(self, k)
            if v not in (None, ""):
                d[k] = v
        if self.meaning_tokens:
            d["meaning_tokens"] = self.meaning_tokens
        return d


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


def _list(v) -> list:
    return v if isinstance(v, list) else []


def versions(spec: dict) -> list[int]:
    return sorted(v for v in _list(spec.get("proto_versions")) if _is_int(v))


def constant_value(spec: dict, name: str):
    c = _dict(spec.get("constants")).get(name)
    return c.get("value") if isinstance(c, dict) else None


# ---------------------------------------------------------------------------------------------
# Words: the meaning test for requirement text and state-row actions
# ---------------------------------------------------------------------------------------------

TOKEN_RE = re.compile(r"0[xX][0-9A-Fa-f]+|\w+(?:[-.]\w+)*|[^\w\s]")
NORMATIVE_WORDS = {
    "must", "should", "may", "shall", "required", "optional", "recommended",
    "not", "no", "never", "none", "nothing", "neither", "nor", "without", "cannot",
    "only", "always", "unless", "except", "all", "every", "each", "any", "some", "either",
    "both", "once", "twice", "exactly", "least", "most", "more", "less", "fewer", "greater",
    "smaller", "above", "below", "before", "after", "until", "within", "first", "last", "same",
    "different", "other", "and", "or", "if", "when", "otherwise", "then", "instead",
    "publisher", "publishers", "subscriber", "subscribers", "reader", "readers", "writer",
    "writers", "sender", "receiver", "peer", "peers",
    "acquire", "release", "relaxed", "atomic", "atomically", "zero", "nonzero", "odd", "even",
    "increments", "decrements", "reject", "rejects", "refuse", "refuses", "accept", "accepts",
    "ignore", "ignores", "close", "closes", "evict", "evicts", "wait", "waits",
}
SYMBOLS = set("<>=≠≤≥±+−-×*/%^|&~")
IDENT_RE = re.compile(r"^(?=.*[_\d])\w+$|^[A-Z][A-Z0-9]+(?:[-_][A-Z0-9]+)*$|^0[xX][0-9A-Fa-f]+$")


def tokens(text: str) -> list[str]:
    return TOKEN_RE.findall(text or "")


def twin_names(spec: dict) -> set[str]:
    """Every name the twin defines: structs, fields, constants, enums and their values,
    messages, errors, states and events, requirement IDs."""
    names: set[str] = set()
    for sname, st in _dict(spec.get("structs")).items():
        names.add(sname)
        for f in _list(_dict(st).get("fields")):
            if isinstance(f, dict) and isinstance(f.get("name"), str):
                names.add(f["name"])
    names.update(_dict(spec.get("constants")))
    for ename, vals in _dict(spec.get("enums")).items():
        names.add(ename)
        names.update(_dict(vals))
    for key in ("messages", "errors"):
        for m in _list(spec.get(key)):
            if isinstance(m, dict) and isinstance(m.get("name"), str):
                names.add(m["name"])
    for sm in _dict(spec.get("state_machines")).values():
        for k in ("states", "events"):
            names.update(x for x in _list(_dict(sm).get(k)) if isinstance(x, str))
    for r in _list(spec.get("requirements")):
        if isinstance(r, dict) and isinstance(r.get("id"), str):
            names.add(r["id"])
    return names


def meaning_tokens(changed: list[str], names: set[str]) -> list[str]:
    """The changed tokens that carry meaning (see the module docstring), in order, unique."""
    out: list[str] = []
    for t in changed:
        low = t.lower()
        hit = (low in NORMATIVE_WORDS or t in SYMBOLS or any(c.isdigit() for c in t)
               or bool(IDENT_RE.match(t)) or t in names)
        if hit and t not in out:
            out.append(t)
    return out


def word_diff(old: str, new: str) -> tuple[str, list[str]]:
    """Returns (git-style word diff "[-old-]{+new+}", the changed tokens of both sides)."""
    a, b = tokens(old), tokens(new)
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    parts: list[str] = []
    changed: list[str] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            parts.append(" ".join(a[i1:i2]))
            continue
        if i2 > i1:
            parts.append("[-" + " ".join(a[i1:i2]) + "-]")
            changed.extend(a[i1:i2])
        if j2 > j1:
            parts.append("{+" + " ".join(b[j1:j2]) + "+}")
            changed.extend(b[j1:j2])
    return " ".join(p for p in parts if p), changed


def text_change(old: str, new: str, names: set[str]) -> tuple[bool, str, list[str]]:
    """Returns (changed in meaning, word diff, meaning tokens). Case, spacing and punctuation
    alone never change meaning."""
    diff, changed = word_diff(old, new)
    toks = meaning_tokens(changed, names)
    return bool(toks), diff, toks


# ---------------------------------------------------------------------------------------------
# The diff
# ---------------------------------------------------------------------------------------------

class _Ctx:
    def __init__(self, old: dict, new: dict):
        self.old, self.new = old, new
        self.old_versions, self.new_versions = versions(old), versions(new)
        self.proto_grew = bool(self.new_versions) and (
            not self.old_versions or max(self.new_versions) > max(self.old_versions))
        self.names = twin_names(old) | twin_names(new)
        self.old_req_ids = {r.get("id") for r in _list(old.get("requirements"))
                            if isinstance(r, dict)}
        self.changes: list[Change] = []

    def negotiated(self, since) -> bool:
        """A `since` that names a proto_version the old twin did not have, when proto_versions
        grew: old peers never negotiate it, so they never see what it introduces."""
        return (self.proto_grew and _is_int(since) and since not in self.old_versions
                and since in self.new_versions)

    def add(self, rule: str, where: str, message: str, excused_by=frozenset(), **kw) -> Change:
        assert rule in RULES, rule
        c = Change(rule, where, message, frozenset(excused_by), **kw)
        self.changes.append(c)
        return c


def _span(off, size) -> str:
    if _is_int(off) and _is_int(size):
        return f"bytes {off}..{off + size - 1}"
    return "bytes ?"


def _fields(st: dict) -> list[dict]:
    return [f for f in _list(_dict(st).get("fields"))
            if isinstance(f, dict) and isinstance(f.get("name"), str)]


def _byte_owners(st: dict, size: int) -> list:
    """owner[i] = (name, type, offset within the field, field size) for each byte; None where
    no field covers the byte; reserved bytes are ("", "reserved", 0, 0) whatever their name."""
    owners: list = [None] * max(size, 0)
    for f in _fields(st):
        off, fsize = f.get("offset"), f.get("size")
        if not (_is_int(off) and _is_int(fsize)) or fsize <= 0:
            continue
        for i in range(max(off, 0), min(off + fsize, len(owners))):
            owners[i] = (("", "reserved", 0, 0) if f.get("type") == "reserved"
                         else (f["name"], f.get("type"), i - off, fsize))
    return owners


def _ranges(idx: list[int]) -> str:
    out, start, prev = [], None, None
    for i in idx:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(f"{start}..{prev}")
            start = prev = i
    if start is not None:
        out.append(f"{start}..{prev}")
    return ", ".join(out)


def _version_field_follows_bump(ctx: _Ctx, fname: str, nvals) -> bool:
    """True when a version field's new allowed values end at the bumped version."""
    if fname in ("proto_version", "min_proto", "max_proto") and ctx.proto_grew:
        top = max(ctx.new_versions)
        return (isinstance(nvals, dict) and nvals.get("max") == top) or (
            isinstance(nvals, list) and top in nvals)
    if fname == "layout_version":
        for cname in LAYOUT_CONSTANTS:
            ov, nv = constant_value(ctx.old, cname), constant_value(ctx.new, cname)
            if _is_int(ov) and _is_int(nv) and nv > ov and isinstance(nvals, list) \
                    and (nv in nvals or cname in nvals):
                return True
    return False


def diff_struct(ctx: _Ctx, sname: str, o: dict, n: dict) -> None:
    region = n.get("region") or o.get("region")
    bump = BUMP_FOR_REGION.get(region, ANY_BUMP)
    loc = ("struct", sname)
    kw = dict(excused_by=bump, loc=loc, struct=sname)
    osize, nsize = o.get("size"), n.get("size")
    if osize != nsize:
        ctx.add("STRUCT_SIZE_CHANGED", sname, f"{sname} size {osize} -> {nsize} bytes",
                old_size=osize, new_size=nsize, **kw)
    for key, rule in (("align", "STRUCT_ALIGN_CHANGED"), ("region", "STRUCT_REGION_CHANGED"),
                      ("since", "STRUCT_SINCE_CHANGED")):
        if o.get(key) != n.get(key):
            ctx.add(rule, sname, f"{sname} {key} {o.get(key)!r} -> {n.get(key)!r}", **kw)
    for key in ("text", "section", "variable_tail"):
        if o.get(key) != n.get(key):
            ctx.add("STRUCT_TEXT_CHANGED", sname,
                    f"{sname} {key} {o.get(key)!r} -> {n.get(key)!r}", loc=loc, struct=sname)

    of = {f["name"]: f for f in _fields(o) if f.get("type") != "reserved"}
    nf = {f["name"]: f for f in _fields(n) if f.get("type") != "reserved"}
    renamed: dict[str, str] = {}   # old name -> new name
    for oname, ofld in of.items():
        if oname in nf:
            continue
        for nname, nfld in nf.items():
            if nname in of or nname in renamed.values():
                continue
            if all(ofld.get(k) == nfld.get(k) for k in ("offset", "size", "type")):
                renamed[oname] = nname
                ctx.add("FIELD_RENAMED", f"{sname}.{nname}",
                        f"{sname}.{oname} renamed {nname} (offset {ofld.get('offset')}, "
                        f"{ofld.get('size')} bytes, {ofld.get('type')})",
                        loc=("field", sname, nname), struct=sname, field=nname,
                        old_offset=ofld.get("offset"), new_offset=nfld.get("offset"))
                break
    explained: set[str] = set()   # field names (old or new) with a breaking change

    moved = {}
    for name in of:
        nname = renamed.get(name, name)
        if nname not in nf:
            continue
        a, b = of[name], nf[nname]
        if a.get("offset") != b.get("offset"):
            moved[name] = (a, b)
    swapped: set[str] = set()
    names = sorted(moved)
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            ax, bx = moved[x]
            ay, by = moved[y]
            if x in swapped or y in swapped:
                continue
            if (bx.get("offset") == ay.get("offset") and by.get("offset") == ax.get("offset")
                    and ax.get("size") == ay.get("size")):
                swapped |= {x, y}
                explained |= {x, y}
                ctx.add("FIELD_SWAPPED", f"{sname}.{x}<->{y}",
                        f"{sname}.{x} and {sname}.{y} ({ax.get('size')} bytes each) exchanged "
                        f"offsets: {x} {ax.get('offset')} -> {bx.get('offset')}, {y} "
                        f"{ay.get('offset')} -> {by.get('offset')}",
                        excused_by=bump, loc=("field", sname, x), struct=sname, field=x,
                        old_offset=ax.get("offset"), new_offset=bx.get("offset"),
                        old_size=ax.get("size"), new_size=bx.get("size"))
    for name, a in of.items():
        nname = renamed.get(name, name)
        b = nf.get(nname)
        fkw = dict(excused_by=bump, loc=("field", sname, nname), struct=sname, field=nname,
                   old_offset=a.get("offset"), old_size=a.get("size"))
        where = f"{sname}.{nname}"
        if b is None:
            explained.add(name)
            ctx.add("FIELD_REMOVED", where,
                    f"{where} removed (was at offset {a.get('offset')}, {a.get('size')} bytes, "
                    f"{_span(a.get('offset'), a.get('size'))})",
                    **{**fkw, "loc": loc})
            continue
        fkw.update(new_offset=b.get("offset"), new_size=b.get("size"))
        if name in moved and name not in swapped:
            explained |= {name, nname}
            ctx.add("FIELD_MOVED", where,
                    f"{where} moved from offset {a.get('offset')} to {b.get('offset')} "
                    f"({_span(a.get('offset'), a.get('size'))} -> "
                    f"{_span(b.get('offset'), b.get('size'))})", **fkw)
        if a.get("size") != b.get("size"):
            explained |= {name, nname}
            ctx.add("FIELD_RESIZED", where,
                    f"{where} resized from {a.get('size')} to {b.get('size')} bytes at offset "
                    f"{a.get('offset')} -> {b.get('offset')}", **fkw)
        if a.get("type") != b.get("type"):
            explained |= {name, nname}
            ctx.add("FIELD_RETYPED", where,
                    f"{where} type {a.get('type')} -> {b.get('type')} at offset "
                    f"{b.get('offset')}", **fkw)
        if a.get("since") != b.get("since"):
            explained |= {name, nname}
            ctx.add("FIELD_SINCE_CHANGED", where,
                    f"{where} since {a.get('since')} -> {b.get('since')}", **fkw)
        if bool(a.get("atomic")) != bool(b.get("atomic")):
            explained |= {name, nname}
            ctx.add("FIELD_ATOMIC_CHANGED", where,
                    f"{where} atomic {bool(a.get('atomic'))} -> {bool(b.get('atomic'))}", **fkw)
        if a.get("writer") != b.get("writer"):
            explained |= {name, nname}
            ctx.add("FIELD_WRITER_CHANGED", where,
                    f"{where} writer {a.get('writer')} -> {b.get('writer')}", **fkw)
        if a.get("values") != b.get("values"):
            if _version_field_follows_bump(ctx, nname, b.get("values")):
                ctx.add("FIELD_VALUES_FOLLOW_BUMP", where,
                        f"{where} values {a.get('values')!r} -> {b.get('values')!r}",
                        **{**fkw, "excused_by": frozenset()})
            else:
                explained |= {name, nname}
                ctx.add("FIELD_VALUES_CHANGED", where,
                        f"{where} values {a.get('values')!r} -> {b.get('values')!r}", **fkw)
        other = sorted(k for k in set(a) | set(b) if k not in
                       ("name", "offset", "size", "type", "since", "atomic", "writer", "values")
                       and a.get(k) != b.get(k))
        if other:
            ctx.add("FIELD_TEXT_CHANGED", where, f"{where} {', '.join(other)} changed",
                    loc=("field", sname, nname), struct=sname, field=nname)

    o_size = osize if _is_int(osize) else 0
    n_size = nsize if _is_int(nsize) else 0
    old_owner = _byte_owners(o, o_size)
    for nname, b in nf.items():
        if nname in of or nname in renamed.values():
            continue
        off, size = b.get("offset"), b.get("size")
        span = range(off, off + size) if _is_int(off) and _is_int(size) else range(0)
        was_reserved = bool(span) and all(
            i < o_size and old_owner[i] is not None and old_owner[i][1] == "reserved"
            for i in span)
        fkw = dict(loc=("field", sname, nname), struct=sname, field=nname, new_offset=off,
                   new_size=size)
        where = f"{sname}.{nname}"
        if was_reserved and ctx.negotiated(b.get("since")):
            ctx.add("RESERVED_GIVEN_MEANING_NEGOTIATED", where,
                    f"{where} ({size} bytes, {b.get('type')}) takes reserved {_span(off, size)} "
                    f"under proto_version {b.get('since')}, which the old twin did not have",
                    old_offset=off, **fkw)
        elif was_reserved:
            explained.add(nname)
            why = (f"its since {b.get('since')} is not a newly negotiated proto_version "
                   f"(old proto_versions {ctx.old_versions}, new {ctx.new_versions})")
            ctx.add("RESERVED_GIVEN_MEANING", where,
                    f"{where} ({size} bytes, {b.get('type')}) takes reserved {_span(off, size)}; "
                    f"{why}", excused_by=bump, old_offset=off, **fkw)
        else:
            explained.add(nname)
            ctx.add("FIELD_ADDED", where,
                    f"{where} added at offset {off} ({_span(off, size)}), bytes that were not "
                    f"reserved in the old {sname} ({o_size} bytes)", excused_by=bump, **fkw)

    # Safety net: every byte whose old owner was a field must keep that owner, or be explained.
    new_owner = _byte_owners(n, n_size)
    unexplained = []
    for i, ow in enumerate(old_owner):
        if ow is None or ow[1] == "reserved":
            continue
        nw = new_owner[i] if i < n_size else None
        same = nw is not None and (renamed.get(ow[0], ow[0]), ow[1], ow[2], ow[3]) == nw
        if same:
            continue
        if ow[0] in explained or (nw is not None and nw[0] in explained):
            continue
        unexplained.append(i)
    if unexplained:
        ctx.add("LAYOUT_BYTES_CHANGED", sname,
                f"{sname} bytes {_ranges(unexplained)} changed owner", excused_by=bump, loc=loc,
                struct=sname, old_offset=unexplained[0], old_size=len(unexplained))


def diff_structs(ctx: _Ctx) -> None:
    os_, ns = _dict(ctx.old.get("structs")), _dict(ctx.new.get("structs"))
    renamed = {}
    for oname, o in os_.items():
        if oname in ns:
            continue
        for nname, n in ns.items():
            if nname in os_ or nname in renamed.values():
                continue
            if (_dict(o).get("size") == _dict(n).get("size")
                    and _dict(o).get("region") == _dict(n).get("region")
                    and [(f.get("offset"), f.get("size"), f.get("type")) for f in _fields(o)]
                    == [(f.get("offset"), f.get("size"), f.get("type")) for f in _fields(n)]):
                renamed[oname] = nname
                ctx.add("STRUCT_RENAMED", nname, f"struct {oname} renamed {nname}",
                        loc=("struct", nname), struct=nname)
                break
    for sname, o in os_.items():
        nname = renamed.get(sname, sname)
        if nname not in ns:
            region = _dict(o).get("region")
            ctx.add("STRUCT_REMOVED", sname, f"struct {sname} ({_dict(o).get('size')} bytes, "
                    f"region {region}) removed", BUMP_FOR_REGION.get(region, ANY_BUMP),
                    loc=("top", "structs"), struct=sname)
            continue
        diff_struct(ctx, nname, _dict(o), _dict(ns[nname]))
    for sname, n in ns.items():
        if sname not in os_ and sname not in renamed.values():
            ctx.add("STRUCT_ADDED", sname, f"struct {sname} ({_dict(n).get('size')} bytes, "
                    f"region {_dict(n).get('region')}, since {_dict(n).get('since')}) added",
                    loc=("struct", sname), struct=sname)


def diff_constants(ctx: _Ctx) -> None:
    oc, nc = _dict(ctx.old.get("constants")), _dict(ctx.new.get("constants"))
    for name, o in oc.items():
        loc = ("constant", name)
        if name not in nc:
            ctx.add("CONSTANT_REMOVED", name, f"constant {name} removed", ANY_BUMP,
                    loc=("top", "constants"))
            continue
        ov, nv = _dict(o).get("value"), _dict(nc[name]).get("value")
        if ov != nv:
            if name in LAYOUT_CONSTANTS and _is_int(ov) and _is_int(nv) and nv > ov:
                ctx.add("LAYOUT_VERSION_BUMPED", name, f"{name} {ov} -> {nv}", loc=loc)
            else:
                ctx.add("CONSTANT_CHANGED", name, f"constant {name} {ov!r} -> {nv!r}", ANY_BUMP,
                        loc=loc)
        elif _dict(o) != _dict(nc[name]):
            ctx.add("CONSTANT_TEXT_CHANGED", name, f"constant {name}: hex/text note changed",
                    loc=loc)
    for name, n in nc.items():
        if name not in oc:
            ctx.add("CONSTANT_ADDED", name, f"constant {name} = {_dict(n).get('value')!r} added",
                    loc=("constant", name))


def _enum_in_shared_memory(spec: dict, ename: str) -> str:
    """The shared-memory fields ("Struct.field, ...") whose values name enum `ename`; "" when
    only socket messages carry it."""
    hits = []
    for sname, st in _dict(spec.get("structs")).items():
        if _dict(st).get("region") not in ("shm", "ring"):
            continue
        for f in _fields(st):
            if f.get("values") in (f"enum:{ename}", f"flags:{ename}"):
                hits.append(f"{sname}.{f['name']}")
    return ", ".join(hits)


def diff_enums(ctx: _Ctx) -> None:
    oe, ne = _dict(ctx.old.get("enums")), _dict(ctx.new.get("enums"))
    for ename, ovals in oe.items():
        loc = ("enum", ename)
        if ename not in ne:
            ctx.add("ENUM_REMOVED", ename, f"enum {ename} removed", ANY_BUMP,
                    loc=("top", "enums"))
            continue
        ovals, nvals = _dict(ovals), _dict(ne[ename])
        o_by_num = {v: k for k, v in ovals.items()}
        reused_nums: set = set()
        for name, v in ovals.items():
            where = f"{ename}.{name}"
            if name not in nvals:
                taker = next((k for k, nv in nvals.items() if nv == v and k not in ovals), None)
                if taker is not None:
                    reused_nums.add(v)
                    ctx.add("ENUM_VALUE_REUSED", f"{ename}.{taker}",
                            f"{ename} value {v} was {name}, now {taker}", ANY_BUMP, loc=loc)
                else:
                    ctx.add("ENUM_VALUE_REMOVED", where, f"{where} (= {v}) removed", ANY_BUMP,
                            loc=loc)
            elif nvals[name] != v:
                ctx.add("ENUM_VALUE_RENUMBERED", where, f"{where} {v} -> {nvals[name]}",
                        ANY_BUMP, loc=loc)
        for name, v in nvals.items():
            if name in ovals:
                continue
            where = f"{ename}.{name}"
            if v in o_by_num:
                if v in reused_nums:
                    continue
                ctx.add("ENUM_VALUE_REUSED", where, f"{ename} value {v} was {o_by_num[v]}, now "
                        f"{name}", ANY_BUMP, loc=loc)
                continue
            tol = TOLERANT_ENUMS.get(ename)
            shared = _enum_in_shared_memory(ctx.new, ename)
            if tol and tol[0] in ctx.old_req_ids:
                ctx.add("ENUM_VALUE_ADDED", where, f"{where} = {v} added; old readers tolerate "
                        f"it: {tol[1]} ({tol[0]})", loc=loc)
            elif ctx.proto_grew and not shared:
                ctx.add("ENUM_VALUE_ADDED", where, f"{where} = {v} added with the proto_version "
                        f"bump to {max(ctx.new_versions)}: only peers that negotiate it see it",
                        loc=loc)
            else:
                why = (f"{ename} is read from shared memory ({shared}) by subscribers of every "
                       "proto_version" if shared else "without a new proto_version")
                ctx.add("ENUM_VALUE_ADDED_UNNEGOTIATED", where,
                        f"{where} = {v} added {why}: an old reader may receive a value it does "
                        "not know", ANY_BUMP, loc=loc)
    for ename in ne:
        if ename not in oe:
            ctx.add("ENUM_ADDED", ename, f"enum {ename} added", loc=("enum", ename))


def diff_messages(ctx: _Ctx) -> None:
    om = {m["name"]: m for m in _list(ctx.old.get("messages"))
          if isinstance(m, dict) and isinstance(m.get("name"), str)}
    nm = {m["name"]: m for m in _list(ctx.new.get("messages"))
          if isinstance(m, dict) and isinstance(m.get("name"), str)}
    o_by_type = {m.get("type"): n for n, m in om.items()}
    p = frozenset({PROTO})
    handled_new: set[str] = set()
    for name, o in om.items():
        loc = ("message", name)
        if name not in nm:
            taker = next((k for k, m in nm.items() if m.get("type") == o.get("type")
                          and k not in om), None)
            if taker is not None:
                handled_new.add(taker)
                t = nm[taker]
                if all(o.get(k) == t.get(k) for k in ("payload", "min_length", "max_length",
                                                       "direction", "since")):
                    ctx.add("MESSAGE_RENAMED", taker, f"message {name} renamed {taker} "
                            f"(type {o.get('type')})", loc=("message", taker))
                else:
                    ctx.add("MESSAGE_TYPE_REUSED", taker, f"TLV type {o.get('type')} was {name}, "
                            f"now {taker}", p, loc=("message", taker))
            else:
                ctx.add("MESSAGE_REMOVED", name, f"message {name} (type {o.get('type')}) "
                        "removed", p, loc=("top", "messages"))
            continue
        n = nm[name]
        if o.get("type") != n.get("type"):
            ctx.add("MESSAGE_TYPE_RENUMBERED", name,
                    f"message {name} type {o.get('type')} -> {n.get('type')}", p, loc=loc)
        if o.get("payload") != n.get("payload"):
            ctx.add("MESSAGE_PAYLOAD_CHANGED", name,
                    f"message {name} payload {o.get('payload')} -> {n.get('payload')}", p,
                    loc=loc)
        if (o.get("min_length"), o.get("max_length")) != (n.get("min_length"),
                                                          n.get("max_length")):
            ctx.add("MESSAGE_LENGTH_CHANGED", name,
                    f"message {name} length {o.get('min_length')}..{o.get('max_length')} -> "
                    f"{n.get('min_length')}..{n.get('max_length')}", p, loc=loc)
        if o.get("direction") != n.get("direction"):
            ctx.add("MESSAGE_DIRECTION_CHANGED", name,
                    f"message {name} direction {o.get('direction')} -> {n.get('direction')}", p,
                    loc=loc)
        if o.get("since") != n.get("since"):
            ctx.add("MESSAGE_SINCE_CHANGED", name,
                    f"message {name} since {o.get('since')} -> {n.get('since')}", p, loc=loc)
    for name, n in nm.items():
        if name in om or name in handled_new:
            continue
        loc = ("message", name)
        if n.get("type") in o_by_type:
            ctx.add("MESSAGE_TYPE_REUSED", name, f"TLV type {n.get('type')} was "
                    f"{o_by_type[n.get('type')]}, now {name}", p, loc=loc)
        elif ctx.negotiated(n.get("since")):
            ctx.add("MESSAGE_ADDED_NEGOTIATED", name,
                    f"message {name} (type {n.get('type')}) added under proto_version "
                    f"{n.get('since')}", loc=loc)
        else:
            ctx.add("MESSAGE_ADDED_UNNEGOTIATED", name,
                    f"message {name} (type {n.get('type')}) added with since {n.get('since')}, "
                    f"not a newly negotiated proto_version (old {ctx.old_versions}, new "
                    f"{ctx.new_versions})", p, loc=loc)


def diff_errors(ctx: _Ctx) -> None:
    oe = {e["name"]: e for e in _list(ctx.old.get("errors"))
          if isinstance(e, dict) and isinstance(e.get("name"), str)}
    ne = {e["name"]: e for e in _list(ctx.new.get("errors"))
          if isinstance(e, dict) and isinstance(e.get("name"), str)}
    o_by_val = {e.get("value"): n for n, e in oe.items()}
    p = frozenset({PROTO})
    reused: set[str] = set()
    for name, o in oe.items():
        loc = ("error", name)
        if name not in ne:
            taker = next((k for k, e in ne.items() if e.get("value") == o.get("value")
                          and k not in oe), None)
            if taker is not None:
                reused.add(taker)
                ctx.add("ERROR_CODE_REUSED", taker, f"error code {o.get('value')} was {name}, "
                        f"now {taker}", p, loc=("error", taker))
            else:
                ctx.add("ERROR_CODE_REMOVED", name, f"error {name} (= {o.get('value')}) removed",
                        p, loc=("top", "errors"))
            continue
        n = ne[name]
        if o.get("value") != n.get("value"):
            ctx.add("ERROR_CODE_RENUMBERED", name,
                    f"error {name} {o.get('value')} -> {n.get('value')}", p, loc=loc)
        elif o != n:
            ctx.add("ERROR_TEXT_CHANGED", name, f"error {name}: description changed", loc=loc)
    for name, n in ne.items():
        if name in oe or name in reused:
            continue
        if n.get("value") in o_by_val:
            ctx.add("ERROR_CODE_REUSED", name, f"error code {n.get('value')} was "
                    f"{o_by_val[n.get('value')]}, now {name}", p, loc=("error", name))
        else:
            ctx.add("ERROR_CODE_ADDED", name, f"error {name} = {n.get('value')} added",
                    loc=("error", name))


def diff_state_machines(ctx: _Ctx) -> None:
    om, nm = _dict(ctx.old.get("state_machines")), _dict(ctx.new.get("state_machines"))
    p = frozenset({PROTO})
    for mname in sorted(set(om) | set(nm)):
        def rows(sm):
            out = {}
            for t in _list(_dict(sm).get("transitions")):
                if isinstance(t, dict):
                    out.setdefault((t.get("from"), t.get("event")), t)
            return out
        orows, nrows = rows(om.get(mname)), rows(nm.get(mname))
        for key, o in orows.items():
            frm, ev = key
            cid = f"sm:{mname}/{frm}/{ev}"
            where = f"{mname} {frm}/{ev}"
            loc = ("row", mname, frm, ev)
            n = nrows.get(key)
            if n is None:
                ctx.add("STATE_ROW_REMOVED", where, f"{mname} row ({frm}, {ev}) -> {o.get('to')} "
                        "removed", p, loc=("machine", mname), clar_id=cid)
                continue
            hard = [k for k in ("to", "error") if o.get(k) != n.get(k)]
            if hard:
                msg = "; ".join(f"{k} {o.get(k)!r} -> {n.get(k)!r}" for k in hard)
                c = ctx.add("STATE_ROW_CHANGED", where, f"{mname} row ({frm}, {ev}): {msg}", p,
                            loc=loc, clar_id=cid)
                if o.get("action") != n.get("action"):
                    c.word_diff = word_diff(o.get("action") or "", n.get("action") or "")[0]
                continue
            if o.get("action") != n.get("action"):
                meaning, diff, toks = text_change(o.get("action") or "", n.get("action") or "",
                                                  ctx.names)
                if meaning:
                    ctx.add("STATE_ROW_CHANGED", where, f"{mname} row ({frm}, {ev}): action "
                            f"changed in meaning ({', '.join(toks)})", p, loc=loc, clar_id=cid,
                            word_diff=diff, meaning_tokens=toks)
                else:
                    ctx.add("STATE_ROW_REWORDED", where, f"{mname} row ({frm}, {ev}): action "
                            "reworded", loc=loc, clar_id=cid, word_diff=diff)
        for key, n in nrows.items():
            if key in orows:
                continue
            frm, ev = key
            ctx.add("STATE_ROW_ADDED", f"{mname} {frm}/{ev}",
                    f"{mname} row ({frm}, {ev}) -> {n.get('to')} added",
                    loc=("row", mname, frm, ev), clar_id=f"sm:{mname}/{frm}/{ev}")


LEVEL_RANK = {"MAY": 0, "SHOULD": 1, "MUST": 2}
CUT_TEXT_LEN = 230   # v0.2's twin cut requirement text at 240 characters (then right-stripped)


def diff_requirements(ctx: _Ctx, old_full: dict | None = None,
                      new_full: dict | None = None) -> None:
    """old_full / new_full: requirement ID -> full sentence from PROTOCOL.md, used instead of
    the twin's cut text when both sides have the ID."""
    orq = {r["id"]: r for r in _list(ctx.old.get("requirements"))
           if isinstance(r, dict) and isinstance(r.get("id"), str)}
    nrq = {r["id"]: r for r in _list(ctx.new.get("requirements"))
           if isinstance(r, dict) and isinstance(r.get("id"), str)}
    p = frozenset({PROTO})
    for rid, o in orq.items():
        loc = ("requirement", rid)
        n = nrq.get(rid)
        if n is None:
            ctx.add("REQUIREMENT_REMOVED", rid, f"requirement {rid} ({o.get('level')}, section "
                    f"{o.get('section')}) removed", p, loc=("top", "requirements"), clar_id=rid)
            continue
        ol, nl = o.get("level"), n.get("level")
        if ol != nl:
            up = LEVEL_RANK.get(nl, -1) > LEVEL_RANK.get(ol, -1)
            if up:
                ctx.add("REQUIREMENT_RAISED", rid, f"{rid} raised {ol} -> {nl}", p, loc=loc,
                        clar_id=rid)
            elif ol == "MUST":
                ctx.add("REQUIREMENT_LOWERED", rid, f"{rid} lowered {ol} -> {nl}", p, loc=loc,
                        clar_id=rid)
            else:
                ctx.add("REQUIREMENT_LOWERED_OPTIONAL", rid, f"{rid} lowered {ol} -> {nl}",
                        loc=loc, clar_id=rid)
        otext, ntext = o.get("text") or "", n.get("text") or ""
        if old_full and new_full and rid in old_full and rid in new_full:
            otext, ntext = old_full[rid], new_full[rid]
        elif len(otext) >= CUT_TEXT_LEN and ntext.startswith(otext.rstrip()):
            # The old twin cut the statement (v0.2 kept 240 characters) and the new one carries
            # it whole: the visible part is unchanged and the rest was never in the old twin.
            otext = ntext
        if otext != ntext:
            meaning, diff, toks = text_change(otext, ntext, ctx.names)
            if meaning:
                ctx.add("REQUIREMENT_TEXT_CHANGED", rid, f"{rid} ({nl}) text changed in meaning "
                        f"({', '.join(toks)})", p, loc=loc, clar_id=rid, word_diff=diff,
                        meaning_tokens=toks)
            else:
                ctx.add("REQUIREMENT_REWORDED", rid, f"{rid} ({nl}) reworded (wording only: a "
                        "human confirms)", loc=loc, clar_id=rid, word_diff=diff)
        if o.get("section") != n.get("section"):
            ctx.add("REQUIREMENT_MOVED", rid, f"{rid} section {o.get('section')} -> "
                    f"{n.get('section')}", loc=loc, clar_id=rid)
    for rid, n in nrq.items():
        if rid in orq:
            continue
        loc = ("requirement", rid)
        if n.get("level") == "MUST":
            ctx.add("REQUIREMENT_ADDED_MUST", rid, f"{rid} (MUST, section {n.get('section')}) "
                    "added", p, loc=loc, clar_id=rid)
        else:
            ctx.add("REQUIREMENT_ADDED_SHOULD_MAY", rid, f"{rid} ({n.get('level')}, section "
                    f"{n.get('section')}) added", loc=loc, clar_id=rid)


MODELLED_TOP = {"schema", "document", "proto_versions", "byte_order", "constants", "enums",
                "structs", "messages", "errors", "state_machines", "requirements",
                # gate metadata, judged separately (spec_gate.py)
                "release", "clarifications"}


def diff_top(ctx: _Ctx) -> None:
    ov, nv = ctx.old_versions, ctx.new_versions
    if ctx.proto_grew:
        ctx.add("PROTO_VERSION_BUMPED", "proto_versions",
                f"proto_versions {ov} -> {nv}: highest {max(ov) if ov else None} -> {max(nv)}",
                loc=("top", "proto_versions"))
    dropped = [v for v in ov if v not in nv]
    if dropped:
        ctx.add("PROTO_VERSION_DROPPED", "proto_versions",
                f"proto_versions {ov} -> {nv}: {dropped} no longer spoken", {PROTO},
                loc=("top", "proto_versions"))
    if ctx.old.get("byte_order") != ctx.new.get("byte_order"):
        ctx.add("BYTE_ORDER_CHANGED", "byte_order", f"byte_order {ctx.old.get('byte_order')!r} "
                f"-> {ctx.new.get('byte_order')!r}", ANY_BUMP, loc=("top", "byte_order"))
    for key in ("schema", "document"):
        if ctx.old.get(key) != ctx.new.get(key):
            ctx.add("META_CHANGED", key, f"{key} {ctx.old.get(key)!r} -> {ctx.new.get(key)!r}",
                    loc=("top", key))
    for key in sorted((set(ctx.old) | set(ctx.new)) - MODELLED_TOP):
        if ctx.old.get(key) != ctx.new.get(key):
            ctx.add("UNMODELLED_CHANGED", key, f"top-level key {key!r} changed; the gate does "
                    "not model it: review by hand", loc=("top", key))


def diff_twins(old: dict, new: dict, old_full: dict | None = None,
               new_full: dict | None = None) -> list[Change]:
    """Every difference between twin `old` and twin `new`, in twin order (top, constants,
    enums, structs, messages, errors, state machines, requirements)."""
    ctx = _Ctx(old, new)
    diff_top(ctx)
    diff_constants(ctx)
    diff_enums(ctx)
    diff_structs(ctx)
    diff_messages(ctx)
    diff_errors(ctx)
    diff_state_machines(ctx)
    diff_requirements(ctx, old_full, new_full)
    return ctx.changes
