//! The per-request report on a small mapping: each kind of loss, and none where none is.

use serde_json::json;

use super::*;
use crate::mapping::compile_file;

fn route_reads(request: &str) -> Node {
    let src = format!(
        "upstream: {{base_url: http://127.0.0.1:9}}\nroutes:\n  chat:\n    path: /x\n    request: {request}\n    response: {{content: $.text}}\n"
    );
    compile_file(std::path::Path::new("t.yaml"), &src, &|_| None)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .chat
        .unwrap()
        .reads
}

fn dropped(reads: &Node, request: serde_json::Value, dialect: &dyn DialectFields) -> Vec<String> {
    let mut out = Dropped::default();
    check(reads, Op::Chat, &request, dialect, &mut out);
    out.names().map(str::to_string).collect()
}

const PARTS: &str = "{m: {$map: $.messages, to: {c: {$map: $.content, to: {$lookup: $.type, table: {text: $.text}}}}}, t: $.temperature, c: {$lookup: $.tool_choice, table: {none: 0}}, f: {$if: {$eq: [$.response_format.type, json_schema]}, then: 1}}";

#[test]
fn fields_values_kinds_and_parts_the_route_does_not_take_are_named() {
    let reads = route_reads(PARTS);
    let request = json!({
        "model": "m", "temperature": 0.2, "seed": 7,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}],
        "tool_choice": "required",
        "response_format": {"type": "json_object"},
    });
    assert_eq!(
        dropped(&reads, request, &Canonical),
        [
            "messages[].content[].input_audio",
            "response_format=json_object",
            "seed",
            "tool_choice=required"
        ]
    );
}

#[test]
fn defaults_nulls_and_what_the_engine_honours_lose_nothing() {
    let reads = route_reads(PARTS);
    let request = json!({
        "model": "m", "messages": [{"role": "user", "content": "hi"}],
        "n": 1, "logprobs": false, "seed": null, "stream": false, "tool_choice": "auto",
        "stream_options": {"include_usage": true}, "response_format": {"type": "text"},
        "parallel_tool_calls": true, "presence_penalty": 0,
    });
    assert!(dropped(&reads, request, &Canonical).is_empty());
}

#[test]
fn responses_clients_read_their_own_names() {
    let reads = route_reads(PARTS);
    let request = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], "max_completion_tokens": 5});
    assert_eq!(
        dropped(&reads, request, &Responses),
        ["max_output_tokens", "input[].content[].input_image"]
    );
}

#[test]
fn entries_are_printable_bounded_and_labelled() {
    let mut d = Dropped::default();
    d.note("bad\nna,me");
    for i in 0..40 {
        d.note(&format!("x{i}"));
    }
    let names: Vec<&str> = d.names().collect();
    assert_eq!(names[0], "bad?na?me");
    assert_eq!(names.len(), MAX_ENTRIES + 1);
    assert_eq!(*names.last().unwrap(), "...");
    assert!(d.labels().all(|l| l == LABELS.len()));
    assert!(d.header_value().is_some());
    let e = d.refusal("m").to_json();
    assert_eq!(e["error"]["code"], "unsupported_parameter");
    assert_eq!(e["error"]["param"], "bad?na?me");
}

#[test]
fn strictness_comes_from_the_client_or_the_mapping() {
    let src = |options: &str| {
        format!(
            "upstream: {{base_url: http://127.0.0.1:9}}\n{options}routes:\n  chat:\n    path: /x\n    request: {{t: $.temperature, m: $.messages}}\n    response: {{content: $.text}}\n"
        )
    };
    let lenient = compile_file(std::path::Path::new("a.yaml"), &src(""), &|_| None).unwrap();
    let reject = compile_file(
        std::path::Path::new("b.yaml"),
        &src("options: {unsupported: reject}\n"),
        &|_| None,
    )
    .unwrap();
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "seed": 1});
    let none = HeaderMap::new();
    let mut strict_headers = HeaderMap::new();
    strict_headers.insert("x-rosetta-strict", HeaderValue::from_static("true"));
    let ok = settle(&lenient, Op::Chat, &request, Vec::new(), &none).unwrap();
    assert_eq!(ok.names().collect::<Vec<_>>(), ["seed"]);
    for (m, h) in [(&lenient, &strict_headers), (&reject, &none)] {
        let e = settle(m, Op::Chat, &request, Vec::new(), h)
            .unwrap_err()
            .to_json();
        assert_eq!(e["error"]["code"], "unsupported_parameter");
        assert_eq!(e["error"]["param"], "seed");
    }
    // Nothing lost: nothing refused, even when strict.
    let mut fine = request.clone();
    fine.as_object_mut().unwrap().remove("seed");
    assert!(
        settle(&reject, Op::Chat, &fine, Vec::new(), &strict_headers)
            .unwrap()
            .is_empty()
    );
    // What a dialect's bridge already left out comes first.
    let d = settle(
        &lenient,
        Op::Chat,
        &request,
        vec!["tools[0]:mcp".into()],
        &none,
    )
    .unwrap();
    assert_eq!(d.names().collect::<Vec<_>>(), ["tools[0]:mcp", "seed"]);
}
