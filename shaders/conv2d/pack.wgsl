// Repacking for the vec4 implicit-GEMM kernels of packed.wgsl: each kernel gathers a
// strided f32 tensor (any layout, flips included, through the strides in the uniforms) into a
// zero-padded array of vec4 whose four components run along the GEMM's reduction axis. The
// GEMM's inner loop then needs no bounds checks and gets four reduction terms per load, which
// is what pays on lavapipe, where every load inside a loop runs lane by lane.
//
// Into a storage buffer (the *_vec4 entry points, which the tiled kernels read on real GPUs),
// one invocation writes one vec4, consecutive invocations consecutive vec4s. Into a texture
// (the *_texture ones, for the packed kernels: lavapipe fetches texels faster than it loads
// from buffers), one invocation writes a run of PACK_RUN consecutive vec4s: it divides its
// first index into coordinates once and steps them after, because lavapipe runs a vector
// division as one scalar division per lane, and five of them per vec4 cost more than its
// loads. Signed quantities travel as i32 bits in u32 fields.

@group(0) @binding(0) var<uniform> u: GemmConvUniforms;
@group(0) @binding(1) var<storage, read> src: array<f32>;
// The same slot as a texture holding the source in its own order, a vec4 per texel (copied
// there, not packed), for pack_source_quads_texture.
@group(0) @binding(1) var src_texture: texture_storage_2d<rgba32float, read>;
// The same slot read a vec4 at a time, for the 3x3 weight packers.
@group(0) @binding(1) var<storage, read> src_vec4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
// The same slot as a texture, for the *_texture entry points (each entry point binds one).
@group(0) @binding(2) var dst_texture: texture_storage_2d<rgba32float, write>;

fn store_texel(i: u32, v: vec4<f32>) {
    textureStore(dst_texture, texel_of(i), v);
}

// Digit v of a mixed-radix counter whose digit runs to `extent`, after a carry in of 0 or 1:
// the new digit and the carry out. The texture packers step their coordinates with it.
fn tick(v: u32, extent: u32, carry: u32) -> vec2<u32> {
    let next = v + carry;
    let wrap = next == extent;
    return vec2<u32>(select(next, 0u, wrap), u32(wrap));
}

// Activations, channel-innermost and zero-padded:
// dst[(((g * batch + n) * packed_h + y) * packed_w + x) * reduce4 + r4] holds channels
// 4 * r4 .. 4 * r4 + 3 of group g at source pixel (y + pack_off_h, x + pack_off_w); pixels
// outside the source and channels past reduce_per_group are zero.
struct SourceAt {
    r4: u32,
    x: u32,
    y: u32,
    n: u32,
    g: u32,
}

fn source_at(i: u32) -> SourceAt {
    var rest = i / u.reduce4;
    let x = rest % u.packed_w;
    rest = rest / u.packed_w;
    let y = rest % u.packed_h;
    rest = rest / u.packed_h;
    return SourceAt(i % u.reduce4, x, y, rest % u.batch, rest / u.batch);
}

// The coordinates of the next vec4: r4 fastest, carrying into x, y, n and g.
fn next_source(a: SourceAt) -> SourceAt {
    let r4 = tick(a.r4, u.reduce4, 1u);
    let x = tick(a.x, u.packed_w, r4.y);
    let y = tick(a.y, u.packed_h, x.y);
    let n = tick(a.n, u.batch, y.y);
    return SourceAt(r4.x, x.x, y.x, n.x, a.g + n.y);
}

fn source_vec4s() -> u32 {
    return u.groups * u.batch * u.packed_h * u.packed_w * u.reduce4;
}

fn packed_source(a: SourceAt) -> vec4<f32> {
    let r4 = a.r4;
    let n = a.n;
    let g = a.g;
    let sy = i32(a.y) + bitcast<i32>(u.pack_off_h);
    let sx = i32(a.x) + bitcast<i32>(u.pack_off_w);
    // Four unconditional loads from clamped addresses, then selects: lavapipe runs each load
    // lane by lane, and loads under a branch or in a loop pay for the mask handling too.
    let inside = sy >= 0 && sy < i32(u.src_h) && sx >= 0 && sx < i32(u.src_w);
    let pixel = n * u.src_stride_n + u32(clamp(sy, 0, i32(u.src_h) - 1)) * u.src_stride_h + u32(clamp(sx, 0, i32(u.src_w) - 1)) * u.src_stride_w;
    let r0 = 4u * r4;
    let last = u.reduce_per_group - 1u;
    let channel = g * u.reduce_per_group;
    let v = vec4<f32>(
        src[pixel + (channel + min(r0, last)) * u.src_stride_c],
        src[pixel + (channel + min(r0 + 1u, last)) * u.src_stride_c],
        src[pixel + (channel + min(r0 + 2u, last)) * u.src_stride_c],
        src[pixel + (channel + min(r0 + 3u, last)) * u.src_stride_c],
    );
    let live = vec4<bool>(inside) & (vec4<u32>(r0) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(u.reduce_per_group));
    return select(vec4<f32>(0.0), v, live);
}

