//! One spatial axis of a windowed op: its sizes, the output-size arithmetic, and its bands.

use crate::error::{invalid, too_large, Result};

/// Largest padded extent of one axis: shaders compute padded coordinates in `i32`.
pub(super) const MAX_PADDED_EXTENT: u64 = i32::MAX as u64;

/// The resolved sizes of one spatial axis of a windowed op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AxisGeometry {
    /// Extent of the input along this axis, padding excluded.
    pub input: usize,
    /// Number of kernel taps along this axis.
    pub kernel: usize,
    /// Step between consecutive windows.
    pub stride: usize,
    /// Spacing between kernel taps.
    pub dilation: usize,
    /// Padding before the first input element (top or left).
    pub pad_before: usize,
    /// Padding after the last input element (bottom or right).
    pub pad_after: usize,
    /// Number of window positions: the output's extent along this axis.
    pub output: usize,
}

impl AxisGeometry {
    /// Applies the output-size formula to one axis, rejecting a window larger than the padded
    /// input and sizes the shaders cannot index.
    pub(super) fn resolve(
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
    pub(super) fn normalized(mut self) -> Self {
        let padded = self.input + self.pad_before + self.pad_after;
        self.stride = self.stride.min(padded.max(1));
        if self.kernel == 1 {
            self.dilation = 1;
        }
        self
    }

    /// `dilation * (kernel - 1) + 1`: the span of input one window covers.
    fn effective_kernel(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }

    /// The band of this axis that computes outputs `first .. first + count` on its own: the
    /// first input row it reads, and its axis, whose input is the rows those windows reach
    /// (their halo included) and whose padding is only what lies outside the real input, so
    /// that an interior band's neighbours are real rows, not padding. Its output is `count`.
    /// `None` when those windows reach no real row (they lie wholly in the padding).
    pub(crate) fn output_band(&self, first: usize, count: usize) -> Option<(usize, AxisGeometry)> {
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
    pub(crate) fn input_band(&self, first: usize, count: usize) -> (usize, AxisGeometry) {
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
    pub(crate) fn gather_band(&self, first: usize, count: usize) -> (usize, AxisGeometry) {
        let (o0, mut band) = self.input_band(first, count);
        let reach = (band.output - 1) * band.stride + band.effective_kernel();
        band.pad_after = reach.saturating_sub(band.input + band.pad_before);
        (o0, band)
    }
}

/// `dilation * (kernel - 1) + 1`, checked.
pub(super) fn effective_kernel(
    op: &'static str,
    axis: &str,
    kernel: usize,
    dilation: usize,
) -> Result<u64> {
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
pub(super) fn same_padding(
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

/// The input coordinate of the first tap at or after 0 of window `o` on this axis (may be past
/// the end of the input).
pub(super) fn first_tap(axis: &AxisGeometry, o: usize) -> usize {
    let start = (o * axis.stride) as i64 - axis.pad_before as i64;
    if start >= 0 {
        start as usize
    } else {
        let skip = (-start as usize).div_ceil(axis.dilation);
        (start + (skip * axis.dilation) as i64) as usize
    }
}

/// An upper bound on [`first_tap`] over every window of this axis, without walking them: a
/// window starting inside the input has its first tap at its start, at most the last window's;
/// one starting in the padding steps by the dilation to its first tap at or after 0, less than
/// a dilation past 0.
pub(super) fn first_tap_bound(axis: &AxisGeometry) -> usize {
    ((axis.output - 1) * axis.stride)
        .saturating_sub(axis.pad_before)
        .max(axis.dilation - 1)
}

/// True when `i` is a tap of window `o` on this axis.
pub(super) fn axis_tap(axis: &AxisGeometry, o: usize, i: usize) -> bool {
    let offset = (i + axis.pad_before).checked_sub(o * axis.stride);
    offset.is_some_and(|d| d % axis.dilation == 0 && d / axis.dilation < axis.kernel)
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
