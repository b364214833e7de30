//! The binary event-stream framing (`framing: eventstream`): length-prefixed messages with
//! typed headers and two CRC-32 checksums.
//!
//! One message: `total_length` (u32, big-endian, the whole message), `headers_length` (u32),
//! the CRC-32 of those 8 bytes, the header block, the payload, then the CRC-32 of everything
//! before it. A header is a name (u8 length + bytes), a type byte and a value whose width the
//! type gives. Three headers steer the decoding:
//!
//! - `:message-type` `event` (or absent): an event named by `:event-type`, its payload the data;
//! - `:message-type` `exception`: a modeled error named by `:exception-type`, its payload JSON
//!   with a `message`: the stream's error, never a clean end;
//! - `:message-type` `error`: an unmodeled error in `:error-code` and `:error-message`.
//!
//! A message longer than the frame limit is refused from its prelude, before it is buffered;
//! a checksum that does not match is an error, never text.

use crate::translate::framing::{Event, FramingError, frame_fits};

/// Prelude (12 bytes) plus the message checksum (4).
const OVERHEAD: usize = 16;

/// What a message decoded to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Event(Event),
    /// An `exception` or `error` message: its type or code, and its message.
    Error {
        kind: String,
        message: String,
    },
}

/// An incremental decoder of event-stream messages.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    carry: Vec<u8>,
}

impl EventStreamDecoder {
    /// Feeds bytes, pushing every complete message to `out`; messages of more than `max_frame`
    /// bytes are refused.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        out: &mut Vec<Message>,
        max_frame: usize,
    ) -> Result<(), FramingError> {
        self.carry.extend_from_slice(bytes);
        let mut start = 0;
        let result = loop {
            let rest = &self.carry[start..];
            if rest.len() < 12 {
                break Ok(());
            }
            let total = be32(&rest[0..4]) as usize;
            let headers_len = be32(&rest[4..8]) as usize;
            if crc(&rest[0..8]) != be32(&rest[8..12]) {
                break Err(invalid("the prelude checksum does not match"));
            }
            if total < OVERHEAD || headers_len > total - OVERHEAD {
                break Err(invalid("the message lengths are inconsistent"));
            }
            if let Err(e) = frame_fits(total, max_frame) {
                break Err(e);
            }
            if rest.len() < total {
                break Ok(());
            }
            let frame = &rest[..total];
            if crc(&frame[..total - 4]) != be32(&frame[total - 4..]) {
                break Err(invalid("the message checksum does not match"));
            }
            match message(
                &frame[12..12 + headers_len],
                &frame[12 + headers_len..total - 4],
            ) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            start += total;
        };
        self.carry.drain(..start);
        if result.is_err() {
            // Nothing after a broken message can be trusted.
            self.carry.clear();
        }
        result
    }

    /// The stream ended: bytes of an unfinished message mean it was cut short.
    pub fn finish(&mut self) -> Result<(), FramingError> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            self.carry.clear();
            Err(invalid("the stream ended inside a message"))
        }
    }
}

fn invalid(why: &str) -> FramingError {
    FramingError::Invalid(format!(
        "the upstream sent a broken event-stream message: {why}"
    ))
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn crc(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

/// One message from its header block and payload; `None` for a message with nothing to say
/// (an event without a type).
fn message(mut h: &[u8], payload: &[u8]) -> Result<Option<Message>, FramingError> {
    let (mut message_type, mut event_type, mut exception_type) = (None, None, None);
    let (mut error_code, mut error_message) = (None, None);
    while !h.is_empty() {
        let name_len = h[0] as usize;
        let name = h
            .get(1..1 + name_len)
            .ok_or_else(|| invalid("a header name runs past its block"))?;
        let name = std::str::from_utf8(name).map_err(|_| invalid("a header name is not UTF-8"))?;
        let kind = *h
            .get(1 + name_len)
            .ok_or_else(|| invalid("a header has no type"))?;
        let v = &h[2 + name_len..];
        let (value, used) = match kind {
            0 | 1 => (None, 0),
            2 => (None, 1),
            3 => (None, 2),
            4 => (None, 4),
            5 | 8 => (None, 8),
            9 => (None, 16),
            6 | 7 => {
                let len = v
                    .get(0..2)
                    .map(|l| u16::from_be_bytes([l[0], l[1]]) as usize)
                    .ok_or_else(|| invalid("a header value has no length"))?;
                let bytes = v
                    .get(2..2 + len)
                    .ok_or_else(|| invalid("a header value runs past its block"))?;
                (
                    (kind == 7).then(|| String::from_utf8_lossy(bytes).into_owned()),
                    2 + len,
                )
            }
            _ => return Err(invalid("a header has an unknown type")),
        };
        if v.len() < used {
            return Err(invalid("a header value runs past its block"));
        }
        let slot = match name {
            ":message-type" => &mut message_type,
            ":event-type" => &mut event_type,
            ":exception-type" => &mut exception_type,
            ":error-code" => &mut error_code,
            ":error-message" => &mut error_message,
            _ => &mut None,
        };
        if value.is_some() {
            *slot = value;
        }
        h = &v[used..];
    }
    let text = || {
        std::str::from_utf8(payload)
            .map(str::to_string)
            .map_err(|_| invalid("a payload is not UTF-8"))
    };
    match message_type.as_deref().unwrap_or("event") {
        "event" => match event_type {
            Some(name) => Ok(Some(Message::Event(Event {
                name: Some(name),
                data: text()?,
            }))),
            None => Ok(None),
        },
        "exception" => {
            let body = String::from_utf8_lossy(payload);
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .or_else(|| v.get("Message"))
                        .and_then(|m| m.as_str().map(String::from))
                })
                .unwrap_or_else(|| body.into_owned());
            Ok(Some(Message::Error {
                kind: exception_type.unwrap_or_else(|| "exception".into()),
                message,
            }))
        }
        "error" => Ok(Some(Message::Error {
            kind: error_code.unwrap_or_else(|| "error".into()),
            message: error_message.unwrap_or_default(),
        })),
        other => Err(invalid(&format!("unknown message type {other:?}"))),
    }
}

#[cfg(test)]
#[path = "eventstream_tests.rs"]
mod tests;
