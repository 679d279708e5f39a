//! Parameter types and ALL output-size arithmetic, shared by the GPU and CPU paths.
//!
//! Every op validates its arguments here, once, before any buffer is created. The output size of
//! one spatial axis follows PyTorch:
//! `out = floor((in + pad_before + pad_after - dilation*(k-1) - 1) / stride) + 1`.

use crate::error::{invalid, too_large, Result};

/// Largest element count a tensor may have: shaders index buffers with `u32`.
pub const MAX_ELEMENTS: u64 = u32::MAX as u64;
/// Largest padded extent of one axis: shaders compute padded coordinates in `i32`.
pub const MAX_PADDED_EXTENT: u64 = i32::MAX as u64;

/// How the input is padded with zeros before the window slides over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding (TensorFlow's `VALID`, PyTorch's `padding=0`).
    Valid,
    /// Pad so that `out = ceil(in / stride)` (TensorFlow's `SAME`): for any stride, dilation and
    /// kernel size the total padding is split in two with the odd extra pixel going after
    /// (bottom/right), exactly as TensorFlow does.
    Same,
    /// Explicit zero padding per side.
    Explicit {
        top: usize,
        bottom: usize,
        left: usize,
        right: usize,
    },
}

impl Padding {
    /// The same padding on all four sides (PyTorch's `padding=p`).
    pub fn uniform(p: usize) -> Self {
        Self::symmetric(p, p)
    }

    /// `ph` above and below, `pw` left and right (PyTorch's `padding=(ph, pw)`).
    pub fn symmetric(ph: usize, pw: usize) -> Self {
        Padding::Explicit {
            top: ph,
            bottom: ph,
            left: pw,
            right: pw,
        }
    }

    /// Each side on its own, in the order top, bottom, left, right.
    pub fn explicit(top: usize, bottom: usize, left: usize, right: usize) -> Self {
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        }
    }

    /// `((top, bottom), (left, right))` when the padding does not depend on the input size;
    /// `None` for `Same`.
    pub fn fixed_pairs(self) -> Option<((usize, usize), (usize, usize))> {
        match self {
            Padding::Valid => Some(((0, 0), (0, 0))),
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => Some(((top, bottom), (left, right))),
            Padding::Same => None,
        }
    }
}

/// `Err` unless there is at least one group.
fn check_groups(op: &'static str, groups: usize) -> Result<()> {
    if groups == 0 {
        return Err(invalid(op, "groups must be at least 1, got 0"));
    }
    Ok(())
}

/// `Err` unless a bias, if given, has one value per output channel.
fn check_bias(
    op: &'static str,
    bias_len: Option<usize>,
    out_channels: usize,
    what: &str,
) -> Result<()> {
    match bias_len {
        Some(len) if len != out_channels => Err(invalid(
            op,
            format!("bias has {len} elements but {what} has {out_channels} output channels"),
        )),
        _ => Ok(()),
    }
}

/// Memory order of activations and weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// PyTorch: activations `[N, C, H, W]`, weights `[C_out, C_in/groups, kh, kw]` (OIHW).
    #[default]
    Nchw,
    /// TensorFlow/Keras: activations `[N, H, W, C]`, weights `[kh, kw, C_in/groups, C_out]`
    /// (HWIO).
    Nhwc,
}

impl Layout {
    /// Where `(n, c, h, w)` sit among an activation's dimensions.
    const fn activation_axes(self) -> [usize; 4] {
        match self {
            Layout::Nchw => [0, 1, 2, 3],
            Layout::Nhwc => [0, 3, 1, 2],
        }
    }

    /// Where `(o, i, kh, kw)` sit among a weight's dimensions.
    const fn weight_axes(self) -> [usize; 4] {
        match self {
            Layout::Nchw => [0, 1, 2, 3],
            Layout::Nhwc => [3, 2, 0, 1],
        }
    }

    /// `[n, c, h, w]` of an activation of this layout's shape.
    pub fn logical_activation(self, shape: [usize; 4]) -> [usize; 4] {
        self.activation_axes().map(|axis| shape[axis])
    }

