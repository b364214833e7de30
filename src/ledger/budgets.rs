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
mod tests {
    use super::*;
    use crate::ledger::parse_day;
    use crate::mapping::pricing::NANO;

    const GOOD: &str = "# budgets\ncurrency: USD   # optional label\nusers:\n  \"*\":   {cost_per_day: 5.00, requests_per_day: 500}\n  alice@example.com: {cost_per_month: 100}\n  bob:\n    cost_per_day: 0.075\n    requests_per_month: 0\nkeys:\n  \"*\":    {requests_per_day: 10000}\n  team-a: {cost_per_month: 1000, requests_per_day: 20000}\n";

    /// 2026-11-22T10:00:00Z.
    fn now() -> i64 {
        parse_day("2026-11-22").unwrap() + 10 * 3_600_000
    }

    fn at(rfc: &str) -> i64 {
        let (day, time) = rfc.trim_end_matches('Z').split_once('T').unwrap();
        let mut hms = time.split(':').map(|x| x.parse::<i64>().unwrap());
        let (h, m, s) = (
            hms.next().unwrap(),
            hms.next().unwrap(),
            hms.next().unwrap(),
        );
        parse_day(day).unwrap() + ((h * 60 + m) * 60 + s) * 1000
    }

    fn err(text: &str) -> String {
        Budgets::parse(text, "budgets.yaml").unwrap_err()
    }

