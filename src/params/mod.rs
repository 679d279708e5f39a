//! Parameter types and ALL output-size arithmetic, shared by the GPU and CPU paths.
//!
//! Every op validates its arguments here, once, before any buffer is created. The output size of
//! one spatial axis follows PyTorch:
//! `out = floor((in + pad_before + pad_after - dilation*(k-1) - 1) / stride) + 1`.

mod axis;
mod checks;
pub(crate) use checks::check_same_shape;
mod conv;
mod conv_transpose;
mod layout;
mod padding;
mod pool;

pub use axis::AxisGeometry;
pub use conv::{Conv2dGeometry, Conv2dParams};
pub use conv_transpose::ConvTranspose2dParams;
pub use layout::Layout;
pub use padding::Padding;
pub use pool::{IndexStyle, Pool2dGeometry, Pool2dParams};
