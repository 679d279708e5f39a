//! Work past the storage-binding limit: with a tiny limit forced, every op splits over the batch and within one sample and still gives the unsplit CPU reference's answer; what cannot split is a clear `TooLarge`.
//!
//! `WGCONV_BIG_TESTS=1` also runs a real case past a 128 MiB binding limit.

mod common;

use ndarray::Array4;
use wgconv::ConvVariant;
use wgconv::{
    activation_backward, compare, conv2d_backward, conv2d_backward_bias, conv2d_backward_input,
    conv2d_backward_weight, conv2d_with_activation, conv_transpose2d, cpu, max_pool2d,
    max_pool2d_backward, max_pool2d_with_indices, Activation, Conv2dParams, ConvTranspose2dParams,
    Error, ErrorBound, Gpu, GpuTensor, GradSelection, Layout, Padding, Pool2dParams, PoolVariant,
    SavedTensor,
};

/// Bytes one storage binding may hold in these tests: a few samples of the shapes below.
const LIMIT: u64 = 1024;

/// A device of its own with the tiny binding limit: one left to the planner, and one per
/// unpacked conv variant forced. The packed variants' scratch (padded weights above all) does
/// not shrink with the batch, so under a 1 KiB limit the planner passes them over and forcing
/// one is a `TooLarge` (see `a_forced_packed_variant_whose_scratch_cannot_fit_is_too_large`).
fn limited_gpus() -> Vec<(String, Gpu)> {
    if common::gpu().is_none() {
        return vec![];
    }
    let planner = Gpu::new().expect("a device");
    planner.limit_storage_binding(LIMIT);
    let mut gpus = vec![("planner".to_string(), planner)];
    for &v in ConvVariant::ALL {
        if v.packed_tiling().is_some() {
            continue;
        }
        let gpu = Gpu::new().expect("a device");
        if !common::check_availability(&gpu, v) {
            continue;
        }
        gpu.force_conv_variant(Some(v));
        gpu.limit_storage_binding(LIMIT);
        gpus.push((v.name().to_string(), gpu));
    }
    gpus
}

#[test]
fn a_forced_packed_variant_whose_scratch_cannot_fit_is_too_large() {
    if common::gpu().is_none() {
        return;
    }
    let gpu = Gpu::new().expect("a device");
    gpu.limit_storage_binding(LIMIT);
    // tiled packs into storage buffers (packed8 into textures, which the binding limit
    // does not bound).
    gpu.force_conv_variant(Some(ConvVariant::Tiled));
    let x = data([1, 3, 7, 7], 1);
    let w = data([4, 3, 3, 3], 2);
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    match wgconv::conv2d(
        &up(&gpu, &x, Layout::Nchw),
        &up(&gpu, &w, Layout::Nchw),
        None,
        &p,
    ) {
        Err(Error::TooLarge { what, .. }) => assert!(what.contains("scratch"), "{what}"),
        other => panic!("expected TooLarge naming the scratch, got {other:?}"),
    }
}

fn data(shape: [usize; 4], seed: u64) -> Array4<f32> {
    common::Rng::new(seed).array4(shape)
}

fn up(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> GpuTensor {
    GpuTensor::upload_with_layout(gpu, a.view(), layout).unwrap()
}

/// `got` within `bound` of the reference `want`. A split gradient adds its tiles' partial sums
/// in an order of its own, so dw and db bounds come `in_any_order` here.
fn assert_matches<D: ndarray::Dimension>(
    what: &str,
    got: &ndarray::Array<f32, D>,
    want: &ndarray::Array<f32, D>,
    bound: &ErrorBound<D>,
) {
    let r = compare(got.view(), want.view(), bound);
    assert!(r.passed(), "{what}: {r}");
}

/// The bounds of the three gradients, dw and db in any order (see [`assert_matches`]).
fn grad_bounds(
    x: &Array4<f32>,
    w: &Array4<f32>,
    dy: &Array4<f32>,
    p: &Conv2dParams,
) -> (
    ErrorBound<ndarray::Ix4>,
    ErrorBound<ndarray::Ix4>,
    ErrorBound<ndarray::Ix1>,
) {
    let b =
        ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), p, GradSelection::ALL).unwrap();
    (
        b.input.unwrap(),
        b.weight.unwrap().in_any_order(),
        b.bias.unwrap().in_any_order(),
    )
}

#[test]
fn conv2d_past_the_binding_limit_splits_over_the_batch() {
    for (variant, gpu) in limited_gpus() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            // 7 samples of 3x7x7 (588 bytes) in, 4x7x7 (784 bytes) out: one sample a chunk.
            let x = data(layout.activation_shape([7, 3, 7, 7]), 1);
            let w = data(layout.weight_shape([4, 3, 3, 3]), 2);
            let b = ndarray::Array1::from_vec(vec![0.5f32, -0.25, 1.0, 0.0]);
            let p = Conv2dParams::default()
                .with_padding(Padding::uniform(1))
                .with_layout(layout);
            let bt = GpuTensor::upload_1d(&gpu, b.view()).unwrap();
            let got = conv2d_with_activation(
                &up(&gpu, &x, layout),
                &up(&gpu, &w, layout),
                Some(&bt),
                &p,
                Activation::Relu,
            )
            .unwrap();
            assert!(got.byte_size() > LIMIT, "the case must need splitting");
            let want = cpu::conv2d_with_activation(
                x.view(),
                w.view(),
                Some(b.view()),
                &p,
                Activation::Relu,
            )
            .unwrap();
            let bound = ErrorBound::conv2d_with_activation(
                x.view(),
                w.view(),
                Some(b.view()),
                &p,
                Activation::Relu,
            )
            .unwrap();
            assert_matches(
                &format!("{variant} {layout:?} conv2d"),
                &got.read().unwrap(),
                &want,
                &bound,
            );
        }
    }
}

