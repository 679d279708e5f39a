//! Adapter choice: which adapters a name or backend picks, how they rank, and a `Gpu` on each.

use super::gpu::*;
use crate::error::{Error, Result};

impl Gpu {
    /// A `Gpu` on the best-ranked adapter that `spec` names (see [`Gpu::adapter_matches`]),
    /// ignoring `WGCONV_ADAPTER`; blocks until the device is created. A spec that matches no
    /// adapter is `InvalidArgument`, listing the adapters there are; no adapter at all is
    /// `NoAdapter`.
    pub fn with_adapter(spec: &str) -> Result<Self> {
        let matching = Self::matching_adapters(spec)?;
        let seen = matching.len();
        let mut adapters: Vec<wgpu::Adapter> = matching.into_iter().map(|(_, a)| a).collect();
        // `matching_adapters` never returns an empty list.
        let best = best_ranked(&adapters).unwrap_or(0);
        let adapter = adapters.swap_remove(best);
        let selection = if seen == 1 {
            format!("the only adapter that {spec:?} matches")
        } else {
            format!(
                "ranked first of the {seen} adapters that {spec:?} matches (discrete > \
                 integrated > virtual > CPU; native backends over GL)"
            )
        };
        pollster::block_on(Self::from_adapter(adapter, selection))
    }

    /// A `Gpu` on every adapter that `spec` names (see [`Gpu::adapter_matches`]), in the
    /// order of [`Gpu::available_adapters`], for running the same work on each. Errors as
    /// [`Gpu::with_adapter`] does, or with the first device that cannot be created.
    pub fn on_each_adapter(spec: &str) -> Result<Vec<Self>> {
        Self::matching_adapters(spec)?
            .into_iter()
            .map(|(i, adapter)| {
                let info = adapter.get_info();
                let selection =
                    format!("adapter {} of those wgpu found, matched by {spec:?}", i + 1);
                // Name the adapter: with several, "request_device failed" alone says too little.
                pollster::block_on(Self::from_adapter(adapter, selection)).map_err(|e| {
                    Error::Device {
                        op: "Gpu::on_each_adapter",
                        message: format!("{}: {e}", describe(&info)),
                    }
                })
            })
            .collect()
    }

    /// Whether `spec` names the adapter `info` describes. Case-insensitive; `all` names every
    /// adapter. Otherwise every whitespace-separated word of `spec` must match: a backend's
    /// name (`vulkan`, `gl`, `metal`, `dx12`, `webgpu`) matches the adapters on that backend
    /// (and only those: `gl` never matches a name containing "gl"); `cpu` matches software
    /// adapters (device type `Cpu`: lavapipe, llvmpipe, SwiftShader) and `gpu` every other;
    /// any other word a part of the adapter's name. `"llvmpipe gl"` thus picks Mesa's llvmpipe
    /// through OpenGL where the same driver is also seen through Vulkan, and `gpu` a real GPU
    /// through every backend that reaches it.
    pub fn adapter_matches(info: &wgpu::AdapterInfo, spec: &str) -> bool {
        let spec = spec.trim().to_lowercase();
        if spec == "all" {
            return true;
        }
        let name = info.name.to_lowercase();
        let software = info.device_type == wgpu::DeviceType::Cpu;
        let mut words = spec.split_whitespace().peekable();
        // An empty spec names nothing, rather than everything by vacuous truth.
        words.peek().is_some()
            && words.all(|word| match (word, backend_named(word)) {
                (_, Some(backend)) => info.backend == backend,
                ("cpu", None) => software,
                // GL reports a real GPU as `Other` (it cannot tell), so "gpu" is "not software".
                ("gpu", None) => !software,
                (_, None) => name.contains(word),
            })
    }

    /// The adapters `spec` matches, each with its index in enumeration order.
    fn matching_adapters(spec: &str) -> Result<Vec<(usize, wgpu::Adapter)>> {
        let adapters = pollster::block_on(enumerate());
        if adapters.is_empty() {
            return Err(no_adapter_found());
        }
        let seen: Vec<String> = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}. {}", i + 1, describe(&a.get_info())))
            .collect();
        let matching: Vec<(usize, wgpu::Adapter)> = adapters
            .into_iter()
            .enumerate()
            .filter(|(_, a)| Self::adapter_matches(&a.get_info(), spec))
            .collect();
        if matching.is_empty() {
            return Err(Error::InvalidArgument {
                op: "Gpu::with_adapter",
                what: format!(
                    "adapter {spec:?} matches none of the adapters wgpu found: {}",
                    seen.join("; ")
                ),
            });
        }
        Ok(matching)
    }

    /// Creates the device on a given adapter, requesting all of the adapter's limits.
    pub async fn from_adapter(adapter: wgpu::Adapter, selection: String) -> Result<Self> {
        let limits = adapter.limits();
        // Timestamps are only used when a benchmark asks for them, but must be requested now;
        // subgroups let the planner pick the kernels that share loads across SIMD lanes.
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgconv"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Device {
                op: "Gpu::new",
                message: format!("request_device failed: {e}"),
            })?;
        Ok(Self::from_wgpu(
            device,
            queue,
            adapter.get_info(),
            selection,
        ))
    }
}

/// Ranks adapters: a real GPU beats a software one, and a native backend beats GL.
fn adapter_rank(device_type: wgpu::DeviceType, backend: wgpu::Backend) -> (u8, u8) {
    let device = match device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 1,
        wgpu::DeviceType::Other => 0,
    };
    let backend = match backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 2,
        wgpu::Backend::Gl => 1,
        _ => 0,
    };
    (device, backend)
}

