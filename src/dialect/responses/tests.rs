//! The Responses stream's tests, item by item: the exact events and their order for text,
//! reasoning, tool calls and their mixes, with sequence numbers and ids.

use std::sync::Arc;

use serde_json::json;

use super::check::{checked, echo, kinds, last_response, part, run, usage};
use super::*;
use crate::dialect::StreamWriter;
use crate::dialect::answer::Usage;

#[test]
fn a_text_stream() {
    let (echo, out) = run(|e, out| {
        e.content(out, "Hel");
        e.content(out, "lo");
        e.add_usage(usage(5, 2));
        e.set_finish(json!("stop"));
        e.finish(out);
        e.content(out, "after the end: ignored");
    });
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev),
        [
            "created",
            "in_progress",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "completed"
        ]
    );
    let msg = ev[2]["item"]["id"].clone();
    assert_eq!(
        ev[2]["item"],
        json!({"id": msg, "type": "message", "role": "assistant", "status": "in_progress", "content": []})
    );
    assert_eq!(
        ev[3]["part"],
        json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []})
    );
    assert_eq!(
        ev[4],
        json!({"type": "response.output_text.delta", "sequence_number": 4, "item_id": msg,
               "output_index": 0, "content_index": 0, "delta": "Hel", "logprobs": []})
    );
    assert_eq!(ev[6]["text"], "Hello");
    assert_eq!(ev[7]["part"]["text"], "Hello");
    let r = last_response(&echo, &ev);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"][0], ev[8]["item"]);
    assert_eq!(r["output"][0]["status"], "completed");
    assert_eq!(r["usage"]["total_tokens"], 7);
    assert_eq!(r["id"], json!(echo.id));
    assert_eq!(r["instructions"], "Be brief.");
}

#[test]
fn reasoning_then_text() {
    let echo = echo();
    let mut w = ResponsesWriter::new(Arc::clone(&echo));
    let mut out = Vec::new();
    w.reasoning(&mut out, "Think", None);
    w.reasoning(&mut out, "ing.", Some("sig-1"));
    w.text(&mut out, "Hi");
    w.finish(&mut out, None, &Usage::default());
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev),
        [
            "created",
            "in_progress",
            "output_item.added",
            "content_part.added",
            "reasoning_text.delta",
            "reasoning_text.delta",
            "reasoning_text.done",
            "content_part.done",
            "output_item.done",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "completed"
        ]
    );
    let rs = ev[2]["item"]["id"].clone();
    assert!(rs.as_str().unwrap().starts_with("rs_"));
    assert_eq!(
        ev[2]["item"],
        json!({"id": rs, "type": "reasoning", "summary": [], "content": []})
    );
    assert_eq!(ev[3]["part"], json!({"type": "reasoning_text", "text": ""}));
    assert_eq!(
        ev[5],
        json!({"type": "response.reasoning_text.delta", "sequence_number": 5, "item_id": rs,
               "output_index": 0, "content_index": 0, "delta": "ing."})
    );
    assert_eq!(ev[6]["text"], "Thinking.");
    assert_eq!(
        ev[8]["item"],
        json!({"id": rs, "type": "reasoning", "summary": [],
               "content": [{"type": "reasoning_text", "text": "Thinking."}],
               "encrypted_content": "sig-1"})
    );
    assert_eq!(ev[9]["output_index"], 1);
    let r = last_response(&echo, &ev);
    assert_eq!(r["output"][0], ev[8]["item"]);
    assert_eq!(r["output"][1], ev[14]["item"]);
}

/// A signature emitted on its own (Anthropic's `signature_delta`, after the thinking deltas)
/// joins the open reasoning item as its `encrypted_content`, with no delta; the last of
/// several wins, and an empty one is not sent.
#[test]
fn a_signature_alone_joins_the_open_reasoning_item_without_a_delta() {
    let (echo, out) = run(|e, out| {
        e.reasoning(out, "Thinking.");
        e.reasoning_signature(out, "sig-0");
        e.reasoning_signature(out, "sig-1");
        e.reasoning_signature(out, "");
        e.content(out, "Hi");
        e.finish(out);
    });
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev),
        [
            "created",
            "in_progress",
            "output_item.added",
            "content_part.added",
            "reasoning_text.delta",
            "reasoning_text.done",
            "content_part.done",
            "output_item.done",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "completed"
        ]
    );
    let rs = ev[2]["item"]["id"].clone();
    assert_eq!(
        ev[7]["item"],
        json!({"id": rs, "type": "reasoning", "summary": [],
               "content": [{"type": "reasoning_text", "text": "Thinking."}],
               "encrypted_content": "sig-1"})
    );
    let r = last_response(&echo, &ev);
    assert_eq!(r["output"][0], ev[7]["item"]);
}

