//! The fake Azure OpenAI's chunk stream (wire-formats.md 7 and 1.6): prompt-filter chunk, tool-call deltas.

mod common;

use std::time::Duration;

use common::azure::*;
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

const TOOLS: &str = r#"[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
    "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}}]"#;

#[tokio::test]
async fn stream_starts_with_the_prompt_filter_chunk() {
    let fake = FakeUpstream::azure().await;
    let mut body = streaming("what is the weather like");
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&fake, CHAT, &body).await;
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("data: {"));
    let cs = chunks(&r);
    let first = &cs[0];
    assert_eq!(
        (
            &first["id"],
            &first["choices"],
            &first["created"],
            &first["model"],
            &first["object"]
        ),
        (&json!(""), &json!([]), &json!(0), &json!(""), &json!(""))
    );
    assert_eq!(
        first["prompt_filter_results"][0]["content_filter_results"]["sexual"]["severity"],
        "safe"
    );
    let rest = &cs[1..];
    assert!(
        rest.iter()
            .all(|c| c["id"] == rest[0]["id"] && c["created"] == rest[0]["created"])
    );
    let role = &rest[0]["choices"][0];
    assert_eq!(
        role["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    assert_eq!(role["content_filter_results"], json!({}));
    let (usage, rest) = rest.split_last().unwrap();
    let (finish, content) = rest.split_last().unwrap();
    let text: String = content[1..]
        .iter()
        .map(|c| {
            assert_eq!(c["choices"][0]["content_filter_results"], safe_filters());
            assert!(c["usage"].is_null());
            c["choices"][0]["delta"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Hello! You said: what is the weather like");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        (
            usage["choices"].clone(),
            usage["usage"]["completion_tokens"].clone()
        ),
        (json!([]), json!(8))
    );
    assert!(r.spread() > Duration::from_millis(100));
}

#[tokio::test]
async fn tool_calls_follow_section_1_6() {
    let fake = FakeUpstream::azure().await;
    let tools: Value = serde_json::from_str(TOOLS).unwrap();
    let mut body = chat("weather in Paris? TWO TOOLS");
    body["tools"] = tools.clone();
    let c = post(&fake, CHAT, &body).await.json();
    let m = &c["choices"][0]["message"];
    assert_eq!(
        (
            m["content"].clone(),
            c["choices"][0]["finish_reason"].clone()
        ),
        (Value::Null, json!("tool_calls"))
    );
    assert_eq!(
        m["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(m["tool_calls"][1]["function"]["name"], "get_time");
    assert!(
        m["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("call_")
    );
    assert_eq!(m["tool_calls"][0]["type"], "function");

    body["stream"] = json!(true);
    let cs = chunks(&post(&fake, CHAT, &body).await);
    assert_eq!(
        cs[1]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null})
    );
    let deltas: Vec<&Value> = cs[2..cs.len() - 1]
        .iter()
        .map(|c| &c["choices"][0]["delta"]["tool_calls"][0])
        .collect();
    let mut args = [String::new(), String::new()];
    for d in &deltas {
        let i = d["index"].as_u64().unwrap() as usize;
        if d.get("id").is_some() {
            assert_eq!(d["type"], "function");
            assert_eq!(d["function"]["arguments"], "");
            assert!(d["function"]["name"].is_string());
            assert!(args[i].is_empty(), "the id comes first");
        } else {
            assert_eq!(
                d.as_object().unwrap().len(),
                2,
                "later deltas: index + function.arguments only: {d}"
            );
            args[i].push_str(d["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(deltas.iter().filter(|d| d.get("id").is_some()).count(), 2);
    assert_eq!(args[0], "{\"city\":\"Paris\"}");
    assert_eq!(
        cs.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let mut single = chat("TWO TOOLS");
    single["tools"] = tools.clone();
    single["parallel_tool_calls"] = json!(false);
    let one = post(&fake, CHAT, &single).await.json();
    assert_eq!(
        one["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    single["tool_choice"] = json!("none");
    let none = post(&fake, CHAT, &single).await.json();
    assert_eq!(
        none["choices"][0]["message"]["content"],
        "Hello! You said: TWO TOOLS"
    );

    let id = m["tool_calls"][0]["id"].as_str().unwrap();
    let id2 = m["tool_calls"][1]["id"].as_str().unwrap();
    let mut follow = json!({"tools": tools, "messages": [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": m["tool_calls"]},
        {"role": "tool", "tool_call_id": id, "content": "18 °C, cloudy"},
        {"role": "tool", "tool_call_id": id2, "content": "14:00"}]});
    let c = post(&fake, CHAT, &follow).await.json();
    assert_eq!(
        c["choices"][0]["message"]["content"],
        "Tool said: 18 °C, cloudy"
    );
    follow["messages"].as_array_mut().unwrap().pop();
    let r = post(&fake, CHAT, &follow).await;
    assert!(r.json()["error"]["message"].as_str().unwrap().contains(id2));
}
