//! The Responses stream's tests, by ending: completed, incomplete, failed (before and after
//! output), empty; the final response of a stream against [`render`] of the answer it folds
//! into; the dialect's dispatch.

use std::sync::Arc;

use serde_json::{Value, json};

use super::check::{checked, echo, kinds, last_response, part, run, usage};
use super::*;
use crate::dialect::answer::{Answer, Usage};
use crate::dialect::{Dialect, Emitter, Fold, StreamWriter};
use crate::error::ProxyError;

#[test]
fn length_ends_incomplete_with_the_last_item_incomplete() {
    for (finish, reason) in [
        ("length", "max_output_tokens"),
        ("content_filter", "content_filter"),
    ] {
        let (echo, out) = run(|e, out| {
            e.content(out, "One, two,");
            e.add_usage(usage(12, 8));
            e.set_finish(json!(finish));
            e.finish(out);
        });
        let ev = checked(&out);
        assert_eq!(
            kinds(&ev)[5..],
            [
                "output_text.done",
                "content_part.done",
                "output_item.done",
                "incomplete"
            ]
        );
        assert_eq!(ev[7]["item"]["status"], "incomplete");
        let r = last_response(&echo, &ev);
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"], json!({"reason": reason}));
        assert_eq!(r["completed_at"], Value::Null);
        assert_eq!(r["output"][0], ev[7]["item"]);
        assert_eq!(r["usage"]["total_tokens"], 20);
    }
}

fn overloaded() -> ProxyError {
    ProxyError::UpstreamStreamError {
        message: "Overloaded".into(),
        kind: Some("overloaded_error".into()),
        code: None,
    }
}

#[test]
fn a_failure_mid_stream_is_an_error_then_response_failed_with_the_output_so_far() {
    let (echo, out) = run(|e, out| {
        e.content(out, "partial");
        e.tool_call(
            out,
            part(json!({"id": "c1", "name": "f", "arguments": "{\"a\""})),
        );
        e.fail(out, &overloaded());
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
            "error",
            "failed"
        ]
    );
    assert_eq!(
        ev[10],
        json!({"type": "error", "sequence_number": 10, "code": "overloaded_error",
               "message": "Overloaded", "param": null})
    );
    let r = last_response(&echo, &ev);
    assert_eq!(r["status"], "failed");
    assert_eq!(
        r["error"],
        json!({"code": "overloaded_error", "message": "Overloaded"})
    );
    assert_eq!(r["usage"], Value::Null);
    assert_eq!(r["output"][0], ev[7]["item"]);
    assert_eq!(r["output"][0]["status"], "completed");
    // The call never finished: it is in the output as far as it got, not done.
    assert_eq!(r["output"][1]["status"], "incomplete");
    assert_eq!(r["output"][1]["arguments"], "{\"a\"");
}

#[test]
fn a_failure_before_anything_still_starts_the_response() {
    let (echo, out) = run(|e, out| {
        e.fail(
            out,
            &ProxyError::Timeout {
                message: "the upstream went silent".into(),
            },
        );
    });
    let ev = checked(&out);
    assert_eq!(kinds(&ev), ["created", "in_progress", "error", "failed"]);
    assert_eq!(ev[2]["code"], "upstream_timeout");
    let r = last_response(&echo, &ev);
    assert_eq!(r["output"], json!([]));
    assert_eq!(r["error"]["message"], "the upstream went silent");
}

#[test]
fn an_empty_answer_completes_with_no_output() {
    let (echo, out) = run(|e, out| e.finish(out));
    let ev = checked(&out);
    assert_eq!(kinds(&ev), ["created", "in_progress", "completed"]);
    let r = last_response(&echo, &ev);
    assert_eq!(r["output"], json!([]));
    assert_eq!(r["usage"]["total_tokens"], 0);
    assert!(r["completed_at"].is_u64());
}

/// Reasoning (with a signature), text, a call with an upstream id and arguments in pieces, a
/// call with neither, as a stream's emissions bring them.
fn script<W: StreamWriter>(e: &mut Emitter<W>, out: &mut Vec<u8>, finish: &str) {
    e.reasoning(out, "Let me ");
    e.reasoning(out, "see.");
    e.reasoning_signature(out, "sig-1");
    e.content(out, "Hel");
    e.content(out, "lo");
    e.tool_call(out, part(json!({"key": 0, "id": "t1", "name": "f"})));
    e.tool_call(out, part(json!({"key": 0, "arguments": "{\"x\""})));
    e.tool_call(out, part(json!({"key": 7, "name": "g"})));
    e.tool_call(out, part(json!({"key": 0, "arguments": ":1}"})));
    e.add_usage(Usage {
        cached_tokens: Some(1),
        reasoning_tokens: Some(2),
        ..usage(3, 4)
    });
    e.set_finish(json!(finish));
    e.finish(out);
}

/// A response with its item ids, minted call ids and completion time blanked.
fn masked(mut r: Value) -> Value {
    r["completed_at"] = json!(r["completed_at"].is_u64());
    for (i, item) in r["output"].as_array_mut().unwrap().iter_mut().enumerate() {
        item["id"] = json!(i);
        if item["call_id"]
            .as_str()
            .is_some_and(|c| c.starts_with("call_"))
        {
            item["call_id"] = json!("minted");
        }
    }
    r
}

