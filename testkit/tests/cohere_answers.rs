//! The fake Cohere's deterministic answers (wire-formats.md 4.3-4.5): tool calls, trigger words, and `/v2/embed`.

mod common;

use std::time::Duration;

use common::send;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

const AUTH: (&str, &str) = ("authorization", "Bearer co-test");

fn ask(text: &str) -> Value {
    json!({"model": "command-a-03-2025", "messages": [{"role": "user", "content": text}]})
}

async fn chat(fake: &FakeUpstream, body: &Value) -> common::Exchange {
    send(fake.addr(), "POST", "/v2/chat", &[AUTH], &body.to_string()).await
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time",
            "parameters": {"type": "object", "properties": {"utc": {"type": "boolean"}, "offset": {"type": "number"}}}}},
    ])
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test]
async fn tools_and_tool_results() {
    let fake = FakeUpstream::cohere().await;
    let mut body = ask("weather in Paris?");
    body["tools"] = weather_tools();
    let m = chat(&fake, &body).await.json();
    assert_eq!(m["finish_reason"], "TOOL_CALL");
    let msg = &m["message"];
    assert_eq!(msg["role"], "assistant");
    assert!(msg["tool_plan"].as_str().unwrap().contains("get_weather"));
    assert!(msg.get("content").is_none());
    let calls = msg["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    let id = calls[0]["id"].as_str().unwrap();
    assert!(id.starts_with("get_weather_") && id.len() == "get_weather_".len() + 12);
    assert_eq!(
        (
            calls[0]["type"].as_str(),
            calls[0]["function"]["name"].as_str()
        ),
        (Some("function"), Some("get_weather"))
    );
    let args = calls[0]["function"]["arguments"]
        .as_str()
        .expect("arguments is a JSON string");
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"city": "Paris", "days": 3})
    );

    body["messages"][0]["content"] = json!("TWO TOOLS please");
    let m = chat(&fake, &body).await.json();
    let calls = m["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"utc": true, "offset": 1.5})
    );
    body["tool_choice"] = json!("NONE");
    let m = chat(&fake, &body).await.json();
    assert_eq!(
        (
            m["finish_reason"].as_str(),
            m["message"]["content"][0]["text"].as_str()
        ),
        (Some("COMPLETE"), Some("Hello! You said: TWO TOOLS please"))
    );

    body["tool_choice"] = json!("REQUIRED");
    body["messages"] = json!([
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "tool_plan": "I will look it up.", "tool_calls": [
            {"id": "get_weather_r7x2k9", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "get_time_m3p8q1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "get_weather_r7x2k9", "content": "18 °C, cloudy"},
        {"role": "tool", "tool_call_id": "get_time_m3p8q1", "content": [{"type": "document", "document": {"data": {"time": "10:00"}, "id": "t1"}}]}]);
    let m = chat(&fake, &body).await.json();
    assert_eq!(
        m["message"]["content"],
        json!([{"type": "text", "text": "Tool said: 18 °C, cloudy"}])
    );
    assert_eq!(m["finish_reason"], "COMPLETE");
}

#[tokio::test]
async fn trigger_words_select_the_answer() {
    let fake = FakeUpstream::cohere().await;
    let m = chat(&fake, &ask("THINK first")).await.json();
    let content = m["message"]["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "thinking");
    assert!(content[0]["thinking"].as_str().unwrap().len() > 10);
    assert_eq!(
        content[1],
        json!({"type": "text", "text": "Hello! You said: THINK first"})
    );
    assert_eq!(
        chat(&fake, &ask("MAX TOKENS")).await.json()["finish_reason"],
        "MAX_TOKENS"
    );
    assert_eq!(
        chat(&fake, &ask("STOPSEQ")).await.json()["finish_reason"],
        "STOP_SEQUENCE"
    );
    for (word, status) in [("FAIL 429", 429), ("FAIL 500", 500), ("FAIL 400", 400)] {
        let r = chat(&fake, &ask(word)).await;
        assert_eq!(r.status, status);
        assert!(r.json()["message"].is_string() && r.json()["id"].is_string());
    }
    let r = chat(&fake, &ask("GARBAGE")).await;
    assert_eq!((r.status, r.text().as_str()), (200, "this is not json{"));
    let hang = tokio::time::timeout(Duration::from_millis(300), chat(&fake, &ask("HANG"))).await;
    assert!(hang.is_err(), "HANG must not answer");
}

#[tokio::test]
async fn embed_by_type() {
    let fake = FakeUpstream::cohere().await;
    let embed = |body: Value| {
        let addr = fake.addr();
        async move { send(addr, "POST", "/v2/embed", &[AUTH], &body.to_string()).await }
    };
    let ok = json!({"model": "embed-v4.0", "input_type": "search_document", "embedding_types": ["float", "int8"], "texts": ["first text", "second text"]});
    let r = embed(ok.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    assert!(is_uuid(m["id"].as_str().unwrap()));
    assert_eq!(m["texts"], json!(["first text", "second text"]));
    let floats = m["embeddings"]["float"].as_array().unwrap();
    assert_eq!(floats.len(), 2);
    assert_eq!(floats[0].as_array().unwrap().len(), 8);
    assert_ne!(floats[0], floats[1]);
    assert!(
        m["embeddings"]["int8"][0]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_i64)
    );
    assert_eq!(m["meta"]["billed_units"]["input_tokens"], json!(4.0));
    let mut wide = ok.clone();
    wide["output_dimension"] = json!(256);
    assert_eq!(
        embed(wide).await.json()["embeddings"]["float"][0]
            .as_array()
            .unwrap()
            .len(),
        256
    );
    let without = |key: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(key);
        b
    };
    let mut extra = ok.clone();
    extra["encoding_format"] = json!("float");
    let mut bad_type = ok.clone();
    bad_type["input_type"] = json!("query");
    let cases = [
        (
            without("input_type"),
            400,
            "invalid request: input_type is required",
        ),
        (
            without("embedding_types"),
            400,
            "invalid request: embedding_types is required",
        ),
        (
            without("texts"),
            400,
            "one of 'texts', 'images' or 'inputs' must be specified",
        ),
        (bad_type, 400, "input_type must be one of"),
        (
            extra,
            422,
            "unknown field: parameter 'encoding_format' is not a valid field. For proper usage, please refer to https://docs.cohere.com/reference/embed",
        ),
    ];
    for (body, status, expected) in cases {
        let r = embed(body.clone()).await;
        assert_eq!(r.status, status, "{body}");
        assert!(
            r.json()["message"].as_str().unwrap().contains(expected),
            "{body}: {}",
            r.text()
        );
    }
}
