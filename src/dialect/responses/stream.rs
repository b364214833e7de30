//! The Responses stream writer: typed answer events in, `response.*` events out.
//!
//! Items open as the answer needs them and are closed with their `*.done` events:
//!
//! - a reasoning or message item closes as soon as another item opens, so text after
//!   reasoning, or a call after text, finds the earlier item done (OpenAI's order);
//! - a function call stays open until the end of the answer: the [`crate::dialect::Emitter`]
//!   lets a call's arguments arrive after a later call (or text) started, and a call closed
//!   early would lose them. Its `function_call_arguments.done` and `output_item.done` come at
//!   the end, in `output_index` order (the OpenAI SDK accepts interleaved items).
//!
//! At the end every open item is closed, the last one `incomplete` when the answer was cut,
//! and the final response is left in [`Echo::finished`] before the terminal event is written.
//! A failure closes nothing: `error`, then `response.failed` with the output so far (items
//! still open there are `incomplete`).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::echo::{Echo, Status, Written};
use super::output::{self, Item, item_status, status_of};
use super::sse::{Delta, DeltaHead, Events, write_value};
use crate::dialect::StreamWriter;
use crate::dialect::answer::{Finish, Usage};
use crate::error::ProxyError;

/// An output item, the head of its delta events (from its first) and, once it is done, the
/// status it was closed with.
#[derive(Debug)]
struct Slot {
    item: Item,
    delta: Option<DeltaHead>,
    closed: Option<Status>,
}

impl Slot {
    /// Writes a delta event of the item, at `output_index`, with `piece`.
    fn delta(&mut self, events: &mut Events, out: &mut Vec<u8>, output_index: usize, piece: &str) {
        match &self.delta {
            Some(head) => events.delta_with(out, head, piece),
            None => {
                let head = events.delta(out, delta_of(&self.item, output_index, piece));
                self.delta = Some(head);
            }
        }
    }
}

/// Writes one Responses stream.
#[derive(Debug)]
pub struct ResponsesWriter {
    echo: Arc<Echo>,
    events: Events,
    /// The output items, by `output_index`.
    slots: Vec<Slot>,
    /// The open reasoning or message item, if any.
    current: Option<usize>,
    /// The `output_index` of each tool call, by the call's index.
    calls: Vec<usize>,
    /// The echoed fields, written at the start.
    written: Option<Written>,
}

/// The events of an item's one part: (the key of its index, its `added` event), then its
/// text's and its part's `done` events.
fn part_events(item: &Item) -> ((&'static str, &'static str), (&'static str, &'static str)) {
    match item {
        Item::Reasoning { summary: true, .. } => (
            ("summary_index", "response.reasoning_summary_part.added"),
            (
                "response.reasoning_summary_text.done",
                "response.reasoning_summary_part.done",
            ),
        ),
        Item::Reasoning { .. } => (
            ("content_index", "response.content_part.added"),
            ("response.reasoning_text.done", "response.content_part.done"),
        ),
        _ => (
            ("content_index", "response.content_part.added"),
            ("response.output_text.done", "response.content_part.done"),
        ),
    }
}

/// The delta event of `item`, at `output_index`, with `piece`.
fn delta_of<'a>(item: &'a Item, output_index: usize, piece: &'a str) -> Delta<'a> {
    let (kind, content_index, summary_index, logprobs) = match item {
        Item::Reasoning { summary: true, .. } => (
            "response.reasoning_summary_text.delta",
            None,
            Some(0),
            false,
        ),
        Item::Reasoning { .. } => ("response.reasoning_text.delta", Some(0), None, false),
        Item::Message { .. } => ("response.output_text.delta", Some(0), None, true),
        Item::Call { .. } => ("response.function_call_arguments.delta", None, None, false),
    };
    Delta {
        kind,
        content_index,
        summary_index,
        piece,
        item_id: item.id(),
        logprobs,
        output_index,
    }
}

/// `{"k": v, ...}` as a map.
fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

impl ResponsesWriter {
    pub fn new(echo: Arc<Echo>) -> Self {
        ResponsesWriter {
            echo,
            events: Events::default(),
            slots: Vec::new(),
            current: None,
            calls: Vec::new(),
            written: None,
        }
    }

