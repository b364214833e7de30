//! The OpenAI-compatible pass-through mapping against the faithful fake (vLLM / llama.cpp style).

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, request, stream, tools};

const KEY: &str = "sk-local-0123456789abcd";
const MODEL: &str = "gpt-4o-mini";

async fn setup() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::openai_with_key(KEY).await;
    let proxy = Proxy::start(&[
        (
            "OPENAI_COMPATIBLE_BASE_URL",
            format!("{}/v1", fake.base_url()),
        ),
        ("OPENAI_COMPATIBLE_API_KEY", KEY.to_string()),
    ])
    .await;
    (fake, proxy)
}

fn url(p: &Proxy) -> String {
    p.url("/openai-compatible/v1/chat/completions")
}

fn streaming(text: &str) -> Value {
    let mut body = chat(MODEL, text);
    body["stream"] = json!(true);
    body
}

#[tokio::test]
async fn non_stream_text_drops_rejected_parameters() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "Hi there");
    body["store"] = json!(true);
    body["metadata"] = json!({"team": "a"});
    body["service_tier"] = json!("auto");
    body["temperature"] = json!(0.2);
    body["max_completion_tokens"] = json!(50);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert!(j["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(j["model"], MODEL);
    assert_eq!(
        j["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello! You said: Hi there", "refusal": null})
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(j["usage"]["completion_tokens"], 5);
    assert_eq!(j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    for k in ["store", "metadata", "service_tier"] {
        assert!(sent.body.get(k).is_none(), "{k} was sent");
    }
    assert_eq!(
        sent.body,
        json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi there"}],
               "temperature": 0.2, "max_completion_tokens": 50})
    );
}

#[tokio::test]
async fn stream_is_passed_through() {
    let (fake, proxy) = setup().await;
    let s = stream(&url(&proxy), &streaming("please say several words")).await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), "Hello! You said: please say several words");
    assert_eq!(s.finish_reason(), "stop");
    assert!(chunks.iter().all(|c| c["model"] == MODEL));
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    // Forwarded without parsing: the upstream's own fields are still there.
    assert!(
        chunks
            .iter()
            .all(|c| c["system_fingerprint"].as_str().is_some())
    );
    assert_eq!(fake.requests()[0].body["stream"], true);
}

#[tokio::test]
async fn include_usage_is_forwarded() {
    let (fake, proxy) = setup().await;
    let mut body = streaming("count me");
    body["stream_options"] = json!({"include_usage": true});
    body["store"] = json!(false);
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 5);
    assert_eq!(
        last["usage"]["total_tokens"].as_u64().unwrap(),
        last["usage"]["prompt_tokens"].as_u64().unwrap() + 5
    );
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
    assert!(sent.get("store").is_none());
}

#[tokio::test]
async fn tools_non_stream() {
    let (fake, proxy) = setup().await;
    let mut body = chat(MODEL, "TWO TOOLS please");
    body["tools"] = tools();
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let msg = &j["choices"][0]["message"];
    assert!(msg["content"].is_null());
    let calls = msg["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(calls[1]["function"]["name"], "get_time");
    assert_eq!(calls[0]["type"], "function");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(fake.requests()[0].body["tools"], tools());
}

#[tokio::test]
async fn tools_stream_pieces_and_indexes() {
    let (_fake, proxy) = setup().await;
    let mut body = streaming("TWO TOOLS please");
    body["tools"] = tools();
    let s = stream(&url(&proxy), &body).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "tool_calls");
    s.assert_tool_calls(&[
        ("get_weather", json!({"city": "Paris"})),
        ("get_time", json!({"tz": "Paris"})),
    ]);
}

#[tokio::test]
async fn tool_result_round_trip() {
    let (fake, proxy) = setup().await;
    let messages = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_x1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_x1", "content": "22 C, sunny"}]);
    let body = json!({"model": MODEL, "tools": tools(), "messages": messages});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: 22 C, sunny"
    );
    assert_eq!(fake.requests()[0].body["messages"], messages);
}

