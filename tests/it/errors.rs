//! Upstream and client failures: each ends in a defined OpenAI error, never a clean finish.

use std::time::Duration;

use rosetta_testkit::FakeUpstream;
use serde_json::json;

use super::support::{Proxy, chat, post, request, stream, with_upstream_line};

async fn anthropic() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::anthropic().await;
    let proxy = Proxy::start(&[
        ("ANTHROPIC_BASE_URL", fake.base_url()),
        ("ANTHROPIC_API_KEY", "k".into()),
    ])
    .await;
    (fake, proxy)
}

const URL: &str = "/anthropic/v1/chat/completions";

#[tokio::test]
async fn upstream_status_errors_keep_class_message_and_retry_after() {
    let (_fake, proxy) = anthropic().await;
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "FAIL 429")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    let e = r.openai_error();
    assert_eq!(e["type"], "rate_limit_error");
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "FAIL 529")).await;
    assert_eq!(r.status, 503, "529 overloaded maps to 503");
    assert_eq!(r.openai_error()["type"], "overloaded_error");
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "FAIL 500")).await;
    assert_eq!(r.status, 500);
    r.openai_error();
    let mut body = chat("claude-sonnet-4-5", "FAIL 400");
    body["stream"] = json!(true);
    let r = post(&proxy.url(URL), &body).await;
    assert_eq!(
        r.status, 400,
        "a stream that fails before its first byte is a plain HTTP error"
    );
    r.openai_error();
    assert!(
        proxy.metrics().contains(
            "rosetta_upstream_errors_total{kind=\"upstream_status\",mapping=\"anthropic\"} 4"
        ),
        "{}",
        proxy.metrics()
    );
}

#[tokio::test]
async fn garbage_upstream_body_is_502() {
    let (_fake, proxy) = anthropic().await;
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "GARBAGE")).await;
    assert_eq!(r.status, 502);
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("not JSON")
    );
}

#[tokio::test]
async fn stream_answered_with_json_is_502_before_the_first_byte() {
    let (_fake, proxy) = anthropic().await;
    let mut body = chat("claude-sonnet-4-5", "GARBAGE");
    body["stream"] = json!(true);
    let r = post(&proxy.url(URL), &body).await;
    assert_eq!(r.status, 502);
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("JSON body")
    );
}

#[tokio::test]
async fn n_above_one_is_refused_clearly() {
    let (fake, proxy) = anthropic().await;
    let mut body = chat("claude-sonnet-4-5", "Hi");
    body["n"] = json!(2);
    let r = post(&proxy.url(URL), &body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.openai_error()["param"], "n");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy = Proxy::start(&[("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{port}"))]).await;
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "Hi")).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.openai_error()["code"], "upstream_unreachable");
}

#[tokio::test]
async fn silent_upstream_is_504() {
    let fake = FakeUpstream::anthropic().await;
    let proxy = Proxy::start_edited(
        "anthropic",
        |s| with_upstream_line(s, "timeouts: {first_byte: 300ms}"),
        &[
            ("ANTHROPIC_BASE_URL", fake.base_url()),
            ("ANTHROPIC_API_KEY", "k".into()),
        ],
    )
    .await;
    let started = std::time::Instant::now();
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "HANG")).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.openai_error()["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn midstream_failures_end_in_an_error_event_not_a_finish() {
    let (_fake, proxy) = anthropic().await;
    for trigger in ["MIDSTREAM ERROR", "RESET", "STREAM GARBAGE"] {
        let mut body = chat("claude-sonnet-4-5", &format!("{trigger} go"));
        body["stream"] = json!(true);
        let s = stream(&proxy.url(URL), &body).await;
        assert_eq!(s.status, 200);
        assert!(
            !s.done(),
            "{trigger}: a failed stream must not end with [DONE]"
        );
        let chunks = s.chunks();
        assert!(
            chunks
                .iter()
                .any(|c| c["choices"][0]["delta"]["content"].is_string()),
            "{trigger}: content before the failure"
        );
        assert!(
            chunks
                .iter()
                .all(|c| c["choices"][0]["finish_reason"].is_null()),
            "{trigger}: no finish_reason"
        );
        let last = chunks.last().unwrap();
        for k in ["message", "type", "param", "code"] {
            assert!(last["error"].get(k).is_some(), "{trigger}: {last}");
        }
    }
    let m = proxy.metrics();
    assert!(
        m.contains("rosetta_active_streams{mapping=\"anthropic\"} 0"),
        "{m}"
    );
    assert!(m.contains("kind=\"upstream_stream_error\""), "{m}");
}

#[tokio::test]
async fn idle_upstream_mid_stream_is_an_error_event() {
    let fake = FakeUpstream::anthropic().await;
    let proxy = Proxy::start_edited(
        "anthropic",
        |s| with_upstream_line(s, "timeouts: {idle: 100ms}"),
        &[
            ("ANTHROPIC_BASE_URL", fake.base_url()),
            ("ANTHROPIC_API_KEY", "k".into()),
        ],
    )
    .await;
    let mut body = chat("claude-sonnet-4-5", "SLOW and steady");
    body["stream"] = json!(true);
    let s = stream(&proxy.url(URL), &body).await;
    assert!(!s.done());
    assert_eq!(
        s.chunks().last().unwrap()["error"]["code"],
        "upstream_timeout"
    );
}

#[tokio::test]
async fn client_disconnect_releases_the_upstream() {
    let (fake, proxy) = anthropic().await;
    let mut body = chat(
        "claude-sonnet-4-5",
        "SLOW long answer with many many words in it",
    );
    body["stream"] = json!(true);
    let url = proxy.url(URL);
    let task = tokio::spawn(async move { stream(&url, &body).await });
    assert!(fake.wait_open_connections(1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    task.abort();
    let _ = task.await;
    assert!(
        fake.wait_open_connections(0, Duration::from_secs(1)).await,
        "the upstream connection must close within a second"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        proxy
            .metrics()
            .contains("rosetta_active_streams{mapping=\"anthropic\"} 0")
    );
}

#[tokio::test]
async fn bad_client_input() {
    let (_fake, proxy) = anthropic().await;
    let r = request("POST", &proxy.url(URL), Some("{not json".into())).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.openai_error()["type"], "invalid_request_error");
    let r = post(&proxy.url(URL), &json!({"model": "m"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.openai_error()["param"], "messages");
    let r = post(
        &proxy.url(URL),
        &json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.openai_error()["param"], "model");
    let big = "x".repeat(rosetta::limits::DEFAULT_MAX_REQUEST_BODY + 10);
    let r = request("POST", &proxy.url(URL), Some(big)).await;
    assert_eq!(r.status, 413);
    r.openai_error();
}
