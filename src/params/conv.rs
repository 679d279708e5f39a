//! Parameters of a 2-D convolution and the resolved geometry of a call.

use super::axis::{same_padding, AxisGeometry};
use super::checks::{
    check_bias, check_element_count, check_groups, check_no_zero_dim, check_positive_pair,
};
use super::layout::Layout;
use super::padding::Padding;
use crate::error::{invalid, Result};

/// Parameters of a 2-D convolution, PyTorch's full set. `Default` is stride 1, no padding,
/// dilation 1, one group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dParams {
    /// Step of the window, `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding of the input.
    pub padding: Padding,
    /// Spacing between kernel taps, `[height, width]`.
    pub dilation: [usize; 2],
    /// Number of channel groups; `groups == C_in == C_out` is depthwise.
    pub groups: usize,
    /// Memory order of the activations and weights.
    pub layout: Layout,
    /// True convolution: the kernel is flipped in both spatial axes (scipy's `convolve`);
    /// `false` is the cross-correlation deep-learning libraries call convolution.
    pub flip: bool,
}

impl Default for Conv2dParams {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            groups: 1,
            layout: Layout::Nchw,
            flip: false,
        }
    }
}

impl Conv2dParams {
    /// Same stride on both axes.
    pub fn with_stride(self, s: usize) -> Self {
        self.with_stride_hw(s, s)
    }
    /// Stride per axis.
    pub fn with_stride_hw(mut self, sh: usize, sw: usize) -> Self {
        self.stride = [sh, sw];
        self
    }
    /// Padding of the input.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Same dilation on both axes.
    pub fn with_dilation(self, d: usize) -> Self {
        self.with_dilation_hw(d, d)
    }
    /// Dilation per axis.
    pub fn with_dilation_hw(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = [dh, dw];
        self
    }
    /// Number of groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    /// Memory order of activations and weights.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
    /// True convolution (flipped kernel) instead of cross-correlation.
    pub fn with_flip(mut self, flip: bool) -> Self {
        self.flip = flip;
        self
    }

    /// Validates the shapes against these parameters and resolves every size of the call.
    ///
    /// `input` and `weight` are shapes in `self.layout` (`[N, C_in, H, W]` and
    /// `[C_out, C_in / groups, kh, kw]` for NCHW), `bias_len` is the length of the bias if there
    /// is one. `op` names the caller in error messages.
    pub fn geometry(
        &self,
        op: &'static str,
        input: [usize; 4],
        weight: [usize; 4],
        bias_len: Option<usize>,
    ) -> Result<Conv2dGeometry> {
        let layout = self.layout;
        check_no_zero_dim(op, "input", &input, layout.activation_dims())?;
        check_no_zero_dim(op, "weight", &weight, layout.weight_dims())?;
        let [batch, in_channels, in_h, in_w] = layout.logical_activation(input);
        let [out_channels, weight_in_channels, kernel_h, kernel_w] = layout.logical_weight(weight);
        let groups = self.groups;
        check_groups(op, groups)?;
        if weight_in_channels.checked_mul(groups) != Some(in_channels) {
            return Err(invalid(
                op,
                format!(
                    "input channels ({in_channels}) must equal groups ({groups}) x weight \
                     in-channels ({weight_in_channels})"
                ),
            ));
        }
        if out_channels % groups != 0 {
            return Err(invalid(
                op,
                format!(
                    "weight out-channels ({out_channels}) must be divisible by groups ({groups})"
                ),
            ));
        }
        check_bias(op, bias_len, out_channels, "the weight")?;
        check_positive_pair(op, "stride", self.stride)?;
        check_positive_pair(op, "dilation", self.dilation)?;

        let (pads_h, pads_w) = match self.padding.fixed_pairs() {
            Some(pairs) => pairs,
            None => (
                same_padding(
                    op,
                    "height",
                    in_h,
                    kernel_h,
                    self.stride[0],
                    self.dilation[0],
                )?,
                same_padding(
                    op,
                    "width",
                    in_w,
                    kernel_w,
                    self.stride[1],
                    self.dilation[1],
                )?,
            ),
        };
        let h = AxisGeometry::resolve(
            op,
            "height",
            in_h,
            kernel_h,
            self.stride[0],
            self.dilation[0],
            pads_h,
        )?;
        let w = AxisGeometry::resolve(
            op,
            "width",
            in_w,
            kernel_w,
            self.stride[1],
            self.dilation[1],
            pads_w,
        )?;
        let geometry = Conv2dGeometry {
            batch,
            in_channels,
            out_channels,
            groups,
            h,
            w,
            layout,
            flip: self.flip,
        };
        check_element_count(op, "input", &geometry.input_shape())?;
        check_element_count(op, "weight", &geometry.weight_shape())?;
        check_element_count(op, "output", &geometry.output_shape())?;
        Ok(geometry)
    }
}

