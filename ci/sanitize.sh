#!/usr/bin/env bash
# ci/sanitize.sh: build a sanitizer preset and run its tests.
#
#   ci/sanitize.sh [address|thread]     default: address (ASan + UBSan with
#                                       -fno-sanitize-recover=all, build/asan);
#                                       thread: TSan, build/tsan (the CUDA kind is off there)
#
# The compiler is CMake's default (c++) unless CC/CXX say otherwise, e.g.
#   CC=clang CXX=clang++ ci/sanitize.sh thread
# A build directory configured with another compiler is reconfigured from scratch (--fresh).
# Verified with GCC 12 and clang 14 (Debian 12) and GCC 13 (Ubuntu 24.04); see README.md.
# The TSan build also runs fuzz.seqlock_tsan_probe.*: a seqlock reader without its re-check must
# be reported by TSan (fuzz/properties/seqlock_tsan_probe.cpp).
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-address}" in
  address) preset=asan ;;
  thread) preset=tsan ;;
  *) die "usage: ci/sanitize.sh [address|thread]" 2 ;;
esac

run_setup
# Machines without a package manager (the GPU runners) get GoogleTest from /usr/src/googletest.
deps_prefixes
prefix_path="$(deps_prefix_path)"

cxx="$(command -v "${CXX:-c++}")" || die "no C++ compiler '${CXX:-c++}' on PATH"
cc="$(command -v "${CC:-cc}")" || die "no C compiler '${CC:-cc}' on PATH"
note "compilers: $cc, $cxx ($("$cxx" --version | head -n 1))"
# The compilers are named only on a first (or fresh) configure: CMake never switches the
# compiler of an existing build directory.
compiler_args=("-DCMAKE_C_COMPILER=$cc" "-DCMAKE_CXX_COMPILER=$cxx")
cache="$ROOT/build/$preset/CMakeCache.txt"
if [[ -f "$cache" ]]; then
  cached="$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")"
  if [[ "$(readlink -f "$cached")" != "$(readlink -f "$cxx")" ]]; then
    note "build/$preset was configured with $cached: reconfiguring it from scratch"
    compiler_args=(--fresh "${compiler_args[@]}")
  else
    compiler_args=()
  fi
fi
configure_preset "$preset" "${compiler_args[@]}" ${prefix_path:+"-DCMAKE_PREFIX_PATH=$prefix_path"}
build_preset "$preset"

runner=()
if [[ "$preset" == tsan ]]; then
  # TSan built by older toolchains dies on kernels with large mmap randomisation
  # ("unexpected memory mapping"); probe once and run without ASLR if that happens.
  probe_dir="$ROOT/build/tsan/probe"
  mkdir -p "$probe_dir"
  printf 'int main() { return 0; }\n' >"$probe_dir/probe.cpp"
  if "$cxx" -fsanitize=thread "$probe_dir/probe.cpp" -o "$probe_dir/probe" 2>/dev/null &&
     ! "$probe_dir/probe" >/dev/null 2>&1; then
    note "TSan cannot start with ASLR on this kernel: running ctest under setarch -R"
    runner=(setarch "$(uname -m)" -R)
  fi
fi

log "ctest --preset $preset"
"${runner[@]}" ctest --preset "$preset" --output-on-failure