/// A signature with no reasoning text before it is a reasoning item of its own: empty text,
/// the signature as `encrypted_content`; the whole answer with the same content renders the
/// same item.
#[test]
fn a_signature_without_reasoning_text_is_a_reasoning_item_of_its_own() {
    let (echo, out) = run(|e, out| {
        e.reasoning_signature(out, "sig-1");
        e.content(out, "Hi");
        e.finish(out);
    });
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev)[2..7],
        [
            "output_item.added",
            "content_part.added",
            "reasoning_text.done",
            "content_part.done",
            "output_item.done",
        ]
    );
    assert_eq!(ev[4]["text"], "");
    let rs = ev[2]["item"]["id"].clone();
    let item = json!({"id": rs, "type": "reasoning", "summary": [],
        "content": [{"type": "reasoning_text", "text": ""}], "encrypted_content": "sig-1"});
    assert_eq!(ev[6]["item"], item);
    let r = last_response(&echo, &ev);
    assert_eq!(r["output"][0], item);
    assert_eq!(r["output"][1]["type"], "message");
    let whole = render(
        &crate::dialect::answer::Answer {
            text: Some("Hi".into()),
            reasoning_signature: Some("sig-1".into()),
            ..Default::default()
        },
        &echo,
    );
    let mut first = whole["output"][0].clone();
    first["id"] = rs;
    assert_eq!(first, item);
}

#[test]
fn two_tool_calls_stay_open_until_the_end_so_late_arguments_are_kept() {
    let (echo, out) = run(|e, out| {
        e.tool_call(
            out,
            part(json!({"key": 1, "id": "toolu_a", "name": "get_weather"})),
        );
        e.tool_call(out, part(json!({"key": 1, "arguments": "{\"ci"})));
        e.tool_call(out, part(json!({"key": 2, "name": "now"})));
        e.tool_call(out, part(json!({"key": 1, "arguments": "ty\":1}"})));
        e.finish(out);
    });
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev),
        [
            "created",
            "in_progress",
            "output_item.added",
            "function_call_arguments.delta",
            "output_item.added",
            "function_call_arguments.delta",
            "function_call_arguments.done",
            "output_item.done",
            "function_call_arguments.done",
            "output_item.done",
            "completed"
        ]
    );
    let fc = ev[2]["item"]["id"].clone();
    assert!(fc.as_str().unwrap().starts_with("fc_"));
    assert_eq!(
        ev[2]["item"],
        json!({"id": fc, "type": "function_call", "status": "in_progress", "call_id": "toolu_a",
               "name": "get_weather", "arguments": ""})
    );
    assert_eq!(
        ev[5],
        json!({"type": "response.function_call_arguments.delta", "sequence_number": 5,
               "item_id": fc, "output_index": 0, "delta": "ty\":1}"})
    );
    assert_eq!(ev[6]["arguments"], "{\"city\":1}");
    assert_eq!(ev[7]["item"]["arguments"], "{\"city\":1}");
    assert_eq!(ev[7]["item"]["status"], "completed");
    // No upstream id: a fresh call_id; no arguments: `{}`.
    assert!(
        ev[4]["item"]["call_id"]
            .as_str()
            .unwrap()
            .starts_with("call_")
    );
    assert_eq!(ev[8]["arguments"], "{}");
    let r = last_response(&echo, &ev);
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"], json!([ev[7]["item"], ev[9]["item"]]));
}

#[test]
fn text_is_closed_before_a_tool_call_opens() {
    let (echo, out) = run(|e, out| {
        e.content(out, "Checking.");
        e.tool_call(
            out,
            part(json!({"id": "call_1", "name": "f", "arguments": {"x": 1}})),
        );
        e.set_finish(json!("tool_calls"));
        e.finish(out);
    });
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev)[2..],
        [
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "output_item.added",
            "function_call_arguments.delta",
            "function_call_arguments.done",
            "output_item.done",
            "completed"
        ]
    );
    assert_eq!(ev[8]["output_index"], 1);
    assert_eq!(ev[11]["item"]["arguments"], "{\"x\":1}");
    assert_eq!(last_response(&echo, &ev)["status"], "completed");
}

#[test]
fn text_after_a_call_opens_a_second_message_and_the_call_closes_at_the_end() {
    let (_, out) = run(|e, out| {
        e.tool_call(out, part(json!({"key": 0, "name": "f"})));
        e.content(out, "and then");
        e.tool_call(out, part(json!({"key": 0, "arguments": "{}"})));
        e.finish(out);
    });
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev)[2..],
        [
            "output_item.added",
            "output_item.added",
            "content_part.added",
            "output_text.delta",
            "function_call_arguments.delta",
            "function_call_arguments.done",
            "output_item.done",
            "output_text.done",
            "content_part.done",
            "output_item.done",
            "completed"
        ]
    );
    assert_eq!(ev[6]["output_index"], 0);
}
