//! Client connections: how hyper is set up for them, and how one is driven to its end.
//!
//! HTTP/1 has hyper's header timeout, which also closes an idle keep-alive connection. HTTP/2
//! has nothing of the kind in hyper, so a client could open connections, send the preface (or
//! an unfinished header block) and hold them forever. Here an HTTP/2 connection that holds no
//! request for the header timeout is closed: told to go away (GOAWAY), then dropped
//! [`CLOSE_GRACE`] later whatever the peer does. Keep-alive pings close one whose peer stopped
//! answering while a request is open.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use crate::limits::Limits;
use crate::limits::buffers::CLIENT_WRITE_BUF;
use crate::translate::body::ProxyBody;

/// Interval of the HTTP/2 keep-alive ping, and how long its answer may take.
pub const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);
/// How long a connection told to go away for idleness may take to close by itself.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The connection builder for `limits`: HTTP/1 with the header timeout, HTTP/2 with keep-alive
/// pings, both with the small write buffers of [`crate::limits::buffers`].
pub fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let header_timeout =
        (!limits.header_read_timeout.is_zero()).then_some(limits.header_read_timeout);
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(CLIENT_WRITE_BUF);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE)
        .max_send_buf_size(CLIENT_WRITE_BUF);
    builder
}

/// The requests of one connection being served: from the call of the service until the end
/// of the response body.
#[derive(Clone)]
pub struct Activity(Arc<watch::Sender<usize>>);

impl Default for Activity {
    fn default() -> Self {
        Activity(Arc::new(watch::Sender::new(0)))
    }
}

impl Activity {
    /// One more request in flight, until the returned guard (or the response body it is
    /// handed to, [`Busy::hold`]) is dropped.
    pub fn begin(&self) -> Busy {
        self.0.send_modify(|n| *n += 1);
        Busy(Arc::clone(&self.0))
    }

    /// Resolves once the connection has held no request for `idle`.
    async fn idle_for(&self, idle: Duration) {
        let mut rx = self.0.subscribe();
        loop {
            let _ = rx.wait_for(|n| *n == 0).await;
            if tokio::time::timeout(idle, rx.wait_for(|n| *n > 0))
                .await
                .is_err()
            {
                return;
            }
        }
    }
}

/// One request in flight; dropping it ends it.
pub struct Busy(Arc<watch::Sender<usize>>);

impl Busy {
    /// Keeps the request in flight until the body of `response` ends or is dropped.
    pub fn hold(self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        crate::serving::admission::hold(response, self)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

/// How a connection ended.
pub enum Ended<E> {
    /// It finished by itself (or after a graceful shutdown), with hyper's result.
    Served(Result<(), E>),
    /// It held no request for the idle limit and was closed.
    Idle,
}

/// Drives `conn` to its end. `shutdown` asks it to finish gracefully; that happens when `stop`
/// turns true (the server is stopping), and, for a connection with `activity` (HTTP/2), once
/// it has held no request for `idle` (zero: never). A connection closed for idleness that has
/// not finished [`CLOSE_GRACE`] later is dropped.
pub async fn drive<C, E>(
    conn: C,
    mut shutdown: impl FnMut(Pin<&mut C>),
    activity: Option<Activity>,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) -> Ended<E>
where
    C: Future<Output = Result<(), E>>,
{
    tokio::pin!(conn);
    let idle_watch = async {
        match &activity {
            Some(a) if !idle.is_zero() => a.idle_for(idle).await,
            _ => std::future::pending().await,
        }
    };
    tokio::pin!(idle_watch);
    let (mut stopping, mut idle_closed) = (false, false);
    let grace = tokio::time::sleep(Duration::MAX);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            result = conn.as_mut() => return Ended::Served(result),
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                shutdown(conn.as_mut());
            }
            _ = &mut idle_watch, if !idle_closed => {
                idle_closed = true;
                shutdown(conn.as_mut());
                let deadline = tokio::time::Instant::now() + CLOSE_GRACE.min(idle);
                grace.as_mut().reset(deadline);
            }
            _ = &mut grace, if idle_closed => return Ended::Idle,
        }
    }
}
