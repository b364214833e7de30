//! Request validation of the fake Anthropic Messages API, with the real API's error texts.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::anthropic_messages::{messages_ok, thinking_first};

pub(crate) type Check = Result<(), String>;

const TOP_LEVEL: &[&str] = &[
    "model",
    "max_tokens",
    "messages",
    "system",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "stream",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
    "service_tier",
    "output_config",
    "container",
    "cache_control",
    "inference_geo",
];
pub(crate) const MEDIA_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// Validates a request that asks for beta features (an `anthropic-beta` header): the beta
/// surface (context management, deferred tools, new block types...) is not modelled, so only
/// what every request needs is checked.
pub(crate) fn validate_beta(body: &Value) -> Check {
    let obj = body
        .as_object()
        .ok_or("Input should be a valid dictionary")?;
    if obj
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err("model: Field required".into());
    }
    if obj
        .get("max_tokens")
        .and_then(Value::as_u64)
        .is_none_or(|n| n == 0)
    {
        return Err("max_tokens: Field required".into());
    }
    match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => Ok(()),
        _ => Err("messages: Field required".into()),
    }
}

/// Validates a `POST /v1/messages` body; `Err` carries the `invalid_request_error` message.
pub(crate) fn validate(body: &Value) -> Check {
    let obj = body
        .as_object()
        .ok_or("Input should be a valid dictionary")?;
    extra_keys("", obj, TOP_LEVEL)?;
    match obj.get("model") {
        None => return Err("model: Field required".into()),
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(Value::String(_)) => {
            return Err("model: String should have at least 1 character".into());
        }
        Some(_) => return Err("model: Input should be a valid string".into()),
    }
    let max_tokens = match obj.get("max_tokens") {
        None => return Err("max_tokens: Field required".into()),
        Some(v) => integer("max_tokens", v, 1)?,
    };
    let messages = match obj.get("messages") {
        None => return Err("messages: Field required".into()),
        Some(Value::Array(m)) => m,
        Some(_) => return Err("messages: Input should be a valid list".into()),
    };
    optional(obj, "system", system)?;
    optional(obj, "stop_sequences", stop_sequences)?;
    optional(obj, "temperature", |v| number("temperature", v, 0.0, 1.0))?;
    optional(obj, "top_p", |v| number("top_p", v, 0.0, 1.0))?;
    optional(obj, "top_k", |v| integer("top_k", v, 0).map(drop))?;
    optional(obj, "stream", |v| {
        v.as_bool()
            .map(drop)
            .ok_or("stream: Input should be a valid boolean".into())
    })?;
    optional(obj, "metadata", metadata)?;
    optional(obj, "thinking", |v| thinking(v, max_tokens))?;
    optional(obj, "service_tier", |v| match v.as_str() {
        Some("auto" | "standard_only") => Ok(()),
        _ => Err("service_tier: Input should be 'auto' or 'standard_only'".into()),
    })?;
    let mut names = HashSet::new();
    optional(obj, "tools", |v| tools(v, &mut names))?;
    optional(obj, "tool_choice", |v| tool_choice(v, &names))?;
    messages_ok(messages)?;
    let thinking_on = obj
        .get("thinking")
        .and_then(|t| t.get("type")?.as_str())
        .is_some_and(|t| t == "enabled" || t == "adaptive");
    if thinking_on {
        thinking_first(messages)?;
    }
    Ok(())
}

fn optional(obj: &Map<String, Value>, key: &str, mut check: impl FnMut(&Value) -> Check) -> Check {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) => check(v),
    }
}

pub(crate) fn extra_keys(path: &str, obj: &Map<String, Value>, allowed: &[&str]) -> Check {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) if path.is_empty() => Err(format!("{k}: Extra inputs are not permitted")),
        Some(k) => Err(format!("{path}.{k}: Extra inputs are not permitted")),
        None => Ok(()),
    }
}

fn integer(path: &str, v: &Value, min: i64) -> Result<i64, String> {
    let n = v
        .as_i64()
        .ok_or(format!("{path}: Input should be a valid integer"))?;
    if n < min {
        return Err(format!(
            "{path}: Input should be greater than or equal to {min}"
        ));
    }
    Ok(n)
}

fn number(path: &str, v: &Value, min: f64, max: f64) -> Check {
    let n = v
        .as_f64()
        .ok_or(format!("{path}: Input should be a valid number"))?;
    if n < min {
        return Err(format!(
            "{path}: Input should be greater than or equal to {min}"
        ));
    }
    if n > max {
        return Err(format!(
            "{path}: Input should be less than or equal to {max}"
        ));
    }
    Ok(())
}

