//! criterion: conv2d forward, GPU (waiting for completion) and CPU im2col side by side.
//! Small shapes when `CI` is set; `cargo bench --bench conv2d` for the full set.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array4;
use wgconv::{conv2d, cpu, Conv2dParams, Gpu, GpuTensor, Padding};

struct Case {
    name: &'static str,
    input: [usize; 4],
    weight: [usize; 4],
    params: Conv2dParams,
}

fn cases() -> Vec<Case> {
    let same = Conv2dParams::default().with_padding(Padding::uniform(1));
    if std::env::var_os("CI").is_some() {
        return vec![Case {
            name: "3x3_16ch_16x16",
            input: [1, 16, 16, 16],
            weight: [16, 16, 3, 3],
            params: same,
        }];
    }
    vec![
        Case {
            name: "3x3_64ch_56x56",
            input: [1, 64, 56, 56],
            weight: [64, 64, 3, 3],
            params: same,
        },
        Case {
            name: "1x1_256to64_56x56",
            input: [1, 256, 56, 56],
            weight: [64, 256, 1, 1],
            params: Conv2dParams::default(),
        },
        Case {
            name: "depthwise3x3_128ch_56x56",
            input: [1, 128, 56, 56],
            weight: [128, 1, 3, 3],
            params: same.with_groups(128),
        },
    ]
}

fn filled(shape: [usize; 4]) -> Array4<f32> {
    let mut state = 0x2545_f491u32;
    Array4::from_shape_simple_fn(shape, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32 - 0.5
    })
}

fn bench_conv2d(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    let mut group = c.benchmark_group("conv2d_forward");
    group.sample_size(10);
    for case in cases() {
        let g = case
            .params
            .geometry("bench", case.input, case.weight, None)
            .unwrap();
        group.throughput(Throughput::Elements(g.flops() as u64));
        let x = filled(case.input);
        let w = filled(case.weight);
        let xt = GpuTensor::upload(&gpu, x.view()).unwrap();
        let wt = GpuTensor::upload(&gpu, w.view()).unwrap();
        group.bench_function(BenchmarkId::new("gpu", case.name), |b| {
            b.iter(|| {
                let y = conv2d(&xt, &wt, None, &case.params).unwrap();
                gpu.synchronize().unwrap();
                y
            })
        });
        group.bench_function(BenchmarkId::new("cpu_im2col", case.name), |b| {
            b.iter(|| cpu::conv2d_im2col(x.view(), w.view(), None, &case.params).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_conv2d);
criterion_main!(benches);
