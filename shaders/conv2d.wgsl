// conv2d kernels: cross-correlation (or true convolution), PyTorch padding semantics, any layout.
//
// Tensors are addressed through element strides in the uniforms, so one kernel serves NCHW/OIHW
// and NHWC/HWIO without a transpose. A true convolution reads the weights through a base offset
// at the last tap and negated spatial strides: u32 arithmetic wraps, so `base + k * (0 - s)` is
// `base - k * s` exactly.
//
// Every entry point shares one bind group layout: the uniforms, three read-only arrays `src_a`,
// `src_b`, `src_c` and one writable array `dst`; each entry point's comment says what they hold.
// The host folds a 1-D range of invocations into a 3-D grid of 64-wide workgroups to stay under
// the per-dimension dispatch limit; `invocation_index` undoes the folding. Invocations are
// numbered with the fastest-varying spatial or tap index first, so loads that depend only on the
// channel tile are uniform across neighbouring lanes.
// No kernel uses atomics: every output element is written by exactly one invocation, in a fixed
// order, so results are bitwise reproducible from run to run.

struct Conv2dUniforms {
    batch: u32,
    in_channels: u32,
    in_h: u32,
    in_w: u32,
    out_channels: u32,
    kernel_h: u32,
    kernel_w: u32,
    groups: u32,
    stride_h: u32,
    stride_w: u32,
    dilation_h: u32,
    dilation_w: u32,
    pad_top: u32,
    pad_left: u32,
    out_h: u32,
    out_w: u32,
    in_channels_per_group: u32,
    out_channels_per_group: u32,
    channel_tiles_per_group: u32,
    has_bias: u32,
    invocations: u32,
    rows_per_block: u32,
    blocks: u32,
    reduce_len: u32,
    phase_gcd_h: u32,
    phase_gcd_w: u32,
    phase_step_h: u32,
    phase_step_w: u32,
    phase_inv_h: u32,
    phase_inv_w: u32,
    // 0 none, 1 ReLU, 2 sigmoid, 3 tanh, 4 leaky ReLU (slope in activation_slope, f32 bits).
    activation: u32,
    activation_slope: u32,
    in_stride_n: u32,
    in_stride_c: u32,
    in_stride_h: u32,
    in_stride_w: u32,
    out_stride_n: u32,
    out_stride_c: u32,
    out_stride_h: u32,
    out_stride_w: u32,
    w_stride_o: u32,
    w_stride_i: u32,
    w_stride_h: u32,
    w_stride_w: u32,
    w_base: u32,
    // Depthwise kernels only: the input is read as if zeros were inserted between its rows and
    // columns, 2^shift - 1 of them (a strided conv's input gradient as a unit-stride forward);
    // in_h and in_w are then the sizes with the zeros, and an inserted zero is no term at all.
    insert_shift_h: u32,
    insert_shift_w: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> u: Conv2dUniforms;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
@group(0) @binding(3) var<storage, read> src_c: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
// Channels per invocation in the tiled kernels (FORWARD_CHANNEL_TILE on the host).
const TILE: u32 = 4u;
// Output columns per forward invocation (FORWARD_COLUMN_TILE on the host).
const OW_TILE: u32 = 4u;

fn invocation_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return ((wg.z * groups.y + wg.y) * groups.x + wg.x) * WORKGROUP_SIZE + local;
}

// Offsets of the TILE members of a channel tile with `live` real members, `stride` apart; members
// past the end repeat the last live one so that their loads stay in bounds (results discarded).
fn tile_offsets(live: u32, stride: u32) -> vec4<u32> {
    return vec4<u32>(0u, min(1u, live - 1u), min(2u, live - 1u), min(3u, live - 1u)) * stride;
}

fn gather4_b(base: u32, offsets: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(src_b[base + offsets.x], src_b[base + offsets.y], src_b[base + offsets.z], src_b[base + offsets.w]);
}

fn gather4_c(base: u32, live: u32) -> vec4<f32> {
    let o = tile_offsets(live, 1u);
    return vec4<f32>(src_c[base + o.x], src_c[base + o.y], src_c[base + o.z], src_c[base + o.w]);
}

fn store4(base: u32, stride: u32, live: u32, values: vec4<f32>) {
    dst[base] = values.x;
    if (live > 1u) { dst[base + stride] = values.y; }
    if (live > 2u) { dst[base + 2u * stride] = values.z; }
    if (live > 3u) { dst[base + 3u * stride] = values.w; }
}

