//! Micro-benchmarks of the translated path, on the shipped Anthropic and Gemini mappings:
//! request transform (a 1 KB chat with a system message and three turns), response transform
//! (a whole answer), and stream rewriting per event (a 64-event text stream, a tool-call stream).
//!
//! `cargo bench --bench transform`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

fn bench(c: &mut Criterion) {
    let all = mappings();
    let headers = HeaderMap::new();
    for (name, model, answer) in [
        ("anthropic", "claude-sonnet-4-5", anthropic_answer()),
        ("gemini", "gemini-2.5-flash", gemini_answer()),
    ] {
        let m = mapping(&all, name);
        let request = chat(model, false);
        let mut g = c.benchmark_group(name);
        g.bench_function("request transform (1 KB chat)", |b| {
            b.iter(|| proxy::prepare(&m, Op::Chat, black_box(&request), &headers).unwrap())
        });
        g.bench_function("response transform (200 words)", |b| {
            b.iter(|| {
                proxy::translate_whole(
                    &m,
                    Op::Chat,
                    black_box(&answer),
                    &Value::Null,
                    &request,
                    model,
                )
                .unwrap()
            })
        });
        let streams = if name == "anthropic" {
            vec![
                ("text", anthropic_stream()),
                ("tool call", anthropic_tool_stream()),
            ]
        } else {
            vec![("text", gemini_stream())]
        };
        let stream_request = Arc::new(chat(model, true));
        for (kind, events) in streams {
            g.throughput(Throughput::Elements(events.len() as u64));
            g.bench_function(
                format!("stream rewrite ({kind}, {} events)", events.len()),
                |b| {
                    let mut out = Vec::with_capacity(64 * 1024);
                    b.iter(|| {
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
                    })
                },
            );
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
