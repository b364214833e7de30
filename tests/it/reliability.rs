//! Upstream faults on purpose: retries before the first byte, weighted endpoint pools with
//! passive health, fallbacks, and what a request can never change (host, mapping headers).

use std::time::{Duration, Instant};

use rosetta_testkit::{FakeUpstream, Reply};
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, stream, temp_dir};

const URL: &str = "/anthropic/v1/chat/completions";
const MODEL: &str = "claude-sonnet-4-5";

/// The shipped Anthropic mapping with its `base_url` line replaced by `upstream` (YAML lines
/// under `upstream:`, indented two spaces).
async fn anthropic_with(upstream: &str, env: &[(&str, String)]) -> Proxy {
    let upstream = upstream.to_string();
    Proxy::start_edited(
        "anthropic",
        move |src| {
            src.replacen(
                "  base_url: ${ANTHROPIC_BASE_URL:-https://api.anthropic.com}\n",
                &upstream,
                1,
            )
        },
        env,
    )
    .await
}

fn key() -> Vec<(&'static str, String)> {
    vec![("ANTHROPIC_API_KEY", "sk-ant-test-key-0123456789".into())]
}

/// An address where nothing listens (connections are refused).
async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A valid Anthropic message answer.
fn anthropic_ok(text: &str) -> Reply {
    Reply::json(
        200,
        json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": MODEL,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 3, "output_tokens": 2},
        }),
    )
}

fn overloaded(status: u16) -> Reply {
    Reply::json(
        status,
        json!({"type": "error", "error": {"type": "api_error", "message": "try again"}}),
    )
}

