//! Property tests over every op's whole parameter space, hostile values included: each call returns the CPU reference's answer or a documented `Err`, never a panic, a hang or a wgpu error.
//!
//! Tensors stay tiny; the parameters range over zero, one, small values, kernels larger than
//! the input, padding larger than the kernel, mismatched channels and groups, and `u32::MAX`,
//! `i32::MAX`, `2^31` and `usize::MAX`. "Documented `Err`" means `InvalidArgument` (which the
//! CPU reference, sharing the validation, must also return) or `TooLarge` (a device limit the
//! CPU does not have); any other error (a wgpu validation error escaping as `Error::Device`)
//! fails, and so does an error left behind for the next call. `PROPTEST_CASES=N` runs N cases
//! per op instead of the default 48.

mod common;

use std::sync::OnceLock;

use ndarray::{Array1, Array4, ArrayD, Dimension};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use wgconv::verify::Criterion;
use wgconv::ConvVariant;
use wgconv::{
    activation_backward, compare, conv2d_backward, conv2d_backward_input, conv2d_with_activation,
    conv_transpose2d, cpu, max_pool2d, max_pool2d_backward, max_pool2d_with_indices, Activation,
    Conv2dParams, ConvTranspose2dParams, Error, ErrorBound, Gpu, GpuTensor, GradSelection,
    IndexStyle, Layout, Padding, Pool2dParams, SavedTensor, Tolerance,
};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    ProptestConfig {
        cases,
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    }
}

/// One device per conv kernel variant the adapter runs (direct first), each forcing it, and a
/// last one whose storage bindings hold only 2 KiB, so that ops split their work over the batch
/// (or, past that, return `TooLarge`).
fn gpus() -> &'static [Gpu] {
    static GPUS: OnceLock<Vec<Gpu>> = OnceLock::new();
    GPUS.get_or_init(|| {
        if common::gpu().is_none() {
            return vec![];
        }
        let mut gpus: Vec<Gpu> = ConvVariant::ALL
            .iter()
            .filter_map(|&v| {
                let gpu = Gpu::new().ok()?;
                v.available(&gpu).ok()?;
                gpu.force_conv_variant(Some(v));
                Some(gpu)
            })
            .collect();
        if let Ok(limited) = Gpu::new() {
            limited.limit_storage_binding(2048);
            gpus.push(limited);
        }
        gpus
    })
}

fn gpu(variant: usize) -> Option<&'static Gpu> {
    let all = gpus();
    (!all.is_empty()).then(|| &all[variant % all.len()])
}

// ---- strategies --------------------------------------------------------------------------

/// Values that break naive size arithmetic.
fn hostile() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(u32::MAX as usize),
        Just(i32::MAX as usize),
        Just(1usize << 31),
        Just(usize::MAX),
    ]
}

/// A tensor extent: tiny, sometimes 0.
fn extent() -> impl Strategy<Value = usize> {
    prop_oneof![48 => 1usize..=4, 1 => Just(0)]
}

/// A kernel extent: usually within the input, sometimes 0 or larger than any input here.
fn kernel() -> impl Strategy<Value = usize> {
    prop_oneof![20 => 1usize..=3, 1 => Just(0), 2 => 5usize..=7]
}

/// A stride.
fn step() -> impl Strategy<Value = usize> {
    prop_oneof![24 => 1usize..=3, 1 => Just(0), 1 => hostile()]
}

/// A dilation: mostly 1, since larger ones rarely fit the tiny inputs.
fn dilation() -> impl Strategy<Value = usize> {
    prop_oneof![18 => Just(1usize), 6 => 2usize..=3, 1 => Just(0), 1 => hostile()]
}

/// A spatial extent of an input.
fn spatial() -> impl Strategy<Value = usize> {
    prop_oneof![48 => 1usize..=6, 1 => Just(0)]
}

