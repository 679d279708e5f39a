//! The memory query and the budget: `Gpu::memory_required` predicts the peak device memory of every op exactly, split or not, a budget of that figure lets the call through whole, a tighter one makes it split (still the CPU reference's answer), and one too tight for any split is `OutOfMemory`.

mod common;

use ndarray::{Array1, Array4, ArrayD, IxDyn};
use wgconv::gpu::conv2d::{self as planner, ConvPass};
use wgconv::gpu::{MemoryEstimate, OpCall};
use wgconv::{
    activation_backward, compare, conv2d_backward, conv2d_with_activation, conv_transpose2d, cpu,
    max_pool2d_backward, max_pool2d_with_indices, Activation, Conv2dParams, ConvTranspose2dParams,
    Error, ErrorBound, Gpu, GpuTensor, GradSelection, Layout, Padding, Pool2dParams, SavedTensor,
    Tolerance,
};

fn data(shape: [usize; 4], seed: u64) -> Array4<f32> {
    common::Rng::new(seed).array4(shape)
}

fn up(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> GpuTensor {
    GpuTensor::upload_with_layout(gpu, a.view(), layout).unwrap()
}

/// The bounds of the three gradients as dynamic-dimensional arrays, dw and db in any order.
fn grad_bounds(
    x: &Array4<f32>,
    w: &Array4<f32>,
    dy: &Array4<f32>,
    p: &Conv2dParams,
) -> [ErrorBound<IxDyn>; 3] {
    let b =
        ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), p, GradSelection::ALL).unwrap();
    [
        b.input.unwrap().into_dyn(),
        b.weight.unwrap().in_any_order().into_dyn(),
        b.bias.unwrap().in_any_order().into_dyn(),
    ]
}

/// An op call ready to run on tensors already uploaded, with the reference's answers.
struct Case {
    name: String,
    call: OpCall,
    /// Runs the op; its outputs, unread (reading allocates a staging buffer).
    run: Box<dyn Fn() -> wgconv::Result<Vec<GpuTensor>>>,
    /// Per output: the reference (indices as f32) and its error bound, `None` for an exact
    /// result. These calls split, so the gradients' dw and db bounds are `in_any_order`.
    want: Vec<(ArrayD<f32>, Option<ErrorBound<IxDyn>>)>,
}

