//! Plans of the packed conv2d variants: repack the operands as zero-padded vec4 tensors, then run
//! the vec4 implicit GEMM (`shaders/conv2d/pack.wgsl`, `shaders/conv2d/packed.wgsl`).

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::conv2d::gemm::GemmConvUniforms;
use crate::gpu::conv2d::gemm::{self, signed, GemmDispatch, SubgroupTile};
use crate::gpu::conv2d::reduce::BLOCK_TERMS;
use crate::gpu::conv2d::variant::ConvPass;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::gpu::runtime::dispatch::{DispatchGrid, WORKGROUP_SIZE};
use crate::params::{Conv2dGeometry, Layout};

/// How the GEMM over packed operands maps work to invocations. The subgroup tilings run
/// `shaders/conv2d/packed.wgsl` composed for their lane width (8 or 16, `packed_lanes{W}.wgsl`).
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
        use Kernel::*;
        match self {
            Tiling::Subgroup(8) => (Conv2dGemmPacked8, Conv2dWeightGradPacked8),
            Tiling::SubgroupWide(8) => (Conv2dGemmPacked8Wide, Conv2dWeightGradPacked8Wide),
            // Only gathers run few tiles (see `for_weight_grad`).
            Tiling::SubgroupFew(8) => (Conv2dGemmPacked8Few, Conv2dWeightGradPacked8),
            Tiling::Subgroup(_) => (Conv2dGemmPacked16, Conv2dWeightGradPacked16),
            Tiling::SubgroupWide(_) => (Conv2dGemmPacked16Wide, Conv2dWeightGradPacked16Wide),
            Tiling::SubgroupFew(_) => (Conv2dGemmPacked16Few, Conv2dWeightGradPacked16),
            Tiling::Workgroup(_) => (Conv2dGemmTiled, Conv2dWeightGradTiled),
        }
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

/// The i32 in a u32 field.
fn signed_of(v: u32) -> i64 {
    i64::from(v as i32)
}

/// The source rows (or columns) a gather reads, `lo..=hi`, over destination positions
/// `0..grid` and taps `0..taps`; `None` when it reads nothing.
fn read_range(grid: u32, step: u32, off: u32, taps: u32, tap_step: u32) -> Option<(i64, i64)> {
    if grid == 0 || taps == 0 {
        return None;
    }
    let span = |count: u32, step: u32| {
        let last = i64::from(count - 1) * signed_of(step);
        (last.min(0), last.max(0))
    };
    let (g_lo, g_hi) = span(grid, step);
    let (t_lo, t_hi) = span(taps, tap_step);
    let off = signed_of(off);
    Some((off + g_lo + t_lo, off + g_hi + t_hi))
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

fn reduce4(u: &GemmConvUniforms) -> u32 {
    u.reduce_per_group.div_ceil(4)
}

/// Where every dispatch reads one tap along an axis at a step of s > 1 from a multiple of s
/// (a strided 1x1 layer), the rows or columns between are never read: the gathers then read
/// the source subsampled by s, as a unit-step source of strides s times its own, so that
/// packing copies only what is read (a quarter of the input at stride 2).
fn subsample_single_taps(gemms: &mut [GemmConvUniforms]) {
    let step_h =
        common_single_tap_step(gemms.iter().map(|u| (u.taps_h, u.src_step_h, u.src_off_h)));
    let step_w =
        common_single_tap_step(gemms.iter().map(|u| (u.taps_w, u.src_step_w, u.src_off_w)));
    for u in gemms.iter_mut() {
        if let Some(s) = step_h {
            subsample_axis(
                s,
                &mut u.src_h,
                &mut u.src_stride_h,
                &mut u.src_off_h,
                &mut u.src_step_h,
            );
        }
        if let Some(s) = step_w {
            subsample_axis(
                s,
                &mut u.src_w,
                &mut u.src_stride_w,
                &mut u.src_off_w,
                &mut u.src_step_w,
            );
        }
    }
}

/// The step every dispatch reads one tap at along an axis, given each one's (taps, step,
/// offset), if it is the same for all, above 1, and divides every offset.
fn common_single_tap_step(axes: impl Iterator<Item = (u32, u32, u32)>) -> Option<u32> {
    let signed_of = |v: u32| i64::from(v as i32);
    let mut common = None;
    for (taps, step, off) in axes {
        let (step, off) = (signed_of(step), signed_of(off));
        if taps != 1 || step <= 1 || off.rem_euclid(step) != 0 || common.is_some_and(|c| c != step)
        {
            return None;
        }
        common = Some(step);
    }
    common.map(|s| s as u32)
}

/// One axis of a source read at step `s` from a multiple of `s`, as a unit-step read of the
/// source subsampled by `s`: its extent, stride and offset in those terms.
fn subsample_axis(s: u32, extent: &mut u32, stride: &mut u32, off: &mut u32, step: &mut u32) {
    *extent = (*extent - 1) / s + 1;
    *stride *= s;
    *off = signed(i64::from(*off as i32).div_euclid(i64::from(s)));
    *step = 1;
}

/// Adds the repacking of `source` as the packed source every dispatch of `gemms` reads
/// (padded to the union of their reads), sets their pack fields, and returns it.
fn pack_source(
    plan: &mut Plan,
    op: &'static str,
    tiling: Tiling,
    source: Operand,
    batch: usize,
    gemms: &mut [GemmConvUniforms],
    max_per_dimension: u32,
) -> Result<Operand> {
    subsample_single_taps(gemms);
    let union = |ranges: &mut dyn Iterator<Item = Option<(i64, i64)>>| {
        ranges
            .flatten()
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
            .unwrap_or((0, 0))
    };
    let (lo_h, hi_h) = union(
        &mut gemms
            .iter()
            .map(|u| read_range(u.grid_h, u.src_step_h, u.src_off_h, u.taps_h, u.tap_step_h)),
    );
    let (lo_w, hi_w) = union(
        &mut gemms
            .iter()
            .map(|u| read_range(u.grid_w, u.src_step_w, u.src_off_w, u.taps_w, u.tap_step_w)),
    );
    let packed_h = (hi_h - lo_h + 1) as usize;
    let packed_w = (hi_w - lo_w + 1) as usize;
    let first = gemms[0];
    let vec4s = first.groups as usize * batch * packed_h * packed_w * reduce4(&first) as usize;
    let (packed, kernel) = tiling.add_packed(plan, vec4s, Packing::Source);
    for u in gemms.iter_mut() {
        u.batch = batch as u32;
        u.packed_h = packed_h as u32;
        u.packed_w = packed_w as u32;
        u.pack_off_h = signed(lo_h);
        u.pack_off_w = signed(lo_w);
        u.reduce4 = reduce4(u);
    }
    let (kernel, source, grid) = match source_texels(tiling, &gemms[0]) {
        Some(texels) => {
            let quads = gemms[0].groups as usize * batch * packed_h * packed_w.div_ceil(4);
            (
                Kernel::PackSourceQuadsTexture,
                plan.add_texture_copy(source, texels),
                grid(op, quads, max_per_dimension)?,
            )
        }
        None => (
            kernel,
            source,
            pack_grid(op, tiling, vec4s, max_per_dimension)?,
        ),
    };
    plan.steps.push(Step::new(
        kernel,
        &GemmConvUniforms {
            invocations: grid.invocations,
            ..gemms[0]
        },
        grid,
        vec![source, packed],
    ));
    Ok(packed)
}

/// The vec4s of a gather's source to copy into a texture as it lies, for
/// `pack_source_quads_texture` to pack from, where its rows are whole vec4s: unit steps
/// along x and every other stride a multiple of 4 (NCHW with a width that is a multiple of 4,
/// unless a strided 1x1 layer's subsampling scaled the steps). lavapipe copies at memory speed, and
/// fetches a texel for what costs four lane-by-lane loads from a buffer.
fn source_texels(tiling: Tiling, u: &GemmConvUniforms) -> Option<usize> {
    let whole = [u.src_w, u.src_stride_h, u.src_stride_c, u.src_stride_n]
        .iter()
        .all(|v| v.is_multiple_of(4));
    (tiling.packs_to_textures() && u.src_stride_w == 1 && whole)
        .then(|| source_vec4s(u.batch as usize, u))
}

/// The vec4s of the whole source of gather `u` over `batch` images, as a copy of it holds
/// them.
fn source_vec4s(batch: usize, u: &GemmConvUniforms) -> usize {
    batch * u.src_stride_n as usize / 4
}

/// vec4s of one dispatch's packed weights: [groups][taps][reduce4][m_pad].
fn weight_vec4s(u: &GemmConvUniforms) -> usize {
    u.groups as usize * (u.taps_h * u.taps_w) as usize * u.reduce4 as usize * u.m_pad as usize
}

/// Adds the repacking of the weights each dispatch of `gemms` reads (through its own weight
/// view) into one packed operand, one region per dispatch, and returns it.
fn pack_weights(
    plan: &mut Plan,
    op: &'static str,
    tiling: Tiling,
    gemms: &mut [GemmConvUniforms],
    max_per_dimension: u32,
) -> Result<Operand> {
    let mut total = 0usize;
    for u in gemms.iter_mut() {
        u.channel_tiles_per_group = u.channels_per_group.div_ceil(tiling.channels() as u32);
        u.m_pad = u.channel_tiles_per_group * tiling.channels() as u32;
        u.reduce4 = reduce4(u);
        u.packed_w_base = total as u32;
        total += weight_vec4s(u);
    }
    let (packed, kernel) = tiling.add_packed(plan, total, Packing::Weights);
    // Repacking on every call would read the weights again each time (uncoalesced on a GPU,
    // lane by lane on lavapipe); they change only between training steps.
    plan.kept_weights = Some(packed);
    for u in gemms.iter() {
        let vec4s = weight_vec4s(u);
        // A stride phase without taps reads no weights.
        if vec4s == 0 {
            continue;
        }
        let grid = pack_grid(op, tiling, vec4s, max_per_dimension)?;
        plan.steps.push(Step::new(
            kernel,
            &GemmConvUniforms {
                invocations: grid.invocations,
                ..*u
            },
            grid,
            vec![Operand::Weight, packed],
        ));
    }
    Ok(packed)
}

/// How the gathers of a plan read their source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SourceRead {
    /// Repacked first (`pack_source_vec4`), zero-padded: any window.
    Packed,
    /// Bound as it lies, as the packed source it already is: a channel-innermost source with
    /// one group of whole vec4s of channels (NHWC), read by `conv2d_gemm_tiled`.
    AsPacked,
    /// Read in place, a scalar per term, by `conv2d_gemm_tiled_in_place`: any layout.
    InPlace,
    /// Copied into a texture as it lies, which is already the packed source `AsPacked` binds
    /// (NHWC, one group of whole vec4s of channels, 1x1 windows inside it): read by the
    /// subgroup kernels with no packing pass.
    CopiedAsPacked,
    /// Copied into a texture as it lies and read from there by the wide subgroup tiles
    /// (`conv2d_gemm_packed_wide_from_nchw`): one tap per dispatch at unit steps over all of an
    /// NCHW source whose planes and channels per group come in fours (see [`whole_nchw`]).
    Copied,
}

