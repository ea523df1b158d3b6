//! cargo-fuzz target `import`: the body and its properties are in `fuzz/harness/mod.rs`,
//! shared with the stable replay test `tests/cli/fuzz_regressions.rs`.
#![no_main]

#[allow(dead_code)]
#[path = "../harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::import(data));
