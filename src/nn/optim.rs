//! `Sgd`: stochastic gradient descent with momentum, PyTorch's `torch.optim.SGD`.

use super::layers::Param;
use super::tensor::{self, Backend};
use crate::error::Result;
use crate::gpu::optimizer::SgdStep;

/// SGD with momentum and weight decay, as `torch.optim.SGD(lr, momentum, weight_decay)` with
/// no dampening and no Nesterov: `g = grad + weight_decay * w`, `v = momentum * v + g`,
/// `w -= lr * v`. On the GPU the update runs in place on the parameters' buffers.
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
    /// Updates every parameter that has a gradient, then clears the gradients.
    pub fn step<'a>(
        &self,
        backend: &Backend,
        params: impl IntoIterator<Item = &'a mut Param>,
    ) -> Result<()> {
        let step = SgdStep {
            learning_rate: self.learning_rate,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        };
        for param in params {
            let Some(grad) = param.grad.take() else {
                continue;
            };
            let velocity = match &mut param.velocity {
                Some(v) => v,
                None => param.velocity.insert(backend.zeros_like(&param.value)?),
            };
            tensor::sgd_momentum_step(&mut param.value, velocity, &grad, step)?;
        }
        Ok(())
    }
}
