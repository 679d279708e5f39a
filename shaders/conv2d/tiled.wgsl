// Implicit-GEMM conv2d for real GPUs, as outer products: the gather convolution of packed.wgsl
// (forward, or the input gradient for one stride phase) and the weight gradient's split-K pass,
// on the same repacked vec4 operands, with no subgroup operations.
//
// A workgroup of 64 invocations owns a tile of M channels (2^tile_shift: 8, 16, 32 or 64, the
// smallest that holds a group's channels) by 2048 / M columns (destination pixels; dw: weight
// columns). Invocation t is channel invocation tm = t % (M / 8) and column invocation tp; it
// accumulates columns tp + i * (256 / M), i < 4, by the channel vec4s tm and tm + M / 8: eight
// vec4 accumulators along channels, so each reduction term is one broadcast input scalar per
// column times two channel vec4s, 8 fma per 2 vec4s read from workgroup memory.
//
// The channel operand (weights; dw: grad_output rows) runs through workgroup memory in K tiles
// of 8 reduction vec4s (32 terms), double-buffered: the next tile is loaded into registers
// before the current one is used, stored into the other buffer after, and one barrier per tile
// separates them. The column operand (packed input) is read straight from device memory, one
// vec4 of four terms per column per step, at offsets advanced incrementally (no division in the
// K loop); the invocations of a column share its loads through the cache.
//
// Terms in the zero padding are multiplied like any other: with finite operands they add zero.
// Where an accumulator comes out non-finite, that invocation recomputes its outputs with the
// padding masked (a term that meets the padding adds nothing, so an infinite weight there does
// not make NaN, as in the CPU reference); finite data never takes that path.
//
// Signed quantities travel as i32 bits in u32 fields.

@group(0) @binding(0) var<uniform> u: GemmConvUniforms;
@group(0) @binding(1) var<storage, read> packed_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> packed_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// Reduction vec4s per K tile, and vec4s per buffer: 32 terms by up to 16 channel vec4s.
const TILE_QUADS: u32 = 8u;
const BUFFER: u32 = 512u;
// Two K-tile buffers of the channel operand, [term][channel vec4] each; after the K loop, the
// output tile (see output_word) on its way to coalesced stores.
var<workgroup> tiles: array<vec4<f32>, 1024>;

// How invocation t sits in a tile of 2^tile_shift channels.
struct Lanes {
    // Channels and channel vec4s per tile, columns per tile.
    m: u32,
    m4: u32,
    columns: u32,
    // Channel invocations (M / 8) and column invocations (columns / 4).
    channel_lanes: u32,
    column_lanes: u32,
    tm: u32,
    tp: u32,
    // What t stages: channel staged_m of each tile, quads staged_q + j * quad_stride for
    // j < M / 8.
    staged_m: u32,
    staged_q: u32,
    quad_stride: u32,
    // Words per column of the output tile (see output_word).
    row_words: u32,
}

fn lanes(t: u32, channels_contiguous: bool) -> Lanes {
    let m = 1u << u.tile_shift;
    let channel_lanes = m >> 3u;
    let column_shift = u.tile_shift - 3u;
    return Lanes(
        m,
        m >> 2u,
        2048u >> u.tile_shift,
        channel_lanes,
        64u >> column_shift,
        t & (channel_lanes - 1u),
        t >> column_shift,
        t & (m - 1u),
        t >> u.tile_shift,
        64u >> u.tile_shift,
        m + select(1u, 0u, channels_contiguous),
    );
}

// Stores staged vec4 j (four terms of channel staged_m) into buffer `buffer` as four rows of
// the [term][channel] tile. Invocation t writes component (c + q) % 4 on its c-th store, so the
// lanes of one store fall in distinct banks whatever the tile width.
fn put(l: Lanes, buffer: u32, j: u32, v: vec4<f32>) {
    if (j < l.channel_lanes) {
        let q = l.staged_q + j * l.quad_stride;
        let column = buffer + (l.staged_m >> 2u);
        for (var c = 0u; c < 4u; c++) {
            let term = (c + q) & 3u;
            tiles[column + (4u * q + term) * l.m4][l.staged_m & 3u] = v[term];
        }
    }
}

