//! The Gemini mapping against the faithful fake Gemini API (v1beta, `alt=sse` streams).

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, request, stream, tools};

const KEY: &str = "AIzaSy-test-0123456789";
/// The fake's thought summary (a `"thought": true` part) for `THINK`.
const THOUGHT: &str = "The user sent a message. I should read it carefully and answer briefly.";

async fn setup() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::gemini_with_key(KEY).await;
    let proxy = Proxy::start(&[
        ("GEMINI_BASE_URL", fake.base_url()),
        ("GEMINI_API_KEY", KEY.to_string()),
    ])
    .await;
    (fake, proxy)
}

fn url(p: &Proxy) -> String {
    p.url("/gemini/v1/chat/completions")
}

fn streaming(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    body
}

/// Non-empty `delta.reasoning_content` pieces of a stream.
fn reasoning_pieces(chunks: &[Value]) -> Vec<String> {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning_content"].as_str())
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn non_stream_text_with_path_key_and_body() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "gemini-2.5-flash", "max_tokens": 64, "temperature": 0.2, "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "chat.completion");
    assert_eq!(j["model"], "gemini-2.5-flash");
    assert_eq!(
        j["choices"][0]["message"]["content"],
        "Hello! You said: Hi there"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let u = &j["usage"];
    assert!(u["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(u["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(
        sent.body,
        json!({
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "contents": [{"role": "user", "parts": [{"text": "Hi there"}]}],
            "generationConfig": {"maxOutputTokens": 64, "temperature": 0.2}
        })
    );
}

#[tokio::test]
async fn wrong_key_is_an_openai_error() {
    let fake = FakeUpstream::gemini_with_key(KEY).await;
    let proxy = Proxy::start(&[
        ("GEMINI_BASE_URL", fake.base_url()),
        ("GEMINI_API_KEY", "wrong".to_string()),
    ])
    .await;
    let r = post(&url(&proxy), &chat("gemini-2.5-flash", "Hi")).await;
    assert_eq!(r.status, 400);
    let e = r.openai_error();
    assert_eq!(
        e["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(e["type"], "invalid_argument");
    assert_eq!(e["code"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn stream_is_incremental_with_usage() {
    let (fake, proxy) = setup().await;
    let text = "please tell me a rather long story about the sea and its many ships";
    let s = stream(&url(&proxy), &streaming(chat("gemini-2.5-flash", text))).await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), format!("Hello! You said: {text}"));
    let pieces = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .count();
    assert!(pieces > 1, "text arrives in increments: {}", s.text());
    assert_eq!(s.finish_reason(), "stop");
    let usage = &chunks.last().unwrap()["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(
        usage["completion_tokens"].as_u64().unwrap() > 0,
        "the last chunk's full counts win over the partial ones: {usage}"
    );
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
}

#[tokio::test]
async fn tools_in_both_modes() {
    let (fake, proxy) = setup().await;
    let mut body = chat("gemini-2.5-flash", "Weather?");
    body["tools"] = tools();
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    let calls = j["choices"][0]["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert!(
        calls[0]["id"]
            .as_str()
            .unwrap()
            .starts_with("call_sig_CiQB"),
        "the thoughtSignature travels in the id: {}",
        calls[0]["id"]
    );
    let sent = &fake.requests()[0].body;
    let names: Vec<&str> = sent["tools"][0]["functionDeclarations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["get_weather", "get_time"]);
    assert!(sent.get("toolConfig").is_none());

    body["messages"][0]["content"] = json!("TWO TOOLS please");
    let s = stream(&url(&proxy), &streaming(body)).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "tool_calls");
    let deltas = s.tool_deltas();
    let starts: Vec<&Value> = deltas.iter().filter(|d| d.get("id").is_some()).collect();
    assert_eq!(starts.len(), 2, "{deltas:?}");
    for (i, (d, name)) in starts.iter().zip(["get_weather", "get_time"]).enumerate() {
        assert_eq!(d["index"], i);
        assert_eq!(d["type"], "function");
        assert_eq!(d["function"], json!({"name": name, "arguments": ""}));
    }
    let first = starts[0]["id"].as_str().unwrap();
    let second = starts[1]["id"].as_str().unwrap();
    assert!(first.starts_with("call_sig_CiQB"), "{first}");
    assert!(second.starts_with("call_") && !second.starts_with("call_sig_"));
    for (index, args) in [(0, json!({"city": "Paris"})), (1, json!({"tz": "Paris"}))] {
        let pieces: String = deltas
            .iter()
            .filter(|d| d["index"] == index && d.get("id").is_none())
            .map(|d| d["function"]["arguments"].as_str().unwrap())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&pieces).unwrap(), args);
    }
}

#[tokio::test]
async fn tool_choice_becomes_function_calling_config() {
    let (fake, proxy) = setup().await;
    let mut body = chat("gemini-2.5-flash", "Time?");
    body["tools"] = tools();
    body["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call = &r.json()["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_time");
    assert_eq!(
        fake.requests()[0].body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_time"]}})
    );

    body["tool_choice"] = json!("none");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert!(j["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(
        fake.requests()[1].body["toolConfig"],
        json!({"functionCallingConfig": {"mode": "NONE"}})
    );
}

#[tokio::test]
async fn tool_round_trip_names_the_function_and_returns_the_signature() {
    let (fake, proxy) = setup().await;
    let mut body = chat("gemini-2.5-flash", "TWO TOOLS: weather and time?");
    body["tools"] = tools();
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let message = r.json()["choices"][0]["message"].clone();
    let calls = message["tool_calls"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(message["content"], Value::Null);

    let mut messages = body["messages"].as_array().unwrap().clone();
    messages.push(message);
    messages
        .push(json!({"role": "tool", "tool_call_id": calls[0]["id"], "content": "22 C, sunny"}));
    messages.push(json!({"role": "tool", "tool_call_id": calls[1]["id"], "content": "09:30"}));
    body["messages"] = json!(messages);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: {\"result\":\"22 C, sunny\"}"
    );
    let sent = &fake.requests()[1].body["contents"];
    assert_eq!(sent.as_array().unwrap().len(), 3, "{sent}");
    let sig = calls[0]["id"]
        .as_str()
        .unwrap()
        .strip_prefix("call_sig_")
        .unwrap();
    assert_eq!(
        sent[1],
        json!({"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": sig},
            {"functionCall": {"name": "get_time", "args": {"tz": "Paris"}}}]})
    );
    assert_eq!(
        sent[2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"result": "22 C, sunny"}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "09:30"}}}]})
    );
}

