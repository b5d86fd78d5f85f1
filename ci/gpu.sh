#!/usr/bin/env bash
# ci/gpu.sh: on a GPU machine, build with the CUDA kind and run what needs a GPU.
#
#   ci/gpu.sh
#
# Steps: ci/setup.sh --no-apt (the GPU runners have no package mirrors); find nvcc (adds
# /usr/local/cuda/bin to PATH when needed); when no installed GoogleTest is found, build the one
# in /usr/src/googletest into build/deps (once); configure the `gpu` preset (build/gpu,
# CUFRAMES_CUDA=ON, CMAKE_CUDA_ARCHITECTURES=native unless CUFRAMES_CUDA_ARCHITECTURES says
# otherwise); build; then
#   1. ctest -L cuda                      the CUDA-kind tests
#   2. cuframes-conform                   for each conformance/manifests/*cuda*.json (the CUDA_IPC
#                                         cases of suites/cuda.cc and, through the CUPTI injection
#                                         library, suites/cuda_inject.cc, with the host ones), then the
#                                         CUDA kill check conformance/kill_check_cuda.py (every
#                                         conformance/variants/cuda/*.patch must fail a CUDA case)
#   3. python3 -m pytest -m cuda interop  the CUDA-marked interop scenarios; then cuframes for
#      Python's CUDA tests and the interop matrix (reference x python, host and cuda cells)
#   4. every bench_<name> in build/gpu/bench, JSON to reports/gpu-bench-<name>.json, then the
#      table of bench/report.py (the host-side ones as medians of 3: issue 13's fan-out, handoff
#      and packet targets, each flagged pass/MISS)
#   5. bench/scaling.py --kind cuda: N publishers x M subscribers (a reduced grid), MPS off, then
#      on (points over 48 processes skipped), reports/scaling-cuda{,-mps}.{json,png}
#   6. video/nvdec/pipeline.py            NVDEC -> CUDA frame ring -> GPU-checksumming
#                                         subscribers, verified against a CPU decode; fps table,
#                                         reports/nvdec-pipeline.json (PyAV and PyNvVideoCodec
#                                         from wheels in .gpu/wheels; skipped with its reason)
#   7. bench/py_host_handoff.py           host frame handoff, cuframes for Python against iceoryx2
#                                         (iceoryx2 from wheels in $CUFRAMES_WHEELS_DIR, default
#                                         .gpu/wheels: bench/iceoryx2_wheels.sh; else skipped)
# Google Benchmark is built in only when an installed one is found (the GPU runners have none;
# carry one and name its prefix in CUFRAMES_DEPS_PREFIX, or put it in .gpu/prefix).
# Each step that has nothing to run says so. Exit status: non-zero if any step failed.
# CUFRAMES_GPU_STEPS (comma list of ctest, conform, killcheck, interop, python, matrix, bench,
# scaling, nvdec, pyhost; default all) runs only the steps named, to spend a short GPU lease on
# what changed; each step left out is printed as skipped. CUFRAMES_GPU_KILLCHECK_ONLY (comma list
# of variant names) narrows the CUDA kill check the same way.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source=bench/mps.sh
source "$(dirname "${BASH_SOURCE[0]}")/../bench/mps.sh"

# GPU runners have many cores; the 2-job default is for small CPU machines.
JOBS="${CUFRAMES_JOBS:-$(nproc)}"
run_setup --no-apt