// WGSL lets an implementation assume floats are never NaN (and `max`, `clamp` may drop a NaN
// operand), so NaN is recognised by its bits.
fn is_nan4(v: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}

// The fused epilogue's activation. A NaN stays NaN, as in PyTorch: `max(NaN, 0)` and
// `clamp(NaN, ..)` may return a bound, so a NaN input is passed through explicitly.
fn activate(v: vec4<f32>) -> vec4<f32> {
    var out = v;
    switch u.activation {
        case 1u: {
            out = max(v, vec4<f32>(0.0));
        }
        case 2u: {
            out = 1.0 / (1.0 + exp(-v));
        }
        case 3u: {
            // tanh(15) rounds to 1 in f32; clamping keeps exp-based implementations finite.
            out = tanh(clamp(v, vec4<f32>(-15.0), vec4<f32>(15.0)));
        }
        case 4u: {
            let slope = bitcast<f32>(u.activation_slope);
            out = select(v * slope, v, v > vec4<f32>(0.0));
        }
        default: {}
    }
    return select(out, v, is_nan4(v));
}

// Forward. src_a = input, src_b = weight, src_c = bias [C_out] (if has_bias), dst = output.
// One invocation: a register tile of TILE output channels (of one group) by OW_TILE
// neighbouring output columns, so each tap loads TILE weights and OW_TILE inputs for
// TILE * OW_TILE multiply-adds; then bias and activation, fused. Loads dominate on lavapipe,
// which runs loads inside loops lane by lane.
@compute @workgroup_size(64)
fn conv2d_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let ox_tiles = (u.out_w + OW_TILE - 1u) / OW_TILE;
    let ox0 = (index % ox_tiles) * OW_TILE;
    var rest = index / ox_tiles;
    let oy = rest % u.out_h;
    rest = rest / u.out_h;
    let tiles = u.groups * u.channel_tiles_per_group;
    let tile = rest % tiles;
    let n = rest / tiles;
    let g = tile / u.channel_tiles_per_group;
    let first_in_group = (tile % u.channel_tiles_per_group) * TILE;
    let oc0 = g * u.out_channels_per_group + first_in_group;
    let live = min(TILE, u.out_channels_per_group - first_in_group);
    let columns = min(OW_TILE, u.out_w - ox0);
    let w_offsets = tile_offsets(live, u.w_stride_o);

    let iy0 = i32(oy * u.stride_h) - i32(u.pad_top);
    let ix0 = i32(ox0 * u.stride_w) - i32(u.pad_left);
    let sw = i32(u.stride_w);
    let x_group = n * u.in_stride_n + g * u.in_channels_per_group * u.in_stride_c;
    let w_tile = u.w_base + oc0 * u.w_stride_o;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ci = 0u; ci < u.in_channels_per_group; ci++) {
        let x_channel = x_group + ci * u.in_stride_c;
        let w_channel = w_tile + ci * u.w_stride_i;
        for (var ky = 0u; ky < u.kernel_h; ky++) {
            let iy = iy0 + i32(ky * u.dilation_h);
            if (iy < 0 || iy >= i32(u.in_h)) {
                continue;
            }
            let x_row = x_channel + u32(iy) * u.in_stride_h;
            let w_row = w_channel + ky * u.w_stride_h;
            for (var kx = 0u; kx < u.kernel_w; kx++) {
                let ix = ix0 + i32(kx * u.dilation_w);
                let w4 = gather4_b(w_row + kx * u.w_stride_w, w_offsets);
                acc0 += tap_product(x_row, ix, true, w4);
                acc1 += tap_product(x_row, ix + sw, columns > 1u, w4);
                acc2 += tap_product(x_row, ix + 2 * sw, columns > 2u, w4);
                acc3 += tap_product(x_row, ix + 3 * sw, columns > 3u, w4);
            }
        }
    }
    var bias = vec4<f32>(0.0);
    if (u.has_bias != 0u) {
        bias = gather4_c(oc0, live);
    }
    let out = n * u.out_stride_n + oc0 * u.out_stride_c + oy * u.out_stride_h + ox0 * u.out_stride_w;
    store4(out, u.out_stride_c, live, activate(acc0 + bias));
    if (columns > 1u) { store4(out + u.out_stride_w, u.out_stride_c, live, activate(acc1 + bias)); }
    if (columns > 2u) { store4(out + 2u * u.out_stride_w, u.out_stride_c, live, activate(acc2 + bias)); }
    if (columns > 3u) { store4(out + 3u * u.out_stride_w, u.out_stride_c, live, activate(acc3 + bias)); }
}

