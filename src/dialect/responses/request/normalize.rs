//! A request's `input` as full item objects: what the store keeps and `input_items` lists.
//!
//! A string is one user message; an item without `type` is a message when it has a `role`
//! and an item reference when it has only an `id`; every item gets an `id` (a fresh one in
//! OpenAI's style when the client gave none), messages get their content as parts, and
//! messages and calls a `status`.

use serde_json::{Map, Value, json};

use super::bad;
use crate::dialect::responses::fresh_id;
use crate::error::ProxyError;

/// An item's kind: its `type`, or what the Responses API infers when `type` is missing.
pub(super) fn kind(item: &Value) -> Option<&str> {
    match item.get("type") {
        Some(Value::String(t)) => Some(t),
        None | Some(Value::Null) if item.get("role").is_some() => Some("message"),
        None | Some(Value::Null) if item.get("id").is_some() => Some("item_reference"),
        _ => None,
    }
}

/// The `input` field as normalized items.
pub(super) fn input(input: &Value) -> Result<Vec<Value>, ProxyError> {
    match input {
        Value::String(text) => Ok(vec![json!({
            "id": fresh_id("msg_"),
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_text", "text": text}],
        })]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| normalize(i, item))
            .collect(),
        _ => Err(bad(
            "`input` must be a string or an array of items",
            "input",
        )),
    }
}

fn normalize(i: usize, item: &Value) -> Result<Value, ProxyError> {
    let Some(obj) = item.as_object() else {
        return Err(bad(
            "every input item must be an object",
            format!("input[{i}]"),
        ));
    };
    let Some(kind) = kind(item) else {
        return Err(bad(
            "an input item needs a string `type` (or a `role`, for a message)",
            format!("input[{i}].type"),
        ));
    };
    let mut out: Map<String, Value> = obj.clone();
    out.insert("type".into(), Value::String(kind.into()));
    match obj.get("id") {
        None | Some(Value::Null) => {
            out.insert(
                "id".into(),
                Value::String(fresh_id(&format!("{}_", prefix(kind)))),
            );
        }
        Some(Value::String(_)) => {}
        Some(_) => {
            return Err(bad(
                "an item's `id` must be a string",
                format!("input[{i}].id"),
            ));
        }
    }
    if matches!(kind, "message" | "function_call" | "function_call_output") {
        out.entry("status").or_insert_with(|| "completed".into());
    }
    if kind == "message"
        && let Some(Value::String(text)) = obj.get("content")
    {
        let part = if obj.get("role").and_then(Value::as_str) == Some("assistant") {
            json!({"type": "output_text", "text": text, "annotations": []})
        } else {
            json!({"type": "input_text", "text": text})
        };
        out.insert("content".into(), json!([part]));
    }
    Ok(Value::Object(out))
}

/// The id prefix OpenAI uses for an item kind.
fn prefix(kind: &str) -> &'static str {
    match kind {
        "message" => "msg",
        "function_call" => "fc",
        "function_call_output" => "fco",
        "reasoning" => "rs",
        _ => "item",
    }
}
