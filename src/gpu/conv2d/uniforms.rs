//! The Rust twin of `Conv2dUniforms` (`shaders/conv2d/uniforms.wgsl`), the uniforms of the
//! direct, depthwise and reduction kernels, and the pipeline constants of their epilogue.

use crate::gpu::plan::StepUniforms;
use crate::gpu::runtime::pipelines::Overrides;
use crate::gpu::runtime::uniforms::uniform_struct;

uniform_struct! {
    /// Mirrors `Conv2dUniforms` in `shaders/conv2d/uniforms.wgsl`.
    pub struct Conv2dUniforms {
        batch, in_channels, in_h, in_w,
        out_channels, kernel_h, kernel_w, groups,
        stride_h, stride_w, dilation_h, dilation_w,
        pad_top, pad_left, out_h, out_w,
        in_channels_per_group, out_channels_per_group, channel_tiles_per_group, has_bias,
        invocations, rows_per_block, blocks, reduce_len,
        phase_gcd_h, phase_gcd_w, phase_step_h, phase_step_w,
        phase_inv_h, phase_inv_w, activation, activation_slope,
        in_stride_n, in_stride_c, in_stride_h, in_stride_w,
        out_stride_n, out_stride_c, out_stride_h, out_stride_w,
        w_stride_o, w_stride_i, w_stride_h, w_stride_w,
        w_base, insert_shift_h, insert_shift_w, reduce_segment,
        lanes_along_channels, quads_per_invocation, _pad0, _pad1,
    }
}

/// Bytes of the conv2d family's uniform struct, which every reduction pass also uploads.
pub(crate) const CONV_UNIFORMS: usize = std::mem::size_of::<Conv2dUniforms>();

/// The pipeline constants of the fused epilogue (`shaders/common/activate.wgsl`): whether it
/// adds a bias and whether it applies an activation (which one stays a uniform). lavapipe runs
/// every branch of a kernel under a lane mask, taken or not, so only a pipeline built without
/// them skips the bias loads and the activations' exponentials on every store.
pub(crate) fn epilogue_overrides(has_bias: u32, activation: u32) -> Overrides {
    Overrides::new(&[
        ("HAS_BIAS", has_bias != 0),
        ("HAS_ACTIVATION", activation != 0),
    ])
}

impl StepUniforms for Conv2dUniforms {
    fn overrides(&self) -> Overrides {
        epilogue_overrides(self.has_bias, self.activation)
    }
}