impl Conv2dParams {
    /// [`Conv2dParams::geometry`] for a gradient call, which also checks that `grad_output` has
    /// exactly the forward output's shape.
    pub fn backward_geometry(
        &self,
        op: &'static str,
        input: [usize; 4],
        weight: [usize; 4],
        grad_output: [usize; 4],
    ) -> Result<Conv2dGeometry> {
        let g = self.geometry(op, input, weight, None)?;
        if grad_output != g.output_shape() {
            return Err(invalid(
                op,
                format!(
                    "grad_output shape {grad_output:?} must equal the forward output shape {:?} \
                     (input {input:?}, weight {weight:?})",
                    g.output_shape()
                ),
            ));
        }
        Ok(g)
    }
}

/// All sizes of one conv2d call, resolved and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    /// Batch size `N`.
    pub batch: usize,
    /// Input channels `C_in`.
    pub in_channels: usize,
    /// Output channels `C_out`.
    pub out_channels: usize,
    /// Number of channel groups; both channel counts are multiples of it.
    pub groups: usize,
    /// The height axis: input, kernel, stride, dilation, padding, output.
    pub h: AxisGeometry,
    /// The width axis.
    pub w: AxisGeometry,
    /// Memory order of the tensors; the shape methods return shapes in it.
    pub layout: Layout,
    /// Whether the kernel is flipped (true convolution).
    pub flip: bool,
}

impl Conv2dGeometry {
    /// `C_in / groups`: the input channels each output channel reads.
    pub fn in_channels_per_group(&self) -> usize {
        self.in_channels / self.groups
    }
    /// `C_out / groups`: the output channels of each group.
    pub fn out_channels_per_group(&self) -> usize {
        self.out_channels / self.groups
    }
    /// Terms summed into one output element: `C_in/groups * kh * kw`.
    pub fn reduction_len(&self) -> usize {
        self.in_channels_per_group() * self.h.kernel * self.w.kernel
    }
    /// The input's shape in the layout (`[N, C_in, H, W]` for NCHW).
    pub fn input_shape(&self) -> [usize; 4] {
        self.layout.activation_shape(self.input_sizes())
    }
    /// The weight's shape in the layout (`[C_out, C_in/groups, kh, kw]` for NCHW).
    pub fn weight_shape(&self) -> [usize; 4] {
        self.layout.weight_shape(self.weight_sizes())
    }
    /// The output's shape in the layout (`[N, C_out, OH, OW]` for NCHW).
    pub fn output_shape(&self) -> [usize; 4] {
        self.layout.activation_shape(self.output_sizes())
    }
    /// `[N, C_in, H, W]` whatever the layout.
    pub fn input_sizes(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.h.input, self.w.input]
    }
    /// `[C_out, C_in/groups, kh, kw]` whatever the layout.
    pub fn weight_sizes(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels_per_group(),
            self.h.kernel,
            self.w.kernel,
        ]
    }
    /// `[N, C_out, OH, OW]` whatever the layout.
    pub fn output_sizes(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.h.output, self.w.output]
    }
    /// Multiply-adds counted twice: `2 * N * C_out * OH * OW * C_in/groups * kh * kw`.
    pub fn flops(&self) -> f64 {
        2.0 * (self.batch * self.out_channels * self.h.output * self.w.output) as f64
            * self.reduction_len() as f64
    }
}
