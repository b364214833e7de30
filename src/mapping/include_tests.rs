//! `include:` resolution: merging, cycles, missing files and sections, with locations.

use std::path::{Path, PathBuf};

use serde_json::json;
use serde_yaml::Value as Yaml;

use super::merge;
use crate::mapping::compile_file;

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rosetta-include-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn yaml(s: &str) -> Yaml {
    serde_yaml::from_str(s).unwrap()
}

const BASE: &str = "upstream:\n  base_url: http://base.invalid\ndefs:\n  greeting: {$concat: [\"hi \", $.model]}\nerrors:\n  message: $.error.message\nroutes:\n  chat:\n    path: /v1/chat\n    request:\n      model: $.model\n      greeting: {$use: greeting}\n      keep: $.user\n    response:\n      content: $.text\n  models:\n    method: GET\n    path: /v1/models\n    response:\n      models: $.data\n";

fn compile(path: &Path) -> Result<crate::mapping::Mapping, Vec<crate::mapping::LoadError>> {
    let src = std::fs::read_to_string(path).unwrap();
    compile_file(path, &src, &|_| None)
}

#[test]
fn maps_merge_key_by_key_operations_lists_and_scalars_replace_null_removes() {
    let base = yaml("a: {x: 1, y: {$concat: [a, b]}, z: [1, 2], w: 3}\nb: 1");
    let over = yaml("a: {x: 2, y: {$use: q}, z: [9], w: null, n: new}\nc: 2");
    let got = merge(base, over).unwrap();
    let got: serde_json::Value = serde_yaml::from_value(got).unwrap();
    assert_eq!(
        got,
        json!({"a": {"x": 2, "y": {"$use": "q"}, "z": [9], "n": "new"}, "b": 1, "c": 2})
    );
    assert!(merge(yaml("1"), Yaml::Null).is_none());
    // A plain map never merges into an operation, nor the other way round.
    let got = merge(yaml("{$concat: [a]}"), yaml("{k: v}")).unwrap();
    assert_eq!(got, yaml("{k: v}"));
}

#[test]
fn an_including_mapping_takes_defs_errors_routes_and_overrides_what_differs() {
    let d = dir();
    std::fs::write(d.join("base.yaml"), BASE).unwrap();
    std::fs::write(
        d.join("child.yaml"),
        "include: base.yaml\nupstream:\n  base_url: http://child.invalid\nroutes:\n  chat:\n    path: /other\n    request:\n      model: null\n      extra: {$const: 1}\n  models: null\n",
    )
    .unwrap();
    let m = compile(&d.join("child.yaml")).unwrap();
    assert_eq!(m.name, "child");
    assert_eq!(m.upstream.endpoints[0].label, "http://child.invalid");
    assert!(m.model_list.is_none(), "`models: null` removed the route");
    assert!(m.errors.message.is_some(), "errors came from the base");
    assert_eq!(m.sources, vec![d.join("base.yaml").canonicalize().unwrap()]);
    let p = crate::translate::proxy::prepare(
        &m,
        crate::mapping::Op::Chat,
        &json!({"model": "m1", "messages": [], "user": "u"}),
        &http::HeaderMap::new(),
    )
    .unwrap();
    assert_eq!(p.request.uri().path(), "/other");
    let body: serde_json::Value =
        serde_json::from_slice(&crate::ops::trace::full_bytes(p.request.body())).unwrap();
    assert_eq!(body, json!({"greeting": "hi m1", "keep": "u", "extra": 1}));
}

#[test]
fn includes_nest_and_take_only_what_they_name() {
    let d = dir();
    std::fs::write(d.join("base.yaml"), BASE).unwrap();
    std::fs::write(
        d.join("mid.yaml"),
        "include: {file: base.yaml, take: [defs]}\nupstream:\n  base_url: http://mid.invalid\nroutes:\n  chat:\n    path: /mid\n    request: {g: {$use: greeting}}\n    response: {content: $.t}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("top.yaml"),
        "include: [mid.yaml]\nupstream:\n  base_url: http://top.invalid\n",
    )
    .unwrap();
    let m = compile(&d.join("top.yaml")).unwrap();
    assert!(m.errors.message.is_none(), "mid took only the base's defs");
    assert_eq!(m.sources.len(), 2, "{:?}", m.sources);
    let p = crate::translate::proxy::prepare(
        &m,
        crate::mapping::Op::Chat,
        &json!({"model": "m2", "messages": []}),
        &http::HeaderMap::new(),
    )
    .unwrap();
    assert_eq!(p.request.uri().path(), "/mid");
}

#[test]
fn a_cycle_is_refused_with_file_line_and_location() {
    let d = dir();
    std::fs::write(
        d.join("a.yaml"),
        "# a\nupstream:\n  base_url: http://a.invalid\ninclude: b.yaml\n",
    )
    .unwrap();
    std::fs::write(
        d.join("b.yaml"),
        "upstream:\n  base_url: http://b.invalid\ninclude:\n  - a.yaml\n",
    )
    .unwrap();
    let errors = compile(&d.join("a.yaml")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!(e.file, d.join("b.yaml"));
    assert_eq!(e.location, "include[0]");
    assert_eq!(e.line, Some(4));
    assert!(
        e.message
            .contains("include cycle: a.yaml -> b.yaml -> a.yaml"),
        "{e}"
    );
    // Including itself is the shortest cycle.
    std::fs::write(
        d.join("c.yaml"),
        "upstream:\n  base_url: http://c.invalid\ninclude: c.yaml\n",
    )
    .unwrap();
    let errors = compile(&d.join("c.yaml")).unwrap_err();
    assert!(errors[0].message.contains("include cycle"), "{errors:?}");
    assert_eq!(errors[0].line, Some(3));
}

#[test]
fn a_missing_file_or_section_is_refused_with_file_line_and_location() {
    let d = dir();
    std::fs::write(d.join("base.yaml"), BASE).unwrap();
    std::fs::write(
        d.join("m.yaml"),
        "upstream:\n  base_url: http://m.invalid\ninclude:\n  - base.yaml\n  - nowhere.yaml\n  - {file: base.yaml, take: [pricing]}\n  - {file: base.yaml, take: [upstream]}\n",
    )
    .unwrap();
    let errors = compile(&d.join("m.yaml")).unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 3, "{shown:#?}");
    assert_eq!(errors[0].file, d.join("m.yaml"));
    assert_eq!(errors[0].line, Some(5));
    assert_eq!(errors[0].location, "include[1]");
    assert!(errors[0].message.contains("nowhere.yaml"), "{}", shown[0]);
    assert_eq!(errors[1].location, "include[2].take");
    assert_eq!(errors[1].line, Some(6));
    assert!(
        errors[1].message.contains("no `pricing` section"),
        "{}",
        shown[1]
    );
    assert!(
        errors[2].message.contains("cannot take \"upstream\""),
        "{}",
        shown[2]
    );
}
