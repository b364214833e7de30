//! The fake Cohere API v2 follows wire-formats.md section 4: the response shape, float usage, auth, validation.

mod common;

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

fn is_uuid(s: &str) -> bool {
    let groups: Vec<usize> = s.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test]
async fn valid_request_gets_a_chat_response_with_float_usage() {
    let fake = FakeUpstream::cohere().await;
    let mut body = ask("hi there");
    body["messages"] = json!([{"role": "system", "content": "You are terse."}, {"role": "user", "content": [{"type": "text", "text": "hi there"}]}]);
    for (k, v) in [
        ("max_tokens", json!(256)),
        ("temperature", json!(0.3)),
        ("p", json!(0.9)),
        ("k", json!(40)),
        ("seed", json!(7)),
        ("stop_sequences", json!(["END"])),
        ("frequency_penalty", json!(0.1)),
        ("presence_penalty", json!(0.2)),
        ("stream", json!(false)),
        ("safety_mode", json!("CONTEXTUAL")),
        ("response_format", json!({"type": "text"})),
    ] {
        body[k] = v;
    }
    let r = chat(&fake, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let m = r.json();
    assert!(is_uuid(m["id"].as_str().unwrap()));
    assert_eq!(m["finish_reason"], "COMPLETE");
    assert_eq!(
        m["message"],
        json!({"role": "assistant", "content": [{"type": "text", "text": "Hello! You said: hi there"}]})
    );
    let u = &m["usage"];
    assert!(
        u["tokens"]["input_tokens"].is_f64() && !u["tokens"]["input_tokens"].is_u64(),
        "Cohere sends floats"
    );
    assert_eq!(
        u["billed_units"],
        json!({"input_tokens": 5.0, "output_tokens": 5.0})
    );
    assert_eq!(
        u["tokens"],
        json!({"input_tokens": 71.0, "output_tokens": 5.0})
    );
    assert!(r.text().contains("\"output_tokens\":5.0"));
    let recorded = fake.requests();
    assert_eq!(
        (
            recorded[0].path.as_str(),
            recorded[0].header("Authorization")
        ),
        ("/v2/chat", Some("Bearer co-test"))
    );
    assert_eq!(recorded[0].body, body);
}

#[tokio::test]
async fn bearer_auth_and_routes() {
    let fake = FakeUpstream::cohere_with_key("right").await;
    let body = ask("hi").to_string();
    let missing = send(fake.addr(), "POST", "/v2/chat", &[], &body).await;
    assert_eq!(missing.status, 401);
    let m = missing.json();
    assert_eq!(m["message"], "no api key supplied");
    assert!(is_uuid(m["id"].as_str().unwrap()));
    assert_eq!(m.as_object().unwrap().len(), 2, "only id and message");
    let wrong = send(
        fake.addr(),
        "POST",
        "/v2/chat",
        &[("authorization", "Bearer wrong")],
        &body,
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.json()["message"].as_str()),
        (401, Some("invalid api token"))
    );
    assert_eq!(
        send(
            fake.addr(),
            "POST",
            "/v2/chat",
            &[("authorization", "bearer right")],
            &body
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(
            fake.addr(),
            "POST",
            "/v2/chat",
            &[("x-api-key", "right")],
            &body
        )
        .await
        .status,
        401
    );
    let open = FakeUpstream::cohere().await;
    assert_eq!(
        send(
            open.addr(),
            "POST",
            "/v2/chat",
            &[("authorization", "Bearer any")],
            &body
        )
        .await
        .status,
        200
    );
    assert_eq!(
        send(open.addr(), "POST", "/v1/chat", &[AUTH], &body)
            .await
            .status,
        404
    );
    let mut missing_model = ask("x");
    missing_model["model"] = json!("missing-model");
    let r = chat(&open, &missing_model).await;
    assert_eq!(r.status, 404);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("model 'missing-model' not found")
    );
}

