//! Applying a mapping to upstream output: whole responses, and streams event by event.
//!
//! Pure and synchronous: bytes in, a client dialect's bytes out. The hyper body wrapper in
//! [`crate::translate::proxy`] drives a [`StreamRewriter`] frame by frame; the rules' emissions reach the
//! dialect's [`StreamWriter`] through an [`Emitter`].

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::dialect::answer::{ToolCallPart, Usage, signature_of, text_of};
use crate::dialect::{AnyWriter, Emitter, StreamWriter};
use crate::error::ProxyError;
use crate::mapping::template::{Expr, Memo, Scope, eval, to_text, truthy};
use crate::mapping::{Fields, Mapping, Op, Rule};
use crate::translate::framing::{Decoder, Event};
use crate::translate::stop_trim::{self, StopTrim};

/// Evaluates a set of fields on `input`, with `$request` bound to the OpenAI request and
/// `$headers` to the upstream's response headers.
pub fn eval_fields(
    fields: &Fields,
    input: &Value,
    request: &Value,
    state: &Value,
    headers: &Value,
) -> Map<String, Value> {
    let globals = [
        ("root", input),
        ("request", request),
        ("state", state),
        ("headers", headers),
    ];
    let memo = Memo::default();
    let scope = Scope::memoized(input, &globals, &memo);
    let mut out = Map::new();
    let slots = [
        ("content", &fields.content),
        ("reasoning", &fields.reasoning),
        ("reasoning_signature", &fields.reasoning_signature),
        ("tool_calls", &fields.tool_calls),
        ("finish_reason", &fields.finish_reason),
        ("usage", &fields.usage),
        ("error", &fields.error),
        ("end", &fields.end),
        ("embeddings", &fields.embeddings),
        ("models", &fields.models),
        ("input_tokens", &fields.input_tokens),
    ];
    for (name, expr) in slots {
        if let Some(v) = expr.as_ref().and_then(|e| eval(e, scope)) {
            out.insert(name.to_string(), v);
        }
    }
    out
}

/// Reads an upstream error from a normalized `error` value (an object or a bare message).
pub fn stream_error(v: &Value) -> ProxyError {
    let field = |k: &str| v.get(k).filter(|x| !x.is_null()).map(to_text);
    let message = match v {
        Value::Object(_) => field("message"),
        other => Some(to_text(other)),
    }
    .filter(|m| !m.is_empty())
    .unwrap_or_else(|| "the upstream reported an error".into());
    ProxyError::UpstreamStreamError {
        message,
        kind: field("type"),
        code: field("code"),
    }
}

/// Rewrites one upstream stream into a client stream, written by `W`.
pub struct StreamRewriter<W = AnyWriter> {
    mapping: Arc<Mapping>,
    op: Op,
    /// Forward upstream bytes unchanged.
    passthrough: bool,
    /// Forward upstream bytes unchanged, and read them with the route's rules all the same
    /// (for the usage, the end and the errors), their output discarded: the stream of an
    /// upstream that speaks the client's dialect itself.
    native: bool,
    /// Where a native stream's rules write (cleared after every frame).
    scratch: Vec<u8>,
    request: Arc<Value>,
    /// The upstream's response headers, as `$headers`.
    headers: Value,
    decoder: Decoder,
    pub writer: Emitter<W>,
    state: Value,
    events: Vec<Event>,
    /// The last bytes forwarded by a passthrough stream.
    tail: Vec<u8>,
    /// The route's `trim_stop`, when it has one and the request has stop texts.
    trim: Option<StopTrim>,
}

/// How many trailing bytes a passthrough stream keeps to recognise its end.
const TAIL: usize = 32;

fn trimmed(b: &[u8]) -> &[u8] {
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &b[..end]
}

impl<W: StreamWriter> StreamRewriter<W> {
    /// `None` when the mapping's route for `op` has no `stream` section.
    pub fn new(
        mapping: Arc<Mapping>,
        op: Op,
        request: Arc<Value>,
        headers: Value,
        writer: W,
    ) -> Option<Self> {
        let program = mapping.route(op)?.stream.as_ref()?;
        // Only a chat client takes the upstream's OpenAI chunks as they are; for another
        // dialect a passthrough route's stream is read by its built-in rules.
        let passthrough = program.passthrough && matches!(op, Op::Chat | Op::Completions);
        let native = op == Op::Messages
            && mapping
                .route(op)
                .is_some_and(|r| r.speaks(crate::dialect::messages::NAME));
        let framing = program.framing;
        let trim = mapping
            .route(op)?
            .trim_stop
            .as_ref()
            .and_then(|e| StopTrim::new(stop_trim::stops(e, &request)));
        Some(StreamRewriter {
            mapping,
            op,
            passthrough,
            native,
            scratch: Vec::new(),
            request,
            headers,
            decoder: Decoder::new(framing),
            writer: Emitter::new(writer),
            state: Value::Object(Map::new()),
            events: Vec::new(),
            tail: Vec::new(),
            trim,
        })
    }

