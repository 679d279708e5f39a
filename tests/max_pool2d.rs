//! Max pooling: the Keras tutorial's examples, each PyTorch rule by hand, GPU against the CPU
//! reference (exact), backward against finite differences, determinism, index checks.

mod common;

use common::Rng;
use ndarray::{array, s, Array4};
use wgconv::{
    compare, cpu, max_pool2d, max_pool2d_backward, max_pool2d_with_indices, Error, ErrorBound,
    GpuTensor, Layout, Pool2dParams,
};

/// Values and indices from the CPU reference and, when there is an adapter, from both GPU
/// entry points (which must agree bit for bit with each other and with the CPU).
fn pool_everywhere(x: &Array4<f32>, p: &Pool2dParams) -> (Array4<f32>, Array4<i64>) {
    let (values, indices) = cpu::max_pool2d_with_indices(x.view(), p).unwrap();
    assert_eq!(bits(&cpu::max_pool2d(x.view(), p).unwrap()), bits(&values));
    if let Some(gpu) = common::gpu() {
        let xt = GpuTensor::upload(gpu, x.view()).unwrap();
        let (v, i) = max_pool2d_with_indices(&xt, p).unwrap();
        let inference = max_pool2d(&xt, p).unwrap().read().unwrap();
        assert_eq!(
            bits(&v.read().unwrap()),
            bits(&values),
            "gpu values for {p:?}"
        );
        assert_eq!(i.read_indices().unwrap(), indices, "gpu indices for {p:?}");
        assert_eq!(
            bits(&inference),
            bits(&values),
            "gpu inference values for {p:?}"
        );
    }
    (values, indices)
}

fn bits(a: &Array4<f32>) -> Vec<u32> {
    // Every NaN compares equal to every NaN; other values bit for bit.
    a.iter()
        .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
        .collect()
}

/// NHWC array from the tutorial, as NCHW.
fn nchw(nhwc: Array4<f32>) -> Array4<f32> {
    nhwc.permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .to_owned()
}

/// The Keras tutorial's feature maps (1, 3, 3, 2), MaxPool2D 2x2 stride 2 gives (1, 1, 1, 2)
/// `[0.9654248, 1.2988867]`; with stride 1 the printed (1, 2, 2, 2) map.
#[test]
fn keras_max_pool_2x2() {
    let feature_maps = nchw(array![[
        [
            [0.89900464f32, -1.0616233],
            [-0.10247962, 1.2988867],
            [-0.8515937, 0.6712394]
        ],
        [
            [0.9654248, 0.23607667],
            [-0.43404913, 0.27193436],
            [-0.5712364, -0.73882663]
        ],
        [
            [0.6847748, -0.8419535],
            [0.46285468, 0.7197448],
            [-1.3353215, 0.47066653]
        ],
    ]]);
    let (y, _) = pool_everywhere(&feature_maps, &Pool2dParams::new(2, 2));
    assert_eq!(y.dim(), (1, 2, 1, 1));
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        vec![0.9654248, 1.2988867]
    );

    let (yy, _) = pool_everywhere(&feature_maps, &Pool2dParams::new(2, 2).with_stride(1));
    let printed = nchw(array![[
        [[0.9654248f32, 1.2988867], [-0.10247962, 1.2988867]],
        [[0.9654248, 0.7197448], [0.46285468, 0.7197448]],
    ]]);
    assert_eq!(yy, printed);
}

/// The Keras tutorial's home-made `pool2D` (stride 1) is right and its `pool2D_` gets the size
/// wrong for stride 2 (a 2x2 map padded with zeros); ours gives the 1x1 map.
#[test]
// The digits are the tutorial's printed float64 values; pooling selects them, so their f32
// roundings must come back unchanged.
#[allow(clippy::excessive_precision)]
fn home_made_pooling_sizes() {
    let x = array![
        [-1.25540847f32, 0.30410219, -0.13907104],
        [0.41550751, 0.01748251, -0.22689558],
        [0.41602673, -1.1301399, -0.82329309]
    ]
    .into_shape_with_order((1, 1, 3, 3))
    .unwrap();
    let (y, _) = pool_everywhere(&x, &Pool2dParams::new(2, 2).with_stride(1));
    assert_eq!(
        y.slice(s![0, 0, .., ..]),
        array![[0.41550751f32, 0.30410219], [0.41602673, 0.01748251]]
    );
    let (y, _) = pool_everywhere(&x, &Pool2dParams::new(2, 2));
    assert_eq!(y.dim(), (1, 1, 1, 1));
    assert_eq!(y[[0, 0, 0, 0]], 0.41550751);
}

