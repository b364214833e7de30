//! The HTTP surface: a hyper 1 server that routes to mappings, plus `/health` and `/metrics`.
//!
//! `serve` is the seam that `main` and the integration tests share: it takes a bound listener,
//! the loaded state and a shutdown future.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::dialect::Dialect;
use crate::dialect::openai::now_secs;
use crate::error::ProxyError;
use crate::ledger::tab::{Accounting, Caller, Tab};
use crate::ledger::writer::Reservation;
use crate::limits::Limits;
use crate::mapping::Mapping;
use crate::mapping::Op;
use crate::ops::redact::Redactor;
use crate::ops::telemetry::{Metrics, status_class};
use crate::ops::trace::{self, TraceMode};
use crate::serving::admission::{Admission, Opening, Permit};
use crate::serving::auth::{Auth, KeyName};
use crate::serving::conn::{Activity, Ended};
use crate::serving::memory::MemoryBudget;
use crate::serving::responses::turn;
use crate::serving::router::{model_list, op_for, pick_mapping};
use crate::serving::shield::Shield;
use crate::translate::body::{ProxyBody, full};
use crate::translate::proxy::{self, Call};
use crate::translate::request::model_not_found;
use crate::upstream::pool::Pool;
use crate::upstream::{self, UpstreamClient};

/// A loaded mapping with its pooled client.
pub struct Loaded {
    pub mapping: Arc<Mapping>,
    pub client: UpstreamClient,
    /// The run-time health of the mapping's endpoints.
    pub pool: Arc<Pool>,
}

/// One compiled set of mappings, swapped whole on reload: a request keeps the set it started
/// with (an `Arc`) until it ends, streams included.
pub struct MappingSet {
    pub mappings: BTreeMap<String, Loaded>,
    /// 0 for the set loaded at start-up, one more for each set swapped in since (reloads).
    pub generation: u64,
    /// When this set was compiled (Unix seconds).
    pub loaded_at: u64,
}

impl MappingSet {
    /// Builds the set (one pooled client per mapping).
    pub fn new(mappings: Vec<Arc<Mapping>>) -> Self {
        let mappings = mappings
            .into_iter()
            .map(|m| {
                let client = upstream::client_for(&m);
                let pool = Arc::new(Pool::new(m.upstream.endpoints.len()));
                (
                    m.name.clone(),
                    Loaded {
                        mapping: m,
                        client,
                        pool,
                    },
                )
            })
            .collect();
        MappingSet {
            mappings,
            generation: 0,
            loaded_at: crate::dialect::openai::now_secs(),
        }
    }

    /// Keeps, for each mapping whose endpoints (URLs, weights) and connect timeout did not
    /// change, the warm connection pool and the endpoint health of `old`: a reload does not
    /// put a failing endpoint back into rotation.
    fn carry_over(&mut self, old: &MappingSet) {
        for (name, new) in &mut self.mappings {
            let Some(prev) = old.mappings.get(name) else {
                continue;
            };
            let (a, b) = (&new.mapping.upstream, &prev.mapping.upstream);
            let same = a.connect_timeout == b.connect_timeout
                && a.endpoints.len() == b.endpoints.len()
                && a.endpoints
                    .iter()
                    .zip(&b.endpoints)
                    .all(|(x, y)| x.label == y.label && x.weight == y.weight);
            if same {
                new.pool = Arc::clone(&prev.pool);
                new.client = prev.client.clone();
            }
        }
    }
}

/// A redactor of every mapping's secrets (remembered for logs and the ledger too).
fn redactor_of(set: &MappingSet) -> Redactor {
    let secrets: Vec<&String> = set
        .mappings
        .values()
        .flat_map(|l| l.mapping.upstream.secrets.iter())
        .collect();
    crate::ops::redact::remember(secrets.iter().copied());
    Redactor::new(secrets)
}

