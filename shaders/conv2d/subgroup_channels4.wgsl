// The channels each lane of the subgroup kernels (`subgroup.wgsl`) keeps for every column of its
// tile: 4, at 4 lanes (16 x 16 tiles). Composed with a `subgroup_lanes*.wgsl` piece before the
// body.

const CHANNELS_PER_LANE: u32 = 4u;
alias LaneChannels = vec4<f32>;
alias LaneBits = vec4<u32>;
alias LaneOffsets = vec4<u32>;

// Element offsets `base + min(m + i, last) * stride` of the lane's channels m + i.
fn lane_offsets(base: u32, m: u32, last: u32, stride: u32) -> LaneOffsets {
    return vec4<u32>(base + min(m, last) * stride, base + min(m + 1u, last) * stride, base + min(m + 2u, last) * stride, base + min(m + 3u, last) * stride);
}

// The lane's channels of `src_b`, `at` past their offsets.
fn load_lane(offsets: LaneOffsets, at: u32) -> LaneChannels {
    return vec4<f32>(src_b[offsets.x + at], src_b[offsets.y + at], src_b[offsets.z + at], src_b[offsets.w + at]);
}

// Channel i of the lane's values.
fn lane_channel(v: LaneChannels, i: u32) -> f32 {
    return v[i];
}
