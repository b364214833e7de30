//! Validation of the fake Cohere's `messages`: roles, content blocks, tool calls (JSON-string arguments), tool results.

use serde_json::Value;

use crate::cohere_validate::{Check, invalid, known, object, one_of, opt};

/// The text of a content (string or blocks); checks each block against `kinds`.
fn content_text(path: &str, v: Option<&Value>, kinds: &[&str]) -> Result<String, (u16, String)> {
    let blocks = match v {
        None => return Ok(String::new()),
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(blocks)) => blocks,
        Some(_) => {
            return Err(invalid(format!(
                "{path} must be a string or an array of content blocks"
            )));
        }
    };
    let mut text = String::new();
    for (j, b) in blocks.iter().enumerate() {
        let at = format!("{path}[{j}]");
        let block = object(&at, b)?;
        one_of(block, "type", &format!("{at}.type"), kinds)?;
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                known(block, &["type", "text"], "chat")?;
                let t = block
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{at}.text must be a string")))?;
                text.push_str(t);
            }
            Some("thinking") => known(block, &["type", "thinking"], "chat")?,
            Some("image_url") => {
                known(block, &["type", "image_url"], "chat")?;
                let image = object(
                    &format!("{at}.image_url"),
                    block.get("image_url").unwrap_or(&Value::Null),
                )?;
                known(image, &["url", "detail"], "chat")?;
                if !image.get("url").is_some_and(Value::is_string) {
                    return Err(invalid(format!("{at}.image_url.url must be a string")));
                }
                one_of(
                    image,
                    "detail",
                    &format!("{at}.image_url.detail"),
                    &["auto", "low", "high"],
                )?;
            }
            Some("document") => {
                known(block, &["type", "document"], "chat")?;
                let doc = object(
                    &format!("{at}.document"),
                    block.get("document").unwrap_or(&Value::Null),
                )?;
                known(doc, &["data", "id"], "chat")?;
                if !doc
                    .get("data")
                    .is_some_and(|d| d.is_object() || d.is_string())
                {
                    return Err(invalid(format!(
                        "{at}.document.data must be an object or a string"
                    )));
                }
                text.push_str(&doc["data"].to_string());
            }
            _ => return Err(invalid(format!("{at}.type is required"))),
        }
    }
    Ok(text)
}

pub(crate) fn messages_ok(messages: &[Value]) -> Check {
    let mut call_ids: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages[{i}]");
        let obj = object(&path, m)?;
        let content = opt(obj, "content");
        match obj.get("role").and_then(Value::as_str) {
            Some("system") => {
                known(obj, &["role", "content"], "chat")?;
                content_text(&format!("{path}.content"), content, &["text"])?;
            }
            Some("user") => {
                known(obj, &["role", "content"], "chat")?;
                let text = content_text(
                    &format!("{path}.content"),
                    content,
                    &["text", "image_url", "document"],
                )?;
                let has_blocks = content
                    .and_then(Value::as_array)
                    .is_some_and(|b| !b.is_empty());
                if text.trim().is_empty() && !has_blocks {
                    return Err(invalid(
                        "message must be at least 1 token long or tool results must be specified.",
                    ));
                }
            }
            Some("assistant") => {
                known(
                    obj,
                    &["role", "content", "tool_plan", "tool_calls", "citations"],
                    "chat",
                )?;
                content_text(&format!("{path}.content"), content, &["text", "thinking"])?;
                if opt(obj, "tool_plan").is_some_and(|p| !p.is_string()) {
                    return Err(invalid(format!("{path}.tool_plan must be a string")));
                }
                let calls = tool_calls(&path, opt(obj, "tool_calls"))?;
                if content.is_none() && calls.is_empty() {
                    return Err(invalid(format!(
                        "{path}: assistant messages must have content or tool_calls"
                    )));
                }
                call_ids.extend(calls);
            }
            Some("tool") => {
                known(obj, &["role", "tool_call_id", "content"], "chat")?;
                let id = obj
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if id.is_empty() {
                    return Err(invalid(format!("{path}.tool_call_id is required")));
                }
                if !call_ids.iter().any(|c| c == id) {
                    return Err(invalid(format!(
                        "{path}.tool_call_id '{id}' does not match any tool call of a previous assistant message"
                    )));
                }
                if content.is_none() {
                    return Err(invalid(format!("{path}.content is required")));
                }
                content_text(&format!("{path}.content"), content, &["text", "document"])?;
            }
            Some(other) => {
                return Err(invalid(format!(
                    "{path}.role must be one of system, user, assistant, tool, got '{other}'"
                )));
            }
            None => return Err(invalid(format!("{path}.role is required"))),
        }
    }
    Ok(())
}

/// An assistant's `tool_calls`; returns their ids. `function.arguments` must be a JSON string.
fn tool_calls(path: &str, v: Option<&Value>) -> Result<Vec<String>, (u16, String)> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let list = v
        .as_array()
        .ok_or_else(|| invalid(format!("{path}.tool_calls must be an array")))?;
    let mut ids = Vec::new();
    for (j, c) in list.iter().enumerate() {
        let at = format!("{path}.tool_calls[{j}]");
        let call = object(&at, c)?;
        known(call, &["id", "type", "function"], "chat")?;
        one_of(call, "type", &format!("{at}.type"), &["function"])?;
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        ids.push(
            id.ok_or_else(|| invalid(format!("{at}.id is required")))?
                .to_string(),
        );
        let f = object(
            &format!("{at}.function"),
            call.get("function").unwrap_or(&Value::Null),
        )?;
        known(f, &["name", "arguments"], "chat")?;
        if f.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(format!("{at}.function.name is required")));
        }
        let args = match f.get("arguments") {
            Some(Value::String(s)) => s,
            None => return Err(invalid(format!("{at}.function.arguments is required"))),
            Some(_) => {
                return Err(invalid(format!(
                    "{at}.function.arguments must be a string containing JSON"
                )));
            }
        };
        if serde_json::from_str::<Value>(args).is_err() {
            return Err(invalid(format!(
                "{at}.function.arguments is not valid JSON"
            )));
        }
    }
    Ok(ids)
}
