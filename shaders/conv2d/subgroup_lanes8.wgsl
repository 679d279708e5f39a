// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 8 lanes
// (lavapipe at 256 bits, Intel GPUs in SIMD8). Composed with `subgroup_channels2.wgsl` (the
// channels each lane keeps) before the body, which is the same for every width.

const LANES: u32 = 8u;

// Adds `broadcast(x, j) * w` to accumulator j for every lane j, a run of lanes at a time
// (the subgroup_terms_* pieces).
@diagnostic(off, subgroup_uniformity)
fn add_lane_terms(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    add_lanes_0_3(acc, x, w, live, masked);
    add_lanes_4_7(acc, x, w, live, masked);
}
