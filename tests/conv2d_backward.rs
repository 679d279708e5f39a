//! conv2d gradients and conv_transpose2d: the CPU reference against finite differences and an
//! independent scatter-form loop, the GPU against the CPU reference, determinism, errors.

mod common;

use common::{random_case, ConvCase, Flavour, Rng};
use ndarray::{Array1, Array4, Axis};
use wgconv::{
    compare, conv2d_backward, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    conv_transpose2d, cpu, Conv2dGrads, Conv2dParams, ConvTranspose2dParams, Error, ErrorBound,
    GpuTensor, GradSelection, Layout, Padding, Tolerance,
};

/// `Σ dy ⊙ conv2d(x, w, b)` in f64: the scalar whose gradients the backward pass computes.
fn loss(
    x: &Array4<f64>,
    w: &Array4<f64>,
    b: &Array1<f64>,
    dy: &Array4<f64>,
    p: &Conv2dParams,
) -> f64 {
    let y = cpu::conv2d_f64(x.view(), w.view(), Some(b.view()), p).unwrap();
    (&y * dy).sum()
}

/// Central differences of `loss` with respect to every element of `target` (selected by `pick`).
fn finite_differences(
    x: &Array4<f64>,
    w: &Array4<f64>,
    b: &Array1<f64>,
    dy: &Array4<f64>,
    p: &Conv2dParams,
    pick: usize,
) -> Vec<f64> {
    const H: f64 = 1e-3;
    let len = [x.len(), w.len(), b.len()][pick];
    (0..len)
        .map(|i| {
            let eval = |delta: f64| {
                let (mut x, mut w, mut b) = (x.clone(), w.clone(), b.clone());
                match pick {
                    0 => x.as_slice_mut().unwrap()[i] += delta,
                    1 => w.as_slice_mut().unwrap()[i] += delta,
                    _ => b[i] += delta,
                }
                loss(&x, &w, &b, dy, p)
            };
            (eval(H) - eval(-H)) / (2.0 * H)
        })
        .collect()
}

/// max |a - b| / max |b|: the norm-wise relative error.
fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()));
    err / scale.max(f64::MIN_POSITIVE)
}

fn small_param_sets() -> Vec<(ConvCase, &'static str)> {
    let case = |input, weight, params| ConvCase {
        input,
        weight,
        bias: true,
        params,
    };
    vec![
        (
            case([2, 3, 5, 6], [4, 3, 3, 3], Conv2dParams::default()),
            "plain",
        ),
        (
            case(
                [1, 2, 7, 7],
                [3, 2, 3, 2],
                Conv2dParams::default().with_stride_hw(2, 3),
            ),
            "stride",
        ),
        (
            case(
                [1, 2, 6, 5],
                [2, 2, 3, 3],
                Conv2dParams::default().with_padding(Padding::explicit(1, 2, 0, 1)),
            ),
            "asymmetric padding",
        ),
        (
            case(
                [1, 2, 8, 8],
                [2, 2, 3, 2],
                Conv2dParams::default().with_dilation_hw(2, 3),
            ),
            "dilation",
        ),
        (
            case(
                [2, 4, 5, 5],
                [6, 2, 2, 3],
                Conv2dParams::default().with_groups(2),
            ),
            "groups",
        ),
        (
            case(
                [1, 3, 6, 6],
                [3, 1, 3, 3],
                Conv2dParams::default()
                    .with_groups(3)
                    .with_stride(2)
                    .with_padding(Padding::Same),
            ),
            "depthwise same stride 2",
        ),
        (
            case(
                [1, 2, 9, 9],
                [2, 2, 3, 3],
                Conv2dParams::default()
                    .with_stride(3)
                    .with_dilation(2)
                    .with_padding(Padding::uniform(2)),
            ),
            "stride 3 dilation 2 padded",
        ),
    ]
}

