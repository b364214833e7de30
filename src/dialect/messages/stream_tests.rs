use serde_json::{Value, json};

use super::*;
use crate::dialect::Emitter;
use crate::dialect::answer::ToolCallPart;

fn parse(out: &[u8]) -> Vec<(String, Value)> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .split("\n\n")
        .filter(|b| !b.is_empty())
        .map(|b| {
            let (event, data) = b.split_once('\n').unwrap();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_string();
            assert_eq!(data["type"], event.as_str());
            (event, data)
        })
        .collect()
}

#[test]
fn blocks_are_dense_in_output_order_and_the_signature_comes_last_in_its_block() {
    let mut e = Emitter::new(MessagesWriter::new("client-model"));
    let mut out = Vec::new();
    let part = |v: Value| ToolCallPart::from_value(&v);
    e.reasoning(&mut out, "Let me ");
    e.reasoning_signature(&mut out, "sig-1");
    e.reasoning(&mut out, "see.");
    e.reasoning_signature(&mut out, "sig-2");
    e.content(&mut out, "Checking.");
    e.tool_call(&mut out, part(json!({"key": 0, "id": "t1", "name": "f"})));
    e.tool_call(&mut out, part(json!({"key": 0, "arguments": "{\"x\""})));
    e.tool_call(&mut out, part(json!({"key": 0, "arguments": ":1}"})));
    e.tool_call(
        &mut out,
        part(json!({"key": 1, "name": "g", "arguments": "{}"})),
    );
    e.add_usage(Usage {
        prompt_tokens: Some(10),
        completion_tokens: Some(5),
        cached_tokens: Some(4),
        reasoning_tokens: None,
    });
    e.finish(&mut out);
    let ev = parse(&out);
    let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(ev[0].1["message"]["model"], "client-model");
    assert!(
        ev[0].1["message"]["id"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    assert_eq!(
        ev[5].1["delta"],
        json!({"type": "signature_delta", "signature": "sig-2"})
    );
    let starts: Vec<u64> = ev
        .iter()
        .filter(|(k, _)| k == "content_block_start")
        .map(|(_, d)| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 1, 2, 3]);
    assert_eq!(ev[10].1["content_block"]["id"], "t1");
    assert_eq!(ev[12].1["index"], 2);
    assert!(
        ev[14].1["content_block"]["id"]
            .as_str()
            .unwrap()
            .starts_with("toolu_")
    );
    assert_eq!(
        ev[17].1["delta"],
        json!({"stop_reason": "tool_use", "stop_sequence": null})
    );
    assert_eq!(ev[17].1["usage"]["input_tokens"], 6);
    assert_eq!(ev[17].1["usage"]["cache_read_input_tokens"], 4);
}

#[test]
fn a_failure_is_an_error_event_and_nothing_after_it() {
    let mut e = Emitter::new(MessagesWriter::new("m"));
    let mut out = Vec::new();
    e.content(&mut out, "partial");
    e.fail(
        &mut out,
        &ProxyError::UpstreamStreamError {
            message: "Overloaded".into(),
            kind: Some("overloaded_error".into()),
            code: None,
        },
    );
    e.finish(&mut out);
    let ev = parse(&out);
    let (last, data) = ev.last().unwrap();
    assert_eq!(last, "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert!(!ev.iter().any(|(k, _)| k == "message_stop"));
}

#[test]
fn an_empty_answer_still_starts_and_stops() {
    let mut e = Emitter::new(MessagesWriter::new("m"));
    let mut out = Vec::new();
    e.set_finish(json!("length"));
    e.finish(&mut out);
    let ev = parse(&out);
    let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["message_start", "ping", "message_delta", "message_stop"]
    );
    assert_eq!(ev[2].1["delta"]["stop_reason"], "max_tokens");
}

#[test]
fn a_native_writer_writes_only_the_failure() {
    let mut e = Emitter::new(NativeWriter);
    let mut out = Vec::new();
    e.content(&mut out, "x");
    e.finish(&mut out);
    assert!(out.is_empty());
    let mut e = Emitter::new(NativeWriter);
    e.fail(
        &mut out,
        &ProxyError::BadUpstreamResponse {
            message: "cut".into(),
        },
    );
    assert_eq!(parse(&out)[0].1["error"]["type"], "api_error");
}
