//! The HTTP surface: a hyper 1 server that routes each request to its handler.
//!
//! `serve` is the seam that `main` and the integration tests share: it takes a bound listener,
//! the loaded state and a shutdown future. `handle` mints the request id, puts the request's
//! [`Shield`] in place, admits it and routes it by path.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::error::ProxyError;
use crate::ops::telemetry::Rejection;
use crate::serving::admin::admin;
use crate::serving::admission::{Opening, Permit};
use crate::serving::auth::KeyName;
use crate::serving::conn::{Activity, Ended};
use crate::serving::dispatch::call;
use crate::serving::health::health;
use crate::serving::reply::{error_response, text};
use crate::serving::router::op_for;
use crate::serving::shield::Shield;
use crate::serving::state::{MappingSet, State};
use crate::translate::body::ProxyBody;

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to a deadline).
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = state.limits;
    let builder = Arc::new(crate::serving::conn::builder(&limits));
    // Tells connections that the server is stopping; each one holds a receiver until it ends.
    let (stopping, stop) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&state);
                let builder = Arc::clone(&builder);
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    let opening = tokio::select! {
                        ready = crate::serving::admission::first_bytes(&stream, limits.header_read_timeout) => match ready {
                            Ok(Opening::Closed) => return,
                            Ok(opening) => opening,
                            Err(_) => {
                                state.metrics.rejected_for(Rejection::HeaderTimeout).inc();
                                tracing::debug!(%peer, "connection closed: no request within the header timeout");
                                return;
                            }
                        },
                        _ = stop.wait_for(|s| *s) => return,
                    };
                    // Whether a request got through: a timeout after that is an idle keep-alive.
                    let served = Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let seen = Arc::clone(&served);
                    let svc_state = Arc::clone(&state);
                    // HTTP/2 connections count their requests in flight, to be closed when idle.
                    let activity = (opening == Opening::Http2).then(Activity::default);
                    let tracker = activity.clone();
                    let svc = service_fn(move |req| {
                        seen.store(true, std::sync::atomic::Ordering::Relaxed);
                        let busy = tracker.as_ref().map(Activity::begin);
                        let response = handle(Arc::clone(&svc_state), peer, req);
                        async move {
                            let response = response.await?;
                            Ok::<_, std::convert::Infallible>(match busy {
                                Some(b) => b.hold(response),
                                None => response,
                            })
                        }
                    });
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    let ended = crate::serving::conn::drive(conn, |c| c.graceful_shutdown(), activity, limits.header_read_timeout, stop).await;
                    let never_served = !served.load(std::sync::atomic::Ordering::Relaxed);
                    match ended {
                        Ended::Idle if never_served => {
                            state.metrics.rejected_for(Rejection::HeaderTimeout).inc();
                            tracing::debug!(%peer, "HTTP/2 connection closed: no request within the header timeout");
                        }
                        Ended::Idle => tracing::debug!(%peer, "idle HTTP/2 connection closed"),
                        Ended::Served(Err(e)) => {
                            let timed_out = e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout);
                            if timed_out && never_served {
                                state.metrics.rejected_for(Rejection::HeaderTimeout).inc();
                                tracing::debug!(%peer, "connection closed: request headers not received within the header timeout");
                            } else {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        Ended::Served(Ok(())) => {}
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(stop);
    let _ = stopping.send(true);
    tracing::info!(
        grace = ?limits.shutdown_grace,
        in_flight = state.metrics.in_flight.get(),
        "shutting down: no new connections; waiting for in-flight requests"
    );
    // Every connection task holds a receiver until it ends.
    if tokio::time::timeout(limits.shutdown_grace, stopping.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = state.metrics.in_flight.get(),
            "shutdown grace over: cutting the requests still running"
        );
    } else {
        tracing::info!("every in-flight request finished");
    }
    Ok(())
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
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
    // Everything this request is answered passes through its shield (redaction).
    let shield = Shield::new(state.redactors());
    req.extensions_mut().insert(Arc::clone(&shield));
    let path = req.uri().path().to_string();
    let req_uri = req.uri().clone();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    // A client of the Messages API gets its errors in that API's shape.
    let messages = is_messages(&segments);
    let render = |e: &ProxyError| {
        if messages {
            crate::serving::reply::messages_error_response(e)
        } else {
            error_response(e)
        }
    };
    let permit = match admit(&state, &mut req, &segments, peer, &request_id) {
        Ok(p) => p,
        Err(e) => {
            shield.saw_request(&req_uri, b"");
            return Ok(with_request_id(shield.wrap(render(&e)), &request_id));
        }
    };
    let response = match (req.method(), segments.as_slice()) {
        (&Method::GET, ["health"]) => Ok(health(&state, &set)),
        (_, ["admin", rest @ ..]) => admin(&state, &req, rest).await,
        (&Method::GET, ["metrics"]) => Ok(text(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            state.metrics.render(),
        )),
        (_, ["v1", "responses", id, rest @ ..]) => {
            crate::serving::responses::routes::stored(&state, &req, id, rest).await
        }
        (_, [name, "v1", "responses", id, rest @ ..]) if set.mappings.contains_key(*name) => {
            crate::serving::responses::routes::stored(&state, &req, id, rest).await
        }
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
    // A request whose body was not read (GET, an early refusal): its request line only.
    shield.saw_request(&req_uri, b"");
    let mut response = shield.wrap(response.unwrap_or_else(|e| render(&e)));
    if let Some(p) = permit {
        // The permit lives in the body: a stream holds it until its last byte.
        response = crate::serving::admission::hold(response, p);
    }
    Ok(with_request_id(response, &request_id))
}

fn with_request_id(mut response: Response<ProxyBody>, request_id: &str) -> Response<ProxyBody> {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Lets a request in, or says why not. First the inbound API key (every path but `/health`,
/// and `/metrics` unless `--protect-metrics`): a valid key's name goes into the request's
/// extensions ([`KeyName`]) and the `Authorization` header is removed, so that no upstream can
/// ever see it. Then the concurrency limit, for API calls only (not `/metrics`).
fn admit(
    state: &State,
    req: &mut Request<Incoming>,
    segments: &[&str],
    peer: SocketAddr,
    request_id: &str,
) -> Result<Option<Permit>, ProxyError> {
    let metrics_path = segments == ["metrics"];
    if segments == ["health"] || (metrics_path && !state.auth.metrics_protected()) {
        return Ok(None);
    }
    if segments.first() == Some(&"admin") {
        // The admin API has keys of its own; an ordinary API key does not open it.
        // No admin keys means off, never open: `check` lets everyone in when it has no key.
        let admin = state.admin.as_ref().filter(|a| a.enabled());
        return match admin.map(|a| a.check(req.headers())) {
            None | Some(Ok(None)) => Err(ProxyError::NotFound {
                message: "the admin API is off (rosetta serve --admin-keys)".into(),
            }),
            Some(Ok(Some(_))) => Ok(None),
            Some(Err(denied)) => {
                state.metrics.rejected_for(Rejection::Unauthorized).inc();
                tracing::warn!(id = %request_id, %peer, path = %req.uri().path(), reason = denied.reason(), "admin request refused");
                Err(ProxyError::Unauthorized {
                    message: denied.message().into(),
                })
            }
        };
    }
    let messages = is_messages(segments);
    match state.auth.check_with(req.headers(), messages) {
        Ok(Some(name)) => {
            req.headers_mut().remove(AUTHORIZATION);
            if messages {
                req.headers_mut().remove(crate::serving::auth::API_KEY);
            }
            req.extensions_mut().insert::<KeyName>(name);
        }
        Ok(None) => {}
        Err(denied) => {
            state.metrics.rejected_for(Rejection::Unauthorized).inc();
            // Never the presented key: only why it was refused.
            tracing::warn!(id = %request_id, %peer, path = %req.uri().path(), reason = denied.reason(), "request refused: no valid API key");
            return Err(ProxyError::Unauthorized {
                message: denied.message().into(),
            });
        }
    }
    if metrics_path {
        return Ok(None);
    }
    match state.admission.try_admit() {
        Some(p) => Ok(Some(p)),
        None => {
            state.metrics.rejected_for(Rejection::Concurrency).inc();
            let limit = state.admission.limit();
            tracing::warn!(id = %request_id, %peer, limit, "request refused: concurrency limit reached");
            Err(ProxyError::Overloaded { limit })
        }
    }
}

/// Whether a path is the Messages API's (`/v1/messages...` or `/NAME/v1/messages...`).
fn is_messages(segments: &[&str]) -> bool {
    matches!(segments, ["v1", "messages", ..] | [_, "v1", "messages", ..])
}

fn random_id() -> String {
    (0..20).map(|_| fastrand::alphanumeric()).collect()
}

fn not_found(set: &MappingSet, path: &str) -> ProxyError {
    let names: Vec<&str> = set.mappings.keys().map(String::as_str).collect();
    ProxyError::NotFound {
        message: format!(
            "no route for {path}. Use /NAME/v1/chat/completions, /NAME/v1/responses, /NAME/v1/messages, /NAME/v1/completions, /NAME/v1/embeddings or /NAME/v1/models (or /v1/... routed by model), where NAME is one of: {}",
            names.join(", ")
        ),
    }
}
