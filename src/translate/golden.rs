//! `rosetta test`: golden cases that let mapping authors test a mapping without writing Rust.
//!
//! A case is one YAML file in `FIXTURES/NAME/` (NAME is the mapping): an OpenAI request, the
//! upstream request it must produce, a canned upstream response (JSON, an SSE or an NDJSON
//! transcript) and the OpenAI response or chunk sequence expected back. Cases run through the
//! same pure phases as the server ([`crate::translate::proxy::prepare`], [`crate::translate::proxy::translate_whole`],
//! [`crate::translate::proxy::rewriter`]); no socket is opened. `docs/mapping-reference.md` documents the
//! format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ProxyError;
use crate::mapping::{Mapping, Op};
use crate::translate::proxy;
use crate::translate::request::{model_not_found, parse_request};
use crate::upstream::error_from;

/// One golden case, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(default)]
    pub description: String,
    /// `chat` (default), `completions` or `embeddings`.
    #[serde(default)]
    pub route: Option<String>,
    /// The OpenAI request body.
    pub request: Value,
    /// Client request headers (for mappings that forward some).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub upstream_request: Option<ExpectedUpstream>,
    pub upstream_response: Option<CannedResponse>,
    pub expect: Expect,
}

/// What the upstream must receive. Listed headers must match; the body must match exactly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedUpstream {
    pub method: Option<String>,
    /// Path and query.
    pub path: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
}

/// What the upstream answers: one of `json`, `body` (raw text), `sse` or `ndjson` (transcripts).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CannedResponse {
    #[serde(default = "ok")]
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub json: Option<Value>,
    pub body: Option<String>,
    pub sse: Option<String>,
    pub ndjson: Option<String>,
}

fn ok() -> u16 {
    200
}

/// What the client must get: a status and a body, or a chunk sequence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default = "ok")]
    pub status: u16,
    pub body: Option<Value>,
    pub chunks: Option<Vec<Value>>,
    /// Whether the stream ends with `data: [DONE]` (default: true when `chunks` is given).
    pub done: Option<bool>,
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: usize,
    pub failed: usize,
    /// One line per case, with indented mismatch lines under failures.
    pub lines: Vec<String>,
}

/// Runs every case under `fixtures/NAME/` for each mapping.
pub fn run(mappings: &[Arc<Mapping>], fixtures: &Path) -> Report {
    let mut report = Report::default();
    for m in mappings {
        let dir = fixtures.join(&m.name);
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
                .collect(),
            Err(_) => {
                report.lines.push(format!(
                    "note  {}: no golden cases in {}",
                    m.name,
                    dir.display()
                ));
                continue;
            }
        };
        files.sort();
        for file in files {
            let label = format!(
                "{}/{}",
                m.name,
                file.file_name().unwrap_or_default().to_string_lossy()
            );
            let problems = match std::fs::read_to_string(&file)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_yaml::from_str::<Case>(&t).map_err(|e| format!("invalid case file: {e}"))
                }) {
                Ok(case) => {
                    let problems = run_case(m, &case);
                    if !case.description.is_empty() {
                        report.lines.push(format!(
                            "{}  {label}: {}",
                            if problems.is_empty() { "PASS" } else { "FAIL" },
                            case.description
                        ));
                    } else {
                        report.lines.push(format!(
                            "{}  {label}",
                            if problems.is_empty() { "PASS" } else { "FAIL" }
                        ));
                    }
                    problems
                }
                Err(e) => {
                    report.lines.push(format!("FAIL  {label}"));
                    vec![e]
                }
            };
            if problems.is_empty() {
                report.passed += 1;
            } else {
                report.failed += 1;
                report
                    .lines
                    .extend(problems.into_iter().map(|p| format!("        {p}")));
            }
        }
    }
    report
}

