//! The deterministic chat answer of the OpenAI-style fakes (plain and Azure): `chat.completion` and its chunk stream.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::azure::{filter_results, prompt_filter_results};
use crate::common::{ALNUM, Ids, Triggers, args_from_schema, char_pieces, word_pieces, words};
use crate::openai_compat::finish_stream;
use crate::openai_compat_messages::{role_of, text_of};
use crate::openai_compat_validate::present;
use crate::reply::{Reply, SseEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    OpenAi,
    Azure,
}

struct Call {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Role,
    Text,
    Args,
    Finish,
}

/// The deterministic answer to one valid chat request.
pub(crate) struct Chat {
    id: String,
    created: u64,
    model: String,
    fingerprint: String,
    flavor: Flavor,
    pieces: Vec<String>,
    /// Tool calls of each choice (`n` entries; all empty for a text answer).
    calls: Vec<Vec<Call>>,
    finish: &'static str,
    prompt_tokens: usize,
    completion_tokens: usize,
    include_usage: bool,
    top_logprobs: Option<usize>,
    pub(crate) triggers: Triggers,
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Chat {
    pub(crate) fn new(body: &Map<String, Value>, model: &str, flavor: Flavor, ids: &Ids) -> Chat {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let last = messages
            .iter()
            .rev()
            .find(|m| ["user", "tool"].contains(&role_of(m)));
        let triggers = Triggers(text_of(last.and_then(|m| m.get("content"))));
        let trailing = messages
            .iter()
            .rev()
            .take_while(|m| role_of(m) == "tool")
            .count();
        let first_result = (trailing > 0).then(|| &messages[messages.len() - trailing]);
        let n = present(body, "n")
            .and_then(Value::as_u64)
            .unwrap_or(1)
            .max(1) as usize;
        let chosen = if first_result.is_none() {
            tool_choice(body, &triggers)
        } else {
            Vec::new()
        };
        let calls: Vec<Vec<Call>> = (0..n)
            .map(|_| {
                chosen
                    .iter()
                    .map(|(name, args)| Call {
                        id: format!("call_{}", ids.next(ALNUM, 24)),
                        name: name.clone(),
                        arguments: args.to_string(),
                    })
                    .collect()
            })
            .collect();
        let answer = match first_result {
            Some(m) => format!("Tool said: {}", text_of(m.get("content"))),
            None => format!("Hello! You said: {}", triggers.0),
        };
        let mut pieces = if chosen.is_empty() {
            word_pieces(&answer, 1000)
        } else {
            Vec::new()
        };
        let mut finish = if !chosen.is_empty() {
            "tool_calls"
        } else if triggers.has("FILTERED") {
            pieces.truncate(2);
            "content_filter"
        } else if triggers.has("MAX TOKENS") {
            "length"
        } else {
            "stop"
        };
        let limit = present(body, "max_completion_tokens").or(present(body, "max_tokens"));
        let limit = limit
            .and_then(Value::as_u64)
            .map_or(usize::MAX, |l| l as usize);
        if chosen.is_empty() && pieces.len() > limit {
            pieces.truncate(limit);
            finish = "length";
        }
        let per_choice = if chosen.is_empty() {
            pieces.len()
        } else {
            calls[0].iter().map(|c| words(&c.arguments).max(1)).sum()
        };
        let prompt_tokens: usize = messages
            .iter()
            .map(|m| {
                words(&text_of(m.get("content")))
                    + m.get("tool_calls").map_or(0, |c| words(&c.to_string()))
            })
            .sum();
        let stream_options = present(body, "stream_options");
        let include_usage = stream_options
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        let logprobs = present(body, "logprobs").and_then(Value::as_bool) == Some(true);
        let top = present(body, "top_logprobs")
            .and_then(Value::as_u64)
            .unwrap_or(0) as usize;
        Chat {
            id: format!("chatcmpl-{}", ids.next(ALNUM, 29)),
            created: now_secs(),
            model: model.to_string(),
            fingerprint: format!("fp_{}", ids.next(b"0123456789abcdef", 10)),
            flavor,
            pieces,
            calls,
            finish,
            prompt_tokens: prompt_tokens.max(1),
            completion_tokens: (per_choice * n).max(1),
            include_usage,
            top_logprobs: logprobs.then_some(top),
            triggers,
        }
    }

    fn usage(&self) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
               "total_tokens": self.prompt_tokens + self.completion_tokens,
               "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
    }

    fn base(&self, object: &str) -> Value {
        json!({"id": self.id, "object": object, "created": self.created, "model": self.model,
               "system_fingerprint": self.fingerprint})
    }

    fn logprob(&self, piece: &str, i: usize) -> Value {
        let lp = |j: usize| -(((i * 37 + j * 91) % 500 + 1) as f64) / 1000.0;
        let entry = |token: &str, j: usize| json!({"token": token, "logprob": lp(j), "bytes": token.as_bytes()});
        let top: Vec<Value> = (0..self.top_logprobs.unwrap_or(0))
            .map(|j| {
                if j == 0 {
                    entry(piece, 0)
                } else {
                    entry(&format!("{}{j}", piece.trim()), j)
                }
            })
            .collect();
        let mut e = entry(piece, 0);
        e["top_logprobs"] = json!(top);
        e
    }

