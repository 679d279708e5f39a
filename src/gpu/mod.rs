//! The GPU path: context, tensors, pipelines and the host side of each kernel family.

mod context;
pub mod conv2d;
pub mod dispatch;
mod launch;
pub mod pipelines;
mod tensor;
pub mod uniforms;

pub use context::{Gpu, ADAPTER_ENV};
pub use conv2d::conv2d;
pub use tensor::GpuTensor;
