//! Max pooling, forward with or without indices and backward, its kernel variants and its
//! splits of work past device limits.

pub(crate) mod max_pool2d;
pub(crate) mod split;
