// Implicit-GEMM conv2d over 8-wide subgroups on operands repacked as vec4 along the reduction
// (pack.wgsl's *_texture entry points make them). This is the subgroup scheme of
// subgroup.wgsl with four reduction terms per step and more columns per lane:
// - conv2d_gemm_packed8: an 8-wide subgroup owns 16 destination pixels ("columns") by 16
//   channels; at each step lane l loads the vec4s of columns l and l + 8 and the vec4s of its
//   own two channels, the others read the column vec4s by `subgroupBroadcast`, and each lane
//   does 16 x 2 x 4 fused multiply-adds from 4 loads.
// - conv2d_gemm_packed8_wide (more than 16 channels): 32 columns by 32 channels, 32 x 4 x 4
//   multiply-adds from 8 loads.
// The weight-gradient kernels map the same tiles onto columns (r, ty, tx).
//
// What pays on lavapipe is fewer load instructions per multiply-add: each load inside a loop
// costs tens of cycles, many times a multiply-add. Hence the four terms per vec4, the wide
// tiles, no bounds selects (the repacked source is zero-padded around its edges and past its
// last channel) and the operands in textures, whose fetches cost half a buffer load there.
// The accumulators (32 or 128 per lane) overflow AVX2's 16 registers, and the spills still
// cost less than the loads they save (measured on the 3x3 64-channel 56x56 layer at batch 8:
// 136 -> 84 ms for 16 columns instead of 8, then ~1.4x for the wide tiles and ~1.5x for
// textures).
//
// Needs the SUBGROUP feature and a subgroup size of exactly 8, like subgroup.wgsl.
//
// Uniformity: every subgroup operation runs in control flow that is uniform across the subgroup
// in fact. The subgroup's tile index comes from `subgroupBroadcastFirst(local)`, the same value
// on every lane; branches test it, uniform uniforms, or `subgroupAny`. WGSL's uniformity analysis
// cannot see through the broadcast (it treats every builtin input as non-uniform), so each entry
// point, and each helper that calls a subgroup operation, turns off `subgroup_uniformity`
// for itself, and only that rule.
//
// Signed quantities travel as i32 bits in u32 fields.

@group(0) @binding(0) var<uniform> u: GemmConvUniforms;
@group(0) @binding(1) var packed_a: texture_2d<f32>;
@group(0) @binding(2) var packed_b: texture_2d<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// The packed operands are 2D textures (common/packed_texture.wgsl). lavapipe fetches a texel
// with vector address math and no per-lane branch, where a storage-buffer load inside a loop
// runs lane by lane: measured, a texel fetch costs half a vec4 buffer load there.
fn load_a(i: u32) -> vec4<f32> {
    return textureLoad(packed_a, texel_of(i), 0);
}

fn load_b(i: u32) -> vec4<f32> {
    return textureLoad(packed_b, texel_of(i), 0);
}
const LANES: u32 = 8u;
const TILE_CHANNELS: u32 = 16u;
// Destination pixels (weight-gradient columns) per subgroup tile: two per lane.
const COLUMNS: u32 = 16u;

// The subgroup an invocation belongs to, counted over the whole dispatch.
@diagnostic(off, subgroup_uniformity)
fn subgroup_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return (workgroup_index(wg, groups) * WORKGROUP_SIZE + subgroupBroadcastFirst(local)) / LANES;
}

// Which tile subgroup sg computes: column block fastest, then channel tile and group, and for
// the weight gradient's split K the block of output rows last.
struct Tile {
    block: u32,
    tile: u32,
    g: u32,
    rows: u32,
}

fn gather_tile(sg: u32) -> Tile {
    let rest = sg / u.column_blocks;
    return Tile(sg % u.column_blocks, rest % u.channel_tiles_per_group, rest / u.channel_tiles_per_group, 0u);
}

fn weight_grad_tile(sg: u32) -> Tile {
    let rest = sg / u.column_blocks;
    let groups = rest / u.channel_tiles_per_group;
    return Tile(sg % u.column_blocks, rest % u.channel_tiles_per_group, groups % u.groups, groups / u.groups);
}

// Where a gather's flat reduction step k (over (ty, tx, r4), r4 fastest) reads the packed
// source, relative to tap (0, 0): one vec4 further each step, and uniform jumps when r4 or tx
// wraps. The walk keeps the counters, so the hot loop has no division.
struct GatherWalk {
    at: i32,
    rc: u32,
    tx: u32,
    jump_x: i32,
    jump_y: i32,
}

fn gather_walk(start: i32) -> GatherWalk {
    let r4 = i32(u.reduce4);
    let jump_x = bitcast<i32>(u.tap_step_w) * r4 - r4;
    let jump_y = bitcast<i32>(u.tap_step_h) * i32(u.packed_w) * r4 - i32(u.taps_w) * bitcast<i32>(u.tap_step_w) * r4;
    return GatherWalk(start, 0u, 0u, jump_x, jump_y);
}

fn gather_step(walk: ptr<function, GatherWalk>) {
    let wrap_r = (*walk).rc + 1u == u.reduce4;
    let wrap_x = wrap_r && (*walk).tx + 1u == u.taps_w;
    (*walk).rc = select((*walk).rc + 1u, 0u, wrap_r);
    (*walk).tx = select((*walk).tx + u32(wrap_r), 0u, wrap_x);
    (*walk).at += 1 + select(0, (*walk).jump_x, wrap_r) + select(0, (*walk).jump_y, wrap_x);
}

// The same by division, for the rare masked redo: step k's tap offset (rows, columns) from
// tap (0, 0), and its offset in the packed source.
fn gather_tap(k: u32) -> vec2<i32> {
    let t = k / u.reduce4;
    return vec2<i32>(i32(t / u.taps_w) * bitcast<i32>(u.tap_step_h), i32(t % u.taps_w) * bitcast<i32>(u.tap_step_w));
}

fn gather_offset(tap: vec2<i32>, k: u32) -> i32 {
    return (tap.x * i32(u.packed_w) + tap.y) * i32(u.reduce4) + i32(k % u.reduce4);
}

// Where the weight gradient's reduction step (output row (n, oy), vec4 ox4) reads a column's
// packed input row: one vec4 further each step, jumping at the ends of rows and images.
struct RowWalk {
    at: u32,
    oy: u32,
    ox4: u32,
    jump_row: i32,
    jump_image: i32,
}