/// Everything the server needs, shared by all connections.
pub struct State {
    current: ArcSwap<MappingSet>,
    pub metrics: Metrics,
    pub started: u64,
    /// Which requests are logged end to end (`--trace`).
    pub trace: TraceMode,
    /// Client-side limits ([`State::with_limits`]; defaults otherwise).
    pub limits: Limits,
    /// Inbound API keys ([`State::with_auth`]; off otherwise).
    pub auth: Arc<Auth>,
    /// The concurrency limit, sized by `limits.max_concurrent`.
    admission: Admission,
    /// The memory budget of in-flight requests, sized by `limits.max_inflight_bytes`.
    memory: Arc<MemoryBudget>,
    /// Usage, pricing and budgets ([`State::with_accounting`]; metrics only otherwise).
    pub accounting: Accounting,
    /// The keys of `/admin/...` ([`State::with_admin`]; the admin API is off otherwise).
    pub admin: Option<Auth>,
    /// The secrets of the current mappings, redacted from everything sent (rebuilt on reload).
    redactor: ArcSwap<Redactor>,
}

impl State {
    /// Builds the state (one pooled client per mapping).
    pub fn new(mappings: Vec<Arc<Mapping>>) -> Self {
        let set = MappingSet::new(mappings);
        let metrics = Metrics::new();
        metrics.observe_mappings(set.mappings.len(), set.loaded_at);
        let admission = Admission::new(
            crate::limits::DEFAULT_MAX_CONCURRENT,
            metrics.in_flight.clone(),
        );
        let redactor = ArcSwap::from_pointee(redactor_of(&set));
        let memory = MemoryBudget::new(
            crate::limits::DEFAULT_MAX_INFLIGHT_BYTES,
            metrics.inflight_bytes.clone(),
        );
        State {
            redactor,
            current: ArcSwap::from_pointee(set),
            metrics,
            started: crate::dialect::openai::now_secs(),
            trace: TraceMode::Off,
            limits: Limits::default(),
            auth: Arc::new(Auth::off()),
            admission,
            memory,
            accounting: Accounting::default(),
            admin: None,
        }
    }

    /// The mapping set new requests use.
    pub fn mappings(&self) -> Arc<MappingSet> {
        self.current.load_full()
    }

    /// Replaces the mapping set atomically; requests already running keep the old one. The new
    /// set's `generation` becomes the old one's plus one (callers serialize replacements:
    /// `reload::Reloader` does).
    pub fn replace_mappings(&self, mut set: MappingSet) {
        let old = self.current.load();
        set.generation = old.generation + 1;
        set.carry_over(&old);
        self.metrics
            .observe_mappings(set.mappings.len(), set.loaded_at);
        self.redactor.store(Arc::new(redactor_of(&set)));
        self.current.store(Arc::new(set));
    }

    /// The redactors of the current secrets (the mappings', the inbound keys', the admin
    /// keys'): what every string passes through on its way to a client ([`Shield`]).
    pub fn redactors(&self) -> Vec<Arc<Redactor>> {
        let mut out = vec![self.redactor.load_full(), self.auth.redactor()];
        out.extend(self.admin.as_ref().map(Auth::redactor));
        out
    }

    /// The same state, tracing the requests `mode` selects.
    pub fn with_trace(mut self, mode: TraceMode) -> Self {
        self.trace = mode;
        self
    }

