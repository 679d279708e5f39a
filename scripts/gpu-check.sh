#!/usr/bin/env bash
# One run for whoever is lent a real GPU: what wgconv sees there, whether every op is right on
# every adapter, and how fast the real GPU is, against the CPU and against burn.
#
#   scripts/gpu-check.sh                               # builds in release, then runs it all
#   WGCONV_BIN=path/wgconv WGCONV_PEER_BIN=path/wgconv-peer scripts/gpu-check.sh   # prebuilt
#   WGCONV_GPU_CHECK_QUICK=1 scripts/gpu-check.sh      # batch 2, smoke suite, no peer: a try-out
#
# Results go to $OUT if set, else ./gpu-check-<date>; one file per step, each step's command
# line and seconds in summary.txt:
#   env.txt             the machine: OS, CPU, nvidia-smi if there is one, the commit
#   info.txt            `wgconv info`: every adapter, its backend, device type, driver, subgroup
#                       size range, key limits, which conv2d/pooling kernel variants it can run
#                       (and why not) and which the planner picks for sample layers
#   check.txt/.json     `wgconv check --adapter all --compare-adapters --cases 100`: every op on
#                       every adapter against the CPU reference (cases, failures, worst absolute
#                       and relative error, share of the bound used), then every adapter
#                       against the first and the worst pair
#   bench-<suite>.txt/.json/.svg   `wgconv bench --suite resnet50|vgg|pool --batch 32 --repeat 5
#                       --explain` on the GPU adapters (`--adapter gpu`: every backend reaching a
#                       real GPU, side by side), else on the chosen adapter: kernel ms and
#                       GFLOP/s (GB/s for pooling) per layer and pass, the CPU's im2col baseline,
#                       the planner's picks
#   peer.txt            `wgconv-peer --batch 32 --repeat 5 --warmup 2`: burn's wgpu backend and
#                       wgconv on the same adapter, ms per layer and pass, ratio burn / wgconv
#   *.err               each step's stderr
# Exits 1 if a step failed (a mismatch in check included), after running the others.
#
# About 8 minutes on a fast GPU once built, most of it the CPU baseline at batch 32 (ResNet-50
# and VGG layers, 5 repeats) and burn's autotuning. Building takes longer: wgconv a few
# minutes, burn (the peer) about 17 minutes on 2 cores; a machine without crates.io needs the
# binaries built elsewhere (WGCONV_BIN, WGCONV_PEER_BIN). Knobs:
#   WGCONV_GPU_CHECK_QUICK=1    batch 2, the smoke suite, 5 cases, repeat 1, no peer
#   WGCONV_GPU_CHECK_PEER=0|1   skip or run the peer benchmark (default: 1, quick: 0)
#   WGCONV_GPU_CHECK_BENCH_ADAPTER=SPEC   the benches' --adapter (default: gpu if there is one)
#   WGCONV_GPU_CHECK_BATCH, WGCONV_GPU_CHECK_REPEAT, WGCONV_GPU_CHECK_CASES   override the sizes
set -uo pipefail
# Paths the caller gives are relative to where it runs; the builds to the repository.
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
[ -z "${OUT:-}" ] || OUT="$(absolute "$OUT")"
[ -z "${WGCONV_BIN:-}" ] || WGCONV_BIN="$(absolute "$WGCONV_BIN")"
[ -z "${WGCONV_PEER_BIN:-}" ] || WGCONV_PEER_BIN="$(absolute "$WGCONV_PEER_BIN")"
default_out="$PWD/gpu-check-$(date +%Y-%m-%d-%H%M%S)"
cd "$(dirname "$0")/.." || exit 2

if [ "${WGCONV_GPU_CHECK_QUICK:-0}" = 1 ]; then
    batch=2 repeat=1 cases=5 suites=(smoke) peer_default=0 warmup=1
else
    batch=32 repeat=5 cases=100 suites=(resnet50 vgg pool) peer_default=1 warmup=2
fi
batch="${WGCONV_GPU_CHECK_BATCH:-$batch}"
repeat="${WGCONV_GPU_CHECK_REPEAT:-$repeat}"
cases="${WGCONV_GPU_CHECK_CASES:-$cases}"
peer="${WGCONV_GPU_CHECK_PEER:-$peer_default}"
out="${OUT:-$default_out}"
mkdir -p "$out" || exit 2
summary="$out/summary.txt"
: >"$summary"

# Mesa's EGL looks for a Wayland socket under XDG_RUNTIME_DIR and complains on every start
# when it is unset; an empty private directory keeps the step logs readable.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    XDG_RUNTIME_DIR="$(mktemp -d)"
    export XDG_RUNTIME_DIR
    trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT
fi

wgconv="${WGCONV_BIN:-}"
if [ -z "$wgconv" ]; then
    echo "== building wgconv (release)"
    cargo build --release --quiet || exit 2
    wgconv=target/release/wgconv
fi
peer_bin="${WGCONV_PEER_BIN:-}"
if [ "$peer" = 1 ] && [ -z "$peer_bin" ]; then
    echo "== building the peer benchmark (release; burn takes long the first time)"
    cargo build --release --quiet -p wgconv-peer || exit 2
    peer_bin=target/release/wgconv-peer
fi

failed=0
# step NAME COMMAND...: runs it, its stdout to the terminal and NAME.txt, its stderr to
# NAME.err; records the command, exit code and seconds in summary.txt.
step() {
    local name=$1
    shift
    local start=$SECONDS rc
    echo "== $name: $*"
    "$@" 2>"$out/$name.err" | tee "$out/$name.txt"
    rc=${PIPESTATUS[0]}
    printf '%-16s exit %-3s %5ss  %s\n' "$name" "$rc" "$((SECONDS - start))" "$*" | tee -a "$summary"
    [ "$rc" = 0 ] || failed=1
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
    uname -a
    grep -m1 'model name' /proc/cpuinfo 2>/dev/null
    echo "cpus: $(nproc 2>/dev/null || echo unknown)"
    if command -v nvidia-smi >/dev/null; then nvidia-smi; fi
    echo "batch $batch, repeat $repeat, check cases $cases, suites ${suites[*]}, peer $peer"
} >"$out/env.txt" 2>&1

step info "$wgconv" info
step check "$wgconv" check --adapter all --compare-adapters --cases "$cases" \
    --json "$out/check.json"

# Software adapters at batch 32 would take the whole budget; the benches time the real GPU
# through every backend that reaches it, or, on a machine without one, the chosen adapter.
bench_adapter=()
if [ -n "${WGCONV_GPU_CHECK_BENCH_ADAPTER:-}" ]; then
    bench_adapter=(--adapter "$WGCONV_GPU_CHECK_BENCH_ADAPTER")
elif "$wgconv" info --adapter gpu >/dev/null 2>&1; then
    bench_adapter=(--adapter gpu)
fi
for suite in "${suites[@]}"; do
    step "bench-$suite" "$wgconv" bench --suite "$suite" --batch "$batch" --repeat "$repeat" \
        --explain "${bench_adapter[@]}" --json "$out/bench-$suite.json" \
        --plot "$out/bench-$suite.svg"
done

if [ "$peer" = 1 ]; then
    step peer "$peer_bin" --batch "$batch" --repeat "$repeat" --warmup "$warmup"
fi

echo
echo "results in $out:"
cat "$summary"
exit "$failed"
