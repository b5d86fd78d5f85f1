"""Unit tests for spec/tools: check_spec.py, extract_requirements.py and gen_spec_header.py.

Each test breaks a small, self-contained twin (or text) in one way and asserts that the checker
names that exact problem. Only test_real_twin_* read the repository's own spec files.
Run: python3 -m pytest -q spec/tests
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"
sys.path.insert(0, str(TOOLS))

import check_spec as cs  # noqa: E402
import extract_requirements as er  # noqa: E402
import gen_spec_header as gh  # noqa: E402


# ---------------------------------------------------------------------------------------------
# Fixture: a minimal twin and text that pass every check
# ---------------------------------------------------------------------------------------------

def F(name, offset, size, ftype, **kw):
    f = {"name": name, "offset": offset, "size": size, "type": ftype, "writer": "publisher",
         "since": 1}
    f.update(kw)
    return f


def make_spec() -> dict:
    msgs = [{"name": f"M{i}", "type": i, "payload": "Hello", "direction": "both",
             "min_length": 8, "max_length": 64, "since": 1} for i in range(1, 9)]
    machine = {
        "states": ["OPEN", "CLOSED"],
        "events": ["GO", "STOP"],
        "transitions": [
            {"from": "OPEN", "event": "GO", "to": "OPEN", "action": "stay", "error": "OK"},
            {"from": "OPEN", "event": "STOP", "to": "CLOSED", "action": "close",
             "error": "PROTOCOL|OVERSIZED"},
            {"from": "CLOSED", "event": "GO", "to": "CLOSED", "action": "ignore",
             "error": "M1.status"},
            {"from": "CLOSED", "event": "STOP", "to": "CLOSED", "action": "ignore"},
        ],
    }
    return {
        "schema": "cuframes-spec/1",
        "proto_versions": [1, 2],
        "byte_order": "little",
        "constants": {
            "MAGIC": {"value": 0x52465543},
            "FRAME_META_SIZE": {"value": 64},
            "SEGMENT_HEADER_SIZE": {"value": 256},
            "TLV_MAX_PAYLOAD": {"value": 4096},
        },
        "enums": {"slot_state": {"FREE": 0, "ACTIVE": 1}, "sub_flags": {"A": 1, "B": 2}},
        "structs": {
            "FrameMeta": {"size": 64, "align": 64, "region": "shm", "section": "2", "since": 1,
                          "fields": [F("seq", 0, 8, "u64", atomic=True),
                                     F("payload_bytes", 8, 8, "u64"),
                                     F("reserved0", 16, 48, "reserved")]},
            "SlotDescriptor": {"size": 192, "align": 64, "region": "shm", "section": "2",
                               "since": 1,
                               "fields": [F("meta", 0, 64, "struct:FrameMeta"),
                                          F("mem_handle", 64, 64, "bytes"),
                                          F("ready_event", 128, 64, "bytes")]},
            "SubscriberSlot": {"size": 128, "align": 64, "region": "shm", "section": "2",
                               "since": 1,
                               "fields": [F("state", 0, 4, "u32", atomic=True,
                                            values="enum:slot_state"),
                                          F("flags", 4, 4, "u32", values="flags:sub_flags",
                                            writer="subscriber"),
                                          F("ack_seq", 8, 8, "u64", atomic=True,
                                            writer="subscriber"),
                                          F("reserved0", 16, 112, "reserved")]},
            "SegmentHeader": {"size": 256, "align": 64, "region": "shm", "section": "2",
                              "since": 1,
                              "fields": [F("layout_version", 0, 4, "u32", values=[1]),
                                         F("magic", 4, 4, "u32", values=["MAGIC"]),
                                         F("write_seq", 8, 8, "u64", atomic=True),
                                         F("size", 16, 8, "u64", values={"min": 1, "max": 9}),
                                         F("reserved0", 24, 232, "reserved")]},
            "Hello": {"size": 8, "align": 1, "region": "socket", "section": "3", "since": 1,
                      "fields": [F("status", 0, 4, "u32", values="enum:error"),
                                 F("type", 4, 2, "u16", values="enum:message_type"),
                                 F("reserved0", 6, 2, "reserved", since=2)]},
        },
        "messages": msgs,
        "errors": [{"name": n, "value": v, "text": n.lower()} for v, n in enumerate(
            ["OK", "PROTOCOL", "OVERSIZED", "NO_PACKET_RING", "NO_CODEC_PARAMS",
             "PACKET_OVERRUN"])],
        "state_machines": {"subscriber": machine, "publisher": copy.deepcopy(machine)},
        "requirements": [
            {"id": "X-ONE-01", "level": "MUST", "section": "1", "text": "The publisher writes it."},
            {"id": "X-TWO-01", "level": "SHOULD", "section": "1.1",
             "text": "A subscriber checks it."},
            {"id": "X-THREE-01", "level": "MAY", "section": "2", "text": "A peer may skip it."},
        ],
    }


TEXT = """# Test protocol

