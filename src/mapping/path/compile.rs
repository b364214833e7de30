//! Compiling a path's node-list program from jsonpath-rust's parse: segments, selectors and
//! filters, or `None` for constructs left to jsonpath-rust.
//!
//! The node-list evaluator. Every rule below mirrors jsonpath-rust 1.0.12 (`query/*.rs`), result
//! order included; `tests::differential_against_jsonpath_rust` checks the two against each other.

use jsonpath_rust::parser::model::{
    Comparable, Comparison, Filter, FilterAtom, Literal, Segment, Selector, SingularQuery,
    SingularQuerySegment, Test,
};
use serde_json::Value;

use super::eval::*;
use super::*;

/// A child segment: one selector, or several (`[a, b]`), whose results jsonpath-rust
/// concatenates selector by selector (all nodes for the first selector, then the second...).
#[derive(Debug, Clone)]
pub(super) enum Seg {
    One(Sel),
    Many(Vec<Sel>),
}

#[derive(Debug, Clone)]
pub(super) enum Sel {
    Name(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Cond),
}

/// A filter expression.
#[derive(Debug, Clone)]
pub(super) enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    /// A non-empty node list from the item (`@...`) or from the root (`$...`).
    Exists {
        rel: bool,
        nodes: Nodes,
    },
    Cmp(Op, Operand, Operand),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub(super) enum Operand {
    Lit(Value),
    /// A singular query from the item (`@.a[0]`).
    Cur(Vec<Step>),
    /// A singular query from the root (`$.a[0]`).
    Root(Vec<Step>),
}

/// Compiles segments, or `None` when one is outside the subset. `relative`: these are the
/// segments of an `@...` query in a filter, whose first segment jsonpath-rust applies to the
/// item as an "internal" node (a filter there yields a boolean, not nodes): left to it.
pub(super) fn segments(segs: &[Segment], relative: bool) -> Option<Vec<Seg>> {
    segs.iter()
        .enumerate()
        .map(|(i, seg)| {
            let first_of_rel = relative && i == 0;
            match seg {
                Segment::Selector(s) => Some(Seg::One(selector(s, first_of_rel)?)),
                Segment::Selectors(ss) => Some(Seg::Many(
                    ss.iter()
                        .map(|s| selector(s, first_of_rel))
                        .collect::<Option<_>>()?,
                )),
                Segment::Descendant(_) => None,
            }
        })
        .collect()
}

pub(super) fn selector(s: &Selector, first_of_rel: bool) -> Option<Sel> {
    Some(match s {
        Selector::Name(n) => Sel::Name(n.clone()),
        Selector::Wildcard => Sel::Wildcard,
        Selector::Index(i) => Sel::Index(*i),
        Selector::Slice(a, b, c) => Sel::Slice(*a, *b, *c),
        Selector::Filter(_) if first_of_rel => return None,
        Selector::Filter(f) => Sel::Filter(cond(f)?),
    })
}

pub(super) fn cond(f: &Filter) -> Option<Cond> {
    Some(match f {
        Filter::Or(fs) => Cond::Or(fs.iter().map(cond).collect::<Option<_>>()?),
        Filter::And(fs) => Cond::And(fs.iter().map(cond).collect::<Option<_>>()?),
        Filter::Atom(FilterAtom::Filter { expr, not }) => negated(cond(expr)?, *not),
        Filter::Atom(FilterAtom::Test { expr, not }) => {
            let test = match &**expr {
                Test::RelQuery(segs) => Cond::Exists {
                    rel: true,
                    nodes: Nodes::compile(segs, true)?,
                },
                Test::AbsQuery(q) => Cond::Exists {
                    rel: false,
                    nodes: Nodes::compile(&q.segments, false)?,
                },
                Test::Function(_) => return None,
            };
            negated(test, *not)
        }
        Filter::Atom(FilterAtom::Comparison(c)) => {
            let op = match &**c {
                Comparison::Eq(..) => Op::Eq,
                Comparison::Ne(..) => Op::Ne,
                Comparison::Gt(..) => Op::Gt,
                Comparison::Gte(..) => Op::Gte,
                Comparison::Lt(..) => Op::Lt,
                Comparison::Lte(..) => Op::Lte,
            };
            let (l, r) = c.vals();
            Cond::Cmp(op, operand(l)?, operand(r)?)
        }
    })
}

pub(super) fn negated(c: Cond, not: bool) -> Cond {
    if not { Cond::Not(Box::new(c)) } else { c }
}

pub(super) fn operand(c: &Comparable) -> Option<Operand> {
    let steps = |segs: &[SingularQuerySegment]| {
        segs.iter()
            .map(|s| match s {
                SingularQuerySegment::Name(n) => Step::Key(n.clone()),
                SingularQuerySegment::Index(i) => Step::Index(*i),
            })
            .collect()
    };
    Some(match c {
        // The same conversions jsonpath-rust makes (a float that is not finite becomes null).
        Comparable::Literal(l) => Operand::Lit(match l {
            Literal::Int(i) => Value::from(*i),
            Literal::Float(f) => Value::from(*f),
            Literal::String(s) => Value::from(s.as_str()),
            Literal::Bool(b) => Value::from(*b),
            Literal::Null => Value::Null,
        }),
        Comparable::SingularQuery(SingularQuery::Current(segs)) => Operand::Cur(steps(segs)),
        Comparable::SingularQuery(SingularQuery::Root(segs)) => Operand::Root(steps(segs)),
        Comparable::Function(_) => return None,
    })
}