/// How the gathers `gemms` of `tiling` read their source. Packing pays for zero padding and for
/// the taps' shared vec4s; a 1x1 window whose every read lies inside the source needs neither
/// (every stride phase of its dx has at most one tap), so the tiled kernels read such a layer's
/// activations where they lie: a plain matrix product, with no packing pass that would cost
/// a third to half of the GEMM's own time, and for a strided window nothing of what it skips.
/// The subgroup kernels read textures, so they read a copy, which lavapipe makes at memory
/// speed: in NHWC as the packed source it already is, in NCHW through the wide tiles that take
/// four neighbouring pixels per lane.
fn source_read(tiling: Tiling, gemms: &[GemmConvUniforms]) -> SourceRead {
    let inside = |u: &GemmConvUniforms| {
        let taps = u.taps_h * u.taps_w;
        let within = |range: Option<(i64, i64)>, size: u32| {
            range.is_none_or(|(lo, hi)| lo >= 0 && hi < i64::from(size))
        };
        taps == 0
            || (taps == 1
                && within(
                    read_range(u.grid_h, u.src_step_h, u.src_off_h, 1, u.tap_step_h),
                    u.src_h,
                )
                && within(
                    read_range(u.grid_w, u.src_step_w, u.src_off_w, 1, u.tap_step_w),
                    u.src_w,
                ))
    };
    if !gemms.iter().all(inside) {
        return SourceRead::Packed;
    }
    let packed_already = {
        let u = &gemms[0];
        let c = u.reduce_per_group;
        let channels_innermost = u.src_stride_c == 1
            && u.src_stride_w == c
            && u.src_stride_h == u.src_w * c
            && u.src_stride_n == u.src_h * u.src_w * c;
        u.groups == 1 && c.is_multiple_of(4) && channels_innermost
    };
    match tiling {
        Tiling::Workgroup(_) if packed_already => SourceRead::AsPacked,
        Tiling::Workgroup(_) => SourceRead::InPlace,
        Tiling::SubgroupWide(_) if gemms.iter().all(whole_nchw) => SourceRead::Copied,
        _ if packed_already => SourceRead::CopiedAsPacked,
        _ => SourceRead::Packed,
    }
}

/// Whether gather `u` reads its whole NCHW source at unit steps with one tap, over planes of a
/// multiple of 4 pixels and channels per group in fours: what
/// `conv2d_gemm_packed_wide_from_nchw` reads from the source's copy, four pixels of a channel
/// per texel (1x1 layers at stride 1, and the input gradients of 1x1 layers at any stride and
/// of k x k layers at stride k, whose phases have a tap each or none). A dispatch with no tap
/// reads nothing and passes too; [`without_taps`] gives it the plain wide tiles.
fn whole_nchw(u: &GemmConvUniforms) -> bool {
    let plane = u.src_h * u.src_w;
    u.taps_h * u.taps_w == 0
        || (u.src_step_h == 1
            && u.src_step_w == 1
            && u.src_off_h == 0
            && u.src_off_w == 0
            && u.grid_h == u.src_h
            && u.grid_w == u.src_w
            && u.src_stride_w == 1
            && u.src_stride_h == u.src_w
            && u.src_stride_c == plane
            && plane.is_multiple_of(4)
            && u.src_stride_n.is_multiple_of(4)
            && u.reduce_per_group.is_multiple_of(4))
}

/// Sets the pack fields of `gemms` for a source bound as its own packed form
/// ([`SourceRead::AsPacked`]): the whole source, no offset.
fn source_as_packed(batch: usize, gemms: &mut [GemmConvUniforms]) {
    for u in gemms.iter_mut() {
        u.batch = batch as u32;
        u.packed_h = u.src_h;
        u.packed_w = u.src_w;
        u.pack_off_h = 0;
        u.pack_off_w = 0;
        u.reduce4 = reduce4(u);
    }
}

/// The vec4s to zero ahead of `gemms` in place of the GEMMs of the stride phases without taps,
/// or `None` where they write something else (a bias) or there are none. Zeros over the whole
/// destination are cheaper than the empty tiles' scattered stores (three quarters of a 1x1
/// stride-2 layer's dx), the phases with taps overwriting their share after; that needs the
/// phases to tile the binding's first elements exactly, in whole vec4s.
fn zero_fill(batch: usize, gemms: &[GemmConvUniforms]) -> Option<usize> {
    let empty = |u: &GemmConvUniforms| u.taps_h * u.taps_w == 0;
    if !gemms.iter().any(empty) || gemms.iter().any(|u| u.has_bias != 0 || u.activation != 0) {
        return None;
    }
    let written: usize = gemms
        .iter()
        .map(|u| u.pixels as usize * (u.groups * u.channels_per_group) as usize)
        .sum();
    let extent = batch * gemms[0].dst_stride_n as usize;
    (extent > 0 && written == extent && extent.is_multiple_of(4)).then_some(extent / 4)
}

