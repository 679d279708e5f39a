//! Uniforms and grids of the implicit-GEMM conv2d kernels: forward, input gradient per stride
//! phase, and the weight gradient's split-K pass, all described as one gather convolution.

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::conv2d::forward::weight_view;
use crate::gpu::conv2d::uniforms::epilogue_overrides;
use crate::gpu::plan::StepUniforms;
use crate::gpu::runtime::dispatch::DispatchGrid;
use crate::gpu::runtime::pipelines::Overrides;
use crate::gpu::runtime::uniforms::uniform_struct;
use crate::params::Conv2dGeometry;

uniform_struct! {
    /// Mirrors `GemmConvUniforms` in `shaders/conv2d/gemm.wgsl`, the piece every
    /// GEMM and packing module is composed with: the gather-convolution description shared by the
    /// forward, input-gradient and weight-gradient GEMM kernels and their repacking kernels
    /// (see `gpu::conv2d::gemm` and `gpu::conv2d::packed`). Signed fields carry i32 bits.
    pub struct GemmConvUniforms {
        pixels, grid_h, grid_w, groups,
        channels_per_group, reduce_per_group, channel_tiles_per_group, column_blocks,
        taps_h, taps_w, src_h, src_w,
        src_step_h, src_step_w, src_off_h, src_off_w,
        tap_step_h, tap_step_w, dst_step_h, dst_step_w,
        dst_off_h, dst_off_w, has_bias, activation,
        activation_slope, invocations, rows_per_block, blocks,
        reduce_len, batch, packed_h, packed_w,
        src_stride_n, src_stride_c, src_stride_h, src_stride_w,
        dst_stride_n, dst_stride_c, dst_stride_h, dst_stride_w,
        w_base, w_stride_m, w_stride_g, w_stride_r,
        w_tap_h, w_tap_w, pack_off_h, pack_off_w,
        reduce4, m_pad, packed_w_base, k_vec,
        ow4, tile_shift, a_row_stride, a_image_jump,
    }
}

impl StepUniforms for GemmConvUniforms {
    fn overrides(&self) -> Overrides {
        epilogue_overrides(self.has_bias, self.activation)
    }
}

/// The tile one subgroup of the subgroup kernels computes: one destination pixel (GEMM column)
/// per lane, by `channels` channels (GEMM rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubgroupTile {
    /// Destination pixels (or weight-gradient columns): the lanes.
    pub columns: usize,
    /// Channels: `CHANNELS_PER_LANE` (`shaders/conv2d/subgroup_lanes*.wgsl`) per lane.
    pub channels: usize,
}

impl SubgroupTile {
    /// The tile the packed plans first lay out their GEMM views with, at any width: the
    /// packed planners (`packed/gather.rs`, `packed/weight_grad.rs`) then set every field that
    /// depends on the tile (channel tiles, column blocks, the grid) from the `Tiling` each
    /// dispatch runs.
    pub const PACKED_PROVISIONAL: Self = Self {
        columns: 8,
        channels: 16,
    };

    /// The tile of `lanes`-wide subgroups: four channels per lane at 4 lanes, two at 8 and 16,
    /// one beyond. At 16 lanes (lavapipe at 512 bits) two channels per lane ran the suite 1.3x
    /// faster than one, and four no faster than two (docs/benchmarks.md).
    pub fn for_lanes(lanes: usize) -> Self {
        Self {
            columns: lanes,
            channels: match lanes {
                4 | 8 => 16,
                16 => 32,
                wider => wider,
            },
        }
    }
}

/// One dispatch of a GEMM kernel: its uniforms and grid.
#[derive(Clone, Copy, Debug)]
pub struct GemmDispatch {
    pub uniforms: GemmConvUniforms,
    pub grid: DispatchGrid,
}

/// i32 bits in a u32 field. Geometry validation keeps every padded extent below i32::MAX.
pub(crate) fn signed(v: i64) -> u32 {
    (v as i32) as u32
}

