//! Softmax cross-entropy on the host: the logits come back from the backend, their gradient
//! goes out to it, and nothing else crosses the bus in a training step.

use ndarray::{Array2, Array4};

use super::tensor::{Backend, Tensor};
use crate::error::{invalid, Result};
use crate::params::Layout;

/// What [`softmax_cross_entropy`] returns for one batch.
#[derive(Clone, Debug)]
pub struct CrossEntropy {
    /// The mean over the batch of `-log softmax(logits)[label]`.
    pub loss: f64,
    /// The gradient of `loss` with respect to the logits, `(softmax - one_hot) / N`, on the
    /// logits' backend and in their shape.
    pub grad: Tensor,
    /// The samples whose largest logit (the first, on a tie) is their label.
    pub correct: usize,
}

/// PyTorch's `F.cross_entropy(logits, labels)` (mean reduction) and its gradient. `logits` has
/// `N` samples along its first axis and one class per remaining element (`[N, K, 1, 1]` from a
/// dense layer); `labels` has one class index per sample. Computed in f64 with the maximum
/// subtracted first, so large logits do not overflow.
pub fn softmax_cross_entropy(
    backend: &Backend,
    logits: &Tensor,
    labels: &[usize],
) -> Result<CrossEntropy> {
    const OP: &str = "nn::softmax_cross_entropy";
    let shape = logits.shape();
    let n = shape.first().copied().unwrap_or(0);
    let classes: usize = shape.iter().skip(1).product();
    if shape.len() != 4 || n == 0 || n != labels.len() {
        return Err(invalid(
            OP,
            format!(
                "logits of shape {shape:?} need 4 dimensions and one label per sample; got {} \
                 labels",
                labels.len()
            ),
        ));
    }
    if let Some((i, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(invalid(
            OP,
            format!("label {label} of sample {i} is not below the {classes} classes"),
        ));
    }
    let rows = logits
        .to_array()?
        .into_shape_with_order((n, classes))
        .map_err(|e| invalid(OP, e.to_string()))?;
    let mut grad = Array2::<f32>::zeros((n, classes));
    let (mut total, mut correct) = (0.0f64, 0);
    for (i, (row, &label)) in rows.outer_iter().zip(labels).enumerate() {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let exps: Vec<f64> = row.iter().map(|&v| (f64::from(v) - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        total += max + sum.ln() - f64::from(row[label]);
        let best = row
            .iter()
            .enumerate()
            .fold(0, |b, (j, &v)| if v > row[b] { j } else { b });
        correct += usize::from(best == label);
        for (j, e) in exps.iter().enumerate() {
            let p = e / sum;
            let target = if j == label { 1.0 } else { 0.0 };
            grad[[i, j]] = ((p - target) / n as f64) as f32;
        }
    }
    let grad4: Array4<f32> = grad
        .into_shape_with_order((shape[0], shape[1], shape[2], shape[3]))
        .map_err(|e| invalid(OP, e.to_string()))?;
    let layout = match logits {
        Tensor::Gpu(t) => t.layout(),
        Tensor::Cpu(_) => Layout::Nchw,
    };
    Ok(CrossEntropy {
        loss: total / n as f64,
        grad: backend.upload(grad4.view(), layout)?,
        correct,
    })
}
