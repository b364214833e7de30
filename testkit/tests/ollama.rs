//! The fake Ollama native API follows wire-formats.md section 5.

mod common;

use std::time::Duration;

use common::{get, ollama};
use rosetta_testkit::FakeUpstream;
use serde_json::{Value, json};

fn chat(text: &str) -> Value {
    json!({"model": "llama3.2", "messages": [{"role": "user", "content": text}]})
}

fn assert_final_metrics(line: &Value, reason: &str) {
    assert_eq!(line["done"], true);
    assert_eq!(line["done_reason"], reason);
    for key in [
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ] {
        assert!(line[key].is_u64(), "{key} in {line}");
    }
}

#[tokio::test]
async fn chat_streams_ndjson_by_default() {
    let fake = FakeUpstream::ollama().await;
    let r = ollama(fake.addr(), "/api/chat", &chat("what is the weather like")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    assert!(r.text().ends_with("}\n"));
    let lines = r.ndjson();
    assert!(lines.len() >= 4);
    let (last, pieces) = lines.split_last().unwrap();
    let text: String = pieces
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello! You said: what is the weather like");
    for l in pieces {
        assert_eq!(
            (l["model"].as_str(), l["done"].as_bool()),
            (Some("llama3.2"), Some(false))
        );
        assert_eq!(l["message"]["role"], "assistant");
        let created = l["created_at"].as_str().unwrap();
        assert!(
            created.len() == 27 && created.as_bytes()[10] == b'T' && created.ends_with('Z'),
            "{created}"
        );
    }
    assert_eq!(last["message"], json!({"role": "assistant", "content": ""}));
    assert_final_metrics(last, "stop");
    assert_eq!(last["prompt_eval_count"], 5);
    assert_eq!(last["eval_count"], 8);
    assert!(r.spread() > Duration::from_millis(30));
}

#[tokio::test]
async fn chat_without_streaming_is_one_object() {
    let fake = FakeUpstream::ollama().await;
    let mut body = chat("hi");
    body["stream"] = json!(false);
    body["options"] = json!({"temperature": 0.2, "num_predict": 256});
    body["frequency_penalty"] = json!(0.5);
    let r = ollama(fake.addr(), "/api/chat", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.json();
    assert_eq!(
        m["message"],
        json!({"role": "assistant", "content": "Hello! You said: hi"})
    );
    assert_final_metrics(&m, "stop");
    assert_eq!(
        fake.requests()[0].body["frequency_penalty"],
        0.5,
        "unknown fields are ignored but recorded"
    );
}

#[tokio::test]
async fn chat_validation() {
    let fake = FakeUpstream::ollama().await;
    let with_msg = |m: Value| json!({"model": "llama3.2", "messages": [m]});
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"messages": [{"role": "user", "content": "x"}]}),
            400,
            "model is required",
        ),
        (
            {
                let mut b = chat("x");
                b["model"] = json!("missing-model");
                b
            },
            404,
            "model \"missing-model\" not found, try pulling it first",
        ),
        (
            with_msg(
                json!({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{\"a\":1}"}}]}),
            ),
            400,
            "cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments",
        ),
        (
            with_msg(
                json!({"role": "user", "content": "x", "images": ["data:image/png;base64,iVBORw0KGgo="]}),
            ),
            400,
            "illegal base64 data at input byte 4",
        ),
        (
            with_msg(
                json!({"role": "user", "content": "x", "images": ["https://example.com/cat.png"]}),
            ),
            400,
            "illegal base64",
        ),
        (
            with_msg(json!({"role": "user", "content": [{"type": "text", "text": "x"}]})),
            400,
            "cannot unmarshal array into Go struct field Message.messages.content of type string",
        ),
        (
            with_msg(json!({"role": "developer", "content": "x"})),
            400,
            "invalid role",
        ),
        (
            {
                let mut b = chat("x");
                b["options"] = json!("fast");
                b
            },
            400,
            "ChatRequest.options",
        ),
        (
            {
                let mut b = chat("x");
                b["messages"] = json!("x");
                b
            },
            400,
            "ChatRequest.messages",
        ),
    ];
    for (body, status, expected) in cases {
        let r = ollama(fake.addr(), "/api/chat", &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let message = r.json()["error"].as_str().unwrap().to_string();
        assert!(message.contains(expected), "{body}\n got: {message}");
    }
    let bad = common::send(fake.addr(), "POST", "/api/chat", &[], "{oops").await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].is_string());
    let nothing = common::send(fake.addr(), "POST", "/api/chat", &[], "").await;
    assert_eq!(nothing.json(), json!({"error": "missing request body"}));
    let unknown = get(fake.addr(), "/v1/chat/completions").await;
    assert_eq!(
        (unknown.status, unknown.text().as_str()),
        (404, "404 page not found")
    );
    let ok = with_msg(json!({"role": "user", "content": "x", "images": ["iVBORw0KGgo="]}));
    assert_eq!(ollama(fake.addr(), "/api/chat", &ok).await.status, 200);
}

