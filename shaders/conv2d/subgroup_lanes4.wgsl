// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 4 lanes
// (SwiftShader, lavapipe at 128 bits). Composed with `subgroup_channels4.wgsl` (the channels each
// lane keeps) before the body, which is the same for every width.

const LANES: u32 = 4u;

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
