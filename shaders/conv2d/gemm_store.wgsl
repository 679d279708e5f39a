// Stores of the subgroup GEMMs (subgroup.wgsl and packed.wgsl), where each lane holds two
// channels of a destination pixel or two output channels of a weight-gradient column. The module
// composed with this piece binds `bias` and `dst`; needs common/activate.wgsl.

// Writes one destination pixel's two channels (m, m + 1) of this lane, with bias and
// activation; channels past the group's end and pixels past the end are skipped.
fn store_pair(pixel_live: bool, dst_pixel: u32, g: u32, m: u32, v: vec2<f32>) {
    if (!pixel_live || m >= u.channels_per_group) {
        return;
    }
    let c = g * u.channels_per_group + m;
    var b = vec2<f32>(0.0);
    if (HAS_BIAS) {
        b = vec2<f32>(bias[c], bias[min(c + 1u, g * u.channels_per_group + u.channels_per_group - 1u)]);
    }
    let out = activate2(v + b);
    let at = dst_pixel + c * u.dst_stride_c;
    dst[at] = out.x;
    if (m + 1u < u.channels_per_group) {
        dst[at + u.dst_stride_c] = out.y;
    }
}

// Writes one column's partial sums for this lane's two output channels (m, m + 1).
fn store_weight_pair(column_live: bool, w_column: u32, block: u32, g: u32, m: u32, v: vec2<f32>) {
    if (!column_live || m >= u.channels_per_group) {
        return;
    }
    let at = block * u.reduce_len + u.w_base + g * u.w_stride_g + m * u.w_stride_m + w_column;
    dst[at] = v.x;
    if (m + 1u < u.channels_per_group) {
        dst[at + u.w_stride_m] = v.y;
    }
}
