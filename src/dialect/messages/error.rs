//! Errors in the Messages dialect: `{"type":"error","error":{"type","message"}}` with the
//! dialect's own error types and statuses, before the first byte (an HTTP error) and after it
//! (an `error` event, never a clean `message_stop`).

use http::StatusCode;
use serde_json::{Value, json};

use crate::error::ProxyError;

/// The status that says "overloaded, retry": the dialect's own, outside the HTTP registry.
pub const OVERLOADED: u16 = 529;

/// The dialect's error types.
const TYPES: &[&str] = &[
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "timeout_error",
    "overloaded_error",
];

/// The status and error type a client of this dialect is told for `e`. An upstream's own type
/// is kept when it is one of the dialect's; an overload (Rosetta's own limits, an upstream's
/// 503 or 529, or its `overloaded_error`) is 529 `overloaded_error`, which the dialect's
/// clients retry.
pub fn status_and_type(e: &ProxyError) -> (u16, &'static str) {
    let upstream_type = match e {
        ProxyError::UpstreamStatus { kind, .. } | ProxyError::UpstreamStreamError { kind, .. } => {
            kind.as_deref()
                .and_then(|k| TYPES.iter().copied().find(|t| *t == k))
        }
        _ => None,
    };
    let status = e.status().as_u16();
    let own = match e {
        ProxyError::Overloaded { .. } | ProxyError::MemoryBusy { .. } => {
            return (OVERLOADED, "overloaded_error");
        }
        ProxyError::TooLarge { .. } | ProxyError::TooComplex { .. } => "request_too_large",
        ProxyError::Timeout { .. } => "timeout_error",
        ProxyError::QuotaExceeded { .. } => "rate_limit_error",
        _ => type_for_status(status),
    };
    let kind = upstream_type.unwrap_or(own);
    if kind == "overloaded_error" || status == 503 || status == OVERLOADED {
        return (OVERLOADED, "overloaded_error");
    }
    // A stream error has no status of its own: it keeps the one its type implies.
    (status, kind)
}

/// The dialect's error type for an HTTP status.
fn type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The error body for `e`, with its status. The message is the one every dialect shows.
pub fn body(e: &ProxyError) -> (StatusCode, Value) {
    let (status, kind) = status_and_type(e);
    let json = e.to_json();
    let message = json["error"]["message"].as_str().unwrap_or(e.kind());
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

/// An `error` event, for a stream that fails after its first byte.
pub fn event(out: &mut Vec<u8>, e: &ProxyError) {
    let (_, body) = body(e);
    out.extend_from_slice(b"event: error\ndata: ");
    serde_json::to_writer(&mut *out, &body).expect("JSON into memory cannot fail");
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: u16, kind: Option<&str>) -> ProxyError {
        ProxyError::UpstreamStatus {
            status: StatusCode::from_u16(status).unwrap(),
            message: "m".into(),
            kind: kind.map(str::to_string),
            code: None,
            retry_after: None,
        }
    }

    #[test]
    fn every_class_has_the_dialects_status_and_type() {
        let cases = [
            (
                ProxyError::BadRequest {
                    message: "x".into(),
                    param: None,
                },
                400,
                "invalid_request_error",
            ),
            (
                ProxyError::Unauthorized {
                    message: "x".into(),
                },
                401,
                "authentication_error",
            ),
            (
                ProxyError::ModelNotFound {
                    message: "x".into(),
                },
                404,
                "not_found_error",
            ),
            (upstream(429, None), 429, "rate_limit_error"),
            (upstream(500, None), 500, "api_error"),
            (upstream(503, None), 529, "overloaded_error"),
            // The mapping turned the upstream's 529 into 503, its type says overloaded.
            (
                upstream(503, Some("overloaded_error")),
                529,
                "overloaded_error",
            ),
            (
                upstream(400, Some("not a type")),
                400,
                "invalid_request_error",
            ),
            (
                upstream(403, Some("permission_error")),
                403,
                "permission_error",
            ),
            (ProxyError::Overloaded { limit: 1 }, 529, "overloaded_error"),
            (ProxyError::TooLarge { limit: 1 }, 413, "request_too_large"),
            (
                ProxyError::Timeout {
                    message: "x".into(),
                },
                504,
                "timeout_error",
            ),
            (
                ProxyError::Unreachable {
                    message: "x".into(),
                },
                502,
                "api_error",
            ),
        ];
        for (e, status, kind) in cases {
            let (s, b) = body(&e);
            assert_eq!(s.as_u16(), status, "{e:?}");
            assert_eq!(b["type"], "error");
            assert_eq!(b["error"]["type"], kind, "{e:?}");
            assert!(
                b["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[test]
    fn a_stream_error_is_an_error_event() {
        let mut out = Vec::new();
        event(
            &mut out,
            &ProxyError::UpstreamStreamError {
                message: "Overloaded".into(),
                kind: Some("overloaded_error".into()),
                code: None,
            },
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\"},\"type\":\"error\"}\n\n"
        );
    }
}
