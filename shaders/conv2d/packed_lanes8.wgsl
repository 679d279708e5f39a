// The lane width of the packed kernels in `packed.wgsl`: subgroups of exactly 8 lanes
// (lavapipe at 256 bits, Intel GPUs in SIMD8). The body is the same for every width;
// this piece holds the code that names lanes or a tile's columns: a broadcast's lane must be a
// constant, and the accumulators must be read in straight-line code (an index into them kept
// them in memory in the hot loop too), so there is one line per column. Written by
// scripts/packed-lanes.py.

const LANES: u32 = 8u;

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
    c8: vec2<f32>,
    c9: vec2<f32>,
    c10: vec2<f32>,
    c11: vec2<f32>,
    c12: vec2<f32>,
    c13: vec2<f32>,
    c14: vec2<f32>,
    c15: vec2<f32>,
}

// One step of a conv2d_gemm_packed tile: column vec4s x (lane j's of column j) and y (of
// column LANES + j) against this lane's two channels' vec4s wa and wb.
@diagnostic(off, subgroup_uniformity)
fn pair_step(acc: ptr<function, PairTile>, x: vec4<f32>, y: vec4<f32>, wa: vec4<f32>, wb: vec4<f32>) {
    (*acc).c0 = accumulate((*acc).c0, subgroupBroadcast(x, 0u), wa, wb);
    (*acc).c1 = accumulate((*acc).c1, subgroupBroadcast(x, 1u), wa, wb);
    (*acc).c2 = accumulate((*acc).c2, subgroupBroadcast(x, 2u), wa, wb);
    (*acc).c3 = accumulate((*acc).c3, subgroupBroadcast(x, 3u), wa, wb);
    (*acc).c4 = accumulate((*acc).c4, subgroupBroadcast(x, 4u), wa, wb);
    (*acc).c5 = accumulate((*acc).c5, subgroupBroadcast(x, 5u), wa, wb);
    (*acc).c6 = accumulate((*acc).c6, subgroupBroadcast(x, 6u), wa, wb);
    (*acc).c7 = accumulate((*acc).c7, subgroupBroadcast(x, 7u), wa, wb);
    (*acc).c8 = accumulate((*acc).c8, subgroupBroadcast(y, 0u), wa, wb);
    (*acc).c9 = accumulate((*acc).c9, subgroupBroadcast(y, 1u), wa, wb);
    (*acc).c10 = accumulate((*acc).c10, subgroupBroadcast(y, 2u), wa, wb);
    (*acc).c11 = accumulate((*acc).c11, subgroupBroadcast(y, 3u), wa, wb);
    (*acc).c12 = accumulate((*acc).c12, subgroupBroadcast(y, 4u), wa, wb);
    (*acc).c13 = accumulate((*acc).c13, subgroupBroadcast(y, 5u), wa, wb);
    (*acc).c14 = accumulate((*acc).c14, subgroupBroadcast(y, 6u), wa, wb);
    (*acc).c15 = accumulate((*acc).c15, subgroupBroadcast(y, 7u), wa, wb);
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
    widest = max(widest, exponent(acc.c8));
    widest = max(widest, exponent(acc.c9));
    widest = max(widest, exponent(acc.c10));
    widest = max(widest, exponent(acc.c11));
    widest = max(widest, exponent(acc.c12));
    widest = max(widest, exponent(acc.c13));
    widest = max(widest, exponent(acc.c14));
    widest = max(widest, exponent(acc.c15));
    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn pair_from(redo: array<vec2<f32>, COLUMNS>) -> PairTile {
    return PairTile(
        redo[0], redo[1], redo[2], redo[3], redo[4], redo[5], redo[6], redo[7],
        redo[8], redo[9], redo[10], redo[11], redo[12], redo[13], redo[14], redo[15],
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
    store_column(weight, base + 4u < limit, subgroupBroadcast(lo_at, 4u), block, g, m, acc.c4);
    store_column(weight, base + 5u < limit, subgroupBroadcast(lo_at, 5u), block, g, m, acc.c5);
    store_column(weight, base + 6u < limit, subgroupBroadcast(lo_at, 6u), block, g, m, acc.c6);
    store_column(weight, base + 7u < limit, subgroupBroadcast(lo_at, 7u), block, g, m, acc.c7);
    store_column(weight, base + 8u < limit, subgroupBroadcast(hi_at, 0u), block, g, m, acc.c8);
    store_column(weight, base + 9u < limit, subgroupBroadcast(hi_at, 1u), block, g, m, acc.c9);
    store_column(weight, base + 10u < limit, subgroupBroadcast(hi_at, 2u), block, g, m, acc.c10);
    store_column(weight, base + 11u < limit, subgroupBroadcast(hi_at, 3u), block, g, m, acc.c11);
    store_column(weight, base + 12u < limit, subgroupBroadcast(hi_at, 4u), block, g, m, acc.c12);
    store_column(weight, base + 13u < limit, subgroupBroadcast(hi_at, 5u), block, g, m, acc.c13);
    store_column(weight, base + 14u < limit, subgroupBroadcast(hi_at, 6u), block, g, m, acc.c14);
    store_column(weight, base + 15u < limit, subgroupBroadcast(hi_at, 7u), block, g, m, acc.c15);
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
    c16: vec4<f32>,
    c17: vec4<f32>,
    c18: vec4<f32>,
    c19: vec4<f32>,
    c20: vec4<f32>,
    c21: vec4<f32>,
    c22: vec4<f32>,
    c23: vec4<f32>,
    c24: vec4<f32>,
    c25: vec4<f32>,
    c26: vec4<f32>,
    c27: vec4<f32>,
    c28: vec4<f32>,
    c29: vec4<f32>,
    c30: vec4<f32>,
    c31: vec4<f32>,
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
    widest = max(widest, max(exponent(acc.c16.xy), exponent(acc.c16.zw)));
    widest = max(widest, max(exponent(acc.c17.xy), exponent(acc.c17.zw)));
    widest = max(widest, max(exponent(acc.c18.xy), exponent(acc.c18.zw)));
    widest = max(widest, max(exponent(acc.c19.xy), exponent(acc.c19.zw)));
    widest = max(widest, max(exponent(acc.c20.xy), exponent(acc.c20.zw)));
    widest = max(widest, max(exponent(acc.c21.xy), exponent(acc.c21.zw)));
    widest = max(widest, max(exponent(acc.c22.xy), exponent(acc.c22.zw)));
    widest = max(widest, max(exponent(acc.c23.xy), exponent(acc.c23.zw)));
    widest = max(widest, max(exponent(acc.c24.xy), exponent(acc.c24.zw)));
    widest = max(widest, max(exponent(acc.c25.xy), exponent(acc.c25.zw)));
    widest = max(widest, max(exponent(acc.c26.xy), exponent(acc.c26.zw)));
    widest = max(widest, max(exponent(acc.c27.xy), exponent(acc.c27.zw)));
    widest = max(widest, max(exponent(acc.c28.xy), exponent(acc.c28.zw)));
    widest = max(widest, max(exponent(acc.c29.xy), exponent(acc.c29.zw)));
    widest = max(widest, max(exponent(acc.c30.xy), exponent(acc.c30.zw)));
    widest = max(widest, max(exponent(acc.c31.xy), exponent(acc.c31.zw)));
    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn wide_from(redo: array<vec4<f32>, WIDE_COLUMNS>) -> WideTile {
    return WideTile(
        redo[0], redo[1], redo[2], redo[3], redo[4], redo[5], redo[6], redo[7],
        redo[8], redo[9], redo[10], redo[11], redo[12], redo[13], redo[14], redo[15],
        redo[16], redo[17], redo[18], redo[19], redo[20], redo[21], redo[22], redo[23],
        redo[24], redo[25], redo[26], redo[27], redo[28], redo[29], redo[30], redo[31],
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
    (*acc).c4 = accumulate4((*acc).c4, subgroupBroadcast(x0, 4u), t0, t1, t2, t3);
    (*acc).c5 = accumulate4((*acc).c5, subgroupBroadcast(x0, 5u), t0, t1, t2, t3);
    (*acc).c6 = accumulate4((*acc).c6, subgroupBroadcast(x0, 6u), t0, t1, t2, t3);
    (*acc).c7 = accumulate4((*acc).c7, subgroupBroadcast(x0, 7u), t0, t1, t2, t3);
    (*acc).c8 = accumulate4((*acc).c8, subgroupBroadcast(x1, 0u), t0, t1, t2, t3);
    (*acc).c9 = accumulate4((*acc).c9, subgroupBroadcast(x1, 1u), t0, t1, t2, t3);
    (*acc).c10 = accumulate4((*acc).c10, subgroupBroadcast(x1, 2u), t0, t1, t2, t3);
    (*acc).c11 = accumulate4((*acc).c11, subgroupBroadcast(x1, 3u), t0, t1, t2, t3);
    (*acc).c12 = accumulate4((*acc).c12, subgroupBroadcast(x1, 4u), t0, t1, t2, t3);
    (*acc).c13 = accumulate4((*acc).c13, subgroupBroadcast(x1, 5u), t0, t1, t2, t3);
    (*acc).c14 = accumulate4((*acc).c14, subgroupBroadcast(x1, 6u), t0, t1, t2, t3);
    (*acc).c15 = accumulate4((*acc).c15, subgroupBroadcast(x1, 7u), t0, t1, t2, t3);
    (*acc).c16 = accumulate4((*acc).c16, subgroupBroadcast(x2, 0u), t0, t1, t2, t3);
    (*acc).c17 = accumulate4((*acc).c17, subgroupBroadcast(x2, 1u), t0, t1, t2, t3);
    (*acc).c18 = accumulate4((*acc).c18, subgroupBroadcast(x2, 2u), t0, t1, t2, t3);
    (*acc).c19 = accumulate4((*acc).c19, subgroupBroadcast(x2, 3u), t0, t1, t2, t3);
    (*acc).c20 = accumulate4((*acc).c20, subgroupBroadcast(x2, 4u), t0, t1, t2, t3);
    (*acc).c21 = accumulate4((*acc).c21, subgroupBroadcast(x2, 5u), t0, t1, t2, t3);
    (*acc).c22 = accumulate4((*acc).c22, subgroupBroadcast(x2, 6u), t0, t1, t2, t3);
    (*acc).c23 = accumulate4((*acc).c23, subgroupBroadcast(x2, 7u), t0, t1, t2, t3);
    (*acc).c24 = accumulate4((*acc).c24, subgroupBroadcast(x3, 0u), t0, t1, t2, t3);
    (*acc).c25 = accumulate4((*acc).c25, subgroupBroadcast(x3, 1u), t0, t1, t2, t3);
    (*acc).c26 = accumulate4((*acc).c26, subgroupBroadcast(x3, 2u), t0, t1, t2, t3);
    (*acc).c27 = accumulate4((*acc).c27, subgroupBroadcast(x3, 3u), t0, t1, t2, t3);
    (*acc).c28 = accumulate4((*acc).c28, subgroupBroadcast(x3, 4u), t0, t1, t2, t3);
    (*acc).c29 = accumulate4((*acc).c29, subgroupBroadcast(x3, 5u), t0, t1, t2, t3);
    (*acc).c30 = accumulate4((*acc).c30, subgroupBroadcast(x3, 6u), t0, t1, t2, t3);
    (*acc).c31 = accumulate4((*acc).c31, subgroupBroadcast(x3, 7u), t0, t1, t2, t3);
}

// Writes a wide tile's columns base + j below `limit` (see store_column): column
// q * LANES + j at at[q] of lane j.
@diagnostic(off, subgroup_uniformity)
fn wide_store(acc: WideTile, weight: bool, limit: u32, base: u32, at: vec4<u32>, block: u32, g: u32, m: u32) {
    store_column4(weight, base + 0u < limit, subgroupBroadcast(at[0], 0u), block, g, m, acc.c0);
    store_column4(weight, base + 1u < limit, subgroupBroadcast(at[0], 1u), block, g, m, acc.c1);
    store_column4(weight, base + 2u < limit, subgroupBroadcast(at[0], 2u), block, g, m, acc.c2);
    store_column4(weight, base + 3u < limit, subgroupBroadcast(at[0], 3u), block, g, m, acc.c3);
    store_column4(weight, base + 4u < limit, subgroupBroadcast(at[0], 4u), block, g, m, acc.c4);
    store_column4(weight, base + 5u < limit, subgroupBroadcast(at[0], 5u), block, g, m, acc.c5);
    store_column4(weight, base + 6u < limit, subgroupBroadcast(at[0], 6u), block, g, m, acc.c6);
    store_column4(weight, base + 7u < limit, subgroupBroadcast(at[0], 7u), block, g, m, acc.c7);
    store_column4(weight, base + 8u < limit, subgroupBroadcast(at[1], 0u), block, g, m, acc.c8);
    store_column4(weight, base + 9u < limit, subgroupBroadcast(at[1], 1u), block, g, m, acc.c9);
    store_column4(weight, base + 10u < limit, subgroupBroadcast(at[1], 2u), block, g, m, acc.c10);
    store_column4(weight, base + 11u < limit, subgroupBroadcast(at[1], 3u), block, g, m, acc.c11);
    store_column4(weight, base + 12u < limit, subgroupBroadcast(at[1], 4u), block, g, m, acc.c12);
    store_column4(weight, base + 13u < limit, subgroupBroadcast(at[1], 5u), block, g, m, acc.c13);
    store_column4(weight, base + 14u < limit, subgroupBroadcast(at[1], 6u), block, g, m, acc.c14);
    store_column4(weight, base + 15u < limit, subgroupBroadcast(at[1], 7u), block, g, m, acc.c15);
    store_column4(weight, base + 16u < limit, subgroupBroadcast(at[2], 0u), block, g, m, acc.c16);
    store_column4(weight, base + 17u < limit, subgroupBroadcast(at[2], 1u), block, g, m, acc.c17);
    store_column4(weight, base + 18u < limit, subgroupBroadcast(at[2], 2u), block, g, m, acc.c18);
    store_column4(weight, base + 19u < limit, subgroupBroadcast(at[2], 3u), block, g, m, acc.c19);
    store_column4(weight, base + 20u < limit, subgroupBroadcast(at[2], 4u), block, g, m, acc.c20);
    store_column4(weight, base + 21u < limit, subgroupBroadcast(at[2], 5u), block, g, m, acc.c21);
    store_column4(weight, base + 22u < limit, subgroupBroadcast(at[2], 6u), block, g, m, acc.c22);
    store_column4(weight, base + 23u < limit, subgroupBroadcast(at[2], 7u), block, g, m, acc.c23);
    store_column4(weight, base + 24u < limit, subgroupBroadcast(at[3], 0u), block, g, m, acc.c24);
    store_column4(weight, base + 25u < limit, subgroupBroadcast(at[3], 1u), block, g, m, acc.c25);
    store_column4(weight, base + 26u < limit, subgroupBroadcast(at[3], 2u), block, g, m, acc.c26);
    store_column4(weight, base + 27u < limit, subgroupBroadcast(at[3], 3u), block, g, m, acc.c27);
    store_column4(weight, base + 28u < limit, subgroupBroadcast(at[3], 4u), block, g, m, acc.c28);
    store_column4(weight, base + 29u < limit, subgroupBroadcast(at[3], 5u), block, g, m, acc.c29);
    store_column4(weight, base + 30u < limit, subgroupBroadcast(at[3], 6u), block, g, m, acc.c30);
    store_column4(weight, base + 31u < limit, subgroupBroadcast(at[3], 7u), block, g, m, acc.c31);
}

// Writes a wide gather tile's columns as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): columns
// 4i .. 4i + 3 from the destination offset of column 4i, which lane 4i % LANES holds in
// at[4i / LANES].
@diagnostic(off, subgroup_uniformity)
fn wide_store_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {
    store_pixel_quads(base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), g, m, b, acc.c0, acc.c1, acc.c2, acc.c3);
    store_pixel_quads(base + 4u < u.pixels, subgroupBroadcast(at[0], 4u), g, m, b, acc.c4, acc.c5, acc.c6, acc.c7);
    store_pixel_quads(base + 8u < u.pixels, subgroupBroadcast(at[1], 0u), g, m, b, acc.c8, acc.c9, acc.c10, acc.c11);
    store_pixel_quads(base + 12u < u.pixels, subgroupBroadcast(at[1], 4u), g, m, b, acc.c12, acc.c13, acc.c14, acc.c15);
    store_pixel_quads(base + 16u < u.pixels, subgroupBroadcast(at[2], 0u), g, m, b, acc.c16, acc.c17, acc.c18, acc.c19);
    store_pixel_quads(base + 20u < u.pixels, subgroupBroadcast(at[2], 4u), g, m, b, acc.c20, acc.c21, acc.c22, acc.c23);
    store_pixel_quads(base + 24u < u.pixels, subgroupBroadcast(at[3], 0u), g, m, b, acc.c24, acc.c25, acc.c26, acc.c27);
    store_pixel_quads(base + 28u < u.pixels, subgroupBroadcast(at[3], 4u), g, m, b, acc.c28, acc.c29, acc.c30, acc.c31);
}

// Writes a wide gather tile's columns as one vec4 of channels c .. c + 3 each (see
// conv2d_gemm_packed_wide_channel_quads): column q * LANES + j at at[q] of lane j.
@diagnostic(off, subgroup_uniformity)
fn wide_store_channel_quads(acc: WideTile, base: u32, at: vec4<u32>, c: u32, live: bool, b: vec4<f32>) {
    store_channel_quad(live && base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), c, b, acc.c0);
    store_channel_quad(live && base + 1u < u.pixels, subgroupBroadcast(at[0], 1u), c, b, acc.c1);
    store_channel_quad(live && base + 2u < u.pixels, subgroupBroadcast(at[0], 2u), c, b, acc.c2);
    store_channel_quad(live && base + 3u < u.pixels, subgroupBroadcast(at[0], 3u), c, b, acc.c3);
    store_channel_quad(live && base + 4u < u.pixels, subgroupBroadcast(at[0], 4u), c, b, acc.c4);
    store_channel_quad(live && base + 5u < u.pixels, subgroupBroadcast(at[0], 5u), c, b, acc.c5);
    store_channel_quad(live && base + 6u < u.pixels, subgroupBroadcast(at[0], 6u), c, b, acc.c6);
    store_channel_quad(live && base + 7u < u.pixels, subgroupBroadcast(at[0], 7u), c, b, acc.c7);
    store_channel_quad(live && base + 8u < u.pixels, subgroupBroadcast(at[1], 0u), c, b, acc.c8);
    store_channel_quad(live && base + 9u < u.pixels, subgroupBroadcast(at[1], 1u), c, b, acc.c9);
    store_channel_quad(live && base + 10u < u.pixels, subgroupBroadcast(at[1], 2u), c, b, acc.c10);
    store_channel_quad(live && base + 11u < u.pixels, subgroupBroadcast(at[1], 3u), c, b, acc.c11);
    store_channel_quad(live && base + 12u < u.pixels, subgroupBroadcast(at[1], 4u), c, b, acc.c12);
    store_channel_quad(live && base + 13u < u.pixels, subgroupBroadcast(at[1], 5u), c, b, acc.c13);
    store_channel_quad(live && base + 14u < u.pixels, subgroupBroadcast(at[1], 6u), c, b, acc.c14);
    store_channel_quad(live && base + 15u < u.pixels, subgroupBroadcast(at[1], 7u), c, b, acc.c15);
    store_channel_quad(live && base + 16u < u.pixels, subgroupBroadcast(at[2], 0u), c, b, acc.c16);
    store_channel_quad(live && base + 17u < u.pixels, subgroupBroadcast(at[2], 1u), c, b, acc.c17);
    store_channel_quad(live && base + 18u < u.pixels, subgroupBroadcast(at[2], 2u), c, b, acc.c18);
    store_channel_quad(live && base + 19u < u.pixels, subgroupBroadcast(at[2], 3u), c, b, acc.c19);
    store_channel_quad(live && base + 20u < u.pixels, subgroupBroadcast(at[2], 4u), c, b, acc.c20);
    store_channel_quad(live && base + 21u < u.pixels, subgroupBroadcast(at[2], 5u), c, b, acc.c21);
    store_channel_quad(live && base + 22u < u.pixels, subgroupBroadcast(at[2], 6u), c, b, acc.c22);
    store_channel_quad(live && base + 23u < u.pixels, subgroupBroadcast(at[2], 7u), c, b, acc.c23);
    store_channel_quad(live && base + 24u < u.pixels, subgroupBroadcast(at[3], 0u), c, b, acc.c24);
    store_channel_quad(live && base + 25u < u.pixels, subgroupBroadcast(at[3], 1u), c, b, acc.c25);
    store_channel_quad(live && base + 26u < u.pixels, subgroupBroadcast(at[3], 2u), c, b, acc.c26);
    store_channel_quad(live && base + 27u < u.pixels, subgroupBroadcast(at[3], 3u), c, b, acc.c27);
    store_channel_quad(live && base + 28u < u.pixels, subgroupBroadcast(at[3], 4u), c, b, acc.c28);
    store_channel_quad(live && base + 29u < u.pixels, subgroupBroadcast(at[3], 5u), c, b, acc.c29);
    store_channel_quad(live && base + 30u < u.pixels, subgroupBroadcast(at[3], 6u), c, b, acc.c30);
    store_channel_quad(live && base + 31u < u.pixels, subgroupBroadcast(at[3], 7u), c, b, acc.c31);
}

// Writes a tile of conv2d_gemm_packed_wide_from_nchw, whose lane j owns pixels 4j + q, in
// accumulator q * LANES + j, at at[q] of lane j (see store_column).
@diagnostic(off, subgroup_uniformity)
fn wide_store_lane_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32) {
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), 0u, g, m, acc.c0);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[0], 1u), 0u, g, m, acc.c1);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[0], 2u), 0u, g, m, acc.c2);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[0], 3u), 0u, g, m, acc.c3);
    store_column4(false, base + 16u < u.pixels, subgroupBroadcast(at[0], 4u), 0u, g, m, acc.c4);
    store_column4(false, base + 20u < u.pixels, subgroupBroadcast(at[0], 5u), 0u, g, m, acc.c5);
    store_column4(false, base + 24u < u.pixels, subgroupBroadcast(at[0], 6u), 0u, g, m, acc.c6);
    store_column4(false, base + 28u < u.pixels, subgroupBroadcast(at[0], 7u), 0u, g, m, acc.c7);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[1], 0u), 0u, g, m, acc.c8);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[1], 1u), 0u, g, m, acc.c9);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[1], 2u), 0u, g, m, acc.c10);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[1], 3u), 0u, g, m, acc.c11);
    store_column4(false, base + 16u < u.pixels, subgroupBroadcast(at[1], 4u), 0u, g, m, acc.c12);
    store_column4(false, base + 20u < u.pixels, subgroupBroadcast(at[1], 5u), 0u, g, m, acc.c13);
    store_column4(false, base + 24u < u.pixels, subgroupBroadcast(at[1], 6u), 0u, g, m, acc.c14);
    store_column4(false, base + 28u < u.pixels, subgroupBroadcast(at[1], 7u), 0u, g, m, acc.c15);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[2], 0u), 0u, g, m, acc.c16);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[2], 1u), 0u, g, m, acc.c17);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[2], 2u), 0u, g, m, acc.c18);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[2], 3u), 0u, g, m, acc.c19);
    store_column4(false, base + 16u < u.pixels, subgroupBroadcast(at[2], 4u), 0u, g, m, acc.c20);
    store_column4(false, base + 20u < u.pixels, subgroupBroadcast(at[2], 5u), 0u, g, m, acc.c21);
    store_column4(false, base + 24u < u.pixels, subgroupBroadcast(at[2], 6u), 0u, g, m, acc.c22);
    store_column4(false, base + 28u < u.pixels, subgroupBroadcast(at[2], 7u), 0u, g, m, acc.c23);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[3], 0u), 0u, g, m, acc.c24);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[3], 1u), 0u, g, m, acc.c25);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[3], 2u), 0u, g, m, acc.c26);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[3], 3u), 0u, g, m, acc.c27);
    store_column4(false, base + 16u < u.pixels, subgroupBroadcast(at[3], 4u), 0u, g, m, acc.c28);
    store_column4(false, base + 20u < u.pixels, subgroupBroadcast(at[3], 5u), 0u, g, m, acc.c29);
    store_column4(false, base + 24u < u.pixels, subgroupBroadcast(at[3], 6u), 0u, g, m, acc.c30);
    store_column4(false, base + 28u < u.pixels, subgroupBroadcast(at[3], 7u), 0u, g, m, acc.c31);
}

