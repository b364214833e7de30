//! What one upstream answer may make Rosetta hold: one stream event (SSE), one NDJSON line and
//! one whole body are capped. Past a cap the client gets an error in the OpenAI shape and the
//! upstream connection is closed, not kept for another request.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::raw_upstream::{Outcome, RawUpstream, head, repeated};
use super::support::{Proxy, Served, chat, request, stream};

const MIB: u64 = 1024 * 1024;

/// The error chunk that ended a stream.
fn stream_error(text: &str) -> Value {
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|c| c.get("error").cloned())
        .unwrap_or_else(|| panic!("no error chunk in the stream ({} bytes)", text.len()))
}

#[tokio::test]
async fn an_sse_event_over_the_cap_ends_the_stream_and_closes_the_upstream() {
    // One event of 64 MiB: `data:` lines of 64 KiB and never the blank line that ends it.
    let total = 64 * MIB;
    let mut line = b"data: ".to_vec();
    line.resize(64 * 1024 - 1, b'x');
    line.push(b'\n');
    let mut fake =
        RawUpstream::start(head("text/event-stream", total), repeated(line, total)).await;
    let proxy = Proxy::start(&[
        ("ANTHROPIC_BASE_URL", fake.base.clone()),
        ("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789".into()),
    ])
    .await;
    let mut body = chat("claude-sonnet-4-5", "hello");
    body["stream"] = json!(true);
    let s = stream(&proxy.url("/anthropic/v1/chat/completions"), &body).await;
    assert_eq!(s.status, 200);
    let error = stream_error(&s.text());
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("limit of 8388608 bytes"),
        "the error names the cap: {error}"
    );
    assert_eq!(error["type"], "server_error", "{error}");
    assert_eq!(error["code"], "upstream_too_large", "{error}");
    assert_eq!(
        fake.outcome(Duration::from_secs(10)).await,
        Some(Outcome::Closed),
        "Rosetta closed the upstream connection mid-body"
    );
    assert!(fake.written() < total, "{} bytes written", fake.written());
}

#[tokio::test]
async fn an_ndjson_line_over_the_cap_ends_the_stream_and_closes_the_upstream() {
    // A 12 MiB line (under the old 16 MiB line limit), then 20 MiB of ordinary lines.
    let mut pieces: Vec<Vec<u8>> =
        vec![br#"{"model":"llama3.2","message":{"role":"assistant","content":""#.to_vec()];
    pieces.extend(repeated(vec![b'x'; 64 * 1024], 12 * MIB));
    pieces.push(br#""},"done":false}"#.to_vec());
    pieces.push(b"\n".to_vec());
    let line = br#"{"model":"llama3.2","message":{"role":"assistant","content":"y"},"done":false}"#;
    let mut ordinary = line.to_vec();
    ordinary.push(b'\n');
    let block = ordinary.repeat(64);
    let blocks = 20 * MIB / block.len() as u64;
    pieces.extend(repeated(block.clone(), blocks * block.len() as u64));
    pieces.push(
        b"{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n"
            .to_vec(),
    );
    let total: u64 = pieces.iter().map(|p| p.len() as u64).sum();
    let mut fake =
        RawUpstream::start(head("application/x-ndjson", total), pieces.into_iter()).await;
    let proxy = Proxy::start(&[("OLLAMA_BASE_URL", fake.base.clone())]).await;
    let mut body = chat("llama3.2", "hello");
    body["stream"] = json!(true);
    let s = stream(&proxy.url("/ollama/v1/chat/completions"), &body).await;
    assert_eq!(s.status, 200);
    let error = stream_error(&s.text());
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("limit of 8388608 bytes"),
        "the error names the cap: {error}"
    );
    assert_eq!(error["code"], "upstream_too_large", "{error}");
    assert!(
        s.content().is_empty(),
        "nothing of the oversized line reached the client"
    );
    assert_eq!(
        fake.outcome(Duration::from_secs(10)).await,
        Some(Outcome::Closed),
        "Rosetta closed the upstream connection mid-body"
    );
    assert!(fake.written() < total, "{} bytes written", fake.written());
}

#[tokio::test]
async fn a_whole_body_over_the_cap_is_a_502_and_closes_the_upstream() {
    let total = 8 * MIB;
    let mut fake = RawUpstream::start(
        head("application/json", total),
        repeated(vec![b' '; 64 * 1024], total),
    )
    .await;
    let mappings = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let served = Served::spawn(
        &mappings,
        &[("OLLAMA_BASE_URL", &fake.base)],
        &["--max-upstream-body", "1MiB"],
    );
    let r = request(
        "POST",
        &served.url("/ollama/v1/chat/completions"),
        Some(chat("llama3.2", "hello").to_string()),
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text);
    let error = r.openai_error();
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("limit of 1048576 bytes"),
        "{error}"
    );
    assert_eq!(error["code"], "upstream_too_large", "{error}");
    assert_eq!(
        fake.outcome(Duration::from_secs(10)).await,
        Some(Outcome::Closed),
        "Rosetta closed the upstream connection without reading the whole body"
    );
}
