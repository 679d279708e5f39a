// conv2d kernels that share loaded values across the lanes of an 8-wide subgroup (lavapipe).
//
// Needs the SUBGROUP feature and a subgroup size of exactly 8; the planner only picks these
// kernels where the adapter reports 8..=8. On lavapipe a workgroup's x dimension runs as 8-wide
// SIMD and every load inside a loop is executed lane by lane, even when all lanes want the same
// address. So instead of every lane loading the same weight, each lane loads a *different*
// value and the others read it with `subgroupBroadcast`, which is a register shuffle there.
//
// Both kernels compute a tile of 8 "columns" by 16 "channels" per subgroup: lane l loads the
// column value of column l and the two channel values of channels 2l and 2l+1 at each step of
// the reduction, broadcasts its column value to the other lanes, and accumulates the 8 x 2
// products that belong to it (16 accumulators: a full AVX2 register file, no spills).
//
// `conv2d_gemm_subgroup8` is a gather convolution written generally enough to serve the
// forward pass and the input gradient: destination pixel (n, gy, gx) sits at
// (gy * dst_step + dst_off) in `dst`, its source taps at (gy * src_step + src_off +
// t * tap_step) in `src_a` for t in 0..taps, and tap t reads weight tap `w_base + t * w_tap`.
// The forward pass uses steps (stride, -pad, dilation); the input gradient runs once per stride
// phase with steps that visit only the taps of that phase. Channels of a destination pixel
// are the GEMM's M, source channels times taps its K.
//
// `conv2d_weight_grad_subgroup8` is pass 1 of the weight gradient as a split-K GEMM: columns
// are (source channel, ky, kx), channels are output channels, and K is the pixels of one block
// of rows (n, oy), summed in a fixed order; pass 2 (`reduce_partials` in reduce.wgsl) adds the
// blocks in block order, so results are bitwise reproducible.
//
// Signed quantities (offsets, steps) travel as i32 bits in u32 fields.
//
// Uniformity: every subgroup operation runs in control flow that is uniform across the subgroup
// in fact. The subgroup's tile index comes from `subgroupBroadcastFirst(local)`, the same value
// on every lane; branches test it, uniform uniforms, or `subgroupAny`. WGSL's uniformity analysis
// cannot see through the broadcast (it treats every builtin input as non-uniform), so each entry
// point, and each helper that calls a subgroup operation, turns off `subgroup_uniformity`
// for itself, and only that rule.

@group(0) @binding(0) var<uniform> u: GemmConvUniforms;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// Lanes per subgroup, and columns per subgroup tile.
const LANES: u32 = 8u;
// Channels per subgroup tile: two per lane.
const TILE_CHANNELS: u32 = 16u;

// `sum + b * w` when bit `lane` of `live` is set, else `sum`: a column whose source lies in the
// padding (or outside the grad_output) contributes no term, not `0 * w`, so an infinite or NaN
// operand meeting the padding adds nothing, as in the CPU reference and the direct kernels.
fn add_if_live(sum: vec2<f32>, b: f32, w: vec2<f32>, live: u32, lane: u32) -> vec2<f32> {
    return select(sum, sum + b * w, ((live >> lane) & 1u) != 0u);
}

const EXPONENT_BITS: u32 = 0x7f800000u;

// One lane's 8 x 2 accumulators, and the largest exponent field among the operands it
// multiplied by broadcast values (weights, or grad_output for dw): all ones means an infinity
// or NaN was among them.
struct Acc8 {
    a0: vec2<f32>,
    a1: vec2<f32>,
    a2: vec2<f32>,
    a3: vec2<f32>,
    a4: vec2<f32>,
    a5: vec2<f32>,
    a6: vec2<f32>,
    a7: vec2<f32>,
    exponents: vec2<u32>,
}

