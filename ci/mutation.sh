#!/usr/bin/env bash
# ci/mutation.sh: the conformance harness's score on mechanical mutants of reference/src.
#
#   ci/mutation.sh [N] [SEED] [--resume] [--report-only] [--threshold PCT] [--misses-md FILE]
#
# A scheduled job, not part of ci/test.sh (a sample of 40 takes about an hour on 2 cores).
# universalmutator generates mutants of reference/src; a seeded sample of N (default 40) that
# compile is built one at a time in build/mutation/ and run against the harness, and, for the
# mutants the harness misses, against the white-box tests (ctest of reference/ and fuzz/, pytest
# interop/). Score = killed by the harness / killed by anything. Writes reports/mutation.md and
# reports/mutation.json after every mutant. Exit 1 when the score is below --threshold (90) or a
# harness miss is neither killed nor exempt (conformance/mutation/exemptions.txt); with
# --report-only it prints that and exits 0. See conformance/mutation/mutation.py.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

run_setup
exec "$PYTHON" "$ROOT/conformance/mutation/mutation.py" --source-dir "$ROOT" \
  --work-dir "$ROOT/build/mutation" --reports "$ROOT/reports" "$@"
