//! The deterministic answer of the fake Anthropic API: content blocks, usage, JSON message and SSE stream.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::common::{ALNUM, Ids, Triggers, args_from_schema, char_pieces, word_pieces, words};
use crate::reply::{Reply, SseEvent};

const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

enum Block {
    Thinking {
        thinking: String,
        signature: String,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

/// The deterministic answer to one valid request.
pub(crate) struct Plan {
    id: String,
    model: String,
    blocks: Vec<Block>,
    stop_reason: &'static str,
    stop_sequence: Option<String>,
    input_tokens: usize,
    cache_read: usize,
    output_tokens: usize,
    pub(crate) triggers: Triggers,
}

fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text")?.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Words of every text a prompt carries: system, texts, tool results, tool inputs.
fn prompt_words(body: &Value) -> usize {
    let mut n = words(&text_of(body.get("system")));
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        n += words(&text_of(m.get("content")));
        for b in m
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            n += words(&text_of(b.get("content")));
            n += b.get("input").map_or(0, |i| words(&i.to_string()));
        }
    }
    n.max(1)
}

impl Plan {
    pub(crate) fn new(body: &Value, ids: &Ids) -> Plan {
        let messages = body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
        let text = text_of(last_user.and_then(|m| m.get("content")));
        let triggers = Triggers(text.clone());
        let first_result = last_user
            .and_then(|m| m.get("content")?.as_array())
            .and_then(|blocks| {
                blocks
                    .iter()
                    .find(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            });
        let mut blocks = Vec::new();
        if triggers.has("THINK") {
            blocks.push(Block::Thinking {
                thinking: "The user sent a message. I should read it carefully and answer briefly."
                    .into(),
                signature: format!("EqQBCkgIARABGAIiQ{}", ids.next(ALNUM, 40)),
            });
        }
        let calls = if first_result.is_none() {
            tool_calls(body, &triggers)
        } else {
            Vec::new()
        };
        if let Some(result) = first_result {
            blocks.push(Block::Text(format!(
                "Tool said: {}",
                text_of(result.get("content"))
            )));
        } else if calls.is_empty() {
            blocks.push(Block::Text(format!("Hello! You said: {text}")));
        } else {
            blocks.push(Block::Text("Let me check.".into()));
            for (name, input) in calls {
                let id = format!("toolu_01{}", ids.next(ALNUM, 20));
                blocks.push(Block::ToolUse { id, name, input });
            }
        }
        let has_tool = blocks.iter().any(|b| matches!(b, Block::ToolUse { .. }));
        let (stop_reason, stop_sequence) = if has_tool {
            ("tool_use", None)
        } else if triggers.has("MAX TOKENS") {
            ("max_tokens", None)
        } else if triggers.has("STOPSEQ") {
            let first = body
                .pointer("/stop_sequences/0")
                .and_then(Value::as_str)
                .unwrap_or("END");
            ("stop_sequence", Some(first.to_string()))
        } else {
            ("end_turn", None)
        };
        let output_tokens = blocks
            .iter()
            .map(|b| match b {
                Block::Thinking { thinking, .. } => words(thinking),
                Block::Text(t) => words(t),
                Block::ToolUse { input, .. } => words(&input.to_string()).max(1),
            })
            .sum::<usize>()
            .max(1);
        Plan {
            id: format!("msg_01{}", ids.next(ALNUM, 22)),
            model: body
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            blocks,
            stop_reason,
            stop_sequence,
            input_tokens: prompt_words(body),
            cache_read: if triggers.has("CACHED") { 5 } else { 0 },
            output_tokens,
            triggers,
        }
    }

    /// The non-streaming `message` object.
    pub(crate) fn message(&self) -> Value {
        let content: Vec<Value> = self.blocks.iter().map(full_block).collect();
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": self.cache_read,
                      "service_tier": "standard"},
        })
    }

    /// The named-event SSE stream (section 2.6), with the stream fault triggers applied.
    pub(crate) fn stream(&self) -> Reply {
        let message = json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": self.input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": self.cache_read, "output_tokens": 1},
        });
        let mut events = vec![ev(
            "message_start",
            json!({"type": "message_start", "message": message}),
        )];
        // Index in `events` of the second text delta (where stream faults strike).
        let mut text_deltas = Vec::new();
        for (index, block) in self.blocks.iter().enumerate() {
            let start = match block {
                Block::Thinking { .. } => {
                    json!({"type": "thinking", "thinking": "", "signature": ""})
                }
                Block::Text(_) => json!({"type": "text", "text": ""}),
                Block::ToolUse { id, name, .. } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}})
                }
            };
            events.push(ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": start}),
            ));
            if index == 0 {
                events.push(ev("ping", json!({"type": "ping"})));
            }
            let deltas: Vec<Value> = match block {
                Block::Thinking {
                    thinking,
                    signature,
                } => word_pieces(thinking, 4)
                    .into_iter()
                    .map(|p| json!({"type": "thinking_delta", "thinking": p}))
                    .chain([json!({"type": "signature_delta", "signature": signature})])
                    .collect(),
                Block::Text(text) => word_pieces(text, 10)
                    .into_iter()
                    .map(|p| json!({"type": "text_delta", "text": p}))
                    .collect(),
                Block::ToolUse { input, .. } => std::iter::once(String::new())
                    .chain(char_pieces(&input.to_string(), 3))
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
            };
            for delta in deltas {
                if delta["type"] == "text_delta" {
                    text_deltas.push(events.len());
                }
                let data = json!({"type": "content_block_delta", "index": index, "delta": delta});
                events.push(ev("content_block_delta", data));
            }
            events.push(ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
        let delta = json!({"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence});
        let usage = json!({"output_tokens": self.output_tokens});
        events.push(ev(
            "message_delta",
            json!({"type": "message_delta", "delta": delta, "usage": usage}),
        ));
        events.push(ev("message_stop", json!({"type": "message_stop"})));

        let cut = text_deltas
            .get(1)
            .or(text_deltas.last())
            .map_or(events.len(), |i| i + 1);
        let t = &self.triggers;
        if t.has("MIDSTREAM ERROR") {
            events.truncate(cut);
            let error = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
            events.push(ev("error", error));
        } else if t.has("RESET") {
            events.truncate(cut);
        } else if t.has("STREAM GARBAGE") {
            events.insert(cut, SseEvent::named("content_block_delta", "{not json"));
        }
        let pace = t.pace();
        let events: Vec<SseEvent> = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.delay(if i == 0 { Duration::ZERO } else { pace }))
            .collect();
        if t.has("RESET") && !t.has("MIDSTREAM ERROR") {
            let chunks = events.iter().map(|e| (e.to_wire(), e.delay)).collect();
            let headers = vec![("cache-control".to_string(), "no-cache".to_string())];
            return Reply::ResetAfter {
                status: 200,
                content_type: SSE_CONTENT_TYPE.into(),
                chunks,
                headers,
            };
        }
        Reply::sse_events(events).header("cache-control", "no-cache")
    }
}