/// Every op on a small batch, in `layout`, with its tensors uploaded to `gpu`.
fn cases(gpu: &Gpu, layout: Layout) -> Vec<Case> {
    let mut cases = Vec::new();
    let dynamic = |a: Array4<f32>| a.into_dyn();

    let (x, w) = (
        data(layout.activation_shape([6, 3, 9, 9]), 1),
        data(layout.weight_shape([8, 3, 3, 3]), 2),
    );
    let b = Array1::from_vec((0..8).map(|i| i as f32 * 0.25 - 1.0).collect());
    let p = Conv2dParams::default()
        .with_padding(Padding::uniform(1))
        .with_layout(layout);
    let want =
        cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, Activation::Relu)
            .unwrap();
    let fwd_bound = ErrorBound::conv2d_with_activation(
        x.view(),
        w.view(),
        Some(b.view()),
        &p,
        Activation::Relu,
    )
    .unwrap();
    let (xt, wt, bt) = (
        up(gpu, &x, layout),
        up(gpu, &w, layout),
        GpuTensor::upload_1d(gpu, b.view()).unwrap(),
    );
    cases.push(Case {
        name: format!("{layout:?} conv2d"),
        call: OpCall::Conv2d {
            input: x.dim().into(),
            weight: w.dim().into(),
            bias: true,
            params: p,
            activation: Activation::Relu,
        },
        run: Box::new(move || {
            Ok(vec![conv2d_with_activation(
                &xt,
                &wt,
                Some(&bt),
                &p,
                Activation::Relu,
            )?])
        }),
        want: vec![(dynamic(want), Some(fwd_bound.into_dyn()))],
    });

    let p = Conv2dParams::default()
        .with_stride(2)
        .with_padding(Padding::uniform(1))
        .with_layout(layout);
    let dy = data(layout.activation_shape([6, 8, 5, 5]), 3);
    let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
    let bounds = grad_bounds(&x, &w, &dy, &p);
    let (xt, wt, dyt) = (
        up(gpu, &x, layout),
        up(gpu, &w, layout),
        up(gpu, &dy, layout),
    );
    cases.push(Case {
        name: format!("{layout:?} conv2d_backward"),
        call: OpCall::Conv2dBackward {
            input: x.dim().into(),
            weight: w.dim().into(),
            params: p,
            which: GradSelection::ALL,
        },
        run: Box::new(move || {
            let g = conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL)?;
            Ok(vec![g.input.unwrap(), g.weight.unwrap(), g.bias.unwrap()])
        }),
        want: vec![
            (dynamic(want.input.unwrap()), Some(bounds[0].clone())),
            (dynamic(want.weight.unwrap()), Some(bounds[1].clone())),
            (want.bias.unwrap().into_dyn(), Some(bounds[2].clone())),
        ],
    });

    // One sample whose tensors pass 4 KiB (and 512 bytes): the gradients can only split
    // within it, by rows and channels, whether for the binding limit or the budget.
    let p1 = Conv2dParams::default()
        .with_padding(Padding::uniform(1))
        .with_layout(layout);
    let (x1, w1, dy1) = (
        data(layout.activation_shape([1, 4, 40, 7]), 8),
        data(layout.weight_shape([6, 4, 3, 3]), 9),
        data(layout.activation_shape([1, 6, 40, 7]), 10),
    );
    let want =
        cpu::conv2d_backward(x1.view(), w1.view(), dy1.view(), &p1, GradSelection::ALL).unwrap();
    let bounds = grad_bounds(&x1, &w1, &dy1, &p1);
    let (x1t, w1t, dy1t) = (
        up(gpu, &x1, layout),
        up(gpu, &w1, layout),
        up(gpu, &dy1, layout),
    );
    cases.push(Case {
        name: format!("{layout:?} conv2d_backward of one sample"),
        call: OpCall::Conv2dBackward {
            input: x1.dim().into(),
            weight: w1.dim().into(),
            params: p1,
            which: GradSelection::ALL,
        },
        run: Box::new(move || {
            let g = conv2d_backward(&x1t, &w1t, &dy1t, &p1, GradSelection::ALL)?;
            Ok(vec![g.input.unwrap(), g.weight.unwrap(), g.bias.unwrap()])
        }),
        want: vec![
            (dynamic(want.input.unwrap()), Some(bounds[0].clone())),
            (dynamic(want.weight.unwrap()), Some(bounds[1].clone())),
            (want.bias.unwrap().into_dyn(), Some(bounds[2].clone())),
        ],
    });

    let tp = ConvTranspose2dParams::default().with_layout(layout);
    let tw = data(layout.weight_shape([3, 4, 3, 3]), 4);
    // conv_transpose2d's weight is [C_in, C_out, kh, kw] in NCHW terms.
    let want = cpu::conv_transpose2d(x.view(), tw.view(), None, &tp).unwrap();
    let transpose_bound = ErrorBound::conv_transpose2d(x.view(), tw.view(), None, &tp).unwrap();
    let (xt, twt) = (up(gpu, &x, layout), up(gpu, &tw, layout));
    cases.push(Case {
        name: format!("{layout:?} conv_transpose2d"),
        call: OpCall::ConvTranspose2d {
            input: x.dim().into(),
            weight: tw.dim().into(),
            bias: false,
            params: tp,
        },
        run: Box::new(move || Ok(vec![conv_transpose2d(&xt, &twt, None, &tp)?])),
        want: vec![(dynamic(want), Some(transpose_bound.into_dyn()))],
    });

    let pp = Pool2dParams::new(3, 3)
        .with_stride(2)
        .with_padding(1)
        .with_layout(layout);
    let (want_v, want_i) = cpu::max_pool2d_with_indices(x.view(), &pp).unwrap();
    let xt = up(gpu, &x, layout);
    cases.push(Case {
        name: format!("{layout:?} max_pool2d_with_indices"),
        call: OpCall::MaxPool2d {
            input: x.dim().into(),
            params: pp,
            with_indices: true,
        },
        run: Box::new(move || {
            let (v, i) = max_pool2d_with_indices(&xt, &pp)?;
            Ok(vec![v, i])
        }),
        want: vec![
            (dynamic(want_v), None),
            (dynamic(want_i.mapv(|i| i as f32)), None),
        ],
    });

    let input_shape: [usize; 4] = x.dim().into();
    let pdy = data(pp.geometry("t", input_shape).unwrap().output_shape(), 5);
    let want = cpu::max_pool2d_backward(pdy.view(), want_i.view(), input_shape, &pp).unwrap();
    let pool_bound =
        ErrorBound::max_pool2d_backward(pdy.view(), want_i.view(), input_shape, &pp).unwrap();
    let (pdyt, it) = (
        up(gpu, &pdy, layout),
        GpuTensor::upload_indices(gpu, want_i.view(), layout).unwrap(),
    );
    cases.push(Case {
        name: format!("{layout:?} max_pool2d_backward"),
        call: OpCall::MaxPool2dBackward {
            input: input_shape,
            params: pp,
        },
        run: Box::new(move || Ok(vec![max_pool2d_backward(&pdyt, &it, input_shape, &pp)?])),
        want: vec![(dynamic(want), Some(pool_bound.into_dyn()))],
    });

    let (ady, z) = (data([5, 3, 9, 9], 6), data([5, 3, 9, 9], 7));
    let a = Activation::Tanh;
    let want =
        cpu::activation_backward(ady.view(), z.view(), a, SavedTensor::PreActivation).unwrap();
    let activation_bound =
        ErrorBound::activation_backward(ady.view(), a, SavedTensor::PreActivation).into_dyn();
    let (adyt, zt) = (up(gpu, &ady, layout), up(gpu, &z, layout));
    cases.push(Case {
        name: format!("{layout:?} activation_backward"),
        call: OpCall::ActivationBackward {
            shape: ady.shape().to_vec(),
        },
        run: Box::new(move || {
            Ok(vec![activation_backward(
                &adyt,
                &zt,
                a,
                SavedTensor::PreActivation,
            )?])
        }),
        want: vec![(dynamic(want), Some(activation_bound))],
    });
    cases
}

