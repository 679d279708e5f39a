//! The per-element error bound still catches a reduction that drops one term, where the whole-tensor tolerance does not.
//!
//! Each test runs a real layer on the GPU, checks that the result is within its bound, then
//! replaces one output element by the CPU reference computed without one typical term of that
//! element's sum (a weight or gradient zeroed), as a kernel that skipped the last tap of the
//! last channel would. A second channel with 256 times larger values stands for the unequal
//! scales of real layers: the whole-tensor tolerance, relative to the largest output, lets the
//! missing term through; the bound, relative to the element's own Σ|terms|, does not.

mod common;

use ndarray::{s, Array4, Axis};
use wgconv::{compare, cpu, Conv2dParams, ErrorBound, GpuTensor, Padding, Tolerance};

/// Index of the median of `values` by magnitude: a typical term, neither the largest nor one
/// near zero, which no bound could tell from rounding.
fn median_by_magnitude(values: &[(usize, usize, f64)]) -> (usize, usize, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.2.abs().total_cmp(&b.2.abs()));
    sorted[sorted.len() / 2]
}

/// A 3x3 layer of 64 input channels: 576 products and a bias per output. Output channel 0
/// loses the last tap of its last input channel at one position.
#[test]
fn a_forward_sum_of_577_terms_missing_one_is_flagged() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = common::Rng::new(0xb0b0_0001);
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    let x = rng.array4([1, 64, 10, 10]);
    let mut w = rng.array4([8, 64, 3, 3]);
    w.index_axis_mut(Axis(0), 7).mapv_inplace(|v| v * 256.0);
    let b = rng.array1(8);
    let want = cpu::conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
    let got = wgconv::conv2d(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        &GpuTensor::upload(gpu, w.view()).unwrap(),
        Some(&GpuTensor::upload_1d(gpu, b.view()).unwrap()),
        &p,
    )
    .unwrap()
    .read()
    .unwrap();
    let bound = ErrorBound::conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
    let clean = compare(got.view(), want.view(), &bound);
    assert!(clean.passed(), "{clean}");

    // Tap (2, 2) of output (oy, ox) reads input (oy + 1, ox + 1): inside the image for the
    // interior outputs, where the term is x[63, oy + 1, ox + 1] * w[0, 63, 2, 2].
    let tap = w[[0, 63, 2, 2]];
    let terms: Vec<_> = (1..9)
        .flat_map(|oy| (1..9).map(move |ox| (oy, ox)))
        .map(|(oy, ox)| {
            (
                oy,
                ox,
                f64::from(x[[0, 63, oy + 1, ox + 1]]) * f64::from(tap),
            )
        })
        .collect();
    let (oy, ox, term) = median_by_magnitude(&terms);
    let mut w_dropped = w.clone();
    w_dropped[[0, 63, 2, 2]] = 0.0;
    let dropped = cpu::conv2d(x.view(), w_dropped.view(), Some(b.view()), &p).unwrap();
    let mut mutated = got.clone();
    mutated[[0, 0, oy, ox]] = dropped[[0, 0, oy, ox]];
    // The term is typical of the sum: within a factor 3 of the mean |term| there.
    let mean = bound.magnitude[[0, 0, oy, ox]] / 577.0;
    assert!(
        term.abs() > mean / 3.0 && term.abs() < 3.0 * mean,
        "{term} vs {mean}"
    );

    let flagged = compare(mutated.view(), want.view(), &bound);
    assert_eq!(flagged.failures, 1, "{flagged}");
    assert_eq!(flagged.worst_index, vec![0, 0, oy, ox]);
    assert!(flagged.worst_ratio > 5.0, "{flagged}");
    let old = compare(mutated.view(), want.view(), Tolerance::for_reduction(577));
    assert!(
        old.passed(),
        "the whole-tensor tolerance now sees it: {old}"
    );
    eprintln!(
        "dropped term {term:.4e}: error/bound {:.2}; the whole-tensor tolerance allowed {:.3e}",
        flagged.worst_ratio, old.worst_allowed
    );
}

/// The weight gradient over 2 samples of 32 x 32 outputs: 2,048 products per weight, in the
/// kernels' blocks. One weight loses the term of one output position.
#[test]
fn a_weight_gradient_of_2048_terms_missing_one_is_flagged() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = common::Rng::new(0xb0b0_0002);
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    let x = rng.array4([2, 8, 32, 32]);
    let mut dy = rng.array4([2, 4, 32, 32]);
    dy.index_axis_mut(Axis(1), 3).mapv_inplace(|v| v * 256.0);
    let shape = [4, 8, 3, 3];
    let want = cpu::conv2d_backward_weight(x.view(), shape, dy.view(), &p).unwrap();
    let got = wgconv::conv2d_backward_weight(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        shape,
        &GpuTensor::upload(gpu, dy.view()).unwrap(),
        &p,
    )
    .unwrap()
    .read()
    .unwrap();
    let bound = ErrorBound::conv2d_backward_weight(x.view(), shape, dy.view(), &p).unwrap();
    let clean = compare(got.view(), want.view(), &bound);
    assert!(clean.passed(), "{clean}");

    // dw[0, 7, 2, 2] sums x[n, 7, oy + 1, ox + 1] * dy[n, 0, oy, ox]: drop one interior
    // position of sample 1.
    let terms: Vec<_> = (0..31)
        .flat_map(|oy| (0..31).map(move |ox| (oy, ox)))
        .map(|(oy, ox)| {
            let t = f64::from(x[[1, 7, oy + 1, ox + 1]]) * f64::from(dy[[1, 0, oy, ox]]);
            (oy, ox, t)
        })
        .collect();
    let (oy, ox, term) = median_by_magnitude(&terms);
    let mut dy_dropped = dy.clone();
    dy_dropped[[1, 0, oy, ox]] = 0.0;
    let dropped = cpu::conv2d_backward_weight(x.view(), shape, dy_dropped.view(), &p).unwrap();
    let mut mutated: Array4<f32> = got.clone();
    mutated[[0, 7, 2, 2]] = dropped[[0, 7, 2, 2]];
    let mean = bound.magnitude[[0, 7, 2, 2]] / 2048.0;
    assert!(
        term.abs() > mean / 3.0 && term.abs() < 3.0 * mean,
        "{term} vs {mean}"
    );

    let flagged = compare(mutated.view(), want.view(), &bound);
    assert_eq!(flagged.failures, 1, "{flagged}");
    assert_eq!(flagged.worst_index, vec![0, 7, 2, 2]);
    assert!(flagged.worst_ratio > 1.25, "{flagged}");
    let old = compare(mutated.view(), want.view(), Tolerance::for_reduction(2048));
    assert!(
        old.passed(),
        "the whole-tensor tolerance now sees it: {old}"
    );
    // The channel the old rule scales by is not the one that lost the term.
    assert!(want
        .slice(s![3, .., .., ..])
        .iter()
        .any(|v| v.abs() > 1000.0));
    eprintln!(
        "dropped term {term:.4e}: error/bound {:.2}; the whole-tensor tolerance allowed {:.3e}",
        flagged.worst_ratio, old.worst_allowed
    );
}
