//! Host side of the parameter-update kernels (`shaders/optimizer.wgsl`): gradient accumulation
//! and SGD, in place on the parameter's own buffers (copied first where a clone shares them).

use crate::error::Result;
use crate::gpu::kernels::Kernel;
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::{check_same_gpu, check_whole, submit, Dispatch, Resource};
use crate::gpu::runtime::uniforms::uniform_struct;
use crate::gpu::split::copy::copy_flat;
use crate::gpu::GpuTensor;
use crate::params::check_same_shape;

uniform_struct! {
    /// Mirrors `OptimizerUniforms` in `shaders/optimizer.wgsl`.
    pub struct OptimizerUniforms {
        invocations, learning_rate, momentum, weight_decay,
    }
}

/// The scalars of one SGD step, PyTorch's `torch.optim.SGD` without dampening or Nesterov.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    /// The learning rate.
    pub learning_rate: f32,
    /// The momentum factor (0 for plain SGD).
    pub momentum: f32,
    /// L2 penalty added to the gradient (`weight_decay * w`).
    pub weight_decay: f32,
}

/// `Err` unless the tensors hold f32 values of one shape on one device, in one buffer each.
fn check_operands(op: &'static str, named: &[(&str, &GpuTensor)]) -> Result<()> {
    let (_, first) = named[0];
    let others: Vec<&GpuTensor> = named[1..].iter().map(|(_, t)| *t).collect();
    check_same_gpu(first.gpu(), op, &others)?;
    for (_, t) in named {
        t.expect_values(op)?;
    }
    let shapes: Vec<(&str, &[usize])> = named.iter().map(|&(n, t)| (n, t.shape())).collect();
    check_same_shape(op, &shapes)?;
    check_whole(op, named)
}

/// Gives `tensor` buffers of its own, copying its values, when a clone shares them: the updates
/// in place below then reach no other handle (a clone keeps the values it had, as on the CPU
/// backend, where a clone is a copy), and no operand they read can be the buffer they write
/// (wgpu refuses a buffer bound both read-only and read-write).
fn make_unique(op: &'static str, tensor: &mut GpuTensor) -> Result<()> {
    if !tensor.is_shared() {
        return Ok(());
    }
    let gpu = tensor.gpu().clone();
    let copy = gpu.capture(op, || {
        GpuTensor::uninit(&gpu, op, tensor.shape(), tensor.layout())
    })??;
    copy_flat(&gpu, op, tensor, 0, &copy, 0, tensor.len())?;
    *tensor = copy;
    Ok(())
}

/// `into += grad`, elementwise, in place (in a copy first if a clone shares `into`'s buffers).
pub(crate) fn accumulate_gradient(into: &mut GpuTensor, grad: &GpuTensor) -> Result<()> {
    const OP: &str = "accumulate_gradient";
    check_operands(OP, &[("accumulated gradient", into), ("gradient", grad)])?;
    make_unique(OP, into)?;
    into.contents_changed();
    dispatch(
        OP,
        Kernel::AccumulateGradient,
        into,
        OptimizerUniforms::default(),
        Resource::buffers([grad.first_buffer(), into.first_buffer()]),
    )
}

/// One SGD step without momentum, in place: `w -= learning_rate * g`, `g = grad + weight_decay
/// * w` where `weight_decay` is not 0 (PyTorch skips the term, which is NaN for an infinite w).
pub(crate) fn sgd_step(weight: &mut GpuTensor, grad: &GpuTensor, step: SgdStep) -> Result<()> {
    const OP: &str = "sgd_step";
    check_operands(OP, &[("weight", weight), ("gradient", grad)])?;
    make_unique(OP, weight)?;
    weight.contents_changed();
    let uniforms = OptimizerUniforms {
        learning_rate: step.learning_rate.to_bits(),
        weight_decay: step.weight_decay.to_bits(),
        ..Default::default()
    };
    dispatch(
        OP,
        Kernel::SgdStep,
        weight,
        uniforms,
        Resource::buffers([grad.first_buffer(), weight.first_buffer()]),
    )
}

/// One SGD-with-momentum step, in place: `g` as in [`sgd_step`], `v = momentum * v + g`,
/// `w -= learning_rate * v`. PyTorch's first momentum step sets `v = g`: the caller passes a
/// zero `velocity` with `momentum` 0 for it.
pub(crate) fn sgd_momentum_step(
    weight: &mut GpuTensor,
    velocity: &mut GpuTensor,
    grad: &GpuTensor,
    step: SgdStep,
) -> Result<()> {
    const OP: &str = "sgd_momentum_step";
    check_operands(
        OP,
        &[
            ("weight", weight),
            ("velocity", velocity),
            ("gradient", grad),
        ],
    )?;
    make_unique(OP, weight)?;
    make_unique(OP, velocity)?;
    // Before the dispatch, so that nothing derived from the old values outlives an error.
    weight.contents_changed();
    velocity.contents_changed();
    let uniforms = OptimizerUniforms {
        learning_rate: step.learning_rate.to_bits(),
        momentum: step.momentum.to_bits(),
        weight_decay: step.weight_decay.to_bits(),
        ..Default::default()
    };
    dispatch(
        OP,
        Kernel::SgdMomentumStep,
        weight,
        uniforms,
        Resource::buffers([
            grad.first_buffer(),
            weight.first_buffer(),
            velocity.first_buffer(),
        ]),
    )
}

/// One dispatch of `kernel` over `target`'s elements, with `resources` after the uniforms.
fn dispatch(
    op: &'static str,
    kernel: Kernel,
    target: &GpuTensor,
    mut uniforms: OptimizerUniforms,
    resources: Vec<Resource<'_>>,
) -> Result<()> {
    if target.is_empty() {
        return Ok(());
    }
    let gpu = target.gpu();
    let grid = DispatchGrid::for_invocations(
        op,
        target.len() as u64,
        gpu.limits().max_compute_workgroups_per_dimension,
    )?;
    uniforms.invocations = grid.invocations;
    let compiled = kernel.compiled(gpu, op)?;
    gpu.capture(op, || {
        submit(
            gpu,
            op,
            &[Dispatch {
                kernel: &compiled,
                label: kernel.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                resources,
                grid,
            }],
        )
    })?
}
