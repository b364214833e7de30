//! Rosetta: a reverse proxy that makes non-OpenAI LLM APIs speak the OpenAI API.
#![forbid(unsafe_code)]

pub mod error;
pub mod framing;
pub mod mapping;
pub mod openai;
pub mod path;
pub mod rewrite;
pub mod spec;
pub mod template;
