#!/usr/bin/env bash
# ci/bench.sh: build the default preset and run every CPU benchmark with its measured floor.
#
#   ci/bench.sh [extra Google Benchmark flags...]
#
# Runs each executable bench_<name> under build/default/bench with
#   --benchmark_format=console --benchmark_out=reports/bench-<name>.json
# then prints bench/report.py's table of each result next to its floor and target (with
# CUFRAMES_BENCH_STRICT=1, a missed target fails the job).
# Exit status: 0 when all ran, 1 when one failed, 2 when none was built.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

run_setup
configure_preset default -DCUFRAMES_BENCH=ON
# Build only the bench_* programs (and what they link), not every test of the tree.
build_targets_matching default bench_

mapfile -t benches < <(executables_matching "$ROOT/build/default/bench" 'bench_*')
if ((${#benches[@]} == 0)); then
  echo "ci/bench.sh: no bench_* executables under build/default/bench (bench/ builds none yet)" >&2
  exit 2
fi

# The machines are shared and noisy: medians of repetitions unless the caller chose flags.
(($#)) || set -- --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

mkdir -p "$ROOT/reports"
rm -f "$ROOT"/reports/bench-*.json
failed=()
for exe in "${benches[@]}"; do
  name="$(basename "$exe")"
  name="${name#bench_}"
  log "bench: $(basename "$exe")"
  if ! "$exe" --benchmark_format=console --benchmark_out="$ROOT/reports/bench-$name.json" \
       --benchmark_out_format=json "$@"; then
    failed+=("bench_$name")
  fi
done

# The table: each benchmark next to its floor and target (bench/report.py's conventions).
if [[ -f "$ROOT/bench/report.py" ]]; then
  shopt -s nullglob
  jsons=("$ROOT"/reports/bench-*.json)
  if ((${#jsons[@]})); then
    log "bench: report (bench/report.py${CUFRAMES_BENCH_STRICT:+ --strict})"
    "$PYTHON" "$ROOT/bench/report.py" ${CUFRAMES_BENCH_STRICT:+--strict} "${jsons[@]}" ||
      failed+=("bench/report.py")
  fi
else
  skip "bench/report.py does not exist: no floor/target table"
fi

# Instructions per operation of the hot paths (callgrind): the figure that does not move with
# the machine's load, for comparing a change with the one before it; and what the unset fault
# points cost the publish paths (the same paths built with the points compiled out).
if command -v valgrind >/dev/null; then
  log "bench: instruction counts (bench/instr.sh)"
  cmake --build --preset default --target instr_count instr_count_nofault >/dev/null &&
    bash "$ROOT/bench/instr.sh" "$ROOT/build/default" || failed+=("bench/instr.sh")
else
  skip "valgrind is not installed: no instruction counts (bench/instr.sh)"
fi

if ((${#failed[@]})); then
  printf 'ci/bench.sh: FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
echo "ci/bench.sh: ${#benches[@]} benchmark program(s); JSON in reports/bench-*.json"
