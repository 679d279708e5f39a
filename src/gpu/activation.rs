//! Host side of the elementwise activation backward kernel.

use crate::activation::{Activation, SavedTensor};
use crate::error::{invalid, Result};
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::memory::{self, MemoryEstimate};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::{
    check_binding, check_same_gpu, check_whole, submit, Dispatch, Resource,
};
use crate::gpu::runtime::uniforms::uniform_struct;
use crate::gpu::split;
use crate::gpu::split::flat::Elementwise;
use crate::gpu::{Gpu, GpuTensor};

uniform_struct! {
    /// Mirrors `ActivationUniforms` in `shaders/activation.wgsl`.
    pub struct ActivationUniforms {
        len, activation, activation_slope, saved_is_output,
        invocations, _pad0, _pad1, _pad2,
    }
}

/// The peak bytes of the kernel on tensors of `shape` unsplit: the result and uniforms.
fn whole_bytes(gpu: &Gpu, shape: &[usize]) -> u64 {
    memory::tensor_bytes(gpu, shape)
        + memory::uniform_bytes(gpu, std::mem::size_of::<ActivationUniforms>())
}

/// The call as chunks of elements, should it split.
fn chunked<'a>(shape: &'a [usize], inner: &'a dyn Fn(usize) -> u64) -> Elementwise<'a> {
    Elementwise {
        op: "activation_backward",
        shape,
        operands: 2,
        inner,
    }
}

/// [`crate::gpu::Gpu::memory_required`] for activation_backward.
pub(crate) fn memory(gpu: &Gpu, shape: &[usize]) -> Result<MemoryEstimate> {
    const OP: &str = "activation_backward";
    if shape.is_empty() || shape.contains(&0) {
        return Err(invalid(
            OP,
            format!("tensor shape {shape:?} has a zero-sized dimension"),
        ));
    }
    let output_bytes = memory::tensor_bytes(gpu, shape);
    let avail = gpu.memory_available();
    let (peak_bytes, pieces) =
        if split::needed(gpu, &[shape], avail, || Ok(whole_bytes(gpu, shape)))? {
            let inner = |n| whole_bytes(gpu, &[n]);
            chunked(shape, &inner).peak(gpu, avail)?
        } else {
            check_binding(gpu, OP, "grad_output", shape)?;
            (whole_bytes(gpu, shape), 1)
        };
    Ok(MemoryEstimate {
        peak_bytes,
        output_bytes,
        pieces,
    })
}

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
    let shape = grad_output.shape();
    if split::needed(gpu, &[shape], gpu.memory_available(), || {
        Ok(whole_bytes(gpu, shape))
    })? {
        // Elementwise: chunks of any elements, so one sample past the limit splits too.
        let inner = |n| whole_bytes(gpu, &[n]);
        return chunked(shape, &inner).run(gpu, &[grad_output, saved_tensor], |t| {
            activation_backward(&t[0], &t[1], activation, saved)
        });
    }
    check_binding(gpu, OP, "grad_output", grad_output.shape())?;
    check_whole(
        OP,
        &[("grad_output", grad_output), ("saved tensor", saved_tensor)],
    )?;
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
    let kernel = Kernel::ActivationBackward.compiled(gpu, OP)?;
    gpu.capture(OP, || -> Result<GpuTensor> {
        let dx = GpuTensor::uninit(gpu, OP, grad_output.shape(), grad_output.layout())?;
        check_whole(OP, &[("grad_input", &dx)])?;
        submit(
            gpu,
            OP,
            &[Dispatch {
                kernel: &kernel,
                label: Kernel::ActivationBackward.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                resources: Resource::buffers([
                    grad_output.first_buffer(),
                    saved_tensor.first_buffer(),
                    dx.first_buffer(),
                ]),
                grid,
            }],
        )?;
        Ok(dx)
    })?
}
