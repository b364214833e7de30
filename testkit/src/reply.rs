//! `Reply` and `SseEvent`: what a fake server answers, and how it is put on the wire (with pauses).

use std::convert::Infallible;
use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde_json::Value;

/// Error type of response bodies (only produced to abort a connection on purpose).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type every fake response uses.
pub type ReplyBody = UnsyncBoxBody<Bytes, BoxError>;

/// One server-sent event: `event: <name>` (optional) + `data: <data>` + blank line, sent after `delay`.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub delay: Duration,
}

impl SseEvent {
    /// A named event (`event:` line + `data:` line). `data` may be a `serde_json::Value` or a string.
    pub fn named(event: impl Into<String>, data: impl Display) -> Self {
        SseEvent {
            event: Some(event.into()),
            data: data.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A data-only event (OpenAI/Gemini dialect), e.g. `SseEvent::data("[DONE]")`.
    pub fn data(data: impl Display) -> Self {
        SseEvent {
            event: None,
            data: data.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// Pause this long before sending the event.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Pause this many milliseconds before sending the event.
    pub fn delay_ms(self, ms: u64) -> Self {
        self.delay(Duration::from_millis(ms))
    }

    /// The event as written on the wire (multi-line data becomes several `data:` lines).
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.event {
            out.push_str(&format!("event: {name}\n"));
        }
        for line in self.data.split('\n') {
            out.push_str(&format!("data: {line}\n"));
        }
        out.push('\n');
        out
    }
}

/// How a fake server answers one request. Build with the constructors, refine with
/// [`Reply::header`], [`Reply::status`] and [`Reply::pace`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A JSON body (`application/json`).
    Json {
        status: u16,
        body: Value,
        headers: Vec<(String, String)>,
    },
    /// A `text/event-stream` body, each event sent after its own delay.
    Sse {
        status: u16,
        events: Vec<SseEvent>,
        headers: Vec<(String, String)>,
    },
    /// An `application/x-ndjson` body, one JSON object per line, each sent after its delay.
    Ndjson {
        status: u16,
        lines: Vec<(Value, Duration)>,
        headers: Vec<(String, String)>,
    },
    /// Any body with any content type (e.g. garbage).
    Raw {
        status: u16,
        content_type: String,
        body: String,
        headers: Vec<(String, String)>,
    },
    /// Read the request, never answer, keep the connection open.
    Hang,
    /// Send the status line, headers and these chunks (each after its delay), then reset the TCP
    /// connection (no chunked terminator; the peer sees an incomplete body / connection reset).
    ResetAfter {
        status: u16,
        content_type: String,
        chunks: Vec<(String, Duration)>,
        headers: Vec<(String, String)>,
    },
    /// Any body sent as these chunks (each after its delay), then a clean end; for hand-framed
    /// streams such as TGI's `data:{...}` SSE without a space after the colon.
    Chunks {
        status: u16,
        content_type: String,
        chunks: Vec<(String, Duration)>,
        headers: Vec<(String, String)>,
    },
    /// Binary chunks (each after its delay), then a clean end (or, with `reset`, a TCP
    /// reset): event-stream frames.
    Binary {
        status: u16,
        content_type: String,
        chunks: Vec<(Vec<u8>, Duration)>,
        headers: Vec<(String, String)>,
        reset: bool,
    },
    /// Send `body` slowly: `chunk_size` characters at a time, pausing `delay` before each chunk.
    Drip {
        status: u16,
        content_type: String,
        body: String,
        chunk_size: usize,
        delay: Duration,
        headers: Vec<(String, String)>,
    },
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply::Json {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// Named-event SSE from `(event name, data)` pairs, e.g. `Reply::sse([("message_stop", json!({..}))])`.
    pub fn sse<N: Into<String>, D: Display>(events: impl IntoIterator<Item = (N, D)>) -> Self {
        Self::sse_events(
            events
                .into_iter()
                .map(|(n, d)| SseEvent::named(n, d))
                .collect(),
        )
    }

    /// Data-only SSE, e.g. `Reply::sse_data([json!({..}).to_string(), "[DONE]".into()])`.
    pub fn sse_data<D: Display>(data: impl IntoIterator<Item = D>) -> Self {
        Self::sse_events(data.into_iter().map(SseEvent::data).collect())
    }

    pub fn sse_events(events: Vec<SseEvent>) -> Self {
        Reply::Sse {
            status: 200,
            events,
            headers: Vec::new(),
        }
    }

    /// NDJSON lines without pauses (use [`Reply::pace`] to space them).
    pub fn ndjson(lines: impl IntoIterator<Item = Value>) -> Self {
        let lines = lines.into_iter().map(|v| (v, Duration::ZERO)).collect();
        Reply::Ndjson {
            status: 200,
            lines,
            headers: Vec::new(),
        }
    }

    pub fn raw(status: u16, content_type: impl Into<String>, body: impl Into<String>) -> Self {
        Reply::Raw {
            status,
            content_type: content_type.into(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn hang() -> Self {
        Reply::Hang
    }

    /// Status + headers + `chunks` (sent without pauses unless [`Reply::pace`] is used), then a reset.
    pub fn reset_after<S: Into<String>>(
        status: u16,
        content_type: impl Into<String>,
        chunks: impl IntoIterator<Item = S>,
    ) -> Self {
        Reply::ResetAfter {
            status,
            content_type: content_type.into(),
            chunks: chunks
                .into_iter()
                .map(|c| (c.into(), Duration::ZERO))
                .collect(),
            headers: Vec::new(),
        }
    }

    /// Status + headers + `chunks` (sent without pauses unless [`Reply::pace`] is used), clean end.
    pub fn chunks<S: Into<String>>(
        status: u16,
        content_type: impl Into<String>,
        chunks: impl IntoIterator<Item = S>,
    ) -> Self {
        Reply::Chunks {
            status,
            content_type: content_type.into(),
            chunks: chunks
                .into_iter()
                .map(|c| (c.into(), Duration::ZERO))
                .collect(),
            headers: Vec::new(),
        }
    }

    /// Binary chunks sent without pauses unless [`Reply::pace`] is used, then a clean end.
    pub fn binary(
        status: u16,
        content_type: impl Into<String>,
        chunks: impl IntoIterator<Item = Vec<u8>>,
    ) -> Self {
        Reply::Binary {
            status,
            content_type: content_type.into(),
            chunks: chunks.into_iter().map(|c| (c, Duration::ZERO)).collect(),
            headers: Vec::new(),
            reset: false,
        }
    }

    /// The same binary reply ending in a TCP reset instead of a clean end.
    pub fn then_reset(mut self) -> Self {
        if let Reply::Binary { reset, .. } = &mut self {
            *reset = true;
        }
        self
    }

    pub fn drip(
        status: u16,
        content_type: impl Into<String>,
        body: impl Into<String>,
        chunk_size: usize,
        delay: Duration,
    ) -> Self {
        Reply::Drip {
            status,
            content_type: content_type.into(),
            body: body.into(),
            chunk_size,
            delay,
            headers: Vec::new(),
        }
    }

    /// Adds a response header (no effect on [`Reply::Hang`]).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Some(h) = self.headers_mut() {
            h.push((name.into(), value.into()));
        }
        self
    }

    /// Sets the HTTP status (no effect on [`Reply::Hang`]).
    pub fn status(mut self, new: u16) -> Self {
        match &mut self {
            Reply::Json { status, .. }
            | Reply::Sse { status, .. }
            | Reply::Ndjson { status, .. }
            | Reply::Raw { status, .. }
            | Reply::ResetAfter { status, .. }
            | Reply::Chunks { status, .. }
            | Reply::Binary { status, .. }
            | Reply::Drip { status, .. } => *status = new,
            Reply::Hang => {}
        }
        self
    }

    /// Pause `every` before each streamed event/line/chunk except the first.
    pub fn pace(mut self, every: Duration) -> Self {
        let gap = |i: usize| if i == 0 { Duration::ZERO } else { every };
        match &mut self {
            Reply::Sse { events, .. } => events
                .iter_mut()
                .enumerate()
                .for_each(|(i, e)| e.delay = gap(i)),
            Reply::Ndjson { lines, .. } => {
                lines.iter_mut().enumerate().for_each(|(i, l)| l.1 = gap(i))
            }
            Reply::ResetAfter { chunks, .. } | Reply::Chunks { chunks, .. } => chunks
                .iter_mut()
                .enumerate()
                .for_each(|(i, c)| c.1 = gap(i)),
            Reply::Binary { chunks, .. } => chunks
                .iter_mut()
                .enumerate()
                .for_each(|(i, c)| c.1 = gap(i)),
            Reply::Drip { delay, .. } => *delay = every,
            _ => {}
        }
        self
    }

    fn headers_mut(&mut self) -> Option<&mut Vec<(String, String)>> {
        match self {
            Reply::Json { headers, .. }
            | Reply::Sse { headers, .. }
            | Reply::Ndjson { headers, .. }
            | Reply::Raw { headers, .. }
            | Reply::ResetAfter { headers, .. }
            | Reply::Chunks { headers, .. }
            | Reply::Binary { headers, .. }
            | Reply::Drip { headers, .. } => Some(headers),
            Reply::Hang => None,
        }
    }

    /// The hyper response for this reply; `None` for [`Reply::Hang`]. `reset` is set just before a
    /// deliberate abort so the connection is closed with a TCP RST.
    pub(crate) fn into_response(self, reset: Arc<AtomicBool>) -> Option<Response<ReplyBody>> {
        let (status, content_type, body, headers) = match self {
            Reply::Hang => return None,
            Reply::Json {
                status,
                body,
                headers,
            } => (
                status,
                "application/json".to_string(),
                full(body.to_string()),
                headers,
            ),
            Reply::Raw {
                status,
                content_type,
                body,
                headers,
            } => (status, content_type, full(body), headers),
            Reply::Sse {
                status,
                events,
                headers,
            } => {
                let chunks = events.iter().map(|e| (e.to_wire(), e.delay)).collect();
                (
                    status,
                    "text/event-stream; charset=utf-8".to_string(),
                    paced(chunks, None),
                    headers,
                )
            }
            Reply::Ndjson {
                status,
                lines,
                headers,
            } => {
                let chunks = lines
                    .into_iter()
                    .map(|(v, d)| (format!("{v}\n"), d))
                    .collect();
                (
                    status,
                    "application/x-ndjson".to_string(),
                    paced(chunks, None),
                    headers,
                )
            }
            Reply::ResetAfter {
                status,
                content_type,
                chunks,
                headers,
            } => (status, content_type, paced(chunks, Some(reset)), headers),
            Reply::Chunks {
                status,
                content_type,
                chunks,
                headers,
            } => (status, content_type, paced(chunks, None), headers),
            Reply::Binary {
                status,
                content_type,
                chunks,
                headers,
                reset: abort,
            } => {
                let reset = abort.then_some(reset);
                (status, content_type, paced(chunks, reset), headers)
            }
            Reply::Drip {
                status,
                content_type,
                body,
                chunk_size,
                delay,
                headers,
            } => {
                let chars: Vec<char> = body.chars().collect();
                let chunks = chars
                    .chunks(chunk_size.max(1))
                    .map(|c| (c.iter().collect::<String>(), delay))
                    .collect();
                (status, content_type, paced(chunks, None), headers)
            }
        };
        let mut builder = Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", content_type);
        for (name, value) in headers {
            builder = builder.header(name, value);
        }
        let fallback = || {
            let mut r = Response::new(full("invalid scripted header".to_string()));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        };
        Some(builder.body(body).unwrap_or_else(|_| fallback()))
    }
}

fn full(body: String) -> ReplyBody {
    Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// A body that yields each chunk after its delay; with `reset`, ends in an error that aborts the
/// connection instead of a clean end.
fn paced<C: Into<Bytes> + Send + 'static>(
    chunks: Vec<(C, Duration)>,
    reset: Option<Arc<AtomicBool>>,
) -> ReplyBody {
    let stream =
        futures_util::stream::unfold((chunks.into_iter(), reset), |(mut it, reset)| async move {
            match it.next() {
                Some((chunk, delay)) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Some((Ok(Frame::data(chunk.into())), (it, reset)))
                }
                None => {
                    let flag = reset?;
                    // Let the peer read what was sent before the connection is torn down.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    flag.store(true, Ordering::SeqCst);
                    let err: BoxError = "deliberate connection reset".into();
                    Some((Err(err), (it, None)))
                }
            }
        });
    StreamBody::new(stream).boxed_unsync()
}
