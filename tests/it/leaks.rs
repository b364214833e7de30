//! Secrets never reach a client (issue 13, item 1): an upstream that echoes the key it was
//! sent, in every way an upstream can answer, and no 8-byte piece of the key comes out, in any
//! field, on any path; what the client sent itself is echoed as it was (no guessing oracle).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::support::{Proxy, chat, post, stream};

const KEY: &str = "sk-ant-api03-Zq8XwV3mK7pL2nR9tY4uB6cD1eF5gH0jA";
const URL: &str = "/anthropic/v1/chat/completions";
const ALICE: &str = "rosetta-alice-7Hq2Lx9Pw4Zr";
const BOB: &str = "rosetta-bob-3Kd8Vn1Qs6Ty";
const ADMIN: &str = "rosetta-admin-5Mf0Gc2Ju8Xe";

/// An Anthropic-shaped upstream that answers the way the last user message names
/// (`MODE` or `MODE:<offset>`), quoting the `x-api-key` it was sent.
async fn echoing_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc = service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(answer(req).await)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

async fn answer(req: Request<Incoming>) -> Response<Full<Bytes>> {
    let key = req
        .headers()
        .get("x-api-key")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body: Value =
        serde_json::from_slice(&req.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let text = body["messages"][0]["content"]
        .as_str()
        .or_else(|| body["messages"][0]["content"][0]["text"].as_str())
        .unwrap_or_default()
        .to_string();
    let (mode, arg) = text.split_once(':').unwrap_or((&text, "0"));
    let at: usize = arg.parse().unwrap_or(0);
    let padded = format!("{}{key} trailing words", "x".repeat(at));
    let sse = |events: &[(&str, Value)]| {
        let mut s = String::new();
        for (name, data) in events {
            s.push_str(&format!("event: {name}\ndata: {data}\n\n"));
        }
        s
    };
    let start = json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"usage":{"input_tokens":1,"output_tokens":0}}});
    let (status, ctype, out) = match mode {
        "TYPE" => (
            400,
            "application/json",
            json!({"type":"error","error":{"type": format!("invalid_request_error {key}"),"message":"bad request"}}).to_string(),
        ),
        "MESSAGE" => (
            401,
            "application/json",
            json!({"type":"error","error":{"type":"authentication_error","message": format!("invalid x-api-key {padded}")}}).to_string(),
        ),
        "TEXT200" => (200, "text/plain", format!("OK {padded}")),
        // An upstream that somehow knows another client's Rosetta key.
        "ALICE" => (
            200,
            "application/json",
            json!({"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text": format!("alice uses {ALICE} and admin {ADMIN}")}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}).to_string(),
        ),
        "TEXTERR" => (500, "text/plain", padded.clone()),
        "CONTENT" => (
            200,
            "application/json",
            json!({"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text": padded}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}).to_string(),
        ),
        "JSON_TO_STREAM" => (
            200,
            "application/json",
            json!({"type":"error","error":{"type":"api_error","message": padded}}).to_string(),
        ),
        "SSE_ERROR" => (
            200,
            "text/event-stream",
            sse(&[
                ("message_start", start),
                ("error", json!({"type":"error","error":{"type":"api_error","message": padded}})),
            ]),
        ),
        "SSE_NOT_JSON" => (
            200,
            "text/event-stream",
            format!("event: message_start\ndata: {start}\n\nevent: content_block_delta\ndata: not json {padded}\n\n"),
        ),
        "SSE_TEXT" => {
            // The key in text deltas, split across two events.
            let (a, b) = key.split_at(at.min(key.len()));
            let delta = |t: &str| json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text": t}});
            (
                200,
                "text/event-stream",
                sse(&[
                    ("message_start", start),
                    ("content_block_start", json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})),
                    ("content_block_delta", delta(a)),
                    ("content_block_delta", delta(b)),
                    ("content_block_stop", json!({"type":"content_block_stop","index":0})),
                    ("message_delta", json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}})),
                    ("message_stop", json!({"type":"message_stop"})),
                ]),
            )
        }
        _ => (200, "application/json", "{}".to_string()),
    };
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .header("x-upstream-echo", key)
        .body(Full::new(Bytes::from(out)))
        .unwrap()
}