if ! command -v nvcc >/dev/null 2>&1; then
  if [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH="/usr/local/cuda/bin:$PATH"
  else
    die "ci/gpu.sh: no nvcc on PATH or in /usr/local/cuda/bin: not a CUDA machine?"
  fi
fi
note "nvcc: $(command -v nvcc)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/    gpu: /'
else
  note "nvidia-smi not found: CUDA tests may report themselves skipped"
fi

# Dependency prefixes: carried builds first, then a GoogleTest built here when none is installed.
deps_prefixes

bench_flag=-DCUFRAMES_BENCH=OFF
if find_cmake_package benchmark; then
  bench_flag=-DCUFRAMES_BENCH=ON
else
  skip "Google Benchmark is not installed here: building without bench/ (GPU benches skipped)"
fi

prefix_path="$(deps_prefix_path)"
configure_preset gpu "$bench_flag" \
  "-DCMAKE_CUDA_ARCHITECTURES=${CUFRAMES_CUDA_ARCHITECTURES:-native}" \
  ${prefix_path:+"-DCMAKE_PREFIX_PATH=$prefix_path"}
build_preset gpu
# The CUPTI injection library of the */cuda-inject-* conformance cases (conformance/inject/).
if [[ -f "$ROOT/build/gpu/conformance/inject/libcuframes_inject.so" ]]; then
  note "CUPTI injection: build/gpu/conformance/inject/libcuframes_inject.so"
else
  skip "CUPTI injection library not built (no CUPTI in the toolkit?): the */cuda-inject-* cases will say UNSUPPORTED"
fi

failed=()
steps=",${CUFRAMES_GPU_STEPS:-ctest,conform,killcheck,interop,python,matrix,bench,scaling,nvdec,pyhost},"
want() {  # want STEP: true when STEP is selected, else prints the skip
  [[ "$steps" == *",$1,"* ]] && return 0
  skip "$1: not in CUFRAMES_GPU_STEPS"
  return 1
}
mkdir -p "$ROOT/reports"
rm -f "$ROOT"/reports/gpu-bench-*.json

# 1. CUDA-kind tests
n_cuda="$(ctest --preset gpu -N | sed -n 's/^Total Tests: *//p')"
if ! want ctest; then
  :
elif [[ "${n_cuda:-0}" == 0 ]]; then
  skip "ctest -L cuda: no test carries the 'cuda' label yet"
else
  log "ctest -L cuda ($n_cuda tests)"
  ctest --preset gpu --output-on-failure || failed+=("ctest -L cuda")
fi

# 2. CUDA-kind conformance
conform="$ROOT/build/gpu/conformance/cuframes-conform"
mapfile -t manifests < <(compgen -G "$ROOT/conformance/manifests/*cuda*.json" | sort || true)
if [[ ! -x "$conform" ]]; then
  skip "conformance: build/gpu/conformance/cuframes-conform was not built"
elif ((${#manifests[@]} == 0)); then
  skip "conformance: no conformance/manifests/*cuda*.json"
else
  if want conform; then
    for m in "${manifests[@]}"; do
      log "conform: $(basename "$m")"
      "$conform" --manifest "$m" --reports "$ROOT/reports/" || failed+=("conform $(basename "$m")")
    done
  fi
  if want killcheck; then
    log "kill check (CUDA): conformance/kill_check_cuda.py"
    rc=0
    "$PYTHON" "$ROOT/conformance/kill_check_cuda.py" --source-dir "$ROOT" --harness "$conform" \
      --work-dir "$ROOT/build/gpu/build-variants-cuda" --reports "$ROOT/reports/" \
      --jobs "$JOBS" --cuda-architectures "${CUFRAMES_CUDA_ARCHITECTURES:-native}" \
      ${CUFRAMES_GPU_KILLCHECK_ONLY:+--only "$CUFRAMES_GPU_KILLCHECK_ONLY"} || rc=$?
    case "$rc" in
      0) ;;
      77) skip "kill check (CUDA): nothing to judge here (reason above)" ;;
      *) failed+=("kill_check_cuda.py (exit $rc)") ;;
    esac
  fi
fi

# 3. CUDA interop scenarios
if ! want interop; then
  :
elif [[ -d interop ]] && [[ -n "$(find interop -name 'test_*.py' -print -quit)" ]]; then
  log "pytest -m cuda interop/"
  rc=0
  CUFRAMES_BUILD_DIR="$ROOT/build/gpu" "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda \
    interop || rc=$?
  case "$rc" in
    0) ;;
    5) skip "pytest -m cuda interop/: no test marked cuda" ;;
    *) failed+=("pytest -m cuda interop/ (exit $rc)") ;;
  esac
