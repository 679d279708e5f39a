// conv2d kernels that share loaded values across the lanes of a subgroup, for adapters with a
// fixed subgroup width (CPU adapters above all).
//
// Needs the SUBGROUP feature and a subgroup size fixed at one power of two from 4 to 64; the
// module is composed once per width with `subgroup_lanes{W}.wgsl`, which sets LANES and the
// per-lane code that must name each lane as a constant, and `subgroup_channels{C}.wgsl`, the
// channels each lane keeps and their vector types. On lavapipe a workgroup's x dimension runs
// as LANES-wide SIMD and every load inside a loop is executed lane by lane, even when all lanes
// want the same address. So instead of every lane loading the same
// weight, each lane loads a *different* value and the others read it with `subgroupBroadcast`,
// which is a register shuffle there.
//
// Both kernels compute a tile of LANES "columns" by TILE_CHANNELS "channels" per subgroup: lane
// l loads the column value of column l and the CHANNELS_PER_LANE channel values of its channels
// at each step of the reduction, broadcasts its column value to the other lanes, and
// accumulates the LANES x CHANNELS_PER_LANE products that belong to it (16 floats at 4 and 8
// lanes, AVX2's register file; 32 at 16 lanes, AVX-512's; LANES at 32 and 64).
//
// `conv2d_gemm_subgroup` is a gather convolution written generally enough to serve the
// forward pass and the input gradient: destination pixel (n, gy, gx) sits at
// (gy * dst_step + dst_off) in `dst`, its source taps at (gy * src_step + src_off +
// t * tap_step) in `src_a` for t in 0..taps, and tap t reads weight tap `w_base + t * w_tap`.
// The forward pass uses steps (stride, -pad, dilation); the input gradient runs once per stride
// phase with steps that visit only the taps of that phase. Channels of a destination pixel
// are the GEMM's M, source channels times taps its K.
//
// `conv2d_weight_grad_subgroup` is pass 1 of the weight gradient as a split-K GEMM: columns
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

// Channels per subgroup tile.
const TILE_CHANNELS: u32 = LANES * CHANNELS_PER_LANE;

// One lane's accumulators, a[j] for column j of the tile, and the largest exponent field
// among the operands it multiplied by broadcast values: all ones means an infinity or NaN.
struct Acc {
    a: array<LaneChannels, LANES>,
    exponents: LaneBits,
}

const EXPONENT_BITS: u32 = 0x7f800000u;

// Notes the exponent fields of `w`, the operands multiplied by broadcast values.
fn note_exponents(acc: ptr<function, Acc>, w: LaneChannels) {
    (*acc).exponents = max((*acc).exponents, bitcast<LaneBits>(w) & LaneBits(EXPONENT_BITS));
}

// Adds this step's terms: column value x of every lane times this lane's weights w (see the
// width's `add_lane_terms`), where `ok` (when masked) says the lane's value is a term.
@diagnostic(off, subgroup_uniformity)
fn accumulate(acc: ptr<function, Acc>, x: f32, w: LaneChannels, ok: bool, masked: bool) {
    note_exponents(acc, w);
    add_lane_terms(acc, x, w, live_lanes(ok, masked), masked);
}

// Which lanes' column values count at this step: a ballot of `ok` when masked, else unused.
@diagnostic(off, subgroup_uniformity)
fn live_lanes(ok: bool, masked: bool) -> vec4<u32> {
    if (masked) {
        return subgroupBallot(ok);
    }
    return vec4<u32>(0u);
}

// Adds `b * w` to one accumulator. Unmasked, a lane out of bounds (b = 0 there) adds `0 * w`,
// which is exactly nothing unless w is infinite or NaN; masked, a column whose source lies in
// the padding (or outside the grad_output), bit `lane` of `live` clear, adds nothing at all, as
// in the CPU reference and the direct kernels. Masking every step costs 10-20% on lavapipe, so
// kernels run unmasked, note the exponents seen, and run again masked only when a lane met a
// non-finite operand (`met_non_finite`), which `masked` makes a constant at each call site.
fn add_term(sum: LaneChannels, b: f32, w: LaneChannels, live: vec4<u32>, lane: u32, masked: bool) -> LaneChannels {
    if (masked) {
        let on = ((live[lane / 32u] >> (lane % 32u)) & 1u) != 0u;
        return select(sum, sum + b * w, on);
    }
    return sum + b * w;
}

// True on every lane when some lane of the subgroup multiplied an infinity or NaN.
@diagnostic(off, subgroup_uniformity)
fn met_non_finite(acc: Acc) -> bool {
    return subgroupAny(any(acc.exponents == LaneBits(EXPONENT_BITS)));
}

// The (r, ty, tx) counters of the next reduction step.
fn next_k(kc: vec3<u32>) -> vec3<u32> {
    let wrap_x = kc.z + 1u == u.taps_w;
    let wrap_y = wrap_x && kc.y + 1u == u.taps_h;
    return vec3<u32>(kc.x + u32(wrap_y), select(kc.y + u32(wrap_x), 0u, wrap_y), select(kc.z + 1u, 0u, wrap_x));
}

// The K loop of `conv2d_gemm_subgroup` for one lane: destination pixel at source offset
// (sy0, sx0), its channels' weights at `weights`.
fn gemm_steps(masked: bool, sy0: i32, sx0: i32, src_pixel: u32, weights: LaneOffsets) -> Acc {
    let tsy = bitcast<i32>(u.tap_step_h);
    let tsx = bitcast<i32>(u.tap_step_w);
    var acc: Acc;
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
        accumulate(&acc, x, load_lane(weights, wt), ok, masked);
        kc = next_k(kc);
    }
    return acc;
}

