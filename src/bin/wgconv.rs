//! The `wgconv` command-line tool; with no arguments it runs the main job (adapter, seed example,
//! GPU-vs-CPU table).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ndarray::{array, s, Array4};
use wgconv::{
    compare, conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight, cpu,
    max_pool2d_backward, max_pool2d_with_indices, Conv2dParams, Gpu, GpuTensor, GradSelection,
    Layout, Padding, Pool2dParams, Tolerance,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None => match main_job() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("wgconv: {e}");
                ExitCode::FAILURE
            }
        },
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("wgconv: unknown argument {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: wgconv\n\nWith no arguments: print the adapter in use, run the CS231n \
example (seed 004) on the GPU and the CPU, then compare GPU and CPU on a few convolution shapes.\n\
Environment: WGCONV_ADAPTER=<name substring> picks an adapter, WGPU_BACKEND=vulkan|gl|... the \
backends searched.";

fn main_job() -> wgconv::Result<()> {
    let gpu = Gpu::new()?;
    let info = gpu.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}, driver {} {})",
        info.name, info.backend, info.device_type, info.driver, info.driver_info
    );
    println!("chosen:  {}", gpu.selection_reason());
    println!();
    seed_example(&gpu)?;
    println!();
    shape_table(&gpu)?;
    println!();
    pool_table(&gpu)
}

/// Max pooling, forward (values and indices, compared exactly) and backward, GPU against the
/// CPU reference loops.
fn pool_table(gpu: &Gpu) -> wgconv::Result<()> {
    let cases = [
        (
            "3x3 s2 p1, 64ch 112x112",
            [1, 64, 112, 112],
            Pool2dParams::new(3, 3).with_stride(2).with_padding(1),
        ),
        (
            "2x2 s2, 64ch 56x56",
            [1, 64, 56, 56],
            Pool2dParams::new(2, 2),
        ),
    ];
    println!(
        "{:<26} {:<9} {:>14} {:>10} {:>10} {:>8}",
        "max pooling (batch 1)", "op", "result", "gpu ms", "cpu ms", "gpu/cpu"
    );
    let mut all_passed = true;
    for (name, shape, p) in cases {
        let x = Array4::from_shape_fn(shape, |(_, c, h, w)| {
            ((c * 7919 + h * 104_729 + w * 1_299_709) % 1000) as f32 / 100.0 - 5.0
        });
        let g = p.geometry("main", shape)?;
        let dy = Array4::from_shape_fn(g.output_shape(), |(_, c, h, w)| {
            ((c + h * 3 + w * 5) % 17) as f32 / 8.0 - 1.0
        });
        let xt = GpuTensor::upload(gpu, x.view())?;
        let ((gpu_values, gpu_indices), gpu_forward) = timed(3, || {
            let (v, i) = max_pool2d_with_indices(&xt, &p)?;
            Ok((v.read()?, i.read_indices()?))
        })?;
        let ((values, indices), cpu_forward) =
            timed(0, || cpu::max_pool2d_with_indices(x.view(), &p))?;
        let exact = gpu_values == values && gpu_indices == indices;
        all_passed &= exact;
        let (_, gpu_index_tensor) = max_pool2d_with_indices(&xt, &p)?;
        let dyt = GpuTensor::upload(gpu, dy.view())?;
        let (gpu_dx, gpu_backward) = timed(3, || {
            max_pool2d_backward(&dyt, &gpu_index_tensor, shape, &p)?.read()
        })?;
        let (dx, cpu_backward) = timed(0, || {
            cpu::max_pool2d_backward(dy.view(), indices.view(), shape, &p)
        })?;
        let report = compare(gpu_dx.view(), dx.view(), Tolerance::for_reduction(4));
        all_passed &= report.passed();
        let ratio = |cpu: Duration, gpu: Duration| cpu.as_secs_f64() / gpu.as_secs_f64();
        println!(
            "{:<26} {:<9} {:>14} {:>10.3} {:>10.3} {:>8.2}",
            name,
            "forward",
            if exact { "exact" } else { "MISMATCH" },
            ms(gpu_forward),
            ms(cpu_forward),
            ratio(cpu_forward, gpu_forward)
        );
        println!(
            "{:<26} {:<9} {:>14} {:>10.3} {:>10.3} {:>8.2}",
            "",
            "backward",
            if report.passed() {
                format!("{:.1e} abs", report.max_abs_err)
            } else {
                "MISMATCH".into()
            },
            ms(gpu_backward),
            ms(cpu_backward),
            ratio(cpu_backward, gpu_backward)
        );
    }
    println!("forward: values and indices equal bit for bit; cpu ms: the reference loops");
    if !all_passed {
        return Err(wgconv::Error::Device {
            op: "main job",
            message: "a GPU pooling result differs from the reference".into(),
        });
    }
    Ok(())
}

