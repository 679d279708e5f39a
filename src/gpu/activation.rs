//! Host side of the elementwise activation backward kernel.

use crate::activation::{Activation, SavedTensor};
use crate::error::{invalid, Result};
use crate::gpu::dispatch::DispatchGrid;
use crate::gpu::launch::{check_binding, check_same_gpu, submit, Dispatch};
use crate::gpu::pipelines::{compiled, Kernel};
use crate::gpu::split;
use crate::gpu::uniforms::ActivationUniforms;
use crate::gpu::GpuTensor;

/// `grad_output * f'(z)` elementwise on the GPU, from the saved forward tensor: the output of
/// [`crate::conv2d_with_activation`] (`SavedTensor::Output`) or the same conv without its
/// activation (`SavedTensor::PreActivation`). The result has grad_output's shape and layout; a
/// training step needs no CPU round trip.
pub fn activation_backward(
    grad_output: &GpuTensor,
    saved_tensor: &GpuTensor,
    activation: Activation,
    saved: SavedTensor,
) -> Result<GpuTensor> {
    const OP: &str = "activation_backward";
    let gpu = grad_output.gpu();
    check_same_gpu(gpu, OP, &[saved_tensor])?;
    activation.check_saved(OP, saved)?;
    grad_output.expect_values(OP)?;
    saved_tensor.expect_values(OP)?;
    if grad_output.shape() != saved_tensor.shape() || grad_output.layout() != saved_tensor.layout()
    {
        return Err(invalid(
            OP,
            format!(
                "grad_output ({:?}, {:?}) and the saved tensor ({:?}, {:?}) must have one shape and layout",
                grad_output.shape(),
                grad_output.layout(),
                saved_tensor.shape(),
                saved_tensor.layout()
            ),
        ));
    }
    if split::needed(gpu, &[grad_output.shape()]) && grad_output.shape().len() == 4 {
        let inputs = [("grad_output", grad_output), ("saved", saved_tensor)];
        return split::over_batch(gpu, OP, &inputs, grad_output.shape(), |t| {
            activation_backward(&t[0], &t[1], activation, saved)
        });
    }
    check_binding(gpu, OP, "grad_output", grad_output.shape())?;
    let grid = DispatchGrid::for_invocations(
        OP,
        grad_output.len() as u64,
        gpu.limits().max_compute_workgroups_per_dimension,
    )?;
    let (code, slope) = activation.code();
    let uniforms = ActivationUniforms {
        len: grid.invocations,
        activation: code,
        activation_slope: slope,
        saved_is_output: u32::from(saved == SavedTensor::Output),
        invocations: grid.invocations,
        ..Default::default()
    };
    let kernel = compiled(gpu, OP, Kernel::ActivationBackward)?;
    gpu.capture(OP, || -> Result<GpuTensor> {
        let dx = GpuTensor::uninit(gpu, OP, grad_output.shape(), grad_output.layout())?;
        submit(
            gpu,
            OP,
            &[Dispatch {
                kernel: &kernel,
                label: Kernel::ActivationBackward.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                buffers: vec![grad_output.buffer(), saved_tensor.buffer(), dx.buffer()],
                grid,
            }],
        )?;
        Ok(dx)
    })?
}
