#!/usr/bin/env bash
# ci/soak.sh: a chaos soak of the reference under load (interop/soak/soak.py).
#
#   ci/soak.sh [MINUTES] [--seed S] [--subscribers N] [--kind host|cuda] [--report FILE]
#
# One publisher with frames and packets (proto v2, packet ring), N subscribers (default 16),
# and for MINUTES (default 10) a schedule drawn from the seed SIGKILLs, SIGSTOPs/SIGCONTs,
# restarts or arms with a fault point (CUFRAMES_FAULT) random subscribers and the publisher.
# The run fails at the first violated invariant (torn, lost or out-of-order delivery; a surviving
# subscriber silent past its bound; an unexpected exit; a leaked descriptor, mapping or file; RSS
# growth) and prints its evidence. Summary on stdout, JSON in reports/soak.json. The same seed
# replays the same schedule. Everything runs under nice (the machines are shared).
# Exit status: 0 pass, 1 a violation, 2 usage.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

run_setup
configure_preset default
build_preset default

export CUFRAMES_BUILD_DIR="$ROOT/build/default"
mkdir -p "$ROOT/reports"
log "soak: interop/soak/soak.py $*"
exec nice -n 10 "$PYTHON" "$ROOT/interop/soak/soak.py" "$@"
