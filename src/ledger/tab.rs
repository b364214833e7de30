//! The tab of one API call: who makes it, on which mapping and model, and how it ended.
//!
//! A [`Tab`] is opened once the mapping and model are known and closed exactly once: by the
//! server when the call fails or a whole response is ready, by the stream body when the stream
//! ends, or by `Drop` when the client went away first (a client abort, never charged). Closing
//! prices the usage with the mapping's `pricing`, counts tokens and cost in `/metrics` and
//! hands the [`Record`] to the ledger.

use std::sync::Arc;
use std::time::Instant;

use crate::dialect::answer::Usage;
use crate::error::ProxyError;
use crate::ledger::responses::Responses;
use crate::ledger::writer::Ledger;
use crate::ledger::{Record, Status, day_of};
use crate::mapping::Mapping;
use crate::mapping::pricing::{OTHER_LABEL, Price};
use crate::ops::handles::MappingMetrics;

/// One call's accounting, closed exactly once.
pub struct Tab {
    ledger: Option<Ledger>,
    metrics: Arc<MappingMetrics>,
    mapping: Arc<Mapping>,
    upstream_model: String,
    record: Record,
    started: Instant,
    open: bool,
}

/// Who a call is for, as the server found out.
pub struct Caller<'a> {
    pub request_id: &'a str,
    pub user: Option<&'a str>,
    pub key: Option<&'a str>,
    pub stream: bool,
    pub started: Instant,
}

impl Tab {
    /// Opens the tab of a call on `mapping`, for `model` as the client named it.
    pub fn open(
        ledger: Option<Ledger>,
        metrics: &Arc<MappingMetrics>,
        mapping: &Arc<Mapping>,
        model: &str,
        upstream_model: &str,
        caller: Caller<'_>,
    ) -> Tab {
        let id = if ledger.is_some() {
            random_id()
        } else {
            String::new()
        };
        Tab {
            ledger,
            metrics: Arc::clone(metrics),
            mapping: Arc::clone(mapping),
            upstream_model: upstream_model.to_string(),
            record: Record {
                id,
                at_ms: 0,
                day: String::new(),
                request_id: caller.request_id.to_string(),
                user: caller.user.map(String::from),
                key: caller.key.map(String::from),
                mapping: mapping.name.clone(),
                model: model.to_string(),
                stream: caller.stream,
                status: Status::Ok,
                http_status: 200,
                prompt_tokens: 0,
                completion_tokens: 0,
                cached_tokens: 0,
                cost_nano: 0,
                duration_ms: 0,
                error: None,
                hold: None,
            },
            started: caller.started,
            open: true,
        }
    }

    /// The id budget holds for this call are taken under.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Links the budget hold taken for this call: writing the record settles it.
    pub fn held(&mut self) {
        self.record.hold = Some(self.record.id.clone());
    }

    /// What a call costs at the least before it is made: its per-request price.
    pub fn hold_cost(&self) -> i64 {
        self.mapping
            .pricing
            .as_ref()
            .and_then(|p| p.price(&self.upstream_model, &self.record.model))
            .map_or(0, |p| p.hold_cost())
    }

    /// The currency the call's mapping prices in (`USD` when it has no prices).
    pub fn currency(&self) -> &str {
        self.mapping
            .pricing
            .as_ref()
            .map_or(crate::mapping::pricing::DEFAULT_CURRENCY, |p| {
                p.currency.as_str()
            })
    }

    /// The call moves to a fallback mapping (counted on its `metrics`): it is priced and
    /// recorded there.
    pub fn retarget(
        &mut self,
        mapping: &Arc<Mapping>,
        metrics: &Arc<MappingMetrics>,
        model: &str,
        upstream_model: &str,
    ) {
        self.mapping = Arc::clone(mapping);
        self.metrics = Arc::clone(metrics);
        self.record.mapping = mapping.name.clone();
        self.record.model = model.to_string();
        self.upstream_model = upstream_model.to_string();
    }

    /// A success: the whole response is ready (or the stream ended as it should).
    pub fn succeeded(self, usage: &Usage) {
        self.close(Status::Ok, 200, usage, None);
    }

