//! Tensors past the buffer limit: with a tiny limit forced, tensors are stored in several buffers, read back exactly, and every op takes and returns them with the unsplit CPU reference's answer and an exact memory estimate.

mod common;

use ndarray::{Array1, Array4};
use wgconv::gpu::OpCall;
use wgconv::{
    activation_backward, compare, conv2d_backward, conv2d_backward_bias, conv2d_backward_input,
    conv2d_backward_weight, conv2d_with_activation, conv_transpose2d, cpu, max_pool2d,
    max_pool2d_backward, max_pool2d_with_indices, Activation, Conv2dParams, ConvTranspose2dParams,
    Error, ErrorBound, Gpu, GpuTensor, GradSelection, Layout, Padding, Pool2dParams, SavedTensor,
};

/// Bytes per buffer: 250 floats, so segment boundaries fall inside rows, planes and pixels.
const BUFFER: u64 = 1000;
/// Bytes per binding, below the buffer limit as it must be.
const BINDING: u64 = 512;

/// A device of its own with both limits lowered.
fn segmenting_gpu() -> Option<Gpu> {
    common::gpu()?;
    let gpu = Gpu::new().expect("a device");
    gpu.limit_buffer_size(BUFFER);
    gpu.limit_storage_binding(BINDING);
    Some(gpu)
}

fn data(shape: [usize; 4], seed: u64) -> Array4<f32> {
    common::Rng::new(seed).array4(shape)
}

