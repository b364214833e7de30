//! Taking in a request body under the limits: its size, its read timeout, the JSON it holds and
//! the memory budget of in-flight requests.
//!
//! [`read`] charges the budget for the body before reading it (the declared `content-length`,
//! or frame by frame for a chunked body) and reads it into one buffer of that size. [`parse`]
//! scans it ([`crate::serving::json_cost`]) before building any `serde_json::Value`: too many values or
//! too big a parsed form is refused (`413`), and the charge is raised to the request's whole
//! [`footprint`], which may not fit now (`503`, `retry-after: 1`) or ever (`413`). No message
//! ever quotes the body.

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use crate::error::ProxyError;
use crate::limits::Limits;
use crate::mapping::Op;
use crate::serving::json_cost::{self, TooManyValues};
use crate::serving::memory::{Charge, MemoryBudget, Refused, footprint};

/// Reads the whole body under `limits`, holding a charge on `budget` for it. The read timeout
/// is the caller's.
pub async fn read(
    headers: &HeaderMap,
    mut body: Incoming,
    limits: &Limits,
    budget: &Arc<MemoryBudget>,
) -> Result<(Bytes, Charge), ProxyError> {
    let max = limits.max_request_body;
    let too_large = ProxyError::TooLarge { limit: max };
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large);
    }
    let mut charge = budget.open();
    let mut buf = Vec::new();
    if let Some(n) = declared {
        let n = n as usize;
        charge
            .raise_to(n)
            .map_err(|r| refusal(r, n, limits, true))?;
        buf.reserve_exact(n);
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ProxyError::BadRequest {
            message: format!("cannot read the request body: {e}"),
            param: None,
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > max {
            return Err(too_large);
        }
        buf.extend_from_slice(&data);
        // What the buffer really holds: with no declared length it grows by doubling.
        charge
            .raise_to(buf.capacity())
            .map_err(|r| refusal(r, buf.capacity(), limits, true))?;
    }
    Ok((Bytes::from(buf), charge))
}

/// Scans the body, raises `charge` to the request's footprint, then parses and checks it
/// ([`crate::translate::request::parse_request`]).
pub fn parse(
    op: Op,
    bytes: &[u8],
    limits: &Limits,
    charge: &mut Charge,
) -> Result<Value, ProxyError> {
    let shape = json_cost::measure(bytes, limits.max_json_values).map_err(|TooManyValues| {
        ProxyError::TooComplex {
            message: format!(
                "the request body holds more than {} JSON values (the limit of rosetta serve --max-json-values); send fewer messages or shorter arrays",
                limits.max_json_values
            ),
            unread: false,
        }
    })?;
    if limits.max_parsed_size > 0 && shape.parsed_bytes > limits.max_parsed_size {
        return Err(ProxyError::TooComplex {
            message: format!(
                "the request body would take about {} bytes of memory once parsed, more than the limit of {} bytes (rosetta serve --max-parsed-size); send fewer messages or fewer small objects",
                shape.parsed_bytes, limits.max_parsed_size
            ),
            unread: false,
        });
    }
    let needed = footprint(bytes.len(), shape.parsed_bytes);
    charge
        .raise_to(needed)
        .map_err(|r| refusal(r, needed, limits, false))?;
    crate::translate::request::parse_request(op, bytes)
}

/// The error for a charge of `needed` bytes that the budget refused.
fn refusal(refused: Refused, needed: usize, limits: &Limits, unread: bool) -> ProxyError {
    let limit = limits.max_inflight_bytes;
    match refused {
        Refused::Busy => ProxyError::MemoryBusy { limit, unread },
        Refused::Never => ProxyError::TooComplex {
            message: format!(
                "the request needs about {needed} bytes of memory (its body, parsed and rendered for the upstream), more than the limit of {limit} bytes for all requests in flight (rosetta serve --max-inflight-bytes)"
            ),
            unread,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::IntGauge;

    fn budget(limit: usize) -> Arc<MemoryBudget> {
        MemoryBudget::new(limit, IntGauge::new("g", "g").unwrap())
    }

    fn code(e: &ProxyError) -> (u16, String) {
        let j = e.to_json();
        (
            e.status().as_u16(),
            j["error"]["code"].as_str().unwrap_or_default().to_string(),
        )
    }

    const CHAT: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

    #[test]
    fn a_body_over_the_value_limit_is_refused_unparsed() {
        let limits = Limits {
            max_json_values: 6,
            ..Limits::default()
        };
        let b = budget(0);
        let mut charge = b.open();
        assert!(parse(Op::Chat, CHAT.as_bytes(), &limits, &mut charge).is_ok());
        let more = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":1}"#;
        let e = parse(Op::Chat, more.as_bytes(), &limits, &mut charge).unwrap_err();
        assert_eq!(code(&e), (413, "request_too_complex".into()));
        assert!(e.to_string().contains("more than 6 JSON values"), "{e}");
        assert!(!e.to_string().contains("hi"));
    }

    #[test]
    fn a_body_too_big_parsed_is_refused() {
        let limits = Limits {
            max_parsed_size: 10_000,
            ..Limits::default()
        };
        let b = budget(0);
        let objects = format!(
            r#"{{"model":"m","messages":[{}]}}"#,
            r#"{"role":"user"},"#.repeat(20)
        );
        let e = parse(Op::Chat, objects.as_bytes(), &limits, &mut b.open()).unwrap_err();
        assert_eq!(code(&e), (413, "request_too_complex".into()));
        assert!(e.to_string().contains("--max-parsed-size"), "{e}");
    }

    #[test]
    fn the_charge_grows_to_the_footprint_or_is_refused() {
        let limits = Limits {
            max_inflight_bytes: 64 * 1024 * 1024,
            ..Limits::default()
        };
        let b = budget(limits.max_inflight_bytes);
        let mut charge = b.open();
        parse(Op::Chat, CHAT.as_bytes(), &limits, &mut charge).unwrap();
        let shape = json_cost::measure(CHAT.as_bytes(), 0).unwrap();
        assert_eq!(charge.bytes(), footprint(CHAT.len(), shape.parsed_bytes));
        // A string of 40 MiB: about 215 MiB of footprint, more than the whole budget.
        let big = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "a".repeat(40 << 20)
        );
        let e = parse(Op::Chat, big.as_bytes(), &limits, &mut b.open()).unwrap_err();
        assert_eq!(code(&e), (413, "request_too_complex".into()));
        assert!(e.to_string().contains("--max-inflight-bytes"), "{e}");
        // 10 MiB (about 55 MiB of footprint) fits once, not twice.
        let ten = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "a".repeat(10 << 20)
        );
        let mut first = b.open();
        parse(Op::Chat, ten.as_bytes(), &limits, &mut first).unwrap();
        let e = parse(Op::Chat, ten.as_bytes(), &limits, &mut b.open()).unwrap_err();
        assert_eq!(code(&e), (503, "overloaded".into()));
        assert_eq!(e.retry_after().unwrap(), "1");
        // A small request still passes.
        parse(Op::Chat, CHAT.as_bytes(), &limits, &mut b.open()).unwrap();
        drop(first);
        parse(Op::Chat, ten.as_bytes(), &limits, &mut b.open()).unwrap();
    }
}
