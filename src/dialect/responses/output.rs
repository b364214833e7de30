//! Output items and the final response, the same for a whole answer and for a stream: the
//! item kinds Rosetta produces (reasoning, message, function call), how a finish becomes a
//! status, and the usage object.

use serde_json::{Value, json};

use super::echo::{Echo, Status};
use super::fresh_id;
use super::sse::Obj;
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
    #[cfg(test)]
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

/// The items written straight into a stream, byte for byte as `serde_json` writes the values
/// above (see the tests).
impl Item {
    /// [`Item::added`], written.
    pub fn write_added(&self, out: &mut Vec<u8>) {
        let mut o = Obj::new(out);
        match self {
            Item::Reasoning { id, summary, .. } => {
                if !summary {
                    o.raw("content", b"[]");
                }
                o.str("id", id)
                    .raw("summary", b"[]")
                    .raw("type", b"\"reasoning\"");
            }
            Item::Message { id, .. } => {
                o.raw("content", b"[]")
                    .str("id", id)
                    .raw("role", b"\"assistant\"")
                    .raw("status", b"\"in_progress\"")
                    .raw("type", b"\"message\"");
            }
            Item::Call {
                id, call_id, name, ..
            } => {
                o.raw("arguments", b"\"\"")
                    .str("call_id", call_id)
                    .str("id", id)
                    .str("name", name)
                    .raw("status", b"\"in_progress\"")
                    .raw("type", b"\"function_call\"");
            }
        }
        o.close();
    }

    /// [`Item::part`], written (`null` for a call).
    pub fn write_part(&self, out: &mut Vec<u8>) {
        match self {
            Item::Reasoning { text, summary, .. } => {
                let mut o = Obj::new(out);
                o.str("text", text).raw(
                    "type",
                    if *summary {
                        b"\"summary_text\""
                    } else {
                        b"\"reasoning_text\""
                    },
                );
                o.close();
            }
            Item::Message { text, .. } => {
                let mut o = Obj::new(out);
                o.raw("annotations", b"[]")
                    .raw("logprobs", b"[]")
                    .str("text", text)
                    .raw("type", b"\"output_text\"");
                o.close();
            }
            Item::Call { .. } => out.extend_from_slice(b"null"),
        }
    }

    /// `[part]`, written.
    fn write_parts(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        self.write_part(out);
        out.push(b']');
    }

    /// [`Item::done`], written.
    pub fn write_done(&self, out: &mut Vec<u8>, status: Status) {
        let status = status.as_str();
        let mut o = Obj::new(out);
        match self {
            Item::Reasoning {
                id,
                signature,
                summary,
                ..
            } => {
                if !summary {
                    self.write_parts(o.key("content"));
                }
                if let Some(s) = signature {
                    o.str("encrypted_content", s);
                }
                o.str("id", id);
                if *summary {
                    self.write_parts(o.key("summary"));
                } else {
                    o.raw("summary", b"[]");
                }
                o.raw("type", b"\"reasoning\"");
            }
            Item::Message { id, .. } => {
                self.write_parts(o.key("content"));
                o.str("id", id)
                    .raw("role", b"\"assistant\"")
                    .str("status", status)
                    .raw("type", b"\"message\"");
            }
            Item::Call {
                id, call_id, name, ..
            } => {
                o.str("arguments", self.arguments())
                    .str("call_id", call_id)
                    .str("id", id)
                    .str("name", name)
                    .str("status", status)
                    .raw("type", b"\"function_call\"");
            }
        }
        o.close();
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
    let end = match reason {
        Some(reason) => ("incomplete_details", json!({"reason": reason})),
        None => ("completed_at", json!(now_secs())),
    };
    echo.response(
        status,
        [
            ("output", Value::Array(output)),
            ("usage", usage_json(usage)),
            end,
        ],
    )
}

/// The final response of an answer that failed: the output so far and the error.
pub(super) fn failed(echo: &Echo, output: Vec<Value>, code: &str, message: &str) -> Value {
    echo.response(
        Status::Failed,
        [
            ("output", Value::Array(output)),
            ("error", json!({"code": code, "message": message})),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items of every kind and state, with strings that need escaping.
    fn items() -> Vec<Item> {
        let odd = "a \"quoted\" line\n\u{1}é\u{2028}\\";
        let mut items = Vec::new();
        for summary in [false, true] {
            for (text, signature) in [("", None), (odd, Some(odd)), ("Thinking.", None)] {
                items.push(Item::reasoning(
                    text.into(),
                    signature.map(str::to_string),
                    summary,
                ));
            }
        }
        for text in ["", odd, "18 °C, cloudy."] {
            items.push(Item::message(text.into()));
        }
        for (id, name, arguments) in [
            (Some("toolu_1"), "get_weather", None),
            (Some(odd), odd, Some(odd)),
            (None, "f", Some("{\"x\":1}")),
        ] {
            let mut item = Item::call([], id, name);
            if let Item::Call { arguments: a, .. } = &mut item {
                *a = arguments.map(str::to_string);
            }
            items.push(item);
        }
        items
    }

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = b"before ".to_vec();
        write(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn items_written_directly_are_what_json_would_write() {
        for item in items() {
            let json = |v: Value| format!("before {}", serde_json::to_string(&v).unwrap());
            assert_eq!(
                written(|o| item.write_added(o)),
                json(item.added()),
                "{item:?}"
            );
            assert_eq!(
                written(|o| item.write_part(o)),
                json(item.part().unwrap_or_default()),
                "{item:?}"
            );
            for status in [
                Status::InProgress,
                Status::Completed,
                Status::Incomplete,
                Status::Failed,
            ] {
                assert_eq!(
                    written(|o| item.write_done(o, status)),
                    json(item.done(status)),
                    "{item:?}"
                );
            }
        }
    }
}
