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

use crate::dialect::Dialect;
use crate::dialect::answer::{Answer, Usage};
use crate::dialect::openai;
use crate::error::ProxyError;
use crate::ledger::tab::Tab;
use crate::limits::Limits;
use crate::mapping::{Endpoint, Mapping, Op};
use crate::ops::handles::MappingMetrics;
use crate::ops::trace;
use crate::translate::body::{ProxyBody, RewriteBody, full};
use crate::translate::rewrite::{StreamRewriter, eval_fields};
use crate::translate::send::{Answered, send_with_retries};
use crate::translate::stop_trim;
use crate::upstream::pool::Pool;
use crate::upstream::{
    UpstreamClient, answered_json, build_request, header_object, read_body, send, snippet,
    upstream_error,
};

/// Everything one call needs.
pub struct Call<'a> {
    pub mapping: &'a Arc<Mapping>,
    pub client: &'a UpstreamClient,
    /// The health of the mapping's endpoints.
    pub pool: &'a Pool,
    /// The mapping's metric handles.
    pub metrics: &'a Arc<MappingMetrics>,
    pub op: Op,
    /// The dialect the client is answered in.
    pub dialect: &'a Dialect,
    /// The OpenAI request, its `model` already resolved to the upstream's id.
    pub request: Arc<Value>,
    /// A fallback is waiting: when every endpoint is out of rotation, fail at once.
    pub has_fallback: bool,
    /// The model as the client named it: what responses report.
    pub client_model: &'a str,
    pub client_headers: &'a HeaderMap,
    pub started: Instant,
    /// The request id, when this call is logged end to end ([`crate::ops::trace`]).
    pub trace: Option<String>,
    /// The call's accounting: a stream takes it into its body, a whole answer closes it.
    pub tab: &'a mut Option<Tab>,
    /// What one upstream answer may make Rosetta hold (`max_upstream_frame`,
    /// `max_upstream_body`).
    pub limits: &'a Limits,
    /// "Now" for request signatures.
    pub clock: &'a crate::ops::clock::Clock,
}

