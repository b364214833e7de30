//! What the server shares across connections: the current mapping set (swapped whole on
//! reload), metrics, limits, keys, accounting and the redactors of every secret.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::ledger::tab::{Accounting, model_labels};
use crate::limits::Limits;
use crate::mapping::Mapping;
use crate::ops::clock::Clock;
use crate::ops::handles::MappingMetrics;
use crate::ops::redact::Redactor;
use crate::ops::telemetry::Metrics;
use crate::ops::trace::TraceMode;
use crate::serving::admission::Admission;
use crate::serving::auth::Auth;
use crate::serving::memory::MemoryBudget;
use crate::upstream::pool::Pool;
use crate::upstream::{self, UpstreamClient};

/// A loaded mapping with its pooled client.
pub struct Loaded {
    pub mapping: Arc<Mapping>,
    pub client: UpstreamClient,
    /// The run-time health of the mapping's endpoints.
    pub pool: Arc<Pool>,
    /// The mapping's metric handles, resolved once rather than on every request.
    pub metrics: Arc<MappingMetrics>,
}

/// One compiled set of mappings, swapped whole on reload: a request keeps the set it started
/// with (an `Arc`) until it ends, streams included.
pub struct MappingSet {
    pub mappings: BTreeMap<String, Loaded>,
    /// The metric handles of calls no mapping could be chosen for (mapping label `-`).
    pub unmapped: Arc<MappingMetrics>,
    /// 0 for the set loaded at start-up, one more for each set swapped in since (reloads).
    pub generation: u64,
    /// When this set was compiled (Unix seconds).
    pub loaded_at: u64,
}

impl MappingSet {
    /// Builds the set (one pooled client and one set of metric handles on `metrics` per
    /// mapping).
    pub fn new(mappings: Vec<Arc<Mapping>>, metrics: &Metrics) -> Self {
        let mappings = mappings
            .into_iter()
            .map(|m| {
                let client = upstream::client_for(&m);
                let pool = Arc::new(Pool::new(m.upstream.endpoints.len()));
                let handles = MappingMetrics::new(
                    metrics,
                    &m.name,
                    m.upstream.endpoints.iter().map(|e| e.label.as_str()),
                    model_labels(&m),
                );
                (
                    m.name.clone(),
                    Loaded {
                        mapping: m,
                        client,
                        pool,
                        metrics: Arc::new(handles),
                    },
                )
            })
            .collect();
        MappingSet {
            mappings,
            unmapped: Arc::new(MappingMetrics::unmapped(metrics)),
            generation: 0,
            loaded_at: crate::dialect::openai::now_secs(),
        }
    }

    /// Keeps, for each mapping whose endpoints (URLs, weights) and connect timeout did not
    /// change, the warm connection pool and the endpoint health of `old`: a reload does not
    /// put a failing endpoint back into rotation.
    fn carry_over(&mut self, old: &MappingSet) {
        for (name, new) in &mut self.mappings {
            let Some(prev) = old.mappings.get(name) else {
                continue;
            };
            let (a, b) = (&new.mapping.upstream, &prev.mapping.upstream);
            let same = a.connect_timeout == b.connect_timeout
                && a.endpoints.len() == b.endpoints.len()
                && a.endpoints
                    .iter()
                    .zip(&b.endpoints)
                    .all(|(x, y)| x.label == y.label && x.weight == y.weight);
            if same {
                new.pool = Arc::clone(&prev.pool);
                new.client = prev.client.clone();
            }
            if let (Some(t), Some(old)) = (&a.token, &b.token) {
                t.adopt(old);
            }
        }
    }

    /// Gives every token source of the set this clock.
    fn use_clock(&self, clock: &Clock) {
        for l in self.mappings.values() {
            if let Some(t) = &l.mapping.upstream.token {
                t.set_clock(clock.clone());
            }
        }
    }

    /// The redactors of the tokens the set's mappings mint.
    fn token_redactors(&self) -> impl Iterator<Item = Arc<Redactor>> + '_ {
        self.mappings
            .values()
            .filter_map(|l| l.mapping.upstream.token.as_ref().map(|t| t.redactor()))
    }
}

/// A redactor of every mapping's secrets (remembered for logs and the ledger too).
fn redactor_of(set: &MappingSet) -> Redactor {
    let secrets: Vec<&String> = set
        .mappings
        .values()
        .flat_map(|l| l.mapping.upstream.secrets.iter())
        .collect();
    crate::ops::redact::remember(secrets.iter().copied());
    Redactor::new(secrets)
}

