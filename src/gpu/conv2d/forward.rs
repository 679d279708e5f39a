//! Host side of the conv2d kernels: validation, uniforms, dispatch.

use crate::activation::Activation;
use crate::error::{invalid, Result};
use crate::gpu::conv2d::split_forward;
use crate::gpu::conv2d::subgroup::SubgroupWidth;
use crate::gpu::conv2d::uniforms::Conv2dUniforms;
use crate::gpu::conv2d::variant::{self, ConvPass, ConvVariant};
use crate::gpu::conv2d::{depthwise as conv2d_depthwise, gemm, packed as conv2d_packed};
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::memory::{self, MemoryEstimate};
use crate::gpu::plan::{
    run_into_output, ConvOperands, KeepWeights, Operand, Plan, ReadyPlan, Step,
};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::launch::conv_operands;
use crate::gpu::{Gpu, GpuTensor};
use crate::params::{Conv2dGeometry, Conv2dParams};

const OP: &str = "conv2d";

/// Output channels each `conv2d_forward` invocation computes (`TILE` in the shader).
pub const FORWARD_CHANNEL_TILE: usize = 4;
/// Neighbouring output columns each `conv2d_forward` invocation computes (`OW_TILE`).
pub const FORWARD_COLUMN_TILE: usize = 4;

/// 2-D convolution on the GPU: `input` and `weight` in `params.layout` (NCHW/OIHW or
/// NHWC/HWIO), optional `bias` of length C_out.
///
/// Validates everything before touching the GPU, then enqueues the kernel and returns the
/// output tensor without waiting.
pub fn conv2d(
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    params: &Conv2dParams,
) -> Result<GpuTensor> {
    conv2d_with_activation(input, weight, bias, params, Activation::None)
}

/// [`conv2d`] with a fused epilogue: bias, then `activation`, applied in the same kernel before
/// the output is written.
pub fn conv2d_with_activation(
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    params: &Conv2dParams,
    activation: Activation,
) -> Result<GpuTensor> {
    conv2d_keeping(input, weight, bias, params, activation, KeepWeights::Yes)
}

/// [`conv2d_with_activation`], keeping the packed weights for a later call or not (a piece of
/// a split call does not).
pub(crate) fn conv2d_keeping(
    input: &GpuTensor,
    weight: &GpuTensor,
    bias: Option<&GpuTensor>,
    params: &Conv2dParams,
    activation: Activation,
    keep: KeepWeights,
) -> Result<GpuTensor> {
    let gpu = input.gpu();
    let layout = params.layout;
    let (input_shape, weight_shape, bias_len) = conv_operands(OP, input, weight, bias, layout)?;
    let g = params.geometry(OP, input_shape, weight_shape, bias_len)?;
    let has_bias = bias.is_some();
    let whole = split_forward::Whole {
        g: &g,
        params,
        has_bias,
        activation,
    };
    if whole.needs_split(gpu, gpu.memory_available())? {
        return split_forward::run(input, weight, bias, whole);
    }
    let choice = variant::choose(gpu, OP, ConvPass::Forward, &g)?;
    let plan = forward_plan(gpu, &g, choice.variant, has_bias, activation)?;
    let plan = ReadyPlan::new(gpu, OP, plan)?;
    let operands = ConvOperands {
        source_role: Operand::Input,
        source: input,
        weight,
        bias,
    };
    run_into_output(gpu, OP, &plan, operands, &g.output_shape(), layout, keep)
}

/// The dispatches of the forward pass of `g` with `variant`.
fn forward_plan(
    gpu: &Gpu,
    g: &Conv2dGeometry,
    variant: ConvVariant,
    has_bias: bool,
    activation: Activation,
) -> Result<Plan> {
    let max_per_dimension = gpu.limits().max_compute_workgroups_per_dimension;
    let standard = vec![
        Operand::Input,
        Operand::Weight,
        Operand::Bias,
        Operand::Output,
    ];
    Ok(match variant {
        ConvVariant::Depthwise if conv2d_depthwise::forward_fits(g) => {
            conv2d_depthwise::forward(gpu, OP, g, has_bias, activation)?
        }
        ConvVariant::Direct | ConvVariant::Depthwise => {
            let grid = forward_grid(g, max_per_dimension)?;
            let uniforms = forward_uniforms(g, has_bias, activation, grid.invocations);
            Plan::single(Step::new(Kernel::Conv2dForward, &uniforms, grid, standard))
        }
        ConvVariant::Subgroup => {
            let width = SubgroupWidth::of(gpu).map_err(|why| invalid(OP, why))?;
            let d = gemm::forward(OP, g, width.tile(), has_bias, activation, max_per_dimension)?;
            Plan::single(Step::new(
                width.gemm_kernel(),
                &d.uniforms,
                d.grid,
                standard,
            ))
        }
        ConvVariant::Packed4
        | ConvVariant::Packed8
        | ConvVariant::Packed16
        | ConvVariant::Tiled => conv2d_packed::forward(
            OP,
            variant.packed_tiling().expect("a packed variant"),
            g,
            has_bias,
            activation,
            max_per_dimension,
        )?,
    })
}

