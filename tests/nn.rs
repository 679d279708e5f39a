//! `wgconv::nn` against values worked out by hand from PyTorch's documented formulas, on both
//! backends: SGD with momentum, gradient accumulation, softmax cross-entropy, the dense layer,
//! batch slicing, and the errors a misuse gets.

mod common;

use approx::assert_abs_diff_eq;
use ndarray::{array, Array1, Array4, ArrayD, IxDyn};
use wgconv::nn::{
    softmax_cross_entropy, Backend, Conv2d, Layer, MaxPool2d, Param, Sequential, Sgd, Tensor,
};
use wgconv::{Activation, Conv2dParams, Layout, Pool2dParams};

/// Both backends: the GPU one only where an adapter exists (or the test fails, on CI).
fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Cpu];
    if let Some(gpu) = common::gpu() {
        all.push(Backend::Gpu(gpu.clone()));
    }
    all
}

fn values(t: &Tensor) -> Vec<f32> {
    t.to_array().unwrap().iter().copied().collect()
}

/// torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01) on w = 1 with gradient 0.5, twice:
/// step 1: g = 0.5 + 0.01 = 0.51, v = 0.51, w = 1 - 0.051 = 0.949;
/// step 2: g = 0.5 + 0.00949 = 0.50949, v = 0.9 * 0.51 + 0.50949 = 0.96849,
///         w = 0.949 - 0.096849 = 0.852151.
#[test]
fn sgd_with_momentum_and_weight_decay_takes_pytorchs_steps() {
    for backend in backends() {
        let sgd = Sgd {
            learning_rate: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
        };
        let w = Array1::from_elem(67, 1.0f32);
        let g = Array1::from_elem(67, 0.5f32);
        let mut param = Param::new(backend.upload_1d(w.view()).unwrap());
        for expected in [0.949f32, 0.852151] {
            param.grad = Some(backend.upload_1d(g.view()).unwrap());
            sgd.step(&backend, [&mut param]).unwrap();
            assert!(param.grad.is_none(), "a step clears the gradient");
            for v in values(&param.value) {
                assert_abs_diff_eq!(v, expected, epsilon = 1e-6);
            }
        }
        // A parameter without a gradient is left alone.
        sgd.step(&backend, [&mut param]).unwrap();
        assert_abs_diff_eq!(values(&param.value)[0], 0.852151, epsilon = 1e-6);
    }
}

/// PyTorch's SGD drops a term whose factor is 0 and keeps no momentum buffer without momentum
/// (`torch.optim.SGD`'s documented step), so that with lr 0.1 and gradient 1:
/// - infinite weights with neither decay nor momentum stay infinite: [inf, -inf, 1] ->
///   [inf, -inf, 0.9] (adding 0 * w or carrying 0 * v would make NaNs);
/// - an infinite gradient, then finite ones, without momentum: w = 1 - 0.1 * inf = -inf, then
///   -inf - 0.1 = -inf (a carried 0 * inf would be NaN);
/// - momentum 0, then 0.9: the first momentum step starts the buffer at g, so w = 1 - 0.1 =
///   0.9, then 0.9 - 0.1 * 1 = 0.8 (a buffer kept while momentum was 0 would give 0.71).
#[test]
fn sgd_drops_terms_whose_factor_is_zero_as_pytorch_does() {
    let sgd = |momentum: f32| Sgd {
        learning_rate: 0.1,
        momentum,
        weight_decay: 0.0,
    };
    for backend in backends() {
        let name = backend.name();
        let grad = |v: &[f32]| Some(backend.upload_1d(Array1::from(v.to_vec()).view()).unwrap());
        let mut p = Param::new(
            backend
                .upload_1d(array![f32::INFINITY, f32::NEG_INFINITY, 1.0].view())
                .unwrap(),
        );
        p.grad = grad(&[1.0, 1.0, 1.0]);
        sgd(0.0).step(&backend, [&mut p]).unwrap();
        assert_eq!(
            values(&p.value),
            vec![f32::INFINITY, f32::NEG_INFINITY, 0.9],
            "{name}"
        );

        let mut p = Param::new(backend.upload_1d(array![1.0f32].view()).unwrap());
        for g in [f32::INFINITY, 1.0, 1.0] {
            p.grad = grad(&[g]);
            sgd(0.0).step(&backend, [&mut p]).unwrap();
            assert_eq!(values(&p.value), vec![f32::NEG_INFINITY], "{name}");
        }

        let mut p = Param::new(backend.upload_1d(array![1.0f32].view()).unwrap());
        for (momentum, expected) in [(0.0, 0.9f32), (0.9, 0.8)] {
            p.grad = grad(&[1.0]);
            sgd(momentum).step(&backend, [&mut p]).unwrap();
            assert_abs_diff_eq!(values(&p.value)[0], expected, epsilon = 1e-6);
        }

        // PyTorch refuses negative factors.
        p.grad = grad(&[1.0]);
        let e = sgd(-0.5).step(&backend, [&mut p]).unwrap_err();
        assert!(e.to_string().contains("momentum -0.5 is negative"), "{e}");
    }
}

