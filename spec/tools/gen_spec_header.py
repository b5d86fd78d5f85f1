#!/usr/bin/env python3
"""gen_spec_header.py: generate cuframes_spec_generated.h (namespace cuframes::spec) from the
machine-readable twin spec/cuframes.json.

  gen_spec_header.py [--spec PATH] --out PATH

The header carries, all constexpr: the twin's constants; each enum as an enum class with the
twin's values, plus MessageType (messages table) and Error (errors table); for each struct a
namespace with size/align/since and one namespace per field with offset/size/atomic/since and
`type`; and tables of structs, fields, enum values, messages, errors, state transitions and
requirements with small lookup helpers. The conformance harness learns the protocol from this
header and never from the reference's headers.

Before writing, the twin's layouts are checked (check_spec: struct layouts, atomics, the sizes
the design fixed); a twin with a layout problem produces no header (exit 1).
Python 3.11+ standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_spec  # noqa: E402  (same directory)

CXX_KEYWORDS = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public register reinterpret_cast requires return
short signed sizeof static static_assert static_cast struct switch template this thread_local
throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while
xor xor_eq final override import module
""".split())
# Macros from C/POSIX headers that would break an enumerator or namespace of the same name.
KNOWN_MACROS = {"EOF", "NULL", "TRUE", "FALSE", "DOMAIN", "SING", "OVERFLOW", "UNDERFLOW",
                "TLOSS", "PLOSS", "BUFSIZ", "errno", "assert", "unix", "linux", "major", "minor",
                "EAGAIN", "EINVAL", "ENOENT", "ENOMEM", "EPERM", "ETIMEDOUT", "EBUSY", "EEXIST"}
# Names a struct namespace declares itself; a field with one of these names gets a trailing '_'.
STRUCT_MEMBERS = {"size", "align", "since", "section", "region", "name"}

INT_TYPES = {"u8": "std::uint8_t", "u16": "std::uint16_t", "u32": "std::uint32_t",
             "u64": "std::uint64_t", "i8": "std::int8_t", "i16": "std::int16_t",
             "i32": "std::int32_t", "i64": "std::int64_t"}


class GenError(Exception):
    pass


def cxx_str(s: str) -> str:
    """A C++ string literal for s: ASCII printable as is, everything else as 3-digit octal
    escapes of its UTF-8 bytes (3 digits, so a following digit is never absorbed)."""
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c in ('"', "\\"):
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def ident(name: str, reserved: set[str] = frozenset()) -> str:
    """name as a C++ identifier: a trailing '_' when it is a keyword, a known macro or in
    `reserved`. Raises GenError for names that are not identifiers at all."""
    if not name or not (name[0].isalpha() or name[0] == "_") or \
            not all(ch.isalnum() or ch == "_" for ch in name):
        raise GenError(f"{name!r} is not a valid C++ identifier")
    if name in CXX_KEYWORDS or name in KNOWN_MACROS or name in reserved:
        return name + "_"
    return name


def camel(name: str) -> str:
    """segment_state -> SegmentState."""
    return "".join(w[:1].upper() + w[1:] for w in name.split("_") if w)


def int_literal(v: int) -> str:
    if v < 0:
        return f"{v}LL" if v >= -(1 << 63) else str(v)
    return f"{v}U" if v < (1 << 32) else f"{v}ULL"


def values_text(values) -> str:
    if values is None:
        return ""
    if isinstance(values, str):
        return values
    return json.dumps(values, separators=(",", ":"))


