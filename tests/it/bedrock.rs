//! The Bedrock mapping against the faithful fake Converse API, which verifies every request's
//! Signature Version 4 with its own implementation (testkit/src/sigv4.rs). Rosetta's clock and
//! the fake's stand at the same fixed time: nothing depends on when the tests run.

use rosetta::ops::clock::Clock;
use rosetta_testkit::{BedrockAuth, FakeUpstream, Provider};
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, stream, tools};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const BEARER: &str = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl";
/// 2026-03-01 09:00:00 UTC.
const NOW: i64 = 1_772_355_600_000;
pub(super) const MODEL: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

async fn fake_at(now_ms: i64) -> FakeUpstream {
    let auth = BedrockAuth {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        bearer_token: Some(BEARER.into()),
        now_ms: Some(now_ms),
    };
    FakeUpstream::bind(
        "127.0.0.1:0".parse().unwrap(),
        Provider::Bedrock(auth).handler(),
    )
    .await
    .unwrap()
}

async fn proxy_with(fake: &FakeUpstream, env: &[(&str, &str)]) -> Proxy {
    let mut all = vec![
        ("BEDROCK_BASE_URL", fake.base_url()),
        ("AWS_REGION", "us-west-2".into()),
    ];
    all.extend(env.iter().map(|(k, v)| (*k, v.to_string())));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    Proxy::start_with(&dir, &all, |s| s.with_clock(Clock::manual(NOW))).await
}

pub(super) async fn setup() -> (FakeUpstream, Proxy) {
    let fake = fake_at(NOW).await;
    let proxy = proxy_with(
        &fake,
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
    .await;
    (fake, proxy)
}

pub(super) fn url(p: &Proxy) -> String {
    p.url("/bedrock/v1/chat/completions")
}

pub(super) fn streaming(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

#[tokio::test]
async fn text_is_signed_and_translated() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "Hi there");
    body["messages"] = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]);
    body["max_tokens"] = json!(100);
    body["stop"] = json!("END");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "Hello! You said: Hi there"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(j["model"], MODEL);
    let sent = &fake.requests()[0];
    // The profile id's `:` goes as it is; the fake verified the signature over it.
    assert_eq!(sent.path, format!("/model/{MODEL}/converse"));
    let auth = sent.header("authorization").unwrap();
    assert!(
        auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260301/us-west-2/bedrock/aws4_request"
        ),
        "{auth}"
    );
    assert_eq!(sent.header("x-amz-date"), Some("20260301T090000Z"));
    assert_eq!(sent.body["system"], json!([{"text": "Be brief."}]));
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": [{"text": "Hi there"}]}])
    );
    assert_eq!(
        sent.body["inferenceConfig"],
        json!({"maxTokens": 100, "stopSequences": ["END"]})
    );
}

#[tokio::test]
async fn a_wrong_secret_is_an_openai_error_and_never_leaks() {
    let fake = fake_at(NOW).await;
    let proxy = proxy_with(
        &fake,
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789"),
        ],
    )
    .await;
    let r = post(&url(&proxy), &chat(MODEL, "Hi")).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let e = r.openai_error();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("signature we calculated does not match"),
        "{e}"
    );
    assert!(!r.text.contains("not-the-secret"));
    // A clock far from the server's is refused too: the time signed is the clock's.
    let late = fake_at(NOW + 20 * 60_000).await;
    let proxy = proxy_with(
        &late,
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
    .await;
    let r = post(&url(&proxy), &chat(MODEL, "Hi")).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("Signature expired"), "{}", r.text);
}

#[tokio::test]
async fn a_bearer_key_wins_over_the_key_pair() {
    let fake = fake_at(NOW).await;
    let proxy = proxy_with(
        &fake,
        &[
            ("AWS_BEARER_TOKEN_BEDROCK", BEARER),
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789"),
        ],
    )
    .await;
    let r = post(&url(&proxy), &chat(MODEL, "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {BEARER}").as_str())
    );
    assert_eq!(sent.header("x-amz-date"), None);
}

#[tokio::test]
async fn a_session_token_is_signed() {
    let fake = fake_at(NOW).await;
    let proxy = proxy_with(
        &fake,
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", "FQoGZXIvYXdzEXAMPLESESSIONTOKEN"),
        ],
    )
    .await;
    let r = post(&url(&proxy), &chat(MODEL, "Hi")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.header("x-amz-security-token"),
        Some("FQoGZXIvYXdzEXAMPLESESSIONTOKEN")
    );
    assert!(
        sent.header("authorization")
            .unwrap()
            .contains("x-amz-security-token")
    );
}

