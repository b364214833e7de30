//! The fake Anthropic Messages API follows wire-formats.md section 2.

mod common;

use common::{ANTHROPIC_HEADERS, anthropic, send};
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
async fn valid_request_gets_a_message() {
    let fake = FakeUpstream::anthropic().await;
    let mut body = ask("hi there");
    body["system"] = json!("You are terse.");
    let r = anthropic(fake.addr(), &body).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    assert!(r.header("request-id").unwrap().starts_with("req_"));
    let m = r.json();
    assert!(m["id"].as_str().unwrap().starts_with("msg_01"));
    assert_eq!(m["type"], "message");
    assert_eq!(m["role"], "assistant");
    assert_eq!(m["model"], "claude-sonnet-4-5");
    assert_eq!(
        m["content"],
        json!([{"type": "text", "text": "Hello! You said: hi there"}])
    );
    assert_eq!(m["stop_reason"], "end_turn");
    assert_eq!(m["stop_sequence"], Value::Null);
    assert_eq!(m["usage"]["input_tokens"], 5);
    assert_eq!(m["usage"]["output_tokens"], 5);
    assert_eq!(m["usage"]["cache_creation_input_tokens"], 0);
    assert_eq!(m["usage"]["cache_read_input_tokens"], 0);

    let recorded = fake.requests();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].method, "POST");
    assert_eq!(recorded[0].path, "/v1/messages");
    assert_eq!(recorded[0].header("X-Api-Key"), Some("sk-ant-test"));
    assert_eq!(recorded[0].body, body);
}

#[tokio::test]
async fn auth_and_version_headers() {
    let fake = FakeUpstream::anthropic_with_key("right").await;
    let body = ask("hi").to_string();
    let v = ("anthropic-version", "2023-06-01");
    let missing = send(fake.addr(), "POST", "/v1/messages", &[v], &body).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["error"]["type"], "authentication_error");
    let wrong = send(
        fake.addr(),
        "POST",
        "/v1/messages",
        &[v, ("x-api-key", "wrong")],
        &body,
    )
    .await;
    assert_eq!(wrong.status, 401);
    let right = send(
        fake.addr(),
        "POST",
        "/v1/messages",
        &[v, ("x-api-key", "right")],
        &body,
    )
    .await;
    assert_eq!(right.status, 200);
    let no_version = send(
        fake.addr(),
        "POST",
        "/v1/messages",
        &[("x-api-key", "right")],
        &body,
    )
    .await;
    assert_eq!(no_version.status, 400);
    assert_eq!(
        no_version.json()["error"]["message"],
        "anthropic-version: header is required"
    );
    assert_eq!(
        fake.requests().len(),
        4,
        "rejected requests are recorded too"
    );
}

