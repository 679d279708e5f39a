//! criterion: one group per op (conv2d forward, conv2d backward, max pooling forward and
//! backward), GPU (waiting for completion) and CPU side by side. Small shapes when `CI` is set;
//! `cargo bench --bench conv2d` for the full set.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ndarray::Array4;
use wgconv::{
    conv2d, conv2d_backward, cpu, max_pool2d_backward, max_pool2d_with_indices, Conv2dParams, Gpu,
    GpuTensor, GradSelection, Padding, Pool2dParams,
};

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

fn bench_conv2d_backward(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    let mut group = c.benchmark_group("conv2d_backward");
    group.sample_size(10);
    let grads = GradSelection {
        input: true,
        weight: true,
        bias: false,
    };
    for case in cases() {
        let g = case
            .params
            .geometry("bench", case.input, case.weight, None)
            .unwrap();
        group.throughput(Throughput::Elements(2 * g.flops() as u64));
        let (x, w, dy) = (
            filled(case.input),
            filled(case.weight),
            filled(g.output_shape()),
        );
        let xt = GpuTensor::upload(&gpu, x.view()).unwrap();
        let wt = GpuTensor::upload(&gpu, w.view()).unwrap();
        let dyt = GpuTensor::upload(&gpu, dy.view()).unwrap();
        group.bench_function(BenchmarkId::new("gpu", case.name), |b| {
            b.iter(|| {
                let r = conv2d_backward(&xt, &wt, &dyt, &case.params, grads).unwrap();
                gpu.synchronize().unwrap();
                r
            })
        });
        group.bench_function(BenchmarkId::new("cpu_im2col", case.name), |b| {
            b.iter(|| {
                cpu::conv2d_backward_im2col(x.view(), w.view(), dy.view(), &case.params, grads)
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn bench_max_pool2d(c: &mut Criterion) {
    let gpu = Gpu::new().expect("benchmarks need a GPU adapter");
    let mut group = c.benchmark_group("max_pool2d");
    group.sample_size(10);
    let shape = if std::env::var_os("CI").is_some() {
        [1, 16, 32, 32]
    } else {
        [1, 64, 112, 112]
    };
    let p = Pool2dParams::new(3, 3).with_stride(2).with_padding(1);
    let g = p.geometry("bench", shape).unwrap();
    group.throughput(Throughput::Bytes(g.forward_bytes(true) as u64));
    let x = filled(shape);
    let dy = filled(g.output_shape());
    let xt = GpuTensor::upload(&gpu, x.view()).unwrap();
    let dyt = GpuTensor::upload(&gpu, dy.view()).unwrap();
    let (_, indices) = max_pool2d_with_indices(&xt, &p).unwrap();
    let cpu_indices = cpu::max_pool2d_with_indices(x.view(), &p).unwrap().1;
    group.bench_function("gpu_forward", |b| {
        b.iter(|| {
            let r = max_pool2d_with_indices(&xt, &p).unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });
    group.bench_function("cpu_forward", |b| {
        b.iter(|| cpu::max_pool2d_with_indices(x.view(), &p).unwrap())
    });
    group.bench_function("gpu_backward", |b| {
        b.iter(|| {
            let r = max_pool2d_backward(&dyt, &indices, shape, &p).unwrap();
            gpu.synchronize().unwrap();
            r
        })
    });
    group.bench_function("cpu_backward", |b| {
        b.iter(|| cpu::max_pool2d_backward(dy.view(), cpu_indices.view(), shape, &p).unwrap())
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_conv2d,
    bench_conv2d_backward,
    bench_max_pool2d
);
criterion_main!(benches);
