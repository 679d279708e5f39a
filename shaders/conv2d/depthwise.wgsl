// The depthwise conv2d kernels: one input channel per group, any channel multiplier, dense
// NCHW, windows up to 3x3; the forward pass and pass 1 of the weight gradient, each walking an
// output row four outputs at a time.

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
        exists & (cols >= zero) & (cols < in_w) & ((cols & off_grid) == zero),
        exists & (cols + vec4<i32>(1) < in_w) & vec4<bool>(u.kernel_w > 1u) & (((cols + vec4<i32>(1)) & off_grid) == zero),
        exists & (cols + vec4<i32>(2) < in_w) & vec4<bool>(u.kernel_w > 2u) & (((cols + vec4<i32>(2)) & off_grid) == zero),
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
        store4(index * u.out_w + 4u * q, 1u, min(4u, u.out_w - 4u * q), activate4(acc));
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
