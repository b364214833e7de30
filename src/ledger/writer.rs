//! The ledger handle the server holds: records are queued without blocking the request path and
//! written in batches by one background task, which survives a store outage (records are kept
//! and retried with backoff) and is flushed on graceful shutdown.
//!
//! Every record given to [`Ledger::record`] ends up in exactly one of these places:
//!
//! - written to the store (`ledger_written`);
//! - dropped because the queue held more than `max_pending` records during a long outage, the
//!   oldest first (`ledger_dropped`, logged);
//! - left unwritten when [`Ledger::close`] reached its deadline: appended to a spill file when
//!   `spill_dir` is set, otherwise counted as dropped and logged as an error.
//!
//! The task must run on a tokio runtime: [`Ledger::start`] spawns it on the current one, and the
//! runtime must outlive [`Ledger::close`] (records still queued when the runtime is dropped
//! without a close are lost).

use std::collections::VecDeque;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use super::responses::Responses;
use super::{Check, Denial, GroupBy, Record, ReportRow, Store, StoreError};
use crate::ops::clock::Clock;
use crate::ops::telemetry::{BudgetCheck, Metrics};

/// How many messages the task takes from the channel at a time.
const RECV_CHUNK: usize = 1024;
/// How long [`Ledger::close`] waits past its deadline for the task's report (the spill file is
/// written after the deadline) before giving up on it.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// At most one "queue full" warning per this interval (each with the count since the last one).
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How the ledger batches, retries and bounds its queue.
#[derive(Clone, Debug)]
pub struct LedgerOptions {
    /// The most records per [`Store::write`] call.
    pub batch_size: usize,
    /// How long the first queued record waits for a batch to fill before it is written.
    pub flush_interval: Duration,
    /// The most records kept unwritten (queued or retried); past it the oldest are dropped.
    pub max_pending: usize,
    /// How long a budget hold taken by [`Ledger::reserve`] lives unless settled by a record.
    pub hold_ttl: Duration,
    /// The longest [`Ledger::reserve`] waits for the store before answering `Unavailable`.
    pub reserve_timeout: Duration,
    /// The longest one batch write may take before it counts as failed (and is retried).
    pub write_timeout: Duration,
    /// The first delay before retrying a failed write; it doubles after each failure.
    pub retry_initial: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
    /// Where [`Ledger::close`] saves the records it could not write (JSON lines).
    pub spill_dir: Option<PathBuf>,
    /// Where "now" comes from: records' times and days, holds' expiry, budget periods,
    /// stored responses' expiry.
    pub clock: Clock,
    /// How often expired stored responses are purged ([`super::responses::PURGE_EVERY`]).
    pub responses_purge_every: Duration,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            batch_size: 500,
            flush_interval: Duration::from_millis(200),
            max_pending: 100_000,
            hold_ttl: Duration::from_secs(600),
            reserve_timeout: Duration::from_secs(2),
            write_timeout: Duration::from_secs(10),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            spill_dir: None,
            clock: Clock::system(),
            responses_purge_every: super::responses::PURGE_EVERY,
        }
    }
}

/// The answer of a budget check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Every limit fits (or there was none); the hold is taken.
    Granted,
    /// A limit would be exceeded: the call must be refused.
    Denied(Denial),
    /// The store failed or did not answer in time: the caller decides (the call is let through
    /// unchecked, counted as `store_error`).
    Unavailable(String),
}

/// Whether the store accepts writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerState {
    /// Nothing written yet, and no failure.
    Starting,
    /// The last write succeeded.
    Ok,
    /// The last write failed; records are kept and retried.
    Unavailable,
}

/// The ledger's health, for `/health`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerStatus {
    /// `sqlite` or `postgres`.
    pub store: &'static str,
    pub state: LedgerState,
    /// Records not written yet.
    pub pending: u64,
    pub written: u64,
    pub dropped: u64,
    /// Failed batch writes.
    pub write_errors: u64,
    /// The last write error (kept after recovery).
    pub last_error: Option<String>,
    /// When the last successful write ended, Unix milliseconds.
    pub last_write_ms: Option<i64>,
    /// Records saved to a spill file by [`Ledger::close`].
    pub spilled: u64,
}

