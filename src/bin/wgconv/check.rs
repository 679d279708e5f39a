//! `wgconv check`: random parameter sweeps, GPU against the CPU reference, for every op, on one
//! adapter or several, and optionally adapters against each other.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use ndarray::{Array4, ArrayD};
use wgconv::sweep::{random_conv_case, random_pool_case, transposed_params, Flavour, Rng};
use wgconv::{
    cpu, Activation, Comparison, Conv2dParams, ConvTranspose2dParams, ErrorBound, Gpu, GpuTensor,
    GradSelection, Layout, Pool2dParams, SavedTensor,
};

use crate::run::Judge;
use crate::{adapters, Outcome};

mod cases;
#[allow(unused_imports)] // what the two halves share
use cases::*;

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
    #[arg(long, default_value_t = 100, value_parser = crate::at_least_one)]
    cases: usize,
    /// Seed of the sweep; a failure names the seed and case that reproduce it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the results as JSON (one entry per adapter).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Adapters to check, each against the CPU: `all`, or what names some (a part of the name,
    /// a backend, `cpu` or `gpu`, or words of these that must all match, as in `wgconv info`)
    /// [default: the one `wgconv info` marks chosen].
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
    /// Also compare the adapters with each other: every adapter's result against the first
    /// adapter's, element by element, under the CPU comparison's bound. Runs on every adapter
    /// unless --adapter names fewer; with one adapter only the CPU comparison is left.
    #[arg(long)]
    compare_adapters: bool,
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
    /// The largest error as a fraction of what its element is allowed (above 1 fails).
    pub error_over_bound: f64,
    /// Cases whose result equals the reference exactly (NaN matching NaN).
    pub identical: usize,
    pub first_failure: Option<String>,
    /// The case that came nearest its bound.
    pub worst_case: Option<String>,
}

impl OpSummary {
    fn record(&mut self, verdict: &Verdict, describe: &str) {
        let report = &verdict.report;
        self.cases += 1;
        self.max_abs_err = self.max_abs_err.max(report.max_abs_err);
        if report.max_rel_err.is_finite() {
            self.max_rel_err = self.max_rel_err.max(report.max_rel_err);
        }
        if verdict.error_over_bound > self.error_over_bound || self.worst_case.is_none() {
            self.error_over_bound = self.error_over_bound.max(verdict.error_over_bound);
            self.worst_case = Some(describe.to_string());
        }
        if verdict.error_over_bound == 0.0 && report.passed() {
            self.identical += 1;
        }
        if !report.passed() {
            self.failures += 1;
            if self.first_failure.is_none() {
                self.first_failure = Some(format!("{describe}: {report}"));
            }
        }
    }
}

/// What `check` found on every adapter, and between adapters.
pub struct Results {
    /// Per adapter, per op: against the CPU reference.
    pub against_cpu: Vec<Vec<OpSummary>>,
    /// Per adapter after the first, per op: against the first adapter (empty unless asked).
    pub against_first: Vec<Vec<OpSummary>>,
}

