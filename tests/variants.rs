//! Every conv2d kernel variant, forced in turn, against the CPU reference on the random
//! parameter sweeps (forward with bias and activation, dx, dw, db, conv_transpose2d, both
//! layouts, flip), within the same error bounds; and the planner's choices and refusals.

mod common;

use common::{random_case, Flavour, Rng};
use wgconv::gpu::conv2d::{self as planner, ConvPass, ConvVariant};
use wgconv::sweep::transposed_params;
use wgconv::{
    compare, conv2d_backward, cpu, Activation, Conv2dParams, Error, ErrorBound, Gpu, GpuTensor,
    GradSelection, Layout, Padding,
};

/// A device of its own with `variant` forced (the shared one must keep the planner's choice).
/// `None`, said out loud, only where the adapter's features and subgroup sizes say it cannot
/// run the variant; a refusal anywhere else fails the test.
fn gpu_forcing(variant: ConvVariant) -> Option<Gpu> {
    common::gpu()?;
    let gpu = Gpu::new().expect("a second device on the adapter");
    if !common::check_availability(&gpu, variant) {
        return None;
    }
    gpu.force_conv_variant(Some(variant));
    Some(gpu)
}

fn upload(gpu: &Gpu, a: &ndarray::Array4<f32>, layout: Layout) -> GpuTensor {
    GpuTensor::upload_with_layout(gpu, a.view(), layout).unwrap()
}

/// Leaves a buffer of NaN of `shape` in `gpu`'s pool, where the next output of that size will
/// come from: a value no dispatch writes shows through as NaN.
fn leave_nan_in_pool(gpu: &Gpu, shape: [usize; 4], layout: Layout) {
    drop(upload(
        gpu,
        &ndarray::Array4::from_elem(shape, f32::NAN),
        layout,
    ));
}

fn sweep(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let gpu = &gpu;
    let mut rng = Rng::new(seed);
    let mut checked = 0;
    for flavour in Flavour::ALL {
        for i in 0..common::cases_per_flavour(12) {
            let case = random_case(&mut rng, flavour);
            let layout = if i % 2 == 1 {
                Layout::Nhwc
            } else {
                Layout::Nchw
            };
            let p = case.params.with_layout(layout).with_flip(i % 3 == 2);
            let input = layout.activation_shape(case.input);
            let weight = layout.weight_shape(case.weight);
            let g = p.geometry("t", input, weight, None).unwrap();
            let x = rng.array4(input);
            let w = rng.array4(weight);
            let b = rng.array1(g.out_channels);
            let what = |pass: &str| {
                format!(
                    "{} {flavour:?} case {i} {pass}: {p:?} input {input:?} weight {weight:?}",
                    variant.name()
                )
            };

            let activation = [Activation::None, Activation::Relu, Activation::Tanh][i % 3];
            common::assert_forward_matches_reference(gpu, &x, &w, &b, &p, activation, &what);

            let dy = rng.array4(g.output_shape());
            common::assert_backward_matches_reference(gpu, &x, &w, &dy, &p, &what);

            let tp = transposed_params(&p);
            if tp
                .geometry("t", g.output_shape(), weight, Some(g.in_channels))
                .is_ok()
            {
                let tb = rng.array1(g.in_channels);
                common::assert_transpose_matches_reference(gpu, &dy, &w, &tb, &tp, &what);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, Flavour::ALL.len() * common::cases_per_flavour(12));
}

#[test]
fn direct_variant_matches_reference_on_random_parameter_sets() {
    sweep(ConvVariant::Direct, 0x7a71_0001);
}

#[test]
fn subgroup_variant_matches_reference_on_random_parameter_sets() {
    sweep(ConvVariant::Subgroup, 0x7a71_0002);
}

#[test]
fn packed4_variant_matches_reference_on_random_parameter_sets() {
    sweep(ConvVariant::Packed4, 0x7a71_0040);
}

#[test]
fn packed8_variant_matches_reference_on_random_parameter_sets() {
    sweep(ConvVariant::Packed8, 0x7a71_0004);
}

#[test]
fn packed16_variant_matches_reference_on_random_parameter_sets() {
    sweep(ConvVariant::Packed16, 0x7a71_000c);
}

/// Forced on the general sweep the depthwise variant mostly falls back to the direct kernels;
/// tests/depthwise.rs sweeps the layers its own kernel serves.
#[test]
fn depthwise_variant_matches_reference_on_random_parameter_sets() {
    sweep(ConvVariant::Depthwise, 0x7a71_0005);
}

#[test]
fn tiled_variant_matches_reference_on_random_parameter_sets() {
    sweep(ConvVariant::Tiled, 0x7a71_0007);
}

#[test]
fn tiled_variant_handles_tile_tails_and_empty_phases() {
    tile_tails(ConvVariant::Tiled, 0x7a71_0008);
}

#[test]
fn subgroup_variant_handles_tile_tails_and_empty_phases() {
    tile_tails(ConvVariant::Subgroup, 0x7a71_0003);
}

#[test]
fn packed4_variant_handles_tile_tails_and_empty_phases() {
    tile_tails(ConvVariant::Packed4, 0x7a71_0041);
}

#[test]
fn packed8_variant_handles_tile_tails_and_empty_phases() {
    tile_tails(ConvVariant::Packed8, 0x7a71_0005);
}

#[test]
fn packed16_variant_handles_tile_tails_and_empty_phases() {
    tile_tails(ConvVariant::Packed16, 0x7a71_000d);
}

#[test]
fn packed4_variant_zeroes_phases_without_taps() {
    phases_without_taps(ConvVariant::Packed4, 0x7a71_0042);
}

#[test]
fn packed8_variant_zeroes_phases_without_taps() {
    phases_without_taps(ConvVariant::Packed8, 0x7a71_000e);
}

#[test]
fn packed16_variant_zeroes_phases_without_taps() {
    phases_without_taps(ConvVariant::Packed16, 0x7a71_000f);
}

#[test]
fn tiled_variant_zeroes_phases_without_taps() {
    phases_without_taps(ConvVariant::Tiled, 0x7a71_0010);
}

/// Windows smaller than their stride, whose dx (and conv_transpose2d) has stride phases that no
/// tap reaches: the packed and tiled plans zero the whole destination first and run only the
/// phases with taps, where it is a whole number of vec4s and nothing but zeros goes there (no
/// bias), in pooled buffers left full of NaN. Either layout, dx into the few, narrow and wide tiles' channel counts and groups, a
/// destination of 330 elements (not zeroed: every phase's GEMM runs), and the transposed
/// convolution's bias over those phases.
fn phases_without_taps(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let plain = Conv2dParams::default();
    let cases = [
        ([2, 7, 9, 8], [10, 7, 1, 1], plain.with_stride(2)),
        ([1, 3, 8, 10], [6, 3, 1, 1], plain.with_stride_hw(2, 3)),
        ([1, 3, 11, 10], [6, 3, 1, 1], plain.with_stride_hw(2, 3)),
        (
            [1, 40, 5, 6],
            [36, 20, 1, 1],
            plain.with_groups(2).with_stride(2),
        ),
        ([1, 70, 6, 5], [9, 70, 2, 1], plain.with_stride(3)),
    ];
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for (input, weight, p) in cases {
            let p = p.with_layout(layout);
            let (input, weight) = (layout.activation_shape(input), layout.weight_shape(weight));
            let g = p.geometry("t", input, weight, None).unwrap();
            let x = rng.array4(input);
            let w = rng.array4(weight);
            let dy = rng.array4(g.output_shape());
            let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?}");
            // A missed zero shows through as NaN.
            leave_nan_in_pool(&gpu, input, layout);
            common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
            leave_nan_in_pool(&gpu, input, layout);
            let tp = transposed_params(&p);
            let tb = rng.array1(g.in_channels);
            common::assert_transpose_matches_reference(&gpu, &dy, &w, &tb, &tp, &what);
        }
    }
}