/// What [`Ledger::close`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CloseReport {
    /// Records written from the moment this close was called until the end.
    pub written: u64,
    /// Records still unwritten at the deadline (spilled, or lost when not).
    pub left: u64,
    /// Of `left`, those appended to `spill_file`.
    pub spilled: u64,
    pub spill_file: Option<PathBuf>,
}

/// The handle the server holds; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::UnboundedSender<Msg>,
    store: Arc<dyn Store>,
    hold_ttl: Duration,
    reserve_timeout: Duration,
    /// `write_timeout`: bounds reports and stored-response operations.
    call_timeout: Duration,
    shared: Arc<Shared>,
    done: watch::Receiver<Option<CloseReport>>,
}

// Nearly every message is a record: boxing it would only add an allocation per record.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(Record),
    Close(Instant),
}

/// State shared between the handles and the task.
struct Shared {
    kind: &'static str,
    metrics: Metrics,
    pending: AtomicI64,
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    spilled: AtomicU64,
    health: Mutex<Health>,
    /// A record arrived after close: logged once.
    late_logged: AtomicBool,
    /// Budget checks are failing: warned once per outage.
    reserve_failing: AtomicBool,
    /// While checks fail, the earliest time (Unix ms) the next one may try the store: one
    /// probe per [`RESERVE_PROBE_MS`], the other calls go through unchecked at once instead of
    /// each waiting `reserve_timeout` on a store that is down.
    next_probe_ms: AtomicI64,
    clock: Clock,
}

/// While budget checks fail, how often one of them tries the store again.
const RESERVE_PROBE_MS: i64 = 1_000;

struct Health {
    state: LedgerState,
    last_error: Option<String>,
    last_write_ms: Option<i64>,
}

impl Shared {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        // A panic while holding this lock leaves plain data behind: keep using it.
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unpend(&self, n: usize) {
        self.pending.fetch_sub(n as i64, Ordering::Relaxed);
        self.metrics.ledger_pending.sub(n as i64);
    }

    fn count_dropped(&self, n: usize) {
        self.unpend(n);
        self.dropped.fetch_add(n as u64, Ordering::Relaxed);
        self.metrics.ledger_dropped.inc_by(n as u64);
    }

    fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed).max(0) as u64
    }
}

