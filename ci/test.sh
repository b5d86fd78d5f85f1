#!/usr/bin/env bash
# ci/test.sh: set up what is missing, build the default preset, run every CPU test.
#
#   ci/test.sh
#
# Steps: ci/setup.sh; cmake --preset default (build/default); build with $CUFRAMES_JOBS (2)
# jobs; ctest --output-on-failure -j $CUFRAMES_JOBS (the kill check as a sample of 8 variants:
# ci/kill-check.sh runs them all); then python3 -m pytest over interop/, conformance/,
# python/ (cuframes for Python), video/ and bench/ for each that has tests. pytest sees
# CUFRAMES_BUILD_DIR=<repo>/build/default. Every step runs even after an earlier test step
# failed; the exit status is non-zero if any step failed. Skips are printed with their reason.
# .ci/run calls this script.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The interop matrix under pytest interop/ runs reduced (reference x reference in full, other
# implementations in scenario F with the reference); ci/interop.sh runs the whole matrix.
export CUFRAMES_MATRIX_QUICK=1

run_setup
configure_preset default
build_preset default

failed=()
log "ctest (build/default)"
if ! ctest --preset default --output-on-failure -j "$JOBS"; then
  failed+=("ctest")
fi

export CUFRAMES_BUILD_DIR="$ROOT/build/default"
for dir in interop conformance python video bench; do
  if [[ ! -d "$dir" ]]; then
    skip "pytest $dir/: the folder does not exist"
    continue
  fi
  if [[ -z "$(find "$dir" \( -name 'test_*.py' -o -name '*_test.py' \) -print -quit)" ]]; then
    skip "pytest $dir/: no test_*.py or *_test.py files"
    continue
  fi
  log "pytest $dir/"
  rc=0
  "$PYTHON" -m pytest -q -rs -p no:cacheprovider "$dir" || rc=$?
  case "$rc" in
    0) ;;
    5) skip "pytest $dir/: no tests collected (pytest exit 5)" ;;
    *) failed+=("pytest $dir/ (exit $rc)") ;;
  esac
done

if ((${#failed[@]})); then
  printf 'ci/test.sh: FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
echo "ci/test.sh: all CPU tests passed"