#[test]
fn packed4_weight_gradient_reads_grad_output_copied_in_its_own_order() {
    grad_output_copied(ConvVariant::Packed4, 0x7a71_0043);
}

#[test]
fn packed8_weight_gradient_reads_grad_output_copied_in_its_own_order() {
    grad_output_copied(ConvVariant::Packed8, 0x7a71_0010);
}

#[test]
fn packed16_weight_gradient_reads_grad_output_copied_in_its_own_order() {
    grad_output_copied(ConvVariant::Packed16, 0x7a71_0011);
}

/// The packed weight gradients take an NCHW grad_output whose rows are whole vec4s into their
/// texture by a copy, in its own [n][c][oy][ox] order, and step over the other channels at
/// each image's end. Several images (so that blocks of rows cross from one into the next),
/// groups, channel counts off the tiles, strides, a 1x1 layer, and an infinite grad_output in
/// the last image meeting the input's zero padding (the masked redo, which finds its terms by
/// division instead of the walk).
fn grad_output_copied(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let plain = Conv2dParams::default();
    let cases = [
        (
            [3, 5, 6, 8],
            [20, 5, 3, 3],
            plain.with_padding(Padding::uniform(1)),
        ),
        (
            [2, 8, 5, 12],
            [12, 4, 3, 3],
            plain.with_groups(2).with_padding(Padding::uniform(1)),
        ),
        ([3, 16, 9, 16], [40, 16, 1, 1], plain.with_stride(2)),
        (
            [2, 6, 7, 4],
            [4, 6, 3, 1],
            plain.with_padding(Padding::explicit(1, 1, 0, 0)),
        ),
        (
            [4, 3, 11, 15],
            [70, 3, 3, 3],
            plain.with_stride(2).with_padding(Padding::uniform(1)),
        ),
        // Enough tiles per block of rows that a block takes several rows, and rows of three
        // per image so that blocks start inside an image and run into the next (on lavapipe:
        // two rows per block at 8 lanes, five at 16).
        (
            [3, 64, 3, 8],
            [128, 64, 3, 3],
            plain.with_padding(Padding::uniform(1)),
        ),
        (
            [3, 256, 3, 4],
            [256, 256, 3, 3],
            plain.with_padding(Padding::uniform(1)),
        ),
    ];
    for (i, (input, weight, p)) in cases.into_iter().enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        assert_eq!(g.w.output % 4, 0, "a case the copy serves");
        let x = rng.array4(input);
        let w = rng.array4(weight);
        let mut dy = rng.array4(g.output_shape());
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?}");
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
        // The masked redo is slow by design (rare): the small layers only.
        if i < 5 {
            let [n, c, _, _] = g.output_shape();
            dy[[n - 1, c - 1, 0, 0]] = f32::INFINITY;
            common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
        }
    }
}

#[test]
fn packed4_variant_packs_whole_vec4_rows_from_a_copied_source() {
    copied_source(ConvVariant::Packed4, 0x7a71_0044);
}

#[test]
fn packed8_variant_packs_whole_vec4_rows_from_a_copied_source() {
    copied_source(ConvVariant::Packed8, 0x7a71_0020);
}

#[test]
fn packed16_variant_packs_whole_vec4_rows_from_a_copied_source() {
    copied_source(ConvVariant::Packed16, 0x7a71_0021);
}

/// The packed gathers copy an NCHW source whose rows are whole vec4s into a texture and pack
/// four pixels per invocation from two texels per channel: every left padding modulo 4 (and
/// one past a whole texel), padding on one side only, packed rows that are not whole quads,
/// channel counts off the vec4s, groups, dilation, a stride whose input-gradient phases read
/// grad_output the same way, and an infinite input meeting the padding (the masked redo).
fn copied_source(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let plain = Conv2dParams::default();
    let cases = [
        (
            [2, 5, 6, 8],
            [7, 5, 3, 3],
            plain.with_padding(Padding::uniform(1)),
        ),
        ([1, 3, 5, 12], [6, 3, 3, 3], plain),
        (
            [2, 6, 4, 8],
            [10, 3, 3, 3],
            plain
                .with_groups(2)
                .with_padding(Padding::explicit(2, 0, 2, 3)),
        ),
        (
            [1, 4, 5, 16],
            [5, 4, 2, 5],
            plain.with_padding(Padding::explicit(1, 1, 3, 0)),
        ),
        (
            [2, 9, 6, 8],
            [4, 9, 3, 3],
            plain
                .with_dilation(2)
                .with_padding(Padding::explicit(0, 1, 5, 4)),
        ),
        (
            [2, 8, 9, 16],
            [20, 8, 3, 3],
            plain.with_stride(2).with_padding(Padding::uniform(1)),
        ),
    ];
    for (i, (input, weight, p)) in cases.into_iter().enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        let mut x = rng.array4(input);
        x[[input[0] - 1, input[1] - 1, 0, input[3] - 1]] = f32::INFINITY;
        let w = rng.array4(weight);
        let b = rng.array1(g.out_channels);
        let dy = rng.array4(g.output_shape());
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?} case {i}");
        common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, Activation::None, &what);
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
    }
}

#[test]
fn packed4_variant_packs_3x3_weights_a_vec4_at_a_time() {
    weights_3x3(ConvVariant::Packed4, 0x7a71_004b);
}

#[test]
fn packed8_variant_packs_3x3_weights_a_vec4_at_a_time() {
    weights_3x3(ConvVariant::Packed8, 0x7a71_004c);
}

#[test]
fn packed16_variant_packs_3x3_weights_a_vec4_at_a_time() {
    weights_3x3(ConvVariant::Packed16, 0x7a71_004d);
}

/// The 3x3 weight packers, which read four channels' nine taps as nine vec4s and redistribute
/// them: output channels that fill no whole tile (padding channels written as zeros), flipped
/// windows (taps reversed), groups, dilation, input channels in whole vec4s with output
/// channels off them (the input gradient falls back), channels past the last whole vec4 of a
/// tile (the transposed packer's padding blocks), and the transposed convolution, which reads
/// the weights as the input gradient does.
fn weights_3x3(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let same = Conv2dParams::default().with_padding(Padding::uniform(1));
    let cases = [
        ([2, 8, 6, 7], [20, 8, 3, 3], same),
        ([2, 8, 6, 7], [20, 8, 3, 3], same.with_flip(true)),
        (
            [1, 16, 5, 5],
            [24, 8, 3, 3],
            same.with_groups(2).with_dilation(2),
        ),
        (
            [1, 16, 5, 6],
            [12, 4, 3, 3],
            same.with_flip(true).with_groups(4),
        ),
        ([2, 8, 5, 5], [10, 8, 3, 3], same),
        ([2, 12, 5, 6], [8, 12, 3, 3], same),
        (
            [1, 16, 5, 5],
            [16, 8, 3, 3],
            same.with_flip(true).with_groups(2),
        ),
        ([1, 36, 4, 4], [4, 36, 3, 3], Conv2dParams::default()),
    ];
    for (i, (input, weight, p)) in cases.into_iter().enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        let x = rng.array4(input);
        let w = rng.array4(weight);
        let b = rng.array1(g.out_channels);
        let dy = rng.array4(g.output_shape());
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?} case {i}");
        common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, Activation::None, &what);
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
        let tp = transposed_params(&p);
        let tb = rng.array1(g.in_channels);
        common::assert_transpose_matches_reference(&gpu, &dy, &w, &tb, &tp, &what);
    }
}

