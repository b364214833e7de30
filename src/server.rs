//! The HTTP surface: a hyper 1 server that routes to mappings, plus `/health` and `/metrics`.
//!
//! `serve` is the seam that `main` and the integration tests share: it takes a bound listener,
//! the loaded state and a shutdown future.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::body::{ProxyBody, full};
use crate::error::ProxyError;
use crate::mapping::Mapping;
use crate::mapping::Op;
use crate::proxy::{self, Call};
use crate::router::{model_list, model_not_found, op_for, parse_request, pick_mapping};
use crate::telemetry::{Metrics, status_class};
use crate::trace::{self, TraceMode};
use crate::upstream::{self, UpstreamClient};

/// Largest request body accepted from a client (images as data URLs make chats big).
pub const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A loaded mapping with its pooled client.
pub struct Loaded {
    pub mapping: Arc<Mapping>,
    pub client: UpstreamClient,
}

/// One compiled set of mappings, swapped whole on reload: a request keeps the set it started
/// with (an `Arc`) until it ends, streams included.
pub struct MappingSet {
    pub mappings: BTreeMap<String, Loaded>,
}

impl MappingSet {
    /// Builds the set (one pooled client per mapping).
    pub fn new(mappings: Vec<Arc<Mapping>>) -> Self {
        let mappings = mappings
            .into_iter()
            .map(|m| {
                let client = upstream::client_for(&m);
                (m.name.clone(), Loaded { mapping: m, client })
            })
            .collect();
        MappingSet { mappings }
    }
}

/// Everything the server needs, shared by all connections.
pub struct State {
    current: ArcSwap<MappingSet>,
    pub metrics: Metrics,
    pub started: u64,
    /// Which requests are logged end to end (`--trace`).
    pub trace: TraceMode,
}

impl State {
    /// Builds the state (one pooled client per mapping).
    pub fn new(mappings: Vec<Arc<Mapping>>) -> Self {
        State {
            current: ArcSwap::from_pointee(MappingSet::new(mappings)),
            metrics: Metrics::new(),
            started: crate::openai::now_secs(),
            trace: TraceMode::Off,
        }
    }

    /// The mapping set new requests use.
    pub fn mappings(&self) -> Arc<MappingSet> {
        self.current.load_full()
    }

    /// Replaces the mapping set atomically; requests already running keep the old one.
    pub fn replace_mappings(&self, set: MappingSet) {
        self.current.store(Arc::new(set));
    }

    /// The same state, tracing the requests `mode` selects.
    pub fn with_trace(mut self, mode: TraceMode) -> Self {
        self.trace = mode;
        self
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to a deadline).
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                let svc = service_fn(move |req| handle(Arc::clone(&state), req));
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown deadline reached with requests still running");
    }
    Ok(())
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<ProxyBody>, std::convert::Infallible> {
    let started = Instant::now();
    // Keep a caller's request id when it is short and printable; otherwise mint one.
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| format!("req_{}", random_id()), String::from);
    let set = state.mappings();
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let response = match (req.method(), segments.as_slice()) {
        (&Method::GET, ["health"]) => Ok(health(&set)),
        (&Method::GET, ["metrics"]) => Ok(text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(),
        )),
        (_, ["v1", rest @ ..]) => match op_for(rest) {
            Some(op) => call(&state, &set, None, op, req, started, &request_id).await,
            None => Err(not_found(&set, &path)),
        },
        (_, [name, "v1", rest @ ..]) if set.mappings.contains_key(*name) => match op_for(rest) {
            Some(op) => {
                let name = name.to_string();
                call(&state, &set, Some(&name), op, req, started, &request_id).await
            }
            None => Err(not_found(&set, &path)),
        },
        _ => Err(not_found(&set, &path)),
    };
    let mut response = response.unwrap_or_else(|e| error_response(&e));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    Ok(response)
}

fn random_id() -> String {
    (0..20).map(|_| fastrand::alphanumeric()).collect()
}

/// One API call, on a named mapping (`/NAME/v1/...`) or on the unified surface (`/v1/...`).
/// Every outcome is counted; `-` labels a call that no mapping could be chosen for.
async fn call(
    state: &State,
    set: &MappingSet,
    name: Option<&str>,
    op: Op,
    req: Request<Incoming>,
    started: Instant,
    request_id: &str,
) -> Result<Response<ProxyBody>, ProxyError> {
    if op == Op::Models {
        if req.method() != Method::GET {
            return Err(ProxyError::MethodNotAllowed);
        }
        let result = models(state, set, name, req.headers()).await;
        let status = result.as_ref().map_or_else(|e| e.status(), |r| r.status());
        state
            .metrics
            .requests
            .with_label_values(&[
                name.unwrap_or("-"),
                op.name(),
                status_class(status.as_u16()),
            ])
            .inc();
        return result;
    }
    let mut seen = Seen {
        mapping: name
            .and_then(|n| set.mappings.get_key_value(n))
            .map(|(k, _)| k.as_str()),
        stream: false,
        traced: false,
    };
    let result = dispatch(state, set, &mut seen, op, req, started, request_id).await;
    let label = seen.mapping.unwrap_or("-");
    let status = match &result {
        Ok(r) => r.status(),
        Err(e) => e.status(),
    };
    let m = &state.metrics;
    m.requests
        .with_label_values(&[label, op.name(), status_class(status.as_u16())])
        .inc();
    if let Err(e) = &result {
        if e.kind().starts_with("upstream_") {
            m.upstream_errors
                .with_label_values(&[label, e.kind()])
                .inc();
        }
        tracing::warn!(id = %request_id, mapping = %label, status = status.as_u16(), kind = e.kind(), "request failed");
        if seen.traced {
            tracing::info!(target: "rosetta::trace", id = %request_id, status = status.as_u16(), body = %e.to_json(), "client response (error)");
        }
    }
    // A stream's duration is observed when it ends (see `body`).
    if result.is_err() || !seen.stream {
        m.request_duration
            .with_label_values(&[label, op.name()])
            .observe(started.elapsed().as_secs_f64());
    }
    result
}

