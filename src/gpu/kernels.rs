//! The registry: every shader module the crate builds, composed from the files under `shaders/`,
//! and every kernel entry point the host dispatches. Adding a kernel is one entry here.

use std::sync::Arc;

use crate::error::Result;
pub use crate::gpu::runtime::pipelines::ShaderTarget;
use crate::gpu::runtime::pipelines::{
    self, Binding, CompiledKernel, KernelSpec, Overrides, ShaderModule, Trust,
};
use crate::gpu::Gpu;

/// Texels per row of a packed texture (`TEXTURE_WIDTH` in `shaders/common/packed_texture.wgsl`):
/// vec4 i lives at (i % width, i / width).
pub(crate) const PACKED_TEXTURE_WIDTH: usize = 4096;

/// A shader module composed from files under `shaders/` (without `.wgsl`), in order: the shared
/// pieces first, the body (which names the module) last. WGSL declarations may come in any order,
/// so a piece may use what the body declares (e.g. the uniforms `u`). The second argument is the
/// module's [`Trust`]: which of wgpu's runtime checks it does without.
macro_rules! module {
    ($features:expr, $trust:expr; $($piece:literal),+ => $body:literal) => {
        module!($body; $features, $trust; $($piece),+ => $body)
    };
    // A body composed more than once (with different pieces) names each module itself.
    ($name:literal; $features:expr, $trust:expr; $($piece:literal),+ => $body:literal) => {
        ShaderModule {
            name: $name,
            pieces: &[$($piece,)+ $body],
            source: concat!(
                $(include_str!(concat!("../../shaders/", $piece, ".wgsl")),)+
                include_str!(concat!("../../shaders/", $body, ".wgsl"))
            ),
            features: $features,
            trust: $trust,
        }
    };
}

const NONE: wgpu::Features = wgpu::Features::empty();
const SUBGROUP: wgpu::Features = wgpu::Features::SUBGROUP;

/// Which runtime checks each module does without, and why.
///
/// Bounds checks stay on everywhere: the host sizes every binding and every index, but a clamped
/// access is cheap next to a load and keeps a planning bug from reading another tensor.
///
/// Loop bounding is off in every module (`LOOPS_END`): each loop is a counted `for` whose
/// counter only its update changes, stepping by a literal or by a uniform the host sets to at
/// least 1 (the direct dx kernel's `phase_step_h/w`, a stride over a gcd), towards a bound that
/// is a literal or a size the host keeps below `i32::MAX`, so the counter cannot wrap before it
/// reaches the bound; `every_loop_of_a_terminating_module_is_a_counted_for` checks the shape in
/// naga's IR. Bounding wraps every loop in a 64-bit counter and a branch, which also keeps
/// drivers from unrolling the GEMMs' constant-trip inner loops.
///
/// Zero-initialisation of workgroup memory is skipped only in `conv2d/tiled`, the one module
/// with a workgroup variable (`tiles`): each K tile is written whole (every invocation its fixed
/// share of the 32 term rows, terms past the operand and channels past the group as zeros)
/// before the barrier that precedes its reads, and the output tile is written whole (every
/// invocation its 32 outputs) before the barrier that precedes the stores' reads.
const LOOPS_END: Trust = Trust {
    loops_terminate: true,
    ..Trust::NONE
};
const LOOPS_END_WORKGROUP_WRITTEN: Trust = Trust {
    loops_terminate: true,
    workgroup_memory_written_first: true,
};