    #[test]
    fn parses_a_good_file() {
        let b = Budgets::parse(GOOD, "budgets.yaml").unwrap();
        assert!(!b.is_empty());
        assert_eq!(b.currency.as_deref(), Some("USD"));
        assert_eq!(
            b.user_limits("carol"),
            Some(&Limits {
                cost_per_day_nano: Some(5 * NANO),
                requests_per_day: Some(500),
                ..Limits::default()
            })
        );
        assert_eq!(
            b.user_limits("alice@example.com"),
            Some(&Limits {
                cost_per_month_nano: Some(100 * NANO),
                ..Limits::default()
            })
        );
        assert_eq!(
            b.user_limits("bob"),
            Some(&Limits {
                cost_per_day_nano: Some(75_000_000),
                requests_per_month: Some(0),
                ..Limits::default()
            })
        );
        assert_eq!(
            b.key_limits("team-a"),
            Some(&Limits {
                cost_per_month_nano: Some(1000 * NANO),
                requests_per_day: Some(20_000),
                ..Limits::default()
            })
        );
        assert_eq!(
            b.key_limits("other").unwrap().requests_per_day,
            Some(10_000)
        );
        assert_eq!(b.user_limits(""), None, "an empty name is no identity");
        let empty = Budgets::parse("# nothing yet\n", "b.yaml").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.currency_or("EUR"), "EUR");
        let numeric = Budgets::parse(
            "users:\n  42: {requests_per_day: 1}\n  \"7\": {requests_per_day: 2}\n",
            "b.yaml",
        )
        .unwrap();
        assert_eq!(numeric.user_limits("42").unwrap().requests_per_day, Some(1));
        assert_eq!(numeric.user_limits("7").unwrap().requests_per_day, Some(2));
        assert!(numeric.user_limits("8").is_none(), "no default entry");
    }

    #[test]
    fn every_error_names_file_line_and_column() {
        assert_eq!(
            err("users:\n  bob:\n    cost_per_day: 1\n    cost_per_week: 2\n"),
            "budgets.yaml:4:5: users.bob: unknown field `cost_per_week`, expected one of `cost_per_day`, `cost_per_month`, `requests_per_day`, `requests_per_month`"
        );
        assert_eq!(
            err("users:\n  bob:\n    requests_per_day: 1\n    cost_per_day: -5\n"),
            "budgets.yaml:4:19: users.bob.cost_per_day: must not be negative (got -5)"
        );
        assert_eq!(
            err("keys:\n  a: {cost_per_month: 0.0000000001}\n"),
            "budgets.yaml:2:23: keys.a.cost_per_month: 0.0000000001 has more than 9 decimal places (amounts are kept in units of 10^-9)"
        );
        assert_eq!(
            err("keys:\n  a: {cost_per_month: .nan}\n"),
            "budgets.yaml:2:23: keys.a.cost_per_month: is not a number"
        );
        assert!(
            err("keys:\n  a: {cost_per_month: 2000000000}\n")
                .starts_with("budgets.yaml:2:23: keys.a.cost_per_month: 2000000000 is too large")
        );
        assert_eq!(
            err("users:\n  bob: {requests_per_day: -1}\n"),
            "budgets.yaml:2:27: users.bob.requests_per_day: must not be negative (got -1); a request limit is a whole number, 0 or more"
        );
        assert_eq!(
            err("users:\n  bob: {requests_per_day: 1.5}\n"),
            "budgets.yaml:2:27: users.bob.requests_per_day: must be a whole number of requests (got 1.5)"
        );
        assert_eq!(
            err("users:\n  bob: {requests_per_day: \"10\"}\n"),
            "budgets.yaml:2:27: users.bob.requests_per_day: invalid type: string \"10\", expected a whole number of requests, 0 or more"
        );
        assert_eq!(
            err("# c\nusers:\n  alice: {cost_per_day: 1}\n  bob: {}\n"),
            "budgets.yaml:4:3: users.\"bob\": needs at least one limit (cost_per_day, cost_per_month, requests_per_day or requests_per_month)"
        );
        assert_eq!(
            err("users:\n  alice:\n    cost_per_day: 1\n  \"alice\":\n    cost_per_day: 2\n"),
            "budgets.yaml:4:3: users.\"alice\": given twice (the first at budgets.yaml:2:3)"
        );
        assert_eq!(
            err("users:\n  \"\": {cost_per_day: 1}\n"),
            "budgets.yaml:2:3: users: an empty name (write \"*\" for the default entry)"
        );
        assert_eq!(
            err("currency: USD\nusers:\n  bob: {cost_per_day: 1}\nteams: {}\n"),
            "budgets.yaml:4:1: unknown field `teams`, expected one of `currency`, `users`, `keys`"
        );
        assert_eq!(
            err("users: [alice]\n"),
            "budgets.yaml:1:8: users: invalid type: sequence, expected a map of names (or \"*\") to limits"
        );
        assert_eq!(
            err("users:\n  bob: {cost_per_day: 1\n"),
            "budgets.yaml:3:1: did not find expected ',' or '}' at line 3 column 1, while parsing a flow mapping at line 2 column 8"
        );
        assert_eq!(
            err("# label\ncurrency: US Dollar\n"),
            "budgets.yaml:2:1: currency: \"US Dollar\" is not a currency label (1 to 16 characters without spaces, such as USD, EUR or credits)"
        );
        let missing = Budgets::load(Path::new("/nonexistent/budgets.yaml")).unwrap_err();
        assert!(
            missing.starts_with("/nonexistent/budgets.yaml: cannot read the budgets file"),
            "{missing}"
        );
    }

    #[test]
    fn checks_for_users_keys_defaults_and_overrides() {
        let b = Budgets::parse(GOOD, "budgets.yaml").unwrap();
        let day_end = parse_day("2026-11-23").unwrap();
        let month_end = parse_day("2026-12-01").unwrap();
        // A user matched by "*": a day check of their own.
        let c = b.checks(Some("carol"), None, now(), 7);
        assert_eq!(
            c,
            [Check {
                subject: "user:carol".into(),
                period: "day:2026-11-22".into(),
                max_cost_nano: Some(5 * NANO),
                max_requests: Some(500),
                hold_cost_nano: 7,
                resets_at_ms: day_end,
            }]
        );
        // Their own entry replaces "*" entirely: no daily limit for alice.
        let c = b.checks(Some("alice@example.com"), None, now(), 0);
        assert_eq!(
            c,
            [Check {
                subject: "user:alice@example.com".into(),
                period: "month:2026-11".into(),
                max_cost_nano: Some(100 * NANO),
                max_requests: None,
                hold_cost_nano: 0,
                resets_at_ms: month_end,
            }]
        );
        // Key only.
        let c = b.checks(None, Some("team-a"), now(), 0);
        let got: Vec<_> = c
            .iter()
            .map(|c| {
                (
                    c.subject.as_str(),
                    c.period.as_str(),
                    c.max_cost_nano,
                    c.max_requests,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("key:team-a", "day:2026-11-22", None, Some(20_000)),
                ("key:team-a", "month:2026-11", Some(1000 * NANO), None),
            ]
        );
        // Both: the user's checks, then the key's; the key by "*".
        let c = b.checks(Some("bob"), Some("ci"), now(), 3);
        let got: Vec<_> = c
            .iter()
            .map(|c| {
                (
                    c.subject.as_str(),
                    c.period.as_str(),
                    c.max_cost_nano,
                    c.max_requests,
                    c.hold_cost_nano,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("user:bob", "day:2026-11-22", Some(75_000_000), None, 3),
                ("user:bob", "month:2026-11", None, Some(0), 3),
                ("key:ci", "day:2026-11-22", None, Some(10_000), 3),
            ]
        );
        // No identity, an empty one, or no entry and no "*": nothing to check.
        assert!(b.checks(None, None, now(), 0).is_empty());
        assert!(b.checks(Some(""), Some(""), now(), 0).is_empty());
        let only_alice = Budgets::parse("users:\n  alice: {cost_per_day: 1}\n", "b").unwrap();
        assert!(
            only_alice
                .checks(Some("bob"), Some("team-a"), now(), 0)
                .is_empty()
        );
        assert_eq!(
            only_alice
                .checks(Some("alice"), Some("team-a"), now(), 0)
                .len(),
            1
        );
        assert!(
            Budgets::default()
                .checks(Some("a"), Some("b"), now(), 0)
                .is_empty()
        );
    }

    #[test]
    fn periods_and_resets_at_month_ends_and_leap_years() {
        let both = Budgets::parse(
            "users:\n  \"*\": {requests_per_day: 1, requests_per_month: 1}\n",
            "b",
        )
        .unwrap();
        let periods = |now: &str| -> Vec<(String, String)> {
            both.checks(Some("u"), None, at(now), 0)
                .into_iter()
                .map(|c| (c.period, rfc3339(c.resets_at_ms)))
                .collect()
        };
        let p = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            periods("2024-02-29T23:59:59Z"),
            [
                p("day:2024-02-29", "2024-03-01T00:00:00Z"),
                p("month:2024-02", "2024-03-01T00:00:00Z"),
            ]
        );
        assert_eq!(
            periods("2024-02-28T12:00:00Z"),
            [
                p("day:2024-02-28", "2024-02-29T00:00:00Z"),
                p("month:2024-02", "2024-03-01T00:00:00Z"),
            ]
        );
        assert_eq!(
            periods("2026-02-28T00:00:00Z"),
            [
                p("day:2026-02-28", "2026-03-01T00:00:00Z"),
                p("month:2026-02", "2026-03-01T00:00:00Z"),
            ]
        );
        assert_eq!(
            periods("2026-12-31T23:59:59Z"),
            [
                p("day:2026-12-31", "2027-01-01T00:00:00Z"),
                p("month:2026-12", "2027-01-01T00:00:00Z"),
            ]
        );
        assert_eq!(
            periods("2027-01-01T00:00:00Z"),
            [
                p("day:2027-01-01", "2027-01-02T00:00:00Z"),
                p("month:2027-01", "2027-02-01T00:00:00Z"),
            ]
        );
        assert_eq!(
            periods("2026-04-30T08:00:00Z"),
            [
                p("day:2026-04-30", "2026-05-01T00:00:00Z"),
                p("month:2026-04", "2026-05-01T00:00:00Z"),
            ]
        );
        // The last millisecond of a day still belongs to it.
        let last = at("2026-11-22T23:59:59Z") + 999;
        assert_eq!(
            day_period(last),
            ("day:2026-11-22".into(), at("2026-11-23T00:00:00Z"))
        );
        assert_eq!(day_period(last + 1).0, "day:2026-11-23");
        assert_eq!(month_period(last).0, "month:2026-11");
        assert_eq!(
            rfc3339(at("2026-11-23T07:08:09Z") + 999),
            "2026-11-23T07:08:09Z"
        );
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn denials_are_described() {
        let check =
            |subject: &str, period: &str, cost: Option<i64>, requests: Option<i64>, hold: i64| {
                Check {
                    subject: subject.into(),
                    period: period.into(),
                    max_cost_nano: cost,
                    max_requests: requests,
                    hold_cost_nano: hold,
                    resets_at_ms: parse_day(if period.starts_with("day") {
                        "2026-11-23"
                    } else {
                        "2026-12-01"
                    })
                    .unwrap(),
                }
            };
        let denial = |spent_nano: i64, requests: i64| Denial {
            check: 0,
            spent_nano,
            requests,
        };
        assert_eq!(
            describe(
                &check("user:alice", "day:2026-11-22", Some(5 * NANO), Some(500), 0),
                &denial(5 * NANO, 12),
                "USD"
            ),
            "budget exceeded: user \"alice\" has used 5.00 USD of its daily cost limit of 5.00 USD; it resets at 2026-11-23T00:00:00Z"
        );
        assert_eq!(
            describe(
                &check("user:alice", "day:2026-11-22", Some(5 * NANO), Some(500), 0),
                &denial(1_234_567_890, 500),
                "USD"
            ),
            "budget exceeded: user \"alice\" has used 500 of its 500 requests per day; it resets at 2026-11-23T00:00:00Z"
        );
        assert_eq!(
            describe(
                &check("key:team-a", "month:2026-11", None, Some(20_000), 0),
                &denial(0, 20_000),
                "USD"
            ),
            "budget exceeded: API key \"team-a\" has used 20000 of its 20000 requests per month; it resets at 2026-12-01T00:00:00Z"
        );
        assert_eq!(
            describe(
                &check(
                    "key:team-a",
                    "month:2026-11",
                    Some(1000 * NANO),
                    None,
                    20_000_000
                ),
                &denial(999_990_000_000, 7),
                "EUR"
            ),
            "budget exceeded: API key \"team-a\" has used 999.99 EUR of its monthly cost limit of 1000.00 EUR, and this request costs 0.02 EUR; it resets at 2026-12-01T00:00:00Z"
        );
        assert_eq!(
            describe(
                &check("user:bob", "day:2026-11-22", Some(75_000_000), None, 0),
                &denial(75_001_234, 3),
                "USD"
            ),
            "budget exceeded: user \"bob\" has used 0.075001 USD of its daily cost limit of 0.075 USD; it resets at 2026-11-23T00:00:00Z"
        );
        assert_eq!(
            describe(
                &check("user:zoë \"z\"", "day:2026-11-22", Some(0), None, 0),
                &denial(0, 0),
                "credits"
            ),
            "budget exceeded: user \"zoë \\\"z\\\"\" has used 0.00 credits of its daily cost limit of 0.00 credits; it resets at 2026-11-23T00:00:00Z"
        );
    }
}
