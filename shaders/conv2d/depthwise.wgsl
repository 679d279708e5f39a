// The depthwise conv2d kernels: one input channel per group, any channel multiplier, NCHW or
// NHWC, windows up to 3x3; the forward pass and pass 1 of the weight gradient. Both work on
// quads, four neighbouring outputs of a row, and map consecutive invocations to the contiguous
// dimension of the layout: NCHW, consecutive quads of a row (lanes read neighbouring columns);
// NHWC, consecutive channels of one quad (lanes read neighbouring channels). That is the order
// for GPUs, whose loads coalesce across lanes; on CPU drivers, where lanes are one core's SIMD
// elements, consecutive channels measured faster in both layouts (see depthwise.rs).

// Where an invocation's work lies: image n, output channel oc, column c of quads (forward:
// quad c; weight gradient: quads_per_invocation quads from c * quads_per_invocation) and run
// of rows (forward: rows_per_block output rows of image n; weight gradient: a block of
// rows_per_block rows (n, oy) over the batch, with n unused).
struct DepthwiseItem {
    n: u32,
    oc: u32,
    column: u32,
    run: u32,
}

// Invocation `index`'s item, over `columns` columns per row and `runs` runs of rows per image,
// channels fastest where lanes_along_channels says so (NHWC's contiguous dimension, and on CPU
// drivers), else columns fastest (NCHW's contiguous dimension on a GPU).
fn depthwise_item(index: u32, columns: u32, runs: u32) -> DepthwiseItem {
    if (u.lanes_along_channels != 0u) {
        let oc = index % u.out_channels;
        let rest = index / u.out_channels;
        let rest2 = rest / columns;
        return DepthwiseItem(rest2 / runs, oc, rest % columns, rest2 % runs);
    }
    let rest = index / columns;
    let rest2 = rest / runs;
    return DepthwiseItem(rest2 / u.out_channels, rest2 % u.out_channels, index % columns, rest % runs);
}

// The inputs of taps kx = 0, 1, 2 of the four windows of quad q on input row iy of the plane
// at `plane` (clamped into the input; the caller masks a row outside it), each a vec4 over the
// four outputs. The windows span input columns B - 1 .. B + 8 (B = 4q * stride_w): ten loads
// from clamped addresses, straight-line, which lavapipe turns into gathers across lanes (as
// fast there as aligned vec4 loads, measured, and free of any alignment condition on the
// width); each tap's inputs are then a swizzle of those, picked by selects on the stride and
// the padding.
struct DepthwiseTaps {
    t0: vec4<f32>,
    t1: vec4<f32>,
    t2: vec4<f32>,
}

fn depthwise_row_taps(plane: u32, iy: i32, q: u32) -> DepthwiseTaps {
    // Stored rows and columns (see insert_shift_*; the input strides are the stored tensor's):
    // shifts, not divisions, so a forward (shift 0) pays one cheap operation per load.
    let row = plane + (u32(clamp(iy, 0, i32(u.in_h) - 1)) >> u.insert_shift_h) * u.in_stride_h;
    // left.w is column B - 1, mid and right columns B .. B + 7, next.x column B + 8.
    let b = i32(4u * q * u.stride_w);
    let last = i32(u.in_w) - 1;
    let sw = u.insert_shift_w;
    let cs = u.in_stride_w;
    let left = vec4<f32>(0.0, 0.0, 0.0, src_a[row + (u32(clamp(b - 1, 0, last)) >> sw) * cs]);
    let mid = vec4<f32>(src_a[row + (u32(clamp(b, 0, last)) >> sw) * cs], src_a[row + (u32(clamp(b + 1, 0, last)) >> sw) * cs], src_a[row + (u32(clamp(b + 2, 0, last)) >> sw) * cs], src_a[row + (u32(clamp(b + 3, 0, last)) >> sw) * cs]);
    let right = vec4<f32>(src_a[row + (u32(clamp(b + 4, 0, last)) >> sw) * cs], src_a[row + (u32(clamp(b + 5, 0, last)) >> sw) * cs], src_a[row + (u32(clamp(b + 6, 0, last)) >> sw) * cs], src_a[row + (u32(clamp(b + 7, 0, last)) >> sw) * cs]);
    let next = vec4<f32>(src_a[row + (u32(clamp(b + 8, 0, last)) >> sw) * cs], 0.0, 0.0, 0.0);
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

// Depthwise forward (one input channel per group, any channel multiplier): src_a = input,
// src_b = weight (any layout; a flip goes through w_base and the strides), src_c = bias
// [C_out] (if has_bias), dst = output. One invocation: quad q (outputs 4q .. 4q+3) of output
// channel oc in `rows_per_block` consecutive output rows of image n, its nine weights loaded
// once, each quad accumulated as one vec4 (from the bias). The host checks the shape: windows
// at most 3x3, column stride 1 or 2, dilation_w 1, pad_left at most 1; rows take any stride,
// dilation and padding. Straight-line taps (see depthwise_row_taps), three rows each masked
// outside the input or the kernel: on lavapipe, which runs loads lane by lane and pays for
// loops, this makes 30 loads and 9 weight loads serve 36 multiply-adds, where the direct
// kernel's channel tiles would idle three lanes of four on a depthwise layer.
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
    let quads = (u.out_w + 3u) / 4u;
    let item = depthwise_item(index, quads, (u.out_h + u.rows_per_block - 1u) / u.rows_per_block);
    let oc = item.oc;
    let q = item.column;
    let plane = item.n * u.in_stride_n + (oc / u.out_channels_per_group) * u.in_stride_c;

    // The (at most 3x3) weights, loaded once; taps past the kernel are masked and read a real
    // tap.
    let w_oc = u.w_base + oc * u.w_stride_o;
    let kx1 = min(1u, u.kernel_w - 1u) * u.w_stride_w;
    let kx2 = min(2u, u.kernel_w - 1u) * u.w_stride_w;
    let w_row1 = w_oc + min(1u, u.kernel_h - 1u) * u.w_stride_h;
    let w_row2 = w_oc + min(2u, u.kernel_h - 1u) * u.w_stride_h;
    let w0 = vec3<f32>(src_b[w_oc], src_b[w_oc + kx1], src_b[w_oc + kx2]);
    let w1 = vec3<f32>(src_b[w_row1], src_b[w_row1 + kx1], src_b[w_row1 + kx2]);
    let w2 = vec3<f32>(src_b[w_row2], src_b[w_row2 + kx1], src_b[w_row2 + kx2]);
    var bias = 0.0;
    if (HAS_BIAS) {
        bias = src_c[oc];
    }
    let live = depthwise_column_liveness(q);
    let out_quad = item.n * u.out_stride_n + oc * u.out_stride_c + 4u * q * u.out_stride_w;
    let count = min(4u, u.out_w - 4u * q);
    let first = item.run * u.rows_per_block;
    let end = min(u.out_h, first + u.rows_per_block);
    for (var oy = first; oy < end; oy++) {
        let window = depthwise_rows(oy);
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
        store4(out_quad + oy * u.out_stride_h, u.out_stride_w, count, activate4(acc));
    }
}