// One tap's products `x * w4`, or 0 in the padding or for a tile column past the end of the
// output. A tap in the padding contributes no term at all (rather than `0 * w`), so an infinite
// or NaN weight meeting the padding adds nothing, as in the CPU reference (see README, NaN and
// infinity).
fn tap_product(x_row: u32, ix: i32, column_live: bool, w4: vec4<f32>) -> vec4<f32> {
    if (!column_live || ix < 0 || ix >= i32(u.in_w)) {
        return vec4<f32>(0.0);
    }
    return src_a[x_row + u32(ix) * u.in_stride_w] * w4;
}

// Input gradient, gather form; also the transposed convolution.
// src_a = grad_output, src_b = weight, src_c = bias [C_in] (transposed convolution only),
// dst = grad_input. One invocation: TILE input channels of one group at one input pixel. A tap
// ky reaches this pixel only if ky*dilation = iy + pad (mod stride); those ky form the
// progression ky0, ky0 + step, ... with step = stride/gcd(stride, dilation), and ky0 comes from
// the modular inverse the host precomputes, so taps of other stride phases cost nothing.
@compute @workgroup_size(64)
fn conv2d_backward_input(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let ix = index % u.in_w;
    var rest = index / u.in_w;
    let iy = rest % u.in_h;
    rest = rest / u.in_h;
    let tiles = u.groups * u.channel_tiles_per_group;
    let tile = rest % tiles;
    let n = rest / tiles;
    let g = tile / u.channel_tiles_per_group;
    let first_in_group = (tile % u.channel_tiles_per_group) * TILE;
    let c0 = g * u.in_channels_per_group + first_in_group;
    let live = min(TILE, u.in_channels_per_group - first_in_group);
    let w_offsets = tile_offsets(live, u.w_stride_i);

    var acc = vec4<f32>(0.0);
    let ty = iy + u.pad_top;
    let tx = ix + u.pad_left;
    if (ty % u.phase_gcd_h == 0u && tx % u.phase_gcd_w == 0u) {
        let ky0 = ((ty / u.phase_gcd_h) % u.phase_step_h) * u.phase_inv_h % u.phase_step_h;
        let kx0 = ((tx / u.phase_gcd_w) % u.phase_step_w) * u.phase_inv_w % u.phase_step_w;
        let dy_group = n * u.out_stride_n + g * u.out_channels_per_group * u.out_stride_c;
        let w_group = u.w_base + g * u.out_channels_per_group * u.w_stride_o + first_in_group * u.w_stride_i;
        for (var ky = ky0; ky < u.kernel_h; ky += u.phase_step_h) {
            if (ky * u.dilation_h > ty) {
                break;
            }
            let oy = (ty - ky * u.dilation_h) / u.stride_h;
            if (oy >= u.out_h) {
                continue;
            }
            for (var kx = kx0; kx < u.kernel_w; kx += u.phase_step_w) {
                if (kx * u.dilation_w > tx) {
                    break;
                }
                let ox = (tx - kx * u.dilation_w) / u.stride_w;
                if (ox >= u.out_w) {
                    continue;
                }
                let dy_tap = dy_group + oy * u.out_stride_h + ox * u.out_stride_w;
                let w_tap = w_group + ky * u.w_stride_h + kx * u.w_stride_w;
                for (var oc = 0u; oc < u.out_channels_per_group; oc++) {
                    acc += src_a[dy_tap + oc * u.out_stride_c] * gather4_b(w_tap + oc * u.w_stride_o, w_offsets);
                }
            }
        }
    }
    if (u.has_bias != 0u) {
        acc += gather4_c(c0, live);
    }
    let out = n * u.in_stride_n + c0 * u.in_stride_c + iy * u.in_stride_h + ix * u.in_stride_w;
    store4(out, u.in_stride_c, live, acc);
}