fn metric(proxy: &Proxy, line_start: &str) -> Option<f64> {
    proxy
        .metrics()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn health(proxy: &Proxy) -> Value {
    let r = super::support::request("GET", &proxy.url("/health"), None).await;
    assert_eq!(r.status, 200);
    r.json()
}

fn endpoints(h: &Value, mapping: &str) -> Vec<Value> {
    h["mappings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == mapping)
        .unwrap()["endpoints"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_5xx_is_retried_with_backoff_until_the_upstream_answers() {
    let fake =
        FakeUpstream::scripted(vec![overloaded(503), overloaded(500), anthropic_ok("hi")]).await;
    let proxy = anthropic_with(
        &format!(
            "  base_url: {}\n  retry: {{attempts: 3, backoff: 100ms}}\n",
            fake.base_url()
        ),
        &key(),
    )
    .await;
    let t = Instant::now();
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["message"]["content"], "hi");
    assert_eq!(fake.requests().len(), 3);
    // Backoff 100 ms then 200 ms, each with equal jitter: at least 50 + 100 ms.
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(
        metric(
            &proxy,
            "rosetta_upstream_retries_total{mapping=\"anthropic\",reason=\"5xx\"}"
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit_and_the_last_error_is_returned() {
    let fake = FakeUpstream::scripted(vec![overloaded(500)]).await;
    let proxy = anthropic_with(
        &format!(
            "  base_url: {}\n  retry: {{attempts: 2, backoff: 10ms}}\n",
            fake.base_url()
        ),
        &key(),
    )
    .await;
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.openai_error()["message"], "try again");
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_retry_after_is_honoured_and_a_long_one_is_passed_to_the_client() {
    let fake = FakeUpstream::scripted(vec![
        overloaded(429).header("retry-after", "1"),
        anthropic_ok("after the wait"),
        overloaded(429).header("retry-after-ms", "300"),
        anthropic_ok("after 300 ms"),
        overloaded(429).header("retry-after", "60"),
        anthropic_ok("never reached"),
    ])
    .await;
    let proxy = anthropic_with(
        &format!(
            "  base_url: {}\n  retry: {{backoff: 10ms, max_backoff: 5s}}\n",
            fake.base_url()
        ),
        &key(),
    )
    .await;
    let t = Instant::now();
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 200);
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    let t = Instant::now();
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 200);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(900),
        "{took:?}"
    );
    // 60 s is longer than max_backoff: no wait, the client gets the 429 and its retry-after.
    let t = Instant::now();
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "60");
    assert!(t.elapsed() < Duration::from_millis(500));
    assert_eq!(fake.requests().len(), 5);
}

#[tokio::test]
async fn no_retry_starts_past_the_budget() {
    let fake = FakeUpstream::scripted(vec![overloaded(503)]).await;
    let proxy = anthropic_with(
        &format!(
            "  base_url: {}\n  retry: {{attempts: 10, backoff: 400ms, max_backoff: 400ms, budget: 1s}}\n",
            fake.base_url()
        ),
        &key(),
    )
    .await;
    let t = Instant::now();
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 503);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    let n = fake.requests().len();
    assert!((2..=5).contains(&n), "{n} tries within a 1 s budget");
}

#[tokio::test]
async fn client_errors_and_first_byte_timeouts_are_not_retried_by_default() {
    let fake = FakeUpstream::anthropic().await;
    let proxy = anthropic_with(
        &format!(
            "  base_url: {}\n  timeouts: {{first_byte: 300ms}}\n",
            fake.base_url()
        ),
        &key(),
    )
    .await;
    let r = post(&proxy.url(URL), &chat(MODEL, "FAIL 400")).await;
    assert_eq!(r.status, 400);
    assert_eq!(fake.requests().len(), 1);
    fake.clear_requests();
    let r = post(&proxy.url(URL), &chat(MODEL, "HANG")).await;
    assert_eq!(r.status, 504);
    assert_eq!(
        fake.requests().len(),
        1,
        "the upstream may be working on it: not sent twice"
    );
}

#[tokio::test]
async fn a_timeout_is_retried_on_another_endpoint_when_asked() {
    let hanging = FakeUpstream::scripted(vec![Reply::hang()]).await;
    let good = FakeUpstream::anthropic().await;
    let proxy = anthropic_with(
        &format!(
            "  endpoints:\n    - base_url: {}\n      weight: 1000\n    - base_url: {}\n      weight: 1\n  timeouts: {{first_byte: 300ms}}\n  retry: {{on: [timeout, connect]}}\n",
            hanging.base_url(),
            good.base_url()
        ),
        &key(),
    )
    .await;
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(good.requests().len(), 1);
}

#[tokio::test]
async fn a_refused_endpoint_is_skipped_taken_out_and_reported_in_health() {
    let dead = closed_port().await;
    let good = FakeUpstream::anthropic().await;
    let proxy = anthropic_with(
        &format!(
            "  endpoints:\n    - base_url: {dead}\n      weight: 1\n    - base_url: {}\n      weight: 1\n  health: {{failures: 2, cooldown: 30s}}\n",
            good.base_url()
        ),
        &key(),
    )
    .await;
    for _ in 0..20 {
        let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
        assert_eq!(r.status, 200, "every request succeeds: {}", r.text);
    }
    assert_eq!(good.requests().len(), 20);
    // Two refusals take the dead endpoint out; then it is no longer tried.
    let retries = metric(
        &proxy,
        "rosetta_upstream_retries_total{mapping=\"anthropic\",reason=\"connect\"}",
    )
    .unwrap();
    assert_eq!(retries, 2.0, "{}", proxy.metrics());
    let h = health(&proxy).await;
    assert_eq!(h["status"], "ok", "one endpoint is still in rotation");
    let e = endpoints(&h, "anthropic");
    assert_eq!(e[0]["url"], dead.as_str());
    assert_eq!(e[0]["state"], "out");
    assert!(e[0]["back_in_ms"].as_u64().unwrap() > 20_000);
    assert!(
        e[0]["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach the upstream"),
        "{e:?}"
    );
    assert_eq!(e[1]["state"], "healthy");
    assert_eq!(e[1]["requests"], 20);
    assert!(
        proxy
            .metrics()
            .contains("rosetta_endpoint_ejections_total{endpoint=\"http://127.0.0.1:"),
        "{}",
        proxy.metrics()
    );
}

#[tokio::test]
async fn a_reload_keeps_the_health_of_unchanged_endpoints() {
    let dead = closed_port().await;
    let good = FakeUpstream::anthropic().await;
    let dir = temp_dir();
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/anthropic.yaml"),
    )
    .unwrap();
    let write = |extra: &str| {
        let upstream = format!(
            "  endpoints:\n    - base_url: {dead}\n    - base_url: {}\n  health: {{failures: 1, cooldown: 60s}}\n{extra}",
            good.base_url()
        );
        std::fs::write(
            dir.join("anthropic.yaml"),
            src.replacen(
                "  base_url: ${ANTHROPIC_BASE_URL:-https://api.anthropic.com}\n",
                &upstream,
                1,
            ),
        )
        .unwrap();
    };
    write("");
    let proxy = Proxy::start_dir(&dir, &key()).await;
    for _ in 0..10 {
        assert_eq!(post(&proxy.url(URL), &chat(MODEL, "hi")).await.status, 200);
    }
    assert_eq!(
        endpoints(&health(&proxy).await, "anthropic")[0]["state"],
        "out"
    );
    // Same endpoints, another setting: the dead one stays out.
    write("  retry: {attempts: 2}\n");
    let reload = || {
        let ms = rosetta::mapping::load_dir(&dir, &|k| {
            (k == "ANTHROPIC_API_KEY").then(|| "k-0123456789".to_string())
        })
        .unwrap();
        proxy
            .state
            .replace_mappings(rosetta::serving::state::MappingSet::new(
                ms,
                &proxy.state.metrics,
            ));
    };
    reload();
    let h = health(&proxy).await;
    assert_eq!(h["mappings_generation"], 1);
    assert_eq!(endpoints(&h, "anthropic")[0]["state"], "out");
    // Other endpoints: fresh health.
    write("  retry: {attempts: 2}\n  timeouts: {connect: 5s}\n");
    reload();
    assert_eq!(
        endpoints(&health(&proxy).await, "anthropic")[0]["state"],
        "healthy"
    );
}

