//! Comparing a GPU result with the CPU reference: worst errors, where they are, and a verdict.
//!
//! The tolerance follows the error bound of a floating-point sum: a dot product of `n` f32 terms
//! can be off by about `n * eps` relative to the sum of the terms' magnitudes. We do not know that
//! sum per element, so the absolute part of the tolerance uses the largest magnitude in the
//! reference as its scale. An element passes when `|actual - expected| <= abs + rel * |expected|`.

use ndarray::{ArrayView, Dimension};

/// How far an element may be from the reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Allowed error relative to the element's own magnitude.
    pub rel: f64,
    /// Allowed error relative to the largest magnitude in the reference (cancellation).
    pub abs_scale: f64,
}

/// Safety factor over `n * eps`: GPU and CPU sum in different orders and the GPU may fuse
/// multiply-adds.
const SAFETY: f64 = 4.0;

impl Tolerance {
    /// The tolerance for outputs that each sum `reduction_len` products in f32.
    pub fn for_reduction(reduction_len: usize) -> Self {
        let bound = SAFETY * f64::from(f32::EPSILON) * reduction_len.max(1) as f64;
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

/// What [`compare`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Largest `|actual - expected|`.
    pub max_abs_err: f64,
    /// Largest `|actual - expected| / |expected|` over elements with a nonzero reference.
    pub max_rel_err: f64,
    /// Index of the element that is furthest outside (or closest to) its tolerance.
    pub worst_index: Vec<usize>,
    /// The actual value there.
    pub worst_actual: f32,
    /// The expected value there.
    pub worst_expected: f32,
    /// How many elements fail the tolerance.
    pub failures: usize,
    /// The number of elements compared.
    pub len: usize,
    /// Absolute tolerance that was applied (`abs_scale * max |expected|`).
    pub abs_tol: f64,
    /// The tolerance used.
    pub tolerance: Tolerance,
}

impl Comparison {
    /// True when every element is within the tolerance.
    pub fn passed(&self) -> bool {
        self.failures == 0
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} elements outside tolerance (rel {:.2e}, abs {:.2e}); max abs err {:.3e}, \
             max rel err {:.3e}; worst at {:?}: got {}, expected {}",
            self.failures,
            self.len,
            self.tolerance.rel,
            self.abs_tol,
            self.max_abs_err,
            self.max_rel_err,
            self.worst_index,
            self.worst_actual,
            self.worst_expected
        )
    }
}

/// Compares `actual` with `expected` element by element.
///
/// NaN matches NaN; a NaN or an infinity on one side only, or infinities of different sign, fail.
/// Shapes must match: a mismatch counts every element as failing.
pub fn compare<D: Dimension>(
    actual: ArrayView<f32, D>,
    expected: ArrayView<f32, D>,
    tolerance: Tolerance,
) -> Comparison {
    let scale = expected
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, &v| m.max(f64::from(v).abs()));
    let abs_tol = tolerance.abs_scale * scale;
    let mut report = Comparison {
        max_abs_err: 0.0,
        max_rel_err: 0.0,
        worst_index: vec![],
        worst_actual: 0.0,
        worst_expected: 0.0,
        failures: 0,
        len: expected.len(),
        abs_tol,
        tolerance,
    };
    if actual.shape() != expected.shape() {
        report.failures = expected.len().max(actual.len()).max(1);
        report.max_abs_err = f64::INFINITY;
        report.max_rel_err = f64::INFINITY;
        return report;
    }
    // The worst element is the one with the largest error as a fraction of what it is allowed.
    let mut worst_ratio = -1.0f64;
    for (flat, (&a, &e)) in actual.iter().zip(expected.iter()).enumerate() {
        let (err, ok) = element_error(a, e, abs_tol, tolerance.rel);
        let allowed = abs_tol + tolerance.rel * f64::from(e).abs();
        let ratio = if err == 0.0 {
            0.0
        } else if allowed > 0.0 {
            err / allowed
        } else {
            f64::INFINITY
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
        }
    }
    report
}

/// `(|a - e|, within tolerance)` with IEEE special values handled.
fn element_error(a: f32, e: f32, abs_tol: f64, rel: f64) -> (f64, bool) {
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
    (err, err <= abs_tol + rel * f64::from(e).abs())
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
    use ndarray::array;

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
    }

    #[test]
    fn shape_mismatch_fails() {
        let a = ndarray::Array2::<f32>::zeros((2, 3));
        let b = ndarray::Array2::<f32>::zeros((3, 2));
        assert!(!compare(a.view(), b.view(), Tolerance::for_reduction(1)).passed());
    }
}