/// A clone of a parameter or a layer holds its own values on both backends, as a copied
/// PyTorch module does: an update in place (an SGD step, a gradient accumulated) reaches only
/// the tensor it is made on, and a gradient that shares the weight's storage (`p.grad =
/// p.value.clone()`) is read as it was. w = [1, 2], lr 0.5.
#[test]
fn clones_keep_their_values_through_updates_in_place() {
    let sgd = Sgd {
        learning_rate: 0.5,
        momentum: 0.0,
        weight_decay: 0.0,
    };
    for backend in backends() {
        let name = backend.name();
        let upload = |v: &[f32]| backend.upload_1d(Array1::from(v.to_vec()).view()).unwrap();
        let mut p = Param::new(upload(&[1.0, 2.0]));
        let copy = p.clone();
        p.grad = Some(upload(&[1.0, 1.0]));
        sgd.step(&backend, [&mut p]).unwrap();
        assert_eq!(values(&p.value), vec![0.5, 1.5], "{name}");
        assert_eq!(
            values(&copy.value),
            vec![1.0, 2.0],
            "{name}: the clone moved"
        );

        // The gradient is the weight itself: w - 0.5 * w.
        p.grad = Some(p.value.clone());
        sgd.step(&backend, [&mut p]).unwrap();
        assert_eq!(values(&p.value), vec![0.25, 0.75], "{name}");

        // Accumulating into a gradient that is the caller's tensor leaves the caller's alone;
        // accumulating a gradient into itself doubles it.
        let mine = upload(&[1.0, 1.0]);
        p.accumulate(mine.clone()).unwrap();
        p.accumulate(upload(&[10.0, 10.0])).unwrap();
        assert_eq!(values(p.grad.as_ref().unwrap()), vec![11.0, 11.0], "{name}");
        assert_eq!(
            values(&mine),
            vec![1.0, 1.0],
            "{name}: the caller's gradient moved"
        );
        let again = p.grad.clone().unwrap();
        p.accumulate(again).unwrap();
        assert_eq!(values(p.grad.as_ref().unwrap()), vec![22.0, 22.0], "{name}");
    }
}

/// The backward pass differentiates the function the forward pass computed: y = w * x with
/// w = 2, x = 3; an SGD step between them (gradient 1, lr 1) takes w to 1, but dx is still
/// 2 * dy and dw x * dy = 3 (PyTorch refuses this order; here the layer keeps the weights its
/// forward pass used).
#[test]
fn a_step_between_forward_and_backward_leaves_the_backward_its_weights() {
    let sgd = Sgd {
        learning_rate: 1.0,
        momentum: 0.0,
        weight_decay: 0.0,
    };
    for backend in backends() {
        let name = backend.name();
        let mut dense = Conv2d::dense(
            &backend,
            Array4::from_elem((1, 1, 1, 1), 2.0f32).view(),
            array![0.0f32].view(),
            Activation::None,
            Layout::Nchw,
        )
        .unwrap();
        let x = backend
            .upload(Array4::from_elem((1, 1, 1, 1), 3.0f32).view(), Layout::Nchw)
            .unwrap();
        let y = dense.forward(&x, true).unwrap();
        assert_eq!(values(&y), vec![6.0], "{name}");
        dense.weight.grad = Some(
            backend
                .upload(Array4::from_elem((1, 1, 1, 1), 1.0f32).view(), Layout::Nchw)
                .unwrap(),
        );
        sgd.step(&backend, dense.params()).unwrap();
        assert_eq!(values(&dense.weight.value), vec![1.0], "{name}");
        let dy = backend
            .upload(Array4::from_elem((1, 1, 1, 1), 1.0f32).view(), Layout::Nchw)
            .unwrap();
        let dx = dense.backward(&dy, true).unwrap().unwrap();
        assert_eq!(values(&dx), vec![2.0], "{name}");
        assert_eq!(
            values(dense.weight.grad.as_ref().unwrap()),
            vec![3.0],
            "{name}"
        );
    }
}

