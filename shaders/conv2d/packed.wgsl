// Implicit-GEMM conv2d over subgroups of LANES lanes (4, 8 or 16, set by the packed_lanes*.wgsl
// piece composed before this body) on operands repacked as vec4 along the reduction
// (pack.wgsl's *_texture entry points make them). This is the subgroup scheme of subgroup.wgsl
// with four reduction terms per step and more columns per lane:
// - conv2d_gemm_packed: a subgroup owns 2 * LANES destination pixels ("columns") by 2 * LANES
//   channels; at each step lane l loads the vec4s of columns l and l + LANES and the vec4s of
//   its own two channels, the others read the column vec4s by `subgroupBroadcast`, and each
//   lane does 2 * LANES x 2 x 4 fused multiply-adds from 4 loads.
// - conv2d_gemm_packed_wide (more than 2 * LANES channels): 4 * LANES columns by 4 * LANES
//   channels, each lane loading four column vec4s and its four channels' vec4s for
//   4 * LANES x 4 x 4 multiply-adds from 8 loads.
// The weight-gradient kernels map the same tiles onto columns (r, ty, tx).
//
// What pays on lavapipe is fewer load instructions per multiply-add: each load inside a loop
// costs tens of cycles, many times a multiply-add. Hence the four terms per vec4, the wide
// tiles, no bounds selects (the repacked source is zero-padded around its edges and past its
// last channel) and the operands in read-only storage textures, whose fetches are inline
// vector code there. The accumulators (up to 256 per lane) overflow the register file, and the
// spills still cost less than the loads they save (measured at 8 lanes on the 3x3 64-channel
// 56x56 layer at batch 8: 136 -> 84 ms for 16 columns instead of 8, then ~1.4x for the wide
// tiles and ~1.5x for sampled textures, ~1.3x more for storage ones; at 16 lanes, one thread:
// 37 -> 30 ms forward for wide tiles of 64 columns instead of 32, whose two column loads per
// lane left the weights' four loads in the majority).
//
// Needs the SUBGROUP feature and a subgroup size of exactly LANES, like subgroup.wgsl.
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
@group(0) @binding(1) var packed_a: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var packed_b: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
// The same destination as whole vec4s, for the entry points that store vec4s (`_pixel_quads`,
// `_channel_quads`). WGSL lets two variables share a binding as long as no entry point uses
// both (and naga, writing HLSL or MSL for one entry point of a module of several, drops the
// globals that entry point does not reach).
@group(0) @binding(4) var<storage, read_write> dst_quads: array<vec4<f32>>;

// The packed operands are 2D storage textures, read only (common/packed_texture.wgsl).
// lavapipe reads a storage texel inline, with vector address math and no per-lane branch, where
// a storage-buffer load inside a loop runs lane by lane. A sampled texture's textureLoad costs
// far more there: lavapipe calls a function that looks up each lane's mip level (at 16 lanes
// about 260 instructions per fetch, against about 50 inline; the 3x3 64-channel 56x56 forward
// at batch 8 ran 19.3 ms with sampled textures, 12.3 ms with storage ones).
fn load_a(i: u32) -> vec4<f32> {
    return textureLoad(packed_a, texel_of(i));
}

fn load_b(i: u32) -> vec4<f32> {
    return textureLoad(packed_b, texel_of(i));
}

const TILE_CHANNELS: u32 = 2u * LANES;
// Destination pixels (weight-gradient columns) per subgroup tile: two per lane.
const COLUMNS: u32 = 2u * LANES;


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
// packed input row (`at`) and, from the start of a channel's row, grad_output (`a`): one vec4
// further each step, jumping at the ends of rows and images.
struct RowWalk {
    at: u32,
    a: u32,
    oy: u32,
    ox4: u32,
    jump_row: i32,
    jump_image: i32,
}

// The walk from output row `row` (n, oy), vec4 0, starting at `start`.
fn row_walk(start: u32, row: u32) -> RowWalk {
    let jump_row = (i32(u.src_step_h) - 1) * i32(u.ow4);
    let jump_image = (i32(u.packed_h) - i32(u.grid_h * u.src_step_h)) * i32(u.ow4);
    return RowWalk(start + pixel_step(row, 0u), grad_output_step(row, 0u), row % u.grid_h, 0u, jump_row, jump_image);
}

// One vec4 of output pixels on: `along` texels on in the input (1 in packed rows; the
// stride along x in an input copy).
fn row_step(walk: ptr<function, RowWalk>, along: u32) {
    let wrap_x = (*walk).ox4 + 1u == u.ow4;
    let wrap_y = wrap_x && (*walk).oy + 1u == u.grid_h;
    (*walk).ox4 = select((*walk).ox4 + 1u, 0u, wrap_x);
    (*walk).oy = select((*walk).oy + u32(wrap_x), 0u, wrap_y);
    (*walk).at = u32(i32((*walk).at) + i32(along) + select(0, (*walk).jump_row, wrap_x) + select(0, (*walk).jump_image, wrap_y));
    (*walk).a += 1u + select(0u, u.a_image_jump, wrap_y);
}

// The packed grad_output offset of output row `row` (n, oy), vec4 `ox4`, from the start of a
// channel's row.
fn grad_output_step(row: u32, ox4: u32) -> u32 {
    return row * u.ow4 + ox4 + (row / u.grid_h) * u.a_image_jump;
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

// How the kernels write a column of a lane's channels m, m + 1 (and m + 2, m + 3 for a quad):
// a gather's destination pixel at offset `at`, with bias and activation, or the weight
// gradient's partial sums of row block `block` for the weight column at `at`. `weight` is a
// constant at every call, so the branch folds away.
fn store_column(weight: bool, live: bool, at: u32, block: u32, g: u32, m: u32, v: vec2<f32>) {
    if (weight) {
        store_weight_pair(live, at, block, g, m, v);
    } else {
        store_pair(live, at, g, m, v);
    }
}

fn store_column4(weight: bool, live: bool, at: u32, block: u32, g: u32, m: u32, v: vec4<f32>) {
    store_column(weight, live, at, block, g, m, v.xy);
    store_column(weight, live, at, block, g, m + 2u, v.zw);
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
fn conv2d_gemm_packed(
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

    var acc = PairTile();
    let k_len = taps * u.reduce4;
    for (var k = 0u; k < k_len; k++) {
        let x = load_a(u32(walk.at));
        let y = load_a(u32(walk.at + hi));
        pair_step(&acc, x, y, load_b(wk), load_b(wk + 1u));
        wk += u.m_pad;
        gather_step(&walk);
    }
    // The zero padding turned an infinite or NaN weight meeting it into NaN, where the
    // reference skips the tap: redo such a tile (rare) with the padding's terms masked out.
    if (pair_non_finite(acc)) {
        var redo = array<vec2<f32>, COLUMNS>();
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
                redo[j] = accumulate_masked(redo[j], subgroupShuffle(x, j), wa, wb, l);
                redo[j + LANES] = accumulate_masked(redo[j + LANES], subgroupShuffle(y, j), wa, wb, h);
            }
        }
        acc = pair_from(redo);
    }

    let lo_pixel = destination_offset(min(base + lane, u.pixels - 1u));
    let hi_pixel = destination_offset(min(base + LANES + lane, u.pixels - 1u));
    pair_store(acc, false, u.pixels, base, lo_pixel, hi_pixel, 0u, g, m);
}

