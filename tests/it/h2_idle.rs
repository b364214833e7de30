//! HTTP/2 connections that never complete a request are closed after the header timeout, so
//! they cannot use up Rosetta's file descriptors and lock everyone else out.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rosetta::limits::Limits;
use rosetta_testkit::{FakeUpstream, Reply};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::support::{Proxy, Served, chat, request};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame.
const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
/// A HEADERS frame on stream 1 without END_HEADERS: a header block never finished.
const OPEN_HEADERS: &[u8] = &[0, 0, 1, 1, 0, 0, 0, 0, 1, 0x82];

/// Connects and sends the preface and SETTINGS (every other one an unfinished HEADERS too).
async fn idle_h2(addr: String, unfinished_headers: bool) -> Option<TcpStream> {
    let open = async {
        let mut s = TcpStream::connect(&addr).await.ok()?;
        let mut hello = [PREFACE, SETTINGS].concat();
        if unfinished_headers {
            hello.extend_from_slice(OPEN_HEADERS);
        }
        s.write_all(&hello).await.ok()?;
        Some(s)
    };
    tokio::time::timeout(Duration::from_secs(3), open)
        .await
        .ok()
        .flatten()
}

/// Whether the server closed `s` within `limit` (whatever it sent first).
async fn closed_by_server(mut s: TcpStream, limit: Duration) -> bool {
    let drain = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, drain).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http2_connections_are_closed_and_health_still_answers() {
    let mappings = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let served = Served::spawn_limited(&mappings, &[], &["--header-timeout", "1s"], Some(1024));
    let opens = (0..1100).map(|i| idle_h2(served.addr().to_string(), i % 2 == 1));
    let conns: Vec<TcpStream> = futures_util::future::join_all(opens)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        conns.len() > 1000,
        "only {} connections opened",
        conns.len()
    );
    // The header timeout (1 s), then the second a closing connection gets to say goodbye.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let health = tokio::time::timeout(
        Duration::from_secs(1),
        request("GET", &served.url("/health"), None),
    )
    .await
    .unwrap_or_else(|_| panic!("/health did not answer within 1 s:\n{}", served.log()));
    assert_eq!(health.status, 200);
    let closed = futures_util::future::join_all(
        conns
            .into_iter()
            .map(|c| closed_by_server(c, Duration::from_secs(5))),
    )
    .await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "{open} idle HTTP/2 connections still open");
}

#[tokio::test]
async fn an_http2_connection_is_closed_once_idle_never_while_a_request_runs() {
    let answer = json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "late"}, "finish_reason": "stop"}]})
    .to_string();
    // Headers at once, then the body in two halves 800 ms apart: 1.6 s, over the timeout.
    let half = answer.len() / 2 + 1;
    let slow = Reply::drip(
        200,
        "application/json",
        answer,
        half,
        Duration::from_millis(800),
    );
    let fake = FakeUpstream::scripted(vec![slow]).await;
    let limits = Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let mappings = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let env = [(
        "OPENAI_COMPATIBLE_BASE_URL",
        format!("{}/v1", fake.base_url()),
    )];
    let proxy = Proxy::start_with(&mappings, &env, |s| s.with_limits(limits)).await;
    let tcp = TcpStream::connect(proxy.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    .unwrap();
    let (ended_tx, ended) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _ = conn.await;
        let _ = ended_tx.send(Instant::now());
    });
    let req = http::Request::post(proxy.url("/openai-compatible/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(chat("m", "hi").to_string())))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .expect("an answer in time")
        .expect("the running request was not cut");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let done = Instant::now();
    assert!(String::from_utf8_lossy(&body).contains("late"));
    let closed = tokio::time::timeout(Duration::from_secs(5), ended)
        .await
        .expect("the idle connection was closed")
        .unwrap();
    let idle = closed - done;
    assert!(
        idle >= Duration::from_millis(400) && idle < Duration::from_secs(3),
        "closed {idle:?} after its last request"
    );
}
