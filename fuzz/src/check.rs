//! What Rosetta's OpenAI output must look like, whatever the upstream sent and whatever a mapping
//! emitted (README: "no mapping can produce an invalid OpenAI response"). Checked against
//! `src/dialect/chat.rs`, `src/openai.rs`, `src/error.rs` and docs/mapping-reference.md §5 and §6.5-6.9.
//!
//! Every check returns `Err(description)` instead of panicking, so that a target can print the
//! whole output next to the failure.

use serde_json::{Map, Value};

/// The finish reasons the engine may write (`answer::Finish`).
pub const FINISH_REASONS: &[&str] = &[
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "function_call",
];

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn keys(o: &Map<String, Value>) -> Vec<&str> {
    let mut k: Vec<&str> = o.keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn has_keys(v: &Value, want: &[&str], what: &str) -> Result<(), String> {
    let o = v
        .as_object()
        .ok_or_else(|| format!("{what} is not an object: {v}"))?;
    let mut want = want.to_vec();
    want.sort_unstable();
    ensure!(
        keys(o) == want,
        "{what} has keys {:?}, want {want:?}",
        keys(o)
    );
    Ok(())
}

fn string<'v>(v: &'v Value, what: &str) -> Result<&'v str, String> {
    v.as_str()
        .ok_or_else(|| format!("{what} is not a string: {v}"))
}

fn non_empty_string<'v>(v: &'v Value, what: &str) -> Result<&'v str, String> {
    let s = string(v, what)?;
    ensure!(!s.is_empty(), "{what} is an empty string");
    Ok(s)
}

fn string_or_null(v: &Value, what: &str) -> Result<(), String> {
    ensure!(
        v.is_string() || v.is_null(),
        "{what} is neither a string nor null: {v}"
    );
    Ok(())
}

fn count(v: &Value, what: &str) -> Result<u64, String> {
    v.as_u64()
        .ok_or_else(|| format!("{what} is not a non-negative integer: {v}"))
}

