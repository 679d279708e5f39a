//! The depthwise variant forced, on depthwise layers drawn so that its quad kernel runs often
//! (and its direct fallback too): forward with bias and activations, dx, dw, db and
//! conv_transpose2d against the CPU reference at the usual tolerance, flips, asymmetric
//! padding, channel multipliers, and infinite weights meeting the padding.

mod common;

use common::Rng;
use ndarray::Array4;
use wgconv::gpu::conv2d::{
    depthwise_forward_fits, depthwise_input_grad_fits, depthwise_rows_per_invocation,
    DepthwiseLanes,
};
use wgconv::ConvVariant;
use wgconv::{
    compare, conv2d_backward, conv2d_with_activation, cpu, Activation, Conv2dParams,
    ConvTranspose2dParams, ErrorBound, Gpu, GpuTensor, GradSelection, Layout, Padding,
};

/// A device forcing the depthwise variant, its kernels laying lanes out in `lanes` order: every
/// driver here is a CPU driver, so the GPU order runs only when forced.
fn gpu_forcing_depthwise(lanes: DepthwiseLanes) -> Option<Gpu> {
    common::gpu()?;
    let gpu = Gpu::new().expect("a second device on the adapter");
    gpu.force_conv_variant(Some(ConvVariant::Depthwise));
    gpu.force_depthwise_lanes(Some(lanes));
    Some(gpu)
}

const BOTH_ORDERS: [DepthwiseLanes; 2] = [DepthwiseLanes::Contiguous, DepthwiseLanes::Channels];

/// A depthwise layer near the quad kernel's domain: NCHW, up to 3x3, column stride 1 or 2,
/// left padding 0 or 1, widths of whole and short last quads; sometimes a multiplier of 2, a
/// flip, NHWC or a dilated row, and now and then something outside (5 columns, stride 3).
fn depthwise_case(rng: &mut Rng) -> (Conv2dParams, [usize; 4], [usize; 4]) {
    let channels = rng.range(1, 4);
    let multiplier = if rng.chance(20) { 2 } else { 1 };
    let outside = rng.chance(10);
    let kernel = [rng.range(1, 3), if outside { 5 } else { rng.range(1, 3) }];
    let stride_w = if outside { 3 } else { rng.range(1, 2) };
    // Mostly "same"-like column padding (k - 1 in all), otherwise anything up to 1 a side.
    let pad = |k: usize, rng: &mut Rng| rng.range(0, (k - 1).min(1));
    let (left, right) = if rng.chance(70) {
        let left = rng.range(0, (kernel[1] - 1).min(1));
        (left, kernel[1] - 1 - left)
    } else {
        (pad(kernel[1], rng), pad(kernel[1], rng))
    };
    let padding = Padding::Explicit {
        top: pad(kernel[0], rng),
        bottom: pad(kernel[0], rng),
        left,
        right,
    };
    let width = if rng.chance(80) {
        8 * rng.range(1, 4)
    } else {
        rng.range(3, 19)
    };
    let params = Conv2dParams::default()
        .with_stride_hw(rng.range(1, 2), stride_w)
        .with_dilation_hw(rng.range(1, 2), 1)
        .with_padding(padding)
        .with_groups(channels)
        .with_flip(rng.chance(25))
        .with_layout(if rng.chance(15) {
            Layout::Nhwc
        } else {
            Layout::Nchw
        });
    let input = [rng.range(1, 2), channels, rng.range(1, 11), width];
    let weight = [channels * multiplier, 1, kernel[0], kernel[1]];
    (params, input, weight)
}

