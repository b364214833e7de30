//! Usage reports: the table `rosetta usage` prints and the JSON `/admin/usage` answers.

use serde_json::{Value, json};

use crate::ledger::{GroupBy, ReportRow};

/// A nano-unit amount as a decimal with 6 places (`1.234567`), never in scientific notation.
pub fn money(nano: i64) -> String {
    let sign = if nano < 0 { "-" } else { "" };
    let n = nano.unsigned_abs();
    // Rounded half up to millionths.
    let micros = (n + 500) / 1000;
    format!("{sign}{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

fn group_name(row: &ReportRow) -> &str {
    row.group.as_deref().unwrap_or("(none)")
}

/// The report as JSON: `{object, by, since, data: [{group, requests, ..., cost, cost_nano}]}`.
pub fn json(rows: &[ReportRow], by: GroupBy, since: &str) -> Value {
    let data: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "group": r.group,
                "requests": r.requests,
                "succeeded": r.succeeded,
                "failed": r.failed,
                "aborted": r.aborted,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "cached_tokens": r.cached_tokens,
                "cost": money(r.cost_nano),
                "cost_nano": r.cost_nano,
            })
        })
        .collect();
    json!({"object": "usage_report", "by": by, "since": since, "data": data})
}

/// The report as an aligned text table, with a total line.
pub fn table(rows: &[ReportRow], by: GroupBy) -> String {
    let head = [
        by.column()
            .trim_end_matches("_id")
            .trim_end_matches("_name"),
        "requests",
        "ok",
        "failed",
        "aborted",
        "prompt",
        "completion",
        "cached",
        "cost",
    ];
    let line = |r: &ReportRow, name: &str| {
        vec![
            name.to_string(),
            r.requests.to_string(),
            r.succeeded.to_string(),
            r.failed.to_string(),
            r.aborted.to_string(),
            r.prompt_tokens.to_string(),
            r.completion_tokens.to_string(),
            r.cached_tokens.to_string(),
            money(r.cost_nano),
        ]
    };
    let mut total = ReportRow::default();
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        cells.push(line(r, group_name(r)));
        total.requests += r.requests;
        total.succeeded += r.succeeded;
        total.failed += r.failed;
        total.aborted += r.aborted;
        total.prompt_tokens += r.prompt_tokens;
        total.completion_tokens += r.completion_tokens;
        total.cached_tokens += r.cached_tokens;
        total.cost_nano = total.cost_nano.saturating_add(r.cost_nano);
    }
    cells.push(line(&total, "total"));
    let widths: Vec<usize> = (0..head.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        let mut text = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c == 0 {
                text.push_str(&format!("{cell:<w$}", w = widths[c]));
            } else {
                text.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::pricing::NANO;

    fn row(group: Option<&str>, cost_nano: i64) -> ReportRow {
        ReportRow {
            group: group.map(String::from),
            requests: 3,
            succeeded: 2,
            failed: 1,
            aborted: 0,
            prompt_tokens: 100,
            completion_tokens: 20,
            cached_tokens: 5,
            cost_nano,
        }
    }

    #[test]
    fn money_is_exact_to_the_millionth() {
        assert_eq!(money(0), "0.000000");
        assert_eq!(money(1_234_567_890), "1.234568");
        assert_eq!(money(499), "0.000000");
        assert_eq!(money(500), "0.000001");
        assert_eq!(money(-2 * NANO), "-2.000000");
        assert_eq!(money(i64::MAX), "9223372036.854776");
    }

    #[test]
    fn table_and_json_agree() {
        let rows = [row(Some("alice"), 3 * NANO / 2), row(None, 0)];
        let t = table(&rows, GroupBy::User);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("user"), "{t}");
        assert!(
            lines[1].starts_with("alice") && lines[1].ends_with("1.500000"),
            "{t}"
        );
        assert!(lines[2].starts_with("(none)"), "{t}");
        assert!(
            lines[3].starts_with("total") && lines[3].contains(" 6 "),
            "{t}"
        );
        let j = json(&rows, GroupBy::Model, "2026-11-01");
        assert_eq!(j["by"], "model");
        assert_eq!(j["data"][0]["cost"], "1.500000");
        assert_eq!(j["data"][1]["group"], Value::Null);
    }
}
