//! Stored Responses on a real SQLite file and a real PostgreSQL server (`ledger::responses`):
//! every test body runs on both (`responses_store::NAME::sqlite`, `::postgres`), as in
//! `ledger_store.rs` (see `db.rs` for ROSETTA_TEST_POSTGRES_URL).

use rosetta::ledger::{GroupBy, Store};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use super::db::{Db, T0, on_both};

on_both!(a_version_2_ledger_is_upgraded);

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
