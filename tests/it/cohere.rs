//! The Cohere mapping against the faithful fake API v2 (typed named-event SSE, float usage).

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, stream, tools};

const KEY: &str = "co-test-0123456789";
const MODEL: &str = "command-a-03-2025";
/// What the fake Cohere streams as thinking for a `THINK` request.
const THINKING: &str = "The user sent a message. I should read it carefully and answer briefly.";
/// Tokens of the fake's chat template, counted in `usage.tokens.input_tokens`.
const TEMPLATE_TOKENS: u64 = 66;

async fn setup() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::cohere_with_key(KEY).await;
    let proxy = Proxy::start(&[
        ("COHERE_BASE_URL", fake.base_url()),
        ("COHERE_API_KEY", KEY.to_string()),
    ])
    .await;
    (fake, proxy)
}

fn url(p: &Proxy) -> String {
    p.url("/cohere/v1/chat/completions")
}

fn streaming(text: &str) -> Value {
    let mut body = chat(MODEL, text);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

#[tokio::test]
async fn non_stream_text_with_path_auth_and_integer_usage() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "Hi there");
    body["messages"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"role": "developer", "content": "Be brief."}));
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(j["model"], MODEL);
    let message = &j["choices"][0]["message"];
    assert_eq!(message["content"], "Hello! You said: Hi there");
    assert!(message.get("reasoning_content").is_none(), "{message}");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    // Prompt: 4 words + the template; answer: 5 words. Cohere sends them as 70.0 and 5.0.
    assert_eq!(
        j["usage"],
        json!({"prompt_tokens": 4 + TEMPLATE_TOKENS, "completion_tokens": 5, "total_tokens": 9 + TEMPLATE_TOKENS})
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v2/chat");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        sent.body,
        json!({"model": MODEL, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi there"}]})
    );
}

#[tokio::test]
async fn unified_surface_routes_declared_models_here() {
    let (fake, proxy) = setup().await;
    let r = post(
        &proxy.url("/v1/chat/completions"),
        &chat("command-r7b-12-2024", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello! You said: Hi"
    );
    assert_eq!(fake.requests()[0].body["model"], "command-r7b-12-2024");
    let r = super::support::request("GET", &proxy.url("/cohere/v1/models"), None).await;
    assert_eq!(r.status, 200);
    let ids: Vec<Value> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert!(ids.contains(&json!(MODEL)), "{ids:?}");
    assert!(ids.contains(&json!("embed-v4.0")), "{ids:?}");
}

#[tokio::test]
async fn openai_parameters_are_renamed_clamped_or_dropped() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "Hi");
    for (k, v) in [
        ("max_completion_tokens", json!(64)),
        ("max_tokens", json!(32)),
        ("stop", json!(["END", "STOP"])),
        ("temperature", json!(0.2)),
        ("top_p", json!(1)),
        ("seed", json!(7)),
        ("frequency_penalty", json!(1.5)),
        ("presence_penalty", json!(-1)),
        ("user", json!("u-1")),
        ("n", json!(1)),
        ("logit_bias", json!({"50256": -100})),
        ("parallel_tool_calls", json!(true)),
        ("store", json!(false)),
        (
            "response_format",
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}),
        ),
        ("reasoning_effort", json!("none")),
    ] {
        body[k] = v;
    }
    // The fake refuses unknown fields (422) and out-of-range values (400).
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent,
        &json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 64, "stop_sequences": ["END", "STOP"], "temperature": 0.2, "p": 0.99,
            "seed": 7, "frequency_penalty": 1.0, "presence_penalty": 0,
            "response_format": {"type": "json_object", "json_schema": {"type": "object"}},
            "thinking": {"type": "disabled"}})
    );
}

#[tokio::test]
async fn stream_is_incremental_with_float_usage_as_integers() {
    let (fake, proxy) = setup().await;
    let s = stream(&url(&proxy), &streaming("hello there general kenobi")).await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), "Hello! You said: hello there general kenobi");
    let pieces = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert!(pieces > 2, "content arrives in pieces: {pieces}");
    assert_eq!(s.finish_reason(), "stop");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        usage,
        &json!({"prompt_tokens": 4 + TEMPLATE_TOKENS, "completion_tokens": 7, "total_tokens": 11 + TEMPLATE_TOKENS})
    );
    assert!(usage["prompt_tokens"].is_u64(), "{usage}");
    assert_eq!(fake.requests()[0].body["stream"], true);
    assert!(fake.requests()[0].body.get("stream_options").is_none());
}