#[test]
fn reference_gradients_match_finite_differences() {
    let mut rng = Rng::new(31);
    for (case, name) in small_param_sets() {
        let p = case.params;
        let x = rng.array4(case.input);
        let w = rng.array4(case.weight);
        let b = rng.array1(case.weight[0]);
        let g = p.geometry("t", case.input, case.weight, None).unwrap();
        let dy = rng.array4(g.output_shape());
        let grads =
            cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
        let (x64, w64, b64, dy64) = (
            x.mapv(f64::from),
            w.mapv(f64::from),
            b.mapv(f64::from),
            dy.mapv(f64::from),
        );
        let analytic = [
            grads
                .input
                .unwrap()
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>(),
            grads
                .weight
                .unwrap()
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
            grads.bias.unwrap().iter().map(|&v| f64::from(v)).collect(),
        ];
        for (pick, what) in ["dx", "dw", "db"].iter().enumerate() {
            let numeric = finite_differences(&x64, &w64, &b64, &dy64, &p, pick);
            let err = relative_error(&analytic[pick], &numeric);
            assert!(err < 1e-6, "{name} {what}: relative error {err:.3e}");
        }
    }
}

/// The numpy loops tutorial's `conv_backward_naive`, generalised to per-side padding, dilation
/// and groups: pad x, scatter `w * dout` into the padded dx and `x_window * dout` into dw, crop
/// the padding. f64 throughout; written independently of the library's gather loops.
fn scatter_backward(
    x: &Array4<f32>,
    w: &Array4<f32>,
    dout: &Array4<f32>,
    p: &Conv2dParams,
) -> (Array4<f64>, Array4<f64>, Array1<f64>) {
    let geom = p.geometry("t", dims(x), dims(w), None).unwrap();
    let (n_, c_, h_, w_) = x.dim();
    let (f_, cg, hh, ww) = w.dim();
    let (pt, pl) = (geom.h.pad_before, geom.w.pad_before);
    let (hp, wp) = (h_ + pt + geom.h.pad_after, w_ + pl + geom.w.pad_after);
    let mut x_pad = Array4::<f64>::zeros((n_, c_, hp, wp));
    for ((n, c, i, j), &v) in x.indexed_iter() {
        x_pad[[n, c, i + pt, j + pl]] = f64::from(v);
    }
    let mut dx_pad = Array4::<f64>::zeros((n_, c_, hp, wp));
    let mut dw = Array4::<f64>::zeros((f_, cg, hh, ww));
    let mut db = Array1::<f64>::zeros(f_);
    let fpg = f_ / p.groups;
    for i in 0..n_ {
        for f in 0..f_ {
            let c_base = (f / fpg) * cg;
            for j in 0..geom.h.output {
                for k in 0..geom.w.output {
                    let d = f64::from(dout[[i, f, j, k]]);
                    for c in 0..cg {
                        for a in 0..hh {
                            for bb in 0..ww {
                                let (r, s) = (
                                    j * p.stride[0] + a * p.dilation[0],
                                    k * p.stride[1] + bb * p.dilation[1],
                                );
                                dw[[f, c, a, bb]] += x_pad[[i, c_base + c, r, s]] * d;
                                dx_pad[[i, c_base + c, r, s]] += f64::from(w[[f, c, a, bb]]) * d;
                            }
                        }
                    }
                    db[f] += d;
                }
            }
        }
    }
    let dx = dx_pad
        .slice(ndarray::s![.., .., pt..pt + h_, pl..pl + w_])
        .to_owned();
    (dx, dw, db)
}

fn dims(a: &Array4<f32>) -> [usize; 4] {
    let d = a.dim();
    [d.0, d.1, d.2, d.3]
}

fn as_f64(a: &Array4<f32>) -> Array4<f64> {
    a.mapv(f64::from)
}

#[test]
fn reference_matches_numpy_scatter_loops() {
    let mut rng = Rng::new(0x5eed_0001);
    for flavour in Flavour::ALL {
        for i in 0..6 {
            let case = random_case(&mut rng, flavour);
            let p = case.params;
            let x = rng.array4(case.input);
            let w = rng.array4(case.weight);
            let g = p.geometry("t", case.input, case.weight, None).unwrap();
            let dy = rng.array4(g.output_shape());
            let (dx_s, dw_s, db_s) = scatter_backward(&x, &w, &dy, &p);
            let grads = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
            let tol = |len: usize| Tolerance::for_reduction(len);
            let r = compare(
                as_f64(&grads.input.unwrap()).mapv(|v| v as f32).view(),
                dx_s.mapv(|v| v as f32).view(),
                tol(1),
            );
            assert!(r.passed(), "{flavour:?} {i} dx: {r}");
            let r = compare(
                grads.weight.unwrap().view(),
                dw_s.mapv(|v| v as f32).view(),
                tol(1),
            );
            assert!(r.passed(), "{flavour:?} {i} dw: {r}");
            let r = compare(
                grads.bias.unwrap().view(),
                db_s.mapv(|v| v as f32).view(),
                tol(1),
            );
            assert!(r.passed(), "{flavour:?} {i} db: {r}");
        }
    }
}