#[test]
fn conv2d_gradients_past_the_binding_limit_split_and_sum_over_the_batch() {
    for (variant, gpu) in limited_gpus() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            let (n, cin, cout) = (7, 3, 4);
            let x = data(layout.activation_shape([n, cin, 7, 7]), 11);
            let w = data(layout.weight_shape([cout, cin, 3, 3]), 12);
            let dy = data(layout.activation_shape([n, cout, 4, 4]), 13);
            let p = Conv2dParams::default()
                .with_stride(2)
                .with_padding(Padding::uniform(1))
                .with_layout(layout);
            let (xt, wt, dyt) = (
                up(&gpu, &x, layout),
                up(&gpu, &w, layout),
                up(&gpu, &dy, layout),
            );
            assert!(xt.byte_size() > LIMIT);
            let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
            let (want_dx, want_dw, want_db) = (
                want.input.unwrap(),
                want.weight.unwrap(),
                want.bias.unwrap(),
            );
            let what = |g: &str| format!("{variant} {layout:?} {g}");
            let (bx, bw, bb) = grad_bounds(&x, &w, &dy, &p);
            let got = conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL).unwrap();
            assert_matches(
                &what("dx"),
                &got.input.unwrap().read().unwrap(),
                &want_dx,
                &bx,
            );
            assert_matches(
                &what("dw"),
                &got.weight.unwrap().read().unwrap(),
                &want_dw,
                &bw,
            );
            let db = got.bias.unwrap().read_1d().unwrap();
            assert_matches(&what("db"), &db, &want_db, &bb);
            // The single-gradient entry points split the same way.
            let dx = conv2d_backward_input(xt.shape().try_into().unwrap(), &wt, &dyt, &p).unwrap();
            assert_matches(
                &what("conv2d_backward_input"),
                &dx.read().unwrap(),
                &want_dx,
                &bx,
            );
            let dw = conv2d_backward_weight(&xt, wt.shape().try_into().unwrap(), &dyt, &p).unwrap();
            assert_matches(
                &what("conv2d_backward_weight"),
                &dw.read().unwrap(),
                &want_dw,
                &bw,
            );
            let db = conv2d_backward_bias(&dyt, layout)
                .unwrap()
                .read_1d()
                .unwrap();
            assert_matches(&what("conv2d_backward_bias"), &db, &want_db, &bb);
        }
    }
}

#[test]
fn conv_transpose2d_past_the_binding_limit_splits_over_the_batch() {
    for (variant, gpu) in limited_gpus() {
        let x = data([5, 4, 4, 4], 3);
        let w = data([4, 2, 3, 3], 4);
        let p = ConvTranspose2dParams::default().with_stride(2);
        let got = conv_transpose2d(
            &up(&gpu, &x, Layout::Nchw),
            &up(&gpu, &w, Layout::Nchw),
            None,
            &p,
        )
        .unwrap();
        assert!(got.byte_size() > LIMIT);
        let want = cpu::conv_transpose2d(x.view(), w.view(), None, &p).unwrap();
        let bound = ErrorBound::conv_transpose2d(x.view(), w.view(), None, &p).unwrap();
        assert_matches(
            &format!("{variant} conv_transpose2d"),
            &got.read().unwrap(),
            &want,
            &bound,
        );
    }
}

#[test]
fn pooling_and_activation_backward_past_the_binding_limit_split_over_the_batch() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    let x = data([6, 2, 9, 9], 5);
    let p = Pool2dParams::new(3, 3).with_stride(2).with_padding(1);
    let got = max_pool2d(&up(&gpu, &x, Layout::Nchw), &p)
        .unwrap()
        .read()
        .unwrap();
    let want = cpu::max_pool2d(x.view(), &p).unwrap();
    assert_eq!(got, want, "max_pool2d");

    let (dy, z) = (data([4, 3, 5, 5], 6), data([4, 3, 5, 5], 7));
    let a = Activation::Sigmoid;
    let got = activation_backward(
        &up(&gpu, &dy, Layout::Nchw),
        &up(&gpu, &z, Layout::Nchw),
        a,
        SavedTensor::PreActivation,
    )
    .unwrap()
    .read()
    .unwrap();
    let want =
        cpu::activation_backward(dy.view(), z.view(), a, SavedTensor::PreActivation).unwrap();
    let bound = ErrorBound::activation_backward(dy.view(), a, SavedTensor::PreActivation);
    assert_matches("activation_backward", &got, &want, &bound);
}

