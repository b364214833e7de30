//! The ledger's write path: `SqlStore::write` of 10,000 records in batches of 500 (what the
//! background writer does under load) to a fresh SQLite file, and to a fresh PostgreSQL
//! database when ROSETTA_TEST_POSTGRES_URL is set (`eval "$(scripts/pg start)"`).
//!
//! `cargo bench --bench ledger`
//!
//! Every reported time is PER RECORD: one iteration writes 10,000 records into a new database
//! (created, migrated and, for `holds`, filled with the holds outside the timed part) and its
//! time is divided by 10,000; the throughput line is records per second.
//!
//! - `no_holds`: records without a budget hold (no budgets configured): inserts only.
//! - `holds`: every record settles a hold on two budgets (its user's and its key's day), as
//!   with budgets configured: inserts, hold deletions and budget usage updates.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rosetta::ledger::store::SqlStore;
use rosetta::ledger::{GroupBy, Record, Status, Store};
use sqlx::{AnyConnection, AssertSqlSafe, Connection};
use tokio::runtime::Runtime;

const RECORDS: usize = 10_000;
const BATCH: usize = 500;
const T0: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

fn records(with_holds: bool) -> Vec<Record> {
    (0..RECORDS)
        .map(|i| {
            let status = match i % 20 {
                0 => Status::UpstreamError,
                1 => Status::ClientAbort,
                _ => Status::Ok,
            };
            Record {
                id: std::iter::repeat_with(fastrand::alphanumeric)
                    .take(24)
                    .collect(),
                at_ms: T0 + i as i64,
                day: "2026-11-23".to_string(),
                request_id: format!("req-{i:08x}"),
                user: Some(format!("user{}@example.com", i % 50)),
                key: Some(format!("team-{}", i % 5)),
                mapping: "anthropic".to_string(),
                model: "claude-sonnet-4-5".to_string(),
                stream: i % 3 == 0,
                status,
                http_status: match status {
                    Status::UpstreamError => 502,
                    Status::ClientAbort => 499,
                    _ => 200,
                },
                prompt_tokens: 250,
                completion_tokens: 200,
                cached_tokens: 0,
                cost_nano: if status == Status::Ok { 3_750_000 } else { 0 },
                duration_ms: 850,
                error: (status == Status::UpstreamError).then(|| "upstream said no".to_string()),
                hold: with_holds.then(|| format!("hold-{i:08x}")),
            }
        })
        .collect()
}

/// A fresh database: a SQLite file in a new directory, or a new PostgreSQL database.
struct Db {
    url: String,
    dir: Option<PathBuf>,
    /// (server URL, database name) to drop.
    pg: Option<(String, String)>,
}

impl Db {
    async fn new(postgres: Option<&str>) -> Db {
        let tag = format!("{}_{:x}", std::process::id(), fastrand::u64(..));
        match postgres {
            None => {
                let dir = std::env::temp_dir().join(format!("rosetta-bench-ledger-{tag}"));
                Db {
                    url: format!("sqlite://{}", dir.join("ledger.db").display()),
                    dir: Some(dir),
                    pg: None,
                }
            }
            Some(admin) => {
                let name = format!("rosetta_bench_{tag}");
                let mut conn = AnyConnection::connect(admin).await.expect("PostgreSQL");
                sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("CREATE DATABASE");
                conn.close().await.ok();
                Db {
                    url: with_database(admin, &name),
                    dir: None,
                    pg: Some((admin.to_string(), name)),
                }
            }
        }
    }

    /// Inserts the records' holds (each on its user's and its key's day), outside the timing.
    async fn add_holds(&self, records: &[Record]) {
        let mut conn = AnyConnection::connect(&self.url).await.expect("connect");
        let mut tx = conn.begin().await.expect("begin");
        for chunk in records.chunks(200) {
            let mut sql = String::from(
                "INSERT INTO budget_holds (hold_id, subject, period, cost_nano, expires_ms) VALUES ",
            );
            for i in 0..chunk.len() * 2 {
                if i > 0 {
                    sql.push_str(", ");
                }
                if self.pg.is_some() {
                    let p = i * 5;
                    sql.push_str(&format!(
                        "(${}, ${}, ${}, ${}, ${})",
                        p + 1,
                        p + 2,
                        p + 3,
                        p + 4,
                        p + 5
                    ));
                } else {
                    // (SQLite binds numbered parameters in quadratic time.)
                    sql.push_str("(?, ?, ?, ?, ?)");
                }
            }
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for r in chunk {
                let hold = r.hold.as_deref().expect("a hold");
                for subject in [
                    format!("user:{}", r.user.as_deref().unwrap_or_default()),
                    format!("key:{}", r.key.as_deref().unwrap_or_default()),
                ] {
                    query = query
                        .bind(hold.to_string())
                        .bind(subject)
                        .bind("day:2026-11-23")
                        .bind(1_000_000_i64)
                        .bind(T0 + 3_600_000);
                }
            }
            query.execute(&mut *tx).await.expect("insert holds");
        }
        tx.commit().await.expect("commit");
        conn.close().await.ok();
    }

    async fn finish(self) {
        if let Some((admin, name)) = &self.pg {
            let mut conn = AnyConnection::connect(admin).await.expect("PostgreSQL");
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
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

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail
        .split_once('?')
        .map_or(String::new(), |(_, q)| format!("?{q}"));
    format!("{scheme}://{authority}/{name}{query}")
}

/// Writes 10,000 records in batches of 500 into a fresh database, `iters` times; returns the
/// time per record (the sum of the timed parts ÷ 10,000).
fn run(rt: &Runtime, postgres: Option<&str>, with_holds: bool, iters: u64) -> Duration {
    rt.block_on(async {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let db = Db::new(postgres).await;
            let store = SqlStore::connect_lazy(&db.url).expect("connect_lazy");
            // Connects and migrates (a report is the one call that does only that).
            store.report(0, GroupBy::Day).await.expect("ready");
            let batch = records(with_holds);
            if with_holds {
                db.add_holds(&batch).await;
            }
            let start = Instant::now();
            for chunk in batch.chunks(BATCH) {
                store.write(chunk).await.expect("write");
            }
            total += start.elapsed();
            if with_holds {
                let rows = store.report(0, GroupBy::Day).await.expect("report");
                assert_eq!(rows[0].requests, RECORDS as i64);
            }
            drop(store);
            db.finish().await;
        }
        total / RECORDS as u32
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    sqlx::any::install_default_drivers();
    let postgres = std::env::var("ROSETTA_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let mut group = c.benchmark_group("ledger_write_per_record");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    let mut stores = vec![("sqlite", None)];
    if let Some(url) = postgres.as_deref() {
        stores.push(("postgres", Some(url)));
    }
    for (kind, url) in stores {
        for (name, with_holds) in [("no_holds", false), ("holds", true)] {
            group.bench_function(format!("{kind}/{name}"), |b| {
                b.iter_custom(|iters| run(&rt, url, with_holds, iters))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
