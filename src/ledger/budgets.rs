//! Budgets: limits on cost and on requests per UTC day or month, for each user and each API
//! key, from the YAML file given with `rosetta serve --budgets FILE`:
//!
//! ```yaml
//! currency: USD   # optional label
//! users:
//!   "*":   {cost_per_day: 5.00, requests_per_day: 500}   # every user without an entry
//!   alice@example.com: {cost_per_month: 100}
//! keys:
//!   "*":    {requests_per_day: 10000}
//!   team-a: {cost_per_month: 1000, requests_per_day: 20000}
//! ```
//!
//! [`Budgets::checks`] turns the limits that apply to a call into [`Check`]s for the store,
//! and [`describe`] words the store's [`Denial`] for the 429 the client gets.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{Check, Denial, civil_from_days, day_of, days_from_civil};
use crate::mapping::pricing::{deserialize_nano, format_money};

/// The largest cost limit accepted, in currency units.
pub const MAX_LIMIT_UNITS: i64 = 1_000_000_000;

/// The entry that applies to every user (or key) without an entry of their own.
pub const DEFAULT_ENTRY: &str = "*";

const DAY_MS: i64 = 86_400_000;

/// The keys an entry may have.
const LIMIT_KEYS: &str = "cost_per_day, cost_per_month, requests_per_day or requests_per_month";

/// The limits of one user or one key; `None` is unlimited. Costs are nano-units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub cost_per_day_nano: Option<i64>,
    pub cost_per_month_nano: Option<i64>,
    pub requests_per_day: Option<i64>,
    pub requests_per_month: Option<i64>,
}

/// Every limit of the budgets file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budgets {
    /// The label of the costs, if the file gives one (the mappings' prices must use the same).
    pub currency: Option<String>,
    /// By user name; `*` is the default entry.
    users: BTreeMap<String, Limits>,
    /// By API key name; `*` is the default entry.
    keys: BTreeMap<String, Limits>,
}

impl Budgets {
    /// Reads and parses a budgets file. The error is one line,
    /// `FILE:LINE:COLUMN: LOCATION: MESSAGE` (or `FILE: MESSAGE` without a position).
    pub fn load(path: &Path) -> Result<Budgets, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read the budgets file: {e}", path.display()))?;
        Budgets::parse(&text, &path.display().to_string())
    }

    /// Parses the text of a budgets file; `file_name` is for error messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Budgets, String> {
        let spec: FileSpec = serde_yaml::from_str(text).map_err(|e| {
            let message = e.to_string();
            match e.location() {
                Some(l) => {
                    let suffix = format!(" at line {} column {}", l.line(), l.column());
                    let message = message.strip_suffix(&suffix).unwrap_or(&message);
                    format!("{file_name}:{}:{}: {message}", l.line(), l.column())
                }
                None => format!("{file_name}: {message}"),
            }
        })?;
        let at = |section: &str, name: Option<&str>, nth: usize| match locate_entry(
            text, section, name, nth,
        ) {
            Some((line, column)) => format!("{file_name}:{line}:{column}"),
            None => file_name.to_string(),
        };
        if let Some(c) = &spec.currency
            && (c.is_empty()
                || c.chars().count() > 16
                || c.chars().any(|ch| ch.is_whitespace() || ch.is_control()))
        {
            return Err(format!(
                "{}: currency: {c:?} is not a currency label (1 to 16 characters without spaces, such as USD, EUR or credits)",
                at("currency", None, 0)
            ));
        }
        let mut tables = [BTreeMap::new(), BTreeMap::new()];
        for (table, (section, entries)) in tables
            .iter_mut()
            .zip([("users", spec.users), ("keys", spec.keys)])
        {
            for (name, limits) in entries.map(|n| n.0).unwrap_or_default() {
                let seen = table.contains_key(&name);
                let nth = usize::from(seen);
                if name.is_empty() {
                    return Err(format!(
                        "{}: {section}: an empty name (write \"*\" for the default entry)",
                        at(section, Some(&name), 0)
                    ));
                }
                if seen {
                    return Err(format!(
                        "{}: {section}.{name:?}: given twice (the first at {})",
                        at(section, Some(&name), nth),
                        at(section, Some(&name), 0)
                    ));
                }
                let limits = Limits::from(limits);
                if limits == Limits::default() {
                    return Err(format!(
                        "{}: {section}.{name:?}: needs at least one limit ({LIMIT_KEYS})",
                        at(section, Some(&name), 0)
                    ));
                }
                table.insert(name, limits);
            }
        }
        let [users, keys] = tables;
        Ok(Budgets {
            currency: spec.currency,
            users,
            keys,
        })
    }

    /// Whether no limit is set at all (nothing to check).
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.keys.is_empty()
    }

    /// The currency label: the file's, else `fallback` (the mappings' prices).
    pub fn currency_or<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.currency.as_deref().unwrap_or(fallback)
    }

    /// The limits of a user: their own entry, else the `*` entry.
    pub fn user_limits(&self, user: &str) -> Option<&Limits> {
        lookup(&self.users, user)
    }

    /// The limits of an API key (by its name): its own entry, else the `*` entry.
    pub fn key_limits(&self, key: &str) -> Option<&Limits> {
        lookup(&self.keys, key)
    }

    /// The checks for one call: for the user, then the key (each when given, non-empty and
    /// limited), one check per period that has a limit, the day before the month. Subjects
    /// are `user:NAME` and `key:NAME` with the name itself, even when the `*` entry applies
    /// (each user has a budget of its own); periods are `day:YYYY-MM-DD` and `month:YYYY-MM`
    /// of `now_ms` in UTC. `hold_cost_nano` (what the call costs at the least) goes to each.
    pub fn checks(
        &self,
        user: Option<&str>,
        key: Option<&str>,
        now_ms: i64,
        hold_cost_nano: i64,
    ) -> Vec<Check> {
        let mut out = Vec::new();
        let subjects = [
            ("user", user.and_then(|u| Some((u, self.user_limits(u)?)))),
            ("key", key.and_then(|k| Some((k, self.key_limits(k)?)))),
        ];
        for (kind, found) in subjects {
            let Some((name, limits)) = found else {
                continue;
            };
            let periods = [
                (
                    day_period(now_ms),
                    limits.cost_per_day_nano,
                    limits.requests_per_day,
                ),
                (
                    month_period(now_ms),
                    limits.cost_per_month_nano,
                    limits.requests_per_month,
                ),
            ];
            for ((period, resets_at_ms), max_cost_nano, max_requests) in periods {
                if max_cost_nano.is_none() && max_requests.is_none() {
                    continue;
                }
                out.push(Check {
                    subject: format!("{kind}:{name}"),
                    period,
                    max_cost_nano,
                    max_requests,
                    hold_cost_nano,
                    resets_at_ms,
                });
            }
        }
        out
    }
}

