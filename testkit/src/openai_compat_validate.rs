//! Validation of OpenAI Chat Completions requests (fake OpenAI-compatible server and Azure), with OpenAI's texts.

use serde_json::{Map, Value, json};

use crate::reply::Reply;

/// A 400 `invalid_request_error` in OpenAI's envelope.
#[derive(Debug)]
pub(crate) struct Invalid {
    pub(crate) message: String,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<&'static str>,
}

pub(crate) type Check = Result<(), Invalid>;

impl Invalid {
    pub(crate) fn new(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&'static str>,
    ) -> Self {
        Invalid {
            message: message.into(),
            param: param.map(str::to_string),
            code,
        }
    }

    pub(crate) fn reply(&self) -> Reply {
        oai_error(
            400,
            &self.message,
            "invalid_request_error",
            self.param.as_deref(),
            self.code,
        )
    }
}

/// `{"error": {"message", "type", "param", "code"}}` with this status.
pub(crate) fn oai_error(
    status: u16,
    message: &str,
    ty: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Reply {
    let body = json!({"error": {"message": message, "type": ty, "param": param, "code": code}});
    Reply::json(status, body)
}

/// How OpenAI names a JSON value's type in its messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a decimal",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn invalid_type(param: &str, expected: &str, v: &Value) -> Invalid {
    let msg = format!(
        "Invalid type for '{param}': expected {expected}, but got {} instead.",
        kind(v)
    );
    Invalid::new(msg, Some(param), Some("invalid_type"))
}

pub(crate) fn missing(param: &str) -> Invalid {
    let msg = format!("Missing required parameter: '{param}'.");
    Invalid::new(msg, Some(param), Some("missing_required_parameter"))
}

pub(crate) fn invalid_value(param: &str, got: &str, supported: &[&str]) -> Invalid {
    let quoted: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
    let list = match quoted.split_last() {
        Some((last, rest)) if rest.len() >= 2 => format!("{}, and {last}", rest.join(", ")),
        Some((last, rest)) if rest.len() == 1 => format!("{} and {last}", rest[0]),
        _ => quoted.concat(),
    };
    let msg = format!("Invalid value: '{got}'. Supported values are: {list}.");
    Invalid::new(msg, Some(param), Some("invalid_value"))
}

/// A decimal within `[min, max]`.
pub(crate) fn decimal(obj: &Map<String, Value>, key: &str, min: f64, max: f64) -> Check {
    let Some(v) = present(obj, key) else {
        return Ok(());
    };
    let x = v
        .as_f64()
        .ok_or_else(|| invalid_type(key, "a decimal", v))?;
    let (word, bound, code) = if x < min {
        (
            "below minimum",
            format!(">= {min}"),
            "decimal_below_min_value",
        )
    } else if x > max {
        (
            "above maximum",
            format!("<= {max}"),
            "decimal_above_max_value",
        )
    } else {
        return Ok(());
    };
    let msg = format!(
        "Invalid '{key}': decimal {word} value. Expected a value {bound}, but got {v} instead."
    );
    Err(Invalid::new(msg, Some(key), Some(code)))
}

/// An integer within `[min, max]`.
pub(crate) fn integer(obj: &Map<String, Value>, key: &str, min: i64, max: i64) -> Check {
    let Some(v) = present(obj, key) else {
        return Ok(());
    };
    let x = v
        .as_i64()
        .ok_or_else(|| invalid_type(key, "an integer", v))?;
    let (word, bound, code) = if x < min {
        (
            "below minimum",
            format!(">= {min}"),
            "integer_below_min_value",
        )
    } else if x > max {
        (
            "above maximum",
            format!("<= {max}"),
            "integer_above_max_value",
        )
    } else {
        return Ok(());
    };
    let msg = format!(
        "Invalid '{key}': integer {word} value. Expected a value {bound}, but got {x} instead."
    );
    Err(Invalid::new(msg, Some(key), Some(code)))
}

pub(crate) fn boolean(obj: &Map<String, Value>, key: &str) -> Check {
    match present(obj, key) {
        Some(v) if !v.is_boolean() => Err(invalid_type(key, "a boolean", v)),
        _ => Ok(()),
    }
}

/// The value of `key` unless absent or `null` (OpenAI treats `null` as "not given").
pub(crate) fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// `stop`: a string or up to 4 strings.
pub(crate) fn stop(obj: &Map<String, Value>) -> Check {
    match present(obj, "stop") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(items)) => {
            if items.len() > 4 {
                let msg = format!(
                    "Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length {} instead.",
                    items.len()
                );
                return Err(Invalid::new(
                    msg,
                    Some("stop"),
                    Some("array_above_max_length"),
                ));
            }
            items.iter().enumerate().try_for_each(|(i, s)| match s {
                Value::String(_) => Ok(()),
                other => Err(invalid_type(&format!("stop[{i}]"), "a string", other)),
            })
        }
        Some(other) => Err(invalid_type(
            "stop",
            "a string or an array of strings",
            other,
        )),
    }
}

/// `stream` / `stream_options` (only allowed with streaming).
pub(crate) fn stream_fields(obj: &Map<String, Value>) -> Check {
    boolean(obj, "stream")?;
    let Some(opts) = present(obj, "stream_options") else {
        return Ok(());
    };
    let opts = opts
        .as_object()
        .ok_or_else(|| invalid_type("stream_options", "an object", opts))?;
    if present(obj, "stream").and_then(Value::as_bool) != Some(true) {
        let msg = "The 'stream_options' parameter is only allowed when 'stream' is enabled.";
        return Err(Invalid::new(msg, Some("stream_options"), None));
    }
    for key in ["include_usage", "include_obfuscation"] {
        if let Some(v) = present(opts, key).filter(|v| !v.is_boolean()) {
            return Err(invalid_type(
                &format!("stream_options.{key}"),
                "a boolean",
                v,
            ));
        }
    }
    Ok(())
}

