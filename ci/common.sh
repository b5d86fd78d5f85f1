# shellcheck shell=bash
# ci/common.sh: helpers sourced by the ci/*.sh scripts (not run on its own).
#
# Sets ROOT (the repository root) and cds there, so each script works from any cwd.
# Environment knobs every script honours:
#   CUFRAMES_JOBS        parallel build jobs (default 2)
#   CUFRAMES_SKIP_SETUP  1 = do not run ci/setup.sh (a machine you prepared yourself)

CI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$CI_DIR/.." && pwd)"
JOBS="${CUFRAMES_JOBS:-2}"
# The caller's cwd, for resolving relative paths given on the command line.
CALLER_PWD="${CALLER_PWD:-$PWD}"
cd "$ROOT" || exit 1

log()  { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
skip() { printf 'SKIP: %s\n' "$*"; }
die()  { printf 'error: %s\n' "$*" >&2; exit "${2:-1}"; }

# The python3 the tests use (may be a pyenv interpreter rather than /usr/bin/python3).
PYTHON="$(command -v python3 || true)"
[[ -n "$PYTHON" ]] && PYTHON="$("$PYTHON" -c 'import sys; print(sys.executable)')"

# run_setup [--no-apt]: ci/setup.sh unless CUFRAMES_SKIP_SETUP=1.
# shellcheck disable=SC2120
run_setup() {
  if [[ "${CUFRAMES_SKIP_SETUP:-0}" == 1 ]]; then
    note "CUFRAMES_SKIP_SETUP=1: not running ci/setup.sh"
  else
    bash "$CI_DIR/setup.sh" "$@"
  fi
}

# configure_preset NAME [extra cmake args...]: configure build/NAME from CMakePresets.json,
# pointing CMake at the same python3 the scripts use (so pytest-based tests find pytest).
configure_preset() {
  local preset="$1"; shift
  local py_args=()
  [[ -n "$PYTHON" ]] && py_args=("-DPython3_EXECUTABLE=$PYTHON")
  log "configure: cmake --preset $preset ${py_args[*]} $*"
  cmake --preset "$preset" "${py_args[@]}" "$@"
}

build_preset() {
  local preset="$1"
  log "build: cmake --build --preset $preset -j $JOBS"
  cmake --build --preset "$preset" -j "$JOBS"
}

# abs_path PATH: PATH made absolute against the caller's cwd (PATH need not exist).
abs_path() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *)  printf '%s\n' "$CALLER_PWD/$1" ;;
  esac
}

# executables_matching DIR GLOB: executable regular files named GLOB under DIR (searched two
# levels deep, CMakeFiles excluded), sorted, one per line; nothing when DIR does not exist.
executables_matching() {
  local dir="$1" glob="$2"
  [[ -d "$dir" ]] || return 0
  find "$dir" -maxdepth 2 -name CMakeFiles -prune -o -type f -perm -u+x -name "$glob" -print |
    sort
}

# build_targets_matching PRESET PREFIX: builds only the targets named PREFIX* of build/PRESET
# (and what they link), not the whole tree; the whole preset when it has none yet.
build_targets_matching() {
  local preset="$1" prefix="$2" targets
  mapfile -t targets < <(cmake --build "$ROOT/build/$preset" --target help |
                         sed -n "s/^\(${prefix}[A-Za-z0-9_]*\): .*/\1/p" | sort -u)
  if ((${#targets[@]})); then
    log "build: cmake --build --preset $preset -j $JOBS --target ${targets[*]}"
    cmake --build --preset "$preset" -j "$JOBS" --target "${targets[@]}"
  else
    build_preset "$preset"
  fi
}

# DEP_PREFIXES: dependency prefixes for CMake (carried builds, then what deps_prefixes builds).
DEP_PREFIXES=()

# find_cmake_package NAME: success when a CMake config of NAME is installed in /usr, /usr/local
# or one of DEP_PREFIXES.
find_cmake_package() {
  local name="$1" d
  for d in "${DEP_PREFIXES[@]}" /usr /usr/local; do
    compgen -G "$d/lib*/cmake/$name/*onfig.cmake" >/dev/null && return 0
    compgen -G "$d/lib/*-linux-gnu/cmake/$name/*onfig.cmake" >/dev/null && return 0
    compgen -G "$d/share/cmake/$name/*onfig.cmake" >/dev/null && return 0
  done
  return 1
}

# deps_prefixes: fills DEP_PREFIXES for machines without a package manager (the GPU runners):
# the prefixes named in CUFRAMES_DEPS_PREFIX (colon-separated) and .gpu/prefix, then, when no
# GoogleTest is installed, one built from /usr/src/googletest into build/deps/googletest (once).
# Callers pass "-DCMAKE_PREFIX_PATH=$(deps_prefix_path)" to configure_preset.
deps_prefixes() {
  DEP_PREFIXES=()
  [[ -n "${CUFRAMES_DEPS_PREFIX:-}" ]] && IFS=: read -r -a DEP_PREFIXES <<<"$CUFRAMES_DEPS_PREFIX"
  [[ -d "$ROOT/.gpu/prefix" ]] && DEP_PREFIXES+=("$ROOT/.gpu/prefix")
  find_cmake_package GTest && return 0
  local gtest_prefix="$ROOT/build/deps/googletest"
  if [[ ! -f "$gtest_prefix/.installed" ]]; then
    [[ -f /usr/src/googletest/CMakeLists.txt ]] ||
      die "no installed GoogleTest and no /usr/src/googletest to build (run ci/setup.sh)"
    log "deps: building GoogleTest from /usr/src/googletest into build/deps/googletest"
    cmake -S /usr/src/googletest -B "$ROOT/build/deps/googletest-build" -G Ninja \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$gtest_prefix" \
      -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null
    cmake --build "$ROOT/build/deps/googletest-build" -j "$JOBS" >/dev/null
    cmake --install "$ROOT/build/deps/googletest-build" >/dev/null
    touch "$gtest_prefix/.installed"
  fi
  DEP_PREFIXES+=("$gtest_prefix")
}

# deps_prefix_path: DEP_PREFIXES joined with ';' (empty when there are none).
deps_prefix_path() {
  local IFS=';'
  printf '%s' "${DEP_PREFIXES[*]:-}"
}
