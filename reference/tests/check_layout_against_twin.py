#!/usr/bin/env python3
"""Holds the reference's layout (printed by layout_dump) against spec/cuframes.json.

Two derivations of the spec, compared: the twin is the normative machine-readable layout; the
reference writes its own structs (with static_asserts) and its own message encoder. Every struct
and every field of the twin must appear in the dump with the same offset and size, and the
dump must not contain fields the twin does not know. Reserved fields of socket messages have no
counterpart in the encoder (they are always zero) and are checked as gaps instead.

If this test fails, either the twin or the reference changed a layout: that is a breaking change
that needs a new layout_version / proto_version, not a quick fix of the other side.
"""
import argparse
import json
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--twin", required=True)
    ap.add_argument("--dump", required=True)
    args = ap.parse_args()
    with open(args.twin, encoding="utf-8") as f:
        twin = json.load(f)
    out = subprocess.run([args.dump], check=True, capture_output=True, text=True).stdout
    dump: dict[str, dict[str, tuple[int, int]]] = {}
    ref_errors: dict[str, int] = {}
    ref_messages: dict[str, tuple[int, int, int]] = {}
    for line in out.splitlines():
        cols = line.split(",")
        if cols[0] == "@error":
            ref_errors[cols[1]] = int(cols[2])
        elif cols[0] == "@message":
            ref_messages[cols[1]] = (int(cols[2]), int(cols[3]), int(cols[4]))
        else:
            s, field, off, size = cols
            dump.setdefault(s, {})[field] = (int(off), int(size))

    errors = []
    checked = 0
    for name, st in twin["structs"].items():
        if name not in dump:
            errors.append(f"{name}: in the twin, missing from the reference")
            continue
        d = dump[name]
        if d[""][1] != st["size"]:
            errors.append(f"{name}: size twin={st['size']} reference={d[''][1]}")
        twin_fields = {f["name"] for f in st["fields"]}
        for fd in st["fields"]:
            want = (fd["offset"], fd["size"])
            got = d.get(fd["name"])
            if got is None:
                if st["region"] == "socket" and fd["type"] == "reserved":
                    # No encoder field: check the bytes are a gap between encoded fields.
                    lo, hi = want[0], want[0] + want[1]
                    for other, (o, s) in d.items():
                        if other and o < hi and lo < o + s:
                            errors.append(f"{name}.{fd['name']}: reserved bytes {lo}..{hi} "
                                          f"overlap encoded field {other}")
                    checked += 1
                    continue
                errors.append(f"{name}.{fd['name']}: in the twin, missing from the reference")
                continue
            checked += 1
            if got != want:
                errors.append(f"{name}.{fd['name']}: twin offset/size={want} reference={got}")
        for extra in d:
            if extra and extra not in twin_fields:
                errors.append(f"{name}.{extra}: in the reference, unknown to the twin")
    for name in dump:
        if name not in twin["structs"]:
            errors.append(f"{name}: in the reference, unknown to the twin")

    twin_errors = {e["name"]: e["value"] for e in twin["errors"]}
    if twin_errors != ref_errors:
        for name in sorted(set(twin_errors) | set(ref_errors)):
            if twin_errors.get(name) != ref_errors.get(name):
                errors.append(f"error {name}: twin={twin_errors.get(name)} "
                              f"reference={ref_errors.get(name)}")
    twin_messages = {m["name"]: (m["type"], m["min_length"], m["max_length"])
                     for m in twin["messages"]}
    for name in sorted(set(twin_messages) | set(ref_messages)):
        if twin_messages.get(name) != ref_messages.get(name):
            errors.append(f"message {name} (type, min, max): twin={twin_messages.get(name)} "
                          f"reference={ref_messages.get(name)}")

    for e in errors:
        print("MISMATCH", e)
    if errors:
        print(f"{len(errors)} layout mismatches: a layout changed; bump layout_version or "
              "proto_version and update the twin and the reference together")
        return 1
    print(f"layout matches the twin: {len(twin['structs'])} structs, {checked} fields, "
          f"{len(twin_errors)} error codes, {len(twin_messages)} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
