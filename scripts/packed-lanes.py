#!/usr/bin/env python3
"""Writes shaders/conv2d/packed_lanes{4,8,16}.wgsl, the pieces of the packed kernels that
name lanes or a tile's columns one line each (see packed.wgsl). Run from the repository root
after changing the template below; CI (.ci/run) fails where the files differ from its output."""
import sys

WHERE = {
    4: "SwiftShader, lavapipe at 128 bits, Intel GPUs' SIMD4 paths",
    8: "lavapipe at 256 bits, Intel GPUs in SIMD8",
    16: "lavapipe at 512 bits, Intel GPUs in SIMD16",
}


def redo_rows(w, columns):
    """A tile's constructor arguments from a redo array, eight to a line."""
    for r in range(0, columns, 8):
        w("        " + " ".join(f"redo[{j}]," for j in range(r, min(r + 8, columns))))


def piece(lanes):
    pair = 2 * lanes  # columns of a pair tile
    wide = 4 * lanes  # columns of a wide tile
    out = []
    w = out.append
    w(f"""// The lane width of the packed kernels in `packed.wgsl`: subgroups of exactly {lanes} lanes
// ({WHERE[lanes]}). The body is the same for every width;
// this piece holds the code that names lanes or a tile's columns: a broadcast's lane must be a
// constant, and the accumulators must be read in straight-line code (an index into them kept
// them in memory in the hot loop too), so there is one line per column. Written by
// scripts/packed-lanes.py.

const LANES: u32 = {lanes}u;

// The accumulators of one lane of a conv2d_gemm_packed tile: column j (loaded by lane
// j % LANES) in c{{j}}, the lane's two channels. Members, not an array (see WideTile).
struct PairTile {{""")
    for j in range(pair):
        w(f"    c{j}: vec2<f32>,")
    w("""}

// One step of a conv2d_gemm_packed tile: column vec4s x (lane j's of column j) and y (of
// column LANES + j) against this lane's two channels' vec4s wa and wb.
@diagnostic(off, subgroup_uniformity)
fn pair_step(acc: ptr<function, PairTile>, x: vec4<f32>, y: vec4<f32>, wa: vec4<f32>, wb: vec4<f32>) {""")
    for j in range(pair):
        src = "x" if j < lanes else "y"
        w(f"    (*acc).c{j} = accumulate((*acc).c{j}, subgroupBroadcast({src}, {j % lanes}u), wa, wb);")
    w("""}

// Whether any lane of the subgroup holds an infinite or NaN accumulator. A non-finite operand
// always leaves one (times a nonzero value it is infinite or NaN, times a zero NaN), so a check
// of the accumulators after the loop finds every tile where such an operand met the zero
// padding, without a test per loaded operand inside the loop.
@diagnostic(off, subgroup_uniformity)
fn pair_non_finite(acc: PairTile) -> bool {
    var widest = exponent(acc.c0);""")
    for j in range(1, pair):
        w(f"    widest = max(widest, exponent(acc.c{j}));")
    w("""    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn pair_from(redo: array<vec2<f32>, COLUMNS>) -> PairTile {
    return PairTile(""")
    redo_rows(w, pair)
    w("""    );
}

// Writes the tile's columns base + j below `limit` (see store_column): column j (and
// LANES + j) at lo_at (hi_at) of lane j.
@diagnostic(off, subgroup_uniformity)
fn pair_store(acc: PairTile, weight: bool, limit: u32, base: u32, lo_at: u32, hi_at: u32, block: u32, g: u32, m: u32) {""")
    for j in range(pair):
        at = "lo_at" if j < lanes else "hi_at"
        w(f"    store_column(weight, base + {j}u < limit, subgroupBroadcast({at}, {j % lanes}u), block, g, m, acc.c{j});")
    w("""}

// The accumulators of one lane of a wide tile: column j (loaded by lane j % LANES as its
// load j / LANES) in c{j}, four channels each. Members, not an array: an array indexed
// dynamically would be kept in memory, inside the hot loop too; a struct's members become
// registers (and spills) like separate variables.
struct WideTile {""")
    for j in range(wide):
        w(f"    c{j}: vec4<f32>,")
    w("""}

// Whether any lane of the subgroup holds an infinite or NaN accumulator (see
// pair_non_finite).
@diagnostic(off, subgroup_uniformity)
fn wide_non_finite(acc: WideTile) -> bool {
    var widest = max(exponent(acc.c0.xy), exponent(acc.c0.zw));""")
    for j in range(1, wide):
        w(f"    widest = max(widest, max(exponent(acc.c{j}.xy), exponent(acc.c{j}.zw)));")
    w("""    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn wide_from(redo: array<vec4<f32>, WIDE_COLUMNS>) -> WideTile {
    return WideTile(""")
    redo_rows(w, wide)
    w("""    );
}

// One step of a wide tile: column vec4s x0..x3 (lane j's of columns j, LANES + j, 2 * LANES
// + j and 3 * LANES + j) against this lane's four channels'
// weights by term, t.
@diagnostic(off, subgroup_uniformity)
fn wide_step(acc: ptr<function, WideTile>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, wa: vec4<f32>, wb: vec4<f32>, wc: vec4<f32>, wd: vec4<f32>) {
    let t0 = vec4<f32>(wa.x, wb.x, wc.x, wd.x);
    let t1 = vec4<f32>(wa.y, wb.y, wc.y, wd.y);
    let t2 = vec4<f32>(wa.z, wb.z, wc.z, wd.z);
    let t3 = vec4<f32>(wa.w, wb.w, wc.w, wd.w);""")
    for j in range(wide):
        w(f"    (*acc).c{j} = accumulate4((*acc).c{j}, subgroupBroadcast(x{j // lanes}, {j % lanes}u), t0, t1, t2, t3);")
    w("""}

// Writes a wide tile's columns base + j below `limit` (see store_column): column
// q * LANES + j at at[q] of lane j.
@diagnostic(off, subgroup_uniformity)
fn wide_store(acc: WideTile, weight: bool, limit: u32, base: u32, at: vec4<u32>, block: u32, g: u32, m: u32) {""")
    for j in range(wide):
        w(f"    store_column4(weight, base + {j}u < limit, subgroupBroadcast(at[{j // lanes}], {j % lanes}u), block, g, m, acc.c{j});")
    w("""}

// Writes a wide gather tile's columns as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): columns
// 4i .. 4i + 3 from the destination offset of column 4i, which lane 4i % LANES holds in
// at[4i / LANES].
@diagnostic(off, subgroup_uniformity)
fn wide_store_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {""")
    for i in range(wide // 4):
        c = 4 * i
        w(f"    store_pixel_quads(base + {c}u < u.pixels, subgroupBroadcast(at[{c // lanes}], {c % lanes}u), g, m, b, acc.c{c}, acc.c{c + 1}, acc.c{c + 2}, acc.c{c + 3});")
    w("""}

// Writes a wide gather tile's columns as one vec4 of channels c .. c + 3 each (see
// conv2d_gemm_packed_wide_channel_quads): column q * LANES + j at at[q] of lane j.
@diagnostic(off, subgroup_uniformity)
fn wide_store_channel_quads(acc: WideTile, base: u32, at: vec4<u32>, c: u32, live: bool, b: vec4<f32>) {""")
    for j in range(wide):
        w(f"    store_channel_quad(live && base + {j}u < u.pixels, subgroupBroadcast(at[{j // lanes}], {j % lanes}u), c, b, acc.c{j});")
    w("""}

// Writes a tile of conv2d_gemm_packed_wide_from_nchw, whose lane j owns pixels 4j + q, in
// accumulator q * LANES + j, at at[q] of lane j (see store_column).
@diagnostic(off, subgroup_uniformity)
fn wide_store_lane_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32) {""")
    for j in range(wide):
        q, lane = divmod(j, lanes)
        w(f"    store_column4(false, base + {4 * lane}u < u.pixels, subgroupBroadcast(at[{q}], {lane}u), 0u, g, m, acc.c{j});")
    w("""}

// The same as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): lane i's four pixels
// from at[0] of lane i.
@diagnostic(off, subgroup_uniformity)
fn wide_store_lane_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {""")
    for lane in range(lanes):
        accs = ", ".join(f"acc.c{q * lanes + lane}" for q in range(4))
        w(f"    store_pixel_quads(base + {4 * lane}u < u.pixels, subgroupBroadcast(at[0], {lane}u), g, m, b, {accs});")
    w("}")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    for lanes in sorted(WHERE):
        with open(f"shaders/conv2d/packed_lanes{lanes}.wgsl", "w") as f:
            f.write(piece(lanes))
