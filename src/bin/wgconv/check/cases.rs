//! `wgconv check`'s cases: drawing one from the seed, its CPU reference and bound, and running it on an adapter.

use super::*;

/// What one case runs, with its inputs.
pub(super) enum Work {
    Pool {
        x: Array4<f32>,
        layout: Layout,
        params: Pool2dParams,
    },
    PoolBackward {
        x: Array4<f32>,
        dy: Array4<f32>,
        layout: Layout,
        params: Pool2dParams,
        shape: [usize; 4],
    },
    Activation {
        dy: Array4<f32>,
        saved: Array4<f32>,
        activation: Activation,
        kind: SavedTensor,
    },
    Conv2d {
        x: Array4<f32>,
        w: Array4<f32>,
        b: ndarray::Array1<f32>,
        params: Conv2dParams,
        activation: Activation,
    },
    Transpose {
        input: Array4<f32>,
        w: Array4<f32>,
        params: ConvTranspose2dParams,
    },
    Backward {
        x: Array4<f32>,
        w: Array4<f32>,
        dy: Array4<f32>,
        params: Conv2dParams,
        which: GradSelection,
    },
}

/// One random case: what to run, the CPU's answer and how close a result must come.
pub(super) struct Case {
    pub(super) work: Work,
    pub(super) reference: Output,
    pub(super) judge: Judge,
    pub(super) describe: String,
}

pub(super) fn tensor(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> wgconv::Result<GpuTensor> {
    GpuTensor::upload_with_layout(gpu, a.view(), layout)
}

/// Draws case `id` of `op` from `rng` and computes its CPU reference; `None` for a case the op
/// has no geometry for. Draws in the order the sweep always has, so seeds keep their cases.
pub(super) fn draw_case(op: CheckOp, rng: &mut Rng, id: &str) -> wgconv::Result<Option<Case>> {
    let layout = if rng.chance(50) {
        Layout::Nhwc
    } else {
        Layout::Nchw
    };
    match op {
        CheckOp::MaxPool2d | CheckOp::MaxPool2dBackward => {
            let (shape, p) = random_pool_case(rng);
            let params = p.with_layout(layout);
            let shape = layout.activation_shape(shape);
            let x = rng.array4(shape);
            let (values, indices) = cpu::max_pool2d_with_indices(x.view(), &params)?;
            let describe = format!("{id} input {shape:?} {params:?}");
            let output_shape: [usize; 4] = values.dim().into();
            if op == CheckOp::MaxPool2d {
                return Ok(Some(Case {
                    work: Work::Pool { x, layout, params },
                    reference: Output {
                        values: values.into_dyn(),
                        indices: Some(indices.into_dyn()),
                    },
                    judge: Judge::Exact(Some(output_shape)),
                    describe,
                }));
            }
            let dy = rng.array4(values.dim().into());
            let want = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &params)?;
            let bound = ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, &params)?;
            Ok(Some(Case {
                work: Work::PoolBackward {
                    x,
                    dy,
                    layout,
                    params,
                    shape,
                },
                reference: Output::values(want),
                judge: Judge::Bound(bound.into_dyn()),
                describe,
            }))
        }
        CheckOp::ActivationBackward => {
            let activation = [
                Activation::Relu,
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::LeakyRelu { slope: 0.2 },
            ][rng.range(0, 3)];
            let kind = if rng.chance(50) {
                SavedTensor::Output
            } else {
                SavedTensor::PreActivation
            };
            let shape = [
                rng.range(1, 3),
                rng.range(1, 8),
                rng.range(1, 12),
                rng.range(1, 12),
            ];
            let z = rng.array4(shape).mapv(|v| v * 4.0);
            let saved = if kind == SavedTensor::Output {
                z.mapv(|v| activation.apply(f64::from(v)) as f32)
            } else {
                z
            };
            let dy = rng.array4(shape);
            let want = cpu::activation_backward(dy.view(), saved.view(), activation, kind)?;
            let bound = ErrorBound::activation_backward(dy.view(), activation, kind).into_dyn();
            Ok(Some(Case {
                describe: format!("{id} {activation:?} {kind:?} {shape:?}"),
                work: Work::Activation {
                    dy,
                    saved,
                    activation,
                    kind,
                },
                reference: Output::values(want),
                judge: Judge::Bound(bound),
            }))
        }
        _ => draw_conv_case(op, rng, id, layout),
    }
}