    /// The non-streaming `chat.completion` object.
    pub(crate) fn completion(&self) -> Value {
        let text = self.pieces.concat();
        let choices: Vec<Value> = self
            .calls
            .iter()
            .enumerate()
            .map(|(index, calls)| {
                let mut message = json!({"role": "assistant", "content": null, "refusal": null});
                let mut logprobs = Value::Null;
                if calls.is_empty() {
                    message["content"] = json!(text);
                    if self.top_logprobs.is_some() {
                        let content: Vec<Value> = self.pieces.iter().enumerate().map(|(i, p)| self.logprob(p, i)).collect();
                        logprobs = json!({"content": content, "refusal": null});
                    }
                } else {
                    let calls: Vec<Value> = calls
                        .iter()
                        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                        .collect();
                    message["tool_calls"] = json!(calls);
                }
                let mut choice = json!({"index": index, "message": message, "logprobs": logprobs, "finish_reason": self.finish});
                if self.flavor == Flavor::Azure {
                    let filtered = self.finish == "content_filter";
                    choice["content_filter_results"] = if calls.is_empty() { filter_results(filtered) } else { json!({}) };
                }
                choice
            })
            .collect();
        let mut body = self.base("chat.completion");
        body["choices"] = json!(choices);
        body["usage"] = self.usage();
        if self.flavor == Flavor::Azure {
            body["prompt_filter_results"] = prompt_filter_results();
        }
        body
    }

    /// `(part, delta, logprobs)` of one choice, in stream order.
    fn deltas(&self, calls: &[Call]) -> Vec<(Part, Value, Value)> {
        let mut out = Vec::new();
        if calls.is_empty() {
            out.push((
                Part::Role,
                json!({"role": "assistant", "content": "", "refusal": null}),
                Value::Null,
            ));
            for (i, p) in self.pieces.iter().enumerate() {
                let lp = match self.top_logprobs {
                    Some(_) => json!({"content": [self.logprob(p, i)], "refusal": null}),
                    None => Value::Null,
                };
                out.push((Part::Text, json!({"content": p}), lp));
            }
        } else {
            out.push((
                Part::Role,
                json!({"role": "assistant", "content": null}),
                Value::Null,
            ));
            for (k, c) in calls.iter().enumerate() {
                let start = json!({"index": k, "id": c.id, "type": "function", "function": {"name": c.name, "arguments": ""}});
                out.push((Part::Args, json!({"tool_calls": [start]}), Value::Null));
                for piece in char_pieces(&c.arguments, 3) {
                    let frag = json!({"index": k, "function": {"arguments": piece}});
                    out.push((Part::Args, json!({"tool_calls": [frag]}), Value::Null));
                }
            }
        }
        out.push((Part::Finish, json!({}), Value::Null));
        out
    }

    fn chunk(&self, index: usize, part: Part, delta: Value, logprobs: Value) -> Value {
        let finish = if part == Part::Finish {
            json!(self.finish)
        } else {
            Value::Null
        };
        let mut choice =
            json!({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish});
        if self.flavor == Flavor::Azure {
            choice["content_filter_results"] = match part {
                Part::Text => filter_results(false),
                Part::Finish if self.finish == "content_filter" => filter_results(true),
                _ => json!({}),
            };
        }
        let mut chunk = self.base("chat.completion.chunk");
        chunk["choices"] = json!([choice]);
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    }

    /// The data-only SSE stream (1.6; Azure: prompt-filter chunk first), fault triggers applied.
    pub(crate) fn stream(&self) -> Reply {
        let mut events: Vec<SseEvent> = Vec::new();
        if self.flavor == Flavor::Azure {
            let first = json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                               "prompt_filter_results": prompt_filter_results()});
            events.push(SseEvent::data(first));
        }
        let per_choice: Vec<Vec<(Part, Value, Value)>> =
            self.calls.iter().map(|c| self.deltas(c)).collect();
        let longest = per_choice.iter().map(Vec::len).max().unwrap_or(0);
        let mut payload = Vec::new();
        for step in 0..longest {
            for (index, seq) in per_choice.iter().enumerate() {
                if let Some((part, delta, lp)) = seq.get(step) {
                    if matches!(part, Part::Text | Part::Args) {
                        payload.push(events.len());
                    }
                    events.push(SseEvent::data(self.chunk(
                        index,
                        *part,
                        delta.clone(),
                        lp.clone(),
                    )));
                }
            }
        }
        if self.include_usage {
            let mut usage = self.base("chat.completion.chunk");
            usage["choices"] = json!([]);
            usage["usage"] = self.usage();
            events.push(SseEvent::data(usage));
        }
        events.push(SseEvent::data("[DONE]"));
        finish_stream(events, &payload, &self.triggers)
    }
}

/// `(name, arguments)` of the tool calls: the forced function, else the first tool (two with
/// `TWO TOOLS` unless `parallel_tool_calls: false`); none with `tool_choice: "none"`.
fn tool_choice(body: &Map<String, Value>, t: &Triggers) -> Vec<(String, Value)> {
    let functions: Vec<&Value> = present(body, "tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|tool| tool.get("type").and_then(Value::as_str) == Some("function"))
        .filter_map(|tool| tool.get("function"))
        .collect();
    let call = |f: &Value| {
        let name = f
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (
            name,
            args_from_schema(f.get("parameters").unwrap_or(&Value::Null)),
        )
    };
    match present(body, "tool_choice") {
        Some(Value::String(s)) if s == "none" => Vec::new(),
        Some(Value::Object(c)) => {
            let forced = c
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str);
            functions
                .into_iter()
                .filter(|f| f.get("name").and_then(Value::as_str) == forced)
                .take(1)
                .map(call)
                .collect()
        }
        _ => {
            let parallel =
                present(body, "parallel_tool_calls").and_then(Value::as_bool) != Some(false);
            let n = if t.has("TWO TOOLS") && parallel { 2 } else { 1 };
            functions.into_iter().take(n).map(call).collect()
        }
    }
}
