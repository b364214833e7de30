//! The rules every dialect's stream shares, between a mapping's emissions and a
//! [`StreamWriter`]: nothing after the end, empty pieces dropped, tool calls matched by the
//! upstream's key and numbered in start order, the finish and the usage gathered until the end.

use std::collections::HashMap;

use serde_json::Value;

use super::{AnyWriter, StreamWriter};
use crate::dialect::answer::{Finish, ToolCallPart, Usage};
use crate::error::ProxyError;

/// Drives one writer from a mapping's emissions.
pub struct Emitter<W = AnyWriter> {
    pub writer: W,
    /// Upstream tool-call key -> index.
    tool_keys: HashMap<String, usize>,
    tool_count: usize,
    last_tool: Option<usize>,
    finish: Option<Finish>,
    ended: bool,
    pub usage: Usage,
    /// Set once the stream is closed (finished or failed); later input is ignored.
    pub closed: bool,
    pub failed: bool,
    /// Whether the writer has written any of the answer (for the time to first token).
    pub emitted_content: bool,
}

impl<W: StreamWriter> Emitter<W> {
    pub fn new(writer: W) -> Self {
        Emitter {
            writer,
            tool_keys: HashMap::new(),
            tool_count: 0,
            last_tool: None,
            finish: None,
            ended: false,
            usage: Usage::default(),
            closed: false,
            failed: false,
            emitted_content: false,
        }
    }

    /// Records whether a content event wrote anything.
    fn wrote(&mut self, out: &[u8], before: usize) {
        self.emitted_content |= out.len() > before;
    }

    /// A text delta; empty text is not sent.
    pub fn content(&mut self, out: &mut Vec<u8>, text: &str) {
        if self.closed || text.is_empty() {
            return;
        }
        let before = out.len();
        self.writer.text(out, text);
        self.wrote(out, before);
    }

    /// A reasoning delta; empty text is not sent.
    pub fn reasoning(&mut self, out: &mut Vec<u8>, text: &str) {
        if self.closed || text.is_empty() {
            return;
        }
        let before = out.len();
        self.writer.reasoning(out, text, None);
        self.wrote(out, before);
    }

    /// The reasoning's opaque signature, alone: it goes to the reasoning the writer has open,
    /// or to a reasoning of its own. An empty signature is not sent; of several, the last wins
    /// (each is whole, never a piece).
    pub fn reasoning_signature(&mut self, out: &mut Vec<u8>, signature: &str) {
        if self.closed || signature.is_empty() {
            return;
        }
        let before = out.len();
        self.writer.reasoning(out, "", Some(signature));
        self.wrote(out, before);
    }

    /// A tool-call start and/or argument piece. A part with a name whose key is new starts a
    /// call; any other part continues the call with that key, or the latest call.
    pub fn tool_call(&mut self, out: &mut Vec<u8>, part: ToolCallPart) {
        if self.closed {
            return;
        }
        let known = part
            .key
            .as_ref()
            .and_then(|k| self.tool_keys.get(k).copied());
        let index = match (known, &part.name) {
            (None, Some(name)) => {
                let i = self.tool_count;
                self.tool_count += 1;
                if let Some(k) = part.key {
                    self.tool_keys.insert(k, i);
                }
                let before = out.len();
                self.writer.tool_start(out, i, part.id.as_deref(), name);
                self.wrote(out, before);
                i
            }
            _ => match known.or(self.last_tool) {
                Some(i) => i,
                None => return, // arguments for a call that never started: nothing to attach to
            },
        };
        self.last_tool = Some(index);
        if let Some(args) = part.arguments.filter(|a| !a.is_empty()) {
            self.writer.tool_arguments(out, index, &args);
        }
    }

    /// The upstream's finish reason; a later one replaces an earlier one.
    pub fn set_finish(&mut self, reason: Value) {
        self.finish = Some(Finish::from_value(&reason));
    }

    pub fn add_usage(&mut self, u: Usage) {
        self.usage.merge(u);
    }

    pub fn mark_end(&mut self) {
        self.ended = true;
    }

    /// Whether the upstream has said the answer is complete.
    pub fn complete(&self) -> bool {
        self.finish.is_some() || self.ended
    }

    /// Ends the stream as complete.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.writer.finish(out, self.finish, &self.usage);
        self.closed = true;
    }

    /// Ends the stream with an error.
    pub fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        if self.closed {
            return;
        }
        self.writer.fail(out, err);
        self.closed = true;
        self.failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Dialect;

    /// Chat and legacy streams have no place for a signature: emitting one writes nothing,
    /// before the reasoning, after it, or with no reasoning at all.
    #[test]
    fn a_signature_writes_nothing_in_chat_and_text_streams() {
        for dialect in [Dialect::Chat, Dialect::Text] {
            let mut e = Emitter::new(dialect.writer("m", false));
            let mut out = Vec::new();
            e.reasoning_signature(&mut out, "sig-0");
            assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
            assert!(!e.emitted_content);
            e.reasoning(&mut out, "hmm");
            let before = out.len();
            e.reasoning_signature(&mut out, "sig-1");
            assert_eq!(out.len(), before, "{}", String::from_utf8_lossy(&out));
        }
    }
}
