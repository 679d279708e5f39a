// The lane width of the packed kernels in `packed.wgsl`: subgroups of exactly 4 lanes
// (SwiftShader, lavapipe at 128 bits, Intel GPUs' SIMD4 paths). The body is the same for every width;
// this piece holds the code that names lanes or a tile's columns: a broadcast's lane must be a
// constant, and the accumulators must be read in straight-line code (an index into them kept
// them in memory in the hot loop too), so there is one line per column. Written by
// scripts/packed-lanes.py.

const LANES: u32 = 4u;

// The accumulators of one lane of a conv2d_gemm_packed tile: column j (loaded by lane
// j % LANES) in c{j}, the lane's two channels. Members, not an array (see WideTile).
struct PairTile {
    c0: vec2<f32>,
    c1: vec2<f32>,
    c2: vec2<f32>,
    c3: vec2<f32>,
    c4: vec2<f32>,
    c5: vec2<f32>,
    c6: vec2<f32>,
    c7: vec2<f32>,
}

// One step of a conv2d_gemm_packed tile: column vec4s x (lane j's of column j) and y (of
// column LANES + j) against this lane's two channels' vec4s wa and wb.
@diagnostic(off, subgroup_uniformity)
fn pair_step(acc: ptr<function, PairTile>, x: vec4<f32>, y: vec4<f32>, wa: vec4<f32>, wb: vec4<f32>) {
    (*acc).c0 = accumulate((*acc).c0, subgroupBroadcast(x, 0u), wa, wb);
    (*acc).c1 = accumulate((*acc).c1, subgroupBroadcast(x, 1u), wa, wb);
    (*acc).c2 = accumulate((*acc).c2, subgroupBroadcast(x, 2u), wa, wb);
    (*acc).c3 = accumulate((*acc).c3, subgroupBroadcast(x, 3u), wa, wb);
    (*acc).c4 = accumulate((*acc).c4, subgroupBroadcast(y, 0u), wa, wb);
    (*acc).c5 = accumulate((*acc).c5, subgroupBroadcast(y, 1u), wa, wb);
    (*acc).c6 = accumulate((*acc).c6, subgroupBroadcast(y, 2u), wa, wb);
    (*acc).c7 = accumulate((*acc).c7, subgroupBroadcast(y, 3u), wa, wb);
}

