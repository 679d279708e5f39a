//! conv2d forward on the GPU against the f64 CPU reference over seeded random parameter sets.

mod common;

use common::{random_case, Flavour, Rng};
use ndarray::{s, Array4, Axis};
use wgconv::{compare, conv2d, cpu, Bound, Conv2dParams, ErrorBound, GpuTensor, Padding};

/// Cases per flavour; 10 flavours. `WGCONV_SWEEP_CASES` raises it for a longer local run.
#[test]
fn gpu_matches_reference_on_random_parameter_sets() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(0x5eed_0002);
    let mut checked = 0;
    for flavour in Flavour::ALL {
        for i in 0..common::cases_per_flavour(24) {
            let case = random_case(&mut rng, flavour);
            let x = rng.array4(case.input);
            let w = rng.array4(case.weight);
            let b = case.bias.then(|| rng.array1(case.weight[0]));
            let expected = cpu::conv2d(
                x.view(),
                w.view(),
                b.as_ref().map(|b| b.view()),
                &case.params,
            )
            .unwrap();
            let xt = GpuTensor::upload(gpu, x.view()).unwrap();
            let wt = GpuTensor::upload(gpu, w.view()).unwrap();
            let bt = b
                .as_ref()
                .map(|b| GpuTensor::upload_1d(gpu, b.view()).unwrap());
            let got = conv2d(&xt, &wt, bt.as_ref(), &case.params)
                .unwrap()
                .read()
                .unwrap();
            let bound = ErrorBound::conv2d(
                x.view(),
                w.view(),
                b.as_ref().map(|b| b.view()),
                &case.params,
            )
            .unwrap();
            let report = compare(got.view(), expected.view(), &bound);
            common::note_ratio("conv2d", &report);
            assert!(report.passed(), "{flavour:?} case {i}: {case:?}\n{report}");
            checked += 1;
        }
    }
    assert!(checked >= 200, "only {checked} cases");
}

/// A 1x1 kernel over a 4200x4200 image: 4200 rows x 1050 column tiles = 4.41M invocations,
/// which need more than 65535 workgroups of 64 and therefore a folded dispatch grid.
#[test]
fn dispatch_beyond_65535_workgroups_is_folded_and_correct() {
    let Some(gpu) = common::gpu() else { return };
    let side = 4200;
    let mut rng = Rng::new(7);
    let x = rng.array4([1, 1, side, side]);
    let w = Array4::from_elem((1, 1, 1, 1), 0.5f32);
    let p = Conv2dParams::default();
    // One invocation per 4 output columns of the one channel, in workgroups of 64: more than
    // one grid dimension holds (the folding itself is checked by the forward's unit tests).
    let workgroups = (side * side.div_ceil(4)).div_ceil(64);
    assert!(workgroups > 65535, "{workgroups}");
    let got = conv2d(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        &GpuTensor::upload(gpu, w.view()).unwrap(),
        None,
        &p,
    )
    .unwrap()
    .read()
    .unwrap();
    // x * 0.5 is exact in binary floating point, so every element must match bit for bit,
    // including the last rows that live in the folded part of the grid.
    assert_eq!(got, x.mapv(|v| v * 0.5));
}

#[test]
fn upload_of_a_strided_view_uses_logical_order() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(11);
    let big = rng.array4([2, 6, 9, 10]);
    // Every other channel, transposed spatial axes: neither contiguous nor standard-ordered.
    let view = big.slice(s![.., ..;2, .., ..]).reversed_axes();
    let view = view.permuted_axes([3, 2, 1, 0]);
    assert!(!view.is_standard_layout());
    let t = GpuTensor::upload(gpu, view).unwrap();
    assert_eq!(t.shape(), &[2, 3, 9, 10]);
    assert_eq!(t.read().unwrap(), view.to_owned());

    let w = rng.array4([4, 3, 3, 3]);
    let wt_view = w.view().permuted_axes([0, 1, 3, 2]);
    let expected = cpu::conv2d(view, wt_view, None, &Conv2dParams::default()).unwrap();
    let got = conv2d(
        &t,
        &GpuTensor::upload(gpu, wt_view).unwrap(),
        None,
        &Conv2dParams::default(),
    )
    .unwrap()
    .read()
    .unwrap();
    let bound = ErrorBound::conv2d(view, wt_view, None, &Conv2dParams::default()).unwrap();
    assert!(compare(got.view(), expected.view(), &bound).passed());
}

#[test]
fn read_async_returns_the_same_values() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(12);
    let x = rng.array4([2, 3, 5, 7]);
    let t = GpuTensor::upload(gpu, x.view()).unwrap();
    assert_eq!(pollster::block_on(t.read_async()).unwrap(), x);
}

/// Ops chain on the GPU without a read in between; only the final read synchronises.
#[test]
fn chained_ops_stay_on_the_gpu() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(13);
    let x = rng.array4([2, 3, 12, 12]);
    let w1 = rng.array4([8, 3, 3, 3]);
    let w2 = rng.array4([4, 8, 3, 3]);
    let p = Conv2dParams::default().with_padding(Padding::Same);
    let expected = {
        let y = cpu::conv2d(x.view(), w1.view(), None, &p).unwrap();
        cpu::conv2d(y.view(), w2.view(), None, &p).unwrap()
    };
    let y = conv2d(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        &GpuTensor::upload(gpu, w1.view()).unwrap(),
        None,
        &p,
    )
    .unwrap();
    let z = conv2d(&y, &GpuTensor::upload(gpu, w2.view()).unwrap(), None, &p).unwrap();
    let got = z.read().unwrap();
    // Two stacked reductions of 27 and 72 terms: the first one's error, at most γ_27 times its
    // magnitudes (and the reference's rounding of y, one more), reaches the second through |w2|,
    // so the whole is within γ_(27+1+72) of the magnitudes carried through both layers.
    let first = cpu::conv2d_magnitude(x.view(), w1.view(), None, &p).unwrap();
    let abs_w2 = w2.mapv(|v| f64::from(v.abs()));
    let bound = ErrorBound {
        magnitude: cpu::conv2d_f64(first.view(), abs_w2.view(), None, &p).unwrap(),
        bound: Bound::sum(27 + 1 + 72),
        terms: 27 + 1 + 72,
    };
    let report = compare(got.view(), expected.view(), &bound);
    assert!(report.passed(), "{report}");
}

/// Depthwise with a channel multiplier: output channel k reads input channel k / multiplier only.
#[test]
fn depthwise_reads_only_its_own_channel() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(14);
    let x = rng.array4([1, 3, 6, 6]);
    let w = rng.array4([6, 1, 3, 3]);
    let p = Conv2dParams::default().with_groups(3);
    let got = conv2d(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        &GpuTensor::upload(gpu, w.view()).unwrap(),
        None,
        &p,
    )
    .unwrap()
    .read()
    .unwrap();
    let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
    for k in 0..6 {
        let single = cpu::conv2d(
            x.slice(s![.., k / 2..k / 2 + 1, .., ..]),
            w.slice(s![k..k + 1, .., .., ..]),
            None,
            &Conv2dParams::default(),
        )
        .unwrap();
        let channel = ErrorBound {
            magnitude: bound.magnitude.index_axis(Axis(1), k).to_owned(),
            bound: bound.bound,
            terms: bound.terms,
        };
        let report = compare(
            got.index_axis(Axis(1), k),
            single.index_axis(Axis(1), 0),
            &channel,
        );
        assert!(report.passed(), "channel {k}: {report}");
    }
}
