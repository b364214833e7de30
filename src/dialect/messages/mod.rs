//! The Messages dialect: a `message` object for a whole answer, and a stream of named events
//! (`message_start`, `content_block_start`, `ping`, `content_block_delta`,
//! `content_block_stop`, `message_delta`, `message_stop`), errors in the dialect's own shape.
//!
//! - [`render`] writes a whole [`crate::dialect::answer::Answer`] as one `message`.
//! - [`MessagesWriter`] writes a stream and owns its invariants (see `stream.rs`).
//! - [`error`] renders a failure before the first byte (an HTTP error) or after it (an
//!   `error` event).
//! - [`request`] converts a Messages request into the canonical chat request every mapping
//!   reads, and lists what the upstream cannot receive.
//!
//! A mapping whose chat route declares `native: [messages]` is not translated: its
//! upstream's own answer reaches the client, and [`NativeWriter`] only ends a stream the
//! upstream cut short with the dialect's error event.

pub mod error;
mod render;
pub mod request;
mod stream;
pub mod wire;

pub use render::render;
pub use stream::{MessagesWriter, NativeWriter};

/// The name of this dialect in a route's `native:` list.
pub const NAME: &str = "messages";

/// A fresh id: `prefix` then 24 ASCII letters and digits.
fn fresh_id(prefix: &str) -> String {
    let mut rng = fastrand::Rng::new();
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    id.extend((0..24).map(|_| rng.alphanumeric()));
    id
}

/// A fresh tool-use id, for upstreams that give none.
fn tool_id() -> String {
    fresh_id("toolu_")
}