/// Seed 004: the CS231n 7x7x3 input (zero border included), two 3x3x3 filters, bias [1, 0],
/// stride 2; TensorFlow prints `[[6,4,3],[13,7,4],[10,9,5]]` and `[[-1,-3,1],[0,6,2],[1,-3,12]]`.
fn seed_example(gpu: &Gpu) -> wgconv::Result<()> {
    // The seed's own text, NHWC slices x[:, :, c] and HWIO slices w[:, :, c_in, c_out].
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
    println!("seed 004 (CS231n 7x7x3, two 3x3 filters, bias [1, 0], stride 2):");
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
            plane[[i, j]] = v.parse().expect("seed text holds numbers");
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

struct Shape {
    name: &'static str,
    input: [usize; 4],
    weight: [usize; 4],
    params: Conv2dParams,
}

fn shape_table(gpu: &Gpu) -> wgconv::Result<()> {
    let shapes = [
        Shape {
            name: "resnet stem 7x7 s2",
            input: [1, 3, 224, 224],
            weight: [64, 3, 7, 7],
            params: Conv2dParams::default()
                .with_stride(2)
                .with_padding(Padding::uniform(3)),
        },
        Shape {
            name: "3x3 64ch 56x56",
            input: [1, 64, 56, 56],
            weight: [64, 64, 3, 3],
            params: Conv2dParams::default().with_padding(Padding::uniform(1)),
        },
        Shape {
            name: "3x3 s2 128ch 28x28",
            input: [1, 128, 28, 28],
            weight: [128, 128, 3, 3],
            params: Conv2dParams::default()
                .with_stride(2)
                .with_padding(Padding::uniform(1)),
        },
        Shape {
            name: "1x1 256->1024 14x14",
            input: [1, 256, 14, 14],
            weight: [1024, 256, 1, 1],
            params: Conv2dParams::default(),
        },
        Shape {
            name: "depthwise 3x3 128ch",
            input: [1, 128, 56, 56],
            weight: [128, 1, 3, 3],
            params: Conv2dParams::default()
                .with_groups(128)
                .with_padding(Padding::Same),
        },
    ];
    println!(
        "{:<22} {:<8} {:>9} {:>9} {:>10} {:>11} {:>10} {:>8}",
        "shape (batch 1)",
        "op",
        "max abs",
        "max rel",
        "gpu ms",
        "cpu im2col",
        "cpu loops",
        "gpu/cpu"
    );
    let mut seed = 1u32;
    let mut next = move || {
        // xorshift32: deterministic inputs in [-1, 1) without a dependency.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed as f32 / u32::MAX as f32) * 2.0 - 1.0
    };
    let mut all_passed = true;
    for shape in &shapes {
        let p = &shape.params;
        let g = p.geometry("main", shape.input, shape.weight, None)?;
        let x = Array4::from_shape_simple_fn(shape.input, &mut next);
        let w = Array4::from_shape_simple_fn(shape.weight, &mut next);
        let dy = Array4::from_shape_simple_fn(g.output_shape(), &mut next);
        let (xt, wt, dyt) = (
            GpuTensor::upload(gpu, x.view())?,
            GpuTensor::upload(gpu, w.view())?,
            GpuTensor::upload(gpu, dy.view())?,
        );
        let forward = Row {
            name: "forward",
            gpu: timed(3, || conv2d(&xt, &wt, None, p)?.read())?,
            im2col: timed(3, || cpu::conv2d_im2col(x.view(), w.view(), None, p))?.1,
            reference: timed(0, || cpu::conv2d(x.view(), w.view(), None, p))?,
            tolerance: Tolerance::for_reduction(g.reduction_len()),
        };
        let im2col_grads = timed(3, || {
            cpu::conv2d_backward_im2col(x.view(), w.view(), dy.view(), p, GradSelection::ALL)
        })?
        .1;
        let dx = Row {
            name: "dx",
            gpu: timed(3, || {
                conv2d_backward_input(shape.input, &wt, &dyt, p)?.read()
            })?,
            im2col: im2col_grads,
            reference: timed(0, || {
                cpu::conv2d_backward_input(shape.input, w.view(), dy.view(), p)
            })?,
            tolerance: Tolerance::for_reduction(
                g.out_channels_per_group() * g.h.kernel * g.w.kernel,
            ),
        };
        let dw = Row {
            name: "dw",
            gpu: timed(3, || {
                conv2d_backward_weight(&xt, shape.weight, &dyt, p)?.read()
            })?,
            im2col: im2col_grads,
            reference: timed(0, || {
                cpu::conv2d_backward_weight(x.view(), shape.weight, dy.view(), p)
            })?,
            tolerance: Tolerance::for_reduction(g.batch * g.h.output * g.w.output),
        };
        let db = {
            let (gpu_db, gpu_time) =
                timed(3, || conv2d_backward_bias(&dyt, Layout::Nchw)?.read_1d())?;
            let (cpu_db, cpu_time) =
                timed(0, || cpu::conv2d_backward_bias(dy.view(), Layout::Nchw))?;
            let report = compare(
                gpu_db.view(),
                cpu_db.view(),
                Tolerance::for_reduction(g.batch * g.h.output * g.w.output),
            );
            (report, gpu_time, cpu_time)
        };
        for (i, row) in [forward, dx, dw].into_iter().enumerate() {
            let report = compare(row.gpu.0.view(), row.reference.0.view(), row.tolerance);
            all_passed &= report.passed();
            print_row(
                if i == 0 { shape.name } else { "" },
                row.name,
                &report,
                row.gpu.1,
                Some(row.im2col),
                row.reference.1,
            );
        }
        all_passed &= db.0.passed();
        print_row("", "db", &db.0, db.1, None, db.2);
    }
    println!(
        "gpu ms: op plus readback, median of 3 after upload. cpu im2col: the matrix-product path \
         (dx and dw rows: all three gradients together). gpu/cpu: cpu im2col time over gpu time."
    );
    if !all_passed {
        return Err(wgconv::Error::Device {
            op: "main job",
            message: "a GPU result is outside the verification tolerance (rows marked MISMATCH)"
                .into(),
        });
    }
    Ok(())
}

/// One op of one shape: the GPU result and time, the im2col time and the reference.
struct Row {
    name: &'static str,
    gpu: (Array4<f32>, Duration),
    im2col: Duration,
    reference: (Array4<f32>, Duration),
    tolerance: Tolerance,
}

fn print_row(
    shape: &str,
    op: &str,
    report: &wgconv::Comparison,
    gpu: Duration,
    im2col: Option<Duration>,
    loops: Duration,
) {
    let (im2col_ms, ratio) = match im2col {
        Some(t) => (
            format!("{:.3}", ms(t)),
            format!("{:.2}", t.as_secs_f64() / gpu.as_secs_f64()),
        ),
        None => ("-".into(), "-".into()),
    };
    println!(
        "{:<22} {:<8} {:>9.2e} {:>9.2e} {:>10.3} {:>11} {:>10.3} {:>8}{}",
        shape,
        op,
        report.max_abs_err,
        report.max_rel_err,
        ms(gpu),
        im2col_ms,
        ms(loops),
        ratio,
        if report.passed() { "" } else { "  MISMATCH" }
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `f` once to warm up, then `runs` more times, and returns the last result with the
/// median time (`runs == 0`: one timed run, no warm-up).
fn timed<T>(
    runs: usize,
    mut f: impl FnMut() -> wgconv::Result<T>,
) -> wgconv::Result<(T, Duration)> {
    if runs == 0 {
        let start = Instant::now();
        let value = f()?;
        return Ok((value, start.elapsed()));
    }
    let mut last = f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        last = f()?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok((last, times[runs / 2]))
}
