// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 32 lanes
// (lavapipe at 1024 bits as reported; NVIDIA, Apple and AMD RDNA in wave32). Composed with
// `subgroup_channels1.wgsl` (the channels each lane keeps) before the body, which is the same for
// every width.

const LANES: u32 = 32u;

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
    (*acc).a[8] = add_term((*acc).a[8], subgroupBroadcast(x, 8u), w, live, 8u, masked);
    (*acc).a[9] = add_term((*acc).a[9], subgroupBroadcast(x, 9u), w, live, 9u, masked);
    (*acc).a[10] = add_term((*acc).a[10], subgroupBroadcast(x, 10u), w, live, 10u, masked);
    (*acc).a[11] = add_term((*acc).a[11], subgroupBroadcast(x, 11u), w, live, 11u, masked);
    (*acc).a[12] = add_term((*acc).a[12], subgroupBroadcast(x, 12u), w, live, 12u, masked);
    (*acc).a[13] = add_term((*acc).a[13], subgroupBroadcast(x, 13u), w, live, 13u, masked);
    (*acc).a[14] = add_term((*acc).a[14], subgroupBroadcast(x, 14u), w, live, 14u, masked);
    (*acc).a[15] = add_term((*acc).a[15], subgroupBroadcast(x, 15u), w, live, 15u, masked);
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
