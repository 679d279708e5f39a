// The channels each lane of the subgroup kernels (`subgroup.wgsl`) keeps for every column of its
// tile: 1, at 32 and 64 lanes (tiles of 32 and 64 channels). Composed with a
// `subgroup_lanes*.wgsl` piece before the body.

const CHANNELS_PER_LANE: u32 = 1u;
alias LaneChannels = f32;
alias LaneBits = u32;
alias LaneOffsets = u32;

// Element offsets `base + min(m + i, last) * stride` of the lane's channels m + i.
fn lane_offsets(base: u32, m: u32, last: u32, stride: u32) -> LaneOffsets {
    return base + min(m, last) * stride;
}

// The lane's channels of `src_b`, `at` past their offsets.
fn load_lane(offsets: LaneOffsets, at: u32) -> LaneChannels {
    return src_b[offsets + at];
}

// Channel i of the lane's values.
fn lane_channel(v: LaneChannels, i: u32) -> f32 {
    return v;
}