def generate(spec: dict, source_name: str, digest: str) -> str:
    """The header text. Raises GenError when the twin cannot be expressed in C++."""
    out: list[str] = []
    w = out.append
    structs = spec.get("structs") or {}
    enums = spec.get("enums") or {}
    messages = spec.get("messages") or []
    errors = spec.get("errors") or []
    constants = spec.get("constants") or {}
    machines = spec.get("state_machines") or {}
    reqs = spec.get("requirements") or []
    versions = spec.get("proto_versions")
    if not isinstance(versions, list) or not all(isinstance(v, int) for v in versions):
        raise GenError("proto_versions must be a list of integers")
    versions_list = ", ".join(str(v) for v in versions)

    # Type names: enums in CamelCase plus MessageType and Error; none may collide with a struct.
    enum_types = {ename: camel(ename) for ename in enums}
    type_names = list(enum_types.values()) + ["MessageType", "Error", "Level"]
    for t in type_names:
        if t in structs:
            raise GenError(f"enum type name {t} collides with struct {t}")
    if len(set(type_names)) != len(type_names):
        raise GenError(f"enum type names collide: {sorted(type_names)}")
    for sname in structs:
        ident(sname)

    w(f"""// cuframes_spec_generated.h: the cuframes wire protocol as C++20 constants.
//
// GENERATED from {source_name} by spec/tools/gen_spec_header.py; do not edit. Change the twin
// (and PROTOCOL.md) instead; the build regenerates this file.
//
// Namespace cuframes::spec holds:
//   constants      the twin's constants under their own names (SEGMENT_MAGIC, FRAME_META_SIZE, ...)
//   enums          one enum class per twin enum (memory_kind -> MemoryKind, ...), MessageType
//                  (the messages table) and Error (the errors table); raw(e) gives the number
//   layouts        namespace <Struct> {{ size, align, since; namespace <field> {{ offset, size,
//                  atomic, since, type }} }}, e.g. SegmentHeader::write_seq::offset == 128.
//                  A field named like a struct-level member (size, align, ...), a C++ keyword or
//                  a libc macro gets a trailing underscore: CodecParams::size_::offset.
//   tables         kStructs, kFields, kEnumValues, kMessages, kErrors, kTransitions and
//                  kRequirements, with *_index / find_* / *_name lookups.
// The conformance harness learns the protocol from this header, never from an implementation.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace cuframes::spec {{

// ---- the twin itself ----------------------------------------------------------------------
inline constexpr std::string_view kSchema = {cxx_str(str(spec.get("schema", "")))};
inline constexpr std::string_view kTwinSha256 = {cxx_str(digest)};
inline constexpr std::string_view kByteOrder = {cxx_str(str(spec.get("byte_order", "")))};
inline constexpr std::array<unsigned, {len(versions)}> kProtoVersions{{{{{versions_list}}}}};

/// The number behind an enumerator: raw(Error::TIMEOUT) == 2.
template <class E>
constexpr std::underlying_type_t<E> raw(E e) noexcept {{
  return static_cast<std::underlying_type_t<E>>(e);
}}
""")

    # ---- constants ----
    w("// ---- constants ------------------------------------------------------------------------")
    for cname, c in constants.items():
        v = c.get("value") if isinstance(c, dict) else None
        if not isinstance(v, int) or isinstance(v, bool):
            raise GenError(f"constant {cname} has no integer value")
        ctype = "std::int64_t" if v < 0 else ("std::uint32_t" if v < (1 << 32) else
                                              "std::uint64_t")
        note = c.get("text") or ""
        hexv = c.get("hex")
        comment = "  // " + "; ".join(x for x in (hexv, note) if x) if (hexv or note) else ""
        w(f"inline constexpr {ctype} {ident(cname)} = {int_literal(v)};{comment}")
    w("")

    # ---- enums ----
    w("// ---- enums ----------------------------------------------------------------------------")
    for ename, members in enums.items():
        w(f"/// twin enum \"{ename}\"")
        w(f"enum class {enum_types[ename]} : std::uint32_t {{")
        for mname, v in members.items():
            w(f"  {ident(mname)} = {int_literal(int(v))},")
        w("};")
    w("/// TLV message types (messages table).")
    w("enum class MessageType : std::uint16_t {")
    for m in messages:
        w(f"  {ident(m['name'])} = {int_literal(int(m['type']))},")
    w("};")
    w("/// Error codes (errors table); the same numbers travel in status/reason/code fields.")
    w("enum class Error : std::uint32_t {")
    for e in errors:
        w(f"  {ident(e['name'])} = {int_literal(int(e['value']))},  // {e.get('text', '')}")
    w("};")
    w("enum class Level : std::uint8_t { MUST, SHOULD, MAY };")
    w("")

    # ---- layouts ----
    w("// ---- struct layouts -------------------------------------------------------------------")
    for sname, st in structs.items():
        w(f"/// {st.get('text') or sname} (section {st.get('section', '?')}, "
          f"region {st.get('region', '?')})")
        w(f"namespace {ident(sname)} {{")
        w(f"inline constexpr std::size_t size = {st['size']};")
        w(f"inline constexpr std::size_t align = {st['align']};")
        w(f"inline constexpr unsigned since = {int(st.get('since', 1))};")
        w(f"inline constexpr std::string_view section = {cxx_str(str(st.get('section', '')))};")
        w(f"inline constexpr std::string_view region = {cxx_str(str(st.get('region', '')))};")
        w(f"inline constexpr std::string_view name = {cxx_str(sname)};")
        for f in st["fields"]:
            fid = ident(f["name"], STRUCT_MEMBERS)
            ftype = f["type"]
            ctype = INT_TYPES.get(ftype, f"std::array<std::uint8_t, {f['size']}>")
            w(f"namespace {fid} {{")
            w(f"inline constexpr std::size_t offset = {f['offset']}, size = {f['size']};")
            w(f"inline constexpr bool atomic = {'true' if f.get('atomic') else 'false'};")
            w(f"inline constexpr unsigned since = {int(f['since'])};")
            w(f"using type = {ctype};  // {ftype}"
              + (f", values {values_text(f['values'])}" if "values" in f else ""))
            w(f"}}  // namespace {fid}")
        w(f"}}  // namespace {ident(sname)}")
    w("")

    # ---- tables ----
    w("""// ---- tables -------------------------------------------------------------------------
struct StructInfo {
  std::string_view name;
  std::size_t size;
  std::size_t align;
  std::string_view region;   // "shm" (frame segment), "ring" (packet ring) or "socket"
  std::string_view section;  // PROTOCOL.md section
  unsigned since;            // first proto_version with this struct
};
struct FieldInfo {
  std::string_view struct_name;
  std::string_view name;
  std::size_t offset;
  std::size_t size;
  bool atomic;
  std::string_view type;    // u8 u16 u32 u64 i64 bytes reserved struct:X
  std::string_view writer;  // publisher, subscriber or sender
  unsigned since;
  std::string_view values;  // the twin's "values": "enum:x", "flags:x", JSON list/range, or ""
};
struct EnumValue {
  std::string_view enum_name;  // twin name, e.g. "memory_kind"
  std::string_view name;
  std::uint64_t value;
};
struct ConstantInfo {
  std::string_view name;
  std::int64_t value;
};
struct MessageInfo {
  std::string_view name;
  std::uint16_t type;
  std::string_view payload;  // struct name
  std::string_view direction;
  std::uint32_t min_length;
  std::uint32_t max_length;
  unsigned since;
};
struct ErrorInfo {
  std::string_view name;
  std::uint32_t value;
  std::string_view text;
};
struct Transition {
  std::string_view machine;  // "subscriber" or "publisher"
  std::string_view from;
  std::string_view event;
  std::string_view to;
  std::string_view action;
  std::string_view error;  // error name, "A|B", or MESSAGE.field carrying the peer's code
};
struct Requirement {
  std::string_view id;
  Level level;
  std::string_view section;
  std::string_view text;
};
""")

    def table(ctype: str, name: str, rows: list[str]) -> None:
        if not rows:
            w(f"inline constexpr std::array<{ctype}, 0> {name}{{}};")
            return
        w(f"inline constexpr std::array<{ctype}, {len(rows)}> {name}{{{{")
        for r in rows:
            w(f"    {r},")
        w("}};")

    table("StructInfo", "kStructs", [
        f"{{{cxx_str(s)}, {st['size']}, {st['align']}, {cxx_str(str(st.get('region', '')))}, "
        f"{cxx_str(str(st.get('section', '')))}, {int(st.get('since', 1))}}}"
        for s, st in structs.items()])
    table("FieldInfo", "kFields", [
        f"{{{cxx_str(s)}, {cxx_str(f['name'])}, {f['offset']}, {f['size']}, "
        f"{'true' if f.get('atomic') else 'false'}, {cxx_str(f['type'])}, "
        f"{cxx_str(str(f.get('writer', '')))}, {int(f['since'])}, "
        f"{cxx_str(values_text(f.get('values')))}}}"
        for s, st in structs.items() for f in st["fields"]])
    table("EnumValue", "kEnumValues", [
        f"{{{cxx_str(e)}, {cxx_str(m)}, {int_literal(int(v))}}}"
        for e, members in enums.items() for m, v in members.items()])
    if any(not -(1 << 63) <= c["value"] < (1 << 63) for c in constants.values()):
        raise GenError("a constant does not fit std::int64_t")
    table("ConstantInfo", "kConstants", [
        f"{{{cxx_str(n)}, {int(c['value'])}}}" for n, c in constants.items()])
    table("MessageInfo", "kMessages", [
        f"{{{cxx_str(m['name'])}, {int(m['type'])}, {cxx_str(str(m.get('payload', '')))}, "
        f"{cxx_str(str(m.get('direction', '')))}, {int(m.get('min_length', 0))}U, "
        f"{int(m.get('max_length', 0))}U, {int(m.get('since', 1))}}}" for m in messages])
    table("ErrorInfo", "kErrors", [
        f"{{{cxx_str(e['name'])}, {int(e['value'])}U, {cxx_str(str(e.get('text', '')))}}}"
        for e in errors])
    table("Transition", "kTransitions", [
        f"{{{cxx_str(mn)}, {cxx_str(str(t.get('from', '')))}, {cxx_str(str(t.get('event', '')))},"
        f" {cxx_str(str(t.get('to', '')))}, {cxx_str(str(t.get('action') or ''))}, "
        f"{cxx_str(str(t.get('error') or ''))}}}"
        for mn, m in machines.items() if isinstance(m, dict)
        for t in m.get("transitions") or [] if isinstance(t, dict)])
    table("Requirement", "kRequirements", [
        f"{{{cxx_str(r['id'])}, Level::{r['level']}, {cxx_str(str(r.get('section', '')))}, "
        f"{cxx_str(str(r.get('text', '')))}}}" for r in reqs])

    w("""
// ---- lookups (constexpr; nullptr or "" when absent) ----------------------------------------
// In static_assert use the *_index functions (kNotFound when absent): GCC's UBSan cannot
// constant-evaluate a pointer compared with nullptr, or the iterator comparisons of a range-for.
constexpr std::string_view level_name(Level l) noexcept {
  switch (l) {
    case Level::MUST: return "MUST";
    case Level::SHOULD: return "SHOULD";
    case Level::MAY: return "MAY";
  }
  return "";
}
inline constexpr std::size_t kNotFound = static_cast<std::size_t>(-1);
constexpr std::size_t requirement_index(std::string_view id) noexcept {
  for (std::size_t i = 0; i < kRequirements.size(); ++i) {
    if (kRequirements[i].id == id) return i;
  }
  return kNotFound;
}
constexpr std::size_t struct_index(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kStructs.size(); ++i) {
    if (kStructs[i].name == name) return i;
  }
  return kNotFound;
}
constexpr std::size_t field_index(std::string_view struct_name, std::string_view name) noexcept {
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    if (kFields[i].struct_name == struct_name && kFields[i].name == name) return i;
  }
  return kNotFound;
}
constexpr std::size_t message_index(std::uint16_t type) noexcept {
  for (std::size_t i = 0; i < kMessages.size(); ++i) {
    if (kMessages[i].type == type) return i;
  }
  return kNotFound;
}
constexpr const Requirement* find_requirement(std::string_view id) noexcept {
  const std::size_t i = requirement_index(id);
  return i == kNotFound ? nullptr : &kRequirements[i];
}
constexpr const StructInfo* find_struct(std::string_view name) noexcept {
  const std::size_t i = struct_index(name);
  return i == kNotFound ? nullptr : &kStructs[i];
}
constexpr const FieldInfo* find_field(std::string_view struct_name,
                                      std::string_view name) noexcept {
  const std::size_t i = field_index(struct_name, name);
  return i == kNotFound ? nullptr : &kFields[i];
}
constexpr const MessageInfo* find_message(std::uint16_t type) noexcept {
  const std::size_t i = message_index(type);
  return i == kNotFound ? nullptr : &kMessages[i];
}
constexpr std::string_view message_name(std::uint16_t type) noexcept {
  const MessageInfo* m = find_message(type);
  return m ? m->name : std::string_view{};
}
constexpr std::string_view error_name(std::uint32_t value) noexcept {
  for (std::size_t i = 0; i < kErrors.size(); ++i) {
    if (kErrors[i].value == value) return kErrors[i].name;
  }
  return {};
}
""")

    # ---- compile-time self-checks ----
    w("// ---- compile-time self-checks --------------------------------------------------------")
    for sname, st in structs.items():
        sid = ident(sname)
        last = max(st["fields"], key=lambda f: f["offset"] + f["size"])
        w(f"static_assert({sid}::{ident(last['name'], STRUCT_MEMBERS)}::offset + "
          f"{sid}::{ident(last['name'], STRUCT_MEMBERS)}::size == {sid}::size);")
        for f in st["fields"]:
            fid = f"{sid}::{ident(f['name'], STRUCT_MEMBERS)}"
            if f["type"] in INT_TYPES:
                w(f"static_assert(sizeof({fid}::type) == {fid}::size);")
            if f.get("atomic"):
                w(f"static_assert({fid}::offset % {fid}::size == 0 && {sid}::align % {fid}::size"
                  f" == 0, \"atomic {sname}.{f['name']} must stay naturally aligned\");")
    for sname, size in check_spec.REQUIRED_STRUCT_SIZES.items():
        w(f"static_assert({ident(sname)}::size == {size}, \"fixed by the original design: a "
          f"change breaks every peer and needs a proto_version bump\");")
    w("")
    w("}  // namespace cuframes::spec")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate cuframes_spec_generated.h from the twin.")
    ap.add_argument("--spec", type=Path, default=check_spec.DEFAULT_SPEC,
                    help="the twin (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="header to write")
    args = ap.parse_args(argv)

    spec, problems = check_spec.load_spec(args.spec)
    if spec is not None:
        problems += check_spec.check_shape(spec)
    if spec is not None and not problems:
        for check in (check_spec.check_struct_layouts, check_spec.check_atomics,
                      check_spec.check_design_facts, check_spec.check_messages,
                      check_spec.check_errors):
            problems += check(spec)
        if not isinstance(spec.get("requirements", []), list):
            problems.append(check_spec.Problem("req-malformed", "requirements", "not a list"))
        elif any(isinstance(r, dict) and r.get("level") not in check_spec.LEVELS
                 for r in spec.get("requirements", [])):
            problems += check_spec.check_requirements(spec)
    if problems:
        for p in problems:
            print(f"gen_spec_header: error: {p}", file=sys.stderr)
        print(f"gen_spec_header: {args.spec}: not generating a header from a broken twin "
              "(run spec/tools/check_spec.py)", file=sys.stderr)
        return 1
    digest = hashlib.sha256(args.spec.read_bytes()).hexdigest()
    try:
        text = generate(spec, "spec/" + args.spec.name, digest)
    except (GenError, KeyError, TypeError, ValueError) as e:
        print(f"gen_spec_header: error: {args.spec}: {e}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