/// Fails when any 8-byte piece of the key is in `text`.
fn assert_no_piece(text: &str, what: &str) {
    for w in KEY.as_bytes().windows(8) {
        let piece = std::str::from_utf8(w).unwrap();
        assert!(!text.contains(piece), "{what}: {piece:?} leaked in {text}");
    }
}

async fn proxy() -> Proxy {
    let addr = echoing_upstream().await;
    Proxy::start(&[
        ("ANTHROPIC_BASE_URL", format!("http://{addr}")),
        ("ANTHROPIC_API_KEY", KEY.to_string()),
    ])
    .await
}

fn headers_text(h: &http::HeaderMap) -> String {
    h.iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect()
}

#[tokio::test]
async fn whole_answers_and_errors_never_carry_the_key() {
    let proxy = proxy().await;
    for (mode, want) in [
        ("TYPE", 400),
        ("MESSAGE:0", 401),
        ("TEXT200:0", 502),
        ("TEXTERR:190", 500),
        ("TEXTERR:195", 500),
        ("TEXTERR:199", 500),
        ("CONTENT:3", 200),
    ] {
        let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", mode)).await;
        assert_eq!(r.status, want, "{mode}: {}", r.text);
        assert_no_piece(&r.text, mode);
        assert_no_piece(&headers_text(&r.headers), mode);
        let _: Value = serde_json::from_str(&r.text).expect("still JSON");
    }
    // The error type is an identifier, never text with the key in it.
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "TYPE")).await;
    assert_eq!(r.openai_error()["type"], "invalid_request_error");
    // The whole answer says where the key was.
    let r = post(&proxy.url(URL), &chat("claude-sonnet-4-5", "CONTENT:3")).await;
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "xxx[redacted] trailing words"
    );
    assert_no_piece(&proxy.metrics(), "metrics");
}

#[tokio::test]
async fn streams_never_carry_the_key() {
    let proxy = proxy().await;
    for mode in [
        "JSON_TO_STREAM:0",
        "SSE_ERROR:0",
        "SSE_NOT_JSON:5",
        "SSE_TEXT:4",
        "SSE_TEXT:20",
    ] {
        let mut body = chat("claude-sonnet-4-5", mode);
        body["stream"] = json!(true);
        let s = stream(&proxy.url(URL), &body).await;
        assert_no_piece(&s.text(), mode);
        assert_no_piece(&headers_text(&s.headers), mode);
    }
}