/// What [`dispatch`] learned about a call, for its metrics and logs, even when it failed.
struct Seen<'s> {
    /// The mapping chosen, once it is known.
    mapping: Option<&'s str>,
    stream: bool,
    traced: bool,
}

/// Reads and checks the request, picks the mapping and model, and runs the call.
async fn dispatch<'s>(
    state: &State,
    set: &'s MappingSet,
    seen: &mut Seen<'s>,
    op: Op,
    req: Request<Incoming>,
    started: Instant,
    request_id: &str,
) -> Result<Response<ProxyBody>, ProxyError> {
    if req.method() != Method::POST {
        return Err(ProxyError::MethodNotAllowed);
    }
    let (parts, body) = req.into_parts();
    let trace = state.trace.wanted(&parts.headers);
    seen.traced = trace;
    let bytes: Bytes = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(ProxyError::TooLarge {
                limit: MAX_REQUEST_BODY,
            });
        }
        Err(e) => {
            return Err(ProxyError::BadRequest {
                message: format!("cannot read the request body: {e}"),
                param: None,
            });
        }
    };
    if trace {
        tracing::info!(
            target: "rosetta::trace",
            id = %request_id,
            path = %parts.uri.path(),
            headers = %trace::headers(&parts.headers),
            body = %trace::text(&bytes),
            "client request"
        );
    }
    let mut request = parse_request(op, &bytes)?;
    let client_model = request["model"].as_str().unwrap_or_default().to_string();
    let (name, model) = match seen.mapping {
        Some(n) => (n, client_model.as_str()),
        None => pick_mapping(set, &client_model)?,
    };
    seen.mapping = Some(name);
    let loaded = &set.mappings[name];
    let upstream_model = loaded
        .mapping
        .resolve_model(model)
        .map_err(model_not_found)?;
    request["model"] = Value::String(upstream_model);
    seen.stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let span = tracing::info_span!("request", id = %request_id, mapping = %name, route = op.name(), stream = seen.stream);
    span.in_scope(|| tracing::trace!(body = %String::from_utf8_lossy(&bytes), "client request"));
    proxy::run(Call {
        mapping: &loaded.mapping,
        client: &loaded.client,
        metrics: &state.metrics,
        op,
        request,
        client_model,
        client_headers: &parts.headers,
        started,
        trace: trace.then(|| request_id.to_string()),
    })
    .instrument(span)
    .await
}

/// `GET /NAME/v1/models`, or on the unified surface every mapping's models as `NAME/id`.
async fn models(
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

fn health(set: &MappingSet) -> Response<ProxyBody> {
    let mappings: Vec<Value> = set
        .mappings
        .values()
        .map(|l| {
            let m = &l.mapping;
            let routes: Vec<&str> = [Op::Chat, Op::Completions, Op::Embeddings, Op::Models]
                .into_iter()
                .filter(|op| m.route(*op).is_some())
                .map(Op::name)
                .collect();
            json!({
                "name": m.name,
                "upstream": format!("{}://{}{}", m.upstream.scheme, m.upstream.authority, m.upstream.base_path),
                "routes": routes,
                "models": m.models.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
                "missing_env": m.upstream.missing_env,
            })
        })
        .collect();
    let body = json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "mappings": mappings});
    text(StatusCode::OK, "application/json", body.to_string())
}

fn not_found(set: &MappingSet, path: &str) -> ProxyError {
    let names: Vec<&str> = set.mappings.keys().map(String::as_str).collect();
    ProxyError::NotFound {
        message: format!(
            "no route for {path}. Use /NAME/v1/chat/completions, /NAME/v1/completions, /NAME/v1/embeddings or /NAME/v1/models (or /v1/... routed by model), where NAME is one of: {}",
            names.join(", ")
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The one place errors become HTTP responses.
pub fn error_response(e: &ProxyError) -> Response<ProxyBody> {
    let mut r = text(e.status(), "application/json", e.to_json().to_string());
    if let Some(ra) = e.retry_after() {
        r.headers_mut().insert(RETRY_AFTER, ra.clone());
    }
    r
}