fn inside_source(pos: vec2<i32>) -> bool {
    return pos.x >= 0 && pos.x < i32(u.src_h) && pos.y >= 0 && pos.y < i32(u.src_w);
}

// Weight gradient, pass 1, as a split-K GEMM whose reduction runs over output pixels in vec4s:
// packed_a = grad_output rows [g][m][k_vec], k = (n, oy, ox4) (or grad_output itself, in NCHW
// order, where its rows are whole vec4s: see a_image_jump), and packed_b = the input as
// rows [g][(r, tx)][n][y][ox4] of packed_h padded rows each (both from pack_rows_texture, zero
// past each output row's end), dst = partial sums [blocks, reduce_len] in the weight's own
// layout. Column (r, ty, tx) reads row (r, tx) from padded row oy * stride + ty * dilation,
// so its offset steps by one vec4 along a row and jumps at the ends of rows and images.
// Subgroup s takes column block s % column_blocks (COLUMNS of the reduce_per_group * taps
// columns), then channel tile, group and block of rows_per_block output rows, summed in
// order; pass 2 adds the blocks in block order.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_packed(
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
    let a_row0 = (g * u.channels_per_group + min(m, last)) * u.a_row_stride;
    let a_row1 = (g * u.channels_per_group + min(m + 1u, last)) * u.a_row_stride;
    let lo_row = input_row(g, col_lo);
    let hi_row = input_row(g, col_hi) - lo_row;

    let per_block = u.rows_per_block * u.ow4;
    let k_begin = block * per_block;
    let k_end = min(u.k_vec, k_begin + per_block);
    // Where this block starts in a padded image: output row (n, oy), column 0.
    let first_row = block * u.rows_per_block;
    var walk = row_walk(lo_row, first_row);
    var acc = PairTile();
    for (var k = k_begin; k < k_end; k++) {
        let x = load_b(walk.at);
        let y = load_b(walk.at + hi_row);
        pair_step(&acc, x, y, load_a(a_row0 + walk.a), load_a(a_row1 + walk.a));
        row_step(&walk, 1u);
    }
    // As in conv2d_gemm_packed: an infinite or NaN grad_output meeting the input's zero
    // padding gave NaN where the reference skips the term; redo such a tile with it masked.
    if (pair_non_finite(acc)) {
        var redo = array<vec2<f32>, COLUMNS>();
        for (var k = k_begin; k < k_end; k++) {
            let row = k / u.ow4;
            let at = lo_row + pixel_step(row, k % u.ow4);
            let x = load_b(at);
            let y = load_b(at + hi_row);
            let ka = grad_output_step(row, k % u.ow4);
            let da = load_a(a_row0 + ka);
            let db = load_a(a_row1 + ka);
            let live_lo = input_live(col_lo, row % u.grid_h, k % u.ow4);
            let live_hi = input_live(col_hi, row % u.grid_h, k % u.ow4);
            for (var j = 0u; j < LANES; j++) {
                let l = (vec4<u32>(subgroupShuffle(live_lo, j)) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
                let h = (vec4<u32>(subgroupShuffle(live_hi, j)) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
                redo[j] = accumulate_masked(redo[j], subgroupShuffle(x, j), da, db, l);
                redo[j + LANES] = accumulate_masked(redo[j + LANES], subgroupShuffle(y, j), da, db, h);
            }
        }
        acc = pair_from(redo);
    }

    pair_store(acc, true, columns, base, weight_column(col_lo), weight_column(col_hi), block, g, m);
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

// conv2d_gemm_packed with more work per loaded value: a subgroup owns WIDE_COLUMNS (4 per
// lane) destination pixels ("columns") by WIDE_CHANNELS (4 per lane) channels. At each step
// lane l loads the vec4s of columns l + q * LANES (q < 4), and the vec4s of its own four
// channels (4l .. 4l + 3), and does WIDE_COLUMNS x 4 x 4 fused multiply-adds from those 8
// loads: at 8 lanes 512 against packed's 128 from 4, half the loads per multiply-add.
// Loads are what lavapipe pays for (each runs lane by lane); the accumulators (128 at 8 lanes,
// 256 at 16) spill to the stack, and spills are cheap next to them. The four channel vec4s are transposed for free:
// lavapipe keeps each component of a vec4 in its own register, so vec4(wa.x, wb.x, wc.x,
// wd.x) is a renaming. The reduction loop, the clamped tail lanes and the zero-padded operands
// are as in conv2d_gemm_packed; the weights are packed the same way, to tiles of
// WIDE_CHANNELS.
const WIDE_CHANNELS: u32 = 4u * LANES;
const WIDE_COLUMNS: u32 = 4u * LANES;

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

// A wide gather tile, computed: this lane's accumulators, and what the stores need (the
// tile's first column, its group, the lane's first channel and the destination offsets of
// its columns q * LANES + lane).
struct WideGather {
    acc: WideTile,
    base: u32,
    g: u32,
    m: u32,
    pixels: vec4<u32>,
}

// Gather convolution like conv2d_gemm_packed, with tiles of WIDE_COLUMNS x WIDE_CHANNELS:
// the tile of subgroup sg. The three entry points that call it differ only in their stores.
@diagnostic(off, subgroup_uniformity)
fn gather_wide(sg: u32, lane: u32) -> WideGather {
    let at_tile = gather_tile(sg);
    let block = at_tile.block;
    let tile = at_tile.tile;
    let g = at_tile.g;
    let m = tile * WIDE_CHANNELS + 4u * lane;

    let base = block * WIDE_COLUMNS;
    let last = u.pixels - 1u;
    let lo = source_offset(g, min(base + lane, last));
    // Offsets of the lane's column q from its first, d[q] (clamped past the end, like every
    // column).
    let d = vec4<i32>(
        0,
        source_offset(g, min(base + LANES + lane, last)) - lo,
        source_offset(g, min(base + 2u * LANES + lane, last)) - lo,
        source_offset(g, min(base + 3u * LANES + lane, last)) - lo,
    );
    var walk = gather_walk(lo);
    let taps = u.taps_h * u.taps_w;
    let w_start = u.packed_w_base + g * taps * u.reduce4 * u.m_pad + m;
    var wk = w_start;

    var acc = WideTile();
    let k_len = taps * u.reduce4;
    for (var k = 0u; k < k_len; k++) {
        let x0 = load_a(u32(walk.at));
        let x1 = load_a(u32(walk.at + d.y));
        let x2 = load_a(u32(walk.at + d.z));
        let x3 = load_a(u32(walk.at + d.w));
        wide_step(&acc, x0, x1, x2, x3, load_b(wk), load_b(wk + 1u), load_b(wk + 2u), load_b(wk + 3u));
        wk += u.m_pad;
        gather_step(&walk);
    }
    // As in conv2d_gemm_packed: redo a tile where a non-finite operand may have met the
    // zero padding, with the padding's terms masked out.
    if (wide_non_finite(acc)) {
        var redo = array<vec4<f32>, WIDE_COLUMNS>();
        var pos: array<vec2<i32>, 4>;
        for (var q = 0u; q < 4u; q++) {
            pos[q] = source_position(min(base + q * LANES + lane, last));
        }
        for (var k = 0u; k < k_len; k++) {
            let tap = gather_tap(k);
            let at = lo + gather_offset(tap, k);
            let w = w_start + k * u.m_pad;
            let t = by_term(load_b(w), load_b(w + 1u), load_b(w + 2u), load_b(w + 3u));
            for (var q = 0u; q < 4u; q++) {
                let x = load_a(u32(at + d[q]));
                let live = subgroupBallot(inside_source(pos[q] + tap)).x;
                for (var j = 0u; j < LANES; j++) {
                    let l = vec4<bool>(((live >> j) & 1u) != 0u);
                    redo[q * LANES + j] = accumulate4_masked(redo[q * LANES + j], subgroupShuffle(x, j), t, l);
                }
            }
        }
        acc = wide_from(redo);
    }

    let pixels = vec4<u32>(
        destination_offset(min(base + lane, last)),
        destination_offset(min(base + LANES + lane, last)),
        destination_offset(min(base + 2u * LANES + lane, last)),
        destination_offset(min(base + 3u * LANES + lane, last)),
    );
    return WideGather(acc, base, g, m, pixels);
}

@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_wide(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = gather_wide(sg, lane);
    wide_store(t.acc, false, u.pixels, t.base, t.pixels, 0u, t.g, t.m);
}

// conv2d_gemm_packed_wide into a destination where every four columns from a multiple of 4
// are four neighbouring values of each channel starting at a multiple of 4 (the host checks:
// unit steps over whole planes of a multiple of 4 pixels, NCHW-like strides of multiples of
// 4). Each lane holds all of the tile's columns for its four channels, so it transposes four
// columns' channel vec4s into one vec4 of pixels per channel in registers and writes whole
// vec4s: lavapipe runs every storage-buffer store lane by lane, and this makes a quarter of
// them (measured at 16 lanes: 1x1 forward 24 -> 20 ms, 3x3 64-channel 56x56 forward 19.8 ->
// 17.4 ms).
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_wide_pixel_quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = gather_wide(sg, lane);
    wide_store_pixel_quads(t.acc, t.base, t.pixels, t.g, t.m, bias4(t.g, t.m));
}

// Where the four neighbouring destination pixels from `first` lie, for the gathers whose
// lanes own pixel quads.
fn quad_destinations(first: u32) -> vec4<u32> {
    return vec4<u32>(
        destination_offset(first),
        destination_offset(first + 1u),
        destination_offset(first + 2u),
        destination_offset(first + 3u),
    );
}

// Gather convolution like conv2d_gemm_packed_wide, for one tap at unit steps that reads all
// of an NCHW source with planes of a multiple of 4 pixels and channels per group in fours
// (the host checks; 1x1 layers at stride 1, and the phases with a tap of the input gradient
// of a 1x1 layer at any stride or a k x k one at stride k), reading packed_a as the source copied into a texture as it
// lies, so that no packing pass runs (for the ResNet 1x1 expand layer's input gradient that
// pass took more than half its time). A texel there holds four neighbouring pixels of one
// channel, so each lane owns a quad of neighbouring pixels, base + 4 * lane + q, instead of
// pixels LANES apart: per step it fetches the quad for its four reduction channels, and the
// 4x4 transpose into one vec4 of terms per pixel is free (lavapipe keeps each component in
// its own register). Pixel 4j + q of the tile is the x_q that lane j passes to wide_step,
// so it lands in accumulator q * LANES + j, which the stores below follow. Nothing reads
// zero padding, so the tile needs no masked redo: an infinite source value meets zero
// weights only in channels past the group's end, which are never stored.
@diagnostic(off, subgroup_uniformity)
fn gather_wide_from_nchw(sg: u32, lane: u32) -> WideGather {
    let at_tile = gather_tile(sg);
    let g = at_tile.g;
    let m = at_tile.tile * WIDE_CHANNELS + 4u * lane;
    let base = at_tile.block * WIDE_COLUMNS;
    // Lanes past the last pixel take the last quad, keep broadcasting, and store nothing.
    let first = min(base + 4u * lane, u.pixels - 4u);
    let plane = u.grid_h * u.grid_w;
    let channel = u.src_stride_c / 4u;
    var at = ((first / plane) * u.src_stride_n + g * u.reduce_per_group * u.src_stride_c + first % plane) / 4u;
    var wk = u.packed_w_base + g * u.reduce4 * u.m_pad + m;

    var acc = WideTile();
    for (var k = 0u; k < u.reduce4; k++) {
        let a = load_a(at);
        let b = load_a(at + channel);
        let c = load_a(at + 2u * channel);
        let d = load_a(at + 3u * channel);
        wide_step(
            &acc,
            vec4<f32>(a.x, b.x, c.x, d.x),
            vec4<f32>(a.y, b.y, c.y, d.y),
            vec4<f32>(a.z, b.z, c.z, d.z),
            vec4<f32>(a.w, b.w, c.w, d.w),
            load_b(wk), load_b(wk + 1u), load_b(wk + 2u), load_b(wk + 3u),
        );
        wk += u.m_pad;
        at += 4u * channel;
    }
    return WideGather(acc, base, g, m, quad_destinations(first));
}

@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_wide_from_nchw(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = gather_wide_from_nchw(sg, lane);
    wide_store_lane_quads(t.acc, t.base, t.pixels, t.g, t.m);
}

// conv2d_gemm_packed_wide_from_nchw storing four pixels per channel as one vec4, as
// conv2d_gemm_packed_wide_pixel_quads does.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_wide_from_nchw_pixel_quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = gather_wide_from_nchw(sg, lane);
    wide_store_lane_pixel_quads(t.acc, t.base, t.pixels, t.g, t.m, bias4(t.g, t.m));
}