#[tokio::test]
async fn tools_non_stream_two_calls_with_plan_as_reasoning() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "TWO TOOLS please");
    body["tools"] = tools();
    body["tool_choice"] = json!("required");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let message = &j["choices"][0]["message"];
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["reasoning_content"],
        "I will use get_weather and get_time to answer this."
    );
    let calls = message["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (call, (name, args)) in calls.iter().zip([
        ("get_weather", json!({"city": "Paris"})),
        ("get_time", json!({"tz": "Paris"})),
    ]) {
        assert_eq!(call["type"], "function");
        assert_eq!(call["function"]["name"], name);
        assert!(
            call["id"]
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("{name}_")))
        );
        let got: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(got, args);
    }
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["tool_choice"], "REQUIRED");
    assert_eq!(sent["tools"], tools());
}

#[tokio::test]
async fn tools_stream_two_calls_in_fragments() {
    let (_fake, proxy) = setup().await;
    let mut body = streaming("TWO TOOLS please");
    body["tools"] = tools();
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    assert_eq!(s.finish_reason(), "tool_calls");
    s.assert_tool_calls(&[
        ("get_weather", json!({"city": "Paris"})),
        ("get_time", json!({"tz": "Paris"})),
    ]);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert_eq!(
        reasoning,
        "I will use get_weather and get_time to answer this."
    );
    assert_eq!(s.content(), "");
    assert!(
        chunks.last().unwrap()["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn named_tool_choice_offers_only_that_tool() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "TWO TOOLS please");
    body["tools"] = tools();
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let calls = r.json()["choices"][0]["message"]["tool_calls"].clone();
    assert_eq!(calls.as_array().unwrap().len(), 1, "{calls}");
    assert_eq!(calls[0]["function"]["name"], "get_time");
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["tool_choice"], "REQUIRED");
    assert_eq!(sent["tools"], json!([tools()[1]]));

    body["tool_choice"] = json!("none");
    let r = post(&url(&proxy), &body).await;
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert!(
        j["choices"][0]["message"].get("tool_calls").is_none(),
        "{j}"
    );
    assert_eq!(fake.requests()[1].body["tool_choice"], "NONE");
}

#[tokio::test]
async fn tool_round_trip() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": MODEL, "tools": tools(), "messages": [
        {"role": "user", "content": "Weather in Tokyo?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "get_weather_abc123", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}]},
        {"role": "tool", "tool_call_id": "get_weather_abc123", "content": "22 C, sunny"}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "Tool said: 22 C, sunny"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let sent = &fake.requests()[0].body["messages"];
    assert_eq!(
        sent[1],
        json!({"role": "assistant", "tool_calls": [{"id": "get_weather_abc123", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}]})
    );
    assert_eq!(
        sent[2],
        json!({"role": "tool", "tool_call_id": "get_weather_abc123", "content": "22 C, sunny"})
    );
}

#[tokio::test]
async fn vision_parts_pass_in_cohere_shape() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "command-a-vision-07-2025", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}}]}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello! You said: What is this?"
    );
    assert_eq!(
        fake.requests()[0].body["messages"][0]["content"][1],
        json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}})
    );
}

