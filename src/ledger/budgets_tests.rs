//! Tests of `crate::ledger::budgets`.

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
        |subject: &str, period: &str, cost: Option<i64>, requests: Option<i64>, hold: i64| Check {
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
