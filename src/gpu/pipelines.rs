//! Shader sources, kernels and the pipeline cache: each pipeline is built once per `Gpu`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// One `.wgsl` file in `shaders/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shader {
    Conv2d,
    /// Kernels that need the SUBGROUP feature with 8-wide subgroups.
    Conv2dSubgroup,
    /// Repacking of conv2d operands into zero-padded vec4 tensors.
    Conv2dPack,
    /// The vec4 implicit-GEMM kernels on repacked operands; like `Conv2dSubgroup`, they need
    /// SUBGROUP with 8-wide subgroups.
    Conv2dPacked,
    /// Implicit GEMM with workgroup-memory tiles on repacked operands (real GPUs; portable).
    Conv2dTiled,
    MaxPool2d,
    Activation,
    /// A plain copy, the bench's measure of a kernel's memory speed.
    Copy,
}

impl Shader {
    /// Every shader file the crate ships.
    pub const ALL: &'static [Shader] = &[
        Shader::Conv2d,
        Shader::Conv2dSubgroup,
        Shader::Conv2dPack,
        Shader::Conv2dPacked,
        Shader::Conv2dTiled,
        Shader::MaxPool2d,
        Shader::Activation,
        Shader::Copy,
    ];

    /// Device features a module of this file needs.
    pub fn required_features(self) -> wgpu::Features {
        match self {
            Shader::Conv2dSubgroup | Shader::Conv2dPacked => wgpu::Features::SUBGROUP,
            _ => wgpu::Features::empty(),
        }
    }

    /// File name under `shaders/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Shader::Conv2d => "conv2d.wgsl",
            Shader::Conv2dSubgroup => "conv2d_subgroup.wgsl",
            Shader::Conv2dPack => "conv2d_pack.wgsl",
            Shader::Conv2dPacked => "conv2d_packed.wgsl",
            Shader::Conv2dTiled => "conv2d_tiled.wgsl",
            Shader::MaxPool2d => "max_pool2d.wgsl",
            Shader::Activation => "activation.wgsl",
            Shader::Copy => "copy.wgsl",
        }
    }

    /// WGSL source, compiled into the crate.
    pub fn source(self) -> &'static str {
        match self {
            Shader::Conv2d => include_str!("../../shaders/conv2d.wgsl"),
            Shader::Conv2dSubgroup => include_str!("../../shaders/conv2d_subgroup.wgsl"),
            Shader::Conv2dPack => include_str!("../../shaders/conv2d_pack.wgsl"),
            Shader::Conv2dPacked => include_str!("../../shaders/conv2d_packed.wgsl"),
            Shader::Conv2dTiled => include_str!("../../shaders/conv2d_tiled.wgsl"),
            Shader::MaxPool2d => include_str!("../../shaders/max_pool2d.wgsl"),
            Shader::Activation => include_str!("../../shaders/activation.wgsl"),
            Shader::Copy => include_str!("../../shaders/copy.wgsl"),
        }
    }
}

/// How a kernel sees one binding of bind group 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    Uniform,
    ReadOnly,
    ReadWrite,
    /// A 2D `rgba32float` texture read with `textureLoad` (packed GEMM operands).
    Texture,
    /// A 2D `rgba32float` storage texture, written only.
    StorageTexture,
}

