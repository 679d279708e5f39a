//! The digits dataset as shipped, and a short training run of `examples/train_digits` on the GPU
//! and the CPU reference in lockstep: the loss falls, and the two agree at every step.

mod common;

#[path = "../examples/train_digits/digits.rs"]
#[allow(dead_code)]
mod digits;
#[path = "../examples/train_digits/training.rs"]
#[allow(dead_code)]
mod training;

use wgconv::nn::{Backend, Sgd};

use training::{Config, Trainer};

/// The file is UCI's `optdigits.tes` as scikit-learn ships it: 1,797 images, 174 to 183 per
/// class (the counts `sklearn.datasets.load_digits` documents), the first a zero whose top row
/// reads `0 0 5 13 9 1 0 0`.
#[test]
fn the_shipped_digits_are_the_uci_set() {
    let all = digits::load(&digits::default_path()).unwrap();
    assert_eq!(all.len(), 1797);
    let mut counts = [0; digits::CLASSES];
    for &l in &all.labels {
        counts[l] += 1;
    }
    assert_eq!(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert_eq!(all.labels[..5], [0, 1, 2, 3, 4]);
    let top_row: Vec<f32> = all.images.slice(ndarray::s![0, 0, 0, ..]).to_vec();
    assert_eq!(
        top_row,
        [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0].map(|v| v / 16.0)
    );
    let (train, test) = digits::split(&all);
    assert_eq!((train.len(), test.len()), (1438, 359));
    // The split is a permutation: every image lands on exactly one side.
    let mut seen = train.labels.clone();
    seen.extend(&test.labels);
    seen.sort();
    let mut expected = all.labels.clone();
    expected.sort();
    assert_eq!(seen, expected);
}

/// 256 training images, three epochs of batches of 32 (24 steps) on both backends from one seed,
/// with a narrower net than the example's so that the CPU reference stays quick in debug builds.
#[test]
fn short_run_learns_and_gpu_matches_cpu_at_every_step() {
    let Some(gpu) = common::gpu() else { return };
    let all = digits::load(&digits::default_path()).unwrap();
    let (train, _) = digits::split(&all);
    let subset = train.select(&(0..256).collect::<Vec<_>>());
    let config = Config {
        epochs: 3,
        widths: [8, 16],
        sgd: Sgd {
            learning_rate: 0.1,
            ..Config::default().sgd
        },
        ..Config::default()
    };
    let mut on_gpu = Trainer::new(Backend::Gpu(gpu.clone()), config.clone()).unwrap();
    let mut on_cpu = Trainer::new(Backend::Cpu, config).unwrap();
    let mut losses = Vec::new();
    for _ in 0..3 {
        on_gpu.start_epoch(&subset).unwrap();
        on_cpu.start_epoch(&subset).unwrap();
        loop {
            match (on_gpu.step().unwrap(), on_cpu.step().unwrap()) {
                (Some(g), Some(c)) => {
                    let step = losses.len() + 1;
                    let relative = (g.loss - c.loss).abs() / c.loss;
                    assert!(
                        relative <= 1e-3,
                        "step {step}: gpu loss {} and cpu loss {} differ by {relative:.2e}",
                        g.loss,
                        c.loss
                    );
                    losses.push(c.loss);
                }
                (None, None) => break,
                other => panic!("the backends disagree on the epoch's end: {other:?}"),
            }
        }
    }
    assert_eq!(losses.len(), 24);
    // Ten classes start near ln 10 = 2.30; three epochs on 256 images must cut that well down.
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[19..].iter().sum::<f64>() / 5.0;
    assert!((1.8..2.8).contains(&first), "first steps' loss {first}");
    assert!(last < 0.6 * first, "loss {first} -> {last}: {losses:?}");
}
