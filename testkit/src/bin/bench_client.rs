//! `bench_client`: the parts of the load benchmark (`scripts/bench`, `docs/performance.md`) that
//! `wrk` does not do.
//!
//! - `bodies`: writes the request bodies (a ~1 KB chat: a system message and three turns, as
//!   OpenAI and as the Anthropic request Rosetta makes of it; each non-stream and stream).
//! - `wait`, `get`: readiness polling and a plain GET, so the script needs no curl.
//! - `check`: one non-stream request, its answer checked against what the mock sends.
//! - `streams`: the W3 workload. N concurrent HTTP/1.1 keep-alive connections, each running
//!   paced streams back to back (the first round is a warm-up: it opens the connections and fills
//!   the proxies' upstream pools, and is checked but not timed). Starts are spread over one stream
//!   duration, so the arrival rate is steady. Measures the time to the first content-bearing
//!   chunk (from just before the request is sent) and the gaps between consecutive content
//!   chunks, and checks every stream: Anthropic (`message_start` ... exactly the mock's text
//!   deltas ... `message_stop`) or OpenAI (role delta first, exactly the mock's text pieces,
//!   one `finish_reason: "stop"`, `[DONE]`). With `--pid`, it also records the peak RSS of that
//!   process (VmHWM after `clear_refs`, and VmRSS sampled every 10 ms).
//! - `rss`: the same peak-RSS sampler on its own, for the duration of a `wrk` run.
//! - `startup`: runs a command N times and measures exec to the first 200 from `/health` (tight
//!   poll), median.
//! - `report`: reads every run's raw figures, prints the table, the issue-6 targets and the
//!   summary line, and writes the JSON results.
//!
//! Timing paths do no parsing: a stream records the bytes and the arrival time of every body
//! frame; the checks run after the stream ends.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

const USAGE: &str = "\
usage: bench_client COMMAND [OPTIONS]

  bodies  --dir DIR
  wait    --url URL [--status CODE] [--timeout-ms MS]
  get     --url URL
  check   --kind anthropic|openai --url URL --body FILE --mock URL [--header 'K: V']...
  streams --kind anthropic|openai --url URL --body FILE --mock URL --concurrency N
          [--rounds R] [--warmup-rounds W] [--ramp-ms MS] [--timeout-s S] [--pid PID]
          [--header 'K: V']...
  rss     --pid PID --duration-ms MS
  startup [--runs N] [--timeout-ms MS] -- CMD ARG...     ({PORT} in ARGs: a free port)
  report  --dir DIR --out FILE
  port    (prints a free TCP port on 127.0.0.1)

URLs are http://HOST:PORT/PATH. `streams` and `report` print JSON / the table on stdout.";

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "-h" || args[0] == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let cmd = args.remove(0);
    let result = match cmd.as_str() {
        "bodies" => Opts::parse(args).and_then(|o| bodies(&o)),
        "wait" => Opts::parse(args).and_then(|o| wait(&o)),
        "get" => Opts::parse(args).and_then(|o| get(&o)),
        "check" => Opts::parse(args).and_then(|o| check(&o)),
        "streams" => Opts::parse(args).and_then(|o| streams(&o)),
        "rss" => Opts::parse(args).and_then(|o| rss_cmd(&o)),
        "startup" => Opts::parse(args).and_then(|o| startup(&o)),
        "report" => Opts::parse(args).and_then(|o| report(&o)),
        "port" => free_port().map(|p| {
            println!("{p}");
            ExitCode::SUCCESS
        }),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench_client {cmd}: {e}");
            ExitCode::from(2)
        }
    }
}

type Res<T> = Result<T, String>;

/// `--name value` options (repeatable ones kept in order) and, after `--`, a command line.
#[derive(Default)]
struct Opts {
    vals: Vec<(String, String)>,
    rest: Vec<String>,
}