// acc[2 i + h] += a[i] * the channel vec4s w0 (h = 0) and w1 (h = 1): one reduction term of
// the outer product, a broadcast scalar per column.
fn outer(acc: ptr<function, array<vec4<f32>, 8>>, a: vec4<f32>, w0: vec4<f32>, w1: vec4<f32>) {
    (*acc)[0] = fma(vec4<f32>(a.x), w0, (*acc)[0]);
    (*acc)[1] = fma(vec4<f32>(a.x), w1, (*acc)[1]);
    (*acc)[2] = fma(vec4<f32>(a.y), w0, (*acc)[2]);
    (*acc)[3] = fma(vec4<f32>(a.y), w1, (*acc)[3]);
    (*acc)[4] = fma(vec4<f32>(a.z), w0, (*acc)[4]);
    (*acc)[5] = fma(vec4<f32>(a.z), w1, (*acc)[5]);
    (*acc)[6] = fma(vec4<f32>(a.w), w0, (*acc)[6]);
    (*acc)[7] = fma(vec4<f32>(a.w), w1, (*acc)[7]);
}

// Four reduction terms from buffer rows `row` on: a0..a3 are the four columns' vec4s along K.
fn outer4(acc: ptr<function, array<vec4<f32>, 8>>, l: Lanes, row: u32, a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>) {
    let r0 = row + l.tm;
    let r1 = r0 + l.channel_lanes;
    outer(acc, vec4<f32>(a0.x, a1.x, a2.x, a3.x), tiles[r0], tiles[r1]);
    outer(acc, vec4<f32>(a0.y, a1.y, a2.y, a3.y), tiles[r0 + l.m4], tiles[r1 + l.m4]);
    outer(acc, vec4<f32>(a0.z, a1.z, a2.z, a3.z), tiles[r0 + 2u * l.m4], tiles[r1 + 2u * l.m4]);
    outer(acc, vec4<f32>(a0.w, a1.w, a2.w, a3.w), tiles[r0 + 3u * l.m4], tiles[r1 + 3u * l.m4]);
}

// The output tile, after the K loop, word by word: [column][channel], read channels-fastest
// for a channel-contiguous destination (rows of M words) and columns-fastest otherwise (rows
// of M + 1, an odd stride), either way free of bank conflicts.
fn output_word(l: Lanes, column: u32, m: u32) -> u32 {
    return column * l.row_words + m;
}

fn store_word(w: u32, v: f32) {
    tiles[w >> 2u][w & 3u] = v;
}

fn load_word(w: u32) -> f32 {
    return tiles[w >> 2u][w & 3u];
}

// Column i's two channel vec4s into the output tile. With rows of M words, column invocations
// start at different components (rotate), so that the lanes of one store spread over banks.
fn put_column(l: Lanes, i: u32, v0: vec4<f32>, v1: vec4<f32>) {
    let row = output_word(l, l.tp + i * l.column_lanes, 0u);
    let m0 = row + 4u * l.tm;
    let m1 = m0 + 4u * l.channel_lanes;
    let rotate = select(0u, l.tp, l.row_words == l.m);
    for (var k = 0u; k < 4u; k++) {
        let c = (k + rotate) & 3u;
        store_word(m0 + c, v0[c]);
        store_word(m1 + c, v1[c]);
    }
}

// The accumulators into the output tile (after the barrier that ends the K loop).
fn put_outputs(acc: ptr<function, array<vec4<f32>, 8>>, l: Lanes) {
    put_column(l, 0u, (*acc)[0], (*acc)[1]);
    put_column(l, 1u, (*acc)[2], (*acc)[3]);
    put_column(l, 2u, (*acc)[4], (*acc)[5]);
    put_column(l, 3u, (*acc)[6], (*acc)[7]);
}

