//! Incremental decoders for upstream stream framing: SSE (named or data-only) and NDJSON.
//!
//! Input arrives in arbitrary network chunks: a line, an event, even a UTF-8 character may be
//! split across them. Each decoder keeps one carry buffer for the incomplete tail and reuses it.
//!
//! Whatever the framing, one frame (an SSE event with all its lines, an NDJSON line; a length-
//! prefixed binary frame would be the same) may grow to `max_frame` bytes and no more
//! ([`frame_fits`]): an upstream cannot make Rosetta buffer without bound.

use crate::error::ProxyError;
use crate::limits::DEFAULT_MAX_UPSTREAM_FRAME;
use crate::mapping::Framing;
use crate::translate::eventstream::{EventStreamDecoder, Message};

/// One upstream event: the SSE `event:` name (if any) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

/// Largest event buffer [`Decoder::recycle`] keeps.
const RECYCLED_MAX: usize = 4096;

/// A stream decoder for one framing.
#[derive(Debug)]
pub struct Decoder {
    framing: Framing,
    carry: Vec<u8>,
    name: Option<String>,
    data: String,
    has_data: bool,
    /// A name buffer handed back by [`Decoder::recycle`], reused for the next `event:` line.
    spare_name: Option<String>,
    /// The largest frame accepted, in bytes.
    max_frame: usize,
    /// The binary decoder, for `Framing::EventStream`.
    binary: EventStreamDecoder,
}

/// The upstream sent something that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FramingError {
    /// Bytes that are not this framing (invalid UTF-8...).
    Invalid(String),
    /// One frame grew past the limit of this many bytes.
    TooLarge(usize),
    /// The framing itself carried an error message (an event-stream exception): its type
    /// and message.
    Upstream { kind: String, message: String },
}

impl From<FramingError> for ProxyError {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::Invalid(message) => ProxyError::BadUpstreamResponse { message },
            FramingError::TooLarge(limit) => ProxyError::UpstreamTooLarge {
                what: "a stream frame (an event or line)",
                limit,
                flag: "--max-upstream-frame",
            },
            FramingError::Upstream { kind, message } => ProxyError::UpstreamStreamError {
                message,
                kind: Some(kind),
                code: None,
            },
        }
    }
}