#[tokio::test]
async fn validation_rejects_like_the_real_api() {
    let fake = FakeUpstream::cohere().await;
    let set = |k: &str, v: Value| {
        let mut b = ask("x");
        b[k] = v;
        b
    };
    let msgs = |m: Value| set("messages", m);
    let call = |args: Value| json!({"role": "assistant", "tool_calls": [{"id": "get_weather_1", "type": "function", "function": {"name": "get_weather", "arguments": args}}]});
    let unknown = |k: &str| {
        format!(
            "unknown field: parameter '{k}' is not a valid field. For proper usage, please refer to https://docs.cohere.com/reference/chat"
        )
    };
    let mut strict_tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    strict_tools[0]["function"]["strict"] = json!(true);
    let cases: Vec<(Value, u16, String)> = vec![
        (set("top_p", json!(0.5)), 422, unknown("top_p")),
        (set("n", json!(1)), 422, unknown("n")),
        (set("tools", strict_tools), 422, unknown("strict")),
        (msgs(json!([{"role": "user", "content": "x", "name": "bob"}])), 422, unknown("name")),
        (set("p", json!(1.0)), 400, "invalid request: p must be between 0.01 and 0.99".into()),
        (set("k", json!(600)), 400, "invalid request: k must be between 0 and 500".into()),
        (set("temperature", json!(-1)), 400, "invalid request: temperature must be".into()),
        (set("frequency_penalty", json!(1.5)), 400, "invalid request: frequency_penalty must be between 0 and 1".into()),
        (set("presence_penalty", json!(-0.5)), 400, "invalid request: presence_penalty".into()),
        (set("max_tokens", json!(0)), 400, "invalid request: max_tokens".into()),
        (set("stop_sequences", json!(["a", "b", "c", "d", "e", "f"])), 400, "stop_sequences can contain at most 5".into()),
        (set("tool_choice", json!("auto")), 400, "invalid request: tool_choice must be one of REQUIRED, NONE".into()),
        (set("response_format", json!({"type": "json_schema", "json_schema": {}})), 400, "response_format.type must be one of text, json_object".into()),
        (set("stream", json!("yes")), 400, "invalid request: stream must be a boolean".into()),
        (set("model", json!("")), 400, "invalid request: model is required".into()),
        (set("messages", json!([])), 400, "invalid request: messages must not be empty".into()),
        (msgs(json!([{"role": "developer", "content": "x"}])), 400, "messages[0].role must be one of system, user, assistant, tool".into()),
        (msgs(json!([{"role": "user", "content": ""}])), 400,
         "invalid request: message must be at least 1 token long or tool results must be specified.".into()),
        (msgs(json!([{"role": "user", "content": "x"}, call(json!({"city": "Paris"}))])), 400,
         "messages[1].tool_calls[0].function.arguments must be a string containing JSON".into()),
        (msgs(json!([{"role": "user", "content": "x"}, call(json!("{city"))])), 400, "function.arguments is not valid JSON".into()),
        (msgs(json!([{"role": "user", "content": "x"}, call(json!("{}")), {"role": "tool", "tool_call_id": "other", "content": "18"}])), 400,
         "messages[2].tool_call_id 'other' does not match any tool call".into()),
        (msgs(json!([{"role": "user", "content": "x"}, {"role": "assistant"}])), 400, "assistant messages must have content or tool_calls".into()),
        (msgs(json!([{"role": "user", "content": [{"type": "image", "url": "x"}]}])), 400, "messages[0].content[0].type must be one of text, image_url, document".into()),
        (set("tools", json!([{"type": "function", "function": {"name": "bad name"}}])), 400, "tools[0].function.name must match".into()),
        (set("tools", json!([{"type": "code", "function": {"name": "f"}}])), 400, "tools[0].type must be one of function".into()),
    ];
    for (body, status, expected) in cases {
        let r = chat(&fake, &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let m = r.json();
        let message = m["message"].as_str().unwrap();
        assert!(message.contains(&expected), "{body}\n got: {message}");
        assert!(is_uuid(m["id"].as_str().unwrap()));
    }
    let broken = send(fake.addr(), "POST", "/v2/chat", &[AUTH], "{oops").await;
    assert_eq!(broken.status, 400);
    assert!(
        broken.json()["message"]
            .as_str()
            .unwrap()
            .starts_with("invalid request")
    );
    let image = msgs(
        json!([{"role": "user", "content": [{"type": "text", "text": "what is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}}]}]),
    );
    assert_eq!(chat(&fake, &image).await.status, 200);
}

#[tokio::test]
async fn malformed_bodies_never_crash_the_fake() {
    let fake = FakeUpstream::cohere().await;
    let bodies = [
        "",
        "null",
        "[]",
        "{",
        "{\"model\": 5, \"messages\": 5}",
        "{\"model\": \"m\", \"messages\": [null, 5, \"x\", {}]}",
        "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": [null, 5, {\"type\": 5}, {\"type\": \"image_url\"}]}]}",
        "{\"model\": \"m\", \"messages\": [{\"role\": \"assistant\", \"tool_calls\": [null, {\"function\": 5}]}]}",
        "{\"model\": \"m\", \"messages\": [{\"role\": \"tool\", \"tool_call_id\": 5, \"content\": {}}]}",
        "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [null, {\"function\": {\"name\": 5}}], \"p\": \"x\", \"k\": 1e40}",
        "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"properties\": 5}}}]}",
        "{\"model\": \"m\", \"input_type\": 5, \"embedding_types\": [5], \"texts\": [null], \"output_dimension\": -1}",
        "{\"model\": \"m\", \"input_type\": \"search_query\", \"embedding_types\": [\"binary\", \"ubinary\", \"base64\", \"uint8\"], \"texts\": [\"\"]}",
    ];
    for body in bodies {
        for path in ["/v2/chat", "/v2/embed"] {
            let r = send(fake.addr(), "POST", path, &[AUTH], body).await;
            assert!(
                matches!(r.status, 200 | 400 | 422),
                "{path} {body}: {}",
                r.status
            );
        }
    }
}