// gather_wide_from_nchw for a 1x1 window at stride 2 both ways over all of an NCHW source
// whose rows are twice the output's (the host checks: output rows of a multiple of 4 pixels,
// so source rows of a multiple of 8, planes and channels per group in fours, no padding):
// ResNet's downsampling shortcut, into NCHW planes. A lane's four neighbouring output pixels read every other
// value of two neighbouring texels of the copy, eight fetches per step instead of four, which
// costs less than the packing pass that would otherwise subsample the source (one lane-by-lane
// texel store per four values).
@diagnostic(off, subgroup_uniformity)
fn gather_wide_from_nchw_stride2(sg: u32, lane: u32) -> WideGather {
    let at_tile = gather_tile(sg);
    let g = at_tile.g;
    let m = at_tile.tile * WIDE_CHANNELS + 4u * lane;
    let base = at_tile.block * WIDE_COLUMNS;
    // Lanes past the last pixel take the last quad, keep broadcasting, and store nothing.
    let first = min(base + 4u * lane, u.pixels - 4u);
    let plane = u.grid_h * u.grid_w;
    let p = first % plane;
    let source = 2u * (p / u.grid_w) * u.src_w + 2u * (p % u.grid_w);
    let channel = u.src_stride_c / 4u;
    var at = ((first / plane) * u.src_stride_n + g * u.reduce_per_group * u.src_stride_c + source) / 4u;
    var wk = u.packed_w_base + g * u.reduce4 * u.m_pad + m;

    var acc = WideTile();
    for (var k = 0u; k < u.reduce4; k++) {
        let a0 = load_a(at);
        let a1 = load_a(at + 1u);
        let b0 = load_a(at + channel);
        let b1 = load_a(at + channel + 1u);
        let c0 = load_a(at + 2u * channel);
        let c1 = load_a(at + 2u * channel + 1u);
        let d0 = load_a(at + 3u * channel);
        let d1 = load_a(at + 3u * channel + 1u);
        wide_step(
            &acc,
            vec4<f32>(a0.x, b0.x, c0.x, d0.x),
            vec4<f32>(a0.z, b0.z, c0.z, d0.z),
            vec4<f32>(a1.x, b1.x, c1.x, d1.x),
            vec4<f32>(a1.z, b1.z, c1.z, d1.z),
            load_b(wk), load_b(wk + 1u), load_b(wk + 2u), load_b(wk + 3u),
        );
        wk += u.m_pad;
        at += 4u * channel;
    }
    return WideGather(acc, base, g, m, quad_destinations(first));
}