#[test]
fn packed4_variant_reads_1x1_stride_2_layers_from_a_copy() {
    stride2_from_copy(ConvVariant::Packed4, 0x7a71_004e);
}

#[test]
fn packed8_variant_reads_1x1_stride_2_layers_from_a_copy() {
    stride2_from_copy(ConvVariant::Packed8, 0x7a71_004f);
}

#[test]
fn packed16_variant_reads_1x1_stride_2_layers_from_a_copy() {
    stride2_from_copy(ConvVariant::Packed16, 0x7a71_0050);
}

/// Wide gathers of a 1x1 window at stride 2 reading every other value of an NCHW source's
/// copy: more channels than a narrow tile holds at every width, tiles whose last columns run
/// past the last pixel at every width (12 and 120 pixels), groups, several images, bias and an activation; a NaN at an odd column
/// or row (skipped by the stride) must reach nothing, an infinity at an even one only its own
/// pixel.
fn stride2_from_copy(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let s2 = Conv2dParams::default().with_stride(2);
    let cases = [
        ([2, 8, 8, 8], [40, 8, 1, 1], s2, Activation::None),
        (
            [1, 16, 12, 16],
            [80, 8, 1, 1],
            s2.with_groups(2),
            Activation::Relu,
        ),
        ([3, 12, 8, 24], [36, 12, 1, 1], s2, Activation::None),
        ([1, 8, 6, 8], [40, 8, 1, 1], s2, Activation::None),
        ([2, 8, 10, 24], [40, 8, 1, 1], s2, Activation::Tanh),
    ];
    for (i, (input, weight, p, activation)) in cases.into_iter().enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        let mut x = rng.array4(input);
        x[[0, 1, 2, 3]] = f32::NAN;
        x[[input[0] - 1, 0, 3, 4]] = f32::NAN;
        x[[input[0] - 1, input[1] - 1, 2, 6]] = f32::INFINITY;
        let w = rng.array4(weight);
        let b = rng.array1(g.out_channels);
        let dy = rng.array4(g.output_shape());
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?} case {i}");
        common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, activation, &what);
        let x = rng.array4(input);
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
    }
}

#[test]
fn packed4_variant_slides_few_channel_gathers_along_rows() {
    few_channel_rows(ConvVariant::Packed4, 0x7a71_0045);
}

#[test]
fn packed8_variant_slides_few_channel_gathers_along_rows() {
    few_channel_rows(ConvVariant::Packed8, 0x7a71_0030);
}

#[test]
fn packed16_variant_slides_few_channel_gathers_along_rows() {
    few_channel_rows(ConvVariant::Packed16, 0x7a71_0031);
}

/// Gathers into at most 4 channels whose rows are a multiple of 8 pixels slide each lane's 8
/// neighbouring pixels along the row, taking the taps in the order their reads move right:
/// forward gathers (taps stepping right) into 1 to 4 channels, with flips and asymmetric
/// padding, and input gradients into an RGB-like input (taps stepping left), the stem's 7x7
/// stride-2 layer with four phases of 3 or 4 taps, a stride-1 layer, and a 1x1 one; an
/// infinite weight meets the padding in each (the masked redo), and infinite activations
/// go through. Rows of 8 pixels per lane
/// at 8 and 16 lanes need more pixels than one subgroup has, so some layers span several
/// tiles and the last lanes of a tile run past the last pixel.
fn few_channel_rows(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let plain = Conv2dParams::default();
    let forward = [
        (
            [2, 6, 5, 8],
            [3, 6, 3, 3],
            plain.with_padding(Padding::uniform(1)),
        ),
        ([1, 5, 4, 18], [1, 5, 3, 3], plain.with_flip(true)),
        (
            [3, 4, 6, 16],
            [4, 4, 3, 2],
            plain.with_padding(Padding::explicit(1, 1, 0, 1)),
        ),
        ([1, 8, 3, 26], [2, 4, 1, 3], plain.with_groups(2)),
    ];
    let backward = [
        (
            [2, 3, 32, 32],
            [16, 3, 7, 7],
            plain.with_stride(2).with_padding(Padding::uniform(3)),
        ),
        (
            [1, 3, 5, 16],
            [8, 3, 3, 3],
            plain.with_padding(Padding::uniform(1)),
        ),
        ([2, 4, 3, 8], [6, 4, 1, 1], plain),
    ];
    for (i, (input, weight, p)) in forward.into_iter().chain(backward).enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        let mut x = rng.array4(input);
        x[[input[0] - 1, 0, 0, 0]] = f32::INFINITY;
        let mut w = rng.array4(weight);
        // Times the zero padding: NaN unless the masked redo leaves those terms out.
        w[[0, 0, 0, 0]] = f32::INFINITY;
        let b = rng.array1(g.out_channels);
        let mut dy = rng.array4(g.output_shape());
        let [n, c, _, ow] = g.output_shape();
        dy[[n - 1, c - 1, 0, ow - 1]] = f32::NEG_INFINITY;
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?} case {i}");
        if i < forward.len() {
            assert_eq!(g.w.output % 8, 0, "a forward case the slide serves");
            common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, Activation::None, &what);
        } else {
            common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
        }
    }
}

#[test]
fn packed4_variant_stores_vec4s_of_pixels_or_of_channels() {
    vec4_stores(ConvVariant::Packed4, 0x7a71_0046);
}

#[test]
fn packed8_variant_stores_vec4s_of_pixels_or_of_channels() {
    vec4_stores(ConvVariant::Packed8, 0x7a71_0032);
}

#[test]
fn packed16_variant_stores_vec4s_of_pixels_or_of_channels() {
    vec4_stores(ConvVariant::Packed16, 0x7a71_0033);
}