// The walk from output row `row` (n, oy), vec4 0, starting at `start`.
fn row_walk(start: u32, row: u32) -> RowWalk {
    let jump_row = (i32(u.src_step_h) - 1) * i32(u.ow4);
    let jump_image = (i32(u.packed_h) - i32(u.grid_h * u.src_step_h)) * i32(u.ow4);
    return RowWalk(start + pixel_step(row, 0u), row % u.grid_h, 0u, jump_row, jump_image);
}

fn row_step(walk: ptr<function, RowWalk>) {
    let wrap_x = (*walk).ox4 + 1u == u.ow4;
    let wrap_y = wrap_x && (*walk).oy + 1u == u.grid_h;
    (*walk).ox4 = select((*walk).ox4 + 1u, 0u, wrap_x);
    (*walk).oy = select((*walk).oy + u32(wrap_x), 0u, wrap_y);
    (*walk).at = u32(i32((*walk).at) + 1 + select(0, (*walk).jump_row, wrap_x) + select(0, (*walk).jump_image, wrap_y));
}

// acc (this lane's two channels at one column) plus the four reduction terms of column
// values x against channel vectors a and b.
fn accumulate(acc: vec2<f32>, x: vec4<f32>, a: vec4<f32>, b: vec4<f32>) -> vec2<f32> {
    var s = fma(vec2<f32>(x.x), vec2<f32>(a.x, b.x), acc);
    s = fma(vec2<f32>(x.y), vec2<f32>(a.y, b.y), s);
    s = fma(vec2<f32>(x.z), vec2<f32>(a.z, b.z), s);
    return fma(vec2<f32>(x.w), vec2<f32>(a.w, b.w), s);
}

// `accumulate` with each of the four terms kept only where `live` says so.
fn accumulate_masked(acc: vec2<f32>, x: vec4<f32>, a: vec4<f32>, b: vec4<f32>, live: vec4<bool>) -> vec2<f32> {
    var s = select(acc, fma(vec2<f32>(x.x), vec2<f32>(a.x, b.x), acc), live.x);
    s = select(s, fma(vec2<f32>(x.y), vec2<f32>(a.y, b.y), s), live.y);
    s = select(s, fma(vec2<f32>(x.z), vec2<f32>(a.z, b.z), s), live.z);
    return select(s, fma(vec2<f32>(x.w), vec2<f32>(a.w, b.w), s), live.w);
}

// The exponent fields of v: EXPONENT (all ones) marks an infinity or NaN, found by bits
// because WGSL may assume floats are finite.
const EXPONENT: u32 = 0x7f800000u;
fn exponent(v: vec2<f32>) -> vec2<u32> {
    return bitcast<vec2<u32>>(v) & vec2<u32>(EXPONENT);
}

// The largest exponent field among 16 accumulators: all ones means one is infinite or NaN.
// A non-finite operand always leaves one (times a nonzero value it is infinite or NaN, times
// a zero NaN), so a check of the accumulators after the loop finds every tile where such an
// operand met the zero padding, without a test per loaded operand inside the loop. Straight-
// line code: accumulators indexed dynamically would be kept in memory in the hot loop too.
fn widest_exponent16(
    a0: vec2<f32>, a1: vec2<f32>, a2: vec2<f32>, a3: vec2<f32>,
    a4: vec2<f32>, a5: vec2<f32>, a6: vec2<f32>, a7: vec2<f32>,
    b0: vec2<f32>, b1: vec2<f32>, b2: vec2<f32>, b3: vec2<f32>,
    b4: vec2<f32>, b5: vec2<f32>, b6: vec2<f32>, b7: vec2<f32>,
) -> vec2<u32> {
    let a = max(max(max(exponent(a0), exponent(a1)), max(exponent(a2), exponent(a3))), max(max(exponent(a4), exponent(a5)), max(exponent(a6), exponent(a7))));
    let b = max(max(max(exponent(b0), exponent(b1)), max(exponent(b2), exponent(b3))), max(max(exponent(b4), exponent(b5)), max(exponent(b6), exponent(b7))));
    return max(a, b);
}

