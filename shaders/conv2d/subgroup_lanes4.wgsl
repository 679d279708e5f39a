// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 4 lanes
// (SwiftShader, lavapipe at 128 bits): four channels per lane (a vec4), tiles of 4 columns x 16
// channels. Composed before the body, which is the same for every width.

const LANES: u32 = 4u;
// Channels each lane accumulates for every column of the tile.
const CHANNELS_PER_LANE: u32 = 4u;
alias LaneChannels = vec4<f32>;
alias LaneBits = vec4<u32>;
alias LaneOffsets = vec4<u32>;

// One lane's accumulators, a[j] for column j of the tile, and the largest exponent field
// among the operands it multiplied by broadcast values: all ones means an infinity or NaN.
struct Acc {
    a: array<LaneChannels, 4>,
    exponents: LaneBits,
}

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
}
