//! Every bad input returns `Err` naming the op, the argument and the numbers, before GPU work.

mod common;

use ndarray::{Array1, Array4, ArrayView4};
use wgconv::{conv2d, cpu, Conv2dParams, Error, GpuTensor, Padding};

/// Runs the CPU path (always) and the GPU path (when an adapter is present) and returns both
/// errors' messages after checking they are the same kind.
fn both_fail(
    x: [usize; 4],
    w: [usize; 4],
    bias: Option<usize>,
    p: Conv2dParams,
) -> Vec<(String, Error)> {
    let xa = Array4::<f32>::ones(x);
    let wa = Array4::<f32>::ones(w);
    let ba = bias.map(Array1::<f32>::ones);
    let mut errors = vec![(
        "cpu".to_string(),
        cpu::conv2d(xa.view(), wa.view(), ba.as_ref().map(|b| b.view()), &p).unwrap_err(),
    )];
    errors.push((
        "cpu im2col".into(),
        cpu::conv2d_im2col(xa.view(), wa.view(), ba.as_ref().map(|b| b.view()), &p).unwrap_err(),
    ));
    if let Some(gpu) = common::gpu() {
        let xt = GpuTensor::upload(gpu, xa.view()).unwrap();
        let wt = GpuTensor::upload(gpu, wa.view()).unwrap();
        let bt = ba.map(|b| GpuTensor::upload_1d(gpu, b.view()).unwrap());
        errors.push(("gpu".into(), conv2d(&xt, &wt, bt.as_ref(), &p).unwrap_err()));
    }
    errors
}

fn assert_invalid(errors: &[(String, Error)], needles: &[&str]) {
    for (path, e) in errors {
        assert!(matches!(e, Error::InvalidArgument { .. }), "{path}: {e:?}");
        let msg = e.to_string();
        assert!(msg.contains("conv2d"), "{path}: op missing from {msg:?}");
        for n in needles {
            assert!(msg.contains(n), "{path}: {n:?} missing from {msg:?}");
        }
    }
}

#[test]
fn zero_sized_dimension() {
    let x = Array4::<f32>::ones((1, 3, 0, 5));
    let w = Array4::<f32>::ones((2, 3, 1, 1));
    let e = cpu::conv2d(x.view(), w.view(), None, &Conv2dParams::default()).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }));
    assert!(
        e.to_string()
            .contains("input shape [N, C, H, W] = [1, 3, 0, 5]"),
        "{e}"
    );
    let e = cpu::conv2d(w.view(), x.view(), None, &Conv2dParams::default()).unwrap_err();
    assert!(e.to_string().contains("weight shape"), "{e}");
    if let Some(gpu) = common::gpu() {
        let e = GpuTensor::upload(gpu, x.view()).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }));
        assert!(e.to_string().contains("[1, 3, 0, 5]"), "{e}");
    }
}

#[test]
fn input_channels_must_equal_groups_times_weight_channels() {
    let errors = both_fail(
        [1, 6, 5, 5],
        [4, 2, 3, 3],
        None,
        Conv2dParams::default().with_groups(2),
    );
    assert_invalid(
        &errors,
        &["input channels (6)", "groups (2)", "weight in-channels (2)"],
    );
}

#[test]
fn output_channels_must_divide_by_groups() {
    let errors = both_fail(
        [1, 6, 5, 5],
        [5, 2, 3, 3],
        None,
        Conv2dParams::default().with_groups(3),
    );
    assert_invalid(&errors, &["out-channels (5)", "groups (3)"]);
}

#[test]
fn zero_groups() {
    let errors = both_fail(
        [1, 6, 5, 5],
        [4, 6, 3, 3],
        None,
        Conv2dParams::default().with_groups(0),
    );
    assert_invalid(&errors, &["groups must be at least 1, got 0"]);
}

#[test]
fn zero_stride_or_dilation() {
    let errors = both_fail(
        [1, 1, 5, 5],
        [1, 1, 3, 3],
        None,
        Conv2dParams::default().with_stride_hw(1, 0),
    );
    assert_invalid(&errors, &["stride", "[1, 0]"]);
    let errors = both_fail(
        [1, 1, 5, 5],
        [1, 1, 3, 3],
        None,
        Conv2dParams::default().with_dilation_hw(0, 2),
    );
    assert_invalid(&errors, &["dilation", "[0, 2]"]);
    let errors = both_fail(
        [1, 1, 5, 5],
        [1, 1, 3, 3],
        None,
        Conv2dParams::default()
            .with_stride(0)
            .with_padding(Padding::Same),
    );
    assert_invalid(&errors, &["stride"]);
}

#[test]
fn kernel_larger_than_padded_input() {
    let errors = both_fail(
        [1, 1, 4, 9],
        [1, 1, 3, 3],
        None,
        Conv2dParams::default()
            .with_dilation(2)
            .with_padding(Padding::uniform(0)),
    );
    assert_invalid(
        &errors,
        &[
            "effective kernel height 5",
            "dilation 2",
            "padded input height 4",
        ],
    );
    let errors = both_fail(
        [1, 1, 9, 2],
        [1, 1, 1, 4],
        None,
        Conv2dParams::default().with_padding(Padding::explicit(0, 0, 1, 0)),
    );
    assert_invalid(
        &errors,
        &["effective kernel width 4", "padded input width 3"],
    );
}