// Weight gradient, pass 1 of a blocked reduction over the N*OH rows of grad_output.
// src_a = input, src_b = grad_output, dst = partial sums [blocks, weight elements], each block's
// partials laid out like the weight itself.
// One invocation: TILE output channels at one (input channel, ky, kx) over one block of
// `rows_per_block` rows (n, oy), each row summed over ox in order.
@compute @workgroup_size(64)
fn conv2d_backward_weight_partial(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let kx = index % u.kernel_w;
    var rest = index / u.kernel_w;
    let ky = rest % u.kernel_h;
    rest = rest / u.kernel_h;
    let ci = rest % u.in_channels_per_group;
    rest = rest / u.in_channels_per_group;
    let tiles = u.groups * u.channel_tiles_per_group;
    let tile = rest % tiles;
    let block = rest / tiles;
    let g = tile / u.channel_tiles_per_group;
    let first_in_group = (tile % u.channel_tiles_per_group) * TILE;
    let oc0 = g * u.out_channels_per_group + first_in_group;
    let live = min(TILE, u.out_channels_per_group - first_in_group);
    let c = g * u.in_channels_per_group + ci;
    let dy_offsets = tile_offsets(live, u.out_stride_c);

    // Output columns whose tap kx lands inside the input: ox in [ox_lo, ox_hi).
    let shift_x = i32(kx * u.dilation_w) - i32(u.pad_left);
    let ox_lo = u32(max(0, (-shift_x + i32(u.stride_w) - 1) / i32(u.stride_w)));
    let span_x = i32(u.in_w) - 1 - shift_x;
    let ox_hi = select(0u, min(u.out_w, u32(span_x / i32(u.stride_w)) + 1u), span_x >= 0);
    let shift_y = i32(ky * u.dilation_h) - i32(u.pad_top);

    let rows = u.batch * u.out_h;
    let row_begin = block * u.rows_per_block;
    let row_end = min(rows, row_begin + u.rows_per_block);
    var acc = vec4<f32>(0.0);
    for (var r = row_begin; r < row_end; r++) {
        let n = r / u.out_h;
        let oy = r % u.out_h;
        let iy = i32(oy * u.stride_h) + shift_y;
        if (iy < 0 || iy >= i32(u.in_h)) {
            continue;
        }
        let x_row = n * u.in_stride_n + c * u.in_stride_c + u32(iy) * u.in_stride_h;
        let dy_row = n * u.out_stride_n + oc0 * u.out_stride_c + oy * u.out_stride_h;
        for (var ox = ox_lo; ox < ox_hi; ox++) {
            let ix = u32(i32(ox * u.stride_w) + shift_x);
            acc += src_a[x_row + ix * u.in_stride_w] * gather4_b(dy_row + ox * u.out_stride_w, dy_offsets);
        }
    }
    let w_index = u.w_base + oc0 * u.w_stride_o + ci * u.w_stride_i + ky * u.w_stride_h + kx * u.w_stride_w;
    store4(block * u.reduce_len + w_index, u.w_stride_o, live, acc);
}

// Bias gradient, pass 1: src_b = grad_output, dst = partial sums [blocks, C_out].
// One invocation: one channel over one block of rows (n, oy).
@compute @workgroup_size(64)
fn conv2d_backward_bias_partial(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let oc = index % u.out_channels;
    let block = index / u.out_channels;
    let rows = u.batch * u.out_h;
    let row_begin = block * u.rows_per_block;
    let row_end = min(rows, row_begin + u.rows_per_block);
    var acc = 0.0;
    for (var r = row_begin; r < row_end; r++) {
        let n = r / u.out_h;
        let oy = r % u.out_h;
        let row = n * u.out_stride_n + oc * u.out_stride_c + oy * u.out_stride_h;
        for (var ox = 0u; ox < u.out_w; ox++) {
            acc += src_b[row + ox * u.out_stride_w];
        }
    }
    dst[block * u.reduce_len + oc] = acc;
}

// Pass 2 of the blocked reductions: src_a = partial sums [blocks, reduce_len],
// dst = result [reduce_len]. One invocation per result element adds its partials in block order.
@compute @workgroup_size(64)
fn reduce_partials(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    var acc = 0.0;
    for (var b = 0u; b < u.blocks; b++) {
        acc += src_a[b * u.reduce_len + index];
    }
    dst[index] = acc;
}

// The inputs of taps kx = 0, 1, 2 of the four windows of depthwise quad q on input row iy
// (clamped into the input; the caller masks a row outside it), each a vec4 over the four
// outputs. The windows span input columns B - 1 .. B + 8 (B = 4q * stride_w): ten loads from
// clamped addresses, straight-line, which lavapipe turns into gathers across lanes (as fast
// here as aligned vec4 loads, measured, and free of any alignment condition on the width);
// each tap's inputs are then a swizzle of those, picked by selects on the stride and the
// padding.
struct DepthwiseTaps {
    t0: vec4<f32>,
    t1: vec4<f32>,
    t2: vec4<f32>,
}

