// The uniforms of the implicit-GEMM conv2d kernels and the packing that feeds them
// (`GemmConvUniforms` on the host, in src/gpu/conv2d/gemm.rs): one gather convolution that
// describes the forward pass, the input gradient per stride phase and the weight gradient's
// split-K pass. Signed quantities (offsets, steps) travel as i32 bits in u32 fields.

struct GemmConvUniforms {
    pixels: u32,
    grid_h: u32,
    grid_w: u32,
    groups: u32,
    channels_per_group: u32,
    reduce_per_group: u32,
    channel_tiles_per_group: u32,
    column_blocks: u32,
    taps_h: u32,
    taps_w: u32,
    src_h: u32,
    src_w: u32,
    src_step_h: u32,
    src_step_w: u32,
    src_off_h: u32,
    src_off_w: u32,
    tap_step_h: u32,
    tap_step_w: u32,
    dst_step_h: u32,
    dst_step_w: u32,
    dst_off_h: u32,
    dst_off_w: u32,
    // Whether the epilogue adds a bias and which activation it applies (0 none, 1 ReLU,
    // 2 sigmoid, 3 tanh, 4 leaky ReLU with activation_slope's f32 bits): the host also builds
    // the pipeline with HAS_BIAS and HAS_ACTIVATION from these (common/activate.wgsl).
    has_bias: u32,
    activation: u32,
    activation_slope: u32,
    invocations: u32,
    rows_per_block: u32,
    blocks: u32,
    reduce_len: u32,
    batch: u32,
    packed_h: u32,
    packed_w: u32,
    src_stride_n: u32,
    src_stride_c: u32,
    src_stride_h: u32,
    src_stride_w: u32,
    dst_stride_n: u32,
    dst_stride_c: u32,
    dst_stride_h: u32,
    dst_stride_w: u32,
    w_base: u32,
    w_stride_m: u32,
    w_stride_g: u32,
    w_stride_r: u32,
    w_tap_h: u32,
    w_tap_w: u32,
    pack_off_h: u32,
    pack_off_w: u32,
    reduce4: u32,
    m_pad: u32,
    packed_w_base: u32,
    k_vec: u32,
    ow4: u32,
    // The tiled GEMMs: log2 of the channels per workgroup tile (3 to 6).
    tile_shift: u32,
    // The packed weight gradients: where grad_output row m starts in packed_a, and the jump
    // from one image's end to the next's start within it (0 when packed per channel,
    // (channels - 1) * rows' vec4s when copied in grad_output's own NCHW order).
    a_row_stride: u32,
    a_image_jump: u32,
}

// Geometry of the gather GEMMs on packed operands (packed.wgsl and tiled.wgsl).

// The packed-source offset (in vec4s) of tap (0, 0) of destination pixel p; the host padded
// the source so that every tap of every pixel lies inside.
fn source_offset(g: u32, p: u32) -> i32 {
    let n = p / (u.grid_w * u.grid_h);
    let packed = source_position(p) - vec2<i32>(bitcast<i32>(u.pack_off_h), bitcast<i32>(u.pack_off_w));
    return ((i32((g * u.batch + n) * u.packed_h) + packed.x) * i32(u.packed_w) + packed.y) * i32(u.reduce4);
}

// The source position (row, column) of tap (0, 0) of destination pixel p.
fn source_position(p: u32) -> vec2<i32> {
    let gx = p % u.grid_w;
    let gy = (p / u.grid_w) % u.grid_h;
    return vec2<i32>(
        i32(gy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h),
        i32(gx) * bitcast<i32>(u.src_step_w) + bitcast<i32>(u.src_off_w),
    );
}

// Where destination pixel p starts in dst (channel 0).
fn destination_offset(p: u32) -> u32 {
    let gx = p % u.grid_w;
    let gyn = p / u.grid_w;
    let gy = gyn % u.grid_h;
    let n = gyn / u.grid_h;
    let dy = gy * u.dst_step_h + u.dst_off_h;
    let dx = gx * u.dst_step_w + u.dst_off_w;
    return n * u.dst_stride_n + dy * u.dst_stride_h + dx * u.dst_stride_w;
}

// Where column col = (r, ty, tx) of group g starts in the packed input: row (r, tx), padded
// row ty * dilation of image 0.
fn input_row(g: u32, col: u32) -> u32 {
    let taps = u.taps_h * u.taps_w;
    let r = col / taps;
    let row = (g * u.reduce_per_group + r) * u.taps_w + col % u.taps_w;
    return (row * u.batch * u.packed_h + ((col % taps) / u.taps_w) * u.tap_step_h) * u.ow4;
}

// Bit c set where output pixel (oy, 4 ox4 + c) meets the input (not its padding, nor past the
// row's end) at column col = (r, ty, tx).
fn input_live(col: u32, oy: u32, ox4: u32) -> u32 {
    let taps = u.taps_h * u.taps_w;
    let iy = i32(oy) * bitcast<i32>(u.src_step_h) + bitcast<i32>(u.src_off_h) + i32((col % taps) / u.taps_w) * bitcast<i32>(u.tap_step_h);
    var bits = 0u;
    for (var c = 0u; c < 4u; c++) {
        let ox = 4u * ox4 + c;
        let ix = i32(ox) * bitcast<i32>(u.src_step_w) + bitcast<i32>(u.src_off_w) + i32(col % u.taps_w) * bitcast<i32>(u.tap_step_w);
        let live = ox < u.grid_w && iy >= 0 && iy < i32(u.src_h) && ix >= 0 && ix < i32(u.src_w);
        bits |= select(0u, 1u << c, live);
    }
    return bits;
}
