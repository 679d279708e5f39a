//! A result's bound per element: its magnitudes (the op on absolute values, in f64) and the
//! coefficients that scale them, one constructor per op.

use super::*;

/// A [`Bound`] with the magnitudes it scales: what [`compare`] needs to judge every element.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorBound<D: Dimension> {
    /// Σ|terms| of each element, shaped like the result.
    pub magnitude: Array<f64, D>,
    /// The coefficients.
    pub bound: Bound,
    /// The most terms any element sums: what [`ErrorBound::in_any_order`] needs.
    pub terms: usize,
}

impl<D: Dimension> ErrorBound<D> {
    /// The same sums added in an order the bound's constructor did not assume, such as a
    /// gradient split into tiles whose partial sums are added afterwards (work past the binding
    /// limit or the memory budget): the any-order chain of `terms` roundings.
    pub fn in_any_order(self) -> Self {
        ErrorBound {
            bound: Bound::sum(self.terms),
            ..self
        }
    }

    /// The same bound over a dynamic-dimensional view of the magnitudes, for results handled as
    /// [`ndarray::ArrayD`].
    pub fn into_dyn(self) -> ErrorBound<ndarray::IxDyn> {
        ErrorBound {
            magnitude: self.magnitude.into_dyn(),
            bound: self.bound,
            terms: self.terms,
        }
    }
}

impl ErrorBound<Ix4> {
    /// [`crate::conv2d`] with an optional bias.
    pub fn conv2d(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        params: &Conv2dParams,
    ) -> Result<Self> {
        let g = params.geometry(
            "verify::conv2d",
            dims(&input),
            dims(&weight),
            bias.map(|b| b.len()),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv2d_magnitude(input, weight, bias, params)?,
            bound: Bound::conv2d(&g, bias.is_some()),
            terms: g.reduction_len() + usize::from(bias.is_some()),
        })
    }

    /// [`crate::conv2d_with_activation`].
    pub fn conv2d_with_activation(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        params: &Conv2dParams,
        activation: Activation,
    ) -> Result<Self> {
        let plain = Self::conv2d(input, weight, bias, params)?;
        Ok(ErrorBound {
            bound: plain.bound.with_activation(activation),
            ..plain
        })
    }

    /// [`crate::conv2d_backward_input`].
    pub fn conv2d_backward_input(
        input_shape: [usize; 4],
        weight: ArrayView4<f32>,
        grad_output: ArrayView4<f32>,
        params: &Conv2dParams,
    ) -> Result<Self> {
        let g = params.backward_geometry(
            "verify::conv2d_backward_input",
            input_shape,
            dims(&weight),
            dims(&grad_output),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv2d_backward_input_magnitude(
                input_shape,
                weight,
                grad_output,
                params,
            )?,
            bound: Bound::conv2d_backward_input(&g),
            terms: dx_terms(&g),
        })
    }

    /// [`crate::conv2d_backward_weight`], computed whole (see [`ErrorBound::in_any_order`] for
    /// a split call).
    pub fn conv2d_backward_weight(
        input: ArrayView4<f32>,
        weight_shape: [usize; 4],
        grad_output: ArrayView4<f32>,
        params: &Conv2dParams,
    ) -> Result<Self> {
        let g = params.backward_geometry(
            "verify::conv2d_backward_weight",
            dims(&input),
            weight_shape,
            dims(&grad_output),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv2d_backward_weight_magnitude(
                input,
                weight_shape,
                grad_output,
                params,
            )?,
            bound: Bound::conv2d_backward_weight(&g),
            terms: g.batch * g.h.output * g.w.output,
        })
    }

    /// The gradients `which` selects of [`crate::conv2d_backward`], computed whole.
    pub fn conv2d_backward(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        grad_output: ArrayView4<f32>,
        params: &Conv2dParams,
        which: GradSelection,
    ) -> Result<Conv2dGrads<ErrorBound<Ix4>, ErrorBound<Ix1>>> {
        params.backward_geometry(
            "verify::conv2d_backward",
            dims(&input),
            dims(&weight),
            dims(&grad_output),
        )?;
        which.compute(
            || Self::conv2d_backward_input(dims(&input), weight, grad_output, params),
            || Self::conv2d_backward_weight(input, dims(&weight), grad_output, params),
            || ErrorBound::conv2d_backward_bias(grad_output, params.layout),
        )
    }

    /// [`crate::conv_transpose2d`] with an optional bias.
    pub fn conv_transpose2d(
        input: ArrayView4<f32>,
        weight: ArrayView4<f32>,
        bias: Option<ArrayView1<f32>>,
        params: &ConvTranspose2dParams,
    ) -> Result<Self> {
        let g = params.geometry(
            "verify::conv_transpose2d",
            dims(&input),
            dims(&weight),
            bias.map(|b| b.len()),
        )?;
        Ok(ErrorBound {
            magnitude: cpu::conv_transpose2d_magnitude(input, weight, bias, params)?,
            bound: Bound::conv_transpose2d(&g, bias.is_some()),
            terms: dx_terms(&g) + usize::from(bias.is_some()),
        })
    }

    /// [`crate::max_pool2d_backward`]: each input element adds the gradients routed to it, at
    /// most one per window of each axis's stride phase.
    pub fn max_pool2d_backward(
        grad_output: ArrayView4<f32>,
        indices: ArrayView4<i64>,
        input_shape: [usize; 4],
        params: &Pool2dParams,
    ) -> Result<Self> {
        let g = params.geometry("verify::max_pool2d_backward", input_shape)?;
        let terms = pool_windows(&g.h) * pool_windows(&g.w);
        Ok(ErrorBound {
            magnitude: cpu::max_pool2d_backward_magnitude(
                grad_output,
                indices,
                input_shape,
                params,
            )?,
            bound: Bound::sum(terms),
            terms,
        })
    }

    /// [`crate::activation_backward`]: elementwise, scaled by `|grad_output|`.
    pub fn activation_backward(
        grad_output: ArrayView4<f32>,
        activation: Activation,
        saved: SavedTensor,
    ) -> Self {
        ErrorBound {
            magnitude: grad_output.mapv(|v| f64::from(v.abs())),
            bound: Bound::activation_backward(activation, saved),
            terms: 1,
        }
    }
}

impl ErrorBound<Ix1> {
    /// [`crate::conv2d_backward_bias`] of `grad_output` stored in `layout`, computed whole.
    pub fn conv2d_backward_bias(grad_output: ArrayView4<f32>, layout: Layout) -> Result<Self> {
        let magnitude = cpu::conv2d_backward_bias_magnitude(grad_output, layout)?;
        let [n, channels, oh, ow] = layout.logical_activation(dims(&grad_output));
        Ok(ErrorBound {
            magnitude,
            bound: Bound::sum(blocked_chain(n * oh, ow, channels)),
            terms: n * oh * ow,
        })
    }
}

pub(super) fn dims<T>(a: &ArrayView4<T>) -> [usize; 4] {
    let d = a.dim();
    [d.0, d.1, d.2, d.3]
}
