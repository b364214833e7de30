//! Prometheus metrics and log set-up.
//!
//! Labels come only from a small fixed set: mapping names (from file names), route names,
//! status classes and error kinds. A user-supplied string never becomes a label.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
    /// Mapping reloads by result: `ok`, `error` (the running set was kept), `unchanged`.
    pub reloads: IntCounterVec,
    /// Mappings in the set serving new requests.
    pub mappings_loaded: IntGauge,
    /// When the running set was loaded (Unix seconds): start-up or the last successful reload.
    pub last_reload_success: IntGauge,
    /// 1 when the last load or reload succeeded (or found nothing changed), 0 after a failure.
    pub last_reload_successful: IntGauge,
    pub upstream_errors: IntCounterVec,
    // Upstream pools: retries, endpoints taken out of rotation, fallbacks.
    pub upstream_retries: IntCounterVec,
    pub endpoint_ejections: IntCounterVec,
    pub fallbacks: IntCounterVec,
    /// Requests refused before reaching an upstream, by reason (`concurrency`, `unauthorized`,
    /// `too_large`, `too_complex`, `memory`, `body_timeout`, `header_timeout`).
    pub rejected: IntCounterVec,
    /// The series of `rejected`, resolved once, by [`Rejection`].
    rejections: [IntCounter; REJECTIONS.len()],
    /// API calls admitted and not finished yet (a stream until its last byte).
    pub in_flight: IntGauge,
    /// Bytes the in-flight requests hold on the memory budget (`--max-inflight-bytes`).
    pub inflight_bytes: IntGauge,
    /// Cost of succeeded calls in nano-units of the prices' currency, by mapping and model
    /// (the model as priced: a declared model or price pattern, `other` otherwise).
    pub cost_nano: IntCounterVec,
    /// Tokens of finished calls by mapping, model (as for `cost_nano`) and kind
    /// (`prompt`, `completion`, `cached`).
    pub model_tokens: IntCounterVec,
    /// Budget decisions: `allowed`, `denied`, `store_error` (the call went through unchecked).
    pub budget_checks: IntCounterVec,
    /// Request fields a mapping did not translate, by mapping and OpenAI field name (a closed
    /// set: `translate::fidelity::LABELS`, else `other`).
    pub dropped_params: IntCounterVec,
    /// The series of `budget_checks`, resolved once, by [`BudgetCheck`].
    budget_decisions: [IntCounter; BUDGET_CHECKS.len()],
    /// Ledger records waiting to be written.
    pub ledger_pending: IntGauge,
    /// Ledger records written.
    pub ledger_written: IntCounter,
    /// Failed ledger batch writes (the records are kept and retried).
    pub ledger_write_errors: IntCounter,
    /// Records dropped because the queue was full during a long store outage.
    pub ledger_dropped: IntCounter,
    /// 1 while the ledger's store accepts writes, 0 after a failure until the next success.
    pub ledger_up: IntGauge,
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
        let upstream_retries = counter(
            "rosetta_upstream_retries_total",
            "Upstream requests tried again before the first byte, by what failed (connect, timeout, 429, 5xx)",
            &["mapping", "reason"],
        );
        let endpoint_ejections = counter(
            "rosetta_endpoint_ejections_total",
            "Times an endpoint was taken out of rotation by passive health checks",
            &["mapping", "endpoint"],
        );
        let fallbacks = counter(
            "rosetta_fallbacks_total",
            "Calls sent to a fallback mapping after every endpoint failed",
            &["mapping", "fallback"],
        );
        let reloads = counter(
            "rosetta_reloads_total",
            "Mapping reloads, by result (ok, error: the running mappings were kept, unchanged)",
            &["result"],
        );
        for result in ["ok", "error", "unchanged"] {
            reloads.with_label_values(&[result]);
        }
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let mappings_loaded = gauge("rosetta_mappings_loaded", "Mappings serving new requests");
        let last_reload_success = gauge(
            "rosetta_last_reload_success_timestamp_seconds",
            "When the running mappings were loaded (start-up or last successful reload), Unix time",
        );
        let last_reload_successful = gauge(
            "rosetta_last_reload_successful",
            "1 if the last mapping load or reload succeeded, 0 if it failed",
        );
        let rejected = counter(
            "rosetta_rejected_total",
            "Requests refused before reaching an upstream, by reason (concurrency, unauthorized, too_large, too_complex, memory, body_timeout, header_timeout)",
            &["reason"],
        );
        let rejections = REJECTIONS.map(|reason| rejected.with_label_values(&[reason]));
        let in_flight = gauge(
            "rosetta_in_flight_requests",
            "API calls being served (a stream until its last byte); /health and /metrics are not counted",
        );
        let inflight_bytes = gauge(
            "rosetta_inflight_request_bytes",
            "Bytes held on the memory budget by in-flight requests: bodies, parsed forms and upstream renderings (estimated)",
        );
        let cost_nano = counter(
            "rosetta_cost_nano_total",
            "Cost of succeeded calls, in nano-units (1e-9) of the prices' currency, by mapping and model",
            &["mapping", "model"],
        );
        let model_tokens = counter(
            "rosetta_model_tokens_total",
            "Tokens of finished calls, by mapping, model and kind (prompt, completion, cached)",
            &["mapping", "model", "kind"],
        );
        let budget_checks = counter(
            "rosetta_budget_checks_total",
            "Budget decisions before forwarding: allowed, denied, store_error (let through unchecked)",
            &["result"],
        );
        let budget_decisions =
            BUDGET_CHECKS.map(|result| budget_checks.with_label_values(&[result]));
        let dropped_params = counter(
            "rosetta_dropped_params_total",
            "Request fields left out because the mapping does not translate them, by mapping and OpenAI field name (other: any name not in Rosetta's list)",
            &["mapping", "param"],
        );
        let plain_counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let ledger_pending = gauge(
            "rosetta_ledger_pending_records",
            "Ledger records waiting to be written",
        );
        let ledger_written = plain_counter(
            "rosetta_ledger_written_total",
            "Ledger records written to the store",
        );
        let ledger_write_errors = plain_counter(
            "rosetta_ledger_write_errors_total",
            "Failed ledger batch writes (the records are kept and retried)",
        );
        let ledger_dropped = plain_counter(
            "rosetta_ledger_dropped_total",
            "Ledger records dropped because the queue was full during a long store outage",
        );
        let ledger_up = gauge(
            "rosetta_ledger_up",
            "1 while the ledger store accepts writes, 0 after a failed write until the next success",
        );
        Metrics {
            registry,
            cost_nano,
            model_tokens,
            budget_checks,
            budget_decisions,
            dropped_params,
            ledger_pending,
            ledger_written,
            ledger_write_errors,
            ledger_dropped,
            ledger_up,
            rejected,
            rejections,
            in_flight,
            inflight_bytes,
            reloads,
            mappings_loaded,
            last_reload_success,
            last_reload_successful,
            upstream_retries,
            endpoint_ejections,
            fallbacks,
            requests,
            request_duration,
            upstream_duration,
            time_to_first_token,
            tokens,
            active_streams,
            upstream_errors,
        }
    }

    /// Records the set now serving new requests: its size and when it was loaded.
    pub fn observe_mappings(&self, count: usize, loaded_at: u64) {
        self.mappings_loaded
            .set(i64::try_from(count).unwrap_or(i64::MAX));
        self.last_reload_success
            .set(i64::try_from(loaded_at).unwrap_or(i64::MAX));
        self.last_reload_successful.set(1);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).unwrap_or_default()
    }

    /// `rosetta_rejected_total{reason}`, resolved when the metrics were made.
    pub fn rejected_for(&self, reason: Rejection) -> &IntCounter {
        &self.rejections[reason as usize]
    }

    /// `rosetta_budget_checks_total{result}`, resolved when the metrics were made.
    pub fn budget_check(&self, result: BudgetCheck) -> &IntCounter {
        &self.budget_decisions[result as usize]
    }
}

