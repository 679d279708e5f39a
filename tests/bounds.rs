//! No kernel reads or writes past the end of a tensor: every op, under every kernel variant the adapter runs, on tensors whose buffers hold NaN past their end, gives the CPU reference's answer and leaves the bytes past its outputs' ends as they were.
//!
//! A pooled buffer is larger than its tensor (its size class) and is bound whole, so a kernel
//! that reads past a tensor's end reads whatever an earlier op left there, and one that writes
//! past it may overwrite what a later op reads. On lavapipe the bindings are robust (reads past
//! a binding give 0, writes are dropped), which hides such bugs; SwiftShader clamps the index
//! to the binding's last element instead, so they corrupt results there. Poisoning the bytes
//! past each tensor's end makes them visible on every driver: a read that reaches a result
//! turns it into NaN, a write changes the poison.

mod common;

use ndarray::{Array1, Array4};
use wgconv::{
    activation_backward, compare, conv2d_backward, conv2d_with_activation, conv_transpose2d, cpu,
    max_pool2d, max_pool2d_backward, max_pool2d_with_indices, Activation, Conv2dParams,
    ConvTranspose2dParams, ConvVariant, ErrorBound, Gpu, GpuTensor, GradSelection, Layout, Padding,
    Pool2dParams, PoolVariant, SavedTensor,
};

/// What the bytes past a tensor's end hold: a quiet NaN with a payload no op computes.
const POISON: u32 = 0x7fc0_dead;

/// The whole buffer of a single-buffer tensor, as 32-bit words.
fn buffer_words(t: &GpuTensor) -> Vec<u32> {
    let gpu = t.gpu();
    let buffer = t.buffer().expect("a single-buffer tensor");
    let staging = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("bounds readback"),
        size: buffer.size(),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu
        .device()
        .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
    encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, buffer.size());
    gpu.queue().submit([encoder.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.unwrap());
    gpu.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let words = bytemuck::cast_slice(&staging.slice(..).get_mapped_range().unwrap()).to_vec();
    words
}

/// The words past the end of `t` in its buffer, asserting there are some (the shapes here are
/// chosen so that no tensor fills its size class).
fn slack(what: &str, t: &GpuTensor) -> Vec<u32> {
    let words = buffer_words(t);
    let len = (t.byte_size() / 4) as usize;
    assert!(
        words.len() > len,
        "{what}: {len} elements fill their buffer, nothing to check past them"
    );
    words[len..].to_vec()
}

/// Asserts that the bytes past the end of `t` still hold the poison: nothing wrote there, and
/// `t` took a poisoned buffer (a fresh one would hold zeros).
fn assert_untouched(what: &str, t: &GpuTensor) {
    let past = slack(what, t);
    let changed: Vec<(usize, u32)> = past
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, w)| w != POISON)
        .collect();
    assert!(
        changed.is_empty(),
        "{what}: {} of the {} words past the end changed (offset past the end, bits): {:?}",
        changed.len(),
        past.len(),
        &changed[..changed.len().min(8)]
    );
}

/// Leaves `count` buffers of the size class of a tensor of `elements` f32s in the pool, each
/// holding the poison throughout: the next tensors of that size class take them (the pool
/// hands out the most recently returned first).
fn poison_pool(gpu: &Gpu, elements: usize, count: usize) {
    let probe = GpuTensor::upload_1d(gpu, Array1::zeros(elements).view()).unwrap();
    let class = probe.buffer().unwrap().size() as usize / 4;
    drop(probe);
    let poison = Array1::from_elem(class, f32::from_bits(POISON));
    let held: Vec<GpuTensor> = (0..count)
        .map(|_| GpuTensor::upload_1d(gpu, poison.view()).unwrap())
        .collect();
    drop(held);
}

/// Uploads `a` into a buffer whose bytes past the tensor hold the poison.
fn upload(gpu: &Gpu, a: &Array4<f32>, layout: Layout) -> GpuTensor {
    poison_pool(gpu, a.len(), 1);
    let t = GpuTensor::upload_with_layout(gpu, a.view(), layout).unwrap();
    assert!(slack("input", &t).iter().all(|&w| w == POISON));
    t
}

fn upload_1d(gpu: &Gpu, a: &Array1<f32>) -> GpuTensor {
    poison_pool(gpu, a.len(), 1);
    GpuTensor::upload_1d(gpu, a.view()).unwrap()
}

/// Poisons enough buffers of each output's size class that every buffer of that class an op
/// takes (outputs, and temporaries that happen to share the class) is poisoned.
fn poison_outputs(gpu: &Gpu, shapes: &[[usize; 4]]) {
    for s in shapes {
        poison_pool(gpu, s.iter().product(), 8);
    }
}

fn bits(a: &Array4<f32>) -> Vec<u32> {
    a.iter()
        .map(|v| if v.is_nan() { u32::MAX } else { v.to_bits() })
        .collect()
}