#[test]
fn pooling_with_indices_and_its_backward_split_over_the_batch() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let shape = layout.activation_shape([6, 2, 9, 9]);
        let x = data(shape, 14);
        let p = Pool2dParams::new(3, 3)
            .with_stride(2)
            .with_padding(1)
            .with_layout(layout);
        let (values, indices) = max_pool2d_with_indices(&up(&gpu, &x, layout), &p).unwrap();
        let (want_v, want_i) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
        assert_eq!(values.read().unwrap(), want_v, "{layout:?} values");
        assert_eq!(
            indices.read_indices().unwrap(),
            want_i,
            "{layout:?} indices"
        );
        let g = p.geometry("t", shape).unwrap();
        let dy = data(g.output_shape(), 15);
        let want_dx = cpu::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
        let bound = ErrorBound::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
        let dyt = up(&gpu, &dy, layout);
        // Through the split forward's indices, and through uploaded ones.
        let dx = max_pool2d_backward(&dyt, &indices, shape, &p).unwrap();
        assert!(dx.byte_size() > LIMIT);
        assert_matches(
            &format!("{layout:?} backward"),
            &dx.read().unwrap(),
            &want_dx,
            &bound,
        );
        let uploaded = GpuTensor::upload_indices(&gpu, want_i.view(), layout).unwrap();
        let dx = max_pool2d_backward(&dyt, &uploaded, shape, &p).unwrap();
        assert_matches(
            &format!("{layout:?} backward, uploaded indices"),
            &dx.read().unwrap(),
            &want_dx,
            &bound,
        );
    }
}

#[test]
fn split_calls_reuse_their_chunk_buffers() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    let run = |seed| {
        let x = data([7, 3, 7, 7], seed);
        let w = data([4, 3, 3, 3], seed + 1);
        let p = Conv2dParams::default().with_padding(Padding::uniform(1));
        wgconv::conv2d(
            &up(&gpu, &x, Layout::Nchw),
            &up(&gpu, &w, Layout::Nchw),
            None,
            &p,
        )
        .unwrap()
        .read()
        .unwrap()
    };
    run(1);
    let after_first = gpu.buffer_allocations();
    run(3);
    assert_eq!(gpu.buffer_allocations(), after_first);
}

/// conv2d cases whose single sample is past the 1 KiB limit, as (input, weight) in NCHW/OIHW
/// terms and parameters: row bands with their halo, output channels (the weight itself past
/// the limit), groups split whole and within a group, dilation, stride, `Same` padding, flip.
fn within_sample_conv_cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams)> {
    let p = Conv2dParams::default;
    vec![
        (
            [2, 3, 16, 16],
            [4, 3, 3, 3],
            p().with_padding(Padding::uniform(1)),
        ),
        (
            [1, 3, 17, 13],
            [5, 3, 3, 2],
            p().with_stride_hw(2, 1)
                .with_dilation_hw(2, 1)
                .with_padding(Padding::explicit(3, 1, 0, 2))
                .with_flip(true),
        ),
        (
            [1, 2, 5, 40],
            [16, 2, 3, 3],
            p().with_padding(Padding::Same),
        ),
        (
            [1, 8, 9, 12],
            [12, 2, 3, 3],
            p().with_groups(4)
                .with_padding(Padding::uniform(2))
                .with_dilation(2),
        ),
        // 2 groups of 12 output channels: a row of one group is past the limit, so channels
        // split within each group.
        (
            [1, 4, 4, 24],
            [24, 2, 1, 3],
            p().with_groups(2).with_padding(Padding::Same),
        ),
    ]
}

#[test]
fn conv2d_splits_one_sample_over_rows_and_output_channels() {
    for (variant, gpu) in limited_gpus() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            for (k, (xs, ws, p)) in within_sample_conv_cases().into_iter().enumerate() {
                let p = p.with_layout(layout);
                let x = data(layout.activation_shape(xs), 20 + k as u64);
                let w = data(layout.weight_shape(ws), 30 + k as u64);
                let b =
                    ndarray::Array1::from_vec((0..ws[0]).map(|i| i as f32 * 0.125 - 0.5).collect());
                let what = format!("{variant} {layout:?} case {k}");
                let per_sample = xs[1..].iter().product::<usize>() * 4;
                assert!(
                    per_sample as u64 > LIMIT,
                    "{what}: one sample must be past the limit"
                );
                let bt = GpuTensor::upload_1d(&gpu, b.view()).unwrap();
                let got = conv2d_with_activation(
                    &up(&gpu, &x, layout),
                    &up(&gpu, &w, layout),
                    Some(&bt),
                    &p,
                    Activation::LeakyRelu { slope: 0.1 },
                )
                .unwrap_or_else(|e| panic!("{what}: {e}"));
                let want = cpu::conv2d_with_activation(
                    x.view(),
                    w.view(),
                    Some(b.view()),
                    &p,
                    Activation::LeakyRelu { slope: 0.1 },
                )
                .unwrap();
                let bound = ErrorBound::conv2d_with_activation(
                    x.view(),
                    w.view(),
                    Some(b.view()),
                    &p,
                    Activation::LeakyRelu { slope: 0.1 },
                )
                .unwrap();
                assert_matches(&what, &got.read().unwrap(), &want, &bound);
                // The estimate of the tiled call names its pieces and fits the binding.
                let e = gpu
                    .memory_required(&wgconv::gpu::OpCall::Conv2d {
                        input: x.dim().into(),
                        weight: w.dim().into(),
                        bias: true,
                        params: p,
                        activation: Activation::LeakyRelu { slope: 0.1 },
                    })
                    .unwrap();
                assert!(e.pieces > 1, "{what}: {e:?}");
            }
        }
    }
}

#[test]
fn rows_that_read_only_padding_cannot_be_a_band_and_say_so() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    // Padding 40 above 2 input rows: with 1 KiB bindings the top output rows must be bands of
    // their own, and they read no input row.
    let x = data([1, 1, 2, 200], 8);
    let w = data([1, 1, 1, 1], 9);
    let p = Conv2dParams::default().with_padding(Padding::explicit(40, 0, 0, 0));
    let e = wgconv::conv2d(
        &up(&gpu, &x, Layout::Nchw),
        &up(&gpu, &w, Layout::Nchw),
        None,
        &p,
    )
    .unwrap_err();
    assert!(matches!(e, Error::TooLarge { op: "conv2d", .. }), "{e:?}");
    assert!(e.to_string().contains("padding"), "{e}");
}