// Weights as the GEMM's A operand, reduction-major:
// dst[packed_w_base + ((g * taps + t) * reduce4 + r4) * m_pad + m] holds the weights of
// channel m at tap t = ty * taps_w + tx for reduction channels 4 * r4 .. 4 * r4 + 3, read
// through the weight view (w_base and the w_* strides, flips and stride phases included);
// channels past channels_per_group and reduction channels past reduce_per_group are zero.
struct WeightAt {
    m: u32,
    r4: u32,
    tx: u32,
    ty: u32,
    g: u32,
}

fn weight_at(i: u32) -> WeightAt {
    var rest = i / u.m_pad;
    let r4 = rest % u.reduce4;
    rest = rest / u.reduce4;
    let tx = rest % u.taps_w;
    rest = rest / u.taps_w;
    return WeightAt(i % u.m_pad, r4, tx, rest % u.taps_h, rest / u.taps_h);
}

// The coordinates of the next vec4: m fastest, carrying into r4, the tap and g.
fn next_weight(a: WeightAt) -> WeightAt {
    let m = tick(a.m, u.m_pad, 1u);
    let r4 = tick(a.r4, u.reduce4, m.y);
    let tx = tick(a.tx, u.taps_w, r4.y);
    let ty = tick(a.ty, u.taps_h, tx.y);
    return WeightAt(m.x, r4.x, tx.x, ty.x, a.g + ty.y);
}

fn weight_vec4s() -> u32 {
    return u.groups * u.taps_h * u.taps_w * u.reduce4 * u.m_pad;
}

// Four loads from clamped addresses, then selects (as in packed_source).
fn packed_weight(a: WeightAt) -> vec4<f32> {
    let m = min(a.m, u.channels_per_group - 1u);
    let at = u.w_base + a.g * u.w_stride_g + m * u.w_stride_m + a.ty * u.w_tap_h + a.tx * u.w_tap_w;
    let r = vec4<u32>(4u * a.r4) + vec4<u32>(0u, 1u, 2u, 3u);
    let last = u.reduce_per_group - 1u;
    let v = vec4<f32>(
        src[at + min(r.x, last) * u.w_stride_r],
        src[at + min(r.y, last) * u.w_stride_r],
        src[at + min(r.z, last) * u.w_stride_r],
        src[at + min(r.w, last) * u.w_stride_r],
    );
    let live = vec4<bool>(a.m < u.channels_per_group) & (r < vec4<u32>(u.reduce_per_group));
    return select(vec4<f32>(0.0), v, live);
}

// Rows of a GEMM whose reduction runs over output pixels (the weight gradient), pixel-major:
// dst[(((g * reduce_per_group * taps + row) * batch + n) * grid_h + oy) * ow4 + ox4] holds, for
// row = r * taps + t, the source value that output pixels (n, oy, 4 * ox4 .. 4 * ox4 + 3) meet
// at tap t of channel r: source pixel (oy * src_step + src_off + ty * tap_step, same in x).
// With one tap and unit steps it copies grad_output; with the forward's taps it is im2col.
// Output columns past grid_w and pixels outside the source are zero.
struct RowAt {
    ox4: u32,
    oy: u32,
    n: u32,
    tx: u32,
    ty: u32,
    // Source row r of group g, as g * reduce_per_group + r.
    gr: u32,
}

fn row_at(i: u32) -> RowAt {
    var rest = i / u.ow4;
    let oy = rest % u.grid_h;
    rest = rest / u.grid_h;
    let n = rest % u.batch;
    rest = rest / u.batch;
    let tx = rest % u.taps_w;
    rest = rest / u.taps_w;
    return RowAt(i % u.ow4, oy, n, tx, rest % u.taps_h, rest / u.taps_h);
}