/// One side's padding: small, larger than any kernel here, or hostile.
fn pad() -> impl Strategy<Value = usize> {
    prop_oneof![20 => 0usize..=2, 1 => Just(9), 1 => hostile()]
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        1 => Just(Padding::Valid),
        1 => Just(Padding::Same),
        4 => (pad(), pad(), pad(), pad()).prop_map(|(t, b, l, r)| Padding::explicit(t, b, l, r)),
    ]
}

fn groups() -> impl Strategy<Value = usize> {
    prop_oneof![24 => 1usize..=3, 1 => Just(0), 1 => hostile()]
}

fn layout() -> impl Strategy<Value = Layout> {
    prop_oneof![Just(Layout::Nchw), Just(Layout::Nhwc)]
}

fn activation() -> impl Strategy<Value = Activation> {
    prop_oneof![
        Just(Activation::None),
        Just(Activation::Relu),
        Just(Activation::Sigmoid),
        Just(Activation::Tanh),
        prop_oneof![Just(0.1f32), Just(0.0), Just(-1.0), Just(f32::NAN)]
            .prop_map(|slope| Activation::LeakyRelu { slope }),
    ]
}

/// Channels of a conv: `(groups, C_in, C_out, weight's in-channels)`; consistent unless
/// `mismatch`, and with a hostile group count the channels stay tiny (hence mismatched).
fn channels() -> impl Strategy<Value = (usize, usize, usize, usize)> {
    (
        groups(),
        extent(),
        extent(),
        extent(),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(g, cin_pg, cout_pg, other, mismatch)| {
            let (cin, cout) = if (1..=3).contains(&g) {
                (g * cin_pg, g * cout_pg)
            } else {
                (cin_pg, cout_pg)
            };
            (g, cin, cout, if mismatch { other } else { cin_pg })
        })
}

// ---- checking ----------------------------------------------------------------------------

/// Most output elements times reduction length the CPU reference is asked to compute.
const CPU_WORK_LIMIT: usize = 2_000_000;

/// The GPU's answer against the CPU's, by the rules in the module docs. `cpu` is `None` when
/// the reference was not run (too much work for a property test): then only the kind of a GPU
/// error is checked. `criterion` judges the values, and is there wherever the reference ran
/// without an error (a result's error bound comes from the same validated call).
fn judge<D: Dimension>(
    what: &str,
    gpu: &Gpu,
    got: wgconv::Result<ndarray::Array<f32, D>>,
    want: Option<wgconv::Result<ndarray::Array<f32, D>>>,
    criterion: Option<Criterion<'_, D>>,
) -> Result<(), TestCaseError> {
    // Nothing may be left for the next call: an escaped wgpu error would show here.
    if let Err(e) = gpu.synchronize() {
        return Err(TestCaseError::fail(format!(
            "{what}: error left behind: {e}"
        )));
    }
    match (got, want) {
        (Ok(g), Some(Ok(w))) => {
            let criterion = criterion.expect("a criterion wherever the reference ran");
            let r = compare(g.view(), w.view(), criterion);
            prop_assert!(
                r.passed(),
                "{what}: GPU differs from the CPU reference: {r}"
            );
        }
        (Ok(_), None) => {}
        (Ok(_), Some(Err(e))) => {
            return Err(TestCaseError::fail(format!(
                "{what}: GPU accepted a call the CPU reference rejects: {e}"
            )))
        }
        (Err(e), want) => {
            let message = e.to_string();
            prop_assert!(
                message.contains(": ") && message.len() > 10,
                "{what}: an error without op and detail: {message:?}"
            );
            match (&e, want) {
                (Error::TooLarge { .. }, _) => {}
                (Error::InvalidArgument { .. }, Some(Err(_)) | None) => {}
                // Uploads reject empty tensors, which the reference may still accept.
                (Error::InvalidArgument { what: w, .. }, Some(Ok(_)))
                    if w.contains("zero-sized") => {}
                (other, _) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: undocumented error {other:?}"
                    )))
                }
            }
        }
    }
    Ok(())
}

