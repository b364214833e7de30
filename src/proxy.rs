//! One OpenAI call through a mapping: render the upstream request, send it, translate back.
//!
//! The phases that do not touch the network ([`prepare`], [`translate_whole`], [`rewriter`])
//! are pure and public: `rosetta test` runs golden cases through exactly these.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value};

use crate::body::{ProxyBody, RewriteBody, full};
use crate::error::ProxyError;
use crate::mapping::{Mapping, Op};
use crate::openai::{self, Kind, Usage};
use crate::rewrite::{StreamRewriter, eval_fields};
use crate::telemetry::Metrics;
use crate::trace;
use crate::upstream::{
    UpstreamClient, answered_json, build_request, header_object, read_body, send, snippet,
    upstream_error,
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
    /// The request id, when this call is logged end to end ([`crate::trace`]).
    pub trace: Option<String>,
}

/// The upstream request of a call, and how its answer must be read.
pub struct Prepared {
    pub request: Request<Full<Bytes>>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Renders the upstream request for an OpenAI request (pure).
pub fn prepare(
    mapping: &Mapping,
    op: Op,
    request: &Value,
    client_headers: &HeaderMap,
) -> Result<Prepared, ProxyError> {
    let route = mapping.route(op).ok_or_else(|| ProxyError::NotFound {
        message: format!("mapping {:?} has no {} route", mapping.name, op.name()),
    })?;
    let stream = request
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
        || request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let request = build_request(mapping, route, request, client_headers, stream)?;
    Ok(Prepared {
        request,
        stream,
        include_usage,
    })
}

/// Translates a whole (non-stream) upstream answer into the OpenAI body (pure).
pub fn translate_whole(
    mapping: &Mapping,
    op: Op,
    body: &[u8],
    headers: &Value,
    request: &Value,
    client_model: &str,
) -> Result<(Value, Usage), ProxyError> {
    let route = mapping.route(op).ok_or_else(|| ProxyError::NotFound {
        message: format!("mapping {:?} has no {} route", mapping.name, op.name()),
    })?;
    let parsed: Value =
        serde_json::from_slice(body).map_err(|_| ProxyError::BadUpstreamResponse {
            message: format!(
                "the upstream answered with a body that is not JSON: {}",
                snippet(body)
            ),
        })?;
    let normalized: Map<String, Value> =
        eval_fields(&route.response, &parsed, request, &Value::Null, headers);
    match op {
        Op::Chat => Ok(openai::completion(client_model, &normalized)),
        Op::Completions => Ok(openai::text_completion(client_model, &normalized)),
        Op::Embeddings => {
            let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
            openai::embeddings(client_model, &normalized, base64)
        }
        Op::Models => match normalized.get("models") {
            Some(Value::Array(items)) => {
                let models = items
                    .iter()
                    .filter(|m| m.get("id").is_some_and(Value::is_string))
                    .cloned()
                    .collect();
                Ok((Value::Array(models), Usage::default()))
            }
            _ => Err(ProxyError::BadUpstreamResponse {
                message: "the upstream model listing did not give a list of models".into(),
            }),
        },
    }
}

/// The stream rewriter for a call (pure).
pub fn rewriter(
    mapping: &Arc<Mapping>,
    op: Op,
    request: Arc<Value>,
    headers: Value,
    client_model: &str,
    include_usage: bool,
) -> Result<StreamRewriter, ProxyError> {
    let kind = if op == Op::Completions {
        Kind::Text
    } else {
        Kind::Chat
    };
    StreamRewriter::new(
        Arc::clone(mapping),
        op,
        request,
        headers,
        kind,
        client_model,
        include_usage,
    )
    .ok_or_else(|| ProxyError::BadRequest {
        message: "this mapping does not support streaming".into(),
        param: Some("stream".into()),
    })
}

/// `$headers` for the response templates: built only for mappings that read it.
fn upstream_headers(mapping: &Mapping, response: &Response<hyper::body::Incoming>) -> Value {
    if mapping.reads_headers {
        header_object(response.headers())
    } else {
        Value::Null
    }
}

/// Runs a chat, completion or embeddings call. Errors before the first byte come back as `Err`.
pub async fn run(call: Call<'_>) -> Result<Response<ProxyBody>, ProxyError> {
    let mapping = call.mapping;
    let op = call.op;
    let prepared = prepare(mapping, op, &call.request, call.client_headers)?;
    // The path only: query values may hold secrets from the environment.
    tracing::debug!(path = %prepared.request.uri().path(), "upstream request");
    if let Some(id) = &call.trace {
        let r = &prepared.request;
        tracing::info!(
            target: "rosetta::trace",
            id = %id,
            method = %r.method(),
            url = %trace::uri(r.uri()),
            headers = %trace::headers(r.headers()),
            body = %trace::text(&trace::full_bytes(r.body())),
            "upstream request"
        );
    }
    let sent = Instant::now();
    let response = send(mapping, call.client, prepared.request).await?;
    call.metrics
        .upstream_duration
        .with_label_values(&[&mapping.name, op.name()])
        .observe(sent.elapsed().as_secs_f64());
    if !response.status().is_success() {
        return Err(upstream_error(mapping, response).await);
    }
    let route = mapping.route(op).expect("prepare checked the route");
    let headers = upstream_headers(mapping, &response);
    if let Some(id) = &call.trace {
        tracing::info!(
            target: "rosetta::trace",
            id = %id,
            status = response.status().as_u16(),
            headers = %trace::headers(response.headers()),
            "upstream response"
        );
    }
    if prepared.stream && answered_json(&response, route) {
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
    if prepared.stream {
        let rewriter = rewriter(
            mapping,
            op,
            Arc::new(call.request),
            headers,
            &call.client_model,
            prepared.include_usage,
        )?;
        let body = RewriteBody::new(
            response.into_body(),
            rewriter,
            mapping,
            op.name(),
            call.metrics.clone(),
            call.started,
            call.trace.clone(),
        );
        let mut resp = Response::new(body.boxed_unsync());
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert("cache-control", HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(resp);
    }
    let body = read_body(response.into_body(), mapping.upstream.idle_timeout).await?;
    if let Some(id) = &call.trace {
        tracing::info!(target: "rosetta::trace", id = %id, body = %trace::text(&body), "upstream body");
    }
    let (body, usage) = translate_whole(
        mapping,
        op,
        &body,
        &headers,
        &call.request,
        &call.client_model,
    )?;
    call.metrics.count_tokens(&mapping.name, &usage);
    if let Some(id) = &call.trace {
        tracing::info!(target: "rosetta::trace", id = %id, status = 200, body = %body, "client response");
    }
    let mut resp = Response::new(full(body.to_string()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// The upstream's own model listing through the mapping's `models` route, normalized to
/// `[{id, created?, owned_by?}]`.
pub async fn list_models(
    mapping: &Mapping,
    client: &UpstreamClient,
    headers: &HeaderMap,
) -> Result<Vec<Value>, ProxyError> {
    let request = Value::Object(Map::new());
    let prepared = prepare(mapping, Op::Models, &request, headers)?;
    let response = send(mapping, client, prepared.request).await?;
    if !response.status().is_success() {
        return Err(upstream_error(mapping, response).await);
    }
    let headers = upstream_headers(mapping, &response);
    let body = read_body(response.into_body(), mapping.upstream.idle_timeout).await?;
    match translate_whole(mapping, Op::Models, &body, &headers, &request, "")?.0 {
        Value::Array(items) => Ok(items),
        _ => unreachable!("translate_whole gives an array for Op::Models"),
    }
}