// Whether any lane of the subgroup holds an infinite or NaN accumulator. A non-finite operand
// always leaves one (times a nonzero value it is infinite or NaN, times a zero NaN), so a check
// of the accumulators after the loop finds every tile where such an operand met the zero
// padding, without a test per loaded operand inside the loop.
@diagnostic(off, subgroup_uniformity)
fn pair_non_finite(acc: PairTile) -> bool {
    var widest = exponent(acc.c0);
    widest = max(widest, exponent(acc.c1));
    widest = max(widest, exponent(acc.c2));
    widest = max(widest, exponent(acc.c3));
    widest = max(widest, exponent(acc.c4));
    widest = max(widest, exponent(acc.c5));
    widest = max(widest, exponent(acc.c6));
    widest = max(widest, exponent(acc.c7));
    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn pair_from(redo: array<vec2<f32>, COLUMNS>) -> PairTile {
    return PairTile(
        redo[0], redo[1], redo[2], redo[3], redo[4], redo[5], redo[6], redo[7],
    );
}

// Writes the tile's columns base + j below `limit` (see store_column): column j (and
// LANES + j) at lo_at (hi_at) of lane j.
@diagnostic(off, subgroup_uniformity)
fn pair_store(acc: PairTile, weight: bool, limit: u32, base: u32, lo_at: u32, hi_at: u32, block: u32, g: u32, m: u32) {
    store_column(weight, base + 0u < limit, subgroupBroadcast(lo_at, 0u), block, g, m, acc.c0);
    store_column(weight, base + 1u < limit, subgroupBroadcast(lo_at, 1u), block, g, m, acc.c1);
    store_column(weight, base + 2u < limit, subgroupBroadcast(lo_at, 2u), block, g, m, acc.c2);
    store_column(weight, base + 3u < limit, subgroupBroadcast(lo_at, 3u), block, g, m, acc.c3);
    store_column(weight, base + 4u < limit, subgroupBroadcast(hi_at, 0u), block, g, m, acc.c4);
    store_column(weight, base + 5u < limit, subgroupBroadcast(hi_at, 1u), block, g, m, acc.c5);
    store_column(weight, base + 6u < limit, subgroupBroadcast(hi_at, 2u), block, g, m, acc.c6);
    store_column(weight, base + 7u < limit, subgroupBroadcast(hi_at, 3u), block, g, m, acc.c7);
}

// The accumulators of one lane of a wide tile: column j (loaded by lane j % LANES as its
// load j / LANES) in c{j}, four channels each. Members, not an array: an array indexed
// dynamically would be kept in memory, inside the hot loop too; a struct's members become
// registers (and spills) like separate variables.
struct WideTile {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
    c3: vec4<f32>,
    c4: vec4<f32>,
    c5: vec4<f32>,
    c6: vec4<f32>,
    c7: vec4<f32>,
    c8: vec4<f32>,
    c9: vec4<f32>,
    c10: vec4<f32>,
    c11: vec4<f32>,
    c12: vec4<f32>,
    c13: vec4<f32>,
    c14: vec4<f32>,
    c15: vec4<f32>,
}

// Whether any lane of the subgroup holds an infinite or NaN accumulator (see
// pair_non_finite).
@diagnostic(off, subgroup_uniformity)
fn wide_non_finite(acc: WideTile) -> bool {
    var widest = max(exponent(acc.c0.xy), exponent(acc.c0.zw));
    widest = max(widest, max(exponent(acc.c1.xy), exponent(acc.c1.zw)));
    widest = max(widest, max(exponent(acc.c2.xy), exponent(acc.c2.zw)));
    widest = max(widest, max(exponent(acc.c3.xy), exponent(acc.c3.zw)));
    widest = max(widest, max(exponent(acc.c4.xy), exponent(acc.c4.zw)));
    widest = max(widest, max(exponent(acc.c5.xy), exponent(acc.c5.zw)));
    widest = max(widest, max(exponent(acc.c6.xy), exponent(acc.c6.zw)));
    widest = max(widest, max(exponent(acc.c7.xy), exponent(acc.c7.zw)));
    widest = max(widest, max(exponent(acc.c8.xy), exponent(acc.c8.zw)));
    widest = max(widest, max(exponent(acc.c9.xy), exponent(acc.c9.zw)));
    widest = max(widest, max(exponent(acc.c10.xy), exponent(acc.c10.zw)));
    widest = max(widest, max(exponent(acc.c11.xy), exponent(acc.c11.zw)));
    widest = max(widest, max(exponent(acc.c12.xy), exponent(acc.c12.zw)));
    widest = max(widest, max(exponent(acc.c13.xy), exponent(acc.c13.zw)));
    widest = max(widest, max(exponent(acc.c14.xy), exponent(acc.c14.zw)));
    widest = max(widest, max(exponent(acc.c15.xy), exponent(acc.c15.zw)));
    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn wide_from(redo: array<vec4<f32>, WIDE_COLUMNS>) -> WideTile {
    return WideTile(
        redo[0], redo[1], redo[2], redo[3], redo[4], redo[5], redo[6], redo[7],
        redo[8], redo[9], redo[10], redo[11], redo[12], redo[13], redo[14], redo[15],
    );
}

// One step of a wide tile: column vec4s x0..x3 (lane j's of columns j, LANES + j, 2 * LANES
// + j and 3 * LANES + j) against this lane's four channels'
// weights by term, t.
@diagnostic(off, subgroup_uniformity)
fn wide_step(acc: ptr<function, WideTile>, x0: vec4<f32>, x1: vec4<f32>, x2: vec4<f32>, x3: vec4<f32>, wa: vec4<f32>, wb: vec4<f32>, wc: vec4<f32>, wd: vec4<f32>) {
    let t0 = vec4<f32>(wa.x, wb.x, wc.x, wd.x);
    let t1 = vec4<f32>(wa.y, wb.y, wc.y, wd.y);
    let t2 = vec4<f32>(wa.z, wb.z, wc.z, wd.z);
    let t3 = vec4<f32>(wa.w, wb.w, wc.w, wd.w);
    (*acc).c0 = accumulate4((*acc).c0, subgroupBroadcast(x0, 0u), t0, t1, t2, t3);
    (*acc).c1 = accumulate4((*acc).c1, subgroupBroadcast(x0, 1u), t0, t1, t2, t3);
    (*acc).c2 = accumulate4((*acc).c2, subgroupBroadcast(x0, 2u), t0, t1, t2, t3);
    (*acc).c3 = accumulate4((*acc).c3, subgroupBroadcast(x0, 3u), t0, t1, t2, t3);
    (*acc).c4 = accumulate4((*acc).c4, subgroupBroadcast(x1, 0u), t0, t1, t2, t3);
    (*acc).c5 = accumulate4((*acc).c5, subgroupBroadcast(x1, 1u), t0, t1, t2, t3);
    (*acc).c6 = accumulate4((*acc).c6, subgroupBroadcast(x1, 2u), t0, t1, t2, t3);
    (*acc).c7 = accumulate4((*acc).c7, subgroupBroadcast(x1, 3u), t0, t1, t2, t3);
    (*acc).c8 = accumulate4((*acc).c8, subgroupBroadcast(x2, 0u), t0, t1, t2, t3);
    (*acc).c9 = accumulate4((*acc).c9, subgroupBroadcast(x2, 1u), t0, t1, t2, t3);
    (*acc).c10 = accumulate4((*acc).c10, subgroupBroadcast(x2, 2u), t0, t1, t2, t3);
    (*acc).c11 = accumulate4((*acc).c11, subgroupBroadcast(x2, 3u), t0, t1, t2, t3);
    (*acc).c12 = accumulate4((*acc).c12, subgroupBroadcast(x3, 0u), t0, t1, t2, t3);
    (*acc).c13 = accumulate4((*acc).c13, subgroupBroadcast(x3, 1u), t0, t1, t2, t3);
    (*acc).c14 = accumulate4((*acc).c14, subgroupBroadcast(x3, 2u), t0, t1, t2, t3);
    (*acc).c15 = accumulate4((*acc).c15, subgroupBroadcast(x3, 3u), t0, t1, t2, t3);
}

// Writes a wide tile's columns base + j below `limit` (see store_column): column
// q * LANES + j at at[q] of lane j.
@diagnostic(off, subgroup_uniformity)
fn wide_store(acc: WideTile, weight: bool, limit: u32, base: u32, at: vec4<u32>, block: u32, g: u32, m: u32) {
    store_column4(weight, base + 0u < limit, subgroupBroadcast(at[0], 0u), block, g, m, acc.c0);
    store_column4(weight, base + 1u < limit, subgroupBroadcast(at[0], 1u), block, g, m, acc.c1);
    store_column4(weight, base + 2u < limit, subgroupBroadcast(at[0], 2u), block, g, m, acc.c2);
    store_column4(weight, base + 3u < limit, subgroupBroadcast(at[0], 3u), block, g, m, acc.c3);
    store_column4(weight, base + 4u < limit, subgroupBroadcast(at[1], 0u), block, g, m, acc.c4);
    store_column4(weight, base + 5u < limit, subgroupBroadcast(at[1], 1u), block, g, m, acc.c5);
    store_column4(weight, base + 6u < limit, subgroupBroadcast(at[1], 2u), block, g, m, acc.c6);
    store_column4(weight, base + 7u < limit, subgroupBroadcast(at[1], 3u), block, g, m, acc.c7);
    store_column4(weight, base + 8u < limit, subgroupBroadcast(at[2], 0u), block, g, m, acc.c8);
    store_column4(weight, base + 9u < limit, subgroupBroadcast(at[2], 1u), block, g, m, acc.c9);
    store_column4(weight, base + 10u < limit, subgroupBroadcast(at[2], 2u), block, g, m, acc.c10);
    store_column4(weight, base + 11u < limit, subgroupBroadcast(at[2], 3u), block, g, m, acc.c11);
    store_column4(weight, base + 12u < limit, subgroupBroadcast(at[3], 0u), block, g, m, acc.c12);
    store_column4(weight, base + 13u < limit, subgroupBroadcast(at[3], 1u), block, g, m, acc.c13);
    store_column4(weight, base + 14u < limit, subgroupBroadcast(at[3], 2u), block, g, m, acc.c14);
    store_column4(weight, base + 15u < limit, subgroupBroadcast(at[3], 3u), block, g, m, acc.c15);
}

// Writes a wide gather tile's columns as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): columns
// 4i .. 4i + 3 from the destination offset of column 4i, which lane 4i % LANES holds in
// at[4i / LANES].
@diagnostic(off, subgroup_uniformity)
fn wide_store_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {
    store_pixel_quads(base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), g, m, b, acc.c0, acc.c1, acc.c2, acc.c3);
    store_pixel_quads(base + 4u < u.pixels, subgroupBroadcast(at[1], 0u), g, m, b, acc.c4, acc.c5, acc.c6, acc.c7);
    store_pixel_quads(base + 8u < u.pixels, subgroupBroadcast(at[2], 0u), g, m, b, acc.c8, acc.c9, acc.c10, acc.c11);
    store_pixel_quads(base + 12u < u.pixels, subgroupBroadcast(at[3], 0u), g, m, b, acc.c12, acc.c13, acc.c14, acc.c15);
}

// Writes a wide gather tile's columns as one vec4 of channels c .. c + 3 each (see
// conv2d_gemm_packed_wide_channel_quads): column q * LANES + j at at[q] of lane j.
@diagnostic(off, subgroup_uniformity)
fn wide_store_channel_quads(acc: WideTile, base: u32, at: vec4<u32>, c: u32, live: bool, b: vec4<f32>) {
    store_channel_quad(live && base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), c, b, acc.c0);
    store_channel_quad(live && base + 1u < u.pixels, subgroupBroadcast(at[0], 1u), c, b, acc.c1);
    store_channel_quad(live && base + 2u < u.pixels, subgroupBroadcast(at[0], 2u), c, b, acc.c2);
    store_channel_quad(live && base + 3u < u.pixels, subgroupBroadcast(at[0], 3u), c, b, acc.c3);
    store_channel_quad(live && base + 4u < u.pixels, subgroupBroadcast(at[1], 0u), c, b, acc.c4);
    store_channel_quad(live && base + 5u < u.pixels, subgroupBroadcast(at[1], 1u), c, b, acc.c5);
    store_channel_quad(live && base + 6u < u.pixels, subgroupBroadcast(at[1], 2u), c, b, acc.c6);
    store_channel_quad(live && base + 7u < u.pixels, subgroupBroadcast(at[1], 3u), c, b, acc.c7);
    store_channel_quad(live && base + 8u < u.pixels, subgroupBroadcast(at[2], 0u), c, b, acc.c8);
    store_channel_quad(live && base + 9u < u.pixels, subgroupBroadcast(at[2], 1u), c, b, acc.c9);
    store_channel_quad(live && base + 10u < u.pixels, subgroupBroadcast(at[2], 2u), c, b, acc.c10);
    store_channel_quad(live && base + 11u < u.pixels, subgroupBroadcast(at[2], 3u), c, b, acc.c11);
    store_channel_quad(live && base + 12u < u.pixels, subgroupBroadcast(at[3], 0u), c, b, acc.c12);
    store_channel_quad(live && base + 13u < u.pixels, subgroupBroadcast(at[3], 1u), c, b, acc.c13);
    store_channel_quad(live && base + 14u < u.pixels, subgroupBroadcast(at[3], 2u), c, b, acc.c14);
    store_channel_quad(live && base + 15u < u.pixels, subgroupBroadcast(at[3], 3u), c, b, acc.c15);
}

