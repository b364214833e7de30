//! Admission: the concurrency limit, and how long a new connection may stay silent
//! ([`first_bytes`]). `serving::server` admits each request: its inbound key, then a [`Permit`].
//!
//! [`Admission`] enforces the concurrency limit
//! ([`crate::limits::Limits::max_concurrent`]): every API call holds a [`Permit`] from before
//! its body is read until its response body ends (a stream until its last byte, or until the
//! client goes away), because the permit travels inside the response body ([`hold`]).
//! `/health` and `/metrics` never take one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use prometheus::IntGauge;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::error::Elapsed;

use crate::translate::body::ProxyBody;

/// The concurrency limit and the in-flight gauge.
pub struct Admission {
    semaphore: Option<Arc<Semaphore>>,
    limit: usize,
    in_flight: IntGauge,
}

impl Admission {
    /// Admits at most `limit` calls at once (`0`: no limit), counting them in `in_flight`.
    pub fn new(limit: usize, in_flight: IntGauge) -> Self {
        let semaphore =
            (limit > 0).then(|| Arc::new(Semaphore::new(limit.min(Semaphore::MAX_PERMITS))));
        Admission {
            semaphore,
            limit,
            in_flight,
        }
    }

    /// The configured limit (`0`: none).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A permit, or `None` when the limit is reached. Never waits.
    pub fn try_admit(&self) -> Option<Permit> {
        let permit = match &self.semaphore {
            Some(s) => Some(Arc::clone(s).try_acquire_owned().ok()?),
            None => None,
        };
        self.in_flight.inc();
        Some(Permit {
            _permit: permit,
            in_flight: self.in_flight.clone(),
        })
    }
}

/// One admitted call; dropping it frees its place.
pub struct Permit {
    _permit: Option<OwnedSemaphorePermit>,
    in_flight: IntGauge,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

/// The response with `permit` (a [`Permit`], a [`crate::serving::memory::Charge`]) moved into its body:
/// the permit is freed when the body has sent its last frame or is dropped (the client went
/// away), not when the handler returns.
pub fn hold<P: Send + Unpin + 'static>(
    response: Response<ProxyBody>,
    permit: P,
) -> Response<ProxyBody> {
    response.map(|inner| {
        Held {
            inner,
            permit: Some(permit),
        }
        .boxed_unsync()
    })
}

/// A body that holds a permit until it ends.
struct Held<P> {
    inner: ProxyBody,
    permit: Option<P>,
}

impl<P: Send + Unpin + 'static> Body for Held<P> {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || this.inner.is_end_stream() {
            this.permit = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a new connection opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// The client closed it without sending anything useful.
    Closed,
    Http1,
    /// The HTTP/2 preface (h2c with prior knowledge).
    Http2,
}

/// Waits until a new connection has sent enough bytes to tell HTTP/1 from HTTP/2, at most
/// `limit` (zero: no limit). `Err`: it sent too little in time.
///
/// hyper's own header timeout only starts once the protocol is known, so without this a client
/// that connects and stays silent would hold its connection forever.
pub async fn first_bytes(stream: &TcpStream, limit: Duration) -> Result<Opening, Elapsed> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let wait = async {
        let mut buf = [0u8; 24];
        loop {
            match stream.peek(&mut buf).await {
                Ok(0) | Err(_) => return Opening::Closed,
                Ok(n) if buf[..n] != PREFACE[..n] => return Opening::Http1,
                Ok(n) if n == PREFACE.len() => return Opening::Http2,
                // A partial HTTP/2 preface: `peek` would return the same bytes at once.
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    };
    if limit.is_zero() {
        return Ok(wait.await);
    }
    tokio::time::timeout(limit, wait).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::body::full;

    #[test]
    fn permits_are_bounded_and_freed_with_the_body() {
        let gauge = IntGauge::new("g", "g").unwrap();
        let a = Admission::new(2, gauge.clone());
        let p1 = a.try_admit().unwrap();
        let p2 = a.try_admit().unwrap();
        assert!(a.try_admit().is_none(), "a third call is refused");
        assert_eq!(gauge.get(), 2);
        drop(p1);
        assert_eq!(gauge.get(), 1);
        let r = hold(Response::new(full("x")), p2);
        assert_eq!(gauge.get(), 1, "the body holds the permit");
        let p3 = a.try_admit().unwrap();
        assert!(a.try_admit().is_none());
        drop(r);
        assert_eq!(gauge.get(), 1);
        assert!(
            a.try_admit().is_some(),
            "dropping the body freed its permit"
        );
        drop(p3);
        let unlimited = Admission::new(0, gauge.clone());
        let many: Vec<Permit> = (0..5000).filter_map(|_| unlimited.try_admit()).collect();
        assert_eq!(many.len(), 5000);
        assert_eq!(gauge.get(), 5000);
    }
}
