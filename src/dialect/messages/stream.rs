//! The Messages stream: named events (`event: TYPE` / `data: JSON`), written from the engine's
//! typed events.
//!
//! [`MessagesWriter`] owns every invariant of the stream: `message_start` (then one `ping`)
//! before anything else; each content block started, given its deltas and stopped before the
//! next one starts, its index dense from 0 in output order; a thinking block's signature as
//! one `signature_delta` just before its stop; then one `message_delta` with the stop reason
//! and the cumulative usage, and `message_stop`. A failure after the first byte is an `error`
//! event and the end of the stream, never a `message_stop`.

use serde_json::{Value, json};

use super::render::{stop_reason, usage_json};
use super::{error, fresh_id, tool_id};
use crate::dialect::StreamWriter;
use crate::dialect::answer::{Finish, Usage};
use crate::error::ProxyError;

/// The block being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    Text,
    Thinking,
    /// A tool call, by the engine's index of it.
    Tool(usize),
}

/// Writes one Messages stream.
#[derive(Debug)]
pub struct MessagesWriter {
    id: String,
    model: String,
    started: bool,
    open: Open,
    /// The index the next block gets.
    next: usize,
    /// The open thinking block's signature, written when it stops (the last one given).
    signature: Option<String>,
    /// Each tool call's block index, by the engine's index of the call.
    tools: Vec<usize>,
}

fn write_event(out: &mut Vec<u8>, kind: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut *out, data).expect("JSON into memory cannot fail");
    out.extend_from_slice(b"\n\n");
}

impl MessagesWriter {
    /// A writer for an answer to a client that named `model`.
    pub fn new(model: &str) -> Self {
        MessagesWriter {
            id: fresh_id("msg_"),
            model: model.to_string(),
            started: false,
            open: Open::None,
            next: 0,
            signature: None,
            tools: Vec::new(),
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let message = json!({"id": self.id, "type": "message", "role": "assistant",
            "model": self.model, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": usage_json(&Usage::default())});
        write_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
        write_event(out, "ping", &json!({"type": "ping"}));
    }

    /// The index of the open block.
    fn index(&self) -> usize {
        self.next - 1
    }

    /// Stops the open block, if any (a thinking block first gets its signature).
    fn stop(&mut self, out: &mut Vec<u8>) {
        if self.open == Open::None {
            return;
        }
        let index = self.index();
        if let Some(signature) = self.signature.take() {
            self.delta(
                out,
                json!({"type": "signature_delta", "signature": signature}),
            );
        }
        write_event(
            out,
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
        self.open = Open::None;
    }

    /// Stops the open block and starts `block` as `open`.
    fn begin(&mut self, out: &mut Vec<u8>, open: Open, block: Value) {
        self.start(out);
        self.stop(out);
        let index = self.next;
        self.next += 1;
        self.open = open;
        write_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
    }

    fn delta(&self, out: &mut Vec<u8>, delta: Value) {
        self.delta_at(out, self.index(), delta);
    }

    fn delta_at(&self, out: &mut Vec<u8>, index: usize, delta: Value) {
        write_event(
            out,
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        );
    }
}

impl StreamWriter for MessagesWriter {
    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        if self.open != Open::Text {
            self.begin(out, Open::Text, json!({"type": "text", "text": ""}));
        }
        self.delta(out, json!({"type": "text_delta", "text": text}));
    }

    fn reasoning(&mut self, out: &mut Vec<u8>, text: &str, signature: Option<&str>) {
        if self.open != Open::Thinking {
            self.begin(
                out,
                Open::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
        }
        if !text.is_empty() {
            self.delta(out, json!({"type": "thinking_delta", "thinking": text}));
        }
        if let Some(s) = signature {
            self.signature = Some(s.to_string());
        }
    }

    fn tool_start(&mut self, out: &mut Vec<u8>, index: usize, id: Option<&str>, name: &str) {
        let id = id.map_or_else(tool_id, str::to_string);
        self.begin(
            out,
            Open::Tool(index),
            json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
        );
        if self.tools.len() <= index {
            self.tools.resize(index + 1, usize::MAX);
        }
        self.tools[index] = self.index();
    }

    /// A piece of a call's arguments. Upstreams send one call's pieces before the next call
    /// starts; a late piece of an earlier call still goes to that call's block, by its index.
    fn tool_arguments(&mut self, out: &mut Vec<u8>, index: usize, piece: &str) {
        let Some(&block) = self.tools.get(index).filter(|b| **b != usize::MAX) else {
            return;
        };
        self.delta_at(
            out,
            block,
            json!({"type": "input_json_delta", "partial_json": piece}),
        );
    }

    fn finish(&mut self, out: &mut Vec<u8>, stated: Option<Finish>, usage: &Usage) {
        self.start(out);
        self.stop(out);
        let reason = stop_reason(Finish::resolve(stated, !self.tools.is_empty()));
        write_event(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": usage_json(usage)}),
        );
        write_event(out, "message_stop", &json!({"type": "message_stop"}));
    }

    fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        error::event(out, err);
    }
}

/// The writer of a passed-through stream: the upstream's own events reach the client as they
/// are, so it writes nothing but the error that ends a stream the upstream cut short.
#[derive(Debug, Default)]
pub struct NativeWriter;

impl StreamWriter for NativeWriter {
    fn text(&mut self, _out: &mut Vec<u8>, _text: &str) {}
    fn reasoning(&mut self, _out: &mut Vec<u8>, _text: &str, _signature: Option<&str>) {}
    fn tool_start(&mut self, _out: &mut Vec<u8>, _index: usize, _id: Option<&str>, _name: &str) {}
    fn tool_arguments(&mut self, _out: &mut Vec<u8>, _index: usize, _piece: &str) {}
    fn finish(&mut self, _out: &mut Vec<u8>, _stated: Option<Finish>, _usage: &Usage) {}
    fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        error::event(out, err);
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
