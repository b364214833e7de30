//! The mapping compiler: see `rosetta_fuzz::loader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rosetta_fuzz::loader::run(data));