    /// The same state with these client limits (body size and content, memory budget, read
    /// timeouts, concurrency limit, shutdown grace).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.admission = Admission::new(limits.max_concurrent, self.metrics.in_flight.clone());
        self.memory = MemoryBudget::new(
            limits.max_inflight_bytes,
            self.metrics.inflight_bytes.clone(),
        );
        self.limits = limits;
        self
    }

    /// The same state, requiring the inbound API keys of `auth` (with none, auth stays off).
    pub fn with_auth(mut self, auth: impl Into<Arc<Auth>>) -> Self {
        self.auth = auth.into();
        self
    }

    /// The same state, recording calls on a ledger and enforcing budgets.
    pub fn with_accounting(mut self, accounting: Accounting) -> Self {
        self.accounting = accounting;
        self
    }

    /// The same state, serving `/admin/...` to holders of these keys. Keys with no key in them
    /// leave the admin API off: it is never open to anyone.
    pub fn with_admin(mut self, admin: Auth) -> Self {
        self.admin = admin.enabled().then_some(admin);
        self
    }
}

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
                                state.metrics.rejected.with_label_values(&["header_timeout"]).inc();
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
                            state.metrics.rejected.with_label_values(&["header_timeout"]).inc();
                            tracing::debug!(%peer, "HTTP/2 connection closed: no request within the header timeout");
                        }
                        Ended::Idle => tracing::debug!(%peer, "idle HTTP/2 connection closed"),
                        Ended::Served(Err(e)) => {
                            let timed_out = e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout);
                            if timed_out && never_served {
                                state.metrics.rejected.with_label_values(&["header_timeout"]).inc();
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
    let permit = match admit(&state, &mut req, &segments, peer, &request_id) {
        Ok(p) => p,
        Err(e) => {
            shield.saw_request(&req_uri, b"");
            return Ok(with_request_id(
                shield.wrap(error_response(&e)),
                &request_id,
            ));
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
    let mut response = shield.wrap(response.unwrap_or_else(|e| error_response(&e)));
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
                state
                    .metrics
                    .rejected
                    .with_label_values(&["unauthorized"])
                    .inc();
                tracing::warn!(id = %request_id, %peer, path = %req.uri().path(), reason = denied.reason(), "admin request refused");
                Err(ProxyError::Unauthorized {
                    message: denied.message().into(),
                })
            }
        };
    }
    match state.auth.check(req.headers()) {
        Ok(Some(name)) => {
            req.headers_mut().remove(AUTHORIZATION);
            req.extensions_mut().insert::<KeyName>(name);
        }
        Ok(None) => {}
        Err(denied) => {
            state
                .metrics
                .rejected
                .with_label_values(&["unauthorized"])
                .inc();
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
            state
                .metrics
                .rejected
                .with_label_values(&["concurrency"])
                .inc();
            let limit = state.admission.limit();
            tracing::warn!(id = %request_id, %peer, limit, "request refused: concurrency limit reached");
            Err(ProxyError::Overloaded { limit })
        }
    }
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
        match e {
            ProxyError::TooLarge { .. } => m.rejected.with_label_values(&["too_large"]).inc(),
            ProxyError::TooComplex { .. } => m.rejected.with_label_values(&["too_complex"]).inc(),
            ProxyError::MemoryBusy { .. } => m.rejected.with_label_values(&["memory"]).inc(),
            ProxyError::ClientTimeout { .. } => {
                m.rejected.with_label_values(&["body_timeout"]).inc()
            }
            _ => {}
        }
        tracing::warn!(id = %request_id, mapping = %label, status = status.as_u16(), kind = e.kind(), "request failed");
        if seen.traced {
            tracing::info!(target: "rosetta::ops::trace", id = %request_id, status = status.as_u16(), body = %e.to_json(), "client response (error)");
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
    let limits = &state.limits;
    let read = crate::serving::intake::read(&parts.headers, body, limits, &state.memory);
    let read = if limits.body_read_timeout.is_zero() {
        Ok(read.await)
    } else {
        tokio::time::timeout(limits.body_read_timeout, read).await
    };
    let (bytes, mut charge) = match read {
        Err(_) => {
            return Err(ProxyError::ClientTimeout {
                after: limits.body_read_timeout,
            });
        }
        Ok(read) => read?,
    };
    if let Some(shield) = parts.extensions.get::<Arc<Shield>>() {
        shield.saw_request(&parts.uri, &bytes);
    }
    if trace {
        tracing::info!(
            target: "rosetta::ops::trace",
            id = %request_id,
            path = %parts.uri.path(),
            headers = %trace::headers(&parts.headers),
            body = %trace::text(&bytes),
            "client request"
        );
    }
    let mut request = crate::serving::intake::parse(op, &bytes, limits, &mut charge)?;
    let client_model = request["model"].as_str().unwrap_or_default().to_string();
    // The name (never the key) of the inbound API key, when auth is on.
    let key = parts.extensions.get::<KeyName>().map(KeyName::as_str);
    // A Responses call continues its stored conversation and becomes a chat request.
    let mut turn = None;
    if op == Op::Responses {
        let owner = turn::owner(&state.accounting, &parts.headers, key);
        let (chat, t) = turn::begin(&state.accounting, &request, owner, now_secs()).await?;
        request = chat;
        turn = Some(t);
    }
    let (name, model) = match seen.mapping {
        Some(n) => (n, client_model.as_str()),
        None => pick_mapping(set, &client_model)?,
    };
    seen.mapping = Some(name);
    let loaded = &set.mappings[name];
    if let Some(t) = turn.as_mut() {
        t.settle_dropped(&loaded.mapping, &mut request, strict(&parts.headers))?;
    }
    let upstream_model = loaded
        .mapping
        .resolve_model(model)
        .map_err(model_not_found)?;
    request["model"] = Value::String(upstream_model.clone());
    seen.stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let user = state
        .accounting
        .user(&parts.headers, &request, key)
        .map(str::to_string);
    if user.is_none()
        && loaded
            .mapping
            .pricing
            .as_ref()
            .is_some_and(|p| p.require_user)
    {
        let header = state
            .accounting
            .user_header
            .as_ref()
            .map(|h| format!(" or in the {h} header"))
            .unwrap_or_default();
        return Err(ProxyError::BadRequest {
            message: format!(
                "mapping {name:?} charges each call to a user: name the user in the request's `user` field{header}"
            ),
            param: Some("user".into()),
        });
    }
    let span = tracing::info_span!("request", id = %request_id, mapping = %name, route = op.name(), stream = seen.stream, key, user = user.as_deref());
    span.in_scope(|| tracing::trace!(body = %String::from_utf8_lossy(&bytes), "client request"));
    // The parsed request is all the call needs from here on.
    drop(bytes);
    let mut tab = Tab::open(
        state.accounting.ledger.clone(),
        &state.metrics,
        &loaded.mapping,
        model,
        &upstream_model,
        Caller {
            request_id,
            user: user.as_deref(),
            key,
            stream: seen.stream,
            started,
        },
    );
    if let Err(e) = reserve_budget(state, &mut tab, user.as_deref(), key).await {
        span.in_scope(|| tracing::warn!(error = %e, "budget exceeded"));
        tab.failed(&e, e.status().as_u16(), &Default::default());
        return Err(e);
    }
    let mut tab = Some(tab);
    let dialect = match &turn {
        Some(t) => Dialect::Responses(Arc::clone(&t.echo)),
        None => proxy::dialect_of(op),
    };
    let result = run_with_fallbacks(
        state,
        set,
        name,
        op,
        (loaded, model, request),
        Shared {
            client_model: &client_model,
            dialect: &dialect,
            headers: &parts.headers,
            started,
            trace: trace.then(|| request_id.to_string()),
            span: &span,
        },
        &mut tab,
    )
    .await;
    // A stream took its tab into its body, a whole answer closed it; what is left failed.
    if let Some(t) = tab.take() {
        match &result {
            Err(e) => t.failed(e, e.status().as_u16(), &Default::default()),
            Ok(_) => t.succeeded(&Default::default()),
        }
    }
    let result = match (result, turn) {
        (Ok(r), Some(t)) if seen.stream => Ok(t.finish_stream(r)),
        (Ok(r), Some(t)) => Ok(t.finish_whole(r).await),
        (result, _) => result,
    };
    // The charge lives in the body: a stream keeps its parsed request to its last byte.
    result.map(|r| crate::serving::admission::hold(r, charge))
}