/// The error bounds of the three gradients of `case` on these operands.
fn tolerances(
    case: &ConvCase,
    x: &Array4<f32>,
    w: &Array4<f32>,
    dy: &Array4<f32>,
) -> Conv2dGrads<ErrorBound<ndarray::Ix4>, ErrorBound<ndarray::Ix1>> {
    ErrorBound::conv2d_backward(
        x.view(),
        w.view(),
        dy.view(),
        &case.params,
        GradSelection::ALL,
    )
    .unwrap()
}

#[test]
fn gpu_gradients_match_reference_on_random_parameter_sets() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(0x5eed_0003);
    let mut checked = 0;
    for flavour in Flavour::ALL {
        for i in 0..common::cases_per_flavour(24) {
            let case = random_case(&mut rng, flavour);
            let p = case.params;
            let x = rng.array4(case.input);
            let w = rng.array4(case.weight);
            let g = p.geometry("t", case.input, case.weight, None).unwrap();
            let dy = rng.array4(g.output_shape());
            let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
            let xt = GpuTensor::upload(gpu, x.view()).unwrap();
            let wt = GpuTensor::upload(gpu, w.view()).unwrap();
            let dyt = GpuTensor::upload(gpu, dy.view()).unwrap();
            let got = conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL).unwrap();
            let bounds = tolerances(&case, &x, &w, &dy);
            let (tx, tw, tb) = (
                bounds.input.unwrap(),
                bounds.weight.unwrap(),
                bounds.bias.unwrap(),
            );
            let (tx, tw, tb) = (&tx, &tw, &tb);
            let r = compare(
                got.input.unwrap().read().unwrap().view(),
                want.input.unwrap().view(),
                tx,
            );
            common::note_ratio("conv2d_backward_input", &r);
            assert!(r.passed(), "{flavour:?} case {i} dx: {case:?}\n{r}");
            let r = compare(
                got.weight.unwrap().read().unwrap().view(),
                want.weight.unwrap().view(),
                tw,
            );
            common::note_ratio("conv2d_backward_weight", &r);
            assert!(r.passed(), "{flavour:?} case {i} dw: {case:?}\n{r}");
            let r = compare(
                got.bias.unwrap().read_1d().unwrap().view(),
                want.bias.unwrap().view(),
                tb,
            );
            common::note_ratio("conv2d_backward_bias", &r);
            assert!(r.passed(), "{flavour:?} case {i} db: {case:?}\n{r}");
            checked += 1;
        }
    }
    assert!(checked >= 200, "only {checked} cases");
}

