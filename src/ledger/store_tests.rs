//! Tests of `crate::ledger::store`.

use super::*;

#[test]
fn passwords_are_found_and_redacted() {
    let url = "postgres://rosetta:p%40ss%2Fw0rd@db.example:5432/ledger?sslmode=require";
    let secrets = secrets_of(url);
    assert_eq!(
        secrets,
        vec!["p%40ss%2Fw0rd".to_string(), "p@ss/w0rd".to_string()]
    );
    assert_eq!(
        redact(url, &secrets),
        "postgres://rosetta:***@db.example:5432/ledger?sslmode=require"
    );
    assert_eq!(
        redact("auth failed for p@ss/w0rd", &secrets),
        "auth failed for ***"
    );
    let url = "postgres://db:5432/ledger?user=r&password=hunter22";
    assert_eq!(
        redact(url, &secrets_of(url)),
        "postgres://db:5432/ledger?user=r&password=***"
    );
    assert!(secrets_of("postgres://rosetta@db/ledger").is_empty());
    assert!(secrets_of("sqlite:/var/lib/rosetta/ledger.db").is_empty());
}

#[tokio::test]
async fn an_in_memory_database_works() {
    let store = SqlStore::connect_lazy("sqlite::memory:").unwrap();
    let record = Record {
        id: "r".into(),
        at_ms: 5,
        day: "1970-01-01".into(),
        request_id: "q".into(),
        user: None,
        key: None,
        mapping: "m".into(),
        model: "x".into(),
        stream: false,
        status: super::super::Status::Ok,
        http_status: 200,
        prompt_tokens: 1,
        completion_tokens: 2,
        cached_tokens: 0,
        cost_nano: 7,
        duration_ms: 1,
        error: None,
        hold: None,
    };
    store.write(&[record]).await.unwrap();
    let rows = store.report(0, GroupBy::Model).await.unwrap();
    assert_eq!((rows[0].requests, rows[0].cost_nano), (1, 7));
}