fn plane(rows: &[&[f32]]) -> Array4<f32> {
    let h = rows.len();
    let w = rows[0].len();
    Array4::from_shape_vec(
        (1, 1, h, w),
        rows.iter().flat_map(|r| r.iter().copied()).collect(),
    )
    .unwrap()
}

#[test]
fn ceil_mode_drops_a_window_starting_in_the_right_padding() {
    // H = W = 4, k 2, s 3, p 1: ceil gives 3 windows per axis, but the third would start at
    // padded position 6, i.e. input 5 >= 4: PyTorch drops it, leaving 2.
    let x = plane(&[
        &[1., 2., 3., 4.],
        &[5., 6., 7., 8.],
        &[9., 10., 11., 12.],
        &[13., 14., 15., 16.],
    ]);
    let p = Pool2dParams::new(2, 2)
        .with_stride(3)
        .with_padding(1)
        .with_ceil_mode(true);
    let (y, i) = pool_everywhere(&x, &p);
    // Windows: rows {-1, 0} and {2, 3}; columns likewise.
    assert_eq!(y, plane(&[&[1., 4.], &[13., 16.]]));
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), vec![0, 3, 12, 15]);
    // Without ceil_mode: floor((4 + 2 - 2)/3) + 1 = 2 as well; with k 3 s 2 p 1 on 6 the two
    // modes differ: floor(5/2)+1 = 3, ceil -> 4 (last start 6 - 1 = 5 < 6 + 1, kept).
    let x6 = Array4::from_shape_fn((1, 1, 6, 6), |(_, _, h, w)| (h * 6 + w) as f32);
    assert_eq!(
        pool_everywhere(&x6, &Pool2dParams::new(3, 3).with_stride(2).with_padding(1))
            .0
            .dim(),
        (1, 1, 3, 3)
    );
    let (y, _) = pool_everywhere(
        &x6,
        &Pool2dParams::new(3, 3)
            .with_stride(2)
            .with_padding(1)
            .with_ceil_mode(true),
    );
    assert_eq!(y.dim(), (1, 1, 4, 4));
    // The extra last window covers only row 5 and column 5 of the input.
    assert_eq!(y[[0, 0, 3, 3]], 35.0);
}