/// Every adapter of the backends `WGPU_BACKEND` allows (all of them when unset).
pub(super) async fn enumerate() -> Vec<wgpu::Adapter> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    instance.enumerate_adapters(backends).await
}

/// The backend a word of an adapter spec names, if it names one.
fn backend_named(word: &str) -> Option<wgpu::Backend> {
    [
        wgpu::Backend::Vulkan,
        wgpu::Backend::Gl,
        wgpu::Backend::Metal,
        wgpu::Backend::Dx12,
        wgpu::Backend::BrowserWebGpu,
    ]
    .into_iter()
    .find(|b| b.to_str() == word)
}

fn no_adapter_found() -> Error {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    let variable = std::env::var("WGPU_BACKEND").unwrap_or_default();
    let reason = if backends.is_empty() {
        format!(
            "WGPU_BACKEND={variable:?} names no backend (vulkan, metal, dx12, gl, webgpu), so wgpu \
             searched none"
        )
    } else {
        format!(
            "wgpu found no adapter for backends {backends:?} (WGPU_BACKEND={variable:?}). wgconv \
             needs a Vulkan, Metal, DX12 or GL driver; on a machine without a GPU install Mesa's \
             software Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`)"
        )
    };
    Error::NoAdapter { reason }
}

fn describe(info: &wgpu::AdapterInfo) -> String {
    format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
}

/// Picks the best-ranked adapter among those `wanted` names (all of them when `None`), and
/// says why.
pub(super) fn choose_adapter(
    adapters: Vec<wgpu::Adapter>,
    wanted: Option<&str>,
) -> Result<(wgpu::Adapter, String)> {
    let seen: Vec<String> = adapters.iter().map(|a| describe(&a.get_info())).collect();
    let mut candidates: Vec<wgpu::Adapter> = adapters
        .into_iter()
        .filter(|a| wanted.is_none_or(|w| Gpu::adapter_matches(&a.get_info(), w)))
        .collect();
    let Some(best) = best_ranked(&candidates) else {
        return Err(match wanted {
            Some(wanted) if !seen.is_empty() => Error::NoAdapter {
                reason: format!(
                    "{ADAPTER_ENV}={wanted:?} matches none of the adapters found: [{}]",
                    seen.join(", ")
                ),
            },
            _ => no_adapter_found(),
        });
    };
    let reason = match (wanted, candidates.len()) {
        (Some(wanted), 1) => format!("{ADAPTER_ENV}={wanted:?} matched it"),
        (Some(wanted), n) => format!(
            "{ADAPTER_ENV}={wanted:?} matched {n} adapters; ranked first of them (discrete > \
             integrated > virtual > CPU; native backends over GL)"
        ),
        (None, 1) => "the only adapter found".to_string(),
        (None, _) => format!(
            "ranked first of [{}] (discrete > integrated > virtual > CPU; native backends \
             over GL)",
            seen.join(", ")
        ),
    };
    Ok((candidates.swap_remove(best), reason))
}

/// The index of the best-ranked adapter (see [`adapter_rank`]); the first enumerated wins a tie.
fn best_ranked(adapters: &[wgpu::Adapter]) -> Option<usize> {
    (0..adapters.len()).max_by_key(|&i| {
        let info = adapters[i].get_info();
        (
            adapter_rank(info.device_type, info.backend),
            std::cmp::Reverse(i),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_match_name_parts_and_backends() {
        let adapter = |name: &str, backend| {
            let mut info = wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, backend);
            info.name = name.into();
            info
        };
        let vulkan = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::Backend::Vulkan);
        let gl = adapter("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::Backend::Gl);
        let mut angle = adapter("ANGLE (Vulkan)", wgpu::Backend::Vulkan);
        angle.device_type = wgpu::DeviceType::IntegratedGpu;
        let mut nvidia_gl = adapter("NVIDIA H200/PCIe/SSE2", wgpu::Backend::Gl);
        nvidia_gl.device_type = wgpu::DeviceType::Other;
        let matches = |spec| {
            [&vulkan, &gl, &angle, &nvidia_gl]
                .map(|info| Gpu::adapter_matches(info, spec))
                .to_vec()
        };
        assert_eq!(matches("LLVMpipe"), [true, true, false, false]);
        assert_eq!(matches("llvm 256"), [true, true, false, false]);
        let gl_only = [false, true, false, true];
        assert_eq!(matches("GL"), gl_only, "a backend, not a part of ANGLE");
        assert_eq!(matches("vulkan"), [true, false, true, false]);
        assert_eq!(matches("llvmpipe vulkan"), [true, false, false, false]);
        assert_eq!(matches("gpu"), [false, false, true, true]);
        assert_eq!(matches("CPU gl"), [false, true, false, false]);
        assert_eq!(matches("nvidia"), [false, false, false, true]);
        assert_eq!(matches(" All "), [true, true, true, true]);
        assert_eq!(matches("swiftshader"), [false, false, false, false]);
        assert_eq!(matches("  "), [false, false, false, false]);
    }

    #[test]
    fn ranking_prefers_real_gpus_and_native_backends() {
        let lavapipe = adapter_rank(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan);
        let llvmpipe_gl = adapter_rank(wgpu::DeviceType::Cpu, wgpu::Backend::Gl);
        let discrete = adapter_rank(wgpu::DeviceType::DiscreteGpu, wgpu::Backend::Vulkan);
        assert!(discrete > lavapipe && lavapipe > llvmpipe_gl);
    }
}
