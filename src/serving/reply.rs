//! The responses the server writes itself: JSON and text bodies, and the one place errors
//! become HTTP responses ([`error_response`]).

use http::header::{CONNECTION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};
use serde_json::Value;

use crate::error::ProxyError;
use crate::translate::body::{ProxyBody, full};

/// A JSON body with `status`.
pub fn json_response(status: StatusCode, body: &Value) -> Response<ProxyBody> {
    text(status, "application/json", body.to_string())
}

/// A body of `content_type` with `status`.
pub fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// The one place errors become HTTP responses.
pub fn error_response(e: &ProxyError) -> Response<ProxyBody> {
    with_error_headers(
        text(e.status(), "application/json", e.to_json().to_string()),
        e,
    )
}

/// An error for a client of the Messages API: that API's shape, types and statuses
/// ([`crate::dialect::messages::error`]), with the same headers as [`error_response`].
pub fn messages_error_response(e: &ProxyError) -> Response<ProxyBody> {
    let (status, body) = crate::dialect::messages::error::body(e);
    with_error_headers(text(status, "application/json", body.to_string()), e)
}

fn with_error_headers(mut r: Response<ProxyBody>, e: &ProxyError) -> Response<ProxyBody> {
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
