//! Zero padding of a windowed op: none, TensorFlow's `SAME`, or explicit per side.

/// How the input is padded with zeros before the window slides over it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding (TensorFlow's `VALID`, PyTorch's `padding=0`).
    Valid,
    /// Pad so that `out = ceil(in / stride)` (TensorFlow's `SAME`): for any stride, dilation and
    /// kernel size the total padding is split in two with the odd extra pixel going after
    /// (bottom/right), exactly as TensorFlow does.
    Same,
    /// Explicit zero padding per side.
    Explicit {
        /// Rows above the input.
        top: usize,
        /// Rows below the input.
        bottom: usize,
        /// Columns left of the input.
        left: usize,
        /// Columns right of the input.
        right: usize,
    },
}

impl Padding {
    /// The same padding on all four sides (PyTorch's `padding=p`).
    pub fn uniform(p: usize) -> Self {
        Self::symmetric(p, p)
    }

    /// `ph` above and below, `pw` left and right (PyTorch's `padding=(ph, pw)`).
    pub fn symmetric(ph: usize, pw: usize) -> Self {
        Padding::Explicit {
            top: ph,
            bottom: ph,
            left: pw,
            right: pw,
        }
    }

    /// Each side on its own, in the order top, bottom, left, right.
    pub fn explicit(top: usize, bottom: usize, left: usize, right: usize) -> Self {
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        }
    }

    /// `((top, bottom), (left, right))` when the padding does not depend on the input size;
    /// `None` for `Same`.
    pub(super) fn fixed_pairs(self) -> Option<((usize, usize), (usize, usize))> {
        match self {
            Padding::Valid => Some(((0, 0), (0, 0))),
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => Some(((top, bottom), (left, right))),
            Padding::Same => None,
        }
    }
}
