#!/usr/bin/env bash
# Runs the whole test suite once per named driver, each a real driver this machine can run
# without a GPU (README.md, "Drivers"), and fails on the first red run:
#
#   scripts/test-drivers.sh [lavapipe | lavapipe-128 | lavapipe-512 | lavapipe-1024 | swiftshader | gl]...
#
# With no names it runs all six. Extra arguments for `cargo test` go in $CARGO_TEST_ARGS
# (e.g. "--release").
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
drivers=("$@")
[ ${#drivers[@]} -gt 0 ] || drivers=(lavapipe lavapipe-128 lavapipe-512 lavapipe-1024 swiftshader gl)
for driver in "${drivers[@]}"; do
    env=()
    case "$driver" in
        lavapipe) ;;
        lavapipe-128 | lavapipe-512 | lavapipe-1024) env=(LP_NATIVE_VECTOR_WIDTH="${driver#lavapipe-}") ;;
        swiftshader) env=(VK_ICD_FILENAMES="$(scripts/install-swiftshader.sh)") ;;
        gl) env=(WGPU_BACKEND=gl) ;;
        *) echo "unknown driver $driver" >&2; exit 2 ;;
    esac
    echo "== cargo test on $driver ${env[*]}"
    # shellcheck disable=SC2086
    env "${env[@]}" cargo test ${CARGO_TEST_ARGS:-}
done
