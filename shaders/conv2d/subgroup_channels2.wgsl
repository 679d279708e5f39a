// The channels each lane of the subgroup kernels (`subgroup.wgsl`) keeps for every column of its
// tile: 2, at 8 and 16 lanes (tiles of 16 and 32 channels; at 16 lanes one channel per lane ran
// 1.3x slower on lavapipe, four no faster). Composed with a `subgroup_lanes*.wgsl` piece before
// the body.

const CHANNELS_PER_LANE: u32 = 2u;
alias LaneChannels = vec2<f32>;
alias LaneBits = vec2<u32>;
alias LaneOffsets = vec2<u32>;

// Element offsets `base + min(m + i, last) * stride` of the lane's channels m + i.
fn lane_offsets(base: u32, m: u32, last: u32, stride: u32) -> LaneOffsets {
    return vec2<u32>(base + min(m, last) * stride, base + min(m + 1u, last) * stride);
}

// The lane's channels of `src_b`, `at` past their offsets.
fn load_lane(offsets: LaneOffsets, at: u32) -> LaneChannels {
    return vec2<f32>(src_b[offsets.x + at], src_b[offsets.y + at]);
}

// Channel i of the lane's values.
fn lane_channel(v: LaneChannels, i: u32) -> f32 {
    return v[i];
}