/// A 1x1 conv whose input (16 x 64 x 192 x 192 floats, 151 MB) is past a 128 MiB binding
/// limit, against the CPU reference: the device's own where it is that low (lavapipe, most
/// WebGPU devices), else lowered to 128 MiB, WebGPU's default. Slow and memory-hungry:
/// `WGCONV_BIG_TESTS=1`.
#[test]
fn a_real_input_past_128_mib_gives_the_reference_answer() {
    if std::env::var_os("WGCONV_BIG_TESTS").is_none() {
        eprintln!("skipped: set WGCONV_BIG_TESTS=1 to run the >128 MiB case");
        return;
    }
    if common::gpu().is_none() {
        return;
    }
    let gpu = &Gpu::new().expect("a device");
    gpu.limit_storage_binding(128 << 20);
    let x = data([16, 64, 192, 192], 10);
    let w = data([2, 64, 1, 1], 11);
    let p = Conv2dParams::default();
    let xt = up(gpu, &x, Layout::Nchw);
    assert!(
        xt.byte_size() > gpu.max_storage_binding(),
        "{} bytes",
        xt.byte_size()
    );
    let got = wgconv::conv2d(&xt, &up(gpu, &w, Layout::Nchw), None, &p)
        .unwrap()
        .read()
        .unwrap();
    let want = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
    let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
    assert_matches("big conv2d", &got, &want, &bound);
}

/// Pooling cases whose single sample is past the 1 KiB limit: row bands with their halo (with
/// dilation, ceil mode and -inf padding at the edges only), and channels when even one band of
/// rows of all channels is past it.
fn within_sample_pool_cases() -> Vec<([usize; 4], Pool2dParams)> {
    vec![
        (
            [2, 3, 20, 20],
            Pool2dParams::new(3, 3).with_stride(2).with_padding(1),
        ),
        (
            [1, 2, 23, 17],
            Pool2dParams::new(3, 2)
                .with_stride_hw(2, 1)
                .with_dilation(2)
                .with_padding(1)
                .with_ceil_mode(true),
        ),
        ([1, 64, 4, 4], Pool2dParams::new(2, 2).with_stride(1)),
        // The blocked variant's octet forward on bands of rows (indices offset by the band's
        // first row), and its plane scan backward on channel chunks of whole planes.
        (
            [1, 2, 16, 16],
            Pool2dParams::new(3, 3).with_stride(2).with_padding(1),
        ),
        ([1, 32, 8, 8], Pool2dParams::new(2, 2)),
        // Ceil mode keeps one clipped window where the kernel is wider than the padded input:
        // across the columns of row bands, and across the rows of channel chunks (in the
        // octet forward for the blocked variant).
        (
            [1, 4, 40, 2],
            Pool2dParams::new(3, 3).with_stride(2).with_ceil_mode(true),
        ),
        (
            [1, 4, 2, 64],
            Pool2dParams::new(3, 3)
                .with_stride_hw(3, 2)
                .with_ceil_mode(true),
        ),
    ]
}

#[test]
fn pooling_and_its_backward_split_one_sample_over_rows_and_channels() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    for (variant, layout) in [PoolVariant::PerElement, PoolVariant::Blocked]
        .into_iter()
        .flat_map(|v| [(v, Layout::Nchw), (v, Layout::Nhwc)])
    {
        gpu.force_pool_variant(Some(variant));
        for (k, (xs, p)) in within_sample_pool_cases().into_iter().enumerate() {
            let shape = layout.activation_shape(xs);
            let p = p.with_layout(layout);
            let what = format!("{} {layout:?} case {k}", variant.name());
            assert!(
                (xs[1..].iter().product::<usize>() * 4) as u64 > LIMIT,
                "{what}"
            );
            let x = data(shape, 40 + k as u64);
            let xt = up(&gpu, &x, layout);
            let estimate = gpu
                .memory_required(&wgconv::gpu::OpCall::MaxPool2d {
                    input: shape,
                    params: p,
                    with_indices: true,
                })
                .unwrap();
            let in_use = gpu.memory_in_use() - gpu.pool_stats().free_bytes;
            gpu.reset_peak_memory();
            let (values, indices) =
                max_pool2d_with_indices(&xt, &p).unwrap_or_else(|e| panic!("{what}: {e}"));
            let peak = gpu.pool_stats().peak_in_use_bytes - in_use;
            assert!(estimate.pieces > 1, "{what}: {estimate:?}");
            assert_eq!(peak, estimate.peak_bytes, "{what}: {estimate:?}");
            let (want_v, want_i) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
            assert_eq!(values.read().unwrap(), want_v, "{what} values");
            assert_eq!(indices.read_indices().unwrap(), want_i, "{what} indices");
            let inference = max_pool2d(&xt, &p).unwrap();
            assert_eq!(inference.read().unwrap(), want_v, "{what} values only");

            let dy = data(
                p.geometry("t", shape).unwrap().output_shape(),
                50 + k as u64,
            );
            let want_dx = cpu::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
            let bound =
                ErrorBound::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
            let dyt = up(&gpu, &dy, layout);
            let dx = max_pool2d_backward(&dyt, &indices, shape, &p)
                .unwrap_or_else(|e| panic!("{what} backward: {e}"));
            assert_matches(
                &format!("{what} backward"),
                &dx.read().unwrap(),
                &want_dx,
                &bound,
            );
            let uploaded = GpuTensor::upload_indices(&gpu, want_i.view(), layout).unwrap();
            let dx = max_pool2d_backward(&dyt, &uploaded, shape, &p).unwrap();
            assert_matches(
                &format!("{what} backward, uploaded indices"),
                &dx.read().unwrap(),
                &want_dx,
                &bound,
            );
        }
    }
}