fn up(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> wgconv::Result<GpuTensor> {
    GpuTensor::upload_with_layout(gpu, a.view(), layout)
}

fn array(shape: [usize; 4], seed: u64) -> Array4<f32> {
    common::Rng::new(seed).array4(shape)
}

fn to_dyn(a: Array1<f32>) -> ArrayD<f32> {
    a.into_dyn()
}

// ---- conv2d ------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct ConvCase {
    n: usize,
    h: usize,
    w: usize,
    channels: (usize, usize, usize, usize),
    kernel: [usize; 2],
    params: Conv2dParams,
    bias: Option<usize>,
    activation: Activation,
    variant: usize,
    seed: u64,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        (
            extent(),
            spatial(),
            spatial(),
            channels(),
            kernel(),
            kernel(),
        ),
        (
            step(),
            step(),
            padding(),
            dilation(),
            dilation(),
            layout(),
            any::<bool>(),
        ),
        (
            prop::option::weighted(0.5, prop_oneof![12 => Just(0usize), 1 => 1usize..=2]),
            activation(),
            0usize..3,
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (n, h, w, channels, kh, kw),
                (sh, sw, padding, dh, dw, layout, flip),
                (bias_extra, activation, variant, seed),
            )| ConvCase {
                n,
                h,
                w,
                channels,
                kernel: [kh, kw],
                params: Conv2dParams {
                    stride: [sh, sw],
                    padding,
                    dilation: [dh, dw],
                    groups: channels.0,
                    layout,
                    flip,
                },
                // A bias of C_out elements, or (extra > 0) a wrong length.
                bias: bias_extra.map(|extra| channels.2 + extra),
                activation,
                variant,
                seed,
            },
        )
}

impl ConvCase {
    fn input_shape(&self) -> [usize; 4] {
        let (_, cin, _, _) = self.channels;
        self.params
            .layout
            .activation_shape([self.n, cin, self.h, self.w])
    }
    fn weight_shape(&self) -> [usize; 4] {
        let (_, _, cout, wcin) = self.channels;
        self.params
            .layout
            .weight_shape([cout, wcin, self.kernel[0], self.kernel[1]])
    }
    /// The reduction length and whether the reference may run, if the geometry is valid.
    fn work(&self) -> Option<(usize, bool)> {
        let g = self
            .params
            .geometry("t", self.input_shape(), self.weight_shape(), self.bias)
            .ok()?;
        let out: usize = g.output_shape().iter().product();
        let small = out.saturating_mul(g.reduction_len().max(1)) <= CPU_WORK_LIMIT;
        Some((g.reduction_len(), small))
    }
}

fn check_conv_forward(c: &ConvCase) -> Result<(), TestCaseError> {
    let Some(gpu) = gpu(c.variant) else {
        return Ok(());
    };
    let x = array(c.input_shape(), c.seed);
    let w = array(c.weight_shape(), c.seed ^ 1);
    let b = c.bias.map(|len| Array1::from_elem(len, 0.25f32));
    let (_, small) = c.work().unwrap_or((1, true));
    let want = small.then(|| {
        cpu::conv2d_with_activation(
            x.view(),
            w.view(),
            b.as_ref().map(|b| b.view()),
            &c.params,
            c.activation,
        )
    });
    let got = (|| {
        let bt = b
            .as_ref()
            .map(|b| GpuTensor::upload_1d(gpu, b.view()))
            .transpose()?;
        conv2d_with_activation(
            &up(gpu, &x, c.params.layout)?,
            &up(gpu, &w, c.params.layout)?,
            bt.as_ref(),
            &c.params,
            c.activation,
        )?
        .read()
    })();
    let bound = small
        .then(|| {
            ErrorBound::conv2d_with_activation(
                x.view(),
                w.view(),
                b.as_ref().map(|b| b.view()),
                &c.params,
                c.activation,
            )
        })
        .and_then(Result::ok);
    judge(
        "conv2d",
        gpu,
        got,
        want,
        bound.as_ref().map(Criterion::from),
    )
}

