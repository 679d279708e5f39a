//! Comparing a GPU result with the CPU reference: worst errors, where they are, and a verdict.
//!
//! Two criteria:
//!
//! - [`ErrorBound`], the one the tests and `wgconv check` use: a bound per element that follows
//!   from how the kernels compute it. An f32 sum `s` of terms `t_i` computed in any order, in
//!   which every term passes through at most `k` roundings, is off by at most
//!   `γ_k · Σ|t_i|` with `γ_k = k·ε / (1 - k·ε)` (Higham, *Accuracy and Stability of Numerical
//!   Algorithms*, §3.1 and Lemma 3.1). `Σ|t_i|` is the element's *magnitude*: the CPU reference
//!   run on the absolute values of the operands ([`crate::cpu::conv2d_magnitude`] and its
//!   twins). `k` comes from the reduction's length and order ([`Bound`]). The derivation of each
//!   constant is in `docs/verification.md`.
//! - [`Tolerance`], the older whole-tensor rule: `n · eps` relative to each element and to the
//!   largest magnitude in the reference. It is looser where outputs are large (every element
//!   gets the largest one's slack) and too tight where terms cancel (an output much smaller
//!   than its terms has a rounding error of the terms' size, not its own).
//!
//! Both follow IEEE special values alike: NaN matches NaN; a NaN or an infinity on one side only,
//! or infinities of different sign, fail.

use ndarray::{Array, ArrayView, ArrayView1, ArrayView4, Dimension, Ix1, Ix4};

use crate::activation::{Activation, SavedTensor};
use crate::cpu;
use crate::error::Result;
use crate::gpu::conv2d::reduce::BLOCK_TERMS;
use crate::grads::{Conv2dGrads, GradSelection};
use crate::params::{
    AxisGeometry, Conv2dGeometry, Conv2dParams, ConvTranspose2dParams, Layout, Pool2dParams,
};

/// Relative error of one f32 addition or multiplication on the device. WGSL calls them
/// "correctly rounded", which it defines as either neighbour of the exact result (not
/// necessarily the nearest), so one operation may be off by up to 2⁻²³ relative, not 2⁻²⁴. A
/// fused multiply-add rounds once where the pair would round twice, which only shortens chains.
pub const DEVICE_ROUNDING: f64 = f32::EPSILON as f64;

/// Relative error of the reference's one rounding, from its f64 result to f32 (to nearest).
pub const REFERENCE_ROUNDING: f64 = DEVICE_ROUNDING / 2.0;

/// Safety factor of every [`Bound`] over the error analysis: room for what the analysis
/// idealises (the f64 reference's own error, about `n · 2⁻⁵³` relative, and first-order
/// expansions of the activations' errors), without hiding a lost term.
pub const SAFETY: f64 = 2.0;

/// Largest absolute error of the device's sigmoid `1 / (1 + exp(-v))`, in units of
/// [`DEVICE_ROUNDING`], from WGSL's accuracy of `exp` (`3 + 2|v|` ulp), `+` and `/` (2.5 ulp):
/// `y(1-y)(3 + 2|v|) + 1 + 2.5`, whose first term is at most 0.99 (near |v| = 1.2).
pub const SIGMOID_ERROR: f64 = 4.5;

/// Largest absolute error of the device's `tanh(clamp(v, -15, 15))`, in units of
/// [`DEVICE_ROUNDING`]: WGSL inherits tanh's accuracy from `sinh / cosh`, each from
/// `(exp(v) ∓ exp(-v)) / 2`, so `2(3 + 2|v|) + 4.5` at |v| = 15. Clamping moves the exact value by
/// less than `1 - tanh(15)`, about 10⁻⁶ of a unit.
pub const TANH_ERROR: f64 = 70.5;

/// The legacy tolerance's factor over `n * eps`.
const LEGACY_SAFETY: f64 = 4.0;

/// How far an element may be from the reference under the whole-tensor rule.
///
/// Looser than [`ErrorBound`] wherever the largest output is larger than an element's terms,
/// and too tight where an element's terms cancel; kept for callers with no magnitudes at hand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Allowed error relative to the element's own magnitude.
    pub rel: f64,
    /// Allowed error relative to the largest magnitude in the reference (cancellation).
    pub abs_scale: f64,
}

