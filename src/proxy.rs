//! One OpenAI call through a mapping: render the upstream request, send it, translate back.

use std::sync::Arc;
use std::time::Instant;

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use crate::body::{ProxyBody, RewriteBody, full};
use crate::error::ProxyError;
use crate::mapping::{Mapping, Op};
use crate::openai::{self, Kind};
use crate::rewrite::{StreamRewriter, eval_fields};
use crate::telemetry::Metrics;
use crate::upstream::{
    UpstreamClient, answered_json, build_request, read_body, send, snippet, upstream_error,
};

/// Everything one call needs.
pub struct Call<'a> {
    pub mapping: &'a Arc<Mapping>,
    pub client: &'a UpstreamClient,
    pub metrics: &'a Metrics,
    pub op: Op,
    /// The OpenAI request, its `model` already resolved to the upstream's id.
    pub request: Value,
    /// The model as the client named it: what responses report.
    pub client_model: String,
    pub client_headers: &'a HeaderMap,
    pub started: Instant,
}

/// Runs a chat, completion or embeddings call. Errors before the first byte come back as `Err`.
pub async fn run(call: Call<'_>) -> Result<Response<ProxyBody>, ProxyError> {
    let mapping = call.mapping;
    let op = call.op;
    let route = mapping.route(op).ok_or_else(|| ProxyError::NotFound {
        message: format!("mapping {:?} has no {} route", mapping.name, op.name()),
    })?;
    let stream = call
        .request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if stream && route.stream.is_none() {
        return Err(ProxyError::BadRequest {
            message: format!(
                "mapping {:?} does not support streaming for {}",
                mapping.name,
                op.name()
            ),
            param: Some("stream".into()),
        });
    }
    let include_usage = mapping.always_include_usage
        || call
            .request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let upstream_req = build_request(mapping, route, &call.request, call.client_headers, stream)?;
    tracing::debug!(uri = %upstream_req.uri(), "upstream request");
    let sent = Instant::now();
    let response = send(mapping, call.client, upstream_req).await?;
    call.metrics
        .upstream_duration
        .with_label_values(&[&mapping.name, op.name()])
        .observe(sent.elapsed().as_secs_f64());
    if !response.status().is_success() {
        return Err(upstream_error(mapping, response).await);
    }
    if stream && answered_json(&response, route) {
        // The upstream ignored the stream request or failed with a JSON body: nothing has
        // reached the client yet, so this can still be a plain HTTP error.
        let body = read_body(response.into_body(), mapping.upstream.idle_timeout).await?;
        return Err(ProxyError::BadUpstreamResponse {
            message: format!(
                "the upstream answered a stream request with a JSON body: {}",
                snippet(&body)
            ),
        });
    }
    let request = Arc::new(call.request);
    if stream {
        let kind = if op == Op::Completions {
            Kind::Text
        } else {
            Kind::Chat
        };
        let rewriter = StreamRewriter::new(
            Arc::clone(mapping),
            op,
            request,
            kind,
            &call.client_model,
            include_usage,
        )
        .ok_or_else(|| ProxyError::BadRequest {
            message: "this mapping does not support streaming".into(),
            param: Some("stream".into()),
        })?;
        let body = RewriteBody::new(
            response.into_body(),
            rewriter,
            mapping,
            op.name(),
            call.metrics.clone(),
            call.started,
        );
        let mut resp = Response::new(body.boxed_unsync());
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert("cache-control", HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(resp);
    }
    let normalized = read_normalized(mapping, op, response, &request).await?;
    let (body, usage) = match op {
        Op::Chat => openai::completion(&call.client_model, &normalized),
        Op::Completions => openai::text_completion(&call.client_model, &normalized),
        Op::Embeddings => {
            let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
            openai::embeddings(&call.client_model, &normalized, base64)?
        }
        Op::Models => unreachable!("model listings go through list_models"),
    };
    call.metrics.count_tokens(&mapping.name, &usage);
    let mut resp = Response::new(full(body.to_string()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// Reads a whole upstream JSON answer and applies the route's `response` fields to it.
async fn read_normalized(
    mapping: &Mapping,
    op: Op,
    response: Response<hyper::body::Incoming>,
    request: &Value,
) -> Result<Map<String, Value>, ProxyError> {
    let route = mapping.route(op).expect("checked by the caller");
    let body = read_body(response.into_body(), mapping.upstream.idle_timeout).await?;
    let parsed: Value =
        serde_json::from_slice(&body).map_err(|_| ProxyError::BadUpstreamResponse {
            message: format!(
                "the upstream answered with a body that is not JSON: {}",
                snippet(&body)
            ),
        })?;
    Ok(eval_fields(&route.response, &parsed, request, &Value::Null))
}

/// The upstream's own model listing through the mapping's `models` route, normalized to
/// `[{id, created?, owned_by?}]`.
pub async fn list_models(
    mapping: &Mapping,
    client: &UpstreamClient,
    headers: &HeaderMap,
) -> Result<Vec<Value>, ProxyError> {
    let route = mapping
        .route(Op::Models)
        .ok_or_else(|| ProxyError::NotFound {
            message: format!("mapping {:?} has no models route", mapping.name),
        })?;
    let request = Value::Object(Map::new());
    let req = build_request(mapping, route, &request, headers, false)?;
    let response = send(mapping, client, req).await?;
    if !response.status().is_success() {
        return Err(upstream_error(mapping, response).await);
    }
    let normalized = read_normalized(mapping, Op::Models, response, &request).await?;
    match normalized.get("models") {
        Some(Value::Array(items)) => Ok(items
            .iter()
            .filter(|m| m.get("id").is_some_and(Value::is_string))
            .cloned()
            .collect()),
        _ => Err(ProxyError::BadUpstreamResponse {
            message: "the upstream model listing did not give a list of models".into(),
        }),
    }
}
