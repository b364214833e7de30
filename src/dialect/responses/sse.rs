//! The wire of a Responses stream: one SSE event per Responses event, `event: TYPE` then
//! `data: JSON` on one line, every JSON with its `type` and the stream's next
//! `sequence_number` (0, 1, 2… with no gap).

use serde_json::{Map, Value};

#[cfg(test)]
pub(super) use crate::ops::json::needs_escape;
pub(super) use crate::ops::json::{write_json, write_str, write_value};

/// `key > other`, deciding on the first bytes when they differ (as they mostly do) without
/// calling `memcmp`.
fn after(key: &str, other: &str) -> bool {
    match (key.as_bytes().first(), other.as_bytes().first()) {
        (Some(a), Some(b)) if a != b => a > b,
        _ => key > other,
    }
}

/// A JSON object written field by field, straight into the output, byte for byte as
/// `serde_json` writes the same object: compact, and the keys in its (sorted) order, which the
/// caller keeps (checked in debug builds). An event's `sequence_number` and `type` are put in
/// their places by the object itself.
pub(super) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
    /// An event's `sequence_number` and `type`, until their place comes.
    seq: Option<u64>,
    kind: Option<&'static str>,
    #[cfg(debug_assertions)]
    last: &'static str,
}

impl<'a> Obj<'a> {
    /// Opens an object.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Obj {
            out,
            empty: true,
            seq: None,
            kind: None,
            #[cfg(debug_assertions)]
            last: "",
        }
    }

    /// Writes `"key":` (the key needs no escaping) and gives the output for its value.
    pub fn key(&mut self, key: &'static str) -> &mut Vec<u8> {
        #[cfg(debug_assertions)]
        {
            assert!(self.last < key, "{key} after {}", self.last);
            assert!(
                !(self.seq.is_some() && key == "sequence_number"
                    || self.kind.is_some() && key == "type"),
                "{key} is the event's own"
            );
            self.last = key;
        }
        if self.seq.is_some() && after(key, "sequence_number") {
            let n = self.seq.take().unwrap_or_default();
            self.key_only("sequence_number");
            write_json(self.out, &n);
        }
        if let Some(kind) = self.kind.filter(|_| after(key, "type")) {
            self.kind = None;
            self.key_only("type");
            write_str(self.out, kind);
        }
        self.key_only(key);
        self.out
    }

    fn key_only(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A field whose value is already JSON.
    pub fn raw(&mut self, key: &'static str, json: &[u8]) -> &mut Self {
        self.key(key).extend_from_slice(json);
        self
    }

    /// A string field.
    pub fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        write_str(self.key(key), value);
        self
    }

    /// A number field.
    pub fn num(&mut self, key: &'static str, value: usize) -> &mut Self {
        write_json(self.key(key), &value);
        self
    }

    /// Closes the object.
    pub fn close(mut self) {
        if let Some(n) = self.seq.take() {
            self.key_only("sequence_number");
            write_json(self.out, &n);
        }
        if let Some(kind) = self.kind.take() {
            self.key_only("type");
            write_str(self.out, kind);
        }
        self.out.push(b'}');
    }
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

    /// Writes an event of type `kind` whose fields (but `sequence_number` and `type`, which
    /// are added in their places) `body` writes, in `serde_json`'s order.
    pub fn write(
        &mut self,
        out: &mut Vec<u8>,
        kind: &'static str,
        body: impl FnOnce(&mut Obj<'_>),
    ) {
        let n = self.head(out, kind);
        let mut o = Obj::new(out);
        o.seq = Some(n);
        o.kind = Some(kind);
        body(&mut o);
        o.close();
        out.extend_from_slice(b"\n\n");
    }

    /// Writes a delta event, keys in the order `serde_json` sorts them (see the test), and
    /// gives its head, for writing the item's next deltas with [`Events::delta_with`].
    pub fn delta(&mut self, out: &mut Vec<u8>, d: Delta<'_>) -> DeltaHead {
        let head = DeltaHead::new(&d);
        self.delta_with(out, &head, d.piece);
        head
    }

    /// Writes a delta event of `head` (an item's) with `piece`.
    pub fn delta_with(&mut self, out: &mut Vec<u8>, head: &DeltaHead, piece: &str) {
        let n = self.next;
        self.next += 1;
        let b = &head.bytes;
        out.extend_from_slice(&b[..head.piece_at]);
        write_str(out, piece);
        out.extend_from_slice(&b[head.piece_at..head.number_at]);
        write_json(out, &n);
        out.extend_from_slice(&b[head.number_at..]);
    }
}