fn check_conv_backward(c: &ConvCase, which: GradSelection) -> Result<(), TestCaseError> {
    let Some(gpu) = gpu(c.variant) else {
        return Ok(());
    };
    let p = &c.params;
    let x = array(c.input_shape(), c.seed);
    let w = array(c.weight_shape(), c.seed ^ 1);
    // grad_output of the right shape when the geometry is valid, else of the input's shape.
    let dy_shape = p
        .geometry("t", c.input_shape(), c.weight_shape(), None)
        .map_or(c.input_shape(), |g| g.output_shape());
    let dy = array(dy_shape, c.seed ^ 2);
    let small = c.work().is_none_or(|(_, small)| small);
    let want = small.then(|| cpu::conv2d_backward(x.view(), w.view(), dy.view(), p, which));
    // One of the devices splits work over the batch, whose dw and db partial sums are then
    // added in tiles: any order of their terms.
    let bounds = small
        .then(|| ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), p, which))
        .and_then(Result::ok);
    let got = (|| {
        conv2d_backward(
            &up(gpu, &x, p.layout)?,
            &up(gpu, &w, p.layout)?,
            &up(gpu, &dy, p.layout)?,
            p,
            which,
        )
    })();
    // Compare each requested gradient; errors are judged once, on the whole call.
    match (got, want) {
        (Ok(g), Some(Ok(w))) => {
            let bounds = bounds.expect("bounds wherever the reference ran");
            let pairs: [GradPair; 3] = [
                (
                    "dx",
                    g.input
                        .map(|t| t.read())
                        .transpose()
                        .map_err(fail)?
                        .map(|a| a.into_dyn()),
                    w.input.map(|a| a.into_dyn()),
                    bounds.input.map(ErrorBound::into_dyn),
                ),
                (
                    "dw",
                    g.weight
                        .map(|t| t.read())
                        .transpose()
                        .map_err(fail)?
                        .map(|a| a.into_dyn()),
                    w.weight.map(|a| a.into_dyn()),
                    bounds.weight.map(|b| b.in_any_order().into_dyn()),
                ),
                (
                    "db",
                    g.bias
                        .map(|t| t.read_1d())
                        .transpose()
                        .map_err(fail)?
                        .map(to_dyn),
                    w.bias.map(to_dyn),
                    bounds.bias.map(|b| b.in_any_order().into_dyn()),
                ),
            ];
            for (name, got, want, bound) in pairs {
                prop_assert_eq!(got.is_some(), want.is_some(), "{} presence", name);
                if let (Some(got), Some(want)) = (got, want) {
                    judge(
                        &format!("conv2d_backward {name}"),
                        gpu,
                        Ok(got),
                        Some(Ok(want)),
                        bound.as_ref().map(Criterion::from),
                    )?;
                }
            }
            Ok(())
        }
        (got, want) => judge(
            "conv2d_backward",
            gpu,
            got.map(|_| Array1::<f32>::zeros(0)),
            want.map(|w| w.map(|_| Array1::<f32>::zeros(0))),
            Some(Tolerance::exact().into()),
        ),
    }
}

/// A gradient's name, the GPU's and the CPU's value if requested, and its error bound.
type GradPair = (
    &'static str,
    Option<ArrayD<f32>>,
    Option<ArrayD<f32>>,
    Option<ErrorBound<ndarray::IxDyn>>,
);

fn fail(e: Error) -> TestCaseError {
    TestCaseError::fail(format!("reading a result failed: {e}"))
}

