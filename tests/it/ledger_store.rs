//! The ledger's `SqlStore` on a real SQLite file and on a real PostgreSQL server: every test
//! body runs on both (`ledger_store::NAME::sqlite` and `ledger_store::NAME::postgres`).
//!
//! PostgreSQL: `eval "$(scripts/pg start)"` starts a throwaway server on loopback and exports
//! ROSETTA_TEST_POSTGRES_URL; each test creates a database of its own there (so tests run in
//! parallel) and drops it when it passes. Without the variable the PostgreSQL variants print
//! "skipped: ROSETTA_TEST_POSTGRES_URL not set" and pass, unless ROSETTA_REQUIRE_POSTGRES=1,
//! where they fail.

use std::sync::Arc;
use std::time::Duration;

use rosetta::ledger::store::{HOLD_GRACE_MS, SqlStore};
use rosetta::ledger::{Check, Denial, GroupBy, Record, ReportRow, Status, Store};
use rosetta::mapping::pricing::NANO;
use rosetta::ops::clock::Clock;
use sqlx::{Connection, Row};

use super::db::{Db, T0, connect, on_both};

on_both!(
    migrations,
    write_skips_duplicates,
    settle,
    requests_limit_concurrent,
    cost_limit_concurrent,
    expired_holds_and_denials,
    holds_are_purged_by_the_stores_clock,
    report_groups,
    unreachable_then_up,
);

fn record(id: &str, status: Status, cost_nano: i64, hold: Option<&str>) -> Record {
    Record {
        id: id.to_string(),
        at_ms: T0 + 1_000,
        day: "2026-11-23".to_string(),
        request_id: format!("req-{id}"),
        user: Some("ann".to_string()),
        key: Some("team".to_string()),
        mapping: "anthropic".to_string(),
        model: "claude".to_string(),
        stream: true,
        status,
        http_status: if status == Status::UpstreamError {
            502
        } else {
            200
        },
        prompt_tokens: 10,
        completion_tokens: 20,
        cached_tokens: 3,
        cost_nano,
        duration_ms: 1234,
        error: (status == Status::UpstreamError).then(|| "upstream said no".to_string()),
        hold: hold.map(str::to_string),
    }
}

fn check(subject: &str, cost: Option<i64>, requests: Option<i64>, hold_cost: i64) -> Check {
    Check {
        subject: subject.to_string(),
        period: "day:2026-11-23".to_string(),
        max_cost_nano: cost,
        max_requests: requests,
        hold_cost_nano: hold_cost,
        resets_at_ms: T0 + 86_400_000,
    }
}

/// A fresh database is migrated on first use (file and directory created, WAL on SQLite); a
/// second store on the same database finds the migrations applied and applies nothing twice.
async fn migrations(db: &Db) {
    let store = db.store();
    assert_eq!(store.report(0, GroupBy::User).await.unwrap(), vec![]);
    let versions = "SELECT CAST(COUNT(*) AS BIGINT) FROM _sqlx_migrations WHERE version = 1";
    assert_eq!(db.scalar(versions).await, 1);
    for table in ["ledger", "budget_usage", "budget_holds", "responses"] {
        assert_eq!(db.scalar(&format!("SELECT COUNT(*) FROM {table}")).await, 0);
    }
    if !db.is_postgres() {
        let path = db.url.trim_start_matches("sqlite://");
        assert!(std::path::Path::new(path).is_file(), "{path}");
        let mut conn = connect(&db.url).await;
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(mode, "wal");
        conn.close().await.ok();
    }
    store
        .write(&[record("r1", Status::Ok, 5, None)])
        .await
        .unwrap();
    drop(store);

    let again = db.store();
    again
        .write(&[record("r2", Status::Ok, 7, None)])
        .await
        .unwrap();
    let rows = again.report(0, GroupBy::User).await.unwrap();
    assert_eq!((rows[0].requests, rows[0].cost_nano), (2, 12));
    // Each version once (0001 schema, 0002 indexes, 0003 responses), however many times the
    // store opened.
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await, 3);
}

