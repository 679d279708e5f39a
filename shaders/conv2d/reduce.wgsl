// Pass 2 of the blocked reductions behind every weight and bias gradient (and the sums of a
// split gradient's parts): partial sums added in block order, so results are bitwise
// reproducible.

// Pass 2 of the blocked reductions: src_a = partial sums [blocks, reduce_len],
// dst = result [reduce_len]. One invocation per result element adds its partials in block order.
@compute @workgroup_size(64)
fn reduce_partials(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    var acc = 0.0;
    for (var b = 0u; b < u.blocks; b++) {
        acc += src_a[b * u.reduce_len + index];
    }
    dst[index] = acc;
}