/// One compute entry point the host dispatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Direct convolution, each invocation a tile of output channels at one output pixel.
    Conv2dForward,
    /// Input gradient (and transposed convolution) in gather form, stride phases skipped.
    Conv2dBackwardInput,
    /// Weight gradient, pass 1: partial sums per block of output rows.
    Conv2dBackwardWeightPartial,
    /// Bias gradient, pass 1: partial sums per block of output rows.
    Conv2dBackwardBiasPartial,
    /// Gather convolution (forward, or input gradient per stride phase) as an implicit GEMM,
    /// 8 pixels x 16 channels per 8-wide subgroup, loads shared by subgroup broadcast.
    Conv2dGemmSubgroup8,
    /// Weight gradient, pass 1, as a split-K GEMM over 8-wide subgroups.
    Conv2dWeightGradSubgroup8,
    /// Activations repacked channel-innermost as zero-padded vec4s (packed8 GEMM source).
    PackSourceVec4,
    /// Weights repacked reduction-major as vec4s (packed8 GEMM weights).
    PackWeightVec4,
    /// Rows of grad_output or im2col of the input as vec4s along output pixels (tiled dw).
    PackRowsVec4,
    /// `PackSourceVec4` into a texture (the packed8 kernels read textures).
    PackSourceTexture,
    /// `PackWeightVec4` into a texture.
    PackWeightTexture,
    /// `PackRowsVec4` into a texture.
    PackRowsTexture,
    /// Gather convolution as an implicit GEMM on packed vec4 operands, 8 pixels x 16 channels
    /// per 8-wide subgroup.
    Conv2dGemmPacked8,
    /// `Conv2dGemmPacked8` with 32 pixels x 32 channels per subgroup: half the loads per
    /// multiply-add, for gathers into more than 16 channels.
    Conv2dGemmPacked8Wide,
    /// `Conv2dGemmPacked8` with 64 pixels x 4 channels per subgroup, for gathers into at most
    /// 4 channels.
    Conv2dGemmPacked8Few,
    /// Weight gradient, pass 1, as a split-K GEMM on packed vec4 rows.
    Conv2dWeightGradPacked8,
    /// `Conv2dWeightGradPacked8` with 32 columns x 32 channels per subgroup, for weight
    /// gradients of more than 16 output channels.
    Conv2dWeightGradPacked8Wide,
    /// Gather convolution as an implicit GEMM on packed operands, 32 pixels x 64 channels per
    /// workgroup through workgroup memory.
    Conv2dGemmTiled,
    /// Weight gradient, pass 1, as a split-K GEMM on packed rows with workgroup-memory tiles.
    Conv2dWeightGradTiled,
    /// Pass 2 of the blocked reductions: partials added in block order.
    ReducePartials,
    /// Depthwise forward, four outputs of a row per invocation from vec4 loads.
    Conv2dDepthwiseQuads,
    /// Depthwise weight gradient, pass 1: every tap of one channel over a block of rows.
    Conv2dDepthwiseWeightGradQuads,
    /// Max pooling, values only (inference).
    MaxPool2dForward,
    /// Max pooling, values and argmax indices.
    MaxPool2dForwardWithIndices,
    /// Max pooling backward, gather form.
    MaxPool2dBackward,
    /// Max pooling, values only, eight outputs of a row per invocation (CPU adapters).
    MaxPool2dForwardOctets,
    /// Max pooling, values and indices, eight outputs of a row per invocation (CPU adapters).
    MaxPool2dForwardOctetsWithIndices,
    /// The octet forward for windows at most 2 rows high and exactly 2 columns wide, without
    /// left padding: two rows of four loads.
    MaxPool2dForwardOctets2x2,
    MaxPool2dForwardOctets2x2WithIndices,
    /// Max pooling backward, one plane per invocation in window order (CPU adapters).
    MaxPool2dBackwardScan,
    /// Elementwise activation backward.
    ActivationBackward,
    /// A plain copy of vec4s (the bench's reference for memory-bound kernels).
    CopyVec4,
}

