//! What parsing a request body into a `serde_json::Value` will cost, found without building it.
//!
//! A `Value` costs far more than the JSON text it comes from: every array slot is 32 bytes
//! (and a `Vec` grows by doubling), every object with a key allocates a B-tree leaf of about
//! 640 bytes, every string and key is an allocation of its own. `{"a":0}` is 7 bytes of JSON and
//! about 700 bytes parsed; `[0,0,0,...]` costs about 32 times its text. [`measure`] is one pass
//! over the bytes (strings and escapes respected, nothing allocated but a stack of open
//! containers) that counts the values and adds up an upper estimate of the parsed size, so that
//! a body can be refused before the parser spends the memory.

/// Bytes of one `serde_json::Value` (an array slot, or a B-tree value slot).
const SLOT: usize = 32;
/// Bytes of one B-tree leaf of `String` keys and `Value`s (11 entries), as allocated.
const LEAF: usize = 640;
/// Bytes of one internal B-tree node (a leaf plus 12 edges).
const INTERNAL: usize = 736;
/// Deeper than this `serde_json` refuses the body anyway (its limit is 128): the scan stops.
const MAX_DEPTH: usize = 160;

/// What a JSON body holds, and what it would cost parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Values: every object, array, string, number, `true`, `false` and `null` (keys are not
    /// values).
    pub values: usize,
    /// An upper estimate of the heap bytes of the parsed `serde_json::Value`.
    pub parsed_bytes: usize,
}

/// The body holds more than the allowed number of values; the scan stopped there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyValues;

/// An open container: its kind and how many entries it has so far.
struct Open {
    object: bool,
    entries: usize,
    /// In an object: the next string is a key.
    key_next: bool,
}

/// Scans `json` and returns its [`Shape`], or [`TooManyValues`] as soon as it has more than
/// `max_values` values (`0`: no limit). Invalid JSON gets an estimate of the part before the
/// error, which is all the parser would build before it fails.
pub fn measure(json: &[u8], max_values: usize) -> Result<Shape, TooManyValues> {
    let mut shape = Shape::default();
    let mut stack: Vec<Open> = Vec::new();
    let mut i = 0;
    let max_values = if max_values == 0 {
        usize::MAX
    } else {
        max_values
    };
    while i < json.len() {
        let b = json[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' | b':' => {
                if let Some(top) = stack.last_mut() {
                    match b {
                        b',' => top.key_next = top.object,
                        b':' => top.key_next = false,
                        _ => {}
                    }
                }
                i += 1;
            }
            b'"' => {
                let (len, next) = string_at(json, i + 1);
                i = next;
                shape.parsed_bytes += string_cost(len);
                match stack.last_mut() {
                    Some(top) if top.key_next => top.key_next = false,
                    top => value(&mut shape, top, max_values)?,
                }
            }
            b'{' | b'[' => {
                value(&mut shape, stack.last_mut(), max_values)?;
                if stack.len() >= MAX_DEPTH {
                    return Ok(shape);
                }
                stack.push(Open {
                    object: b == b'{',
                    entries: 0,
                    key_next: b == b'{',
                });
                i += 1;
            }
            b'}' | b']' => {
                if let Some(open) = stack.pop() {
                    shape.parsed_bytes += if open.object {
                        object_cost(open.entries)
                    } else {
                        array_cost(open.entries)
                    };
                }
                i += 1;
            }
            _ => {
                // A number, `true`, `false` or `null` (or garbage the parser will refuse):
                // no allocation beyond its slot.
                value(&mut shape, stack.last_mut(), max_values)?;
                while i < json.len()
                    && !matches!(json[i], b',' | b']' | b'}' | b':' | b'"')
                    && !json[i].is_ascii_whitespace()
                {
                    i += 1;
                }
            }
        }
    }
    // Containers left open (a truncated body): the parser fails, but may have grown them.
    for open in stack {
        shape.parsed_bytes += if open.object {
            object_cost(open.entries)
        } else {
            array_cost(open.entries)
        };
    }
    Ok(shape)
}

/// Counts one value in `parent`.
fn value(shape: &mut Shape, parent: Option<&mut Open>, max: usize) -> Result<(), TooManyValues> {
    shape.values += 1;
    if shape.values > max {
        return Err(TooManyValues);
    }
    if let Some(p) = parent {
        p.entries += 1;
    }
    Ok(())
}

/// The raw length of the string whose text starts at `start` (after its opening quote), and
/// the index after its closing quote.
fn string_at(json: &[u8], start: usize) -> (usize, usize) {
    let mut i = start;
    loop {
        match memchr::memchr2(b'"', b'\\', &json[i..]) {
            None => return (json.len() - start, json.len()),
            Some(at) if json[i + at] == b'"' => return (i + at - start, i + at + 1),
            Some(at) => i = (i + at + 2).min(json.len()),
        }
    }
}

/// A `String` of at most `len` bytes (escapes only shorten it), with the allocator's rounding.
fn string_cost(len: usize) -> usize {
    if len == 0 { 0 } else { len + len / 8 + 16 }
}

/// A `Vec<Value>` of `n` elements grown by doubling from 4, with the moment of its last growth
/// (the old buffer and the new one, half again as much).
fn array_cost(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        SLOT * n.max(4).next_power_of_two() * 3 / 2
    }
}

/// A `BTreeMap<String, Value>` of `n` entries: split leaves are at least half full.
fn object_cost(n: usize) -> usize {
    match n {
        0 => 0,
        1..=11 => LEAF,
        _ => {
            let leaves = n.div_ceil(5);
            leaves * LEAF + leaves.div_ceil(5) * INTERNAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(s: &str) -> Shape {
        measure(s.as_bytes(), 0).unwrap()
    }

    #[test]
    fn counts_values_not_keys() {
        assert_eq!(shape("1").values, 1);
        assert_eq!(shape(r#"{"a":1,"b":[true,false,null]}"#).values, 6);
        assert_eq!(shape(r#" { "k" : "v" , "l" : { } } "#).values, 3);
        assert_eq!(shape(r#"["a\"b,c]", "\\", "]"]"#).values, 4);
        assert_eq!(shape(r#"[-1.5e3, 0, 12]"#).values, 4);
    }

    #[test]
    fn estimates_the_parsed_size() {
        assert_eq!(shape("[]").parsed_bytes, 0);
        assert_eq!(shape("[1]").parsed_bytes, 6 * SLOT);
        assert_eq!(shape(r#"{"a":0}"#).parsed_bytes, LEAF + string_cost(1));
        let ints = format!("[{}0]", "0,".repeat(999));
        assert_eq!(shape(&ints).parsed_bytes, 1536 * SLOT);
        let text = format!(r#"["{}"]"#, "x".repeat(1000));
        assert_eq!(shape(&text).parsed_bytes, 6 * SLOT + string_cost(1000));
    }

    #[test]
    fn stops_at_the_value_limit() {
        let many = format!("[{}0]", "0,".repeat(100));
        assert_eq!(measure(many.as_bytes(), 102).unwrap().values, 102);
        assert_eq!(measure(many.as_bytes(), 101), Err(TooManyValues));
    }

    #[test]
    fn survives_garbage() {
        for s in [
            "",
            "]]]}}",
            "\"unterminated",
            "[[[[",
            "\"\\",
            "{\"a\":",
            "tru",
            "[1,,2]",
        ] {
            let _ = shape(s);
        }
        let deep = "[".repeat(100_000);
        assert_eq!(shape(&deep).values, MAX_DEPTH + 1);
    }
}