#[test]
fn a_stream_ends_with_the_response_render_gives_for_its_folded_answer() {
    for finish in ["stop", "length", "content_filter"] {
        let mut fold = Emitter::new(Fold::default());
        script(&mut fold, &mut Vec::new(), finish);
        let (echo, out) = run(|e, out| script(e, out, finish));
        let streamed = last_response(&echo, &checked(&out));
        let rendered = render(&fold.writer.answer, &echo);
        assert_eq!(masked(streamed.clone()), masked(rendered), "{finish}");
        assert_eq!(streamed["output"].as_array().unwrap().len(), 4);
        assert_eq!(streamed["output"][0]["encrypted_content"], "sig-1");
        assert_eq!(streamed["output"][2]["arguments"], "{\"x\":1}");
        assert_eq!(streamed["output"][3]["arguments"], "{}");
    }
}

#[test]
fn the_responses_dialect_renders_and_writes_with_its_echo() {
    let echo = echo();
    let dialect = Dialect::Responses(Arc::clone(&echo));
    let answer = Answer {
        text: Some("Hi".into()),
        ..Answer::default()
    };
    let r = dialect.render(&answer, "not this name");
    assert_eq!(r["id"], json!(echo.id));
    assert_eq!(r["model"], "gpt-x");
    assert_eq!(masked(r), masked(render(&answer, &echo)));
    let mut w = dialect.writer("not this name", false);
    let mut out = Vec::new();
    w.text(&mut out, "Hi");
    w.finish(&mut out, None, &Usage::default());
    let ev = checked(&out);
    let r = last_response(&echo, &ev);
    assert_eq!(
        (r["model"].as_str(), r["usage"].is_object()),
        (Some("gpt-x"), true)
    );
}

/// Writes one stream of each kind to `target/responses-sse/NAME.sse`, for checking with a
/// client library by hand (`cargo test --lib dump_streams -- --ignored`).
#[test]
#[ignore]
fn dump_streams() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/responses-sse");
    std::fs::create_dir_all(&dir).unwrap();
    let mut streams = vec![
        ("all", run(|e, out| script(e, out, "stop")).1),
        ("length", run(|e, out| script(e, out, "length")).1),
        ("empty", run(|e, out| e.finish(out)).1),
    ];
    streams.push((
        "failed",
        run(|e, out| {
            e.content(out, "partial");
            e.fail(out, &overloaded());
        })
        .1,
    ));
    streams.push((
        "interleaved",
        run(|e, out| {
            e.tool_call(out, part(json!({"key": 0, "name": "f"})));
            e.tool_call(out, part(json!({"key": 1, "name": "g", "arguments": "{}"})));
            e.content(out, "text between");
            e.tool_call(out, part(json!({"key": 0, "arguments": "{\"late\":true}"})));
            e.finish(out);
        })
        .1,
    ));
    for (name, out) in streams {
        checked(&out);
        std::fs::write(dir.join(format!("{name}.sse")), out).unwrap();
    }
}

/// A client that asks for a reasoning summary (Codex does, by default) gets the reasoning as
/// summary text, streamed and whole, with the signature still as `encrypted_content`.
#[test]
fn reasoning_is_a_summary_when_the_client_asks_for_one() {
    let echo = Arc::new(Echo::from_request(
        &json!({"model": "gpt-x", "reasoning": {"effort": "high", "summary": "auto"}}),
        1_750_000_000,
    ));
    assert!(echo.wants_summary());
    let mut w = ResponsesWriter::new(Arc::clone(&echo));
    let mut out = Vec::new();
    w.reasoning(&mut out, "Think", None);
    w.reasoning(&mut out, "ing.", Some("sig-1"));
    w.text(&mut out, "Hi");
    w.finish(&mut out, None, &Usage::default());
    let ev = checked(&out);
    assert_eq!(
        kinds(&ev)[2..9],
        [
            "output_item.added",
            "reasoning_summary_part.added",
            "reasoning_summary_text.delta",
            "reasoning_summary_text.delta",
            "reasoning_summary_text.done",
            "reasoning_summary_part.done",
            "output_item.done",
        ]
    );
    let rs = ev[2]["item"]["id"].clone();
    assert_eq!(
        ev[2]["item"],
        json!({"id": rs, "type": "reasoning", "summary": []})
    );
    assert_eq!(
        ev[5],
        json!({"type": "response.reasoning_summary_text.delta", "sequence_number": 5,
               "item_id": rs, "output_index": 0, "summary_index": 0, "delta": "ing."})
    );
    assert_eq!(ev[6]["text"], "Thinking.");
    let done = json!({"id": rs, "type": "reasoning", "encrypted_content": "sig-1",
        "summary": [{"type": "summary_text", "text": "Thinking."}]});
    assert_eq!(ev[8]["item"], done);
    let whole = render(
        &Answer {
            reasoning: Some("Thinking.".into()),
            reasoning_signature: Some("sig-1".into()),
            ..Default::default()
        },
        &echo,
    );
    assert_eq!(whole["output"][0]["summary"], done["summary"]);
    assert!(whole["output"][0].get("content").is_none());
}
