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

use jsonpath_rust::parser::model::{
    Comparable, Comparison, Filter, FilterAtom, JpQuery, Literal, Segment, Selector, SingularQuery,
    SingularQuerySegment, Test,
};
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

// ---------------------------------------------------------------------------------------------
// The node-list evaluator. Every rule below mirrors jsonpath-rust 1.0.12 (`query/*.rs`), result
// order included; `tests::differential_against_jsonpath_rust` checks the two against each other.
// ---------------------------------------------------------------------------------------------

/// A child segment: one selector, or several (`[a, b]`), whose results jsonpath-rust
/// concatenates selector by selector (all nodes for the first selector, then the second...).
#[derive(Debug, Clone)]
enum Seg {
    One(Sel),
    Many(Vec<Sel>),
}

#[derive(Debug, Clone)]
enum Sel {
    Name(String),
    Wildcard,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Filter(Cond),
}

/// A filter expression.
#[derive(Debug, Clone)]
enum Cond {
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
enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
enum Operand {
    Lit(Value),
    /// A singular query from the item (`@.a[0]`).
    Cur(Vec<Step>),
    /// A singular query from the root (`$.a[0]`).
    Root(Vec<Step>),
}

/// Compiles segments, or `None` when one is outside the subset. `relative`: these are the
/// segments of an `@...` query in a filter, whose first segment jsonpath-rust applies to the
/// item as an "internal" node (a filter there yields a boolean, not nodes): left to it.
fn segments(segs: &[Segment], relative: bool) -> Option<Vec<Seg>> {
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

fn selector(s: &Selector, first_of_rel: bool) -> Option<Sel> {
    Some(match s {
        Selector::Name(n) => Sel::Name(n.clone()),
        Selector::Wildcard => Sel::Wildcard,
        Selector::Index(i) => Sel::Index(*i),
        Selector::Slice(a, b, c) => Sel::Slice(*a, *b, *c),
        Selector::Filter(_) if first_of_rel => return None,
        Selector::Filter(f) => Sel::Filter(cond(f)?),
    })
}

fn cond(f: &Filter) -> Option<Cond> {
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

fn negated(c: Cond, not: bool) -> Cond {
    if not { Cond::Not(Box::new(c)) } else { c }
}

fn operand(c: &Comparable) -> Option<Operand> {
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

/// Compiled segments: names and indexes before the first other segment, walked directly;
/// the segments from there to the last other segment; names and indexes after it, walked
/// from each node in place. Same nodes, in the same order, as applying every segment in turn.
#[derive(Debug, Clone)]
struct Nodes {
    prefix: Vec<Step>,
    middle: Vec<Seg>,
    suffix: Vec<Step>,
}

impl Nodes {
    /// `None` when a segment is outside the subset (see [`segments`]).
    fn compile(segs: &[Segment], relative: bool) -> Option<Nodes> {
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
    fn select<'a>(&self, start: &'a Value, root: &'a Value) -> Vec<&'a Value> {
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
fn apply_seg<'a>(seg: &Seg, nodes: &[&'a Value], root: &'a Value, out: &mut Vec<&'a Value>) {
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
fn apply<'a>(sel: &Sel, node: &'a Value, root: &'a Value, out: &mut Vec<&'a Value>) {
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
fn slice<'a>(
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
fn passes(c: &Cond, item: &Value, root: &Value) -> bool {
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
fn value_of<'a>(o: &'a Operand, item: &'a Value, root: &'a Value) -> Option<&'a Value> {
    match o {
        Operand::Lit(v) => Some(v),
        Operand::Cur(steps) => walk(steps, item),
        Operand::Root(steps) => walk(steps, root),
    }
}

/// `==`: numbers within `f64::EPSILON` of each other, other values by JSON equality; two
/// queries that both select nothing are equal.
fn eq(l: Option<&Value>, r: Option<&Value>) -> bool {
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
fn lt(l: Option<&Value>, r: Option<&Value>) -> bool {
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

fn num(v: &Value) -> Option<f64> {
    v.as_f64().or_else(|| v.as_i64().map(|i| i as f64))
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

    /// What jsonpath-rust itself selects, as node addresses.
    fn reference(query: &str, doc: &Value) -> Vec<*const Value> {
        let q = parse_json_path(query).unwrap();
        js_path_process(&q, doc)
            .map(|refs| refs.into_iter().map(|r| r.val as *const Value).collect())
            .unwrap_or_default()
    }

    /// What [`Path::select`] selects, as node addresses.
    fn ours(path: &Path, doc: &Value) -> Vec<*const Value> {
        match path.select(doc) {
            Selected::One(v) => v.into_iter().map(|v| v as *const Value).collect(),
            Selected::Many(vs) => vs.into_iter().map(|v| v as *const Value).collect(),
        }
    }

    /// Queries evaluated here, covering every construct of the subset.
    const NODES: &[&str] = &[
        // selectors: wildcard (arrays and objects), unions, slices, filters on objects
        "$[*]",
        "$.*",
        "$.a[*]",
        "$[*][*]",
        "$[*].type",
        "$[*][0]",
        "$[*][-1]",
        "$[0,1]",
        "$[1,0,1]",
        "$[-1,0]",
        "$[5,-5]",
        "$['a','b','a']",
        "$[*,0]",
        "$[0,*]",
        "$['a',0,*]",
        "$[*][0,1]",
        "$[*]['type','text']",
        "$[0:2]",
        "$[:]",
        "$[::]",
        "$[1:]",
        "$[:-1]",
        "$[-2:]",
        "$[::2]",
        "$[1::2]",
        "$[::-1]",
        "$[3:0:-1]",
        "$[-1:-4:-2]",
        "$[5:1:-2]",
        "$[::0]",
        "$[10:20]",
        "$[-10:2]",
        "$[2:1]",
        "$[0:3][0:1]",
        "$.a[0:2].b",
        "$[0:1,?@.type]",
        "$[*].a[1:]",
        // filters: comparisons with every literal type and operator
        "$[?@.type=='text']",
        "$[?@.type=='text'].text",
        "$[?@.type!='text']",
        "$.a[?@.type=='text'].text",
        "$[*][?@.type=='text'].text",
        "$[*].content[?@.type=='text'].text",
        "$[?@.role=='system' || @.role=='developer']",
        "$[?@.role!='system' && @.role!='developer']",
        "$[?@.role=='system' || @.role=='user' && @.x==1]",
        "$[?(@.role=='system' || @.role=='user') && @.x==1]",
        "$[?!(@.role=='system')]",
        "$[?!(@.x==1 || @.x==2)]",
        "$[?@.x==1]",
        "$[?@.x==1.0]",
        "$[?@.x==1.5]",
        "$[?@.x==-1]",
        "$[?@.x==0]",
        "$[?@.x==1e20]",
        "$.m[?@.x==1]",
        "$.m[?@.x==0.3]",
        "$.m[?@.x<0.3]",
        "$.m[?@.x>=0.30000000000000004]",
        "$.m[?@.x<=1]",
        "$.m[?@.x>1.0000000000000002]",
        "$[?@.x==1e400]",
        "$[?@.x!=1]",
        "$[?@.x>1]",
        "$[?@.x>=1]",
        "$[?@.x<1]",
        "$[?@.x<=1]",
        "$[?@.x<=0.5]",
        "$[?@.x>'a']",
        "$[?@.x<'b']",
        "$[?@.x>='text']",
        "$[?@.x<=true]",
        "$[?@.x==true]",
        "$[?@.x==false]",
        "$[?@.x!=false]",
        "$[?@.x==null]",
        "$[?@.x!=null]",
        "$[?@.x<null]",
        "$[?@.x=='é'].x",
        "$[?@=='text']",
        "$[?@==1]",
        "$[?@>0]",
        "$[?@<='b']",
        "$[?@==null]",
        "$[?1==1]",
        "$[?1==2]",
        "$[?'a'<'b']",
        "$[?null==null]",
        "$[?@.x==@.y]",
        "$[?@.x!=@.y]",
        "$[?@.x<@.y]",
        "$[?@.x>=@.y]",
        "$[?@.missing==@.other]",
        "$[?@.missing!=@.other]",
        "$[?@.missing<=@.other]",
        "$[?@.missing==null]",
        "$[?@.x==$.x]",
        "$[?@.type==$[0].type]",
        "$[?@.x==$.a[0].x]",
        "$[?@.a[0]==1]",
        "$[?@.a[-1]==1]",
        "$[?@['k y']==1]",
        "$[?@.a.b=='x']",
        "$[?@[0]=='text']",
        "$[?$.x==1]",
        // filters: existence tests
        "$[?@.type]",
        "$[?!@.type]",
        "$[?@.x]",
        "$[?@.a[*]]",
        "$[?!@.a[*]]",
        "$[?@[*]]",
        "$[?@[0]]",
        "$[?@[1:]]",
        "$[?@.a[?@.type=='text']]",
        "$[?!@.a[?@.x==1]]",
        "$[?@.*]",
        "$[?@['a','b']]",
        "$[?$.x]",
        "$[?$.missing]",
        "$[?!$.missing]",
        "$[?$[?@.type=='text']]",
        "$[?$[*].x]",
        "$[?@.type && @.x]",
        "$[?@.type || @.x]",
        "$[?@.a[?@.b[?@.type=='text']]]",
        // nested and chained
        "$[?@.type=='text'][?@.x==1]",
        "$[?@.a][?@.type]",
        "$[*][?@]",
        "$[?@][*]",
        "$['k y', '\\'q\\'', 'é']",
        "$[?@.a[0:2].b]",
    ];

    /// Queries left to jsonpath-rust.
    const FALLBACK: &[&str] = &[
        "$..x",
        "$..[?@.type=='text']",
        "$.a..type",
        "$[?@..x]",
        "$[?length(@.a) > 1]",
        "$[?length(@) == 2]",
        "$[?count(@.*) == 2]",
        "$[?value(@.x) == 1]",
        "$[?match(@.type, 't.*')]",
        "$[?search(@.type, 'ex')]",
        "$[?@[?@.type]]",
        "$[?@[?@.x==1, 0]]",
        "$[?@[0, ?@.x]]",
        "$[?in(@.x, $.list)]",
    ];

    /// Singular paths, walked directly.
    const SINGULAR: &[&str] = &[
        "$",
        "$.a",
        "$.a.b",
        "$[0]",
        "$[-1]",
        "$[-9]",
        "$[0].type",
        "$.a[0]",
        "$['k y']",
        "$[\"'q'\"]",
        "$['\\'q\\'']",
        "$.é",
        "$['\\u00e9']",
    ];

    /// Hand-written documents: missing keys, nulls, int and float numbers, nested and empty
    /// arrays, objects as wildcard and filter targets, unicode and quoted keys.
    fn documents() -> Vec<Value> {
        vec![
            json!(null),
            json!(1),
            json!("text"),
            json!([]),
            json!({}),
            json!([1, 2, 3, 4, 5]),
            json!([
                1,
                1.0,
                1.5,
                -1,
                0,
                0.5,
                1e20,
                100000000000000000000u128 as f64,
                "1",
                true,
                null,
                "a",
                "b",
                "é"
            ]),
            json!([[1, 2], [3], [], [[4]], {"a": 1}]),
            json!({"a": [{"b": "x"}, {"b": "y"}], "b": {"type": "text"}, "x": 1, "type": "text", "k y": 1, "'q'": 2, "q": 3, "é": 4}),
            json!([
                {"type": "text", "text": "a", "x": 1},
                {"type": "image", "x": 1.0, "y": 1},
                {"type": "text", "text": "b", "x": 2, "y": 1.5},
                {"text": "c", "x": null, "y": null},
                {"type": null, "x": "a", "y": "b"},
                {"type": "text", "x": true, "y": false},
                {"x": {}, "y": {}},
                {"x": [1], "y": [1.0]},
                "text",
                1,
                null,
                []
            ]),
            json!({"role": "system", "k": {"role": "user", "x": 1}, "z": {"role": "developer", "x": 2}, "w": [1], "v": "text"}),
            json!([
                {"role": "system", "content": "s"},
                {"role": "developer", "content": [{"type": "text", "text": "d"}]},
                {"role": "user", "content": [{"type": "text", "text": "u1"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "u2"}], "x": 1},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "1", "function": {"name": "f"}}]},
                {"role": "tool", "content": "r", "x": 1.0}
            ]),
            json!({"x": 1, "a": [{"x": 1}, {"x": 2}, {"b": [{"type": "text"}]}], "list": [1, 2],
                   "m": {"p": {"x": 1}, "q": {"x": 1.0000000000000002}, "r": {"x": 1.0000000000000004}, "s": {"x": 0.30000000000000004}, "t": {"x": 0.3}}}),
            json!([{"a": [{"b": [{"type": "text"}]}]}, {"a": [{"b": [{"type": "image"}]}]}, {"a": {"b": {"c": {"type": "text"}}}}]),
            json!([{"a": [1, 2, 3]}, {"a": [3]}, {"a": []}, {"a": {"0": 1}}, {"a": "str"}, {"a": [{"b": 1}, {"b": null}]}]),
            json!([["text", "x"], ["a"], [], [null], [[]], ["text"]]),
            json!({"": 1, "a": {"": {"": 2}}, "a.b": 3, "*": 4, "0": 5}),
            json!([{"x": 9007199254740993u64}, {"x": 9007199254740992u64}, {"x": -9007199254740993i64}, {"x": 18446744073709551615u64}, {"x": 1e308}, {"x": -0.0}]),
        ]
    }

    /// A small random JSON value over the keys and values the queries look at.
    fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        const KEYS: &[&str] = &[
            "a", "b", "x", "y", "type", "text", "role", "content", "k y", "'q'", "é", "0", "",
        ];
        const STRINGS: &[&str] = &[
            "text",
            "image",
            "system",
            "developer",
            "user",
            "a",
            "b",
            "",
            "é",
            "1",
            "TEXT",
        ];
        let leaf = depth == 0 || rng.u8(0..10) < 4;
        if leaf {
            return match rng.u8(0..9) {
                0 => Value::Null,
                1 => Value::Bool(rng.bool()),
                2 => json!(rng.i64(-3..4)),
                3 => json!(rng.i64(-3..4) as f64),
                4 => json!([0.5, 1.5, -0.5, 1e20, 2.0000000000000004][rng.usize(0..5)]),
                5 => json!(rng.u64(u64::MAX - 2..=u64::MAX)),
                _ => json!(STRINGS[rng.usize(0..STRINGS.len())]),
            };
        }
        let n = rng.usize(0..5);
        if rng.bool() {
            Value::Array((0..n).map(|_| random_value(rng, depth - 1)).collect())
        } else {
            Value::Object(
                (0..n)
                    .map(|_| {
                        (
                            KEYS[rng.usize(0..KEYS.len())].to_string(),
                            random_value(rng, depth - 1),
                        )
                    })
                    .collect(),
            )
        }
    }

    /// Every path string in the shipped mappings: whole `$...` strings and `{$...}` pieces.
    fn mapping_paths() -> Vec<String> {
        fn walk(y: &serde_yaml::Value, out: &mut Vec<String>) {
            match y {
                serde_yaml::Value::String(s) => {
                    // `${NAME}` is an environment variable, substituted at load.
                    if s.starts_with('$') && !s.starts_with("$$") && !s.starts_with("${") {
                        out.push(s.clone());
                    }
                    let mut rest = s.as_str();
                    while let Some(start) = rest.find("{$") {
                        let body = &rest[start + 1..];
                        let Some(end) = crate::mapping::template::matching_brace(body) else {
                            break;
                        };
                        out.push(body[..end].to_string());
                        rest = &body[end + 1..];
                    }
                }
                serde_yaml::Value::Sequence(items) => items.iter().for_each(|i| walk(i, out)),
                serde_yaml::Value::Mapping(m) => m.values().for_each(|v| walk(v, out)),
                serde_yaml::Value::Tagged(t) => walk(&t.value, out),
                _ => {}
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let y: serde_yaml::Value =
                    serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                walk(&y, &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    fn check(path: &Path, query: &str, doc: &Value) {
        assert_eq!(
            ours(path, doc),
            reference(query, doc),
            "{} ({}) on {doc}",
            path.text,
            path.kind_name()
        );
    }

    /// The query jsonpath-rust sees for a path: `$name...` reads a variable, here the document.
    fn query_of(path: &Path) -> String {
        let tail = &path.text[1 + path.var.as_ref().map_or(0, String::len)..];
        format!("${tail}")
    }

    /// Every object and array in the golden cases (requests, upstream answers, stream events),
    /// at every depth: the values mapping paths meet, whole documents and items alike.
    fn golden_values() -> Vec<Value> {
        fn collect(v: &Value, out: &mut Vec<Value>) {
            match v {
                Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
                Value::Object(map) => map.values().for_each(|i| collect(i, out)),
                Value::String(s) => {
                    // Stream fixtures hold upstream events as text: `data: {...}` lines.
                    for line in s.lines() {
                        let data = line.strip_prefix("data:").unwrap_or(line).trim();
                        if let Ok(v @ (Value::Object(_) | Value::Array(_))) =
                            serde_json::from_str::<Value>(data)
                        {
                            collect(&v, out);
                        }
                    }
                    return;
                }
                _ => return,
            }
            out.push(v.clone());
        }
        let mut out = Vec::new();
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let mut dirs = vec![golden];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "yaml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let y: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
                    if let Ok(v) = serde_json::to_value(&y) {
                        collect(&v, &mut out);
                    }
                }
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|v| seen.insert(v.to_string()));
        out
    }

    /// Checks every path of `list` against jsonpath-rust on every document; returns how many
    /// nodes were selected (so a test can tell the documents are not all misses).
    fn differential(list: &[&str], kind: Option<&str>, docs: &[&[Value]]) -> usize {
        let mut selected = 0;
        for text in list {
            let p = Path::compile(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            match kind {
                Some(kind) => assert_eq!(p.kind_name(), kind, "{text}"),
                None => assert_ne!(p.kind_name(), "query", "{text} is left to jsonpath-rust"),
            }
            let q = query_of(&p);
            for doc in docs.iter().flat_map(|d| d.iter()) {
                check(&p, &q, doc);
                selected += ours(&p, doc).len();
            }
        }
        selected
    }

    fn random_documents(n: usize) -> Vec<Value> {
        let mut rng = fastrand::Rng::with_seed(0x5eed_9535);
        (0..n).map(|_| random_value(&mut rng, 4)).collect()
    }

    #[test]
    fn differential_node_lists() {
        let (hand, random, golden) = (documents(), random_documents(2000), golden_values());
        let selected = differential(NODES, Some("nodes"), &[&hand, &random, &golden[..300]]);
        assert!(selected > 20_000, "{selected}");
    }

    #[test]
    fn differential_fallback_and_singular() {
        let (hand, random, golden) = (documents(), random_documents(2000), golden_values());
        let docs: &[&[Value]] = &[&hand, &random, &golden[..300]];
        assert!(differential(FALLBACK, Some("query"), docs) > 1000);
        assert!(differential(SINGULAR, Some("singular"), docs) > 1000);
    }

    #[test]
    fn differential_shipped_mapping_paths() {
        let (hand, random, golden) = (documents(), random_documents(100), golden_values());
        assert!(golden.len() > 1000, "{} golden values", golden.len());
        let shipped = mapping_paths();
        assert!(shipped.len() > 100, "{} mapping paths", shipped.len());
        let strs: Vec<&str> = shipped.iter().map(String::as_str).collect();
        let selected = differential(&strs, None, &[&hand, &random, &golden]);
        assert!(selected > 10_000, "{selected}");
        let lists = strs
            .iter()
            .filter(|t| Path::compile(t).unwrap().kind_name() == "nodes")
            .count();
        assert!(lists >= 5, "{lists} node-list paths in the mappings");
    }
}
