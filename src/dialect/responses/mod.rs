//! The OpenAI Responses dialect: a `response` object for a whole answer, and a stream of typed
//! `response.*` events, each `event: TYPE` / `data: JSON` with a `sequence_number`.
//!
//! - [`Echo`] is what a response carries besides the model's output: its id, `created_at`, the
//!   model as the client named it, the request fields a response repeats, and the slot the
//!   final response of a stream is left in for the server to store.
//! - [`render`] writes a whole [`crate::dialect::answer::Answer`] as one response.
//! - [`ResponsesWriter`] writes a stream. It owns every invariant of it: one counter of
//!   `sequence_number` from 0, `response.created` and `response.in_progress` first, every
//!   output item added before its deltas and done before the end, the same item ids in the
//!   events and in the final response, and exactly one terminal event (`response.completed`,
//!   `response.incomplete`, or `error` then `response.failed`), with no `[DONE]`.
//!
//! - [`request`] converts a Responses request into the canonical chat request every mapping
//!   reads (and lists what cannot be sent upstream).
//!
//! Both build their output items and their final response with the same code (`output.rs`),
//! so a stream ends with the response [`render`] gives for the answer it folds into.

mod echo;
mod output;
mod render;
pub mod request;
mod sse;
mod stream;

pub use echo::{Echo, Finished, Status};
pub use render::render;
pub use stream::ResponsesWriter;

/// A fresh id: `prefix` then 48 ASCII letters and digits (OpenAI's are about as long).
fn fresh_id(prefix: &str) -> String {
    let mut rng = fastrand::Rng::new();
    let mut id = String::with_capacity(prefix.len() + 48);
    id.push_str(prefix);
    id.extend((0..48).map(|_| rng.alphanumeric()));
    id
}

#[cfg(test)]
mod check;
#[cfg(test)]
mod end_tests;
#[cfg(test)]
mod tests;
