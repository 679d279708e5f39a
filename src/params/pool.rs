//! Parameters of 2-D max pooling, the resolved geometry of a call and the rules its indices obey.

use super::axis::{
    axis_tap, effective_kernel, first_tap, first_tap_bound, AxisGeometry, MAX_PADDED_EXTENT,
};
use super::checks::{check_element_count, check_no_zero_dim, check_positive_pair};
use super::layout::Layout;
use crate::error::{invalid, too_large, Result};

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
    /// padding is still dropped). As in PyTorch this can keep one window wider than the padded
    /// input, clipped to it.
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
    // PyTorch's pooling_output_shape, in signed arithmetic: under ceil_mode the numerator may
    // be negative (a window wider than the padded input), and rounding it toward -inf decides
    // whether one clipped window remains. i128 holds any usize stride times any output.
    let stride_s = stride as i128;
    let rounding = if ceil_mode { stride_s - 1 } else { 0 };
    let numerator = padded as i128 - effective as i128 + rounding;
    let mut output = numerator.div_euclid(stride_s) + 1;
    // PyTorch: under ceil_mode the last window must start inside the input or the left padding.
    if ceil_mode && (output - 1) * stride_s >= input as i128 + pad as i128 {
        output -= 1;
    }
    if output < 1 {
        let mode = if ceil_mode { "ceil" } else { "floor" };
        return Err(invalid(
            op,
            format!(
                "output {axis} would be {output}: effective kernel {axis} {effective} (kernel \
                 {kernel}, dilation {dilation}) exceeds padded input {axis} {padded} (input \
                 {input} + padding {pad} + {pad}) with stride {stride} in {mode} mode"
            ),
        ));
    }
    Ok(AxisGeometry {
        input,
        kernel,
        stride,
        dilation,
        pad_before: pad,
        pad_after: pad,
        // 1 <= output <= padded, so the cast is exact.
        output: output as usize,
    }
    .normalized())
}

