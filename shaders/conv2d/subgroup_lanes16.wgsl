// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 16 lanes
// (lavapipe at 512 bits, Intel GPUs in SIMD16): two channels per lane (a vec2), tiles of 16
// columns x 32 channels (one channel per lane ran 1.3x slower on lavapipe, four no faster).
// Composed before the body, which is the same for every width.

const LANES: u32 = 16u;
// Channels each lane accumulates for every column of the tile.
const CHANNELS_PER_LANE: u32 = 2u;
alias LaneChannels = vec2<f32>;
alias LaneBits = vec2<u32>;
alias LaneOffsets = vec2<u32>;

// One lane's accumulators, a[j] for column j of the tile, and the largest exponent field
// among the operands it multiplied by broadcast values: all ones means an infinity or NaN.
struct Acc {
    a: array<LaneChannels, 16>,
    exponents: LaneBits,
}

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

// Adds `broadcast(x, j) * w` to accumulator j for every lane j; one line per lane, because a
// broadcast's lane must be a constant.
@diagnostic(off, subgroup_uniformity)
fn accumulate(acc: ptr<function, Acc>, x: f32, w: LaneChannels, ok: bool, masked: bool) {
    note_exponents(acc, w);
    let live = live_lanes(ok, masked);
    (*acc).a[0] = add_term((*acc).a[0], subgroupBroadcast(x, 0u), w, live, 0u, masked);
    (*acc).a[1] = add_term((*acc).a[1], subgroupBroadcast(x, 1u), w, live, 1u, masked);
    (*acc).a[2] = add_term((*acc).a[2], subgroupBroadcast(x, 2u), w, live, 2u, masked);
    (*acc).a[3] = add_term((*acc).a[3], subgroupBroadcast(x, 3u), w, live, 3u, masked);
    (*acc).a[4] = add_term((*acc).a[4], subgroupBroadcast(x, 4u), w, live, 4u, masked);
    (*acc).a[5] = add_term((*acc).a[5], subgroupBroadcast(x, 5u), w, live, 5u, masked);
    (*acc).a[6] = add_term((*acc).a[6], subgroupBroadcast(x, 6u), w, live, 6u, masked);
    (*acc).a[7] = add_term((*acc).a[7], subgroupBroadcast(x, 7u), w, live, 7u, masked);
    (*acc).a[8] = add_term((*acc).a[8], subgroupBroadcast(x, 8u), w, live, 8u, masked);
    (*acc).a[9] = add_term((*acc).a[9], subgroupBroadcast(x, 9u), w, live, 9u, masked);
    (*acc).a[10] = add_term((*acc).a[10], subgroupBroadcast(x, 10u), w, live, 10u, masked);
    (*acc).a[11] = add_term((*acc).a[11], subgroupBroadcast(x, 11u), w, live, 11u, masked);
    (*acc).a[12] = add_term((*acc).a[12], subgroupBroadcast(x, 12u), w, live, 12u, masked);
    (*acc).a[13] = add_term((*acc).a[13], subgroupBroadcast(x, 13u), w, live, 13u, masked);
    (*acc).a[14] = add_term((*acc).a[14], subgroupBroadcast(x, 14u), w, live, 14u, masked);
    (*acc).a[15] = add_term((*acc).a[15], subgroupBroadcast(x, 15u), w, live, 15u, masked);
}
