//! cargo-fuzz target: the command line's flag parsers and parameter validation (see `fuzz/harness.rs`).
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::flag_text(data));