/// Why a request was refused before reaching an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Concurrency,
    Unauthorized,
    TooLarge,
    TooComplex,
    Memory,
    BodyTimeout,
    HeaderTimeout,
}

/// The `reason` labels of `rosetta_rejected_total`, in the order of [`Rejection`].
pub const REJECTIONS: [&str; 7] = [
    "concurrency",
    "unauthorized",
    "too_large",
    "too_complex",
    "memory",
    "body_timeout",
    "header_timeout",
];

/// A budget decision before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetCheck {
    Allowed,
    Denied,
    /// The store did not answer: the call went through unchecked.
    StoreError,
}

/// The `result` labels of `rosetta_budget_checks_total`, in the order of [`BudgetCheck`].
pub const BUDGET_CHECKS: [&str; 3] = ["allowed", "denied", "store_error"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `2xx`, `4xx`, `5xx`...
pub fn status_class(status: u16) -> &'static str {
    crate::ops::handles::STATUS_CLASSES[crate::ops::handles::status_index(status)]
}

/// Standard error, through the redactor of secrets: every log line, at every level and in
/// both formats, passes through it (the formatter writes one event per `write`).
struct RedactedStderr;

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let redactor = crate::ops::redact::at_rest();
        let out = redactor.redact_except(buf, &crate::ops::redact::Sent::default());
        std::io::stderr().write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the global tracing subscriber: `RUST_LOG` filter (default `info`), text or JSON.
pub fn init_logging(json: bool) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = log_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(|| RedactedStderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Whether text logs are coloured: only on a terminal (never in `docker logs`, a pipe or a
/// file), and not when `NO_COLOR` is set to a non-empty value (https://no-color.org).
fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod colour_tests {
    use super::log_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(log_colour(true, None));
        assert!(log_colour(true, Some(OsStr::new(""))));
        assert!(!log_colour(true, Some(OsStr::new("1"))));
        assert!(!log_colour(false, None));
        assert!(!log_colour(false, Some(OsStr::new(""))));
    }
}
