//! Test helpers for Responses streams: running a script through a writer, and checking a
//! stream against every rule a client relies on (the OpenAI SDK's stream accumulator and the
//! wire rules of the reference).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Echo, ResponsesWriter};
use crate::dialect::Emitter;
use crate::dialect::answer::{ToolCallPart, Usage};

pub fn echo() -> Arc<Echo> {
    Arc::new(Echo::from_request(
        &json!({"model": "gpt-x", "instructions": "Be brief.", "stream": true}),
        1_750_000_000,
    ))
}

/// Runs `script` on a Responses stream; the echo and the bytes written.
pub fn run(
    script: impl FnOnce(&mut Emitter<ResponsesWriter>, &mut Vec<u8>),
) -> (Arc<Echo>, Vec<u8>) {
    let echo = echo();
    let mut e = Emitter::new(ResponsesWriter::new(Arc::clone(&echo)));
    let mut out = Vec::new();
    script(&mut e, &mut out);
    (echo, out)
}

pub fn part(v: Value) -> ToolCallPart {
    ToolCallPart::from_value(&v)
}

pub fn usage(input: u64, output: u64) -> Usage {
    Usage {
        prompt_tokens: Some(input),
        completion_tokens: Some(output),
        ..Usage::default()
    }
}

const LIFECYCLE: [&str; 5] = [
    "response.created",
    "response.in_progress",
    "response.completed",
    "response.incomplete",
    "response.failed",
];

/// The stream's events, after checking every rule a client relies on: SSE framing with the
/// `event:` line naming the `type`, `sequence_number` 0, 1, 2…, `response.created` first with
/// no output, one response id, each output index added once and in order before its events,
/// the same item in every event of an index, unique `call_id`s, one terminal event and nothing
/// after it, no `[DONE]`, no top-level `error` key, and a completed or incomplete response
/// that repeats every item, done, with the ids of the stream.
pub fn checked(out: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(out).unwrap();
    assert!(!text.contains("[DONE]"));
    assert!(text.ends_with("\n\n"));
    let events: Vec<Value> = text
        .strip_suffix("\n\n")
        .unwrap()
        .split("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').unwrap();
            let data = data.strip_prefix("data: ").unwrap();
            let v: Value = serde_json::from_str(data).unwrap();
            // Byte for byte what serde_json writes for that value (compact, keys sorted), so
            // events written by hand cannot drift from it.
            assert_eq!(data, serde_json::to_string(&v).unwrap());
            assert_eq!(
                Some(event),
                v["type"].as_str().map(|t| format!("event: {t}")).as_deref()
            );
            v
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(&kinds[..2], ["response.created", "response.in_progress"]);
    assert_eq!(events[0]["response"]["output"], json!([]));
    assert_eq!(events[0]["response"]["usage"], Value::Null);
    let id = &events[0]["response"]["id"];
    let (mut added, mut done): (Vec<Value>, Vec<bool>) = (Vec::new(), Vec::new());
    let mut call_ids = HashSet::new();
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["sequence_number"], n, "{e}");
        assert!(e.get("error").is_none(), "{e}");
        let kind = kinds[n];
        if LIFECYCLE.contains(&kind) {
            assert_eq!(&e["response"]["id"], id);
        }
        let terminal = LIFECYCLE[2..].contains(&kind);
        assert_eq!(terminal, n == events.len() - 1, "{kind} at {n}");
        if kind == "error" {
            assert_eq!(kinds.get(n + 1), Some(&"response.failed"));
        }
        let Some(i) = e["output_index"].as_u64().map(|i| i as usize) else {
            continue;
        };
        match kind {
            "response.output_item.added" => {
                assert_eq!(i, added.len(), "indexes are added in order");
                if let Some(c) = e["item"]["call_id"].as_str() {
                    assert!(call_ids.insert(c.to_string()), "call_id {c} repeated");
                }
                added.push(e["item"].clone());
                done.push(false);
            }
            _ => {
                assert!(i < added.len() && !done[i], "{kind} for index {i}");
                if let Some(item_id) = e.get("item_id") {
                    assert_eq!(item_id, &added[i]["id"]);
                }
            }
        }
        if kind == "response.output_item.done" {
            for k in ["id", "type", "call_id"] {
                assert_eq!(e["item"].get(k), added[i].get(k), "{k}");
            }
            done[i] = true;
        }
    }
    let last = events.last().unwrap();
    if kinds.last() != Some(&"response.failed") {
        assert!(done.iter().all(|d| *d), "every item is done");
        let output = last["response"]["output"].as_array().unwrap();
        let ids = |items: &[Value]| items.iter().map(|i| i["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(output), ids(&added));
    }
    events
}

pub fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| {
            let k = e["type"].as_str().unwrap();
            k.strip_prefix("response.").unwrap_or(k)
        })
        .collect()
}

/// The final response, which the echo holds too.
pub fn last_response(echo: &Echo, events: &[Value]) -> Value {
    let r = events.last().unwrap()["response"].clone();
    assert_eq!(echo.take_finished().as_ref(), Some(&r));
    r
}
