//! `/health`: a liveness probe that also reports each mapping's endpoints and the ledger.

use http::{Response, StatusCode};
use serde_json::{Value, json};

use crate::mapping::Op;
use crate::serving::reply::text;
use crate::serving::state::{MappingSet, State};
use crate::translate::body::ProxyBody;

/// `/health`: always 200 while the process serves (a liveness probe must not restart Rosetta
/// because an upstream is down); `status` is `degraded` when some mapping has no endpoint in
/// rotation, and each endpoint reports its state and last error.
pub fn health(state: &State, set: &MappingSet) -> Response<ProxyBody> {
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
            let auth = m.upstream.token.as_ref().map(|t| {
                degraded |= t.failing();
                t.report()
            });
            json!({
                "name": m.name,
                "upstream": m.upstream.endpoints[0].label,
                "endpoints": endpoints,
                "fallback": m.upstream.fallback.as_ref().map(|f| &f.mapping),
                "routes": routes,
                "models": m.models.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
                "missing_env": m.upstream.missing_env,
                "auth": auth,
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