/// Whether the client asked for strictness (`x-rosetta-strict: true`): a request that would
/// lose something on its way upstream is refused instead.
fn strict(headers: &http::HeaderMap) -> bool {
    headers
        .get("x-rosetta-strict")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// Takes a hold on every budget limit of the caller, or refuses the call (429,
/// `insufficient_quota`). With the ledger's store unreachable, the call goes through
/// unchecked: serving matters more than a budget (`rosetta_budget_checks_total{result="store_error"}`).
async fn reserve_budget(
    state: &State,
    tab: &mut Tab,
    user: Option<&str>,
    key: Option<&str>,
) -> Result<(), ProxyError> {
    let acc = &state.accounting;
    let (Some(budgets), Some(ledger)) = (&acc.budgets, &acc.ledger) else {
        return Ok(());
    };
    let checks = budgets.checks(user, key, ledger.now_ms(), tab.hold_cost());
    if checks.is_empty() {
        return Ok(());
    }
    let currency = budgets.currency_or(tab.currency());
    match ledger.reserve(&checks, tab.id()).await {
        Reservation::Granted => {
            tab.held();
            Ok(())
        }
        Reservation::Denied(denial) => {
            let check = &checks[denial.check];
            Err(ProxyError::QuotaExceeded {
                message: crate::ledger::budgets::describe(check, &denial, currency),
                resets_at: check.resets_at_ms.div_euclid(1000),
            })
        }
        Reservation::Unavailable(error) => {
            tracing::warn!(%error, "budgets not checked: the ledger store is unavailable");
            Ok(())
        }
    }
}

/// What every try of a call shares.
struct Shared<'a> {
    client_model: &'a str,
    dialect: &'a Dialect,
    headers: &'a http::HeaderMap,
    started: Instant,
    trace: Option<String>,
    span: &'a tracing::Span,
}

