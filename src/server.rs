//! The HTTP surface: a hyper 1 server that routes to mappings, plus `/health` and `/metrics`.
//!
//! `serve` is the seam that `main` and the integration tests share: it takes a bound listener,
//! the loaded state and a shutdown future.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

use crate::error::ProxyError;
use crate::mapping::Mapping;
use crate::proxy::{self, Call, ProxyBody, UpstreamClient, full};
use crate::telemetry::{Metrics, status_class};

/// Largest request body accepted from a client (images as data URLs make chats big).
pub const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;

/// How long in-flight requests may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A loaded mapping with its pooled client.
pub struct Loaded {
    pub mapping: Arc<Mapping>,
    pub client: UpstreamClient,
}

/// Everything the server needs, shared by all connections.
pub struct State {
    pub mappings: BTreeMap<String, Loaded>,
    pub metrics: Metrics,
    pub started: u64,
}

impl State {
    /// Builds the state (one pooled client per mapping).
    pub fn new(mappings: Vec<Arc<Mapping>>) -> Self {
        let mappings = mappings
            .into_iter()
            .map(|m| {
                let client = proxy::client_for(&m);
                (m.name.clone(), Loaded { mapping: m, client })
            })
            .collect();
        State {
            mappings,
            metrics: Metrics::new(),
            started: crate::openai::now_secs(),
        }
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
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    // Keep a caller's request id when it is short and printable; otherwise mint one.
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| format!("req_{}", fastrand_id()), String::from);
    let response = match (&method, segments.as_slice()) {
        (&Method::GET, ["health"]) => Ok(health(&state)),
        (&Method::GET, ["metrics"]) => Ok(text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(),
        )),
        (_, [name, "v1", "chat", "completions"]) if state.mappings.contains_key(*name) => {
            let name = name.to_string();
            if method != Method::POST {
                Err(ProxyError::MethodNotAllowed)
            } else {
                let span = tracing::info_span!("request", id = %request_id, mapping = %name, route = "chat", stream = tracing::field::Empty);
                let resp = chat(&state, &name, req, started).instrument(span).await;
                let status = match &resp {
                    Ok(r) => r.status(),
                    Err(e) => e.status(),
                };
                let m = &state.metrics;
                m.requests
                    .with_label_values(&[&name, "chat", status_class(status.as_u16())])
                    .inc();
                if let Err(e) = &resp {
                    if e.kind().starts_with("upstream_") {
                        m.upstream_errors
                            .with_label_values(&[&name, e.kind()])
                            .inc();
                    }
                    m.request_duration
                        .with_label_values(&[&name, "chat"])
                        .observe(started.elapsed().as_secs_f64());
                    tracing::warn!(mapping = %name, status = status.as_u16(), kind = e.kind(), "request failed");
                }
                resp
            }
        }
        (_, [name, "v1", "models"]) if state.mappings.contains_key(*name) => {
            if method != Method::GET {
                Err(ProxyError::MethodNotAllowed)
            } else {
                Ok(models(&state, name))
            }
        }
        _ => Err(ProxyError::NotFound {
            message: not_found_message(&state, &path),
        }),
    };
    let mut response = response.unwrap_or_else(|e| error_response(&e));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    Ok(response)
}

fn fastrand_id() -> String {
    (0..20).map(|_| fastrand::alphanumeric()).collect()
}

async fn chat(
    state: &State,
    name: &str,
    req: Request<Incoming>,
    started: Instant,
) -> Result<Response<ProxyBody>, ProxyError> {
    let loaded = &state.mappings[name];
    let (parts, body) = req.into_parts();
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
    let request = parse_chat_request(&bytes)?;
    tracing::Span::current().record(
        "stream",
        request
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    );
    tracing::trace!(body = %String::from_utf8_lossy(&bytes), "client request");
    proxy::chat(Call {
        mapping: &loaded.mapping,
        client: &loaded.client,
        metrics: &state.metrics,
        request,
        client_headers: &parts.headers,
        started,
    })
    .await
}

/// Parses and checks an OpenAI chat request: a JSON object with `model` and non-empty `messages`.
pub fn parse_chat_request(bytes: &[u8]) -> Result<Value, ProxyError> {
    let request: Value = serde_json::from_slice(bytes).map_err(|e| ProxyError::BadRequest {
        message: format!("the request body is not valid JSON: {e}"),
        param: None,
    })?;
    let bad = |message: &str, param: &str| ProxyError::BadRequest {
        message: message.into(),
        param: Some(param.into()),
    };
    let Some(obj) = request.as_object() else {
        return Err(bad("the request body must be a JSON object", ""));
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
    match obj.get("messages") {
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
    Ok(request)
}

fn health(state: &State) -> Response<ProxyBody> {
    let mappings: Vec<Value> = state
        .mappings
        .values()
        .map(|l| {
            let m = &l.mapping;
            json!({
                "name": m.name,
                "upstream": format!("{}://{}{}", m.upstream.scheme, m.upstream.authority, m.upstream.base_path),
                "routes": m.chat.iter().map(|_| "chat").collect::<Vec<_>>(),
                "models": m.models,
                "missing_env": m.upstream.missing_env,
            })
        })
        .collect();
    let body = json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "mappings": mappings});
    text(StatusCode::OK, "application/json", body.to_string())
}

fn models(state: &State, name: &str) -> Response<ProxyBody> {
    let m = &state.mappings[name].mapping;
    let data: Vec<Value> = m
        .models
        .iter()
        .map(
            |id| json!({"id": id, "object": "model", "created": state.started, "owned_by": m.name}),
        )
        .collect();
    text(
        StatusCode::OK,
        "application/json",
        json!({"object": "list", "data": data}).to_string(),
    )
}

fn not_found_message(state: &State, path: &str) -> String {
    let names: Vec<&str> = state.mappings.keys().map(String::as_str).collect();
    format!(
        "no route for {path}. Use /NAME/v1/chat/completions or /NAME/v1/models, where NAME is one of: {}",
        names.join(", ")
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_validation() {
        assert!(
            parse_chat_request(
                b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"
            )
            .is_ok()
        );
        let param = |b: &[u8]| match parse_chat_request(b) {
            Err(ProxyError::BadRequest { param, .. }) => param,
            other => panic!("{other:?}"),
        };
        assert_eq!(param(b"{nope"), None);
        assert_eq!(
            param(b"{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\"}]}").as_deref(),
            Some("n")
        );
        assert_eq!(
            param(b"{\"messages\":[{\"role\":\"user\"}]}").as_deref(),
            Some("model")
        );
        assert_eq!(
            param(b"{\"model\":\"m\",\"messages\":[]}").as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(b"{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}").as_deref(),
            Some("messages")
        );
        assert_eq!(
            param(b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}],\"stream\":\"yes\"}")
                .as_deref(),
            Some("stream")
        );
    }
}