// src_a = source activations, src_b = weight, bias (if has_bias), dst = destination.
// Subgroup s of the dispatch takes column block s % column_blocks (LANES destination pixels of the
// flattened (n, gy, gx) range), then channel tile and group. Tail lanes clamp their pixel and
// channels so that every lane keeps broadcasting (subgroup operations need all lanes), and
// skip their stores.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_gemm_subgroup(
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
    let m = tile * TILE_CHANNELS + CHANNELS_PER_LANE * lane;
    let last = u.channels_per_group - 1u;
    let weights = lane_offsets(u.w_base + g * u.w_stride_g, m, last, u.w_stride_m);

    let sy0 = i32(gy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h);
    let sx0 = i32(gx) * bitcast<i32>(u.src_step_w) + bitcast<i32>(u.src_off_w);
    let src_pixel = n * u.src_stride_n + g * u.reduce_per_group * u.src_stride_c;

    var acc = gemm_steps(false, sy0, sx0, src_pixel, weights);
    if (met_non_finite(acc)) {
        acc = gemm_steps(true, sy0, sx0, src_pixel, weights);
    }

    let dy = gy * u.dst_step_h + u.dst_off_h;
    let dx = gx * u.dst_step_w + u.dst_off_w;
    let dst_pixel = n * u.dst_stride_n + dy * u.dst_stride_h + dx * u.dst_stride_w;
    let base = block * LANES;
    for (var j = 0u; j < LANES; j++) {
        store_lane(base + j < u.pixels, subgroupShuffle(dst_pixel, j), g, m, acc.a[j]);
    }
}

// The reduction of `conv2d_weight_grad_subgroup` for one lane over its block of rows: its
// column's taps shifted by (shift_y, shift_x), its channels' grad_output at `channels`.
fn weight_grad_steps(
    masked: bool,
    block: u32,
    shift_y: i32,
    shift_x: i32,
    src_channel_base: u32,
    channels: LaneOffsets,
) -> Acc {
    let sy = bitcast<i32>(u.src_step_h);
    let sx = bitcast<i32>(u.src_step_w);
    let rows = u.pixels / u.grid_w;
    let row_begin = block * u.rows_per_block;
    let row_end = min(rows, row_begin + u.rows_per_block);
    var acc: Acc;
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
            accumulate(&acc, x, load_lane(channels, dy_at), ok, masked);
        }
    }
    return acc;
}

// Weight gradient, pass 1. src_a = forward input, src_b = grad_output (laid out with the dst_*
// strides and the grid_h x grid_w output grid), dst = partial sums [blocks, reduce_len] in the
// weight's own layout. Subgroup s takes column block s % column_blocks (LANES of the
// reduce_per_group * taps columns), then channel tile, group and row block; each lane loads
// its column's input value and its channels' grad_output values per output pixel.
@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn conv2d_weight_grad_subgroup(
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
    let m = tile * TILE_CHANNELS + CHANNELS_PER_LANE * lane;
    let last = u.channels_per_group - 1u;
    let channels = lane_offsets(g * u.channels_per_group * u.dst_stride_c, m, last, u.dst_stride_c);

    let shift_y = i32(ty) * bitcast<i32>(u.tap_step_h) + bitcast<i32>(u.src_off_h);
    let shift_x = i32(tx) * bitcast<i32>(u.tap_step_w) + bitcast<i32>(u.src_off_w);
    let src_channel_base = (g * u.reduce_per_group + r) * u.src_stride_c;

    var acc = weight_grad_steps(false, block, shift_y, shift_x, src_channel_base, channels);
    if (met_non_finite(acc)) {
        acc = weight_grad_steps(true, block, shift_y, shift_x, src_channel_base, channels);
    }

    let w_column = r * u.w_stride_r + ty * u.w_tap_h + tx * u.w_tap_w;
    let base = cblock * LANES;
    for (var j = 0u; j < LANES; j++) {
        store_weight_lane(base + j < columns, subgroupShuffle(w_column, j), block, g, m, acc.a[j]);
    }
}

// Writes one destination pixel's channels m .. m + CHANNELS_PER_LANE of this lane, with bias
// and activation; channels past the group's end and pixels past the end are skipped.
fn store_lane(pixel_live: bool, dst_pixel: u32, g: u32, m: u32, v: LaneChannels) {
    if (!pixel_live) {
        return;
    }
    for (var i = 0u; i < CHANNELS_PER_LANE; i++) {
        if (m + i < u.channels_per_group) {
            let c = g * u.channels_per_group + m + i;
            var b = 0.0;
            if (HAS_BIAS) {
                b = bias[c];
            }
            dst[dst_pixel + c * u.dst_stride_c] = activate1(lane_channel(v, i) + b);
        }
    }
}

// Writes one column's partial sums for this lane's output channels m .. m + CHANNELS_PER_LANE.
fn store_weight_lane(column_live: bool, w_column: u32, block: u32, g: u32, m: u32, v: LaneChannels) {
    if (!column_live) {
        return;
    }
    let at = block * u.reduce_len + u.w_base + g * u.w_stride_g + w_column;
    for (var i = 0u; i < CHANNELS_PER_LANE; i++) {
        if (m + i < u.channels_per_group) {
            dst[at + (m + i) * u.w_stride_m] = lane_channel(v, i);
        }
    }
}
