//! The coefficients of a per-element bound: how many roundings each term of an op's sums
//! passes through, by the kernels' summation order.

use super::*;

/// `γ_k = k·ε / (1 - k·ε)` for the device's ε; infinite (no bound) once `k·ε >= 1`.
pub fn gamma(k: usize) -> f64 {
    let ku = k as f64 * DEVICE_ROUNDING;
    if ku >= 1.0 {
        f64::INFINITY
    } else {
        ku / (1.0 - ku)
    }
}

/// The allowed error of an element with magnitude `M` (its Σ|terms|) and reference value `e`:
/// `magnitude · M + value · |e| + absolute`.
///
/// The constructors derive the coefficients from how each op computes an element; the
/// derivations are in `docs/verification.md`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// Allowed error per unit of the element's magnitude Σ|terms|.
    pub magnitude: f64,
    /// Allowed error per unit of the element's reference value.
    pub value: f64,
    /// Allowed error regardless of either: results in the subnormal range, which a device may
    /// flush to zero, each rounding losing up to `f32::MIN_POSITIVE`.
    pub absolute: f64,
}

impl Bound {
    /// Nothing allowed: bitwise-equal results (except that any NaN matches any NaN).
    pub fn exact() -> Self {
        Bound {
            magnitude: 0.0,
            value: 0.0,
            absolute: 0.0,
        }
    }

    /// An f32 sum computed in an order where every term passes through at most `chain`
    /// roundings (its product, and each addition it takes part in), against the reference's
    /// f64 sum rounded once: `SAFETY · (γ_chain · M + REFERENCE_ROUNDING · |e| + chain ·
    /// MIN_POSITIVE)`. Any order of `n` terms has `chain <= n`: a summation tree of `n` leaves
    /// has `n - 1` additions, plus the product; adding to a zeroed accumulator is exact.
    pub fn sum(chain: usize) -> Self {
        Bound {
            magnitude: SAFETY * gamma(chain),
            value: SAFETY * REFERENCE_ROUNDING,
            absolute: SAFETY * chain as f64 * f64::from(f32::MIN_POSITIVE),
        }
    }

    /// This sum followed by the fused epilogue's `activation`: an error `E` in the
    /// pre-activation becomes at most `L · E` (`L` the activation's Lipschitz constant: 1, 1/4
    /// for sigmoid, `max(1, |slope|)` for leaky ReLU), plus the device's own error in the
    /// activation (none for ReLU, one rounding of `v · slope`, [`SIGMOID_ERROR`],
    /// [`TANH_ERROR`]); the reference rounds once, after its activation.
    pub fn with_activation(self, activation: Activation) -> Self {
        let (lipschitz, relative, absolute) = match activation {
            Activation::None | Activation::Relu => (1.0, 0.0, 0.0),
            Activation::LeakyRelu { slope } => {
                (f64::from(slope.abs()).max(1.0), DEVICE_ROUNDING, 0.0)
            }
            Activation::Sigmoid => (0.25, 0.0, SIGMOID_ERROR * DEVICE_ROUNDING),
            Activation::Tanh => (1.0, 0.0, TANH_ERROR * DEVICE_ROUNDING),
        };
        Bound {
            magnitude: lipschitz * self.magnitude,
            value: self.value + SAFETY * relative,
            absolute: lipschitz * self.absolute + SAFETY * absolute,
        }
    }

    /// conv2d forward (every variant, split or not): each output sums
    /// `C_in/groups · kh · kw` products, plus the bias.
    pub fn conv2d(g: &Conv2dGeometry, has_bias: bool) -> Self {
        Self::sum(g.reduction_len() + usize::from(has_bias))
    }

    /// The input gradient (every variant, split or not): each dx element sums, over the output
    /// channels of its group, only the taps of its stride phase.
    pub fn conv2d_backward_input(g: &Conv2dGeometry) -> Self {
        Self::sum(dx_terms(g))
    }

    /// conv_transpose2d, the dx kernel plus a bias; `g` is the geometry its params give
    /// ([`ConvTranspose2dParams::geometry`]).
    pub fn conv_transpose2d(g: &Conv2dGeometry, has_bias: bool) -> Self {
        Self::sum(dx_terms(g) + usize::from(has_bias))
    }

    /// The weight gradient computed whole (not split): the kernels' blocked reduction over the
    /// `N · OH` rows of grad_output, blocks of `r` rows of `OW` terms then the blocks' partial
    /// sums added in order, chains of `r · OW + ceil(N·OH / r) - 1`, for any `r` the planner may
    /// pick (see `blocked_chain`).
    /// Where the packed kernels may reduce over whole planes instead (one row per image),
    /// the longer of the two chains.
    pub fn conv2d_backward_weight(g: &Conv2dGeometry) -> Self {
        let weights = g.out_channels * g.in_channels_per_group() * g.h.kernel * g.w.kernel;
        let by_rows = blocked_chain(g.batch * g.h.output, g.w.output, weights);
        let by_planes = if reduces_over_planes(g) {
            blocked_chain(g.batch, g.h.output * g.w.output, weights)
        } else {
            0
        };
        Self::sum(by_rows.max(by_planes))
    }

