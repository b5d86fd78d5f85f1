#!/usr/bin/env bash
# bench/iceoryx2_wheels.sh: download iceoryx2 (and its one dependency, flatbuffers) as wheels
# into the git-ignored .gpu/wheels/ on a machine that has internet, for a GPU runner that has
# none: ci/gpu.sh's pyhost step installs them from there (pip --no-index --find-links) to run
# bench/py_host_handoff.py. The iceoryx2 wheel is abi3 (CPython >= 3.8) for glibc >= 2.34.
#
#   bench/iceoryx2_wheels.sh [PYTHON_VERSION]     (default 3.12, the Ubuntu 24.04 runners' python)
#
# The version follows ci/requirements.txt's bound; $ICEORYX2_VERSION overrides it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-3.12}"
dest="${CUFRAMES_WHEELS_DIR:-$root/.gpu/wheels}"
mkdir -p "$dest"
python3 -m pip download "iceoryx2${ICEORYX2_VERSION:-==0.10.*}" --only-binary=:all: \
  --python-version "$version" --platform manylinux_2_34_x86_64 -d "$dest" -q
ls -l "$dest"/iceoryx2-*.whl "$dest"/flatbuffers-*.whl
