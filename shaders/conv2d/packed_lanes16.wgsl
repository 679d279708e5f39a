// The lane width of the packed kernels in `packed.wgsl`: subgroups of exactly 16 lanes
// (lavapipe at 512 bits, Intel GPUs in SIMD16). The body is the same for every width;
// this piece holds the code that names lanes or a tile's columns: a broadcast's lane must be a
// constant, and the accumulators must be read in straight-line code (an index into them kept
// them in memory in the hot loop too), so there is one line per column. Written by
// scripts/packed-lanes.py.

const LANES: u32 = 16u;

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
    c16: vec2<f32>,
    c17: vec2<f32>,
    c18: vec2<f32>,
    c19: vec2<f32>,
    c20: vec2<f32>,
    c21: vec2<f32>,
    c22: vec2<f32>,
    c23: vec2<f32>,
    c24: vec2<f32>,
    c25: vec2<f32>,
    c26: vec2<f32>,
    c27: vec2<f32>,
    c28: vec2<f32>,
    c29: vec2<f32>,
    c30: vec2<f32>,
    c31: vec2<f32>,
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
    (*acc).c8 = accumulate((*acc).c8, subgroupBroadcast(x, 8u), wa, wb);
    (*acc).c9 = accumulate((*acc).c9, subgroupBroadcast(x, 9u), wa, wb);
    (*acc).c10 = accumulate((*acc).c10, subgroupBroadcast(x, 10u), wa, wb);
    (*acc).c11 = accumulate((*acc).c11, subgroupBroadcast(x, 11u), wa, wb);
    (*acc).c12 = accumulate((*acc).c12, subgroupBroadcast(x, 12u), wa, wb);
    (*acc).c13 = accumulate((*acc).c13, subgroupBroadcast(x, 13u), wa, wb);
    (*acc).c14 = accumulate((*acc).c14, subgroupBroadcast(x, 14u), wa, wb);
    (*acc).c15 = accumulate((*acc).c15, subgroupBroadcast(x, 15u), wa, wb);
    (*acc).c16 = accumulate((*acc).c16, subgroupBroadcast(y, 0u), wa, wb);
    (*acc).c17 = accumulate((*acc).c17, subgroupBroadcast(y, 1u), wa, wb);
    (*acc).c18 = accumulate((*acc).c18, subgroupBroadcast(y, 2u), wa, wb);
    (*acc).c19 = accumulate((*acc).c19, subgroupBroadcast(y, 3u), wa, wb);
    (*acc).c20 = accumulate((*acc).c20, subgroupBroadcast(y, 4u), wa, wb);
    (*acc).c21 = accumulate((*acc).c21, subgroupBroadcast(y, 5u), wa, wb);
    (*acc).c22 = accumulate((*acc).c22, subgroupBroadcast(y, 6u), wa, wb);
    (*acc).c23 = accumulate((*acc).c23, subgroupBroadcast(y, 7u), wa, wb);
    (*acc).c24 = accumulate((*acc).c24, subgroupBroadcast(y, 8u), wa, wb);
    (*acc).c25 = accumulate((*acc).c25, subgroupBroadcast(y, 9u), wa, wb);
    (*acc).c26 = accumulate((*acc).c26, subgroupBroadcast(y, 10u), wa, wb);
    (*acc).c27 = accumulate((*acc).c27, subgroupBroadcast(y, 11u), wa, wb);
    (*acc).c28 = accumulate((*acc).c28, subgroupBroadcast(y, 12u), wa, wb);
    (*acc).c29 = accumulate((*acc).c29, subgroupBroadcast(y, 13u), wa, wb);
    (*acc).c30 = accumulate((*acc).c30, subgroupBroadcast(y, 14u), wa, wb);
    (*acc).c31 = accumulate((*acc).c31, subgroupBroadcast(y, 15u), wa, wb);
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
    widest = max(widest, exponent(acc.c16));
    widest = max(widest, exponent(acc.c17));
    widest = max(widest, exponent(acc.c18));
    widest = max(widest, exponent(acc.c19));
    widest = max(widest, exponent(acc.c20));
    widest = max(widest, exponent(acc.c21));
    widest = max(widest, exponent(acc.c22));
    widest = max(widest, exponent(acc.c23));
    widest = max(widest, exponent(acc.c24));
    widest = max(widest, exponent(acc.c25));
    widest = max(widest, exponent(acc.c26));
    widest = max(widest, exponent(acc.c27));
    widest = max(widest, exponent(acc.c28));
    widest = max(widest, exponent(acc.c29));
    widest = max(widest, exponent(acc.c30));
    widest = max(widest, exponent(acc.c31));
    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn pair_from(redo: array<vec2<f32>, COLUMNS>) -> PairTile {
    return PairTile(
        redo[0], redo[1], redo[2], redo[3], redo[4], redo[5], redo[6], redo[7],
        redo[8], redo[9], redo[10], redo[11], redo[12], redo[13], redo[14], redo[15],
        redo[16], redo[17], redo[18], redo[19], redo[20], redo[21], redo[22], redo[23],
        redo[24], redo[25], redo[26], redo[27], redo[28], redo[29], redo[30], redo[31],
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
    store_column(weight, base + 8u < limit, subgroupBroadcast(lo_at, 8u), block, g, m, acc.c8);
    store_column(weight, base + 9u < limit, subgroupBroadcast(lo_at, 9u), block, g, m, acc.c9);
    store_column(weight, base + 10u < limit, subgroupBroadcast(lo_at, 10u), block, g, m, acc.c10);
    store_column(weight, base + 11u < limit, subgroupBroadcast(lo_at, 11u), block, g, m, acc.c11);
    store_column(weight, base + 12u < limit, subgroupBroadcast(lo_at, 12u), block, g, m, acc.c12);
    store_column(weight, base + 13u < limit, subgroupBroadcast(lo_at, 13u), block, g, m, acc.c13);
    store_column(weight, base + 14u < limit, subgroupBroadcast(lo_at, 14u), block, g, m, acc.c14);
    store_column(weight, base + 15u < limit, subgroupBroadcast(lo_at, 15u), block, g, m, acc.c15);
    store_column(weight, base + 16u < limit, subgroupBroadcast(hi_at, 0u), block, g, m, acc.c16);
    store_column(weight, base + 17u < limit, subgroupBroadcast(hi_at, 1u), block, g, m, acc.c17);
    store_column(weight, base + 18u < limit, subgroupBroadcast(hi_at, 2u), block, g, m, acc.c18);
    store_column(weight, base + 19u < limit, subgroupBroadcast(hi_at, 3u), block, g, m, acc.c19);
    store_column(weight, base + 20u < limit, subgroupBroadcast(hi_at, 4u), block, g, m, acc.c20);
    store_column(weight, base + 21u < limit, subgroupBroadcast(hi_at, 5u), block, g, m, acc.c21);
    store_column(weight, base + 22u < limit, subgroupBroadcast(hi_at, 6u), block, g, m, acc.c22);
    store_column(weight, base + 23u < limit, subgroupBroadcast(hi_at, 7u), block, g, m, acc.c23);
    store_column(weight, base + 24u < limit, subgroupBroadcast(hi_at, 8u), block, g, m, acc.c24);
    store_column(weight, base + 25u < limit, subgroupBroadcast(hi_at, 9u), block, g, m, acc.c25);
    store_column(weight, base + 26u < limit, subgroupBroadcast(hi_at, 10u), block, g, m, acc.c26);
    store_column(weight, base + 27u < limit, subgroupBroadcast(hi_at, 11u), block, g, m, acc.c27);
    store_column(weight, base + 28u < limit, subgroupBroadcast(hi_at, 12u), block, g, m, acc.c28);
    store_column(weight, base + 29u < limit, subgroupBroadcast(hi_at, 13u), block, g, m, acc.c29);
    store_column(weight, base + 30u < limit, subgroupBroadcast(hi_at, 14u), block, g, m, acc.c30);
    store_column(weight, base + 31u < limit, subgroupBroadcast(hi_at, 15u), block, g, m, acc.c31);
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
    c32: vec4<f32>,
    c33: vec4<f32>,
    c34: vec4<f32>,
    c35: vec4<f32>,
    c36: vec4<f32>,
    c37: vec4<f32>,
    c38: vec4<f32>,
    c39: vec4<f32>,
    c40: vec4<f32>,
    c41: vec4<f32>,
    c42: vec4<f32>,
    c43: vec4<f32>,
    c44: vec4<f32>,
    c45: vec4<f32>,
    c46: vec4<f32>,
    c47: vec4<f32>,
    c48: vec4<f32>,
    c49: vec4<f32>,
    c50: vec4<f32>,
    c51: vec4<f32>,
    c52: vec4<f32>,
    c53: vec4<f32>,
    c54: vec4<f32>,
    c55: vec4<f32>,
    c56: vec4<f32>,
    c57: vec4<f32>,
    c58: vec4<f32>,
    c59: vec4<f32>,
    c60: vec4<f32>,
    c61: vec4<f32>,
    c62: vec4<f32>,
    c63: vec4<f32>,
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
    widest = max(widest, max(exponent(acc.c32.xy), exponent(acc.c32.zw)));
    widest = max(widest, max(exponent(acc.c33.xy), exponent(acc.c33.zw)));
    widest = max(widest, max(exponent(acc.c34.xy), exponent(acc.c34.zw)));
    widest = max(widest, max(exponent(acc.c35.xy), exponent(acc.c35.zw)));
    widest = max(widest, max(exponent(acc.c36.xy), exponent(acc.c36.zw)));
    widest = max(widest, max(exponent(acc.c37.xy), exponent(acc.c37.zw)));
    widest = max(widest, max(exponent(acc.c38.xy), exponent(acc.c38.zw)));
    widest = max(widest, max(exponent(acc.c39.xy), exponent(acc.c39.zw)));
    widest = max(widest, max(exponent(acc.c40.xy), exponent(acc.c40.zw)));
    widest = max(widest, max(exponent(acc.c41.xy), exponent(acc.c41.zw)));
    widest = max(widest, max(exponent(acc.c42.xy), exponent(acc.c42.zw)));
    widest = max(widest, max(exponent(acc.c43.xy), exponent(acc.c43.zw)));
    widest = max(widest, max(exponent(acc.c44.xy), exponent(acc.c44.zw)));
    widest = max(widest, max(exponent(acc.c45.xy), exponent(acc.c45.zw)));
    widest = max(widest, max(exponent(acc.c46.xy), exponent(acc.c46.zw)));
    widest = max(widest, max(exponent(acc.c47.xy), exponent(acc.c47.zw)));
    widest = max(widest, max(exponent(acc.c48.xy), exponent(acc.c48.zw)));
    widest = max(widest, max(exponent(acc.c49.xy), exponent(acc.c49.zw)));
    widest = max(widest, max(exponent(acc.c50.xy), exponent(acc.c50.zw)));
    widest = max(widest, max(exponent(acc.c51.xy), exponent(acc.c51.zw)));
    widest = max(widest, max(exponent(acc.c52.xy), exponent(acc.c52.zw)));
    widest = max(widest, max(exponent(acc.c53.xy), exponent(acc.c53.zw)));
    widest = max(widest, max(exponent(acc.c54.xy), exponent(acc.c54.zw)));
    widest = max(widest, max(exponent(acc.c55.xy), exponent(acc.c55.zw)));
    widest = max(widest, max(exponent(acc.c56.xy), exponent(acc.c56.zw)));
    widest = max(widest, max(exponent(acc.c57.xy), exponent(acc.c57.zw)));
    widest = max(widest, max(exponent(acc.c58.xy), exponent(acc.c58.zw)));
    widest = max(widest, max(exponent(acc.c59.xy), exponent(acc.c59.zw)));
    widest = max(widest, max(exponent(acc.c60.xy), exponent(acc.c60.zw)));
    widest = max(widest, max(exponent(acc.c61.xy), exponent(acc.c61.zw)));
    widest = max(widest, max(exponent(acc.c62.xy), exponent(acc.c62.zw)));
    widest = max(widest, max(exponent(acc.c63.xy), exponent(acc.c63.zw)));
    return subgroupAny(any(widest == vec2<u32>(EXPONENT)));
}

// The tile of a masked redo's accumulators.
fn wide_from(redo: array<vec4<f32>, WIDE_COLUMNS>) -> WideTile {
    return WideTile(
        redo[0], redo[1], redo[2], redo[3], redo[4], redo[5], redo[6], redo[7],
        redo[8], redo[9], redo[10], redo[11], redo[12], redo[13], redo[14], redo[15],
        redo[16], redo[17], redo[18], redo[19], redo[20], redo[21], redo[22], redo[23],
        redo[24], redo[25], redo[26], redo[27], redo[28], redo[29], redo[30], redo[31],
        redo[32], redo[33], redo[34], redo[35], redo[36], redo[37], redo[38], redo[39],
        redo[40], redo[41], redo[42], redo[43], redo[44], redo[45], redo[46], redo[47],
        redo[48], redo[49], redo[50], redo[51], redo[52], redo[53], redo[54], redo[55],
        redo[56], redo[57], redo[58], redo[59], redo[60], redo[61], redo[62], redo[63],
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
    (*acc).c8 = accumulate4((*acc).c8, subgroupBroadcast(x0, 8u), t0, t1, t2, t3);
    (*acc).c9 = accumulate4((*acc).c9, subgroupBroadcast(x0, 9u), t0, t1, t2, t3);
    (*acc).c10 = accumulate4((*acc).c10, subgroupBroadcast(x0, 10u), t0, t1, t2, t3);
    (*acc).c11 = accumulate4((*acc).c11, subgroupBroadcast(x0, 11u), t0, t1, t2, t3);
    (*acc).c12 = accumulate4((*acc).c12, subgroupBroadcast(x0, 12u), t0, t1, t2, t3);
    (*acc).c13 = accumulate4((*acc).c13, subgroupBroadcast(x0, 13u), t0, t1, t2, t3);
    (*acc).c14 = accumulate4((*acc).c14, subgroupBroadcast(x0, 14u), t0, t1, t2, t3);
    (*acc).c15 = accumulate4((*acc).c15, subgroupBroadcast(x0, 15u), t0, t1, t2, t3);
    (*acc).c16 = accumulate4((*acc).c16, subgroupBroadcast(x1, 0u), t0, t1, t2, t3);
    (*acc).c17 = accumulate4((*acc).c17, subgroupBroadcast(x1, 1u), t0, t1, t2, t3);
    (*acc).c18 = accumulate4((*acc).c18, subgroupBroadcast(x1, 2u), t0, t1, t2, t3);
    (*acc).c19 = accumulate4((*acc).c19, subgroupBroadcast(x1, 3u), t0, t1, t2, t3);
    (*acc).c20 = accumulate4((*acc).c20, subgroupBroadcast(x1, 4u), t0, t1, t2, t3);
    (*acc).c21 = accumulate4((*acc).c21, subgroupBroadcast(x1, 5u), t0, t1, t2, t3);
    (*acc).c22 = accumulate4((*acc).c22, subgroupBroadcast(x1, 6u), t0, t1, t2, t3);
    (*acc).c23 = accumulate4((*acc).c23, subgroupBroadcast(x1, 7u), t0, t1, t2, t3);
    (*acc).c24 = accumulate4((*acc).c24, subgroupBroadcast(x1, 8u), t0, t1, t2, t3);
    (*acc).c25 = accumulate4((*acc).c25, subgroupBroadcast(x1, 9u), t0, t1, t2, t3);
    (*acc).c26 = accumulate4((*acc).c26, subgroupBroadcast(x1, 10u), t0, t1, t2, t3);
    (*acc).c27 = accumulate4((*acc).c27, subgroupBroadcast(x1, 11u), t0, t1, t2, t3);
    (*acc).c28 = accumulate4((*acc).c28, subgroupBroadcast(x1, 12u), t0, t1, t2, t3);
    (*acc).c29 = accumulate4((*acc).c29, subgroupBroadcast(x1, 13u), t0, t1, t2, t3);
    (*acc).c30 = accumulate4((*acc).c30, subgroupBroadcast(x1, 14u), t0, t1, t2, t3);
    (*acc).c31 = accumulate4((*acc).c31, subgroupBroadcast(x1, 15u), t0, t1, t2, t3);
    (*acc).c32 = accumulate4((*acc).c32, subgroupBroadcast(x2, 0u), t0, t1, t2, t3);
    (*acc).c33 = accumulate4((*acc).c33, subgroupBroadcast(x2, 1u), t0, t1, t2, t3);
    (*acc).c34 = accumulate4((*acc).c34, subgroupBroadcast(x2, 2u), t0, t1, t2, t3);
    (*acc).c35 = accumulate4((*acc).c35, subgroupBroadcast(x2, 3u), t0, t1, t2, t3);
    (*acc).c36 = accumulate4((*acc).c36, subgroupBroadcast(x2, 4u), t0, t1, t2, t3);
    (*acc).c37 = accumulate4((*acc).c37, subgroupBroadcast(x2, 5u), t0, t1, t2, t3);
    (*acc).c38 = accumulate4((*acc).c38, subgroupBroadcast(x2, 6u), t0, t1, t2, t3);
    (*acc).c39 = accumulate4((*acc).c39, subgroupBroadcast(x2, 7u), t0, t1, t2, t3);
    (*acc).c40 = accumulate4((*acc).c40, subgroupBroadcast(x2, 8u), t0, t1, t2, t3);
    (*acc).c41 = accumulate4((*acc).c41, subgroupBroadcast(x2, 9u), t0, t1, t2, t3);
    (*acc).c42 = accumulate4((*acc).c42, subgroupBroadcast(x2, 10u), t0, t1, t2, t3);
    (*acc).c43 = accumulate4((*acc).c43, subgroupBroadcast(x2, 11u), t0, t1, t2, t3);
    (*acc).c44 = accumulate4((*acc).c44, subgroupBroadcast(x2, 12u), t0, t1, t2, t3);
    (*acc).c45 = accumulate4((*acc).c45, subgroupBroadcast(x2, 13u), t0, t1, t2, t3);
    (*acc).c46 = accumulate4((*acc).c46, subgroupBroadcast(x2, 14u), t0, t1, t2, t3);
    (*acc).c47 = accumulate4((*acc).c47, subgroupBroadcast(x2, 15u), t0, t1, t2, t3);
    (*acc).c48 = accumulate4((*acc).c48, subgroupBroadcast(x3, 0u), t0, t1, t2, t3);
    (*acc).c49 = accumulate4((*acc).c49, subgroupBroadcast(x3, 1u), t0, t1, t2, t3);
    (*acc).c50 = accumulate4((*acc).c50, subgroupBroadcast(x3, 2u), t0, t1, t2, t3);
    (*acc).c51 = accumulate4((*acc).c51, subgroupBroadcast(x3, 3u), t0, t1, t2, t3);
    (*acc).c52 = accumulate4((*acc).c52, subgroupBroadcast(x3, 4u), t0, t1, t2, t3);
    (*acc).c53 = accumulate4((*acc).c53, subgroupBroadcast(x3, 5u), t0, t1, t2, t3);
    (*acc).c54 = accumulate4((*acc).c54, subgroupBroadcast(x3, 6u), t0, t1, t2, t3);
    (*acc).c55 = accumulate4((*acc).c55, subgroupBroadcast(x3, 7u), t0, t1, t2, t3);
    (*acc).c56 = accumulate4((*acc).c56, subgroupBroadcast(x3, 8u), t0, t1, t2, t3);
    (*acc).c57 = accumulate4((*acc).c57, subgroupBroadcast(x3, 9u), t0, t1, t2, t3);
    (*acc).c58 = accumulate4((*acc).c58, subgroupBroadcast(x3, 10u), t0, t1, t2, t3);
    (*acc).c59 = accumulate4((*acc).c59, subgroupBroadcast(x3, 11u), t0, t1, t2, t3);
    (*acc).c60 = accumulate4((*acc).c60, subgroupBroadcast(x3, 12u), t0, t1, t2, t3);
    (*acc).c61 = accumulate4((*acc).c61, subgroupBroadcast(x3, 13u), t0, t1, t2, t3);
    (*acc).c62 = accumulate4((*acc).c62, subgroupBroadcast(x3, 14u), t0, t1, t2, t3);
    (*acc).c63 = accumulate4((*acc).c63, subgroupBroadcast(x3, 15u), t0, t1, t2, t3);
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
    store_column4(weight, base + 8u < limit, subgroupBroadcast(at[0], 8u), block, g, m, acc.c8);
    store_column4(weight, base + 9u < limit, subgroupBroadcast(at[0], 9u), block, g, m, acc.c9);
    store_column4(weight, base + 10u < limit, subgroupBroadcast(at[0], 10u), block, g, m, acc.c10);
    store_column4(weight, base + 11u < limit, subgroupBroadcast(at[0], 11u), block, g, m, acc.c11);
    store_column4(weight, base + 12u < limit, subgroupBroadcast(at[0], 12u), block, g, m, acc.c12);
    store_column4(weight, base + 13u < limit, subgroupBroadcast(at[0], 13u), block, g, m, acc.c13);
    store_column4(weight, base + 14u < limit, subgroupBroadcast(at[0], 14u), block, g, m, acc.c14);
    store_column4(weight, base + 15u < limit, subgroupBroadcast(at[0], 15u), block, g, m, acc.c15);
    store_column4(weight, base + 16u < limit, subgroupBroadcast(at[1], 0u), block, g, m, acc.c16);
    store_column4(weight, base + 17u < limit, subgroupBroadcast(at[1], 1u), block, g, m, acc.c17);
    store_column4(weight, base + 18u < limit, subgroupBroadcast(at[1], 2u), block, g, m, acc.c18);
    store_column4(weight, base + 19u < limit, subgroupBroadcast(at[1], 3u), block, g, m, acc.c19);
    store_column4(weight, base + 20u < limit, subgroupBroadcast(at[1], 4u), block, g, m, acc.c20);
    store_column4(weight, base + 21u < limit, subgroupBroadcast(at[1], 5u), block, g, m, acc.c21);
    store_column4(weight, base + 22u < limit, subgroupBroadcast(at[1], 6u), block, g, m, acc.c22);
    store_column4(weight, base + 23u < limit, subgroupBroadcast(at[1], 7u), block, g, m, acc.c23);
    store_column4(weight, base + 24u < limit, subgroupBroadcast(at[1], 8u), block, g, m, acc.c24);
    store_column4(weight, base + 25u < limit, subgroupBroadcast(at[1], 9u), block, g, m, acc.c25);
    store_column4(weight, base + 26u < limit, subgroupBroadcast(at[1], 10u), block, g, m, acc.c26);
    store_column4(weight, base + 27u < limit, subgroupBroadcast(at[1], 11u), block, g, m, acc.c27);
    store_column4(weight, base + 28u < limit, subgroupBroadcast(at[1], 12u), block, g, m, acc.c28);
    store_column4(weight, base + 29u < limit, subgroupBroadcast(at[1], 13u), block, g, m, acc.c29);
    store_column4(weight, base + 30u < limit, subgroupBroadcast(at[1], 14u), block, g, m, acc.c30);
    store_column4(weight, base + 31u < limit, subgroupBroadcast(at[1], 15u), block, g, m, acc.c31);
    store_column4(weight, base + 32u < limit, subgroupBroadcast(at[2], 0u), block, g, m, acc.c32);
    store_column4(weight, base + 33u < limit, subgroupBroadcast(at[2], 1u), block, g, m, acc.c33);
    store_column4(weight, base + 34u < limit, subgroupBroadcast(at[2], 2u), block, g, m, acc.c34);
    store_column4(weight, base + 35u < limit, subgroupBroadcast(at[2], 3u), block, g, m, acc.c35);
    store_column4(weight, base + 36u < limit, subgroupBroadcast(at[2], 4u), block, g, m, acc.c36);
    store_column4(weight, base + 37u < limit, subgroupBroadcast(at[2], 5u), block, g, m, acc.c37);
    store_column4(weight, base + 38u < limit, subgroupBroadcast(at[2], 6u), block, g, m, acc.c38);
    store_column4(weight, base + 39u < limit, subgroupBroadcast(at[2], 7u), block, g, m, acc.c39);
    store_column4(weight, base + 40u < limit, subgroupBroadcast(at[2], 8u), block, g, m, acc.c40);
    store_column4(weight, base + 41u < limit, subgroupBroadcast(at[2], 9u), block, g, m, acc.c41);
    store_column4(weight, base + 42u < limit, subgroupBroadcast(at[2], 10u), block, g, m, acc.c42);
    store_column4(weight, base + 43u < limit, subgroupBroadcast(at[2], 11u), block, g, m, acc.c43);
    store_column4(weight, base + 44u < limit, subgroupBroadcast(at[2], 12u), block, g, m, acc.c44);
    store_column4(weight, base + 45u < limit, subgroupBroadcast(at[2], 13u), block, g, m, acc.c45);
    store_column4(weight, base + 46u < limit, subgroupBroadcast(at[2], 14u), block, g, m, acc.c46);
    store_column4(weight, base + 47u < limit, subgroupBroadcast(at[2], 15u), block, g, m, acc.c47);
    store_column4(weight, base + 48u < limit, subgroupBroadcast(at[3], 0u), block, g, m, acc.c48);
    store_column4(weight, base + 49u < limit, subgroupBroadcast(at[3], 1u), block, g, m, acc.c49);
    store_column4(weight, base + 50u < limit, subgroupBroadcast(at[3], 2u), block, g, m, acc.c50);
    store_column4(weight, base + 51u < limit, subgroupBroadcast(at[3], 3u), block, g, m, acc.c51);
    store_column4(weight, base + 52u < limit, subgroupBroadcast(at[3], 4u), block, g, m, acc.c52);
    store_column4(weight, base + 53u < limit, subgroupBroadcast(at[3], 5u), block, g, m, acc.c53);
    store_column4(weight, base + 54u < limit, subgroupBroadcast(at[3], 6u), block, g, m, acc.c54);
    store_column4(weight, base + 55u < limit, subgroupBroadcast(at[3], 7u), block, g, m, acc.c55);
    store_column4(weight, base + 56u < limit, subgroupBroadcast(at[3], 8u), block, g, m, acc.c56);
    store_column4(weight, base + 57u < limit, subgroupBroadcast(at[3], 9u), block, g, m, acc.c57);
    store_column4(weight, base + 58u < limit, subgroupBroadcast(at[3], 10u), block, g, m, acc.c58);
    store_column4(weight, base + 59u < limit, subgroupBroadcast(at[3], 11u), block, g, m, acc.c59);
    store_column4(weight, base + 60u < limit, subgroupBroadcast(at[3], 12u), block, g, m, acc.c60);
    store_column4(weight, base + 61u < limit, subgroupBroadcast(at[3], 13u), block, g, m, acc.c61);
    store_column4(weight, base + 62u < limit, subgroupBroadcast(at[3], 14u), block, g, m, acc.c62);
    store_column4(weight, base + 63u < limit, subgroupBroadcast(at[3], 15u), block, g, m, acc.c63);
}

// Writes a wide gather tile's columns as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): columns
// 4i .. 4i + 3 from the destination offset of column 4i, which lane 4i % LANES holds in
// at[4i / LANES].
@diagnostic(off, subgroup_uniformity)
fn wide_store_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {
    store_pixel_quads(base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), g, m, b, acc.c0, acc.c1, acc.c2, acc.c3);
    store_pixel_quads(base + 4u < u.pixels, subgroupBroadcast(at[0], 4u), g, m, b, acc.c4, acc.c5, acc.c6, acc.c7);
    store_pixel_quads(base + 8u < u.pixels, subgroupBroadcast(at[0], 8u), g, m, b, acc.c8, acc.c9, acc.c10, acc.c11);
    store_pixel_quads(base + 12u < u.pixels, subgroupBroadcast(at[0], 12u), g, m, b, acc.c12, acc.c13, acc.c14, acc.c15);
    store_pixel_quads(base + 16u < u.pixels, subgroupBroadcast(at[1], 0u), g, m, b, acc.c16, acc.c17, acc.c18, acc.c19);
    store_pixel_quads(base + 20u < u.pixels, subgroupBroadcast(at[1], 4u), g, m, b, acc.c20, acc.c21, acc.c22, acc.c23);
    store_pixel_quads(base + 24u < u.pixels, subgroupBroadcast(at[1], 8u), g, m, b, acc.c24, acc.c25, acc.c26, acc.c27);
    store_pixel_quads(base + 28u < u.pixels, subgroupBroadcast(at[1], 12u), g, m, b, acc.c28, acc.c29, acc.c30, acc.c31);
    store_pixel_quads(base + 32u < u.pixels, subgroupBroadcast(at[2], 0u), g, m, b, acc.c32, acc.c33, acc.c34, acc.c35);
    store_pixel_quads(base + 36u < u.pixels, subgroupBroadcast(at[2], 4u), g, m, b, acc.c36, acc.c37, acc.c38, acc.c39);
    store_pixel_quads(base + 40u < u.pixels, subgroupBroadcast(at[2], 8u), g, m, b, acc.c40, acc.c41, acc.c42, acc.c43);
    store_pixel_quads(base + 44u < u.pixels, subgroupBroadcast(at[2], 12u), g, m, b, acc.c44, acc.c45, acc.c46, acc.c47);
    store_pixel_quads(base + 48u < u.pixels, subgroupBroadcast(at[3], 0u), g, m, b, acc.c48, acc.c49, acc.c50, acc.c51);
    store_pixel_quads(base + 52u < u.pixels, subgroupBroadcast(at[3], 4u), g, m, b, acc.c52, acc.c53, acc.c54, acc.c55);
    store_pixel_quads(base + 56u < u.pixels, subgroupBroadcast(at[3], 8u), g, m, b, acc.c56, acc.c57, acc.c58, acc.c59);
    store_pixel_quads(base + 60u < u.pixels, subgroupBroadcast(at[3], 12u), g, m, b, acc.c60, acc.c61, acc.c62, acc.c63);
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
    store_channel_quad(live && base + 8u < u.pixels, subgroupBroadcast(at[0], 8u), c, b, acc.c8);
    store_channel_quad(live && base + 9u < u.pixels, subgroupBroadcast(at[0], 9u), c, b, acc.c9);
    store_channel_quad(live && base + 10u < u.pixels, subgroupBroadcast(at[0], 10u), c, b, acc.c10);
    store_channel_quad(live && base + 11u < u.pixels, subgroupBroadcast(at[0], 11u), c, b, acc.c11);
    store_channel_quad(live && base + 12u < u.pixels, subgroupBroadcast(at[0], 12u), c, b, acc.c12);
    store_channel_quad(live && base + 13u < u.pixels, subgroupBroadcast(at[0], 13u), c, b, acc.c13);
    store_channel_quad(live && base + 14u < u.pixels, subgroupBroadcast(at[0], 14u), c, b, acc.c14);
    store_channel_quad(live && base + 15u < u.pixels, subgroupBroadcast(at[0], 15u), c, b, acc.c15);
    store_channel_quad(live && base + 16u < u.pixels, subgroupBroadcast(at[1], 0u), c, b, acc.c16);
    store_channel_quad(live && base + 17u < u.pixels, subgroupBroadcast(at[1], 1u), c, b, acc.c17);
    store_channel_quad(live && base + 18u < u.pixels, subgroupBroadcast(at[1], 2u), c, b, acc.c18);
    store_channel_quad(live && base + 19u < u.pixels, subgroupBroadcast(at[1], 3u), c, b, acc.c19);
    store_channel_quad(live && base + 20u < u.pixels, subgroupBroadcast(at[1], 4u), c, b, acc.c20);
    store_channel_quad(live && base + 21u < u.pixels, subgroupBroadcast(at[1], 5u), c, b, acc.c21);
    store_channel_quad(live && base + 22u < u.pixels, subgroupBroadcast(at[1], 6u), c, b, acc.c22);
    store_channel_quad(live && base + 23u < u.pixels, subgroupBroadcast(at[1], 7u), c, b, acc.c23);
    store_channel_quad(live && base + 24u < u.pixels, subgroupBroadcast(at[1], 8u), c, b, acc.c24);
    store_channel_quad(live && base + 25u < u.pixels, subgroupBroadcast(at[1], 9u), c, b, acc.c25);
    store_channel_quad(live && base + 26u < u.pixels, subgroupBroadcast(at[1], 10u), c, b, acc.c26);
    store_channel_quad(live && base + 27u < u.pixels, subgroupBroadcast(at[1], 11u), c, b, acc.c27);
    store_channel_quad(live && base + 28u < u.pixels, subgroupBroadcast(at[1], 12u), c, b, acc.c28);
    store_channel_quad(live && base + 29u < u.pixels, subgroupBroadcast(at[1], 13u), c, b, acc.c29);
    store_channel_quad(live && base + 30u < u.pixels, subgroupBroadcast(at[1], 14u), c, b, acc.c30);
    store_channel_quad(live && base + 31u < u.pixels, subgroupBroadcast(at[1], 15u), c, b, acc.c31);
    store_channel_quad(live && base + 32u < u.pixels, subgroupBroadcast(at[2], 0u), c, b, acc.c32);
    store_channel_quad(live && base + 33u < u.pixels, subgroupBroadcast(at[2], 1u), c, b, acc.c33);
    store_channel_quad(live && base + 34u < u.pixels, subgroupBroadcast(at[2], 2u), c, b, acc.c34);
    store_channel_quad(live && base + 35u < u.pixels, subgroupBroadcast(at[2], 3u), c, b, acc.c35);
    store_channel_quad(live && base + 36u < u.pixels, subgroupBroadcast(at[2], 4u), c, b, acc.c36);
    store_channel_quad(live && base + 37u < u.pixels, subgroupBroadcast(at[2], 5u), c, b, acc.c37);
    store_channel_quad(live && base + 38u < u.pixels, subgroupBroadcast(at[2], 6u), c, b, acc.c38);
    store_channel_quad(live && base + 39u < u.pixels, subgroupBroadcast(at[2], 7u), c, b, acc.c39);
    store_channel_quad(live && base + 40u < u.pixels, subgroupBroadcast(at[2], 8u), c, b, acc.c40);
    store_channel_quad(live && base + 41u < u.pixels, subgroupBroadcast(at[2], 9u), c, b, acc.c41);
    store_channel_quad(live && base + 42u < u.pixels, subgroupBroadcast(at[2], 10u), c, b, acc.c42);
    store_channel_quad(live && base + 43u < u.pixels, subgroupBroadcast(at[2], 11u), c, b, acc.c43);
    store_channel_quad(live && base + 44u < u.pixels, subgroupBroadcast(at[2], 12u), c, b, acc.c44);
    store_channel_quad(live && base + 45u < u.pixels, subgroupBroadcast(at[2], 13u), c, b, acc.c45);
    store_channel_quad(live && base + 46u < u.pixels, subgroupBroadcast(at[2], 14u), c, b, acc.c46);
    store_channel_quad(live && base + 47u < u.pixels, subgroupBroadcast(at[2], 15u), c, b, acc.c47);
    store_channel_quad(live && base + 48u < u.pixels, subgroupBroadcast(at[3], 0u), c, b, acc.c48);
    store_channel_quad(live && base + 49u < u.pixels, subgroupBroadcast(at[3], 1u), c, b, acc.c49);
    store_channel_quad(live && base + 50u < u.pixels, subgroupBroadcast(at[3], 2u), c, b, acc.c50);
    store_channel_quad(live && base + 51u < u.pixels, subgroupBroadcast(at[3], 3u), c, b, acc.c51);
    store_channel_quad(live && base + 52u < u.pixels, subgroupBroadcast(at[3], 4u), c, b, acc.c52);
    store_channel_quad(live && base + 53u < u.pixels, subgroupBroadcast(at[3], 5u), c, b, acc.c53);
    store_channel_quad(live && base + 54u < u.pixels, subgroupBroadcast(at[3], 6u), c, b, acc.c54);
    store_channel_quad(live && base + 55u < u.pixels, subgroupBroadcast(at[3], 7u), c, b, acc.c55);
    store_channel_quad(live && base + 56u < u.pixels, subgroupBroadcast(at[3], 8u), c, b, acc.c56);
    store_channel_quad(live && base + 57u < u.pixels, subgroupBroadcast(at[3], 9u), c, b, acc.c57);
    store_channel_quad(live && base + 58u < u.pixels, subgroupBroadcast(at[3], 10u), c, b, acc.c58);
    store_channel_quad(live && base + 59u < u.pixels, subgroupBroadcast(at[3], 11u), c, b, acc.c59);
    store_channel_quad(live && base + 60u < u.pixels, subgroupBroadcast(at[3], 12u), c, b, acc.c60);
    store_channel_quad(live && base + 61u < u.pixels, subgroupBroadcast(at[3], 13u), c, b, acc.c61);
    store_channel_quad(live && base + 62u < u.pixels, subgroupBroadcast(at[3], 14u), c, b, acc.c62);
    store_channel_quad(live && base + 63u < u.pixels, subgroupBroadcast(at[3], 15u), c, b, acc.c63);
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
    store_column4(false, base + 32u < u.pixels, subgroupBroadcast(at[0], 8u), 0u, g, m, acc.c8);
    store_column4(false, base + 36u < u.pixels, subgroupBroadcast(at[0], 9u), 0u, g, m, acc.c9);
    store_column4(false, base + 40u < u.pixels, subgroupBroadcast(at[0], 10u), 0u, g, m, acc.c10);
    store_column4(false, base + 44u < u.pixels, subgroupBroadcast(at[0], 11u), 0u, g, m, acc.c11);
    store_column4(false, base + 48u < u.pixels, subgroupBroadcast(at[0], 12u), 0u, g, m, acc.c12);
    store_column4(false, base + 52u < u.pixels, subgroupBroadcast(at[0], 13u), 0u, g, m, acc.c13);
    store_column4(false, base + 56u < u.pixels, subgroupBroadcast(at[0], 14u), 0u, g, m, acc.c14);
    store_column4(false, base + 60u < u.pixels, subgroupBroadcast(at[0], 15u), 0u, g, m, acc.c15);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[1], 0u), 0u, g, m, acc.c16);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[1], 1u), 0u, g, m, acc.c17);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[1], 2u), 0u, g, m, acc.c18);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[1], 3u), 0u, g, m, acc.c19);
    store_column4(false, base + 16u < u.pixels, subgroupBroadcast(at[1], 4u), 0u, g, m, acc.c20);
    store_column4(false, base + 20u < u.pixels, subgroupBroadcast(at[1], 5u), 0u, g, m, acc.c21);
    store_column4(false, base + 24u < u.pixels, subgroupBroadcast(at[1], 6u), 0u, g, m, acc.c22);
    store_column4(false, base + 28u < u.pixels, subgroupBroadcast(at[1], 7u), 0u, g, m, acc.c23);
    store_column4(false, base + 32u < u.pixels, subgroupBroadcast(at[1], 8u), 0u, g, m, acc.c24);
    store_column4(false, base + 36u < u.pixels, subgroupBroadcast(at[1], 9u), 0u, g, m, acc.c25);
    store_column4(false, base + 40u < u.pixels, subgroupBroadcast(at[1], 10u), 0u, g, m, acc.c26);
    store_column4(false, base + 44u < u.pixels, subgroupBroadcast(at[1], 11u), 0u, g, m, acc.c27);
    store_column4(false, base + 48u < u.pixels, subgroupBroadcast(at[1], 12u), 0u, g, m, acc.c28);
    store_column4(false, base + 52u < u.pixels, subgroupBroadcast(at[1], 13u), 0u, g, m, acc.c29);
    store_column4(false, base + 56u < u.pixels, subgroupBroadcast(at[1], 14u), 0u, g, m, acc.c30);
    store_column4(false, base + 60u < u.pixels, subgroupBroadcast(at[1], 15u), 0u, g, m, acc.c31);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[2], 0u), 0u, g, m, acc.c32);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[2], 1u), 0u, g, m, acc.c33);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[2], 2u), 0u, g, m, acc.c34);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[2], 3u), 0u, g, m, acc.c35);
    store_column4(false, base + 16u < u.pixels, subgroupBroadcast(at[2], 4u), 0u, g, m, acc.c36);
    store_column4(false, base + 20u < u.pixels, subgroupBroadcast(at[2], 5u), 0u, g, m, acc.c37);
    store_column4(false, base + 24u < u.pixels, subgroupBroadcast(at[2], 6u), 0u, g, m, acc.c38);
    store_column4(false, base + 28u < u.pixels, subgroupBroadcast(at[2], 7u), 0u, g, m, acc.c39);
    store_column4(false, base + 32u < u.pixels, subgroupBroadcast(at[2], 8u), 0u, g, m, acc.c40);
    store_column4(false, base + 36u < u.pixels, subgroupBroadcast(at[2], 9u), 0u, g, m, acc.c41);
    store_column4(false, base + 40u < u.pixels, subgroupBroadcast(at[2], 10u), 0u, g, m, acc.c42);
    store_column4(false, base + 44u < u.pixels, subgroupBroadcast(at[2], 11u), 0u, g, m, acc.c43);
    store_column4(false, base + 48u < u.pixels, subgroupBroadcast(at[2], 12u), 0u, g, m, acc.c44);
    store_column4(false, base + 52u < u.pixels, subgroupBroadcast(at[2], 13u), 0u, g, m, acc.c45);
    store_column4(false, base + 56u < u.pixels, subgroupBroadcast(at[2], 14u), 0u, g, m, acc.c46);
    store_column4(false, base + 60u < u.pixels, subgroupBroadcast(at[2], 15u), 0u, g, m, acc.c47);
    store_column4(false, base + 0u < u.pixels, subgroupBroadcast(at[3], 0u), 0u, g, m, acc.c48);
    store_column4(false, base + 4u < u.pixels, subgroupBroadcast(at[3], 1u), 0u, g, m, acc.c49);
    store_column4(false, base + 8u < u.pixels, subgroupBroadcast(at[3], 2u), 0u, g, m, acc.c50);
    store_column4(false, base + 12u < u.pixels, subgroupBroadcast(at[3], 3u), 0u, g, m, acc.c51);
    store_column4(false, base + 16u < u.pixels, subgroupBroadcast(at[3], 4u), 0u, g, m, acc.c52);
    store_column4(false, base + 20u < u.pixels, subgroupBroadcast(at[3], 5u), 0u, g, m, acc.c53);
    store_column4(false, base + 24u < u.pixels, subgroupBroadcast(at[3], 6u), 0u, g, m, acc.c54);
    store_column4(false, base + 28u < u.pixels, subgroupBroadcast(at[3], 7u), 0u, g, m, acc.c55);
    store_column4(false, base + 32u < u.pixels, subgroupBroadcast(at[3], 8u), 0u, g, m, acc.c56);
    store_column4(false, base + 36u < u.pixels, subgroupBroadcast(at[3], 9u), 0u, g, m, acc.c57);
    store_column4(false, base + 40u < u.pixels, subgroupBroadcast(at[3], 10u), 0u, g, m, acc.c58);
    store_column4(false, base + 44u < u.pixels, subgroupBroadcast(at[3], 11u), 0u, g, m, acc.c59);
    store_column4(false, base + 48u < u.pixels, subgroupBroadcast(at[3], 12u), 0u, g, m, acc.c60);
    store_column4(false, base + 52u < u.pixels, subgroupBroadcast(at[3], 13u), 0u, g, m, acc.c61);
    store_column4(false, base + 56u < u.pixels, subgroupBroadcast(at[3], 14u), 0u, g, m, acc.c62);
    store_column4(false, base + 60u < u.pixels, subgroupBroadcast(at[3], 15u), 0u, g, m, acc.c63);
}