// Stores vec4s of four neighbouring pixels per channel, as
// conv2d_gemm_packed_wide_from_nchw_pixel_quads does (the host checks the destination allows).
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_wide_from_nchw_stride2(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = gather_wide_from_nchw_stride2(sg, lane);
    wide_store_lane_pixel_quads(t.acc, t.base, t.pixels, t.g, t.m, bias4(t.g, t.m));
}

// conv2d_gemm_packed_wide into a destination whose channels are innermost in whole vec4s
// (the host checks: channel stride 1, channels per group and every other stride multiples of
// 4; NHWC with channels in fours, any steps): each lane's accumulator of a column is already
// the vec4 of its four channels, written as one store instead of four.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_wide_channel_quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = gather_wide(sg, lane);
    let c = t.g * u.channels_per_group + t.m;
    wide_store_channel_quads(t.acc, t.base, t.pixels, c, t.m < u.channels_per_group, bias4(t.g, t.m));
}

// The bias of this lane's channels m .. m + 3 of group g (zeros without one), read once per
// tile by the vec4 stores rather than once per store; channels past the group's end, which
// are never stored, read its last.
fn bias4(g: u32, m: u32) -> vec4<f32> {
    if (!HAS_BIAS) {
        return vec4<f32>(0.0);
    }
    let first = g * u.channels_per_group;
    let last = first + u.channels_per_group - 1u;
    let c = min(vec4<u32>(first + m) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(last));
    return vec4<f32>(bias[c.x], bias[c.y], bias[c.z], bias[c.w]);
}

// Writes one column's vec4 v of channels c .. c + 3 at destination offset `at`, with bias b
// and activation, where the column and the lane's channels are live.
fn store_channel_quad(live: bool, at: u32, c: u32, b: vec4<f32>, v: vec4<f32>) {
    if (live) {
        dst_quads[(at + c) / 4u] = activate4(v + b);
    }
}

// Writes four columns from `at` (the first's destination offset), given as each column's
// vec4 of channels m .. m + 3: one vec4 of the four pixels per channel, with bias b (see
// bias4) and activation; channels past the group's end, and quads past the last pixel, are
// skipped.
fn store_pixel_quads(live: bool, at: u32, g: u32, m: u32, b: vec4<f32>, v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) {
    if (!live) {
        return;
    }
    // Components by name: an index into a vec4 that is not a constant kept it in memory.
    store_pixel_quad(at, g, m, b.x, vec4<f32>(v0.x, v1.x, v2.x, v3.x));
    store_pixel_quad(at, g, m + 1u, b.y, vec4<f32>(v0.y, v1.y, v2.y, v3.y));
    store_pixel_quad(at, g, m + 2u, b.z, vec4<f32>(v0.z, v1.z, v2.z, v3.z));
    store_pixel_quad(at, g, m + 3u, b.w, vec4<f32>(v0.w, v1.w, v2.w, v3.w));
}

fn store_pixel_quad(at: u32, g: u32, m: u32, b: f32, v: vec4<f32>) {
    if (m >= u.channels_per_group) {
        return;
    }
    let c = g * u.channels_per_group + m;
    dst_quads[(at + c * u.dst_stride_c) / 4u] = activate4(v + vec4<f32>(b));
}

// conv2d_weight_grad_packed with the wide tiles of conv2d_gemm_packed_wide: WIDE_COLUMNS
// columns (r, ty, tx) by WIDE_CHANNELS output channels per subgroup. Lane l loads the input
// rows of columns l + q * LANES and the grad_output rows of its channels 4l .. 4l + 3, whose
// vec4s (four output pixels each) are transposed into one vec4 of channels per pixel for free.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_packed_wide(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = wide_weight_grad_lane(sg, lane);
    // Offsets of the lane's other columns' rows from its first's, wrapping as u32.
    let row0 = input_row(t.g, t.cols.x);
    let d = bitcast<vec4<i32>>(vec4<u32>(
        0u,
        input_row(t.g, t.cols.y) - row0,
        input_row(t.g, t.cols.z) - row0,
        input_row(t.g, t.cols.w) - row0,
    ));

    var walk = row_walk(row0, t.first_row);
    var acc = WideTile();
    for (var k = t.k_begin; k < t.k_end; k++) {
        let x0 = load_b(walk.at);
        let x1 = load_b(walk.at + u32(d.y));
        let x2 = load_b(walk.at + u32(d.z));
        let x3 = load_b(walk.at + u32(d.w));
        wide_step(&acc, x0, x1, x2, x3, load_a(t.a.x + walk.a), load_a(t.a.y + walk.a), load_a(t.a.z + walk.a), load_a(t.a.w + walk.a));
        row_step(&walk, 1u);
    }
    // As in conv2d_weight_grad_packed: redo a tile where a non-finite grad_output may have
    // met the input's zero padding, with the padding's terms masked out.
    if (wide_non_finite(acc)) {
        var redo = array<vec4<f32>, WIDE_COLUMNS>();
        for (var k = t.k_begin; k < t.k_end; k++) {
            let row = k / u.ow4;
            let at = row0 + pixel_step(row, k % u.ow4);
            let terms = wide_weight_grad_terms(t, row, k % u.ow4);
            for (var q = 0u; q < 4u; q++) {
                let x = load_b(at + u32(d[q]));
                redo_wide_column(&redo, q, x, input_live(t.cols[q], row % u.grid_h, k % u.ow4), terms);
            }
        }
        acc = wide_from(redo);
    }
    wide_weight_grad_store(acc, t);
}