impl Tolerance {
    /// The whole-tensor tolerance for outputs that each sum `reduction_len` products in f32:
    /// `4 · eps · n` relative to the element and to the largest finite reference value. See the
    /// type's documentation for why [`ErrorBound`] replaces it.
    pub fn for_reduction(reduction_len: usize) -> Self {
        let bound = LEGACY_SAFETY * f64::from(f32::EPSILON) * reduction_len.max(1) as f64;
        Tolerance {
            rel: bound,
            abs_scale: bound,
        }
    }

    /// Bitwise-equal results (except that any NaN matches any NaN).
    pub fn exact() -> Self {
        Tolerance {
            rel: 0.0,
            abs_scale: 0.0,
        }
    }
}

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
    pub fn conv2d_backward_weight(g: &Conv2dGeometry) -> Self {
        let weights = g.out_channels * g.in_channels_per_group() * g.h.kernel * g.w.kernel;
        Self::sum(blocked_chain(g.batch * g.h.output, g.w.output, weights))
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
fn phase_taps(axis: &AxisGeometry) -> usize {
    let step = axis.stride / gcd(axis.stride, axis.dilation);
    axis.kernel.div_ceil(step.max(1))
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// Most products one dx element sums.
fn dx_terms(g: &Conv2dGeometry) -> usize {
    g.out_channels_per_group() * phase_taps(&g.h) * phase_taps(&g.w)
}

/// The smallest storage-binding limit the blocked reductions are assumed to plan for: WebGPU's
/// least `max_storage_buffer_binding_size` (128 MiB), lavapipe's own. A device with a larger
/// limit only ever gets more, shorter blocks.
const MIN_BINDING_BYTES: usize = 128 << 20;

/// The longest chain of a blocked reduction over `rows` rows of `row_len` terms, `partials`
/// partial sums a block: a block of `r` rows is `r · row_len` terms (a chain of that many
/// roundings, in any order within the block), and its partial then takes part in the
/// `ceil(rows / r) - 1` additions of pass 2. The planner (`gpu::conv2d::reduce::ReductionPlan`)
/// takes `r` from 1 (many blocks, to keep every core busy) up to `BLOCK_TERMS / row_len` rows (at
/// least one), or more where the blocks' partials would not fit one binding of
/// [`MIN_BINDING_BYTES`]; the bound takes the worst of them, and never more than the
/// `rows · row_len` of any order. A binding limit lowered below that (the tests' splitting
/// devices) can make blocks longer still: such calls take [`ErrorBound::in_any_order`].
fn blocked_chain(rows: usize, row_len: usize, partials: usize) -> usize {
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
fn pool_windows(axis: &AxisGeometry) -> usize {
    phase_taps(axis).min(axis.output)
}

/// A [`Bound`] with the magnitudes it scales: what [`compare`] needs to judge every element.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorBound<D: Dimension> {
    /// Σ|terms| of each element, shaped like the result.
    pub magnitude: Array<f64, D>,
    /// The coefficients.
    pub bound: Bound,
    /// The most terms any element sums: what [`ErrorBound::in_any_order`] needs.
    pub terms: usize,
}

impl<D: Dimension> ErrorBound<D> {
    /// The same sums added in an order the bound's constructor did not assume, such as a
    /// gradient split into tiles whose partial sums are added afterwards (work past the binding
    /// limit or the memory budget): the any-order chain of `terms` roundings.
    pub fn in_any_order(self) -> Self {
        ErrorBound {
            bound: Bound::sum(self.terms),
            ..self
        }
    }

    /// The same bound over a dynamic-dimensional view of the magnitudes, for results handled as
    /// [`ndarray::ArrayD`].
    pub fn into_dyn(self) -> ErrorBound<ndarray::IxDyn> {
        ErrorBound {
            magnitude: self.magnitude.into_dyn(),
            bound: self.bound,
            terms: self.terms,
        }
    }
}

impl ErrorBound<Ix4> {
    /// [`crate::conv2d`] with an optional bias.
    pub fn conv2d(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        params: &Conv2dParams,
    ) -> Result<Self> {
        let g = params.geometry(
            "verify::conv2d",
            dims(&input),
            dims(&weight),
            bias.map(|b| b.len()),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv2d_magnitude(input, weight, bias, params)?,
            bound: Bound::conv2d(&g, bias.is_some()),
            terms: g.reduction_len() + usize::from(bias.is_some()),
        })
    }

    /// [`crate::conv2d_with_activation`].
    pub fn conv2d_with_activation(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        params: &Conv2dParams,
        activation: Activation,
    ) -> Result<Self> {
        let plain = Self::conv2d(input, weight, bias, params)?;
        Ok(ErrorBound {
            bound: plain.bound.with_activation(activation),
            ..plain
        })
    }

    /// [`crate::conv2d_backward_input`].
    pub fn conv2d_backward_input(
        input_shape: [usize; 4],
        weight: ArrayView4<f32>,
        grad_output: ArrayView4<f32>,
        params: &Conv2dParams,
    ) -> Result<Self> {
        let g = params.backward_geometry(
            "verify::conv2d_backward_input",
            input_shape,
            dims(&weight),
            dims(&grad_output),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv2d_backward_input_magnitude(
                input_shape,
                weight,
                grad_output,
                params,
            )?,
            bound: Bound::conv2d_backward_input(&g),
            terms: dx_terms(&g),
        })
    }

    /// [`crate::conv2d_backward_weight`], computed whole (see [`ErrorBound::in_any_order`] for
    /// a split call).
    pub fn conv2d_backward_weight(
        input: ArrayView4<f32>,
        weight_shape: [usize; 4],
        grad_output: ArrayView4<f32>,
        params: &Conv2dParams,
    ) -> Result<Self> {
        let g = params.backward_geometry(
            "verify::conv2d_backward_weight",
            dims(&input),
            weight_shape,
            dims(&grad_output),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv2d_backward_weight_magnitude(
                input,
                weight_shape,
                grad_output,
                params,
            )?,
            bound: Bound::conv2d_backward_weight(&g),
            terms: g.batch * g.h.output * g.w.output,
        })
    }

    /// The gradients `which` selects of [`crate::conv2d_backward`], computed whole.
    pub fn conv2d_backward(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        grad_output: ArrayView4<f32>,
        params: &Conv2dParams,
        which: GradSelection,
    ) -> Result<Conv2dGrads<ErrorBound<Ix4>, ErrorBound<Ix1>>> {
        params.backward_geometry(
            "verify::conv2d_backward",
            dims(&input),
            dims(&weight),
            dims(&grad_output),
        )?;
        Ok(Conv2dGrads {
            input: which
                .input
                .then(|| Self::conv2d_backward_input(dims(&input), weight, grad_output, params))
                .transpose()?,
            weight: which
                .weight
                .then(|| Self::conv2d_backward_weight(input, dims(&weight), grad_output, params))
                .transpose()?,
            bias: which
                .bias
                .then(|| ErrorBound::conv2d_backward_bias(grad_output, params.layout))
                .transpose()?,
        })
    }

    /// [`crate::conv_transpose2d`] with an optional bias.
    pub fn conv_transpose2d(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        params: &ConvTranspose2dParams,
    ) -> Result<Self> {
        let g = params.geometry(
            "verify::conv_transpose2d",
            dims(&input),
            dims(&weight),
            bias.map(|b| b.len()),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv_transpose2d_magnitude(input, weight, bias, params)?,
            bound: Bound::conv_transpose2d(&g, bias.is_some()),
            terms: dx_terms(&g) + usize::from(bias.is_some()),
        })
    }

    /// [`crate::max_pool2d_backward`]: each input element adds the gradients routed to it, at
    /// most one per window of each axis's stride phase.
    pub fn max_pool2d_backward(
        grad_output: ArrayView4<f32>,
        indices: ArrayView4<i64>,
        input_shape: [usize; 4],
        params: &Pool2dParams,
    ) -> Result<Self> {
        let g = params.geometry("verify::max_pool2d_backward", input_shape)?;
        let terms = pool_windows(&g.h) * pool_windows(&g.w);
        Ok(ErrorBound {
            magnitude: cpu::max_pool2d_backward_magnitude(
                grad_output,
                indices,
                input_shape,
                params,
            )?,
            bound: Bound::sum(terms),
            terms,
        })
    }

    /// [`crate::activation_backward`]: elementwise, scaled by `|grad_output|`.
    pub fn activation_backward(
        grad_output: ArrayView4<f32>,
        activation: Activation,
        saved: SavedTensor,
    ) -> Self {
        ErrorBound {
            magnitude: grad_output.mapv(|v| f64::from(v.abs())),
            bound: Bound::activation_backward(activation, saved),
            terms: 1,
        }
    }
}