/// Wide gathers write vec4s of four pixels per channel into NCHW planes of a multiple of 4
/// pixels, and vec4s of four channels per pixel into NHWC tensors of channels in fours. Each
/// case runs in both layouts, so each kind of store meets the cases that fall back to single
/// values: channel counts that are not whole vec4s and span more than one wide tile at 8 and
/// at 16 lanes (66, and 36 per group of two), bias and activations, several images with a last
/// tile that ends part way, strided forward passes, input gradients at stride 1 and in stride
/// phases, planes of 7x7, and an infinite activation.
fn vec4_stores(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let same = Conv2dParams::default().with_padding(Padding::uniform(1));
    let forward = [
        (
            [3, 8, 6, 6],
            [66, 8, 3, 3],
            same,
            Activation::LeakyRelu { slope: 0.1 },
        ),
        (
            [2, 8, 4, 5],
            [72, 4, 3, 3],
            same.with_groups(2),
            Activation::Sigmoid,
        ),
        (
            [2, 36, 9, 8],
            [40, 36, 3, 3],
            same.with_stride(2),
            Activation::Relu,
        ),
        ([2, 8, 7, 7], [40, 8, 3, 3], same, Activation::Tanh),
    ];
    let backward = [
        ([2, 68, 6, 6], [8, 68, 3, 3], same),
        ([2, 40, 8, 8], [8, 40, 3, 3], same.with_stride(2)),
        ([1, 66, 4, 6], [8, 66, 3, 3], same),
    ];
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let first_channel = |shape: [usize; 4]| match layout {
            Layout::Nchw => [shape[0] - 1, 0, 1, 1],
            Layout::Nhwc => [shape[0] - 1, 1, 1, 0],
        };
        for (i, (input, weight, p, act)) in forward.into_iter().enumerate() {
            let p = p.with_layout(layout);
            let (input, weight) = (layout.activation_shape(input), layout.weight_shape(weight));
            let g = p.geometry("t", input, weight, None).unwrap();
            let mut x = rng.array4(input);
            x[first_channel(input)] = f32::INFINITY;
            let w = rng.array4(weight);
            let b = rng.array1(g.out_channels);
            let what = |pass: &str| {
                format!("{pass} {p:?} input {input:?} weight {weight:?} {act:?} case {i}")
            };
            common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, act, &what);
        }
        for (input, weight, p) in backward {
            let p = p.with_layout(layout);
            let (input, weight) = (layout.activation_shape(input), layout.weight_shape(weight));
            let g = p.geometry("t", input, weight, None).unwrap();
            let x = rng.array4(input);
            let w = rng.array4(weight);
            let dy = rng.array4(g.output_shape());
            let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?}");
            common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
        }
    }
}

#[test]
fn packed4_variant_takes_weight_gradients_from_an_nchw_copy_of_the_input() {
    weight_grad_from_nchw(ConvVariant::Packed4, 0x7a71_0047);
}

#[test]
fn packed8_variant_takes_weight_gradients_from_an_nchw_copy_of_the_input() {
    weight_grad_from_nchw(ConvVariant::Packed8, 0x7a71_0036);
}

#[test]
fn packed16_variant_takes_weight_gradients_from_an_nchw_copy_of_the_input() {
    weight_grad_from_nchw(ConvVariant::Packed16, 0x7a71_0037);
}

/// Weight gradients whose wide tiles read the input from an NCHW copy, each column's values
/// two texels shifted by its tap's offset modulo 4 (all four offsets: left paddings of 1 and 2,
/// a 5x5 window, dilation 2; whole texels away at dilation 4), masked where a read falls on
/// the padding or past a row into the next one: one-sided padding, no padding with output
/// rows short of the input's by part of a vec4 and by whole ones (the x past the output's
/// last column live in the copy, zero in grad_output), a 1x1 window, rows at stride 2 with
/// columns at stride 1 over two images, groups, a flipped window, output channels not in
/// whole tiles, several images. Columns at stride 2 (every other value of three texels): 3x3
/// and 7x7 windows from paddings of 1 and 3, dilation 2, output rows that end short, 1x1
/// windows. Rows of 14, 10, 9, 7 and 6 pixels as long as the output's, read by whole planes
/// (four neighbouring values of a plane wherever its rows break): 3x3, 5x5, 3x1 and 1x1
/// windows, dilation 2, one-sided padding, groups, a flipped window. An infinite grad_output
/// at a corner meets the padding (the masked redo); an infinite and a NaN input, at a row's
/// first and last pixel, must reach only their own taps' sums.
fn weight_grad_from_nchw(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let same = Conv2dParams::default().with_padding(Padding::uniform(1));
    let cases = [
        ([2, 8, 8, 8], [40, 8, 3, 3], same),
        (
            [1, 6, 7, 12],
            [36, 6, 3, 3],
            Conv2dParams::default()
                .with_padding(Padding::uniform(2))
                .with_dilation(2),
        ),
        (
            [2, 4, 6, 8],
            [66, 4, 3, 3],
            Conv2dParams::default().with_padding(Padding::explicit(0, 2, 2, 0)),
        ),
        (
            [2, 4, 6, 8],
            [36, 4, 5, 5],
            Conv2dParams::default().with_padding(Padding::uniform(2)),
        ),
        ([2, 5, 5, 8], [40, 5, 3, 3], Conv2dParams::default()),
        ([2, 8, 9, 4], [40, 8, 3, 3], same.with_stride_hw(2, 1)),
        (
            [1, 4, 5, 8],
            [36, 4, 3, 3],
            Conv2dParams::default()
                .with_padding(Padding::uniform(4))
                .with_dilation(4),
        ),
        ([2, 8, 3, 12], [40, 8, 1, 1], Conv2dParams::default()),
        ([2, 8, 4, 4], [72, 4, 3, 3], same.with_groups(2)),
        ([1, 6, 4, 8], [40, 6, 3, 3], same.with_flip(true)),
        // Output rows shorter than the input's by more than a vec4 (a 5x5 window unpadded:
        // rows of 8 from rows of 12), and by a part of one.
        ([1, 4, 6, 12], [36, 4, 5, 5], Conv2dParams::default()),
        (
            [2, 4, 5, 12],
            [40, 4, 3, 3],
            Conv2dParams::default().with_padding(Padding::explicit(1, 0, 1, 0)),
        ),
        // Columns at stride 2, every tap offset modulo 4 (pads 1 and 3 with odd and even
        // taps, dilation 2): the ResNet stride-2 3x3 layer and its stem.
        ([2, 8, 8, 16], [40, 8, 3, 3], same.with_stride(2)),
        (
            [1, 3, 9, 16],
            [36, 3, 7, 7],
            Conv2dParams::default()
                .with_stride(2)
                .with_padding(Padding::uniform(3)),
        ),
        (
            [1, 4, 7, 12],
            [40, 4, 3, 3],
            Conv2dParams::default()
                .with_stride_hw(1, 2)
                .with_padding(Padding::uniform(2))
                .with_dilation(2),
        ),
        // Output rows ending a vec4 short of half the input's (12 pixels to 5 at stride 2
        // with a 3-wide window: ow4 2 from 3 texels).
        (
            [2, 4, 4, 12],
            [36, 4, 3, 3],
            Conv2dParams::default().with_stride(2),
        ),
        // 1x1 windows at stride 2 along x alone, and both ways from a padding of 1 (whose
        // rows the packing does not subsample).
        (
            [2, 8, 3, 8],
            [40, 8, 1, 1],
            Conv2dParams::default().with_stride_hw(1, 2),
        ),
        (
            [2, 8, 5, 8],
            [40, 8, 1, 1],
            Conv2dParams::default()
                .with_stride(2)
                .with_padding(Padding::uniform(1)),
        ),
        // Rows that are not whole vec4s as long as the output's, read by planes: 14 and 7
        // pixels, 5x5 and dilated windows, one-sided padding, a 1x1 and a 3x1 window (output
        // planes shorter than the input's), groups, a flipped window.
        ([2, 8, 6, 14], [40, 8, 3, 3], same),
        ([1, 4, 4, 7], [36, 4, 3, 3], same),
        (
            [2, 4, 6, 6],
            [40, 4, 5, 5],
            Conv2dParams::default().with_padding(Padding::uniform(2)),
        ),
        (
            [1, 6, 6, 10],
            [36, 6, 3, 3],
            Conv2dParams::default()
                .with_padding(Padding::uniform(2))
                .with_dilation(2),
        ),
        (
            [2, 4, 4, 9],
            [40, 4, 3, 3],
            Conv2dParams::default().with_padding(Padding::explicit(2, 0, 2, 0)),
        ),
        ([2, 8, 2, 6], [40, 8, 1, 1], Conv2dParams::default()),
        ([2, 4, 6, 6], [36, 4, 3, 1], Conv2dParams::default()),
        ([2, 8, 4, 6], [72, 4, 3, 3], same.with_groups(2)),
        ([1, 6, 4, 10], [40, 6, 3, 3], same.with_flip(true)),
    ];
    for (i, (input, weight, p)) in cases.into_iter().enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        let rows_subsampled =
            g.h.kernel == 1 && g.h.stride > 1 && g.h.pad_before.is_multiple_of(g.h.stride);
        let by_rows = g.w.input.is_multiple_of(4) && g.w.stride <= 2 && !rows_subsampled;
        let by_planes = g.h.stride == 1
            && g.w.stride == 1
            && g.w.input == g.w.output
            && g.w.input >= 4
            && (g.h.input * g.w.input).is_multiple_of(4)
            && (g.h.output * g.w.output).is_multiple_of(4);
        assert!(by_rows || by_planes, "case {i} reads the copy");
        let mut x = rng.array4(input);
        let [n, c, h, w] = input;
        x[[n - 1, c / 2, h / 2, 0]] = f32::INFINITY;
        x[[0, c - 1, h - 1, w - 1]] = f32::NAN;
        let w = rng.array4(weight);
        let mut dy = rng.array4(g.output_shape());
        dy[[n - 1, 0, 0, 0]] = f32::NEG_INFINITY;
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?} case {i}");
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
    }
}