#[test]
fn im2col_backward_matches_reference_on_random_parameter_sets() {
    let mut rng = Rng::new(0x5eed_0003);
    for flavour in Flavour::ALL {
        for i in 0..common::cases_per_flavour(24) {
            let case = random_case(&mut rng, flavour);
            let p = case.params;
            let x = rng.array4(case.input);
            let w = rng.array4(case.weight);
            let g = p.geometry("t", case.input, case.weight, None).unwrap();
            let dy = rng.array4(g.output_shape());
            let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
            let got =
                cpu::conv2d_backward_im2col(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                    .unwrap();
            // im2col sums dw and db over samples in its own order: any order of their terms.
            let bounds = tolerances(&case, &x, &w, &dy);
            let tx = bounds.input.unwrap();
            let tw = bounds.weight.unwrap().in_any_order();
            let tb = bounds.bias.unwrap().in_any_order();
            let (tx, tw, tb) = (&tx, &tw, &tb);
            let r = compare(got.input.unwrap().view(), want.input.unwrap().view(), tx);
            assert!(r.passed(), "{flavour:?} case {i} dx: {case:?}\n{r}");
            let r = compare(got.weight.unwrap().view(), want.weight.unwrap().view(), tw);
            assert!(r.passed(), "{flavour:?} case {i} dw: {case:?}\n{r}");
            let r = compare(got.bias.unwrap().view(), want.bias.unwrap().view(), tb);
            assert!(r.passed(), "{flavour:?} case {i} db: {case:?}\n{r}");
        }
    }
}

/// The single-gradient functions give the same bits as the combined call.
#[test]
fn single_gradient_functions_agree_with_the_combined_call() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(41);
    let p = Conv2dParams::default()
        .with_stride(2)
        .with_padding(Padding::uniform(1))
        .with_groups(2);
    let x = rng.array4([2, 4, 9, 9]);
    let w = rng.array4([6, 2, 3, 3]);
    let dy = rng.array4([2, 6, 5, 5]);
    let (xt, wt, dyt) = (
        GpuTensor::upload(gpu, x.view()).unwrap(),
        GpuTensor::upload(gpu, w.view()).unwrap(),
        GpuTensor::upload(gpu, dy.view()).unwrap(),
    );
    let all = conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL).unwrap();
    let dx = conv2d_backward_input([2, 4, 9, 9], &wt, &dyt, &p).unwrap();
    let dw = conv2d_backward_weight(&xt, [6, 2, 3, 3], &dyt, &p).unwrap();
    let db = conv2d_backward_bias(&dyt, Layout::Nchw).unwrap();
    assert_eq!(dx.read().unwrap(), all.input.unwrap().read().unwrap());
    assert_eq!(dw.read().unwrap(), all.weight.unwrap().read().unwrap());
    assert_eq!(db.read_1d().unwrap(), all.bias.unwrap().read_1d().unwrap());
    let only_dw = conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::WEIGHT).unwrap();
    assert!(only_dw.input.is_none() && only_dw.bias.is_none());
}

fn bits(a: &Array4<f32>) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn gradients_are_bitwise_reproducible() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(42);
    let p = Conv2dParams::default()
        .with_padding(Padding::uniform(1))
        .with_stride(2);
    let x = rng.array4([4, 8, 28, 28]);
    let w = rng.array4([8, 8, 3, 3]);
    let dy = rng.array4([4, 8, 14, 14]);
    let (xt, wt, dyt) = (
        GpuTensor::upload(gpu, x.view()).unwrap(),
        GpuTensor::upload(gpu, w.view()).unwrap(),
        GpuTensor::upload(gpu, dy.view()).unwrap(),
    );
    let run = || {
        let g = conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL).unwrap();
        (
            bits(&g.input.unwrap().read().unwrap()),
            bits(&g.weight.unwrap().read().unwrap()),
            g.bias
                .unwrap()
                .read_1d()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>(),
        )
    };
    let first = run();
    for _ in 0..4 {
        assert!(run() == first, "a gradient changed between runs");
    }
}

/// The weight gradient of the 64-channel-class layer at batch 8, 56x56 (25,088 terms per
/// weight; channels reduced to keep the f64 reference quick) stays within its bound, which
/// follows the blocked reduction (chains of 1,032 roundings) rather than any order (25,088).
#[test]
fn weight_gradient_over_25088_terms_stays_within_tolerance() {
    let Some(gpu) = common::gpu() else { return };
    let mut rng = Rng::new(43);
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    let x = rng.array4([8, 4, 56, 56]);
    let dy = rng.array4([8, 4, 56, 56]);
    let want = cpu::conv2d_backward_weight(x.view(), [4, 4, 3, 3], dy.view(), &p).unwrap();
    let got = conv2d_backward_weight(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        [4, 4, 3, 3],
        &GpuTensor::upload(gpu, dy.view()).unwrap(),
        &p,
    )
    .unwrap()
    .read()
    .unwrap();
    let bound = ErrorBound::conv2d_backward_weight(x.view(), [4, 4, 3, 3], dy.view(), &p).unwrap();
    assert_eq!(bound.bound, wgconv::Bound::sum(1032));
    let r = compare(got.view(), want.view(), &bound);
    common::note_ratio("conv2d_backward_weight", &r);
    assert!(r.passed(), "{r}");
}