impl ErrorBound<Ix1> {
    /// [`crate::conv2d_backward_bias`] of `grad_output` stored in `layout`, computed whole.
    pub fn conv2d_backward_bias(grad_output: ArrayView4<f32>, layout: Layout) -> Result<Self> {
        let magnitude = cpu::conv2d_backward_bias_magnitude(grad_output, layout)?;
        let [n, channels, oh, ow] = layout.logical_activation(dims(&grad_output));
        Ok(ErrorBound {
            magnitude,
            bound: Bound::sum(blocked_chain(n * oh, ow, channels)),
            terms: n * oh * ow,
        })
    }
}

fn dims<T>(a: &ArrayView4<T>) -> [usize; 4] {
    let d = a.dim();
    [d.0, d.1, d.2, d.3]
}

/// What [`compare`] judges by: the whole-tensor [`Tolerance`] or a per-element [`ErrorBound`].
/// Both convert into it, so `compare(a, e, Tolerance::exact())` and `compare(a, e, &bound)`
/// read alike.
#[derive(Clone, Copy, Debug)]
pub enum Criterion<'a, D: Dimension> {
    /// The whole-tensor rule.
    Tolerance(Tolerance),
    /// The per-element bound.
    Bound(&'a ErrorBound<D>),
}

impl<D: Dimension> From<Tolerance> for Criterion<'_, D> {
    fn from(t: Tolerance) -> Self {
        Criterion::Tolerance(t)
    }
}