fn depthwise_row_taps(plane: u32, iy: i32, q: u32) -> DepthwiseTaps {
    // Stored rows and columns (see insert_shift_*): shifts, not divisions, so a forward
    // (shift 0) pays one cheap operation per load.
    let real_h = ((u.in_h - 1u) >> u.insert_shift_h) + 1u;
    let real_w = ((u.in_w - 1u) >> u.insert_shift_w) + 1u;
    let row = (plane * real_h + (u32(clamp(iy, 0, i32(u.in_h) - 1)) >> u.insert_shift_h)) * real_w;
    // left.w is column B - 1, mid and right columns B .. B + 7, next.x column B + 8.
    let b = i32(4u * q * u.stride_w);
    let last = i32(u.in_w) - 1;
    let sw = u.insert_shift_w;
    let left = vec4<f32>(0.0, 0.0, 0.0, src_a[row + (u32(clamp(b - 1, 0, last)) >> sw)]);
    let mid = vec4<f32>(src_a[row + (u32(clamp(b, 0, last)) >> sw)], src_a[row + (u32(clamp(b + 1, 0, last)) >> sw)], src_a[row + (u32(clamp(b + 2, 0, last)) >> sw)], src_a[row + (u32(clamp(b + 3, 0, last)) >> sw)]);
    let right = vec4<f32>(src_a[row + (u32(clamp(b + 4, 0, last)) >> sw)], src_a[row + (u32(clamp(b + 5, 0, last)) >> sw)], src_a[row + (u32(clamp(b + 6, 0, last)) >> sw)], src_a[row + (u32(clamp(b + 7, 0, last)) >> sw)]);
    let next = vec4<f32>(src_a[row + (u32(clamp(b + 8, 0, last)) >> sw)], 0.0, 0.0, 0.0);
    // e[m]: input column B - pad_left + m.
    let odd = u.pad_left == 1u;
    let e0 = select(mid, vec4<f32>(left.w, mid.xyz), odd);
    let e4 = select(right, vec4<f32>(mid.w, right.xyz), odd);
    let e8 = select(next.x, right.w, odd);
    // Output j's tap kx reads e[j * stride_w + kx].
    let stride2 = u.stride_w == 2u;
    return DepthwiseTaps(
        select(e0, vec4<f32>(e0.x, e0.z, e4.x, e4.z), stride2),
        select(vec4<f32>(e0.yzw, e4.x), vec4<f32>(e0.y, e0.w, e4.y, e4.w), stride2),
        select(vec4<f32>(e0.zw, e4.xy), vec4<f32>(e0.z, e4.x, e4.z, e8), stride2),
    );
}

// True when input row iy holds data: inside the input, and not an inserted zero row.
fn depthwise_row_live(iy: i32) -> bool {
    return iy >= 0 && iy < i32(u.in_h) && (iy & ((1 << u.insert_shift_h) - 1)) == 0;
}

// The (up to three) input rows of the window of output row oy, and whether each holds data
// and lies inside the kernel (rows past kernel_h are masked, and read a real row).
struct DepthwiseRows {
    y0: i32,
    y1: i32,
    y2: i32,
    live0: vec4<bool>,
    live1: vec4<bool>,
    live2: vec4<bool>,
}

fn depthwise_rows(oy: u32) -> DepthwiseRows {
    let y0 = i32(oy * u.stride_h) - i32(u.pad_top);
    let y1 = y0 + i32(u.dilation_h);
    let y2 = y0 + i32(2u * u.dilation_h);
    return DepthwiseRows(
        y0,
        y1,
        y2,
        vec4<bool>(depthwise_row_live(y0)),
        vec4<bool>(u.kernel_h > 1u && depthwise_row_live(y1)),
        vec4<bool>(u.kernel_h > 2u && depthwise_row_live(y2)),
    );
}

// Which of the four outputs of quad q exist (a row's last quad may be short) and have tap
// kx = 0, 1, 2 inside the row and the kernel.
struct DepthwiseLiveness {
    l0: vec4<bool>,
    l1: vec4<bool>,
    l2: vec4<bool>,
}

