//! Kernel timing covers every dispatch of an op: alone in its own test binary, because the
//! profiler times whatever the shared `Gpu` runs.

mod common;

use std::time::{Duration, Instant};

use wgconv::{conv2d_backward, Conv2dParams, GpuTensor, GradSelection};

/// A weight gradient runs several dispatches (on lavapipe: two repacks, the GEMM, the
/// reduction). Its kernel time, measured while nothing else runs, must account for most of
/// its synchronised wall time once that is long enough for launch costs not to matter, and
/// never for more. lavapipe's timestamps, read as they were, gave under half of it.
#[test]
fn kernel_time_accounts_for_every_dispatch_of_an_op() {
    let Some(gpu) = common::gpu() else { return };
    let params = Conv2dParams::default();
    let x = GpuTensor::upload(gpu, common::Rng::new(1).array4([8, 64, 56, 56]).view()).unwrap();
    let w = GpuTensor::upload(gpu, common::Rng::new(2).array4([256, 64, 1, 1]).view()).unwrap();
    let dy = GpuTensor::upload(gpu, common::Rng::new(3).array4([8, 256, 56, 56]).view()).unwrap();
    let run = || conv2d_backward(&x, &w, &dy, &params, GradSelection::WEIGHT).unwrap();
    // Warm-up: pipelines built, buffers pooled, shaders compiled by the driver.
    drop(run());
    gpu.synchronize().unwrap();

    let mut checked = 0;
    for _ in 0..3 {
        gpu.start_kernel_timing();
        let start = Instant::now();
        let grads = run();
        gpu.synchronize().unwrap();
        let wall = start.elapsed();
        let kernel = gpu.stop_kernel_timing().unwrap();
        drop(grads);
        let Some(kernel) = kernel else {
            // A hardware GPU without timestamp queries reports none; nothing to check.
            assert!(!gpu.timestamps_supported());
            return;
        };
        eprintln!("kernel {kernel:?}, synchronised wall {wall:?}");
        assert!(
            kernel <= wall + Duration::from_micros(200),
            "kernel time {kernel:?} exceeds the op's wall time {wall:?}"
        );
        if wall >= Duration::from_millis(10) {
            assert!(
                kernel.as_secs_f64() >= 0.6 * wall.as_secs_f64(),
                "kernel time {kernel:?} leaves most of the op's wall time {wall:?} out"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} of 3 runs long enough for the lower bound");
}