// Gather convolution (the forward pass, or the input gradient for one stride phase).
// packed_a = source from pack_source_texture, packed_b = weights from pack_weight_texture, bias
// (if has_bias), dst = destination in its own layout. Subgroup s takes column block
// s % column_blocks, then channel tile and group. The reduction runs over (ty, tx, r4), r4
// fastest, as one flat loop whose source offset steps by uniform jumps when r4 or tx wraps.
// Tail lanes clamp their pixel (an in-bounds source position) so that every lane keeps
// broadcasting, and skip their stores; channels past the group's end have zero weights.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed8(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let at_tile = gather_tile(sg);
    let block = at_tile.block;
    let tile = at_tile.tile;
    let g = at_tile.g;
    let m = tile * TILE_CHANNELS + 2u * lane;

    let base = block * COLUMNS;
    let lo = source_offset(g, min(base + lane, u.pixels - 1u));
    let hi = source_offset(g, min(base + LANES + lane, u.pixels - 1u)) - lo;
    var walk = gather_walk(lo);
    let taps = u.taps_h * u.taps_w;
    let w_start = u.packed_w_base + g * taps * u.reduce4 * u.m_pad + m;
    var wk = w_start;

    var a0 = vec2<f32>(0.0);
    var a1 = vec2<f32>(0.0);
    var a2 = vec2<f32>(0.0);
    var a3 = vec2<f32>(0.0);
    var a4 = vec2<f32>(0.0);
    var a5 = vec2<f32>(0.0);
    var a6 = vec2<f32>(0.0);
    var a7 = vec2<f32>(0.0);
    var b0 = vec2<f32>(0.0);
    var b1 = vec2<f32>(0.0);
    var b2 = vec2<f32>(0.0);
    var b3 = vec2<f32>(0.0);
    var b4 = vec2<f32>(0.0);
    var b5 = vec2<f32>(0.0);
    var b6 = vec2<f32>(0.0);
    var b7 = vec2<f32>(0.0);
    let k_len = taps * u.reduce4;
    for (var k = 0u; k < k_len; k++) {
        let x = load_a(u32(walk.at));
        let y = load_a(u32(walk.at + hi));
        let wa = load_b(wk);
        let wb = load_b(wk + 1u);
        a0 = accumulate(a0, subgroupBroadcast(x, 0u), wa, wb);
        a1 = accumulate(a1, subgroupBroadcast(x, 1u), wa, wb);
        a2 = accumulate(a2, subgroupBroadcast(x, 2u), wa, wb);
        a3 = accumulate(a3, subgroupBroadcast(x, 3u), wa, wb);
        a4 = accumulate(a4, subgroupBroadcast(x, 4u), wa, wb);
        a5 = accumulate(a5, subgroupBroadcast(x, 5u), wa, wb);
        a6 = accumulate(a6, subgroupBroadcast(x, 6u), wa, wb);
        a7 = accumulate(a7, subgroupBroadcast(x, 7u), wa, wb);
        b0 = accumulate(b0, subgroupBroadcast(y, 0u), wa, wb);
        b1 = accumulate(b1, subgroupBroadcast(y, 1u), wa, wb);
        b2 = accumulate(b2, subgroupBroadcast(y, 2u), wa, wb);
        b3 = accumulate(b3, subgroupBroadcast(y, 3u), wa, wb);
        b4 = accumulate(b4, subgroupBroadcast(y, 4u), wa, wb);
        b5 = accumulate(b5, subgroupBroadcast(y, 5u), wa, wb);
        b6 = accumulate(b6, subgroupBroadcast(y, 6u), wa, wb);
        b7 = accumulate(b7, subgroupBroadcast(y, 7u), wa, wb);
        wk += u.m_pad;
        gather_step(&walk);
    }
    // The zero padding turned an infinite or NaN weight meeting it into NaN, where the
    // reference skips the tap: redo such a tile (rare) with the padding's terms masked out.
    if (subgroupAny(any(widest_exponent16(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7) == vec2<u32>(EXPONENT)))) {
        var acc = array<vec2<f32>, 16>();
        let pos_lo = source_position(min(base + lane, u.pixels - 1u));
        let pos_hi = source_position(min(base + LANES + lane, u.pixels - 1u));
        for (var k = 0u; k < k_len; k++) {
            let tap = gather_tap(k);
            let at = lo + gather_offset(tap, k);
            let x = load_a(u32(at));
            let y = load_a(u32(at + hi));
            let wa = load_b(w_start + k * u.m_pad);
            let wb = load_b(w_start + k * u.m_pad + 1u);
            let live_lo = subgroupBallot(inside_source(pos_lo + tap)).x;
            let live_hi = subgroupBallot(inside_source(pos_hi + tap)).x;
            for (var j = 0u; j < LANES; j++) {
                let l = vec4<bool>(((live_lo >> j) & 1u) != 0u);
                let h = vec4<bool>(((live_hi >> j) & 1u) != 0u);
                acc[j] = accumulate_masked(acc[j], subgroupShuffle(x, j), wa, wb, l);
                acc[j + LANES] = accumulate_masked(acc[j + LANES], subgroupShuffle(y, j), wa, wb, h);
            }
        }
        a0 = acc[0];
        a1 = acc[1];
        a2 = acc[2];
        a3 = acc[3];
        a4 = acc[4];
        a5 = acc[5];
        a6 = acc[6];
        a7 = acc[7];
        b0 = acc[8];
        b1 = acc[9];
        b2 = acc[10];
        b3 = acc[11];
        b4 = acc[12];
        b5 = acc[13];
        b6 = acc[14];
        b7 = acc[15];
    }

    let lo_pixel = destination_offset(min(base + lane, u.pixels - 1u));
    let hi_pixel = destination_offset(min(base + LANES + lane, u.pixels - 1u));
    store_pair(base < u.pixels, subgroupBroadcast(lo_pixel, 0u), g, m, a0);
    store_pair(base + 1u < u.pixels, subgroupBroadcast(lo_pixel, 1u), g, m, a1);
    store_pair(base + 2u < u.pixels, subgroupBroadcast(lo_pixel, 2u), g, m, a2);
    store_pair(base + 3u < u.pixels, subgroupBroadcast(lo_pixel, 3u), g, m, a3);
    store_pair(base + 4u < u.pixels, subgroupBroadcast(lo_pixel, 4u), g, m, a4);
    store_pair(base + 5u < u.pixels, subgroupBroadcast(lo_pixel, 5u), g, m, a5);
    store_pair(base + 6u < u.pixels, subgroupBroadcast(lo_pixel, 6u), g, m, a6);
    store_pair(base + 7u < u.pixels, subgroupBroadcast(lo_pixel, 7u), g, m, a7);
    store_pair(base + 8u < u.pixels, subgroupBroadcast(hi_pixel, 0u), g, m, b0);
    store_pair(base + 9u < u.pixels, subgroupBroadcast(hi_pixel, 1u), g, m, b1);
    store_pair(base + 10u < u.pixels, subgroupBroadcast(hi_pixel, 2u), g, m, b2);
    store_pair(base + 11u < u.pixels, subgroupBroadcast(hi_pixel, 3u), g, m, b3);
    store_pair(base + 12u < u.pixels, subgroupBroadcast(hi_pixel, 4u), g, m, b4);
    store_pair(base + 13u < u.pixels, subgroupBroadcast(hi_pixel, 5u), g, m, b5);
    store_pair(base + 14u < u.pixels, subgroupBroadcast(hi_pixel, 6u), g, m, b6);
    store_pair(base + 15u < u.pixels, subgroupBroadcast(hi_pixel, 7u), g, m, b7);
}

fn inside_source(pos: vec2<i32>) -> bool {
    return pos.x >= 0 && pos.x < i32(u.src_h) && pos.y >= 0 && pos.y < i32(u.src_w);
}

