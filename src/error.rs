//! The crate's one error type: every fallible call returns `wgconv::Result`.

/// Everything that can go wrong in wgconv, with enough detail to act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No GPU adapter could be found (or none matched `WGCONV_ADAPTER`).
    #[error("no GPU adapter: {reason}")]
    NoAdapter {
        /// What the search found, or why nothing matched; where wgpu found no adapter at all,
        /// also which driver to install.
        reason: String,
    },

    /// A shape or parameter is invalid for the op; `what` names the argument and the numbers.
    #[error("{op}: {what}")]
    InvalidArgument {
        /// The op that failed, as its function is named (`conv2d`, `max_pool2d`, ...).
        op: &'static str,
        /// The argument, what is wrong with it, and the numbers.
        what: String,
    },

    /// The work is valid but exceeds a numeric or device limit (u32 indexing, buffer binding size).
    #[error("{op}: too large: {what}")]
    TooLarge {
        /// The op that failed, as its function is named (`conv2d`, `max_pool2d`, ...).
        op: &'static str,
        /// Which limit the work passes, and by how much.
        what: String,
    },

    /// wgpu reported a validation error or an internal error.
    #[error("{op}: GPU error: {message}")]
    Device {
        /// The op that failed, as its function is named (`conv2d`, `max_pool2d`, ...).
        op: &'static str,
        /// wgpu's message.
        message: String,
    },

    /// The device could not allocate memory for the call. The `Gpu` stays usable: free tensors
    /// (and [`crate::Gpu::clear_buffer_pool`]) or use smaller work.
    #[error("{op}: out of GPU memory: {message}")]
    OutOfMemory {
        /// The op that failed, as its function is named (`conv2d`, `max_pool2d`, ...).
        op: &'static str,
        /// wgpu's message.
        message: String,
    },

    /// The device was lost (destroyed, reset, or the driver gave up): every later call on this
    /// `Gpu` and its tensors returns this error. Create a new `Gpu` and upload again.
    #[error("{op}: GPU device lost ({reason}); create a new Gpu")]
    DeviceLost {
        /// The op that failed, as its function is named (`conv2d`, `max_pool2d`, ...).
        op: &'static str,
        /// The driver's reason, as reported when the device was lost.
        reason: String,
    },

    /// Two tensors or a tensor and a context belong to different `Gpu`s.
    #[error("{op}: tensors belong to different Gpu contexts")]
    ContextMismatch {
        /// The op that failed, as its function is named (`conv2d`, `max_pool2d`, ...).
        op: &'static str,
    },
}

/// `std::result::Result` with wgconv's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand for building an [`Error::InvalidArgument`].
pub(crate) fn invalid(op: &'static str, what: impl Into<String>) -> Error {
    Error::InvalidArgument {
        op,
        what: what.into(),
    }
}

/// Shorthand for building an [`Error::TooLarge`].
pub(crate) fn too_large(op: &'static str, what: impl Into<String>) -> Error {
    Error::TooLarge {
        op,
        what: what.into(),
    }
}