fn lookup<'a>(table: &'a BTreeMap<String, Limits>, name: &str) -> Option<&'a Limits> {
    if name.is_empty() {
        return None;
    }
    table.get(name).or_else(|| table.get(DEFAULT_ENTRY))
}

/// The UTC day of `now_ms` as a period (`day:2026-11-22`), and when it ends (Unix ms).
pub fn day_period(now_ms: i64) -> (String, i64) {
    let next = (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
    (format!("day:{}", day_of(now_ms)), next)
}

/// The UTC month of `now_ms` as a period (`month:2026-11`), and when it ends (Unix ms).
pub fn month_period(now_ms: i64) -> (String, i64) {
    let (y, m, _) = civil_from_days(now_ms.div_euclid(DAY_MS));
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (
        format!("month:{y:04}-{m:02}"),
        days_from_civil(ny, nm, 1) * DAY_MS,
    )
}

/// A Unix-milliseconds time as RFC 3339 in UTC, to the second: `2026-11-23T00:00:00Z`.
pub fn rfc3339(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let s = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// The message of the 429 for a refused call: who, which limit, how much is used, and when it
/// resets, e.g. `budget exceeded: user "alice" has used 5.00 USD of its daily cost limit of
/// 5.00 USD; it resets at 2026-11-23T00:00:00Z`. When both limits of the check are reached,
/// the cost limit is named.
pub fn describe(check: &Check, denial: &Denial, currency: &str) -> String {
    let who = match check.subject.split_once(':') {
        Some(("user", name)) => format!("user {name:?}"),
        Some(("key", name)) => format!("API key {name:?}"),
        _ => check.subject.clone(),
    };
    let (adjective, per) = if check.period.starts_with("month:") {
        ("monthly", "month")
    } else {
        ("daily", "day")
    };
    let hold = check.hold_cost_nano;
    let spent = denial.spent_nano;
    let cost_reached = check
        .max_cost_nano
        .is_some_and(|max| spent.saturating_add(hold) > max || (hold == 0 && spent >= max));
    let requests_reached = check
        .max_requests
        .is_some_and(|max| denial.requests.saturating_add(1) > max);
    let requests_used = |max: i64| {
        format!(
            "has used {} of its {max} requests per {per}",
            denial.requests
        )
    };
    let what = match (check.max_cost_nano, check.max_requests) {
        (_, Some(max)) if requests_reached && !cost_reached => requests_used(max),
        (Some(max), _) => {
            let mut s = format!(
                "has used {} {currency} of its {adjective} cost limit of {} {currency}",
                format_money(spent),
                format_money(max)
            );
            if hold > 0 && spent < max {
                s.push_str(&format!(
                    ", and this request costs {} {currency}",
                    format_money(hold)
                ));
            }
            s
        }
        (None, Some(max)) => requests_used(max),
        (None, None) => format!("has reached its {adjective} limit"),
    };
    format!(
        "budget exceeded: {who} {what}; it resets at {}",
        rfc3339(check.resets_at_ms)
    )
}

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    currency: Option<String>,
    users: Option<Entries>,
    keys: Option<Entries>,
}

/// One entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSpec {
    #[serde(default, deserialize_with = "cost")]
    cost_per_day: Option<i64>,
    #[serde(default, deserialize_with = "cost")]
    cost_per_month: Option<i64>,
    #[serde(default, deserialize_with = "count")]
    requests_per_day: Option<i64>,
    #[serde(default, deserialize_with = "count")]
    requests_per_month: Option<i64>,
}

