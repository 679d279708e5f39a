// Lanes 16 to 31 of the subgroup kernels' broadcast step (see `add_lane_terms` in the
// subgroup_lanes{W}.wgsl pieces): one line per lane, because a broadcast's lane must be a
// constant.

@diagnostic(off, subgroup_uniformity)
fn add_lanes_16_31(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    (*acc).a[16] = add_term((*acc).a[16], subgroupBroadcast(x, 16u), w, live, 16u, masked);
    (*acc).a[17] = add_term((*acc).a[17], subgroupBroadcast(x, 17u), w, live, 17u, masked);
    (*acc).a[18] = add_term((*acc).a[18], subgroupBroadcast(x, 18u), w, live, 18u, masked);
    (*acc).a[19] = add_term((*acc).a[19], subgroupBroadcast(x, 19u), w, live, 19u, masked);
    (*acc).a[20] = add_term((*acc).a[20], subgroupBroadcast(x, 20u), w, live, 20u, masked);
    (*acc).a[21] = add_term((*acc).a[21], subgroupBroadcast(x, 21u), w, live, 21u, masked);
    (*acc).a[22] = add_term((*acc).a[22], subgroupBroadcast(x, 22u), w, live, 22u, masked);
    (*acc).a[23] = add_term((*acc).a[23], subgroupBroadcast(x, 23u), w, live, 23u, masked);
    (*acc).a[24] = add_term((*acc).a[24], subgroupBroadcast(x, 24u), w, live, 24u, masked);
    (*acc).a[25] = add_term((*acc).a[25], subgroupBroadcast(x, 25u), w, live, 25u, masked);
    (*acc).a[26] = add_term((*acc).a[26], subgroupBroadcast(x, 26u), w, live, 26u, masked);
    (*acc).a[27] = add_term((*acc).a[27], subgroupBroadcast(x, 27u), w, live, 27u, masked);
    (*acc).a[28] = add_term((*acc).a[28], subgroupBroadcast(x, 28u), w, live, 28u, masked);
    (*acc).a[29] = add_term((*acc).a[29], subgroupBroadcast(x, 29u), w, live, 29u, masked);
    (*acc).a[30] = add_term((*acc).a[30], subgroupBroadcast(x, 30u), w, live, 30u, masked);
    (*acc).a[31] = add_term((*acc).a[31], subgroupBroadcast(x, 31u), w, live, 31u, masked);
}