    /// `response.created` and `response.in_progress`, before anything else: the snapshot is
    /// written once and copied, since only the events' `type` and `sequence_number` differ.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.events.count() > 0 {
            return;
        }
        let echo = &self.echo;
        let written = self.written.insert(echo.written());
        let mut snapshot = 0..0;
        self.events.write(out, "response.created", |o| {
            let out = o.key("response");
            let at = out.len();
            written.write(out, |out, key| {
                echo.write_own_base(out, key, Status::InProgress)
            });
            snapshot = at..out.len();
        });
        self.events.write(out, "response.in_progress", |o| {
            o.key("response").extend_from_within(snapshot);
        });
    }

    /// Adds an item: `output_item.added`, and the empty part of a reasoning or message item.
    fn open(&mut self, out: &mut Vec<u8>, item: Item) -> usize {
        let index = self.slots.len();
        self.events.write(out, "response.output_item.added", |o| {
            item.write_added(o.key("item"));
            o.num("output_index", index);
        });
        // A new item has no text yet: its part is the empty one.
        if !matches!(item, Item::Call { .. }) {
            let ((index_key, kind), _) = part_events(&item);
            let summary = index_key == "summary_index";
            self.events.write(out, kind, |o| {
                if !summary {
                    o.num("content_index", 0);
                }
                o.str("item_id", item.id()).num("output_index", index);
                item.write_part(o.key("part"));
                if summary {
                    o.num("summary_index", 0);
                }
            });
        }
        self.slots.push(Slot {
            item,
            delta: None,
            closed: None,
        });
        index
    }

    /// Closes an item: the call's whole arguments, or its part's `*.done` events, then
    /// `output_item.done` with the item in its final state.
    fn close(&mut self, out: &mut Vec<u8>, index: usize, status: Status) {
        let slot = &mut self.slots[index];
        slot.closed = Some(status);
        let item = &slot.item;
        match item {
            Item::Call { id, .. } => {
                self.events
                    .write(out, "response.function_call_arguments.done", |o| {
                        o.str("arguments", item.arguments())
                            .str("item_id", id)
                            .num("output_index", index);
                    });
            }
            Item::Reasoning { id, text, .. } | Item::Message { id, text } => {
                let ((index_key, _), (text_done, part_done)) = part_events(item);
                let summary = index_key == "summary_index";
                let message = matches!(item, Item::Message { .. });
                self.events.write(out, text_done, |o| {
                    if !summary {
                        o.num("content_index", 0);
                    }
                    o.str("item_id", id);
                    if message {
                        o.raw("logprobs", b"[]");
                    }
                    o.num("output_index", index);
                    if summary {
                        o.num("summary_index", 0);
                    }
                    o.str("text", text);
                });
                self.events.write(out, part_done, |o| {
                    if !summary {
                        o.num("content_index", 0);
                    }
                    o.str("item_id", id).num("output_index", index);
                    item.write_part(o.key("part"));
                    if summary {
                        o.num("summary_index", 0);
                    }
                });
            }
        }
        self.events.write(out, "response.output_item.done", |o| {
            item.write_done(o.key("item"), status);
            o.num("output_index", index);
        });
    }

    /// Closes the open reasoning or message item, if any.
    fn close_current(&mut self, out: &mut Vec<u8>) {
        if let Some(i) = self.current.take() {
            self.close(out, i, Status::Completed);
        }
    }

    /// The open item of the kind `is_kind` accepts, or a new one `make` builds.
    fn current_or(
        &mut self,
        out: &mut Vec<u8>,
        is_kind: fn(&Item) -> bool,
        make: impl FnOnce() -> Item,
    ) -> usize {
        match self.current {
            Some(i) if is_kind(&self.slots[i].item) => i,
            _ => {
                self.close_current(out);
                let i = self.open(out, make());
                self.current = Some(i);
                i
            }
        }
    }

    /// The output so far, each item in its final state or, still open, as `open` says.
    fn output(&self, open: Status) -> Vec<Value> {
        self.slots
            .iter()
            .map(|s| s.item.done(s.closed.unwrap_or(open)))
            .collect()
    }

    /// Writes the terminal event with the final response, and leaves the response for the
    /// server (in the same call, so before the client can read the event).
    ///
    /// The echoed fields are copied from the start's; the response's own values are the
    /// stored response's.
    fn end(&mut self, out: &mut Vec<u8>, kind: &'static str, response: Value) {
        let echo = &self.echo;
        let written = self.written.get_or_insert_with(|| echo.written());
        self.events.write(out, kind, |o| {
            written.write(o.key("response"), |out, key| {
                write_value(out, &response[key])
            })
        });
        self.echo.set_finished(response);
    }
}