// What a lane of a wide weight-gradient tile works on: its group, its block of rows (and that
// block's reduction steps), its first channel m and the packed grad_output rows of its four
// channels m .. m + 3 (`a`), and its four columns (r, ty, tx) l + q * LANES from the tile's
// first, `base`, clamped into range (`cols`).
struct WideWeightGradLane {
    g: u32,
    block: u32,
    first_row: u32,
    k_begin: u32,
    k_end: u32,
    m: u32,
    base: u32,
    columns: u32,
    a: vec4<u32>,
    cols: vec4<u32>,
}

fn wide_weight_grad_lane(sg: u32, lane: u32) -> WideWeightGradLane {
    let at_tile = weight_grad_tile(sg);
    let g = at_tile.g;
    let columns = u.reduce_per_group * u.taps_h * u.taps_w;
    let base = at_tile.block * WIDE_COLUMNS;
    let m = at_tile.tile * WIDE_CHANNELS + 4u * lane;
    let channels = min(vec4<u32>(m) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(u.channels_per_group - 1u));
    let a = (vec4<u32>(g * u.channels_per_group) + channels) * u.a_row_stride;
    let cols = min(vec4<u32>(base + lane) + vec4<u32>(0u, 1u, 2u, 3u) * LANES, vec4<u32>(columns - 1u));
    let per_block = u.rows_per_block * u.ow4;
    let k_begin = at_tile.rows * per_block;
    let k_end = min(u.k_vec, k_begin + per_block);
    return WideWeightGradLane(g, at_tile.rows, at_tile.rows * u.rows_per_block, k_begin, k_end, m, base, columns, a, cols);
}

// The lane's four channels' grad_output at output row `row` (n, oy), vec4 ox4, by term.
fn wide_weight_grad_terms(t: WideWeightGradLane, row: u32, ox4: u32) -> array<vec4<f32>, 4> {
    let ka = grad_output_step(row, ox4);
    return by_term(load_a(t.a.x + ka), load_a(t.a.y + ka), load_a(t.a.z + ka), load_a(t.a.w + ka));
}

// One step of the masked redo for the lane's column q: every lane's value x of its column q,
// with the terms its `live` bits allow, into the redo sums of columns j + q * LANES.
@diagnostic(off, subgroup_uniformity)
fn redo_wide_column(redo: ptr<function, array<vec4<f32>, WIDE_COLUMNS>>, q: u32, x: vec4<f32>, live: u32, terms: array<vec4<f32>, 4>) {
    for (var j = 0u; j < LANES; j++) {
        let l = (vec4<u32>(subgroupShuffle(live, j)) & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
        (*redo)[q * LANES + j] = accumulate4_masked((*redo)[q * LANES + j], subgroupShuffle(x, j), terms, l);
    }
}

fn wide_weight_grad_store(acc: WideTile, t: WideWeightGradLane) {
    let w_columns = vec4<u32>(
        weight_column(t.cols.x),
        weight_column(t.cols.y),
        weight_column(t.cols.z),
        weight_column(t.cols.w),
    );
    wide_store(acc, true, t.columns, t.base, w_columns, t.block, t.g, t.m);
}

// Where a column (r, ty, tx) of the weight gradient reads an NCHW input copied into a texture
// as it lies (rows of whole vec4s, `copy_row()` texels each, read at a step of `along` = 1 or
// 2 pixels along x): x = along * ox + s, s = tx * dilation - pad_left, in input row iy = oy *
// stride + offy. `at` is the texel of (c, offy, floor(s / 4)) from image 0 row 0, `rho` = s
// mod 4.
struct CopiedColumn {
    at: i32,
    s: i32,
    offy: i32,
    rho: u32,
}

// Texels per row of the input copy (twice an input row's where the rows are subsampled).
fn copy_row() -> u32 {
    return u.src_stride_h / 4u;
}

fn copied_column(g: u32, col: u32) -> CopiedColumn {
    let taps = u.taps_h * u.taps_w;
    let c = g * u.reduce_per_group + col / taps;
    let s = bitcast<i32>(u.src_off_w) + i32(col % u.taps_w) * bitcast<i32>(u.tap_step_w);
    let offy = bitcast<i32>(u.src_off_h) + i32((col % taps) / u.taps_w) * bitcast<i32>(u.tap_step_h);
    let at = i32(c * (u.src_stride_c / 4u)) + offy * i32(copy_row()) + (s >> 2u);
    return CopiedColumn(at, s, offy, u32(s & 3));
}

// The texel offset in the input copy of output row `row` (n, oy), vec4 ox4, from a column's
// `at`: four output pixels span `along` texels.
fn copy_pixel_step(row: u32, ox4: u32, along: u32) -> u32 {
    return (row / u.grid_h) * (u.src_stride_n / 4u) + (row % u.grid_h) * u.src_step_h * copy_row() + ox4 * along;
}

// row_walk over the input copy: a row of output vec4s moves `ow4 * along` texels, an output
// row `src_step_h` rows of the copy, an image `src_stride_n / 4` texels.
fn copy_walk(start: u32, row: u32, along: u32) -> RowWalk {
    let down = i32(u.src_step_h * copy_row());
    let jump_row = down - i32(u.ow4 * along);
    let jump_image = i32(u.src_stride_n / 4u) - i32(u.grid_h) * down;
    return RowWalk(start + copy_pixel_step(row, 0u, along), grad_output_step(row, 0u), row % u.grid_h, 0u, jump_row, jump_image);
}

// The four input values of a copied column at output row oy, vec4 ox4, whose first texel is
// `at`, with columns at unit steps: two neighbouring texels shifted by rho, zero where the
// read falls on the padding or past the row (the copy holds the neighbouring rows' values
// there). Texel indices are clamped into the texture, so no read relies on robust access.
fn copied_input(at: i32, column: CopiedColumn, oy: u32, ox4: u32, last: i32) -> vec4<f32> {
    let x = vec4<i32>(4 * i32(ox4) + column.s) + vec4<i32>(0, 1, 2, 3);
    return select(vec4<f32>(0.0), shifted_quad(at, column.rho, last), copied_live(x, oy, column));
}

// The four values from value rho of texel `at` on, across it and the next (clamped into the
// texture).
fn shifted_quad(at: i32, rho: u32, last: i32) -> vec4<f32> {
    let a = load_b(u32(clamp(at, 0, last)));
    let b = load_b(u32(clamp(at + 1, 0, last)));
    let lo = select(a, vec4<f32>(a.yzw, b.x), rho == 1u);
    let hi = select(vec4<f32>(a.zw, b.xy), vec4<f32>(a.w, b.xyz), rho == 3u);
    return select(lo, hi, rho >= 2u);
}

// copied_input with columns at stride 2: every other value of three texels from rho.
fn copied_input_stride2(at: i32, column: CopiedColumn, oy: u32, ox4: u32, last: i32) -> vec4<f32> {
    let a = load_b(u32(clamp(at, 0, last)));
    let b = load_b(u32(clamp(at + 1, 0, last)));
    let c = load_b(u32(clamp(at + 2, 0, last)));
    let odd = (column.rho & 1u) == 1u;
    let lo = select(vec4<f32>(a.xz, b.xz), vec4<f32>(a.yw, b.yw), odd);
    let hi = select(vec4<f32>(a.z, b.xz, c.x), vec4<f32>(a.w, b.yw, c.y), odd);
    let x = vec4<i32>(8 * i32(ox4) + column.s) + vec4<i32>(0, 2, 4, 6);
    return select(vec4<f32>(0.0), select(lo, hi, column.rho >= 2u), copied_live(x, oy, column));
}

// Whether input columns x of a copied column's row at output row oy lie inside the input.
fn copied_live(x: vec4<i32>, oy: u32, column: CopiedColumn) -> vec4<bool> {
    let iy = i32(oy * u.src_step_h) + column.offy;
    return (x >= vec4<i32>(0)) & (x < vec4<i32>(i32(u.src_w))) & vec4<bool>(iy >= 0 && iy < i32(u.src_h));
}

// conv2d_weight_grad_packed_wide reading its input from an NCHW copy instead of packed rows,
// for columns at unit steps over rows of whole vec4s (3x3 and 1x1 layers on planes 4k wide);
// `_stride2` for columns at stride 2 (the ResNet stem and its stride-2 3x3 layers). Packing
// wrote one shifted copy of the input per kernel column at lavapipe's texel-store speed
// (about 40% of the 64-channel 56x56 layer's dw, as much of the stride-2 3x3 layer's). Each
// column takes two texel fetches and a shift per step (three and a pick at stride 2) instead
// of one fetch: the walk's `at` runs over the copy, each lane's columns at fixed offsets
// from it. Each entry point is written out whole: with its setup or its redo in a shared
// function, lavapipe ran the stride-1 loop 2-9% slower.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_packed_wide_from_nchw(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = wide_weight_grad_lane(sg, lane);
    var copied = array<CopiedColumn, 4>(
        copied_column(t.g, t.cols.x),
        copied_column(t.g, t.cols.y),
        copied_column(t.g, t.cols.z),
        copied_column(t.g, t.cols.w),
    );
    let c0 = copied[0];
    let c1 = copied[1];
    let c2 = copied[2];
    let c3 = copied[3];
    let d = vec4<i32>(0, c1.at - c0.at, c2.at - c0.at, c3.at - c0.at);
    let extent = textureDimensions(packed_b);
    let last_texel = i32(extent.x * extent.y) - 1;
    var walk = copy_walk(u32(c0.at), t.first_row, 1u);
    var acc = WideTile();
    for (var k = t.k_begin; k < t.k_end; k++) {
        let at = bitcast<i32>(walk.at);
        let x0 = copied_input(at, c0, walk.oy, walk.ox4, last_texel);
        let x1 = copied_input(at + d.y, c1, walk.oy, walk.ox4, last_texel);
        let x2 = copied_input(at + d.z, c2, walk.oy, walk.ox4, last_texel);
        let x3 = copied_input(at + d.w, c3, walk.oy, walk.ox4, last_texel);
        wide_step(&acc, x0, x1, x2, x3, load_a(t.a.x + walk.a), load_a(t.a.y + walk.a), load_a(t.a.z + walk.a), load_a(t.a.w + walk.a));
        row_step(&walk, 1u);
    }
    // As in conv2d_weight_grad_packed_wide.
    if (wide_non_finite(acc)) {
        var redo = array<vec4<f32>, WIDE_COLUMNS>();
        for (var k = t.k_begin; k < t.k_end; k++) {
            let row = k / u.ow4;
            let oy = row % u.grid_h;
            let ox4 = k % u.ow4;
            let at = bitcast<i32>(u32(c0.at) + copy_pixel_step(row, ox4, 1u));
            let terms = wide_weight_grad_terms(t, row, ox4);
            for (var q = 0u; q < 4u; q++) {
                let x = copied_input(at + d[q], copied[q], oy, ox4, last_texel);
                redo_wide_column(&redo, q, x, input_live(t.cols[q], oy, ox4), terms);
            }
        }
        acc = wide_from(redo);
    }
    wide_weight_grad_store(acc, t);
}