#[tokio::test]
async fn idle_upstream_connections_are_closed_after_keep_alive() {
    let fake = FakeUpstream::anthropic().await;
    let proxy = anthropic_with(
        &format!(
            "  base_url: {}\n  timeouts: {{keep_alive: 300ms}}\n",
            fake.base_url()
        ),
        &key(),
    )
    .await;
    assert_eq!(post(&proxy.url(URL), &chat(MODEL, "hi")).await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.open_connections() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fake.open_connections(),
        0,
        "the pooled connection was closed"
    );
}

#[tokio::test]
async fn traffic_is_split_by_weight() {
    let a = FakeUpstream::anthropic().await;
    let b = FakeUpstream::anthropic().await;
    let proxy = anthropic_with(
        &format!(
            "  endpoints:\n    - base_url: {}\n      weight: 3\n    - base_url: {}\n      weight: 1\n",
            a.base_url(),
            b.base_url()
        ),
        &key(),
    )
    .await;
    for _ in 0..200 {
        assert_eq!(post(&proxy.url(URL), &chat(MODEL, "hi")).await.status, 200);
    }
    let (na, nb) = (a.requests().len(), b.requests().len());
    assert_eq!(na + nb, 200);
    // Expected 150 / 50; binomial sd ≈ 6.
    assert!((120..=180).contains(&na), "{na} / {nb}");
}