// Weight gradient, pass 1, as a split-K GEMM whose reduction runs over output pixels in vec4s:
// packed_a = grad_output rows [g][m][k_vec], k = (n, oy, ox4), and packed_b = the input as
// rows [g][(r, tx)][n][y][ox4] of packed_h padded rows each (both from pack_rows_texture, zero
// past each output row's end), dst = partial sums [blocks, reduce_len] in the weight's own
// layout. Column (r, ty, tx) reads row (r, tx) from padded row oy * stride + ty * dilation,
// so its offset steps by one vec4 along a row and jumps at the ends of rows and images.
// Subgroup s takes column block s % column_blocks (16 of the reduce_per_group * taps
// columns), then channel tile, group and block of rows_per_block output rows, summed in
// order; pass 2 adds the blocks in block order.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_packed8(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let at_tile = weight_grad_tile(sg);
    let cblock = at_tile.block;
    let tile = at_tile.tile;
    let g = at_tile.g;
    let block = at_tile.rows;

    let taps = u.taps_h * u.taps_w;
    let columns = u.reduce_per_group * taps;
    let base = cblock * COLUMNS;
    let col_lo = min(base + lane, columns - 1u);
    let col_hi = min(base + LANES + lane, columns - 1u);
    let m = tile * TILE_CHANNELS + 2u * lane;
    let last = u.channels_per_group - 1u;
    let a_row0 = (g * u.channels_per_group + min(m, last)) * u.k_vec;
    let a_row1 = (g * u.channels_per_group + min(m + 1u, last)) * u.k_vec;
    let lo_row = input_row(g, col_lo);
    let hi_row = input_row(g, col_hi) - lo_row;

    let per_block = u.rows_per_block * u.ow4;
    let k_begin = block * per_block;
    let k_end = min(u.k_vec, k_begin + per_block);
    // Where this block starts in a padded image: output row (n, oy), column 0.
    let first_row = block * u.rows_per_block;
    var walk = row_walk(lo_row, first_row);
    var a0 = vec2<f32>(0.0);
    var a1 = vec2<f32>(0.0);
    var a2 = vec2<f32>(0.0);
    var a3 = vec2<f32>(0.0);
    var a4 = vec2<f32>(0.0);
    var a5 = vec2<f32>(0.0);
    var a6 = vec2<f32>(0.0);
    var a7 = vec2<f32>(0.0);
    var b0 = vec2<f32>(0.0);
    var b1 = vec2<f32>(0.0);
    var b2 = vec2<f32>(0.0);
    var b3 = vec2<f32>(0.0);
    var b4 = vec2<f32>(0.0);
    var b5 = vec2<f32>(0.0);
    var b6 = vec2<f32>(0.0);
    var b7 = vec2<f32>(0.0);
    for (var k = k_begin; k < k_end; k++) {
        let x = load_b(walk.at);
        let y = load_b(walk.at + hi_row);
        let da = load_a(a_row0 + k);
        let db = load_a(a_row1 + k);
        a0 = accumulate(a0, subgroupBroadcast(x, 0u), da, db);
        a1 = accumulate(a1, subgroupBroadcast(x, 1u), da, db);
        a2 = accumulate(a2, subgroupBroadcast(x, 2u), da, db);
        a3 = accumulate(a3, subgroupBroadcast(x, 3u), da, db);
        a4 = accumulate(a4, subgroupBroadcast(x, 4u), da, db);
        a5 = accumulate(a5, subgroupBroadcast(x, 5u), da, db);
        a6 = accumulate(a6, subgroupBroadcast(x, 6u), da, db);
        a7 = accumulate(a7, subgroupBroadcast(x, 7u), da, db);
        b0 = accumulate(b0, subgroupBroadcast(y, 0u), da, db);
        b1 = accumulate(b1, subgroupBroadcast(y, 1u), da, db);
        b2 = accumulate(b2, subgroupBroadcast(y, 2u), da, db);
        b3 = accumulate(b3, subgroupBroadcast(y, 3u), da, db);
        b4 = accumulate(b4, subgroupBroadcast(y, 4u), da, db);
        b5 = accumulate(b5, subgroupBroadcast(y, 5u), da, db);
        b6 = accumulate(b6, subgroupBroadcast(y, 6u), da, db);
        b7 = accumulate(b7, subgroupBroadcast(y, 7u), da, db);
        row_step(&walk);
    }
    // As in conv2d_gemm_packed8: an infinite or NaN grad_output meeting the input's zero
    // padding gave NaN where the reference skips the term; redo such a tile with it masked.
    if (subgroupAny(any(widest_exponent16(a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7) == vec2<u32>(EXPONENT)))) {
        var acc = array<vec2<f32>, 16>();
        for (var k = k_begin; k < k_end; k++) {
            let row = k / u.ow4;
            let at = lo_row + pixel_step(row, k % u.ow4);
            let x = load_b(at);
            let y = load_b(at + hi_row);
            let da = load_a(a_row0 + k);
            let db = load_a(a_row1 + k);
            let live_lo = input_live(col_lo, row % u.grid_h, k % u.ow4);
            let live_hi = input_live(col_hi, row % u.grid_h, k % u.ow4);
            for (var j = 0u; j < LANES; j++) {
                let l = (vec4<u32>(subgroupShuffle(live_lo, j)) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
                let h = (vec4<u32>(subgroupShuffle(live_hi, j)) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
                acc[j] = accumulate_masked(acc[j], subgroupShuffle(x, j), da, db, l);
                acc[j + LANES] = accumulate_masked(acc[j + LANES], subgroupShuffle(y, j), da, db, h);
            }
        }
        a0 = acc[0];
        a1 = acc[1];
        a2 = acc[2];
        a3 = acc[3];
        a4 = acc[4];
        a5 = acc[5];
        a6 = acc[6];
        a7 = acc[7];
        b0 = acc[8];
        b1 = acc[9];
        b2 = acc[10];
        b3 = acc[11];
        b4 = acc[12];
        b5 = acc[13];
        b6 = acc[14];
        b7 = acc[15];
    }

    let lo_column = weight_column(col_lo);
    let hi_column = weight_column(col_hi);
    store_weight_pair(base < columns, subgroupBroadcast(lo_column, 0u), block, g, m, a0);
    store_weight_pair(base + 1u < columns, subgroupBroadcast(lo_column, 1u), block, g, m, a1);
    store_weight_pair(base + 2u < columns, subgroupBroadcast(lo_column, 2u), block, g, m, a2);
    store_weight_pair(base + 3u < columns, subgroupBroadcast(lo_column, 3u), block, g, m, a3);
    store_weight_pair(base + 4u < columns, subgroupBroadcast(lo_column, 4u), block, g, m, a4);
    store_weight_pair(base + 5u < columns, subgroupBroadcast(lo_column, 5u), block, g, m, a5);
    store_weight_pair(base + 6u < columns, subgroupBroadcast(lo_column, 6u), block, g, m, a6);
    store_weight_pair(base + 7u < columns, subgroupBroadcast(lo_column, 7u), block, g, m, a7);
    store_weight_pair(base + 8u < columns, subgroupBroadcast(hi_column, 0u), block, g, m, b0);
    store_weight_pair(base + 9u < columns, subgroupBroadcast(hi_column, 1u), block, g, m, b1);
    store_weight_pair(base + 10u < columns, subgroupBroadcast(hi_column, 2u), block, g, m, b2);
    store_weight_pair(base + 11u < columns, subgroupBroadcast(hi_column, 3u), block, g, m, b3);
    store_weight_pair(base + 12u < columns, subgroupBroadcast(hi_column, 4u), block, g, m, b4);
    store_weight_pair(base + 13u < columns, subgroupBroadcast(hi_column, 5u), block, g, m, b5);
    store_weight_pair(base + 14u < columns, subgroupBroadcast(hi_column, 6u), block, g, m, b6);
    store_weight_pair(base + 15u < columns, subgroupBroadcast(hi_column, 7u), block, g, m, b7);
}

// The packed-input offset of output row `row` (n, oy), vec4 `ox4`, from image 0 row 0.
fn pixel_step(row: u32, ox4: u32) -> u32 {
    return ((row / u.grid_h) * u.packed_h + (row % u.grid_h) * u.src_step_h) * u.ow4 + ox4;
}

// Where column col = (r, ty, tx) of the weight gradient sits in the weight's layout.
fn weight_column(col: u32) -> u32 {
    let taps = u.taps_h * u.taps_w;
    return (col / taps) * u.w_stride_r + ((col % taps) / u.taps_w) * u.w_tap_h + (col % u.taps_w) * u.w_tap_w;
}

// conv2d_gemm_packed8 with four times the work per loaded value: an 8-wide subgroup owns 32
// destination pixels ("columns") by 32 channels. At each step lane l loads the vec4s of
// columns l, l + 8, l + 16 and l + 24, and the vec4s of its own four channels (4l .. 4l + 3),
// and does 32 x 4 x 4 fused multiply-adds from those 8 loads: against packed8's 128 from 4,
// half the loads per multiply-add. Loads are what lavapipe pays for (each runs lane by lane);
// the 128 accumulators spill to the stack, and spills are cheap next to them. The four channel
// vec4s are transposed for free: lavapipe keeps each component of a vec4 in its own register,
// so vec4(wa.x, wb.x, wc.x, wd.x) is a renaming. The reduction loop, the clamped tail lanes and
// the zero-padded operands are as in conv2d_gemm_packed8; the weights are packed the same way,
// to tiles of WIDE_CHANNELS.
const WIDE_CHANNELS: u32 = 32u;
const WIDE_COLUMNS: u32 = 32u;

// acc (this lane's four channels at one column) plus four reduction terms: column values x
// against t0..t3, the four channels' weights for each term.
fn accumulate4(acc: vec4<f32>, x: vec4<f32>, t0: vec4<f32>, t1: vec4<f32>, t2: vec4<f32>, t3: vec4<f32>) -> vec4<f32> {
    var s = fma(vec4<f32>(x.x), t0, acc);
    s = fma(vec4<f32>(x.y), t1, s);
    s = fma(vec4<f32>(x.z), t2, s);
    return fma(vec4<f32>(x.w), t3, s);
}

// `accumulate4` with each of the four terms kept only where `live` says so.
fn accumulate4_masked(acc: vec4<f32>, x: vec4<f32>, t: array<vec4<f32>, 4>, live: vec4<bool>) -> vec4<f32> {
    var s = select(acc, fma(vec4<f32>(x.x), t[0], acc), live.x);
    s = select(s, fma(vec4<f32>(x.y), t[1], s), live.y);
    s = select(s, fma(vec4<f32>(x.z), t[2], s), live.z);
    return select(s, fma(vec4<f32>(x.w), t[3], s), live.w);
}

// The weights of four channels as one vec4 per reduction term: the transpose of the four
// channels' vec4s of four terms each.
fn by_term(wa: vec4<f32>, wb: vec4<f32>, wc: vec4<f32>, wd: vec4<f32>) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(
        vec4<f32>(wa.x, wb.x, wc.x, wd.x),
        vec4<f32>(wa.y, wb.y, wc.y, wd.y),
        vec4<f32>(wa.z, wb.z, wc.z, wd.z),
        vec4<f32>(wa.w, wb.w, wc.w, wd.w),
    );
}

