//! `--adapter`: which adapters a subcommand runs on, and how its output names them.

use wgconv::{Error, Gpu};

/// The help every subcommand's `--adapter` shares.
pub const HELP: &str = "Adapter to run on: a case-insensitive part of its name, a backend \
    (vulkan, gl, metal, dx12), `cpu` or `gpu` (software or not), or words of these that must \
    all match (\"llvmpipe gl\"); the best-ranked of those that match; overrides \
    WGCONV_ADAPTER. `wgconv info` lists them";

/// One device, for the subcommands that run on one (run, the main job): the best-ranked adapter
/// that `spec` names, else the one `Gpu::new` picks.
pub fn open_one(spec: Option<&str>) -> wgconv::Result<Gpu> {
    match spec {
        None => Gpu::new(),
        Some(spec) if spec.trim().eq_ignore_ascii_case("all") => Err(Error::InvalidArgument {
            op: "--adapter",
            what: "`all` is for info, check and bench; this runs on one adapter (name it, or \
                   its backend)"
                .into(),
        }),
        Some(spec) => Gpu::with_adapter(spec).map_err(as_flag_error),
    }
}

/// The devices for check and bench: every adapter that `spec` names; without a spec, every
/// adapter when `every` is set, else the one `Gpu::new` picks.
pub fn open_many(spec: Option<&str>, every: bool) -> wgconv::Result<Vec<Gpu>> {
    match spec {
        None if every => Gpu::on_each_adapter("all"),
        None => Gpu::new().map(|gpu| vec![gpu]),
        Some(spec) => Gpu::on_each_adapter(spec).map_err(as_flag_error),
    }
}

/// A spec that names no adapter is a mistake in the flag, so the error says `--adapter`.
fn as_flag_error(e: Error) -> Error {
    match e {
        Error::InvalidArgument { what, .. } => Error::InvalidArgument {
            op: "--adapter",
            what,
        },
        other => other,
    }
}

/// How output names an adapter: its name, backend and device type.
pub fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

/// The adapters of a run, numbered as the tables refer to them.
pub fn print_legend(gpus: &[Gpu]) {
    println!("adapters:");
    for (i, gpu) in gpus.iter().enumerate() {
        println!("  {} {}", tag(i), describe(gpu.adapter_info()));
    }
}

/// `[1]`, `[2]`, ...: the i-th adapter of a run in its tables.
pub fn tag(i: usize) -> String {
    format!("[{}]", i + 1)
}

/// An error of subcommand `op` on one of several adapters, naming the adapter; with one
/// adapter the error is unchanged.
pub fn on(gpus: &[Gpu], i: usize, op: &'static str, e: Error) -> Error {
    if gpus.len() < 2 {
        return e;
    }
    // Only printed: the variant no longer matters, the adapter's name does.
    Error::InvalidArgument {
        op,
        what: format!(
            "on adapter {} {}: {e}",
            tag(i),
            describe(gpus[i].adapter_info())
        ),
    }
}