impl Opts {
    fn parse(args: Vec<String>) -> Res<Opts> {
        let mut o = Opts::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            if a == "--" {
                o.rest = it.collect();
                break;
            }
            let Some(name) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a:?}\n{USAGE}"));
            };
            let v = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
            o.vals.push((name.to_string(), v));
        }
        Ok(o)
    }
    fn opt(&self, name: &str) -> Option<&str> {
        self.vals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn req(&self, name: &str) -> Res<&str> {
        self.opt(name)
            .ok_or_else(|| format!("--{name} is required"))
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Res<T> {
        match self.opt(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: bad number {v:?}")),
        }
    }
    fn all(&self, name: &str) -> Vec<&str> {
        self.vals
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP plumbing

struct Url {
    host: String,
    port: u16,
    path: String,
}

impl Url {
    fn parse(s: &str) -> Res<Url> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("only http:// URLs: {s:?}"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match auth.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port in {s:?}"))?),
            None => (auth, 80),
        };
        Ok(Url {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
    fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Anthropic,
    OpenAi,
}

impl Kind {
    fn parse(s: &str) -> Res<Kind> {
        match s {
            "anthropic" => Ok(Kind::Anthropic),
            "openai" => Ok(Kind::OpenAi),
            _ => Err(format!("--kind must be anthropic or openai, not {s:?}")),
        }
    }
}

fn headers_of(o: &Opts, kind: Kind) -> Res<Vec<(String, String)>> {
    let mut h = vec![("content-type".to_string(), "application/json".to_string())];
    if kind == Kind::Anthropic {
        h.push(("x-api-key".into(), "bench".into()));
        h.push(("anthropic-version".into(), "2023-06-01".into()));
    }
    for raw in o.all("header") {
        let (k, v) = raw
            .split_once(':')
            .ok_or_else(|| format!("--header {raw:?}: want 'Name: value'"))?;
        h.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(h)
}

fn build_request(
    url: &Url,
    method: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> Res<Request<Full<Bytes>>> {
    let mut b = Request::builder()
        .method(method)
        .uri(&url.path)
        .header("host", url.authority());
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Full::new(body)).map_err(|e| e.to_string())
}

async fn connect(url: &Url) -> Res<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
        .await
        .map_err(|e| format!("connect {}: {e}", url.authority()))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One request on a fresh connection; the status and the whole body.
async fn fetch(
    url: &Url,
    method: &str,
    headers: &[(String, String)],
    body: Bytes,
) -> Res<(u16, Bytes)> {
    let mut sender = connect(url).await?;
    let req = build_request(url, method, headers, body)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The mock's `/bench/text`: what it sends.
struct Expected {
    pieces: Vec<String>,
    message_text: String,
    input_tokens: u64,
    output_tokens: u64,
}

async fn expected(mock: &str) -> Res<Expected> {
    let url = Url::parse(&format!("{}/bench/text", mock.trim_end_matches('/')))?;
    let (status, body) = fetch(&url, "GET", &[], Bytes::new()).await?;
    if status != 200 {
        return Err(format!("{mock}/bench/text answered {status}"));
    }
    let v: Value = serde_json::from_slice(&body).map_err(|e| format!("/bench/text: {e}"))?;
    let pieces = v["pieces"]
        .as_array()
        .ok_or("/bench/text: no pieces")?
        .iter()
        .map(|p| p.as_str().unwrap_or_default().to_string())
        .collect();
    Ok(Expected {
        pieces,
        message_text: v["message_text"].as_str().unwrap_or_default().to_string(),
        input_tokens: v["input_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["output_tokens"].as_u64().unwrap_or(0),
    })
}

// ---------------------------------------------------------------------------------------------
// bodies, wait, get, check

const SYSTEM: &str = "You are a concise assistant for a travel agency. Answer in plain English, in at most three sentences, and say so when you are not sure. Prefer metric units and 24-hour times; never invent prices or opening hours.";
const TURN1: &str = "I land in Paris on Thursday morning and have one free afternoon before a dinner near the Opéra. What could I visit that is not too far away and not too crowded?";
const TURN2: &str = "With one afternoon near the Opéra, try the Musée Jacquemart-André or the covered passages around the Grands Boulevards (Passage des Panoramas, Jouffroy, Verdeau): both are a short walk away, calmer than the Louvre, and easy to leave in time for dinner.";
const TURN3: &str = "That sounds good. What will the weather be like on Thursday afternoon, and should I take an umbrella? Please also tell me how long the walk from the museum to the Opéra takes.";
const MODEL: &str = "claude-sonnet-4-5";

fn openai_body(stream: bool) -> Value {
    let mut v = json!({
        "model": MODEL,
        "max_tokens": 256,
        "temperature": 0.7,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": TURN1},
            {"role": "assistant", "content": TURN2},
            {"role": "user", "content": TURN3},
        ],
    });
    if stream {
        v["stream"] = Value::Bool(true);
    }
    v
}

/// What Rosetta's Anthropic mapping sends for [`openai_body`].
fn anthropic_body(stream: bool) -> Value {
    let blocks = |t: &str| json!([{"type": "text", "text": t}]);
    let mut v = json!({
        "model": MODEL,
        "max_tokens": 256,
        "temperature": 0.7,
        "system": SYSTEM,
        "messages": [
            {"role": "user", "content": blocks(TURN1)},
            {"role": "assistant", "content": blocks(TURN2)},
            {"role": "user", "content": blocks(TURN3)},
        ],
    });
    if stream {
        v["stream"] = Value::Bool(true);
    }
    v
}

fn bodies(o: &Opts) -> Res<ExitCode> {
    let dir = PathBuf::from(o.req("dir")?);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for (name, v) in [
        ("openai.json", openai_body(false)),
        ("openai-stream.json", openai_body(true)),
        ("anthropic.json", anthropic_body(false)),
        ("anthropic-stream.json", anthropic_body(true)),
    ] {
        std::fs::write(dir.join(name), v.to_string()).map_err(|e| e.to_string())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn wait(o: &Opts) -> Res<ExitCode> {
    let url = Url::parse(o.req("url")?)?;
    let want: Option<u16> = o.opt("status").map(|s| s.parse().unwrap_or(200));
    let timeout = Duration::from_millis(o.num("timeout-ms", 10_000u64)?);
    let t0 = Instant::now();
    loop {
        match raw_get(&url) {
            Ok(s) if want.is_none_or(|w| w == s) => return Ok(ExitCode::SUCCESS),
            _ if t0.elapsed() > timeout => {
                return Err(format!(
                    "{}:{}{} not ready after {timeout:?}",
                    url.host, url.port, url.path
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn get(o: &Opts) -> Res<ExitCode> {
    let url = Url::parse(o.req("url")?)?;
    let (status, body) = runtime().block_on(fetch(&url, "GET", &[], Bytes::new()))?;
    std::io::stdout()
        .write_all(&body)
        .map_err(|e| e.to_string())?;
    println!();
    Ok(if status == 200 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A blocking `GET` on a fresh connection; the status code.
fn raw_get(url: &Url) -> std::io::Result<u16> {
    let mut s = StdTcpStream::connect((url.host.as_str(), url.port))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_nodelay(true)?;
    write!(
        s,
        "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        url.path,
        url.authority()
    )?;
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        let n = s.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let line = String::from_utf8_lossy(&buf[..got]);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))
}

fn check(o: &Opts) -> Res<ExitCode> {
    let kind = Kind::parse(o.req("kind")?)?;
    let url = Url::parse(o.req("url")?)?;
    let body = Bytes::from(std::fs::read(o.req("body")?).map_err(|e| e.to_string())?);
    let headers = headers_of(o, kind)?;
    let rt = runtime();
    let exp = rt.block_on(expected(o.req("mock")?))?;
    let (status, resp) = rt.block_on(fetch(&url, "POST", &headers, body))?;
    let text = String::from_utf8_lossy(&resp);
    if status != 200 {
        return Err(format!("status {status}: {text}"));
    }
    let v: Value = serde_json::from_slice(&resp).map_err(|e| format!("not JSON ({e}): {text}"))?;
    let problems = match kind {
        Kind::Anthropic => {
            let mut p = vec![];
            if v["content"][0]["text"] != exp.message_text.as_str() {
                p.push("content[0].text differs from the mock's text");
            }
            if v["stop_reason"] != "end_turn" {
                p.push("stop_reason is not end_turn");
            }
            p
        }
        Kind::OpenAi => {
            let mut p = vec![];
            if v["object"] != "chat.completion" {
                p.push("object is not chat.completion");
            }
            if v["choices"][0]["message"]["content"] != exp.message_text.as_str() {
                p.push("choices[0].message.content differs from the mock's text");
            }
            if v["choices"][0]["message"]["role"] != "assistant" {
                p.push("role is not assistant");
            }
            if v["choices"][0]["finish_reason"] != "stop" {
                p.push("finish_reason is not stop");
            }
            if v["usage"]["prompt_tokens"] != exp.input_tokens
                || v["usage"]["completion_tokens"] != exp.output_tokens
            {
                p.push("usage differs from the mock's");
            }
            p
        }
    };
    if problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!("{}: {text}", problems.join("; ")))
    }
}

// ---------------------------------------------------------------------------------------------
// RSS

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Peak RSS of a process over a period: resets VmHWM (`clear_refs` 5) at the start, samples
/// VmRSS every 10 ms, and at the end takes the larger of the two.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
    hwm_reset: bool,
    pid: u32,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                if let Some(kib) = status_kib(pid, "VmRSS") {
                    peak = peak.max(kib);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        RssSampler {
            stop,
            handle,
            hwm_reset,
            pid,
        }
    }

    fn finish(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.handle.join().unwrap_or(0);
        let hwm = if self.hwm_reset {
            status_kib(self.pid, "VmHWM")
        } else {
            None
        };
        json!({
            "peak_rss_kib": sampled.max(hwm.unwrap_or(0)),
            "sampled_peak_kib": sampled,
            "hwm_kib": hwm,
        })
    }
}

fn rss_cmd(o: &Opts) -> Res<ExitCode> {
    let pid: u32 = o.req("pid")?.parse().map_err(|_| "bad --pid")?;
    let ms: u64 = o.num("duration-ms", 1000)?;
    let sampler = RssSampler::start(pid);
    std::thread::sleep(Duration::from_millis(ms));
    println!("{}", sampler.finish());
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// streams (W3)

/// One stream as received: every body frame's end offset and arrival time.
struct Recorded {
    round: usize,
    t0: Instant,
    /// Transport error, bad status, timeout.
    failure: Option<String>,
    frames: Vec<(usize, Instant)>,
    body: Vec<u8>,
}

struct StreamCfg {
    url: Url,
    headers: Vec<(String, String)>,
    body: Bytes,
    concurrency: usize,
    rounds: usize,
    ramp: Duration,
    timeout: Duration,
}

async fn run_one(
    sender: &mut SendRequest<Full<Bytes>>,
    cfg: &StreamCfg,
    rec: &mut Recorded,
) -> Res<()> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let req = build_request(&cfg.url, "POST", &cfg.headers, cfg.body.clone())?;
    rec.t0 = Instant::now();
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        if let Ok(data) = frame.into_data() {
            let now = Instant::now();
            rec.body.extend_from_slice(&data);
            rec.frames.push((rec.body.len(), now));
        }
    }
    if status != 200 {
        let text = String::from_utf8_lossy(&rec.body);
        return Err(format!(
            "status {status}: {}",
            text.chars().take(300).collect::<String>()
        ));
    }
    Ok(())
}

async fn worker(i: usize, cfg: Arc<StreamCfg>) -> Vec<Recorded> {
    tokio::time::sleep(cfg.ramp.mul_f64(i as f64 / cfg.concurrency as f64)).await;
    let mut out = Vec::with_capacity(cfg.rounds);
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    for round in 0..cfg.rounds {
        let mut rec = Recorded {
            round,
            t0: Instant::now(),
            failure: None,
            frames: Vec::with_capacity(80),
            body: Vec::with_capacity(16 * 1024),
        };
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            match connect(&cfg.url).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    rec.failure = Some(e);
                    out.push(rec);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
        }
        let sender = conn.as_mut().expect("connected");
        let result = tokio::time::timeout(cfg.timeout, run_one(sender, &cfg, &mut rec)).await;
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("no end within {:?}", cfg.timeout)),
        };
        if failure.is_some() {
            conn = None;
        }
        rec.failure = failure;
        out.push(rec);
    }
    out
}

/// SSE events of a body: (end offset, event name, data lines joined).
fn sse_events(body: &[u8]) -> Vec<(usize, String, String)> {
    let mut out = vec![];
    let mut name = String::new();
    let mut data: Option<String> = None;
    let mut pos = 0;
    while pos < body.len() {
        let Some(nl) = body[pos..].iter().position(|&b| b == b'\n') else {
            break; // an unterminated last line: not an event
        };
        let end = pos + nl + 1;
        let line = String::from_utf8_lossy(&body[pos..pos + nl]);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() {
            if data.is_some() || !name.is_empty() {
                out.push((
                    end,
                    std::mem::take(&mut name),
                    data.take().unwrap_or_default(),
                ));
            }
        } else if let Some(v) = line.strip_prefix("event:") {
            name = v.trim_start().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(v);
                }
                None => data = Some(v.to_string()),
            }
        }
        pos = end;
    }
    out
}

/// The checks of one complete stream: Ok(content events: (end offset, text)) or what is wrong.
/// The first element of the error says whether the stream is incomplete (no terminal event)
/// rather than incorrect.
fn check_stream(kind: Kind, body: &[u8], exp: &Expected) -> Result<Vec<usize>, (bool, String)> {
    let events = sse_events(body);
    let mut content: Vec<(usize, String)> = vec![];
    match kind {
        Kind::Anthropic => {
            let mut names = vec![];
            let mut stop_reason = Value::Null;
            for (end, name, data) in &events {
                let v: Value = serde_json::from_str(data)
                    .map_err(|e| (false, format!("event {name}: data is not JSON ({e})")))?;
                if v["type"] != name.as_str() {
                    return Err((false, format!("event {name} has type {}", v["type"])));
                }
                match name.as_str() {
                    "ping" => continue,
                    "content_block_delta" if v["delta"]["type"] == "text_delta" => {
                        let t = v["delta"]["text"].as_str().unwrap_or_default();
                        content.push((*end, t.to_string()));
                    }
                    "message_delta" => stop_reason = v["delta"]["stop_reason"].clone(),
                    "error" => return Err((false, format!("error event: {data}"))),
                    _ => {}
                }
                if names.last() != Some(name) {
                    names.push(name.clone());
                }
            }
            if names.last().map(String::as_str) != Some("message_stop") {
                return Err((true, "no message_stop at the end".into()));
            }
            let want = [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop",
            ];
            if names != want {
                return Err((false, format!("event order {names:?}")));
            }
            if stop_reason != "end_turn" {
                return Err((false, format!("stop_reason {stop_reason}")));
            }
        }
        Kind::OpenAi => {
            let datas: Vec<&(usize, String, String)> =
                events.iter().filter(|e| !e.2.is_empty()).collect();
            let Some(last) = datas.last() else {
                return Err((true, "no data events".into()));
            };
            if last.2 != "[DONE]" {
                let errored = datas.iter().any(|e| e.2.contains("\"error\""));
                return Err((
                    !errored,
                    format!("does not end with [DONE]; last event {}", last.2),
                ));
            }
            let mut id: Option<Value> = None;
            let mut finishes = 0;
            for (k, (end, _, data)) in datas[..datas.len() - 1].iter().enumerate() {
                let v: Value = serde_json::from_str(data)
                    .map_err(|e| (false, format!("chunk {k} is not JSON ({e})")))?;
                if v.get("error").is_some() {
                    return Err((false, format!("error chunk: {data}")));
                }
                if v["object"] != "chat.completion.chunk" {
                    return Err((false, format!("chunk {k}: object {}", v["object"])));
                }
                match &id {
                    None => id = Some(v["id"].clone()),
                    Some(i) if *i != v["id"] => {
                        return Err((false, format!("chunk {k}: id changes")));
                    }
                    _ => {}
                }
                let choice = &v["choices"][0];
                if k == 0 && choice["delta"]["role"] != "assistant" {
                    return Err((false, "first chunk has no role delta".into()));
                }
                if let Some(t) = choice["delta"]["content"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                {
                    if finishes > 0 {
                        return Err((false, "content after finish_reason".into()));
                    }
                    content.push((*end, t.to_string()));
                }
                match &choice["finish_reason"] {
                    Value::Null => {}
                    f if *f == "stop" => finishes += 1,
                    f => return Err((false, format!("finish_reason {f}"))),
                }
            }
            if finishes != 1 {
                return Err((false, format!("{finishes} chunks with finish_reason stop")));
            }
        }
    }
    if content.len() != exp.pieces.len() || content.iter().zip(&exp.pieces).any(|(c, p)| c.1 != *p)
    {
        let got: String = content.iter().map(|c| c.1.as_str()).collect();
        return Err((
            false,
            format!(
                "{} text pieces instead of {}; text {:?} (want {:?})",
                content.len(),
                exp.pieces.len(),
                got.chars().take(120).collect::<String>(),
                exp.pieces.concat().chars().take(120).collect::<String>()
            ),
        ));
    }
    Ok(content.into_iter().map(|c| c.0).collect())
}

/// Arrival time of the frame that completed byte offset `end`.
fn arrival(frames: &[(usize, Instant)], end: usize) -> Instant {
    let i = frames.partition_point(|f| f.0 < end);
    frames[i.min(frames.len() - 1)].1
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn dist(mut ns: Vec<u64>) -> Value {
    ns.sort_unstable();
    let mean = if ns.is_empty() {
        f64::NAN
    } else {
        ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1000.0
    };
    json!({
        "count": ns.len(),
        "p50": pct(&ns, 50.0),
        "p90": pct(&ns, 90.0),
        "p99": pct(&ns, 99.0),
        "max": pct(&ns, 100.0),
        "mean": mean,
    })
}

fn streams(o: &Opts) -> Res<ExitCode> {
    let kind = Kind::parse(o.req("kind")?)?;
    let concurrency: usize = o.num("concurrency", 200)?;
    let rounds: usize = o.num("rounds", 4)?;
    let warmup: usize = o.num("warmup-rounds", 1)?;
    if concurrency == 0 || rounds <= warmup {
        return Err("need --concurrency >= 1 and --rounds > --warmup-rounds".into());
    }
    let pid: Option<u32> = match o.opt("pid") {
        Some(p) => Some(p.parse().map_err(|_| "bad --pid")?),
        None => None,
    };
    let rt = runtime();
    let exp = rt.block_on(expected(o.req("mock")?))?;
    let ramp_ms: f64 = o.num("ramp-ms", 1000.0)?;
    let cfg = Arc::new(StreamCfg {
        url: Url::parse(o.req("url")?)?,
        headers: headers_of(o, kind)?,
        body: Bytes::from(std::fs::read(o.req("body")?).map_err(|e| e.to_string())?),
        concurrency,
        rounds,
        ramp: Duration::from_secs_f64(ramp_ms / 1e3),
        timeout: Duration::from_secs(o.num("timeout-s", 60)?),
    });
    let sampler = pid.map(RssSampler::start);
    let started = Instant::now();
    let recs: Vec<Recorded> = rt.block_on(async {
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| tokio::spawn(worker(i, cfg.clone())))
            .collect();
        let mut all = vec![];
        for t in tasks {
            all.extend(t.await.unwrap_or_default());
        }
        all
    });
    let elapsed = started.elapsed();
    let rss = sampler.map(RssSampler::finish);

    let (mut incomplete, mut incorrect, mut measured) = (0u64, 0u64, 0u64);
    let mut samples: Vec<String> = vec![];
    let mut ttfc = vec![];
    let mut gaps = vec![];
    for r in &recs {
        let verdict = match &r.failure {
            Some(f) => Err((true, f.clone())),
            None => check_stream(kind, &r.body, &exp),
        };
        match verdict {
            Err((inc, why)) => {
                if inc {
                    incomplete += 1;
                } else {
                    incorrect += 1;
                }
                if samples.len() < 5 {
                    samples.push(format!(
                        "{}: {why}",
                        if inc { "incomplete" } else { "incorrect" }
                    ));
                }
            }
            Ok(ends) if r.round >= warmup => {
                measured += 1;
                let times: Vec<Instant> = ends.iter().map(|&e| arrival(&r.frames, e)).collect();
                ttfc.push((times[0] - r.t0).as_nanos() as u64);
                gaps.extend(times.windows(2).map(|w| (w[1] - w[0]).as_nanos() as u64));
            }
            Ok(_) => {}
        }
    }
    for s in &samples {
        eprintln!("bench_client streams: {s}");
    }
    let mut out = json!({
        "kind": if kind == Kind::Anthropic { "anthropic" } else { "openai" },
        "concurrency": concurrency,
        "rounds": rounds,
        "warmup_rounds": warmup,
        "events": exp.pieces.len(),
        "streams": recs.len(),
        "measured": measured,
        "incomplete": incomplete,
        "incorrect": incorrect,
        "problems": samples,
        "seconds": elapsed.as_secs_f64(),
        "ttfc_us": dist(ttfc),
        "gap_us": dist(gaps),
    });
    if let Some(rss) = rss {
        out["rss"] = rss;
    }
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// startup

fn free_port() -> Res<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn startup(o: &Opts) -> Res<ExitCode> {
    let runs: usize = o.num("runs", 10)?;
    let timeout = Duration::from_millis(o.num("timeout-ms", 10_000u64)?);
    if o.rest.is_empty() {
        return Err("startup needs `-- CMD ARG...`".into());
    }
    let mut ms = vec![];
    // One unmeasured launch first: page cache, dynamic loader.
    for run in 0..=runs {
        let port = free_port()?;
        let args: Vec<String> = o
            .rest
            .iter()
            .map(|a| a.replace("{PORT}", &port.to_string()))
            .collect();
        let url = Url::parse(&format!("http://127.0.0.1:{port}/health"))?;
        let t0 = Instant::now();
        let mut child = Command::new(&args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", args[0]))?;
        let outcome = loop {
            if let Ok(200) = raw_get(&url) {
                break Ok(t0.elapsed());
            }
            if let Ok(Some(st)) = child.try_wait() {
                break Err(format!("{} exited ({st}) before /health answered", args[0]));
            }
            if t0.elapsed() > timeout {
                break Err(format!("/health not 200 within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_micros(100));
        };
        let _ = child.kill();
        let _ = child.wait();
        let dt = outcome?;
        if run > 0 {
            ms.push(dt.as_secs_f64() * 1e3);
        }
    }
    let mut sorted = ms.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"runs_ms": ms, "median_ms": median(&sorted), "min_ms": sorted[0], "max_ms": sorted[sorted.len() - 1]})
    );
    Ok(ExitCode::SUCCESS)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// report

/// An issue-6 target: (figure, value, at most (else at least), bound, unit, the phase whose
/// noise is shown).
type Target = (String, Option<f64>, bool, f64, &'static str, String);

/// Other processes' CPU use (% of one core) above which a phase is flagged as noisy.
const NOISY_PCT: f64 = 25.0;

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64().filter(|x| x.is_finite())
}

/// CPU use during a phase, in % of one core: the subject, the mock, the load generator, and
/// everything else on the machine (another build, say: a noisy neighbour makes the run noisy).
fn cpu_figures(c: &Value, subject: &str, prefix: &str, fig: &mut BTreeMap<String, f64>) {
    let secs = f(&c["seconds"]).unwrap_or(f64::NAN);
    let get = |k: &str| f(&c[k]).unwrap_or(0.0);
    let (sub, mock, client, busy) = (
        get("subject_cpu_s"),
        get("mock_cpu_s"),
        get("client_cpu_s"),
        get("busy_cpu_s"),
    );
    // For `direct` the subject is the mock.
    let ours = sub + client + if subject == "direct" { 0.0 } else { mock };
    for (name, x) in [
        ("cpu_subject_pct", sub),
        ("cpu_mock_pct", mock),
        ("cpu_client_pct", client),
        ("cpu_other_pct", (busy - ours).max(0.0)),
    ] {
        fig.insert(format!("{prefix}.{name}"), x / secs * 100.0);
    }
}

/// The figures of one run, from its raw files; the problems that make the run fail.
fn run_figures(
    dir: &Path,
    meta: &Value,
    raw: &mut BTreeMap<String, Value>,
) -> (BTreeMap<String, f64>, Vec<String>) {
    let mut fig = BTreeMap::new();
    let mut problems = vec![];
    let subjects: Vec<String> = meta["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let fatal = |s: &str| s != "litellm";
    let mut load = |name: &str| -> Option<Value> {
        let v = read_json(&dir.join(name))?;
        raw.insert(name.trim_end_matches(".json").to_string(), v.clone());
        Some(v)
    };
    for w in ["w1", "w2"] {
        for s in &subjects {
            let Some(v) = load(&format!("{w}-{s}.json")) else {
                problems.push(format!("{}: no {w} figures for {s}", dir.display()));
                continue;
            };
            let secs = f(&v["duration_us"]).unwrap_or(f64::NAN) / 1e6;
            let req = f(&v["requests"]).unwrap_or(0.0);
            let errors: f64 = [
                "errors_connect",
                "errors_read",
                "errors_write",
                "errors_timeout",
                "errors_status",
            ]
            .iter()
            .filter_map(|k| f(&v[*k]))
            .sum();
            fig.insert(format!("{w}.{s}.requests"), req);
            fig.insert(format!("{w}.{s}.rps"), req / secs);
            fig.insert(format!("{w}.{s}.errors"), errors);
            for p in ["p50", "p90", "p99", "max", "mean"] {
                if let Some(x) = f(&v[format!("{p}_us")]) {
                    fig.insert(format!("{w}.{s}.{p}_us"), x);
                }
            }
            if errors > 0.0 && fatal(s) {
                problems.push(format!(
                    "{}: {w} {s}: {errors} errors (socket or non-2xx)",
                    dir.display()
                ));
            }
            if let Some(c) = load(&format!("{w}-{s}-cpu.json")) {
                cpu_figures(&c, s, &format!("{w}.{s}"), &mut fig);
                // CPU time per request: the most stable figure on a shared machine.
                if let Some(cpu) = f(&c["subject_cpu_s"]).filter(|_| req > 0.0) {
                    fig.insert(format!("{w}.{s}.cpu_us_per_req"), cpu * 1e6 / req);
                }
            }
        }
        for s in &subjects {
            if s == "direct" {
                continue;
            }
            for p in ["p50", "p99"] {
                if let (Some(a), Some(b)) = (
                    fig.get(&format!("{w}.{s}.{p}_us")).copied(),
                    fig.get(&format!("{w}.direct.{p}_us")).copied(),
                ) {
                    fig.insert(format!("{w}.{s}.added_{p}_us"), a - b);
                }
            }
            for base in ["passthrough", "hyper", "hyper_json"] {
                if let (Some(a), Some(b)) = (
                    fig.get(&format!("{w}.{s}.rps")).copied(),
                    fig.get(&format!("{w}.{base}.rps")).copied(),
                ) {
                    fig.insert(format!("{w}.{s}.rps_vs_{base}"), a / b);
                }
                if let (Some(a), Some(b)) = (
                    fig.get(&format!("{w}.{s}.cpu_us_per_req")).copied(),
                    fig.get(&format!("{w}.{base}.cpu_us_per_req")).copied(),
                ) {
                    fig.insert(format!("{w}.{s}.cpu_vs_{base}"), a / b);
                }
            }
            // Latency above the serde_json floor (issue 15's bound).
            for p in ["p50", "p99"] {
                if let (Some(a), Some(b)) = (
                    fig.get(&format!("{w}.{s}.{p}_us")).copied(),
                    fig.get(&format!("{w}.hyper_json.{p}_us")).copied(),
                ) {
                    fig.insert(format!("{w}.{s}.above_json_{p}_us"), a - b);
                }
            }
        }
        // What the ledger costs per call: ledger on minus ledger off, side by side.
        if let (Some(on), Some(off)) = (
            fig.get(&format!("{w}.rosetta.cpu_us_per_req")).copied(),
            fig.get(&format!("{w}.rosetta_noledger.cpu_us_per_req"))
                .copied(),
        ) {
            fig.insert(format!("{w}.ledger_cpu_us_per_req"), on - off);
        }
        if let (Some(d), Some(r)) = (
            fig.get(&format!("{w}.direct.rps")).copied(),
            fig.get(&format!("{w}.rosetta.rps")).copied(),
        ) {
            fig.insert(format!("{w}.mock_over_rosetta"), d / r);
        }
    }
    let counts: Vec<u64> = meta["stream_counts"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let w3_subjects: Vec<String> = meta["w3_subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for n in &counts {
        for s in &w3_subjects {
            let Some(v) = load(&format!("w3-{n}-{s}.json")) else {
                problems.push(format!("{}: no W3 {n} figures for {s}", dir.display()));
                continue;
            };
            let p = format!("w3.{n}.{s}");
            for (k, x) in [
                ("ttfc_p50_us", &v["ttfc_us"]["p50"]),
                ("ttfc_p99_us", &v["ttfc_us"]["p99"]),
                ("gap_p50_us", &v["gap_us"]["p50"]),
                ("gap_p99_us", &v["gap_us"]["p99"]),
                ("gap_max_us", &v["gap_us"]["max"]),
                ("streams", &v["streams"]),
                ("measured", &v["measured"]),
                ("incomplete", &v["incomplete"]),
                ("incorrect", &v["incorrect"]),
                ("peak_rss_kib", &v["rss"]["peak_rss_kib"]),
            ] {
                if let Some(x) = f(x) {
                    fig.insert(format!("{p}.{k}"), x);
                }
            }
            let bad = f(&v["incomplete"]).unwrap_or(1.0) + f(&v["incorrect"]).unwrap_or(1.0);
            if bad > 0.0 && fatal(s) {
                problems.push(format!(
                    "{}: W3 {n} {s}: {bad} incomplete or incorrect streams: {}",
                    dir.display(),
                    v["problems"]
                ));
            }
            if let Some(c) = load(&format!("w3-{n}-{s}-cpu.json")) {
                cpu_figures(&c, s, &p, &mut fig);
                if let (Some(cpu), Some(m)) = (f(&c["subject_cpu_s"]), f(&v["streams"])) {
                    fig.insert(format!("{p}.cpu_ms_per_stream"), cpu * 1e3 / m);
                }
            }
        }
        for s in &w3_subjects {
            if s == "direct" {
                continue;
            }
            for k in ["ttfc_p50_us", "ttfc_p99_us", "gap_p99_us"] {
                if let (Some(a), Some(b)) = (
                    fig.get(&format!("w3.{n}.{s}.{k}")).copied(),
                    fig.get(&format!("w3.{n}.direct.{k}")).copied(),
                ) {
                    fig.insert(format!("w3.{n}.{s}.added_{k}"), a - b);
                }
            }
        }
    }
    if let Some(v) = load("memory.json") {
        for k in ["idle_rss_kib", "peak_w2_kib"] {
            if let Some(x) = f(&v[k]) {
                fig.insert(format!("mem.{k}"), x);
            }
        }
    }
    if let Some(x) = load("startup.json").and_then(|v| f(&v["median_ms"])) {
        fig.insert("startup.median_ms".into(), x);
    }
    (fig, problems)
}

fn report(o: &Opts) -> Res<ExitCode> {
    let dir = PathBuf::from(o.req("dir")?);
    let out = PathBuf::from(o.req("out")?);
    let meta = read_json(&dir.join("meta.json")).ok_or("no meta.json")?;
    let nruns = meta["runs"].as_u64().unwrap_or(1) as usize;
    let mut runs = vec![];
    let mut problems = vec![];
    let mut per_run: Vec<BTreeMap<String, f64>> = vec![];
    for i in 1..=nruns {
        let rdir = dir.join(format!("run{i}"));
        let mut raw = BTreeMap::new();
        let (fig, mut p) = run_figures(&rdir, &meta, &mut raw);
        problems.append(&mut p);
        runs.push(json!({"run": i, "figures": fig, "raw": raw}));
        per_run.push(fig);
    }
    let mut keys: Vec<&String> = per_run.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut med: BTreeMap<String, f64> = BTreeMap::new();
    for k in keys {
        let mut xs: Vec<f64> = per_run.iter().filter_map(|m| m.get(k).copied()).collect();
        xs.sort_by(f64::total_cmp);
        med.insert(k.clone(), median(&xs));
    }
    let g = |k: &str| med.get(k).copied();

    let subjects: Vec<String> = meta["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let counts: Vec<u64> = meta["stream_counts"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    let events = meta["events"].as_u64().unwrap_or(64);
    let interval = meta["interval_ms"].as_f64().unwrap_or(20.0);

    // The table.
    let mut t = Table::new(&subjects);
    let w1s = meta["w1_seconds"].as_f64().unwrap_or(0.0);
    let w2s = meta["w2_seconds"].as_f64().unwrap_or(0.0);
    t.section(&format!("W1  concurrency 1, non-stream, {w1s} s"));
    t.row("requests", "w1.{}.requests", 0, &med);
    t.row("p50 (µs)", "w1.{}.p50_us", 0, &med);
    t.row("p99 (µs)", "w1.{}.p99_us", 0, &med);
    t.row("added p50 vs direct (µs)", "w1.{}.added_p50_us", 0, &med);
    t.row("added p99 vs direct (µs)", "w1.{}.added_p99_us", 0, &med);
    t.row(
        "p50 above serde_json floor (µs)",
        "w1.{}.above_json_p50_us",
        0,
        &med,
    );
    t.row(
        "p99 above serde_json floor (µs)",
        "w1.{}.above_json_p99_us",
        0,
        &med,
    );
    t.row("CPU per request (µs)", "w1.{}.cpu_us_per_req", 1, &med);
    t.cpu_rows("w1.{}", &med);
    t.section(&format!("W2  concurrency 32, non-stream, {w2s} s"));
    t.row("requests/s", "w2.{}.rps", 0, &med);
    t.row("p50 (µs)", "w2.{}.p50_us", 0, &med);
    t.row("p99 (µs)", "w2.{}.p99_us", 0, &med);
    t.row("errors (socket + non-2xx)", "w2.{}.errors", 0, &med);
    t.row("rps ÷ passthrough", "w2.{}.rps_vs_passthrough", 2, &med);
    t.row("rps ÷ hyper floor", "w2.{}.rps_vs_hyper", 2, &med);
    t.row("rps ÷ serde_json floor", "w2.{}.rps_vs_hyper_json", 2, &med);
    t.row("CPU per request (µs)", "w2.{}.cpu_us_per_req", 1, &med);
    t.row(
        "CPU ÷ serde_json floor's",
        "w2.{}.cpu_vs_hyper_json",
        2,
        &med,
    );
    t.cpu_rows("w2.{}", &med);
    for n in &counts {
        t.section(&format!(
            "W3  {n} concurrent streams, {events} events {interval} ms apart"
        ));
        t.row(
            "streams checked (all rounds)",
            &format!("w3.{n}.{{}}.streams"),
            0,
            &med,
        );
        t.row_pair(
            &format!("w3.{n}.{{}}.incomplete"),
            &format!("w3.{n}.{{}}.incorrect"),
            &med,
        );
        t.row(
            "TTFC p50 (µs)",
            &format!("w3.{n}.{{}}.ttfc_p50_us"),
            0,
            &med,
        );
        t.row(
            "TTFC p99 (µs)",
            &format!("w3.{n}.{{}}.ttfc_p99_us"),
            0,
            &med,
        );
        t.row(
            "added TTFC p99 (µs)",
            &format!("w3.{n}.{{}}.added_ttfc_p99_us"),
            0,
            &med,
        );
        t.row("gap p50 (µs)", &format!("w3.{n}.{{}}.gap_p50_us"), 0, &med);
        t.row("gap p99 (µs)", &format!("w3.{n}.{{}}.gap_p99_us"), 0, &med);
        t.row(
            "added gap p99 (µs)",
            &format!("w3.{n}.{{}}.added_gap_p99_us"),
            0,
            &med,
        );
        t.row(
            "CPU per stream (ms)",
            &format!("w3.{n}.{{}}.cpu_ms_per_stream"),
            2,
            &med,
        );
        t.cpu_rows(&format!("w3.{n}.{{}}"), &med);
        t.row_mib("peak RSS (MiB)", &format!("w3.{n}.{{}}.peak_rss_kib"), &med);
    }
    t.section("memory and startup (rosetta)");
    t.single(
        "ledger CPU per call, on - off, W2 (µs)",
        g("w2.ledger_cpu_us_per_req").map(|x| format!("{x:.1}")),
    );
    t.single(
        "idle RSS (MiB)",
        g("mem.idle_rss_kib").map(|x| format!("{:.1}", x / 1024.0)),
    );
    t.single(
        "peak RSS during W2 (MiB)",
        g("mem.peak_w2_kib").map(|x| format!("{:.1}", x / 1024.0)),
    );
    for n in &counts {
        t.single(
            &format!("peak RSS during W3 {n} (MiB)"),
            g(&format!("w3.{n}.rosetta.peak_rss_kib")).map(|x| format!("{:.1}", x / 1024.0)),
        );
    }
    t.single(
        "exec to /health 200, all mappings (ms)",
        g("startup.median_ms").map(|x| format!("{x:.1}")),
    );

    let mut stdout = String::new();
    stdout.push_str(&format!(
        "\nRosetta load benchmark: {} run(s), medians; {} on {} cores ({}); rosetta at {}\n",
        nruns,
        meta["date"].as_str().unwrap_or(""),
        meta["nproc"],
        meta["command"].as_str().unwrap_or(""),
        meta["git"].as_str().unwrap_or("?")
    ));
    stdout.push_str(&t.render());
    if let Some(note) = meta["note"].as_str().filter(|n| !n.is_empty()) {
        stdout.push_str(&format!("\nnote: {note}\n"));
    }
    // The mock's headroom.
    if let (Some(d), Some(r), Some(x)) = (
        g("w2.direct.rps"),
        g("w2.rosetta.rps"),
        g("w2.mock_over_rosetta"),
    ) {
        let cpu = match (
            g("w2.rosetta.cpu_mock_pct"),
            g("w2.rosetta.cpu_subject_pct"),
        ) {
            (Some(m), Some(s)) => format!(
                "; during rosetta's W2 the mock used {m:.0}% of one core and rosetta {s:.0}% \
                 ({} cores = {}%)",
                meta["nproc"],
                meta["nproc"].as_u64().unwrap_or(1) * 100
            ),
            _ => String::new(),
        };
        stdout.push_str(&format!(
            "\nmock headroom: the mock alone (direct, W2) served {d:.0} req/s, {x:.1}x rosetta's \
             {r:.0} req/s (median of the per-run ratios){cpu}\n"
        ));
    }

    // Targets.
    let big = counts.iter().max().copied().unwrap_or(0);
    let mut targets: Vec<Target> = vec![];
    let mut target = |name: String, value: Option<f64>, le: bool, bound: f64, unit, phase: &str| {
        targets.push((name, value, le, bound, unit, phase.to_string()));
    };
    // Issue 15: the floors.
    target(
        "W2 CPU per translated request".into(),
        g("w2.rosetta.cpu_us_per_req"),
        true,
        50.0,
        "µs",
        "w2",
    );
    target(
        "W2 requests/s ÷ nginx (issue 15)".into(),
        g("w2.rosetta.rps_vs_passthrough"),
        false,
        0.70,
        "",
        "w2",
    );
    target(
        "ledger CPU per call (on - off)".into(),
        g("w2.ledger_cpu_us_per_req"),
        true,
        3.0,
        "µs",
        "w2",
    );
    target(
        "W1 p50 above serde_json floor".into(),
        g("w1.rosetta.above_json_p50_us"),
        true,
        30.0,
        "µs",
        "w1",
    );
    target(
        "W1 p99 above serde_json floor".into(),
        g("w1.rosetta.above_json_p99_us"),
        true,
        100.0,
        "µs",
        "w1",
    );
    let events_note = if events == 64 {
        ""
    } else {
        " (quick: not 64 events)"
    };
    target(
        format!("CPU per 64-event stream, 200 streams{events_note}"),
        g("w3.200.rosetta.cpu_ms_per_stream"),
        true,
        1.4,
        "ms",
        "w3.200",
    );
    // Issue 6.
    let w1p50 = g("w1.rosetta.added_p50_us");
    target(
        "W1 added p50 (translated)".into(),
        w1p50,
        true,
        50.0,
        "µs",
        "w1",
    );
    let w1p99 = g("w1.rosetta.added_p99_us");
    target(
        "W1 added p99 (translated)".into(),
        w1p99,
        true,
        100.0,
        "µs",
        "w1",
    );
    let ratio = g("w2.rosetta.rps_vs_passthrough");
    target(
        "W2 requests/s ÷ nginx (moonshot)".into(),
        ratio,
        false,
        0.85,
        "",
        "w2",
    );
    let idle = g("mem.idle_rss_kib").map(|k| k / 1024.0);
    target("idle RSS".into(), idle, true, 10.0, "MiB", "");
    let quick = if big < 1000 { " (quick: not 1000)" } else { "" };
    let peak = g(&format!("w3.{big}.rosetta.peak_rss_kib")).map(|k| k / 1024.0);
    target(
        format!("peak RSS, {big} paced streams{quick}"),
        peak,
        true,
        64.0,
        "MiB",
        "",
    );
    for n in &counts {
        let phase = format!("w3.{n}");
        let ttfc = g(&format!("w3.{n}.rosetta.added_ttfc_p99_us"));
        target(
            format!("added TTFC p99, {n} streams"),
            ttfc,
            true,
            200.0,
            "µs",
            &phase,
        );
        let gap = g(&format!("w3.{n}.rosetta.added_gap_p99_us"));
        target(
            format!("added gap p99, {n} streams"),
            gap,
            true,
            50.0,
            "µs",
            &phase,
        );
    }
    let startup = g("startup.median_ms");
    target(
        "exec to ready, all mappings".into(),
        startup,
        true,
        50.0,
        "ms",
        "",
    );
    stdout.push_str("\ntargets (issues 15 and 6; rosetta, ledger on, medians):\n");
    let mut tjson = vec![];
    let mut met = 0;
    for (name, value, le, bound, unit, phase) in &targets {
        let fmt = |x: f64| {
            if unit.is_empty() {
                format!("{x:.2}")
            } else if *unit == "µs" && x.abs() < 10.0 {
                format!("{x:.1} {unit}")
            } else if *unit == "µs" {
                format!("{x:.0} {unit}")
            } else if *unit == "ms" && x.abs() < 10.0 {
                format!("{x:.2} {unit}")
            } else {
                format!("{x:.1} {unit}")
            }
        };
        let op = if *le { "<=" } else { ">=" };
        let (verdict, ok) = match value {
            None => ("NOT MEASURED".to_string(), false),
            Some(v) => {
                let ok = if *le { *v <= *bound } else { *v >= *bound };
                if ok {
                    let neg = if *v < 0.0 {
                        " (below zero: within the baseline's noise)"
                    } else {
                        ""
                    };
                    (format!("MET{neg}"), true)
                } else {
                    let by = (v - bound).abs();
                    let rel = if *bound != 0.0 { v / bound } else { f64::NAN };
                    (
                        format!("MISSED by {} ({rel:.2}x the bound)", fmt(by)),
                        false,
                    )
                }
            }
        };
        if ok {
            met += 1;
        }
        // Other processes' CPU during the phase, for the baseline and for rosetta.
        let noise = ["direct", "rosetta"]
            .iter()
            .filter_map(|s| g(&format!("{phase}.{s}.cpu_other_pct")))
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
        let noise = match noise {
            Some(x) if x >= NOISY_PCT => {
                format!("  [noisy: other processes used {x:.0}% of a core]")
            }
            _ => String::new(),
        };
        stdout.push_str(&format!(
            "  {:<40} {:>12}   target {op} {:<10} {verdict}{noise}\n",
            name,
            value.map(fmt).unwrap_or_else(|| "-".into()),
            fmt(*bound),
        ));
        tjson.push(json!({"figure": name, "value": value, "target": format!("{op} {}", fmt(*bound)), "unit": unit, "met": ok}));
    }
    if !problems.is_empty() {
        stdout.push_str("\nHARNESS PROBLEMS (exit 1):\n");
        for p in &problems {
            stdout.push_str(&format!("  {p}\n"));
        }
    }
    let num =
        |x: Option<f64>, d: usize| x.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "-".into());
    let summary = format!(
        "summary: rosetta CPU/request {} µs (serde_json floor {} µs, hyper floor {} µs, nginx {} µs), ledger {} µs/call, rosetta/passthrough rps {}, rosetta/serde_json-floor rps {}, added p50 {} µs p99 {} µs, added TTFC p99 {} µs, added gap p99 {} µs ({big} streams), idle RSS {} MiB, peak RSS {} MiB ({big} streams), startup {} ms, mock {}x rosetta rps, targets met {met}/{}",
        num(g("w2.rosetta.cpu_us_per_req"), 1),
        num(g("w2.hyper_json.cpu_us_per_req"), 1),
        num(g("w2.hyper.cpu_us_per_req"), 1),
        num(g("w2.passthrough.cpu_us_per_req"), 1),
        num(g("w2.ledger_cpu_us_per_req"), 1),
        num(g("w2.rosetta.rps_vs_passthrough"), 2),
        num(g("w2.rosetta.rps_vs_hyper_json"), 2),
        num(g("w1.rosetta.added_p50_us"), 0),
        num(g("w1.rosetta.added_p99_us"), 0),
        num(g(&format!("w3.{big}.rosetta.added_ttfc_p99_us")), 0),
        num(g(&format!("w3.{big}.rosetta.added_gap_p99_us")), 0),
        num(g("mem.idle_rss_kib").map(|k| k / 1024.0), 1),
        num(
            g(&format!("w3.{big}.rosetta.peak_rss_kib")).map(|k| k / 1024.0),
            1
        ),
        num(g("startup.median_ms"), 1),
        num(g("w2.mock_over_rosetta"), 1),
        targets.len(),
    );
    stdout.push('\n');
    stdout.push_str(&summary);
    stdout.push('\n');

    let results = json!({
        "meta": meta,
        "median": med,
        "targets": tjson,
        "problems": problems,
        "summary": summary,
        "runs": runs,
    });
    if let Some(parent) = out.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", out.display()))?;
    print!("{stdout}");
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A plain-text table: one row per figure, one column per subject.
struct Table {
    subjects: Vec<String>,
    rows: Vec<(String, Vec<String>)>,
}

impl Table {
    fn new(subjects: &[String]) -> Table {
        Table {
            subjects: subjects.to_vec(),
            rows: vec![],
        }
    }
    fn section(&mut self, title: &str) {
        self.rows.push((format!("\u{1}{title}"), vec![]));
    }
    fn cells(
        &self,
        key: &str,
        med: &BTreeMap<String, f64>,
        fmt: impl Fn(f64) -> String,
    ) -> Vec<String> {
        self.subjects
            .iter()
            .map(|s| {
                med.get(&key.replace("{}", s))
                    .map(|&x| fmt(x))
                    .unwrap_or_else(|| "-".into())
            })
            .collect()
    }
    fn row(&mut self, label: &str, key: &str, decimals: usize, med: &BTreeMap<String, f64>) {
        let cells = self.cells(key, med, |x| format!("{x:.decimals$}"));
        self.rows.push((label.to_string(), cells));
    }
    /// CPU use during the phase, in % of one core (the machine has `nproc` x 100%).
    fn cpu_rows(&mut self, prefix: &str, med: &BTreeMap<String, f64>) {
        for (label, k) in [
            ("CPU % subject", "cpu_subject_pct"),
            ("CPU % mock", "cpu_mock_pct"),
            ("CPU % load generator", "cpu_client_pct"),
            ("CPU % other processes (noise)", "cpu_other_pct"),
        ] {
            self.row(label, &format!("{prefix}.{k}"), 0, med);
        }
    }
    fn row_pair(&mut self, a: &str, b: &str, med: &BTreeMap<String, f64>) {
        let ca = self.cells(a, med, |x| format!("{x:.0}"));
        let cb = self.cells(b, med, |x| format!("{x:.0}"));
        let cells = ca
            .into_iter()
            .zip(cb)
            .map(|(x, y)| if x == "-" { x } else { format!("{x} / {y}") })
            .collect();
        self.rows.push(("incomplete / incorrect".into(), cells));
    }
    fn row_mib(&mut self, label: &str, key: &str, med: &BTreeMap<String, f64>) {
        let cells = self.cells(key, med, |x| format!("{:.1}", x / 1024.0));
        self.rows.push((label.to_string(), cells));
    }
    /// A rosetta-only figure, in the rosetta column.
    fn single(&mut self, label: &str, v: Option<String>) {
        let cells = self
            .subjects
            .iter()
            .map(|s| {
                if s == "rosetta" {
                    v.clone().unwrap_or_else(|| "-".into())
                } else {
                    String::new()
                }
            })
            .collect();
        self.rows.push((label.to_string(), cells));
    }
    fn render(&self) -> String {
        let w0 = self
            .rows
            .iter()
            .map(|r| r.0.chars().count())
            .filter(|&n| n < 60)
            .max()
            .unwrap_or(10)
            + 2;
        let wc = self
            .subjects
            .iter()
            .map(|s| s.len() + 2)
            .max()
            .unwrap_or(13)
            .max(13);
        let mut s = String::new();
        for (label, cells) in &self.rows {
            if let Some(title) = label.strip_prefix('\u{1}') {
                s.push_str(&format!("\n{title}\n"));
                s.push_str(&format!("  {:<w0$}", "figure"));
                for sub in &self.subjects {
                    s.push_str(&format!("{sub:>wc$}"));
                }
                s.push('\n');
                continue;
            }
            s.push_str(&format!("  {label:<w0$}"));
            for c in cells {
                s.push_str(&format!("{c:>wc$}"));
            }
            s.push('\n');
        }
        s
    }
}
