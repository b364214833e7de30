//! Target `transform`: every shipped mapping's request and response side on arbitrary JSON.
//!
//! The input, if it is JSON (anything else is skipped), is used three ways for every shipped
//! mapping and every route it has:
//! - as the client's OpenAI request: validated as the server does (`request::parse_request`,
//!   `Mapping::resolve_model`), then rendered by `proxy::prepare`;
//! - as the upstream's whole answer: `proxy::translate_whole`;
//! - as an upstream error body: `upstream::error_from`, for a few statuses.
//!
//! Properties:
//! - no panic;
//! - `prepare` either fails with a 4xx OpenAI error, or gives an absolute upstream URI, a JSON
//!   body (unless GET/HEAD), `content-type` and `accept` headers, `stream` as the request says
//!   and `include_usage` as `stream_options` (or the mapping's option) says; a stream request
//!   also gets its rewriter;
//! - `translate_whole` either fails with a 5xx OpenAI error, or gives a valid
//!   `chat.completion` / `text_completion` / embeddings list / model list for the client's model
//!   ([`crate::check`]);
//! - `error_from` gives an OpenAI error with a non-empty message and a valid HTTP status.

use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use rosetta::error::ProxyError;
use rosetta::mapping::{Mapping, Op};
use rosetta::translate::{proxy, request};
use rosetta::upstream;
use serde_json::{Value, json};

use crate::check;

/// The model the client asked for, as responses must report it.
pub const MODEL: &str = "fuzz-model";

const OPS: [Op; 4] = [Op::Chat, Op::Completions, Op::Embeddings, Op::Models];

/// A small valid request per route: what the response side sees as `$request` when the input
/// is not itself a valid request.
pub fn fixed_request(op: Op) -> Value {
    match op {
        // A Responses or Messages call (and a Messages token count) reaches the mapping as the
        // chat request it converts to.
        Op::Chat | Op::Responses | Op::Messages | Op::CountTokens => {
            json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
        }
        Op::Completions => json!({"model": MODEL, "prompt": "Hi"}),
        Op::Embeddings => json!({"model": MODEL, "input": ["Hi"]}),
        Op::Models => json!({}),
    }
}

/// Client headers, for mappings that forward or read some.
pub fn client_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("user-agent", HeaderValue::from_static("rosetta-fuzz"));
    h.insert("x-request-id", HeaderValue::from_static("fuzz-1"));
    h.insert("anthropic-beta", HeaderValue::from_static("fuzz"));
    h
}

fn check_error(e: &ProxyError, what: &str) {
    if let Err(problem) = check::error_json(&e.to_json()) {
        panic!("{what}: {problem}: {e:?}");
    }
}

/// `prepare` on a validated request, with its properties.
pub fn check_prepare(m: &Arc<Mapping>, op: Op, request: &Value, headers: &HeaderMap) {
    let label = format!("mapping {} route {}: prepare", m.name, op.name());
    match proxy::prepare(m, op, request, headers) {
        Ok(p) => {
            let stream = request
                .get("stream")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            assert_eq!(p.stream, stream, "{label}: stream");
            let usage_asked =
                request.pointer("/stream_options/include_usage") == Some(&json!(true));
            assert_eq!(
                p.include_usage,
                m.always_include_usage || usage_asked,
                "{label}: include_usage"
            );
            let r = &p.request;
            assert!(
                r.uri().scheme().is_some() && r.uri().authority().is_some(),
                "{label}: not an absolute URI: {}",
                r.uri()
            );
            assert!(
                r.uri().path().starts_with('/'),
                "{label}: path {:?}",
                r.uri().path()
            );
            for h in ["content-type", "accept"] {
                assert!(r.headers().contains_key(h), "{label}: no {h} header");
            }
            let body = rosetta::ops::trace::full_bytes(r.body());
            if matches!(*r.method(), Method::GET | Method::HEAD) {
                assert!(body.is_empty(), "{label}: a GET with a body");
            } else {
                assert!(
                    serde_json::from_slice::<Value>(&body).is_ok(),
                    "{label}: the upstream body is not JSON: {:?}",
                    String::from_utf8_lossy(&body)
                );
            }
            if stream {
                let rw = proxy::rewriter(
                    m,
                    op,
                    &proxy::dialect_of(op),
                    Arc::new(request.clone()),
                    json!({}),
                    MODEL,
                    p.include_usage,
                );
                assert!(rw.is_ok(), "{label}: a stream request without a rewriter");
            }
        }
        Err(e) => {
            check_error(&e, &label);
            assert!(
                e.status().is_client_error(),
                "{label}: failed with {} (not 4xx): {e:?}",
                e.status()
            );
        }
    }
}

/// `translate_whole` on an upstream body, with its properties.
pub fn check_translate(m: &Mapping, op: Op, body: &[u8], request: &Value) {
    let label = format!("mapping {} route {}: translate_whole", m.name, op.name());
    let headers = json!({"content-type": "application/json", "x-request-id": "fuzz-1"});
    match proxy::translate_whole(
        m,
        op,
        &proxy::dialect_of(op),
        body,
        &headers,
        request,
        MODEL,
    ) {
        Ok((v, _usage)) => {
            let checked = match op {
                // `dialect_of` answers a Responses or Messages route in chat (the fuzzers
                // drive routes).
                Op::Chat | Op::Responses | Op::Messages => check::chat_completion(&v, MODEL),
                Op::Completions => check::text_completion(&v, MODEL),
                Op::Embeddings => {
                    let base64 =
                        request.get("encoding_format").and_then(Value::as_str) == Some("base64");
                    check::embeddings(&v, MODEL, base64)
                }
                Op::Models => check::model_list(&v),
                // Not among the fuzzed routes (`OPS`): a native count is the upstream's own JSON.
                Op::CountTokens => Ok(()),
            };
            if let Err(problem) = checked {
                panic!(
                    "{label}: {problem}\n--- upstream body ---\n{}\n--- response ---\n{v:#}",
                    String::from_utf8_lossy(body)
                );
            }
        }
        Err(e) => {
            check_error(&e, &label);
            assert!(
                e.status().is_server_error(),
                "{label}: failed with {} (not 5xx): {e:?}",
                e.status()
            );
        }
    }
}

/// `error_from` on an upstream error body, with its properties.
pub fn check_upstream_error(m: &Mapping, status: u16, body: &[u8]) {
    let e = upstream::error_from(m, status, None, body);
    check_error(
        &e,
        &format!("mapping {}: error_from({status}, {body:?})", m.name),
    );
    let s = e.status().as_u16();
    assert!(
        (100..=599).contains(&s),
        "mapping {}: error status {s}",
        m.name
    );
}

/// The target body.
pub fn run(data: &[u8]) {
    crate::known::guard(|| check(data));
}

fn check(data: &[u8]) {
    if serde_json::from_slice::<Value>(data).is_err() {
        return;
    }
    let headers = client_headers();
    for m in crate::shipped::mappings() {
        for op in OPS {
            if m.route(op).is_none() {
                continue;
            }
            let mut response_request = fixed_request(op);
            if op != Op::Models
                && let Ok(mut request) = request::parse_request(op, data)
            {
                let client_model = request["model"].as_str().unwrap_or_default().to_string();
                if let Ok(upstream_model) = m.resolve_model(&client_model) {
                    request["model"] = Value::String(upstream_model);
                    check_prepare(m, op, &request, &headers);
                    response_request = request;
                }
            }
            check_translate(m, op, data, &response_request);
        }
        for status in [400, 401, 404, 429, 500, 503] {
            check_upstream_error(m, status, data);
        }
    }
}
