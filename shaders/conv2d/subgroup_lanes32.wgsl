// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 32 lanes
// (lavapipe at 1024 bits as reported; NVIDIA, Apple and AMD RDNA in wave32). Composed with
// `subgroup_channels1.wgsl` (the channels each lane keeps) before the body, which is the same for
// every width.

const LANES: u32 = 32u;

// Adds `broadcast(x, j) * w` to accumulator j for every lane j, a run of lanes at a time
// (the subgroup_terms_* pieces).
@diagnostic(off, subgroup_uniformity)
fn add_lane_terms(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    add_lanes_0_3(acc, x, w, live, masked);
    add_lanes_4_7(acc, x, w, live, masked);
    add_lanes_8_15(acc, x, w, live, masked);
    add_lanes_16_31(acc, x, w, live, masked);
}