fn upload(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> GpuTensor {
    GpuTensor::upload_with_layout(gpu, a.view(), layout).unwrap()
}

#[test]
fn depthwise_variant_matches_the_reference_on_depthwise_layers() {
    let Some(gpu) = gpu_forcing_depthwise(DepthwiseLanes::Contiguous) else {
        return;
    };
    let gpu = &gpu;
    let mut rng = Rng::new(0xde97_0001);
    let (mut forward_quads, mut dx_quads, mut checked) = (0, 0, 0);
    while checked < 160 {
        // Both lane orders, case by case.
        gpu.force_depthwise_lanes(Some(BOTH_ORDERS[checked % 2]));
        let (p, sizes, weight_sizes) = depthwise_case(&mut rng);
        let layout = p.layout;
        let input = layout.activation_shape(sizes);
        let weight = layout.weight_shape(weight_sizes);
        let Ok(g) = p.geometry("t", input, weight, None) else {
            continue;
        };
        let x = rng.array4(input);
        let mut w = rng.array4(weight);
        if rng.chance(10) {
            // An infinite weight: outputs whose tap meets it in the padding stay finite.
            w[[0, 0, 0, 0]] = f32::INFINITY;
        }
        let b = rng.array1(g.out_channels);
        let what =
            |pass: &str| format!("case {checked} {pass}: {p:?} input {input:?} weight {weight:?}");
        let activation = [Activation::None, Activation::Relu, Activation::Tanh][checked % 3];
        common::assert_forward_matches_reference(gpu, &x, &w, &b, &p, activation, &what);

        let dy = rng.array4(g.output_shape());
        common::assert_backward_matches_reference(gpu, &x, &w, &dy, &p, &what);

        // conv_transpose2d runs the input-gradient plan, with a bias.
        let Padding::Explicit { top, left, .. } = p.padding else {
            unreachable!("the cases pad explicitly")
        };
        let tp = ConvTranspose2dParams {
            stride: p.stride,
            padding: p.padding,
            output_padding: [0, 0],
            dilation: p.dilation,
            groups: p.groups,
            layout,
            flip: p.flip,
        };
        if tp
            .geometry("t", g.output_shape(), weight, Some(g.in_channels))
            .is_ok()
        {
            let tb = rng.array1(g.in_channels);
            let what = |pass: &str| format!("{} (padding {top}, {left})", what(pass));
            common::assert_transpose_matches_reference(gpu, &dy, &w, &tb, &tp, &what);
        }

        forward_quads += usize::from(depthwise_forward_fits(&g));
        dx_quads += usize::from(depthwise_input_grad_fits(&g));
        checked += 1;
    }
    // The sweep must run the quad kernel for both passes, not only the fallback.
    assert!(
        forward_quads >= 40,
        "only {forward_quads} forward cases ran the quad kernel"
    );
    assert!(
        dx_quads >= 15,
        "only {dx_quads} dx cases ran the quad kernel"
    );
}

/// A MobileNet-like layer: many planes and long rows, where every quad of a row runs at once.
#[test]
fn depthwise_variant_matches_the_reference_on_a_mobilenet_layer() {
    let Some(gpu) = gpu_forcing_depthwise(DepthwiseLanes::Contiguous) else {
        return;
    };
    let mut rng = Rng::new(0xde97_0002);
    for (stride, lanes) in [1, 2].into_iter().flat_map(|s| BOTH_ORDERS.map(|l| (s, l))) {
        gpu.force_depthwise_lanes(Some(lanes));
        let p = Conv2dParams::default()
            .with_stride(stride)
            .with_padding(Padding::Explicit {
                top: 1,
                bottom: 1,
                left: 1,
                right: 1,
            })
            .with_groups(24);
        let x = rng.array4([2, 24, 32, 32]);
        let w = rng.array4([24, 1, 3, 3]);
        let g = p
            .geometry("t", [2, 24, 32, 32], [24, 1, 3, 3], None)
            .unwrap();
        assert!(depthwise_forward_fits(&g));
        let want =
            cpu::conv2d_with_activation(x.view(), w.view(), None, &p, Activation::Relu).unwrap();
        let got = conv2d_with_activation(
            &upload(&gpu, &x, Layout::Nchw),
            &upload(&gpu, &w, Layout::Nchw),
            None,
            &p,
            Activation::Relu,
        )
        .unwrap()
        .read()
        .unwrap();
        let bound =
            ErrorBound::conv2d_with_activation(x.view(), w.view(), None, &p, Activation::Relu)
                .unwrap();
        let r = compare(got.view(), want.view(), &bound);
        assert!(r.passed(), "stride {stride} {lanes:?}\n{r}");

        // Both gradients: dx by the flipped forward (reading grad_output with zeros inserted
        // at stride 2), dw by
        // the depthwise split-K kernel over 2 x 32 / stride rows.
        let dy = rng.array4(g.output_shape());
        let want =
            cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
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
        assert!(r.passed(), "dx, stride {stride} {lanes:?}\n{r}");
        let r = compare(
            got.weight.unwrap().read().unwrap().view(),
            want.weight.unwrap().view(),
            &bounds.weight.unwrap(),
        );
        assert!(r.passed(), "dw, stride {stride} {lanes:?}\n{r}");
    }
}

/// A layer large enough that each forward invocation walks 8 or more output rows, with a short last
/// run (60 rows), in both layouts: the runs of rows, the lanes along the contiguous dimension
/// (NCHW columns, NHWC channels) and dw's partial sums per quad column, against the reference.
#[test]
fn depthwise_variant_walks_runs_of_rows_in_both_layouts() {
    let Some(gpu) = gpu_forcing_depthwise(DepthwiseLanes::Contiguous) else {
        return;
    };
    let mut rng = Rng::new(0xde97_0003);
    // NCHW in the GPU order (lanes along the quads of a row, dw one quad per invocation), NHWC
    // in the CPU order (lanes along channels, dw over whole rows); the random layers above
    // take every other pairing.
    for (layout, lanes) in [
        (Layout::Nchw, DepthwiseLanes::Contiguous),
        (Layout::Nhwc, DepthwiseLanes::Channels),
    ] {
        gpu.force_depthwise_lanes(Some(lanes));
        let p = Conv2dParams::default()
            .with_padding(Padding::symmetric(1, 1))
            .with_groups(64)
            .with_layout(layout);
        let input = layout.activation_shape([1, 64, 60, 128]);
        let weight = layout.weight_shape([64, 1, 3, 3]);
        let g = p.geometry("t", input, weight, None).unwrap();
        assert!(depthwise_forward_fits(&g) && depthwise_input_grad_fits(&g));
        let rows = depthwise_rows_per_invocation(&g);
        assert!(rows >= 8, "{layout:?}: {rows} rows per invocation");
        assert_ne!(
            g.h.output % rows,
            0,
            "{layout:?}: the last run must be short"
        );
        let x = rng.array4(input);
        let w = rng.array4(weight);
        let b = rng.array1(64);
        let what = |pass: &str| format!("{layout:?} {lanes:?} {pass}");
        common::assert_forward_matches_reference(&gpu, &x, &w, &b, &p, Activation::Relu, &what);
        let dy = rng.array4(g.output_shape());
        common::assert_backward_matches_reference(&gpu, &x, &w, &dy, &p, &what);
    }
}