    /// A failure: before the first byte (`http_status` is what the client got) or inside a
    /// stream (200).
    pub fn failed(self, error: &ProxyError, http_status: u16, usage: &Usage) {
        let status = if matches!(error, ProxyError::QuotaExceeded { .. }) {
            Status::BudgetExceeded
        } else if error.is_upstream_failure()
            || matches!(error, ProxyError::UpstreamStreamError { .. })
        {
            Status::UpstreamError
        } else {
            Status::ClientError
        };
        let text = error.to_string();
        let text = crate::ops::redact::at_rest().redact(&text).into_owned();
        self.close(status, http_status, usage, Some(text));
    }

    /// The client went away before the response was complete: recorded, never charged.
    pub fn aborted(self, usage: &Usage) {
        self.close(Status::ClientAbort, 499, usage, None);
    }

    fn close(mut self, status: Status, http_status: u16, usage: &Usage, error: Option<String>) {
        self.open = false;
        let mapping = &self.mapping;
        let pricing = mapping.pricing.as_ref();
        let price = pricing.and_then(|p| p.price(&self.upstream_model, &self.record.model));
        let cost = match (status, price) {
            (Status::Ok, Some(p)) => p.cost(usage),
            _ => 0,
        };
        let tokens = |n: Option<u64>| i64::try_from(n.unwrap_or(0)).unwrap_or(i64::MAX);
        let (prompt, completion, cached) = (
            tokens(usage.prompt_tokens),
            tokens(usage.completion_tokens),
            tokens(usage.cached_tokens),
        );
        self.metrics.model(
            model_slot(mapping, price, &self.record.model),
            [prompt as u64, completion as u64, cached as u64],
            cost.max(0) as u64,
        );
        let Some(ledger) = self.ledger.take() else {
            return;
        };
        let at_ms = ledger.now_ms();
        let mut record = std::mem::replace(&mut self.record, empty_record());
        record.at_ms = at_ms;
        record.day = day_of(at_ms);
        record.status = status;
        record.http_status = http_status;
        record.prompt_tokens = prompt;
        record.completion_tokens = completion;
        record.cached_tokens = cached;
        record.cost_nano = cost;
        record.duration_ms = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        record.error = error;
        ledger.record(record);
    }
}

impl Drop for Tab {
    fn drop(&mut self) {
        if self.open {
            // Dropped without a word: the client left while the call was running.
            let tab = Tab {
                ledger: self.ledger.take(),
                metrics: Arc::clone(&self.metrics),
                mapping: Arc::clone(&self.mapping),
                upstream_model: std::mem::take(&mut self.upstream_model),
                record: std::mem::replace(&mut self.record, empty_record()),
                started: self.started,
                open: false,
            };
            tab.aborted(&Usage::default());
        }
    }
}

/// The model labels of `mapping`'s metrics, each a bounded label: its price patterns, its
/// declared models, then `other` (`model_slot` says which a call counts under).
pub fn model_labels(mapping: &Mapping) -> Vec<String> {
    let prices = mapping.pricing.as_ref().map_or(&[][..], |p| p.prices());
    prices
        .iter()
        .map(|p| p.pattern.clone())
        .chain(mapping.models.iter().map(|m| m.id.clone()))
        .chain([OTHER_LABEL.to_string()])
        .collect()
}

/// The position among [`model_labels`] of a call's model label: the pattern of its `price`,
/// else `model` if the mapping declares it, else `other`.
fn model_slot(mapping: &Mapping, price: Option<&Price>, model: &str) -> usize {
    let prices = mapping.pricing.as_ref().map_or(&[][..], |p| p.prices());
    if let Some(i) = price.and_then(|p| prices.iter().position(|q| std::ptr::eq(q, p))) {
        return i;
    }
    match mapping.models.iter().position(|m| m.id == model) {
        Some(i) => prices.len() + i,
        None => prices.len() + mapping.models.len(),
    }
}

fn empty_record() -> Record {
    Record {
        id: String::new(),
        at_ms: 0,
        day: String::new(),
        request_id: String::new(),
        user: None,
        key: None,
        mapping: String::new(),
        model: String::new(),
        stream: false,
        status: Status::ClientAbort,
        http_status: 0,
        prompt_tokens: 0,
        completion_tokens: 0,
        cached_tokens: 0,
        cost_nano: 0,
        duration_ms: 0,
        error: None,
        hold: None,
    }
}