// Writes one destination pixel's four channels (m .. m + 3) of this lane.
fn store_quad(pixel_live: bool, dst_pixel: u32, g: u32, m: u32, v: vec4<f32>) {
    store_pair(pixel_live, dst_pixel, g, m, v.xy);
    store_pair(pixel_live, dst_pixel, g, m + 2u, v.zw);
}


// The accumulators of one lane of a wide tile: column q * 8 + j (j the lane that loaded it) in
// c{q * 8 + j}, four channels each. Members, not an array: an array indexed dynamically would
// be kept in memory, inside the hot loop too; a struct's members become registers (and
// spills) like separate variables.
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

// One step of a wide tile: column vec4s x0..x3 (lane j's of columns j, 8 + j, 16 + j and
// 24 + j) against this lane's four channels' vec4s wa..wd of four terms each.
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

// Whether any lane of the subgroup holds an infinite or NaN accumulator (see
// widest_exponent16).
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
fn wide_from(redo: array<vec4<f32>, 32>) -> WideTile {
    return WideTile(
        redo[0], redo[1], redo[2], redo[3], redo[4], redo[5], redo[6], redo[7], redo[8], redo[9], redo[10], redo[11], redo[12], redo[13], redo[14], redo[15], redo[16], redo[17], redo[18], redo[19], redo[20], redo[21], redo[22], redo[23], redo[24], redo[25], redo[26], redo[27], redo[28], redo[29], redo[30], redo[31],
    );
}