/// The top-level fields of a chat request other than `messages` (checked by the caller).
pub(crate) fn chat_fields(obj: &Map<String, Value>) -> Check {
    decimal(obj, "temperature", 0.0, 2.0)?;
    decimal(obj, "top_p", 0.0, 1.0)?;
    decimal(obj, "presence_penalty", -2.0, 2.0)?;
    decimal(obj, "frequency_penalty", -2.0, 2.0)?;
    integer(obj, "n", 1, 128)?;
    integer(obj, "max_tokens", 1, i64::MAX)?;
    integer(obj, "max_completion_tokens", 1, i64::MAX)?;
    integer(obj, "seed", i64::MIN, i64::MAX)?;
    boolean(obj, "logprobs")?;
    integer(obj, "top_logprobs", 0, 20)?;
    if present(obj, "top_logprobs").is_some()
        && present(obj, "logprobs").and_then(Value::as_bool) != Some(true)
    {
        let msg = "Invalid value for 'logprobs': must be true when 'top_logprobs' is specified.";
        return Err(Invalid::new(msg, Some("logprobs"), Some("invalid_value")));
    }
    stop(obj)?;
    stream_fields(obj)?;
    if let Some(v) = present(obj, "user").filter(|v| !v.is_string()) {
        return Err(invalid_type("user", "a string", v));
    }
    if let Some(v) = present(obj, "logit_bias").filter(|v| !v.is_object()) {
        return Err(invalid_type("logit_bias", "an object", v));
    }
    tools(obj)?;
    crate::openai_compat_messages::response_format(obj)
}

fn tools(obj: &Map<String, Value>) -> Check {
    let mut names = Vec::new();
    if let Some(v) = present(obj, "tools") {
        let list = v
            .as_array()
            .ok_or_else(|| invalid_type("tools", "an array", v))?;
        if list.is_empty() {
            let msg = "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an empty array instead.";
            return Err(Invalid::new(msg, Some("tools"), Some("empty_array")));
        }
        for (i, tool) in list.iter().enumerate() {
            let p = format!("tools[{i}]");
            let t = tool
                .as_object()
                .ok_or_else(|| invalid_type(&p, "an object", tool))?;
            match t.get("type").and_then(Value::as_str) {
                None => return Err(missing(&format!("{p}.type"))),
                Some("function") => {}
                Some("custom") => continue,
                Some(other) => {
                    return Err(invalid_value(
                        &format!("{p}.type"),
                        other,
                        &["function", "custom"],
                    ));
                }
            }
            let f = match t.get("function") {
                None => return Err(missing(&format!("{p}.function"))),
                Some(Value::Object(f)) => f,
                Some(other) => {
                    return Err(invalid_type(&format!("{p}.function"), "an object", other));
                }
            };
            let np = format!("{p}.function.name");
            let name = match f.get("name") {
                None => return Err(missing(&np)),
                Some(Value::String(s)) => s.as_str(),
                Some(other) => return Err(invalid_type(&np, "a string", other)),
            };
            if name.len() > 64 {
                let msg = format!(
                    "Invalid '{np}': string too long. Expected a string with maximum length 64, but got a string with length {} instead.",
                    name.len()
                );
                return Err(Invalid::new(
                    msg,
                    Some(&np),
                    Some("string_above_max_length"),
                ));
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                let msg = format!(
                    "Invalid '{np}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
                );
                return Err(Invalid::new(msg, Some(&np), Some("invalid_value")));
            }
            if let Some(params) = present(f, "parameters").filter(|v| !v.is_object()) {
                return Err(invalid_type(
                    &format!("{p}.function.parameters"),
                    "an object",
                    params,
                ));
            }
            names.push(name.to_string());
        }
    }
    let only_with_tools = |key: &str| {
        let msg = format!(
            "Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified."
        );
        Invalid::new(msg, Some(key), None)
    };
    if let Some(choice) = present(obj, "tool_choice") {
        if names.is_empty() && present(obj, "tools").is_none() {
            return Err(only_with_tools("tool_choice"));
        }
        match choice {
            Value::String(s) if ["none", "auto", "required"].contains(&s.as_str()) => {}
            Value::String(s) => {
                return Err(invalid_value(
                    "tool_choice",
                    s,
                    &["none", "auto", "required"],
                ));
            }
            Value::Object(c) => {
                let name = c
                    .get("function")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str);
                match name {
                    None => return Err(missing("tool_choice.function.name")),
                    Some(n) if !names.iter().any(|x| x == n) => {
                        let msg = format!(
                            "Invalid value for 'tool_choice': function '{n}' not found in 'tools'."
                        );
                        return Err(Invalid::new(msg, Some("tool_choice"), None));
                    }
                    Some(_) => {}
                }
            }
            other => return Err(invalid_type("tool_choice", "a string or an object", other)),
        }
    }
    if present(obj, "parallel_tool_calls").is_some() {
        boolean(obj, "parallel_tool_calls")?;
        if present(obj, "tools").is_none() {
            return Err(only_with_tools("parallel_tool_calls"));
        }
    }
    Ok(())
}