#[test]
fn ceil_mode_keeps_a_clipped_window_wider_than_the_padded_input() {
    // PyTorch: out = floor((in + 2p - d(k-1) - 1 + (s-1)) / s) + 1, rounding toward -inf.
    // 2x2, k 3, s 3: floor((2 - 2 - 1 + 2) / 3) + 1 = 1, and window 0 starts at 0 < 2, so it
    // stays; its taps past the input are skipped.
    let x = plane(&[&[1., 2.], &[3., 4.]]);
    let p = Pool2dParams::new(3, 3).with_stride(3).with_ceil_mode(true);
    let (y, i) = pool_everywhere(&x, &p);
    assert_eq!(y, plane(&[&[4.]]));
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), vec![3]);
    // Only the rows overhang: 2 x 6, k 3, s 3 gives 1 row (floor(1/3) + 1) and
    // floor((6 - 2 - 1 + 2) / 3) + 1 = 2 columns, windows over columns 0..3 and 3..6.
    let x = plane(&[&[1., 5., 2., 0., -1., -3.], &[4., 3., -2., -5., -4., -6.]]);
    let (y, i) = pool_everywhere(&x, &p);
    assert_eq!(y, plane(&[&[5., 0.]]));
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), vec![1, 3]);
    // 1x1, k 4, s 4, p 1: floor((1 + 2 - 3 - 1 + 3) / 4) + 1 = 1; the window covers padded
    // rows -1..3 of which only row 0 is input.
    let x = plane(&[&[-7.]]);
    let p = Pool2dParams::new(4, 4)
        .with_stride(4)
        .with_padding(1)
        .with_ceil_mode(true);
    let (y, i) = pool_everywhere(&x, &p);
    assert_eq!((y[[0, 0, 0, 0]], i[[0, 0, 0, 0]]), (-7., 0));
    // 1x1, k 2, dilation 5, p 2, s 2: floor((1 + 4 - 5 - 1 + 1) / 2) + 1 = 1, taps at -2 and
    // 3, none in the input: -inf, with the index of the first tap at or after 0 (row 3,
    // column 3: 3 * 1 + 3 = 6), and a gradient that reaches no input.
    let p = Pool2dParams::new(2, 2)
        .with_stride(2)
        .with_dilation(5)
        .with_padding(2)
        .with_ceil_mode(true);
    let (y, i) = pool_everywhere(&x, &p);
    assert_eq!((y[[0, 0, 0, 0]], i[[0, 0, 0, 0]]), (f32::NEG_INFINITY, 6));
    let dy = plane(&[&[2.5]]);
    let dx = cpu::max_pool2d_backward(dy.view(), i.view(), [1, 1, 1, 1], &p).unwrap();
    assert_eq!(dx, plane(&[&[0.]]));
}

#[test]
fn ceil_mode_output_size_with_a_window_past_the_input() {
    // 5 wide, k 4, s 3: floor((5 - 3 - 1 + 2) / 3) + 1 = 2 (floor mode: floor(1/3) + 1 = 1);
    // window 1 starts at 3 < 5 and covers columns 3, 4 (and 5, 6 outside).
    let x = Array4::from_shape_fn((1, 1, 5, 5), |(_, _, h, w)| (h * 5 + w) as f32);
    let p = Pool2dParams::new(4, 4).with_stride(3).with_ceil_mode(true);
    let (y, i) = pool_everywhere(&x, &p);
    assert_eq!(y, plane(&[&[18., 19.], &[23., 24.]]));
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), vec![18, 19, 23, 24]);
    let (y, _) = pool_everywhere(&x, &Pool2dParams::new(4, 4).with_stride(3));
    assert_eq!(y, plane(&[&[18.]]));
    // The gradient of each output reaches its argmax only.
    let dy = plane(&[&[1., 2.], &[3., 4.]]);
    let dx = cpu::max_pool2d_backward(dy.view(), i.view(), [1, 1, 5, 5], &p).unwrap();
    if let Some(gpu) = common::gpu() {
        let xt = GpuTensor::upload(gpu, x.view()).unwrap();
        let (_, gi) = max_pool2d_with_indices(&xt, &p).unwrap();
        let dyt = GpuTensor::upload(gpu, dy.view()).unwrap();
        let got = max_pool2d_backward(&dyt, &gi, [1, 1, 5, 5], &p).unwrap();
        assert_eq!(got.read().unwrap(), dx);
    }
    let mut want = Array4::zeros((1, 1, 5, 5));
    want[[0, 0, 3, 3]] = 1.;
    want[[0, 0, 3, 4]] = 2.;
    want[[0, 0, 4, 3]] = 3.;
    want[[0, 0, 4, 4]] = 4.;
    assert_eq!(dx, want);
}

