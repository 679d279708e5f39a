//! Host side of the conv2d kernels: validation, uniforms, dispatch.

use crate::error::Result;
use crate::gpu::dispatch::DispatchGrid;
use crate::gpu::launch::{check_binding, check_same_gpu, dims4, len1, submit, Dispatch};
use crate::gpu::pipelines::{compiled, Kernel};
use crate::gpu::uniforms::Conv2dUniforms;
use crate::gpu::GpuTensor;
use crate::params::{Conv2dGeometry, Conv2dParams};

const OP: &str = "conv2d";

/// Output channels each `conv2d_forward` invocation computes (`OC_TILE` in the shader).
pub const FORWARD_CHANNEL_TILE: usize = 4;

/// 2-D convolution on the GPU: NCHW `input`, OIHW `weight`, optional `bias` of length C_out.
///
/// Validates everything before touching the GPU, then enqueues the kernel and returns the
/// output tensor without waiting.
pub fn conv2d(
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    params: &Conv2dParams,
) -> Result<GpuTensor> {
    let gpu = input.gpu();
    check_same_gpu(gpu, OP, &[input, weight])?;
    if let Some(b) = bias {
        check_same_gpu(gpu, OP, &[b])?;
    }
    let bias_len = bias.map(|b| len1(OP, "bias", b)).transpose()?;
    let g = params.geometry(
        OP,
        dims4(OP, "input", input)?,
        dims4(OP, "weight", weight)?,
        bias_len,
    )?;
    check_binding(gpu, OP, "input", &g.input_shape())?;
    check_binding(gpu, OP, "weight", &g.weight_shape())?;
    check_binding(gpu, OP, "output", &g.output_shape())?;
    let grid = forward_grid(&g, gpu.limits().max_compute_workgroups_per_dimension)?;
    let uniforms = forward_uniforms(&g, bias.is_some(), grid.invocations);
    let kernel = compiled(gpu, OP, Kernel::Conv2dForward)?;
    gpu.capture(OP, || -> Result<GpuTensor> {
        let output = GpuTensor::uninit(gpu, OP, &g.output_shape())?;
        let bias_buffer = bias.map_or(&gpu.inner.placeholder, |b| b.buffer());
        submit(
            gpu,
            OP,
            &[Dispatch {
                kernel: &kernel,
                label: Kernel::Conv2dForward.entry_point(),
                uniforms: bytemuck::bytes_of(&uniforms),
                buffers: vec![
                    input.buffer(),
                    weight.buffer(),
                    bias_buffer,
                    output.buffer(),
                ],
                grid,
            }],
        );
        Ok(output)
    })?
}

/// The dispatch of `conv2d_forward` for a geometry: one invocation per output pixel and tile of
/// [`FORWARD_CHANNEL_TILE`] channels within a group.
pub fn forward_grid(g: &Conv2dGeometry, max_per_dimension: u32) -> Result<DispatchGrid> {
    let tiles = g.out_channels_per_group().div_ceil(FORWARD_CHANNEL_TILE);
    let invocations = (g.batch * g.groups * tiles) as u64 * (g.h.output * g.w.output) as u64;
    DispatchGrid::for_invocations(OP, invocations, max_per_dimension)
}

fn forward_uniforms(g: &Conv2dGeometry, has_bias: bool, invocations: u32) -> Conv2dUniforms {
    Conv2dUniforms {
        channel_tiles_per_group: g.out_channels_per_group().div_ceil(FORWARD_CHANNEL_TILE) as u32,
        has_bias: u32::from(has_bias),
        invocations,
        ..geometry_uniforms(g)
    }
}

/// The fields every conv2d-family kernel reads, straight from the geometry.
pub(crate) fn geometry_uniforms(g: &Conv2dGeometry) -> Conv2dUniforms {
    // Geometry validation bounds every size by u32::MAX elements, so these casts are exact.
    let u = |v: usize| v as u32;
    Conv2dUniforms {
        batch: u(g.batch),
        in_channels: u(g.in_channels),
        in_h: u(g.h.input),
        in_w: u(g.w.input),
        out_channels: u(g.out_channels),
        kernel_h: u(g.h.kernel),
        kernel_w: u(g.w.kernel),
        groups: u(g.groups),
        stride_h: u(g.h.stride),
        stride_w: u(g.w.stride),
        dilation_h: u(g.h.dilation),
        dilation_w: u(g.w.dilation),
        pad_top: u(g.h.pad_before),
        pad_left: u(g.w.pad_before),
        out_h: u(g.h.output),
        out_w: u(g.w.output),
        in_channels_per_group: u(g.in_channels_per_group()),
        out_channels_per_group: u(g.out_channels_per_group()),
        ..Default::default()
    }
}
