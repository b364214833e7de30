//! Turns and their blocks as chat messages.
//!
//! A user turn's `tool_result` blocks become one chat `tool` message each, first (chat wants
//! them right after the assistant turn that called the tools), then the rest of the turn as a
//! user message. An assistant turn's text, `tool_use` and `thinking` blocks become one
//! assistant message: its text, its `tool_calls`, and its `reasoning_content` and
//! `reasoning_signature` (which a mapping whose upstream signs its reasoning sends back).

use serde_json::{Value, json};

use super::{DOCUMENT, bad, note};
use crate::error::ProxyError;

/// The text of `system` (a string or text blocks), blocks joined by a blank line.
pub(super) fn system(v: Option<&Value>, dropped: &mut Vec<String>) -> Result<String, ProxyError> {
    let blocks = match v {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(b)) => b,
        Some(_) => return Err(bad("system: must be a string or text blocks", "system")),
    };
    let mut texts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        cache_control(block, dropped);
        match (kind(block), block.get("text")) {
            (Some("text"), Some(Value::String(t))) => texts.push(t.as_str()),
            _ => {
                return Err(bad(
                    format!("system.{j}: a system block must be a text block"),
                    format!("system.{j}"),
                ));
            }
        }
    }
    Ok(texts.join("\n\n"))
}