#[tokio::test]
async fn validation_rules_reject_like_the_real_api() {
    let fake = FakeUpstream::anthropic().await;
    let tool_turns = |user_content: Value| {
        json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01Abc", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": user_content}]})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = ask("x");
                b["n"] = json!(2);
                b
            },
            "n: Extra inputs are not permitted",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}]}),
            "max_tokens: Field required",
        ),
        (
            json!({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
            "model: Field required",
        ),
        (
            {
                let mut b = ask("x");
                b["max_tokens"] = json!(0);
                b
            },
            "max_tokens: Input should be greater than or equal to 1",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": []}),
            "messages: at least one message is required",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}, {"role": "user", "content": "x"}]}),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "x"}]}),
            "messages.1.role: Input should be 'user' or 'assistant'",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]}),
            "messages: first message must use the \"user\" role",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}),
            "messages: text content blocks must be non-empty",
        ),
        (
            {
                let mut b = ask("x");
                b["temperature"] = json!(1.5);
                b
            },
            "temperature: Input should be less than or equal to 1",
        ),
        (
            {
                let mut b = ask("x");
                b["stop_sequences"] = json!("END");
                b
            },
            "stop_sequences: Input should be a valid list",
        ),
        (
            {
                let mut b = ask("x");
                b["metadata"] = json!({"user": "u"});
                b
            },
            "metadata.user: Extra inputs are not permitted",
        ),
        (
            {
                let mut b = ask("x");
                b["system"] = json!(42);
                b
            },
            "system: Input should be a valid string or a valid list",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"name": "t"}]);
                b
            },
            "tools.0.custom.input_schema: Field required",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "function", "function": {"name": "t"}}]);
                b
            },
            "tools.0: Input tag 'function'",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([weather_tool()]);
                b["tool_choice"] = json!("auto");
                b
            },
            "tool_choice: Input should be a valid dictionary or object",
        ),
        (
            {
                let mut b = ask("x");
                b["messages"][0]["name"] = json!("bob");
                b
            },
            "messages.0.name: Extra inputs are not permitted",
        ),
        (
            tool_turns(json!("18 degrees")),
            "Did not find 1 tool_result block(s) at the beginning of this message",
        ),
        (
            tool_turns(
                json!([{"type": "text", "text": "first"}, {"type": "tool_result", "tool_use_id": "toolu_01Abc", "content": "18"}]),
            ),
            "Did not find 1 tool_result block(s)",
        ),
        (
            tool_turns(
                json!([{"type": "tool_result", "tool_use_id": "toolu_other", "content": "18"}]),
            ),
            "unexpected `tool_use_id`",
        ),
        (
            {
                let mut b = tool_turns(
                    json!([{"type": "tool_result", "tool_use_id": "toolu_01Abc", "content": "18"}]),
                );
                b["messages"][1]["content"][1]["input"] = json!("{\"city\":\"Paris\"}");
                b
            },
            "messages.1.content.1.tool_use.input: Input should be a valid dictionary",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "data:image/png;base64,iVBORw0KGgo="}}]}]}),
            "image.source.base64.data",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "Input tag 'image_url'",
        ),
        (json!([1, 2]), "Input should be a valid dictionary"),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "function", "name": "f"}]);
                b
            },
            "tools.0: Input tag 'function' found using 'type' does not match any of the expected tags: 'bash_20250124', ",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "web_search_20990101", "name": "web_search"}]);
                b
            },
            "'web_fetch_20260209', 'web_search_20250305', 'web_search_20260209'",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "web_search_20250305", "name": "search"}]);
                b
            },
            "tools.0.web_search_20250305.name: Input should be 'web_search'",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "web_search_20250305"}]);
                b
            },
            "tools.0.web_search_20250305.name: Field required",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "web_search_20250305", "name": "web_search",
                    "search_context_size": "high"}]);
                b
            },
            "tools.0.web_search_20250305.search_context_size: Extra inputs are not permitted",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "web_search_20250305", "name": "web_search",
                    "user_location": {"type": "approximate", "approximate": {"city": "Paris"}}}]);
                b
            },
            "tools.0.web_search_20250305.user_location.approximate: Extra inputs are not permitted",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "web_search_20250305", "name": "web_search",
                    "user_location": {"type": "approximate", "country": "France"}}]);
                b
            },
            "tools.0.web_search_20250305.user_location.country: String should have at most 2 characters",
        ),
        (
            {
                let mut b = ask("x");
                b["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"},
                    {"name": "web_search", "input_schema": {"type": "object"}}]);
                b
            },
            "tools: Tool names must be unique.",
        ),
    ];
    for (body, expected) in cases {
        let r = anthropic(fake.addr(), &body).await;
        assert_eq!(r.status, 400, "{body}");
        let e = r.json();
        assert_eq!(e["type"], "error");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{body}\n  got: {message}\n  expected: {expected}"
        );
        assert_eq!(e["request_id"].as_str(), r.header("request-id"));
    }
    let bad = send(
        fake.addr(),
        "POST",
        "/v1/messages",
        ANTHROPIC_HEADERS,
        "{\"model\": ",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["type"], "invalid_request_error");
    assert_eq!(fake.requests().last().unwrap().body, Value::Null);
    let missing = send(fake.addr(), "POST", "/v1/complete", ANTHROPIC_HEADERS, "{}").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["type"], "not_found_error");
}

