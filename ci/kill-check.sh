#!/usr/bin/env bash
# ci/kill-check.sh: the full kill check, every deliberately broken variant of the reference.
#
#   ci/kill-check.sh [NAME,...]     all variants, or only the named ones
#
# Builds the default preset (the harness), then runs conformance/kill_check.py over every
# conformance/variants/*.patch: each variant's adapters must fail at least one case that passes
# against the unpatched reference. About 6-13 minutes on a 2-core machine, so ci/test.sh runs a
# sample of 8 (the ctest `conformance_kill_check_sample`, drawn from the git commit) and a
# scheduled job runs this script. Writes reports/killcheck/killcheck.json and rewrites
# conformance/variants/killed_by.json (the cases that killed each variant: the sampled run tries
# them first; commit it when it changes).
# Exit status: 0 when every variant was killed, 1 otherwise, 2 for a setup error.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

only=()
if (($#)); then
  [[ "$1" =~ ^[A-Za-z0-9_,.-]+$ ]] || die "usage: ci/kill-check.sh [NAME,...]" 2
  only=(--only "$1")
fi

run_setup
configure_preset default
log "build: cmake --build --preset default -j $JOBS --target cuframes-conform"
cmake --build --preset default -j "$JOBS" --target cuframes-conform

log "kill check (all variants unless named)"
"$PYTHON" "$ROOT/conformance/kill_check.py" --source-dir "$ROOT" \
  --harness "$ROOT/build/default/conformance/cuframes-conform" \
  --work-dir "$ROOT/build/default/build-variants-full" \
  --reports "$ROOT/reports/killcheck" --write-hints "${only[@]}"
