//! A device copy through a compute shader: the bench's measure of how fast a kernel can move bytes.

use crate::error::{invalid, Result};
use crate::gpu::kernels::Kernel;
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::{check_binding, check_whole, submit, Dispatch, Resource};
use crate::gpu::runtime::uniforms::uniform_struct;
use crate::gpu::GpuTensor;

uniform_struct! {
    /// Mirrors `CopyUniforms` in `shaders/shader_copy.wgsl`.
    pub struct CopyUniforms {
        vec4s, invocations, _pad0, _pad1,
    }
}

/// Vec4s each `copy_vec4` invocation copies (the shader's loop).
const VEC4S_PER_INVOCATION: usize = 4;

/// A copy of `src` (f32 values, any shape with a multiple of 4 elements) made by the
/// `copy_vec4` kernel, enqueued without waiting.
pub fn copy_through_shader(src: &GpuTensor) -> Result<GpuTensor> {
    const OP: &str = "copy_through_shader";
    let gpu = src.gpu();
    src.expect_values(OP)?;
    let floats: usize = src.shape().iter().product();
    if !floats.is_multiple_of(4) {
        return Err(invalid(
            OP,
            format!(
                "src of shape {:?} has {floats} elements, not a multiple of 4",
                src.shape()
            ),
        ));
    }
    check_binding(gpu, OP, "src", src.shape())?;
    check_whole(OP, &[("src", src)])?;
    let vec4s = floats / 4;
    let grid = DispatchGrid::for_invocations(
        OP,
        vec4s.div_ceil(VEC4S_PER_INVOCATION) as u64,
        gpu.limits().max_compute_workgroups_per_dimension,
    )?;
    let uniforms = CopyUniforms {
        vec4s: u32::try_from(vec4s)
            .map_err(|_| invalid(OP, format!("{vec4s} vec4s exceed u32")))?,
        invocations: grid.invocations,
        ..Default::default()
    };
    let kernel = Kernel::CopyVec4.compiled(gpu, OP)?;
    gpu.capture(OP, || -> Result<GpuTensor> {
        let dst = GpuTensor::uninit(gpu, OP, src.shape(), src.layout())?;
        submit(
            gpu,
            OP,
            &[Dispatch {
                kernel: &kernel,
                label: Kernel::CopyVec4.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                resources: Resource::buffers([src.first_buffer(), dst.first_buffer()]),
                grid,
            }],
        )?;
        Ok(dst)
    })?
}
