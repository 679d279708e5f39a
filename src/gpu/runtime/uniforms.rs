//! `uniform_struct!`: how an op family declares the Rust twin of a shader's uniform struct,
//! with its field layout exposed for the test that compares the two.

/// Declares a `#[repr(C)]` all-`u32` uniform struct and `FIELDS`, its field names and byte
/// offsets, which the registry's tests (`gpu::kernels`) compare with the WGSL struct of the same name.
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
            #[cfg_attr(not(test), allow(dead_code))]
            pub const FIELDS: &'static [(&'static str, usize)] =
                &[$((stringify!($field), std::mem::offset_of!($name, $field))),*];
            /// Name of the WGSL struct this mirrors.
            #[cfg_attr(not(test), allow(dead_code))]
            pub const WGSL_NAME: &'static str = stringify!($name);
        }
    };
}

pub(crate) use uniform_struct;
