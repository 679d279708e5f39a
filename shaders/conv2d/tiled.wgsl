// Implicit-GEMM conv2d with workgroup-memory tiles, for real GPUs: the gather convolution of
// packed.wgsl (forward, or the input gradient for one stride phase) on the same
// repacked vec4 operands, with no subgroup operations. A workgroup of 64 invocations owns
// 32 destination pixels by 64 channels. Per chunk of 4 reduction vec4s (16 terms) it stages
// the chunk's 32 source vec4s and 256 weight vec4s in workgroup memory, each invocation
// loading a few, then invocation t accumulates pixels 4 (t % 8) .. + 3 by channels
// 8 (t / 8) .. + 7 from workgroup memory: 32 accumulators and 12 workgroup-memory reads per
// 32 four-term dot products, so device memory is read once per tile instead of once per
// output.
//
// Signed quantities travel as i32 bits in u32 fields.

@group(0) @binding(0) var<uniform> u: GemmConvUniforms;
@group(0) @binding(1) var<storage, read> packed_a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> packed_b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// Destination pixels (dw: weight-gradient columns) and channels per workgroup tile, and
// reduction vec4s per chunk.
const TILE_PIXELS: u32 = 32u;
const TILE_CHANNELS: u32 = 64u;
const CHUNK: u32 = 4u;

// One chunk of the pixel (column) side, [CHUNK][TILE_PIXELS], and of the channel side,
// [CHUNK][TILE_CHANNELS].
var<workgroup> source_tile: array<vec4<f32>, 128>;
var<workgroup> weight_tile: array<vec4<f32>, 256>;
// Which components of each source_tile entry meet the source rather than its zero padding
// (bit c for component c): terms in the padding are skipped, not multiplied by zero, so an
// infinite or NaN operand meeting the padding adds nothing, as in the CPU reference.
var<workgroup> source_live: array<u32, 128>;

// The offset of reduction vec4 k = (tap, r4) from a pixel's tap (0, 0).
fn reduction_offset(k: u32) -> i32 {
    let t = k / u.reduce4;
    let ty = i32(t / u.taps_w);
    let tx = i32(t % u.taps_w);
    let row = ty * bitcast<i32>(u.tap_step_h) * i32(u.packed_w) + tx * bitcast<i32>(u.tap_step_w);
    return row * i32(u.reduce4) + i32(k % u.reduce4);
}

