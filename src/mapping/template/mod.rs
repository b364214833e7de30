//! The transform language: JSON templates compiled once into a closed enum, evaluated purely.
//!
//! A template is YAML. Plain scalars are constants; a string starting with `$` is a JSONPath
//! selection (see [`crate::mapping::path`]); a string containing `{$...}` is interpolated; a mapping is an
//! object template unless it has a `$directive` key, in which case the other keys are that
//! directive's options. Evaluation yields `Option<Value>`: `None` means *absent*, and absent
//! values are dropped from objects and arrays. A selected JSON `null` counts as absent, as in
//! OpenAI requests where `null` means "not set". `docs/mapping-reference.md` specifies every
//! directive; each has a one-line test in `tests.rs`.
//!
//! [`compile`] (with its directives in `directives.rs`) turns YAML into an [`Expr`]; [`eval`]
//! runs one on a [`Scope`].

mod compile;
mod directives;
mod eval;
mod scope;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;
use serde_yaml::Value as Yaml;

use crate::mapping::path::Path;

/// Used by the path tests, which read interpolations the way templates do.
#[cfg(test)]
pub(crate) use compile::matching_brace;
pub use compile::{compile, yaml_to_json};
pub use eval::eval;
pub use scope::{Memo, Scope};

/// A compile error: where in the template (dotted path) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    pub at: String,
    pub message: String,
}

/// A compiled template.
#[derive(Debug, Clone)]
pub enum Expr {
    Const(Value),
    Path(Path),
    Object(Vec<(String, Expr)>),
    Array(Vec<Expr>),
    Interp(Vec<Piece>),
    Coalesce(Vec<Expr>),
    Map {
        over: Box<Expr>,
        bind: Option<String>,
        to: Box<Expr>,
        flat: bool,
    },
    Filter {
        over: Box<Expr>,
        bind: Option<String>,
        cond: Box<Expr>,
    },
    /// `$use` with `of`: the definition evaluated with `of` as the focus (absent when `of` is).
    Use {
        of: Box<Expr>,
        body: Arc<Expr>,
    },
    /// `$use` without `of`: the definition evaluated on the current focus. Every use of one
    /// definition in a template shares one body, so that at the input's root (where most
    /// definitions are used: a value derived from the request and read by several fields) it
    /// is evaluated once per evaluation (see [`Memo`]).
    Def(Arc<Expr>),
    First(Box<Expr>),
    Last(Box<Expr>),
    Len(Box<Expr>),
    Join {
        of: Box<Expr>,
        sep: String,
    },
    Lookup {
        key: Box<Expr>,
        table: HashMap<String, Expr>,
        default: Option<Box<Expr>>,
    },
    If {
        cond: Box<Expr>,
        then: Option<Box<Expr>>,
        otherwise: Option<Box<Expr>>,
    },
    Eq(Box<Expr>, Box<Expr>),
    Ne(Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<Value>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Exists(Box<Expr>),
    Type(Box<Expr>),
    Stringify(Box<Expr>),
    Parse {
        of: Box<Expr>,
        fallback: Option<Box<Expr>>,
    },
    Concat(Vec<Expr>),
    Merge(Vec<Expr>),
    Flatten(Vec<Expr>),
    Sum(Vec<Expr>),
    Min(Vec<Expr>),
    Max(Vec<Expr>),
    Int(Box<Expr>),
    Str(Box<Expr>),
    Replace {
        of: Box<Expr>,
        pattern: Regex,
        with: String,
    },
    Capture {
        of: Box<Expr>,
        pattern: Regex,
        group: usize,
    },
    Matches {
        of: Box<Expr>,
        pattern: Regex,
    },
    MergeAdjacent {
        of: Box<Expr>,
        by: Box<Expr>,
        concat: String,
    },
    Omit {
        of: Box<Expr>,
        keys: Vec<String>,
        deep: bool,
    },
    Var(String),
}

/// One piece of an interpolated string.
#[derive(Debug, Clone)]
pub enum Piece {
    Lit(String),
    Expr(Expr),
}

/// Named templates (`defs:` in a mapping) that `$use` inlines at compile time.
pub type Defs = HashMap<String, Yaml>;

/// Falsy: absent, null, false, 0, "", [] and {}. Everything else is truthy.
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(t)) => !t.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(Value::Bool(true)) => true,
    }
}

/// A value as text: strings verbatim, everything else as compact JSON.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        other => other.to_string(),
    }
}
