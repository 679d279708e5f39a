//! Memory order (NCHW or NHWC) of activations and weights, and the shapes and strides it gives.

/// Memory order of activations and weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// PyTorch: activations `[N, C, H, W]`, weights `[C_out, C_in/groups, kh, kw]` (OIHW).
    #[default]
    Nchw,
    /// TensorFlow/Keras: activations `[N, H, W, C]`, weights `[kh, kw, C_in/groups, C_out]`
    /// (HWIO).
    Nhwc,
}

impl Layout {
    /// Where `(n, c, h, w)` sit among an activation's dimensions.
    const fn activation_axes(self) -> [usize; 4] {
        match self {
            Layout::Nchw => [0, 1, 2, 3],
            Layout::Nhwc => [0, 3, 1, 2],
        }
    }

    /// Where `(o, i, kh, kw)` sit among a weight's dimensions.
    const fn weight_axes(self) -> [usize; 4] {
        match self {
            Layout::Nchw => [0, 1, 2, 3],
            Layout::Nhwc => [3, 2, 0, 1],
        }
    }

    /// `[n, c, h, w]` of an activation of this layout's shape.
    pub fn logical_activation(self, shape: [usize; 4]) -> [usize; 4] {
        self.activation_axes().map(|axis| shape[axis])
    }

    /// The shape in this layout of an activation with sizes `[n, c, h, w]`.
    pub fn activation_shape(self, [n, c, h, w]: [usize; 4]) -> [usize; 4] {
        let mut shape = [0; 4];
        for (axis, size) in self.activation_axes().into_iter().zip([n, c, h, w]) {
            shape[axis] = size;
        }
        shape
    }

    /// `[o, i, kh, kw]` of a weight of this layout's shape.
    pub fn logical_weight(self, shape: [usize; 4]) -> [usize; 4] {
        self.weight_axes().map(|axis| shape[axis])
    }

    /// The shape in this layout of a weight with sizes `[o, i, kh, kw]`.
    pub fn weight_shape(self, [o, i, kh, kw]: [usize; 4]) -> [usize; 4] {
        let mut shape = [0; 4];
        for (axis, size) in self.weight_axes().into_iter().zip([o, i, kh, kw]) {
            shape[axis] = size;
        }
        shape
    }

    /// Element strides of `(n, c, h, w)` for a row-major activation of sizes `[n, c, h, w]`.
    pub(crate) fn activation_strides(self, logical: [usize; 4]) -> [usize; 4] {
        logical_strides(self.activation_shape(logical), self.activation_axes())
    }

    /// Element strides of `(o, i, kh, kw)` for a row-major weight of sizes `[o, i, kh, kw]`.
    pub(crate) fn weight_strides(self, logical: [usize; 4]) -> [usize; 4] {
        logical_strides(self.weight_shape(logical), self.weight_axes())
    }

    /// Axis permutation that turns an array of this layout into `[n, c, h, w]` order.
    pub(crate) fn activation_permutation(self) -> [usize; 4] {
        self.activation_axes()
    }

    /// Axis permutation that turns a weight of this layout into `[o, i, kh, kw]` order.
    pub(crate) fn weight_permutation(self) -> [usize; 4] {
        self.weight_axes()
    }

    /// Names of the dimensions, for messages.
    pub(super) fn activation_dims(self) -> &'static str {
        match self {
            Layout::Nchw => "[N, C, H, W]",
            Layout::Nhwc => "[N, H, W, C]",
        }
    }

    /// Names of a weight's dimensions, for messages.
    pub(super) fn weight_dims(self) -> &'static str {
        match self {
            Layout::Nchw => "[C_out, C_in/groups, kh, kw]",
            Layout::Nhwc => "[kh, kw, C_in/groups, C_out]",
        }
    }
}

/// Row-major strides of `physical`, reordered to the logical axes `axes` picks.
fn logical_strides(physical: [usize; 4], axes: [usize; 4]) -> [usize; 4] {
    let mut strides = [1; 4];
    for i in (0..3).rev() {
        strides[i] = strides[i + 1] * physical[i + 1];
    }
    axes.map(|axis| strides[axis])
}
