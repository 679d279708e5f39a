//! The buffer pool: every op, run a second time with the same shapes, creates no new buffer, and its results (in reused, stale buffers) still equal the CPU reference.

mod common;

use ndarray::Array4;
use wgconv::ConvVariant;
use wgconv::{
    activation_backward, compare, conv2d_backward, conv2d_backward_bias, conv2d_backward_input,
    conv2d_backward_weight, conv2d_with_activation, conv_transpose2d, cpu, max_pool2d,
    max_pool2d_backward, max_pool2d_with_indices, Activation, Conv2dParams, ConvTranspose2dParams,
    Error, ErrorBound, Gpu, GpuTensor, GradSelection, Layout, Padding, Pool2dParams, SavedTensor,
};

/// Deterministic values that differ with `seed`, so a stale buffer would show.
fn data(shape: [usize; 4], seed: u64) -> Array4<f32> {
    let mut rng = common::Rng::new(seed);
    rng.array4(shape)
}

fn up(gpu: &Gpu, a: &Array4<f32>) -> GpuTensor {
    GpuTensor::upload(gpu, a.view()).unwrap()
}

fn assert_close<D: ndarray::Dimension>(
    what: &str,
    got: &ndarray::Array<f32, D>,
    want: &ndarray::Array<f32, D>,
    bound: &ErrorBound<D>,
) {
    let r = compare(got.view(), want.view(), bound);
    assert!(r.passed(), "{what}: {r}");
}

/// One call of an op on data from `seed`: upload, run, read back, check against the CPU
/// reference; everything is dropped on return, as in a training loop.
type Op = fn(&Gpu, u64);

fn conv(gpu: &Gpu, seed: u64) {
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    let (x, w) = (data([2, 8, 9, 9], seed), data([16, 8, 3, 3], seed + 1));
    let b = ndarray::Array1::from_elem(16, 0.5f32);
    let bt = GpuTensor::upload_1d(gpu, b.view()).unwrap();
    let got = conv2d_with_activation(&up(gpu, &x), &up(gpu, &w), Some(&bt), &p, Activation::Relu)
        .unwrap()
        .read()
        .unwrap();
    let want =
        cpu::conv2d_with_activation(x.view(), w.view(), Some(b.view()), &p, Activation::Relu)
            .unwrap();
    let bound = ErrorBound::conv2d_with_activation(
        x.view(),
        w.view(),
        Some(b.view()),
        &p,
        Activation::Relu,
    )
    .unwrap();
    assert_close("conv2d_with_activation", &got, &want, &bound);
}

fn backward_all(gpu: &Gpu, seed: u64) {
    let p = Conv2dParams::default().with_stride(2);
    let (x, w, dy) = (
        data([2, 8, 9, 9], seed),
        data([16, 8, 3, 3], seed + 1),
        data([2, 16, 4, 4], seed + 2),
    );
    let grads = conv2d_backward(
        &up(gpu, &x),
        &up(gpu, &w),
        &up(gpu, &dy),
        &p,
        GradSelection::ALL,
    )
    .unwrap();
    let dx = grads.input.unwrap().read().unwrap();
    let dw = grads.weight.unwrap().read().unwrap();
    let db = grads.bias.unwrap().read_1d().unwrap();
    let want_dx = cpu::conv2d_backward_input([2, 8, 9, 9], w.view(), dy.view(), &p).unwrap();
    let want_dw = cpu::conv2d_backward_weight(x.view(), [16, 8, 3, 3], dy.view(), &p).unwrap();
    let want_db = cpu::conv2d_backward_bias(dy.view(), Layout::Nchw).unwrap();
    let bounds =
        ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
    assert_close("dx", &dx, &want_dx, &bounds.input.unwrap());
    assert_close("dw", &dw, &want_dw, &bounds.weight.unwrap());
    assert_close("db", &db, &want_db, &bounds.bias.unwrap());
}

