//! The upstream side of a call: the pooled client, request rendering, body reading, errors.

pub mod pool;
pub mod retries;
pub mod sign;
pub mod token;
mod token_exchange;

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Body;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde_json::Value;

use crate::error::ProxyError;
use crate::limits::buffers::{UPSTREAM_H2_STREAM_WINDOW, UPSTREAM_READ_BUF};
use crate::mapping::template::{Memo, Scope, eval, to_text};
use crate::mapping::{Endpoint, Framing, Mapping, Route};

/// The pooled HTTP(S) client of one mapping.
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the one pooled client of a mapping: HTTP/1.1 and HTTP/2 (by ALPN), rustls with
/// the bundled web PKI roots, and the mapping's connect timeout.
pub fn client_for(mapping: &Mapping) -> UpstreamClient {
    client_with(
        mapping.upstream.connect_timeout,
        mapping.upstream.keep_alive,
    )
}

/// A pooled HTTP(S) client with this connect timeout and idle-connection lifetime.
pub fn client_with(connect_timeout: Duration, keep_alive: Duration) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    // The timer is what makes the pool close idle connections at all. The small read side
    // bounds what a stream to a slow client holds (crate::limits::buffers).
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(keep_alive)
        .pool_timer(TokioTimer::new())
        .http1_max_buf_size(UPSTREAM_READ_BUF)
        .http2_initial_stream_window_size(UPSTREAM_H2_STREAM_WINDOW)
        .build(https)
}

/// A request that got no response, and whether it failed while connecting (nothing was
/// sent, so another try is always safe) or later (the upstream may be working on it).
#[derive(Debug)]
pub struct SendError {
    pub error: ProxyError,
    pub connect: bool,
}

impl From<SendError> for ProxyError {
    fn from(e: SendError) -> Self {
        e.error
    }
}

/// Sends a request, bounded by the mapping's first-byte timeout.
pub async fn send(
    mapping: &Mapping,
    client: &UpstreamClient,
    req: Request<Full<Bytes>>,
) -> Result<Response<Incoming>, SendError> {
    let limit = mapping.upstream.first_byte_timeout;
    match tokio::time::timeout(limit, client.request(req)).await {
        Err(_) => Err(SendError {
            error: ProxyError::Timeout {
                message: format!("the upstream did not answer within {limit:?}"),
            },
            connect: false,
        }),
        Ok(Err(e)) => Err(SendError {
            error: connect_error(&e),
            connect: e.is_connect(),
        }),
        Ok(Ok(r)) => Ok(r),
    }
}

/// Renders the upstream request for one endpoint: URL from the path template and rewrites,
/// body from the request template, headers from the mapping plus the client headers it
/// forwards. The host is always the endpoint's: nothing in a request can change it. With
/// `as_is` the body is the request itself, not the route's `request` template (a client of a
/// dialect the upstream speaks, [`Route::native`]).
pub fn build_request(
    mapping: &Mapping,
    route: &Route,
    request: &Value,
    client_headers: &HeaderMap,
    stream: bool,
    endpoint: &Endpoint,
    as_is: bool,
) -> Result<Request<Full<Bytes>>, ProxyError> {
    let client = if mapping.reads_client_headers {
        header_object(client_headers)
    } else {
        Value::Null
    };
    let globals = [
        ("root", request),
        ("request", request),
        ("client_headers", &client),
    ];
    let memo = Memo::default();
    let scope = Scope::memoized(request, &globals, &memo);
    let path = eval(&route.path, scope)
        .map(|v| to_text(&v))
        .ok_or_else(|| ProxyError::Transform {
            message: "the upstream path needs a field this request does not have".into(),
        })?;
    let mut path = safe_path(path)?;
    for (re, with) in &route.rewrites {
        path = re.replace_all(&path, with.as_str()).into_owned();
    }
    let mut pq = format!("{}{}", endpoint.base_path, path);
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
        .scheme(endpoint.scheme.clone())
        .authority(endpoint.authority.clone())
        .path_and_query(pq)
        .build()
        .map_err(|e| ProxyError::Transform {
            message: format!("the mapping produced an invalid upstream URL: {e}"),
        })?;
    let body = match &route.request {
        Some(t) if !as_is => eval(t, scope).unwrap_or_else(|| Value::Object(Default::default())),
        _ if as_is => native_body(route, request, scope),
        _ => request.clone(),
    };
    let mut req = Request::builder().method(route.method.clone()).uri(uri);
    let headers = req.headers_mut().expect("builder is valid so far");
    for name in &mapping.upstream.forward_headers {
        // A header the client's `Connection` names is hop-by-hop for this hop only.
        if nominated_hop_by_hop(client_headers, name) {
            continue;
        }
        for v in client_headers.get_all(name) {
            headers.append(name.clone(), v.clone());
        }
    }
    // The mapping's own headers always win over anything forwarded, the endpoint's last.
    for (n, v) in mapping
        .upstream
        .headers
        .iter()
        .chain(&route.headers)
        .chain(&endpoint.headers)
    {
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
    // GET and HEAD carry no body (model listings).
    let bytes = if matches!(route.method, Method::GET | Method::HEAD) {
        Bytes::new()
    } else {
        Bytes::from(crate::ops::json::to_vec(&body))
    };
    req.body(Full::new(bytes))
        .map_err(|e| ProxyError::Transform {
            message: format!("cannot build the upstream request: {e}"),
        })
}

/// A native client's body with the route's `native_body` edits: each field set to its
/// template's value, or taken out when that is absent.
fn native_body(route: &Route, request: &Value, scope: Scope) -> Value {
    let mut body = request.clone();
    if let Value::Object(o) = &mut body {
        for (field, e) in &route.native_body {
            match e.as_ref().and_then(|e| eval(e, scope)) {
                Some(v) => {
                    o.insert(field.clone(), v);
                }
                None => {
                    o.remove(field);
                }
            }
        }
    }
    body
}

/// Whether an SSE stream request was answered with `application/json` instead of a stream.
pub fn answered_json(response: &Response<Incoming>, route: &Route) -> bool {
    let sse = route
        .stream
        .as_ref()
        .is_some_and(|s| s.framing == Framing::Sse);
    let ct = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    sse && ct.starts_with("application/json")
}

/// Whether the client's `Connection` header lists `name`.
fn nominated_hop_by_hop(client_headers: &HeaderMap, name: &http::HeaderName) -> bool {
    client_headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(name.as_str()))
}