/// All sizes of one max-pooling call, resolved and validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Pool2dGeometry {
    /// Batch size `N`.
    pub batch: usize,
    /// Channels `C`, the same in input and output.
    pub channels: usize,
    /// The height axis.
    pub h: AxisGeometry,
    /// The width axis.
    pub w: AxisGeometry,
    /// Memory order of input and output; the shape methods return shapes in it.
    pub layout: Layout,
    /// How argmax indices are flattened.
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
    pub(crate) fn flat_index(&self, c: usize, h: usize, w: usize) -> usize {
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
    fn window_contains(&self, oh: usize, ow: usize, ih: usize, iw: usize) -> bool {
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
    pub(crate) fn window_has_taps(&self, oh: usize, ow: usize) -> bool {
        first_tap(&self.h, oh) < self.h.input && first_tap(&self.w, ow) < self.w.input
    }

    /// True when every window has a tap inside the input (false only for small inputs with
    /// dilation, where a window can straddle the input between its taps).
    pub(crate) fn every_window_has_taps(&self) -> bool {
        (0..self.h.output).all(|oh| first_tap(&self.h, oh) < self.h.input)
            && (0..self.w.output).all(|ow| first_tap(&self.w, ow) < self.w.input)
    }

    /// PyTorch's starting index for the window of output `(oh, ow)` in channel `c`: row and
    /// column of the first tap at or after 0 on each axis, flattened in this geometry's style.
    /// It is the index returned for a window of -inf values, and for a window with no tap inside
    /// the input (then past its data).
    pub(crate) fn first_tap_index(&self, c: usize, oh: usize, ow: usize) -> usize {
        self.flat_index(c, first_tap(&self.h, oh), first_tap(&self.w, ow))
    }

    /// An upper bound on every index a window returns, in either index style, found without
    /// walking the windows ([`Self::largest_tapless_index`] walks them for the exact value).
    pub(crate) fn index_bound(&self) -> u128 {
        let position = first_tap_bound(&self.h) as u128 * self.w.input as u128
            + first_tap_bound(&self.w) as u128;
        position * self.channels as u128 + self.channels as u128
    }

    /// The largest index a window with no tap inside the input returns (its
    /// [`first_tap_index`](Self::first_tap_index), past the plane's data, in the last channel),
    /// with that window's output row and column; `None` when every window has a tap. Windows
    /// with a tap return indices inside the input, which validation keeps below 2^32 elements;
    /// these can lie anywhere up to the padded extents, so this is computed in `u128`.
    pub(crate) fn largest_tapless_index(&self) -> Option<(u128, usize, usize)> {
        // Per axis, the output position with the largest first tap, and the one with the
        // largest first tap past the input (a window with no tap there).
        let largest = |axis: &AxisGeometry| {
            let mut all = (0usize, 0usize);
            let mut tapless = None;
            for o in 0..axis.output {
                let tap = first_tap(axis, o);
                if tap > all.0 {
                    all = (tap, o);
                }
                if tap >= axis.input && tapless.is_none_or(|(t, _)| tap > t) {
                    tapless = Some((tap, o));
                }
            }
            (all, tapless)
        };
        let (all_h, tapless_h) = largest(&self.h);
        let (all_w, tapless_w) = largest(&self.w);
        let index = |(ih, oh): (usize, usize), (iw, ow): (usize, usize)| {
            let position = ih as u128 * self.w.input as u128 + iw as u128;
            let index = match self.index_style {
                IndexStyle::PyTorch => position,
                IndexStyle::TensorFlow => {
                    position * self.channels as u128 + self.channels as u128 - 1
                }
            };
            (index, oh, ow)
        };
        let by_rows = tapless_h.map(|h| index(h, all_w));
        let by_columns = tapless_w.map(|w| index(all_h, w));
        by_rows
            .into_iter()
            .chain(by_columns)
            .max_by_key(|&(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn pool_ceil_mode_keeps_one_clipped_window_wider_than_the_padded_input() {
        // H 2, k 3, s 3, p 0, ceil: floor((2 - 3 + 2) / 3) + 1 = 1; the drop rule needs
        // 0 >= 2, so one window stays, its third row past the input.
        let p = Pool2dParams::new(3, 3).with_ceil_mode(true);
        let g = p.geometry("t", [1, 1, 2, 2]).unwrap();
        assert_eq!((g.h.output, g.w.output), (1, 1));
        // k 3, s 2 on 1: numerator 1 - 3 + 1 = -1 rounds toward -inf to -1, so output 0.
        let e = Pool2dParams::new(3, 3)
            .with_stride(2)
            .with_ceil_mode(true)
            .geometry("t", [1, 1, 1, 1])
            .unwrap_err();
        assert!(e.to_string().contains("output height would be 0"), "{e}");
        // Floor mode never keeps such a window: floor((2 - 3) / 3) + 1 = 0.
        let e = Pool2dParams::new(3, 3)
            .geometry("t", [1, 1, 2, 2])
            .unwrap_err();
        assert!(e.to_string().contains("output height would be 0"), "{e}");
        // A stride near usize::MAX neither overflows nor changes the single window.
        let g = Pool2dParams::new(3, 3)
            .with_stride(usize::MAX)
            .with_ceil_mode(true)
            .geometry("t", [1, 1, 2, 2])
            .unwrap();
        assert_eq!((g.h.output, g.w.output), (1, 1));
    }

    #[test]
    fn largest_tapless_index_follows_the_first_tap_rule() {
        // Every window has a tap: none.
        let g = Pool2dParams::new(3, 3)
            .with_stride(2)
            .with_padding(1)
            .geometry("t", [1, 1, 8, 8])
            .unwrap();
        assert_eq!(g.largest_tapless_index(), None);
        // H 1, kernel 2, dilation 2, padding 1: the one window's taps are rows -1 and 1 (and
        // columns likewise); the first at or after 0 is (1, 1), index 1 * 1 + 1.
        let g = Pool2dParams::new(2, 2)
            .with_dilation(2)
            .with_padding(1)
            .geometry("t", [1, 1, 1, 1])
            .unwrap();
        assert_eq!(g.largest_tapless_index(), Some((2, 0, 0)));
        // Rows 2^29 + o for output rows 0..3 of an input 3 high, columns 0..16: the largest is
        // output (2, 15); TensorFlow's style adds the last of 2 channels.
        let tall = Pool2dParams::new(2, 1)
            .with_stride(1)
            .with_dilation(1 << 30)
            .with_padding_hw(1 << 29, 0);
        let g = tall.geometry("t", [1, 1, 3, 16]).unwrap();
        let rows = (1u128 << 29) + 2;
        assert_eq!(g.largest_tapless_index(), Some((rows * 16 + 15, 2, 15)));
        let g = tall
            .with_layout(Layout::Nhwc)
            .with_index_style(IndexStyle::TensorFlow)
            .geometry("t", [1, 3, 16, 2])
            .unwrap();
        assert_eq!(
            g.largest_tapless_index(),
            Some(((rows * 16 + 15) * 2 + 1, 2, 15))
        );
        // The same along columns: every window of a 16 x 3 input has no column inside it, the
        // first at or after 0 being 2^29 + o; the largest row is 15.
        let wide = Pool2dParams::new(1, 2)
            .with_stride(1)
            .with_dilation(1 << 30)
            .with_padding_hw(0, 1 << 29);
        let g = wide.geometry("t", [1, 1, 16, 3]).unwrap();
        assert_eq!(
            g.largest_tapless_index(),
            Some((15 * 3 + (1u128 << 29) + 2, 15, 2))
        );
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
}