fn backward_each(gpu: &Gpu, seed: u64) {
    let p = Conv2dParams::default().with_padding(Padding::Same);
    let (x, w, dy) = (
        data([1, 4, 7, 7], seed),
        data([8, 4, 3, 3], seed + 1),
        data([1, 8, 7, 7], seed + 2),
    );
    let dx = conv2d_backward_input([1, 4, 7, 7], &up(gpu, &w), &up(gpu, &dy), &p)
        .unwrap()
        .read()
        .unwrap();
    let dw = conv2d_backward_weight(&up(gpu, &x), [8, 4, 3, 3], &up(gpu, &dy), &p)
        .unwrap()
        .read()
        .unwrap();
    let db = conv2d_backward_bias(&up(gpu, &dy), Layout::Nchw)
        .unwrap()
        .read_1d()
        .unwrap();
    let want_dx = cpu::conv2d_backward_input([1, 4, 7, 7], w.view(), dy.view(), &p).unwrap();
    let want_dw = cpu::conv2d_backward_weight(x.view(), [8, 4, 3, 3], dy.view(), &p).unwrap();
    let want_db = cpu::conv2d_backward_bias(dy.view(), Layout::Nchw).unwrap();
    let bounds =
        ErrorBound::conv2d_backward(x.view(), w.view(), dy.view(), &p, GradSelection::ALL).unwrap();
    assert_close(
        "conv2d_backward_input",
        &dx,
        &want_dx,
        &bounds.input.unwrap(),
    );
    assert_close(
        "conv2d_backward_weight",
        &dw,
        &want_dw,
        &bounds.weight.unwrap(),
    );
    assert_close("conv2d_backward_bias", &db, &want_db, &bounds.bias.unwrap());
}

fn transpose(gpu: &Gpu, seed: u64) {
    let p = ConvTranspose2dParams::default().with_stride(2);
    let (x, w) = (data([1, 8, 5, 5], seed), data([8, 4, 3, 3], seed + 1));
    let got = conv_transpose2d(&up(gpu, &x), &up(gpu, &w), None, &p)
        .unwrap()
        .read()
        .unwrap();
    let want = cpu::conv_transpose2d(x.view(), w.view(), None, &p).unwrap();
    let bound = ErrorBound::conv_transpose2d(x.view(), w.view(), None, &p).unwrap();
    assert_close("conv_transpose2d", &got, &want, &bound);
}

fn pool(gpu: &Gpu, seed: u64) {
    let p = Pool2dParams::new(3, 3).with_stride(2).with_padding(1);
    let x = data([2, 3, 9, 9], seed);
    let values = max_pool2d(&up(gpu, &x), &p).unwrap().read().unwrap();
    let (v2, indices) = max_pool2d_with_indices(&up(gpu, &x), &p).unwrap();
    let (want, want_i) = cpu::max_pool2d_with_indices(x.view(), &p).unwrap();
    assert_eq!(values, want, "max_pool2d");
    assert_eq!(v2.read().unwrap(), want, "max_pool2d_with_indices");
    assert_eq!(indices.read_indices().unwrap(), want_i);
    let dy = data([2, 3, 5, 5], seed + 1);
    let dx = max_pool2d_backward(&up(gpu, &dy), &indices, [2, 3, 9, 9], &p)
        .unwrap()
        .read()
        .unwrap();
    let want_dx = cpu::max_pool2d_backward(dy.view(), want_i.view(), [2, 3, 9, 9], &p).unwrap();
    let bound =
        ErrorBound::max_pool2d_backward(dy.view(), want_i.view(), [2, 3, 9, 9], &p).unwrap();
    assert_close("max_pool2d_backward", &dx, &want_dx, &bound);
}

fn activation(gpu: &Gpu, seed: u64) {
    let (dy, z) = (data([2, 3, 4, 5], seed), data([2, 3, 4, 5], seed + 1));
    let a = Activation::Tanh;
    let got = activation_backward(&up(gpu, &dy), &up(gpu, &z), a, SavedTensor::PreActivation)
        .unwrap()
        .read()
        .unwrap();
    let want =
        cpu::activation_backward(dy.view(), z.view(), a, SavedTensor::PreActivation).unwrap();
    let bound = ErrorBound::activation_backward(dy.view(), a, SavedTensor::PreActivation);
    assert_close("activation_backward", &got, &want, &bound);
}

const OPS: &[(&str, Op)] = &[
    ("conv2d_with_activation", conv),
    ("conv2d_backward", backward_all),
    ("conv2d_backward_input/weight/bias", backward_each),
    ("conv_transpose2d", transpose),
    ("max_pool2d (+indices, backward)", pool),
    ("activation_backward", activation),
];

/// A device of its own (the counters must not see other tests' work), with `variant` forced.
fn fresh_gpu(variant: Option<ConvVariant>) -> Option<Gpu> {
    common::gpu()?;
    let gpu = Gpu::new().unwrap();
    if let Some(v) = variant {
        if let Err(why) = v.available(&gpu) {
            eprintln!("NOT RUN: {} here: {why}", v.name());
            return None;
        }
        gpu.force_conv_variant(Some(v));
    }
    Some(gpu)
}

