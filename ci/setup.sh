#!/usr/bin/env bash
# ci/setup.sh: install what cuframes needs to build and test, only what is missing; safe to rerun.
#
#   ci/setup.sh [--no-apt]
#
# A package counts as present when `dpkg -s` knows it or what it provides is already there (a
# cmake/ninja/compiler on PATH, a CMake package config, an importable pytest). Missing packages
# are installed with apt-get (as root, or through sudo), running `apt-get update` only then.
# Without apt-get, with --no-apt (ci/gpu.sh), or when the mirrors cannot be reached, nothing is
# installed and each missing piece is printed instead. Finally pytest is made importable by the
# python3 on PATH (which may be a pyenv or venv interpreter) with `python3 -m pip`, if needed.
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

use_apt=1
[[ "${1:-}" == --no-apt ]] && use_apt=0

PACKAGES=(cmake ninja-build g++ clang libclang-rt-dev libgtest-dev libgmock-dev
          libbenchmark-dev librapidcheck-dev nlohmann-json3-dev libcli11-dev python3-pytest ccache pkgconf
          python3-dev
          ffmpeg libavformat-dev libavcodec-dev libavutil-dev)  # ffmpeg...: video/ (cuframes-video)

# cmake_package NAME: success when a CMake config for NAME is installed in a standard prefix.
cmake_package() {
  local name="$1" d
  for d in /usr /usr/local; do
    compgen -G "$d/lib*/cmake/$name/*onfig.cmake" >/dev/null && return 0
    compgen -G "$d/lib/*-linux-gnu/cmake/$name/*onfig.cmake" >/dev/null && return 0
    compgen -G "$d/share/cmake/$name/*onfig.cmake" >/dev/null && return 0
  done
  return 1
}

# provided PKG: success when what PKG provides is already usable without it.
provided() {
  case "$1" in
    cmake) command -v cmake ;;
    ninja-build) command -v ninja ;;
    g++) command -v g++ ;;
    clang) command -v clang++ ;;
    libclang-rt-dev)
      command -v clang++ >/dev/null 2>&1 &&
        compgen -G "$(clang++ --print-runtime-dir 2>/dev/null)/libclang_rt.fuzzer*.a" ;;
    libgtest-dev) cmake_package GTest ;;
    libcli11-dev) cmake_package CLI11 ;;
    libgmock-dev) cmake_package GTest && compgen -G "/usr*/include/gmock/gmock.h" ;;
    libbenchmark-dev) cmake_package benchmark ;;
    librapidcheck-dev) cmake_package rapidcheck ;;
    nlohmann-json3-dev) cmake_package nlohmann_json ;;
    python3-pytest) [[ -n "$PYTHON" ]] && "$PYTHON" -m pytest --version ;;
    ccache) command -v ccache ;;
    pkgconf) command -v pkg-config ;;
    python3-dev)
      [[ -n "$PYTHON" ]] && "$PYTHON" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' ;;
    *) return 1 ;;
  esac
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg -s "$p" >/dev/null 2>&1 && ! provided "$p" >/dev/null 2>&1; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  note "setup: everything present (${PACKAGES[*]})"
elif ((use_apt == 0)); then
  note "setup: --no-apt: not installing ${missing[*]}"
elif ! command -v apt-get >/dev/null 2>&1; then
  note "setup: no apt-get on this machine: not installing ${missing[*]}"
else
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "setup: need root (or sudo) to install: ${missing[*]}"
    SUDO=(sudo)
  fi
  log "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # An unreachable mirror must fail in seconds, not after apt's default retries and timeouts
  # (GPU runners without internet): no retries, a short connect timeout.
  apt_fast=(-o Acquire::Retries=0 -o Acquire::http::Timeout=15 -o Acquire::https::Timeout=15)
  if ! "${SUDO[@]}" apt-get "${apt_fast[@]}" update -q ||
     ! "${SUDO[@]}" apt-get "${apt_fast[@]}" install -y -q --no-install-recommends "${missing[@]}"; then
    note "setup: apt-get failed (offline, or a package this distribution lacks); continuing"
    note "with what is installed; still missing: ${missing[*]}"
  fi
