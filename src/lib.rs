//! wgconv: 2-D convolution and max pooling as WGSL compute shaders on wgpu, checked against a
//! CPU reference written on ndarray.
//!
//! ```no_run
//! use ndarray::Array4;
//! use wgconv::{conv2d, Conv2dParams, Gpu, GpuTensor, Padding};
//!
//! # fn main() -> wgconv::Result<()> {
//! let gpu = Gpu::new()?;
//! let x = Array4::<f32>::ones((1, 3, 8, 8));
//! let w = Array4::<f32>::ones((4, 3, 3, 3));
//! let params = Conv2dParams::default().with_padding(Padding::Same);
//! let y = conv2d(&GpuTensor::upload(&gpu, x.view())?, &GpuTensor::upload(&gpu, w.view())?, None, &params)?;
//! assert_eq!(y.read()?.dim(), (1, 4, 8, 8));
//! # Ok(()) }
//! ```
//!
//! Conventions follow PyTorch: NCHW input, OIHW weights, cross-correlation (no kernel flip) and
//! `out = floor((in + pad_before + pad_after - dilation*(k-1) - 1)/stride) + 1` per axis.

#![warn(missing_docs)]

pub mod activation;
pub mod cpu;
pub mod error;
pub mod flags;
pub mod gpu;
pub mod grads;
// Only with `cli`: it is the command line's file format, on crates a library user need not build.
pub mod nn;
#[cfg(feature = "cli")]
pub mod npy;
pub mod params;
pub mod sweep;
pub mod verify;

pub use activation::{Activation, SavedTensor};
pub use error::{Error, Result};
// The function only: `gpu::conv2d` also names the op family's module.
pub use gpu::conv2d::forward::conv2d;
pub use gpu::{
    activation_backward, conv2d_backward, conv2d_backward_bias, conv2d_backward_input,
    conv2d_backward_weight, conv2d_with_activation, conv_transpose2d, max_pool2d,
    max_pool2d_backward, max_pool2d_with_indices, ConvPass, ConvVariant, Gpu, GpuTensor,
    MemoryEstimate, OpCall, PoolVariant,
};
pub use grads::{Conv2dGrads, GradSelection};
pub use params::{
    Conv2dGeometry, Conv2dParams, ConvTranspose2dParams, IndexStyle, Layout, Padding,
    Pool2dGeometry, Pool2dParams,
};
pub use verify::{compare, Bound, Comparison, ErrorBound, Tolerance};

/// Compiles the README's Rust code blocks as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
