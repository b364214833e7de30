//! The OpenAI-compatible fake's stream (wire-formats.md 1.6), models, embeddings and legacy completions.

mod common;

use std::time::Duration;

use common::{Exchange, get, send};
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

/// The JSON chunks of a data-only stream, checking it ends with `data: [DONE]`.
fn chunks(r: &Exchange) -> Vec<Value> {
    let events = r.sse();
    assert!(
        events.iter().all(|(name, _)| name.is_none()),
        "no event: lines"
    );
    assert_eq!(events.last().map(|e| e.1.as_str()), Some("[DONE]"));
    assert!(r.text().ends_with("data: [DONE]\n\n"));
    events[..events.len() - 1]
        .iter()
        .map(|(_, d)| serde_json::from_str(d).expect("chunk JSON"))
        .collect()
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
async fn stream_follows_section_1_6() {
    let fake = FakeUpstream::openai().await;
    let mut body = streaming("tell me more");
    body["stream_options"] = json!({"include_usage": true});
    let r = post(&fake, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let cs = chunks(&r);
    assert!(
        cs.iter()
            .all(|c| c["id"] == cs[0]["id"] && c["created"] == cs[0]["created"])
    );
    assert!(
        cs.iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "llama-3.1-8b")
    );
    assert_eq!(
        cs[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let (usage, rest) = cs.split_last().unwrap();
    let (finish, content) = rest.split_last().unwrap();
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(
        rest.iter()
            .all(|c| c["usage"].is_null() && c.get("usage").is_some())
    );
    let text: String = content[1..]
        .iter()
        .map(|c| {
            assert!(c["choices"][0]["finish_reason"].is_null());
            assert!(c["choices"][0]["delta"].get("role").is_none());
            c["choices"][0]["delta"]["content"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "Hello! You said: tell me more");
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 9);
    assert!(r.spread() > Duration::from_millis(60));

    let plain = chunks(&post(&fake, "/v1/chat/completions", &streaming("hi")).await);
    assert!(
        plain.iter().all(|c| c.get("usage").is_none()),
        "no usage without include_usage"
    );
}

#[tokio::test]
async fn n_choices_interleave_with_their_own_role_and_finish_chunks() {
    let fake = FakeUpstream::openai().await;
    let mut body = streaming("two answers");
    body["n"] = json!(2);
    let cs = chunks(&post(&fake, "/v1/chat/completions", &body).await);
    let indexes: Vec<u64> = cs
        .iter()
        .map(|c| c["choices"][0]["index"].as_u64().unwrap())
        .collect();
    assert_eq!(&indexes[..4], &[0, 1, 0, 1]);
    for i in [0, 1] {
        let mine: Vec<&Value> = cs
            .iter()
            .map(|c| &c["choices"][0])
            .filter(|c| c["index"] == i)
            .collect();
        assert_eq!(mine[0]["delta"]["role"], "assistant");
        assert_eq!(mine.last().unwrap()["finish_reason"], "stop");
        assert_eq!(
            mine.iter()
                .filter(|c| !c["finish_reason"].is_null())
                .count(),
            1
        );
    }
    let mut one = chat("two answers");
    one["n"] = json!(2);
    let c = post(&fake, "/v1/chat/completions", &one).await.json();
    assert_eq!(c["choices"][1]["index"], 1);
    assert_eq!(c["usage"]["completion_tokens"], 10);
}

#[tokio::test]
async fn stream_faults() {
    let fake = FakeUpstream::openai().await;
    let r = post(
        &fake,
        "/v1/chat/completions",
        &streaming("MIDSTREAM ERROR now"),
    )
    .await;
    let events = r.sse();
    assert_eq!(events.len(), 4, "role, 2 content chunks, error");
    let error: Value = serde_json::from_str(&events[3].1).unwrap();
    assert_eq!(error["error"]["type"], "server_error");
    assert!(!r.text().contains("[DONE]"));
    let reset = post(
        &fake,
        "/v1/chat/completions",
        &streaming("RESET now please"),
    )
    .await;
    assert!(reset.error.is_some());
    assert_eq!(reset.sse().len(), 3);
    let garbage = post(
        &fake,
        "/v1/chat/completions",
        &streaming("STREAM GARBAGE here"),
    )
    .await;
    assert!(
        garbage.text().contains("data: {not json\n\n")
            && garbage.text().ends_with("data: [DONE]\n\n")
    );
    let slow = post(&fake, "/v1/chat/completions", &streaming("SLOW")).await;
    assert!(slow.spread() > Duration::from_millis(900));
    let hang = tokio::time::timeout(
        Duration::from_millis(300),
        post(&fake, "/v1/chat/completions", &chat("HANG")),
    )
    .await;
    assert!(hang.is_err());
}

#[tokio::test]
async fn models_embeddings_completions_and_routes() {
    let fake = FakeUpstream::openai().await;
    let models = get(fake.addr(), "/v1/models").await.json();
    assert_eq!(models["object"], "list");
    assert_eq!(
        models["data"][0],
        json!({"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"})
    );
    assert_eq!(
        get(fake.addr(), "/v1/models/gpt-4o-mini").await.json()["id"],
        "gpt-4o-mini"
    );
    assert_eq!(get(fake.addr(), "/v1/models/nope").await.status, 404);
    let r = get(fake.addr(), "/v1/nothing").await;
    assert_eq!(
        (r.status, error_of(&r)["message"].clone()),
        (404, json!("Invalid URL (GET /v1/nothing)"))
    );
    assert_eq!(get(fake.addr(), "/v1/chat/completions").await.status, 405);

    let e = post(
        &fake,
        "/v1/embeddings",
        &json!({"model": "text-embedding-3-small", "input": ["first text", "second text"]}),
    )
    .await
    .json();
    assert_eq!(e["object"], "list");
    assert_eq!(e["data"][1]["index"], 1);
    assert_eq!(e["data"][0]["object"], "embedding");
    assert_eq!(e["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));
    let b = post(
        &fake,
        "/v1/embeddings",
        &json!({"model": "m", "input": "first text", "encoding_format": "base64", "dimensions": 4}),
    )
    .await
    .json();
    let f = post(
        &fake,
        "/v1/embeddings",
        &json!({"model": "m", "input": "first text", "dimensions": 4}),
    )
    .await
    .json();
    let floats = f["data"][0]["embedding"].as_array().unwrap();
    assert_eq!(floats.len(), 4);
    let first = (floats[0].as_f64().unwrap() as f32).to_le_bytes();
    let b64 = b["data"][0]["embedding"].as_str().unwrap();
    assert_eq!(b64.len(), 24, "4 f32 = 16 bytes");
    assert_eq!(&b64[..4], &base64_prefix(&first)[..4]);
    assert_eq!(
        post(&fake, "/v1/embeddings", &json!({"model": "m", "input": ""}))
            .await
            .status,
        400
    );

    let long = "a b c d e f g h i j k l m n o p q r s t";
    let c = post(
        &fake,
        "/v1/completions",
        &json!({"model": "gpt-3.5-turbo-instruct", "prompt": long}),
    )
    .await
    .json();
    assert_eq!(c["object"], "text_completion");
    assert!(c["id"].as_str().unwrap().starts_with("cmpl-"));
    assert_eq!(
        c["choices"][0]["finish_reason"], "length",
        "max_tokens defaults to 16"
    );
    assert_eq!(c["usage"]["completion_tokens"], 16);
    let s = post(
        &fake,
        "/v1/completions",
        &json!({"model": "m", "prompt": "Say this", "stream": true, "echo": true}),
    )
    .await;
    let cs = chunks(&s);
    assert!(cs.iter().all(|c| c["object"] == "text_completion"));
    let text: String = cs
        .iter()
        .map(|c| c["choices"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Say thisHello! You said: Say this");
    assert_eq!(cs.last().unwrap()["choices"][0]["finish_reason"], "stop");
    assert!(
        cs[..cs.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
}

fn base64_prefix(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
    (0..4)
        .map(|i| char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]))
        .collect()
}
