//! Evaluating a compiled template: one `match` over [`Expr`], pure, `None` for absent.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::scope::Scope;
use super::*;
use crate::mapping::path::{Path, Selected};

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
        Expr::Def(body) => {
            let Some(memo) = s.memo() else {
                return eval(body, s);
            };
            let key = Arc::as_ptr(body) as usize;
            if let Some(v) = memo.get(key) {
                return v;
            }
            let v = eval(body, s);
            memo.put(key, &v);
            v
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
