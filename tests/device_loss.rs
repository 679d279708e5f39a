//! Device loss and absurd allocations come back as `Err`, never a panic, and a new `Gpu` works afterwards.
//!
//! wgpu lets a program lose its device on purpose with `Device::destroy`; that is the failure
//! simulated here. A real out-of-memory cannot be provoked on lavapipe without exhausting the
//! machine's memory (its buffers are host memory, up to 2 GiB each), so the allocations tried
//! here are ones the device limits rule out; how wgpu's out-of-memory errors map to
//! `Error::OutOfMemory` is a unit test in `src/gpu/runtime/gpu.rs`.

mod common;

use ndarray::{Array1, Array4};
use wgconv::{
    activation_backward, compare, conv2d, conv2d_backward, conv2d_backward_bias,
    conv2d_backward_input, conv2d_backward_weight, conv_transpose2d, cpu, max_pool2d,
    max_pool2d_backward, max_pool2d_with_indices, Activation, Conv2dParams, ConvTranspose2dParams,
    Error, ErrorBound, Gpu, GpuTensor, GradSelection, Layout, Padding, Pool2dParams, SavedTensor,
};

fn data(shape: [usize; 4], seed: u64) -> Array4<f32> {
    common::Rng::new(seed).array4(shape)
}

/// `Ok` results from one conv2d on `gpu`, checked against the CPU reference.
fn conv_works(gpu: &Gpu) {
    let (x, w) = (data([1, 3, 6, 6], 1), data([4, 3, 3, 3], 2));
    let p = Conv2dParams::default().with_padding(Padding::Same);
    let got = conv2d(
        &GpuTensor::upload(gpu, x.view()).unwrap(),
        &GpuTensor::upload(gpu, w.view()).unwrap(),
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
}

fn assert_lost<T: std::fmt::Debug>(what: &str, r: wgconv::Result<T>) {
    match r {
        Err(Error::DeviceLost { op, reason }) => {
            assert!(!op.is_empty(), "{what}");
            let msg = Error::DeviceLost { op, reason }.to_string();
            assert!(
                msg.contains("device lost") && msg.contains("new Gpu"),
                "{what}: {msg}"
            );
        }
        other => panic!("{what}: expected Err(DeviceLost), got {other:?}"),
    }
}

#[test]
fn every_call_on_a_destroyed_device_is_err_and_a_new_gpu_works() {
    if common::gpu().is_none() {
        return;
    }
    let gpu = Gpu::new().unwrap();
    conv_works(&gpu);
    // Tensors made before the loss, for the calls after it.
    let up = |a: &Array4<f32>| GpuTensor::upload(&gpu, a.view()).unwrap();
    let (x, w, dy) = (
        up(&data([1, 4, 6, 6], 3)),
        up(&data([4, 4, 3, 3], 4)),
        up(&data([1, 4, 4, 4], 5)),
    );
    let pool = Pool2dParams::new(2, 2);
    let (_, indices) = max_pool2d_with_indices(&x, &pool).unwrap();
    let pool_dy = up(&data([1, 4, 3, 3], 6));
    let bias = GpuTensor::upload_1d(&gpu, Array1::from_elem(4, 1.0f32).view()).unwrap();
    gpu.synchronize().unwrap();
    assert!(!gpu.is_lost());

    gpu.device().destroy();

    assert!(gpu.is_lost(), "the device-lost callback has run");
    let p = Conv2dParams::default();
    assert_lost("conv2d", conv2d(&x, &w, Some(&bias), &p));
    assert_lost(
        "conv2d_backward",
        conv2d_backward(&x, &w, &dy, &p, GradSelection::ALL),
    );
    assert_lost(
        "conv2d_backward_input",
        conv2d_backward_input([1, 4, 6, 6], &w, &dy, &p),
    );
    assert_lost(
        "conv2d_backward_weight",
        conv2d_backward_weight(&x, [4, 4, 3, 3], &dy, &p),
    );
    assert_lost(
        "conv2d_backward_bias",
        conv2d_backward_bias(&dy, Layout::Nchw),
    );
    assert_lost(
        "conv_transpose2d",
        conv_transpose2d(&dy, &w, None, &ConvTranspose2dParams::default()),
    );
    assert_lost("max_pool2d", max_pool2d(&x, &pool));
    assert_lost(
        "max_pool2d_with_indices",
        max_pool2d_with_indices(&x, &pool),
    );
    assert_lost(
        "max_pool2d_backward",
        max_pool2d_backward(&pool_dy, &indices, [1, 4, 6, 6], &pool),
    );
    assert_lost(
        "activation_backward",
        activation_backward(&dy, &dy, Activation::Relu, SavedTensor::Output),
    );
    assert_lost("read", x.read());
    assert_lost("read_indices", indices.read_indices());
    assert_lost("read_async", pollster::block_on(x.read_async()));
    assert_lost(
        "upload",
        GpuTensor::upload(&gpu, data([1, 1, 2, 2], 7).view()),
    );
    assert_lost("synchronize", gpu.synchronize());
    // Dropping tensors of a lost device (back into its pool) must not panic either.
    drop((x, w, dy, indices, pool_dy, bias));

    // A new context on the same adapter works, and so does the shared one.
    let fresh = Gpu::new().unwrap();
    assert!(!fresh.is_lost());
    conv_works(&fresh);
    conv_works(common::gpu().unwrap());
}

#[test]
fn work_in_flight_when_the_device_is_destroyed_ends_in_err() {
    if common::gpu().is_none() {
        return;
    }
    let gpu = Gpu::new().unwrap();
    let x = GpuTensor::upload(&gpu, data([2, 16, 32, 32], 8).view()).unwrap();
    let w = GpuTensor::upload(&gpu, data([16, 16, 3, 3], 9).view()).unwrap();
    let y = conv2d(&x, &w, None, &Conv2dParams::default()).unwrap();
    gpu.device().destroy();
    assert_lost("read after destroy", y.read());
    assert_lost(
        "conv2d after destroy",
        conv2d(&x, &w, None, &Conv2dParams::default()),
    );
}

#[test]
fn allocations_past_the_device_limits_are_err_before_any_work() {
    if common::gpu().is_none() {
        return;
    }
    // A device of its own, so that the allocation count sees only this test.
    let gpu = &Gpu::new().unwrap();
    let before = gpu.buffer_allocations();
    // 2^40 floats, described by a broadcast view that needs no host memory.
    let one = Array4::<f32>::zeros((1, 1, 1, 1));
    let huge = one.broadcast((1, 1, 1 << 20, 1 << 20)).unwrap();
    let e = GpuTensor::upload(gpu, huge).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().contains("max_buffer_size"), "{e}");
    // 2^62 floats: the byte count overflows u64.
    let overflow = one.broadcast((1 << 16, 1 << 16, 1 << 15, 1 << 15)).unwrap();
    let e = GpuTensor::upload(gpu, overflow).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    // An output of 200001^2 floats (padding 100000 around one pixel): 160 GB.
    let x = GpuTensor::upload(gpu, one.view()).unwrap();
    let p = Conv2dParams::default().with_padding(Padding::uniform(100_000));
    let e = conv2d(&x, &x, None, &p).unwrap_err();
    assert!(matches!(e, Error::TooLarge { op: "conv2d", .. }), "{e:?}");
    // Nothing but the small input was allocated, and the device is fine.
    assert!(gpu.buffer_allocations() - before <= 1);
    assert!(!gpu.is_lost());
    conv_works(gpu);
}
