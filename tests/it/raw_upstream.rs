//! A raw HTTP/1.1 upstream for the limit tests: it answers one request with a fixed head and
//! then writes a body piece by piece, counting every byte the kernel accepted and noticing when
//! Rosetta closes the connection under it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How the upstream's answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte was written (and the connection left open, as keep-alive allows).
    Finished,
    /// A write failed: Rosetta closed the connection before the body was over.
    Closed,
}

/// One upstream on 127.0.0.1, serving a single connection.
pub struct RawUpstream {
    pub base: String,
    /// Body bytes written so far (the head is not counted).
    pub written: Arc<AtomicU64>,
    /// Rosetta's end of the connection, once it has connected.
    pub peer: Arc<std::sync::Mutex<Option<SocketAddr>>>,
    outcome: Option<oneshot::Receiver<Outcome>>,
}

impl RawUpstream {
    /// Answers the first request with `head` (status line and headers, blank line included),
    /// then every piece of `body` in turn.
    pub async fn start(
        head: String,
        body: impl Iterator<Item = Vec<u8>> + Send + 'static,
    ) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let written = Arc::new(AtomicU64::new(0));
        let peer = Arc::new(std::sync::Mutex::new(None));
        let (tx, rx) = oneshot::channel();
        let (count, seen) = (Arc::clone(&written), Arc::clone(&peer));
        tokio::spawn(async move {
            let (mut sock, addr) = listener.accept().await.unwrap();
            *seen.lock().unwrap() = Some(addr);
            read_request(&mut sock).await;
            if sock.write_all(head.as_bytes()).await.is_err() {
                let _ = tx.send(Outcome::Closed);
                return;
            }
            for piece in body {
                let mut at = 0;
                while at < piece.len() {
                    match sock.write(&piece[at..]).await {
                        Ok(0) | Err(_) => {
                            let _ = tx.send(Outcome::Closed);
                            return;
                        }
                        Ok(n) => {
                            at += n;
                            count.fetch_add(n as u64, Ordering::SeqCst);
                        }
                    }
                }
            }
            let _ = tx.send(Outcome::Finished);
            // Keep the connection open: closing it is Rosetta's business.
            let mut buf = [0u8; 1024];
            while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
        });
        RawUpstream {
            base,
            written,
            peer,
            outcome: Some(rx),
        }
    }

    /// How the answer ended, waiting at most `limit`; `None` when it is still being written.
    pub async fn outcome(&mut self, limit: Duration) -> Option<Outcome> {
        let rx = self.outcome.as_mut()?;
        tokio::time::timeout(limit, rx).await.ok()?.ok()
    }

    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

/// Reads one request: the head, then a `content-length` body.
async fn read_request(sock: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A `200` head with `content-type` and a `content-length` (so that the connection could go
/// back to the pool: only Rosetta dropping it closes it).
pub fn head(content_type: &str, length: u64) -> String {
    format!("HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\n\r\n")
}

/// `total` bytes of `piece` repeated (the last copy cut short).
pub fn repeated(piece: Vec<u8>, total: u64) -> impl Iterator<Item = Vec<u8>> + Send + 'static {
    let mut left = total;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let n = piece.len().min(left as usize);
        left -= n as u64;
        Some(piece[..n].to_vec())
    })
}
