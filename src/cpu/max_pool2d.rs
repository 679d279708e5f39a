//! Max pooling on the CPU: the readable reference, forward with indices and backward.

use ndarray::{Array4, ArrayView4};

use super::{nchw, nchw_mut, new_activation, shape4};
use crate::error::{invalid, Result};
use crate::params::{AxisGeometry, IndexStyle, Pool2dGeometry, Pool2dParams};

/// The input coordinates of an axis's window taps that fall inside the input (padding is -inf,
/// so taps outside are simply skipped).
fn taps(axis: &AxisGeometry, o: usize) -> impl Iterator<Item = usize> + '_ {
    (0..axis.kernel).filter_map(move |k| {
        (o * axis.stride + k * axis.dilation)
            .checked_sub(axis.pad_before)
            .filter(|&i| i < axis.input)
    })
}

/// One window's maximum and its index (flattened in the geometry's style), PyTorch's rule:
/// `input` is in `[n, c, h, w]` order. Scan the window row by row,
/// take a value when it is greater than the best so far (so the first maximum wins a tie) or
/// when it is NaN (so a NaN wins, and the last NaN in scan order gives the index). The index
/// starts at the window's first tap at or after 0 on each axis, which is what a window of -inf
/// values returns, and what a window wholly in the padding returns with the value -inf.
fn window_max(
    input: &ArrayView4<f32>,
    n: usize,
    c: usize,
    g: &Pool2dGeometry,
    oh: usize,
    ow: usize,
) -> (f32, i64) {
    let mut best = f32::NEG_INFINITY;
    let mut index = g.first_tap_index(c, oh, ow);
    for ih in taps(&g.h, oh) {
        for iw in taps(&g.w, ow) {
            let v = input[[n, c, ih, iw]];
            if v > best || v.is_nan() {
                best = v;
                index = g.flat_index(c, ih, iw);
            }
        }
    }
    (best, index as i64)
}

/// Max pooling (NCHW, or NHWC with `params.layout`), values only.
pub fn max_pool2d(input: ArrayView4<f32>, params: &Pool2dParams) -> Result<Array4<f32>> {
    Ok(max_pool2d_with_indices(input, params)?.0)
}

/// Max pooling, values and the argmax indices (int64): `h * W + w` within each (n, c) plane as
/// PyTorch returns them, or TensorFlow's flattening when `params.index_style` asks for it.
/// Both outputs are in `params.layout`.
pub fn max_pool2d_with_indices(
    input: ArrayView4<f32>,
    params: &Pool2dParams,
) -> Result<(Array4<f32>, Array4<i64>)> {
    let g = params.geometry("cpu::max_pool2d", shape4(&input))?;
    let input = nchw(input, g.layout);
    let mut values_stored = new_activation::<f32>(g.output_sizes(), g.layout);
    let mut indices_stored = new_activation::<i64>(g.output_sizes(), g.layout);
    let mut values = nchw_mut(&mut values_stored, g.layout);
    let mut indices = nchw_mut(&mut indices_stored, g.layout);
    for n in 0..g.batch {
        for c in 0..g.channels {
            for oh in 0..g.h.output {
                for ow in 0..g.w.output {
                    let (v, i) = window_max(&input, n, c, &g, oh, ow);
                    values[[n, c, oh, ow]] = v;
                    indices[[n, c, oh, ow]] = i;
                }
            }
        }
    }
    Ok((values_stored, indices_stored))
}

/// Routes `grad_output` back through `indices`: each input element receives the sum (in f64) of
/// the gradients of the outputs whose index names it. Every index must be one its window can
/// produce (see [`Pool2dGeometry::check_index`]); anything else is an `Err`. A window wholly in
/// the padding depends on no input, so its gradient goes nowhere.
pub fn max_pool2d_backward(
    grad_output: ArrayView4<f32>,
    indices: ArrayView4<i64>,
    input_shape: [usize; 4],
    params: &Pool2dParams,
) -> Result<Array4<f32>> {
    Ok(routed_sums(grad_output, indices, input_shape, params)?.mapv(|v| v as f32))
}

/// [`max_pool2d_backward`]'s sums in f64, before they are rounded to f32 (the magnitudes of
/// `super::magnitude` are these sums of `|grad_output|`).
pub(super) fn routed_sums(
    grad_output: ArrayView4<f32>,
    indices: ArrayView4<i64>,
    input_shape: [usize; 4],
    params: &Pool2dParams,
) -> Result<Array4<f64>> {
    const OP: &str = "cpu::max_pool2d_backward";
    let g = params.geometry(OP, input_shape)?;
    check_pool_shapes(OP, &g, shape4(&grad_output), shape4(&indices))?;
    let grad_output = nchw(grad_output, g.layout);
    let indices = nchw(indices, g.layout);
    let mut stored = new_activation::<f64>(g.input_sizes(), g.layout);
    let mut dx = nchw_mut(&mut stored, g.layout);
    for ((n, c, oh, ow), &index) in indices.indexed_iter() {
        g.check_index(OP, [n, c, oh, ow], index)?;
        if !g.window_has_taps(oh, ow) {
            continue;
        }
        let position = match g.index_style {
            IndexStyle::PyTorch => index as usize,
            IndexStyle::TensorFlow => index as usize / g.channels,
        };
        dx[[n, c, position / g.w.input, position % g.w.input]] +=
            f64::from(grad_output[[n, c, oh, ow]]);
    }
    Ok(stored)
}

/// `Err` unless grad_output and indices both have the pooling's output shape.
pub(crate) fn check_pool_shapes(
    op: &'static str,
    g: &Pool2dGeometry,
    grad_output: [usize; 4],
    indices: [usize; 4],
) -> Result<()> {
    for (name, shape) in [("grad_output", grad_output), ("indices", indices)] {
        if shape != g.output_shape() {
            return Err(invalid(
                op,
                format!(
                    "{name} shape {shape:?} must equal the pooling output shape {:?} (input {:?})",
                    g.output_shape(),
                    g.input_shape()
                ),
            ));
        }
    }
    Ok(())
}
