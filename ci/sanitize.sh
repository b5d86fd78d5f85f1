#!/usr/bin/env bash
# ci/sanitize.sh: build a sanitizer preset and run its tests.
#
#   ci/sanitize.sh [address|thread]     default: address (ASan+UBSan, build/asan);
#                                       thread: TSan, build/tsan (the CUDA kind is off there)
set -euo pipefail
# shellcheck source=ci/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-address}" in
  address) preset=asan ;;
  thread) preset=tsan ;;
  *) die "usage: ci/sanitize.sh [address|thread]" 2 ;;
esac

run_setup
configure_preset "$preset"
build_preset "$preset"

runner=()
if [[ "$preset" == tsan ]]; then
  # TSan built by older toolchains dies on kernels with large mmap randomisation
  # ("unexpected memory mapping"); probe once and run without ASLR if that happens.
  probe_dir="$ROOT/build/tsan/probe"
  mkdir -p "$probe_dir"
  printf 'int main() { return 0; }\n' >"$probe_dir/probe.cpp"
  if c++ -fsanitize=thread "$probe_dir/probe.cpp" -o "$probe_dir/probe" 2>/dev/null &&
     ! "$probe_dir/probe" >/dev/null 2>&1; then
    note "TSan cannot start with ASLR on this kernel: running ctest under setarch -R"
    runner=(setarch "$(uname -m)" -R)
  fi
fi

log "ctest --preset $preset"
"${runner[@]}" ctest --preset "$preset" --output-on-failure
