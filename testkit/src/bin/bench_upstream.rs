//! `bench_upstream`: the fast mock Anthropic upstream of the load benchmark (`scripts/bench`,
//! `docs/performance.md`).
//!
//! It answers `POST /v1/messages` with a fixed, realistic Anthropic Messages answer, as in
//! `shared/reference/wire-formats.md` §2.3. When the request body asks for `"stream": true`
//! (a byte search, no JSON parse) it answers with a faithful named-event SSE stream (§2.6):
//! `message_start`, `content_block_start`, a `ping`, `--events` `content_block_delta` text
//! deltas `--interval-ms` apart, `content_block_stop`, `message_delta` (stop reason and usage) and
//! `message_stop`. The head and the first delta go out at once, so a client's time to first
//! chunk measures the path and not the pacing; delta `k` is due at `start + k * interval`
//! (absolute deadlines, so lateness does not accumulate), sent by a pacing thread (see [`Pacer`]:
//! tokio's 1 ms timer would add its own jitter to every gap) into the stream's channel body, and
//! every event is its own HTTP chunk. All the bytes are built once at startup.
//!
//! It is written to never be the bottleneck: canned bytes (reference-counted, never copied), no
//! JSON parsing, no lock on the non-stream path (streams take one short lock per event). `scripts/bench` measures it: the `direct` subject is the load
//! generator speaking to it with nothing in between.
//!
//! Besides `/v1/messages` it serves `GET /bench/text` (the text it sends, as JSON, for the
//! clients' correctness checks) and `GET /bench/stats` (requests, streams and connections
//! accepted so far).
//!
//! The first line on stdout is the bound port.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const USAGE: &str = "\
usage: bench_upstream [--listen HOST] [--port N] [--events N] [--interval-ms MS]

  --listen HOST      address to bind (default 127.0.0.1)
  --port N           port to bind (default 0: any free port); the bound port is printed first
  --events N         text deltas per stream (default 64)
  --interval-ms MS   time between two deltas, fractional allowed (default 20)";

const MESSAGE_ID: &str = "msg_01BenchQ7c9XkR2mTfVwHs4Lp";
const MODEL: &str = "claude-sonnet-4-5-20250929";
const INPUT_TOKENS: u64 = 412;

/// The non-stream answer's text: about 200 bytes, with a quote, a non-ASCII character and a
/// line break so that any translation has to escape and unescape them.
const ANSWER: &str = "Paris is cloudy this morning, 18 °C, with a light westerly wind.\n\
The forecast says \"showers after 15:00\", so take an umbrella if you go out; \
tomorrow should be drier and a little warmer.";

/// Words the stream deltas are made of, cycled.
const WORDS: &[&str] = &[
    "Here",
    " is",
    " a",
    " short",
    " answer",
    " about",
    " the",
    " weather",
    " in",
    " Paris",
    ":",
    " it",
    " is",
    " cloudy",
    ",",
    " 18",
    " °C",
    ",",
    " and",
    " the",
    " forecast",
    " says",
    " \"showers",
    " after",
    " 15:00\".",
    "\n\n",
    "Take",
    " an",
    " umbrella",
    " if",
    " you",
    " go",
    " out",
    ";",
    " tomorrow",
    " should",
    " be",
    " drier",
    " and",
    " a",
    " little",
    " warmer",
    ".",
    " The",
    " wind",
    " comes",
    " from",
    " the",
    " west",
    " at",
    " about",
    " 15",
    " km/h",
    ",",
    " and",
    " the",
    " humidity",
    " stays",
    " near",
    " 70",
    "%",
    " all",
    " day",
    ".",
];

/// The text pieces of a stream of `events` deltas.
fn pieces(events: usize) -> Vec<String> {
    (0..events)
        .map(|k| WORDS[k % WORDS.len()].to_string())
        .collect()
}

