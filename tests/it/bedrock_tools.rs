//! Tool turns the Converse API has no direct form for, against the faithful fake (which, as
//! Bedrock, refuses toolUse/toolResult blocks without a `toolConfig`, blank tool-result text
//! and tools sharing a name): `tool_choice: "none"`, a tool history with no `tools` in the
//! request, and empty tool results.

use serde_json::{Value, json};

use super::bedrock::{MODEL, setup, streaming, url};
use super::support::{chat, post, stream, tools};

/// A conversation after a tool loop: two calls of get_weather and one of get_time, answered.
fn after_a_tool_loop(results: [&str; 3]) -> Value {
    json!([
        {"role": "user", "content": "Weather in Paris and Rome, and the time?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "tooluse_a", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
            {"id": "tooluse_b", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
            {"id": "tooluse_c", "type": "function", "function": {"name": "get_time", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "tooluse_a", "content": results[0]},
        {"role": "tool", "tool_call_id": "tooluse_b", "content": results[1]},
        {"role": "tool", "tool_call_id": "tooluse_c", "content": results[2]}
    ])
}

fn tool_names(sent: &Value) -> Vec<String> {
    sent["toolConfig"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["toolSpec"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn tool_choice_none_offers_no_tools() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "Weather in Paris?");
    body["tools"] = tools();
    body["tool_choice"] = json!("none");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert!(
        j["choices"][0]["message"].get("tool_calls").is_none(),
        "{j}"
    );
    assert!(fake.requests()[0].body.get("toolConfig").is_none());
    let s = stream(&url(&proxy), &streaming(body)).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "stop");
}

#[tokio::test]
async fn tool_choice_none_after_a_tool_loop_sends_only_stubs() {
    let (fake, proxy) = setup().await;
    let mut body = json!({"model": MODEL, "messages": after_a_tool_loop(["21C", "25C", "10:00"])});
    body["tools"] = tools();
    body["tool_choice"] = json!("none");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: 21C"
    );
    let sent = &fake.requests()[0].body;
    assert_eq!(tool_names(sent), ["get_weather", "get_time"]);
    assert!(sent["toolConfig"].get("toolChoice").is_none());
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        json!({"type": "object"})
    );
}

#[tokio::test]
async fn a_tool_history_without_tools_is_accepted() {
    let (fake, proxy) = setup().await;
    let mut msgs = after_a_tool_loop(["21C", "25C", "10:00"]);
    msgs.as_array_mut()
        .unwrap()
        .push(json!({"role": "assistant", "content": "Paris 21C, Rome 25C, 10:00."}));
    msgs.as_array_mut()
        .unwrap()
        .push(json!({"role": "user", "content": "Thanks!"}));
    let body = json!({"model": MODEL, "messages": msgs});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &fake.requests()[0].body;
    assert_eq!(tool_names(sent), ["get_weather", "get_time"]);
    let s = stream(&url(&proxy), &streaming(body)).await;
    s.assert_valid();
}

#[tokio::test]
async fn an_empty_tool_result_is_not_blank_text() {
    let (fake, proxy) = setup().await;
    let mut body = json!({"model": MODEL, "messages": after_a_tool_loop(["", " ", "10:00"])});
    body["tools"] = tools();
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: (empty result)"
    );
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["messages"][2]["content"][1]["toolResult"]["content"],
        json!([{"text": "(empty result)"}])
    );
    // The request's own tools and choice stay when tools are offered.
    assert_eq!(tool_names(sent), ["get_weather", "get_time"]);
}