    /// The shape in this layout of an activation with sizes `[n, c, h, w]`.
    pub fn activation_shape(self, [n, c, h, w]: [usize; 4]) -> [usize; 4] {
        let mut shape = [0; 4];
        for (axis, size) in self.activation_axes().into_iter().zip([n, c, h, w]) {
            shape[axis] = size;
        }
        shape
    }

    /// `[o, i, kh, kw]` of a weight of this layout's shape.
    pub fn logical_weight(self, shape: [usize; 4]) -> [usize; 4] {
        self.weight_axes().map(|axis| shape[axis])
    }

    /// The shape in this layout of a weight with sizes `[o, i, kh, kw]`.
    pub fn weight_shape(self, [o, i, kh, kw]: [usize; 4]) -> [usize; 4] {
        let mut shape = [0; 4];
        for (axis, size) in self.weight_axes().into_iter().zip([o, i, kh, kw]) {
            shape[axis] = size;
        }
        shape
    }

    /// Element strides of `(n, c, h, w)` for a row-major activation of sizes `[n, c, h, w]`.
    pub fn activation_strides(self, logical: [usize; 4]) -> [usize; 4] {
        logical_strides(self.activation_shape(logical), self.activation_axes())
    }

    /// Element strides of `(o, i, kh, kw)` for a row-major weight of sizes `[o, i, kh, kw]`.
    pub fn weight_strides(self, logical: [usize; 4]) -> [usize; 4] {
        logical_strides(self.weight_shape(logical), self.weight_axes())
    }

    /// Axis permutation that turns an array of this layout into `[n, c, h, w]` order.
    pub fn activation_permutation(self) -> [usize; 4] {
        self.activation_axes()
    }

    /// Axis permutation that turns a weight of this layout into `[o, i, kh, kw]` order.
    pub fn weight_permutation(self) -> [usize; 4] {
        self.weight_axes()
    }

    /// Names of the dimensions, for messages.
    pub fn activation_dims(self) -> &'static str {
        match self {
            Layout::Nchw => "[N, C, H, W]",
            Layout::Nhwc => "[N, H, W, C]",
        }
    }

    /// Names of a weight's dimensions, for messages.
    pub fn weight_dims(self) -> &'static str {
        match self {
            Layout::Nchw => "[C_out, C_in/groups, kh, kw]",
            Layout::Nhwc => "[kh, kw, C_in/groups, C_out]",
        }
    }
}

/// Row-major strides of `physical`, reordered to the logical axes `axes` picks.
fn logical_strides(physical: [usize; 4], axes: [usize; 4]) -> [usize; 4] {
    let mut strides = [1; 4];
    for i in (0..3).rev() {
        strides[i] = strides[i + 1] * physical[i + 1];
    }
    axes.map(|axis| strides[axis])
}

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

/// Parameters of a transposed convolution (PyTorch's `ConvTranspose2d`): the gradient of a
/// conv2d with respect to its input, applied to a given tensor. Weights are
/// `[C_in, C_out / groups, kh, kw]`. `padding` removes rows and columns from the full output
/// (only `Valid` and `Explicit` make sense; `Same` is rejected as PyTorch does);
/// `output_padding` adds rows and columns at the bottom and right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dParams {
    pub stride: [usize; 2],
    pub padding: Padding,
    pub output_padding: [usize; 2],
    pub dilation: [usize; 2],
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

/// Parameters of 2-D max pooling, PyTorch's set. Padding is per axis (both sides alike) and
/// acts as -inf; it may be at most half the effective kernel, as PyTorch requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dParams {
    /// Window size, `[height, width]`.
    pub kernel: [usize; 2],
    /// Step of the window; PyTorch's default is the kernel size.
    pub stride: [usize; 2],
    /// Implicit -inf padding on both sides of each axis, `[height, width]`.
    pub padding: [usize; 2],
    /// Spacing between window taps.
    pub dilation: [usize; 2],
    /// Round the output size up instead of down (a last window that would start in the right
    /// padding is still dropped).
    pub ceil_mode: bool,
    /// Memory order of input and output.
    pub layout: Layout,
    /// How argmax indices are flattened.
    pub index_style: IndexStyle,
}

