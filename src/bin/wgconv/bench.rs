//! `wgconv bench`: GPU kernel time (`Gpu::stop_kernel_timing`), GPU wall time and the CPU baseline per
//! layer of a suite, forward and backward.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::adapters;
use ndarray::Array4;
use wgconv::gpu::conv2d::{self as planner, ConvPass, ConvVariant};
use wgconv::{
    cpu, Conv2dParams, Gpu, GpuTensor, GradSelection, Padding, Pool2dParams, PoolVariant,
};

mod report;
pub use report::print_rows;
#[allow(unused_imports)] // what the two halves share
use report::*;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Suite {
    Resnet50,
    Vgg,
    Mobilenet,
    Pool,
    /// Small shapes of every kind, for a quick look (the main job's table).
    Smoke,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "resnet50")]
    suite: Suite,
    #[arg(long, default_value_t = 1, value_parser = crate::at_least_one)]
    batch: usize,
    /// Timed repetitions; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = crate::at_least_one)]
    repeat: usize,
    /// Write the rows as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw GFLOP/s per layer, GPU against CPU, as SVG.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print which kernel variant the planner picks for each conv layer and pass, and why.
    #[arg(long)]
    explain: bool,
    /// Force one conv2d kernel variant (as `WGCONV_CONV_VARIANT` does) instead of the planner's.
    #[arg(long, value_parser = parse_variant)]
    variant: Option<ConvVariant>,
    /// Force one max-pooling kernel variant (`per-element` or `blocked`, as
    /// `WGCONV_POOL_VARIANT` does) instead of the choice by adapter type.
    #[arg(long, value_parser = parse_pool_variant)]
    pool_variant: Option<PoolVariant>,
    #[arg(long, value_name = "NAME", help = BENCH_ADAPTER_HELP)]
    adapter: Option<String>,
    /// Autotune: time every variant on the first use of each layer and pass and keep the
    /// fastest, cached per adapter and shape (see --tune-cache).
    #[arg(long)]
    tune: bool,
    /// The tuning cache file [default: $WGCONV_TUNE_CACHE, else
    /// $XDG_CACHE_HOME/wgconv/tune.json, else ~/.cache/wgconv/tune.json].
    #[arg(long, requires = "tune")]
    tune_cache: Option<PathBuf>,
}

/// `--adapter` as check has it: several adapters run the suite one after the other.
const BENCH_ADAPTER_HELP: &str = "Adapters to time: `all`, or what names some (a part of the \
    name, a backend, `cpu` or `gpu`, or words of these that must all match, as in `wgconv \
    info`); several are printed side by side [default: the one `wgconv info` marks chosen]";

fn parse_variant(name: &str) -> Result<ConvVariant, String> {
    ConvVariant::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = ConvVariant::ALL.iter().map(|v| v.name()).collect();
        format!("unknown variant {name:?}; known: {}", names.join(", "))
    })
}

fn parse_pool_variant(name: &str) -> Result<PoolVariant, String> {
    PoolVariant::from_name(name)
        .ok_or_else(|| format!("unknown pooling variant {name:?}; known: per-element, blocked"))
}

/// The planner's choice for every pass of every conv layer, with the reasons, and which
/// variants this device can run at all.
fn explain(gpu: &Gpu, layers: &[Layer]) -> wgconv::Result<()> {
    println!("kernel variants on this device:");
    for v in ConvVariant::ALL {
        match v.available(gpu) {
            Ok(()) => println!("  {:<10} available", v.name()),
            Err(why) => println!("  {:<10} unavailable: {why}", v.name()),
        }
    }
    println!("{:<26} {:<8} {:<10} why", "layer", "pass", "variant");
    for layer in layers {
        if let Layer::Pool {
            name,
            input,
            params,
        } = layer
        {
            let g = params.geometry("bench", *input)?;
            let forward = PoolVariant::choose(gpu, &g, false);
            let backward = PoolVariant::choose(gpu, &g, true);
            println!(
                "{name:<26} {:<8} {:<10} kernel {}",
                "forward",
                forward.name(),
                forward.forward_entry_point(&g, true)
            );
            println!(
                "{:<26} {:<8} {:<10} kernel {}",
                "",
                "backward",
                backward.name(),
                backward.backward_entry_point(&g)
            );
        }
        if let Layer::Conv {
            name,
            input,
            weight,
            params,
        } = layer
        {
            let g = params.geometry("bench", *input, *weight, None)?;
            for pass in [ConvPass::Forward, ConvPass::InputGrad, ConvPass::WeightGrad] {
                let c = planner::choose(gpu, "bench", pass, &g)?;
                let label = if pass == ConvPass::Forward { *name } else { "" };
                println!(
                    "{label:<26} {:<8} {:<10} {}",
                    pass.name(),
                    c.variant.name(),
                    c.reason
                );
            }
        }
    }
    Ok(())
}

