//! The Azure OpenAI mapping against the faithful fake (deployment paths, `api-key`, filter chunks).

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, request, stream, tools};

const KEY: &str = "0123456789abcdef0123456789abcdef";
const DEPLOYMENT: &str = "gpt4o-prod";

async fn setup() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::azure_with_key(KEY).await;
    let proxy = Proxy::start(&[
        ("AZURE_OPENAI_BASE_URL", fake.base_url()),
        ("AZURE_OPENAI_API_KEY", KEY.to_string()),
    ])
    .await;
    (fake, proxy)
}

fn url(p: &Proxy) -> String {
    p.url("/azure/v1/chat/completions")
}

fn streaming(text: &str) -> Value {
    let mut body = chat(DEPLOYMENT, text);
    body["stream"] = json!(true);
    body
}

/// No chunk of Azure's own (prompt-filter chunk: empty id, no choices) reaches the client.
fn assert_no_filter_chunks(chunks: &[Value]) {
    for c in chunks {
        assert!(c.get("prompt_filter_results").is_none(), "{c}");
        assert!(
            c["choices"][0].get("content_filter_results").is_none(),
            "{c}"
        );
        if c["choices"].as_array().unwrap().is_empty() {
            assert!(c.get("usage").is_some(), "an empty-choices chunk: {c}");
        }
    }
}

