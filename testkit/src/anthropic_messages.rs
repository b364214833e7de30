//! Validation of the `messages` array of the fake Anthropic API: roles, blocks, tool_use/tool_result pairing.

use serde_json::{Map, Value};

use crate::anthropic_validate::{Check, MEDIA_TYPES, extra_keys, object, string, text_block};

pub(crate) fn messages_ok(messages: &[Value]) -> Check {
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    let mut roles = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let path = format!("messages.{i}");
        let obj = object(&path, Some(m))?;
        extra_keys(&path, obj, &["role", "content"])?;
        let role = match obj.get("role") {
            None => return Err(format!("{path}.role: Field required")),
            Some(Value::String(r)) if r == "user" || r == "assistant" => r.as_str(),
            Some(_) => {
                return Err(format!(
                    "{path}.role: Input should be 'user' or 'assistant'"
                ));
            }
        };
        let final_assistant = role == "assistant" && i + 1 == messages.len();
        match obj.get("content") {
            None => return Err(format!("{path}.content: Field required")),
            Some(Value::String(s)) if s.is_empty() && !final_assistant => return Err(non_empty()),
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                if blocks.is_empty() && !final_assistant {
                    return Err(non_empty());
                }
                for (j, b) in blocks.iter().enumerate() {
                    block(&format!("{path}.content.{j}"), b, role)?;
                }
            }
            Some(_) => {
                return Err(format!(
                    "{path}.content: Input should be a valid string or a valid list"
                ));
            }
        }
        roles.push(role);
    }
    if roles[0] != "user" {
        return Err("messages: first message must use the \"user\" role".into());
    }
    tool_pairing(messages)
}

fn non_empty() -> String {
    "messages: all messages must have non-empty content except for the optional final assistant message".into()
}

fn block(path: &str, b: &Value, role: &str) -> Check {
    let obj = object(path, Some(b))?;
    let ty = string(&format!("{path}.type"), obj.get("type"))?;
    let p = format!("{path}.{ty}");
    match ty {
        "text" => text_block(&p, obj, "messages"),
        "image" => {
            extra_keys(&p, obj, &["type", "source", "cache_control"])?;
            image_source(&format!("{p}.source"), obj.get("source"))
        }
        "document" => {
            extra_keys(
                &p,
                obj,
                &[
                    "type",
                    "source",
                    "title",
                    "context",
                    "citations",
                    "cache_control",
                ],
            )?;
            object(&format!("{p}.source"), obj.get("source")).map(drop)
        }
        "tool_use" => {
            extra_keys(&p, obj, &["type", "id", "name", "input", "cache_control"])?;
            string(&format!("{p}.id"), obj.get("id"))?;
            string(&format!("{p}.name"), obj.get("name"))?;
            object(&format!("{p}.input"), obj.get("input"))?;
            if role != "assistant" {
                return Err(format!(
                    "{path}: tool_use blocks can only be in assistant messages"
                ));
            }
            Ok(())
        }
        "tool_result" => {
            extra_keys(
                &p,
                obj,
                &[
                    "type",
                    "tool_use_id",
                    "content",
                    "is_error",
                    "cache_control",
                ],
            )?;
            string(&format!("{p}.tool_use_id"), obj.get("tool_use_id"))?;
            tool_result_content(&format!("{p}.content"), obj.get("content"))?;
            if obj.get("is_error").is_some_and(|e| !e.is_boolean()) {
                return Err(format!("{p}.is_error: Input should be a valid boolean"));
            }
            if role != "user" {
                return Err(format!(
                    "{path}: tool_result blocks can only be in user messages"
                ));
            }
            Ok(())
        }
        "thinking" | "redacted_thinking" => {
            let fields: &[&str] = if ty == "thinking" {
                &["thinking", "signature"]
            } else {
                &["data"]
            };
            let mut allowed = vec!["type"];
            allowed.extend_from_slice(fields);
            extra_keys(&p, obj, &allowed)?;
            for f in fields {
                string(&format!("{p}.{f}"), obj.get(*f))?;
            }
            if role != "assistant" {
                return Err(format!(
                    "{path}: thinking blocks can only be in assistant messages"
                ));
            }
            // The signature is what makes a thinking block acceptable back: none, none valid.
            if ty == "thinking" && obj.get("signature").and_then(Value::as_str) == Some("") {
                return Err(format!("{path}: Invalid `signature` in `thinking` block"));
            }
            Ok(())
        }
        other => Err(format!(
            "{path}: Input tag '{other}' found using 'type' does not match any of the expected tags: \
             'text', 'image', 'document', 'tool_use', 'tool_result', 'thinking', 'redacted_thinking'"
        )),
    }
}

