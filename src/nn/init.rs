//! Seeded initial weights, so that a run (and its GPU/CPU twin) is reproducible.

use ndarray::Array4;

/// The crate's seeded generator (SplitMix64): the same seed gives the same weights and the
/// same data order on every machine and backend.
pub use crate::sweep::Rng;

/// He (Kaiming) uniform initialisation for a layer followed by ReLU: OIHW weights of `shape`
/// uniform in `±sqrt(6 / fan_in)`, `fan_in = I * kh * kw` (PyTorch's
/// `kaiming_uniform_(w, nonlinearity='relu')`).
pub fn kaiming_uniform(rng: &mut Rng, shape: [usize; 4]) -> Array4<f32> {
    let fan_in = (shape[1] * shape[2] * shape[3]).max(1) as f64;
    let bound = (6.0 / fan_in).sqrt();
    Array4::from_shape_simple_fn(shape, || ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
}
