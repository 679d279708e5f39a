//! Both max-pooling variants, forced in turn, against the CPU reference (exact forward, backward through GPU and uploaded indices, both layouts and index styles), on shapes where the blocked kernels run often.
//!
//! The blocked kernels are the octet forwards and the plane-scan backward; the shapes also
//! reach their per-element fallbacks.

mod common;

use common::Rng;
use ndarray::Array4;
use wgconv::{
    compare, cpu, max_pool2d, max_pool2d_backward, max_pool2d_with_indices, ErrorBound, Gpu,
    GpuTensor, IndexStyle, Layout, Pool2dParams, PoolVariant,
};

/// A device of its own with `variant` forced (the shared one keeps the default choice).
fn gpu_forcing(variant: PoolVariant) -> Option<Gpu> {
    common::gpu()?;
    let gpu = Gpu::new().expect("a second device on the adapter");
    gpu.force_pool_variant(Some(variant));
    Some(gpu)
}

fn bits(a: &Array4<f32>) -> Vec<u32> {
    // Every NaN compares equal to every NaN; other values bit for bit.
    a.iter()
        .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
        .collect()
}

/// Parameters near the octet kernels' domain (column stride 2, 2 or 3 columns, padding 0 or
/// 1), with any rows, and now and then something outside it.
fn params_near_octets(rng: &mut Rng) -> Pool2dParams {
    let outside = rng.chance(15);
    // 3 columns padded by 1 and 2 by 0 keep out_w = in_w / 2, a multiple of 4 for the widths
    // the sweep draws; the other pairs mostly fall back.
    let (kernel_w, pad_w) = match rng.range(0, 6) {
        0..=2 => (3, 1),
        3 | 4 => (2, 0),
        _ => (rng.range(2, 4), rng.range(0, 2)),
    };
    Pool2dParams {
        kernel: [if rng.chance(10) { 4 } else { rng.range(1, 4) }, kernel_w],
        stride: [rng.range(1, 4), if outside { rng.range(1, 4) } else { 2 }],
        dilation: [rng.range(1, 3), if outside { rng.range(1, 3) } else { 1 }],
        padding: [rng.range(0, 2), pad_w],
        ceil_mode: rng.chance(25),
        layout: if rng.chance(20) {
            Layout::Nhwc
        } else {
            Layout::Nchw
        },
        index_style: if rng.chance(20) {
            IndexStyle::TensorFlow
        } else {
            IndexStyle::PyTorch
        },
    }
}

/// Values from a small set so that ties are common, with an occasional NaN or -inf.
fn tie_heavy(rng: &mut Rng, shape: [usize; 4]) -> Array4<f32> {
    Array4::from_shape_simple_fn(shape, || match rng.range(0, 50) {
        0 => f32::NAN,
        1 => f32::NEG_INFINITY,
        2 => f32::INFINITY,
        k => (k % 7) as f32 - 3.0,
    })
}

/// Runs 150 cases; returns how many took the octet forward, how many of those ended rows with
/// a half-empty octet, how many took its 2x2 form, and how many took the scan backward.
fn sweep(variant: PoolVariant) -> (usize, usize, usize, usize) {
    let Some(gpu) = gpu_forcing(variant) else {
        return (0, 0, 0, 0);
    };
    let mut rng = Rng::new(0x900d_0001 + variant as u64);
    let (mut octets, mut half_octets, mut two_by_two, mut scans) = (0, 0, 0, 0);
    let mut checked = 0;
    while checked < 150 {
        let p = params_near_octets(&mut rng);
        let width = if rng.chance(80) {
            8 * rng.range(1, 5)
        } else {
            4 * rng.range(1, 9)
        };
        let sizes = [rng.range(1, 3), rng.range(1, 4), rng.range(1, 14), width];
        let shape = p.layout.activation_shape(sizes);
        let Ok(g) = p.geometry("t", shape) else {
            continue;
        };
        let x = if rng.chance(50) {
            tie_heavy(&mut rng, shape)
        } else {
            rng.array4(shape)
        };
        let case = format!("case {checked}, {}: {p:?} {shape:?}", variant.name());
        assert_matches_reference(&gpu, &mut rng, &x, &p, shape, &case);

        let kernel = variant.forward_entry_point(&g, true);
        if matches!(
            kernel,
            "max_pool2d_forward_octets_with_indices" | "max_pool2d_forward_octets_2x2_with_indices"
        ) {
            octets += 1;
            half_octets += usize::from(g.w.output % 8 == 4);
            two_by_two += usize::from(kernel == "max_pool2d_forward_octets_2x2_with_indices");
        }
        scans += usize::from(variant.backward_entry_point(&g) == "max_pool2d_backward_scan");
        checked += 1;
    }
    (octets, half_octets, two_by_two, scans)
}

