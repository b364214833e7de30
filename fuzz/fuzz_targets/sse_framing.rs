//! SSE stream framing: see `rosetta_fuzz::framing`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rosetta_fuzz::framing::run(
    rosetta::mapping::Framing::Sse,
    data
));