fn ev(name: &str, data: Value) -> SseEvent {
    SseEvent::named(name, data)
}

fn full_block(b: &Block) -> Value {
    match b {
        Block::Thinking {
            thinking,
            signature,
        } => {
            json!({"type": "thinking", "thinking": thinking, "signature": signature})
        }
        Block::Text(text) => json!({"type": "text", "text": text}),
        Block::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
    }
}

/// `(name, input)` of the tool calls to make: the forced tool, else the first (two with `TWO TOOLS`).
fn tool_calls(body: &Value, triggers: &Triggers) -> Vec<(String, Value)> {
    let tools: Vec<&Map<String, Value>> = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(|t| t.contains_key("input_schema"))
        .collect();
    let choice = body.get("tool_choice");
    let choice_type = choice.and_then(|c| c.get("type")).and_then(Value::as_str);
    let call = |t: &Map<String, Value>| {
        let name = t
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (
            name,
            args_from_schema(t.get("input_schema").unwrap_or(&Value::Null)),
        )
    };
    if choice_type == Some("none") {
        return Vec::new();
    }
    if choice_type == Some("tool") {
        let forced = choice.and_then(|c| c.get("name")).and_then(Value::as_str);
        let tool = tools
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == forced);
        return tool.map(|t| call(t)).into_iter().collect();
    }
    let single = choice
        .and_then(|c| c.get("disable_parallel_tool_use"))
        .and_then(Value::as_bool)
        == Some(true);
    let n = if triggers.has("TWO TOOLS") && !single {
        2
    } else {
        1
    };
    tools.iter().take(n).map(|t| call(t)).collect()
}
