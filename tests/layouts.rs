//! TensorFlow/Keras conventions: NHWC/HWIO natively for every op, true convolution (flipped
//! kernel), the fused bias + activation epilogue and activation backward.

mod common;

use common::{random_case, Flavour, Rng};
use ndarray::{array, s, Array4, ArrayView4};
use wgconv::{
    activation_backward, compare, conv2d, conv2d_backward, conv2d_with_activation,
    conv_transpose2d, cpu, max_pool2d_backward, max_pool2d_with_indices, Activation, Bound,
    Conv2dParams, ConvTranspose2dParams, Error, ErrorBound, GpuTensor, GradSelection, IndexStyle,
    Layout, Padding, Pool2dParams, SavedTensor, Tolerance,
};

/// NCHW -> NHWC and OIHW -> HWIO, copied on the CPU (the tests' independent transposes).
fn to_nhwc(a: &Array4<f32>) -> Array4<f32> {
    a.view()
        .permuted_axes([0, 2, 3, 1])
        .as_standard_layout()
        .into_owned()
}
fn to_hwio(w: &Array4<f32>) -> Array4<f32> {
    w.view()
        .permuted_axes([2, 3, 1, 0])
        .as_standard_layout()
        .into_owned()
}
fn to_nchw(a: ArrayView4<f32>) -> Array4<f32> {
    a.permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .into_owned()
}
fn to_oihw(w: ArrayView4<f32>) -> Array4<f32> {
    w.permuted_axes([3, 2, 0, 1])
        .as_standard_layout()
        .into_owned()
}

fn fill(text: &str, mut plane: ndarray::ArrayViewMut2<f32>) {
    for (i, row) in text.split(';').enumerate() {
        for (j, v) in row.split_whitespace().enumerate() {
            plane[[i, j]] = v.parse().unwrap();
        }
    }
}

/// The CS231n 7x7x3 example as the tutorial writes it: x (1, 7, 7, 3) NHWC, w (3, 3, 3, 2) HWIO,
/// bias [1, 0], stride 2, VALID.
/// No transposes: the arrays are filled exactly as the tutorial's numpy code fills them.
#[test]
fn cs231n_7x7x3_in_its_own_nhwc_hwio_layout() {
    let mut x = Array4::<f32>::zeros((1, 7, 7, 3));
    let planes = [
        "0 0 0 0 0 0 0;0 0 1 0 1 0 0;0 2 1 0 1 2 0;0 0 2 0 0 1 0;0 2 0 1 0 0 0;0 0 0 1 2 2 0;0 0 0 0 0 0 0",
        "0 0 0 0 0 0 0;0 1 0 0 1 1 0;0 0 2 2 1 1 0;0 2 1 2 1 0 0;0 2 1 1 2 2 0;0 1 2 0 2 2 0;0 0 0 0 0 0 0",
        "0 0 0 0 0 0 0;0 2 1 1 1 1 0;0 2 2 1 2 1 0;0 1 1 0 2 2 0;0 2 1 2 2 0 0;0 1 2 2 0 0 0;0 0 0 0 0 0 0",
    ];
    for (c, text) in planes.iter().enumerate() {
        fill(text, x.slice_mut(s![0, .., .., c])); // x[:, :, c] = ...
    }
    let mut w = Array4::<f32>::zeros((3, 3, 3, 2));
    let slices = [
        [
            (0, 0, "0 0 1;-1 1 1;0 1 0"),
            (1, 0, "1 1 1;0 1 1;0 1 0"),
            (2, 0, "-1 0 0;-1 1 1;0 -1 0"),
        ],
        [
            (0, 1, "0 0 0;1 1 -1;-1 1 1"),
            (1, 1, "0 1 -1;1 1 -1;-1 1 -1"),
            (2, 1, "1 1 0;-1 -1 0;0 -1 1"),
        ],
    ];
    for &(cin, cout, text) in slices.iter().flatten() {
        fill(text, w.slice_mut(s![.., .., cin, cout])); // w[:, :, cin, cout] = ...
    }
    let b = array![1.0f32, 0.0];
    let p = Conv2dParams::default()
        .with_stride(2)
        .with_layout(Layout::Nhwc);
    let tf_o0 = array![[6.0f32, 4., 3.], [13., 7., 4.], [10., 9., 5.]];
    let tf_o1 = array![[-1.0f32, -3., 1.], [0., 6., 2.], [1., -3., 12.]];
    let mut results = vec![cpu::conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap()];
    if let Some(gpu) = common::gpu() {
        let y = conv2d(
            &GpuTensor::upload_with_layout(gpu, x.view(), Layout::Nhwc).unwrap(),
            &GpuTensor::upload_with_layout(gpu, w.view(), Layout::Nhwc).unwrap(),
            Some(&GpuTensor::upload_1d(gpu, b.view()).unwrap()),
            &p,
        )
        .unwrap();
        assert_eq!(y.shape(), &[1, 3, 3, 2]);
        results.push(y.read().unwrap());
    }
    for y in results {
        assert_eq!(y.dim(), (1, 3, 3, 2));
        assert_eq!(y.slice(s![0, .., .., 0]), tf_o0); // tf_o[0, :, :, 0]
        assert_eq!(y.slice(s![0, .., .., 1]), tf_o1);
    }
}

