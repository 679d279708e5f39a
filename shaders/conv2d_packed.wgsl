// Implicit-GEMM conv2d over 8-wide subgroups on operands repacked as vec4 along the reduction
// (conv2d_pack.wgsl makes them). This is the subgroup8 scheme of conv2d_subgroup.wgsl with
// four reduction terms per step and twice the columns: an 8-wide subgroup owns 16 destination
// pixels ("columns") by 16 channels; at each step lane l loads the vec4s of columns l and
// l + 8 and the vec4s of its own two channels, the others read the column vec4s by
// `subgroupBroadcast`, and each lane does 16 x 2 x 4 fused multiply-adds from 4 loads.
// Against the unpacked kernel (16 from 3) that is an eighth of the loop iterations and a
// sixth of the load instructions per multiply-add (lavapipe runs loads lane by lane, and a
// vec4 load costs it about what a scalar one does), and no bounds selects: the repacked
// source is zero-padded around its edges and past its last channel. The 32 accumulators
// overflow AVX2's 16 registers, and the spills still cost less than the loads they save
// (measured: 136 -> 84 ms on the 3x3 64-channel 56x56 layer at batch 8).
//
// Needs the SUBGROUP feature and a subgroup size of exactly 8, like conv2d_subgroup.wgsl.
// Signed quantities travel as i32 bits in u32 fields.

struct GemmConvUniforms {
    pixels: u32,
    grid_h: u32,
    grid_w: u32,
    groups: u32,
    channels_per_group: u32,
    reduce_per_group: u32,
    channel_tiles_per_group: u32,
    column_blocks: u32,
    taps_h: u32,
    taps_w: u32,
    src_h: u32,
    src_w: u32,
    src_step_h: u32,
    src_step_w: u32,
    src_off_h: u32,
    src_off_w: u32,
    tap_step_h: u32,
    tap_step_w: u32,
    dst_step_h: u32,
    dst_step_w: u32,
    dst_off_h: u32,
    dst_off_w: u32,
    has_bias: u32,
    activation: u32,
    activation_slope: u32,
    invocations: u32,
    rows_per_block: u32,
    blocks: u32,
    reduce_len: u32,
    batch: u32,
    packed_h: u32,
    packed_w: u32,
    src_stride_n: u32,
    src_stride_c: u32,
    src_stride_h: u32,
    src_stride_w: u32,
    dst_stride_n: u32,
    dst_stride_c: u32,
    dst_stride_h: u32,
    dst_stride_w: u32,
    w_base: u32,
    w_stride_m: u32,
    w_stride_g: u32,
    w_stride_r: u32,
    w_tap_h: u32,
    w_tap_w: u32,
    pack_off_h: u32,
    pack_off_w: u32,
    reduce4: u32,
    m_pad: u32,
    packed_w_base: u32,
    k_vec: u32,
    ow4: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: GemmConvUniforms;
@group(0) @binding(1) var<storage, read> packed_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> packed_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
const LANES: u32 = 8u;
const TILE_CHANNELS: u32 = 16u;
// Destination pixels (weight-gradient columns) per subgroup tile: two per lane.
const COLUMNS: u32 = 16u;

fn workgroup_index(wg: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wg.z * groups.y + wg.y) * groups.x + wg.x;
}

// NaN by its bits: WGSL lets an implementation assume floats are never NaN.
fn is_nan2(v: vec2<f32>) -> vec2<bool> {
    return (bitcast<vec2<u32>>(v) & vec2<u32>(0x7fffffffu)) > vec2<u32>(0x7f800000u);
}

