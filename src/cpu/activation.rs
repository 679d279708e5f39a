//! Activation backward on the CPU: the elementwise reference, in f64.

use ndarray::{Array4, ArrayView4, Zip};

use crate::activation::{Activation, SavedTensor};
use crate::error::{invalid, Result};

/// `grad_output * f'(z)` elementwise, from the saved forward tensor (`saved` says whether it is
/// the activation's output or its input). Both arrays have the same shape, in any layout.
pub fn activation_backward(
    grad_output: ArrayView4<f32>,
    saved_tensor: ArrayView4<f32>,
    activation: Activation,
    saved: SavedTensor,
) -> Result<Array4<f32>> {
    const OP: &str = "cpu::activation_backward";
    activation.check_saved(OP, saved)?;
    if grad_output.shape() != saved_tensor.shape() {
        return Err(invalid(
            OP,
            format!(
                "grad_output shape {:?} must equal the saved tensor's shape {:?}",
                grad_output.shape(),
                saved_tensor.shape()
            ),
        ));
    }
    Ok(Zip::from(grad_output)
        .and(saved_tensor)
        .map_collect(|&dy, &v| activation.backward(f64::from(dy), f64::from(v), saved) as f32))
}
