//! Prometheus metrics and log set-up.
//!
//! Labels come only from a small fixed set: mapping names (from file names), route names,
//! status classes and error kinds. A user-supplied string never becomes a label.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, from sub-millisecond proxy overhead to multi-minute generations.
const BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Every metric Rosetta exports.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    pub time_to_first_token: HistogramVec,
    pub tokens: IntCounterVec,
    pub active_streams: IntGaugeVec,
    pub upstream_errors: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                labels,
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let requests = counter(
            "rosetta_requests_total",
            "Requests answered, by mapping, route and status class",
            &["mapping", "route", "status"],
        );
        let request_duration = histogram(
            "rosetta_request_duration_seconds",
            "Time from request to the end of the response (streams included)",
            &["mapping", "route"],
        );
        let upstream_duration = histogram(
            "rosetta_upstream_duration_seconds",
            "Time from sending the upstream request to its response headers",
            &["mapping", "route"],
        );
        let time_to_first_token = histogram(
            "rosetta_time_to_first_token_seconds",
            "Time from request to the first content chunk of a stream",
            &["mapping"],
        );
        let tokens = counter(
            "rosetta_tokens_total",
            "Tokens reported by upstreams, by kind (prompt, completion)",
            &["mapping", "kind"],
        );
        let active_streams = IntGaugeVec::new(
            Opts::new(
                "rosetta_active_streams",
                "Streams currently open to clients",
            ),
            &["mapping"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(active_streams.clone()))
            .expect("unique metric");
        let upstream_errors = counter(
            "rosetta_upstream_errors_total",
            "Upstream failures, by kind (upstream_status, upstream_unreachable, upstream_timeout, upstream_bad_response, upstream_stream_error)",
            &["mapping", "kind"],
        );
        Metrics {
            registry,
            requests,
            request_duration,
            upstream_duration,
            time_to_first_token,
            tokens,
            active_streams,
            upstream_errors,
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Counts tokens from a finished response.
    pub fn count_tokens(&self, mapping: &str, usage: &crate::openai::Usage) {
        if let Some(p) = usage.prompt_tokens {
            self.tokens
                .with_label_values(&[mapping, "prompt"])
                .inc_by(p);
        }
        if let Some(c) = usage.completion_tokens {
            self.tokens
                .with_label_values(&[mapping, "completion"])
                .inc_by(c);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `2xx`, `4xx`, `5xx`...
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Installs the global tracing subscriber: `RUST_LOG` filter (default `info`), text or JSON.
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
