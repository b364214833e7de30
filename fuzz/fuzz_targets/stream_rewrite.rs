//! Stream rewriting by the shipped mappings: see `rosetta_fuzz::stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rosetta_fuzz::stream::run(data));
