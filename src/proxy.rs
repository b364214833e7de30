//! One chat completion through a mapping: build the upstream request, call it, translate back.
//!
//! Streams are rewritten frame by frame by [`RewriteBody`], which wraps the upstream body: no
//! task, no buffering of the whole stream, and dropping it (a client that went away) drops the
//! upstream body and so releases the upstream connection at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::time::Sleep;

use crate::error::ProxyError;
use crate::mapping::{Mapping, Route};
use crate::openai::{self, Usage};
use crate::rewrite::{StreamRewriter, eval_fields};
use crate::telemetry::Metrics;
use crate::template::{Scope, eval, to_text};

/// The pooled HTTP(S) client of one mapping.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest upstream body read whole (non-stream answers and error bodies).
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// Idle keep-alive connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Builds the one pooled client of a mapping: HTTP/1.1 and HTTP/2 (by ALPN), rustls with
/// the bundled web PKI roots, and the mapping's connect timeout.
pub fn client_for(mapping: &Mapping) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(mapping.upstream.connect_timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build(https)
}

/// Everything one chat call needs.
pub struct Call<'a> {
    pub mapping: &'a Arc<Mapping>,
    pub client: &'a UpstreamClient,
    pub metrics: &'a Metrics,
    pub request: Value,
    pub client_headers: &'a HeaderMap,
    pub started: Instant,
}

