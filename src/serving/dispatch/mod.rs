//! One API call, step by step: read the body, pick the mapping and model, charge it to its
//! caller (and hold its budget), run it with its fallbacks, and finish it.
//!
//! `call` wraps the steps with the call's metrics and logs; `dispatch` runs them in order:
//! `read::request`, `pick::pick`, `budget::caller` and `budget::open_tab`,
//! `fallbacks::run_with_fallbacks`, `finish::finish`.

mod budget;
mod count;
mod fallbacks;
mod finish;
mod pick;
mod read;

use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use serde_json::Value;

use crate::dialect::Dialect;
use crate::dialect::openai::now_secs;
use crate::error::ProxyError;
use crate::ledger::tab::Caller;
use crate::mapping::Op;
use crate::ops::telemetry::Rejection;
use crate::serving::auth::KeyName;
use crate::serving::models::models;
use crate::serving::responses::turn;
use crate::serving::state::{Loaded, MappingSet, State};
use crate::translate::body::ProxyBody;
use crate::translate::{fidelity, messages, proxy};

use fallbacks::Shared;

/// One API call, on a named mapping (`/NAME/v1/...`) or on the unified surface (`/v1/...`).
/// Every outcome is counted; `-` labels a call that no mapping could be chosen for.
pub async fn call(
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
        let handles = name
            .and_then(|n| set.mappings.get(n))
            .map_or(&set.unmapped, |l| &l.metrics);
        handles.requests(op, status.as_u16()).inc();
        return result;
    }
    let mut seen = Seen {
        mapping: name
            .and_then(|n| set.mappings.get_key_value(n))
            .map(|(k, l)| (k.as_str(), l)),
        stream: false,
        traced: false,
    };
    let result = dispatch(state, set, &mut seen, op, req, started, request_id).await;
    let handles = seen.mapping.map_or(&set.unmapped, |(_, l)| &l.metrics);
    let label = handles.name();
    let status = match &result {
        Ok(r) => r.status(),
        Err(e) => e.status(),
    };
    handles.requests(op, status.as_u16()).inc();
    if let Err(e) = &result {
        handles.upstream_error(e);
        let rejection = match e {
            ProxyError::TooLarge { .. } => Some(Rejection::TooLarge),
            ProxyError::TooComplex { .. } => Some(Rejection::TooComplex),
            ProxyError::MemoryBusy { .. } => Some(Rejection::Memory),
            ProxyError::ClientTimeout { .. } => Some(Rejection::BodyTimeout),
            _ => None,
        };
        if let Some(r) = rejection {
            state.metrics.rejected_for(r).inc();
        }
        tracing::warn!(id = %request_id, mapping = %label, status = status.as_u16(), kind = e.kind(), "request failed");
        if seen.traced {
            tracing::info!(target: "rosetta::trace", id = %request_id, status = status.as_u16(), body = %e.to_json(), "client response (error)");
        }
    }
    // A stream's duration is observed when it ends (see `body`).
    if result.is_err() || !seen.stream {
        handles
            .request_duration(op)
            .observe(started.elapsed().as_secs_f64());
    }
    result
}

/// What [`dispatch`] learned about a call, for its metrics and logs, even when it failed.
struct Seen<'s> {
    /// The mapping chosen (its name, and its `Loaded`), once it is known.
    mapping: Option<(&'s str, &'s Loaded)>,
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
    if matches!(op, Op::Messages | Op::CountTokens) {
        messages::check_version(&parts.headers)?;
    }
    let trace = state.trace.wanted(&parts.headers);
    seen.traced = trace;
    let (bytes, charge, mut request) =
        read::request(state, &parts, body, op, trace, request_id).await?;
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
    let picked = pick::pick(
        set,
        seen,
        op,
        &client_model,
        &mut request,
        turn.as_mut(),
        &parts.headers,
    )?;
    let (name, loaded, model) = (picked.name, picked.loaded, picked.model);
    if op == Op::CountTokens {
        return count::answer(state, loaded, &request, &parts.headers).await;
    }
    // A Messages call becomes a chat request, unless the upstream speaks the dialect itself;
    // what the mapping does not translate of it is worked out on that chat request.
    let mut dropped = picked.dropped;
    let native = op == Op::Messages && messages::native(&loaded.mapping);
    if op == Op::Messages && !native {
        let started = messages::start(&request, &parts.headers)?;
        request = started.chat;
        let mut earlier = started.dropped;
        messages::settle_dropped(&mut earlier, &loaded.mapping, &mut request)?;
        dropped = fidelity::settle(&loaded.mapping, op, &request, earlier, &parts.headers)?;
        for label in dropped.labels() {
            loaded.metrics.dropped(label).inc();
        }
    }
    seen.stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let user = budget::caller(state, &parts.headers, &request, key, loaded, name)?;
    let span = tracing::info_span!("request", id = %request_id, mapping = %name, route = op.name(), stream = seen.stream, key, user = user.as_deref());
    span.in_scope(|| tracing::trace!(body = %String::from_utf8_lossy(&bytes), "client request"));
    if trace && !dropped.is_empty() {
        let dropped: Vec<&str> = dropped.names().collect();
        tracing::info!(target: "rosetta::trace", id = %request_id, dropped = %dropped.join(","), "not translated for this upstream");
    }
    // The parsed request is all the call needs from here on.
    drop(bytes);
    let caller = Caller {
        request_id,
        user: user.as_deref(),
        key,
        stream: seen.stream,
        started,
    };
    let tab = budget::open_tab(state, loaded, model, &picked.upstream_model, caller, &span).await?;
    let mut tab = Some(tab);
    let dialect = match &turn {
        Some(t) => Dialect::Responses(Arc::clone(&t.echo)),
        None if native => Dialect::MessagesNative,
        None => proxy::dialect_of(op),
    };
    let result = fallbacks::run_with_fallbacks(
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
    finish::finish(result, tab, turn, seen.stream, charge, &dropped).await
}