#[tokio::test]
async fn vision_inline_data_and_file_uri() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/photo.png"}}]}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello! You said: What is this?"
    );
    assert_eq!(
        fake.requests()[0].body["contents"][0]["parts"],
        json!([
            {"text": "What is this?"},
            {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
            {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/photo.png"}}
        ])
    );
}

#[tokio::test]
async fn think_gives_reasoning_in_both_modes() {
    let (fake, proxy) = setup().await;
    let mut body = chat("gemini-2.5-flash", "THINK about it");
    body["reasoning_effort"] = json!("medium");
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let m = &j["choices"][0]["message"];
    assert_eq!(m["reasoning_content"], THOUGHT);
    assert_eq!(m["content"], "Hello! You said: THINK about it");
    let reasoning = j["usage"]["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(reasoning, THOUGHT.split_whitespace().count() as u64);
    assert!(j["usage"]["completion_tokens"].as_u64().unwrap() > reasoning);
    assert_eq!(
        fake.requests()[0].body["generationConfig"]["thinkingConfig"],
        json!({"thinkingBudget": 8192, "includeThoughts": true})
    );

    let s = stream(&url(&proxy), &streaming(body)).await;
    let chunks = s.assert_valid();
    let pieces = reasoning_pieces(&chunks);
    assert!(pieces.len() > 1, "{pieces:?}");
    assert_eq!(pieces.concat(), THOUGHT);
    assert_eq!(s.content(), "Hello! You said: THINK about it");
    let first_reasoning = chunks
        .iter()
        .position(|c| c["choices"][0]["delta"].get("reasoning_content").is_some())
        .unwrap();
    let first_content = chunks
        .iter()
        .position(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        })
        .unwrap();
    assert!(first_reasoning < first_content);
    assert_eq!(
        chunks.last().unwrap()["usage"]["completion_tokens_details"]["reasoning_tokens"],
        reasoning
    );
}

#[tokio::test]
async fn max_tokens_is_length() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("gemini-2.5-flash", "MAX TOKENS now")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["choices"][0]["finish_reason"], "length");
    let s = stream(
        &url(&proxy),
        &streaming(chat("gemini-2.5-flash", "MAX TOKENS now")),
    )
    .await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "length");
}