/// `PREFIX` followed by 24 ASCII letters and digits (`dialect::chat::completion_id` and friends).
fn generated_id(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|r| r.len() == 24 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// An OpenAI usage object: three counts, `total_tokens` their (saturating) sum, optional details.
pub fn usage(u: &Value) -> Result<(), String> {
    let o = u
        .as_object()
        .ok_or_else(|| format!("usage is not an object: {u}"))?;
    let p = count(&u["prompt_tokens"], "usage.prompt_tokens")?;
    let c = count(&u["completion_tokens"], "usage.completion_tokens")?;
    let t = count(&u["total_tokens"], "usage.total_tokens")?;
    // The sum, saturating at u64::MAX (an upstream may claim any count).
    ensure!(
        p.saturating_add(c) == t,
        "usage.total_tokens {t} is not {p} + {c}"
    );
    for k in o.keys() {
        match k.as_str() {
            "prompt_tokens" | "completion_tokens" | "total_tokens" => {}
            "prompt_tokens_details" => {
                has_keys(&u[k], &["cached_tokens"], "usage.prompt_tokens_details")?;
                count(&u[k]["cached_tokens"], "cached_tokens")?;
            }
            "completion_tokens_details" => {
                has_keys(
                    &u[k],
                    &["reasoning_tokens"],
                    "usage.completion_tokens_details",
                )?;
                count(&u[k]["reasoning_tokens"], "reasoning_tokens")?;
            }
            other => return Err(format!("usage has an unexpected key {other:?}")),
        }
    }
    Ok(())
}

/// `{"error":{"message","type","param","code"}}` with a non-empty message (`ProxyError::to_json`).
pub fn error_json(v: &Value) -> Result<(), String> {
    has_keys(v, &["error"], "error body")?;
    let e = &v["error"];
    has_keys(e, &["code", "message", "param", "type"], "error")?;
    non_empty_string(&e["message"], "error.message")?;
    string(&e["type"], "error.type")?;
    string_or_null(&e["param"], "error.param")?;
    string_or_null(&e["code"], "error.code")?;
    Ok(())
}

/// A whole `chat.completion` (`dialect::chat::completion`).
pub fn chat_completion(v: &Value, model: &str) -> Result<(), String> {
    has_keys(
        v,
        &["choices", "created", "id", "model", "object", "usage"],
        "chat.completion",
    )?;
    ensure!(
        v["object"] == "chat.completion",
        "object is {}",
        v["object"]
    );
    let id = string(&v["id"], "id")?;
    ensure!(generated_id(id, "chatcmpl-"), "bad id {id:?}");
    count(&v["created"], "created")?;
    ensure!(v["model"] == model, "model {} is not {model:?}", v["model"]);
    let choices = v["choices"].as_array().ok_or("choices is not an array")?;
    ensure!(choices.len() == 1, "{} choices", choices.len());
    let c = &choices[0];
    has_keys(
        c,
        &["finish_reason", "index", "logprobs", "message"],
        "choice",
    )?;
    ensure!(c["index"] == 0, "choice index {}", c["index"]);
    ensure!(c["logprobs"].is_null(), "logprobs {}", c["logprobs"]);
    let finish = string(&c["finish_reason"], "finish_reason")?;
    ensure!(
        FINISH_REASONS.contains(&finish),
        "unknown finish_reason {finish:?}"
    );
    let m = c["message"].as_object().ok_or("message is not an object")?;
    ensure!(m.get("role") == Some(&Value::from("assistant")), "role");
    match m.get("content") {
        Some(Value::Null) => {}
        Some(Value::String(s)) => ensure!(!s.is_empty(), "empty content string (not null)"),
        other => return Err(format!("content is {other:?}")),
    }
    ensure!(m.get("refusal") == Some(&Value::Null), "refusal");
    for k in m.keys() {
        match k.as_str() {
            "role" | "content" | "refusal" => {}
            "reasoning_content" => {
                non_empty_string(&m[k], "reasoning_content")?;
            }
            "tool_calls" => {
                let calls = m[k].as_array().ok_or("tool_calls is not an array")?;
                ensure!(!calls.is_empty(), "an empty tool_calls array");
                for call in calls {
                    has_keys(call, &["function", "id", "type"], "tool call")?;
                    string(&call["id"], "tool call id")?;
                    ensure!(call["type"] == "function", "tool call type");
                    has_keys(&call["function"], &["arguments", "name"], "function")?;
                    string(&call["function"]["name"], "function.name")?;
                    string(&call["function"]["arguments"], "function.arguments")?;
                }
                ensure!(finish != "stop", "tool calls with finish_reason stop");
            }
            other => return Err(format!("message has an unexpected key {other:?}")),
        }
    }
    usage(&v["usage"])
}

/// A whole legacy `text_completion` (`dialect::chat::text_completion`).
pub fn text_completion(v: &Value, model: &str) -> Result<(), String> {
    has_keys(
        v,
        &["choices", "created", "id", "model", "object", "usage"],
        "text_completion",
    )?;
    ensure!(
        v["object"] == "text_completion",
        "object is {}",
        v["object"]
    );
    let id = string(&v["id"], "id")?;
    ensure!(generated_id(id, "cmpl-"), "bad id {id:?}");
    count(&v["created"], "created")?;
    ensure!(v["model"] == model, "model {} is not {model:?}", v["model"]);
    let choices = v["choices"].as_array().ok_or("choices is not an array")?;
    ensure!(choices.len() == 1, "{} choices", choices.len());
    let c = &choices[0];
    has_keys(c, &["finish_reason", "index", "logprobs", "text"], "choice")?;
    string(&c["text"], "text")?;
    ensure!(c["index"] == 0, "choice index");
    ensure!(c["logprobs"].is_null(), "logprobs");
    let finish = string(&c["finish_reason"], "finish_reason")?;
    ensure!(
        FINISH_REASONS.contains(&finish),
        "unknown finish_reason {finish:?}"
    );
    usage(&v["usage"])
}

/// An embeddings list (`openai::embeddings`).
pub fn embeddings(v: &Value, model: &str, base64: bool) -> Result<(), String> {
    has_keys(v, &["data", "model", "object", "usage"], "embeddings")?;
    ensure!(v["object"] == "list", "object is {}", v["object"]);
    ensure!(v["model"] == model, "model");
    let data = v["data"].as_array().ok_or("data is not an array")?;
    for (i, d) in data.iter().enumerate() {
        has_keys(d, &["embedding", "index", "object"], "embedding")?;
        ensure!(d["object"] == "embedding", "object");
        ensure!(d["index"] == i, "index {} at {i}", d["index"]);
        if base64 {
            string(&d["embedding"], "base64 embedding")?;
        } else {
            let xs = d["embedding"].as_array().ok_or("embedding not an array")?;
            ensure!(
                xs.iter().all(Value::is_number),
                "a non-number in an embedding"
            );
        }
    }
    has_keys(&v["usage"], &["prompt_tokens", "total_tokens"], "usage")?;
    let p = count(&v["usage"]["prompt_tokens"], "prompt_tokens")?;
    ensure!(
        v["usage"]["total_tokens"] == p,
        "total_tokens != prompt_tokens"
    );
    Ok(())
}

/// A model listing (`translate_whole` for `Op::Models`): objects with a string `id`.
pub fn model_list(v: &Value) -> Result<(), String> {
    let items = v.as_array().ok_or("the model list is not an array")?;
    for m in items {
        string(&m["id"], "model id")?;
    }
    Ok(())
}

/// Which chunk stream: chat deltas or legacy completion pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Chat,
    Text,
}

