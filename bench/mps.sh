# shellcheck shell=bash
# bench/mps.sh: start and stop a private CUDA MPS control daemon for a benchmark run.
# Sourced (not run) by bench/run_gpu_bench.sh and ci/gpu.sh:
#
#   source bench/mps.sh
#   mps_running && echo "an MPS daemon is up"   # true when any MPS control daemon runs
#   mps_start || exit 1                          # exports CUDA_MPS_{PIPE,LOG}_DIRECTORY
#   ...                                          # CUDA processes started here run under MPS
#   mps_stop                                     # unsets them again
#
# The daemon lives in private directories (/tmp/mps-pipe, /tmp/mps-log) and is stopped with
# `echo quit | nvidia-cuda-mps-control`; callers arm `trap mps_stop EXIT` so a failed run stops it
# too. Clocks, compute mode and MIG are never touched.

mps_running() {
  pgrep -x nvidia-cuda-mps-control >/dev/null 2>&1
}

mps_start() {
  if ! command -v nvidia-cuda-mps-control >/dev/null; then
    echo "mps.sh: nvidia-cuda-mps-control not found" >&2
    return 1
  fi
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  echo "==> starting MPS (pipe $CUDA_MPS_PIPE_DIRECTORY)"
  nvidia-cuda-mps-control -d || return 1
  # Readiness: the daemon's control socket appears (bounded: 10 s).
  local _
  for _ in $(seq 100); do
    [[ -S "$CUDA_MPS_PIPE_DIRECTORY/control" ]] && return 0
    sleep 0.1
  done
  echo "mps.sh: MPS did not start (no $CUDA_MPS_PIPE_DIRECTORY/control after 10 s)" >&2
  mps_stop
  return 1
}

mps_stop() {
  if [[ -n "${CUDA_MPS_PIPE_DIRECTORY:-}" ]]; then
    echo quit | nvidia-cuda-mps-control || true
    echo "==> MPS stopped"
  fi
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
}
