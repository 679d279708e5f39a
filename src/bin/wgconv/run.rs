//! `wgconv run OP`: one op on .npy files (or .npz members), flags named like PyTorch's arguments.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use ndarray::{Array1, Array4, ArrayD, Ix1, Ix4};
use wgconv::npy::{self, NpyArray};
use wgconv::{
    cpu, flags, Conv2dParams, ConvTranspose2dParams, Error, Gpu, GpuTensor, GradSelection, Layout,
    Pool2dParams,
};

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
    layout: String,
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

fn read_f32<D: ndarray::Dimension>(
    path: &Path,
    what: &str,
) -> wgconv::Result<ndarray::Array<f32, D>> {
    match npy::read(path)? {
        NpyArray::F32(a) => a.into_dimensionality::<D>().map_err(|_| {
            usage(format!(
                "{}: {what} must have {} dimensions",
                path.display(),
                D::NDIM.unwrap_or(0)
            ))
        }),
        NpyArray::I64(_) => Err(usage(format!(
            "{}: {what} must be float32, found int64",
            path.display()
        ))),
    }
}

fn read_indices(path: &Path) -> wgconv::Result<Array4<i64>> {
    match npy::read(path)? {
        NpyArray::I64(a) => a.into_dimensionality::<Ix4>().map_err(|_| {
            usage(format!(
                "{}: indices must have 4 dimensions",
                path.display()
            ))
        }),
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
/// a file that is not the archive its name promises.
fn check_outputs(args: &RunArgs) -> wgconv::Result<()> {
    let mut outputs = vec![
        ("output", &args.output),
        ("grad-input", &args.grad_input),
        ("grad-weight", &args.grad_weight),
        ("grad-bias", &args.grad_bias),
    ];
    if matches!(args.op, Op::MaxPool2d) {
        outputs.push(("indices", &args.indices));
    }
    for (flag, path) in outputs {
        if let Some(path) = path.as_deref().filter(|p| npy::is_npz_source(p)) {
            return Err(usage(format!(
                "--{flag} {}: outputs are written as .npy files (.npz archives are only read)",
                path.display()
            )));
        }
    }
    Ok(())
}

pub fn run(args: &RunArgs) -> wgconv::Result<()> {
    check_outputs(args)?;
    let layout = flags::layout(&args.layout)?;
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
    for out in outputs {
        match out {
            Out::F32(path, a) => npy::write_atomically(&path, &npy::to_bytes_f32(a.view()))?,
            Out::I64(path, a) => npy::write_atomically(&path, &npy::to_bytes_i64(a.view()))?,
        }
    }
    Ok(())
}

fn conv_params(args: &RunArgs, layout: Layout) -> wgconv::Result<Conv2dParams> {
    let mut p = Conv2dParams::default()
        .with_groups(args.groups)
        .with_layout(layout)
        .with_flip(args.flip);
    if let Some(s) = &args.stride {
        p.stride = flags::pair("stride", s)?;
    }
    if let Some(s) = &args.padding {
        p.padding = flags::padding(s)?;
    }
    if let Some(s) = &args.dilation {
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
            x: read_f32::<Ix4>(required(&args.input, "input")?, "input")?,
            w: read_f32::<Ix4>(required(&args.weight, "weight")?, "weight")?,
            b: args
                .bias
                .as_deref()
                .map(|path| read_f32::<Ix1>(path, "bias"))
                .transpose()?,
            output: required(&args.output, "output")?,
        })
    }
}

fn upload_bias(gpu: &Gpu, b: Option<&Array1<f32>>) -> wgconv::Result<Option<GpuTensor>> {
    b.map(|b| GpuTensor::upload_1d(gpu, b.view())).transpose()
}