fn sse(event: &str, data: &str) -> Bytes {
    debug_assert!(
        serde_json::from_str::<serde_json::Value>(data).is_ok(),
        "{data}"
    );
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Everything built once at startup.
struct Canned {
    message: Bytes,
    /// `message_start`, `content_block_start`, `ping`: sent together with the first delta.
    head: Vec<Bytes>,
    deltas: Vec<Bytes>,
    /// `content_block_stop`, `message_delta`, `message_stop`: sent right after the last delta.
    tail: Vec<Bytes>,
    interval: Duration,
    text_json: Bytes,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    streams: AtomicU64,
    connections: AtomicU64,
}

impl Canned {
    fn new(events: usize, interval: Duration) -> Canned {
        let pieces = pieces(events);
        let output_tokens = ANSWER.split_whitespace().count() as u64;
        // Written by hand, not through serde_json, to keep the field order of the real API
        // (serde_json without `preserve_order` would sort the keys).
        let message = format!(
            r#"{{"id":"{MESSAGE_ID}","type":"message","role":"assistant","model":"{MODEL}","content":[{{"type":"text","text":{text}}}],"stop_reason":"end_turn","stop_sequence":null,"usage":{{"input_tokens":{INPUT_TOKENS},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{output_tokens},"service_tier":"standard"}}}}"#,
            text = json_string(ANSWER),
        );
        let head = vec![
            sse(
                "message_start",
                &format!(
                    r#"{{"type":"message_start","message":{{"id":"{MESSAGE_ID}","type":"message","role":"assistant","model":"{MODEL}","content":[],"stop_reason":null,"stop_sequence":null,"usage":{{"input_tokens":{INPUT_TOKENS},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}}}}"#
                ),
            ),
            sse(
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            ),
            sse("ping", r#"{"type": "ping"}"#),
        ];
        let deltas = pieces
            .iter()
            .map(|p| {
                sse(
                    "content_block_delta",
                    &format!(
                        r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":{}}}}}"#,
                        json_string(p)
                    ),
                )
            })
            .collect();
        let tail = vec![
            sse(
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            sse(
                "message_delta",
                &format!(
                    r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{{"output_tokens":{events}}}}}"#
                ),
            ),
            sse("message_stop", r#"{"type":"message_stop"}"#),
        ];
        let text_json = Bytes::from(
            json!({
                "events": events,
                "interval_ms": interval.as_secs_f64() * 1e3,
                "pieces": pieces,
                "stream_text": pieces.concat(),
                "message_text": ANSWER,
                "message_id": MESSAGE_ID,
                "input_tokens": INPUT_TOKENS,
                "output_tokens": output_tokens,
            })
            .to_string(),
        );
        Canned {
            message: Bytes::from(message),
            head,
            deltas,
            tail,
            interval,
            text_json,
            stats: Stats::default(),
        }
    }
}

/// A stream waiting for its next delta.
struct Due {
    at: Instant,
    seq: u64,
    start: Instant,
    /// The delta to send at `at`.
    k: usize,
    tx: mpsc::UnboundedSender<Bytes>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Due) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// The pacing thread: sends every stream's deltas at their deadlines. Tokio's timer has a
/// 1 ms granularity, which would put about a millisecond of jitter into every gap between
/// chunks and hide what a proxy adds; a dedicated thread sleeping on a condition variable
/// (a futex with a high-resolution timeout) keeps the mock's own jitter to tens of µs.
struct Pacer {
    heap: Mutex<(BinaryHeap<Reverse<Due>>, u64)>,
    cv: Condvar,
    canned: Arc<Canned>,
}

impl Pacer {
    fn start(canned: Arc<Canned>) -> Arc<Pacer> {
        let pacer = Arc::new(Pacer {
            heap: Mutex::new((BinaryHeap::new(), 0)),
            cv: Condvar::new(),
            canned,
        });
        let p = pacer.clone();
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || p.run())
            .expect("pacer thread");
        pacer
    }

    /// A new stream: the head and the first delta now, the rest from the pacing thread.
    fn open(&self) -> mpsc::UnboundedReceiver<Bytes> {
        let (tx, rx) = mpsc::unbounded_channel();
        let c = &self.canned;
        for b in &c.head {
            let _ = tx.send(b.clone());
        }
        let _ = tx.send(c.deltas[0].clone());
        if c.deltas.len() == 1 {
            for b in &c.tail {
                let _ = tx.send(b.clone());
            }
            return rx;
        }
        let start = Instant::now();
        let mut g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        g.1 += 1;
        let seq = g.1;
        g.0.push(Reverse(Due {
            at: start + c.interval,
            seq,
            start,
            k: 1,
            tx,
        }));
        drop(g);
        self.cv.notify_one();
        rx
    }

    fn run(&self) {
        let c = &self.canned;
        let last = c.deltas.len() - 1;
        let mut ready: Vec<Due> = Vec::new();
        let mut next: Vec<Due> = Vec::new();
        let mut g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while g.0.peek().is_some_and(|d| d.0.at <= now) {
                ready.extend(g.0.pop().map(|d| d.0));
            }
            if ready.is_empty() {
                g = match g.0.peek() {
                    None => self.cv.wait(g).unwrap_or_else(|e| e.into_inner()),
                    Some(d) => {
                        let wait = d.0.at - now;
                        self.cv
                            .wait_timeout(g, wait)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                };
                continue;
            }
            drop(g);
            for mut due in ready.drain(..) {
                if due.tx.send(c.deltas[due.k].clone()).is_err() {
                    continue; // the client went away
                }
                if due.k == last {
                    for b in &c.tail {
                        let _ = due.tx.send(b.clone());
                    }
                    continue; // dropping the sender ends the body
                }
                due.k += 1;
                due.at = due.start + c.interval * due.k as u32;
                next.push(due);
            }
            g = self.heap.lock().unwrap_or_else(|e| e.into_inner());
            for due in next.drain(..) {
                g.0.push(Reverse(due));
            }
        }
    }
}

/// The SSE body: every event that arrives on the channel is one HTTP chunk.
struct ChannelBody {
    rx: mpsc::UnboundedReceiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn wants_stream(body: &[u8]) -> bool {
    find(body, b"\"stream\":true") || find(body, b"\"stream\": true")
}

fn plain(status: StatusCode, ctype: &'static str, body: Bytes) -> Response<BoxBody> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static(ctype),
    );
    resp
}

fn anthropic_error(status: StatusCode, kind: &str, message: &str) -> Response<BoxBody> {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    plain(status, "application/json", Bytes::from(body.to_string()))
}

async fn handle(
    pacer: Arc<Pacer>,
    req: Request<Incoming>,
) -> Result<Response<BoxBody>, Infallible> {
    let canned = &pacer.canned;
    let (parts, body) = req.into_parts();
    // Read the whole body in every case, so the connection stays reusable.
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(anthropic_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "unreadable body",
            ));
        }
    };
    match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/v1/messages") => {}
        (&Method::GET, "/bench/text") => {
            return Ok(plain(
                StatusCode::OK,
                "application/json",
                canned.text_json.clone(),
            ));
        }
        (&Method::GET, "/bench/stats") => {
            let s = &canned.stats;
            let stats = json!({
                "requests": s.requests.load(Ordering::Relaxed),
                "streams": s.streams.load(Ordering::Relaxed),
                "connections": s.connections.load(Ordering::Relaxed),
            });
            return Ok(plain(
                StatusCode::OK,
                "application/json",
                Bytes::from(stats.to_string()),
            ));
        }
        _ => {
            return Ok(anthropic_error(
                StatusCode::NOT_FOUND,
                "not_found_error",
                "Not found",
            ));
        }
    }
    if !parts.headers.contains_key("anthropic-version") {
        return Ok(anthropic_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        ));
    }
    if !parts.headers.contains_key("x-api-key") && !parts.headers.contains_key("authorization") {
        return Ok(anthropic_error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        ));
    }
    canned.stats.requests.fetch_add(1, Ordering::Relaxed);
    let mut resp = if wants_stream(&body) {
        canned.stats.streams.fetch_add(1, Ordering::Relaxed);
        let body = ChannelBody { rx: pacer.open() };
        let mut resp = Response::new(body.boxed_unsync());
        let h = resp.headers_mut();
        h.insert(
            "content-type",
            hyper::header::HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        h.insert(
            "cache-control",
            hyper::header::HeaderValue::from_static("no-cache"),
        );
        resp
    } else {
        plain(StatusCode::OK, "application/json", canned.message.clone())
    };
    resp.headers_mut().insert(
        "request-id",
        hyper::header::HeaderValue::from_static("req_01BenchMockUpstream0000"),
    );
    Ok(resp)
}

