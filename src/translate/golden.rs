//! `rosetta test`: golden cases that let mapping authors test a mapping without writing Rust.
//!
//! A case is one YAML file in `FIXTURES/NAME/` (NAME is the mapping): an OpenAI request, the
//! upstream request it must produce, a canned upstream response (JSON, an SSE or an NDJSON
//! transcript) and the OpenAI response or chunk sequence expected back. Cases run through the
//! same pure phases as the server ([`crate::translate::proxy::prepare`], [`crate::translate::proxy::translate_whole`],
//! [`crate::translate::proxy::rewriter`]); no socket is opened. `docs/mapping-reference.md` documents the
//! format.
//!
//! A case with `route: responses` speaks the Responses API: its request is converted into the
//! canonical chat request by the server's own [`crate::translate::responses::start`] (as with no
//! ledger), and the answer is written in the Responses dialect. What such an answer takes from
//! chance and the clock is made comparable: `created_at` is [`CASE_TIME`], and `Steady`
//! renames the ids Rosetta mints and checks and pins `completed_at`.
//!
//! A case with `route: messages` speaks the Messages API: its request goes through the
//! server's own start of a Messages call ([`crate::translate::messages`]: converted to the
//! chat request, or taken as it is by a mapping whose chat route declares `native:
//! [messages]`), its headers are the client's (the version header is required, as by the
//! server), and the answer, a stream's events (`expect.events`) and errors are the dialect's.
//! `Steady` renames the `msg_` and `toolu_` ids Rosetta mints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use crate::dialect::Dialect;
use crate::dialect::openai::now_secs;
use crate::dialect::responses::Echo;
use crate::error::ProxyError;
use crate::mapping::{Mapping, Op};
use crate::translate::request::{model_not_found, parse_request};
use crate::translate::{fidelity, messages, proxy, responses};
use crate::upstream::error_from;

use steady::Steady;

/// The Unix time a Responses case's response is created at (`created_at`), so that a case gives
/// the same answer on every run. `completed_at` is shown as this time too (see `Steady`).
pub const CASE_TIME: u64 = 1_700_000_000;

/// One golden case, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    #[serde(default)]
    pub description: String,
    /// `chat` (default), `completions`, `embeddings`, `responses` or `messages`.
    #[serde(default)]
    pub route: Option<String>,
    /// The OpenAI request body (a Responses or Messages request for those routes).
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

/// What the client must get: a status and a body, or a chunk or event sequence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default = "ok")]
    pub status: u16,
    pub body: Option<Value>,
    /// A chat or legacy stream's `data:` JSON, in order.
    pub chunks: Option<Vec<Value>>,
    /// A Responses or Messages stream's events, in order: each event's `data:` JSON (its
    /// `type` is the `event:` line, which must agree).
    pub events: Option<Vec<Value>>,
    /// Whether the stream ends with `data: [DONE]` (default: true for `chunks`, false for
    /// `events`: a Responses or Messages stream has none).
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
        "responses" => Op::Responses,
        "messages" => Op::Messages,
        other => {
            return vec![format!(
                "unknown route {other:?} (chat, completions, embeddings, responses or messages)"
            )];
        }
    };
    // The Responses and Messages dialects stream named events and mint ids.
    let responses = matches!(op, Op::Responses | Op::Messages);
    if responses && case.expect.chunks.is_some() {
        let dialect = if op == Op::Messages {
            "Messages"
        } else {
            "Responses"
        };
        problems.push(format!(
            "a {dialect} stream is expected as `expect.events`, not `chunks`"
        ));
    }
    if !responses && case.expect.events.is_some() {
        problems.push(
            "`expect.events` is for `route: responses` or `messages`; this stream has `chunks`"
                .into(),
        );
    }
    let expects_stream = case.expect.chunks.is_some() || case.expect.events.is_some();
    let mut steady = Steady::new(now_secs(), op == Op::Messages);
    let outcome = execute(mapping, op, case, &mut problems);
    match outcome {
        Outcome::Error(e) => {
            let (status, body) = if op == Op::Messages {
                crate::dialect::messages::error::body(&e)
            } else {
                (e.status(), e.to_json())
            };
            compare_status(case.expect.status, status.as_u16(), &mut problems);
            if let Some(expected) = &case.expect.body {
                diff(expected, &body, "$", &mut problems);
            }
            if expects_stream {
                problems.push(format!("expected a stream, got an error: {}", e.to_json()));
            }
        }
        Outcome::Whole(mut body) => {
            compare_status(case.expect.status, 200, &mut problems);
            if responses {
                steady.apply(&mut body, "$", &mut problems);
            }
            match &case.expect.body {
                Some(expected) => diff(expected, &body, "$", &mut problems),
                None => problems.push(format!("expected a stream, got a whole response: {body}")),
            }
        }
        Outcome::Stream(text) if responses => {
            compare_status(case.expect.status, 200, &mut problems);
            let (events, done) = parse_events(&text);
            let mut datas = Vec::with_capacity(events.len());
            for (i, (kind, mut data)) in events.into_iter().enumerate() {
                let at = format!("events[{i}]");
                if data.get("type").and_then(Value::as_str) != Some(kind.as_str()) {
                    problems.push(format!(
                        "{at}: the event line says {kind:?}, the data's type is {}",
                        data.get("type").unwrap_or(&Value::Null)
                    ));
                }
                steady.apply(&mut data, &at, &mut problems);
                datas.push(data);
            }
            match &case.expect.events {
                Some(expected) => {
                    if expected.len() != datas.len() {
                        let listed: String = datas.iter().map(|d| format!("\n  - {d}")).collect();
                        problems.push(format!(
                            "expected {} events, got {}:{listed}",
                            expected.len(),
                            datas.len()
                        ));
                    }
                    for (i, (e, a)) in expected.iter().zip(&datas).enumerate() {
                        diff(e, a, &format!("events[{i}]"), &mut problems);
                    }
                }
                None => problems.push(format!("expected a whole response, got a stream:\n{text}")),
            }
            check_done(case.expect.done.unwrap_or(false), done, &mut problems);
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
            check_done(case.expect.done.unwrap_or(true), done, &mut problems);
        }
    }
    problems
}

