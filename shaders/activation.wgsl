// Elementwise activation backward: dst = grad_output * f'(z), from the saved output y or
// pre-activation z, with PyTorch's formulas (see Activation::backward on the host).
//
// One invocation per element; the host folds the range into a 3-D grid of 64-wide workgroups.

struct ActivationUniforms {
    len: u32,
    // 0 none, 1 ReLU, 2 sigmoid, 3 tanh, 4 leaky ReLU (slope in activation_slope, f32 bits).
    activation: u32,
    activation_slope: u32,
    // 1 when `saved` holds the activation's output y, 0 when it holds the pre-activation z.
    saved_is_output: u32,
    invocations: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> u: ActivationUniforms;
@group(0) @binding(1) var<storage, read> grad_output: array<f32>;
@group(0) @binding(2) var<storage, read> saved: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad_input: array<f32>;

@compute @workgroup_size(64)
fn activation_backward(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i >= u.invocations) {
        return;
    }
    let dy = grad_output[i];
    let v = saved[i];
    var dx = dy;
    switch u.activation {
        case 1u: {
            dx = select(dy, 0.0, v <= 0.0);
        }
        case 2u: {
            var y = v;
            if (u.saved_is_output == 0u) {
                y = select(1.0 / (1.0 + exp(-v)), v, is_nan(v));
            }
            dx = dy * (y * (1.0 - y));
        }
        case 3u: {
            var y = v;
            if (u.saved_is_output == 0u) {
                y = select(tanh(clamp(v, -15.0, 15.0)), v, is_nan(v));
            }
            dx = dy * (1.0 - y * y);
        }
        case 4u: {
            dx = select(dy * bitcast<f32>(u.activation_slope), dy, v > 0.0);
        }
        default: {}
    }
    grad_input[i] = dx;
}