fn any_nonfinite(acc: ptr<function, array<vec4<f32>, 8>>) -> bool {
    let e = vec4<u32>(0x7f800000u);
    var bad = vec4<bool>(false);
    bad |= (bitcast<vec4<u32>>((*acc)[0]) & e) == e;
    bad |= (bitcast<vec4<u32>>((*acc)[1]) & e) == e;
    bad |= (bitcast<vec4<u32>>((*acc)[2]) & e) == e;
    bad |= (bitcast<vec4<u32>>((*acc)[3]) & e) == e;
    bad |= (bitcast<vec4<u32>>((*acc)[4]) & e) == e;
    bad |= (bitcast<vec4<u32>>((*acc)[5]) & e) == e;
    bad |= (bitcast<vec4<u32>>((*acc)[6]) & e) == e;
    bad |= (bitcast<vec4<u32>>((*acc)[7]) & e) == e;
    return any(bad);
}

// Where output e of the tile (e < 2048) sits: (column, channel) in the tile, columns fastest
// unless the destination is channel-contiguous.
fn output_place(l: Lanes, e: u32, channels_contiguous: bool) -> vec2<u32> {
    if (channels_contiguous) {
        return vec2<u32>(e >> u.tile_shift, e & (l.m - 1u));
    }
    let column_shift = 11u - u.tile_shift;
    return vec2<u32>(e & (l.columns - 1u), e >> column_shift);
}

// The offset of reduction vec4 k = (tap, r4) from a pixel's tap (0, 0).
fn reduction_offset(k: u32) -> i32 {
    let t = k / u.reduce4;
    let ty = i32(t / u.taps_w);
    let tx = i32(t % u.taps_w);
    let row = ty * bitcast<i32>(u.tap_step_h) * i32(u.packed_w) + tx * bitcast<i32>(u.tap_step_w);
    return row * i32(u.reduce4) + i32(k % u.reduce4);
}

// The forward's channel operand: staged vec4 j of the K tile from quad kq0, zero past the end.
fn stage_weights(l: Lanes, weight_base: u32, k_quads: u32, kq0: u32, j: u32) -> vec4<f32> {
    let kq = kq0 + l.staged_q + j * l.quad_stride;
    if (j < l.channel_lanes && kq < k_quads) {
        return packed_b[weight_base + kq * u.m_pad];
    }
    return vec4<f32>(0.0);
}

// Output (pixel p, channel m of group g) of the gather recomputed with terms in the padding
// masked: the slow path, for outputs whose fast sum is not finite.
fn gather_masked(g: u32, p: u32, m: u32) -> f32 {
    let source = source_offset(g, p);
    let position = source_position(p);
    let weights = u.packed_w_base + g * u.taps_h * u.taps_w * u.reduce4 * u.m_pad + m;
    var sum = 0.0;
    for (var k = 0u; k < u.taps_h * u.taps_w * u.reduce4; k++) {
        let tap = k / u.reduce4;
        let pos = position + vec2<i32>(
            i32(tap / u.taps_w) * bitcast<i32>(u.tap_step_h),
            i32(tap % u.taps_w) * bitcast<i32>(u.tap_step_w),
        );
        if (pos.x >= 0 && pos.x < i32(u.src_h) && pos.y >= 0 && pos.y < i32(u.src_w)) {
            sum += dot(packed_a[u32(source + reduction_offset(k))], packed_b[weights + k * u.m_pad]);
        }
    }
    return sum;
}

