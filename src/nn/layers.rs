//! The layers: `Conv2d` (also the dense layer), `MaxPool2d`, and `Sequential` to chain them.

use ndarray::{ArrayView1, ArrayView4};

use super::tensor::{self, Backend, Indices, Tensor};
use crate::activation::{Activation, SavedTensor};
use crate::error::{invalid, Result};
use crate::grads::GradSelection;
use crate::params::{Conv2dParams, Layout, Pool2dParams};

/// A trainable tensor, its accumulated gradient, and the optimizer's state for it.
#[derive(Clone, Debug)]
pub struct Param {
    /// The values.
    pub value: Tensor,
    /// The gradient summed over the backward passes since the last optimizer step.
    pub grad: Option<Tensor>,
    /// SGD's momentum buffer, created by the first step with momentum (as `v = g`).
    pub(crate) velocity: Option<Tensor>,
}

impl Param {
    /// A parameter with these values and no gradient yet.
    pub fn new(value: Tensor) -> Self {
        Self {
            value,
            grad: None,
            velocity: None,
        }
    }

    /// Adds `grad` to the accumulated gradient (the first one is kept as it is).
    pub fn accumulate(&mut self, grad: Tensor) -> Result<()> {
        match &mut self.grad {
            None => self.grad = Some(grad),
            Some(sum) => tensor::accumulate(sum, &grad)?,
        }
        Ok(())
    }
}

/// One stage of a network. `forward` with `training` saves what `backward` needs; `backward`
/// takes the gradient of the stage's output, accumulates its parameters' gradients, and returns
/// the gradient of its input when `input_grad` asks for it.
pub trait Layer {
    /// The stage's output.
    fn forward(&mut self, input: &Tensor, training: bool) -> Result<Tensor>;
    /// The gradient of the input (if `input_grad`), from the gradient of the output.
    fn backward(&mut self, grad_output: &Tensor, input_grad: bool) -> Result<Option<Tensor>>;
    /// The trainable parameters (none by default).
    fn params(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }
}

/// What a training forward pass saved for the backward pass, taken (a backward pass uses it
/// once), or an error naming `op` when there is none.
fn take_saved<T>(saved: &mut Option<T>, op: &'static str) -> Result<T> {
    saved.take().ok_or_else(|| {
        invalid(
            op,
            "no saved forward pass: call forward with training = true first",
        )
    })
}

/// A convolution with bias and a fused activation: PyTorch's `nn.Conv2d` followed by the
/// activation, run as one kernel. The backward pass returns dx and accumulates dw and db.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// The weights, OIHW (or HWIO when `params.layout` is NHWC).
    pub weight: Param,
    /// The bias, one per output channel.
    pub bias: Param,
    params: Conv2dParams,
    activation: Activation,
    /// What the last training forward pass used and made, for the backward pass.
    saved: Option<SavedForward>,
}

/// A training forward pass of [`Conv2d`], as its backward pass needs it.
#[derive(Clone, Debug)]
struct SavedForward {
    input: Tensor,
    /// The weights the pass used: an optimizer step before the backward pass updates the
    /// layer's own (in a copy, since this clone shares them), and the backward pass still
    /// differentiates the function the forward pass computed.
    weight: Tensor,
    /// The output, or the pre-activation where the output does not give the activation's
    /// derivative (leaky ReLU with a negative slope).
    activation_input: (Tensor, SavedTensor),
}

impl Conv2d {
    /// A layer with these weights and bias, uploaded to `backend`.
    pub fn new(
        backend: &Backend,
        weight: ArrayView4<f32>,
        bias: ArrayView1<f32>,
        params: Conv2dParams,
        activation: Activation,
    ) -> Result<Self> {
        Ok(Self {
            weight: Param::new(backend.upload(weight, params.layout)?),
            bias: Param::new(backend.upload_1d(bias)?),
            params,
            activation,
            saved: None,
        })
    }

    /// A dense (fully connected) layer as the convolution whose kernel covers its whole input:
    /// for an input of `C x H x W` per sample, `weight` is `[out_features, C, H, W]` (OIHW) in
    /// `Layout::Nchw` or `[H, W, C, out_features]` (HWIO) in `Layout::Nhwc`, and the output is
    /// `[N, out_features, 1, 1]` (NCHW) or `[N, 1, 1, out_features]` (NHWC).
    pub fn dense(
        backend: &Backend,
        weight: ArrayView4<f32>,
        bias: ArrayView1<f32>,
        activation: Activation,
        layout: Layout,
    ) -> Result<Self> {
        let params = Conv2dParams::default().with_layout(layout);
        Self::new(backend, weight, bias, params, activation)
    }
}