#[tokio::test]
async fn each_endpoint_sends_its_own_key_over_the_mapping_headers() {
    let a = FakeUpstream::anthropic_with_key("key-for-a-0123456789").await;
    let b = FakeUpstream::anthropic_with_key("key-for-b-0123456789").await;
    let proxy = anthropic_with(
        &format!(
            "  endpoints:\n    - base_url: {}\n      headers: {{x-api-key: \"${{KEY_A}}\"}}\n    - base_url: {}\n      headers: {{x-api-key: \"${{KEY_B}}\"}}\n",
            a.base_url(),
            b.base_url()
        ),
        &[
            ("ANTHROPIC_API_KEY", "the-shared-key-0123456789".into()),
            ("KEY_A", "key-for-a-0123456789".into()),
            ("KEY_B", "key-for-b-0123456789".into()),
        ],
    )
    .await;
    for _ in 0..30 {
        let r = post(&proxy.url(URL), &chat(MODEL, "hi")).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert!(!a.requests().is_empty() && !b.requests().is_empty());
    assert!(
        a.requests()
            .iter()
            .all(|r| r.header("x-api-key") == Some("key-for-a-0123456789"))
    );
    assert!(
        b.requests()
            .iter()
            .all(|r| r.header("x-api-key") == Some("key-for-b-0123456789"))
    );
}

#[tokio::test]
async fn bytes_already_sent_are_never_retried() {
    let fake = FakeUpstream::anthropic().await;
    let proxy = anthropic_with(&format!("  base_url: {}\n", fake.base_url()), &key()).await;
    let mut body = chat(MODEL, "RESET");
    body["stream"] = json!(true);
    let s = stream(&proxy.url(URL), &body).await;
    assert!(!s.done(), "a reset stream does not end with [DONE]");
    assert!(s.text().contains("\"error\""), "{}", s.text());
    assert_eq!(fake.requests().len(), 1);
}

/// Two mappings in one directory: `anthropic` (edited) and the shipped `ollama`.
async fn with_fallback(anthropic_upstream: &str, models: Option<&str>, ollama: &str) -> Proxy {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let dir = temp_dir();
    let mut src = std::fs::read_to_string(root.join("anthropic.yaml"))
        .unwrap()
        .replacen(
            "  base_url: ${ANTHROPIC_BASE_URL:-https://api.anthropic.com}\n",
            anthropic_upstream,
            1,
        );
    if let Some(models) = models {
        src = src.replacen(
            "models:\n  - claude-sonnet-4-5\n",
            &format!("models:\n{models}"),
            1,
        );
    }
    std::fs::write(dir.join("anthropic.yaml"), src).unwrap();
    std::fs::copy(root.join("ollama.yaml"), dir.join("ollama.yaml")).unwrap();
    Proxy::start_dir(
        &dir,
        &[
            ("ANTHROPIC_API_KEY", "k-0123456789".into()),
            ("OLLAMA_BASE_URL", ollama.to_string()),
        ],
    )
    .await
}

#[tokio::test]
async fn a_mapping_falls_back_when_every_endpoint_fails() {
    let dead = closed_port().await;
    let ollama = FakeUpstream::ollama().await;
    let proxy = with_fallback(
        &format!(
            "  base_url: {dead}\n  retry: {{attempts: 2, backoff: 10ms}}\n  fallback: {{mapping: ollama, model: llama3.2}}\n"
        ),
        None,
        &ollama.base_url(),
    )
    .await;
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["x-rosetta-fallback"], "ollama/llama3.2");
    let v = r.json();
    assert_eq!(v["model"], "llama3.2");
    assert!(
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("hello")
    );
    assert_eq!(ollama.requests()[0].body["model"], "llama3.2");
    // Streams fall back too (nothing had reached the client).
    let mut body = chat(MODEL, "stream me");
    body["stream"] = json!(true);
    let s = stream(&proxy.url(URL), &body).await;
    s.assert_valid();
    assert!(s.content().contains("stream me"));
    assert_eq!(
        metric(
            &proxy,
            "rosetta_fallbacks_total{fallback=\"ollama\",mapping=\"anthropic\"}"
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn a_model_fallback_wins_and_client_errors_do_not_fall_back() {
    // 400 for a request that says BAD, 500 otherwise.
    let failing = FakeUpstream::with_handler(|r| {
        if r.raw_body.contains("BAD") {
            Reply::json(
                400,
                json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}),
            )
        } else {
            overloaded(500)
        }
    })
    .await;
    let ollama = FakeUpstream::ollama().await;
    let proxy = with_fallback(
        &format!(
            "  base_url: {}\n  retry: {{attempts: 1}}\n  fallback: {{mapping: ollama, model: qwen2.5}}\n",
            failing.base_url()
        ),
        Some("  - id: claude-sonnet-4-5\n    fallback: {mapping: ollama, model: llama3.2}\n"),
        &ollama.base_url(),
    )
    .await;
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["x-rosetta-fallback"], "ollama/llama3.2");
    let r = post(&proxy.url(URL), &chat("claude-haiku-4-5", "hello")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["x-rosetta-fallback"], "ollama/qwen2.5");
    // A 400 is the request's fault: another upstream would not help.
    let r = post(&proxy.url(URL), &chat(MODEL, "BAD")).await;
    assert_eq!(r.status, 400);
    assert!(r.headers.get("x-rosetta-fallback").is_none());
    assert_eq!(ollama.requests().len(), 2);
}

