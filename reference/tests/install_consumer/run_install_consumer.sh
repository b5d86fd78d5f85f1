#!/usr/bin/env bash
# run_install_consumer.sh BUILD_DIR VERSION SOVERSION: installs BUILD_DIR into a scratch prefix
# and builds consumer.c against that prefix the two ways a user would: find_package(cuframes)
# (shared and static targets) and pkg-config. Runs each program (one HOST frame handed over and
# checked byte by byte) and checks the installed tree: SONAME, only cuframes_* exported, the
# version the library reports equals the package version. Exit 0 when all of it holds.
# The consumer is compiled with $CUFRAMES_CONSUMER_CC (default cc) and the extra compile and link
# flags $CUFRAMES_CONSUMER_FLAGS (a sanitizer build's -fsanitize=..., which a program linking the
# sanitized library needs as well), plus the link-only flags $CUFRAMES_CONSUMER_LDFLAGS (clang's
# sanitizers: the C++ half of their runtime); ctest sets them from the build.
set -euo pipefail
build="$1" version="$2" soversion="$3"
cc="${CUFRAMES_CONSUMER_CC:-cc}"
read -r -a flags <<<"${CUFRAMES_CONSUMER_FLAGS:-}"
read -r -a ldflags <<<"${CUFRAMES_CONSUMER_LDFLAGS:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d /tmp/cuframes-install.XXXXXX)"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
export CUFRAMES_SOCKET_DIR="$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || {
  cat "$work/install.log"; fail "cmake --install"; }
libdir="$prefix/lib"
[[ -d "$libdir/pkgconfig" ]] || libdir="$(dirname "$(find "$prefix" -name cuframes.pc)")/.."
for f in include/cuframes/cuframes.h bin/cuframes-pub bin/cuframes-sub; do
  [[ -e "$prefix/$f" ]] || fail "not installed: $f"
done

so="$libdir/libcuframes.so.$version"
[[ -f "$so" ]] || fail "not installed: $so"
soname="$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ "$soname" == "libcuframes.so.$soversion" ]] || fail "SONAME '$soname', want libcuframes.so.$soversion"
leaked="$(readelf --dyn-syms -W "$so" | awk '$5 == "GLOBAL" && $7 != "UND" && $7 != "ABS" {print $8}' |
          sed 's/@.*//' | grep -v '^cuframes_' || true)"
[[ -z "$leaked" ]] || fail "symbols other than cuframes_* exported: $(echo "$leaked" | head -5)"

expect_output() {  # PROGRAM: runs it, checks it reports this package's version
  local out
  out="$("$@")" || fail "$* exited non-zero"
  [[ "$out" == "cuframes $version: frame 1 delivered intact" ]] || fail "$*: '$out'"
  echo "ok: $(basename "$1"): $out"
}

# 1. CMake package, shared and static targets.
cmake -S "$here" -B "$work/cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_RPATH="$libdir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${flags[*]}" \
  -DCMAKE_EXE_LINKER_FLAGS="${flags[*]} ${ldflags[*]}" >"$work/configure.log" 2>&1 || {
  cat "$work/configure.log"; fail "find_package(cuframes) consumer did not configure"; }
cmake --build "$work/cmake-build" >"$work/build.log" 2>&1 || {
  cat "$work/build.log"; fail "find_package(cuframes) consumer did not build"; }
expect_output "$work/cmake-build/consumer_shared"
expect_output "$work/cmake-build/consumer_static"
# ldd's output is kept before matching it: `ldd | grep -q` under pipefail fails at random when
# grep exits at the first match and ldd dies of SIGPIPE.
loaded="$(ldd "$work/cmake-build/consumer_shared")"
grep -q "libcuframes.so.$soversion => $libdir" <<<"$loaded" ||
  fail "consumer_shared does not load the installed libcuframes.so.$soversion: $loaded"

# 2. pkg-config, shared library.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
[[ "$(pkg-config --modversion cuframes)" == "$version" ]] || fail "pkg-config --modversion"
# shellcheck disable=SC2046
"$cc" -std=c99 -Wall -Werror "${flags[@]}" -o "$work/consumer_pc" "$here/consumer.c" \
  $(pkg-config --cflags --libs cuframes) "${ldflags[@]}" -Wl,-rpath,"$libdir" ||
  fail "pkg-config build"
expect_output "$work/consumer_pc"
echo "install consumer: CMake (shared, static) and pkg-config builds all ran"