static CONV2D_DIRECT: ShaderModule = module!(NONE, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/uniforms" => "conv2d/direct");
static CONV2D_DEPTHWISE: ShaderModule = module!(NONE, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/uniforms" => "conv2d/depthwise");
static CONV2D_REDUCE: ShaderModule = module!(NONE, LOOPS_END;
    "common/invocation", "conv2d/uniforms" => "conv2d/reduce");
// The subgroup kernels, once per lane width (see `shaders/conv2d/subgroup.wgsl`).
static CONV2D_SUBGROUP4: ShaderModule = module!("conv2d/subgroup4"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/gemm",
    "conv2d/subgroup_channels4", "conv2d/subgroup_terms_0_3",
    "conv2d/subgroup_lanes4" => "conv2d/subgroup");
static CONV2D_SUBGROUP8: ShaderModule = module!("conv2d/subgroup8"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/gemm",
    "conv2d/subgroup_channels2", "conv2d/subgroup_terms_0_3", "conv2d/subgroup_terms_4_7",
    "conv2d/subgroup_lanes8" => "conv2d/subgroup");
static CONV2D_SUBGROUP16: ShaderModule = module!("conv2d/subgroup16"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/gemm",
    "conv2d/subgroup_channels2", "conv2d/subgroup_terms_0_3", "conv2d/subgroup_terms_4_7",
    "conv2d/subgroup_terms_8_15",
    "conv2d/subgroup_lanes16" => "conv2d/subgroup");
static CONV2D_SUBGROUP32: ShaderModule = module!("conv2d/subgroup32"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/gemm",
    "conv2d/subgroup_channels1", "conv2d/subgroup_terms_0_3", "conv2d/subgroup_terms_4_7",
    "conv2d/subgroup_terms_8_15", "conv2d/subgroup_terms_16_31",
    "conv2d/subgroup_lanes32" => "conv2d/subgroup");
static CONV2D_SUBGROUP64: ShaderModule = module!("conv2d/subgroup64"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/gemm",
    "conv2d/subgroup_channels1", "conv2d/subgroup_terms_0_3", "conv2d/subgroup_terms_4_7",
    "conv2d/subgroup_terms_8_15", "conv2d/subgroup_terms_16_31", "conv2d/subgroup_terms_32_63",
    "conv2d/subgroup_lanes64" => "conv2d/subgroup");
static CONV2D_SUBGROUP_PROBE: ShaderModule =
    module!(SUBGROUP, LOOPS_END; "common/invocation" => "conv2d/subgroup_probe");
static CONV2D_PACK: ShaderModule = module!(NONE, LOOPS_END;
    "common/invocation", "common/packed_texture", "conv2d/gemm" => "conv2d/pack");
// The packed kernels, once per lane width (see `shaders/conv2d/packed.wgsl`).
static CONV2D_PACKED4: ShaderModule = module!("conv2d/packed4"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "common/packed_texture", "conv2d/gemm",
    "conv2d/gemm_store", "conv2d/packed_lanes4" => "conv2d/packed");
static CONV2D_PACKED8: ShaderModule = module!("conv2d/packed8"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "common/packed_texture", "conv2d/gemm",
    "conv2d/gemm_store", "conv2d/packed_lanes8" => "conv2d/packed");
static CONV2D_PACKED16: ShaderModule = module!("conv2d/packed16"; SUBGROUP, LOOPS_END;
    "common/invocation", "common/nonfinite", "common/activate", "common/packed_texture", "conv2d/gemm",
    "conv2d/gemm_store", "conv2d/packed_lanes16" => "conv2d/packed");
static CONV2D_TILED: ShaderModule = module!(NONE, LOOPS_END_WORKGROUP_WRITTEN;
    "common/invocation", "common/nonfinite", "common/activate", "conv2d/gemm" => "conv2d/tiled");
static MAX_POOL2D: ShaderModule = module!(NONE, LOOPS_END;
    "common/invocation", "common/nonfinite" => "pool2d/max_pool2d");
static ACTIVATION: ShaderModule = module!(NONE, LOOPS_END;
    "common/invocation", "common/nonfinite" => "activation");
static OPTIMIZER: ShaderModule = module!(NONE, LOOPS_END; "common/invocation" => "optimizer");
static SHADER_COPY: ShaderModule = module!(NONE, LOOPS_END; "common/invocation" => "shader_copy");

/// The packed modules by their lane width.
static PACKED_MODULES: &[(u32, &ShaderModule)] = &[
    (4, &CONV2D_PACKED4),
    (8, &CONV2D_PACKED8),
    (16, &CONV2D_PACKED16),
];

/// Every shader module the crate builds.
pub(crate) static MODULES: &[&ShaderModule] = &[
    &CONV2D_DIRECT,
    &CONV2D_DEPTHWISE,
    &CONV2D_REDUCE,
    &CONV2D_SUBGROUP4,
    &CONV2D_SUBGROUP8,
    &CONV2D_SUBGROUP16,
    &CONV2D_SUBGROUP32,
    &CONV2D_SUBGROUP64,
    &CONV2D_SUBGROUP_PROBE,
    &CONV2D_PACK,
    &CONV2D_PACKED4,
    &CONV2D_PACKED8,
    &CONV2D_PACKED16,
    &CONV2D_TILED,
    &MAX_POOL2D,
    &ACTIVATION,
    &OPTIMIZER,
    &SHADER_COPY,
];

/// Every shader module the crate builds, as `(name, source)` with the source exactly as the
/// crate hands it to `target`'s compiler. The name is the body's path under `shaders/` without
/// `.wgsl` (`conv2d/direct`); `wgconv shaders` writes these out for other compilers to check.
pub fn shader_sources(target: ShaderTarget) -> Vec<(&'static str, String)> {
    MODULES
        .iter()
        .map(|m| (m.name, m.source_for(target).into_owned()))
        .collect()
}

use Binding::{ReadOnly, ReadTexture, ReadWrite, Uniform, WriteTexture};
/// The conv2d family's layout: uniforms, three read-only arrays, the destination.
const GATHER: &[Binding] = &[Uniform, ReadOnly, ReadOnly, ReadOnly, ReadWrite];
/// The packed GEMMs: uniforms, the two packed textures, the bias, the destination.
const PACKED: &[Binding] = &[Uniform, ReadTexture, ReadTexture, ReadOnly, ReadWrite];
/// Packing into a storage buffer (the tiled GEMMs read those) or a texture (the packed kernels
/// read those).
const PACK_INTO_BUFFER: &[Binding] = &[Uniform, ReadOnly, ReadWrite];
const PACK_INTO_TEXTURE: &[Binding] = &[Uniform, ReadOnly, WriteTexture];
/// Packing from a texture the source was copied into, into a texture.
const PACK_TEXTURE_INTO_TEXTURE: &[Binding] = &[Uniform, ReadTexture, WriteTexture];
/// The subgroup probe: uniforms, what each invocation saw.
const PROBE: &[Binding] = &[Uniform, ReadWrite];
/// Max pooling: uniforms, source, source indices, destination, destination indices.
const POOL: &[Binding] = &[Uniform, ReadOnly, ReadOnly, ReadWrite, ReadWrite];
/// Activation backward: uniforms, grad_output, the saved tensor, grad_input.
const ACTIVATION_BINDINGS: &[Binding] = &[Uniform, ReadOnly, ReadOnly, ReadWrite];
const COPY: &[Binding] = &[Uniform, ReadOnly, ReadWrite];
/// Gradient accumulation and SGD without momentum: uniforms, the gradient, the tensor updated.
const ACCUMULATE: &[Binding] = &[Uniform, ReadOnly, ReadWrite];
/// SGD: uniforms, the gradient, the weight, the velocity.
const SGD: &[Binding] = &[Uniform, ReadOnly, ReadWrite, ReadWrite];

/// Declares `Kernel`, one variant per entry, with its module, entry point, bindings and
/// workgroup size, and `Kernel::ALL`.
macro_rules! kernels {
    ($($(#[$doc:meta])* $variant:ident = $module:ident, $entry:literal, $bindings:ident, $size:literal;)+) => {
        /// One compute entry point the host dispatches.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub(crate) enum Kernel {
            $($(#[$doc])* $variant,)+
        }

        impl Kernel {
            /// Every kernel the host uses.
            pub(crate) const ALL: &'static [Kernel] = &[$(Kernel::$variant,)+];

            /// The kernel's module, entry point, bindings and workgroup size.
            pub(crate) fn spec(self) -> &'static KernelSpec {
                match self {
                    $(Kernel::$variant => {
                        static SPEC: KernelSpec = KernelSpec {
                            module: &$module,
                            entry_point: $entry,
                            bindings: $bindings,
                            workgroup_size: $size,
                        };
                        &SPEC
                    })+
                }
            }
        }
    };
}

kernels! {
    /// Direct convolution, each invocation a tile of output channels at one output pixel.
    Conv2dForward = CONV2D_DIRECT, "conv2d_forward", GATHER, 64;
    /// Input gradient (and transposed convolution) in gather form, stride phases skipped.
    Conv2dBackwardInput = CONV2D_DIRECT, "conv2d_backward_input", GATHER, 64;
    /// Weight gradient, pass 1: partial sums per block of output rows.
    Conv2dBackwardWeightPartial = CONV2D_DIRECT, "conv2d_backward_weight_partial", GATHER, 64;
    /// Bias gradient, pass 1: partial sums per block of output rows.
    Conv2dBackwardBiasPartial = CONV2D_DIRECT, "conv2d_backward_bias_partial", GATHER, 64;
    /// Pass 2 of the blocked reductions: partials added in block order.
    ReducePartials = CONV2D_REDUCE, "reduce_partials", GATHER, 64;
    /// `ReducePartials` four neighbouring elements per invocation, for sums of a multiple of 4
    /// elements.
    ReducePartialsVec4 = CONV2D_REDUCE, "reduce_partials_vec4", GATHER, 64;
    /// Depthwise forward, four outputs of a row per invocation from vec4 loads.
    Conv2dDepthwiseQuads = CONV2D_DEPTHWISE, "conv2d_depthwise_quads", GATHER, 64;
    /// Depthwise weight gradient, pass 1: every tap of one channel over a block of rows.
    Conv2dDepthwiseWeightGradQuads = CONV2D_DEPTHWISE, "conv2d_depthwise_weight_grad_quads", GATHER, 64;
    /// Gather convolution (forward, or input gradient per stride phase) as an implicit GEMM,
    /// 4 pixels x 16 channels per 4-wide subgroup, loads shared by subgroup broadcast.
    Conv2dGemmSubgroup4 = CONV2D_SUBGROUP4, "conv2d_gemm_subgroup", GATHER, 64;
    /// The same, 8 pixels x 16 channels per 8-wide subgroup.
    Conv2dGemmSubgroup8 = CONV2D_SUBGROUP8, "conv2d_gemm_subgroup", GATHER, 64;
    /// The same, 16 pixels x 16 channels per 16-wide subgroup.
    Conv2dGemmSubgroup16 = CONV2D_SUBGROUP16, "conv2d_gemm_subgroup", GATHER, 64;
    /// The same, 32 pixels x 32 channels per 32-wide subgroup.
    Conv2dGemmSubgroup32 = CONV2D_SUBGROUP32, "conv2d_gemm_subgroup", GATHER, 64;
    /// The same, 64 pixels x 64 channels per 64-wide subgroup.
    Conv2dGemmSubgroup64 = CONV2D_SUBGROUP64, "conv2d_gemm_subgroup", GATHER, 64;
    /// What a workgroup's subgroups look like, checked before the subgroup kernels are trusted.
    SubgroupProbe = CONV2D_SUBGROUP_PROBE, "subgroup_probe", PROBE, 64;
    /// Weight gradient, pass 1, as a split-K GEMM over 4-wide subgroups.
    Conv2dWeightGradSubgroup4 = CONV2D_SUBGROUP4, "conv2d_weight_grad_subgroup", GATHER, 64;
    /// The same over 8-wide subgroups.
    Conv2dWeightGradSubgroup8 = CONV2D_SUBGROUP8, "conv2d_weight_grad_subgroup", GATHER, 64;
    /// The same over 16-wide subgroups.
    Conv2dWeightGradSubgroup16 = CONV2D_SUBGROUP16, "conv2d_weight_grad_subgroup", GATHER, 64;
    /// The same over 32-wide subgroups.
    Conv2dWeightGradSubgroup32 = CONV2D_SUBGROUP32, "conv2d_weight_grad_subgroup", GATHER, 64;
    /// The same over 64-wide subgroups.
    Conv2dWeightGradSubgroup64 = CONV2D_SUBGROUP64, "conv2d_weight_grad_subgroup", GATHER, 64;
    /// Activations repacked channel-innermost as zero-padded vec4s (the GEMMs' source).
    PackSourceVec4 = CONV2D_PACK, "pack_source_vec4", PACK_INTO_BUFFER, 64;
    /// Weights repacked reduction-major as vec4s (the GEMMs' weights).
    PackWeightVec4 = CONV2D_PACK, "pack_weight_vec4", PACK_INTO_BUFFER, 64;
    /// Rows of grad_output or im2col of the input as vec4s along output pixels (tiled dw).
    PackRowsVec4 = CONV2D_PACK, "pack_rows_vec4", PACK_INTO_BUFFER, 64;
    /// Zeros over a destination of whole vec4s, where the stride phases without taps of a
    /// gather would write them through empty GEMM tiles.
    FillZeroVec4 = CONV2D_PACK, "fill_zero_vec4", PACK_INTO_BUFFER, 64;
    /// `PackSourceVec4` into a texture (the packed kernels read textures).
    PackSourceTexture = CONV2D_PACK, "pack_source_texture", PACK_INTO_TEXTURE, 64;
    /// `PackSourceTexture` from a source of whole-vec4 rows copied into a texture, four
    /// pixels per invocation.
    PackSourceQuadsTexture = CONV2D_PACK, "pack_source_quads_texture", PACK_TEXTURE_INTO_TEXTURE, 64;
    /// `PackWeightVec4` into a texture.
    PackWeightTexture = CONV2D_PACK, "pack_weight_texture", PACK_INTO_TEXTURE, 64;
    /// `PackWeightTexture` for 3x3 weights as OIHW lays them out, a vec4 load per texel.
    PackWeight3x3Texture = CONV2D_PACK, "pack_weight_3x3_texture", PACK_INTO_TEXTURE, 64;
    /// The same for the input gradient's view of them.
    PackWeight3x3TransposedTexture = CONV2D_PACK, "pack_weight_3x3_transposed_texture", PACK_INTO_TEXTURE, 64;
    /// `PackRowsVec4` into a texture.
    PackRowsTexture = CONV2D_PACK, "pack_rows_texture", PACK_INTO_TEXTURE, 64;
    /// The packed gather at 4 lanes: 8 pixels x 8 channels per subgroup.
    Conv2dGemmPacked4 = CONV2D_PACKED4, "conv2d_gemm_packed", PACKED, 64;
    /// `Conv2dGemmPacked4` with 16 pixels x 16 channels, for more than 8 channels.
    Conv2dGemmPacked4Wide = CONV2D_PACKED4, "conv2d_gemm_packed_wide", PACKED, 64;
    /// `Conv2dGemmPacked4Wide` writing vec4s of four neighbouring pixels per channel.
    Conv2dGemmPacked4WidePixelQuads = CONV2D_PACKED4, "conv2d_gemm_packed_wide_pixel_quads", PACKED, 64;
    /// `Conv2dGemmPacked4Wide` writing each pixel's four channels as one vec4.
    Conv2dGemmPacked4WideChannelQuads = CONV2D_PACKED4, "conv2d_gemm_packed_wide_channel_quads", PACKED, 64;
    /// `Conv2dGemmPacked4Wide` for 1x1 windows at unit steps over a whole NCHW source.
    Conv2dGemmPacked4WideFromNchw = CONV2D_PACKED4, "conv2d_gemm_packed_wide_from_nchw", PACKED, 64;
    /// `Conv2dGemmPacked4WideFromNchw` writing vec4s of four neighbouring pixels per channel.
    Conv2dGemmPacked4WideFromNchwPixelQuads = CONV2D_PACKED4, "conv2d_gemm_packed_wide_from_nchw_pixel_quads", PACKED, 64;
    /// `Conv2dGemmPacked4WideFromNchwPixelQuads` for a 1x1 window at stride 2.
    Conv2dGemmPacked4WideFromNchwStride2 = CONV2D_PACKED4, "conv2d_gemm_packed_wide_from_nchw_stride2", PACKED, 64;
    /// `Conv2dGemmPacked4` with 32 pixels x 4 channels, for at most 4 channels.
    Conv2dGemmPacked4Few = CONV2D_PACKED4, "conv2d_gemm_packed_few", PACKED, 64;
    /// `Conv2dGemmPacked4Few` with each lane's pixels neighbours along a row.
    Conv2dGemmPacked4FewRows = CONV2D_PACKED4, "conv2d_gemm_packed_few_rows", PACKED, 64;
    /// The packed weight gradient's pass 1 at 4 lanes.
    Conv2dWeightGradPacked4 = CONV2D_PACKED4, "conv2d_weight_grad_packed", PACKED, 64;
    /// `Conv2dWeightGradPacked4` with 16 columns x 16 channels, for more than 8.
    Conv2dWeightGradPacked4Wide = CONV2D_PACKED4, "conv2d_weight_grad_packed_wide", PACKED, 64;
    /// `Conv2dWeightGradPacked4Wide` reading its input from an NCHW copy.
    Conv2dWeightGradPacked4WideFromNchw = CONV2D_PACKED4, "conv2d_weight_grad_packed_wide_from_nchw", PACKED, 64;
    /// `Conv2dWeightGradPacked4WideFromNchw` for columns at stride 2.
    Conv2dWeightGradPacked4WideFromNchwStride2 = CONV2D_PACKED4, "conv2d_weight_grad_packed_wide_from_nchw_stride2", PACKED, 64;
    /// `Conv2dWeightGradPacked4WideFromNchw` reducing over whole planes (rows of 14).
    Conv2dWeightGradPacked4WideFromNchwPlanes = CONV2D_PACKED4, "conv2d_weight_grad_packed_wide_from_nchw_planes", PACKED, 64;
    /// Gather convolution as an implicit GEMM on packed vec4 operands, 16 pixels x 16 channels
    /// per 8-wide subgroup.
    Conv2dGemmPacked8 = CONV2D_PACKED8, "conv2d_gemm_packed", PACKED, 64;
    /// `Conv2dGemmPacked8` with 32 pixels x 32 channels per subgroup: half the loads per
    /// multiply-add, for gathers into more than 16 channels.
    Conv2dGemmPacked8Wide = CONV2D_PACKED8, "conv2d_gemm_packed_wide", PACKED, 64;
    /// `Conv2dGemmPacked8Wide` writing vec4s of four neighbouring pixels per channel, where
    /// the destination's layout allows it (see `packed::vec4_stores`).
    Conv2dGemmPacked8WidePixelQuads = CONV2D_PACKED8, "conv2d_gemm_packed_wide_pixel_quads", PACKED, 64;
    /// `Conv2dGemmPacked8Wide` writing each pixel's four channels as one vec4, where the
    /// destination's channels are innermost in whole vec4s.
    Conv2dGemmPacked8WideChannelQuads = CONV2D_PACKED8, "conv2d_gemm_packed_wide_channel_quads", PACKED, 64;
    /// `Conv2dGemmPacked8Wide` for 1x1 windows at unit steps over a whole NCHW source,
    /// which it reads copied into a texture as it lies, with no packing pass.
    Conv2dGemmPacked8WideFromNchw = CONV2D_PACKED8, "conv2d_gemm_packed_wide_from_nchw", PACKED, 64;
    /// `Conv2dGemmPacked8WideFromNchw` writing vec4s of four neighbouring pixels per channel.
    Conv2dGemmPacked8WideFromNchwPixelQuads = CONV2D_PACKED8, "conv2d_gemm_packed_wide_from_nchw_pixel_quads", PACKED, 64;
    /// `Conv2dGemmPacked8WideFromNchwPixelQuads` for a 1x1 window at stride 2.
    Conv2dGemmPacked8WideFromNchwStride2 = CONV2D_PACKED8, "conv2d_gemm_packed_wide_from_nchw_stride2", PACKED, 64;
    /// `Conv2dGemmPacked8` with 64 pixels x 4 channels per subgroup, for gathers into at most
    /// 4 channels.
    Conv2dGemmPacked8Few = CONV2D_PACKED8, "conv2d_gemm_packed_few", PACKED, 64;
    /// `Conv2dGemmPacked8Few` with each lane's pixels neighbours along a row, whose taps slide
    /// along it: one fetch per tap instead of one per pixel and tap.
    Conv2dGemmPacked8FewRows = CONV2D_PACKED8, "conv2d_gemm_packed_few_rows", PACKED, 64;
    /// Weight gradient, pass 1, as a split-K GEMM on packed vec4 rows.
    Conv2dWeightGradPacked8 = CONV2D_PACKED8, "conv2d_weight_grad_packed", PACKED, 64;
    /// `Conv2dWeightGradPacked8` with 32 columns x 32 channels per subgroup, for weight
    /// gradients of more than 16 output channels.
    Conv2dWeightGradPacked8Wide = CONV2D_PACKED8, "conv2d_weight_grad_packed_wide", PACKED, 64;
    /// `Conv2dWeightGradPacked8Wide` reading its input from an NCHW copy (see
    /// `weight_grad_input` in `conv2d/packed/weight_grad.rs`), with no packing pass for it.
    Conv2dWeightGradPacked8WideFromNchw = CONV2D_PACKED8, "conv2d_weight_grad_packed_wide_from_nchw", PACKED, 64;
    /// `Conv2dWeightGradPacked8WideFromNchw` for columns at stride 2.
    Conv2dWeightGradPacked8WideFromNchwStride2 = CONV2D_PACKED8, "conv2d_weight_grad_packed_wide_from_nchw_stride2", PACKED, 64;
    /// `Conv2dWeightGradPacked8WideFromNchw` reducing over whole planes (rows of 14).
    Conv2dWeightGradPacked8WideFromNchwPlanes = CONV2D_PACKED8, "conv2d_weight_grad_packed_wide_from_nchw_planes", PACKED, 64;
    /// The packed gather at 16 lanes: 32 pixels x 32 channels per subgroup.
    Conv2dGemmPacked16 = CONV2D_PACKED16, "conv2d_gemm_packed", PACKED, 64;
    /// `Conv2dGemmPacked16` with 64 pixels x 64 channels, for more than 32 channels.
    Conv2dGemmPacked16Wide = CONV2D_PACKED16, "conv2d_gemm_packed_wide", PACKED, 64;
    /// `Conv2dGemmPacked16Wide` writing vec4s of four neighbouring pixels per channel.
    Conv2dGemmPacked16WidePixelQuads = CONV2D_PACKED16, "conv2d_gemm_packed_wide_pixel_quads", PACKED, 64;
    /// `Conv2dGemmPacked16Wide` writing each pixel's four channels as one vec4.
    Conv2dGemmPacked16WideChannelQuads = CONV2D_PACKED16, "conv2d_gemm_packed_wide_channel_quads", PACKED, 64;
    /// `Conv2dGemmPacked16Wide` for 1x1 windows at unit steps over a whole NCHW source,
    /// which it reads copied into a texture as it lies, with no packing pass.
    Conv2dGemmPacked16WideFromNchw = CONV2D_PACKED16, "conv2d_gemm_packed_wide_from_nchw", PACKED, 64;
    /// `Conv2dGemmPacked16WideFromNchw` writing vec4s of four neighbouring pixels per channel.
    Conv2dGemmPacked16WideFromNchwPixelQuads = CONV2D_PACKED16, "conv2d_gemm_packed_wide_from_nchw_pixel_quads", PACKED, 64;
    /// `Conv2dGemmPacked16WideFromNchwPixelQuads` for a 1x1 window at stride 2.
    Conv2dGemmPacked16WideFromNchwStride2 = CONV2D_PACKED16, "conv2d_gemm_packed_wide_from_nchw_stride2", PACKED, 64;
    /// `Conv2dGemmPacked16` with 128 pixels x 4 channels, for at most 4 channels.
    Conv2dGemmPacked16Few = CONV2D_PACKED16, "conv2d_gemm_packed_few", PACKED, 64;
    /// `Conv2dGemmPacked16Few` with each lane's pixels neighbours along a row, whose taps slide
    /// along it: one fetch per tap instead of one per pixel and tap.
    Conv2dGemmPacked16FewRows = CONV2D_PACKED16, "conv2d_gemm_packed_few_rows", PACKED, 64;
    /// The packed weight gradient's pass 1 at 16 lanes: 32 columns x 32 channels.
    Conv2dWeightGradPacked16 = CONV2D_PACKED16, "conv2d_weight_grad_packed", PACKED, 64;
    /// `Conv2dWeightGradPacked16` with 64 columns x 64 channels, for more than 32.
    Conv2dWeightGradPacked16Wide = CONV2D_PACKED16, "conv2d_weight_grad_packed_wide", PACKED, 64;
    /// `Conv2dWeightGradPacked16Wide` reading its input from an NCHW copy.
    Conv2dWeightGradPacked16WideFromNchw = CONV2D_PACKED16, "conv2d_weight_grad_packed_wide_from_nchw", PACKED, 64;
    /// `Conv2dWeightGradPacked16WideFromNchw` for columns at stride 2.
    Conv2dWeightGradPacked16WideFromNchwStride2 = CONV2D_PACKED16, "conv2d_weight_grad_packed_wide_from_nchw_stride2", PACKED, 64;
    /// `Conv2dWeightGradPacked16WideFromNchw` reducing over whole planes (rows of 14).
    Conv2dWeightGradPacked16WideFromNchwPlanes = CONV2D_PACKED16, "conv2d_weight_grad_packed_wide_from_nchw_planes", PACKED, 64;
    /// Gather convolution as an implicit GEMM on packed operands, 32 pixels x 64 channels per
    /// workgroup through workgroup memory.
    Conv2dGemmTiled = CONV2D_TILED, "conv2d_gemm_tiled", GATHER, 64;
    /// `Conv2dGemmTiled` for 1x1 windows inside the source, reading it in place (no packing):
    /// a plain matrix product in either layout.
    Conv2dGemmTiledInPlace = CONV2D_TILED, "conv2d_gemm_tiled_in_place", GATHER, 64;
    /// Weight gradient, pass 1, as a split-K GEMM on packed rows with workgroup-memory tiles.
    Conv2dWeightGradTiled = CONV2D_TILED, "conv2d_weight_grad_tiled", GATHER, 64;
    /// Max pooling, values only (inference).
    MaxPool2dForward = MAX_POOL2D, "max_pool2d_forward", POOL, 64;
    /// Max pooling, values and argmax indices.
    MaxPool2dForwardWithIndices = MAX_POOL2D, "max_pool2d_forward_with_indices", POOL, 64;
    /// Max pooling backward, gather form.
    MaxPool2dBackward = MAX_POOL2D, "max_pool2d_backward", POOL, 64;
    /// Max pooling, values only, eight outputs of a row per invocation (CPU adapters).
    MaxPool2dForwardOctets = MAX_POOL2D, "max_pool2d_forward_octets", POOL, 64;
    /// Max pooling, values and indices, eight outputs of a row per invocation (CPU adapters).
    MaxPool2dForwardOctetsWithIndices = MAX_POOL2D, "max_pool2d_forward_octets_with_indices", POOL, 64;
    /// The octet forward for windows at most 2 rows high and exactly 2 columns wide, without
    /// left padding: two rows of four loads.
    MaxPool2dForwardOctets2x2 = MAX_POOL2D, "max_pool2d_forward_octets_2x2", POOL, 64;
    /// `MaxPool2dForwardOctets2x2` with indices.
    MaxPool2dForwardOctets2x2WithIndices = MAX_POOL2D, "max_pool2d_forward_octets_2x2_with_indices", POOL, 64;
    /// Max pooling backward, one plane per invocation in window order (CPU adapters).
    /// Its workgroup is 8 wide: one lavapipe SIMD row of planes (see the shader).
    MaxPool2dBackwardScan = MAX_POOL2D, "max_pool2d_backward_scan", POOL, 8;
    /// Elementwise activation backward.
    ActivationBackward = ACTIVATION, "activation_backward", ACTIVATION_BINDINGS, 64;
    /// `accumulated += gradient`, in place (training).
    AccumulateGradient = OPTIMIZER, "accumulate_gradient", ACCUMULATE, 64;
    /// One SGD step without momentum, in place on the weight (training).
    SgdStep = OPTIMIZER, "sgd_step", ACCUMULATE, 64;
    /// One SGD-with-momentum step, in place on the weight and its velocity (training).
    SgdMomentumStep = OPTIMIZER, "sgd_momentum_step", SGD, 64;
    /// A plain copy of vec4s (the bench's reference for memory-bound kernels).
    CopyVec4 = SHADER_COPY, "copy_vec4", COPY, 64;
}

impl Kernel {
    pub(crate) fn entry_point(self) -> &'static str {
        self.spec().entry_point
    }

    /// Whether the kernel is written for CPU drivers (the packed subgroup kernels, which the
    /// planner picks only on lavapipe and SwiftShader), so that plans size its work for a few
    /// cores.
    pub(crate) fn for_cpu_drivers(self) -> bool {
        PACKED_MODULES
            .iter()
            .any(|(_, module)| std::ptr::eq(self.spec().module, *module))
    }

    /// The packed kernel `entry_point` composed for `lanes` (4, 8 or 16): every packed module
    /// holds the same entry points, so the width and the name pick one.
    pub(crate) fn packed(lanes: u32, entry_point: &str) -> Kernel {
        let (_, module) = PACKED_MODULES
            .iter()
            .find(|(width, _)| *width == lanes)
            .unwrap_or_else(|| panic!("no packed kernels are composed for {lanes} lanes"));
        Kernel::in_module(module, entry_point)
    }

    /// The kernel `entry_point` of this kernel's module (the same lane width for a packed
    /// one).
    pub(crate) fn sibling(self, entry_point: &str) -> Kernel {
        Kernel::in_module(self.spec().module, entry_point)
    }

    /// The kernel `entry_point` of `module`.
    fn in_module(module: &ShaderModule, entry_point: &str) -> Kernel {
        Kernel::ALL
            .iter()
            .copied()
            .find(|k| std::ptr::eq(k.spec().module, module) && k.entry_point() == entry_point)
            .unwrap_or_else(|| panic!("{} has no kernel {entry_point}", module.name))
    }

    /// Invocations per workgroup, as the entry point declares (along x).
    pub(crate) fn workgroup_size(self) -> u32 {
        self.spec().workgroup_size
    }

    /// The compiled pipeline, built on first use; a shader or layout error, or a feature the
    /// device lacks, is an `Err` naming `op`.
    pub(crate) fn compiled(self, gpu: &Gpu, op: &'static str) -> Result<Arc<CompiledKernel>> {
        self.compiled_with(gpu, op, &Overrides::default())
    }

    /// [`Self::compiled`] with the module's pipeline-overridable constants set as `overrides`
    /// says (the others keep their defaults).
    pub(crate) fn compiled_with(
        self,
        gpu: &Gpu,
        op: &'static str,
        overrides: &Overrides,
    ) -> Result<Arc<CompiledKernel>> {
        pipelines::compiled(gpu, op, self.spec(), overrides)
    }
}

/// Every composed module parses and validates with naga (with SUBGROUP only where the module
/// asks for it), every file under `shaders/` is used, every kernel's entry point exists with the
/// host's workgroup size, and every uniform struct is laid out exactly like its Rust twin.
#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::gpu::activation::ActivationUniforms;
    use crate::gpu::conv2d::gemm::GemmConvUniforms;
    use crate::gpu::conv2d::subgroup::SubgroupProbeUniforms;
    use crate::gpu::conv2d::uniforms::Conv2dUniforms;
    use crate::gpu::optimizer::OptimizerUniforms;
    use crate::gpu::pool2d::max_pool2d::Pool2dUniforms;
    use crate::gpu::shader_copy::CopyUniforms;

    fn validate(module: &ShaderModule, capabilities: naga::valid::Capabilities) -> naga::Module {
        let parsed = naga::front::wgsl::parse_str(module.source)
            .unwrap_or_else(|e| panic!("{}: {}", module.name, e.emit_to_string(module.source)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
            .validate(&parsed)
            .unwrap_or_else(|e| panic!("{}: {}", module.name, e.emit_to_string(module.source)));
        parsed
    }

    /// The module validated with no optional capability but those its features name.
    fn parsed(module: &ShaderModule) -> naga::Module {
        let capabilities = if module.features.contains(wgpu::Features::SUBGROUP) {
            naga::valid::Capabilities::SUBGROUP
        } else {
            naga::valid::Capabilities::default()
        };
        validate(module, capabilities)
    }

    /// The pipeline cache finds a module's overrides by reading its source
    /// (`declared_overrides`); a declaration it missed would leave that override at its
    /// default without an error, so it must find exactly what naga does.
    #[test]
    fn every_modules_boolean_overrides_are_found_as_naga_finds_them() {
        let mut seen = 0;
        for module in MODULES {
            let naga = parsed(module);
            let mut found: Vec<String> = naga
                .overrides
                .iter()
                .map(|(_, o)| {
                    assert_eq!(
                        naga.types[o.ty].inner,
                        naga::TypeInner::Scalar(naga::Scalar::BOOL),
                        "{}: every override is a bool",
                        module.name
                    );
                    o.name.clone().expect("named override")
                })
                .collect();
            let mut read: Vec<String> = pipelines::declared_overrides(module.source)
                .into_iter()
                .map(str::to_owned)
                .collect();
            found.sort();
            read.sort();
            assert_eq!(read, found, "{}", module.name);
            seen += found.len();
        }
        assert!(
            seen > 0,
            "the conv modules declare the epilogue's overrides"
        );
    }

    #[test]
    fn every_module_validates_and_every_file_is_composed_into_one() {
        for module in MODULES {
            parsed(module);
            let files: String = module
                .pieces
                .iter()
                .map(|piece| {
                    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("shaders")
                        .join(format!("{piece}.wgsl"));
                    std::fs::read_to_string(&path).unwrap()
                })
                .collect();
            assert_eq!(
                module.source, files,
                "{}: the compiled-in source",
                module.name
            );
        }
        let mut on_disk = Vec::new();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "wgsl") {
                    let relative = path.strip_prefix(&root).unwrap().with_extension("");
                    on_disk.push(relative.to_str().unwrap().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut used: Vec<String> = MODULES
            .iter()
            .flat_map(|m| m.pieces.iter().map(|p| p.to_string()))
            .collect();
        used.sort();
        used.dedup();
        assert_eq!(
            on_disk, used,
            "files under shaders/ and the modules' pieces disagree"
        );
    }

    /// The value of the `u32` constant `name` of `module`.
    fn u32_constant(module: &naga::Module, name: &str) -> u32 {
        let (_, constant) = module
            .constants
            .iter()
            .find(|(_, c)| c.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no constant {name}"));
        match module.global_expressions[constant.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => v,
            ref other => panic!("{name} = {other:?}"),
        }
    }

    /// Each subgroup module's lane width and tile are what the host dispatches it with
    /// (`SubgroupWidth` and `SubgroupTile::for_lanes`): the pieces it is composed of set them.
    #[test]
    fn subgroup_modules_match_the_host_tiles() {
        use crate::gpu::conv2d::gemm::SubgroupTile;
        use crate::gpu::conv2d::subgroup::SUBGROUP_WIDTHS;
        let modules = [
            &CONV2D_SUBGROUP4,
            &CONV2D_SUBGROUP8,
            &CONV2D_SUBGROUP16,
            &CONV2D_SUBGROUP32,
            &CONV2D_SUBGROUP64,
        ];
        for (module, width) in modules.into_iter().zip(SUBGROUP_WIDTHS) {
            let parsed = parsed(module);
            let lanes = u32_constant(&parsed, "LANES");
            let channels = lanes * u32_constant(&parsed, "CHANNELS_PER_LANE");
            let tile = SubgroupTile::for_lanes(width as usize);
            assert_eq!(
                (lanes as usize, channels as usize),
                (tile.columns, tile.channels),
                "{}",
                module.name
            );
        }
    }

    /// Each packed module's lane width is the one the host dispatches it at.
    #[test]
    fn packed_modules_match_the_host_widths() {
        use crate::gpu::conv2d::packed::Tiling;
        use crate::ConvVariant;
        for (variant, module) in [
            (ConvVariant::Packed4, &CONV2D_PACKED4),
            (ConvVariant::Packed8, &CONV2D_PACKED8),
            (ConvVariant::Packed16, &CONV2D_PACKED16),
        ] {
            let lanes = u32_constant(&parsed(module), "LANES");
            assert_eq!(
                variant.packed_tiling(),
                Some(Tiling::Subgroup(lanes)),
                "{}",
                module.name
            );
        }
        // Every width has the host's kernel for every packed entry point (`Kernel::packed`
        // and `Kernel::sibling` look them up by name).
        let entries = |module: &ShaderModule| {
            let mut names: Vec<_> = Kernel::ALL
                .iter()
                .filter(|k| std::ptr::eq(k.spec().module, module))
                .map(|k| k.entry_point())
                .collect();
            names.sort_unstable();
            names
        };
        let at8 = entries(&CONV2D_PACKED8);
        for &(lanes, module) in PACKED_MODULES {
            assert_eq!(u32_constant(&parsed(module), "LANES"), lanes);
            assert_eq!(entries(module), at8, "{}", module.name);
            for entry in &at8 {
                let kernel = Kernel::packed(lanes, entry);
                assert_eq!(kernel.entry_point(), *entry);
                assert!(std::ptr::eq(kernel.spec().module, module));
                assert_eq!(kernel.sibling(entry), kernel);
            }
        }
    }

    /// A module that declares SUBGROUP really needs it (else the planner would withhold its
    /// kernels from devices that could run them).
    #[test]
    fn modules_that_require_subgroups_need_them() {
        for module in MODULES {
            if !module.features.contains(wgpu::Features::SUBGROUP) {
                continue;
            }
            let parsed = naga::front::wgsl::parse_str(module.source).unwrap();
            let without = naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::default(),
            )
            .validate(&parsed);
            assert!(
                without.is_err(),
                "{} validates without SUBGROUP",
                module.name
            );
        }
    }

    #[test]
    fn every_kernel_entry_point_exists_with_the_host_workgroup_size() {
        for kernel in Kernel::ALL {
            let spec = kernel.spec();
            let module = parsed(spec.module);
            let entry = module
                .entry_points
                .iter()
                .find(|e| e.name == spec.entry_point)
                .unwrap_or_else(|| {
                    panic!(
                        "{} has no entry point {}",
                        spec.module.name, spec.entry_point
                    )
                });
            assert_eq!(entry.stage, naga::ShaderStage::Compute);
            assert_eq!(
                entry.workgroup_size,
                [spec.workgroup_size, 1, 1],
                "{}",
                spec.entry_point
            );
        }
    }

    /// Field names, offsets and total size of a WGSL struct.
    fn wgsl_struct(module: &naga::Module, name: &str) -> (Vec<(String, usize)>, usize) {
        let ty = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name}"))
            .1;
        match &ty.inner {
            naga::TypeInner::Struct { members, span } => (
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap(), m.offset as usize))
                    .collect(),
                *span as usize,
            ),
            other => panic!("{name} is not a struct: {other:?}"),
        }
    }

    fn assert_mirrors(module: &ShaderModule, name: &str, fields: &[(&str, usize)], size: usize) {
        let (wgsl_fields, wgsl_size) = wgsl_struct(&parsed(module), name);
        let rust_fields: Vec<(String, usize)> =
            fields.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        assert_eq!(
            wgsl_fields, rust_fields,
            "{name} in {}: field names or offsets differ",
            module.name
        );
        assert_eq!(wgsl_size, size, "{name} in {}: sizes differ", module.name);
        assert_eq!(
            size % 16,
            0,
            "{name}: uniform buffers need a size that is a multiple of 16"
        );
    }

    /// Each module's uniform struct, by the name its Rust twin gives.
    #[test]
    fn uniform_structs_mirror_their_rust_twins() {
        type Twin = (&'static str, &'static [(&'static str, usize)], usize);
        let conv: Twin = (
            Conv2dUniforms::WGSL_NAME,
            Conv2dUniforms::FIELDS,
            std::mem::size_of::<Conv2dUniforms>(),
        );
        let gemm: Twin = (
            GemmConvUniforms::WGSL_NAME,
            GemmConvUniforms::FIELDS,
            std::mem::size_of::<GemmConvUniforms>(),
        );
        let twins: [(&ShaderModule, Twin); 18] = [
            (&CONV2D_DIRECT, conv),
            (&CONV2D_DEPTHWISE, conv),
            (&CONV2D_REDUCE, conv),
            (&CONV2D_SUBGROUP4, gemm),
            (&CONV2D_SUBGROUP8, gemm),
            (&CONV2D_SUBGROUP16, gemm),
            (&CONV2D_SUBGROUP32, gemm),
            (&CONV2D_SUBGROUP64, gemm),
            (
                &CONV2D_SUBGROUP_PROBE,
                (
                    SubgroupProbeUniforms::WGSL_NAME,
                    SubgroupProbeUniforms::FIELDS,
                    std::mem::size_of::<SubgroupProbeUniforms>(),
                ),
            ),
            (&CONV2D_PACK, gemm),
            (&CONV2D_PACKED4, gemm),
            (&CONV2D_PACKED8, gemm),
            (&CONV2D_PACKED16, gemm),
            (&CONV2D_TILED, gemm),
            (
                &MAX_POOL2D,
                (
                    Pool2dUniforms::WGSL_NAME,
                    Pool2dUniforms::FIELDS,
                    std::mem::size_of::<Pool2dUniforms>(),
                ),
            ),
            (
                &ACTIVATION,
                (
                    ActivationUniforms::WGSL_NAME,
                    ActivationUniforms::FIELDS,
                    std::mem::size_of::<ActivationUniforms>(),
                ),
            ),
            (
                &OPTIMIZER,
                (
                    OptimizerUniforms::WGSL_NAME,
                    OptimizerUniforms::FIELDS,
                    std::mem::size_of::<OptimizerUniforms>(),
                ),
            ),
            (
                &SHADER_COPY,
                (
                    CopyUniforms::WGSL_NAME,
                    CopyUniforms::FIELDS,
                    std::mem::size_of::<CopyUniforms>(),
                ),
            ),
        ];
        assert_eq!(
            twins.len(),
            MODULES.len(),
            "every module has its twin checked"
        );
        for (module, (name, fields, size)) in twins {
            assert_mirrors(module, name, fields, size);
        }
    }

    /// The planner refuses the tiled kernels on devices with less workgroup memory than they
    /// declare, so the host's figure must be the shader's.
    #[test]
    fn tiled_kernels_declare_the_workgroup_memory_the_planner_checks() {
        let module = parsed(&CONV2D_TILED);
        let bytes: u32 = module
            .global_variables
            .iter()
            .filter(|(_, v)| v.space == naga::AddressSpace::WorkGroup)
            .map(|(_, v)| module.types[v.ty].inner.size(module.to_ctx()))
            .sum();
        assert_eq!(bytes, crate::gpu::conv2d::packed::TILED_WORKGROUP_BYTES);
    }

    #[test]
    fn packed_textures_have_the_host_width_in_every_module_that_indexes_them() {
        let shift = PACKED_TEXTURE_WIDTH.trailing_zeros();
        assert_eq!(1usize << shift, PACKED_TEXTURE_WIDTH);
        for module in [
            &CONV2D_PACK,
            &CONV2D_PACKED4,
            &CONV2D_PACKED8,
            &CONV2D_PACKED16,
        ] {
            let parsed = parsed(module);
            let (_, constant) = parsed
                .constants
                .iter()
                .find(|(_, c)| c.name.as_deref() == Some("TEXTURE_SHIFT"))
                .unwrap_or_else(|| panic!("{} declares TEXTURE_SHIFT", module.name));
            match parsed.global_expressions[constant.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) => {
                    assert_eq!(v, shift, "{}", module.name)
                }
                ref other => panic!("{}: TEXTURE_SHIFT is {other:?}", module.name),
            }
        }
    }

    #[test]
    fn texture_packers_write_the_run_the_host_dispatches_for() {
        assert_eq!(
            u32_constant(&parsed(&CONV2D_PACK), "PACK_RUN") as usize,
            crate::gpu::conv2d::packed::PACK_RUN
        );
    }
}