pub(crate) fn string<'a>(path: &str, v: Option<&'a Value>) -> Result<&'a str, String> {
    match v {
        None => Err(format!("{path}: Field required")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("{path}: Input should be a valid string")),
    }
}

pub(crate) fn object<'a>(
    path: &str,
    v: Option<&'a Value>,
) -> Result<&'a Map<String, Value>, String> {
    match v {
        None => Err(format!("{path}: Field required")),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(format!("{path}: Input should be a valid dictionary")),
    }
}

pub(crate) fn text_block(path: &str, block: &Map<String, Value>, scope: &str) -> Check {
    extra_keys(path, block, &["type", "text", "cache_control", "citations"])?;
    let text = string(&format!("{path}.text"), block.get("text"))?;
    if text.is_empty() {
        return Err(format!("{scope}: text content blocks must be non-empty"));
    }
    if text.trim().is_empty() {
        return Err(format!(
            "{scope}: text content blocks must contain non-whitespace text"
        ));
    }
    Ok(())
}

fn system(v: &Value) -> Check {
    match v {
        Value::String(_) => Ok(()),
        Value::Array(blocks) => blocks.iter().enumerate().try_for_each(|(i, b)| {
            let path = format!("system.{i}");
            let block = object(&path, Some(b))?;
            if block.get("type").and_then(Value::as_str) != Some("text") {
                return Err(format!("{path}.type: Input should be 'text'"));
            }
            text_block(&path, block, "system")
        }),
        _ => Err("system: Input should be a valid string or a valid list".into()),
    }
}

fn stop_sequences(v: &Value) -> Check {
    let list = v
        .as_array()
        .ok_or("stop_sequences: Input should be a valid list")?;
    for (i, s) in list.iter().enumerate() {
        let s = s.as_str().ok_or(format!(
            "stop_sequences.{i}: Input should be a valid string"
        ))?;
        if s.trim().is_empty() {
            return Err("stop_sequences: each stop sequence must contain non-whitespace".into());
        }
    }
    Ok(())
}

fn metadata(v: &Value) -> Check {
    let obj = object("metadata", Some(v))?;
    extra_keys("metadata", obj, &["user_id"])?;
    match obj.get("user_id") {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err("metadata.user_id: Input should be a valid string".into()),
    }
}

fn thinking(v: &Value, max_tokens: i64) -> Check {
    let obj = object("thinking", Some(v))?;
    match obj.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            extra_keys("thinking.enabled", obj, &["type", "budget_tokens"])?;
            let path = "thinking.enabled.budget_tokens";
            let budget = integer(path, obj.get("budget_tokens").ok_or(format!("{path}: Field required"))?, 1024)?;
            if budget >= max_tokens {
                return Err("`max_tokens` must be greater than `thinking.budget_tokens`".into());
            }
            Ok(())
        }
        Some("disabled" | "adaptive") => Ok(()),
        _ => Err("thinking: Input tag found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'".into()),
    }
}

fn tools(v: &Value, names: &mut HashSet<String>) -> Check {
    let list = v.as_array().ok_or("tools: Input should be a valid list")?;
    for (i, tool) in list.iter().enumerate() {
        let obj = object(&format!("tools.{i}"), Some(tool))?;
        match obj.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(t) if t.starts_with("web_search_") && TOOL_TYPES.contains(&t) => {
                web_search(&format!("tools.{i}.{t}"), obj, names)?;
                continue;
            }
            Some(t) if TOOL_TYPES.contains(&t) => continue,
            Some(t) => {
                let expected: Vec<String> = TOOL_TYPES.iter().map(|t| format!("'{t}'")).collect();
                return Err(format!(
                    "tools.{i}: Input tag '{t}' found using 'type' does not match any of the expected tags: {}",
                    expected.join(", ")
                ));
            }
        }
        let path = format!("tools.{i}.custom");
        extra_keys(
            &path,
            obj,
            &[
                "type",
                "name",
                "description",
                "input_schema",
                "cache_control",
                "strict",
            ],
        )?;
        let name = string(&format!("{path}.name"), obj.get("name"))?;
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(format!(
                "{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
            ));
        }
        if obj.get("description").is_some_and(|d| !d.is_string()) {
            return Err(format!(
                "{path}.description: Input should be a valid string"
            ));
        }
        let schema = object(&format!("{path}.input_schema"), obj.get("input_schema"))?;
        if schema.get("type").and_then(Value::as_str) != Some("object") {
            return Err(format!(
                "{path}.input_schema.type: Input should be 'object'"
            ));
        }
        if !names.insert(name.to_string()) {
            return Err("tools: Tool names must be unique.".into());
        }
    }
    Ok(())
}