fn grad_selection() -> impl Strategy<Value = GradSelection> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(input, weight, bias)| GradSelection {
        input,
        weight,
        bias,
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn conv2d_forward_is_reference_or_documented_err(c in conv_case()) {
        check_conv_forward(&c)?;
    }

    #[test]
    fn conv2d_backward_is_reference_or_documented_err(c in conv_case(), which in grad_selection()) {
        check_conv_backward(&c, which)?;
    }

    /// The single-gradient entry point takes the input's shape as numbers: hostile ones must be
    /// rejected without allocating anything like them.
    #[test]
    fn conv2d_backward_input_rejects_hostile_shapes(
        c in conv_case(),
        hostile_dim in prop::option::weighted(0.3, (0usize..4, hostile())),
    ) {
        let Some(gpu) = gpu(c.variant) else { return Ok(()) };
        let p = &c.params;
        let mut input_shape = c.input_shape();
        if let Some((axis, v)) = hostile_dim {
            input_shape[axis] = v;
        }
        let w = array(c.weight_shape(), c.seed);
        let geometry = p.geometry("t", input_shape, c.weight_shape(), None);
        // A hostile input shape can make a valid geometry whose grad_output no host could hold
        // (2^31 images): such a call gets a one-element grad_output, which it must reject.
        let dy_shape = geometry
            .as_ref()
            .ok()
            .map(|g| g.output_shape())
            .filter(|s| s.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).is_some_and(|n| n <= CPU_WORK_LIMIT))
            .unwrap_or([1, 1, 1, 1]);
        let dy = array(dy_shape, c.seed ^ 2);
        let small = geometry.as_ref().map_or(true, |g| {
            let elements: usize = g.input_shape().iter().product();
            elements.saturating_mul(g.out_channels.max(1) * g.h.kernel * g.w.kernel) <= CPU_WORK_LIMIT
        });
        let want = small.then(|| cpu::conv2d_backward_input(input_shape, w.view(), dy.view(), p));
        let got = (|| {
            conv2d_backward_input(input_shape, &up(gpu, &w, p.layout)?, &up(gpu, &dy, p.layout)?, p)?
                .read()
        })();
        let bound = small
            .then(|| ErrorBound::conv2d_backward_input(input_shape, w.view(), dy.view(), p))
            .and_then(Result::ok);
        judge("conv2d_backward_input", gpu, got, want, bound.as_ref().map(Criterion::from))?;
    }

    #[test]
    fn conv_transpose2d_is_reference_or_documented_err(
        c in conv_case(),
        output_padding in (prop_oneof![12 => 0usize..=1, 1 => Just(2), 1 => hostile()], 0usize..=1),
    ) {
        let Some(gpu) = gpu(c.variant) else { return Ok(()) };
        let (groups, cin, cout, _) = c.channels;
        let layout = c.params.layout;
        let p = ConvTranspose2dParams {
            stride: c.params.stride,
            padding: c.params.padding,
            output_padding: [output_padding.0, output_padding.1],
            dilation: c.params.dilation,
            groups,
            layout,
            flip: c.params.flip,
        };
        // Weight [C_in, C_out/groups, kh, kw] in OIHW terms: the conv2d weight of the
        // transposed direction.
        let x_shape = layout.activation_shape([c.n, cin, c.h, c.w]);
        let w_shape = layout.weight_shape([cin, c.channels.3.min(cout.max(1)), c.kernel[0], c.kernel[1]]);
        let x = array(x_shape, c.seed);
        let w = array(w_shape, c.seed ^ 1);
        let b = c.bias.map(|len| Array1::from_elem(len, -0.5f32));
        let geometry = p.geometry("t", x_shape, w_shape, b.as_ref().map(|b| b.len()));
        let small = geometry.as_ref().map_or(true, |g| {
            let out: usize = g.input_shape().iter().product();
            out.saturating_mul(g.reduction_len().max(1)) <= CPU_WORK_LIMIT
        });
        let want = small.then(|| cpu::conv_transpose2d(x.view(), w.view(), b.as_ref().map(|b| b.view()), &p));
        let got = (|| {
            let bt = b.as_ref().map(|b| GpuTensor::upload_1d(gpu, b.view())).transpose()?;
            conv_transpose2d(&up(gpu, &x, layout)?, &up(gpu, &w, layout)?, bt.as_ref(), &p)?.read()
        })();
        let bound = small
            .then(|| ErrorBound::conv_transpose2d(x.view(), w.view(), b.as_ref().map(|b| b.view()), &p))
            .and_then(Result::ok);
        judge("conv_transpose2d", gpu, got, want, bound.as_ref().map(Criterion::from))?;
    }
}

