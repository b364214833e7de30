//! Request tracing for debugging one call end to end.
//!
//! When tracing is on for a request (`rosetta serve --trace all`, or `--trace header` and the
//! client sends `x-rosetta-trace: 1`), Rosetta logs at `info` level, target `rosetta::trace`,
//! under the request's id: the OpenAI request as received, the upstream request as sent, the
//! upstream's answer (the whole body, or each stream frame next to the OpenAI bytes it became)
//! and what the client got. Header values and query parameters whose names look secret
//! (`authorization`, `*key*`, `*token*`, `*secret*`, `cookie`, ...) are redacted.

use bytes::Bytes;
use http::{HeaderMap, Uri};
use http_body_util::{BodyExt, Full};

/// The request header that asks for a trace when the server runs with `--trace header`.
pub const TRACE_HEADER: &str = "x-rosetta-trace";

/// At most this much of one body or frame is logged.
const MAX_LOGGED: usize = 64 * 1024;

/// Which requests are traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceMode {
    /// None (the default).
    #[default]
    Off,
    /// Only requests that send `x-rosetta-trace: 1` (or `true`).
    Header,
    /// Every request.
    All,
}

impl TraceMode {
    /// Parses `off`, `header` or `all`.
    pub fn parse(s: &str) -> Option<TraceMode> {
        match s {
            "off" => Some(TraceMode::Off),
            "header" => Some(TraceMode::Header),
            "all" => Some(TraceMode::All),
            _ => None,
        }
    }

    /// Whether a request with these headers is traced.
    pub fn wanted(self, headers: &HeaderMap) -> bool {
        match self {
            TraceMode::Off => false,
            TraceMode::All => true,
            TraceMode::Header => headers
                .get(TRACE_HEADER)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes" | "on")),
        }
    }
}

/// Whether a header or query parameter of this name carries a secret.
pub fn secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "auth",
        "key",
        "token",
        "secret",
        "cookie",
        "password",
        "signature",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Headers as one JSON object (a repeated header keeps its last value), secret values redacted.
pub fn headers(h: &HeaderMap) -> String {
    let map: serde_json::Map<String, serde_json::Value> = h
        .iter()
        .map(|(k, v)| {
            let value = if secret(k.as_str()) {
                "[redacted]".to_string()
            } else {
                String::from_utf8_lossy(v.as_bytes()).into_owned()
            };
            (k.to_string(), serde_json::Value::String(value))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The URI with secret query values redacted.
pub fn uri(u: &Uri) -> String {
    let Some(query) = u.query() else {
        return u.to_string();
    };
    let base = u.to_string();
    let base = base.split('?').next().unwrap_or_default();
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret(k) => format!("{k}=[redacted]"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Body bytes as text, cut at 64 KiB.
pub fn text(bytes: &[u8]) -> String {
    if bytes.len() > MAX_LOGGED {
        format!(
            "{}... ({} bytes in all)",
            String::from_utf8_lossy(&bytes[..MAX_LOGGED]),
            bytes.len()
        )
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// The bytes of a whole body that is already in memory.
pub fn full_bytes(body: &Full<Bytes>) -> Bytes {
    futures_util::FutureExt::now_or_never(body.clone().collect())
        .and_then(Result::ok)
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_rest_kept() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "sk-ant-secret".parse().unwrap());
        h.insert("authorization", "Bearer sk-1".parse().unwrap());
        h.insert("x-goog-api-key", "AIza".parse().unwrap());
        h.insert("anthropic-version", "2023-06-01".parse().unwrap());
        let t = headers(&h);
        assert!(!t.contains("sk-") && !t.contains("AIza"), "{t}");
        assert!(t.contains(r#""anthropic-version":"2023-06-01""#), "{t}");
        assert!(t.contains(r#""x-api-key":"[redacted]""#), "{t}");
        let u: Uri = "http://h/v1/m:gen?alt=sse&key=AIza123".parse().unwrap();
        assert_eq!(uri(&u), "http://h/v1/m:gen?alt=sse&key=[redacted]");
    }

    #[test]
    fn header_mode_needs_the_header() {
        let mut h = HeaderMap::new();
        assert!(!TraceMode::Header.wanted(&h));
        assert!(TraceMode::All.wanted(&h));
        h.insert(TRACE_HEADER, "1".parse().unwrap());
        assert!(TraceMode::Header.wanted(&h));
        assert!(!TraceMode::Off.wanted(&h));
    }

    #[test]
    fn every_key_carrying_header_is_redacted() {
        let mut h = HeaderMap::new();
        for name in [
            "authorization",
            "proxy-authorization",
            "x-api-key",
            "api-key",
            "x-goog-api-key",
        ] {
            h.insert(name, "Bearer sk-inbound-secret".parse().unwrap());
        }
        let t = headers(&h);
        assert!(!t.contains("sk-inbound-secret"), "{t}");
        assert_eq!(t.matches("[redacted]").count(), 5, "{t}");
    }
}
