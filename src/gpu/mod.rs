//! The GPU path: the runtime (device, tensors, pipelines), the planning of dispatches, the
//! splitting of work past device limits, and one folder per op family.
//!
//! Dependencies point one way: the op families (`conv2d`, `pool2d`, `activation`) use `split`,
//! `plan` and `runtime`; `split` uses `plan` and `runtime`; `plan` uses `runtime`; `runtime`
//! knows no op. `kernels` is the one registry of shader modules and kernel entry points.

mod activation;
pub mod conv2d;
#[cfg(test)]
mod cost_model;
mod kernels;
#[cfg(test)]
mod lane_address;
mod op_call;
pub(crate) mod optimizer;
pub(crate) mod plan;
pub mod pool2d;
pub(crate) mod runtime;
mod shader_copy;
#[cfg(test)]
mod shader_ir;
pub(crate) mod split;

pub use activation::activation_backward;
pub use conv2d::backward::{
    conv2d_backward, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    conv_transpose2d,
};
pub use conv2d::forward::{conv2d, conv2d_with_activation};
pub use conv2d::{ConvPass, ConvVariant};
pub use kernels::{shader_sources, ShaderTarget};
pub use op_call::OpCall;
pub use plan::memory::MemoryEstimate;
pub use pool2d::max_pool2d::{
    max_pool2d, max_pool2d_backward, max_pool2d_with_indices, PoolVariant, POOL_VARIANT_ENV,
};
pub use runtime::buffer_pool::{PoolStats, PooledBuffer};
pub use runtime::gpu::{Gpu, ADAPTER_ENV};
pub use runtime::tensor::{Contents, GpuTensor, IndexOrigin};
pub use shader_copy::copy_through_shader;
