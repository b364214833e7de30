//! The metric handles of one mapping, resolved once instead of on every request.
//!
//! `with_label_values` hashes the label values and takes the vector's lock on every call.
//! [`MappingMetrics`] holds, for every label combination of a mapping that comes from a
//! closed set (routes, status classes, upstream error kinds, retry reasons, token kinds) or
//! from the mapping's own configuration (its endpoints, its priced and declared models), a
//! slot for the series' handle. A slot is resolved on its first use and kept: the mapping set
//! builds one `MappingMetrics` per mapping when it is loaded, and a request only reads slots.
//!
//! Slots are filled on first use, not at load, so that `/metrics` shows exactly the series it
//! showed before: a series appears when it is first counted, never as a zero nobody asked
//! for. A reloaded set gets fresh slots that resolve to the same series of the same vectors,
//! so every series continues across reloads.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus::{Histogram, IntCounter, IntGauge};

use crate::dialect::answer::Usage;
use crate::error::ProxyError;
use crate::ops::params::{LABELS, OTHER};
use crate::ops::telemetry::Metrics;

/// Route labels, in the order of [`RouteLabel::index`].
pub const ROUTES: [&str; 7] = [
    "chat",
    "responses",
    "completions",
    "embeddings",
    "models",
    "messages",
    "count_tokens",
];

/// Status class labels, in the order of [`status_index`].
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The `kind` labels of `rosetta_upstream_errors_total`: every upstream `ProxyError::kind`.
pub const UPSTREAM_KINDS: [&str; 6] = [
    "upstream_status",
    "upstream_unreachable",
    "upstream_timeout",
    "upstream_bad_response",
    "upstream_too_large",
    "upstream_stream_error",
];

/// What failed before an upstream request was tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    Connect,
    Timeout,
    TooMany,
    ServerError,
}

/// The `reason` labels of `rosetta_upstream_retries_total`, in the order of [`RetryReason`].
pub const RETRY_REASONS: [&str; 4] = ["connect", "timeout", "429", "5xx"];

/// The `kind` labels of `rosetta_model_tokens_total`.
pub const MODEL_TOKEN_KINDS: [&str; 3] = ["prompt", "completion", "cached"];

/// A route from the closed set of [`ROUTES`]: its position there.
pub trait RouteLabel: Copy {
    fn index(self) -> usize;
}

/// The position of `status`'s class among [`STATUS_CLASSES`].
pub fn status_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

/// A handle resolved on first use.
struct Slot<T>(OnceLock<T>);

impl<T> Slot<T> {
    const fn new() -> Self {
        Slot(OnceLock::new())
    }
}

fn slots<T, const N: usize>() -> [Slot<T>; N] {
    std::array::from_fn(|_| Slot::new())
}

/// The series of one model label (a price pattern, a declared model, or `other`).
struct ModelSeries {
    label: String,
    tokens: [Slot<IntCounter>; 3],
    cost: Slot<IntCounter>,
}

/// Every metric handle of one mapping (or of `-`, the calls no mapping could be chosen for).
pub struct MappingMetrics {
    metrics: Metrics,
    name: String,
    requests: [[Slot<IntCounter>; STATUS_CLASSES.len()]; ROUTES.len()],
    request_duration: [Slot<Histogram>; ROUTES.len()],
    upstream_duration: [Slot<Histogram>; ROUTES.len()],
    time_to_first_token: Slot<Histogram>,
    /// `prompt`, `completion`.
    tokens: [Slot<IntCounter>; 2],
    active_streams: Slot<IntGauge>,
    upstream_errors: [Slot<IntCounter>; UPSTREAM_KINDS.len()],
    retries: [Slot<IntCounter>; RETRY_REASONS.len()],
    /// By endpoint, in the mapping's order, with the endpoint's label.
    ejections: Box<[(String, Slot<IntCounter>)]>,
    /// By model label, in the order given to [`MappingMetrics::new`].
    models: Box<[ModelSeries]>,
    /// `rosetta_dropped_params_total` by `param` label: the positions of
    /// [`LABELS`], then `other`.
    dropped: Box<[Slot<IntCounter>]>,
    /// How many slots were resolved (`with_label_values` calls made), for tests.
    resolved: AtomicUsize,
}