fi

[[ -n "$PYTHON" ]] || die "setup: no python3 on PATH"
if "$PYTHON" -m pytest --version >/dev/null 2>&1; then
  note "setup: pytest importable by $PYTHON"
else
  log "setup: installing pytest for $PYTHON"
  if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    "$PYTHON" -m ensurepip --upgrade >/dev/null 2>&1 ||
      die "setup: $PYTHON has no pip and ensurepip failed; install pytest for it by hand"
  fi
  # A Debian system python refuses plain pip installs (PEP 668); python3-pytest above covers
  # it, so --break-system-packages is only the last resort.
  "$PYTHON" -m pip install -q pytest ||
    "$PYTHON" -m pip install -q --break-system-packages pytest ||
    die "setup: could not install pytest for $PYTHON"
fi

# Python packages the tools and tests import (ci/requirements.txt): installed only when one is
# not importable, so a prepared machine never reaches for PyPI.
missing_py=()
while read -r pkg module; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  "$PYTHON" -c "import $module" >/dev/null 2>&1 || missing_py+=("$pkg")
done < <(sed -n 's/^\([^#][^ ]*\) *# *import: *\([A-Za-z0-9_.]*\).*/\1 \2/p' "$CI_DIR/requirements.txt")
if ((${#missing_py[@]} == 0)); then
  note "setup: python packages importable (ci/requirements.txt)"
else
  log "setup: pip installing ${missing_py[*]} for $PYTHON"
  # One retry and a short timeout: a machine without a package index (the GPU runners) learns
  # that in seconds instead of pip's minute of back-off per attempt.
  pip_i=("$PYTHON" -m pip install -q --retries 1 --timeout 10)
  "${pip_i[@]}" "${missing_py[@]}" ||
    "${pip_i[@]}" --break-system-packages "${missing_py[@]}" ||
    note "setup: pip could not install ${missing_py[*]}; the tests that need them say so"
fi

# cuframes for Python (python/): installed editable, so that its tests and adapters run this
# checkout's code; reinstalled only when another checkout's copy is the one imported or a C
# source is newer than its built extension. Offline machines fall back to the setuptools
# already installed (--no-build-isolation).
py_pkg="$ROOT/python"
if [[ -f "$py_pkg/pyproject.toml" ]]; then
  need_py=0
  "$PYTHON" -c 'import os, sys, cuframes._atomics, cuframes._checksum
sys.exit(not os.path.realpath(cuframes.__file__).startswith(os.path.realpath(sys.argv[1]) + "/"))' \
    "$py_pkg" >/dev/null 2>&1 || need_py=1
  for c in "$py_pkg"/cuframes/*.c; do
    so=("${c%.c}".*.so)
    [[ -e "${so[0]}" && ! "$c" -nt "${so[0]}" ]] || need_py=1
  done
  if ((need_py)); then
    log "setup: pip install -e python/ (cuframes for Python) for $PYTHON"
    pip_e=("$PYTHON" -m pip install -q -e "$py_pkg")
    # With setuptools already importable an isolated build environment only costs a download,
    # and on a machine without a package index (the GPU runners) pip would wait for it first.
    # (bdist_wheel: in setuptools since 70.1, else the `wheel` package; without it an editable
    # install cannot build its metadata outside an isolated environment)
    if "$PYTHON" -c 'import setuptools
try:
    import setuptools.command.bdist_wheel
except ImportError:
    import wheel' 2>/dev/null; then
      pip_e+=(--no-build-isolation --no-deps)
    fi
    "${pip_e[@]}" || "${pip_e[@]}" --no-build-isolation || "${pip_e[@]}" --break-system-packages ||
      "${pip_e[@]}" --no-build-isolation --break-system-packages ||
      note "setup: could not install python/ (cuframes for Python); its tests will fail to import"
  else
    note "setup: cuframes for Python installed from $py_pkg"
  fi
fi
