//! Target `stream_rewrite`: every shipped mapping's stream rewriter on arbitrary upstream bytes.
//!
//! For each shipped (mapping, route) with a `stream` section (chat and legacy completions), a
//! `proxy::rewriter` is fed the payload in fuzz-chosen pieces, then ended (`end`, or `fail` as
//! when the upstream connection drops: flag bit 1). Usage is asked for when flag bit 0 is set.
//! Properties:
//! - no panic;
//! - the output is a finished OpenAI stream ([`check::chunk_stream`]): `data: <json>\n\n`
//!   events, chunks or one final error, role delta first, at most one finish_reason, the usage
//!   chunk iff asked for, `[DONE]` last; a passthrough stream forwards the bytes unchanged and
//!   ends as docs/mapping-reference.md §6.9 says ([`check::passthrough`]);
//! - the usage chunk reports `StreamRewriter::usage()`;
//! - nothing is written once the stream is closed;
//! - the pieces do not matter: fed whole, the output is the same (ids and `created` aside),
//!   invalid UTF-8 included.

use std::sync::Arc;

use rosetta::dialect::chat::usage_json;
use rosetta::error::ProxyError;
use rosetta::mapping::{Mapping, Op};
use rosetta::translate::proxy;
use serde_json::{Value, json};

use crate::check::{self, StreamKind};
use crate::input::Input;
use crate::shipped;

/// The model the client asked for: every chunk must report it.
pub const MODEL: &str = "fuzz-model";

/// The client's request.
pub fn request(op: Op, include_usage: bool) -> Value {
    let mut r = match op {
        Op::Completions => json!({"model": MODEL, "prompt": "Say hi"}),
        _ => json!({"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}]}),
    };
    r["stream"] = Value::Bool(true);
    if include_usage {
        r["stream_options"] = json!({"include_usage": true});
    }
    r
}

/// Runs one stream: feeds `pieces`, then ends or fails it.
pub fn rewrite(
    mapping: &Arc<Mapping>,
    op: Op,
    include_usage: bool,
    pieces: &[&[u8]],
    fail: bool,
) -> Result<Vec<u8>, String> {
    let mut rw = proxy::rewriter(
        mapping,
        op,
        &proxy::dialect_of(op),
        Arc::new(request(op, include_usage)),
        json!({}),
        MODEL,
        include_usage,
    )
    .map_err(|e| format!("no rewriter for a route with a stream: {e:?}"))?;
    let mut out = Vec::new();
    for p in pieces {
        rw.feed(p, &mut out);
    }
    if fail {
        let err = ProxyError::UpstreamStreamError {
            message: "the upstream connection failed: reset".into(),
            kind: None,
            code: Some("upstream_stream_error".into()),
        };
        rw.fail(&mut out, &err);
    } else {
        rw.end(&mut out);
    }
    let closed_at = out.len();
    rw.feed(b"data: {}\n\n{}\n", &mut out);
    rw.end(&mut out);
    if out.len() != closed_at {
        return Err(format!(
            "bytes written after the stream was closed: {:?}",
            String::from_utf8_lossy(&out[closed_at..])
        ));
    }
    // The usage chunk, if any, is what the rewriter counted (a passthrough stream forwards the
    // upstream's own).
    let passthrough = mapping
        .route(op)
        .and_then(|r| r.stream.as_ref())
        .is_some_and(|s| s.passthrough);
    if let Some(pos) = find_usage_chunk(&out).filter(|_| !passthrough) {
        let v: Value = serde_json::from_str(pos).map_err(|e| e.to_string())?;
        if v["usage"] != usage_json(&rw.usage()) {
            return Err(format!(
                "usage chunk {} is not usage() {}",
                v["usage"],
                usage_json(&rw.usage())
            ));
        }
    }
    Ok(out)
}

fn find_usage_chunk(out: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(out).ok()?;
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .find(|d| d.contains("\"choices\":[],\"usage\":"))
}

fn kind(op: Op) -> StreamKind {
    if op == Op::Completions {
        StreamKind::Text
    } else {
        StreamKind::Chat
    }
}

/// Runs every stream route on one input.
pub fn run(data: &[u8]) {
    crate::known::guard(|| check(data));
}

fn check(data: &[u8]) {
    let input = Input::parse(data);
    let payload = input.payload;
    let fail = input.flag(1);
    let pieces = input.pieces();
    for (m, op) in shipped::stream_routes() {
        let include_usage = input.flag(0) || m.always_include_usage;
        let passthrough = m
            .route(*op)
            .and_then(|r| r.stream.as_ref())
            .is_some_and(|s| s.passthrough);
        let label = format!("mapping {} route {}", m.name, op.name());
        let report = |what: &str, out: &[u8], e: String| -> ! {
            panic!(
                "{label}, {what}: {e}\n--- upstream bytes ---\n{}\n--- output ---\n{}",
                String::from_utf8_lossy(payload),
                String::from_utf8_lossy(out)
            )
        };
        let split = rewrite(m, *op, include_usage, &pieces, fail)
            .unwrap_or_else(|e| report("fed in pieces", &[], e));
        let whole = rewrite(m, *op, include_usage, &[payload], fail)
            .unwrap_or_else(|e| report("fed whole", &[], e));
        if passthrough {
            if let Err(e) = check::passthrough(&split, payload, fail) {
                report("passthrough", &split, e);
            }
            if split != whole {
                report(
                    "passthrough fed whole",
                    &whole,
                    "differs from the pieces".into(),
                );
            }
            continue;
        }
        let a = check::chunk_stream(&split, kind(*op), MODEL, include_usage)
            .unwrap_or_else(|e| report("fed in pieces", &split, e));
        let b = check::chunk_stream(&whole, kind(*op), MODEL, include_usage)
            .unwrap_or_else(|e| report("fed whole", &whole, e));
        if a != b {
            report(
                "fed whole vs in pieces",
                &whole,
                format!(
                    "the outputs differ; in pieces {:?}:\n{}",
                    pieces
                        .iter()
                        .map(|p| String::from_utf8_lossy(p))
                        .collect::<Vec<_>>(),
                    String::from_utf8_lossy(&split)
                ),
            );
        }
    }
}