/// How max pooling flattens an argmax position into an index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IndexStyle {
    /// PyTorch: `h * W + w` within each (n, c) plane, in either layout.
    #[default]
    PyTorch,
    /// TensorFlow's `MaxPoolWithArgmax` (`include_batch_in_index=False`):
    /// `(h * W + w) * C + c` within each sample. NHWC only.
    TensorFlow,
}

impl Pool2dParams {
    /// A `kh x kw` window with stride equal to the kernel, no padding, no dilation.
    pub fn new(kh: usize, kw: usize) -> Self {
        Self {
            kernel: [kh, kw],
            stride: [kh, kw],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            layout: Layout::Nchw,
            index_style: IndexStyle::PyTorch,
        }
    }
    /// Same stride on both axes.
    pub fn with_stride(self, s: usize) -> Self {
        self.with_stride_hw(s, s)
    }
    /// Stride per axis.
    pub fn with_stride_hw(mut self, sh: usize, sw: usize) -> Self {
        self.stride = [sh, sw];
        self
    }
    /// Same padding on both axes.
    pub fn with_padding(self, p: usize) -> Self {
        self.with_padding_hw(p, p)
    }
    /// Padding per axis.
    pub fn with_padding_hw(mut self, ph: usize, pw: usize) -> Self {
        self.padding = [ph, pw];
        self
    }
    /// Same dilation on both axes.
    pub fn with_dilation(mut self, d: usize) -> Self {
        self.dilation = [d, d];
        self
    }
    /// Ceil or floor output sizes.
    pub fn with_ceil_mode(mut self, ceil_mode: bool) -> Self {
        self.ceil_mode = ceil_mode;
        self
    }
    /// Memory order of input and output.
    pub fn with_layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }
    /// How argmax indices are flattened.
    pub fn with_index_style(mut self, style: IndexStyle) -> Self {
        self.index_style = style;
        self
    }

    /// Validates an input (shape in `self.layout`) against these parameters and resolves every
    /// size.
    pub fn geometry(&self, op: &'static str, input: [usize; 4]) -> Result<Pool2dGeometry> {
        check_no_zero_dim(op, "input", &input, self.layout.activation_dims())?;
        check_positive_pair(op, "kernel", self.kernel)?;
        check_positive_pair(op, "stride", self.stride)?;
        check_positive_pair(op, "dilation", self.dilation)?;
        if self.index_style == IndexStyle::TensorFlow && self.layout != Layout::Nhwc {
            return Err(invalid(
                op,
                "TensorFlow-style indices ((h * W + w) * C + c) are defined for the NHWC layout only",
            ));
        }
        let [batch, channels, in_h, in_w] = self.layout.logical_activation(input);
        let h = pool_axis(
            op,
            "height",
            in_h,
            self.kernel[0],
            self.stride[0],
            self.dilation[0],
            self.padding[0],
            self.ceil_mode,
        )?;
        let w = pool_axis(
            op,
            "width",
            in_w,
            self.kernel[1],
            self.stride[1],
            self.dilation[1],
            self.padding[1],
            self.ceil_mode,
        )?;
        let geometry = Pool2dGeometry {
            batch,
            channels,
            h,
            w,
            layout: self.layout,
            index_style: self.index_style,
        };
        check_element_count(op, "input", &geometry.input_shape())?;
        check_element_count(op, "output", &geometry.output_shape())?;
        Ok(geometry)
    }
}