/// Appends the GEMM dispatches `kernel` of `gemms` reading the source and the packed weights.
#[allow(clippy::too_many_arguments)]
fn push_gemms(
    plan: &mut Plan,
    op: &'static str,
    tiling: Tiling,
    kernel: Kernel,
    uniforms: &[GemmConvUniforms],
    source: Operand,
    weights: Operand,
    max_per_dimension: u32,
) -> Result<()> {
    for u in uniforms {
        let kernel = vec4_stores(few_rows(without_taps(kernel, u), u), u);
        let column_blocks = (u.pixels as usize).div_ceil(tiling.columns());
        let tiles = column_blocks * (u.channel_tiles_per_group * u.groups) as usize;
        let grid = grid(op, tiles * tiling.invocations(), max_per_dimension)?;
        let u = GemmConvUniforms {
            column_blocks: column_blocks as u32,
            invocations: grid.invocations,
            tile_shift: tiling.tile_shift(),
            ..*u
        };
        plan.steps.push(Step::new(
            kernel,
            &u,
            grid,
            vec![source, weights, Operand::Bias, Operand::Output],
        ));
    }
    Ok(())
}

/// The gather kernel for dispatch `u`: `kernel`, or where `u` reads no tap (a stride phase
/// none reaches, left to write its bias where no zero fill replaces it) and `kernel` reads a
/// source copied as it lies (`_from_nchw`, whose lanes take quads of whole planes of a
/// multiple of 4 pixels, and which reads terms whatever the taps), the plain wide tiles, which
/// read nothing at no taps and write each pixel apart.
fn without_taps(kernel: Kernel, u: &GemmConvUniforms) -> Kernel {
    match kernel {
        _ if u.taps_h * u.taps_w > 0 => kernel,
        Kernel::Conv2dGemmPacked8WideFromNchw => Kernel::Conv2dGemmPacked8Wide,
        Kernel::Conv2dGemmPacked16WideFromNchw => Kernel::Conv2dGemmPacked16Wide,
        other => other,
    }
}

/// The gather kernel for dispatch `u`: `kernel`, or where that runs few tiles and `u` allows
/// it (unit steps along x, taps one pixel apart, rows of a multiple of 8 pixels) the one that
/// slides each lane's 8 neighbouring pixels along their row (`conv2d_gemm_packed_few_rows`).
fn few_rows(kernel: Kernel, u: &GemmConvUniforms) -> Kernel {
    let slides = u.src_step_w == 1
        && (u.taps_w <= 1 || (u.tap_step_w as i32).abs() == 1)
        && u.grid_w.is_multiple_of(8);
    match kernel {
        Kernel::Conv2dGemmPacked8Few if slides => Kernel::Conv2dGemmPacked8FewRows,
        Kernel::Conv2dGemmPacked16Few if slides => Kernel::Conv2dGemmPacked16FewRows,
        other => other,
    }
}

/// The gather kernel for dispatch `u`: `kernel`, or where that runs wide tiles and the
/// destination's layout allows, one that writes vec4s instead of single values (lavapipe runs
/// each store lane by lane):
/// - of four neighbouring pixels per channel (`conv2d_gemm_packed_wide_pixel_quads`), where
///   every four destination pixels from a multiple of 4 are neighbouring, vec4-aligned values
///   of each channel: unit steps over whole planes of a multiple of 4 pixels with NCHW
///   strides of multiples of 4 (forward passes and stride-1 input gradients into NCHW planes
///   of 56x56, 28x28 or 14x14, not 7x7, nor the stride phases of a strided input gradient);
/// - of each pixel's four channels (`conv2d_gemm_packed_wide_channel_quads`), where channels
///   are innermost and come in fours (NHWC with channels per group and pixel strides of
///   multiples of 4, at any steps).
fn vec4_stores(kernel: Kernel, u: &GemmConvUniforms) -> Kernel {
    let pixel_quads = u.dst_step_h == 1
        && u.dst_step_w == 1
        && u.dst_off_h == 0
        && u.dst_off_w == 0
        && u.dst_stride_w == 1
        && u.dst_stride_h == u.grid_w
        && (u.grid_h * u.grid_w).is_multiple_of(4)
        && u.dst_stride_c.is_multiple_of(4)
        && u.dst_stride_n.is_multiple_of(4);
    let channel_quads = u.dst_stride_c == 1
        && u.channels_per_group.is_multiple_of(4)
        && u.dst_stride_w.is_multiple_of(4)
        && u.dst_stride_h.is_multiple_of(4)
        && u.dst_stride_n.is_multiple_of(4);
    match kernel {
        Kernel::Conv2dGemmPacked8Wide if pixel_quads => Kernel::Conv2dGemmPacked8WidePixelQuads,
        Kernel::Conv2dGemmPacked16Wide if pixel_quads => Kernel::Conv2dGemmPacked16WidePixelQuads,
        Kernel::Conv2dGemmPacked8Wide if channel_quads => Kernel::Conv2dGemmPacked8WideChannelQuads,
        Kernel::Conv2dGemmPacked16Wide if channel_quads => {
            Kernel::Conv2dGemmPacked16WideChannelQuads
        }
        Kernel::Conv2dGemmPacked8WideFromNchw if pixel_quads => {
            Kernel::Conv2dGemmPacked8WideFromNchwPixelQuads
        }
        Kernel::Conv2dGemmPacked16WideFromNchw if pixel_quads => {
            Kernel::Conv2dGemmPacked16WideFromNchwPixelQuads
        }
        other => other,
    }
}

/// The forward pass: pack the input and the weights, then one GEMM dispatch.
pub fn forward(
    op: &'static str,
    tiling: Tiling,
    g: &Conv2dGeometry,
    has_bias: bool,
    activation: Activation,
    max_per_dimension: u32,
) -> Result<Plan> {
    let gemms = [gemm::forward(
        op,
        g,
        SubgroupTile::PACKED8,
        has_bias,
        activation,
        max_per_dimension,
    )?];
    gather_plan(
        op,
        tiling,
        g.batch,
        Operand::Input,
        &gemms,
        max_per_dimension,
    )
}

/// The input gradient (and conv_transpose2d): pack grad_output once, padded for every stride
/// phase, pack each phase's taps of the weights, then one GEMM dispatch per phase.
pub fn input_grad(
    op: &'static str,
    tiling: Tiling,
    g: &Conv2dGeometry,
    has_bias: bool,
    max_per_dimension: u32,
) -> Result<Plan> {
    let gemms = gemm::input_grad(op, g, SubgroupTile::PACKED8, has_bias, max_per_dimension)?;
    gather_plan(
        op,
        tiling,
        g.batch,
        Operand::GradOutput,
        &gemms,
        max_per_dimension,
    )
}

fn gather_plan(
    op: &'static str,
    tiling: Tiling,
    batch: usize,
    source: Operand,
    gemms: &[GemmDispatch],
    max_per_dimension: u32,
) -> Result<Plan> {
    let mut plan = Plan::default();
    if gemms.is_empty() {
        return Ok(plan);
    }
    let tiling = tiling.for_gather(gemms[0].uniforms.channels_per_group as usize);
    let mut uniforms: Vec<GemmConvUniforms> = gemms.iter().map(|d| d.uniforms).collect();
    let read = source_read(tiling, &uniforms);
    let (source, kernel) = match read {
        SourceRead::Packed => (
            pack_source(
                &mut plan,
                op,
                tiling,
                source,
                batch,
                &mut uniforms,
                max_per_dimension,
            )?,
            tiling.kernels().0,
        ),
        SourceRead::AsPacked => {
            source_as_packed(batch, &mut uniforms);
            (source, tiling.kernels().0)
        }
        SourceRead::InPlace => (source, Kernel::Conv2dGemmTiledInPlace),
        SourceRead::CopiedAsPacked => {
            source_as_packed(batch, &mut uniforms);
            let copy = plan.add_texture_copy(source, source_vec4s(batch, &uniforms[0]));
            (copy, tiling.kernels().0)
        }
        SourceRead::Copied => {
            let kernel = match tiling {
                Tiling::SubgroupWide(8) => Kernel::Conv2dGemmPacked8WideFromNchw,
                _ => Kernel::Conv2dGemmPacked16WideFromNchw,
            };
            let copy = plan.add_texture_copy(source, source_vec4s(batch, &uniforms[0]));
            (copy, kernel)
        }
    };
    let packed_weights = pack_weights(&mut plan, op, tiling, &mut uniforms, max_per_dimension)?;
    if let Some(vec4s) = zero_fill(batch, &uniforms) {
        let grid = grid(op, vec4s, max_per_dimension)?;
        plan.steps.push(Step::new(
            Kernel::FillZeroVec4,
            &GemmConvUniforms {
                invocations: grid.invocations,
                ..uniforms[0]
            },
            grid,
            vec![Operand::Unused, Operand::Output],
        ));
        uniforms.retain(|u| u.taps_h * u.taps_w > 0);
    }
    push_gemms(
        &mut plan,
        op,
        tiling,
        kernel,
        &uniforms,
        source,
        packed_weights,
        max_per_dimension,
    )?;
    Ok(plan)
}

