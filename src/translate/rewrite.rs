//! Applying a mapping to upstream output: whole responses, and streams event by event.
//!
//! Pure and synchronous: bytes in, a client dialect's bytes out. The hyper body wrapper in
//! [`crate::translate::proxy`] drives a [`StreamRewriter`] frame by frame; the rules' emissions reach the
//! dialect's [`StreamWriter`] through an [`Emitter`].

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::dialect::answer::{ToolCallPart, Usage, text_of};
use crate::dialect::{AnyWriter, Emitter, StreamWriter};
use crate::error::ProxyError;
use crate::mapping::template::{Expr, Scope, eval, to_text, truthy};
use crate::mapping::{Fields, Mapping, Op, Rule};
use crate::translate::framing::{Decoder, Event};

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
    let scope = Scope::new(input, &globals);
    let mut out = Map::new();
    let slots = [
        ("content", &fields.content),
        ("reasoning", &fields.reasoning),
        ("tool_calls", &fields.tool_calls),
        ("finish_reason", &fields.finish_reason),
        ("usage", &fields.usage),
        ("error", &fields.error),
        ("end", &fields.end),
        ("embeddings", &fields.embeddings),
        ("models", &fields.models),
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
    request: Arc<Value>,
    /// The upstream's response headers, as `$headers`.
    headers: Value,
    decoder: Decoder,
    pub writer: Emitter<W>,
    state: Value,
    events: Vec<Event>,
    /// The last bytes forwarded by a passthrough stream.
    tail: Vec<u8>,
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
        let passthrough = program.passthrough && op != Op::Responses;
        let framing = program.framing;
        Some(StreamRewriter {
            mapping,
            op,
            passthrough,
            request,
            headers,
            decoder: Decoder::new(framing),
            writer: Emitter::new(writer),
            state: Value::Object(Map::new()),
            events: Vec::new(),
            tail: Vec::new(),
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
            self.tail.extend_from_slice(bytes);
            // Only the end matters (`data: [DONE]`, a final blank line): a long run of
            // whitespace keeps its last two bytes, so it cannot push `[DONE]` out of the window.
            let end = trimmed(&self.tail).len();
            if self.tail.len() - end > 2 {
                let keep_from = self.tail.len() - 2;
                self.tail.drain(end..keep_from);
            }
            let cut = self.tail.len().saturating_sub(TAIL);
            self.tail.drain(..cut);
            return;
        }
        let mut events = std::mem::take(&mut self.events);
        // Events completed before a framing error still reach the client, then the error.
        let framed = self.decoder.feed(bytes, &mut events);
        self.process(&mut events, out);
        self.events = events;
        if let Err(e) = framed {
            self.writer.fail(out, &e.into());
        }
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
        self.process(&mut events, out);
        if let Err(e) = framed {
            self.writer.fail(out, &e.into());
        }
        if self.writer.closed {
            return;
        }
        if self.writer.complete() {
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
        if self.passthrough
            && !self.writer.closed
            && !self.tail.is_empty()
            && !self.tail.ends_with(b"\n\n")
        {
            out.extend_from_slice(b"\n\n");
        }
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
        let scope = Scope::new(data, &globals);
        // Every field is evaluated before the state changes, as `eval_fields` would.
        let field = |e: &Option<Expr>| e.as_ref().and_then(|e| eval(e, scope));
        let e = &rule.emit;
        let reasoning = field(&e.reasoning);
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
        if let Some(text) = into_text(content) {
            w.content(out, &text);
        }
        if let Some(calls) = &tool_calls {
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
mod tests {
    use super::*;
    use crate::dialect::Dialect;
    use crate::mapping::compile_file;
    use serde_json::json;
    use std::path::Path;

    const MAPPING: &str = r#"
upstream: {base_url: "http://x"}
routes:
  chat:
    path: /s
    response: {content: $.text}
    stream:
      framing: sse
      rules:
        - on: {event: start}
          set: {input: $.usage.in}
        - on: {event: ping}
        - on: {event: block_start, if: {$eq: [$.block.type, tool]}}
          emit: {tool_calls: {key: $.index, id: $.block.id, name: $.block.name}}
        - on: {event: delta, if: {$eq: [$.delta.type, text]}}
          emit: {content: $.delta.text}
        - on: {event: delta, if: {$eq: [$.delta.type, json]}}
          emit: {tool_calls: {key: $.index, arguments: $.delta.partial}}
        - on: {event: stop}
          emit: {finish_reason: {$lookup: $.reason, table: {done: stop, tool: tool_calls}}, usage: {prompt_tokens: $state.input, completion_tokens: $.out}}
        - on: {event: oops}
          emit: {error: $.error}
        - on: {data: "[DONE]"}
          emit: {end: true}
"#;

    fn rewriter(include_usage: bool) -> StreamRewriter {
        let m = compile_file(Path::new("t.yaml"), MAPPING, &|_| None).unwrap();
        StreamRewriter::new(
            Arc::new(m),
            Op::Chat,
            Arc::new(json!({})),
            json!({}),
            Dialect::Chat.writer("m", include_usage),
        )
        .unwrap()
    }

    fn run(r: &mut StreamRewriter, input: &str) -> String {
        let mut out = Vec::new();
        for b in input.as_bytes().chunks(7) {
            r.feed(b, &mut out);
        }
        r.end(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_stream_folds_into_the_normalized_answer() {
        use crate::dialect::Fold;
        use crate::dialect::answer::{Answer, Finish, ToolCall, Usage};
        let m = compile_file(Path::new("t.yaml"), MAPPING, &|_| None).unwrap();
        let mut r = StreamRewriter::new(
            Arc::new(m),
            Op::Chat,
            Arc::new(json!({})),
            json!({}),
            Fold::default(),
        )
        .unwrap();
        let mut out = Vec::new();
        r.feed(b"event: start\ndata: {\"usage\":{\"in\":9}}\n\nevent: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\nevent: block_start\ndata: {\"index\":4,\"block\":{\"type\":\"tool\",\"id\":\"t1\",\"name\":\"f\"}}\n\nevent: delta\ndata: {\"index\":4,\"delta\":{\"type\":\"json\",\"partial\":\"{}\"}}\n\nevent: stop\ndata: {\"reason\":\"done\",\"out\":5}\n\n", &mut out);
        r.end(&mut out);
        assert!(out.is_empty());
        let expected = Answer {
            text: Some("Hi".into()),
            tool_calls: vec![ToolCall {
                id: Some("t1".into()),
                name: "f".into(),
                arguments: Some("{}".into()),
            }],
            finish: Some(Finish::Stop),
            usage: Usage {
                prompt_tokens: Some(9),
                completion_tokens: Some(5),
                ..Usage::default()
            },
            ..Answer::default()
        };
        assert_eq!(r.writer.writer.answer, expected);
        assert_eq!(r.usage().completion_tokens, Some(5));
    }

    #[test]
    fn events_before_a_framing_error_in_the_same_feed_still_reach_the_client() {
        // Found by the stream_rewrite fuzz target: the error used to be written first and the
        // completed `delta` dropped, so what a client saw depended on the network's cuts.
        let mut r = rewriter(false);
        let mut out = Vec::new();
        r.feed(
            b"event: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\ndata: \xff\n\n",
            &mut out,
        );
        let out = String::from_utf8_lossy(&out);
        let (hi, err) = (out.find("\"Hi\"").unwrap(), out.find("\"error\"").unwrap());
        assert!(hi < err, "{out}");
    }

    #[test]
    fn a_passthrough_stream_with_blank_lines_after_done_is_complete() {
        let src = "upstream: {base_url: \"http://x\"}\nroutes:\n  chat:\n    path: /s\n    response: {content: $.t}\n    stream: {framing: sse, passthrough: true}\n";
        let m = compile_file(Path::new("p.yaml"), src, &|_| None).unwrap();
        let mut r = StreamRewriter::new(
            Arc::new(m),
            Op::Chat,
            Arc::new(json!({})),
            json!({}),
            Dialect::Chat.writer("m", false),
        )
        .unwrap();
        let input = format!("data: {{}}\n\ndata: [DONE]\n\n{}", "\n".repeat(40));
        let out = run(&mut r, &input);
        assert!(!out.contains("error"), "{out}");
        assert_eq!(out, input);
    }

    #[test]
    fn rules_state_and_unparsed_events() {
        let mut r = rewriter(true);
        let out = run(
            &mut r,
            "event: start\ndata: {\"usage\":{\"in\":9}}\n\nevent: ping\ndata: not json at all\n\nevent: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\nevent: block_start\ndata: {\"index\":4,\"block\":{\"type\":\"tool\",\"id\":\"t1\",\"name\":\"f\"}}\n\nevent: delta\ndata: {\"index\":4,\"delta\":{\"type\":\"json\",\"partial\":\"{}\"}}\n\nevent: stop\ndata: {\"reason\":\"done\",\"out\":5}\n\n",
        );
        assert!(out.contains("\"content\":\"Hi\""), "{out}");
        assert!(out.contains("\"tool_calls\":[{\"function\":{\"arguments\":\"\",\"name\":\"f\"},\"id\":\"t1\",\"index\":0,\"type\":\"function\"}]"), "{out}");
        assert!(out.contains("\"finish_reason\":\"tool_calls\""), "{out}");
        assert!(
            out.contains(
                "\"usage\":{\"completion_tokens\":5,\"prompt_tokens\":9,\"total_tokens\":14}"
            ),
            "{out}"
        );
        assert!(out.ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn response_headers_are_bound_as_headers() {
        let src = "upstream: {base_url: \"http://x\"}\nroutes:\n  chat:\n    path: /c\n    response:\n      content: $.text\n      usage: {prompt_tokens: {$int: \"$headers['x-prompt-tokens']\"}}\n    stream:\n      framing: sse\n      rules:\n        - emit: {content: \"$headers['x-tag']\", end: true}\n";
        let m = compile_file(Path::new("h.yaml"), src, &|_| None).unwrap();
        let headers = json!({"x-prompt-tokens": "12", "x-tag": "tagged"});
        let fields = &m.chat.as_ref().unwrap().response;
        let out = eval_fields(
            fields,
            &json!({"text": "t"}),
            &json!({}),
            &Value::Null,
            &headers,
        );
        assert_eq!(out["usage"], json!({"prompt_tokens": 12}));
        let out = eval_fields(
            fields,
            &json!({"text": "t"}),
            &json!({}),
            &Value::Null,
            &json!({}),
        );
        assert!(
            out.get("usage")
                .and_then(|u| u.get("prompt_tokens"))
                .is_none(),
            "an absent header is absent: {out:?}"
        );
        let mut r = StreamRewriter::new(
            Arc::new(m),
            Op::Chat,
            Arc::new(json!({})),
            headers,
            Dialect::Chat.writer("m", false),
        )
        .unwrap();
        assert!(run(&mut r, "data: {}\n\n").contains("\"content\":\"tagged\""));
    }

    #[test]
    fn passthrough_forwards_bytes_and_catches_truncation() {
        let src = "upstream: {base_url: \"http://x\"}\nroutes:\n  chat:\n    path: /c\n    response: {}\n    stream: {framing: sse, passthrough: true}\n";
        let m = Arc::new(compile_file(Path::new("p.yaml"), src, &|_| None).unwrap());
        let new = || {
            StreamRewriter::new(
                Arc::clone(&m),
                Op::Chat,
                Arc::new(json!({})),
                json!({}),
                Dialect::Chat.writer("m", false),
            )
            .unwrap()
        };
        let whole = "data: {\"a\":1}\n\ndata: [DONE]\n\n";
        let mut r = new();
        assert_eq!(run(&mut r, whole), whole, "forwarded byte for byte");
        let mut r = new();
        let out = run(&mut r, "data: {\"a\":1}\n\ndata: {\"cho");
        assert!(
            out.starts_with("data: {\"a\":1}\n\ndata: {\"cho\n\ndata: {\"error\""),
            "{out}"
        );
        assert!(out.contains("before data: [DONE]"), "{out}");
    }

    #[test]
    fn raw_data_sentinel_matches_without_parsing() {
        let mut r = rewriter(false);
        let out = run(
            &mut r,
            "event: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\ndata: [DONE]\n\n",
        );
        assert!(
            out.ends_with("\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"),
            "{out}"
        );
    }

    #[test]
    fn truncated_stream_and_error_events_fail() {
        let mut r = rewriter(false);
        let out = run(
            &mut r,
            "event: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n",
        );
        assert!(out.contains("\"error\""), "{out}");
        assert!(!out.contains("[DONE]"));
        let mut r = rewriter(false);
        let out = run(
            &mut r,
            "event: oops\ndata: {\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        assert!(out.contains("\"message\":\"Overloaded\""), "{out}");
        let mut r = rewriter(false);
        let out = run(&mut r, "event: delta\ndata: {not json\n\n");
        assert!(out.contains("not valid JSON"), "{out}");
    }
}