/// One axis of max pooling with PyTorch's output rule.
#[allow(clippy::too_many_arguments)]
fn pool_axis(
    op: &'static str,
    axis: &str,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    ceil_mode: bool,
) -> Result<AxisGeometry> {
    let effective = effective_kernel(op, axis, kernel, dilation)?;
    if pad as u64 > effective / 2 {
        return Err(invalid(
            op,
            format!(
                "padding {axis} ({pad}) must be at most half the effective kernel {axis} \
                 ({effective}: kernel {kernel}, dilation {dilation})"
            ),
        ));
    }
    let padded = (pad as u64).saturating_mul(2).saturating_add(input as u64);
    if padded > MAX_PADDED_EXTENT {
        return Err(too_large(
            op,
            format!("padded input {axis} {padded} exceeds {MAX_PADDED_EXTENT}"),
        ));
    }
    if effective > padded {
        return Err(invalid(
            op,
            format!(
                "effective kernel {axis} {effective} (kernel {kernel}, dilation {dilation}) \
                 exceeds padded input {axis} {padded} (input {input} + padding {pad} + {pad})"
            ),
        ));
    }
    let span = padded - effective;
    let stride64 = stride as u64;
    let mut output = if ceil_mode {
        span.div_ceil(stride64)
    } else {
        span / stride64
    } + 1;
    // PyTorch: under ceil_mode the last window must start inside the input or the left padding.
    if ceil_mode && (output - 1) * stride64 >= input as u64 + pad as u64 {
        output -= 1;
    }
    Ok(AxisGeometry {
        input,
        kernel,
        stride,
        dilation,
        pad_before: pad,
        pad_after: pad,
        output: output as usize,
    }
    .normalized())
}

/// All sizes of one max-pooling call, resolved and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    pub batch: usize,
    pub channels: usize,
    pub h: AxisGeometry,
    pub w: AxisGeometry,
    pub layout: Layout,
    pub index_style: IndexStyle,
}

impl Pool2dGeometry {
    /// The input's shape in the layout.
    pub fn input_shape(&self) -> [usize; 4] {
        self.layout.activation_shape(self.input_sizes())
    }
    /// The output's shape in the layout.
    pub fn output_shape(&self) -> [usize; 4] {
        self.layout.activation_shape(self.output_sizes())
    }
    /// `[N, C, H, W]` whatever the layout.
    pub fn input_sizes(&self) -> [usize; 4] {
        [self.batch, self.channels, self.h.input, self.w.input]
    }
    /// `[N, C, OH, OW]` whatever the layout.
    pub fn output_sizes(&self) -> [usize; 4] {
        [self.batch, self.channels, self.h.output, self.w.output]
    }
    /// Number of distinct index values: indices lie in `0..index_range()`.
    pub fn index_range(&self) -> usize {
        match self.index_style {
            IndexStyle::PyTorch => self.h.input * self.w.input,
            IndexStyle::TensorFlow => self.h.input * self.w.input * self.channels,
        }
    }
    /// The index of input position `(c, h, w)` in this geometry's style.
    pub fn flat_index(&self, c: usize, h: usize, w: usize) -> usize {
        match self.index_style {
            IndexStyle::PyTorch => h * self.w.input + w,
            IndexStyle::TensorFlow => (h * self.w.input + w) * self.channels + c,
        }
    }
    /// Bytes a forward pass must move at least: the input once, the output once.
    pub fn forward_bytes(&self, with_indices: bool) -> f64 {
        let out = self.output_shape().iter().product::<usize>() as f64;
        4.0 * (self.input_shape().iter().product::<usize>() as f64
            + out * if with_indices { 2.0 } else { 1.0 })
    }

    /// Whether input position `(ih, iw)` is one of the taps of the window of output `(oh, ow)`:
    /// the rule an index from elsewhere must satisfy.
    pub fn window_contains(&self, oh: usize, ow: usize, ih: usize, iw: usize) -> bool {
        axis_tap(&self.h, oh, ih) && axis_tap(&self.w, ow, iw)
    }
}