#[tokio::test]
async fn tool_calls_and_tool_results() {
    let fake = FakeUpstream::ollama().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}]);
    let mut body = chat("weather in Tokyo?");
    body["tools"] = tools.clone();
    let lines = ollama(fake.addr(), "/api/chat", &body).await.ndjson();
    assert_eq!(lines.len(), 2);
    let calls = &lines[0]["message"]["tool_calls"];
    assert_eq!(lines[0]["message"]["content"], "");
    assert_eq!(lines[0]["done"], false);
    let id = calls[0]["id"].as_str().unwrap();
    assert!(id.starts_with("call_") && id.len() == 13);
    assert_eq!(
        calls[0]["function"],
        json!({"index": 0, "name": "get_weather", "arguments": {"city": "Paris", "days": 3}})
    );
    assert_final_metrics(&lines[1], "stop");

    body["messages"] = json!([
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What's the weather in Tokyo?", "images": ["iVBORw0KGgo="]},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]},
        {"role": "tool", "tool_name": "get_weather", "content": "22 °C, sunny"}]);
    body["stream"] = json!(false);
    let m = ollama(fake.addr(), "/api/chat", &body).await.json();
    assert_eq!(m["message"]["content"], "Tool said: 22 °C, sunny");
    assert!(m["message"].get("tool_calls").is_none());
}

#[tokio::test]
async fn trigger_words() {
    let fake = FakeUpstream::ollama().await;
    let lines = ollama(fake.addr(), "/api/chat", &chat("THINK hard"))
        .await
        .ndjson();
    assert!(lines[0]["message"]["thinking"].is_string());
    assert_eq!(lines[0]["message"]["content"], "");
    let first_content = lines
        .iter()
        .position(|l| l["message"].get("thinking").is_none())
        .unwrap();
    assert!(first_content >= 2);
    let last = lines.last().unwrap();
    assert_final_metrics(last, "stop");
    assert_final_metrics(
        ollama(fake.addr(), "/api/chat", &chat("MAX TOKENS"))
            .await
            .ndjson()
            .last()
            .unwrap(),
        "length",
    );
    let no_count = ollama(fake.addr(), "/api/chat", &chat("NO PROMPT COUNT"))
        .await
        .ndjson();
    assert!(no_count.last().unwrap().get("prompt_eval_count").is_none());

    let r = ollama(fake.addr(), "/api/chat", &chat("FAIL 429")).await;
    assert_eq!(r.status, 429);
    assert!(r.json()["error"].is_string());
    assert_eq!(
        ollama(fake.addr(), "/api/chat", &chat("FAIL 500"))
            .await
            .status,
        500
    );
    assert_eq!(
        ollama(fake.addr(), "/api/chat", &chat("GARBAGE"))
            .await
            .text(),
        "this is not json{\n"
    );

    let lines = ollama(fake.addr(), "/api/chat", &chat("MIDSTREAM ERROR now"))
        .await
        .ndjson();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2],
        json!({"error": "an error was encountered while running the model"})
    );
    let reset = ollama(fake.addr(), "/api/chat", &chat("RESET now please")).await;
    assert!(reset.error.is_some());
    assert_eq!(reset.text().lines().count(), 2);
    let hang = tokio::time::timeout(
        Duration::from_millis(300),
        ollama(fake.addr(), "/api/chat", &chat("HANG")),
    )
    .await;
    assert!(hang.is_err());
}

#[tokio::test]
async fn tags_generate_and_embed() {
    let fake = FakeUpstream::ollama().await;
    let tags = get(fake.addr(), "/api/tags").await.json();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["llama3.2:latest", "qwen2.5:7b"]);
    assert_eq!(tags["models"][0]["details"]["format"], "gguf");
    assert!(tags["models"][1]["modified_at"].is_string() && tags["models"][1]["size"].is_u64());

    let g = json!({"model": "llama3.2", "prompt": "Why is the sky blue?"});
    let lines = ollama(fake.addr(), "/api/generate", &g).await.ndjson();
    let (last, pieces) = lines.split_last().unwrap();
    let text: String = pieces
        .iter()
        .map(|l| l["response"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello! You said: Why is the sky blue?");
    assert_final_metrics(last, "stop");
    assert!(last["context"].is_array());
    let mut g = g;
    g["stream"] = json!(false);
    let one = ollama(fake.addr(), "/api/generate", &g).await.json();
    assert_eq!(one["response"], "Hello! You said: Why is the sky blue?");

    let e = ollama(
        fake.addr(),
        "/api/embed",
        &json!({"model": "all-minilm", "input": ["first text", "second text"]}),
    )
    .await
    .json();
    assert_eq!(e["embeddings"].as_array().unwrap().len(), 2);
    assert_eq!(e["embeddings"][0].as_array().unwrap().len(), 3);
    assert_ne!(e["embeddings"][0], e["embeddings"][1]);
    assert_eq!(e["prompt_eval_count"], 4);
    let single = ollama(
        fake.addr(),
        "/api/embed",
        &json!({"model": "all-minilm", "input": "first text"}),
    )
    .await
    .json();
    assert_eq!(single["embeddings"][0], e["embeddings"][0]);
    assert_eq!(
        ollama(
            fake.addr(),
            "/api/embed",
            &json!({"model": "m", "input": 5})
        )
        .await
        .status,
        400
    );
}
