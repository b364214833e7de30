//! JSON written as bytes, byte for byte what `serde_json` writes (compact, keys in their map's
//! order), faster: a string that needs no escaping (most of them) is found by a word-at-a-time
//! scan and copied whole, where `serde_json` looks up every byte. Used for every body Rosetta
//! sends: the upstream request, the client's answers and the Responses events.

use serde_json::Value;

/// Appends compact JSON, as `to_string` would write it.
pub fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(out, v).expect("JSON into memory cannot fail");
}

/// Whether JSON escapes a byte of `s` (a control character, `"` or `\\`; `serde_json` escapes
/// nothing else). Long strings in a scan without branches; short ones (most keys, ids and
/// stream pieces) eight bytes at a time.
pub fn needs_escape(s: &[u8]) -> bool {
    if s.len() >= 64 {
        return s.iter().fold(false, |any, &b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        });
    }
    let n = s.len();
    // Words of the string's own bytes, the last ones overlapping (a byte checked twice is
    // checked right twice).
    let word = |at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().unwrap_or_default());
    let half = |at: usize| {
        u64::from(u32::from_ne_bytes(
            s[at..at + 4].try_into().unwrap_or_default(),
        ))
    };
    let quarter = |at: usize| {
        u64::from(u16::from_ne_bytes(
            s[at..at + 2].try_into().unwrap_or_default(),
        ))
    };
    match n {
        0 => false,
        1 => word_needs_escape(u64::from_ne_bytes([s[0]; 8])),
        2..4 => word_needs_escape((quarter(0) | quarter(n - 2) << 16) * 0x0001_0000_0001),
        4..8 => word_needs_escape(half(0) | half(n - 4) << 32),
        _ => (0..n.div_ceil(8)).any(|i| word_needs_escape(word((i * 8).min(n - 8)))),
    }
}

/// Whether a byte of the eight of `w` is below 0x20, `"` or `\\`: a byte below `n` borrows
/// in `w - n` per byte where it is not set in `!w` (the classic has-less and has-zero tests,
/// exact as a whole).
fn word_needs_escape(w: u64) -> bool {
    const fn splat(b: u8) -> u64 {
        u64::from_ne_bytes([b; 8])
    }
    const HIGH: u64 = splat(0x80);
    let below = |v: u64, n: u8| v.wrapping_sub(splat(n)) & !v & HIGH;
    (below(w, 0x20) | below(w ^ splat(b'"'), 1) | below(w ^ splat(b'\\'), 1)) != 0
}

/// Appends `s` as a JSON string, as `to_string` would write it: copied whole when nothing in it
/// needs escaping (ids, keys, most text); otherwise eight bytes at a time, a word with nothing
/// to escape copied with the run it belongs to, only a word holding an escape looked at byte
/// by byte.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let word = u64::from_ne_bytes(bytes[i..i + 8].try_into().unwrap_or_default());
        if word_needs_escape(word) {
            for at in i..i + 8 {
                start = escape_at(out, bytes, start, at);
            }
        }
        i += 8;
    }
    for at in i..bytes.len() {
        start = escape_at(out, bytes, start, at);
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// When `bytes[at]` needs escaping: writes the run `start..at` and the escape, as `serde_json`
/// writes them (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u00XX` for the other control
/// characters), and gives where the next run starts.
#[inline]
fn escape_at(out: &mut Vec<u8>, bytes: &[u8], start: usize, at: usize) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = bytes[at];
    let short = match b {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        0..0x20 => 0,
        _ => return start,
    };
    out.extend_from_slice(&bytes[start..at]);
    if short == 0 {
        out.extend_from_slice(b"\\u00");
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0xf)]);
    } else {
        out.push(b'\\');
        out.push(short);
    }
    at + 1
}

/// Appends `v` as compact JSON, as `to_string` would write it, with [`write_str`]'s strings.
pub fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_json(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(fields) => {
            out.push(b'{');
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, key);
                out.push(b':');
                write_value(out, value);
            }
            out.push(b'}');
        }
    }
}

/// `v` as compact JSON bytes: `serde_json::to_vec`, faster (see the module).
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_what_serde_json_writes() {
        let mut every_byte = String::new();
        for c in (0u8..0x80).map(char::from) {
            every_byte.push(c);
        }
        let cases = [
            json!(null),
            json!([true, false, 0, -1, 1.5, 1e300, u64::MAX, i64::MIN]),
            json!({"b": "x", "a": {"nested": [1, {"k": "v"}]}, "": ""}),
            json!(
                "plain ascii text that is long enough to take the long branch of the scan ......"
            ),
            json!("line\nbreak, \"quote\", back\\slash, tab\t, bell\u{7}, del\u{7f}, é, 😀"),
            json!(every_byte),
            json!({"key\nwith\"escapes": "\u{1}\u{1f}\u{8}\u{c}\r"}),
        ];
        for v in cases {
            assert_eq!(
                String::from_utf8(to_vec(&v)).unwrap(),
                serde_json::to_string(&v).unwrap()
            );
        }
        // Every length up to 80 (the short and long scans), with the escape at every place.
        for n in 0..80 {
            for at in 0..=n {
                for esc in ["\"", "\\", "\n", "\u{1}", "é"] {
                    let s = format!("{}{esc}{}", "a".repeat(at), "b".repeat(n - at));
                    let v = Value::String(s);
                    assert_eq!(to_vec(&v), serde_json::to_vec(&v).unwrap(), "{v}");
                }
            }
        }
    }
}
