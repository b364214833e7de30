//! Incremental decoders for upstream stream framing: SSE (named or data-only) and NDJSON.
//!
//! Input arrives in arbitrary network chunks: a line, an event, even a UTF-8 character may be
//! split across them. Each decoder keeps one carry buffer for the incomplete tail and reuses it.

use crate::mapping::Framing;

/// One upstream event: the SSE `event:` name (if any) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: String,
}

/// Longest line accepted; a longer one means the upstream is not speaking this framing.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// A stream decoder for one framing.
#[derive(Debug)]
pub struct Decoder {
    framing: Framing,
    carry: Vec<u8>,
    name: Option<String>,
    data: String,
    has_data: bool,
}

/// The upstream sent something that cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramingError(pub String);

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        Decoder {
            framing,
            carry: Vec::new(),
            name: None,
            data: String::new(),
            has_data: false,
        }
    }

    /// Feeds bytes, pushing every completed event to `events`.
    pub fn feed(&mut self, bytes: &[u8], events: &mut Vec<Event>) -> Result<(), FramingError> {
        self.carry.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.carry[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
        {
            let end = start + pos;
            // A `\r` at the very end may be the first half of `\r\n`: wait for more bytes.
            if self.carry[end] == b'\r' && end + 1 == self.carry.len() {
                break;
            }
            let line = std::str::from_utf8(&self.carry[start..end])
                .map_err(|_| FramingError("upstream sent invalid UTF-8".into()))?
                .to_string();
            let mut next = end + 1;
            if self.carry[end] == b'\r' && self.carry.get(next) == Some(&b'\n') {
                next += 1;
            }
            start = next;
            self.line(&line, events);
        }
        self.carry.drain(..start);
        if self.carry.len() > MAX_LINE {
            return Err(FramingError(
                "upstream line exceeds the maximum length".into(),
            ));
        }
        Ok(())
    }

    /// Flushes what is left at the end of the stream.
    pub fn finish(&mut self, events: &mut Vec<Event>) -> Result<(), FramingError> {
        if !self.carry.is_empty() {
            let rest = std::mem::take(&mut self.carry);
            let line = String::from_utf8(rest)
                .map_err(|_| FramingError("upstream sent invalid UTF-8".into()))?;
            self.line(line.trim_end_matches('\r'), events);
        }
        if self.framing == Framing::Sse {
            // An event not followed by its blank line: lenient, dispatch it.
            self.line("", events);
        }
        Ok(())
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
                let (field, value) = match line.find(':') {
                    Some(i) => {
                        let v = &line[i + 1..];
                        (&line[..i], v.strip_prefix(' ').unwrap_or(v))
                    }
                    None => (line, ""),
                };
                match field {
                    "event" => self.name = Some(value.to_string()),
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
    fn invalid_utf8_is_an_error() {
        let mut d = Decoder::new(Framing::Ndjson);
        assert!(d.feed(b"\xff\xfe\n", &mut Vec::new()).is_err());
    }
}
