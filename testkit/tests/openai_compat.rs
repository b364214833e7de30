//! The fake OpenAI-compatible server follows wire-formats.md section 1.

mod common;

use common::{Exchange, send};
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

const JSON: &[(&str, &str)] = &[("content-type", "application/json")];

async fn post(fake: &FakeUpstream, path: &str, body: &Value) -> Exchange {
    send(fake.addr(), "POST", path, JSON, &body.to_string()).await
}

fn chat(text: &str) -> Value {
    json!({"model": "llama-3.1-8b", "messages": [{"role": "user", "content": text}]})
}

fn streaming(text: &str) -> Value {
    let mut body = chat(text);
    body["stream"] = json!(true);
    body
}

fn error_of(r: &Exchange) -> Value {
    let body = r.json();
    let e = body["error"].clone();
    for key in ["message", "type", "param", "code"] {
        assert!(e.get(key).is_some(), "{key} in {body}");
    }
    e
}

#[tokio::test]
async fn chat_completion_has_the_documented_shape() {
    let fake = FakeUpstream::openai().await;
    let r = post(
        &fake,
        "/v1/chat/completions",
        &chat("what is the weather like"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    let c = r.json();
    assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(c["object"], "chat.completion");
    assert!(c["created"].is_u64());
    assert_eq!(c["model"], "llama-3.1-8b");
    assert!(c["system_fingerprint"].as_str().unwrap().starts_with("fp_"));
    assert_eq!(
        c["choices"],
        json!([{"index": 0, "message": {"role": "assistant", "content": "Hello! You said: what is the weather like", "refusal": null},
                "logprobs": null, "finish_reason": "stop"}])
    );
    let u = &c["usage"];
    assert_eq!(
        (u["prompt_tokens"].as_u64(), u["completion_tokens"].as_u64()),
        (Some(5), Some(8))
    );
    assert_eq!(u["total_tokens"], 13);
    assert!(c.get("prompt_filter_results").is_none());
    assert_eq!(fake.requests()[0].path, "/v1/chat/completions");
}

#[tokio::test]
async fn unsupported_parameters_and_auth() {
    let fake = FakeUpstream::openai().await;
    let mut body = chat("x");
    body["store"] = json!(true);
    let r = post(&fake, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": {"message": "Unsupported parameter: 'store'", "type": "invalid_request_error", "param": "store", "code": null}})
    );
    let mut extra = chat("x");
    extra["top_k"] = json!(40);
    extra["user"] = json!("u1");
    assert_eq!(
        post(&fake, "/v1/chat/completions", &extra).await.status,
        200,
        "others are ignored"
    );

    let custom = FakeUpstream::openai_with(None, &["logit_bias"]).await;
    assert_eq!(
        post(&custom, "/v1/chat/completions", &body).await.status,
        200
    );
    let mut bias = chat("x");
    bias["logit_bias"] = json!({"50256": -100});
    assert_eq!(
        error_of(&post(&custom, "/v1/chat/completions", &bias).await)["param"],
        "logit_bias"
    );

    let locked = FakeUpstream::openai_with_key("sk-test-1234").await;
    let payload = chat("x").to_string();
    let none = send(
        locked.addr(),
        "POST",
        "/v1/chat/completions",
        JSON,
        &payload,
    )
    .await;
    assert_eq!(none.status, 401);
    assert!(
        error_of(&none)["message"]
            .as_str()
            .unwrap()
            .contains("didn't provide an API key")
    );
    let wrong = [
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-nope-9876"),
    ];
    let r = send(
        locked.addr(),
        "POST",
        "/v1/chat/completions",
        &wrong,
        &payload,
    )
    .await;
    assert_eq!(
        (r.status, error_of(&r)["code"].clone()),
        (401, json!("invalid_api_key"))
    );
    assert_eq!(
        error_of(&r)["message"],
        "Incorrect API key provided: sk-****9876."
    );
    let right = [
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-test-1234"),
    ];
    assert_eq!(
        send(
            locked.addr(),
            "POST",
            "/v1/chat/completions",
            &right,
            &payload
        )
        .await
        .status,
        200
    );
    assert_eq!(
        locked.requests().len(),
        3,
        "rejected requests are recorded too"
    );
}

#[tokio::test]
async fn chat_validation() {
    let fake = FakeUpstream::openai().await;
    let with = |key: &str, v: Value| {
        let mut b = chat("x");
        b[key] = v;
        b
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            "you must provide a model parameter",
            "null",
        ),
        (
            json!({"model": "m"}),
            "Missing required parameter: 'messages'.",
            "\"missing_required_parameter\"",
        ),
        (
            with("messages", json!([])),
            "empty array",
            "\"empty_array\"",
        ),
        (
            with("temperature", json!(3)),
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
            "\"decimal_above_max_value\"",
        ),
        (
            with("temperature", json!("hot")),
            "Invalid type for 'temperature': expected a decimal, but got a string instead.",
            "\"invalid_type\"",
        ),
        (
            with("n", json!(0)),
            "Invalid 'n': integer below minimum value.",
            "\"integer_below_min_value\"",
        ),
        (
            with("stop", json!(["a", "b", "c", "d", "e"])),
            "array too long",
            "\"array_above_max_length\"",
        ),
        (
            with("stream_options", json!({"include_usage": true})),
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "null",
        ),
        (
            with("tool_choice", json!("auto")),
            "'tool_choice' is only allowed when 'tools' are specified",
            "null",
        ),
        (
            with(
                "tools",
                json!([{"type": "function", "function": {"name": "get weather"}}]),
            ),
            "does not match pattern",
            "\"invalid_value\"",
        ),
        (
            with("response_format", json!({"type": "json_object"})),
            "must contain the word 'json'",
            "null",
        ),
        (
            with("messages", json!([{"role": "bot", "content": "x"}])),
            "Invalid value: 'bot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'.",
            "\"invalid_value\"",
        ),
        (
            with("messages", json!([{"role": "user"}])),
            "Missing required parameter: 'messages[0].content'.",
            "\"missing_required_parameter\"",
        ),
        (
            with(
                "messages",
                json!([{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "call_1", "content": "18"}]),
            ),
            "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
            "null",
        ),
        (
            with(
                "messages",
                json!([{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}, {"role": "tool", "tool_call_id": "call_1", "content": "1"}]),
            ),
            "Invalid type for 'messages[1].tool_calls[0].function.arguments': expected a string, but got an object instead.",
            "\"invalid_type\"",
        ),
        (
            with(
                "messages",
                json!([{"role": "user", "content": "x"}, {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "user", "content": "y"}]),
            ),
            "The following tool_call_ids did not have response messages: call_1",
            "null",
        ),
        (
            with(
                "messages",
                json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "max"}}]}]),
            ),
            "Invalid value: 'max'. Supported values are: 'auto', 'low', and 'high'.",
            "\"invalid_value\"",
        ),
    ];
    for (body, message, code) in cases {
        let r = post(&fake, "/v1/chat/completions", &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        let e = error_of(&r);
        assert_eq!(e["type"], "invalid_request_error");
        assert!(
            e["message"].as_str().unwrap().contains(message),
            "{body}\n got: {e}"
        );
        assert_eq!(e["code"].to_string(), code, "{body}");
    }
    let bad = send(fake.addr(), "POST", "/v1/chat/completions", JSON, "{oops").await;
    assert!(
        error_of(&bad)["message"]
            .as_str()
            .unwrap()
            .starts_with("We could not parse the JSON body")
    );
    let mut missing = chat("x");
    missing["model"] = json!("missing-model");
    let r = post(&fake, "/v1/chat/completions", &missing).await;
    assert_eq!(
        (r.status, error_of(&r)["code"].clone()),
        (404, json!("model_not_found"))
    );
    let ok = with(
        "messages",
        json!([{"role": "developer", "content": "Be terse."}, {"role": "user", "content": [
        {"type": "text", "text": "what is this json"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]),
    );
    let mut ok = ok;
    ok["response_format"] = json!({"type": "json_object"});
    let r = post(&fake, "/v1/chat/completions", &ok).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello! You said: what is this json"
    );
}

#[tokio::test]
async fn limits_logprobs_and_triggers() {
    let fake = FakeUpstream::openai().await;
    let mut body = chat("one two three four five six");
    body["max_completion_tokens"] = json!(4);
    body["logprobs"] = json!(true);
    body["top_logprobs"] = json!(2);
    let c = post(&fake, "/v1/chat/completions", &body).await.json();
    assert_eq!(
        c["choices"][0]["message"]["content"],
        "Hello! You said: one"
    );
    assert_eq!(c["choices"][0]["finish_reason"], "length");
    let lp = &c["choices"][0]["logprobs"]["content"];
    assert_eq!(lp.as_array().unwrap().len(), 4);
    assert_eq!(lp[0]["token"], "Hello!");
    assert!(lp[0]["logprob"].as_f64().unwrap() < 0.0 && lp[0]["bytes"].is_array());
    assert_eq!(lp[0]["top_logprobs"].as_array().unwrap().len(), 2);
    let finish = |text: &str| {
        let fake = &fake;
        let text = text.to_string();
        async move {
            post(fake, "/v1/chat/completions", &chat(&text))
                .await
                .json()["choices"][0]["finish_reason"]
                .clone()
        }
    };
    assert_eq!(finish("MAX TOKENS").await, "length");
    assert_eq!(finish("FILTERED please").await, "content_filter");
    let r = post(&fake, "/v1/chat/completions", &chat("FAIL 429")).await;
    assert_eq!((r.status, r.header("retry-after")), (429, Some("7")));
    assert_eq!(error_of(&r)["code"], "rate_limit_exceeded");
    assert_eq!(
        error_of(&post(&fake, "/v1/chat/completions", &chat("FAIL 500")).await)["type"],
        "server_error"
    );
    assert_eq!(
        post(&fake, "/v1/chat/completions", &chat("FAIL 503"))
            .await
            .status,
        503
    );
    let g = post(&fake, "/v1/chat/completions", &streaming("GARBAGE")).await;
    assert_eq!(g.text(), "data: this is not json{\n\n");
}
