#!/usr/bin/env bash
# ci/interop.sh: the implementation x implementation interop matrix.
#
#   ci/interop.sh [--impl NAME ...] [--kinds host,cuda] [--modes v2,v1-pub,v1-sub]
#                 [--scenarios F,P,M,C,K,E] [--reports DIR]
#
# Every conformance/manifests/*.json is an implementation (NAME is the file's stem, or give a
# manifest path); --impl (several names, repeatable, or comma-separated) narrows the set. Each
# ordered pair (publisher, subscriber) runs every version mode and scenario on every kind (cuda
# cells need an NVIDIA GPU and both manifests claiming a CUDA kind; otherwise they are N/A with
# the reason).
# Expected results come from the twin's negotiation rules (interop/matrix/expect.py). Writes
# reports/interop-matrix.{md,json,html}, prints the Markdown matrix, and exits non-zero when any
# applicable cell is red. Builds the default preset first (CUFRAMES_SKIP_BUILD=1 skips it).
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() { sed -n '2,/^[^#]/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit "${1:-0}"; }

impls=() kinds="host,cuda" modes="" scenarios="" reports="$ROOT/reports"
while (($#)); do
  case "$1" in
    --impl)  # one or more names (or comma lists) up to the next option
      [[ $# -ge 2 && "$2" != --* ]] || usage 1
      shift
      while (($#)) && [[ "$1" != --* ]]; do
        IFS=, read -ra more <<<"$1"; impls+=("${more[@]}"); shift
      done ;;
    --kinds) [[ $# -ge 2 ]] || usage 1; kinds="$2"; shift 2 ;;
    --modes) [[ $# -ge 2 ]] || usage 1; modes="$2"; shift 2 ;;
    --scenarios) [[ $# -ge 2 ]] || usage 1; scenarios="$2"; shift 2 ;;
    --reports) [[ $# -ge 2 ]] || usage 1; reports="$(abs_path "$2")"; shift 2 ;;
    -h|--help) usage 0 ;;
    *) printf 'ci/interop.sh: unknown argument %q\n' "$1" >&2; usage 1 ;;
  esac
done
# A manifest given as a path is resolved against the caller's cwd.
for i in "${!impls[@]}"; do
  [[ "${impls[$i]}" == *.json ]] && impls[i]="$(abs_path "${impls[$i]}")"
done

if [[ "${CUFRAMES_SKIP_BUILD:-0}" != 1 ]]; then
  run_setup
  configure_preset default
  build_preset default
fi

export CUFRAMES_BUILD_DIR="${CUFRAMES_BUILD_DIR:-$ROOT/build/default}"
CUFRAMES_MATRIX_IMPLS="$(IFS=,; echo "${impls[*]}")"
export CUFRAMES_MATRIX_IMPLS
export CUFRAMES_MATRIX_KINDS="$kinds" CUFRAMES_MATRIX_MODES="$modes"
export CUFRAMES_MATRIX_SCENARIOS="$scenarios" CUFRAMES_MATRIX_REPORTS="$reports"
unset CUFRAMES_MATRIX_QUICK
rm -f "$reports"/interop-matrix.{md,json,html}

log "interop matrix: pytest interop/matrix/test_matrix.py (reports in $reports)"
start=$SECONDS
rc=0
"$PYTHON" -m pytest -q -rs -p no:cacheprovider interop/matrix/test_matrix.py || rc=$?
echo
if [[ -f "$reports/interop-matrix.md" ]]; then
  cat "$reports/interop-matrix.md"
else
  printf 'ci/interop.sh: no matrix was written (pytest exit %s)\n' "$rc" >&2
  ((rc)) || rc=1
fi
note "matrix took $((SECONDS - start)) s; reports: $reports/interop-matrix.{md,json,html}"
case "$rc" in
  0) echo "ci/interop.sh: every applicable cell is green" ;;
  *) printf 'ci/interop.sh: FAILED: red cells in the matrix (pytest exit %s)\n' "$rc" >&2; exit 1 ;;
esac