#[test]
fn packed4_variant_walks_input_copies_across_rows_and_images() {
    weight_grad_copies_in_long_blocks(ConvVariant::Packed4, 0x7a71_0048);
}

#[test]
fn packed8_variant_walks_input_copies_across_rows_and_images() {
    weight_grad_copies_in_long_blocks(ConvVariant::Packed8, 0x7a71_0038);
}

#[test]
fn packed16_variant_walks_input_copies_across_rows_and_images() {
    weight_grad_copies_in_long_blocks(ConvVariant::Packed16, 0x7a71_0039);
}

/// The copy kernels' walk from one output row, and one image, to the next within a block of
/// the reduction: 512 output channels make enough tiles that blocks hold several rows (at
/// stride 1 and 2; 20 rows of 4 per image, in blocks that start inside an image) or several
/// images' planes, where the small cases above get one row each.
fn weight_grad_copies_in_long_blocks(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let same = Conv2dParams::default().with_padding(Padding::uniform(1));
    let cases = [
        ([5, 32, 4, 8], [512, 32, 3, 3], same),
        ([5, 32, 8, 16], [512, 32, 3, 3], same.with_stride(2)),
        ([16, 32, 4, 6], [512, 32, 3, 3], same),
    ];
    for (i, (input, weight, p)) in cases.into_iter().enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        let x = rng.array4(input);
        let w = rng.array4(weight);
        let dy = rng.array4(g.output_shape());
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?} case {i}");
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
    }
}

#[test]
fn packed4_variant_reads_1x1_layers_from_an_nchw_copy() {
    one_by_one_from_nchw(ConvVariant::Packed4, 0x7a71_0049);
}

#[test]
fn packed8_variant_reads_1x1_layers_from_an_nchw_copy() {
    one_by_one_from_nchw(ConvVariant::Packed8, 0x7a71_0034);
}

#[test]
fn packed16_variant_reads_1x1_layers_from_an_nchw_copy() {
    one_by_one_from_nchw(ConvVariant::Packed16, 0x7a71_0035);
}

/// 1x1 layers at unit steps over all of an NCHW source with planes of a multiple of 4 pixels
/// and channels per group in fours, whose wide gathers read the source from its copy, each
/// lane four neighbouring pixels: forward passes into channel counts that are not whole vec4s
/// over several images with a last tile that ends part way, with groups, bias and
/// activations; the stride-1 input gradient (pixel quads stored) and the one tapped phase of
/// a stride-2 layer's (single values stored into every other pixel), with the phases without
/// taps zero-filled or writing their zeros themselves, and conv_transpose2d's with a bias; the
/// phases of a 2x2 stride-2 layer's, a tap each; an infinite and a NaN activation, which must
/// reach only their own pixel's outputs. Next to them, planes of 35 pixels and 6 channels per
/// group, which pack.
fn one_by_one_from_nchw(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let plain = Conv2dParams::default();
    let forward = [
        ([3, 8, 6, 6], [66, 8, 1, 1], plain, Activation::Relu),
        (
            [2, 16, 4, 5],
            [72, 8, 1, 1],
            plain.with_groups(2),
            Activation::Tanh,
        ),
        ([2, 12, 5, 7], [40, 12, 1, 1], plain, Activation::None),
        (
            [2, 12, 4, 4],
            [40, 6, 1, 1],
            plain.with_groups(2),
            Activation::None,
        ),
    ];
    for (i, (input, weight, p, act)) in forward.into_iter().enumerate() {
        let g = p.geometry("t", input, weight, None).unwrap();
        let mut x = rng.array4(input);
        x[[input[0] - 1, 0, 1, 2]] = f32::INFINITY;
        x[[0, input[1] - 1, input[2] - 1, 0]] = f32::NAN;
        let w = rng.array4(weight);
        let b = rng.array1(g.out_channels);
        let what =
            |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?} {act:?} case {i}");
        common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, act, &what);
    }
    // The input gradient at stride 1; at stride 2, zero-filled first, and not (333 values, not
    // whole vec4s), where the phases without taps write their zeros themselves; of a 2x2
    // stride-2 layer (a tap per phase); and conv_transpose2d at stride 2 with a bias, which
    // its phases without taps write.
    for (input, weight, p) in [
        ([2, 40, 6, 6], [8, 40, 1, 1], plain),
        ([2, 36, 8, 8], [12, 36, 1, 1], plain.with_stride(2)),
        ([1, 37, 3, 3], [8, 37, 1, 1], plain.with_stride(2)),
        ([2, 36, 8, 8], [12, 36, 2, 2], plain.with_stride(2)),
    ] {
        let g = p.geometry("t", input, weight, None).unwrap();
        let x = rng.array4(input);
        let w = rng.array4(weight);
        let mut dy = rng.array4(g.output_shape());
        let [n, c, h, _] = g.output_shape();
        dy[[n - 1, c - 1, h - 1, 1]] = f32::INFINITY;
        // The first texel, which a dispatch reading terms for a phase without taps would meet
        // first, against weights it has none of.
        dy[[0, 0, 0, 0]] = f32::NEG_INFINITY;
        let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?}");
        leave_nan_in_pool(&gpu, input, Layout::Nchw);
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
        leave_nan_in_pool(&gpu, input, Layout::Nchw);
        let tb = rng.array1(g.in_channels);
        common::assert_transpose_matches_reference(
            &gpu,
            &dy,
            &w,
            &tb,
            &transposed_params(&p),
            &what,
        );
    }
}