/// Every field is stored; a record whose id is already there (in the same batch or a retried
/// one) is skipped.
async fn write_skips_duplicates(db: &Db) {
    let store = db.store();
    let a = record("a", Status::UpstreamError, 0, Some("h-a"));
    let b = Record {
        user: None,
        key: None,
        stream: false,
        error: None,
        hold: None,
        ..record("b", Status::Ok, 42, None)
    };
    store
        .write(&[a.clone(), b.clone(), a.clone()])
        .await
        .unwrap();
    store
        .write(&[a.clone(), record("c", Status::ClientAbort, 0, None)])
        .await
        .unwrap();
    store.write(&[]).await.unwrap();
    assert_eq!(db.scalar("SELECT COUNT(*) FROM ledger").await, 3);

    let mut conn = connect(&db.url).await;
    let row = sqlx::query(
        "SELECT id, at_ms, day, request_id, user_id, key_name, mapping, model, \
         CASE WHEN stream THEN 1 ELSE 0 END, status, http_status, prompt_tokens, \
         completion_tokens, cached_tokens, cost_nano, duration_ms, error, hold_id \
         FROM ledger WHERE id = $1",
    )
    .bind("a")
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let stored = Record {
        id: row.try_get(0).unwrap(),
        at_ms: row.try_get(1).unwrap(),
        day: row.try_get(2).unwrap(),
        request_id: row.try_get(3).unwrap(),
        user: row.try_get(4).unwrap(),
        key: row.try_get(5).unwrap(),
        mapping: row.try_get(6).unwrap(),
        model: row.try_get(7).unwrap(),
        stream: row.try_get::<i32, _>(8).unwrap() == 1,
        status: Status::parse(&row.try_get::<String, _>(9).unwrap()).unwrap(),
        http_status: row.try_get::<i32, _>(10).unwrap() as u16,
        prompt_tokens: row.try_get(11).unwrap(),
        completion_tokens: row.try_get(12).unwrap(),
        cached_tokens: row.try_get(13).unwrap(),
        cost_nano: row.try_get(14).unwrap(),
        duration_ms: row.try_get(15).unwrap(),
        error: row.try_get(16).unwrap(),
        hold: row.try_get(17).unwrap(),
    };
    assert_eq!(stored, a);
    let nulls = sqlx::query("SELECT user_id, key_name, error, hold_id FROM ledger WHERE id = $1")
        .bind("b")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    for i in 0..4 {
        assert_eq!(nulls.try_get::<Option<String>, _>(i).unwrap(), None);
    }
    conn.close().await.ok();
}

/// A charged record adds its cost and one request to each (subject, period) its hold covered
/// and removes the hold; a failed or aborted one only removes it; a retried batch charges once.
async fn settle(db: &Db) {
    let store = db.store();
    let checks = [
        check("user:ann", Some(10 * NANO), Some(100), 1_000),
        Check {
            period: "month:2026-11".to_string(),
            ..check("key:team", None, None, 1_000)
        },
    ];
    assert_eq!(
        store.reserve(&checks, "h1", T0, T0 + 60_000).await.unwrap(),
        None
    );
    assert_eq!(db.holds("h1").await, 2);
    let ok = record("ok", Status::Ok, 5_000, Some("h1"));
    store.write(std::slice::from_ref(&ok)).await.unwrap();
    assert_eq!(db.holds("h1").await, 0);
    let ann = || store.budget_usage("user:ann", "day:2026-11-23");
    let team = || store.budget_usage("key:team", "month:2026-11");
    assert_eq!(ann().await.unwrap(), (5_000, 1));
    assert_eq!(team().await.unwrap(), (5_000, 1));
    assert_eq!(
        store
            .budget_usage("user:bob", "day:2026-11-23")
            .await
            .unwrap(),
        (0, 0)
    );

    for (i, status) in [Status::UpstreamError, Status::ClientAbort]
        .into_iter()
        .enumerate()
    {
        let hold = format!("h-fail-{i}");
        assert_eq!(
            store
                .reserve(&checks, &hold, T0, T0 + 60_000)
                .await
                .unwrap(),
            None
        );
        assert_eq!(db.holds(&hold).await, 2);
        store
            .write(&[record(&format!("fail-{i}"), status, 0, Some(&hold))])
            .await
            .unwrap();
        assert_eq!(db.holds(&hold).await, 0, "{status:?}");
        assert_eq!(ann().await.unwrap(), (5_000, 1), "{status:?}");
        assert_eq!(team().await.unwrap(), (5_000, 1), "{status:?}");
    }
    // A retried batch (the record is already there) does not charge twice; a record whose hold
    // is gone (expired and purged) charges nothing and is still written.
    store
        .write(&[ok, record("late", Status::Ok, 9_000, Some("purged"))])
        .await
        .unwrap();
    assert_eq!(ann().await.unwrap(), (5_000, 1));
    assert_eq!(db.scalar("SELECT COUNT(*) FROM ledger").await, 4);
    // The next reserve sees the settled spending.
    let denied = store
        .reserve(
            &[check("user:ann", Some(5_500), None, 1_000)],
            "h2",
            T0,
            T0 + 60_000,
        )
        .await
        .unwrap();
    assert_eq!(
        denied,
        Some(Denial {
            check: 0,
            spent_nano: 5_000,
            requests: 1
        })
    );
}