/// One layer of a suite.
pub enum Layer {
    Conv {
        name: &'static str,
        input: [usize; 4],
        weight: [usize; 4],
        params: Conv2dParams,
    },
    Pool {
        name: &'static str,
        input: [usize; 4],
        params: Pool2dParams,
    },
}

pub fn layers(suite: Suite, batch: usize) -> Vec<Layer> {
    let conv = |name, c_in, hw, c_out, k, stride, pad, groups: usize| Layer::Conv {
        name,
        input: [batch, c_in, hw, hw],
        weight: [c_out, c_in / groups, k, k],
        params: Conv2dParams::default()
            .with_stride(stride)
            .with_padding(Padding::uniform(pad))
            .with_groups(groups),
    };
    match suite {
        Suite::Resnet50 => vec![
            conv("stem 7x7 s2 3->64 224", 3, 224, 64, 7, 2, 3, 1),
            conv("3x3 64 56", 64, 56, 64, 3, 1, 1, 1),
            conv("3x3 128 28", 128, 28, 128, 3, 1, 1, 1),
            conv("3x3 256 14", 256, 14, 256, 3, 1, 1, 1),
            conv("3x3 512 7", 512, 7, 512, 3, 1, 1, 1),
            conv("1x1 expand 64->256 56", 64, 56, 256, 1, 1, 0, 1),
            conv("3x3 s2 128 56->28", 128, 56, 128, 3, 2, 1, 1),
            conv("1x1 s2 down 256->512 56", 256, 56, 512, 1, 2, 0, 1),
        ],
        Suite::Vgg => vec![
            conv("3x3 64 224", 64, 224, 64, 3, 1, 1, 1),
            conv("3x3 128 112", 128, 112, 128, 3, 1, 1, 1),
        ],
        Suite::Mobilenet => vec![
            conv("dw 3x3 32 112", 32, 112, 32, 3, 1, 1, 32),
            conv("dw 3x3 s2 64 112", 64, 112, 64, 3, 2, 1, 64),
            conv("dw 3x3 128 56", 128, 56, 128, 3, 1, 1, 128),
            conv("dw 3x3 512 14", 512, 14, 512, 3, 1, 1, 512),
        ],
        Suite::Pool => vec![
            Layer::Pool {
                name: "3x3 s2 p1 64 112",
                input: [batch, 64, 112, 112],
                params: Pool2dParams::new(3, 3).with_stride(2).with_padding(1),
            },
            Layer::Pool {
                name: "2x2 s2 64 56",
                input: [batch, 64, 56, 56],
                params: Pool2dParams::new(2, 2),
            },
        ],
        Suite::Smoke => vec![
            conv("3x3 16 32", 16, 32, 16, 3, 1, 1, 1),
            conv("1x1 32->64 16", 32, 16, 64, 1, 1, 0, 1),
            conv("dw 3x3 s2 32 32", 32, 32, 32, 3, 2, 1, 32),
            Layer::Pool {
                name: "3x3 s2 p1 16 32",
                input: [batch, 16, 32, 32],
                params: Pool2dParams::new(3, 3).with_stride(2).with_padding(1),
            },
        ],
    }
}

