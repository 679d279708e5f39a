// Max pooling kernels: any layout (tensors addressed through element strides), padding acts as
// -inf, PyTorch's tie and NaN rules, PyTorch's or TensorFlow's index flattening.
//
// Bindings shared by every entry point: `src` (f32, read), `src_indices` (u32, read), `dst`
// (f32, write), `dst_indices` (u32, write); each entry point's comment says which it uses.
// Work mapping, per-element kernels (for real GPUs, and any shape): one invocation per output
// element (forward) or per input element (backward), numbered with the layout's contiguous
// dimension fastest (the column in NCHW, the channel in NHWC) so that neighbouring lanes touch
// neighbouring memory. The host folds the range into a 3-D grid of
// 64-wide workgroups; `invocation_index` undoes it. The blocked kernels further down give each
// invocation more work, for CPU adapters (lavapipe) where an invocation and a load cost far more
// than arithmetic; each says how it maps work.

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
// The same bindings seen as vec4s, for the quad forward kernels only (an entry point may use one
// view of a binding, never both).
@group(0) @binding(1) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dst4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst_indices4: array<vec4<u32>>;

// -infinity, what max pooling pads with. A private variable, not a constant: a WGSL
// const-expression must be finite (Tint rejects `bitcast<f32>(0xff800000u)` as one).
var<private> NEG_INF_BITS: u32 = 0xff800000u;

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
    // A select, not a branch: lavapipe turns even a uniform branch into masked control flow.
    // index_base places a band of rows (a split within a sample) in its whole plane.
    let position = h * u.in_w + w;
    return select(position, position * u.channels + c, u.index_style == 1u) + u.index_base;
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
    // The best tap's row and column; its flattened index is computed once, at the end.
    var best_h = u32(h0 + i32(ky0 * u.dilation_h));
    var best_w = u32(w0 + i32(kx0 * u.dilation_w));
    // Windows of at most 2x2 or 3x3 (nearly all pooling) take a loop of constant length,
    // which the compiler unrolls into straight-line code: lavapipe runs loads lane by lane and
    // pays for loop iterations and masked branches.
    if (u.kernel_h <= 2u && u.kernel_w <= 2u) {
        return small_window_max(plane, c, h0, w0, vec2<u32>(best_h, best_w), 2u);
    }
    if (u.kernel_h <= 3u && u.kernel_w <= 3u) {
        return small_window_max(plane, c, h0, w0, vec2<u32>(best_h, best_w), 3u);
    }
    var best = bitcast<f32>(NEG_INF_BITS);
    var saw_nan = false;
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
                best_h = ih;
                best_w = iw;
                saw_nan = saw_nan || nan;
            }
        }
    }
    return WindowMax(best, flat_index(c, best_h, best_w));
}

// window_max for windows of at most side x side taps (side a constant at each call): the
// same taps in the same order with the same rule, every load unconditional (from a clamped
// address) and every update a select.
fn small_window_max(plane: u32, c: u32, h0: i32, w0: i32, first: vec2<u32>, side: u32) -> WindowMax {
    var best = bitcast<f32>(NEG_INF_BITS);
    var best_at = first;
    var saw_nan = false;
    // Tap t is (ky, kx), counted rather than divided out of t: no division in the loop on a
    // driver that does not unroll it.
    var ky = 0u;
    var kx = 0u;
    for (var t = 0u; t < side * side; t++) {
        let ih = h0 + i32(ky * u.dilation_h);
        let iw = w0 + i32(kx * u.dilation_w);
        let live = ky < u.kernel_h && kx < u.kernel_w && ih >= 0 && ih < i32(u.in_h) && iw >= 0 && iw < i32(u.in_w);
        let ch = u32(clamp(ih, 0, i32(u.in_h) - 1));
        let cw = u32(clamp(iw, 0, i32(u.in_w) - 1));
        let v = src[plane + ch * u.in_stride_h + cw * u.in_stride_w];
        let nan = is_nan(v);
        let take = live && (nan || (!saw_nan && v > best));
        best = select(best, v, take);
        best_at = select(best_at, vec2<u32>(ch, cw), take);
        saw_nan = saw_nan || (live && nan);
        kx++;
        let wrap = kx == side;
        kx = select(kx, 0u, wrap);
        ky = select(ky, ky + 1u, wrap);
    }
    return WindowMax(best, flat_index(c, best_at.x, best_at.y));
}

