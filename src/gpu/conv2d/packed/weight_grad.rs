//! The packed weight gradient: how it reads grad_output and the input (packed rows, or copies
//! as they lie), and the uniforms and kernel of its pass 1, a split-K GEMM over output pixels.

use super::{pack_grid, source_vec4s, subsample_axis, Packing, Tiling};
use crate::error::Result;
use crate::gpu::conv2d::gemm::{self, GemmConvUniforms, SubgroupTile};
use crate::gpu::conv2d::reduce::BLOCK_TERMS;
use crate::gpu::kernels::Kernel;
use crate::gpu::plan::{Operand, Plan, Step};
use crate::params::{Conv2dGeometry, Layout};

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
    let view = gemm::forward_view(g, SubgroupTile::PACKED_PROVISIONAL);
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
    let kernel = tiling.kernels().1;
    let kernel = match weight_grad_input(tiling, g) {
        WeightGradInput::PackedRows => kernel,
        WeightGradInput::Copied => kernel.sibling("conv2d_weight_grad_packed_wide_from_nchw"),
        WeightGradInput::CopiedStride2 => {
            kernel.sibling("conv2d_weight_grad_packed_wide_from_nchw_stride2")
        }
        WeightGradInput::Planes => {
            kernel.sibling("conv2d_weight_grad_packed_wide_from_nchw_planes")
        }
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
            SubgroupTile::PACKED_PROVISIONAL,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::conv2d::packed::TILED_CHANNELS;
    use crate::gpu::plan::PlannedCopy;

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
            let u = subsample_rows(&g, gemm::forward_view(&g, SubgroupTile::PACKED_PROVISIONAL));
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
            let u = gemm::forward_view(&g, SubgroupTile::PACKED_PROVISIONAL);
            assert_eq!(subsample_rows(&g, u), u);
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
}