/// One measured row.
pub struct Row {
    pub layer: String,
    pub op: &'static str,
    /// Median kernel time (`Gpu::stop_kernel_timing`: timestamp queries on a hardware GPU,
    /// the wall clock around each submission on a CPU adapter), if the device gives one.
    pub kernel: Option<Duration>,
    /// Median wall time of upload, op and readback.
    pub wall: Duration,
    /// Median CPU baseline time (im2col path; reference loops for pooling); `None` where not
    /// measured (the CPU is timed once however many adapters run).
    pub cpu: Option<Duration>,
    /// FLOPs (convolutions) or bytes moved (pooling) of one run.
    pub work: f64,
    pub is_bytes: bool,
    /// Pooling: median time of a plain device copy (`copy_buffer_to_buffer`) of the same
    /// bytes, the floor a memory-bound kernel is measured against.
    pub copy: Option<Duration>,
    /// Pooling: median kernel time of a plain copy of the same bytes through a compute shader
    /// (`copy_vec4`): the floor for any kernel, which on a CPU adapter sits well above the
    /// device copy (a memcpy).
    pub shader_copy: Option<Duration>,
    /// Buffers created by the warm-up call, and by all timed repeats together (0 when the
    /// pool serves every repeat).
    pub allocations: (u64, u64),
}

impl Row {
    fn rate(&self, t: Duration) -> f64 {
        self.work / t.as_secs_f64() / 1e9
    }
    fn gpu_time(&self) -> Duration {
        self.kernel.unwrap_or(self.wall)
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn filled(shape: [usize; 4], salt: u32) -> Array4<f32> {
    let mut state = 0x2545_f491u32 ^ salt;
    Array4::from_shape_simple_fn(shape, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32 - 0.5
    })
}

/// What [`time_gpu`] measured.
struct GpuTiming {
    kernel: Option<Duration>,
    wall: Duration,
    /// Buffers created by the warm-up call and by the timed repeats (see [`Row::allocations`]).
    allocations: (u64, u64),
}

/// Times `op` (which uploads, runs and reads back) `repeat` times after a warm-up: median kernel
/// time (`Gpu::stop_kernel_timing`) and median wall time, and the buffers each phase created.
fn time_gpu(
    gpu: &Gpu,
    repeat: usize,
    mut op: impl FnMut() -> wgconv::Result<()>,
) -> wgconv::Result<GpuTiming> {
    let before = gpu.buffer_allocations();
    // Timed like the repeats, so that the timers' buffers are pooled by the warm-up too.
    gpu.start_kernel_timing();
    op()?;
    gpu.stop_kernel_timing()?;
    let after_warm_up = gpu.buffer_allocations();
    let mut kernel = Vec::new();
    let mut wall = Vec::new();
    for _ in 0..repeat {
        gpu.start_kernel_timing();
        let start = Instant::now();
        op()?;
        wall.push(start.elapsed());
        if let Some(k) = gpu.stop_kernel_timing()? {
            kernel.push(k);
        }
    }
    Ok(GpuTiming {
        kernel: (!kernel.is_empty()).then(|| median(kernel)),
        wall: median(wall),
        allocations: (
            after_warm_up - before,
            gpu.buffer_allocations() - after_warm_up,
        ),
    })
}

/// [`time_cpu`] when `measure` is set.
fn maybe_time_cpu<T>(
    measure: bool,
    repeat: usize,
    op: impl FnMut() -> wgconv::Result<T>,
) -> wgconv::Result<Option<Duration>> {
    measure.then(|| time_cpu(repeat, op)).transpose()
}

fn time_cpu<T>(
    repeat: usize,
    mut op: impl FnMut() -> wgconv::Result<T>,
) -> wgconv::Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        op()?;
        times.push(start.elapsed());
    }
    Ok(median(times))
}

/// Median wall time of copying `bytes` bytes between two device buffers, synchronised.
fn time_device_copy(gpu: &Gpu, bytes: f64, repeat: usize) -> wgconv::Result<Duration> {
    let floats = (bytes / 4.0).ceil() as usize;
    let zeros = ndarray::Array1::<f32>::zeros(floats);
    let src = GpuTensor::upload_1d(gpu, zeros.view())?;
    let dst = GpuTensor::upload_1d(gpu, zeros.view())?;
    let (src_buffer, dst_buffer) = (src.buffer()?, dst.buffer()?);
    let copy = || {
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(src_buffer, 0, dst_buffer, 0, floats as u64 * 4);
        gpu.queue().submit([encoder.finish()]);
        gpu.synchronize()
    };
    copy()?;
    time_cpu(repeat, copy)
}

