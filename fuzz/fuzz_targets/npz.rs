//! cargo-fuzz target: the `.npz` reader (zip archive, then `.npy` member) on arbitrary bytes (see `fuzz/harness.rs`).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::npz_bytes(data));
