//! Step one of a call: read its body (under the body timeout and the memory budget), show it to
//! the request's shield and trace, and parse and check it.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use hyper::body::Incoming;
use serde_json::Value;

use crate::error::ProxyError;
use crate::mapping::Op;
use crate::ops::trace;
use crate::serving::intake;
use crate::serving::memory::Charge;
use crate::serving::shield::Shield;
use crate::serving::state::State;

/// The body as read, the memory it is charged for, and the parsed request.
pub(super) async fn request(
    state: &State,
    parts: &Parts,
    body: Incoming,
    op: Op,
    trace: bool,
    request_id: &str,
) -> Result<(Bytes, Charge, Value), ProxyError> {
    let limits = &state.limits;
    let read = intake::read(&parts.headers, body, limits, &state.memory);
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
            target: "rosetta::trace",
            id = %request_id,
            path = %parts.uri.path(),
            headers = %trace::headers(&parts.headers),
            body = %trace::text(&bytes),
            "client request"
        );
    }
    let request = intake::parse(op, &bytes, limits, &mut charge)?;
    Ok((bytes, charge, request))
}
