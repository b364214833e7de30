//! The walk over a compiled template that records which request fields it reads.

use std::collections::HashMap;

use serde_json::Value;

use super::{EACH, Node};
use crate::mapping::path::{Path, ShapeStep};
use crate::mapping::template::{Expr, Piece};

/// A place in the request: field names from its root (`[]` for array elements).
type At = Vec<String>;

/// Whether a value is carried on (copied) or only looked at (tested).
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Copy,
    Test,
}

/// Where the focus and the variables point while walking.
#[derive(Clone)]
struct Ctx {
    /// The focus, when it is a place in the request (`None`: upstream data or a built value).
    focus: Option<At>,
    /// Variables bound to places in the request (`root`, `request`, `$map ... as`).
    vars: HashMap<String, At>,
    /// A place known to hold a scalar here (a `$lookup` on its `$type` chose `string`,
    /// `number` or `boolean`): a copy of it carries no parts.
    scalar: Option<At>,
}

/// Adds to `tree` what `expr` reads of the request. `focus_is_request`: the template's focus
/// is the request (request-side templates); otherwise only `$request...` reaches it. In
/// request-side templates `$root` is the request too.
pub fn analyze(expr: &Expr, focus_is_request: bool, tree: &mut Node) {
    let mut vars = HashMap::new();
    vars.insert("request".to_string(), Vec::new());
    if focus_is_request {
        vars.insert("root".to_string(), Vec::new());
    }
    let ctx = Ctx {
        focus: focus_is_request.then(Vec::new),
        vars,
        scalar: None,
    };
    walk(expr, &ctx, Mode::Copy, tree);
}

/// The place a path selects, and whether it stopped at "anything below".
fn place(p: &Path, ctx: &Ctx) -> Option<(At, bool)> {
    let mut at = match &p.var {
        None => ctx.focus.clone()?,
        Some(v) => ctx.vars.get(v)?.clone(),
    };
    for step in p.shape() {
        match step {
            ShapeStep::Key(k) => at.push(k),
            ShapeStep::Each => at.push(EACH.into()),
            ShapeStep::Deep => return Some((at, true)),
        }
    }
    Some((at, false))
}

/// The place of the value an expression gives, when it is one place in the request.
fn focus_of(e: &Expr, ctx: &Ctx) -> Option<At> {
    match e {
        Expr::Path(p) => match place(p, ctx)? {
            (at, false) => Some(at),
            _ => None,
        },
        Expr::Var(v) => ctx.vars.get(v).cloned(),
        Expr::First(x) | Expr::Last(x) => elements_of(x, ctx),
        Expr::Coalesce(items) => items.iter().find_map(|i| focus_of(i, ctx)),
        _ => None,
    }
}

/// The place of each element of the list an expression gives.
fn elements_of(e: &Expr, ctx: &Ctx) -> Option<At> {
    match e {
        // A singular path selects an array; any other path the list of nodes it matched.
        Expr::Path(p) => match place(p, ctx)? {
            (mut at, false) => {
                if p.is_singular() {
                    at.push(EACH.into());
                }
                Some(at)
            }
            _ => None,
        },
        Expr::Var(_) | Expr::Coalesce(_) => focus_of(e, ctx).map(|mut at| {
            at.push(EACH.into());
            at
        }),
        Expr::Filter { over, .. } => elements_of(over, ctx),
        Expr::MergeAdjacent { of, .. } => elements_of(of, ctx),
        _ => None,
    }
}