#[test]
fn a_window_wider_than_the_padded_input_is_still_refused_where_pytorch_refuses_it() {
    let x = plane(&[&[1., 2.], &[3., 4.]]);
    // Floor mode: floor((2 - 3) / 3) + 1 = 0 outputs.
    let p = Pool2dParams::new(3, 3).with_stride(3);
    let cpu_err = cpu::max_pool2d(x.view(), &p).unwrap_err().to_string();
    for want in [
        "cpu::max_pool2d",
        "output height would be 0",
        "effective kernel height 3",
        "padded input height 2",
        "floor mode",
    ] {
        assert!(cpu_err.contains(want), "{want:?} not in {cpu_err}");
    }
    // Ceil mode with too small a stride: floor((1 - 3 + 1) / 2) + 1 = 0, as -1 / 2 rounds
    // toward -inf.
    let x1 = plane(&[&[1.]]);
    let p_ceil = Pool2dParams::new(3, 3).with_stride(2).with_ceil_mode(true);
    let e = cpu::max_pool2d(x1.view(), &p_ceil).unwrap_err().to_string();
    assert!(
        e.contains("output height would be 0") && e.contains("ceil mode"),
        "{e}"
    );
    // Padding above half the kernel stays an error in ceil mode too.
    let p_pad = Pool2dParams::new(3, 3)
        .with_stride(3)
        .with_padding(2)
        .with_ceil_mode(true);
    let e = cpu::max_pool2d(x.view(), &p_pad).unwrap_err().to_string();
    assert!(e.contains("padding height (2)") && e.contains("(3:"), "{e}");
    if let Some(gpu) = common::gpu() {
        let xt = GpuTensor::upload(gpu, x.view()).unwrap();
        for (p, want) in [
            (&p, "output height would be 0"),
            (&p_pad, "padding height (2)"),
        ] {
            let e = max_pool2d(&xt, p).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::InvalidArgument {
                        op: "max_pool2d",
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains(want), "{e}");
        }
    }
}

#[test]
fn padding_acts_as_minus_infinity() {
    let x = plane(&[&[-5., -4.], &[-3., -2.]]);
    let (y, i) = pool_everywhere(&x, &Pool2dParams::new(2, 2).with_stride(1).with_padding(1));
    // Every window holds only negatives and padding: never 0.
    assert_eq!(
        y,
        plane(&[&[-5., -4., -4.], &[-3., -2., -2.], &[-3., -2., -2.]])
    );
    assert_eq!(i.slice(s![0, 0, 0, ..]).to_vec(), vec![0, 1, 1]);
}

#[test]
fn first_maximum_wins_a_tie() {
    let x = plane(&[&[7., 7., 1.], &[7., 0., 7.], &[3., 7., 7.]]);
    let (y, i) = pool_everywhere(&x, &Pool2dParams::new(2, 2).with_stride(1));
    assert_eq!(y, plane(&[&[7., 7.], &[7., 7.]]));
    // Row-major scan: the first 7 in each window.
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), vec![0, 1, 3, 5]);
    // A window of -inf values returns -inf and the index of its first tap inside the input.
    let ninf = f32::NEG_INFINITY;
    let x = plane(&[&[ninf, ninf], &[ninf, ninf]]);
    let (y, i) = pool_everywhere(&x, &Pool2dParams::new(2, 2).with_stride(1).with_padding(1));
    assert!(y.iter().all(|&v| v == ninf));
    assert_eq!(
        i.iter().copied().collect::<Vec<_>>(),
        vec![0, 0, 1, 0, 0, 1, 2, 2, 3]
    );
}

#[test]
fn nan_propagates_with_its_index() {
    let nan = f32::NAN;
    let x = plane(&[&[1., nan, 3.], &[4., 5., 6.], &[nan, 8., nan]]);
    let (y, i) = pool_everywhere(&x, &Pool2dParams::new(2, 2).with_stride(1));
    // Windows (0,0) and (0,1) hold the NaN at index 1; (1,0) the NaN at 6; (1,1) the NaN at 8.
    assert!(y.iter().all(|v| v.is_nan()), "{y:?}");
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), vec![1, 1, 6, 8]);
    // Two NaNs in one window: PyTorch's `val > max || isnan(val)` keeps the last one.
    let (y, i) = pool_everywhere(&x, &Pool2dParams::new(3, 3));
    assert!(y[[0, 0, 0, 0]].is_nan());
    assert_eq!(i[[0, 0, 0, 0]], 8);
    // A value larger than anything after a NaN does not displace it.
    let x = plane(&[&[nan, 100.]]);
    let (y, i) = pool_everywhere(&x, &Pool2dParams::new(1, 2));
    assert!(y[[0, 0, 0, 0]].is_nan());
    assert_eq!(i[[0, 0, 0, 0]], 0);
}

