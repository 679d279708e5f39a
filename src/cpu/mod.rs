//! The CPU reference: readable loops that are the specification, plus faster baselines.
//!
//! Every function here has the same parameters as its GPU twin at the crate root, taking ndarray
//! views instead of [`crate::GpuTensor`]s, and validates them through the same
//! [`crate::params`] code, so both paths accept and reject exactly the same calls.

mod activation;
mod conv2d;
mod conv2d_backward;
mod magnitude;
mod max_pool2d;

pub use activation::activation_backward;
pub use conv2d::{conv2d, conv2d_f64, conv2d_im2col, conv2d_with_activation, Real};
pub use conv2d_backward::{
    conv2d_backward, conv2d_backward_bias, conv2d_backward_im2col, conv2d_backward_input,
    conv2d_backward_weight, conv_transpose2d,
};
pub use magnitude::{
    conv2d_backward_bias_magnitude, conv2d_backward_input_magnitude, conv2d_backward_magnitude,
    conv2d_backward_weight_magnitude, conv2d_magnitude, conv_transpose2d_magnitude,
    max_pool2d_backward_magnitude,
};
pub(crate) use max_pool2d::check_pool_shapes;
pub use max_pool2d::{max_pool2d, max_pool2d_backward, max_pool2d_with_indices};

use ndarray::{Array4, ArrayView4, ArrayViewMut4, Axis};

use crate::params::Layout;

/// The shape of a 4-D view as an array.
pub(crate) fn shape4<T>(view: &ArrayView4<T>) -> [usize; 4] {
    let d = view.dim();
    [d.0, d.1, d.2, d.3]
}

/// An activation stored in `layout`, seen in `[n, c, h, w]` order (no copy).
pub(crate) fn nchw<T>(a: ArrayView4<T>, layout: Layout) -> ArrayView4<T> {
    a.permuted_axes(layout.activation_permutation())
}

/// A weight stored in `layout`, seen in `[o, i, kh, kw]` order and, for a true convolution,
/// flipped in both spatial axes (no copy).
pub(crate) fn oihw<T>(w: ArrayView4<T>, layout: Layout, flip: bool) -> ArrayView4<T> {
    let mut v = w.permuted_axes(layout.weight_permutation());
    if flip {
        v.invert_axis(Axis(2));
        v.invert_axis(Axis(3));
    }
    v
}

/// A zeroed activation of sizes `[n, c, h, w]` stored in `layout`.
pub(crate) fn new_activation<T: Clone + Default>(sizes: [usize; 4], layout: Layout) -> Array4<T> {
    Array4::default(layout.activation_shape(sizes))
}

/// A mutable `[n, c, h, w]`-order view of an activation stored in `layout`.
pub(crate) fn nchw_mut<T>(a: &mut Array4<T>, layout: Layout) -> ArrayViewMut4<'_, T> {
    a.view_mut().permuted_axes(layout.activation_permutation())
}