// The coordinates of the next vec4: ox4 fastest, carrying into oy, n, the tap and the row.
fn next_row(a: RowAt) -> RowAt {
    let ox4 = tick(a.ox4, u.ow4, 1u);
    let oy = tick(a.oy, u.grid_h, ox4.y);
    let n = tick(a.n, u.batch, oy.y);
    let tx = tick(a.tx, u.taps_w, n.y);
    let ty = tick(a.ty, u.taps_h, tx.y);
    return RowAt(ox4.x, oy.x, n.x, tx.x, ty.x, a.gr + ty.y);
}

fn row_vec4s() -> u32 {
    return u.groups * u.reduce_per_group * u.taps_h * u.taps_w * u.batch * u.grid_h * u.ow4;
}

fn packed_row(a: RowAt) -> vec4<f32> {
    let n = a.n;
    let sy = i32(a.oy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h) + i32(a.ty) * bitcast<i32>(u.tap_step_h);
    let row = n * u.src_stride_n + a.gr * u.src_stride_c + u32(clamp(sy, 0, i32(u.src_h) - 1)) * u.src_stride_h;
    let ox = vec4<i32>(4 * i32(a.ox4)) + vec4<i32>(0, 1, 2, 3);
    let sx = ox * bitcast<i32>(u.src_step_w) + vec4<i32>(bitcast<i32>(u.src_off_w) + i32(a.tx) * bitcast<i32>(u.tap_step_w));
    // Unconditional loads from clamped addresses, then selects (see pack_source_vec4).
    let at = vec4<u32>(clamp(sx, vec4<i32>(0), vec4<i32>(i32(u.src_w) - 1))) * u.src_stride_w + vec4<u32>(row);
    let v = vec4<f32>(src[at.x], src[at.y], src[at.z], src[at.w]);
    let live = vec4<bool>(sy >= 0 && sy < i32(u.src_h)) & (ox < vec4<i32>(i32(u.grid_w))) & (sx >= vec4<i32>(0)) & (sx < vec4<i32>(i32(u.src_w)));
    return select(vec4<f32>(0.0), v, live);
}

// Vec4s per invocation of the *_texture entry points (`PACK_RUN` on the host).
const PACK_RUN: u32 = 16u;

// The first vec4 of invocation `i`'s run and how many it packs, of `total`.
fn run_of(i: u32, total: u32) -> vec2<u32> {
    let first = i * PACK_RUN;
    return vec2<u32>(first, min(PACK_RUN, total - first));
}

// The entry points: one vec4 per invocation into a buffer, a run of them into a texture.
@compute @workgroup_size(64)
fn pack_source_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        dst[i] = packed_source(source_at(i));
    }
}

@compute @workgroup_size(64)
fn pack_source_texture(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        let run = run_of(i, source_vec4s());
        var at = source_at(run.x);
        for (var s = 0u; s < run.y; s++) {
            store_texel(run.x + s, packed_source(at));
            at = next_source(at);
        }
    }
}

// Four neighbouring source values of channel r of group g along a row starting at element
// `row`, as pack_source_quads_texture reads them: texels `lo` and `hi` of the channel's rows
// (neighbours, or clamped where the four run off the row), from component `shift` of `lo` on;
// zero where `live` is false or past the last channel.
fn channel_quad(row: u32, g: u32, r: u32, lo: u32, hi: u32, shift: u32, live: vec4<bool>) -> vec4<f32> {
    let channel = g * u.reduce_per_group + min(r, u.reduce_per_group - 1u);
    let base = (row + channel * u.src_stride_c) / 4u;
    let l = textureLoad(src_texture, texel_of(base + lo));
    let h = textureLoad(src_texture, texel_of(base + hi));
    var v = select(l, vec4<f32>(l.yzw, h.x), shift == 1u);
    v = select(v, vec4<f32>(l.zw, h.xy), shift == 2u);
    v = select(v, vec4<f32>(l.w, h.xyz), shift == 3u);
    return select(vec4<f32>(0.0), v, live & vec4<bool>(r < u.reduce_per_group));
}

