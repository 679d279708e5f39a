//! The README's quick start: one convolution on the GPU, checked against the CPU reference.

use ndarray::Array4;
use wgconv::{conv2d, cpu, Conv2dParams, ErrorBound, Gpu, GpuTensor, Padding};

fn main() -> wgconv::Result<()> {
    let gpu = Gpu::new()?; // WGCONV_ADAPTER=<name substring> picks an adapter
    println!("{}", gpu.adapter_info().name);

    let x =
        Array4::<f32>::from_shape_fn((2, 3, 32, 32), |(n, c, h, w)| (n + c + h * w) as f32 / 1e3);
    let w =
        Array4::<f32>::from_shape_fn((8, 3, 3, 3), |(o, c, i, j)| (o + c + i + j) as f32 / 10.0);
    let params = Conv2dParams::default()
        .with_stride(2)
        .with_padding(Padding::Same);

    // Tensors stay on the GPU between ops; only `read` waits for the device.
    let y = conv2d(
        &GpuTensor::upload(&gpu, x.view())?,
        &GpuTensor::upload(&gpu, w.view())?,
        None,
        &params,
    )?;
    let y = y.read()?;

    // The CPU reference takes the same parameters; `compare` checks each element against a bound
    // derived from how it is summed, and reports the worst error over that bound.
    let reference = cpu::conv2d(x.view(), w.view(), None, &params)?;
    let bound = ErrorBound::conv2d(x.view(), w.view(), None, &params)?;
    let report = wgconv::compare(y.view(), reference.view(), &bound);
    assert!(report.passed(), "{report}");
    println!("output {:?}, {report}", y.dim());
    Ok(())
}
