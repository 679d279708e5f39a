#!/usr/bin/env bash
# Tint, the WGSL compiler of Chromium's WebGPU, checks every shader module and compute pipeline:
# `wgconv shaders --webgpu` writes the modules exactly as a browser would get them, and
# scripts/webgpu/check.mjs creates each with Dawn (the `webgpu` npm package) on SwiftShader, since
# Dawn refuses Mesa 22's lavapipe. Exits non-zero naming module, line and message on any error.
#
#   scripts/check-webgpu.sh            (needs node and npm; builds wgconv)
set -euo pipefail
cd "$(dirname "$0")/.."
icd="$(scripts/install-swiftshader.sh)"
(cd scripts/webgpu && npm ci --no-audit --no-fund --loglevel=error)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run --quiet -- shaders --webgpu "$out"
VK_ICD_FILENAMES="$icd" node scripts/webgpu/check.mjs "$out"