/// The bytes of an item's delta events but the piece and the `sequence_number`: made once,
/// copied for every delta.
#[derive(Debug)]
pub(super) struct DeltaHead {
    bytes: Vec<u8>,
    /// Where the piece goes, then where the sequence number goes.
    piece_at: usize,
    number_at: usize,
}

impl DeltaHead {
    /// The head of `d`'s events (its `piece` is not read).
    pub fn new(d: &Delta<'_>) -> Self {
        let mut b = Vec::with_capacity(2 * d.kind.len() + d.item_id.len() + 128);
        b.extend_from_slice(b"event: ");
        b.extend_from_slice(d.kind.as_bytes());
        b.extend_from_slice(b"\ndata: {");
        if let Some(ci) = d.content_index {
            b.extend_from_slice(b"\"content_index\":");
            write_json(&mut b, &ci);
            b.push(b',');
        }
        b.extend_from_slice(b"\"delta\":");
        let piece_at = b.len();
        b.extend_from_slice(b",\"item_id\":");
        write_str(&mut b, d.item_id);
        if d.logprobs {
            b.extend_from_slice(b",\"logprobs\":[]");
        }
        b.extend_from_slice(b",\"output_index\":");
        write_json(&mut b, &d.output_index);
        b.extend_from_slice(b",\"sequence_number\":");
        let number_at = b.len();
        if let Some(si) = d.summary_index {
            b.extend_from_slice(b",\"summary_index\":");
            write_json(&mut b, &si);
        }
        b.extend_from_slice(b",\"type\":\"");
        b.extend_from_slice(d.kind.as_bytes());
        b.extend_from_slice(b"\"}\n\n");
        DeltaHead {
            bytes: b,
            piece_at,
            number_at,
        }
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
    fn strings_and_values_written_directly_are_what_json_would_write() {
        // Every byte JSON escapes, and some it does not, at every place of a string long
        // enough for the vectorised scan.
        let mut strings = vec![String::new(), "é\u{2028}\u{7f}~ ".into()];
        for c in (0u8..0x20).chain([b'"', b'\\', b' ', b'!', b'#', b'/', b'[', b']', 0x7f]) {
            for len in [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 41, 63, 64, 100] {
                for at in [0, 1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 31, 40, 62, 63, 99] {
                    if at < len {
                        let mut s = "x".repeat(len);
                        s.replace_range(at..=at, &char::from(c).to_string());
                        strings.push(s);
                    }
                }
            }
        }
        // Bytes above 0x7f next to and in place of each kind (UTF-8 of U+0080..U+FFFF).
        for c in ['\u{80}', '\u{a2}', '\u{2028}', '\u{ffff}', 'é'] {
            strings.push(format!("{c}\"{c}\u{1}{c}"));
            strings.push(c.to_string().repeat(9));
        }
        // Every byte that needs no escaping, at every place of both scans.
        let clean: String = (0x20u8..0x7f)
            .filter(|b| !matches!(b, b'"' | b'\\'))
            .map(char::from)
            .chain(['é', '\u{2028}', '\u{ffff}'])
            .collect();
        for len in 0..clean.len() {
            strings.extend(clean.get(len..).map(str::to_string));
            strings.extend(clean.get(..len).map(str::to_string));
        }
        for s in &strings {
            let escaped = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(needs_escape(s.as_bytes()), escaped, "{s:?}");
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
        let values = [
            json!(null),
            json!([
                true,
                false,
                0,
                -1,
                1.5,
                1e300,
                -0.0,
                u64::MAX,
                i64::MIN,
                0.1
            ]),
            json!({"": {}, "a\"b": [[], {}], "k": "v\n", "z": {"y": [null, "\u{1}"]}}),
            Value::String(strings.concat()),
        ];
        for v in &values {
            let mut out = Vec::new();
            write_value(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }

    #[test]
    fn after_is_greater_than() {
        let keys = [
            "",
            "a",
            "s",
            "sequence_number",
            "sequence_numbers",
            "summary_index",
            "t",
        ];
        let keys = keys
            .into_iter()
            .chain(["text", "type", "typed", "u", "content_index"]);
        for k in keys.clone() {
            for other in keys.clone() {
                assert_eq!(after(k, other), k > other, "{k} {other}");
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
