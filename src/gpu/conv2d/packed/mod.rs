//! Plans of the packed conv2d variants: repack the operands as zero-padded vec4 tensors, then run
//! the vec4 implicit GEMM (`shaders/conv2d/pack.wgsl`, `shaders/conv2d/packed.wgsl`).

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::conv2d::gemm::{signed, GemmConvUniforms};
use crate::gpu::conv2d::variant::ConvPass;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan};
use crate::gpu::runtime::dispatch::{DispatchGrid, WORKGROUP_SIZE};
use crate::params::Conv2dGeometry;

mod gather;
mod weight_grad;

pub use gather::{forward, input_grad};
pub(crate) use weight_grad::reduces_over_planes;
pub use weight_grad::{
    weight_grad_packing, weight_grad_partial, weight_grad_pass1, weight_grad_rows,
};

/// How the GEMM over packed operands maps work to invocations. The subgroup tilings run
/// `shaders/conv2d/packed.wgsl` composed for their lane width (4, 8 or 16, `packed_lanes{W}.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiling {
    /// `conv2d_gemm_packed`: 2 x lanes pixels by 2 x lanes channels per subgroup of this
    /// many lanes (lavapipe), two columns per lane, which halves the weight loads per
    /// multiply-add against one.
    Subgroup(u32),
    /// `conv2d_gemm_packed_wide`: 4 x lanes pixels by 4 x lanes channels per subgroup, what
    /// `Subgroup` runs into more than its channels (see [`Tiling::for_gather`]).
    SubgroupWide(u32),
    /// `conv2d_gemm_packed_few`: 8 x lanes pixels by 4 channels per subgroup, the gathers of
    /// `Subgroup` into at most 4 channels (see [`Tiling::for_gather`]).
    SubgroupFew(u32),
    /// `conv2d_gemm_tiled`: this many channels (8, 16, 32 or 64) by 2048 / that many pixels per
    /// workgroup, outer products through workgroup memory (real GPUs; portable). The planner
    /// starts from [`TILED_CHANNELS`]; [`Tiling::for_gather`] and [`Tiling::for_weight_grad`]
    /// narrow it to the layer's channels.
    Workgroup(u32),
}

impl Tiling {
    /// Channels per tile, which the packed weights are padded to.
    fn channels(self) -> usize {
        match self {
            Tiling::Subgroup(lanes) => 2 * lanes as usize,
            Tiling::SubgroupWide(lanes) => 4 * lanes as usize,
            Tiling::SubgroupFew(_) => FEW_CHANNELS,
            Tiling::Workgroup(channels) => channels as usize,
        }
    }

    /// Destination pixels (weight-gradient columns) per tile.
    fn columns(self) -> usize {
        match self {
            Tiling::Subgroup(lanes) => 2 * lanes as usize,
            Tiling::SubgroupWide(lanes) => WIDE_COLUMNS_PER_LANE * lanes as usize,
            Tiling::SubgroupFew(lanes) => 8 * lanes as usize,
            Tiling::Workgroup(channels) => TILED_OUTPUTS / channels as usize,
        }
    }

    /// Invocations per tile: a subgroup, or a workgroup of 64.
    fn invocations(self) -> usize {
        match self {
            Tiling::Subgroup(lanes) | Tiling::SubgroupWide(lanes) | Tiling::SubgroupFew(lanes) => {
                lanes as usize
            }
            Tiling::Workgroup(_) => WORKGROUP_SIZE as usize,
        }
    }

    /// The gather GEMM kernel and the weight-gradient pass-1 kernel.
    fn kernels(self) -> (Kernel, Kernel) {
        let (lanes, gather) = match self {
            Tiling::Subgroup(lanes) => (lanes, "conv2d_gemm_packed"),
            Tiling::SubgroupWide(lanes) => (lanes, "conv2d_gemm_packed_wide"),
            Tiling::SubgroupFew(lanes) => (lanes, "conv2d_gemm_packed_few"),
            Tiling::Workgroup(_) => {
                return (Kernel::Conv2dGemmTiled, Kernel::Conv2dWeightGradTiled);
            }
        };
        // Only gathers run few tiles (see `for_weight_grad`).
        let weight_grad = match self {
            Tiling::SubgroupWide(_) => "conv2d_weight_grad_packed_wide",
            _ => "conv2d_weight_grad_packed",
        };
        (
            Kernel::packed(lanes, gather),
            Kernel::packed(lanes, weight_grad),
        )
    }
}

/// What a packing kernel repacks (see `shaders/conv2d_pack.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Packing {
    Source,
    Weights,
    Rows,
}

impl Tiling {
    /// Whether the packed operands live in textures (the packed subgroup kernels, for lavapipe's
    /// faster texel fetches) or storage buffers (the tiled kernels, which stage them through
    /// workgroup memory anyway).
    fn packs_to_textures(self) -> bool {
        !matches!(self, Tiling::Workgroup(_))
    }

