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

/// `SEARCH` with the web search tool: the real API's block sequence and usage (a recorded
/// answer in the AI SDK's fixtures has the same shape).
#[tokio::test]
async fn search_answers_with_server_tool_blocks_and_citations() {
    let fake = FakeUpstream::anthropic().await;
    let mut body = ask("SEARCH what is rosetta");
    body["tools"] = json!([weather_tool(), {"type": "web_search_20250305", "name": "web_search",
        "max_uses": 3, "user_location": {"type": "approximate", "city": "Paris", "country": "FR",
        "timezone": "Europe/Paris"}}]);
    let r = anthropic(fake.addr(), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    let types: Vec<&str> = m["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "text",
            "server_tool_use",
            "web_search_tool_result",
            "text",
            "text",
            "text",
            "text"
        ]
    );
    let call = &m["content"][1];
    assert!(call["id"].as_str().unwrap().starts_with("srvtoolu_"));
    assert_eq!(call["name"], "web_search");
    assert_eq!(call["input"], json!({"query": "SEARCH what is rosetta"}));
    let result = &m["content"][2];
    assert_eq!(result["tool_use_id"], call["id"]);
    let pages = result["content"].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert!(pages.iter().all(|p| p["type"] == "web_search_result"
        && p["url"].is_string()
        && p["encrypted_content"].is_string()));
    let cited = &m["content"][4];
    assert_eq!(
        cited["citations"][0]["type"], "web_search_result_location",
        "{cited}"
    );
    assert_eq!(cited["citations"][0]["url"], pages[0]["url"]);
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["usage"]["server_tool_use"]["web_search_requests"], 1);

    let plain = anthropic(fake.addr(), &ask("SEARCH without the tool"))
        .await
        .json();
    assert_eq!(
        plain["content"][0]["text"],
        "Hello! You said: SEARCH without the tool"
    );
    assert!(plain["usage"].get("server_tool_use").is_none());
}