// Gather convolution like conv2d_gemm_packed8, with tiles of WIDE_COLUMNS x WIDE_CHANNELS.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed8_wide(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let at_tile = gather_tile(sg);
    let block = at_tile.block;
    let tile = at_tile.tile;
    let g = at_tile.g;
    let m = tile * WIDE_CHANNELS + 4u * lane;

    let base = block * WIDE_COLUMNS;
    let last = u.pixels - 1u;
    let lo = source_offset(g, min(base + lane, last));
    let d1 = source_offset(g, min(base + LANES + lane, last)) - lo;
    let d2 = source_offset(g, min(base + 2u * LANES + lane, last)) - lo;
    let d3 = source_offset(g, min(base + 3u * LANES + lane, last)) - lo;
    var walk = gather_walk(lo);
    let taps = u.taps_h * u.taps_w;
    let w_start = u.packed_w_base + g * taps * u.reduce4 * u.m_pad + m;
    var wk = w_start;

    var acc = WideTile();
    let k_len = taps * u.reduce4;
    for (var k = 0u; k < k_len; k++) {
        let x0 = load_a(u32(walk.at));
        let x1 = load_a(u32(walk.at + d1));
        let x2 = load_a(u32(walk.at + d2));
        let x3 = load_a(u32(walk.at + d3));
        wide_step(&acc, x0, x1, x2, x3, load_b(wk), load_b(wk + 1u), load_b(wk + 2u), load_b(wk + 3u));
        wk += u.m_pad;
        gather_step(&walk);
    }
    // As in conv2d_gemm_packed8: redo a tile where a non-finite operand may have met the
    // zero padding, with the padding's terms masked out. Straight-line code reads the
    // accumulators: indexing them dynamically would keep them in memory in the hot loop.
    if (wide_non_finite(acc)) {
        var redo = array<vec4<f32>, 32>();
        var pos: array<vec2<i32>, 4>;
        for (var q = 0u; q < 4u; q++) {
            pos[q] = source_position(min(base + q * LANES + lane, last));
        }
        let offsets = array<i32, 4>(0, d1, d2, d3);
        for (var k = 0u; k < k_len; k++) {
            let tap = gather_tap(k);
            let at = lo + gather_offset(tap, k);
            let w = w_start + k * u.m_pad;
            let t = by_term(load_b(w), load_b(w + 1u), load_b(w + 2u), load_b(w + 3u));
            for (var q = 0u; q < 4u; q++) {
                let x = load_a(u32(at + offsets[q]));
                let live = subgroupBallot(inside_source(pos[q] + tap)).x;
                for (var j = 0u; j < LANES; j++) {
                    let l = vec4<bool>(((live >> j) & 1u) != 0u);
                    redo[q * LANES + j] = accumulate4_masked(redo[q * LANES + j], subgroupShuffle(x, j), t, l);
                }
            }
        }
        acc = wide_from(redo);
    }

    // Column q * 8 + j is pixel base + q * 8 + j, whose destination offset lane j computed.
    let pixels0 = destination_offset(min(base + 0u + lane, last));
    let pixels1 = destination_offset(min(base + 8u + lane, last));
    let pixels2 = destination_offset(min(base + 16u + lane, last));
    let pixels3 = destination_offset(min(base + 24u + lane, last));
    store_quad(base + 0u < u.pixels, subgroupBroadcast(pixels0, 0u), g, m, acc.c0);
    store_quad(base + 1u < u.pixels, subgroupBroadcast(pixels0, 1u), g, m, acc.c1);
    store_quad(base + 2u < u.pixels, subgroupBroadcast(pixels0, 2u), g, m, acc.c2);
    store_quad(base + 3u < u.pixels, subgroupBroadcast(pixels0, 3u), g, m, acc.c3);
    store_quad(base + 4u < u.pixels, subgroupBroadcast(pixels0, 4u), g, m, acc.c4);
    store_quad(base + 5u < u.pixels, subgroupBroadcast(pixels0, 5u), g, m, acc.c5);
    store_quad(base + 6u < u.pixels, subgroupBroadcast(pixels0, 6u), g, m, acc.c6);
    store_quad(base + 7u < u.pixels, subgroupBroadcast(pixels0, 7u), g, m, acc.c7);
    store_quad(base + 8u < u.pixels, subgroupBroadcast(pixels1, 0u), g, m, acc.c8);
    store_quad(base + 9u < u.pixels, subgroupBroadcast(pixels1, 1u), g, m, acc.c9);
    store_quad(base + 10u < u.pixels, subgroupBroadcast(pixels1, 2u), g, m, acc.c10);
    store_quad(base + 11u < u.pixels, subgroupBroadcast(pixels1, 3u), g, m, acc.c11);
    store_quad(base + 12u < u.pixels, subgroupBroadcast(pixels1, 4u), g, m, acc.c12);
    store_quad(base + 13u < u.pixels, subgroupBroadcast(pixels1, 5u), g, m, acc.c13);
    store_quad(base + 14u < u.pixels, subgroupBroadcast(pixels1, 6u), g, m, acc.c14);
    store_quad(base + 15u < u.pixels, subgroupBroadcast(pixels1, 7u), g, m, acc.c15);
    store_quad(base + 16u < u.pixels, subgroupBroadcast(pixels2, 0u), g, m, acc.c16);
    store_quad(base + 17u < u.pixels, subgroupBroadcast(pixels2, 1u), g, m, acc.c17);
    store_quad(base + 18u < u.pixels, subgroupBroadcast(pixels2, 2u), g, m, acc.c18);
    store_quad(base + 19u < u.pixels, subgroupBroadcast(pixels2, 3u), g, m, acc.c19);
    store_quad(base + 20u < u.pixels, subgroupBroadcast(pixels2, 4u), g, m, acc.c20);
    store_quad(base + 21u < u.pixels, subgroupBroadcast(pixels2, 5u), g, m, acc.c21);
    store_quad(base + 22u < u.pixels, subgroupBroadcast(pixels2, 6u), g, m, acc.c22);
    store_quad(base + 23u < u.pixels, subgroupBroadcast(pixels2, 7u), g, m, acc.c23);
    store_quad(base + 24u < u.pixels, subgroupBroadcast(pixels3, 0u), g, m, acc.c24);
    store_quad(base + 25u < u.pixels, subgroupBroadcast(pixels3, 1u), g, m, acc.c25);
    store_quad(base + 26u < u.pixels, subgroupBroadcast(pixels3, 2u), g, m, acc.c26);
    store_quad(base + 27u < u.pixels, subgroupBroadcast(pixels3, 3u), g, m, acc.c27);
    store_quad(base + 28u < u.pixels, subgroupBroadcast(pixels3, 4u), g, m, acc.c28);
    store_quad(base + 29u < u.pixels, subgroupBroadcast(pixels3, 5u), g, m, acc.c29);
    store_quad(base + 30u < u.pixels, subgroupBroadcast(pixels3, 6u), g, m, acc.c30);
    store_quad(base + 31u < u.pixels, subgroupBroadcast(pixels3, 7u), g, m, acc.c31);
}

// Writes one column's partial sums for this lane's four output channels (m .. m + 3).
fn store_weight_quad(column_live: bool, w_column: u32, block: u32, g: u32, m: u32, v: vec4<f32>) {
    store_weight_pair(column_live, w_column, block, g, m, v.xy);
    store_weight_pair(column_live, w_column, block, g, m + 2u, v.zw);
}