#[test]
fn tiled_variant_reads_1x1_layers_in_place() {
    one_by_one_layers(ConvVariant::Tiled, 0x7a71_000a);
}

#[test]
fn packed4_variant_packs_strided_1x1_layers_subsampled() {
    one_by_one_layers(ConvVariant::Packed4, 0x7a71_004a);
}

#[test]
fn packed8_variant_packs_strided_1x1_layers_subsampled() {
    one_by_one_layers(ConvVariant::Packed8, 0x7a71_0012);
}

#[test]
fn packed16_variant_packs_strided_1x1_layers_subsampled() {
    one_by_one_layers(ConvVariant::Packed16, 0x7a71_0013);
}

/// 1x1 layers whose windows lie inside the input, which the tiled variant reads in place (no
/// packing) and the packed variants pack subsampled where strided: either layout, strides,
/// groups, channel counts that are not whole vec4s, more than one K tile and channel tile, a
/// stride that does not divide the input; with an infinite value in the last channel of the
/// input and of grad_output, which the in-place kernel's clamped reads meet again against zero
/// weights (its masked redo must give the reference's infinity, not NaN).
fn one_by_one_layers(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let plain = Conv2dParams::default();
    let cases = [
        ([2, 17, 6, 5], [12, 17, 1, 1], plain),
        ([1, 16, 7, 7], [24, 16, 1, 1], plain.with_stride(2)),
        (
            [1, 12, 5, 6],
            [10, 6, 1, 1],
            plain.with_groups(2).with_stride_hw(2, 1),
        ),
        ([2, 64, 5, 5], [70, 64, 1, 1], plain),
        ([1, 40, 9, 3], [9, 40, 1, 1], plain.with_stride(3)),
        ([3, 36, 11, 12], [72, 36, 1, 1], plain.with_stride(2)),
        (
            [2, 8, 9, 10],
            [12, 8, 1, 1],
            plain
                .with_stride(2)
                .with_padding(Padding::explicit(2, 0, 2, 1)),
        ),
    ];
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for (i, (input, weight, p)) in cases.into_iter().enumerate() {
            let p = p.with_layout(layout).with_flip(i % 2 == 1);
            let (input, weight) = (layout.activation_shape(input), layout.weight_shape(weight));
            let g = p.geometry("t", input, weight, None).unwrap();
            let last_channel = |shape: [usize; 4], c: usize| match layout {
                Layout::Nchw => [shape[0] - 1, c - 1, 0, 0],
                Layout::Nhwc => [shape[0] - 1, 0, 0, c - 1],
            };
            let mut x = rng.array4(input);
            x[last_channel(input, g.in_channels)] = f32::INFINITY;
            let w = rng.array4(weight);
            let b = rng.array1(g.out_channels);
            let mut dy = rng.array4(g.output_shape());
            dy[last_channel(g.output_shape(), g.out_channels)] = f32::NEG_INFINITY;
            let what = |pass: &str| format!("{pass} {p:?} input {input:?} weight {weight:?}");
            common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, Activation::None, &what);
            common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
        }
    }
}

/// Shapes whose tails exercise the subgroup tiles' masking: channel counts around 16, 32 and
/// 64 and at most 4 (and, for the packed variants, reduction channels that are not a multiple
/// of 4), pixel counts around 8 and 32, output
/// rows that are not a multiple of 4 wide, strides that leave phases without taps, padding
/// wider than the kernel, and many groups.
fn tile_tails(variant: ConvVariant, seed: u64) {
    let Some(gpu) = gpu_forcing(variant) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let cases: &[([usize; 4], [usize; 4], Conv2dParams)] = &[
        ([1, 17, 3, 3], [15, 17, 1, 1], Conv2dParams::default()),
        (
            [2, 16, 4, 5],
            [33, 16, 3, 3],
            Conv2dParams::default().with_padding(Padding::uniform(1)),
        ),
        (
            [1, 24, 9, 7],
            [24, 8, 2, 2],
            Conv2dParams::default().with_groups(3).with_stride(3),
        ),
        (
            [1, 8, 11, 11],
            [9, 8, 1, 1],
            Conv2dParams::default().with_stride(4),
        ),
        (
            [3, 20, 6, 6],
            [40, 10, 3, 3],
            Conv2dParams::default()
                .with_groups(2)
                .with_dilation(2)
                .with_stride(2)
                .with_padding(Padding::uniform(2)),
        ),
        // More than one 64-channel tile and 32-pixel block of the tiled variant, and more
        // than one 8-vec4 K tile of reduction with a partial last one.
        (
            [1, 9, 7, 6],
            [70, 9, 3, 3],
            Conv2dParams::default().with_padding(Padding::uniform(1)),
        ),
        (
            [2, 5, 7, 9],
            [18, 5, 2, 3],
            Conv2dParams::default()
                .with_stride(2)
                .with_padding(Padding::explicit(3, 0, 1, 4)),
        ),
        // The tiled variant's narrow tiles past one column block: 7 output channels (tiles
        // of 8 channels by 256 pixels forward, by 256 weight columns for dw) and 30 input
        // channels (dx: 32 by 64), over K tiles with a partial last one.
        (
            [2, 30, 15, 13],
            [7, 30, 3, 3],
            Conv2dParams::default().with_padding(Padding::uniform(1)),
        ),
        // Past packed16's tiles: 36 channels on both sides (wide tiles of 64 channels by 32
        // pixels, dw columns 36 x 4 past a multiple of 32) and 70 output channels (a second
        // wide tile), over 33 pixels.
        (
            [1, 36, 3, 11],
            [36, 36, 2, 2],
            Conv2dParams::default().with_padding(Padding::explicit(0, 1, 0, 0)),
        ),
        (
            [1, 24, 5, 6],
            [70, 24, 3, 3],
            Conv2dParams::default().with_padding(Padding::uniform(1)),
        ),
        // Gathers into at most 4 channels (packed8's few tiles of 64 pixels): an RGB input's
        // dx over stride phases with a partial last block, and 2 groups of 1 output channel.
        (
            [2, 3, 13, 11],
            [5, 3, 3, 3],
            Conv2dParams::default()
                .with_stride(2)
                .with_padding(Padding::explicit(1, 2, 0, 1)),
        ),
        (
            [1, 6, 9, 10],
            [2, 3, 3, 3],
            Conv2dParams::default()
                .with_groups(2)
                .with_padding(Padding::uniform(1)),
        ),
    ];
    for (input, weight, p) in cases {
        let g = p.geometry("t", *input, *weight, None).unwrap();
        let x = rng.array4(*input);
        let w = rng.array4(*weight);
        let dy = rng.array4(g.output_shape());
        let what = |pass: &str| format!("{pass} {input:?} {weight:?} {p:?}");
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, p, &what);
        // A zero bias: the forward as without one.
        let b = ndarray::Array1::zeros(g.out_channels);
        common::assert_forward_matches_reference(&gpu, &x, &w, &b, p, Activation::None, &what);
    }
}

