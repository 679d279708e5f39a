//! The runtime: adapter choice, the device and its error capture, tensors and their segments,
//! the buffer pool, pipelines, uniforms, encoding and timing. It knows no op.

pub(crate) mod adapter;
pub(crate) mod buffer_pool;
pub(crate) mod dispatch;
pub(crate) mod extensions;
pub(crate) mod gpu;
pub(crate) mod launch;
pub(crate) mod pipelines;
pub(crate) mod profiler;
pub(crate) mod segments;
pub(crate) mod tensor;
pub(crate) mod uniforms;
