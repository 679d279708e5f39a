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

/// The subgroup width the adapter fixes, read from what it reports rather than its name: the
/// SUBGROUP feature on the device and `AdapterInfo::subgroup_min_size == subgroup_max_size`, a
/// power of two from 4 to 64 (the widths the subgroup kernels are composed for,
/// `src/gpu/conv2d/subgroup.rs`).
pub fn subgroup_width(gpu: &Gpu) -> Option<u32> {
    let info = gpu.adapter_info();
    let fixed = info.subgroup_min_size == info.subgroup_max_size;
    let width = info.subgroup_min_size;
    (gpu.device().features().contains(wgpu::Features::SUBGROUP)
        && fixed
        && width.is_power_of_two()
        && (4..=64).contains(&width))
    .then_some(width)
}

/// Whether the adapter runs 4-wide subgroups, which the packed4 kernels need.
pub fn has_subgroups_of_4(gpu: &Gpu) -> bool {
    subgroup_width(gpu) == Some(4)
}

/// Whether the adapter runs 8-wide subgroups, which the packed8 kernels need.
pub fn has_subgroups_of_8(gpu: &Gpu) -> bool {
    subgroup_width(gpu) == Some(8)
}

/// Whether the adapter runs 16-wide subgroups, which the packed16 kernels need.
pub fn has_subgroups_of_16(gpu: &Gpu) -> bool {
    subgroup_width(gpu) == Some(16)
}

/// Asserts that `variant` is available on `gpu` exactly where the adapter's features and
/// subgroup sizes say it must be (subgroup at a fixed width of 4 to 64, packed4, packed8 and packed16 at exactly 4, 8 and 16,
/// every other variant everywhere), unless the subgroup probe found subgroups that do not
/// behave as reported, which the refusal must say; returns whether it is available. A refusal
/// is said out loud.
pub fn check_availability(gpu: &Gpu, variant: wgconv::ConvVariant) -> bool {
    use wgconv::ConvVariant;
    let expected = match variant {
        ConvVariant::Subgroup => subgroup_width(gpu).is_some(),
        ConvVariant::Packed4 => has_subgroups_of_4(gpu),
        ConvVariant::Packed8 => has_subgroups_of_8(gpu),
        ConvVariant::Packed16 => has_subgroups_of_16(gpu),
        ConvVariant::Direct | ConvVariant::Depthwise => true,
        // The tiled kernels declare 16 KiB of workgroup memory.
        ConvVariant::Tiled => gpu.limits().max_compute_workgroup_storage_size >= 16384,
    };
    let info = gpu.adapter_info();
    match variant.available(gpu) {
        Ok(()) => assert!(
            expected,
            "{} ran on {} without SUBGROUP and subgroups of a width it serves ({}..={})",
            variant.name(),
            info.name,
            info.subgroup_min_size,
            info.subgroup_max_size
        ),
        Err(why) => {
            let probe_refused = why.contains("the adapter reports");
            assert!(
                !expected || probe_refused,
                "{} must run on {} (features {:?}, subgroups {}..={}): {why}",
                variant.name(),
                info.name,
                gpu.device().features(),
                info.subgroup_min_size,
                info.subgroup_max_size
            );
            eprintln!("NOT RUN: {} on {}: {why}", variant.name(), info.name);
        }
    }
    variant.available(gpu).is_ok()
}