impl<'a, D: Dimension> From<&'a ErrorBound<D>> for Criterion<'a, D> {
    fn from(b: &'a ErrorBound<D>) -> Self {
        Criterion::Bound(b)
    }
}

/// The rule a [`Comparison`] applied.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// The whole-tensor tolerance, with its absolute part (`abs_scale · max |expected|`).
    Tolerance {
        /// The tolerance.
        tolerance: Tolerance,
        /// `abs_scale · max |expected|`.
        abs_tol: f64,
    },
    /// The per-element bound's coefficients.
    Bound(Bound),
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Tolerance { tolerance, abs_tol } => write!(
                f,
                "tolerance (rel {:.2e}, abs {:.2e})",
                tolerance.rel, abs_tol
            ),
            Rule::Bound(b) => write!(f, "bound ({b})"),
        }
    }
}

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Largest `|actual - expected|`.
    pub max_abs_err: f64,
    /// Largest `|actual - expected| / |expected|` over elements with a nonzero reference.
    pub max_rel_err: f64,
    /// Index of the element whose error is the largest fraction of what it is allowed.
    pub worst_index: Vec<usize>,
    /// The actual value there.
    pub worst_actual: f32,
    /// The expected value there.
    pub worst_expected: f32,
    /// The error allowed there.
    pub worst_allowed: f64,
    /// Its error over what it is allowed: above 1 fails; 0 when every element is exact;
    /// infinite where an element allowed nothing has an error, or special values differ.
    pub worst_ratio: f64,
    /// How many elements fail.
    pub failures: usize,
    /// The number of elements compared.
    pub len: usize,
    /// The rule applied.
    pub rule: Rule,
}

impl Comparison {
    /// True when every element is within what it is allowed.
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} elements outside the {}; worst at {:?}: got {}, expected {}, error {:.3e} \
             = {:.3} of the {:.3e} allowed there; max abs err {:.3e}, max rel err {:.3e}",
            self.failures,
            self.len,
            self.rule,
            self.worst_index,
            self.worst_actual,
            self.worst_expected,
            (f64::from(self.worst_actual) - f64::from(self.worst_expected)).abs(),
            self.worst_ratio,
            self.worst_allowed,
            self.max_abs_err,
            self.max_rel_err,
        )
    }
}

