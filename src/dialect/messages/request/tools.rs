//! Tools and `tool_choice` in chat form.
//!
//! A client tool (`{name, description?, input_schema}`, with or without `type: "custom"`)
//! becomes a chat function tool. A server tool (any other `type`: web search, code execution,
//! bash, text editor...) has no chat form: it is left out and noted, never an error, so
//! clients that always send them still work.

use serde_json::{Map, Value, json};

use super::{bad, note};
use crate::error::ProxyError;

/// `tools` and `tool_choice` as chat's `tools`, `tool_choice` and `parallel_tool_calls`.
pub(super) fn copy(
    obj: &Map<String, Value>,
    chat: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ProxyError> {
    let list = match obj.get("tools") {
        None | Some(Value::Null) => &Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(bad("tools: must be an array", "tools")),
    };
    let mut tools = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            None | Some("custom") => tools.push(function(tool, i)?),
            Some(kind) => note(dropped, &format!("tools.{i}:{kind}")),
        }
    }
    let choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(c) => Some(c),
    };
    if tools.is_empty() {
        // Chat refuses a tool choice without tools.
        return Ok(());
    }
    chat.insert("tools".into(), Value::Array(tools));
    let Some(choice) = choice else {
        return Ok(());
    };
    let kind = choice.get("type").and_then(Value::as_str);
    let chat_choice = match kind {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match choice.get("name").and_then(Value::as_str) {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => {
                return Err(bad("tool_choice.name: Field required", "tool_choice.name"));
            }
        },
        _ => {
            return Err(bad(
                "tool_choice.type: must be auto, any, tool or none",
                "tool_choice.type",
            ));
        }
    };
    chat.insert("tool_choice".into(), chat_choice);
    if choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        == Some(true)
    {
        chat.insert("parallel_tool_calls".into(), Value::Bool(false));
    }
    Ok(())
}

/// A client tool as a chat function tool. A tool without a schema gets the empty object one.
fn function(tool: &Value, i: usize) -> Result<Value, ProxyError> {
    let Some(name) = tool
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return Err(bad(
            format!("tools.{i}.name: Field required"),
            format!("tools.{i}.name"),
        ));
    };
    let parameters = match tool.get("input_schema") {
        Some(s @ Value::Object(_)) => s.clone(),
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        Some(_) => {
            return Err(bad(
                format!("tools.{i}.input_schema: must be an object"),
                format!("tools.{i}.input_schema"),
            ));
        }
    };
    let mut f = json!({"name": name, "parameters": parameters});
    if let Some(d) = tool.get("description").and_then(Value::as_str) {
        f["description"] = Value::String(d.into());
    }
    if tool.get("strict").and_then(Value::as_bool) == Some(true) {
        f["strict"] = Value::Bool(true);
    }
    Ok(json!({"type": "function", "function": f}))
}
