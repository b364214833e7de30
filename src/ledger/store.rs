//! The ledger's database: [`SqlStore`], one code path on SQLite and PostgreSQL through sqlx's
//! `Any` driver, with the dialects' few differences branched where they matter.
//!
//! - `sqlite:PATH` / `sqlite://PATH` (`sqlite::memory:` for a throwaway one): the file and its
//!   directory are created on first use, in WAL mode with `synchronous = NORMAL` (a power loss
//!   may undo the last transactions, never corrupt the file), with sqlx's 5 s busy timeout.
//!   Writes go through one connection and every writing transaction is `BEGIN IMMEDIATE`, so
//!   they are serialized (another process on the same file waits for the lock); reports read on
//!   two connections of their own.
//! - `postgres://` / `postgresql://`: a pool of [`POSTGRES_POOL`] connections. `reserve` locks
//!   the budget rows it checks (inserted if missing, then `SELECT ... FOR UPDATE`, in sorted
//!   order so two calls never deadlock), counts the live holds and inserts its own before it
//!   commits: concurrent calls, from any number of replicas, never both take the last place.
//!   A `reserve` retried with the same hold id does not count its own hold (nor add a second).
//!
//! `write` inserts a batch with multi-row `INSERT`s of 100 records (with SQLite, each statement
//! is a round trip to sqlx's worker thread, and each row it returns a message: `RETURNING id`
//! only where a record has a hold to settle), then settles the holds of the records it inserted
//! with a multi-row `DELETE ... RETURNING` and a multi-row upsert of the budget rows, in order.
//!
//! Nothing connects at construction ([`SqlStore::connect_lazy`]): the first operation connects
//! and applies the migrations (`migrations/{sqlite,postgres}/`, recorded by sqlx in
//! `_sqlx_migrations` with their checksums); a failed attempt is retried by the next operation,
//! so Rosetta starts while its database is down. Error messages never hold the URL's password.
//!
//! Stored Responses live in the same database (`store/responses.rs`, [`ResponseStore`]).
//!
//! Holds that expire are no longer counted at once, but their rows are kept for
//! [`HOLD_GRACE_MS`] so that a record written late (after a store outage) still settles its
//! charge on the budgets; older ones are purged now and then by `write`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Row, SqlSafeStr, Transaction};
use tokio::sync::OnceCell;

use crate::ops::clock::Clock;

use super::responses::ResponseStore;
use super::{Check, Denial, GroupBy, Record, ReportRow, Store, StoreError};

mod responses;

/// Connections in a PostgreSQL pool (per Rosetta process).
pub const POSTGRES_POOL: u32 = 10;
/// How long an operation waits for a PostgreSQL connection before it fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an expired hold's row is kept, so that a record written late still settles.
pub const HOLD_GRACE_MS: i64 = 24 * 3_600_000;
/// How often `write` purges holds expired for longer than [`HOLD_GRACE_MS`].
const PURGE_EVERY_MS: i64 = 60_000;

/// Most records per `INSERT` statement of `write` (18 parameters each: 1,152 per statement, far
/// under SQLite's 32,766 and PostgreSQL's 65,535). A batch is cut into chunks of this many and
/// then of powers of two ([`insert_chunks`]): 7 statement shapes, each prepared once per
/// connection and kept in sqlx's cache of 100. Preparing a 100-row statement costs about 290k
/// instructions, which batches of a length of their own paid every time.
const INSERT_ROWS: usize = 64;
/// Holds per `DELETE` statement of `write` (as many as a full batch of the ledger writer).
const DELETE_HOLDS: usize = 500;
/// (subject, period) rows per budget usage statement of `write` (4 parameters each).
const USAGE_ROWS: usize = 250;

