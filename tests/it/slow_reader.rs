//! A client that reads nothing: the upstream must be held back by backpressure, and what
//! Rosetta itself buffers for that one stream must stay small (docs/operations.md gives the
//! bound).
//!
//! The measure is exact, not a guess from RSS: every byte the fake upstream managed to write
//! is either in a kernel socket queue (the four ends of the two connections, read from
//! `/proc/net/tcp`), or held by Rosetta. Bytes toward the client are rewritten ones, counted
//! back in upstream bytes with the size ratio of one event.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

use super::raw_upstream::{RawUpstream, head, repeated};
use super::support::Proxy;

/// What one stream may buffer in Rosetta, upstream read side to client write side.
const BOUND: u64 = 256 * 1024;
const TOTAL: u64 = 256 * 1024 * 1024;

/// The send and receive queues (bytes) of the IPv4 TCP socket from `local` to `remote` port
/// on 127.0.0.1.
fn queues(local: u16, remote: u16) -> (u64, u64) {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |a: &str| u16::from_str_radix(a.rsplit(':').next().unwrap(), 16).unwrap();
        if port(f[1]) == local && port(f[2]) == remote {
            let (tx, rx) = f[4].split_once(':').unwrap();
            return (
                u64::from_str_radix(tx, 16).unwrap(),
                u64::from_str_radix(rx, 16).unwrap(),
            );
        }
    }
    panic!("no socket 127.0.0.1:{local} -> {remote} in /proc/net/tcp");
}

fn port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// Streams `piece` over and over to a client that reads nothing, and returns what Rosetta
/// holds once the upstream is blocked.
async fn held_by_rosetta(mapping: &str, env_var: &str, model: &str, piece: &[u8]) -> u64 {
    let fake = RawUpstream::start(
        head("text/event-stream", TOTAL),
        repeated(piece.repeat(64), TOTAL),
    )
    .await;
    let base = if mapping == "openai-compatible" {
        format!("{}/v1", fake.base)
    } else {
        fake.base.clone()
    };
    let proxy = Proxy::start(&[(env_var, base)]).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let proxy_port = port(&proxy.base);
    let mut client = socket
        .connect(([127, 0, 0, 1], proxy_port).into())
        .await
        .unwrap();
    let body = serde_json::json!({"model": model, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let req = format!(
        "POST /{mapping}/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(req.as_bytes()).await.unwrap();
    // Wait until the upstream is blocked: nothing more written for a second.
    let started = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = fake.written();
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > 0 && last.1.elapsed() > Duration::from_secs(1) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the upstream never blocked ({now} bytes written)"
        );
    }
    let written = fake.written();
    assert!(
        written < TOTAL,
        "backpressure holds the upstream back ({written} bytes written)"
    );
    let upstream_port = port(&fake.base);
    let rosetta_up = fake.peer.lock().unwrap().unwrap().port();
    let client_port = client.local_addr().unwrap().port();
    let in_kernel = [
        queues(upstream_port, rosetta_up).0, // the upstream's send queue
        queues(rosetta_up, upstream_port).1, // Rosetta's receive queue from the upstream
        queues(proxy_port, client_port).0,   // Rosetta's send queue to the client
        queues(client_port, proxy_port).1,   // the client's receive queue
    ];
    let consumed = written - in_kernel[0] - in_kernel[1];
    // Now read some of the answer: its head, and the size of one rewritten event.
    let mut seen = vec![0u8; 256 * 1024];
    let mut n = 0;
    while n < seen.len() {
        n += client.read(&mut seen[n..]).await.unwrap();
    }
    let text = String::from_utf8_lossy(&seen);
    let head = text.find("\r\n\r\n").unwrap() + 4;
    let mut sizes: Vec<usize> = text[head..].split("\n\n").map(|e| e.len() + 2).collect();
    sizes.sort_unstable();
    let event = sizes[sizes.len() / 2] as f64;
    let ratio = event / piece.len() as f64;
    let sent = (in_kernel[2] + in_kernel[3]).saturating_sub(head as u64);
    let held = consumed.saturating_sub((sent as f64 / ratio) as u64);
    eprintln!(
        "{mapping}: upstream wrote {written} bytes; kernel queues {in_kernel:?}; \
         {consumed} upstream bytes read by Rosetta, {sent} bytes sent toward the client \
         ({event} bytes an event for {} upstream bytes); Rosetta holds {held}",
        piece.len()
    );
    held
}

#[tokio::test]
async fn a_passthrough_stream_to_a_client_that_reads_nothing_holds_little() {
    let mut piece = br#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":""#.to_vec();
    piece.resize(piece.len() + 900, b'a');
    piece.extend_from_slice(b"\"},\"finish_reason\":null}]}\n\n");
    let held = held_by_rosetta(
        "openai-compatible",
        "OPENAI_COMPATIBLE_BASE_URL",
        "m",
        &piece,
    )
    .await;
    assert!(held <= BOUND, "Rosetta holds {held} bytes for one stream");
}

#[tokio::test]
async fn a_rewritten_stream_to_a_client_that_reads_nothing_holds_little() {
    let mut piece = br#"{"model":"llama3.2","message":{"role":"assistant","content":""#.to_vec();
    piece.resize(piece.len() + 900, b'a');
    piece.extend_from_slice(b"\"},\"done\":false}\n");
    let held = held_by_rosetta("ollama", "OLLAMA_BASE_URL", "llama3.2", &piece).await;
    assert!(held <= BOUND, "Rosetta holds {held} bytes for one stream");
}
