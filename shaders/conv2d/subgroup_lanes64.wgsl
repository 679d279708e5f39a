// The lane width of the subgroup kernels in `subgroup.wgsl`: subgroups of exactly 64 lanes (AMD
// GCN and RDNA in wave64). Composed with `subgroup_channels1.wgsl` (the channels each lane keeps)
// before the body, which is the same for every width.

const LANES: u32 = 64u;

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