/// Found by the property above: a stride of `usize::MAX` (one output column) reached the
/// kernels truncated to u32, and the subgroup input gradient then missed taps.
#[test]
fn a_stride_past_the_input_gives_the_reference_answer() {
    for variant in 0..gpus().len() {
        let c = ConvCase {
            n: 1,
            h: 3,
            w: 3,
            channels: (1, 1, 1, 1),
            kernel: [1, 2],
            params: Conv2dParams {
                stride: [1, usize::MAX],
                ..Conv2dParams::default()
            },
            bias: None,
            activation: Activation::None,
            variant,
            seed: 0,
        };
        check_conv_forward(&c).unwrap();
        check_conv_backward(&c, GradSelection::ALL).unwrap();
    }
}

// ---- max pooling -------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct PoolCase {
    shape: [usize; 4],
    params: Pool2dParams,
    seed: u64,
}

fn pool_case() -> impl Strategy<Value = PoolCase> {
    (
        (extent(), extent(), spatial(), spatial(), layout()),
        (kernel(), kernel(), step(), step()),
        (
            prop_oneof![24 => 0usize..=1, 1 => Just(2), 1 => hostile()],
            prop_oneof![12 => 0usize..=1, 1 => Just(2)],
            dilation(),
            dilation(),
            any::<bool>(),
            prop::bool::weighted(0.1),
        ),
        any::<u64>(),
    )
        .prop_map(
            |((n, c, h, w, layout), (kh, kw, sh, sw), (ph, pw, dh, dw, ceil_mode, tf), seed)| {
                PoolCase {
                    shape: layout.activation_shape([n, c, h, w]),
                    params: Pool2dParams {
                        kernel: [kh, kw],
                        stride: [sh, sw],
                        padding: [ph, pw],
                        dilation: [dh, dw],
                        ceil_mode,
                        layout,
                        index_style: if tf {
                            IndexStyle::TensorFlow
                        } else {
                            IndexStyle::PyTorch
                        },
                    },
                    seed,
                }
            },
        )
}