// Workgroup w takes pixel block w % column_blocks, then channel tile and group; the grid may
// hold extra workgroups past u.invocations / 64, which return at once (before any barrier,
// uniformly for the whole workgroup).
@compute @workgroup_size(64)
fn conv2d_gemm_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = (wg.z * groups.y + wg.y) * groups.x + wg.x;
    if (w * 64u >= u.invocations) {
        return;
    }
    let block = w % u.column_blocks;
    let rest = w / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    let g = rest / u.channel_tiles_per_group;
    let taps = u.taps_h * u.taps_w;
    let k_len = taps * u.reduce4;

    // What this invocation stages: source vec4s (chunk rows t / 32 and t / 32 + 2) of pixel
    // t % 32, and weight vec4s (chunk rows 0..3) of channel t.
    let staged_pixel = min(block * TILE_PIXELS + t % TILE_PIXELS, u.pixels - 1u);
    let staged_source = source_offset(g, staged_pixel);
    let staged_position = source_position(staged_pixel);
    let staged_row = t / TILE_PIXELS;
    let weight_base = u.packed_w_base + g * k_len * u.m_pad + tile * TILE_CHANNELS + t;

    let tp = t % 8u;
    let tm = t / 8u;
    var acc: array<array<f32, 8>, 4>;
    for (var k0 = 0u; k0 < k_len; k0 += CHUNK) {
        for (var r = staged_row; r < CHUNK; r += 2u) {
            let k = k0 + r;
            var v = vec4<f32>(0.0);
            var live = false;
            if (k < k_len) {
                v = packed_a[u32(staged_source + reduction_offset(k))];
                let tap = k / u.reduce4;
                let pos = staged_position + vec2<i32>(
                    i32(tap / u.taps_w) * bitcast<i32>(u.tap_step_h),
                    i32(tap % u.taps_w) * bitcast<i32>(u.tap_step_w),
                );
                live = pos.x >= 0 && pos.x < i32(u.src_h) && pos.y >= 0 && pos.y < i32(u.src_w);
            }
            source_tile[r * TILE_PIXELS + t % TILE_PIXELS] = v;
            source_live[r * TILE_PIXELS + t % TILE_PIXELS] = select(0u, 15u, live);
        }
        for (var r = 0u; r < CHUNK; r++) {
            let k = k0 + r;
            var v = vec4<f32>(0.0);
            if (k < k_len) {
                v = packed_b[weight_base + k * u.m_pad];
            }
            weight_tile[r * TILE_CHANNELS + t] = v;
        }
        workgroupBarrier();
        for (var r = 0u; r < CHUNK; r++) {
            var b: array<vec4<f32>, 8>;
            for (var j = 0u; j < 8u; j++) {
                b[j] = weight_tile[r * TILE_CHANNELS + tm * 8u + j];
            }
            for (var i = 0u; i < 4u; i++) {
                let a = source_tile[r * TILE_PIXELS + tp * 4u + i];
                let bits = vec4<u32>(source_live[r * TILE_PIXELS + tp * 4u + i]);
                let live = (bits & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
                for (var j = 0u; j < 8u; j++) {
                    acc[i][j] += dot(select(vec4<f32>(0.0), a * b[j], live), vec4<f32>(1.0));
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let p = block * TILE_PIXELS + tp * 4u + i;
        if (p >= u.pixels) {
            continue;
        }
        let at = destination_offset(p);
        for (var j = 0u; j < 8u; j++) {
            let m = tile * TILE_CHANNELS + tm * 8u + j;
            if (m < u.channels_per_group) {
                let c = g * u.channels_per_group + m;
                var v = acc[i][j];
                if (u.has_bias != 0u) {
                    v += bias[c];
                }
                dst[at + c * u.dst_stride_c] = activate1(v);
            }
        }
    }
}

// The offset of reduction vec4 k = (n, oy, ox4) within a row of the packed input.
fn pixel_offset(k: u32) -> u32 {
    let row = k / u.ow4;
    return ((row / u.grid_h) * u.packed_h + (row % u.grid_h) * u.src_step_h) * u.ow4 + k % u.ow4;
}

// Weight gradient, pass 1, as a split-K GEMM with workgroup-memory tiles, on the operands of
// conv2d_weight_grad_packed8 (grad_output rows in packed_a, the x-only im2col input in
// packed_b). Workgroup w takes column block w % column_blocks (32 of the reduce_per_group *
// taps columns), then channel tile (64), group and block of rows_per_block output rows;
// invocation t accumulates columns 4 (t % 8) .. + 3 by channels 8 (t / 8) .. + 7 and writes
// them to the block's partial sums; pass 2 adds the blocks in block order.
@compute @workgroup_size(64)
fn conv2d_weight_grad_tiled(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = (wg.z * groups.y + wg.y) * groups.x + wg.x;
    if (w * 64u >= u.invocations) {
        return;
    }
    let cblock = w % u.column_blocks;
    var rest = w / u.column_blocks;
    let tile = rest % u.channel_tiles_per_group;
    rest = rest / u.channel_tiles_per_group;
    let g = rest % u.groups;
    let block = rest / u.groups;
    let taps = u.taps_h * u.taps_w;
    let columns = u.reduce_per_group * taps;

    let k_begin = block * u.rows_per_block * u.ow4;
    let k_end = min(u.k_vec, k_begin + u.rows_per_block * u.ow4);
    // What this invocation stages: input vec4s (chunk rows t / 32 and t / 32 + 2) of column
    // t % 32, and grad_output vec4s (chunk rows 0..3) of channel t.
    let staged_col = min(cblock * TILE_PIXELS + t % TILE_PIXELS, columns - 1u);
    let staged_column = input_row(g, staged_col);
    let staged_row = t / TILE_PIXELS;
    let staged_m = tile * TILE_CHANNELS + t;
    let staged_channel = (g * u.channels_per_group + min(staged_m, u.channels_per_group - 1u)) * u.k_vec;

    let tp = t % 8u;
    let tm = t / 8u;
    var acc: array<array<f32, 8>, 4>;
    for (var k0 = k_begin; k0 < k_end; k0 += CHUNK) {
        for (var r = staged_row; r < CHUNK; r += 2u) {
            let k = k0 + r;
            var v = vec4<f32>(0.0);
            var live = 0u;
            if (k < k_end) {
                v = packed_b[staged_column + pixel_offset(k)];
                live = input_live(staged_col, (k / u.ow4) % u.grid_h, k % u.ow4);
            }
            source_tile[r * TILE_PIXELS + t % TILE_PIXELS] = v;
            source_live[r * TILE_PIXELS + t % TILE_PIXELS] = live;
        }
        for (var r = 0u; r < CHUNK; r++) {
            let k = k0 + r;
            var v = vec4<f32>(0.0);
            if (k < k_end && staged_m < u.channels_per_group) {
                v = packed_a[staged_channel + k];
            }
            weight_tile[r * TILE_CHANNELS + t] = v;
        }
        workgroupBarrier();
        for (var r = 0u; r < CHUNK; r++) {
            var b: array<vec4<f32>, 8>;
            for (var j = 0u; j < 8u; j++) {
                b[j] = weight_tile[r * TILE_CHANNELS + tm * 8u + j];
            }
            for (var i = 0u; i < 4u; i++) {
                let a = source_tile[r * TILE_PIXELS + tp * 4u + i];
                let bits = vec4<u32>(source_live[r * TILE_PIXELS + tp * 4u + i]);
                let live = (bits & vec4<u32>(1u, 2u, 4u, 8u)) != vec4<u32>(0u);
                for (var j = 0u; j < 8u; j++) {
                    acc[i][j] += dot(select(vec4<f32>(0.0), a * b[j], live), vec4<f32>(1.0));
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let col = cblock * TILE_PIXELS + tp * 4u + i;
        if (col >= columns) {
            continue;
        }
        let w_column = (col / taps) * u.w_stride_r + ((col % taps) / u.taps_w) * u.w_tap_h + (col % u.taps_w) * u.w_tap_w;
        for (var j = 0u; j < 8u; j++) {
            let m = tile * TILE_CHANNELS + tm * 8u + j;
            if (m < u.channels_per_group) {
                dst[block * u.reduce_len + u.w_base + g * u.w_stride_g + m * u.w_stride_m + w_column] = acc[i][j];
            }
        }
    }
}