#[tokio::test]
async fn non_stream_text_goes_to_the_deployment() {
    let (fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat(DEPLOYMENT, "Hi there")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert!(j["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(j["model"], DEPLOYMENT, "the client's model, not Azure's");
    assert_eq!(
        j["choices"][0]["message"],
        json!({"role": "assistant", "content": "Hello! You said: Hi there", "refusal": null})
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert!(j.get("prompt_filter_results").is_none());
    let u = &j["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert_eq!(u["completion_tokens"], 5, "one token per word");
    assert_eq!(u["total_tokens"], u["prompt_tokens"].as_u64().unwrap() + 5);
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(
        sent.path,
        "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some(KEY));
    assert!(sent.header("authorization").is_none());
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": "Hi there"}])
    );
}

#[tokio::test]
async fn stream_text_without_filter_chunks() {
    let (fake, proxy) = setup().await;
    let s = stream(&url(&proxy), &streaming("please say several words")).await;
    let chunks = s.assert_valid();
    assert_no_filter_chunks(&chunks);
    assert!(
        chunks
            .iter()
            .all(|c| !c["choices"].as_array().unwrap().is_empty()),
        "no usage asked, so no empty-choices chunk at all"
    );
    assert!(chunks.iter().all(|c| c["model"] == DEPLOYMENT));
    assert_eq!(s.content(), "Hello! You said: please say several words");
    assert_eq!(s.finish_reason(), "stop");
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let sent = &fake.requests()[0];
    assert_eq!(sent.body["stream"], true);
    assert!(sent.body.get("stream_options").is_none());
}

#[tokio::test]
async fn include_usage_comes_from_the_usage_chunk() {
    let (fake, proxy) = setup().await;
    let mut body = streaming("count me");
    body["stream_options"] = json!({"include_usage": true});
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    assert_no_filter_chunks(&chunks);
    let empty: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["choices"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(empty.len(), 1, "only the usage chunk has no choices");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    let u = &last["usage"];
    assert_eq!(u["completion_tokens"], 5, "Hello! You said: count me");
    assert!(u["prompt_tokens"].as_u64().unwrap() >= 2);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + 5
    );
    assert!(!chunks[chunks.len() - 2]["choices"][0]["finish_reason"].is_null());
    assert_eq!(
        fake.requests()[0].body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn tools_non_stream() {
    let (fake, proxy) = setup().await;
    let mut body = chat(DEPLOYMENT, "TWO TOOLS please");
    body["tools"] = tools();
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let msg = &j["choices"][0]["message"];
    assert!(msg["content"].is_null());
    let calls = msg["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(calls[1]["function"]["name"], "get_time");
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
    assert_ne!(calls[0]["id"], calls[1]["id"]);
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(fake.requests()[0].body["tools"], tools());
}

#[tokio::test]
async fn tools_stream_pieces_and_indexes() {
    let (_fake, proxy) = setup().await;
    let mut body = streaming("TWO TOOLS please");
    body["tools"] = tools();
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    assert_no_filter_chunks(&chunks);
    assert_eq!(s.finish_reason(), "tool_calls");
    s.assert_tool_calls(&[
        ("get_weather", json!({"city": "Paris"})),
        ("get_time", json!({"tz": "Paris"})),
    ]);
    let ids: Vec<Value> = s
        .tool_deltas()
        .into_iter()
        .filter_map(|d| d.get("id").cloned())
        .collect();
    assert!(
        ids.iter()
            .all(|id| id.as_str().unwrap().starts_with("call_")),
        "{ids:?}"
    );
}

#[tokio::test]
async fn tool_result_round_trip() {
    let (fake, proxy) = setup().await;
    let messages = json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_x1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_x1", "content": "22 C, sunny"}]);
    let body = json!({"model": DEPLOYMENT, "tools": tools(), "messages": messages});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "Tool said: 22 C, sunny"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert_eq!(fake.requests()[0].body["messages"], messages);
}

#[tokio::test]
async fn errors_before_the_stream() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat(DEPLOYMENT, "FAIL 429")).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
    let e = r.openai_error();
    assert_eq!(e["type"], "rate_limit_error");
    assert_eq!(e["code"], "rate_limit_exceeded");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Please retry after 7 seconds")
    );

    let r = post(&url(&proxy), &chat("missing-deployment", "Hi")).await;
    assert_eq!(r.status, 404);
    let e = r.openai_error();
    assert_eq!(e["code"], "model_not_found");
    assert_eq!(e["type"], "invalid_request_error");
    assert!(e["message"].as_str().unwrap().contains("does not exist"));

    let r = post(&url(&proxy), &streaming("FILTER PROMPT")).await;
    assert_eq!(r.status, 400, "a stream refused up front is a plain error");
    let e = r.openai_error();
    assert_eq!(e["code"], "content_filter");
    assert_eq!(e["type"], "invalid_request_error");

    let r = post(&url(&proxy), &chat(DEPLOYMENT, "FAIL 500")).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.openai_error()["type"], "server_error");
}

#[tokio::test]
async fn wrong_key_is_401() {
    let fake = FakeUpstream::azure_with_key(KEY).await;
    let proxy = Proxy::start(&[
        ("AZURE_OPENAI_BASE_URL", fake.base_url()),
        ("AZURE_OPENAI_API_KEY", "wrong".to_string()),
    ])
    .await;
    let r = post(&url(&proxy), &chat(DEPLOYMENT, "Hi")).await;
    assert_eq!(r.status, 401);
    let e = r.openai_error();
    assert_eq!(e["type"], "authentication_error");
    assert_eq!(e["code"], "invalid_api_key");
}

#[tokio::test]
async fn errors_in_the_stream() {
    let (_fake, proxy) = setup().await;
    let s = stream(&url(&proxy), &streaming("MIDSTREAM ERROR now")).await;
    assert_eq!(s.status, 200);
    assert!(!s.done());
    let chunks = s.chunks();
    assert_no_filter_chunks(&chunks[..chunks.len() - 1]);
    let last = chunks.last().unwrap();
    assert_eq!(last["error"]["type"], "server_error");
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("The server had an error"),
        "{last}"
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );

    let s = stream(&url(&proxy), &streaming("FILTERED words here")).await;
    let chunks = s.assert_valid();
    assert_no_filter_chunks(&chunks);
    assert_eq!(s.finish_reason(), "content_filter");
    assert_eq!(s.content(), "Hello! You");
}

#[tokio::test]
async fn embeddings_through_the_deployment() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/azure/v1/embeddings");
    let body =
        json!({"model": "embed-prod", "input": ["first", "second"], "encoding_format": "base64"});
    let r = post(&url, &body).await;
    r.embeddings("embed-prod", 2);
    let j = r.json();
    assert!(j["data"][0]["embedding"].is_string(), "base64 as asked");
    assert_eq!(j["usage"], json!({"prompt_tokens": 2, "total_tokens": 2}));
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.path,
        "/openai/deployments/embed-prod/embeddings?api-version=2024-10-21"
    );
    assert_eq!(sent.header("api-key"), Some(KEY));
    assert!(
        sent.body.get("encoding_format").is_none(),
        "floats come back and the proxy encodes"
    );

    let r = post(
        &url,
        &json!({"model": "embed-prod", "input": "one", "dimensions": 4}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["data"][0]["embedding"].as_array().unwrap().len(),
        4
    );
    let r = request("GET", &proxy.url("/azure/v1/models"), None).await;
    assert_eq!(r.status, 200);
}
