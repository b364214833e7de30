//! Tests of `crate::translate::rewrite`.

use super::*;
use crate::dialect::Dialect;
use crate::mapping::compile_file;
use serde_json::json;
use std::path::Path;

const MAPPING: &str = r#"
upstream: {base_url: "http://x"}
routes:
  chat:
    path: /s
    response: {content: $.text}
    stream:
      framing: sse
      rules:
        - on: {event: start}
          set: {input: $.usage.in}
        - on: {event: ping}
        - on: {event: block_start, if: {$eq: [$.block.type, tool]}}
          emit: {tool_calls: {key: $.index, id: $.block.id, name: $.block.name}}
        - on: {event: delta, if: {$eq: [$.delta.type, text]}}
          emit: {content: $.delta.text}
        - on: {event: delta, if: {$eq: [$.delta.type, json]}}
          emit: {tool_calls: {key: $.index, arguments: $.delta.partial}}
        - on: {event: stop}
          emit: {finish_reason: {$lookup: $.reason, table: {done: stop, tool: tool_calls}}, usage: {prompt_tokens: $state.input, completion_tokens: $.out}}
        - on: {event: oops}
          emit: {error: $.error}
        - on: {data: "[DONE]"}
          emit: {end: true}
"#;

fn rewriter(include_usage: bool) -> StreamRewriter {
    let m = compile_file(Path::new("t.yaml"), MAPPING, &|_| None).unwrap();
    StreamRewriter::new(
        Arc::new(m),
        Op::Chat,
        Arc::new(json!({})),
        json!({}),
        Dialect::Chat.writer("m", include_usage),
    )
    .unwrap()
}