/// Median kernel time (wall time where there is none) of copying `bytes` bytes (rounded up to
/// whole vec4s) through the `copy_vec4` compute shader.
fn time_shader_copy(gpu: &Gpu, bytes: f64, repeat: usize) -> wgconv::Result<Duration> {
    let floats = (bytes / 4.0 / 4.0).ceil() as usize * 4;
    let src = GpuTensor::upload_1d(gpu, ndarray::Array1::<f32>::zeros(floats).view())?;
    let timing = time_gpu(gpu, repeat, || {
        wgconv::gpu::copy_through_shader(&src)?;
        gpu.synchronize()
    })?;
    Ok(timing.kernel.unwrap_or(timing.wall))
}

/// Measures every layer of a suite, forward and backward; the CPU baseline too when `cpu`.
pub fn measure(
    gpu: &Gpu,
    layers: &[Layer],
    repeat: usize,
    progress: bool,
    cpu: bool,
) -> wgconv::Result<Vec<Row>> {
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new(layers.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:<28} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("valid template"),
        );
        bar
    });
    let mut rows = Vec::new();
    for layer in layers {
        match layer {
            Layer::Conv {
                name,
                input,
                weight,
                params,
            } => {
                if let Some(bar) = &bar {
                    bar.set_message(*name);
                }
                let p = params;
                let g = p.geometry("bench", *input, *weight, None)?;
                let (x, w, dy) = (
                    filled(*input, 1),
                    filled(*weight, 2),
                    filled(g.output_shape(), 3),
                );
                let flops = g.flops();
                let forward = time_gpu(gpu, repeat, || {
                    let y = wgconv::conv2d(
                        &GpuTensor::upload(gpu, x.view())?,
                        &GpuTensor::upload(gpu, w.view())?,
                        None,
                        p,
                    )?;
                    y.read().map(drop)
                })?;
                let cpu_forward = maybe_time_cpu(cpu, repeat, || {
                    cpu::conv2d_im2col(x.view(), w.view(), None, p)
                })?;
                rows.push(Row {
                    layer: name.to_string(),
                    op: "forward",
                    kernel: forward.kernel,
                    wall: forward.wall,
                    allocations: forward.allocations,
                    cpu: cpu_forward,
                    work: flops,
                    is_bytes: false,
                    copy: None,
                    shader_copy: None,
                });
                let cpu_backward = maybe_time_cpu(cpu, repeat, || {
                    cpu::conv2d_backward_im2col(
                        x.view(),
                        w.view(),
                        dy.view(),
                        p,
                        GradSelection {
                            input: true,
                            weight: true,
                            bias: false,
                        },
                    )
                })?;
                for (op, which) in [("dx", GradSelection::INPUT), ("dw", GradSelection::WEIGHT)] {
                    let t = time_gpu(gpu, repeat, || {
                        let grads = wgconv::conv2d_backward(
                            &GpuTensor::upload(gpu, x.view())?,
                            &GpuTensor::upload(gpu, w.view())?,
                            &GpuTensor::upload(gpu, dy.view())?,
                            p,
                            which,
                        )?;
                        match (grads.input, grads.weight) {
                            (Some(t), _) | (None, Some(t)) => t.read().map(drop),
                            (None, None) => Ok(()),
                        }
                    })?;
                    // The im2col baseline computes dx and dw together; each row gets half.
                    rows.push(Row {
                        layer: String::new(),
                        op,
                        kernel: t.kernel,
                        wall: t.wall,
                        allocations: t.allocations,
                        cpu: cpu_backward.map(|t| t / 2),
                        work: flops,
                        is_bytes: false,
                        copy: None,
                        shader_copy: None,
                    });
                }
            }
            Layer::Pool {
                name,
                input,
                params,
            } => {
                if let Some(bar) = &bar {
                    bar.set_message(*name);
                }
                let g = params.geometry("bench", *input)?;
                let copy = time_device_copy(gpu, g.forward_bytes(true), repeat)?;
                let shader_copy = time_shader_copy(gpu, g.forward_bytes(true), repeat)?;
                let x = filled(*input, 4);
                let dy = filled(g.output_shape(), 5);
                let forward = time_gpu(gpu, repeat, || {
                    let (v, i) = wgconv::max_pool2d_with_indices(
                        &GpuTensor::upload(gpu, x.view())?,
                        params,
                    )?;
                    v.read()?;
                    i.read_indices().map(drop)
                })?;
                let cpu_forward = maybe_time_cpu(cpu, repeat, || {
                    cpu::max_pool2d_with_indices(x.view(), params)
                })?;
                rows.push(Row {
                    layer: name.to_string(),
                    op: "forward",
                    kernel: forward.kernel,
                    wall: forward.wall,
                    allocations: forward.allocations,
                    cpu: cpu_forward,
                    work: g.forward_bytes(true),
                    is_bytes: true,
                    copy: Some(copy),
                    shader_copy: Some(shader_copy),
                });
                let xt = GpuTensor::upload(gpu, x.view())?;
                let (_, indices) = wgconv::max_pool2d_with_indices(&xt, params)?;
                let backward = time_gpu(gpu, repeat, || {
                    wgconv::max_pool2d_backward(
                        &GpuTensor::upload(gpu, dy.view())?,
                        &indices,
                        *input,
                        params,
                    )?
                    .read()
                    .map(drop)
                })?;
                let cpu_backward = if cpu {
                    let cpu_indices = cpu::max_pool2d_with_indices(x.view(), params)?.1;
                    Some(time_cpu(repeat, || {
                        cpu::max_pool2d_backward(dy.view(), cpu_indices.view(), *input, params)
                    })?)
                } else {
                    None
                };
                // Backward reads dy and the indices and writes dx.
                let bytes = g.forward_bytes(true);
                rows.push(Row {
                    layer: String::new(),
                    op: "backward",
                    kernel: backward.kernel,
                    wall: backward.wall,
                    allocations: backward.allocations,
                    cpu: cpu_backward,
                    work: bytes,
                    is_bytes: true,
                    copy: Some(copy),
                    shader_copy: Some(shader_copy),
                });
            }
        }
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(rows)
}

