#!/usr/bin/env bash
# bench/instr.sh: instructions per operation of the hot paths (bench/instr_count.cpp), counted by
# callgrind, which is repeatable on a loaded machine where timings are not.
#
#   bench/instr.sh [BUILD_DIR]     (default: build/default; needs valgrind)
#
# Prints one line per workload: name, instructions per iteration. Then the cost of the unset
# fault points on the publish paths (issue 13 item 6): the same workloads counted again in
# instr_count_nofault (the reference compiled with the points compiled out), the difference in
# instructions, and both timed natively (best of 5 runs each; wall-clock, so noisy on a loaded
# machine, unlike the counts).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build/default}"
exe="$build/bench/instr_count"
nofault="$build/bench/instr_count_nofault"
if ! command -v valgrind >/dev/null; then
  echo "bench/instr.sh: SKIP: valgrind is not installed" >&2
  exit 77
fi
[[ -x "$exe" ]] || { echo "bench/instr.sh: $exe not built (configure with -DCUFRAMES_BENCH=ON)" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
iterations=20000

# Prints the instructions per iteration of workload $2 in program $1.
count() {
  local prog="$1" w="$2" ir
  valgrind --tool=callgrind --toggle-collect="cf_work_$w" --callgrind-out-file="$tmp/$w.out" \
    "$prog" "$w" "$iterations" >/dev/null 2>"$tmp/$w.log" ||
    { cat "$tmp/$w.log" >&2; return 1; }
  ir="$(sed -n 's/^summary: *//p' "$tmp/$w.out" | awk '{print $1}')"
  awk -v ir="$ir" -v n="$iterations" 'BEGIN { printf "%.1f", ir / n }'
}

declare -A with
for w in ring_publish ring_roundtrip frame_publish fault_point empty; do
  with[$w]="$(count "$exe" "$w")"
  printf '%-16s %8s instructions/iteration\n' "$w" "${with[$w]}"
done

if [[ ! -x "$nofault" ]]; then
  echo "bench/instr.sh: $nofault not built: no fault-point cost on the publish paths" >&2
  exit 0
fi
# Fault points per iteration: publish() passes pub.packet.mid_payload and pub.packet.after_record;
# acquire + commit pass pub.frame.after_acquire, after_meta, after_seq and after_write_seq.
echo "unset fault points on the publish paths (with points vs compiled out):"
for w in ring_publish frame_publish; do
  points=2
  [[ "$w" == frame_publish ]] && points=4
  without="$(count "$nofault" "$w")"
  t_with=() t_without=()
  for _ in 1 2 3; do  # interleaved, so a change of the machine's load hits both alike
    t_with+=("$("$exe" "$w" 200000 time)")
    t_without+=("$("$nofault" "$w" 200000 time)")
  done
  tw="$(printf '%s\n' "${t_with[@]}" | sort -g | head -1)"
  two="$(printf '%s\n' "${t_without[@]}" | sort -g | head -1)"
  awk -v w="$w" -v p="$points" -v a="${with[$w]}" -v b="$without" -v ta="$tw" -v tb="$two" 'BEGIN {
    printf "%-16s %d points: %.1f vs %.1f instructions (+%.1f, %.1f%%); %.1f vs %.1f ns (%+.1f ns)\n",
      w, p, a, b, a - b, 100 * (a - b) / b, ta, tb, ta - tb }'
done
