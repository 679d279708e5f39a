//! The packed gathers: the forward pass and the input gradient, repacking the source and the
//! weights (or copying a source that is its own packed form), then the GEMM dispatches.

use super::{grid, pack_grid, source_vec4s, subsample_axis, Packing, Tiling};
use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::conv2d::gemm::{self, signed, GemmConvUniforms, GemmDispatch, SubgroupTile};
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::params::Conv2dGeometry;

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
        let (kernel, grid) =
            match weights_3x3_oihw(u).filter(|_| kernel == Kernel::PackWeightTexture) {
                // One invocation per nine texels, or per 36.
                Some(Weights3x3::Forward) => (
                    Kernel::PackWeight3x3Texture,
                    grid(op, vec4s / 9, max_per_dimension)?,
                ),
                Some(Weights3x3::Transposed) => (
                    Kernel::PackWeight3x3TransposedTexture,
                    grid(op, vec4s / 36, max_per_dimension)?,
                ),
                None => (kernel, pack_grid(op, tiling, vec4s, max_per_dimension)?),
            };
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

/// How a GEMM views 3x3 weights that lie as OIHW lays them out, where the 3x3 weight packers
/// can read them a vec4 at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Weights3x3 {
    /// Reduction channels are the input channels (the forward pass): for each of its channels,
    /// four reduction channels' nine taps are nine vec4s.
    Forward,
    /// Channels are the input channels (the input gradient): for each reduction channel, four
    /// channels' nine taps are nine vec4s.
    Transposed,
}

/// Which of the 3x3 weight packers can read the weights gather `u` views: nine taps in
/// memory order or reversed (a flipped window's view, in either pass), vec4-aligned runs of
/// four channels on the side that lies contiguous, and whole vec4s of channels on both sides
/// for the transposed view (whose invocations each write four channels).
fn weights_3x3_oihw(u: &GemmConvUniforms) -> Option<Weights3x3> {
    let taps_in_order = u.w_tap_w == 1 && u.w_tap_h == 3;
    let taps_reversed = u.w_tap_w == 1u32.wrapping_neg() && u.w_tap_h == 3u32.wrapping_neg();
    let aligned = |strides: &[u32]| {
        u.reduce_per_group.is_multiple_of(4)
            && [u.w_base]
                .iter()
                .chain(strides)
                .all(|v| v.is_multiple_of(4))
    };
    if u.taps_h != 3 || u.taps_w != 3 || !(taps_in_order || taps_reversed) {
        None
    } else if u.w_stride_r == 9 && aligned(&[u.w_stride_m, u.w_stride_g]) {
        Some(Weights3x3::Forward)
    } else if u.w_stride_m == 9
        && u.channels_per_group.is_multiple_of(4)
        && aligned(&[u.w_stride_r, u.w_stride_g])
    {
        Some(Weights3x3::Transposed)
    } else {
        None
    }
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
    /// Copied the same way and read at stride 2 by `conv2d_gemm_packed_wide_from_nchw_stride2`:
    /// a 1x1 window at stride 2 (see [`whole_nchw_stride2`]).
    CopiedStride2,
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
        Tiling::SubgroupWide(_) if gemms.iter().all(whole_nchw_stride2) => {
            SourceRead::CopiedStride2
        }
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
    u.taps_h * u.taps_w == 0
        || (u.src_step_h == 1
            && u.src_step_w == 1
            && u.grid_h == u.src_h
            && u.grid_w == u.src_w
            && nchw_copy_in_fours(u))
}

/// What both readers of an NCHW source's copy need: no offset into the source, NCHW strides
/// over whole planes of a multiple of 4 pixels, images starting on a texel, and channels per
/// group in fours (a texel holds four pixels of one channel).
fn nchw_copy_in_fours(u: &GemmConvUniforms) -> bool {
    let plane = u.src_h * u.src_w;
    u.src_off_h == 0
        && u.src_off_w == 0
        && u.src_stride_w == 1
        && u.src_stride_h == u.src_w
        && u.src_stride_c == plane
        && plane.is_multiple_of(4)
        && u.src_stride_n.is_multiple_of(4)
        && u.reduce_per_group.is_multiple_of(4)
}

