//! Tests of `crate::ledger::writer`.

use super::*;
use crate::ledger::Status;
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::sync::atomic::AtomicU8;

const OK: u8 = 0;
const FAIL: u8 = 1;
const HANG: u8 = 2;
/// Commits the batch, then reports a failure (an unclear outcome).
const COMMIT_THEN_FAIL: u8 = 3;
const PANIC: u8 = 4;

/// An in-memory store with a switch for outages.
#[derive(Default)]
struct FakeStore {
    mode: AtomicU8,
    write_calls: AtomicU64,
    reserve_calls: AtomicU64,
    state: Mutex<FakeState>,
}

#[derive(Default)]
struct FakeState {
    /// Ids inserted, in order, each once (a known id is skipped, as the real store does).
    rows: Vec<String>,
    seen: HashSet<String>,
    /// Sizes of the batches that reached the store.
    batches: Vec<usize>,
    /// (now_ms, expires_ms) of each reserve call.
    reserves: Vec<(i64, i64)>,
}

impl FakeStore {
    fn new() -> Arc<FakeStore> {
        Arc::new(FakeStore::default())
    }
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
    fn rows(&self) -> Vec<String> {
        self.state.lock().unwrap().rows.clone()
    }
    fn batches(&self) -> Vec<usize> {
        self.state.lock().unwrap().batches.clone()
    }
    fn commit(&self, batch: &[Record]) {
        let mut state = self.state.lock().unwrap();
        state.batches.push(batch.len());
        for r in batch {
            if state.seen.insert(r.id.clone()) {
                state.rows.push(r.id.clone());
            }
        }
    }
}

impl Store for FakeStore {
    fn kind(&self) -> &'static str {
        "fake"
    }

    fn write<'a>(&'a self, batch: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.write_calls.fetch_add(1, Ordering::SeqCst);
            match self.mode.load(Ordering::SeqCst) {
                FAIL => Err(StoreError("connection refused".into())),
                HANG => futures_util::future::pending().await,
                PANIC => panic!("fake store panics"),
                COMMIT_THEN_FAIL => {
                    self.commit(batch);
                    Err(StoreError("connection reset after commit".into()))
                }
                _ => {
                    self.commit(batch);
                    Ok(())
                }
            }
        })
    }

    fn reserve<'a>(
        &'a self,
        checks: &'a [Check],
        _hold_id: &'a str,
        now_ms: i64,
        expires_ms: i64,
    ) -> BoxFuture<'a, Result<Option<Denial>, StoreError>> {
        Box::pin(async move {
            self.reserve_calls.fetch_add(1, Ordering::SeqCst);
            match self.mode.load(Ordering::SeqCst) {
                FAIL => return Err(StoreError("connection refused".into())),
                HANG => futures_util::future::pending().await,
                _ => {}
            }
            self.state
                .lock()
                .unwrap()
                .reserves
                .push((now_ms, expires_ms));
            Ok(checks
                .iter()
                .position(|c| c.subject == "user:broke")
                .map(|check| Denial {
                    check,
                    spent_nano: 7,
                    requests: 3,
                }))
        })
    }

    fn report(
        &self,
        _since_ms: i64,
        by: GroupBy,
    ) -> BoxFuture<'_, Result<Vec<ReportRow>, StoreError>> {
        Box::pin(async move {
            if self.mode.load(Ordering::SeqCst) == HANG {
                futures_util::future::pending::<()>().await;
            }
            Ok(vec![ReportRow {
                group: Some(format!("{by:?}")),
                requests: self.state.lock().unwrap().rows.len() as i64,
                ..ReportRow::default()
            }])
        })
    }
}

fn id(i: usize) -> String {
    format!("r{i:06}")
}

