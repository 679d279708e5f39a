//! The `wgconv` command-line tool: info, check, bench, run on .npy files, shaders; no arguments
//! runs the main job.

mod adapters;
mod bench;
mod check;
mod compare;
mod info;
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
    /// The main job's adapter (subcommands take their own --adapter, after their name).
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Every adapter wgpu sees: limits, subgroup sizes, the kernel variants it can run and the
    /// planner's picks; then the one chosen and why.
    Info(info::InfoArgs),
    /// Random parameter sweeps, GPU against the CPU reference, for every op and gradient.
    Check(check::CheckArgs),
    /// Time GPU kernels, GPU wall time and the CPU baseline over layer suites.
    Bench(bench::BenchArgs),
    /// Run one op on .npy files, on the GPU or the CPU.
    Run(Box<run::RunArgs>),
    /// Judge a result computed elsewhere against a reference, under the op's error bound.
    Compare(Box<compare::CompareArgs>),
    /// Write every shader module as native wgpu or a browser's WebGPU would compile it.
    Shaders(shaders::ShadersArgs),
}

/// What a subcommand ended with: exit 0, 1 (a check found a mismatch) or 2 (bad input).
pub enum Outcome {
    Ok,
    Mismatch,
}

/// clap's parser for counts that must be at least 1 (a batch, repetitions, cases): 0 would
/// time or check nothing and still print a table.
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
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
            // One line: clap's message without its "error: " prefix, usage and pointer to
            // --help, its own lines (the missing arguments, the possible values, a tip) joined.
            let rendered = e.render().to_string();
            let lines: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
                .filter(|l| !l.is_empty())
                .collect();
            let message = lines.join(" ").replace(" tip: ", "; tip: ");
            eprintln!("wgconv: {}", message.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    if cli.adapter.is_some() && cli.command.is_some() {
        eprintln!(
            "wgconv: --adapter before a subcommand is the main job's; put it after the \
             subcommand's name (wgconv check --adapter NAME)"
        );
        return ExitCode::from(2);
    }
    let result = match cli.command {
        None => main_job::run(cli.adapter.as_deref()).map(|()| Outcome::Ok),
        Some(Command::Info(args)) => info::run(&args).map(|()| Outcome::Ok),
        Some(Command::Check(args)) => check::run(&args),
        Some(Command::Bench(args)) => bench::run(&args).map(|()| Outcome::Ok),
        Some(Command::Run(args)) => run::run(&args),
        Some(Command::Compare(args)) => compare::run(&args),
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