/// Runs a call on its mapping, then on each fallback in turn (never the same mapping twice)
/// while the failure is the upstream's.
async fn run_with_fallbacks<'s>(
    state: &State,
    set: &'s MappingSet,
    name: &'s str,
    op: Op,
    first: (&'s Loaded, &str, Value),
    shared: Shared<'_>,
    tab: &mut Option<Tab>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let (mut loaded, model, request) = first;
    let (mut model, mut request) = (model.to_string(), Arc::new(request));
    let mut visited = vec![name];
    let mut used_fallback = None;
    loop {
        let fallback = loaded
            .mapping
            .fallback_for(&model)
            .filter(|f| !visited.contains(&f.mapping.as_str()))
            .and_then(|f| {
                set.mappings
                    .get_key_value(&f.mapping)
                    .map(|(k, l)| (k, l, f))
            });
        let result = proxy::run(Call {
            mapping: &loaded.mapping,
            client: &loaded.client,
            pool: &loaded.pool,
            metrics: &state.metrics,
            op,
            dialect: shared.dialect,
            request: Arc::clone(&request),
            has_fallback: fallback.is_some(),
            client_model: if used_fallback.is_some() {
                &model
            } else {
                shared.client_model
            },
            client_headers: shared.headers,
            started: shared.started,
            trace: shared.trace.clone(),
            tab: &mut *tab,
            limits: &state.limits,
        })
        .instrument(shared.span.clone())
        .await;
        let (Err(error), Some((next_name, next, f))) = (&result, fallback) else {
            return result.map(|mut r| {
                if let Some(v) = used_fallback.and_then(|u: String| HeaderValue::from_str(&u).ok())
                {
                    r.headers_mut().insert("x-rosetta-fallback", v);
                }
                r
            });
        };
        if !error.is_upstream_failure() {
            return result;
        }
        let next_model = f.model.clone().unwrap_or_else(|| model.clone());
        let Ok(upstream_model) = next.mapping.resolve_model(&next_model) else {
            return result;
        };
        shared.span.in_scope(|| tracing::warn!(from = %loaded.mapping.name, to = %next_name, model = %next_model, error = %error, "falling back"));
        state
            .metrics
            .fallbacks
            .with_label_values(&[name, next_name])
            .inc();
        if let Some(t) = tab.as_mut() {
            t.retarget(&next.mapping, &next_model, &upstream_model);
        }
        let mut r = (*request).clone();
        r["model"] = Value::String(upstream_model);
        request = Arc::new(r);
        used_fallback = Some(format!("{next_name}/{next_model}"));
        visited.push(next_name);
        loaded = next;
        model = next_model;
    }
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

/// `/health`: always 200 while the process serves (a liveness probe must not restart Rosetta
/// because an upstream is down); `status` is `degraded` when some mapping has no endpoint in
/// rotation, and each endpoint reports its state and last error.
fn health(state: &State, set: &MappingSet) -> Response<ProxyBody> {
    let mut degraded = false;
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
            let endpoints = l.pool.report(&m.upstream.endpoints);
            if !(0..m.upstream.endpoints.len()).any(|i| l.pool.healthy(i)) {
                degraded = true;
            }
            json!({
                "name": m.name,
                "upstream": m.upstream.endpoints[0].label,
                "endpoints": endpoints,
                "fallback": m.upstream.fallback.as_ref().map(|f| &f.mapping),
                "routes": routes,
                "models": m.models.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
                "missing_env": m.upstream.missing_env,
            })
        })
        .collect();
    let ledger = state.accounting.ledger.as_ref().map(|l| l.status());
    if ledger
        .as_ref()
        .is_some_and(|l| l.state == crate::ledger::writer::LedgerState::Unavailable)
    {
        degraded = true;
    }
    let status = if degraded { "degraded" } else { "ok" };
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "mappings_generation": set.generation,
        "mappings_loaded_at": set.loaded_at,
        "mappings": mappings,
        "ledger": ledger,
    });
    text(StatusCode::OK, "application/json", body.to_string())
}

