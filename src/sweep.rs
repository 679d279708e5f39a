//! Seeded random parameter sets for sweeps (shared by `wgconv check` and the test suite), and
//! the generator behind them, which `nn::init` uses too.

use ndarray::{Array1, Array4};

use crate::params::{Conv2dParams, ConvTranspose2dParams, Padding, Pool2dParams};

/// SplitMix64: small, seeded, reproducible; no dependency. The same seed gives the same
/// sequence on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole sequence `seed` fixes.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
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
    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
    /// An array of `shape`, uniform in [-1, 1).
    pub fn array4(&mut self, shape: [usize; 4]) -> Array4<f32> {
        Array4::from_shape_simple_fn(shape, || self.unit())
    }
    /// A vector of `len` values, uniform in [-1, 1).
    pub fn array1(&mut self, len: usize) -> Array1<f32> {
        Array1::from_shape_simple_fn(len, || self.unit())
    }
}

/// One random conv2d problem (NCHW shapes).
#[derive(Clone, Debug)]
pub struct ConvCase {
    /// The input's shape.
    pub input: [usize; 4],
    /// The weight's shape (OIHW).
    pub weight: [usize; 4],
    /// Whether the case has a bias.
    pub bias: bool,
    /// The parameters.
    pub params: Conv2dParams,
}

/// Which corner of the parameter space a random case is drawn from, so that a sweep covers each
/// on purpose rather than by luck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// Any small layer.
    General,
    /// A stride larger than the kernel, which skips input.
    StrideAboveKernel,
    /// Dilation above 1.
    Dilated,
    /// Different padding before and after.
    AsymmetricPadding,
    /// Several groups.
    Grouped,
    /// One input channel per group.
    Depthwise,
    /// A 1x1 kernel.
    Pointwise,
    /// A kernel as large as the padded input: one output per axis.
    KernelEqualsInput,
    /// `Padding::Same`.
    Same,
    /// Several samples.
    Batched,
}

impl Flavour {
    /// Every flavour, in the order sweeps cycle through them.
    pub const ALL: [Flavour; 10] = [
        Flavour::General,
        Flavour::StrideAboveKernel,
        Flavour::Dilated,
        Flavour::AsymmetricPadding,
        Flavour::Grouped,
        Flavour::Depthwise,
        Flavour::Pointwise,
        Flavour::KernelEqualsInput,
        Flavour::Same,
        Flavour::Batched,
    ];
}

/// The transposed convolution that reads `p`'s geometry backwards: its input has `p`'s output
/// shape and its weights are `p`'s. `Padding::Same`, which a transposed convolution does not
/// take, becomes `Valid`.
pub fn transposed_params(p: &Conv2dParams) -> ConvTranspose2dParams {
    ConvTranspose2dParams {
        stride: p.stride,
        padding: match p.padding {
            Padding::Same => Padding::Valid,
            other => other,
        },
        output_padding: [0, 0],
        dilation: p.dilation,
        groups: p.groups,
        layout: p.layout,
        flip: p.flip,
    }
}

/// Draws a valid random case of the given flavour (small enough for the f64 CPU loops).
pub fn random_conv_case(rng: &mut Rng, flavour: Flavour) -> ConvCase {
    loop {
        let case = draw(rng, flavour);
        if case
            .params
            .geometry("test", case.input, case.weight, None)
            .is_ok()
        {
            return case;
        }
    }
}

fn draw(rng: &mut Rng, flavour: Flavour) -> ConvCase {
    use Flavour::*;
    let mut groups = 1;
    let mut cin_pg = rng.range(1, 6);
    let mut cout_pg = rng.range(1, 9);
    match flavour {
        Grouped => {
            groups = rng.range(2, 4);
            cin_pg = rng.range(1, 4);
            cout_pg = rng.range(1, 6);
        }
        Depthwise => {
            groups = rng.range(2, 12);
            cin_pg = 1;
            cout_pg = rng.range(1, 2); // channel multiplier 1 or 2
        }
        _ => {}
    }
    let batch = if flavour == Batched {
        rng.range(2, 5)
    } else {
        rng.range(1, 2)
    };
    let (mut kh, mut kw) = (rng.range(1, 5), rng.range(1, 5));
    if flavour == Pointwise {
        (kh, kw) = (1, 1);
    }
    let (mut h, mut w) = (rng.range(1, 20), rng.range(1, 20));
    let mut stride = [rng.range(1, 3), rng.range(1, 3)];
    let mut dilation = [1, 1];
    let mut padding = if rng.chance(50) {
        Padding::Valid
    } else {
        Padding::symmetric(rng.range(0, 2), rng.range(0, 2))
    };
    match flavour {
        StrideAboveKernel => {
            stride = [kh + rng.range(1, 3), kw + rng.range(1, 3)];
        }
        Dilated => {
            dilation = [rng.range(2, 4), rng.range(1, 4)];
        }
        AsymmetricPadding => {
            padding = Padding::explicit(
                rng.range(0, 3),
                rng.range(0, 3),
                rng.range(0, 3),
                rng.range(0, 3),
            );
        }
        KernelEqualsInput => {
            (h, w) = (kh, kw);
            padding = Padding::Valid;
        }
        Same => {
            padding = Padding::Same;
            dilation = [rng.range(1, 2), rng.range(1, 2)];
        }
        General => {
            dilation = [rng.range(1, 2), rng.range(1, 2)];
            if rng.chance(30) {
                padding = Padding::explicit(
                    rng.range(0, 2),
                    rng.range(0, 2),
                    rng.range(0, 2),
                    rng.range(0, 2),
                );
            }
        }
        _ => {}
    }
    ConvCase {
        input: [batch, groups * cin_pg, h, w],
        weight: [groups * cout_pg, cin_pg, kh, kw],
        bias: rng.chance(60),
        params: Conv2dParams {
            stride,
            padding,
            dilation,
            groups,
            ..Default::default()
        },
    }
}

/// Draws a valid random max-pooling problem: `(input shape, params)`, NCHW.
pub fn random_pool_case(rng: &mut Rng) -> ([usize; 4], Pool2dParams) {
    loop {
        let p = Pool2dParams {
            kernel: [rng.range(1, 4), rng.range(1, 4)],
            stride: [rng.range(1, 4), rng.range(1, 4)],
            dilation: [rng.range(1, 2), rng.range(1, 2)],
            padding: [rng.range(0, 2), rng.range(0, 2)],
            ceil_mode: rng.chance(50),
            ..Pool2dParams::new(1, 1)
        };
        let shape = [
            rng.range(1, 3),
            rng.range(1, 4),
            rng.range(1, 17),
            rng.range(1, 17),
        ];
        if p.geometry("sweep", shape).is_ok() {
            return (shape, p);
        }
    }
}
