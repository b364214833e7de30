//! The Responses request's top-level fields other than items and tools: which become which
//! chat field, which the bridge keeps for itself, and which it refuses.

use serde_json::{Map, Value, json};

use super::{bad, note};
use crate::error::ProxyError;

/// Fields read by [`super::to_chat`] or [`copy`].
const MAPPED: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "text",
    "reasoning",
    "max_output_tokens",
    "temperature",
    "top_p",
    "top_logprobs",
    "stream",
    "include",
    "user",
    "safety_identifier",
    "previous_response_id",
];

/// Fields accepted and never forwarded: state the caller keeps (`store`, `metadata`), knobs
/// of OpenAI's own service, and the ones [`refuse_unbridged`] allows only when unset.
const OWN: &[&str] = &[
    "store",
    "metadata",
    "stream_options",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "truncation",
    "max_tool_calls",
    "context_management",
    "moderation",
    "image",
    "access_programs",
    "client_metadata",
    "background",
    "background_options",
    "conversation",
    "prompt",
];

/// `include` values the bridge honours: signatures of reasoning travel in
/// `encrypted_content`, input items are stored whole, logprobs are asked of the upstream.
const HONOURED_INCLUDES: &[&str] = &[
    "reasoning.encrypted_content",
    "message.input_image.image_url",
    "message.output_text.logprobs",
];

/// 400 for what needs OpenAI's own server: background runs, stored prompts, conversations.
pub(super) fn refuse_unbridged(obj: &Map<String, Value>) -> Result<(), ProxyError> {
    if boolean(obj, "background")? == Some(true) {
        return Err(bad(
            "background responses are not supported by this bridge: send `background: false`",
            "background",
        ));
    }
    let set = |key: &str| obj.get(key).is_some_and(|v| !v.is_null());
    for (key, what) in [
        ("background_options", "background responses are"),
        ("conversation", "the Conversations API is"),
        ("prompt", "stored prompts are"),
    ] {
        if set(key) {
            return Err(bad(
                format!("{what} not bridged: send the items themselves in `input`"),
                key,
            ));
        }
    }
    Ok(())
}

/// Copies the sampling, output and identity fields under their chat names, and notes every
/// field the Responses API does not have.
pub(super) fn copy(
    obj: &Map<String, Value>,
    chat: &mut Map<String, Value>,
    dropped: &mut Vec<String>,
) -> Result<(), ProxyError> {
    for key in ["temperature", "top_p"] {
        if let Some(v) = number(obj, key)? {
            chat.insert(key.into(), v.clone());
        }
    }
    if let Some(n) = unsigned(obj, "max_output_tokens")? {
        // The mappings read max_completion_tokens first; like max_output_tokens it bounds
        // reasoning and answer together.
        chat.insert("max_completion_tokens".into(), n.into());
    }
    if let Some(n) = unsigned(obj, "top_logprobs")? {
        if n > 20 {
            return Err(bad(
                "`top_logprobs` must be between 0 and 20",
                "top_logprobs",
            ));
        }
        chat.insert("logprobs".into(), Value::Bool(true));
        chat.insert("top_logprobs".into(), n.into());
    }
    // The ledger reads `user`; safety_identifier is its successor.
    let user = match string(obj, "user")? {
        Some(u) => Some(u),
        None => string(obj, "safety_identifier")?,
    };
    if let Some(u) = user {
        chat.insert("user".into(), Value::String(u.into()));
    }
    if let Some(reasoning) = object(obj, "reasoning")?
        && let Some(effort) = string(reasoning, "effort")
            .map_err(|_| bad("`reasoning.effort` must be a string", "reasoning.effort"))?
    {
        chat.insert("reasoning_effort".into(), Value::String(effort.into()));
    }
    if let Some(text) = object(obj, "text")? {
        text_controls(text, chat)?;
    }
    match obj.get("include") {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            for (i, v) in values.iter().enumerate() {
                let Some(v) = v.as_str() else {
                    return Err(bad(
                        "`include` values must be strings",
                        format!("include[{i}]"),
                    ));
                };
                if v == "message.output_text.logprobs" {
                    chat.insert("logprobs".into(), Value::Bool(true));
                } else if !HONOURED_INCLUDES.contains(&v) {
                    note(dropped, &format!("include:{v}"));
                }
            }
        }
        Some(_) => return Err(bad("`include` must be an array of strings", "include")),
    }
    if let Some(stream) = boolean(obj, "stream")? {
        chat.insert("stream".into(), Value::Bool(stream));
        if stream {
            chat.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    boolean(obj, "store")?;
    object(obj, "metadata")?;
    for key in obj.keys() {
        if !MAPPED.contains(&key.as_str()) && !OWN.contains(&key.as_str()) {
            note(dropped, key);
        }
    }
    Ok(())
}

/// `text.format` as `response_format`, `text.verbosity` as `verbosity`.
fn text_controls(
    text: &Map<String, Value>,
    chat: &mut Map<String, Value>,
) -> Result<(), ProxyError> {
    let format = object(text, "format")
        .map_err(|_| bad("`text.format` must be an object", "text.format"))?;
    if let Some(format) = format {
        let field = |key: &str| format.get(key).filter(|v| !v.is_null());
        match field("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => {
                chat.insert("response_format".into(), json!({"type": "json_object"}));
            }
            Some("json_schema") => {
                let Some(name) = field("name").and_then(Value::as_str) else {
                    return Err(bad(
                        "a json_schema format needs a string `name`",
                        "text.format.name",
                    ));
                };
                let Some(schema) = field("schema").filter(|s| s.is_object()) else {
                    return Err(bad(
                        "a json_schema format needs a `schema` object",
                        "text.format.schema",
                    ));
                };
                let mut spec = json!({"name": name, "schema": schema});
                if let Some(strict) = field("strict").and_then(Value::as_bool) {
                    spec["strict"] = Value::Bool(strict);
                }
                if let Some(d) = field("description").and_then(Value::as_str) {
                    spec["description"] = Value::String(d.into());
                }
                chat.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": spec}),
                );
            }
            _ => {
                return Err(bad(
                    "`text.format.type` must be text, json_object or json_schema",
                    "text.format.type",
                ));
            }
        }
    }
    match text.get("verbosity") {
        None | Some(Value::Null) => {}
        Some(Value::String(v)) => {
            chat.insert("verbosity".into(), Value::String(v.clone()));
        }
        Some(_) => return Err(bad("`text.verbosity` must be a string", "text.verbosity")),
    }
    Ok(())
}

/// `key` as a boolean; absent and `null` are `None`, any other type a 400.
pub(super) fn boolean(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, ProxyError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(format!("`{key}` must be a boolean"), key)),
    }
}

fn number<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Value>, ProxyError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Number(_)) => Ok(Some(v)),
        Some(_) => Err(bad(format!("`{key}` must be a number"), key)),
    }
}

fn unsigned(obj: &Map<String, Value>, key: &str) -> Result<Option<u64>, ProxyError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("`{key}` must be a non-negative integer"), key)),
    }
}

fn string<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ProxyError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(bad(format!("`{key}` must be a string"), key)),
    }
}

fn object<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a Map<String, Value>>, ProxyError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(bad(format!("`{key}` must be an object"), key)),
    }
}
