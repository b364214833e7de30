//! Rosetta: a reverse proxy that makes non-OpenAI LLM APIs speak the OpenAI API.
#![forbid(unsafe_code)]

pub mod mapping;
pub mod path;
pub mod spec;
pub mod template;