#[test]
fn repeated_calls_allocate_nothing_new() {
    for &variant in ConvVariant::ALL {
        let Some(gpu) = fresh_gpu(Some(variant)) else {
            continue;
        };
        for &(name, op) in OPS {
            op(&gpu, 1);
            let after_first = gpu.buffer_allocations();
            op(&gpu, 2);
            op(&gpu, 3);
            let stats = gpu.pool_stats();
            assert_eq!(
                stats.allocations,
                after_first,
                "{} {name}: the second and third calls created {} buffers ({stats:?})",
                variant.name(),
                stats.allocations - after_first
            );
            assert!(stats.reuses > 0, "{name}: {stats:?}");
        }
    }
}

#[test]
fn a_full_pool_frees_instead_and_clearing_releases_everything() {
    let Some(gpu) = fresh_gpu(None) else { return };
    conv(&gpu, 1);
    let stats = gpu.pool_stats();
    assert!(stats.free_buffers > 0 && stats.free_bytes > 0, "{stats:?}");
    gpu.clear_buffer_pool();
    assert_eq!(gpu.pool_stats().free_buffers, 0);
    // With pooling off every call allocates again, and results stay right.
    gpu.set_buffer_pool_limit(0);
    let before = gpu.buffer_allocations();
    conv(&gpu, 2);
    assert!(gpu.buffer_allocations() > before);
    assert_eq!(gpu.pool_stats().free_bytes, 0);
}

#[test]
fn tensors_alive_at_once_never_share_a_buffer() {
    let Some(gpu) = fresh_gpu(None) else { return };
    // Upload, drop, upload again: the second tensor may reuse the first's buffer, but two
    // live tensors must hold distinct buffers with their own values.
    let a = data([1, 2, 3, 4], 10);
    let b = data([1, 2, 3, 4], 11);
    drop(up(&gpu, &a));
    let ta = up(&gpu, &a);
    let tb = up(&gpu, &b);
    assert_eq!(ta.read().unwrap(), a);
    assert_eq!(tb.read().unwrap(), b);
    assert_eq!(ta.byte_size(), 96);
}