#[test]
fn per_element_kernels_match_the_reference() {
    let counts = sweep(PoolVariant::PerElement);
    assert_eq!(
        counts,
        (0, 0, 0, 0),
        "per-element never takes a blocked kernel"
    );
}

#[test]
fn blocked_kernels_match_the_reference() {
    let (octets, half_octets, two_by_two, scans) = sweep(PoolVariant::Blocked);
    if common::gpu().is_some() {
        // The sweep must exercise the blocked kernels, rows ending in a half-empty octet among
        // them, not only their fallbacks.
        assert!(
            octets >= 30 && half_octets >= 10,
            "only {octets} octet forwards ({half_octets} with a half-empty last octet) in 150 cases"
        );
        assert!(
            two_by_two >= 5 && octets - two_by_two >= 10,
            "{two_by_two} of {octets} octet forwards took the 2x2 form: both forms need cases"
        );
        assert!(
            scans >= 100,
            "only {scans} of 150 cases ran the scan backward"
        );
    }
}

/// The blocked kernels at network sizes (many planes, long rows), where every octet of a row
/// and every plane's scan run together: ResNet's 3x3 s2 p1, VGG's 2x2 s2 on rows of 28
/// outputs (each row ending in a half-empty octet), and 3x3 s2 without padding in ceil mode,
/// the one shape whose windows read the column after a quad's last vec4.
#[test]
fn blocked_kernels_match_the_reference_on_network_poolings() {
    let Some(gpu) = gpu_forcing(PoolVariant::Blocked) else {
        return;
    };
    let mut rng = Rng::new(0x900d_0002);
    let cases = [
        (
            Pool2dParams::new(3, 3).with_stride(2).with_padding(1),
            [2, 24, 40, 64],
            "max_pool2d_forward_octets_with_indices",
        ),
        (
            Pool2dParams::new(2, 2),
            [2, 16, 56, 56],
            "max_pool2d_forward_octets_2x2_with_indices",
        ),
        // 2 columns wide but 3 rows high: the general octets.
        (
            Pool2dParams {
                kernel: [3, 2],
                ..Pool2dParams::new(2, 2)
            },
            [1, 8, 30, 56],
            "max_pool2d_forward_octets_with_indices",
        ),
        (
            Pool2dParams::new(3, 3).with_stride(2).with_ceil_mode(true),
            [1, 8, 20, 64],
            "max_pool2d_forward_octets_with_indices",
        ),
    ];
    for (p, shape, kernel) in cases {
        let g = p.geometry("t", shape).unwrap();
        assert_eq!(
            PoolVariant::Blocked.forward_entry_point(&g, true),
            kernel,
            "{p:?}"
        );
        let x = tie_heavy(&mut rng, shape);
        let (values, indices) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
        let xt = GpuTensor::upload(&gpu, x.view()).unwrap();
        let (v, i) = max_pool2d_with_indices(&xt, &p).unwrap();
        assert_eq!(bits(&v.read().unwrap()), bits(&values), "{p:?}");
        assert_eq!(i.read_indices().unwrap(), indices, "{p:?}");
        let inference = max_pool2d(&xt, &p).unwrap().read().unwrap();
        assert_eq!(bits(&inference), bits(&values), "{p:?}");
        let dy = rng.array4(values.dim().into());
        let want = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
        let got = max_pool2d_backward(&GpuTensor::upload(&gpu, dy.view()).unwrap(), &i, shape, &p)
            .unwrap()
            .read()
            .unwrap();
        let bound = ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
        let r = compare(got.view(), want.view(), &bound);
        assert!(r.passed(), "{p:?}\n{r}");
    }
}

/// Ceil-mode parameters on small inputs, so that a window is often wider than the padded input
/// (PyTorch keeps one clipped window where the rounded-up size is at least 1); about a third
/// shaped for the octet kernels, whose windows then overhang the rows only.
fn small_ceil_case(rng: &mut Rng) -> (Pool2dParams, [usize; 4]) {
    let octet_shaped = rng.chance(35);
    let kernel = [rng.range(1, 5), rng.range(1, 5)];
    let dilation = [rng.range(1, 3), rng.range(1, 3)];
    let mut p = Pool2dParams {
        kernel,
        stride: [rng.range(1, 5), rng.range(1, 5)],
        dilation,
        // Up to half the effective kernel, PyTorch's limit.
        padding: [0, 1].map(|a| {
            let effective = dilation[a] * (kernel[a] - 1) + 1;
            rng.range(0, effective / 2)
        }),
        ceil_mode: true,
        layout: if rng.chance(40) {
            Layout::Nhwc
        } else {
            Layout::Nchw
        },
        index_style: IndexStyle::PyTorch,
    };
    let mut sizes = [
        rng.range(1, 2),
        rng.range(1, 3),
        rng.range(1, 5),
        rng.range(1, 5),
    ];
    if octet_shaped {
        // Without left padding, so that ceil mode keeps out_w = in_w / 2 (a multiple of 4).
        p.kernel = [rng.range(2, 3), rng.range(2, 3)];
        p.stride = [rng.range(2, 4), 2];
        p.dilation = [1, 1];
        p.padding = [rng.range(0, 1), 0];
        p.layout = Layout::Nchw;
        sizes[2] = rng.range(1, 2);
        sizes[3] = 8 * rng.range(1, 2);
    }
    if p.layout == Layout::Nhwc && rng.chance(30) {
        p.index_style = IndexStyle::TensorFlow;
    }
    (p, p.layout.activation_shape(sizes))
}