/// The planner's rules (`src/gpu/conv2d/variant.rs`), with what each needs read from the
/// adapter: depthwise layers take the depthwise kernels anywhere; real GPUs take tiled; other
/// adapters packed4, packed8 or packed16 where they run 4-, 8- or 16-wide subgroups (the SUBGROUP feature,
/// subgroups of exactly that width), subgroup at the other widths it serves; without usable
/// subgroups, tiled for layers with 8 or more channels on both sides and direct for the others,
/// each saying why.
#[test]
fn planner_explains_its_choice_and_falls_back_without_subgroups() {
    let Some(gpu) = common::gpu() else { return };
    let wide = Conv2dParams::default()
        .geometry("t", [8, 64, 56, 56], [64, 64, 3, 3], None)
        .unwrap();
    let stem = Conv2dParams::default()
        .with_stride(2)
        .with_padding(Padding::uniform(3))
        .geometry("t", [1, 3, 32, 32], [64, 3, 7, 7], None)
        .unwrap();
    let depthwise = Conv2dParams::default()
        .with_groups(32)
        .geometry("t", [1, 32, 8, 8], [32, 1, 3, 3], None)
        .unwrap();
    let real_gpu = matches!(
        gpu.adapter_info().device_type,
        wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
    );
    // What the probe confirmed, not only what the adapter reports (lavapipe at 1024 bits
    // reports 32 lanes and runs 16; `check_availability` holds the two together).
    let width = common::subgroup_width(gpu)
        .filter(|_| common::check_availability(gpu, ConvVariant::Subgroup));
    // The packed scratch of these layers (7 MB and 106 texture rows for the wide one) fits
    // what WebGPU guarantees every adapter: 128 MiB bindings, 8192-texel textures.
    assert!(gpu.max_storage_binding() >= 128 << 20 && gpu.max_texture_dimension() >= 8192);
    let (expected, why) = if real_gpu {
        (ConvVariant::Tiled, "GPU: workgroup memory".to_string())
    } else if width == Some(4) {
        (ConvVariant::Packed4, "4-wide subgroups".to_string())
    } else if width == Some(8) {
        (ConvVariant::Packed8, "8-wide subgroups".to_string())
    } else if width == Some(16) {
        (ConvVariant::Packed16, "16-wide subgroups".to_string())
    } else if let Some(w) = width {
        (ConvVariant::Subgroup, format!("{w}-wide subgroups"))
    } else {
        // No usable subgroups: tiled where the device has its workgroup memory.
        let why = ConvVariant::Subgroup.available(gpu).unwrap_err();
        match ConvVariant::Tiled.available(gpu) {
            Ok(()) => (ConvVariant::Tiled, format!("no subgroup kernels ({why})")),
            Err(_) => (ConvVariant::Direct, format!("no subgroup kernels: {why}")),
        }
    };
    for pass in [ConvPass::Forward, ConvPass::InputGrad, ConvPass::WeightGrad] {
        let choice = planner::plan(gpu, pass, &wide);
        assert_eq!(choice.variant, expected, "{choice:?}");
        assert!(choice.reason.contains(&why), "{choice:?}");
        // A 3-channel stem: its dx tiles have 3 live channels of 16, yet the 64-channel
        // reduction behind each still runs faster packed than direct (1.78 s -> 0.55 s at b8);
        // unpacked, those tiles would be mostly idle, so the direct kernel takes that dx.
        // Without subgroups, 3 channels on one side leave the tiled kernels' tiles or
        // reductions mostly idle, and the direct kernels take every pass.
        let choice = planner::plan(gpu, pass, &stem);
        if width.is_none() && !real_gpu {
            assert_eq!(choice.variant, ConvVariant::Direct, "{choice:?}");
            let why = ConvVariant::Subgroup.available(gpu).unwrap_err();
            assert!(
                choice
                    .reason
                    .contains(&format!("no subgroup kernels: {why}")),
                "{choice:?}"
            );
        } else if expected == ConvVariant::Subgroup && pass == ConvPass::InputGrad {
            assert_eq!(choice.variant, ConvVariant::Direct, "{choice:?}");
            assert!(
                choice.reason.contains("3 channels per group, too few"),
                "{choice:?}"
            );
        } else {
            assert_eq!(choice.variant, expected, "{choice:?}");
            assert!(choice.reason.contains(&why), "{choice:?}");
        }
        // One channel per group would leave 15 of 16 tile channels idle: the depthwise
        // kernels, except for a dx whose flipped forward would pad by 2 columns, which goes
        // to the direct kernel, for its channels where subgroups exist, else for want of them.
        let choice = planner::plan(gpu, pass, &depthwise);
        if pass == ConvPass::InputGrad {
            assert_eq!(choice.variant, ConvVariant::Direct, "{choice:?}");
            let why = match ConvVariant::Subgroup.available(gpu) {
                Ok(()) => "1 channels per group".to_string(),
                Err(why) => format!("no subgroup kernels: {why}"),
            };
            assert!(choice.reason.contains(&why), "{choice:?}");
        } else {
            assert_eq!(choice.variant, ConvVariant::Depthwise, "{choice:?}");
            assert!(choice.reason.contains("depthwise"), "{choice:?}");
        }
    }
}

#[test]
fn forcing_a_variant_the_device_cannot_run_is_an_error_not_a_panic() {
    if common::gpu().is_none() {
        return;
    }
    let gpu = Gpu::new().unwrap();
    let x = ndarray::Array4::<f32>::zeros((1, 16, 4, 4));
    let w = ndarray::Array4::<f32>::zeros((16, 16, 1, 1));
    gpu.force_conv_variant(Some(ConvVariant::Subgroup));
    let result = wgconv::conv2d(
        &upload(&gpu, &x, Layout::Nchw),
        &upload(&gpu, &w, Layout::Nchw),
        None,
        &Conv2dParams::default(),
    );
    match ConvVariant::Subgroup.available(&gpu) {
        Ok(()) => assert!(result.is_ok()),
        Err(_) => match result {
            Err(Error::InvalidArgument { what, .. }) => {
                assert!(what.contains("forced variant subgroup"), "{what}")
            }
            other => panic!("expected an error naming the variant, got {other:?}"),
        },
    }
    gpu.force_conv_variant(None);
    assert_eq!(gpu.forced_conv_variant(), None);
}