#[tokio::test]
async fn with_every_endpoint_out_the_fallback_is_used_at_once() {
    let hanging = FakeUpstream::scripted(vec![overloaded(503)]).await;
    let ollama = FakeUpstream::ollama().await;
    let proxy = with_fallback(
        &format!(
            "  base_url: {}\n  retry: {{attempts: 1}}\n  health: {{failures: 1, cooldown: 60s}}\n  fallback: {{mapping: ollama, model: llama3.2}}\n",
            hanging.base_url()
        ),
        None,
        &ollama.base_url(),
    )
    .await;
    for _ in 0..3 {
        let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
        assert_eq!(r.status, 200);
    }
    assert_eq!(
        hanging.requests().len(),
        1,
        "out of rotation after one failure: not asked again"
    );
    let h = health(&proxy).await;
    assert_eq!(h["status"], "degraded");
    assert_eq!(endpoints(&h, "anthropic")[0]["state"], "out");
}

#[tokio::test]
async fn a_request_cannot_choose_the_host_or_the_mapping_headers() {
    let fake = FakeUpstream::azure().await;
    let dir = temp_dir();
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/azure.yaml"),
    )
    .unwrap()
    .replacen(
        "upstream:\n",
        "upstream:\n  forward_headers: [x-ms-client-request-id, x-tag]\n",
        1,
    );
    std::fs::write(dir.join("azure.yaml"), src).unwrap();
    let proxy = Proxy::start_dir(
        &dir,
        &[
            ("AZURE_OPENAI_BASE_URL", fake.base_url()),
            ("AZURE_OPENAI_API_KEY", "azure-key-0123456789".into()),
        ],
    )
    .await;
    let url = proxy.url("/azure/v1/chat/completions");
    // Model names that try to leave the deployment path or add a query.
    for model in [
        "../../admin",
        "gpt-4o?api-version=evil",
        "gpt-4o#frag",
        "a/../../b",
        "x%2F..%2Fy",
    ] {
        let r = post(&url, &chat(model, "hello")).await;
        assert_eq!(r.status, 400, "{model}: {}", r.text);
        assert_eq!(r.openai_error()["param"], "model");
    }
    assert!(fake.requests().is_empty(), "nothing reached the upstream");
    let r = raw_post(
        &url,
        &chat("gpt-4o", "hello"),
        &[
            ("api-key", "attacker"),
            ("host", "evil.example"),
            ("x-tag", "kept"),
            ("x-ms-client-request-id", "dropped"),
            ("connection", "x-ms-client-request-id"),
        ],
    )
    .await;
    assert_eq!(r.0, 200, "{}", r.1);
    let seen = &fake.requests()[0];
    assert_eq!(seen.header("api-key"), Some("azure-key-0123456789"));
    assert_eq!(seen.header("x-tag"), Some("kept"));
    assert_eq!(
        seen.header("x-ms-client-request-id"),
        None,
        "a header the client's Connection names is hop-by-hop"
    );
    assert!(seen.header("host").unwrap().starts_with("127.0.0.1:"));
    assert!(
        seen.path
            .starts_with("/openai/deployments/gpt-4o/chat/completions?")
    );
}

