#!/usr/bin/env bash
# ci/fuzz.sh: build the fuzz preset (clang, libFuzzer, ASan+UBSan) and run each fuzz target.
#
#   ci/fuzz.sh [SECONDS]     SECONDS per target, default 10 (a smoke run)
#
# Runs every executable fuzz_<name> under build/fuzz/fuzz with -max_total_time=SECONDS and, when
# it exists, the dictionary fuzz/fuzz_<name>.dict. Seeds come from the committed corpus
# fuzz/corpus/<name>/, which is only read: new inputs go to build/fuzz/corpus/<name>/, and
# crashes (with the input) to reports/fuzz/<name>/.
# Exit status: 0 when every target ran clean, 1 when one crashed, 2 when none was built.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds="${1:-10}"
[[ "$seconds" =~ ^[0-9]+$ ]] || die "usage: ci/fuzz.sh [SECONDS]" 2

run_setup
configure_preset fuzz
# Build only the fuzz_* targets (and what they need), not the whole tree under clang+ASan.
build_targets_matching fuzz fuzz_

mapfile -t targets < <(executables_matching "$ROOT/build/fuzz/fuzz" 'fuzz_*')
if ((${#targets[@]} == 0)); then
  echo "ci/fuzz.sh: no fuzz_* executables under build/fuzz/fuzz (fuzz/ builds none yet)" >&2
  exit 2
fi

failed=()
for exe in "${targets[@]}"; do
  name="$(basename "$exe")"
  short="${name#fuzz_}"
  seeds="$ROOT/fuzz/corpus/$short"
  work="$ROOT/build/fuzz/corpus/$short"
  artifacts="$ROOT/reports/fuzz/$short"
  mkdir -p "$work" "$artifacts"
  corpus=("$work")
  if [[ -d "$seeds" ]]; then
    corpus+=("$seeds")
  else
    skip "$name: no seed corpus at fuzz/corpus/$short/ (starting from nothing)"
  fi
  opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [[ -f "$ROOT/fuzz/$name.dict" ]] && opts+=(-dict="$ROOT/fuzz/$name.dict")
  log "fuzz: $name for ${seconds}s"
  if ! "$exe" "${opts[@]}" "${corpus[@]}"; then
    failed+=("$name")
    note "$name failed; reproduce with: $exe $artifacts/<crash-file>"
  fi
done

if ((${#failed[@]})); then
  printf 'ci/fuzz.sh: FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
echo "ci/fuzz.sh: ${#targets[@]} target(s) ran ${seconds}s each without a finding"