/// The tool `type` tags the API knows, as its error lists them (`custom` is a client tool; the
/// others are server or Anthropic-defined tools, versioned by date). The list up to
/// `web_fetch_20260209` is the real error's; the web search versions follow it.
const TOOL_TYPES: &[&str] = &[
    "bash_20250124",
    "code_execution_20250522",
    "code_execution_20250825",
    "code_execution_20260120",
    "custom",
    "memory_20250818",
    "text_editor_20250124",
    "text_editor_20250429",
    "text_editor_20250728",
    "tool_search_tool_bm25",
    "tool_search_tool_bm25_20251119",
    "tool_search_tool_regex",
    "tool_search_tool_regex_20251119",
    "web_fetch_20250910",
    "web_fetch_20260209",
    "web_search_20250305",
    "web_search_20260209",
];

/// The hosted web search tool: `{type, name: "web_search", max_uses?, allowed_domains?,
/// blocked_domains?, user_location?, cache_control?}`; its name counts among the tool names.
fn web_search(path: &str, obj: &Map<String, Value>, names: &mut HashSet<String>) -> Check {
    extra_keys(
        path,
        obj,
        &[
            "type",
            "name",
            "allowed_domains",
            "blocked_domains",
            "max_uses",
            "user_location",
            "cache_control",
            "defer_loading",
            "strict",
            "allowed_callers",
        ],
    )?;
    if string(&format!("{path}.name"), obj.get("name"))? != "web_search" {
        return Err(format!("{path}.name: Input should be 'web_search'"));
    }
    if let Some(n) = obj.get("max_uses").filter(|v| !v.is_null()) {
        integer(&format!("{path}.max_uses"), n, 1)?;
    }
    for key in ["allowed_domains", "blocked_domains"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                for (j, d) in list.iter().enumerate() {
                    string(&format!("{path}.{key}.{j}"), Some(d))?;
                }
            }
            Some(_) => return Err(format!("{path}.{key}: Input should be a valid list")),
        }
    }
    if let Some(location) = obj.get("user_location").filter(|v| !v.is_null()) {
        user_location(&format!("{path}.user_location"), location)?;
    }
    if !names.insert("web_search".to_string()) {
        return Err("tools: Tool names must be unique.".into());
    }
    Ok(())
}

/// `{type: "approximate", city?, region?, country?, timezone?}`; `country` is two letters.
fn user_location(path: &str, v: &Value) -> Check {
    let obj = object(path, Some(v))?;
    extra_keys(
        path,
        obj,
        &["type", "city", "region", "country", "timezone"],
    )?;
    if string(&format!("{path}.type"), obj.get("type"))? != "approximate" {
        return Err(format!("{path}.type: Input should be 'approximate'"));
    }
    for key in ["city", "region", "country", "timezone"] {
        let Some(value) = obj.get(key).filter(|v| !v.is_null()) else {
            continue;
        };
        let text = string(&format!("{path}.{key}"), Some(value))?;
        let (min, max) = if key == "country" { (2, 2) } else { (1, 255) };
        let n = text.chars().count();
        if n < min {
            let s = if min == 1 { "" } else { "s" };
            return Err(format!(
                "{path}.{key}: String should have at least {min} character{s}"
            ));
        }
        if n > max {
            return Err(format!(
                "{path}.{key}: String should have at most {max} characters"
            ));
        }
    }
    Ok(())
}

fn tool_choice(v: &Value, names: &HashSet<String>) -> Check {
    let obj = v
        .as_object()
        .ok_or("tool_choice: Input should be a valid dictionary or object")?;
    match obj.get("type").and_then(Value::as_str) {
        Some(t @ ("auto" | "any")) => extra_keys(&format!("tool_choice.{t}"), obj, &["type", "disable_parallel_tool_use"])?,
        Some("none") => extra_keys("tool_choice.none", obj, &["type"])?,
        Some("tool") => {
            extra_keys("tool_choice.tool", obj, &["type", "name", "disable_parallel_tool_use"])?;
            let name = string("tool_choice.tool.name", obj.get("name"))?;
            if !names.contains(name) {
                return Err(format!("tool_choice: Tool '{name}' not found in provided tools"));
            }
        }
        _ => return Err("tool_choice: Input tag found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'".into()),
    }
    match obj.get("disable_parallel_tool_use") {
        None | Some(Value::Bool(_)) => Ok(()),
        Some(_) => {
            Err("tool_choice.disable_parallel_tool_use: Input should be a valid boolean".into())
        }
    }
}