// packed_source for a source whose rows are whole vec4s (NCHW: unit steps along x, every
// other stride a multiple of 4), copied into src_texture as it lies. One invocation packs the
// four neighbouring pixels 4q .. 4q + 3 of one packed row (g, n, y) for every channel vec4:
// per channel two texel fetches (the four source values straddle two texels unless
// pack_off_w is a multiple of 4), and the 4x4 block of channels by pixels transposes in
// registers into four packed vec4s. lavapipe fetches a texel with vector address math, where
// pack_source_texture's four buffer loads per packed vec4 each run lane by lane.
@compute @workgroup_size(64)
fn pack_source_quads_texture(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i >= u.invocations) {
        return;
    }
    let quads = (u.packed_w + 3u) / 4u;
    let q = i % quads;
    var rest = i / quads;
    let y = rest % u.packed_h;
    rest = rest / u.packed_h;
    let n = rest % u.batch;
    let g = rest / u.batch;
    let sy = i32(y) + bitcast<i32>(u.pack_off_h);
    let sx0 = 4 * i32(q) + bitcast<i32>(u.pack_off_w);
    // The same for every invocation: where the four start inside their first texel.
    let shift = u32(sx0 & 3);
    let first = (sx0 - i32(shift)) / 4;
    let last = i32(u.src_w / 4u) - 1;
    let lo = u32(clamp(first, 0, last));
    let hi = u32(clamp(first + 1, 0, last));
    let sx = vec4<i32>(sx0) + vec4<i32>(0, 1, 2, 3);
    let live = vec4<bool>(sy >= 0 && sy < i32(u.src_h)) & (sx >= vec4<i32>(0)) & (sx < vec4<i32>(i32(u.src_w)));
    let row = n * u.src_stride_n + u32(clamp(sy, 0, i32(u.src_h) - 1)) * u.src_stride_h;
    let x = 4u * q;
    let at = (((g * u.batch + n) * u.packed_h + y) * u.packed_w + x) * u.reduce4;
    for (var r4 = 0u; r4 < u.reduce4; r4++) {
        let r = 4u * r4;
        let a = channel_quad(row, g, r, lo, hi, shift, live);
        let b = channel_quad(row, g, r + 1u, lo, hi, shift, live);
        let c = channel_quad(row, g, r + 2u, lo, hi, shift, live);
        let d = channel_quad(row, g, r + 3u, lo, hi, shift, live);
        store_texel(at + r4, vec4<f32>(a.x, b.x, c.x, d.x));
        if (x + 1u < u.packed_w) {
            store_texel(at + u.reduce4 + r4, vec4<f32>(a.y, b.y, c.y, d.y));
        }
        if (x + 2u < u.packed_w) {
            store_texel(at + 2u * u.reduce4 + r4, vec4<f32>(a.z, b.z, c.z, d.z));
        }
        if (x + 3u < u.packed_w) {
            store_texel(at + 3u * u.reduce4 + r4, vec4<f32>(a.w, b.w, c.w, d.w));
        }
    }
}

@compute @workgroup_size(64)
fn pack_weight_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        dst[u.packed_w_base + i] = packed_weight(weight_at(i));
    }
}

@compute @workgroup_size(64)
fn pack_weight_texture(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        let run = run_of(i, weight_vec4s());
        var at = weight_at(run.x);
        for (var s = 0u; s < run.y; s++) {
            store_texel(u.packed_w_base + run.x + s, packed_weight(at));
            at = next_weight(at);
        }
    }
}

// Where the 3x3 packers' weight view starts in memory: at tap 0, which a reversed view
// (w_tap_w wrapped to -1) reaches 8 steps back from its first tap.
fn origin_3x3() -> u32 {
    return select(u.w_base, u.w_base - 8u, u.w_tap_w != 1u);
}

// The packed index of memory tap 0 of a 3x3 block whose packed tap 0 is at `first`, and the
// step from one memory tap to the next (one packed tap = reduce4 * m_pad vec4s, backwards for a
// reversed view; u32 arithmetic wraps).
fn taps_3x3(first: u32) -> vec2<u32> {
    let tap = u.reduce4 * u.m_pad;
    if (u.w_tap_w != 1u) {
        return vec2<u32>(first + 8u * tap, 0u - tap);
    }
    return vec2<u32>(first, tap);
}

