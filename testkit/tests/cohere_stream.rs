//! The fake Cohere's typed named-event SSE stream (wire-formats.md 4.6) and its fault triggers.

mod common;

use std::time::Duration;

use common::send;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

fn ask_stream(text: &str) -> Value {
    json!({"model": "command-a-03-2025", "stream": true, "messages": [{"role": "user", "content": text}]})
}

async fn chat(fake: &FakeUpstream, body: &Value) -> common::Exchange {
    send(
        fake.addr(),
        "POST",
        "/v2/chat",
        &[("authorization", "Bearer co-test")],
        &body.to_string(),
    )
    .await
}

/// Parses every event, checking `event:` equals the JSON `type`.
fn events(r: &common::Exchange) -> Vec<(String, Value)> {
    r.sse()
        .into_iter()
        .filter(|(_, data)| data != "[DONE]")
        .map(|(name, data)| {
            let name = name.expect("named event");
            let v: Value = serde_json::from_str(&data).expect("JSON data");
            assert_eq!(v["type"], name.as_str());
            (name, v)
        })
        .collect()
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

#[tokio::test]
async fn text_stream_has_the_documented_order_and_is_paced() {
    let fake = FakeUpstream::cohere().await;
    let r = chat(&fake, &ask_stream("what is the weather like")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.text().starts_with("event: message-start\ndata: {"));
    assert!(r.error.is_none() && !r.text().contains("[DONE]"));
    let evs = events(&r);
    let n = names(&evs);
    assert_eq!(&n[..2], &["message-start", "content-start"]);
    assert_eq!(&n[n.len() - 2..], &["content-end", "message-end"]);
    assert!(n[2..n.len() - 2].iter().all(|e| *e == "content-delta"));
    let start = &evs[0].1;
    let id = start["id"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(start["delta"]["message"]["role"], "assistant");
    assert_eq!(
        evs[1].1,
        json!({"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}})
    );
    let deltas: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content-delta")
        .map(|(_, v)| v)
        .collect();
    assert!(deltas.len() >= 4, "text split into several deltas");
    assert!(deltas.iter().all(|d| d["index"] == 0));
    let text: String = deltas
        .iter()
        .map(|d| d["delta"]["message"]["content"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello! You said: what is the weather like");
    assert_eq!(
        evs[evs.len() - 2].1,
        json!({"type": "content-end", "index": 0})
    );
    let end = &evs.last().unwrap().1;
    assert_eq!(end["delta"]["finish_reason"], "COMPLETE");
    assert_eq!(
        end["delta"]["usage"]["tokens"],
        json!({"input_tokens": 71.0, "output_tokens": 8.0})
    );
    assert!(
        r.text()
            .contains("\"billed_units\":{\"input_tokens\":5.0,\"output_tokens\":8.0}"),
        "floats on the wire"
    );
    assert!(
        r.spread() > Duration::from_millis(60),
        "events spread over {:?}",
        r.spread()
    );
}

#[tokio::test]
async fn tool_call_stream_has_plan_then_fragmented_calls() {
    let fake = FakeUpstream::cohere().await;
    let mut body = ask_stream("TWO TOOLS please");
    body["tools"] = json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}]);
    let evs = events(&chat(&fake, &body).await);
    let n = names(&evs);
    assert_eq!(n[0], "message-start");
    let first_call = n.iter().position(|e| *e == "tool-call-start").unwrap();
    assert!(first_call >= 2 && n[1..first_call].iter().all(|e| *e == "tool-plan-delta"));
    let plan: String = evs[1..first_call]
        .iter()
        .map(|(_, v)| v["delta"]["message"]["tool_plan"].as_str().unwrap())
        .collect();
    assert_eq!(plan, "I will use get_weather and get_time to answer this.");
    assert!(!n.contains(&"content-start"));
    assert_eq!(*n.last().unwrap(), "message-end");
    assert_eq!(evs.last().unwrap().1["delta"]["finish_reason"], "TOOL_CALL");
    for index in [0, 1] {
        let of: Vec<&(String, Value)> = evs
            .iter()
            .filter(|(name, v)| name.starts_with("tool-call") && v["index"] == index)
            .collect();
        let kinds: Vec<&str> = of.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(kinds.first(), Some(&"tool-call-start"));
        assert_eq!(kinds.last(), Some(&"tool-call-end"));
        assert!(kinds.len() >= 4, "arguments in 2+ deltas: {kinds:?}");
        let start = &of[0].1["delta"]["message"]["tool_calls"];
        assert!(
            start.is_object(),
            "tool_calls is one object in stream events"
        );
        assert_eq!(
            (
                start["type"].as_str(),
                start["function"]["arguments"].as_str()
            ),
            (Some("function"), Some(""))
        );
        let name = start["function"]["name"].as_str().unwrap();
        assert!(
            start["id"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{name}_"))
        );
        let args: String = of[1..of.len() - 1]
            .iter()
            .map(|(_, v)| {
                v["delta"]["message"]["tool_calls"]["function"]["arguments"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            serde_json::from_str::<Value>(&args)
                .unwrap()
                .as_object()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            of.last().unwrap().1,
            json!({"type": "tool-call-end", "index": index})
        );
    }
}

#[tokio::test]
async fn thinking_block_comes_first() {
    let fake = FakeUpstream::cohere().await;
    let evs = events(&chat(&fake, &ask_stream("THINK hard")).await);
    let starts: Vec<&Value> = evs
        .iter()
        .filter(|(n, _)| n == "content-start")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        starts[0]["delta"]["message"]["content"],
        json!({"type": "thinking", "thinking": ""})
    );
    assert_eq!(
        (
            starts[1]["index"].as_u64(),
            starts[1]["delta"]["message"]["content"]["type"].as_str()
        ),
        (Some(1), Some("text"))
    );
    let thinking: String = evs
        .iter()
        .filter(|(n, v)| n == "content-delta" && v["index"] == 0)
        .map(|(_, v)| {
            v["delta"]["message"]["content"]["thinking"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(thinking.starts_with("The user sent a message."));
}

#[tokio::test]
async fn stream_faults() {
    let fake = FakeUpstream::cohere().await;
    let r = chat(&fake, &ask_stream("MIDSTREAM ERROR now")).await;
    let evs = events(&r);
    assert_eq!(
        names(&evs),
        [
            "message-start",
            "content-start",
            "content-delta",
            "content-delta",
            "message-end"
        ]
    );
    assert_eq!(
        evs[4].1["delta"],
        json!({"finish_reason": "ERROR", "error": "internal server error, this has been reported to our developers"})
    );
    assert!(r.error.is_none());

    let r = chat(&fake, &ask_stream("RESET now please")).await;
    assert_eq!(r.status, 200);
    assert!(r.error.is_some(), "the client must see an aborted body");
    assert_eq!(
        names(&events(&r)),
        [
            "message-start",
            "content-start",
            "content-delta",
            "content-delta"
        ]
    );

    let r = chat(&fake, &ask_stream("DONE MARKER please")).await;
    assert!(r.text().ends_with("}\n\ndata: [DONE]\n\n"), "{}", r.text());
    assert_eq!(events(&r).last().unwrap().0, "message-end");

    let r = chat(&fake, &ask_stream("MAX TOKENS")).await;
    assert_eq!(
        events(&r).last().unwrap().1["delta"]["finish_reason"],
        "MAX_TOKENS"
    );
    let r = chat(&fake, &ask_stream("GARBAGE")).await;
    assert_eq!(
        (r.header("content-type"), r.text().as_str()),
        (Some("text/event-stream"), "this is not json{")
    );
    let r = chat(&fake, &ask_stream("FAIL 500")).await;
    assert_eq!(r.status, 500);
    assert!(r.json()["message"].is_string());

    let slow = chat(&fake, &ask_stream("SLOW")).await;
    assert!(
        slow.spread() > Duration::from_millis(1500),
        "{:?}",
        slow.spread()
    );
}
