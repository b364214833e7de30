//! Which operation and which mapping a request is for, and what a valid request looks like.
//!
//! Per-mapping paths name the mapping (`/NAME/v1/...`); the unified surface (`/v1/...`) routes
//! by model: `NAME/model` selects mapping NAME, otherwise the one mapping that declares the
//! model or matches it with an `options.serves` pattern.

use std::time::Duration;

use http::HeaderMap;
use serde_json::{Value, json};

use crate::error::ProxyError;
use crate::mapping::Op;
use crate::proxy;
use crate::server::{Loaded, MappingSet, State};

/// How long a model listing may take: LibreChat gives up after 5 s.
pub const MODEL_LIST_TIMEOUT: Duration = Duration::from_secs(4);

/// The operation of a path below `/v1/`.
pub fn op_for(rest: &[&str]) -> Option<Op> {
    match rest {
        ["chat", "completions"] => Some(Op::Chat),
        ["responses"] => Some(Op::Responses),
        ["completions"] => Some(Op::Completions),
        ["embeddings"] => Some(Op::Embeddings),
        ["models"] => Some(Op::Models),
        _ => None,
    }
}

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

/// On the unified surface: the mapping for `model`, and the model name that mapping sees.
pub fn pick_mapping<'s, 'm>(
    state: &'s MappingSet,
    model: &'m str,
) -> Result<(&'s str, &'m str), ProxyError> {
    if let Some((name, rest)) = model.split_once('/')
        && let Some((key, _)) = state.mappings.get_key_value(name)
    {
        return Ok((key.as_str(), rest));
    }
    // A declared id wins over a pattern; patterns decide only when no mapping declares it.
    let declared: Vec<&str> = state
        .mappings
        .iter()
        .filter(|(_, l)| l.mapping.models.iter().any(|m| m.id == model))
        .map(|(n, _)| n.as_str())
        .collect();
    let claimed: Vec<&str> = if declared.is_empty() {
        state
            .mappings
            .iter()
            .filter(|(_, l)| l.mapping.serves(model))
            .map(|(n, _)| n.as_str())
            .collect()
    } else {
        declared
    };
    match claimed.as_slice() {
        [one] => Ok((one, model)),
        [] => Err(model_not_found(format!(
            "no mapping serves the model {model:?}; name one explicitly as NAME/{model}, where NAME is one of: {}",
            state
                .mappings
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
        many => Err(ProxyError::BadRequest {
            message: format!(
                "the model {model:?} is served by several mappings ({}); name one explicitly, e.g. {}/{model}",
                many.join(", "),
                many[0]
            ),
            param: Some("model".into()),
        }),
    }
}

/// The models of one mapping: declared ones, then those its upstream lists (if it has a
/// `models` route). A listing that fails falls back to the declared models.
pub async fn model_list(
    state: &State,
    loaded: &Loaded,
    headers: &HeaderMap,
) -> Result<Vec<Value>, ProxyError> {
    let m = &loaded.mapping;
    let entry = |id: &str, created: Option<&Value>, owned_by: Option<&str>| {
        json!({
            "id": id,
            "object": "model",
            "created": created.and_then(Value::as_u64).unwrap_or(state.started),
            "owned_by": owned_by.unwrap_or(&m.name),
        })
    };
    let mut out: Vec<Value> = m
        .models
        .iter()
        .map(|d| entry(&d.id, None, d.owned_by.as_deref()))
        .collect();
    // An allow-list lists exactly what it allows.
    if m.model_list.is_none() || m.only_declared_models {
        return Ok(out);
    }
    let fetched = match tokio::time::timeout(
        MODEL_LIST_TIMEOUT,
        proxy::list_models(
            m,
            &loaded.client,
            &loaded.pool,
            headers,
            state.limits.max_upstream_body,
        ),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(ProxyError::Timeout {
            message: format!("the upstream model listing took longer than {MODEL_LIST_TIMEOUT:?}"),
        }),
    };
    match fetched {
        Ok(items) => {
            for item in items {
                let id = item["id"].as_str().unwrap_or_default();
                if !out.iter().any(|o| o["id"] == id) {
                    out.push(entry(
                        id,
                        item.get("created"),
                        item.get("owned_by").and_then(Value::as_str),
                    ));
                }
            }
            Ok(out)
        }
        Err(e) if !out.is_empty() => {
            tracing::warn!(mapping = %m.name, error = %e.to_json(), "model listing failed; serving the declared models");
            Ok(out)
        }
        Err(e) => Err(e),
    }
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
