//! Rosetta: a reverse proxy that makes non-OpenAI LLM APIs speak the OpenAI API.
//!
//! The request path, module by module:
//!
//! - [`cli`]: `rosetta serve` / `rosetta check`; `main` only parses flags and calls it.
//! - [`mapping`] loads `mappings/*.yaml` ([`spec`] mirrors the YAML) and compiles each file into
//!   a [`mapping::Mapping`]: upstream, routes, templates and stream rules, every JSONPath
//!   ([`path`]) and regex compiled once. Every error is reported with file, line and location.
//! - [`server`] is the hyper server: `/NAME/v1/chat/completions`, `/NAME/v1/models`, `/health`,
//!   `/metrics`, and the one place errors become responses. [`conn`] sets hyper up for client
//!   connections and drives each one (idle HTTP/2 connections closed, graceful shutdown).
//! - [`reload`] recompiles the mappings directory on SIGHUP or a file change and swaps the new
//!   set in whole; a broken file keeps the running set.
//! - [`proxy`] runs one call: renders the upstream request with the [`template`] engine, sends
//!   it on the mapping's pooled client to an endpoint [`pool`] chooses (retrying before the
//!   first byte), and translates the answer.
//! - [`rewrite`] applies a mapping to upstream output: [`framing`] splits the stream into
//!   events, rules turn them into normalized emissions; [`answer`] is the normalized answer
//!   (typed events, and the whole [`answer::Answer`]) that both stream and whole answers share.
//! - [`dialect`] writes the normalized answer in the client's dialect: a
//!   [`dialect::StreamWriter`] per stream, driven by a [`dialect::Emitter`], and a whole-answer
//!   renderer; [`dialect::chat`] owns the Chat Completions invariants (ids, `created`,
//!   role-first deltas, tool-call indexes, finish reasons, usage chunks, `[DONE]`);
//!   [`dialect::responses`] owns the Responses ones (`response.*` events, sequence numbers,
//!   output items, the terminal event and the final response a stream leaves to store). [`openai`]
//!   writes embeddings lists; [`error`] renders every error as OpenAI JSON.
//! - [`telemetry`]: Prometheus metrics and logging; [`trace`]: one request logged end to end.
//! - [`auth`]: optional inbound API keys (`Authorization: Bearer`), checked in constant time;
//!   [`limits`]: body size, header and body read timeouts, the concurrency limit, shutdown grace,
//!   the caps on upstream frames and bodies; [`buffers`]: what one stream may hold toward a
//!   slow client.
//! - [`intake`] reads a request body under the limits: [`json_cost`] measures it before it is
//!   parsed, [`memory`] keeps the budget of what in-flight requests hold.
//! - [`golden`]: `rosetta test`, golden cases run through the same pure phases as the server.
#![forbid(unsafe_code)]

pub mod cli;
pub mod dialect;
pub mod error;
pub mod ledger;
pub mod limits;
pub mod mapping;
pub mod ops;
pub mod serving;
pub mod translate;
pub mod upstream;