/// Max pooling shapes that reach every blocked kernel and its per-element fallback: octets
/// whose rows end in a full octet (out_w a multiple of 8) over several rows, rows ending in a
/// half-empty octet, the 2x2 form, the column after a quad's last vec4 (3x3 without padding in
/// ceil mode), and NHWC.
fn pool_cases() -> Vec<([usize; 4], Pool2dParams)> {
    vec![
        (
            [1, 3, 7, 16],
            Pool2dParams::new(3, 3).with_stride(2).with_padding(1),
        ),
        ([2, 3, 10, 24], Pool2dParams::new(2, 2)),
        (
            [1, 3, 9, 16],
            Pool2dParams::new(3, 3).with_stride(2).with_ceil_mode(true),
        ),
        (
            [2, 5, 9, 16],
            Pool2dParams::new(3, 3)
                .with_stride(2)
                .with_padding(1)
                .with_layout(Layout::Nhwc),
        ),
    ]
}

#[test]
fn pooling_stays_inside_its_tensors() {
    if common::gpu().is_none() {
        return;
    }
    let mut rng = common::Rng::new(0xb0_0001);
    for variant in [PoolVariant::PerElement, PoolVariant::Blocked] {
        // A device of its own: the poisoned pool must not be shared with other tests.
        let gpu = &Gpu::new().unwrap();
        gpu.force_pool_variant(Some(variant));
        for (sizes, p) in pool_cases() {
            let shape = p.layout.activation_shape(sizes);
            let g = p.geometry("t", shape).unwrap();
            let what = format!(
                "{} ({}): {p:?} {shape:?}",
                variant.name(),
                variant.forward_entry_point(&g, true)
            );
            let x = rng.array4(shape);
            let (values, indices) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
            let xt = upload(gpu, &x, p.layout);

            poison_outputs(gpu, &[g.output_shape()]);
            let (v, i) = max_pool2d_with_indices(&xt, &p).unwrap();
            assert_eq!(bits(&v.read().unwrap()), bits(&values), "values, {what}");
            assert_eq!(i.read_indices().unwrap(), indices, "indices, {what}");
            assert_untouched(&format!("values, {what}"), &v);
            assert_untouched(&format!("indices, {what}"), &i);

            poison_outputs(gpu, &[g.output_shape()]);
            let inference = max_pool2d(&xt, &p).unwrap();
            assert_eq!(bits(&inference.read().unwrap()), bits(&values), "{what}");
            assert_untouched(&format!("inference values, {what}"), &inference);

            let dy = rng.array4(g.output_shape());
            let want = cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
            let dyt = upload(gpu, &dy, p.layout);
            poison_outputs(gpu, &[shape]);
            let dx = max_pool2d_backward(&dyt, &i, shape, &p).unwrap();
            let bound =
                ErrorBound::max_pool2d_backward(dy.view(), indices.view(), shape, &p).unwrap();
            let r = compare(dx.read().unwrap().view(), want.view(), &bound);
            assert!(r.passed(), "backward, {what}\n{r}");
            assert_untouched(&format!("grad_input, {what}"), &dx);
        }
    }
}

/// Conv geometries (input, weight, params) whose tensors leave room past their ends, reaching
/// the direct, depthwise and GEMM kernels' tile tails.
fn conv_cases() -> Vec<([usize; 4], [usize; 4], Conv2dParams)> {
    vec![
        (
            [2, 5, 7, 9],
            [6, 5, 3, 3],
            Conv2dParams::default().with_padding(Padding::uniform(1)),
        ),
        (
            [1, 9, 11, 6],
            [18, 3, 3, 2],
            Conv2dParams::default()
                .with_groups(3)
                .with_stride(2)
                .with_padding(Padding::explicit(1, 0, 0, 1)),
        ),
        (
            [1, 4, 9, 10],
            [8, 1, 3, 3],
            Conv2dParams::default()
                .with_groups(4)
                .with_stride(2)
                .with_padding(Padding::uniform(1)),
        ),
        (
            [2, 17, 5, 6],
            [3, 17, 1, 1],
            Conv2dParams::default().with_layout(Layout::Nhwc),
        ),
        // 1x1 layers the tiled variant reads in place: the last channel's clamped rereads,
        // and an NHWC source bound as its own vec4s.
        (
            [1, 6, 7, 5],
            [5, 6, 1, 1],
            Conv2dParams::default().with_stride(2),
        ),
        (
            [2, 8, 3, 5],
            [4, 8, 1, 1],
            Conv2dParams::default().with_layout(Layout::Nhwc),
        ),
    ]
}

