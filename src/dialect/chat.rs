//! The Chat Completions dialect, and the legacy completions one that shares its stream:
//! `chat.completion` objects and `chat.completion.chunk` streams (`text_completion` for legacy).
//!
//! [`ChunkWriter`] owns every invariant of the stream: one id and one `created` per response,
//! the role-first delta, tool-call indexes, arguments as JSON strings, exactly one
//! `finish_reason` on the last choice-bearing chunk, the `choices: []` usage chunk, `[DONE]`,
//! and an error object with no `[DONE]` after it when the answer fails.

use serde_json::{Map, Value, json};

use super::StreamWriter;
use crate::dialect::answer::{Answer, Finish, Usage};
use crate::dialect::openai::now_secs;
use crate::error::ProxyError;

/// A fresh `chatcmpl-...` id.
pub fn completion_id() -> String {
    format!("chatcmpl-{}", random_alnum(24))
}

/// A fresh `cmpl-...` id for legacy completions.
pub fn text_completion_id() -> String {
    format!("cmpl-{}", random_alnum(24))
}

/// A fresh `call_...` tool-call id, for upstreams that do not give one.
pub fn tool_call_id() -> String {
    format!("call_{}", random_alnum(24))
}

fn random_alnum(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

/// The usage object; `total_tokens` is always the sum.
pub fn usage_json(usage: &Usage) -> Value {
    let p = usage.prompt_tokens.unwrap_or(0);
    let c = usage.completion_tokens.unwrap_or(0);
    let mut u = Map::new();
    u.insert("prompt_tokens".into(), p.into());
    u.insert("completion_tokens".into(), c.into());
    u.insert("total_tokens".into(), p.saturating_add(c).into());
    if let Some(cached) = usage.cached_tokens {
        u.insert(
            "prompt_tokens_details".into(),
            object([("cached_tokens", cached.into())]),
        );
    }
    if let Some(r) = usage.reasoning_tokens {
        u.insert(
            "completion_tokens_details".into(),
            object([("reasoning_tokens", r.into())]),
        );
    }
    Value::Object(u)
}

/// An object of `fields`, built directly (the `json!` macro goes through `Serialize` for each
/// value, which showed in the profile of every call).
fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// The `chat.completion` object. A call without an id gets one; one without arguments gets `{}`.
pub fn completion(answer: &Answer, model: &str) -> Value {
    let calls: Vec<Value> = answer
        .tool_calls
        .iter()
        .map(|c| {
            let arguments = c.arguments.as_deref().unwrap_or("{}");
            object([
                ("id", c.id.clone().unwrap_or_else(tool_call_id).into()),
                ("type", "function".into()),
                (
                    "function",
                    object([
                        ("name", c.name.clone().into()),
                        ("arguments", arguments.into()),
                    ]),
                ),
            ])
        })
        .collect();
    let mut message = Map::new();
    message.insert("role".into(), "assistant".into());
    message.insert(
        "content".into(),
        answer.text.clone().map_or(Value::Null, Value::String),
    );
    message.insert("refusal".into(), Value::Null);
    if let Some(r) = &answer.reasoning {
        message.insert("reasoning_content".into(), Value::String(r.clone()));
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    let choice = object([
        ("index", 0.into()),
        ("message", Value::Object(message)),
        ("logprobs", Value::Null),
        ("finish_reason", answer.resolved_finish().as_str().into()),
    ]);
    object([
        ("id", completion_id().into()),
        ("object", "chat.completion".into()),
        ("created", now_secs().into()),
        ("model", model.into()),
        ("choices", Value::Array(vec![choice])),
        ("usage", usage_json(&answer.usage)),
    ])
}

/// The legacy `text_completion` object: the text only (tool calls do not change the finish).
pub fn text_completion(answer: &Answer, model: &str) -> Value {
    let finish = Finish::resolve(answer.finish, false);
    json!({
        "id": text_completion_id(),
        "object": "text_completion",
        "created": now_secs(),
        "model": model,
        "choices": [{"text": answer.text.as_deref().unwrap_or_default(), "index": 0,
            "logprobs": null, "finish_reason": finish.as_str()}],
        "usage": usage_json(&answer.usage),
    })
}

/// Which stream a [`ChunkWriter`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `chat.completion.chunk` deltas.
    Chat,
    /// Legacy `text_completion` pieces: text only.
    Text,
}

/// A chunk's delta: a JSON object, or one of the frequent ones written without building it:
/// one text field (`{"content":"..."}`), or a tool call's argument piece.
enum Delta<'a> {
    Object(&'a Value),
    Text(&'static str, &'a str),
    /// `{"tool_calls":[{"function":{"arguments":"..."},"index":N}]}`, keys in the order
    /// `json!` writes them (see the test).
    ToolArguments(usize, &'a str),
}

/// Appends compact JSON, as `to_string` would write it.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("JSON into memory cannot fail");
}

/// Writes one chunk stream.
#[derive(Debug)]
pub struct ChunkWriter {
    kind: Kind,
    /// `{"id":..,"object":"chat.completion.chunk","created":..,"model":..,` rendered once.
    head: String,
    include_usage: bool,
    role_sent: bool,
    had_tool_calls: bool,
}

impl ChunkWriter {
    pub fn new(kind: Kind, model: &str, include_usage: bool) -> Self {
        let (id, object) = match kind {
            Kind::Chat => (completion_id(), "chat.completion.chunk"),
            Kind::Text => (text_completion_id(), "text_completion"),
        };
        let head = format!(
            "{{\"id\":\"{id}\",\"object\":\"{object}\",\"created\":{},\"model\":{},",
            now_secs(),
            Value::String(model.to_string())
        );
        ChunkWriter {
            kind,
            head,
            include_usage,
            role_sent: false,
            had_tool_calls: false,
        }
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: Delta<'_>, finish: Option<&str>) {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(self.head.as_bytes());
        match self.kind {
            Kind::Chat => {
                out.extend_from_slice(b"\"choices\":[{\"index\":0,\"delta\":");
                match delta {
                    Delta::Object(v) => write_json(out, v),
                    Delta::Text(field, text) => {
                        out.push(b'{');
                        write_json(out, field);
                        out.push(b':');
                        write_json(out, text);
                        out.push(b'}');
                    }
                    Delta::ToolArguments(index, args) => {
                        out.extend_from_slice(b"{\"tool_calls\":[{\"function\":{\"arguments\":");
                        write_json(out, args);
                        out.extend_from_slice(b"},\"index\":");
                        write_json(out, &index);
                        out.extend_from_slice(b"}]}");
                    }
                }
            }
            Kind::Text => {
                // Legacy completions carry the text piece itself, not a delta.
                out.extend_from_slice(b"\"choices\":[{\"text\":");
                match delta {
                    Delta::Object(v) => match v.get("content") {
                        Some(text) => write_json(out, text),
                        None => out.extend_from_slice(b"\"\""),
                    },
                    Delta::Text("content", text) => write_json(out, text),
                    Delta::Text(..) | Delta::ToolArguments(..) => out.extend_from_slice(b"\"\""),
                }
                out.extend_from_slice(b",\"index\":0");
            }
        }
        out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
        match finish {
            Some(f) => write_json(out, f),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b"}]}\n\n");
    }

    fn role(&mut self, out: &mut Vec<u8>) {
        if !self.role_sent && self.kind == Kind::Chat {
            self.role_sent = true;
            let delta = json!({"role": "assistant", "content": ""});
            self.chunk(out, Delta::Object(&delta), None);
        }
    }
}

impl StreamWriter for ChunkWriter {
    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        self.role(out);
        self.chunk(out, Delta::Text("content", text), None);
    }

    /// `reasoning_content`, the field LibreChat reads; the signature has no place in chat, so
    /// a signature alone writes nothing.
    fn reasoning(&mut self, out: &mut Vec<u8>, text: &str, _signature: Option<&str>) {
        if self.kind == Kind::Text || text.is_empty() {
            return;
        }
        self.role(out);
        self.chunk(out, Delta::Text("reasoning_content", text), None);
    }

    fn tool_start(&mut self, out: &mut Vec<u8>, index: usize, id: Option<&str>, name: &str) {
        if self.kind == Kind::Text {
            return;
        }
        self.had_tool_calls = true;
        self.role(out);
        let id = id.map_or_else(tool_call_id, str::to_string);
        let delta = json!({"tool_calls": [{"index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": ""}}]});
        self.chunk(out, Delta::Object(&delta), None);
    }

    fn tool_arguments(&mut self, out: &mut Vec<u8>, index: usize, piece: &str) {
        if self.kind == Kind::Text {
            return;
        }
        self.chunk(out, Delta::ToolArguments(index, piece), None);
    }

    /// The finish chunk, the usage chunk (when asked for) and `[DONE]`.
    fn finish(&mut self, out: &mut Vec<u8>, stated: Option<Finish>, usage: &Usage) {
        self.role(out);
        let reason = Finish::resolve(stated, self.had_tool_calls);
        self.chunk(out, Delta::Object(&json!({})), Some(reason.as_str()));
        if self.include_usage {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(self.head.as_bytes());
            out.extend_from_slice(b"\"choices\":[],\"usage\":");
            write_json(out, &usage_json(usage));
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    /// An in-stream error object, then the end of the stream (no `[DONE]`: it did not finish).
    fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        out.extend_from_slice(b"data: ");
        write_json(out, &err.to_json());
        out.extend_from_slice(b"\n\n");
    }
}

#[cfg(test)]
#[path = "chat_tests.rs"]
mod tests;