// conv2d_weight_grad_packed8 with the wide tiles of conv2d_gemm_packed8_wide: 32 columns
// (r, ty, tx) by 32 output channels per subgroup, 8 loads per step for 512 multiply-adds.
// Lane l loads the input rows of columns l, l + 8, l + 16 and l + 24 and the grad_output
// rows of its channels 4l .. 4l + 3, whose vec4s (four output pixels each) are transposed
// into one vec4 of channels per pixel for free.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_packed8_wide(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let at_tile = weight_grad_tile(sg);
    let cblock = at_tile.block;
    let tile = at_tile.tile;
    let g = at_tile.g;
    let block = at_tile.rows;

    let taps = u.taps_h * u.taps_w;
    let columns = u.reduce_per_group * taps;
    let base = cblock * WIDE_COLUMNS;
    let cols = array<u32, 4>(
        min(base + lane, columns - 1u),
        min(base + LANES + lane, columns - 1u),
        min(base + 2u * LANES + lane, columns - 1u),
        min(base + 3u * LANES + lane, columns - 1u),
    );
    let m = tile * WIDE_CHANNELS + 4u * lane;
    let last = u.channels_per_group - 1u;
    let a0 = (g * u.channels_per_group + min(m, last)) * u.k_vec;
    let a1 = (g * u.channels_per_group + min(m + 1u, last)) * u.k_vec;
    let a2 = (g * u.channels_per_group + min(m + 2u, last)) * u.k_vec;
    let a3 = (g * u.channels_per_group + min(m + 3u, last)) * u.k_vec;
    // Offsets of the other three columns' rows from the first's, wrapping as u32.
    let row0 = input_row(g, cols[0]);
    let d1 = input_row(g, cols[1]) - row0;
    let d2 = input_row(g, cols[2]) - row0;
    let d3 = input_row(g, cols[3]) - row0;

    let per_block = u.rows_per_block * u.ow4;
    let k_begin = block * per_block;
    let k_end = min(u.k_vec, k_begin + per_block);
    let first_row = block * u.rows_per_block;
    var walk = row_walk(row0, first_row);
    var acc = WideTile();
    for (var k = k_begin; k < k_end; k++) {
        let x0 = load_b(walk.at);
        let x1 = load_b(walk.at + d1);
        let x2 = load_b(walk.at + d2);
        let x3 = load_b(walk.at + d3);
        wide_step(&acc, x0, x1, x2, x3, load_a(a0 + k), load_a(a1 + k), load_a(a2 + k), load_a(a3 + k));
        row_step(&walk);
    }
    // As in conv2d_weight_grad_packed8: redo a tile where a non-finite grad_output may have
    // met the input's zero padding, with the padding's terms masked out.
    if (wide_non_finite(acc)) {
        var redo = array<vec4<f32>, 32>();
        let offsets = array<u32, 4>(0u, d1, d2, d3);
        for (var k = k_begin; k < k_end; k++) {
            let row = k / u.ow4;
            let at = row0 + pixel_step(row, k % u.ow4);
            let t = by_term(load_a(a0 + k), load_a(a1 + k), load_a(a2 + k), load_a(a3 + k));
            for (var q = 0u; q < 4u; q++) {
                let x = load_b(at + offsets[q]);
                let live = input_live(cols[q], row % u.grid_h, k % u.ow4);
                for (var j = 0u; j < LANES; j++) {
                    let l = (vec4<u32>(subgroupShuffle(live, j)) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
                    redo[q * LANES + j] = accumulate4_masked(redo[q * LANES + j], subgroupShuffle(x, j), t, l);
                }
            }
        }
        acc = wide_from(redo);
    }

    // Column q * 8 + j is base + q * 8 + j, whose weight offset lane j computed.
    let w_columns0 = weight_column(cols[0]);
    let w_columns1 = weight_column(cols[1]);
    let w_columns2 = weight_column(cols[2]);
    let w_columns3 = weight_column(cols[3]);
    store_weight_quad(base + 0u < columns, subgroupBroadcast(w_columns0, 0u), block, g, m, acc.c0);
    store_weight_quad(base + 1u < columns, subgroupBroadcast(w_columns0, 1u), block, g, m, acc.c1);
    store_weight_quad(base + 2u < columns, subgroupBroadcast(w_columns0, 2u), block, g, m, acc.c2);
    store_weight_quad(base + 3u < columns, subgroupBroadcast(w_columns0, 3u), block, g, m, acc.c3);
    store_weight_quad(base + 4u < columns, subgroupBroadcast(w_columns0, 4u), block, g, m, acc.c4);
    store_weight_quad(base + 5u < columns, subgroupBroadcast(w_columns0, 5u), block, g, m, acc.c5);
    store_weight_quad(base + 6u < columns, subgroupBroadcast(w_columns0, 6u), block, g, m, acc.c6);
    store_weight_quad(base + 7u < columns, subgroupBroadcast(w_columns0, 7u), block, g, m, acc.c7);
    store_weight_quad(base + 8u < columns, subgroupBroadcast(w_columns1, 0u), block, g, m, acc.c8);
    store_weight_quad(base + 9u < columns, subgroupBroadcast(w_columns1, 1u), block, g, m, acc.c9);
    store_weight_quad(base + 10u < columns, subgroupBroadcast(w_columns1, 2u), block, g, m, acc.c10);
    store_weight_quad(base + 11u < columns, subgroupBroadcast(w_columns1, 3u), block, g, m, acc.c11);
    store_weight_quad(base + 12u < columns, subgroupBroadcast(w_columns1, 4u), block, g, m, acc.c12);
    store_weight_quad(base + 13u < columns, subgroupBroadcast(w_columns1, 5u), block, g, m, acc.c13);
    store_weight_quad(base + 14u < columns, subgroupBroadcast(w_columns1, 6u), block, g, m, acc.c14);
    store_weight_quad(base + 15u < columns, subgroupBroadcast(w_columns1, 7u), block, g, m, acc.c15);
    store_weight_quad(base + 16u < columns, subgroupBroadcast(w_columns2, 0u), block, g, m, acc.c16);
    store_weight_quad(base + 17u < columns, subgroupBroadcast(w_columns2, 1u), block, g, m, acc.c17);
    store_weight_quad(base + 18u < columns, subgroupBroadcast(w_columns2, 2u), block, g, m, acc.c18);
    store_weight_quad(base + 19u < columns, subgroupBroadcast(w_columns2, 3u), block, g, m, acc.c19);
    store_weight_quad(base + 20u < columns, subgroupBroadcast(w_columns2, 4u), block, g, m, acc.c20);
    store_weight_quad(base + 21u < columns, subgroupBroadcast(w_columns2, 5u), block, g, m, acc.c21);
    store_weight_quad(base + 22u < columns, subgroupBroadcast(w_columns2, 6u), block, g, m, acc.c22);
    store_weight_quad(base + 23u < columns, subgroupBroadcast(w_columns2, 7u), block, g, m, acc.c23);
    store_weight_quad(base + 24u < columns, subgroupBroadcast(w_columns3, 0u), block, g, m, acc.c24);
    store_weight_quad(base + 25u < columns, subgroupBroadcast(w_columns3, 1u), block, g, m, acc.c25);
    store_weight_quad(base + 26u < columns, subgroupBroadcast(w_columns3, 2u), block, g, m, acc.c26);
    store_weight_quad(base + 27u < columns, subgroupBroadcast(w_columns3, 3u), block, g, m, acc.c27);
    store_weight_quad(base + 28u < columns, subgroupBroadcast(w_columns3, 4u), block, g, m, acc.c28);
    store_weight_quad(base + 29u < columns, subgroupBroadcast(w_columns3, 5u), block, g, m, acc.c29);
    store_weight_quad(base + 30u < columns, subgroupBroadcast(w_columns3, 6u), block, g, m, acc.c30);
    store_weight_quad(base + 31u < columns, subgroupBroadcast(w_columns3, 7u), block, g, m, acc.c31);
}