// As `activate` in conv2d.wgsl: a NaN input stays NaN whatever `max` and `clamp` do with it.
fn activate(v: vec2<f32>) -> vec2<f32> {
    var out = v;
    switch u.activation {
        case 1u: {
            out = max(v, vec2<f32>(0.0));
        }
        case 2u: {
            out = 1.0 / (1.0 + exp(-v));
        }
        case 3u: {
            out = tanh(clamp(v, vec2<f32>(-15.0), vec2<f32>(15.0)));
        }
        case 4u: {
            let slope = bitcast<f32>(u.activation_slope);
            out = select(v * slope, v, v > vec2<f32>(0.0));
        }
        default: {}
    }
    return select(out, v, is_nan2(v));
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
fn exponent(v: vec4<f32>) -> vec4<u32> {
    return bitcast<vec4<u32>>(v) & vec4<u32>(EXPONENT);
}

// Writes one destination pixel's two channels (m, m + 1) of this lane, with bias and
// activation; channels past the group's end and pixels past the end are skipped.
fn store_pair(pixel_live: bool, dst_pixel: u32, g: u32, m: u32, v: vec2<f32>) {
    if (!pixel_live || m >= u.channels_per_group) {
        return;
    }
    let c = g * u.channels_per_group + m;
    var b = vec2<f32>(0.0);
    if (u.has_bias != 0u) {
        b = vec2<f32>(bias[c], bias[min(c + 1u, g * u.channels_per_group + u.channels_per_group - 1u)]);
    }
    let out = activate(v + b);
    let at = dst_pixel + c * u.dst_stride_c;
    dst[at] = out.x;
    if (m + 1u < u.channels_per_group) {
        dst[at + u.dst_stride_c] = out.y;
    }
}

// Gather convolution (the forward pass, or the input gradient for one stride phase).
// packed_a = source from pack_source_vec4, packed_b = weights from pack_weight_vec4, bias
// (if has_bias), dst = destination in its own layout. Subgroup s takes column block
// s % column_blocks, then channel tile and group. The reduction runs over (ty, tx, r4), r4
// fastest, as one flat loop whose source offset steps by uniform jumps when r4 or tx wraps.
// Tail lanes clamp their pixel (an in-bounds source position) so that every lane keeps
// broadcasting, and skip their stores; channels past the group's end have zero weights.
@compute @workgroup_size(64)
fn conv2d_gemm_packed8(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = (workgroup_index(wg, groups) * WORKGROUP_SIZE + local - lane) / LANES;
    if (sg * LANES >= u.invocations) {
        return;
    }
    let block = sg % u.column_blocks;
    let rest = sg / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    let g = rest / u.channel_tiles_per_group;
    let m = tile * TILE_CHANNELS + 2u * lane;

    let base = block * COLUMNS;
    let lo = source_offset(g, min(base + lane, u.pixels - 1u));
    let hi = source_offset(g, min(base + LANES + lane, u.pixels - 1u)) - lo;
    var at = lo;
    let taps = u.taps_h * u.taps_w;
    let w_start = u.packed_w_base + g * taps * u.reduce4 * u.m_pad + m;
    var wk = w_start;
    let r4 = i32(u.reduce4);
    let jump_x = bitcast<i32>(u.tap_step_w) * r4 - r4;
    let jump_y = bitcast<i32>(u.tap_step_h) * i32(u.packed_w) * r4 - i32(u.taps_w) * bitcast<i32>(u.tap_step_w) * r4;

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
    var rc = 0u;
    var tx = 0u;
    // The largest exponent field seen among this lane's weights: all ones means a
    // non-finite weight. Kept with max, not ||, so the hot loop gets no branch.
    var weight_exponents = vec4<u32>(0u);
    let k_len = taps * u.reduce4;
    for (var k = 0u; k < k_len; k++) {
        let x = packed_a[u32(at)];
        let y = packed_a[u32(at + hi)];
        let wa = packed_b[wk];
        let wb = packed_b[wk + 1u];
        weight_exponents = max(weight_exponents, max(exponent(wa), exponent(wb)));
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
        let wrap_r = rc + 1u == u.reduce4;
        let wrap_x = wrap_r && tx + 1u == u.taps_w;
        rc = select(rc + 1u, 0u, wrap_r);
        tx = select(tx + u32(wrap_r), 0u, wrap_x);
        at += 1 + select(0, jump_x, wrap_r) + select(0, jump_y, wrap_x);
    }
    // The zero padding turned an infinite or NaN weight meeting it into NaN, where the
    // reference skips the tap: redo such a tile (rare) with the padding's terms masked out.
    if (subgroupAny(any(weight_exponents == vec4<u32>(EXPONENT)))) {
        var acc = array<vec2<f32>, 16>();
        let pos_lo = source_position(min(base + lane, u.pixels - 1u));
        let pos_hi = source_position(min(base + LANES + lane, u.pixels - 1u));
        for (var k = 0u; k < k_len; k++) {
            let t = k / u.reduce4;
            let tap = vec2<i32>(i32(t / u.taps_w) * bitcast<i32>(u.tap_step_h), i32(t % u.taps_w) * bitcast<i32>(u.tap_step_w));
            let at = lo + (tap.x * i32(u.packed_w) + tap.y) * i32(u.reduce4) + i32(k % u.reduce4);
            let x = packed_a[u32(at)];
            let y = packed_a[u32(at + hi)];
            let wa = packed_b[w_start + k * u.m_pad];
            let wb = packed_b[w_start + k * u.m_pad + 1u];
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

// The packed-source offset (in vec4s) of tap (0, 0) of destination pixel p; the host padded
// the source so that every tap of every pixel lies inside.
fn source_offset(g: u32, p: u32) -> i32 {
    let n = p / (u.grid_w * u.grid_h);
    let packed = source_position(p) - vec2<i32>(bitcast<i32>(u.pack_off_h), bitcast<i32>(u.pack_off_w));
    return ((i32((g * u.batch + n) * u.packed_h) + packed.x) * i32(u.packed_w) + packed.y) * i32(u.reduce4);
}

// The source position (row, column) of tap (0, 0) of destination pixel p.
fn source_position(p: u32) -> vec2<i32> {
    let gx = p % u.grid_w;
    let gy = (p / u.grid_w) % u.grid_h;
    return vec2<i32>(
        i32(gy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h),
        i32(gx) * bitcast<i32>(u.src_step_w) + bitcast<i32>(u.src_off_w),
    );
}

fn inside_source(pos: vec2<i32>) -> bool {
    return pos.x >= 0 && pos.x < i32(u.src_h) && pos.y >= 0 && pos.y < i32(u.src_w);
}

// Where destination pixel p starts in dst (channel 0).
fn destination_offset(p: u32) -> u32 {
    let gx = p % u.grid_w;
    let gyn = p / u.grid_w;
    let gy = gyn % u.grid_h;
    let n = gyn / u.grid_h;
    let dy = gy * u.dst_step_h + u.dst_off_h;
    let dx = gx * u.dst_step_w + u.dst_off_w;
    return n * u.dst_stride_n + dy * u.dst_stride_h + dx * u.dst_stride_w;
}

// Writes one column's partial sums for this lane's two output channels (m, m + 1).
fn store_weight_pair(column_live: bool, w_column: u32, block: u32, g: u32, m: u32, v: vec2<f32>) {
    if (!column_live || m >= u.channels_per_group) {
        return;
    }
    let at = block * u.reduce_len + u.w_base + g * u.w_stride_g + m * u.w_stride_m + w_column;
    dst[at] = v.x;
    if (m + 1u < u.channels_per_group) {
        dst[at + u.w_stride_m] = v.y;
    }
}

// Weight gradient, pass 1, as a split-K GEMM whose reduction runs over output pixels in vec4s:
// packed_a = grad_output rows [g][m][k_vec], k = (n, oy, ox4), and packed_b = the input as
// rows [g][(r, tx)][n][y][ox4] of packed_h padded rows each (both from pack_rows_vec4, zero
// past each output row's end), dst = partial sums [blocks, reduce_len] in the weight's own
// layout. Column (r, ty, tx) reads row (r, tx) from padded row oy * stride + ty * dilation,
// so its offset steps by one vec4 along a row and jumps at the ends of rows and images.
// Subgroup s takes column block s % column_blocks (16 of the reduce_per_group * taps
// columns), then channel tile, group and block of rows_per_block output rows, summed in
// order; pass 2 adds the blocks in block order.
@compute @workgroup_size(64)
fn conv2d_weight_grad_packed8(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = (workgroup_index(wg, groups) * WORKGROUP_SIZE + local - lane) / LANES;
    if (sg * LANES >= u.invocations) {
        return;
    }
    let cblock = sg % u.column_blocks;
    var rest = sg / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    rest = rest / u.channel_tiles_per_group;
    let g = rest % u.groups;
    let block = rest / u.groups;

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
    var oy = first_row % u.grid_h;
    var ox4 = 0u;
    var at = lo_row + pixel_step(first_row, 0u);
    let jump_row = (i32(u.src_step_h) - 1) * i32(u.ow4);
    let jump_image = (i32(u.packed_h) - i32(u.grid_h * u.src_step_h)) * i32(u.ow4);
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
    var grad_exponents = vec4<u32>(0u);
    for (var k = k_begin; k < k_end; k++) {
        let x = packed_b[at];
        let y = packed_b[at + hi_row];
        let da = packed_a[a_row0 + k];
        let db = packed_a[a_row1 + k];
        grad_exponents = max(grad_exponents, max(exponent(da), exponent(db)));
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
        let wrap_x = ox4 + 1u == u.ow4;
        let wrap_y = wrap_x && oy + 1u == u.grid_h;
        ox4 = select(ox4 + 1u, 0u, wrap_x);
        oy = select(oy + u32(wrap_x), 0u, wrap_y);
        at = u32(i32(at) + 1 + select(0, jump_row, wrap_x) + select(0, jump_image, wrap_y));
    }
    // As in conv2d_gemm_packed8: an infinite or NaN grad_output meeting the input's zero
    // padding gave NaN where the reference skips the term; redo such a tile with it masked.
    if (subgroupAny(any(grad_exponents == vec4<u32>(EXPONENT)))) {
        var acc = array<vec2<f32>, 16>();
        for (var k = k_begin; k < k_end; k++) {
            let row = k / u.ow4;
            let at = lo_row + pixel_step(row, k % u.ow4);
            let x = packed_b[at];
            let y = packed_b[at + hi_row];
            let da = packed_a[a_row0 + k];
            let db = packed_a[a_row1 + k];
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

// Where column col = (r, ty, tx) of group g starts in the packed input: row (r, tx), padded
// row ty * dilation of image 0.
fn input_row(g: u32, col: u32) -> u32 {
    let taps = u.taps_h * u.taps_w;
    let r = col / taps;
    let row = (g * u.reduce_per_group + r) * u.taps_w + col % u.taps_w;
    return (row * u.batch * u.packed_h + ((col % taps) / u.taps_w) * u.tap_step_h) * u.ow4;
}

// The packed-input offset of output row `row` (n, oy), vec4 `ox4`, from image 0 row 0.
fn pixel_step(row: u32, ox4: u32) -> u32 {
    return ((row / u.grid_h) * u.packed_h + (row % u.grid_h) * u.src_step_h) * u.ow4 + ox4;
}

// Bit c set where output pixel (oy, 4 ox4 + c) meets the input (not its padding, nor past the
// row's end) at column col = (r, ty, tx).
fn input_live(col: u32, oy: u32, ox4: u32) -> u32 {
    let taps = u.taps_h * u.taps_w;
    let iy = i32(oy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h) + i32((col % taps) / u.taps_w) * bitcast<i32>(u.tap_step_h);
    var bits = 0u;
    for (var c = 0u; c < 4u; c++) {
        let ox = 4u * ox4 + c;
        let ix = i32(ox) * bitcast<i32>(u.src_step_w) + bitcast<i32>(u.src_off_w) + i32(col % u.taps_w) * bitcast<i32>(u.tap_step_w);
        let live = ox < u.grid_w && iy >= 0 && iy < i32(u.src_h) && ix >= 0 && ix < i32(u.src_w);
        bits |= select(0u, 1u << c, live);
    }
    return bits;
}

// Where column col = (r, ty, tx) of the weight gradient sits in the weight's layout.
fn weight_column(col: u32) -> u32 {
    let taps = u.taps_h * u.taps_w;
    return (col / taps) * u.w_stride_r + ((col % taps) / u.taps_w) * u.w_tap_h + (col % u.taps_w) * u.w_tap_w;
}