#[test]
fn bias_of_the_wrong_length() {
    let errors = both_fail([1, 2, 5, 5], [4, 2, 3, 3], Some(3), Conv2dParams::default());
    assert_invalid(&errors, &["bias has 3 elements", "4 output channels"]);
}

#[test]
fn flat_index_overflowing_u32() {
    // A broadcast view claims 5 * 10^9 elements without allocating them.
    let one = Array4::<f32>::ones((1, 1, 1, 1));
    let huge: ArrayView4<f32> = one.broadcast((1, 5, 1_000, 1_000_000)).unwrap();
    let w = Array4::<f32>::ones((1, 5, 1, 1));
    let e = cpu::conv2d(huge, w.view(), None, &Conv2dParams::default()).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    assert!(e.to_string().contains("[1, 5, 1000, 1000000]"), "{e}");
    assert!(e.to_string().contains("4294967295"), "{e}");

    // On the GPU: a 1x1 input padded by 40000 on each side would give an 80001^2 output.
    if let Some(gpu) = common::gpu() {
        let x = GpuTensor::upload(gpu, one.view()).unwrap();
        let e = conv2d(
            &x,
            &x,
            None,
            &Conv2dParams::default().with_padding(Padding::uniform(40_000)),
        )
        .unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
        assert!(
            e.to_string().contains("output shape [1, 1, 80001, 80001]"),
            "{e}"
        );
    }
}

/// An output past the device's storage-binding limit that cannot be split (its rows read only
/// padding) is `TooLarge` naming that limit, found before anything is allocated: where the
/// buffer limit is no higher (SwiftShader: 1 GiB each, and a buffer of exactly 1 GiB fails to
/// allocate there) the output would need segments of the largest buffers the device has.
#[test]
fn output_above_the_max_storage_binding() {
    if common::gpu().is_none() {
        return;
    }
    // A device of its own, so that no other test's buffers count.
    let gpu = &wgconv::Gpu::new().unwrap();
    // Pad a 1x1 input until the output needs more bytes than one binding may hold, while its
    // element count still fits u32.
    let limit = gpu.limits().max_storage_buffer_binding_size;
    let side = ((limit / 4) as f64).sqrt().ceil() as usize + 1;
    let pad = side.div_ceil(2);
    let one = Array4::<f32>::ones((1, 1, 1, 1));
    let x = GpuTensor::upload(gpu, one.view()).unwrap();
    let allocations = gpu.buffer_allocations();
    let e = conv2d(
        &x,
        &x,
        None,
        &Conv2dParams::default().with_padding(Padding::uniform(pad)),
    )
    .unwrap_err();
    assert_eq!(gpu.buffer_allocations(), allocations, "{e}");
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("output") && msg.contains("max_storage_buffer_binding_size"),
        "{msg}"
    );
    assert!(msg.contains(&limit.to_string()), "{msg}");
}

#[test]
fn tensors_of_the_wrong_rank() {
    let Some(gpu) = common::gpu() else { return };
    let x = GpuTensor::upload(gpu, Array4::<f32>::ones((1, 2, 4, 4)).view()).unwrap();
    let w = GpuTensor::upload(gpu, Array4::<f32>::ones((3, 2, 3, 3)).view()).unwrap();
    let v = GpuTensor::upload_1d(gpu, Array1::<f32>::ones(3).view()).unwrap();
    let e = conv2d(&v, &w, None, &Conv2dParams::default()).unwrap_err();
    assert!(
        e.to_string().contains("input must be 4-D, got shape [3]"),
        "{e}"
    );
    let e = conv2d(&x, &w, Some(&w), &Conv2dParams::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("bias must be 1-D, got shape [3, 2, 3, 3]"),
        "{e}"
    );
    assert!(v.read().is_err(), "a 1-D tensor is not readable as 4-D");
    assert_eq!(v.read_1d().unwrap(), Array1::<f32>::ones(3));
}

/// The adapter override fails clearly when nothing matches. Runs in a child process so the
/// environment change cannot leak into other tests.
#[test]
fn adapter_override_that_matches_nothing() {
    if std::env::var_os("WGCONV_CHILD").is_some() {
        let e = wgconv::Gpu::new().unwrap_err();
        assert!(matches!(e, Error::NoAdapter { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            // The adapters it found are listed; installing a driver is beside the point.
            msg.contains("no-such-adapter-xyz") && !msg.contains("mesa-vulkan-drivers"),
            "{msg}"
        );
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "adapter_override_that_matches_nothing",
            "--exact",
            "--nocapture",
        ])
        .env("WGCONV_CHILD", "1")
        .env(wgconv::gpu::ADAPTER_ENV, "no-such-adapter-xyz")
        .status()
        .unwrap();
    assert!(status.success());
}