#[tokio::test]
async fn safety_is_content_filter() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("gemini-2.5-flash", "SAFETY test")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "content_filter");
    assert_eq!(j["choices"][0]["message"]["content"], Value::Null);

    let text = "SAFETY test with enough words to need several chunks of text";
    let s = stream(&url(&proxy), &streaming(chat("gemini-2.5-flash", text))).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "content_filter");
    let full = format!("Hello! You said: {text}");
    assert!(
        !s.content().is_empty() && full.starts_with(&s.content()) && s.content() != full,
        "the text is cut: {:?}",
        s.content()
    );
}

#[tokio::test]
async fn rate_limit_is_a_429_openai_error() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("gemini-2.5-flash", "FAIL 429")).await;
    assert_eq!(r.status, 429);
    let e = r.openai_error();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .starts_with("You exceeded your current quota"),
        "{e}"
    );
    assert_eq!(e["type"], "resource_exhausted");
    assert_eq!(e["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(e["param"], Value::Null);
    // A streaming request fails the same way, before any byte of the stream.
    let r = post(
        &url(&proxy),
        &streaming(chat("gemini-2.5-flash", "FAIL 429")),
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.openai_error()["code"], "RESOURCE_EXHAUSTED");
}

#[tokio::test]
async fn midstream_error_ends_the_stream_without_done() {
    let (_fake, proxy) = setup().await;
    let body = streaming(chat(
        "gemini-2.5-flash",
        "MIDSTREAM ERROR after a few more words here",
    ));
    let s = stream(&url(&proxy), &body).await;
    assert_eq!(s.status, 200);
    assert!(!s.done(), "{}", s.text());
    assert!(!s.content().is_empty(), "text before the error");
    let chunks = s.chunks();
    let last = chunks.last().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("An internal error has occurred"),
        "{last}"
    );
    assert_eq!(last["error"]["type"], "internal");
    assert_eq!(last["error"]["code"], "INTERNAL");
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
}

#[tokio::test]
async fn schemas_are_sanitised_and_parameterless_tools_accepted() {
    let (fake, proxy) = setup().await;
    let mut body = chat("gemini-2.5-flash", "Book it");
    body["tools"] = json!([
        {"type": "function", "function": {"name": "book", "strict": true, "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "additionalProperties": false, "required": ["title"],
            "properties": {
                "title": {"type": "string", "examples": ["Dune"]},
                "kind": {"type": "string", "const": "book"},
                "meta": {"type": "object", "additionalProperties": false,
                         "properties": {"copies": {"type": "integer", "exclusiveMinimum": 0}}}}}}},
        {"type": "function", "function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}
    ]);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let call = &r.json()["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "book");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(
        args,
        json!({"title": "Paris", "kind": "Paris", "meta": {"copies": 3}})
    );
    let decls = &fake.requests()[0].body["tools"][0]["functionDeclarations"];
    assert_eq!(
        decls[0]["parameters"],
        json!({"type": "object", "required": ["title"], "properties": {
            "title": {"type": "string"}, "kind": {"type": "string"},
            "meta": {"type": "object", "properties": {"copies": {"type": "integer"}}}}})
    );
    assert_eq!(decls[1], json!({"name": "ping"}));
}

