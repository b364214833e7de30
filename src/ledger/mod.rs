//! Usage, pricing and budgets: who spent what, recorded on a ledger that is a SQLite file by
//! default and a PostgreSQL database when several replicas must share it.
//!
//! - [`Record`]: one finished API call (success, upstream error, client abort), with its
//!   tokens and its cost. Only a success is charged ([`Record::charged`]).
//! - [`Store`]: the database ([`store::SqlStore`] on SQLite or PostgreSQL): batched record
//!   writes, budget holds and reports. Schema migrations are versioned (`migrations/`).
//! - [`writer::Ledger`]: the handle the server holds. Records are queued without blocking and
//!   written in batches by a background task that survives a store outage (records are kept
//!   and retried) and is flushed on graceful shutdown.
//! - [`responses`]: stored Responses (`POST /v1/responses` with `store`), kept in the same
//!   database until they expire, reached through [`Store::responses`].
//! - [`budgets::Budgets`]: limits per user and per API key (cost and requests, per day or
//!   month), enforced before a request is forwarded with a hold on the store, so that several
//!   replicas on one PostgreSQL database never spend twice.
//!
//! Money is an integer count of nano-units (10⁻⁹) of the prices' currency, so sums are exact.

pub mod budgets;
pub mod report;
pub mod responses;
pub mod store;
pub mod tab;
pub mod writer;

use futures_util::future::BoxFuture;
use serde::Serialize;

/// How a call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The upstream answered and the whole response reached the client: charged.
    Ok,
    /// The upstream failed (an error status, unreachable, a timeout, a broken stream).
    UpstreamError,
    /// The client went away before the response was complete.
    ClientAbort,
    /// Refused by a budget before anything was sent upstream.
    BudgetExceeded,
    /// Refused as invalid, by Rosetta or by the upstream (a 4xx other than 429).
    ClientError,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::UpstreamError => "upstream_error",
            Status::ClientAbort => "client_abort",
            Status::BudgetExceeded => "budget_exceeded",
            Status::ClientError => "client_error",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "ok" => Status::Ok,
            "upstream_error" => Status::UpstreamError,
            "client_abort" => Status::ClientAbort,
            "budget_exceeded" => Status::BudgetExceeded,
            "client_error" => Status::ClientError,
            _ => return None,
        })
    }
}

/// One finished API call.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    /// A unique row id (the request id may be the client's and repeat).
    pub id: String,
    /// When the call finished, Unix milliseconds.
    pub at_ms: i64,
    /// The UTC day of `at_ms`, `YYYY-MM-DD` (reports group on it).
    pub day: String,
    pub request_id: String,
    pub user: Option<String>,
    /// The inbound API key's name (never the key).
    pub key: Option<String>,
    pub mapping: String,
    /// The model as the client named it.
    pub model: String,
    pub stream: bool,
    pub status: Status,
    /// The HTTP status the client got (200 for a stream that later failed).
    pub http_status: u16,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    /// Nano-units; 0 unless `status` is `Ok`.
    pub cost_nano: i64,
    pub duration_ms: i64,
    /// Why it failed, when it did (never a secret: the OpenAI error message).
    pub error: Option<String>,
    /// The budget hold taken for this call, settled when the record is written.
    pub hold: Option<String>,
}

impl Record {
    /// Only a success is charged: its cost and its request count go to the budgets.
    pub fn charged(&self) -> bool {
        self.status == Status::Ok
    }
}

/// One budget limit to check for a call: a subject (`user:NAME` or `key:NAME`) in one period
/// (`day:YYYY-MM-DD` or `month:YYYY-MM`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub subject: String,
    pub period: String,
    /// The most that may be spent in the period (nano-units), if limited.
    pub max_cost_nano: Option<i64>,
    /// The most requests that may succeed in the period, if limited.
    pub max_requests: Option<i64>,
    /// What this call costs at the least (its per-request price), held until it settles.
    pub hold_cost_nano: i64,
    /// When the period ends (Unix milliseconds): when the limit resets.
    pub resets_at_ms: i64,
}

