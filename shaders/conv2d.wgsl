// conv2d kernels: NCHW input, OIHW weights, cross-correlation, PyTorch padding semantics.
//
// Work mapping of `conv2d_forward`: one invocation computes OC_TILE output channels of one group
// at one output pixel, so each input value it loads feeds OC_TILE multiply-adds. Invocations are
// numbered with the output column fastest, then the row, the channel tile and the sample, so the
// lanes of a workgroup read neighbouring input columns while their weight loads are uniform.
// The host folds the 1-D range of invocations into a 3-D grid of 64-wide workgroups to stay
// under the per-dimension dispatch limit; `invocation_index` undoes the folding.

struct Conv2dUniforms {
    batch: u32,
    in_channels: u32,
    in_h: u32,
    in_w: u32,
    out_channels: u32,
    kernel_h: u32,
    kernel_w: u32,
    groups: u32,
    stride_h: u32,
    stride_w: u32,
    dilation_h: u32,
    dilation_w: u32,
    pad_top: u32,
    pad_left: u32,
    out_h: u32,
    out_w: u32,
    in_channels_per_group: u32,
    out_channels_per_group: u32,
    channel_tiles_per_group: u32,
    has_bias: u32,
    invocations: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: Conv2dUniforms;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;

const WORKGROUP_SIZE: u32 = 64u;
const OC_TILE: u32 = 4u;

fn invocation_index(wg: vec3<u32>, groups: vec3<u32>, local: u32) -> u32 {
    return ((wg.z * groups.y + wg.y) * groups.x + wg.x) * WORKGROUP_SIZE + local;
}

@compute @workgroup_size(64)
fn conv2d_forward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let index = invocation_index(wg, groups, local);
    if (index >= u.invocations) {
        return;
    }
    let ox = index % u.out_w;
    var rest = index / u.out_w;
    let oy = rest % u.out_h;
    rest = rest / u.out_h;
    let tiles = u.groups * u.channel_tiles_per_group;
    let tile = rest % tiles;
    let n = rest / tiles;
    let g = tile / u.channel_tiles_per_group;
    let first_in_group = (tile % u.channel_tiles_per_group) * OC_TILE;
    let oc0 = g * u.out_channels_per_group + first_in_group;
    // Channels of the tile past the end of the group repeat the last live one: their loads stay
    // in bounds and their results are never written.
    let live = min(OC_TILE, u.out_channels_per_group - first_in_group);
    let taps = u.kernel_h * u.kernel_w;
    let weights_per_channel = u.in_channels_per_group * taps;
    let w1 = min(1u, live - 1u) * weights_per_channel;
    let w2 = min(2u, live - 1u) * weights_per_channel;
    let w3 = min(3u, live - 1u) * weights_per_channel;

    let iy0 = i32(oy * u.stride_h) - i32(u.pad_top);
    let ix0 = i32(ox * u.stride_w) - i32(u.pad_left);
    var acc = vec4<f32>(0.0);
    for (var ci = 0u; ci < u.in_channels_per_group; ci++) {
        let plane = (n * u.in_channels + g * u.in_channels_per_group + ci) * u.in_h;
        let w_base = (oc0 * u.in_channels_per_group + ci) * taps;
        for (var ky = 0u; ky < u.kernel_h; ky++) {
            let iy = iy0 + i32(ky * u.dilation_h);
            if (iy < 0 || iy >= i32(u.in_h)) {
                continue;
            }
            let row = (plane + u32(iy)) * u.in_w;
            let w_row = w_base + ky * u.kernel_w;
            for (var kx = 0u; kx < u.kernel_w; kx++) {
                let ix = ix0 + i32(kx * u.dilation_w);
                if (ix < 0 || ix >= i32(u.in_w)) {
                    continue;
                }
                let x = input[row + u32(ix)];
                let wi = w_row + kx;
                acc += x * vec4<f32>(weight[wi], weight[wi + w1], weight[wi + w2], weight[wi + w3]);
            }
        }
    }
    if (u.has_bias != 0u) {
        acc += vec4<f32>(
            bias[oc0],
            bias[oc0 + min(1u, live - 1u)],
            bias[oc0 + min(2u, live - 1u)],
            bias[oc0 + min(3u, live - 1u)],
        );
    }
    let plane_size = u.out_h * u.out_w;
    let out0 = (n * u.out_channels + oc0) * plane_size + oy * u.out_w + ox;
    for (var j = 0u; j < live; j++) {
        output[out0 + j * plane_size] = acc[j];
    }
}
