//! Micro-benchmarks of the translated path, on the shipped Anthropic and Gemini mappings:
//! request transform (a 1 KB chat with a system message and three turns), response transform
//! (a whole answer), and stream rewriting per event (a 64-event text stream, a tool-call stream),
//! each stream written twice: as Chat Completions chunks and as Responses events (the same
//! upstream events and rules, the writer swapped; the Responses run includes making the
//! response's echo, as the server does once per request).
//!
//! `cargo bench --bench transform`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderMap;
use rosetta::dialect::Dialect;
use rosetta::dialect::responses::Echo;
use rosetta::mapping::Op;
use rosetta::translate::proxy;
use rosetta::translate::rewrite::StreamRewriter;
use serde_json::{Value, json};

#[path = "common/payloads.rs"]
mod payloads;
use payloads::*;

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
                    &Dialect::Chat,
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
        let responses_request = json!({"model": model, "instructions": "Be brief.",
            "input": "hi", "stream": true, "max_output_tokens": 1024});
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
                            &Dialect::Chat,
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
            g.bench_function(
                format!(
                    "stream rewrite, responses ({kind}, {} events)",
                    events.len()
                ),
                |b| {
                    let mut out = Vec::with_capacity(64 * 1024);
                    b.iter(|| {
                        let echo = Arc::new(Echo::from_request(&responses_request, 0));
                        let writer = Dialect::Responses(Arc::clone(&echo)).writer(model, true);
                        let mut r = StreamRewriter::new(
                            Arc::clone(&m),
                            Op::Chat,
                            Arc::clone(&stream_request),
                            Value::Null,
                            writer,
                        )
                        .unwrap();
                        out.clear();
                        for e in &events {
                            r.feed(black_box(e), &mut out);
                        }
                        r.end(&mut out);
                        assert!(out.ends_with(b"\"type\":\"response.completed\"}\n\n"));
                        echo.take_finished().unwrap()
                    })
                },
            );
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
