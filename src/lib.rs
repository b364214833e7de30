//! Rosetta: a reverse proxy that makes non-OpenAI LLM APIs speak the OpenAI API.
//!
//! The request path, folder by folder (each folder uses only the folders listed after it):
//!
//! - [`cli`]: `rosetta serve` / `check` / `test` / `usage` / `capabilities`
//!   ([`cli::capabilities`], the matrix of what each mapping translates); `main` only parses
//!   flags and calls it. The serve command wires the mappings, limits, keys, ledger and reload into the server.
//! - [`serving`]: the hyper server and everything a request passes before the engine.
//!   [`serving::server`] accepts connections ([`serving::conn`]), admits each request (its
//!   inbound key, [`serving::auth`]; the concurrency limit, [`serving::admission`]) and routes
//!   it by path; [`serving::shield`] redacts every secret from what is sent back;
//!   [`serving::dispatch`] runs one API call as named steps: read the body
//!   ([`serving::intake`], [`serving::json_cost`], [`serving::memory`]), pick the mapping
//!   ([`serving::router`]), charge the caller and hold its budget, run with fallbacks, finish.
//!   [`serving::responses`] is the Responses API's serving side (a turn, the stored responses);
//!   [`serving::health`], [`serving::admin`] and [`serving::models`] answer their own paths;
//!   [`serving::reply`] is the one place errors become responses; [`serving::state`] is what
//!   connections share, and [`serving::reload`] swaps a recompiled mapping set in whole.
//! - [`translate`]: the engine of one call. [`translate::request`] checks the OpenAI request;
//!   [`translate::proxy`] renders the upstream request, sends it ([`translate::send`]: the
//!   retry loop) and translates the answer: whole, or as a stream through [`translate::body`],
//!   [`translate::framing`] (events) and [`translate::rewrite`] (rules to normalized
//!   emissions). [`translate::responses`] turns a Responses API request into the canonical
//!   chat request every mapping reads. [`translate::fidelity`] works out what of a request the
//!   chosen route does not translate (`x-rosetta-dropped`, strict mode, the capability
//!   matrix); [`translate::stop_trim`] ends an answer before its stop text (`trim_stop`).
//!   [`translate::golden`] is `rosetta test`: golden cases through the same pure phases, no
//!   socket opened.
//! - [`upstream`]: the upstream side of a call: the pooled client, building and sending the
//!   request, reading bodies and errors; [`upstream::pool`] chooses an endpoint (passive
//!   health), [`upstream::retries`] says how long to wait before a retry.
//! - [`ledger`]: usage and cost of every call (the tab), budgets, the store (SQLite or
//!   PostgreSQL) and its writer, reports, and the stored Responses conversations.
//! - [`mapping`]: the mapping language, load → compile → run. [`mapping::spec`] mirrors the
//!   YAML, [`mapping::compile`] turns it into the runtime types of [`mapping`] (every JSONPath,
//!   [`mapping::path`], and template, [`mapping::template`], compiled once) and reports every
//!   error with file, line and location; [`mapping::reads`] works out once what each route reads
//!   of the request; [`mapping::pricing`] prices a call.
//! - [`ops`]: [`ops::telemetry`] (Prometheus metrics and logging; [`ops::handles`], each
//!   mapping's series resolved once, not per request; [`ops::params`], the closed set of
//!   dropped-parameter labels), [`ops::trace`] (one request
//!   logged end to end), [`ops::redact`] (the one redaction function), [`ops::clock`].
//! - [`dialect`]: the normalized answer ([`dialect::answer`]) and the client dialects that
//!   write it: [`dialect::chat`] owns the Chat Completions invariants (ids, `created`,
//!   role-first deltas, tool-call indexes, finish reasons, usage chunks, `[DONE]`),
//!   [`dialect::responses`] the Responses ones (`response.*` events, sequence numbers, output
//!   items, the terminal event); [`dialect::openai`] writes embeddings lists.
//! - [`limits`]: every bound Rosetta applies, as plain configuration, and [`limits::buffers`],
//!   what one stream may hold toward a slow client.
//! - [`error`]: [`error::ProxyError`], rendered as OpenAI JSON; shared by all.
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