#[test]
fn conv2d_and_its_gradients_stay_inside_their_tensors() {
    if common::gpu().is_none() {
        return;
    }
    let mut rng = common::Rng::new(0xb0_0002);
    for &variant in ConvVariant::ALL {
        let gpu = &Gpu::new().unwrap();
        if !common::check_availability(gpu, variant) {
            continue;
        }
        gpu.force_conv_variant(Some(variant));
        for (input, weight, p) in conv_cases() {
            let layout = p.layout;
            let (input, weight) = (layout.activation_shape(input), layout.weight_shape(weight));
            let g = p.geometry("t", input, weight, None).unwrap();
            let what = format!(
                "{}: {p:?} input {input:?} weight {weight:?}",
                variant.name()
            );
            let (x, w, b) = (
                rng.array4(input),
                rng.array4(weight),
                rng.array1(g.out_channels),
            );
            let (xt, wt, bt) = (
                upload(gpu, &x, layout),
                upload(gpu, &w, layout),
                upload_1d(gpu, &b),
            );

            let want = cpu::conv2d_with_activation(
                x.view(),
                w.view(),
                Some(b.view()),
                &p,
                Activation::Relu,
            )
            .unwrap();
            poison_outputs(gpu, &[g.output_shape()]);
            let y = conv2d_with_activation(&xt, &wt, Some(&bt), &p, Activation::Relu).unwrap();
            let bound = ErrorBound::conv2d_with_activation(
                x.view(),
                w.view(),
                Some(b.view()),
                &p,
                Activation::Relu,
            )
            .unwrap();
            let r = compare(y.read().unwrap().view(), want.view(), &bound);
            assert!(r.passed(), "forward, {what}\n{r}");
            assert_untouched(&format!("output, {what}"), &y);

            let dy = rng.array4(g.output_shape());
            let dyt = upload(gpu, &dy, layout);
            let want = cpu::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                .unwrap();
            poison_outputs(gpu, &[input, weight, [1, 1, 1, g.out_channels]]);
            let got = conv2d_backward(&xt, &wt, &dyt, &p, GradSelection::ALL).unwrap();
            let bounds =
                ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL)
                    .unwrap();
            let (dx, dw, db) = (got.input.unwrap(), got.weight.unwrap(), got.bias.unwrap());
            let r = compare(
                dx.read().unwrap().view(),
                want.input.unwrap().view(),
                &bounds.input.unwrap(),
            );
            assert!(r.passed(), "dx, {what}\n{r}");
            let r = compare(
                dw.read().unwrap().view(),
                want.weight.unwrap().view(),
                &bounds.weight.unwrap(),
            );
            assert!(r.passed(), "dw, {what}\n{r}");
            let r = compare(
                db.read_1d().unwrap().view(),
                want.bias.unwrap().view(),
                &bounds.bias.unwrap(),
            );
            assert!(r.passed(), "db, {what}\n{r}");
            assert_untouched(&format!("dx, {what}"), &dx);
            assert_untouched(&format!("dw, {what}"), &dw);
            assert_untouched(&format!("db, {what}"), &db);

            // The transposed convolution of grad_output: conv2d's geometry read backwards.
            let tp = ConvTranspose2dParams {
                stride: p.stride,
                padding: p.padding,
                output_padding: [0, 0],
                dilation: p.dilation,
                groups: p.groups,
                layout,
                flip: p.flip,
            };
            let tb = rng.array1(g.in_channels);
            let tbt = upload_1d(gpu, &tb);
            let want = cpu::conv_transpose2d(dy.view(), w.view(), Some(tb.view()), &tp).unwrap();
            poison_outputs(gpu, &[want.dim().into()]);
            let got = conv_transpose2d(&dyt, &wt, Some(&tbt), &tp).unwrap();
            let bound =
                ErrorBound::conv_transpose2d(dy.view(), w.view(), Some(tb.view()), &tp).unwrap();
            let r = compare(got.read().unwrap().view(), want.view(), &bound);
            assert!(r.passed(), "conv_transpose2d, {what}\n{r}");
            assert_untouched(&format!("conv_transpose2d, {what}"), &got);
        }
    }
}

#[test]
fn activation_backward_stays_inside_its_tensors() {
    if common::gpu().is_none() {
        return;
    }
    let gpu = &Gpu::new().unwrap();
    let mut rng = common::Rng::new(0xb0_0003);
    let shape = [2, 3, 5, 7];
    let (dy, z) = (rng.array4(shape), rng.array4(shape));
    let a = Activation::Tanh;
    let want =
        cpu::activation_backward(dy.view(), z.view(), a, SavedTensor::PreActivation).unwrap();
    let (dyt, zt) = (
        upload(gpu, &dy, Layout::Nchw),
        upload(gpu, &z, Layout::Nchw),
    );
    poison_outputs(gpu, &[shape]);
    let dx = activation_backward(&dyt, &zt, a, SavedTensor::PreActivation).unwrap();
    let bound = ErrorBound::activation_backward(dy.view(), a, SavedTensor::PreActivation);
    let r = compare(dx.read().unwrap().view(), want.view(), &bound);
    assert!(r.passed(), "{r}");
    assert_untouched("activation_backward", &dx);
}
