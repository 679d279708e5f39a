#!/usr/bin/env bash
# Unpacks SwiftShader, Chromium's software Vulkan driver, from Debian's chromium-common package
# (no install, no root needed once downloaded) and prints the path of its Vulkan ICD file; point
# VK_ICD_FILENAMES at it to run wgpu, or Dawn, on SwiftShader:
#
#   export VK_ICD_FILENAMES="$(scripts/install-swiftshader.sh)"
#
# The package is unpacked under $WGCONV_TOOLS (default ~/.cache/wgconv-tools) once.
set -euo pipefail
tools="${WGCONV_TOOLS:-$HOME/.cache/wgconv-tools}"
icd="$tools/swiftshader/usr/lib/chromium/vk_swiftshader_icd.json"
if [ ! -f "$icd" ]; then
    mkdir -p "$tools"
    cd "$tools"
    if ! apt-get download chromium-common >&2 2>/dev/null; then
        apt-get update -qq >&2
        apt-get download chromium-common >&2
    fi
    dpkg -x chromium-common_*.deb swiftshader
    rm -f chromium-common_*.deb
fi
[ -f "$icd" ] || { echo "no SwiftShader ICD at $icd" >&2; exit 1; }
echo "$icd"
