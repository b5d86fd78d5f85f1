#!/usr/bin/env bash
# ci/spec-gate.sh: the spec-change gate. Does this change of spec/ break existing peers?
#
#   ci/spec-gate.sh [--against REF] [--no-behaviour] [--reports DIR] [--build-dir DIR]
#   ci/spec-gate.sh --rules
#   ci/spec-gate.sh --release VERSION [--commit REF]     cut a release (spec/releases/VERSION)
#
# REF is a released version (0.2) or any git ref; default: the newest release in
# spec/releases/index.json. Semantic diff of spec/cuframes.json (every change named by a rule,
# BREAKING / COMPATIBLE / EDITORIAL), MUST coverage of new or changed MUSTs, and the behaviour
# step: REF is built in build/spec-gate/ref-<sha> (reused) and the two trees' harnesses and
# adapters run against each other. Reports: reports/spec-gate.{txt,md,json,annotations}.
# Exit 0 compatible (or breaking with a version bump), 1 breaking without a bump, an untested
# MUST or a requirement verdict that flips, 2 the gate could not run.
# Everything is in spec/tools/spec_gate.py (its --help); this script sets up and forwards.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

args=()
release=""
while (($#)); do
  case "$1" in
    --release) release="${2:?--release needs a VERSION}"; shift 2 ;;
    --release=*) release="${1#--release=}"; shift ;;
    --rules|--help|-h) exec "$PYTHON" spec/tools/spec_gate.py "$1" ;;
    *) args+=("$1"); shift ;;
  esac
done

if [[ -n "$release" ]]; then
  exec "$PYTHON" spec/tools/spec_gate.py release "$release" "${args[@]}"
fi

run_setup
log "spec gate: python3 spec/tools/spec_gate.py ${args[*]}"
rc=0
"$PYTHON" spec/tools/spec_gate.py "${args[@]}" || rc=$?
exit "$rc"