/// Leaky ReLU with a negative slope does not keep the sign of its input, so the layer saves
/// the pre-activation for the backward pass (PyTorch trains with such slopes); a slope of 0 is
/// ReLU, whose output will do. y = w * x with w = 1, x = -2: z = -2, y = slope * z; dz =
/// slope * dy, dx = slope, dw = -2 * slope.
#[test]
fn leaky_relu_with_a_slope_of_zero_or_less_trains() {
    for backend in backends() {
        for slope in [0.0f32, -0.5] {
            let name = format!("{} slope {slope}", backend.name());
            let mut dense = Conv2d::dense(
                &backend,
                Array4::from_elem((1, 1, 1, 1), 1.0f32).view(),
                array![0.0f32].view(),
                Activation::LeakyRelu { slope },
                Layout::Nchw,
            )
            .unwrap();
            let x = backend
                .upload(
                    Array4::from_elem((1, 1, 1, 1), -2.0f32).view(),
                    Layout::Nchw,
                )
                .unwrap();
            let y = dense.forward(&x, true).unwrap();
            assert_eq!(values(&y), vec![-2.0 * slope], "{name}");
            let dy = backend
                .upload(Array4::from_elem((1, 1, 1, 1), 1.0f32).view(), Layout::Nchw)
                .unwrap();
            let dx = dense.backward(&dy, true).unwrap().unwrap();
            assert_eq!(values(&dx), vec![slope], "{name}");
            assert_eq!(
                values(dense.weight.grad.as_ref().unwrap()),
                vec![-2.0 * slope],
                "{name}"
            );
        }
    }
}

/// Two rows: zeros with label 2 (loss ln 4, softmax 1/4 each) and ln(1, 2, 3, 4) with label 3
/// (softmax (1, 2, 3, 4) / 10, loss -ln 0.4). The gradient is (softmax - one_hot) / 2.
#[test]
fn softmax_cross_entropy_matches_the_closed_form() {
    for backend in backends() {
        let logits = Array4::from_shape_vec(
            (2, 4, 1, 1),
            vec![0.0, 0.0, 0.0, 0.0, 0.0, 2f32.ln(), 3f32.ln(), 4f32.ln()],
        )
        .unwrap();
        let t = backend.upload(logits.view(), Layout::Nchw).unwrap();
        let out = softmax_cross_entropy(&backend, &t, &[2, 3]).unwrap();
        let expected = (4f64.ln() - 0.4f64.ln()) / 2.0;
        assert_abs_diff_eq!(out.loss, expected, epsilon = 1e-6);
        // Row 1 ties everywhere, so its prediction is class 0 (the first maximum): wrong.
        assert_eq!(out.correct, 1);
        let grad = values(&out.grad);
        let want = [0.25, 0.25, -0.75, 0.25, 0.1, 0.2, 0.3, -0.6].map(|v| v / 2.0);
        for (g, w) in grad.iter().zip(want) {
            assert_abs_diff_eq!(*g, w, epsilon = 1e-6);
        }
        assert_eq!(out.grad.shape(), vec![2, 4, 1, 1]);
        // Large logits do not overflow: log-sum-exp of (1000, 0) is 1000 + ln(1 + e^-1000).
        let big = backend
            .upload(
                Array4::from_shape_vec((1, 2, 1, 1), vec![1000.0, 0.0])
                    .unwrap()
                    .view(),
                Layout::Nchw,
            )
            .unwrap();
        let out = softmax_cross_entropy(&backend, &big, &[1]).unwrap();
        assert_abs_diff_eq!(out.loss, 1000.0, epsilon = 1e-9);
        let e = softmax_cross_entropy(&backend, &big, &[2])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("label 2 of sample 0 is not below the 2 classes"),
            "{e}"
        );
        let e = softmax_cross_entropy(&backend, &big, &[0, 1])
            .unwrap_err()
            .to_string();
        assert!(e.contains("one label per sample; got 2 labels"), "{e}");
    }
}

/// The dense layer's output is the dot product of each output's weights with the whole input:
/// input x[c, h, w] = c + 2h + 4w... written out below, weights of output o all equal o + 1.
#[test]
fn dense_layer_is_a_dot_product_with_the_whole_input() {
    for backend in backends() {
        let x = Array4::from_shape_fn((2, 2, 2, 2), |(n, c, h, w)| {
            (n * 8 + c * 4 + h * 2 + w) as f32
        });
        let weight = Array4::from_shape_fn((3, 2, 2, 2), |(o, ..)| (o + 1) as f32);
        let bias = array![0.5f32, -1.0, 0.0];
        let mut dense = Conv2d::dense(
            &backend,
            weight.view(),
            bias.view(),
            Activation::None,
            Layout::Nchw,
        )
        .unwrap();
        let y = dense
            .forward(&backend.upload(x.view(), Layout::Nchw).unwrap(), false)
            .unwrap();
        assert_eq!(y.shape(), vec![2, 3, 1, 1]);
        // Sample 0 sums 0..8 = 28, sample 1 sums 8..16 = 92.
        let want = [28.0 + 0.5, 56.0 - 1.0, 84.0, 92.0 + 0.5, 184.0 - 1.0, 276.0];
        assert_eq!(values(&y), want);
    }
}

