//! `wgconv info`: every adapter, its limits and kernel variants, and the one chosen and why.

use clap::Args;
use wgconv::gpu::conv2d as planner;
use wgconv::{Conv2dParams, ConvPass, ConvVariant, Gpu, Padding, Pool2dParams, PoolVariant};

use crate::adapters;

#[derive(Args)]
pub struct InfoArgs {
    /// List only the adapters this names: `all`, a case-insensitive part of the name, a backend
    /// (vulkan, gl, metal, dx12), `cpu` or `gpu` (software or not), or words of these that must
    /// all match ("llvmpipe gl"); the one marked chosen is then the one `run --adapter` would
    /// take.
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
}

/// Layers whose planner picks `info` shows: what the planner does with a dense 3x3 layer, a
/// 3-channel stem and a depthwise layer differs, and each rule shows in one of them.
fn sample_layers() -> wgconv::Result<Vec<(&'static str, wgconv::Conv2dGeometry)>> {
    let layer = |name, c_in, hw, c_out, k, stride, pad, groups: usize| {
        Conv2dParams::default()
            .with_stride(stride)
            .with_padding(Padding::uniform(pad))
            .with_groups(groups)
            .geometry(
                "info",
                [1, c_in, hw, hw],
                [c_out, c_in / groups, k, k],
                None,
            )
            .map(|g| (name, g))
    };
    Ok(vec![
        layer("3x3 64->64 56x56", 64, 56, 64, 3, 1, 1, 1)?,
        layer("stem 7x7 s2 3->64 224x224", 3, 224, 64, 7, 2, 3, 1)?,
        layer("depthwise 3x3 32 112x112", 32, 112, 32, 3, 1, 1, 32)?,
    ])
}

/// Every pooling variant. The exhaustive match fails to compile when a variant is added and
/// not listed here.
fn pool_variants() -> [PoolVariant; 2] {
    let all = [PoolVariant::PerElement, PoolVariant::Blocked];
    for v in all {
        match v {
            PoolVariant::PerElement | PoolVariant::Blocked => {}
        }
    }
    all
}

fn mib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    }
}

pub fn run(args: &InfoArgs) -> wgconv::Result<()> {
    let listed: Vec<wgpu::AdapterInfo> = Gpu::available_adapters()
        .into_iter()
        .filter(|a| {
            args.adapter
                .as_deref()
                .is_none_or(|spec| Gpu::adapter_matches(a, spec))
        })
        .collect();
    println!(
        "adapters wgpu sees (WGPU_BACKEND={:?}){}: {}",
        std::env::var("WGPU_BACKEND").unwrap_or_default(),
        args.adapter
            .as_deref()
            .map_or(String::new(), |s| format!(", matching {s:?}")),
        listed.len()
    );
    // One device per adapter: what a variant needs (features, subgroup size) is the device's.
    // A spec that matches nothing fails here, with the list of adapters there are.
    let gpus = adapters::open_many(Some(args.adapter.as_deref().unwrap_or("all")), true);
    match gpus {
        Ok(gpus) => {
            for (i, gpu) in gpus.iter().enumerate() {
                describe_adapter(i, gpu)?;
            }
        }
        Err(e @ wgconv::Error::InvalidArgument { .. }) => return Err(e),
        // A device that cannot be created still leaves the others to list.
        Err(e) => {
            for (i, a) in listed.iter().enumerate() {
                println!("{} {}", adapters::tag(i), adapters::describe(a));
            }
            println!("  (cannot create a device on every adapter: {e})");
        }
    }
    let gpu = match &args.adapter {
        Some(spec) if spec.trim().eq_ignore_ascii_case("all") => Gpu::new()?,
        spec => adapters::open_one(spec.as_deref())?,
    };
    let info = gpu.adapter_info();
    println!("chosen: {}", adapters::describe(info));
    println!("  why: {}", gpu.selection_reason());
    if let Some(hint) = vector_width_hint(info.backend, &info.name, cpu_has_avx512()) {
        println!("  hint: {hint}");
    }
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
        (
            "max_texture_dimension_2d",
            u64::from(l.max_texture_dimension_2d),
        ),
    ] {
        println!("    {name:<40} {value}");
    }
    Ok(())
}