/// A SQLite file is in WAL mode, and every connection (writer and readers) syncs NORMAL.
#[tokio::test]
async fn sqlite_files_are_wal_and_synchronous_normal() {
    let dir = std::env::temp_dir().join(format!("rosetta-store-{:x}", fastrand::u64(..)));
    let store = SqlStore::connect_lazy(&format!("sqlite://{}/l.db", dir.display())).unwrap();
    store.ready().await.unwrap();
    for pool in [&store.pool, &store.reader] {
        let row = sqlx::query("PRAGMA journal_mode").fetch_one(pool).await;
        assert_eq!(row.unwrap().try_get::<String, _>(0).unwrap(), "wal");
        let row = sqlx::query("PRAGMA synchronous").fetch_one(pool).await;
        assert_eq!(row.unwrap().try_get::<i32, _>(0).unwrap(), 1, "NORMAL");
    }
    drop(store);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn statements_have_one_parameter_per_value() {
    assert_eq!(placeholders(Dialect::Postgres, 3, 4), "$5, $6, $7");
    assert_eq!(placeholders(Dialect::Sqlite, 3, 4), "?, ?, ?");
    assert_eq!(rows_of(Dialect::Postgres, 2, 2), "($1, $2), ($3, $4)");
    assert_eq!(rows_of(Dialect::Sqlite, 2, 2), "(?, ?), (?, ?)");
    for dialect in [Dialect::Sqlite, Dialect::Postgres] {
        for rows in [1, 7, INSERT_ROWS] {
            for returning in [false, true] {
                let sql = insert_sql(dialect, rows, returning);
                let values = sql.matches('?').count() + sql.matches('$').count();
                assert_eq!(values, rows * 18, "{sql}");
                assert_eq!(sql.ends_with(" RETURNING id"), returning, "{sql}");
            }
        }
    }
    assert!(insert_sql(Dialect::Postgres, INSERT_ROWS, true).contains("$1152)"));
}

#[test]
fn batches_are_cut_into_a_few_statement_lengths() {
    let lengths = |n: usize| {
        let rows: Vec<usize> = (0..n).collect();
        let chunks: Vec<&[usize]> = insert_chunks(&rows).collect();
        // Every record once, in order.
        assert_eq!(chunks.concat(), rows);
        chunks.iter().map(|c| c.len()).collect::<Vec<_>>()
    };
    assert_eq!(lengths(0), Vec::<usize>::new());
    assert_eq!(lengths(1), [1]);
    assert_eq!(lengths(27), [16, 8, 2, 1]);
    assert_eq!(lengths(64), [64]);
    assert_eq!(lengths(200), [64, 64, 64, 8]);
    for n in 1..=300 {
        let l = lengths(n);
        assert!(
            l.iter().all(|&k| k.is_power_of_two() && k <= INSERT_ROWS),
            "{n}: {l:?}"
        );
        assert!(l.len() <= n / INSERT_ROWS + 6, "{n}: {l:?}");
        // Each of those lengths has its statement built once, not per batch.
        for &k in &l {
            assert!(matches!(
                insert_sql(Dialect::Sqlite, k, false),
                Cow::Borrowed(_)
            ));
        }
    }
}

fn record(i: usize, status: super::super::Status, hold: Option<String>) -> Record {
    Record {
        id: format!("r{i}"),
        at_ms: 5,
        day: "1970-01-01".into(),
        request_id: format!("q{i}"),
        user: Some(format!("u{}", i % 3)),
        key: Some("k".into()),
        mapping: "m".into(),
        model: "x".into(),
        stream: false,
        status,
        http_status: 200,
        prompt_tokens: 1,
        completion_tokens: 2,
        cached_tokens: 0,
        cost_nano: i as i64 + 1,
        duration_ms: 1,
        error: None,
        hold,
    }
}

/// Batches over several statements: each record is written once, and each hold settled
/// once, by the first record written that names it.
#[tokio::test]
async fn a_large_batch_settles_each_hold_once() {
    use super::super::Status;
    let store = SqlStore::connect_lazy("sqlite::memory:").unwrap();
    let check = |subject: String, period: &str| Check {
        subject,
        period: period.into(),
        max_cost_nano: None,
        max_requests: None,
        hold_cost_nano: 0,
        resets_at_ms: i64::MAX,
    };
    for i in 0..120 {
        let checks = [
            check(format!("user:u{}", i % 3), "day"),
            check("key:k".into(), "month"),
        ];
        let hold = format!("h{i}");
        let denied = store.reserve(&checks, &hold, 0, i64::MAX).await.unwrap();
        assert_eq!(denied, None);
    }
    let status = |i: usize| match i % 10 {
        3 => Status::UpstreamError,
        _ => Status::Ok,
    };
    let mut batch: Vec<Record> = (0..230)
        .map(|i| record(i, status(i), (i < 120).then(|| format!("h{i}"))))
        .collect();
    // Later in the batch: a record already in it (skipped) and another naming a hold
    // settled by an earlier record (written, charges nothing).
    batch.push(Record {
        cost_nano: 1_000_000,
        ..batch[60].clone()
    });
    batch.push(record(1000, Status::Ok, Some("h70".into())));
    // A batch partly written already (retried): those records are skipped, charge nothing.
    store.write(&batch[..50]).await.unwrap();
    store.write(&batch).await.unwrap();
    store.write(&batch[100..]).await.unwrap();

    let rows = store.report(0, GroupBy::Day).await.unwrap();
    assert_eq!(rows[0].requests, 231);
    let charged: Vec<usize> = (0..120).filter(|&i| status(i) == Status::Ok).collect();
    let sum = |it: &mut dyn Iterator<Item = usize>| {
        it.fold((0, 0), |(c, n), i| (c + i as i64 + 1, n + 1))
    };
    for u in 0..3 {
        let usage = store.budget_usage(&format!("user:u{u}"), "day").await;
        let want = sum(&mut charged.iter().copied().filter(|i| i % 3 == u));
        assert_eq!(usage.unwrap(), want, "u{u}");
    }
    let want = sum(&mut charged.iter().copied());
    assert_eq!(store.budget_usage("key:k", "month").await.unwrap(), want);
    assert_eq!(store.purge_holds(i64::MAX).await.unwrap(), 0);
    // A skipped record settles nothing, even a hold of its id taken again since.
    let checks = [check("key:k".into(), "month")];
    let denied = store.reserve(&checks, "h0", 0, 1_000).await.unwrap();
    assert_eq!(denied, None);
    store.write(&batch[..10]).await.unwrap();
    assert_eq!(store.budget_usage("key:k", "month").await.unwrap(), want);
    assert_eq!(store.purge_holds(i64::MAX).await.unwrap(), 1);
}

#[test]
fn outside_a_runtime_is_an_error_not_a_panic() {
    let err = SqlStore::connect_lazy("postgres://u:secret@127.0.0.1:1/x").unwrap_err();
    assert_eq!(
        err.0,
        "postgres://u:***@127.0.0.1:1/x: must be opened inside a Tokio runtime"
    );
}

#[tokio::test]
async fn urls_are_checked_without_connecting() {
    let store = SqlStore::connect_lazy("postgres://u:secret@127.0.0.1:1/x").unwrap();
    assert_eq!(store.kind(), "postgres");
    assert_eq!(store.redacted_url(), "postgres://u:***@127.0.0.1:1/x");
    let err = SqlStore::connect_lazy("mysql://u:secret@h/x").unwrap_err();
    assert!(!err.0.contains("secret"), "{err}");
    assert!(SqlStore::connect_lazy("sqlite:").is_err());
    let store = SqlStore::connect_lazy("sqlite:dir with space/led%ger.db").unwrap();
    assert_eq!(store.kind(), "sqlite");
    assert!(store.url.starts_with("sqlite:///"), "{}", store.url);
    assert!(
        store
            .url
            .ends_with("/dir%20with%20space/led%25ger.db?mode=rwc"),
        "{}",
        store.url
    );
}