#[test]
fn dilation_skips_between_taps() {
    // 5x5 ramp, k 2, dilation 2: window (0,0) taps rows {0,2} and columns {0,2}.
    let x = Array4::from_shape_fn((1, 1, 5, 5), |(_, _, h, w)| {
        ((h * 5 + w) as f32 * 7.0) % 11.0
    });
    let p = Pool2dParams::new(2, 2).with_stride(1).with_dilation(2);
    let (y, i) = pool_everywhere(&x, &p);
    assert_eq!(y.dim(), (1, 1, 3, 3));
    for oh in 0..3 {
        for ow in 0..3 {
            let taps = [(oh, ow), (oh, ow + 2), (oh + 2, ow), (oh + 2, ow + 2)];
            let (best, at) = taps
                .iter()
                .map(|&(h, w)| (x[[0, 0, h, w]], (h * 5 + w) as i64))
                .fold(
                    (f32::NEG_INFINITY, -1),
                    |acc, t| if t.0 > acc.0 { t } else { acc },
                );
            assert_eq!((y[[0, 0, oh, ow]], i[[0, 0, oh, ow]]), (best, at));
        }
    }
}

fn random_params(rng: &mut Rng) -> Pool2dParams {
    loop {
        let kernel = [rng.range(1, 4), rng.range(1, 4)];
        let p = Pool2dParams {
            kernel,
            stride: [rng.range(1, 4), rng.range(1, 4)],
            dilation: [rng.range(1, 2), rng.range(1, 2)],
            padding: [rng.range(0, 2), rng.range(0, 2)],
            ceil_mode: rng.chance(50),
            ..Pool2dParams::new(1, 1)
        };
        let input = [1, 1, 30, 30];
        if p.geometry("t", input).is_ok() {
            return p;
        }
    }
}

/// Values drawn from a small set so that ties are common, with an occasional NaN or -inf.
fn tie_heavy_input(rng: &mut Rng, shape: [usize; 4]) -> Array4<f32> {
    Array4::from_shape_simple_fn(shape, || match rng.range(0, 60) {
        0 => f32::NAN,
        1 => f32::NEG_INFINITY,
        k => (k % 9) as f32 - 6.0,
    })
}

#[test]
fn gpu_matches_reference_exactly_on_random_parameter_sets() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(0x5eed_0004);
    let mut checked = 0;
    while checked < 240 {
        let p = random_params(&mut rng);
        let shape = [
            rng.range(1, 3),
            rng.range(1, 4),
            rng.range(1, 17),
            rng.range(1, 17),
        ];
        if p.geometry("t", shape).is_err() {
            continue;
        }
        let x = if rng.chance(50) {
            tie_heavy_input(&mut rng, shape)
        } else {
            rng.array4(shape)
        };
        let (values, indices) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
        let xt = GpuTensor::upload(gpu, x.view()).unwrap();
        let (v, i) = max_pool2d_with_indices(&xt, &p).unwrap();
        assert_eq!(
            bits(&v.read().unwrap()),
            bits(&values),
            "values, case {checked}: {p:?} {shape:?}"
        );
        let gpu_indices = i.read_indices().unwrap();
        assert_eq!(
            gpu_indices, indices,
            "indices, case {checked}: {p:?} {shape:?}"
        );
        // Backward through the GPU's own indices against the CPU reference.
        let dy = rng.array4(values.dim().into());
        let want = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
        let got = max_pool2d_backward(&GpuTensor::upload(gpu, dy.view()).unwrap(), &i, shape, &p)
            .unwrap()
            .read()
            .unwrap();
        let bound = ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
        let r = compare(got.view(), want.view(), &bound);
        assert!(r.passed(), "backward, case {checked}: {p:?} {shape:?}\n{r}");
        checked += 1;
    }
}

