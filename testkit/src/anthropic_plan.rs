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
    /// A text block that cites search results (`citations`).
    Cited {
        text: String,
        citations: Vec<Value>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// A call of a server tool, which the API runs itself (`server_tool_use`).
    ServerToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// What a web search found (`web_search_tool_result`); streamed whole in its start event.
    SearchResult {
        tool_use_id: String,
        results: Vec<Value>,
    },
}

/// The pages the fake web search finds: `(url, title, page_age, cited text)`.
const PAGES: &[(&str, &str, Option<&str>, &str)] = &[
    (
        "https://example.com/rosetta",
        "Rosetta - a translating proxy for LLM APIs",
        Some("April 30, 2025"),
        "Rosetta makes LLM providers speak the OpenAI API.",
    ),
    (
        "https://example.org/reverse-proxies",
        "Reverse proxies explained",
        None,
        "It runs as a reverse proxy in front of them.",
    ),
];

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
    /// `usage.server_tool_use.web_search_requests`.
    web_searches: usize,
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
        let searching = first_result.is_none() && triggers.has("SEARCH") && has_web_search(body);
        let calls = if first_result.is_none() && !searching {
            tool_calls(body, &triggers)
        } else {
            Vec::new()
        };
        if let Some(result) = first_result {
            blocks.push(Block::Text(format!(
                "Tool said: {}",
                text_of(result.get("content"))
            )));
        } else if searching {
            blocks.extend(search_blocks(&text, ids));
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
                Block::Text(t) | Block::Cited { text: t, .. } => words(t),
                Block::ToolUse { input, .. } | Block::ServerToolUse { input, .. } => {
                    words(&input.to_string()).max(1)
                }
                Block::SearchResult { .. } => 0,
            })
            .sum::<usize>()
            .max(1);
        // What a search found is read by the model: its pages count as input.
        let found: usize = blocks
            .iter()
            .map(|b| match b {
                Block::SearchResult { results, .. } => 100 * results.len(),
                _ => 0,
            })
            .sum();
        let web_searches = blocks
            .iter()
            .filter(|b| matches!(b, Block::ServerToolUse { name, .. } if name == "web_search"))
            .count();
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
            input_tokens: prompt_words(body) + found,
            cache_read: if triggers.has("CACHED") { 5 } else { 0 },
            output_tokens,
            web_searches,
            triggers,
        }
    }

    /// `usage.server_tool_use`, when a server tool ran.
    fn server_tool_use(&self) -> Option<Value> {
        (self.web_searches > 0)
            .then(|| json!({"web_search_requests": self.web_searches, "web_fetch_requests": 0}))
    }

    /// The non-streaming `message` object.
    pub(crate) fn message(&self) -> Value {
        let content: Vec<Value> = self.blocks.iter().map(full_block).collect();
        let mut usage = json!({"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                               "cache_creation_input_tokens": 0, "cache_read_input_tokens": self.cache_read,
                               "service_tier": "standard"});
        if let Some(s) = self.server_tool_use() {
            usage["server_tool_use"] = s;
        }
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence,
            "usage": usage,
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
                Block::Cited { .. } => json!({"citations": [], "type": "text", "text": ""}),
                Block::ToolUse { id, name, .. } => {
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}})
                }
                Block::ServerToolUse { id, name, .. } => {
                    json!({"type": "server_tool_use", "id": id, "name": name, "input": {}})
                }
                Block::SearchResult { .. } => full_block(block),
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
                // Citations first, then the text they support.
                Block::Cited { text, citations } => citations
                    .iter()
                    .map(|c| json!({"type": "citations_delta", "citation": c}))
                    .chain(
                        word_pieces(text, 4)
                            .into_iter()
                            .map(|p| json!({"type": "text_delta", "text": p})),
                    )
                    .collect(),
                Block::ToolUse { input, .. } | Block::ServerToolUse { input, .. } => {
                    std::iter::once(String::new())
                        .chain(char_pieces(&input.to_string(), 3))
                        .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                        .collect()
                }
                Block::SearchResult { .. } => Vec::new(),
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
        let mut usage = json!({"output_tokens": self.output_tokens});
        if let Some(s) = self.server_tool_use() {
            usage["server_tool_use"] = s;
        }
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
        Block::Cited { text, citations } => {
            json!({"citations": citations, "type": "text", "text": text})
        }
        Block::ToolUse { id, name, input } => {
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        Block::ServerToolUse { id, name, input } => {
            json!({"type": "server_tool_use", "id": id, "name": name, "input": input})
        }
        Block::SearchResult {
            tool_use_id,
            results,
        } => {
            json!({"type": "web_search_tool_result", "tool_use_id": tool_use_id, "content": results})
        }
    }
}

/// Whether the request offers the hosted web search tool.
fn has_web_search(body: &Value) -> bool {
    body.get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("type")?.as_str())
        .any(|t| t.starts_with("web_search_"))
}

/// A searched answer as the real API gives it: a sentence, the `server_tool_use` call, its
/// `web_search_tool_result`, then text blocks, those that use a page citing it.
fn search_blocks(query: &str, ids: &Ids) -> Vec<Block> {
    let id = format!("srvtoolu_01{}", ids.next(ALNUM, 22));
    let results = PAGES
        .iter()
        .map(|(url, title, age, _)| {
            json!({"type": "web_search_result", "title": title, "url": url,
                   "encrypted_content": format!("EqgfCioIARgBIiQ{}", ids.next(ALNUM, 48)),
                   "page_age": age})
        })
        .collect();
    let cited = |i: usize| {
        let (url, title, _, text) = PAGES[i];
        Block::Cited {
            text: text.to_string(),
            citations: vec![
                json!({"type": "web_search_result_location", "cited_text": text,
                                   "url": url, "title": title,
                                   "encrypted_index": format!("Eo8BCioIAhgBIiQ{}", ids.next(ALNUM, 32))}),
            ],
        }
    };
    vec![
        Block::Text("I'll search the web for that.".into()),
        Block::ServerToolUse {
            id: id.clone(),
            name: "web_search".into(),
            input: json!({ "query": query.trim() }),
        },
        Block::SearchResult {
            tool_use_id: id,
            results,
        },
        Block::Text("\n\nAccording to the search results, ".into()),
        cited(0),
        Block::Text(" ".into()),
        cited(1),
    ]
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