pub fn run(args: &CheckArgs) -> wgconv::Result<Outcome> {
    let gpus = adapters::open_many(args.adapter.as_deref(), args.compare_adapters)?;
    let ops: Vec<CheckOp> = if args.op == CheckOp::All {
        OPS.to_vec()
    } else {
        vec![args.op]
    };
    let compare_adapters = args.compare_adapters && gpus.len() > 1;
    if args.compare_adapters && !compare_adapters {
        println!(
            "one adapter ({}): nothing to compare it with, so only the CPU comparison is left",
            adapters::describe(gpus[0].adapter_info())
        );
    }
    let results = sweep_adapters(
        &gpus,
        &ops,
        args.cases,
        args.seed,
        std::io::stderr().is_terminal(),
        compare_adapters,
    )?;
    // The table without adapters where none was asked for, as it has always been printed.
    if args.adapter.is_none() && !args.compare_adapters {
        print_single(&ops, &results.against_cpu[0]);
    } else {
        adapters::print_legend(&gpus);
        print_against_cpu(&ops, &results.against_cpu);
    }
    let mut any_failure = false;
    for (i, summaries) in results.against_cpu.iter().enumerate() {
        for (op, s) in ops.iter().zip(summaries) {
            any_failure |= s.failures > 0;
            if let Some(f) = &s.first_failure {
                let on = if gpus.len() > 1 {
                    format!(" on {}", adapters::tag(i))
                } else {
                    String::new()
                };
                println!("MISMATCH {}{on}: {f}", op_name(*op));
            }
        }
    }
    let worst_pair = compare_adapters.then(|| print_against_first(&ops, &results.against_first));
    for (k, summaries) in results.against_first.iter().enumerate() {
        for (op, s) in ops.iter().zip(summaries) {
            any_failure |= s.failures > 0;
            if let Some(f) = &s.first_failure {
                println!(
                    "ADAPTERS DIFFER {} {} against {}: {f}",
                    op_name(*op),
                    adapters::tag(k + 1),
                    adapters::tag(0)
                );
            }
        }
    }
    if let Some(path) = &args.json {
        write_json(path, args, &gpus, &ops, &results, worst_pair.flatten())?;
    }
    Ok(if any_failure {
        Outcome::Mismatch
    } else {
        Outcome::Ok
    })
}

/// The table of one adapter, as it has always looked.
fn print_single(ops: &[CheckOp], summaries: &[OpSummary]) {
    println!(
        "{:<24} {:>6} {:>9} {:>11} {:>11} {:>11}",
        "op", "cases", "failures", "max abs", "max rel", "err/bound"
    );
    for (op, s) in ops.iter().zip(summaries) {
        println!(
            "{:<24} {:>6} {:>9} {:>11.3e} {:>11.3e} {:>11.4}",
            op_name(*op),
            s.cases,
            s.failures,
            s.max_abs_err,
            s.max_rel_err,
            s.error_over_bound
        );
    }
}

const WIDE_HEADER: [&str; 7] = [
    "cases",
    "failures",
    "max abs",
    "max rel",
    "err/bound",
    "identical",
    "",
];

fn print_wide_row(op: &str, who: &str, s: &OpSummary) {
    println!(
        "{op:<24} {who:<8} {:>6} {:>9} {:>11.3e} {:>11.3e} {:>9.3} {:>10}",
        s.cases, s.failures, s.max_abs_err, s.max_rel_err, s.error_over_bound, s.identical
    );
}

/// Adapter x op, each against the CPU: one block per op, so that the adapters' numbers for the
/// same cases sit together.
fn print_against_cpu(ops: &[CheckOp], against_cpu: &[Vec<OpSummary>]) {
    println!("against the CPU reference:");
    let h = WIDE_HEADER;
    println!(
        "{:<24} {:<8} {:>6} {:>9} {:>11} {:>11} {:>9} {:>10}",
        "op", "adapter", h[0], h[1], h[2], h[3], h[4], h[5]
    );
    for (j, op) in ops.iter().enumerate() {
        for (i, summaries) in against_cpu.iter().enumerate() {
            let name = if i == 0 { op_name(*op) } else { String::new() };
            print_wide_row(&name, &adapters::tag(i), &summaries[j]);
        }
    }
}

/// The worst comparison between two adapters: which one against the first, on which op, and
/// its summary.
struct WorstPair<'a> {
    adapter: usize,
    op: CheckOp,
    summary: &'a OpSummary,
}

