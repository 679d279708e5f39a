// Repacking for the vec4 implicit-GEMM kernels of packed.wgsl: each kernel gathers a
// strided f32 tensor (any layout, flips included, through the strides in the uniforms) into a
// zero-padded array of vec4 whose four components run along the GEMM's reduction axis. The
// GEMM's inner loop then needs no bounds checks and gets four reduction terms per load, which
// is what pays on lavapipe, where every load inside a loop runs lane by lane.
//
// One invocation writes one vec4, into a storage buffer (the *_vec4 entry points, which the
// tiled kernels read) or a texture (the *_texture ones, for the packed kernels: lavapipe
// fetches texels faster than it loads from buffers). Signed quantities travel as i32 bits in
// u32 fields.

@group(0) @binding(0) var<uniform> u: GemmConvUniforms;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;
// The same slot as a texture, for the *_texture entry points (each entry point binds one).
@group(0) @binding(2) var dst_texture: texture_storage_2d<rgba32float, write>;

fn store_texel(i: u32, v: vec4<f32>) {
    textureStore(dst_texture, texel_of(i), v);
}

// Activations, channel-innermost and zero-padded:
// dst[(((g * batch + n) * packed_h + y) * packed_w + x) * reduce4 + r4] holds channels
// 4 * r4 .. 4 * r4 + 3 of group g at source pixel (y + pack_off_h, x + pack_off_w); pixels
// outside the source and channels past reduce_per_group are zero.
fn packed_source(i: u32) -> vec4<f32> {
    let r4 = i % u.reduce4;
    var rest = i / u.reduce4;
    let x = rest % u.packed_w;
    rest = rest / u.packed_w;
    let y = rest % u.packed_h;
    rest = rest / u.packed_h;
    let n = rest % u.batch;
    let g = rest / u.batch;
    let sy = i32(y) + bitcast<i32>(u.pack_off_h);
    let sx = i32(x) + bitcast<i32>(u.pack_off_w);
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
fn packed_weight(i: u32) -> vec4<f32> {
    let m = i % u.m_pad;
    var rest = i / u.m_pad;
    let r4 = rest % u.reduce4;
    rest = rest / u.reduce4;
    let taps = u.taps_h * u.taps_w;
    let t = rest % taps;
    let g = rest / taps;
    var v = vec4<f32>(0.0);
    if (m < u.channels_per_group) {
        let at = u.w_base + g * u.w_stride_g + m * u.w_stride_m + (t / u.taps_w) * u.w_tap_h + (t % u.taps_w) * u.w_tap_w;
        let r0 = 4u * r4;
        for (var c = 0u; c < 4u; c++) {
            if (r0 + c < u.reduce_per_group) {
                v[c] = src[at + (r0 + c) * u.w_stride_r];
            }
        }
    }
    return v;
}

// Rows of a GEMM whose reduction runs over output pixels (the weight gradient), pixel-major:
// dst[(((g * reduce_per_group * taps + row) * batch + n) * grid_h + oy) * ow4 + ox4] holds, for
// row = r * taps + t, the source value that output pixels (n, oy, 4 * ox4 .. 4 * ox4 + 3) meet
// at tap t of channel r: source pixel (oy * src_step + src_off + ty * tap_step, same in x).
// With one tap and unit steps it copies grad_output; with the forward's taps it is im2col.
// Output columns past grid_w and pixels outside the source are zero.
fn packed_row(i: u32) -> vec4<f32> {
    let ox4 = i % u.ow4;
    var rest = i / u.ow4;
    let oy = rest % u.grid_h;
    rest = rest / u.grid_h;
    let n = rest % u.batch;
    rest = rest / u.batch;
    let taps = u.taps_h * u.taps_w;
    let t = rest % taps;
    rest = rest / taps;
    let r = rest % u.reduce_per_group;
    let g = rest / u.reduce_per_group;
    let sy = i32(oy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h) + i32(t / u.taps_w) * bitcast<i32>(u.tap_step_h);
    let row = n * u.src_stride_n + (g * u.reduce_per_group + r) * u.src_stride_c + u32(clamp(sy, 0, i32(u.src_h) - 1)) * u.src_stride_h;
    let ox = vec4<i32>(4 * i32(ox4)) + vec4<i32>(0, 1, 2, 3);
    let sx = ox * bitcast<i32>(u.src_step_w) + vec4<i32>(bitcast<i32>(u.src_off_w) + i32(t % u.taps_w) * bitcast<i32>(u.tap_step_w));
    // Unconditional loads from clamped addresses, then selects (see pack_source_vec4).
    let at = vec4<u32>(clamp(sx, vec4<i32>(0), vec4<i32>(i32(u.src_w) - 1))) * u.src_stride_w + vec4<u32>(row);
    let v = vec4<f32>(src[at.x], src[at.y], src[at.z], src[at.w]);
    let live = vec4<bool>(sy >= 0 && sy < i32(u.src_h)) & (ox < vec4<i32>(i32(u.grid_w))) & (sx >= vec4<i32>(0)) & (sx < vec4<i32>(i32(u.src_w)));
    return select(vec4<f32>(0.0), v, live);
}

// The entry points: one invocation per packed vec4, into a buffer or a texture.
@compute @workgroup_size(64)
fn pack_source_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i < u.invocations) {
        dst[i] = packed_source(i);
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
        store_texel(i, packed_source(i));
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
        dst[u.packed_w_base + i] = packed_weight(i);
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
        store_texel(u.packed_w_base + i, packed_weight(i));
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
        dst[i] = packed_row(i);
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
        store_texel(i, packed_row(i));
    }
}

// Zeros over the first `invocations` vec4s of dst, one vec4 per invocation: the input gradient
// of a window smaller than its stride, ahead of the GEMMs of the stride phases that have taps,
// so that those without write no empty tiles (packed.rs); a vec4 store costs lavapipe one lane
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