/// The response body type Rosetta answers with.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// Runs a chat completion. Errors before the first byte come back as `Err`.
pub async fn chat(call: Call<'_>) -> Result<Response<ProxyBody>, ProxyError> {
    let mapping = call.mapping;
    let route = mapping.chat.as_ref().ok_or_else(|| ProxyError::NotFound {
        message: format!("mapping {:?} has no chat route", mapping.name),
    })?;
    let model = call.request.get("model").map(to_text).unwrap_or_default();
    let stream = call
        .request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if stream && route.stream.is_none() {
        return Err(ProxyError::BadRequest {
            message: format!("mapping {:?} does not support streaming", mapping.name),
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
    let response = match tokio::time::timeout(
        mapping.upstream.first_byte_timeout,
        call.client.request(upstream_req),
    )
    .await
    {
        Err(_) => {
            return Err(ProxyError::Timeout {
                message: format!(
                    "the upstream did not answer within {:?}",
                    mapping.upstream.first_byte_timeout
                ),
            });
        }
        Ok(Err(e)) => return Err(connect_error(&e)),
        Ok(Ok(r)) => r,
    };
    call.metrics
        .upstream_duration
        .with_label_values(&[&mapping.name, "chat"])
        .observe(sent.elapsed().as_secs_f64());
    if !response.status().is_success() {
        return Err(upstream_error(mapping, response).await);
    }
    let request = Arc::new(call.request);
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
    if stream {
        let rewriter = StreamRewriter::new(Arc::clone(mapping), request, &model, include_usage)
            .ok_or_else(|| ProxyError::BadRequest {
                message: "this mapping does not support streaming".into(),
                param: Some("stream".into()),
            })?;
        let body = RewriteBody::new(
            response.into_body(),
            rewriter,
            mapping,
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
    let body = read_body(response.into_body(), mapping.upstream.idle_timeout).await?;
    let parsed: Value =
        serde_json::from_slice(&body).map_err(|_| ProxyError::BadUpstreamResponse {
            message: format!(
                "the upstream answered with a body that is not JSON: {}",
                snippet(&body)
            ),
        })?;
    let normalized = eval_fields(&route.response, &parsed, &request, &Value::Null);
    let (completion, usage) = openai::completion(&model, &normalized);
    call.metrics.count_tokens(&mapping.name, &usage);
    let mut resp = Response::new(full(completion.to_string()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(resp)
}

/// Renders the upstream request: URL from the path template and rewrites, body from the
/// request template, headers from the mapping plus the client headers it forwards.
fn build_request(
    mapping: &Mapping,
    route: &Route,
    request: &Value,
    client_headers: &HeaderMap,
    stream: bool,
) -> Result<Request<Full<Bytes>>, ProxyError> {
    let globals = [("root", request), ("request", request)];
    let scope = Scope::new(request, &globals);
    let mut path = eval(&route.path, scope)
        .map(|v| to_text(&v))
        .ok_or_else(|| ProxyError::Transform {
            message: "the upstream path needs a field this request does not have".into(),
        })?;
    for (re, with) in &route.rewrites {
        path = re.replace_all(&path, with.as_str()).into_owned();
    }
    let mut pq = format!("{}{}", mapping.upstream.base_path, path);
    let mut first = true;
    for (k, e) in &route.query {
        if let Some(v) = eval(e, scope) {
            pq.push(if first && !pq.contains('?') { '?' } else { '&' });
            first = false;
            pq.push_str(&encode_query(k));
            pq.push('=');
            pq.push_str(&encode_query(&to_text(&v)));
        }
    }
    let uri = Uri::builder()
        .scheme(mapping.upstream.scheme.clone())
        .authority(mapping.upstream.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|e| ProxyError::Transform {
            message: format!("the mapping produced an invalid upstream URL: {e}"),
        })?;
    let body = match &route.request {
        Some(t) => eval(t, scope).unwrap_or_else(|| Value::Object(Default::default())),
        None => request.clone(),
    };
    let mut req = Request::builder().method(route.method.clone()).uri(uri);
    let headers = req.headers_mut().expect("builder is valid so far");
    for name in &mapping.upstream.forward_headers {
        for v in client_headers.get_all(name) {
            headers.append(name.clone(), v.clone());
        }
    }
    // The mapping's own headers always win over anything forwarded.
    for (n, v) in mapping.upstream.headers.iter().chain(&route.headers) {
        headers.insert(n.clone(), v.clone());
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if !headers.contains_key(ACCEPT) {
        let accept = if stream {
            "text/event-stream, application/x-ndjson, application/json"
        } else {
            "application/json"
        };
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
    }
    req.body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| ProxyError::Transform {
            message: format!("cannot build the upstream request: {e}"),
        })
}

/// Whether an SSE stream request was answered with `application/json` instead of a stream.
fn answered_json(response: &Response<Incoming>, route: &Route) -> bool {
    let sse = route
        .stream
        .as_ref()
        .is_some_and(|s| s.framing == crate::mapping::Framing::Sse);
    let ct = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    sse && ct.starts_with("application/json")
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn connect_error(e: &hyper_util::client::legacy::Error) -> ProxyError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    if msg.contains("timed out") || msg.contains("timeout") {
        ProxyError::Timeout {
            message: format!("connecting to the upstream timed out ({msg})"),
        }
    } else {
        ProxyError::Unreachable {
            message: format!("cannot reach the upstream: {msg}"),
        }
    }
}

/// Reads a whole upstream body, bounded in size and in silence between frames.
async fn read_body(mut body: Incoming, idle: Duration) -> Result<Bytes, ProxyError> {
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                return Err(ProxyError::Timeout {
                    message: format!("the upstream body stalled for {idle:?}"),
                });
            }
            Ok(None) => return Ok(Bytes::from(buf)),
            Ok(Some(Err(e))) => {
                return Err(ProxyError::BadUpstreamResponse {
                    message: format!("reading the upstream body failed: {e}"),
                });
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > MAX_UPSTREAM_BODY {
                        return Err(ProxyError::BadUpstreamResponse {
                            message: format!("the upstream body exceeds {MAX_UPSTREAM_BODY} bytes"),
                        });
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Translates an upstream error response with the mapping's `errors` section.
async fn upstream_error(mapping: &Mapping, response: Response<Incoming>) -> ProxyError {
    let upstream_status = response.status().as_u16();
    let retry_after = response.headers().get(RETRY_AFTER).cloned();
    let body = read_body(response.into_body(), Duration::from_secs(10))
        .await
        .unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let status = mapping
        .errors
        .status
        .get(&upstream_status)
        .copied()
        .unwrap_or(upstream_status);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let (mut message, mut kind, mut code) = (None, None, None);
    if let Some(v) = &parsed {
        let globals = [("root", v)];
        let scope = Scope::new(v, &globals);
        let get = |e: &Option<crate::template::Expr>| {
            e.as_ref().and_then(|e| eval(e, scope)).map(|v| to_text(&v))
        };
        message = get(&mapping.errors.message);
        kind = get(&mapping.errors.kind);
        code = get(&mapping.errors.code);
        if message.is_none() {
            message = common_error_message(v);
        }
    }
    let message = message.filter(|m| !m.is_empty()).unwrap_or_else(|| {
        if body.is_empty() {
            format!("the upstream answered {upstream_status} with no body")
        } else {
            format!(
                "the upstream answered {upstream_status}: {}",
                snippet(&body)
            )
        }
    });
    ProxyError::UpstreamStatus {
        status,
        message,
        kind,
        code,
        retry_after,
    }
}

/// The message of the common error shapes: `{"error":{"message"}}`, `{"error":"..."}`, `{"message"}`.
fn common_error_message(v: &Value) -> Option<String> {
    v.pointer("/error/message")
        .or_else(|| v.get("error").filter(|e| e.is_string()))
        .or_else(|| v.get("message"))
        .map(to_text)
}

/// The start of a body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// Wraps the upstream body and rewrites it into OpenAI chunks, frame by frame.
pub struct RewriteBody {
    upstream: Incoming,
    rewriter: StreamRewriter,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    out: Vec<u8>,
    done: bool,
    stats: StreamStats,
}

/// Metric bookkeeping of one stream; settles exactly once, at the end or on drop.
struct StreamStats {
    metrics: Metrics,
    mapping: String,
    started: Instant,
    first_token: bool,
    settled: bool,
}

impl StreamStats {
    fn settle(&mut self, usage: &Usage, failure: Option<&'static str>) {
        if self.settled {
            return;
        }
        self.settled = true;
        let m = &self.metrics;
        m.active_streams.with_label_values(&[&self.mapping]).dec();
        m.request_duration
            .with_label_values(&[&self.mapping, "chat"])
            .observe(self.started.elapsed().as_secs_f64());
        m.count_tokens(&self.mapping, usage);
        if let Some(kind) = failure {
            m.upstream_errors
                .with_label_values(&[&self.mapping, kind])
                .inc();
        }
    }
}

impl Drop for StreamStats {
    fn drop(&mut self) {
        // A client that went away mid-stream: close the books without counting tokens.
        self.settle(&Usage::default(), None);
    }
}

impl RewriteBody {
    fn new(
        upstream: Incoming,
        rewriter: StreamRewriter,
        mapping: &Mapping,
        metrics: Metrics,
        started: Instant,
    ) -> Self {
        metrics
            .active_streams
            .with_label_values(&[&mapping.name])
            .inc();
        let idle = mapping.upstream.idle_timeout;
        RewriteBody {
            upstream,
            rewriter,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            out: Vec::with_capacity(4096),
            done: false,
            stats: StreamStats {
                metrics,
                mapping: mapping.name.clone(),
                started,
                first_token: false,
                settled: false,
            },
        }
    }
}

impl Body for RewriteBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let mut failure = None;
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.rewriter.feed(&data, &mut this.out);
                        let deadline = tokio::time::Instant::now() + this.idle;
                        this.idle_timer.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let err = ProxyError::UpstreamStreamError {
                        message: format!("the upstream connection failed mid-stream: {e}"),
                        kind: Some("server_error".into()),
                        code: Some("upstream_stream_error".into()),
                    };
                    this.rewriter.fail(&mut this.out, &err);
                    failure = Some(err.kind());
                }
                Poll::Ready(None) => this.rewriter.end(&mut this.out),
                Poll::Pending => {
                    if this.idle_timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let err = ProxyError::Timeout {
                        message: format!("the upstream sent nothing for {:?}", this.idle),
                    };
                    this.rewriter.fail(&mut this.out, &err);
                    failure = Some(err.kind());
                }
            }
            if this.rewriter.writer.emitted_content && !this.stats.first_token {
                this.stats.first_token = true;
                this.stats
                    .metrics
                    .time_to_first_token
                    .with_label_values(&[&this.stats.mapping])
                    .observe(this.stats.started.elapsed().as_secs_f64());
            }
            if this.rewriter.writer.closed {
                this.done = true;
                let failure = failure.or(this
                    .rewriter
                    .writer
                    .failed
                    .then_some("upstream_stream_error"));
                this.stats.settle(&this.rewriter.usage(), failure);
            }
            if !this.out.is_empty() {
                let bytes = Bytes::copy_from_slice(&this.out);
                this.out.clear();
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
        }
    }
}
