//! Targets `sse_framing` and `ndjson_framing`: `rosetta::translate::framing::Decoder`.
//!
//! Properties, for any bytes:
//! - no panic;
//! - the events and the result (the first error) are the same whether the input is fed whole,
//!   in two pieces cut at a fuzz-chosen point, in up to eight fuzz-chosen pieces, or (for short
//!   inputs) one byte at a time: the decoder's carry buffer makes chunking invisible;
//! - they equal what a reference decoder computes from the whole input at once: lines end at
//!   `\r\n`, `\r` or `\n`; a line that is not UTF-8 is an error and nothing after it is decoded;
//!   NDJSON gives each non-blank line, trimmed; SSE follows the WHATWG rules (`:` comments,
//!   `field: value` with one optional space, `data` lines joined by `\n`, dispatch on a blank
//!   line and at the end of the stream, an event without data is dropped);
//! - every event is well-formed: no line terminator inside NDJSON data or an SSE event name,
//!   no `\r` anywhere, NDJSON data non-empty and trimmed, NDJSON events unnamed.

use rosetta::mapping::Framing;
use rosetta::translate::framing::{Decoder, Event, FramingError};

use crate::input::Input;

/// Events decoded, and the first error if any (decoding stops there).
pub type Decoded = (Vec<Event>, Option<FramingError>);

/// Feeds `pieces` in order, then finishes; stops at the first error.
pub fn decode(framing: Framing, pieces: &[&[u8]]) -> Decoded {
    let mut d = Decoder::new(framing);
    let mut events = Vec::new();
    for p in pieces {
        if let Err(e) = d.feed(p, &mut events) {
            return (events, Some(e));
        }
    }
    let err = d.finish(&mut events).err();
    (events, err)
}

/// The reference: the whole input, split into lines first, then decoded line by line.
pub fn reference(framing: Framing, bytes: &[u8]) -> (Vec<Event>, bool) {
    let mut lines: Vec<&[u8]> = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&bytes[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&bytes[start..i]);
                i += 1;
                if bytes.get(i) == Some(&b'\n') {
                    i += 1;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    // The unterminated rest, if any, is a last line.
    if start < bytes.len() {
        lines.push(&bytes[start..]);
    }
    let mut events = Vec::new();
    let mut sse = SseState::default();
    for line in lines {
        let Ok(line) = std::str::from_utf8(line) else {
            return (events, true);
        };
        match framing {
            Framing::Ndjson => {
                let t = line.trim();
                if !t.is_empty() {
                    events.push(Event {
                        name: None,
                        data: t.to_string(),
                    });
                }
            }
            Framing::Sse => sse.line(line, &mut events),
            // A binary framing: its own target (`crate::eventstream`).
            Framing::EventStream => {}
        }
    }
    if framing == Framing::Sse {
        sse.line("", &mut events);
    }
    (events, false)
}

#[derive(Default)]
struct SseState {
    name: Option<String>,
    /// WHATWG's data buffer: each `data` line's value followed by `\n`.
    data: String,
}

impl SseState {
    fn line(&mut self, line: &str, events: &mut Vec<Event>) {
        if line.is_empty() {
            let name = self.name.take();
            if !self.data.is_empty() {
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the last `\n`
                events.push(Event { name, data });
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            // Rosetta keeps an empty `event:` as an empty name (WHATWG would fall back to
            // "message"); no rule names "" so the difference is invisible.
            "event" => self.name = Some(value.to_string()),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            _ => {}
        }
    }
}

fn well_formed(framing: Framing, events: &[Event]) {
    for e in events {
        assert!(!e.data.contains('\r'), "\\r inside event data: {e:?}");
        match framing {
            Framing::Ndjson => {
                assert!(e.name.is_none(), "a named NDJSON event: {e:?}");
                assert!(!e.data.is_empty(), "an empty NDJSON event");
                assert_eq!(e.data.trim(), e.data, "NDJSON data not trimmed");
                assert!(!e.data.contains('\n'), "\\n inside NDJSON data: {e:?}");
            }
            Framing::EventStream => {}
            Framing::Sse => {
                if let Some(n) = &e.name {
                    assert!(
                        !n.contains(['\n', '\r']),
                        "a line terminator in an event name: {e:?}"
                    );
                }
            }
        }
    }
}

/// The target body for one framing.
pub fn run(framing: Framing, data: &[u8]) {
    crate::known::guard(|| check(framing, data));
}

fn check(framing: Framing, data: &[u8]) {
    let input = Input::parse(data);
    let payload = input.payload;
    let whole = decode(framing, &[payload]);
    well_formed(framing, &whole.0);

    let two = decode(framing, &input.halves());
    assert_eq!(
        whole,
        two,
        "fed whole vs in two pieces {:?}",
        input.halves()
    );
    let pieces = input.pieces();
    let many = decode(framing, &pieces);
    assert_eq!(whole, many, "fed whole vs in pieces {pieces:?}");
    if payload.len() <= 512 {
        let bytes: Vec<&[u8]> = payload.chunks(1).collect();
        assert_eq!(whole, decode(framing, &bytes), "fed whole vs byte by byte");
    }

    let (events, failed) = reference(framing, payload);
    assert_eq!(
        (&whole.0, whole.1.is_some()),
        (&events, failed),
        "decoder (left) vs reference decoder (right)"
    );
    if let Some(FramingError::Invalid(message)) = &whole.1 {
        assert!(!message.is_empty(), "an empty framing error message");
    }
}