fn depthwise_column_liveness(q: u32) -> DepthwiseLiveness {
    let first = i32(4u * q * u.stride_w) - i32(u.pad_left);
    let cols = vec4<i32>(first) + vec4<i32>(0, 1, 2, 3) * i32(u.stride_w);
    let in_w = vec4<i32>(i32(u.in_w));
    let exists = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(u.out_w);
    // An inserted zero (a column off the 2^shift grid) is no term.
    let off_grid = vec4<i32>((1 << u.insert_shift_w) - 1);
    let zero = vec4<i32>(0);
    return DepthwiseLiveness(
        exists & cols >= zero & cols < in_w & (cols & off_grid) == zero,
        exists & cols + vec4<i32>(1) < in_w & vec4<bool>(u.kernel_w > 1u) & ((cols + vec4<i32>(1)) & off_grid) == zero,
        exists & cols + vec4<i32>(2) < in_w & vec4<bool>(u.kernel_w > 2u) & ((cols + vec4<i32>(2)) & off_grid) == zero,
    );
}

// Depthwise forward (one input channel per group, any channel multiplier) on dense NCHW:
// src_a = input, src_b = weight (any layout; a flip goes through w_base and the strides),
// src_c = bias [C_out] (if has_bias), dst = output. One invocation: an
// output row (n, oc, oy), its nine weights loaded once, walked a quad of neighbouring outputs
// (4q .. 4q+3) at a time, each accumulated as one vec4 (from the bias). The host checks the
// shape: windows at most 3x3, column stride 1 or 2, dilation_w 1, pad_left at most 1; rows
// take any stride, dilation and padding. Straight-line taps (see depthwise_row_taps), three
// rows each masked outside the input or the kernel: on lavapipe, which runs loads lane by
// lane and pays for loops, this makes 30
// loads and 9 weight loads serve 36 multiply-adds, where the direct kernel's channel tiles
// would idle three lanes of four on a depthwise layer.
@compute @workgroup_size(64)
fn conv2d_depthwise_quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let oy = index % u.out_h;
    let rest = index / u.out_h;
    let oc = rest % u.out_channels;
    let n = rest / u.out_channels;
    let plane = n * u.in_channels + oc / u.out_channels_per_group;

    // The (at most 3x3) weights, loaded once for the row; taps past the kernel are masked
    // and read a real tap.
    let w_oc = u.w_base + oc * u.w_stride_o;
    let kx1 = min(1u, u.kernel_w - 1u) * u.w_stride_w;
    let kx2 = min(2u, u.kernel_w - 1u) * u.w_stride_w;
    let w_row1 = w_oc + min(1u, u.kernel_h - 1u) * u.w_stride_h;
    let w_row2 = w_oc + min(2u, u.kernel_h - 1u) * u.w_stride_h;
    let w0 = vec3<f32>(src_b[w_oc], src_b[w_oc + kx1], src_b[w_oc + kx2]);
    let w1 = vec3<f32>(src_b[w_row1], src_b[w_row1 + kx1], src_b[w_row1 + kx2]);
    let w2 = vec3<f32>(src_b[w_row2], src_b[w_row2 + kx1], src_b[w_row2 + kx2]);
    let window = depthwise_rows(oy);
    var bias = 0.0;
    if (u.has_bias != 0u) {
        bias = src_c[oc];
    }
    let quads = (u.out_w + 3u) / 4u;
    for (var q = 0u; q < quads; q++) {
        let live = depthwise_column_liveness(q);
        // A tap outside the input adds no term at all (not 0 * w), as in the CPU reference.
        var acc = vec4<f32>(bias);
        let t0 = depthwise_row_taps(plane, window.y0, q);
        acc += select(vec4<f32>(0.0), t0.t0 * w0.x, window.live0 & live.l0);
        acc += select(vec4<f32>(0.0), t0.t1 * w0.y, window.live0 & live.l1);
        acc += select(vec4<f32>(0.0), t0.t2 * w0.z, window.live0 & live.l2);
        let t1 = depthwise_row_taps(plane, window.y1, q);
        acc += select(vec4<f32>(0.0), t1.t0 * w1.x, window.live1 & live.l0);
        acc += select(vec4<f32>(0.0), t1.t1 * w1.y, window.live1 & live.l1);
        acc += select(vec4<f32>(0.0), t1.t2 * w1.z, window.live1 & live.l2);
        let t2 = depthwise_row_taps(plane, window.y2, q);
        acc += select(vec4<f32>(0.0), t2.t0 * w2.x, window.live2 & live.l0);
        acc += select(vec4<f32>(0.0), t2.t1 * w2.y, window.live2 & live.l1);
        acc += select(vec4<f32>(0.0), t2.t2 * w2.z, window.live2 & live.l2);
        store4(index * u.out_w + 4u * q, 1u, min(4u, u.out_w - 4u * q), activate(acc));
    }
}