// Gather convolution into at most 4 channels per group (an image-producing last layer, the
// input gradient of an RGB stem): 64 pixels x 4 channels per subgroup, where packed8's
// 16-channel tiles would idle most lanes. Lane l owns pixels base + l + 8j (j < 8), all four
// channels of each: its column vec4s are its own, and only the four channels' weight vec4s
// are shared, by broadcast from lanes 0..3. Per step: 9 loads, 128 multiply-adds per lane,
// every one of them for a live channel when there are 4.
const FEW_CHANNELS: u32 = 4u;
const FEW_COLUMNS: u32 = 64u;

@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed8_few(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let at_tile = gather_tile(sg);
    let block = at_tile.block;
    let tile = at_tile.tile;
    let g = at_tile.g;
    let m = tile * FEW_CHANNELS;

    let base = block * FEW_COLUMNS + lane;
    let last = u.pixels - 1u;
    let lo = source_offset(g, min(base, last));
    let d1 = source_offset(g, min(base + 8u, last)) - lo;
    let d2 = source_offset(g, min(base + 16u, last)) - lo;
    let d3 = source_offset(g, min(base + 24u, last)) - lo;
    let d4 = source_offset(g, min(base + 32u, last)) - lo;
    let d5 = source_offset(g, min(base + 40u, last)) - lo;
    let d6 = source_offset(g, min(base + 48u, last)) - lo;
    let d7 = source_offset(g, min(base + 56u, last)) - lo;
    var walk = gather_walk(lo);
    let taps = u.taps_h * u.taps_w;
    // Lanes 0..3 fetch channel m + lane's weights; the others fetch them again, unused.
    let w_start = u.packed_w_base + g * taps * u.reduce4 * u.m_pad + m;
    var wk = w_start + (lane & 3u);

    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0);
    var c5 = vec4<f32>(0.0);
    var c6 = vec4<f32>(0.0);
    var c7 = vec4<f32>(0.0);
    let k_len = taps * u.reduce4;
    for (var k = 0u; k < k_len; k++) {
        let w = load_b(wk);
        let t = by_term(subgroupBroadcast(w, 0u), subgroupBroadcast(w, 1u), subgroupBroadcast(w, 2u), subgroupBroadcast(w, 3u));
        c0 = accumulate4(c0, load_a(u32(walk.at)), t[0], t[1], t[2], t[3]);
        c1 = accumulate4(c1, load_a(u32(walk.at + d1)), t[0], t[1], t[2], t[3]);
        c2 = accumulate4(c2, load_a(u32(walk.at + d2)), t[0], t[1], t[2], t[3]);
        c3 = accumulate4(c3, load_a(u32(walk.at + d3)), t[0], t[1], t[2], t[3]);
        c4 = accumulate4(c4, load_a(u32(walk.at + d4)), t[0], t[1], t[2], t[3]);
        c5 = accumulate4(c5, load_a(u32(walk.at + d5)), t[0], t[1], t[2], t[3]);
        c6 = accumulate4(c6, load_a(u32(walk.at + d6)), t[0], t[1], t[2], t[3]);
        c7 = accumulate4(c7, load_a(u32(walk.at + d7)), t[0], t[1], t[2], t[3]);
        wk += u.m_pad;
        gather_step(&walk);
    }
    // As in conv2d_gemm_packed8: redo a tile where a non-finite operand may have met the
    // zero padding, with the padding's terms masked out (each lane's columns are its own).
    var widest = max(exponent(c0.xy), exponent(c0.zw));
    widest = max(widest, max(exponent(c1.xy), exponent(c1.zw)));
    widest = max(widest, max(exponent(c2.xy), exponent(c2.zw)));
    widest = max(widest, max(exponent(c3.xy), exponent(c3.zw)));
    widest = max(widest, max(exponent(c4.xy), exponent(c4.zw)));
    widest = max(widest, max(exponent(c5.xy), exponent(c5.zw)));
    widest = max(widest, max(exponent(c6.xy), exponent(c6.zw)));
    widest = max(widest, max(exponent(c7.xy), exponent(c7.zw)));
    if (subgroupAny(any(widest == vec2<u32>(EXPONENT)))) {
        var redo = array<vec4<f32>, 8>();
        let offsets = array<i32, 8>(0, d1, d2, d3, d4, d5, d6, d7);
        for (var k = 0u; k < k_len; k++) {
            let tap = gather_tap(k);
            let at = lo + gather_offset(tap, k);
            let w = load_b(w_start + k * u.m_pad + (lane & 3u));
            let t = by_term(subgroupBroadcast(w, 0u), subgroupBroadcast(w, 1u), subgroupBroadcast(w, 2u), subgroupBroadcast(w, 3u));
            for (var j = 0u; j < 8u; j++) {
                let live = inside_source(source_position(min(base + 8u * j, last)) + tap);
                redo[j] = accumulate4_masked(redo[j], load_a(u32(at + offsets[j])), t, vec4<bool>(live));
            }
        }
        c0 = redo[0];
        c1 = redo[1];
        c2 = redo[2];
        c3 = redo[3];
        c4 = redo[4];
        c5 = redo[5];
        c6 = redo[6];
        c7 = redo[7];
    }

    store_quad(base + 0u < u.pixels, destination_offset(min(base + 0u, last)), g, m, c0);
    store_quad(base + 8u < u.pixels, destination_offset(min(base + 8u, last)), g, m, c1);
    store_quad(base + 16u < u.pixels, destination_offset(min(base + 16u, last)), g, m, c2);
    store_quad(base + 24u < u.pixels, destination_offset(min(base + 24u, last)), g, m, c3);
    store_quad(base + 32u < u.pixels, destination_offset(min(base + 32u, last)), g, m, c4);
    store_quad(base + 40u < u.pixels, destination_offset(min(base + 40u, last)), g, m, c5);
    store_quad(base + 48u < u.pixels, destination_offset(min(base + 48u, last)), g, m, c6);
    store_quad(base + 56u < u.pixels, destination_offset(min(base + 56u, last)), g, m, c7);
}