/// Output columns of the weight gradient's packed rows, in vec4s.
fn row_vec4s(g: &Conv2dGeometry) -> usize {
    g.w.output.div_ceil(4)
}

/// Source rows of the weight gradient's packed input: the padded height every tap row reads,
/// or where [`rows_subsampled`] only the rows it reads, one per output row.
fn padded_rows(g: &Conv2dGeometry) -> usize {
    match rows_subsampled(g) {
        Some(_) => g.h.output,
        None => (g.h.output - 1) * g.h.stride + (g.h.kernel - 1) * g.h.dilation + 1,
    }
}

/// The stride along y at which the weight gradient reads its input rows, where it reads one
/// row in `stride` (a kernel one row high, as the ResNet 1x1 stride-2 shortcuts have) from a
/// multiple of it: its packed input then holds only those rows (as the gathers'
/// `subsample_single_taps` does), half of them at stride 2, where every padded row cost a
/// packing kernel's lane-by-lane loads and texel stores.
fn rows_subsampled(g: &Conv2dGeometry) -> Option<u32> {
    (g.h.kernel == 1 && g.h.stride > 1 && g.h.pad_before.is_multiple_of(g.h.stride))
        .then_some(g.h.stride as u32)
}

/// `u` reading the input as a source of every `rows_subsampled(g)`-th row, at unit steps.
fn subsample_rows(g: &Conv2dGeometry, mut u: GemmConvUniforms) -> GemmConvUniforms {
    if let Some(s) = rows_subsampled(g) {
        subsample_axis(
            s,
            &mut u.src_h,
            &mut u.src_stride_h,
            &mut u.src_off_h,
            &mut u.src_step_h,
        );
    }
    u
}

/// Whether the weight gradient's grad_output goes into its texture by a plain copy instead of
/// a packing kernel: NCHW with output rows of whole vec4s, where grad_output's own order is
/// the packed rows' image by image, and the kernels' `a_image_jump` steps over the other
/// channels between images. lavapipe copies a buffer into a texture at memory speed, where
/// the packing kernel's gathers and texel stores ran at 1.5-2 GB/s.
fn grad_output_copied(tiling: Tiling, g: &Conv2dGeometry) -> bool {
    tiling.packs_to_textures()
        && g.layout == Layout::Nchw
        && (g.w.output.is_multiple_of(4) || weight_grad_input(tiling, g) == WeightGradInput::Planes)
}

/// How the weight gradient's pass 1 reads its input, decided once for the packing, the
/// kernel, its uniforms and the reduction's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WeightGradInput {
    /// Rows packed per kernel column (`pack_rows_texture`), one texel fetch per four values.
    PackedRows,
    /// A copy of the NCHW input as it lies, read along rows at unit steps
    /// (`conv2d_weight_grad_packed_wide_from_nchw`).
    Copied,
    /// The same copy read at stride 2 along x (`_from_nchw_stride2`).
    CopiedStride2,
    /// The same copy read by whole planes (`_from_nchw_planes`), one row of the reduction per
    /// image.
    Planes,
}

/// How the wide weight gradient reads its input (the other tilings pack rows):
/// - by planes where [`reduces_over_planes`] allows it;
/// - from a copy made as it lies where it is NCHW with rows of whole vec4s, read at unit
///   steps or stride 2 along x (on planes 4k wide the ResNet 3x3 layers, stride-2 ones
///   included, its 1x1 expansions and its stem), rows not subsampled. Packing wrote one
///   shifted copy of the input per kernel column, at lavapipe's texel-store speed; a copy runs
///   at memory speed, and the kernel pays a second fetch and a shift per value (a third at
///   stride 2). A 1x1 layer at stride 2 both ways reads a quarter of its input, which packing
///   subsamples: a copy of all of it and a kernel fetching texels half of whose values it
///   drops took longer.
fn weight_grad_input(tiling: Tiling, g: &Conv2dGeometry) -> WeightGradInput {
    let copies = matches!(tiling, Tiling::SubgroupWide(_)) && g.layout == Layout::Nchw;
    if copies && reduces_over_planes(g) {
        WeightGradInput::Planes
    } else if copies && g.w.input.is_multiple_of(4) && rows_subsampled(g).is_none() {
        match g.w.stride {
            1 => WeightGradInput::Copied,
            2 => WeightGradInput::CopiedStride2,
            _ => WeightGradInput::PackedRows,
        }
    } else {
        WeightGradInput::PackedRows
    }
}

/// Whether a weight gradient may reduce over whole planes instead of rows: NCHW at unit steps
/// with output rows as long as the input's (a `same` window) that are not whole vec4s (14
/// pixels, which a copy read along rows cannot serve) in planes that are, of at most `BLOCK_TERMS`
/// pixels (a plane is one row of the blocked reduction), rows at least 4 long. Output pixel p
/// then meets input pixel p + dy * W + dx at tap offsets (dy, dx), so a vec4 of a plane is
/// four neighbouring values of the input's plane wherever rows break; packing rows of 14 to 16
/// cost the 256-channel 14x14 layer's dw 6 of its 31 ms at 512 bits, and an eighth of its
/// multiply-adds were with padding. The error bound allows for either reduction.
pub(crate) fn reduces_over_planes(g: &Conv2dGeometry) -> bool {
    let plane = g.h.output * g.w.output;
    g.layout == Layout::Nchw
        && g.h.stride == 1
        && g.w.stride == 1
        && g.w.input == g.w.output
        && g.w.input >= 4
        && !g.w.input.is_multiple_of(4)
        && (g.h.input * g.w.input).is_multiple_of(4)
        && plane.is_multiple_of(4)
        && plane <= BLOCK_TERMS
}

/// The rows of the weight gradient's reduction and the terms in each: grad_output's rows
/// (n, oy), or where it reads by planes one plane per image.
pub fn weight_grad_rows(tiling: Tiling, g: &Conv2dGeometry) -> (usize, usize) {
    if weight_grad_input(tiling, g) == WeightGradInput::Planes {
        (g.batch, g.h.output * g.w.output)
    } else {
        (g.batch * g.h.output, g.w.output)
    }
}

