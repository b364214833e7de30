//! The transform language: JSON templates compiled once into a closed enum, evaluated purely.
//!
//! A template is YAML. Plain scalars are constants; a string starting with `$` is a JSONPath
//! selection (see [`crate::mapping::path`]); a string containing `{$...}` is interpolated; a mapping is an
//! object template unless it has a `$directive` key, in which case the other keys are that
//! directive's options. Evaluation yields `Option<Value>`: `None` means *absent*, and absent
//! values are dropped from objects and arrays. A selected JSON `null` counts as absent, as in
//! OpenAI requests where `null` means "not set". `docs/mapping-reference.md` specifies every
//! directive; each has a one-line test at the bottom of this file.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};
use serde_yaml::Value as Yaml;

use crate::mapping::path::{Path, Selected};

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
        body: Box<Expr>,
    },
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

struct Compiler<'d, 'e> {
    defs: &'d Defs,
    errors: &'e mut Vec<CompileError>,
    vars: &'e mut BTreeSet<String>,
    depth: usize,
    /// `$use` inlines so far in this template.
    inlined: usize,
    /// Each definition compiled once per template, then copied: regexes and paths are not
    /// compiled again for every use.
    compiled: HashMap<String, (Expr, usize)>,
}

/// Directive names, each with the option keys it accepts beside itself.
const DIRECTIVES: &[(&str, &[&str])] = &[
    ("$const", &[]),
    ("$coalesce", &[]),
    ("$map", &["to", "as"]),
    ("$flatmap", &["to", "as"]),
    ("$filter", &["where", "as"]),
    ("$first", &[]),
    ("$last", &[]),
    ("$len", &[]),
    ("$join", &["sep"]),
    ("$lookup", &["table", "default"]),
    ("$if", &["then", "else"]),
    ("$eq", &[]),
    ("$ne", &[]),
    ("$in", &["values"]),
    ("$not", &[]),
    ("$and", &[]),
    ("$or", &[]),
    ("$exists", &[]),
    ("$type", &[]),
    ("$stringify", &[]),
    ("$parse", &["fallback"]),
    ("$concat", &[]),
    ("$merge", &[]),
    ("$flatten", &[]),
    ("$sum", &[]),
    ("$min", &[]),
    ("$max", &[]),
    ("$int", &[]),
    ("$string", &[]),
    ("$replace", &["pattern", "with"]),
    ("$capture", &["pattern", "group"]),
    ("$matches", &["pattern"]),
    ("$merge_adjacent", &["by", "concat"]),
    ("$omit", &["keys", "deep"]),
    ("$use", &["of"]),
    ("$var", &[]),
];

/// Nesting limit for `$use`, which guards against recursive definitions.
const MAX_USE_DEPTH: usize = 16;

/// Limit on `$use` inlines in one template: a definition that uses another several times, at
/// each of several levels, multiplies (3 uses over 16 levels would be 43 million copies).
const MAX_USE_INLINES: usize = 20_000;

impl Compiler<'_, '_> {
    fn err(&mut self, at: &str, message: impl Into<String>) -> Expr {
        self.errors.push(CompileError {
            at: at.to_string(),
            message: message.into(),
        });
        Expr::Const(Value::Null)
    }