impl Pool2dGeometry {
    /// `Err` unless `index`, found at output position `at = [n, c, oh, ow]` (sizes order, any
    /// layout), names an input position of its own channel that is a tap of that output's
    /// window: the only indices a max pooling of this geometry can produce.
    pub fn check_index(&self, op: &'static str, at: [usize; 4], index: i64) -> Result<()> {
        if !self.window_has_taps(at[2], at[3]) {
            let expected = self.first_tap_index(at[1], at[2], at[3]) as i64;
            if index != expected {
                return Err(invalid(
                    op,
                    format!(
                        "index {index} at {at:?}: the window of output ({}, {}) lies wholly in \
                         the padding, for which max pooling returns index {expected}",
                        at[2], at[3]
                    ),
                ));
            }
            return Ok(());
        }
        let range = self.index_range() as i64;
        if !(0..range).contains(&index) {
            let channels = match self.index_style {
                IndexStyle::TensorFlow => format!(" x C {}", self.channels),
                IndexStyle::PyTorch => String::new(),
            };
            return Err(invalid(
                op,
                format!(
                    "index {index} at {at:?} is outside 0..{range} (H {} x W {}{channels})",
                    self.h.input, self.w.input
                ),
            ));
        }
        let (position, channel) = match self.index_style {
            IndexStyle::PyTorch => (index as usize, at[1]),
            IndexStyle::TensorFlow => (
                index as usize / self.channels,
                index as usize % self.channels,
            ),
        };
        if channel != at[1] {
            return Err(invalid(
                op,
                format!(
                    "index {index} at {at:?} names channel {channel}, not the output's channel {}",
                    at[1]
                ),
            ));
        }
        let (ih, iw) = (position / self.w.input, position % self.w.input);
        if !self.window_contains(at[2], at[3], ih, iw) {
            return Err(invalid(
                op,
                format!(
                    "index {index} at {at:?} (row {ih}, column {iw}) is not in the window of \
                     output ({}, {}): the indices do not come from this pooling",
                    at[2], at[3]
                ),
            ));
        }
        Ok(())
    }
}

impl Pool2dGeometry {
    /// Whether the window of output `(oh, ow)` has at least one tap inside the input. With
    /// dilation a window can fall wholly in the padding (H 1, kernel 2, dilation 2, padding 1).
    pub fn window_has_taps(&self, oh: usize, ow: usize) -> bool {
        first_tap(&self.h, oh) < self.h.input && first_tap(&self.w, ow) < self.w.input
    }

    /// True when every window has a tap inside the input (false only for small inputs with
    /// dilation, where a window can straddle the input between its taps).
    pub fn every_window_has_taps(&self) -> bool {
        (0..self.h.output).all(|oh| first_tap(&self.h, oh) < self.h.input)
            && (0..self.w.output).all(|ow| first_tap(&self.w, ow) < self.w.input)
    }

    /// PyTorch's starting index for the window of output `(oh, ow)` in channel `c`: row and
    /// column of the first tap at or after 0 on each axis, flattened in this geometry's style.
    /// It is the index returned for a window of -inf values, and for a window with no tap inside
    /// the input (then past its data).
    pub fn first_tap_index(&self, c: usize, oh: usize, ow: usize) -> usize {
        self.flat_index(c, first_tap(&self.h, oh), first_tap(&self.w, ow))
    }
}

/// The input coordinate of the first tap at or after 0 of window `o` on this axis (may be past
/// the end of the input).
fn first_tap(axis: &AxisGeometry, o: usize) -> usize {
    let start = (o * axis.stride) as i64 - axis.pad_before as i64;
    if start >= 0 {
        start as usize
    } else {
        let skip = (-start as usize).div_ceil(axis.dilation);
        (start + (skip * axis.dilation) as i64) as usize
    }
}

/// True when `i` is a tap of window `o` on this axis.
fn axis_tap(axis: &AxisGeometry, o: usize, i: usize) -> bool {
    let offset = (i + axis.pad_before).checked_sub(o * axis.stride);
    offset.is_some_and(|d| d % axis.dilation == 0 && d / axis.dilation < axis.kernel)
}

/// The resolved sizes of one spatial axis of a windowed op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AxisGeometry {
    pub input: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad_before: usize,
    pub pad_after: usize,
    pub output: usize,
}