#[test]
fn a_memory_budget_frees_idle_buffers_first_then_says_out_of_memory() {
    let Some(gpu) = fresh_gpu(None) else { return };
    conv(&gpu, 1);
    let stats = gpu.pool_stats();
    let idle = stats.free_bytes;
    assert_eq!(
        gpu.memory_in_use(),
        idle + stats.kept_bytes,
        "everything but the kept packed weights is back in the pool"
    );
    // A 153,600-byte upload fits the budget, but not beside the idle buffers: only once they
    // are freed.
    assert!(idle > 0);
    let gpu = gpu.with_memory_budget(153_600 + idle / 2);
    let mid = Array4::<f32>::zeros((1, 1, 192, 200));
    let t = GpuTensor::upload(&gpu, mid.view()).unwrap();
    assert_eq!(
        gpu.pool_stats().free_bytes,
        0,
        "idle buffers were freed to make room"
    );
    assert_eq!(gpu.memory_in_use(), t.byte_size());
    // Past the budget even with nothing idle: OutOfMemory, naming the op, sizes and budget.
    let big = Array4::<f32>::zeros((1, 2, 256, 256)); // 524,288 bytes
    let e = GpuTensor::upload(&gpu, big.view()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::OutOfMemory {
                op: "GpuTensor::upload",
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("524288") && msg.contains("budget"), "{msg}");
    // The device is fine, and lifting the budget lets the call through.
    drop(t);
    gpu.set_memory_budget(None);
    assert_eq!(
        GpuTensor::upload(&gpu, big.view()).unwrap().read().unwrap(),
        big
    );
    conv(&gpu, 2);
}

/// A full pool makes room for what is returned by freeing what has been idle longest: a loop
/// over a new layer's shapes stops allocating even when the earlier layers' buffers filled
/// the pool.
#[test]
fn a_full_pool_frees_its_longest_idle_buffers_for_the_one_returned() {
    let Some(gpu) = fresh_gpu(None) else { return };
    let (old, new) = (data([1, 1, 256, 256], 1), data([1, 1, 256, 300], 2));
    gpu.set_buffer_pool_limit(400 << 10);
    drop(up(&gpu, &old));
    assert_eq!(gpu.pool_stats().free_bytes, 256 << 10);
    drop(up(&gpu, &new));
    let stats = gpu.pool_stats();
    assert_eq!(
        (stats.free_buffers, stats.free_bytes),
        (1, 300 << 10),
        "{stats:?}"
    );
    let before = gpu.buffer_allocations();
    let again = up(&gpu, &new);
    assert_eq!(
        gpu.buffer_allocations(),
        before,
        "the new shape's buffer is reused"
    );
    assert_eq!(again.read().unwrap(), new);
    // Something larger than the whole pool is freed itself, and evicts nothing.
    drop(again);
    drop(up(&gpu, &data([1, 1, 512, 512], 3)));
    assert_eq!(gpu.pool_stats().free_bytes, 300 << 10);
}

#[test]
fn tiled_packed_weights_are_kept_until_the_weights_change() {
    packed_weights_kept(ConvVariant::Tiled);
}

#[test]
fn packed4_weight_textures_are_kept_until_the_weights_change() {
    packed_weights_kept(ConvVariant::Packed4);
}

#[test]
fn packed8_weight_textures_are_kept_until_the_weights_change() {
    packed_weights_kept(ConvVariant::Packed8);
}

#[test]
fn packed16_weight_textures_are_kept_until_the_weights_change() {
    packed_weights_kept(ConvVariant::Packed16);
}

/// Packed weights (a buffer for the tiled kernels, a texture for the packed ones) are kept per
/// weight tensor and contents version: a second call with the same weight tensor does not
/// pack them again, an SGD step in place on that tensor makes the next call pack them again
/// (and give the new weights' answer), they count as memory in use, and a memory budget
/// releases them.
fn packed_weights_kept(variant: ConvVariant) {
    use wgconv::nn::{Backend, Param, Sgd, Tensor};
    let Some(gpu) = fresh_gpu(Some(variant)) else {
        return;
    };
    let p = Conv2dParams::default().with_padding(Padding::uniform(1));
    let x = data([2, 8, 9, 9], 1);
    let xt = up(&gpu, &x);
    // The parameter owns the weights alone: an update in place on a tensor a clone shares
    // copies it first, and the clone's packing would rightly stay valid.
    let mut param = Param::new(Tensor::Gpu(up(&gpu, &data([16, 8, 3, 3], 2))));
    let check = |what: &str, param: &Param| {
        let Tensor::Gpu(wt) = &param.value else {
            unreachable!("uploaded to the GPU")
        };
        let w = wt.read().unwrap();
        let got = wgconv::conv2d(&xt, wt, None, &p).unwrap().read().unwrap();
        let want = cpu::conv2d(x.view(), w.view(), None, &p).unwrap();
        let bound = ErrorBound::conv2d(x.view(), w.view(), None, &p).unwrap();
        assert_close(what, &got, &want, &bound);
        let s = gpu.pool_stats();
        (s.kept_misses, s.kept_hits, s.kept_buffers)
    };
    assert_eq!(check("first call", &param), (1, 0, 1));
    let in_use = gpu.memory_in_use();
    assert!(gpu.pool_stats().kept_bytes > 0 && in_use >= gpu.pool_stats().kept_bytes);
    assert_eq!(check("same weights", &param), (1, 1, 1));

    param.grad = Some(Tensor::Gpu(up(&gpu, &data([16, 8, 3, 3], 3))));
    let sgd = Sgd {
        learning_rate: 0.5,
        momentum: 0.0,
        weight_decay: 0.0,
    };
    sgd.step(&Backend::Gpu(gpu.clone()), [&mut param]).unwrap();
    // The old packing is found no more, and the new one takes its place.
    let allocations = gpu.buffer_allocations();
    assert_eq!(check("after an SGD step in place", &param), (2, 1, 1));
    assert_eq!(check("after an SGD step, again", &param), (2, 2, 1));
    assert_eq!(
        gpu.buffer_allocations(),
        allocations,
        "the repacking reuses pooled buffers"
    );

    let kept = gpu.pool_stats().kept_bytes;
    let before = gpu.memory_in_use();
    gpu.set_memory_budget(Some(1 << 30));
    let s = gpu.pool_stats();
    assert_eq!((s.kept_buffers, s.kept_bytes), (0, 0));
    assert_eq!(gpu.memory_in_use(), before - kept);
    // Under a budget nothing is kept, and the answer is still right.
    assert_eq!(check("under a budget", &param), (2, 2, 0));
}