/// Why a call was refused: the first check that did not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Index into the checks passed to [`Store::reserve`].
    pub check: usize,
    /// Spent plus held in the period when the call was refused.
    pub spent_nano: i64,
    pub requests: i64,
}

/// How to group a usage report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    User,
    Key,
    Model,
    Mapping,
    Day,
}

impl GroupBy {
    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s {
            "user" => GroupBy::User,
            "key" => GroupBy::Key,
            "model" => GroupBy::Model,
            "mapping" => GroupBy::Mapping,
            "day" => GroupBy::Day,
            _ => return None,
        })
    }

    /// The ledger column grouped on.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::User => "user_id",
            GroupBy::Key => "key_name",
            GroupBy::Model => "model",
            GroupBy::Mapping => "mapping",
            GroupBy::Day => "day",
        }
    }
}

/// One line of a usage report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReportRow {
    /// The group's value (`None`: calls without a user or key).
    pub group: Option<String>,
    pub requests: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub aborted: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cached_tokens: i64,
    pub cost_nano: i64,
}

/// A failure of the store (unreachable, refused a statement); the message never holds a
/// password from the URL.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// The database behind the ledger.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;

    /// Writes a batch in one transaction: inserts the records (a record whose id is already
    /// there is skipped, so a batch retried after an unclear failure is not written twice), and
    /// settles each record's hold: the hold is removed, and a charged record adds its cost and
    /// one request to every (subject, period) the hold covered.
    fn write<'a>(&'a self, batch: &'a [Record]) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Atomically checks every limit and, when all fit, takes hold `hold_id` on each (subject,
    /// period) for `hold_cost_nano` and one request, until the hold is settled by a written
    /// record or expires at `expires_ms`. A check fits when settled spending plus live holds
    /// plus this hold stay within `max_cost_nano` (and, when the hold costs nothing, settled
    /// plus held spending is still under it), and settled requests plus live holds plus one
    /// stay within `max_requests`. Concurrent calls (several replicas included) never both
    /// take the last place.
    fn reserve<'a>(
        &'a self,
        checks: &'a [Check],
        hold_id: &'a str,
        now_ms: i64,
        expires_ms: i64,
    ) -> BoxFuture<'a, Result<Option<Denial>, StoreError>>;

    /// Sums the records since `since_ms`, grouped, the largest cost first.
    fn report(
        &self,
        since_ms: i64,
        by: GroupBy,
    ) -> BoxFuture<'_, Result<Vec<ReportRow>, StoreError>>;

    /// The stored Responses kept in the same database, when this store keeps them (the
    /// default: it does not).
    fn responses(&self) -> Option<&dyn responses::ResponseStore> {
        None
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC day of a Unix-milliseconds time, `YYYY-MM-DD`.
pub fn day_of(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The first day of the UTC month of `ms`, `YYYY-MM-01`: where reports start by default.
pub fn month_start_of(ms: i64) -> String {
    let (y, m, _) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-01")
}

/// Parses `YYYY-MM-DD` (UTC midnight) into Unix milliseconds.
pub fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Rejects 2026-02-30 and the like: the round trip must give the same date.
    (civil_from_days(days) == (y, m, d)).then_some(days * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_across_leap_years_and_eras() {
        for days in [
            -800_000, -1, 0, 1, 59, 60, 11_016, 20_414, 20_779, 2_000_000,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(day_of(1_795_392_000_000 - 1), "2026-11-22");
        assert_eq!(day_of(1_795_392_000_000), "2026-11-23");
        assert_eq!(parse_day("2024-02-29"), Some(19_782 * 86_400_000));
        assert_eq!(parse_day("2026-02-29"), None);
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("yesterday"), None);
        assert_eq!(month_start_of(1_795_392_000_000 - 1), "2026-11-01");
        assert_eq!(month_start_of(19_782 * 86_400_000), "2024-02-01");
    }
}
