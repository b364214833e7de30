//! Validation of the OpenAI `messages` array: roles, content parts, tool_calls and tool-message pairing.

use serde_json::{Map, Value};

use crate::openai_compat_validate::{
    Check, Invalid, invalid_type, invalid_value, missing, present,
};

const ROLES: &[&str] = &[
    "system",
    "assistant",
    "user",
    "function",
    "tool",
    "developer",
];
const USER_PARTS: &[&str] = &["text", "image_url", "input_audio", "file"];
const ASSISTANT_PARTS: &[&str] = &["text", "refusal"];
const TEXT_PARTS: &[&str] = &["text"];

/// The text of a message `content`: the string, or its text parts joined with newlines.
pub(crate) fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|p| p.get("text")?.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

pub(crate) fn role_of(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or_default()
}

/// `tool_calls[].id` of an assistant message.
pub(crate) fn call_ids(m: &Value) -> Vec<&str> {
    let calls = m.get("tool_calls").and_then(Value::as_array);
    calls
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id")?.as_str())
        .collect()
}

pub(crate) fn messages(obj: &Map<String, Value>) -> Check {
    let list = match present(obj, "messages") {
        None => return Err(missing("messages")),
        Some(Value::Array(list)) => list,
        Some(other) => return Err(invalid_type("messages", "an array of objects", other)),
    };
    if list.is_empty() {
        let msg = "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.";
        return Err(Invalid::new(msg, Some("messages"), Some("empty_array")));
    }
    for (i, m) in list.iter().enumerate() {
        message(&format!("messages[{i}]"), m)?;
    }
    pairing(list)
}

fn message(p: &str, m: &Value) -> Check {
    let obj = m
        .as_object()
        .ok_or_else(|| invalid_type(p, "an object", m))?;
    let role = match obj.get("role") {
        None => return Err(missing(&format!("{p}.role"))),
        Some(Value::String(r)) if ROLES.contains(&r.as_str()) => r.as_str(),
        Some(Value::String(r)) => return Err(invalid_value(&format!("{p}.role"), r, ROLES)),
        Some(other) => return Err(invalid_type(&format!("{p}.role"), "a string", other)),
    };
    if let Some(v) = present(obj, "name").filter(|v| !v.is_string()) {
        return Err(invalid_type(&format!("{p}.name"), "a string", v));
    }
    let has_calls = present(obj, "tool_calls").is_some() || present(obj, "function_call").is_some();
    match role {
        "user" => content(p, obj, USER_PARTS, true),
        "assistant" => {
            content(p, obj, ASSISTANT_PARTS, !has_calls)?;
            tool_calls(p, obj)
        }
        "tool" => {
            content(p, obj, TEXT_PARTS, true)?;
            match obj.get("tool_call_id") {
                None | Some(Value::Null) => Err(missing(&format!("{p}.tool_call_id"))),
                Some(Value::String(_)) => Ok(()),
                Some(other) => Err(invalid_type(
                    &format!("{p}.tool_call_id"),
                    "a string",
                    other,
                )),
            }
        }
        // system, developer, function
        _ => content(p, obj, TEXT_PARTS, true),
    }
}

fn content(p: &str, obj: &Map<String, Value>, allowed: &[&str], required: bool) -> Check {
    let cp = format!("{p}.content");
    let parts = match present(obj, "content") {
        None if required => return Err(missing(&cp)),
        None | Some(Value::String(_)) => return Ok(()),
        Some(Value::Array(parts)) => parts,
        Some(other) => {
            return Err(invalid_type(
                &cp,
                "one of a string or array of objects",
                other,
            ));
        }
    };
    if parts.is_empty() && required {
        let msg = format!(
            "Invalid '{cp}': empty array. Expected an array with minimum length 1, but got an empty array instead."
        );
        return Err(Invalid::new(msg, Some(&cp), Some("empty_array")));
    }
    for (j, part) in parts.iter().enumerate() {
        let pp = format!("{cp}[{j}]");
        let po = part
            .as_object()
            .ok_or_else(|| invalid_type(&pp, "an object", part))?;
        let ty = match po.get("type") {
            None => return Err(missing(&format!("{pp}.type"))),
            Some(Value::String(t)) if allowed.contains(&t.as_str()) => t.as_str(),
            Some(Value::String(t)) => return Err(invalid_value(&format!("{pp}.type"), t, allowed)),
            Some(other) => return Err(invalid_type(&format!("{pp}.type"), "a string", other)),
        };
        match ty {
            "text" | "refusal" => string_field(&pp, po, ty)?,
            "image_url" => {
                let ip = format!("{pp}.image_url");
                let image = match po.get("image_url") {
                    None => return Err(missing(&ip)),
                    Some(Value::Object(o)) => o,
                    Some(other) => return Err(invalid_type(&ip, "an object", other)),
                };
                string_field(&ip, image, "url")?;
                if let Some(detail) = present(image, "detail") {
                    let d = detail.as_str().unwrap_or_default();
                    if !["auto", "low", "high"].contains(&d) {
                        return Err(invalid_value(
                            &format!("{ip}.detail"),
                            d,
                            &["auto", "low", "high"],
                        ));
                    }
                }
            }
            "input_audio" => {
                let ap = format!("{pp}.input_audio");
                let audio = match po.get("input_audio") {
                    None => return Err(missing(&ap)),
                    Some(Value::Object(o)) => o,
                    Some(other) => return Err(invalid_type(&ap, "an object", other)),
                };
                string_field(&ap, audio, "data")?;
                string_field(&ap, audio, "format")?;
            }
            _ => {
                if !po.get("file").is_some_and(Value::is_object) {
                    return Err(missing(&format!("{pp}.file")));
                }
            }
        }
    }
    Ok(())
}

