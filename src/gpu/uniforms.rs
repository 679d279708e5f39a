//! Rust twins of the shaders' uniform structs, with their field layout exposed for a test.

/// Declares a `#[repr(C)]` all-`u32` uniform struct and `FIELDS`, its field names and byte
/// offsets, which `tests/shaders.rs` compares with the WGSL struct of the same name.
macro_rules! uniform_struct {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:ident),* $(,)? }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
        pub struct $name {
            $(pub $field: u32),*
        }

        impl $name {
            /// Field names and byte offsets, in declaration order.
            pub const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), std::mem::offset_of!($name, $field))),*];
            /// Name of the WGSL struct this mirrors.
            pub const WGSL_NAME: &'static str = stringify!($name);
        }
    };
}

uniform_struct! {
    /// Mirrors `Conv2dUniforms` in `shaders/conv2d.wgsl`.
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
        w_base, insert_shift_h, insert_shift_w, _pad0,
    }
}

uniform_struct! {
    /// Mirrors `GemmConvUniforms` in `shaders/conv2d_subgroup.wgsl`, `shaders/conv2d_pack.wgsl`
    /// and `shaders/conv2d_packed.wgsl`: the gather-convolution description shared by the
    /// forward, input-gradient and weight-gradient GEMM kernels and their repacking kernels
    /// (see `gpu::conv2d_gemm` and `gpu::conv2d_packed`). Signed fields carry i32 bits.
    pub struct GemmConvUniforms {
        pixels, grid_h, grid_w, groups,
        channels_per_group, reduce_per_group, channel_tiles_per_group, column_blocks,
        taps_h, taps_w, src_h, src_w,
        src_step_h, src_step_w, src_off_h, src_off_w,
        tap_step_h, tap_step_w, dst_step_h, dst_step_w,
        dst_off_h, dst_off_w, has_bias, activation,
        activation_slope, invocations, rows_per_block, blocks,
        reduce_len, batch, packed_h, packed_w,
        src_stride_n, src_stride_c, src_stride_h, src_stride_w,
        dst_stride_n, dst_stride_c, dst_stride_h, dst_stride_w,
        w_base, w_stride_m, w_stride_g, w_stride_r,
        w_tap_h, w_tap_w, pack_off_h, pack_off_w,
        reduce4, m_pad, packed_w_base, k_vec,
        ow4, _pad0, _pad1, _pad2,
    }
}

uniform_struct! {
    /// Mirrors `Pool2dUniforms` in `shaders/max_pool2d.wgsl`.
    pub struct Pool2dUniforms {
        batch, channels, in_h, in_w,
        out_h, out_w, kernel_h, kernel_w,
        stride_h, stride_w, pad_h, pad_w,
        dilation_h, dilation_w, invocations, index_style,
        in_stride_n, in_stride_c, in_stride_h, in_stride_w,
        out_stride_n, out_stride_c, out_stride_h, out_stride_w,
        index_base, _pad0, _pad1, _pad2,
    }
}

uniform_struct! {
    /// Mirrors `ActivationUniforms` in `shaders/activation.wgsl`.
    pub struct ActivationUniforms {
        len, activation, activation_slope, saved_is_output,
        invocations, _pad0, _pad1, _pad2,
    }
}

uniform_struct! {
    /// Mirrors `CopyUniforms` in `shaders/copy.wgsl`.
    pub struct CopyUniforms {
        vec4s, invocations, _pad0, _pad1,
    }
}