/// Compares `actual` with `expected` element by element, under a whole-tensor [`Tolerance`] or
/// a per-element [`ErrorBound`] (pass `&bound`).
///
/// NaN matches NaN; a NaN or an infinity on one side only, or infinities of different sign, fail.
/// Shapes must match (the bound's magnitudes too): a mismatch counts every element as failing.
pub fn compare<'a, D: Dimension + 'a>(
    actual: ArrayView<f32, D>,
    expected: ArrayView<f32, D>,
    criterion: impl Into<Criterion<'a, D>>,
) -> Comparison {
    let criterion = criterion.into();
    let rule = match criterion {
        Criterion::Tolerance(tolerance) => {
            let scale = expected
                .iter()
                .filter(|v| v.is_finite())
                .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
            Rule::Tolerance {
                tolerance,
                abs_tol: tolerance.abs_scale * scale,
            }
        }
        Criterion::Bound(b) => Rule::Bound(b.bound),
    };
    let mut report = Comparison {
        max_abs_err: 0.0,
        max_rel_err: 0.0,
        worst_index: vec![],
        worst_actual: 0.0,
        worst_expected: 0.0,
        worst_allowed: 0.0,
        worst_ratio: 0.0,
        failures: 0,
        len: expected.len(),
        rule,
    };
    let magnitudes_fit = match criterion {
        Criterion::Bound(b) => b.magnitude.shape() == expected.shape(),
        Criterion::Tolerance(_) => true,
    };
    if actual.shape() != expected.shape() || !magnitudes_fit {
        report.failures = expected.len().max(actual.len()).max(1);
        report.max_abs_err = f64::INFINITY;
        report.max_rel_err = f64::INFINITY;
        report.worst_ratio = f64::INFINITY;
        return report;
    }
    let mut magnitudes = match criterion {
        Criterion::Bound(b) => Some(b.magnitude.iter()),
        Criterion::Tolerance(_) => None,
    };
    // The worst element is the one with the largest error as a fraction of what it is allowed.
    let mut worst_ratio = -1.0f64;
    for (flat, (&a, &e)) in actual.iter().zip(expected.iter()).enumerate() {
        let allowed = match (&rule, magnitudes.as_mut()) {
            (Rule::Tolerance { tolerance, abs_tol }, _) => {
                abs_tol + tolerance.rel * f64::from(e).abs()
            }
            (Rule::Bound(b), Some(m)) => {
                b.allowed(*m.next().expect("magnitudes match in shape"), e)
            }
            (Rule::Bound(_), None) => unreachable!("a bound comes with its magnitudes"),
        };
        let (err, ok) = element_error(a, e, allowed);
        let ratio = if err == 0.0 {
            0.0
        } else {
            // Special values that differ, or an allowance of NaN, are never a finite fraction.
            match (ok, err / allowed) {
                (true, r) => r,
                (false, r) if r > 1.0 => r,
                (false, _) => f64::INFINITY,
            }
        };
        if !ok {
            report.failures += 1;
        }
        report.max_abs_err = report.max_abs_err.max(err);
        if e != 0.0 && e.is_finite() {
            report.max_rel_err = report.max_rel_err.max(err / f64::from(e).abs());
        } else if err > 0.0 {
            report.max_rel_err = f64::INFINITY;
        }
        if ratio > worst_ratio {
            worst_ratio = ratio;
            report.worst_index = unravel(flat, expected.shape());
            report.worst_actual = a;
            report.worst_expected = e;
            report.worst_allowed = allowed;
        }
    }
    report.worst_ratio = worst_ratio.max(0.0);
    report
}

/// `(|a - e|, within allowed)` with IEEE special values handled. An allowance that is NaN
/// (magnitudes of non-finite terms beside a finite reference) allows nothing.
fn element_error(a: f32, e: f32, allowed: f64) -> (f64, bool) {
    if a.is_nan() || e.is_nan() {
        return if a.is_nan() && e.is_nan() {
            (0.0, true)
        } else {
            (f64::INFINITY, false)
        };
    }
    if a.is_infinite() || e.is_infinite() {
        return if a == e {
            (0.0, true)
        } else {
            (f64::INFINITY, false)
        };
    }
    let err = (f64::from(a) - f64::from(e)).abs();
    (err, err <= allowed)
}