Tags look like `[ID-EXAMPLE-01 MUST]`; that example is code, not a tag.

## 1 Intro

[X-ONE-01 MUST] The publisher writes it.

### 1.1 Sub part

Something first. [X-TWO-01 SHOULD] A subscriber checks it.

#### 1.1.1 Deeper heading does not change the section

## 2 Other

- [X-THREE-01 MAY] A peer may skip it.

```
[IN-FENCE-01 MUST] inside a code fence: ignored
```
"""


def run(spec=None, text=TEXT):
    spec = make_spec() if spec is None else spec
    return cs.check_all(spec, text)


def codes(problems):
    return {p.code for p in problems}


def has(problems, code, where_part=""):
    """True when some problem has `code` and mentions where_part in its `where`."""
    return any(p.code == code and where_part in p.where for p in problems)


def field(spec, struct, name):
    return next(f for f in spec["structs"][struct]["fields"] if f["name"] == name)


# ---------------------------------------------------------------------------------------------
# The fixture and the real twin pass
# ---------------------------------------------------------------------------------------------

def test_fixture_passes():
    problems = run()
    assert problems == [], "\n".join(map(str, problems))


def test_real_twin_passes_the_spec_checks():
    spec, problems = cs.load_spec(cs.DEFAULT_SPEC)
    assert spec is not None, problems
    for check in cs.SPEC_CHECKS:
        problems += check(spec)
    assert problems == [], "\n".join(map(str, problems))


def test_real_twin_agrees_with_both_documents():
    """The repository's twin, PROTOCOL.md and ADAPTER.md, every check including the statement
    comparison: what ci runs as check_spec.py."""
    assert cs.main([]) == 0


def test_real_twin_generates_a_header():
    spec, _ = cs.load_spec(cs.DEFAULT_SPEC)
    text = gh.generate(spec, "spec/cuframes.json", "0" * 64)
    assert "namespace FrameMeta {" in text
    assert "inline constexpr std::size_t size = 64;" in text


# ---------------------------------------------------------------------------------------------
# Shape: a twin with wrong JSON types gets clear lines, never a traceback
# ---------------------------------------------------------------------------------------------

def test_wrong_json_types_are_reported_not_crashed():
    s = make_spec()
    s["structs"]["FrameMeta"]["fields"] = "oops"
    s["structs"]["Hello"]["size"] = "8"
    s["messages"] = {"HELLO": 1}
    s["state_machines"]["subscriber"]["transitions"][0]["event"] = ["GO"]
    s["requirements"] = None
    p = run(s)
    assert has(p, "spec-shape", "FrameMeta.fields")
    assert has(p, "spec-shape", "Hello.size")
    assert has(p, "spec-shape", "messages")
    assert has(p, "spec-shape", "state machine subscriber.transitions[0]")
    assert has(p, "spec-shape", "requirements")


def test_missing_top_level_key():
    s = make_spec()
    del s["errors"]
    assert has(run(s), "spec-shape", "errors")


# ---------------------------------------------------------------------------------------------
# Struct layouts
# ---------------------------------------------------------------------------------------------

def test_overlapping_fields():
    s = make_spec()
    field(s, "SegmentHeader", "write_seq")["offset"] = 4   # on top of magic
    p = run(s)
    assert has(p, "layout-overlap", "SegmentHeader.write_seq") or \
        has(p, "layout-overlap", "SegmentHeader.magic")


def test_gap_between_fields():
    s = make_spec()
    fm = s["structs"]["FrameMeta"]["fields"]
    fm[1] = F("payload_bytes", 12, 4, "u32")               # bytes 8..11 uncovered
    p = run(s)
    assert has(p, "layout-gap", "FrameMeta.payload_bytes")
    assert any("bytes 8..11" in x.message for x in p)


def test_gap_at_the_end():
    s = make_spec()
    field(s, "SegmentHeader", "reserved0")["size"] = 200   # ends at 224 of 256
    p = run(s)
    assert has(p, "layout-gap", "SegmentHeader")
    assert any("224..255" in x.message for x in p)


def test_fields_beyond_declared_size():
    s = make_spec()
    field(s, "SubscriberSlot", "reserved0")["size"] = 120  # ends at 136 > 128
    assert has(run(s), "layout-size", "SubscriberSlot")


def test_field_size_disagrees_with_type():
    s = make_spec()
    field(s, "FrameMeta", "payload_bytes")["type"] = "u32"
    assert has(run(s), "field-size", "FrameMeta.payload_bytes")


def test_unknown_field_type():
    s = make_spec()
    field(s, "FrameMeta", "payload_bytes")["type"] = "u128"
    assert has(run(s), "field-type", "FrameMeta.payload_bytes")


def test_nested_struct_size_must_match():
    s = make_spec()
    sd = s["structs"]["SlotDescriptor"]["fields"]
    sd[0]["size"], sd[1]["offset"], sd[1]["size"] = 32, 32, 96   # meta 32 != FrameMeta 64
    assert has(run(s), "field-size", "SlotDescriptor.meta")


def test_nested_struct_must_exist():
    s = make_spec()
    field(s, "SlotDescriptor", "meta")["type"] = "struct:NoSuch"
    assert has(run(s), "field-type", "SlotDescriptor.meta")


@pytest.mark.parametrize("key", ["writer", "since"])
def test_field_lacks_writer_or_since(key):
    s = make_spec()
    del field(s, "SegmentHeader", "magic")[key]
    p = run(s)
    assert has(p, "field-missing-key", "SegmentHeader.magic")
    assert any(key in x.message for x in p)


def test_field_since_before_its_struct():
    s = make_spec()
    s["structs"]["Hello"]["since"] = 2
    assert has(run(s), "field-since", "Hello.status")


def test_duplicate_field_name():
    s = make_spec()
    field(s, "FrameMeta", "payload_bytes")["name"] = "seq"
    assert has(run(s), "field-duplicate", "FrameMeta.seq")


# ---------------------------------------------------------------------------------------------
# Atomics and alignment
# ---------------------------------------------------------------------------------------------

def test_misaligned_atomic():
    s = make_spec()
    fs = s["structs"]["SegmentHeader"]["fields"]
    # magic 4..7 -> 4..11? keep coverage: write_seq at 4 (misaligned), magic moves to 12..15
    fs[1]["offset"], fs[2]["offset"] = 12, 4
    p = run(s)
    assert has(p, "atomic-misaligned", "SegmentHeader.write_seq")
    assert not codes(p) & {"layout-gap", "layout-overlap"}


def test_atomic_must_be_4_or_8_bytes():
    s = make_spec()
    hello = s["structs"]["Hello"]["fields"]
    hello[1]["atomic"] = True                                  # a u16 atomic
    assert has(run(s), "atomic-size", "Hello.type")


def test_atomic_must_be_an_integer():
    s = make_spec()
    field(s, "SlotDescriptor", "mem_handle").update(atomic=True, size=64)
    assert has(run(s), "atomic-size", "SlotDescriptor.mem_handle")


def test_shared_struct_align_must_be_multiple_of_8():
    s = make_spec()
    s["structs"]["SubscriberSlot"]["align"] = 4
    p = run(s)
    assert has(p, "struct-align", "SubscriberSlot")


def test_align_must_be_power_of_two():
    s = make_spec()
    s["structs"]["FrameMeta"]["align"] = 48
    assert has(run(s), "struct-align", "FrameMeta")


def test_socket_struct_needs_no_alignment():
    s = make_spec()
    assert s["structs"]["Hello"]["align"] == 1
    assert not has(run(s), "struct-align", "Hello")


# ---------------------------------------------------------------------------------------------
# Value references, enums
# ---------------------------------------------------------------------------------------------

def test_unknown_enum_reference():
    s = make_spec()
    field(s, "SubscriberSlot", "state")["values"] = "enum:no_such_enum"
    p = run(s)
    assert has(p, "enum-ref", "SubscriberSlot.state")
    assert any("enum:no_such_enum" in x.message for x in p)


def test_unknown_flags_reference():
    s = make_spec()
    field(s, "SubscriberSlot", "flags")["values"] = "flags:nope"
    assert has(run(s), "enum-ref", "SubscriberSlot.flags")


def test_error_and_message_type_tables_are_enums():
    p = run()
    assert not has(p, "enum-ref", "Hello")


def test_unknown_constant_reference():
    s = make_spec()
    field(s, "SegmentHeader", "magic")["values"] = ["NO_SUCH_CONSTANT"]
    assert has(run(s), "const-ref", "SegmentHeader.magic")


def test_value_out_of_range_for_type():
    s = make_spec()
    field(s, "Hello", "type")["values"] = {"min": 0, "max": 70000}   # u16
    assert has(run(s), "value-range", "Hello.type")


def test_flag_values_are_single_bits():
    s = make_spec()
    s["enums"]["sub_flags"]["C"] = 3
    assert has(run(s), "enum-flag", "enum sub_flags.C")


def test_duplicate_enum_value():
    s = make_spec()
    s["enums"]["slot_state"]["OTHER"] = 1
    assert has(run(s), "enum-duplicate", "enum slot_state.OTHER")


# ---------------------------------------------------------------------------------------------
# Design facts and constants
# ---------------------------------------------------------------------------------------------

def test_wrong_frame_meta_size():
    s = make_spec()
    s["structs"]["FrameMeta"]["size"] = 72
    field(s, "FrameMeta", "reserved0")["size"] = 56
    s["constants"]["FRAME_META_SIZE"]["value"] = 72
    p = run(s)
    assert has(p, "required-size", "FrameMeta")
    assert not codes(p) & {"layout-gap", "layout-size", "const-size"}


@pytest.mark.parametrize("struct", ["FrameMeta", "SlotDescriptor", "SubscriberSlot",
                                    "SegmentHeader"])
def test_required_struct_missing(struct):
    s = make_spec()
    del s["structs"][struct]
    assert has(run(s), "required-size", struct)


def test_size_constant_disagrees_with_struct():
    s = make_spec()
    s["constants"]["SEGMENT_HEADER_SIZE"]["value"] = 128
    assert has(run(s), "const-size", "SEGMENT_HEADER_SIZE")


def test_size_constant_alias_and_suffix_match():
    structs = {"PacketRingHeader": {}, "SegmentHeader": {}, "TlvHeader": {}}
    assert cs.size_constant_struct("RING_HEADER_SIZE", structs) == "PacketRingHeader"
    assert cs.size_constant_struct("TLV_HEADER_SIZE", structs) == "TlvHeader"
    assert cs.size_constant_struct("TLV_MAX_PAYLOAD", structs) is None
    assert cs.size_constant_struct("FOO_SIZE", structs) is None


def test_message_count_fixed_at_8():
    s = make_spec()
    s["messages"].pop()
    assert has(run(s), "required-messages", "messages")


def test_v2_error_codes_required():
    s = make_spec()
    s["errors"] = [e for e in s["errors"] if e["name"] != "PACKET_OVERRUN"]
    assert has(run(s), "required-error", "PACKET_OVERRUN")


# ---------------------------------------------------------------------------------------------
# Messages and errors
# ---------------------------------------------------------------------------------------------

def test_duplicate_message_type():
    s = make_spec()
    s["messages"][7]["type"] = 1
    p = run(s)
    assert has(p, "message-dup-type", "message M8")
    assert any("already used by M1" in x.message for x in p)


def test_duplicate_message_name():
    s = make_spec()
    s["messages"][7]["name"] = "M1"
    assert has(run(s), "message-dup-name", "message M1")


def test_message_payload_missing():
    s = make_spec()
    s["messages"][2]["payload"] = "NoSuchStruct"
    assert has(run(s), "message-payload", "message M3")


def test_message_min_length_below_payload_size():
    s = make_spec()
    s["messages"][3]["min_length"] = 4
    assert has(run(s), "message-length", "message M4")


def test_message_max_length_above_tlv_max():
    s = make_spec()
    s["messages"][3]["max_length"] = 5000
    assert has(run(s), "message-length", "message M4")


def test_duplicate_error_value():
    s = make_spec()
    s["errors"][5]["value"] = 1
    assert has(run(s), "error-dup-value", "error PACKET_OVERRUN")


def test_duplicate_error_name():
    s = make_spec()
    s["errors"].append({"name": "OK", "value": 99})
    assert has(run(s), "error-dup-name", "error OK")


# ---------------------------------------------------------------------------------------------
# State machines
# ---------------------------------------------------------------------------------------------

def test_missing_transition():
    s = make_spec()
    s["state_machines"]["subscriber"]["transitions"].pop(0)
    assert has(run(s), "sm-gap", "state machine subscriber: (OPEN, GO)")


def test_duplicate_transition():
    s = make_spec()
    t = s["state_machines"]["publisher"]["transitions"]
    t.append(dict(t[0], to="CLOSED"))
    assert has(run(s), "sm-duplicate", "state machine publisher: (OPEN, GO)")


def test_undeclared_to_state():
    s = make_spec()
    s["state_machines"]["subscriber"]["transitions"][0]["to"] = "LIMBO"
    p = run(s)
    assert has(p, "sm-unknown-state", "subscriber")
    assert any("LIMBO" in x.message for x in p)


def test_undeclared_event():
    s = make_spec()
    s["state_machines"]["subscriber"]["transitions"][0]["event"] = "JUMP"
    p = run(s)
    assert has(p, "sm-unknown-event", "subscriber")
    assert has(p, "sm-gap", "(OPEN, GO)")


def test_transition_error_not_in_errors_table():
    s = make_spec()
    s["state_machines"]["publisher"]["transitions"][0]["error"] = "NO_SUCH_ERROR"
    assert has(run(s), "sm-unknown-error", "publisher: OPEN --GO-->")


def test_transition_error_alternative_must_all_exist():
    s = make_spec()
    s["state_machines"]["publisher"]["transitions"][1]["error"] = "PROTOCOL|NOPE"
    p = run(s)
    assert has(p, "sm-unknown-error", "publisher: OPEN --STOP-->")
    assert any("'NOPE'" in x.message for x in p)


def test_transition_error_message_field_must_carry_an_error():
    s = make_spec()
    s["state_machines"]["publisher"]["transitions"][2]["error"] = "M1.type"  # enum:message_type
    assert has(run(s), "sm-unknown-error", "publisher: CLOSED --GO-->")


def test_missing_state_machine():
    s = make_spec()
    del s["state_machines"]["publisher"]
    assert has(run(s), "sm-missing", "publisher")


# ---------------------------------------------------------------------------------------------
# Requirements: text, twin, sync
# ---------------------------------------------------------------------------------------------

def test_text_parsing_sections_and_sentences():
    parsed = cs.parse_text(TEXT)
    got = [(t.id, t.level, t.section, t.text) for t in parsed.tags]
    assert got == [
        ("X-ONE-01", "MUST", "1", "The publisher writes it."),
        ("X-TWO-01", "SHOULD", "1.1", "A subscriber checks it."),
        ("X-THREE-01", "MAY", "2", "A peer may skip it."),
    ]
    assert parsed.problems == []


def test_heading_section_prefix():
    assert cs.heading_section("2.3 Frame meta") == "2.3"
    assert cs.heading_section("10 Packet ring") == "10"
    assert cs.heading_section("3.1. Framing") == "3.1"
    assert cs.heading_section("A.2 Appendix") == "A.2"
    assert cs.heading_section("Introduction") == ""


def test_tag_closing_its_sentence_takes_the_sentence_before():
    text = "## 4 X\n\nThe reader copies the bytes and checks them. [X-END-01 MUST]\n"
    (tag,) = cs.parse_text(text).tags
    assert tag.text == "The reader copies the bytes and checks them."


def test_statement_runs_to_the_next_tag_and_strips_markdown():
    text = ("## 5 Y\n\n[A-ONE-01 MUST] **Never** use `fork` after\nCUDA init. See [the doc](x.md)."
            " [A-TWO-01 MAY] Another one.\n")
    a, b = cs.parse_text(text).tags
    assert a.text == "Never use fork after CUDA init. See the doc."
    assert b.text == "Another one."


def test_tag_in_table_cell():
    text = "## 6 T\n\n| a | b |\n| --- | --- |\n| x | [T-CELL-01 MUST] Cell text. | y |\n"
    (tag,) = cs.parse_text(text).tags
    assert (tag.id, tag.section, tag.text) == ("T-CELL-01", "6", "Cell text.")


def test_long_text_is_whole():
    text = "## 1 L\n\n[L-LONG-01 MUST] " + "word " * 100 + "end.\n"
    (tag,) = cs.parse_text(text).tags
    assert tag.text == "word " * 100 + "end."


def test_twin_text_differs_from_the_text():
    s = make_spec()
    s["requirements"][0]["text"] = "The publisher writes it twice."
    p = run(spec=s)
    assert has(p, "req-text", "X-ONE-01")
    assert codes(p) == {"req-text"}


def test_legacy_schema_accepts_the_240_character_cut_only():
    text = "## 1 L\n\n[L-LONG-01 MUST] " + "word " * 100 + "end.\n"
    whole = "word " * 100 + "end."
    s = make_spec()
    s["requirements"] = [{"id": "L-LONG-01", "level": "MUST", "section": "1",
                          "text": whole[:240].rstrip()}]
    s["schema"] = "cuframes-spec/1"   # release 0.2 and before: texts cut at 240 characters
    assert not has(run(spec=s, text=text), "req-text", "L-LONG-01")
    s["requirements"][0]["text"] = whole[:200]
    assert has(run(spec=s, text=text), "req-text", "L-LONG-01")
    s["schema"] = "cuframes-spec/2"   # whole statements from release 0.3 on
    s["requirements"][0]["text"] = whole[:240].rstrip()
    assert has(run(spec=s, text=text), "req-text", "L-LONG-01")
    s["requirements"][0]["text"] = whole
    assert not has(run(spec=s, text=text), "req-text", "L-LONG-01")


def test_twin_text_compares_whitespace_and_markdown_normalised():
    s = make_spec()
    s["requirements"][0]["text"] = "The  `publisher`\n writes *it*."
    assert run(spec=s) == []


def test_adapter_requirements_sync_with_adapter_md():
    s = make_spec()
    s["requirements"].append({"id": "ADP-X-01", "level": "MUST", "section": "3",
                              "document": "ADAPTER.md", "text": "An adapter prints it."})
    adapter = "# A\n\n## 3 Events\n\n[ADP-X-01 MUST] An adapter prints it.\n"
    assert cs.check_all(s, TEXT, "PROTOCOL.md", adapter) == []
    p = cs.check_all(s, TEXT, "PROTOCOL.md", adapter.replace("prints it", "prints them"))
    assert has(p, "req-text", "ADP-X-01")
    p = cs.check_all(s, TEXT, "PROTOCOL.md", "# A\n")
    assert has(p, "req-twin-only", "ADP-X-01")
    s["requirements"][-1]["document"] = "OTHER.md"
    assert has(cs.check_all(s, TEXT), "req-document", "ADP-X-01")


def test_release_and_clarifications_accepted():
    s = make_spec()
    s["release"] = "0.3"
    s["clarifications"] = [{"id": "X-ONE-01", "reason": "tightened"},
                           {"id": "sm:publisher/OPEN/STOP", "reason": "row changed"}]
    assert run(spec=s) == []


@pytest.mark.parametrize("bad, code", [
    ({"release": 3}, "release-shape"),
    ({"release": "v0.3"}, "release-shape"),
    ({"clarifications": {}}, "release-shape"),
    ({"clarifications": [{"id": "X-NONE-01", "reason": "r"}]}, "release-unknown"),
    ({"clarifications": [{"id": "sm:publisher/OPEN/NOPE", "reason": "r"}]}, "release-unknown"),
    ({"clarifications": [{"id": "X-ONE-01", "reason": " "}]}, "release-reason"),
    ({"clarifications": [{"id": "X-ONE-01"}]}, "release-reason"),
    ({"clarifications": [{"id": "X-ONE-01", "reason": "a"}, {"id": "X-ONE-01", "reason": "b"}]},
     "release-shape"),
])
def test_release_keys_malformed(bad, code):
    s = make_spec()
    s.update(bad)
    assert code in codes(run(spec=s))


def test_duplicate_id_in_text():
    text = TEXT + "\n[X-ONE-01 MUST] Said twice.\n"
    assert has(run(text=text), "req-dup-text", "X-ONE-01")


def test_duplicate_id_in_twin():
    s = make_spec()
    s["requirements"].append(dict(s["requirements"][0]))
    assert has(run(s), "req-dup-twin", "X-ONE-01")


def test_id_only_in_text():
    text = TEXT + "\n[X-NEW-01 MUST] New rule.\n"
    assert has(run(text=text), "req-text-only", "X-NEW-01")


def test_id_only_in_twin():
    s = make_spec()
    s["requirements"].append({"id": "X-GONE-01", "level": "MUST", "section": "2", "text": "t"})
    assert has(run(s), "req-twin-only", "X-GONE-01")


def test_level_mismatch():
    s = make_spec()
    s["requirements"][1]["level"] = "MUST"
    p = run(s)
    assert has(p, "req-level", "X-TWO-01")
    assert any("SHOULD in the text, MUST in the twin" in x.message for x in p)


def test_section_mismatch():
    s = make_spec()
    s["requirements"][1]["section"] = "1"
    p = run(s)
    assert has(p, "req-section", "X-TWO-01")
    assert any("section 1.1" in x.message for x in p)


@pytest.mark.parametrize("tag", ["[x-low-01 MUST]", "[X-ONE-1 MUST]", "[X_UNDER-01 SHOULD]",
                                 "[X-ONE-02 SHALL]", "[X-ONE-02 must]", "[X-ONE-02 MUST NOT]",
                                 "[-X-01 MAY]"])
def test_malformed_tag(tag):
    text = TEXT + f"\nA rule. {tag}\n"
    p = run(text=text)
    assert has(p, "req-syntax", "PROTOCOL.md:")
    assert any(tag in x.message for x in p)


def test_malformed_id_in_twin():
    s = make_spec()
    s["requirements"][0]["id"] = "x-one-1"
    assert has(run(s), "req-syntax", "x-one-1")


def test_invalid_level_in_twin():
    s = make_spec()
    s["requirements"][0]["level"] = "SHALL"
    assert has(run(s), "req-level", "X-ONE-01")


@pytest.mark.parametrize("word", ["TODO", "TBD"])
def test_todo_and_tbd_in_text(word):
    text = TEXT + f"\nThe ring size is {word}.\n"
    p = run(text=text)
    assert has(p, "text-todo", "PROTOCOL.md:")
    assert any(word in x.message for x in p)


def test_todo_inside_a_word_is_fine():
    assert not has(run(text=TEXT + "\nTODOS and TBDX are words.\n"), "text-todo")


def test_tags_in_code_are_not_requirements():
    parsed = cs.parse_text(TEXT)
    ids = {t.id for t in parsed.tags}
    assert "ID-EXAMPLE-01" not in ids and "IN-FENCE-01" not in ids


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def write_pair(tmp_path, spec=None, text=TEXT):
    sp, tp = tmp_path / "twin.json", tmp_path / "PROTOCOL.md"
    sp.write_text(json.dumps(make_spec() if spec is None else spec, indent=2))
    tp.write_text(text)
    return sp, tp


def cli(*args):
    return subprocess.run([sys.executable, str(TOOLS / "check_spec.py"), *map(str, args)],
                          capture_output=True, text=True)


def test_cli_ok_summary(tmp_path):
    sp, tp = write_pair(tmp_path)
    ap = tmp_path / "ADAPTER.md"
    ap.write_text("# Adapter\n")
    r = cli("--spec", sp, "--text", tp, "--adapter", ap)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == ("spec check: 5 structs, 8 messages, 6 errors, 3 requirements "
                                "(1 MUST, 1 SHOULD, 1 MAY): OK")


def test_cli_failure_lines_and_json(tmp_path):
    s = make_spec()
    s["structs"]["FrameMeta"]["size"] = 72
    sp, tp = write_pair(tmp_path, s, TEXT + "\nTBD\n")
    r = cli("--spec", sp, "--text", tp)
    assert r.returncode == 1
    lines = r.stdout.strip().splitlines()
    assert lines[-1].endswith("problems")
    assert any(line.startswith("error: FrameMeta:") and "[required-size]" in line
               for line in lines)
    r = cli("--spec", sp, "--text", tp, "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    assert {"required-size", "text-todo"} <= {p["code"] for p in doc["problems"]}


def test_cli_missing_text_and_bad_json(tmp_path):
    sp, _ = write_pair(tmp_path)
    r = cli("--spec", sp, "--text", tmp_path / "nope.md")
    assert r.returncode == 1 and "[text-missing]" in r.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"structs": ')
    r = cli("--spec", bad, "--text", tmp_path / "PROTOCOL.md")
    assert r.returncode == 1 and "[spec-json]" in r.stdout


# ---------------------------------------------------------------------------------------------
# extract_requirements.py
# ---------------------------------------------------------------------------------------------

def test_extract_lists_requirements():
    reqs, problems = er.extract(TEXT)
    assert problems == []
    assert reqs == make_spec()["requirements"]


def test_extract_write_replaces_only_the_requirements(tmp_path):
    s = make_spec()
    s["requirements"] = []
    raw = json.dumps(s, indent=2)
    # a hand-formatted key the rewrite must keep byte for byte
    raw = raw.replace('"byte_order": "little"', '"byte_order":    "little"')
    sp, tp = tmp_path / "twin.json", tmp_path / "PROTOCOL.md"
    sp.write_text(raw)
    tp.write_text(TEXT)
    r = subprocess.run([sys.executable, str(TOOLS / "extract_requirements.py"), "--write",
                        "--spec", str(sp), "--text", str(tp), "--adapter",
                        str(tmp_path / "none.md")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = sp.read_text()
    assert '"byte_order":    "little"' in out
    assert json.loads(out)["requirements"] == make_spec()["requirements"]
    assert '    {"id": "X-ONE-01", "level": "MUST", "section": "1", ' in out
    head = raw[:raw.index('"requirements"')]
    assert out.startswith(head)
    # the updated twin now passes against the text; a second run changes nothing
    assert cs.check_all(json.loads(out), TEXT) == []
    before = sp.read_text()
    subprocess.run([sys.executable, str(TOOLS / "extract_requirements.py"), "--write",
                    "--spec", str(sp), "--text", str(tp), "--adapter", str(tmp_path / "none.md")],
                   check=True, capture_output=True)
    assert sp.read_text() == before


def test_extract_refuses_malformed_text(tmp_path):
    tp = tmp_path / "PROTOCOL.md"
    tp.write_text(TEXT + "\n[bad-01 MUST] x\n")
    r = subprocess.run([sys.executable, str(TOOLS / "extract_requirements.py"), "--text",
                        str(tp)], capture_output=True, text=True)
    assert r.returncode == 1 and "req-syntax" in r.stderr


# ---------------------------------------------------------------------------------------------
# gen_spec_header.py
# ---------------------------------------------------------------------------------------------

def test_header_generation_names_and_collisions():
    text = gh.generate(make_spec(), "twin.json", "ab" * 32)
    assert "namespace cuframes::spec {" in text
    assert "namespace write_seq {\ninline constexpr std::size_t offset = 8, size = 8;" in text
    # a field called "size" must not clash with the struct's own size constant
    assert "namespace size_ {" in text
    assert "enum class SlotState : std::uint32_t {" in text
    assert "enum class MessageType : std::uint16_t {" in text
    assert '{"X-TWO-01", Level::SHOULD, "1.1", "A subscriber checks it."},' in text
    assert "inline constexpr std::array<Requirement, 3> kRequirements{{" in text


def test_header_string_escaping():
    assert gh.cxx_str('a"b\\c') == '"a\\"b\\\\c"'
    assert gh.cxx_str("\u2265") == '"\\342\\211\\245"'
    assert gh.ident("EOF") == "EOF_" and gh.ident("class") == "class_"


def test_header_refuses_a_broken_twin(tmp_path):
    s = make_spec()
    field(s, "FrameMeta", "seq")["offset"] = 4
    sp, _ = write_pair(tmp_path, s)
    r = subprocess.run([sys.executable, str(TOOLS / "gen_spec_header.py"), "--spec", str(sp),
                        "--out", str(tmp_path / "h.h")], capture_output=True, text=True)
    assert r.returncode == 1
    assert "FrameMeta.seq" in r.stderr
    assert not (tmp_path / "h.h").exists()
