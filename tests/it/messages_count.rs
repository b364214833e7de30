//! `POST .../v1/messages/count_tokens` on every shipped chat mapping: forwarded to an upstream
//! that counts (the anthropic mapping's `count_tokens` route, passed through as it is),
//! estimated (characters / 4 of the converted request's text) on every other mapping, which
//! then gets no upstream call at all.

use serde_json::{Value, json};

use super::messages_support::HEADERS;
use super::responses::{Up, every_mapping};
use super::support::{Proxy, Resp, request_with_headers};

fn url(up: &Up, p: &Proxy) -> String {
    p.url(&format!("/{}/v1/messages/count_tokens?beta=true", up.name))
}

async fn count(url: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
    request_with_headers("POST", url, Some(body.to_string()), headers).await
}

/// The anthropic fake's count: the words of the request's `system`, `messages` and `tools`.
fn fake_count(body: &Value) -> usize {
    ["system", "messages", "tools"]
        .iter()
        .filter_map(|k| body.get(*k))
        .map(|v| v.to_string().split_whitespace().count())
        .sum()
}

fn request(model: &str) -> Value {
    json!({"model": model,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hello there, how are you today?"}]})
}

#[tokio::test]
async fn a_count_is_forwarded_as_it_is_where_the_upstream_counts() {
    let (ups, proxy) = every_mapping().await;
    let up = ups.iter().find(|u| u.name == "anthropic").unwrap();
    let mut body = request(up.model);
    body["tools"] = json!([{"name": "get_weather", "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let mut headers = HEADERS.to_vec();
    headers.push(("anthropic-beta", "token-counting-2024-11-01"));
    let r = count(&url(up, &proxy), &body, &headers).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = up.fake.requests().last().unwrap().clone();
    assert_eq!(seen.path, "/v1/messages/count_tokens");
    assert_eq!(seen.body, body, "passed through as it is");
    assert_eq!(
        seen.header("anthropic-beta"),
        Some("token-counting-2024-11-01")
    );
    assert_eq!(r.json(), json!({"input_tokens": fake_count(&body)}));
    // On the unified surface too, routed by the model.
    let before = up.fake.requests().len();
    let r = count(&proxy.url("/v1/messages/count_tokens"), &body, HEADERS).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({"input_tokens": fake_count(&body)}));
    assert_eq!(up.fake.requests().len(), before + 1);
    // The upstream's refusal comes back in the dialect's shape, with its status.
    body["max_tokens"] = json!(100);
    let r = count(&url(up, &proxy), &body, HEADERS).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let e = r.json();
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens: Extra inputs are not permitted"),
        "{e}"
    );
}

#[tokio::test]
async fn a_count_is_estimated_without_an_upstream_call_elsewhere() {
    let (ups, proxy) = every_mapping().await;
    for up in ups.iter().filter(|u| u.name != "anthropic") {
        let before = up.fake.requests().len();
        let body = request(up.model);
        let r = count(&url(up, &proxy), &body, HEADERS).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        // "Be brief." (9) and "Hello there, how are you today?" (31): 40 characters, 10 tokens.
        assert_eq!(r.json(), json!({"input_tokens": 10}), "{}", up.name);
        assert_eq!(r.headers["content-type"], "application/json", "{}", up.name);
        // Tools count too (their JSON); max_tokens, a stream flag and thinking (as Claude Code
        // sends them) are accepted.
        let mut more = body.clone();
        more["tools"] = json!([{"name": "get_weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
        more["max_tokens"] = json!(100);
        more["stream"] = json!(true);
        more["thinking"] = json!({"type": "enabled", "budget_tokens": 31999});
        let r = count(&url(up, &proxy), &more, HEADERS).await;
        assert_eq!(r.status, 200, "{}: {}", up.name, r.text);
        let n = r.json()["input_tokens"].as_u64().unwrap();
        assert!(n > 10 + 10, "{}: the tools' JSON is counted: {n}", up.name);
        assert_eq!(
            up.fake.requests().len(),
            before,
            "{}: no upstream call",
            up.name
        );
    }
}

#[tokio::test]
async fn a_count_is_checked_as_a_message_is() {
    let (ups, proxy) = every_mapping().await;
    for up in &ups {
        let body = request(up.model);
        // The version header is required, as the real API requires it.
        let r = count(&url(up, &proxy), &body, &[]).await;
        assert_eq!(r.status, 400, "{}: {}", up.name, r.text);
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
        assert!(r.text.contains("anthropic-version"), "{}", r.text);
        // So are the messages.
        let r = count(&url(up, &proxy), &json!({"model": up.model}), HEADERS).await;
        assert_eq!(r.status, 400, "{}: {}", up.name, r.text);
        assert_eq!(r.json()["type"], "error");
        assert_eq!(r.json()["error"]["type"], "invalid_request_error");
        // Only POST.
        let r = request_with_headers("GET", &url(up, &proxy), None, HEADERS).await;
        assert_eq!(r.status, 405, "{}: {}", up.name, r.text);
    }
}