#[tokio::test]
async fn streaming_text_and_usage() {
    let (fake, proxy) = setup().await;
    let s = stream(
        &url(&proxy),
        &streaming(chat(MODEL, "CACHED please say several words")),
    )
    .await;
    s.assert_valid();
    assert_eq!(
        s.content(),
        "Hello! You said: CACHED please say several words"
    );
    assert_eq!(s.finish_reason(), "stop");
    let usage = s.chunks().last().unwrap()["usage"].clone();
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 5);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        fake.requests()[0].path,
        format!("/model/{MODEL}/converse-stream")
    );
}

#[tokio::test]
async fn tools_both_ways_stream_and_not() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "TWO TOOLS weather and time please");
    body["tools"] = tools();
    body["tool_choice"] = json!("required");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let calls = j["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"],
        json!(["city"])
    );
    // Streamed: block 1 is tool 0, block 2 tool 1.
    let s = stream(&url(&proxy), &streaming(body.clone())).await;
    s.assert_valid();
    s.assert_tool_calls(&[
        ("get_weather", json!({"city": "Paris"})),
        ("get_time", json!({"tz": "Paris"})),
    ]);
    assert_eq!(s.finish_reason(), "tool_calls");
    // The results go back as one user turn of toolResults, in order.
    let mut next = body.clone();
    let msgs = next["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": null, "tool_calls": calls}));
    msgs.push(json!({"role": "tool", "tool_call_id": calls[0]["id"], "content": "21C and sunny"}));
    msgs.push(json!({"role": "tool", "tool_call_id": calls[1]["id"], "content": "10:00"}));
    let r = post(&url(&proxy), &next).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: 21C and sunny"
    );
    let sent = fake.requests().last().unwrap().body.clone();
    let turns = sent["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(
        turns[1]["content"][0]["toolUse"]["input"],
        json!({"city": "Paris"})
    );
    assert_eq!(turns[2]["role"], "user");
    assert_eq!(
        turns[2]["content"][0]["toolResult"]["toolUseId"],
        calls[0]["id"]
    );
    assert_eq!(
        turns[2]["content"][1]["toolResult"]["content"],
        json!([{"text": "10:00"}])
    );
}

#[tokio::test]
async fn images_go_as_bytes_with_their_format() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}}]}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .ends_with("I see 1 image(s): jpeg.")
    );
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["messages"][0]["content"][1],
        json!({"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQSkZJRg=="}}})
    );
}

#[tokio::test]
async fn reasoning_with_its_signature_both_ways() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "THINK about it");
    body["reasoning_effort"] = json!("low");
    body["temperature"] = json!(0.7);
    body["top_p"] = json!(0.9);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let m = r.json()["choices"][0]["message"].clone();
    assert!(
        m["reasoning_content"]
            .as_str()
            .unwrap()
            .starts_with("The user sent a message.")
    );
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})
    );
    assert_eq!(sent["inferenceConfig"], json!({"maxTokens": 6144}));
    let s = stream(&url(&proxy), &streaming(body.clone())).await;
    s.assert_valid();
    assert!(s.reasoning().starts_with("The user sent a message."));
    // A signed reasoning comes back first in its turn.
    let mut next = body.clone();
    let msgs = next["messages"].as_array_mut().unwrap();
    msgs.push(json!({"role": "assistant", "content": "Sure.", "reasoning_content": "Thought.", "reasoning_signature": "ErUBsig"}));
    msgs.push(json!({"role": "user", "content": "And then?"}));
    let r = post(&url(&proxy), &next).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let sent = fake.requests().last().unwrap().body.clone();
    assert_eq!(
        sent["messages"][1]["content"][0],
        json!({"reasoningContent": {"reasoningText": {"text": "Thought.", "signature": "ErUBsig"}}})
    );
}

#[tokio::test]
async fn only_one_of_temperature_and_top_p_is_sent() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "Hi");
    body["temperature"] = json!(1.5);
    body["top_p"] = json!(1);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        fake.requests()[0].body["inferenceConfig"],
        json!({"temperature": 1.0})
    );
}

#[tokio::test]
async fn stop_reasons_map_to_finish_reasons() {
    let (_fake, proxy) = setup().await;
    for (trigger, finish) in [
        ("MAX TOKENS", "length"),
        ("STOPSEQ", "stop"),
        ("GUARDRAIL", "content_filter"),
        ("FILTERED", "content_filter"),
    ] {
        let r = post(&url(&proxy), &chat(MODEL, trigger)).await;
        assert_eq!(r.json()["choices"][0]["finish_reason"], finish, "{trigger}");
        let s = stream(&url(&proxy), &streaming(chat(MODEL, trigger))).await;
        assert_eq!(s.finish_reason(), finish, "{trigger}");
    }
}

#[tokio::test]
async fn upstream_errors_keep_their_status() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat(MODEL, "FAIL 400")).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = post(&url(&proxy), &chat(MODEL, "FAIL 429")).await;
    assert_eq!(r.status, 429, "{}", r.text);
}
