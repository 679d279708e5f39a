//! The `wgconv` command-line tool: info, check, bench, run on .npy files, shaders; no arguments
//! runs the main job.

mod bench;
mod check;
mod main_job;
mod run;
mod shaders;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wgconv",
    version,
    about = "2-D convolution and max pooling on wgpu, checked against a CPU reference"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Every adapter wgpu sees, the one chosen and why, its features and the limits that matter.
    Info,
    /// Random parameter sweeps, GPU against the CPU reference, for every op and gradient.
    Check(check::CheckArgs),
    /// Time GPU kernels, GPU wall time and the CPU baseline over layer suites.
    Bench(bench::BenchArgs),
    /// Run one op on .npy files, on the GPU or the CPU.
    Run(Box<run::RunArgs>),
    /// Write every shader module as native wgpu or a browser's WebGPU would compile it.
    Shaders(shaders::ShadersArgs),
}

/// What a subcommand ended with: exit 0, 1 (a check found a mismatch) or 2 (bad input).
pub enum Outcome {
    Ok,
    Mismatch,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's first line without its "error: " prefix.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("wgconv: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None => main_job::run().map(|()| Outcome::Ok),
        Some(Command::Info) => info().map(|()| Outcome::Ok),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Bench(args)) => bench::run(&args).map(|()| Outcome::Ok),
        Some(Command::Run(args)) => run::run(&args).map(|()| Outcome::Ok),
        Some(Command::Shaders(args)) => shaders::run(&args).map(|()| Outcome::Ok),
    };
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Mismatch) => ExitCode::from(1),
        Err(e) => {
            eprintln!("wgconv: {}", e.to_string().replace('\n', " "));
            ExitCode::from(2)
        }
    }
}

/// `wgconv info`.
fn info() -> wgconv::Result<()> {
    println!(
        "adapters wgpu sees (WGPU_BACKEND={:?}):",
        std::env::var("WGPU_BACKEND").unwrap_or_default()
    );
    for a in wgconv::Gpu::available_adapters() {
        println!(
            "  {} ({:?}, {:?}, driver {} {})",
            a.name, a.backend, a.device_type, a.driver, a.driver_info
        );
    }
    let gpu = wgconv::Gpu::new()?;
    let info = gpu.adapter_info();
    println!(
        "chosen: {} ({:?}, {:?})",
        info.name, info.backend, info.device_type
    );
    println!("  why: {}", gpu.selection_reason());
    println!(
        "  subgroup size: {}..={}",
        info.subgroup_min_size, info.subgroup_max_size
    );
    println!("  features: {:?}", gpu.device().features());
    let l = gpu.limits();
    println!("  limits:");
    for (name, value) in [
        (
            "max_storage_buffer_binding_size",
            l.max_storage_buffer_binding_size,
        ),
        ("max_buffer_size", l.max_buffer_size),
        (
            "max_compute_workgroups_per_dimension",
            u64::from(l.max_compute_workgroups_per_dimension),
        ),
        (
            "max_compute_invocations_per_workgroup",
            u64::from(l.max_compute_invocations_per_workgroup),
        ),
        (
            "max_compute_workgroup_size_x",
            u64::from(l.max_compute_workgroup_size_x),
        ),
        (
            "max_compute_workgroup_storage_size",
            u64::from(l.max_compute_workgroup_storage_size),
        ),
        (
            "max_storage_buffers_per_shader_stage",
            u64::from(l.max_storage_buffers_per_shader_stage),
        ),
    ] {
        println!("    {name:<40} {value}");
    }
    Ok(())
}