/// An echo of what the client itself sent is left as it was: redacting it would tell the
/// client which of its guesses are pieces of the key.
#[tokio::test]
async fn the_clients_own_words_are_not_an_oracle() {
    let proxy = proxy().await;
    // The client "guesses" the key's first 12 bytes; the upstream echoes the whole key.
    let guess = &KEY[..12];
    let mut body = chat("claude-sonnet-4-5", "CONTENT:0");
    body["messages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"role": "user", "content": guess}));
    let r = post(&proxy.url(URL), &body).await;
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    // Its own 12 bytes may come back; the rest of the key does not.
    assert!(content.starts_with(&KEY[..5]), "{content}");
    assert!(content.contains("[redacted]"), "{content}");
    assert!(!content.contains(&KEY[12..20]), "{content}");
}

/// Random upstream bodies holding the key at a random offset, through every error path.
#[tokio::test]
async fn property_random_offsets_on_every_error_path() {
    let proxy = proxy().await;
    let mut rng = fastrand::Rng::with_seed(13);
    for _ in 0..40 {
        let at = rng.usize(0..260);
        let mode = [
            "MESSAGE",
            "TEXT200",
            "TEXTERR",
            "JSON_TO_STREAM",
            "SSE_ERROR",
            "SSE_NOT_JSON",
            "SSE_TEXT",
        ][rng.usize(0..7)];
        let mut body = chat("claude-sonnet-4-5", &format!("{mode}:{at}"));
        if mode.starts_with("SSE") || mode == "JSON_TO_STREAM" || rng.bool() {
            body["stream"] = json!(true);
        }
        let s = stream(&proxy.url(URL), &body).await;
        assert_no_piece(&s.text(), &format!("{mode}:{at}"));
        assert_no_piece(&headers_text(&s.headers), &format!("{mode}:{at}"));
    }
}

/// The logs, at every level and with every body traced (`--trace all`, `RUST_LOG=trace`), and
/// the SQLite ledger's error column, never hold a piece of the key either.
#[tokio::test]
async fn logs_and_the_ledger_never_carry_the_key() {
    let addr = echoing_upstream().await;
    let dir = super::support::temp_dir();
    let ledger = dir.join("ledger.db");
    let base = format!("http://{addr}");
    let ledger_url = format!("sqlite:{}", ledger.display());
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let served = super::support::Served::spawn(
        &shipped,
        &[
            ("ANTHROPIC_BASE_URL", &base),
            ("ANTHROPIC_API_KEY", KEY),
            ("RUST_LOG", "trace"),
            ("ROSETTA_LEDGER", &ledger_url),
        ],
        &["--trace", "all"],
    );
    for mode in ["MESSAGE:3", "TEXTERR:100", "SSE_ERROR:7", "CONTENT:1"] {
        let mut body = chat("claude-sonnet-4-5", mode);
        body["stream"] = json!(mode.starts_with("SSE"));
        let s = stream(&served.url(URL), &body).await;
        assert_no_piece(&s.text(), mode);
    }
    served.wait_line("x-api-key", std::time::Duration::from_secs(2));
    let mut served = served;
    served.signal("TERM");
    served.wait_exit(std::time::Duration::from_secs(10));
    let log = served.drain();
    assert!(log.contains("[redacted]"), "the traced bodies: {log}");
    assert_no_piece(&log, "log");
    // The file and its write-ahead log (WAL mode).
    let mut db = std::fs::read(&ledger).unwrap_or_default();
    db.extend(std::fs::read(dir.join("ledger.db-wal")).unwrap_or_default());
    assert!(
        String::from_utf8_lossy(&db).contains("invalid x-api-key xxx[redacted]"),
        "the ledger holds the redacted error"
    );
    assert_no_piece(&String::from_utf8_lossy(&db), "ledger");
}

/// Inbound and admin keys are secrets too: an answer that holds another client's key, or an
/// admin key, shows `[redacted]`; a client's own key in its Authorization header is no
/// exception (only its request line and body are).
#[tokio::test]
async fn inbound_and_admin_keys_are_redacted() {
    use rosetta::serving::auth::Auth;
    let addr = echoing_upstream().await;
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let proxy = Proxy::start_with(
        &shipped,
        &[
            ("ANTHROPIC_BASE_URL", format!("http://{addr}")),
            ("ANTHROPIC_API_KEY", KEY.to_string()),
        ],
        |state| {
            state
                .with_auth(Auth::load(Some(&format!("alice:{ALICE},bob:{BOB}")), None).unwrap())
                .with_admin(Auth::load(Some(ADMIN), None).unwrap())
        },
    )
    .await;
    let req = http::Request::builder()
        .method("POST")
        .uri(proxy.url(URL))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {BOB}"))
        .body(http_body_util::Full::new(Bytes::from(
            chat("claude-sonnet-4-5", "ALICE").to_string(),
        )))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<http_body_util::Full<Bytes>>();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let text =
        String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).into_owned();
    assert!(
        text.contains("alice uses [redacted] and admin [redacted]"),
        "{text}"
    );
}