/// Runs one case; returns every mismatch (empty when it passes).
pub fn run_case(mapping: &Arc<Mapping>, case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let op = match case.route.as_deref().unwrap_or("chat") {
        "chat" => Op::Chat,
        "completions" => Op::Completions,
        "embeddings" => Op::Embeddings,
        other => {
            return vec![format!(
                "unknown route {other:?} (chat, completions or embeddings)"
            )];
        }
    };
    let outcome = execute(mapping, op, case, &mut problems);
    match outcome {
        Outcome::Error(e) => {
            compare_status(case.expect.status, e.status().as_u16(), &mut problems);
            if let Some(body) = &case.expect.body {
                diff(body, &e.to_json(), "$", &mut problems);
            }
            if case.expect.chunks.is_some() {
                problems.push(format!("expected a stream, got an error: {}", e.to_json()));
            }
        }
        Outcome::Whole(body) => {
            compare_status(case.expect.status, 200, &mut problems);
            match &case.expect.body {
                Some(expected) => diff(expected, &body, "$", &mut problems),
                None => problems.push(format!("expected a stream, got a whole response: {body}")),
            }
        }
        Outcome::Stream(text) => {
            compare_status(case.expect.status, 200, &mut problems);
            let (chunks, done) = parse_sse(&text);
            match &case.expect.chunks {
                Some(expected) => {
                    if expected.len() != chunks.len() {
                        problems.push(format!(
                            "expected {} chunks, got {}:\n{text}",
                            expected.len(),
                            chunks.len()
                        ));
                    }
                    for (i, (e, a)) in expected.iter().zip(&chunks).enumerate() {
                        diff(e, a, &format!("chunks[{i}]"), &mut problems);
                    }
                }
                None => problems.push(format!("expected a whole response, got a stream:\n{text}")),
            }
            let want_done = case.expect.done.unwrap_or(true);
            if want_done != done {
                problems.push(format!(
                    "the stream {} with data: [DONE]",
                    if done { "ends" } else { "does not end" }
                ));
            }
        }
    }
    problems
}

enum Outcome {
    Error(ProxyError),
    Whole(Value),
    Stream(String),
}

fn execute(mapping: &Arc<Mapping>, op: Op, case: &Case, problems: &mut Vec<String>) -> Outcome {
    let bytes = case.request.to_string();
    let mut request = match parse_request(op, bytes.as_bytes()) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    let client_model = request["model"].as_str().unwrap_or_default().to_string();
    match mapping.resolve_model(&client_model) {
        Ok(m) => request["model"] = Value::String(m),
        Err(msg) => return Outcome::Error(model_not_found(msg)),
    }
    let mut headers = HeaderMap::new();
    for (k, v) in &case.headers {
        if let (Ok(n), Ok(v)) = (k.parse::<http::HeaderName>(), HeaderValue::from_str(v)) {
            headers.insert(n, v);
        }
    }
    let prepared = match proxy::prepare(mapping, op, &request, &headers) {
        Ok(p) => p,
        Err(e) => return Outcome::Error(e),
    };
    if let Some(expected) = &case.upstream_request {
        check_upstream(expected, &prepared.request, problems);
    }
    let Some(canned) = &case.upstream_response else {
        return Outcome::Error(ProxyError::Transform {
            message: "the case has no upstream_response".into(),
        });
    };
    let body = match (&canned.json, &canned.body, &canned.sse, &canned.ndjson) {
        (Some(j), None, None, None) => j.to_string(),
        (None, Some(b), None, None) | (None, None, Some(b), None) | (None, None, None, Some(b)) => {
            b.clone()
        }
        _ => {
            problems.push("upstream_response needs exactly one of json, body, sse, ndjson".into());
            String::new()
        }
    };
    if !(200..300).contains(&canned.status) {
        let retry_after = canned
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| HeaderValue::from_str(v).ok());
        return Outcome::Error(error_from(
            mapping,
            canned.status,
            retry_after,
            body.as_bytes(),
        ));
    }
    let upstream_headers = Value::Object(
        canned
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
            .collect(),
    );
    if !prepared.stream {
        return match proxy::translate_whole(
            mapping,
            op,
            &proxy::dialect_of(op),
            body.as_bytes(),
            &upstream_headers,
            &request,
            &client_model,
        ) {
            Ok((v, _)) => Outcome::Whole(v),
            Err(e) => Outcome::Error(e),
        };
    }
    let mut rw = match proxy::rewriter(
        mapping,
        op,
        &proxy::dialect_of(op),
        Arc::new(request),
        upstream_headers,
        &client_model,
        prepared.include_usage,
    ) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    // Feed the transcript in small pieces, as a network would, to exercise the framing.
    let mut out = Vec::new();
    for piece in body.as_bytes().chunks(5) {
        rw.feed(piece, &mut out);
    }
    rw.end(&mut out);
    Outcome::Stream(String::from_utf8_lossy(&out).into_owned())
}

