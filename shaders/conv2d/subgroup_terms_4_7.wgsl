// Lanes 4 to 7 of the subgroup kernels' broadcast step (see `add_lane_terms` in the
// subgroup_lanes{W}.wgsl pieces): one line per lane, because a broadcast's lane must be a
// constant.

@diagnostic(off, subgroup_uniformity)
fn add_lanes_4_7(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    (*acc).a[4] = add_term((*acc).a[4], subgroupBroadcast(x, 4u), w, live, 4u, masked);
    (*acc).a[5] = add_term((*acc).a[5], subgroupBroadcast(x, 5u), w, live, 5u, masked);
    (*acc).a[6] = add_term((*acc).a[6], subgroupBroadcast(x, 6u), w, live, 6u, masked);
    (*acc).a[7] = add_term((*acc).a[7], subgroupBroadcast(x, 7u), w, live, 7u, masked);
}
