//! A plain loop over the transform benchmarks, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/transform_loop anthropic/request 1000`.
//! Run it with two iteration counts and divide the difference by the difference in iterations
//! to get instructions per call without the setup (loading the mappings).
//!
//! Names: `{anthropic,gemini}/{request,response,stream}`, `anthropic/tool-stream`.

use std::hint::black_box;
use std::sync::Arc;

use http::HeaderMap;
use rosetta::mapping::Op;
use rosetta::translate::proxy;
use serde_json::Value;

#[path = "../benches/common/payloads.rs"]
mod payloads;
use payloads::*;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("anthropic/request", String::as_str);
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let (name, what) = which.split_once('/').expect("mapping/what");
    let all = mappings();
    let m = mapping(&all, name);
    let model = if name == "anthropic" {
        "claude-sonnet-4-5"
    } else {
        "gemini-2.5-flash"
    };
    let headers = HeaderMap::new();
    match what {
        "request" => {
            let request = chat(model, false);
            for _ in 0..n {
                black_box(proxy::prepare(&m, Op::Chat, black_box(&request), &headers).unwrap());
            }
        }
        "response" => {
            let request = chat(model, false);
            let answer = if name == "anthropic" {
                anthropic_answer()
            } else {
                gemini_answer()
            };
            for _ in 0..n {
                black_box(
                    proxy::translate_whole(
                        &m,
                        Op::Chat,
                        &rosetta::dialect::Dialect::Chat,
                        black_box(&answer),
                        &Value::Null,
                        &request,
                        model,
                    )
                    .unwrap(),
                );
            }
        }
        "stream" | "tool-stream" => {
            let events = match (name, what) {
                ("anthropic", "stream") => anthropic_stream(),
                ("anthropic", _) => anthropic_tool_stream(),
                _ => gemini_stream(),
            };
            let stream_request = Arc::new(chat(model, true));
            let mut out = Vec::with_capacity(64 * 1024);
            for _ in 0..n {
                let mut r = proxy::rewriter(
                    &m,
                    Op::Chat,
                    &rosetta::dialect::Dialect::Chat,
                    Arc::clone(&stream_request),
                    Value::Null,
                    model,
                    true,
                )
                .unwrap();
                out.clear();
                for e in &events {
                    r.feed(black_box(e), &mut out);
                }
                r.end(&mut out);
                assert!(out.ends_with(b"data: [DONE]\n\n"));
            }
        }
        other => panic!("unknown benchmark {other:?}"),
    }
}
