//! Fake upstream LLM servers for Rosetta's tests: faithful Anthropic and Ollama fakes and a scripted server.
//!
//! Every fake binds 127.0.0.1, records each request before validating it ([`FakeUpstream::requests`],
//! also `GET /__requests`, cleared by `DELETE /__requests`), counts open connections
//! ([`FakeUpstream::open_connections`], also `GET /__stats`, which does not count the asking
//! connection) and streams with real pauses. The fakes follow `shared/reference/wire-formats.md`
//! (sections 2 and 5).
//!
//! Their answers are chosen by trigger words in the text of the last user message (Ollama: last
//! `user` or `tool` message):
//!
//! | trigger | Anthropic | Ollama |
//! |---|---|---|
//! | `FAIL 429` / `FAIL 500` / `FAIL 400` | error in Anthropic shape (429 has `retry-after: 7`) | `{"error": ...}` with that status |
//! | `FAIL 529` | 529 `overloaded_error` | - |
//! | `GARBAGE` | 200 `application/json` body `this is not json{` | same (NDJSON content type when streaming) |
//! | `HANG` | never answers | never answers |
//! | tool results in the last turn | text `Tool said: <first result>` | last message role `tool`: `Tool said: <content>` |
//! | `tools` given (and `tool_choice` not none) | text `Let me check.` + `tool_use`, stop `tool_use` | one `tool_calls` line, then final `done_reason: "stop"` |
//! | `TWO TOOLS` | calls the first two tools | calls the first two tools |
//! | `THINK` | thinking block (+ signature) first | `message.thinking` pieces first |
//! | `MAX TOKENS` | stop `max_tokens` | `done_reason: "length"` |
//! | `STOPSEQ` | stop `stop_sequence`, first of `stop_sequences` or `END` | - |
//! | `CACHED` | `cache_read_input_tokens: 5` | - |
//! | `NO PROMPT COUNT` | - | final line without `prompt_eval_count` |
//! | `SLOW` | 300 ms between events (default 15 ms) | 300 ms between lines (default 15 ms) |
//! | `MIDSTREAM ERROR` | after 2 text deltas: `event: error` (overloaded), close | after 2 content lines: `{"error": ...}` line, close |
//! | `RESET` | after 2 text deltas: TCP reset | after 2 content lines: TCP reset |
//! | `STREAM GARBAGE` | after 2 text deltas: `data: {not json`, then continues | - |
//!
//! Otherwise the answer is `Hello! You said: <text>`.
#![forbid(unsafe_code)]

mod anthropic;
mod anthropic_messages;
mod anthropic_plan;
mod anthropic_validate;
mod common;
mod ollama;
mod ollama_embed;
mod ollama_reply;
mod reply;
mod server;

pub use reply::{BoxError, Reply, ReplyBody, SseEvent};
pub use server::{FakeUpstream, Handler, Recorded};

/// Which faithful fake to run (used by the `fake-upstream` binary).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// Anthropic Messages API; `Some(key)` requires exactly that `x-api-key`.
    Anthropic { api_key: Option<String> },
    /// Ollama native API.
    Ollama,
}

impl Provider {
    /// The request handler implementing this provider.
    pub fn handler(&self) -> Handler {
        match self {
            Provider::Anthropic { api_key } => anthropic::handler(api_key.clone()),
            Provider::Ollama => ollama::handler(),
        }
    }
}
