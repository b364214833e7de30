//! The OpenAI side, written once: `chat.completion` objects and `chat.completion.chunk` streams.
//!
//! Mappings produce *normalized* values (content, reasoning, tool calls, finish reason, usage);
//! this module turns them into OpenAI JSON and owns every invariant: one id and one `created` per
//! response, the role-first delta, tool-call indexes, arguments as JSON strings, exactly one
//! `finish_reason` on the last choice-bearing chunk, the `choices: []` usage chunk, `[DONE]`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::error::ProxyError;
use crate::template::to_text;

/// The finish reasons OpenAI clients accept.
const FINISH_REASONS: &[&str] = &[
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
];

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
    let mut rng = fastrand::Rng::new();
    (0..n).map(|_| rng.alphanumeric()).collect()
}

/// Unix time in seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Token counts, merged field by field as they arrive.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Usage {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Reads a normalized usage object; floats are rounded, since OpenAI wants integers.
    pub fn from_value(v: &Value) -> Usage {
        let n = |k: &str| {
            v.get(k).and_then(|x| match x {
                Value::Number(n) => n
                    .as_u64()
                    .or_else(|| n.as_f64().map(|f| f.max(0.0).round() as u64)),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .map(|f| f.max(0.0).round() as u64),
                _ => None,
            })
        };
        Usage {
            prompt_tokens: n("prompt_tokens"),
            completion_tokens: n("completion_tokens"),
            cached_tokens: n("cached_tokens"),
            reasoning_tokens: n("reasoning_tokens"),
        }
    }

    /// Later values win, field by field (upstreams send cumulative counts).
    pub fn merge(&mut self, other: Usage) {
        self.prompt_tokens = other.prompt_tokens.or(self.prompt_tokens);
        self.completion_tokens = other.completion_tokens.or(self.completion_tokens);
        self.cached_tokens = other.cached_tokens.or(self.cached_tokens);
        self.reasoning_tokens = other.reasoning_tokens.or(self.reasoning_tokens);
    }

    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }

    /// The OpenAI usage object; `total_tokens` is always the sum.
    pub fn to_json(&self) -> Value {
        let p = self.prompt_tokens.unwrap_or(0);
        let c = self.completion_tokens.unwrap_or(0);
        let mut u = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p.saturating_add(c)});
        if let Some(cached) = self.cached_tokens {
            u["prompt_tokens_details"] = json!({"cached_tokens": cached});
        }
        if let Some(r) = self.reasoning_tokens {
            u["completion_tokens_details"] = json!({"reasoning_tokens": r});
        }
        u
    }
}

/// A finish reason as OpenAI knows it; tool calls force `tool_calls` over `stop`.
pub fn normalize_finish(raw: Option<&Value>, had_tool_calls: bool) -> &'static str {
    let reason = raw
        .and_then(Value::as_str)
        .and_then(|r| FINISH_REASONS.iter().find(|f| **f == r).copied())
        .unwrap_or("stop");
    if had_tool_calls && reason == "stop" {
        "tool_calls"
    } else {
        reason
    }
}

/// A normalized tool call: from one object of a mapping's `tool_calls` output.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ToolCallPart {
    pub key: Option<String>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
}

impl ToolCallPart {
    /// Reads `{key?, id?, name?, arguments?}`; object arguments become JSON strings.
    pub fn from_value(v: &Value) -> ToolCallPart {
        let s = |k: &str| v.get(k).filter(|x| !x.is_null()).map(to_text);
        ToolCallPart {
            key: s("key"),
            id: s("id"),
            name: s("name"),
            arguments: v
                .get("arguments")
                .filter(|x| !x.is_null())
                .map(|a| match a {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                }),
        }
    }

    /// Parts from a single object or an array of them.
    pub fn list(v: &Value) -> Vec<ToolCallPart> {
        match v {
            Value::Array(items) => items
                .iter()
                .filter(|i| i.is_object())
                .map(Self::from_value)
                .collect(),
            Value::Object(_) => vec![Self::from_value(v)],
            _ => Vec::new(),
        }
    }
}

/// Normalized content: a string, or an array of strings joined.
pub fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::Array(items) => {
            let s: String = items.iter().filter(|i| !i.is_null()).map(to_text).collect();
            (!s.is_empty()).then_some(s)
        }
        other => Some(to_text(other)).filter(|s| !s.is_empty()),
    }
}

