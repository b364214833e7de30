//! Which operation and which mapping a request is for.
//!
//! Per-mapping paths name the mapping (`/NAME/v1/...`); the unified surface (`/v1/...`) routes
//! by model: `NAME/model` selects mapping NAME, otherwise the one mapping that declares the
//! model or matches it with an `options.serves` pattern.

use std::time::Duration;

use http::HeaderMap;
use serde_json::{Value, json};

use crate::error::ProxyError;
use crate::mapping::Op;
use crate::serving::server::{Loaded, MappingSet, State};
use crate::translate::proxy;
use crate::translate::request::model_not_found;

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
