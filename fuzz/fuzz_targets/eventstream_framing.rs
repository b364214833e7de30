//! Binary event-stream framing: see `rosetta_fuzz::eventstream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rosetta_fuzz::eventstream::run(data));