fn image_source(path: &str, v: Option<&Value>) -> Check {
    let src = object(path, v)?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => {
            extra_keys(
                &format!("{path}.base64"),
                src,
                &["type", "media_type", "data"],
            )?;
            let media = string(&format!("{path}.base64.media_type"), src.get("media_type"))?;
            if !MEDIA_TYPES.contains(&media) {
                return Err(format!(
                    "{path}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
                ));
            }
            let data = string(&format!("{path}.base64.data"), src.get("data"))?;
            if crate::common::base64_error(data).is_some() {
                return Err(format!(
                    "{path}.base64.data: The image data is not valid base64"
                ));
            }
            Ok(())
        }
        Some("url") => {
            extra_keys(&format!("{path}.url"), src, &["type", "url"])?;
            string(&format!("{path}.url.url"), src.get("url")).map(drop)
        }
        _ => Err(format!(
            "{path}: Input tag found using 'type' does not match any of the expected tags: 'base64', 'url'"
        )),
    }
}

fn tool_result_content(path: &str, v: Option<&Value>) -> Check {
    match v {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(blocks)) => blocks.iter().enumerate().try_for_each(|(i, b)| {
            let p = format!("{path}.{i}");
            let obj = object(&p, Some(b))?;
            match obj.get("type").and_then(Value::as_str) {
                Some("text") => text_block(&format!("{p}.text"), obj, "messages"),
                Some("image") => image_source(&format!("{p}.image.source"), obj.get("source")),
                Some("document") => Ok(()),
                _ => Err(format!("{p}: Input tag found using 'type' does not match any of the expected tags: 'text', 'image', 'document'")),
            }
        }),
        Some(_) => Err(format!("{path}: Input should be a valid string or a valid list")),
    }
}

fn blocks_of<'a>(m: &'a Value, ty: &'a str) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
    m.get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .filter(move |b| b.get("type").and_then(Value::as_str) == Some(ty))
}

/// With thinking enabled, a tool loop that continues (the last message is a user turn with
/// `tool_result` blocks) wants the final assistant message, the one with the `tool_use`
/// blocks, to start with its thinking block (`thinking` or `redacted_thinking`), as the model
/// left it (`shared/reference/clouds.md` §5.3, items 17 and 18: the same rule on Bedrock and
/// Vertex, Anthropic's own message).
pub(crate) fn thinking_first(messages: &[Value]) -> Check {
    let [.., assistant, last] = messages else {
        return Ok(());
    };
    let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_string);
    if role(last).as_deref() != Some("user")
        || role(assistant).as_deref() != Some("assistant")
        || blocks_of(last, "tool_result").next().is_none()
        || blocks_of(assistant, "tool_use").next().is_none()
    {
        return Ok(());
    }
    let first = match assistant.get("content") {
        Some(Value::Array(blocks)) => blocks
            .first()
            .and_then(|b| b.get("type")?.as_str())
            .unwrap_or("text"),
        _ => "text",
    };
    if first == "thinking" || first == "redacted_thinking" {
        return Ok(());
    }
    Err(format!(
        "messages.{}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{first}`. \
         When `thinking` is enabled, a final `assistant` message must start with a thinking block \
         (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you \
         include thinking blocks from previous turns. To avoid this requirement, disable `thinking`.",
        messages.len() - 2
    ))
}

/// A user turn after an assistant turn with `tool_use` blocks must begin with their `tool_result`s,
/// and every `tool_result` must answer a `tool_use` of the turn right before it.
fn tool_pairing(messages: &[Value]) -> Check {
    for (i, m) in messages.iter().enumerate() {
        if m.get("role").and_then(Value::as_str) != Some("user") {
            continue;
        }
        let prev_is_assistant =
            i > 0 && messages[i - 1].get("role").and_then(Value::as_str) == Some("assistant");
        let uses: Vec<&str> = if prev_is_assistant {
            blocks_of(&messages[i - 1], "tool_use")
                .filter_map(|b| b.get("id")?.as_str())
                .collect()
        } else {
            Vec::new()
        };
        for b in blocks_of(m, "tool_result") {
            let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
            if !uses.contains(&id) {
                return Err(format!(
                    "messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: {id}. \
                     Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                ));
            }
        }
        if uses.is_empty() {
            continue;
        }
        let leading: Vec<&str> = match m.get("content") {
            Some(Value::Array(blocks)) => blocks
                .iter()
                .take_while(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
                .filter_map(|b| b.get("tool_use_id")?.as_str())
                .collect(),
            _ => Vec::new(),
        };
        if leading.len() < uses.len() {
            return Err(format!(
                "messages.{i}.content.0: Did not find {} tool_result block(s) at the beginning of this message. \
                 Messages following tool_use blocks must begin with a matching number of tool_result blocks.",
                uses.len()
            ));
        }
        if let Some(missing) = uses.iter().find(|u| !leading.contains(u)) {
            return Err(format!(
                "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately after: {missing}. \
                 Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                i - 1
            ));
        }
    }
    Ok(())
}