impl Ledger {
    /// Starts the background writer on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn start(store: Arc<dyn Store>, options: LedgerOptions, metrics: Metrics) -> Ledger {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done) = watch::channel(None);
        // Up until a write fails: an idle ledger is not an outage.
        metrics.ledger_up.set(1);
        let shared = Arc::new(Shared {
            kind: store.kind(),
            metrics,
            pending: AtomicI64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            spilled: AtomicU64::new(0),
            health: Mutex::new(Health {
                state: LedgerState::Starting,
                last_error: None,
                last_write_ms: None,
            }),
            late_logged: AtomicBool::new(false),
            reserve_failing: AtomicBool::new(false),
            next_probe_ms: AtomicI64::new(0),
            clock: options.clock.clone(),
        });
        let batch_size = options.batch_size.max(1);
        let worker = Worker {
            store: store.clone(),
            shared: shared.clone(),
            batch_size,
            max_pending: options.max_pending.max(1),
            flush_interval: options.flush_interval,
            write_timeout: options.write_timeout,
            retry_initial: options.retry_initial,
            retry_max: options.retry_max.max(options.retry_initial),
            spill_dir: options.spill_dir.clone(),
            rx,
            rx_done: false,
            buf: Vec::with_capacity(RECV_CHUNK),
            queue: VecDeque::new(),
            inflight: 0,
            backoff: options.retry_initial,
            retry_at: None,
            outage: None,
            drops_unlogged: 0,
            last_drop_log: None,
            closing: None,
            done: done_tx,
        };
        tokio::spawn(worker.run());
        if store.responses().is_some() {
            let mut done = done.clone();
            tokio::spawn(super::responses::purge_task(
                store.clone(),
                options.responses_purge_every,
                options.write_timeout,
                options.clock.clone(),
                // Until the ledger is closed (or its task is gone).
                async move {
                    let _ = done.wait_for(Option::is_some).await;
                },
            ));
        }
        Ledger {
            inner: Arc::new(Inner {
                tx,
                store,
                hold_ttl: options.hold_ttl,
                reserve_timeout: options.reserve_timeout,
                call_timeout: options.write_timeout,
                shared,
                done,
            }),
        }
    }

    /// Now, in Unix milliseconds, from the ledger's clock ([`LedgerOptions::clock`]).
    pub fn now_ms(&self) -> i64 {
        self.inner.shared.clock.now_ms()
    }

    /// Queues a record for writing. Never blocks, never fails: a record given after
    /// [`Ledger::close`] is counted as dropped (and logged once).
    pub fn record(&self, record: Record) {
        let shared = &self.inner.shared;
        // Counted before it is sent, so that the task never takes it off the gauge first.
        shared.pending.fetch_add(1, Ordering::Relaxed);
        shared.metrics.ledger_pending.inc();
        if let Err(mpsc::error::SendError(Msg::Record(record))) =
            self.inner.tx.send(Msg::Record(record))
        {
            shared.count_dropped(1);
            if !shared.late_logged.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    id = %record.id,
                    "ledger record given after the ledger was closed: dropped"
                );
            }
        }
    }

    /// Checks the budget limits and takes hold `hold_id` on them, for `hold_ttl`. An empty
    /// `checks` is granted without asking the store. A store that fails or does not answer
    /// within `reserve_timeout` gives [`Reservation::Unavailable`].
    pub async fn reserve(&self, checks: &[Check], hold_id: &str) -> Reservation {
        if checks.is_empty() {
            return Reservation::Granted;
        }
        let inner = &self.inner;
        let now = self.now_ms();
        let shared = &inner.shared;
        if shared.reserve_failing.load(Ordering::Relaxed) {
            // The store failed lately: only the call that wins the probe slot asks it.
            let next = shared.next_probe_ms.load(Ordering::Relaxed);
            if now < next
                || shared
                    .next_probe_ms
                    .compare_exchange(
                        next,
                        now + RESERVE_PROBE_MS,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                shared.metrics.budget_check(BudgetCheck::StoreError).inc();
                return Reservation::Unavailable(
                    "the ledger store failed the last budget check; not asked again yet".into(),
                );
            }
        }
        let expires = now.saturating_add(inner.hold_ttl.as_millis() as i64);
        let call =
            AssertUnwindSafe(inner.store.reserve(checks, hold_id, now, expires)).catch_unwind();
        let answer = match timeout(inner.reserve_timeout, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(StoreError("the ledger store panicked".into())),
            Err(_) => Err(StoreError(format!(
                "the ledger store did not answer within {} ms",
                inner.reserve_timeout.as_millis()
            ))),
        };
        let counter = |result| shared.metrics.budget_check(result).inc();
        match answer {
            Ok(answer) => {
                if shared.reserve_failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("budget checks: the ledger store answers again");
                }
                match answer {
                    None => {
                        counter(BudgetCheck::Allowed);
                        Reservation::Granted
                    }
                    Some(denial) => {
                        counter(BudgetCheck::Denied);
                        Reservation::Denied(denial)
                    }
                }
            }
            Err(StoreError(error)) => {
                counter(BudgetCheck::StoreError);
                shared
                    .next_probe_ms
                    .store(self.now_ms() + RESERVE_PROBE_MS, Ordering::Relaxed);
                if !shared.reserve_failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        "budget checks failing: calls go through unchecked until the ledger store answers"
                    );
                }
                Reservation::Unavailable(error)
            }
        }
    }

    /// A usage report from the store (bounded by `write_timeout`).
    pub async fn report(&self, since_ms: i64, by: GroupBy) -> Result<Vec<ReportRow>, StoreError> {
        let limit = self.inner.call_timeout;
        match timeout(limit, self.inner.store.report(since_ms, by)).await {
            Ok(rows) => rows,
            Err(_) => Err(StoreError(format!(
                "the ledger store did not answer within {} ms",
                limit.as_millis()
            ))),
        }
    }

    /// The ledger's health and counters.
    pub fn status(&self) -> LedgerStatus {
        let shared = &self.inner.shared;
        let health = shared.health();
        LedgerStatus {
            store: shared.kind,
            state: health.state,
            pending: shared.pending(),
            written: shared.written.load(Ordering::Relaxed),
            dropped: shared.dropped.load(Ordering::Relaxed),
            write_errors: shared.write_errors.load(Ordering::Relaxed),
            last_error: health.last_error.clone(),
            last_write_ms: health.last_write_ms,
            spilled: shared.spilled.load(Ordering::Relaxed),
        }
    }

    /// The store behind the ledger.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The stored Responses in the ledger's database (`None` when its store keeps none), each
    /// operation bounded by `write_timeout` and reading "now" from the ledger's clock.
    pub fn responses(&self) -> Option<Responses<'_>> {
        let inner = &self.inner;
        let store = inner.store.responses()?;
        Some(Responses::new(
            store,
            inner.call_timeout,
            &inner.shared.clock,
        ))
    }

    /// Graceful shutdown: stops taking records, writes everything queued without waiting for
    /// batches to fill (retrying failures while `timeout` allows), then saves what is left to a
    /// spill file in `spill_dir` (or logs it as lost). Returns shortly after `timeout` at the
    /// latest. A second call waits for the end of the first one and reports the same (with
    /// `written` counted from its own call).
    pub async fn close(&self, timeout: Duration) -> CloseReport {
        let deadline = Instant::now() + timeout;
        let written_before = self.inner.shared.written.load(Ordering::Relaxed);
        // Fails when the task already closed: its report is (or will be) in `done`.
        let _ = self.inner.tx.send(Msg::Close(deadline));
        let mut done = self.inner.done.clone();
        let wait = done.wait_for(Option::is_some);
        let result = timeout_at(deadline + CLOSE_GRACE, wait).await;
        let left = self.inner.shared.pending();
        match result {
            Ok(Ok(report)) => {
                if let Some(report) = report.clone() {
                    // The task reports the total written: count from this call.
                    return CloseReport {
                        written: report.written.saturating_sub(written_before),
                        ..report
                    };
                }
            }
            Ok(Err(_)) => tracing::error!(
                left,
                "the ledger writer stopped without finishing (it panicked): records lost"
            ),
            // An earlier close with a later deadline is still running.
            Err(_) => tracing::error!(left, "the ledger did not finish closing in time"),
        }
        CloseReport {
            written: 0,
            left,
            spilled: 0,
            spill_file: None,
        }
    }
}