#[test]
fn backward_matches_finite_differences_without_ties() {
    let mut rng = Rng::new(51);
    for case in 0..30 {
        let p = random_params(&mut rng);
        let shape = [1, 2, rng.range(3, 9), rng.range(3, 9)];
        if p.geometry("t", shape).is_err() {
            continue;
        }
        // Distinct multiples of 1/16, so x +- 1/64 is exact in f32 and changes no argmax.
        let count: usize = shape.iter().product();
        let mut order: Vec<usize> = (0..count).collect();
        for i in (1..count).rev() {
            order.swap(i, rng.range(0, i));
        }
        let x = Array4::from_shape_vec(
            shape,
            order.iter().map(|&k| k as f32 / 16.0 - 4.0).collect(),
        )
        .unwrap();
        let (y, indices) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
        let dy = Array4::from_shape_fn(y.dim(), |(_, c, h, w)| {
            ((c * 31 + h * 7 + w * 3) % 13) as f32 / 4.0 - 1.5
        });
        let analytic = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
        const H: f32 = 1.0 / 64.0;
        let loss = |x: &Array4<f32>| -> f64 {
            let y = cpu::max_pool2d(x.view(), &p).unwrap();
            y.iter()
                .zip(dy.iter())
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum()
        };
        for idx in 0..count {
            let mut plus = x.clone();
            plus.as_slice_mut().unwrap()[idx] += H;
            let mut minus = x.clone();
            minus.as_slice_mut().unwrap()[idx] -= H;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * f64::from(H));
            let got = f64::from(analytic.as_slice().unwrap()[idx]);
            assert!(
                (numeric - got).abs() < 1e-6 * numeric.abs().max(1.0),
                "case {case} {p:?}: element {idx}: fd {numeric}, backward {got}"
            );
        }
        if let Some(gpu) = common::gpu() {
            let (_, gi) =
                max_pool2d_with_indices(&GpuTensor::upload(gpu, x.view()).unwrap(), &p).unwrap();
            let got =
                max_pool2d_backward(&GpuTensor::upload(gpu, dy.view()).unwrap(), &gi, shape, &p)
                    .unwrap()
                    .read()
                    .unwrap();
            // Distinct inputs: each input gets at most one window's gradient per window
            // overlap; sums of quarters are exact.
            assert_eq!(got, analytic, "case {case} {p:?}");
        }
    }
}

#[test]
fn backward_is_bitwise_reproducible_with_overlapping_windows() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(52);
    let p = Pool2dParams::new(3, 3).with_stride(1).with_padding(1);
    let x = tie_heavy_input(&mut rng, [2, 4, 40, 40]);
    let dy = rng.array4([2, 4, 40, 40]);
    let (_, i) = max_pool2d_with_indices(&GpuTensor::upload(gpu, x.view()).unwrap(), &p).unwrap();
    let dyt = GpuTensor::upload(gpu, dy.view()).unwrap();
    let first = bits(
        &max_pool2d_backward(&dyt, &i, [2, 4, 40, 40], &p)
            .unwrap()
            .read()
            .unwrap(),
    );
    for _ in 0..4 {
        assert!(
            bits(
                &max_pool2d_backward(&dyt, &i, [2, 4, 40, 40], &p)
                    .unwrap()
                    .read()
                    .unwrap()
            ) == first
        );
    }
}