/// Two replicas (two stores on one database) and many tasks: exactly `max_requests` holds are
/// granted; a settled failure frees its place, a settled success keeps it.
async fn requests_limit_concurrent(db: &Db) {
    let replicas = [Arc::new(db.store()), Arc::new(db.store())];
    let checks = Arc::new([check("user:ann", None, Some(10), 0)]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = replicas[i % 2].clone();
        let checks = checks.clone();
        tasks.push(tokio::spawn(async move {
            let hold = format!("h{i}");
            let denial = store
                .reserve(&checks[..], &hold, T0, T0 + 60_000)
                .await
                .unwrap();
            (hold, denial)
        }));
    }
    let mut granted = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (hold, None) => granted.push(hold),
            (_, Some(denial)) => assert_eq!(
                denial,
                Denial {
                    check: 0,
                    spent_nano: 0,
                    requests: 10
                }
            ),
        }
    }
    assert_eq!(granted.len(), 10, "granted: {granted:?}");

    let store = &replicas[0];
    let one_more = || store.reserve(&checks[..], "late", T0 + 1, T0 + 60_000);
    store
        .write(&[record("ok", Status::Ok, 0, Some(&granted[0]))])
        .await
        .unwrap();
    assert!(
        one_more().await.unwrap().is_some(),
        "a success keeps its place"
    );
    store
        .write(&[record(
            "failed",
            Status::UpstreamError,
            0,
            Some(&granted[1]),
        )])
        .await
        .unwrap();
    assert_eq!(one_more().await.unwrap(), None, "a failure frees its place");
    assert!(
        replicas[1]
            .reserve(&checks[..], "later", T0 + 2, T0 + 60_000)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store
            .budget_usage("user:ann", "day:2026-11-23")
            .await
            .unwrap(),
        (0, 1)
    );
}