/// A ledger row id: 24 random alphanumerics.
fn random_id() -> String {
    (0..24).map(|_| fastrand::alphanumeric()).collect()
}

/// What the server needs to account for calls: the ledger, the budgets and where the user's
/// identity comes from.
#[derive(Default)]
pub struct Accounting {
    /// Where records go; `None` (`--ledger off`): metrics only.
    pub ledger: Option<Ledger>,
    /// Limits per user and per API key (`--budgets`); they need a ledger.
    pub budgets: Option<crate::ledger::budgets::Budgets>,
    /// The request header naming the user (`--user-header`), checked before the body's `user`.
    pub user_header: Option<http::HeaderName>,
    /// How long a stored Response is kept (`--responses-ttl`); zero: none is stored.
    pub responses_ttl: std::time::Duration,
}

/// The longest user identity taken from a request; a longer one is ignored.
const MAX_USER_LEN: usize = 256;

/// A user identity trimmed, unless it is empty or longer than [`MAX_USER_LEN`].
fn usable_user(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty() && s.len() <= MAX_USER_LEN).then_some(s)
}

impl Accounting {
    /// The stored Responses in the ledger's database: `None` without a ledger (or with a store
    /// that keeps none). Reading and deleting stay possible while `responses_ttl` is zero.
    pub fn responses(&self) -> Option<Responses<'_>> {
        self.ledger.as_ref()?.responses()
    }

    /// When a response stored at `now_ms` expires, or `None` when none is stored (no ledger,
    /// or `responses_ttl` zero).
    pub fn responses_expire_at(&self, now_ms: i64) -> Option<i64> {
        let ttl = i64::try_from(self.responses_ttl.as_millis()).unwrap_or(i64::MAX);
        (ttl > 0 && self.responses().is_some()).then(|| now_ms.saturating_add(ttl))
    }

    /// Who a call is for: the configured header, else the OpenAI `user` field, else the
    /// inbound API key's name. Empty or overlong values do not count.
    pub fn user<'a>(
        &self,
        headers: &'a http::HeaderMap,
        request: &'a serde_json::Value,
        key: Option<&'a str>,
    ) -> Option<&'a str> {
        self.header_user(headers)
            .or_else(|| {
                request
                    .get("user")
                    .and_then(serde_json::Value::as_str)
                    .and_then(usable_user)
            })
            .or(key)
    }

    /// The user the configured header (`--user-header`) names, if it is usable.
    pub fn header_user<'a>(&self, headers: &'a http::HeaderMap) -> Option<&'a str> {
        self.user_header
            .as_ref()
            .and_then(|h| headers.get(h))
            .and_then(|v| v.to_str().ok())
            .and_then(usable_user)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::ledger::store::SqlStore;
    use crate::ledger::writer::LedgerOptions;
    use crate::ops::clock::Clock;
    use crate::ops::telemetry::Metrics;

    #[tokio::test]
    async fn responses_are_stored_with_a_ledger_and_a_ttl() {
        const T0: i64 = 1_795_392_000_000;
        let accounting = Accounting::default();
        assert!(accounting.responses().is_none());
        assert_eq!(accounting.responses_expire_at(T0), None, "no ledger");

        let store = SqlStore::connect_lazy("sqlite::memory:").unwrap();
        let options = LedgerOptions {
            clock: Clock::manual(T0),
            ..LedgerOptions::default()
        };
        let ledger = Ledger::start(Arc::new(store), options, Metrics::new());
        let mut accounting = Accounting {
            ledger: Some(ledger),
            responses_ttl: Duration::from_secs(30 * 86_400),
            ..Accounting::default()
        };
        let now = accounting.responses().unwrap().now_ms();
        assert_eq!(now, T0);
        assert_eq!(
            accounting.responses_expire_at(now),
            Some(T0 + 30 * 86_400_000)
        );
        accounting.responses_ttl = Duration::ZERO;
        assert_eq!(accounting.responses_expire_at(now), None, "ttl 0");
        assert!(
            accounting.responses().is_some(),
            "what is stored stays readable"
        );
    }
}