/// Every adapter against the first, op by op, and the pair whose results differ most
/// (as a fraction of the bound).
fn print_against_first<'a>(
    ops: &[CheckOp],
    against_first: &'a [Vec<OpSummary>],
) -> Option<WorstPair<'a>> {
    println!(
        "adapters against {} (the same cases; the CPU comparison's bound):",
        adapters::tag(0)
    );
    let h = WIDE_HEADER;
    println!(
        "{:<24} {:<8} {:>6} {:>9} {:>11} {:>11} {:>9} {:>10}",
        "op", "adapter", h[0], h[1], h[2], h[3], h[4], h[5]
    );
    let mut worst: Option<WorstPair> = None;
    for (j, op) in ops.iter().enumerate() {
        for (k, summaries) in against_first.iter().enumerate() {
            let name = if k == 0 { op_name(*op) } else { String::new() };
            let s = &summaries[j];
            print_wide_row(&name, &adapters::tag(k + 1), s);
            let key = |s: &OpSummary| (s.error_over_bound, s.max_rel_err);
            if worst.as_ref().is_none_or(|w| key(s) > key(w.summary)) {
                worst = Some(WorstPair {
                    adapter: k + 1,
                    op: *op,
                    summary: s,
                });
            }
        }
    }
    if let Some(w) = &worst {
        println!(
            "worst pair: {} against {} on {}: max abs {:.3e}, max rel {:.3e}, {:.1}% of the \
             bound{}",
            adapters::tag(w.adapter),
            adapters::tag(0),
            op_name(w.op),
            w.summary.max_abs_err,
            w.summary.max_rel_err,
            w.summary.error_over_bound * 100.0,
            w.summary
                .worst_case
                .as_ref()
                .map_or(String::new(), |c| format!(" ({c})"))
        );
    }
    worst
}

fn summary_json(op: CheckOp, s: &OpSummary) -> serde_json::Value {
    serde_json::json!({
        "op": op_name(op),
        "cases": s.cases,
        "failures": s.failures,
        "max_abs_err": s.max_abs_err,
        "max_rel_err": s.max_rel_err,
        "max_error_over_bound": s.error_over_bound,
        "identical": s.identical,
        "first_failure": s.first_failure,
        "worst_case": s.worst_case,
    })
}

/// One entry per adapter; with one adapter also its `adapter` and `ops` at the top level, as
/// the file has always had them.
fn write_json(
    path: &std::path::Path,
    args: &CheckArgs,
    gpus: &[Gpu],
    ops: &[CheckOp],
    results: &Results,
    worst_pair: Option<WorstPair>,
) -> wgconv::Result<()> {
    let ops_json = |summaries: &[OpSummary]| -> Vec<serde_json::Value> {
        ops.iter()
            .zip(summaries)
            .map(|(op, s)| summary_json(*op, s))
            .collect()
    };
    let entries: Vec<serde_json::Value> = gpus
        .iter()
        .zip(&results.against_cpu)
        .enumerate()
        .map(|(i, (gpu, summaries))| {
            let info = gpu.adapter_info();
            serde_json::json!({
                "index": i + 1,
                "adapter": info.name,
                "backend": info.backend.to_str(),
                "device_type": format!("{:?}", info.device_type),
                "driver": info.driver,
                "driver_info": info.driver_info,
                "ops": ops_json(summaries),
            })
        })
        .collect();
    let mut json = serde_json::json!({
        "seed": args.seed,
        "cases_per_op": args.cases,
        "adapters": entries,
    });
    if !results.against_first.is_empty() {
        json["against_first_adapter"] = results
            .against_first
            .iter()
            .enumerate()
            .map(|(k, summaries)| {
                serde_json::json!({
                    "index": k + 2,
                    "against": 1,
                    "ops": ops_json(summaries),
                })
            })
            .collect();
        json["worst_pair"] = worst_pair.map_or(serde_json::Value::Null, |w| {
            serde_json::json!({
                "index": w.adapter + 1,
                "against": 1,
                "summary": summary_json(w.op, w.summary),
            })
        });
    }
    if let [gpu] = gpus {
        json["adapter"] = gpu.adapter_info().name.clone().into();
        json["ops"] = ops_json(&results.against_cpu[0]).into();
    }
    let text = serde_json::to_string_pretty(&json).map_err(|e| wgconv::Error::InvalidArgument {
        op: "wgconv check",
        what: format!("cannot encode the results as JSON: {e}"),
    })?;
    std::fs::write(path, text).map_err(|e| wgconv::Error::InvalidArgument {
        op: "wgconv check",
        what: format!("cannot write {}: {e}", path.display()),
    })
}

/// Runs `cases` random cases of each op on one adapter; the main job's check.
pub fn sweep(
    gpu: &Gpu,
    ops: &[CheckOp],
    cases: usize,
    seed: u64,
    progress: bool,
) -> wgconv::Result<Vec<OpSummary>> {
    let mut results = sweep_adapters(std::slice::from_ref(gpu), ops, cases, seed, progress, false)?;
    Ok(results.against_cpu.swap_remove(0))
}

