//! `Gpu::memory_required`: the device memory a described call would take, asked of the op
//! family that would run it.

use crate::activation::Activation;
use crate::error::Result;
use crate::gpu::plan::memory::MemoryEstimate;
use crate::gpu::Gpu;
use crate::grads::GradSelection;
use crate::params::{Conv2dParams, ConvTranspose2dParams, Pool2dParams};

/// A call to describe to [`Gpu::memory_required`]: the op, the shapes of its tensors (in the
/// parameters' layout) and its parameters, as the op itself would take them.
#[derive(Clone, Debug, PartialEq)]
pub enum OpCall {
    /// [`crate::conv2d`] / [`crate::conv2d_with_activation`].
    Conv2d {
        /// The input's shape (conv_transpose2d: its input, the grad_output-shaped one).
        input: [usize; 4],
        /// The weight's shape.
        weight: [usize; 4],
        /// Whether a bias is passed.
        bias: bool,
        /// The parameters.
        params: Conv2dParams,
        /// The fused activation.
        activation: Activation,
    },
    /// [`crate::conv2d_backward`] with the gradients `which` selects (the single-gradient
    /// entry points are the same call with one gradient selected).
    Conv2dBackward {
        /// The input's shape (conv_transpose2d: its input, the grad_output-shaped one).
        input: [usize; 4],
        /// The weight's shape.
        weight: [usize; 4],
        /// The parameters.
        params: Conv2dParams,
        /// The gradients computed.
        which: GradSelection,
    },
    /// [`crate::conv_transpose2d`].
    ConvTranspose2d {
        /// The input's shape (conv_transpose2d: its input, the grad_output-shaped one).
        input: [usize; 4],
        /// The weight's shape.
        weight: [usize; 4],
        /// Whether a bias is passed.
        bias: bool,
        /// The parameters.
        params: ConvTranspose2dParams,
    },
    /// [`crate::max_pool2d`], or [`crate::max_pool2d_with_indices`] with `with_indices`.
    MaxPool2d {
        /// The input's shape (conv_transpose2d: its input, the grad_output-shaped one).
        input: [usize; 4],
        /// The parameters.
        params: Pool2dParams,
        /// Whether indices are returned too.
        with_indices: bool,
    },
    /// [`crate::max_pool2d_backward`] for a pooled input of `input` (its shape).
    MaxPool2dBackward {
        /// The input's shape (conv_transpose2d: its input, the grad_output-shaped one).
        input: [usize; 4],
        /// The parameters.
        params: Pool2dParams,
    },
    /// [`crate::activation_backward`] on tensors of `shape`.
    ActivationBackward {
        /// The shape of grad_output (and of the saved tensor).
        shape: Vec<usize>,
    },
}

impl Gpu {
    /// The device memory `call` would need on this `Gpu` now, given its storage-binding
    /// limit, memory budget (and what is in use), forced variant or tuning cache: validates
    /// the call as the op would, plans it and its splitting, and allocates and dispatches
    /// nothing. A call that would fail (bad shapes, too large, over the budget) gives the
    /// op's own error. With tuning on and no cached choice for a shape, the estimate takes the
    /// variant with the most scratch (the tuner's own timing runs are not included).
    pub fn memory_required(&self, call: &OpCall) -> Result<MemoryEstimate> {
        match call {
            OpCall::Conv2d {
                input,
                weight,
                bias,
                params,
                activation,
            } => crate::gpu::conv2d::forward::memory(
                self,
                *input,
                *weight,
                *bias,
                params,
                *activation,
            ),
            OpCall::Conv2dBackward {
                input,
                weight,
                params,
                which,
            } => {
                crate::gpu::conv2d::backward::backward_memory(self, *input, *weight, params, *which)
            }
            OpCall::ConvTranspose2d {
                input,
                weight,
                bias,
                params,
            } => {
                crate::gpu::conv2d::backward::transpose_memory(self, *input, *weight, *bias, params)
            }
            OpCall::MaxPool2d {
                input,
                params,
                with_indices,
            } => {
                crate::gpu::pool2d::max_pool2d::forward_memory(self, *input, params, *with_indices)
            }
            OpCall::MaxPool2dBackward { input, params } => {
                crate::gpu::pool2d::max_pool2d::backward_memory(self, *input, params)
            }
            OpCall::ActivationBackward { shape } => crate::gpu::activation::memory(self, shape),
        }
    }
}