fn up(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> GpuTensor {
    GpuTensor::upload_with_layout(gpu, a.view(), layout).unwrap()
}

fn assert_segmented(what: &str, t: &GpuTensor) {
    assert!(
        t.segment_count() > 1,
        "{what}: {} bytes must be segmented",
        t.byte_size()
    );
    assert_eq!(t.segment_bytes(), BUFFER, "{what}");
    assert_eq!(
        t.segment_count() as u64,
        t.byte_size().div_ceil(BUFFER),
        "{what}"
    );
}

/// `got` within `bound` of the reference `want`. Segmented gradients are split calls, whose
/// dw and db add their tiles' partial sums in an order of their own: their bounds come
/// `in_any_order`.
fn assert_matches<D: ndarray::Dimension>(
    what: &str,
    got: &ndarray::Array<f32, D>,
    want: &ndarray::Array<f32, D>,
    bound: &ErrorBound<D>,
) {
    let r = compare(got.view(), want.view(), bound);
    assert!(r.passed(), "{what}: {r}");
}

/// The peak the call `run` measures beside what was in use before it, and `run`'s result.
fn measured_peak<T>(gpu: &Gpu, run: impl FnOnce() -> T) -> (T, u64) {
    let before = gpu.memory_in_use() - gpu.pool_stats().free_bytes;
    gpu.reset_peak_memory();
    let out = run();
    (out, gpu.pool_stats().peak_in_use_bytes - before)
}

#[test]
fn limits_clamp_and_the_binding_never_exceeds_the_buffer() {
    let Some(gpu) = segmenting_gpu() else { return };
    assert_eq!(gpu.max_buffer_size(), BUFFER);
    assert_eq!(gpu.max_storage_binding(), BINDING);
    gpu.limit_storage_binding(BUFFER * 4);
    assert_eq!(gpu.max_storage_binding(), BUFFER);
    gpu.limit_buffer_size(256);
    assert_eq!(gpu.max_storage_binding(), 256);
    gpu.limit_buffer_size(u64::MAX);
    assert_eq!(gpu.max_buffer_size(), gpu.limits().max_buffer_size);
}

#[test]
fn segmented_tensors_round_trip_exactly() {
    let Some(gpu) = segmenting_gpu() else { return };
    // 3 * 5 * 7 * 11 floats = 4620 bytes: four full segments and a short one.
    let x = data([3, 5, 7, 11], 1);
    let t = up(&gpu, &x, Layout::Nchw);
    assert_segmented("4-D", &t);
    assert_eq!(t.segment_count(), 5);
    assert_eq!(t.segments().count(), 5);
    assert_eq!(t.read().unwrap(), x);
    assert_eq!(pollster::block_on(t.read_async()).unwrap(), x);
    assert_eq!(t.read_dyn().unwrap(), x.clone().into_dyn());
    // A strided view is uploaded in row-major order, segments and all.
    let swapped = x.view().permuted_axes([0, 1, 3, 2]);
    let ts = GpuTensor::upload(&gpu, swapped).unwrap();
    assert_eq!(ts.read().unwrap(), swapped);

    let v = Array1::from_iter((0..613).map(|i| i as f32 * 0.5 - 7.0));
    let tv = GpuTensor::upload_1d(&gpu, v.view()).unwrap();
    assert_segmented("1-D", &tv);
    assert_eq!(tv.read_1d().unwrap(), v);

    let idx = Array4::from_shape_fn([2, 3, 9, 10], |(n, c, h, w)| {
        (n * 7919 + c * 104_729 + h * 31 + w) as i64 + i64::from(u32::MAX) - 400_000
    });
    let ti = GpuTensor::upload_indices(&gpu, idx.view(), Layout::Nchw).unwrap();
    assert_segmented("indices", &ti);
    assert_eq!(ti.read_indices().unwrap(), idx);

    // A single buffer is all a caller binding it could use: refused, with the numbers.
    match t.buffer() {
        Err(Error::TooLarge { what, .. }) => {
            assert!(
                what.contains("4620 bytes") && what.contains("5 buffers"),
                "{what}"
            )
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    let small = GpuTensor::upload(&gpu, data([1, 1, 2, 2], 2).view()).unwrap();
    assert_eq!(small.segment_count(), 1);
    assert_eq!(small.segment_bytes(), 16);
    assert!(small.buffer().is_ok());
}

#[test]
fn conv2d_takes_and_returns_segmented_tensors() {
    let Some(gpu) = segmenting_gpu() else { return };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        // Input 2048 bytes (one sample past the binding), weight 1152, bias 1040, output 4096.
        let x = data(layout.activation_shape([2, 4, 8, 8]), 3);
        let w = data(layout.weight_shape([260, 4, 1, 1]), 4);
        let b = Array1::from_iter((0..260).map(|i| (i % 13) as f32 * 0.25 - 1.0));
        let p = Conv2dParams::default().with_layout(layout);
        let (xt, wt) = (up(&gpu, &x, layout), up(&gpu, &w, layout));
        let bt = GpuTensor::upload_1d(&gpu, b.view()).unwrap();
        for (name, t) in [("input", &xt), ("weight", &wt), ("bias", &bt)] {
            assert_segmented(&format!("{layout:?} {name}"), t);
        }
        let got = conv2d_with_activation(&xt, &wt, Some(&bt), &p, Activation::Relu).unwrap();
        assert_segmented(&format!("{layout:?} output"), &got);
        let want =
            cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, Activation::Relu)
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
            &format!("{layout:?} conv2d 1x1"),
            &got.read().unwrap(),
            &want,
            &bound,
        );

        // A 3x3 conv with padding and stride, its weight segmented too.
        let x = data(layout.activation_shape([3, 4, 9, 9]), 5);
        let w = data(layout.weight_shape([8, 4, 3, 3]), 6);
        let p = Conv2dParams::default()
            .with_padding(Padding::uniform(1))
            .with_layout(layout);
        let (xt, wt) = (up(&gpu, &x, layout), up(&gpu, &w, layout));
        assert_segmented(&format!("{layout:?} 3x3 weight"), &wt);
        let estimate = gpu
            .memory_required(&OpCall::Conv2d {
                input: layout.activation_shape([3, 4, 9, 9]),
                weight: layout.weight_shape([8, 4, 3, 3]),
                bias: false,
                params: p,
                activation: Activation::Tanh,
            })
            .unwrap();
        let (got, peak) = measured_peak(&gpu, || {
            conv2d_with_activation(&xt, &wt, None, &p, Activation::Tanh)
        });
        let got = got.unwrap();
        assert_eq!(peak, estimate.peak_bytes, "{layout:?}: {estimate:?}");
        assert!(estimate.pieces > 1 && estimate.output_bytes >= got.byte_size());
        assert_segmented(&format!("{layout:?} 3x3 output"), &got);
        let want =
            cpu::conv2d_with_activation(x.view(), w.view(), None, &p, Activation::Tanh).unwrap();
        let bound =
            ErrorBound::conv2d_with_activation(x.view(), w.view(), None, &p, Activation::Tanh)
                .unwrap();
        assert_matches(
            &format!("{layout:?} conv2d 3x3"),
            &got.read().unwrap(),
            &want,
            &bound,
        );
    }
}