#[test]
fn tensorflow_indices_split_rows_but_never_channels() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    let tf = |p: Pool2dParams| {
        p.with_layout(Layout::Nhwc)
            .with_index_style(wgconv::IndexStyle::TensorFlow)
    };
    // Rows suffice: indices count (h * W + w) * C + c across the whole sample.
    let shape = [1, 20, 20, 3];
    let p = tf(Pool2dParams::new(3, 3).with_stride(2).with_padding(1));
    let x = data(shape, 60);
    let (values, indices) = max_pool2d_with_indices(&up(&gpu, &x, Layout::Nhwc), &p).unwrap();
    let (want_v, want_i) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
    assert_eq!(values.read().unwrap(), want_v);
    assert_eq!(indices.read_indices().unwrap(), want_i);
    let dy = data(p.geometry("t", shape).unwrap().output_shape(), 61);
    let dx = max_pool2d_backward(&up(&gpu, &dy, Layout::Nhwc), &indices, shape, &p).unwrap();
    let want_dx = cpu::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
    let bound = ErrorBound::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
    assert_matches(
        "TensorFlow indices backward",
        &dx.read().unwrap(),
        &want_dx,
        &bound,
    );
    // A band of one output row of all 64 channels is past the limit: channels would have to
    // split, which TensorFlow's indices do not allow.
    let shape = [1, 4, 4, 64];
    let x = data(shape, 62);
    let e = max_pool2d_with_indices(&up(&gpu, &x, Layout::Nhwc), &tf(Pool2dParams::new(2, 2)))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                op: "max_pool2d",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("1024"), "{e}");
}

/// The peak the call `run` measures beside what was in use before it, and `run`'s result.
fn measured_peak<T>(gpu: &Gpu, run: impl FnOnce() -> T) -> (T, u64) {
    let before = gpu.memory_in_use() - gpu.pool_stats().free_bytes;
    gpu.reset_peak_memory();
    let out = run();
    (out, gpu.pool_stats().peak_in_use_bytes - before)
}

/// conv2d gradient cases whose single sample is past the 1 KiB limit, as (input, weight) in
/// NCHW/OIHW terms and parameters: dx in bands of input rows (with the grad_output halo their
/// windows reach, under stride, dilation, asymmetric padding and flip, and rows no window
/// reaches), dw and db over output channels and bands of output rows, groups split whole and
/// within a group, a depthwise conv, and a weight (so dw) itself past the limit.
fn within_sample_grad_cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams)> {
    let p = Conv2dParams::default;
    vec![
        (
            [2, 3, 16, 16],
            [4, 3, 3, 3],
            p().with_padding(Padding::uniform(1)),
        ),
        (
            [1, 3, 17, 13],
            [5, 3, 3, 2],
            p().with_stride_hw(2, 1)
                .with_dilation_hw(2, 1)
                .with_padding(Padding::explicit(3, 1, 0, 2))
                .with_flip(true),
        ),
        (
            [1, 8, 9, 12],
            [12, 2, 3, 3],
            p().with_groups(4)
                .with_padding(Padding::uniform(2))
                .with_dilation(2),
        ),
        // 16x12x3x3 weights (6.75 KiB): dx splits input channels within the one group, dw
        // output channels, each tile reading a band of the input.
        (
            [1, 12, 5, 5],
            [16, 12, 3, 3],
            p().with_padding(Padding::uniform(1)),
        ),
        (
            [1, 6, 12, 12],
            [6, 1, 3, 3],
            p().with_groups(6).with_padding(Padding::Same),
        ),
        // Stride 3 over a kernel of 1 row: two rows in three get no gradient.
        ([1, 2, 20, 9], [3, 2, 1, 2], p().with_stride(3)),
    ]
}

