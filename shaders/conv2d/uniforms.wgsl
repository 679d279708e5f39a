// The conv2d family's uniforms and bind group, shared by the direct, depthwise and reduction
// modules (`Conv2dUniforms` on the host, in src/gpu/conv2d/uniforms.rs).
//
// Tensors are addressed through element strides in the uniforms, so one kernel serves NCHW/OIHW
// and NHWC/HWIO without a transpose. A true convolution reads the weights through a base offset
// at the last tap and negated spatial strides: u32 arithmetic wraps, so `base + k * (0 - s)` is
// `base - k * s` exactly.
//
// Every entry point shares one bind group layout: the uniforms, three read-only arrays `src_a`,
// `src_b`, `src_c` and one writable array `dst`; each entry point's comment says what they hold.
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
    // The pipeline is built with HAS_BIAS and HAS_ACTIVATION from has_bias and activation
    // (common/activate.wgsl).
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
    // reduce_partials only: blocks per segment (see shaders/conv2d/reduce.wgsl).
    reduce_segment: u32,
    // Depthwise kernels only: 1 when consecutive invocations take consecutive channels, 0 when
    // they take consecutive quads of a row (see depthwise_item); and the quads of a row each
    // weight-gradient invocation walks.
    lanes_along_channels: u32,
    quads_per_invocation: u32,
    // Uniform buffers come in multiples of 16 bytes.
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> u: Conv2dUniforms;
@group(0) @binding(1) var<storage, read> src_a: array<f32>;
@group(0) @binding(2) var<storage, read> src_b: array<f32>;
@group(0) @binding(3) var<storage, read> src_c: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// Stores the first `live` of four values `stride` apart from `base`: a channel tile's last
// members past the end are computed (on repeated loads) but never written.
fn store4(base: u32, stride: u32, live: u32, values: vec4<f32>) {
    dst[base] = values.x;
    if (live > 1u) { dst[base + stride] = values.y; }
    if (live > 2u) { dst[base + 2u * stride] = values.z; }
    if (live > 3u) { dst[base + 3u * stride] = values.w; }
}
