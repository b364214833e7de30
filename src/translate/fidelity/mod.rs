//! Nothing dropped silently: what of a client's request the chosen mapping does not translate.
//!
//! Worked out per request from what the route's templates read ([`crate::mapping::reads`]),
//! never from a list kept by hand: a top-level field the route does not read; a string value a
//! route compares with other constants only (a `$lookup` miss: `tool_choice=required`); an
//! object whose `type` the route neither tests nor reads the payload of (`response_format=
//! json_object`); an element of a typed array (content parts, tools, tool calls) likewise
//! (`messages[].content[].input_audio`). OpenAI's defaults and what the engine honours itself
//! lose nothing ([`fields::no_loss`]).
//!
//! The report goes to the client (`x-rosetta-dropped`), to the trace log, and to
//! `rosetta_dropped_params_total{mapping,param}`; under strictness (`x-rosetta-strict: true`
//! or the mapping's `options.unsupported: reject`) the call is refused before anything is sent.

pub mod features;
pub mod fields;
pub mod matrix;

#[cfg(test)]
mod tests;

use http::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::error::ProxyError;
use crate::mapping::reads::{Cover, EACH, Node};
use crate::mapping::{Mapping, Op};
pub use fields::{Canonical, DialectFields, LABELS, OTHER, Responses};

/// The response header that names what was left out.
pub const HEADER: &str = "x-rosetta-dropped";

/// At most this many entries are kept (then `...`): they become a header.
pub const MAX_ENTRIES: usize = 32;

/// Longest entry kept, in characters (a type or a field name can be the client's).
const MAX_ENTRY: usize = 96;

/// Deepest typed array looked into (`messages[].content[]`).
const MAX_DEPTH: usize = 4;

/// What a request loses on its way upstream, in the client's terms, in the order found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Dropped {
    /// Each entry and its label (a position in [`LABELS`], `LABELS.len()` for [`OTHER`]).
    entries: Vec<(String, usize)>,
}

impl Dropped {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// The labels of the entries, in order (positions in [`LABELS`]).
    pub fn labels(&self) -> impl Iterator<Item = usize> + '_ {
        self.entries.iter().map(|(_, l)| *l)
    }

    /// Adds an entry (made printable ASCII without commas, and short; a repeat is not added
    /// again).
    pub fn note(&mut self, entry: &str) {
        self.note_labelled(entry, fields::label(entry));
    }

    fn note_labelled(&mut self, entry: &str, label: usize) {
        if self.entries.len() > MAX_ENTRIES || self.entries.iter().any(|(n, _)| n == entry) {
            return;
        }
        if self.entries.len() == MAX_ENTRIES {
            self.entries.push(("...".into(), LABELS.len()));
            return;
        }
        let clean: String = entry
            .chars()
            .take(MAX_ENTRY)
            // The header separates entries with commas: none inside one.
            .map(|c| {
                if c.is_ascii_graphic() && c != ',' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        self.entries.push((clean, label));
    }

    /// The header's value: the entries joined by commas (`None` when nothing was dropped).
    pub fn header_value(&self) -> Option<HeaderValue> {
        if self.is_empty() {
            return None;
        }
        HeaderValue::from_str(&self.names().collect::<Vec<_>>().join(",")).ok()
    }

    /// Adds the header to a response's headers, when something was dropped.
    pub fn add_header(&self, headers: &mut HeaderMap) {
        if let Some(v) = self.header_value() {
            headers.insert(HEADER, v);
        }
    }

    /// The refusal under strictness: OpenAI's `unsupported_parameter`, naming the first entry.
    pub fn refusal(&self, mapping: &str) -> ProxyError {
        let names: Vec<&str> = self.names().collect();
        ProxyError::Unsupported {
            message: format!(
                "the upstream of mapping {mapping:?} cannot take: {}; remove them, or send the request without x-rosetta-strict to have them left out",
                names.join(", ")
            ),
            param: names.first().map_or_else(String::new, |n| n.to_string()),
        }
    }
}

/// The whole report of a call on `mapping`'s route for `op`: `earlier` entries first (what
/// the client dialect's bridge already left out, in its own names), then what the route does
/// not translate of the canonical `request`. Under strictness (the client's header, or the
/// mapping's `options.unsupported: reject`) a call that would lose anything is refused.
pub fn settle(
    mapping: &Mapping,
    op: Op,
    request: &Value,
    earlier: Vec<String>,
    headers: &HeaderMap,
) -> Result<Dropped, ProxyError> {
    let mut out = Dropped::default();
    for e in &earlier {
        out.note(e);
    }
    if let Some(route) = mapping.route(op) {
        check(&route.reads, op, request, fields::of(op), &mut out);
    }
    if !out.is_empty() && (mapping.reject_unsupported || strict(headers)) {
        return Err(out.refusal(&mapping.name));
    }
    Ok(out)
}

/// Whether the client asked for strictness (`x-rosetta-strict: true`, `1` or `yes`).
pub fn strict(headers: &HeaderMap) -> bool {
    headers
        .get("x-rosetta-strict")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v.trim(), "1" | "true" | "yes"))
}

/// Adds to `out` what of `request` (an `op` request in canonical form) a route that reads
/// `reads` does not translate, named by `dialect`. Allocates only for what it finds.
pub fn check(
    reads: &Node,
    op: Op,
    request: &Value,
    dialect: &dyn DialectFields,
    out: &mut Dropped,
) {
    let Some(obj) = request.as_object() else {
        return;
    };
    let mut found = |canonical: &str| {
        let label = fields::label(canonical);
        out.note_labelled(&dialect.name(canonical), label);
    };
    for (key, value) in obj {
        if value.is_null() || fields::no_loss(op, key, value) {
            continue;
        }
        let at = [key.as_str()];
        match reads.cover(&at) {
            Cover::None => found(key),
            Cover::Whole => {}
            Cover::Part(_) => match value {
                Value::String(s) if !reads.takes_value(&at, s) => found(&format!("{key}={s}")),
                Value::Object(o) => {
                    if let Some(Value::String(kind)) = o.get("type")
                        && !reads.takes_kind(&at, kind)
                    {
                        found(&format!("{key}={kind}"));
                    }
                }
                Value::Array(items) => {
                    let mut path = [""; MAX_DEPTH];
                    path[0] = key;
                    path[1] = EACH;
                    elements(reads, &mut path, 2, items, &mut found);
                }
                _ => {}
            },
        }
    }
}

/// The typed objects among `items` (at `path[..depth]`, which ends in `[]`), and the typed
/// arrays inside them.
fn elements<'r>(
    reads: &Node,
    path: &mut [&'r str; MAX_DEPTH],
    depth: usize,
    items: &'r [Value],
    found: &mut dyn FnMut(&str),
) {
    for item in items {
        let Value::Object(o) = item else { continue };
        if let Some(Value::String(kind)) = o.get("type")
            && !reads.takes_kind(&path[..depth], kind)
        {
            found(&format!("{}.{kind}", join(&path[..depth])));
        }
        if depth + 2 > MAX_DEPTH {
            continue;
        }
        for (k, v) in o {
            if let Value::Array(inner) = v {
                path[depth] = k;
                path[depth + 1] = EACH;
                elements(reads, path, depth + 2, inner, found);
            }
        }
    }
}

/// `["messages", "[]", "content", "[]"]` as `messages[].content[]`.
fn join(path: &[&str]) -> String {
    let mut s = String::new();
    for (i, p) in path.iter().enumerate() {
        if i > 0 && *p != EACH {
            s.push('.');
        }
        s.push_str(p);
    }
    s
}