    /// The bias gradient computed whole: the same blocked reduction as
    /// [`Bound::conv2d_backward_weight`], of grad_output's values, one partial per channel.
    pub fn conv2d_backward_bias(g: &Conv2dGeometry) -> Self {
        Self::sum(blocked_chain(
            g.batch * g.h.output,
            g.w.output,
            g.out_channels,
        ))
    }

    /// activation_backward, elementwise, against a magnitude of `|grad_output|`: the device
    /// computes `dy · f'` with at most three roundings after `f'`'s own inputs (`γ_3` relative
    /// to the result), and from a pre-activation it first evaluates the activation, whose
    /// absolute error moves `f'` by at most [`SIGMOID_ERROR`] (sigmoid, `|d(y(1-y))/dy| <= 1`)
    /// or `2 · TANH_ERROR + 1` units (tanh, `|d(1-y²)/dy| <= 2`, plus the rounding of `y·y`,
    /// which from a saved output costs one unit alone, for saved outputs within [-1, 1]).
    pub fn activation_backward(activation: Activation, saved: SavedTensor) -> Self {
        let from_output = saved == SavedTensor::Output;
        let (per_dy, relative) = match activation {
            Activation::None | Activation::Relu => return Bound::exact(),
            Activation::LeakyRelu { .. } => (0.0, DEVICE_ROUNDING),
            Activation::Sigmoid if from_output => (0.0, gamma(3)),
            Activation::Sigmoid => (SIGMOID_ERROR * DEVICE_ROUNDING, gamma(3)),
            Activation::Tanh if from_output => (DEVICE_ROUNDING, gamma(3)),
            Activation::Tanh => ((2.0 * TANH_ERROR + 1.0) * DEVICE_ROUNDING, gamma(3)),
        };
        Bound {
            magnitude: SAFETY * per_dy * (1.0 + gamma(3)),
            value: SAFETY * (relative + REFERENCE_ROUNDING),
            absolute: SAFETY * 3.0 * f64::from(f32::MIN_POSITIVE),
        }
    }

    /// The largest error allowed for an element of magnitude `magnitude` and reference value
    /// `expected`.
    pub fn allowed(&self, magnitude: f64, expected: f32) -> f64 {
        // A zero coefficient allows nothing, whatever the magnitude (0 · inf would be NaN).
        let per_magnitude = if self.magnitude == 0.0 {
            0.0
        } else {
            self.magnitude * magnitude
        };
        per_magnitude + self.value * f64::from(expected).abs() + self.absolute
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3e}·Σ|terms| + {:.3e}·|expected| + {:.1e}",
            self.magnitude, self.value, self.absolute
        )
    }
}

/// Most terms along one axis that reach a dx element: the taps of one stride phase,
/// `ceil(k / (stride / gcd(stride, dilation)))`.
pub(super) fn phase_taps(axis: &AxisGeometry) -> usize {
    let step = axis.stride / gcd(axis.stride, axis.dilation);
    axis.kernel.div_ceil(step.max(1))
}

pub(super) fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// Most products one dx element sums.
pub(super) fn dx_terms(g: &Conv2dGeometry) -> usize {
    g.out_channels_per_group() * phase_taps(&g.h) * phase_taps(&g.w)
}

/// The smallest storage-binding limit the blocked reductions are assumed to plan for: WebGPU's
/// least `max_storage_buffer_binding_size` (128 MiB), lavapipe's own. A device with a larger
/// limit only ever gets more, shorter blocks.
pub(super) const MIN_BINDING_BYTES: usize = 128 << 20;

/// The longest chain of a blocked reduction over `rows` rows of `row_len` terms, `partials`
/// partial sums a block: a block of `r` rows is `r · row_len` terms (a chain of that many
/// roundings, in any order within the block), and its partial then takes part in the
/// `ceil(rows / r) - 1` additions of pass 2. The planner (`gpu::conv2d::reduce::ReductionPlan`)
/// takes `r` from 1 (many blocks, to keep every core busy) up to `BLOCK_TERMS / row_len` rows (at
/// least one), or more where the blocks' partials would not fit one binding of
/// [`MIN_BINDING_BYTES`]; the bound takes the worst of them, and never more than the
/// `rows · row_len` of any order. A binding limit lowered below that (the tests' splitting
/// devices) can make blocks longer still: such calls take [`ErrorBound::in_any_order`].
pub(super) fn blocked_chain(rows: usize, row_len: usize, partials: usize) -> usize {
    let terms = rows * row_len;
    if terms == 0 {
        return 0;
    }
    let most_blocks = (MIN_BINDING_BYTES / 4 / partials.max(1)).max(1);
    let most_rows = (BLOCK_TERMS / row_len)
        .max(rows.div_ceil(most_blocks))
        .clamp(1, rows);
    let worst = (1..=most_rows)
        .map(|r| r * row_len + rows.div_ceil(r) - 1)
        .max()
        .unwrap_or(terms);
    worst.min(terms)
}

/// Most windows of one axis of a pooling that can route a gradient to one input position.
pub(super) fn pool_windows(axis: &AxisGeometry) -> usize {
    phase_taps(axis).min(axis.output)
}