/// Indices as the caller might upload them: mostly valid ones from the reference, some
/// replaced by -1, an index past the plane, or one outside its own window.
fn corrupt(indices: &Array4<i64>, how: usize, seed: u64) -> Array4<i64> {
    let mut out = indices.clone();
    if let Some(v) = out.iter_mut().nth(seed as usize % indices.len().max(1)) {
        *v = match how {
            0 => *v,
            1 => -1,
            2 => i64::from(u32::MAX) + 7,
            3 => *v + 1_000,
            _ => 0,
        };
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn max_pool2d_is_reference_or_documented_err(
        c in pool_case(),
        corruption in 0usize..5,
        variant in 0usize..3,
    ) {
        let Some(gpu) = gpu(variant) else { return Ok(()) };
        let p = &c.params;
        let x = array(c.shape, c.seed);
        let want = cpu::max_pool2d_with_indices(x.view(), p);
        let got = (|| -> wgconv::Result<_> {
            let xt = up(gpu, &x, p.layout)?;
            let values = max_pool2d(&xt, p)?.read()?;
            let (v, i) = max_pool2d_with_indices(&xt, p)?;
            Ok((values, v.read()?, i.read_indices()?))
        })();
        match (got, want) {
            (Ok((values, v2, indices)), Ok((want_v, want_i))) => {
                judge("max_pool2d", gpu, Ok(values), Some(Ok(want_v.clone())), Some(Tolerance::exact().into()))?;
                judge("max_pool2d_with_indices", gpu, Ok(v2), Some(Ok(want_v)), Some(Tolerance::exact().into()))?;
                prop_assert_eq!(&indices, &want_i);
                // Backward through the GPU's indices and through uploaded (maybe corrupt) ones.
                let g = p.geometry("t", c.shape).unwrap();
                let dy = array(g.output_shape(), c.seed ^ 3);
                let uploaded = corrupt(&want_i, corruption, c.seed);
                let want_dx = cpu::max_pool2d_backward(dy.view(), want_i.view(), c.shape, p);
                let want_dx2 = cpu::max_pool2d_backward(dy.view(), uploaded.view(), c.shape, p);
                let got = (|| -> wgconv::Result<_> {
                    let xt = up(gpu, &x, p.layout)?;
                    let (_, it) = max_pool2d_with_indices(&xt, p)?;
                    let dyt = up(gpu, &dy, p.layout)?;
                    let dx = max_pool2d_backward(&dyt, &it, c.shape, p)?.read()?;
                    let iu = GpuTensor::upload_indices(gpu, uploaded.view(), p.layout);
                    let dx2 = iu.and_then(|iu| max_pool2d_backward(&dyt, &iu, c.shape, p)?.read());
                    Ok((dx, dx2))
                })();
                let bound = ErrorBound::max_pool2d_backward(dy.view(), want_i.view(), c.shape, p).ok();
                let bound2 = ErrorBound::max_pool2d_backward(dy.view(), uploaded.view(), c.shape, p).ok();
                match got {
                    Ok((dx, dx2)) => {
                        judge("max_pool2d_backward", gpu, Ok(dx), Some(want_dx), bound.as_ref().map(Criterion::from))?;
                        judge("max_pool2d_backward (uploaded indices)", gpu, dx2, Some(want_dx2), bound2.as_ref().map(Criterion::from))?;
                    }
                    Err(e) => return Err(TestCaseError::fail(format!("backward of a valid forward failed: {e}"))),
                }
            }
            (got, want) => judge(
                "max_pool2d",
                gpu,
                got.map(|(v, _, _)| v),
                Some(want.map(|(v, _)| v)),
                Some(Tolerance::exact().into()),
            )?,
        }
    }
}

// ---- activation backward -----------------------------------------------------------------

fn special() -> impl Strategy<Value = f32> {
    prop_oneof![
        // Finite values within +-2: beyond, sigmoid' and tanh' from the pre-activation are so
        // ill-conditioned in f32 (see the tolerance below) that no fixed tolerance fits.
        8 => -2.0f32..2.0,
        1 => Just(0.0f32),
        1 => Just(f32::NAN),
        1 => Just(f32::INFINITY),
        1 => Just(f32::NEG_INFINITY),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn activation_backward_is_reference_or_documented_err(
        shape in (extent(), 1usize..=3, 1usize..=3, 1usize..=3),
        other_shape in prop::bool::weighted(0.05),
        values in prop::collection::vec((special(), special()), 36),
        activation in activation(),
        from_output in any::<bool>(),
        variant in 0usize..3,
    ) {
        let Some(gpu) = gpu(variant) else { return Ok(()) };
        let dims = [shape.0, shape.1, shape.2, shape.3];
        let saved_dims = if other_shape { [shape.0, shape.1, shape.3, shape.2 + 1] } else { dims };
        let dy = Array4::from_shape_fn(dims, |(a, b, c, d)| values[(a * 9 + b * 3 + c + d) % 36].0);
        let v = Array4::from_shape_fn(saved_dims, |(a, b, c, d)| values[(a * 9 + b * 3 + c + d) % 36].1);
        let saved = if from_output { SavedTensor::Output } else { SavedTensor::PreActivation };
        let want = cpu::activation_backward(dy.view(), v.view(), activation, saved);
        let got = (|| {
            activation_backward(&up(gpu, &dy, Layout::Nchw)?, &up(gpu, &v, Layout::Nchw)?, activation, saved)?
                .read()
        })();
        // sigmoid' and tanh' recomputed from the pre-activation are ill-conditioned where y
        // nears +-1 (`1 - y * y` loses relative precision by about y / (1 - y)): the bound
        // allows the device's error in the activation absolutely, scaled by |dy|.
        let bound = ErrorBound::activation_backward(dy.view(), activation, saved);
        judge("activation_backward", gpu, got, Some(want), Some((&bound).into()))?;
    }
}
