//! NaN and infinities through every op, under both conv kernel variants: each GPU result against a pattern derived by hand from PyTorch's rules, and against the CPU reference.
//!
//! The rules (README, "NaN and infinity"): IEEE arithmetic on the terms an output really has
//! (`NaN * w = NaN`, `inf * 0 = NaN`, `inf + -inf = NaN`); a tap in the zero padding contributes
//! no term; activations keep NaN; max pooling returns NaN when its window holds one (index: the
//! last NaN in scan order), else the first maximum, so `+inf` wins.

mod common;

use ndarray::{Array1, Array4};
use wgconv::ConvVariant;
use wgconv::{
    activation_backward, compare, conv2d_backward_bias, conv2d_backward_input,
    conv2d_backward_weight, conv2d_with_activation, conv_transpose2d, cpu, max_pool2d,
    max_pool2d_backward, max_pool2d_with_indices, Activation, Conv2dParams, ConvTranspose2dParams,
    ErrorBound, Gpu, GpuTensor, Layout, Padding, Pool2dParams, SavedTensor, Tolerance,
};

const NAN: f32 = f32::NAN;
const INF: f32 = f32::INFINITY;

/// What kind of value an element is: 'N' NaN, '+' +inf, '-' -inf, 'f' finite.
fn kind(v: f32) -> char {
    if v.is_nan() {
        'N'
    } else if v == INF {
        '+'
    } else if v == -INF {
        '-'
    } else {
        'f'
    }
}

/// One device per conv kernel variant the adapter can run, each forcing it; which it must run
/// follows from its features and subgroup sizes (`common::check_availability`).
fn variants() -> Vec<(ConvVariant, Gpu)> {
    if common::gpu().is_none() {
        return vec![];
    }
    ConvVariant::ALL
        .iter()
        .filter_map(|&v| {
            let gpu = Gpu::new().expect("a device on the adapter");
            common::check_availability(&gpu, v).then(|| {
                gpu.force_conv_variant(Some(v));
                (v, gpu)
            })
        })
        .collect()
}

/// Positive, finite, distinct-ish values, so that no product of them is 0 or infinite.
fn positive(shape: [usize; 4]) -> Array4<f32> {
    Array4::from_shape_fn(shape, |(a, b, c, d)| {
        0.25 + ((a * 7 + b * 5 + c * 3 + d) % 11) as f32 * 0.125
    })
}

fn up(gpu: &Gpu, a: &Array4<f32>) -> GpuTensor {
    GpuTensor::upload(gpu, a.view()).unwrap()
}

/// Asserts the kinds of `got` are `want` element by element, and that `got` equals the CPU
/// reference (NaN matching NaN, infinities exactly, finite values within `criterion`).
fn check<'a>(
    what: &str,
    got: &Array4<f32>,
    want: &Array4<char>,
    reference: &Array4<f32>,
    criterion: impl Into<wgconv::verify::Criterion<'a, ndarray::Ix4>>,
) {
    for ((pos, &g), &k) in got.indexed_iter().zip(want.iter()) {
        assert_eq!(kind(g), k, "{what}: at {pos:?} got {g}, want kind {k}");
    }
    let report = compare(got.view(), reference.view(), criterion);
    assert!(
        report.passed(),
        "{what}: against the CPU reference: {report}"
    );
}

/// True when some output position `o` of an axis reads input coordinate `i` through tap `k`:
/// `o * stride + k * dilation = i + pad` with `0 <= o < out`.
fn tap_reaches(i: usize, k: usize, stride: usize, dilation: usize, pad: usize, out: usize) -> bool {
    let shifted = i + pad;
    shifted >= k * dilation
        && (shifted - k * dilation).is_multiple_of(stride)
        && (shifted - k * dilation) / stride < out
}

/// True when output `o`'s window (kernel `k`) covers input coordinate `i`.
fn covers(o: usize, i: usize, k: usize, stride: usize, pad: usize) -> bool {
    let start = o * stride;
    i + pad >= start && i + pad < start + k
}

