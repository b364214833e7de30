//! Output items and the final response, the same for a whole answer and for a stream: the
//! item kinds Rosetta produces (reasoning, message, function call), how a finish becomes a
//! status, and the usage object.

use serde_json::{Value, json};

use super::echo::{Echo, Status};
use super::fresh_id;
use crate::dialect::answer::{Finish, Usage};
use crate::dialect::chat::tool_call_id;
use crate::dialect::openai::now_secs;

/// One output item, as far as it has got.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    /// The upstream's reasoning text: as one `summary_text` part when the client asked for a
    /// summary (`reasoning.summary`: what Codex and most reasoning displays read), otherwise as
    /// one `reasoning_text` content part, the model's own reasoning (`summary` stays `[]`).
    /// The signature goes out as `encrypted_content`, which a client sends back with the item.
    Reasoning {
        id: String,
        text: String,
        signature: Option<String>,
        summary: bool,
    },
    /// The answer's text, as one `output_text` part.
    Message { id: String, text: String },
    /// A tool call; `arguments` is `None` until a piece arrives.
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: Option<String>,
    },
}

impl Item {
    pub fn reasoning(text: String, signature: Option<String>, summary: bool) -> Item {
        Item::Reasoning {
            id: fresh_id("rs_"),
            text,
            signature,
            summary,
        }
    }

    pub fn message(text: String) -> Item {
        Item::Message {
            id: fresh_id("msg_"),
            text,
        }
    }

    /// A call with the upstream's id as its `call_id`, or a fresh one when the upstream gave
    /// none, an empty one, or one an earlier call of `items` has (clients pair calls and
    /// outputs by `call_id`, and the OpenAI SDK rejects a response that repeats one).
    pub fn call<'a>(
        items: impl IntoIterator<Item = &'a Item>,
        upstream_id: Option<&str>,
        name: &str,
    ) -> Item {
        let call_id = upstream_id
            .filter(|id| !id.is_empty())
            .filter(|id| {
                !items
                    .into_iter()
                    .any(|i| matches!(i, Item::Call { call_id, .. } if call_id == id))
            })
            .map_or_else(tool_call_id, str::to_string);
        Item::Call {
            id: fresh_id("fc_"),
            call_id,
            name: name.to_string(),
            arguments: None,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Item::Reasoning { id, .. } | Item::Message { id, .. } | Item::Call { id, .. } => id,
        }
    }

    /// The item as `response.output_item.added` shows it: nothing generated yet.
    pub fn added(&self) -> Value {
        match self {
            Item::Reasoning { id, summary, .. } => {
                let mut item = json!({"id": id, "type": "reasoning", "summary": []});
                if !summary {
                    item["content"] = json!([]);
                }
                item
            }
            Item::Message { id, .. } => json!({"id": id, "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}),
            Item::Call {
                id, call_id, name, ..
            } => json!({"id": id, "type": "function_call", "status": "in_progress",
                "call_id": call_id, "name": name, "arguments": ""}),
        }
    }

    /// The item's one content (or summary) part, whole (`None` for a call, which has no parts).
    pub fn part(&self) -> Option<Value> {
        match self {
            Item::Reasoning {
                text,
                summary: true,
                ..
            } => Some(json!({"type": "summary_text", "text": text})),
            Item::Reasoning { text, .. } => Some(json!({"type": "reasoning_text", "text": text})),
            Item::Message { text, .. } => Some(
                json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []}),
            ),
            Item::Call { .. } => None,
        }
    }

    /// Whole arguments: `{}` when the upstream gave none, so they always parse.
    pub fn arguments(&self) -> &str {
        match self {
            Item::Call {
                arguments: Some(a), ..
            } => a,
            _ => "{}",
        }
    }

    /// The item in its final state. Reasoning items carry no `status` (OpenAI's do not).
    pub fn done(&self, status: Status) -> Value {
        let status = status.as_str();
        match self {
            Item::Reasoning {
                id,
                signature,
                summary: true,
                ..
            } => {
                let mut item = json!({"id": id, "type": "reasoning", "summary": [self.part()]});
                if let Some(s) = signature {
                    item["encrypted_content"] = json!(s);
                }
                item
            }
            Item::Reasoning { id, signature, .. } => {
                let mut item = json!({"id": id, "type": "reasoning", "summary": [],
                    "content": [self.part()]});
                if let Some(s) = signature {
                    item["encrypted_content"] = json!(s);
                }
                item
            }
            Item::Message { id, .. } => json!({"id": id, "type": "message", "role": "assistant",
                "status": status, "content": [self.part()]}),
            Item::Call {
                id, call_id, name, ..
            } => json!({"id": id, "type": "function_call", "status": status,
                "call_id": call_id, "name": name, "arguments": self.arguments()}),
        }
    }
}

/// The response status a finish gives, and the reason when it is `incomplete`.
pub(super) fn status_of(finish: Finish) -> (Status, Option<&'static str>) {
    match finish {
        Finish::Length => (Status::Incomplete, Some("max_output_tokens")),
        Finish::ContentFilter => (Status::Incomplete, Some("content_filter")),
        Finish::Stop | Finish::ToolCalls | Finish::FunctionCall => (Status::Completed, None),
    }
}

/// The status an item ends with when the answer ends with `status`: the item being generated
/// when the answer was cut (the last) is `incomplete`, every other one `completed`.
pub(super) fn item_status(status: Status, last: bool) -> Status {
    if status == Status::Incomplete && last {
        Status::Incomplete
    } else {
        Status::Completed
    }
}

/// The usage object: every count present (0 when unknown), `total_tokens` the sum.
pub(super) fn usage_json(usage: &Usage) -> Value {
    let input = usage.prompt_tokens.unwrap_or(0);
    let output = usage.completion_tokens.unwrap_or(0);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens.unwrap_or(0)},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens.unwrap_or(0)},
        "total_tokens": input.saturating_add(output),
    })
}

/// The final response of an answer that finished: its status and output, the usage.
pub(super) fn finished(echo: &Echo, output: Vec<Value>, finish: Finish, usage: &Usage) -> Value {
    let (status, reason) = status_of(finish);
    let mut r = echo.base(status);
    r["output"] = Value::Array(output);
    r["usage"] = usage_json(usage);
    match reason {
        Some(reason) => r["incomplete_details"] = json!({"reason": reason}),
        None => r["completed_at"] = json!(now_secs()),
    }
    r
}

/// The final response of an answer that failed: the output so far and the error.
pub(super) fn failed(echo: &Echo, output: Vec<Value>, code: &str, message: &str) -> Value {
    let mut r = echo.base(Status::Failed);
    r["output"] = Value::Array(output);
    r["error"] = json!({"code": code, "message": message});
    r
}