/// Builds the `chat.completion` object from a mapping's normalized response.
pub fn completion(model: &str, normalized: &Map<String, Value>) -> (Value, Usage) {
    let content = text_of(normalized.get("content"));
    let reasoning = text_of(normalized.get("reasoning"));
    let calls: Vec<Value> = normalized
        .get("tool_calls")
        .map(ToolCallPart::list)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.name.is_some())
        .map(|c| {
            json!({
                "id": c.id.unwrap_or_else(tool_call_id),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments.unwrap_or_else(|| "{}".into())},
            })
        })
        .collect();
    let finish = normalize_finish(normalized.get("finish_reason"), !calls.is_empty());
    let usage = normalized
        .get("usage")
        .map(Usage::from_value)
        .unwrap_or_default();
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if let Some(r) = reasoning {
        message["reasoning_content"] = Value::String(r);
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let body = json!({
        "id": completion_id(),
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage.to_json(),
    });
    (body, usage)
}

/// Which OpenAI stream a writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `chat.completion.chunk` deltas.
    Chat,
    /// Legacy `text_completion` pieces.
    Text,
}

/// Builds the legacy `text_completion` object from a normalized response.
pub fn text_completion(model: &str, normalized: &Map<String, Value>) -> (Value, Usage) {
    let text = text_of(normalized.get("content")).unwrap_or_default();
    let finish = normalize_finish(normalized.get("finish_reason"), false);
    let usage = normalized
        .get("usage")
        .map(Usage::from_value)
        .unwrap_or_default();
    let body = json!({
        "id": text_completion_id(),
        "object": "text_completion",
        "created": now_secs(),
        "model": model,
        "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": finish}],
        "usage": usage.to_json(),
    });
    (body, usage)
}

/// Builds the embeddings list from a normalized `{embeddings: [[f32...]...], usage}`. With
/// `base64`, each vector is packed little-endian float32 and base64-encoded, as OpenAI does.
pub fn embeddings(
    model: &str,
    normalized: &Map<String, Value>,
    base64: bool,
) -> Result<(Value, Usage), ProxyError> {
    use base64::Engine as _;
    let bad = |m: &str| ProxyError::BadUpstreamResponse {
        message: m.to_string(),
    };
    let Some(Value::Array(vectors)) = normalized.get("embeddings") else {
        return Err(bad("the upstream answer has no list of embeddings"));
    };
    let mut data = Vec::with_capacity(vectors.len());
    for (index, v) in vectors.iter().enumerate() {
        let Some(items) = v.as_array() else {
            return Err(bad("an upstream embedding is not an array of numbers"));
        };
        let floats: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
        let floats = floats
            .ok_or_else(|| bad("an upstream embedding holds a value that is not a number"))?;
        let embedding = if base64 {
            let bytes: Vec<u8> = floats
                .iter()
                .flat_map(|f| (*f as f32).to_le_bytes())
                .collect();
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        } else {
            json!(floats)
        };
        data.push(json!({"object": "embedding", "index": index, "embedding": embedding}));
    }
    let usage = normalized
        .get("usage")
        .map(Usage::from_value)
        .unwrap_or_default();
    let prompt = usage.prompt_tokens.unwrap_or(0);
    let body = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    });
    Ok((body, usage))
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

/// Writes one OpenAI chunk stream. Every chunk goes through here, so the invariants hold no
/// matter what a mapping emits, in whatever order.
#[derive(Debug)]
pub struct ChunkWriter {
    kind: Kind,
    /// `{"id":..,"object":"chat.completion.chunk","created":..,"model":..,` rendered once.
    head: String,
    include_usage: bool,
    role_sent: bool,
    /// Upstream tool-call key -> OpenAI index.
    tool_keys: HashMap<String, usize>,
    tool_count: usize,
    last_tool: Option<usize>,
    finish: Option<Value>,
    ended: bool,
    pub usage: Usage,
    /// Set once the stream is closed (finished or failed); later input is ignored.
    pub closed: bool,
    pub failed: bool,
    pub emitted_content: bool,
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

    /// A content delta; empty text is not sent.
    pub fn content(&mut self, out: &mut Vec<u8>, text: &str) {
        if self.closed || text.is_empty() {
            return;
        }
        self.role(out);
        self.emitted_content = true;
        self.chunk(out, Delta::Text("content", text), None);
    }

    /// A reasoning delta (`reasoning_content`, the field LibreChat reads).
    pub fn reasoning(&mut self, out: &mut Vec<u8>, text: &str) {
        if self.closed || text.is_empty() || self.kind == Kind::Text {
            return;
        }
        self.role(out);
        self.emitted_content = true;
        self.chunk(out, Delta::Text("reasoning_content", text), None);
    }