// The same as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): lane i's four pixels
// from at[0] of lane i.
@diagnostic(off, subgroup_uniformity)
fn wide_store_lane_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {
    store_pixel_quads(base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), g, m, b, acc.c0, acc.c8, acc.c16, acc.c24);
    store_pixel_quads(base + 4u < u.pixels, subgroupBroadcast(at[0], 1u), g, m, b, acc.c1, acc.c9, acc.c17, acc.c25);
    store_pixel_quads(base + 8u < u.pixels, subgroupBroadcast(at[0], 2u), g, m, b, acc.c2, acc.c10, acc.c18, acc.c26);
    store_pixel_quads(base + 12u < u.pixels, subgroupBroadcast(at[0], 3u), g, m, b, acc.c3, acc.c11, acc.c19, acc.c27);
    store_pixel_quads(base + 16u < u.pixels, subgroupBroadcast(at[0], 4u), g, m, b, acc.c4, acc.c12, acc.c20, acc.c28);
    store_pixel_quads(base + 20u < u.pixels, subgroupBroadcast(at[0], 5u), g, m, b, acc.c5, acc.c13, acc.c21, acc.c29);
    store_pixel_quads(base + 24u < u.pixels, subgroupBroadcast(at[0], 6u), g, m, b, acc.c6, acc.c14, acc.c22, acc.c30);
    store_pixel_quads(base + 28u < u.pixels, subgroupBroadcast(at[0], 7u), g, m, b, acc.c7, acc.c15, acc.c23, acc.c31);
}
