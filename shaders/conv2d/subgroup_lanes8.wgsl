// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 8 lanes
// (lavapipe at 256 bits, Intel GPUs in SIMD8). Composed with `subgroup_channels2.wgsl` (the
// channels each lane keeps) before the body, which is the same for every width.

const LANES: u32 = 8u;

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
}