/// `GET /admin/usage?since=YYYY-MM-DD&by=user|key|model|mapping|day`: the ledger's report as
/// JSON (what `rosetta usage --json` prints). The caller's admin key was checked in `admit`.
async fn admin(
    state: &State,
    req: &Request<Incoming>,
    rest: &[&str],
) -> Result<Response<ProxyBody>, ProxyError> {
    if rest != ["usage"] {
        return Err(ProxyError::NotFound {
            message: format!(
                "no admin path {:?}; there is /admin/usage",
                req.uri().path()
            ),
        });
    }
    if req.method() != Method::GET {
        return Err(ProxyError::MethodNotAllowed);
    }
    let Some(ledger) = &state.accounting.ledger else {
        return Err(ProxyError::NotFound {
            message: "there is no ledger (rosetta serve --ledger off)".into(),
        });
    };
    let mut since = None;
    let mut by = crate::ledger::GroupBy::User;
    for (k, v) in req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        match k {
            "since" => since = Some(v.to_string()),
            "by" => {
                by = crate::ledger::GroupBy::parse(v).ok_or_else(|| ProxyError::BadRequest {
                    message: format!("by={v:?}: use user, key, model, mapping or day"),
                    param: Some("by".into()),
                })?
            }
            _ => {}
        }
    }
    let since = since.unwrap_or_else(|| crate::ledger::month_start_of(ledger.now_ms()));
    let since_ms = crate::ledger::parse_day(&since).ok_or_else(|| ProxyError::BadRequest {
        message: format!("since={since:?} is not a date (YYYY-MM-DD)"),
        param: Some("since".into()),
    })?;
    let rows = ledger
        .report(since_ms, by)
        .await
        .map_err(|e| ProxyError::Unreachable {
            message: format!("the ledger cannot answer: {e}"),
        })?;
    Ok(text(
        StatusCode::OK,
        "application/json",
        crate::ledger::report::json(&rows, by, &since).to_string(),
    ))
}

fn not_found(set: &MappingSet, path: &str) -> ProxyError {
    let names: Vec<&str> = set.mappings.keys().map(String::as_str).collect();
    ProxyError::NotFound {
        message: format!(
            "no route for {path}. Use /NAME/v1/chat/completions, /NAME/v1/responses, /NAME/v1/completions, /NAME/v1/embeddings or /NAME/v1/models (or /v1/... routed by model), where NAME is one of: {}",
            names.join(", ")
        ),
    }
}

/// A JSON body with `status`.
pub fn json_response(status: StatusCode, body: &Value) -> Response<ProxyBody> {
    text(status, "application/json", body.to_string())
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
    match e {
        ProxyError::Unauthorized { .. } => {
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        // A used-up budget does not come back in seconds: the OpenAI SDKs must not retry it.
        ProxyError::QuotaExceeded { resets_at, .. } => {
            let h = r.headers_mut();
            h.insert("x-should-retry", HeaderValue::from_static("false"));
            if let Ok(v) = HeaderValue::from_str(&resets_at.to_string()) {
                h.insert("x-rosetta-budget-reset", v);
            }
        }
        // The rest of the body is unread: this connection cannot carry another request.
        ProxyError::ClientTimeout { .. }
        | ProxyError::TooLarge { .. }
        | ProxyError::TooComplex { unread: true, .. }
        | ProxyError::MemoryBusy { unread: true, .. } => {
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    r
}
