// Lanes 8 to 15 of the subgroup kernels' broadcast step (see `add_lane_terms` in the
// subgroup_lanes{W}.wgsl pieces): one line per lane, because a broadcast's lane must be a
// constant.

@diagnostic(off, subgroup_uniformity)
fn add_lanes_8_15(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    (*acc).a[8] = add_term((*acc).a[8], subgroupBroadcast(x, 8u), w, live, 8u, masked);
    (*acc).a[9] = add_term((*acc).a[9], subgroupBroadcast(x, 9u), w, live, 9u, masked);
    (*acc).a[10] = add_term((*acc).a[10], subgroupBroadcast(x, 10u), w, live, 10u, masked);
    (*acc).a[11] = add_term((*acc).a[11], subgroupBroadcast(x, 11u), w, live, 11u, masked);
    (*acc).a[12] = add_term((*acc).a[12], subgroupBroadcast(x, 12u), w, live, 12u, masked);
    (*acc).a[13] = add_term((*acc).a[13], subgroupBroadcast(x, 13u), w, live, 13u, masked);
    (*acc).a[14] = add_term((*acc).a[14], subgroupBroadcast(x, 14u), w, live, 14u, masked);
    (*acc).a[15] = add_term((*acc).a[15], subgroupBroadcast(x, 15u), w, live, 15u, masked);
}