#[tokio::test]
async fn errors_before_and_during_the_stream() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat(MODEL, "FAIL 429")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    let e = r.openai_error();
    assert_eq!(e["type"], "requests", "the upstream's own type");
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit reached")
    );

    let r = post(&url(&proxy), &streaming("FAIL 503")).await;
    assert_eq!(r.status, 503, "a stream refused up front is a plain error");
    assert_eq!(r.openai_error()["type"], "server_error");

    let r = post(&url(&proxy), &chat("missing-model", "Hi")).await;
    assert_eq!(r.status, 404);
    let e = r.openai_error();
    assert_eq!(e["code"], "model_not_found");
    assert_eq!(e["type"], "invalid_request_error");

    let s = stream(&url(&proxy), &streaming("MIDSTREAM ERROR now")).await;
    assert_eq!(s.status, 200);
    assert!(!s.done());
    let chunks = s.chunks();
    let last = chunks.last().unwrap();
    assert_eq!(last["error"]["type"], "server_error");
    assert!(
        chunks
            .iter()
            .all(|c| c.get("error").is_some() || c["choices"][0]["finish_reason"].is_null())
    );

    // A connection reset after two events: the proxy closes the stream with its own error.
    let s = stream(&url(&proxy), &streaming("RESET now")).await;
    assert!(!s.done());
    let last = s.chunks().pop().unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_error", "{last}");
}

#[tokio::test]
async fn wrong_key_is_401() {
    let fake = FakeUpstream::openai_with_key(KEY).await;
    let proxy = Proxy::start(&[
        (
            "OPENAI_COMPATIBLE_BASE_URL",
            format!("{}/v1", fake.base_url()),
        ),
        ("OPENAI_COMPATIBLE_API_KEY", "sk-wrong-wxyz".to_string()),
    ])
    .await;
    let r = post(&url(&proxy), &chat(MODEL, "Hi")).await;
    assert_eq!(r.status, 401);
    let e = r.openai_error();
    assert_eq!(e["code"], "invalid_api_key");
    assert!(e["message"].as_str().unwrap().contains("sk-****wxyz"));
}

#[tokio::test]
async fn legacy_completions_both_modes() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/openai-compatible/v1/completions");
    let r = post(
        &url,
        &json!({"model": MODEL, "prompt": "Say hi", "max_tokens": 20, "metadata": {"a": "b"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "text_completion");
    assert_eq!(j["choices"][0]["text"], "Hello! You said: Say hi");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(j["usage"]["completion_tokens"], 5);
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/completions");
    assert!(sent.body.get("metadata").is_none());

    let s = stream(
        &url,
        &json!({"model": MODEL, "prompt": "Say hi", "stream": true}),
    )
    .await;
    assert_eq!(s.status, 200);
    assert!(s.done(), "{}", s.text());
    let text: String = s
        .chunks()
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello! You said: Say hi");
}

#[tokio::test]
async fn embeddings_and_models() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/openai-compatible/v1/embeddings");
    let r = post(
        &url,
        &json!({"model": "text-embedding-3-small", "input": ["first", "second"], "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["data"].as_array().unwrap().len(), 2);
    assert!(j["data"][0]["embedding"].is_string(), "base64 as asked");
    assert_eq!(j["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/embeddings");
    assert!(sent.body.get("encoding_format").is_none());
    let r = post(
        &url,
        &json!({"model": "text-embedding-3-small", "input": "one"}),
    )
    .await;
    assert_eq!(
        r.json()["data"][0]["embedding"].as_array().unwrap().len(),
        3
    );

    let r = request("GET", &proxy.url("/openai-compatible/v1/models"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let ids: Vec<&str> = j["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["gpt-4o-mini", "text-embedding-3-small"]);
    assert_eq!(j["data"][0]["object"], "model");
    let listing = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "GET")
        .unwrap();
    assert_eq!(listing.path, "/v1/models");
    assert_eq!(
        listing.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}
