//! JSONPath selections, compiled once at load (RFC 9535 via jsonpath-rust).
//!
//! A path string in a mapping is `$` (the current focus) or `$name` (a bound variable), followed
//! by an RFC 9535 segment list: `$.messages[0].content`, `$msg.tool_calls`,
//! `$.messages[?@.role=='system'].content`. Singular paths (names and indexes only) are walked
//! directly and yield one value or nothing; every other path yields the array of matched nodes.
//!
//! Node lists are computed here for the constructs mappings use (child segments with name,
//! wildcard, index, slice and filter selectors; filters of comparisons and existence tests),
//! with exactly the results and order of jsonpath-rust but without the normalized path string
//! it builds for every node visited. Other constructs (descendants `..`, functions) are left to
//! jsonpath-rust; the choice is made once, at compile time.

mod compile;
mod eval;

#[cfg(test)]
mod tests;

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

use eval::*;

/// One step of a singular path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
}

/// A compiled selection.
#[derive(Debug, Clone)]
pub struct Path {
    /// Source text, for messages.
    pub text: String,
    /// `None` for the focus, `Some(name)` for a variable.
    pub var: Option<String>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Names and indexes only: walked directly, one value or nothing.
    Singular(Vec<Step>),
    /// Child segments with name, wildcard, index, slice and filter selectors, and filters of
    /// comparisons and existence tests: evaluated here, without building the normalized path
    /// string jsonpath-rust builds for every node it visits.
    Nodes(Nodes),
    /// Anything else (descendants, functions): jsonpath-rust.
    Query(Box<JpQuery>),
}

/// The result of evaluating a path: at most one value for singular paths, a node list otherwise.
pub enum Selected<'a> {
    One(Option<&'a Value>),
    Many(Vec<&'a Value>),
}

impl Path {
    /// Compiles `$...` or `$name...`. Returns a message on error.
    pub fn compile(text: &str) -> Result<Path, String> {
        let rest = text
            .strip_prefix('$')
            .ok_or_else(|| format!("a path must start with `$`: {text:?}"))?;
        let name_len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        let (name, tail) = rest.split_at(name_len);
        let var = (!name.is_empty()).then(|| name.to_string());
        let query_text = format!("${tail}");
        let query =
            parse_json_path(&query_text).map_err(|e| format!("invalid JSONPath {text:?}: {e}"))?;
        let kind = if let Some(steps) = singular_steps(&query) {
            Kind::Singular(steps)
        } else if let Some(nodes) = Nodes::compile(&query.segments, false) {
            Kind::Nodes(nodes)
        } else {
            Kind::Query(Box::new(query))
        };
        Ok(Path {
            text: text.to_string(),
            var,
            kind,
        })
    }

    /// Selects from `value` (the focus or the variable's value).
    pub fn select<'a>(&self, value: &'a Value) -> Selected<'a> {
        match &self.kind {
            Kind::Singular(steps) => Selected::One(walk(steps, value)),
            Kind::Nodes(nodes) => Selected::Many(nodes.select(value, value)),
            Kind::Query(q) => Selected::Many(
                js_path_process(q, value)
                    .map(|refs| refs.into_iter().map(|r| r.val).collect())
                    .unwrap_or_default(),
            ),
        }
    }

    /// Which evaluator the path compiled to, for tests.
    #[cfg(test)]
    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Singular(_) => "singular",
            Kind::Nodes(_) => "nodes",
            Kind::Query(_) => "query",
        }
    }
}

/// Returns the steps when every segment selects one name or one index.
fn singular_steps(query: &JpQuery) -> Option<Vec<Step>> {
    query
        .segments
        .iter()
        .map(|seg| match seg {
            // The parser has already removed the quotes and escapes of bracketed names.
            Segment::Selector(Selector::Name(n)) => Some(Step::Key(n.clone())),
            Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
            _ => None,
        })
        .collect()
}

/// Follows names and indexes (a negative index counts from the end).
fn walk<'a>(steps: &[Step], value: &'a Value) -> Option<&'a Value> {
    let mut cur = value;
    for step in steps {
        cur = match step {
            Step::Key(k) => key(cur, k),
            Step::Index(i) => index(cur, *i),
        }?;
    }
    Some(cur)
}

fn key<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map.get(k),
        _ => None,
    }
}

fn index(v: &Value, i: i64) -> Option<&Value> {
    let Value::Array(items) = v else { return None };
    let idx = if i < 0 { items.len() as i64 + i } else { i };
    usize::try_from(idx).ok().and_then(|i| items.get(i))
}

/// One step of a path as the reads analysis sees it (`crate::mapping::reads`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeStep {
    /// A named field.
    Key(String),
    /// Some element(s) of an array (an index, a slice, a wildcard or a filter).
    Each,
    /// Anything below (a descendant segment, several selectors at once).
    Deep,
}

impl Path {
    /// The steps of this path, after its focus or variable: names, array elements, or
    /// "anything below" (where the analysis stops).
    pub fn shape(&self) -> Vec<ShapeStep> {
        let tail = &self.text[1 + self.var.as_ref().map_or(0, String::len)..];
        let Ok(query) = parse_json_path(&format!("${tail}")) else {
            return vec![ShapeStep::Deep];
        };
        let mut out = Vec::with_capacity(query.segments.len());
        for seg in &query.segments {
            match seg {
                Segment::Selector(Selector::Name(n)) => out.push(ShapeStep::Key(n.clone())),
                Segment::Selector(_) => out.push(ShapeStep::Each),
                _ => {
                    out.push(ShapeStep::Deep);
                    break;
                }
            }
        }
        out
    }

    /// Whether the path selects at most one value (names and indexes only), rather than a
    /// list of nodes.
    pub fn is_singular(&self) -> bool {
        matches!(self.kind, Kind::Singular(_))
    }
}