    /// Adds a packed operand of `vec4s` vec4s to `plan` and returns it with the kernel that
    /// packs `what` into it: a texture for the subgroup tilings, else a buffer.
    fn add_packed(self, plan: &mut Plan, vec4s: usize, what: Packing) -> (Operand, Kernel) {
        let textures = self.packs_to_textures();
        let kernel = match (what, textures) {
            (Packing::Source, false) => Kernel::PackSourceVec4,
            (Packing::Source, true) => Kernel::PackSourceTexture,
            (Packing::Weights, false) => Kernel::PackWeightVec4,
            (Packing::Weights, true) => Kernel::PackWeightTexture,
            (Packing::Rows, false) => Kernel::PackRowsVec4,
            (Packing::Rows, true) => Kernel::PackRowsTexture,
        };
        let operand = if textures {
            Operand::Texture(plan.add_texture(vec4s))
        } else {
            Operand::Scratch(plan.add_scratch(4 * vec4s))
        };
        (operand, kernel)
    }

    /// How `--explain` names the tiles.
    pub fn describe(self) -> String {
        let (kind, what) = match self {
            Tiling::Subgroup(_) => ("tiles", "columns"),
            Tiling::SubgroupWide(_) => ("wide tiles", "columns"),
            Tiling::SubgroupFew(_) => ("few tiles", "pixels"),
            Tiling::Workgroup(_) => ("workgroup tiles", "columns"),
        };
        format!(
            ", {kind} of {} {what} x {} channels",
            self.columns(),
            self.channels()
        )
    }

    /// The tiling of a gather into `channels` channels per group: the subgroup gathers into
    /// more than one narrow tile run wide, whose tiles halve the loads per multiply-add (a
    /// tile of twice the channels wastes no more than two narrow ones on channel counts
    /// between), and those into at most 4 run few, whose tiles idle no lane on an RGB image.
    pub fn for_gather(self, channels: usize) -> Tiling {
        match self {
            Tiling::Subgroup(lanes) if channels <= FEW_CHANNELS => Tiling::SubgroupFew(lanes),
            other => other.for_weight_grad(channels),
        }
    }

    /// The tiling of a weight gradient into `channels` output channels per group: wide as a
    /// gather's beyond one narrow tile, else the narrow tile.
    pub fn for_weight_grad(self, channels: usize) -> Tiling {
        match self {
            Tiling::Subgroup(lanes) if channels > self.channels() => Tiling::SubgroupWide(lanes),
            Tiling::Workgroup(_) => Tiling::Workgroup(tiled_channels(channels)),
            other => other,
        }
    }

    /// The tiling of `pass` into `channels` channels per group: [`Tiling::for_weight_grad`]
    /// for the weight gradient, else [`Tiling::for_gather`].
    pub fn for_pass(self, pass: ConvPass, channels: usize) -> Tiling {
        match pass {
            ConvPass::WeightGrad => self.for_weight_grad(channels),
            ConvPass::Forward | ConvPass::InputGrad => self.for_gather(channels),
        }
    }

    /// The `tile_shift` uniform of the tiled kernels: log2 of their channels per tile.
    fn tile_shift(self) -> u32 {
        match self {
            Tiling::Workgroup(channels) => channels.trailing_zeros(),
            _ => 0,
        }
    }
}

/// Channels per subgroup of `conv2d_gemm_packed_few`.
pub const FEW_CHANNELS: usize = 4;

/// Destination pixels (weight-gradient columns) per lane of `conv2d_gemm_packed_wide`.
pub const WIDE_COLUMNS_PER_LANE: usize = 4;

/// Outputs per workgroup of the tiled kernels (64 invocations of 4 columns x 8 channels), and
/// their widest channel tile.
pub const TILED_OUTPUTS: usize = 2048;
pub const TILED_CHANNELS: u32 = 64;
/// Workgroup memory the tiled kernels declare (`tiles` in `shaders/conv2d/tiled.wgsl`): two
/// K tiles of 32 terms by 64 channels. WebGPU guarantees 16384 bytes, but wgpu's downlevel
/// (GLES) limits only 16352, so the planner checks the device's.
pub const TILED_WORKGROUP_BYTES: u32 = 16384;

/// The tiled kernels' channels per tile for `channels` channels per group: the narrowest of 8,
/// 16, 32 and 64 that holds them (64 past that), so that 8 to 32 channels idle no more than
/// half a tile.
pub fn tiled_channels(channels: usize) -> u32 {
    (channels
        .next_power_of_two()
        .clamp(8, TILED_CHANNELS as usize)) as u32
}

fn grid(op: &'static str, invocations: usize, max_per_dimension: u32) -> Result<DispatchGrid> {
    DispatchGrid::for_invocations(op, invocations as u64, max_per_dimension)
}

/// Vec4s each invocation of a packing kernel into a texture writes (`PACK_RUN` in
/// `shaders/conv2d/pack.wgsl`); those into a buffer write one.
pub(crate) const PACK_RUN: usize = 16;

/// The grid of a packing kernel that writes `vec4s` vec4s for `tiling`.
fn pack_grid(
    op: &'static str,
    tiling: Tiling,
    vec4s: usize,
    max_per_dimension: u32,
) -> Result<DispatchGrid> {
    let per_invocation = if tiling.packs_to_textures() {
        PACK_RUN
    } else {
        1
    };
    grid(op, vec4s.div_ceil(per_invocation), max_per_dimension)
}

