//! The response bodies Rosetta answers with, and the one that rewrites a stream frame by frame.
//!
//! [`RewriteBody`] wraps the upstream body: no task, no buffering of the whole stream, and
//! dropping it (a client that went away) drops the upstream body and so releases the upstream
//! connection at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use tokio::time::Sleep;

use crate::error::ProxyError;
use crate::mapping::Mapping;
use crate::openai::Usage;
use crate::rewrite::StreamRewriter;
use crate::telemetry::Metrics;

/// The response body type Rosetta answers with.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// Wraps the upstream body and rewrites it into OpenAI chunks, frame by frame.
pub struct RewriteBody {
    upstream: Incoming,
    rewriter: StreamRewriter,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    out: Vec<u8>,
    done: bool,
    stats: StreamStats,
    /// The request id, when each upstream frame is logged next to the OpenAI bytes it became.
    trace: Option<String>,
}

/// Metric bookkeeping of one stream; settles exactly once, at the end or on drop.
struct StreamStats {
    metrics: Metrics,
    mapping: String,
    route: &'static str,
    started: Instant,
    first_token: bool,
    settled: bool,
}

impl StreamStats {
    fn settle(&mut self, usage: &Usage, failure: Option<&'static str>) {
        if self.settled {
            return;
        }
        self.settled = true;
        let m = &self.metrics;
        m.active_streams.with_label_values(&[&self.mapping]).dec();
        m.request_duration
            .with_label_values(&[&self.mapping, self.route])
            .observe(self.started.elapsed().as_secs_f64());
        m.count_tokens(&self.mapping, usage);
        if let Some(kind) = failure {
            m.upstream_errors
                .with_label_values(&[&self.mapping, kind])
                .inc();
        }
    }
}

impl Drop for StreamStats {
    fn drop(&mut self) {
        // A client that went away mid-stream: close the books without counting tokens.
        self.settle(&Usage::default(), None);
    }
}

impl RewriteBody {
    pub fn new(
        upstream: Incoming,
        rewriter: StreamRewriter,
        mapping: &Mapping,
        route: &'static str,
        metrics: Metrics,
        started: Instant,
        trace: Option<String>,
    ) -> Self {
        metrics
            .active_streams
            .with_label_values(&[&mapping.name])
            .inc();
        let idle = mapping.upstream.idle_timeout;
        RewriteBody {
            upstream,
            rewriter,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            out: Vec::with_capacity(4096),
            done: false,
            trace,
            stats: StreamStats {
                metrics,
                mapping: mapping.name.clone(),
                route,
                started,
                first_token: false,
                settled: false,
            },
        }
    }
}

impl Body for RewriteBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let mut failure = None;
            let mut ended = None;
            let before = this.out.len();
            match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let before = this.out.len();
                        this.rewriter.feed(&data, &mut this.out);
                        if let Some(id) = &this.trace {
                            tracing::info!(
                                target: "rosetta::trace",
                                id = %id,
                                upstream = %crate::trace::text(&data),
                                sent = %crate::trace::text(&this.out[before..]),
                                "stream frame"
                            );
                        }
                        let deadline = tokio::time::Instant::now() + this.idle;
                        this.idle_timer.as_mut().reset(deadline);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let err = ProxyError::UpstreamStreamError {
                        message: format!("the upstream connection failed mid-stream: {e}"),
                        kind: Some("server_error".into()),
                        code: Some("upstream_stream_error".into()),
                    };
                    this.rewriter.fail(&mut this.out, &err);
                    failure = Some(err.kind());
                    ended = Some("upstream connection failed");
                }
                Poll::Ready(None) => {
                    this.rewriter.end(&mut this.out);
                    ended = Some("upstream body ended");
                }
                Poll::Pending => {
                    if this.idle_timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let err = ProxyError::Timeout {
                        message: format!("the upstream sent nothing for {:?}", this.idle),
                    };
                    this.rewriter.fail(&mut this.out, &err);
                    failure = Some(err.kind());
                    ended = Some("upstream idle timeout");
                }
            }
            if let (Some(id), Some(why)) = (&this.trace, ended) {
                tracing::info!(
                    target: "rosetta::trace",
                    id = %id,
                    sent = %crate::trace::text(&this.out[before..]),
                    "stream end: {why}"
                );
            }
            if this.rewriter.writer.emitted_content && !this.stats.first_token {
                this.stats.first_token = true;
                this.stats
                    .metrics
                    .time_to_first_token
                    .with_label_values(&[&this.stats.mapping])
                    .observe(this.stats.started.elapsed().as_secs_f64());
            }
            if this.rewriter.writer.closed {
                this.done = true;
                let failure = failure.or(this
                    .rewriter
                    .writer
                    .failed
                    .then_some("upstream_stream_error"));
                this.stats.settle(&this.rewriter.usage(), failure);
            }
            if !this.out.is_empty() {
                let bytes = Bytes::copy_from_slice(&this.out);
                this.out.clear();
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
        }
    }
}