#[test]
fn conv2d_gradients_take_and_return_segmented_tensors() {
    let Some(gpu) = segmenting_gpu() else { return };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let xs = layout.activation_shape([2, 4, 10, 10]);
        let ws = layout.weight_shape([8, 4, 3, 3]);
        let p = Conv2dParams::default()
            .with_stride(2)
            .with_padding(Padding::uniform(1))
            .with_layout(layout);
        let g = p.geometry("t", xs, ws, None).unwrap();
        let (x, w, dy) = (data(xs, 7), data(ws, 8), data(g.output_shape(), 9));
        let (xt, wt, dyt) = (
            up(&gpu, &x, layout),
            up(&gpu, &w, layout),
            up(&gpu, &dy, layout),
        );
        for (name, t) in [("input", &xt), ("weight", &wt), ("grad_output", &dyt)] {
            assert_segmented(&format!("{layout:?} {name}"), t);
        }
        let want =
            cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
        let estimate = gpu
            .memory_required(&OpCall::Conv2dBackward {
                input: xs,
                weight: ws,
                params: p,
                which: GradSelection::ALL,
            })
            .unwrap();
        let (got, peak) = measured_peak(&gpu, || {
            conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL)
        });
        let got = got.unwrap();
        assert_eq!(peak, estimate.peak_bytes, "{layout:?}: {estimate:?}");
        let dx = got.input.unwrap();
        let dw = got.weight.unwrap();
        assert_segmented(&format!("{layout:?} dx"), &dx);
        assert_segmented(&format!("{layout:?} dw"), &dw);
        let bounds =
            ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
        let bx = bounds.input.unwrap();
        let bw = bounds.weight.unwrap().in_any_order();
        let bb = bounds.bias.unwrap().in_any_order();
        let (want_dx, want_dw) = (want.input.unwrap(), want.weight.unwrap());
        assert_matches(
            &format!("{layout:?} dx"),
            &dx.read().unwrap(),
            &want_dx,
            &bx,
        );
        assert_matches(
            &format!("{layout:?} dw"),
            &dw.read().unwrap(),
            &want_dw,
            &bw,
        );
        let db = got.bias.unwrap().read_1d().unwrap();
        let want_db = want.bias.unwrap();
        assert_matches(&format!("{layout:?} db"), &db, &want_db, &bb);

        // The single-gradient entry points take the same segmented tensors.
        let dx = conv2d_backward_input(xs, &wt, &dyt, &p).unwrap();
        assert_segmented(&format!("{layout:?} conv2d_backward_input"), &dx);
        assert_matches(
            &format!("{layout:?} dx alone"),
            &dx.read().unwrap(),
            &want_dx,
            &bx,
        );
        let dw = conv2d_backward_weight(&xt, ws, &dyt, &p).unwrap();
        assert_matches(
            &format!("{layout:?} dw alone"),
            &dw.read().unwrap(),
            &want_dw,
            &bw,
        );
        let db = conv2d_backward_bias(&dyt, layout)
            .unwrap()
            .read_1d()
            .unwrap();
        assert_matches(
            &format!("{layout:?} conv2d_backward_bias"),
            &db,
            &want_db,
            &bb,
        );
    }
}

#[test]
fn conv_transpose2d_takes_and_returns_segmented_tensors() {
    let Some(gpu) = segmenting_gpu() else { return };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        // Input 1600 bytes, weight 1152 (OIHW of the conv: [in 8, out 4, 3, 3]), output 5184.
        let x = data(layout.activation_shape([2, 8, 5, 5]), 10);
        let w = data(layout.weight_shape([8, 4, 3, 3]), 11);
        let b = Array1::from_vec(vec![0.5f32, -1.0, 0.25, 2.0]);
        let p = ConvTranspose2dParams::default()
            .with_stride(2)
            .with_padding(Padding::uniform(1))
            .with_output_padding(1)
            .with_layout(layout);
        let (xt, wt) = (up(&gpu, &x, layout), up(&gpu, &w, layout));
        assert_segmented(&format!("{layout:?} input"), &xt);
        assert_segmented(&format!("{layout:?} weight"), &wt);
        let bt = GpuTensor::upload_1d(&gpu, b.view()).unwrap();
        let estimate = gpu
            .memory_required(&OpCall::ConvTranspose2d {
                input: layout.activation_shape([2, 8, 5, 5]),
                weight: layout.weight_shape([8, 4, 3, 3]),
                bias: true,
                params: p,
            })
            .unwrap();
        let (got, peak) = measured_peak(&gpu, || conv_transpose2d(&xt, &wt, Some(&bt), &p));
        let got = got.unwrap();
        assert_eq!(peak, estimate.peak_bytes, "{layout:?}: {estimate:?}");
        assert_segmented(&format!("{layout:?} output"), &got);
        let want = cpu::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        let bound = ErrorBound::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        assert_matches(
            &format!("{layout:?} conv_transpose2d"),
            &got.read().unwrap(),
            &want,
            &bound,
        );
    }
}