else
  skip "pytest interop/: no interop tests"
fi

# 3b. cuframes for Python on the GPU: its CUDA_IPC tests, then the interop matrix with its host
# and cuda columns (reference x python, both roles). run_setup installed the package.
if want python && [[ -f "$ROOT/python/tests/test_cuda.py" ]]; then
  log "pytest python/tests/test_cuda.py (cuframes for Python, CUDA_IPC)"
  "$PYTHON" -m pytest -q -rs -p no:cacheprovider "$ROOT/python/tests/test_cuda.py" ||
    failed+=("pytest python/tests/test_cuda.py")
fi
if want matrix && [[ -x "$ROOT/ci/interop.sh" && -f "$ROOT/conformance/manifests/python-cuda.json" ]]; then
  # CUFRAMES_GPU_MATRIX_KINDS narrows the kinds (e.g. cuda, when the host cells ran already)
  mkinds="${CUFRAMES_GPU_MATRIX_KINDS:-host,cuda}"
  log "interop matrix, $mkinds: ci/interop.sh --impl reference-cuda python-cuda"
  CUFRAMES_SKIP_BUILD=1 CUFRAMES_BUILD_DIR="$ROOT/build/gpu" \
    "$ROOT/ci/interop.sh" --impl reference-cuda python-cuda --kinds "$mkinds" ||
    failed+=("ci/interop.sh ($mkinds)")
fi

# 4. GPU benchmarks
mapfile -t benches < <(executables_matching "$ROOT/build/gpu/bench" 'bench_*')
if ! want bench; then
  :
