//! Limits: request body size, the JSON a body may hold, the memory of in-flight requests,
//! header and body read timeouts, the global concurrency limit, the shutdown grace, and what one
//! upstream answer may make Rosetta hold.
//!
//! [`Limits`] is plain configuration (`rosetta serve --max-body`, `--max-json-values`,
//! `--max-parsed-size`, `--max-inflight-bytes`, `--header-timeout`, `--body-timeout`,
//! `--max-concurrent`, `--shutdown-grace`, `--max-upstream-frame`, `--max-upstream-body`);
//! [`crate::serving::intake`] applies the body and memory limits, [`crate::serving::memory`]
//! keeps the in-flight budget, [`crate::serving::admission`] the concurrency limit. [`buffers`]
//! names what one stream may hold toward a slow client.

pub mod buffers;

use std::time::Duration;

/// Default largest request body: 32 MiB (images as data URLs make chats big).
pub const DEFAULT_MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;
/// Default most JSON values (objects, arrays, strings, numbers, literals) in one request body.
/// A chat of 2,000 messages with tool calls holds about 25,000.
pub const DEFAULT_MAX_JSON_VALUES: usize = 500_000;
/// Default most memory one request's parsed body may take (estimated before parsing): four
/// times the default body limit.
pub const DEFAULT_MAX_PARSED_SIZE: usize = 4 * DEFAULT_MAX_REQUEST_BODY;
/// Default memory budget of all in-flight requests together (bodies, parsed forms and upstream
/// renderings, [`crate::serving::memory::footprint`]).
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 1024 * 1024 * 1024;
/// Default time a client has to send its request line and headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a client has to send its whole request body, once the headers are in.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of API calls served at once; past it, `503` with `retry-after: 1`.
pub const DEFAULT_MAX_CONCURRENT: usize = 1024;
/// Default time in-flight requests and streams may run after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Default largest stream frame from an upstream (an SSE event, an NDJSON line): 8 MiB, room
/// for an image sent inline in one event.
pub const DEFAULT_MAX_UPSTREAM_FRAME: usize = 8 * 1024 * 1024;
/// Default largest upstream body read whole (non-stream answers and error bodies): 64 MiB.
pub const DEFAULT_MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

/// The limits Rosetta puts on clients. `Default` gives the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body in bytes; a larger one gets `413` (code `request_too_large`).
    pub max_request_body: usize,
    /// Most JSON values in a request body; past it, `413` (code `request_too_complex`),
    /// before anything is parsed. Zero means no limit.
    pub max_json_values: usize,
    /// Most memory a request body may take once parsed (an upper estimate made before
    /// parsing); past it, `413` (code `request_too_complex`). Zero means no limit.
    pub max_parsed_size: usize,
    /// Memory budget of all in-flight requests together; a large request that does not fit
    /// gets `503` (code `overloaded`) with `retry-after: 1`, one larger than the whole budget
    /// `413`. Zero means no limit.
    pub max_inflight_bytes: usize,
    /// How long a client may take to send its request line and headers (HTTP/1; also the
    /// longest a keep-alive connection may sit idle, and an HTTP/2 connection may go without a
    /// request running). Past it the connection is closed. Zero turns it off.
    pub header_read_timeout: Duration,
    /// How long a client may take to send its whole body; past it, `408` (code
    /// `request_timeout`). Zero turns it off.
    pub body_read_timeout: Duration,
    /// API calls served at once; past it, `503` (code `overloaded`) with `retry-after: 1`.
    /// Zero means no limit.
    pub max_concurrent: usize,
    /// After SIGTERM/SIGINT, how long in-flight requests and streams may still run.
    pub shutdown_grace: Duration,
    /// Largest frame of an upstream stream (an SSE event, an NDJSON line) in bytes; past it the
    /// stream ends with an error event (code `upstream_too_large`) and the upstream connection
    /// is closed.
    pub max_upstream_frame: usize,
    /// Largest upstream body read whole, in bytes; past it, `502` (code `upstream_too_large`)
    /// and the upstream connection is closed.
    pub max_upstream_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
            max_json_values: DEFAULT_MAX_JSON_VALUES,
            max_parsed_size: DEFAULT_MAX_PARSED_SIZE,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            max_upstream_frame: DEFAULT_MAX_UPSTREAM_FRAME,
            max_upstream_body: DEFAULT_MAX_UPSTREAM_BODY,
        }
    }
}

/// Parses a size in bytes: `33554432`, `512KiB`, `32MiB`, `1GiB` (also `k`/`K`, `M`, `G`, `KB`,
/// `MB`, `GB`: all powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("invalid size {s:?} (use bytes, or 512KiB, 32MiB, 1GiB)"))?;
    let factor: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("invalid size unit in {s:?} (use KiB, MiB or GiB)")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("size {s:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("32MiB").unwrap(), DEFAULT_MAX_REQUEST_BODY);
        assert_eq!(parse_size("512k").unwrap(), 512 * 1024);
        assert_eq!(parse_size(" 2 GB ").unwrap(), 2 << 30);
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
