//! JSONPath tests, differential against jsonpath-rust included.

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
    let doc =
        json!({"a": {"b": [1, 2, 3]}, "m": [{"r": "s", "c": "x"}, {"r": "u", "c": "y"}], "k y": 5});
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
            } else if path.extension().is_some_and(|e| e == "yaml")
                // Responses cases reuse the chat cases' upstream answers: their values add
                // time, not new shapes.
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("responses-"))
            {
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