    /// The same rewriter, accepting upstream stream frames of at most `max_frame` bytes.
    pub fn with_max_frame(mut self, max_frame: usize) -> Self {
        self.decoder.set_max_frame(max_frame);
        self
    }

    /// Feeds upstream bytes; appends the client's bytes to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.writer.closed {
            return;
        }
        if self.passthrough {
            out.extend_from_slice(bytes);
            self.writer.emitted_content |= !bytes.is_empty();
            self.keep_tail(bytes);
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        // Events completed before a framing error still reach the client, then the error.
        let framed = self.decoder.feed(bytes, &mut events);
        if self.native {
            out.extend_from_slice(bytes);
            self.writer.emitted_content |= !bytes.is_empty();
            self.keep_tail(bytes);
            let mut scratch = std::mem::take(&mut self.scratch);
            self.process(&mut events, &mut scratch);
            scratch.clear();
            self.scratch = scratch;
        } else {
            self.process(&mut events, out);
        }
        self.events = events;
        if let Err(e) = framed {
            self.writer.fail(out, &e.into());
        }
    }

    /// Keeps the last bytes forwarded. Only the end matters (`data: [DONE]`, a final blank
    /// line): a long run of whitespace keeps its last two bytes, so it cannot push `[DONE]`
    /// out of the window.
    fn keep_tail(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
        let end = trimmed(&self.tail).len();
        if self.tail.len() - end > 2 {
            let keep_from = self.tail.len() - 2;
            self.tail.drain(end..keep_from);
        }
        let cut = self.tail.len().saturating_sub(TAIL);
        self.tail.drain(..cut);
    }

    /// The upstream body ended. A stream that never said it was complete ends in an error.
    pub fn end(&mut self, out: &mut Vec<u8>) {
        if self.writer.closed {
            return;
        }
        if self.passthrough {
            // The upstream writes its own ending; one that never says [DONE] was cut short.
            if trimmed(&self.tail).ends_with(b"data: [DONE]") {
                self.writer.closed = true;
            } else {
                self.fail(
                    out,
                    &ProxyError::BadUpstreamResponse {
                        message: "the upstream closed the stream before data: [DONE]".into(),
                    },
                );
            }
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        let framed = self.decoder.finish(&mut events);
        if self.native {
            let mut scratch = std::mem::take(&mut self.scratch);
            self.process(&mut events, &mut scratch);
            scratch.clear();
            self.scratch = scratch;
        } else {
            self.process(&mut events, out);
        }
        if let Err(e) = framed {
            self.writer.fail(out, &e.into());
        }
        if self.writer.closed {
            return;
        }
        if self.writer.complete() {
            stop_trim::flush(self.trim.as_mut(), &mut self.writer, out);
            self.writer.finish(out);
        } else {
            self.writer.fail(
                out,
                &ProxyError::BadUpstreamResponse {
                    message: "the upstream closed the stream before the response was complete"
                        .into(),
                },
            );
        }
    }

    /// The upstream failed (reset, timeout): end the client's stream with that error.
    pub fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        // Forwarded bytes may have stopped mid-event: end that event before the error event.
        if (self.passthrough || self.native)
            && !self.writer.closed
            && !self.tail.is_empty()
            && !self.tail.ends_with(b"\n\n")
        {
            out.extend_from_slice(b"\n\n");
        }
        stop_trim::flush(self.trim.as_mut(), &mut self.writer, out);
        self.writer.fail(out, err);
    }

    /// Usage seen so far.
    pub fn usage(&self) -> Usage {
        self.writer.usage
    }

    fn process(&mut self, events: &mut Vec<Event>, out: &mut Vec<u8>) {
        for event in events.drain(..) {
            if !self.writer.closed {
                self.apply(&event, out);
            }
            self.decoder.recycle(event);
        }
    }

    fn apply(&mut self, event: &Event, out: &mut Vec<u8>) {
        let mapping = Arc::clone(&self.mapping);
        let Some(program) = mapping.route(self.op).and_then(|c| c.stream.as_ref()) else {
            return;
        };
        let mut parsed: Option<Value> = None;
        for rule in &program.rules {
            if !rule.events.is_empty()
                && !event.name.as_ref().is_some_and(|n| rule.events.contains(n))
            {
                continue;
            }
            if rule.data.as_ref().is_some_and(|d| *d != event.data) {
                continue;
            }
            // A rule matched on raw data (a `[DONE]` sentinel) does not need the data to be JSON.
            if parsed.is_none() && rule.data.is_none() && needs_data(rule) {
                match serde_json::from_str::<Value>(&event.data) {
                    Ok(v) => parsed = Some(v),
                    Err(_) => {
                        let mut shown: String = event.data.chars().take(120).collect();
                        if shown.len() < event.data.len() {
                            shown.push('…');
                        }
                        let message =
                            format!("the upstream sent an event that is not valid JSON: {shown:?}");
                        self.writer
                            .fail(out, &ProxyError::BadUpstreamResponse { message });
                        return;
                    }
                }
            }
            let data = parsed.as_ref().unwrap_or(&Value::Null);
            if let Some(cond) = &rule.cond {
                let globals = [
                    ("root", data),
                    ("request", &*self.request),
                    ("state", &self.state),
                    ("headers", &self.headers),
                ];
                if !truthy(eval(cond, Scope::new(data, &globals)).as_ref()) {
                    continue;
                }
            }
            self.fire(rule, data, out);
            return; // first matching rule wins
        }
    }

    fn fire(&mut self, rule: &Rule, data: &Value, out: &mut Vec<u8>) {
        let globals = [
            ("root", data),
            ("request", &*self.request),
            ("state", &self.state),
            ("headers", &self.headers),
        ];
        let memo = Memo::default();
        let scope = Scope::memoized(data, &globals, &memo);
        // Every field is evaluated before the state changes, as `eval_fields` would.
        let field = |e: &Option<Expr>| e.as_ref().and_then(|e| eval(e, scope));
        let e = &rule.emit;
        let reasoning = field(&e.reasoning);
        let signature = field(&e.reasoning_signature);
        let content = field(&e.content);
        let tool_calls = field(&e.tool_calls);
        let finish_reason = field(&e.finish_reason);
        let usage = field(&e.usage);
        let error = field(&e.error);
        let end = field(&e.end);
        if !rule.set.is_empty() || !rule.incr.is_empty() {
            let updates: Vec<(String, Option<Value>)> = rule
                .set
                .iter()
                .map(|(k, e)| (k.clone(), eval(e, scope)))
                .collect();
            let state = self.state.as_object_mut().expect("state is an object");
            for (k, v) in updates {
                match v {
                    Some(v) => state.insert(k, v),
                    None => state.remove(&k),
                };
            }
            for k in &rule.incr {
                let n = state.get(k).and_then(Value::as_i64).unwrap_or(0) + 1;
                state.insert(k.clone(), n.into());
            }
        }
        let w = &mut self.writer;
        if let Some(text) = into_text(reasoning) {
            w.reasoning(out, &text);
        }
        if let Some(signature) = signature_of(signature.as_ref()) {
            w.reasoning_signature(out, &signature);
        }
        if let Some(text) = into_text(content) {
            stop_trim::content(self.trim.as_mut(), w, out, &text);
        }
        if let Some(calls) = &tool_calls {
            stop_trim::flush(self.trim.as_mut(), w, out);
            for part in ToolCallPart::list(calls) {
                w.tool_call(out, part);
            }
        }
        if let Some(reason) = finish_reason {
            w.set_finish(reason);
        }
        if let Some(u) = &usage {
            w.add_usage(Usage::from_value(u));
        }
        if let Some(err) = &error {
            w.fail(out, &stream_error(err));
            return;
        }
        if truthy(end.as_ref()) {
            stop_trim::flush(self.trim.as_mut(), w, out);
            w.mark_end();
            w.finish(out);
        }
    }
}

/// [`text_of`], taking the value (a string is not copied).
fn into_text(v: Option<Value>) -> Option<String> {
    match v? {
        Value::String(t) => (!t.is_empty()).then_some(t),
        other => text_of(Some(&other)),
    }
}

/// Whether a rule reads the event's JSON (so it must be parsed).
fn needs_data(rule: &Rule) -> bool {
    let e = &rule.emit;
    rule.cond.is_some()
        || !rule.set.is_empty()
        || [
            &e.content,
            &e.reasoning,
            &e.reasoning_signature,
            &e.tool_calls,
            &e.finish_reason,
            &e.usage,
            &e.error,
            &e.end,
        ]
        .iter()
        .any(|f| f.is_some())
}

#[cfg(test)]
mod tests;