/// Runs a case; returns its outputs and the most bytes in use at once beyond what was in use
/// before (the inputs).
fn measured(gpu: &Gpu, case: &Case) -> wgconv::Result<(Vec<GpuTensor>, u64)> {
    let before = gpu.memory_in_use() - gpu.pool_stats().free_bytes;
    gpu.reset_peak_memory();
    let outputs = (case.run)()?;
    Ok((outputs, gpu.pool_stats().peak_in_use_bytes - before))
}

fn check_outputs(what: &str, outputs: &[GpuTensor], case: &Case) {
    for (k, (t, (want, bound))) in outputs.iter().zip(&case.want).enumerate() {
        let got = match t.contents() {
            wgconv::gpu::Contents::Indices(_) => {
                t.read_indices().unwrap().mapv(|i| i as f32).into_dyn()
            }
            wgconv::gpu::Contents::Values => t.read_dyn().unwrap(),
        };
        let r = match bound {
            Some(bound) => compare(got.view(), want.view(), bound),
            None => compare(got.view(), want.view(), Tolerance::exact()),
        };
        assert!(r.passed(), "{what} output {k}: {r}");
    }
}

/// Whether `call` is a conv2d forward whose planned variant packs its operands into scratch.
fn shrinking_scratch(gpu: &Gpu, call: &OpCall) -> bool {
    let OpCall::Conv2d {
        input,
        weight,
        params,
        ..
    } = call
    else {
        return false;
    };
    let g = params.geometry("t", *input, *weight, None).unwrap();
    planner::plan(gpu, ConvPass::Forward, &g)
        .variant
        .packed_tiling()
        .is_some()
}