/// Everything the server needs, shared by all connections.
pub struct State {
    pub(crate) current: ArcSwap<MappingSet>,
    pub metrics: Metrics,
    pub started: u64,
    /// Which requests are logged end to end (`--trace`).
    pub trace: TraceMode,
    /// Client-side limits ([`State::with_limits`]; defaults otherwise).
    pub limits: Limits,
    /// Inbound API keys ([`State::with_auth`]; off otherwise).
    pub auth: Arc<Auth>,
    /// The concurrency limit, sized by `limits.max_concurrent`.
    pub(crate) admission: Admission,
    /// The memory budget of in-flight requests, sized by `limits.max_inflight_bytes`.
    pub(crate) memory: Arc<MemoryBudget>,
    /// Usage, pricing and budgets ([`State::with_accounting`]; metrics only otherwise).
    pub accounting: Accounting,
    /// The keys of `/admin/...` ([`State::with_admin`]; the admin API is off otherwise).
    pub admin: Option<Auth>,
    /// The secrets of the current mappings, redacted from everything sent (rebuilt on reload).
    pub(crate) redactor: ArcSwap<Redactor>,
    /// "Now" for upstream request signatures and minted tokens' expiry ([`State::with_clock`];
    /// the system clock otherwise).
    pub clock: Clock,
}

impl State {
    /// Builds the state (one pooled client per mapping).
    pub fn new(mappings: Vec<Arc<Mapping>>) -> Self {
        let metrics = Metrics::new();
        let set = MappingSet::new(mappings, &metrics);
        metrics.observe_mappings(set.mappings.len(), set.loaded_at);
        let admission = Admission::new(
            crate::limits::DEFAULT_MAX_CONCURRENT,
            metrics.in_flight.clone(),
        );
        let redactor = ArcSwap::from_pointee(redactor_of(&set));
        let memory = MemoryBudget::new(
            crate::limits::DEFAULT_MAX_INFLIGHT_BYTES,
            metrics.inflight_bytes.clone(),
        );
        State {
            redactor,
            current: ArcSwap::from_pointee(set),
            metrics,
            started: crate::dialect::openai::now_secs(),
            trace: TraceMode::Off,
            limits: Limits::default(),
            auth: Arc::new(Auth::off()),
            admission,
            memory,
            accounting: Accounting::default(),
            admin: None,
            clock: Clock::system(),
        }
    }

    /// The mapping set new requests use.
    pub fn mappings(&self) -> Arc<MappingSet> {
        self.current.load_full()
    }

    /// Replaces the mapping set atomically; requests already running keep the old one. The new
    /// set's `generation` becomes the old one's plus one (callers serialize replacements:
    /// `reload::Reloader` does).
    pub fn replace_mappings(&self, mut set: MappingSet) {
        let old = self.current.load();
        set.generation = old.generation + 1;
        set.carry_over(&old);
        set.use_clock(&self.clock);
        self.metrics
            .observe_mappings(set.mappings.len(), set.loaded_at);
        self.redactor.store(Arc::new(redactor_of(&set)));
        self.current.store(Arc::new(set));
    }

    /// The redactors of the current secrets (the mappings', the inbound keys', the admin
    /// keys'): what every string passes through on its way to a client
    /// ([`crate::serving::shield::Shield`]).
    pub fn redactors(&self) -> Vec<Arc<Redactor>> {
        let mut out = vec![self.redactor.load_full(), self.auth.redactor()];
        out.extend(self.admin.as_ref().map(Auth::redactor));
        out.extend(self.current.load().token_redactors());
        out
    }

    /// The same state, reading "now" from `clock` (tests pin it): for request signatures and
    /// minted tokens' expiry.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.current.load().use_clock(&clock);
        self.clock = clock;
        self
    }

    /// The same state, tracing the requests `mode` selects.
    pub fn with_trace(mut self, mode: TraceMode) -> Self {
        self.trace = mode;
        self
    }

    /// The same state with these client limits (body size and content, memory budget, read
    /// timeouts, concurrency limit, shutdown grace).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.admission = Admission::new(limits.max_concurrent, self.metrics.in_flight.clone());
        self.memory = MemoryBudget::new(
            limits.max_inflight_bytes,
            self.metrics.inflight_bytes.clone(),
        );
        self.limits = limits;
        self
    }

    /// The same state, requiring the inbound API keys of `auth` (with none, auth stays off).
    pub fn with_auth(mut self, auth: impl Into<Arc<Auth>>) -> Self {
        self.auth = auth.into();
        self
    }

    /// The same state, recording calls on a ledger and enforcing budgets.
    pub fn with_accounting(mut self, accounting: Accounting) -> Self {
        self.accounting = accounting;
        self
    }

    /// The same state, serving `/admin/...` to holders of these keys. Keys with no key in them
    /// leave the admin API off: it is never open to anyone.
    pub fn with_admin(mut self, admin: Auth) -> Self {
        self.admin = admin.enabled().then_some(admin);
        self
    }
}