    /// A tool-call start and/or argument piece. A part with a name whose key is new starts a
    /// call; any other part continues the call with that key, or the latest call.
    pub fn tool_call(&mut self, out: &mut Vec<u8>, part: ToolCallPart) {
        if self.closed || self.kind == Kind::Text {
            return;
        }
        let known = part
            .key
            .as_ref()
            .and_then(|k| self.tool_keys.get(k).copied());
        let starts = known.is_none() && part.name.is_some();
        let index = if starts {
            let i = self.tool_count;
            self.tool_count += 1;
            if let Some(k) = &part.key {
                self.tool_keys.insert(k.clone(), i);
            }
            self.role(out);
            self.emitted_content = true;
            let id = part.id.clone().unwrap_or_else(tool_call_id);
            let delta = json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                "function": {"name": part.name.clone().unwrap_or_default(), "arguments": ""}}]});
            self.chunk(out, Delta::Object(&delta), None);
            i
        } else {
            match known.or(self.last_tool) {
                Some(i) => i,
                None => return, // arguments for a call that never started: nothing to attach to
            }
        };
        self.last_tool = Some(index);
        if let Some(args) = part.arguments.filter(|a| !a.is_empty()) {
            self.chunk(out, Delta::ToolArguments(index, &args), None);
        }
    }

    pub fn set_finish(&mut self, reason: Value) {
        self.finish = Some(reason);
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

    /// The finish chunk, the usage chunk (when asked for) and `[DONE]`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        self.role(out);
        let reason = normalize_finish(self.finish.as_ref(), self.tool_count > 0);
        self.chunk(out, Delta::Object(&json!({})), Some(reason));
        if self.include_usage {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(self.head.as_bytes());
            out.extend_from_slice(b"\"choices\":[],\"usage\":");
            write_json(out, &self.usage.to_json());
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.closed = true;
    }

    /// An in-stream error object, then the end of the stream (no `[DONE]`: it did not finish).
    pub fn fail(&mut self, out: &mut Vec<u8>, err: &ProxyError) {
        if self.closed {
            return;
        }
        out.extend_from_slice(b"data: ");
        write_json(out, &err.to_json());
        out.extend_from_slice(b"\n\n");
        self.closed = true;
        self.failed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_usage_counts_saturate_instead_of_overflowing() {
        let u = Usage {
            prompt_tokens: Some(u64::MAX),
            completion_tokens: Some(5),
            ..Usage::default()
        };
        assert_eq!(u.to_json()["total_tokens"], u64::MAX);
    }

    fn chunks(out: &[u8]) -> Vec<Value> {
        String::from_utf8_lossy(out)
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn text_stream_invariants() {
        let mut w = ChunkWriter::new(Kind::Chat, "m", true);
        let mut out = Vec::new();
        w.content(&mut out, "Hel");
        w.content(&mut out, "");
        w.content(&mut out, "lo");
        w.add_usage(Usage {
            prompt_tokens: Some(3),
            ..Default::default()
        });
        w.add_usage(Usage {
            completion_tokens: Some(2),
            ..Default::default()
        });
        w.set_finish(json!("stop"));
        w.finish(&mut out);
        w.content(&mut out, "late");
        let c = chunks(&out);
        assert_eq!(c.len(), 5);
        assert_eq!(
            c[0]["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert_eq!(c[1]["choices"][0]["delta"], json!({"content": "Hel"}));
        assert_eq!(c[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(c[3]["choices"][0]["delta"], json!({}));
        assert_eq!(c[4]["choices"], json!([]));
        assert_eq!(c[4]["usage"]["total_tokens"], 5);
        assert!(
            c.iter()
                .all(|x| x["id"] == c[0]["id"] && x["created"] == c[0]["created"])
        );
        assert!(String::from_utf8_lossy(&out).ends_with("data: [DONE]\n\n"));
    }

    #[test]
    fn tool_call_indexes_follow_keys_not_upstream_indexes() {
        let mut w = ChunkWriter::new(Kind::Chat, "m", false);
        let mut out = Vec::new();
        let part = |v: Value| ToolCallPart::from_value(&v);
        w.content(&mut out, "Checking.");
        w.tool_call(
            &mut out,
            part(json!({"key": 1, "id": "toolu_a", "name": "get_weather"})),
        );
        w.tool_call(&mut out, part(json!({"key": 1, "arguments": "{\"ci"})));
        w.tool_call(
            &mut out,
            part(
                json!({"key": 3, "id": "toolu_b", "name": "get_time", "arguments": {"tz": "UTC"}}),
            ),
        );
        w.tool_call(&mut out, part(json!({"key": 1, "arguments": "ty\":1}"})));
        w.set_finish(json!("stop"));
        w.finish(&mut out);
        let c = chunks(&out);
        let tc: Vec<&Value> = c
            .iter()
            .filter_map(|x| x["choices"][0]["delta"].get("tool_calls"))
            .collect();
        assert_eq!(
            tc[0][0],
            json!({"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}})
        );
        assert_eq!(
            tc[1][0],
            json!({"index": 0, "function": {"arguments": "{\"ci"}})
        );
        assert_eq!(tc[2][0]["index"], 1);
        assert_eq!(
            tc[3][0],
            json!({"index": 1, "function": {"arguments": "{\"tz\":\"UTC\"}"}})
        );
        assert_eq!(tc[4][0]["index"], 0);
        assert_eq!(
            c.last().unwrap()["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert!(c.iter().all(|x| x.get("usage").is_none()));
    }

    #[test]
    fn deltas_written_directly_are_what_json_would_write() {
        let w = ChunkWriter::new(Kind::Chat, "m", false);
        let bytes = |d: Delta<'_>| {
            let mut out = Vec::new();
            w.chunk(&mut out, d, None);
            out
        };
        for text in ["", "a \"quoted\" line\n", "\u{1}é\u{2028}"] {
            assert_eq!(
                bytes(Delta::Text("content", text)),
                bytes(Delta::Object(&json!({"content": text})))
            );
            assert_eq!(
                bytes(Delta::ToolArguments(7, text)),
                bytes(Delta::Object(
                    &json!({"tool_calls": [{"index": 7, "function": {"arguments": text}}]})
                ))
            );
        }
    }

    #[test]
    fn failure_is_an_error_object_without_done() {
        let mut w = ChunkWriter::new(Kind::Chat, "m", true);
        let mut out = Vec::new();
        w.content(&mut out, "partial");
        w.fail(
            &mut out,
            &ProxyError::UpstreamStreamError {
                message: "Overloaded".into(),
                kind: Some("overloaded_error".into()),
                code: None,
            },
        );
        w.finish(&mut out);
        let text = String::from_utf8_lossy(&out);
        assert!(!text.contains("[DONE]"));
        assert!(!text.contains("finish_reason\":\"stop"));
        assert_eq!(
            chunks(&out).last().unwrap()["error"]["type"],
            "overloaded_error"
        );
    }

    #[test]
    fn legacy_text_stream() {
        let mut w = ChunkWriter::new(Kind::Text, "m", false);
        let mut out = Vec::new();
        w.content(&mut out, "Ray");
        w.reasoning(&mut out, "hidden");
        w.set_finish(json!("length"));
        w.finish(&mut out);
        let c = chunks(&out);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0]["object"], "text_completion");
        assert!(c[0]["id"].as_str().unwrap().starts_with("cmpl-"));
        assert_eq!(
            c[0]["choices"][0],
            json!({"text": "Ray", "index": 0, "logprobs": null, "finish_reason": null})
        );
        assert_eq!(c[1]["choices"][0]["finish_reason"], "length");
        assert_eq!(c[1]["choices"][0]["text"], "");
    }

    #[test]
    fn embeddings_floats_and_base64() {
        let n = json!({"embeddings": [[0.5, -1.0], [2]], "usage": {"prompt_tokens": 4}});
        let (e, _) = embeddings("m", n.as_object().unwrap(), false).unwrap();
        assert_eq!(
            e["data"][1],
            json!({"object": "embedding", "index": 1, "embedding": [2.0]})
        );
        assert_eq!(e["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
        let (e, _) = embeddings("m", n.as_object().unwrap(), true).unwrap();
        // 0.5f32 = 00 00 00 3f, -1.0f32 = 00 00 80 bf (little-endian)
        assert_eq!(e["data"][0]["embedding"], "AAAAPwAAgL8=");
        assert!(
            embeddings(
                "m",
                json!({"embeddings": [["x"]]}).as_object().unwrap(),
                false
            )
            .is_err()
        );
    }

    #[test]
    fn completion_object() {
        let n = json!({"content": ["a", "b"], "tool_calls": [{"name": "f", "arguments": {"x": 1}}], "finish_reason": "stop",
            "usage": {"prompt_tokens": 3.0, "completion_tokens": 4, "cached_tokens": 1}});
        let (c, u) = completion("m", n.as_object().unwrap());
        assert_eq!(c["object"], "chat.completion");
        assert_eq!(c["choices"][0]["message"]["content"], "ab");
        assert_eq!(
            c["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"x\":1}"
        );
        assert!(
            c["choices"][0]["message"]["tool_calls"][0]["id"]
                .as_str()
                .unwrap()
                .starts_with("call_")
        );
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            c["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 1}})
        );
        assert_eq!(u.prompt_tokens, Some(3));
        let (c, _) = completion("m", json!({"finish_reason": "weird"}).as_object().unwrap());
        assert_eq!(c["choices"][0]["finish_reason"], "stop");
        assert_eq!(c["choices"][0]["message"]["content"], Value::Null);
    }
}

/// The chat dialect's bytes for scripted event sequences, captured from `ChunkWriter` before the
/// dialect-writer refactor: the writer that replaces it must produce exactly these.
#[cfg(test)]
mod captured_bytes {
    use super::*;

    /// The stream with its one random id and clock time replaced by `HEAD`.
    fn masked(out: &[u8]) -> String {
        let s = String::from_utf8(out.to_vec()).unwrap();
        let start = s.find("{\"id\":").unwrap();
        let end = s[start..].find("\"model\":").unwrap() + start;
        let head = s[start..end].to_string();
        s.replace(&head, "HEAD")
    }

    fn part(v: Value) -> ToolCallPart {
        ToolCallPart::from_value(&v)
    }

    fn err() -> ProxyError {
        ProxyError::UpstreamStreamError {
            message: "Overloaded".into(),
            kind: Some("overloaded_error".into()),
            code: None,
        }
    }

    pub fn chat_script(w: &mut ChunkWriter, out: &mut Vec<u8>) {
        w.reasoning(out, "think \"hard\"");
        w.content(out, "");
        w.content(out, "Hi\né");
        w.tool_call(out, part(json!({"key": 0, "arguments": "orphan"})));
        w.tool_call(
            out,
            part(json!({"key": 1, "id": "toolu_a", "name": "get_weather"})),
        );
        w.tool_call(out, part(json!({"key": 1, "arguments": "{\"ci"})));
        w.tool_call(
            out,
            part(json!({"key": 3, "id": "toolu_b", "name": "f", "arguments": {"tz": "UTC"}})),
        );
        w.tool_call(out, part(json!({"arguments": "ty\":1}"})));
        w.tool_call(out, part(json!({"key": 1, "arguments": ""})));
        w.add_usage(Usage {
            prompt_tokens: Some(3),
            cached_tokens: Some(1),
            ..Default::default()
        });
        w.set_finish(json!("stop"));
        w.add_usage(Usage {
            completion_tokens: Some(2),
            reasoning_tokens: Some(1),
            ..Default::default()
        });
        w.finish(out);
        w.content(out, "late");
        w.fail(out, &err());
    }

    /// Splits a stream into its events, checking the masked head's shape.
    fn frames(out: &[u8], id_prefix: &str, object: &str) -> Vec<String> {
        let s = String::from_utf8(out.to_vec()).unwrap();
        let start = s.find("{\"id\":").unwrap();
        let head = &s[start..s[start..].find("\"model\":").unwrap() + start];
        let rest = head
            .strip_prefix(&format!("{{\"id\":\"{id_prefix}"))
            .unwrap();
        let (id, rest) = rest.split_at(24);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{head}");
        let rest = rest
            .strip_prefix(&format!("\",\"object\":\"{object}\",\"created\":"))
            .unwrap();
        let secs = rest.strip_suffix(',').unwrap();
        assert!(secs.parse::<u64>().is_ok(), "{head}");
        assert!(s.ends_with("\n\n"));
        masked(out)
            .split("\n\n")
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn chat_stream_bytes() {
        let mut w = ChunkWriter::new(Kind::Chat, "m\"1", true);
        let mut out = Vec::new();
        chat_script(&mut w, &mut out);
        let expected = [
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"content":"","role":"assistant"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"reasoning_content":"think \"hard\""},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"content":"Hi\né"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"","name":"get_weather"},"id":"toolu_a","index":0,"type":"function"}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{\"ci"},"index":0}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"","name":"f"},"id":"toolu_b","index":1,"type":"function"}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"{\"tz\":\"UTC\"}"},"index":1}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":"ty\":1}"},"index":1}]},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
            r#"data: HEAD"model":"m\"1","choices":[],"usage":{"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1},"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"total_tokens":5}}"#,
            r#"data: [DONE]"#,
        ];
        assert_eq!(frames(&out, "chatcmpl-", "chat.completion.chunk"), expected);
    }

    #[test]
    fn text_stream_bytes() {
        let mut w = ChunkWriter::new(Kind::Text, "m", true);
        let mut out = Vec::new();
        chat_script(&mut w, &mut out);
        let expected = [
            r#"data: HEAD"model":"m","choices":[{"text":"Hi\né","index":0,"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m","choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]}"#,
            r#"data: HEAD"model":"m","choices":[],"usage":{"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1},"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":1},"total_tokens":5}}"#,
            r#"data: [DONE]"#,
        ];
        assert_eq!(frames(&out, "cmpl-", "text_completion"), expected);
    }

    #[test]
    fn failed_and_empty_stream_bytes() {
        let mut w = ChunkWriter::new(Kind::Chat, "m", false);
        let mut out = Vec::new();
        w.content(&mut out, "partial");
        w.fail(&mut out, &err());
        w.finish(&mut out);
        let expected = [
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{"content":"","role":"assistant"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{"content":"partial"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: {"error":{"code":null,"message":"Overloaded","param":null,"type":"overloaded_error"}}"#,
        ];
        assert_eq!(frames(&out, "chatcmpl-", "chat.completion.chunk"), expected);
        let mut w = ChunkWriter::new(Kind::Chat, "m", false);
        let mut out = Vec::new();
        w.set_finish(json!("weird"));
        w.finish(&mut out);
        let expected = [
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{"content":"","role":"assistant"},"logprobs":null,"finish_reason":null}]}"#,
            r#"data: HEAD"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#,
            r#"data: [DONE]"#,
        ];
        assert_eq!(frames(&out, "chatcmpl-", "chat.completion.chunk"), expected);
    }

    /// A whole answer's JSON text, without its random id and clock time (checked for shape).
    fn whole(mut body: Value, id_prefix: &str) -> String {
        let obj = body.as_object_mut().unwrap();
        let id = obj.remove("id").unwrap();
        assert!(id.as_str().unwrap().starts_with(id_prefix));
        assert!(obj.remove("created").unwrap().is_u64());
        body.to_string()
    }

    #[test]
    fn whole_answer_bytes() {
        let n = json!({"content": ["Hi", null, "!"], "reasoning": "mm",
            "tool_calls": [{"id": "t1", "name": "f", "arguments": {"x": 1}}, {"name": "g", "arguments": ""},
                {"arguments": "no name"}],
            "finish_reason": "length", "usage": {"prompt_tokens": 3.4, "completion_tokens": "4", "reasoning_tokens": 2}});
        let n = n.as_object().unwrap();
        let (body, usage) = completion("m", n);
        let mut body = body;
        let generated = body["choices"][0]["message"]["tool_calls"][1]["id"].take();
        assert!(generated.as_str().unwrap().starts_with("call_"));
        assert_eq!(
            whole(body, "chatcmpl-"),
            r#"{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"message":{"content":"Hi!","reasoning_content":"mm","refusal":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"x\":1}","name":"f"},"id":"t1","type":"function"},{"function":{"arguments":"","name":"g"},"id":null,"type":"function"}]}}],"model":"m","object":"chat.completion","usage":{"completion_tokens":4,"completion_tokens_details":{"reasoning_tokens":2},"prompt_tokens":3,"total_tokens":7}}"#
        );
        assert_eq!(usage.prompt_tokens, Some(3));
        let (body, _) = text_completion("m", n);
        assert_eq!(
            whole(body, "cmpl-"),
            r#"{"choices":[{"finish_reason":"length","index":0,"logprobs":null,"text":"Hi!"}],"model":"m","object":"text_completion","usage":{"completion_tokens":4,"completion_tokens_details":{"reasoning_tokens":2},"prompt_tokens":3,"total_tokens":7}}"#
        );
        let (body, _) = completion("m", &Map::new());
        assert_eq!(
            whole(body, "chatcmpl-"),
            r#"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":null,"refusal":null,"role":"assistant"}}],"model":"m","object":"chat.completion","usage":{"completion_tokens":0,"prompt_tokens":0,"total_tokens":0}}"#
        );
    }
}
