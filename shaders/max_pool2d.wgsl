// Max pooling kernels: any layout (tensors addressed through element strides), padding acts as
// -inf, PyTorch's tie and NaN rules, PyTorch's or TensorFlow's index flattening.
//
// Bindings shared by every entry point: `src` (f32, read), `src_indices` (u32, read), `dst`
// (f32, write), `dst_indices` (u32, write); each entry point's comment says which it uses.
// Work mapping: one invocation per output element (forward) or per input element (backward),
// numbered with the column fastest so that neighbouring lanes touch neighbouring memory. The host
// folds the range into a 3-D grid of 64-wide workgroups; `invocation_index` undoes it.

struct Pool2dUniforms {
    batch: u32,
    channels: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    pad_h: u32,
    pad_w: u32,
    dilation_h: u32,
    dilation_w: u32,
    invocations: u32,
    // 0: PyTorch, h * W + w within each (n, c) plane; 1: TensorFlow, (h * W + w) * C + c.
    index_style: u32,
    in_stride_n: u32,
    in_stride_c: u32,
    in_stride_h: u32,
    in_stride_w: u32,
    out_stride_n: u32,
    out_stride_c: u32,
    out_stride_h: u32,
    out_stride_w: u32,
    // Added to every index: a band of rows split off a taller input numbers its positions as
    // the whole input does (row0 * W, times C for TensorFlow's style).
    index_base: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: Pool2dUniforms;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> src_indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst_indices: array<u32>;

const WORKGROUP_SIZE: u32 = 64u;

fn invocation_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return ((wg.z * groups.y + wg.y) * groups.x + wg.x) * WORKGROUP_SIZE + local;
}

// WGSL lets an implementation assume floats are never NaN, so NaN is recognised by its bits.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

struct WindowMax {
    value: f32,
    index: u32,
}

// First tap k >= 0 of a window starting at `start` that lies at or after input coordinate 0.
fn first_tap(start: i32, dilation: u32) -> u32 {
    if (start >= 0) {
        return 0u;
    }
    return (u32(-start) + dilation - 1u) / dilation;
}

fn flat_index(c: u32, h: u32, w: u32) -> u32 {
    if (u.index_style == 1u) {
        return (h * u.in_w + w) * u.channels + c + u.index_base;
    }
    return h * u.in_w + w + u.index_base;
}

// The maximum of output (oh, ow)'s window in the plane of (n, c), and its flattened index. A value replaces the best when it is greater (the first maximum wins a tie) or
// when it is NaN (a NaN wins; the last NaN in scan order gives the index), PyTorch's rule. The
// index starts at the first tap at or after 0 on each axis: what a window of -inf values
// returns, and (with -inf) what a window wholly in the padding returns, as PyTorch does.
fn window_max(n: u32, c: u32, oh: u32, ow: u32) -> WindowMax {
    let plane = n * u.in_stride_n + c * u.in_stride_c;
    let h0 = i32(oh * u.stride_h) - i32(u.pad_h);
    let w0 = i32(ow * u.stride_w) - i32(u.pad_w);
    let ky0 = first_tap(h0, u.dilation_h);
    let kx0 = first_tap(w0, u.dilation_w);
    var best = bitcast<f32>(0xff800000u);
    var best_index = flat_index(c, u32(h0 + i32(ky0 * u.dilation_h)), u32(w0 + i32(kx0 * u.dilation_w)));
    var saw_nan = false;
    // Windows of at most 2x2 or 3x3 (nearly all pooling) take a loop of constant length,
    // which the compiler unrolls into straight-line code: lavapipe runs loads lane by lane and
    // pays for loop iterations and masked branches.
    if (u.kernel_h <= 2u && u.kernel_w <= 2u) {
        return small_window_max(plane, c, h0, w0, best_index, 2u);
    }
    if (u.kernel_h <= 3u && u.kernel_w <= 3u) {
        return small_window_max(plane, c, h0, w0, best_index, 3u);
    }
    for (var ky = ky0; ky < u.kernel_h; ky++) {
        let ih = u32(h0 + i32(ky * u.dilation_h));
        if (ih >= u.in_h) {
            break;
        }
        for (var kx = kx0; kx < u.kernel_w; kx++) {
            let iw = u32(w0 + i32(kx * u.dilation_w));
            if (iw >= u.in_w) {
                break;
            }
            let v = src[plane + ih * u.in_stride_h + iw * u.in_stride_w];
            let nan = is_nan(v);
            if (nan || (!saw_nan && v > best)) {
                best = v;
                best_index = flat_index(c, ih, iw);
                saw_nan = saw_nan || nan;
            }
        }
    }
    return WindowMax(best, best_index);
}

