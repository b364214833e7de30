//! Test modules, compiled as one binary.

mod anthropic;
mod errors;
mod ollama;
mod support;
mod surface;
