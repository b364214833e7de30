//! The reads analysis on small routes: each construct moves a field between read and unread.

use super::*;
use crate::mapping::compile_file;

/// The chat route's reads of a mapping whose chat `request` (and `defs`) are given.
fn reads(defs: &str, request: &str) -> Node {
    let src = format!(
        "upstream: {{base_url: http://127.0.0.1:9}}\ndefs:\n{defs}\nroutes:\n  chat:\n    path: /x\n    request: {request}\n    response: {{content: $.text}}\n"
    );
    let m = compile_file(std::path::Path::new("t.yaml"), &src, &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"));
    m.chat.expect("chat route").reads
}

fn covered(n: &Node, path: &[&str]) -> &'static str {
    match n.cover(path) {
        Cover::None => "none",
        Cover::Whole => "whole",
        Cover::Part(_) => "part",
    }
}

#[test]
fn a_copied_field_is_whole_and_a_tested_one_is_read_in_part() {
    let r = reads("  x: 1", "{t: $.temperature, s: {$if: $.stream, then: 1}}");
    assert_eq!(covered(&r, &["temperature"]), "whole");
    assert_eq!(covered(&r, &["stream"]), "part");
    assert_eq!(covered(&r, &["seed"]), "none");
    // The response reads the upstream's `$.text`, not the request's.
    assert_eq!(covered(&r, &["text"]), "none");
}

#[test]
fn omit_copies_all_but_its_keys() {
    let r = reads("  x: 1", "{$omit: $, keys: [store]}");
    assert_eq!(covered(&r, &["seed"]), "whole");
    assert_eq!(covered(&r, &["store"]), "none");
}

#[test]
fn map_and_use_follow_the_focus_into_the_parts() {
    let defs = "  part: {$lookup: $.type, table: {text: $.text, image_url: $.image_url.url}}";
    let r = reads(
        defs,
        "{m: {$map: $.messages, to: {$map: $.content, to: {$use: part}}}}",
    );
    let parts = ["messages", EACH, "content", EACH];
    assert!(r.takes_kind(&parts, "text"));
    assert!(r.takes_kind(&parts, "image_url"));
    assert!(!r.takes_kind(&parts, "input_audio"));
    // No top-level `text` is read: the part's is.
    assert_eq!(covered(&r, &["text"]), "none");
}

#[test]
fn a_lookup_with_a_default_takes_any_type() {
    let defs = "  part: {$lookup: $.type, table: {text: $.text}, default: unknown}";
    let r = reads(
        defs,
        "{m: {$map: \"$.messages[*].content[*]\", to: {$use: part}}}",
    );
    assert!(r.takes_kind(&["messages", EACH, "content", EACH], "file"));
}

#[test]
fn lookup_keys_and_eq_constants_are_the_values_taken() {
    let r = reads(
        "  x: 1",
        "{c: {$lookup: $.tool_choice, table: {auto: a, none: n}}, f: {$if: {$eq: [$.response_format.type, json_schema]}, then: $.response_format.json_schema.schema}}",
    );
    assert!(r.takes_value(&["tool_choice"], "none"));
    assert!(!r.takes_value(&["tool_choice"], "required"));
    assert!(r.takes_kind(&["response_format"], "json_schema"));
    assert!(!r.takes_kind(&["response_format"], "json_object"));
}

#[test]
fn a_string_branch_of_a_type_lookup_copies_no_parts() {
    let defs = "  text: {$lookup: {$type: $}, table: {string: $, array: {$join: {$map: $, to: $.text}, sep: \"\"}}}";
    let r = reads(
        defs,
        "{m: {$map: $.messages, to: {$use: text, of: $.content}}}",
    );
    let parts = ["messages", EACH, "content", EACH];
    assert!(r.takes_kind(&parts, "text"));
    assert!(!r.takes_kind(&parts, "image_url"));
}

#[test]
fn map_variables_and_request_in_answers_are_request_places() {
    let r = reads(
        "  x: 1",
        "{m: {$map: $.messages, as: msg, to: {n: $msg.name}}, u: $root.user}",
    );
    assert_eq!(covered(&r, &["messages", EACH, "name"]), "whole");
    assert_eq!(covered(&r, &["user"]), "whole");
    let src = "upstream: {base_url: http://127.0.0.1:9}\nroutes:\n  chat:\n    path: /x\n    request: {}\n    response: {content: $.text, usage: {n: $request.n}}\n";
    let m = compile_file(std::path::Path::new("t.yaml"), src, &|_| None).unwrap();
    let r = m.chat.unwrap().reads;
    assert_eq!(covered(&r, &["n"]), "whole");
    assert_eq!(covered(&r, &["text"]), "none");
}
