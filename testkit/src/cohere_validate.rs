//! Validation of the fake Cohere `/v2/chat` body: known fields (422 otherwise), tools, sampling ranges.

use serde_json::{Map, Value};

use crate::cohere_messages::messages_ok;

/// `Err((status, message))`: 422 for unknown fields, 400 `invalid request: ...` otherwise.
pub(crate) type Check = Result<(), (u16, String)>;

const CHAT: &[&str] = &[
    "model",
    "messages",
    "stream",
    "tools",
    "strict_tools",
    "documents",
    "citation_options",
    "response_format",
    "safety_mode",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "k",
    "p",
    "logprobs",
    "tool_choice",
    "thinking",
    "priority",
];

pub(crate) fn invalid(message: impl AsRef<str>) -> (u16, String) {
    (400, format!("invalid request: {}", message.as_ref()))
}

/// Cohere rejects unknown keys anywhere with 422, naming only the key.
pub(crate) fn known(obj: &Map<String, Value>, allowed: &[&str], page: &str) -> Check {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err((
            422,
            format!(
                "unknown field: parameter '{k}' is not a valid field. For proper usage, please refer to https://docs.cohere.com/reference/{page}"
            ),
        )),
        None => Ok(()),
    }
}

pub(crate) fn object<'a>(
    path: &str,
    v: &'a Value,
) -> Result<&'a Map<String, Value>, (u16, String)> {
    v.as_object()
        .ok_or_else(|| invalid(format!("{path} must be an object")))
}

/// A field, `null` counting as absent.
pub(crate) fn opt<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn number(obj: &Map<String, Value>, key: &str, min: f64, max: f64) -> Check {
    let Some(v) = opt(obj, key) else {
        return Ok(());
    };
    let n = v
        .as_f64()
        .ok_or_else(|| invalid(format!("{key} must be a number")))?;
    if n < min || n > max {
        let range = if max == f64::MAX {
            format!("greater than or equal to {min}")
        } else {
            format!("between {min} and {max}")
        };
        return Err(invalid(format!("{key} must be {range}, got {n}")));
    }
    Ok(())
}

fn integer(obj: &Map<String, Value>, key: &str, min: i64, max: i64) -> Check {
    let Some(v) = opt(obj, key) else {
        return Ok(());
    };
    let n = v
        .as_i64()
        .ok_or_else(|| invalid(format!("{key} must be an integer")))?;
    if n < min || n > max {
        return Err(invalid(format!(
            "{key} must be between {min} and {max}, got {n}"
        )));
    }
    Ok(())
}

fn boolean(obj: &Map<String, Value>, key: &str) -> Check {
    match opt(obj, key) {
        Some(v) if !v.is_boolean() => Err(invalid(format!("{key} must be a boolean"))),
        _ => Ok(()),
    }
}

pub(crate) fn one_of(obj: &Map<String, Value>, key: &str, path: &str, values: &[&str]) -> Check {
    match opt(obj, key) {
        Some(v) if !v.as_str().is_some_and(|s| values.contains(&s)) => Err(invalid(format!(
            "{path} must be one of {}, got {v}",
            values.join(", ")
        ))),
        _ => Ok(()),
    }
}

pub(crate) fn validate(body: &Map<String, Value>) -> Check {
    known(body, CHAT, "chat")?;
    match opt(body, "model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        Some(Value::String(_)) | None => return Err(invalid("model is required")),
        Some(_) => return Err(invalid("model must be a string")),
    }
    let messages = match opt(body, "messages") {
        None => return Err(invalid("messages is required")),
        Some(Value::Array(m)) if m.is_empty() => return Err(invalid("messages must not be empty")),
        Some(Value::Array(m)) => m,
        Some(_) => return Err(invalid("messages must be an array")),
    };
    messages_ok(messages)?;
    tools(opt(body, "tools"))?;
    boolean(body, "stream")?;
    boolean(body, "strict_tools")?;
    boolean(body, "logprobs")?;
    integer(body, "max_tokens", 1, i64::MAX)?;
    integer(body, "seed", i64::MIN, i64::MAX)?;
    integer(body, "k", 0, 500)?;
    integer(body, "priority", 0, 999)?;
    number(body, "p", 0.01, 0.99)?;
    number(body, "temperature", 0.0, f64::MAX)?;
    number(body, "frequency_penalty", 0.0, 1.0)?;
    number(body, "presence_penalty", 0.0, 1.0)?;
    one_of(body, "tool_choice", "tool_choice", &["REQUIRED", "NONE"])?;
    one_of(
        body,
        "safety_mode",
        "safety_mode",
        &["CONTEXTUAL", "STRICT", "OFF"],
    )?;
    if let Some(v) = opt(body, "stop_sequences") {
        let stops = v.as_array().filter(|s| s.iter().all(Value::is_string));
        match stops {
            None => return Err(invalid("stop_sequences must be an array of strings")),
            Some(s) if s.len() > 5 => {
                return Err(invalid("stop_sequences can contain at most 5 elements"));
            }
            Some(_) => {}
        }
    }
    if let Some(v) = opt(body, "response_format") {
        let rf = object("response_format", v)?;
        one_of(rf, "type", "response_format.type", &["text", "json_object"])?;
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => known(rf, &["type", "json_schema"], "chat")?,
            Some(_) => known(rf, &["type"], "chat")?,
            None => return Err(invalid("response_format.type is required")),
        }
        if opt(rf, "json_schema").is_some_and(|s| !s.is_object()) {
            return Err(invalid("response_format.json_schema must be an object"));
        }
    }
    if let Some(v) = opt(body, "thinking") {
        let th = object("thinking", v)?;
        known(th, &["type", "token_budget"], "chat")?;
        one_of(th, "type", "thinking.type", &["enabled", "disabled"])?;
        integer(th, "token_budget", 1, i64::MAX)?;
    }
    if let Some(v) = opt(body, "citation_options") {
        let co = object("citation_options", v)?;
        known(co, &["mode"], "chat")?;
        one_of(
            co,
            "mode",
            "citation_options.mode",
            &["ENABLED", "DISABLED", "FAST", "ACCURATE", "OFF"],
        )?;
    }
    for (i, d) in opt(body, "documents")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Value::Object(doc) = d {
            known(doc, &["data", "id"], "chat")?;
        } else if !d.is_string() {
            return Err(invalid(format!(
                "documents[{i}] must be a string or an object"
            )));
        }
    }
    Ok(())
}

fn tools(v: Option<&Value>) -> Check {
    let Some(v) = v else { return Ok(()) };
    let list = v
        .as_array()
        .ok_or_else(|| invalid("tools must be an array"))?;
    for (i, t) in list.iter().enumerate() {
        let at = format!("tools[{i}]");
        let tool = object(&at, t)?;
        known(tool, &["type", "function"], "chat")?;
        one_of(tool, "type", &format!("{at}.type"), &["function"])?;
        let f = object(
            &format!("{at}.function"),
            tool.get("function").unwrap_or(&Value::Null),
        )?;
        known(f, &["name", "description", "parameters"], "chat")?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(invalid(format!(
                "{at}.function.name must match ^[a-zA-Z0-9_-]+$"
            )));
        }
        if opt(f, "description").is_some_and(|d| !d.is_string()) {
            return Err(invalid(format!(
                "{at}.function.description must be a string"
            )));
        }
        if opt(f, "parameters").is_some_and(|p| !p.is_object()) {
            return Err(invalid(format!(
                "{at}.function.parameters must be an object"
            )));
        }
    }
    Ok(())
}
