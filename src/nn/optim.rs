//! `Sgd`: stochastic gradient descent with momentum, PyTorch's `torch.optim.SGD`.

use super::layers::Param;
use super::tensor::{self, Backend};
use crate::error::{invalid, Result};
use crate::gpu::optimizer::SgdStep;

/// SGD with momentum and weight decay, as `torch.optim.SGD(lr, momentum, weight_decay)` with
/// no dampening and no Nesterov: `g = grad + weight_decay * w`, `v = momentum * v + g`,
/// `w -= lr * v`. As in PyTorch, a factor of 0 drops its term (no decay is added, and without
/// momentum no momentum buffer is kept: `w -= lr * g`), and the first step with momentum
/// starts the buffer at `v = g`. On the GPU the update runs in place on the parameters'
/// buffers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// The learning rate.
    pub learning_rate: f32,
    /// The momentum factor (0 for plain SGD).
    pub momentum: f32,
    /// The L2 penalty.
    pub weight_decay: f32,
}

impl Sgd {
    /// Updates every parameter that has a gradient, then clears the gradients. A negative
    /// learning rate, momentum or weight decay is an error, as in PyTorch.
    pub fn step<'a>(
        &self,
        backend: &Backend,
        params: impl IntoIterator<Item = &'a mut Param>,
    ) -> Result<()> {
        for (name, value) in [
            ("learning_rate", self.learning_rate),
            ("momentum", self.momentum),
            ("weight_decay", self.weight_decay),
        ] {
            if value < 0.0 {
                return Err(invalid(
                    "nn::Sgd::step",
                    format!("{name} {value} is negative"),
                ));
            }
        }
        let step = SgdStep {
            learning_rate: self.learning_rate,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        };
        for param in params {
            let Some(grad) = param.grad.take() else {
                continue;
            };
            if self.momentum == 0.0 {
                tensor::sgd_step(&mut param.value, &grad, step)?;
                continue;
            }
            // PyTorch's first momentum step sets the buffer to the gradient: v = 0 * 0 + g.
            let (velocity, step) = match &mut param.velocity {
                Some(v) => (v, step),
                None => (
                    param.velocity.insert(backend.zeros_like(&param.value)?),
                    SgdStep {
                        momentum: 0.0,
                        ..step
                    },
                ),
            };
            tensor::sgd_momentum_step(&mut param.value, velocity, &grad, step)?;
        }
        Ok(())
    }
}
