//! Host side of the depthwise quad kernels: which shapes they serve, for the forward, the weight gradient and (as a flipped forward) the input gradient.

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::conv2d::geometry_uniforms;
use crate::gpu::dispatch::DispatchGrid;
use crate::gpu::pipelines::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::gpu::uniforms::Conv2dUniforms;
use crate::params::{AxisGeometry, Conv2dGeometry, Layout};

/// True when `conv2d_depthwise_quads` (and the weight-gradient kernel) compute `g` (see the
/// shader): one input channel per group, dense NCHW, windows at most 3x3, column stride 1 or 2
/// with dilation 1 and left padding at most 1.
pub fn forward_fits(g: &Conv2dGeometry) -> bool {
    g.in_channels_per_group() == 1
        && g.layout == Layout::Nchw
        && g.h.kernel <= 3
        && g.w.kernel <= 3
        && matches!(g.w.stride, 1 | 2)
        && g.w.dilation == 1
        && g.w.pad_before <= 1
}

/// The forward of `g` through the quad kernel; the caller checks [`forward_fits`].
pub fn forward(
    op: &'static str,
    g: &Conv2dGeometry,
    has_bias: bool,
    activation: Activation,
    max_per_dimension: u32,
) -> Result<Plan> {
    let rows = (g.batch * g.out_channels * g.h.output) as u64;
    let grid = DispatchGrid::for_invocations(op, rows, max_per_dimension)?;
    let (activation, activation_slope) = activation.code();
    let uniforms = Conv2dUniforms {
        has_bias: u32::from(has_bias),
        invocations: grid.invocations,
        activation,
        activation_slope,
        ..geometry_uniforms(g)
    };
    Ok(Plan::single(Step::new(
        Kernel::Conv2dDepthwiseQuads,
        &uniforms,
        grid,
        vec![
            Operand::Input,
            Operand::Weight,
            Operand::Bias,
            Operand::Output,
        ],
    )))
}

/// The input gradient of a depthwise `g` with channel multiplier 1 and unit stride, as the
/// forward it is: grad_output correlated with the flipped kernel, padded by
/// `(k - 1) * dilation - pad` on each side. `None` where that is not a forward the quad kernel
/// serves (other strides or multipliers, padding wider than the reach, unfit widths).
pub fn input_grad_as_forward(g: &Conv2dGeometry) -> Option<Conv2dGeometry> {
    if g.in_channels_per_group() != 1 || g.out_channels_per_group() != 1 {
        return None;
    }
    let transpose = |a: &AxisGeometry| -> Option<AxisGeometry> {
        let reach = (a.kernel - 1) * a.dilation;
        (a.stride == 1).then_some(())?;
        Some(AxisGeometry {
            input: a.output,
            kernel: a.kernel,
            stride: 1,
            dilation: a.dilation,
            pad_before: reach.checked_sub(a.pad_before)?,
            pad_after: reach.checked_sub(a.pad_after)?,
            output: a.input,
        })
    };
    let as_forward = Conv2dGeometry {
        batch: g.batch,
        in_channels: g.out_channels,
        out_channels: g.in_channels,
        groups: g.groups,
        h: transpose(&g.h)?,
        w: transpose(&g.w)?,
        layout: g.layout,
        flip: !g.flip,
    };
    forward_fits(&as_forward).then_some(as_forward)
}

/// The input-gradient dispatch for a geometry from [`input_grad_as_forward`]: grad_output is
/// its input, and `has_bias` adds conv_transpose2d's bias.
pub fn input_grad(
    op: &'static str,
    as_forward: &Conv2dGeometry,
    has_bias: bool,
    max_per_dimension: u32,
) -> Result<Plan> {
    let mut plan = forward(
        op,
        as_forward,
        has_bias,
        Activation::None,
        max_per_dimension,
    )?;
    for step in &mut plan.steps {
        for operand in &mut step.operands {
            if *operand == Operand::Input {
                *operand = Operand::GradOutput;
            }
        }
    }
    Ok(plan)
}