// Adds `broadcast(x, j) * w` to accumulator j for the 8 lanes j. Unmasked, a lane out of bounds
// (x = 0 there) adds `0 * w`, which is exactly nothing unless w is infinite or NaN; masked, it
// adds nothing at all. Masking every step costs 10-20% on lavapipe, so kernels run unmasked,
// note the exponents seen, and run again masked only when a lane met a non-finite operand
// (`met_non_finite`), which `masked` makes a constant at each call site.
@diagnostic(off, subgroup_uniformity)
fn accumulate(acc: ptr<function, Acc8>, x: f32, w: vec2<f32>, ok: bool, masked: bool) {
    (*acc).exponents = max((*acc).exponents, bitcast<vec2<u32>>(w) & vec2<u32>(EXPONENT_BITS));
    if (masked) {
        let live = subgroupBallot(ok).x;
        (*acc).a0 = add_if_live((*acc).a0, subgroupBroadcast(x, 0u), w, live, 0u);
        (*acc).a1 = add_if_live((*acc).a1, subgroupBroadcast(x, 1u), w, live, 1u);
        (*acc).a2 = add_if_live((*acc).a2, subgroupBroadcast(x, 2u), w, live, 2u);
        (*acc).a3 = add_if_live((*acc).a3, subgroupBroadcast(x, 3u), w, live, 3u);
        (*acc).a4 = add_if_live((*acc).a4, subgroupBroadcast(x, 4u), w, live, 4u);
        (*acc).a5 = add_if_live((*acc).a5, subgroupBroadcast(x, 5u), w, live, 5u);
        (*acc).a6 = add_if_live((*acc).a6, subgroupBroadcast(x, 6u), w, live, 6u);
        (*acc).a7 = add_if_live((*acc).a7, subgroupBroadcast(x, 7u), w, live, 7u);
    } else {
        (*acc).a0 += subgroupBroadcast(x, 0u) * w;
        (*acc).a1 += subgroupBroadcast(x, 1u) * w;
        (*acc).a2 += subgroupBroadcast(x, 2u) * w;
        (*acc).a3 += subgroupBroadcast(x, 3u) * w;
        (*acc).a4 += subgroupBroadcast(x, 4u) * w;
        (*acc).a5 += subgroupBroadcast(x, 5u) * w;
        (*acc).a6 += subgroupBroadcast(x, 6u) * w;
        (*acc).a7 += subgroupBroadcast(x, 7u) * w;
    }
}

// True on every lane when some lane of the subgroup multiplied an infinity or NaN.
@diagnostic(off, subgroup_uniformity)
fn met_non_finite(acc: Acc8) -> bool {
    return subgroupAny(any(acc.exponents == vec2<u32>(EXPONENT_BITS)));
}

// The (r, ty, tx) counters of the next reduction step.
fn next_k(kc: vec3<u32>) -> vec3<u32> {
    let wrap_x = kc.z + 1u == u.taps_w;
    let wrap_y = wrap_x && kc.y + 1u == u.taps_h;
    return vec3<u32>(kc.x + u32(wrap_y), select(kc.y + u32(wrap_x), 0u, wrap_y), select(kc.z + 1u, 0u, wrap_x));
}

// The K loop of `conv2d_gemm_subgroup8` for one lane: destination pixel at source offset
// (sy0, sx0), its channels' weights at w0 and w1.
fn gemm_steps(masked: bool, sy0: i32, sx0: i32, src_pixel: u32, w0: u32, w1: u32) -> Acc8 {
    let tsy = bitcast<i32>(u.tap_step_h);
    let tsx = bitcast<i32>(u.tap_step_w);
    var acc: Acc8;
    // One flat loop over K = (r, ty, tx) with the counters stepped by selects: lavapipe pays
    // tens of cycles per loop iteration, which nested loops (1x1 layers above all) would pay
    // once per tap. (Two steps per iteration measured slower.)
    var kc = vec3<u32>(0u);
    let k_len = u.reduce_per_group * u.taps_h * u.taps_w;
    for (var k = 0u; k < k_len; k++) {
        let iy = sy0 + i32(kc.y) * tsy;
        let ix = sx0 + i32(kc.z) * tsx;
        let ok = iy >= 0 && iy < i32(u.src_h) && ix >= 0 && ix < i32(u.src_w);
        let src_channel = src_pixel + kc.x * u.src_stride_c;
        let at = src_channel + u32(iy) * u.src_stride_h + u32(ix) * u.src_stride_w;
        let x = select(0.0, src_a[select(src_channel, at, ok)], ok);
        let wt = kc.x * u.w_stride_r + kc.y * u.w_tap_h + kc.z * u.w_tap_w;
        let w = vec2<f32>(src_b[w0 + wt], src_b[w1 + wt]);
        accumulate(&acc, x, w, ok, masked);
        kc = next_k(kc);
    }
    return acc;
}

