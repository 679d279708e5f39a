//! conv2d, its gradients and conv_transpose2d: the kernel variants, the planner that picks one
//! per pass, and the splits of work past device limits.

pub(crate) mod backward;
pub(crate) mod depthwise;
pub(crate) mod forward;
pub(crate) mod gemm;
pub(crate) mod packed;
pub(crate) mod split_backward;
pub(crate) mod split_backward_tiles;
pub(crate) mod split_forward;
pub(crate) mod subgroup;
pub(crate) mod tune;
mod tune_cache;
pub(crate) mod variant;

pub use depthwise::forward_fits as depthwise_forward_fits;
pub use depthwise::DepthwiseLanes;
pub use tune::{default_cache_path, Tuner};
pub use variant::{choose, plan, Choice, ConvPass, ConvVariant, VARIANT_ENV};
pub(crate) mod partial_sums;
pub(crate) mod uniforms;

/// Whether the depthwise kernels serve the input gradient of `g` (as a forward pass of
/// grad_output with the flipped kernel); where they do not, the direct kernels run it.
pub fn depthwise_input_grad_fits(g: &crate::params::Conv2dGeometry) -> bool {
    depthwise::input_grad_as_forward(g).is_some()
}
/// Output rows each invocation of the depthwise forward walks for `g` (at most 16, fewer where
/// the layer is too small to keep a large GPU busy otherwise).
pub fn depthwise_rows_per_invocation(g: &crate::params::Conv2dGeometry) -> usize {
    depthwise::forward_rows_per_invocation(g)
}
pub(crate) mod direct;
pub(crate) mod reduce;