/// How a checked stream ended, and its events normalized for comparison (ids and `created`
/// blanked, generated tool-call ids blanked).
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub done: bool,
    pub events: Vec<Value>,
}

/// Splits `data: X\n\n` events; `X` never holds a newline (compact JSON, `[DONE]`).
pub fn sse_events(out: &[u8]) -> Result<Vec<&str>, String> {
    let text = std::str::from_utf8(out).map_err(|e| format!("output is not UTF-8: {e}"))?;
    let body = text
        .strip_suffix("\n\n")
        .ok_or("the output does not end with a blank line")?;
    body.split("\n\n")
        .map(|e| {
            let data = e
                .strip_prefix("data: ")
                .ok_or_else(|| format!("an event that is not `data: `: {e:?}"))?;
            ensure!(!data.contains('\n'), "a multi-line event: {e:?}");
            Ok(data)
        })
        .collect()
}

/// A finished OpenAI chunk stream (`dialect::chat::ChunkWriter` after `StreamRewriter::end` or `fail`).
///
/// - every event is `data: <json>\n\n`, or `data: [DONE]\n\n` last;
/// - it ends with `[DONE]` or with one `{"error":...}` event, nothing after either;
/// - chunks share one generated id and `created`, `model` is the client's, `object` is
///   `chat.completion.chunk` (`text_completion` for legacy completions);
/// - a chat stream with any chunk starts with the role delta `{"role":"assistant","content":""}`,
///   and no other delta has a role;
/// - content, reasoning and argument deltas are non-empty; tool calls start at index 0, 1, 2...
///   and argument deltas name a started index;
/// - exactly one chunk carries a `finish_reason` iff the stream ends with `[DONE]`: the last
///   choice-bearing chunk, with an empty delta, a known reason, not `stop` after a tool call;
/// - then the `choices: []` usage chunk iff usage was asked for, then `[DONE]`.
pub fn chunk_stream(
    out: &[u8],
    kind: StreamKind,
    model: &str,
    include_usage: bool,
) -> Result<Stream, String> {
    let raw = sse_events(out)?;
    let n = raw.len();
    let done = raw[n - 1] == "[DONE]";
    let mut events = Vec::with_capacity(n);
    let (object, prefix) = match kind {
        StreamKind::Chat => ("chat.completion.chunk", "chatcmpl-"),
        StreamKind::Text => ("text_completion", "cmpl-"),
    };
    let mut head: Option<(Value, Value)> = None; // id, created
    let mut chunks = 0usize; // choice-bearing chunks seen
    let mut finish_at: Option<usize> = None;
    let mut usage_at: Option<usize> = None;
    let mut tools_started = 0u64;
    for (i, data) in raw.iter().enumerate() {
        let last = i == n - 1;
        if *data == "[DONE]" {
            ensure!(last, "[DONE] at event {i} of {n}");
            events.push(Value::from("[DONE]"));
            continue;
        }
        let mut v: Value =
            serde_json::from_str(data).map_err(|e| format!("event {i} is not JSON: {e}"))?;
        if v.get("error").is_some() {
            ensure!(last, "an error event at {i} of {n}");
            error_json(&v)?;
            events.push(v);
            continue;
        }
        ensure!(
            v["object"] == object,
            "event {i}: object is {}",
            v["object"]
        );
        ensure!(v["model"] == model, "event {i}: model {}", v["model"]);
        let id = string(&v["id"], "id")?;
        ensure!(generated_id(id, prefix), "event {i}: bad id {id:?}");
        count(&v["created"], "created")?;
        match &head {
            None => head = Some((v["id"].clone(), v["created"].clone())),
            Some((id, created)) => ensure!(
                v["id"] == *id && v["created"] == *created,
                "event {i}: id or created changed"
            ),
        }
        let choices = v["choices"]
            .as_array()
            .ok_or_else(|| format!("event {i}: choices is not an array"))?;
        if choices.is_empty() {
            // The usage chunk: after the finish chunk, right before [DONE].
            has_keys(
                &v,
                &["choices", "created", "id", "model", "object", "usage"],
                "usage chunk",
            )?;
            usage(&v["usage"])?;
            ensure!(include_usage, "a usage chunk nobody asked for");
            ensure!(
                finish_at.is_some() && usage_at.is_none(),
                "usage chunk at {i} not right after the finish chunk"
            );
            usage_at = Some(i);
            blank_head(&mut v);
            events.push(v);
            continue;
        }
        has_keys(
            &v,
            &["choices", "created", "id", "model", "object"],
            "chunk",
        )?;
        ensure!(choices.len() == 1, "event {i}: {} choices", choices.len());
        ensure!(
            finish_at.is_none(),
            "event {i}: a chunk after the finish chunk"
        );
        let c = &choices[0];
        ensure!(c["index"] == 0, "event {i}: choice index");
        ensure!(c["logprobs"].is_null(), "event {i}: logprobs");
        let finish = match &c["finish_reason"] {
            Value::Null => None,
            Value::String(f) => {
                ensure!(
                    FINISH_REASONS.contains(&f.as_str()),
                    "event {i}: unknown finish_reason {f:?}"
                );
                Some(f.as_str())
            }
            other => return Err(format!("event {i}: finish_reason {other}")),
        };
        match kind {
            StreamKind::Chat => {
                has_keys(
                    c,
                    &["delta", "finish_reason", "index", "logprobs"],
                    "choice",
                )?;
                let d = &c["delta"];
                let dk = keys(
                    d.as_object()
                        .ok_or_else(|| format!("event {i}: delta is not an object"))?,
                );
                if chunks == 0 {
                    ensure!(
                        *d == serde_json::json!({"role": "assistant", "content": ""}),
                        "event {i}: the first chunk is not the role delta: {d}"
                    );
                    ensure!(finish.is_none(), "event {i}: finish on the role chunk");
                } else if let Some(f) = finish {
                    ensure!(dk.is_empty(), "event {i}: finish chunk delta {d}");
                    ensure!(
                        tools_started == 0 || f != "stop",
                        "event {i}: finish_reason stop after a tool call"
                    );
                } else {
                    match dk.as_slice() {
                        ["content"] => {
                            non_empty_string(&d["content"], "content")?;
                        }
                        ["reasoning_content"] => {
                            non_empty_string(&d["reasoning_content"], "reasoning_content")?;
                        }
                        ["tool_calls"] => {
                            let calls = d["tool_calls"]
                                .as_array()
                                .ok_or("tool_calls not an array")?;
                            ensure!(calls.len() == 1, "event {i}: {} tool calls", calls.len());
                            let t = &calls[0];
                            let index = count(&t["index"], "tool call index")?;
                            if t.get("id").is_some() {
                                has_keys(t, &["function", "id", "index", "type"], "tool start")?;
                                ensure!(
                                    index == tools_started,
                                    "event {i}: tool call {index} starts, {tools_started} expected"
                                );
                                tools_started += 1;
                                string(&t["id"], "tool call id")?;
                                ensure!(t["type"] == "function", "tool call type");
                                has_keys(&t["function"], &["arguments", "name"], "function")?;
                                string(&t["function"]["name"], "function.name")?;
                                ensure!(
                                    t["function"]["arguments"] == "",
                                    "a start delta with arguments"
                                );
                            } else {
                                has_keys(t, &["function", "index"], "tool arguments")?;
                                ensure!(
                                    index < tools_started,
                                    "event {i}: arguments for tool call {index} never started"
                                );
                                has_keys(&t["function"], &["arguments"], "function")?;
                                non_empty_string(&t["function"]["arguments"], "arguments")?;
                            }
                        }
                        other => return Err(format!("event {i}: a delta with keys {other:?}")),
                    }
                }
            }
            StreamKind::Text => {
                has_keys(c, &["finish_reason", "index", "logprobs", "text"], "choice")?;
                let text = string(&c["text"], "text")?;
                match finish {
                    Some(_) => ensure!(text.is_empty(), "event {i}: text on the finish chunk"),
                    None => ensure!(!text.is_empty(), "event {i}: an empty text piece"),
                }
            }
        }
        if finish.is_some() {
            finish_at = Some(i);
        }
        chunks += 1;
        blank_head(&mut v);
        events.push(v);
    }
    if done {
        ensure!(finish_at.is_some(), "[DONE] without a finish chunk");
        ensure!(
            include_usage == usage_at.is_some(),
            "include_usage is {include_usage} but the usage chunk is {}",
            if usage_at.is_some() {
                "there"
            } else {
                "missing"
            }
        );
    } else {
        ensure!(finish_at.is_none(), "a finish chunk, then an error");
    }
    Ok(Stream { done, events })
}