/// A store outage: from the first failed write to the next success.
struct Outage {
    since: Instant,
    failures: u64,
    dropped: u64,
}

struct Closing {
    deadline: Instant,
}

/// The background task: owns the queue.
struct Worker {
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    batch_size: usize,
    max_pending: usize,
    flush_interval: Duration,
    write_timeout: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    spill_dir: Option<PathBuf>,
    rx: mpsc::UnboundedReceiver<Msg>,
    /// The channel is closed and empty.
    rx_done: bool,
    buf: Vec<Msg>,
    /// Unwritten records, oldest first, with when the task took them.
    queue: VecDeque<(Instant, Record)>,
    /// Records taken off the queue for the write in progress.
    inflight: usize,
    backoff: Duration,
    /// While the store fails: when to try again.
    retry_at: Option<Instant>,
    outage: Option<Outage>,
    drops_unlogged: u64,
    last_drop_log: Option<Instant>,
    closing: Option<Closing>,
    /// The final report, `written` being the total written.
    done: watch::Sender<Option<CloseReport>>,
}

impl Worker {
    async fn run(mut self) {
        loop {
            let now = Instant::now();
            if let Some(closing) = &self.closing
                && (now >= closing.deadline || (self.rx_done && self.queue.is_empty()))
            {
                break;
            }
            let due = self.due(now);
            if due.is_some_and(|due| due <= now) {
                self.top_up();
                self.write_batch().await;
                continue;
            }
            let deadline = self.closing.as_ref().map(|c| c.deadline);
            tokio::select! {
                n = self.rx.recv_many(&mut self.buf, RECV_CHUNK), if !self.rx_done => self.take(n),
                () = sleep_until(due.unwrap_or(now)), if due.is_some() => {}
                () = sleep_until(deadline.unwrap_or(now)), if deadline.is_some() => {}
            }
        }
        self.finish();
    }

