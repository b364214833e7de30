//! The response bodies Rosetta answers with, and the one that rewrites a stream frame by frame.
//!
//! [`RewriteBody`] wraps the upstream body: no task, no buffering of the whole stream, and
//! dropping it (a client that went away) drops the upstream body and so releases the upstream
//! connection at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use tokio::time::Sleep;

use crate::dialect::answer::Usage;
use crate::error::ProxyError;
use crate::ledger::tab::Tab;
use crate::limits::buffers::OUT_KEEP;
use crate::mapping::{Mapping, Op};
use crate::ops::handles::MappingMetrics;
use crate::translate::rewrite::StreamRewriter;

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
    /// `None` once the client's stream is over: an upstream cut off mid-body (a frame over
    /// the limit, an error) is dropped at once, which closes its connection.
    upstream: Option<Incoming>,
    rewriter: StreamRewriter,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    out: Vec<u8>,
    stats: StreamStats,
    /// The request id, when each upstream frame is logged next to the OpenAI bytes it became.
    trace: Option<String>,
}

/// Metric bookkeeping of one stream; settles exactly once, at the end or on drop.
struct StreamStats {
    /// The mapping's metric handles.
    metrics: Arc<MappingMetrics>,
    route: Op,
    started: Instant,
    first_token: bool,
    settled: bool,
    /// The call's accounting, closed when the stream settles.
    tab: Option<Tab>,
}

impl StreamStats {
    /// Closes the books on the stream: `failure` is the error that ended it, if any. A stream
    /// dropped before it settled is a client abort.
    fn settle(&mut self, usage: &Usage, failure: Option<&ProxyError>) {
        if self.settled {
            return;
        }
        self.settled = true;
        if let Some(tab) = self.tab.take() {
            match failure {
                None => tab.succeeded(usage),
                Some(e) => tab.failed(e, 200, usage),
            }
        }
        let m = &self.metrics;
        m.active_streams().dec();
        m.request_duration(self.route)
            .observe(self.started.elapsed().as_secs_f64());
        m.count_tokens(usage);
        if let Some(e) = failure {
            m.upstream_error(e);
        }
    }
}

impl Drop for RewriteBody {
    fn drop(&mut self) {
        if !self.stats.settled {
            // A client that went away mid-stream: recorded with the usage seen so far, never
            // charged, and without counting tokens in the mapping's totals.
            if let Some(tab) = self.stats.tab.take() {
                tab.aborted(&self.rewriter.usage());
            }
            self.stats.settled = true;
            let m = &self.stats.metrics;
            m.active_streams().dec();
            m.request_duration(self.stats.route)
                .observe(self.stats.started.elapsed().as_secs_f64());
        }
    }
}

impl RewriteBody {
    pub fn new(
        upstream: Incoming,
        rewriter: StreamRewriter,
        mapping: &Mapping,
        route: Op,
        metrics: Arc<MappingMetrics>,
        started: Instant,
        trace: Option<String>,
    ) -> Self {
        metrics.active_streams().inc();
        let idle = mapping.upstream.idle_timeout;
        RewriteBody {
            upstream: Some(upstream),
            rewriter,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            out: Vec::with_capacity(4096),
            trace,
            stats: StreamStats {
                metrics,
                route,
                started,
                first_token: false,
                settled: false,
                tab: None,
            },
        }
    }
}

impl RewriteBody {
    /// The call's accounting: closed when the stream ends, or as an abort when it is dropped.
    pub fn with_tab(mut self, tab: Option<Tab>) -> Self {
        self.stats.tab = tab;
        self
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
            let Some(upstream) = this.upstream.as_mut() else {
                return Poll::Ready(None);
            };
            let mut failure = None;
            let mut ended = None;
            let before = this.out.len();
            match Pin::new(upstream).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let before = this.out.len();
                        this.rewriter.feed(&data, &mut this.out);
                        if let Some(id) = &this.trace {
                            tracing::info!(
                                target: "rosetta::trace",
                                id = %id,
                                upstream = %crate::ops::trace::text(&data),
                                sent = %crate::ops::trace::text(&this.out[before..]),
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
                    failure = Some(err);
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
                    failure = Some(err);
                    ended = Some("upstream idle timeout");
                }
            }
            if let (Some(id), Some(why)) = (&this.trace, ended) {
                tracing::info!(
                    target: "rosetta::trace",
                    id = %id,
                    sent = %crate::ops::trace::text(&this.out[before..]),
                    "stream end: {why}"
                );
            }
            if this.rewriter.writer.emitted_content && !this.stats.first_token {
                this.stats.first_token = true;
                this.stats
                    .metrics
                    .time_to_first_token()
                    .observe(this.stats.started.elapsed().as_secs_f64());
            }
            if this.rewriter.writer.closed {
                this.upstream = None;
                let failure = failure.or_else(|| {
                    this.rewriter
                        .writer
                        .failed
                        .then(|| ProxyError::UpstreamStreamError {
                            message: "the stream ended with an error".into(),
                            kind: None,
                            code: None,
                        })
                });
                this.stats.settle(&this.rewriter.usage(), failure.as_ref());
            }
            if !this.out.is_empty() {
                let bytes = Bytes::copy_from_slice(&this.out);
                this.out.clear();
                if this.out.capacity() > OUT_KEEP {
                    this.out = Vec::with_capacity(4096);
                }
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
        }
    }
}