#[test]
fn pooling_takes_and_returns_segmented_tensors() {
    let Some(gpu) = segmenting_gpu() else { return };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let shape = layout.activation_shape([2, 3, 17, 13]);
        let x = data(shape, 12);
        let p = Pool2dParams::new(3, 3)
            .with_stride(2)
            .with_padding(1)
            .with_layout(layout);
        let xt = up(&gpu, &x, layout);
        assert_segmented(&format!("{layout:?} input"), &xt);
        let (want_v, want_i) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();

        let values = max_pool2d(&xt, &p).unwrap();
        assert_segmented(&format!("{layout:?} values"), &values);
        assert_eq!(values.read().unwrap(), want_v, "{layout:?} max_pool2d");

        let estimate = gpu
            .memory_required(&OpCall::MaxPool2d {
                input: shape,
                params: p,
                with_indices: true,
            })
            .unwrap();
        let (got, peak) = measured_peak(&gpu, || max_pool2d_with_indices(&xt, &p));
        let (values, indices) = got.unwrap();
        assert_eq!(peak, estimate.peak_bytes, "{layout:?}: {estimate:?}");
        assert_segmented(&format!("{layout:?} indices"), &indices);
        assert_eq!(values.read().unwrap(), want_v, "{layout:?} values");
        assert_eq!(
            indices.read_indices().unwrap(),
            want_i,
            "{layout:?} indices"
        );

        let dy = data(want_v.dim().into(), 13);
        let dyt = up(&gpu, &dy, layout);
        let want_dx = cpu::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
        let bound = ErrorBound::max_pool2d_backward(dy.view(), want_i.view(), shape, &p).unwrap();
        let estimate = gpu
            .memory_required(&OpCall::MaxPool2dBackward {
                input: shape,
                params: p,
            })
            .unwrap();
        let (dx, peak) = measured_peak(&gpu, || max_pool2d_backward(&dyt, &indices, shape, &p));
        let dx = dx.unwrap();
        assert_eq!(peak, estimate.peak_bytes, "{layout:?}: {estimate:?}");
        assert_segmented(&format!("{layout:?} dx"), &dx);
        assert_matches(
            &format!("{layout:?} backward"),
            &dx.read().unwrap(),
            &want_dx,
            &bound,
        );
        let uploaded = GpuTensor::upload_indices(&gpu, want_i.view(), layout).unwrap();
        assert_segmented(&format!("{layout:?} uploaded indices"), &uploaded);
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
fn activation_backward_takes_and_returns_segmented_tensors() {
    let Some(gpu) = segmenting_gpu() else { return };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let shape = layout.activation_shape([3, 5, 6, 7]);
        let (dy, z) = (data(shape, 14), data(shape, 15));
        let (dyt, zt) = (up(&gpu, &dy, layout), up(&gpu, &z, layout));
        assert_segmented(&format!("{layout:?} grad_output"), &dyt);
        let a = Activation::Sigmoid;
        let saved = SavedTensor::PreActivation;
        let estimate = gpu
            .memory_required(&OpCall::ActivationBackward {
                shape: shape.to_vec(),
            })
            .unwrap();
        let (got, peak) = measured_peak(&gpu, || activation_backward(&dyt, &zt, a, saved));
        let got = got.unwrap();
        assert_eq!(peak, estimate.peak_bytes, "{layout:?}: {estimate:?}");
        assert_segmented(&format!("{layout:?} grad_input"), &got);
        let want = cpu::activation_backward(dy.view(), z.view(), a, saved).unwrap();
        let bound = ErrorBound::activation_backward(dy.view(), a, saved);
        assert_matches(
            &format!("{layout:?} activation_backward"),
            &got.read().unwrap(),
            &want,
            &bound,
        );
    }
}

#[test]
fn a_kernel_that_binds_a_whole_tensor_refuses_a_segmented_one() {
    let Some(gpu) = segmenting_gpu() else { return };
    let t = up(&gpu, &data([2, 2, 16, 16], 16), Layout::Nchw);
    assert_segmented("src", &t);
    match wgconv::gpu::copy_through_shader(&t) {
        Err(Error::TooLarge { op, what }) => {
            assert_eq!(op, "copy_through_shader");
            assert!(what.contains("src") && what.contains("4096"), "{what}");
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Made under the low limit, the tensor keeps its segments after the limits are raised, so
    // an op that no longer splits it would bind a segment as the whole: it says why instead.
    let y = up(&gpu, &data([2, 2, 16, 16], 17), Layout::Nchw);
    gpu.limit_buffer_size(1 << 20);
    gpu.limit_storage_binding(1 << 20);
    let r = activation_backward(&t, &y, Activation::Relu, SavedTensor::Output);
    match r {
        Err(Error::TooLarge { op, what }) => {
            assert_eq!(op, "activation_backward");
            assert!(
                what.contains("grad_output") && what.contains("4096 bytes stored in 5 buffers"),
                "{what}"
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}