/// A user turn: its tool results as `tool` messages, then the rest as a user message.
pub(super) fn user(
    content: Option<&Value>,
    param: &str,
    out: &mut Vec<Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ProxyError> {
    let blocks = match content {
        Some(Value::String(s)) => {
            out.push(json!({"role": "user", "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => return Err(content_error(param)),
    };
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{param}.content.{j}");
        cache_control(block, dropped);
        match kind(block) {
            Some("tool_result") => out.push(tool_result(block, &at, dropped)?),
            Some(_) => {
                if let Some(part) = user_part(block, &at, dropped)? {
                    parts.push(part);
                }
            }
            None => return Err(bad(format!("{at}.type: Field required"), at)),
        }
    }
    match parts.as_slice() {
        [] => {}
        [only] if only["type"] == "text" => {
            out.push(json!({"role": "user", "content": only["text"]}));
        }
        _ => out.push(json!({"role": "user", "content": parts})),
    }
    Ok(())
}

/// One block of a user turn as a chat part; `None` for a block with no chat form (noted).
fn user_part(
    block: &Value,
    at: &str,
    dropped: &mut Vec<String>,
) -> Result<Option<Value>, ProxyError> {
    match kind(block) {
        Some("text") => Ok(Some(json!({"type": "text", "text": text(block, at)?}))),
        Some("image") => image(block, at).map(Some),
        Some("document") => document(block, at, dropped),
        Some(other) => {
            note(dropped, &format!("{at}:{other}"));
            Ok(None)
        }
        None => Err(bad(format!("{at}.type: Field required"), at)),
    }
}

/// A `tool_result` block as a chat `tool` message. Chat tool messages take text: text blocks
/// are joined by newlines, other blocks left out and noted.
fn tool_result(block: &Value, at: &str, dropped: &mut Vec<String>) -> Result<Value, ProxyError> {
    let Some(id) = block.get("tool_use_id").and_then(Value::as_str) else {
        return Err(bad(
            format!("{at}.tool_use_id: Field required"),
            format!("{at}.tool_use_id"),
        ));
    };
    let content = match block.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            for (k, part) in parts.iter().enumerate() {
                match kind(part) {
                    Some("text") => texts.push(text(part, &format!("{at}.content.{k}"))?),
                    other => note(
                        dropped,
                        &format!("{at}.content.{k}:{}", other.unwrap_or("block")),
                    ),
                }
            }
            texts.join("\n")
        }
        Some(_) => {
            return Err(bad(
                format!("{at}.content: must be a string or blocks"),
                format!("{at}.content"),
            ));
        }
    };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": content}))
}

/// An assistant turn as one chat assistant message.
pub(super) fn assistant(
    content: Option<&Value>,
    param: &str,
    dropped: &mut Vec<String>,
) -> Result<Value, ProxyError> {
    let blocks = match content {
        Some(Value::String(s)) => return Ok(json!({"role": "assistant", "content": s})),
        Some(Value::Array(b)) => b,
        _ => return Err(content_error(param)),
    };
    let mut texts = String::new();
    let mut calls = Vec::new();
    let mut reasoning = Vec::new();
    let mut signature = None;
    for (j, block) in blocks.iter().enumerate() {
        let at = format!("{param}.content.{j}");
        cache_control(block, dropped);
        match kind(block) {
            Some("text") => texts.push_str(text(block, &at)?),
            Some("tool_use") => {
                let (Some(id), Some(name)) = (
                    block.get("id").and_then(Value::as_str),
                    block.get("name").and_then(Value::as_str),
                ) else {
                    return Err(bad(
                        format!("{at}: a tool_use block needs a string `id` and `name`"),
                        at,
                    ));
                };
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            Some("thinking") => {
                if let Some(t) = block.get("thinking").and_then(Value::as_str)
                    && !t.is_empty()
                {
                    reasoning.push(t);
                }
                if let Some(s) = block.get("signature").and_then(Value::as_str)
                    && !s.is_empty()
                {
                    signature = Some(s);
                }
            }
            Some(other) => note(dropped, &format!("{at}:{other}")),
            None => return Err(bad(format!("{at}.type: Field required"), at)),
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if texts.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(texts) },
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning.join("\n\n"));
    }
    if let Some(s) = signature {
        message["reasoning_signature"] = Value::String(s.into());
    }
    Ok(message)
}

/// An `image` block as a chat `image_url` part (a base64 source as a data: URL).
fn image(block: &Value, at: &str) -> Result<Value, ProxyError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let field = |k: &str| source.get(k).and_then(Value::as_str);
    let url = match (
        field("type"),
        field("url"),
        field("media_type"),
        field("data"),
    ) {
        (Some("base64"), _, Some(media), Some(data)) => format!("data:{media};base64,{data}"),
        (Some("url"), Some(url), _, _) => url.to_string(),
        _ => {
            return Err(bad(
                format!(
                    "{at}.source: an image needs a base64 source (media_type, data) or a url source"
                ),
                format!("{at}.source"),
            ));
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A `document` block: plain text as a text part, a base64 file as a chat `file` part (which
/// only some upstreams take: noted as [`DOCUMENT`], settled when the mapping is known).
fn document(
    block: &Value,
    at: &str,
    dropped: &mut Vec<String>,
) -> Result<Option<Value>, ProxyError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let field = |k: &str| source.get(k).and_then(Value::as_str);
    match (field("type"), field("media_type"), field("data")) {
        (Some("text"), _, Some(data)) => Ok(Some(json!({"type": "text", "text": data}))),
        (Some("base64"), Some(media), Some(data)) => {
            note(dropped, DOCUMENT);
            let mut file = json!({"file_data": format!("data:{media};base64,{data}")});
            if let Some(title) = block.get("title").and_then(Value::as_str) {
                file["filename"] = Value::String(title.into());
            }
            Ok(Some(json!({"type": "file", "file": file})))
        }
        _ => Err(bad(
            format!("{at}.source: documents are bridged from a base64 or a text source only"),
            format!("{at}.source"),
        )),
    }
}

fn kind(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

fn text<'v>(block: &'v Value, at: &str) -> Result<&'v str, ProxyError> {
    block
        .get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{at}.text: Field required"), format!("{at}.text")))
}

/// A `cache_control` marker: chat has no place for it (a native upstream gets it as it is).
fn cache_control(block: &Value, dropped: &mut Vec<String>) {
    if block.get("cache_control").is_some_and(|c| !c.is_null()) {
        note(dropped, "cache_control");
    }
}

fn content_error(param: &str) -> ProxyError {
    bad(
        format!("{param}.content: must be a string or an array of blocks"),
        format!("{param}.content"),
    )
}
