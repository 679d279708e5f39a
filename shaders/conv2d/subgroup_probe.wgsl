// Checks what the subgroup kernels assume of a subgroup of the width the adapter reports:
// that a workgroup's invocations form subgroups of `subgroup_size` consecutive local indices,
// lane i being local index i of its block, and that every lane reads every other lane's value.
// (lavapipe at 1024 bits reports 32 lanes and runs 16.) One workgroup; invocation `local`
// writes its lane, the subgroup size, the first lane's local index (broadcast-first) and the
// last lane's (a shuffle from lane size - 1); the host compares them with what they must be.

struct SubgroupProbeUniforms {
    invocations: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: SubgroupProbeUniforms;
@group(0) @binding(1) var<storage, read_write> seen: array<vec4<u32>>;

@compute @workgroup_size(64)
@diagnostic(off, subgroup_uniformity)
fn subgroup_probe(
    @builtin(local_invocation_index) local: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) size: u32,
) {
    if (local >= u.invocations) {
        return;
    }
    let first = subgroupBroadcastFirst(local);
    let last = subgroupShuffle(local, size - 1u);
    seen[local] = vec4<u32>(lane, size, first, last);
}
