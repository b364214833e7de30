//! Shared request builders for the gemini fake's tests.

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::*;

pub const KEY: (&str, &str) = ("x-goog-api-key", "AIza-test");

pub fn ask(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

pub async fn generate(fake: &FakeUpstream, body: &Value) -> super::Exchange {
    let path = "/v1beta/models/gemini-2.5-flash:generateContent";
    send(fake.addr(), "POST", path, &[KEY], &body.to_string()).await
}

pub fn weather_tools() -> Value {
    json!([{"functionDeclarations": [
        {"name": "get_weather", "description": "Current weather for a city",
         "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}},
                        "required": ["city"]}},
        {"name": "get_time", "parameters": {"type": "object", "properties": {
            "utc": {"type": "boolean"}, "offset": {"type": "number"}}}},
    ]}])
}

pub fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = if parent.is_empty() {
        &mut body
    } else {
        body.pointer_mut(parent).unwrap()
    };
    match target {
        Value::Array(items) => match key.parse::<usize>().unwrap() {
            i if i == items.len() => items.push(value),
            i => items[i] = value,
        },
        other => other[key] = value,
    }
    body
}

pub fn tool_turns(call_args: Value, response: Value, name: &str) -> Value {
    json!({"tools": weather_tools(), "contents": [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": call_args}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": name, "response": response}}]},
    ]})
}