// Depthwise weight gradient, pass 1 of a blocked reduction over the N*OH rows of grad_output,
// on the shapes the depthwise forward serves. src_a = input, src_b = grad_output, dst =
// partial sums [blocks * columns, weight elements], the partials of (block, column c) at
// block * columns + c, each laid out like the weight. One invocation: all (at most 9) taps of
// output channel oc over the quads of column c (quads_per_invocation of them: a whole row on
// CPU drivers, one quad on GPUs) of every row (n, oy) of one block, each quad's grad_output
// four loads and each tap's four inputs from depthwise_row_taps, in fixed order (rows, then
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
    let quads = (u.out_w + 3u) / 4u;
    let columns = (quads + u.quads_per_invocation - 1u) / u.quads_per_invocation;
    let item = depthwise_item(index, columns, u.blocks);
    let oc = item.oc;
    let block = item.run;
    let q_first = item.column * u.quads_per_invocation;
    let q_end = min(quads, q_first + u.quads_per_invocation);
    let channel = (oc / u.out_channels_per_group) * u.in_stride_c;
    var a00 = vec4<f32>(0.0);
    var a01 = vec4<f32>(0.0);
    var a02 = vec4<f32>(0.0);
    var a10 = vec4<f32>(0.0);
    var a11 = vec4<f32>(0.0);
    var a12 = vec4<f32>(0.0);
    var a20 = vec4<f32>(0.0);
    var a21 = vec4<f32>(0.0);
    var a22 = vec4<f32>(0.0);
    let zero = vec4<f32>(0.0);
    let last = u.out_w - 1u;
    let sw = u.out_stride_w;
    let rows = u.batch * u.out_h;
    let first = block * u.rows_per_block;
    let row_end = min(rows, first + u.rows_per_block);
    // Row r is (n, oy), advanced by counting: a vector division costs lavapipe one scalar
    // division per lane.
    var n = first / u.out_h;
    var oy = first % u.out_h;
    for (var r = first; r < row_end; r++) {
        let plane = n * u.in_stride_n + channel;
        let window = depthwise_rows(oy);
        let dy_row = n * u.out_stride_n + oc * u.out_stride_c + oy * u.out_stride_h;
        for (var q = q_first; q < q_end; q++) {
            // Past the row's end (a short last quad) the masks drop the term; the loads
            // stay inside.
            let dy = vec4<f32>(src_b[dy_row + 4u * q * sw], src_b[dy_row + min(4u * q + 1u, last) * sw], src_b[dy_row + min(4u * q + 2u, last) * sw], src_b[dy_row + min(4u * q + 3u, last) * sw]);
            let live = depthwise_column_liveness(q);
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
        oy++;
        if (oy == u.out_h) {
            oy = 0u;
            n++;
        }
    }
    let one = vec4<f32>(1.0);
    let base = (block * columns + item.column) * u.reduce_len + u.w_base + oc * u.w_stride_o;
    let sh = u.w_stride_h;
    let sk = u.w_stride_w;
    // Taps past the kernel have nowhere to go (their sums are zero).
    dst[base] = dot(a00, one);
    if (u.kernel_w > 1u) { dst[base + sk] = dot(a01, one); }
    if (u.kernel_w > 2u) { dst[base + 2u * sk] = dot(a02, one); }
    if (u.kernel_h > 1u) {
        dst[base + sh] = dot(a10, one);
        if (u.kernel_w > 1u) { dst[base + sh + sk] = dot(a11, one); }
        if (u.kernel_w > 2u) { dst[base + sh + 2u * sk] = dot(a12, one); }
    }
    if (u.kernel_h > 2u) {
        dst[base + 2u * sh] = dot(a20, one);
        if (u.kernel_w > 1u) { dst[base + 2u * sh + sk] = dot(a21, one); }
        if (u.kernel_w > 2u) { dst[base + 2u * sh + 2u * sk] = dot(a22, one); }
    }
}