    /// When the next write should start, if there is anything to write.
    fn due(&self, now: Instant) -> Option<Instant> {
        let (first, _) = self.queue.front()?;
        let due = if let Some(retry_at) = self.retry_at {
            retry_at
        } else if self.closing.is_some() || self.queue.len() >= self.batch_size {
            now
        } else {
            *first + self.flush_interval
        };
        Some(match &self.closing {
            Some(closing) => due.min(closing.deadline),
            None => due,
        })
    }

    /// Before a write: fills the batch from the records already in the channel, so that a
    /// partial batch is written only when nothing more is waiting.
    fn top_up(&mut self) {
        if self.rx_done {
            return;
        }
        while self.queue.len() + self.buf.len() < self.batch_size {
            match self.rx.try_recv() {
                Ok(msg) => self.buf.push(msg),
                // Closed: `recv_many` notices it next.
                Err(_) => break,
            }
        }
        let n = self.buf.len();
        if n > 0 {
            self.take(n);
        }
    }

    /// Takes `n` messages from `buf` (`0`: the channel is closed and empty).
    fn take(&mut self, n: usize) {
        if n == 0 {
            self.rx_done = true;
            if self.closing.is_none() {
                // Every handle was dropped without a close: flush as a close would.
                self.start_closing(Instant::now() + self.write_timeout);
            }
            return;
        }
        let now = Instant::now();
        let mut close = None;
        for msg in self.buf.drain(..) {
            match msg {
                Msg::Record(record) => self.queue.push_back((now, record)),
                Msg::Close(deadline) => {
                    close = Some(close.map_or(deadline, |d: Instant| d.min(deadline)));
                }
            }
        }
        self.enforce_max_pending();
        if let Some(deadline) = close {
            self.start_closing(deadline);
        }
    }

    fn start_closing(&mut self, deadline: Instant) {
        match &mut self.closing {
            Some(closing) => closing.deadline = closing.deadline.min(deadline),
            None => {
                self.closing = Some(Closing { deadline });
                // No record is taken after this; those already sent are still received.
                self.rx.close();
                // Shutdown windows are short: retry a failing store at once.
                self.retry_at = None;
                self.backoff = self.retry_initial;
            }
        }
    }

    /// Drops the oldest queued records past `max_pending` (the write in progress is kept).
    fn enforce_max_pending(&mut self) {
        let total = self.queue.len() + self.inflight;
        if total <= self.max_pending {
            return;
        }
        let excess = (total - self.max_pending).min(self.queue.len());
        if excess == 0 {
            return;
        }
        self.queue.drain(..excess);
        self.shared.count_dropped(excess);
        if let Some(outage) = &mut self.outage {
            outage.dropped += excess as u64;
        }
        self.drops_unlogged += excess as u64;
        let now = Instant::now();
        if self
            .last_drop_log
            .is_none_or(|at| now.duration_since(at) >= DROP_LOG_INTERVAL)
        {
            tracing::warn!(
                dropped = self.drops_unlogged,
                max_pending = self.max_pending,
                "ledger queue full: the oldest records were dropped"
            );
            self.drops_unlogged = 0;
            self.last_drop_log = Some(now);
        }
    }

    /// Writes the oldest batch, taking records from the channel meanwhile.
    async fn write_batch(&mut self) {
        let n = self.batch_size.min(self.queue.len());
        let batch: Vec<Record> = self.queue.drain(..n).map(|(_, r)| r).collect();
        self.inflight = n;
        let limit = Instant::now() + self.write_timeout;
        let store = self.store.clone();
        let result = {
            let write = AssertUnwindSafe(store.write(&batch)).catch_unwind();
            tokio::pin!(write);
            loop {
                let cut = self
                    .closing
                    .as_ref()
                    .map(|c| c.deadline)
                    .filter(|d| *d < limit);
                tokio::select! {
                    biased;
                    result = &mut write => {
                        break result.unwrap_or_else(|_| {
                            Err(StoreError("the ledger store panicked while writing".into()))
                        });
                    }
                    () = sleep_until(cut.unwrap_or(limit)) => {
                        break Err(StoreError(match cut {
                            Some(_) => "the write was cut short by the shutdown deadline".into(),
                            None => format!(
                                "the write did not finish within {} ms",
                                self.write_timeout.as_millis()
                            ),
                        }));
                    }
                    n = self.rx.recv_many(&mut self.buf, RECV_CHUNK), if !self.rx_done => self.take(n),
                }
            }
        };
        self.inflight = 0;
        match result {
            Ok(()) => self.written(n),
            Err(error) => self.failed(batch, error),
        }
    }

