// Parameter updates for training: accumulating a gradient, and one step of SGD in PyTorch's form
// (torch.optim.SGD, dampening 0, not Nesterov):
//   g = grad + weight_decay * w (only where weight_decay is not 0);
//   with momentum: v = momentum * v + g, w = w - lr * v; without: w = w - lr * g.
// PyTorch skips the terms whose factor is 0, and so must we: 0 * w is NaN for an infinite w.
// The host's reference is the CPU branch of `nn::tensor`'s steps, in the same f32 operation
// order, so both backends take the same steps.
//
// One invocation per element; the host folds the range into a 3-D grid of 64-wide workgroups.

struct OptimizerUniforms {
    invocations: u32,
    // f32 bits of the step's scalars.
    learning_rate: u32,
    momentum: u32,
    weight_decay: u32,
}

@group(0) @binding(0) var<uniform> u: OptimizerUniforms;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> velocity: array<f32>;

// weight += grad, where `weight` is the gradient accumulated so far.
@compute @workgroup_size(64)
fn accumulate_gradient(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i >= u.invocations) {
        return;
    }
    weight[i] = weight[i] + grad[i];
}

// The gradient with weight decay added, where there is any.
fn decayed(g: f32, w: f32) -> f32 {
    let weight_decay = bitcast<f32>(u.weight_decay);
    return select(g, g + weight_decay * w, weight_decay != 0.0);
}

// SGD without momentum: PyTorch keeps no momentum buffer then, so no velocity is bound.
@compute @workgroup_size(64)
fn sgd_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i >= u.invocations) {
        return;
    }
    let w = weight[i];
    weight[i] = w - bitcast<f32>(u.learning_rate) * decayed(grad[i], w);
}

@compute @workgroup_size(64)
fn sgd_momentum_step(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) local: u32,
) {
    let i = invocation_index(wg, groups, local);
    if (i >= u.invocations) {
        return;
    }
    let w = weight[i];
    let g = decayed(grad[i], w);
    let v = bitcast<f32>(u.momentum) * velocity[i] + g;
    velocity[i] = v;
    weight[i] = w - bitcast<f32>(u.learning_rate) * v;
}