/// The Keras tutorial: Conv2D (NHWC input, HWIO kernel, VALID) against the tutorial's own loop
/// (`convolve`: per output channel, the sum over input channels of 2-D cross-correlations), and
/// MaxPool2D on the printed feature maps in NHWC.
#[test]
fn keras_conv2d_in_its_own_nhwc_layout() {
    let mut rng = Rng::new(3);
    let x = rng.array4([1, 4, 4, 3]);
    let k = rng.array4([2, 2, 3, 2]);
    // The tutorial's `convolve` + `conv2d_1`, written the same way.
    let mut features = Array4::<f32>::zeros((1, 3, 3, 2));
    for out_chan in 0..2 {
        for in_chan in 0..3 {
            for i in 0..3 {
                for j in 0..3 {
                    let mut sum = 0.0f32;
                    for a in 0..2 {
                        for bb in 0..2 {
                            sum += k[[a, bb, in_chan, out_chan]] * x[[0, i + a, j + bb, in_chan]];
                        }
                    }
                    features[[0, i, j, out_chan]] += sum;
                }
            }
        }
    }
    let p = Conv2dParams::default().with_layout(Layout::Nhwc);
    let ours = cpu::conv2d(x.view(), k.view(), None, &p).unwrap();
    // Both sides are f32 sums of the 12 terms, in two orders: two chains of 12.
    let bound = ErrorBound {
        bound: Bound::sum(2 * 12),
        ..ErrorBound::conv2d(x.view(), k.view(), None, &p).unwrap()
    };
    assert!(compare(ours.view(), features.view(), &bound).passed());
    let pool = Pool2dParams::new(2, 2).with_layout(Layout::Nhwc);
    let feature_maps = array![[
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
    ]];
    let want = array![[[[0.9654248f32, 1.2988867]]]];
    let want_stride_1 = array![[
        [[0.9654248f32, 1.2988867], [-0.10247962, 1.2988867]],
        [[0.9654248, 0.7197448], [0.46285468, 0.7197448]],
    ]];
    assert_eq!(cpu::max_pool2d(feature_maps.view(), &pool).unwrap(), want);
    assert_eq!(
        cpu::max_pool2d(feature_maps.view(), &pool.with_stride(1)).unwrap(),
        want_stride_1
    );
    if let Some(gpu) = common::gpu() {
        let y = conv2d(
            &GpuTensor::upload_with_layout(gpu, x.view(), Layout::Nhwc).unwrap(),
            &GpuTensor::upload_with_layout(gpu, k.view(), Layout::Nhwc).unwrap(),
            None,
            &p,
        )
        .unwrap()
        .read()
        .unwrap();
        assert!(compare(y.view(), features.view(), &bound).passed());
        let fm = GpuTensor::upload_with_layout(gpu, feature_maps.view(), Layout::Nhwc).unwrap();
        assert_eq!(
            wgconv::max_pool2d(&fm, &pool).unwrap().read().unwrap(),
            want
        );
        assert_eq!(
            wgconv::max_pool2d(&fm, &pool.with_stride(1))
                .unwrap()
                .read()
                .unwrap(),
            want_stride_1
        );
    }
}

