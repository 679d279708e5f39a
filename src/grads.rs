//! Which conv2d gradients to compute, and the container they come back in.

/// A subset of the three conv2d gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GradSelection {
    /// dx, the gradient with respect to the input.
    pub input: bool,
    /// dw, the gradient with respect to the weights.
    pub weight: bool,
    /// db, the gradient with respect to the bias.
    pub bias: bool,
}

impl GradSelection {
    /// dx, dw and db.
    pub const ALL: Self = Self {
        input: true,
        weight: true,
        bias: true,
    };
    /// dx only.
    pub const INPUT: Self = Self {
        input: true,
        weight: false,
        bias: false,
    };
    /// dw only.
    pub const WEIGHT: Self = Self {
        input: false,
        weight: true,
        bias: false,
    };
    /// db only.
    pub const BIAS: Self = Self {
        input: false,
        weight: false,
        bias: true,
    };

    /// Runs the selected computations, in the order dx, dw, db, and gathers what they return.
    pub(crate) fn compute<T4, T1, E>(
        self,
        input: impl FnOnce() -> Result<T4, E>,
        weight: impl FnOnce() -> Result<T4, E>,
        bias: impl FnOnce() -> Result<T1, E>,
    ) -> Result<Conv2dGrads<T4, T1>, E> {
        Ok(Conv2dGrads {
            input: self.input.then(input).transpose()?,
            weight: self.weight.then(weight).transpose()?,
            bias: self.bias.then(bias).transpose()?,
        })
    }
}

/// The gradients a backward call computed; `None` where not requested. `T4` holds 4-D tensors
/// (dx, dw) and `T1` the 1-D bias gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2dGrads<T4, T1> {
    /// dx, the gradient of the input.
    pub input: Option<T4>,
    /// dw, the gradient of the weight.
    pub weight: Option<T4>,
    /// db, the gradient of the bias.
    pub bias: Option<T1>,
}