/// Checks a rendered upstream path, whose parts may come from the request (a model name in
/// the path): it may not add a query or fragment, climb out of the base path with `..`, or
/// smuggle those in percent-encoded. Other characters that a URL path cannot hold are
/// percent-encoded.
pub fn safe_path(path: String) -> Result<String, ProxyError> {
    let bad = |why: &str| ProxyError::BadRequest {
        message: format!(
            "the request gives an invalid upstream path ({why}); check the model name"
        ),
        param: Some("model".into()),
    };
    if path.contains(['?', '#', '\\']) || path.contains('%') {
        return Err(bad("`?`, `#`, `\\` and `%` are not allowed"));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(bad("`.` and `..` segments are not allowed"));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-._~!$&'()*+,;=:@".contains(c);
    if path.chars().all(plain) {
        return Ok(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        if plain(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(out)
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

/// Reads a whole upstream body, bounded in size (`max` bytes) and in silence between frames.
/// Past `max` (announced by `content-length`, or counted) the body is dropped unread, which
/// closes its connection instead of returning it to the pool.
pub async fn read_body(
    mut body: Incoming,
    idle: Duration,
    max: usize,
) -> Result<Bytes, ProxyError> {
    let too_large = || ProxyError::UpstreamTooLarge {
        what: "a body",
        limit: max,
        flag: "--max-upstream-body",
    };
    if body.size_hint().lower() > max as u64 {
        return Err(too_large());
    }
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
                    if buf.len() + data.len() > max {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Translates an upstream error response with the mapping's `errors` section; its body is
/// read up to `max` bytes (past that, the error has no upstream message).
pub async fn upstream_error(
    mapping: &Mapping,
    response: Response<Incoming>,
    max: usize,
) -> ProxyError {
    let upstream_status = response.status().as_u16();
    let retry_after = response.headers().get(RETRY_AFTER).cloned();
    let body = read_body(response.into_body(), Duration::from_secs(10), max)
        .await
        .unwrap_or_default();
    error_from(mapping, upstream_status, retry_after, &body)
}

/// The client-facing error for an upstream error status and body (pure).
pub fn error_from(
    mapping: &Mapping,
    upstream_status: u16,
    retry_after: Option<HeaderValue>,
    body: &[u8],
) -> ProxyError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
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
        let get = |e: &Option<crate::mapping::template::Expr>| {
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
                snippet(body, &mapping.upstream.secrets)
            )
        }
    });
    ProxyError::UpstreamStatus {
        status,
        // Redacted on the way out (the request's shield, the ledger, the logs), where the
        // client's own words are known: see `crate::ops::redact`.
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
/// Response headers as a JSON object for `$headers`: lower-case names, text values (repeated
/// headers joined with `, `, bytes that are not UTF-8 replaced).
pub fn header_object(headers: &HeaderMap) -> Value {
    let mut out = serde_json::Map::new();
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match out.get_mut(name.as_str()) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&text);
            }
            _ => {
                out.insert(name.as_str().to_string(), Value::String(text));
            }
        }
    }
    Value::Object(out)
}

/// The start of a body (200 characters), for error messages. The cut never splits a piece of
/// one of `secrets`: it moves back to the piece's start, so that the whole piece is still
/// there to be redacted on the way out.
pub fn snippet(body: &[u8], secrets: &[String]) -> String {
    let text = String::from_utf8_lossy(body);
    let cut = if text.chars().nth(200).is_none() {
        text.len()
    } else {
        crate::ops::redact::Redactor::new(secrets).cut(&text, 200)
    };
    let mut s = text[..cut].to_string();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}
