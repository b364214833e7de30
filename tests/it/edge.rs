//! The client edge: inbound API keys, body size and read timeouts, the concurrency limit and
//! graceful shutdown. In-process where the server's state is enough, the `rosetta` binary where
//! signals, logs or the exit code matter.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rosetta::limits::Limits;
use rosetta::serving::auth::Auth;
use rosetta::serving::server::serve;
use rosetta::serving::state::State;
use rosetta_testkit::{FakeUpstream, Reply, SseEvent};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::support::{Resp, chat, serve_anthropic, stream, temp_dir, with_upstream_line};

const URL: &str = "/anthropic/v1/chat/completions";
const ALICE: &str = "sk-alice-0123456789abcdef";
const ANON: &str = "sk-anon-fedcba9876543210";

/// Rosetta in-process with the shipped mappings (or `dir`), its state set up by `setup`.
struct Edge {
    base: String,
    state: Arc<State>,
    _stop: oneshot::Sender<()>,
}

impl Edge {
    async fn start(
        dir: Option<&Path>,
        env: &[(&str, String)],
        setup: impl FnOnce(State) -> State,
    ) -> Edge {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let mappings =
            rosetta::mapping::load_dir(dir.unwrap_or(&shipped), &|k| env.get(k).cloned())
                .unwrap_or_else(|e| panic!("mappings failed to load: {e:?}"));
        let state = Arc::new(setup(State::new(mappings)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let s = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = serve(listener, s, async {
                let _ = rx.await;
            })
            .await;
        });
        Edge {
            base,
            state,
            _stop: tx,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    fn metrics(&self) -> String {
        self.state.metrics.render()
    }

    /// Polls the metrics until they contain `line` (at most 2 s).
    async fn wait_metric(&self, line: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(2);
        while !self.metrics().contains(line) {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

async fn anthropic() -> (FakeUpstream, Vec<(&'static str, String)>) {
    let fake = FakeUpstream::anthropic_with_key("k").await;
    let env = vec![
        ("ANTHROPIC_BASE_URL", fake.base_url()),
        ("ANTHROPIC_API_KEY", "k".to_string()),
    ];
    (fake, env)
}

fn two_keys() -> Auth {
    Auth::load(Some(&format!("alice:{ALICE},{ANON}")), None).unwrap()
}

/// One request with extra headers.
async fn call(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Resp {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = tokio::time::timeout(Duration::from_secs(20), client.request(req))
        .await
        .expect("response in time")
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Resp {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// Checks a 401 in the OpenAI shape and returns its body.
fn assert_unauthorized(r: &Resp, case: &str) -> String {
    assert_eq!(r.status, 401, "{case}: {}", r.text);
    assert_eq!(r.headers["www-authenticate"], "Bearer", "{case}");
    let e = r.openai_error();
    assert_eq!(e["type"], "invalid_request_error", "{case}: {e}");
    assert_eq!(e["code"], "invalid_api_key", "{case}: {e}");
    assert!(e["param"].is_null(), "{case}: {e}");
    assert!(r.headers.contains_key("x-request-id"), "{case}");
    r.text.clone()
}

#[tokio::test]
async fn api_keys_gate_every_call_but_health() {
    let (fake, env) = anthropic().await;
    // The mapping forwards the client's Authorization header: with auth on it must still never
    // reach the upstream, since it carries Rosetta's own key.
    let dir = temp_dir();
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/anthropic.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("anthropic.yaml"),
        with_upstream_line(&src, "forward_headers: [authorization, x-user-id]"),
    )
    .unwrap();
    let edge = Edge::start(Some(&dir), &env, |s| s.with_auth(two_keys())).await;
    let body = chat("claude-sonnet-4-5", "Hi");
    let same_length_wrong = "sk-alice-0123456789abcdee";
    assert_eq!(same_length_wrong.len(), ALICE.len());
    let refused = [
        ("no header", None),
        ("wrong key", Some(bearer("sk-wrong"))),
        ("right length, wrong key", Some(bearer(same_length_wrong))),
        ("key without scheme", Some(ALICE.to_string())),
        ("basic scheme", Some(format!("Basic {ALICE}"))),
        ("empty bearer", Some("Bearer".to_string())),
    ];
    for (case, auth) in &refused {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let r = call("POST", &edge.url(URL), &headers, Some(&body)).await;
        let text = assert_unauthorized(&r, case);
        for secret in [ALICE, ANON, "sk-wrong", same_length_wrong] {
            assert!(
                !text.contains(secret),
                "{case}: the body quotes a key: {text}"
            );
        }
    }
    assert!(
        fake.requests().is_empty(),
        "a refused call never reaches the upstream"
    );
    // Every other path needs a key too, so a stranger learns no mapping name.
    for (method, path) in [
        ("GET", "/v1/models"),
        ("GET", "/nope"),
        ("POST", "/v1/chat/completions"),
    ] {
        let r = call(method, &edge.url(path), &[], Some(&body)).await;
        let text = assert_unauthorized(&r, path);
        assert!(!text.contains("anthropic"), "{path}: {text}");
    }
    // Each of the two keys works; the scheme is case-insensitive.
    for (key, user) in [(bearer(ALICE), "alice"), (format!("bearer {ANON}"), "anon")] {
        let r = call(
            "POST",
            &edge.url(URL),
            &[("authorization", &key), ("x-user-id", user)],
            Some(&body),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.json()["choices"][0]["message"]["content"].is_string());
    }
    let models = call(
        "GET",
        &edge.url("/v1/models"),
        &[("authorization", &bearer(ALICE))],
        None,
    )
    .await;
    assert_eq!(models.status, 200, "{}", models.text);
    let seen = fake.requests();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for r in &seen {
        assert!(
            r.header("authorization").is_none(),
            "the client's key was forwarded: {r:?}"
        );
        assert!(
            r.header("x-user-id").is_some(),
            "other forwarded headers stay"
        );
        let all = format!("{r:?}");
        assert!(!all.contains(ALICE) && !all.contains(ANON), "{all}");
    }
    // Health stays open; metrics too (not protected), counting refusals and never a key.
    let h = call("GET", &edge.url("/health"), &[], None).await;
    assert_eq!(h.status, 200);
    let m = call("GET", &edge.url("/metrics"), &[], None).await;
    assert_eq!(m.status, 200);
    assert!(
        m.text
            .contains("rosetta_rejected_total{reason=\"unauthorized\"} 9"),
        "{}",
        m.text
    );
    for secret in [ALICE, ANON, "sk-wrong"] {
        assert!(!m.text.contains(secret));
    }
}

#[tokio::test]
async fn protected_metrics_need_a_key_and_health_never_does() {
    let (_fake, env) = anthropic().await;
    let edge = Edge::start(None, &env, |s| {
        s.with_auth(two_keys().protect_metrics(true))
    })
    .await;
    let r = call("GET", &edge.url("/metrics"), &[], None).await;
    assert_unauthorized(&r, "/metrics without a key");
    let r = call(
        "GET",
        &edge.url("/metrics"),
        &[("authorization", "Bearer nope")],
        None,
    )
    .await;
    assert_unauthorized(&r, "/metrics with a wrong key");
    let r = call(
        "GET",
        &edge.url("/metrics"),
        &[("authorization", &bearer(ANON))],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("rosetta_rejected_total"), "{}", r.text);
    let r = call("GET", &edge.url("/health"), &[], None).await;
    assert_eq!(r.status, 200);
    // Without keys, protecting the metrics protects nothing: auth is off.
    let open = Edge::start(None, &env, |s| {
        s.with_auth(Auth::off().protect_metrics(true))
    })
    .await;
    assert_eq!(
        call("GET", &open.url("/metrics"), &[], None).await.status,
        200
    );
}

/// Streams `body` on a client task; the handle yields the whole stream.
fn open_stream(url: String, body: Value) -> tokio::task::JoinHandle<super::support::Streamed> {
    tokio::spawn(async move { stream(&url, &body).await })
}

fn slow_stream_body() -> Value {
    let mut body = chat("claude-sonnet-4-5", "SLOW one two");
    body["stream"] = json!(true);
    body
}

#[tokio::test]
async fn concurrency_limit_refuses_with_503_until_streams_end() {
    let (fake, env) = anthropic().await;
    let limits = Limits {
        max_concurrent: 2,
        ..Limits::default()
    };
    let edge = Edge::start(None, &env, |s| s.with_limits(limits)).await;
    let a = open_stream(edge.url(URL), slow_stream_body());
    let b = open_stream(edge.url(URL), slow_stream_body());
    assert!(fake.wait_open_connections(2, Duration::from_secs(5)).await);
    assert!(edge.wait_metric("rosetta_in_flight_requests 2").await);
    let r = call(
        "POST",
        &edge.url(URL),
        &[],
        Some(&chat("claude-sonnet-4-5", "Hi")),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.headers["retry-after"], "1");
    let e = r.openai_error();
    assert_eq!(e["type"], "server_error");
    assert_eq!(e["code"], "overloaded");
    assert!(e["message"].as_str().unwrap().contains("limit of 2"), "{e}");
    // The models listing is an API call too; health and metrics are never limited.
    let r = call("GET", &edge.url("/anthropic/v1/models"), &[], None).await;
    assert_eq!(r.status, 503);
    assert_eq!(
        call("GET", &edge.url("/health"), &[], None).await.status,
        200
    );
    let m = call("GET", &edge.url("/metrics"), &[], None).await;
    assert_eq!(m.status, 200);
    assert!(
        m.text
            .contains("rosetta_rejected_total{reason=\"concurrency\"} 2"),
        "{}",
        m.text
    );
    for s in [a.await.unwrap(), b.await.unwrap()] {
        s.assert_valid();
    }
    assert!(edge.wait_metric("rosetta_in_flight_requests 0").await);
    let r = call(
        "POST",
        &edge.url(URL),
        &[],
        Some(&chat("claude-sonnet-4-5", "Hi")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_client_leaving_mid_stream_frees_its_place() {
    let (fake, env) = anthropic().await;
    let limits = Limits {
        max_concurrent: 1,
        ..Limits::default()
    };
    let edge = Edge::start(None, &env, |s| s.with_limits(limits)).await;
    let a = open_stream(edge.url(URL), slow_stream_body());
    assert!(fake.wait_open_connections(1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = call(
        "POST",
        &edge.url(URL),
        &[],
        Some(&chat("claude-sonnet-4-5", "Hi")),
    )
    .await;
    assert_eq!(r.status, 503, "the stream holds the only place");
    a.abort();
    let _ = a.await;
    assert!(
        edge.wait_metric("rosetta_in_flight_requests 0").await,
        "the permit is freed when the client goes away:\n{}",
        edge.metrics()
    );
    let r = call(
        "POST",
        &edge.url(URL),
        &[],
        Some(&chat("claude-sonnet-4-5", "Hi")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Writes `sent` on a raw connection, then stalls; returns when the server closes it, with what
/// it answered and how long that took.
async fn stall_after(addr: &str, sent: &[u8]) -> (String, Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    s.write_all(sent).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_or_silent_clients_are_cut_off_at_the_header_timeout() {
    let (fake, env) = anthropic().await;
    let limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let edge = Edge::start(None, &env, |s| s.with_limits(limits)).await;
    let partial = format!("POST {URL} HTTP/1.1\r\nhost: x\r\ncontent-type: app");
    for (case, sent) in [
        ("partial headers", partial.as_bytes()),
        ("partial request line", b"POST /anthropic/v1/cha".as_slice()),
        ("nothing at all", b"".as_slice()),
        ("partial HTTP/2 preface", b"PRI * HTTP/2.0\r\n".as_slice()),
    ] {
        let (answer, took) = stall_after(&edge.addr(), sent).await;
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
            "{case}: closed after {took:?}"
        );
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "{case}: {answer}"
        );
    }
    assert!(fake.requests().is_empty());
    assert!(
        edge.metrics()
            .contains("rosetta_rejected_total{reason=\"header_timeout\"} 4"),
        "{}",
        edge.metrics()
    );
    // A prompt client is served as usual.
    let r = call(
        "POST",
        &edge.url(URL),
        &[],
        Some(&chat("claude-sonnet-4-5", "Hi")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_trickled_body_gets_408() {
    let (fake, env) = anthropic().await;
    let limits = Limits {
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let edge = Edge::start(None, &env, |s| s.with_limits(limits)).await;
    let head = format!(
        "POST {URL} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\": "
    );
    let (answer, took) = stall_after(&edge.addr(), head.as_bytes()).await;
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1500),
        "answered after {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let e: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    assert_eq!(e["error"]["code"], "request_timeout", "{e}");
    assert!(e["error"]["param"].is_null());
    assert!(fake.requests().is_empty());
    assert!(
        edge.metrics()
            .contains("rosetta_rejected_total{reason=\"body_timeout\"} 1"),
        "{}",
        edge.metrics()
    );
}

#[tokio::test]
async fn the_body_size_limit_is_configurable() {
    let (fake, env) = anthropic().await;
    let limits = Limits {
        max_request_body: 1000,
        ..Limits::default()
    };
    let edge = Edge::start(None, &env, |s| s.with_limits(limits)).await;
    let fits = chat("claude-sonnet-4-5", &"a".repeat(900));
    assert!(fits.to_string().len() <= 1000);
    let r = call("POST", &edge.url(URL), &[], Some(&fits)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let big = chat("claude-sonnet-4-5", &"a".repeat(1000));
    let r = call("POST", &edge.url(URL), &[], Some(&big)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    let e = r.openai_error();
    assert_eq!(e["code"], "request_too_large");
    assert!(e["message"].as_str().unwrap().contains("1000 bytes"), "{e}");
    // A chunked body has no length to check up front: it is cut off while read.
    let chunk = "b".repeat(600);
    let raw = format!(
        "POST {URL} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let (answer, _) = stall_after(&edge.addr(), raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert_eq!(fake.requests().len(), 1);
    assert!(
        edge.metrics()
            .contains("rosetta_rejected_total{reason=\"too_large\"} 2"),
        "{}",
        edge.metrics()
    );
}

// ----- the binary -----

/// Sends one HTTP/1.1 request over a plain socket (closing it after) and returns the answer.
fn raw_http(addr: &str, method: &str, path: &str, extra: &str, body: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// The status `key` gets for a chat call on the child at `addr`.
async fn status_with(addr: &str, key: &str) -> u16 {
    let (addr, header) = (addr.to_string(), format!("authorization: Bearer {key}\r\n"));
    let body = chat("claude-sonnet-4-5", "Hi").to_string();
    blocking(move || status_of(&raw_http(&addr, "POST", URL, &header, &body))).await
}

#[tokio::test]
async fn keys_never_reach_logs_metrics_or_error_bodies() {
    let right = "sk-rosetta-right-key-5150";
    let wrong = "sk-rosetta-wrong-key-4242";
    let fake = FakeUpstream::anthropic_with_key("k").await;
    let keys = format!("alice:{right}");
    let served = serve_anthropic(
        &fake,
        &[("RUST_LOG", "trace"), ("ROSETTA_API_KEYS", &keys)],
        &["--trace", "all"],
    );
    let addr = served.addr().to_string();
    let body = chat("claude-sonnet-4-5", "Hi").to_string();
    let mut stream_body = chat("claude-sonnet-4-5", "Hi");
    stream_body["stream"] = json!(true);
    let stream_body = stream_body.to_string();
    let (a, b, s) = (addr.clone(), body.clone(), stream_body.clone());
    let answers = blocking(move || {
        let h = |k: &str| format!("authorization: Bearer {k}\r\n");
        [
            raw_http(&a, "POST", URL, &h(wrong), &b),
            raw_http(&a, "POST", URL, "", &b),
            raw_http(&a, "POST", URL, &h(right), &b),
            raw_http(&a, "POST", URL, &h(right), &s),
            raw_http(&a, "GET", "/metrics", &h(right), ""),
            raw_http(&a, "GET", "/v1/models", &h(right), ""),
        ]
    })
    .await;
    let statuses: Vec<u16> = answers.iter().map(|a| status_of(a)).collect();
    assert_eq!(statuses, [401, 401, 200, 200, 200, 200], "{answers:#?}");
    assert!(answers[3].contains("data: [DONE]"), "{}", answers[3]);
    for answer in &answers {
        assert!(
            !answer.contains(right) && !answer.contains(wrong),
            "a key in an answer: {answer}"
        );
    }
    let log = served.drain();
    assert!(
        log.contains("API keys required") && log.contains("alice"),
        "the start-up says auth is on:\n{log}"
    );
    assert!(
        log.contains("no valid API key")
            && (log.contains("reason=\"invalid\"") || log.contains("reason=invalid")),
        "refusals are logged:\n{log}"
    );
    assert!(log.contains("client request"), "the trace is on:\n{log}");
    assert!(!log.contains(right), "the right key leaked into the log");
    assert!(
        !log.contains(wrong),
        "the presented key leaked into the log"
    );
    assert!(
        !log.contains(&right[11..21]) && !log.contains(&wrong[11..21]),
        "part of a key leaked into the log"
    );
    drop(served);
}

#[tokio::test]
async fn keys_file_with_names_and_comments_is_reread_on_sighup() {
    let fake = FakeUpstream::anthropic_with_key("k").await;
    let dir = temp_dir();
    let file = dir.join("keys.txt");
    std::fs::write(
        &file,
        "# Rosetta inbound keys\n\nalice:sk-file-alice-111\n   # the CI\nsk-file-bare-222\n",
    )
    .unwrap();
    let path = file.to_str().unwrap().to_string();
    let mut served = serve_anthropic(&fake, &[("ROSETTA_API_KEYS_FILE", &path)], &[]);
    let started = served.drain();
    assert!(started.contains("keys=2"), "{started}");
    assert!(
        started.contains("alice") && started.contains("key-1"),
        "{started}"
    );
    let addr = served.addr().to_string();
    assert_eq!(status_with(&addr, "sk-file-alice-111").await, 200);
    assert_eq!(status_with(&addr, "sk-file-bare-222").await, 200);
    assert_eq!(status_with(&addr, "sk-file-bob-333").await, 401);
    assert_eq!(status_with(&addr, "# Rosetta inbound keys").await, 401);

    std::fs::write(&file, "bob:sk-file-bob-333\n").unwrap();
    served.signal("HUP");
    assert!(
        served
            .wait_line("API keys reloaded", Duration::from_secs(5))
            .is_some(),
        "{}",
        served.drain()
    );
    assert_eq!(status_with(&addr, "sk-file-bob-333").await, 200);
    assert_eq!(status_with(&addr, "sk-file-alice-111").await, 401);

    // A broken file (and then a missing one) keeps the keys in force, with an error logged.
    std::fs::write(&file, "bob:sk-file-bob-333\ncarol:sk with space\n").unwrap();
    served.signal("HUP");
    let line = served
        .wait_line("API keys not reloaded", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no error logged:\n{}", served.drain()));
    assert!(line.contains(":2"), "the error names the line: {line}");
    assert!(!line.contains("sk with space"), "{line}");
    assert_eq!(status_with(&addr, "sk-file-bob-333").await, 200);
    std::fs::remove_file(&file).unwrap();
    served.signal("HUP");
    assert!(
        served
            .wait_line("API keys not reloaded", Duration::from_secs(5))
            .is_some()
    );
    assert_eq!(status_with(&addr, "sk-file-bob-333").await, 200);
    let (status, _) = served.wait_exit(Duration::from_millis(100));
    assert!(status.is_none(), "SIGHUP must not stop the server");
}

#[tokio::test]
async fn an_empty_keys_file_refuses_to_start() {
    let dir = temp_dir();
    let file = dir.join("keys.txt");
    std::fs::write(&file, "# no keys yet\n").unwrap();
    let out = blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
            .args(["serve", "--listen", "127.0.0.1:0", "--api-keys-file"])
            .arg(&file)
            .env(
                "ROSETTA_MAPPINGS",
                concat!(env!("CARGO_MANIFEST_DIR"), "/mappings"),
            )
            .output()
            .unwrap()
    })
    .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn sigterm_lets_the_running_stream_finish_then_exits_zero() {
    let fake = FakeUpstream::anthropic_with_key("k").await;
    let mut served = serve_anthropic(&fake, &[], &[]);
    let url = served.url(URL);
    let mut body = chat("claude-sonnet-4-5", "SLOW hello");
    body["stream"] = json!(true);
    let running = open_stream(url, body);
    assert!(fake.wait_open_connections(1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    served.signal("TERM");
    assert!(
        served
            .wait_line("shutting down", Duration::from_secs(5))
            .is_some()
    );
    let refused = tokio::net::TcpStream::connect(served.addr()).await;
    assert!(
        refused.is_err(),
        "a new connection after the signal must be refused"
    );
    let s = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the stream ends")
        .unwrap();
    s.assert_valid();
    assert!(s.content().contains("SLOW hello"), "{}", s.text());
    let (status, _) = served.wait_exit(Duration::from_secs(5));
    let log = served.drain();
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{log}");
    assert!(log.contains("every in-flight request finished"), "{log}");
}

#[tokio::test]
async fn sigint_stops_an_idle_server_with_exit_zero() {
    let fake = FakeUpstream::anthropic_with_key("k").await;
    let mut served = serve_anthropic(&fake, &[], &[]);
    served.signal("INT");
    let (status, took) = served.wait_exit(Duration::from_secs(5));
    assert_eq!(
        status.map(|s| s.code()),
        Some(Some(0)),
        "{}",
        served.drain()
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn past_the_grace_a_hanging_stream_is_cut_and_the_exit_is_still_zero() {
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
        "role": "assistant", "model": "claude-sonnet-4-5", "content": [], "stop_reason": null,
        "usage": {"input_tokens": 3, "output_tokens": 1}}});
    let block = json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}});
    let delta = |t: &str| json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}});
    let fake = FakeUpstream::scripted(vec![Reply::sse_events(vec![
        SseEvent::named("message_start", start),
        SseEvent::named("content_block_start", block),
        SseEvent::named("content_block_delta", delta("Hel")),
        SseEvent::named("content_block_delta", delta("lo")).delay(Duration::from_secs(60)),
    ])])
    .await;
    let mut served = serve_anthropic(&fake, &[], &["--shutdown-grace", "1s"]);
    let mut body = chat("claude-sonnet-4-5", "Hi");
    body["stream"] = json!(true);
    let hanging = open_stream(served.url(URL), body);
    assert!(fake.wait_open_connections(1, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    served.signal("TERM");
    let (status, took) = served.wait_exit(Duration::from_secs(6));
    let log = served.drain();
    assert_eq!(status.map(|s| s.code()), Some(Some(0)), "{log}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "exited {took:?} after the signal:\n{log}"
    );
    assert!(log.contains("shutdown grace over"), "{log}");
    let s = tokio::time::timeout(Duration::from_secs(5), hanging)
        .await
        .expect("the cut stream ends for the client")
        .unwrap();
    assert!(!s.done(), "a cut stream has no [DONE]");
}

/// An admin key list with no key in it leaves the admin API off (404), exactly as no list does:
/// it must never answer without a key.
#[tokio::test]
async fn an_empty_admin_key_list_keeps_the_admin_api_off() {
    let (_fake, env) = anthropic().await;
    for keys in ["", " , "] {
        let edge = Edge::start(None, &env, |s| {
            s.with_admin(Auth::load(Some(keys), None).unwrap())
        })
        .await;
        let r = call("GET", &edge.url("/admin/usage"), &[], None).await;
        assert_eq!(r.status, 404, "admin keys {keys:?}: {}", r.text);
        assert!(
            r.text.contains("the admin API is off"),
            "{keys:?}: {}",
            r.text
        );
    }
    let edge = Edge::start(None, &env, |s| s.with_admin(Auth::off())).await;
    let r = call("GET", &edge.url("/admin/usage"), &[], None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("the admin API is off"), "{}", r.text);
}

/// The binary with what the compose example passes when nothing is set: every key, file and
/// header variable empty. It starts, lets calls in (no inbound keys) and keeps /admin off.
#[tokio::test]
async fn empty_rosetta_variables_count_as_unset() {
    let fake = FakeUpstream::anthropic_with_key("k").await;
    let mut vars: Vec<(&str, &str)> = [
        "ROSETTA_API_KEYS",
        "ROSETTA_API_KEYS_FILE",
        "ROSETTA_PROTECT_METRICS",
        "ROSETTA_BUDGETS",
        "ROSETTA_USER_HEADER",
        "ROSETTA_ADMIN_KEYS",
        "ROSETTA_TRACE",
        "ROSETTA_MAX_BODY",
        "ROSETTA_WATCH",
    ]
    .into_iter()
    .map(|name| (name, ""))
    .collect();
    // A ledger, so that /admin/usage has something to report if it were on.
    let ledger = format!("sqlite://{}", temp_dir().join("ledger.db").display());
    vars.push(("ROSETTA_LEDGER", &ledger));
    let served = serve_anthropic(&fake, &vars, &[]);
    let r = call("GET", &served.url("/admin/usage"), &[], None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("the admin API is off"), "{}", r.text);
    let body = chat("claude-sonnet-4-5", "Hello");
    let r = call(
        "POST",
        &served.url("/anthropic/v1/chat/completions"),
        &[],
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Text logs into a pipe (as `docker logs` reads them) carry no colour escape codes, even
/// without NO_COLOR; NO_COLOR is for terminals.
#[test]
fn text_logs_have_no_colour_codes_off_a_terminal() {
    use std::io::BufRead;
    let dir = temp_dir();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/anthropic.yaml"),
        dir.join("anthropic.yaml"),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rosetta"))
        .args(["serve", "--listen", "127.0.0.1:0", "--watch=false"])
        .args(["--ledger", "off", "--log-format", "text", "--mappings"])
        .arg(&dir)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("listening on"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in a piped log:\n{log:?}"
    );
}