struct OutputPosition {
    n: u32,
    c: u32,
    oh: u32,
    ow: u32,
    // Element offset of (n, c, oh, ow) in the output (and the index output), any layout.
    offset: u32,
}

// Whether consecutive invocations take consecutive channels: where channels are the contiguous
// dimension (NHWC), so that neighbouring lanes read and write neighbouring memory in either
// layout. (With one channel the two orders coincide.)
fn channels_fastest(stride_c: u32, stride_w: u32) -> bool {
    return stride_c == 1u && stride_w != 1u;
}

// (n, c, h, w) of invocation `index` over an N x C x H x W range, numbered with the output's
// contiguous dimension fastest: w (NCHW) or c (NHWC).
fn element_position(index: u32, h: u32, w: u32, by_channel: bool) -> vec4<u32> {
    if (by_channel) {
        let c = index % u.channels;
        var rest = index / u.channels;
        let x = rest % w;
        rest = rest / w;
        return vec4<u32>(rest / h, c, rest % h, x);
    }
    let x = index % w;
    var rest = index / w;
    let y = rest % h;
    rest = rest / h;
    return vec4<u32>(rest / u.channels, rest % u.channels, y, x);
}

// The output element a forward invocation owns.
fn output_position(index: u32) -> OutputPosition {
    let p = element_position(index, u.out_h, u.out_w, channels_fastest(u.out_stride_c, u.out_stride_w));
    let offset = p.x * u.out_stride_n + p.y * u.out_stride_c + p.z * u.out_stride_h + p.w * u.out_stride_w;
    return OutputPosition(p.x, p.y, p.z, p.w, offset);
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
    let p = element_position(index, u.in_h, u.in_w, channels_fastest(u.in_stride_c, u.in_stride_w));
    let n = p.x;
    let c = p.y;
    let ih = p.z;
    let iw = p.w;
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
    // Window oh covers row ih on a tap when (top - oh * stride) % dilation is 0. The remainder
    // is computed once per axis and stepped down by stride % dilation as oh (ow) goes up, so
    // that the loops hold no division.
    let step_h = u.stride_h % u.dilation_h;
    let step_w = u.stride_w % u.dilation_w;
    let first_w = (left - ow_lo * u.stride_w) % u.dilation_w;
    var off_h = (top - oh_lo * u.stride_h) % u.dilation_h;
    var acc = 0.0;
    for (var oh = oh_lo; oh < oh_hi; oh++) {
        if (off_h == 0u) {
            var off_w = first_w;
            for (var ow = ow_lo; ow < ow_hi; ow++) {
                let o = out_plane + oh * u.out_stride_h + ow * u.out_stride_w;
                if (off_w == 0u && src_indices[o] == me) {
                    acc += src[o];
                }
                off_w = select(off_w + u.dilation_w - step_w, off_w - step_w, off_w >= step_w);
            }
        }
        off_h = select(off_h + u.dilation_h - step_h, off_h - step_h, off_h >= step_h);
    }
    dst[n * u.in_stride_n + c * u.in_stride_c + ih * u.in_stride_h + iw * u.in_stride_w] = acc;
}

// ---- Blocked kernels for CPU adapters -------------------------------------------------------

// The running maximum of one window: PyTorch's rule as in `window_max`.
struct Window {
    best: f32,
    index: u32,
    saw_nan: bool,
}

fn consider(w: Window, v: f32, live: bool, index: u32) -> Window {
    let nan = is_nan(v);
    let take = live && (nan || (!w.saw_nan && v > w.best));
    return Window(select(w.best, v, take), select(w.index, index, take), w.saw_nan || (live && nan));
}