impl AxisGeometry {
    /// Applies the output-size formula to one axis, rejecting a window larger than the padded
    /// input and sizes the shaders cannot index.
    pub fn resolve(
        op: &'static str,
        axis: &str,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        (pad_before, pad_after): (usize, usize),
    ) -> Result<Self> {
        let effective = effective_kernel(op, axis, kernel, dilation)?;
        let padded = (input as u64)
            .checked_add(pad_before as u64)
            .and_then(|v| v.checked_add(pad_after as u64))
            .filter(|&v| v <= MAX_PADDED_EXTENT)
            .ok_or_else(|| {
                too_large(
                    op,
                    format!(
                        "padded input {axis} {input} + {pad_before} + {pad_after} exceeds \
                         {MAX_PADDED_EXTENT}"
                    ),
                )
            })?;
        if effective > padded {
            return Err(invalid(
                op,
                format!(
                    "effective kernel {axis} {effective} (kernel {kernel}, dilation {dilation}) \
                     exceeds padded input {axis} {padded} (input {input} + padding {pad_before} \
                     + {pad_after})"
                ),
            ));
        }
        let output = ((padded - effective) / stride as u64 + 1) as usize;
        Ok(Self {
            input,
            kernel,
            stride,
            dilation,
            pad_before,
            pad_after,
            output,
        }
        .normalized())
    }

    /// The same axis with its stride at most the padded extent and the dilation of a one-tap
    /// kernel set to 1. Neither changes any result: a stride past the padded extent leaves one
    /// output position (only position 0 is ever multiplied by it), and a single tap is never
    /// spaced. It keeps `usize::MAX` and the like out of the kernels' u32/i32 arithmetic, where
    /// a truncated stride gave wrong input gradients.
    fn normalized(mut self) -> Self {
        let padded = self.input + self.pad_before + self.pad_after;
        self.stride = self.stride.min(padded.max(1));
        if self.kernel == 1 {
            self.dilation = 1;
        }
        self
    }

    /// `dilation * (kernel - 1) + 1`: the span of input one window covers.
    pub fn effective_kernel(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }

    /// The band of this axis that computes outputs `first .. first + count` on its own: the
    /// first input row it reads, and its axis, whose input is the rows those windows reach
    /// (their halo included) and whose padding is only what lies outside the real input, so
    /// that an interior band's neighbours are real rows, not padding. Its output is `count`.
    /// `None` when those windows reach no real row (they lie wholly in the padding).
    pub fn output_band(&self, first: usize, count: usize) -> Option<(usize, AxisGeometry)> {
        // Padded coordinates: window o reads rows o*stride .. o*stride + effective - 1.
        let lo = first * self.stride;
        let hi = (first + count - 1) * self.stride + self.effective_kernel();
        let real_lo = lo.max(self.pad_before);
        let real_hi = hi.min(self.pad_before + self.input);
        if real_lo >= real_hi {
            return None;
        }
        Some((
            real_lo - self.pad_before,
            AxisGeometry {
                input: real_hi - real_lo,
                pad_before: real_lo - lo,
                pad_after: hi - real_hi,
                output: count,
                ..*self
            },
        ))
    }

    /// The outputs whose windows may reach inputs `first .. first + count`, for a pass that
    /// gathers from outputs into inputs (max pooling's backward): the first output, and the
    /// axis of the band, whose input is those `count` rows, whose output is those outputs
    /// (at least one) and whose `pad_before` places output 0 of the band where the whole
    /// axis has it (`first_output * stride - pad_before' = first - pad_before`).
    pub fn input_band(&self, first: usize, count: usize) -> (usize, AxisGeometry) {
        let reach = self.effective_kernel() - 1;
        let top = first + self.pad_before;
        let bottom = first + count - 1 + self.pad_before;
        // The first window that can reach row `first`, but never one starting after it, so
        // that the band's padding stays non-negative; at most the last output.
        let start = top.saturating_sub(reach).div_ceil(self.stride);
        let o0 = start.min(top / self.stride).min(self.output - 1);
        let o1 = (bottom / self.stride + 1).clamp(o0 + 1, self.output);
        (
            o0,
            AxisGeometry {
                input: count,
                pad_before: top - o0 * self.stride,
                pad_after: 0,
                output: o1 - o0,
                ..*self
            },
        )
    }