/// Whether some window of `p` on `shape` spans more than the padded input.
fn window_wider_than_padded_input(p: &Pool2dParams, shape: [usize; 4]) -> bool {
    let [_, _, h, w] = p.layout.logical_activation(shape);
    [(0, h), (1, w)]
        .into_iter()
        .any(|(a, extent)| p.dilation[a] * (p.kernel[a] - 1) + 1 > extent + 2 * p.padding[a])
}

/// Ceil-mode cases with windows wider than the padded input, forced through `variant`:
/// forward values and indices, inference, backward through the GPU's and through uploaded
/// indices, all against the CPU reference. Returns how many cases had such a window and how
/// many of those took an octet forward.
fn ceil_sweep(variant: PoolVariant) -> (usize, usize) {
    let Some(gpu) = gpu_forcing(variant) else {
        return (0, 0);
    };
    let mut rng = Rng::new(0x900d_0003 + variant as u64);
    let (mut oversized, mut oversized_octets) = (0, 0);
    for case in 0..200 {
        let (p, shape) = small_ceil_case(&mut rng);
        let Ok(g) = p.geometry("t", shape) else {
            continue;
        };
        let case = format!("case {case}, {}: {p:?} {shape:?}", variant.name());
        let x = tie_heavy(&mut rng, shape);
        assert_matches_reference(&gpu, &mut rng, &x, &p, shape, &case);

        if window_wider_than_padded_input(&p, shape) {
            oversized += 1;
            oversized_octets += usize::from(
                variant
                    .forward_entry_point(&g, true)
                    .starts_with("max_pool2d_forward_octets"),
            );
        }
    }
    (oversized, oversized_octets)
}

#[test]
fn ceil_mode_windows_wider_than_the_padded_input_match_the_reference() {
    let (per_element, _) = ceil_sweep(PoolVariant::PerElement);
    let (blocked, blocked_octets) = ceil_sweep(PoolVariant::Blocked);
    if common::gpu().is_some() {
        // The sweep must really reach the clipped windows, in the octet kernels too.
        assert!(
            per_element >= 30 && blocked >= 30,
            "only {per_element} and {blocked} of 200 cases had a window wider than the padded input"
        );
        assert!(
            blocked_octets >= 15,
            "only {blocked_octets} such cases took an octet forward"
        );
    }
}

/// One pooling case on `gpu` against the CPU reference: forward values (bitwise) and indices,
/// inference values, and the backward through the GPU's and through uploaded indices, each
/// within its error bound.
fn assert_matches_reference(
    gpu: &Gpu,
    rng: &mut Rng,
    x: &Array4<f32>,
    p: &Pool2dParams,
    shape: [usize; 4],
    case: &str,
) {
    let (values, indices) = cpu::max_pool2d_with_indices(x.view(), p).unwrap();
    let xt = GpuTensor::upload_with_layout(gpu, x.view(), p.layout).unwrap();
    let (v, i) = max_pool2d_with_indices(&xt, p).unwrap();
    assert_eq!(bits(&v.read().unwrap()), bits(&values), "values, {case}");
    assert_eq!(i.read_indices().unwrap(), indices, "indices, {case}");
    let inference = max_pool2d(&xt, p).unwrap().read().unwrap();
    assert_eq!(bits(&inference), bits(&values), "inference values, {case}");

    let dy = rng.array4(values.dim().into());
    let want = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, p).unwrap();
    let dyt = GpuTensor::upload_with_layout(gpu, dy.view(), p.layout).unwrap();
    let bound = ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, p).unwrap();
    let got = max_pool2d_backward(&dyt, &i, shape, p).unwrap();
    let r = compare(got.read().unwrap().view(), want.view(), &bound);
    assert!(r.passed(), "backward through GPU indices, {case}\n{r}");
    let uploaded = GpuTensor::upload_indices(gpu, indices.view(), p.layout).unwrap();
    let got = max_pool2d_backward(&dyt, &uploaded, shape, p).unwrap();
    let r = compare(got.read().unwrap().view(), want.view(), &bound);
    assert!(r.passed(), "backward through uploaded indices, {case}\n{r}");
}