/// Two backward passes before a step accumulate: the gradient is twice one pass's. With a
/// linear 1x1 conv, w = 0 and bias 0, dL/dw = sum over positions of dy * x and dL/db = sum dy.
#[test]
fn gradients_accumulate_across_backward_passes() {
    for backend in backends() {
        let x = Array4::from_shape_fn((1, 1, 2, 2), |(_, _, h, w)| (1 + h * 2 + w) as f32);
        let dy = Array4::from_elem((1, 1, 2, 2), 0.5f32);
        let mut conv = Conv2d::new(
            &backend,
            Array4::zeros((1, 1, 1, 1)).view(),
            Array1::zeros(1).view(),
            Conv2dParams::default(),
            Activation::None,
        )
        .unwrap();
        let input = backend.upload(x.view(), Layout::Nchw).unwrap();
        let grad = backend.upload(dy.view(), Layout::Nchw).unwrap();
        for _ in 0..2 {
            conv.forward(&input, true).unwrap();
            let dx = conv.backward(&grad, true).unwrap().unwrap();
            assert_eq!(values(&dx), [0.0; 4], "w = 0 passes no gradient back");
        }
        // One pass: dw = 0.5 * (1 + 2 + 3 + 4) = 5, db = 4 * 0.5 = 2; two passes double both.
        assert_eq!(values(conv.weight.grad.as_ref().unwrap()), [10.0]);
        assert_eq!(values(conv.bias.grad.as_ref().unwrap()), [4.0]);
    }
}

/// A batch taken from uploaded data holds those samples' values, in either layout's first axis.
#[test]
fn samples_copies_a_range_of_the_batch() {
    for backend in backends() {
        let data = Array4::from_shape_fn((5, 3, 2, 2), |(n, c, h, w)| {
            (n * 100 + c * 10 + h * 2 + w) as f32
        });
        let t = backend.upload(data.view(), Layout::Nchw).unwrap();
        let batch = t.samples(1..4).unwrap();
        assert_eq!(batch.shape(), vec![3, 3, 2, 2]);
        let want: Vec<f32> = data
            .slice(ndarray::s![1..4, .., .., ..])
            .iter()
            .copied()
            .collect();
        assert_eq!(values(&batch), want);
        let e = t.samples(4..6).unwrap_err().to_string();
        assert!(e.contains("samples 4..6 of a tensor of 5 samples"), "{e}");
        let e = t.samples(2..2).unwrap_err().to_string();
        assert!(e.contains("samples 2..2"), "{e}");
    }
}

/// Misuse is an `Err` naming the layer: backward before a training forward, tensors from two
/// backends in one op.
#[test]
fn misuse_is_an_error_not_a_panic() {
    for backend in backends() {
        let mut pool = MaxPool2d::new(Pool2dParams::new(2, 2));
        let x = backend
            .upload(Array4::<f32>::zeros((1, 1, 2, 2)).view(), Layout::Nchw)
            .unwrap();
        let e = pool.backward(&x, true).unwrap_err().to_string();
        assert!(
            e.contains("nn::MaxPool2d::backward: no saved forward pass"),
            "{e}"
        );
        // Inference mode saves nothing either.
        pool.forward(&x, false).unwrap();
        assert!(pool.backward(&x, true).is_err());
        // A gradient of another shape is refused alike on both backends.
        let mut param = Param::new(x.clone());
        param.grad = Some(x.clone());
        let other = backend
            .upload(Array4::<f32>::zeros((1, 1, 2, 1)).view(), Layout::Nchw)
            .unwrap();
        let e = param.accumulate(other).unwrap_err().to_string();
        assert!(
            e.contains("gradient has shape [1, 1, 2, 1], accumulated gradient has [1, 1, 2, 2]"),
            "{e}"
        );
    }
    if let Some(gpu) = common::gpu() {
        let on_gpu = Backend::Gpu(gpu.clone());
        let mut conv = Conv2d::new(
            &on_gpu,
            Array4::zeros((1, 1, 1, 1)).view(),
            Array1::zeros(1).view(),
            Conv2dParams::default(),
            Activation::None,
        )
        .unwrap();
        let cpu_input = Tensor::Cpu(ArrayD::zeros(IxDyn(&[1, 1, 2, 2])));
        let e = conv.forward(&cpu_input, true).unwrap_err().to_string();
        assert!(e.contains("different backends"), "{e}");
        let e = conv.backward(&cpu_input, true).unwrap_err().to_string();
        assert!(e.contains("no saved forward pass"), "{e}");
    }
}