/// The peak bytes of the forward pass of `g` unsplit: the output, then the plan's scratch and
/// uniforms (the most of any variant the planner may pick without timing).
pub(crate) fn whole_bytes(
    gpu: &Gpu,
    g: &Conv2dGeometry,
    has_bias: bool,
    activation: Activation,
) -> Result<u64> {
    let plans = variant::candidates(gpu, OP, ConvPass::Forward, g)?
        .into_iter()
        .map(|v| forward_plan(gpu, g, v, has_bias, activation));
    let plan = memory::most_plan_bytes(gpu, OP, plans)?;
    Ok(memory::tensor_bytes(gpu, &g.output_shape()) + plan)
}

/// [`crate::gpu::Gpu::memory_required`] for conv2d.
pub(crate) fn memory(
    gpu: &Gpu,
    input: [usize; 4],
    weight: [usize; 4],
    has_bias: bool,
    params: &Conv2dParams,
    activation: Activation,
) -> Result<MemoryEstimate> {
    let layout = params.layout;
    let bias_len = has_bias.then_some(layout.logical_weight(weight)[0]);
    let g = params.geometry(OP, input, weight, bias_len)?;
    let output_bytes = memory::tensor_bytes(gpu, &g.output_shape());
    let whole = split_forward::Whole {
        g: &g,
        params,
        has_bias,
        activation,
    };
    let avail = gpu.memory_available();
    let (peak_bytes, pieces) = if whole.needs_split(gpu, avail)? {
        split_forward::peak(gpu, whole, avail)?
    } else {
        (whole_bytes(gpu, &g, has_bias, activation)?, 1)
    };
    Ok(MemoryEstimate {
        peak_bytes,
        output_bytes,
        pieces,
    })
}

/// The dispatch of `conv2d_forward` for a geometry: one invocation per tile of
/// [`FORWARD_CHANNEL_TILE`] channels within a group by [`FORWARD_COLUMN_TILE`] output columns.
pub fn forward_grid(g: &Conv2dGeometry, max_per_dimension: u32) -> Result<DispatchGrid> {
    let tiles = g.out_channels_per_group().div_ceil(FORWARD_CHANNEL_TILE);
    let column_tiles = g.w.output.div_ceil(FORWARD_COLUMN_TILE);
    let invocations = (g.batch * g.groups * tiles) as u64 * (g.h.output * column_tiles) as u64;
    DispatchGrid::for_invocations(OP, invocations, max_per_dimension)
}

fn forward_uniforms(
    g: &Conv2dGeometry,
    has_bias: bool,
    activation: Activation,
    invocations: u32,
) -> Conv2dUniforms {
    let (activation, activation_slope) = activation.code();
    Conv2dUniforms {
        channel_tiles_per_group: g.out_channels_per_group().div_ceil(FORWARD_CHANNEL_TILE) as u32,
        has_bias: u32::from(has_bias),
        invocations,
        activation,
        activation_slope,
        ..geometry_uniforms(g)
    }
}

/// The fields every conv2d-family kernel reads, straight from the geometry.
pub(crate) fn geometry_uniforms(g: &Conv2dGeometry) -> Conv2dUniforms {
    // Geometry validation bounds every size by u32::MAX elements, so these casts are exact.
    let u = |v: usize| v as u32;
    let input_strides = g.layout.activation_strides(g.input_sizes());
    let output_strides = g.layout.activation_strides(g.output_sizes());
    let w = weight_view(g);
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
        in_stride_n: u(input_strides[0]),
        in_stride_c: u(input_strides[1]),
        in_stride_h: u(input_strides[2]),
        in_stride_w: u(input_strides[3]),
        out_stride_n: u(output_strides[0]),
        out_stride_c: u(output_strides[1]),
        out_stride_h: u(output_strides[2]),
        out_stride_w: u(output_strides[3]),
        w_stride_o: w.stride_o,
        w_stride_i: w.stride_i,
        w_stride_h: w.stride_h,
        w_stride_w: w.stride_w,
        w_base: w.base,
        ..Default::default()
    }
}

/// The weight tensor's strides as the kernels step through it, with the flip folded in.
pub(crate) struct WeightView {
    pub base: u32,
    pub stride_o: u32,
    pub stride_i: u32,
    pub stride_h: u32,
    pub stride_w: u32,
}

pub(crate) fn weight_view(g: &Conv2dGeometry) -> WeightView {
    let s = g.layout.weight_strides(g.weight_sizes());
    let u = |v: usize| v as u32;
    // A true convolution reads tap (ky, kx) at (kh-1-ky, kw-1-kx): start at the last tap and
    // step back. The shaders' u32 arithmetic wraps, so a negated stride steps back exactly.
    let (base, stride_h, stride_w) = if g.flip {
        (
            u((g.h.kernel - 1) * s[2] + (g.w.kernel - 1) * s[3]),
            u(s[2]).wrapping_neg(),
            u(s[3]).wrapping_neg(),
        )
    } else {
        (0, u(s[2]), u(s[3]))
    };
    WeightView {
        base,
        stride_o: u(s[0]),
        stride_i: u(s[1]),
        stride_h,
        stride_w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Conv2dParams;

    #[test]
    fn a_grid_past_65535_workgroups_is_folded() {
        let side = 4200;
        let g = Conv2dParams::default()
            .geometry("t", [1, 1, side, side], [1, 1, 1, 1], None)
            .unwrap();
        let grid = forward_grid(&g, 65535).unwrap();
        assert!(grid.workgroup_count() > 65535, "{grid:?}");
        assert!(
            grid.workgroups[1] > 1,
            "expected a folded grid, got {grid:?}"
        );
    }
}