fn nhwc(gpu: &wgconv::Gpu, a: &Array4<f32>) -> GpuTensor {
    GpuTensor::upload_with_layout(gpu, a.view(), Layout::Nhwc).unwrap()
}

/// Every conv op in NHWC on the GPU and the CPU against the NCHW reference on the same data
/// (transposed on the CPU), over random parameter sets.
#[test]
fn conv_ops_in_nhwc_match_nchw_on_random_parameter_sets() {
    let gpu = common::gpu();
    let mut rng = Rng::new(0x5eed_0005);
    let mut checked = 0;
    for flavour in Flavour::ALL {
        for i in 0..11 {
            let case = random_case(&mut rng, flavour);
            let p = case.params;
            let pn = p.with_layout(Layout::Nhwc);
            let x = rng.array4(case.input);
            let w = rng.array4(case.weight);
            let b = rng.array1(case.weight[0]);
            let g = p.geometry("t", case.input, case.weight, None).unwrap();
            let dy = rng.array4(g.output_shape());
            let activation = [Activation::None, Activation::Relu, Activation::Tanh][i % 3];
            let (xn, wn, dyn_) = (to_nhwc(&x), to_hwio(&w), to_nhwc(&dy));
            let tol_fwd = ErrorBound::conv2d_with_activation(
                xn.view(),
                wn.view(),
                Some(b.view()),
                &pn,
                activation,
            )
            .unwrap();
            let grad_bounds = ErrorBound::conv2d_backward(
                xn.view(),
                wn.view(),
                dyn_.view(),
                &pn,
                GradSelection::ALL,
            )
            .unwrap();
            let tol_dx = &grad_bounds.input.unwrap();
            let tol_dw = &grad_bounds.weight.unwrap();
            let tol_db = &grad_bounds.bias.unwrap();
            let tol_fwd = &tol_fwd;
            let want_y = to_nhwc(
                &cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, activation)
                    .unwrap(),
            );
            let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
            let (want_dx, want_dw, want_db) = (
                to_nhwc(want.input.as_ref().unwrap()),
                to_hwio(want.weight.as_ref().unwrap()),
                want.bias.unwrap(),
            );
            // CPU in NHWC: same loops through permuted views, so bit for bit.
            assert_eq!(
                cpu::conv2d_with_activation(xn.view(), wn.view(), Some(b.view()), &pn, activation)
                    .unwrap(),
                want_y
            );
            let cpu_n =
                cpu::conv2d_backward(xn.view(), wn.view(), dyn_.view(), &pn, GradSelection::ALL)
                    .unwrap();
            assert_eq!(cpu_n.input.unwrap(), want_dx);
            assert_eq!(cpu_n.weight.unwrap(), want_dw);
            let im2col = cpu::conv2d_backward_im2col(
                xn.view(),
                wn.view(),
                dyn_.view(),
                &pn,
                GradSelection::ALL,
            )
            .unwrap();
            assert!(compare(im2col.input.unwrap().view(), want_dx.view(), tol_dx).passed());
            // im2col sums dw over samples in its own order, and its forward is an f32 matrix
            // product: any order of their terms.
            let tol_dw_any = &tol_dw.clone().in_any_order();
            assert!(compare(im2col.weight.unwrap().view(), want_dw.view(), tol_dw_any).passed());
            let tol_im2col =
                &ErrorBound::conv2d(xn.view(), wn.view(), Some(b.view()), &pn).unwrap();
            assert!(compare(
                cpu::conv2d_im2col(xn.view(), wn.view(), Some(b.view()), &pn)
                    .unwrap()
                    .view(),
                to_nhwc(&cpu::conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap()).view(),
                tol_im2col
            )
            .passed());
            if let Some(gpu) = gpu {
                let (xt, wt, dyt) = (nhwc(gpu, &xn), nhwc(gpu, &wn), nhwc(gpu, &dyn_));
                let bt = GpuTensor::upload_1d(gpu, b.view()).unwrap();
                let y = conv2d_with_activation(&xt, &wt, Some(&bt), &pn, activation).unwrap();
                assert_eq!(y.layout(), Layout::Nhwc);
                let r = compare(y.read().unwrap().view(), want_y.view(), tol_fwd);
                assert!(
                    r.passed(),
                    "{flavour:?} {i} forward {activation:?}: {case:?}\n{r}"
                );
                let grads = conv2d_backward(&xt, &wt, &dyt, &pn, GradSelection::ALL).unwrap();
                let r = compare(
                    grads.input.unwrap().read().unwrap().view(),
                    want_dx.view(),
                    tol_dx,
                );
                assert!(r.passed(), "{flavour:?} {i} dx: {case:?}\n{r}");
                let r = compare(
                    grads.weight.unwrap().read().unwrap().view(),
                    want_dw.view(),
                    tol_dw,
                );
                assert!(r.passed(), "{flavour:?} {i} dw: {case:?}\n{r}");
                let r = compare(
                    grads.bias.unwrap().read_1d().unwrap().view(),
                    want_db.view(),
                    tol_db,
                );
                assert!(r.passed(), "{flavour:?} {i} db: {case:?}\n{r}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 100);
}

#[test]
fn conv_transpose2d_in_nhwc_matches_nchw() {
    let gpu = common::gpu();
    let mut rng = Rng::new(0x5eed_0006);
    let mut checked = 0;
    while checked < 100 {
        let groups = rng.range(1, 3);
        let cin = groups * rng.range(1, 3);
        let cout_pg = rng.range(1, 3);
        let stride = [rng.range(1, 3), rng.range(1, 3)];
        let p = ConvTranspose2dParams {
            stride,
            padding: Padding::explicit(
                rng.range(0, 1),
                rng.range(0, 1),
                rng.range(0, 1),
                rng.range(0, 1),
            ),
            output_padding: [rng.range(0, stride[0] - 1), rng.range(0, stride[1] - 1)],
            dilation: [rng.range(1, 2), rng.range(1, 2)],
            groups,
            flip: rng.chance(30),
            ..Default::default()
        };
        let input = [rng.range(1, 2), cin, rng.range(1, 6), rng.range(1, 6)];
        let weight = [cin, cout_pg, rng.range(1, 3), rng.range(1, 3)];
        if p.geometry("t", input, weight, None).is_err() {
            continue;
        }
        let x = rng.array4(input);
        let w = rng.array4(weight);
        let b = rng.array1(cout_pg * groups);
        let pn = ConvTranspose2dParams {
            layout: Layout::Nhwc,
            ..p
        };
        // Weight [C_in, C_out/g, kh, kw] in NHWC order is [kh, kw, C_out/g, C_in]: the same
        // permutation as OIHW -> HWIO.
        let want = to_nhwc(&cpu::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap());
        let got_cpu =
            cpu::conv_transpose2d(to_nhwc(&x).view(), to_hwio(&w).view(), Some(b.view()), &pn)
                .unwrap();
        assert_eq!(got_cpu, want);
        if let Some(gpu) = gpu {
            let got = conv_transpose2d(
                &nhwc(gpu, &to_nhwc(&x)),
                &nhwc(gpu, &to_hwio(&w)),
                Some(&GpuTensor::upload_1d(gpu, b.view()).unwrap()),
                &pn,
            )
            .unwrap()
            .read()
            .unwrap();
            let bound = ErrorBound::conv_transpose2d(
                to_nhwc(&x).view(),
                to_hwio(&w).view(),
                Some(b.view()),
                &pn,
            )
            .unwrap();
            let r = compare(got.view(), want.view(), &bound);
            assert!(r.passed(), "case {checked} {p:?}: {r}");
        }
        checked += 1;
    }
}

#[test]
fn pooling_in_nhwc_matches_nchw_and_tensorflow_indices() {
    let gpu = common::gpu();
    let mut rng = Rng::new(0x5eed_0007);
    let mut checked = 0;
    while checked < 100 {
        let p = Pool2dParams {
            kernel: [rng.range(1, 3), rng.range(1, 3)],
            stride: [rng.range(1, 3), rng.range(1, 3)],
            padding: [rng.range(0, 1), rng.range(0, 1)],
            dilation: [rng.range(1, 2), rng.range(1, 2)],
            ceil_mode: rng.chance(50),
            ..Pool2dParams::new(1, 1)
        };
        let shape = [
            rng.range(1, 2),
            rng.range(1, 4),
            rng.range(1, 10),
            rng.range(1, 10),
        ];
        let Ok(g) = p.geometry("t", shape) else {
            continue;
        };
        let x = Array4::from_shape_simple_fn(shape, || (rng.range(0, 7) as f32) - 3.0); // many ties
        let (values, indices) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
        let dy = rng.array4(g.output_shape());
        let dx = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
        let (c, w_in) = (shape[1], shape[3]);
        // TensorFlow's flattening, computed here from PyTorch's: (h * W + w) * C + c.
        let tf_indices =
            Array4::from_shape_fn(indices.dim(), |(_, ch, _, _)| ch).mapv(|ch| ch as i64);
        let tf_indices = to_nhwc_i64(
            &(indices.mapv(|i| (i / w_in as i64 * w_in as i64 + i % w_in as i64) * c as i64)
                + &tf_indices),
        );
        let pn = p.with_layout(Layout::Nhwc);
        let pt = pn.with_index_style(IndexStyle::TensorFlow);
        let xn = to_nhwc(&x);
        let shape_n = [shape[0], shape[2], shape[3], shape[1]];
        let (vn, in_) = cpu::max_pool2d_with_indices(xn.view(), &pn).unwrap();
        assert_eq!(vn, to_nhwc(&values));
        assert_eq!(
            in_,
            to_nhwc_i64(&indices),
            "PyTorch indices stay h*W+w per plane in NHWC"
        );
        let (_, it) = cpu::max_pool2d_with_indices(xn.view(), &pt).unwrap();
        assert_eq!(it, tf_indices);
        let dyn_ = to_nhwc(&dy);
        assert_eq!(
            cpu::max_pool2d_backward(dyn_.view(), it.view(), shape_n, &pt).unwrap(),
            to_nhwc(&dx)
        );
        if let Some(gpu) = gpu {
            for (params, want_indices) in [(pn, to_nhwc_i64(&indices)), (pt, tf_indices.clone())] {
                let (v, i) = max_pool2d_with_indices(&nhwc(gpu, &xn), &params).unwrap();
                assert_eq!(
                    v.read().unwrap(),
                    to_nhwc(&values),
                    "case {checked} {params:?}"
                );
                assert_eq!(
                    i.read_indices().unwrap(),
                    want_indices,
                    "case {checked} {params:?}"
                );
                let got = max_pool2d_backward(&nhwc(gpu, &dyn_), &i, shape_n, &params)
                    .unwrap()
                    .read()
                    .unwrap();
                let bound = ErrorBound::max_pool2d_backward(
                    dyn_.view(),
                    want_indices.view(),
                    shape_n,
                    &params,
                )
                .unwrap();
                let r = compare(got.view(), to_nhwc(&dx).view(), &bound);
                assert!(r.passed(), "case {checked} {params:?}: {r}");
                let uploaded =
                    GpuTensor::upload_indices(gpu, want_indices.view(), Layout::Nhwc).unwrap();
                let got = max_pool2d_backward(&nhwc(gpu, &dyn_), &uploaded, shape_n, &params)
                    .unwrap()
                    .read()
                    .unwrap();
                assert!(compare(got.view(), to_nhwc(&dx).view(), &bound).passed());
            }
        }
        checked += 1;
    }
}

fn to_nhwc_i64(a: &Array4<i64>) -> Array4<i64> {
    a.view()
        .permuted_axes([0, 2, 3, 1])
        .as_standard_layout()
        .into_owned()
}

/// True convolution written out with the flip, independent of the library's views and strides.
fn flipped_loop(x: &Array4<f32>, w: &Array4<f32>, p: &Conv2dParams) -> Array4<f32> {
    let g = p.geometry("t", dims(x), dims(w), None).unwrap();
    let (kh, kw) = (g.h.kernel, g.w.kernel);
    Array4::from_shape_fn(g.output_shape(), |(n, oc, oy, ox)| {
        let group = oc / g.out_channels_per_group();
        let mut sum = 0.0f64;
        for ci in 0..g.in_channels_per_group() {
            for ky in 0..kh {
                for kx in 0..kw {
                    let iy = (oy * g.h.stride + ky * g.h.dilation) as i64 - g.h.pad_before as i64;
                    let ix = (ox * g.w.stride + kx * g.w.dilation) as i64 - g.w.pad_before as i64;
                    if iy < 0 || ix < 0 || iy >= g.h.input as i64 || ix >= g.w.input as i64 {
                        continue;
                    }
                    let c = group * g.in_channels_per_group() + ci;
                    sum += f64::from(x[[n, c, iy as usize, ix as usize]])
                        * f64::from(w[[oc, ci, kh - 1 - ky, kw - 1 - kx]]);
                }
            }
        }
        sum as f32
    })
}

fn dims(a: &Array4<f32>) -> [usize; 4] {
    let d = a.dim();
    [d.0, d.1, d.2, d.3]
}

/// The numpy loops tutorial's step image: scipy's `convolve` flips the kernel, so the step image
/// gives rows of -40.
#[test]
fn true_convolution_of_the_step_image_gives_minus_40() {
    let mut x = Array4::<f32>::zeros((1, 1, 6, 6));
    x.slice_mut(s![0, 0, 0..3, ..]).fill(10.0);
    let w = array![[1.0f32, 2., 1.], [0., 0., 0.], [-1., -2., -1.]]
        .into_shape_with_order((1, 1, 3, 3))
        .unwrap();
    let p = Conv2dParams::default().with_flip(true);
    let want = array![
        [0.0f32, 0., 0., 0.],
        [-40., -40., -40., -40.],
        [-40., -40., -40., -40.],
        [0., 0., 0., 0.]
    ];
    assert_eq!(
        cpu::conv2d(x.view(), w.view(), None, &p)
            .unwrap()
            .slice(s![0, 0, .., ..]),
        want
    );
    if let Some(gpu) = common::gpu() {
        let y = conv2d(
            &GpuTensor::upload(gpu, x.view()).unwrap(),
            &GpuTensor::upload(gpu, w.view()).unwrap(),
            None,
            &p,
        )
        .unwrap();
        assert_eq!(y.read().unwrap().slice(s![0, 0, .., ..]), want);
    }
}

#[test]
fn true_convolution_matches_a_flipped_loop_forward_and_gradients() {
    let gpu = common::gpu();
    let mut rng = Rng::new(0x5eed_0008);
    for flavour in Flavour::ALL {
        for i in 0..10 {
            let case = random_case(&mut rng, flavour);
            let layout = if i % 2 == 0 {
                Layout::Nchw
            } else {
                Layout::Nhwc
            };
            let p = case.params.with_flip(true);
            let x = rng.array4(case.input);
            let w = rng.array4(case.weight);
            let g = p.geometry("t", case.input, case.weight, None).unwrap();
            let want = flipped_loop(&x, &w, &p);
            let tol = Tolerance::for_reduction(g.reduction_len());
            let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
            let reference = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
            assert!(
                compare(reference.view(), want.view(), tol).passed(),
                "{flavour:?} {i}"
            );
            // Gradients of the flipped conv: those of the plain conv with the kernel flipped
            // (dw comes back flipped).
            let w_flipped = w.slice(s![.., .., ..;-1, ..;-1]).to_owned();
            let dy = rng.array4(g.output_shape());
            let plain = cpu::conv2d_backward(
                x.view(),
                w_flipped.view(),
                dy.view(),
                &case.params,
                GradSelection::ALL,
            )
            .unwrap();
            let want_dx = plain.input.unwrap();
            let want_dw = plain
                .weight
                .unwrap()
                .slice(s![.., .., ..;-1, ..;-1])
                .to_owned();
            let flipped =
                cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                    .unwrap();
            assert_eq!(flipped.input.as_ref().unwrap(), &want_dx);
            assert_eq!(flipped.weight.as_ref().unwrap(), &want_dw);
            let Some(gpu) = gpu else { continue };
            let pl = p.with_layout(layout);
            let (xs, ws, dys) = match layout {
                Layout::Nchw => (x.clone(), w.clone(), dy.clone()),
                Layout::Nhwc => (to_nhwc(&x), to_hwio(&w), to_nhwc(&dy)),
            };
            let up =
                |a: &Array4<f32>| GpuTensor::upload_with_layout(gpu, a.view(), layout).unwrap();
            let back = |a: Array4<f32>, weight: bool| match (layout, weight) {
                (Layout::Nchw, _) => a,
                (Layout::Nhwc, false) => to_nchw(a.view()),
                (Layout::Nhwc, true) => to_oihw(a.view()),
            };
            let y = back(
                conv2d(&up(&xs), &up(&ws), None, &pl)
                    .unwrap()
                    .read()
                    .unwrap(),
                false,
            );
            let r = compare(y.view(), want.view(), &bound);
            assert!(r.passed(), "{flavour:?} {i} {layout:?} forward: {r}");
            let grads =
                conv2d_backward(&up(&xs), &up(&ws), &up(&dys), &pl, GradSelection::ALL).unwrap();
            let dx = back(grads.input.unwrap().read().unwrap(), false);
            let dw = back(grads.weight.unwrap().read().unwrap(), true);
            let bounds =
                ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                    .unwrap();
            let r = compare(dx.view(), want_dx.view(), &bounds.input.unwrap());
            assert!(r.passed(), "{flavour:?} {i} {layout:?} dx: {r}");
            let r = compare(dw.view(), want_dw.view(), &bounds.weight.unwrap());
            assert!(r.passed(), "{flavour:?} {i} {layout:?} dw: {r}");
        }
    }
}

const ACTIVATIONS: [Activation; 6] = [
    Activation::None,
    Activation::Relu,
    Activation::Sigmoid,
    Activation::Tanh,
    Activation::LeakyRelu { slope: 0.1 },
    Activation::LeakyRelu { slope: -0.5 },
];

#[test]
fn fused_activation_matches_reference_forward() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(61);
    let p = Conv2dParams::default()
        .with_padding(Padding::Same)
        .with_groups(2);
    // Inputs scaled so pre-activations cover the saturating ranges of sigmoid and tanh.
    let x = rng.array4([2, 4, 9, 9]).mapv(|v| v * 4.0);
    let w = rng.array4([6, 2, 3, 3]);
    let b = rng.array1(6);
    let (xt, wt, bt) = (
        GpuTensor::upload(gpu, x.view()).unwrap(),
        GpuTensor::upload(gpu, w.view()).unwrap(),
        GpuTensor::upload_1d(gpu, b.view()).unwrap(),
    );
    for activation in ACTIVATIONS {
        let want = cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, activation)
            .unwrap();
        // Independently: the plain conv, then the activation elementwise in f64.
        let pre = cpu::conv2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        let by_hand = pre.mapv(|z| activation.apply(f64::from(z)) as f32);
        assert!(
            compare(want.view(), by_hand.view(), Tolerance::for_reduction(18)).passed(),
            "{activation:?}"
        );
        let got = conv2d_with_activation(&xt, &wt, Some(&bt), &p, activation)
            .unwrap()
            .read()
            .unwrap();
        let bound =
            ErrorBound::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, activation)
                .unwrap();
        let r = compare(got.view(), want.view(), &bound);
        common::note_ratio(&format!("conv2d {activation:?}"), &r);
        assert!(r.passed(), "{activation:?}: {r}");
    }
    // Closed forms at known points.
    assert_eq!(Activation::Relu.apply(-2.0), 0.0);
    assert_eq!(Activation::Sigmoid.apply(0.0), 0.5);
    assert_eq!(
        Activation::LeakyRelu { slope: 0.1 }.apply(-2.0),
        f64::from(0.1f32) * -2.0
    );
}

