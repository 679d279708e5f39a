// A plain copy through a compute shader: the fastest a kernel moves bytes on this device, which
// `wgconv bench` sets beside the memory-bound pooling kernels (next to copy_buffer_to_buffer,
// which on a CPU adapter is a memcpy no shader can match).
//
// One invocation copies four consecutive vec4s (measured on lavapipe as the fastest of one,
// four and sixteen floats per invocation); the host folds the range into a 3-D grid of 64-wide
// workgroups.

struct CopyUniforms {
    vec4s: u32,
    invocations: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> u: CopyUniforms;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(64)
fn copy_vec4(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    // Straight-line, from clamped indices: past the end the last vec4 is copied again (the
    // same value), which costs less on lavapipe than a loop or a branch per vec4.
    let first = 4u * index;
    let last = u.vec4s - 1u;
    let i1 = min(first + 1u, last);
    let i2 = min(first + 2u, last);
    let i3 = min(first + 3u, last);
    dst[first] = src[first];
    dst[i1] = src[i1];
    dst[i2] = src[i2];
    dst[i3] = src[i3];
}