fn fresh_gpu() -> Option<Gpu> {
    common::gpu()?;
    Some(Gpu::new().expect("a device"))
}

fn estimate(gpu: &Gpu, case: &Case) -> MemoryEstimate {
    gpu.memory_required(&case.call)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

#[test]
fn the_estimate_is_the_measured_peak_of_every_op() {
    let Some(gpu) = fresh_gpu() else { return };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for case in cases(&gpu, layout) {
            let e = estimate(&gpu, &case);
            assert_eq!(e.pieces, 1, "{}: {e:?}", case.name);
            let (outputs, peak) = measured(&gpu, &case).unwrap();
            assert_eq!(peak, e.peak_bytes, "{}: {e:?}", case.name);
            let out: u64 = outputs
                .iter()
                .map(|t| t.byte_size().div_ceil(256) * 256)
                .sum();
            assert_eq!(out, e.output_bytes, "{}", case.name);
            check_outputs(&case.name, &outputs, &case);
        }
    }
}

#[test]
fn a_split_call_is_estimated_exactly_too() {
    let Some(gpu) = fresh_gpu() else { return };
    gpu.limit_storage_binding(4096);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for case in cases(&gpu, layout) {
            let e = estimate(&gpu, &case);
            assert!(e.pieces > 1, "{}: {e:?}", case.name);
            let (outputs, peak) = measured(&gpu, &case).unwrap();
            assert_eq!(peak, e.peak_bytes, "{}: {e:?}", case.name);
            check_outputs(&case.name, &outputs, &case);
        }
    }
}

#[test]
fn tiles_within_a_sample_are_estimated_exactly() {
    let Some(gpu) = fresh_gpu() else { return };
    // One output sample of the conv2d case (2592 bytes) is past 1 KiB: rows and channels split.
    gpu.limit_storage_binding(1024);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for case in cases(&gpu, layout) {
            if !case.name.ends_with(" conv2d") {
                continue;
            }
            let e = estimate(&gpu, &case);
            assert!(e.pieces > 6, "{}: {e:?}", case.name);
            let (outputs, peak) = measured(&gpu, &case).unwrap();
            assert_eq!(peak, e.peak_bytes, "{}: {e:?}", case.name);
            check_outputs(&case.name, &outputs, &case);
        }
    }
}

#[test]
fn every_op_split_within_a_sample_is_estimated_exactly() {
    let Some(gpu) = fresh_gpu() else { return };
    // One sample of every case's largest tensor is past 512 bytes (the conv2d_backward
    // input: 972 bytes, its weight 864), so every op tiles within samples: row bands, channel
    // ranges, partial sums of the weight and bias gradients, chunks of elements.
    gpu.limit_storage_binding(512);
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for case in cases(&gpu, layout) {
            let e = estimate(&gpu, &case);
            let batch = if case.name.contains("one sample") {
                1
            } else {
                6
            };
            assert!(e.pieces > batch, "{}: {e:?}", case.name);
            let (outputs, peak) = measured(&gpu, &case).unwrap();
            assert_eq!(peak, e.peak_bytes, "{}: {e:?}", case.name);
            check_outputs(&case.name, &outputs, &case);
        }
    }
}