@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_packed_wide_from_nchw_stride2(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = wide_weight_grad_lane(sg, lane);
    var copied = array<CopiedColumn, 4>(
        copied_column(t.g, t.cols.x),
        copied_column(t.g, t.cols.y),
        copied_column(t.g, t.cols.z),
        copied_column(t.g, t.cols.w),
    );
    let c0 = copied[0];
    let c1 = copied[1];
    let c2 = copied[2];
    let c3 = copied[3];
    let d = vec4<i32>(0, c1.at - c0.at, c2.at - c0.at, c3.at - c0.at);
    let extent = textureDimensions(packed_b);
    let last_texel = i32(extent.x * extent.y) - 1;
    var walk = copy_walk(u32(c0.at), t.first_row, 2u);
    var acc = WideTile();
    for (var k = t.k_begin; k < t.k_end; k++) {
        let at = bitcast<i32>(walk.at);
        let x0 = copied_input_stride2(at, c0, walk.oy, walk.ox4, last_texel);
        let x1 = copied_input_stride2(at + d.y, c1, walk.oy, walk.ox4, last_texel);
        let x2 = copied_input_stride2(at + d.z, c2, walk.oy, walk.ox4, last_texel);
        let x3 = copied_input_stride2(at + d.w, c3, walk.oy, walk.ox4, last_texel);
        wide_step(&acc, x0, x1, x2, x3, load_a(t.a.x + walk.a), load_a(t.a.y + walk.a), load_a(t.a.z + walk.a), load_a(t.a.w + walk.a));
        row_step(&walk, 2u);
    }
    // As in conv2d_weight_grad_packed_wide.
    if (wide_non_finite(acc)) {
        var redo = array<vec4<f32>, WIDE_COLUMNS>();
        for (var k = t.k_begin; k < t.k_end; k++) {
            let row = k / u.ow4;
            let oy = row % u.grid_h;
            let ox4 = k % u.ow4;
            let at = bitcast<i32>(u32(c0.at) + copy_pixel_step(row, ox4, 2u));
            let terms = wide_weight_grad_terms(t, row, ox4);
            for (var q = 0u; q < 4u; q++) {
                let x = copied_input_stride2(at + d[q], copied[q], oy, ox4, last_texel);
                redo_wide_column(&redo, q, x, input_live(t.cols[q], oy, ox4), terms);
            }
        }
        acc = wide_from(redo);
    }
    wide_weight_grad_store(acc, t);
}

