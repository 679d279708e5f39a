//! `wgconv check`: random parameter sweeps, GPU against the CPU reference, for every op.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ndarray::Array4;
use wgconv::sweep::{random_conv_case, random_pool_case, Flavour, Rng};
use wgconv::{
    compare, cpu, Activation, Comparison, ConvTranspose2dParams, ErrorBound, Gpu, GpuTensor,
    GradSelection, Layout, Padding, SavedTensor, Tolerance,
};

use crate::Outcome;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum CheckOp {
    All,
    Conv2d,
    Conv2dBackwardInput,
    Conv2dBackwardWeight,
    Conv2dBackwardBias,
    ConvTranspose2d,
    MaxPool2d,
    MaxPool2dBackward,
    ActivationBackward,
}

const OPS: [CheckOp; 8] = [
    CheckOp::Conv2d,
    CheckOp::Conv2dBackwardInput,
    CheckOp::Conv2dBackwardWeight,
    CheckOp::Conv2dBackwardBias,
    CheckOp::ConvTranspose2d,
    CheckOp::MaxPool2d,
    CheckOp::MaxPool2dBackward,
    CheckOp::ActivationBackward,
];

#[derive(Args)]
pub struct CheckArgs {
    /// Which op to check.
    #[arg(long, value_enum, default_value = "all")]
    op: CheckOp,
    /// Random parameter sets per op.
    #[arg(long, default_value_t = 100)]
    cases: usize,
    /// Seed of the sweep; a failure names the seed and case that reproduce it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn op_name(op: CheckOp) -> String {
    format!("{op:?}").chars().fold(String::new(), |mut s, c| {
        if c.is_uppercase() && !s.is_empty() {
            s.push('-');
        }
        s.push(c.to_ascii_lowercase());
        s
    })
}

/// The worst errors of one op over its cases, and the first failure.
#[derive(Default)]
pub struct OpSummary {
    pub cases: usize,
    pub failures: usize,
    pub max_abs_err: f64,
    pub max_rel_err: f64,
    /// The largest error over its element's bound: 1 or more fails.
    pub max_ratio: f64,
    pub first_failure: Option<String>,
}

impl OpSummary {
    fn record(&mut self, report: &Comparison, describe: impl FnOnce() -> String) {
        self.max_abs_err = self.max_abs_err.max(report.max_abs_err);
        self.max_ratio = self.max_ratio.max(report.worst_ratio);
        if report.max_rel_err.is_finite() {
            self.max_rel_err = self.max_rel_err.max(report.max_rel_err);
        }
        if !report.passed() {
            self.failures += 1;
            if self.first_failure.is_none() {
                self.first_failure = Some(format!("{}: {report}", describe()));
            }
        }
    }
}

pub fn run(args: &CheckArgs) -> wgconv::Result<Outcome> {
    let gpu = Gpu::new()?;
    let ops: Vec<CheckOp> = if args.op == CheckOp::All {
        OPS.to_vec()
    } else {
        vec![args.op]
    };
    let summaries = sweep(
        &gpu,
        &ops,
        args.cases,
        args.seed,
        std::io::stderr().is_terminal(),
    )?;
    println!(
        "{:<24} {:>6} {:>9} {:>11} {:>11} {:>11}",
        "op", "cases", "failures", "max abs", "max rel", "err/bound"
    );
    let mut any_failure = false;
    for (op, s) in ops.iter().zip(&summaries) {
        println!(
            "{:<24} {:>6} {:>9} {:>11.3e} {:>11.3e} {:>11.4}",
            op_name(*op),
            s.cases,
            s.failures,
            s.max_abs_err,
            s.max_rel_err,
            s.max_ratio
        );
        any_failure |= s.failures > 0;
    }
    for (op, s) in ops.iter().zip(&summaries) {
        if let Some(f) = &s.first_failure {
            println!("MISMATCH {}: {f}", op_name(*op));
        }
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "seed": args.seed,
            "cases_per_op": args.cases,
            "adapter": gpu.adapter_info().name,
            "ops": ops.iter().zip(&summaries).map(|(op, s)| serde_json::json!({
                "op": op_name(*op),
                "cases": s.cases,
                "failures": s.failures,
                "max_abs_err": s.max_abs_err,
                "max_rel_err": s.max_rel_err,
                "max_error_over_bound": s.max_ratio,
                "first_failure": s.first_failure,
            })).collect::<Vec<_>>(),
        });
        std::fs::write(
            path,
            serde_json::to_string_pretty(&json).expect("JSON values serialise"),
        )
        .map_err(|e| wgconv::Error::InvalidArgument {
            op: "wgconv check",
            what: format!("cannot write {}: {e}", path.display()),
        })?;
    }
    Ok(if any_failure {
        Outcome::Mismatch
    } else {
        Outcome::Ok
    })
}