fn grid(
    op: &'static str,
    tile: SubgroupTile,
    subgroups: usize,
    max_per_dimension: u32,
) -> Result<DispatchGrid> {
    DispatchGrid::for_invocations(
        op,
        (subgroups as u64) * tile.columns as u64,
        max_per_dimension,
    )
}

/// The fields the forward pass and the weight gradient share: the forward convolution read
/// as a gather, with output pixels as destination pixels, output channels as channels and input
/// channels by taps as K.
pub(crate) fn forward_view(g: &Conv2dGeometry, tile: SubgroupTile) -> GemmConvUniforms {
    let u = |v: usize| v as u32;
    let src = g.layout.activation_strides(g.input_sizes());
    let dst = g.layout.activation_strides(g.output_sizes());
    let w = weight_view(g);
    GemmConvUniforms {
        pixels: u(g.batch * g.h.output * g.w.output),
        grid_h: u(g.h.output),
        grid_w: u(g.w.output),
        groups: u(g.groups),
        channels_per_group: u(g.out_channels_per_group()),
        reduce_per_group: u(g.in_channels_per_group()),
        channel_tiles_per_group: u(g.out_channels_per_group().div_ceil(tile.channels)),
        taps_h: u(g.h.kernel),
        taps_w: u(g.w.kernel),
        src_h: u(g.h.input),
        src_w: u(g.w.input),
        src_step_h: u(g.h.stride),
        src_step_w: u(g.w.stride),
        src_off_h: signed(-(g.h.pad_before as i64)),
        src_off_w: signed(-(g.w.pad_before as i64)),
        tap_step_h: u(g.h.dilation),
        tap_step_w: u(g.w.dilation),
        dst_step_h: 1,
        dst_step_w: 1,
        src_stride_n: u(src[0]),
        src_stride_c: u(src[1]),
        src_stride_h: u(src[2]),
        src_stride_w: u(src[3]),
        dst_stride_n: u(dst[0]),
        dst_stride_c: u(dst[1]),
        dst_stride_h: u(dst[2]),
        dst_stride_w: u(dst[3]),
        w_base: w.base,
        w_stride_m: w.stride_o,
        w_stride_g: u(g.out_channels_per_group()).wrapping_mul(w.stride_o),
        w_stride_r: w.stride_i,
        w_tap_h: w.stride_h,
        w_tap_w: w.stride_w,
        ..Default::default()
    }
}

/// The forward pass.
pub fn forward(
    op: &'static str,
    g: &Conv2dGeometry,
    tile: SubgroupTile,
    has_bias: bool,
    activation: Activation,
    max_per_dimension: u32,
) -> Result<GemmDispatch> {
    let view = forward_view(g, tile);
    let column_blocks = (view.pixels as usize).div_ceil(tile.columns);
    let subgroups = column_blocks * view.channel_tiles_per_group as usize * g.groups;
    let grid = grid(op, tile, subgroups, max_per_dimension)?;
    let (activation, activation_slope) = activation.code();
    Ok(GemmDispatch {
        uniforms: GemmConvUniforms {
            column_blocks: column_blocks as u32,
            has_bias: u32::from(has_bias),
            activation,
            activation_slope,
            invocations: grid.invocations,
            ..view
        },
        grid,
    })
}

/// One axis of one stride phase of the input gradient: input positions `phase + stride * a`
/// gather from grad_output rows `a + src_off + t * tap_step` through weight taps
/// `first_tap + t * tap_stride`, `t < taps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhaseAxis {
    /// Input positions of this phase.
    pub extent: usize,
    pub taps: usize,
    pub first_tap: usize,
    pub tap_stride: usize,
    pub src_off: i64,
    pub tap_step: i64,
}