impl Kernel {
    /// Every kernel the host uses.
    pub const ALL: &'static [Kernel] = &[
        Kernel::Conv2dForward,
        Kernel::Conv2dBackwardInput,
        Kernel::Conv2dBackwardWeightPartial,
        Kernel::Conv2dBackwardBiasPartial,
        Kernel::ReducePartials,
        Kernel::Conv2dGemmSubgroup8,
        Kernel::Conv2dWeightGradSubgroup8,
        Kernel::PackSourceVec4,
        Kernel::PackWeightVec4,
        Kernel::PackRowsVec4,
        Kernel::PackSourceTexture,
        Kernel::PackWeightTexture,
        Kernel::PackRowsTexture,
        Kernel::Conv2dGemmPacked8,
        Kernel::Conv2dGemmPacked8Wide,
        Kernel::Conv2dGemmPacked8Few,
        Kernel::Conv2dWeightGradPacked8,
        Kernel::Conv2dWeightGradPacked8Wide,
        Kernel::Conv2dGemmTiled,
        Kernel::Conv2dWeightGradTiled,
        Kernel::Conv2dDepthwiseQuads,
        Kernel::Conv2dDepthwiseWeightGradQuads,
        Kernel::MaxPool2dForward,
        Kernel::MaxPool2dForwardWithIndices,
        Kernel::MaxPool2dBackward,
        Kernel::MaxPool2dForwardOctets,
        Kernel::MaxPool2dForwardOctetsWithIndices,
        Kernel::MaxPool2dForwardOctets2x2,
        Kernel::MaxPool2dForwardOctets2x2WithIndices,
        Kernel::MaxPool2dBackwardScan,
        Kernel::ActivationBackward,
        Kernel::CopyVec4,
    ];

    pub fn shader(self) -> Shader {
        match self {
            Kernel::Conv2dForward
            | Kernel::Conv2dBackwardInput
            | Kernel::Conv2dBackwardWeightPartial
            | Kernel::Conv2dBackwardBiasPartial
            | Kernel::ReducePartials
            | Kernel::Conv2dDepthwiseQuads
            | Kernel::Conv2dDepthwiseWeightGradQuads => Shader::Conv2d,
            Kernel::Conv2dGemmSubgroup8 | Kernel::Conv2dWeightGradSubgroup8 => {
                Shader::Conv2dSubgroup
            }
            Kernel::PackSourceVec4
            | Kernel::PackWeightVec4
            | Kernel::PackRowsVec4
            | Kernel::PackSourceTexture
            | Kernel::PackWeightTexture
            | Kernel::PackRowsTexture => Shader::Conv2dPack,
            Kernel::Conv2dGemmPacked8
            | Kernel::Conv2dGemmPacked8Wide
            | Kernel::Conv2dGemmPacked8Few
            | Kernel::Conv2dWeightGradPacked8
            | Kernel::Conv2dWeightGradPacked8Wide => Shader::Conv2dPacked,
            Kernel::Conv2dGemmTiled | Kernel::Conv2dWeightGradTiled => Shader::Conv2dTiled,
            Kernel::MaxPool2dForward
            | Kernel::MaxPool2dForwardWithIndices
            | Kernel::MaxPool2dBackward
            | Kernel::MaxPool2dForwardOctets
            | Kernel::MaxPool2dForwardOctetsWithIndices
            | Kernel::MaxPool2dForwardOctets2x2
            | Kernel::MaxPool2dForwardOctets2x2WithIndices
            | Kernel::MaxPool2dBackwardScan => Shader::MaxPool2d,
            Kernel::ActivationBackward => Shader::Activation,
            Kernel::CopyVec4 => Shader::Copy,
        }
    }

    pub fn entry_point(self) -> &'static str {
        match self {
            Kernel::Conv2dForward => "conv2d_forward",
            Kernel::Conv2dBackwardInput => "conv2d_backward_input",
            Kernel::Conv2dBackwardWeightPartial => "conv2d_backward_weight_partial",
            Kernel::Conv2dBackwardBiasPartial => "conv2d_backward_bias_partial",
            Kernel::ReducePartials => "reduce_partials",
            Kernel::Conv2dGemmSubgroup8 => "conv2d_gemm_subgroup8",
            Kernel::Conv2dWeightGradSubgroup8 => "conv2d_weight_grad_subgroup8",
            Kernel::PackSourceVec4 => "pack_source_vec4",
            Kernel::PackWeightVec4 => "pack_weight_vec4",
            Kernel::PackRowsVec4 => "pack_rows_vec4",
            Kernel::PackSourceTexture => "pack_source_texture",
            Kernel::PackWeightTexture => "pack_weight_texture",
            Kernel::PackRowsTexture => "pack_rows_texture",
            Kernel::Conv2dGemmPacked8 => "conv2d_gemm_packed8",
            Kernel::Conv2dGemmPacked8Wide => "conv2d_gemm_packed8_wide",
            Kernel::Conv2dGemmPacked8Few => "conv2d_gemm_packed8_few",
            Kernel::Conv2dWeightGradPacked8 => "conv2d_weight_grad_packed8",
            Kernel::Conv2dWeightGradPacked8Wide => "conv2d_weight_grad_packed8_wide",
            Kernel::Conv2dGemmTiled => "conv2d_gemm_tiled",
            Kernel::Conv2dWeightGradTiled => "conv2d_weight_grad_tiled",
            Kernel::Conv2dDepthwiseQuads => "conv2d_depthwise_quads",
            Kernel::Conv2dDepthwiseWeightGradQuads => "conv2d_depthwise_weight_grad_quads",
            Kernel::MaxPool2dForward => "max_pool2d_forward",
            Kernel::MaxPool2dForwardWithIndices => "max_pool2d_forward_with_indices",
            Kernel::MaxPool2dBackward => "max_pool2d_backward",
            Kernel::MaxPool2dForwardOctets => "max_pool2d_forward_octets",
            Kernel::MaxPool2dForwardOctetsWithIndices => "max_pool2d_forward_octets_with_indices",
            Kernel::MaxPool2dForwardOctets2x2 => "max_pool2d_forward_octets_2x2",
            Kernel::MaxPool2dForwardOctets2x2WithIndices => {
                "max_pool2d_forward_octets_2x2_with_indices"
            }
            Kernel::MaxPool2dBackwardScan => "max_pool2d_backward_scan",
            Kernel::ActivationBackward => "activation_backward",
            Kernel::CopyVec4 => "copy_vec4",
        }
    }

    /// Invocations per workgroup, as the entry point declares (along x): 64, except the scan
    /// backward's 8 (one lavapipe SIMD row of planes; see the shader).
    pub fn workgroup_size(self) -> u32 {
        match self {
            Kernel::MaxPool2dBackwardScan => 8,
            _ => crate::gpu::dispatch::WORKGROUP_SIZE,
        }
    }

    /// The bindings of group 0 in binding order. The kernels of a shader file share its
    /// file's layout, except the packing kernels that write a texture where their twins
    /// write a buffer.
    pub fn bindings(self) -> &'static [Binding] {
        use Binding::*;
        match self {
            // uniforms, src, dst_texture
            Kernel::PackSourceTexture | Kernel::PackWeightTexture | Kernel::PackRowsTexture => {
                return &[Uniform, ReadOnly, StorageTexture];
            }
            _ => {}
        }
        match self.shader() {
            // uniforms, src_a, src_b, src_c, dst (tiled: packed_a, packed_b, bias, dst)
            Shader::Conv2d | Shader::Conv2dSubgroup | Shader::Conv2dTiled => {
                &[Uniform, ReadOnly, ReadOnly, ReadOnly, ReadWrite]
            }
            // uniforms, packed_a, packed_b, bias, dst
            Shader::Conv2dPacked => &[Uniform, Texture, Texture, ReadOnly, ReadWrite],
            // uniforms, src, dst
            Shader::Conv2dPack => &[Uniform, ReadOnly, ReadWrite],
            // uniforms, src, src_indices, dst, dst_indices
            Shader::MaxPool2d => &[Uniform, ReadOnly, ReadOnly, ReadWrite, ReadWrite],
            // uniforms, grad_output, saved, grad_input
            Shader::Activation => &[Uniform, ReadOnly, ReadOnly, ReadWrite],
            // uniforms, src, dst
            Shader::Copy => &[Uniform, ReadOnly, ReadWrite],
        }
    }
}