#[test]
fn conv2d_gradients_split_one_sample_over_rows_and_channels() {
    for (variant, gpu) in limited_gpus() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            for (k, (xs, ws, p)) in within_sample_grad_cases().into_iter().enumerate() {
                let p = p.with_layout(layout);
                let what = format!("{variant} {layout:?} case {k}");
                let xshape = layout.activation_shape(xs);
                let g = p
                    .geometry("t", xshape, layout.weight_shape(ws), None)
                    .unwrap();
                assert!(
                    (xs[1..].iter().product::<usize>() * 4) as u64 > LIMIT,
                    "{what}: one sample must be past the limit"
                );
                let x = data(xshape, 70 + k as u64);
                let w = data(layout.weight_shape(ws), 80 + k as u64);
                let dy = data(g.output_shape(), 90 + k as u64);
                let want =
                    cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                        .unwrap();
                let (want_dx, want_dw, want_db) = (
                    want.input.unwrap(),
                    want.weight.unwrap(),
                    want.bias.unwrap(),
                );
                let (xt, wt, dyt) = (
                    up(&gpu, &x, layout),
                    up(&gpu, &w, layout),
                    up(&gpu, &dy, layout),
                );
                let (bx, bw, bb) = grad_bounds(&x, &w, &dy, &p);
                let estimate = gpu
                    .memory_required(&wgconv::gpu::OpCall::Conv2dBackward {
                        input: xshape,
                        weight: layout.weight_shape(ws),
                        params: p,
                        which: GradSelection::ALL,
                    })
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(estimate.pieces > 3, "{what}: {estimate:?}");
                let (got, peak) = measured_peak(&gpu, || {
                    conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL)
                });
                let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(peak, estimate.peak_bytes, "{what}: {estimate:?}");
                let dx = got.input.unwrap().read().unwrap();
                assert_matches(&format!("{what} dx"), &dx, &want_dx, &bx);
                let dw = got.weight.unwrap().read().unwrap();
                assert_matches(&format!("{what} dw"), &dw, &want_dw, &bw);
                let db = got.bias.unwrap().read_1d().unwrap();
                assert_matches(&format!("{what} db"), &db, &want_db, &bb);

                // The single-gradient entry points tile the same way.
                let dx = conv2d_backward_input(xshape, &wt, &dyt, &p)
                    .unwrap_or_else(|e| panic!("{what} conv2d_backward_input: {e}"));
                assert_matches(
                    &format!("{what} conv2d_backward_input"),
                    &dx.read().unwrap(),
                    &want_dx,
                    &bx,
                );
                let dw = conv2d_backward_weight(&xt, layout.weight_shape(ws), &dyt, &p)
                    .unwrap_or_else(|e| panic!("{what} conv2d_backward_weight: {e}"));
                assert_matches(
                    &format!("{what} conv2d_backward_weight"),
                    &dw.read().unwrap(),
                    &want_dw,
                    &bw,
                );
                let db = conv2d_backward_bias(&dyt, layout)
                    .unwrap_or_else(|e| panic!("{what} conv2d_backward_bias: {e}"))
                    .read_1d()
                    .unwrap();
                assert_matches(&format!("{what} conv2d_backward_bias"), &db, &want_db, &bb);
            }
        }
    }
}

/// conv_transpose2d cases whose single output sample is past the 1 KiB limit, as (input,
/// weight) in NCHW terms, parameters and whether there is a bias: bands of output rows with
/// stride, padding and output padding, groups, and a weight past the limit.
fn within_sample_transpose_cases() -> Vec<([usize; 4], [usize; 4], ConvTranspose2dParams, bool)> {
    let p = ConvTranspose2dParams::default;
    vec![
        (
            [1, 4, 6, 6],
            [4, 2, 3, 3],
            p().with_stride(2)
                .with_padding(Padding::uniform(1))
                .with_output_padding(1),
            true,
        ),
        (
            [2, 4, 5, 7],
            [4, 3, 2, 3],
            p().with_groups(2).with_dilation(2),
            true,
        ),
        ([1, 16, 4, 4], [16, 8, 3, 3], p().with_stride(2), false),
    ]
}

#[test]
fn conv_transpose2d_splits_one_sample_over_rows_and_channels() {
    for (variant, gpu) in limited_gpus() {
        for layout in [Layout::Nchw, Layout::Nhwc] {
            for (k, (xs, ws, p, has_bias)) in
                within_sample_transpose_cases().into_iter().enumerate()
            {
                let p = p.with_layout(layout);
                let what = format!("{variant} {layout:?} case {k}");
                let x = data(layout.activation_shape(xs), 100 + k as u64);
                let w = data(layout.weight_shape(ws), 110 + k as u64);
                let cout = ws[1] * p.groups;
                let b =
                    ndarray::Array1::from_vec((0..cout).map(|i| i as f32 * 0.25 - 1.0).collect());
                let bias = has_bias.then(|| GpuTensor::upload_1d(&gpu, b.view()).unwrap());
                let want =
                    cpu::conv_transpose2d(x.view(), w.view(), has_bias.then(|| b.view()), &p)
                        .unwrap();
                let [_, _, oh, ow] = layout.logical_activation(want.dim().into());
                assert!(
                    (cout * oh * ow * 4) as u64 > LIMIT,
                    "{what}: one output sample must be past the limit"
                );
                let estimate = gpu
                    .memory_required(&wgconv::gpu::OpCall::ConvTranspose2d {
                        input: x.dim().into(),
                        weight: w.dim().into(),
                        bias: has_bias,
                        params: p,
                    })
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert!(estimate.pieces > 1, "{what}: {estimate:?}");
                let (xt, wt) = (up(&gpu, &x, layout), up(&gpu, &w, layout));
                let (got, peak) =
                    measured_peak(&gpu, || conv_transpose2d(&xt, &wt, bias.as_ref(), &p));
                let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(peak, estimate.peak_bytes, "{what}: {estimate:?}");
                let bound = ErrorBound::conv_transpose2d(
                    x.view(),
                    w.view(),
                    has_bias.then(|| b.view()),
                    &p,
                )
                .unwrap();
                assert_matches(&what, &got.read().unwrap(), &want, &bound);
            }
        }
    }
}

