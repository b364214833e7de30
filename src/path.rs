//! JSONPath selections, compiled once at load (RFC 9535 via jsonpath-rust).
//!
//! A path string in a mapping is `$` (the current focus) or `$name` (a bound variable), followed
//! by an RFC 9535 segment list: `$.messages[0].content`, `$msg.tool_calls`,
//! `$.messages[?@.role=='system'].content`. Singular paths (names and indexes only) are walked
//! directly and yield one value or nothing; every other path yields the array of matched nodes.

use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use jsonpath_rust::parser::parse_json_path;
use jsonpath_rust::query::js_path_process;
use serde_json::Value;

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
    Singular(Vec<Step>),
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
        let kind = match singular_steps(&query) {
            Some(steps) => Kind::Singular(steps),
            None => Kind::Query(Box::new(query)),
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
            Kind::Singular(steps) => {
                let mut cur = value;
                for step in steps {
                    let next = match (step, cur) {
                        (Step::Key(k), Value::Object(map)) => map.get(k),
                        (Step::Index(i), Value::Array(items)) => {
                            let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                            usize::try_from(idx).ok().and_then(|i| items.get(i))
                        }
                        _ => None,
                    };
                    match next {
                        Some(v) => cur = v,
                        None => return Selected::One(None),
                    }
                }
                Selected::One(Some(cur))
            }
            Kind::Query(q) => Selected::Many(
                js_path_process(q, value)
                    .map(|refs| refs.into_iter().map(|r| r.val).collect())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// Returns the steps when every segment selects one name or one index.
fn singular_steps(query: &JpQuery) -> Option<Vec<Step>> {
    query
        .segments
        .iter()
        .map(|seg| match seg {
            Segment::Selector(Selector::Name(n)) => Some(Step::Key(unquote(n))),
            Segment::Selector(Selector::Index(i)) => Some(Step::Index(*i)),
            _ => None,
        })
        .collect()
}

/// jsonpath-rust keeps the quotes of bracketed names (`['a b']`); strip them.
fn unquote(name: &str) -> String {
    let b = name.as_bytes();
    if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        name[1..name.len() - 1].to_string()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(path: &str, v: &Value) -> Value {
        match Path::compile(path).unwrap().select(v) {
            Selected::One(o) => o.cloned().unwrap_or(json!("<absent>")),
            Selected::Many(m) => Value::Array(m.into_iter().cloned().collect()),
        }
    }

    #[test]
    fn singular_and_query_paths() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "m": [{"r": "s", "c": "x"}, {"r": "u", "c": "y"}], "k y": 5});
        assert_eq!(sel("$.a.b[1]", &doc), json!(2));
        assert_eq!(sel("$.a.b[-1]", &doc), json!(3));
        assert_eq!(sel("$.a.missing", &doc), json!("<absent>"));
        assert_eq!(sel("$['k y']", &doc), json!(5));
        assert_eq!(sel("$", &doc), doc);
        assert_eq!(sel("$.m[?@.r=='u'].c", &doc), json!(["y"]));
        assert_eq!(sel("$.m[?@.r=='s' || @.r=='u'].c", &doc), json!(["x", "y"]));
        assert_eq!(sel("$.m[?@.r=='z'].c", &doc), json!([]));
        assert_eq!(sel("$.m[*].r", &doc), json!(["s", "u"]));
    }

    #[test]
    fn variables_and_errors() {
        let p = Path::compile("$msg.content").unwrap();
        assert_eq!(p.var.as_deref(), Some("msg"));
        assert!(Path::compile("$.a[").is_err());
        assert!(Path::compile("a.b").is_err());
    }
}