/// The repacking before the weight gradient's pass 1: grad_output as rows [g][m][n][oy][ox]
/// (the first operand returned; copied in its own [n][g][m][oy][ox] order where
/// [`grad_output_copied`]), and the input (the second) as rows [g][(r, tx)][n][y][ox] holding input
/// (y - pad_top, ox * stride + tx * dilation - pad_left) for every padded row y: im2col
/// along x only, so the kernel taps (ty) step down rows of it instead of needing copies of
/// their own (3x less packing than full im2col for a 3x3 kernel). Output columns are
/// padded to whole vec4s per row.
pub fn weight_grad_packing(
    op: &'static str,
    tiling: Tiling,
    g: &Conv2dGeometry,
    max_per_dimension: u32,
) -> Result<(Plan, [Operand; 2])> {
    let view = gemm::forward_view(g, SubgroupTile::PACKED8);
    let ow4 = row_vec4s(g);
    let mut plan = Plan::default();
    let base = GemmConvUniforms {
        batch: g.batch as u32,
        ow4: ow4 as u32,
        ..view
    };
    let grad_output = GemmConvUniforms {
        reduce_per_group: view.channels_per_group,
        taps_h: 1,
        taps_w: 1,
        src_h: view.grid_h,
        src_w: view.grid_w,
        src_step_h: 1,
        src_step_w: 1,
        src_off_h: 0,
        src_off_w: 0,
        tap_step_h: 0,
        tap_step_w: 0,
        src_stride_n: view.dst_stride_n,
        src_stride_c: view.dst_stride_c,
        src_stride_h: view.dst_stride_h,
        src_stride_w: view.dst_stride_w,
        ..base
    };
    let input = GemmConvUniforms {
        taps_h: 1,
        grid_h: padded_rows(g) as u32,
        src_step_h: 1,
        tap_step_h: 0,
        ..subsample_rows(g, base)
    };
    let mut packed = [Operand::Unused; 2];
    for (i, (u, source)) in [(grad_output, Operand::GradOutput), (input, Operand::Input)]
        .into_iter()
        .enumerate()
    {
        let rows = (u.groups * u.reduce_per_group * u.taps_h * u.taps_w) as usize;
        let vec4s = rows * (u.batch * u.grid_h * u.ow4) as usize;
        let copied = match source {
            Operand::GradOutput => grad_output_copied(tiling, g),
            _ => weight_grad_input(tiling, g) != WeightGradInput::PackedRows,
        };
        if copied {
            packed[i] = plan.add_texture_copy(source, source_vec4s(g.batch, &u));
            continue;
        }
        let (operand, kernel) = tiling.add_packed(&mut plan, vec4s, Packing::Rows);
        packed[i] = operand;
        let grid = pack_grid(op, tiling, vec4s, max_per_dimension)?;
        plan.steps.push(Step::new(
            kernel,
            &GemmConvUniforms {
                invocations: grid.invocations,
                ..u
            },
            grid,
            vec![source, operand],
        ));
    }
    Ok((plan, packed))
}

/// The weight gradient's pass-1 kernel and its invocations per block of rows: tiles of
/// `tiling`'s channels by its columns (r, ty, tx), a subgroup's invocations or 64 (a
/// workgroup) each.
pub fn weight_grad_pass1(tiling: Tiling, g: &Conv2dGeometry) -> (Kernel, usize) {
    let columns = g.in_channels_per_group() * g.h.kernel * g.w.kernel;
    let tiles = g.groups
        * g.out_channels_per_group().div_ceil(tiling.channels())
        * columns.div_ceil(tiling.columns());
    use Kernel::*;
    let kernel = match (tiling, weight_grad_input(tiling, g)) {
        (Tiling::SubgroupWide(8), WeightGradInput::Copied) => Conv2dWeightGradPacked8WideFromNchw,
        (Tiling::SubgroupWide(_), WeightGradInput::Copied) => Conv2dWeightGradPacked16WideFromNchw,
        (Tiling::SubgroupWide(8), WeightGradInput::CopiedStride2) => {
            Conv2dWeightGradPacked8WideFromNchwStride2
        }
        (Tiling::SubgroupWide(_), WeightGradInput::CopiedStride2) => {
            Conv2dWeightGradPacked16WideFromNchwStride2
        }
        (Tiling::SubgroupWide(8), WeightGradInput::Planes) => {
            Conv2dWeightGradPacked8WideFromNchwPlanes
        }
        (Tiling::SubgroupWide(_), WeightGradInput::Planes) => {
            Conv2dWeightGradPacked16WideFromNchwPlanes
        }
        _ => tiling.kernels().1,
    };
    (kernel, tiles * tiling.invocations())
}