// Taps kx = 0, 1, 2 of one window on one input row: values t0..t2, whether each counts
// (inside the row, the kernel and the input's rows), and the first tap's index; indices are
// linear in the column, `step` apart.
fn consider_row(w: Window, t0: f32, t1: f32, t2: f32, live: vec3<bool>, index0: u32, step: u32) -> Window {
    var r = consider(w, t0, live.x, index0);
    r = consider(r, t1, live.y, index0 + step);
    return consider(r, t2, live.z, index0 + 2u * step);
}

// Which taps of a quad's four windows lie inside the row and the kernel (windows starting at
// col0, col0 + 2, ...; col0 >= -1): computed once per quad, then masked by each row.
struct QuadColumns {
    w0: vec3<bool>,
    w1: vec3<bool>,
    w2: vec3<bool>,
    w3: vec3<bool>,
}

fn window_columns(iw0: i32) -> vec3<bool> {
    let cols = vec3<i32>(iw0) + vec3<i32>(0, 1, 2);
    return (cols >= vec3<i32>(0)) & (cols < vec3<i32>(i32(u.in_w))) & vec3<bool>(true, true, u.kernel_w == 3u);
}

fn quad_columns(col0: i32) -> QuadColumns {
    return QuadColumns(window_columns(col0), window_columns(col0 + 2), window_columns(col0 + 4), window_columns(col0 + 6));
}

struct Quad {
    w0: Window,
    w1: Window,
    w2: Window,
    w3: Window,
}

// One input row's taps for the four windows of a quad (windows at columns 8q - pad_w + 2j):
// left.w, mid, right and next.x hold columns 8q - 1 .. 8q + 8, so every tap is a constant
// component picked by a select on the padding. `cols` says which taps lie in the row and the
// kernel; index0 is the index of the first window's first column on this row.
fn quad_taps(quad: Quad, left: vec4<f32>, mid: vec4<f32>, right: vec4<f32>, next: vec4<f32>, cols: QuadColumns, row_live: bool, index0: u32, step: u32) -> Quad {
    // Output j's taps sit at columns 8q + 2j - pad_w + kx: with pad_w 1 each is one column
    // left of where it is with pad_w 0.
    let odd = u.pad_w == 1u;
    let row = vec3<bool>(row_live);
    return Quad(
        consider_row(quad.w0, select(mid.x, left.w, odd), select(mid.y, mid.x, odd), select(mid.z, mid.y, odd), cols.w0 & row, index0, step),
        consider_row(quad.w1, select(mid.z, mid.y, odd), select(mid.w, mid.z, odd), select(right.x, mid.w, odd), cols.w1 & row, index0 + 2u * step, step),
        consider_row(quad.w2, select(right.x, mid.w, odd), select(right.y, right.x, odd), select(right.z, right.y, odd), cols.w2 & row, index0 + 4u * step, step),
        consider_row(quad.w3, select(right.z, right.y, odd), select(right.w, right.z, odd), select(next.x, right.w, odd), cols.w3 & row, index0 + 6u * step, step),
    );
}

// Where row ky of a window starting at row h0 lies: its clamped row, and whether it counts.
struct QuadRow {
    h: u32,
    live: bool,
}

fn quad_row_at(h0: i32, ky: u32) -> QuadRow {
    let ih = h0 + i32(ky * u.dilation_h);
    return QuadRow(u32(clamp(ih, 0, i32(u.in_h) - 1)), ky < u.kernel_h && ih >= 0 && ih < i32(u.in_h));
}

// The initial windows of quad outputs starting at col0 (first row tap first_h): -inf, with the
// index of the first tap at or after 0 on each axis.
fn quad_start(c: u32, first_h: u32, col0: i32) -> Quad {
    return Quad(
        Window(bitcast<f32>(NEG_INF_BITS), flat_index(c, first_h, u32(max(col0, 0))), false),
        Window(bitcast<f32>(NEG_INF_BITS), flat_index(c, first_h, u32(col0 + 2)), false),
        Window(bitcast<f32>(NEG_INF_BITS), flat_index(c, first_h, u32(col0 + 4)), false),
        Window(bitcast<f32>(NEG_INF_BITS), flat_index(c, first_h, u32(col0 + 6)), false),
    );
}

