//! Micro-benchmarks of the translated path, on the shipped Anthropic and Gemini mappings:
//! request transform (a 1 KB chat with a system message and three turns), response transform
//! (a whole answer), and stream rewriting per event (a 64-event text stream, a tool-call stream),
//! each stream written twice: as Chat Completions chunks and as Responses events (the same
//! upstream events and rules, the writer swapped; the Responses run includes making the
//! response's echo, as the server does once per request). The "writer" group times the
//! writers alone on the typed events of those streams (no upstream parsing, no rules), so
//! the difference between the two dialects is not diluted by the work they share.
//!
//! `cargo bench --bench transform`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderMap;
use rosetta::dialect::answer::{Finish, Usage};
use rosetta::dialect::responses::Echo;
use rosetta::dialect::{AnyWriter, Dialect, StreamWriter};
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

/// The typed events of the Anthropic streams above, as the Emitter hands them to a writer.
enum Typed {
    Text(String),
    ToolStart(&'static str, &'static str),
    ToolArguments(String),
}

/// Runs `events` through `writer` and finishes the stream.
fn write_all(mut writer: AnyWriter, events: &[Typed], finish: Finish, out: &mut Vec<u8>) {
    for e in events {
        match e {
            Typed::Text(t) => writer.text(out, black_box(t)),
            Typed::ToolStart(id, name) => writer.tool_start(out, 0, Some(id), name),
            Typed::ToolArguments(a) => writer.tool_arguments(out, 0, black_box(a)),
        }
    }
    let usage = Usage {
        prompt_tokens: Some(250),
        completion_tokens: Some(60),
        ..Usage::default()
    };
    writer.finish(out, Some(finish), &usage);
}

fn writers(c: &mut Criterion) {
    let model = "claude-sonnet-4-5";
    let responses_request = json!({"model": model, "instructions": "Be brief.",
        "input": "hi", "stream": true, "max_output_tokens": 1024});
    let text: Vec<Typed> = (0..59).map(|i| Typed::Text(format!("word{i} "))).collect();
    let mut tool = vec![Typed::ToolStart("toolu_1", "get_weather")];
    tool.extend((0..20).map(|i| Typed::ToolArguments(format!("{{\"k{i}\":"))));
    let mut g = c.benchmark_group("writer");
    for (kind, events, finish) in [
        ("text", &text, Finish::Stop),
        ("tool call", &tool, Finish::ToolCalls),
    ] {
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(format!("chat ({kind}, {} events)", events.len()), |b| {
            let mut out = Vec::with_capacity(64 * 1024);
            b.iter(|| {
                out.clear();
                write_all(Dialect::Chat.writer(model, true), events, finish, &mut out);
                assert!(out.ends_with(b"data: [DONE]\n\n"));
            })
        });
        g.bench_function(
            format!("responses ({kind}, {} events)", events.len()),
            |b| {
                let mut out = Vec::with_capacity(64 * 1024);
                b.iter(|| {
                    out.clear();
                    let echo = Arc::new(Echo::from_request(&responses_request, 0));
                    let writer = Dialect::Responses(Arc::clone(&echo)).writer(model, true);
                    write_all(writer, events, finish, &mut out);
                    assert!(out.ends_with(b"\"type\":\"response.completed\"}\n\n"));
                    echo.take_finished().unwrap()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench, writers);
criterion_main!(benches);