/// Runs `cases` random cases of each op; also used by the main job.
pub fn sweep(
    gpu: &Gpu,
    ops: &[CheckOp],
    cases: usize,
    seed: u64,
    progress: bool,
) -> wgconv::Result<Vec<OpSummary>> {
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new((ops.len() * cases) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:<24} [{bar:40}] {pos}/{len} {elapsed}")
                .expect("valid template"),
        );
        bar
    });
    let mut summaries = Vec::new();
    for &op in ops {
        if let Some(bar) = &bar {
            bar.set_message(op_name(op));
        }
        let mut summary = OpSummary::default();
        for case in 0..cases {
            // Each case has its own generator, so `--seed S` reproduces any single case.
            let mut rng = Rng::new(
                seed.wrapping_mul(0x9E37_79B9)
                    .wrapping_add((op as u64) << 32 | case as u64),
            );
            check_case(gpu, op, &mut rng, &mut summary, || {
                format!("seed {seed} case {case}")
            })?;
            summary.cases += 1;
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
        if bar.is_none() && !progress {
            eprintln!(
                "checked {} x {}: {} failures",
                op_name(op),
                summary.cases,
                summary.failures
            );
        }
        summaries.push(summary);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(summaries)
}

fn tensor(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> wgconv::Result<GpuTensor> {
    GpuTensor::upload_with_layout(gpu, a.view(), layout)
}

fn check_case(
    gpu: &Gpu,
    op: CheckOp,
    rng: &mut Rng,
    summary: &mut OpSummary,
    id: impl Fn() -> String,
) -> wgconv::Result<()> {
    let layout = if rng.chance(50) {
        Layout::Nhwc
    } else {
        Layout::Nchw
    };
    match op {
        CheckOp::MaxPool2d | CheckOp::MaxPool2dBackward => {
            let (shape, p) = random_pool_case(rng);
            let p = p.with_layout(layout);
            let shape = layout.activation_shape(shape);
            let x = rng.array4(shape);
            let (values, indices) = cpu::max_pool2d_with_indices(x.view(), &p)?;
            let (v, i) = wgconv::max_pool2d_with_indices(&tensor(gpu, &x, layout)?, &p)?;
            let describe = || format!("{} input {shape:?} {p:?}", id());
            if op == CheckOp::MaxPool2d {
                let mut report = compare(v.read()?.view(), values.view(), Tolerance::exact());
                if i.read_indices()? != indices {
                    report.failures += 1;
                }
                summary.record(&report, describe);
            } else {
                let dy = rng.array4(values.dim().into());
                let want = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p)?;
                let got = wgconv::max_pool2d_backward(&tensor(gpu, &dy, layout)?, &i, shape, &p)?
                    .read()?;
                let bound = ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, &p)?;
                summary.record(&compare(got.view(), want.view(), &bound), describe);
            }
        }
        CheckOp::ActivationBackward => {
            let activation = [
                Activation::Relu,
                Activation::Sigmoid,
                Activation::Tanh,
                Activation::LeakyRelu { slope: 0.2 },
            ][rng.range(0, 3)];
            let saved = if rng.chance(50) {
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
            let saved_values = if saved == SavedTensor::Output {
                z.mapv(|v| activation.apply(f64::from(v)) as f32)
            } else {
                z
            };
            let dy = rng.array4(shape);
            let want = cpu::activation_backward(dy.view(), saved_values.view(), activation, saved)?;
            let got = wgconv::activation_backward(
                &tensor(gpu, &dy, Layout::Nchw)?,
                &tensor(gpu, &saved_values, Layout::Nchw)?,
                activation,
                saved,
            )?
            .read()?;
            let bound = ErrorBound::activation_backward(dy.view(), activation, saved);
            summary.record(&compare(got.view(), want.view(), &bound), || {
                format!("{} {activation:?} {saved:?} {shape:?}", id())
            });
        }
        _ => {
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
            let describe = || {
                format!(
                    "{} input {:?} weight {:?} {p:?}",
                    id(),
                    g.input_shape(),
                    g.weight_shape()
                )
            };
            match op {
                CheckOp::Conv2d => {
                    let b = rng.array1(g.out_channels);
                    let activation =
                        [Activation::None, Activation::Relu, Activation::Tanh][rng.range(0, 2)];
                    let want = cpu::conv2d_with_activation(
                        x.view(),
                        w.view(),
                        Some(b.view()),
                        &p,
                        activation,
                    )?;
                    let got = wgconv::conv2d_with_activation(
                        &tensor(gpu, &x, layout)?,
                        &tensor(gpu, &w, layout)?,
                        Some(&GpuTensor::upload_1d(gpu, b.view())?),
                        &p,
                        activation,
                    )?
                    .read()?;
                    let bound = ErrorBound::conv2d_with_activation(
                        x.view(),
                        w.view(),
                        Some(b.view()),
                        &p,
                        activation,
                    )?;
                    summary.record(&compare(got.view(), want.view(), &bound), describe);
                }
                CheckOp::ConvTranspose2d => {
                    // The conv's geometry read backwards: its output is this op's input.
                    let tp = ConvTranspose2dParams {
                        stride: p.stride,
                        padding: match p.padding {
                            Padding::Same => Padding::Valid,
                            other => other,
                        },
                        output_padding: [0, 0],
                        dilation: p.dilation,
                        groups: p.groups,
                        layout,
                        flip: p.flip,
                    };
                    let input = rng.array4(g.output_shape());
                    // Transposed weights are [C_in, C_out/g, kh, kw]: the conv's OIHW weight read
                    // as (conv out = transposed in, conv in/g = transposed out/g).
                    let Ok(_) = tp.geometry("check", g.output_shape(), g.weight_shape(), None)
                    else {
                        return Ok(());
                    };
                    let want = cpu::conv_transpose2d(input.view(), w.view(), None, &tp)?;
                    let got = wgconv::conv_transpose2d(
                        &tensor(gpu, &input, layout)?,
                        &tensor(gpu, &w, layout)?,
                        None,
                        &tp,
                    )?
                    .read()?;
                    let tol = &ErrorBound::conv_transpose2d(input.view(), w.view(), None, &tp)?;
                    summary.record(&compare(got.view(), want.view(), tol), || {
                        format!(
                            "{} input {:?} weight {:?} {tp:?}",
                            id(),
                            g.output_shape(),
                            g.weight_shape()
                        )
                    });
                }
                _ => {
                    let dy = rng.array4(g.output_shape());
                    let which = match op {
                        CheckOp::Conv2dBackwardInput => GradSelection::INPUT,
                        CheckOp::Conv2dBackwardWeight => GradSelection::WEIGHT,
                        _ => GradSelection::BIAS,
                    };
                    let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, which)?;
                    let got = wgconv::conv2d_backward(
                        &tensor(gpu, &x, layout)?,
                        &tensor(gpu, &w, layout)?,
                        &tensor(gpu, &dy, layout)?,
                        &p,
                        which,
                    )?;
                    let bounds =
                        ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, which)?;
                    let report = if let (Some(a), Some(b)) = (got.input, want.input) {
                        compare(
                            a.read()?.view(),
                            b.view(),
                            bounds.input.as_ref().expect("requested"),
                        )
                    } else if let (Some(a), Some(b)) = (got.weight, want.weight) {
                        let bound = bounds.weight.as_ref().expect("requested");
                        compare(a.read()?.view(), b.view(), bound)
                    } else {
                        let (a, b) = (got.bias.expect("requested"), want.bias.expect("requested"));
                        compare(
                            a.read_1d()?.view(),
                            b.view(),
                            bounds.bias.as_ref().expect("requested"),
                        )
                    };
                    summary.record(&report, describe);
                }
            }
        }
    }
    Ok(())
}
