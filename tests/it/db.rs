//! One test's database, SQLite or PostgreSQL, and `on_both!`, which runs a test body on each.
//!
//! PostgreSQL: `eval "$(scripts/pg start)"` starts a throwaway server on loopback and exports
//! ROSETTA_TEST_POSTGRES_URL; each test creates a database of its own there (so tests run in
//! parallel) and drops it when it passes. Without the variable the PostgreSQL variants print
//! "skipped: ROSETTA_TEST_POSTGRES_URL not set" and pass, unless ROSETTA_REQUIRE_POSTGRES=1,
//! where they fail.

use std::path::PathBuf;

use rosetta::ledger::store::SqlStore;
use rosetta::ops::clock::Clock;

/// The time every ledger test stands at: 2026-11-23T00:00:00Z.
pub const T0: i64 = 1_795_392_000_000;
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Row};

/// One test's database: a fresh SQLite file path, or a fresh PostgreSQL database.
pub struct Db {
    pub url: String,
    pub postgres: Option<Pg>,
    pub dir: Option<PathBuf>,
}

pub struct Pg {
    /// The server's URL (its `rosetta` database), for CREATE/DROP DATABASE.
    admin_url: String,
    name: String,
}

impl Db {
    /// A SQLite file in a directory that does not exist yet (the store creates both).
    pub fn sqlite(test: &str) -> Db {
        let dir = std::env::temp_dir().join(format!(
            "rosetta-ledger-{test}-{}-{:x}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let file = dir.join("nested").join("ledger.db");
        Db {
            url: format!("sqlite://{}", file.display()),
            postgres: None,
            dir: Some(dir),
        }
    }

    /// A new database on the server of ROSETTA_TEST_POSTGRES_URL, or None (skipped).
    pub async fn postgres(test: &str) -> Option<Db> {
        let admin_url = postgres_url()?;
        let name = format!("rosetta_t_{test}_{:x}", fastrand::u32(..));
        let mut conn = connect(&admin_url).await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        Some(Db {
            url: with_database(&admin_url, &name),
            postgres: Some(Pg { admin_url, name }),
            dir: None,
        })
    }

    /// A store on the test's database whose clock stands at [`T0`] (tests never read the
    /// system's date: a hold that expires at a fixed time must not be purged because the
    /// calendar moved on).
    pub fn store(&self) -> SqlStore {
        self.store_at(Clock::manual(T0))
    }

    /// A store on the test's database reading "now" from `clock`.
    pub fn store_at(&self, clock: Clock) -> SqlStore {
        SqlStore::connect_lazy(&self.url)
            .expect("connect_lazy")
            .with_clock(clock)
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// The first column of the first row of `sql`, on a connection of the test's own.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let mut conn = connect(&self.url).await;
        let row = sqlx::query(AssertSqlSafe(sql.to_string()))
            .fetch_one(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.ok();
        row.try_get(0).unwrap()
    }

    pub async fn holds(&self, hold: &str) -> i64 {
        self.scalar(&format!(
            "SELECT COUNT(*) FROM budget_holds WHERE hold_id = '{hold}'"
        ))
        .await
    }

    /// Drops the database (PostgreSQL) or removes the directory (SQLite).
    pub async fn finish(self) {
        if let Some(pg) = &self.postgres {
            let mut conn = connect(&pg.admin_url).await;
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                pg.name
            )))
            .execute(&mut conn)
            .await
            .expect("DROP DATABASE");
            conn.close().await.ok();
        }
        if let Some(dir) = &self.dir {
            std::fs::remove_dir_all(dir).ok();
        }
    }
}

pub fn postgres_url() -> Option<String> {
    match std::env::var("ROSETTA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("ROSETTA_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "ROSETTA_REQUIRE_POSTGRES=1 but ROSETTA_TEST_POSTGRES_URL is not set \
                 (eval \"$(scripts/pg start)\")"
            );
            eprintln!("skipped: ROSETTA_TEST_POSTGRES_URL not set");
            None
        }
    }
}

pub async fn connect(url: &str) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connecting for the test: {e}"))
}

/// `url` with its database (the path) replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail
        .split_once('?')
        .map_or(String::new(), |(_, q)| format!("?{q}"));
    format!("{scheme}://{authority}/{name}{query}")
}

/// Runs each body on SQLite and on PostgreSQL: `NAME::sqlite`, `NAME::postgres`.
macro_rules! on_both_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::it::db::Db::sqlite(stringify!($name));
                super::$name(&db).await;
                db.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let Some(db) = $crate::it::db::Db::postgres(stringify!($name)).await else {
                    return;
                };
                super::$name(&db).await;
                db.finish().await;
            }
        }
    )*};
}

pub(crate) use on_both_tests as on_both;
