//! Shader modules, kernels and the pipeline cache: each pipeline is built once per `Gpu` and
//! set of pipeline-overridable constants.
//!
//! The runtime knows kernels only by their description ([`KernelSpec`]); which kernels exist,
//! and how their modules are composed, is the registry's business (`gpu::kernels`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// One shader module as the crate hands it to wgpu: its WGSL source, composed from the files
/// under `shaders/` at build time, and the device features it needs.
#[derive(Debug)]
pub(crate) struct ShaderModule {
    /// A name for labels and error messages: the body's path under `shaders/` without `.wgsl`.
    pub name: &'static str,
    /// The composed source: the shared pieces, then the body.
    pub source: &'static str,
    /// The files under `shaders/` (without `.wgsl`) it is composed of, in order.
    #[cfg_attr(not(test), allow(dead_code))]
    pub pieces: &'static [&'static str],
    /// Device features a module of this source needs.
    pub features: wgpu::Features,
    /// Which of wgpu's safety nets the module can do without (the registry says why, per
    /// module).
    pub trust: Trust,
}

/// What a module's source guarantees, so that wgpu may leave out the code that would
/// otherwise enforce it. Bounds checks on buffers and textures are never given up: no kernel
/// relies on robust buffer access, but a clamped index is what stands between a planning bug and
/// a read of another tensor's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Trust {
    /// Every loop terminates: each is a counted `for` whose counter only its update changes,
    /// stepping by a positive amount towards a bound the host keeps below `i32::MAX` (the
    /// registry's tests check the shape in naga's IR). wgpu then does not wrap each loop in a
    /// bounding counter, which costs a branch and a 64-bit add per iteration and keeps drivers
    /// from unrolling.
    pub loops_terminate: bool,
    /// Every entry point writes each element of the module's workgroup variables before any
    /// invocation reads it (with a barrier between), so the zero-fill wgpu otherwise runs at the
    /// start of every workgroup, with its own barrier, is dead work.
    pub workgroup_memory_written_first: bool,
}

impl Trust {
    /// wgpu's defaults: every check on.
    pub const NONE: Trust = Trust {
        loops_terminate: false,
        workgroup_memory_written_first: false,
    };

    /// The runtime checks a module built with this trust gets: all of wgpu's, but loop
    /// bounding where the loops terminate.
    pub fn runtime_checks(self) -> wgpu::ShaderRuntimeChecks {
        let mut checks = wgpu::ShaderRuntimeChecks::checked();
        checks.force_loop_bounding = !self.loops_terminate;
        checks
    }
}

/// Whose WGSL compiler a module's source is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShaderTarget {
    /// wgpu's native backends (Vulkan, Metal, DX12, GL), through naga: the sources as they are.
    Native,
    /// A browser's WebGPU (and Dawn, Chromium's implementation): modules that use subgroup
    /// operations start with `enable subgroups;`, which the WGSL spec requires and naga does not
    /// yet parse.
    WebGpu,
}

impl ShaderTarget {
    /// The compiler behind `backend`.
    pub(crate) fn of(backend: wgpu::Backend) -> Self {
        match backend {
            wgpu::Backend::BrowserWebGpu => ShaderTarget::WebGpu,
            _ => ShaderTarget::Native,
        }
    }
}

impl ShaderModule {
    /// The source as `target`'s compiler must get it.
    pub fn source_for(&self, target: ShaderTarget) -> std::borrow::Cow<'static, str> {
        match target {
            ShaderTarget::WebGpu if self.features.contains(wgpu::Features::SUBGROUP) => {
                format!("enable subgroups;\n{}", self.source).into()
            }
            _ => self.source.into(),
        }
    }
}

/// How a kernel sees one binding of bind group 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Binding {
    Uniform,
    ReadOnly,
    ReadWrite,
    /// A 2D `rgba32float` storage texture, read only (`textureLoad` without a mip level: the
    /// packed GEMM operands, sources copied into textures).
    ReadTexture,
    /// A 2D `rgba32float` storage texture, written only.
    WriteTexture,
}

/// One compute entry point the host dispatches: its module, its bindings and its workgroup.
#[derive(Debug)]
pub(crate) struct KernelSpec {
    pub module: &'static ShaderModule,
    pub entry_point: &'static str,
    /// The bindings of group 0 in binding order.
    pub bindings: &'static [Binding],
    /// Invocations per workgroup along x, as the entry point declares.
    pub workgroup_size: u32,
}

/// The format of every texture a kernel binds: one vec4 of f32 per texel.
pub(crate) const TEXTURE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;

/// A compiled kernel and the layout its bind groups must follow.
pub(crate) struct CompiledKernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Boolean pipeline-overridable constants (WGSL `override`s, each `false` by default) set to
/// `true`: a kernel's pipeline is built, and kept, once per distinct set it is asked for. A
/// module is given only those it declares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Overrides(Vec<&'static str>);

impl Overrides {
    /// The overrides of `values` that are `true`, in one order whatever the order given.
    pub fn new(values: &[(&'static str, bool)]) -> Self {
        let mut set: Vec<_> = values.iter().filter(|v| v.1).map(|v| v.0).collect();
        set.sort_unstable();
        set.dedup();
        Self(set)
    }

    /// Those of these overrides that are among `declared`: what a module with those is built
    /// with, and so the pipeline's key.
    fn restricted_to(&self, declared: &[&str]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|n| declared.contains(n))
                .copied()
                .collect(),
        )
    }

    /// The values, as wgpu takes them.
    fn constants(&self) -> Vec<(&'static str, f64)> {
        self.0.iter().map(|&name| (name, 1.0)).collect()
    }
}

