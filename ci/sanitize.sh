#!/usr/bin/env bash
# ci/sanitize.sh: build a sanitizer preset and run its tests.
#
#   ci/sanitize.sh [address|thread] [CTEST ARGS...]
#                                       default: address (ASan + UBSan with
#                                       -fno-sanitize-recover=all, build/asan);
#                                       thread: TSan, build/tsan (the CUDA kind is off there);
#                                       CTEST ARGS (e.g. -R REGEX, -E REGEX) go to ctest
#
# The compiler is CMake's default (c++) unless CC/CXX say otherwise, e.g.
#   CC=clang CXX=clang++ ci/sanitize.sh thread                       build/tsan-clang14
#   CC=/opt/gcc/bin/gcc CXX=/opt/gcc/bin/g++ ci/sanitize.sh address  build/asan-gcc13
# Without CC/CXX the build directory is build/asan or build/tsan; with them it is named after the
# compiler and its major version, so runs with different compilers keep their own builds (and can
# run side by side). A build directory configured with another compiler is reconfigured from
# scratch (--fresh).
# Verified with GCC 12 and clang 14 (Debian 12) and GCC 13 (Ubuntu 24.04); see README.md.
# The TSan build also runs fuzz.seqlock_tsan_probe.*: a seqlock reader without its re-check must
# be reported by TSan (fuzz/properties/seqlock_tsan_probe.cpp).
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mode="${1:-address}"
case "$mode" in
  address) preset=asan ;;
  thread) preset=tsan ;;
  *) die "usage: ci/sanitize.sh [address|thread] [CTEST ARGS...]" 2 ;;
esac
shift $(($# > 0 ? 1 : 0))

run_setup
# Machines without a package manager (the GPU runners) get GoogleTest from /usr/src/googletest.
deps_prefixes
prefix_path="$(deps_prefix_path)"

cxx="$(command -v "${CXX:-c++}")" || die "no C++ compiler '${CXX:-c++}' on PATH"
cc="$(command -v "${CC:-cc}")" || die "no C compiler '${CC:-cc}' on PATH"
note "compilers: $cc, $cxx ($("$cxx" --version | head -n 1))"

# A GCC installed outside the system paths (GCC 13 in /opt/gcc on the GPU runners) links the
# tests against its own shared sanitizer runtime and libstdc++, which the dynamic loader may not
# find (or finds in an older or newer version): the test programs get an rpath to its runtime
# directory. clang links its sanitizer runtimes statically, and a system GCC's live in /usr/lib.
runtime="$([[ "$preset" == tsan ]] && echo libtsan.so || echo libasan.so)"
runtime_dir=""
runtime_path="$("$cxx" -print-file-name="$runtime" 2>/dev/null || true)"
if [[ "$runtime_path" == /* && -e "$runtime_path" ]]; then
  runtime_dir="$(dirname "$(readlink -f "$runtime_path")")"
  case "$runtime_dir" in
    /usr/lib* | /lib*) runtime_dir="" ;;
    *) note "sanitizer runtime in $runtime_dir: the test programs get it as their rpath" ;;
  esac
fi
rpath_args=()
probe_rpath=()
if [[ -n "$runtime_dir" ]]; then
  rpath_args=("-DCMAKE_BUILD_RPATH=$runtime_dir")
  probe_rpath=("-Wl,-rpath,$runtime_dir")
fi
bdir_name="$preset"
if [[ -n "${CC:-}${CXX:-}" ]]; then
  compiler_id=gcc
  "$cxx" --version | head -n 1 | grep -q clang && compiler_id=clang
  bdir_name="$preset-$compiler_id$("$cxx" -dumpversion | cut -d. -f1)"
fi
bdir="$ROOT/build/$bdir_name"
note "build directory: build/$bdir_name"

# The compilers are named only on a first (or fresh) configure: CMake never switches the
# compiler of an existing build directory.
compiler_args=("-DCMAKE_C_COMPILER=$cc" "-DCMAKE_CXX_COMPILER=$cxx")
cache="$bdir/CMakeCache.txt"
if [[ -f "$cache" ]]; then
  cached="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")"
  if [[ "$(readlink -f "$cached")" != "$(readlink -f "$cxx")" ]]; then
    note "build/$bdir_name was configured with $cached: reconfiguring it from scratch"
    compiler_args=(--fresh "${compiler_args[@]}")
  else
    compiler_args=()
  fi
fi
configure_preset "$preset" -B "$bdir" "${compiler_args[@]}" "${rpath_args[@]}" \
  ${prefix_path:+"-DCMAKE_PREFIX_PATH=$prefix_path"}
log "build: cmake --build build/$bdir_name -j $JOBS"
cmake --build "$bdir" -j "$JOBS"

runner=()
if [[ "$preset" == tsan ]]; then
  # TSan built by older toolchains dies on kernels with large mmap randomisation
  # ("unexpected memory mapping"); probe once and run without ASLR if that happens.
  probe_dir="$bdir/probe"
  mkdir -p "$probe_dir"
  printf 'int main() { return 0; }\n' >"$probe_dir/probe.cpp"
  if "$cxx" -fsanitize=thread "${probe_rpath[@]}" "$probe_dir/probe.cpp" -o "$probe_dir/probe" \
       2>/dev/null &&
     ! "$probe_dir/probe" >/dev/null 2>&1; then
    note "TSan cannot start with ASLR on this kernel: running ctest under setarch -R"
    runner=(setarch "$(uname -m)" -R)
  fi
fi

# Tests run $JOBS at a time, as in ci/test.sh; their time limits are scaled for sanitizer
# builds (CUFRAMES_TIMEOUT_SCALE in CMakeLists.txt).
# ctest --preset always runs the preset's own binaryDir (build/asan, build/tsan), whatever
# --test-dir says, so ctest runs in $bdir with the test preset's settings spelled out: its
# environment (ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS) read from CMakePresets.json, its default
# per-test timeout and no-tests action.
while IFS= read -r assignment; do
  export "${assignment?}"
done < <("$PYTHON" - "$preset" <<'PY'
import json, sys
presets = json.load(open("CMakePresets.json"))["testPresets"]
env = next(p for p in presets if p["name"] == sys.argv[1]).get("environment", {})
print("\n".join(f"{k}={v}" for k, v in env.items()))
PY
)
note "ASAN_OPTIONS=${ASAN_OPTIONS:-} UBSAN_OPTIONS=${UBSAN_OPTIONS:-} TSAN_OPTIONS=${TSAN_OPTIONS:-}"
log "ctest in build/$bdir_name -j $JOBS"
start=$SECONDS
rc=0
(cd "$bdir" && "${runner[@]}" ctest --output-on-failure --timeout 600 --no-tests=error \
   -j "$JOBS" "$@") || rc=$?
note "ci/sanitize.sh $mode, $("$cxx" --version | head -n 1):" \
     "ctest exit $rc after $((SECONDS - start)) s"
exit "$rc"