// Where a column (r, ty, tx) of the weight gradient reads an NCHW input copy whose rows are as
// long as the output's (unit steps, the window's padding summing to its reach: `same`), by
// whole planes: output pixel p of a plane meets input pixel p + dy * W + dx there, dy and dx
// the tap's offsets, so four neighbouring output pixels are four neighbouring input values
// wherever their rows break. `at` is the texel of (c, floor((dy * W + dx) / 4)), `rho` that
// offset mod 4, `s` = dx and `offy` = dy (for the masks).
fn plane_column(g: u32, col: u32) -> CopiedColumn {
    let taps = u.taps_h * u.taps_w;
    let c = g * u.reduce_per_group + col / taps;
    let dx = bitcast<i32>(u.src_off_w) + i32(col % u.taps_w) * bitcast<i32>(u.tap_step_w);
    let dy = bitcast<i32>(u.src_off_h) + i32((col % taps) / u.taps_w) * bitcast<i32>(u.tap_step_h);
    let offset = dy * i32(u.src_w) + dx;
    let at = i32(c * (u.src_stride_c / 4u)) + (offset >> 2u);
    return CopiedColumn(at, dx, dy, u32(offset & 3));
}

// The four input values of a column read by planes at output pixels (x, y) (four neighbours
// of a plane, the first at texel offset `at`): two texels shifted by rho, zero where the read
// falls outside the input (the copy holds a neighbouring row's or plane's values there).
fn plane_input(at: i32, column: CopiedColumn, x: vec4<i32>, y: vec4<i32>, last: i32) -> vec4<f32> {
    return select(vec4<f32>(0.0), shifted_quad(at, column.rho, last), plane_live(column, x, y));
}

fn plane_live(column: CopiedColumn, x: vec4<i32>, y: vec4<i32>) -> vec4<bool> {
    let ix = x + vec4<i32>(column.s);
    let iy = y + vec4<i32>(column.offy);
    return (ix >= vec4<i32>(0)) & (ix < vec4<i32>(i32(u.src_w))) & (iy >= vec4<i32>(0)) & (iy < vec4<i32>(i32(u.src_h)));
}

// conv2d_weight_grad_packed_wide_from_nchw for rows that are not whole vec4s (14x14 planes)
// where the output's rows are as long as the input's: the reduction runs over whole planes
// of a multiple of 4 pixels instead of rows (the host sets one "row" per image: grid_h 1, ow4
// a plane's vec4s), so nothing is packed, and no lane multiplies the zero padding that rows
// of 14 had to 16. The lane tracks the (x, y) of its quad's first pixel to mask the reads.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_packed_wide_from_nchw_planes(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = subgroup_index(wg, groups, local);
    if (sg * LANES >= u.invocations) {
        return;
    }
    let t = wide_weight_grad_lane(sg, lane);
    var copied = array<CopiedColumn, 4>(
        plane_column(t.g, t.cols.x),
        plane_column(t.g, t.cols.y),
        plane_column(t.g, t.cols.z),
        plane_column(t.g, t.cols.w),
    );
    let c0 = copied[0];
    let c1 = copied[1];
    let c2 = copied[2];
    let c3 = copied[3];
    let d = vec4<i32>(0, c1.at - c0.at, c2.at - c0.at, c3.at - c0.at);
    let extent = textureDimensions(packed_b);
    let last_texel = i32(extent.x * extent.y) - 1;
    let width = i32(u.src_w);
    var walk = copy_walk(u32(c0.at), t.first_row, 1u);
    // The first pixel of the walk's quad, (qx, qy): rows are at least 4 pixels long, so a
    // step of 4 wraps at most once.
    var qx = 0;
    var qy = 0;
    var acc = WideTile();
    for (var k = t.k_begin; k < t.k_end; k++) {
        let at = bitcast<i32>(walk.at);
        let px = vec4<i32>(qx) + vec4<i32>(0, 1, 2, 3);
        let wrap = px >= vec4<i32>(width);
        let x = select(px, px - vec4<i32>(width), wrap);
        let y = vec4<i32>(qy) + select(vec4<i32>(0), vec4<i32>(1), wrap);
        let x0 = plane_input(at, c0, x, y, last_texel);
        let x1 = plane_input(at + d.y, c1, x, y, last_texel);
        let x2 = plane_input(at + d.z, c2, x, y, last_texel);
        let x3 = plane_input(at + d.w, c3, x, y, last_texel);
        wide_step(&acc, x0, x1, x2, x3, load_a(t.a.x + walk.a), load_a(t.a.y + walk.a), load_a(t.a.z + walk.a), load_a(t.a.w + walk.a));
        row_step(&walk, 1u);
        let next = qx + 4;
        let next_row = next >= width;
        qx = select(next, next - width, next_row);
        qy += i32(next_row);
        // A new image starts at its plane's first pixel.
        let new_image = walk.ox4 == 0u;
        qx = select(qx, 0, new_image);
        qy = select(qy, 0, new_image);
    }
    // As in conv2d_weight_grad_packed_wide: redo a tile where a non-finite grad_output may
    // have met the padding, with those terms masked out.
    if (wide_non_finite(acc)) {
        var redo = array<vec4<f32>, WIDE_COLUMNS>();
        for (var k = t.k_begin; k < t.k_end; k++) {
            let row = k / u.ow4;
            let p4 = k % u.ow4;
            let at = bitcast<i32>(u32(c0.at) + copy_pixel_step(row, p4, 1u));
            let p = vec4<i32>(4 * i32(p4)) + vec4<i32>(0, 1, 2, 3);
            let x = p % vec4<i32>(width);
            let y = p / vec4<i32>(width);
            let terms = wide_weight_grad_terms(t, row, p4);
            for (var q = 0u; q < 4u; q++) {
                let column = copied[q];
                let v = plane_input(at + d[q], column, x, y, last_texel);
                let bits = select(vec4<u32>(0u), vec4<u32>(1u, 2u, 4u, 8u), plane_live(column, x, y));
                let live = bits.x | bits.y | bits.z | bits.w;
                redo_wide_column(&redo, q, v, live, terms);
            }
        }
        acc = wide_from(redo);
    }
    wide_weight_grad_store(acc, t);
}

// The end of a few-channel gather, for this lane's 8 pixels `pixels[j]` (clamped into
// range), whose reads start at `lo + offsets[j]` in the packed source at tap (0, 0). As in
// conv2d_gemm_packed, a tile where a non-finite operand may have met the zero padding is
// redone with the padding's terms masked out (each lane's pixels are its own); then the
// pixels with `live[j]` are written. After the hot loop, so the arrays cost nothing there.
@diagnostic(off, subgroup_uniformity)
fn finish_few(acc: array<vec4<f32>, 8>, g: u32, m: u32, lane: u32, lo: i32, pixels: array<u32, 8>, offsets: array<i32, 8>, live: array<bool, 8>) {
    var c = acc;
    var widest = vec2<u32>(0u);
    for (var j = 0u; j < 8u; j++) {
        widest = max(widest, max(exponent(c[j].xy), exponent(c[j].zw)));
    }
    if (subgroupAny(any(widest == vec2<u32>(EXPONENT)))) {
        c = array<vec4<f32>, 8>();
        let taps = u.taps_h * u.taps_w;
        let k_len = taps * u.reduce4;
        let w_first = u.packed_w_base + g * taps * u.reduce4 * u.m_pad + m + (lane & 3u);
        for (var k = 0u; k < k_len; k++) {
            let tap = gather_tap(k);
            let at = lo + gather_offset(tap, k);
            let w = load_b(w_first + k * u.m_pad);
            let t = by_term(subgroupBroadcast(w, 0u), subgroupBroadcast(w, 1u), subgroupBroadcast(w, 2u), subgroupBroadcast(w, 3u));
            for (var j = 0u; j < 8u; j++) {
                let inside = inside_source(source_position(pixels[j]) + tap);
                c[j] = accumulate4_masked(c[j], load_a(u32(at + offsets[j])), t, vec4<bool>(inside));
            }
        }
    }
    for (var j = 0u; j < 8u; j++) {
        store_column4(false, live[j], destination_offset(pixels[j]), 0u, g, m, c[j]);
    }
}

