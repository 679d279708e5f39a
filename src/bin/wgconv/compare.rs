//! `wgconv compare GOT.npy EXPECTED.npy --op OP ...`: two results of one op computed elsewhere,
//! judged under the per-element error bound the op's own inputs give (max pooling: exactly).

use std::path::PathBuf;

use clap::Args;
use ndarray::IxDyn;
use wgconv::Error;

use crate::run::{check_compare_flags, read_f32, report_outcome, Gradient, Judge, Op, OpFlags};
use crate::Outcome;

#[derive(Args)]
pub struct CompareArgs {
    /// The result to judge (.npy, or ARCHIVE.npz:NAME).
    got: PathBuf,
    /// The reference it should match.
    expected: PathBuf,
    /// The op both files are a result of.
    #[arg(long, value_enum)]
    op: Op,
    /// conv2d-backward: which gradient the files hold.
    #[arg(long, value_enum)]
    gradient: Option<Gradient>,
    #[command(flatten)]
    f: OpFlags,
}

pub fn run(args: &CompareArgs) -> wgconv::Result<Outcome> {
    judge(args).map_err(|e| match e {
        // The reading and judging are `wgconv run`'s, whose errors name it.
        Error::InvalidArgument {
            op: "wgconv run",
            what,
        } => Error::InvalidArgument {
            op: "wgconv compare",
            what,
        },
        e => e,
    })
}

fn judge(args: &CompareArgs) -> wgconv::Result<Outcome> {
    check_compare_flags(args.op, &args.f, args.gradient)?;
    let layout = wgconv::flags::layout(&args.f.layout)?;
    let judge = Judge::of(args.op, &args.f, layout, args.gradient)?;
    let got = read_f32::<IxDyn>(&args.got, "result")?;
    let expected = read_f32::<IxDyn>(&args.expected, "reference")?;
    Ok(report_outcome(
        &args.got.display().to_string(),
        &judge.compare(&got, &expected)?,
    ))
}
