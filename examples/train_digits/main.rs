//! Trains a LeNet-sized CNN on the 8x8 handwritten digits with `wgconv::nn`, on the GPU or on
//! the CPU reference, or on both in lockstep to compare their losses step by step.
//!
//! ```text
//! cargo run --release --example train_digits                 # GPU
//! cargo run --release --example train_digits -- --backend cpu
//! cargo run --release --example train_digits -- --compare    # GPU vs CPU, first 100 steps
//! cargo run --release --example train_digits -- --plot loss.svg
//! ```
//!
//! The network and the loop are in `training.rs`, the data in `digits.rs`; `tests/train_digits.rs`
//! runs a short version of the comparison.

mod digits;
mod training;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use wgconv::nn::{Backend, Sgd};
use wgconv::Gpu;

use training::{Config, Trainer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendName {
    Gpu,
    Cpu,
}

#[derive(Parser, Debug)]
#[command(about = "Train a small CNN on the 8x8 digits with wgconv::nn")]
struct Args {
    /// Where the network runs (the GPU honours WGCONV_ADAPTER).
    #[arg(long, value_enum, default_value_t = BackendName::Gpu)]
    backend: BackendName,
    /// Train on the GPU and the CPU reference in lockstep for --compare-steps steps and report
    /// the worst relative difference of their losses.
    #[arg(long)]
    compare: bool,
    /// Steps compared by --compare.
    #[arg(long, default_value_t = 100)]
    compare_steps: usize,
    /// Write the loss curve(s) to this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Seeds the weights and the data order.
    #[arg(long, default_value_t = Config::default().seed)]
    seed: u64,
    #[arg(long, default_value_t = Config::default().epochs)]
    epochs: usize,
    #[arg(long, default_value_t = Config::default().batch)]
    batch: usize,
    #[arg(long, default_value_t = Config::default().sgd.learning_rate)]
    learning_rate: f32,
    /// Exit with failure when the test accuracy ends below this (CI uses 0.97).
    #[arg(long)]
    min_accuracy: Option<f64>,
    /// The dataset (gzipped CSV: 64 pixel counts and the digit per line).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// The relative loss difference `--compare` accepts at every step.
const AGREEMENT: f64 = 1e-3;

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("train_digits: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let all = digits::load(&args.data.clone().unwrap_or_else(digits::default_path))?;
    let (train, test) = digits::split(&all);
    let config = Config {
        seed: args.seed,
        epochs: args.epochs,
        batch: args.batch,
        widths: Config::default().widths,
        sgd: Sgd {
            learning_rate: args.learning_rate,
            ..Config::default().sgd
        },
    };
    if args.compare {
        return compare(&args, config, &train);
    }
    let backend = match args.backend {
        BackendName::Gpu => Backend::Gpu(Gpu::new()?),
        BackendName::Cpu => Backend::Cpu,
    };
    let mut trainer = Trainer::new(backend, config.clone())?;
    let steps = trainer.steps_per_epoch(&train) * config.epochs;
    let bar = ProgressBar::new(steps as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} steps, {elapsed} {msg}",
    )?);
    let mut losses = Vec::with_capacity(steps);
    let start = Instant::now();
    for epoch in 1..=config.epochs {
        trainer.start_epoch(&train)?;
        while let Some(step) = trainer.step()? {
            losses.push(step.loss);
            bar.set_message(format!("epoch {epoch}, loss {:.4}", step.loss));
            bar.inc(1);
        }
    }
    let train_time = start.elapsed();
    bar.finish_and_clear();
    let result = trainer.evaluate(&test)?;
    if let Some(path) = &args.plot {
        plot(path, &[(trainer.backend.name(), &losses)])?;
    }
    let accuracy = result.correct as f64 / result.samples as f64;
    println!(
        "test accuracy: {accuracy:.3} ({}/{}), train time: {:.1} s, backend: {}",
        result.correct,
        result.samples,
        train_time.as_secs_f64(),
        trainer.backend.name()
    );
    Ok(match args.min_accuracy {
        Some(min) if accuracy < min => {
            eprintln!("train_digits: test accuracy {accuracy:.3} is below --min-accuracy {min}");
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

/// GPU and CPU trainers from one config, stepped in lockstep.
fn compare(
    args: &Args,
    config: Config,
    train: &digits::Digits,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut gpu = Trainer::new(Backend::Gpu(Gpu::new()?), config.clone())?;
    let mut cpu = Trainer::new(Backend::Cpu, config)?;
    let bar = ProgressBar::new(args.compare_steps as u64);
    let (mut gpu_losses, mut cpu_losses) = (Vec::new(), Vec::new());
    let (mut gpu_time, mut cpu_time) = (Duration::ZERO, Duration::ZERO);
    // (relative difference, step) of the worst step so far.
    let mut worst = (0.0f64, 0usize);
    while gpu_losses.len() < args.compare_steps {
        let timed = |t: &mut Trainer, total: &mut Duration| {
            let start = Instant::now();
            let step = t.step();
            *total += start.elapsed();
            step
        };
        let (g, c) = match (
            timed(&mut gpu, &mut gpu_time)?,
            timed(&mut cpu, &mut cpu_time)?,
        ) {
            (Some(g), Some(c)) => (g, c),
            (None, None) => {
                gpu.start_epoch(train)?;
                cpu.start_epoch(train)?;
                continue;
            }
            _ => return Err("the two trainers disagree on where the epoch ends".into()),
        };
        let difference = (g.loss - c.loss).abs() / c.loss.abs().max(f64::MIN_POSITIVE);
        if difference > worst.0 || gpu_losses.is_empty() {
            worst = (difference, gpu_losses.len());
        }
        gpu_losses.push(g.loss);
        cpu_losses.push(c.loss);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.plot {
        plot(
            path,
            &[
                (gpu.backend.name(), &gpu_losses),
                (cpu.backend.name(), &cpu_losses),
            ],
        )?;
    }
    let steps = gpu_losses.len();
    let (difference, at) = worst;
    let agree = difference <= AGREEMENT;
    println!(
        "compare: {steps} steps, worst relative loss difference {difference:.2e} at step {} \
         (gpu {:.6}, cpu {:.6}), {} {AGREEMENT:e}; per step: gpu {:.2} ms, cpu {:.2} ms",
        at + 1,
        gpu_losses[at],
        cpu_losses[at],
        if agree { "within" } else { "NOT within" },
        gpu_time.as_secs_f64() * 1e3 / steps as f64,
        cpu_time.as_secs_f64() * 1e3 / steps as f64,
    );
    Ok(if agree {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Loss per step, one line per series.
fn plot(
    path: &std::path::Path,
    series: &[(String, &Vec<f64>)],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let steps = series
        .iter()
        .map(|(_, l)| l.len())
        .max()
        .unwrap_or(1)
        .max(2);
    let top = series
        .iter()
        .flat_map(|(_, l)| l.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("train_digits: loss per step", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0..steps, 0.0..top * 1.05)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("cross-entropy loss")
        .draw()?;
    for (i, (name, losses)) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                losses.iter().enumerate().map(|(s, &l)| (s, l)),
                color.stroke_width(1),
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