/// Random parameter sets per flavour in a sweep: `WGCONV_SWEEP_CASES`, else `default`.
pub fn cases_per_flavour(default: usize) -> usize {
    std::env::var("WGCONV_SWEEP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Records `report`'s worst error/bound ratio under `op` and prints it (visible with
/// `--nocapture`) whenever it is the worst seen for that op in this test binary, so a run shows
/// how much of each bound the results use.
pub fn note_ratio(op: &str, report: &wgconv::Comparison) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static WORST: Mutex<Option<HashMap<String, f64>>> = Mutex::new(None);
    let mut worst = WORST.lock().unwrap_or_else(|e| e.into_inner());
    let seen = worst
        .get_or_insert_with(HashMap::new)
        .entry(op.to_string())
        .or_insert(0.0);
    if report.worst_ratio > *seen {
        *seen = report.worst_ratio;
        eprintln!("worst error/bound {op}: {:.4}", report.worst_ratio);
    }
}

/// Runs `conv2d_with_activation` with a bias on `gpu` and asserts it against the CPU reference
/// within its error bound; `what` names the case.
pub fn assert_forward_matches_reference(
    gpu: &Gpu,
    x: &ndarray::Array4<f32>,
    w: &ndarray::Array4<f32>,
    b: &ndarray::Array1<f32>,
    p: &wgconv::Conv2dParams,
    activation: wgconv::Activation,
    what: &dyn Fn(&str) -> String,
) {
    use wgconv::{compare, cpu, ErrorBound, GpuTensor};
    let up =
        |a: &ndarray::Array4<f32>| GpuTensor::upload_with_layout(gpu, a.view(), p.layout).unwrap();
    let want =
        cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), p, activation).unwrap();
    let bound =
        ErrorBound::conv2d_with_activation(x.view(), w.view(), Some(b.view()), p, activation)
            .unwrap();
    let bt = GpuTensor::upload_1d(gpu, b.view()).unwrap();
    let got = wgconv::conv2d_with_activation(&up(x), &up(w), Some(&bt), p, activation)
        .unwrap()
        .read()
        .unwrap();
    let r = compare(got.view(), want.view(), &bound);
    note_ratio("conv2d", &r);
    assert!(r.passed(), "{}\n{r}", what("forward"));
}

/// Runs `conv2d_backward` (all three gradients) on `gpu` and asserts each against the CPU
/// reference within its error bound; `what` names the case.
pub fn assert_backward_matches_reference(
    gpu: &Gpu,
    x: &ndarray::Array4<f32>,
    w: &ndarray::Array4<f32>,
    dy: &ndarray::Array4<f32>,
    p: &wgconv::Conv2dParams,
    what: &dyn Fn(&str) -> String,
) {
    use wgconv::{compare, cpu, ErrorBound, GpuTensor, GradSelection};
    let up =
        |a: &ndarray::Array4<f32>| GpuTensor::upload_with_layout(gpu, a.view(), p.layout).unwrap();
    let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), p, GradSelection::ALL).unwrap();
    let bound =
        ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), p, GradSelection::ALL).unwrap();
    let got = wgconv::conv2d_backward(&up(x), &up(w), &up(dy), p, GradSelection::ALL).unwrap();
    let r = compare(
        got.input.unwrap().read().unwrap().view(),
        want.input.unwrap().view(),
        bound.input.as_ref().unwrap(),
    );
    note_ratio("conv2d_backward_input", &r);
    assert!(r.passed(), "{}\n{r}", what("dx"));
    let r = compare(
        got.weight.unwrap().read().unwrap().view(),
        want.weight.unwrap().view(),
        bound.weight.as_ref().unwrap(),
    );
    note_ratio("conv2d_backward_weight", &r);
    assert!(r.passed(), "{}\n{r}", what("dw"));
    let r = compare(
        got.bias.unwrap().read_1d().unwrap().view(),
        want.bias.unwrap().view(),
        bound.bias.as_ref().unwrap(),
    );
    note_ratio("conv2d_backward_bias", &r);
    assert!(r.passed(), "{}\n{r}", what("db"));
}

/// Runs `conv_transpose2d` with the bias `tb` on `gpu` and asserts it against the CPU reference
/// within its error bound; `what` names the case.
pub fn assert_transpose_matches_reference(
    gpu: &Gpu,
    dy: &ndarray::Array4<f32>,
    w: &ndarray::Array4<f32>,
    tb: &ndarray::Array1<f32>,
    tp: &wgconv::ConvTranspose2dParams,
    what: &dyn Fn(&str) -> String,
) {
    use wgconv::{compare, cpu, ErrorBound, GpuTensor};
    let up =
        |a: &ndarray::Array4<f32>| GpuTensor::upload_with_layout(gpu, a.view(), tp.layout).unwrap();
    let want = cpu::conv_transpose2d(dy.view(), w.view(), Some(tb.view()), tp).unwrap();
    let bound = ErrorBound::conv_transpose2d(dy.view(), w.view(), Some(tb.view()), tp).unwrap();
    let got = wgconv::conv_transpose2d(
        &up(dy),
        &up(w),
        Some(&GpuTensor::upload_1d(gpu, tb.view()).unwrap()),
        tp,
    )
    .unwrap()
    .read()
    .unwrap();
    let r = compare(got.view(), want.view(), &bound);
    note_ratio("conv_transpose2d", &r);
    assert!(r.passed(), "{}\n{r}", what("conv_transpose2d"));
}
