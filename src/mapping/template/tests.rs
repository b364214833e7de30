//! The template language's tests: one line each, template, input and expected output.

use std::collections::BTreeSet;

use super::eval::*;
use super::scope::*;
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
    let e = compile_err("{a: {$summ: [1]}, b: {$map: $.x}, c: \"$.[\", d: {$join: $.x, sepp: 1}}");
    assert!(e.contains("t.a.$summ: unknown directive \"$summ\""), "{e}");
    assert!(e.contains("t.b.$map: $map needs `to`"), "{e}");
    assert!(e.contains("t.c: invalid JSONPath"), "{e}");
    assert!(e.contains("unknown option \"sepp\" for $join"), "{e}");
    assert!(compile_err("{$replace: $.a, pattern: \"(\"}").contains("invalid regex"));
    assert!(compile_err("{$use: nope}").contains("no definition named"));
    assert!(compile_err("{$eq: [1]}").contains("two operands"));
    assert!(compile_err("{$if: 1, $not: 2}").contains("only one directive"));
}

#[test]
fn definitions_at_the_root_are_evaluated_once_and_nowhere_else() {
    let defs: Defs = [
        (
            "n".to_string(),
            serde_yaml::from_str("{$len: $.items}").unwrap(),
        ),
        (
            "twice".to_string(),
            serde_yaml::from_str("{$sum: [{$use: n}, {$use: n}]}").unwrap(),
        ),
    ]
    .into();
    // `n` at the root (four uses, two through `twice`), and inside `$map`, where the focus is
    // each item (its own length, never the root's memoized value).
    let template = "{a: {$use: n}, b: {$use: twice}, c: {$map: $.items, to: {$use: n}}, \
                    d: {$map: $.items, as: it, to: {$use: twice}}}";
    let y: Yaml = serde_yaml::from_str(template).unwrap();
    let mut errors = Vec::new();
    let e = compile(&y, "t", &defs, &mut errors, &mut BTreeSet::new());
    assert!(errors.is_empty(), "{errors:?}");
    let input = json!({"items": [{"items": [1]}, {"items": [1, 2, 3]}]});
    let globals = [("root", &input)];
    let expected = json!({"a": 2, "b": 4, "c": [1, 3], "d": [2, 6]});
    assert_eq!(
        eval(&e, Scope::new(&input, &globals)),
        Some(expected.clone())
    );
    let memo = Memo::default();
    assert_eq!(
        eval(&e, Scope::memoized(&input, &globals, &memo)),
        Some(expected)
    );
    // One entry per definition used at the root: `n` and `twice`, each evaluated once.
    assert_eq!(memo.kept(), 2);
}