/// Whether gather `u` is a 1x1 window at stride 2 both ways over all of an NCHW source whose
/// planes are twice the destination's each way, with rows of the destination in fours and
/// channels per group in fours, into a destination of pixel quads: what
/// `conv2d_gemm_packed_wide_from_nchw_stride2` reads from the source's copy, two texels per four
/// pixels of a channel, and writes.
fn whole_nchw_stride2(u: &GemmConvUniforms) -> bool {
    pixel_quads_destination(u)
        && u.taps_h * u.taps_w == 1
        && u.src_step_h == 2
        && u.src_step_w == 2
        && u.src_h == 2 * u.grid_h
        && u.src_w == 2 * u.grid_w
        && u.grid_w.is_multiple_of(4)
        && nchw_copy_in_fours(u)
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
    match kernel.entry_point() {
        _ if u.taps_h * u.taps_w > 0 => kernel,
        "conv2d_gemm_packed_wide_from_nchw" => kernel.sibling("conv2d_gemm_packed_wide"),
        _ => kernel,
    }
}

/// The gather kernel for dispatch `u`: `kernel`, or where that runs few tiles and `u` allows
/// it (unit steps along x, taps one pixel apart, rows of a multiple of 8 pixels) the one that
/// slides each lane's 8 neighbouring pixels along their row (`conv2d_gemm_packed_few_rows`).
fn few_rows(kernel: Kernel, u: &GemmConvUniforms) -> Kernel {
    let slides = u.src_step_w == 1
        && (u.taps_w <= 1 || (u.tap_step_w as i32).abs() == 1)
        && u.grid_w.is_multiple_of(8);
    match kernel.entry_point() {
        "conv2d_gemm_packed_few" if slides => kernel.sibling("conv2d_gemm_packed_few_rows"),
        _ => kernel,
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
    let pixel_quads = pixel_quads_destination(u);
    let channel_quads = u.dst_stride_c == 1
        && u.channels_per_group.is_multiple_of(4)
        && u.dst_stride_w.is_multiple_of(4)
        && u.dst_stride_h.is_multiple_of(4)
        && u.dst_stride_n.is_multiple_of(4);
    match kernel.entry_point() {
        "conv2d_gemm_packed_wide" if pixel_quads => {
            kernel.sibling("conv2d_gemm_packed_wide_pixel_quads")
        }
        "conv2d_gemm_packed_wide" if channel_quads => {
            kernel.sibling("conv2d_gemm_packed_wide_channel_quads")
        }
        "conv2d_gemm_packed_wide_from_nchw" if pixel_quads => {
            kernel.sibling("conv2d_gemm_packed_wide_from_nchw_pixel_quads")
        }
        _ => kernel,
    }
}

/// Whether every four destination pixels of `u` from a multiple of 4 are neighbouring,
/// vec4-aligned values of each channel (see [`vec4_stores`]).
fn pixel_quads_destination(u: &GemmConvUniforms) -> bool {
    u.dst_step_h == 1
        && u.dst_step_w == 1
        && u.dst_off_h == 0
        && u.dst_off_w == 0
        && u.dst_stride_w == 1
        && u.dst_stride_h == u.grid_w
        && (u.grid_h * u.grid_w).is_multiple_of(4)
        && u.dst_stride_c.is_multiple_of(4)
        && u.dst_stride_n.is_multiple_of(4)
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
        SubgroupTile::PACKED_PROVISIONAL,
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
    let gemms = gemm::input_grad(
        op,
        g,
        SubgroupTile::PACKED_PROVISIONAL,
        has_bias,
        max_per_dimension,
    )?;
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
        SourceRead::Copied | SourceRead::CopiedStride2 => {
            let entry_point = if read == SourceRead::Copied {
                "conv2d_gemm_packed_wide_from_nchw"
            } else {
                "conv2d_gemm_packed_wide_from_nchw_stride2"
            };
            let kernel = tiling.kernels().0.sibling(entry_point);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::conv2d::packed::TILED_CHANNELS;
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
        // A 1x1 layer at stride 2 whose output rows come in fours: read from the copy at
        // stride 2, no packing pass.
        let (copies, kernels) = plan_of(packed, crate::Layout::Nchw, [2, 8, 6, 8], 1, 2);
        assert_eq!(copies.len(), 1);
        assert_eq!(
            kernels,
            [
                Kernel::PackWeightTexture,
                Kernel::Conv2dGemmPacked16WideFromNchwStride2
            ]
        );
        // Rows of 7, NHWC, a strided 1x1 layer whose output rows are not in fours or whose
        // input is not twice its output (read subsampled), or a buffer operand: packed by the
        // kernel that loads from the source buffer.
        for (tiling, layout, input, k, stride) in [
            (packed, crate::Layout::Nchw, [2, 5, 6, 7], 3, 1),
            (packed, crate::Layout::Nhwc, [2, 8, 6, 8], 3, 1),
            (packed, crate::Layout::Nchw, [2, 8, 6, 12], 1, 2),
            (packed, crate::Layout::Nchw, [2, 8, 6, 9], 1, 2),
            (packed, crate::Layout::Nchw, [2, 8, 7, 8], 1, 2),
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
        // A 1x1 layer at stride 2 with padding, and one at stride 2 down but 1 across: packed
        // first, not read at stride 2 from the copy.
        let s2 = crate::Conv2dParams::default().with_stride(2);
        for params in [
            s2.with_padding(crate::Padding::uniform(1)),
            s2.with_stride_hw(2, 1),
        ] {
            let (_, kernels) = gather_plan_of(packed, params, [2, 8, 6, 8], [8, 8, 1, 1], false);
            assert!(
                !kernels.contains(&Kernel::Conv2dGemmPacked16WideFromNchwStride2),
                "{params:?}: {kernels:?}"
            );
            assert!(
                kernels[0].entry_point().starts_with("pack_source"),
                "{params:?}"
            );
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

    /// 3x3 OIHW weights with whole vec4s of reduction channels (and, for the input gradient,
    /// of channels) are packed a vec4 load per texel, flipped windows and groups included;
    /// other weights by the general packer.
    #[test]
    fn packed_gathers_read_3x3_oihw_weights_a_vec4_at_a_time() {
        use crate::{Conv2dParams, Layout, Padding};
        let packer = |p: Conv2dParams, input: [usize; 4], weight: [usize; 4], dx: bool| {
            let (_, kernels) = gather_plan_of(Tiling::Subgroup(8), p, input, weight, dx);
            let packers: Vec<_> = kernels
                .into_iter()
                .filter(|k| k.entry_point().starts_with("pack_weight"))
                .collect();
            packers
        };
        let same = Conv2dParams::default().with_padding(Padding::uniform(1));
        let forward = Kernel::PackWeight3x3Texture;
        let transposed = Kernel::PackWeight3x3TransposedTexture;
        let general = Kernel::PackWeightTexture;
        for p in [same, same.with_flip(true), same.with_dilation(2)] {
            assert_eq!(
                packer(p, [2, 8, 6, 6], [20, 8, 3, 3], false),
                [forward],
                "{p:?}"
            );
            assert_eq!(
                packer(p, [2, 8, 6, 6], [20, 8, 3, 3], true),
                [transposed],
                "{p:?}"
            );
        }
        let grouped = same.with_groups(2);
        assert_eq!(
            packer(grouped, [1, 16, 5, 5], [24, 8, 3, 3], false),
            [forward]
        );
        assert_eq!(
            packer(grouped, [1, 16, 5, 5], [24, 8, 3, 3], true),
            [transposed]
        );
        // Input channels off the vec4s; output channels off them (the input gradient's
        // reduction); NHWC's HWIO weights; a 3x1 window; a stride-2 input gradient, whose phases
        // have fewer taps.
        assert_eq!(packer(same, [1, 6, 5, 5], [8, 6, 3, 3], false), [general]);
        assert_eq!(packer(same, [1, 6, 5, 5], [8, 6, 3, 3], true), [general]);
        assert_eq!(packer(same, [1, 8, 5, 5], [10, 8, 3, 3], false), [forward]);
        assert_eq!(packer(same, [1, 8, 5, 5], [10, 8, 3, 3], true), [general]);
        let nhwc = same.with_layout(Layout::Nhwc);
        assert_eq!(packer(nhwc, [1, 8, 5, 5], [8, 8, 3, 3], false), [general]);
        assert_eq!(packer(same, [1, 8, 5, 5], [8, 8, 3, 1], false), [general]);
        assert_eq!(
            packer(same.with_stride(2), [1, 8, 6, 6], [8, 8, 3, 3], true),
            [general; 4]
        );
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
}
