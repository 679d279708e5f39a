//! Activations for the fused conv2d epilogue, and their derivatives for the backward op.

use crate::error::{invalid, Result};

/// An elementwise activation applied after the bias in [`crate::conv2d_with_activation`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    /// The identity.
    #[default]
    None,
    /// `max(x, 0)`; NaN stays NaN.
    Relu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `x` for `x > 0`, `slope * x` otherwise.
    LeakyRelu {
        /// The slope for negative inputs (PyTorch's `negative_slope`).
        slope: f32,
    },
}

/// Which forward tensor [`crate::activation_backward`] is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavedTensor {
    /// The activation's output `y = f(z)`: enough for ReLU, sigmoid, tanh, and leaky ReLU with
    /// a slope of 0 or more (PyTorch's `self_is_result`).
    Output,
    /// The pre-activation `z` (the conv output before the activation): works for every
    /// activation.
    PreActivation,
}

impl Activation {
    /// `(code, slope bits)` as the shaders read them.
    pub(crate) fn code(self) -> (u32, u32) {
        match self {
            Activation::None => (0, 0),
            Activation::Relu => (1, 0),
            Activation::Sigmoid => (2, 0),
            Activation::Tanh => (3, 0),
            Activation::LeakyRelu { slope } => (4, slope.to_bits()),
        }
    }

    /// The activation in f64, the reference the GPU epilogue is checked against.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Activation::None => x,
            Activation::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::LeakyRelu { slope } => {
                if x > 0.0 {
                    x
                } else {
                    f64::from(slope) * x
                }
            }
        }
    }

    /// The gradient with respect to the pre-activation, `dy * f'(z)`, from the saved tensor `v`
    /// (the output `y` or the pre-activation `z`), in f64 with PyTorch's formulas: ReLU gives
    /// `0` where `v <= 0` and `dy` elsewhere (so a NaN passes the gradient through), leaky ReLU
    /// `dy` where `v > 0` and `slope * dy` elsewhere.
    pub fn backward(self, dy: f64, v: f64, saved: SavedTensor) -> f64 {
        let from_output = saved == SavedTensor::Output;
        match self {
            Activation::None => dy,
            Activation::Relu => {
                if v <= 0.0 {
                    0.0
                } else {
                    dy
                }
            }
            Activation::LeakyRelu { slope } => {
                if v > 0.0 {
                    dy
                } else {
                    dy * f64::from(slope)
                }
            }
            Activation::Sigmoid => {
                let y = if from_output { v } else { self.apply(v) };
                dy * (y * (1.0 - y))
            }
            Activation::Tanh => {
                let y = if from_output { v } else { v.tanh() };
                dy * (1.0 - y * y)
            }
        }
    }

    /// Whether the output gives the derivative: not for leaky ReLU with a negative (or NaN)
    /// slope, which does not keep the sign. A slope of 0 is ReLU: the output is positive
    /// exactly where the input is.
    pub(crate) fn derivative_from_output(self) -> bool {
        match self {
            Activation::LeakyRelu { slope } => slope >= 0.0,
            _ => true,
        }
    }

    /// `Err` when the derivative cannot be recovered from the saved tensor.
    pub(crate) fn check_saved(self, op: &'static str, saved: SavedTensor) -> Result<()> {
        if let (Activation::LeakyRelu { slope }, SavedTensor::Output) = (self, saved) {
            if !self.derivative_from_output() {
                return Err(invalid(
                    op,
                    format!(
                        "leaky ReLU with slope {slope} does not keep the sign, so its derivative \
                         needs the pre-activation (SavedTensor::PreActivation), not the output"
                    ),
                ));
            }
        }
        Ok(())
    }
}
