//! What redaction costs (issue 13): the one redactor every byte sent to a client passes
//! through, with seven secrets of 40 bytes (one key per shipped mapping): scanning a 1 KB
//! request for the client's own pieces, redacting a whole answer (the Anthropic payload of
//! `benches/transform.rs`, about 1.3 KB, no secret in it: the common case), and redacting the
//! 64 events of a text stream frame by frame. Beside them, the same answer's response
//! transform, so the ratio is read from one run.
//!
//! `cargo bench --bench redact`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rosetta::mapping::Op;
use rosetta::ops::redact::{Redactor, Sent};
use rosetta::translate::proxy;
use serde_json::Value;

#[path = "common/payloads.rs"]
#[allow(dead_code)] // the payloads the transform benchmark uses too
mod payloads;
use payloads::*;

fn bench(c: &mut Criterion) {
    let secrets: Vec<String> = (0..7)
        .map(|i| format!("sk-test-{i}-Zq8XwV3mK7pL2nR9tY4uB6cD1eF5gH"))
        .collect();
    let redactor = Redactor::new(&secrets);
    let none = Sent::default();
    let request = serde_json::to_vec(&chat("claude-sonnet-4-5", false)).unwrap();
    let answer = anthropic_answer();
    let events = anthropic_stream();
    let all = mappings();
    let m = mapping(&all, "anthropic");
    let chat_request = chat("claude-sonnet-4-5", false);

    let mut g = c.benchmark_group("redact");
    g.throughput(Throughput::Bytes(request.len() as u64));
    g.bench_function("client's pieces in a 1 KB request", |b| {
        b.iter(|| redactor.pieces_in(black_box(&request)))
    });
    g.throughput(Throughput::Bytes(answer.len() as u64));
    g.bench_function("whole answer", |b| {
        b.iter(|| redactor.redact_except(black_box(&answer), &none).len())
    });
    g.bench_function("response transform of the same answer (for scale)", |b| {
        b.iter(|| {
            proxy::translate_whole(
                &m,
                Op::Chat,
                &rosetta::dialect::Dialect::Chat,
                black_box(&answer),
                &Value::Null,
                &chat_request,
                "claude-sonnet-4-5",
            )
            .unwrap()
        })
    });
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function(
        format!("stream, {} events frame by frame", events.len()),
        |b| {
            b.iter(|| {
                let mut carry = Vec::new();
                let mut forced = 0;
                let mut sent = 0;
                for e in &events {
                    carry.extend_from_slice(e);
                    let (out, next, f) = redactor.redact_frame(&carry, &none, forced);
                    sent += out.len();
                    carry = next;
                    forced = f;
                }
                sent
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
