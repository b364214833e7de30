//! The request's other top-level fields: which become which chat field, which are state the
//! bridge keeps, and which are noted as left out.

use serde_json::{Map, Value, json};

use super::{TOP_K, bad, note};
use crate::error::ProxyError;

/// Fields read by [`super::to_chat`], [`super::tools::copy`] or [`copy`].
const MAPPED: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "thinking",
    "output_config",
    "stream",
];

/// Copies the sampling, output and identity fields under their chat names, and notes every
/// other field.
pub(super) fn copy(
    obj: &Map<String, Value>,
    chat: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ProxyError> {
    match obj.get("max_tokens").and_then(Value::as_u64) {
        Some(n) if n > 0 => {
            // Like max_tokens here, max_completion_tokens bounds reasoning and answer together.
            chat.insert("max_completion_tokens".into(), n.into());
        }
        _ => {
            return Err(bad(
                "max_tokens: Field required (a positive integer)",
                "max_tokens",
            ));
        }
    }
    for key in ["temperature", "top_p", "top_k"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                chat.insert(key.into(), v.clone());
            }
            Some(_) => return Err(bad(format!("{key}: must be a number"), key)),
        }
    }
    if chat.contains_key("top_k") {
        note(dropped, TOP_K);
    }
    match obj.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(s)) if s.iter().all(Value::is_string) => {
            if !s.is_empty() {
                chat.insert("stop".into(), Value::Array(s.clone()));
            }
        }
        Some(_) => {
            return Err(bad(
                "stop_sequences: must be an array of strings",
                "stop_sequences",
            ));
        }
    }
    if let Some(user) = obj.get("metadata").and_then(|m| m.get("user_id"))
        && let Some(user) = user.as_str().filter(|u| !u.is_empty())
    {
        chat.insert("user".into(), Value::String(user.into()));
    }
    if let Some(effort) = effort(obj)? {
        chat.insert("reasoning_effort".into(), Value::String(effort.into()));
    }
    if let Some(format) = obj.get("output_config").and_then(|c| c.get("format"))
        && format.get("type").and_then(Value::as_str) == Some("json_schema")
        && let Some(schema) = format.get("schema").filter(|s| s.is_object())
    {
        chat.insert(
            "response_format".into(),
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}),
        );
    }
    match obj.get("stream") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(stream)) => {
            chat.insert("stream".into(), Value::Bool(*stream));
            if *stream {
                chat.insert("stream_options".into(), json!({"include_usage": true}));
            }
        }
        Some(_) => return Err(bad("stream: must be a boolean", "stream")),
    }
    if obj.get("cache_control").is_some_and(|c| !c.is_null()) {
        note(dropped, "cache_control");
    }
    for key in obj.keys() {
        if !MAPPED.contains(&key.as_str()) && key != "cache_control" {
            note(dropped, key);
        }
    }
    Ok(())
}

/// The reasoning effort asked for: `thinking.enabled`'s token budget as a level, or an
/// adaptive thinking's `output_config.effort`. Thinking `disabled` (or none) asks for none.
fn effort(obj: &Map<String, Value>) -> Result<Option<&'static str>, ProxyError> {
    let thinking = match obj.get("thinking") {
        None | Some(Value::Null) => return Ok(None),
        Some(t) => t,
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let Some(budget) = thinking.get("budget_tokens").and_then(Value::as_u64) else {
                return Err(bad(
                    "thinking.budget_tokens: Field required",
                    "thinking.budget_tokens",
                ));
            };
            Ok(Some(match budget {
                0..4096 => "low",
                4096..16384 => "medium",
                _ => "high",
            }))
        }
        Some("adaptive") => {
            let effort = obj
                .get("output_config")
                .and_then(|c| c.get("effort"))
                .and_then(Value::as_str);
            Ok(Some(match effort {
                Some("low") => "low",
                Some("medium") => "medium",
                _ => "high",
            }))
        }
        Some("disabled") => Ok(None),
        _ => Err(bad(
            "thinking.type: must be enabled, adaptive or disabled",
            "thinking.type",
        )),
    }
}
