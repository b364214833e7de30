//! What one stream may buffer between its upstream and a client that reads slowly.
//!
//! Rosetta never reads ahead of its client: a stream pulls the next upstream frame only when
//! hyper asks for more to send, so a slow reader stops the upstream by TCP backpressure. What
//! sits in Rosetta meanwhile is bounded by these buffers, at most 256 KiB per stream in all
//! (kernel socket queues not counted; `tests/it/slow_reader.rs` measures 110 to 150 KiB for a
//! client that reads nothing, where it was 1.2 MiB with hyper's defaults):
//!
//! | where | bound |
//! |---|---|
//! | upstream HTTP/1 read buffer, and the one chunk hyper hands on from it | [`UPSTREAM_READ_BUF`] each |
//! | upstream HTTP/2 stream window (data received, not yet read) | [`UPSTREAM_H2_STREAM_WINDOW`] |
//! | the rewritten bytes of one upstream chunk ([`crate::translate::body::RewriteBody`]) | about one chunk |
//! | client HTTP/1 write buffer | [`CLIENT_WRITE_BUF`] (plus the chunk that filled it) |
//! | client HTTP/2 send buffer of one stream | [`CLIENT_WRITE_BUF`] |
//!
//! There is no queue of Rosetta's own between the two sides: the stream body polls the upstream
//! body directly. Larger buffers would not make a stream faster: tokens arrive far slower than
//! 32 KiB per round trip. They only multiply memory by the number of slow readers (1,024 concurrent
//! calls by default).

/// Largest HTTP/1 read buffer of an upstream connection (hyper's default is about 400 KiB).
pub const UPSTREAM_READ_BUF: usize = 32 * 1024;
/// Initial HTTP/2 receive window of one upstream stream (hyper's default is 2 MiB): what an
/// upstream may send on a stream before Rosetta has read it.
pub const UPSTREAM_H2_STREAM_WINDOW: u32 = 128 * 1024;
/// Largest HTTP/1 write buffer, and HTTP/2 send buffer per stream, toward a client (hyper's
/// defaults are about 400 KiB). Also bounds an HTTP/1 request head.
pub const CLIENT_WRITE_BUF: usize = 64 * 1024;
/// The rewritten-output buffer of a stream is given back past this size, not kept for the
/// rest of the stream.
pub const OUT_KEEP: usize = 16 * 1024;