/// One adapter: what it is, the limits the planner and the splitter read, and the variants.
fn describe_adapter(i: usize, gpu: &Gpu) -> wgconv::Result<()> {
    let info = gpu.adapter_info();
    let features = gpu.device().features();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("{} {}", adapters::tag(i), info.name);
    println!(
        "    backend {:?}, device type {:?}, driver {:?} {:?}",
        info.backend, info.device_type, info.driver, info.driver_info
    );
    let subgroups = features.contains(wgpu::Features::SUBGROUP);
    println!(
        "    subgroup size {}..={}{}, SUBGROUP feature {}, timestamp queries {}",
        info.subgroup_min_size,
        info.subgroup_max_size,
        // wgpu's placeholder, the widest range there is, when the backend does not say.
        if !subgroups
            && (info.subgroup_min_size, info.subgroup_max_size)
                == (
                    wgpu::MINIMUM_SUBGROUP_MIN_SIZE,
                    wgpu::MAXIMUM_SUBGROUP_MAX_SIZE
                )
        {
            " (not reported by the backend)"
        } else {
            ""
        },
        yes_no(subgroups),
        yes_no(features.contains(wgpu::Features::TIMESTAMP_QUERY))
    );
    let l = gpu.limits();
    println!(
        "    limits: max storage binding {}, max buffer {}, max workgroup invocations {}, \
         max texture 2D {}",
        mib(l.max_storage_buffer_binding_size),
        mib(l.max_buffer_size),
        l.max_compute_invocations_per_workgroup,
        l.max_texture_dimension_2d
    );

    // Which variant the planner takes for each sample layer and pass, listed on the variant.
    let mut picks: Vec<(ConvVariant, Vec<String>)> = Vec::new();
    let mut reasons = Vec::new();
    for (name, g) in sample_layers()? {
        let choices: Vec<planner::Choice> =
            [ConvPass::Forward, ConvPass::InputGrad, ConvPass::WeightGrad]
                .into_iter()
                .map(|pass| planner::plan(gpu, pass, &g))
                .collect();
        for (k, choice) in choices.iter().enumerate() {
            // Each distinct pick of a layer once: its passes, and the reason of the first.
            if choices[..k].iter().any(|c| c.variant == choice.variant) {
                continue;
            }
            let passes: Vec<&str> = choices
                .iter()
                .filter(|c| c.variant == choice.variant)
                .map(|c| c.pass.name())
                .collect();
            let text = format!("{name} ({})", passes.join(", "));
            match picks.iter_mut().find(|(v, _)| *v == choice.variant) {
                Some((_, texts)) => texts.push(text),
                None => picks.push((choice.variant, vec![text])),
            }
            reasons.push(format!("{name} {}: {}", passes.join(", "), choice.reason));
        }
    }
    println!(
        "    conv2d variants (can it run them; <- the planner's pick for a layer at batch 1):"
    );
    for &v in ConvVariant::ALL {
        let can = match v.available(gpu) {
            Ok(()) => "yes".to_string(),
            Err(why) => format!("no: {why}"),
        };
        let pick = picks
            .iter()
            .find(|(p, _)| *p == v)
            .map_or(String::new(), |(_, texts)| {
                format!("  <- {}", texts.join("; "))
            });
        println!("      {:<10} {can}{pick}", v.name());
    }
    for reason in reasons {
        println!("      why: {reason}");
    }
    if let Some(forced) = gpu.forced_conv_variant() {
        println!(
            "      forced: every call runs {} ({})",
            forced.name(),
            planner::VARIANT_ENV
        );
    }

    let pool = Pool2dParams::new(3, 3).with_stride(2).with_padding(1);
    let g = pool.geometry("info", [1, 64, 112, 112])?;
    let (forward, backward) = (
        PoolVariant::choose(gpu, &g, false),
        PoolVariant::choose(gpu, &g, true),
    );
    let names: Vec<&str> = pool_variants().iter().map(|v| v.name()).collect();
    println!(
        "    pooling variants: {} (each runs on any adapter)",
        names.join(", ")
    );
    let why = match gpu.forced_pool_variant() {
        Some(_) => "forced".to_string(),
        None => format!("chosen by device type, {:?}", info.device_type),
    };
    println!(
        "      <- 3x3 s2 p1 64 112x112: forward {} ({}), backward {} ({}); {why}",
        forward.name(),
        forward.forward_entry_point(&g, true),
        backward.name(),
        backward.backward_entry_point(&g)
    );
    Ok(())
}

/// The suite-time ratio of lavapipe at 512 bits (16-lane subgroups, `packed16`) over 256 bits
/// (`packed8`) measured on AVX-512 CPUs (docs/benchmarks.md): a Zen 4, whose 512-bit units are
/// double-pumped, and a Zen 5, whose are full width.
const AVX512_SUITE_SPEEDUP: &str = "1.10x (AMD Zen 4) to 1.32x (Zen 5)";

/// A hint for lavapipe's Vulkan driver at its default 256-bit vectors on a CPU with AVX-512:
/// `LP_NATIVE_VECTOR_WIDTH=512` gives 16-lane subgroups, whose kernels are faster there.
/// (wgpu's GL backend on the same llvmpipe has no subgroups, so no hint.)
fn vector_width_hint(backend: wgpu::Backend, adapter: &str, avx512: bool) -> Option<String> {
    let default_lavapipe = backend == wgpu::Backend::Vulkan
        && adapter.contains("llvmpipe")
        && adapter.contains("256 bits");
    (default_lavapipe && avx512).then(|| {
        format!(
            "this CPU has AVX-512: LP_NATIVE_VECTOR_WIDTH=512 gives lavapipe 16-lane subgroups, \
             whose conv kernels ran the resnet50 suite {AVX512_SUITE_SPEEDUP} faster than at 256 bits \
             (docs/benchmarks.md)"
        )
    })
}

fn cpu_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only lavapipe's Vulkan driver at 256 bits on an AVX-512 CPU gets the hint.
    #[test]
    fn the_vector_width_hint_is_for_256_bit_lavapipe_on_avx512() {
        use wgpu::Backend::{Gl, Vulkan};
        let lavapipe = |bits: u32| format!("llvmpipe (LLVM 15.0.6, {bits} bits)");
        let hint = vector_width_hint(Vulkan, &lavapipe(256), true).expect("a hint");
        assert!(hint.contains("LP_NATIVE_VECTOR_WIDTH=512"), "{hint}");
        assert!(hint.contains(AVX512_SUITE_SPEEDUP), "{hint}");
        assert_eq!(vector_width_hint(Vulkan, &lavapipe(256), false), None);
        assert_eq!(vector_width_hint(Vulkan, &lavapipe(512), true), None);
        assert_eq!(vector_width_hint(Gl, &lavapipe(256), true), None);
        let swiftshader = "SwiftShader Device (Subzero)";
        assert_eq!(vector_width_hint(Vulkan, swiftshader, true), None);
    }
}
