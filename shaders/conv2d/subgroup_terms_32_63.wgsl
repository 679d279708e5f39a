// Lanes 32 to 63 of the subgroup kernels' broadcast step (see `add_lane_terms` in the
// subgroup_lanes{W}.wgsl pieces): one line per lane, because a broadcast's lane must be a
// constant.

@diagnostic(off, subgroup_uniformity)
fn add_lanes_32_63(acc: ptr<function, Acc>, x: f32, w: LaneChannels, live: vec4<u32>, masked: bool) {
    (*acc).a[32] = add_term((*acc).a[32], subgroupBroadcast(x, 32u), w, live, 32u, masked);
    (*acc).a[33] = add_term((*acc).a[33], subgroupBroadcast(x, 33u), w, live, 33u, masked);
    (*acc).a[34] = add_term((*acc).a[34], subgroupBroadcast(x, 34u), w, live, 34u, masked);
    (*acc).a[35] = add_term((*acc).a[35], subgroupBroadcast(x, 35u), w, live, 35u, masked);
    (*acc).a[36] = add_term((*acc).a[36], subgroupBroadcast(x, 36u), w, live, 36u, masked);
    (*acc).a[37] = add_term((*acc).a[37], subgroupBroadcast(x, 37u), w, live, 37u, masked);
    (*acc).a[38] = add_term((*acc).a[38], subgroupBroadcast(x, 38u), w, live, 38u, masked);
    (*acc).a[39] = add_term((*acc).a[39], subgroupBroadcast(x, 39u), w, live, 39u, masked);
    (*acc).a[40] = add_term((*acc).a[40], subgroupBroadcast(x, 40u), w, live, 40u, masked);
    (*acc).a[41] = add_term((*acc).a[41], subgroupBroadcast(x, 41u), w, live, 41u, masked);
    (*acc).a[42] = add_term((*acc).a[42], subgroupBroadcast(x, 42u), w, live, 42u, masked);
    (*acc).a[43] = add_term((*acc).a[43], subgroupBroadcast(x, 43u), w, live, 43u, masked);
    (*acc).a[44] = add_term((*acc).a[44], subgroupBroadcast(x, 44u), w, live, 44u, masked);
    (*acc).a[45] = add_term((*acc).a[45], subgroupBroadcast(x, 45u), w, live, 45u, masked);
    (*acc).a[46] = add_term((*acc).a[46], subgroupBroadcast(x, 46u), w, live, 46u, masked);
    (*acc).a[47] = add_term((*acc).a[47], subgroupBroadcast(x, 47u), w, live, 47u, masked);
    (*acc).a[48] = add_term((*acc).a[48], subgroupBroadcast(x, 48u), w, live, 48u, masked);
    (*acc).a[49] = add_term((*acc).a[49], subgroupBroadcast(x, 49u), w, live, 49u, masked);
    (*acc).a[50] = add_term((*acc).a[50], subgroupBroadcast(x, 50u), w, live, 50u, masked);
    (*acc).a[51] = add_term((*acc).a[51], subgroupBroadcast(x, 51u), w, live, 51u, masked);
    (*acc).a[52] = add_term((*acc).a[52], subgroupBroadcast(x, 52u), w, live, 52u, masked);
    (*acc).a[53] = add_term((*acc).a[53], subgroupBroadcast(x, 53u), w, live, 53u, masked);
    (*acc).a[54] = add_term((*acc).a[54], subgroupBroadcast(x, 54u), w, live, 54u, masked);
    (*acc).a[55] = add_term((*acc).a[55], subgroupBroadcast(x, 55u), w, live, 55u, masked);
    (*acc).a[56] = add_term((*acc).a[56], subgroupBroadcast(x, 56u), w, live, 56u, masked);
    (*acc).a[57] = add_term((*acc).a[57], subgroupBroadcast(x, 57u), w, live, 57u, masked);
    (*acc).a[58] = add_term((*acc).a[58], subgroupBroadcast(x, 58u), w, live, 58u, masked);
    (*acc).a[59] = add_term((*acc).a[59], subgroupBroadcast(x, 59u), w, live, 59u, masked);
    (*acc).a[60] = add_term((*acc).a[60], subgroupBroadcast(x, 60u), w, live, 60u, masked);
    (*acc).a[61] = add_term((*acc).a[61], subgroupBroadcast(x, 61u), w, live, 61u, masked);
    (*acc).a[62] = add_term((*acc).a[62], subgroupBroadcast(x, 62u), w, live, 62u, masked);
    (*acc).a[63] = add_term((*acc).a[63], subgroupBroadcast(x, 63u), w, live, 63u, masked);
}