/// Stride 1, padding 1, 3x3: border outputs have taps in the padding.
fn params() -> Conv2dParams {
    Conv2dParams::default().with_padding(Padding::uniform(1))
}

#[test]
fn conv2d_forward_propagates_nan_and_inf() {
    let p = params();
    for (variant, gpu) in variants() {
        let v = variant.name();
        // A NaN input pixel: exactly the outputs whose window covers it, in every channel.
        let mut x = positive([2, 3, 5, 6]);
        let w = positive([5, 3, 3, 3]);
        x[[0, 1, 2, 3]] = NAN;
        let got = conv2d_with_activation(&up(&gpu, &x), &up(&gpu, &w), None, &p, Activation::None)
            .unwrap()
            .read()
            .unwrap();
        let want = Array4::from_shape_fn((2, 5, 5, 6), |(n, _, oy, ox)| {
            if n == 0 && covers(oy, 2, 3, 1, 1) && covers(ox, 3, 3, 1, 1) {
                'N'
            } else {
                'f'
            }
        });
        let reference = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
        let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
        check(&format!("{v} NaN input"), &got, &want, &reference, &bound);

        // +inf at weight tap (0, 0) of channel 2: +inf where that tap reads the image, no term
        // (a finite output) where it reads the padding, NaN where it meets a 0 input (inf * 0).
        let mut x = positive([2, 3, 5, 6]);
        let mut w = positive([5, 3, 3, 3]);
        w[[2, 0, 0, 0]] = INF;
        x[[1, 0, 3, 4]] = 0.0;
        let got = conv2d_with_activation(&up(&gpu, &x), &up(&gpu, &w), None, &p, Activation::None)
            .unwrap()
            .read()
            .unwrap();
        let want = Array4::from_shape_fn((2, 5, 5, 6), |(n, oc, oy, ox)| {
            // Tap (0, 0) of output (oy, ox) reads input (oy - 1, ox - 1).
            match (oc, oy >= 1 && ox >= 1) {
                (2, true) if n == 1 && (oy - 1, ox - 1) == (3, 4) => 'N',
                (2, true) => '+',
                _ => 'f',
            }
        });
        let reference = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
        let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
        check(&format!("{v} inf weight"), &got, &want, &reference, &bound);

        // +inf and -inf inputs: NaN where a window holds both, each sign where it holds one.
        let mut x = positive([1, 3, 5, 6]);
        x[[0, 2, 1, 1]] = INF;
        x[[0, 2, 1, 3]] = -INF;
        let w = positive([5, 3, 3, 3]);
        let mut b = Array1::from_elem(5, 0.5f32);
        b[4] = NAN;
        let base = Array4::from_shape_fn((1, 5, 5, 6), |(_, oc, oy, ox)| {
            let plus = covers(oy, 1, 3, 1, 1) && covers(ox, 1, 3, 1, 1);
            let minus = covers(oy, 1, 3, 1, 1) && covers(ox, 3, 3, 1, 1);
            match (oc == 4, plus, minus) {
                (true, _, _) | (false, true, true) => 'N',
                (false, true, false) => '+',
                (false, false, true) => '-',
                (false, false, false) => 'f',
            }
        });
        for activation in [
            Activation::None,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::LeakyRelu { slope: 0.25 },
        ] {
            let bias = GpuTensor::upload_1d(&gpu, b.view()).unwrap();
            let got =
                conv2d_with_activation(&up(&gpu, &x), &up(&gpu, &w), Some(&bias), &p, activation)
                    .unwrap()
                    .read()
                    .unwrap();
            // What each activation makes of NaN and the infinities, in PyTorch.
            let want = base.mapv(|k| match (activation, k) {
                (_, 'N') => 'N',
                (Activation::Relu, '-') => 'f', // relu(-inf) = 0
                (Activation::Sigmoid | Activation::Tanh, '+' | '-') => 'f', // 1, 0 / +-1
                (_, k) => k,
            });
            let reference =
                cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, activation)
                    .unwrap();
            let bound = ErrorBound::conv2d_with_activation(
                x.view(),
                w.view(),
                Some(b.view()),
                &p,
                activation,
            )
            .unwrap();
            check(
                &format!("{v} {activation:?}"),
                &got,
                &want,
                &reference,
                &bound,
            );
            // The finite images of the infinities, exactly.
            for (pos, &k) in base.indexed_iter() {
                let g = got[pos];
                match (activation, k) {
                    (Activation::Relu, '-') => assert_eq!(g, 0.0, "{v} relu(-inf) at {pos:?}"),
                    (Activation::Sigmoid, '+') | (Activation::Tanh, '+') => {
                        assert_eq!(g, 1.0, "{v} {activation:?}(+inf) at {pos:?}")
                    }
                    (Activation::Sigmoid, '-') => {
                        assert_eq!(g, 0.0, "{v} sigmoid(-inf) at {pos:?}")
                    }
                    (Activation::Tanh, '-') => assert_eq!(g, -1.0, "{v} tanh(-inf) at {pos:?}"),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn conv2d_backward_input_propagates_nan_and_inf() {
    let p = params();
    let input_shape = [2, 3, 5, 6];
    for (variant, gpu) in variants() {
        let v = variant.name();
        // NaN in grad_output at (n 1, oc 2, 0, 0): every input its window covers, every channel.
        let w = positive([4, 3, 3, 3]);
        let mut dy = positive([2, 4, 5, 6]);
        dy[[1, 2, 0, 0]] = NAN;
        let got = conv2d_backward_input(input_shape, &up(&gpu, &w), &up(&gpu, &dy), &p)
            .unwrap()
            .read()
            .unwrap();
        let want = Array4::from_shape_fn((2, 3, 5, 6), |(n, _, iy, ix)| {
            if n == 1 && covers(0, iy, 3, 1, 1) && covers(0, ix, 3, 1, 1) {
                'N'
            } else {
                'f'
            }
        });
        let reference = cpu::conv2d_backward_input(input_shape, w.view(), dy.view(), &p).unwrap();
        let bound =
            ErrorBound::conv2d_backward_input(input_shape, w.view(), dy.view(), &p).unwrap();
        check(
            &format!("{v} NaN grad_output"),
            &got,
            &want,
            &reference,
            &bound,
        );

        // +inf at weight (oc 3, c 1, tap (2, 2)), a 0 in grad_output where that tap lands: the
        // tap maps input (iy, ix) to output (iy - 1, ix - 1); inputs it maps outside the output
        // get no term (finite), the 0 gives inf * 0 = NaN, the rest +inf.
        let mut w = positive([4, 3, 3, 3]);
        w[[3, 1, 2, 2]] = INF;
        let mut dy = positive([2, 4, 5, 6]);
        dy[[0, 3, 2, 2]] = 0.0;
        let got = conv2d_backward_input(input_shape, &up(&gpu, &w), &up(&gpu, &dy), &p)
            .unwrap()
            .read()
            .unwrap();
        let want = Array4::from_shape_fn((2, 3, 5, 6), |(n, c, iy, ix)| {
            match (c, iy >= 1 && ix >= 1) {
                (1, true) if n == 0 && (iy, ix) == (3, 3) => 'N',
                (1, true) => '+',
                _ => 'f',
            }
        });
        let reference = cpu::conv2d_backward_input(input_shape, w.view(), dy.view(), &p).unwrap();
        let bound =
            ErrorBound::conv2d_backward_input(input_shape, w.view(), dy.view(), &p).unwrap();
        check(&format!("{v} inf weight"), &got, &want, &reference, &bound);
    }
}

#[test]
fn conv2d_backward_weight_propagates_nan_and_inf() {
    let p = params();
    let weight_shape = [4, 3, 3, 3];
    let (out_h, out_w) = (5, 6);
    for (variant, gpu) in variants() {
        let v = variant.name();
        // NaN at input (n 1, c 2, 0, 0): the taps of channel 2 that read it, for every oc.
        let mut x = positive([2, 3, 5, 6]);
        x[[1, 2, 0, 0]] = NAN;
        let dy = positive([2, 4, 5, 6]);
        let got = conv2d_backward_weight(&up(&gpu, &x), weight_shape, &up(&gpu, &dy), &p)
            .unwrap()
            .read()
            .unwrap();
        let want = Array4::from_shape_fn((4, 3, 3, 3), |(_, c, ky, kx)| {
            let reads = tap_reaches(0, ky, 1, 1, 1, out_h) && tap_reaches(0, kx, 1, 1, 1, out_w);
            if c == 2 && reads {
                'N'
            } else {
                'f'
            }
        });
        let reference = cpu::conv2d_backward_weight(x.view(), weight_shape, dy.view(), &p).unwrap();
        let bound =
            ErrorBound::conv2d_backward_weight(x.view(), weight_shape, dy.view(), &p).unwrap();
        check(&format!("{v} NaN input"), &got, &want, &reference, &bound);

        // +inf at grad_output (n 0, oc 1, 0, 0) and -inf at (n 1, oc 1, 4, 5): tap (ky, kx) of
        // output (0, 0) reads input (ky - 1, kx - 1), of output (4, 5) input (3 + ky, 4 + kx);
        // a tap reading the padding adds no term, one reading both infinities gives NaN.
        let x = positive([2, 3, 5, 6]);
        let mut dy = positive([2, 4, 5, 6]);
        dy[[0, 1, 0, 0]] = INF;
        dy[[1, 1, 4, 5]] = -INF;
        let got = conv2d_backward_weight(&up(&gpu, &x), weight_shape, &up(&gpu, &dy), &p)
            .unwrap()
            .read()
            .unwrap();
        let want = Array4::from_shape_fn((4, 3, 3, 3), |(oc, _, ky, kx)| {
            let plus = ky >= 1 && kx >= 1;
            let minus = 3 + ky < 5 && 4 + kx < 6;
            match (oc, plus, minus) {
                (1, true, true) => 'N',
                (1, true, false) => '+',
                (1, false, true) => '-',
                _ => 'f',
            }
        });
        let reference = cpu::conv2d_backward_weight(x.view(), weight_shape, dy.view(), &p).unwrap();
        let bound =
            ErrorBound::conv2d_backward_weight(x.view(), weight_shape, dy.view(), &p).unwrap();
        check(
            &format!("{v} inf grad_output"),
            &got,
            &want,
            &reference,
            &bound,
        );
    }
}

#[test]
fn conv2d_backward_bias_propagates_nan_and_inf() {
    for (variant, gpu) in variants() {
        let mut dy = positive([2, 5, 3, 3]);
        dy[[1, 0, 2, 1]] = NAN; // channel 0: NaN
        dy[[0, 1, 0, 0]] = INF; // channel 1: +inf
        dy[[0, 2, 1, 1]] = INF; // channel 2: +inf and -inf: NaN
        dy[[1, 2, 2, 2]] = -INF;
        dy[[1, 3, 0, 2]] = -INF; // channel 3: -inf; channel 4 finite
        let got = conv2d_backward_bias(&up(&gpu, &dy), Layout::Nchw)
            .unwrap()
            .read_1d()
            .unwrap();
        let kinds: String = got.iter().map(|&g| kind(g)).collect();
        assert_eq!(kinds, "N+N-f", "{}: {got}", variant.name());
        let reference = cpu::conv2d_backward_bias(dy.view(), Layout::Nchw).unwrap();
        let bound = ErrorBound::conv2d_backward_bias(dy.view(), Layout::Nchw).unwrap();
        let report = compare(got.view(), reference.view(), &bound);
        assert!(report.passed(), "{}: {report}", variant.name());
    }
}

#[test]
fn conv_transpose2d_propagates_nan_and_inf() {
    // Stride 2, padding 1, 3x3 on 3x3: input i reaches outputs 2i - 1 + k, k in 0..3.
    let p = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_padding(Padding::uniform(1));
    let reaches = |i: usize, o: usize| (2 * i..2 * i + 3).contains(&(o + 1));
    for (variant, gpu) in variants() {
        let v = variant.name();
        // A NaN input pixel (c 1, (1, 1)) and a +inf bias on output channel 1.
        let mut x = positive([1, 4, 3, 3]);
        x[[0, 1, 1, 1]] = NAN;
        let w = positive([4, 2, 3, 3]);
        let b = Array1::from(vec![0.5f32, INF]);
        let bias = GpuTensor::upload_1d(&gpu, b.view()).unwrap();
        let got = conv_transpose2d(&up(&gpu, &x), &up(&gpu, &w), Some(&bias), &p)
            .unwrap()
            .read()
            .unwrap();
        assert_eq!(got.dim(), (1, 2, 5, 5));
        let want = Array4::from_shape_fn((1, 2, 5, 5), |(_, oc, oy, ox)| {
            match (reaches(1, oy) && reaches(1, ox), oc) {
                (true, _) => 'N',
                (false, 1) => '+',
                (false, _) => 'f',
            }
        });
        let reference = cpu::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        let bound = ErrorBound::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        check(
            &format!("{v} NaN input, inf bias"),
            &got,
            &want,
            &reference,
            &bound,
        );

        // -inf at weight (ci 0, oc 0, tap (0, 0)) and a 0 input at (c 0, (1, 1)): that tap puts
        // input (i, j) at output (2i - 1, 2j - 1); the 0 gives NaN at (1, 1), the rest -inf.
        let mut x = positive([1, 4, 3, 3]);
        x[[0, 0, 1, 1]] = 0.0;
        let mut w = positive([4, 2, 3, 3]);
        w[[0, 0, 0, 0]] = -INF;
        let got = conv_transpose2d(&up(&gpu, &x), &up(&gpu, &w), None, &p)
            .unwrap()
            .read()
            .unwrap();
        let want = Array4::from_shape_fn((1, 2, 5, 5), |(_, oc, oy, ox)| {
            match (oc, oy % 2 == 1 && ox % 2 == 1) {
                (0, true) if (oy, ox) == (1, 1) => 'N',
                (0, true) => '-',
                _ => 'f',
            }
        });
        let reference = cpu::conv_transpose2d(x.view(), w.view(), None, &p).unwrap();
        let bound = ErrorBound::conv_transpose2d(x.view(), w.view(), None, &p).unwrap();
        check(&format!("{v} -inf weight"), &got, &want, &reference, &bound);
    }
}

/// Pooling input: channel 0 negative finite with NaN at (1, 1) and (1, 2), +inf at (3, 4) and
/// (3, 5); channel 1 all -inf but a NaN at (4, 0).
fn pool_input() -> Array4<f32> {
    let mut x = Array4::from_shape_fn((1, 2, 6, 6), |(_, _, h, w)| {
        -1.0 - (h * 6 + w) as f32 / 64.0
    });
    x[[0, 0, 1, 1]] = NAN;
    x[[0, 0, 1, 2]] = NAN;
    x[[0, 0, 3, 4]] = INF;
    x[[0, 0, 3, 5]] = INF;
    x.slice_mut(ndarray::s![0, 1, .., ..]).fill(-INF);
    x[[0, 1, 4, 0]] = NAN;
    x
}

/// 3x3, stride 2, padding 1 on 6x6: window (oh, ow) spans rows 2oh-1..=2oh+1, likewise columns.
fn pool_params() -> Pool2dParams {
    Pool2dParams::new(3, 3).with_stride(2).with_padding(1)
}

/// The hand-derived (value kind, index) of every window of [`pool_input`].
fn pool_expected(c: usize, oh: usize, ow: usize) -> (char, i64) {
    let first_tap = |o: usize| (2 * o).saturating_sub(1) as i64;
    match (c, oh, ow) {
        // Both NaNs: the later one, (1, 2), gives the index.
        (0, 0 | 1, 1) => ('N', 8),
        // Only the NaN at (1, 1).
        (0, 0 | 1, 0) => ('N', 7),
        // Both +inf: the first, (3, 4), wins.
        (0, 1 | 2, 2) => ('+', 22),
        (0, _, _) => ('f', -1),
        (1, 2, 0) => ('N', 24),
        // All -inf: -inf with the index of the first tap inside the image.
        (1, _, _) => ('-', first_tap(oh) * 6 + first_tap(ow)),
        _ => unreachable!(),
    }
}

#[test]
fn max_pool2d_propagates_nan_and_inf() {
    let Some(gpu) = common::gpu() else { return };
    let x = pool_input();
    let p = pool_params();
    let got = max_pool2d(&up(gpu, &x), &p).unwrap().read().unwrap();
    let want = Array4::from_shape_fn((1, 2, 3, 3), |(_, c, oh, ow)| pool_expected(c, oh, ow).0);
    let reference = cpu::max_pool2d(x.view(), &p).unwrap();
    check("max_pool2d", &got, &want, &reference, Tolerance::exact());
    let exact = compare(got.view(), reference.view(), Tolerance::exact());
    assert!(exact.passed(), "{exact}");
}

#[test]
fn max_pool2d_with_indices_propagates_nan_and_inf() {
    let Some(gpu) = common::gpu() else { return };
    let x = pool_input();
    let p = pool_params();
    let (values, indices) = max_pool2d_with_indices(&up(gpu, &x), &p).unwrap();
    let (values, indices) = (values.read().unwrap(), indices.read_indices().unwrap());
    let (ref_values, ref_indices) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
    for ((_, c, oh, ow), &i) in indices.indexed_iter() {
        let (k, want_index) = pool_expected(c, oh, ow);
        assert_eq!(
            kind(values[[0, c, oh, ow]]),
            k,
            "value at c {c} ({oh}, {ow})"
        );
        if want_index >= 0 {
            assert_eq!(i, want_index, "index at c {c} ({oh}, {ow})");
        }
    }
    assert_eq!(indices, ref_indices);
    assert!(compare(values.view(), ref_values.view(), Tolerance::exact()).passed());
}

#[test]
fn max_pool2d_backward_propagates_nan_and_inf() {
    let Some(gpu) = common::gpu() else { return };
    let x = pool_input();
    let p = pool_params();
    let (_, indices) = max_pool2d_with_indices(&up(gpu, &x), &p).unwrap();
    // Windows (0, 1) and (1, 1) of channel 0 both pick (1, 2): a NaN gradient on one makes it
    // NaN. Windows (1, 2) and (2, 2) both pick (3, 4): +inf and -inf there give NaN. Window
    // (2, 0) of channel 1 picks (4, 0): +inf. Windows (0, 0), (1, 0) pick (1, 1), finite.
    let mut dy = positive([1, 2, 3, 3]);
    dy[[0, 0, 0, 1]] = NAN;
    dy[[0, 0, 1, 2]] = INF;
    dy[[0, 0, 2, 2]] = -INF;
    dy[[0, 1, 2, 0]] = INF;
    let got = max_pool2d_backward(&up(gpu, &dy), &indices, [1, 2, 6, 6], &p)
        .unwrap()
        .read()
        .unwrap();
    let want = Array4::from_shape_fn((1, 2, 6, 6), |(_, c, h, w)| match (c, h, w) {
        (0, 1, 2) | (0, 3, 4) => 'N',
        (1, 4, 0) => '+',
        _ => 'f',
    });
    let ref_indices = cpu::max_pool2d_with_indices(x.view(), &p).unwrap().1;
    let reference =
        cpu::max_pool2d_backward(dy.view(), ref_indices.view(), [1, 2, 6, 6], &p).unwrap();
    let bound =
        ErrorBound::max_pool2d_backward(dy.view(), ref_indices.view(), [1, 2, 6, 6], &p).unwrap();
    check("max_pool2d_backward", &got, &want, &reference, &bound);
}

/// `(dy, saved value, expected dx)`.
type Triple = (f32, f32, f32);

#[test]
fn activation_backward_propagates_nan_and_inf() {
    let Some(gpu) = common::gpu() else { return };
    let slope = 0.25f32;
    // (activation, saved kind, [(dy, saved value, expected)]), expectations by hand from
    // PyTorch's formulas: relu `v <= 0 ? 0 : dy`, leaky `v > 0 ? dy : dy * slope`,
    // sigmoid `dy * y * (1 - y)`, tanh `dy * (1 - y * y)`.
    let cases: Vec<(Activation, SavedTensor, Vec<Triple>)> = vec![
        (
            Activation::Relu,
            SavedTensor::Output,
            vec![
                (1.5, NAN, 1.5),
                (NAN, 2.0, NAN),
                (NAN, -1.0, 0.0),
                (INF, 0.0, 0.0),
                (INF, 3.0, INF),
                (2.0, -INF, 0.0),
                (2.0, INF, 2.0),
            ],
        ),
        (
            Activation::LeakyRelu { slope },
            SavedTensor::PreActivation,
            vec![
                (2.0, NAN, 2.0 * slope),
                (INF, -1.0, INF),
                (-INF, 2.0, -INF),
                (NAN, 2.0, NAN),
                (2.0, -INF, 2.0 * slope),
                (-INF, -INF, -INF),
            ],
        ),
        (
            Activation::Sigmoid,
            SavedTensor::Output,
            vec![
                (1.0, NAN, NAN),
                (INF, 1.0, NAN),
                (INF, 0.5, INF),
                (-INF, 0.5, -INF),
                (NAN, 0.5, NAN),
            ],
        ),
        (
            Activation::Sigmoid,
            SavedTensor::PreActivation,
            vec![
                (1.0, NAN, NAN),
                (1.0, INF, 0.0),
                (1.0, -INF, 0.0),
                (INF, INF, NAN),
                (INF, 0.0, INF),
            ],
        ),
        (
            Activation::Tanh,
            SavedTensor::Output,
            vec![
                (1.0, NAN, NAN),
                (INF, 1.0, NAN),
                (INF, 0.0, INF),
                (NAN, 0.0, NAN),
            ],
        ),
        (
            Activation::Tanh,
            SavedTensor::PreActivation,
            vec![
                (1.0, NAN, NAN),
                (1.0, INF, 0.0),
                (INF, -INF, NAN),
                (NAN, 0.0, NAN),
                (-INF, 0.0, -INF),
            ],
        ),
    ];
    for (activation, saved, triples) in cases {
        let len = triples.len();
        let dy = Array4::from_shape_fn((1, 1, 1, len), |(.., i)| triples[i].0);
        let v = Array4::from_shape_fn((1, 1, 1, len), |(.., i)| triples[i].1);
        let want = Array4::from_shape_fn((1, 1, 1, len), |(.., i)| triples[i].2);
        let got = activation_backward(&up(gpu, &dy), &up(gpu, &v), activation, saved)
            .unwrap()
            .read()
            .unwrap();
        let what = format!("{activation:?} from {saved:?}: dy {dy}, saved {v}");
        let exact = compare(got.view(), want.view(), Tolerance::exact());
        assert!(exact.passed(), "{what}: got {got}, want {want}: {exact}");
        let reference = cpu::activation_backward(dy.view(), v.view(), activation, saved).unwrap();
        let vs_cpu = compare(got.view(), reference.view(), Tolerance::exact());
        assert!(
            vs_cpu.passed(),
            "{what}: against the CPU reference: {vs_cpu}"
        );
    }
}