    fn expr(&mut self, y: &Yaml, at: &str) -> Expr {
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

    fn string(&mut self, s: &str, at: &str) -> Expr {
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

    fn path(&mut self, p: Path) -> Expr {
        match &p.var {
            Some(v) => {
                self.vars.insert(v.clone());
            }
            // A field the focus is read at, as `$.NAME` (which request fields a mapping
            // reads: `Mapping::reads_request_field`).
            None => {
                if let Some(field) = p.text.strip_prefix("$.") {
                    let end = field
                        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .unwrap_or(field.len());
                    if end > 0 {
                        self.vars.insert(format!("$.{}", &field[..end]));
                    }
                }
            }
        }
        Expr::Path(p)
    }

    /// `"text {$.path} more"`: each `{$...}` is a path, up to its matching `}`.
    fn interpolation(&mut self, s: &str, at: &str) -> Expr {
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

    fn directive(&mut self, name: &str, m: &serde_yaml::Mapping, at: &str) -> Expr {
        let at = &join_at(at, name);
        let Some((_, allowed)) = DIRECTIVES.iter().find(|(d, _)| *d == name) else {
            return self.err(at, format!("unknown directive {name:?}"));
        };
        for k in m.keys() {
            let key = scalar_key(k).unwrap_or_default();
            if key != name && !allowed.contains(&key.as_str()) {
                let msg = if key.starts_with('$') {
                    format!("only one directive per mapping: {name:?} and {key:?}")
                } else {
                    format!("unknown option {key:?} for {name}")
                };
                self.err(at, msg);
            }
        }
        let arg = &m[name];
        let opt = |k: &str| m.get(k);
        let boxed = |c: &mut Self, y: &Yaml, a: &str| Box::new(c.expr(y, a));
        match name {
            "$const" => Expr::Const(yaml_to_json(arg)),
            "$coalesce" => Expr::Coalesce(self.list(arg, at)),
            "$map" | "$flatmap" => {
                let Some(to) = opt("to") else {
                    return self.err(at, format!("{name} needs `to`"));
                };
                Expr::Map {
                    over: boxed(self, arg, at),
                    bind: self.bind_name(opt("as"), at),
                    to: boxed(self, to, &join_at(at, "to")),
                    flat: name == "$flatmap",
                }
            }
            "$filter" => {
                let Some(cond) = opt("where") else {
                    return self.err(at, "$filter needs `where`");
                };
                Expr::Filter {
                    over: boxed(self, arg, at),
                    bind: self.bind_name(opt("as"), at),
                    cond: boxed(self, cond, &join_at(at, "where")),
                }
            }
            "$first" => Expr::First(boxed(self, arg, at)),
            "$last" => Expr::Last(boxed(self, arg, at)),
            "$len" => Expr::Len(boxed(self, arg, at)),
            "$join" => Expr::Join {
                of: boxed(self, arg, at),
                sep: self.string_opt(opt("sep"), at, "sep").unwrap_or_default(),
            },
            "$lookup" => {
                let Some(Yaml::Mapping(t)) = opt("table") else {
                    return self.err(at, "$lookup needs a `table` mapping");
                };
                let mut table = HashMap::new();
                for (k, v) in t {
                    let key = scalar_key(k).unwrap_or_default();
                    let e = self.expr(v, &join_at(&join_at(at, "table"), &key));
                    table.insert(key, e);
                }
                Expr::Lookup {
                    key: boxed(self, arg, at),
                    table,
                    default: opt("default").map(|d| boxed(self, d, &join_at(at, "default"))),
                }
            }
            "$if" => Expr::If {
                cond: boxed(self, arg, at),
                then: opt("then").map(|t| boxed(self, t, &join_at(at, "then"))),
                otherwise: opt("else").map(|e| boxed(self, e, &join_at(at, "else"))),
            },
            "$eq" | "$ne" => {
                let mut l = self.list(arg, at);
                if l.len() != 2 {
                    return self.err(at, format!("{name} takes a list of two operands"));
                }
                let b = Box::new(l.pop().expect("two"));
                let a = Box::new(l.pop().expect("two"));
                if name == "$eq" {
                    Expr::Eq(a, b)
                } else {
                    Expr::Ne(a, b)
                }
            }
            "$in" => {
                let values = match opt("values") {
                    Some(Yaml::Sequence(v)) => v.iter().map(yaml_to_json).collect(),
                    _ => return self.err(at, "$in needs `values`: a list of constants"),
                };
                Expr::In(boxed(self, arg, at), values)
            }
            "$not" => Expr::Not(boxed(self, arg, at)),
            "$and" => Expr::And(self.list(arg, at)),
            "$or" => Expr::Or(self.list(arg, at)),
            "$exists" => Expr::Exists(boxed(self, arg, at)),
            "$type" => Expr::Type(boxed(self, arg, at)),
            "$stringify" => Expr::Stringify(boxed(self, arg, at)),
            "$parse" => Expr::Parse {
                of: boxed(self, arg, at),
                fallback: opt("fallback").map(|f| boxed(self, f, &join_at(at, "fallback"))),
            },
            "$concat" => Expr::Concat(self.list(arg, at)),
            "$merge" => Expr::Merge(self.list(arg, at)),
            "$flatten" => Expr::Flatten(self.list(arg, at)),
            "$sum" => Expr::Sum(self.list(arg, at)),
            "$min" => Expr::Min(self.list(arg, at)),
            "$max" => Expr::Max(self.list(arg, at)),
            "$int" => Expr::Int(boxed(self, arg, at)),
            "$string" => Expr::Str(boxed(self, arg, at)),
            "$replace" => {
                let Some(pattern) = self.regex_opt(opt("pattern"), at) else {
                    return Expr::Const(Value::Null);
                };
                Expr::Replace {
                    of: boxed(self, arg, at),
                    pattern,
                    with: self.string_opt(opt("with"), at, "with").unwrap_or_default(),
                }
            }
            "$capture" => {
                let Some(pattern) = self.regex_opt(opt("pattern"), at) else {
                    return Expr::Const(Value::Null);
                };
                let group = match opt("group") {
                    None => 1,
                    Some(g) => match g.as_u64() {
                        Some(n) if (n as usize) < pattern.captures_len() => n as usize,
                        _ => return self.err(at, "`group` must name a group of the pattern"),
                    },
                };
                if group >= pattern.captures_len() {
                    return self.err(at, "the pattern has no capture group 1");
                }
                Expr::Capture {
                    of: boxed(self, arg, at),
                    pattern,
                    group,
                }
            }
            "$matches" => {
                let Some(pattern) = self.regex_opt(opt("pattern"), at) else {
                    return Expr::Const(Value::Null);
                };
                Expr::Matches {
                    of: boxed(self, arg, at),
                    pattern,
                }
            }
            "$merge_adjacent" => {
                let Some(by) = opt("by") else {
                    return self.err(at, "$merge_adjacent needs `by`");
                };
                let Some(concat) = self.string_opt(opt("concat"), at, "concat") else {
                    return self.err(
                        at,
                        "$merge_adjacent needs `concat`: the array field to join",
                    );
                };
                Expr::MergeAdjacent {
                    of: boxed(self, arg, at),
                    by: boxed(self, by, &join_at(at, "by")),
                    concat,
                }
            }
            "$omit" => {
                let keys = match opt("keys") {
                    Some(Yaml::Sequence(v)) => v.iter().filter_map(scalar_key).collect(),
                    _ => return self.err(at, "$omit needs `keys`: a list of names"),
                };
                let deep = opt("deep").and_then(Yaml::as_bool).unwrap_or(false);
                Expr::Omit {
                    of: boxed(self, arg, at),
                    keys,
                    deep,
                }
            }
            "$use" => {
                let Some(def_name) = arg.as_str() else {
                    return self.err(at, "$use takes the name of a definition");
                };
                let Some(def) = self.defs.get(def_name) else {
                    return self.err(at, format!("no definition named {def_name:?} in `defs`"));
                };
                if self.depth >= MAX_USE_DEPTH {
                    return self.err(at, "definitions nest too deep (recursive $use?)");
                }
                // A copy counts with the copies inside it, so the limit bounds the size of
                // what is built, checked before anything is copied.
                let inner = self.compiled.get(def_name).map_or(0, |(_, n)| *n);
                if self.inlined + 1 + inner > MAX_USE_INLINES {
                    return self.err(
                        at,
                        format!(
                            "definitions expand to more than {MAX_USE_INLINES} $use copies (a definition used several times at several levels?)"
                        ),
                    );
                }
                self.inlined += 1 + inner;
                let body = match self.compiled.get(def_name) {
                    Some((body, _)) => body.clone(),
                    None => {
                        let before = self.inlined;
                        self.depth += 1;
                        let body = self.expr(def, &format!("defs.{def_name}"));
                        self.depth -= 1;
                        let inner = self.inlined - before;
                        self.compiled
                            .insert(def_name.to_string(), (body.clone(), inner));
                        body
                    }
                };
                match opt("of") {
                    None => body,
                    Some(of) => Expr::Use {
                        of: Box::new(self.expr(of, &join_at(at, "of"))),
                        body: Box::new(body),
                    },
                }
            }
            "$var" => match arg.as_str() {
                Some(v) => {
                    self.vars.insert(v.to_string());
                    Expr::Var(v.to_string())
                }
                None => self.err(at, "$var takes a variable name"),
            },
            _ => unreachable!("directive table and match agree"),
        }
    }

    fn list(&mut self, y: &Yaml, at: &str) -> Vec<Expr> {
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

    fn bind_name(&mut self, y: Option<&Yaml>, at: &str) -> Option<String> {
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

    fn string_opt(&mut self, y: Option<&Yaml>, at: &str, key: &str) -> Option<String> {
        match y {
            None => None,
            Some(Yaml::String(s)) => Some(s.clone()),
            Some(_) => {
                self.err(at, format!("`{key}` must be a string"));
                None
            }
        }
    }

    fn regex_opt(&mut self, y: Option<&Yaml>, at: &str) -> Option<Regex> {
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

fn join_at(at: &str, key: &str) -> String {
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

fn scalar_key(k: &Yaml) -> Option<String> {
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

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Variables visible to a template: globals by name plus `$map`/`$filter` bindings.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    focus: &'a Value,
    globals: &'a [(&'a str, &'a Value)],
    local: Option<&'a Local<'a>>,
}

struct Local<'a> {
    name: &'a str,
    value: &'a Value,
    parent: Option<&'a Local<'a>>,
}

impl<'a> Scope<'a> {
    /// A scope whose focus is `focus`, with named globals (`root`, `request`, `state`...).
    pub fn new(focus: &'a Value, globals: &'a [(&'a str, &'a Value)]) -> Self {
        Scope {
            focus,
            globals,
            local: None,
        }
    }

    /// Runs `f` with `item` as the focus and, when `bind` names it, as a variable too.
    fn with_item<R>(&self, item: &Value, bind: Option<&str>, f: impl FnOnce(Scope<'_>) -> R) -> R {
        let mut inner: Scope<'_> = *self;
        inner.focus = item;
        let local;
        if let Some(name) = bind {
            local = Local {
                name,
                value: item,
                parent: self.local,
            };
            inner.local = Some(&local);
        }
        f(inner)
    }

    fn var(&self, name: &str) -> Option<&'a Value> {
        let mut l = self.local;
        while let Some(frame) = l {
            if frame.name == name {
                return Some(frame.value);
            }
            l = frame.parent;
        }
        self.globals
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}

/// Evaluates `e` in `scope`. `None` is absent.
pub fn eval(e: &Expr, s: Scope<'_>) -> Option<Value> {
    match e {
        Expr::Const(v) => Some(v.clone()),
        Expr::Path(p) => select(p, s),
        Expr::Var(name) => s.var(name).filter(|v| !v.is_null()).cloned(),
        Expr::Object(fields) => {
            let mut out = Map::with_capacity(fields.len());
            for (k, f) in fields {
                if let Some(v) = eval(f, s) {
                    out.insert(k.clone(), v);
                }
            }
            // An object whose every field is absent is itself absent (so `metadata: {user_id:
            // $.user}` disappears without a user); a literal `{}` is a constant, kept.
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Expr::Array(items) => Some(Value::Array(
            items.iter().filter_map(|i| eval(i, s)).collect(),
        )),
        Expr::Interp(pieces) => {
            let mut out = String::new();
            for p in pieces {
                match p {
                    Piece::Lit(l) => out.push_str(l),
                    Piece::Expr(e) => push_text(&mut out, &*eval_ref(e, s)?),
                }
            }
            Some(Value::String(out))
        }
        Expr::Coalesce(items) => items.iter().find_map(|i| eval(i, s)),
        Expr::Map {
            over,
            bind,
            to,
            flat,
        } => {
            let items = items(over, s)?;
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                match (
                    s.with_item(item, bind.as_deref(), |inner| eval(to, inner)),
                    flat,
                ) {
                    (Some(Value::Array(vs)), true) => out.extend(vs),
                    (Some(v), _) => out.push(v),
                    (None, _) => {}
                }
            }
            Some(Value::Array(out))
        }
        Expr::Use { of, body } => {
            let v = eval_ref(of, s)?;
            s.with_item(&v, None, |inner| eval(body, inner))
                .filter(|r| !r.is_null())
        }
        Expr::Filter { over, bind, cond } => {
            let keep = |item: &Value| {
                s.with_item(item, bind.as_deref(), |inner| {
                    truthy(eval_ref(cond, inner).as_deref())
                })
            };
            let kept = match items(over, s)? {
                Items::Owned(values) => values.into_iter().filter(|i| keep(i)).collect(),
                borrowed => borrowed.iter().filter(|i| keep(i)).cloned().collect(),
            };
            Some(Value::Array(kept))
        }
        Expr::First(a) => match items(a, s)? {
            Items::Owned(values) => values.into_iter().find(|v| !v.is_null()),
            borrowed => borrowed.iter().find(|v| !v.is_null()).cloned(),
        },
        Expr::Last(a) => match items(a, s)? {
            Items::Owned(values) => values.into_iter().rev().find(|v| !v.is_null()),
            borrowed => borrowed.iter().rev().find(|v| !v.is_null()).cloned(),
        },
        Expr::Len(a) => Some(match eval_ref(a, s).as_deref() {
            None => 0.into(),
            Some(Value::Array(v)) => v.len().into(),
            Some(Value::String(t)) => t.chars().count().into(),
            Some(Value::Object(o)) => o.len().into(),
            Some(_) => 1.into(),
        }),
        Expr::Join { of, sep } => {
            let mut out = String::new();
            let mut any = false;
            for v in items(of, s)?.iter().filter(|v| !v.is_null()) {
                if any {
                    out.push_str(sep);
                }
                any = true;
                push_text(&mut out, v);
            }
            any.then_some(Value::String(out))
        }
        Expr::Lookup {
            key,
            table,
            default,
        } => {
            let hit = eval_ref(key, s).and_then(|k| match &*k {
                Value::String(t) => table.get(t.as_str()),
                other => table.get(&other.to_string()),
            });
            match (hit, default) {
                (Some(e), _) => eval(e, s),
                (None, Some(d)) => eval(d, s),
                (None, None) => None,
            }
        }
        Expr::If {
            cond,
            then,
            otherwise,
        } => {
            let branch = if truthy(eval_ref(cond, s).as_deref()) {
                then
            } else {
                otherwise
            };
            branch.as_ref().and_then(|b| eval(b, s))
        }
        Expr::Eq(a, b) => Some(Value::Bool(same(
            eval_ref(a, s).as_deref(),
            eval_ref(b, s).as_deref(),
        ))),
        Expr::Ne(a, b) => Some(Value::Bool(!same(
            eval_ref(a, s).as_deref(),
            eval_ref(b, s).as_deref(),
        ))),
        Expr::In(a, values) => {
            Some(Value::Bool(eval_ref(a, s).is_some_and(|v| {
                values.iter().any(|x| same(Some(&*v), Some(x)))
            })))
        }
        Expr::Not(a) => Some(Value::Bool(!truthy(eval_ref(a, s).as_deref()))),
        Expr::And(items) => Some(Value::Bool(
            items.iter().all(|i| truthy(eval_ref(i, s).as_deref())),
        )),
        Expr::Or(items) => Some(Value::Bool(
            items.iter().any(|i| truthy(eval_ref(i, s).as_deref())),
        )),
        Expr::Exists(a) => Some(Value::Bool(eval_ref(a, s).is_some())),
        Expr::Type(a) => Some(type_name(a, s).clone()),
        Expr::Stringify(a) => eval_ref(a, s).map(|v| match v {
            Cow::Owned(v @ Value::String(_)) => v,
            Cow::Borrowed(v @ Value::String(_)) => v.clone(),
            other => Value::String(other.to_string()),
        }),
        Expr::Parse { of, fallback } => {
            let v = eval_ref(of, s)?;
            match v.as_str() {
                Some(t) if t.trim().is_empty() => Some(Value::Object(Map::new())),
                Some(t) => match serde_json::from_str::<Value>(t) {
                    Ok(parsed) => Some(parsed),
                    Err(_) => match fallback {
                        Some(f) => eval(f, s),
                        None => Some(v.into_owned()),
                    },
                },
                None => Some(v.into_owned()),
            }
        }
        Expr::Concat(items) => {
            let mut out = String::new();
            for i in items {
                if let Some(v) = eval_ref(i, s) {
                    push_text(&mut out, &v);
                }
            }
            Some(Value::String(out))
        }
        Expr::Merge(items) => {
            let mut out: Option<Map<String, Value>> = None;
            for i in items {
                if let Some(Value::Object(o)) = eval(i, s) {
                    out.get_or_insert_with(Map::new).extend(o);
                }
            }
            out.map(Value::Object)
        }
        Expr::Flatten(items) => {
            let mut out = Vec::new();
            for i in items {
                match eval(i, s) {
                    Some(Value::Array(vs)) => out.extend(vs),
                    Some(v) => out.push(v),
                    None => {}
                }
            }
            Some(Value::Array(out))
        }
        Expr::Sum(items) => numeric(items, s, |a, b| a + b),
        Expr::Min(items) => numeric(items, s, f64::min),
        Expr::Max(items) => numeric(items, s, f64::max),
        Expr::Int(a) => match &*eval_ref(a, s)? {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::Number(n.clone())),
            Value::Number(n) => n.as_f64().map(|f| Value::from(f.round() as i64)),
            Value::String(t) => t
                .trim()
                .parse::<f64>()
                .ok()
                .map(|f| Value::from(f.round() as i64)),
            Value::Bool(b) => Some(Value::from(*b as i64)),
            _ => None,
        },
        Expr::Str(a) => eval_ref(a, s).map(|v| match v {
            Cow::Owned(v @ Value::String(_)) => v,
            other => Value::String(to_text(&other)),
        }),
        Expr::Replace { of, pattern, with } => {
            let v = eval_ref(of, s)?;
            let text = text_ref(&v);
            Some(Value::String(
                pattern.replace_all(&text, with.as_str()).into_owned(),
            ))
        }
        Expr::Capture { of, pattern, group } => {
            let v = eval_ref(of, s)?;
            let text = text_ref(&v);
            let caps = pattern.captures(&text)?;
            caps.get(*group)
                .map(|m| Value::String(m.as_str().to_string()))
        }
        Expr::Matches { of, pattern } => Some(Value::Bool(
            eval_ref(of, s).is_some_and(|v| pattern.is_match(&text_ref(&v))),
        )),
        Expr::MergeAdjacent { of, by, concat } => {
            let mut out: Vec<Value> = Vec::new();
            let mut last_key: Option<Value> = None;
            for item in as_array(eval(of, s)?) {
                let key = s.with_item(&item, None, |inner| eval(by, inner));
                let same = key.is_some() && key == last_key;
                if same
                    && let (Some(Value::Object(prev)), Value::Object(cur)) = (out.last_mut(), &item)
                    && let (Some(Value::Array(a)), Some(Value::Array(b))) =
                        (prev.get_mut(concat), cur.get(concat))
                {
                    a.extend(b.iter().cloned());
                    continue;
                }
                last_key = key;
                out.push(item);
            }
            Some(Value::Array(out))
        }
        Expr::Omit { of, keys, deep } => {
            let mut v = eval(of, s)?;
            omit(&mut v, keys, *deep);
            Some(v)
        }
    }
}

/// Evaluates `e` without copying what it only reads: constants, variables and singular paths
/// are borrowed from the template or the input. Same result as [`eval`].
fn eval_ref<'a>(e: &'a Expr, s: Scope<'a>) -> Option<Cow<'a, Value>> {
    match e {
        Expr::Const(v) => Some(Cow::Borrowed(v)),
        Expr::Path(p) => match p.select(base(p, s)?) {
            Selected::One(v) => v.filter(|v| !v.is_null()).map(Cow::Borrowed),
            Selected::Many(vs) => Some(Cow::Owned(Value::Array(vs.into_iter().cloned().collect()))),
        },
        Expr::Var(name) => s.var(name).filter(|v| !v.is_null()).map(Cow::Borrowed),
        Expr::Type(a) => Some(Cow::Borrowed(type_name(a, s))),
        _ => eval(e, s).map(Cow::Owned),
    }
}

/// `$type`: the name of the JSON type of `e`, or `absent`.
fn type_name(e: &Expr, s: Scope<'_>) -> &'static Value {
    static NAMES: LazyLock<[Value; 7]> = LazyLock::new(|| {
        [
            "absent", "null", "boolean", "number", "string", "array", "object",
        ]
        .map(Value::from)
    });
    &NAMES[match eval_ref(e, s).as_deref() {
        None => 0,
        Some(Value::Null) => 1,
        Some(Value::Bool(_)) => 2,
        Some(Value::Number(_)) => 3,
        Some(Value::String(_)) => 4,
        Some(Value::Array(_)) => 5,
        Some(Value::Object(_)) => 6,
    }]
}

/// The items a list directive works on (see [`as_array`]), borrowed when they can be.
enum Items<'a> {
    Slice(&'a [Value]),
    Refs(Vec<&'a Value>),
    Owned(Vec<Value>),
}

impl Items<'_> {
    fn iter(&self) -> impl DoubleEndedIterator<Item = &Value> {
        let (values, refs): (&[Value], &[&Value]) = match self {
            Items::Slice(v) => (v, &[]),
            Items::Owned(v) => (v, &[]),
            Items::Refs(r) => (&[], r),
        };
        values.iter().chain(refs.iter().copied())
    }

    fn len(&self) -> usize {
        match self {
            Items::Slice(v) => v.len(),
            Items::Owned(v) => v.len(),
            Items::Refs(r) => r.len(),
        }
    }
}

/// `as_array(eval(e, s)?)`, without copying the items when they are already in the input or
/// the template.
fn items<'a>(e: &'a Expr, s: Scope<'a>) -> Option<Items<'a>> {
    let borrowed = |v: &'a Value| match v {
        Value::Array(items) => Items::Slice(items),
        Value::Null => Items::Slice(&[]),
        other => Items::Slice(std::slice::from_ref(other)),
    };
    Some(match e {
        Expr::Path(p) => match p.select(base(p, s)?) {
            Selected::One(v) => borrowed(v.filter(|v| !v.is_null())?),
            Selected::Many(vs) => Items::Refs(vs),
        },
        Expr::Const(v) => borrowed(v),
        Expr::Var(name) => borrowed(s.var(name).filter(|v| !v.is_null())?),
        _ => Items::Owned(as_array(eval(e, s)?)),
    })
}

/// Appends [`to_text`] of `v` to `out`.
fn push_text(out: &mut String, v: &Value) {
    match v {
        Value::String(t) => out.push_str(t),
        other => {
            use std::fmt::Write as _;
            let _ = write!(out, "{other}");
        }
    }
}

/// [`to_text`], borrowing strings.
fn text_ref(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(t) => Cow::Borrowed(t),
        other => Cow::Owned(other.to_string()),
    }
}

/// What a path selects from: the focus, or the variable it names.
fn base<'a>(p: &Path, s: Scope<'a>) -> Option<&'a Value> {
    match &p.var {
        None => Some(s.focus),
        Some(name) => s.var(name),
    }
}

fn select(p: &Path, s: Scope<'_>) -> Option<Value> {
    match p.select(base(p, s)?) {
        Selected::One(v) => v.filter(|v| !v.is_null()).cloned(),
        Selected::Many(vs) => Some(Value::Array(vs.into_iter().cloned().collect())),
    }
}

/// Equality where numbers compare by value (`1 == 1.0`).
fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn numeric(items: &[Expr], s: Scope<'_>, f: impl Fn(f64, f64) -> f64) -> Option<Value> {
    let mut acc: Option<f64> = None;
    let mut all_int = true;
    for i in items {
        let Some(v) = eval_ref(i, s) else { continue };
        let Some(n) = v.as_f64() else { continue };
        all_int &= v.is_i64() || v.is_u64();
        acc = Some(acc.map_or(n, |a| f(a, n)));
    }
    let n = acc?;
    if all_int {
        Some(Value::from(n as i64))
    } else {
        serde_json::Number::from_f64(n).map(Value::Number)
    }
}

fn omit(v: &mut Value, keys: &[String], deep: bool) {
    match v {
        Value::Object(o) => {
            o.retain(|k, _| !keys.contains(k));
            if deep {
                o.values_mut().for_each(|c| omit(c, keys, deep));
            }
        }
        Value::Array(items) if deep => items.iter_mut().for_each(|c| omit(c, keys, deep)),
        _ => {}
    }
}

fn as_array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Compiles `template` (YAML) and runs it on `input`; `null` stands for absent.
    fn run(template: &str, input: Value) -> Value {
        let y: Yaml = serde_yaml::from_str(template).unwrap();
        let mut errors = Vec::new();
        let defs: Defs = [(
            "text".to_string(),
            serde_yaml::from_str("{$lookup: {$type: $}, table: {string: $, array: {$join: \"$[?@.type=='text'].text\"}}}").unwrap(),
        )]
        .into();
        let e = compile(&y, "t", &defs, &mut errors, &mut BTreeSet::new());
        assert!(errors.is_empty(), "{errors:?}");
        let state = json!({"n": 2});
        let globals = [("root", &input), ("state", &state)];
        eval(&e, Scope::new(&input, &globals)).unwrap_or(Value::Null)
    }

    fn compile_err(template: &str) -> String {
        let y: Yaml = serde_yaml::from_str(template).unwrap();
        let mut errors = Vec::new();
        compile(&y, "t", &Defs::new(), &mut errors, &mut BTreeSet::new());
        errors
            .iter()
            .map(|e| format!("{}: {}", e.at, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn constants_paths_and_absence() {
        assert_eq!(run("hello", json!({})), json!("hello"));
        assert_eq!(run("42", json!({})), json!(42));
        assert_eq!(run("$.a", json!({"a": [1]})), json!([1]));
        assert_eq!(run("$$literal", json!({})), json!("$literal"));
        assert_eq!(run("{x: $.a, y: $.b}", json!({"a": 1})), json!({"x": 1}));
        assert_eq!(run("{x: $.a, y: $.b}", json!({"a": null})), Value::Null);
        assert_eq!(run("{x: $.missing}", json!({})), Value::Null);
        assert_eq!(run("{}", json!({})), json!({}));
        assert_eq!(run("[$.a, $.b, 3]", json!({"a": 1})), json!([1, 3]));
        assert_eq!(run("$state.n", json!({})), json!(2));
        assert_eq!(run("{$var: state}", json!({})), json!({"n": 2}));
    }

    #[test]
    fn interpolation() {
        assert_eq!(
            run("\"/models/{$.model}:generate\"", json!({"model": "g"})),
            json!("/models/g:generate")
        );
        assert_eq!(
            run(
                "\"data:{$.t};base64,{$.d}\"",
                json!({"t": "image/png", "d": "AA"})
            ),
            json!("data:image/png;base64,AA")
        );
        assert_eq!(run("\"x{$.missing}\"", json!({})), Value::Null);
        assert_eq!(
            run("\"{$.m[?@.k=='v'].k}\"", json!({"m": [{"k": "v"}]})),
            json!("[\"v\"]")
        );
    }

    #[test]
    fn coalesce_and_const() {
        assert_eq!(run("{$coalesce: [$.a, $.b, 7]}", json!({"b": 2})), json!(2));
        assert_eq!(run("{$coalesce: [$.a, 7]}", json!({"a": null})), json!(7));
        assert_eq!(run("{$const: {a: $.x}}", json!({})), json!({"a": "$.x"}));
    }

    #[test]
    fn map_flatmap_filter() {
        let msgs = json!({"m": [{"r": "u", "c": "a"}, {"r": "s", "c": "b"}]});
        assert_eq!(run("{$map: $.m, to: $.c}", msgs.clone()), json!(["a", "b"]));
        assert_eq!(
            run(
                "{$map: $.m, as: x, to: {$concat: [$x.r, \"$root.m[0].c\"]}}",
                msgs.clone()
            ),
            json!(["ua", "sa"])
        );
        assert_eq!(
            run(
                "{$map: $.m, to: {$if: {$eq: [$.r, u]}, then: $.c}}",
                msgs.clone()
            ),
            json!(["a"])
        );
        assert_eq!(
            run("{$flatmap: $.m, to: [$.r, $.c]}", msgs.clone()),
            json!(["u", "a", "s", "b"])
        );
        assert_eq!(
            run("{$filter: $.m, where: {$eq: [$.r, s]}}", msgs.clone()),
            json!([{"r": "s", "c": "b"}])
        );
        assert_eq!(run("{$map: $.nothing, to: $.c}", msgs), Value::Null);
    }

    #[test]
    fn filter_with_outer_variable() {
        let doc = json!({"calls": [{"id": "1", "n": "a"}, {"id": "2", "n": "b"}], "want": "2"});
        assert_eq!(
            run(
                "{$first: {$filter: $.calls, where: {$eq: [$.id, $root.want]}}}",
                doc.clone()
            ),
            json!({"id": "2", "n": "b"})
        );
        assert_eq!(run("{$last: $.calls}", doc), json!({"id": "2", "n": "b"}));
    }

    #[test]
    fn join_len_lookup_if() {
        assert_eq!(
            run("{$join: $.a, sep: \"-\"}", json!({"a": ["x", "y"]})),
            json!("x-y")
        );
        assert_eq!(run("{$join: $.a}", json!({"a": []})), Value::Null);
        assert_eq!(run("{$len: $.a}", json!({"a": [1, 2]})), json!(2));
        assert_eq!(
            run(
                "{$lookup: $.r, table: {end_turn: stop, max_tokens: length}}",
                json!({"r": "max_tokens"})
            ),
            json!("length")
        );
        assert_eq!(
            run(
                "{$lookup: $.r, table: {a: 1}, default: 0}",
                json!({"r": "z"})
            ),
            json!(0)
        );
        assert_eq!(
            run("{$lookup: $.n, table: {529: 503}}", json!({"n": 529})),
            json!(503)
        );
        assert_eq!(
            run("{$if: $.a, then: yes, else: no}", json!({"a": ""})),
            json!("no")
        );
        assert_eq!(
            run("{$if: $.a, then: yes}", json!({"a": [1]})),
            json!("yes")
        );
    }

    #[test]
    fn predicates() {
        assert_eq!(run("{$ne: [$.a, 1]}", json!({"a": 1})), json!(false));
        assert_eq!(
            run("{$in: $.a, values: [x, y]}", json!({"a": "y"})),
            json!(true)
        );
        assert_eq!(run("{$eq: [$.a, 1]}", json!({"a": 1.0})), json!(true));
        assert_eq!(
            run("{$in: $.a, values: [2, 3]}", json!({"a": 3.0})),
            json!(true)
        );
        assert_eq!(run("{$not: $.a}", json!({})), json!(true));
        assert_eq!(
            run("{$and: [$.a, $.b]}", json!({"a": 1, "b": 0})),
            json!(false)
        );
        assert_eq!(
            run("{$or: [$.a, $.b]}", json!({"a": 1, "b": 0})),
            json!(true)
        );
        assert_eq!(run("{$exists: $.a}", json!({"a": false})), json!(true));
        assert_eq!(run("{$type: $.a}", json!({"a": "s"})), json!("string"));
        assert_eq!(run("{$type: $.a}", json!({})), json!("absent"));
    }

    #[test]
    fn json_strings() {
        assert_eq!(
            run("{$stringify: $.a}", json!({"a": {"k": 1}})),
            json!("{\"k\":1}")
        );
        assert_eq!(
            run("{$stringify: $.a}", json!({"a": "already"})),
            json!("already")
        );
        assert_eq!(
            run("{$parse: $.a}", json!({"a": "{\"k\":1}"})),
            json!({"k": 1})
        );
        assert_eq!(run("{$parse: $.a}", json!({"a": ""})), json!({}));
        assert_eq!(
            run("{$parse: $.a, fallback: {}}", json!({"a": "{bad"})),
            json!({})
        );
        assert_eq!(run("{$parse: $.a}", json!({"a": "{bad"})), json!("{bad"));
    }

    #[test]
    fn strings_numbers_objects() {
        assert_eq!(run("{$concat: [a, $.b, c]}", json!({"b": 1})), json!("a1c"));
        assert_eq!(
            run("{$merge: [{a: 1}, $.o]}", json!({"o": {"b": 2}})),
            json!({"a": 1, "b": 2})
        );
        assert_eq!(run("{$merge: [$.x, $.y]}", json!({})), Value::Null);
        assert_eq!(
            run("{$flatten: [[1], $.a, $.none, 4]}", json!({"a": [2, 3]})),
            json!([1, 2, 3, 4])
        );
        assert_eq!(
            run("{$sum: [$.a, $.b, $.c]}", json!({"a": 1, "b": 2})),
            json!(3)
        );
        assert_eq!(
            run("{$sum: [$.a, $.b]}", json!({"a": 1.5, "b": 2})),
            json!(3.5)
        );
        assert_eq!(run("{$min: [$.t, 1]}", json!({"t": 1.7})), json!(1.0));
        assert_eq!(run("{$max: [$.t, 1]}", json!({"t": 0})), json!(1));
        assert_eq!(run("{$int: $.f}", json!({"f": 18.0})), json!(18));
        assert_eq!(run("{$string: $.f}", json!({"f": 18})), json!("18"));
    }

    #[test]
    fn regexes() {
        let url = json!({"u": "data:image/png;base64,AAAA"});
        assert_eq!(
            run(
                "{$capture: $.u, pattern: \"^data:([^;]+);base64,\"}",
                url.clone()
            ),
            json!("image/png")
        );
        assert_eq!(
            run(
                "{$replace: $.u, pattern: \"^data:[^,]*,\", with: \"\"}",
                url.clone()
            ),
            json!("AAAA")
        );
        assert_eq!(
            run("{$matches: $.u, pattern: \"^data:\"}", url),
            json!(true)
        );
        assert_eq!(
            run("{$capture: $.u, pattern: \"^x(y)\"}", json!({"u": "abc"})),
            Value::Null
        );
    }

    #[test]
    fn merge_adjacent_and_omit() {
        let msgs = json!({"m": [{"r": "u", "c": [1]}, {"r": "u", "c": [2]}, {"r": "a", "c": [3]}, {"r": "u", "c": [4]}]});
        assert_eq!(
            run("{$merge_adjacent: $.m, by: $.r, concat: c}", msgs),
            json!([{"r": "u", "c": [1, 2]}, {"r": "a", "c": [3]}, {"r": "u", "c": [4]}])
        );
        let schema = json!({"s": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string", "additionalProperties": 1}}}});
        assert_eq!(
            run(
                "{$omit: $.s, keys: [additionalProperties], deep: true}",
                schema.clone()
            ),
            json!({"type": "object", "properties": {"a": {"type": "string"}}})
        );
        assert_eq!(
            run("{$omit: $.s, keys: [type]}", schema)["additionalProperties"],
            json!(false)
        );
    }

    #[test]
    fn use_definitions() {
        assert_eq!(
            run("{$use: text, of: $.c}", json!({"c": "plain"})),
            json!("plain")
        );
        assert_eq!(
            run(
                "{$use: text, of: $.c}",
                json!({"c": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]})
            ),
            json!("ab")
        );
        assert_eq!(
            run(
                "{$map: $.m, to: {$use: text}}",
                json!({"m": ["x", [{"type": "text", "text": "y"}]]})
            ),
            json!(["x", "y"])
        );
    }

    #[test]
    fn compile_errors_are_all_reported_with_location() {
        let e =
            compile_err("{a: {$summ: [1]}, b: {$map: $.x}, c: \"$.[\", d: {$join: $.x, sepp: 1}}");
        assert!(e.contains("t.a.$summ: unknown directive \"$summ\""), "{e}");
        assert!(e.contains("t.b.$map: $map needs `to`"), "{e}");
        assert!(e.contains("t.c: invalid JSONPath"), "{e}");
        assert!(e.contains("unknown option \"sepp\" for $join"), "{e}");
        assert!(compile_err("{$replace: $.a, pattern: \"(\"}").contains("invalid regex"));
        assert!(compile_err("{$use: nope}").contains("no definition named"));
        assert!(compile_err("{$eq: [1]}").contains("two operands"));
        assert!(compile_err("{$if: 1, $not: 2}").contains("only one directive"));
    }
}
