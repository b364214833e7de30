//! A `count_tokens` call: the picked mapping's count of a Messages request, answered at once.
//! It is neither charged nor budgeted (no tokens are generated), and has no retries or
//! fallbacks: a client asks again.

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::error::ProxyError;
use crate::serving::reply::json_response;
use crate::serving::state::{Loaded, State};
use crate::translate::body::ProxyBody;
use crate::translate::count_tokens::{self, Upstream};

/// Counts `request` (its model already the upstream's) on `loaded`'s mapping.
pub(super) async fn answer(
    state: &State,
    loaded: &Loaded,
    request: &Value,
    headers: &HeaderMap,
) -> Result<http::Response<ProxyBody>, ProxyError> {
    let up = Upstream {
        client: &loaded.client,
        pool: &loaded.pool,
        max_body: state.limits.max_upstream_body,
        now_ms: state.clock.now_ms(),
    };
    let counted = count_tokens::count(&loaded.mapping, request, headers, up).await?;
    Ok(json_response(StatusCode::OK, &counted))
}