// Workgroup w takes column block w % column_blocks, then channel tile and group; the grid may
// hold extra workgroups past u.invocations / 64, which return at once (before any barrier,
// uniformly for the whole workgroup).
@compute @workgroup_size(64)
fn conv2d_gemm_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = workgroup_index(wg, groups);
    if (w * 64u >= u.invocations) {
        return;
    }
    let channels_contiguous = u.dst_stride_c == 1u;
    let l = lanes(t, channels_contiguous);
    let block = w % u.column_blocks;
    let rest = w / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    let g = rest / u.channel_tiles_per_group;
    let k_quads = u.taps_h * u.taps_w * u.reduce4;
    let weight_base = u.packed_w_base + g * k_quads * u.m_pad + tile * l.m + l.staged_m;

    // The four columns' sources (pixels past the end read the last one's, never stored).
    let first = block * l.columns + l.tp;
    let s0 = source_offset(g, min(first, u.pixels - 1u));
    let s1 = source_offset(g, min(first + l.column_lanes, u.pixels - 1u));
    let s2 = source_offset(g, min(first + 2u * l.column_lanes, u.pixels - 1u));
    let s3 = source_offset(g, min(first + 3u * l.column_lanes, u.pixels - 1u));
    // Reduction vec4 (tap (ty, tx), r4) lies at tap_offset + r4 from a pixel's tap (0, 0).
    let reduce4 = i32(u.reduce4);
    let tap_step = bitcast<i32>(u.tap_step_w) * reduce4;
    let row_step = (bitcast<i32>(u.tap_step_h) * i32(u.packed_w) - i32(u.taps_w) * bitcast<i32>(u.tap_step_w)) * reduce4;
    var r4 = 0u;
    var tx = 0u;
    var tap_offset = 0i;

    var acc: array<vec4<f32>, 8>;
    put(l, 0u, 0u, stage_weights(l, weight_base, k_quads, 0u, 0u));
    put(l, 0u, 1u, stage_weights(l, weight_base, k_quads, 0u, 1u));
    put(l, 0u, 2u, stage_weights(l, weight_base, k_quads, 0u, 2u));
    put(l, 0u, 3u, stage_weights(l, weight_base, k_quads, 0u, 3u));
    put(l, 0u, 4u, stage_weights(l, weight_base, k_quads, 0u, 4u));
    put(l, 0u, 5u, stage_weights(l, weight_base, k_quads, 0u, 5u));
    put(l, 0u, 6u, stage_weights(l, weight_base, k_quads, 0u, 6u));
    put(l, 0u, 7u, stage_weights(l, weight_base, k_quads, 0u, 7u));
    workgroupBarrier();
    let k_tiles = (k_quads + TILE_QUADS - 1u) / TILE_QUADS;
    for (var kt = 0u; kt < k_tiles; kt++) {
        let current = (kt & 1u) * BUFFER;
        let next = (kt + 1u) * TILE_QUADS;
        let n0 = stage_weights(l, weight_base, k_quads, next, 0u);
        let n1 = stage_weights(l, weight_base, k_quads, next, 1u);
        let n2 = stage_weights(l, weight_base, k_quads, next, 2u);
        let n3 = stage_weights(l, weight_base, k_quads, next, 3u);
        let n4 = stage_weights(l, weight_base, k_quads, next, 4u);
        let n5 = stage_weights(l, weight_base, k_quads, next, 5u);
        let n6 = stage_weights(l, weight_base, k_quads, next, 6u);
        let n7 = stage_weights(l, weight_base, k_quads, next, 7u);
        let quads = min(TILE_QUADS, k_quads - kt * TILE_QUADS);
        for (var q = 0u; q < quads; q++) {
            let o = tap_offset + i32(r4);
            outer4(&acc, l, current + 4u * q * l.m4,
                packed_a[u32(s0 + o)], packed_a[u32(s1 + o)], packed_a[u32(s2 + o)], packed_a[u32(s3 + o)]);
            r4 += 1u;
            if (r4 == u.reduce4) {
                r4 = 0u;
                tx += 1u;
                tap_offset += tap_step;
                if (tx == u.taps_w) {
                    tx = 0u;
                    tap_offset += row_step;
                }
            }
        }
        let other = BUFFER - current;
        put(l, other, 0u, n0);
        put(l, other, 1u, n1);
        put(l, other, 2u, n2);
        put(l, other, 3u, n3);
        put(l, other, 4u, n4);
        put(l, other, 5u, n5);
        put(l, other, 6u, n6);
        put(l, other, 7u, n7);
        workgroupBarrier();
    }

    put_outputs(&acc, l);
    if (any_nonfinite(&acc)) {
        for (var i = 0u; i < 4u; i++) {
            let p = first + i * l.column_lanes;
            for (var h = 0u; h < 2u; h++) {
                for (var c = 0u; c < 4u; c++) {
                    let m = 4u * (l.tm + h * l.channel_lanes) + c;
                    if (p < u.pixels && tile * l.m + m < u.channels_per_group) {
                        store_word(output_word(l, l.tp + i * l.column_lanes, m), gather_masked(g, p, tile * l.m + m));
                    }
                }
            }
        }
    }
    workgroupBarrier();
    store_gather_tile(l, t, block, tile, g, channels_contiguous);
}

