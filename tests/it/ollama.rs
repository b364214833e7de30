//! The Ollama mapping against the faithful fake native API (NDJSON streams).

use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

use super::support::{Proxy, chat, post, stream, tools};

async fn setup() -> (FakeUpstream, Proxy) {
    let fake = FakeUpstream::ollama().await;
    let proxy = Proxy::start(&[("OLLAMA_BASE_URL", fake.base_url())]).await;
    (fake, proxy)
}

fn url(p: &Proxy) -> String {
    p.url("/ollama/v1/chat/completions")
}

#[tokio::test]
async fn non_stream_text_asks_for_no_stream() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "llama3.2", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["choices"][0]["message"]["content"], "Hello! You said: Hi");
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert!(j["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(
        sent.body["stream"], false,
        "Ollama streams by default; a non-stream call must say so"
    );
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
}

#[tokio::test]
async fn stream_text_and_usage() {
    let (_fake, proxy) = setup().await;
    let mut body = chat("llama3.2", "NO PROMPT COUNT hello");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let s = stream(&url(&proxy), &body).await;
    let chunks = s.assert_valid();
    assert_eq!(s.content(), "Hello! You said: NO PROMPT COUNT hello");
    let usage = &chunks.last().unwrap()["usage"];
    assert_eq!(
        usage["prompt_tokens"], 0,
        "an absent prompt_eval_count counts as 0"
    );
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn tools_both_modes_with_object_arguments_as_strings() {
    let (fake, proxy) = setup().await;
    let mut body = chat("llama3.2", "Weather?");
    body["tools"] = tools();
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    let call = &j["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert!(call["id"].as_str().is_some_and(|i| !i.is_empty()));
    assert_eq!(
        j["choices"][0]["finish_reason"], "tool_calls",
        "Ollama says stop; tool calls make it tool_calls"
    );
    assert_eq!(
        fake.requests()[0].body["tools"][0]["function"]["name"],
        "get_weather"
    );

    body["stream"] = json!(true);
    body["messages"][0]["content"] = json!("TWO TOOLS");
    let s = stream(&url(&proxy), &body).await;
    s.assert_valid();
    assert_eq!(s.finish_reason(), "tool_calls");
    let deltas = s.tool_deltas();
    let starts: Vec<&Value> = deltas.iter().filter(|d| d.get("id").is_some()).collect();
    assert_eq!(
        starts
            .iter()
            .map(|d| d["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(starts.iter().all(|d| d["function"]["arguments"] == ""));
    let args0: String = deltas
        .iter()
        .filter(|d| d["index"] == 0 && d.get("id").is_none())
        .map(|d| d["function"]["arguments"].as_str().unwrap())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args0).unwrap(),
        json!({"city": "Paris"})
    );
}

#[tokio::test]
async fn tool_result_round_trip_names_the_tool() {
    let (fake, proxy) = setup().await;
    let body = json!({"model": "llama3.2", "tools": tools(), "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "call_x1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Tokyo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_x1", "content": "22 C, sunny"}]});
    let r = post(&url(&proxy), &body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "Tool said: 22 C, sunny"
    );
    let sent = &fake.requests()[0].body["messages"];
    assert_eq!(
        sent[1]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Tokyo"})
    );
    assert_eq!(sent[2]["tool_name"], "get_weather");
    assert_eq!(sent[2]["role"], "tool");
}

#[tokio::test]
async fn parameters_go_to_options() {
    let (fake, proxy) = setup().await;
    let mut body = chat("llama3.2", "Hi");
    for (k, v) in [
        ("max_tokens", json!(64)),
        ("stop", json!("END")),
        ("temperature", json!(0.2)),
        ("top_p", json!(0.9)),
        ("seed", json!(7)),
        ("frequency_penalty", json!(0.5)),
        ("user", json!("u-1")),
        ("response_format", json!({"type": "json_object"})),
    ] {
        body[k] = v;
    }
    assert_eq!(post(&url(&proxy), &body).await.status, 200);
    let sent = &fake.requests()[0].body;
    assert_eq!(
        sent["options"],
        json!({"num_predict": 64, "stop": ["END"], "temperature": 0.2, "top_p": 0.9, "seed": 7, "frequency_penalty": 0.5})
    );
    assert_eq!(sent["format"], "json");
    assert!(sent.get("user").is_none());
}

#[tokio::test]
async fn errors_in_band_and_out_of_band() {
    let (_fake, proxy) = setup().await;
    let r = post(&url(&proxy), &chat("missing-model", "Hi")).await;
    assert_eq!(r.status, 404);
    assert!(
        r.openai_error()["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    let mut body = chat("llama3.2", "MIDSTREAM ERROR now");
    body["stream"] = json!(true);
    let s = stream(&url(&proxy), &body).await;
    assert!(!s.done());
    let last = s.chunks().pop().unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("error was encountered"),
        "{last}"
    );
    assert!(
        s.chunks()
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
}

#[tokio::test]
async fn legacy_completions_both_modes() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/ollama/v1/completions");
    let r = post(
        &url,
        &json!({"model": "llama3.2", "prompt": "Why is the sky blue?", "max_tokens": 20}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(j["object"], "text_completion");
    assert!(j["id"].as_str().unwrap().starts_with("cmpl-"));
    assert!(
        j["choices"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{j}"
    );
    assert_eq!(j["choices"][0]["finish_reason"], "stop");
    assert!(j["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/api/generate");
    assert_eq!(sent.body["prompt"], "Why is the sky blue?");
    assert_eq!(sent.body["stream"], false);
    assert_eq!(sent.body["options"]["num_predict"], 20);

    let s = stream(
        &url,
        &json!({"model": "llama3.2", "prompt": "Why?", "stream": true}),
    )
    .await;
    assert_eq!(s.status, 200);
    assert!(s.done(), "{}", s.text());
    let chunks = s.chunks();
    assert!(chunks.len() >= 2);
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "text_completion" && c["id"] == chunks[0]["id"])
    );
    let finishes: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finishes, vec![&json!("stop")]);
    assert!(chunks.last().unwrap()["choices"][0]["finish_reason"] == "stop");
    let text: String = chunks
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        text,
        j["choices"][0]["text"]
            .as_str()
            .unwrap()
            .replace("Why is the sky blue?", "Why?")
    );
}

#[tokio::test]
async fn embeddings_as_floats_and_base64() {
    let (fake, proxy) = setup().await;
    let url = proxy.url("/ollama/v1/embeddings");
    let r = post(
        &url,
        &json!({"model": "all-minilm", "input": ["first", "second"]}),
    )
    .await;
    r.embeddings("all-minilm", 2);
    let j = r.json();
    let floats: Vec<f64> = j["data"][0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(!floats.is_empty());
    assert_eq!(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"]);
    assert_eq!(fake.requests()[0].body["input"], json!(["first", "second"]));
    // What the official Python SDK sends by default: base64 of little-endian float32.
    let r = post(
        &url,
        &json!({"model": "all-minilm", "input": ["first", "second"], "encoding_format": "base64"}),
    )
    .await;
    let b64 = r.json()["data"][0]["embedding"]
        .as_str()
        .unwrap()
        .to_string();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let decoded: Vec<f64> = bytes
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
        .collect();
    assert_eq!(decoded.len(), floats.len());
    for (a, b) in decoded.iter().zip(&floats) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[tokio::test]
async fn models_come_from_the_upstream_listing() {
    let (_fake, proxy) = setup().await;
    let r = super::support::request("GET", &proxy.url("/ollama/v1/models"), None).await;
    assert_eq!(r.status, 200);
    let ids: Vec<String> = r.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"llama3.2".to_string()), "declared: {ids:?}");
    assert!(
        ids.contains(&"qwen2.5:7b".to_string()),
        "fetched from /api/tags: {ids:?}"
    );
    // An unreachable upstream falls back to the declared models, fast.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Proxy::start(&[("OLLAMA_BASE_URL", format!("http://127.0.0.1:{port}"))]).await;
    let r = super::support::request("GET", &down.url("/ollama/v1/models"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["data"][0]["id"], "llama3.2");
}