/// PyTorch's definition of conv_transpose2d, written as a scatter: every input pixel adds
/// `x * w` to the output positions its kernel covers, then the padding is cropped.
fn transpose_scatter(
    x: &Array4<f32>,
    w: &Array4<f32>,
    b: &Array1<f32>,
    p: &ConvTranspose2dParams,
) -> Array4<f32> {
    let (n_, cin, h, wd) = x.dim();
    let (_, cout_pg, kh, kw) = w.dim();
    let (pt, pb, pl, pr) = match p.padding {
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => (top, bottom, left, right),
        _ => (0, 0, 0, 0),
    };
    let full_h = (h - 1) * p.stride[0] + p.dilation[0] * (kh - 1) + p.output_padding[0] + 1;
    let full_w = (wd - 1) * p.stride[1] + p.dilation[1] * (kw - 1) + p.output_padding[1] + 1;
    let cin_pg = cin / p.groups;
    let mut full = Array4::<f64>::zeros((n_, cout_pg * p.groups, full_h, full_w));
    for ((n, c, i, j), &v) in x.indexed_iter() {
        let g = c / cin_pg;
        for o in 0..cout_pg {
            for a in 0..kh {
                for bb in 0..kw {
                    full[[
                        n,
                        g * cout_pg + o,
                        i * p.stride[0] + a * p.dilation[0],
                        j * p.stride[1] + bb * p.dilation[1],
                    ]] += f64::from(v) * f64::from(w[[c, o, a, bb]]);
                }
            }
        }
    }
    let mut out = full
        .slice(ndarray::s![.., .., pt..full_h - pb, pl..full_w - pr])
        .mapv(|v| v as f32);
    for (o, mut plane) in out.axis_iter_mut(Axis(1)).enumerate() {
        plane += b[o];
    }
    out
}

#[test]
fn conv_transpose2d_matches_pytorch_definition_on_cpu_and_gpu() {
    let gpu = common::gpu();
    let mut rng = Rng::new(44);
    let mut checked = 0;
    for i in 0..120 {
        let groups = rng.range(1, 3);
        let cin = groups * rng.range(1, 3);
        let cout_pg = rng.range(1, 3);
        let (kh, kw) = (rng.range(1, 4), rng.range(1, 4));
        let stride = [rng.range(1, 3), rng.range(1, 3)];
        let dilation = [rng.range(1, 2), rng.range(1, 2)];
        let output_padding = [
            rng.range(0, stride[0].max(dilation[0]) - 1),
            rng.range(0, stride[1].max(dilation[1]) - 1),
        ];
        let padding = Padding::explicit(
            rng.range(0, 1),
            rng.range(0, 1),
            rng.range(0, 1),
            rng.range(0, 1),
        );
        let p = ConvTranspose2dParams {
            stride,
            padding,
            output_padding,
            dilation,
            groups,
            ..Default::default()
        };
        let input = [rng.range(1, 2), cin, rng.range(1, 7), rng.range(1, 7)];
        let weight = [cin, cout_pg, kh, kw];
        let Ok(g) = p.geometry("t", input, weight, Some(cout_pg * groups)) else {
            continue;
        };
        let x = rng.array4(input);
        let w = rng.array4(weight);
        let b = rng.array1(cout_pg * groups);
        let want = transpose_scatter(&x, &w, &b, &p);
        let tol = Tolerance::for_reduction(cin / groups * kh * kw + 1);
        let cpu_out = cpu::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        assert_eq!(cpu_out.dim(), want.dim(), "case {i} {p:?}");
        assert_eq!(dims(&cpu_out), g.input_shape());
        let r = compare(cpu_out.view(), want.view(), tol);
        assert!(r.passed(), "cpu case {i} {p:?}: {r}");
        let bound = ErrorBound::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        if let Some(gpu) = gpu {
            let got = conv_transpose2d(
                &GpuTensor::upload(gpu, x.view()).unwrap(),
                &GpuTensor::upload(gpu, w.view()).unwrap(),
                Some(&GpuTensor::upload_1d(gpu, b.view()).unwrap()),
                &p,
            )
            .unwrap()
            .read()
            .unwrap();
            let r = compare(got.view(), want.view(), &bound);
            common::note_ratio("conv_transpose2d", &r);
            assert!(r.passed(), "gpu case {i} {p:?}: {r}");
        }
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} valid cases");
}

