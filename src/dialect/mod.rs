//! Client dialects: each one writes the normalized answer ([`crate::dialect::answer`]) in its own wire
//! shape, and owns every invariant of that shape (ids, the order of events, where the finish
//! and the usage go, how a stream ends and how it fails), so no mapping can make it invalid.
//!
//! A stream reaches a dialect as calls on its [`StreamWriter`], made by an [`Emitter`], which
//! keeps the rules every dialect shares; a whole answer reaches it as one
//! [`crate::dialect::answer::Answer`], through [`Dialect::render`]. [`Fold`] is the writer of no dialect:
//! it folds a stream back into an `Answer`.

use std::sync::Arc;

use serde_json::Value;

use crate::dialect::answer::{Answer, Finish, Usage};
use crate::error::ProxyError;

pub mod answer;
pub mod chat;
mod emitter;
mod fold;
pub mod messages;
pub mod openai;
pub mod responses;

pub use emitter::Emitter;
pub use fold::Fold;

/// Writes one client stream from typed events. The [`Emitter`] guarantees the order: text,
/// reasoning and tool events only before the end; a tool call's arguments only after its
/// start; indexes from 0, in start order; then at most one `finish` or one `fail`, and nothing
/// after it. Text and argument pieces are never empty, but for a reasoning call that brings
/// only the signature (empty text, a non-empty signature).
pub trait StreamWriter {
    /// A piece of the answer's text.
    fn text(&mut self, out: &mut Vec<u8>, text: &str);
    /// A piece of the reasoning, with its opaque signature where the upstream gives one; or the
    /// signature alone (`text` empty), for the reasoning open or a reasoning of its own. A
    /// later signature replaces an earlier one.
    fn reasoning(&mut self, out: &mut Vec<u8>, text: &str, signature: Option<&str>);
    /// A tool call starts: the upstream's id (if any) and the function's name.
    fn tool_start(&mut self, out: &mut Vec<u8>, index: usize, id: Option<&str>, name: &str);
    /// A piece of a started call's arguments (JSON text).
    fn tool_arguments(&mut self, out: &mut Vec<u8>, index: usize, piece: &str);
    /// The answer is complete: the finish the upstream stated (if any) and the usage so far.
    fn finish(&mut self, out: &mut Vec<u8>, stated: Option<Finish>, usage: &Usage);
    /// The answer failed after the stream began.
    fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError);
}

impl<W: StreamWriter + ?Sized> StreamWriter for Box<W> {
    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        (**self).text(out, text)
    }
    fn reasoning(&mut self, out: &mut Vec<u8>, text: &str, signature: Option<&str>) {
        (**self).reasoning(out, text, signature)
    }
    fn tool_start(&mut self, out: &mut Vec<u8>, index: usize, id: Option<&str>, name: &str) {
        (**self).tool_start(out, index, id, name)
    }
    fn tool_arguments(&mut self, out: &mut Vec<u8>, index: usize, piece: &str) {
        (**self).tool_arguments(out, index, piece)
    }
    fn finish(&mut self, out: &mut Vec<u8>, stated: Option<Finish>, usage: &Usage) {
        (**self).finish(out, stated, usage)
    }
    fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        (**self).fail(out, err)
    }
}

/// A stream writer of any dialect, as the server holds it.
pub type AnyWriter = Box<dyn StreamWriter + Send>;

/// The dialects a client can speak.
#[derive(Debug, Clone)]
pub enum Dialect {
    /// Chat Completions: `chat.completion` and `chat.completion.chunk`.
    Chat,
    /// Legacy completions: `text_completion`.
    Text,
    /// Responses: a `response` object, or `response.*` events. The echo holds the response's
    /// id, its model (as the client named it) and the request fields it repeats.
    Responses(Arc<responses::Echo>),
    /// Messages: a `message` object, or its named events.
    Messages,
    /// Messages, from an upstream that speaks it: its own answer reaches the client as it is.
    MessagesNative,
}

impl Dialect {
    /// Whether the upstream's own answer reaches the client unchanged.
    pub fn is_native(&self) -> bool {
        matches!(self, Dialect::MessagesNative)
    }

    /// A whole answer as this dialect's response body. `model` names the model in chat and
    /// legacy answers; a response takes its model from its echo.
    pub fn render(&self, answer: &Answer, model: &str) -> Value {
        match self {
            Dialect::Chat => chat::completion(answer, model),
            Dialect::Text => chat::text_completion(answer, model),
            Dialect::Responses(echo) => responses::render(answer, echo),
            Dialect::Messages | Dialect::MessagesNative => messages::render(answer, model),
        }
    }

    /// A writer of this dialect's stream; `include_usage` asks for the usage in a chat or
    /// legacy stream (a Responses stream always ends with its usage).
    pub fn writer(&self, model: &str, include_usage: bool) -> AnyWriter {
        let kind = match self {
            Dialect::Chat => chat::Kind::Chat,
            Dialect::Text => chat::Kind::Text,
            Dialect::Responses(echo) => {
                return Box::new(responses::ResponsesWriter::new(Arc::clone(echo)));
            }
            Dialect::Messages => return Box::new(messages::MessagesWriter::new(model)),
            Dialect::MessagesNative => return Box::new(messages::NativeWriter),
        };
        Box::new(chat::ChunkWriter::new(kind, model, include_usage))
    }
}
