//! `wgconv run OP`: one op on .npy files (or .npz members), flags named like PyTorch's arguments.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use ndarray::{Array1, Array4, ArrayD, ArrayViewD, Ix1, Ix4, IxDyn};
use wgconv::npy::{self, NpyArray};
use wgconv::{
    compare, cpu, flags, Comparison, Conv2dParams, ConvTranspose2dParams, Error, ErrorBound, Gpu,
    GpuTensor, GradSelection, Layout, Pool2dParams, Tolerance,
};

use crate::Outcome;

#[derive(Clone, Copy, ValueEnum)]
pub enum Op {
    Conv2d,
    Conv2dBackward,
    ConvTranspose2d,
    MaxPool2d,
    MaxPool2dBackward,
}

#[derive(Args)]
pub struct RunArgs {
    /// The op to run.
    op: Op,
    /// Run on the CPU reference instead of the GPU.
    #[arg(long, conflicts_with = "gpu")]
    cpu: bool,
    /// Run on the GPU (the default).
    #[arg(long)]
    gpu: bool,
    #[arg(long, value_name = "NAME", conflicts_with = "cpu", help = crate::adapters::HELP)]
    adapter: Option<String>,
    /// Compare the op's result with REF.npy (from PyTorch, JAX, TensorFlow...) under its
    /// per-element error bound (pooling: exactly); exit 1 naming the worst element if outside.
    /// conv2d-backward compares the one gradient it is asked for.
    #[arg(long, value_name = "REF.npy")]
    expect: Option<PathBuf>,
    #[command(flatten)]
    pub f: OpFlags,
}

/// The op's files and parameters, shared by `wgconv run` and `wgconv compare`.
#[derive(Args)]
pub struct OpFlags {
    /// X.npy, or ARCHIVE.npz:NAME for one array of an np.savez archive (every array read takes either).
    #[arg(long)]
    input: Option<PathBuf>,
    #[arg(long)]
    weight: Option<PathBuf>,
    #[arg(long)]
    bias: Option<PathBuf>,
    /// Always written as .npy, as are the other outputs.
    #[arg(long)]
    output: Option<PathBuf>,
    #[arg(long)]
    grad_output: Option<PathBuf>,
    #[arg(long)]
    grad_input: Option<PathBuf>,
    #[arg(long)]
    grad_weight: Option<PathBuf>,
    #[arg(long)]
    grad_bias: Option<PathBuf>,
    /// Pooling indices: written by max-pool2d, read by max-pool2d-backward (int64).
    #[arg(long)]
    indices: Option<PathBuf>,
    /// S or SH,SW.
    #[arg(long)]
    stride: Option<String>,
    /// Convolution: P, PH,PW, T,B,L,R, valid or same. Pooling: P or PH,PW.
    #[arg(long)]
    padding: Option<String>,
    /// D or DH,DW.
    #[arg(long)]
    dilation: Option<String>,
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// nchw (weights OIHW, the default) or nhwc (weights HWIO).
    #[arg(long, default_value = "nchw")]
    pub layout: String,
    /// True convolution (kernel flipped).
    #[arg(long)]
    flip: bool,
    /// conv-transpose2d: P or PH,PW.
    #[arg(long)]
    output_padding: Option<String>,
    /// Pooling window: K or KH,KW.
    #[arg(long)]
    kernel: Option<String>,
    #[arg(long)]
    ceil_mode: bool,
    /// max-pool2d-backward: the forward input's shape N,C,H,W (in the layout's order).
    #[arg(long)]
    input_shape: Option<String>,
}

fn usage(what: String) -> Error {
    Error::InvalidArgument {
        op: "wgconv run",
        what,
    }
}

fn required<'a>(path: &'a Option<PathBuf>, flag: &str) -> wgconv::Result<&'a Path> {
    path.as_deref()
        .ok_or_else(|| usage(format!("--{flag} is required for this op")))
}