/// The constant an expression is, as the text a `$lookup` key would be.
fn constant(e: &Expr) -> Option<String> {
    match e {
        Expr::Const(Value::String(s)) => Some(s.clone()),
        Expr::Const(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        _ => None,
    }
}

/// Records that the place `e` selects is compared with `values`.
fn tested(e: &Expr, ctx: &Ctx, values: impl IntoIterator<Item = String>, tree: &mut Node) {
    if let Some(at) = focus_of(e, ctx) {
        tree.at(&at).tested.extend(values);
    }
}

fn walk(e: &Expr, ctx: &Ctx, mode: Mode, tree: &mut Node) {
    match e {
        Expr::Const(_) => {}
        Expr::Path(p) => read(place(p, ctx), ctx, mode, tree),
        Expr::Var(v) => read(ctx.vars.get(v).map(|a| (a.clone(), false)), ctx, mode, tree),
        Expr::Object(fields) => fields.iter().for_each(|(_, f)| walk(f, ctx, mode, tree)),
        Expr::Array(items)
        | Expr::Coalesce(items)
        | Expr::Concat(items)
        | Expr::Merge(items)
        | Expr::Flatten(items)
        | Expr::Sum(items)
        | Expr::Min(items)
        | Expr::Max(items) => items.iter().for_each(|i| walk(i, ctx, mode, tree)),
        Expr::Interp(pieces) => {
            for piece in pieces {
                if let Piece::Expr(x) = piece {
                    walk(x, ctx, mode, tree);
                }
            }
        }
        Expr::Map { over, bind, to, .. }
        | Expr::Filter {
            over,
            bind,
            cond: to,
        } => {
            walk(over, ctx, Mode::Test, tree);
            let mut inner = ctx.clone();
            inner.focus = elements_of(over, ctx);
            if let (Some(name), Some(at)) = (bind, &inner.focus) {
                inner.vars.insert(name.clone(), at.clone());
            }
            let to_mode = if matches!(e, Expr::Filter { .. }) {
                Mode::Test
            } else {
                mode
            };
            walk(to, &inner, to_mode, tree);
            // A filter gives its elements back as they are.
            if matches!(e, Expr::Filter { .. }) && mode == Mode::Copy {
                read(inner.focus.map(|a| (a, false)), ctx, mode, tree);
            }
        }
        // A definition used without `of` reads what its body reads, at the same focus.
        Expr::Def(body) => walk(body, ctx, mode, tree),
        Expr::Use { of, body } => {
            walk(of, ctx, Mode::Test, tree);
            let mut inner = ctx.clone();
            inner.focus = focus_of(of, ctx);
            walk(body, &inner, mode, tree);
        }
        Expr::First(x)
        | Expr::Last(x)
        | Expr::Int(x)
        | Expr::Str(x)
        | Expr::Stringify(x)
        | Expr::Join { of: x, .. }
        | Expr::Parse { of: x, .. }
        | Expr::Replace { of: x, .. }
        | Expr::Capture { of: x, .. } => {
            walk(x, ctx, mode, tree);
            if let Expr::Parse {
                fallback: Some(f), ..
            } = e
            {
                walk(f, ctx, mode, tree);
            }
        }
        Expr::MergeAdjacent { of, by, .. } => {
            walk(of, ctx, mode, tree);
            let mut inner = ctx.clone();
            inner.focus = elements_of(of, ctx);
            walk(by, &inner, Mode::Test, tree);
        }
        Expr::Omit { of, keys, .. } => match (mode, focus_of(of, ctx)) {
            (Mode::Copy, Some(at)) => {
                let n = tree.at(&at);
                n.whole = true;
                n.omitted.extend(keys.iter().cloned());
            }
            _ => walk(of, ctx, mode, tree),
        },
        Expr::Len(x) | Expr::Not(x) | Expr::Exists(x) | Expr::Matches { of: x, .. } => {
            walk(x, ctx, Mode::Test, tree)
        }
        Expr::Type(x) => walk(x, ctx, Mode::Test, tree),
        Expr::And(items) | Expr::Or(items) => {
            items.iter().for_each(|i| walk(i, ctx, Mode::Test, tree))
        }
        Expr::Eq(a, b) | Expr::Ne(a, b) => {
            walk(a, ctx, Mode::Test, tree);
            walk(b, ctx, Mode::Test, tree);
            if let Some(c) = constant(b) {
                tested(a, ctx, [c], tree);
            } else if let Some(c) = constant(a) {
                tested(b, ctx, [c], tree);
            }
        }
        Expr::In(a, values) => {
            walk(a, ctx, Mode::Test, tree);
            let texts = values
                .iter()
                .filter_map(|v| constant(&Expr::Const(v.clone())));
            tested(a, ctx, texts, tree);
        }
        Expr::If {
            cond,
            then,
            otherwise,
        } => {
            walk(cond, ctx, Mode::Test, tree);
            for branch in [then, otherwise].into_iter().flatten() {
                walk(branch, ctx, mode, tree);
            }
        }
        Expr::Lookup {
            key,
            table,
            default,
        } => lookup(key, table, default.as_deref(), ctx, mode, tree),
    }
}

/// A `$lookup`: its key is compared with the table's keys (any value when it has a default);
/// on `$type` of a place, the scalar branches see a scalar there.
fn lookup(
    key: &Expr,
    table: &HashMap<String, Expr>,
    default: Option<&Expr>,
    ctx: &Ctx,
    mode: Mode,
    tree: &mut Node,
) {
    walk(key, ctx, Mode::Test, tree);
    if let Some(at) = focus_of(key, ctx) {
        let n = tree.at(&at);
        n.tested.extend(table.keys().cloned());
        n.any_value |= default.is_some();
    }
    let typed = match key {
        Expr::Type(x) => focus_of(x, ctx),
        _ => None,
    };
    for (k, branch) in table {
        let scalar = typed.is_some() && matches!(k.as_str(), "string" | "number" | "boolean");
        if scalar {
            let mut inner = ctx.clone();
            inner.scalar = typed.clone();
            walk(branch, &inner, mode, tree);
        } else {
            walk(branch, ctx, mode, tree);
        }
    }
    if let Some(d) = default {
        walk(d, ctx, mode, tree);
    }
}

/// A place read: copied whole (unless it holds a scalar here), or only looked at.
fn read(place: Option<(At, bool)>, ctx: &Ctx, mode: Mode, tree: &mut Node) {
    let Some((at, deep)) = place else { return };
    let n = tree.at(&at);
    if mode == Mode::Copy && (deep || ctx.scalar.as_ref() != Some(&at)) {
        n.whole = true;
    }
}