/// Indices computed elsewhere (here by the CPU reference, as PyTorch would) are accepted when
/// each lies in its window; anything else is an `Err` before any dispatch.
#[test]
fn uploaded_indices_are_checked() {
    let mut rng = Rng::new(53);
    let p = Pool2dParams::new(2, 2);
    let shape = [1, 2, 6, 6];
    let x = rng.array4(shape);
    let (_, indices) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
    let dy = rng.array4([1, 2, 3, 3]);
    let want = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();

    let mut out_of_range = indices.clone();
    out_of_range[[0, 1, 2, 2]] = 36;
    let e = cpu::max_pool2d_backward(dy.view(), out_of_range.view(), shape, &p).unwrap_err();
    assert!(
        e.to_string()
            .contains("index 36 at [0, 1, 2, 2] is outside 0..36 (H 6 x W 6)"),
        "{e}"
    );
    let mut outside_window = indices.clone();
    outside_window[[0, 0, 0, 0]] = 14; // row 2, column 2: window (1, 1), not (0, 0)
    let e = cpu::max_pool2d_backward(dy.view(), outside_window.view(), shape, &p).unwrap_err();
    assert!(
        e.to_string().contains("not in the window of output (0, 0)"),
        "{e}"
    );

    let Some(gpu) = common::gpu() else { return };
    let dyt = GpuTensor::upload(gpu, dy.view()).unwrap();
    let uploaded = GpuTensor::upload_indices(gpu, indices.view(), Layout::Nchw).unwrap();
    assert_eq!(uploaded.read_indices().unwrap(), indices);
    let got = max_pool2d_backward(&dyt, &uploaded, shape, &p)
        .unwrap()
        .read()
        .unwrap();
    let bound = ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
    assert!(compare(got.view(), want.view(), &bound).passed());

    for bad in [&out_of_range, &outside_window] {
        let t = GpuTensor::upload_indices(gpu, bad.view(), Layout::Nchw).unwrap();
        let e = max_pool2d_backward(&dyt, &t, shape, &p).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidArgument {
                    op: "max_pool2d_backward",
                    ..
                }
            ),
            "{e:?}"
        );
    }
    let mut negative = indices.clone();
    negative[[0, 0, 1, 1]] = -1;
    let e = GpuTensor::upload_indices(gpu, negative.view(), Layout::Nchw).unwrap_err();
    assert!(e.to_string().contains("index -1 at (0, 0, 1, 1)"), "{e}");

    // Indices from a different pooling, or a values tensor, are refused too.
    let (_, other) = max_pool2d_with_indices(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        &Pool2dParams::new(2, 2).with_stride(2).with_ceil_mode(true),
    )
    .unwrap();
    let e = max_pool2d_backward(&dyt, &other, shape, &p).unwrap_err();
    assert!(e.to_string().contains("indices come from pooling"), "{e}");
    let e = max_pool2d_backward(&dyt, &dyt, shape, &p).unwrap_err();
    assert!(e.to_string().contains("holds f32 values"), "{e}");
    // And an index tensor is not readable as values.
    assert!(uploaded.read().is_err());
}

#[test]
fn bad_pooling_parameters_are_rejected_with_numbers() {
    let x = Array4::<f32>::zeros((1, 1, 4, 4));
    let cases: [(Pool2dParams, &str); 5] = [
        (Pool2dParams::new(0, 2), "kernel must be at least 1"),
        (
            Pool2dParams::new(2, 2).with_stride(0),
            "stride must be at least 1",
        ),
        (
            Pool2dParams::new(2, 2).with_padding(2),
            "padding height (2) must be at most half the effective kernel height (2",
        ),
        (Pool2dParams::new(5, 2), "effective kernel height 5"),
        (
            Pool2dParams::new(2, 2).with_dilation(0),
            "dilation must be at least 1",
        ),
    ];
    for (p, needle) in cases {
        let e = cpu::max_pool2d(x.view(), &p).unwrap_err();
        assert!(e.to_string().contains(needle), "{p:?}: {e}");
        if let Some(gpu) = common::gpu() {
            let e = max_pool2d(&GpuTensor::upload(gpu, x.view()).unwrap(), &p).unwrap_err();
            assert!(
                e.to_string().starts_with("max_pool2d:") && e.to_string().contains(needle),
                "{e}"
            );
        }
    }
    let dy = Array4::<f32>::zeros((1, 1, 3, 3));
    let idx = Array4::<i64>::zeros((1, 1, 2, 2));
    let e = cpu::max_pool2d_backward(
        dy.view(),
        idx.view(),
        [1, 1, 4, 4],
        &Pool2dParams::new(2, 2),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains(
            "grad_output shape [1, 1, 3, 3] must equal the pooling output shape [1, 1, 2, 2]"
        ),
        "{e}"
    );
}