/// `Ok` while a frame of `len` bytes is within `max_frame`: the one check every framing makes
/// before it buffers more of a frame.
pub fn frame_fits(len: usize, max_frame: usize) -> Result<(), FramingError> {
    if len > max_frame {
        Err(FramingError::TooLarge(max_frame))
    } else {
        Ok(())
    }
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        Decoder {
            framing,
            carry: Vec::new(),
            name: None,
            data: String::new(),
            has_data: false,
            spare_name: None,
            max_frame: DEFAULT_MAX_UPSTREAM_FRAME,
            binary: EventStreamDecoder::default(),
        }
    }

    /// Accepts frames of at most `max_frame` bytes from now on.
    pub fn set_max_frame(&mut self, max_frame: usize) {
        self.max_frame = max_frame;
    }

    /// Feeds bytes, pushing every completed event to `events`.
    pub fn feed(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<(), FramingError> {
        if self.framing == Framing::EventStream {
            let mut messages = Vec::new();
            let framed = self.binary.feed(bytes, &mut messages, self.max_frame);
            for m in messages {
                match m {
                    Message::Event(e) => events.push(e),
                    // Events before it still count; nothing after it does.
                    Message::Error { kind, message } => {
                        return Err(FramingError::Upstream { kind, message });
                    }
                }
            }
            return framed;
        }
        self.carry.extend_from_slice(bytes);
        // The carry is taken out while its lines are handled, so they are read in place.
        let carry = std::mem::take(&mut self.carry);
        let mut start = 0;
        while let Some(pos) = line_end(&carry[start..]) {
            let end = start + pos;
            // A `\r` at the very end may be the first half of `\r\n`: wait for more bytes.
            if carry[end] == b'\r' && end + 1 == carry.len() {
                break;
            }
            // The event so far plus this line: an NDJSON line, or an SSE event's lines.
            if let Err(e) = frame_fits(self.data.len() + (end - start), self.max_frame) {
                self.carry = carry;
                return Err(e);
            }
            let Ok(line) = std::str::from_utf8(&carry[start..end]) else {
                self.carry = carry;
                return Err(FramingError::Invalid("upstream sent invalid UTF-8".into()));
            };
            let mut next = end + 1;
            if carry[end] == b'\r' && carry.get(next) == Some(&b'\n') {
                next += 1;
            }
            start = next;
            self.line(line, events);
        }
        self.carry = carry;
        self.carry.drain(..start);
        frame_fits(self.data.len() + self.carry.len(), self.max_frame)
    }

    /// Flushes what is left at the end of the stream.
    pub fn finish(&mut self, events: &mut Vec<Event>) -> Result<(), FramingError> {
        if self.framing == Framing::EventStream {
            return self.binary.finish();
        }
        if !self.carry.is_empty() {
            let rest = std::mem::take(&mut self.carry);
            let line = String::from_utf8(rest)
                .map_err(|_| FramingError::Invalid("upstream sent invalid UTF-8".into()))?;
            self.line(line.trim_end_matches('\r'), events);
        }
        if self.framing == Framing::Sse {
            // An event not followed by its blank line: lenient, dispatch it.
            self.line("", events);
        }
        Ok(())
    }

    /// Takes back an event's buffers once it has been handled, so the next event's data and
    /// name are read into them instead of newly allocated ones. A large buffer is dropped
    /// rather than kept for the rest of the stream.
    pub fn recycle(&mut self, event: Event) {
        if self.data.capacity() == 0 && event.data.capacity() <= RECYCLED_MAX {
            self.data = event.data;
            self.data.clear();
        }
        if event
            .name
            .as_ref()
            .is_some_and(|n| n.capacity() <= RECYCLED_MAX)
        {
            self.spare_name = event.name;
        }
    }

    fn line(&mut self, line: &str, events: &mut Vec<Event>) {
        match self.framing {
            Framing::Ndjson => {
                let t = line.trim();
                if !t.is_empty() {
                    events.push(Event {
                        name: None,
                        data: t.to_string(),
                    });
                }
            }
            // Binary frames never reach the line reader.
            Framing::EventStream => {}
            Framing::Sse => {
                if line.is_empty() {
                    if self.has_data {
                        events.push(Event {
                            name: self.name.take(),
                            data: std::mem::take(&mut self.data),
                        });
                    }
                    self.name = None;
                    self.has_data = false;
                    return;
                }
                if line.starts_with(':') {
                    return; // comment / keep-alive
                }
                // Field names are short: a plain scan finds the colon sooner than `find`.
                let (field, value) = match line.bytes().position(|b| b == b':') {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                    }
                    None => (line, ""),
                };
                match field {
                    "event" => {
                        let mut name = self.spare_name.take().unwrap_or_default();
                        name.clear();
                        name.push_str(value);
                        self.name = Some(name);
                    }
                    "data" => {
                        if self.has_data {
                            self.data.push('\n');
                        }
                        self.data.push_str(value);
                        self.has_data = true;
                    }
                    _ => {} // id, retry and unknown fields are not used
                }
            }
        }
    }
}

