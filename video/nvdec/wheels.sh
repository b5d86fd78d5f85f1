#!/usr/bin/env bash
# video/nvdec/wheels.sh: download the wheels the NVDEC pipeline installs on a GPU runner that has
# no internet (PyAV and NVIDIA's PyNvVideoCodec) into the git-ignored .gpu/wheels/, for the
# runner's python, on a machine that has internet. Carry .gpu/wheels/ to the runner (about 60 MB);
# video/nvdec/pipeline.py installs from it with `pip install --no-index --find-links`.
#
#   video/nvdec/wheels.sh [PYTHON_VERSION]      (default 3.12, the Ubuntu 24.04 runners' python)
#
# PyAV is pinned to the release the CPU tests run with (the newest for Python 3.11, Debian 12's),
# so that the runner encodes and decodes with the API those tests exercised; $AV_VERSION
# overrides it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
version="${1:-3.12}"
dest="$root/.gpu/wheels"
mkdir -p "$dest"
for pkg in "av==${AV_VERSION:-18.1.0}" PyNvVideoCodec; do
  python3 -m pip download "$pkg" --only-binary=:all: --no-deps --python-version "$version" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$dest" -q
done
ls -l "$dest"