// The same as quads of pixels (see conv2d_gemm_packed_wide_pixel_quads): lane i's four pixels
// from at[0] of lane i.
@diagnostic(off, subgroup_uniformity)
fn wide_store_lane_pixel_quads(acc: WideTile, base: u32, at: vec4<u32>, g: u32, m: u32, b: vec4<f32>) {
    store_pixel_quads(base + 0u < u.pixels, subgroupBroadcast(at[0], 0u), g, m, b, acc.c0, acc.c16, acc.c32, acc.c48);
    store_pixel_quads(base + 4u < u.pixels, subgroupBroadcast(at[0], 1u), g, m, b, acc.c1, acc.c17, acc.c33, acc.c49);
    store_pixel_quads(base + 8u < u.pixels, subgroupBroadcast(at[0], 2u), g, m, b, acc.c2, acc.c18, acc.c34, acc.c50);
    store_pixel_quads(base + 12u < u.pixels, subgroupBroadcast(at[0], 3u), g, m, b, acc.c3, acc.c19, acc.c35, acc.c51);
    store_pixel_quads(base + 16u < u.pixels, subgroupBroadcast(at[0], 4u), g, m, b, acc.c4, acc.c20, acc.c36, acc.c52);
    store_pixel_quads(base + 20u < u.pixels, subgroupBroadcast(at[0], 5u), g, m, b, acc.c5, acc.c21, acc.c37, acc.c53);
    store_pixel_quads(base + 24u < u.pixels, subgroupBroadcast(at[0], 6u), g, m, b, acc.c6, acc.c22, acc.c38, acc.c54);
    store_pixel_quads(base + 28u < u.pixels, subgroupBroadcast(at[0], 7u), g, m, b, acc.c7, acc.c23, acc.c39, acc.c55);
    store_pixel_quads(base + 32u < u.pixels, subgroupBroadcast(at[0], 8u), g, m, b, acc.c8, acc.c24, acc.c40, acc.c56);
    store_pixel_quads(base + 36u < u.pixels, subgroupBroadcast(at[0], 9u), g, m, b, acc.c9, acc.c25, acc.c41, acc.c57);
    store_pixel_quads(base + 40u < u.pixels, subgroupBroadcast(at[0], 10u), g, m, b, acc.c10, acc.c26, acc.c42, acc.c58);
    store_pixel_quads(base + 44u < u.pixels, subgroupBroadcast(at[0], 11u), g, m, b, acc.c11, acc.c27, acc.c43, acc.c59);
    store_pixel_quads(base + 48u < u.pixels, subgroupBroadcast(at[0], 12u), g, m, b, acc.c12, acc.c28, acc.c44, acc.c60);
    store_pixel_quads(base + 52u < u.pixels, subgroupBroadcast(at[0], 13u), g, m, b, acc.c13, acc.c29, acc.c45, acc.c61);
    store_pixel_quads(base + 56u < u.pixels, subgroupBroadcast(at[0], 14u), g, m, b, acc.c14, acc.c30, acc.c46, acc.c62);
    store_pixel_quads(base + 60u < u.pixels, subgroupBroadcast(at[0], 15u), g, m, b, acc.c15, acc.c31, acc.c47, acc.c63);
}
