//! Test modules, compiled as one binary.

mod anthropic;
mod azure;
mod cohere;
mod db;
mod edge;
mod errors;
mod gemini;
mod h2_idle;
mod leaks;
mod ledger_store;
mod memory;
mod ollama;
mod openai_compat;
mod raw_upstream;
mod reliability;
mod reload;
mod responses;
mod responses_store;
mod responses_stored;
mod responses_support;
mod slow_reader;
mod support;
mod surface;
mod tgi;
mod upstream_caps;
mod usage;
