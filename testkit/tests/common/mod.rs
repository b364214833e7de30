//! Test client for the fakes: one HTTP/1.1 exchange per connection, body frames timestamped.
#![allow(dead_code)]

pub mod tgi;

pub mod azure;
pub mod gemini;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    /// Body frames with their arrival times.
    pub chunks: Vec<(Instant, Bytes)>,
    /// Set when the body ended in an error instead of a clean end.
    pub error: Option<String>,
}

impl Exchange {
    pub fn text(&self) -> String {
        let all: Vec<u8> = self.chunks.iter().flat_map(|(_, b)| b.to_vec()).collect();
        String::from_utf8(all).expect("utf-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text()).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `(event name, data)` of each SSE event.
    pub fn sse(&self) -> Vec<(Option<String>, String)> {
        self.text()
            .split("\n\n")
            .filter(|e| !e.trim().is_empty())
            .map(|e| {
                let mut name = None;
                let mut data = Vec::new();
                for line in e.lines() {
                    if let Some(n) = line.strip_prefix("event: ") {
                        name = Some(n.to_string());
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push(d);
                    }
                }
                (name, data.join("\n"))
            })
            .collect()
    }

    pub fn ndjson(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("NDJSON line"))
            .collect()
    }

    /// Time between the first and the last body frame.
    pub fn spread(&self) -> Duration {
        match (self.chunks.first(), self.chunks.last()) {
            (Some((a, _)), Some((b, _))) => b.duration_since(*a),
            _ => Duration::ZERO,
        }
    }
}

pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Exchange {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response head");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = resp.into_body();
    let mut chunks = Vec::new();
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    chunks.push((Instant::now(), data));
                }
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    Exchange {
        status,
        headers,
        chunks,
        error,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Exchange {
    send(addr, "GET", path, &[], "").await
}

pub const ANTHROPIC_HEADERS: &[(&str, &str)] = &[
    ("x-api-key", "sk-ant-test"),
    ("anthropic-version", "2023-06-01"),
    ("content-type", "application/json"),
];

pub async fn anthropic(addr: SocketAddr, body: &Value) -> Exchange {
    send(
        addr,
        "POST",
        "/v1/messages",
        ANTHROPIC_HEADERS,
        &body.to_string(),
    )
    .await
}

pub async fn ollama(addr: SocketAddr, path: &str, body: &Value) -> Exchange {
    send(
        addr,
        "POST",
        path,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
    .await
}
