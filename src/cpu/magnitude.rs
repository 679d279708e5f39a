//! Σ|terms| of every output element: the reference run on |input|, |weight| and |bias| in f64.
//!
//! A sum's rounding error is bounded by the sum of its terms' magnitudes, not by its value
//! (`crate::verify::Bound`). Taking absolute values is elementwise, so the same op on the
//! absolute values, with the same layouts, flips, groups, padding and skipped taps, adds exactly
//! the magnitudes of the terms the op adds. The results stay in f64: they only scale a bound, and
//! f64 neither rounds them noticeably nor overflows where f32 terms are finite.

use ndarray::{Array1, Array4, ArrayView1, ArrayView4};

use super::conv2d::conv2d_f64;
use super::conv2d_backward::{backward_input_loops, backward_weight_loops, channel_sums};
use super::max_pool2d::routed_sums;
use super::shape4;
use crate::error::Result;
use crate::grads::{Conv2dGrads, GradSelection};
use crate::params::{Conv2dParams, ConvTranspose2dParams, Layout, Pool2dParams};

fn abs4(a: ArrayView4<f32>) -> Array4<f64> {
    a.mapv(|v| f64::from(v.abs()))
}

fn abs1(a: ArrayView1<f32>) -> Array1<f64> {
    a.mapv(|v| f64::from(v.abs()))
}

/// [`super::conv2d`]'s Σ|input·weight| (+ |bias|) per output element.
pub fn conv2d_magnitude(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    params: &Conv2dParams,
) -> Result<Array4<f64>> {
    let bias = bias.map(abs1);
    conv2d_f64(
        abs4(input).view(),
        abs4(weight).view(),
        bias.as_ref().map(|b| b.view()),
        params,
    )
}

/// [`super::conv2d_backward`]'s magnitudes, for the gradients `which` selects: Σ|weight ·
/// grad_output| per dx element, Σ|input · grad_output| per dw element, Σ|grad_output| per db
/// element.
pub fn conv2d_backward_magnitude(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    grad_output: ArrayView4<f32>,
    params: &Conv2dParams,
    which: GradSelection,
) -> Result<Conv2dGrads<Array4<f64>, Array1<f64>>> {
    const OP: &str = "cpu::conv2d_backward_magnitude";
    params.backward_geometry(OP, shape4(&input), shape4(&weight), shape4(&grad_output))?;
    which.compute(
        || conv2d_backward_input_magnitude(shape4(&input), weight, grad_output, params),
        || conv2d_backward_weight_magnitude(input, shape4(&weight), grad_output, params),
        || conv2d_backward_bias_magnitude(grad_output, params.layout),
    )
}

/// [`super::conv2d_backward_input`]'s Σ|weight · grad_output| per dx element.
pub fn conv2d_backward_input_magnitude(
    input_shape: [usize; 4],
    weight: ArrayView4<f32>,
    grad_output: ArrayView4<f32>,
    params: &Conv2dParams,
) -> Result<Array4<f64>> {
    const OP: &str = "cpu::conv2d_backward_input_magnitude";
    let g = params.backward_geometry(OP, input_shape, shape4(&weight), shape4(&grad_output))?;
    Ok(backward_input_loops(
        &g,
        abs4(weight).view(),
        abs4(grad_output).view(),
        None,
    ))
}

/// [`super::conv2d_backward_weight`]'s Σ|input · grad_output| per dw element.
pub fn conv2d_backward_weight_magnitude(
    input: ArrayView4<f32>,
    weight_shape: [usize; 4],
    grad_output: ArrayView4<f32>,
    params: &Conv2dParams,
) -> Result<Array4<f64>> {
    const OP: &str = "cpu::conv2d_backward_weight_magnitude";
    let g = params.backward_geometry(OP, shape4(&input), weight_shape, shape4(&grad_output))?;
    Ok(backward_weight_loops(
        &g,
        abs4(input).view(),
        abs4(grad_output).view(),
    ))
}

/// [`super::conv2d_backward_bias`]'s Σ|grad_output| per channel.
pub fn conv2d_backward_bias_magnitude(
    grad_output: ArrayView4<f32>,
    layout: Layout,
) -> Result<Array1<f64>> {
    channel_sums(
        "cpu::conv2d_backward_bias_magnitude",
        grad_output,
        layout,
        |v| f64::from(v.abs()),
    )
}

/// [`super::conv_transpose2d`]'s Σ|input·weight| (+ |bias|) per output element.
pub fn conv_transpose2d_magnitude(
    input: ArrayView4<f32>,
    weight: ArrayView4<f32>,
    bias: Option<ArrayView1<f32>>,
    params: &ConvTranspose2dParams,
) -> Result<Array4<f64>> {
    const OP: &str = "cpu::conv_transpose2d_magnitude";
    let g = params.geometry(OP, shape4(&input), shape4(&weight), bias.map(|b| b.len()))?;
    let bias = bias.map(abs1);
    Ok(backward_input_loops(
        &g,
        abs4(weight).view(),
        abs4(input).view(),
        bias.as_ref().map(|b| b.view()),
    ))
}

/// [`super::max_pool2d_backward`]'s Σ|grad_output| routed to each input element.
pub fn max_pool2d_backward_magnitude(
    grad_output: ArrayView4<f32>,
    indices: ArrayView4<i64>,
    input_shape: [usize; 4],
    params: &Pool2dParams,
) -> Result<Array4<f64>> {
    routed_sums(
        grad_output.mapv(f32::abs).view(),
        indices,
        input_shape,
        params,
    )
}