    fn written(&mut self, n: usize) {
        let shared = &self.shared;
        shared.unpend(n);
        shared.written.fetch_add(n as u64, Ordering::Relaxed);
        shared.metrics.ledger_written.inc_by(n as u64);
        shared.metrics.ledger_up.set(1);
        {
            let mut health = shared.health();
            health.state = LedgerState::Ok;
            health.last_write_ms = Some(shared.clock.now_ms());
        }
        if let Some(outage) = self.outage.take() {
            tracing::info!(
                down_ms = outage.since.elapsed().as_millis() as u64,
                failed_writes = outage.failures,
                dropped = outage.dropped,
                pending = shared.pending(),
                "ledger store is back: writing the kept records"
            );
        }
        self.retry_at = None;
        self.backoff = self.retry_initial;
    }

    fn failed(&mut self, batch: Vec<Record>, StoreError(error): StoreError) {
        let shared = &self.shared;
        shared.write_errors.fetch_add(1, Ordering::Relaxed);
        shared.metrics.ledger_write_errors.inc();
        shared.metrics.ledger_up.set(0);
        let now = Instant::now();
        match &mut self.outage {
            Some(outage) => {
                outage.failures += 1;
                tracing::debug!(%error, failures = outage.failures, "ledger write failed again");
            }
            None => {
                tracing::warn!(
                    %error,
                    pending = shared.pending(),
                    "ledger store unavailable: records are kept and retried"
                );
                self.outage = Some(Outage {
                    since: now,
                    failures: 1,
                    dropped: 0,
                });
            }
        }
        {
            let mut health = shared.health();
            health.state = LedgerState::Unavailable;
            health.last_error = Some(error);
        }
        // Back in front, in order: the retry sends the same ids first.
        for record in batch.into_iter().rev() {
            self.queue.push_front((now, record));
        }
        self.enforce_max_pending();
        let delay = self.backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
        self.retry_at = Some(now + delay);
        self.backoff = (self.backoff * 2).min(self.retry_max);
    }

    /// After the close deadline or once everything is written: saves what is left, publishes
    /// the report.
    fn finish(mut self) {
        // Records sent before the channel was closed but not received yet.
        let now = Instant::now();
        while let Ok(msg) = self.rx.try_recv() {
            if let Msg::Record(record) = msg {
                self.queue.push_back((now, record));
            }
        }
        let written = self.shared.written.load(Ordering::Relaxed);
        let left = self.queue.len();
        let mut report = CloseReport {
            written,
            left: left as u64,
            spilled: 0,
            spill_file: None,
        };
        if left > 0 {
            let records: Vec<Record> = self.queue.drain(..).map(|(_, r)| r).collect();
            let now = self.shared.clock.now_ms();
            match self.spill_dir.as_ref().map(|dir| spill(dir, &records, now)) {
                Some(Ok(path)) => {
                    self.shared.unpend(left);
                    self.shared
                        .spilled
                        .fetch_add(left as u64, Ordering::Relaxed);
                    tracing::warn!(
                        left,
                        file = %path.display(),
                        "ledger closed with unwritten records: saved to the spill file"
                    );
                    report.spilled = left as u64;
                    report.spill_file = Some(path);
                }
                Some(Err(error)) => {
                    self.shared.count_dropped(left);
                    tracing::error!(
                        left,
                        %error,
                        "ledger closed with unwritten records and the spill file failed: records lost"
                    );
                }
                None => {
                    self.shared.count_dropped(left);
                    tracing::error!(
                        left,
                        "ledger closed with unwritten records and no spill directory: records lost"
                    );
                }
            }
        } else {
            tracing::info!(written, "ledger closed: every record written");
        }
        self.done.send_replace(Some(report));
    }
}

/// Appends `records` as JSON lines to `ledger-unsent-<unix ms>.jsonl` in `dir`.
fn spill(dir: &std::path::Path, records: &[Record], now_ms: i64) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("ledger-unsent-{now_ms}.jsonl"));
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
