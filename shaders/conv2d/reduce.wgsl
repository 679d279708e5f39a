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

// The partial sums and the destination as whole vec4s, for reduce_partials_vec4. WGSL lets
// them share src_a's and dst's bindings as long as no entry point uses both views.
@group(0) @binding(1) var<storage, read> partials_vec4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst_vec4: array<vec4<f32>>;

// reduce_partials four neighbouring elements at a time, where reduce_len is a multiple of 4
// (the host checks): invocation s * reduce_len / 4 + e adds vec4 e of every block of run s,
// in block order, as reduce_partials adds each of its elements. lavapipe runs every load and
// store lane by lane, so a vec4 per load is a quarter of them; a GPU coalesces them either way.
@compute @workgroup_size(64)
fn reduce_partials_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let len4 = u.reduce_len / 4u;
    let run = index / len4;
    let element = index - run * len4;
    let first = run * u.reduce_segment;
    let end = min(first + u.reduce_segment, u.blocks);
    var acc = vec4<f32>(0.0);
    for (var b = first; b < end; b++) {
        acc += partials_vec4[b * len4 + element];
    }
    dst_vec4[index] = acc;
}