fn rec(i: usize) -> Record {
    Record {
        id: id(i),
        at_ms: 1_700_000_000_000,
        day: "2023-11-14".into(),
        request_id: format!("req-{i}"),
        user: Some("alice".into()),
        key: None,
        mapping: "m".into(),
        model: "gpt".into(),
        stream: false,
        status: Status::Ok,
        http_status: 200,
        prompt_tokens: 1,
        completion_tokens: 2,
        cached_tokens: 0,
        cost_nano: 5,
        duration_ms: 10,
        error: None,
        hold: None,
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(id).collect()
}

/// Short delays so that the tests run in real time quickly.
fn fast() -> LedgerOptions {
    LedgerOptions {
        batch_size: 100,
        flush_interval: Duration::from_millis(20),
        retry_initial: Duration::from_millis(5),
        retry_max: Duration::from_millis(20),
        write_timeout: Duration::from_millis(500),
        reserve_timeout: Duration::from_millis(100),
        clock: Clock::manual(T0),
        ..LedgerOptions::default()
    }
}

/// Where every test's manual clock starts: 2026-11-23T00:00:00Z.
const T0: i64 = 1_795_392_000_000;

fn start(store: &Arc<FakeStore>, options: LedgerOptions) -> (Ledger, Metrics) {
    let metrics = Metrics::new();
    let ledger = Ledger::start(store.clone(), options, metrics.clone());
    (ledger, metrics)
}

/// Polls `cond` until it holds; panics after `secs`.
async fn wait_until(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn budget(metrics: &Metrics, result: &str) -> u64 {
    metrics.budget_checks.with_label_values(&[result]).get()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rosetta-ledger-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn a_burst_is_written_in_full_batches_without_blocking() {
    let store = FakeStore::new();
    let options = LedgerOptions {
        batch_size: 500,
        ..fast()
    };
    let (ledger, metrics) = start(&store, options);
    let n = 50_123;
    let started = std::time::Instant::now();
    for i in 0..n {
        ledger.record(rec(i));
    }
    let queued_in = started.elapsed();
    assert!(
        queued_in < Duration::from_secs(2),
        "record blocked: {queued_in:?}"
    );
    assert_eq!(ledger.status().pending, n as u64);
    assert_eq!(metrics.ledger_pending.get(), n as i64);

    wait_until(10, "every record written", || {
        ledger.status().written == n as u64
    })
    .await;
    let batches = store.batches();
    assert_eq!(batches.len(), n.div_ceil(500), "{batches:?}");
    assert!(batches.iter().all(|&b| b <= 500));
    assert_eq!(store.rows(), ids(0..n), "written once each, in order");
    assert_eq!(metrics.ledger_written.get(), n as u64);
    assert_eq!(metrics.ledger_pending.get(), 0);
    assert_eq!(metrics.ledger_up.get(), 1);
}

#[tokio::test]
async fn a_single_record_is_written_after_about_the_flush_interval() {
    let store = FakeStore::new();
    let (ledger, _) = start(
        &store,
        LedgerOptions {
            flush_interval: Duration::from_millis(50),
            ..fast()
        },
    );
    let started = Instant::now();
    ledger.record(rec(1));
    wait_until(5, "the record written", || ledger.status().written == 1).await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(45),
        "written before the interval: {took:?}"
    );
    assert!(took < Duration::from_millis(300), "written late: {took:?}");
    assert_eq!(store.batches(), vec![1]);

    // Records spread over less than the interval share one batch.
    ledger.record(rec(2));
    tokio::time::sleep(Duration::from_millis(10)).await;
    ledger.record(rec(3));
    wait_until(5, "both written", || ledger.status().written == 3).await;
    assert_eq!(store.batches(), vec![1, 2]);
}

#[tokio::test]
async fn an_outage_keeps_every_record_and_writes_each_once_after_recovery() {
    let store = FakeStore::new();
    let (ledger, metrics) = start(
        &store,
        LedgerOptions {
            batch_size: 50,
            ..fast()
        },
    );
    for i in 0..120 {
        ledger.record(rec(i));
    }
    wait_until(5, "the first writes", || ledger.status().written == 120).await;
    assert_eq!(ledger.status().state, LedgerState::Ok);

    // The store goes down, first with an unclear failure (committed, then an error): the
    // retried batch carries the same ids and the store skips them.
    store.set(COMMIT_THEN_FAIL);
    ledger.record(rec(120));
    wait_until(5, "an unclear failure", || {
        ledger.status().write_errors >= 1
    })
    .await;
    store.set(FAIL);
    let mut longest = Duration::ZERO;
    for i in 121..1_000 {
        let t = std::time::Instant::now();
        ledger.record(rec(i));
        longest = longest.max(t.elapsed());
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(
        longest < Duration::from_millis(50),
        "record blocked: {longest:?}"
    );
    wait_until(5, "retries", || ledger.status().write_errors >= 5).await;
    let status = ledger.status();
    assert_eq!(status.state, LedgerState::Unavailable);
    assert_eq!(status.last_error.as_deref(), Some("connection refused"));
    assert_eq!(status.written, 120);
    assert_eq!(status.pending, 880);
    assert_eq!(metrics.ledger_up.get(), 0);
    assert_eq!(metrics.ledger_pending.get(), 880);
    assert_eq!(metrics.ledger_write_errors.get(), status.write_errors);

    store.set(OK);
    wait_until(5, "recovery", || ledger.status().written == 1_000).await;
    let status = ledger.status();
    assert_eq!(status.state, LedgerState::Ok);
    assert_eq!(status.pending, 0);
    assert_eq!(status.dropped, 0);
    assert_eq!(metrics.ledger_up.get(), 1);
    assert_eq!(metrics.ledger_pending.get(), 0);
    assert_eq!(metrics.ledger_written.get(), 1_000);
    assert_eq!(store.rows(), ids(0..1_000), "every id once, in order");
    assert!(store.batches().iter().all(|&b| b <= 50));
}

#[tokio::test]
async fn a_hung_write_times_out_and_is_retried() {
    let store = FakeStore::new();
    store.set(HANG);
    let (ledger, _) = start(
        &store,
        LedgerOptions {
            write_timeout: Duration::from_millis(30),
            ..fast()
        },
    );
    ledger.record(rec(0));
    wait_until(5, "a timed-out write", || ledger.status().write_errors >= 1).await;
    let status = ledger.status();
    assert_eq!(status.state, LedgerState::Unavailable);
    assert!(
        status
            .last_error
            .unwrap()
            .contains("did not finish within 30 ms")
    );
    // Records keep arriving while a write hangs.
    ledger.record(rec(1));
    store.set(OK);
    wait_until(5, "recovery", || ledger.status().written == 2).await;
    assert_eq!(store.rows(), ids(0..2));
}

#[tokio::test]
async fn a_panicking_store_is_a_write_error() {
    let store = FakeStore::new();
    store.set(PANIC);
    let (ledger, _) = start(&store, fast());
    ledger.record(rec(0));
    wait_until(5, "a failed write", || ledger.status().write_errors >= 1).await;
    assert!(ledger.status().last_error.unwrap().contains("panicked"));
    store.set(OK);
    wait_until(5, "recovery", || ledger.status().written == 1).await;
}

#[tokio::test]
async fn the_oldest_records_are_dropped_past_max_pending() {
    let store = FakeStore::new();
    store.set(FAIL);
    let (ledger, metrics) = start(
        &store,
        LedgerOptions {
            batch_size: 10,
            max_pending: 100,
            ..fast()
        },
    );
    for i in 0..250 {
        ledger.record(rec(i));
    }
    wait_until(5, "the drops", || ledger.status().dropped == 150).await;
    wait_until(5, "a failed write", || ledger.status().write_errors >= 1).await;
    let status = ledger.status();
    assert_eq!(status.pending, 100);
    assert_eq!(metrics.ledger_dropped.get(), 150);
    assert_eq!(metrics.ledger_pending.get(), 100);

    store.set(OK);
    wait_until(5, "recovery", || ledger.status().written == 100).await;
    assert_eq!(store.rows(), ids(150..250), "the newest records are kept");
    let status = ledger.status();
    assert_eq!((status.pending, status.dropped), (0, 150));
}

#[tokio::test]
async fn reserve_with_a_hung_store_is_unavailable_within_the_timeout() {
    let store = FakeStore::new();
    store.set(HANG);
    let options = fast();
    let clock = options.clock.clone();
    let (ledger, metrics) = start(&store, options);
    let checks = [check("user:alice")];
    let started = Instant::now();
    let answer = ledger.reserve(&checks, "h1").await;
    let took = started.elapsed();
    assert!(
        matches!(&answer, Reservation::Unavailable(e) if e.contains("100 ms")),
        "{answer:?}"
    );
    assert!(
        took >= Duration::from_millis(95) && took < Duration::from_millis(400),
        "{took:?}"
    );
    assert_eq!(budget(&metrics, "store_error"), 1);

    // Within the probe interval the store is not asked again: no second wait.
    let started = Instant::now();
    let answer = ledger.reserve(&checks, "h2").await;
    assert!(
        matches!(&answer, Reservation::Unavailable(e) if e.contains("not asked again")),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(50));
    assert_eq!(store.reserve_calls.load(Ordering::SeqCst), 1);
    assert_eq!(budget(&metrics, "store_error"), 2);
    // Past it, one call probes the store: still failing, then answering again.
    store.set(FAIL);
    clock.advance(RESERVE_PROBE_MS);
    let answer = ledger.reserve(&checks, "h3").await;
    assert_eq!(
        answer,
        Reservation::Unavailable("connection refused".into())
    );
    store.set(OK);
    clock.advance(RESERVE_PROBE_MS);
    assert_eq!(ledger.reserve(&checks, "h4").await, Reservation::Granted);
    assert_eq!(ledger.reserve(&checks, "h5").await, Reservation::Granted);
    assert_eq!(budget(&metrics, "store_error"), 3);
    assert_eq!(budget(&metrics, "allowed"), 2);
}

fn check(subject: &str) -> Check {
    Check {
        subject: subject.into(),
        period: "day:2026-01-01".into(),
        max_cost_nano: Some(10),
        max_requests: None,
        hold_cost_nano: 1,
        resets_at_ms: 0,
    }
}

#[tokio::test]
async fn reserve_maps_granted_and_denied_and_counts_them() {
    let store = FakeStore::new();
    let (ledger, metrics) = start(
        &store,
        LedgerOptions {
            hold_ttl: Duration::from_secs(60),
            ..fast()
        },
    );

    assert_eq!(ledger.reserve(&[], "h0").await, Reservation::Granted);
    assert_eq!(
        store.reserve_calls.load(Ordering::SeqCst),
        0,
        "no checks: no store"
    );

    let answer = ledger
        .reserve(&[check("user:alice"), check("key:k")], "h1")
        .await;
    assert_eq!(answer, Reservation::Granted);
    let (now, expires) = store.state.lock().unwrap().reserves[0];
    assert_eq!(now, T0, "the ledger's clock, not the system's");
    assert_eq!(expires - now, 60_000);

    let answer = ledger
        .reserve(&[check("user:alice"), check("user:broke")], "h2")
        .await;
    assert_eq!(
        answer,
        Reservation::Denied(Denial {
            check: 1,
            spent_nano: 7,
            requests: 3
        })
    );
    assert_eq!(budget(&metrics, "allowed"), 1);
    assert_eq!(budget(&metrics, "denied"), 1);
    assert_eq!(budget(&metrics, "store_error"), 0);
}

#[tokio::test]
async fn report_passes_through_and_is_bounded() {
    let store = FakeStore::new();
    let (ledger, _) = start(
        &store,
        LedgerOptions {
            write_timeout: Duration::from_millis(50),
            ..fast()
        },
    );
    let rows = ledger.report(0, GroupBy::User).await.unwrap();
    assert_eq!(rows[0].group.as_deref(), Some("User"));
    store.set(HANG);
    let err = ledger.report(0, GroupBy::Day).await.unwrap_err();
    assert!(err.0.contains("50 ms"), "{err}");
}

#[tokio::test]
async fn close_writes_everything_queued_without_the_batching_delay() {
    let store = FakeStore::new();
    let (ledger, metrics) = start(
        &store,
        LedgerOptions {
            batch_size: 100,
            flush_interval: Duration::from_secs(30),
            ..fast()
        },
    );
    for i in 0..1_234 {
        ledger.record(rec(i));
    }
    let started = Instant::now();
    let report = ledger.close(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        report,
        CloseReport {
            written: 1_234,
            left: 0,
            spilled: 0,
            spill_file: None
        }
    );
    assert_eq!(store.rows(), ids(0..1_234));
    assert_eq!(metrics.ledger_pending.get(), 0);

    // After close: a record is counted as dropped, a second close returns the same report.
    ledger.record(rec(9_999));
    let status = ledger.status();
    assert_eq!((status.pending, status.dropped), (0, 1));
    let again = ledger.close(Duration::from_secs(1)).await;
    assert_eq!(
        again,
        CloseReport {
            written: 0,
            ..report
        }
    );
}

#[tokio::test]
async fn close_retries_a_failing_store_until_it_recovers() {
    let store = FakeStore::new();
    store.set(FAIL);
    let (ledger, _) = start(&store, fast());
    for i in 0..10 {
        ledger.record(rec(i));
    }
    wait_until(5, "a failed write", || ledger.status().write_errors >= 1).await;
    let closing = tokio::spawn({
        let ledger = ledger.clone();
        async move { ledger.close(Duration::from_secs(5)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    store.set(OK);
    let report = closing.await.unwrap();
    assert_eq!((report.written, report.left), (10, 0));
    assert_eq!(store.rows(), ids(0..10));
}

#[tokio::test]
async fn close_with_a_dead_store_spills_every_unwritten_record_in_time() {
    let store = FakeStore::new();
    store.set(HANG);
    let dir = temp_dir("spill");
    let (ledger, metrics) = start(
        &store,
        LedgerOptions {
            batch_size: 50,
            write_timeout: Duration::from_secs(10),
            spill_dir: Some(dir.clone()),
            ..fast()
        },
    );
    for i in 0..321 {
        ledger.record(rec(i));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = Instant::now();
    let report = ledger.close(Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(800), "close took {took:?}");
    assert_eq!((report.written, report.left, report.spilled), (0, 321, 321));
    let file = report.spill_file.clone().unwrap();
    assert!(file.starts_with(&dir));
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with("ledger-unsent-") && name.ends_with(".jsonl"),
        "{name}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let spilled: Vec<String> = text
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["status"], "ok");
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(spilled, ids(0..321), "every record, in order");
    let status = ledger.status();
    assert_eq!(
        (status.pending, status.spilled, status.dropped),
        (0, 321, 0)
    );
    assert_eq!(metrics.ledger_pending.get(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn close_without_a_spill_dir_counts_the_lost_records() {
    let store = FakeStore::new();
    store.set(FAIL);
    let (ledger, metrics) = start(&store, fast());
    for i in 0..7 {
        ledger.record(rec(i));
    }
    let report = ledger.close(Duration::from_millis(100)).await;
    assert_eq!((report.written, report.left, report.spilled), (0, 7, 0));
    assert_eq!(report.spill_file, None);
    assert_eq!(ledger.status().dropped, 7);
    assert_eq!(metrics.ledger_dropped.get(), 7);
    assert_eq!(metrics.ledger_pending.get(), 0);
}

#[tokio::test]
async fn dropping_every_handle_flushes_the_queue() {
    let store = FakeStore::new();
    let (ledger, _) = start(
        &store,
        LedgerOptions {
            flush_interval: Duration::from_secs(30),
            ..fast()
        },
    );
    for i in 0..5 {
        ledger.record(rec(i));
    }
    drop(ledger);
    wait_until(5, "the flush", || store.rows().len() == 5).await;
}

#[tokio::test]
async fn status_serializes_to_the_documented_shape() {
    let store = FakeStore::new();
    let (ledger, metrics) = start(&store, fast());
    assert_eq!(metrics.ledger_up.get(), 1, "idle is not down");
    let json = serde_json::to_value(ledger.status()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "store": "fake",
            "state": "starting",
            "pending": 0,
            "written": 0,
            "dropped": 0,
            "write_errors": 0,
            "last_error": null,
            "last_write_ms": null,
            "spilled": 0
        })
    );
    ledger.record(rec(0));
    wait_until(5, "a write", || ledger.status().written == 1).await;
    let json = serde_json::to_value(ledger.status()).unwrap();
    assert_eq!(json["state"], "ok");
    assert!(json["last_write_ms"].as_i64().unwrap() > 1_700_000_000_000);

    store.set(FAIL);
    ledger.record(rec(1));
    wait_until(5, "a failure", || ledger.status().write_errors >= 1).await;
    let json = serde_json::to_value(ledger.status()).unwrap();
    assert_eq!(json["state"], "unavailable");
    assert_eq!(json["last_error"], "connection refused");
    assert_eq!(json["pending"], 1);
}
