// Pass 2 of the blocked reductions behind every weight and bias gradient (and the sums of a
// split gradient's parts): partial sums added in a fixed order, so results are bitwise
// reproducible.
//
// A pass adds runs of reduce_segment consecutive blocks: src_a = partial sums
// [blocks, reduce_len], dst = [ceil(blocks / reduce_segment), reduce_len]; invocation
// s * reduce_len + e adds the blocks of run s of element e, in block order. One run (a
// segment of every block) is the whole sum; shorter runs make a tree of passes, each adding
// a few partials of every element, so that a few outputs over many blocks still give a large
// GPU enough invocations, each with a short chain of dependent adds.
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
    let run = index / u.reduce_len;
    let element = index - run * u.reduce_len;
    let first = run * u.reduce_segment;
    let end = min(first + u.reduce_segment, u.blocks);
    var acc = 0.0;
    for (var b = first; b < end; b++) {
        acc += src_a[b * u.reduce_len + element];
    }
    dst[index] = acc;
}