fn run(r: &mut StreamRewriter, input: &str) -> String {
    let mut out = Vec::new();
    for b in input.as_bytes().chunks(7) {
        r.feed(b, &mut out);
    }
    r.end(&mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn a_stream_folds_into_the_normalized_answer() {
    use crate::dialect::Fold;
    use crate::dialect::answer::{Answer, Finish, ToolCall, Usage};
    let m = compile_file(Path::new("t.yaml"), MAPPING, &|_| None).unwrap();
    let mut r = StreamRewriter::new(
        Arc::new(m),
        Op::Chat,
        Arc::new(json!({})),
        json!({}),
        Fold::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    r.feed(b"event: start\ndata: {\"usage\":{\"in\":9}}\n\nevent: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\nevent: block_start\ndata: {\"index\":4,\"block\":{\"type\":\"tool\",\"id\":\"t1\",\"name\":\"f\"}}\n\nevent: delta\ndata: {\"index\":4,\"delta\":{\"type\":\"json\",\"partial\":\"{}\"}}\n\nevent: stop\ndata: {\"reason\":\"done\",\"out\":5}\n\n", &mut out);
    r.end(&mut out);
    assert!(out.is_empty());
    let expected = Answer {
        text: Some("Hi".into()),
        tool_calls: vec![ToolCall {
            id: Some("t1".into()),
            name: "f".into(),
            arguments: Some("{}".into()),
        }],
        finish: Some(Finish::Stop),
        usage: Usage {
            prompt_tokens: Some(9),
            completion_tokens: Some(5),
            ..Usage::default()
        },
        ..Answer::default()
    };
    assert_eq!(r.writer.writer.answer, expected);
    assert_eq!(r.usage().completion_tokens, Some(5));
}

/// A mapping that signs its reasoning: whole, and in a stream with one signature event per
/// thinking block.
const SIGNED: &str = r#"
upstream: {base_url: "http://x"}
routes:
  chat:
    path: /s
    response: {reasoning: $.thinking, reasoning_signature: "$.blocks[*].signature", content: $.text}
    stream:
      framing: sse
      rules:
        - on: {event: think}
          emit: {reasoning: $.text}
        - on: {event: sign}
          emit: {reasoning_signature: $.signature}
        - on: {event: text}
          emit: {content: $.text, end: true}
"#;

const SIGNED_STREAM: &str = "event: think\ndata: {\"text\":\"Hm\"}\n\nevent: sign\ndata: {\"signature\":\"s1\"}\n\nevent: think\ndata: {\"text\":\"m.\"}\n\nevent: sign\ndata: {\"signature\":\"\"}\n\nevent: sign\ndata: {\"signature\":\"s2\"}\n\nevent: text\ndata: {\"text\":\"Hi\"}\n\n";

#[test]
fn a_signature_reaches_the_answer_whole_and_streamed_and_the_last_one_wins() {
    use crate::dialect::Fold;
    use crate::dialect::answer::Answer;
    let m = Arc::new(compile_file(Path::new("t.yaml"), SIGNED, &|_| None).unwrap());
    let route = m.route(Op::Chat).unwrap();
    let upstream = json!({"thinking": "Hmm.", "text": "Hi",
        "blocks": [{"signature": "s1"}, {"signature": "s2"}]});
    let normalized = eval_fields(
        &route.response,
        &upstream,
        &json!({}),
        &json!({}),
        &json!({}),
    );
    let whole = Answer::from_normalized(&normalized);
    assert_eq!(whole.reasoning_signature.as_deref(), Some("s2"));
    let mut r = StreamRewriter::new(
        Arc::clone(&m),
        Op::Chat,
        Arc::new(json!({})),
        json!({}),
        Fold::default(),
    )
    .unwrap();
    let mut out = Vec::new();
    for b in SIGNED_STREAM.as_bytes().chunks(5) {
        r.feed(b, &mut out);
    }
    r.end(&mut out);
    assert!(r.writer.writer.failed.is_none());
    assert_eq!(r.writer.writer.answer, whole);
}

/// Chat has no place for a signature: the chat stream is the same, chunk for chunk, with
/// or without the signature events.
#[test]
fn a_signature_leaves_the_chat_stream_unchanged() {
    let m = Arc::new(compile_file(Path::new("t.yaml"), SIGNED, &|_| None).unwrap());
    let chunks = |input: &str| -> Vec<Value> {
        let mut r = StreamRewriter::new(
            Arc::clone(&m),
            Op::Chat,
            Arc::new(json!({})),
            json!({}),
            Dialect::Chat.writer("m", true),
        )
        .unwrap();
        let out = run(&mut r, input);
        out.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| match serde_json::from_str::<Value>(d) {
                Ok(mut v) => {
                    v["id"] = json!("x");
                    v["created"] = json!(0);
                    v
                }
                Err(_) => json!(d),
            })
            .collect()
    };
    let unsigned: String = SIGNED_STREAM
        .split("\n\n")
        .filter(|e| !e.starts_with("event: sign"))
        .map(|e| format!("{e}\n\n"))
        .collect();
    let with = chunks(SIGNED_STREAM);
    assert_eq!(with, chunks(&unsigned));
    assert!(
        with.iter()
            .any(|c| c["choices"][0]["delta"]["reasoning_content"] == "Hm")
    );
}

#[test]
fn events_before_a_framing_error_in_the_same_feed_still_reach_the_client() {
    // Found by the stream_rewrite fuzz target: the error used to be written first and the
    // completed `delta` dropped, so what a client saw depended on the network's cuts.
    let mut r = rewriter(false);
    let mut out = Vec::new();
    r.feed(
        b"event: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\ndata: \xff\n\n",
        &mut out,
    );
    let out = String::from_utf8_lossy(&out);
    let (hi, err) = (out.find("\"Hi\"").unwrap(), out.find("\"error\"").unwrap());
    assert!(hi < err, "{out}");
}

#[test]
fn a_passthrough_stream_with_blank_lines_after_done_is_complete() {
    let src = "upstream: {base_url: \"http://x\"}\nroutes:\n  chat:\n    path: /s\n    response: {content: $.t}\n    stream: {framing: sse, passthrough: true}\n";
    let m = compile_file(Path::new("p.yaml"), src, &|_| None).unwrap();
    let mut r = StreamRewriter::new(
        Arc::new(m),
        Op::Chat,
        Arc::new(json!({})),
        json!({}),
        Dialect::Chat.writer("m", false),
    )
    .unwrap();
    let input = format!("data: {{}}\n\ndata: [DONE]\n\n{}", "\n".repeat(40));
    let out = run(&mut r, &input);
    assert!(!out.contains("error"), "{out}");
    assert_eq!(out, input);
}

#[test]
fn rules_state_and_unparsed_events() {
    let mut r = rewriter(true);
    let out = run(
        &mut r,
        "event: start\ndata: {\"usage\":{\"in\":9}}\n\nevent: ping\ndata: not json at all\n\nevent: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\nevent: block_start\ndata: {\"index\":4,\"block\":{\"type\":\"tool\",\"id\":\"t1\",\"name\":\"f\"}}\n\nevent: delta\ndata: {\"index\":4,\"delta\":{\"type\":\"json\",\"partial\":\"{}\"}}\n\nevent: stop\ndata: {\"reason\":\"done\",\"out\":5}\n\n",
    );
    assert!(out.contains("\"content\":\"Hi\""), "{out}");
    assert!(out.contains("\"tool_calls\":[{\"function\":{\"arguments\":\"\",\"name\":\"f\"},\"id\":\"t1\",\"index\":0,\"type\":\"function\"}]"), "{out}");
    assert!(out.contains("\"finish_reason\":\"tool_calls\""), "{out}");
    assert!(
        out.contains("\"usage\":{\"completion_tokens\":5,\"prompt_tokens\":9,\"total_tokens\":14}"),
        "{out}"
    );
    assert!(out.ends_with("data: [DONE]\n\n"));
}

#[test]
fn response_headers_are_bound_as_headers() {
    let src = "upstream: {base_url: \"http://x\"}\nroutes:\n  chat:\n    path: /c\n    response:\n      content: $.text\n      usage: {prompt_tokens: {$int: \"$headers['x-prompt-tokens']\"}}\n    stream:\n      framing: sse\n      rules:\n        - emit: {content: \"$headers['x-tag']\", end: true}\n";
    let m = compile_file(Path::new("h.yaml"), src, &|_| None).unwrap();
    let headers = json!({"x-prompt-tokens": "12", "x-tag": "tagged"});
    let fields = &m.chat.as_ref().unwrap().response;
    let out = eval_fields(
        fields,
        &json!({"text": "t"}),
        &json!({}),
        &Value::Null,
        &headers,
    );
    assert_eq!(out["usage"], json!({"prompt_tokens": 12}));
    let out = eval_fields(
        fields,
        &json!({"text": "t"}),
        &json!({}),
        &Value::Null,
        &json!({}),
    );
    assert!(
        out.get("usage")
            .and_then(|u| u.get("prompt_tokens"))
            .is_none(),
        "an absent header is absent: {out:?}"
    );
    let mut r = StreamRewriter::new(
        Arc::new(m),
        Op::Chat,
        Arc::new(json!({})),
        headers,
        Dialect::Chat.writer("m", false),
    )
    .unwrap();
    assert!(run(&mut r, "data: {}\n\n").contains("\"content\":\"tagged\""));
}

#[test]
fn passthrough_forwards_bytes_and_catches_truncation() {
    let src = "upstream: {base_url: \"http://x\"}\nroutes:\n  chat:\n    path: /c\n    response: {}\n    stream: {framing: sse, passthrough: true}\n";
    let m = Arc::new(compile_file(Path::new("p.yaml"), src, &|_| None).unwrap());
    let new = || {
        StreamRewriter::new(
            Arc::clone(&m),
            Op::Chat,
            Arc::new(json!({})),
            json!({}),
            Dialect::Chat.writer("m", false),
        )
        .unwrap()
    };
    let whole = "data: {\"a\":1}\n\ndata: [DONE]\n\n";
    let mut r = new();
    assert_eq!(run(&mut r, whole), whole, "forwarded byte for byte");
    let mut r = new();
    let out = run(&mut r, "data: {\"a\":1}\n\ndata: {\"cho");
    assert!(
        out.starts_with("data: {\"a\":1}\n\ndata: {\"cho\n\ndata: {\"error\""),
        "{out}"
    );
    assert!(out.contains("before data: [DONE]"), "{out}");
}

#[test]
fn raw_data_sentinel_matches_without_parsing() {
    let mut r = rewriter(false);
    let out = run(
        &mut r,
        "event: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\ndata: [DONE]\n\n",
    );
    assert!(
        out.ends_with("\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"),
        "{out}"
    );
}

#[test]
fn truncated_stream_and_error_events_fail() {
    let mut r = rewriter(false);
    let out = run(
        &mut r,
        "event: delta\ndata: {\"delta\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n",
    );
    assert!(out.contains("\"error\""), "{out}");
    assert!(!out.contains("[DONE]"));
    let mut r = rewriter(false);
    let out = run(
        &mut r,
        "event: oops\ndata: {\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
    );
    assert!(out.contains("\"message\":\"Overloaded\""), "{out}");
    let mut r = rewriter(false);
    let out = run(&mut r, "event: delta\ndata: {not json\n\n");
    assert!(out.contains("not valid JSON"), "{out}");
}