/// The versioned migrations, per dialect. Add a file and a line here; never edit an applied one
/// (sqlx refuses a migration whose checksum changed).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("../../migrations/sqlite/0001_ledger.sql"),
    ),
    (
        2,
        "ledger indexes",
        include_str!("../../migrations/sqlite/0002_ledger_indexes.sql"),
    ),
    (
        3,
        "responses",
        include_str!("../../migrations/sqlite/0003_responses.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "ledger",
        include_str!("../../migrations/postgres/0001_ledger.sql"),
    ),
    (
        2,
        "ledger indexes",
        include_str!("../../migrations/postgres/0002_ledger_indexes.sql"),
    ),
    (
        3,
        "responses",
        include_str!("../../migrations/postgres/0003_responses.sql"),
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

/// The ledger on SQLite or PostgreSQL.
pub struct SqlStore {
    dialect: Dialect,
    /// Writes (on SQLite its one connection, serializing them).
    pool: AnyPool,
    /// Reports and look-ups: on a SQLite file, two connections of their own, so that a long
    /// report does not hold up `reserve` (WAL: readers do not block the writer).
    reader: AnyPool,
    /// The URL connected to (with the password).
    url: String,
    /// The URL with its password replaced by `***`.
    shown: String,
    /// The strings that must never appear in a message (the password, raw and decoded).
    secrets: Vec<String>,
    /// SQLite's file, whose directory is created on first use.
    sqlite_path: Option<PathBuf>,
    ready: OnceCell<()>,
    last_purge_ms: AtomicI64,
    /// Where `write` reads "now" to purge old holds ([`SqlStore::with_clock`]).
    clock: Clock,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// A store for `url` (`sqlite:PATH`, `sqlite://PATH`, `postgres://...`, `postgresql://...`)
    /// that connects on first use. Fails only on a URL it cannot use, or when called outside a
    /// Tokio runtime (the pool's maintenance task needs one).
    pub fn connect_lazy(url: &str) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let secrets = secrets_of(url);
        let shown = redact(url, &secrets);
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError(format!(
                "{shown}: must be opened inside a Tokio runtime"
            )));
        }
        let scheme = url.split_once(':').map_or("", |(s, _)| s);
        let (dialect, conn_url, sqlite_path, options) = match scheme {
            "sqlite" => {
                let rest = url
                    .strip_prefix("sqlite://")
                    .or_else(|| url.strip_prefix("sqlite:"))
                    .unwrap_or_default();
                let (path, params) = rest.split_once('?').unwrap_or((rest, ""));
                let (conn_url, file) = if path == ":memory:" {
                    ("sqlite::memory:".to_string(), None)
                } else if path.is_empty() {
                    return Err(StoreError(format!("{shown}: no file path")));
                } else {
                    let file = std::path::absolute(path)
                        .map_err(|e| StoreError(format!("{shown}: {e}")))?;
                    let mut params: Vec<&str> =
                        params.split('&').filter(|p| !p.is_empty()).collect();
                    if !params.iter().any(|p| p.starts_with("mode=")) {
                        params.push("mode=rwc");
                    }
                    let encoded = percent_encode_path(&file.to_string_lossy());
                    (
                        format!("sqlite://{encoded}?{}", params.join("&")),
                        Some(file),
                    )
                };
                // One connection, kept open (an in-memory database lives as long as it does).
                let options = sqlite_pragmas(
                    AnyPoolOptions::new()
                        .max_connections(1)
                        .acquire_timeout(Duration::from_secs(30))
                        .idle_timeout(None)
                        .max_lifetime(None),
                );
                (Dialect::Sqlite, conn_url, file, options)
            }
            "postgres" | "postgresql" => {
                let options = AnyPoolOptions::new()
                    .max_connections(POSTGRES_POOL)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .idle_timeout(Duration::from_secs(300));
                (Dialect::Postgres, url.to_string(), None, options)
            }
            _ => {
                return Err(StoreError(format!(
                    "{shown}: unsupported ledger URL (use sqlite:PATH or postgres://...)"
                )));
            }
        };
        let lazy = |options: AnyPoolOptions| {
            options
                .connect_lazy(&conn_url)
                .map_err(|e| StoreError(redact(&format!("{shown}: {e}"), &secrets)))
        };
        let pool = lazy(options)?;
        let reader = if sqlite_path.is_some() {
            lazy(sqlite_pragmas(
                AnyPoolOptions::new()
                    .max_connections(2)
                    .acquire_timeout(Duration::from_secs(30))
                    .idle_timeout(Duration::from_secs(300)),
            ))?
        } else {
            pool.clone()
        };
        Ok(SqlStore {
            dialect,
            pool,
            reader,
            url: conn_url,
            shown,
            secrets,
            sqlite_path,
            ready: OnceCell::new(),
            last_purge_ms: AtomicI64::new(0),
            clock: Clock::system(),
        })
    }

    /// The same store reading "now" from `clock` (the system clock by default).
    pub fn with_clock(mut self, clock: Clock) -> SqlStore {
        self.clock = clock;
        self
    }

    /// The URL with its password replaced by `***` (for logs and `/health`).
    pub fn redacted_url(&self) -> &str {
        &self.shown
    }

    /// Settled spending in one budget period: (nano-units, requests); (0, 0) when none.
    pub async fn budget_usage(
        &self,
        subject: &str,
        period: &str,
    ) -> Result<(i64, i64), StoreError> {
        self.ready().await?;
        let row = sqlx::query(
            "SELECT spent_nano, requests FROM budget_usage WHERE subject = $1 AND period = $2",
        )
        .bind(subject)
        .bind(period)
        .fetch_optional(&self.reader)
        .await
        .map_err(|e| self.fail("budget usage", e))?;
        match row {
            None => Ok((0, 0)),
            Some(row) => Ok((
                row.try_get(0).map_err(|e| self.fail("budget usage", e))?,
                row.try_get(1).map_err(|e| self.fail("budget usage", e))?,
            )),
        }
    }

    /// Deletes the holds that expired before `expired_before_ms` (on PostgreSQL, skipping rows
    /// a transaction holds); returns how many. `write` calls it now and then.
    pub async fn purge_holds(&self, expired_before_ms: i64) -> Result<u64, StoreError> {
        self.ready().await?;
        let sql = match self.dialect {
            Dialect::Sqlite => "DELETE FROM budget_holds WHERE expires_ms < $1",
            Dialect::Postgres => {
                "DELETE FROM budget_holds WHERE (hold_id, subject, period) IN \
                 (SELECT hold_id, subject, period FROM budget_holds WHERE expires_ms < $1 \
                  LIMIT 10000 FOR UPDATE SKIP LOCKED)"
            }
        };
        let done = sqlx::query(sql)
            .bind(expired_before_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| self.fail("purge holds", e))?;
        Ok(done.rows_affected())
    }

    /// Connects and migrates, once successfully; a failure is retried by the next call.
    async fn ready(&self) -> Result<(), StoreError> {
        self.ready.get_or_try_init(|| self.init()).await.map(|_| ())
    }

    async fn init(&self) -> Result<(), StoreError> {
        let migrations = match self.dialect {
            Dialect::Sqlite => SQLITE_MIGRATIONS,
            Dialect::Postgres => POSTGRES_MIGRATIONS,
        };
        let migrator = Migrator::with_migrations(
            migrations
                .iter()
                .map(|&(version, description, sql)| {
                    Migration::new(
                        version,
                        description.into(),
                        MigrationType::Simple,
                        AssertSqlSafe(sql).into_sql_str(),
                        false,
                    )
                })
                .collect(),
        );
        let open = |e: &dyn Display| self.fail("cannot open the ledger", e);
        match self.dialect {
            Dialect::Sqlite => {
                if let Some(dir) = self.sqlite_path.as_ref().and_then(|p| p.parent()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| open(&format_args!("cannot create {}: {e}", dir.display())))?;
                }
                if self.sqlite_path.is_some() {
                    // Turning a new file to WAL needs it alone, and SQLite answers "database is
                    // locked" at once, without its busy timeout, when another process (a second
                    // replica starting) is doing the same: try again shortly.
                    let mut attempt = 1;
                    loop {
                        match sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&self.pool)
                            .await
                        {
                            Ok(_) => break,
                            Err(e) if attempt < 20 && e.to_string().contains("locked") => {
                                tracing::debug!(error = %e, "ledger file busy, trying WAL again");
                                tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
                                attempt += 1;
                            }
                            Err(e) => return Err(open(&e)),
                        }
                    }
                }
            }
            Dialect::Postgres => {
                // A probe on a connection of its own first: a refused connection fails at once
                // with its reason, where the pool would retry it until it times out.
                let conn = tokio::time::timeout(CONNECT_TIMEOUT, AnyConnection::connect(&self.url))
                    .await
                    .map_err(|_| open(&format_args!("no answer within {CONNECT_TIMEOUT:?}")))?
                    .map_err(|e| open(&e))?;
                let _ = conn.close().await;
            }
        }
        let mut attempt = 1;
        loop {
            match migrator.run(&self.pool).await {
                Ok(()) => break,
                // SQLite has no migration lock: two processes opening a new file at once both
                // try version 1 and one fails; run again, it finds the version applied.
                Err(e) if self.dialect == Dialect::Sqlite && attempt < 3 => {
                    tracing::debug!(error = %e, "ledger migration raced, running it again");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(open(&e)),
            }
        }
        tracing::info!(ledger = %self.shown, "ledger ready (migrations applied)");
        Ok(())
    }

    /// A writing transaction: `BEGIN IMMEDIATE` on SQLite takes the write lock up front.
    async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    fn fail(&self, what: &str, e: impl Display) -> StoreError {
        let detail = match format!("{e}") {
            s if s.contains("pool timed out") => {
                let waited = match self.dialect {
                    Dialect::Sqlite => "30s",
                    Dialect::Postgres => "5s",
                };
                format!("no database connection within {waited} ({s})")
            }
            s => s,
        };
        StoreError(redact(
            &format!("{} ledger {}: {what}: {detail}", self.kind(), self.shown),
            &self.secrets,
        ))
    }

    async fn write_batch(&self, batch: &[Record]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.ready().await?;
        self.write_tx(batch)
            .await
            .map_err(|e| self.fail("write", e))?;
        self.maybe_purge().await;
        Ok(())
    }

    async fn write_tx(&self, batch: &[Record]) -> Result<(), sqlx::Error> {
        // A record whose id comes again later in the batch: the later one is skipped, as it
        // would be by the database (it conflicts with the first).
        let mut ids: HashSet<&str> = HashSet::with_capacity(batch.len());
        let records: Vec<&Record> = batch.iter().filter(|r| ids.insert(&r.id)).collect();
        let mut tx = self.begin().await?;
        // The ids inserted now; the others were already written (a retried batch) and their
        // holds were settled with them.
        let mut inserted: HashSet<String> = HashSet::with_capacity(records.len());
        for chunk in insert_chunks(&records) {
            // Only a record with a hold needs to know whether it was inserted.
            let returning = chunk.iter().any(|r| r.hold.is_some());
            let sql = insert_sql(self.dialect, chunk.len(), returning);
            let mut query = sqlx::query(AssertSqlSafe(sql)).persistent(true);
            for r in chunk {
                query = query
                    .bind(&r.id)
                    .bind(r.at_ms)
                    .bind(&r.day)
                    .bind(&r.request_id)
                    .bind(r.user.as_deref())
                    .bind(r.key.as_deref())
                    .bind(&r.mapping)
                    .bind(&r.model)
                    .bind(r.stream)
                    .bind(r.status.as_str())
                    .bind(i32::from(r.http_status))
                    .bind(r.prompt_tokens)
                    .bind(r.completion_tokens)
                    .bind(r.cached_tokens)
                    .bind(r.cost_nano)
                    .bind(r.duration_ms)
                    .bind(r.error.as_deref())
                    .bind(r.hold.as_deref());
            }
            if !returning {
                query.execute(&mut *tx).await?;
                continue;
            }
            for row in query.fetch_all(&mut *tx).await? {
                inserted.insert(row.try_get(0)?);
            }
        }
        // Each hold is settled by the first record inserted now that names it (a later one
        // would find it gone).
        let mut settles: HashMap<&str, &Record> = HashMap::new();
        for r in records {
            if let Some(hold) = &r.hold
                && inserted.contains(&r.id)
            {
                settles.entry(hold).or_insert(r);
            }
        }
        // (subject, period) → (cost, requests), applied in sorted order (no deadlock between
        // two writers, nor with `reserve`, which locks the same rows in the same order).
        let mut charges: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
        let holds: Vec<&str> = settles.keys().copied().collect();
        for chunk in holds.chunks(DELETE_HOLDS) {
            let mut query = sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM budget_holds WHERE hold_id IN ({}) \
                 RETURNING hold_id, subject, period",
                placeholders(self.dialect, chunk.len(), 0)
            )))
            .persistent(chunk.len() == DELETE_HOLDS);
            for hold in chunk {
                query = query.bind(*hold);
            }
            for row in query.fetch_all(&mut *tx).await? {
                let hold: String = row.try_get(0)?;
                let r = settles[hold.as_str()];
                if r.charged() {
                    let sum = charges
                        .entry((row.try_get(1)?, row.try_get(2)?))
                        .or_default();
                    sum.0 += r.cost_nano;
                    sum.1 += 1;
                }
            }
        }
        // One statement per chunk, its rows in sorted order: PostgreSQL inserts (and locks) the
        // rows of a VALUES list one after the other, in order.
        let charges: Vec<_> = charges.into_iter().collect();
        for chunk in charges.chunks(USAGE_ROWS) {
            let mut query = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO budget_usage (subject, period, spent_nano, requests) VALUES {} \
                 ON CONFLICT (subject, period) DO UPDATE SET \
                 spent_nano = budget_usage.spent_nano + excluded.spent_nano, \
                 requests = budget_usage.requests + excluded.requests",
                rows_of(self.dialect, chunk.len(), 4)
            )))
            .persistent(chunk.len() == USAGE_ROWS);
            for ((subject, period), (cost, requests)) in chunk {
                query = query.bind(subject).bind(period).bind(cost).bind(requests);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// Purges long-expired holds at most once a minute per store; a failure is only logged.
    async fn maybe_purge(&self) {
        let now = self.clock.now_ms();
        let last = self.last_purge_ms.load(Ordering::Relaxed);
        if now - last < PURGE_EVERY_MS
            || self
                .last_purge_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        match self.purge_holds(now - HOLD_GRACE_MS).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired budget holds purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired budget holds failed"),
        }
    }

    async fn reserve_tx(
        &self,
        checks: &[Check],
        hold_id: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<Option<Denial>, sqlx::Error> {
        let mut tx = self.begin().await?;
        let mut keys: Vec<(&str, &str)> = checks
            .iter()
            .map(|c| (c.subject.as_str(), c.period.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let lock = match self.dialect {
            // BEGIN IMMEDIATE already holds the database's write lock.
            Dialect::Sqlite => {
                "SELECT spent_nano, requests FROM budget_usage WHERE subject = $1 AND period = $2"
            }
            Dialect::Postgres => {
                "SELECT spent_nano, requests FROM budget_usage WHERE subject = $1 AND period = $2 \
                 FOR UPDATE"
            }
        };
        // (subject, period) → (settled + held cost, settled + held requests)
        let mut used: BTreeMap<(&str, &str), (i64, i64)> = BTreeMap::new();
        for (subject, period) in keys {
            sqlx::query(
                "INSERT INTO budget_usage (subject, period, spent_nano, requests) \
                 VALUES ($1, $2, 0, 0) ON CONFLICT (subject, period) DO NOTHING",
            )
            .bind(subject)
            .bind(period)
            .execute(&mut *tx)
            .await?;
            let settled = sqlx::query(lock)
                .bind(subject)
                .bind(period)
                .fetch_one(&mut *tx)
                .await?;
            let held = sqlx::query(
                "SELECT CAST(COALESCE(SUM(cost_nano), 0) AS BIGINT), COUNT(*) FROM budget_holds \
                 WHERE subject = $1 AND period = $2 AND expires_ms > $3 AND hold_id <> $4",
            )
            .bind(subject)
            .bind(period)
            .bind(now_ms)
            .bind(hold_id)
            .fetch_one(&mut *tx)
            .await?;
            let cost = settled.try_get::<i64, _>(0)? + held.try_get::<i64, _>(0)?;
            let requests = settled.try_get::<i64, _>(1)? + held.try_get::<i64, _>(1)?;
            used.insert((subject, period), (cost, requests));
        }
        for (i, c) in checks.iter().enumerate() {
            let (spent, requests) = used[&(c.subject.as_str(), c.period.as_str())];
            let cost_fits = c.max_cost_nano.is_none_or(|max| {
                if c.hold_cost_nano > 0 {
                    spent.saturating_add(c.hold_cost_nano) <= max
                } else {
                    spent < max
                }
            });
            let requests_fit = c.max_requests.is_none_or(|max| requests < max);
            if !cost_fits || !requests_fit {
                tx.rollback().await?;
                return Ok(Some(Denial {
                    check: i,
                    spent_nano: spent,
                    requests,
                }));
            }
        }
        for c in checks {
            // Two checks on one (subject, period) share one hold: the first one's.
            sqlx::query(
                "INSERT INTO budget_holds (hold_id, subject, period, cost_nano, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (hold_id, subject, period) DO NOTHING",
            )
            .bind(hold_id)
            .bind(&c.subject)
            .bind(&c.period)
            .bind(c.hold_cost_nano)
            .bind(expires_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    async fn report_rows(&self, since_ms: i64, by: GroupBy) -> Result<Vec<ReportRow>, StoreError> {
        self.ready().await?;
        let col = by.column();
        // Budget-refused calls count as requests, nothing else.
        let sql = format!(
            "SELECT {col}, COUNT(*), \
             CAST(SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN status = 'upstream_error' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN status = 'client_abort' THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN status <> 'budget_exceeded' THEN prompt_tokens ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN status <> 'budget_exceeded' THEN completion_tokens ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN status <> 'budget_exceeded' THEN cached_tokens ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN status <> 'budget_exceeded' THEN cost_nano ELSE 0 END) AS BIGINT) \
             FROM ledger WHERE at_ms >= $1 GROUP BY {col}"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(since_ms)
            .fetch_all(&self.reader)
            .await
            .map_err(|e| self.fail("report", e))?;
        let mut out = rows
            .iter()
            .map(|row| {
                Ok(ReportRow {
                    group: row.try_get(0)?,
                    requests: row.try_get(1)?,
                    succeeded: row.try_get(2)?,
                    failed: row.try_get(3)?,
                    aborted: row.try_get(4)?,
                    prompt_tokens: row.try_get(5)?,
                    completion_tokens: row.try_get(6)?,
                    cached_tokens: row.try_get(7)?,
                    cost_nano: row.try_get(8)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|e| self.fail("report", e))?;
        // Sorted here, not in SQL, so that both databases agree (collations, where NULL goes).
        out.sort_by(|a, b| {
            b.cost_nano
                .cmp(&a.cost_nano)
                .then_with(|| a.group.is_none().cmp(&b.group.is_none()))
                .then_with(|| a.group.cmp(&b.group))
        });
        Ok(out)
    }
}

impl Store for SqlStore {
    fn kind(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    fn write<'a>(&'a self, batch: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(self.write_batch(batch))
    }

    fn reserve<'a>(
        &'a self,
        checks: &'a [Check],
        hold_id: &'a str,
        now_ms: i64,
        expires_ms: i64,
    ) -> BoxFuture<'a, Result<Option<Denial>, StoreError>> {
        Box::pin(async move {
            if checks.is_empty() {
                return Ok(None);
            }
            self.ready().await?;
            self.reserve_tx(checks, hold_id, now_ms, expires_ms)
                .await
                .map_err(|e| self.fail("reserve", e))
        })
    }

    fn report(
        &self,
        since_ms: i64,
        by: GroupBy,
    ) -> BoxFuture<'_, Result<Vec<ReportRow>, StoreError>> {
        Box::pin(self.report_rows(since_ms, by))
    }

    fn responses(&self) -> Option<&dyn ResponseStore> {
        Some(self)
    }
}

/// Sets up each new SQLite connection: `synchronous = NORMAL`. In WAL mode (set on the file
/// before anything is written, see `init`) a commit then appends to the WAL without waiting for
/// the disk, which is synced at each checkpoint: a power loss (not a crash of Rosetta) may undo
/// the last transactions, never corrupt the file. The default, FULL, syncs on every commit: every
/// batch and every budget `reserve`.
fn sqlite_pragmas(options: AnyPoolOptions) -> AnyPoolOptions {
    options.after_connect(|conn, _| {
        Box::pin(async move {
            sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await
                .map(|_| ())
        })
    })
}

/// The `INSERT` of `rows` records into the ledger (a record whose id is already there is
/// skipped), with `RETURNING id` (the ids actually inserted) when `returning`.
fn insert_sql(dialect: Dialect, rows: usize, returning: bool) -> Cow<'static, str> {
    fn build(dialect: Dialect, rows: usize, returning: bool) -> String {
        format!(
            "INSERT INTO ledger (id, at_ms, day, request_id, user_id, key_name, mapping, model, \
             stream, status, http_status, prompt_tokens, completion_tokens, cached_tokens, \
             cost_nano, duration_ms, error, hold_id) VALUES {} ON CONFLICT (id) DO NOTHING{}",
            rows_of(dialect, rows, 18),
            if returning { " RETURNING id" } else { "" }
        )
    }
    // The statements of the chunk lengths [`insert_chunks`] makes (powers of two up to
    // INSERT_ROWS), built once: [SQLite, PostgreSQL] × [plain, returning] × log2(rows).
    const SHAPES: usize = INSERT_ROWS.trailing_zeros() as usize + 1;
    static BUILT: LazyLock<[[[String; SHAPES]; 2]; 2]> = LazyLock::new(|| {
        [Dialect::Sqlite, Dialect::Postgres]
            .map(|d| [false, true].map(|r| std::array::from_fn(|i| build(d, 1 << i, r))))
    });
    if rows.is_power_of_two() && rows <= INSERT_ROWS {
        let d = usize::from(dialect == Dialect::Postgres);
        let shape = rows.trailing_zeros() as usize;
        Cow::Borrowed(BUILT[d][usize::from(returning)][shape].as_str())
    } else {
        Cow::Owned(build(dialect, rows, returning))
    }
}

/// `records` cut for `INSERT`: chunks of [`INSERT_ROWS`], then the rest by powers of two, largest
/// first (27 rows: 16, 8, 2, 1), so that every chunk has one of a few lengths.
fn insert_chunks<T>(records: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = records;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = if rest.len() >= INSERT_ROWS {
            INSERT_ROWS
        } else {
            1 << rest.len().ilog2()
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// `(p1, ..., p_width), (p_width+1, ...), ...`: `rows` tuples of parameters.
fn rows_of(dialect: Dialect, rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 6);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        out.push_str(&placeholders(dialect, width, row * width));
        out.push(')');
    }
    out
}

/// `n` parameters, the `first + 1`th to the `first + n`th of the statement: `$k` on
/// PostgreSQL, `?` on SQLite, in order. (Binding a numbered or named SQLite parameter looks its
/// name up in a list: quadratic in a statement of a thousand parameters.)
fn placeholders(dialect: Dialect, n: usize, first: usize) -> String {
    let mut out = String::with_capacity(n * 6);
    for i in 1..=n {
        if i > 1 {
            out.push_str(", ");
        }
        match dialect {
            Dialect::Sqlite => out.push('?'),
            Dialect::Postgres => {
                let _ = write!(out, "${}", first + i);
            }
        }
    }
    out
}

/// The password of a URL (`scheme://user:PASSWORD@host` or `?password=`), raw and
/// percent-decoded, longest first.
fn secrets_of(url: &str) -> Vec<String> {
    let mut raw = Vec::new();
    if let Some((_, rest)) = url.split_once("://") {
        let before_query = rest.split(['?', '#']).next().unwrap_or_default();
        if let Some((userinfo, _)) = before_query.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            raw.push(password.to_string());
        }
    }
    if let Some((_, query)) = url.split_once('?') {
        for pair in query.split('&') {
            if let Some(password) = pair.strip_prefix("password=") {
                raw.push(password.to_string());
            }
        }
    }
    let mut all: Vec<String> = Vec::new();
    for s in raw {
        let decoded = percent_decode(&s);
        all.push(s);
        all.push(decoded);
    }
    all.retain(|s| !s.is_empty());
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    all
}

fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes a file path for a `sqlite://` URL (sqlx decodes it again).
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
