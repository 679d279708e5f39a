//! `Backend` and `Tensor`: one value says where a network runs, and every op the layers use
//! dispatches on it to the GPU op or its CPU reference.

use std::ops::Range;

use ndarray::{Array1, ArrayD, ArrayView1, ArrayView4, Ix1, Ix4};

use crate::activation::{Activation, SavedTensor};
use crate::error::{invalid, Result};
use crate::gpu::optimizer::{self, SgdStep};
use crate::gpu::split::copy::{slice, Box4};
use crate::grads::{Conv2dGrads, GradSelection};
use crate::params::{Conv2dParams, Layout, Pool2dParams};
use crate::{cpu, Gpu, GpuTensor};

/// Where a network's tensors live and its ops run.
#[derive(Clone, Debug)]
pub enum Backend {
    /// wgconv's GPU ops on this device; tensors stay in GPU memory between layers.
    Gpu(Gpu),
    /// The CPU reference (`wgconv::cpu`): plain loops with f64 accumulation.
    Cpu,
}

impl Backend {
    /// `gpu (ADAPTER, API)` or `cpu`, for logs and reports.
    pub fn name(&self) -> String {
        match self {
            Backend::Gpu(gpu) => {
                let info = gpu.adapter_info();
                format!("gpu ({}, {})", info.name, info.backend)
            }
            Backend::Cpu => "cpu".to_string(),
        }
    }

    /// A 4-D tensor stored in `layout` (NCHW/OIHW, or NHWC/HWIO), on this backend.
    pub fn upload(&self, data: ArrayView4<f32>, layout: Layout) -> Result<Tensor> {
        Ok(match self {
            Backend::Gpu(gpu) => Tensor::Gpu(GpuTensor::upload_with_layout(gpu, data, layout)?),
            Backend::Cpu => Tensor::Cpu(data.to_owned().into_dyn()),
        })
    }

    /// A 1-D tensor (a bias), on this backend.
    pub fn upload_1d(&self, data: ArrayView1<f32>) -> Result<Tensor> {
        Ok(match self {
            Backend::Gpu(gpu) => Tensor::Gpu(GpuTensor::upload_1d(gpu, data)?),
            Backend::Cpu => Tensor::Cpu(data.to_owned().into_dyn()),
        })
    }

    /// Zeros shaped like `like`, on this backend.
    pub(crate) fn zeros_like(&self, like: &Tensor) -> Result<Tensor> {
        const OP: &str = "nn::Backend::zeros_like";
        let zeros = ArrayD::<f32>::zeros(like.shape());
        match (self, zeros.ndim()) {
            (Backend::Cpu, _) => Ok(Tensor::Cpu(zeros)),
            (Backend::Gpu(_), 1) => self.upload_1d(view1(OP, "tensor", &zeros)?),
            (Backend::Gpu(_), _) => self.upload(view4(OP, "tensor", &zeros)?, like.layout()),
        }
    }
}

/// A tensor of a network: in GPU memory or an ndarray, as its [`Backend`] keeps it.
#[derive(Clone, Debug)]
pub enum Tensor {
    /// In GPU memory.
    Gpu(GpuTensor),
    /// On the host, for the CPU reference.
    Cpu(ArrayD<f32>),
}

impl Tensor {
    /// The shape, outermost dimension first (as stored: NHWC tensors list H, W, C after N).
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Tensor::Gpu(t) => t.shape().to_vec(),
            Tensor::Cpu(a) => a.shape().to_vec(),
        }
    }

    /// The values on the host; waits for the GPU.
    pub fn to_array(&self) -> Result<ArrayD<f32>> {
        match self {
            Tensor::Gpu(t) => t.read_dyn(),
            Tensor::Cpu(a) => Ok(a.clone()),
        }
    }

    /// The samples `range` of a 4-D tensor (its first axis, in either layout) as a tensor of its
    /// own, copied where the tensor lives: a batch taken from data uploaded once.
    pub fn samples(&self, range: Range<usize>) -> Result<Tensor> {
        const OP: &str = "Tensor::samples";
        let shape = self.shape();
        let [n, c, h, w]: [usize; 4] = shape.as_slice().try_into().map_err(|_| {
            invalid(
                OP,
                format!("samples of a 4-D tensor, this one has shape {shape:?}"),
            )
        })?;
        if range.start >= range.end || range.end > n {
            return Err(invalid(
                OP,
                format!("samples {range:?} of a tensor of {n} samples (shape {shape:?})"),
            ));
        }
        Ok(match self {
            Tensor::Gpu(t) => {
                let from = Box4 {
                    start: [range.start, 0, 0, 0],
                    extent: [range.len(), c, h, w],
                };
                Tensor::Gpu(slice(t.gpu(), OP, t, from)?)
            }
            Tensor::Cpu(a) => Tensor::Cpu(a.slice_axis(ndarray::Axis(0), range.into()).to_owned()),
        })
    }

    /// The memory order of a 4-D GPU tensor; CPU tensors carry none (the layer's params say).
    fn layout(&self) -> Layout {
        match self {
            Tensor::Gpu(t) => t.layout(),
            Tensor::Cpu(_) => Layout::Nchw,
        }
    }
}