/// The phase `phase` (< stride) of one axis: the taps `k` with `k * d = phase + pad (mod s)`.
pub fn phase_axis(
    input: usize,
    stride: usize,
    dilation: usize,
    pad: usize,
    kernel: usize,
    phase: usize,
) -> PhaseAxis {
    let extent = if phase < input {
        (input - phase).div_ceil(stride)
    } else {
        0
    };
    let gcd = gcd(stride, dilation);
    let tap_stride = stride / gcd;
    let t = phase + pad;
    let first = if t.is_multiple_of(gcd) {
        Some(((t / gcd) % tap_stride) * modular_inverse(dilation / gcd, tap_stride) % tap_stride)
    } else {
        None
    };
    match first {
        Some(k0) if k0 < kernel => PhaseAxis {
            extent,
            taps: (kernel - k0).div_ceil(tap_stride),
            first_tap: k0,
            tap_stride,
            // (t - k0 * d) is a multiple of the stride by the choice of k0.
            src_off: (t as i64 - (k0 * dilation) as i64) / stride as i64,
            tap_step: -((dilation / gcd) as i64),
        },
        _ => PhaseAxis {
            extent,
            taps: 0,
            first_tap: 0,
            tap_stride,
            src_off: 0,
            tap_step: 0,
        },
    }
}

pub(crate) fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `x` with `a * x = 1 (mod m)` for coprime `a` and `m` (0 when `m == 1`).
pub(crate) fn modular_inverse(a: usize, m: usize) -> usize {
    if m == 1 {
        return 0;
    }
    let (mut old_r, mut r) = (a as i64 % m as i64, m as i64);
    let (mut old_s, mut s) = (1i64, 0i64);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    old_s.rem_euclid(m as i64) as usize
}

/// The input gradient (and the transposed convolution): one dispatch per stride phase that
/// has input positions. Destination pixels are input pixels of that phase, channels input
/// channels, K output channels by that phase's taps; a phase without taps writes zeros (or
/// the bias).
pub fn input_grad(
    op: &'static str,
    g: &Conv2dGeometry,
    tile: SubgroupTile,
    has_bias: bool,
    max_per_dimension: u32,
) -> Result<Vec<GemmDispatch>> {
    let u = |v: usize| v as u32;
    let src = g.layout.activation_strides(g.output_sizes());
    let dst = g.layout.activation_strides(g.input_sizes());
    let w = weight_view(g);
    let tiles = g.in_channels_per_group().div_ceil(tile.channels);
    let mut dispatches = Vec::new();
    for py in 0..g.h.stride.min(g.h.input) {
        let ay = phase_axis(
            g.h.input,
            g.h.stride,
            g.h.dilation,
            g.h.pad_before,
            g.h.kernel,
            py,
        );
        for px in 0..g.w.stride.min(g.w.input) {
            let ax = phase_axis(
                g.w.input,
                g.w.stride,
                g.w.dilation,
                g.w.pad_before,
                g.w.kernel,
                px,
            );
            let pixels = g.batch * ay.extent * ax.extent;
            if pixels == 0 {
                continue;
            }
            let column_blocks = pixels.div_ceil(tile.columns);
            let grid = grid(
                op,
                tile,
                column_blocks * tiles * g.groups,
                max_per_dimension,
            )?;
            let w_base = w
                .base
                .wrapping_add(u(ay.first_tap).wrapping_mul(w.stride_h))
                .wrapping_add(u(ax.first_tap).wrapping_mul(w.stride_w));
            dispatches.push(GemmDispatch {
                uniforms: GemmConvUniforms {
                    pixels: u(pixels),
                    grid_h: u(ay.extent),
                    grid_w: u(ax.extent),
                    groups: u(g.groups),
                    channels_per_group: u(g.in_channels_per_group()),
                    reduce_per_group: u(g.out_channels_per_group()),
                    channel_tiles_per_group: u(tiles),
                    column_blocks: u(column_blocks),
                    taps_h: u(ay.taps),
                    taps_w: u(ax.taps),
                    src_h: u(g.h.output),
                    src_w: u(g.w.output),
                    src_step_h: 1,
                    src_step_w: 1,
                    src_off_h: signed(ay.src_off),
                    src_off_w: signed(ax.src_off),
                    tap_step_h: signed(ay.tap_step),
                    tap_step_w: signed(ax.tap_step),
                    dst_step_h: u(g.h.stride),
                    dst_step_w: u(g.w.stride),
                    dst_off_h: u(py),
                    dst_off_w: u(px),
                    has_bias: u32::from(has_bias),
                    invocations: grid.invocations,
                    src_stride_n: u(src[0]),
                    src_stride_c: u(src[1]),
                    src_stride_h: u(src[2]),
                    src_stride_w: u(src[3]),
                    dst_stride_n: u(dst[0]),
                    dst_stride_c: u(dst[1]),
                    dst_stride_h: u(dst[2]),
                    dst_stride_w: u(dst[3]),
                    w_base,
                    w_stride_m: w.stride_i,
                    w_stride_g: u(g.out_channels_per_group()).wrapping_mul(w.stride_o),
                    w_stride_r: w.stride_o,
                    w_tap_h: u(ay.tap_stride).wrapping_mul(w.stride_h),
                    w_tap_w: u(ax.tap_stride).wrapping_mul(w.stride_w),
                    ..Default::default()
                },
                grid,
            });
        }
    }
    Ok(dispatches)
}

