//! Proxy errors and their one rendering as OpenAI error JSON.
//!
//! Every failure a client can see is a [`ProxyError`]. [`ProxyError::kind`] is both the metric
//! label and, for Rosetta's own errors, the basis of the OpenAI `type` field.

use http::{HeaderValue, StatusCode};
use serde_json::{Value, json};

/// The `retry-after` of an [`ProxyError::Overloaded`] answer: one second.
static RETRY_SOON: HeaderValue = HeaderValue::from_static("1");

/// A failure seen by a client, before or during a response.
#[derive(Debug, Clone)]
pub enum ProxyError {
    /// The client's request is invalid (bad JSON, missing fields).
    BadRequest {
        message: String,
        param: Option<String>,
    },
    /// The client's request is invalid in a way OpenAI names with an error code (e.g.
    /// `previous_response_not_found`).
    Invalid {
        message: String,
        param: &'static str,
        code: &'static str,
    },
    /// The request holds something the chosen upstream cannot take, and the client (or the
    /// mapping) asked for strictness: OpenAI's `unsupported_parameter`, `param` naming the
    /// first such field.
    Unsupported { message: String, param: String },
    /// The request body is larger than the limit.
    TooLarge { limit: usize },
    /// The request would take more memory than one request may (too many JSON values, too big
    /// parsed, or more than the whole in-flight budget). `unread`: its body was not read, so
    /// the connection cannot carry another request.
    TooComplex { message: String, unread: bool },
    /// The in-flight memory budget of `limit` bytes is held by other requests; the client
    /// should retry shortly. `unread` as for [`ProxyError::TooComplex`].
    MemoryBusy { limit: usize, unread: bool },
    /// The client did not send its whole request body in time.
    ClientTimeout { after: std::time::Duration },
    /// No valid inbound API key (`Authorization: Bearer`); the message never quotes the key.
    Unauthorized { message: String },
    /// The global concurrency limit is reached; the client should retry shortly.
    Overloaded { limit: usize },
    /// No such path, mapping or route.
    NotFound { message: String },
    /// The model is unknown to the mapping (or to every mapping, on the unified surface).
    ModelNotFound { message: String },
    /// The path exists but not with this method.
    MethodNotAllowed,
    /// The upstream answered with an error status.
    UpstreamStatus {
        status: StatusCode,
        message: String,
        kind: Option<String>,
        code: Option<String>,
        retry_after: Option<HeaderValue>,
    },
    /// The upstream could not be reached (connect refused, DNS, TLS).
    Unreachable { message: String },
    /// The upstream did not answer (or went silent) in time.
    Timeout { message: String },
    /// The upstream answered something that is not what the mapping expects.
    BadUpstreamResponse { message: String },
    /// One piece of the upstream's answer (`what`: a stream frame, a whole body) is over its
    /// limit of `limit` bytes, set by the `serve` flag `flag`.
    UpstreamTooLarge {
        what: &'static str,
        limit: usize,
        flag: &'static str,
    },
    /// An error the upstream reported inside a stream it had started.
    UpstreamStreamError {
        message: String,
        kind: Option<String>,
        code: Option<String>,
    },
    /// The mapping could not build an upstream request from this input.
    Transform { message: String },
    /// A budget of the caller's user or API key is used up until `resets_at` (Unix seconds).
    QuotaExceeded { message: String, resets_at: i64 },
}

