//! Starting Rosetta in-process and talking to it: a small HTTP client and SSE helpers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rosetta::serving::server::serve;
use rosetta::serving::state::State;
use rosetta_testkit::FakeUpstream;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running Rosetta.
pub struct Proxy {
    pub base: String,
    pub state: Arc<State>,
    _shutdown: oneshot::Sender<()>,
}

impl Proxy {
    /// Rosetta with the shipped mappings and this environment.
    pub async fn start(env: &[(&str, String)]) -> Proxy {
        Self::start_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings"), env).await
    }

    /// Rosetta with the shipped mapping `name`, its text edited by `edit` (for timeouts).
    pub async fn start_edited(
        name: &str,
        edit: impl Fn(&str) -> String,
        env: &[(&str, String)],
    ) -> Proxy {
        let src = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("mappings")
                .join(format!("{name}.yaml")),
        )
        .unwrap();
        let dir = temp_dir();
        std::fs::write(dir.join(format!("{name}.yaml")), edit(&src)).unwrap();
        Self::start_dir(&dir, env).await
    }

    pub async fn start_dir(dir: &Path, env: &[(&str, String)]) -> Proxy {
        Self::start_with(dir, env, |s| s).await
    }

    /// Rosetta with the mappings of `dir`, its state finished by `finish` (accounting, keys).
    pub async fn start_with(
        dir: &Path,
        env: &[(&str, String)],
        finish: impl FnOnce(State) -> State,
    ) -> Proxy {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let mappings = rosetta::mapping::load_dir(dir, &|k| env.get(k).cloned())
            .unwrap_or_else(|e| panic!("mappings failed to load: {e:?}"));
        let state = Arc::new(finish(State::new(mappings)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let s = Arc::clone(&state);
        tokio::spawn(async move {
            serve(listener, s, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Proxy {
            base,
            state,
            _shutdown: tx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn metrics(&self) -> String {
        self.state.metrics.render()
    }
}

pub fn temp_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rosetta-test-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Adds `line` (indented) under the `upstream:` key of a mapping.
pub fn with_upstream_line(src: &str, line: &str) -> String {
    src.replacen("upstream:\n", &format!("upstream:\n  {line}\n"), 1)
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A whole response.
pub struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
}

impl Resp {
    /// Checks an OpenAI embeddings list of `n` items for `model` and returns its `data`.
    pub fn embeddings(&self, model: &str, n: usize) -> Vec<Value> {
        assert_eq!(self.status, 200, "{}", self.text);
        let j = self.json();
        assert_eq!(j["object"], "list", "{j}");
        assert_eq!(j["model"], model, "{j}");
        let data = j["data"].as_array().expect("data is a list").clone();
        assert_eq!(data.len(), n, "{j}");
        for (i, d) in data.iter().enumerate() {
            assert_eq!(d["index"], i, "{j}");
            assert_eq!(d["object"], "embedding", "{j}");
        }
        data
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts the OpenAI error shape and returns the error object.
    pub fn openai_error(&self) -> Value {
        let j = self.json();
        let e = j
            .get("error")
            .unwrap_or_else(|| panic!("no error key: {j}"))
            .clone();
        for k in ["message", "type", "param", "code"] {
            assert!(e.get(k).is_some(), "error lacks {k}: {e}");
        }
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
        e
    }
}

pub async fn request(method: &str, url: &str, body: Option<String>) -> Resp {
    request_within(method, url, body, Duration::from_secs(20)).await
}

/// [`request`], with the answer's headers due within `timeout`.
pub async fn request_within(
    method: &str,
    url: &str,
    body: Option<String>,
    timeout: Duration,
) -> Resp {
    exchange(method, url, body, &[], timeout).await
}

/// [`request`] with extra request headers.
pub async fn request_with_headers(
    method: &str,
    url: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Resp {
    exchange(method, url, body, headers, Duration::from_secs(20)).await
}

async fn exchange(
    method: &str,
    url: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Resp {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let resp = tokio::time::timeout(timeout, client().request(req))
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

pub async fn post(url: &str, body: &Value) -> Resp {
    request("POST", url, Some(body.to_string())).await
}

/// A streamed response: every body frame with its arrival time.
pub struct Streamed {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub frames: Vec<(Instant, Bytes)>,
    /// Set when the body ended with a transport error.
    #[allow(dead_code)]
    pub error: Option<String>,
}

impl Streamed {
    pub fn text(&self) -> String {
        self.frames
            .iter()
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    /// The JSON of every `data:` event except `[DONE]`.
    pub fn chunks(&self) -> Vec<Value> {
        self.text()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("bad chunk {d:?}: {e}")))
            .collect()
    }

    pub fn done(&self) -> bool {
        self.text().ends_with("data: [DONE]\n\n")
    }

    /// Concatenated `delta.content`.
    pub fn content(&self) -> String {
        self.delta_text("content")
    }

    /// Concatenated `delta.reasoning_content`.
    pub fn reasoning(&self) -> String {
        self.delta_text("reasoning_content")
    }

    fn delta_text(&self, field: &str) -> String {
        self.chunks()
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][field].as_str().map(String::from))
            .collect()
    }

    /// Checks the OpenAI stream invariants and returns the chunks.
    pub fn assert_valid(&self) -> Vec<Value> {
        assert_eq!(self.status, 200, "{}", self.text());
        assert_eq!(self.headers["content-type"], "text/event-stream");
        let chunks = self.chunks();
        assert!(!chunks.is_empty());
        let (id, created) = (&chunks[0]["id"], &chunks[0]["created"]);
        assert!(id.as_str().unwrap().starts_with("chatcmpl-"));
        assert!(created.is_u64());
        let with_choices: Vec<&Value> = chunks
            .iter()
            .filter(|c| !c["choices"].as_array().unwrap().is_empty())
            .collect();
        assert_eq!(with_choices[0]["choices"][0]["delta"]["role"], "assistant");
        for (i, c) in chunks.iter().enumerate() {
            assert_eq!(&c["id"], id);
            assert_eq!(&c["created"], created);
            assert_eq!(c["object"], "chat.completion.chunk");
            if i > 0 {
                assert!(
                    c["choices"][0]["delta"].get("role").is_none(),
                    "role repeated: {c}"
                );
            }
        }
        let finishes: Vec<usize> = with_choices
            .iter()
            .enumerate()
            .filter(|(_, c)| !c["choices"][0]["finish_reason"].is_null())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            finishes,
            vec![with_choices.len() - 1],
            "exactly one finish_reason, on the last choice chunk"
        );
        assert!(self.done(), "no [DONE]: {}", self.text());
        chunks
    }

    pub fn finish_reason(&self) -> Value {
        self.chunks()
            .iter()
            .rev()
            .find_map(|c| {
                c["choices"][0]
                    .get("finish_reason")
                    .filter(|f| !f.is_null())
                    .cloned()
            })
            .unwrap_or(Value::Null)
    }

    /// Tool-call deltas: (index, id, name, arguments piece).
    /// Checks streamed tool calls: starts at indexes 0, 1... with id, type, name and empty
    /// arguments, then at least two argument pieces per call that join into `args`.
    pub fn assert_tool_calls(&self, calls: &[(&str, Value)]) {
        let deltas = self.tool_deltas();
        let starts: Vec<&Value> = deltas.iter().filter(|d| d.get("id").is_some()).collect();
        assert_eq!(starts.len(), calls.len(), "{deltas:?}");
        for (i, (d, (name, _))) in starts.iter().zip(calls).enumerate() {
            assert_eq!(d["index"], i);
            assert_eq!(d["type"], "function");
            assert_eq!(
                d["function"],
                serde_json::json!({"name": name, "arguments": ""})
            );
            assert!(d["id"].as_str().is_some_and(|id| !id.is_empty()));
        }
        for (index, (_, args)) in calls.iter().enumerate() {
            let pieces: Vec<&str> = deltas
                .iter()
                .filter(|d| d["index"] == index && d.get("id").is_none())
                .map(|d| d["function"]["arguments"].as_str().unwrap())
                .collect();
            assert!(pieces.len() > 1, "arguments arrive in pieces: {pieces:?}");
            assert_eq!(
                &serde_json::from_str::<Value>(&pieces.concat()).unwrap(),
                args
            );
        }
    }

    pub fn tool_deltas(&self) -> Vec<Value> {
        self.chunks()
            .iter()
            .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
            .flat_map(|t| t.as_array().unwrap().clone())
            .collect()
    }
}

pub async fn stream(url: &str, body: &Value) -> Streamed {
    stream_with_headers(url, body, &[]).await
}

/// [`stream`] with extra request headers.
pub async fn stream_with_headers(url: &str, body: &Value, headers: &[(&str, &str)]) -> Streamed {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_string()))).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(20), client().request(req))
        .await
        .expect("headers in time")
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body: Incoming = resp.into_body();
    let mut frames = Vec::new();
    let mut error = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("frame in time")
        {
            None => break,
            Some(Err(e)) => {
                error = Some(e.to_string());
                break;
            }
            Some(Ok(f)) => {
                if let Ok(d) = f.into_data() {
                    frames.push((Instant::now(), d));
                }
            }
        }
    }
    Streamed {
        status,
        headers,
        frames,
        error,
    }
}

/// An OpenAI chat request with one user message.
pub fn chat(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// The `get_weather` tool (and `get_time` as a second one).
pub fn tools() -> Value {
    serde_json::json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "description": "Time in a zone",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}}
    ])
}

