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