elif ((${#benches[@]} == 0)); then
  skip "benchmarks: no bench_* executables in build/gpu/bench"
else
  for exe in "${benches[@]}"; do
    name="$(basename "$exe")"
    # The CUDA round trip runs twice, MPS off then on (BRIEF section 4), through its own script.
    if [[ "$name" == bench_cuda_roundtrip ]]; then
      bash "$ROOT/bench/run_gpu_bench.sh" "$exe" || failed+=("$name")
      continue
    fi
    log "bench: $name"
    # Host-side benches: medians of 3, so one run of this script judges the targets.
    "$exe" --benchmark_format=console --benchmark_out="$ROOT/reports/gpu-bench-${name#bench_}.json" \
      --benchmark_out_format=json --benchmark_repetitions=3 \
      --benchmark_report_aggregates_only=true || failed+=("$name")
  done
  shopt -s nullglob
  jsons=("$ROOT"/reports/gpu-bench-*.json)
  if [[ -f "$ROOT/bench/report.py" ]] && ((${#jsons[@]})); then
    log "bench: report (bench/report.py)"
    "$PYTHON" "$ROOT/bench/report.py" "${jsons[@]}" || failed+=("bench/report.py")
  fi
fi

# 5. N publishers x M subscribers with the CUDA kind (bench/scaling.py; a reduced grid: the full
# one, by hand, is --n 1,2,4,8,16,32 --m 1,2,4,8)
if want scaling; then
  if [[ -x "$ROOT/build/gpu/bench/cuframes-scaling-worker" ]]; then
    scaling_grid() {  # scaling_grid LABEL SUFFIX [extra scaling.py flags...]
      log "scaling: bench/scaling.py --kind cuda, $1"
      "$PYTHON" "$ROOT/bench/scaling.py" --kind cuda --n 1,4,16,32 --m 1,8 --fps 30,240 \
        --seconds 1 --worker "$ROOT/build/gpu/bench/cuframes-scaling-worker" --label "$1" \
        --json "$ROOT/reports/scaling-cuda$2.json" --png "$ROOT/reports/scaling-cuda$2.png" \
        "${@:3}" || failed+=("bench/scaling.py --kind cuda, $1")
    }
    if mps_running; then
      skip "scaling: an MPS daemon is already up, so neither grid would measure what it says"
    else
      # Without MPS every subscriber's CUDA context time-slices the GPU; at 144 and 288 processes
      # the subscribers never all attach within the worker's wait (first ci/gpu.sh run,
      # 2026-12-02: wait_subscribers TIMEOUT), so points over 64 processes are skipped.
      scaling_grid mps=off "" --max-processes 64
      # The same grid under MPS: contexts share the GPU instead of time-slicing (BRIEF section
      # 4). MPS serves at most 48 client processes per GPU, so larger points are skipped.
      if command -v nvidia-cuda-mps-control >/dev/null; then
        trap mps_stop EXIT
        if mps_start; then
          scaling_grid mps=on -mps --max-processes 48
        else
          failed+=("scaling: MPS did not start")
        fi
        mps_stop
        trap - EXIT
      else
        skip "scaling under MPS: nvidia-cuda-mps-control not found"
      fi
    fi
  else
    skip "scaling: build/gpu/bench/cuframes-scaling-worker was not built"
  fi
fi

# 6. NVDEC pipeline (issue 16 item 4); its table is the last thing it prints
if want nvdec; then
  log "NVDEC pipeline: video/nvdec/pipeline.py"
  rc=0
  # CUFRAMES_NVDEC_ARGS: extra arguments, e.g. "--case h264:1920x1080:600" for a shorter run
  # shellcheck disable=SC2086
  "$PYTHON" "$ROOT/video/nvdec/pipeline.py" --build-dir "$ROOT/build/gpu" \
    --reports "$ROOT/reports" ${CUFRAMES_NVDEC_ARGS:-} || rc=$?
  case "$rc" in
    0) ;;
    77) skip "NVDEC pipeline: skipped (reason above)" ;;
    *) failed+=("video/nvdec/pipeline.py (exit $rc)") ;;
  esac
fi

# 7. Host frame handoff between two Python processes, cuframes (HOST kind) against iceoryx2
# (issue 13 item 4). The runners have no internet: a missing iceoryx2 is installed from the
# wheels that bench/iceoryx2_wheels.sh put in $CUFRAMES_WHEELS_DIR (default .gpu/wheels).
if want pyhost; then
  wheels="${CUFRAMES_WHEELS_DIR:-$ROOT/.gpu/wheels}"
  if ! "$PYTHON" -c 'import iceoryx2' >/dev/null 2>&1 &&
    compgen -G "$wheels/iceoryx2-*.whl" >/dev/null; then
    note "pyhost: installing iceoryx2 from $wheels"
    pip_w=("$PYTHON" -m pip install -q --no-index --find-links "$wheels" iceoryx2)
    "${pip_w[@]}" || "${pip_w[@]}" --break-system-packages || note "pyhost: pip could not install it"
  fi
  log "host handoff: bench/py_host_handoff.py (cuframes for Python vs iceoryx2)"
  rc=0
  # CUFRAMES_PYHOST_ARGS: extra arguments, e.g. "--frames 500" for a shorter run
  # shellcheck disable=SC2086
  "$PYTHON" "$ROOT/bench/py_host_handoff.py" --label "gpu.sh $(hostname)" \
    --json "$ROOT/reports/bench-py-host-handoff.json" ${CUFRAMES_PYHOST_ARGS:-} || rc=$?
  case "$rc" in
    0) ;;
    77) skip "host handoff: skipped (reason above; for iceoryx2 on a runner without internet:" \
      "bench/iceoryx2_wheels.sh where there is internet, then carry .gpu/wheels)" ;;
    *) failed+=("bench/py_host_handoff.py (exit $rc)") ;;
  esac
fi

if ((${#failed[@]})); then
  printf 'ci/gpu.sh: FAILED: %s\n' "${failed[*]}" >&2
  exit 1
fi
echo "ci/gpu.sh: done"