fn fail(msg: &str) -> ! {
    eprintln!("bench_upstream: {msg}\n{USAGE}");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 0;
    let mut events: usize = 64;
    let mut interval_ms: f64 = 20.0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--listen" => host = val("--listen"),
            "--port" => port = val("--port").parse().unwrap_or_else(|_| fail("bad --port")),
            "--events" => {
                events = val("--events")
                    .parse()
                    .unwrap_or_else(|_| fail("bad --events"))
            }
            "--interval-ms" => {
                interval_ms = val("--interval-ms")
                    .parse()
                    .unwrap_or_else(|_| fail("bad --interval-ms"))
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    if events == 0 || !(0.0..=60_000.0).contains(&interval_ms) {
        fail("--events must be >= 1 and --interval-ms within 0..60000");
    }
    let canned = Arc::new(Canned::new(
        events,
        Duration::from_secs_f64(interval_ms / 1e3),
    ));
    let pacer = Pacer::start(canned.clone());
    let listener = TcpListener::bind((host.as_str(), port))
        .await
        .unwrap_or_else(|e| fail(&format!("cannot bind {host}:{port}: {e}")));
    let bound = listener.local_addr().expect("local addr").port();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{bound}");
        let _ = out.flush();
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and the like: back off a little instead of spinning.
                eprintln!("bench_upstream: accept: {e}");
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        canned.stats.connections.fetch_add(1, Ordering::Relaxed);
        let pacer = pacer.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(pacer.clone(), req));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
