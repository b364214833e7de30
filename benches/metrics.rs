//! Counting one request's metrics: a whole chat call (request count, request and upstream
//! durations, tokens, model tokens and cost), as the call path counted them before (every
//! series looked up with `with_label_values`: the labels hashed and the vector's lock taken)
//! and as it counts them now (through the mapping's `MappingMetrics`, resolved once).
//!
//! `cargo bench --bench metrics`
//!
//! Every reported time is per call; both sides count the same series by the same amounts.

use criterion::{Criterion, criterion_group, criterion_main};
use rosetta::dialect::answer::Usage;
use rosetta::mapping::Op;
use rosetta::ops::handles::MappingMetrics;
use rosetta::ops::telemetry::{Metrics, status_class};
use std::hint::black_box;

const MAPPING: &str = "anthropic";
const MODEL: &str = "claude-sonnet-4-5*";

fn usage() -> Usage {
    Usage {
        prompt_tokens: Some(12),
        completion_tokens: Some(34),
        ..Default::default()
    }
}

/// The call path before: every series resolved from its labels.
fn by_labels(m: &Metrics, op: Op, status: u16, usage: &Usage) {
    m.upstream_duration
        .with_label_values(&[MAPPING, op.name()])
        .observe(0.2);
    if let Some(p) = usage.prompt_tokens {
        m.tokens.with_label_values(&[MAPPING, "prompt"]).inc_by(p);
    }
    if let Some(c) = usage.completion_tokens {
        m.tokens
            .with_label_values(&[MAPPING, "completion"])
            .inc_by(c);
    }
    for (kind, n) in [
        ("prompt", usage.prompt_tokens.unwrap_or(0)),
        ("completion", usage.completion_tokens.unwrap_or(0)),
        ("cached", usage.cached_tokens.unwrap_or(0)),
    ] {
        if n > 0 {
            m.model_tokens
                .with_label_values(&[MAPPING, MODEL, kind])
                .inc_by(n);
        }
    }
    m.cost_nano
        .with_label_values(&[MAPPING, MODEL])
        .inc_by(1000);
    m.requests
        .with_label_values(&[MAPPING, op.name(), status_class(status)])
        .inc();
    m.request_duration
        .with_label_values(&[MAPPING, op.name()])
        .observe(0.25);
}

/// The call path now: the mapping's handles.
fn by_handles(h: &MappingMetrics, op: Op, status: u16, usage: &Usage) {
    h.upstream_duration(op).observe(0.2);
    h.count_tokens(usage);
    h.model(
        0,
        [
            usage.prompt_tokens.unwrap_or(0),
            usage.completion_tokens.unwrap_or(0),
            usage.cached_tokens.unwrap_or(0),
        ],
        1000,
    );
    h.requests(op, status).inc();
    h.request_duration(op).observe(0.25);
}

fn bench(c: &mut Criterion) {
    let metrics = Metrics::new();
    let handles = MappingMetrics::new(
        &metrics,
        MAPPING,
        ["http://upstream"],
        [MODEL.to_string(), "other".to_string()],
    );
    let usage = usage();
    let mut group = c.benchmark_group("one_request_metrics");
    group.bench_function("with_label_values", |b| {
        b.iter(|| by_labels(&metrics, black_box(Op::Chat), black_box(200), &usage))
    });
    group.bench_function("resolved_handles", |b| {
        b.iter(|| by_handles(&handles, black_box(Op::Chat), black_box(200), &usage))
    });
    group.finish();
    // Both sides counted the same series: the handles are the labels' series.
    let requests = metrics
        .requests
        .with_label_values(&[MAPPING, "chat", "2xx"])
        .get();
    let cost = metrics.cost_nano.with_label_values(&[MAPPING, MODEL]).get();
    assert_eq!(cost, 1000 * requests);
}

criterion_group!(benches, bench);
criterion_main!(benches);