// Up to eight neighbouring outputs (n, c, oh, 8o .. 8o+7) of a dense NCHW pooling whose
// windows are at most 3 rows high and 2 or 3 columns wide at column stride 2, dilation 1 and
// left padding 0 or 1, with in_w and out_w multiples of 4 (the host checks all of it): two
// quads of four, the second absent in a row's last octet when out_w is 4 past a multiple of 8.
// Their windows span input columns 16o - 1 .. 16o + 16 of each row, which six aligned vec4
// loads cover; every tap is then a constant component picked by a select on the padding
// (quad_taps). Straight-line code throughout (three rows, each masked when outside the input
// or the kernel): lavapipe runs loads lane by lane, and pays for loops, branches and dynamic
// indexing, so about one vec4 load per three columns, no per-tap control flow and index
// arithmetic shared by eight outputs is what makes this fast there.
struct Octet {
    lo: Quad,
    hi: Quad,
}

// With `two_by_two` (a constant at each call) the windows are 2 columns wide without left
// padding: no tap reads the column before the octet or after it, so `left` and `next` are not
// loaded (four loads per row instead of six).
fn octet_row(o: Octet, plane: u32, c: u32, h0: i32, ky: u32, v: u32, col0: i32, lo: QuadColumns, hi: QuadColumns, two_by_two: bool) -> Octet {
    let r = quad_row_at(h0, ky);
    let row_vec4s = u.in_w / 4u;
    let row = (plane * u.in_h + r.h) * row_vec4s;
    let last = row_vec4s - 1u;
    let a = src4[row + v];
    let b = src4[row + min(v + 1u, last)];
    let d = src4[row + min(v + 2u, last)];
    let e = src4[row + min(v + 3u, last)];
    // Stand-ins where two_by_two: every tap that would read them is masked.
    var left = a;
    var next = e;
    if (!two_by_two) {
        left = src4[row + max(v, 1u) - 1u];
        next = src4[row + min(v + 4u, last)];
    }
    let step = select(1u, u.channels, u.index_style == 1u);
    let index0 = flat_index(c, r.h, u32(col0));
    return Octet(
        quad_taps(o.lo, left, a, b, d, lo, r.live, index0, step),
        quad_taps(o.hi, b, d, e, next, hi, r.live, index0 + 8u * step, step),
    );
}

// Where octet `index` sits: its output row (n, c, oh) and its place o in that row.
struct OctetPlace {
    row: u32,
    o: u32,
}

fn octet_place(index: u32) -> OctetPlace {
    let octets = (u.out_w + 4u) / 8u;
    return OctetPlace(index / octets, index % octets);
}

fn octet_max(place: OctetPlace, two_by_two: bool) -> Octet {
    let q = place.o;
    let oh = place.row % u.out_h;
    let plane = place.row / u.out_h;
    let c = plane % u.channels;
    let h0 = i32(oh * u.stride_h) - i32(u.pad_h);
    let col0 = i32(16u * q) - i32(u.pad_w);
    let first_h = u32(h0 + i32(first_tap(h0, u.dilation_h) * u.dilation_h));
    let lo = quad_columns(col0);
    let hi = quad_columns(col0 + 8);
    var o = Octet(quad_start(c, first_h, col0), quad_start(c, first_h, col0 + 8));
    o = octet_row(o, plane, c, h0, 0u, 4u * q, col0, lo, hi, two_by_two);
    o = octet_row(o, plane, c, h0, 1u, 4u * q, col0, lo, hi, two_by_two);
    // Windows at most two rows high have no third row.
    if (!two_by_two) {
        o = octet_row(o, plane, c, h0, 2u, 4u * q, col0, lo, hi, two_by_two);
    }
    return o;
}

// The output vec4 of an octet's first quad, and whether its second quad exists.
struct OctetOutput {
    first: u32,
    has_hi: bool,
}

fn octet_output(place: OctetPlace) -> OctetOutput {
    let quads = u.out_w / 4u;
    return OctetOutput(place.row * quads + 2u * place.o, 2u * place.o + 1u < quads);
}

fn quad_values(m: Quad) -> vec4<f32> {
    return vec4<f32>(m.w0.best, m.w1.best, m.w2.best, m.w3.best);
}