#[test]
fn activation_backward_matches_reference_and_finite_differences() {
    let gpu = common::gpu();
    let mut rng = Rng::new(62);
    let z = rng.array4([2, 3, 5, 7]).mapv(|v| v * 3.0);
    let dy = rng.array4([2, 3, 5, 7]);
    for activation in ACTIVATIONS {
        let y = z.mapv(|v| activation.apply(f64::from(v)) as f32);
        // Finite differences of the f64 activation at each pre-activation.
        let fd = ndarray::Zip::from(&z).and(&dy).map_collect(|&zv, &d| {
            let h = 1e-6;
            let zv = f64::from(zv);
            f64::from(d) * (activation.apply(zv + h) - activation.apply(zv - h)) / (2.0 * h)
        });
        for saved in [SavedTensor::PreActivation, SavedTensor::Output] {
            let saved_tensor = if saved == SavedTensor::Output { &y } else { &z };
            let result =
                cpu::activation_backward(dy.view(), saved_tensor.view(), activation, saved);
            if let (Activation::LeakyRelu { slope }, SavedTensor::Output) = (activation, saved) {
                if slope < 0.0 {
                    let e = result.unwrap_err();
                    assert!(e.to_string().contains("pre-activation"), "{e}");
                    continue;
                }
            }
            let want = result.unwrap();
            for (a, b) in want.iter().zip(fd.iter()) {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-4 * b.abs().max(1.0),
                    "{activation:?} {saved:?}: {a} vs fd {b}"
                );
            }
            if let Some(gpu) = gpu {
                let got = activation_backward(
                    &GpuTensor::upload(gpu, dy.view()).unwrap(),
                    &GpuTensor::upload(gpu, saved_tensor.view()).unwrap(),
                    activation,
                    saved,
                )
                .unwrap()
                .read()
                .unwrap();
                let bound = ErrorBound::activation_backward(dy.view(), activation, saved);
                let r = compare(got.view(), want.view(), &bound);
                common::note_ratio(&format!("activation_backward {activation:?} {saved:?}"), &r);
                assert!(r.passed(), "{activation:?} {saved:?}: {r}");
            }
        }
    }
}

