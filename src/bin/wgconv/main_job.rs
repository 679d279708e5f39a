//! The main job (`wgconv` with no arguments): the adapter, the CS231n example on GPU and CPU,
//! a short check of every op and a short benchmark table.

use std::io::IsTerminal;

use ndarray::{array, s, Array4};
use wgconv::{conv2d, cpu, Conv2dParams, Gpu, GpuTensor};

use crate::{adapters, bench, check};

pub fn run(adapter: Option<&str>) -> wgconv::Result<()> {
    let gpu = adapters::open_one(adapter)?;
    let info = gpu.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    );
    println!("chosen:  {}", gpu.selection_reason());
    println!();
    cs231n_example(&gpu)?;
    println!();
    let cases = 12;
    println!("short check: {cases} random parameter sets per op, GPU against the CPU reference (wgconv check for more)");
    let ops = [
        check::CheckOp::Conv2d,
        check::CheckOp::Conv2dBackwardInput,
        check::CheckOp::Conv2dBackwardWeight,
        check::CheckOp::Conv2dBackwardBias,
        check::CheckOp::ConvTranspose2d,
        check::CheckOp::MaxPool2d,
        check::CheckOp::MaxPool2dBackward,
        check::CheckOp::ActivationBackward,
    ];
    let summaries = check::sweep(&gpu, &ops, cases, 1, std::io::stderr().is_terminal())?;
    let mut failures = 0;
    for (op, s) in ops.iter().zip(&summaries) {
        println!(
            "  {:<24} {:>3} cases, {} failures, max abs {:.2e}, max rel {:.2e}",
            format!("{op:?}"),
            s.cases,
            s.failures,
            s.max_abs_err,
            s.max_rel_err
        );
        failures += s.failures;
        if let Some(f) = &s.first_failure {
            println!("  MISMATCH {f}");
        }
    }
    println!();
    println!("short bench (wgconv bench --suite resnet50|vgg|mobilenet|pool for the real suites):");
    let rows = bench::measure(
        &gpu,
        &bench::layers(bench::Suite::Smoke, 1),
        3,
        std::io::stderr().is_terminal(),
        true,
    )?;
    bench::print_rows(&rows);
    if failures > 0 {
        return Err(wgconv::Error::Device {
            op: "main job",
            message: format!("{failures} GPU results outside the verification tolerance"),
        });
    }
    Ok(())
}

/// The CS231n tutorial's 7x7x3 input (zero border included), two 3x3x3 filters, bias [1, 0],
/// stride 2; TensorFlow prints `[[6,4,3],[13,7,4],[10,9,5]]` and `[[-1,-3,1],[0,6,2],[1,-3,12]]`.
fn cs231n_example(gpu: &Gpu) -> wgconv::Result<()> {
    // The tutorial's own text, NHWC slices x[:, :, c] and HWIO slices w[:, :, c_in, c_out].
    let x_planes = [
        "0 0 0 0 0 0 0;0 0 1 0 1 0 0;0 2 1 0 1 2 0;0 0 2 0 0 1 0;0 2 0 1 0 0 0;0 0 0 1 2 2 0;0 0 0 0 0 0 0",
        "0 0 0 0 0 0 0;0 1 0 0 1 1 0;0 0 2 2 1 1 0;0 2 1 2 1 0 0;0 2 1 1 2 2 0;0 1 2 0 2 2 0;0 0 0 0 0 0 0",
        "0 0 0 0 0 0 0;0 2 1 1 1 1 0;0 2 2 1 2 1 0;0 1 1 0 2 2 0;0 2 1 2 2 0 0;0 1 2 2 0 0 0;0 0 0 0 0 0 0",
    ];
    let w_slices = [
        [
            "0 0 1;-1 1 1;0 1 0",
            "1 1 1;0 1 1;0 1 0",
            "-1 0 0;-1 1 1;0 -1 0",
        ],
        [
            "0 0 0;1 1 -1;-1 1 1",
            "0 1 -1;1 1 -1;-1 1 -1",
            "1 1 0;-1 -1 0;0 -1 1",
        ],
    ];
    let mut x = Array4::<f32>::zeros((1, 3, 7, 7));
    for (c, text) in x_planes.iter().enumerate() {
        fill_plane(x.slice_mut(s![0, c, .., ..]), text);
    }
    let mut w = Array4::<f32>::zeros((2, 3, 3, 3));
    for (o, per_input) in w_slices.iter().enumerate() {
        for (c, text) in per_input.iter().enumerate() {
            fill_plane(w.slice_mut(s![o, c, .., ..]), text);
        }
    }
    let b = array![1.0f32, 0.0];
    let p = Conv2dParams::default().with_stride(2);
    let on_gpu = conv2d(
        &GpuTensor::upload(gpu, x.view())?,
        &GpuTensor::upload(gpu, w.view())?,
        Some(&GpuTensor::upload_1d(gpu, b.view())?),
        &p,
    )?
    .read()?;
    let on_cpu = cpu::conv2d(x.view(), w.view(), Some(b.view()), &p)?;
    println!("CS231n example (7x7x3 input, two 3x3 filters, bias [1, 0], stride 2):");
    for oc in 0..2 {
        println!("  filter {oc}  gpu {}", rows(&on_gpu, oc));
        println!("            cpu {}", rows(&on_cpu, oc));
    }
    let tensorflow = array![
        [[6.0f32, 4., 3.], [13., 7., 4.], [10., 9., 5.]],
        [[-1., -3., 1.], [0., 6., 2.], [1., -3., 12.]]
    ];
    let matches = on_gpu.slice(s![0, .., .., ..]) == tensorflow && on_gpu == on_cpu;
    println!("  gpu == cpu == TensorFlow's printed output: {matches}");
    Ok(())
}

/// Fills a 2-D slice from numpy's `np.mat` text: rows separated by `;`, values by spaces.
fn fill_plane(mut plane: ndarray::ArrayViewMut2<f32>, text: &str) {
    for (i, row) in text.split(';').enumerate() {
        for (j, v) in row.split_whitespace().enumerate() {
            plane[[i, j]] = v.parse().expect("the example's text holds numbers");
        }
    }
}

fn rows(y: &Array4<f32>, oc: usize) -> String {
    let plane = y.slice(s![0, oc, .., ..]);
    let rows: Vec<String> = plane
        .rows()
        .into_iter()
        .map(|r| {
            format!(
                "[{}]",
                r.iter()
                    .map(|v| format!("{v:>3}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        })
        .collect();
    format!("[{}]", rows.join(", "))
}
