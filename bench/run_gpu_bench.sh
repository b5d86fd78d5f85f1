#!/usr/bin/env bash
# bench/run_gpu_bench.sh: on a GPU machine, run bench_cuda_roundtrip with MPS off, then with MPS
# on, keep the JSON under reports/ and print the tables (bench/report.py).
#
#   bench/run_gpu_bench.sh [BINARY] [-- extra Google Benchmark flags...]
#
# BINARY    bench_cuda_roundtrip to run; default $CUFRAMES_BENCH_BIN, else the first of
#           build/gpu/bench/ (ci/gpu.sh), build/default/bench/ and build-bench/bench/ that has one.
#           The GPU machines have no Google Benchmark, so a binary built elsewhere (static cudart)
#           is carried there with its libbenchmark.so.* beside it: this script puts the binary's
#           folder first on LD_LIBRARY_PATH.
# Flags     default --benchmark_repetitions=5 (medians in the table); anything after "--" is
#           passed on as well.
#
# MPS is started by this script only (bench/mps.sh: private directories, stopped also when a run
# fails). The "MPS off" run refuses to run while an MPS control daemon is already up (its numbers
# would be MPS numbers). Clocks, compute mode and MIG are never touched.
#
# Each MPS state also runs bench/py_cuda_handoff.py: cuframes for Python against
# torch.multiprocessing (skipped, saying why, without CuPy or PyTorch).
#
# Output: reports/bench-cuda-roundtrip-nomps.json, reports/bench-cuda-roundtrip-mps.json,
# reports/bench-py-cuda-handoff-{nomps,mps}.json.
# Exit status: 0 when both runs completed (targets missed or not: see the table), 1 when a run
# failed, 2 when there is no binary or no GPU.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/mps.sh
source "$ROOT/bench/mps.sh"

bin="${CUFRAMES_BENCH_BIN:-}"
if [[ $# -gt 0 && "$1" != "--" ]]; then
  bin="$1"
  shift
fi
[[ "${1:-}" == "--" ]] && shift
extra=("$@")
if [[ -z "$bin" ]]; then
  for cand in build/gpu/bench/bench_cuda_roundtrip build/default/bench/bench_cuda_roundtrip \
              build-bench/bench/bench_cuda_roundtrip; do
    if [[ -x "$cand" ]]; then
      bin="$cand"
      break
    fi
  done
fi
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "run_gpu_bench.sh: no bench_cuda_roundtrip binary (build it where Google Benchmark and" \
       "nvcc exist: cmake --preset default -DCUFRAMES_BENCH=ON && cmake --build --preset" \
       "default --target bench_cuda_roundtrip; or pass its path)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
bin_dir="$(dirname "$bin")"
export LD_LIBRARY_PATH="$bin_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L; then
  echo "run_gpu_bench.sh: SKIP: no NVIDIA GPU here (nvidia-smi)" >&2
  exit 2
fi

mkdir -p reports
out_off="$ROOT/reports/bench-cuda-roundtrip-nomps.json"
out_on="$ROOT/reports/bench-cuda-roundtrip-mps.json"
flags=(--benchmark_repetitions=5 --benchmark_format=console --benchmark_out_format=json
       "${extra[@]}")

# ---------------------------------------------------------------------------- MPS off
if mps_running; then
  echo "run_gpu_bench.sh: an MPS control daemon is already running; stop it first (the" \
       "'MPS off' run would measure MPS)" >&2
  exit 1
fi
echo "==> bench_cuda_roundtrip, MPS off"
env -u CUDA_MPS_PIPE_DIRECTORY -u CUDA_MPS_LOG_DIRECTORY \
  "$bin" --benchmark_out="$out_off" --benchmark_context=mps=off "${flags[@]}"
# Python users' view: cuframes for Python against torch.multiprocessing, same MPS state.
# (exit 77: no CuPy or PyTorch here, the reason is printed; not a failure)
py_handoff() {  # py_handoff LABEL JSON
  echo "==> bench/py_cuda_handoff.py, $1"
  local rc=0
  python3 "$ROOT/bench/py_cuda_handoff.py" --label "$1" --json "$2" || rc=$?
  ((rc == 0 || rc == 77))
}
py_failed=0
(unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
 py_handoff mps=off "$ROOT/reports/bench-py-cuda-handoff-nomps.json") || py_failed=1

# ---------------------------------------------------------------------------- MPS on
if ! command -v nvidia-cuda-mps-control >/dev/null; then
  echo "run_gpu_bench.sh: SKIP the MPS run: nvidia-cuda-mps-control not found" >&2
  python3 "$ROOT/bench/report.py" "$out_off"
  exit "$py_failed"
fi
trap mps_stop EXIT
mps_start || exit 1
echo "==> bench_cuda_roundtrip, MPS on"
"$bin" --benchmark_out="$out_on" --benchmark_context=mps=on "${flags[@]}"
py_handoff mps=on "$ROOT/reports/bench-py-cuda-handoff-mps.json" || py_failed=1
mps_stop
trap - EXIT

echo
python3 "$ROOT/bench/report.py" "$out_off" "$out_on"
exit "$py_failed"