/// Uniforms of the weight gradient's pass 1 on the packed rows: blocks of `rows_per_block`
/// output rows (n, oy), each `ow4` vec4s long.
pub fn weight_grad_partial(
    tiling: Tiling,
    g: &Conv2dGeometry,
    rows_per_block: usize,
    blocks: usize,
    invocations: u32,
) -> GemmConvUniforms {
    // Where the reduction runs over planes, a "row" is an image's plane, one per image.
    let (ow4, grid_h) = if weight_grad_input(tiling, g) == WeightGradInput::Planes {
        ((g.h.output * g.w.output) / 4, 1)
    } else {
        (row_vec4s(g), g.h.output)
    };
    let k_vec = g.batch * grid_h * ow4;
    let image_vec4s = grid_h * ow4;
    let (a_row_stride, a_image_jump) = if grad_output_copied(tiling, g) {
        (image_vec4s, (g.out_channels - 1) * image_vec4s)
    } else {
        (k_vec, 0)
    };
    let partial = subsample_rows(
        g,
        gemm::weight_grad_partial(
            g,
            SubgroupTile::PACKED8,
            rows_per_block,
            blocks,
            invocations,
        ),
    );
    GemmConvUniforms {
        batch: g.batch as u32,
        ow4: ow4 as u32,
        grid_h: grid_h as u32,
        k_vec: k_vec as u32,
        a_row_stride: a_row_stride as u32,
        a_image_jump: a_image_jump as u32,
        // Packed rows only (a copy's walk steps by the input's strides).
        packed_h: padded_rows(g) as u32,
        column_blocks: (g.in_channels_per_group() * g.h.kernel * g.w.kernel)
            .div_ceil(tiling.columns()) as u32,
        channel_tiles_per_group: g.out_channels_per_group().div_ceil(tiling.channels()) as u32,
        tile_shift: tiling.tile_shift(),
        ..partial
    }
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
    use crate::gpu::plan::PlannedCopy;

    #[test]
    fn read_range_covers_negative_steps() {
        // Forward: 4 outputs at stride 2 from -1, 3 taps at dilation 1: rows -1..=7.
        assert_eq!(read_range(4, 2, signed(-1), 3, 1), Some((-1, 7)));
        // Input-gradient phase: 5 positions at step 1 from 1, 2 taps stepping -1: rows 0..=5.
        assert_eq!(read_range(5, 1, 1, 2, signed(-1)), Some((0, 5)));
        assert_eq!(read_range(5, 1, 1, 0, 0), None);
    }

    /// The texture copies and kernels, in order, of a gather pass of `tiling`: the forward
    /// pass, or the input gradient where `dx`, of NCHW-ordered `input` and `weight` shapes laid
    /// out as `params` says.
    fn gather_plan_of(
        tiling: Tiling,
        params: crate::Conv2dParams,
        input: [usize; 4],
        weight: [usize; 4],
        dx: bool,
    ) -> (Vec<PlannedCopy>, Vec<Kernel>) {
        let layout = params.layout;
        let g = params
            .geometry(
                "t",
                layout.activation_shape(input),
                layout.weight_shape(weight),
                None,
            )
            .unwrap();
        let plan = if dx {
            input_grad("t", tiling, &g, false, 65535)
        } else {
            forward("t", tiling, &g, false, Activation::None, 65535)
        }
        .unwrap();
        let kernels = plan.steps.iter().map(|s| s.kernel).collect();
        (plan.texture_copies, kernels)
    }

    #[test]
    fn packed_gathers_copy_nchw_sources_with_whole_vec4_rows() {
        let packed = Tiling::SubgroupWide(16);
        let plan_of = |tiling, layout: crate::Layout, input: [usize; 4], k: usize, stride| {
            let params = crate::Conv2dParams::default()
                .with_stride(stride)
                .with_layout(layout);
            gather_plan_of(tiling, params, input, [8, input[1], k, k], false)
        };
        let (copies, kernels) = plan_of(packed, crate::Layout::Nchw, [2, 5, 6, 8], 3, 1);
        assert_eq!(
            copies,
            [PlannedCopy {
                from: Operand::Input,
                // After the packed source's own texture.
                texture: 1,
                vec4s: 2 * 5 * 6 * 8 / 4,
            }]
        );
        assert_eq!(kernels[0], Kernel::PackSourceQuadsTexture);
        // Rows of 7, NHWC, a strided 1x1 layer read subsampled, or a buffer operand: packed
        // by the kernel that loads from the source buffer.
        for (tiling, layout, input, k, stride) in [
            (packed, crate::Layout::Nchw, [2, 5, 6, 7], 3, 1),
            (packed, crate::Layout::Nhwc, [2, 8, 6, 8], 3, 1),
            (packed, crate::Layout::Nchw, [2, 8, 6, 8], 1, 2),
            (
                Tiling::Workgroup(TILED_CHANNELS),
                crate::Layout::Nchw,
                [2, 8, 6, 8],
                3,
                1,
            ),
        ] {
            let (copies, kernels) = plan_of(tiling, layout, input, k, stride);
            let what = format!("{tiling:?} {layout:?} {input:?} {k}x{k} stride {stride}");
            assert!(copies.is_empty(), "{what}");
            assert_ne!(kernels[0], Kernel::PackSourceQuadsTexture, "{what}");
        }
    }

    /// Wide gathers store vec4s of pixels where each channel's destination is whole planes of
    /// a multiple of 4 pixels written with unit steps in NCHW, vec4s of channels where those
    /// are innermost in fours, and one value at a time elsewhere.
    #[test]
    fn wide_gathers_store_vec4s_where_the_destination_layout_allows() {
        let gathers = |layout: crate::Layout, input: [usize; 4], out: usize, stride, dx: bool| {
            let params = crate::Conv2dParams::default()
                .with_stride(stride)
                .with_padding(crate::Padding::uniform(1))
                .with_layout(layout);
            let weight = [out, input[1], 3, 3];
            let (_, kernels) = gather_plan_of(Tiling::Subgroup(8), params, input, weight, dx);
            kernels
                .into_iter()
                .filter(|k| {
                    matches!(
                        k,
                        Kernel::Conv2dGemmPacked8Wide
                            | Kernel::Conv2dGemmPacked8WidePixelQuads
                            | Kernel::Conv2dGemmPacked8WideChannelQuads
                    )
                })
                .collect::<Vec<_>>()
        };
        use crate::Layout::{Nchw, Nhwc};
        let pixels = Kernel::Conv2dGemmPacked8WidePixelQuads;
        let channels = Kernel::Conv2dGemmPacked8WideChannelQuads;
        let values = Kernel::Conv2dGemmPacked8Wide;
        // NCHW: forward into 40 channels of 6x6 (and 4x2 at stride 2) planes, the input
        // gradient into 40 channels of 6x6 at stride 1.
        assert_eq!(gathers(Nchw, [2, 40, 6, 6], 40, 1, false), [pixels]);
        assert_eq!(gathers(Nchw, [2, 40, 8, 4], 40, 2, false), [pixels]);
        assert_eq!(gathers(Nchw, [2, 40, 6, 6], 40, 1, true), [pixels]);
        // Planes of 7x7 and 3x3, and the four phases of a stride-2 input gradient.
        assert_eq!(gathers(Nchw, [2, 40, 7, 7], 40, 1, false), [values]);
        assert_eq!(gathers(Nchw, [2, 40, 6, 6], 40, 2, false), [values]);
        assert_eq!(gathers(Nchw, [2, 40, 6, 6], 40, 2, true), [values; 4]);
        // NHWC: 40 channels at any plane and step, 42 not.
        assert_eq!(gathers(Nhwc, [2, 40, 7, 7], 40, 1, false), [channels]);
        assert_eq!(gathers(Nhwc, [2, 40, 6, 6], 40, 2, true), [channels; 4]);
        assert_eq!(gathers(Nhwc, [2, 40, 6, 6], 42, 1, false), [values]);
        assert_eq!(gathers(Nhwc, [2, 42, 6, 6], 40, 1, true), [values]);
    }

    /// 1x1 layers at unit steps over all of an NCHW source with planes and channels per group
    /// in fours read the source from its copy with no packing pass; anything else packs.
    #[test]
    fn wide_gathers_read_1x1_layers_from_an_nchw_copy() {
        let plan_of = |layout: crate::Layout, input: [usize; 4], groups, stride, dx: bool| {
            let params = crate::Conv2dParams::default()
                .with_stride(stride)
                .with_groups(groups)
                .with_layout(layout);
            let weight = [40, input[1] / groups, 1, 1];
            gather_plan_of(Tiling::Subgroup(8), params, input, weight, dx)
        };
        use crate::Layout::{Nchw, Nhwc};
        let (copies, kernels) = plan_of(Nchw, [2, 8, 6, 6], 1, 1, false);
        assert_eq!(
            copies,
            [PlannedCopy {
                from: Operand::Input,
                // The plan's first texture; the packed weights' is the second.
                texture: 0,
                vec4s: 2 * 8 * 6 * 6 / 4,
            }]
        );
        assert_eq!(
            kernels,
            [
                Kernel::PackWeightTexture,
                Kernel::Conv2dGemmPacked8WideFromNchwPixelQuads
            ]
        );
        // The input gradient, from grad_output's copy: at stride 1 into whole planes, at
        // stride 2 into every other pixel after the zero fill (the other phases have no tap).
        let (_, kernels) = plan_of(Nchw, [2, 40, 6, 6], 1, 1, true);
        assert_eq!(kernels[1], Kernel::Conv2dGemmPacked8WideFromNchwPixelQuads);
        let (_, kernels) = plan_of(Nchw, [2, 40, 8, 8], 1, 2, true);
        assert!(
            kernels.contains(&Kernel::Conv2dGemmPacked8WideFromNchw),
            "{kernels:?}"
        );
        // A stride-2 input gradient whose phases without taps are not zero-filled (333 values,
        // not whole vec4s): those write their zeros through the plain wide tiles.
        let (_, kernels) = plan_of(Nchw, [1, 37, 3, 3], 1, 2, true);
        let count = |k: Kernel| kernels.iter().filter(|&&x| x == k).count();
        assert_eq!(
            count(Kernel::Conv2dGemmPacked8WideFromNchw),
            1,
            "{kernels:?}"
        );
        assert_eq!(count(Kernel::Conv2dGemmPacked8Wide), 3, "{kernels:?}");
        // Planes of 35, 6 channels per group, a strided forward pass (packed subsampled), NHWC
        // (copied as the packed source it is): not read from an NCHW copy.
        for (layout, input, groups, stride) in [
            (Nchw, [2, 8, 5, 7], 1, 1),
            (Nchw, [2, 12, 6, 6], 2, 1),
            (Nchw, [2, 8, 8, 8], 1, 2),
            (Nhwc, [2, 8, 6, 6], 1, 1),
        ] {
            let (_, kernels) = plan_of(layout, input, groups, stride, false);
            assert!(
                !kernels.iter().any(|k| matches!(
                    k,
                    Kernel::Conv2dGemmPacked8WideFromNchw
                        | Kernel::Conv2dGemmPacked8WideFromNchwPixelQuads
                )),
                "{layout:?} {input:?} groups {groups} stride {stride}: {kernels:?}"
            );
        }
    }

    /// A weight gradient reading one input row in `stride` from a multiple of it packs only
    /// those rows, as a source of unit steps and `stride` times the row stride; any other
    /// packs every padded row.
    #[test]
    fn weight_gradients_of_strided_one_row_kernels_pack_only_the_rows_they_read() {
        let geometry = |k: usize, stride: usize, pad: usize| {
            crate::Conv2dParams::default()
                .with_stride(stride)
                .with_padding(crate::Padding::explicit(pad, 0, 0, 0))
                .geometry("t", [2, 8, 11, 12], [4, 8, k, 1], None)
                .unwrap()
        };
        // 1x1 at stride 2 (no padding, or 2 rows of it) and 3: output rows only.
        for (stride, pad, rows, src_h, src_off) in
            [(2, 0, 6, 6, 0), (2, 2, 7, 6, -1), (3, 0, 4, 4, 0)]
        {
            let g = geometry(1, stride, pad);
            assert_eq!(padded_rows(&g), rows, "stride {stride} pad {pad}");
            let u = subsample_rows(&g, gemm::forward_view(&g, SubgroupTile::PACKED8));
            assert_eq!(
                (u.src_h, u.src_stride_h, u.src_step_h, u.src_off_h as i32),
                (src_h, 12 * stride as u32, 1, src_off),
                "stride {stride} pad {pad}"
            );
        }
        // A padding that is not a multiple of the stride, a kernel 3 rows high, stride 1.
        for (k, stride, pad) in [(1, 2, 1), (3, 2, 0), (1, 1, 0)] {
            let g = geometry(k, stride, pad);
            let every = (g.h.output - 1) * stride + k;
            assert_eq!(
                padded_rows(&g),
                every,
                "{k} rows, stride {stride} pad {pad}"
            );
            let u = gemm::forward_view(&g, SubgroupTile::PACKED8);
            assert_eq!(subsample_rows(&g, u), u);
        }
    }

    /// 1x1 layers inside an NHWC source of one group of whole vec4s of channels copy it into a
    /// texture as the packed source it already is, at any stride and tile; other NHWC sources
    /// pack.
    #[test]
    fn subgroup_gathers_copy_nhwc_1x1_sources_as_their_packed_form() {
        use crate::{Conv2dParams, Layout, Padding};
        let plan_of = |input: [usize; 4], out: usize, p: Conv2dParams| {
            let p = p.with_layout(Layout::Nhwc);
            let weight = [out, input[1] / p.groups, 1, 1];
            gather_plan_of(Tiling::Subgroup(16), p, input, weight, false)
        };
        let plain = Conv2dParams::default();
        for (input, out, p, gemm) in [
            (
                [2, 64, 7, 7],
                256,
                plain,
                Kernel::Conv2dGemmPacked16WideChannelQuads,
            ),
            (
                [2, 64, 7, 7],
                24,
                plain.with_stride(2),
                Kernel::Conv2dGemmPacked16,
            ),
            ([2, 8, 5, 6], 3, plain, Kernel::Conv2dGemmPacked16Few),
        ] {
            let (copies, kernels) = plan_of(input, out, p);
            assert_eq!(
                copies,
                [PlannedCopy {
                    from: Operand::Input,
                    texture: 0,
                    vec4s: input.iter().product::<usize>() / 4,
                }],
                "{input:?} -> {out} {p:?}"
            );
            assert_eq!(
                kernels,
                [Kernel::PackWeightTexture, gemm],
                "{input:?} {p:?}"
            );
        }
        // Channels that are not whole vec4s, groups, padding: packed.
        for (input, p) in [
            ([2, 6, 5, 6], plain),
            ([2, 8, 5, 6], plain.with_groups(2)),
            ([2, 8, 5, 6], plain.with_padding(Padding::uniform(1))),
        ] {
            let (copies, kernels) = plan_of(input, 40, p);
            assert!(copies.is_empty(), "{input:?} {p:?}");
            assert_eq!(kernels[0], Kernel::PackSourceTexture, "{input:?} {p:?}");
        }
    }

    /// The texture copies and packing kernels of a weight gradient's packing plan.
    fn weight_grad_packing_of(
        tiling: Tiling,
        layout: crate::Layout,
        input: [usize; 4],
    ) -> (Vec<PlannedCopy>, Vec<Kernel>) {
        let params = crate::Conv2dParams::default()
            .with_padding(crate::Padding::uniform(1))
            .with_layout(layout);
        let g = params
            .geometry(
                "t",
                layout.activation_shape(input),
                layout.weight_shape([8, input[1], 3, 3]),
                None,
            )
            .unwrap();
        let (plan, _) = weight_grad_packing("t", tiling, &g, 65535).unwrap();
        let kernels = plan.steps.iter().map(|s| s.kernel).collect();
        (plan.texture_copies, kernels)
    }

    #[test]
    fn packed_weight_gradients_copy_nchw_grad_output_with_whole_vec4_rows() {
        // The pair tiles, which pack their input whatever its rows.
        let packed = Tiling::Subgroup(8);
        let (copies, kernels) = weight_grad_packing_of(packed, crate::Layout::Nchw, [2, 4, 5, 8]);
        assert_eq!(
            copies,
            [PlannedCopy {
                from: Operand::GradOutput,
                texture: 0,
                vec4s: 2 * 8 * 5 * 2,
            }]
        );
        assert_eq!(kernels, [Kernel::PackRowsTexture]);
        // Rows of 7 (padded to 8 in the packed rows), NHWC, or a buffer operand: packed.
        for (tiling, layout, input) in [
            (packed, crate::Layout::Nchw, [2, 4, 5, 7]),
            (packed, crate::Layout::Nhwc, [2, 4, 5, 8]),
            (
                Tiling::Workgroup(TILED_CHANNELS),
                crate::Layout::Nchw,
                [2, 4, 5, 8],
            ),
        ] {
            let (copies, kernels) = weight_grad_packing_of(tiling, layout, input);
            assert!(copies.is_empty(), "{tiling:?} {layout:?} {input:?}");
            assert_eq!(kernels.len(), 2, "{tiling:?} {layout:?} {input:?}");
        }
    }

    #[test]
    fn wide_weight_gradients_read_an_nchw_input_copy_of_rows_in_whole_vec4s() {
        use Kernel::{
            Conv2dWeightGradPacked16WideFromNchw as UnitSteps,
            Conv2dWeightGradPacked16WideFromNchwStride2 as Stride2,
        };
        let wide = Tiling::SubgroupWide(16);
        let plan_of = |params: crate::Conv2dParams, input: [usize; 4], kernel: usize| {
            let layout = params.layout;
            let g = params
                .geometry(
                    "t",
                    layout.activation_shape(input),
                    layout.weight_shape([40, input[1], kernel, kernel]),
                    None,
                )
                .unwrap();
            let (plan, operands) = weight_grad_packing("t", wide, &g, 65535).unwrap();
            let kernels: Vec<_> = plan.steps.iter().map(|s| s.kernel).collect();
            (
                plan.texture_copies,
                operands,
                kernels,
                weight_grad_pass1(wide, &g).0,
            )
        };
        let plain = crate::Conv2dParams::default();
        let same = plain.with_padding(crate::Padding::uniform(1));
        // 3x3 `same` on rows of 8: both operands copied, no packing.
        let (copies, operands, kernels, pass1) = plan_of(same, [2, 4, 5, 8], 3);
        assert_eq!(
            copies,
            [
                PlannedCopy {
                    from: Operand::GradOutput,
                    texture: 0,
                    vec4s: 2 * 40 * 5 * 2,
                },
                PlannedCopy {
                    from: Operand::Input,
                    texture: 1,
                    vec4s: 2 * 4 * 5 * 2,
                },
            ]
        );
        assert_eq!(operands, [Operand::Texture(0), Operand::Texture(1)]);
        assert!(kernels.is_empty());
        assert_eq!(pass1, UnitSteps);
        // So do 1x1 layers, unpadded windows whose output rows end short of the input's
        // (within its last vec4, or vec4s short), rows at stride 2 with columns at unit
        // steps; and columns at stride 2, with the stride-2 kernel: the ResNet stride-2 3x3
        // layer, its stem, a 1x1 window at stride 2 along x alone or from a padding of 1.
        for (params, input, kernel, expected) in [
            (plain, [1, 4, 3, 12], 1, UnitSteps),
            (plain, [1, 4, 6, 8], 3, UnitSteps),
            (plain, [1, 4, 6, 12], 5, UnitSteps),
            (same.with_stride_hw(2, 1), [1, 4, 6, 8], 3, UnitSteps),
            (same.with_stride(2), [1, 4, 6, 12], 3, Stride2),
            (
                plain
                    .with_stride(2)
                    .with_padding(crate::Padding::uniform(3)),
                [1, 3, 9, 16],
                7,
                Stride2,
            ),
            (plain.with_stride_hw(1, 2), [1, 4, 3, 8], 1, Stride2),
            (
                plain
                    .with_stride(2)
                    .with_padding(crate::Padding::uniform(1)),
                [1, 4, 5, 8],
                1,
                Stride2,
            ),
        ] {
            let (copies, operands, kernels, pass1) = plan_of(params, input, kernel);
            let copied = copies.last().expect("the input's copy");
            assert_eq!(copied.from, Operand::Input, "{params:?} {input:?}");
            assert_eq!(copied.vec4s, input.iter().product::<usize>() / 4);
            assert_eq!(operands[1], Operand::Texture(copied.texture));
            // grad_output rows that are not whole vec4s are packed.
            assert_eq!(kernels.len(), 2 - copies.len(), "{params:?} {input:?}");
            assert_eq!(pass1, expected, "{params:?} {input:?}");
        }
        // Rows of 14 (not whole vec4s) at stride 2, columns at stride 4, NHWC, and 1x1 windows
        // at stride 2 down the rows from a multiple of 2 (whose packing subsamples them; with
        // columns at stride 2 too, the ResNet shortcut): the input packed, the plain wide
        // kernel.
        for (params, input, kernel) in [
            (same.with_stride(2), [1, 4, 6, 14], 3),
            (same.with_stride(4), [1, 4, 6, 16], 3),
            (same.with_layout(crate::Layout::Nhwc), [1, 4, 6, 8], 3),
            (plain.with_stride(2), [1, 4, 6, 8], 1),
            (plain.with_stride_hw(2, 1), [1, 4, 6, 8], 1),
        ] {
            let (copies, _, kernels, pass1) = plan_of(params, input, kernel);
            assert!(
                copies.iter().all(|c| c.from != Operand::Input),
                "{params:?} {input:?}"
            );
            assert_eq!(
                kernels.last(),
                Some(&Kernel::PackRowsTexture),
                "{params:?} {input:?}"
            );
            assert_eq!(
                pass1,
                Kernel::Conv2dWeightGradPacked16Wide,
                "{params:?} {input:?}"
            );
        }
    }

    #[test]
    fn wide_weight_gradients_reduce_over_planes_where_same_rows_are_not_whole_vec4s() {
        let wide = Tiling::SubgroupWide(8);
        let same = crate::Conv2dParams::default().with_padding(crate::Padding::uniform(1));
        let geometry = |params: crate::Conv2dParams, input: [usize; 4]| {
            let layout = params.layout;
            params
                .geometry(
                    "t",
                    layout.activation_shape(input),
                    layout.weight_shape([40, input[1], 3, 3]),
                    None,
                )
                .unwrap()
        };
        // The 256-channel 14x14 layer's shape: both operands copied whole, no packing, one
        // row of the reduction per image, a plane of 6 * 14 / 4 vec4s long.
        let g = geometry(same, [2, 4, 6, 14]);
        let (plan, operands) = weight_grad_packing("t", wide, &g, 65535).unwrap();
        assert!(plan.steps.is_empty());
        assert_eq!(
            plan.texture_copies,
            [
                PlannedCopy {
                    from: Operand::GradOutput,
                    texture: 0,
                    vec4s: 2 * 40 * 21,
                },
                PlannedCopy {
                    from: Operand::Input,
                    texture: 1,
                    vec4s: 2 * 4 * 21,
                },
            ]
        );
        assert_eq!(operands, [Operand::Texture(0), Operand::Texture(1)]);
        assert_eq!(
            weight_grad_pass1(wide, &g).0,
            Kernel::Conv2dWeightGradPacked8WideFromNchwPlanes
        );
        assert_eq!(weight_grad_rows(wide, &g), (2, 6 * 14));
        let u = weight_grad_partial(wide, &g, 1, 2, 64);
        assert_eq!((u.ow4, u.grid_h, u.k_vec), (21, 1, 2 * 21));
        assert_eq!((u.a_row_stride, u.a_image_jump), (21, 39 * 21));
        // Not by planes: rows of whole vec4s (read by rows), rows of 14 at stride 2 or
        // unpadded (shorter than the input's), planes of 49 pixels, rows of 2, NHWC.
        for (params, input, rows) in [
            (same, [1, 4, 6, 8], true),
            (same.with_stride(2), [1, 4, 6, 14], false),
            (crate::Conv2dParams::default(), [1, 4, 6, 14], false),
            (same, [1, 4, 7, 7], false),
            (same, [1, 4, 6, 2], false),
            (same.with_layout(crate::Layout::Nhwc), [1, 4, 6, 14], false),
        ] {
            let g = geometry(params, input);
            assert_eq!(
                weight_grad_rows(wide, &g),
                (g.h.output, g.w.output),
                "{params:?} {input:?}"
            );
            let pass1 = weight_grad_pass1(wide, &g).0;
            let expected = if rows {
                Kernel::Conv2dWeightGradPacked8WideFromNchw
            } else {
                Kernel::Conv2dWeightGradPacked8Wide
            };
            assert_eq!(pass1, expected, "{params:?} {input:?}");
        }
    }

    /// The kernels of the tiled forward and dx plans of a layer given in NCHW terms.
    fn tiled_kernels(
        layout: crate::Layout,
        input: [usize; 4],
        weight: [usize; 4],
        params: crate::Conv2dParams,
    ) -> (Vec<Kernel>, Vec<Kernel>) {
        let params = params.with_layout(layout);
        let g = params
            .geometry(
                "t",
                layout.activation_shape(input),
                layout.weight_shape(weight),
                None,
            )
            .unwrap();
        let tiled = Tiling::Workgroup(TILED_CHANNELS);
        let kernels = |plan: Plan| plan.steps.iter().map(|s| s.kernel).collect::<Vec<_>>();
        (
            kernels(forward("t", tiled, &g, true, Activation::None, 65535).unwrap()),
            kernels(input_grad("t", tiled, &g, false, 65535).unwrap()),
        )
    }

    /// 1x1 layers whose windows lie inside the input run as plain matrix products on the
    /// activations where they lie: only the weights are packed, in either layout, strided or
    /// not, grouped or not; a padded 1x1 layer and a 3x3 one still pack their source.
    #[test]
    fn tiled_1x1_layers_pack_no_activations() {
        use crate::{Conv2dParams, Layout, Padding};
        use Kernel::{
            Conv2dGemmTiled, Conv2dGemmTiledInPlace, FillZeroVec4, PackSourceVec4, PackWeightVec4,
        };
        let plain = Conv2dParams::default();
        let cases = [
            // NHWC, one group of whole vec4s of channels: the input is its own packed form.
            (
                Layout::Nhwc,
                [2, 64, 14, 14],
                [256, 64, 1, 1],
                plain,
                Conv2dGemmTiled,
            ),
            (
                Layout::Nhwc,
                [2, 64, 14, 14],
                [128, 64, 1, 1],
                plain.with_stride(2),
                Conv2dGemmTiled,
            ),
            // NCHW, channels that are not whole vec4s, groups: read a scalar per term.
            (
                Layout::Nchw,
                [2, 64, 14, 14],
                [256, 64, 1, 1],
                plain,
                Conv2dGemmTiledInPlace,
            ),
            (
                Layout::Nchw,
                [2, 64, 15, 15],
                [128, 64, 1, 1],
                plain.with_stride(2),
                Conv2dGemmTiledInPlace,
            ),
            (
                Layout::Nhwc,
                [1, 18, 5, 7],
                [12, 6, 1, 1],
                plain.with_groups(3),
                Conv2dGemmTiledInPlace,
            ),
            (
                Layout::Nhwc,
                [1, 17, 5, 7],
                [12, 17, 1, 1],
                plain,
                Conv2dGemmTiledInPlace,
            ),
        ];
        for (layout, input, weight, params, gemm) in cases {
            let (forward, dx) = tiled_kernels(layout, input, weight, params);
            let what = format!("{layout:?} {input:?} {weight:?} {params:?}");
            assert_eq!(forward, [PackWeightVec4, gemm], "forward {what}");
            // dx gathers from grad_output, whose channels may make the other in-place kind; a
            // strided one zeroes the phases without taps first.
            let reads_in_place = [
                PackWeightVec4,
                FillZeroVec4,
                Conv2dGemmTiled,
                Conv2dGemmTiledInPlace,
            ];
            assert!(
                dx.iter().all(|k| reads_in_place.contains(k)),
                "dx {what}: {dx:?}"
            );
        }
        let padded = plain.with_padding(Padding::uniform(1));
        for (weight, params) in [([8, 8, 1, 1], padded), ([8, 8, 3, 3], plain)] {
            let (forward, _) = tiled_kernels(Layout::Nhwc, [1, 8, 6, 6], weight, params);
            assert_eq!(
                forward,
                [PackSourceVec4, PackWeightVec4, Conv2dGemmTiled],
                "{weight:?} {params:?}"
            );
        }
    }

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
    }
}