/// The CPU array as 4-D, or an error naming `what`.
fn view4<'a>(op: &'static str, what: &str, a: &'a ArrayD<f32>) -> Result<ArrayView4<'a, f32>> {
    a.view()
        .into_dimensionality::<Ix4>()
        .map_err(|_| invalid(op, format!("{what} must be 4-D, got shape {:?}", a.shape())))
}

fn view1<'a>(op: &'static str, what: &str, a: &'a ArrayD<f32>) -> Result<ArrayView1<'a, f32>> {
    a.view()
        .into_dimensionality::<Ix1>()
        .map_err(|_| invalid(op, format!("{what} must be 1-D, got shape {:?}", a.shape())))
}

fn mixed(op: &'static str) -> crate::Error {
    invalid(
        op,
        "tensors on different backends (GPU and CPU); upload them all through one Backend",
    )
}

/// conv2d with its fused bias and activation.
pub(crate) fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    params: &Conv2dParams,
    activation: Activation,
) -> Result<Tensor> {
    const OP: &str = "nn::Conv2d::forward";
    Ok(match (input, weight, bias) {
        (Tensor::Gpu(x), Tensor::Gpu(w), Tensor::Gpu(b)) => Tensor::Gpu(
            crate::conv2d_with_activation(x, w, Some(b), params, activation)?,
        ),
        (Tensor::Cpu(x), Tensor::Cpu(w), Tensor::Cpu(b)) => Tensor::Cpu(
            cpu::conv2d_with_activation(
                view4(OP, "input", x)?,
                view4(OP, "weight", w)?,
                Some(view1(OP, "bias", b)?),
                params,
                activation,
            )?
            .into_dyn(),
        ),
        _ => return Err(mixed(OP)),
    })
}

/// `grad_output * f'(z)` from the saved activation output.
pub(crate) fn activation_backward(
    grad_output: &Tensor,
    saved: &Tensor,
    activation: Activation,
    kind: SavedTensor,
) -> Result<Tensor> {
    const OP: &str = "nn::Conv2d::backward";
    if activation == Activation::None {
        return Ok(grad_output.clone());
    }
    Ok(match (grad_output, saved) {
        (Tensor::Gpu(dy), Tensor::Gpu(v)) => {
            Tensor::Gpu(crate::activation_backward(dy, v, activation, kind)?)
        }
        (Tensor::Cpu(dy), Tensor::Cpu(v)) => Tensor::Cpu(
            cpu::activation_backward(
                view4(OP, "grad_output", dy)?,
                view4(OP, "saved", v)?,
                activation,
                kind,
            )?
            .into_dyn(),
        ),
        _ => return Err(mixed(OP)),
    })
}

/// The selected conv2d gradients.
pub(crate) fn conv2d_backward(
    input: &Tensor,
    weight: &Tensor,
    grad_output: &Tensor,
    params: &Conv2dParams,
    which: GradSelection,
) -> Result<Conv2dGrads<Tensor, Tensor>> {
    const OP: &str = "nn::Conv2d::backward";
    Ok(match (input, weight, grad_output) {
        (Tensor::Gpu(x), Tensor::Gpu(w), Tensor::Gpu(dy)) => {
            let g = crate::conv2d_backward(x, w, dy, params, which)?;
            Conv2dGrads {
                input: g.input.map(Tensor::Gpu),
                weight: g.weight.map(Tensor::Gpu),
                bias: g.bias.map(Tensor::Gpu),
            }
        }
        (Tensor::Cpu(x), Tensor::Cpu(w), Tensor::Cpu(dy)) => {
            let g = cpu::conv2d_backward(
                view4(OP, "input", x)?,
                view4(OP, "weight", w)?,
                view4(OP, "grad_output", dy)?,
                params,
                which,
            )?;
            Conv2dGrads {
                input: g.input.map(|a| Tensor::Cpu(a.into_dyn())),
                weight: g.weight.map(|a| Tensor::Cpu(a.into_dyn())),
                bias: g.bias.map(|a: Array1<f32>| Tensor::Cpu(a.into_dyn())),
            }
        }
        _ => return Err(mixed(OP)),
    })
}

/// Pooling indices where the pooled values live.
#[derive(Clone, Debug)]
pub(crate) enum Indices {
    Gpu(GpuTensor),
    Cpu(ndarray::Array4<i64>),
}