/// The upstream request of a call, and how its answer must be read.
pub struct Prepared {
    pub request: Request<Full<Bytes>>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Renders the upstream request for an OpenAI request, to the first endpoint (pure).
pub fn prepare(
    mapping: &Mapping,
    op: Op,
    request: &Value,
    client_headers: &HeaderMap,
) -> Result<Prepared, ProxyError> {
    prepare_for(
        mapping,
        op,
        request,
        client_headers,
        &mapping.upstream.endpoints[0],
    )
}

/// Renders the upstream request for an OpenAI request, to one endpoint (pure).
pub fn prepare_for(
    mapping: &Mapping,
    op: Op,
    request: &Value,
    client_headers: &HeaderMap,
    endpoint: &Endpoint,
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
    // A client of a dialect the upstream speaks itself sends its request as it is.
    let as_is = matches!(op, Op::Messages | Op::CountTokens)
        && route.speaks(crate::dialect::messages::NAME);
    let mut request = build_request(
        mapping,
        route,
        request,
        client_headers,
        stream,
        endpoint,
        as_is,
    )?;
    if as_is {
        // The dialect's own beta flags go to an upstream of the dialect (the mapping's own
        // value, if it sets one, wins).
        let beta = crate::dialect::messages::wire::wire().beta_header.as_str();
        let headers = request.headers_mut();
        if !headers.contains_key(beta) {
            for v in client_headers.get_all(beta) {
                if let Ok(name) = http::HeaderName::from_bytes(beta.as_bytes()) {
                    headers.append(name, v.clone());
                }
            }
        }
    }
    Ok(Prepared {
        request,
        stream,
        include_usage,
    })
}

/// Translates a whole (non-stream) upstream answer into the client's body in `dialect` (pure).
pub fn translate_whole(
    mapping: &Mapping,
    op: Op,
    dialect: &Dialect,
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
                snippet(body, &mapping.upstream.secrets)
            ),
        })?;
    let normalized: Map<String, Value> =
        eval_fields(&route.response, &parsed, request, &Value::Null, headers);
    match op {
        // An upstream of the client's own dialect: its answer as it is.
        Op::Messages if dialect.is_native() => {
            let answer = Answer::from_normalized(&normalized);
            Ok((parsed, answer.usage))
        }
        Op::Chat | Op::Responses | Op::Messages | Op::Completions => {
            let mut answer = Answer::from_normalized(&normalized);
            if let (Some(e), Some(text)) = (&route.trim_stop, answer.text.as_mut()) {
                stop_trim::cut(&stop_trim::stops(e, request), text);
            }
            Ok((dialect.render(&answer, client_model), answer.usage))
        }
        // The upstream's count: as it is from an upstream of the dialect, else its normalized
        // `input_tokens`.
        Op::CountTokens if route.speaks(crate::dialect::messages::NAME) => {
            Ok((parsed, Usage::default()))
        }
        Op::CountTokens => Ok((
            crate::translate::count_tokens::answer(normalized.get("input_tokens"))?,
            Usage::default(),
        )),
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

/// The client dialect an operation answers in, when the request does not decide it (every
/// operation but the Responses API, whose dialect carries the request's echo).
pub fn dialect_of(op: Op) -> Dialect {
    match op {
        Op::Completions => Dialect::Text,
        Op::Messages => Dialect::Messages,
        _ => Dialect::Chat,
    }
}

/// The stream rewriter for a call (pure).
pub fn rewriter(
    mapping: &Arc<Mapping>,
    op: Op,
    dialect: &Dialect,
    request: Arc<Value>,
    headers: Value,
    client_model: &str,
    include_usage: bool,
) -> Result<StreamRewriter, ProxyError> {
    StreamRewriter::new(
        Arc::clone(mapping),
        op,
        request,
        headers,
        dialect.writer(client_model, include_usage),
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
    let Answered {
        response,
        stream,
        include_usage,
    } = send_with_retries(&call).await?;
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
    if stream && answered_json(&response, route) {
        // The upstream ignored the stream request or failed with a JSON body: nothing has
        // reached the client yet, so this can still be a plain HTTP error.
        let max = call.limits.max_upstream_body;
        let body = read_body(response.into_body(), mapping.upstream.idle_timeout, max).await?;
        return Err(ProxyError::BadUpstreamResponse {
            message: format!(
                "the upstream answered a stream request with a JSON body: {}",
                snippet(&body, &mapping.upstream.secrets)
            ),
        });
    }
    if stream {
        let rewriter = rewriter(
            mapping,
            op,
            call.dialect,
            Arc::clone(&call.request),
            headers,
            call.client_model,
            include_usage,
        )?
        .with_max_frame(call.limits.max_upstream_frame);
        let body = RewriteBody::new(
            response.into_body(),
            rewriter,
            mapping,
            op,
            Arc::clone(call.metrics),
            call.started,
            call.trace.clone(),
        )
        .with_tab(call.tab.take());
        let mut resp = Response::new(body.boxed_unsync());
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert("cache-control", HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        return Ok(resp);
    }
    let max = call.limits.max_upstream_body;
    let body = read_body(response.into_body(), mapping.upstream.idle_timeout, max).await?;
    if let Some(id) = &call.trace {
        tracing::info!(target: "rosetta::trace", id = %id, body = %trace::text(&body), "upstream body");
    }
    let (body, usage) = translate_whole(
        mapping,
        op,
        call.dialect,
        &body,
        &headers,
        &call.request,
        call.client_model,
    )?;
    call.metrics.count_tokens(&usage);
    if let Some(tab) = call.tab.take() {
        tab.succeeded(&usage);
    }
    if let Some(id) = &call.trace {
        tracing::info!(target: "rosetta::trace", id = %id, status = 200, body = %body, "client response");
    }
    let mut resp = Response::new(full(crate::ops::json::to_vec(&body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// The upstream's own model listing through the mapping's `models` route, normalized to
/// `[{id, created?, owned_by?}]`, its body read up to `max_body` bytes; signed (if the
/// mapping signs) at `now_ms`.
pub async fn list_models(
    mapping: &Mapping,
    client: &UpstreamClient,
    pool: &Pool,
    headers: &HeaderMap,
    max_body: usize,
    now_ms: i64,
) -> Result<Vec<Value>, ProxyError> {
    let request = Value::Object(Map::new());
    let endpoint = &mapping.upstream.endpoints[pool.pick(&mapping.upstream.endpoints, &[])];
    let mut prepared = prepare_for(mapping, Op::Models, &request, headers, endpoint)?;
    mapping
        .upstream
        .signing
        .apply(&mut prepared.request, now_ms)?;
    let response = send(mapping, client, prepared.request).await?;
    if !response.status().is_success() {
        return Err(upstream_error(mapping, response, max_body).await);
    }
    let headers = upstream_headers(mapping, &response);
    let body = read_body(
        response.into_body(),
        mapping.upstream.idle_timeout,
        max_body,
    )
    .await?;
    match translate_whole(
        mapping,
        Op::Models,
        &Dialect::Chat,
        &body,
        &headers,
        &request,
        "",
    )?
    .0
    {
        Value::Array(items) => Ok(items),
        _ => unreachable!("translate_whole gives an array for Op::Models"),
    }
}