// Writes a tile of conv2d_gemm_packed_wide_from_nchw, whose lane j owns pixels 4j + q, in
// accumulator q * LANES + j, at at[q] of lane j (see store_column).
@diagnostic(off, subgroup_uniformity)
fn wide_store_lane_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32) {
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), 0u, g, m, acc.c0);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[0], 1u), 0u, g, m, acc.c1);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[0], 2u), 0u, g, m, acc.c2);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[0], 3u), 0u, g, m, acc.c3);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[1], 0u), 0u, g, m, acc.c4);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[1], 1u), 0u, g, m, acc.c5);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[1], 2u), 0u, g, m, acc.c6);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[1], 3u), 0u, g, m, acc.c7);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[2], 0u), 0u, g, m, acc.c8);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[2], 1u), 0u, g, m, acc.c9);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[2], 2u), 0u, g, m, acc.c10);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[2], 3u), 0u, g, m, acc.c11);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[3], 0u), 0u, g, m, acc.c12);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[3], 1u), 0u, g, m, acc.c13);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[3], 2u), 0u, g, m, acc.c14);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[3], 3u), 0u, g, m, acc.c15);
}

// The same as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): lane i's four pixels
// from at[0] of lane i.
@diagnostic(off, subgroup_uniformity)
fn wide_store_lane_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {
    store_pixel_quads(base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), g, m, b, acc.c0, acc.c4, acc.c8, acc.c12);
    store_pixel_quads(base + 4u < u.pixels, subgroupBroadcast(at[0], 1u), g, m, b, acc.c1, acc.c5, acc.c9, acc.c13);
    store_pixel_quads(base + 8u < u.pixels, subgroupBroadcast(at[0], 2u), g, m, b, acc.c2, acc.c6, acc.c10, acc.c14);
    store_pixel_quads(base + 12u < u.pixels, subgroupBroadcast(at[0], 3u), g, m, b, acc.c3, acc.c7, acc.c11, acc.c15);
}