// src_a = source activations, src_b = weight, bias (if has_bias), dst = destination.
// Subgroup s of the dispatch takes column block s % column_blocks (8 destination pixels of the
// flattened (n, gy, gx) range), then channel tile and group. Tail lanes clamp their pixel and
// channels so that every lane keeps broadcasting (subgroup operations need all lanes), and
// skip their stores.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_subgroup8(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = (workgroup_index(wg, groups) * WORKGROUP_SIZE + subgroupBroadcastFirst(local)) / LANES;
    if (sg * LANES >= u.invocations) {
        return;
    }
    let block = sg % u.column_blocks;
    let rest = sg / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    let g = rest / u.channel_tiles_per_group;

    let pixel = block * LANES + lane;
    let p = min(pixel, u.pixels - 1u);
    let gx = p % u.grid_w;
    let gyn = p / u.grid_w;
    let gy = gyn % u.grid_h;
    let n = gyn / u.grid_h;
    let m = tile * TILE_CHANNELS + 2u * lane;
    let last = u.channels_per_group - 1u;
    let w0 = u.w_base + g * u.w_stride_g + min(m, last) * u.w_stride_m;
    let w1 = u.w_base + g * u.w_stride_g + min(m + 1u, last) * u.w_stride_m;

    let sy0 = i32(gy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h);
    let sx0 = i32(gx) * bitcast<i32>(u.src_step_w) + bitcast<i32>(u.src_off_w);
    let src_pixel = n * u.src_stride_n + g * u.reduce_per_group * u.src_stride_c;

    var acc = gemm_steps(false, sy0, sx0, src_pixel, w0, w1);
    if (met_non_finite(acc)) {
        acc = gemm_steps(true, sy0, sx0, src_pixel, w0, w1);
    }

    let dy = gy * u.dst_step_h + u.dst_off_h;
    let dx = gx * u.dst_step_w + u.dst_off_w;
    let dst_pixel = n * u.dst_stride_n + dy * u.dst_stride_h + dx * u.dst_stride_w;
    let base = block * LANES;
    store_pair(base < u.pixels, subgroupBroadcast(dst_pixel, 0u), g, m, acc.a0);
    store_pair(base + 1u < u.pixels, subgroupBroadcast(dst_pixel, 1u), g, m, acc.a1);
    store_pair(base + 2u < u.pixels, subgroupBroadcast(dst_pixel, 2u), g, m, acc.a2);
    store_pair(base + 3u < u.pixels, subgroupBroadcast(dst_pixel, 3u), g, m, acc.a3);
    store_pair(base + 4u < u.pixels, subgroupBroadcast(dst_pixel, 4u), g, m, acc.a4);
    store_pair(base + 5u < u.pixels, subgroupBroadcast(dst_pixel, 5u), g, m, acc.a5);
    store_pair(base + 6u < u.pixels, subgroupBroadcast(dst_pixel, 6u), g, m, acc.a6);
    store_pair(base + 7u < u.pixels, subgroupBroadcast(dst_pixel, 7u), g, m, acc.a7);
}

