//! The fake Anthropic's deterministic answers: tool calls and trigger words (wire-formats.md 2.3).

mod common;

use std::time::Duration;

use common::anthropic;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

fn ask(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": text}]})
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                            "required": ["city"]}})
}

#[tokio::test]
async fn tools_produce_tool_use_blocks() {
    let fake = FakeUpstream::anthropic().await;
    let time_tool = json!({"name": "get_time", "input_schema": {"type": "object", "properties": {"utc": {"type": "boolean"}, "offset": {"type": "number"}}}});
    let mut body = ask("weather in Paris?");
    body["tools"] = json!([weather_tool(), time_tool]);
    let m = anthropic(fake.addr(), &body).await.json();
    assert_eq!(m["stop_reason"], "tool_use");
    assert_eq!(
        m["content"][0],
        json!({"type": "text", "text": "Let me check."})
    );
    let call = &m["content"][1];
    assert_eq!(call["type"], "tool_use");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["input"], json!({"city": "Paris", "days": 3}));
    let id = call["id"].as_str().unwrap();
    assert!(
        id.starts_with("toolu_01")
            && id.len() == 28
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    );
    assert_eq!(m["content"].as_array().unwrap().len(), 2);

    body["messages"][0]["content"] = json!("TWO TOOLS please");
    let m = anthropic(fake.addr(), &body).await.json();
    assert_eq!(m["content"].as_array().unwrap().len(), 3);
    assert_eq!(
        m["content"][2]["input"],
        json!({"utc": true, "offset": 1.5})
    );
    assert_ne!(m["content"][1]["id"], m["content"][2]["id"]);

    body["tool_choice"] = json!({"type": "tool", "name": "get_time"});
    let m = anthropic(fake.addr(), &body).await.json();
    assert_eq!(m["content"][1]["name"], "get_time");
    assert_eq!(m["content"].as_array().unwrap().len(), 2);

    body["tool_choice"] = json!({"type": "none"});
    let m = anthropic(fake.addr(), &body).await.json();
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["content"][0]["text"], "Hello! You said: TWO TOOLS please");
}

#[tokio::test]
async fn trigger_words_select_the_answer() {
    let fake = FakeUpstream::anthropic().await;
    let r = anthropic(fake.addr(), &ask("FAIL 429")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
    assert_eq!(r.json()["error"]["type"], "rate_limit_error");
    for (word, status, ty) in [
        ("FAIL 500", 500, "api_error"),
        ("FAIL 529", 529, "overloaded_error"),
        ("FAIL 400", 400, "invalid_request_error"),
    ] {
        let r = anthropic(fake.addr(), &ask(word)).await;
        assert_eq!(
            (r.status, r.json()["error"]["type"].as_str().unwrap()),
            (status, ty)
        );
        assert!(r.json()["request_id"].as_str().unwrap().starts_with("req_"));
    }
    let r = anthropic(fake.addr(), &ask("GARBAGE")).await;
    assert_eq!((r.status, r.text().as_str()), (200, "this is not json{"));
    let m = anthropic(fake.addr(), &ask("THINK first")).await.json();
    assert_eq!(m["content"][0]["type"], "thinking");
    assert!(m["content"][0]["signature"].as_str().unwrap().len() > 10);
    assert_eq!(m["content"][1]["type"], "text");
    assert_eq!(
        anthropic(fake.addr(), &ask("MAX TOKENS")).await.json()["stop_reason"],
        "max_tokens"
    );
    let mut stop = ask("STOPSEQ");
    stop["stop_sequences"] = json!(["###", "END"]);
    let m = anthropic(fake.addr(), &stop).await.json();
    assert_eq!(
        (m["stop_reason"].as_str(), m["stop_sequence"].as_str()),
        (Some("stop_sequence"), Some("###"))
    );
    assert_eq!(
        anthropic(fake.addr(), &ask("STOPSEQ")).await.json()["stop_sequence"],
        "END"
    );
    assert_eq!(
        anthropic(fake.addr(), &ask("CACHED")).await.json()["usage"]["cache_read_input_tokens"],
        5
    );
    let hang = tokio::time::timeout(
        Duration::from_millis(300),
        anthropic(fake.addr(), &ask("HANG")),
    )
    .await;
    assert!(hang.is_err(), "HANG must not answer");
}
