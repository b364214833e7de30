//! The fake Anthropic's named-event SSE stream (wire-formats.md 2.6) and its fault triggers.

mod common;

use std::time::Duration;

use common::anthropic;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

fn ask_stream(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
           "messages": [{"role": "user", "content": text}]})
}

/// Parses every event, checking `event:` equals the JSON `type`.
fn events(r: &common::Exchange) -> Vec<(String, Value)> {
    r.sse()
        .into_iter()
        .map(|(name, data)| {
            let name = name.expect("named event");
            let v: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            if !v.is_null() {
                assert_eq!(v["type"], name.as_str());
            }
            (name, v)
        })
        .collect()
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

#[tokio::test]
async fn text_stream_has_the_documented_order_and_is_paced() {
    let fake = FakeUpstream::anthropic().await;
    let r = anthropic(fake.addr(), &ask_stream("what is the weather like")).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(r.header("request-id").is_some());
    assert!(r.text().starts_with("event: message_start\ndata: {"));
    assert!(r.error.is_none());
    let evs = events(&r);
    let n = names(&evs);
    assert_eq!(&n[..3], &["message_start", "content_block_start", "ping"]);
    assert_eq!(
        &n[n.len() - 3..],
        &["content_block_stop", "message_delta", "message_stop"]
    );
    let deltas: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, v)| v)
        .collect();
    assert!(deltas.len() >= 4, "text split into several deltas");
    let text: String = deltas
        .iter()
        .map(|d| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello! You said: what is the weather like");
    let start = &evs[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(start["usage"]["input_tokens"], 5);
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    let delta = &evs[evs.len() - 2].1;
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], 8);
    assert!(
        r.spread() > Duration::from_millis(30),
        "events spread over {:?}",
        r.spread()
    );
}

#[tokio::test]
async fn tool_and_thinking_blocks_stream_as_documented() {
    let fake = FakeUpstream::anthropic().await;
    let mut body = ask_stream("THINK about the weather");
    body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let evs = events(&anthropic(fake.addr(), &body).await);
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        starts[0]["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(starts[1]["content_block"]["type"], "text");
    let tool = &starts[2]["content_block"];
    assert_eq!(
        (tool["type"].as_str(), tool["name"].as_str(), &tool["input"]),
        (Some("tool_use"), Some("get_weather"), &json!({}))
    );
    let of = |i: u64| -> Vec<&Value> {
        evs.iter()
            .filter(|(n, v)| n == "content_block_delta" && v["index"] == i)
            .map(|(_, v)| &v["delta"])
            .collect()
    };
    let thinking = of(0);
    assert!(thinking.len() >= 3);
    assert!(
        thinking[..thinking.len() - 1]
            .iter()
            .all(|d| d["type"] == "thinking_delta")
    );
    assert_eq!(thinking.last().unwrap()["type"], "signature_delta");
    let json_parts = of(2);
    assert_eq!(
        json_parts[0],
        &json!({"type": "input_json_delta", "partial_json": ""})
    );
    assert!(json_parts.len() >= 3);
    let joined: String = json_parts
        .iter()
        .map(|d| d["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&joined).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(evs[evs.len() - 2].1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn stream_faults() {
    let fake = FakeUpstream::anthropic().await;
    let r = anthropic(fake.addr(), &ask_stream("MIDSTREAM ERROR now")).await;
    let evs = events(&r);
    assert_eq!(
        evs.iter()
            .filter(|(n, _)| n == "content_block_delta")
            .count(),
        2
    );
    assert_eq!(evs.last().unwrap().0, "error");
    assert_eq!(evs.last().unwrap().1["error"]["type"], "overloaded_error");
    assert!(!names(&evs).contains(&"message_stop"));

    let r = anthropic(fake.addr(), &ask_stream("RESET now please")).await;
    assert_eq!(r.status, 200);
    assert!(r.error.is_some(), "the client must see an aborted body");
    assert!(r.text().contains("text_delta"));
    assert!(!r.text().contains("message_stop"));

    let r = anthropic(fake.addr(), &ask_stream("STREAM GARBAGE now please")).await;
    assert!(
        r.text()
            .contains("event: content_block_delta\ndata: {not json\n\n")
    );
    let evs = events(&r);
    assert_eq!(evs.last().unwrap().0, "message_stop");
    assert_eq!(evs.iter().filter(|(_, v)| v.is_null()).count(), 1);

    let slow = anthropic(fake.addr(), &ask_stream("SLOW")).await;
    assert!(slow.spread() > Duration::from_millis(1500));
}

/// A searched answer streams its server tool call as `input_json_delta`s, the results whole in
/// their `content_block_start`, and cited text as `citations_delta`s before the text.
#[tokio::test]
async fn search_blocks_stream_as_the_real_api() {
    let fake = FakeUpstream::anthropic().await;
    let mut body = ask_stream("SEARCH rosetta");
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let evs = events(&anthropic(fake.addr(), &body).await);
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, v)| &v["content_block"])
        .collect();
    assert_eq!(starts[1]["type"], "server_tool_use");
    assert_eq!(starts[1]["input"], json!({}));
    assert_eq!(starts[2]["type"], "web_search_tool_result");
    assert_eq!(starts[2]["content"].as_array().unwrap().len(), 2);
    assert_eq!(
        starts[4],
        &json!({"citations": [], "type": "text", "text": ""})
    );
    let of = |i: u64| -> Vec<&Value> {
        evs.iter()
            .filter(|(n, v)| n == "content_block_delta" && v["index"] == i)
            .map(|(_, v)| &v["delta"])
            .collect()
    };
    let query: String = of(1)
        .iter()
        .map(|d| d["partial_json"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&query).unwrap(),
        json!({"query": "SEARCH rosetta"})
    );
    assert!(of(2).is_empty(), "results come whole");
    let cited = of(4);
    assert_eq!(cited[0]["type"], "citations_delta");
    assert!(cited[1..].iter().all(|d| d["type"] == "text_delta"));
    let usage = &evs[evs.len() - 2].1["usage"];
    assert_eq!(usage["server_tool_use"]["web_search_requests"], 1);
}
