//! The CPU reference: readable loops that are the specification, plus faster baselines.
//!
//! Every function here has the same parameters as its GPU twin in [`crate::ops`], taking ndarray
//! views instead of [`crate::GpuTensor`]s, and validates them through the same
//! [`crate::params`] code, so both paths accept and reject exactly the same calls.

mod conv2d;
mod conv2d_backward;
mod max_pool2d;

pub use conv2d::{conv2d, conv2d_f64, conv2d_im2col, Real};
pub use conv2d_backward::{
    conv2d_backward, conv2d_backward_bias, conv2d_backward_im2col, conv2d_backward_input,
    conv2d_backward_weight, conv_transpose2d,
};
pub(crate) use max_pool2d::check_pool_shapes;
pub use max_pool2d::{max_pool2d, max_pool2d_backward, max_pool2d_with_indices};

use ndarray::ArrayView4;

/// The shape of a 4-D view as an array.
pub(crate) fn shape4<T>(view: &ArrayView4<T>) -> [usize; 4] {
    let d = view.dim();
    [d.0, d.1, d.2, d.3]
}