// Gather convolution into at most 4 channels per group (an image-producing last layer, the
// input gradient of an RGB stem): 8 * LANES pixels x 4 channels per subgroup, where the
// 2 * LANES-channel tiles would idle most lanes. Lane l owns pixels base + l + LANES * j
// (j < 8), all four channels of each: its column vec4s are its own, and only the four
// channels' weight vec4s are shared, by broadcast from lanes 0..3. Per step: 9 loads, 128
// multiply-adds per lane, every one of them for a live channel when there are 4.
const FEW_CHANNELS: u32 = 4u;
const FEW_COLUMNS: u32 = 8u * LANES;

@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_few(
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
    let d1 = source_offset(g, min(base + LANES, last)) - lo;
    let d2 = source_offset(g, min(base + 2u * LANES, last)) - lo;
    let d3 = source_offset(g, min(base + 3u * LANES, last)) - lo;
    let d4 = source_offset(g, min(base + 4u * LANES, last)) - lo;
    let d5 = source_offset(g, min(base + 5u * LANES, last)) - lo;
    let d6 = source_offset(g, min(base + 6u * LANES, last)) - lo;
    let d7 = source_offset(g, min(base + 7u * LANES, last)) - lo;
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
    var pixels = array<u32, 8>();
    var live = array<bool, 8>();
    for (var j = 0u; j < 8u; j++) {
        pixels[j] = min(base + LANES * j, last);
        live[j] = base + LANES * j < u.pixels;
    }
    let offsets = array<i32, 8>(0, d1, d2, d3, d4, d5, d6, d7);
    finish_few(array<vec4<f32>, 8>(c0, c1, c2, c3, c4, c5, c6, c7), g, m, lane, lo, pixels, offsets, live);
}

// conv2d_gemm_packed_few for rows whose taps slide along them: unit steps along x
// (src_step_w 1), taps one pixel apart (tap_step_w 1 or -1, or one tap) and rows of a multiple
// of 8 pixels (grid_w), as the input gradient of an RGB stem has in each stride phase. Lane
// l owns the 8 neighbouring pixels 8 * (block * LANES + l) + j of one row, so that pixel j + 1
// at one tap reads what pixel j reads at the next: for each tap row and channel vec4 a lane
// fetches its 8 pixels' vec4s once and then one more per tap (taking the taps in the order
// in which their reads move right), 8 + taps_w - 1 fetches where the spread pixels of
// conv2d_gemm_packed_few fetch 8 * taps_w; texel fetches are what bounds those tiles.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_packed_few_rows(
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
    let g = at_tile.g;
    let m = at_tile.tile * FEW_CHANNELS;

    // Every lane's 8 pixels lie in one row; a lane past the last pixel reads the last 8.
    let base = (block * LANES + lane) * 8u;
    let start = min(base, u.pixels - 8u);
    let lo = source_offset(g, start);
    let step = i32(u.reduce4);
    // The taps in the order their reads move right by one pixel (step texels) each.
    let reversed = bitcast<i32>(u.tap_step_w) < 0;
    let taps = u.taps_h * u.taps_w;
    let tap_y = bitcast<i32>(u.tap_step_h) * i32(u.packed_w) * step;
    let first_x = select(0, (1 - i32(u.taps_w)) * step, reversed);
    let w_start = u.packed_w_base + g * taps * u.reduce4 * u.m_pad + m + (lane & 3u);

    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    var c4 = vec4<f32>(0.0);
    var c5 = vec4<f32>(0.0);
    var c6 = vec4<f32>(0.0);
    var c7 = vec4<f32>(0.0);
    for (var ty = 0u; ty < u.taps_h; ty++) {
        for (var r4 = 0u; r4 < u.reduce4; r4++) {
            let row = lo + i32(ty) * tap_y + first_x + i32(r4);
            var x0 = load_a(u32(row));
            var x1 = load_a(u32(row + step));
            var x2 = load_a(u32(row + 2 * step));
            var x3 = load_a(u32(row + 3 * step));
            var x4 = load_a(u32(row + 4 * step));
            var x5 = load_a(u32(row + 5 * step));
            var x6 = load_a(u32(row + 6 * step));
            var x7 = load_a(u32(row + 7 * step));
            for (var i = 0u; i < u.taps_w; i++) {
                let tx = select(i, u.taps_w - 1u - i, reversed);
                let w = load_b(w_start + ((ty * u.taps_w + tx) * u.reduce4 + r4) * u.m_pad);
                let t = by_term(subgroupBroadcast(w, 0u), subgroupBroadcast(w, 1u), subgroupBroadcast(w, 2u), subgroupBroadcast(w, 3u));
                c0 = accumulate4(c0, x0, t[0], t[1], t[2], t[3]);
                c1 = accumulate4(c1, x1, t[0], t[1], t[2], t[3]);
                c2 = accumulate4(c2, x2, t[0], t[1], t[2], t[3]);
                c3 = accumulate4(c3, x3, t[0], t[1], t[2], t[3]);
                c4 = accumulate4(c4, x4, t[0], t[1], t[2], t[3]);
                c5 = accumulate4(c5, x5, t[0], t[1], t[2], t[3]);
                c6 = accumulate4(c6, x6, t[0], t[1], t[2], t[3]);
                c7 = accumulate4(c7, x7, t[0], t[1], t[2], t[3]);
                // Slide one pixel right; after the last tap this fetches the last one again.
                let next = i32(min(i + 1u, u.taps_w - 1u)) * step;
                x0 = x1;
                x1 = x2;
                x2 = x3;
                x3 = x4;
                x4 = x5;
                x5 = x6;
                x6 = x7;
                x7 = load_a(u32(row + next + 7 * step));
            }
        }
    }
    var pixels = array<u32, 8>();
    var offsets = array<i32, 8>();
    for (var j = 0u; j < 8u; j++) {
        pixels[j] = start + j;
        offsets[j] = i32(j) * step;
    }
    let live = base < u.pixels;
    finish_few(array<vec4<f32>, 8>(c0, c1, c2, c3, c4, c5, c6, c7), g, m, lane, lo, pixels, offsets, array<bool, 8>(live, live, live, live, live, live, live, live));
}
