//! The 8x8 handwritten digits of `data/digits/` (UCI, CC BY 4.0): reading, scaling, and the
//! fixed 80/20 split.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::{Array4, Axis};
use wgconv::nn::init::Rng;

/// Images per class count, pixels per image side, and classes.
pub const SIDE: usize = 8;
pub const CLASSES: usize = 10;

/// Images `[N, 1, 8, 8]` scaled to `[0, 1]` (the file counts pixels, 0 to 16), and their digits.
#[derive(Clone, Debug)]
pub struct Digits {
    pub images: Array4<f32>,
    pub labels: Vec<usize>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Digits {
        Digits {
            images: self.images.select(Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

/// `data/digits/digits.csv.gz` in this repository.
pub fn default_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits/digits.csv.gz")
}

/// Reads the gzipped CSV: 64 pixel counts and a digit per line.
pub fn load(path: &Path) -> Result<Digits, String> {
    let gz = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: not a gzipped text file: {e}", path.display()))?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let bad = |what: String| format!("{} line {}: {what}", path.display(), n + 1);
        if fields.len() != SIDE * SIDE + 1 {
            return Err(bad(format!("{} fields, expected 65", fields.len())));
        }
        for f in &fields[..SIDE * SIDE] {
            let v: f32 = f.parse().map_err(|_| bad(format!("pixel {f:?}")))?;
            if !(0.0..=16.0).contains(&v) {
                return Err(bad(format!("pixel {v} outside 0..=16")));
            }
            pixels.push(v / 16.0);
        }
        let label: usize = fields[SIDE * SIDE]
            .parse()
            .ok()
            .filter(|&d| d < CLASSES)
            .ok_or_else(|| bad(format!("digit {:?}", fields[SIDE * SIDE])))?;
        labels.push(label);
    }
    let images =
        Array4::from_shape_vec((labels.len(), 1, SIDE, SIDE), pixels).map_err(|e| e.to_string())?;
    Ok(Digits { images, labels })
}

/// The seed of the split: fixed, so every run tests on the same images.
const SPLIT_SEED: u64 = 2024;

/// The fixed split: the images shuffled with a fixed seed, the first 80% for training and the
/// rest (359 of 1,797) for testing.
pub fn split(all: &Digits) -> (Digits, Digits) {
    let mut order: Vec<usize> = (0..all.len()).collect();
    Rng::new(SPLIT_SEED).shuffle(&mut order);
    let test = all.len() / 5;
    let (train, held_out) = order.split_at(all.len() - test);
    (all.select(train), all.select(held_out))
}
