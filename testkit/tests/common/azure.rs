//! Shared request builders and readers for the Azure fake's tests.

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::*;

pub const CHAT: &str = "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21";
pub const HEADERS: &[(&str, &str)] = &[
    ("api-key", "0123456789abcdef"),
    ("content-type", "application/json"),
];

pub async fn post(fake: &FakeUpstream, path: &str, body: &Value) -> Exchange {
    send(fake.addr(), "POST", path, HEADERS, &body.to_string()).await
}

pub fn chat(text: &str) -> Value {
    json!({"messages": [{"role": "user", "content": text}], "max_tokens": 50})
}

pub fn streaming(text: &str) -> Value {
    let mut body = chat(text);
    body["stream"] = json!(true);
    body
}

pub fn chunks(r: &Exchange) -> Vec<Value> {
    let events = r.sse();
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));
    events[..events.len() - 1]
        .iter()
        .map(|(name, d)| {
            assert!(name.is_none());
            serde_json::from_str(d).expect("chunk JSON")
        })
        .collect()
}

pub fn safe_filters() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}
