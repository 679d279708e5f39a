//! The CPU reference: readable loops that are the specification, plus faster baselines.
//!
//! Every function here has the same parameters as its GPU twin in [`crate::ops`], taking ndarray
//! views instead of [`crate::GpuTensor`]s, and validates them through the same
//! [`crate::params`] code, so both paths accept and reject exactly the same calls.

mod conv2d;

pub use conv2d::{conv2d, conv2d_im2col};

use ndarray::ArrayView4;

/// The shape of a 4-D view as an array.
pub(crate) fn shape4(view: &ArrayView4<f32>) -> [usize; 4] {
    let d = view.dim();
    [d.0, d.1, d.2, d.3]
}