/// Thinking blocks sent back in assistant turns: each needs its signature, and with thinking
/// on, a tool loop's final assistant message (the one with the `tool_use` blocks) must start
/// with its thinking block (shared/reference/clouds.md §5.3, items 17-18).
#[tokio::test]
async fn thinking_blocks_need_a_signature_and_come_first_in_a_tool_loop() {
    let fake = FakeUpstream::anthropic().await;
    let thinking =
        json!({"type": "thinking", "thinking": "Call the tool.", "signature": "EqQBsig"});
    let tool_use = json!({"type": "tool_use", "id": "toolu_01Abc", "name": "get_weather", "input": {"city": "Paris"}});
    let text = json!({"type": "text", "text": "Checking."});
    let result = json!({"type": "tool_result", "tool_use_id": "toolu_01Abc", "content": "18"});
    let body = |messages: Value, thinking_on: bool| {
        let mut b = json!({"model": "claude-sonnet-4-5", "max_tokens": 4096,
            "tools": [weather_tool()], "messages": messages});
        if thinking_on {
            b["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
        }
        b
    };
    let tool_loop = |assistant: Value, thinking_on: bool| {
        body(
            json!([{"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": assistant},
                   {"role": "user", "content": [result]}]),
            thinking_on,
        )
    };
    let rejected = [
        (
            tool_loop(json!([text, tool_use]), true),
            "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. \
             When `thinking` is enabled, a final `assistant` message must start with a thinking block",
        ),
        (tool_loop(json!([tool_use]), true), "but found `tool_use`"),
        (
            tool_loop(json!([text, thinking, tool_use]), true),
            "but found `text`",
        ),
        (
            tool_loop(
                json!([{"type": "thinking", "thinking": "Call the tool.", "signature": ""}, tool_use]),
                true,
            ),
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        (
            tool_loop(
                json!([{"type": "thinking", "thinking": "Call the tool."}, tool_use]),
                false,
            ),
            "messages.1.content.0.thinking.signature: Field required",
        ),
    ];
    for (b, expected) in rejected {
        let r = anthropic(fake.addr(), &b).await;
        assert_eq!(r.status, 400, "{b}");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(expected), "{b}\n  got: {message}");
    }
    let accepted = [
        tool_loop(json!([thinking, text, tool_use]), true),
        tool_loop(
            json!([{"type": "redacted_thinking", "data": "EmwKAhgB"}, tool_use]),
            true,
        ),
        // Thinking off: no thinking block is needed.
        tool_loop(json!([text, tool_use]), false),
        // A tool loop that ended (the model answered) needs none either.
        body(
            json!([{"role": "user", "content": "Weather in Paris?"},
                   {"role": "assistant", "content": [text, tool_use]},
                   {"role": "user", "content": [result]},
                   {"role": "assistant", "content": "It is 18 °C."},
                   {"role": "user", "content": "Thanks!"}]),
            true,
        ),
    ];
    for b in accepted {
        let r = anthropic(fake.addr(), &b).await;
        assert_eq!(r.status, 200, "{b}\n{}", r.text());
    }
}

#[tokio::test]
async fn tool_round_trip_from_the_reference_is_accepted() {
    let fake = FakeUpstream::anthropic().await;
    let body = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "You are a weather bot.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01Abc", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01Abc", "content": "{\"temp_c\":18}"},
                {"type": "text", "text": "Answer in one sentence."}]}],
        "tools": [weather_tool()], "tool_choice": {"type": "auto"}, "stop_sequences": ["END"],
        "temperature": 0.2, "metadata": {"user_id": "u-42"}
    });
    let r = anthropic(fake.addr(), &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["content"][0]["text"], "Tool said: {\"temp_c\":18}");
    assert_eq!(r.json()["stop_reason"], "end_turn");
}