pub fn run(args: &BenchArgs) -> wgconv::Result<()> {
    let gpus = adapters::open_many(args.adapter.as_deref(), false)?;
    let layers = layers(args.suite, args.batch);
    let mut runs: Vec<Vec<Row>> = Vec::new();
    for (i, gpu) in gpus.iter().enumerate() {
        // The CPU is the same whatever the adapter: timed once, with the first.
        let rows = bench_adapter(args, gpu, &layers, i == 0)
            .map_err(|e| adapters::on(&gpus, i, "wgconv bench", e))?;
        runs.push(rows);
    }
    let cpu: Vec<Option<Duration>> = runs
        .first()
        .map(|rows| rows.iter().map(|r| r.cpu).collect())
        .unwrap_or_default();
    for rows in runs.iter_mut().skip(1) {
        for (r, c) in rows.iter_mut().zip(&cpu) {
            r.cpu = *c;
        }
    }
    if let [rows] = runs.as_slice() {
        print_rows(rows);
    } else {
        print_side_by_side(&gpus, &runs);
    }
    if let Some(path) = &args.json {
        write_json(path, args, &gpus, &runs)?;
    }
    if let Some(path) = &args.plot {
        let labels: Vec<String> = gpus
            .iter()
            .enumerate()
            .map(|(i, g)| {
                format!(
                    "{} {}",
                    adapters::tag(i),
                    adapters::describe(g.adapter_info())
                )
            })
            .collect();
        plot(path, &labels, &runs).map_err(|e| wgconv::Error::InvalidArgument {
            op: "wgconv bench",
            what: format!("cannot draw {}: {e}", path.display()),
        })?;
    }
    Ok(())
}

/// The suite on one adapter, with the flags that set up its device.
fn bench_adapter(
    args: &BenchArgs,
    gpu: &Gpu,
    layers: &[Layer],
    cpu: bool,
) -> wgconv::Result<Vec<Row>> {
    if args.variant.is_some() {
        gpu.force_conv_variant(args.variant);
    }
    if args.pool_variant.is_some() {
        gpu.force_pool_variant(args.pool_variant);
    }
    if args.tune {
        gpu.enable_tuning(args.tune_cache.as_deref())?;
        if let Some(tuner) = gpu.tuner() {
            println!("tuning cache: {}", tuner.path().display());
        }
    }
    if args.explain {
        explain(gpu, layers)?;
    }
    println!(
        "adapter: {} ({:?}), suite {:?}, batch {}, median of {}",
        gpu.adapter_info().name,
        gpu.adapter_info().backend,
        args.suite,
        args.batch,
        args.repeat
    );
    measure(
        gpu,
        layers,
        args.repeat.max(1),
        std::io::stderr().is_terminal(),
        cpu,
    )
}
