//! Stored Responses on a real SQLite file and a real PostgreSQL server (`ledger::responses`):
//! every test body runs on both (`responses_store::NAME::sqlite`, `::postgres`), as in
//! `ledger_store.rs` (see `db.rs` for ROSETTA_TEST_POSTGRES_URL).

use std::sync::Arc;
use std::time::Duration;

use rosetta::ledger::responses::{ResponseStore, StoredResponse};
use rosetta::ledger::writer::{Ledger, LedgerOptions};
use rosetta::ledger::{GroupBy, Store};
use rosetta::ops::clock::Clock;
use rosetta::ops::telemetry::Metrics;
use serde_json::json;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use super::db::{Db, T0, on_both};

on_both!(
    a_version_2_ledger_is_upgraded,
    put_and_get,
    only_the_owner_sees_it,
    delete_then_get,
    expiry_and_purge_by_the_ledgers_clock,
    a_purge_goes_in_batches,
    a_second_replica_sees_it,
);

/// A response of `owner` stored at T0 for `ttl_ms`, with an input item and an output item.
fn stored(id: &str, owner: &str, ttl_ms: i64) -> StoredResponse {
    let input = json!({"id": format!("msg_in_{id}"), "type": "message", "role": "user",
        "status": "completed", "content": [{"type": "input_text", "text": "Grüße, 世界 \u{0} \"q\""}]});
    let output = json!({"id": format!("msg_out_{id}"), "type": "message", "role": "assistant",
        "status": "completed", "content": [{"type": "output_text", "text": "Hi", "annotations": []}]});
    StoredResponse {
        id: id.to_string(),
        owner: owner.to_string(),
        created_ms: T0,
        expires_ms: T0 + ttl_ms,
        response: json!({"id": id, "object": "response", "created_at": T0 / 1000,
            "status": "completed", "output": [output.clone()],
            "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}}),
        input_items: vec![input.clone()],
        history: vec![
            json!({"id": "msg_older", "type": "message", "role": "user"}),
            input,
            output,
        ],
    }
}

/// Rows in `responses`.
async fn rows(db: &Db) -> i64 {
    db.scalar("SELECT COUNT(*) FROM responses").await
}

const DAY: i64 = 86_400_000;

/// What is put comes back as it was (every field, any text); a second put of the same id
/// replaces it.
async fn put_and_get(db: &Db) {
    let store = db.store();
    let first = stored("resp_1", "team", DAY);
    store.put_response(&first).await.unwrap();
    let got = store.get_response("resp_1", "team", T0).await.unwrap();
    assert_eq!(got.as_ref(), Some(&first));
    assert_eq!(
        store.get_response("resp_2", "team", T0).await.unwrap(),
        None
    );

    let mut second = stored("resp_1", "team", 2 * DAY);
    second.response["status"] = json!("incomplete");
    second.history.clear();
    store.put_response(&second).await.unwrap();
    let got = store.get_response("resp_1", "team", T0).await.unwrap();
    assert_eq!(got, Some(second));
    assert_eq!(rows(db).await, 1);
}

/// Another owner (the empty owner included) neither reads nor deletes a response: to them it
/// is missing, and it stays there for its owner.
async fn only_the_owner_sees_it(db: &Db) {
    let store = db.store();
    store
        .put_response(&stored("resp_a", "ann", DAY))
        .await
        .unwrap();
    store
        .put_response(&stored("resp_n", "", DAY))
        .await
        .unwrap();
    for other in ["bob", "", "ANN", "ann "] {
        assert_eq!(
            store.get_response("resp_a", other, T0).await.unwrap(),
            None,
            "{other:?}"
        );
        assert!(
            !store.delete_response("resp_a", other, T0).await.unwrap(),
            "{other:?}"
        );
    }
    assert!(
        store
            .get_response("resp_a", "ann", T0)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(store.get_response("resp_n", "ann", T0).await.unwrap(), None);
    assert!(
        store
            .get_response("resp_n", "", T0)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(rows(db).await, 2);
}

/// A deleted response is gone: get answers None, a second delete false.
async fn delete_then_get(db: &Db) {
    let store = db.store();
    store
        .put_response(&stored("resp_1", "ann", DAY))
        .await
        .unwrap();
    store
        .put_response(&stored("resp_2", "ann", DAY))
        .await
        .unwrap();
    assert!(store.delete_response("resp_1", "ann", T0).await.unwrap());
    assert_eq!(store.get_response("resp_1", "ann", T0).await.unwrap(), None);
    assert!(!store.delete_response("resp_1", "ann", T0).await.unwrap());
    assert!(
        store
            .get_response("resp_2", "ann", T0)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(rows(db).await, 1);
}

/// Through the ledger, on a manual clock: a response is there until its `expires_ms`, missing
/// from then on (get and delete), and the purge deletes exactly the expired ones.
async fn expiry_and_purge_by_the_ledgers_clock(db: &Db) {
    let clock = Clock::manual(T0);
    let options = LedgerOptions {
        clock: clock.clone(),
        ..LedgerOptions::default()
    };
    let store: Arc<dyn Store> = Arc::new(db.store_at(clock.clone()));
    let ledger = Ledger::start(store, options, Metrics::new());
    let responses = ledger.responses().expect("SqlStore keeps responses");
    for (id, owner, ttl) in [
        ("resp_1", "ann", 1_000),
        ("resp_2", "ann", 2_000),
        ("resp_3", "bob", 1_000),
    ] {
        responses.put(&stored(id, owner, ttl)).await.unwrap();
    }
    clock.set(T0 + 999);
    assert!(responses.get("resp_1", "ann").await.unwrap().is_some());
    assert_eq!(responses.purge().await.unwrap(), 0);
    clock.set(T0 + 1_000);
    assert_eq!(
        responses.get("resp_1", "ann").await.unwrap(),
        None,
        "expired"
    );
    assert!(!responses.delete("resp_3", "bob").await.unwrap(), "expired");
    assert!(responses.get("resp_2", "ann").await.unwrap().is_some());
    assert_eq!(rows(db).await, 3, "expired but not purged yet");
    assert_eq!(responses.purge().await.unwrap(), 2);
    assert_eq!(rows(db).await, 1);
    assert_eq!(responses.purge().await.unwrap(), 0);
    clock.set(T0 + 2_000);
    assert_eq!(responses.purge().await.unwrap(), 1);
    assert_eq!(rows(db).await, 0);
    ledger.close(Duration::from_secs(5)).await;
}

/// A purge of more rows than one statement deletes gets them all, and only the expired.
async fn a_purge_goes_in_batches(db: &Db) {
    let store = db.store();
    for i in 0..250 {
        store
            .put_response(&stored(&format!("resp_{i}"), "ann", i % 5 * 1_000))
            .await
            .unwrap();
    }
    // ttl 0 and 1 s: 100 rows expired by T0 + 1 s.
    assert_eq!(store.purge_responses(T0 + 1_000).await.unwrap(), 100);
    assert_eq!(store.purge_responses(T0 + 4_000).await.unwrap(), 150);
    assert_eq!(rows(db).await, 0);
}

/// Two stores on one database (two replicas): what one puts, the other reads and deletes
/// (`previous_response_id` works whichever replica a request reaches).
async fn a_second_replica_sees_it(db: &Db) {
    let one = db.store();
    let two = db.store();
    let response = stored("resp_1", "ann", DAY);
    one.put_response(&response).await.unwrap();
    let seen = two.get_response("resp_1", "ann", T0).await.unwrap();
    assert_eq!(seen, Some(response));
    assert!(two.delete_response("resp_1", "ann", T0).await.unwrap());
    assert_eq!(one.get_response("resp_1", "ann", T0).await.unwrap(), None);
}

/// The migrations of a ledger before stored responses (versions 1 and 2), as released.
fn version_2(postgres: bool) -> Migrator {
    let files = if postgres {
        [
            include_str!("../../migrations/postgres/0001_ledger.sql"),
            include_str!("../../migrations/postgres/0002_ledger_indexes.sql"),
        ]
    } else {
        [
            include_str!("../../migrations/sqlite/0001_ledger.sql"),
            include_str!("../../migrations/sqlite/0002_ledger_indexes.sql"),
        ]
    };
    let names = ["ledger", "ledger indexes"];
    Migrator::with_migrations(
        files
            .iter()
            .zip(names)
            .enumerate()
            .map(|(i, (sql, name))| {
                Migration::new(
                    i as i64 + 1,
                    name.into(),
                    MigrationType::Simple,
                    AssertSqlSafe(*sql).into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// A ledger database made by an earlier Rosetta (versions 1 and 2, with a record in it) gets
/// version 3 when the store opens it: the `responses` table, and the record kept.
async fn a_version_2_ledger_is_upgraded(db: &Db) {
    sqlx::any::install_default_drivers();
    let url = if db.is_postgres() {
        db.url.clone()
    } else {
        let path = db.url.trim_start_matches("sqlite://");
        std::fs::create_dir_all(std::path::Path::new(path).parent().unwrap()).unwrap();
        format!("{}?mode=rwc", db.url)
    };
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap();
    version_2(db.is_postgres()).run(&pool).await.unwrap();
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO ledger (id, at_ms, day, request_id, mapping, model, stream, status, \
         http_status, prompt_tokens, completion_tokens, cached_tokens, cost_nano, duration_ms) \
         VALUES ('before', {T0}, '2026-11-23', 'q', 'm', 'x', FALSE, 'ok', 200, 1, 2, 0, 5, 1)"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await, 2);

    let store = db.store();
    let rows = store.report(0, GroupBy::User).await.unwrap();
    assert_eq!(rows[0].requests, 1, "the old record is kept");
    assert_eq!(db.scalar("SELECT COUNT(*) FROM _sqlx_migrations").await, 3);
    assert_eq!(db.scalar("SELECT COUNT(*) FROM responses").await, 0);
}