/// Subgroups of pass 1 of the weight gradient for one block of rows.
pub fn weight_grad_subgroups_per_block(g: &Conv2dGeometry, tile: SubgroupTile) -> usize {
    let columns = g.in_channels_per_group() * g.h.kernel * g.w.kernel;
    g.groups * g.out_channels_per_group().div_ceil(tile.channels) * columns.div_ceil(tile.columns)
}

/// Uniforms of pass 1 of the weight gradient: partial sums of `blocks` blocks of
/// `rows_per_block` rows (n, oy) each, written as `[blocks, weight elements]` in the weight's
/// layout, over `invocations` invocations (the grid the reduction plan made).
pub fn weight_grad_partial(
    g: &Conv2dGeometry,
    tile: SubgroupTile,
    rows_per_block: usize,
    blocks: usize,
    invocations: u32,
) -> GemmConvUniforms {
    let columns = g.in_channels_per_group() * g.h.kernel * g.w.kernel;
    GemmConvUniforms {
        column_blocks: columns.div_ceil(tile.columns) as u32,
        invocations,
        rows_per_block: rows_per_block as u32,
        blocks: blocks as u32,
        reduce_len: (g.out_channels * columns) as u32,
        ..forward_view(g, tile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modular_inverse_inverts() {
        for m in 1..40usize {
            for a in 1..40usize {
                if gcd(a, m) == 1 {
                    let x = modular_inverse(a, m);
                    assert!(x < m.max(1));
                    assert_eq!((a * x) % m, 1 % m, "a {a} m {m}");
                }
            }
        }
    }

    /// Every (input position, tap) pair that meets a grad_output position is visited exactly
    /// once by the phase decomposition, at the right grad_output position.
    #[test]
    fn phases_visit_exactly_the_contributing_taps() {
        for stride in 1..5 {
            for dilation in 1..4 {
                for pad in 0..4 {
                    for kernel in 1..5 {
                        let input = 11;
                        let span = dilation * (kernel - 1) + 1;
                        if input + 2 * pad < span {
                            continue;
                        }
                        let output = (input + 2 * pad - span) / stride + 1;
                        let mut expected = Vec::new();
                        for i in 0..input {
                            for k in 0..kernel {
                                let t = i + pad;
                                if t >= k * dilation && (t - k * dilation) % stride == 0 {
                                    let o = (t - k * dilation) / stride;
                                    if o < output {
                                        expected.push((i, k, o as i64));
                                    }
                                }
                            }
                        }
                        let mut got = Vec::new();
                        for phase in 0..stride.min(input) {
                            let a = phase_axis(input, stride, dilation, pad, kernel, phase);
                            for pos in 0..a.extent {
                                for t in 0..a.taps {
                                    let o = pos as i64 + a.src_off + t as i64 * a.tap_step;
                                    if o >= 0 && o < output as i64 {
                                        got.push((
                                            phase + stride * pos,
                                            a.first_tap + t * a.tap_stride,
                                            o,
                                        ));
                                    }
                                }
                            }
                        }
                        expected.sort();
                        got.sort();
                        assert_eq!(got, expected, "s {stride} d {dilation} p {pad} k {kernel}");
                    }
                }
            }
        }
    }
}
