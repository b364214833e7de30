//! Test modules, compiled as one binary.

mod anthropic;
mod azure;
mod errors;
mod ollama;
mod openai_compat;
mod support;
mod surface;