/// The format of packed textures: one vec4 of f32 per texel.
pub const PACKED_TEXTURE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba32Float;

/// Texels per row of a packed texture (`TEXTURE_WIDTH` in the shaders): vec4 i lives at
/// (i % width, i / width).
pub const PACKED_TEXTURE_WIDTH: usize = 4096;

/// A compiled kernel and the layout its bind groups must follow.
pub(crate) struct CompiledKernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// Shader modules and pipelines, created on first use and kept for the life of the `Gpu`.
#[derive(Default)]
pub(crate) struct Pipelines {
    modules: Mutex<HashMap<Shader, wgpu::ShaderModule>>,
    kernels: Mutex<HashMap<Kernel, Arc<CompiledKernel>>>,
}

impl Pipelines {
    /// The compiled kernel, building it (and its shader module) on first use. Compilation errors
    /// are captured by the caller's error scope.
    pub fn get(&self, device: &wgpu::Device, kernel: Kernel) -> Result<Arc<CompiledKernel>> {
        let mut kernels = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = kernels.get(&kernel) {
            return Ok(Arc::clone(k));
        }
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            modules
                .entry(kernel.shader())
                .or_insert_with(|| {
                    device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(kernel.shader().file_name()),
                        source: wgpu::ShaderSource::Wgsl(kernel.shader().source().into()),
                    })
                })
                .clone()
        };
        let entries: Vec<wgpu::BindGroupLayoutEntry> = kernel
            .bindings()
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
                    Binding::Texture => wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    Binding::StorageTexture => wgpu::BindingType::StorageTexture {
                        access: wgpu::StorageTextureAccess::WriteOnly,
                        format: PACKED_TEXTURE_FORMAT,
                        view_dimension: wgpu::TextureViewDimension::D2,
                    },
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(kernel.entry_point()),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry_point()),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry_point()),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some(kernel.entry_point()),
            compilation_options: Default::default(),
            cache: None,
        });
        let compiled = Arc::new(CompiledKernel { pipeline, layout });
        kernels.insert(kernel, Arc::clone(&compiled));
        Ok(compiled)
    }
}

/// Builds a kernel inside error scopes, so a shader or layout error is an `Err`.
pub(crate) fn compiled(
    gpu: &crate::Gpu,
    op: &'static str,
    kernel: Kernel,
) -> Result<Arc<CompiledKernel>> {
    let missing = kernel.shader().required_features() - gpu.device().features();
    if !missing.is_empty() {
        return Err(crate::error::invalid(
            op,
            format!(
                "kernel {} needs device features {missing:?}, which this device does not have",
                kernel.entry_point()
            ),
        ));
    }
    gpu.capture(op, || gpu.inner.pipelines.get(&gpu.inner.device, kernel))
        .and_then(|r| r)
        .map_err(|e| match e {
            Error::Device { op, message } => Error::Device {
                op,
                message: format!("building kernel {}: {message}", kernel.entry_point()),
            },
            other => other,
        })
}
