//! `bench_floor`: the two reference subjects of the load benchmark (`scripts/bench`, issue 15,
//! `docs/performance.md`), the floors a translating proxy built on this stack can reach.
//!
//! - `--mode pass`: a bare hyper 1 pass-through proxy. Each request is forwarded to
//!   `--upstream` with the same method, path, query, headers and body through hyper-util's pooled
//!   client, and the answer's status, headers and body stream back frame by frame. Nothing else:
//!   no routing, no logging, no metrics.
//! - `--mode json`: the same plus what any JSON-translating proxy must at least do: the request
//!   body is collected, parsed into a `serde_json::Value` and serialized again; a non-stream
//!   answer likewise. Streams (`text/event-stream`) pass through frame by frame, as Rosetta's
//!   bytes-in, bytes-out stream path does.
//!
//! Same runtime shape as Rosetta: a multi-thread tokio runtime, HTTP/1.1 with keep-alive on both
//! sides, mimalloc. The first line on stdout is the bound port.

use std::convert::Infallible;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
usage: bench_floor --upstream http://HOST:PORT [--mode pass|json] [--listen HOST] [--port N]";

type Body = BoxBody<Bytes, hyper::Error>;

struct Floor {
    client: Client<HttpConnector, Body>,
    upstream: String,
    json: bool,
}

fn fail(msg: &str) -> ! {
    eprintln!("bench_floor: {msg}\n{USAGE}");
    std::process::exit(2)
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(full(msg.as_bytes().to_vec()));
    *r.status_mut() = status;
    r
}

/// A parse and a serialization of a JSON body: the least a JSON-translating proxy does.
fn reserialize(bytes: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    serde_json::to_vec(&value).ok()
}

async fn serve(floor: Arc<Floor>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match format!("{}{path}", floor.upstream).parse::<Uri>() {
        Ok(u) => u,
        Err(_) => return Ok(error(StatusCode::BAD_REQUEST, "bad path")),
    };
    parts.headers.remove(HOST);
    let body = if floor.json {
        let Ok(collected) = body.collect().await else {
            return Ok(error(StatusCode::BAD_REQUEST, "cannot read the body"));
        };
        let Some(out) = reserialize(&collected.to_bytes()) else {
            return Ok(error(StatusCode::BAD_REQUEST, "the body is not JSON"));
        };
        parts.headers.insert(CONTENT_LENGTH, out.len().into());
        full(out)
    } else {
        body.boxed()
    };
    let answer = match floor.client.request(Request::from_parts(parts, body)).await {
        Ok(a) => a,
        Err(_) => return Ok(error(StatusCode::BAD_GATEWAY, "upstream failed")),
    };
    let (mut parts, body) = answer.into_parts();
    let stream = parts
        .headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !floor.json || stream {
        return Ok(Response::from_parts(parts, body.boxed()));
    }
    let Ok(collected) = body.collect().await else {
        return Ok(error(StatusCode::BAD_GATEWAY, "cannot read the answer"));
    };
    let Some(out) = reserialize(&collected.to_bytes()) else {
        return Ok(error(StatusCode::BAD_GATEWAY, "the answer is not JSON"));
    };
    parts.headers.insert(CONTENT_LENGTH, out.len().into());
    Ok(Response::from_parts(parts, full(out)))
}

#[tokio::main]
async fn main() {
    let (mut host, mut port, mut mode, mut upstream) =
        ("127.0.0.1".to_string(), 0u16, "pass".to_string(), None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--listen" => host = val("--listen"),
            "--port" => port = val("--port").parse().unwrap_or_else(|_| fail("bad --port")),
            "--mode" => mode = val("--mode"),
            "--upstream" => upstream = Some(val("--upstream")),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => fail(&format!("unknown argument {other:?}")),
        }
    }
    let json = match mode.as_str() {
        "pass" => false,
        "json" => true,
        _ => fail("--mode is pass or json"),
    };
    let upstream = upstream.unwrap_or_else(|| fail("--upstream is required"));
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector);
    let floor = Arc::new(Floor {
        client,
        upstream: upstream.trim_end_matches('/').to_string(),
        json,
    });
    let listener = TcpListener::bind((host.as_str(), port))
        .await
        .unwrap_or_else(|e| fail(&format!("cannot bind {host}:{port}: {e}")));
    let bound = listener.local_addr().expect("local addr").port();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{bound}");
        let _ = out.flush();
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let floor = floor.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| serve(floor.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