fn quad_indices(m: Quad) -> vec4<u32> {
    return vec4<u32>(m.w0.index, m.w1.index, m.w2.index, m.w3.index);
}

// The forward of octet `index` (see octet_max) into one or two output vec4s, and with
// `with_indices` (a constant at each call, like `two_by_two`) the argmax indices beside them.
fn octet_forward(index: u32, with_indices: bool, two_by_two: bool) {
    let place = octet_place(index);
    let m = octet_max(place, two_by_two);
    let out = octet_output(place);
    dst4[out.first] = quad_values(m.lo);
    if (out.has_hi) {
        dst4[out.first + 1u] = quad_values(m.hi);
    }
    if (with_indices) {
        dst_indices4[out.first] = quad_indices(m.lo);
        if (out.has_hi) {
            dst_indices4[out.first + 1u] = quad_indices(m.hi);
        }
    }
}

// Inference forward, octets: src4 = input, dst4 = output, both dense NCHW, as vec4s; one
// invocation per octet, writing one or two output vec4s.
@compute @workgroup_size(64)
fn max_pool2d_forward_octets(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index < u.invocations) {
        octet_forward(index, false, false);
    }
}

// Training forward, octets: as above, plus dst_indices4 = argmax indices.
@compute @workgroup_size(64)
fn max_pool2d_forward_octets_with_indices(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index < u.invocations) {
        octet_forward(index, true, false);
    }
}

const SCAN_WORKGROUP_SIZE: u32 = 8u;

// Backward, scan form: src = grad_output, src_indices = indices, dst = grad_input, any layout.
// One invocation per (n, c) plane (8-wide workgroups, lavapipe's SIMD width) zeroes its plane
// of grad_input, then walks its windows in (oh, ow) order and adds each gradient at the
// window's index: a scatter, but one that no other invocation touches, so no atomics, and
// each element's sum runs in the CPU reference's order. The host uses it only when every
// window has a tap inside the input (a window without one routes nowhere) and never for
// TensorFlow indices in NCHW. An invocation's work is a plane, so this needs many planes to
// fill the lanes; the host picks it for CPU adapters when there are.
@compute @workgroup_size(8)
fn max_pool2d_backward_scan(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let plane = ((wg.z * groups.y + wg.y) * groups.x + wg.x) * SCAN_WORKGROUP_SIZE + local;
    if (plane >= u.invocations) {
        return;
    }
    let c = plane % u.channels;
    let n = plane / u.channels;
    let in_plane = n * u.in_stride_n + c * u.in_stride_c;
    for (var ih = 0u; ih < u.in_h; ih++) {
        let row = in_plane + ih * u.in_stride_h;
        for (var iw = 0u; iw < u.in_w; iw++) {
            dst[row + iw * u.in_stride_w] = 0.0;
        }
    }
    let out_plane = n * u.out_stride_n + c * u.out_stride_c;
    // TensorFlow's index (h * W + w) * C + c is already the NHWC offset within the sample.
    let tf = u.index_style == 1u;
    let base = select(in_plane, n * u.in_stride_n, tf);
    let scale = select(u.in_stride_w, 1u, tf);
    for (var oh = 0u; oh < u.out_h; oh++) {
        let out_row = out_plane + oh * u.out_stride_h;
        for (var ow = 0u; ow < u.out_w; ow++) {
            let o = out_row + ow * u.out_stride_w;
            // Both layouts are dense, so row h starts W columns after row h - 1.
            let at = base + (src_indices[o] - u.index_base) * scale;
            dst[at] += src[o];
        }
    }
}

// The octet forwards for windows at most 2 rows high and exactly 2 columns wide, with no left
// padding (VGG's and U-Net's 2x2 s2): two rows of four loads each, where the general octets
// load three rows of six.
@compute @workgroup_size(64)
fn max_pool2d_forward_octets_2x2(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index < u.invocations) {
        octet_forward(index, false, true);
    }
}

@compute @workgroup_size(64)
fn max_pool2d_forward_octets_2x2_with_indices(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index < u.invocations) {
        octet_forward(index, true, true);
    }
}
