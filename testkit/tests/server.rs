//! The scripted server, request recording, admin endpoints, connection accounting and the binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{get, send};
use rosetta_testkit::{FakeUpstream, Reply, SseEvent};
use serde_json::json;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn scripted_replies_in_order_last_repeats() {
    let fake = FakeUpstream::scripted(vec![
        Reply::json(429, json!({"error": "slow down"})).header("retry-after", "7"),
        Reply::sse([("a", json!({"n": 1})), ("b", json!({"n": 2}))])
            .pace(Duration::from_millis(40)),
        Reply::sse_events(vec![
            SseEvent::data(json!({"x": 1})),
            SseEvent::data("[DONE]").delay_ms(10),
        ]),
        Reply::ndjson([json!({"a": 1}), json!({"b": 2})]),
        Reply::raw(502, "text/html", "<html>bad gateway</html>"),
    ])
    .await;
    let r = send(
        fake.addr(),
        "POST",
        "/x?y=1",
        &[("X-Custom", "v")],
        "{\"k\": true}",
    )
    .await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
    assert_eq!(r.json(), json!({"error": "slow down"}));
    let r = get(fake.addr(), "/").await;
    assert_eq!(
        r.text(),
        "event: a\ndata: {\"n\":1}\n\nevent: b\ndata: {\"n\":2}\n\n"
    );
    assert!(r.spread() >= Duration::from_millis(30));
    assert_eq!(
        r.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(
        get(fake.addr(), "/").await.text(),
        "data: {\"x\":1}\n\ndata: [DONE]\n\n"
    );
    let r = get(fake.addr(), "/").await;
    assert_eq!(
        (r.header("content-type"), r.text().as_str()),
        (Some("application/x-ndjson"), "{\"a\":1}\n{\"b\":2}\n")
    );
    for _ in 0..2 {
        let r = get(fake.addr(), "/").await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (502, "<html>bad gateway</html>")
        );
    }
    let recorded = fake.requests();
    assert_eq!(recorded.len(), 6);
    assert_eq!(recorded[0].path, "/x?y=1");
    assert_eq!(recorded[0].header("x-custom"), Some("v"));
    assert!(recorded[0].headers.iter().any(|(n, _)| n == "x-custom"));
    assert_eq!(recorded[0].body, json!({"k": true}));
    assert_eq!(recorded[0].raw_body, "{\"k\": true}");
    assert_eq!(recorded[1].body, serde_json::Value::Null);

    let listed = get(fake.addr(), "/__requests").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 6);
    assert_eq!(
        listed[0],
        json!({"method": "POST", "path": "/x?y=1", "body": {"k": true},
        "headers": {"host": fake.addr().to_string(), "x-custom": "v", "content-length": "11"}})
    );
    let stats = get(fake.addr(), "/__stats").await.json();
    assert_eq!(stats, json!({"open_connections": 0, "requests": 6}));
    assert_eq!(
        send(fake.addr(), "DELETE", "/__requests", &[], "")
            .await
            .json(),
        json!({"cleared": 6})
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn reset_after_aborts_the_body() {
    let fake = FakeUpstream::scripted(vec![Reply::reset_after(
        200,
        "text/event-stream",
        ["data: {\"a\":1}\n\n", "data: {\"a\":2}\n\n"],
    )])
    .await;
    let r = get(fake.addr(), "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "data: {\"a\":1}\n\ndata: {\"a\":2}\n\n");
    assert!(r.error.is_some(), "expected an aborted body");
}

#[tokio::test]
async fn hang_never_answers_and_connections_are_counted() {
    let fake = FakeUpstream::scripted(vec![Reply::hang()]).await;
    let pending = tokio::time::timeout(Duration::from_millis(300), get(fake.addr(), "/")).await;
    assert!(pending.is_err(), "Hang must not answer");
    // The timed-out exchange dropped its connection; the fake notices.
    assert!(fake.wait_open_connections(0, Duration::from_secs(2)).await);

    let mut stream = tokio::net::TcpStream::connect(fake.addr()).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(fake.wait_open_connections(1, Duration::from_secs(2)).await);
    assert_eq!(
        get(fake.addr(), "/__stats").await.json()["open_connections"],
        1
    );
    drop(stream);
    assert!(fake.wait_open_connections(0, Duration::from_secs(2)).await);
}

#[tokio::test]
async fn drip_is_slow_and_drop_stops_the_server() {
    let fake = FakeUpstream::scripted(vec![Reply::drip(
        200,
        "text/plain",
        "abcdef",
        2,
        Duration::from_millis(30),
    )])
    .await;
    let r = get(fake.addr(), "/").await;
    assert_eq!(r.text(), "abcdef");
    assert!(r.chunks.len() >= 3 && r.spread() >= Duration::from_millis(50));
    let addr = fake.addr();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[test]
fn binary_prints_its_address_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .args(["--provider", "anthropic", "--api-key", "k1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fake-upstream");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on http://")
        .expect(&line)
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        let addr = url.parse().unwrap();
        let body =
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
                .to_string();
        let headers = [("x-api-key", "k1"), ("anthropic-version", "2023-06-01")];
        send(addr, "POST", "/v1/messages", &headers, &body)
            .await
            .status
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200);
    let bad = Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .args(["--provider", "bedrock"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[tokio::test]
async fn malformed_input_never_crashes_the_fakes() {
    let anthropic = FakeUpstream::anthropic().await;
    let ollama = FakeUpstream::ollama().await;
    let bodies = [
        "",
        "null",
        "[]",
        "\"x\"",
        "{",
        "{}",
        "{\"model\": 5}",
        "{\"model\":\"m\",\"max_tokens\":1e40,\"messages\":[]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[null, 5, \"x\"]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\"}]}]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[null, {}, {\"type\": 1}]}]}",
        "{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":\"object\",\"properties\":{\"a\":5}}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\"}],\"tools\":[{\"function\":{\"name\":5,\"parameters\":[]}}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[5]}],\"tools\":[5]}",
        "{\"model\":\"m\",\"messages\":[{}],\"stream\":\"yes\",\"format\":5,\"think\":[]}",
        "{\"model\":\"m\",\"prompt\":[1],\"input\":{\"a\":1}}",
    ];
    let anthropic_headers = common::ANTHROPIC_HEADERS;
    for body in bodies {
        let r = send(
            anthropic.addr(),
            "POST",
            "/v1/messages",
            anthropic_headers,
            body,
        )
        .await;
        assert!(r.status == 200 || r.status == 400, "{body}: {}", r.status);
        for path in [
            "/api/chat",
            "/api/generate",
            "/api/embed",
            "/api/embeddings",
        ] {
            let r = send(ollama.addr(), "POST", path, &[], body).await;
            assert!(r.status < 500, "{path} {body}: {}", r.status);
        }
    }
}