/// A `rosetta serve` child process on a free port, killed when dropped (even when a test
/// fails), with its stderr read line by line on a thread.
pub struct Served {
    child: std::process::Child,
    addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line read so far.
    log: std::cell::RefCell<Vec<String>>,
}

impl Served {
    /// `rosetta serve --listen 127.0.0.1:0 --mappings DIR FLAGS...`, with the inherited
    /// `ROSETTA_*` and `RUST_LOG` variables removed, `NO_COLOR=1`, then `env`. Waits (up to
    /// 20 s) for the "listening on" line to learn the address.
    pub fn spawn(dir: &Path, env: &[(&str, &str)], flags: &[&str]) -> Served {
        Self::spawn_limited(dir, env, flags, None)
    }

    /// [`Served::spawn`], with the open-file limit lowered to `nofile` (`ulimit -n` in a
    /// shell that then execs Rosetta) when given.
    pub fn spawn_limited(
        dir: &Path,
        env: &[(&str, &str)],
        flags: &[&str],
        nofile: Option<u32>,
    ) -> Served {
        use std::io::BufRead;
        let bin = env!("CARGO_BIN_EXE_rosetta");
        let mut cmd = match nofile {
            None => std::process::Command::new(bin),
            Some(n) => {
                let mut sh = std::process::Command::new("sh");
                sh.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), bin]);
                sh
            }
        };
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--mappings"])
            .arg(dir)
            .args(flags)
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("ROSETTA_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.env("NO_COLOR", "1");
        // No ledger file in the working directory unless a test asks for one.
        cmd.env("ROSETTA_LEDGER", "off");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut served = Served {
            child,
            addr: String::new(),
            lines,
            log: Default::default(),
        };
        let marker = "listening on http://";
        let line = served
            .wait_line(marker, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("rosetta serve did not start:\n{}", served.log()));
        let rest = &line[line.find(marker).unwrap() + marker.len()..];
        served.addr = rest
            .split(|c: char| c.is_whitespace() || c == '\x1b')
            .next()
            .unwrap()
            .to_string();
        served
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn metrics(&self) -> String {
        request("GET", &self.url("/metrics"), None).await.text
    }

    /// Reads stderr until a line contains `needle`; `None` when `timeout` passes first.
    pub fn wait_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.log.borrow_mut().push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        let mut log = self.log.borrow_mut();
        log.extend(self.lines.try_iter());
        log.join("\n")
    }

    /// Everything logged so far, after a short pause for the last lines.
    pub fn drain(&self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        self.log()
    }

    /// Sends signal `name` (`HUP`, `TERM`...) with `kill`.
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// The exit status, if the process has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the process to exit; its status and how long that took.
    pub fn wait_exit(&mut self, timeout: Duration) -> (Option<std::process::ExitStatus>, Duration) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (Some(status), started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (None, started.elapsed())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rosetta serve` with only the Anthropic mapping, in front of `fake`, the watcher off.
pub fn serve_anthropic(fake: &FakeUpstream, env: &[(&str, &str)], flags: &[&str]) -> Served {
    let dir = temp_dir();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/mappings/anthropic.yaml"),
        dir.join("anthropic.yaml"),
    )
    .unwrap();
    let base = fake.base_url();
    let mut all = vec![
        ("ANTHROPIC_BASE_URL", base.as_str()),
        ("ANTHROPIC_API_KEY", "k"),
    ];
    all.extend_from_slice(env);
    let mut args = vec!["--watch=false"];
    args.extend_from_slice(flags);
    Served::spawn(&dir, &all, &args)
}
