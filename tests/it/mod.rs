//! Test modules, compiled as one binary.

mod anthropic;
mod azure;
mod cohere;
mod errors;
mod gemini;
mod ollama;
mod openai_compat;
mod support;
mod surface;
mod tgi;