// The gathers' epilogue, after the barrier that follows the output tile's last write: each
// invocation stores 32 of its outputs, in the order that coalesces them (see output_place),
// with the bias and the activation.
fn store_gather_tile(l: Lanes, t: u32, block: u32, tile: u32, g: u32, channels_contiguous: bool) {
    for (var s = 0u; s < 32u; s++) {
        let place = output_place(l, t + 64u * s, channels_contiguous);
        let p = block * l.columns + place.x;
        let m = tile * l.m + place.y;
        if (p < u.pixels && m < u.channels_per_group) {
            let c = g * u.channels_per_group + m;
            var v = load_word(output_word(l, place.x, place.y));
            if (HAS_BIAS) {
                v += bias[c];
            }
            dst[destination_offset(p) + c * u.dst_stride_c] = activate1(v);
        }
    }
}

// The source read in place by conv2d_gemm_tiled_in_place, as stored (any layout).
@group(0) @binding(1) var<storage, read> source: array<f32>;

// Where destination pixel p of group g meets the source (channel 0 of the group): only for
// 1x1 windows whose every read lies inside the source, so there is no padding to step over.
fn in_place_base(g: u32, p: u32) -> u32 {
    let position = source_position(p);
    let n = p / (u.grid_w * u.grid_h);
    return n * u.src_stride_n + g * u.reduce_per_group * u.src_stride_c + u32(position.x) * u.src_stride_h + u32(position.y) * u.src_stride_w;
}

// Output (pixel p, channel m of group g) of the in-place gather recomputed from the real
// channels only: the slow path. The fast path reads the last channel again for the reduction
// terms past the group's channels (their weights are zero), which makes NaN of an infinite
// value there.
fn gather_in_place_masked(g: u32, p: u32, m: u32) -> f32 {
    let base = in_place_base(g, p);
    let weights = u.packed_w_base + g * u.taps_h * u.taps_w * u.reduce4 * u.m_pad + m;
    var sum = 0.0;
    for (var c = 0u; c < u.taps_h * u.taps_w * u.reduce_per_group; c++) {
        sum += source[base + c * u.src_stride_c] * packed_b[weights + (c >> 2u) * u.m_pad][c & 3u];
    }
    return sum;
}

