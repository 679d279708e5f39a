//! The GPU path: context, tensors, pipelines and the host side of each kernel family.

pub mod activation;
mod context;
pub mod conv2d;
pub mod conv2d_backward;
pub mod conv2d_depthwise;
pub mod conv2d_gemm;
pub mod conv2d_packed;
mod copy;
pub mod dispatch;
mod launch;
pub mod max_pool2d;
pub mod memory;
mod partial_sums;
pub mod pipelines;
pub mod plan;
pub mod planner;
pub mod pool;
mod profiler;
mod segments;
mod shader_copy;
mod split;
mod split_conv;
mod split_flat;
mod split_grad;
mod split_grad_tiles;
mod split_pool;
mod tensor;
pub mod tuning;
pub mod uniforms;

pub use activation::activation_backward;
pub use context::{Gpu, ADAPTER_ENV, POOL_VARIANT_ENV};
pub use conv2d::{conv2d, conv2d_with_activation};
pub use conv2d_backward::{
    conv2d_backward, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    conv_transpose2d,
};
pub use max_pool2d::{max_pool2d, max_pool2d_backward, max_pool2d_with_indices, PoolVariant};
pub use memory::{MemoryEstimate, OpCall};
pub use planner::{ConvPass, ConvVariant};
pub use pool::{PoolStats, PooledBuffer};
pub use shader_copy::copy_through_shader;
pub use tensor::{Contents, GpuTensor, IndexOrigin};