/// One axis of a source read at step `s` from a multiple of `s`, as a unit-step read of the
/// source subsampled by `s`: its extent, stride and offset in those terms.
fn subsample_axis(s: u32, extent: &mut u32, stride: &mut u32, off: &mut u32, step: &mut u32) {
    *extent = (*extent - 1) / s + 1;
    *stride *= s;
    *off = signed(i64::from(*off as i32).div_euclid(i64::from(s)));
    *step = 1;
}

/// The vec4s of the whole source of gather `u` over `batch` images, as a copy of it holds
/// them.
fn source_vec4s(batch: usize, u: &GemmConvUniforms) -> usize {
    batch * u.src_stride_n as usize / 4
}

/// The scratch memory a packed variant plans for one pass (what the planner weighs).
pub fn scratch_plan(pass: ConvPass, tiling: Tiling, g: &Conv2dGeometry) -> Result<Plan> {
    const OP: &str = "planner";
    match pass {
        ConvPass::Forward => forward(OP, tiling, g, false, Activation::None, u32::MAX),
        ConvPass::InputGrad => input_grad(OP, tiling, g, false, u32::MAX),
        // Narrowed as the weight gradient's plan is (backward.rs): the wide tiles read an
        // input copy where the pair tiles pack kernel-width shifted copies.
        ConvPass::WeightGrad => {
            let tiling = tiling.for_weight_grad(g.out_channels_per_group());
            weight_grad_packing(OP, tiling, g, u32::MAX).map(|(p, _)| p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_run_few_narrow_or_wide_tiles_by_their_channels() {
        let plan = |cout: usize| {
            let g = crate::Conv2dParams::default()
                .geometry("t", [2, 24, 9, 9], [cout, 24, 3, 3], None)
                .unwrap();
            let plan =
                forward("t", Tiling::Subgroup(8), &g, false, Activation::None, 65535).unwrap();
            plan.steps.last().unwrap().kernel
        };
        assert_eq!(plan(3), Kernel::Conv2dGemmPacked8Few);
        assert_eq!(plan(4), Kernel::Conv2dGemmPacked8Few);
        assert_eq!(plan(5), Kernel::Conv2dGemmPacked8);
        assert_eq!(plan(16), Kernel::Conv2dGemmPacked8);
        assert_eq!(plan(17), Kernel::Conv2dGemmPacked8Wide);
        assert_eq!(plan(64), Kernel::Conv2dGemmPacked8Wide);
        // The real-GPU tiling narrows to the layer's channels, from 8 to 64.
        let tiled = Tiling::Workgroup(TILED_CHANNELS);
        assert_eq!(tiled.for_gather(3), Tiling::Workgroup(8));
        assert_eq!(tiled.for_gather(8), Tiling::Workgroup(8));
        assert_eq!(tiled.for_gather(9), Tiling::Workgroup(16));
        assert_eq!(tiled.for_gather(32), Tiling::Workgroup(32));
        assert_eq!(tiled.for_weight_grad(33), Tiling::Workgroup(64));
        assert_eq!(tiled.for_gather(1000), Tiling::Workgroup(64));
        // Weight gradients never run few tiles.
        assert_eq!(Tiling::Subgroup(8).for_weight_grad(3), Tiling::Subgroup(8));
        // At 16 lanes the tiles double their channels: narrow up to 32, wide past that.
        let at16 = Tiling::Subgroup(16);
        assert_eq!(at16.for_gather(4), Tiling::SubgroupFew(16));
        assert_eq!(at16.for_gather(32), at16);
        assert_eq!(at16.for_weight_grad(33), Tiling::SubgroupWide(16));
        assert_eq!(Tiling::SubgroupWide(16).channels(), 64);
        assert_eq!(Tiling::SubgroupFew(16).columns(), 128);
        // At 4 lanes they halve: narrow tiles of 8 x 8 from 5 to 8 channels, wide tiles of
        // 16 x 16 past that, few tiles of 32 pixels, each with the 4-lane kernels.
        let at4 = Tiling::Subgroup(4);
        assert_eq!(at4.for_gather(4), Tiling::SubgroupFew(4));
        assert_eq!(at4.for_gather(8), at4);
        assert_eq!(at4.for_weight_grad(9), Tiling::SubgroupWide(4));
        assert_eq!((at4.columns(), at4.channels()), (8, 8));
        assert_eq!(
            (
                Tiling::SubgroupWide(4).columns(),
                Tiling::SubgroupWide(4).channels()
            ),
            (16, 16)
        );
        assert_eq!(Tiling::SubgroupFew(4).columns(), 32);
        assert_eq!(
            Tiling::SubgroupWide(4).kernels(),
            (
                Kernel::Conv2dGemmPacked4Wide,
                Kernel::Conv2dWeightGradPacked4Wide
            )
        );
        assert_eq!(
            Tiling::SubgroupFew(4).kernels(),
            (
                Kernel::Conv2dGemmPacked4Few,
                Kernel::Conv2dWeightGradPacked4
            )
        );
    }
}
