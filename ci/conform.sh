#!/usr/bin/env bash
# ci/conform.sh: run the conformance suite against the implementation a manifest names.
#
#   ci/conform.sh [MANIFEST]      MANIFEST defaults to conformance/manifests/reference.json
#
# Sets up what is missing, builds the default preset, then runs
#   build/default/conformance/cuframes-conform --manifest MANIFEST --reports reports/
# which prints the per-requirement report and writes it under reports/. A relative MANIFEST is
# taken from the caller's cwd, else from the repository root. Exit status: the harness's; 2 when
# the harness binary or the manifest does not exist.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

manifest_arg="${1:-conformance/manifests/reference.json}"
if [[ "$manifest_arg" == /* ]]; then
  manifest="$manifest_arg"
elif [[ -e "$(abs_path "$manifest_arg")" ]]; then
  manifest="$(abs_path "$manifest_arg")"
else
  manifest="$ROOT/$manifest_arg"
fi

run_setup
configure_preset default
build_preset default

conform="$ROOT/build/default/conformance/cuframes-conform"
if [[ ! -x "$conform" ]]; then
  echo "ci/conform.sh: the harness binary $conform was not built (conformance/ does not build" \
       "it yet); nothing to run" >&2
  exit 2
fi
if [[ ! -f "$manifest" ]]; then
  echo "ci/conform.sh: manifest not found: $manifest_arg" >&2
  exit 2
fi

mkdir -p "$ROOT/reports"
log "conform: $conform --manifest $manifest --reports reports/"
exec "$conform" --manifest "$manifest" --reports "$ROOT/reports/"
