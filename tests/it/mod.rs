//! Test modules, compiled as one binary.

mod anthropic;
mod azure;
mod cohere;
mod db;
mod edge;
mod errors;
mod gemini;
mod ledger_store;
mod memory;
mod ollama;
mod openai_compat;
mod reliability;
mod reload;
mod support;
mod surface;
mod tgi;
mod usage;
