//! A plain loop over the transform benchmarks, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/transform_loop anthropic/request 1000`.
//! Run it with two iteration counts and divide the difference by the difference in iterations
//! to get instructions per call without the setup (loading the mappings).
//!
//! Names: `{anthropic,gemini}/{request,response,stream}`, `anthropic/tool-stream`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use http::HeaderMap;
use rosetta::mapping::{Mapping, Op, load_dir};
use rosetta::proxy;
use serde_json::{Value, json};

fn mappings() -> Vec<Arc<Mapping>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    load_dir(&dir, &|_| None).expect("the shipped mappings load")
}

fn mapping(all: &[Arc<Mapping>], name: &str) -> Arc<Mapping> {
    Arc::clone(
        all.iter()
            .find(|m| m.name == name)
            .expect("shipped mapping"),
    )
}

/// About 1 KB: a system message and three turns.
fn chat(model: &str, stream: bool) -> Value {
    let words = |n: usize, w: &str| vec![w; n].join(" ");
    json!({
        "model": model,
        "stream": stream,
        "temperature": 0.7,
        "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": format!("You are a helpful assistant. {}", words(20, "Be brief."))},
            {"role": "user", "content": words(30, "hello")},
            {"role": "assistant", "content": words(30, "answer")},
            {"role": "user", "content": words(30, "question")},
        ],
    })
}

/// An Anthropic answer and a Gemini answer of ~200 words.
fn anthropic_answer() -> Vec<u8> {
    json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
           "content": [{"type": "text", "text": vec!["word"; 200].join(" ")}],
           "stop_reason": "end_turn", "stop_sequence": null,
           "usage": {"input_tokens": 250, "output_tokens": 200}})
    .to_string()
    .into_bytes()
}

fn gemini_answer() -> Vec<u8> {
    json!({"candidates": [{"content": {"role": "model", "parts": [{"text": vec!["word"; 200].join(" ")}]},
                           "finishReason": "STOP", "index": 0}],
           "usageMetadata": {"promptTokenCount": 250, "candidatesTokenCount": 200, "totalTokenCount": 450},
           "modelVersion": "gemini-2.5-flash"})
    .to_string()
    .into_bytes()
}

/// 64 Anthropic text events (start, 62 deltas, stop) as SSE frames.
fn anthropic_stream() -> Vec<Vec<u8>> {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n").into_bytes();
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": 250, "output_tokens": 1}}}),
    )];
    out.push(ev(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    for i in 0..59 {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": format!("word{i} ")}}),
        ));
    }
    out.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 60}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

/// An Anthropic tool-call stream: a tool_use block with 20 argument pieces.
fn anthropic_tool_stream() -> Vec<Vec<u8>> {
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n").into_bytes();
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5", "content": [], "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": 250, "output_tokens": 1}}}),
    )];
    out.push(ev(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
    ));
    for i in 0..20 {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": format!("{{\"k{i}\":")}}),
        ));
    }
    out.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 30}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

/// 64 Gemini SSE chunks (`alt=sse`), the last with the finish reason and usage.
fn gemini_stream() -> Vec<Vec<u8>> {
    (0..64)
        .map(|i| {
            let mut c = json!({"candidates": [{"content": {"role": "model", "parts": [{"text": format!("word{i} ")}]}, "index": 0}],
                               "modelVersion": "gemini-2.5-flash"});
            if i == 63 {
                c["candidates"][0]["finishReason"] = json!("STOP");
                c["usageMetadata"] = json!({"promptTokenCount": 250, "candidatesTokenCount": 64, "totalTokenCount": 314});
            }
            format!("data: {c}\r\n\r\n").into_bytes()
        })
        .collect()
}

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