pub fn read_f32<D: ndarray::Dimension>(
    path: &Path,
    what: &str,
) -> wgconv::Result<ndarray::Array<f32, D>> {
    match npy::read(path)? {
        NpyArray::F32(a) if a.is_empty() => Err(usage(format!(
            "{}: {what} has shape {:?}, with a dimension 0 (no op takes an empty tensor)",
            path.display(),
            a.shape()
        ))),
        NpyArray::F32(a) => {
            let shape = a.shape().to_vec();
            a.into_dimensionality::<D>().map_err(|_| {
                usage(format!(
                    "{}: {what} must have {} dimensions, found shape {shape:?}",
                    path.display(),
                    D::NDIM.unwrap_or(0)
                ))
            })
        }
        NpyArray::I64(_) => Err(usage(format!(
            "{}: {what} must be float32, found int64",
            path.display()
        ))),
    }
}

fn read_indices(path: &Path) -> wgconv::Result<Array4<i64>> {
    match npy::read(path)? {
        NpyArray::I64(a) => {
            let shape = a.shape().to_vec();
            a.into_dimensionality::<Ix4>().map_err(|_| {
                usage(format!(
                    "{}: indices must have 4 dimensions, found shape {shape:?}",
                    path.display()
                ))
            })
        }
        NpyArray::F32(_) => Err(usage(format!(
            "{}: indices must be int64 (PyTorch's dtype), found float32",
            path.display()
        ))),
    }
}

/// Outputs are collected first and written only once every one is computed, each atomically.
enum Out {
    F32(PathBuf, ArrayD<f32>),
    I64(PathBuf, ArrayD<i64>),
}

