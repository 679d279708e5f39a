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

/// Whether the adapter runs 8-wide subgroups, read from what it reports rather than its name:
/// the SUBGROUP feature on the device and a subgroup size fixed at exactly 8 (wgpu's
/// `AdapterInfo::subgroup_min_size == subgroup_max_size == 8`), the rule the planner documents
/// for subgroup8 and packed8 (`src/gpu/conv2d/variant.rs`).
pub fn has_subgroups_of_8(gpu: &Gpu) -> bool {
    let info = gpu.adapter_info();
    gpu.device().features().contains(wgpu::Features::SUBGROUP)
        && (info.subgroup_min_size, info.subgroup_max_size) == (8, 8)
}

/// Asserts that `variant` is available on `gpu` exactly where the adapter's features and
/// subgroup sizes say it must be (the subgroup variants where [`has_subgroups_of_8`], every
/// other variant everywhere), and returns whether it is; a refusal is said out loud.
pub fn check_availability(gpu: &Gpu, variant: wgconv::ConvVariant) -> bool {
    use wgconv::ConvVariant;
    let expected = match variant {
        ConvVariant::Subgroup8 | ConvVariant::Packed8 => has_subgroups_of_8(gpu),
        ConvVariant::Direct | ConvVariant::Tiled | ConvVariant::Depthwise => true,
    };
    let info = gpu.adapter_info();
    match variant.available(gpu) {
        Ok(()) => assert!(
            expected,
            "{} ran on {} without SUBGROUP and subgroups of exactly 8 ({}..={})",
            variant.name(),
            info.name,
            info.subgroup_min_size,
            info.subgroup_max_size
        ),
        Err(why) => {
            assert!(
                !expected,
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
    expected
}

/// Random parameter sets per flavour in a sweep: `WGCONV_SWEEP_CASES`, else `default`.
pub fn cases_per_flavour(default: usize) -> usize {
    std::env::var("WGCONV_SWEEP_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `conv2d_with_activation` with a bias on `gpu` and asserts it against the CPU reference
/// at the usual tolerance; `what` names the case.
pub fn assert_forward_matches_reference(
    gpu: &Gpu,
    x: &ndarray::Array4<f32>,
    w: &ndarray::Array4<f32>,
    b: &ndarray::Array1<f32>,
    p: &wgconv::Conv2dParams,
    activation: wgconv::Activation,
    what: &dyn Fn(&str) -> String,
) {
    use wgconv::{compare, cpu, GpuTensor, Tolerance};
    let g = p
        .geometry("t", x.dim().into(), w.dim().into(), None)
        .unwrap();
    let up =
        |a: &ndarray::Array4<f32>| GpuTensor::upload_with_layout(gpu, a.view(), p.layout).unwrap();
    let want =
        cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), p, activation).unwrap();
    let bt = GpuTensor::upload_1d(gpu, b.view()).unwrap();
    let got = wgconv::conv2d_with_activation(&up(x), &up(w), Some(&bt), p, activation)
        .unwrap()
        .read()
        .unwrap();
    let r = compare(
        got.view(),
        want.view(),
        Tolerance::for_reduction(g.reduction_len()),
    );
    assert!(r.passed(), "{}\n{r}", what("forward"));
}

/// Runs `conv2d_backward` (all three gradients) on `gpu` and asserts each against the CPU
/// reference at the usual tolerance for its reduction length; `what` names the case.
pub fn assert_backward_matches_reference(
    gpu: &Gpu,
    x: &ndarray::Array4<f32>,
    w: &ndarray::Array4<f32>,
    dy: &ndarray::Array4<f32>,
    p: &wgconv::Conv2dParams,
    what: &dyn Fn(&str) -> String,
) {
    use wgconv::{compare, cpu, GpuTensor, GradSelection, Tolerance};
    let g = p
        .geometry("t", x.dim().into(), w.dim().into(), None)
        .unwrap();
    let up =
        |a: &ndarray::Array4<f32>| GpuTensor::upload_with_layout(gpu, a.view(), p.layout).unwrap();
    let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), p, GradSelection::ALL).unwrap();
    let got = wgconv::conv2d_backward(&up(x), &up(w), &up(dy), p, GradSelection::ALL).unwrap();
    let dx_len = g.out_channels_per_group() * g.h.kernel * g.w.kernel;
    let dw_len = g.batch * g.h.output * g.w.output;
    let r = compare(
        got.input.unwrap().read().unwrap().view(),
        want.input.unwrap().view(),
        Tolerance::for_reduction(dx_len),
    );
    assert!(r.passed(), "{}\n{r}", what("dx"));
    let r = compare(
        got.weight.unwrap().read().unwrap().view(),
        want.weight.unwrap().view(),
        Tolerance::for_reduction(dw_len),
    );
    assert!(r.passed(), "{}\n{r}", what("dw"));
    let r = compare(
        got.bias.unwrap().read_1d().unwrap().view(),
        want.bias.unwrap().view(),
        Tolerance::for_reduction(dw_len),
    );
    assert!(r.passed(), "{}\n{r}", what("db"));
}

/// Runs `conv_transpose2d` with the bias `tb` on `gpu` and asserts it against the CPU reference
/// at the usual tolerance; `what` names the case.
pub fn assert_transpose_matches_reference(
    gpu: &Gpu,
    dy: &ndarray::Array4<f32>,
    w: &ndarray::Array4<f32>,
    tb: &ndarray::Array1<f32>,
    tp: &wgconv::ConvTranspose2dParams,
    what: &dyn Fn(&str) -> String,
) {
    use wgconv::{compare, cpu, GpuTensor, Tolerance};
    let tg = tp
        .geometry("t", dy.dim().into(), w.dim().into(), Some(tb.len()))
        .unwrap();
    let up =
        |a: &ndarray::Array4<f32>| GpuTensor::upload_with_layout(gpu, a.view(), tp.layout).unwrap();
    let want = cpu::conv_transpose2d(dy.view(), w.view(), Some(tb.view()), tp).unwrap();
    let got = wgconv::conv_transpose2d(
        &up(dy),
        &up(w),
        Some(&GpuTensor::upload_1d(gpu, tb.view()).unwrap()),
        tp,
    )
    .unwrap()
    .read()
    .unwrap();
    let len = tg.out_channels_per_group() * tg.h.kernel * tg.w.kernel;
    let r = compare(got.view(), want.view(), Tolerance::for_reduction(len));
    assert!(r.passed(), "{}\n{r}", what("conv_transpose2d"));
}