#[test]
fn activation_backward_splits_one_sample_into_chunks_of_elements() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        // 663 elements a sample (2652 bytes): chunks of 256 elements cut through rows.
        let shape = layout.activation_shape([2, 3, 17, 13]);
        let (dy, y) = (data(shape, 120), data(shape, 121));
        for (a, saved) in [
            (Activation::Tanh, SavedTensor::Output),
            (
                Activation::LeakyRelu { slope: 0.2 },
                SavedTensor::PreActivation,
            ),
        ] {
            let what = format!("{layout:?} {a:?}");
            let want = cpu::activation_backward(dy.view(), y.view(), a, saved).unwrap();
            let estimate = gpu
                .memory_required(&wgconv::gpu::OpCall::ActivationBackward {
                    shape: shape.to_vec(),
                })
                .unwrap();
            assert!(estimate.pieces > 1, "{what}: {estimate:?}");
            let (dyt, yt) = (up(&gpu, &dy, layout), up(&gpu, &y, layout));
            let (got, peak) = measured_peak(&gpu, || activation_backward(&dyt, &yt, a, saved));
            let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(peak, estimate.peak_bytes, "{what}: {estimate:?}");
            let bound = ErrorBound::activation_backward(dy.view(), a, saved);
            assert_matches(&what, &got.read().unwrap(), &want, &bound);
        }
    }
}

#[test]
fn dx_splits_grad_output_channels_into_parts_and_what_cannot_split_says_why() {
    let Some((_, gpu)) = limited_gpus().into_iter().next() else {
        return;
    };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        // One row of grad_output across its 16 channels is 2560 bytes: each dx tile is summed
        // over parts of those channels; conv_transpose2d (the same dx plus a bias) likewise.
        let p = Conv2dParams::default()
            .with_padding(Padding::Same)
            .with_layout(layout);
        let xshape = layout.activation_shape([1, 2, 5, 40]);
        let wshape = layout.weight_shape([16, 2, 3, 3]);
        let (x, w) = (data(xshape, 130), data(wshape, 131));
        let dy = data(layout.activation_shape([1, 16, 5, 40]), 132);
        let (wt, dyt) = (up(&gpu, &w, layout), up(&gpu, &dy, layout));
        let want =
            cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
        let (bx, bw, _) = grad_bounds(&x, &w, &dy, &p);
        let what = format!("{layout:?} dx in parts");
        let estimate = gpu
            .memory_required(&wgconv::gpu::OpCall::Conv2dBackward {
                input: xshape,
                weight: wshape,
                params: p,
                which: GradSelection::INPUT,
            })
            .unwrap();
        let (dx, peak) = measured_peak(&gpu, || conv2d_backward_input(xshape, &wt, &dyt, &p));
        let dx = dx.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(peak, estimate.peak_bytes, "{what}: {estimate:?}");
        assert_matches(
            &what,
            &dx.read().unwrap(),
            want.input.as_ref().unwrap(),
            &bx,
        );
        let dw = conv2d_backward_weight(&up(&gpu, &x, layout), wshape, &dyt, &p).unwrap();
        assert_matches(
            "dw",
            &dw.read().unwrap(),
            want.weight.as_ref().unwrap(),
            &bw,
        );

        let tp = ConvTranspose2dParams::default()
            .with_padding(Padding::uniform(1))
            .with_layout(layout);
        let b = ndarray::Array1::from_vec(vec![0.5f32, -1.0]);
        let bt = GpuTensor::upload_1d(&gpu, b.view()).unwrap();
        let want = cpu::conv_transpose2d(dy.view(), w.view(), Some(b.view()), &tp).unwrap();
        let got = conv_transpose2d(&dyt, &wt, Some(&bt), &tp)
            .unwrap_or_else(|e| panic!("{layout:?} conv_transpose2d in parts: {e}"));
        let bound = ErrorBound::conv_transpose2d(dy.view(), w.view(), Some(b.view()), &tp).unwrap();
        assert_matches(
            "conv_transpose2d in parts",
            &got.read().unwrap(),
            &want,
            &bound,
        );
    }

    // One grad_output row of one channel is 1200 bytes: columns never split.
    let w = data([1, 1, 3, 1], 133);
    let dy = data([1, 1, 3, 300], 134);
    let p = Conv2dParams::default().with_padding(Padding::explicit(1, 1, 0, 0));
    let e = conv2d_backward_input(
        [1, 1, 3, 300],
        &up(&gpu, &w, Layout::Nchw),
        &up(&gpu, &dy, Layout::Nchw),
        &p,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::TooLarge {
                op: "conv2d_backward_input",
                ..
            }
        ),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("grad_output") && text.contains("1024"),
        "{text}"
    );
}

/// Random conv geometries (groups, stride, dilation, asymmetric padding, flip, both layouts),
/// each on a device whose binding limit is a fraction of one sample: every gradient and
/// conv_transpose2d (with a bias) must give the CPU reference's answer at exactly the estimated
/// peak, or a `TooLarge` naming the op; never another error. `WGCONV_SWEEP_CASES` sets the
/// number of cases.
#[test]
fn random_gradients_and_transposed_convs_split_within_a_sample() {
    for (variant, gpu) in limited_gpus() {
        random_splits(&variant, &gpu);
    }
}