impl Layer for Conv2d {
    fn forward(&mut self, input: &Tensor, training: bool) -> Result<Tensor> {
        let conv = |activation| {
            tensor::conv2d(
                input,
                &self.weight.value,
                &self.bias.value,
                &self.params,
                activation,
            )
        };
        let output = conv(self.activation)?;
        self.saved = None;
        if training {
            // The pre-activation costs a second convolution, only where the output will not do.
            let activation_input = if self.activation.derivative_from_output() {
                (output.clone(), SavedTensor::Output)
            } else {
                (conv(Activation::None)?, SavedTensor::PreActivation)
            };
            self.saved = Some(SavedForward {
                input: input.clone(),
                weight: self.weight.value.clone(),
                activation_input,
            });
        }
        Ok(output)
    }

    fn backward(&mut self, grad_output: &Tensor, input_grad: bool) -> Result<Option<Tensor>> {
        let saved = take_saved(&mut self.saved, "nn::Conv2d::backward")?;
        let (activation_input, kind) = &saved.activation_input;
        let dz =
            tensor::activation_backward(grad_output, activation_input, self.activation, *kind)?;
        let which = GradSelection {
            input: input_grad,
            weight: true,
            bias: true,
        };
        let grads = tensor::conv2d_backward(&saved.input, &saved.weight, &dz, &self.params, which)?;
        self.weight.accumulate(grads.weight.expect("requested"))?;
        self.bias.accumulate(grads.bias.expect("requested"))?;
        Ok(grads.input)
    }

    fn params(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight, &mut self.bias]
    }
}

/// Max pooling (PyTorch's `nn.MaxPool2d`); in training it keeps its argmax indices, through
/// which the backward pass routes the gradient.
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    params: Pool2dParams,
    /// The indices and the input's shape from the last training forward pass.
    saved: Option<(Indices, [usize; 4])>,
}

impl MaxPool2d {
    /// A pooling layer with these parameters.
    pub fn new(params: Pool2dParams) -> Self {
        Self {
            params,
            saved: None,
        }
    }
}

impl Layer for MaxPool2d {
    fn forward(&mut self, input: &Tensor, training: bool) -> Result<Tensor> {
        let shape: [usize; 4] = input.shape().as_slice().try_into().map_err(|_| {
            invalid(
                "nn::MaxPool2d::forward",
                format!("input must be 4-D, got shape {:?}", input.shape()),
            )
        })?;
        let (output, indices) = tensor::max_pool2d(input, &self.params, training)?;
        self.saved = indices.map(|i| (i, shape));
        Ok(output)
    }

    fn backward(&mut self, grad_output: &Tensor, input_grad: bool) -> Result<Option<Tensor>> {
        let (indices, shape) = take_saved(&mut self.saved, "nn::MaxPool2d::backward")?;
        if !input_grad {
            return Ok(None);
        }
        tensor::max_pool2d_backward(grad_output, &indices, shape, &self.params).map(Some)
    }
}

/// Layers run in order; the backward pass runs them in reverse and skips the first layer's
/// input gradient, which nothing uses.
#[derive(Default)]
pub struct Sequential {
    /// The layers, input first.
    pub layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    /// A network of these layers.
    pub fn new(layers: Vec<Box<dyn Layer>>) -> Self {
        Self { layers }
    }

    /// The output of the last layer.
    pub fn forward(&mut self, input: &Tensor, training: bool) -> Result<Tensor> {
        let mut x = input.clone();
        for layer in &mut self.layers {
            x = layer.forward(&x, training)?;
        }
        Ok(x)
    }

    /// Back-propagates the gradient of the output, accumulating every parameter's gradient.
    pub fn backward(&mut self, grad_output: &Tensor) -> Result<()> {
        let mut grad = grad_output.clone();
        for (i, layer) in self.layers.iter_mut().enumerate().rev() {
            match layer.backward(&grad, i > 0)? {
                Some(g) => grad = g,
                None => break,
            }
        }
        Ok(())
    }

    /// Every layer's parameters, in layer order.
    pub fn params(&mut self) -> Vec<&mut Param> {
        self.layers.iter_mut().flat_map(|l| l.params()).collect()
    }
}
