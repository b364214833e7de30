//! Compiling a template: YAML into an [`Expr`], every path, interpolation and regex parsed once;
//! the `$directive` forms are in `directives.rs`.

use std::collections::{BTreeSet, HashMap};

use regex::Regex;
use serde_json::{Map, Value};
use serde_yaml::Value as Yaml;

use super::*;
use crate::mapping::path::Path;

/// Compiles a template, collecting every error, and adding to `vars` the name of every
/// variable it reads (`$name...` paths and `$var`), so callers bind only what is used.
pub fn compile(
    y: &Yaml,
    at: &str,
    defs: &Defs,
    errors: &mut Vec<CompileError>,
    vars: &mut BTreeSet<String>,
) -> Expr {
    Compiler {
        defs,
        errors,
        vars,
        depth: 0,
        inlined: 0,
        compiled: HashMap::new(),
    }
    .expr(y, at)
}

pub(super) struct Compiler<'d, 'e> {
    pub(super) defs: &'d Defs,
    pub(super) errors: &'e mut Vec<CompileError>,
    pub(super) vars: &'e mut BTreeSet<String>,
    pub(super) depth: usize,
    /// `$use` inlines so far in this template.
    pub(super) inlined: usize,
    /// Each definition compiled once per template, then copied: regexes and paths are not
    /// compiled again for every use.
    pub(super) compiled: HashMap<String, (Arc<Expr>, usize)>,
}

/// Nesting limit for `$use`, which guards against recursive definitions.
pub(super) const MAX_USE_DEPTH: usize = 16;

/// Limit on `$use` inlines in one template: a definition that uses another several times, at
/// each of several levels, multiplies (3 uses over 16 levels would be 43 million copies).
pub(super) const MAX_USE_INLINES: usize = 20_000;

impl Compiler<'_, '_> {
    pub(super) fn err(&mut self, at: &str, message: impl Into<String>) -> Expr {
        self.errors.push(CompileError {
            at: at.to_string(),
            message: message.into(),
        });
        Expr::Const(Value::Null)
    }

    pub(super) fn expr(&mut self, y: &Yaml, at: &str) -> Expr {
        match y {
            Yaml::String(s) => self.string(s, at),
            Yaml::Mapping(m) => {
                let directive = m
                    .keys()
                    .filter_map(Yaml::as_str)
                    .find(|k| k.starts_with('$'));
                match directive {
                    Some(d) => self.directive(d, m, at),
                    None => {
                        let mut fields = Vec::with_capacity(m.len());
                        for (k, v) in m {
                            let Some(key) = scalar_key(k) else {
                                self.err(at, "object keys must be scalars");
                                continue;
                            };
                            let child = self.expr(v, &join_at(at, &key));
                            fields.push((key, child));
                        }
                        if fields.iter().all(|(_, e)| matches!(e, Expr::Const(_))) {
                            let obj = fields
                                .into_iter()
                                .map(|(k, e)| match e {
                                    Expr::Const(v) => (k, v),
                                    _ => unreachable!("checked above"),
                                })
                                .collect::<Map<_, _>>();
                            Expr::Const(Value::Object(obj))
                        } else {
                            Expr::Object(fields)
                        }
                    }
                }
            }
            Yaml::Sequence(items) => {
                let items: Vec<Expr> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.expr(v, &format!("{at}[{i}]")))
                    .collect();
                if items.iter().all(|e| matches!(e, Expr::Const(_))) {
                    Expr::Const(Value::Array(
                        items
                            .into_iter()
                            .map(|e| match e {
                                Expr::Const(v) => v,
                                _ => unreachable!("checked above"),
                            })
                            .collect(),
                    ))
                } else {
                    Expr::Array(items)
                }
            }
            Yaml::Tagged(t) => self.err(at, format!("YAML tags are not supported: {}", t.tag)),
            other => Expr::Const(yaml_to_json(other)),
        }
    }

    pub(super) fn string(&mut self, s: &str, at: &str) -> Expr {
        if let Some(lit) = s.strip_prefix("$$") {
            return Expr::Const(Value::String(format!("${lit}")));
        }
        if s.starts_with('$') {
            return match Path::compile(s) {
                Ok(p) => self.path(p),
                Err(e) => self.err(at, e),
            };
        }
        if s.contains("{$") {
            return self.interpolation(s, at);
        }
        Expr::Const(Value::String(s.to_string()))
    }

    pub(super) fn path(&mut self, p: Path) -> Expr {
        if let Some(v) = &p.var {
            self.vars.insert(v.clone());
        }
        Expr::Path(p)
    }

    /// `"text {$.path} more"`: each `{$...}` is a path, up to its matching `}`.
    pub(super) fn interpolation(&mut self, s: &str, at: &str) -> Expr {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("{$") {
            if start > 0 {
                pieces.push(Piece::Lit(rest[..start].to_string()));
            }
            let body = &rest[start + 1..];
            let Some(end) = matching_brace(body) else {
                return self.err(at, format!("unclosed `{{$` in {s:?}"));
            };
            match Path::compile(&body[..end]) {
                Ok(p) => pieces.push(Piece::Expr(self.path(p))),
                Err(e) => return self.err(at, e),
            }
            rest = &body[end + 1..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Lit(rest.to_string()));
        }
        Expr::Interp(pieces)
    }

    pub(super) fn list(&mut self, y: &Yaml, at: &str) -> Vec<Expr> {
        match y {
            Yaml::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.expr(v, &format!("{at}[{i}]")))
                .collect(),
            _ => {
                self.err(at, "expects a list");
                Vec::new()
            }
        }
    }

    pub(super) fn bind_name(&mut self, y: Option<&Yaml>, at: &str) -> Option<String> {
        let name = y?.as_str();
        match name {
            Some(n)
                if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Some(n.to_string())
            }
            _ => {
                self.err(at, "`as` must be a plain name (letters, digits, _)");
                None
            }
        }
    }

    pub(super) fn string_opt(&mut self, y: Option<&Yaml>, at: &str, key: &str) -> Option<String> {
        match y {
            None => None,
            Some(Yaml::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(at, format!("`{key}` must be a string"));
                None
            }
        }
    }

    pub(super) fn regex_opt(&mut self, y: Option<&Yaml>, at: &str) -> Option<Regex> {
        let Some(src) = self.string_opt(y, at, "pattern") else {
            self.err(at, "needs `pattern`: a regular expression");
            return None;
        };
        match Regex::new(&src) {
            Ok(r) => Some(r),
            Err(e) => {
                self.err(at, format!("invalid regex {src:?}: {e}"));
                None
            }
        }
    }
}

pub(super) fn join_at(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// Index of the `}` closing a `{` whose body starts at `s[1..]`, skipping quoted text and brackets.
pub(crate) fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(' | '{') => depth += 1,
            (None, ']' | ')') => depth -= 1,
            (None, '}') if depth == 0 => return Some(i),
            (None, '}') => depth -= 1,
            _ => {}
        }
    }
    None
}

pub(super) fn scalar_key(k: &Yaml) -> Option<String> {
    match k {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Converts a YAML constant to JSON (mapping keys become strings).
pub fn yaml_to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(*b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Sequence(items) => Value::Array(items.iter().map(yaml_to_json).collect()),
        Yaml::Mapping(m) => Value::Object(
            m.iter()
                .filter_map(|(k, v)| Some((scalar_key(k)?, yaml_to_json(v))))
                .collect(),
        ),
        Yaml::Tagged(t) => yaml_to_json(&t.value),
    }
}
