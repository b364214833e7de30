//! What the fake Bedrock Converse API answers: the blocks of one reply chosen by the trigger
//! words of the last user turn, written as a `ConverseResponse` or as ConverseStream's event
//! frames (`shared/reference/clouds.md` §4.2 and §5), with the mid-stream faults.

use serde_json::{Value, json};

use crate::common::{ALNUM, Ids, Triggers, args_from_schema, char_pieces, word_pieces, words};
use crate::eventstream::{event, exception};
use crate::reply::Reply;

enum Block {
    Reasoning {
        text: String,
        signature: String,
    },
    Text(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

pub(crate) struct Plan {
    pub(crate) triggers: Triggers,
    blocks: Vec<Block>,
    stop_reason: &'static str,
    input_tokens: usize,
    output_tokens: usize,
    cache_read: usize,
}

/// The text of a list of Converse content blocks (text blocks, and tool results' text/json).
fn text_of(content: Option<&Value>) -> String {
    let mut out = Vec::new();
    for b in content.and_then(Value::as_array).into_iter().flatten() {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            out.push(t.to_string());
        }
    }
    out.join("\n")
}

fn result_text(result: &Value) -> String {
    let mut out = Vec::new();
    for c in result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match (c.get("text"), c.get("json")) {
            (Some(Value::String(t)), _) => out.push(t.clone()),
            (_, Some(j)) => out.push(j.to_string()),
            _ => {}
        }
    }
    out.join("\n")
}