/// Runs `cases` random cases of each op on every adapter: each case is drawn and its CPU
/// reference computed once, then run on each adapter in turn, so every adapter sees the same
/// inputs; with `compare_adapters` each result is also compared with the first adapter's.
pub fn sweep_adapters(
    gpus: &[Gpu],
    ops: &[CheckOp],
    cases: usize,
    seed: u64,
    progress: bool,
    compare_adapters: bool,
) -> wgconv::Result<Results> {
    let bar = progress.then(|| {
        let bar = indicatif::ProgressBar::new((ops.len() * cases) as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:<24} [{bar:40}] {pos}/{len} {elapsed}")
        {
            bar.set_style(style);
        }
        bar
    });
    let per_op = || -> Vec<OpSummary> { ops.iter().map(|_| OpSummary::default()).collect() };
    let mut results = Results {
        against_cpu: gpus.iter().map(|_| per_op()).collect(),
        against_first: if compare_adapters {
            gpus.iter().skip(1).map(|_| per_op()).collect()
        } else {
            Vec::new()
        },
    };
    for (j, &op) in ops.iter().enumerate() {
        if let Some(bar) = &bar {
            bar.set_message(op_name(op));
        }
        for case in 0..cases {
            // Each case has its own generator, so `--seed S` reproduces any single case.
            let mut rng = Rng::new(
                seed.wrapping_mul(0x9E37_79B9)
                    .wrapping_add((op as u64) << 32 | case as u64),
            );
            let id = format!("seed {seed} case {case}");
            match draw_case(op, &mut rng, &id)? {
                Some(c) => {
                    let mut first: Option<Output> = None;
                    for (i, gpu) in gpus.iter().enumerate() {
                        let got = run_case(gpu, &c.work)
                            .map_err(|e| adapters::on(gpus, i, "wgconv check", e))?;
                        results.against_cpu[i][j]
                            .record(&verdict(&got, &c.reference, &c.judge), &c.describe);
                        if compare_adapters {
                            match &first {
                                None => first = Some(got),
                                Some(reference) => results.against_first[i - 1][j]
                                    .record(&verdict(&got, reference, &c.judge), &c.describe),
                            }
                        }
                    }
                }
                // A case the op has no geometry for counts as checked, as it always has.
                None => {
                    for summaries in results
                        .against_cpu
                        .iter_mut()
                        .chain(results.against_first.iter_mut())
                    {
                        summaries[j].cases += 1;
                    }
                }
            }
            if let Some(bar) = &bar {
                bar.inc(1);
            }
        }
        if !progress {
            let counts: Vec<String> = results
                .against_cpu
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let who = if gpus.len() > 1 {
                        format!("{} ", adapters::tag(i))
                    } else {
                        String::new()
                    };
                    format!("{who}{} failures", s[j].failures)
                })
                .collect();
            eprintln!("checked {} x {cases}: {}", op_name(op), counts.join(", "));
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(results)
}

/// A result of one case, from an adapter or the CPU reference.
struct Output {
    values: ArrayD<f32>,
    /// Pooling's indices, which must match exactly.
    indices: Option<ArrayD<i64>>,
}

impl Output {
    fn values<D: ndarray::Dimension>(a: ndarray::Array<f32, D>) -> Self {
        Output {
            values: a.into_dyn(),
            indices: None,
        }
    }
}

/// A comparison, and how much of its bound the worst element used.
struct Verdict {
    report: Comparison,
    error_over_bound: f64,
}

/// `got` against `want`: the values as `judge` says, the indices (if any) equal.
fn verdict(got: &Output, want: &Output, judge: &Judge) -> Verdict {
    let mut report = judge.report(got.values.view(), want.values.view());
    let mut error_over_bound = report.worst_ratio;
    if got.indices != want.indices {
        report.failures += 1;
        error_over_bound = f64::INFINITY;
    }
    Verdict {
        report,
        error_over_bound,
    }
}
