//! Responses content parts as chat content: message content, assistant text and tool output.
//!
//! `param` is the path of the item that holds the content (`input[3]`), so an error names
//! the exact part (`input[3].content[1].file_id`).

use serde_json::{Value, json};

use super::{bad, note};
use crate::error::ProxyError;

/// A user, system or developer message's content in chat form: a lone text part becomes a
/// plain string (what every upstream takes), anything else a list of chat parts.
pub(super) fn message(content: Option<&Value>, param: &str) -> Result<Value, ProxyError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => parts,
        _ => {
            return Err(bad(
                "a message's `content` must be a string or an array of parts",
                format!("{param}.content"),
            ));
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.iter().enumerate() {
        out.push(chat_part(part, &format!("{param}.content[{j}]"))?);
    }
    match out.as_slice() {
        [] => Ok(Value::String(String::new())),
        [only] if only["type"] == "text" => Ok(only["text"].clone()),
        _ => Ok(Value::Array(out)),
    }
}

/// One input part as a chat part.
fn chat_part(part: &Value, param: &str) -> Result<Value, ProxyError> {
    if let Value::String(s) = part {
        return Ok(json!({"type": "text", "text": s}));
    }
    let field = |key: &str| part.get(key).filter(|v| !v.is_null());
    match part.get("type").and_then(Value::as_str) {
        Some("input_text" | "output_text" | "text") => match field("text") {
            Some(Value::String(t)) => Ok(json!({"type": "text", "text": t})),
            _ => Err(bad(
                "a text part needs a string `text`",
                format!("{param}.text"),
            )),
        },
        Some("input_image") => {
            let url = match (field("image_url"), field("file_id")) {
                (Some(Value::String(url)), _) if !url.is_empty() => url,
                (None, Some(_)) => {
                    return Err(bad(
                        "images by `file_id` are not bridged: send `image_url` (an https or data: URL)",
                        format!("{param}.file_id"),
                    ));
                }
                _ => {
                    return Err(bad(
                        "an input_image needs `image_url` (an https or data: URL)",
                        format!("{param}.image_url"),
                    ));
                }
            };
            let mut image = json!({"url": url});
            if let Some(detail) = field("detail").and_then(Value::as_str) {
                // Chat has no `original`; `high` is the closest.
                let detail = if detail == "original" { "high" } else { detail };
                image["detail"] = Value::String(detail.into());
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            if let Some(Value::String(data)) = field("file_data") {
                let mut file = json!({"file_data": data});
                if let Some(name) = field("filename").and_then(Value::as_str) {
                    file["filename"] = Value::String(name.into());
                }
                return Ok(json!({"type": "file", "file": file}));
            }
            let (key, why) = if field("file_id").is_some() {
                ("file_id", "files by `file_id` are not bridged")
            } else if field("file_url").is_some() {
                ("file_url", "a `file_url` has no Chat Completions form")
            } else {
                ("file_data", "an input_file needs `file_data`")
            };
            Err(bad(
                format!("{why}: send the file as `file_data` (a base64 data: URL)"),
                format!("{param}.{key}"),
            ))
        }
        Some(other) => Err(bad(
            format!("unsupported content part type '{other}' in a message"),
            format!("{param}.type"),
        )),
        None => Err(bad(
            "a content part needs a string `type`",
            format!("{param}.type"),
        )),
    }
}

/// An assistant message's content as plain text: `output_text` parts, and the text of
/// `refusal` parts (no mapping reads chat's `refusal` field; as text the model sees it).
pub(super) fn assistant_text(content: Option<&Value>, param: &str) -> Result<String, ProxyError> {
    let parts = match content {
        Some(Value::String(s)) => return Ok(s.clone()),
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::Array(parts)) => parts,
        Some(_) => {
            return Err(bad(
                "a message's `content` must be a string or an array of parts",
                format!("{param}.content"),
            ));
        }
    };
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        let at = || format!("{param}.content[{j}]");
        let piece = match (part, part.get("type").and_then(Value::as_str)) {
            (Value::String(s), _) => s,
            (_, Some("output_text" | "input_text" | "text")) => {
                part.get("text").and_then(Value::as_str).ok_or_else(|| {
                    bad(
                        "a text part needs a string `text`",
                        format!("{}.text", at()),
                    )
                })?
            }
            (_, Some("refusal")) => {
                part.get("refusal").and_then(Value::as_str).ok_or_else(|| {
                    bad(
                        "a refusal part needs a string `refusal`",
                        format!("{}.refusal", at()),
                    )
                })?
            }
            (_, other) => {
                return Err(bad(
                    format!(
                        "Invalid value: '{}'. Supported values are: 'output_text' and 'refusal'.",
                        other.unwrap_or("")
                    ),
                    format!("{}.type", at()),
                ));
            }
        };
        text.push_str(piece);
    }
    Ok(text)
}

/// A `function_call_output`'s `output` as chat tool content: a string as it is, text parts
/// joined by newlines. Chat tool messages take text only, so images and files are left out
/// and noted; any other JSON value is sent as its JSON text.
pub(super) fn tool_output(
    output: Option<&Value>,
    param: &str,
    dropped: &mut Vec<String>,
) -> Result<Value, ProxyError> {
    let parts = match output {
        Some(Value::String(s)) => return Ok(Value::String(s.clone())),
        Some(Value::Array(parts)) => parts,
        None | Some(Value::Null) => {
            return Err(bad(
                "a function_call_output needs an `output`",
                format!("{param}.output"),
            ));
        }
        Some(other) => return Ok(Value::String(other.to_string())),
    };
    let mut text = String::new();
    for (j, part) in parts.iter().enumerate() {
        let piece = match (part, part.get("type").and_then(Value::as_str)) {
            (Value::String(s), _) => Some(s.as_str()),
            (_, Some("input_text" | "output_text" | "text")) => {
                part.get("text").and_then(Value::as_str)
            }
            _ => None,
        };
        match piece {
            Some(piece) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(piece);
            }
            None => {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("part");
                note(dropped, &format!("{param}.output[{j}]:{kind}"));
            }
        }
    }
    Ok(Value::String(text))
}
