//! The wire of a Responses stream: one SSE event per Responses event, `event: TYPE` then
//! `data: JSON` on one line, every JSON with its `type` and the stream's next
//! `sequence_number` (0, 1, 2… with no gap).

use serde_json::{Map, Value};

/// Appends compact JSON, as `to_string` would write it.
fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("JSON into memory cannot fail");
}

/// A delta event, the frequent kind, written without building a JSON value.
pub(super) struct Delta<'a> {
    /// `response.output_text.delta`, `response.reasoning_text.delta` or
    /// `response.function_call_arguments.delta`.
    pub kind: &'static str,
    /// The part the piece belongs to; calls have no parts.
    pub content_index: Option<usize>,
    /// The summary part the piece belongs to (reasoning given as a summary).
    pub summary_index: Option<usize>,
    pub piece: &'a str,
    pub item_id: &'a str,
    /// Whether the event carries `logprobs: []` (text deltas do).
    pub logprobs: bool,
    pub output_index: usize,
}

/// The numbering of one stream's events.
#[derive(Debug, Default)]
pub(super) struct Events {
    next: u64,
}

impl Events {
    /// How many events have been written.
    pub fn count(&self) -> u64 {
        self.next
    }

    fn head(&mut self, out: &mut Vec<u8>, kind: &str) -> u64 {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        let n = self.next;
        self.next += 1;
        n
    }

    /// Writes `body` (an object) as an event of type `kind`; `type` and `sequence_number` are
    /// added to it and stay there.
    pub fn event(&mut self, out: &mut Vec<u8>, kind: &'static str, body: &mut Map<String, Value>) {
        let n = self.head(out, kind);
        body.insert("sequence_number".into(), n.into());
        body.insert("type".into(), kind.into());
        write_json(out, body);
        out.extend_from_slice(b"\n\n");
    }

    /// Writes a delta event, keys in the order `serde_json` sorts them (see the test).
    pub fn delta(&mut self, out: &mut Vec<u8>, d: Delta<'_>) {
        let n = self.head(out, d.kind);
        out.push(b'{');
        if let Some(ci) = d.content_index {
            out.extend_from_slice(b"\"content_index\":");
            write_json(out, &ci);
            out.push(b',');
        }
        out.extend_from_slice(b"\"delta\":");
        write_json(out, d.piece);
        out.extend_from_slice(b",\"item_id\":");
        write_json(out, d.item_id);
        if d.logprobs {
            out.extend_from_slice(b",\"logprobs\":[]");
        }
        out.extend_from_slice(b",\"output_index\":");
        write_json(out, &d.output_index);
        out.extend_from_slice(b",\"sequence_number\":");
        write_json(out, &n);
        if let Some(si) = d.summary_index {
            out.extend_from_slice(b",\"summary_index\":");
            write_json(out, &si);
        }
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(d.kind.as_bytes());
        out.extend_from_slice(b"\"}\n\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deltas_written_directly_are_what_json_would_write() {
        for piece in ["", "a \"quoted\" line\n", "\u{1}é\u{2028}"] {
            for (content_index, summary_index, logprobs) in [
                (Some(3), None, true),
                (Some(0), None, false),
                (None, None, false),
                (None, Some(0), false),
            ] {
                let (mut direct, mut built) = (Vec::new(), Vec::new());
                let mut a = Events { next: 41 };
                a.delta(
                    &mut direct,
                    Delta {
                        kind: "response.output_text.delta",
                        content_index,
                        summary_index,
                        piece,
                        item_id: "msg_1",
                        logprobs,
                        output_index: 2,
                    },
                );
                let mut body = json!({"delta": piece, "item_id": "msg_1", "output_index": 2});
                if let Some(ci) = content_index {
                    body["content_index"] = json!(ci);
                }
                if let Some(si) = summary_index {
                    body["summary_index"] = json!(si);
                }
                if logprobs {
                    body["logprobs"] = json!([]);
                }
                let mut b = Events { next: 41 };
                b.event(
                    &mut built,
                    "response.output_text.delta",
                    body.as_object_mut().unwrap(),
                );
                assert_eq!(
                    String::from_utf8(direct).unwrap(),
                    String::from_utf8(built).unwrap()
                );
                assert_eq!((a.count(), b.count()), (42, 42));
            }
        }
    }

    #[test]
    fn an_event_is_two_lines_and_numbers_rise_by_one() {
        let mut e = Events::default();
        let mut out = Vec::new();
        e.event(&mut out, "response.created", &mut Map::new());
        e.event(&mut out, "response.in_progress", &mut Map::new());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: response.created\ndata: {\"sequence_number\":0,\"type\":\"response.created\"}\n\n\
             event: response.in_progress\ndata: {\"sequence_number\":1,\"type\":\"response.in_progress\"}\n\n"
        );
    }
}