// pack_weight_texture for 3x3 weights that lie as OIHW does (the forward's view: reduction
// channels are input channels), their taps in order or reversed (a flipped window), with
// reduction channels in whole vec4s on vec4 boundaries: the 36 floats of four reduction
// channels' nine taps are consecutive, so one invocation per (g, r4, m) loads them as nine
// vec4s and writes the nine texels, a load per texel where pack_weight_texture makes four
// (each one lane by lane on lavapipe).
@compute @workgroup_size(64)
fn pack_weight_3x3_texture(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        let m = i % u.m_pad;
        let rest = i / u.m_pad;
        let r4 = rest % u.reduce4;
        let g = rest / u.reduce4;
        let live = m < u.channels_per_group;
        let at = (origin_3x3() + g * u.w_stride_g + min(m, u.channels_per_group - 1u) * u.w_stride_m) / 4u + 9u * r4;
        // Float k of the 36 is channel 4 r4 + k / 9 at tap k % 9.
        let f0 = src_vec4[at];
        let f1 = src_vec4[at + 1u];
        let f2 = src_vec4[at + 2u];
        let f3 = src_vec4[at + 3u];
        let f4 = src_vec4[at + 4u];
        let f5 = src_vec4[at + 5u];
        let f6 = src_vec4[at + 6u];
        let f7 = src_vec4[at + 7u];
        let f8 = src_vec4[at + 8u];
        let zero = vec4<f32>(0.0);
        let taps = taps_3x3(u.packed_w_base + (g * 9u * u.reduce4 + r4) * u.m_pad + m);
        store_texel(taps.x, select(zero, vec4<f32>(f0.x, f2.y, f4.z, f6.w), live));
        store_texel(taps.x + taps.y, select(zero, vec4<f32>(f0.y, f2.z, f4.w, f7.x), live));
        store_texel(taps.x + 2u * taps.y, select(zero, vec4<f32>(f0.z, f2.w, f5.x, f7.y), live));
        store_texel(taps.x + 3u * taps.y, select(zero, vec4<f32>(f0.w, f3.x, f5.y, f7.z), live));
        store_texel(taps.x + 4u * taps.y, select(zero, vec4<f32>(f1.x, f3.y, f5.z, f7.w), live));
        store_texel(taps.x + 5u * taps.y, select(zero, vec4<f32>(f1.y, f3.z, f5.w, f8.x), live));
        store_texel(taps.x + 6u * taps.y, select(zero, vec4<f32>(f1.z, f3.w, f6.x, f8.y), live));
        store_texel(taps.x + 7u * taps.y, select(zero, vec4<f32>(f1.w, f4.x, f6.y, f8.z), live));
        store_texel(taps.x + 8u * taps.y, select(zero, vec4<f32>(f2.x, f4.y, f6.z, f8.w), live));
    }
}

