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
use crate::gpu::conv2d::packed::reduces_over_planes;
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

mod bound;
mod error_bound;

#[allow(unused_imports)] // the helpers the two halves share
use bound::*;
pub use bound::{gamma, Bound};
pub use error_bound::ErrorBound;
#[allow(unused_imports)]
use error_bound::*;

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
    fn weight_gradient_bounds_cover_a_reduction_over_planes() {
        let same = Conv2dParams::default().with_padding(crate::Padding::uniform(1));
        // 12.6M weights leave room for 2 blocks of partials in 128 MiB: 3 images of 30x30
        // planes go by rows in blocks of 45 rows (1350 terms, then 2 partials), by planes in
        // blocks of 2 images (1800 terms): the bound takes the longer.
        let g = same
            .geometry("t", [3, 1000, 30, 30], [1400, 1000, 3, 3], None)
            .unwrap();
        assert_eq!(blocked_chain(3 * 30, 30, 1400 * 1000 * 9), 45 * 30 + 2 - 1);
        assert_eq!(
            Bound::conv2d_backward_weight(&g),
            Bound::sum(2 * 900 + 2 - 1)
        );
        // NHWC never reduces over planes.
        let g = same
            .with_layout(crate::Layout::Nhwc)
            .geometry("t", [3, 30, 30, 1000], [3, 3, 1000, 1400], None)
            .unwrap();
        assert_eq!(
            Bound::conv2d_backward_weight(&g),
            Bound::sum(45 * 30 + 2 - 1)
        );
        // 14x14 planes at batch 8: blocks of up to 5 images (980 terms) are as long as some
        // block of rows, so the rows' chain stands.
        let g = same
            .geometry("t", [8, 256, 14, 14], [256, 256, 3, 3], None)
            .unwrap();
        assert_eq!(
            Bound::conv2d_backward_weight(&g),
            Bound::sum(blocked_chain(8 * 14, 14, 256 * 256 * 9))
        );
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
