//! The `$directive` forms of a template: the table of directives and their options, and how
//! each one compiles.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;
use serde_yaml::Value as Yaml;

use super::compile::{Compiler, MAX_USE_DEPTH, MAX_USE_INLINES, join_at, scalar_key};
use super::*;

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

impl Compiler<'_, '_> {
    pub(super) fn directive(&mut self, name: &str, m: &serde_yaml::Mapping, at: &str) -> Expr {
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
                    Some((body, _)) => Arc::clone(body),
                    None => {
                        let before = self.inlined;
                        self.depth += 1;
                        let body = Arc::new(self.expr(def, &format!("defs.{def_name}")));
                        self.depth -= 1;
                        let inner = self.inlined - before;
                        self.compiled
                            .insert(def_name.to_string(), (Arc::clone(&body), inner));
                        body
                    }
                };
                match opt("of") {
                    None => Expr::Def(body),
                    Some(of) => Expr::Use {
                        of: Box::new(self.expr(of, &join_at(at, "of"))),
                        body,
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
}