/// The index of the first `\n` or `\r` in `b`, eight bytes at a time.
fn line_end(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let (lf, cr) = (x ^ (ONES * u64::from(b'\n')), x ^ (ONES * u64::from(b'\r')));
        // A byte of `lf` or `cr` is zero where `x` has that character. The test flags every
        // zero byte, and a false flag can only sit above a true one (it comes from a borrow),
        // so the lowest flagged byte is the first match.
        let hits = (lf.wrapping_sub(ONES) & !lf | cr.wrapping_sub(ONES) & !cr) & HIGH;
        if hits != 0 {
            return Some(at + hits.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map(|p| at + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(framing: Framing, chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::new(framing);
        let mut ev = Vec::new();
        for c in chunks {
            d.feed(c, &mut ev).unwrap();
        }
        d.finish(&mut ev).unwrap();
        ev
    }

    fn ev(name: Option<&str>, data: &str) -> Event {
        Event {
            name: name.map(String::from),
            data: data.into(),
        }
    }

    #[test]
    fn sse_named_events_split_anywhere() {
        let whole =
            b"event: a\ndata: {\"x\":1}\n\n: ping\n\nevent: b\ndata:{\"y\":\"\xc3\xa9\"}\n\n";
        for cut in 0..whole.len() {
            let (l, r) = whole.split_at(cut);
            assert_eq!(
                decode(Framing::Sse, &[l, r]),
                vec![ev(Some("a"), "{\"x\":1}"), ev(Some("b"), "{\"y\":\"é\"}")],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn sse_crlf_multiline_and_trailing_event() {
        assert_eq!(
            decode(Framing::Sse, &[b"data: a\r\ndata: b\r\n\r\ndata: [DONE]"]),
            vec![ev(None, "a\nb"), ev(None, "[DONE]")]
        );
        assert_eq!(
            decode(Framing::Sse, &[b"data: a\r", b"\n\r", b"\n"]),
            vec![ev(None, "a")]
        );
        assert_eq!(decode(Framing::Sse, &[b"event: only-name\n\n"]), vec![]);
    }

    #[test]
    fn ndjson_lines() {
        assert_eq!(
            decode(
                Framing::Ndjson,
                &[b"{\"a\":1}\n{\"b\"", b":2}\n\n{\"c\":3}"]
            ),
            vec![
                ev(None, "{\"a\":1}"),
                ev(None, "{\"b\":2}"),
                ev(None, "{\"c\":3}")
            ]
        );
    }

    #[test]
    fn line_end_finds_the_first_line_break() {
        let naive = |b: &[u8]| b.iter().position(|&c| c == b'\n' || c == b'\r');
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let len = rng.usize(0..40);
            let b: Vec<u8> = (0..len)
                .map(|_| match rng.u8(0..12) {
                    0 => b'\n',
                    1 => b'\r',
                    2 => 0x0b,
                    3 => 0x8d,
                    4 => 0x0c,
                    _ => rng.u8(..),
                })
                .collect();
            assert_eq!(line_end(&b), naive(&b), "{b:?}");
        }
    }

    #[test]
    fn recycled_buffers_do_not_leak_into_the_next_event() {
        let mut d = Decoder::new(Framing::Sse);
        let mut events = Vec::new();
        d.feed(b"event: long-name\ndata: first event data\n\n", &mut events)
            .unwrap();
        for e in events.drain(..) {
            d.recycle(e);
        }
        d.feed(b"event: b\ndata: x\n\ndata: y\n\n", &mut events)
            .unwrap();
        assert_eq!(events, vec![ev(Some("b"), "x"), ev(None, "y")]);
    }

    fn capped(framing: Framing, max_frame: usize) -> Decoder {
        let mut d = Decoder::new(framing);
        d.set_max_frame(max_frame);
        d
    }

    #[test]
    fn a_frame_over_the_cap_is_an_error_whatever_its_lines() {
        let cap = 1000;
        // SSE: many short data lines, never the blank line that ends the event.
        let mut d = capped(Framing::Sse, cap);
        let mut ev = Vec::new();
        let mut result = Ok(());
        for _ in 0..100 {
            result = d.feed(b"data: 0123456789012345678901234567890123456789\n", &mut ev);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(FramingError::TooLarge(cap)));
        // One event that fits, split anywhere, is fine; so are many of them.
        let mut d = capped(Framing::Sse, cap);
        let event = format!("data: {}\n\n", "x".repeat(900));
        for _ in 0..50 {
            d.feed(event.as_bytes(), &mut ev).unwrap();
        }
        assert_eq!(ev.len(), 50);
        // NDJSON: a line over the cap, whole or still open.
        let line = "y".repeat(1001);
        let mut d = capped(Framing::Ndjson, cap);
        assert!(d.feed(format!("{line}\n").as_bytes(), &mut ev).is_err());
        let mut d = capped(Framing::Ndjson, cap);
        assert!(d.feed(line.as_bytes(), &mut ev).is_err());
        assert_eq!(
            ProxyError::from(FramingError::TooLarge(cap)).kind(),
            "upstream_too_large"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut d = Decoder::new(Framing::Ndjson);
        assert!(d.feed(b"\xff\xfe\n", &mut Vec::new()).is_err());
    }
}
