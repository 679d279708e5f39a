//! cargo-fuzz target: the `.npy` reader on arbitrary bytes (see `fuzz/harness.rs`).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::npy_bytes(data));