/// Blanks what differs between two runs of the same stream: the id, `created`, and tool-call
/// ids the engine generated.
fn blank_head(v: &mut Value) {
    v["id"] = Value::Null;
    v["created"] = Value::Null;
    if let Some(calls) = v
        .pointer_mut("/choices/0/delta/tool_calls")
        .and_then(Value::as_array_mut)
    {
        for c in calls {
            if c["id"].as_str().is_some_and(|s| generated_id(s, "call_")) {
                c["id"] = Value::Null;
            }
        }
    }
}

/// A passthrough stream: the upstream's bytes unchanged, then nothing if they end with
/// `data: [DONE]` (whitespace aside) and the stream was not failed, else a blank line if the
/// bytes stopped mid-event, then one error event (docs/mapping-reference.md §6.9).
pub fn passthrough(out: &[u8], upstream: &[u8], failed: bool) -> Result<(), String> {
    ensure!(
        out.starts_with(upstream),
        "the upstream bytes were not forwarded unchanged"
    );
    let rest = &out[upstream.len()..];
    let trimmed = upstream.trim_ascii_end();
    if !failed && trimmed.ends_with(b"data: [DONE]") {
        ensure!(
            rest.is_empty(),
            "bytes after a complete passthrough stream: {:?}",
            String::from_utf8_lossy(rest)
        );
        return Ok(());
    }
    let rest = if !upstream.is_empty() && !upstream.ends_with(b"\n\n") {
        rest.strip_prefix(b"\n\n")
            .ok_or("no blank line after bytes that stopped mid-event")?
    } else {
        rest
    };
    let events = sse_events(rest)?;
    ensure!(
        events.len() == 1,
        "{} events after the upstream's",
        events.len()
    );
    let v: Value = serde_json::from_str(events[0]).map_err(|e| format!("not JSON: {e}"))?;
    error_json(&v)
}
