// Where an invocation sits in a dispatch. The host folds a 1-D range of invocations into a 3-D
// grid of 64-wide workgroups to stay under the per-dimension dispatch limit (`DispatchGrid`);
// these undo the folding.

const WORKGROUP_SIZE: u32 = 64u;

fn workgroup_index(wg: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (wg.z * groups.y + wg.y) * groups.x + wg.x;
}

fn invocation_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return workgroup_index(wg, groups) * WORKGROUP_SIZE + local;
}