impl StreamWriter for ResponsesWriter {
    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        self.start(out);
        let i = self.current_or(
            out,
            |it| matches!(it, Item::Message { .. }),
            || Item::message(String::new()),
        );
        let slot = &mut self.slots[i];
        let Item::Message { text: all, .. } = &mut slot.item else {
            unreachable!("current_or gave a message");
        };
        all.push_str(text);
        slot.delta(&mut self.events, out, i, text);
    }

    fn reasoning(&mut self, out: &mut Vec<u8>, text: &str, signature: Option<&str>) {
        self.start(out);
        let summary = self.echo.wants_summary();
        let i = self.current_or(
            out,
            |it| matches!(it, Item::Reasoning { .. }),
            || Item::reasoning(String::new(), None, summary),
        );
        let slot = &mut self.slots[i];
        let Item::Reasoning {
            text: all,
            signature: sig,
            ..
        } = &mut slot.item
        else {
            unreachable!("current_or gave a reasoning item");
        };
        all.push_str(text);
        if let Some(s) = signature {
            *sig = Some(s.to_string());
        }
        // A signature alone: the item carries it as `encrypted_content`, no delta.
        if text.is_empty() {
            return;
        }
        slot.delta(&mut self.events, out, i, text);
    }

    fn tool_start(&mut self, out: &mut Vec<u8>, index: usize, id: Option<&str>, name: &str) {
        self.start(out);
        self.close_current(out);
        debug_assert_eq!(
            index,
            self.calls.len(),
            "the Emitter numbers calls in order"
        );
        let item = Item::call(self.slots.iter().map(|s| &s.item), id, name);
        let i = self.open(out, item);
        self.calls.push(i);
    }

    fn tool_arguments(&mut self, out: &mut Vec<u8>, index: usize, piece: &str) {
        let Some(&i) = self.calls.get(index) else {
            return; // the Emitter starts a call before its arguments
        };
        let slot = &mut self.slots[i];
        let Item::Call { arguments, .. } = &mut slot.item else {
            unreachable!("calls index function_call items");
        };
        arguments.get_or_insert_default().push_str(piece);
        slot.delta(&mut self.events, out, i, piece);
    }

    /// Closes every open item in `output_index` order, then `response.completed` or
    /// `response.incomplete` with the whole output and the usage.
    fn finish(&mut self, out: &mut Vec<u8>, stated: Option<Finish>, usage: &Usage) {
        self.start(out);
        let finish = Finish::resolve(stated, !self.calls.is_empty());
        let (status, _) = status_of(finish);
        let last = self.slots.len().saturating_sub(1);
        self.current = None;
        for i in 0..self.slots.len() {
            if self.slots[i].closed.is_none() {
                self.close(out, i, item_status(status, i == last));
            }
        }
        let response = output::finished(&self.echo, self.output(Status::Completed), finish, usage);
        let kind = match status {
            Status::Incomplete => "response.incomplete",
            _ => "response.completed",
        };
        self.end(out, kind, response);
    }

    /// `error` (flat `code`, `message`, `param`: the shape the OpenAI SDK yields as an event
    /// rather than raising on), then `response.failed` with the output so far. The message is
    /// the one the chat dialect sends; like every byte of a stream, it reaches the client
    /// through the redactor.
    fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        self.start(out);
        let json = err.to_json();
        let e = &json["error"];
        let message = e["message"].as_str().unwrap_or(err.kind()).to_string();
        // `code` is null for some upstream errors; the error's `type` names it then.
        let code = e["code"]
            .as_str()
            .or_else(|| e["type"].as_str())
            .unwrap_or(err.kind())
            .to_string();
        let mut body = fields([
            ("code", json!(code)),
            ("message", json!(message)),
            ("param", e["param"].clone()),
        ]);
        self.events.event(out, "error", &mut body);
        let response = output::failed(&self.echo, self.output(Status::Incomplete), &code, &message);
        self.end(out, "response.failed", response);
    }
}