impl ProxyError {
    /// A failure of the upstream itself before the first byte (unreachable, silent, garbled,
    /// rate-limited or a 5xx): the kind a fallback mapping can help with.
    pub fn is_upstream_failure(&self) -> bool {
        match self {
            ProxyError::Unreachable { .. }
            | ProxyError::Timeout { .. }
            | ProxyError::BadUpstreamResponse { .. }
            | ProxyError::UpstreamTooLarge { .. } => true,
            ProxyError::UpstreamStatus { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            _ => false,
        }
    }

    /// A short, fixed label: the metric label and the default OpenAI `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProxyError::BadRequest { .. }
            | ProxyError::Invalid { .. }
            | ProxyError::Unsupported { .. } => "invalid_request",
            ProxyError::TooLarge { .. } => "too_large",
            ProxyError::TooComplex { .. } => "too_complex",
            ProxyError::MemoryBusy { .. } => "memory_busy",
            ProxyError::ClientTimeout { .. } => "client_timeout",
            ProxyError::Unauthorized { .. } => "unauthorized",
            ProxyError::Overloaded { .. } => "overloaded",
            ProxyError::ModelNotFound { .. } => "model_not_found",
            ProxyError::NotFound { .. } => "not_found",
            ProxyError::MethodNotAllowed => "method_not_allowed",
            ProxyError::UpstreamStatus { .. } => "upstream_status",
            ProxyError::Unreachable { .. } => "upstream_unreachable",
            ProxyError::Timeout { .. } => "upstream_timeout",
            ProxyError::BadUpstreamResponse { .. } => "upstream_bad_response",
            ProxyError::UpstreamTooLarge { .. } => "upstream_too_large",
            ProxyError::UpstreamStreamError { .. } => "upstream_stream_error",
            ProxyError::Transform { .. } => "transform",
            ProxyError::QuotaExceeded { .. } => "insufficient_quota",
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest { .. }
            | ProxyError::Invalid { .. }
            | ProxyError::Unsupported { .. }
            | ProxyError::Transform { .. } => StatusCode::BAD_REQUEST,
            ProxyError::TooLarge { .. } | ProxyError::TooComplex { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ProxyError::ClientTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ProxyError::Overloaded { .. } | ProxyError::MemoryBusy { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::NotFound { .. } | ProxyError::ModelNotFound { .. } => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::UpstreamStatus { status, .. } => *status,
            ProxyError::Unreachable { .. }
            | ProxyError::BadUpstreamResponse { .. }
            | ProxyError::UpstreamTooLarge { .. }
            | ProxyError::UpstreamStreamError { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The `retry-after` header to keep, if any.
    pub fn retry_after(&self) -> Option<&HeaderValue> {
        match self {
            ProxyError::UpstreamStatus { retry_after, .. } => retry_after.as_ref(),
            ProxyError::Overloaded { .. } | ProxyError::MemoryBusy { .. } => Some(&RETRY_SOON),
            _ => None,
        }
    }

    /// The OpenAI error object: `{"error":{"message","type","param","code"}}`.
    pub fn to_json(&self) -> Value {
        let (message, kind, param, code): (String, String, Option<String>, Option<String>) =
            match self {
                ProxyError::BadRequest { message, param } => (
                    message.clone(),
                    "invalid_request_error".into(),
                    param.clone(),
                    None,
                ),
                ProxyError::Invalid {
                    message,
                    param,
                    code,
                } => (
                    message.clone(),
                    "invalid_request_error".into(),
                    Some(param.to_string()),
                    Some(code.to_string()),
                ),
                ProxyError::Unsupported { message, param } => (
                    message.clone(),
                    "invalid_request_error".into(),
                    Some(param.clone()),
                    Some("unsupported_parameter".into()),
                ),
                ProxyError::TooLarge { limit } => (
                    format!("the request body exceeds the limit of {limit} bytes"),
                    "invalid_request_error".into(),
                    None,
                    Some("request_too_large".into()),
                ),
                ProxyError::TooComplex { message, .. } => (
                    message.clone(),
                    "invalid_request_error".into(),
                    None,
                    Some("request_too_complex".into()),
                ),
                ProxyError::MemoryBusy { limit, .. } => (
                    format!(
                        "Rosetta is holding its limit of {limit} bytes for the requests in flight; retry shortly"
                    ),
                    "server_error".into(),
                    None,
                    Some("overloaded".into()),
                ),
                ProxyError::ClientTimeout { after } => (
                    format!("the request body was not received within {after:?}"),
                    "invalid_request_error".into(),
                    None,
                    Some("request_timeout".into()),
                ),
                ProxyError::Unauthorized { message } => (
                    message.clone(),
                    "invalid_request_error".into(),
                    None,
                    Some("invalid_api_key".into()),
                ),
                ProxyError::Overloaded { limit } => (
                    format!(
                        "Rosetta is serving its limit of {limit} concurrent requests; retry shortly"
                    ),
                    "server_error".into(),
                    None,
                    Some("overloaded".into()),
                ),
                ProxyError::NotFound { message } => (
                    message.clone(),
                    "invalid_request_error".into(),
                    None,
                    Some("not_found".into()),
                ),
                ProxyError::ModelNotFound { message } => (
                    message.clone(),
                    "invalid_request_error".into(),
                    Some("model".into()),
                    Some("model_not_found".into()),
                ),
                ProxyError::QuotaExceeded { message, .. } => (
                    message.clone(),
                    "insufficient_quota".into(),
                    None,
                    Some("insufficient_quota".into()),
                ),
                ProxyError::MethodNotAllowed => (
                    "method not allowed on this path".into(),
                    "invalid_request_error".into(),
                    None,
                    Some("method_not_allowed".into()),
                ),
                ProxyError::UpstreamStatus {
                    status,
                    message,
                    kind,
                    code,
                    ..
                } => (
                    message.clone(),
                    identifier(kind).unwrap_or_else(|| type_for_status(*status).into()),
                    None,
                    identifier(code),
                ),
                ProxyError::UpstreamStreamError {
                    message,
                    kind,
                    code,
                } => (
                    message.clone(),
                    identifier(kind).unwrap_or_else(|| "server_error".into()),
                    None,
                    identifier(code),
                ),
                ProxyError::UpstreamTooLarge { what, limit, flag } => (
                    format!(
                        "the upstream sent {what} over the limit of {limit} bytes (rosetta serve {flag})"
                    ),
                    "server_error".into(),
                    None,
                    Some(self.kind().into()),
                ),
                ProxyError::Unreachable { message }
                | ProxyError::Timeout { message }
                | ProxyError::BadUpstreamResponse { message }
                | ProxyError::Transform { message } => (
                    message.clone(),
                    if matches!(self, ProxyError::Transform { .. }) {
                        "invalid_request_error".into()
                    } else {
                        "server_error".into()
                    },
                    None,
                    Some(self.kind().into()),
                ),
            };
        json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
    }
}

/// An upstream's error `type` or `code` when it is an identifier (`rate_limit_error`,
/// `RESOURCE_EXHAUSTED`, `content_filter`: letters, digits, `_`, `.`, `-`, at most 64), else
/// nothing: free text (a message, a quoted key) never becomes a `type` or a `code`.
fn identifier(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .filter(|v| {
            (1..=64).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        })
        .map(str::to_string)
}

/// The OpenAI error `type` conventionally used for an HTTP status.
pub fn type_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 404 | 409 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

/// The message a client would read.
impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = self.to_json();
        f.write_str(json["error"]["message"].as_str().unwrap_or(self.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_renders_the_four_openai_fields() {
        let errors = [
            ProxyError::BadRequest {
                message: "bad".into(),
                param: Some("messages".into()),
            },
            ProxyError::NotFound {
                message: "nope".into(),
            },
            ProxyError::TooLarge { limit: 1 },
            ProxyError::ClientTimeout {
                after: std::time::Duration::from_secs(1),
            },
            ProxyError::Unauthorized {
                message: "no key".into(),
            },
            ProxyError::Overloaded { limit: 2 },
            ProxyError::TooComplex {
                message: "too many values".into(),
                unread: false,
            },
            ProxyError::MemoryBusy {
                limit: 3,
                unread: true,
            },
            ProxyError::ModelNotFound {
                message: "no".into(),
            },
            ProxyError::MethodNotAllowed,
            ProxyError::UpstreamStatus {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: "slow down".into(),
                kind: None,
                code: None,
                retry_after: Some(HeaderValue::from_static("7")),
            },
            ProxyError::Unreachable {
                message: "refused".into(),
            },
            ProxyError::Timeout {
                message: "late".into(),
            },
            ProxyError::BadUpstreamResponse {
                message: "garbage".into(),
            },
            ProxyError::UpstreamStreamError {
                message: "boom".into(),
                kind: None,
                code: None,
            },
            ProxyError::Transform {
                message: "cannot".into(),
            },
        ];
        for e in errors {
            let j = e.to_json();
            let obj = j["error"].as_object().unwrap();
            for k in ["message", "type", "param", "code"] {
                assert!(obj.contains_key(k), "{e:?} lacks {k}");
            }
            assert!(obj["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        let rl = ProxyError::UpstreamStatus {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: "x".into(),
            kind: None,
            code: None,
            retry_after: None,
        };
        assert_eq!(rl.to_json()["error"]["type"], "rate_limit_error");
        // Free text is never a type or a code.
        let echoed = ProxyError::UpstreamStatus {
            status: StatusCode::BAD_REQUEST,
            message: "x".into(),
            kind: Some("invalid_request_error sk-ant-0123456789".into()),
            code: Some("bad key: sk".into()),
            retry_after: None,
        };
        let j = echoed.to_json();
        assert_eq!(j["error"]["type"], "invalid_request_error");
        assert_eq!(j["error"]["code"], Value::Null);
        assert_eq!(
            ProxyError::Timeout {
                message: "t".into()
            }
            .status(),
            504
        );
    }
}