/// POSTs JSON with extra headers; returns the status and the body.
async fn raw_post(url: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, String) {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<bytes::Bytes>>();
    let mut req = http::Request::post(url).header("content-type", "application/json");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let r = client.request(req).await.unwrap();
    let status = r.status().as_u16();
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap();
    (
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    )
}

#[tokio::test]
async fn an_upstream_echoing_the_key_never_shows_it_to_the_client() {
    let fake = FakeUpstream::scripted(vec![Reply::json(
        401,
        json!({"type": "error", "error": {"type": "authentication_error",
               "message": "invalid x-api-key: sk-ant-test-key-0123456789"}}),
    )])
    .await;
    let proxy = anthropic_with(&format!("  base_url: {}\n", fake.base_url()), &key()).await;
    let r = post(&proxy.url(URL), &chat(MODEL, "hello")).await;
    assert_eq!(r.status, 401);
    assert!(!r.text.contains("sk-ant-test-key-0123456789"), "{}", r.text);
    assert!(r.text.contains("[redacted]"), "{}", r.text);
    assert!(!proxy.metrics().contains("sk-ant-test-key"));
    let h = health(&proxy).await;
    assert!(!h.to_string().contains("sk-ant-test-key"));
}

#[test]
fn bad_pool_and_fallback_settings_are_load_errors_with_file_and_line() {
    let dir = temp_dir();
    std::fs::write(
        dir.join("a.yaml"),
        "upstream:\n  base_url: http://x\n  endpoints:\n    - base_url: http://y\nroutes:\n  chat:\n    path: /x\n    response: {content: $.t}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.yaml"),
        "upstream:\n  endpoints:\n    - base_url: http://y\n      weight: 0\n  forward_headers: [connection, x-ok]\n  retry: {attempts: 0, on: [sometimes]}\nroutes:\n  chat:\n    path: /x\n    response: {content: $.t}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("c.yaml"),
        "upstream:\n  base_url: http://z\n  fallback: {mapping: nowhere}\nroutes:\n  chat:\n    path: /x\n    response: {content: $.t}\n",
    )
    .unwrap();
    let errors = rosetta::mapping::load_dir(&dir, &|_| None).unwrap_err();
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let all = text.join("\n");
    for want in [
        "a.yaml:1: upstream: give either `base_url` or `endpoints`, not both",
        "b.yaml:4: upstream.endpoints[0].weight: must be at least 1",
        "b.yaml:5: upstream.forward_headers: \"connection\" is a hop-by-hop header",
        "b.yaml:6: upstream.retry.attempts: must be at least 1",
        "b.yaml:6: upstream.retry.on: unknown retry condition \"sometimes\"",
        "c.yaml:3: upstream.fallback.mapping: fallback mapping \"nowhere\" does not exist",
    ] {
        assert!(all.contains(want), "missing {want:?} in:\n{all}");
    }
}

#[test]
fn rosetta_check_never_prints_a_secret() {
    let dir = temp_dir();
    // A key with a character no header may hold: a load error about that header.
    std::fs::write(
        dir.join("a.yaml"),
        "upstream:\n  base_url: http://x\n  headers:\n    x-api-key: ${THE_KEY}\nroutes:\n  chat:\n    path: /x\n    response: {content: $.t}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
        .args(["check", "--mappings"])
        .arg(&dir)
        .env("THE_KEY", "sk-very-secret-0123456789\u{1}")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success());
    assert!(
        text.contains("a.yaml:4: upstream.headers.x-api-key"),
        "{text}"
    );
    assert!(!text.contains("sk-very-secret"), "{text}");
    // A good mapping: `ok` lines and notes name variables, never values.
    std::fs::write(
        dir.join("a.yaml"),
        "upstream:\n  base_url: http://x\n  headers:\n    x-api-key: ${THE_KEY}\nroutes:\n  chat:\n    path: /x\n    response: {content: $.t}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
        .args(["check", "--mappings"])
        .arg(&dir)
        .env("THE_KEY", "sk-very-secret-0123456789")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1 mapping(s) OK") && !text.contains("sk-very-secret"),
        "{text}"
    );
}