fn tool_calls(body: &Value, triggers: &Triggers) -> Vec<(String, Value)> {
    let Some(tools) = body.pointer("/toolConfig/tools").and_then(Value::as_array) else {
        return Vec::new();
    };
    let specs: Vec<&Value> = tools.iter().filter_map(|t| t.get("toolSpec")).collect();
    let named = body
        .pointer("/toolConfig/toolChoice/tool/name")
        .and_then(Value::as_str);
    let chosen: Vec<&Value> = match named {
        Some(n) => specs
            .into_iter()
            .filter(|s| s.get("name").and_then(Value::as_str) == Some(n))
            .collect(),
        None if triggers.has("TWO TOOLS") => specs.into_iter().take(2).collect(),
        None => specs.into_iter().take(1).collect(),
    };
    chosen
        .into_iter()
        .map(|s| {
            let name = s
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let schema = s
                .pointer("/inputSchema/json")
                .cloned()
                .unwrap_or(Value::Null);
            (name, args_from_schema(&schema))
        })
        .collect()
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
        let content = last_user.and_then(|m| m.get("content"));
        let text = text_of(content);
        let triggers = Triggers(text.clone());
        let blocks_of = |key: &str| -> Vec<Value> {
            content
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|b| b.get(key).cloned())
                .collect()
        };
        let results = blocks_of("toolResult");
        let images = blocks_of("image");
        let mut blocks = Vec::new();
        if triggers.has("THINK") {
            blocks.push(Block::Reasoning {
                text: "The user sent a message. I should read it carefully and answer briefly."
                    .into(),
                signature: format!("ErUBCkYIBBgCIkD{}", ids.next(ALNUM, 40)),
            });
        }
        let calls = if results.is_empty() {
            tool_calls(body, &triggers)
        } else {
            Vec::new()
        };
        if let Some(first) = results.first() {
            blocks.push(Block::Text(format!("Tool said: {}", result_text(first))));
        } else if calls.is_empty() {
            let mut answer = format!("Hello! You said: {text}");
            if !images.is_empty() {
                let formats: Vec<&str> = images
                    .iter()
                    .filter_map(|i| i.get("format")?.as_str())
                    .collect();
                answer.push_str(&format!(
                    " I see {} image(s): {}.",
                    images.len(),
                    formats.join(", ")
                ));
            }
            blocks.push(Block::Text(answer));
        } else {
            blocks.push(Block::Text("Let me check.".into()));
            for (name, input) in calls {
                blocks.push(Block::ToolUse {
                    id: format!("tooluse_{}", ids.next(ALNUM, 22)),
                    name,
                    input,
                });
            }
        }
        let stop_reason = if blocks.iter().any(|b| matches!(b, Block::ToolUse { .. })) {
            "tool_use"
        } else if triggers.has("MAX TOKENS") {
            "max_tokens"
        } else if triggers.has("STOPSEQ") {
            "stop_sequence"
        } else if triggers.has("GUARDRAIL") {
            "guardrail_intervened"
        } else if triggers.has("FILTERED") {
            "content_filtered"
        } else {
            "end_turn"
        };
        let output_tokens = blocks
            .iter()
            .map(|b| match b {
                Block::Reasoning { text, .. } | Block::Text(text) => words(text),
                Block::ToolUse { input, .. } => words(&input.to_string()).max(1),
            })
            .sum::<usize>()
            .max(1);
        let input_tokens = messages
            .iter()
            .map(|m| words(&text_of(m.get("content"))))
            .sum::<usize>()
            .max(1);
        Plan {
            blocks,
            stop_reason,
            input_tokens,
            output_tokens,
            cache_read: if triggers.has("CACHED") { 5 } else { 0 },
            triggers,
        }
    }

    fn usage(&self) -> Value {
        let mut u = json!({
            "inputTokens": self.input_tokens,
            "outputTokens": self.output_tokens,
            "totalTokens": self.input_tokens + self.output_tokens + self.cache_read,
        });
        if self.cache_read > 0 {
            u["cacheReadInputTokens"] = json!(self.cache_read);
            u["cacheWriteInputTokens"] = json!(0);
        }
        u
    }

    /// The `ConverseResponse`.
    pub(crate) fn response(&self) -> Value {
        let content: Vec<Value> = self
            .blocks
            .iter()
            .map(|b| match b {
                Block::Reasoning { text, signature } => {
                    json!({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}})
                }
                Block::Text(t) => json!({"text": t}),
                Block::ToolUse { id, name, input } => json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}),
            })
            .collect();
        json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": self.stop_reason,
            "usage": self.usage(),
            "metrics": {"latencyMs": 913},
        })
    }

    /// ConverseStream's frames. After the second text delta: `THROTTLE` sends a
    /// `throttlingException`, `MODEL STREAM ERROR` (or `MIDSTREAM ERROR`) a
    /// `modelStreamErrorException`, and the stream ends; `BAD CRC` sends a frame whose checksum
    /// is wrong, then goes on; `CUT SHORT` closes cleanly without `messageStop`; `RESET` resets
    /// the TCP connection.
    pub(crate) fn stream(&self) -> Reply {
        let t = &self.triggers;
        let mut frames = vec![event(
            "messageStart",
            &json!({"role": "assistant", "p": "abcdefghijklmnopqrstuvwxyzABCDEFGH"}),
        )];
        let mut text_deltas = 0;
        for (i, b) in self.blocks.iter().enumerate() {
            match b {
                Block::Reasoning { text, signature } => {
                    for piece in word_pieces(text, 3) {
                        frames.push(event("contentBlockDelta", &json!({"contentBlockIndex": i, "delta": {"reasoningContent": {"text": piece}}})));
                    }
                    frames.push(event("contentBlockDelta", &json!({"contentBlockIndex": i, "delta": {"reasoningContent": {"signature": signature}}})));
                }
                Block::Text(text) => {
                    for piece in word_pieces(text, 4) {
                        frames.push(event(
                            "contentBlockDelta",
                            &json!({"contentBlockIndex": i, "delta": {"text": piece}, "p": "abcd"}),
                        ));
                        text_deltas += 1;
                        if text_deltas == 2 {
                            if t.has("THROTTLE") {
                                frames.push(exception("throttlingException", &json!({"message": "Too many tokens, please wait before trying again."})));
                                return self.reply(frames);
                            }
                            if t.has("MODEL STREAM ERROR") || t.has("MIDSTREAM ERROR") {
                                frames.push(exception("modelStreamErrorException", &json!({"message": "The model failed mid-stream.", "originalStatusCode": 500, "originalMessage": "internal error"})));
                                return self.reply(frames);
                            }
                            if t.has("CUT SHORT") {
                                return self.reply(frames);
                            }
                            if t.has("RESET") {
                                return self.reply(frames).then_reset();
                            }
                            if t.has("BAD CRC") {
                                let mut bad = event(
                                    "contentBlockDelta",
                                    &json!({"contentBlockIndex": i, "delta": {"text": " garbage"}}),
                                );
                                let last = bad.len() - 1;
                                bad[last] ^= 0xff;
                                frames.push(bad);
                            }
                        }
                    }
                }
                Block::ToolUse { id, name, input } => {
                    frames.push(event("contentBlockStart", &json!({"contentBlockIndex": i, "start": {"toolUse": {"toolUseId": id, "name": name}}})));
                    frames.push(event(
                        "contentBlockDelta",
                        &json!({"contentBlockIndex": i, "delta": {"toolUse": {"input": ""}}}),
                    ));
                    for piece in char_pieces(&input.to_string(), 3) {
                        frames.push(event("contentBlockDelta", &json!({"contentBlockIndex": i, "delta": {"toolUse": {"input": piece}}})));
                    }
                }
            }
            frames.push(event("contentBlockStop", &json!({"contentBlockIndex": i})));
        }
        frames.push(event(
            "messageStop",
            &json!({"stopReason": self.stop_reason}),
        ));
        frames.push(event(
            "metadata",
            &json!({"usage": self.usage(), "metrics": {"latencyMs": 420}}),
        ));
        self.reply(frames)
    }

    fn reply(&self, frames: Vec<Vec<u8>>) -> Reply {
        Reply::binary(200, "application/vnd.amazon.eventstream", frames).pace(self.triggers.pace())
    }
}
