//! The generic fake server: accepts connections, records every request, answers with a [`Reply`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::reply::{Reply, ReplyBody};
use crate::{anthropic, ollama};

/// Decides the [`Reply`] for a recorded request.
pub type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// One request as received (recorded before any validation).
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    /// Path including the query string, e.g. `/v1/messages?beta=true`.
    pub path: String,
    /// Header names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON; `Value::Null` if it is not JSON.
    pub body: Value,
    pub raw_body: String,
}

impl Recorded {
    /// First value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// `{"method","path","headers":{name:value},"body"}` as served by `GET /__requests`.
    pub fn to_json(&self) -> Value {
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect();
        json!({"method": self.method, "path": self.path, "headers": headers, "body": self.body})
    }
}

#[derive(Default)]
struct State {
    requests: Mutex<Vec<Recorded>>,
    open: AtomicUsize,
}

impl State {
    fn requests(&self) -> MutexGuard<'_, Vec<Recorded>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fake upstream listening on 127.0.0.1; dropping it stops the server and closes its connections.
pub struct FakeUpstream {
    addr: SocketAddr,
    state: Arc<State>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl FakeUpstream {
    /// A faithful fake Anthropic Messages API; any non-empty `x-api-key` is accepted.
    pub async fn anthropic() -> FakeUpstream {
        Self::local(anthropic::handler(None)).await
    }

    /// A faithful fake Anthropic Messages API that requires exactly this `x-api-key`.
    pub async fn anthropic_with_key(key: &str) -> FakeUpstream {
        Self::local(anthropic::handler(Some(key.to_string()))).await
    }

    /// A faithful fake Ollama native API.
    pub async fn ollama() -> FakeUpstream {
        Self::local(ollama::handler()).await
    }

    /// A faithful fake Google Gemini API (`v1beta`); any non-empty `x-goog-api-key` or `?key=` is accepted.
    pub async fn gemini() -> FakeUpstream {
        Self::local(crate::gemini::handler(None)).await
    }

    /// A faithful fake Google Gemini API that requires exactly this key (header or `?key=`).
    pub async fn gemini_with_key(key: &str) -> FakeUpstream {
        Self::local(crate::gemini::handler(Some(key.to_string()))).await
    }

    /// A faithful fake Cohere API v2 (`/v2/chat`, `/v2/embed`); any non-empty bearer token is accepted.
    pub async fn cohere() -> FakeUpstream {
        Self::local(crate::cohere::handler(None)).await
    }

    /// A faithful fake Cohere API v2 that requires `Authorization: Bearer <key>`.
    pub async fn cohere_with_key(key: &str) -> FakeUpstream {
        Self::local(crate::cohere::handler(Some(key.to_string()))).await
    }

    /// A faithful fake Hugging Face TGI native API (`/generate`, `/generate_stream`); no auth.
    pub async fn tgi() -> FakeUpstream {
        Self::local(crate::tgi::handler(None)).await
    }

    /// A faithful fake TGI launched with `--api-key`: every route needs `Authorization: Bearer <key>`.
    pub async fn tgi_with_key(key: &str) -> FakeUpstream {
        Self::local(crate::tgi::handler(Some(key.to_string()))).await
    }

    /// A faithful fake Azure OpenAI (deployment routes); any non-empty `api-key` is accepted.
    pub async fn azure() -> FakeUpstream {
        Self::local(crate::azure::handler(None)).await
    }

    /// A faithful fake Azure OpenAI that requires exactly this `api-key`.
    pub async fn azure_with_key(key: &str) -> FakeUpstream {
        Self::local(crate::azure::handler(Some(key.to_string()))).await
    }

    /// A faithful fake OpenAI-compatible server (vLLM / llama.cpp style); no auth; rejects the
    /// parameters `store`, `metadata` and `service_tier`.
    pub async fn openai() -> FakeUpstream {
        Self::openai_with(None, crate::openai_compat::DEFAULT_UNSUPPORTED).await
    }

    /// The OpenAI-compatible fake requiring `Authorization: Bearer <key>`.
    pub async fn openai_with_key(key: &str) -> FakeUpstream {
        Self::openai_with(Some(key), crate::openai_compat::DEFAULT_UNSUPPORTED).await
    }

    /// The OpenAI-compatible fake with an optional key and its own list of rejected parameters.
    pub async fn openai_with(key: Option<&str>, unsupported: &[&str]) -> FakeUpstream {
        let unsupported = unsupported.iter().map(|s| s.to_string()).collect();
        let handler = crate::openai_compat::handler(key.map(str::to_string), unsupported);
        Self::local(handler).await
    }

    /// Each request is answered by the next reply in the list; the last one repeats.
    pub async fn scripted(replies: Vec<Reply>) -> FakeUpstream {
        let next = AtomicUsize::new(0);
        Self::with_handler(move |_| {
            let i = next.fetch_add(1, Ordering::SeqCst);
            match replies.get(i).or(replies.last()) {
                Some(reply) => reply.clone(),
                None => Reply::raw(500, "text/plain", "no scripted reply"),
            }
        })
        .await
    }

    /// A server whose replies come from a closure.
    pub async fn with_handler(
        f: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> FakeUpstream {
        Self::local(Arc::new(f)).await
    }

    async fn local(handler: Handler) -> FakeUpstream {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::bind(addr, handler).await.expect("bind 127.0.0.1:0")
    }

    /// Serves `handler` on `addr` (use port 0 for a free port). Must run inside a tokio runtime.
    pub async fn bind(addr: SocketAddr, handler: Handler) -> io::Result<FakeUpstream> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, state.clone(), handler, rx));
        Ok(FakeUpstream {
            addr,
            state,
            shutdown,
            task,
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in order (admin `/__*` requests excluded).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests().clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.state.requests().clear();
    }

    /// TCP connections currently open.
    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// Polls until `open_connections() == n` or `timeout` passes; returns whether it got there.
    pub async fn wait_open_connections(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.open_connections() != n {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<State>,
    handler: Handler,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            state.clone(),
            handler.clone(),
            stop.clone(),
        ));
    }
}

struct OpenGuard(Arc<State>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_connection(
    stream: TcpStream,
    state: Arc<State>,
    handler: Handler,
    mut stop: watch::Receiver<bool>,
) {
    state.open.fetch_add(1, Ordering::SeqCst);
    let _guard = OpenGuard(state.clone());
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(ConnIo {
        inner: stream,
        reset: reset.clone(),
    });
    let service = service_fn(move |req| handle(req, state.clone(), handler.clone(), reset.clone()));
    let conn = http1::Builder::new().serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        _ = stop.changed() => {}
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    handler: Handler,
    reset: Arc<AtomicBool>,
) -> Result<Response<ReplyBody>, Infallible> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.to_string());
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let recorded = Recorded {
        method,
        path,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw_body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    let reply = match admin(&recorded, &state) {
        Some(reply) => reply,
        None => {
            state.requests().push(recorded.clone());
            handler(&recorded)
        }
    };
    match reply.into_response(reset) {
        Some(response) => Ok(response),
        None => std::future::pending().await,
    }
}

/// The `/__requests` and `/__stats` endpoints, common to every fake.
fn admin(req: &Recorded, state: &State) -> Option<Reply> {
    match (req.method.as_str(), req.path_only()) {
        ("GET", "/__requests") => {
            let all: Vec<Value> = state.requests().iter().map(Recorded::to_json).collect();
            Some(Reply::json(200, Value::Array(all)))
        }
        ("DELETE", "/__requests") => {
            let mut requests = state.requests();
            let cleared = requests.len();
            requests.clear();
            Some(Reply::json(200, json!({"cleared": cleared})))
        }
        ("GET", "/__stats") => {
            // The connection asking is not counted.
            let open = state.open.load(Ordering::SeqCst).saturating_sub(1);
            let requests = state.requests().len();
            Some(Reply::json(
                200,
                json!({"open_connections": open, "requests": requests}),
            ))
        }
        _ => None,
    }
}

/// The accepted socket; when a reply asked for a reset, it is closed with a TCP RST.
struct ConnIo {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ConnIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ConnIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ConnIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
