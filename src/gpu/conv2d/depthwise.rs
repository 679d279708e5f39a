//! Host side of the depthwise quad kernels: which shapes they serve, for the forward, the weight gradient and (as a flipped forward) the input gradient.

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::conv2d::forward::geometry_uniforms;
use crate::gpu::conv2d::uniforms::Conv2dUniforms;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::gpu::runtime::dispatch::DispatchGrid;
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
    forward_inserting(op, g, [0, 0], has_bias, activation, max_per_dimension)
}

/// [`forward`] reading its input as if `2^insert_shift - 1` zeros (no terms) sat between its
/// rows and columns: `g`'s input sizes count them.
fn forward_inserting(
    op: &'static str,
    g: &Conv2dGeometry,
    insert_shift: [u32; 2],
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
        insert_shift_h: insert_shift[0],
        insert_shift_w: insert_shift[1],
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

/// The input gradient of a depthwise `g` with channel multiplier 1, as the forward it is:
/// grad_output, with `stride - 1` zeros inserted between its rows and columns (stride 1 or 2
/// per axis), correlated with the flipped kernel and padded by `(k - 1) * dilation - pad`
/// before (and what makes the output the input's size after). `None` where that is not a
/// forward the quad kernel serves (other strides or multipliers, padding wider than the
/// reach).
pub fn input_grad_as_forward(g: &Conv2dGeometry) -> Option<DepthwiseInputGrad> {
    if g.in_channels_per_group() != 1 || g.out_channels_per_group() != 1 {
        return None;
    }
    let transpose = |a: &AxisGeometry| -> Option<(AxisGeometry, u32)> {
        let shift = match a.stride {
            1 => 0,
            2 => 1,
            _ => return None,
        };
        let reach = (a.kernel - 1) * a.dilation;
        // The rows the forward's last window left unread at the end.
        let leftover =
            (a.input + a.pad_before + a.pad_after - reach - 1) - (a.output - 1) * a.stride;
        let axis = AxisGeometry {
            input: (a.output - 1) * a.stride + 1,
            kernel: a.kernel,
            stride: 1,
            dilation: a.dilation,
            pad_before: reach.checked_sub(a.pad_before)?,
            pad_after: (reach + leftover).checked_sub(a.pad_after)?,
            output: a.input,
        };
        Some((axis, shift))
    };
    let (h, shift_h) = transpose(&g.h)?;
    let (w, shift_w) = transpose(&g.w)?;
    let as_forward = Conv2dGeometry {
        batch: g.batch,
        in_channels: g.out_channels,
        out_channels: g.in_channels,
        groups: g.groups,
        h,
        w,
        layout: g.layout,
        flip: !g.flip,
    };
    forward_fits(&as_forward).then_some(DepthwiseInputGrad {
        as_forward,
        insert_shift: [shift_h, shift_w],
    })
}

/// A depthwise input gradient as a forward (see [`input_grad_as_forward`]).
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseInputGrad {
    /// The forward's geometry: its input is grad_output with the inserted zeros counted.
    pub as_forward: Conv2dGeometry,
    /// log2 of the stride per axis (height, width): the zeros inserted are `2^shift - 1`.
    pub insert_shift: [u32; 2],
}

/// The input-gradient dispatch for `dx` from [`input_grad_as_forward`]: grad_output is its
/// input, and `has_bias` adds conv_transpose2d's bias.
pub fn input_grad(
    op: &'static str,
    dx: &DepthwiseInputGrad,
    has_bias: bool,
    max_per_dimension: u32,
) -> Result<Plan> {
    let mut plan = forward_inserting(
        op,
        &dx.as_forward,
        dx.insert_shift,
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