/// output_padding >= stride is allowed when it is below the dilation (PyTorch's rule); the
/// output then has rows no forward window reads, which get only the bias.
#[test]
fn conv_transpose2d_output_padding_below_dilation_only() {
    let p = ConvTranspose2dParams::default()
        .with_stride(1)
        .with_dilation(3)
        .with_output_padding(2);
    let mut rng = Rng::new(45);
    let x = rng.array4([1, 2, 4, 4]);
    let w = rng.array4([2, 3, 2, 2]);
    let b = rng.array1(3);
    let want = transpose_scatter(&x, &w, &b, &p);
    assert_eq!(want.dim(), (1, 3, 9, 9));
    let cpu_out = cpu::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
    assert!(compare(cpu_out.view(), want.view(), Tolerance::for_reduction(9)).passed());
    if let Some(gpu) = common::gpu() {
        let got = conv_transpose2d(
            &GpuTensor::upload(gpu, x.view()).unwrap(),
            &GpuTensor::upload(gpu, w.view()).unwrap(),
            Some(&GpuTensor::upload_1d(gpu, b.view()).unwrap()),
            &p,
        )
        .unwrap()
        .read()
        .unwrap();
        let bound = ErrorBound::conv_transpose2d(x.view(), w.view(), Some(b.view()), &p).unwrap();
        let r = compare(got.view(), want.view(), &bound);
        assert!(r.passed(), "{r}");
    }
}

#[test]
fn bad_gradient_inputs_are_rejected_with_numbers() {
    let x = Array4::<f32>::ones((1, 2, 6, 6));
    let w = Array4::<f32>::ones((3, 2, 3, 3));
    let p = Conv2dParams::default();
    // The forward output is [1, 3, 4, 4]; a dy of another shape (or params that disagree with
    // the dy) is an error.
    let dy_wrong = Array4::<f32>::ones((1, 3, 5, 5));
    let msg = |e: Error| {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
        e.to_string()
    };
    let m = msg(
        cpu::conv2d_backward(x.view(), w.view(), dy_wrong.view(), &p, GradSelection::ALL)
            .unwrap_err(),
    );
    assert!(
        m.contains("grad_output shape [1, 3, 5, 5]") && m.contains("[1, 3, 4, 4]"),
        "{m}"
    );
    let dy = Array4::<f32>::ones((1, 3, 4, 4));
    let padded = Conv2dParams::default().with_padding(Padding::uniform(1));
    let m =
        msg(cpu::conv2d_backward_input([1, 2, 6, 6], w.view(), dy.view(), &padded).unwrap_err());
    assert!(m.contains("[1, 3, 6, 6]"), "{m}");

    let tp = ConvTranspose2dParams::default()
        .with_stride(2)
        .with_dilation(2)
        .with_output_padding(2);
    let m = msg(cpu::conv_transpose2d(
        x.view(),
        Array4::<f32>::ones((2, 3, 3, 3)).view(),
        None,
        &tp,
    )
    .unwrap_err());
    assert!(
        m.contains("output_padding height (2)")
            && m.contains("stride (2)")
            && m.contains("dilation (2)"),
        "{m}"
    );
    let same = ConvTranspose2dParams::default().with_padding(Padding::Same);
    let m = msg(cpu::conv_transpose2d(
        x.view(),
        Array4::<f32>::ones((2, 3, 3, 3)).view(),
        None,
        &same,
    )
    .unwrap_err());
    assert!(m.contains("Same"), "{m}");

    if let Some(gpu) = common::gpu() {
        let (xt, wt) = (
            GpuTensor::upload(gpu, x.view()).unwrap(),
            GpuTensor::upload(gpu, w.view()).unwrap(),
        );
        let dyt = GpuTensor::upload(gpu, dy_wrong.view()).unwrap();
        let m = msg(conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL).unwrap_err());
        assert!(
            m.starts_with("conv2d_backward:") && m.contains("[1, 3, 5, 5]"),
            "{m}"
        );
        let m = msg(conv2d_backward_weight(&xt, [3, 2, 3, 3], &dyt, &p).unwrap_err());
        assert!(m.starts_with("conv2d_backward_weight:"), "{m}");
        let m = msg(conv_transpose2d(
            &xt,
            &GpuTensor::upload(gpu, Array4::<f32>::ones((2, 3, 3, 3)).view()).unwrap(),
            None,
            &tp,
        )
        .unwrap_err());
        assert!(m.contains("output_padding"), "{m}");
    }
}