// window_max for windows of at most side x side taps (side a constant at each call): the
// same taps in the same order with the same rule, every load unconditional (from a clamped
// address) and every update a select.
fn small_window_max(plane: u32, c: u32, h0: i32, w0: i32, first_index: u32, side: u32) -> WindowMax {
    var best = bitcast<f32>(0xff800000u);
    var best_index = first_index;
    var saw_nan = false;
    for (var t = 0u; t < side * side; t++) {
        let ky = t / side;
        let kx = t % side;
        let ih = h0 + i32(ky * u.dilation_h);
        let iw = w0 + i32(kx * u.dilation_w);
        let live = ky < u.kernel_h && kx < u.kernel_w && ih >= 0 && ih < i32(u.in_h) && iw >= 0 && iw < i32(u.in_w);
        let ch = u32(clamp(ih, 0, i32(u.in_h) - 1));
        let cw = u32(clamp(iw, 0, i32(u.in_w) - 1));
        let v = src[plane + ch * u.in_stride_h + cw * u.in_stride_w];
        let nan = is_nan(v);
        let take = live && (nan || (!saw_nan && v > best));
        best = select(best, v, take);
        best_index = select(best_index, flat_index(c, ch, cw), take);
        saw_nan = saw_nan || (live && nan);
    }
    return WindowMax(best, best_index);
}

struct OutputPosition {
    n: u32,
    c: u32,
    oh: u32,
    ow: u32,
    // Element offset of (n, c, oh, ow) in the output (and the index output), any layout.
    offset: u32,
}

// The output element a forward invocation owns: invocations are numbered with ow fastest.
fn output_position(index: u32) -> OutputPosition {
    let ow = index % u.out_w;
    var rest = index / u.out_w;
    let oh = rest % u.out_h;
    rest = rest / u.out_h;
    let c = rest % u.channels;
    let n = rest / u.channels;
    let offset = n * u.out_stride_n + c * u.out_stride_c + oh * u.out_stride_h + ow * u.out_stride_w;
    return OutputPosition(n, c, oh, ow, offset);
}

// Inference forward: src = input [N, C, H, W], dst = output [N, C, OH, OW]; no indices written.
@compute @workgroup_size(64)
fn max_pool2d_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let o = output_position(index);
    dst[o.offset] = window_max(o.n, o.c, o.oh, o.ow).value;
}

// Training forward: as above, plus dst_indices = argmax indices [N, C, OH, OW].
@compute @workgroup_size(64)
fn max_pool2d_forward_with_indices(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let o = output_position(index);
    let m = window_max(o.n, o.c, o.oh, o.ow);
    dst[o.offset] = m.value;
    dst_indices[o.offset] = m.index;
}

// Backward, gather form: src = grad_output [N, C, OH, OW], src_indices = indices [N, C, OH, OW],
// dst = grad_input [N, C, H, W]. Each input element adds, in (oh, ow) order, the gradients of
// the windows that have it as a tap and whose index names it; no atomics, so results are
// reproducible. (The tap test matters only for windows wholly in the padding, whose index
// names no tap of theirs: their output depends on no input.)
@compute @workgroup_size(64)
fn max_pool2d_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let iw = index % u.in_w;
    var rest = index / u.in_w;
    let ih = rest % u.in_h;
    rest = rest / u.in_h;
    let c = rest % u.channels;
    let n = rest / u.channels;
    let me = flat_index(c, ih, iw);
    // Windows covering row ih: start = oh*stride - pad <= ih <= start + (kernel-1)*dilation.
    let reach_h = (u.kernel_h - 1u) * u.dilation_h;
    let reach_w = (u.kernel_w - 1u) * u.dilation_w;
    let top = ih + u.pad_h;
    let left = iw + u.pad_w;
    let oh_lo = select(0u, (top - reach_h + u.stride_h - 1u) / u.stride_h, top > reach_h);
    let oh_hi = min(u.out_h, top / u.stride_h + 1u);
    let ow_lo = select(0u, (left - reach_w + u.stride_w - 1u) / u.stride_w, left > reach_w);
    let ow_hi = min(u.out_w, left / u.stride_w + 1u);
    let out_plane = n * u.out_stride_n + c * u.out_stride_c;
    var acc = 0.0;
    for (var oh = oh_lo; oh < oh_hi; oh++) {
        if ((top - oh * u.stride_h) % u.dilation_h != 0u) {
            continue;
        }
        for (var ow = ow_lo; ow < ow_hi; ow++) {
            if ((left - ow * u.stride_w) % u.dilation_w != 0u) {
                continue;
            }
            let o = out_plane + oh * u.out_stride_h + ow * u.out_stride_w;
            if (src_indices[o] == me) {
                acc += src[o];
            }
        }
    }
    dst[n * u.in_stride_n + c * u.in_stride_c + ih * u.in_stride_h + iw * u.in_stride_w] = acc;
}