#[tokio::test]
async fn embeddings_one_request_per_input() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/gemini/v1/embeddings");
    let r = post(
        &url,
        &json!({"model": "gemini-embedding-001", "input": ["first", "second"], "dimensions": 4}),
    )
    .await;
    let data = r.embeddings("gemini-embedding-001", 2);
    let j = r.json();
    for d in &data {
        assert_eq!(d["embedding"].as_array().unwrap().len(), 4);
    }
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);
    assert_eq!(j["usage"], json!({"prompt_tokens": 0, "total_tokens": 0}));
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.path,
        "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    );
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert_eq!(
        sent.body,
        json!({"requests": [
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first"}]}, "outputDimensionality": 4},
            {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]}, "outputDimensionality": 4}]})
    );
    // A single string, without dimensions: the fake's default length (8).
    let r = post(
        &url,
        &json!({"model": "gemini-embedding-001", "input": "solo"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["data"].as_array().unwrap().len(), 1);
    assert_eq!(j["data"][0]["embedding"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn models_come_from_the_listing_without_prefix() {
    let (fake, proxy) = setup().await;
    let r = request("GET", &proxy.url("/gemini/v1/models"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let data = r.json()["data"].as_array().unwrap().clone();
    let ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![
            "gemini-2.5-flash",
            "gemini-2.5-pro",
            "gemini-2.5-flash-lite",
            "gemini-embedding-001",
            "gemini-2.0-flash"
        ],
        "declared first, then the listing's other models"
    );
    assert!(data.iter().all(|m| m["owned_by"] == "google"));
    let sent = &fake.requests()[0];
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path_only(), "/v1beta/models");
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
}

#[tokio::test]
async fn unified_surface_routes_declared_and_prefixed_models() {
    let (fake, proxy) = setup().await;
    let r = post(
        &proxy.url("/v1/chat/completions"),
        &chat("gemini-2.5-pro", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "gemini-2.5-pro");
    let r = post(
        &proxy.url("/v1/chat/completions"),
        &chat("gemini/gemini-2.0-flash", "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["model"], "gemini/gemini-2.0-flash");
    let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec![
            "/v1beta/models/gemini-2.5-pro:generateContent",
            "/v1beta/models/gemini-2.0-flash:generateContent"
        ]
    );
}

/// The fake's grounded answer to `SEARCH` with Google Search on.
const GROUNDED: &str = "Rosetta makes LLM providers speak the OpenAI API. It runs as a reverse proxy in front of them.";

fn search_request(text: &str) -> Value {
    let mut body = chat("gemini-2.5-flash", text);
    body["web_search_options"] = json!({"search_context_size": "medium", "user_location": {
        "type": "approximate", "approximate": {"country": "FR", "city": "Paris"}}});
    body
}

/// web_search_options turns on Google Search grounding; the grounded answer's text is the
/// content, its groundingMetadata is not a tool call.
#[tokio::test]
async fn web_search_options_become_google_search() {
    let (fake, proxy) = setup().await;
    let r = post(&url(&proxy), &search_request("SEARCH what is rosetta")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let msg = &j["choices"][0]["message"];
    assert_eq!(msg["content"], GROUNDED);
    assert!(msg.get("tool_calls").is_none(), "{msg}");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    let sent = &fake.requests()[0].body;
    assert_eq!(sent["tools"], json!([{"googleSearch": {}}]));
    assert!(sent.get("toolConfig").is_none(), "{sent}");

    let mut body = search_request("SEARCH what is rosetta");
    body["web_search_options"] = json!({});
    let s = stream(&url(&proxy), &streaming(body)).await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), GROUNDED);
    assert!(s.tool_deltas().is_empty(), "{}", s.text());
    assert_eq!(s.finish_reason(), "stop");
    assert!(
        chunks.last().unwrap()["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(
        fake.requests()[1].body["tools"],
        json!([{"googleSearch": {}}])
    );
}

/// Gemini 2.x refuses Google Search beside function calling (declarations, or calls and
/// responses in the turns): the function tools win and the search is left out.
#[tokio::test]
async fn web_search_is_left_out_beside_function_calling() {
    let (fake, proxy) = setup().await;
    let mut body = search_request("SEARCH the weather");
    body["tools"] = tools();
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["finish_reason"], "tool_calls");
    let sent = &fake.requests()[0].body;
    let tools = sent["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{sent}");
    assert!(tools[0].get("functionDeclarations").is_some());

    let call = j["choices"][0]["message"].clone();
    let id = call["tool_calls"][0]["id"].clone();
    body["messages"] = json!([
        {"role": "user", "content": "SEARCH the weather"},
        call,
        {"role": "tool", "tool_call_id": id, "content": "18 C"}]);
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: {\"result\":\"18 C\"}"
    );
    let sent = &fake.requests()[1].body;
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1, "{sent}");
}

#[tokio::test]
async fn no_google_search_without_web_search_options() {
    let (fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("gemini-2.5-flash", "SEARCH rosetta")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Hello! You said: SEARCH rosetta"
    );
    assert!(fake.requests()[0].body.get("tools").is_none());
}