/// The multi-index of the `flat`-th element in row-major order of `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &d) in shape.iter().enumerate().rev() {
        index[i] = flat % d;
        flat /= d;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array4};

    #[test]
    fn reports_worst_element_and_errors() {
        let expected = array![[1.0f32, 2.0], [4.0, -8.0]];
        let actual = array![[1.0f32, 2.0], [4.5, -8.0]];
        let c = compare(actual.view(), expected.view(), Tolerance::for_reduction(9));
        assert!(!c.passed());
        assert_eq!(c.failures, 1);
        assert_eq!(c.worst_index, vec![1, 0]);
        assert!((c.max_abs_err - 0.5).abs() < 1e-12);
        assert!((c.max_rel_err - 0.125).abs() < 1e-12);
        // rel and abs parts: 4 · 2⁻²³ · 9 · (4 + 8).
        let allowed = 4.0 * f64::from(f32::EPSILON) * 9.0 * 12.0;
        assert!((c.worst_allowed - allowed).abs() < 1e-15);
        assert!((c.worst_ratio - 0.5 / allowed).abs() < 1e-6);
    }

    #[test]
    fn tolerance_grows_with_reduction_length() {
        let expected = array![1000.0f32];
        let actual = array![1000.0f32 + 0.01];
        assert!(!compare(actual.view(), expected.view(), Tolerance::for_reduction(9)).passed());
        assert!(compare(
            actual.view(),
            expected.view(),
            Tolerance::for_reduction(9000)
        )
        .passed());
    }

    #[test]
    fn nan_matches_only_nan() {
        let e = array![f32::NAN, 1.0];
        assert!(compare(e.view(), e.view(), Tolerance::exact()).passed());
        let a = array![1.0f32, 1.0];
        assert_eq!(compare(a.view(), e.view(), Tolerance::exact()).failures, 1);
        let inf = array![f32::INFINITY, 1.0];
        let ninf = array![f32::NEG_INFINITY, 1.0];
        assert_eq!(
            compare(inf.view(), ninf.view(), Tolerance::exact()).failures,
            1
        );
        // The same rules under a bound that would allow anything finite.
        let loose = ErrorBound {
            magnitude: array![1e30, 1e30],
            bound: Bound::sum(100),
            terms: 100,
        };
        assert!(compare(e.view(), e.view(), &loose).passed());
        assert_eq!(compare(a.view(), e.view(), &loose).failures, 1);
        let c = compare(inf.view(), ninf.view(), &loose);
        assert_eq!(c.failures, 1);
        assert_eq!(c.worst_ratio, f64::INFINITY);
        assert!(compare(inf.view(), inf.view(), &loose).passed());
    }

    #[test]
    fn shape_mismatch_fails() {
        let a = ndarray::Array2::<f32>::zeros((2, 3));
        let b = ndarray::Array2::<f32>::zeros((3, 2));
        assert!(!compare(a.view(), b.view(), Tolerance::for_reduction(1)).passed());
        let bound = ErrorBound {
            magnitude: ndarray::Array2::<f64>::zeros((3, 2)),
            bound: Bound::sum(1),
            terms: 1,
        };
        assert!(!compare(a.view(), a.view(), &bound).passed());
    }

    #[test]
    fn gamma_and_sum_follow_the_formula() {
        let e = 2f64.powi(-23);
        assert_eq!(gamma(0), 0.0);
        assert!((gamma(10) - 10.0 * e / (1.0 - 10.0 * e)).abs() < 1e-22);
        assert_eq!(gamma(1 << 23), f64::INFINITY);
        let b = Bound::sum(577);
        assert!((b.magnitude - 2.0 * 577.0 * e / (1.0 - 577.0 * e)).abs() < 1e-18);
        assert_eq!(b.value, 2.0 * 2f64.powi(-24));
        assert_eq!(b.absolute, 2.0 * 577.0 * 2f64.powi(-126));
        // magnitude 3, expected -0.5: 3·m + 0.5·v + a.
        let allowed = b.allowed(3.0, -0.5);
        assert!((allowed - (3.0 * b.magnitude + 0.5 * b.value + b.absolute)).abs() < 1e-20);
        assert_eq!(Bound::exact().allowed(f64::INFINITY, 1.0), 0.0);
    }

    #[test]
    fn activations_scale_and_widen_the_sum() {
        let e = 2f64.powi(-23);
        let sum = Bound::sum(28);
        assert_eq!(sum.with_activation(Activation::Relu), sum);
        let sigmoid = sum.with_activation(Activation::Sigmoid);
        assert_eq!(sigmoid.magnitude, sum.magnitude / 4.0);
        assert_eq!(sigmoid.absolute, sum.absolute / 4.0 + 2.0 * 4.5 * e);
        let tanh = sum.with_activation(Activation::Tanh);
        assert_eq!(tanh.absolute, sum.absolute + 2.0 * 70.5 * e);
        let leaky = sum.with_activation(Activation::LeakyRelu { slope: -3.0 });
        assert_eq!(leaky.magnitude, 3.0 * sum.magnitude);
        assert_eq!(leaky.value, sum.value + 2.0 * e);
        assert_eq!(
            Bound::activation_backward(Activation::Relu, SavedTensor::Output),
            Bound::exact()
        );
        let b = Bound::activation_backward(Activation::Tanh, SavedTensor::PreActivation);
        assert!((b.magnitude - 2.0 * 142.0 * e * (1.0 + gamma(3))).abs() < 1e-18);
    }

    #[test]
    fn blocked_chains_take_the_worst_block_size() {
        // 8 samples of 56 rows of 56: one row a block gives 56 + 448 - 1; 18 rows a block
        // (1008 terms, the most under 1024) give 1008 + ceil(448 / 18) - 1 = 1032.
        assert_eq!(blocked_chain(8 * 56, 56, 64 * 64 * 9), 1032);
        // Rows longer than a block: one row a block, each its own chain.
        assert_eq!(blocked_chain(3, 5000, 1), 5000 + 3 - 1);
        // Few terms: one block, at most one chain per term.
        assert_eq!(blocked_chain(2, 3, 1), 6);
        assert_eq!(blocked_chain(0, 3, 1), 0);
        // 512x512x3x3 weights at batch 32, 56x56: 2.36M partials a block leave room for 14
        // blocks in 128 MiB, so blocks of 128 rows (7,168 terms), then 14 partials.
        assert_eq!(blocked_chain(32 * 56, 56, 512 * 512 * 9), 128 * 56 + 14 - 1);
    }

    #[test]
    fn dx_terms_count_one_stride_phase() {
        let p = Conv2dParams::default().with_stride(2);
        // 3x3 taps at stride 2: at most 2 x 2 reach a dx element, for each of 5 channels.
        let g = p.geometry("t", [1, 4, 9, 9], [5, 4, 3, 3], None).unwrap();
        assert_eq!(dx_terms(&g), 5 * 2 * 2);
        assert_eq!(Bound::conv2d_backward_input(&g), Bound::sum(20));
        // Stride 2 with dilation 2: every tap lands on the same phase.
        let g = p
            .with_dilation(2)
            .geometry("t", [1, 4, 9, 9], [5, 4, 3, 3], None)
            .unwrap();
        assert_eq!(dx_terms(&g), 5 * 3 * 3);
        assert_eq!(Bound::conv2d(&g, true), Bound::sum(4 * 9 + 1));
    }

    /// Three products near ±0.6 that cancel to about -2.3e-5, summed in f32 in channel order as
    /// the direct kernel does: 2.6 ulp of the result off, a tenth of an ulp of the terms. The
    /// whole-tensor tolerance, scaled by the result, rejects it; the bound, scaled by the terms,
    /// accepts it with room to spare.
    #[test]
    fn a_cancelling_sum_passes_the_bound_not_the_whole_tensor_tolerance() {
        let x = Array4::from_shape_vec((1, 3, 1, 1), vec![0.94469386f32, 0.18416373, -0.9982921])
            .unwrap();
        let w = Array4::from_shape_vec((1, 3, 1, 1), vec![-0.5940681f32, -0.60284144, -0.6733611])
            .unwrap();
        let p = Conv2dParams::default();
        let expected = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
        assert_eq!(expected[[0, 0, 0, 0]], -2.2946748e-5);
        let mut sum = 0.0f32;
        for c in 0..3 {
            sum += x[[0, c, 0, 0]] * w[[0, c, 0, 0]];
        }
        assert_eq!(sum, -2.2888184e-5);
        let actual = Array4::from_elem((1, 1, 1, 1), sum);
        assert!(!compare(actual.view(), expected.view(), Tolerance::for_reduction(3)).passed());
        let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
        assert!((bound.magnitude[[0, 0, 0, 0]] - 1.344445109566201).abs() < 1e-12);
        let c = compare(actual.view(), expected.view(), &bound);
        assert!(c.passed(), "{c}");
        // 5.86e-8 of 9.6e-7 allowed.
        assert!(c.worst_ratio > 0.05 && c.worst_ratio < 0.07, "{c}");
    }
}