/// Max pooling, with the indices when `training` (the backward pass routes through them).
pub(crate) fn max_pool2d(
    input: &Tensor,
    params: &Pool2dParams,
    training: bool,
) -> Result<(Tensor, Option<Indices>)> {
    const OP: &str = "nn::MaxPool2d::forward";
    Ok(match input {
        Tensor::Gpu(x) if training => {
            let (y, i) = crate::max_pool2d_with_indices(x, params)?;
            (Tensor::Gpu(y), Some(Indices::Gpu(i)))
        }
        Tensor::Gpu(x) => (Tensor::Gpu(crate::max_pool2d(x, params)?), None),
        Tensor::Cpu(x) => {
            let (y, i) = cpu::max_pool2d_with_indices(view4(OP, "input", x)?, params)?;
            (
                Tensor::Cpu(y.into_dyn()),
                training.then_some(Indices::Cpu(i)),
            )
        }
    })
}

/// Max pooling's backward pass through the saved indices.
pub(crate) fn max_pool2d_backward(
    grad_output: &Tensor,
    indices: &Indices,
    input_shape: [usize; 4],
    params: &Pool2dParams,
) -> Result<Tensor> {
    const OP: &str = "nn::MaxPool2d::backward";
    Ok(match (grad_output, indices) {
        (Tensor::Gpu(dy), Indices::Gpu(i)) => {
            Tensor::Gpu(crate::max_pool2d_backward(dy, i, input_shape, params)?)
        }
        (Tensor::Cpu(dy), Indices::Cpu(i)) => Tensor::Cpu(
            cpu::max_pool2d_backward(view4(OP, "grad_output", dy)?, i.view(), input_shape, params)?
                .into_dyn(),
        ),
        _ => return Err(mixed(OP)),
    })
}

/// `Err` unless the `named` host arrays have one shape: the CPU twin of the GPU optimizer ops'
/// own check (`gpu::optimizer`), with the same rule and wording.
fn check_same_shape(op: &'static str, named: &[(&str, &ArrayD<f32>)]) -> Result<()> {
    let shapes: Vec<(&str, &[usize])> = named.iter().map(|&(n, a)| (n, a.shape())).collect();
    crate::params::check_same_shape(op, &shapes)
}

/// `into += grad`, in place.
pub(crate) fn accumulate(into: &mut Tensor, grad: &Tensor) -> Result<()> {
    const OP: &str = "nn::Param::accumulate";
    match (into, grad) {
        (Tensor::Gpu(a), Tensor::Gpu(g)) => optimizer::accumulate_gradient(a, g),
        (Tensor::Cpu(a), Tensor::Cpu(g)) => {
            check_same_shape(OP, &[("accumulated gradient", a), ("gradient", g)])?;
            *a += g;
            Ok(())
        }
        _ => Err(mixed(OP)),
    }
}

/// The gradient with weight decay, where there is any: PyTorch adds the term only for a
/// weight decay that is not 0, which matters for an infinite weight (0 * inf is NaN).
fn decayed(g: f32, w: f32, step: SgdStep) -> f32 {
    if step.weight_decay != 0.0 {
        g + step.weight_decay * w
    } else {
        g
    }
}

/// One SGD step without momentum in place; on the CPU in the same f32 operations, in the same
/// order, as `shaders/optimizer.wgsl`.
pub(crate) fn sgd_step(weight: &mut Tensor, grad: &Tensor, step: SgdStep) -> Result<()> {
    const OP: &str = "nn::Sgd::step";
    match (weight, grad) {
        (Tensor::Gpu(w), Tensor::Gpu(g)) => optimizer::sgd_step(w, g, step),
        (Tensor::Cpu(w), Tensor::Cpu(g)) => {
            check_same_shape(OP, &[("weight", w), ("gradient", g)])?;
            ndarray::Zip::from(w).and(g).for_each(|w, &g| {
                *w -= step.learning_rate * decayed(g, *w, step);
            });
            Ok(())
        }
        _ => Err(mixed(OP)),
    }
}

/// One SGD-with-momentum step in place; on the CPU in the same f32 operations, in the same
/// order, as `shaders/optimizer.wgsl`.
pub(crate) fn sgd_momentum_step(
    weight: &mut Tensor,
    velocity: &mut Tensor,
    grad: &Tensor,
    step: SgdStep,
) -> Result<()> {
    const OP: &str = "nn::Sgd::step";
    match (weight, velocity, grad) {
        (Tensor::Gpu(w), Tensor::Gpu(v), Tensor::Gpu(g)) => {
            optimizer::sgd_momentum_step(w, v, g, step)
        }
        (Tensor::Cpu(w), Tensor::Cpu(v), Tensor::Cpu(g)) => {
            check_same_shape(OP, &[("weight", w), ("velocity", v), ("gradient", g)])?;
            ndarray::Zip::from(w).and(v).and(g).for_each(|w, v, &g| {
                let g = decayed(g, *w, step);
                *v = step.momentum * *v + g;
                *w -= step.learning_rate * *v;
            });
            Ok(())
        }
        _ => Err(mixed(OP)),
    }
}