    /// [`Self::input_band`] for a convolution's input gradient, which runs as a conv of its
    /// own: the same outputs, with `pad_after` set so that the band obeys the output-size
    /// formula (`(input + pads - effective) / stride + 1` is its output), as kernels that
    /// rewrite the gradient as a forward pass (depthwise) read both paddings.
    pub fn gather_band(&self, first: usize, count: usize) -> (usize, AxisGeometry) {
        let (o0, mut band) = self.input_band(first, count);
        let reach = (band.output - 1) * band.stride + band.effective_kernel();
        band.pad_after = reach.saturating_sub(band.input + band.pad_before);
        (o0, band)
    }
}

/// `dilation * (kernel - 1) + 1`, checked.
fn effective_kernel(op: &'static str, axis: &str, kernel: usize, dilation: usize) -> Result<u64> {
    (kernel as u64 - 1)
        .checked_mul(dilation as u64)
        .and_then(|v| v.checked_add(1))
        .filter(|&v| v <= MAX_PADDED_EXTENT)
        .ok_or_else(|| {
            too_large(
                op,
                format!("effective kernel {axis} (kernel {kernel}, dilation {dilation}) overflows"),
            )
        })
}

/// TensorFlow's `SAME` padding of one axis: `out = ceil(in / stride)`, total padding split with
/// the odd pixel after.
pub fn same_padding(
    op: &'static str,
    axis: &str,
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Result<(usize, usize)> {
    if stride == 0 {
        return Err(invalid(
            op,
            format!("stride {axis} must be at least 1, got 0"),
        ));
    }
    let effective = effective_kernel(op, axis, kernel, dilation)?;
    let input = input as u64;
    let stride = stride as u64;
    let output = input.div_ceil(stride);
    let needed = (output - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(effective))
        .ok_or_else(|| too_large(op, format!("SAME padding of {axis} overflows")))?;
    let total = needed.saturating_sub(input);
    let before = total / 2;
    Ok((before as usize, (total - before) as usize))
}

/// All sizes of one conv2d call, resolved and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Conv2dGeometry {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
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
    pub fn in_channels_per_group(&self) -> usize {
        self.in_channels / self.groups
    }
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

fn check_no_zero_dim(op: &'static str, name: &str, shape: &[usize], dims: &str) -> Result<()> {
    if shape.contains(&0) {
        return Err(invalid(
            op,
            format!("{name} shape {dims} = {shape:?} has a zero-sized dimension"),
        ));
    }
    Ok(())
}

fn check_positive_pair(op: &'static str, name: &str, pair: [usize; 2]) -> Result<()> {
    if pair.contains(&0) {
        return Err(invalid(
            op,
            format!("{name} must be at least 1 on both axes, got {pair:?} ([height, width])"),
        ));
    }
    Ok(())
}

/// Rejects a tensor whose flat index would not fit in `u32`.
pub(crate) fn check_element_count(op: &'static str, name: &str, shape: &[usize]) -> Result<()> {
    let count = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
    match count {
        Some(c) if c <= MAX_ELEMENTS => Ok(()),
        _ => Err(too_large(
            op,
            format!(
                "{name} shape {shape:?} has more than {MAX_ELEMENTS} elements, the most a u32 \
                 flat index can address"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytorch_formula_with_asymmetric_padding() {
        let a = AxisGeometry::resolve("t", "height", 10, 3, 2, 2, (1, 2)).unwrap();
        // floor((10 + 1 + 2 - 2*2 - 1) / 2) + 1 = floor(8 / 2) + 1 = 5
        assert_eq!(a.output, 5);
    }

    #[test]
    fn same_padding_matches_tensorflow() {
        // in 5, k 2, s 1: out 5, total pad 1 -> (0, 1): the odd pixel goes after.
        assert_eq!(same_padding("t", "h", 5, 2, 1, 1).unwrap(), (0, 1));
        // in 7, k 3, s 2: out 4, needed (4-1)*2+3 = 9, total 2 -> (1, 1).
        assert_eq!(same_padding("t", "h", 7, 3, 2, 1).unwrap(), (1, 1));
        // in 6, k 3, s 2: out 3, needed 7, total 1 -> (0, 1).
        assert_eq!(same_padding("t", "h", 6, 3, 2, 1).unwrap(), (0, 1));
        // in 4, k 3, dilation 2 (effective 5), s 1: total 4 -> (2, 2).
        assert_eq!(same_padding("t", "h", 4, 3, 1, 2).unwrap(), (2, 2));
        // stride larger than the kernel: in 10, k 1, s 4: out 3, needed 9 -> no padding.
        assert_eq!(same_padding("t", "h", 10, 1, 4, 1).unwrap(), (0, 0));
    }

    #[test]
    fn pool_ceil_mode_drops_a_window_starting_in_the_right_padding() {
        // H=4, k=2, s=3, p=1: padded 6, ceil((6-2)/3)+1 = 3, but window 2 would start at
        // 6 - 1 = 5 >= 4 + 1, so PyTorch gives 2.
        let g = Pool2dParams::new(2, 2)
            .with_stride(3)
            .with_padding(1)
            .with_ceil_mode(true);
        assert_eq!(g.geometry("t", [1, 1, 4, 4]).unwrap().h.output, 2);
        // Without the drop rule: H=5, k=2, s=2, p=0: ceil(3/2)+1 = 3, last starts at 4 < 5.
        let g = Pool2dParams::new(2, 2).with_ceil_mode(true);
        assert_eq!(g.geometry("t", [1, 1, 5, 5]).unwrap().h.output, 3);
        let g = Pool2dParams::new(2, 2);
        assert_eq!(g.geometry("t", [1, 1, 5, 5]).unwrap().h.output, 2);
    }

    #[test]
    fn pool_padding_above_half_the_kernel_is_rejected() {
        assert!(Pool2dParams::new(3, 3)
            .with_padding(1)
            .geometry("t", [1, 1, 5, 5])
            .is_ok());
        let e = Pool2dParams::new(3, 3)
            .with_padding(2)
            .geometry("t", [1, 1, 5, 5])
            .unwrap_err();
        assert!(e.to_string().contains("padding height (2)"), "{e}");
        // Dilation widens the window, so more padding is allowed.
        assert!(Pool2dParams::new(3, 3)
            .with_padding(2)
            .with_dilation(2)
            .geometry("t", [1, 1, 5, 5])
            .is_ok());
    }

    #[test]
    fn a_gather_band_has_the_same_taps_and_obeys_the_output_formula() {
        for input in 1..10 {
            for kernel in 1..4 {
                for stride in 1..4 {
                    for dilation in 1..3 {
                        for pads in [(0, 0), (1, 0), (2, 3), (5, 1)] {
                            let Ok(whole) = AxisGeometry::resolve(
                                "t", "h", input, kernel, stride, dilation, pads,
                            ) else {
                                continue;
                            };
                            for first in 0..input {
                                for count in 1..=input - first {
                                    let (o0, band) = whole.gather_band(first, count);
                                    let what = format!("{whole:?} rows {first}+{count}");
                                    let padded = band.input + band.pad_before + band.pad_after;
                                    let formula = (padded - band.effective_kernel()) / stride + 1;
                                    assert_eq!(formula, band.output, "{what}");
                                    for o in 0..whole.output {
                                        for i in first..first + count {
                                            let local = (o0..o0 + band.output).contains(&o)
                                                && axis_tap(&band, o - o0, i - first);
                                            assert_eq!(axis_tap(&whole, o, i), local, "{what}");
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn same_gives_ceil_of_input_over_stride() {
        for input in 1..20 {
            for kernel in 1..6 {
                for stride in 1..5 {
                    for dilation in 1..3 {
                        let pads = same_padding("t", "h", input, kernel, stride, dilation).unwrap();
                        let a =
                            AxisGeometry::resolve("t", "h", input, kernel, stride, dilation, pads)
                                .unwrap();
                        assert_eq!(a.output, input.div_ceil(stride));
                    }
                }
            }
        }
    }
}
