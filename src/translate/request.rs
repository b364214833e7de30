//! What a valid OpenAI request looks like, per operation: the first check of every call, the
//! same for the server and for `rosetta test`.

use serde_json::Value;

use crate::error::ProxyError;
use crate::mapping::Op;

/// Parses and checks an OpenAI request body for `op`.
pub fn parse_request(op: Op, bytes: &[u8]) -> Result<Value, ProxyError> {
    let request: Value = serde_json::from_slice(bytes).map_err(|e| ProxyError::BadRequest {
        message: format!("the request body is not valid JSON: {e}"),
        param: None,
    })?;
    let bad = |message: &str, param: &str| ProxyError::BadRequest {
        message: message.into(),
        param: Some(param.into()),
    };
    let Some(obj) = request.as_object() else {
        return Err(ProxyError::BadRequest {
            message: "the request body must be a JSON object".into(),
            param: None,
        });
    };
    match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => {}
        _ => {
            return Err(bad(
                "`model` is required and must be a non-empty string",
                "model",
            ));
        }
    }
    match op {
        Op::Chat => match obj.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => {
                if m.iter()
                    .any(|msg| !msg.get("role").is_some_and(Value::is_string))
                {
                    return Err(bad("every message needs a string `role`", "messages"));
                }
            }
            _ => {
                return Err(bad(
                    "`messages` is required and must be a non-empty array",
                    "messages",
                ));
            }
        },
        Op::Responses => {
            let input = match obj.get("input") {
                Some(Value::String(_)) => true,
                Some(Value::Array(items)) => !items.is_empty(),
                None | Some(Value::Null) => false,
                Some(_) => {
                    return Err(bad(
                        "`input` must be a string or an array of items",
                        "input",
                    ));
                }
            };
            let previous = obj
                .get("previous_response_id")
                .is_some_and(|p| !p.is_null());
            if !input && !previous {
                return Err(bad(
                    "`input` is required: a string or a non-empty array of items",
                    "input",
                ));
            }
        }
        Op::Messages | Op::CountTokens => {
            match obj.get("messages") {
                Some(Value::Array(m)) if !m.is_empty() => {}
                _ => {
                    return Err(bad(
                        "messages: Field required (a non-empty array)",
                        "messages",
                    ));
                }
            }
            // A count is of a message's input: it has no `max_tokens`.
            if op == Op::Messages
                && obj
                    .get("max_tokens")
                    .and_then(Value::as_u64)
                    .is_none_or(|n| n == 0)
            {
                return Err(bad(
                    "max_tokens: Field required (a positive integer)",
                    "max_tokens",
                ));
            }
        }
        Op::Completions | Op::Embeddings => {
            let field = if op == Op::Completions {
                "prompt"
            } else {
                "input"
            };
            let present = match obj.get(field) {
                Some(Value::String(_)) => true,
                Some(Value::Array(items)) => !items.is_empty(),
                _ => false,
            };
            if !present {
                return Err(bad(
                    &format!("`{field}` is required: a string or a non-empty array"),
                    field,
                ));
            }
        }
        Op::Models => {}
    }
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(bad(
            "`n` greater than 1 is not supported: ask for one choice per request",
            "n",
        ));
    }
    if obj
        .get("stream")
        .is_some_and(|s| !s.is_boolean() && !s.is_null())
    {
        return Err(bad("`stream` must be a boolean", "stream"));
    }
    if op == Op::Embeddings && obj.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(bad("embeddings do not stream", "stream"));
    }
    Ok(request)
}

/// A `model_not_found` error.
pub fn model_not_found(message: String) -> ProxyError {
    ProxyError::ModelNotFound { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(op: Op, b: &str) -> Option<String> {
        match parse_request(op, b.as_bytes()) {
            Err(ProxyError::BadRequest { param, .. }) => param,
            Ok(_) => Some("<ok>".into()),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_validation_per_operation() {
        assert_eq!(
            param(
                Op::Chat,
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
            )
            .as_deref(),
            Some("<ok>")
        );
        assert_eq!(param(Op::Chat, "{nope"), None);
        assert_eq!(
            param(Op::Chat, r#"{"messages":[{"role":"user"}]}"#).as_deref(),
            Some("model")
        );
        assert_eq!(
            param(Op::Chat, r#"{"model":"m","messages":[]}"#).as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(Op::Chat, r#"{"model":"m","messages":[{"content":"x"}]}"#).as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(
                Op::Chat,
                r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#
            )
            .as_deref(),
            Some("stream")
        );
        assert_eq!(
            param(
                Op::Chat,
                r#"{"model":"m","n":2,"messages":[{"role":"user"}]}"#
            )
            .as_deref(),
            Some("n")
        );
        assert_eq!(
            param(Op::Completions, r#"{"model":"m","prompt":"Say"}"#).as_deref(),
            Some("<ok>")
        );
        assert_eq!(
            param(Op::Completions, r#"{"model":"m"}"#).as_deref(),
            Some("prompt")
        );
        assert_eq!(
            param(Op::Embeddings, r#"{"model":"m","input":["a","b"]}"#).as_deref(),
            Some("<ok>")
        );
        assert_eq!(
            param(Op::Embeddings, r#"{"model":"m","input":[]}"#).as_deref(),
            Some("input")
        );
        assert_eq!(
            param(Op::Embeddings, r#"{"model":"m","input":"a","stream":true}"#).as_deref(),
            Some("stream")
        );
    }
}
