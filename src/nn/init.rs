//! Seeded initial weights, so that a run (and its GPU/CPU twin) is reproducible.

use ndarray::Array4;

/// A small deterministic generator (SplitMix64): the same seed gives the same weights and the
/// same data order on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`, from the top 53 bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// He (Kaiming) uniform initialisation for a layer followed by ReLU: OIHW weights of `shape`
/// uniform in `±sqrt(6 / fan_in)`, `fan_in = I * kh * kw` (PyTorch's
/// `kaiming_uniform_(w, nonlinearity='relu')`).
pub fn kaiming_uniform(rng: &mut Rng, shape: [usize; 4]) -> Array4<f32> {
    let fan_in = (shape[1] * shape[2] * shape[3]).max(1) as f64;
    let bound = (6.0 / fan_in).sqrt();
    Array4::from_shape_simple_fn(shape, || ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
}