fn string_field(p: &str, obj: &Map<String, Value>, key: &str) -> Check {
    match obj.get(key) {
        None | Some(Value::Null) => Err(missing(&format!("{p}.{key}"))),
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(invalid_type(&format!("{p}.{key}"), "a string", other)),
    }
}

fn tool_calls(p: &str, obj: &Map<String, Value>) -> Check {
    let Some(v) = present(obj, "tool_calls") else {
        return Ok(());
    };
    let tp = format!("{p}.tool_calls");
    let calls = v
        .as_array()
        .ok_or_else(|| invalid_type(&tp, "an array", v))?;
    for (j, call) in calls.iter().enumerate() {
        let cp = format!("{tp}[{j}]");
        let c = call
            .as_object()
            .ok_or_else(|| invalid_type(&cp, "an object", call))?;
        string_field(&cp, c, "id")?;
        match c.get("type").and_then(Value::as_str) {
            None => return Err(missing(&format!("{cp}.type"))),
            Some("function") => {}
            Some(other) => return Err(invalid_value(&format!("{cp}.type"), other, &["function"])),
        }
        let fp = format!("{cp}.function");
        let f = match c.get("function") {
            None => return Err(missing(&fp)),
            Some(Value::Object(f)) => f,
            Some(other) => return Err(invalid_type(&fp, "an object", other)),
        };
        string_field(&fp, f, "name")?;
        // `arguments` is a JSON *string*; an object here is a classic translation bug.
        string_field(&fp, f, "arguments")?;
    }
    Ok(())
}

/// Tool messages answer the `tool_calls` of the assistant message right before them (several
/// tool messages may follow one assistant message), and every call gets an answer.
fn pairing(list: &[Value]) -> Check {
    for (i, m) in list.iter().enumerate() {
        match role_of(m) {
            "tool" => {
                let mut j = i;
                while j > 0 && role_of(&list[j - 1]) == "tool" {
                    j -= 1;
                }
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let answered = j > 0
                    && role_of(&list[j - 1]) == "assistant"
                    && call_ids(&list[j - 1]).contains(&id);
                if !answered {
                    let msg = "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.";
                    return Err(Invalid::new(
                        msg,
                        Some(&format!("messages.[{i}].role")),
                        None,
                    ));
                }
            }
            "assistant" => {
                let ids = call_ids(m);
                if ids.is_empty() {
                    continue;
                }
                let answered: Vec<&str> = list[i + 1..]
                    .iter()
                    .take_while(|n| role_of(n) == "tool")
                    .filter_map(|n| n.get("tool_call_id")?.as_str())
                    .collect();
                let unanswered: Vec<&str> = ids
                    .into_iter()
                    .filter(|id| !answered.contains(id))
                    .collect();
                if !unanswered.is_empty() {
                    let msg = format!(
                        "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. \
                         The following tool_call_ids did not have response messages: {}",
                        unanswered.join(", ")
                    );
                    return Err(Invalid::new(
                        msg,
                        Some(&format!("messages.[{i}].role")),
                        None,
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) fn response_format(obj: &Map<String, Value>) -> Check {
    let Some(rf) = present(obj, "response_format") else {
        return Ok(());
    };
    let rf = rf
        .as_object()
        .ok_or_else(|| invalid_type("response_format", "an object", rf))?;
    match rf.get("type").and_then(Value::as_str) {
        None => Err(missing("response_format.type")),
        Some("text") => Ok(()),
        Some("json_object") => {
            let messages = obj
                .get("messages")
                .map(Value::to_string)
                .unwrap_or_default();
            if messages.to_ascii_lowercase().contains("json") {
                return Ok(());
            }
            let msg = "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.";
            Err(Invalid::new(msg, Some("messages"), None))
        }
        Some("json_schema") => {
            let schema = match rf.get("json_schema") {
                None => return Err(missing("response_format.json_schema")),
                Some(Value::Object(s)) => s,
                Some(other) => {
                    return Err(invalid_type(
                        "response_format.json_schema",
                        "an object",
                        other,
                    ));
                }
            };
            match schema.get("name") {
                None => Err(missing("response_format.json_schema.name")),
                Some(Value::String(_)) => Ok(()),
                Some(other) => Err(invalid_type(
                    "response_format.json_schema.name",
                    "a string",
                    other,
                )),
            }
        }
        Some(other) => Err(invalid_value(
            "response_format.type",
            other,
            &["text", "json_object", "json_schema"],
        )),
    }
}