#[test]
fn a_budget_of_the_estimate_runs_whole_and_a_tighter_one_splits() {
    let Some(gpu) = fresh_gpu() else { return };
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for case in cases(&gpu, layout) {
            let name = &case.name;
            gpu.set_memory_budget(None);
            gpu.clear_buffer_pool();
            let whole = estimate(&gpu, &case);
            let in_use = gpu.memory_in_use();
            // Exactly the estimate beside the inputs: the call runs unsplit.
            gpu.set_memory_budget(Some(in_use + whole.peak_bytes));
            assert_eq!(estimate(&gpu, &case), whole, "{name}");
            let (outputs, peak) = measured(&gpu, &case).unwrap();
            assert_eq!(peak, whole.peak_bytes, "{name}");
            // Reading back needs a staging buffer, which the budget does not leave room for.
            gpu.set_memory_budget(None);
            check_outputs(name, &outputs, &case);
            drop(outputs);
            // Less: the estimate and the call agree, splitting within the budget or failing
            // with OutOfMemory before anything is dispatched.
            let room = whole.peak_bytes - whole.output_bytes;
            let mut splits = 0;
            for extra in [room - 1, room * 3 / 4, room / 2] {
                gpu.clear_buffer_pool();
                let budget = whole.output_bytes + extra;
                gpu.set_memory_budget(Some(in_use + budget));
                let what = format!("{name} with {budget} bytes of budget beside its inputs");
                match gpu.memory_required(&case.call) {
                    Ok(split) => {
                        assert!(
                            split.pieces > 1 && split.peak_bytes <= budget,
                            "{what}: {split:?} against {whole:?}"
                        );
                        let (outputs, peak) = measured(&gpu, &case)
                            .unwrap_or_else(|e| panic!("{what}: {e} against {split:?}"));
                        assert_eq!(peak, split.peak_bytes, "{what}");
                        gpu.set_memory_budget(None);
                        check_outputs(&what, &outputs, &case);
                        splits += 1;
                    }
                    Err(Error::OutOfMemory { .. }) => {
                        let e = measured(&gpu, &case).map(|_| ()).unwrap_err();
                        assert!(matches!(e, Error::OutOfMemory { .. }), "{what}: {e:?}");
                    }
                    Err(e) => panic!("{what}: {e:?}"),
                }
            }
            // Splits pay for copies of their chunks, so only calls with temporaries that shrink
            // with the chunk can always trade them for a split: the gradients' partial sums,
            // and the forward's packed scratch where the planner picks a packed variant here
            // (the direct kernels it picks elsewhere need none).
            if name.contains("conv2d_backward") || shrinking_scratch(&gpu, &case.call) {
                assert!(
                    splits > 0,
                    "{name}: no budget below the whole call's split it"
                );
            }
            // Too little for even one sample beside the outputs: OutOfMemory, before anything
            // is dispatched, and the estimate says so too.
            gpu.clear_buffer_pool();
            gpu.set_memory_budget(Some(in_use + whole.output_bytes));
            let e = gpu.memory_required(&case.call).unwrap_err();
            assert!(matches!(e, Error::OutOfMemory { .. }), "{name}: {e:?}");
            let e = measured(&gpu, &case).map(|_| ()).unwrap_err();
            assert!(matches!(e, Error::OutOfMemory { .. }), "{name}: {e:?}");
            assert!(e.to_string().contains("budget"), "{name}: {e}");
            gpu.set_memory_budget(None);
        }
    }
    gpu.set_memory_budget(None);
}

#[test]
fn the_query_validates_like_the_op() {
    let Some(gpu) = fresh_gpu() else { return };
    let e = gpu
        .memory_required(&OpCall::Conv2d {
            input: [1, 3, 8, 8],
            weight: [4, 2, 3, 3],
            bias: false,
            params: Conv2dParams::default(),
            activation: Activation::None,
        })
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { op: "conv2d", .. }),
        "{e:?}"
    );
    let e = gpu
        .memory_required(&OpCall::MaxPool2d {
            input: [1, 1, 2, 2],
            params: Pool2dParams::new(3, 3),
            with_indices: false,
        })
        .unwrap_err();
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
}