#[tokio::test]
async fn thinking_both_modes() {
    let (fake, proxy) = setup().await;
    let mut body = chat("command-a-reasoning-08-2025", "THINK about it");
    body["reasoning_effort"] = json!("medium");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let message = r.json()["choices"][0]["message"].clone();
    assert_eq!(message["reasoning_content"], THINKING);
    assert_eq!(message["content"], "Hello! You said: THINK about it");
    assert_eq!(
        fake.requests()[0].body["thinking"],
        json!({"type": "enabled", "token_budget": 4096})
    );

    body["stream"] = json!(true);
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    let reasoning: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .collect();
    assert!(reasoning.len() > 1, "thinking arrives in pieces");
    assert_eq!(reasoning.concat(), THINKING);
    assert_eq!(s.content(), "Hello! You said: THINK about it");
    let first_content = chunks
        .iter()
        .position(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .unwrap();
    let last_reasoning = chunks
        .iter()
        .rposition(|c| c["choices"][0]["delta"].get("reasoning_content").is_some())
        .unwrap();
    assert!(last_reasoning < first_content, "thinking comes first");
    assert_eq!(s.finish_reason(), "stop");
}

#[tokio::test]
async fn max_tokens_and_stop_sequence_finish_reasons() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "MAX TOKENS please");
    body["max_tokens"] = json!(5);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["finish_reason"], "length");
    assert_eq!(fake.requests()[0].body["max_tokens"], 5);
    let s = stream(&url(&proxy), &streaming("MAX TOKENS please")).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "length");

    let mut body = chat(MODEL, "STOPSEQ please");
    body["stop"] = json!("END");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["finish_reason"], "stop");
    assert_eq!(fake.requests()[2].body["stop_sequences"], json!(["END"]));
    let s = stream(&url(&proxy), &streaming("STOPSEQ please")).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "stop");
}

#[tokio::test]
async fn http_errors_keep_status_and_message() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat(MODEL, "FAIL 429 now")).await;
    assert_eq!(r.status, 429);
    let e = r.openai_error();
    assert!(e["message"].as_str().unwrap().contains("Trial key"), "{e}");
    assert_eq!(e["type"], "rate_limit_error");
    // Streaming requests fail the same way, before any byte of the stream.
    let r = post(&url(&proxy), &streaming("FAIL 500 now")).await;
    assert_eq!(r.status, 500);
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("internal server error")
    );
    let r = post(&url(&proxy), &chat("missing-model", "Hi")).await;
    assert_eq!(r.status, 404);
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    // A wrong key is the upstream's 401.
    let fake = FakeUpstream::cohere_with_key(KEY).await;
    let proxy = Proxy::start(&[
        ("COHERE_BASE_URL", fake.base_url()),
        ("COHERE_API_KEY", "wrong".to_string()),
    ])
    .await;
    let r = post(&url(&proxy), &chat(MODEL, "Hi")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.openai_error()["type"], "authentication_error");
}

#[tokio::test]
async fn midstream_error_becomes_an_error_event() {
    let (_fake, proxy) = setup().await;
    let s = stream(&url(&proxy), &streaming("MIDSTREAM ERROR now")).await;
    assert_eq!(s.status, 200);
    assert!(!s.done(), "{}", s.text());
    let chunks = s.chunks();
    let last = chunks.last().unwrap();
    assert_eq!(
        last["error"]["message"],
        "internal server error, this has been reported to our developers"
    );
    assert_eq!(last["error"]["type"], "server_error");
    assert!(
        !s.content().is_empty(),
        "the deltas before the error arrive"
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null()),
        "no finish_reason"
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn trailing_done_marker_is_tolerated() {
    let (_fake, proxy) = setup().await;
    let s = stream(&url(&proxy), &streaming("DONE MARKER please")).await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), "Hello! You said: DONE MARKER please");
    assert_eq!(s.finish_reason(), "stop");
    assert!(chunks.last().unwrap()["usage"]["total_tokens"].is_u64());
    assert_eq!(s.text().matches("data: [DONE]").count(), 1);
    assert!(chunks.iter().all(|c| c.get("error").is_none()));
}

#[tokio::test]
async fn embeddings() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/cohere/v1/embeddings");
    let r = post(
        &url,
        &json!({"model": "embed-v4.0", "input": ["first text", "second text here"], "dimensions": 256}),
    )
    .await;
    let data = r.embeddings("embed-v4.0", 2);
    let j = r.json();
    assert_eq!(data[0]["embedding"].as_array().unwrap().len(), 256);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    // Billed input tokens (5.0 from the fake) as an integer.
    assert_eq!(j["usage"], json!({"prompt_tokens": 5, "total_tokens": 5}));
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v2/embed");
    assert_eq!(
        sent.body,
        json!({"model": "embed-v4.0", "texts": ["first text", "second text here"],
            "input_type": "search_document", "embedding_types": ["float"], "output_dimension": 256})
    );
    let r = post(&url, &json!({"model": "embed-v4.0", "input": "one"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 1);
    assert_eq!(fake.requests()[1].body["texts"], json!(["one"]));
}
