#!/usr/bin/env bash
# bench/instr.sh: instructions per operation of the hot paths (bench/instr_count.cpp), counted by
# callgrind, which is repeatable on a loaded machine where timings are not.
#
#   bench/instr.sh [BUILD_DIR]     (default: build/default; needs valgrind)
#
# Prints one line per workload: name, instructions per iteration.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build/default}"
exe="$build/bench/instr_count"
if ! command -v valgrind >/dev/null; then
  echo "bench/instr.sh: SKIP: valgrind is not installed" >&2
  exit 77
fi
[[ -x "$exe" ]] || { echo "bench/instr.sh: $exe not built (configure with -DCUFRAMES_BENCH=ON)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
iterations=20000
for w in ring_publish ring_roundtrip fault_point empty; do
  valgrind --tool=callgrind --toggle-collect="cf_work_$w" --callgrind-out-file="$tmp/$w.out" \
    "$exe" "$w" "$iterations" >/dev/null 2>"$tmp/$w.log" ||
    { cat "$tmp/$w.log" >&2; exit 1; }
  ir="$(sed -n 's/^summary: *//p' "$tmp/$w.out" | awk '{print $1}')"
  awk -v w="$w" -v ir="$ir" -v n="$iterations" 'BEGIN { printf "%-16s %8.1f instructions/iteration\n", w, ir / n }'
done
