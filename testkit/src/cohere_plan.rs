//! The deterministic answer of the fake Cohere chat: message, float usage, and the typed named-event SSE stream.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::cohere::{INTERNAL, uuid};
use crate::common::{
    Ids, LOWER_ALNUM, Triggers, args_from_schema, char_pieces, word_pieces, words,
};
use crate::reply::{Reply, SseEvent};

const SSE_CONTENT_TYPE: &str = "text/event-stream";
const THINKING: &str = "The user sent a message. I should read it carefully and answer briefly.";
/// Tokens of Cohere's chat template, counted in `usage.tokens` but not billed.
const TEMPLATE_TOKENS: usize = 66;

/// The deterministic answer to one valid request.
pub(crate) struct Plan {
    id: String,
    thinking: Option<String>,
    text: String,
    tool_plan: String,
    /// `(id, name, arguments as a JSON string)`.
    calls: Vec<(String, String, String)>,
    finish: &'static str,
    prompt: usize,
    output: usize,
    pub(crate) triggers: Triggers,
}

fn role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or_default()
}

/// The text of a message's content: a string, or its text blocks and document data.
fn text_of(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| match b.get("type").and_then(Value::as_str) {
                Some("text") => b.get("text")?.as_str().map(str::to_string),
                Some("document") => b.pointer("/document/data").map(|d| match d {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

impl Plan {
    pub(crate) fn new(body: &Map<String, Value>, ids: &Ids) -> Plan {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let last = messages
            .iter()
            .rev()
            .find(|m| matches!(role(m), "user" | "tool"));
        let text = last.map(text_of).unwrap_or_default();
        let triggers = Triggers(text.clone());
        // The first tool result of the trailing run of tool messages.
        let trailing = messages
            .iter()
            .rev()
            .take_while(|m| role(m) == "tool")
            .last();
        let tools: Vec<&Value> = body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .collect();
        let choice = body.get("tool_choice").and_then(Value::as_str);
        let mut calls = Vec::new();
        let answer = if let Some(result) = trailing {
            format!("Tool said: {}", text_of(result))
        } else if !tools.is_empty() && choice != Some("NONE") {
            let n = if triggers.has("TWO TOOLS") { 2 } else { 1 };
            for tool in tools.iter().take(n) {
                let name = tool
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let args =
                    args_from_schema(tool.pointer("/function/parameters").unwrap_or(&Value::Null));
                calls.push((
                    format!("{name}_{}", ids.next(LOWER_ALNUM, 12)),
                    name.to_string(),
                    args.to_string(),
                ));
            }
            String::new()
        } else {
            format!("Hello! You said: {text}")
        };
        let names: Vec<&str> = calls.iter().map(|(_, n, _)| n.as_str()).collect();
        let tool_plan = if calls.is_empty() {
            String::new()
        } else {
            format!("I will use {} to answer this.", names.join(" and "))
        };
        let thinking = triggers.has("THINK").then(|| THINKING.to_string());
        let finish = if !calls.is_empty() {
            "TOOL_CALL"
        } else if triggers.has("MAX TOKENS") {
            "MAX_TOKENS"
        } else if triggers.has("STOPSEQ") {
            "STOP_SEQUENCE"
        } else {
            "COMPLETE"
        };
        let prompt = messages
            .iter()
            .map(|m| words(&text_of(m)))
            .sum::<usize>()
            .max(1);
        let output = words(&answer)
            + words(&tool_plan)
            + thinking.as_deref().map_or(0, words)
            + calls.iter().map(|(_, _, a)| words(a).max(1)).sum::<usize>();
        Plan {
            id: uuid(ids),
            thinking,
            text: answer,
            tool_plan,
            calls,
            finish,
            prompt,
            output: output.max(1),
            triggers,
        }
    }

    /// Usage as Cohere sends it: every count a float (`18.0`).
    fn usage(&self) -> Value {
        let f = |n: usize| n as f64;
        json!({
            "billed_units": {"input_tokens": f(self.prompt), "output_tokens": f(self.output)},
            "tokens": {"input_tokens": f(self.prompt + TEMPLATE_TOKENS), "output_tokens": f(self.output)},
        })
    }

    fn call_json(id: &str, name: &str, arguments: &str) -> Value {
        json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
    }

    /// The non-streaming response.
    pub(crate) fn response(&self) -> Value {
        let mut message = json!({"role": "assistant"});
        if self.calls.is_empty() {
            let mut content = Vec::new();
            if let Some(t) = &self.thinking {
                content.push(json!({"type": "thinking", "thinking": t}));
            }
            content.push(json!({"type": "text", "text": self.text}));
            message["content"] = json!(content);
        } else {
            let calls: Vec<Value> = self
                .calls
                .iter()
                .map(|(id, n, a)| Self::call_json(id, n, a))
                .collect();
            message["tool_plan"] = json!(self.tool_plan);
            message["tool_calls"] = json!(calls);
        }
        json!({"id": self.id, "finish_reason": self.finish, "message": message, "usage": self.usage()})
    }

    /// Typed named-event SSE (section 4.6), with the stream fault triggers applied.
    pub(crate) fn stream(&self) -> Reply {
        let mut events = Vec::new();
        let ev = |events: &mut Vec<SseEvent>, data: Value| {
            let name = data["type"].as_str().unwrap_or_default().to_string();
            events.push(SseEvent::named(name, data));
        };
        let empty = json!({"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []});
        ev(
            &mut events,
            json!({"id": self.id, "type": "message-start", "delta": {"message": empty}}),
        );
        // Indexes in `events` of content and argument deltas (where stream faults strike).
        let mut deltas = Vec::new();
        let mut index = 0;
        let mut block =
            |events: &mut Vec<SseEvent>, kind: &str, text: &str, deltas: &mut Vec<usize>| {
                let start = json!({"type": "content-start", "index": index,
                               "delta": {"message": {"content": {"type": kind, kind: ""}}}});
                ev(events, start);
                for piece in word_pieces(text, 10) {
                    let delta = json!({"type": "content-delta", "index": index,
                                   "delta": {"message": {"content": {kind: piece}}}});
                    ev(events, delta);
                    deltas.push(events.len());
                }
                ev(events, json!({"type": "content-end", "index": index}));
                index += 1;
            };
        if let Some(t) = &self.thinking {
            block(&mut events, "thinking", t, &mut Vec::new());
        }
        if self.calls.is_empty() {
            block(&mut events, "text", &self.text, &mut deltas);
        } else {
            for piece in word_pieces(&self.tool_plan, 4) {
                ev(
                    &mut events,
                    json!({"type": "tool-plan-delta", "delta": {"message": {"tool_plan": piece}}}),
                );
            }
            for (i, (id, name, args)) in self.calls.iter().enumerate() {
                let start = Self::call_json(id, name, "");
                ev(
                    &mut events,
                    json!({"type": "tool-call-start", "index": i, "delta": {"message": {"tool_calls": start}}}),
                );
                for piece in char_pieces(args, 3) {
                    let call = json!({"function": {"arguments": piece}});
                    ev(
                        &mut events,
                        json!({"type": "tool-call-delta", "index": i, "delta": {"message": {"tool_calls": call}}}),
                    );
                    deltas.push(events.len());
                }
                ev(&mut events, json!({"type": "tool-call-end", "index": i}));
            }
        }
        let end = json!({"type": "message-end", "delta": {"finish_reason": self.finish, "usage": self.usage()}});
        ev(&mut events, end);

        let t = &self.triggers;
        let cut = deltas
            .get(1)
            .or(deltas.last())
            .copied()
            .unwrap_or(events.len());
        let midstream = t.has("MIDSTREAM ERROR");
        let reset = t.has("RESET") && !midstream;
        if midstream || reset {
            events.truncate(cut);
        }
        if midstream {
            let end = json!({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": INTERNAL}});
            ev(&mut events, end);
        } else if t.has("DONE MARKER") {
            events.push(SseEvent::data("[DONE]"));
        }
        let pace = t.pace();
        let chunks: Vec<(String, Duration)> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.to_wire(), if i == 0 { Duration::ZERO } else { pace }))
            .collect();
        let content_type = SSE_CONTENT_TYPE.to_string();
        if reset {
            return Reply::ResetAfter {
                status: 200,
                content_type,
                chunks,
                headers: Vec::new(),
            };
        }
        Reply::Chunks {
            status: 200,
            content_type,
            chunks,
            headers: Vec::new(),
        }
    }
}