// The same for the input gradient's view of OIHW weights, whose channels m are the input
// channels and reduction channels r the output channels: four channels' nine taps are 36
// consecutive floats for each r, so one invocation per (g, r4, m4) loads nine vec4s for each
// of its four r and writes the 36 texels of its four m (36 loads where pack_weight_texture
// makes 144). Needs channels per group in whole vec4s too: an m4 is all live or all padding.
@compute @workgroup_size(64)
fn pack_weight_3x3_transposed_texture(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        let m4s = u.m_pad / 4u;
        let m4 = i % m4s;
        let rest = i / m4s;
        let r4 = rest % u.reduce4;
        let g = rest / u.reduce4;
        let live = 4u * m4 < u.channels_per_group;
        let m4_read = select(0u, m4, live);
        let at = (origin_3x3() + g * u.w_stride_g + 4u * r4 * u.w_stride_r) / 4u + 9u * m4_read;
        let r_step = u.w_stride_r / 4u;
        // a{j}_{n}: vec4 n of reduction channel 4 r4 + j, whose float k is channel 4 m4 + k / 9
        // at tap k % 9.
        let a0_0 = src_vec4[at];
        let a0_1 = src_vec4[at + 1u];
        let a0_2 = src_vec4[at + 2u];
        let a0_3 = src_vec4[at + 3u];
        let a0_4 = src_vec4[at + 4u];
        let a0_5 = src_vec4[at + 5u];
        let a0_6 = src_vec4[at + 6u];
        let a0_7 = src_vec4[at + 7u];
        let a0_8 = src_vec4[at + 8u];
        let a1_0 = src_vec4[at + r_step];
        let a1_1 = src_vec4[at + r_step + 1u];
        let a1_2 = src_vec4[at + r_step + 2u];
        let a1_3 = src_vec4[at + r_step + 3u];
        let a1_4 = src_vec4[at + r_step + 4u];
        let a1_5 = src_vec4[at + r_step + 5u];
        let a1_6 = src_vec4[at + r_step + 6u];
        let a1_7 = src_vec4[at + r_step + 7u];
        let a1_8 = src_vec4[at + r_step + 8u];
        let a2_0 = src_vec4[at + 2u * r_step];
        let a2_1 = src_vec4[at + 2u * r_step + 1u];
        let a2_2 = src_vec4[at + 2u * r_step + 2u];
        let a2_3 = src_vec4[at + 2u * r_step + 3u];
        let a2_4 = src_vec4[at + 2u * r_step + 4u];
        let a2_5 = src_vec4[at + 2u * r_step + 5u];
        let a2_6 = src_vec4[at + 2u * r_step + 6u];
        let a2_7 = src_vec4[at + 2u * r_step + 7u];
        let a2_8 = src_vec4[at + 2u * r_step + 8u];
        let a3_0 = src_vec4[at + 3u * r_step];
        let a3_1 = src_vec4[at + 3u * r_step + 1u];
        let a3_2 = src_vec4[at + 3u * r_step + 2u];
        let a3_3 = src_vec4[at + 3u * r_step + 3u];
        let a3_4 = src_vec4[at + 3u * r_step + 4u];
        let a3_5 = src_vec4[at + 3u * r_step + 5u];
        let a3_6 = src_vec4[at + 3u * r_step + 6u];
        let a3_7 = src_vec4[at + 3u * r_step + 7u];
        let a3_8 = src_vec4[at + 3u * r_step + 8u];
        let zero = vec4<f32>(0.0);
        // Channel 4 m4 + c's texels lie c past channel 4 m4's, reversed or not.
        let taps = taps_3x3(u.packed_w_base + (g * 9u * u.reduce4 + r4) * u.m_pad + 4u * m4);
        store_texel(taps.x, select(zero, vec4<f32>(a0_0.x, a1_0.x, a2_0.x, a3_0.x), live));
        store_texel(taps.x + taps.y, select(zero, vec4<f32>(a0_0.y, a1_0.y, a2_0.y, a3_0.y), live));
        store_texel(taps.x + 2u * taps.y, select(zero, vec4<f32>(a0_0.z, a1_0.z, a2_0.z, a3_0.z), live));
        store_texel(taps.x + 3u * taps.y, select(zero, vec4<f32>(a0_0.w, a1_0.w, a2_0.w, a3_0.w), live));
        store_texel(taps.x + 4u * taps.y, select(zero, vec4<f32>(a0_1.x, a1_1.x, a2_1.x, a3_1.x), live));
        store_texel(taps.x + 5u * taps.y, select(zero, vec4<f32>(a0_1.y, a1_1.y, a2_1.y, a3_1.y), live));
        store_texel(taps.x + 6u * taps.y, select(zero, vec4<f32>(a0_1.z, a1_1.z, a2_1.z, a3_1.z), live));
        store_texel(taps.x + 7u * taps.y, select(zero, vec4<f32>(a0_1.w, a1_1.w, a2_1.w, a3_1.w), live));
        store_texel(taps.x + 8u * taps.y, select(zero, vec4<f32>(a0_2.x, a1_2.x, a2_2.x, a3_2.x), live));
        store_texel(taps.x + 1u, select(zero, vec4<f32>(a0_2.y, a1_2.y, a2_2.y, a3_2.y), live));
        store_texel(taps.x + 1u + taps.y, select(zero, vec4<f32>(a0_2.z, a1_2.z, a2_2.z, a3_2.z), live));
        store_texel(taps.x + 1u + 2u * taps.y, select(zero, vec4<f32>(a0_2.w, a1_2.w, a2_2.w, a3_2.w), live));
        store_texel(taps.x + 1u + 3u * taps.y, select(zero, vec4<f32>(a0_3.x, a1_3.x, a2_3.x, a3_3.x), live));
        store_texel(taps.x + 1u + 4u * taps.y, select(zero, vec4<f32>(a0_3.y, a1_3.y, a2_3.y, a3_3.y), live));
        store_texel(taps.x + 1u + 5u * taps.y, select(zero, vec4<f32>(a0_3.z, a1_3.z, a2_3.z, a3_3.z), live));
        store_texel(taps.x + 1u + 6u * taps.y, select(zero, vec4<f32>(a0_3.w, a1_3.w, a2_3.w, a3_3.w), live));
        store_texel(taps.x + 1u + 7u * taps.y, select(zero, vec4<f32>(a0_4.x, a1_4.x, a2_4.x, a3_4.x), live));
        store_texel(taps.x + 1u + 8u * taps.y, select(zero, vec4<f32>(a0_4.y, a1_4.y, a2_4.y, a3_4.y), live));
        store_texel(taps.x + 2u, select(zero, vec4<f32>(a0_4.z, a1_4.z, a2_4.z, a3_4.z), live));
        store_texel(taps.x + 2u + taps.y, select(zero, vec4<f32>(a0_4.w, a1_4.w, a2_4.w, a3_4.w), live));
        store_texel(taps.x + 2u + 2u * taps.y, select(zero, vec4<f32>(a0_5.x, a1_5.x, a2_5.x, a3_5.x), live));
        store_texel(taps.x + 2u + 3u * taps.y, select(zero, vec4<f32>(a0_5.y, a1_5.y, a2_5.y, a3_5.y), live));
        store_texel(taps.x + 2u + 4u * taps.y, select(zero, vec4<f32>(a0_5.z, a1_5.z, a2_5.z, a3_5.z), live));
        store_texel(taps.x + 2u + 5u * taps.y, select(zero, vec4<f32>(a0_5.w, a1_5.w, a2_5.w, a3_5.w), live));
        store_texel(taps.x + 2u + 6u * taps.y, select(zero, vec4<f32>(a0_6.x, a1_6.x, a2_6.x, a3_6.x), live));
        store_texel(taps.x + 2u + 7u * taps.y, select(zero, vec4<f32>(a0_6.y, a1_6.y, a2_6.y, a3_6.y), live));
        store_texel(taps.x + 2u + 8u * taps.y, select(zero, vec4<f32>(a0_6.z, a1_6.z, a2_6.z, a3_6.z), live));
        store_texel(taps.x + 3u, select(zero, vec4<f32>(a0_6.w, a1_6.w, a2_6.w, a3_6.w), live));
        store_texel(taps.x + 3u + taps.y, select(zero, vec4<f32>(a0_7.x, a1_7.x, a2_7.x, a3_7.x), live));
        store_texel(taps.x + 3u + 2u * taps.y, select(zero, vec4<f32>(a0_7.y, a1_7.y, a2_7.y, a3_7.y), live));
        store_texel(taps.x + 3u + 3u * taps.y, select(zero, vec4<f32>(a0_7.z, a1_7.z, a2_7.z, a3_7.z), live));
        store_texel(taps.x + 3u + 4u * taps.y, select(zero, vec4<f32>(a0_7.w, a1_7.w, a2_7.w, a3_7.w), live));
        store_texel(taps.x + 3u + 5u * taps.y, select(zero, vec4<f32>(a0_8.x, a1_8.x, a2_8.x, a3_8.x), live));
        store_texel(taps.x + 3u + 6u * taps.y, select(zero, vec4<f32>(a0_8.y, a1_8.y, a2_8.y, a3_8.y), live));
        store_texel(taps.x + 3u + 7u * taps.y, select(zero, vec4<f32>(a0_8.z, a1_8.z, a2_8.z, a3_8.z), live));
        store_texel(taps.x + 3u + 8u * taps.y, select(zero, vec4<f32>(a0_8.w, a1_8.w, a2_8.w, a3_8.w), live));
    }
}

@compute @workgroup_size(64)
fn pack_rows_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        dst[i] = packed_row(row_at(i));
    }
}

@compute @workgroup_size(64)
fn pack_rows_texture(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        let run = run_of(i, row_vec4s());
        var at = row_at(run.x);
        for (var s = 0u; s < run.y; s++) {
            store_texel(run.x + s, packed_row(at));
            at = next_row(at);
        }
    }
}

// Zeros over the first `invocations` vec4s of dst, one vec4 per invocation: the input gradient
// of a window smaller than its stride, ahead of the GEMMs of the stride phases that have taps,
// so that those without write no empty tiles (packed/gather.rs); a vec4 store costs lavapipe one lane
// iteration where the GEMM's tiles spend four.
@compute @workgroup_size(64)
fn fill_zero_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        dst[i] = vec4<f32>(0.0);
    }
}