/// [`draw_case`] for the convolution ops.
pub(super) fn draw_conv_case(
    op: CheckOp,
    rng: &mut Rng,
    id: &str,
    layout: Layout,
) -> wgconv::Result<Option<Case>> {
    let flavour = Flavour::ALL[rng.range(0, Flavour::ALL.len() - 1)];
    let case = random_conv_case(rng, flavour);
    let p = case.params.with_layout(layout).with_flip(rng.chance(20));
    let g = p.geometry(
        "check",
        layout.activation_shape(case.input),
        layout.weight_shape(case.weight),
        None,
    )?;
    let x = rng.array4(g.input_shape());
    let w = rng.array4(g.weight_shape());
    let describe = format!(
        "{id} input {:?} weight {:?} {p:?}",
        g.input_shape(),
        g.weight_shape()
    );
    match op {
        CheckOp::Conv2d => {
            let b = rng.array1(g.out_channels);
            let activation =
                [Activation::None, Activation::Relu, Activation::Tanh][rng.range(0, 2)];
            let want =
                cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, activation)?;
            let bound = ErrorBound::conv2d_with_activation(
                x.view(),
                w.view(),
                Some(b.view()),
                &p,
                activation,
            )?;
            Ok(Some(Case {
                work: Work::Conv2d {
                    x,
                    w,
                    b,
                    params: p,
                    activation,
                },
                reference: Output::values(want),
                judge: Judge::Bound(bound.into_dyn()),
                describe,
            }))
        }
        CheckOp::ConvTranspose2d => {
            // The conv's geometry read backwards: its output is this op's input.
            let tp = transposed_params(&p);
            let input = rng.array4(g.output_shape());
            // Transposed weights are [C_in, C_out/g, kh, kw]: the conv's OIHW weight read as
            // (conv out = transposed in, conv in/g = transposed out/g).
            let Ok(_) = tp.geometry("check", g.output_shape(), g.weight_shape(), None) else {
                return Ok(None);
            };
            let want = cpu::conv_transpose2d(input.view(), w.view(), None, &tp)?;
            let bound = ErrorBound::conv_transpose2d(input.view(), w.view(), None, &tp)?;
            Ok(Some(Case {
                describe: format!(
                    "{id} input {:?} weight {:?} {tp:?}",
                    g.output_shape(),
                    g.weight_shape()
                ),
                work: Work::Transpose {
                    input,
                    w,
                    params: tp,
                },
                reference: Output::values(want),
                judge: Judge::Bound(bound.into_dyn()),
            }))
        }
        _ => {
            let dy = rng.array4(g.output_shape());
            let which = match op {
                CheckOp::Conv2dBackwardInput => GradSelection::INPUT,
                CheckOp::Conv2dBackwardWeight => GradSelection::WEIGHT,
                _ => GradSelection::BIAS,
            };
            let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, which)?;
            let bounds = ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, which)?;
            let (reference, bound) = if let (Some(dx), Some(b)) = (want.input, bounds.input) {
                (Output::values(dx), b.into_dyn())
            } else if let (Some(dw), Some(b)) = (want.weight, bounds.weight) {
                (Output::values(dw), b.into_dyn())
            } else if let (Some(db), Some(b)) = (want.bias, bounds.bias) {
                (Output::values(db), b.into_dyn())
            } else {
                return Err(missing_gradient());
            };
            Ok(Some(Case {
                work: Work::Backward {
                    x,
                    w,
                    dy,
                    params: p,
                    which,
                },
                reference,
                judge: Judge::Bound(bound),
                describe,
            }))
        }
    }
}

pub(super) fn missing_gradient() -> wgconv::Error {
    wgconv::Error::InvalidArgument {
        op: "wgconv check",
        what: "conv2d_backward returned no gradient of those selected".into(),
    }
}

/// Runs a case on `gpu`.
pub(super) fn run_case(gpu: &Gpu, work: &Work) -> wgconv::Result<Output> {
    Ok(match work {
        Work::Pool { x, layout, params } => {
            let (v, i) = wgconv::max_pool2d_with_indices(&tensor(gpu, x, *layout)?, params)?;
            Output {
                values: v.read()?.into_dyn(),
                indices: Some(i.read_indices()?.into_dyn()),
            }
        }
        Work::PoolBackward {
            x,
            dy,
            layout,
            params,
            shape,
        } => {
            // The backward reads the indices this adapter's forward wrote.
            let (_, i) = wgconv::max_pool2d_with_indices(&tensor(gpu, x, *layout)?, params)?;
            let dx = wgconv::max_pool2d_backward(&tensor(gpu, dy, *layout)?, &i, *shape, params)?;
            Output::values(dx.read()?)
        }
        Work::Activation {
            dy,
            saved,
            activation,
            kind,
        } => Output::values(
            wgconv::activation_backward(
                &tensor(gpu, dy, Layout::Nchw)?,
                &tensor(gpu, saved, Layout::Nchw)?,
                *activation,
                *kind,
            )?
            .read()?,
        ),
        Work::Conv2d {
            x,
            w,
            b,
            params,
            activation,
        } => Output::values(
            wgconv::conv2d_with_activation(
                &tensor(gpu, x, params.layout)?,
                &tensor(gpu, w, params.layout)?,
                Some(&GpuTensor::upload_1d(gpu, b.view())?),
                params,
                *activation,
            )?
            .read()?,
        ),
        Work::Transpose { input, w, params } => Output::values(
            wgconv::conv_transpose2d(
                &tensor(gpu, input, params.layout)?,
                &tensor(gpu, w, params.layout)?,
                None,
                params,
            )?
            .read()?,
        ),
        Work::Backward {
            x,
            w,
            dy,
            params,
            which,
        } => {
            let grads = wgconv::conv2d_backward(
                &tensor(gpu, x, params.layout)?,
                &tensor(gpu, w, params.layout)?,
                &tensor(gpu, dy, params.layout)?,
                params,
                *which,
            )?;
            if let Some(dx) = grads.input {
                Output::values(dx.read()?)
            } else if let Some(dw) = grads.weight {
                Output::values(dw.read()?)
            } else if let Some(db) = grads.bias {
                Output::values(db.read_1d()?)
            } else {
                return Err(missing_gradient());
            }
        }
    })
}
