// The direct conv2d kernels: cross-correlation (or true convolution), PyTorch padding
// semantics, any layout; the forward pass, the input gradient (and transposed convolution) in
// gather form, and pass 1 of the weight and bias gradients. They need no optional feature and
// are what the planner falls back to everywhere.
//
// Invocations are numbered with the fastest-varying spatial or tap index first, so loads that
// depend only on the channel tile are uniform across neighbouring lanes.

// Channels per invocation in the tiled kernels (FORWARD_CHANNEL_TILE on the host).
const TILE: u32 = 4u;
// Output columns per forward invocation (FORWARD_COLUMN_TILE on the host).
const OW_TILE: u32 = 4u;

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
    if (HAS_BIAS) {
        bias = gather4_c(oc0, live);
    }
    let out = n * u.out_stride_n + oc0 * u.out_stride_c + oy * u.out_stride_h + ox0 * u.out_stride_w;
    store4(out, u.out_stride_c, live, activate4(acc0 + bias));
    if (columns > 1u) { store4(out + u.out_stride_w, u.out_stride_c, live, activate4(acc1 + bias)); }
    if (columns > 2u) { store4(out + 2u * u.out_stride_w, u.out_stride_c, live, activate4(acc2 + bias)); }
    if (columns > 3u) { store4(out + 3u * u.out_stride_w, u.out_stride_c, live, activate4(acc3 + bias)); }
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
    if (HAS_BIAS) {
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