// Depthwise weight gradient, pass 1 of a blocked reduction over the N*OH rows of grad_output,
// on the shapes the depthwise forward serves. src_a = input, src_b = grad_output (both dense
// NCHW), dst = partial sums [blocks, weight elements], each block's partials laid out
// like the weight. One invocation: all (at most 9) taps of one output channel over one block of
// rows (n, oy), walking each row a quad of outputs at a time: the quad's grad_output is four
// loads and each tap's four inputs come from depthwise_row_taps, in fixed order (rows, then
// quads, then the four lanes summed).
@compute @workgroup_size(64)
fn conv2d_depthwise_weight_grad_quads(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let oc = index % u.out_channels;
    let block = index / u.out_channels;
    let ic = oc / u.out_channels_per_group;
    let quads = (u.out_w + 3u) / 4u;
    var a00 = vec4<f32>(0.0);
    var a01 = vec4<f32>(0.0);
    var a02 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0);
    var a21 = vec4<f32>(0.0);
    var a22 = vec4<f32>(0.0);
    let rows = u.batch * u.out_h;
    let row_end = min(rows, (block + 1u) * u.rows_per_block);
    for (var r = block * u.rows_per_block; r < row_end; r++) {
        let n = r / u.out_h;
        let oy = r % u.out_h;
        let plane = n * u.in_channels + ic;
        let window = depthwise_rows(oy);
        let dy_row = ((n * u.out_channels + oc) * u.out_h + oy) * u.out_w;
        let last = u.out_w - 1u;
        for (var q = 0u; q < quads; q++) {
            // Past the row's end (a short last quad) the masks drop the term.
            let o = dy_row + 4u * q;
            let dy = vec4<f32>(src_b[o], src_b[dy_row + min(4u * q + 1u, last)], src_b[dy_row + min(4u * q + 2u, last)], src_b[dy_row + min(4u * q + 3u, last)]);
            let live = depthwise_column_liveness(q);
            let zero = vec4<f32>(0.0);
            let t0 = depthwise_row_taps(plane, window.y0, q);
            a00 += select(zero, t0.t0 * dy, window.live0 & live.l0);
            a01 += select(zero, t0.t1 * dy, window.live0 & live.l1);
            a02 += select(zero, t0.t2 * dy, window.live0 & live.l2);
            let t1 = depthwise_row_taps(plane, window.y1, q);
            a10 += select(zero, t1.t0 * dy, window.live1 & live.l0);
            a11 += select(zero, t1.t1 * dy, window.live1 & live.l1);
            a12 += select(zero, t1.t2 * dy, window.live1 & live.l2);
            let t2 = depthwise_row_taps(plane, window.y2, q);
            a20 += select(zero, t2.t0 * dy, window.live2 & live.l0);
            a21 += select(zero, t2.t1 * dy, window.live2 & live.l1);
            a22 += select(zero, t2.t2 * dy, window.live2 & live.l2);
        }
    }
    let one = vec4<f32>(1.0);
    let base = block * u.reduce_len + u.w_base + oc * u.w_stride_o;
    let sh = u.w_stride_h;
    let sw = u.w_stride_w;
    // Taps past the kernel have nowhere to go (their sums are zero).
    dst[base] = dot(a00, one);
    if (u.kernel_w > 1u) { dst[base + sw] = dot(a01, one); }
    if (u.kernel_w > 2u) { dst[base + 2u * sw] = dot(a02, one); }
    if (u.kernel_h > 1u) {
        dst[base + sh] = dot(a10, one);
        if (u.kernel_w > 1u) { dst[base + sh + sw] = dot(a11, one); }
        if (u.kernel_w > 2u) { dst[base + sh + 2u * sw] = dot(a12, one); }
    }
    if (u.kernel_h > 2u) {
        dst[base + 2u * sh] = dot(a20, one);
        if (u.kernel_w > 1u) { dst[base + 2u * sh + sw] = dot(a21, one); }
        if (u.kernel_w > 2u) { dst[base + 2u * sh + 2u * sw] = dot(a22, one); }
    }
}
