//! Small helpers shared by the provider fakes: trigger words, ids, text splitting, timestamps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Pause between streamed events/lines by default.
pub(crate) const DEFAULT_PACE: Duration = Duration::from_millis(15);
/// Pause between streamed events/lines when the prompt contains `SLOW`.
pub(crate) const SLOW_PACE: Duration = Duration::from_millis(300);

/// Trigger words found in the text of the last user (or tool) message.
#[derive(Debug, Clone, Default)]
pub(crate) struct Triggers(pub(crate) String);

impl Triggers {
    pub(crate) fn has(&self, word: &str) -> bool {
        self.0.contains(word)
    }

    /// `GARBAGE`, but not as part of `STREAM GARBAGE`.
    pub(crate) fn garbage(&self) -> bool {
        self.0.replace("STREAM GARBAGE", "").contains("GARBAGE")
    }

    /// The HTTP status requested by `FAIL <status>`, among `allowed`.
    pub(crate) fn fail(&self, allowed: &[u16]) -> Option<u16> {
        allowed
            .iter()
            .copied()
            .find(|s| self.has(&format!("FAIL {s}")))
    }

    pub(crate) fn pace(&self) -> Duration {
        if self.has("SLOW") {
            SLOW_PACE
        } else {
            DEFAULT_PACE
        }
    }
}

/// Deterministic, random-looking identifiers (a per-server counter run through splitmix64).
#[derive(Debug, Default)]
pub(crate) struct Ids(AtomicU64);

pub(crate) const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(crate) const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl Ids {
    /// A sequence starting at counter `start`, apart from every server's default one: for
    /// secrets (minted tokens), which must share no text with the ids and signatures other
    /// fakes hand out (Rosetta redacts every piece of a secret it has seen).
    pub(crate) fn starting_at(start: u64) -> Ids {
        Ids(AtomicU64::new(start))
    }

    pub(crate) fn next(&self, alphabet: &[u8], len: usize) -> String {
        let mut state = self
            .0
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x2545_F491_4F6C_DD1D);
        (0..len)
            .map(|_| {
                state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                char::from(alphabet[(z % alphabet.len() as u64) as usize])
            })
            .collect()
    }
}

/// Number of whitespace-separated words.
pub(crate) fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Splits `text` at word boundaries into at most `max` pieces whose concatenation is `text`.
pub(crate) fn word_pieces(text: &str, max: usize) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            tokens.push(std::mem::take(&mut cur));
            in_word = false;
        } else if !c.is_whitespace() {
            in_word = true;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        match tokens.last_mut() {
            Some(last) if !in_word => last.push_str(&cur),
            _ => tokens.push(cur),
        }
    }
    let per = tokens.len().div_ceil(max.max(1)).max(1);
    tokens.chunks(per).map(|c| c.concat()).collect()
}

/// Splits `s` into `n` (or fewer, if `s` is short) non-empty pieces of similar length.
pub(crate) fn char_pieces(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let per = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(per).map(|c| c.iter().collect()).collect()
}

/// Tool arguments a "model" would produce for a JSON schema: strings "Paris", integers 3,
/// numbers 1.5, booleans true, nested objects recursively, arrays with one item.
pub(crate) fn args_from_schema(schema: &Value) -> Value {
    let mut out = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            out.insert(name.clone(), value_for(prop, 0));
        }
    }
    Value::Object(out)
}

fn value_for(prop: &Value, depth: usize) -> Value {
    let ty = match prop.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "string",
    };
    match ty {
        "integer" => json!(3),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "null" => Value::Null,
        "object" if depth < 8 => {
            let mut out = Map::new();
            if let Some(props) = prop.get("properties").and_then(Value::as_object) {
                for (name, p) in props {
                    out.insert(name.clone(), value_for(p, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" if depth < 8 => match prop.get("items") {
            Some(items) => json!([value_for(items, depth + 1)]),
            None => json!([]),
        },
        _ => json!("Paris"),
    }
}

/// Current UTC time as an RFC 3339 string with microseconds, e.g. `2026-01-15T09:30:00.101234Z`.
pub(crate) fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let (y, m, day) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_micros()
    )
}

/// Proleptic Gregorian date for a count of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// True if `s` is standard, padded base64 (what Go's `[]byte` JSON decoding accepts); otherwise
/// the byte offset of the first offending character, like Go's `illegal base64 data at input byte N`.
pub(crate) fn base64_error(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let body_len = bytes.iter().rposition(|b| *b != b'=').map_or(0, |p| p + 1);
    for (i, b) in bytes.iter().enumerate() {
        let ok =
            b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/' || (*b == b'=' && i >= body_len);
        if !ok {
            return Some(i);
        }
    }
    if bytes.len() - body_len > 2 || !bytes.len().is_multiple_of(4) {
        return Some(bytes.len().saturating_sub(1));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_rejoin_exactly() {
        let text = "Hello! You said:  what is  up? ";
        let pieces = word_pieces(text, 4);
        assert_eq!(pieces.concat(), text);
        assert_eq!(pieces.len(), 3);
        assert_eq!(word_pieces("a b c d e f g h i", 4).len(), 3);
        assert_eq!(word_pieces("a b c d", 8), vec!["a", " b", " c", " d"]);
        assert_eq!(
            char_pieces("{\"city\":\"Paris\"}", 3).concat(),
            "{\"city\":\"Paris\"}"
        );
        assert_eq!(char_pieces("{}", 3), vec!["{", "}"]);
    }

    #[test]
    fn schema_args_and_ids() {
        let schema = json!({"type":"object","properties":{"city":{"type":"string"},"n":{"type":"integer"},
            "x":{"type":"number"},"b":{"type":"boolean"},"o":{"type":"object","properties":{"k":{"type":"string"}}}}});
        assert_eq!(
            args_from_schema(&schema),
            json!({"city":"Paris","n":3,"x":1.5,"b":true,"o":{"k":"Paris"}})
        );
        let ids = Ids::default();
        let (a, b) = (ids.next(ALNUM, 20), ids.next(ALNUM, 20));
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
    }

    #[test]
    fn dates_and_base64() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_468), (2026, 1, 15));
        assert!(rfc3339_now().ends_with('Z'));
        assert_eq!(base64_error("iVBORw0KGgo="), None);
        assert_eq!(base64_error("data:image/png;base64,AAAA"), Some(4));
        assert_eq!(base64_error("https://x"), Some(5));
    }
}
