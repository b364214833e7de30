//! The fuzz targets of Rosetta, as plain functions.
//!
//! Each `fuzz_targets/*.rs` binary is one line that hands libFuzzer's input to a function here;
//! `tests/replay.rs` runs the committed seeds and regressions through the same functions on a
//! plain `cargo test`, without libFuzzer. Every function panics (that is: reports a crash) when
//! a property fails, with a message that says which one.
//!
//! - [`framing`]: `framing::Decoder` (SSE and NDJSON) against a whole-input reference decoder,
//!   and against itself fed in pieces.
//! - [`eventstream`]: the same decoder on binary event-stream messages (chunking, bounds,
//!   checksums).
//! - [`loader`]: `mapping::compile_file` on arbitrary text and on shipped mappings with fuzz
//!   bytes spliced in; a mapping that compiles must run.
//! - [`transform`]: every shipped mapping's request side (`proxy::prepare`) and response side
//!   (`proxy::translate_whole`, `upstream::error_from`).
//! - [`stream`]: every shipped mapping's stream rewriter (`proxy::rewriter`) on arbitrary bytes.
//! - [`check`]: what an OpenAI response, chunk stream or error must look like.

pub mod check;
pub mod eventstream;
pub mod framing;
pub mod input;
pub mod known;
pub mod loader;
pub mod shipped;
pub mod stream;
pub mod transform;
