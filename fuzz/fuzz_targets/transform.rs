//! Request and whole-response transforms of the shipped mappings: see `rosetta_fuzz::transform`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rosetta_fuzz::transform::run(data));