fn check_upstream(
    expected: &ExpectedUpstream,
    actual: &http::Request<http_body_util::Full<bytes::Bytes>>,
    problems: &mut Vec<String>,
) {
    if let Some(m) = &expected.method
        && !m.eq_ignore_ascii_case(actual.method().as_str())
    {
        problems.push(format!(
            "upstream method: expected {m}, got {}",
            actual.method()
        ));
    }
    let pq = actual
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    if let Some(p) = &expected.path
        && p != pq
    {
        problems.push(format!("upstream path: expected {p}, got {pq}"));
    }
    for (k, v) in &expected.headers {
        match actual
            .headers()
            .get(k.as_str())
            .and_then(|h| h.to_str().ok())
        {
            Some(got) if got == v => {}
            Some(got) if v == "*" && !got.is_empty() => {}
            Some(got) => problems.push(format!("upstream header {k}: expected {v:?}, got {got:?}")),
            None => problems.push(format!("upstream header {k}: expected {v:?}, not sent")),
        }
    }
    if let Some(body) = &expected.body {
        let bytes = crate::ops::trace::full_bytes(actual.body());
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(actual) => diff(body, &actual, "upstream body", problems),
            Err(_) => problems.push(format!(
                "upstream body is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )),
        }
    }
}

fn compare_status(expected: u16, actual: u16, problems: &mut Vec<String>) {
    if expected != actual {
        problems.push(format!("status: expected {expected}, got {actual}"));
    }
}

/// The JSON of every `data:` event, and whether the stream ended with `[DONE]`.
fn parse_sse(text: &str) -> (Vec<Value>, bool) {
    let mut chunks = Vec::new();
    let mut done = false;
    for event in text.split("\n\n") {
        // A transcript's last event may lack its blank line.
        if let Some(data) = event.trim_end_matches('\n').strip_prefix("data: ") {
            if data == "[DONE]" {
                done = true;
            } else {
                chunks.push(serde_json::from_str(data).unwrap_or(Value::String(data.to_string())));
            }
        }
    }
    (chunks, done)
}

/// Compares `expected` with `actual`, recording each difference with its JSON path. The string
/// `"*"` in `expected` matches any value that is present (ids, timestamps).
pub fn diff(expected: &Value, actual: &Value, at: &str, problems: &mut Vec<String>) {
    match (expected, actual) {
        (Value::String(s), _) if s == "*" => {}
        (Value::Object(e), Value::Object(a)) => {
            for (k, ev) in e {
                match a.get(k) {
                    Some(av) => diff(ev, av, &format!("{at}.{k}"), problems),
                    None => problems.push(format!("{at}.{k}: expected {ev}, missing")),
                }
            }
            for (k, av) in a {
                if !e.contains_key(k) {
                    problems.push(format!("{at}.{k}: unexpected {av}"));
                }
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                problems.push(format!(
                    "{at}: expected {} items, got {}: {actual}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                diff(ev, av, &format!("{at}[{i}]"), problems);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if expected == actual => {}
        _ => problems.push(format!("{at}: expected {expected}, got {actual}")),
    }
}

/// Prints a report; `true` when every case passed.
pub fn print(report: &Report) -> bool {
    let mut s = String::new();
    for l in &report.lines {
        let _ = writeln!(s, "{l}");
    }
    let _ = writeln!(s, "{} passed, {} failed", report.passed, report.failed);
    print!("{s}");
    report.failed == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_reports_paths_and_honours_wildcards() {
        let mut p = Vec::new();
        diff(
            &json!({"id": "*", "a": [1, {"b": "x"}], "n": 1}),
            &json!({"id": "chatcmpl-1", "a": [1, {"b": "y"}], "n": 1.0, "extra": true}),
            "$",
            &mut p,
        );
        assert_eq!(
            p,
            vec![
                "$.a[1].b: expected \"x\", got \"y\"".to_string(),
                "$.extra: unexpected true".to_string()
            ]
        );
        let mut p = Vec::new();
        diff(&json!({"id": "*"}), &json!({}), "$", &mut p);
        assert_eq!(p.len(), 1, "a wildcard still needs the key");
    }
}