#[test]
fn mixed_layouts_in_one_call_are_an_error() {
    let Some(gpu) = common::gpu() else { return };
    let x = GpuTensor::upload(gpu, Array4::<f32>::ones((1, 2, 5, 5)).view()).unwrap();
    let w_hwio =
        GpuTensor::upload_with_layout(gpu, Array4::<f32>::ones((3, 3, 2, 4)).view(), Layout::Nhwc)
            .unwrap();
    let w_oihw = GpuTensor::upload(gpu, Array4::<f32>::ones((4, 2, 3, 3)).view()).unwrap();
    let e = conv2d(&x, &w_hwio, None, &Conv2dParams::default()).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { .. })
            && e.to_string()
                .contains("weight is stored as Nhwc but the parameters say Nchw"),
        "{e}"
    );
    let e = conv2d(
        &x,
        &w_oihw,
        None,
        &Conv2dParams::default().with_layout(Layout::Nhwc),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("input is stored as Nchw but the parameters say Nhwc"),
        "{e}"
    );
    let e = wgconv::max_pool2d(&x, &Pool2dParams::new(2, 2).with_layout(Layout::Nhwc)).unwrap_err();
    assert!(e.to_string().contains("mixed layouts"), "{e}");
    let e = cpu::max_pool2d(
        Array4::<f32>::ones((1, 2, 4, 4)).view(),
        &Pool2dParams::new(2, 2).with_index_style(IndexStyle::TensorFlow),
    )
    .unwrap_err();
    assert!(e.to_string().contains("NHWC layout only"), "{e}");
}