/// Outputs are .npy files only: a `.npz` name is refused before any work, rather than given
/// a file that is not the archive its name promises; two outputs at one path are refused too,
/// rather than the second silently replacing the first.
fn check_outputs(args: &RunArgs) -> wgconv::Result<()> {
    let f = &args.f;
    let outputs: Vec<(&str, &Path)> = [
        ("output", &f.output),
        ("grad-input", &f.grad_input),
        ("grad-weight", &f.grad_weight),
        ("grad-bias", &f.grad_bias),
        ("indices", &f.indices),
    ]
    .into_iter()
    .filter(|(flag, _)| args.op.output_flags().contains(flag))
    .filter_map(|(flag, path)| path.as_deref().map(|p| (flag, p)))
    .collect();
    for (i, &(flag, path)) in outputs.iter().enumerate() {
        if npy::is_npz_source(path) {
            return Err(usage(format!(
                "--{flag} {}: outputs are written as .npy files (.npz archives are only read)",
                path.display()
            )));
        }
        if let Some((other, _)) = outputs[..i].iter().find(|(_, p)| same_file_name(p, path)) {
            return Err(usage(format!(
                "--{other} and --{flag} both name {}: each output needs a file of its own",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Whether two output paths name one file, as far as their spelling tells ("./a.npy" and
/// "a.npy" do; links are not followed, since the files need not exist yet).
fn same_file_name(a: &Path, b: &Path) -> bool {
    let absolute = |p: &Path| std::path::absolute(p).map(|p| p.components().collect::<PathBuf>());
    match (absolute(a), absolute(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The flags an op reads (`layout` applies to every op); any other flag given is refused,
/// not ignored, so that a misplaced `--kernel` or `--indices` cannot pass for a used one.
fn check_flags_apply(op: Op, f: &OpFlags, reads: &[&str]) -> wgconv::Result<()> {
    let given = [
        ("input", f.input.is_some()),
        ("weight", f.weight.is_some()),
        ("bias", f.bias.is_some()),
        ("output", f.output.is_some()),
        ("grad-output", f.grad_output.is_some()),
        ("grad-input", f.grad_input.is_some()),
        ("grad-weight", f.grad_weight.is_some()),
        ("grad-bias", f.grad_bias.is_some()),
        ("indices", f.indices.is_some()),
        ("stride", f.stride.is_some()),
        ("padding", f.padding.is_some()),
        ("dilation", f.dilation.is_some()),
        ("groups", f.groups != 1),
        ("flip", f.flip),
        ("output-padding", f.output_padding.is_some()),
        ("kernel", f.kernel.is_some()),
        ("ceil-mode", f.ceil_mode),
        ("input-shape", f.input_shape.is_some()),
    ];
    match given
        .iter()
        .find(|(flag, set)| *set && !reads.contains(flag))
    {
        Some((flag, _)) if reads.is_empty() => Err(usage(format!(
            "--{flag} does not apply to {} without --input (its results are then judged from \
             the files alone)",
            op.name()
        ))),
        Some((flag, _)) => Err(usage(format!(
            "--{flag} does not apply to {} (it reads --{})",
            op.name(),
            reads.join(", --")
        ))),
        None => Ok(()),
    }
}

impl Op {
    /// The op as the command line names it.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }

    /// The flags `wgconv run` reads for this op.
    fn run_flags(self) -> &'static [&'static str] {
        const CONV: [&str; 5] = ["stride", "padding", "dilation", "groups", "flip"];
        const POOL: [&str; 5] = ["kernel", "stride", "padding", "dilation", "ceil-mode"];
        match self {
            Op::Conv2d => &[
                "input", "weight", "bias", "output", CONV[0], CONV[1], CONV[2], CONV[3], CONV[4],
            ],
            Op::Conv2dBackward => &[
                "input",
                "weight",
                "grad-output",
                "grad-input",
                "grad-weight",
                "grad-bias",
                CONV[0],
                CONV[1],
                CONV[2],
                CONV[3],
                CONV[4],
            ],
            Op::ConvTranspose2d => &[
                "input",
                "weight",
                "bias",
                "output",
                "output-padding",
                CONV[0],
                CONV[1],
                CONV[2],
                CONV[3],
                CONV[4],
            ],
            Op::MaxPool2d => &[
                "input", "output", "indices", POOL[0], POOL[1], POOL[2], POOL[3], POOL[4],
            ],
            Op::MaxPool2dBackward => &[
                "grad-output",
                "indices",
                "input-shape",
                "output",
                POOL[0],
                POOL[1],
                POOL[2],
                POOL[3],
                POOL[4],
            ],
        }
    }

    /// The files this op writes under `wgconv run`.
    fn output_flags(self) -> &'static [&'static str] {
        match self {
            Op::Conv2dBackward => &["grad-input", "grad-weight", "grad-bias"],
            Op::MaxPool2d => &["output", "indices"],
            _ => &["output"],
        }
    }
}

/// [`check_flags_apply`] for `wgconv compare`: the flags `run` reads but its outputs, which
/// are the inputs and parameters the judgement depends on; for the bias gradient, grad_output
/// alone. Max pooling is judged exactly, from the files, unless `--input` is given: then its
/// window flags fix the shape the files must have, and without it they are refused.
pub fn check_compare_flags(op: Op, f: &OpFlags, gradient: Option<Gradient>) -> wgconv::Result<()> {
    if gradient.is_some() && !matches!(op, Op::Conv2dBackward) {
        return Err(usage(format!(
            "--gradient applies to conv2d-backward, not to {}",
            op.name()
        )));
    }
    let reads: Vec<&str> = match (op, gradient) {
        (Op::Conv2dBackward, Some(Gradient::Bias)) => vec!["grad-output"],
        (Op::MaxPool2d, _) if f.input.is_none() => Vec::new(),
        _ => op
            .run_flags()
            .iter()
            .copied()
            .filter(|flag| !op.output_flags().contains(flag))
            .collect(),
    };
    check_flags_apply(op, f, &reads)
}

pub fn run(args: &RunArgs) -> wgconv::Result<Outcome> {
    check_flags_apply(args.op, &args.f, args.op.run_flags())?;
    check_outputs(args)?;
    let layout = flags::layout(&args.f.layout)?;
    let gpu = if args.cpu {
        None
    } else {
        Some(crate::adapters::open_one(args.adapter.as_deref())?)
    };
    let outputs = match args.op {
        Op::Conv2d => conv2d(args, layout, gpu.as_ref())?,
        Op::Conv2dBackward => conv2d_backward(args, layout, gpu.as_ref())?,
        Op::ConvTranspose2d => conv_transpose2d(args, layout, gpu.as_ref())?,
        Op::MaxPool2d => max_pool2d(args, layout, gpu.as_ref())?,
        Op::MaxPool2dBackward => max_pool2d_backward(args, layout, gpu.as_ref())?,
    };
    // Judged before anything is written: a bad reference file is an error, not half a run.
    let judged = match &args.expect {
        Some(reference) => {
            let gradient = match args.op {
                Op::Conv2dBackward => Some(requested_gradient(&args.f)?),
                _ => None,
            };
            let judge = Judge::of(args.op, &args.f, layout, gradient)?;
            let got = match outputs.first() {
                Some(Out::F32(_, a)) => a,
                _ => unreachable!("every op's first output is its values"),
            };
            Some(judge.compare(got, &read_f32::<IxDyn>(reference, "reference")?)?)
        }
        None => None,
    };
    let files: Vec<(PathBuf, Vec<u8>)> = outputs
        .into_iter()
        .map(|out| match out {
            Out::F32(path, a) => (path, npy::to_bytes_f32(a.view())),
            Out::I64(path, a) => (path, npy::to_bytes_i64(a.view())),
        })
        .collect();
    let files: Vec<(&Path, &[u8])> = files.iter().map(|(p, b)| (p.as_path(), &b[..])).collect();
    npy::write_all_atomically(&files)?;
    Ok(match judged {
        Some(report) => report_outcome("result", &report),
        None => Outcome::Ok,
    })
}

/// Prints a comparison in one line and says whether it passed.
pub fn report_outcome(what: &str, report: &Comparison) -> Outcome {
    println!("{what} against the reference: {report}");
    if report.passed() {
        println!("PASS");
        Outcome::Ok
    } else {
        println!("MISMATCH");
        Outcome::Mismatch
    }
}

/// The gradient of conv2d-backward a comparison is about.
#[derive(Clone, Copy, ValueEnum)]
pub enum Gradient {
    Input,
    Weight,
    Bias,
}

/// With `--expect`, conv2d-backward must be asked for exactly one gradient: the one compared.
fn requested_gradient(f: &OpFlags) -> wgconv::Result<Gradient> {
    match (&f.grad_input, &f.grad_weight, &f.grad_bias) {
        (Some(_), None, None) => Ok(Gradient::Input),
        (None, Some(_), None) => Ok(Gradient::Weight),
        (None, None, Some(_)) => Ok(Gradient::Bias),
        _ => Err(usage(
            "--expect with conv2d-backward compares one gradient: give exactly one of \
             --grad-input, --grad-weight, --grad-bias"
                .into(),
        )),
    }
}

/// How a result of the op is judged against a reference: exactly (max pooling, whose output
/// shape is known when its input is given), or each element within the error bound its
/// summation allows (`wgconv::ErrorBound`, as `wgconv check` uses).
pub enum Judge {
    Exact(Option<[usize; 4]>),
    Bound(ErrorBound<IxDyn>),
}

impl Judge {
    /// The judge for `op` on the files and parameters of `f`.
    pub fn of(
        op: Op,
        f: &OpFlags,
        layout: Layout,
        gradient: Option<Gradient>,
    ) -> wgconv::Result<Judge> {
        let read4 = |path: &Option<PathBuf>, flag: &str| -> wgconv::Result<Array4<f32>> {
            read_f32::<Ix4>(required(path, flag)?, flag)
        };
        let bias = || -> wgconv::Result<Option<Array1<f32>>> {
            f.bias
                .as_deref()
                .map(|path| read_f32::<Ix1>(path, "bias"))
                .transpose()
        };
        Ok(match op {
            Op::MaxPool2d => match &f.input {
                Some(path) => {
                    let x = read_f32::<Ix4>(path, "input")?;
                    let g = pool_params(f, layout)?.geometry("max_pool2d", x.dim().into())?;
                    Judge::Exact(Some(g.output_shape()))
                }
                None => Judge::Exact(None),
            },
            Op::Conv2d => {
                let (x, w, b) = (
                    read4(&f.input, "input")?,
                    read4(&f.weight, "weight")?,
                    bias()?,
                );
                let p = conv_params(f, layout)?;
                let bound =
                    ErrorBound::conv2d(x.view(), w.view(), b.as_ref().map(|b| b.view()), &p)?;
                Judge::Bound(bound.into_dyn())
            }
            Op::ConvTranspose2d => {
                let (x, w, b) = (
                    read4(&f.input, "input")?,
                    read4(&f.weight, "weight")?,
                    bias()?,
                );
                let p = transpose_params(f, layout)?;
                let bound = ErrorBound::conv_transpose2d(
                    x.view(),
                    w.view(),
                    b.as_ref().map(|b| b.view()),
                    &p,
                )?;
                Judge::Bound(bound.into_dyn())
            }
            Op::Conv2dBackward => {
                let gradient = gradient.ok_or_else(|| {
                    usage("conv2d-backward: say which gradient with --gradient".into())
                })?;
                let which = match gradient {
                    Gradient::Input => GradSelection::INPUT,
                    Gradient::Weight => GradSelection::WEIGHT,
                    Gradient::Bias => GradSelection::BIAS,
                };
                let dy = read4(&f.grad_output, "grad-output")?;
                // The bias gradient sums grad_output alone: it needs no input or weight.
                if matches!(gradient, Gradient::Bias) {
                    let bound = ErrorBound::conv2d_backward_bias(dy.view(), layout)?;
                    return Ok(Judge::Bound(bound.into_dyn()));
                }
                let (x, w) = (read4(&f.input, "input")?, read4(&f.weight, "weight")?);
                let p = conv_params(f, layout)?;
                let b = ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, which)?;
                let bound = match gradient {
                    Gradient::Input => b.input.map(ErrorBound::into_dyn),
                    Gradient::Weight => b.weight.map(ErrorBound::into_dyn),
                    Gradient::Bias => b.bias.map(ErrorBound::into_dyn),
                };
                Judge::Bound(bound.expect("the selected gradient has a bound"))
            }
            Op::MaxPool2dBackward => {
                let p = pool_params(f, layout)?;
                let shape = input_shape(f)?;
                let dy = read4(&f.grad_output, "grad-output")?;
                let indices = read_indices(required(&f.indices, "indices")?)?;
                let bound = ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, &p)?;
                Judge::Bound(bound.into_dyn())
            }
        })
    }

    /// `got` against `expected`; shapes must match.
    pub fn compare(&self, got: &ArrayD<f32>, expected: &ArrayD<f32>) -> wgconv::Result<Comparison> {
        if got.shape() != expected.shape() {
            return Err(usage(format!(
                "the result has shape {:?} and the reference {:?}",
                got.shape(),
                expected.shape()
            )));
        }
        if let Judge::Exact(shape) = self {
            if got.ndim() != 4 {
                return Err(usage(format!(
                    "the files have shape {:?}, but max pooling's results are 4-D",
                    got.shape()
                )));
            }
            if let Some(shape) = shape.filter(|s| s[..] != *got.shape()) {
                return Err(usage(format!(
                    "the files have shape {:?}, but max pooling this input gives {shape:?}",
                    got.shape()
                )));
            }
        }
        if let Judge::Bound(bound) = self {
            if bound.magnitude.shape() != got.shape() {
                return Err(usage(format!(
                    "the files have shape {:?}, but the op on these inputs gives {:?}",
                    got.shape(),
                    bound.magnitude.shape()
                )));
            }
        }
        Ok(self.report(got.view(), expected.view()))
    }

    /// `got` against `expected`, element by element; a shape mismatch fails every element.
    pub fn report(&self, got: ArrayViewD<f32>, expected: ArrayViewD<f32>) -> Comparison {
        match self {
            Judge::Exact(_) => compare(got, expected, Tolerance::exact()),
            Judge::Bound(bound) => compare(got, expected, bound),
        }
    }
}

fn conv_params(f: &OpFlags, layout: Layout) -> wgconv::Result<Conv2dParams> {
    let mut p = Conv2dParams::default()
        .with_groups(f.groups)
        .with_layout(layout)
        .with_flip(f.flip);
    if let Some(s) = &f.stride {
        p.stride = flags::pair("stride", s)?;
    }
    if let Some(s) = &f.padding {
        p.padding = flags::padding(s)?;
    }
    if let Some(s) = &f.dilation {
        p.dilation = flags::pair("dilation", s)?;
    }
    Ok(p)
}

fn upload(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> wgconv::Result<GpuTensor> {
    GpuTensor::upload_with_layout(gpu, a.view(), layout)
}

/// What conv2d and conv-transpose2d read: input, weight, optional bias, and the output path.
struct ConvOperands<'a> {
    x: Array4<f32>,
    w: Array4<f32>,
    b: Option<Array1<f32>>,
    output: &'a Path,
}

impl<'a> ConvOperands<'a> {
    fn read(args: &'a RunArgs) -> wgconv::Result<Self> {
        Ok(Self {
            x: read_f32::<Ix4>(required(&args.f.input, "input")?, "input")?,
            w: read_f32::<Ix4>(required(&args.f.weight, "weight")?, "weight")?,
            b: args
                .f
                .bias
                .as_deref()
                .map(|path| read_f32::<Ix1>(path, "bias"))
                .transpose()?,
            output: required(&args.f.output, "output")?,
        })
    }
}

fn upload_bias(gpu: &Gpu, b: Option<&Array1<f32>>) -> wgconv::Result<Option<GpuTensor>> {
    b.map(|b| GpuTensor::upload_1d(gpu, b.view())).transpose()
}

fn conv2d(args: &RunArgs, layout: Layout, gpu: Option<&Gpu>) -> wgconv::Result<Vec<Out>> {
    let p = conv_params(&args.f, layout)?;
    let ConvOperands { x, w, b, output } = ConvOperands::read(args)?;
    let y = match gpu {
        None => cpu::conv2d(x.view(), w.view(), b.as_ref().map(|b| b.view()), &p)?,
        Some(gpu) => {
            let bt = upload_bias(gpu, b.as_ref())?;
            wgconv::conv2d(
                &upload(gpu, &x, layout)?,
                &upload(gpu, &w, layout)?,
                bt.as_ref(),
                &p,
            )?
            .read()?
        }
    };
    Ok(vec![Out::F32(output.to_path_buf(), y.into_dyn())])
}

fn conv2d_backward(args: &RunArgs, layout: Layout, gpu: Option<&Gpu>) -> wgconv::Result<Vec<Out>> {
    let p = conv_params(&args.f, layout)?;
    let which = GradSelection {
        input: args.f.grad_input.is_some(),
        weight: args.f.grad_weight.is_some(),
        bias: args.f.grad_bias.is_some(),
    };
    if !(which.input || which.weight || which.bias) {
        return Err(usage(
            "give at least one of --grad-input, --grad-weight, --grad-bias".into(),
        ));
    }
    let x: Array4<f32> = read_f32::<Ix4>(required(&args.f.input, "input")?, "input")?;
    let w: Array4<f32> = read_f32::<Ix4>(required(&args.f.weight, "weight")?, "weight")?;
    let dy: Array4<f32> =
        read_f32::<Ix4>(required(&args.f.grad_output, "grad-output")?, "grad_output")?;
    let grads = match gpu {
        None => cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, which)?,
        Some(gpu) => {
            let g = wgconv::conv2d_backward(
                &upload(gpu, &x, layout)?,
                &upload(gpu, &w, layout)?,
                &upload(gpu, &dy, layout)?,
                &p,
                which,
            )?;
            wgconv::Conv2dGrads {
                input: g.input.map(|t| t.read()).transpose()?,
                weight: g.weight.map(|t| t.read()).transpose()?,
                bias: g.bias.map(|t| t.read_1d()).transpose()?,
            }
        }
    };
    let mut outputs = Vec::new();
    if let (Some(path), Some(a)) = (&args.f.grad_input, grads.input) {
        outputs.push(Out::F32(path.clone(), a.into_dyn()));
    }
    if let (Some(path), Some(a)) = (&args.f.grad_weight, grads.weight) {
        outputs.push(Out::F32(path.clone(), a.into_dyn()));
    }
    if let (Some(path), Some(a)) = (&args.f.grad_bias, grads.bias) {
        outputs.push(Out::F32(path.clone(), a.into_dyn()));
    }
    Ok(outputs)
}

fn transpose_params(f: &OpFlags, layout: Layout) -> wgconv::Result<ConvTranspose2dParams> {
    let mut p = ConvTranspose2dParams {
        groups: f.groups,
        layout,
        flip: f.flip,
        ..Default::default()
    };
    if let Some(s) = &f.stride {
        p.stride = flags::pair("stride", s)?;
    }
    if let Some(s) = &f.padding {
        p.padding = flags::padding(s)?;
    }
    if let Some(s) = &f.dilation {
        p.dilation = flags::pair("dilation", s)?;
    }
    if let Some(s) = &f.output_padding {
        p.output_padding = flags::pair("output-padding", s)?;
    }
    Ok(p)
}

fn conv_transpose2d(args: &RunArgs, layout: Layout, gpu: Option<&Gpu>) -> wgconv::Result<Vec<Out>> {
    let p = transpose_params(&args.f, layout)?;
    let ConvOperands { x, w, b, output } = ConvOperands::read(args)?;
    let y = match gpu {
        None => cpu::conv_transpose2d(x.view(), w.view(), b.as_ref().map(|b| b.view()), &p)?,
        Some(gpu) => {
            let bt = upload_bias(gpu, b.as_ref())?;
            wgconv::conv_transpose2d(
                &upload(gpu, &x, layout)?,
                &upload(gpu, &w, layout)?,
                bt.as_ref(),
                &p,
            )?
            .read()?
        }
    };
    Ok(vec![Out::F32(output.to_path_buf(), y.into_dyn())])
}

fn pool_params(f: &OpFlags, layout: Layout) -> wgconv::Result<Pool2dParams> {
    let kernel = flags::pair(
        "kernel",
        f.kernel
            .as_deref()
            .ok_or_else(|| usage("--kernel is required for pooling".into()))?,
    )?;
    let mut p = Pool2dParams::new(kernel[0], kernel[1])
        .with_layout(layout)
        .with_ceil_mode(f.ceil_mode);
    if let Some(s) = &f.stride {
        p.stride = flags::pair("stride", s)?;
    }
    if let Some(s) = &f.padding {
        p.padding = flags::pair("padding", s)?;
    }
    if let Some(s) = &f.dilation {
        p.dilation = flags::pair("dilation", s)?;
    }
    Ok(p)
}

fn max_pool2d(args: &RunArgs, layout: Layout, gpu: Option<&Gpu>) -> wgconv::Result<Vec<Out>> {
    let p = pool_params(&args.f, layout)?;
    let x: Array4<f32> = read_f32::<Ix4>(required(&args.f.input, "input")?, "input")?;
    let output = required(&args.f.output, "output")?;
    let (values, indices) = match gpu {
        None => cpu::max_pool2d_with_indices(x.view(), &p)?,
        Some(gpu) => {
            let (v, i) = wgconv::max_pool2d_with_indices(&upload(gpu, &x, layout)?, &p)?;
            (v.read()?, i.read_indices()?)
        }
    };
    let mut outputs = vec![Out::F32(output.to_path_buf(), values.into_dyn())];
    if let Some(path) = &args.f.indices {
        outputs.push(Out::I64(path.clone(), indices.into_dyn()));
    }
    Ok(outputs)
}

fn input_shape(f: &OpFlags) -> wgconv::Result<[usize; 4]> {
    flags::shape4(
        "input-shape",
        f.input_shape
            .as_deref()
            .ok_or_else(|| usage("--input-shape is required for max-pool2d-backward".into()))?,
    )
}

fn max_pool2d_backward(
    args: &RunArgs,
    layout: Layout,
    gpu: Option<&Gpu>,
) -> wgconv::Result<Vec<Out>> {
    let p = pool_params(&args.f, layout)?;
    let input_shape = input_shape(&args.f)?;
    let dy: Array4<f32> =
        read_f32::<Ix4>(required(&args.f.grad_output, "grad-output")?, "grad_output")?;
    let indices = read_indices(required(&args.f.indices, "indices")?)?;
    let output = required(&args.f.output, "output")?;
    let dx = match gpu {
        None => cpu::max_pool2d_backward(dy.view(), indices.view(), input_shape, &p)?,
        Some(gpu) => {
            let it = GpuTensor::upload_indices(gpu, indices.view(), layout)?;
            wgconv::max_pool2d_backward(&upload(gpu, &dy, layout)?, &it, input_shape, &p)?.read()?
        }
    };
    Ok(vec![Out::F32(output.to_path_buf(), dx.into_dyn())])
}
