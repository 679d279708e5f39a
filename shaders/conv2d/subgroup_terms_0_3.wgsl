// Lanes 0 to 3 of the subgroup kernels' broadcast step (see `add_lane_terms` in the
// subgroup_lanes{W}.wgsl pieces): one line per lane, because a broadcast's lane must be a
// constant.

@diagnostic(off, subgroup_uniformity)
fn add_lanes_0_3(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    (*acc).a[0] = add_term((*acc).a[0], subgroupBroadcast(x, 0u), w, live, 0u, masked);
    (*acc).a[1] = add_term((*acc).a[1], subgroupBroadcast(x, 1u), w, live, 1u, masked);
    (*acc).a[2] = add_term((*acc).a[2], subgroupBroadcast(x, 2u), w, live, 2u, masked);
    (*acc).a[3] = add_term((*acc).a[3], subgroupBroadcast(x, 3u), w, live, 3u, masked);
}
