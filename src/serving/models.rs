//! The model listings: `GET /NAME/v1/models`, and on the unified surface every mapping's models.

use std::time::Duration;

use http::{HeaderMap, Response, StatusCode};
use serde_json::{Value, json};

use crate::error::ProxyError;
use crate::serving::reply::text;
use crate::serving::state::{Loaded, MappingSet, State};
use crate::translate::body::ProxyBody;
use crate::translate::proxy::{self};

/// How long a model listing may take: LibreChat gives up after 5 s.
pub const MODEL_LIST_TIMEOUT: Duration = Duration::from_secs(4);

/// `GET /NAME/v1/models`, or on the unified surface every mapping's models as `NAME/id`.
pub async fn models(
    state: &State,
    set: &MappingSet,
    name: Option<&str>,
    headers: &http::HeaderMap,
) -> Result<Response<ProxyBody>, ProxyError> {
    let data = match name {
        Some(n) => model_list(state, &set.mappings[n], headers).await?,
        None => {
            let lists = futures_util::future::join_all(
                set.mappings.values().map(|l| model_list(state, l, headers)),
            )
            .await;
            let mut all = Vec::new();
            for (n, list) in set.mappings.keys().zip(lists) {
                for mut model in list.unwrap_or_default() {
                    let id = format!("{n}/{}", model["id"].as_str().unwrap_or_default());
                    model["id"] = Value::String(id);
                    all.push(model);
                }
            }
            all
        }
    };
    Ok(text(
        StatusCode::OK,
        "application/json",
        json!({"object": "list", "data": data}).to_string(),
    ))
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
            state.clock.now_ms(),
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
