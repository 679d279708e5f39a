//! Peer benchmark: burn's wgpu backend against wgconv, same adapter, same shapes, one process.
//!
//! Both sides are timed the same way: the op, then a device sync (no readback), median of
//! `--repeat` runs after warm-up runs (burn's cubecl autotunes kernels on first use). burn's
//! input gradient is its `conv_transpose2d` (what its autodiff runs), its weight gradient
//! `conv2d_weight_backward`.

use std::time::{Duration, Instant};

use burn::tensor::module;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions};
use burn::tensor::{Device, Int, Tensor, TensorData};
use ndarray::Array4;
use wgconv::{Conv2dParams, Gpu, GpuTensor, GradSelection, Padding, Pool2dParams};

enum Layer {
    Conv {
        name: &'static str,
        c_in: usize,
        hw: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
    Pool {
        name: &'static str,
        c: usize,
        hw: usize,
        k: usize,
        stride: usize,
        pad: usize,
    },
}

const LAYERS: &[Layer] = &[
    Layer::Conv {
        name: "stem 7x7 s2 3->64 224",
        c_in: 3,
        hw: 224,
        c_out: 64,
        k: 7,
        stride: 2,
        pad: 3,
    },
    Layer::Conv {
        name: "3x3 64 56",
        c_in: 64,
        hw: 56,
        c_out: 64,
        k: 3,
        stride: 1,
        pad: 1,
    },
    Layer::Conv {
        name: "3x3 128 28",
        c_in: 128,
        hw: 28,
        c_out: 128,
        k: 3,
        stride: 1,
        pad: 1,
    },
    Layer::Conv {
        name: "3x3 256 14",
        c_in: 256,
        hw: 14,
        c_out: 256,
        k: 3,
        stride: 1,
        pad: 1,
    },
    Layer::Conv {
        name: "3x3 512 7",
        c_in: 512,
        hw: 7,
        c_out: 512,
        k: 3,
        stride: 1,
        pad: 1,
    },
    Layer::Conv {
        name: "1x1 expand 64->256 56",
        c_in: 64,
        hw: 56,
        c_out: 256,
        k: 1,
        stride: 1,
        pad: 0,
    },
    Layer::Conv {
        name: "3x3 s2 128 56->28",
        c_in: 128,
        hw: 56,
        c_out: 128,
        k: 3,
        stride: 2,
        pad: 1,
    },
    Layer::Conv {
        name: "1x1 s2 down 256->512 56",
        c_in: 256,
        hw: 56,
        c_out: 512,
        k: 1,
        stride: 2,
        pad: 0,
    },
    Layer::Pool {
        name: "pool 3x3 s2 p1 64 112",
        c: 64,
        hw: 112,
        k: 3,
        stride: 2,
        pad: 1,
    },
    Layer::Pool {
        name: "pool 2x2 s2 64 56",
        c: 64,
        hw: 56,
        k: 2,
        stride: 2,
        pad: 0,
    },
];

fn median(mut t: Vec<Duration>) -> Duration {
    t.sort();
    t[t.len() / 2]
}

fn time(warmup: usize, repeat: usize, mut f: impl FnMut()) -> Duration {
    for _ in 0..warmup {
        f();
    }
    median(
        (0..repeat)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn filled(shape: [usize; 4], salt: u32) -> Array4<f32> {
    let mut state = 0x2545_f491u32 ^ salt;
    Array4::from_shape_simple_fn(shape, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32 - 0.5
    })
}

fn burn_tensor(a: &Array4<f32>, device: &Device) -> Tensor<4> {
    let shape = a.shape().to_vec();
    Tensor::from_data(
        TensorData::new(a.iter().copied().collect::<Vec<f32>>(), shape),
        device,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str, default: usize| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().expect("a number"))
    };
    let batch = value("--batch", 1);
    let repeat = value("--repeat", 3).max(1);
    let warmup = value("--warmup", 2);
    let gpu = Gpu::new().expect("wgconv needs an adapter");
    let device = Device::default();
    let sync = |device: &Device| device.sync().expect("burn device sync");
    println!(
        "adapter (wgconv): {} ({:?}); burn device: {device:?}",
        gpu.adapter_info().name,
        gpu.adapter_info().backend
    );
    println!("batch {batch}, median of {repeat} after {warmup} warm-up runs; ratio = burn time / wgconv time (above 1: wgconv faster)");
    println!(
        "{:<26} {:<9} {:>12} {:>12} {:>8}",
        "layer", "op", "burn ms", "wgconv ms", "ratio"
    );
    let (mut burn_total, mut ours_total) = (Duration::ZERO, Duration::ZERO);
    let mut row = |layer: &str, op: &str, burn: Duration, ours: Duration| {
        burn_total += burn;
        ours_total += ours;
        println!(
            "{layer:<26} {op:<9} {:>12.3} {:>12.3} {:>8.2}",
            burn.as_secs_f64() * 1e3,
            ours.as_secs_f64() * 1e3,
            burn.as_secs_f64() / ours.as_secs_f64()
        );
    };
    for layer in LAYERS {
        match *layer {
            Layer::Conv {
                name,
                c_in,
                hw,
                c_out,
                k,
                stride,
                pad,
            } => {
                let p = Conv2dParams::default()
                    .with_stride(stride)
                    .with_padding(Padding::uniform(pad));
                let g = p
                    .geometry("peer", [batch, c_in, hw, hw], [c_out, c_in, k, k], None)
                    .expect("valid layer");
                let (x, w, dy) = (
                    filled(g.input_shape(), 1),
                    filled(g.weight_shape(), 2),
                    filled(g.output_shape(), 3),
                );
                let (bx, bw, bdy) = (
                    burn_tensor(&x, &device),
                    burn_tensor(&w, &device),
                    burn_tensor(&dy, &device),
                );
                let (gx, gw, gdy) = (
                    GpuTensor::upload(&gpu, x.view()).unwrap(),
                    GpuTensor::upload(&gpu, w.view()).unwrap(),
                    GpuTensor::upload(&gpu, dy.view()).unwrap(),
                );
                let options = ConvOptions::new([stride; 2], [pad; 2], [1; 2], 1);
                // The rows a strided conv drops at the end come back as output padding.
                let out_pad = hw - ((g.h.output - 1) * stride + k - 2 * pad);
                let t_options =
                    ConvTransposeOptions::new([stride; 2], [pad; 2], [out_pad; 2], [1; 2], 1);
                let burn_fwd = time(warmup, repeat, || {
                    let _ = module::conv2d(bx.clone(), bw.clone(), None, options.clone());
                    sync(&device);
                });
                let ours_fwd = time(warmup, repeat, || {
                    let _ = wgconv::conv2d(&gx, &gw, None, &p).unwrap();
                    gpu.synchronize().unwrap();
                });
                row(name, "forward", burn_fwd, ours_fwd);
                let burn_dx = time(warmup, repeat, || {
                    let _ =
                        module::conv_transpose2d(bdy.clone(), bw.clone(), None, t_options.clone());
                    sync(&device);
                });
                let ours_dx = time(warmup, repeat, || {
                    let _ =
                        wgconv::conv2d_backward(&gx, &gw, &gdy, &p, GradSelection::INPUT).unwrap();
                    gpu.synchronize().unwrap();
                });
                row("", "dx", burn_dx, ours_dx);
                let burn_dw = time(warmup, repeat, || {
                    let _ = module::conv2d_weight_backward(
                        bx.clone(),
                        bw.clone(),
                        bdy.clone(),
                        options.clone(),
                    );
                    sync(&device);
                });
                let ours_dw = time(warmup, repeat, || {
                    let _ =
                        wgconv::conv2d_backward(&gx, &gw, &gdy, &p, GradSelection::WEIGHT).unwrap();
                    gpu.synchronize().unwrap();
                });
                row("", "dw", burn_dw, ours_dw);
            }
            Layer::Pool {
                name,
                c,
                hw,
                k,
                stride,
                pad,
            } => {
                let p = Pool2dParams::new(k, k)
                    .with_stride(stride)
                    .with_padding(pad);
                let g = p.geometry("peer", [batch, c, hw, hw]).expect("valid layer");
                let (x, dy) = (filled(g.input_shape(), 4), filled(g.output_shape(), 5));
                let (bx, bdy) = (burn_tensor(&x, &device), burn_tensor(&dy, &device));
                let (gx, gdy) = (
                    GpuTensor::upload(&gpu, x.view()).unwrap(),
                    GpuTensor::upload(&gpu, dy.view()).unwrap(),
                );
                let options = MaxPoolOptions::new([k; 2])
                    .with_stride([stride; 2])
                    .with_padding([pad; 2]);
                let burn_fwd = time(warmup, repeat, || {
                    let _ = module::max_pool2d_with_indices(bx.clone(), options.clone());
                    sync(&device);
                });
                let ours_fwd = time(warmup, repeat, || {
                    let _ = wgconv::max_pool2d_with_indices(&gx, &p).unwrap();
                    gpu.synchronize().unwrap();
                });
                row(name, "forward", burn_fwd, ours_fwd);
                let (_, burn_indices): (Tensor<4>, Tensor<4, Int>) =
                    module::max_pool2d_with_indices(bx.clone(), options.clone());
                let (_, our_indices) = wgconv::max_pool2d_with_indices(&gx, &p).unwrap();
                let burn_bwd = time(warmup, repeat, || {
                    let _ = module::max_pool2d_with_indices_backward(
                        bx.clone(),
                        [k; 2],
                        [stride; 2],
                        [pad; 2],
                        [1; 2],
                        false,
                        bdy.clone(),
                        burn_indices.clone(),
                    );
                    sync(&device);
                });
                let ours_bwd = time(warmup, repeat, || {
                    let _ = wgconv::max_pool2d_backward(&gdy, &our_indices, g.input_shape(), &p)
                        .unwrap();
                    gpu.synchronize().unwrap();
                });
                row("", "backward", burn_bwd, ours_bwd);
            }
        }
    }
    println!(
        "total: burn {:.1} ms, wgconv {:.1} ms, ratio {:.2}",
        burn_total.as_secs_f64() * 1e3,
        ours_total.as_secs_f64() * 1e3,
        burn_total.as_secs_f64() / ours_total.as_secs_f64()
    );
}
