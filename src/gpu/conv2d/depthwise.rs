//! Host side of the depthwise quad kernels: which shapes they serve, for the forward, the weight gradient and (as a flipped forward) the input gradient.

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::conv2d::forward::geometry_uniforms;
use crate::gpu::conv2d::reduce::MIN_PARALLEL_INVOCATIONS;
use crate::gpu::conv2d::uniforms::Conv2dUniforms;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::Gpu;
use crate::params::{AxisGeometry, Conv2dGeometry, Layout};
use std::sync::Mutex;

/// True when `conv2d_depthwise_quads` (and the weight-gradient kernel) compute `g` (see the
/// shader): one input channel per group, NCHW or NHWC, windows at most 3x3, column stride 1
/// or 2 with dilation 1 and left padding at most 1.
pub fn forward_fits(g: &Conv2dGeometry) -> bool {
    g.in_channels_per_group() == 1
        && g.h.kernel <= 3
        && g.w.kernel <= 3
        && matches!(g.w.stride, 1 | 2)
        && g.w.dilation == 1
        && g.w.pad_before <= 1
}

/// The orders the depthwise kernels can lay their work over invocations in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepthwiseLanes {
    /// Consecutive lanes along the layout's contiguous dimension (NCHW: the quads of a row;
    /// NHWC: channels), so that a warp's loads and stores coalesce, and the weight gradient one
    /// quad per invocation for parallelism: the order for GPUs.
    Contiguous,
    /// Consecutive lanes along channels in either layout, and the weight gradient over whole
    /// rows: the order for CPU drivers, where a "lane" is one SIMD element of a core and
    /// nothing coalesces; it measured faster there (lavapipe, MobileNet layers,
    /// docs/benchmarks.md).
    Channels,
}

/// Per device: an order every depthwise call must use (tests run both on every driver).
#[derive(Default)]
struct DepthwiseSettings {
    forced: Mutex<Option<DepthwiseLanes>>,
}

impl Gpu {
    /// Makes the depthwise kernels on this device (and its clones) lay their work out in
    /// `lanes` order instead of the one for its device type; `None` restores that.
    pub fn force_depthwise_lanes(&self, lanes: Option<DepthwiseLanes>) {
        *self
            .inner
            .extensions
            .get::<DepthwiseSettings>()
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = lanes;
    }

    /// The order the depthwise kernels use on this device: the forced one, else
    /// [`DepthwiseLanes::Contiguous`] on a GPU and [`DepthwiseLanes::Channels`] elsewhere.
    pub fn depthwise_lanes(&self) -> DepthwiseLanes {
        let forced = *self
            .inner
            .extensions
            .get::<DepthwiseSettings>()
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        forced.unwrap_or(if self.is_hardware_gpu() {
            DepthwiseLanes::Contiguous
        } else {
            DepthwiseLanes::Channels
        })
    }
}

/// How the depthwise kernels lay their work over invocations for one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaneOrder {
    /// Consecutive invocations take consecutive channels, else consecutive quads of a row.
    pub along_channels: bool,
    /// A weight-gradient invocation walks whole rows, else one quad of each row.
    pub whole_rows: bool,
}

impl LaneOrder {
    /// The order on `gpu` (see [`Gpu::depthwise_lanes`]) for tensors in `layout`.
    pub fn for_device(gpu: &Gpu, layout: Layout) -> Self {
        match gpu.depthwise_lanes() {
            DepthwiseLanes::Contiguous => Self {
                along_channels: layout == Layout::Nhwc,
                whole_rows: false,
            },
            DepthwiseLanes::Channels => Self {
                along_channels: true,
                whole_rows: true,
            },
        }
    }

    /// Quads of a row each weight-gradient invocation walks, for `g`.
    pub fn weight_grad_quads(self, g: &Conv2dGeometry) -> usize {
        if self.whole_rows {
            g.w.output.div_ceil(4)
        } else {
            1
        }
    }
}

/// The forward of `g` through the quad kernel; the caller checks [`forward_fits`].
pub fn forward(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    has_bias: bool,
    activation: Activation,
) -> Result<Plan> {
    forward_inserting(gpu, op, g, [0, 0], has_bias, activation)
}

/// [`forward`] reading its input as if `2^insert_shift - 1` zeros (no terms) sat between its
/// rows and columns: `g`'s input sizes count them.
fn forward_inserting(
    gpu: &Gpu,
    op: &'static str,
    g: &Conv2dGeometry,
    insert_shift: [u32; 2],
    has_bias: bool,
    activation: Activation,
) -> Result<Plan> {
    let max_per_dimension = gpu.limits().max_compute_workgroups_per_dimension;
    let rows_per_invocation = forward_rows_per_invocation(g);
    let invocations = quad_columns(g) * g.h.output.div_ceil(rows_per_invocation);
    let grid = DispatchGrid::for_invocations(op, invocations as u64, max_per_dimension)?;
    let (activation, activation_slope) = activation.code();
    // The input strides address the stored tensor, without the inserted zeros.
    let stored = |size: usize, shift: u32| ((size - 1) >> shift) + 1;
    let stored_strides = g.layout.activation_strides([
        g.batch,
        g.in_channels,
        stored(g.h.input, insert_shift[0]),
        stored(g.w.input, insert_shift[1]),
    ]);
    let u = |v: usize| v as u32;
    let uniforms = Conv2dUniforms {
        has_bias: u32::from(has_bias),
        invocations: grid.invocations,
        activation,
        activation_slope,
        insert_shift_h: insert_shift[0],
        insert_shift_w: insert_shift[1],
        rows_per_block: u(rows_per_invocation),
        lanes_along_channels: u32::from(LaneOrder::for_device(gpu, g.layout).along_channels),
        in_stride_n: u(stored_strides[0]),
        in_stride_c: u(stored_strides[1]),
        in_stride_h: u(stored_strides[2]),
        in_stride_w: u(stored_strides[3]),
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

/// Columns of quads over the batch and channels of `g`'s output.
fn quad_columns(g: &Conv2dGeometry) -> usize {
    g.batch * g.out_channels * g.w.output.div_ceil(4)
}

/// Output rows each forward invocation walks down its quad column: up to 16, fewer where that
/// would leave under [`MIN_PARALLEL_INVOCATIONS`] invocations. More rows amortise the weight
/// loads and the invocation's set-up.
pub(crate) fn forward_rows_per_invocation(g: &Conv2dGeometry) -> usize {
    let rows = g.h.output;
    let mut per = 16.min(rows).max(1);
    while per > 1 && quad_columns(g) * rows.div_ceil(per) < MIN_PARALLEL_INVOCATIONS {
        per /= 2;
    }
    per
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
    gpu: &Gpu,
    op: &'static str,
    dx: &DepthwiseInputGrad,
    has_bias: bool,
) -> Result<Plan> {
    let mut plan = forward_inserting(
        gpu,
        op,
        &dx.as_forward,
        dx.insert_shift,
        has_bias,
        Activation::None,
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