/// Tuning times the variants on first use, writes the winner to the cache file, and a second
/// device reads it back instead of timing again; a forced variant still wins, and a cache
/// that is not one is an `Err` naming the file.
#[test]
fn tuning_times_once_caches_per_shape_and_reloads() {
    if common::gpu().is_none() {
        return;
    }
    let path = std::env::temp_dir().join(format!("wgconv-tune-test-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    let (input, weight) = ([1, 16, 9, 9], [16, 16, 3, 3]);
    let g = p.geometry("t", input, weight, None).unwrap();

    let gpu = Gpu::new().unwrap();
    gpu.enable_tuning(Some(&path)).unwrap();
    let mut rng = Rng::new(0x7a71_0006);
    let (x, w) = (rng.array4(input), rng.array4(weight));
    let got = wgconv::conv2d(
        &upload(&gpu, &x, Layout::Nchw),
        &upload(&gpu, &w, Layout::Nchw),
        None,
        &p,
    )
    .unwrap()
    .read()
    .unwrap();
    let want = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
    let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
    let r = compare(got.view(), want.view(), &bound);
    assert!(r.passed(), "{r}");

    let text = std::fs::read_to_string(&path).expect("the tuner wrote its cache");
    let cache: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cache["version"], 1);
    let entries = cache["entries"].as_object().unwrap();
    assert_eq!(entries.len(), 1, "one pass of one shape was tuned: {text}");
    let (key, name) = entries.iter().next().unwrap();
    assert!(
        key.contains("|forward|") && key.contains(&gpu.adapter_info().name),
        "{key}"
    );
    let tuned = ConvVariant::from_name(name.as_str().unwrap()).unwrap();
    assert!(tuned.available(&gpu).is_ok());

    let again = Gpu::new().unwrap();
    again.enable_tuning(Some(&path)).unwrap();
    let choice = planner::choose(&again, "t", ConvPass::Forward, &g).unwrap();
    assert_eq!(choice.variant, tuned);
    assert!(choice.reason.contains("tuned earlier"), "{choice:?}");
    again.force_conv_variant(Some(ConvVariant::Direct));
    let choice = planner::choose(&again, "t", ConvPass::Forward, &g).unwrap();
    assert_eq!(choice.variant, ConvVariant::Direct);

    std::fs::write(&path, "{\"version\": 1, \"entries\": {\"k\": \"warp9\"}}").unwrap();
    match Gpu::new().unwrap().enable_tuning(Some(&path)) {
        Err(Error::InvalidArgument { what, .. }) => {
            assert!(
                what.contains("warp9") && what.contains("wgconv-tune-test"),
                "{what}"
            )
        }
        other => panic!("expected a malformed-cache error, got {other:?}"),
    }
    let _ = std::fs::remove_file(&path);
}

/// An infinite weight (forward, dx) or grad_output value (dw) whose taps reach the zero
/// padding: every variant must skip those taps as the CPU reference does, not turn them into
/// `0 * inf = NaN`. The packed and tiled variants multiply zero-padded operands on their
/// fast path, so this checks their masked redo.
#[test]
fn every_variant_skips_padding_taps_of_infinite_operands() {
    for &variant in ConvVariant::ALL {
        let Some(gpu) = gpu_forcing(variant) else {
            continue;
        };
        let mut rng = Rng::new(0x7a71_0009);
        for (input, weight, p) in [
            (
                [1, 8, 6, 7],
                [16, 8, 3, 3],
                Conv2dParams::default().with_padding(Padding::uniform(1)),
            ),
            (
                [2, 5, 9, 8],
                [9, 5, 3, 2],
                Conv2dParams::default()
                    .with_stride(2)
                    .with_padding(Padding::explicit(2, 1, 1, 0)),
            ),
            // More than 16 channels on both sides: packed8's gathers run wide tiles.
            (
                [1, 20, 9, 10],
                [40, 20, 3, 3],
                Conv2dParams::default().with_padding(Padding::uniform(1)),
            ),
            // More than 64 output channels: packed16's second wide tile.
            (
                [1, 36, 9, 10],
                [72, 36, 3, 3],
                Conv2dParams::default().with_padding(Padding::uniform(1)),
            ),
            // 4 output channels: packed8's forward runs few tiles (64 pixels, 9 x 10 here).
            (
                [1, 20, 9, 10],
                [4, 20, 3, 3],
                Conv2dParams::default().with_padding(Padding::uniform(1)),
            ),
        ] {
            let g = p.geometry("t", input, weight, None).unwrap();
            let x = rng.array4(input);
            let mut w = rng.array4(weight);
            w[[3, 2, 0, 1]] = f32::INFINITY;
            if weight[0] > 35 {
                // The last channel of a lane's four, in the second tile of 32.
                w[[35, 7, 2, 2]] = f32::NEG_INFINITY;
            }
            if weight[0] > 67 {
                // The same in the second tile of 64.
                w[[67, 30, 2, 2]] = f32::NEG_INFINITY;
            }
            let mut dy = rng.array4(g.output_shape());
            dy[[0, 4.min(weight[0] - 1), 0, 0]] = f32::NEG_INFINITY;
            let want_y = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
            let got_y = wgconv::conv2d(
                &upload(&gpu, &x, Layout::Nchw),
                &upload(&gpu, &w, Layout::Nchw),
                None,
                &p,
            )
            .unwrap()
            .read()
            .unwrap();
            let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
            let r = compare(got_y.view(), want_y.view(), &bound);
            assert!(r.passed(), "{} forward {p:?}\n{r}", variant.name());
            let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
            let got = conv2d_backward(
                &upload(&gpu, &x, Layout::Nchw),
                &upload(&gpu, &w, Layout::Nchw),
                &upload(&gpu, &dy, Layout::Nchw),
                &p,
                GradSelection::ALL,
            )
            .unwrap();
            let bounds =
                ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                    .unwrap();
            let r = compare(
                got.input.unwrap().read().unwrap().view(),
                want.input.unwrap().view(),
                &bounds.input.unwrap(),
            );
            assert!(r.passed(), "{} dx {p:?}\n{r}", variant.name());
            let r = compare(
                got.weight.unwrap().read().unwrap().view(),
                want.weight.unwrap().view(),
                &bounds.weight.unwrap(),
            );
            assert!(r.passed(), "{} dw {p:?}\n{r}", variant.name());
        }
    }
}

/// Packed operands past the texture limit: the planner passes the packed variant over (and the
/// answer is still the reference's), and that variant forced is `TooLarge`, naming the texture
/// limit.
#[test]
fn packed_textures_past_the_texture_limit_are_passed_over_or_too_large() {
    let Some(gpu) = common::gpu() else { return };
    let Some(packed) = [
        ConvVariant::Packed4,
        ConvVariant::Packed8,
        ConvVariant::Packed16,
    ]
    .into_iter()
    .find(|v| v.available(gpu).is_ok()) else {
        return;
    };
    // 10 x 10 padded pixels of 16 vec4s: a 1600-texel row, past a limit of 512.
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    let g = p
        .geometry("t", [1, 64, 8, 8], [64, 64, 3, 3], None)
        .unwrap();
    let mut rng = Rng::new(0x7a71_000b);
    let (x, w) = (rng.array4([1, 64, 8, 8]), rng.array4([64, 64, 3, 3]));
    let want = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
    let limited = Gpu::new().expect("a second device on the adapter");
    assert_eq!(
        planner::plan(&limited, ConvPass::Forward, &g).variant,
        packed
    );
    limited.limit_texture_dimension(512);
    assert_eq!(limited.max_texture_dimension(), 512);
    let choice = planner::plan(&limited, ConvPass::Forward, &g);
    assert_eq!(choice.variant, ConvVariant::Subgroup, "{choice:?}");
    assert!(choice.reason.contains("texture"), "{choice:?}");
    let run = |gpu: &Gpu| {
        wgconv::conv2d(
            &upload(gpu, &x, Layout::Nchw),
            &upload(gpu, &w, Layout::Nchw),
            None,
            &p,
        )
    };
    let got = run(&limited).unwrap().read().unwrap();
    let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
    let r = compare(got.view(), want.view(), &bound);
    assert!(r.passed(), "{r}");
    limited.force_conv_variant(Some(packed));
    match run(&limited) {
        Err(wgconv::Error::TooLarge { what, .. }) => {
            assert!(what.contains("texture limit of 512"), "{what}")
        }
        other => panic!("expected TooLarge naming the texture limit, got {other:?}"),
    }
}