/// One training step of a conv + pool + dense net from the same weights, in `layout`, on
/// `backend`: the loss, and the updated parameters with weights back in OIHW order.
fn one_step(backend: &Backend, layout: Layout) -> (f64, Vec<Vec<f32>>) {
    // OIHW weights, NCHW input; NHWC runs get the same values permuted.
    let w1 = Array4::from_shape_fn((4, 2, 3, 3), |(o, c, h, w)| {
        ((o * 7 + c * 5 + h * 3 + w) % 11) as f32 / 11.0 - 0.45
    });
    let w2 = Array4::from_shape_fn((3, 4, 2, 2), |(o, c, h, w)| {
        ((o * 5 + c * 3 + h * 2 + w) % 7) as f32 / 7.0 - 0.4
    });
    let x = Array4::from_shape_fn((3, 2, 4, 4), |(n, c, h, w)| {
        ((n * 13 + c * 7 + h * 3 + w * 5) % 17) as f32 / 17.0
    });
    let (to_layout, weight_to_layout, weight_back): ([usize; 4], [usize; 4], [usize; 4]) =
        match layout {
            Layout::Nchw => ([0, 1, 2, 3], [0, 1, 2, 3], [0, 1, 2, 3]),
            // NCHW -> NHWC; OIHW -> HWIO and back.
            Layout::Nhwc => ([0, 2, 3, 1], [2, 3, 1, 0], [3, 2, 0, 1]),
        };
    let same = Conv2dParams::default()
        .with_padding(wgconv::Padding::Same)
        .with_layout(layout);
    let mut net = Sequential::new(vec![
        Box::new(
            Conv2d::new(
                backend,
                w1.view().permuted_axes(weight_to_layout),
                Array1::from_elem(4, 0.1).view(),
                same,
                Activation::Relu,
            )
            .unwrap(),
        ),
        Box::new(MaxPool2d::new(Pool2dParams::new(2, 2).with_layout(layout))),
        Box::new(
            Conv2d::dense(
                backend,
                w2.view().permuted_axes(weight_to_layout),
                Array1::zeros(3).view(),
                Activation::None,
                layout,
            )
            .unwrap(),
        ),
    ]);
    let sgd = Sgd {
        learning_rate: 0.5,
        momentum: 0.9,
        weight_decay: 0.0,
    };
    let input = backend
        .upload(x.view().permuted_axes(to_layout), layout)
        .unwrap();
    let logits = net.forward(&input, true).unwrap();
    let loss = softmax_cross_entropy(backend, &logits, &[0, 2, 1]).unwrap();
    net.backward(&loss.grad).unwrap();
    sgd.step(backend, net.params()).unwrap();
    let params = net
        .params()
        .iter()
        .map(|p| {
            let a = p.value.to_array().unwrap();
            let a = if a.ndim() == 4 {
                a.permuted_axes(weight_back.to_vec())
            } else {
                a
            };
            a.iter().copied().collect()
        })
        .collect();
    (loss.loss, params)
}

/// One training step leaves the same weights on both backends and in both layouts (to f32
/// rounding): NHWC/HWIO networks are the NCHW/OIHW ones with their axes permuted.
#[test]
fn one_step_updates_the_same_weights_on_both_backends_and_layouts() {
    let Some(gpu) = common::gpu() else { return };
    let reference = one_step(&Backend::Cpu, Layout::Nchw);
    assert_eq!(reference.1.len(), 4, "two weights and two biases");
    let runs = [
        (Backend::Gpu(gpu.clone()), Layout::Nchw),
        (Backend::Cpu, Layout::Nhwc),
        (Backend::Gpu(gpu.clone()), Layout::Nhwc),
    ];
    for (backend, layout) in runs {
        let (loss, params) = one_step(&backend, layout);
        let what = format!("{} {layout:?}", backend.name());
        assert!(
            (loss - reference.0).abs() < 1e-5,
            "{what}: loss {loss} vs {}",
            reference.0
        );
        for (p, r) in params.iter().zip(&reference.1) {
            for (a, b) in p.iter().zip(r) {
                assert!((a - b).abs() < 1e-5, "{what}: {a} vs {b}");
            }
        }
    }
}
