//! Parameters of a transposed convolution, resolved as the conv2d whose input gradient it is.

use super::axis::{effective_kernel, AxisGeometry, MAX_PADDED_EXTENT};
use super::checks::{
    check_bias, check_element_count, check_groups, check_no_zero_dim, check_positive_pair,
};
use super::conv::Conv2dGeometry;
use super::layout::Layout;
use super::padding::Padding;
use crate::error::{invalid, too_large, Result};

/// Parameters of a transposed convolution (PyTorch's `ConvTranspose2d`): the gradient of a
/// conv2d with respect to its input, applied to a given tensor. Weights are
/// `[C_in, C_out / groups, kh, kw]`. `padding` removes rows and columns from the full output
/// (only `Valid` and `Explicit` make sense; `Same` is rejected as PyTorch does);
/// `output_padding` adds rows and columns at the bottom and right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    /// Step of the window, `[height, width]`: the output grows by it per input position.
    pub stride: [usize; 2],
    /// Rows and columns removed from the full output.
    pub padding: Padding,
    /// Rows and columns added at the bottom and right of the output, `[height, width]`.
    pub output_padding: [usize; 2],
    /// Spacing between kernel taps, `[height, width]`.
    pub dilation: [usize; 2],
    /// Number of channel groups.
    pub groups: usize,
    /// Memory order of activations and weights (NHWC pairs with `[kh, kw, C_out/groups, C_in]`,
    /// TensorFlow's `conv2d_transpose` filter order).
    pub layout: Layout,
    /// Flip the kernel in both spatial axes.
    pub flip: bool,
}

impl Default for ConvTranspose2dParams {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: Padding::Valid,
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            layout: Layout::Nchw,
            flip: false,
        }
    }
}

impl ConvTranspose2dParams {
    /// Same stride on both axes.
    pub fn with_stride(mut self, s: usize) -> Self {
        self.stride = [s, s];
        self
    }
    /// Padding removed from the output.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }
    /// Same output padding on both axes.
    pub fn with_output_padding(mut self, p: usize) -> Self {
        self.output_padding = [p, p];
        self
    }
    /// Same dilation on both axes.
    pub fn with_dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
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

    /// Validates a transposed convolution and returns the geometry of the conv2d whose input
    /// gradient it is: that conv's input is this op's output `[N, C_out, H_out, W_out]` with
    /// `H_out = (H - 1)*stride - pad_top - pad_bottom + dilation*(kh - 1) + output_padding + 1`,
    /// and that conv's output is this op's input.
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
        let [weight_in, out_per_group, kernel_h, kernel_w] = layout.logical_weight(weight);
        let groups = self.groups;
        check_groups(op, groups)?;
        if weight_in != in_channels {
            return Err(invalid(
                op,
                format!(
                    "weight dimension 0 ({weight_in}) must equal input channels ({in_channels})"
                ),
            ));
        }
        if in_channels % groups != 0 {
            return Err(invalid(
                op,
                format!("input channels ({in_channels}) must be divisible by groups ({groups})"),
            ));
        }
        let out_channels = out_per_group.checked_mul(groups).ok_or_else(|| {
            too_large(
                op,
                format!("output channels {out_per_group} x {groups} overflow"),
            )
        })?;
        check_bias(op, bias_len, out_channels, "the op")?;
        check_positive_pair(op, "stride", self.stride)?;
        check_positive_pair(op, "dilation", self.dilation)?;
        let (pads_h, pads_w) = self.padding.fixed_pairs().ok_or_else(|| {
            invalid(
                op,
                "Padding::Same is not defined for a transposed convolution; give explicit padding",
            )
        })?;
        let axis = |name: &str, i: usize, input: usize, kernel: usize, pads: (usize, usize)| {
            transposed_axis(
                op,
                name,
                input,
                kernel,
                self.stride[i],
                self.dilation[i],
                pads,
                self.output_padding[i],
            )
        };
        let h = axis("height", 0, in_h, kernel_h, pads_h)?;
        let w = axis("width", 1, in_w, kernel_w, pads_w)?;
        // In conv2d terms the roles swap: conv input = this output, conv output = this input.
        let geometry = Conv2dGeometry {
            batch,
            in_channels: out_channels,
            out_channels: in_channels,
            groups,
            h,
            w,
            layout,
            flip: self.flip,
        };
        check_element_count(op, "input", &input)?;
        check_element_count(op, "weight", &weight)?;
        check_element_count(op, "output", &geometry.input_shape())?;
        Ok(geometry)
    }
}

/// One axis of a transposed convolution, expressed as the conv2d axis whose input gradient it
/// is: `input` is the transposed op's output size and `output` its input size.
#[allow(clippy::too_many_arguments)]
fn transposed_axis(
    op: &'static str,
    axis: &str,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    (pad_before, pad_after): (usize, usize),
    output_padding: usize,
) -> Result<AxisGeometry> {
    if output_padding >= stride && output_padding >= dilation {
        return Err(invalid(
            op,
            format!(
                "output_padding {axis} ({output_padding}) must be smaller than the stride \
                 ({stride}) or the dilation ({dilation})"
            ),
        ));
    }
    let effective = effective_kernel(op, axis, kernel, dilation)?;
    let full = (input as u64 - 1)
        .checked_mul(stride as u64)
        .and_then(|v| v.checked_add(effective))
        .and_then(|v| v.checked_add(output_padding as u64))
        .filter(|&v| v <= MAX_PADDED_EXTENT)
        .ok_or_else(|| too_large(op, format!("output {axis} overflows")))?;
    let cropped = full
        // Saturating: two hostile paddings must give this error, not an overflow.
        .checked_sub((pad_before as u64).saturating_add(pad_after as u64))
        .filter(|&v| v > 0)
        .ok_or_else(|| {
            invalid(
                op,
                format!(
                    "padding {axis} {pad_before} + {pad_after} removes the whole output \
                     ({full} before padding)"
                ),
            )
        })?;
    Ok(AxisGeometry {
        input: cropped as usize,
        kernel,
        stride,
        dilation,
        pad_before,
        pad_after,
        output: input,
    }
    .normalized())
}
