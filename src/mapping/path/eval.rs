//! Evaluating a node-list program: each segment applied to the nodes selected so far, with
//! jsonpath-rust's results and order.

use jsonpath_rust::parser::model::Segment;
use serde_json::Value;

use super::compile::*;
use super::*;

/// Compiled segments: names and indexes before the first other segment, walked directly;
/// the segments from there to the last other segment; names and indexes after it, walked
/// from each node in place. Same nodes, in the same order, as applying every segment in turn.
#[derive(Debug, Clone)]
pub(super) struct Nodes {
    prefix: Vec<Step>,
    middle: Vec<Seg>,
    suffix: Vec<Step>,
}

impl Nodes {
    /// `None` when a segment is outside the subset (see [`segments`]).
    pub(super) fn compile(segs: &[Segment], relative: bool) -> Option<Nodes> {
        let mut middle = segments(segs, relative)?;
        let step = |seg: &Seg| match seg {
            Seg::One(Sel::Name(k)) => Some(Step::Key(k.clone())),
            Seg::One(Sel::Index(i)) => Some(Step::Index(*i)),
            _ => None,
        };
        let prefix: Vec<Step> = middle.iter().map_while(step).collect();
        middle.drain(..prefix.len());
        let mut suffix: Vec<Step> = middle.iter().rev().map_while(step).collect();
        suffix.reverse();
        middle.truncate(middle.len() - suffix.len());
        Some(Nodes {
            prefix,
            middle,
            suffix,
        })
    }

    /// The node list from `start`; `root` is what `$` means in filters.
    pub(super) fn select<'a>(&self, start: &'a Value, root: &'a Value) -> Vec<&'a Value> {
        let Some(base) = walk(&self.prefix, start) else {
            return Vec::new();
        };
        let mut segs = self.middle.iter();
        let mut cur = Vec::new();
        match segs.next() {
            Some(seg) => apply_seg(seg, &[base], root, &mut cur),
            None => cur.push(base),
        }
        let mut next = Vec::new();
        for seg in segs {
            if cur.is_empty() {
                break;
            }
            apply_seg(seg, &cur, root, &mut next);
            std::mem::swap(&mut cur, &mut next);
            next.clear();
        }
        if !self.suffix.is_empty() {
            cur.retain_mut(|node| match walk(&self.suffix, node) {
                Some(v) => {
                    *node = v;
                    true
                }
                None => false,
            });
        }
        cur
    }

    /// Whether the node list from `start` is not empty.
    fn exists(&self, start: &Value, root: &Value) -> bool {
        if self.middle.is_empty() {
            walk(&self.prefix, start).is_some_and(|v| walk(&self.suffix, v).is_some())
        } else {
            !self.select(start, root).is_empty()
        }
    }
}

/// Appends what a segment selects from `nodes`: several selectors one after the other, each
/// over all the nodes, as jsonpath-rust orders them.
pub(super) fn apply_seg<'a>(
    seg: &Seg,
    nodes: &[&'a Value],
    root: &'a Value,
    out: &mut Vec<&'a Value>,
) {
    match seg {
        Seg::One(sel) => {
            for &node in nodes {
                apply(sel, node, root, out);
            }
        }
        Seg::Many(sels) => {
            for sel in sels {
                for &node in nodes {
                    apply(sel, node, root, out);
                }
            }
        }
    }
}

/// Appends what `sel` selects from `node`.
pub(super) fn apply<'a>(sel: &Sel, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
    match sel {
        Sel::Name(k) => out.extend(key(node, k)),
        Sel::Index(i) => out.extend(index(node, *i)),
        Sel::Wildcard => match node {
            Value::Array(items) => out.extend(items),
            Value::Object(map) => out.extend(map.values()),
            _ => {}
        },
        Sel::Slice(start, end, step) => {
            if let Value::Array(items) = node {
                slice(items, *start, *end, *step, out);
            }
        }
        Sel::Filter(c) => match node {
            Value::Array(items) => out.extend(items.iter().filter(|i| passes(c, i, root))),
            Value::Object(map) => out.extend(map.values().filter(|i| passes(c, i, root))),
            _ => {}
        },
    }
}

/// RFC 9535 slices as jsonpath-rust computes them (its integers are within ±2^53, so nothing
/// here overflows).
pub(super) fn slice<'a>(
    items: &'a [Value],
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
    out: &mut Vec<&'a Value>,
) {
    let len = items.len() as i64;
    let norm = |i: i64| if i >= 0 { i } else { len + i };
    match step.unwrap_or(1) {
        e if e > 0 => {
            let lower = norm(start.unwrap_or(0)).clamp(0, len);
            let upper = norm(end.unwrap_or(len)).clamp(0, len);
            let mut idx = lower;
            while idx < upper {
                out.extend(items.get(idx as usize));
                idx += e;
            }
        }
        e if e < 0 => {
            let lower = norm(end.unwrap_or(-len - 1)).max(-1).min(len - 1);
            let upper = norm(start.unwrap_or(len - 1)).max(-1).min(len - 1);
            let mut idx = upper;
            while lower < idx {
                out.extend(items.get(idx as usize));
                idx += e;
            }
        }
        _ => {}
    }
}

/// Whether `item` passes the filter.
pub(super) fn passes(c: &Cond, item: &Value, root: &Value) -> bool {
    match c {
        Cond::Or(cs) => cs.iter().any(|c| passes(c, item, root)),
        Cond::And(cs) => cs.iter().all(|c| passes(c, item, root)),
        Cond::Not(c) => !passes(c, item, root),
        Cond::Exists { rel, nodes } => {
            let start = if *rel { item } else { root };
            nodes.exists(start, root)
        }
        Cond::Cmp(op, l, r) => {
            let l = value_of(l, item, root);
            let r = value_of(r, item, root);
            match op {
                Op::Eq => eq(l, r),
                Op::Ne => !eq(l, r),
                Op::Gt => lt(r, l),
                Op::Gte => lt(r, l) || eq(l, r),
                Op::Lt => lt(l, r),
                Op::Lte => lt(l, r) || eq(l, r),
            }
        }
    }
}

/// An operand's value; `None` is jsonpath-rust's `Nothing` (a query that selects nothing).
pub(super) fn value_of<'a>(o: &'a Operand, item: &'a Value, root: &'a Value) -> Option<&'a Value> {
    match o {
        Operand::Lit(v) => Some(v),
        Operand::Cur(steps) => walk(steps, item),
        Operand::Root(steps) => walk(steps, root),
    }
}

/// `==`: numbers within `f64::EPSILON` of each other, other values by JSON equality; two
/// queries that both select nothing are equal.
pub(super) fn eq(l: Option<&Value>, r: Option<&Value>) -> bool {
    match (l, r) {
        (Some(l), Some(r)) => match (num(l), num(r)) {
            (Some(a), Some(b)) => (a - b).abs() < f64::EPSILON,
            _ => l == r,
        },
        (None, None) => true,
        _ => false,
    }
}

/// `<`: numbers by value, strings by code points, everything else false.
pub(super) fn lt(l: Option<&Value>, r: Option<&Value>) -> bool {
    let (Some(l), Some(r)) = (l, r) else {
        return false;
    };
    if let (Some(a), Some(b)) = (num(l), num(r)) {
        a < b
    } else if let (Some(a), Some(b)) = (l.as_str(), r.as_str()) {
        a < b
    } else {
        false
    }
}

pub(super) fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_i64().map(|i| i as f64))
}