fn conv2d(args: &RunArgs, layout: Layout, gpu: Option<&Gpu>) -> wgconv::Result<Vec<Out>> {
    let p = conv_params(args, layout)?;
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
    let p = conv_params(args, layout)?;
    let which = GradSelection {
        input: args.grad_input.is_some(),
        weight: args.grad_weight.is_some(),
        bias: args.grad_bias.is_some(),
    };
    if !(which.input || which.weight || which.bias) {
        return Err(usage(
            "give at least one of --grad-input, --grad-weight, --grad-bias".into(),
        ));
    }
    let x: Array4<f32> = read_f32::<Ix4>(required(&args.input, "input")?, "input")?;
    let w: Array4<f32> = read_f32::<Ix4>(required(&args.weight, "weight")?, "weight")?;
    let dy: Array4<f32> =
        read_f32::<Ix4>(required(&args.grad_output, "grad-output")?, "grad_output")?;
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
    if let (Some(path), Some(a)) = (&args.grad_input, grads.input) {
        outputs.push(Out::F32(path.clone(), a.into_dyn()));
    }
    if let (Some(path), Some(a)) = (&args.grad_weight, grads.weight) {
        outputs.push(Out::F32(path.clone(), a.into_dyn()));
    }
    if let (Some(path), Some(a)) = (&args.grad_bias, grads.bias) {
        outputs.push(Out::F32(path.clone(), a.into_dyn()));
    }
    Ok(outputs)
}

fn conv_transpose2d(args: &RunArgs, layout: Layout, gpu: Option<&Gpu>) -> wgconv::Result<Vec<Out>> {
    let mut p = ConvTranspose2dParams {
        groups: args.groups,
        layout,
        flip: args.flip,
        ..Default::default()
    };
    if let Some(s) = &args.stride {
        p.stride = flags::pair("stride", s)?;
    }
    if let Some(s) = &args.padding {
        p.padding = flags::padding(s)?;
    }
    if let Some(s) = &args.dilation {
        p.dilation = flags::pair("dilation", s)?;
    }
    if let Some(s) = &args.output_padding {
        p.output_padding = flags::pair("output-padding", s)?;
    }
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

fn pool_params(args: &RunArgs, layout: Layout) -> wgconv::Result<Pool2dParams> {
    let kernel = flags::pair(
        "kernel",
        args.kernel
            .as_deref()
            .ok_or_else(|| usage("--kernel is required for pooling".into()))?,
    )?;
    let mut p = Pool2dParams::new(kernel[0], kernel[1])
        .with_layout(layout)
        .with_ceil_mode(args.ceil_mode);
    if let Some(s) = &args.stride {
        p.stride = flags::pair("stride", s)?;
    }
    if let Some(s) = &args.padding {
        p.padding = flags::pair("padding", s)?;
    }
    if let Some(s) = &args.dilation {
        p.dilation = flags::pair("dilation", s)?;
    }
    Ok(p)
}

fn max_pool2d(args: &RunArgs, layout: Layout, gpu: Option<&Gpu>) -> wgconv::Result<Vec<Out>> {
    let p = pool_params(args, layout)?;
    let x: Array4<f32> = read_f32::<Ix4>(required(&args.input, "input")?, "input")?;
    let output = required(&args.output, "output")?;
    let (values, indices) = match gpu {
        None => cpu::max_pool2d_with_indices(x.view(), &p)?,
        Some(gpu) => {
            let (v, i) = wgconv::max_pool2d_with_indices(&upload(gpu, &x, layout)?, &p)?;
            (v.read()?, i.read_indices()?)
        }
    };
    let mut outputs = vec![Out::F32(output.to_path_buf(), values.into_dyn())];
    if let Some(path) = &args.indices {
        outputs.push(Out::I64(path.clone(), indices.into_dyn()));
    }
    Ok(outputs)
}

fn max_pool2d_backward(
    args: &RunArgs,
    layout: Layout,
    gpu: Option<&Gpu>,
) -> wgconv::Result<Vec<Out>> {
    let p = pool_params(args, layout)?;
    let input_shape = flags::shape4(
        "input-shape",
        args.input_shape
            .as_deref()
            .ok_or_else(|| usage("--input-shape is required for max-pool2d-backward".into()))?,
    )?;
    let dy: Array4<f32> =
        read_f32::<Ix4>(required(&args.grad_output, "grad-output")?, "grad_output")?;
    let indices = read_indices(required(&args.indices, "indices")?)?;
    let output = required(&args.output, "output")?;
    let dx = match gpu {
        None => cpu::max_pool2d_backward(dy.view(), indices.view(), input_shape, &p)?,
        Some(gpu) => {
            let it = GpuTensor::upload_indices(gpu, indices.view(), layout)?;
            wgconv::max_pool2d_backward(&upload(gpu, &dy, layout)?, &it, input_shape, &p)?.read()?
        }
    };
    Ok(vec![Out::F32(output.to_path_buf(), dx.into_dyn())])
}