impl From<LimitsSpec> for Limits {
    fn from(s: LimitsSpec) -> Limits {
        Limits {
            cost_per_day_nano: s.cost_per_day,
            cost_per_month_nano: s.cost_per_month,
            requests_per_day: s.requests_per_day,
            requests_per_month: s.requests_per_month,
        }
    }
}

/// A cost limit, read exactly (as prices are), reported at its own line when wrong.
fn cost<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    deserialize_nano(d, MAX_LIMIT_UNITS).map(Some)
}

/// A request limit: a whole number, 0 or more.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Count;
    impl Visitor<'_> for Count {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a whole number of requests, 0 or more")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            if v < 0 {
                return Err(E::custom(format!(
                    "must not be negative (got {v}); a request limit is a whole number, 0 or more"
                )));
            }
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            Err(E::custom(format!(
                "must be a whole number of requests (got {v})"
            )))
        }
    }
    d.deserialize_any(Count).map(Some)
}

/// `users:` or `keys:` in file order, duplicates kept (they are reported with their line).
struct Entries(Vec<(String, LimitsSpec)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of names (or \"*\") to limits")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(Name(name)) = map.next_key()? {
                    out.push((name, map.next_value()?));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A user or key name: a string, or a number read as its text (`42: {...}`).
struct Name(String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a user or key name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(Name(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Name, E> {
                Ok(Name(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Name, E> {
                Ok(Name(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The line and column of a top-level key (`name: None`), or of the `nth` entry called
/// `name` in a top-level section written in block style; the section's own line when the
/// entry is not found there (flow style).
fn locate_entry(
    text: &str,
    section: &str,
    name: Option<&str>,
    nth: usize,
) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let content = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#')
    };
    let start = lines
        .iter()
        .position(|l| indent(l) == 0 && key_of(l).as_deref() == Some(section))?;
    let Some(name) = name else {
        return Some((start + 1, 1));
    };
    let block: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .filter(|(_, l)| content(l))
        .take_while(|(_, l)| indent(l) > 0)
        .map(|(i, l)| (i, *l))
        .collect();
    let shallowest = block.iter().map(|(_, l)| indent(l)).min();
    block
        .iter()
        .filter(|(_, l)| Some(indent(l)) == shallowest && key_of(l).as_deref() == Some(name))
        .nth(nth)
        .map(|(i, l)| (i + 1, indent(l) + 1))
        .or(Some((start + 1, 1)))
}

/// The key of a block-style `key: value` line, unquoted.
fn key_of(line: &str) -> Option<String> {
    let t = line.trim_start();
    match t.chars().next()? {
        q @ ('"' | '\'') => {
            let end = t[1..].find(q)? + 1;
            let rest = t[end + 1..].trim_start();
            rest.starts_with(':').then(|| t[1..end].to_string())
        }
        _ => {
            let colon = t.find(": ").or_else(|| t.strip_suffix(':').map(str::len))?;
            Some(t[..colon].trim_end().to_string())
        }
    }
}

#[cfg(test)]
#[path = "budgets_tests.rs"]
mod tests;