/// A cost limit with a per-request hold: exactly limit / hold calls fit, from two replicas. With
/// no hold cost, a call fits while the spending is under the limit.
async fn cost_limit_concurrent(db: &Db) {
    let replicas = [Arc::new(db.store()), Arc::new(db.store())];
    let checks = Arc::new([check("user:ann", Some(1_000), None, 100)]);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let store = replicas[i % 2].clone();
            let checks = checks.clone();
            tokio::spawn(async move {
                store
                    .reserve(&checks[..], &format!("h{i}"), T0, T0 + 60_000)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut granted = 0;
    for task in tasks {
        match task.await.unwrap() {
            None => granted += 1,
            Some(denial) => assert_eq!(
                denial,
                Denial {
                    check: 0,
                    spent_nano: 1_000,
                    requests: 10
                }
            ),
        }
    }
    assert_eq!(granted, 10);

    let store = &replicas[0];
    let free = [check("user:zero", Some(1_000), None, 0)];
    assert_eq!(
        store.reserve(&free, "z1", T0, T0 + 60_000).await.unwrap(),
        None
    );
    store
        .write(&[record("z1", Status::Ok, 999, Some("z1"))])
        .await
        .unwrap();
    assert_eq!(
        store.reserve(&free, "z2", T0, T0 + 60_000).await.unwrap(),
        None,
        "999 < 1000"
    );
    store
        .write(&[record("z2", Status::Ok, 1, Some("z2"))])
        .await
        .unwrap();
    assert_eq!(
        store.reserve(&free, "z3", T0, T0 + 60_000).await.unwrap(),
        Some(Denial {
            check: 0,
            spent_nano: 1_000,
            requests: 2
        })
    );
    assert_eq!(
        store
            .budget_usage("user:zero", "day:2026-11-23")
            .await
            .unwrap(),
        (1_000, 2)
    );
}

/// A hold counts until it expires; a denial names the first check that did not fit and takes no
/// hold anywhere; expired holds are purged.
async fn expired_holds_and_denials(db: &Db) {
    let store = db.store();
    let one = [check("user:ann", None, Some(1), 0)];
    assert_eq!(
        store.reserve(&one, "h1", T0, T0 + 1_000).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .reserve(&one, "h2", T0 + 999, T0 + 2_000)
            .await
            .unwrap(),
        Some(Denial {
            check: 0,
            spent_nano: 0,
            requests: 1
        })
    );
    assert_eq!(
        store
            .reserve(&one, "h3", T0 + 1_000, T0 + 5_000)
            .await
            .unwrap(),
        None,
        "h1 expired"
    );
    // Retried with the same hold id: its own hold is not counted, and not taken twice.
    assert_eq!(
        store
            .reserve(&one, "h3", T0 + 1_001, T0 + 5_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(db.holds("h3").await, 1);

    let checks = [
        check("user:bob", Some(10 * NANO), Some(100), 50),
        check("key:team", Some(120), None, 50),
        check("key:other", None, Some(0), 50),
    ];
    assert_eq!(
        store
            .reserve(&checks[..2], "b1", T0, T0 + 60_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .reserve(&checks[..2], "b2", T0, T0 + 60_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .reserve(&checks[..2], "b3", T0, T0 + 60_000)
            .await
            .unwrap(),
        Some(Denial {
            check: 1,
            spent_nano: 100,
            requests: 2
        })
    );
    assert_eq!(
        store.reserve(&checks, "b4", T0, T0 + 60_000).await.unwrap(),
        Some(Denial {
            check: 1,
            spent_nano: 100,
            requests: 2
        })
    );
    assert_eq!(
        store
            .reserve(
                &[checks[0].clone(), checks[2].clone()],
                "b5",
                T0,
                T0 + 60_000
            )
            .await
            .unwrap(),
        Some(Denial {
            check: 1,
            spent_nano: 0,
            requests: 0
        })
    );
    for hold in ["h2", "b3", "b4", "b5"] {
        assert_eq!(db.holds(hold).await, 0, "{hold}: a denial holds nothing");
    }
    assert_eq!(store.reserve(&[], "none", T0, T0).await.unwrap(), None);

    assert_eq!(store.purge_holds(T0 + 1_001).await.unwrap(), 1);
    assert_eq!(db.holds("h1").await, 0);
    assert_eq!(db.holds("h3").await, 1);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM budget_holds").await, 5);
}

/// `write` purges holds expired for longer than the grace by the store's own clock, never the
/// system's: at T0 a hold that expired a minute later is kept, a day and an hour on it is gone.
async fn holds_are_purged_by_the_stores_clock(db: &Db) {
    let clock = Clock::manual(T0);
    let store = db.store_at(clock.clone());
    let one = [check("user:ann", None, Some(5), 0)];
    assert_eq!(
        store.reserve(&one, "h1", T0, T0 + 60_000).await.unwrap(),
        None
    );
    store
        .write(&[record("r1", Status::Ok, 0, None)])
        .await
        .unwrap();
    assert_eq!(db.holds("h1").await, 1, "not expired for the grace yet");
    clock.set(T0 + 60_000 + HOLD_GRACE_MS + 3_600_000);
    store
        .write(&[record("r2", Status::Ok, 0, None)])
        .await
        .unwrap();
    assert_eq!(db.holds("h1").await, 0, "purged by the store's clock");
}

/// Reports: one row per group value (no user or key: `None`), the largest cost first, sums of
/// requests per outcome, tokens and cost; budget-refused calls count as requests only; records
/// before `since` are left out.
async fn report_groups(db: &Db) {
    let store = db.store();
    let day2 = T0 + 86_400_000;
    let mut records = Vec::new();
    let mut n = 0;
    let mut add = |user: Option<&str>,
                   key: Option<&str>,
                   model: &str,
                   mapping: &str,
                   at: i64,
                   status: Status,
                   cost: i64| {
        n += 1;
        records.push(Record {
            user: user.map(str::to_string),
            key: key.map(str::to_string),
            model: model.to_string(),
            mapping: mapping.to_string(),
            at_ms: at,
            day: rosetta::ledger::day_of(at),
            prompt_tokens: n,
            completion_tokens: 10 * n,
            cached_tokens: 100 * n,
            ..record(&format!("r{n}"), status, cost, None)
        });
    };
    add(
        Some("ann"),
        Some("k1"),
        "m1",
        "anthropic",
        T0,
        Status::Ok,
        300,
    );
    add(
        Some("ann"),
        Some("k1"),
        "m2",
        "anthropic",
        day2,
        Status::Ok,
        200,
    );
    add(
        Some("ann"),
        None,
        "m1",
        "gemini",
        day2,
        Status::UpstreamError,
        0,
    );
    add(
        Some("bob"),
        Some("k2"),
        "m2",
        "gemini",
        T0,
        Status::Ok,
        1_000,
    );
    add(
        Some("bob"),
        Some("k2"),
        "m2",
        "gemini",
        day2,
        Status::ClientAbort,
        0,
    );
    add(
        Some("bob"),
        None,
        "m1",
        "gemini",
        day2,
        Status::BudgetExceeded,
        0,
    );
    add(None, None, "m1", "anthropic", T0, Status::Ok, 50);
    add(None, Some("k1"), "m3", "anthropic", day2, Status::Ok, 50);
    // Before the report's start.
    add(
        Some("old"),
        Some("k9"),
        "m9",
        "old",
        T0 - 1,
        Status::Ok,
        1_000_000,
    );
    store.write(&records[..4]).await.unwrap();
    store.write(&records[4..]).await.unwrap();

    let row = |group: Option<&str>, r: [i64; 8]| ReportRow {
        group: group.map(str::to_string),
        requests: r[0],
        succeeded: r[1],
        failed: r[2],
        aborted: r[3],
        prompt_tokens: r[4],
        completion_tokens: r[5],
        cached_tokens: r[6],
        cost_nano: r[7],
    };
    assert_eq!(
        store.report(T0, GroupBy::User).await.unwrap(),
        vec![
            // bob: r4 ok, r5 aborted, r6 refused (requests only).
            row(Some("bob"), [3, 1, 0, 1, 9, 90, 900, 1_000]),
            row(Some("ann"), [3, 2, 1, 0, 6, 60, 600, 500]),
            row(None, [2, 2, 0, 0, 15, 150, 1_500, 100]),
        ]
    );
    assert_eq!(
        store.report(T0, GroupBy::Key).await.unwrap(),
        vec![
            row(Some("k2"), [2, 1, 0, 1, 9, 90, 900, 1_000]),
            row(Some("k1"), [3, 3, 0, 0, 11, 110, 1_100, 550]),
            row(None, [3, 1, 1, 0, 10, 100, 1_000, 50]),
        ]
    );
    assert_eq!(
        store.report(T0, GroupBy::Model).await.unwrap(),
        vec![
            row(Some("m2"), [3, 2, 0, 1, 11, 110, 1_100, 1_200]),
            row(Some("m1"), [4, 2, 1, 0, 11, 110, 1_100, 350]),
            row(Some("m3"), [1, 1, 0, 0, 8, 80, 800, 50]),
        ]
    );
    assert_eq!(
        store.report(T0, GroupBy::Mapping).await.unwrap(),
        vec![
            row(Some("gemini"), [4, 1, 1, 1, 12, 120, 1_200, 1_000]),
            row(Some("anthropic"), [4, 4, 0, 0, 18, 180, 1_800, 600]),
        ]
    );
    assert_eq!(
        store.report(T0, GroupBy::Day).await.unwrap(),
        vec![
            row(Some("2026-11-23"), [3, 3, 0, 0, 12, 120, 1_200, 1_350]),
            row(Some("2026-11-24"), [5, 2, 1, 1, 18, 180, 1_800, 250]),
        ]
    );
    // Equal costs are ordered by group, no group last.
    let keys = store.report(day2, GroupBy::Key).await.unwrap();
    let groups: Vec<_> = keys
        .iter()
        .map(|r| (r.group.as_deref(), r.cost_nano))
        .collect();
    assert_eq!(groups, [(Some("k1"), 250), (Some("k2"), 0), (None, 0)]);
    let all = store.report(0, GroupBy::Mapping).await.unwrap();
    assert_eq!(
        all[0],
        row(Some("old"), [1, 1, 0, 0, 9, 90, 900, 1_000_000])
    );
    assert!(
        store
            .report(day2 + 86_400_000, GroupBy::Day)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The store is built without its database; an operation then fails (with a message that holds
/// no password) and the next one, once the database is there, connects and migrates.
async fn unreachable_then_up(db: &Db) {
    match &db.postgres {
        None => {
            // The directory cannot be created while a file stands in its way.
            let dir = db.dir.as_ref().unwrap();
            std::fs::create_dir_all(dir).unwrap();
            let blocker = dir.join("blocked");
            std::fs::write(&blocker, "not a directory").unwrap();
            let store =
                SqlStore::connect_lazy(&format!("sqlite:{}/ledger.db", blocker.display())).unwrap();
            let err = store.report(0, GroupBy::User).await.unwrap_err();
            assert!(err.0.contains("cannot create"), "{err}");
            std::fs::remove_file(&blocker).unwrap();
            store
                .write(&[record("a", Status::Ok, 1, None)])
                .await
                .unwrap();
            assert_eq!(store.report(0, GroupBy::User).await.unwrap()[0].requests, 1);
        }
        Some(_) => {
            // A port where nothing listens yet, then a forwarder to the real server on it.
            let (password, real) = password_and_address(&db.url);
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().port()
            };
            let url = db.url.replace(&real, &format!("127.0.0.1:{port}"));
            let store = SqlStore::connect_lazy(&url).unwrap();
            assert!(!store.redacted_url().contains(&password));
            let started = std::time::Instant::now();
            let err = store.report(0, GroupBy::User).await.unwrap_err();
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "failed fast: {err}"
            );
            assert!(!err.0.contains(&password), "{err}");
            assert!(err.0.contains("***"), "{err}");
            let err = store
                .reserve(&[check("user:ann", None, Some(1), 0)], "h", T0, T0 + 1)
                .await
                .unwrap_err();
            assert!(!err.0.contains(&password), "{err}");
            eprintln!("while down: {err}");

            let forwarder = Forwarder::start(port, &real).await;
            store
                .write(&[record("a", Status::Ok, 1, None)])
                .await
                .unwrap();
            assert_eq!(store.report(0, GroupBy::User).await.unwrap()[0].requests, 1);
            let checks = [check("user:ann", None, Some(2), 0)];
            assert_eq!(store.reserve(&checks, "h", T0, T0 + 1).await.unwrap(), None);

            // An outage after the first connection: every connection cut, nothing listening.
            drop(forwarder);
            let started = std::time::Instant::now();
            let err = store.report(0, GroupBy::User).await.unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(15), "{err}");
            assert!(!err.0.contains(&password), "{err}");
            eprintln!("outage: {err}");
            // Back: the same store reconnects.
            let _forwarder = Forwarder::start(port, &real).await;
            store
                .write(&[record("b", Status::Ok, 1, None)])
                .await
                .unwrap();
            assert_eq!(store.report(0, GroupBy::User).await.unwrap()[0].requests, 2);

            // A wrong password: refused, and the message holds neither password.
            let wrong = db.url.replace(&password, "wrong-Secret-42");
            let err = SqlStore::connect_lazy(&wrong)
                .unwrap()
                .report(0, GroupBy::User)
                .await
                .unwrap_err();
            assert!(
                !err.0.contains("wrong-Secret-42") && !err.0.contains(&password),
                "{err}"
            );
            eprintln!("wrong password: {err}");
        }
    }
}

/// A TCP forwarder from 127.0.0.1:`port` to the real server: the database "coming up" on a
/// port; dropping it closes the port and cuts every connection (an outage).
struct Forwarder {
    accept: tokio::task::JoinHandle<()>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Forwarder {
    async fn start(port: u16, real: &str) -> Forwarder {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (real, tasks) = (real.to_string(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let real = real.clone();
                tasks.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&real).await {
                        tokio::io::copy_bidirectional(&mut client, &mut server)
                            .await
                            .ok();
                    }
                }));
            }
        });
        Forwarder { accept, conns }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accept.abort();
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

/// (password, host:port) of `postgres://user:password@host:port/db`.
fn password_and_address(url: &str) -> (String, String) {
    let rest = url.split_once("://").unwrap().1;
    let (userinfo, hostpart) = rest.rsplit_once('@').expect("a URL with a password");
    let password = userinfo.split_once(':').expect("a URL with a password").1;
    let address = hostpart.split(['/', '?']).next().unwrap();
    (password.to_string(), address.to_string())
}