fn random_splits(variant: &str, gpu: &Gpu) {
    let mut rng = common::Rng::new(7);
    let (mut split, mut refused) = (0, 0);
    for case in 0..common::cases_per_flavour(40) {
        let groups = rng.range(1, 3);
        let (cin, cout) = (groups * rng.range(1, 4), groups * rng.range(1, 4));
        let (h, w) = (rng.range(4, 14), rng.range(3, 9));
        let (kh, kw) = (rng.range(1, 3), rng.range(1, 3));
        let layout = if rng.chance(50) {
            Layout::Nchw
        } else {
            Layout::Nhwc
        };
        let p = Conv2dParams::default()
            .with_groups(groups)
            .with_stride_hw(rng.range(1, 3), rng.range(1, 2))
            .with_dilation_hw(rng.range(1, 2), rng.range(1, 2))
            .with_padding(Padding::explicit(
                rng.range(0, 3),
                rng.range(0, 3),
                rng.range(0, 2),
                rng.range(0, 2),
            ))
            .with_flip(rng.chance(30))
            .with_layout(layout);
        let batch = rng.range(1, 2);
        let xshape = layout.activation_shape([batch, cin, h, w]);
        let wshape = layout.weight_shape([cout, cin / groups, kh, kw]);
        let Ok(g) = p.geometry("t", xshape, wshape, None) else {
            continue;
        };
        let what = format!("{variant} case {case}: {g:?}");
        let sample = 4 * [cin * h * w, cout * g.h.output * g.w.output]
            .into_iter()
            .max()
            .unwrap();
        let limit = (sample / rng.range(2, 4)).max(64) as u64;
        gpu.limit_storage_binding(limit);
        let x = data(xshape, 1000 + case as u64);
        let wt = data(wshape, 2000 + case as u64);
        let dy = data(g.output_shape(), 3000 + case as u64);
        let want =
            cpu::conv2d_backward(x.view(), wt.view(), dy.view(), &p, GradSelection::ALL).unwrap();
        let (xg, wg, dyg) = (
            up(gpu, &x, layout),
            up(gpu, &wt, layout),
            up(gpu, &dy, layout),
        );
        let (bx, bw, bb) = grad_bounds(&x, &wt, &dy, &p);
        for which in [
            GradSelection::INPUT,
            GradSelection::WEIGHT,
            GradSelection::BIAS,
        ] {
            let call = wgconv::gpu::OpCall::Conv2dBackward {
                input: xshape,
                weight: wshape,
                params: p,
                which,
            };
            let estimate = gpu.memory_required(&call);
            let (got, peak) = measured_peak(gpu, || conv2d_backward(&xg, &wg, &dyg, &p, which));
            let what = format!("{what} {which:?} under a {limit}-byte limit");
            match (got, estimate) {
                (Ok(got), Ok(e)) => {
                    assert_eq!(peak, e.peak_bytes, "{what}: {e:?}");
                    split += usize::from(e.pieces > batch);
                    if let Some(dx) = got.input {
                        let want = want.input.as_ref().unwrap();
                        assert_matches(&what, &dx.read().unwrap(), want, &bx);
                    }
                    if let Some(dw) = got.weight {
                        let want = want.weight.as_ref().unwrap();
                        assert_matches(&what, &dw.read().unwrap(), want, &bw);
                    }
                    if let Some(db) = got.bias {
                        let want = want.bias.as_ref().unwrap();
                        assert_matches(&what, &db.read_1d().unwrap(), want, &bb);
                    }
                }
                (Err(e), Err(_)) => {
                    assert!(
                        matches!(
                            e,
                            Error::TooLarge {
                                op: "conv2d_backward",
                                ..
                            }
                        ),
                        "{what}: {e:?}"
                    );
                    eprintln!("refused: {e}");
                    refused += 1;
                }
                (got, estimate) => panic!(
                    "{what}: the call and its estimate disagree: {:?} against {estimate:?}",
                    got.map(|_| ())
                ),
            }
        }

        // The transposed conv of the same geometry: dy is its input, x its output.
        let tp = ConvTranspose2dParams {
            stride: [g.h.stride, g.w.stride],
            padding: Padding::explicit(
                g.h.pad_before,
                g.h.pad_after,
                g.w.pad_before,
                g.w.pad_after,
            ),
            output_padding: [0, 0],
            dilation: [g.h.dilation, g.w.dilation],
            groups,
            layout,
            flip: p.flip,
        };
        let Ok(tg) = tp.geometry("t", g.output_shape(), wshape, Some(cin)) else {
            continue;
        };
        let bias = ndarray::Array1::from_vec((0..cin).map(|i| i as f32 * 0.5 - 1.0).collect());
        let bg = GpuTensor::upload_1d(gpu, bias.view()).unwrap();
        let want = cpu::conv_transpose2d(dy.view(), wt.view(), Some(bias.view()), &tp).unwrap();
        let estimate = gpu.memory_required(&wgconv::gpu::OpCall::ConvTranspose2d {
            input: g.output_shape(),
            weight: wshape,
            bias: true,
            params: tp,
        });
        let (got, peak) = measured_peak(gpu, || conv_transpose2d(&dyg, &wg, Some(&bg), &tp));
        let what = format!("{what} conv_transpose2d {tg:?} under a {limit}-byte limit");
        match (got, estimate) {
            (Ok(got), Ok(e)) => {
                assert_eq!(peak, e.peak_bytes, "{what}: {e:?}");
                split += usize::from(e.pieces > batch);
                let bound =
                    ErrorBound::conv_transpose2d(dy.view(), wt.view(), Some(bias.view()), &tp)
                        .unwrap();
                assert_matches(&what, &got.read().unwrap(), &want, &bound);
            }
            (Err(e), Err(_)) => {
                assert!(
                    matches!(
                        e,
                        Error::TooLarge {
                            op: "conv_transpose2d",
                            ..
                        }
                    ),
                    "{what}: {e:?}"
                );
                refused += 1;
            }
            (got, estimate) => panic!(
                "{what}: the call and its estimate disagree: {:?} against {estimate:?}",
                got.map(|_| ())
            ),
        }
    }
    eprintln!("{variant}: {split} calls split within a sample, {refused} refused as TooLarge");
    assert!(
        split > 3 * refused,
        "{variant}: {split} split, {refused} refused"
    );
}
