// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 4 lanes
// (SwiftShader, lavapipe at 128 bits). Composed with `subgroup_channels4.wgsl` (the channels each
// lane keeps) before the body, which is the same for every width.

const LANES: u32 = 4u;

// Adds `broadcast(x, j) * w` to accumulator j for every lane j, a run of lanes at a time
// (the subgroup_terms_* pieces).
@diagnostic(off, subgroup_uniformity)
fn add_lane_terms(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    add_lanes_0_3(acc, x, w, live, masked);
}