/// A window wholly in the padding returns its first tap's index, which dilation and padding
/// can put far past the plane on a small input: H 3, kernel 2x1, dilation 2^k, padding
/// 2^(k-1) rows puts output row o's taps at rows o - 2^(k-1) and o + 2^(k-1), and the first at
/// or after 0 is row 2^(k-1) + o, so index (2^(k-1) + o) * W + column (PyTorch's rule). The
/// GPU's u32 indices hold these up to 2^32 - 1, computed without wrapping, and refuse a
/// geometry past that before dispatching, where the CPU path returns the i64.
#[test]
fn a_window_wholly_in_the_padding_may_index_past_the_plane_up_to_u32() {
    let rows = |w: usize| Array4::from_shape_fn((1, 1, 3, w), |(_, _, h, x)| (h * w + x) as f32);
    let tall = |k: u32| {
        Pool2dParams::new(2, 1)
            .with_stride(1)
            .with_dilation(1 << k)
            .with_padding_hw(1 << (k - 1), 0)
    };
    // 2^27 dilation, W 63: the largest index is (2^26 + 2) * 63 + 62 = 4227858620, inside u32
    // and past i32.
    let (y, i) = pool_everywhere(&rows(63), &tall(27));
    assert!(y.iter().all(|&v| v == f32::NEG_INFINITY), "{y:?}");
    for ((_, _, o, x), &index) in i.indexed_iter() {
        assert_eq!(
            index,
            (((1i64 << 26) + o as i64) * 63 + x as i64),
            "({o}, {x})"
        );
    }
    assert_eq!(i[[0, 0, 2, 62]], 4_227_858_620);
    // 2^30 dilation, W 16: indices from (2^29) * 16 = 2^33 on.
    let x = rows(16);
    let p = tall(30);
    let (_, i) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
    assert_eq!(i[[0, 0, 0, 0]], 1i64 << 33);
    assert_eq!(i[[0, 0, 2, 15]], ((1i64 << 29) + 2) * 16 + 15);
    if let Some(gpu) = common::gpu() {
        let xt = GpuTensor::upload(gpu, x.view()).unwrap();
        let e = max_pool2d_with_indices(&xt, &p).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
        let message = e.to_string();
        for needle in [
            "max_pool2d",
            "output (2, 15)",
            "wholly in the padding",
            "8589934639",
            "4294967295",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from {message:?}"
            );
        }
        // Without indices nothing is refused.
        let values = max_pool2d(&xt, &p).unwrap().read().unwrap();
        assert!(values.iter().all(|&v| v == f32::NEG_INFINITY));
    }
}

/// With dilation a window can lie wholly in the padding: H 1, kernel 2, dilation 2, padding 1
/// puts the taps at rows -1 and 1. PyTorch returns -inf and the index of the first taps at or
/// after 0 (row 1, past the data); the backward routes nothing, the output depending on no input.
#[test]
fn a_window_wholly_in_the_padding_returns_minus_infinity() {
    let x = plane(&[&[3., 1., 2.]]);
    let p = Pool2dParams::new(2, 1)
        .with_stride(1)
        .with_dilation(2)
        .with_padding_hw(1, 0);
    let (y, i) = pool_everywhere(&x, &p);
    assert_eq!(y.dim(), (1, 1, 1, 3));
    assert!(y.iter().all(|&v| v == f32::NEG_INFINITY), "{y:?}");
    assert_eq!(i.iter().copied().collect::<Vec<_>>(), vec![3, 4, 5]);
    let dy = Array4::from_elem((1, 1, 1, 3), 1.0f32);
    let dx = cpu::max_pool2d_backward(dy.view(), i.view(), [1, 1, 1, 3], &p).unwrap();
    assert_eq!(dx, Array4::<f32>::zeros((1, 1, 1, 3)));
    if let Some(gpu) = common::gpu() {
        let dyt = GpuTensor::upload(gpu, dy.view()).unwrap();
        let (_, own) =
            max_pool2d_with_indices(&GpuTensor::upload(gpu, x.view()).unwrap(), &p).unwrap();
        let uploaded = GpuTensor::upload_indices(gpu, i.view(), Layout::Nchw).unwrap();
        for indices in [&own, &uploaded] {
            let got = max_pool2d_backward(&dyt, indices, [1, 1, 1, 3], &p)
                .unwrap()
                .read()
                .unwrap();
            assert_eq!(got, dx);
        }
    }
}