impl MappingMetrics {
    /// The handles of mapping `name` on `metrics`: `endpoints` are its endpoints' labels,
    /// `model_labels` the labels its calls' models can take (see [`Self::model`]).
    pub fn new<'a>(
        metrics: &Metrics,
        name: &str,
        endpoints: impl IntoIterator<Item = &'a str>,
        model_labels: impl IntoIterator<Item = String>,
    ) -> Self {
        MappingMetrics {
            metrics: metrics.clone(),
            name: name.to_string(),
            requests: std::array::from_fn(|_| slots()),
            request_duration: slots(),
            upstream_duration: slots(),
            time_to_first_token: Slot::new(),
            tokens: slots(),
            active_streams: Slot::new(),
            upstream_errors: slots(),
            retries: slots(),
            ejections: endpoints
                .into_iter()
                .map(|e| (e.to_string(), Slot::new()))
                .collect(),
            models: model_labels
                .into_iter()
                .map(|label| ModelSeries {
                    label,
                    tokens: slots(),
                    cost: Slot::new(),
                })
                .collect(),
            dropped: (0..=LABELS.len()).map(|_| Slot::new()).collect(),
            resolved: AtomicUsize::new(0),
        }
    }

    /// The handle in `slot`, resolved with `resolve` the first time.
    fn get<'s, T>(&self, slot: &'s Slot<T>, resolve: impl FnOnce() -> T) -> &'s T {
        slot.0.get_or_init(|| {
            self.resolved.fetch_add(1, Ordering::Relaxed);
            resolve()
        })
    }

    /// How many label sets these handles resolved so far: once per series used, whatever the
    /// number of requests.
    pub fn resolutions(&self) -> usize {
        self.resolved.load(Ordering::Relaxed)
    }

    /// The handles of calls no mapping could be chosen for (mapping label `-`).
    pub fn unmapped(metrics: &Metrics) -> Self {
        Self::new(metrics, "-", [], [])
    }

    /// The mapping label.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The metrics these handles count on.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `rosetta_requests_total{mapping, route, status}`.
    pub fn requests(&self, route: impl RouteLabel, status: u16) -> &IntCounter {
        let (r, s) = (route.index(), status_index(status));
        self.get(&self.requests[r][s], || {
            self.metrics
                .requests
                .with_label_values(&[&self.name, ROUTES[r], STATUS_CLASSES[s]])
        })
    }

    /// `rosetta_request_duration_seconds{mapping, route}`.
    pub fn request_duration(&self, route: impl RouteLabel) -> &Histogram {
        let r = route.index();
        self.get(&self.request_duration[r], || {
            self.metrics
                .request_duration
                .with_label_values(&[&self.name, ROUTES[r]])
        })
    }

    /// `rosetta_upstream_duration_seconds{mapping, route}`.
    pub fn upstream_duration(&self, route: impl RouteLabel) -> &Histogram {
        let r = route.index();
        self.get(&self.upstream_duration[r], || {
            self.metrics
                .upstream_duration
                .with_label_values(&[&self.name, ROUTES[r]])
        })
    }

    /// `rosetta_time_to_first_token_seconds{mapping}`.
    pub fn time_to_first_token(&self) -> &Histogram {
        self.get(&self.time_to_first_token, || {
            self.metrics
                .time_to_first_token
                .with_label_values(&[&self.name])
        })
    }

    /// `rosetta_active_streams{mapping}`.
    pub fn active_streams(&self) -> &IntGauge {
        self.get(&self.active_streams, || {
            self.metrics.active_streams.with_label_values(&[&self.name])
        })
    }

    /// Counts the tokens of a finished response in `rosetta_tokens_total{mapping, kind}`.
    pub fn count_tokens(&self, usage: &Usage) {
        for (i, (kind, n)) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(n) = n {
                self.get(&self.tokens[i], || {
                    self.metrics.tokens.with_label_values(&[&self.name, kind])
                })
                .inc_by(n);
            }
        }
    }

    /// Counts `error` in `rosetta_upstream_errors_total{mapping, kind}` if it is the
    /// upstream's (its kind starts with `upstream_`).
    pub fn upstream_error(&self, error: &ProxyError) {
        let kind = error.kind();
        match UPSTREAM_KINDS.iter().position(|k| *k == kind) {
            Some(i) => self
                .get(&self.upstream_errors[i], || {
                    self.metrics
                        .upstream_errors
                        .with_label_values(&[&self.name, kind])
                })
                .inc(),
            // A kind added to `ProxyError` but not here yet: counted all the same.
            None if kind.starts_with("upstream_") => self
                .metrics
                .upstream_errors
                .with_label_values(&[&self.name, kind])
                .inc(),
            None => {}
        }
    }

    /// `rosetta_upstream_retries_total{mapping, reason}`.
    pub fn retries(&self, reason: RetryReason) -> &IntCounter {
        let i = reason as usize;
        self.get(&self.retries[i], || {
            self.metrics
                .upstream_retries
                .with_label_values(&[&self.name, RETRY_REASONS[i]])
        })
    }

    /// `rosetta_dropped_params_total{mapping, param}` of label `label` (a position in
    /// [`LABELS`]; past its end, `other`).
    pub fn dropped(&self, label: usize) -> &IntCounter {
        let i = label.min(LABELS.len());
        self.get(&self.dropped[i], || {
            let param = LABELS.get(i).copied().unwrap_or(OTHER);
            self.metrics
                .dropped_params
                .with_label_values(&[&self.name, param])
        })
    }

    /// `rosetta_endpoint_ejections_total{mapping, endpoint}` of the mapping's endpoint `i`.
    pub fn ejections(&self, i: usize) -> &IntCounter {
        let (label, slot) = &self.ejections[i];
        self.get(slot, || {
            self.metrics
                .endpoint_ejections
                .with_label_values(&[&self.name, label])
        })
    }

    /// Counts a finished call's tokens by kind (`prompt`, `completion`, `cached`, in the order
    /// of [`MODEL_TOKEN_KINDS`]) and cost, under model label `model` (a position among the
    /// labels given to [`MappingMetrics::new`]).
    pub fn model(&self, model: usize, tokens: [u64; 3], cost: u64) {
        let series = &self.models[model];
        for (i, n) in tokens.into_iter().enumerate() {
            if n > 0 {
                self.get(&series.tokens[i], || {
                    self.metrics.model_tokens.with_label_values(&[
                        &self.name,
                        &series.label,
                        MODEL_TOKEN_KINDS[i],
                    ])
                })
                .inc_by(n);
            }
        }
        if cost > 0 {
            self.get(&series.cost, || {
                self.metrics
                    .cost_nano
                    .with_label_values(&[&self.name, &series.label])
            })
            .inc_by(cost);
        }
    }
}

#[cfg(test)]
#[path = "handles_tests.rs"]
mod tests;
