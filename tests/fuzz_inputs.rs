//! The fuzz targets' checks on stable Rust: seeds from `fuzz/seeds/` and random mutations of them fed to the `.npy` and `.npz` readers and the flag parsers, which must never panic.
//!
//! cargo-fuzz (coverage-guided, nightly or `RUSTC_BOOTSTRAP`) runs the same `fuzz/harness.rs`
//! for 20 s per target in CI (`.ci/fuzz`) and for as long as one likes by hand (README.md,
//! "Fuzzing"); this test is the short run every `cargo test` does, cargo-fuzz or not:
//! `WGCONV_FUZZ_ITERATIONS` mutations per target (default 20000, a second or two).

#[path = "../fuzz/harness.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// xorshift64*: deterministic, so a failure names a seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that mean something to the parsers: structure of the header dict and of flag values.
const TOKENS: &[&[u8]] = &[
    b"(",
    b")",
    b",",
    b"'",
    b"\"",
    b":",
    b"{",
    b"}",
    b"\n",
    b" ",
    b"0",
    b"1",
    b"9",
    b"18446744073709551615",
    b"4294967296",
    b"-1",
    b"True",
    b"False",
    b"'descr'",
    b"'shape'",
    b"'fortran_order'",
    b"<f4",
    b"<i8",
    b"|f4",
    b">f8",
    b"same",
    b"valid",
    b"nhwc",
    b"\x93NUMPY",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    // Zip record signatures and a Zip64 extra field's tag, for the .npz reader.
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b"PK\x06\x06",
    b"\x01\x00",
    b"\xff\xff\xff\xff",
];

/// One random edit: flip a bit, overwrite or insert a byte or token, delete or duplicate a run,
/// truncate, or rewrite a header length byte.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    let at = rng.below(data.len() + 1);
    match rng.below(8) {
        0 if !data.is_empty() => {
            let i = at.min(data.len() - 1);
            data[i] ^= 1 << rng.below(8);
        }
        1 if !data.is_empty() => {
            let i = at.min(data.len() - 1);
            data[i] = rng.next() as u8;
        }
        2 | 3 => {
            let token = TOKENS[rng.below(TOKENS.len())];
            data.splice(at..at, token.iter().copied());
        }
        4 => {
            let end = (at + 1 + rng.below(8)).min(data.len());
            data.drain(at.min(end)..end);
        }
        5 => {
            let end = (at + 1 + rng.below(16)).min(data.len());
            let run: Vec<u8> = data[at.min(end)..end].to_vec();
            data.splice(at..at, run);
        }
        6 => data.truncate(at),
        _ if data.len() > 9 => data[8 + rng.below(2)] = rng.next() as u8,
        _ => data.push(rng.next() as u8),
    }
}

fn seeds(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

fn iterations() -> usize {
    std::env::var("WGCONV_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Seeds as they are, then `iterations()` inputs of 1 to 4 mutations of a random seed.
fn run(target: &str, seed_dir: &str, check: fn(&[u8])) {
    let seeds = seeds(seed_dir);
    let mut rng = Rng(0x5eed_f022 ^ seed_dir.len() as u64);
    let mut inputs: Vec<Vec<u8>> = seeds.clone();
    for _ in 0..iterations() {
        let mut data = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(4) {
            mutate(&mut rng, &mut data);
        }
        inputs.push(data);
    }
    for data in &inputs {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(data))) {
            eprintln!(
                "{target}: this input panics ({} bytes): {:?}",
                data.len(),
                String::from_utf8_lossy(data)
            );
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn npy_reader_never_panics_on_mutated_files() {
    run("npy", "npy", harness::npy_bytes);
}

#[test]
fn npz_reader_never_panics_on_mutated_archives() {
    run("npz", "npz", harness::npz_bytes);
}

#[test]
fn flag_parsers_never_panic_on_mutated_text() {
    run("flags", "flags", harness::flag_text);
}

/// The seeds are meaningful: the valid ones parse, so mutations start from accepted inputs.
#[test]
fn seeds_parse() {
    for data in seeds("npy") {
        wgconv::npy::parse(&data).unwrap();
    }
    // arr_0.npz, first by name, holds a single array; the others hold `x` and `indices`.
    let npz = seeds("npz");
    wgconv::npy::parse_npz(&npz[0], None).unwrap();
    for data in &npz[1..] {
        wgconv::npy::parse_npz(data, Some("x")).unwrap();
        wgconv::npy::parse_npz(data, Some("indices")).unwrap();
    }
    let conv = &seeds("flags")[0];
    let text = String::from_utf8_lossy(conv);
    assert_eq!(
        wgconv::flags::pair("stride", text.lines().next().unwrap()).unwrap(),
        [2, 2]
    );
}