fn check_done(want: bool, done: bool, problems: &mut Vec<String>) {
    if want != done {
        problems.push(format!(
            "the stream {} with data: [DONE]",
            if done { "ends" } else { "does not end" }
        ));
    }
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
    let mut headers = HeaderMap::new();
    for (k, v) in &case.headers {
        if let (Ok(n), Ok(v)) = (k.parse::<http::HeaderName>(), HeaderValue::from_str(v)) {
            headers.insert(n, v);
        }
    }
    // As the server does: a Responses or Messages request becomes the canonical chat request
    // first (a Messages request stays as it is for a mapping that speaks the dialect).
    let mut earlier = Vec::new();
    let dialect = if op == Op::Messages {
        if let Err(e) = messages::check_version(&headers) {
            return Outcome::Error(e);
        }
        if messages::native(mapping) {
            Dialect::MessagesNative
        } else {
            match begin_messages(mapping, &request, &headers) {
                Ok((chat, dropped)) => {
                    request = chat;
                    earlier = dropped;
                    Dialect::Messages
                }
                Err(e) => return Outcome::Error(e),
            }
        }
    } else if op == Op::Responses {
        match begin_responses(mapping, &request) {
            Ok((chat, echo, dropped)) => {
                request = chat;
                earlier = dropped;
                Dialect::Responses(echo)
            }
            Err(e) => return Outcome::Error(e),
        }
    } else {
        proxy::dialect_of(op)
    };
    // What the mapping does not translate: refused here under strictness, as by the server.
    if !dialect.is_native()
        && let Err(e) = fidelity::settle(mapping, op, &request, earlier, &headers)
    {
        return Outcome::Error(e);
    }
    match mapping.resolve_model(&client_model) {
        Ok(m) => request["model"] = Value::String(m),
        Err(msg) => return Outcome::Error(model_not_found(msg)),
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
            &dialect,
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
        &dialect,
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

/// The server's start of a Responses call, without a ledger (as `rosetta serve --ledger off`:
/// nothing is stored, `store` is false, `previous_response_id` is refused): the chat request
/// the mapping reads, with what the mapping cannot take left out (and named, as the start of
/// the fidelity report), and the echo the answer is written with, created at [`CASE_TIME`].
fn begin_responses(
    mapping: &Mapping,
    request: &Value,
) -> Result<(Value, Arc<Echo>, Vec<String>), ProxyError> {
    if responses::previous_id(request)?.is_some() {
        return Err(responses::no_store());
    }
    let mut started = responses::start(request, &[], CASE_TIME, false)?;
    responses::settle_dropped(&mut started.dropped, mapping, &mut started.chat);
    Ok((started.chat, Arc::new(started.echo), started.dropped))
}

/// The server's start of a Messages call for a mapping that does not speak the dialect: the
/// chat request, and what the mapping cannot take of it, left out.
fn begin_messages(
    mapping: &Mapping,
    request: &Value,
    headers: &HeaderMap,
) -> Result<(Value, Vec<String>), ProxyError> {
    let mut started = messages::start(request, headers)?;
    messages::settle_dropped(&mut started.dropped, mapping, &mut started.chat)?;
    Ok((started.chat, started.dropped))
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

/// Each event of a Responses stream (its `event:` name and its `data:` JSON), and whether the
/// stream ended with `data: [DONE]`.
fn parse_events(text: &str) -> (Vec<(String, Value)>, bool) {
    let mut events = Vec::new();
    let mut done = false;
    for block in text.split("\n\n") {
        let mut kind = "";
        let mut data = None;
        for line in block.lines() {
            if let Some(k) = line.strip_prefix("event: ") {
                kind = k;
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = Some(d);
            }
        }
        match data {
            Some("[DONE]") => done = true,
            Some(d) => events.push((
                kind.to_string(),
                serde_json::from_str(d).unwrap_or(Value::String(d.to_string())),
            )),
            None => {}
        }
    }
    (events, done)
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

#[path = "golden_steady.rs"]
mod steady;

#[cfg(test)]
#[path = "golden_tests.rs"]
mod tests;
