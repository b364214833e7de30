//! Step four of a call: run it on its mapping, then on each fallback in turn.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Response};
use serde_json::Value;
use tracing::Instrument;

use crate::dialect::Dialect;
use crate::error::ProxyError;
use crate::ledger::tab::Tab;
use crate::mapping::Op;
use crate::serving::state::{Loaded, MappingSet, State};
use crate::translate::body::ProxyBody;
use crate::translate::proxy::{self, Call};

/// What every try of a call shares.
pub(super) struct Shared<'a> {
    pub client_model: &'a str,
    pub dialect: &'a Dialect,
    pub headers: &'a http::HeaderMap,
    pub started: Instant,
    pub trace: Option<String>,
    pub span: &'a tracing::Span,
}

/// Runs a call on its mapping, then on each fallback in turn (never the same mapping twice)
/// while the failure is the upstream's.
pub(super) async fn run_with_fallbacks<'s>(
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
            metrics: &loaded.metrics,
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
            clock: &state.clock,
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
        // Rare (every endpoint failed), and the pair is resolved here.
        state
            .metrics
            .fallbacks
            .with_label_values(&[name, next_name])
            .inc();
        if let Some(t) = tab.as_mut() {
            t.retarget(&next.mapping, &next.metrics, &next_model, &upstream_model);
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