/// The names of the boolean pipeline-overridable constants `source` declares, each on a line of
/// its own as `override NAME: bool` (how the crate's shaders write them; a registry test checks
/// every module against naga's parse).
pub(crate) fn declared_overrides(source: &str) -> Vec<&str> {
    source
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("override "))
        .filter_map(|rest| {
            let (name, ty) = rest.split_once(':')?;
            ty.trim_start().starts_with("bool").then(|| name.trim())
        })
        .collect()
}

/// A pipeline's module name, entry point and overrides.
type PipelineKey = (&'static str, &'static str, Overrides);

/// Shader modules and pipelines, created on first use and kept for the life of the `Gpu`.
#[derive(Default)]
pub(crate) struct Pipelines {
    /// By module name.
    modules: Mutex<HashMap<&'static str, wgpu::ShaderModule>>,
    /// The boolean overrides each module declares, by module name.
    declared: Mutex<HashMap<&'static str, Vec<&'static str>>>,
    /// By module name, entry point and overrides.
    kernels: Mutex<HashMap<PipelineKey, Arc<CompiledKernel>>>,
}

impl Pipelines {
    /// The compiled kernel, building it (and its shader module) on first use. Compilation errors
    /// are captured by the caller's error scope.
    pub fn get(
        &self,
        device: &wgpu::Device,
        target: ShaderTarget,
        kernel: &'static KernelSpec,
        overrides: &Overrides,
    ) -> Result<Arc<CompiledKernel>> {
        let overrides = {
            let mut declared = self.declared.lock().unwrap_or_else(|p| p.into_inner());
            let names = declared
                .entry(kernel.module.name)
                .or_insert_with(|| declared_overrides(kernel.module.source));
            overrides.restricted_to(names)
        };
        let mut kernels = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        let key = (kernel.module.name, kernel.entry_point, overrides.clone());
        if let Some(k) = kernels.get(&key) {
            return Ok(Arc::clone(k));
        }
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            modules
                .entry(kernel.module.name)
                .or_insert_with(|| {
                    let descriptor = wgpu::ShaderModuleDescriptor {
                        label: Some(kernel.module.name),
                        source: wgpu::ShaderSource::Wgsl(kernel.module.source_for(target)),
                    };
                    // SAFETY: the only check `runtime_checks` drops is loop bounding, and only
                    // for modules whose `Trust::loops_terminate` the registry sets: every loop
                    // there is a counted `for` with a positive step towards a bound below
                    // i32::MAX (the registry's tests check this shape in naga's IR for each such
                    // module), so no loop is infinite and a backend compiler has no unreachable
                    // loop to draw conclusions from. Bounds checks stay on, so no access leaves
                    // its binding whatever the index.
                    unsafe {
                        device.create_shader_module_trusted(
                            descriptor,
                            kernel.module.trust.runtime_checks(),
                        )
                    }
                })
                .clone()
        };
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
            .bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match b {
                    Binding::Uniform => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Binding::ReadOnly | Binding::ReadWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage {
                            read_only: *b == Binding::ReadOnly,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    Binding::ReadTexture | Binding::WriteTexture => {
                        wgpu::BindingType::StorageTexture {
                            access: if *b == Binding::ReadTexture {
                                wgpu::StorageTextureAccess::ReadOnly
                            } else {
                                wgpu::StorageTextureAccess::WriteOnly
                            },
                            format: TEXTURE_FORMAT,
                            view_dimension: wgpu::TextureViewDimension::D2,
                        }
                    }
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel.entry_point),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry_point),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let constants = overrides.constants();
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry_point),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry_point),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                zero_initialize_workgroup_memory: !kernel
                    .module
                    .trust
                    .workgroup_memory_written_first,
            },
            cache: None,
        });
        let compiled = Arc::new(CompiledKernel { pipeline, layout });
        kernels.insert(key, Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// Builds a kernel inside error scopes, so a shader or layout error is an `Err`.
pub(crate) fn compiled(
    gpu: &crate::Gpu,
    op: &'static str,
    kernel: &'static KernelSpec,
    overrides: &Overrides,
) -> Result<Arc<CompiledKernel>> {
    let missing = kernel.module.features - gpu.device().features();
    if !missing.is_empty() {
        return Err(crate::error::invalid(
            op,
            format!(
                "kernel {} needs device features {missing:?}, which this device does not have",
                kernel.entry_point
            ),
        ));
    }
    gpu.capture(op, || {
        gpu.inner.pipelines.get(
            &gpu.inner.device,
            ShaderTarget::of(gpu.inner.info.backend),
            kernel,
            overrides,
        )
    })
    .and_then(|r| r)
    .map_err(|e| match e {
        Error::Device { op, message } => Error::Device {
            op,
            message: format!("building kernel {}: {message}", kernel.entry_point),
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::{declared_overrides, Overrides};

    #[test]
    fn overrides_name_one_pipeline_per_set_and_reach_only_modules_that_declare_them() {
        let set = Overrides::new(&[("HAS_BIAS", true), ("HAS_ACTIVATION", false), ("B", true)]);
        assert_eq!(set, Overrides::new(&[("B", true), ("HAS_BIAS", true)]));
        assert_eq!(Overrides::new(&[("HAS_BIAS", false)]), Overrides::default());
        let source = "// override B: bool\noverride HAS_BIAS: bool = false;\n  override HAS_ACTIVATION : bool = false;\noverride N: u32 = 1u;";
        let declared = declared_overrides(source);
        assert_eq!(declared, ["HAS_BIAS", "HAS_ACTIVATION"]);
        let kept = set.restricted_to(&declared);
        assert_eq!(kept, Overrides::new(&[("HAS_BIAS", true)]));
        assert_eq!(kept.constants(), [("HAS_BIAS", 1.0)]);
        assert_eq!(
            set.restricted_to(&declared_overrides("fn main() {}")),
            Overrides::default()
        );
    }
}