// conv2d_gemm_tiled for 1x1 windows that read only inside the source (no padding), reading it
// in place: a plain matrix product in either layout, with no packing pass for the activation.
// Reduction term c of a column is source[base + c * src_stride_c]: consecutive column lanes
// take consecutive pixels, so in NCHW their loads are coalesced. The weights are staged as in
// conv2d_gemm_tiled. Terms past the group's channels read its last channel again, at a clamped
// offset (never past the source), against zero weights; a non-finite accumulator recomputes
// without them. Taps are 0 (a stride phase of dx without any: the bias alone) or 1.
@compute @workgroup_size(64)
fn conv2d_gemm_tiled_in_place(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = workgroup_index(wg, groups);
    if (w * 64u >= u.invocations) {
        return;
    }
    let channels_contiguous = u.dst_stride_c == 1u;
    let l = lanes(t, channels_contiguous);
    let block = w % u.column_blocks;
    let rest = w / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    let g = rest / u.channel_tiles_per_group;
    let k_quads = u.taps_h * u.taps_w * u.reduce4;
    let weight_base = u.packed_w_base + g * k_quads * u.m_pad + tile * l.m + l.staged_m;

    let first = block * l.columns + l.tp;
    let s0 = in_place_base(g, min(first, u.pixels - 1u));
    let s1 = in_place_base(g, min(first + l.column_lanes, u.pixels - 1u));
    let s2 = in_place_base(g, min(first + 2u * l.column_lanes, u.pixels - 1u));
    let s3 = in_place_base(g, min(first + 3u * l.column_lanes, u.pixels - 1u));
    // Term offsets of the current quad from a column's base, advanced by four channels a step
    // and clamped to the group's last channel.
    let c1 = u.src_stride_c;
    let c2 = 2u * c1;
    let c3 = 3u * c1;
    let last = (max(u.reduce_per_group, 1u) - 1u) * c1;
    var o = 0u;

    var acc: array<vec4<f32>, 8>;
    put(l, 0u, 0u, stage_weights(l, weight_base, k_quads, 0u, 0u));
    put(l, 0u, 1u, stage_weights(l, weight_base, k_quads, 0u, 1u));
    put(l, 0u, 2u, stage_weights(l, weight_base, k_quads, 0u, 2u));
    put(l, 0u, 3u, stage_weights(l, weight_base, k_quads, 0u, 3u));
    put(l, 0u, 4u, stage_weights(l, weight_base, k_quads, 0u, 4u));
    put(l, 0u, 5u, stage_weights(l, weight_base, k_quads, 0u, 5u));
    put(l, 0u, 6u, stage_weights(l, weight_base, k_quads, 0u, 6u));
    put(l, 0u, 7u, stage_weights(l, weight_base, k_quads, 0u, 7u));
    workgroupBarrier();
    let k_tiles = (k_quads + TILE_QUADS - 1u) / TILE_QUADS;
    for (var kt = 0u; kt < k_tiles; kt++) {
        let current = (kt & 1u) * BUFFER;
        let next = (kt + 1u) * TILE_QUADS;
        let n0 = stage_weights(l, weight_base, k_quads, next, 0u);
        let n1 = stage_weights(l, weight_base, k_quads, next, 1u);
        let n2 = stage_weights(l, weight_base, k_quads, next, 2u);
        let n3 = stage_weights(l, weight_base, k_quads, next, 3u);
        let n4 = stage_weights(l, weight_base, k_quads, next, 4u);
        let n5 = stage_weights(l, weight_base, k_quads, next, 5u);
        let n6 = stage_weights(l, weight_base, k_quads, next, 6u);
        let n7 = stage_weights(l, weight_base, k_quads, next, 7u);
        let quads = min(TILE_QUADS, k_quads - kt * TILE_QUADS);
        for (var q = 0u; q < quads; q++) {
            let o1 = min(o + c1, last);
            let o2 = min(o + c2, last);
            let o3 = min(o + c3, last);
            outer4(&acc, l, current + 4u * q * l.m4,
                vec4<f32>(source[s0 + o], source[s0 + o1], source[s0 + o2], source[s0 + o3]),
                vec4<f32>(source[s1 + o], source[s1 + o1], source[s1 + o2], source[s1 + o3]),
                vec4<f32>(source[s2 + o], source[s2 + o1], source[s2 + o2], source[s2 + o3]),
                vec4<f32>(source[s3 + o], source[s3 + o1], source[s3 + o2], source[s3 + o3]));
            o += 4u * c1;
        }
        let other = BUFFER - current;
        put(l, other, 0u, n0);
        put(l, other, 1u, n1);
        put(l, other, 2u, n2);
        put(l, other, 3u, n3);
        put(l, other, 4u, n4);
        put(l, other, 5u, n5);
        put(l, other, 6u, n6);
        put(l, other, 7u, n7);
        workgroupBarrier();
    }

    put_outputs(&acc, l);
    if (any_nonfinite(&acc)) {
        for (var i = 0u; i < 4u; i++) {
            let p = first + i * l.column_lanes;
            for (var h = 0u; h < 2u; h++) {
                for (var c = 0u; c < 4u; c++) {
                    let m = 4u * (l.tm + h * l.channel_lanes) + c;
                    if (p < u.pixels && tile * l.m + m < u.channels_per_group) {
                        store_word(output_word(l, l.tp + i * l.column_lanes, m), gather_in_place_masked(g, p, tile * l.m + m));
                    }
                }
            }
        }
    }
    workgroupBarrier();
    store_gather_tile(l, t, block, tile, g, channels_contiguous);
}

