//! Test helpers: the shared GPU context, and the library's seeded sweep generators.
#![allow(dead_code, unused_imports)]

use std::sync::OnceLock;

use wgconv::Gpu;

pub use wgconv::sweep::{random_conv_case as random_case, ConvCase, Flavour, Rng};

/// Set to skip GPU tests on a machine without an adapter. Never set on CI: there a missing
/// adapter fails every GPU test.
pub const SKIP_ENV: &str = "WGCONV_SKIP_GPU_TESTS";

/// The process-wide GPU. Without an adapter this panics (the test fails) unless
/// `WGCONV_SKIP_GPU_TESTS=1` is set outside CI, in which case it returns `None` and says so.
pub fn gpu() -> Option<&'static Gpu> {
    static GPU: OnceLock<Result<Gpu, String>> = OnceLock::new();
    match GPU.get_or_init(|| Gpu::new().map_err(|e| e.to_string())) {
        Ok(gpu) => Some(gpu),
        Err(e) => {
            let on_ci = std::env::var_os("CI").is_some();
            if !on_ci && std::env::var_os(SKIP_ENV).is_some() {
                eprintln!("SKIPPED (no GPU, {SKIP_ENV} set): {e}");
                None
            } else {
                panic!("GPU tests need an adapter: {e}");
            }
        }
    }
}

/// Random parameter sets per flavour in a sweep: `WGCONV_SWEEP_CASES`, else `default`.
pub fn cases_per_flavour(default: usize) -> usize {
    std::env::var("WGCONV_SWEEP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