// The reduction of `conv2d_weight_grad_subgroup8` for one lane over its block of rows: its
// column's taps shifted by (shift_y, shift_x), its channels' grad_output at dy_c0 and dy_c1.
fn weight_grad_steps(
    masked: bool,
    block: u32,
    shift_y: i32,
    shift_x: i32,
    src_channel_base: u32,
    dy_c0: u32,
    dy_c1: u32,
) -> Acc8 {
    let sy = bitcast<i32>(u.src_step_h);
    let sx = bitcast<i32>(u.src_step_w);
    let rows = u.pixels / u.grid_w;
    let row_begin = block * u.rows_per_block;
    let row_end = min(rows, row_begin + u.rows_per_block);
    var acc: Acc8;
    for (var row = row_begin; row < row_end; row++) {
        let n = row / u.grid_h;
        let oy = row % u.grid_h;
        let iy = i32(oy) * sy + shift_y;
        let row_ok = iy >= 0 && iy < i32(u.src_h);
        let src_channel = n * u.src_stride_n + src_channel_base;
        let src_row = src_channel + u32(iy) * u.src_stride_h;
        let dy_row = n * u.dst_stride_n + oy * u.dst_stride_h;
        for (var ox = 0u; ox < u.grid_w; ox++) {
            let ix = i32(ox) * sx + shift_x;
            let ok = row_ok && ix >= 0 && ix < i32(u.src_w);
            let x = select(0.0, src_a[select(src_channel, src_row + u32(ix) * u.src_stride_w, ok)], ok);
            let dy_at = dy_row + ox * u.dst_stride_w;
            let d = vec2<f32>(src_b[dy_at + dy_c0], src_b[dy_at + dy_c1]);
            accumulate(&acc, x, d, ok, masked);
        }
    }
    return acc;
}

// Weight gradient, pass 1. src_a = forward input, src_b = grad_output (laid out with the dst_*
// strides and the grid_h x grid_w output grid), dst = partial sums [blocks, reduce_len] in the
// weight's own layout. Subgroup s takes column block s % column_blocks (8 of the
// reduce_per_group * taps columns), then channel tile, group and row block; each lane loads
// its column's input value and its two channels' grad_output values per output pixel.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_subgroup8(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let sg = (workgroup_index(wg, groups) * WORKGROUP_SIZE + subgroupBroadcastFirst(local)) / LANES;
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
    let column = cblock * LANES + lane;
    let col = min(column, columns - 1u);
    let r = col / taps;
    let ty = (col % taps) / u.taps_w;
    let tx = col % u.taps_w;
    let m = tile * TILE_CHANNELS + 2u * lane;
    let last = u.channels_per_group - 1u;
    let dy_c0 = (g * u.channels_per_group + min(m, last)) * u.dst_stride_c;
    let dy_c1 = (g * u.channels_per_group + min(m + 1u, last)) * u.dst_stride_c;

    let shift_y = i32(ty) * bitcast<i32>(u.tap_step_h) + bitcast<i32>(u.src_off_h);
    let shift_x = i32(tx) * bitcast<i32>(u.tap_step_w) + bitcast<i32>(u.src_off_w);
    let src_channel_base = (g * u.reduce_per_group + r) * u.src_stride_c;

    var acc = weight_grad_steps(false, block, shift_y, shift_x, src_channel_base, dy_c0, dy_c1);
    if (met_non_finite(acc)) {
        acc = weight_grad_steps(true, block, shift_y, shift_x, src_channel_base, dy_c0, dy_c1);
    }

    let w_column = r * u.w_stride_r + ty * u.w_tap_h + tx * u.w_tap_w;
    let base = cblock * LANES;
    store_weight_pair(base < columns, subgroupBroadcast(w_column, 0u), block, g, m, acc.a0);
    store_weight_pair(base + 1u < columns, subgroupBroadcast(w_column, 1u), block, g, m, acc.a1);
    store_weight_pair(base + 2u < columns, subgroupBroadcast(w_column, 2u), block, g, m, acc.a2);
    store_weight_pair(base + 3u < columns, subgroupBroadcast(w_column, 3u), block, g, m, acc.a3);
    store_weight_pair(base + 4u < columns, subgroupBroadcast(w_column, 4u), block, g, m, acc.a4);
    store_weight_pair(base + 5u < columns, subgroupBroadcast(w_column, 5u), block, g, m, acc.a5);
    store_weight_pair(base + 6u < columns, subgroupBroadcast(w_column, 6u), block, g, m, acc.a6);
    store_weight_pair(base + 7u < columns, subgroupBroadcast(w_column, 7u), block, g, m, acc.a7);
}