// The offset of reduction vec4 k = (n, oy, ox4) within a row of the packed input.
fn pixel_offset(k: u32) -> u32 {
    let row = k / u.ow4;
    return ((row / u.grid_h) * u.packed_h + (row % u.grid_h) * u.src_step_h) * u.ow4 + k % u.ow4;
}

// The weight gradient's channel operand (grad_output rows): staged vec4 j of the K tile from
// quad kq0, zero past k_end and past the group's channels.
fn stage_grads(l: Lanes, channel: u32, live: bool, k_end: u32, kq0: u32, j: u32) -> vec4<f32> {
    let kq = kq0 + l.staged_q + j * l.quad_stride;
    if (j < l.channel_lanes && live && kq < k_end) {
        return packed_a[channel + kq];
    }
    return vec4<f32>(0.0);
}

// Weight-gradient output (column col, channel m of group g) over quads k_begin..k_end with
// terms in the padding masked: the slow path.
fn weight_grad_masked(g: u32, col: u32, m: u32, k_begin: u32, k_end: u32) -> f32 {
    let column = input_row(g, col);
    let channel = (g * u.channels_per_group + m) * u.k_vec;
    var sum = 0.0;
    for (var k = k_begin; k < k_end; k++) {
        let bits = vec4<u32>(input_live(col, (k / u.ow4) % u.grid_h, k % u.ow4));
        let live = (bits & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
        let terms = packed_b[column + pixel_offset(k)] * packed_a[channel + k];
        sum += dot(select(vec4<f32>(0.0), terms, live), vec4<f32>(1.0));
    }
    return sum;
}

// Weight gradient, pass 1, as a split-K GEMM on the operands of conv2d_weight_grad_packed
// (grad_output rows in packed_a, the x-only im2col input in packed_b). Workgroup w takes column
// block w % column_blocks (of the reduce_per_group * taps columns), then channel tile, group
// and block of rows_per_block output rows, and writes that block's partial sums; pass 2 adds
// the blocks in block order.
@compute @workgroup_size(64)
fn conv2d_weight_grad_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = workgroup_index(wg, groups);
    if (w * 64u >= u.invocations) {
        return;
    }
    let channels_contiguous = u.w_stride_m == 1u;
    let l = lanes(t, channels_contiguous);
    let cblock = w % u.column_blocks;
    var rest = w / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    rest = rest / u.channel_tiles_per_group;
    let g = rest % u.groups;
    let block = rest / u.groups;
    let taps = u.taps_h * u.taps_w;
    let columns = u.reduce_per_group * taps;
    let k_begin = block * u.rows_per_block * u.ow4;
    // A block past the rows (none is planned) sums nothing rather than wrapping k_quads.
    let k_end = max(k_begin, min(u.k_vec, k_begin + u.rows_per_block * u.ow4));
    let staged_channel = tile * l.m + l.staged_m;
    let staged_live = staged_channel < u.channels_per_group;
    let channel = (g * u.channels_per_group + min(staged_channel, u.channels_per_group - 1u)) * u.k_vec;

    // The four columns' input rows (columns past the end read the last one's, never stored).
    let first = cblock * l.columns + l.tp;
    let c0 = input_row(g, min(first, columns - 1u));
    let c1 = input_row(g, min(first + l.column_lanes, columns - 1u));
    let c2 = input_row(g, min(first + 2u * l.column_lanes, columns - 1u));
    let c3 = input_row(g, min(first + 3u * l.column_lanes, columns - 1u));
    // Quad k = (n, oy, ox4) lies at offset (n * packed_h + oy * src_step_h) * ow4 + ox4 of a
    // column's row; advanced one quad at a time.
    let first_row = k_begin / u.ow4;
    var ox4 = k_begin % u.ow4;
    var oy = first_row % u.grid_h;
    var offset = pixel_offset(k_begin);
    let row_step = (u.src_step_h - 1u) * u.ow4;
    let image_step = (u.packed_h - u.grid_h * u.src_step_h) * u.ow4;

    var acc: array<vec4<f32>, 8>;
    put(l, 0u, 0u, stage_grads(l, channel, staged_live, k_end, k_begin, 0u));
    put(l, 0u, 1u, stage_grads(l, channel, staged_live, k_end, k_begin, 1u));
    put(l, 0u, 2u, stage_grads(l, channel, staged_live, k_end, k_begin, 2u));
    put(l, 0u, 3u, stage_grads(l, channel, staged_live, k_end, k_begin, 3u));
    put(l, 0u, 4u, stage_grads(l, channel, staged_live, k_end, k_begin, 4u));
    put(l, 0u, 5u, stage_grads(l, channel, staged_live, k_end, k_begin, 5u));
    put(l, 0u, 6u, stage_grads(l, channel, staged_live, k_end, k_begin, 6u));
    put(l, 0u, 7u, stage_grads(l, channel, staged_live, k_end, k_begin, 7u));
    workgroupBarrier();
    let k_quads = k_end - k_begin;
    let k_tiles = (k_quads + TILE_QUADS - 1u) / TILE_QUADS;
    for (var kt = 0u; kt < k_tiles; kt++) {
        let current = (kt & 1u) * BUFFER;
        let next = k_begin + (kt + 1u) * TILE_QUADS;
        let n0 = stage_grads(l, channel, staged_live, k_end, next, 0u);
        let n1 = stage_grads(l, channel, staged_live, k_end, next, 1u);
        let n2 = stage_grads(l, channel, staged_live, k_end, next, 2u);
        let n3 = stage_grads(l, channel, staged_live, k_end, next, 3u);
        let n4 = stage_grads(l, channel, staged_live, k_end, next, 4u);
        let n5 = stage_grads(l, channel, staged_live, k_end, next, 5u);
        let n6 = stage_grads(l, channel, staged_live, k_end, next, 6u);
        let n7 = stage_grads(l, channel, staged_live, k_end, next, 7u);
        let quads = min(TILE_QUADS, k_quads - kt * TILE_QUADS);
        for (var q = 0u; q < quads; q++) {
            outer4(&acc, l, current + 4u * q * l.m4,
                packed_b[c0 + offset], packed_b[c1 + offset], packed_b[c2 + offset], packed_b[c3 + offset]);
            offset += 1u;
            ox4 += 1u;
            if (ox4 == u.ow4) {
                ox4 = 0u;
                oy += 1u;
                offset += row_step;
                if (oy == u.grid_h) {
                    oy = 0u;
                    offset += image_step;
                }
            }
        }
        let other = BUFFER - current;
        put(l, other, 0u, n0);
        put(l, other, 1u, n1);
        put(l, other, 2u, n2);
        put(l, other, 3u, n3);
        put(l, other, 4u, n4);
        put(l, other, 5u, n5);
        put(l, other, 6u, n6);
        put(l, other, 7u, n7);
        workgroupBarrier();
    }

    put_outputs(&acc, l);
    if (any_nonfinite(&acc)) {
        for (var i = 0u; i < 4u; i++) {
            let col = first + i * l.column_lanes;
            for (var h = 0u; h < 2u; h++) {
                for (var c = 0u; c < 4u; c++) {
                    let m = 4u * (l.tm + h * l.channel_lanes) + c;
                    if (col < columns && tile * l.m + m < u.channels_per_group) {
                        store_word(output_word(l, l.tp + i * l.column_lanes, m), weight_grad_masked(g, col, tile * l.m + m, k_begin, k_end));
                    }
                }
            }
        }
    }
    workgroupBarrier();
    for (var s = 0u; s < 32u; s++) {
        let place = output_place(l, t + 64u * s, channels_contiguous);
        let col = cblock * l.columns + place.x;
        let m = tile * l.m + place.y;
        if (col < columns && m < u.channels_per_group) {
            let w_column = (col / taps) * u.w_stride_r + ((col % taps) / u.taps_w) * u.w_tap_h + (col % u.taps_w) * u.w_tap_w;
            dst[block * u.reduce_len + u.w_base + g * u.w_stride_g + m * u.w_stride_m + w_column] = load_word(output_word(l, place.x, place.y));
        }
    }
}
