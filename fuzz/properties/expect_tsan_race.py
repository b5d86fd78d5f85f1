#!/usr/bin/env python3
"""expect_tsan_race.py: runs a program that must be stopped by a ThreadSanitizer data race report.

    expect_tsan_race.py PROGRAM [ARGS...]

Passes (exit 0) only when PROGRAM exits non-zero AND its output holds TSan's
"WARNING: ThreadSanitizer: data race" report; anything else fails (exit 1), so the test that
uses it (fuzz.seqlock_tsan_probe.broken_reader_caught) fails as soon as TSan stops seeing the
race, for whatever reason. PROGRAM's output is echoed for the record.
"""
import subprocess
import sys

MARK = "WARNING: ThreadSanitizer: data race"


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    proc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=240, check=False)
    out = proc.stdout.decode(errors="replace")
    sys.stdout.write(out)
    if proc.returncode == 0:
        print(f"FAIL: {sys.argv[1]} exited 0: ThreadSanitizer did not stop it")
        return 1
    if MARK not in out:
        print(f"FAIL: {sys.argv[1]} exited {proc.returncode} without a TSan data race report")
        return 1
    print(f"OK: exit status {proc.returncode} with a TSan data race report, as expected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
